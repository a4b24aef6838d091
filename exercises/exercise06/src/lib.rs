//! Exercise 06: socketpair.
//!
//! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise06` grades your
//! work.
//!
//! `socketpair(AF_UNIX, type, 0)` gives two sockets already connected to each other. Unlike a
//! pipe, each end both reads and writes, so one pair carries requests one way and replies the
//! other. The type decides the shape of what travels: `SOCK_STREAM` is a byte stream (no message
//! boundaries, end of file when the peer shuts down or closes), `SOCK_DGRAM` carries whole
//! datagrams. And because both ends are in the same kernel, a message can carry open file
//! descriptors (`SCM_RIGHTS`).

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    recvmsg, sendmsg, shutdown, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdin, dup2_stdout, execvp, fork, pipe2, ForkResult, Pid};

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

/// The longest label [`send_fd`] accepts and [`recv_fd`] receives, in bytes.
pub const MAX_LABEL: usize = 64;

/// A descriptor received with [`recv_fd`], and the label that travelled with it.
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

/// Task 1: a conversation with a child over one stream socket pair.
///
/// Fork a child; for each request in turn, send it as one line (`request` + `\n`) and read the
/// child's reply line before sending the next. The child reads requests line by line until end
/// of file, answers each with `answer(request)` as one line, and exits with 0 at end of file.
/// Returns the replies without their newlines, after reaping the child.
///
/// A request containing `\n` is [`Error::NewlineInRequest`] (checked before forking). If the
/// child stops answering early (end of file before a reply), [`Error::ChildHungUp`].
pub fn ask_child(requests: &[&str], answer: impl FnMut(&str) -> String) -> Result<Vec<String>> {
    todo!("Task 1: a stream socketpair and fork; the child answers each request line with one reply line until EOF; the parent sends a request, reads its reply, and so on, then closes its end and reaps the child")
}

/// Task 2: message boundaries, stream versus datagram.
///
/// Create a socket pair of `kind` and fork. The child sends each element of `sends` with one
/// send call, then exits. The parent first waits for the child (so every send has completed
/// before the first receive), then receives into a buffer of `buf_len` bytes, one call at a
/// time, recording what each call returned, until nothing is left: for a stream, until end of
/// file; for datagrams (which have no end of file), until a non-blocking receive finds nothing.
///
/// `sends` must fit in the socket's buffer (a few KiB is fine): the child sends before anyone
/// receives, so a send that would block fails instead, and the call returns
/// [`Error::ChildFailed`]. A `buf_len` of 0 is [`Error::ZeroBuffer`].
pub fn receive_after_sends(kind: Kind, sends: &[&[u8]], buf_len: usize) -> Result<Vec<Chunk>> {
    todo!("Task 2: a socketpair of `kind` and fork; the child sends each message with one send and exits; the parent reaps it, then receives into a `buf_len` buffer until EOF (stream) or EAGAIN under MSG_DONTWAIT (datagram), reporting MSG_TRUNC")
}

/// Task 3: a round trip over one stream socket, ended by a half-close.
///
/// Fork a child. The parent sends `request`, then shuts down the writing direction of its socket
/// (`shutdown(SHUT_WR)`) and reads the reply until end of file. The child reads the request
/// until end of file, sends `serve(request)` back on the same socket, and exits. The parent
/// reaps the child and returns the reply.
pub fn half_close_round_trip(
    request: &[u8],
    serve: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> Result<Vec<u8>> {
    todo!("Task 3: one stream socketpair; the parent sends the request, shutdown(SHUT_WR), reads the reply to EOF; the child reads to EOF and answers on the same socket")
}

/// Task 4a: send `fd` over `socket` with `SCM_RIGHTS`, together with `label` as the message's
/// ordinary data (1 to [`MAX_LABEL`] bytes, else [`Error::BadLabel`]: on a stream socket a
/// message without data would carry no descriptor).
///
/// The caller keeps its own descriptor; the receiver gets a new one for the same open file.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, label: &[u8]) -> Result<()> {
    todo!("Task 4: sendmsg with the label as data and the descriptor in an SCM_RIGHTS control message")
}

/// Task 4b: receive one descriptor sent with [`send_fd`], and its label.
///
/// The new descriptor is close-on-exec (`MSG_CMSG_CLOEXEC`). A message without a descriptor is
/// [`Error::NoDescriptor`]; end of file is [`Error::PeerClosed`]. No received descriptor is ever
/// left open on an error.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<Passed> {
    todo!("Task 4: recvmsg with MSG_CMSG_CLOEXEC and room for an SCM_RIGHTS control message; own the received descriptor; no descriptor is Error::NoDescriptor, EOF is Error::PeerClosed")
}

/// Task 5: start `argv` with one end of a stream socket pair as its standard input and output;
/// keep the other end. Nothing else of ours may reach the program: our end in particular must
/// be close-on-exec, or the program would hold it open and never see end of file.
pub fn spawn_coprocess(argv: &[&str]) -> Result<Coprocess> {
    todo!("Task 5: a close-on-exec stream socketpair and fork; in the child dup2 its end onto stdin and stdout and execvp; report a failed exec as Error::CommandNotFound")
}

impl Coprocess {
    /// Closes our end (the program's end of file) and waits for the program to exit.
    pub fn finish(self) -> Result<ChildExit> {
        todo!("Task 5: close our end (the program's end of file), then waitpid for the program")
    }
}
