//! The graded suite of exercise 08: sockets across domains and types.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), because servers block in threads and a hang must become a
//! failing test with a hint. The kernel is the witness: `/proc/net/tcp`, `/proc/net/udp` and
//! `/proc/net/unix` say what is bound and listening, `/proc/self/fd` which sockets we hold and
//! `/proc/self/task` which threads still run. Network tests use the loopback interface only.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use exercise08::*;
use ipclab_support::data::{assert_same_bytes, payload, MIB};
use ipclab_support::isolated;
use ipclab_support::netprocfs::{self, UNIX_STREAM};
use ipclab_support::procfs::FdSnapshot;
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr};
use rstest::rstest;

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

fn tcp_addr(server: &EchoServer) -> SocketAddrV4 {
    match server.endpoint() {
        Endpoint::Tcp(addr) => *addr,
        other => panic!("a TCP server's endpoint should be Endpoint::Tcp, got {other:?}"),
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

    /// Reads `expected.len()` bytes and compares them, or fails naming `who`.
    fn expect_echo(&mut self, expected: &[u8], who: &str) {
        let mut got = vec![0u8; expected.len()];
        match self.stream().read_exact(&mut got) {
            Ok(()) => assert_same_bytes(&got, expected, &format!("the echo {who} received")),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "{who} got no echo within {PATIENCE:?}. The server is not serving it: does it \
                     serve one connection at a time (another client is connected and idle), or \
                     wait for more bytes before echoing?"
                )
            }
            Err(e) => panic!("{who} could not read its echo: {e}"),
        }
    }

    /// Reads until end of file (or the patience runs out) and returns what came.
    fn read_rest(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.stream().read_to_end(&mut rest).map(|_| rest)
    }
}

fn thread_count() -> usize {
    fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
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
        client.expect_echo(&message, "the client");
        sender
            .join()
            .expect("the sender")
            .expect("send to the server");
    });
}

#[test]
fn task1_reports_the_real_port_the_kernel_listens_on() {
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let addr = tcp_addr(&server);
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
        let row = netprocfs::tcp_listener_at(addr)
            .expect("read /proc/net/tcp")
            .unwrap_or_else(|| {
                panic!("/proc/net/tcp shows no LISTEN socket at {addr}: bind and listen before start() returns")
            });
        assert!(
            netprocfs::own_socket_inodes().contains(&row.inode),
            "the socket listening at {addr} is not one of this process's descriptors"
        );
    });
}

#[test]
fn task1_serves_several_clients_at_once() {
    isolated(SERVER_HINT, || {
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        // A connects first and stays silent; B and C must be served all the same.
        let mut a = TestClient::connect(server.endpoint());
        let mut b = TestClient::connect(server.endpoint());
        b.send(b"hello from b\n");
        b.expect_echo(
            b"hello from b\n",
            "client B (while client A is connected and silent)",
        );
        let mut c = TestClient::connect(server.endpoint());
        c.send(b"c");
        c.expect_echo(b"c", "client C (while A and B are connected)");
        a.send(b"a, at last");
        a.expect_echo(b"a, at last", "client A");
    });
}

#[test]
fn task1_dropping_the_server_stops_listening_and_joins_its_threads() {
    isolated(STOP_HINT, || {
        let threads = thread_count();
        let before = FdSnapshot::take();
        let server = EchoServer::start(&Endpoint::Tcp(LOOPBACK_ANY_PORT))
            .expect("EchoServer::start returned an error");
        let addr = tcp_addr(&server);
        let mut clients: Vec<TestClient> = (0..2)
            .map(|_| TestClient::connect(server.endpoint()))
            .collect();
        for c in &mut clients {
            c.send(b"ping");
            c.expect_echo(b"ping", "a client");
        }
        drop(server);
        assert_eq!(
            netprocfs::tcp_listener_at(addr).expect("read /proc/net/tcp"),
            None,
            "after the server is dropped nothing may listen at {addr} any more"
        );
        for c in &mut clients {
            match c.read_rest() {
                Ok(rest) => assert!(
                    rest.is_empty(),
                    "a connected client should read end of file once the server is dropped, got {rest:?}"
                ),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!(
                    "a client still connected when the server was dropped should see its \
                     connection end (end of file), but its read failed: {e}. Dropping the server \
                     must shut down the connections it serves."
                ),
            }
        }
        drop(clients);
        assert_eq!(
            thread_count(),
            threads,
            "threads the server started are still running after it was dropped: join them all"
        );
        before.assert_no_leaks(
            "Dropping the server closes its listening socket and every connection.",
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
        let before = FdSnapshot::take();
        let result = EchoServer::start(&Endpoint::Tcp(addr));
        assert!(
            matches!(result, Err(Error::AddressInUse { .. })),
            "another socket listens at {addr}: expected Err(Error::AddressInUse {{ .. }}), got {result:?}"
        );
        before.assert_no_leaks("Close the socket when bind fails.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: UDP datagrams.

fn udp_pair() -> (Udp, Udp) {
    let a = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
    let b = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
    (a, b)
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
            assert_eq!(
                d.from,
                a.local_addr(),
                "`from` must be the sender's address, as recvfrom/recvmsg report it"
            );
            got.push((String::from_utf8_lossy(&d.bytes).into_owned(), d.truncated));
        }
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
        assert!(
            matches!(&d, Some(d) if d.bytes.is_empty() && !d.truncated),
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
        let show = |d: &Option<Datagram>| {
            d.as_ref()
                .map(|d| (String::from_utf8_lossy(&d.bytes).into_owned(), d.truncated))
        };
        assert_eq!(
            (show(&first), show(&second)),
            (Some(("data".into(), true)), Some(("ok".into(), false))),
            "a 4-byte buffer cuts the 8-byte datagram (MSG_TRUNC in the returned flags: report \
             it as `truncated`); the rest is discarded, and the next receive gets the next datagram"
        );
    });
}

#[test]
fn task2_a_receive_without_a_datagram_is_bounded() {
    isolated(UDP_HINT, || {
        let (_a, b) = udp_pair();
        let wait = Duration::from_millis(200);
        let started = Instant::now();
        let got = b.recv(64, wait).expect("recv returned an error");
        let took = started.elapsed();
        assert!(got.is_none(), "nothing was sent, yet recv returned {got:?}");
        assert!(
            took >= wait.mul_f32(0.9),
            "recv returned after {took:?}: it should wait (about) the {wait:?} it was given"
        );
        let started = Instant::now();
        let got = b.recv(64, Duration::ZERO).expect("recv returned an error");
        assert!(
            got.is_none() && started.elapsed() < PATIENCE,
            "a zero wait takes only a datagram already queued, at once"
        );
    });
}

#[test]
fn task2_the_socket_is_bound_where_it_says() {
    isolated(UDP_HINT, || {
        let before = FdSnapshot::take();
        let udp = Udp::bind(LOOPBACK_ANY_PORT).expect("Udp::bind returned an error");
        let addr = udp.local_addr();
        assert!(
            addr.port() != 0 && *addr.ip() == Ipv4Addr::LOCALHOST,
            "local_addr() must report 127.0.0.1 and the port the kernel chose, got {addr}"
        );
        let rows = netprocfs::udp_sockets().expect("read /proc/net/udp");
        let row = rows.iter().find(|r| r.local == addr).unwrap_or_else(|| {
            panic!("/proc/net/udp shows no socket bound to {addr}: a UDP socket (AF_INET, SOCK_DGRAM) bound there")
        });
        assert!(netprocfs::own_socket_inodes().contains(&row.inode));
        drop(udp);
        before.assert_no_leaks("Dropping the Udp closes its socket.");
    });
}

#[test]
fn task2_an_oversized_datagram_is_a_clear_error() {
    isolated(UDP_HINT, || {
        let (a, b) = udp_pair();
        let result = a.send_to(&payload(MAX_UDP_PAYLOAD + 1), b.local_addr());
        assert!(
            matches!(result, Err(Error::DatagramTooLarge { len }) if len == MAX_UDP_PAYLOAD + 1),
            "a datagram larger than fits in one IPv4 packet fails with EMSGSIZE: expected \
             Err(Error::DatagramTooLarge {{ len: {} }}), got {result:?}",
            MAX_UDP_PAYLOAD + 1
        );
        a.send_to(&payload(MAX_UDP_PAYLOAD), b.local_addr())
            .expect("the largest UDP payload should go");
        let d = b
            .recv(MAX_UDP_PAYLOAD, PATIENCE)
            .expect("recv")
            .expect("a datagram");
        assert_same_bytes(&d.bytes, &payload(MAX_UDP_PAYLOAD), "the largest datagram");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: an AF_UNIX stream server on a path.

#[test]
fn task3_echoes_over_a_socket_file() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("echo.sock");
        let server = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        let meta = fs::symlink_metadata(&path).expect("bind creates the socket file");
        assert!(
            meta.file_type().is_socket(),
            "{} should be a socket file (ls -l shows it with type `s`)",
            path.display()
        );
        let row = netprocfs::unix_socket_bound_to(&path.to_string_lossy())
            .expect("read /proc/net/unix")
            .expect("/proc/net/unix should list a socket bound to the path");
        assert!(
            row.listening && row.kind == UNIX_STREAM,
            "the socket bound to the path should be a listening stream socket: {row:?}"
        );
        assert!(netprocfs::own_socket_inodes().contains(&row.inode));
        let mut client = TestClient::connect(server.endpoint());
        client.send(b"over a path");
        client.expect_echo(b"over a path", "the client");
    });
}

#[rstest]
#[case::unix_path(Domain::UnixPath)]
#[case::unix_abstract(Domain::UnixAbstract)]
fn task3_local_servers_serve_several_clients_at_once(#[case] domain: Domain) {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = EchoServer::start(&endpoint_in(domain, dir.path()))
            .expect("EchoServer::start returned an error");
        let mut a = TestClient::connect(server.endpoint());
        let mut b = TestClient::connect(server.endpoint());
        b.send(b"b");
        b.expect_echo(b"b", "client B (while client A is connected and silent)");
        a.send(b"a");
        a.expect_echo(b"a", "client A");
    });
}

#[test]
fn task3_dropping_the_server_removes_its_socket_file() {
    isolated(STOP_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("echo.sock");
        let server = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        drop(server);
        assert!(
            !path.exists(),
            "{} is still there after the server was dropped: the kernel never removes a socket \
             file, the server must (remove_file when it stops)",
            path.display()
        );
        assert_eq!(
            netprocfs::unix_socket_bound_to(&path.to_string_lossy()).expect("read /proc/net/unix"),
            None,
            "the listening socket is still open after the server was dropped"
        );
    });
}

#[test]
fn task3_the_socket_file_goes_even_when_its_owner_panics() {
    isolated(STOP_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("echo.sock");
        let at = Endpoint::UnixPath(path.clone());
        // The owner is a thread of its own, so that its panic is the owner's, not the test's.
        let (started, started_rx) = std::sync::mpsc::channel();
        let owner = thread::spawn(move || {
            let _server = EchoServer::start(&at).expect("EchoServer::start returned an error");
            let _ = started.send(());
            panic!("the code using the server panics (on purpose)");
        });
        let _ = owner.join();
        assert!(
            started_rx.try_recv().is_ok(),
            "the server never started in the owner thread (its panic is quoted below)"
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
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("notes.txt");
        fs::write(&path, "precious").expect("write a file");
        let before = FdSnapshot::take();
        let result = EchoServer::start(&Endpoint::UnixPath(path.clone()));
        assert!(
            matches!(&result, Err(Error::NotASocket { path: p }) if *p == path),
            "a regular file is in the way: expected Err(Error::NotASocket {{ path }}), got {result:?}"
        );
        assert_eq!(
            fs::read_to_string(&path).ok().as_deref(),
            Some("precious"),
            "the file in the way must be left as it was"
        );
        before.assert_no_leaks("Close the socket when bind fails.");
    });
}

#[test]
fn task3_a_second_server_on_the_same_path_leaves_the_first_alone() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("echo.sock");
        let first = EchoServer::start(&Endpoint::UnixPath(path.clone()))
            .expect("EchoServer::start returned an error");
        let second = EchoServer::start(&Endpoint::UnixPath(path.clone()));
        assert!(
            matches!(second, Err(Error::AddressInUse { .. })),
            "a server already listens on {}: expected Err(Error::AddressInUse {{ .. }}), got {second:?}",
            path.display()
        );
        assert!(
            path.exists(),
            "the failed second server removed the first server's socket file: only a server \
             that bound the path may remove it"
        );
        let mut client = TestClient::connect(first.endpoint());
        client.send(b"still here");
        client.expect_echo(b"still here", "a client of the first server");
    });
}

#[test]
fn task3_a_path_too_long_for_sockaddr_un_is_a_clear_error() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("x".repeat(120));
        let result = EchoServer::start(&Endpoint::UnixPath(path));
        assert!(
            matches!(result, Err(Error::PathTooLong { .. })),
            "sun_path holds 108 bytes: expected Err(Error::PathTooLong {{ .. }}), got {result:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: an abstract name.

#[test]
fn task4_echoes_over_an_abstract_name_without_a_file() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::env::set_current_dir(dir.path()).expect("cd into a temporary directory");
        let name = unique_name();
        let server = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        let row = netprocfs::unix_socket_bound_to(&format!("@{name}"))
            .expect("read /proc/net/unix")
            .unwrap_or_else(|| {
                panic!("/proc/net/unix lists no socket bound to @{name}: bind a UnixAddr::new_abstract name")
            });
        assert!(row.listening && row.kind == UNIX_STREAM, "{row:?}");
        assert!(netprocfs::own_socket_inodes().contains(&row.inode));
        let files: Vec<_> = fs::read_dir(dir.path()).expect("list").collect();
        assert!(
            files.is_empty(),
            "an abstract name creates no file, but the current directory now holds {files:?}"
        );
        let mut client = TestClient::connect(server.endpoint());
        client.send(b"abstract");
        client.expect_echo(b"abstract", "the client");
    });
}

#[test]
fn task4_the_name_vanishes_with_the_server() {
    isolated(STOP_HINT, || {
        let name = unique_name();
        let server = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        drop(server);
        assert_eq!(
            netprocfs::unix_socket_bound_to(&format!("@{name}")).expect("read /proc/net/unix"),
            None,
            "@{name} is still bound after the server was dropped: close the listening socket"
        );
        // And so it can be used again at once: there is no file to clean up.
        drop(
            EchoServer::start(&Endpoint::UnixAbstract(name))
                .expect("the name should be free again once the server is gone"),
        );
    });
}

#[test]
fn task4_a_second_server_with_the_same_name_is_refused() {
    isolated(SERVER_HINT, || {
        let name = unique_name();
        let _first = EchoServer::start(&Endpoint::UnixAbstract(name.clone()))
            .expect("EchoServer::start returned an error");
        let second = EchoServer::start(&Endpoint::UnixAbstract(name));
        assert!(
            matches!(second, Err(Error::AddressInUse { .. })),
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
    isolated(CLIENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (endpoint, _server) = test_server(domain, dir.path(), echo_test_server);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        for message in [&b"first"[..], b"second, longer"] {
            let echo = client.echo(message).expect("echo returned an error");
            assert_same_bytes(&echo, message, "the echo");
        }
    });
}

#[test]
fn task5_a_large_message_comes_back_whole() {
    isolated(CLIENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (endpoint, _server) = test_server(Domain::Tcp, dir.path(), echo_test_server);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        let message = payload(4 * MIB);
        let echo = client.echo(&message).expect("echo returned an error");
        assert_same_bytes(&echo, &message, "the echo of 4 MiB");
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
        let dir = tempfile::tempdir().expect("temporary directory");
        // Held bound (so no one else can take the port or path) but never listening.
        let (_held, endpoint) = bound_but_not_listening(domain, dir.path());
        let before = FdSnapshot::take();
        let result = Client::connect(&endpoint);
        assert!(
            matches!(result, Err(Error::ConnectionRefused { .. })),
            "nothing listens at {endpoint}: connect fails with ECONNREFUSED, expected \
             Err(Error::ConnectionRefused {{ .. }}), got {result:?}"
        );
        before.assert_no_leaks("Close the socket when connect fails.");
    });
}

#[test]
fn task5_a_missing_socket_file_is_a_clear_error() {
    isolated(CLIENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nobody.sock");
        let result = Client::connect(&Endpoint::UnixPath(path.clone()));
        assert!(
            matches!(&result, Err(Error::NoSuchSocket { path: p }) if *p == path),
            "there is no file at the path (connect fails with ENOENT): expected \
             Err(Error::NoSuchSocket {{ path }}), got {result:?}"
        );
    });
}

#[rstest]
#[case::tcp(Domain::Tcp)]
#[case::unix_path(Domain::UnixPath)]
fn task5_a_server_that_is_gone_is_a_clear_error(#[case] domain: Domain) {
    isolated(CLIENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        // The server accepts the connection and closes it at once.
        let (endpoint, server) = test_server(domain, dir.path(), drop);
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        server.join().expect("the test server");
        let result = client.echo(b"anyone there?");
        assert!(
            matches!(result, Err(Error::ServerGone { .. })),
            "the server closed the connection: end of file (or EPIPE, or ECONNRESET) must be \
             Err(Error::ServerGone {{ .. }}), got {result:?}"
        );
    });
}

#[test]
fn task5_client_leaks_no_descriptor() {
    isolated(CLIENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (endpoint, server) = test_server(Domain::UnixPath, dir.path(), echo_test_server);
        let before = FdSnapshot::take();
        let mut client = Client::connect(&endpoint).expect("Client::connect returned an error");
        client.echo(b"x").expect("echo returned an error");
        drop(client);
        // The test server ends (closing its side) when it reads end of file: our close.
        server.join().expect("the test server");
        before.assert_no_leaks("Dropping the Client closes its socket.");
    });
}
