//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How a child process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It called `exit(code)` (or returned from `main`).
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// Requests travel as lines: a request may not itself contain a newline.
    #[error("request {index} contains a newline, which would end it early on the wire")]
    NewlineInRequest { index: usize },
    /// The child closed its end (or died) before it had answered every request.
    #[error("the child hung up after answering {answered} requests")]
    ChildHungUp { answered: usize },
    /// The child could not do its part (it did not exit with 0).
    #[error("the child failed: it ended with {exit:?}")]
    ChildFailed { exit: ChildExit },
    /// A receive buffer of zero bytes can receive nothing.
    #[error("a receive buffer needs at least one byte")]
    ZeroBuffer,
    /// A descriptor travels with at least one byte of ordinary data, at most [`MAX_LABEL`].
    #[error("a label of {len} bytes: a passed descriptor needs a label of 1 to {MAX_LABEL} bytes")]
    BadLabel { len: usize },
    /// A message arrived, but it carried no descriptor (no `SCM_RIGHTS` control message).
    #[error("the message carried no descriptor (the sender sent no SCM_RIGHTS control message)")]
    NoDescriptor,
    /// One message carried several descriptors where one was expected; all were closed.
    #[error("the message carried {count} descriptors where one was expected")]
    TooManyDescriptors { count: usize },
    /// End of file: the peer closed or shut down its end before sending anything.
    #[error("the peer closed its end: no message will come")]
    PeerClosed,
    /// A program named no program.
    #[error("empty command: name at least a program")]
    EmptyCommand,
    /// The program could not be found.
    #[error("command not found: {command}")]
    CommandNotFound { command: String },
    /// The program exists but `exec` failed for another reason.
    #[error("could not run {command}: {errno}")]
    Exec { command: String, errno: Errno },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Which kind of socket pair: the `type` argument of `socketpair(AF_UNIX, type, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM`: a byte stream, like a two-way pipe.
    Stream,
    /// `SOCK_DGRAM`: whole datagrams, each received by one receive call.
    Datagram,
}

/// What one receive call returned (task 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes this one call delivered.
    pub bytes: Vec<u8>,
    /// The kernel said the datagram was longer than the buffer (`MSG_TRUNC` in the returned
    /// flags): the rest of it is gone.
    pub truncated: bool,
}

/// The longest label [`send_fd`](crate::send_fd) accepts and [`recv_fd`](crate::recv_fd)
/// receives, in bytes.
pub const MAX_LABEL: usize = 64;

/// A descriptor received with [`recv_fd`](crate::recv_fd), and the label that travelled with it.
#[derive(Debug)]
pub struct Passed {
    /// A new descriptor in the receiver's table, for the sender's open file.
    pub fd: OwnedFd,
    pub label: Vec<u8>,
}

/// A program running at the other end of a socket (task 5).
#[derive(Debug)]
pub struct Coprocess {
    pub pid: Pid,
    /// Our end of the pair. The program's end is its standard input and output.
    pub socket: UnixStream,
}
