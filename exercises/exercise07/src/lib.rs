//! Exercise 07: semaphores and locks.
//!
//! Your task: implement the functions below (tasks 1 to 4). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 7` gives hints; `cargo test -p exercise07` grades your
//! work.
//!
//! Processes that share memory share its races: `counter += 1` is a read and a write, and two
//! processes can both read the old value. A System V semaphore is a counter the kernel keeps,
//! with a wait queue: `semop(-1)` (P, "wait") takes one unit or sleeps until one is there,
//! `semop(+1)` (V, "post") gives one back and wakes a sleeper. A file lock does the same job for
//! writers of one file.
//!
//! Like a message queue, a semaphore set outlives its creator until `IPC_RMID`, so
//! [`Semaphore`] removes it on drop. `nix` does not wrap System V IPC: those calls use `libc`.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult, Pid};

/// The largest value a System V semaphore can hold (`SEMVMX` in the kernel).
pub const SEMVMX: i32 = 32767;

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed for a reason none of the other variants names.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// A semaphore's value must lie in 0..=SEMVMX.
    #[error("invalid semaphore value {value}: it must lie between 0 and {SEMVMX}")]
    InvalidValue { value: i32 },
    /// Only the nine permission bits may be given as a mode.
    #[error(
        "invalid mode {mode:#o}: a semaphore set's mode holds permission bits only (at most 0o777)"
    )]
    InvalidMode { mode: u32 },
    /// The semaphore set was removed (IPC_RMID), possibly while this process waited on it.
    #[error("semaphore set {id} was removed")]
    Removed { id: i32 },
    /// A child process of [`count_in_processes`] did not finish its work.
    #[error("counting child {pid} did not finish normally: {how}")]
    ChildFailed { pid: Pid, how: String },
}

pub type Result<T> = std::result::Result<T, Error>;

// ---------------------------------------------------------------------------------------------
// Semaphores

/// A System V semaphore set with one semaphore, private to this process and the children it
/// forks. It is removed (`IPC_RMID`) when this value is dropped, also while unwinding from a
/// panic. Children that inherit it must end with `_exit`, so that they do not remove it too.
#[derive(Debug)]
pub struct Semaphore {
    id: i32,
}

/// Holds the semaphore taken by [`Semaphore::lock`]; gives it back when dropped. If the process
/// dies first, the kernel gives it back (`SEM_UNDO`).
#[derive(Debug)]
pub struct SemaphoreGuard<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// Task 1: a new semaphore set of one semaphore with permission bits `mode`, whose value
    /// starts at `initial` (task 4: 0 to [`SEMVMX`], else [`Error::InvalidValue`]).
    pub fn new(initial: i32, mode: u32) -> Result<Semaphore> {
        todo!("Task 1: semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | mode), then semctl(SETVAL, initial); task 4: check the value and mode first")
    }

    /// The set's identifier (`semid`), as `ipcs -s` and `/proc/sysvipc/sem` show it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Task 1: the current value (`semctl(GETVAL)`).
    pub fn value(&self) -> Result<i32> {
        todo!("Task 1: semctl(id, 0, GETVAL)")
    }

    /// Task 2: how many processes are asleep in the semaphore's wait queue (`semctl(GETNCNT)`).
    pub fn waiters(&self) -> Result<i32> {
        todo!("Task 2: semctl(id, 0, GETNCNT)")
    }

    /// Task 1: P. Take one unit, sleeping until one is available.
    pub fn wait(&self) -> Result<()> {
        todo!("Task 1: semop with one sembuf {{ sem_num: 0, sem_op: -1, sem_flg: 0 }}, retried on EINTR")
    }

    /// Task 1: V. Give one unit back, waking a sleeper.
    pub fn post(&self) -> Result<()> {
        todo!("Task 1: semop with sem_op +1")
    }

    /// Task 2: P without sleeping: `Ok(false)` if no unit is available now.
    pub fn try_wait(&self) -> Result<bool> {
        todo!("Task 2: semop -1 with IPC_NOWAIT; EAGAIN means Ok(false)")
    }

    /// Task 2: take one unit with `SEM_UNDO`, so that the kernel gives it back if this process
    /// exits or is killed while holding it; the guard gives it back when dropped.
    pub fn lock(&self) -> Result<SemaphoreGuard<'_>> {
        todo!("Task 2: semop -1 with SEM_UNDO; the guard's Drop does +1 with SEM_UNDO")
    }

    /// Task 4: remove the set now (`IPC_RMID`), reporting failure. Processes asleep on it wake up
    /// with EIDRM.
    pub fn remove(self) -> Result<()> {
        todo!("Task 4: semctl(IPC_RMID), and make sure Drop does not remove it a second time")
    }
}

impl Drop for Semaphore {
    /// Task 4: the guard that removes the set, on return and while unwinding alike.
    fn drop(&mut self) {
        // Task 4: semctl(IPC_RMID). Until then, sets stay behind: `ipcs -s` lists them, `ipcrm -s
        // ID` removes them by hand.
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Task 2: semop +1 with SEM_UNDO (which cancels the undo entry the P made).
    }
}

// ---------------------------------------------------------------------------------------------
// A counter in shared memory

/// A `u64` in a shared anonymous mapping: this process and every child it forks afterwards see
/// (and change) the same memory.
#[derive(Debug)]
pub struct SharedCounter {
    cell: NonNull<AtomicU64>,
    len: NonZeroUsize,
    // Not Send or Sync: the mapping belongs to this process's address space.
    _not_send: PhantomData<*mut u64>,
}

impl SharedCounter {
    /// Task 1: map one shared, anonymous page (`MAP_SHARED | MAP_ANONYMOUS`) holding 0.
    pub fn new() -> Result<SharedCounter> {
        todo!("Task 1: mmap_anonymous of 8 bytes, PROT_READ | PROT_WRITE, MAP_SHARED")
    }

    /// Task 1: the current value.
    pub fn get(&self) -> u64 {
        todo!("Task 1: load the value from the shared mapping")
    }

    /// Task 1: `counter += 1` done the unsafe way on purpose: read the value, `sched_yield`,
    /// write the value read plus one. Another process that runs in between loses its update.
    pub fn increment_racily(&self) {
        todo!("Task 1: load, sched_yield, store the loaded value + 1")
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // Task 1: munmap the mapping.
    }
}

/// Task 1: fork `processes` children that each call [`SharedCounter::increment_racily`]
/// `iterations` times on one new counter, inside `lock.wait()` / `lock.post()` if a semaphore is
/// given; all start together, and the parent waits for all of them. Returns the final count.
pub fn count_in_processes(
    processes: usize,
    iterations: usize,
    lock: Option<&Semaphore>,
) -> Result<u64> {
    todo!("Task 1: a SharedCounter, fork the children (they start together), each increments `iterations` times between wait and post if locked, then waitpid them all")
}

// ---------------------------------------------------------------------------------------------
// File locks

/// A log file that several processes append records to.
#[derive(Debug)]
pub struct LogFile {
    file: File,
}

/// An exclusive lock on a [`LogFile`], released when dropped (or when the process ends).
#[derive(Debug)]
pub struct LogLock<'a> {
    // One way: a duplicate of the LogFile's descriptor, locked with nix's `Flock` (flock locks
    // belong to the open file description, which the duplicate shares); dropping it unlocks.
    // Change the fields if you choose fcntl record locks instead.
    _held: Flock<File>,
    _file: PhantomData<&'a LogFile>,
}

impl LogFile {
    /// Task 3: open (creating it with mode 0o644 if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<LogFile> {
        todo!("Task 3: open for appending (O_APPEND), creating it with mode 0o644")
    }

    /// Task 3: take the exclusive lock, waiting while another process holds it.
    pub fn lock(&self) -> Result<LogLock<'_>> {
        todo!("Task 3: an exclusive lock that waits: flock(LOCK_EX) or fcntl(F_SETLKW, F_WRLCK)")
    }

    /// Task 3: take the exclusive lock if it is free now; `Ok(None)` if another holds it ("would
    /// block").
    pub fn try_lock(&self) -> Result<Option<LogLock<'_>>> {
        todo!("Task 3: an exclusive lock that does not wait (LOCK_NB or F_SETLK); EWOULDBLOCK/EAGAIN means Ok(None)")
    }

    /// Task 3: append one record, each line with its own `write` (a line break after each),
    /// holding the lock throughout, so that records of concurrent writers never interleave.
    pub fn append_record(&self, lines: &[&str]) -> Result<()> {
        todo!("Task 3: hold the lock while writing each line (with its line break) with its own write")
    }
}
