//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::fmt;
use std::net::SocketAddrV4;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::errno::Errno;

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// Another socket is already bound to this address (`EADDRINUSE`).
    #[error("address in use: another socket is already bound to {endpoint}")]
    AddressInUse { endpoint: String },
    /// The path exists and is not a socket: binding there would need to remove someone's file.
    #[error("{path} exists and is not a socket: refusing to bind there")]
    NotASocket { path: PathBuf },
    /// A socket path must fit in `sun_path` (107 bytes and a terminating NUL).
    #[error("socket path too long for sockaddr_un ({} bytes): {path}", path.as_os_str().len())]
    PathTooLong { path: PathBuf },
    /// Nothing listens there (`ECONNREFUSED`).
    #[error("connection refused: nothing listens at {endpoint}")]
    ConnectionRefused { endpoint: String },
    /// No socket file at that path (`ENOENT`): no server was ever started there, or it removed
    /// its file when it stopped.
    #[error("no socket file at {path}: is the server running?")]
    NoSuchSocket { path: PathBuf },
    /// The server closed the connection (end of file, `EPIPE` or `ECONNRESET`).
    #[error("the server at {endpoint} is gone: it closed the connection")]
    ServerGone { endpoint: String },
    /// A UDP datagram must fit in one IP packet: at most 65 507 bytes over IPv4.
    #[error("a datagram of {len} bytes is too large for UDP over IPv4")]
    DatagramTooLarge { len: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where a stream server listens, in one of two domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `AF_INET`: an IPv4 address and a TCP port. Port 0 asks the kernel for a free port.
    Tcp(SocketAddrV4),
    /// `AF_UNIX` with a name in the file system: `bind` creates a socket file there.
    UnixPath(PathBuf),
    /// `AF_UNIX` with an abstract name (Linux): no file; the name vanishes with the socket.
    /// `ss -x` and `/proc/net/unix` show it as `@name`.
    UnixAbstract(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(addr) => write!(f, "tcp {addr}"),
            Endpoint::UnixPath(path) => write!(f, "unix {}", path.display()),
            Endpoint::UnixAbstract(name) => write!(f, "unix @{name}"),
        }
    }
}

/// A connection to a stream server (task 5).
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Client {
    pub(crate) socket: OwnedFd,
    pub(crate) endpoint: String,
}

/// A UDP socket bound to an IPv4 address (task 2).
#[derive(Debug)]
// The fields are `pub(crate)`: the functions you write in `lib.rs` use them.
pub struct Udp {
    pub(crate) socket: OwnedFd,
    pub(crate) local: SocketAddrV4,
}

/// One datagram, as one receive call returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub bytes: Vec<u8>,
    /// The sender's address.
    pub from: SocketAddrV4,
    /// The datagram was longer than the buffer: the kernel cut it (`MSG_TRUNC`) and the rest is
    /// gone.
    pub truncated: bool,
}

/// The largest UDP payload over IPv4: 65 535 minus the IP (20) and UDP (8) headers.
pub const MAX_UDP_PAYLOAD: usize = 65_507;
