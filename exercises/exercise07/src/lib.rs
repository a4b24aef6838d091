//! Exercise 07: semaphores and locks.
//!
//! Your task: implement the functions below (tasks 1 to 4, then, if you like, the ungraded bonus
//! tasks at the end). The task statement is in `README.md` beside this file; `cargo ipclab hint 7`
//! gives hints; `cargo test -p exercise07` grades your work.
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

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::mqueue::{
    mq_close, mq_getattr, mq_open, mq_receive, mq_send, mq_unlink, MQ_OFlag, MqAttr, MqdT,
};
use nix::sys::mman::{mmap, mmap_anonymous, munmap, shm_open, shm_unlink, MapFlags, ProtFlags};
use nix::sys::stat::{fstat, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ftruncate, pipe, ForkResult, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

// ---------------------------------------------------------------------------------------------
// Semaphores

// Given in `given.rs`: [`Semaphore`] (its `id` field and accessor) and [`SemaphoreGuard`].

impl Semaphore {
    /// Task 1: a new semaphore set of one semaphore with permission bits `mode`, whose value
    /// starts at `initial` (task 4: 0 to [`SEMVMX`], else [`Error::InvalidValue`]).
    pub fn new(initial: i32, mode: u32) -> Result<Semaphore> {
        todo!("Task 1: semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | mode), then semctl(SETVAL, initial); task 4: check the value and mode first")
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

// Given in `given.rs`: [`SharedCounter`] and its fields.

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

// Given in `given.rs`: [`LogFile`] and its field. The fields of [`LogLock`] are yours.

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

// ---------------------------------------------------------------------------------------------
// Bonus: POSIX IPC (ungraded)
//
// The POSIX family names its objects with strings like "/name", not with keys and ids, and
// keeps them in file systems: semaphores and shared memory in the tmpfs at /dev/shm (a semaphore
// as `sem.name`), message queues in the mqueue file system (often mounted at /dev/mqueue). An
// object lives while its name exists or any process has it open or mapped: unlinking removes
// the name at once and the object when the last user lets go. So a handle here closes (or
// unmaps) on drop, and the creator also gets a [`PosixName`], which unlinks on drop.

// Given in `given.rs`: `POSIX_MODE`, `PosixKind`, [`PosixName`] and its `as_str`, and the
// handles [`NamedSemaphore`], [`SharedMemory`] and [`MessageQueue`] with their fields.

impl PosixName {
    /// Bonus: unlink the name now, reporting failure.
    pub fn unlink(self) -> Result<()> {
        todo!("Bonus: sem_unlink, shm_unlink or mq_unlink by kind, and make sure Drop does not unlink a second time")
    }
}

impl Drop for PosixName {
    fn drop(&mut self) {
        // Bonus: unlink the name by kind (sem_unlink, nix's shm_unlink or mq_unlink). Until
        // then, names stay behind: `ls /dev/shm` lists them, `rm /dev/shm/<name>` removes one.
    }
}

// --- Bonus 1: a named semaphore

impl NamedSemaphore {
    /// Bonus: create the semaphore `name` (it must not exist yet) with value `initial` (at most
    /// [`SEM_VALUE_MAX`], else [`Error::ValueTooLarge`]) and mode 0o600. Returns the handle and
    /// the name, which unlinks on drop.
    pub fn create(name: &str, initial: u32) -> Result<(NamedSemaphore, PosixName)> {
        todo!("Bonus: check the name, then libc::sem_open(name, O_CREAT | O_EXCL, 0o600, initial); SEM_FAILED means an error")
    }

    /// Bonus: open the existing semaphore `name`.
    pub fn open(name: &str) -> Result<NamedSemaphore> {
        todo!("Bonus: check the name, then libc::sem_open(name, 0)")
    }

    /// Bonus: P. Take one unit, sleeping until one is available.
    pub fn wait(&self) -> Result<()> {
        todo!("Bonus: libc::sem_wait, retried on EINTR")
    }

    /// Bonus: V. Give one unit back, waking a sleeper.
    pub fn post(&self) -> Result<()> {
        todo!("Bonus: libc::sem_post")
    }

    /// Bonus: the current value (`sem_getvalue`).
    pub fn value(&self) -> Result<u32> {
        todo!("Bonus: libc::sem_getvalue")
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // Bonus: libc::sem_close (which unmaps the semaphore's file).
    }
}

/// Bonus: like [`count_in_processes`] with a lock, but each child opens the named semaphore
/// `name` itself (`NamedSemaphore::open`) rather than inheriting a handle, and does every
/// increment between its `wait` and `post`. Returns the final count.
pub fn count_with_named_semaphore(name: &str, processes: usize, iterations: usize) -> Result<u64> {
    todo!("Bonus: as count_in_processes, but each child opens the semaphore by name after fork")
}

// --- Bonus 2: named shared memory

impl SharedMemory {
    /// Bonus: create the segment `name` (it must not exist yet) with mode 0o600, give it `size`
    /// bytes (`ftruncate`; they start zeroed; 0 is [`Error::EmptySegment`]) and map it shared,
    /// readable and writable.
    pub fn create(name: &str, size: usize) -> Result<(SharedMemory, PosixName)> {
        todo!("Bonus: shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600), ftruncate, mmap(MAP_SHARED), then close the descriptor")
    }

    /// Bonus: open and map the existing segment `name`, at the size its creator gave it.
    pub fn open(name: &str) -> Result<SharedMemory> {
        todo!("Bonus: shm_open(name, O_RDWR), the size from fstat, mmap(MAP_SHARED)")
    }

    /// Bonus: copy `bytes` into the segment at `offset`; [`Error::OutOfBounds`] if they do not
    /// fit. Another process sees them at once: synchronise (a semaphore, a pipe) before it reads.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        todo!("Bonus: check the range (without overflow), then copy into the mapping")
    }

    /// Bonus: copy `buf.len()` bytes of the segment from `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        todo!("Bonus: check the range (without overflow), then copy out of the mapping")
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // Bonus: munmap the whole segment.
    }
}

// --- Bonus 3: a message queue with priorities

impl MessageQueue {
    /// Bonus: create the queue `name` (it must not exist yet), mode 0o600, for
    /// [`MQ_MAX_MESSAGES`] messages of up to [`MQ_MESSAGE_SIZE`] bytes, open for sending and
    /// receiving.
    pub fn create(name: &str) -> Result<(MessageQueue, PosixName)> {
        todo!("Bonus: mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600, Some(&MqAttr::new(0, 10, 8192, 0))): with None, nix 0.32 drops the mode too")
    }

    /// Bonus: open the existing queue `name` for sending and receiving.
    pub fn open(name: &str) -> Result<MessageQueue> {
        todo!("Bonus: mq_open(name, O_RDWR, Mode::empty(), None), and mq_getattr for its message size")
    }

    /// Bonus: send `message` with `priority` (below [`MQ_PRIO_MAX`], else
    /// [`Error::InvalidPriority`]; a message longer than the queue's is
    /// [`Error::MessageTooLong`]), waiting while the queue is full.
    pub fn send(&self, message: &[u8], priority: u32) -> Result<()> {
        todo!("Bonus: check the priority and length, then mq_send, retried on EINTR")
    }

    /// Bonus: receive the oldest message of the highest priority queued, with its priority,
    /// waiting while the queue is empty.
    pub fn receive(&self) -> Result<(Vec<u8>, u32)> {
        todo!("Bonus: mq_receive into a buffer of the queue's message size (smaller fails with EMSGSIZE), retried on EINTR")
    }

    /// Bonus: how many messages are queued now (`mq_getattr`).
    pub fn queued(&self) -> Result<usize> {
        todo!("Bonus: mq_getattr(..).curmsgs()")
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // Bonus: mq_close. It takes the MqdT by value: `ManuallyDrop::take` gives it once.
    }
}
