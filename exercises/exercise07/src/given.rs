//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use nix::errno::Errno;
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
