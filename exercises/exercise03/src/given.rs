//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::ops::Deref;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::unistd::Pid;

/// Where the kernel publishes the largest message text it accepts, in bytes.
pub const MSGMAX_PATH: &str = "/proc/sys/kernel/msgmax";
/// Where the kernel publishes the default capacity of a new queue, in bytes of message text.
pub const MSGMNB_PATH: &str = "/proc/sys/kernel/msgmnb";

/// The message type of every request in the client/server protocol of task 6. Replies carry the
/// client's pid as their type, and no client has pid 1, so requests and replies never mix.
pub const REQUEST_TYPE: i64 = 1;

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed for a reason none of the other variants names.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// `ftok` derives a key from an existing file: this one does not exist.
    #[error("no such file: {} (ftok derives the key from an existing file)", path.display())]
    NoSuchPath { path: PathBuf },
    /// `ftok` uses the low 8 bits of the project id, and 0 is not allowed.
    #[error("invalid project id 0: ftok needs a non-zero project id")]
    InvalidProjectId,
    /// Only the nine permission bits may be given as a queue's mode.
    #[error("invalid mode {mode:#o}: a queue's mode holds permission bits only (at most 0o777)")]
    InvalidMode { mode: u32 },
    /// `open` was given the private key, which never names an existing queue.
    #[error("a private key (IPC_PRIVATE) never names an existing queue: share the queue itself, or use a key from ftok")]
    PrivateKey,
    /// No queue exists for the key (ENOENT).
    #[error("no message queue exists for key {key:#x}")]
    NotFound { key: i32 },
    /// `create` found a queue with this key already (EEXIST).
    #[error("a message queue already exists for key {key:#x}")]
    AlreadyExists { key: i32 },
    /// The queue's mode does not grant this user read and write (EACCES).
    #[error("permission denied: the message queue for key {key:#x} does not grant this user read and write")]
    PermissionDenied { key: i32 },
    /// Message types are positive; 0 and negative values only select messages when receiving.
    #[error("invalid message type {mtype}: a message's type must be positive")]
    InvalidType { mtype: i64 },
    /// The message text is longer than the kernel's limit `msgmax`.
    #[error("message too large: {len} bytes, but the kernel accepts at most msgmax = {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// A non-blocking send found no room in the queue (EAGAIN with IPC_NOWAIT).
    #[error("the message queue is full: no room for another {len} bytes")]
    QueueFull { len: usize },
    /// The queue was removed (IPC_RMID), possibly while this process was blocked on it (EIDRM).
    #[error("message queue {id} was removed")]
    Removed { id: i32 },
    /// A kernel limit could not be read from /proc.
    #[error("cannot read the kernel limit {path}: {reason}")]
    Limit { path: &'static str, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A message: its type (positive) and its text, whose length is chosen per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub mtype: i64,
    pub data: Vec<u8>,
}

/// Which message `receive` takes (the `msgtyp` argument of `msgrcv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// The oldest message, whatever its type (`msgtyp` = 0).
    First,
    /// The oldest message of exactly this type (`msgtyp` > 0).
    OfType(i64),
    /// The oldest message of the lowest type that is at most this bound (`msgtyp` = -bound):
    /// with types as priorities, a priority queue.
    LowestUpTo(i64),
}

/// What `IPC_STAT` reports about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Bytes of message text in the queue (`msg_cbytes`).
    pub bytes: u64,
    /// The most text the queue may hold, in bytes (`msg_qbytes`).
    pub capacity: u64,
    /// The process that sent last (`msg_lspid`), if any has.
    pub last_sender: Option<Pid>,
    /// The process that received last (`msg_lrpid`), if any has.
    pub last_receiver: Option<Pid>,
    /// The permission bits.
    pub mode: u32,
}

/// The name of a System V object: either private (a new queue nobody else can find by key) or
/// derived from a file with `ftok`, so that unrelated processes agree on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Key(pub(crate) libc::key_t);

impl Key {
    /// `IPC_PRIVATE`: `create` makes a new queue that no other process can open by key.
    pub fn private() -> Key {
        Key(libc::IPC_PRIVATE)
    }

    /// The raw `key_t`, as `ipcs` and `/proc/sysvipc/msg` show it.
    pub fn raw(self) -> i32 {
        self.0
    }

    pub fn is_private(self) -> bool {
        self.0 == libc::IPC_PRIVATE
    }
}

/// A handle on an existing queue. Dropping it does not remove the queue (see [`OwnedQueue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQueue {
    pub(crate) id: i32,
}

/// The queue its creator owns: removed (`IPC_RMID`) when this value is dropped, also when the
/// code that holds it panics. Dereferences to [`MessageQueue`] for sending and receiving.
#[derive(Debug)]
pub struct OwnedQueue {
    pub(crate) queue: MessageQueue,
}

impl Deref for OwnedQueue {
    type Target = MessageQueue;

    fn deref(&self) -> &MessageQueue {
        &self.queue
    }
}
