//! Exercise 02: named pipes (`mkfifo`).
//!
//! Your task: implement the functions below (tasks 1 to 5) and the guard's `Drop`. The task
//! statement is in `README.md` beside this file; `cargo ipclab hint 2` gives hints;
//! `cargo test -p exercise02` grades your work. The two programs the tests start (the server and
//! the client, in `tests/exercise02/bin/`) only call `run_server` and `run_client`.
//!
//! A FIFO is a pipe with a name. The name is an entry in the file system, so processes that
//! share no ancestry can find it; the data never touches the disk: it goes through a buffer in
//! the kernel exactly as with an anonymous pipe, and the file's size stays 0.
//!
//! Messages travel framed: a 2-byte big-endian length ([`HEADER_LEN`]), then that many bytes,
//! header and body written together in **one** `write`. A write of at most `PIPE_BUF` bytes to a
//! pipe is atomic, so messages from several writers never interleave.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag, AT_FDCWD};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{fchmodat, fstat, FchmodatFlags, Mode, SFlag};
use nix::unistd::mkfifo;

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
pub struct Fifo {
    path: PathBuf,
    /// Device and inode of the FIFO we created: drop removes the path only if it still names it.
    id: (u64, u64),
}

impl Fifo {
    /// Where the FIFO is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        todo!("Task 1: remove the FIFO's name from the file system (unlink), ignoring errors: a drop must not fail")
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

/// Task 1: create a FIFO at `path` whose permissions are exactly `mode` (whatever the umask),
/// and return a guard that removes it when dropped.
///
/// Errors: [`Error::InvalidMode`] if `mode` has bits outside `0o777`; [`Error::PathExists`] if
/// `path` exists (as anything, a FIFO included), leaving it untouched; [`Error::Path`] for other
/// failures.
pub fn create_fifo(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
    todo!("Task 1: reject modes outside 0o777; mkfifo (EEXIST becomes PathExists with lstat's kind); then chmod to the exact mode, which the umask did not touch")
}

/// Task 2: open the FIFO for reading, waiting until some process opens it for writing.
pub fn open_reader(path: impl AsRef<Path>) -> Result<File> {
    todo!("Task 2: open the FIFO O_RDONLY (this waits for a writer) and check with fstat that it is a FIFO")
}

/// Task 2: open the FIFO for writing, waiting until some process opens it for reading.
pub fn open_writer(path: impl AsRef<Path>) -> Result<File> {
    todo!("Task 2: open the FIFO O_WRONLY (this waits for a reader) and check with fstat that it is a FIFO")
}

/// Task 2: open the FIFO for reading without waiting for a writer (this always succeeds at once).
///
/// The returned file is in blocking mode again: a later read waits for data while a writer has
/// the FIFO open, and returns 0 (end of file) while none has.
pub fn try_open_reader(path: impl AsRef<Path>) -> Result<File> {
    todo!("Task 2: open the FIFO O_RDONLY | O_NONBLOCK (never waits), then clear O_NONBLOCK with fcntl")
}

/// Task 2: open the FIFO for writing without waiting for a reader.
///
/// If no process has it open for reading, the kernel refuses with ENXIO: that is
/// [`Error::NoReader`]. The returned file is in blocking mode again: a write into a full FIFO
/// waits for the reader instead of failing with EAGAIN.
pub fn try_open_writer(path: impl AsRef<Path>) -> Result<File> {
    todo!("Task 2: open the FIFO O_WRONLY | O_NONBLOCK; ENXIO means no reader (Error::NoReader); then clear O_NONBLOCK with fcntl")
}

/// Task 3: read one message (see [`HEADER_LEN`]) from `fifo`.
///
/// Returns `Ok(None)` at end of file between messages; [`Error::TruncatedMessage`] at end of
/// file inside one; [`Error::MessageTooLong`] for a header announcing more than
/// [`MAX_MESSAGE`] bytes. Reads that return fewer bytes than asked for, or fail with EINTR, are
/// continued.
pub fn receive_message(fifo: &mut impl Read) -> Result<Option<Vec<u8>>> {
    todo!("Task 3: read the 2-byte big-endian length, then exactly that many bytes; Ok(None) at end of file before a message")
}

/// Task 4: send one message: its header and body in a single `write` of at most `PIPE_BUF`
/// bytes, so that it never interleaves with the messages of other writers.
///
/// Errors: [`Error::MessageTooLong`] (nothing is written) for more than [`MAX_MESSAGE`] bytes;
/// [`Error::BrokenPipe`] when no reader is left.
pub fn send_message(fifo: &File, message: &[u8]) -> Result<()> {
    todo!("Task 4: check the length, then write header and body together in ONE write of at most PIPE_BUF bytes")
}

/// Task 5: the server. Create the FIFO at `path` with `mode`, open it for reading, call `ready`
/// (from then on SIGTERM and SIGINT end the server cleanly), then write one line per message
/// into `transcript` until every client has closed its end (end of file) or SIGTERM or SIGINT
/// arrives. Either way, remove the FIFO before returning.
///
/// A transcript line is `message <n>: <text>`, with `n` counting from 1 and `text` the message
/// as `String::from_utf8_lossy(..).escape_debug()` shows it.
///
/// Signals are blocked only in the calling thread: call this from the main thread of a program
/// that has no other threads (as `ex02-fifo-server` does), or a SIGTERM could go to another one.
pub fn run_server(
    path: impl AsRef<Path>,
    mode: u32,
    ready: impl FnOnce(&Path),
    transcript: &mut impl Write,
) -> Result<Summary> {
    todo!("Task 5: block SIGTERM/SIGINT (signalfd), create the FIFO, open it without waiting, call ready, then poll and log each message until end of file or a signal")
}

/// Task 5: the client. Open the FIFO for writing without waiting (no server: [`Error::NoReader`])
/// and send each message; returns how many were sent.
pub fn run_client<M: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    messages: impl IntoIterator<Item = M>,
) -> Result<usize> {
    todo!(
        "Task 5: open the FIFO for writing without waiting (try_open_writer) and send each message"
    )
}
