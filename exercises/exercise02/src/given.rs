//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Bytes of the length header in front of every message.
pub const HEADER_LEN: usize = 2;

/// The longest message: header and body together fill exactly `PIPE_BUF` bytes (4096 on Linux),
/// the most one `write` to a pipe is guaranteed to deliver atomically.
pub const MAX_MESSAGE: usize = libc::PIPE_BUF - HEADER_LEN;

/// What kind of file a path names, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    RegularFile,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// The path vanished (or could not be examined) while the error was being reported.
    Unknown,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::RegularFile => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "something that could not be examined",
        })
    }
}

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `create_fifo` found the path taken. Nothing was created, nothing was removed.
    #[error("{} already exists as {kind}: remove it or choose another path", path.display())]
    PathExists { path: PathBuf, kind: FileKind },
    /// The mode has bits outside the permission bits `0o777`.
    #[error("invalid mode {mode:#o}: a FIFO's permissions are the bits 0o777")]
    InvalidMode { mode: u32 },
    /// The path names something other than a FIFO.
    #[error("{} is {kind}, not a FIFO", path.display())]
    NotAFifo { path: PathBuf, kind: FileKind },
    /// A non-blocking open for writing failed with ENXIO: no process has the FIFO open for
    /// reading.
    #[error("no reader: nobody has {} open for reading (is the server running?)", path.display())]
    NoReader { path: PathBuf },
    /// Every reader closed the FIFO, so the kernel refused the write with EPIPE.
    #[error("broken pipe: every reader closed the FIFO")]
    BrokenPipe,
    /// A message does not fit in one atomic write.
    #[error("message of {len} bytes is too long: at most {max} bytes fit in one atomic write")]
    MessageTooLong { len: usize, max: usize },
    /// The stream ended inside a message: its writer sent it in pieces or died halfway.
    /// `expected` is the size of the whole record (the 2-byte header and the body it announces,
    /// or just the header while it is incomplete); `got` the bytes of it that came.
    #[error("end of file inside a message: got {got} of {expected} bytes")]
    TruncatedMessage { expected: usize, got: usize },
    /// A write delivered only part of a message (the descriptor is not a pipe, or is
    /// non-blocking).
    #[error("short write: only {written} of {len} bytes were written in one call")]
    ShortWrite { written: usize, len: usize },
    /// A system call on a path failed.
    #[error("{call} {} failed: {errno}", path.display())]
    Path {
        call: &'static str,
        path: PathBuf,
        errno: Errno,
    },
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A FIFO this process created. Dropping it removes the name from the file system (processes
/// that have it open keep their descriptors).
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Fifo {
    pub(crate) path: PathBuf,
    /// Device and inode of the FIFO we created: drop removes the path only if it still names it.
    pub(crate) id: (u64, u64),
}

impl Fifo {
    /// Where the FIFO is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How a server ended and what it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Messages received.
    pub messages: usize,
    /// Bytes of message bodies received (headers not counted).
    pub bytes: usize,
    /// `None` when the server read to end of file; the signal when SIGTERM or SIGINT ended it.
    pub stopped_by: Option<Signal>,
}
