//! Exercise 08: sockets across domains and types — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
// STARTER: //! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise08` grades your
// STARTER: //! work.
//!
//! Every socket starts as `socket(domain, type, protocol)`: the domain says how peers are named
//! (`AF_INET`: an IPv4 address and a port; `AF_UNIX`: a file system path or an abstract name),
//! the type what travels (`SOCK_STREAM`: a connected byte stream; `SOCK_DGRAM`: datagrams), and
//! the protocol is almost always 0, "the one protocol of that domain and type" (TCP for
//! `AF_INET` + `SOCK_STREAM`, UDP for `AF_INET` + `SOCK_DGRAM`). A server then `bind`s a name,
//! `listen`s and `accept`s; a client `connect`s. The same echo server runs in either domain.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

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
#[path = "../../../exercises/exercise08/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}
// END SOLUTION

/// A running echo server: every byte a client sends comes back to it.
///
/// Dropping it stops the server: no more connections are accepted, open connections are shut
/// down, every thread is joined, and a socket file it created is removed.
#[derive(Debug)]
pub struct EchoServer {
    endpoint: Endpoint,
    // BEGIN SOLUTION
    // STARTER: // Add what stopping needs: a way to wake the accept loop, its thread's JoinHandle, and
    // STARTER: // whatever removes the socket file.
    /// Our end of the stop pipe: dropping it wakes the accept loop (its poll sees end of file).
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    /// Removes the socket file when the server is dropped (after the loop has stopped).
    _socket_file: Option<SocketFile>,
    // END SOLUTION
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
        // BEGIN SOLUTION Task 1 (TCP), 3 (path), 4 (abstract name): socket, bind (EADDRINUSE is Error::AddressInUse), listen, then a thread that accepts connections and serves each one in a thread of its own
        let (listener, endpoint, socket_file) = match at {
            Endpoint::Tcp(addr) => {
                let fd = new_socket(AddressFamily::Inet)?;
                // A restarted server can bind its port again while old connections linger in
                // TIME_WAIT; it still cannot share the port with another listener.
                setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(sys("setsockopt"))?;
                bind(fd.as_raw_fd(), &SockaddrIn::from(*addr))
                    .map_err(|errno| bind_error(errno, at))?;
                let bound: SockaddrIn = getsockname(fd.as_raw_fd()).map_err(sys("getsockname"))?;
                (fd, Endpoint::Tcp(bound.into()), None)
            }
            Endpoint::UnixPath(path) => {
                let addr = UnixAddr::new(path.as_path())
                    .map_err(|_| Error::PathTooLong { path: path.clone() })?;
                let fd = new_socket(AddressFamily::Unix)?;
                bind(fd.as_raw_fd(), &addr).map_err(|errno| bind_error(errno, at))?;
                // From here on, the file is ours to remove, whatever happens next.
                let file = SocketFile::created_at(path);
                (fd, at.clone(), Some(file))
            }
            Endpoint::UnixAbstract(name) => {
                let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(sys("bind"))?;
                let fd = new_socket(AddressFamily::Unix)?;
                bind(fd.as_raw_fd(), &addr).map_err(|errno| bind_error(errno, at))?;
                (fd, at.clone(), None)
            }
        };
        listen(&listener, Backlog::new(128).map_err(sys("listen"))?).map_err(sys("listen"))?;

        let (stop_read, stop_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
        let thread = thread::Builder::new()
            .name(format!("echo {endpoint}"))
            .spawn(move || accept_loop(listener, stop_read))
            .map_err(|e| Error::Sys {
                call: "pthread_create",
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)),
            })?;
        Ok(EchoServer {
            endpoint,
            stop: Some(stop_write),
            thread: Some(thread),
            _socket_file: socket_file,
        })
        // END SOLUTION
    }

    /// Where the server listens; for TCP with the port the kernel chose.
    pub fn endpoint(&self) -> &Endpoint {
        // BEGIN SOLUTION Task 1: the endpoint the server listens at, with the port the kernel chose (getsockname)
        &self.endpoint
        // END SOLUTION
    }
}

impl Drop for EchoServer {
    /// Tasks 1 and 3: stop accepting, shut down open connections, join every thread, and
    /// remove the socket file this server created.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Left empty so that the starter's servers can be dropped; fill it in.
        // The accept loop sees end of file on the stop pipe, shuts every connection down, joins
        // their threads and returns, closing the listening socket.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Then `_socket_file` drops: the name goes once nothing listens on it any more.
        // END SOLUTION
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
        // BEGIN SOLUTION Task 5: socket and connect; ECONNREFUSED is Error::ConnectionRefused, ENOENT on a path is Error::NoSuchSocket
        let (socket, connected) = match to {
            Endpoint::Tcp(addr) => {
                let fd = new_client_socket(AddressFamily::Inet)?;
                let r = connect_retrying(fd.as_fd(), &SockaddrIn::from(*addr));
                (fd, r)
            }
            Endpoint::UnixPath(path) => {
                let addr = UnixAddr::new(path.as_path())
                    .map_err(|_| Error::PathTooLong { path: path.clone() })?;
                let fd = new_client_socket(AddressFamily::Unix)?;
                let r = connect_retrying(fd.as_fd(), &addr);
                (fd, r)
            }
            Endpoint::UnixAbstract(name) => {
                let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(sys("connect"))?;
                let fd = new_client_socket(AddressFamily::Unix)?;
                let r = connect_retrying(fd.as_fd(), &addr);
                (fd, r)
            }
        };
        match (connected, to) {
            (Ok(()), _) => Ok(Client {
                socket,
                endpoint: to.to_string(),
            }),
            (Err(Errno::ECONNREFUSED), _) => Err(Error::ConnectionRefused {
                endpoint: to.to_string(),
            }),
            (Err(Errno::ENOENT), Endpoint::UnixPath(path)) => {
                Err(Error::NoSuchSocket { path: path.clone() })
            }
            (Err(errno), _) => Err(Error::Sys {
                call: "connect",
                errno,
            }),
        }
        // END SOLUTION
    }

    /// Task 5: send `message` and read back as many bytes as were sent.
    ///
    /// If the server closed the connection (end of file before the whole echo, `EPIPE`,
    /// `ECONNRESET`), [`Error::ServerGone`]. Never raises SIGPIPE.
    pub fn echo(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        // BEGIN SOLUTION Task 5: send the message and receive as many bytes at the same time; end of file, EPIPE or ECONNRESET is Error::ServerGone
        let gone = |errno: Errno| match errno {
            Errno::EPIPE | Errno::ECONNRESET => Error::ServerGone {
                endpoint: self.endpoint.clone(),
            },
            errno => Error::Sys {
                call: "send/recv",
                errno,
            },
        };
        // Most messages fit in the socket's send buffer: one send that never waits, then the
        // receive. What does not fit is sent by a second thread while this one receives, since
        // the echo comes back while we are still sending and a message larger than both socket
        // buffers together would otherwise deadlock.
        let socket = self.socket.as_fd();
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        let at_once = match send(socket.as_raw_fd(), message, flags) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => 0,
            Err(errno) => return Err(gone(errno)),
        };
        let rest = &message[at_once..];
        let (sent, received) = if rest.is_empty() {
            (Ok(()), recv_exactly(socket, message.len()))
        } else {
            thread::scope(|scope| {
                let sender = scope.spawn(|| send_all(socket, rest));
                let received = recv_exactly(socket, message.len());
                (sender.join().unwrap_or(Err(Errno::EIO)), received)
            })
        };
        match (sent, received) {
            (Ok(()), Ok(Some(echo))) => Ok(echo),
            (Ok(()), Ok(None)) => Err(Error::ServerGone {
                endpoint: self.endpoint.clone(),
            }),
            (Err(errno), _) | (_, Err(errno)) => Err(gone(errno)),
        }
        // END SOLUTION
    }
}

impl Udp {
    /// Task 2: a UDP socket (`AF_INET`, `SOCK_DGRAM`) bound to `addr`; port 0 for any free port.
    pub fn bind(addr: SocketAddrV4) -> Result<Udp> {
        // BEGIN SOLUTION Task 2: socket(AF_INET, SOCK_DGRAM, 0) and bind
        let socket = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(sys("socket"))?;
        bind(socket.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|errno| match errno {
            Errno::EADDRINUSE => Error::AddressInUse {
                endpoint: format!("udp {addr}"),
            },
            errno => Error::Sys {
                call: "bind",
                errno,
            },
        })?;
        let local: SockaddrIn = getsockname(socket.as_raw_fd()).map_err(sys("getsockname"))?;
        Ok(Udp {
            socket,
            local: local.into(),
        })
        // END SOLUTION
    }

    /// The address this socket is bound to (with the real port).
    pub fn local_addr(&self) -> SocketAddrV4 {
        // BEGIN SOLUTION Task 2: the address the socket is bound to, with the real port
        self.local
        // END SOLUTION
    }

    /// Task 2: send `bytes` as one datagram to `to`. Larger than [`MAX_UDP_PAYLOAD`]:
    /// [`Error::DatagramTooLarge`].
    pub fn send_to(&self, bytes: &[u8], to: SocketAddrV4) -> Result<()> {
        // BEGIN SOLUTION Task 2: sendto, one datagram; EMSGSIZE is Error::DatagramTooLarge
        loop {
            match sendto(
                self.socket.as_raw_fd(),
                bytes,
                &SockaddrIn::from(to),
                MsgFlags::empty(),
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EMSGSIZE) => return Err(Error::DatagramTooLarge { len: bytes.len() }),
                Err(errno) => {
                    return Err(Error::Sys {
                        call: "sendto",
                        errno,
                    })
                }
            }
        }
        // END SOLUTION
    }

    /// Task 2: receive one datagram into a buffer of `max_len` bytes, waiting at most `wait`.
    /// `Ok(None)` if no datagram came in time (a zero `wait` only takes one already queued).
    pub fn recv(&self, max_len: usize, wait: Duration) -> Result<Option<Datagram>> {
        // BEGIN SOLUTION Task 2: recvmsg into a max_len buffer with SO_RCVTIMEO (or MSG_DONTWAIT for a zero wait); EAGAIN is Ok(None); report the sender and MSG_TRUNC
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; max_len];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let flags = if left.is_zero() {
                // SO_RCVTIMEO of zero would mean "wait forever": do not wait at all instead.
                MsgFlags::MSG_DONTWAIT
            } else {
                let timeout = TimeVal::new(
                    left.as_secs() as _,
                    // Rounded up, so that a wait of a few nanoseconds is not zero.
                    left.subsec_micros().max(1) as _,
                );
                setsockopt(&self.socket, sockopt::ReceiveTimeout, &timeout)
                    .map_err(sys("setsockopt"))?;
                MsgFlags::empty()
            };
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<SockaddrIn>(self.socket.as_raw_fd(), &mut iov, None, flags) {
                Ok(msg) => {
                    let from = msg.address.map(SocketAddrV4::from).ok_or(Error::Sys {
                        call: "recvmsg",
                        errno: Errno::EAFNOSUPPORT,
                    })?;
                    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
                    let len = msg.bytes.min(max_len);
                    return Ok(Some(Datagram {
                        bytes: buf[..len].to_vec(),
                        from,
                        truncated,
                    }));
                }
                // The timeout passed (or, without waiting, nothing was queued).
                Err(Errno::EAGAIN) => return Ok(None),
                // A signal: try again with what is left of the wait.
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(Error::Sys {
                        call: "recvmsg",
                        errno,
                    })
                }
            }
        }
        // END SOLUTION
    }
}

// BEGIN SOLUTION
// ---- private ----

/// A stream socket for a listener: close-on-exec, and non-blocking so that the accept loop
/// never blocks in `accept` when a client gave up between `poll` and `accept`.
fn new_socket(domain: AddressFamily) -> Result<OwnedFd> {
    socket(
        domain,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(sys("socket"))
}

fn new_client_socket(domain: AddressFamily) -> Result<OwnedFd> {
    socket(domain, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys("socket"))
}

fn connect_retrying(fd: BorrowedFd<'_>, addr: &dyn SockaddrLike) -> std::result::Result<(), Errno> {
    match connect(fd.as_raw_fd(), addr) {
        // Interrupted: the connection attempt goes on in the background; wait for its outcome.
        Err(Errno::EINTR) => {
            let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
            while let Err(Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
            match nix::sys::socket::getsockopt(&fd, sockopt::SocketError) {
                Ok(0) => Ok(()),
                Ok(code) => Err(Errno::from_raw(code)),
                Err(errno) => Err(errno),
            }
        }
        other => other,
    }
}

/// Maps a failed `bind` to the error that names its cause.
fn bind_error(errno: Errno, at: &Endpoint) -> Error {
    match (errno, at) {
        (Errno::EADDRINUSE, Endpoint::UnixPath(path)) => match fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => Error::NotASocket { path: path.clone() },
            _ => Error::AddressInUse {
                endpoint: at.to_string(),
            },
        },
        (Errno::EADDRINUSE, _) => Error::AddressInUse {
            endpoint: at.to_string(),
        },
        (errno, _) => Error::Sys {
            call: "bind",
            errno,
        },
    }
}

/// The socket file a server created with `bind`; dropping it removes the file, but only if it
/// is still the same file (not one that someone else has put there since).
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    fn created_at(path: &Path) -> SocketFile {
        SocketFile {
            path: path.to_owned(),
            identity: fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino())),
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let now = fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if now.is_some() && now == self.identity {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A connection being served by a thread of its own.
struct Connection {
    socket: Arc<OwnedFd>,
    thread: JoinHandle<()>,
}

/// Accepts connections until the stop pipe reports end of file, then shuts every connection
/// down and joins its thread.
fn accept_loop(listener: OwnedFd, stop: OwnedFd) {
    let mut connections: Vec<Connection> = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
        if fds[1].any().unwrap_or(true) {
            break;
        }
        if !fds[0].any().unwrap_or(false) {
            continue;
        }
        match accept4(listener.as_fd(), SockFlag::SOCK_CLOEXEC) {
            Ok(socket) => {
                // Finished connections are joined as we go, so the list does not grow forever.
                let (done, running): (Vec<_>, Vec<_>) = connections
                    .into_iter()
                    .partition(|c| c.thread.is_finished());
                for c in done {
                    let _ = c.thread.join();
                }
                connections = running;
                let socket = Arc::new(socket);
                let served = Arc::clone(&socket);
                match thread::Builder::new().spawn(move || echo_until_eof(&served)) {
                    Ok(thread) => connections.push(Connection { socket, thread }),
                    // No thread for it: the client sees the connection closed.
                    Err(_) => drop(socket),
                }
            }
            // The client gave up before we accepted it, or a signal: nothing to do.
            Err(Errno::EAGAIN | Errno::ECONNABORTED | Errno::EINTR | Errno::EPROTO) => {}
            // Out of descriptors or memory: stop accepting rather than spin; the connections
            // already open are still served until the server is dropped.
            Err(_) => {
                let mut stop_only = [PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
                while let Err(Errno::EINTR) = poll(&mut stop_only, PollTimeout::NONE) {}
                break;
            }
        }
    }
    drop(listener);
    for c in &connections {
        // Wakes a thread blocked in recv (it returns 0) and tells the client we are gone.
        let _ = shutdown(c.socket.as_raw_fd(), Shutdown::Both);
    }
    for c in connections {
        let _ = c.thread.join();
    }
}

/// Sends back everything the client sends, until it closes or the server shuts it down.
fn echo_until_eof(socket: &OwnedFd) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match recv(socket.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => return,
            Ok(n) => {
                if send_all(socket.as_fd(), &buf[..n]).is_err() {
                    return;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// Sends all of `data`; `MSG_NOSIGNAL` turns a vanished peer into `EPIPE` instead of SIGPIPE.
fn send_all(socket: BorrowedFd<'_>, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match send(socket.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Receives exactly `len` bytes; `None` if end of file comes first.
fn recv_exactly(socket: BorrowedFd<'_>, len: usize) -> std::result::Result<Option<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match recv(socket.as_raw_fd(), &mut buf[filled..], MsgFlags::empty()) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(Some(buf))
}
// END SOLUTION
