//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::unistd::Pid;

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
    /// `written`: how many bytes of the call's data the ring took before that (`write_all`
    /// counts them all; `write` fails only when it could copy none, so it says 0).
    #[error("the ring's consumer has gone: {written} bytes were written before it left")]
    ConsumerGone { written: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

// ---------------------------------------------------------------------------------------------
// Task 1: a segment and an attachment.

/// A segment this process created and owns: dropping it marks it for removal (`IPC_RMID`).
///
/// The segment lives on while processes are still attached; it disappears at the last detach.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Segment {
    pub(crate) id: ShmId,
    pub(crate) size: usize,
}

impl Segment {
    pub fn id(&self) -> ShmId {
        self.id
    }

    /// The size asked for at creation (the mapping itself is rounded up to whole pages).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Task 1: attaches the segment to this process; the same as [`Attachment::new`](crate::Attachment::new).
    pub fn attach(&self) -> Result<Attachment> {
        Attachment::new(self.id)
    }
}

/// The segment mapped into this process's address space. Dropping it detaches (`shmdt`).
///
/// Two attachments of one segment, in one process or in two, are two ranges of virtual addresses
/// backed by the same physical pages.
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Attachment {
    pub(crate) addr: NonNull<u8>,
    pub(crate) size: usize,
    pub(crate) id: ShmId,
    // Raw memory shared with other processes: not Sync (see the crate's notes on soundness).
    pub(crate) _not_sync: PhantomData<*mut u8>,
}

// SAFETY: an attachment is a mapping of the whole process; moving the handle to another thread
// moves nothing that belongs to the first one.
unsafe impl Send for Attachment {}

impl Attachment {
    pub fn id(&self) -> ShmId {
        self.id
    }

    /// The segment's size in bytes: the length of the slices below.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The first byte of the mapping, for code that builds its own structures in it.
    pub fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: what the kernel knows about a segment.

/// What `shmctl(IPC_STAT)` says about a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStatus {
    /// Size in bytes, as created.
    pub size: usize,
    /// Current number of attachments, in all processes.
    pub attachments: u64,
    /// The process that created it.
    pub creator: Pid,
    /// The last process that attached or detached it.
    pub last_attach_or_detach: Pid,
    /// `IPC_RMID` was requested; it disappears at the last detach.
    pub marked_for_removal: bool,
}

// ---------------------------------------------------------------------------------------------
// Task 2: a mailbox of one message each way.

/// Which end of a [`Mailbox`](crate::Mailbox) this process is. The host sends in one slot and receives from
/// the other; the guest does the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Usually the process that created the segment.
    Host,
    /// Usually the process that attached an existing segment.
    Guest,
}
