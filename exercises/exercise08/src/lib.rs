//! Exercise 08: sockets across domains and types.
//!
//! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise08` grades your
//! work.
//!
//! Every socket starts as `socket(domain, type, protocol)`: the domain says how peers are named
//! (`AF_INET`: an IPv4 address and a port; `AF_UNIX`: a file system path or an abstract name),
//! the type what travels (`SOCK_STREAM`: a connected byte stream; `SOCK_DGRAM`: datagrams), and
//! the protocol is almost always 0, "the one protocol of that domain and type" (TCP for
//! `AF_INET` + `SOCK_STREAM`, UDP for `AF_INET` + `SOCK_DGRAM`). A server then `bind`s a name,
//! `listen`s and `accept`s; a client `connect`s. The same echo server runs in either domain.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fs;
use std::io::IoSliceMut;
use std::net::SocketAddrV4;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    accept4, bind, connect, getsockname, listen, recv, recvmsg, send, sendto, setsockopt, shutdown,
    socket, sockopt, AddressFamily, Backlog, MsgFlags, Shutdown, SockFlag, SockType, SockaddrIn,
    SockaddrLike, UnixAddr,
};
use nix::sys::time::TimeVal;
use nix::unistd::pipe2;

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

/// A running echo server: every byte a client sends comes back to it.
///
/// Dropping it stops the server: no more connections are accepted, open connections are shut
/// down, every thread is joined, and a socket file it created is removed.
#[derive(Debug)]
pub struct EchoServer {
    endpoint: Endpoint,
    // Add what stopping needs: a way to wake the accept loop, its thread's JoinHandle, and
    // whatever removes the socket file.
}

impl EchoServer {
    /// Tasks 1, 3 and 4: start an echo server listening at `at`, serving every client at once
    /// (one client that sends nothing must not hold up the others).
    ///
    /// For TCP, port 0 means "any free port": [`EchoServer::endpoint`] reports the real one.
    /// Errors: [`Error::AddressInUse`] if another socket is bound there; for a path,
    /// [`Error::NotASocket`] if a file that is not a socket is in the way (it is left alone) and
    /// [`Error::PathTooLong`].
    pub fn start(at: &Endpoint) -> Result<EchoServer> {
        todo!("Task 1 (TCP), 3 (path), 4 (abstract name): socket, bind (EADDRINUSE is Error::AddressInUse), listen, then a thread that accepts connections and serves each one in a thread of its own")
    }

    /// Where the server listens; for TCP with the port the kernel chose.
    pub fn endpoint(&self) -> &Endpoint {
        todo!("Task 1: the endpoint the server listens at, with the port the kernel chose (getsockname)")
    }
}

impl Drop for EchoServer {
    /// Tasks 1 and 3: stop accepting, shut down open connections, join every thread, and
    /// remove the socket file this server created.
    fn drop(&mut self) {
        // Left empty so that the starter's servers can be dropped; fill it in.
    }
}

impl Client {
    /// Task 5: connect to a stream server at `to`.
    ///
    /// Errors name the cause: [`Error::ConnectionRefused`] when nothing listens there (a TCP
    /// port with no listener, a socket file or abstract name nobody listens on),
    /// [`Error::NoSuchSocket`] when there is no socket file at the path, [`Error::PathTooLong`]
    /// when the path does not fit in `sun_path`.
    pub fn connect(to: &Endpoint) -> Result<Client> {
        todo!("Task 5: socket and connect; ECONNREFUSED is Error::ConnectionRefused, ENOENT on a path is Error::NoSuchSocket")
    }

    /// Task 5: send `message` and read back as many bytes as were sent.
    ///
    /// If the server closed the connection (end of file before the whole echo, `EPIPE`,
    /// `ECONNRESET`), [`Error::ServerGone`]. Never raises SIGPIPE.
    pub fn echo(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        todo!("Task 5: send the message and receive as many bytes at the same time; end of file, EPIPE or ECONNRESET is Error::ServerGone")
    }
}

impl Udp {
    /// Task 2: a UDP socket (`AF_INET`, `SOCK_DGRAM`) bound to `addr`; port 0 for any free port.
    pub fn bind(addr: SocketAddrV4) -> Result<Udp> {
        todo!("Task 2: socket(AF_INET, SOCK_DGRAM, 0) and bind")
    }

    /// The address this socket is bound to (with the real port).
    pub fn local_addr(&self) -> SocketAddrV4 {
        todo!("Task 2: the address the socket is bound to, with the real port")
    }

    /// Task 2: send `bytes` as one datagram to `to`. Larger than [`MAX_UDP_PAYLOAD`]:
    /// [`Error::DatagramTooLarge`].
    pub fn send_to(&self, bytes: &[u8], to: SocketAddrV4) -> Result<()> {
        todo!("Task 2: sendto, one datagram; EMSGSIZE is Error::DatagramTooLarge")
    }

    /// Task 2: receive one datagram into a buffer of `max_len` bytes, waiting at most `wait`.
    /// `Ok(None)` if no datagram came in time (a zero `wait` only takes one already queued).
    pub fn recv(&self, max_len: usize, wait: Duration) -> Result<Option<Datagram>> {
        todo!("Task 2: recvmsg into a max_len buffer with SO_RCVTIMEO (or MSG_DONTWAIT for a zero wait); EAGAIN is Ok(None); report the sender and MSG_TRUNC")
    }
}
