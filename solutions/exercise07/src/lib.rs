//! Exercise 07: semaphores and locks — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 4, then, if you like, the ungraded bonus
// STARTER: //! tasks at the end). The task statement is in `README.md` beside this file; `cargo ipclab hint 7`
// STARTER: //! gives hints; `cargo test -p exercise07` grades your work.
//!
//! Processes that share memory share its races: `counter += 1` is a read and a write, and two
//! processes can both read the old value. A System V semaphore is a counter the kernel keeps,
//! with a wait queue: `semop(-1)` (P, "wait") takes one unit or sleeps until one is there,
//! `semop(+1)` (V, "post") gives one back and wakes a sleeper. A file lock does the same job for
//! writers of one file.
//!
//! Like a message queue, a semaphore set outlives its creator until `IPC_RMID`, so
//! [`Semaphore`] removes it on drop. `nix` does not wrap System V IPC: those calls use `libc`.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

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
#[path = "../../../exercises/exercise07/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}

fn io_error(call: &'static str) -> impl Fn(io::Error) -> Error {
    move |e| Error::Sys {
        call,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// Semaphores

// Given in `given.rs`: [`Semaphore`] (its `id` field and accessor) and [`SemaphoreGuard`].

impl Semaphore {
    /// Task 1: a new semaphore set of one semaphore with permission bits `mode`, whose value
    /// starts at `initial` (task 4: 0 to [`SEMVMX`], else [`Error::InvalidValue`]).
    pub fn new(initial: i32, mode: u32) -> Result<Semaphore> {
        // BEGIN SOLUTION Task 1: semget(IPC_PRIVATE, 1, IPC_CREAT | IPC_EXCL | mode), then semctl(SETVAL, initial); task 4: check the value and mode first
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
        // END SOLUTION
    }

    /// Task 1: the current value (`semctl(GETVAL)`).
    pub fn value(&self) -> Result<i32> {
        // BEGIN SOLUTION Task 1: semctl(id, 0, GETVAL)
        self.get(libc::GETVAL, "semctl(GETVAL)")
        // END SOLUTION
    }

    /// Task 2: how many processes are asleep in the semaphore's wait queue (`semctl(GETNCNT)`).
    pub fn waiters(&self) -> Result<i32> {
        // BEGIN SOLUTION Task 2: semctl(id, 0, GETNCNT)
        self.get(libc::GETNCNT, "semctl(GETNCNT)")
        // END SOLUTION
    }

    /// Task 1: P. Take one unit, sleeping until one is available.
    pub fn wait(&self) -> Result<()> {
        // BEGIN SOLUTION Task 1: semop with one sembuf {{ sem_num: 0, sem_op: -1, sem_flg: 0 }}, retried on EINTR
        self.op(-1, 0).map(|_| ())
        // END SOLUTION
    }

    /// Task 1: V. Give one unit back, waking a sleeper.
    pub fn post(&self) -> Result<()> {
        // BEGIN SOLUTION Task 1: semop with sem_op +1
        self.op(1, 0).map(|_| ())
        // END SOLUTION
    }

    /// Task 2: P without sleeping: `Ok(false)` if no unit is available now.
    pub fn try_wait(&self) -> Result<bool> {
        // BEGIN SOLUTION Task 2: semop -1 with IPC_NOWAIT; EAGAIN means Ok(false)
        self.op(-1, libc::IPC_NOWAIT)
        // END SOLUTION
    }

    /// Task 2: take one unit with `SEM_UNDO`, so that the kernel gives it back if this process
    /// exits or is killed while holding it; the guard gives it back when dropped.
    pub fn lock(&self) -> Result<SemaphoreGuard<'_>> {
        // BEGIN SOLUTION Task 2: semop -1 with SEM_UNDO; the guard's Drop does +1 with SEM_UNDO
        self.op(-1, libc::SEM_UNDO)?;
        Ok(SemaphoreGuard { semaphore: self })
        // END SOLUTION
    }

    /// Task 4: remove the set now (`IPC_RMID`), reporting failure. Processes asleep on it wake up
    /// with EIDRM.
    pub fn remove(self) -> Result<()> {
        // BEGIN SOLUTION Task 4: semctl(IPC_RMID), and make sure Drop does not remove it a second time
        let id = self.id;
        // Removed here, not again in Drop.
        std::mem::forget(self);
        rmid(id)
        // END SOLUTION
    }

    // BEGIN SOLUTION
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
    // END SOLUTION
}

impl Drop for Semaphore {
    /// Task 4: the guard that removes the set, on return and while unwinding alike.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 4: semctl(IPC_RMID). Until then, sets stay behind: `ipcs -s` lists them, `ipcrm -s
        // STARTER: // ID` removes them by hand.
        let _ = rmid(self.id);
        // END SOLUTION
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 2: semop +1 with SEM_UNDO (which cancels the undo entry the P made).
        // V with SEM_UNDO cancels the undo entry the P made. Failure means the set is gone.
        let _ = self.semaphore.op(1, libc::SEM_UNDO);
        // END SOLUTION
    }
}

// BEGIN SOLUTION
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
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// A counter in shared memory

// Given in `given.rs`: [`SharedCounter`] and its fields.

impl SharedCounter {
    /// Task 1: map one shared, anonymous page (`MAP_SHARED | MAP_ANONYMOUS`) holding 0.
    pub fn new() -> Result<SharedCounter> {
        // BEGIN SOLUTION Task 1: mmap_anonymous of 8 bytes, PROT_READ | PROT_WRITE, MAP_SHARED
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
        // END SOLUTION
    }

    /// Task 1: the current value.
    pub fn get(&self) -> u64 {
        // BEGIN SOLUTION Task 1: load the value from the shared mapping
        self.cell().load(Ordering::SeqCst)
        // END SOLUTION
    }

    /// Task 1: `counter += 1` done the unsafe way on purpose: read the value, `sched_yield`,
    /// write the value read plus one. Another process that runs in between loses its update.
    pub fn increment_racily(&self) {
        // BEGIN SOLUTION Task 1: load, sched_yield, store the loaded value + 1
        let seen = self.cell().load(Ordering::SeqCst);
        // Widens the window between read and write, so that the race shows.
        let _ = nix::sched::sched_yield();
        self.cell().store(seen + 1, Ordering::SeqCst);
        // END SOLUTION
    }

    // BEGIN SOLUTION
    fn cell(&self) -> &AtomicU64 {
        // SAFETY: the mapping lives as long as self; atomics make concurrent access from
        // several processes defined behaviour (each load and store is whole, though the
        // read-yield-write sequence above is deliberately not).
        unsafe { self.cell.as_ref() }
    }
    // END SOLUTION
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 1: munmap the mapping.
        // SAFETY: the mapping was made by `new` with this length and is not used after this.
        let _ = unsafe { munmap(self.cell.cast(), self.len.get()) };
        // END SOLUTION
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
    // BEGIN SOLUTION Task 1: a SharedCounter, fork the children (they start together), each increments `iterations` times between wait and post if locked, then waitpid them all
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
    // END SOLUTION
}

// BEGIN SOLUTION
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
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// File locks

// Given in `given.rs`: [`LogFile`] and its field. The fields of [`LogLock`] are yours.

/// An exclusive lock on a [`LogFile`], released when dropped (or when the process ends).
#[derive(Debug)]
pub struct LogLock<'a> {
    // BEGIN SOLUTION
    // STARTER: // One way: a duplicate of the LogFile's descriptor, locked with nix's `Flock` (flock locks
    // STARTER: // belong to the open file description, which the duplicate shares); dropping it unlocks.
    // STARTER: // Change the fields if you choose fcntl record locks instead.
    // STARTER: _held: Flock<File>,
    // STARTER: _file: PhantomData<&'a LogFile>,
    // Ties the lock to the LogFile it was taken on.
    _file: PhantomData<&'a LogFile>,
    // The lock belongs to the open file description, which this duplicate shares with the
    // LogFile; dropping the Flock unlocks it.
    _held: Flock<File>,
    // END SOLUTION
}

impl LogFile {
    /// Task 3: open (creating it with mode 0o644 if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<LogFile> {
        // BEGIN SOLUTION Task 3: open for appending (O_APPEND), creating it with mode 0o644
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
            .map_err(io_error("open"))?;
        Ok(LogFile { file })
        // END SOLUTION
    }

    /// Task 3: take the exclusive lock, waiting while another process holds it.
    pub fn lock(&self) -> Result<LogLock<'_>> {
        // BEGIN SOLUTION Task 3: an exclusive lock that waits: flock(LOCK_EX) or fcntl(F_SETLKW, F_WRLCK)
        self.flock(FlockArg::LockExclusive)
            .map(|lock| lock.expect("a blocking request does not return EWOULDBLOCK"))
        // END SOLUTION
    }

    /// Task 3: take the exclusive lock if it is free now; `Ok(None)` if another holds it ("would
    /// block").
    pub fn try_lock(&self) -> Result<Option<LogLock<'_>>> {
        // BEGIN SOLUTION Task 3: an exclusive lock that does not wait (LOCK_NB or F_SETLK); EWOULDBLOCK/EAGAIN means Ok(None)
        self.flock(FlockArg::LockExclusiveNonblock)
        // END SOLUTION
    }

    /// Task 3: append one record, each line with its own `write` (a line break after each),
    /// holding the lock throughout, so that records of concurrent writers never interleave.
    pub fn append_record(&self, lines: &[&str]) -> Result<()> {
        // BEGIN SOLUTION Task 3: hold the lock while writing each line (with its line break) with its own write
        let _lock = self.lock()?;
        let mut file = &self.file;
        for line in lines {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            file.write_all(&bytes).map_err(io_error("write"))?;
        }
        Ok(())
        // END SOLUTION
    }

    // BEGIN SOLUTION
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
    // END SOLUTION
}

// ---------------------------------------------------------------------------------------------
// BEGIN SOLUTION
// STARTER: // Bonus: POSIX IPC (ungraded)
// Bonus: POSIX IPC
// END SOLUTION
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
        // BEGIN SOLUTION Bonus: sem_unlink, shm_unlink or mq_unlink by kind, and make sure Drop does not unlink a second time
        let outcome = unlink(self.kind, &self.name);
        // Unlinked here, not again in Drop.
        std::mem::forget(self);
        outcome
        // END SOLUTION
    }
}

impl Drop for PosixName {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Bonus: unlink the name by kind (sem_unlink, nix's shm_unlink or mq_unlink). Until
        // STARTER: // then, names stay behind: `ls /dev/shm` lists them, `rm /dev/shm/<name>` removes one.
        let _ = unlink(self.kind, &self.name);
        // END SOLUTION
    }
}

// BEGIN SOLUTION
fn unlink(kind: PosixKind, name: &CStr) -> Result<()> {
    let outcome = match kind {
        PosixKind::Semaphore => {
            // SAFETY: `name` is a valid NUL-terminated string.
            Errno::result(unsafe { libc::sem_unlink(name.as_ptr()) }).map(drop)
        }
        PosixKind::SharedMemory => shm_unlink(name),
        PosixKind::MessageQueue => mq_unlink(name),
    };
    outcome.map_err(|errno| posix_error(kind_unlink_call(kind), name, errno))
}

fn kind_unlink_call(kind: PosixKind) -> &'static str {
    match kind {
        PosixKind::Semaphore => "sem_unlink",
        PosixKind::SharedMemory => "shm_unlink",
        PosixKind::MessageQueue => "mq_unlink",
    }
}

/// Checks a POSIX IPC name before any system call: `/`, then 1 to 255 characters without `/`
/// (251 for a semaphore, whose file is `sem.` + name).
fn posix_name(kind: PosixKind, name: &str) -> Result<CString> {
    let invalid = |why| Error::InvalidName {
        name: name.to_owned(),
        why,
    };
    let Some(rest) = name.strip_prefix('/') else {
        return Err(invalid("it must start with '/'"));
    };
    let max = if kind == PosixKind::Semaphore {
        251
    } else {
        255
    };
    if rest.is_empty() || rest == "." || rest == ".." {
        return Err(invalid("it needs a name after the '/'"));
    }
    if rest.contains('/') {
        return Err(invalid("it may hold no '/' after the first"));
    }
    if rest.len() > max {
        return Err(invalid("it is longer than the kernel allows (NAME_MAX)"));
    }
    CString::new(name).map_err(|_| invalid("it contains a NUL byte"))
}

/// EEXIST and ENOENT name their cause; other errors name the call.
fn posix_error(call: &'static str, name: &CStr, errno: Errno) -> Error {
    let name = name.to_string_lossy().into_owned();
    match errno {
        Errno::EEXIST => Error::NameTaken { name },
        Errno::ENOENT => Error::NoSuchName { name },
        errno => Error::Sys { call, errno },
    }
}
// END SOLUTION

// --- Bonus 1: a named semaphore

impl NamedSemaphore {
    /// Bonus: create the semaphore `name` (it must not exist yet) with value `initial` (at most
    /// [`SEM_VALUE_MAX`], else [`Error::ValueTooLarge`]) and mode 0o600. Returns the handle and
    /// the name, which unlinks on drop.
    pub fn create(name: &str, initial: u32) -> Result<(NamedSemaphore, PosixName)> {
        // BEGIN SOLUTION Bonus: check the name, then libc::sem_open(name, O_CREAT | O_EXCL, 0o600, initial); SEM_FAILED means an error
        let cname = posix_name(PosixKind::Semaphore, name)?;
        if initial > SEM_VALUE_MAX {
            return Err(Error::ValueTooLarge { value: initial });
        }
        let semaphore = sem_open(
            &cname,
            libc::O_CREAT | libc::O_EXCL,
            Some((POSIX_MODE, initial)),
        )?;
        let owned = PosixName {
            kind: PosixKind::Semaphore,
            name: cname,
        };
        Ok((semaphore, owned))
        // END SOLUTION
    }

    /// Bonus: open the existing semaphore `name`.
    pub fn open(name: &str) -> Result<NamedSemaphore> {
        // BEGIN SOLUTION Bonus: check the name, then libc::sem_open(name, 0)
        let cname = posix_name(PosixKind::Semaphore, name)?;
        sem_open(&cname, 0, None)
        // END SOLUTION
    }

    /// Bonus: P. Take one unit, sleeping until one is available.
    pub fn wait(&self) -> Result<()> {
        // BEGIN SOLUTION Bonus: libc::sem_wait, retried on EINTR
        loop {
            // SAFETY: `sem` came from sem_open and stays valid until Drop closes it.
            if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR => continue,
                errno => return Err(sys("sem_wait")(errno)),
            }
        }
        // END SOLUTION
    }

    /// Bonus: V. Give one unit back, waking a sleeper.
    pub fn post(&self) -> Result<()> {
        // BEGIN SOLUTION Bonus: libc::sem_post
        // SAFETY: as in `wait`.
        Errno::result(unsafe { libc::sem_post(self.sem.as_ptr()) })
            .map(drop)
            .map_err(sys("sem_post"))
        // END SOLUTION
    }

    /// Bonus: the current value (`sem_getvalue`).
    pub fn value(&self) -> Result<u32> {
        // BEGIN SOLUTION Bonus: libc::sem_getvalue
        let mut value: libc::c_int = 0;
        // SAFETY: as in `wait`; `value` is a valid int to write to.
        Errno::result(unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut value) })
            .map_err(sys("sem_getvalue"))?;
        // Linux reports 0, never a negative count of waiters.
        Ok(u32::try_from(value).unwrap_or(0))
        // END SOLUTION
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Bonus: libc::sem_close (which unmaps the semaphore's file).
        // SAFETY: `sem` came from sem_open and is not used after this.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
        // END SOLUTION
    }
}

// BEGIN SOLUTION
/// `sem_open`, with `(mode, value)` when creating.
fn sem_open(name: &CStr, flags: libc::c_int, create: Option<(u32, u32)>) -> Result<NamedSemaphore> {
    let sem = match create {
        // SAFETY: with O_CREAT, sem_open reads a mode_t and an unsigned int value, which are
        // passed here as the variadic arguments it expects; `name` is NUL-terminated.
        Some((mode, value)) => unsafe {
            libc::sem_open(
                name.as_ptr(),
                flags,
                mode as libc::mode_t as libc::c_uint,
                value as libc::c_uint,
            )
        },
        // SAFETY: without O_CREAT, sem_open reads no further argument.
        None => unsafe { libc::sem_open(name.as_ptr(), flags) },
    };
    if sem == libc::SEM_FAILED {
        return Err(posix_error("sem_open", name, Errno::last()));
    }
    NonNull::new(sem)
        .map(|sem| NamedSemaphore { sem })
        .ok_or(Error::Sys {
            call: "sem_open",
            errno: Errno::EINVAL,
        })
}
// END SOLUTION

/// Bonus: like [`count_in_processes`] with a lock, but each child opens the named semaphore
/// `name` itself (`NamedSemaphore::open`) rather than inheriting a handle, and does every
/// increment between its `wait` and `post`. Returns the final count.
pub fn count_with_named_semaphore(name: &str, processes: usize, iterations: usize) -> Result<u64> {
    // BEGIN SOLUTION Bonus: as count_in_processes, but each child opens the semaphore by name after fork
    // Checked here, so that a bad name is an error of the caller, not of every child.
    posix_name(PosixKind::Semaphore, name)?;
    let counter = SharedCounter::new()?;
    let (start_read, start_write) = pipe().map_err(sys("pipe"))?;
    let mut children = Vec::with_capacity(processes);
    let mut forked = Ok(());
    for _ in 0..processes {
        // SAFETY: the child only opens the semaphore and uses it, the counter and the pipe, then
        // `_exit`s.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(start_write);
                exit_child(|| {
                    let _ = File::from(start_read).read(&mut [0u8; 1]);
                    let Ok(semaphore) = NamedSemaphore::open(name) else {
                        return 2;
                    };
                    for _ in 0..iterations {
                        if semaphore.wait().is_err() {
                            return 1;
                        }
                        counter.increment_racily();
                        if semaphore.post().is_err() {
                            return 1;
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
    let mut outcome = forked;
    for child in children {
        let ended = reap(child);
        if outcome.is_ok() {
            outcome = ended;
        }
    }
    outcome.map(|()| counter.get())
    // END SOLUTION
}

// --- Bonus 2: named shared memory

impl SharedMemory {
    /// Bonus: create the segment `name` (it must not exist yet) with mode 0o600, give it `size`
    /// bytes (`ftruncate`; they start zeroed; 0 is [`Error::EmptySegment`]) and map it shared,
    /// readable and writable.
    pub fn create(name: &str, size: usize) -> Result<(SharedMemory, PosixName)> {
        // BEGIN SOLUTION Bonus: shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600), ftruncate, mmap(MAP_SHARED), then close the descriptor
        let cname = posix_name(PosixKind::SharedMemory, name)?;
        let empty = || Error::EmptySegment {
            name: name.to_owned(),
        };
        let size = NonZeroUsize::new(size).ok_or_else(empty)?;
        let length = libc::off_t::try_from(size.get()).map_err(|_| Error::Sys {
            call: "ftruncate",
            errno: Errno::EFBIG,
        })?;
        let fd = shm_open(
            cname.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(POSIX_MODE),
        )
        .map_err(|errno| posix_error("shm_open", &cname, errno))?;
        // Owned from here on: an error below unlinks the name again.
        let owned = PosixName {
            kind: PosixKind::SharedMemory,
            name: cname,
        };
        ftruncate(&fd, length).map_err(sys("ftruncate"))?;
        // The descriptor closes at the end of this function: the mapping keeps the segment.
        let memory = SharedMemory::map(&fd, size)?;
        Ok((memory, owned))
        // END SOLUTION
    }

    /// Bonus: open and map the existing segment `name`, at the size its creator gave it.
    pub fn open(name: &str) -> Result<SharedMemory> {
        // BEGIN SOLUTION Bonus: shm_open(name, O_RDWR), the size from fstat, mmap(MAP_SHARED)
        let cname = posix_name(PosixKind::SharedMemory, name)?;
        let fd = shm_open(
            cname.as_c_str(),
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| posix_error("shm_open", &cname, errno))?;
        let stat = fstat(&fd).map_err(sys("fstat"))?;
        let size = usize::try_from(stat.st_size)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| Error::EmptySegment {
                name: name.to_owned(),
            })?;
        SharedMemory::map(&fd, size)
        // END SOLUTION
    }

    // BEGIN SOLUTION
    fn map(fd: &OwnedFd, size: NonZeroUsize) -> Result<SharedMemory> {
        // SAFETY: a new mapping of the whole segment overlaps no Rust object.
        let ptr = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                0,
            )
        }
        .map_err(sys("mmap"))?;
        Ok(SharedMemory {
            ptr: ptr.cast(),
            size,
            _not_send: PhantomData,
        })
    }
    // END SOLUTION

    /// Bonus: copy `bytes` into the segment at `offset`; [`Error::OutOfBounds`] if they do not
    /// fit. Another process sees them at once: synchronise (a semaphore, a pipe) before it reads.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        // BEGIN SOLUTION Bonus: check the range (without overflow), then copy into the mapping
        self.check(offset, bytes.len())?;
        // SAFETY: the range lies inside the mapping (checked above), which lives as long as
        // self; no Rust reference into the mapping exists, and `bytes` is not in it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            )
        };
        Ok(())
        // END SOLUTION
    }

    /// Bonus: copy `buf.len()` bytes of the segment from `offset` into `buf`.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        // BEGIN SOLUTION Bonus: check the range (without overflow), then copy out of the mapping
        self.check(offset, buf.len())?;
        // SAFETY: as in `write_at`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
        // END SOLUTION
    }

    // BEGIN SOLUTION
    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size.get() => Ok(()),
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: self.size.get(),
            }),
        }
    }
    // END SOLUTION
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Bonus: munmap the whole segment.
        // SAFETY: the mapping was made by `map` with this size and is not used after this.
        let _ = unsafe { munmap(self.ptr.cast(), self.size.get()) };
        // END SOLUTION
    }
}

// --- Bonus 3: a message queue with priorities

impl MessageQueue {
    /// Bonus: create the queue `name` (it must not exist yet), mode 0o600, for
    /// [`MQ_MAX_MESSAGES`] messages of up to [`MQ_MESSAGE_SIZE`] bytes, open for sending and
    /// receiving.
    pub fn create(name: &str) -> Result<(MessageQueue, PosixName)> {
        // BEGIN SOLUTION Bonus: mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600, Some(&MqAttr::new(0, 10, 8192, 0))): with None, nix 0.32 drops the mode too
        let cname = posix_name(PosixKind::MessageQueue, name)?;
        // Message counts and sizes are small constants: they fit the attribute type.
        let attr = MqAttr::new(0, MQ_MAX_MESSAGES as _, MQ_MESSAGE_SIZE as _, 0);
        // Always with Some(attr): nix 0.32 passes neither mode nor attributes without it.
        let mqd = mq_open(
            cname.as_c_str(),
            MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(POSIX_MODE),
            Some(&attr),
        )
        .map_err(|errno| posix_error("mq_open", &cname, errno))?;
        let owned = PosixName {
            kind: PosixKind::MessageQueue,
            name: cname,
        };
        let queue = MessageQueue::new(mqd)?;
        Ok((queue, owned))
        // END SOLUTION
    }

    /// Bonus: open the existing queue `name` for sending and receiving.
    pub fn open(name: &str) -> Result<MessageQueue> {
        // BEGIN SOLUTION Bonus: mq_open(name, O_RDWR, Mode::empty(), None), and mq_getattr for its message size
        let cname = posix_name(PosixKind::MessageQueue, name)?;
        let mqd = mq_open(
            cname.as_c_str(),
            MQ_OFlag::O_RDWR | MQ_OFlag::O_CLOEXEC,
            Mode::empty(),
            None,
        )
        .map_err(|errno| posix_error("mq_open", &cname, errno))?;
        MessageQueue::new(mqd)
        // END SOLUTION
    }

    // BEGIN SOLUTION
    // STARTER: /// Bonus: send `message` with `priority` (below [`MQ_PRIO_MAX`], else
    // STARTER: /// [`Error::InvalidPriority`]; a message longer than the queue's is
    // STARTER: /// [`Error::MessageTooLong`]), waiting while the queue is full.
    fn new(mqd: MqdT) -> Result<MessageQueue> {
        // Owned from here on: an error below closes the descriptor again.
        let mut queue = MessageQueue {
            mqd: ManuallyDrop::new(mqd),
            message_size: 0,
        };
        // The queue's message size, which may differ from ours if another program created it.
        let attr = mq_getattr(&queue.mqd).map_err(sys("mq_getattr"))?;
        queue.message_size = usize::try_from(attr.msgsize()).map_err(|_| Error::Sys {
            call: "mq_getattr",
            errno: Errno::EINVAL,
        })?;
        Ok(queue)
    }

    /// Bonus: send `message` with `priority` (below [`MQ_PRIO_MAX`]), waiting while the queue
    /// is full.
    // END SOLUTION
    pub fn send(&self, message: &[u8], priority: u32) -> Result<()> {
        // BEGIN SOLUTION Bonus: check the priority and length, then mq_send, retried on EINTR
        if priority >= MQ_PRIO_MAX {
            return Err(Error::InvalidPriority { priority });
        }
        if message.len() > self.message_size {
            return Err(self.too_long(message.len()));
        }
        loop {
            match mq_send(&self.mqd, message, priority) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EMSGSIZE) => return Err(self.too_long(message.len())),
                Err(errno) => return Err(sys("mq_send")(errno)),
            }
        }
        // END SOLUTION
    }

    /// Bonus: receive the oldest message of the highest priority queued, with its priority,
    /// waiting while the queue is empty.
    pub fn receive(&self) -> Result<(Vec<u8>, u32)> {
        // BEGIN SOLUTION Bonus: mq_receive into a buffer of the queue's message size (smaller fails with EMSGSIZE), retried on EINTR
        let mut buf = vec![0u8; self.message_size];
        let mut priority = 0;
        loop {
            match mq_receive(&self.mqd, &mut buf, &mut priority) {
                Ok(len) => {
                    buf.truncate(len);
                    return Ok((buf, priority));
                }
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(sys("mq_receive")(errno)),
            }
        }
        // END SOLUTION
    }

    /// Bonus: how many messages are queued now (`mq_getattr`).
    pub fn queued(&self) -> Result<usize> {
        // BEGIN SOLUTION Bonus: mq_getattr(..).curmsgs()
        let attr = mq_getattr(&self.mqd).map_err(sys("mq_getattr"))?;
        Ok(usize::try_from(attr.curmsgs()).unwrap_or(0))
        // END SOLUTION
    }

    // BEGIN SOLUTION
    fn too_long(&self, len: usize) -> Error {
        Error::MessageTooLong {
            len,
            max: self.message_size,
        }
    }
    // END SOLUTION
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Bonus: mq_close. It takes the MqdT by value: `ManuallyDrop::take` gives it once.
        // SAFETY: `mqd` is taken exactly once, here, and not used afterwards.
        let mqd = unsafe { ManuallyDrop::take(&mut self.mqd) };
        let _ = mq_close(mqd);
        // END SOLUTION
    }
}
