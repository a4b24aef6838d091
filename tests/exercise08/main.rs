//! The graded suite of exercise 08: sockets across domains and types.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs the student's code in
//! a sandboxed process of its own with a deadline (`isolated`), because servers block in threads
//! and a hang must become a failing test with a hint. The kernel is the witness: a judge that runs
//! no student code reads `/proc/net/tcp`, `/proc/net/udp` and `/proc/net/unix` (what is bound and
//! listening), the test process's descriptor table (which sockets it holds) and its threads (which
//! still run) itself, at `checkpoint`s the body marks, and decides the verdict. Network tests use
//! the loopback interface only.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use exercise08::*;
use ipclab_support::data::{payload, Received, MIB};
use ipclab_support::hold::Hold;
use ipclab_support::netprocfs::{InetSocket, UnixSocket, TCP_LISTEN, UNIX_STREAM};
use ipclab_support::procfs::{self, FdTarget};
use ipclab_support::{checkpoint, isolated, Snapshot};
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr};
use rstest::rstest;
use serde::{Deserialize, Serialize};

const SERVER_HINT: &str = "the echo server hung. start() must bind and listen before it \
     returns, serve each connection in a thread of its own (or with poll) so that an idle client \
     holds up nobody, and echo bytes as they arrive rather than waiting for the client to finish.";

const STOP_HINT: &str = "dropping the server hung. Its accept loop must be woken (poll the \
     listening socket together with a stop pipe, say), open connections shut down \
     (shutdown(SHUT_RDWR) makes a blocked recv return 0), and then every thread joined.";

const UDP_HINT: &str = "a UDP receive hung. recv() must wait at most `wait`: set SO_RCVTIMEO (a \
     receive then fails with EAGAIN when it expires) and report that as Ok(None); for a zero \
     wait use MSG_DONTWAIT, since a zero SO_RCVTIMEO means `wait forever`.";

const CLIENT_HINT: &str = "the client hung. echo() must send and receive at the same time (the \
     echo comes back while a large message is still being sent) and stop at end of file: a \
     server that closed the connection is Error::ServerGone.";

/// How long a test waits for an echo that should come at once before it calls the server
/// unresponsive: a bound on a failure, not a synchronisation.
const PATIENCE: Duration = Duration::from_secs(5);

const LOOPBACK_ANY_PORT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);

/// The TCP address a server reports, or what is wrong with its endpoint.
fn tcp_addr(server: &EchoServer) -> std::result::Result<SocketAddrV4, String> {
    match server.endpoint() {
        Endpoint::Tcp(addr) => Ok(*addr),
        other => Err(format!(
            "a TCP server's endpoint should be Endpoint::Tcp, got {other:?}"
        )),
    }
}

/// A name no other test (or run) uses.
fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ipclab-ex08-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory that stays until the test ends, so that the judge can look into it.
fn scratch_dir() -> PathBuf {
    tempfile::tempdir().expect("temporary directory").keep()
}

/// The kinds of stream endpoint, for rstest cases.
#[derive(Debug, Clone, Copy)]
enum Domain {
    Tcp,
    UnixPath,
    UnixAbstract,
}

/// An endpoint of `domain` for a server to start at (TCP: any free loopback port).
fn endpoint_in(domain: Domain, dir: &Path) -> Endpoint {
    match domain {
        Domain::Tcp => Endpoint::Tcp(LOOPBACK_ANY_PORT),
        Domain::UnixPath => Endpoint::UnixPath(dir.join("echo.sock")),
        Domain::UnixAbstract => Endpoint::UnixAbstract(unique_name()),
    }
}

/// What a client of the test read back, as the judge receives it.
#[derive(Debug, Serialize, Deserialize)]
enum Echo {
    Got(Received),
    /// Nothing came within the patience.
    Silent,
    Failed(String),
}

impl Echo {
    fn is_right(&self) -> bool {
        matches!(self, Echo::Got(r) if r.difference.is_none())
    }
}

/// Asserts that `echo` is `expected`, or fails naming `who`.
#[track_caller]
fn assert_echo(echo: &Echo, expected: &[u8], who: &str) {
    match echo {
        Echo::Got(received) => {
            received.assert_matches(expected, &format!("the echo {who} received"))
        }
        Echo::Silent => panic!(
            "{who} got no echo within {PATIENCE:?}. The server is not serving it: does it \
             serve one connection at a time (another client is connected and idle), or \
             wait for more bytes before echoing?"
        ),
        Echo::Failed(e) => panic!("{who} could not read its echo: {e}"),
    }
}

/// Asserts each echo of a sequence the body stopped at the first wrong one of.
#[track_caller]
fn assert_echoes(echoes: &[Echo], expected: &[(&[u8], &str)]) {
    for (i, (bytes, who)) in expected.iter().enumerate() {
        let echo = echoes
            .get(i)
            .unwrap_or_else(|| panic!("the test stopped before {who} was served"));
        assert_echo(echo, bytes, who);
    }
}

/// A client that does not depend on the code under test: std's streams, by domain.
enum TestClient {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl TestClient {
    fn connect(to: &Endpoint) -> TestClient {
        let client = match to {
            Endpoint::Tcp(addr) => TcpStream::connect(addr).map(TestClient::Tcp),
            Endpoint::UnixPath(path) => UnixStream::connect(path).map(TestClient::Unix),
            Endpoint::UnixAbstract(name) => UnixSocketAddr::from_abstract_name(name)
                .and_then(|addr| UnixStream::connect_addr(&addr))
                .map(TestClient::Unix),
        }
        .unwrap_or_else(|e| panic!("connecting to the server at {to} failed: {e}"));
        match &client {
            TestClient::Tcp(s) => s.set_read_timeout(Some(PATIENCE)),
            TestClient::Unix(s) => s.set_read_timeout(Some(PATIENCE)),
        }
        .expect("set a read timeout");
        client
    }

    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            TestClient::Tcp(s) => s,
            TestClient::Unix(s) => s,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("send to the server");
    }

    /// Reads `expected.len()` bytes, for the judge to compare.
    fn read_echo(&mut self, expected: &[u8]) -> Echo {
        let mut got = vec![0u8; expected.len()];
        match self.stream().read_exact(&mut got) {
            Ok(()) => Echo::Got(Received::of(&got, expected)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Echo::Silent
            }
            Err(e) => Echo::Failed(e.to_string()),
        }
    }

    /// Sends `bytes` and reads their echo into `echoes`; false if it was not right (the body
    /// stops there: the judge reports it).
    fn ping(&mut self, bytes: &[u8], echoes: &mut Vec<Echo>) -> bool {
        self.send(bytes);
        let echo = self.read_echo(bytes);
        let right = echo.is_right();
        echoes.push(echo);
        right
    }

    /// Reads until end of file (or the patience runs out) and returns what came.
    fn read_rest(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.stream().read_to_end(&mut rest).map(|_| rest)
    }
}

// ---------------------------------------------------------------------------------------------
// What the judge reads in a snapshot.

/// The inodes of the sockets the test process held.
fn socket_inodes(seen: &Snapshot) -> Vec<u64> {
    seen.test_process()
        .fds
        .values()
        .filter_map(|e| match e.target {
            FdTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect()
}

/// The TCP socket listening on `addr`, if any.
fn tcp_listener_at(seen: &Snapshot, addr: SocketAddrV4) -> Option<&InetSocket> {
    seen.tcp_sockets
        .iter()
        .find(|s| s.state == TCP_LISTEN && s.local == addr)
}

/// The TCP socket listening on `addr`, or the test fails saying when it must exist.
#[track_caller]
fn listening_at(seen: &Snapshot, addr: SocketAddrV4) -> &InetSocket {
    tcp_listener_at(seen, addr).unwrap_or_else(|| {
        panic!("/proc/net/tcp shows no LISTEN socket at {addr}: bind and listen before start() returns")
    })
}

/// The AF_UNIX socket bound to `path` (`@name` for an abstract name), if any.
fn unix_socket_bound_to<'a>(seen: &'a Snapshot, path: &str) -> Option<&'a UnixSocket> {
    seen.unix_sockets
        .iter()
        .find(|s| s.path.as_deref() == Some(path))
}

fn thread_count(seen: &Snapshot) -> usize {
    seen.test_process().threads.len()
}

/// Panics, naming each leaked descriptor and `what_to_close`, if the test process held a
/// descriptor at `after` that it did not hold at `before`.
#[track_caller]
fn assert_no_leaks(before: &Snapshot, after: &Snapshot, what_to_close: &str) {
    let held = &before.test_process().fds;
    let leaked: Vec<String> = after
        .test_process()
        .fds
        .iter()
        .filter(|(fd, e)| held.get(fd).map(|h| &h.target) != Some(&e.target))
        .map(|(fd, e)| format!("fd {fd} -> {}", e.target))
        .collect();
    if !leaked.is_empty() {
        panic!(
            "descriptor leak: after the call the process still holds {} that it did not hold before \
             ({}). {what_to_close}",
            if leaked.len() == 1 { "a descriptor" } else { "descriptors" },
            leaked.join(", ")
        );
    }
}

/// An error of the code under test, as the judge receives it: the variants the tests look for,
/// any other as its debug text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Failure {
    AddressInUse { endpoint: String },
    NotASocket { path: PathBuf },
    PathTooLong { path: PathBuf },
    ConnectionRefused { endpoint: String },
    NoSuchSocket { path: PathBuf },
    ServerGone { endpoint: String },
    DatagramTooLarge { len: usize },
    Other(String),
}

fn failure(e: &Error) -> Failure {
    match e {
        Error::AddressInUse { endpoint } => Failure::AddressInUse {
            endpoint: endpoint.clone(),
        },
        Error::NotASocket { path } => Failure::NotASocket { path: path.clone() },
        Error::PathTooLong { path } => Failure::PathTooLong { path: path.clone() },
        Error::ConnectionRefused { endpoint } => Failure::ConnectionRefused {
            endpoint: endpoint.clone(),
        },
        Error::NoSuchSocket { path } => Failure::NoSuchSocket { path: path.clone() },
        Error::ServerGone { endpoint } => Failure::ServerGone {
            endpoint: endpoint.clone(),
        },
        Error::DatagramTooLarge { len } => Failure::DatagramTooLarge { len: *len },
        other => Failure::Other(format!("{other:?}")),
    }
}

type Seen<T> = std::result::Result<T, Failure>;

/// The result, with what the judge needs of its value (dropping the value).
fn seen<T, U>(result: Result<T>, keep: impl FnOnce(T) -> U) -> Seen<U> {
    result.map(keep).map_err(|e| failure(&e))
}

// ---------------------------------------------------------------------------------------------
// Task 1: a TCP echo server on 127.0.0.1.

#[rstest]
#[case::small(5)]
#[case::one_mib(MIB)]
fn task1_echoes_what_a_client_sends(#[case] len: usize) {
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let mut client = TestClient::connect(server.endpoint());
        let message = payload(len);
        // Send from a thread: a megabyte does not fit in the socket buffers, and the echo comes
        // back while we are still sending.
        let mut writer = match &client {
            TestClient::Tcp(s) => s.try_clone().expect("dup"),
            TestClient::Unix(_) => unreachable!("a TCP endpoint"),
        };
        let sent = message.clone();
        let sender = thread::spawn(move || writer.write_all(&sent));
        let echo = client.read_echo(&message);
        if !echo.is_right() {
            // The sender may be stuck on a server that does not read: the judge reports the echo.
            return (echo, Ok(()));
        }
        let sent = sender
            .join()
            .expect("the sender")
            .map_err(|e| e.to_string());
        (echo, sent)
    })
    .judge(|(echo, sent), _| {
        assert_echo(&echo, &payload(len), "the client");
        if let Err(e) = sent {
            panic!("send to the server: {e}");
        }
    });
}

#[test]
fn task1_reports_the_real_port_the_kernel_listens_on() {
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        checkpoint("started");
        tcp_addr(&server)
    })
    .judge(|addr, seen| {
        let addr = addr.unwrap_or_else(|wrong| panic!("{wrong}"));
        assert_eq!(
            *addr.ip(),
            Ipv4Addr::LOCALHOST,
            "the server should listen on 127.0.0.1, as asked"
        );
        assert_ne!(
            addr.port(),
            0,
            "port 0 asks the kernel to choose a port: endpoint() must report the port it chose \
             (getsockname after bind)"
        );
        let started = seen.at("started");
        let row = listening_at(started, addr);
        assert!(
            socket_inodes(started).contains(&row.inode),
            "the socket listening at {addr} is not one of this process's descriptors"
        );
    });
}

#[test]
fn task1_serves_several_clients_at_once() {
    const B_WHO: &str = "client B (while client A is connected and silent)";
    const C_WHO: &str = "client C (while A and B are connected)";
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let mut echoes = Vec::new();
        // A connects first and stays silent; B and C must be served all the same.
        let mut a = TestClient::connect(server.endpoint());
        let mut b = TestClient::connect(server.endpoint());
        if !b.ping(b"hello from b\n", &mut echoes) {
            return echoes;
        }
        let mut c = TestClient::connect(server.endpoint());
        if !c.ping(b"c", &mut echoes) {
            return echoes;
        }
        a.ping(b"a, at last", &mut echoes);
        echoes
    })
    .judge(|echoes, _| {
        assert_echoes(
            &echoes,
            &[
                (b"hello from b\n", B_WHO),
                (b"c", C_WHO),
                (b"a, at last", "client A"),
            ],
        );
    });
}

/// How a client's read ended after the server was dropped.
#[derive(Debug, Serialize, Deserialize)]
enum Rest {
    Bytes(Vec<u8>),
    Reset,
    Failed(String),
}

/// Two clients connected to `server`, each having sent "ping" and read its echo, and the echoes
/// for the judge; no clients if an echo was not right (the body stops there: the judge reports it).
fn two_clients_pinged(server: &EchoServer) -> (Vec<TestClient>, Vec<Echo>) {
    let mut clients: Vec<TestClient> = (0..2)
        .map(|_| TestClient::connect(server.endpoint()))
        .collect();
    let mut echoes = Vec::new();
    for c in &mut clients {
        if !c.ping(b"ping", &mut echoes) {
            return (Vec::new(), echoes);
        }
    }
    (clients, echoes)
}

#[test]
fn task1_dropping_the_server_stops_listening_and_joins_its_threads() {
    isolated(STOP_HINT, || {
        checkpoint("before");
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let addr = tcp_addr(&server).unwrap_or_else(|wrong| panic!("{wrong}"));
        let (mut clients, echoes) = two_clients_pinged(&server);
        if clients.is_empty() {
            return (addr, echoes, Vec::new());
        }
        drop(server);
        checkpoint("dropped");
        let rests = clients
            .iter_mut()
            .map(|c| match c.read_rest() {
                Ok(rest) => Rest::Bytes(rest),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Rest::Reset,
                Err(e) => Rest::Failed(e.to_string()),
            })
            .collect();
        drop(clients);
        checkpoint("after");
        (addr, echoes, rests)
    })
    .judge(|(addr, echoes, rests), seen| {
        assert_echoes(&echoes, &[(b"ping", "a client"), (b"ping", "a client")]);
        assert_eq!(
            tcp_listener_at(seen.at("dropped"), addr),
            None,
            "after the server is dropped nothing may listen at {addr} any more"
        );
        for rest in rests {
            match rest {
                Rest::Bytes(rest) => assert!(
                    rest.is_empty(),
                    "a connected client should read end of file once the server is dropped, got {rest:?}"
                ),
                Rest::Reset => {}
                Rest::Failed(e) => panic!(
                    "a client still connected when the server was dropped should see its \
                     connection end (end of file), but its read failed: {e}. Dropping the server \
                     must shut down the connections it serves."
                ),
            }
        }
        let (before, after) = (seen.at("before"), seen.at("after"));
        assert_eq!(
            thread_count(after),
            thread_count(before),
            "threads the server started are still running after it was dropped: join them all"
        );
        assert_no_leaks(
            before,
            after,
            "Dropping the server closes its listening socket and every connection.",
        );
    });
}

/// Whether thread `tid` of this process is asleep (state `S`): in `drop`, that is a join.
fn asleep(tid: nix::unistd::Pid) -> bool {
    procfs::process(tid)
        .ok()
        .flatten()
        .is_some_and(|p| p.state == 'S')
}

#[test]
fn task1_dropping_the_server_waits_until_its_threads_have_ended() {
    isolated(STOP_HINT, || {
        let ours = procfs::own_threads();
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let (clients, echoes) = two_clients_pinged(&server);
        if clients.is_empty() {
            return (echoes, Vec::new(), -1, false);
        }
        // Every thread the server started, held in a signal handler: without a join in drop,
        // they are certain to outlive it.
        let theirs: Vec<_> = procfs::own_threads()
            .into_iter()
            .filter(|t| !ours.contains(t))
            .collect();
        let hold = Hold::threads(&theirs).expect("hold the server's threads");
        let main = nix::unistd::gettid();
        let (in_drop, returned) = (AtomicBool::new(false), AtomicBool::new(false));
        // Released as soon as drop waits (the main thread asleep inside drop), so that a drop
        // that joins can finish.
        let released_in_drop = thread::scope(|scope| {
            let watcher = scope.spawn(|| loop {
                if returned.load(Ordering::SeqCst) {
                    return false;
                }
                if in_drop.load(Ordering::SeqCst)
                    && asleep(main)
                    && !returned.load(Ordering::SeqCst)
                {
                    hold.release();
                    return true;
                }
                thread::yield_now();
            });
            in_drop.store(true, Ordering::SeqCst);
            drop(server);
            returned.store(true, Ordering::SeqCst);
            watcher.join().expect("the watcher thread")
        });
        checkpoint("dropped");
        let gate = hold.gate_fd();
        hold.release();
        let held = theirs.iter().map(|t| t.as_raw()).collect();
        (echoes, held, gate, released_in_drop)
    })
    .judge(
        |(echoes, held, gate, released_in_drop): (Vec<Echo>, Vec<i32>, i32, bool), seen| {
            assert_echoes(&echoes, &[(b"ping", "a client"), (b"ping", "a client")]);
            // Still held: asleep in the hold's read. (A joined thread may still be listed for a
            // moment while the kernel finishes its exit: that one is not asleep there.)
            let running: Vec<i32> = seen
                .at("dropped")
                .test_process()
                .threads
                .iter()
                .filter(|t| held.contains(&t.tid))
                .filter(|t| {
                    t.blocked
                        .is_some_and(|c| c.number == libc::SYS_read && c.args[0] == gate as u64)
                })
                .map(|t| t.tid)
                .collect();
            assert!(
                running.is_empty(),
                "dropping the server returned while {} of the {} threads it started still ran \
             (the test held them up; drop {}): drop must join every thread it started, or \
             they end whenever they get to, after the server is gone",
                running.len(),
                held.len(),
                if released_in_drop {
                    "waited for something, but not for them"
                } else {
                    "never waited"
                }
            );
        },
    );
}

#[test]
fn task1_the_listening_socket_is_close_on_exec() {
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        checkpoint("started");
        tcp_addr(&server)
    })
    .judge(|addr, seen| {
        let addr = addr.unwrap_or_else(|wrong| panic!("{wrong}"));
        let started = seen.at("started");
        let row = listening_at(started, addr);
        let (fd, entry) = started
            .test_process()
            .fds
            .iter()
            .find(|(_, e)| e.target == FdTarget::Socket(row.inode))
            .unwrap_or_else(|| {
                panic!("the socket listening at {addr} is not one of this process's descriptors")
            });
        assert!(
            entry.is_cloexec(),
            "the listening socket (descriptor {fd}) is not close-on-exec: a program this \
             process starts would inherit it and keep the port open as long as that program \
             runs, even after the server is dropped. Create it with SOCK_CLOEXEC"
        );
    });
}

#[test]
fn task1_a_port_in_use_is_a_clear_error() {
    isolated(SERVER_HINT, || {
        let taken = TcpListener::bind(LOOPBACK_ANY_PORT).expect("bind a listener");
        let std::net::SocketAddr::V4(addr) = taken.local_addr().expect("local_addr") else {
            unreachable!("bound to an IPv4 address")
        };
        checkpoint("before");
        let result = seen(EchoServer::start(&Endpoint::Tcp(addr)), drop);
        checkpoint("after");
        (addr, result)
    })
    .judge(|(addr, result), seen| {
        assert!(
            matches!(result, Err(Failure::AddressInUse { .. })),
            "another socket listens at {addr}: expected Err(Error::AddressInUse {{ .. }}), got {result:?}"
        );
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "Close the socket when bind fails.",
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: UDP datagrams.

fn udp_pair() -> (Udp, Udp) {
    let a = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
    let b = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
    (a, b)
}

/// A datagram as the judge receives it: its text and whether it was cut.
fn shown(d: &Datagram) -> (String, bool) {
    (String::from_utf8_lossy(&d.bytes).into_owned(), d.truncated)
}

#[test]
fn task2_each_datagram_arrives_whole_one_per_receive() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        for message in [&b"one"[..], b"two", b"three"] {
            a.send_to(message, b.local_addr())
                .expect("send_to returned an error");
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            let d = b
                .recv(64, PATIENCE)
                .expect("recv returned an error")
                .expect("a datagram sent over loopback should arrive");
            got.push((d.from, shown(&d)));
        }
        (a.local_addr(), got)
    })
    .judge(|(sender, got), _| {
        for (from, _) in &got {
            assert_eq!(
                *from, sender,
                "`from` must be the sender's address, as recvfrom/recvmsg report it"
            );
        }
        let got: Vec<(String, bool)> = got.into_iter().map(|(_, d)| d).collect();
        assert_eq!(
            got,
            [
                ("one".into(), false),
                ("two".into(), false),
                ("three".into(), false)
            ],
            "UDP keeps message boundaries: each send is one datagram, each receive returns one"
        );
    });
}

#[test]
fn task2_an_empty_datagram_is_a_datagram() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        a.send_to(b"", b.local_addr())
            .expect("send_to returned an error");
        let d = b.recv(64, PATIENCE).expect("recv returned an error");
        d.map(|d| (d.bytes, d.truncated))
    })
    .judge(|d, _| {
        assert!(
            matches!(&d, Some((bytes, truncated)) if bytes.is_empty() && !truncated),
            "an empty datagram must arrive as Some(Datagram) with no bytes, got {d:?}"
        );
    });
}

#[test]
fn task2_a_too_small_buffer_truncates_a_datagram() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        a.send_to(b"datagram", b.local_addr())
            .expect("send_to returned an error");
        a.send_to(b"ok", b.local_addr())
            .expect("send_to returned an error");
        let first = b.recv(4, PATIENCE).expect("recv returned an error");
        let second = b.recv(64, PATIENCE).expect("recv returned an error");
        (first.as_ref().map(shown), second.as_ref().map(shown))
    })
    .judge(|(first, second), _| {
        assert_eq!(
            (first, second),
            (Some(("data".into(), true)), Some(("ok".into(), false))),
            "a 4-byte buffer cuts the 8-byte datagram (MSG_TRUNC in the returned flags: report \
             it as `truncated`); the rest is discarded, and the next receive gets the next datagram"
        );
    });
}

const RECV_WAIT_HINT: &str = "a UDP receive with nothing to receive hung: recv(64, 200 ms) \
     must give up after the 200 ms it is given (SO_RCVTIMEO, or poll with a timeout) and return \
     Ok(None), and recv(64, Duration::ZERO) must not wait at all (a zero SO_RCVTIMEO means \
     `wait forever`: use MSG_DONTWAIT).";

/// The bytes waiting in the receive queue of the UDP socket bound to `port`, from the kernel's
/// table (`rx_queue` of `/proc/net/udp`).
fn udp_queued(port: u16) -> u64 {
    let table = fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            let queued = u64::from_str_radix(fields.get(4)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port).then_some(queued)
        })
        .sum()
}

/// What the test saw of receives that must wait, or not.
#[derive(Debug, Serialize, Deserialize)]
struct Waits {
    /// `recv(64, 200 ms)` with nothing sent.
    bounded: Option<String>,
    /// `recv(64, 0)` with nothing sent.
    at_once: Option<String>,
    /// Whether the kernel showed the datagram in the receive queue, and what `recv(64, 0)`
    /// returned then.
    in_queue: bool,
    queued: Option<(String, bool)>,
    /// The receiving thread, and whether the test saw it asleep before it sent.
    receiver: i32,
    slept: std::result::Result<(), String>,
    /// What `recv(64, 600 s)` returned once the datagram was sent.
    late: Option<(String, bool)>,
}

#[test]
fn task2_a_receive_without_a_datagram_is_bounded() {
    isolated(RECV_WAIT_HINT, || {
        let (a, b) = udp_pair();
        let recv = |wait| b.recv(64, wait).expect("recv returned an error");
        let bounded = recv(Duration::from_millis(200)).map(|d| format!("{d:?}"));
        let at_once = recv(Duration::ZERO).map(|d| format!("{d:?}"));
        a.send_to(b"queued", b.local_addr())
            .expect("send_to returned an error");
        // Until the kernel shows the datagram in b's queue (loopback delivers it at once).
        let started = Instant::now();
        let mut in_queue = false;
        while !in_queue && started.elapsed() < PATIENCE {
            in_queue = udp_queued(b.local_addr().port()) > 0;
            thread::yield_now();
        }
        let queued = recv(Duration::ZERO).as_ref().map(shown);
        // A receive that must wait sleeps in the kernel until a datagram comes.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (receiver, slept, late) = thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                let _ = tid_tx.send(nix::unistd::gettid());
                b.recv(64, Duration::from_secs(600))
                    .expect("recv returned an error")
                    .as_ref()
                    .map(shown)
            });
            let tid = tid_rx.recv().expect("the receiving thread starts");
            let slept =
                ipclab_support::procfs::wait_until_blocked(tid, PATIENCE, |_| true).map(drop);
            checkpoint("receiver waits");
            a.send_to(b"late", b.local_addr())
                .expect("send_to returned an error");
            (
                tid.as_raw(),
                slept,
                waiting.join().expect("the receiving thread"),
            )
        });
        Waits {
            bounded,
            at_once,
            in_queue,
            queued,
            receiver,
            slept,
            late,
        }
    })
    .judge(|got: Waits, seen| {
        assert!(
            got.bounded.is_none(),
            "nothing was sent, yet recv(64, 200 ms) returned {:?}",
            got.bounded
        );
        assert!(
            got.at_once.is_none(),
            "nothing was sent, yet recv(64, 0) returned {:?}",
            got.at_once
        );
        assert!(
            got.in_queue,
            "the datagram sent to the receiver never showed in its receive queue \
             (/proc/net/udp): is send_to sending to the address it was given?"
        );
        assert_eq!(
            got.queued,
            Some(("queued".to_owned(), false)),
            "a zero wait takes a datagram already queued: recv(64, Duration::ZERO) must return \
             it (MSG_DONTWAIT), not Ok(None)"
        );
        let asleep = seen
            .at("receiver waits")
            .test_process()
            .threads
            .iter()
            .any(|t| t.tid == got.receiver && t.blocked.is_some());
        assert!(
            got.slept.is_ok() && asleep,
            "recv(64, 600 s) with nothing queued must wait in the kernel for a datagram, but \
             it did not sleep ({:?}) and returned {:?}",
            got.slept,
            got.late
        );
        assert_eq!(
            got.late,
            Some(("late".to_owned(), false)),
            "a datagram sent while recv waits ends the wait: it must come back"
        );
    });
}

/// How many times [`count_interrupt`] ran: each run interrupted a system call of the thread it
/// was sent to.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_interrupt(_: libc::c_int) {
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// What the test saw of a receive interrupted by a signal.
#[derive(Debug, Serialize, Deserialize)]
struct Interrupted {
    receiver: i32,
    /// Whether the receiver was asleep before the signal, and asleep again after it.
    asleep_before: std::result::Result<(), String>,
    asleep_after: std::result::Result<(), String>,
    got: std::result::Result<Option<(String, bool)>, String>,
}

#[test]
fn task2_a_receive_survives_an_interrupting_signal() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        // A handler installed without SA_RESTART: the signal makes the receive fail with EINTR.
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(count_interrupt),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic counter.
        unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGUSR1, &action) }
            .expect("sigaction");
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        thread::scope(|scope| {
            let receiving = scope.spawn(|| {
                let _ = tid_tx.send(nix::unistd::gettid());
                b.recv(64, Duration::from_secs(600))
                    .map(|d| d.as_ref().map(shown))
                    .map_err(|e| format!("{e:?}"))
            });
            let tid = tid_rx.recv().expect("the receiving thread starts");
            let asleep =
                || ipclab_support::procfs::wait_until_blocked(tid, PATIENCE, |_| true).map(drop);
            let asleep_before = asleep();
            // SAFETY: tgkill takes plain integers.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    nix::unistd::getpid().as_raw(),
                    tid.as_raw(),
                    libc::SIGUSR1,
                )
            };
            // The handler has run in the receiver: its receive was interrupted.
            let started = Instant::now();
            while INTERRUPTS.load(Ordering::SeqCst) == 0 && started.elapsed() < PATIENCE {
                thread::yield_now();
            }
            let asleep_after = asleep();
            checkpoint("receiving again");
            a.send_to(b"after the signal", b.local_addr())
                .expect("send_to returned an error");
            Interrupted {
                receiver: tid.as_raw(),
                asleep_before,
                asleep_after,
                got: receiving.join().expect("the receiving thread"),
            }
        })
    })
    .judge(|seen_recv: Interrupted, seen| {
        assert!(
            seen_recv.asleep_before.is_ok(),
            "recv(64, 600 s) with nothing queued must wait in the kernel: {:?}",
            seen_recv.asleep_before
        );
        let got = &seen_recv.got;
        assert!(
            !matches!(got, Err(e) if e.contains("EINTR")),
            "a signal interrupted the receive (EINTR), and recv gave up with {got:?}: a signal \
             is no error of the socket. Retry the receive (for what is left of the wait)"
        );
        let again = seen
            .at("receiving again")
            .test_process()
            .threads
            .iter()
            .any(|t| t.tid == seen_recv.receiver && t.blocked.is_some());
        assert!(
            seen_recv.asleep_after.is_ok() && again,
            "after a signal interrupted it, recv must wait again (retry on EINTR); it returned \
             {got:?}"
        );
        assert_eq!(
            got,
            &Ok(Some(("after the signal".to_owned(), false))),
            "the datagram sent after the signal ends the wait"
        );
    });
}

#[test]
fn task2_the_socket_is_bound_where_it_says() {
    isolated(UDP_HINT, || {
        checkpoint("before");
        let udp = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
        let addr = udp.local_addr();
        checkpoint("bound");
        drop(udp);
        checkpoint("after");
        addr
    })
    .judge(|addr, seen| {
        assert!(
            addr.port() != 0 && *addr.ip() == Ipv4Addr::LOCALHOST,
            "local_addr() must report 127.0.0.1 and the port the kernel chose, got {addr}"
        );
        let bound = seen.at("bound");
        let row = bound.udp_sockets.iter().find(|r| r.local == addr).unwrap_or_else(|| {
            panic!("/proc/net/udp shows no socket bound to {addr}: a UDP socket (AF_INET, SOCK_DGRAM) bound there")
        });
        assert!(socket_inodes(bound).contains(&row.inode));
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "Dropping the Udp closes its socket.",
        );
    });
}

#[test]
fn task2_an_oversized_datagram_is_a_clear_error() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        let result = seen(
            a.send_to(&payload(MAX_UDP_PAYLOAD + 1), b.local_addr()),
            |()| (),
        );
        a.send_to(&payload(MAX_UDP_PAYLOAD), b.local_addr())
            .expect("the largest UDP payload should go");
        let d = b
            .recv(MAX_UDP_PAYLOAD, PATIENCE)
            .expect("recv")
            .expect("a datagram");
        (result, Received::of(&d.bytes, &payload(MAX_UDP_PAYLOAD)))
    })
    .judge(|(result, largest), _| {
        assert!(
            matches!(result, Err(Failure::DatagramTooLarge { len }) if len == MAX_UDP_PAYLOAD + 1),
            "a datagram larger than fits in one IPv4 packet fails with EMSGSIZE: expected \
             Err(Error::DatagramTooLarge {{ len: {} }}), got {result:?}",
            MAX_UDP_PAYLOAD + 1
        );
        largest.assert_matches(&payload(MAX_UDP_PAYLOAD), "the largest datagram");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: an AF_UNIX stream server on a path.

#[test]
fn task3_echoes_over_a_socket_file() {
    isolated(SERVER_HINT, || {
        let dir = scratch_dir();
        let path = dir.join("echo.sock");
        let server = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        let meta = fs::symlink_metadata(&path).expect("bind creates the socket file");
        checkpoint("listening");
        let mut client = TestClient::connect(server.endpoint());
        client.send(b"over a path");
        let echo = client.read_echo(b"over a path");
        (path, meta.file_type().is_socket(), echo)
    })
    .judge(|(path, is_socket, echo), seen| {
        assert!(
            is_socket,
            "{} should be a socket file (ls -l shows it with type `s`)",
            path.display()
        );
        let listening = seen.at("listening");
        let row = unix_socket_bound_to(listening, &path.to_string_lossy())
            .expect("/proc/net/unix should list a socket bound to the path");
        assert!(
            row.listening && row.kind == UNIX_STREAM,
            "the socket bound to the path should be a listening stream socket: {row:?}"
        );
        assert!(socket_inodes(listening).contains(&row.inode));
        assert_echo(&echo, b"over a path", "the client");
    });
}

#[rstest]
#[case::unix_path(Domain::UnixPath)]
#[case::unix_abstract(Domain::UnixAbstract)]
fn task3_local_servers_serve_several_clients_at_once(#[case] domain: Domain) {
    const B_WHO: &str = "client B (while client A is connected and silent)";
    isolated(SERVER_HINT, || {
        let dir = scratch_dir();
        let server = EchoServer::start(&endpoint_in(domain, &dir))
            .expect("EchoServer::start returned an error");
        let mut echoes = Vec::new();
        let mut a = TestClient::connect(server.endpoint());
        let mut b = TestClient::connect(server.endpoint());
        if b.ping(b"b", &mut echoes) {
            a.ping(b"a", &mut echoes);
        }
        echoes
    })
    .judge(|echoes, _| {
        assert_echoes(&echoes, &[(b"b", B_WHO), (b"a", "client A")]);
    });
}

#[test]
fn task3_dropping_the_server_removes_its_socket_file() {
    isolated(STOP_HINT, || {
        let path = scratch_dir().join("echo.sock");
        let server = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        drop(server);
        checkpoint("dropped");
        path
    })
    .judge(|path, seen| {
        // The judge looks at the test's scratch directory itself.
        assert!(
            !path.exists(),
            "{} is still there after the server was dropped: the kernel never removes a socket \
             file, the server must (remove_file when it stops)",
            path.display()
        );
        assert_eq!(
            unix_socket_bound_to(seen.at("dropped"), &path.to_string_lossy()),
            None,
            "the listening socket is still open after the server was dropped"
        );
    });
}

#[test]
fn task3_the_socket_file_goes_even_when_its_owner_panics() {
    isolated(STOP_HINT, || {
        let path = scratch_dir().join("echo.sock");
        let at = Endpoint::UnixPath(path.clone());
        // The owner is a thread of its own, so that its panic is the owner's, not the test's.
        let (started, started_rx) = std::sync::mpsc::channel();
        let owner = thread::spawn(move || {
            let _server = EchoServer::start(&at).expect("EchoServer::start returned an error");
            let _ = started.send(());
            panic!("the code using the server panics (on purpose)");
        });
        // The owner's panic, quoted by the judge (the thread's own output is captured).
        let panic = owner.join().err().map(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        });
        (started_rx.try_recv().is_ok(), path, panic)
    })
    .judge(|(started, path, panic), _| {
        assert!(
            started,
            "the server never started in the owner thread (its panic is quoted below)\n{}",
            panic.unwrap_or_default()
        );
        assert!(
            !path.exists(),
            "{} survived a panic of the code that owned the server: remove it in Drop (a guard), \
             which unwinding runs, rather than in a method someone must remember to call",
            path.display()
        );
    });
}

#[test]
fn task3_a_file_in_the_way_is_left_alone() {
    isolated(SERVER_HINT, || {
        let path = scratch_dir().join("notes.txt");
        fs::write(&path, "precious").expect("write a file");
        checkpoint("before");
        let result = seen(EchoServer::start(&Endpoint::UnixPath(path.clone())), drop);
        checkpoint("after");
        (path, result)
    })
    .judge(|(path, result), seen| {
        assert!(
            matches!(&result, Err(Failure::NotASocket { path: p }) if *p == path),
            "a regular file is in the way: expected Err(Error::NotASocket {{ path }}), got {result:?}"
        );
        assert_eq!(
            fs::read_to_string(&path).ok().as_deref(),
            Some("precious"),
            "the file in the way must be left as it was"
        );
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "Close the socket when bind fails.",
        );
    });
}

#[test]
fn task3_a_socket_file_replaced_by_another_file_is_left_alone() {
    isolated(STOP_HINT, || {
        let path = scratch_dir().join("echo.sock");
        let server = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        // Somebody else puts a file of their own where the socket file was.
        let theirs = scratch_dir().join("theirs.txt");
        fs::write(&theirs, "precious").expect("write a file");
        fs::rename(&theirs, &path).expect("rename the file over the socket's path");
        drop(server);
        checkpoint("dropped");
        path
    })
    .judge(|path, _| {
        // The judge looks at the test's scratch directory itself.
        assert_eq!(
            fs::read_to_string(&path).ok().as_deref(),
            Some("precious"),
            "{} was replaced by somebody else's file before the server was dropped, and the \
             server's Drop removed that file: remove the path only if it is still the socket \
             the server bound (same device and inode)",
            path.display()
        );
    });
}

#[test]
fn task3_a_second_server_on_the_same_path_leaves_the_first_alone() {
    isolated(SERVER_HINT, || {
        let path = scratch_dir().join("echo.sock");
        let first = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        let second = seen(EchoServer::start(&Endpoint::UnixPath(path.clone())), drop);
        let still_there = path.exists();
        checkpoint("after the second start");
        let mut client = TestClient::connect(first.endpoint());
        client.send(b"still here");
        let echo = client.read_echo(b"still here");
        (path, second, still_there, echo)
    })
    .judge(|(path, second, still_there, echo), seen| {
        assert!(
            matches!(second, Err(Failure::AddressInUse { .. })),
            "a server already listens on {}: expected Err(Error::AddressInUse {{ .. }}), got {second:?}",
            path.display()
        );
        assert!(
            still_there,
            "the failed second server removed the first server's socket file: only a server \
             that bound the path may remove it"
        );
        assert!(
            unix_socket_bound_to(seen.at("after the second start"), &path.to_string_lossy())
                .is_some_and(|row| row.listening),
            "the first server's socket no longer listens on {}",
            path.display()
        );
        assert_echo(&echo, b"still here", "a client of the first server");
    });
}

#[test]
fn task3_a_path_too_long_for_sockaddr_un_is_a_clear_error() {
    isolated(SERVER_HINT, || {
        let path = scratch_dir().join("x".repeat(120));
        seen(EchoServer::start(&Endpoint::UnixPath(path)), drop)
    })
    .judge(|result, _| {
        assert!(
            matches!(result, Err(Failure::PathTooLong { .. })),
            "sun_path holds 108 bytes: expected Err(Error::PathTooLong {{ .. }}), got {result:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: an abstract name.

#[test]
fn task4_echoes_over_an_abstract_name_without_a_file() {
    isolated(SERVER_HINT, || {
        let dir = scratch_dir();
        std::env::set_current_dir(&dir).expect("cd into a temporary directory");
        let name = unique_name();
        let server = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        checkpoint("listening");
        let files: Vec<String> = fs::read_dir(&dir)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut client = TestClient::connect(server.endpoint());
        client.send(b"abstract");
        let echo = client.read_echo(b"abstract");
        (name, files, echo)
    })
    .judge(|(name, files, echo), seen| {
        let listening = seen.at("listening");
        let row = unix_socket_bound_to(listening, &format!("@{name}")).unwrap_or_else(|| {
            panic!("/proc/net/unix lists no socket bound to @{name}: bind a UnixAddr::new_abstract name")
        });
        assert!(row.listening && row.kind == UNIX_STREAM, "{row:?}");
        assert!(socket_inodes(listening).contains(&row.inode));
        assert!(
            files.is_empty(),
            "an abstract name creates no file, but the current directory now holds {files:?}"
        );
        assert_echo(&echo, b"abstract", "the client");
    });
}

#[test]
fn task4_the_name_vanishes_with_the_server() {
    isolated(STOP_HINT, || {
        let name = unique_name();
        let server = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        drop(server);
        checkpoint("dropped");
        // And so it can be used again at once: there is no file to clean up.
        let again = seen(
            EchoServer::start(&Endpoint::UnixAbstract(name.clone())),
            drop,
        );
        (name, again)
    })
    .judge(|(name, again), seen| {
        assert_eq!(
            unix_socket_bound_to(seen.at("dropped"), &format!("@{name}")),
            None,
            "@{name} is still bound after the server was dropped: close the listening socket"
        );
        if let Err(e) = again {
            panic!("the name should be free again once the server is gone: {e:?}");
        }
    });
}

#[test]
fn task4_a_second_server_with_the_same_name_is_refused() {
    isolated(SERVER_HINT, || {
        let name = unique_name();
        let _first = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        seen(EchoServer::start(&Endpoint::UnixAbstract(name)), drop)
    })
    .judge(|second, _| {
        assert!(
            matches!(second, Err(Failure::AddressInUse { .. })),
            "expected Err(Error::AddressInUse {{ .. }}), got {second:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: a client, and errors that name their cause.

/// A server of the test's own (std, independent of the code under test) at `domain`, which
/// accepts one connection and runs `serve` on it. Returns its endpoint and its thread.
fn test_server(
    domain: Domain,
    dir: &Path,
    serve: impl FnOnce(Box<dyn ReadWrite>) + Send + 'static,
) -> (Endpoint, thread::JoinHandle<()>) {
    let (endpoint, accept): (Endpoint, Box<dyn FnOnce() -> Box<dyn ReadWrite> + Send>) =
        match endpoint_in(domain, dir) {
            Endpoint::Tcp(addr) => {
                let listener = TcpListener::bind(addr).expect("bind a test listener");
                let std::net::SocketAddr::V4(real) = listener.local_addr().expect("local_addr")
                else {
                    unreachable!("bound to an IPv4 address")
                };
                (
                    Endpoint::Tcp(real),
                    Box::new(move || Box::new(listener.accept().expect("accept").0)),
                )
            }
            Endpoint::UnixPath(path) => {
                let listener = UnixListener::bind(&path).expect("bind a test listener");
                (
                    Endpoint::UnixPath(path),
                    Box::new(move || Box::new(listener.accept().expect("accept").0)),
                )
            }
            Endpoint::UnixAbstract(name) => {
                let addr = UnixSocketAddr::from_abstract_name(&name).expect("an abstract name");
                let listener = UnixListener::bind_addr(&addr).expect("bind a test listener");
                (
                    Endpoint::UnixAbstract(name),
                    Box::new(move || Box::new(listener.accept().expect("accept").0)),
                )
            }
        };
    (endpoint, thread::spawn(move || serve(accept())))
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn echo_test_server(mut conn: Box<dyn ReadWrite>) {
    let mut buf = [0u8; 8192];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

#[rstest]
#[case::tcp(Domain::Tcp)]
#[case::unix_path(Domain::UnixPath)]
#[case::unix_abstract(Domain::UnixAbstract)]
fn task5_client_echoes_in_every_domain(#[case] domain: Domain) {
    const MESSAGES: [&[u8]; 2] = [b"first", b"second, longer"];
    isolated(CLIENT_HINT, || {
        let dir = scratch_dir();
        let (endpoint, _server) = test_server(domain, &dir, echo_test_server);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        MESSAGES
            .iter()
            .map(|message| {
                let echo = client.echo(message).expect("echo returned an error");
                Received::of(&echo, message)
            })
            .collect::<Vec<_>>()
    })
    .judge(|echoes, _| {
        assert_eq!(echoes.len(), MESSAGES.len());
        for (echo, message) in echoes.iter().zip(MESSAGES) {
            echo.assert_matches(message, "the echo");
        }
    });
}

#[test]
fn task5_a_large_message_comes_back_whole() {
    isolated(CLIENT_HINT, || {
        let dir = scratch_dir();
        let (endpoint, _server) = test_server(Domain::Tcp, &dir, echo_test_server);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        let message = payload(4 * MIB);
        let echo = client.echo(&message).expect("echo returned an error");
        Received::of(&echo, &message)
    })
    .judge(|echo, _| {
        echo.assert_matches(&payload(4 * MIB), "the echo of 4 MiB");
    });
}

/// A socket bound to `endpoint`'s address but not listening: connecting to it is refused.
fn bound_but_not_listening(domain: Domain, dir: &Path) -> (OwnedFd, Endpoint) {
    match endpoint_in(domain, dir) {
        Endpoint::Tcp(addr) => {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).expect("bind");
            let real: SockaddrIn =
                nix::sys::socket::getsockname(fd.as_raw_fd()).expect("getsockname");
            (fd, Endpoint::Tcp(real.into()))
        }
        Endpoint::UnixPath(path) => {
            let fd = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            bind(fd.as_raw_fd(), &UnixAddr::new(&path).expect("a path")).expect("bind");
            (fd, Endpoint::UnixPath(path))
        }
        Endpoint::UnixAbstract(name) => {
            // Nothing bound at all: an unused abstract name is refused the same way.
            let fd = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .expect("socket");
            (fd, Endpoint::UnixAbstract(name))
        }
    }
}

#[rstest]
#[case::tcp(Domain::Tcp)]
#[case::unix_path(Domain::UnixPath)]
#[case::unix_abstract(Domain::UnixAbstract)]
fn task5_nothing_listening_is_connection_refused(#[case] domain: Domain) {
    isolated(CLIENT_HINT, || {
        let dir = scratch_dir();
        // Held bound (so no one else can take the port or path) but never listening.
        let (_held, endpoint) = bound_but_not_listening(domain, &dir);
        checkpoint("before");
        let result = seen(Client::connect(&endpoint), drop);
        checkpoint("after");
        (endpoint.to_string(), result)
    })
    .judge(|(endpoint, result), seen| {
        assert!(
            matches!(result, Err(Failure::ConnectionRefused { .. })),
            "nothing listens at {endpoint}: connect fails with ECONNREFUSED, expected \
             Err(Error::ConnectionRefused {{ .. }}), got {result:?}"
        );
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "Close the socket when connect fails.",
        );
    });
}

#[test]
fn task5_a_missing_socket_file_is_a_clear_error() {
    isolated(CLIENT_HINT, || {
        let path = scratch_dir().join("nobody.sock");
        let result = seen(Client::connect(&Endpoint::UnixPath(path.clone())), drop);
        (path, result)
    })
    .judge(|(path, result), _| {
        assert!(
            matches!(&result, Err(Failure::NoSuchSocket { path: p }) if *p == path),
            "there is no file at the path (connect fails with ENOENT): expected \
             Err(Error::NoSuchSocket {{ path }}), got {result:?}"
        );
    });
}

/// How a child of the test ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Ended {
    Exited(i32),
    Killed(i32),
}

fn wait_for(child: nix::unistd::Pid) -> Ended {
    loop {
        match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Ended::Exited(code),
            Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => {
                return Ended::Killed(signal as i32)
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("waitpid: {e}"),
        }
    }
}

#[test]
fn task5_a_path_too_long_for_the_client_is_a_clear_error() {
    isolated(CLIENT_HINT, || {
        let path = scratch_dir().join("x".repeat(120));
        checkpoint("before");
        let result = seen(Client::connect(&Endpoint::UnixPath(path)), drop);
        checkpoint("after");
        result
    })
    .judge(|result, seen| {
        assert!(
            matches!(result, Err(Failure::PathTooLong { .. })),
            "sun_path holds 108 bytes, so no socket can be reached at a longer path: expected \
             Err(Error::PathTooLong {{ .. }}), got {result:?}"
        );
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "A connect that cannot even be tried leaves no socket open.",
        );
    });
}

#[rstest]
#[case::tcp(Domain::Tcp)]
#[case::unix_path(Domain::UnixPath)]
#[case::unix_abstract(Domain::UnixAbstract)]
fn task5_a_server_that_is_gone_is_a_clear_error(#[case] domain: Domain) {
    isolated(CLIENT_HINT, || {
        let dir = scratch_dir();
        // The server accepts the connection and closes it at once.
        let (endpoint, server) = test_server(domain, &dir, drop);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        server.join().expect("the test server");
        // The echo runs in a child whose SIGPIPE is at its default (the test harness ignores
        // it, as Rust programs do): a send to the closed connection without MSG_NOSIGNAL kills
        // it there.
        let (result_read, result_write) = nix::unistd::pipe().expect("pipe");
        let result_write = fs::File::from(result_write);
        let child = ipclab_support::child::spawn_child(|| {
            // SAFETY: sets a disposition; no handler of ours runs.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            checkpoint("SIGPIPE at its default");
            let result = seen(client.echo(b"anyone there?"), drop);
            let _ = (&result_write).write_all(format!("{result:?}").as_bytes());
            i32::from(!matches!(result, Err(Failure::ServerGone { .. })))
        });
        drop(result_write);
        let mut result = String::new();
        let _ = fs::File::from(result_read).read_to_string(&mut result);
        (child.as_raw(), wait_for(child), result)
    })
    .judge(|(child, ended, result): (i32, Ended, String), seen| {
        let ready = seen.at("SIGPIPE at its default");
        let ignored = ready
            .expect_process(child, "the child that echoes")
            .signals
            .ignored
            .contains_number(libc::SIGPIPE);
        assert!(!ignored, "the test's child still ignores SIGPIPE");
        assert_ne!(
            ended,
            Ended::Killed(libc::SIGPIPE),
            "echo() to a server that closed the connection killed its process with SIGPIPE: \
             send with MSG_NOSIGNAL (send(2), not write), so that a vanished peer is the error \
             EPIPE, and report it as Error::ServerGone"
        );
        assert!(
            matches!(ended, Ended::Exited(_)),
            "the process running echo() was killed ({ended:?})"
        );
        assert!(
            result.starts_with("Err(ServerGone"),
            "the server closed the connection: end of file (or EPIPE, or ECONNRESET) must be \
             Err(Error::ServerGone {{ .. }}), got {result}"
        );
    });
}

#[test]
fn task5_client_leaks_no_descriptor() {
    isolated(CLIENT_HINT, || {
        let dir = scratch_dir();
        let (endpoint, server) = test_server(Domain::UnixPath, &dir, echo_test_server);
        checkpoint("before");
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        client.echo(b"x").expect("echo returned an error");
        drop(client);
        // The test server ends (closing its side) when it reads end of file: our close.
        server.join().expect("the test server");
        checkpoint("after");
    })
    .judge(|(), seen| {
        assert_no_leaks(
            seen.at("before"),
            seen.at("after"),
            "Dropping the Client closes its socket.",
        );
    });
}
