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

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag, AT_FDCWD};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::unistd::mkfifo;

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

impl Drop for Fifo {
    fn drop(&mut self) {
        todo!("Task 1: remove the FIFO's name from the file system (unlink), ignoring errors: a drop must not fail")
    }
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
