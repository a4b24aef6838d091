//! Exercise 07: semaphores and locks — reference solution.
//!
//! Processes that share memory share its races: `counter += 1` is a read and a write, and two
//! processes can both read the old value. A System V semaphore is a counter the kernel keeps,
//! with a wait queue: `semop(-1)` (P, "wait") takes one unit or sleeps until one is there,
//! `semop(+1)` (V, "post") gives one back and wakes a sleeper. A file lock does the same job for
//! writers of one file.
//!
//! Like a message queue, a semaphore set outlives its creator until `IPC_RMID`, so
//! [`Semaphore`] removes it on drop. `nix` does not wrap System V IPC: those calls use `libc`.

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

fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}

fn io_error(call: &'static str) -> impl Fn(io::Error) -> Error {
    move |e| Error::Sys {
        call,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

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
        if !(0..=SEMVMX).contains(&initial) {
            return Err(Error::InvalidValue { value: initial });
        }
        if mode & !0o777 != 0 {
            return Err(Error::InvalidMode { mode });
        }
        // The mode fits in the nine low bits, checked above.
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int;
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(libc::IPC_PRIVATE, 1, flags) };
        if id == -1 {
            return Err(Error::Sys {
                call: "semget",
                errno: Errno::last(),
            });
        }
        // Owned from here on: an error below removes the set again.
        let semaphore = Semaphore { id };
        // SAFETY: SETVAL takes its value as an int argument (the `val` member of union semun,
        // which on Linux is passed like an int).
        if unsafe { libc::semctl(id, 0, libc::SETVAL, initial) } == -1 {
            return Err(semaphore.error("semctl(SETVAL)", Errno::last()));
        }
        Ok(semaphore)
    }

    /// The set's identifier (`semid`), as `ipcs -s` and `/proc/sysvipc/sem` show it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Task 1: the current value (`semctl(GETVAL)`).
    pub fn value(&self) -> Result<i32> {
        self.get(libc::GETVAL, "semctl(GETVAL)")
    }

    /// Task 2: how many processes are asleep in the semaphore's wait queue (`semctl(GETNCNT)`).
    pub fn waiters(&self) -> Result<i32> {
        self.get(libc::GETNCNT, "semctl(GETNCNT)")
    }

    /// Task 1: P. Take one unit, sleeping until one is available.
    pub fn wait(&self) -> Result<()> {
        self.op(-1, 0).map(|_| ())
    }

    /// Task 1: V. Give one unit back, waking a sleeper.
    pub fn post(&self) -> Result<()> {
        self.op(1, 0).map(|_| ())
    }

    /// Task 2: P without sleeping: `Ok(false)` if no unit is available now.
    pub fn try_wait(&self) -> Result<bool> {
        self.op(-1, libc::IPC_NOWAIT)
    }

    /// Task 2: take one unit with `SEM_UNDO`, so that the kernel gives it back if this process
    /// exits or is killed while holding it; the guard gives it back when dropped.
    pub fn lock(&self) -> Result<SemaphoreGuard<'_>> {
        self.op(-1, libc::SEM_UNDO)?;
        Ok(SemaphoreGuard { semaphore: self })
    }

    /// Task 4: remove the set now (`IPC_RMID`), reporting failure. Processes asleep on it wake up
    /// with EIDRM.
    pub fn remove(self) -> Result<()> {
        let id = self.id;
        // Removed here, not again in Drop.
        std::mem::forget(self);
        rmid(id)
    }

    fn get(&self, cmd: libc::c_int, call: &'static str) -> Result<i32> {
        // SAFETY: GETVAL and GETNCNT take no fourth argument and write no memory of ours.
        let value = unsafe { libc::semctl(self.id, 0, cmd) };
        if value == -1 {
            return Err(self.error(call, Errno::last()));
        }
        Ok(value)
    }

    /// One `semop` on semaphore 0. `Ok(false)` only with IPC_NOWAIT when it would block.
    fn op(&self, delta: libc::c_short, flags: libc::c_int) -> Result<bool> {
        let mut op = libc::sembuf {
            sem_num: 0,
            sem_op: delta,
            // The flags are IPC_NOWAIT (0o4000) and SEM_UNDO (0x1000): they fit in a short.
            sem_flg: flags as libc::c_short,
        };
        loop {
            // SAFETY: `op` is one valid sembuf, and nsops says one.
            if unsafe { libc::semop(self.id, &mut op, 1) } == 0 {
                return Ok(true);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN if flags & libc::IPC_NOWAIT != 0 => return Ok(false),
                errno => return Err(self.error("semop", errno)),
            }
        }
    }

    fn error(&self, call: &'static str, errno: Errno) -> Error {
        match errno {
            // With valid arguments, EINVAL means the id names no set any more.
            Errno::EIDRM | Errno::EINVAL => Error::Removed { id: self.id },
            errno => Error::Sys { call, errno },
        }
    }
}

impl Drop for Semaphore {
    /// Task 4: the guard that removes the set, on return and while unwinding alike.
    fn drop(&mut self) {
        let _ = rmid(self.id);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // V with SEM_UNDO cancels the undo entry the P made. Failure means the set is gone.
        let _ = self.semaphore.op(1, libc::SEM_UNDO);
    }
}

fn rmid(id: i32) -> Result<()> {
    // SAFETY: IPC_RMID takes no fourth argument.
    if unsafe { libc::semctl(id, 0, libc::IPC_RMID) } == -1 {
        return Err(match Errno::last() {
            Errno::EINVAL | Errno::EIDRM => Error::Removed { id },
            errno => Error::Sys {
                call: "semctl(IPC_RMID)",
                errno,
            },
        });
    }
    Ok(())
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
        let len = NonZeroUsize::new(std::mem::size_of::<AtomicU64>()).expect("not zero");
        // SAFETY: a fresh anonymous mapping overlaps no Rust object.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }
        .map_err(sys("mmap"))?;
        // Anonymous mappings start zeroed and page-aligned: a valid AtomicU64 holding 0.
        Ok(SharedCounter {
            cell: ptr.cast(),
            len,
            _not_send: PhantomData,
        })
    }

    /// Task 1: the current value.
    pub fn get(&self) -> u64 {
        self.cell().load(Ordering::SeqCst)
    }

    /// Task 1: `counter += 1` done the unsafe way on purpose: read the value, `sched_yield`,
    /// write the value read plus one. Another process that runs in between loses its update.
    pub fn increment_racily(&self) {
        let seen = self.cell().load(Ordering::SeqCst);
        // Widens the window between read and write, so that the race shows.
        let _ = nix::sched::sched_yield();
        self.cell().store(seen + 1, Ordering::SeqCst);
    }

    fn cell(&self) -> &AtomicU64 {
        // SAFETY: the mapping lives as long as self; atomics make concurrent access from
        // several processes defined behaviour (each load and store is whole, though the
        // read-yield-write sequence above is deliberately not).
        unsafe { self.cell.as_ref() }
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `new` with this length and is not used after this.
        let _ = unsafe { munmap(self.cell.cast(), self.len.get()) };
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
    let counter = SharedCounter::new()?;
    // The children start when the write end closes: all at once, so that they really overlap.
    let (start_read, start_write) = pipe().map_err(sys("pipe"))?;
    let mut children = Vec::with_capacity(processes);
    let mut forked = Ok(());
    for _ in 0..processes {
        // SAFETY: the child only uses the counter, the semaphore and the pipe, then `_exit`s.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(start_write);
                exit_child(|| {
                    // Returns at EOF: when the parent has forked everyone (or given up).
                    let _ = File::from(start_read).read(&mut [0u8; 1]);
                    for _ in 0..iterations {
                        if let Some(semaphore) = lock {
                            if semaphore.wait().is_err() {
                                return 1;
                            }
                        }
                        counter.increment_racily();
                        if let Some(semaphore) = lock {
                            if semaphore.post().is_err() {
                                return 1;
                            }
                        }
                    }
                    0
                })
            }
            Ok(ForkResult::Parent { child }) => children.push(child),
            Err(errno) => {
                forked = Err(Error::Sys {
                    call: "fork",
                    errno,
                });
                break;
            }
        }
    }
    drop((start_read, start_write));
    // Reap every child that was forked, even if a fork failed.
    let mut outcome = forked;
    for child in children {
        let ended = reap(child);
        if outcome.is_ok() {
            outcome = ended;
        }
    }
    outcome.map(|()| counter.get())
}

fn exit_child(f: impl FnOnce() -> i32) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: ends the child at once, without running the parent's destructors (which would
    // remove the semaphore set and unmap the counter).
    unsafe { libc::_exit(code) }
}

fn reap(pid: Pid) -> Result<()> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => {
                return Err(Error::ChildFailed {
                    pid,
                    how: format!("exited with {code}"),
                })
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Err(Error::ChildFailed {
                    pid,
                    how: format!("killed by {signal}"),
                })
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "waitpid",
                    errno,
                })
            }
        }
    }
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
    // The lock belongs to the open file description, which this duplicate shares with the
    // LogFile; dropping the Flock unlocks it.
    _held: Flock<File>,
    _file: PhantomData<&'a LogFile>,
}

impl LogFile {
    /// Task 3: open (creating it with mode 0o644 if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<LogFile> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
            .map_err(io_error("open"))?;
        Ok(LogFile { file })
    }

    /// Task 3: take the exclusive lock, waiting while another process holds it.
    pub fn lock(&self) -> Result<LogLock<'_>> {
        self.flock(FlockArg::LockExclusive)
            .map(|lock| lock.expect("a blocking request does not return EWOULDBLOCK"))
    }

    /// Task 3: take the exclusive lock if it is free now; `Ok(None)` if another holds it ("would
    /// block").
    pub fn try_lock(&self) -> Result<Option<LogLock<'_>>> {
        self.flock(FlockArg::LockExclusiveNonblock)
    }

    /// Task 3: append one record, each line with its own `write` (a line break after each),
    /// holding the lock throughout, so that records of concurrent writers never interleave.
    pub fn append_record(&self, lines: &[&str]) -> Result<()> {
        let _lock = self.lock()?;
        let mut file = &self.file;
        for line in lines {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            file.write_all(&bytes).map_err(io_error("write"))?;
        }
        Ok(())
    }

    fn flock(&self, how: FlockArg) -> Result<Option<LogLock<'_>>> {
        loop {
            let file = self.file.try_clone().map_err(io_error("dup"))?;
            match Flock::lock(file, how) {
                Ok(held) => {
                    return Ok(Some(LogLock {
                        _held: held,
                        _file: PhantomData,
                    }))
                }
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, Errno::EINTR)) => continue,
                Err((_, errno)) => {
                    return Err(Error::Sys {
                        call: "flock",
                        errno,
                    })
                }
            }
        }
    }
}
