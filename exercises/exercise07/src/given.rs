//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::fs::File;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use nix::errno::Errno;
use nix::mqueue::MqdT;
use nix::unistd::Pid;

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
    /// A child process of [`count_in_processes`](crate::count_in_processes) did not finish its
    /// work.
    #[error("counting child {pid} did not finish normally: {how}")]
    ChildFailed { pid: Pid, how: String },
    /// Bonus: a POSIX IPC name is `/` followed by 1 to 251 (semaphores) or 255 characters, with
    /// no other `/`.
    #[error("invalid POSIX IPC name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    /// Bonus: creating an object whose name exists already (EEXIST).
    #[error("{name} already exists: another POSIX IPC object of this kind has that name")]
    NameTaken { name: String },
    /// Bonus: opening a name that nothing has (ENOENT).
    #[error("no POSIX IPC object of this kind is named {name}: it was never created, or it was unlinked")]
    NoSuchName { name: String },
    /// Bonus: a POSIX semaphore holds 0 to `SEM_VALUE_MAX`.
    #[error("invalid semaphore value {value}: a POSIX semaphore holds at most {SEM_VALUE_MAX}")]
    ValueTooLarge { value: u32 },
    /// Bonus: a shared memory segment of size 0 (asked for, or not yet sized by its creator).
    #[error("shared memory segment {name} has size 0: a segment needs a size, set with ftruncate")]
    EmptySegment { name: String },
    /// Bonus: an access beyond the end of a shared memory segment.
    #[error("bytes {offset}..{offset}+{len} lie outside the {size}-byte shared memory segment")]
    OutOfBounds {
        offset: usize,
        len: usize,
        size: usize,
    },
    /// Bonus: a message queue priority must lie below `MQ_PRIO_MAX`.
    #[error("invalid priority {priority}: POSIX message queue priorities lie below {MQ_PRIO_MAX}")]
    InvalidPriority { priority: u32 },
    /// Bonus: a message longer than the queue's message size (EMSGSIZE).
    #[error(
        "a {len}-byte message does not fit this queue, whose messages hold at most {max} bytes"
    )]
    MessageTooLong { len: usize, max: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The largest value a POSIX semaphore can hold (`SEM_VALUE_MAX` on Linux).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// Message queue priorities lie in `0..MQ_PRIO_MAX` (32768 on Linux).
pub const MQ_PRIO_MAX: u32 = 32768;

/// [`MessageQueue::create`](crate::MessageQueue::create) makes queues of at most this many
/// messages…
pub const MQ_MAX_MESSAGES: usize = 10;

/// …of at most this many bytes each (the defaults of `/proc/sys/fs/mqueue`).
pub const MQ_MESSAGE_SIZE: usize = 8192;

// ---------------------------------------------------------------------------------------------
// Semaphores (tasks 1, 2 and 4)

/// A System V semaphore set with one semaphore, private to this process and the children it
/// forks. It is removed (`IPC_RMID`) when this value is dropped, also while unwinding from a
/// panic. Children that inherit it must end with `_exit`, so that they do not remove it too.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Semaphore {
    pub(crate) id: i32,
}

impl Semaphore {
    /// The set's identifier (`semid`), as `ipcs -s` and `/proc/sysvipc/sem` show it.
    pub fn id(&self) -> i32 {
        self.id
    }
}

/// Holds the semaphore taken by [`Semaphore::lock`]; gives it back when dropped. If the process
/// dies first, the kernel gives it back (`SEM_UNDO`).
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct SemaphoreGuard<'a> {
    pub(crate) semaphore: &'a Semaphore,
}

// ---------------------------------------------------------------------------------------------
// A counter in shared memory (task 1)

/// A `u64` in a shared anonymous mapping: this process and every child it forks afterwards see
/// (and change) the same memory.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct SharedCounter {
    pub(crate) cell: NonNull<AtomicU64>,
    pub(crate) len: NonZeroUsize,
    // Not Send or Sync: the mapping belongs to this process's address space.
    pub(crate) _not_send: PhantomData<*mut u64>,
}

// ---------------------------------------------------------------------------------------------
// File locks (task 3)

/// A log file that several processes append records to.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct LogFile {
    pub(crate) file: File,
}

// ---------------------------------------------------------------------------------------------
// Bonus: POSIX IPC (ungraded)

/// The mode of every object the bonus tasks create: read and write for the owner only.
pub(crate) const POSIX_MODE: u32 = 0o600;

/// Which family a [`PosixName`] belongs to, and so which call unlinks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PosixKind {
    Semaphore,
    SharedMemory,
    MessageQueue,
}

/// Bonus: the name of a POSIX IPC object this process created. Dropping it unlinks the name
/// (`sem_unlink`, `shm_unlink` or `mq_unlink`), also while unwinding from a panic; the object
/// itself lives on until the last process that has it open closes it. Children that inherit it
/// must end with `_exit`, so that they do not unlink it too.
///
/// Every `open` and `create` of the bonus types first checks the name: `/`, then 1 to 255
/// characters (251 for a semaphore, whose file is `sem.` + name) with no other `/`, else
/// [`Error::InvalidName`]. EEXIST is [`Error::NameTaken`], ENOENT [`Error::NoSuchName`].
#[derive(Debug)]
pub struct PosixName {
    // pub(crate): the bonus `create` functions in lib.rs build the name, and its `unlink` and
    // Drop (yours, in lib.rs) unlink by kind.
    pub(crate) kind: PosixKind,
    pub(crate) name: std::ffi::CString,
}

impl PosixName {
    /// The name, as given to `create`.
    pub fn as_str(&self) -> &str {
        // Made from a &str, so valid UTF-8.
        self.name.to_str().unwrap_or_default()
    }
}

/// Bonus: a POSIX named semaphore, opened by name (`sem_open`). glibc keeps it in a small file,
/// `/dev/shm/sem.<name>`, that every process using it maps; the value changes with atomic
/// instructions, and the kernel is entered (a futex) only to sleep or to wake a sleeper. Dropping
/// the handle closes it (`sem_close`); the name stays until unlinked.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct NamedSemaphore {
    pub(crate) sem: NonNull<libc::sem_t>,
}

/// Bonus: a POSIX shared memory segment (`shm_open` + `mmap`), a file in the tmpfs at
/// `/dev/shm` that every process mapping it shares. Dropping the handle unmaps it; the segment
/// stays until its name is unlinked and the last mapping is gone.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct SharedMemory {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) size: NonZeroUsize,
    // Not Send or Sync: the mapping belongs to this process's address space.
    pub(crate) _not_send: PhantomData<*mut u8>,
}

impl SharedMemory {
    /// The segment's size in bytes.
    pub fn size(&self) -> usize {
        self.size.get()
    }
}

/// Bonus: a POSIX message queue (`mq_open`). Each message has a priority, and `receive` always
/// returns the oldest message of the highest priority, whereas System V's `msgrcv` chooses by
/// type. On Linux the descriptor is a file descriptor: reading the file (as
/// `/dev/mqueue/<name>`) shows `QSIZE`, the bytes queued. Dropping the handle closes it.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct MessageQueue {
    // Closed by Drop (nix's MqdT does not close itself).
    pub(crate) mqd: ManuallyDrop<MqdT>,
    pub(crate) message_size: usize,
}

impl AsFd for MessageQueue {
    /// The queue's file descriptor, as `/proc/<pid>/fd` lists it.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd.as_fd()
    }
}
