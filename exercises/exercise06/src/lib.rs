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

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

/// Task 1: a conversation with a child over one stream socket pair.
///
/// Fork a child; for each request in turn, send it as one line (`request` + `\n`) and read the
/// child's reply line before sending the next. The child reads requests line by line until end
/// of file, answers each with `answer(request)` as one line, and exits with 0 at end of file.
/// Returns the replies without their newlines, after reaping the child.
///
/// A request containing `\n` is [`Error::NewlineInRequest`] (checked before forking). If the
/// child stops answering early (end of file before a reply, or before the newline that ends
/// one: a cut-off line is no reply), [`Error::ChildHungUp`].
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
