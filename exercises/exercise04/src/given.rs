//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::fmt;
use std::path::PathBuf;

use nix::errno::Errno;

/// The project id this exercise gives `ftok` to turn a file into a key.
pub const PROJECT_ID: i32 = 4;

/// The identifier of a segment, as `shmget` returns it. Any process may use it (permissions
/// allowing): ids are system-wide, unlike file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// The field is `pub(crate)`: the functions you write in `lib.rs` use it.
pub struct ShmId(pub(crate) i32);

impl ShmId {
    pub fn from_raw(id: i32) -> ShmId {
        ShmId(id)
    }

    pub fn as_raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for ShmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed for a reason not listed below.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// `shmget` refused a segment this large.
    #[error(
        "a segment of {size} bytes is larger than the kernel allows for one segment \
         (see /proc/sys/kernel/shmmax)"
    )]
    TooLarge { size: usize },
    /// A segment needs at least one byte.
    #[error("a shared-memory segment cannot be empty: ask for at least one byte")]
    ZeroSize,
    /// The system-wide limits on shared memory are reached.
    #[error(
        "no room for another segment: the system-wide limit on segments (kernel.shmmni) or on \
         shared pages (kernel.shmall) is reached"
    )]
    NoSpace,
    /// No segment has this id: it never existed, or it was removed and its last attachment is
    /// gone.
    #[error("no shared-memory segment with id {id}: it never existed, or it was removed")]
    NoSuchSegment { id: ShmId },
    /// The segment's owner and mode do not let this process use it.
    #[error(
        "permission denied for shared-memory segment {id}: its owner and mode do not allow it"
    )]
    PermissionDenied { id: ShmId },
    /// `ftok` could not turn the file into a key (usually: the file does not exist).
    #[error("cannot make a key from {}: ftok failed: {errno}", path.display())]
    KeyFile { path: PathBuf, errno: Errno },
    /// No segment was created under this key.
    #[error("no shared-memory segment exists for key {key:#x} (made by ftok from {})", path.display())]
    NoSuchKey { path: PathBuf, key: i32 },
    /// A segment already exists under this key.
    #[error("a shared-memory segment already exists for key {key:#x} (made by ftok from {})", path.display())]
    AlreadyExists { path: PathBuf, key: i32 },
    /// The segment cannot hold the header of the structure laid out in it.
    #[error("a segment of {size} bytes is too small for this: it needs at least {needed} bytes")]
    TooSmall { size: usize, needed: usize },
    /// The message does not fit the mailbox.
    #[error("a message of {len} bytes does not fit the mailbox, which holds {capacity} bytes")]
    MessageTooLong { len: usize, capacity: usize },
    /// The consumer of a ring dropped its end: nobody will ever read what is written.
    #[error("the ring's consumer has gone: {written} bytes were written before it left")]
    ConsumerGone { written: usize },
}

pub type Result<T> = std::result::Result<T, Error>;
