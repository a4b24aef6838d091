//! What the kernel says about sockets: the tables in `/proc/net/{unix,tcp,udp}`.
//!
//! A socket descriptor shows in `/proc/<pid>/fd` only as `socket:[inode]`. These tables say what
//! is behind the inode: the address a socket is bound to, whether it listens, its type. Suites use
//! them as the witness that a server really listens where it says (and stops when it says), that a
//! socket file or abstract name is really bound, and that a socket is a stream or a datagram one.
//!
//! The tables belong to the network namespace, not to a process: filter them by the inodes a
//! process holds ([`own_socket_inodes`]) to find that process's sockets.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::procfs::{own_fd_table, FdTarget};

/// `SOCK_STREAM`, as the `Type` column of `/proc/net/unix` shows it.
pub const UNIX_STREAM: u16 = 1;
/// `SOCK_DGRAM`.
pub const UNIX_DGRAM: u16 = 2;
/// `SOCK_SEQPACKET`.
pub const UNIX_SEQPACKET: u16 = 5;

/// The `St` column of `/proc/net/unix` for a connected socket (`SS_CONNECTED`).
pub const UNIX_CONNECTED: u8 = 3;

/// The TCP state `LISTEN` in `/proc/net/tcp`.
pub const TCP_LISTEN: u8 = 0x0A;
/// The TCP state `ESTABLISHED`.
pub const TCP_ESTABLISHED: u8 = 0x01;

/// One row of `/proc/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    pub inode: u64,
    /// [`UNIX_STREAM`], [`UNIX_DGRAM`] or [`UNIX_SEQPACKET`].
    pub kind: u16,
    /// `SS_UNCONNECTED` (1), `SS_CONNECTING` (2), [`UNIX_CONNECTED`] (3), ...
    pub state: u8,
    /// `listen` was called on it (the `__SO_ACCEPTCON` flag).
    pub listening: bool,
    /// The bound name: a file system path, `@name` for an abstract name, `None` if unbound
    /// (as both ends of a socketpair are).
    pub path: Option<String>,
}

/// One row of `/proc/net/tcp` or `/proc/net/udp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetSocket {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// The TCP state number ([`TCP_LISTEN`], [`TCP_ESTABLISHED`], ...); UDP shows 7 unconnected.
    pub state: u8,
    pub inode: u64,
}

/// Every AF_UNIX socket of this network namespace.
pub fn unix_sockets() -> io::Result<Vec<UnixSocket>> {
    Ok(parse_unix(&fs::read_to_string("/proc/net/unix")?))
}

/// Every IPv4 TCP socket of this network namespace.
pub fn tcp_sockets() -> io::Result<Vec<InetSocket>> {
    Ok(parse_inet(&fs::read_to_string("/proc/net/tcp")?))
}

/// Every IPv4 UDP socket of this network namespace.
pub fn udp_sockets() -> io::Result<Vec<InetSocket>> {
    Ok(parse_inet(&fs::read_to_string("/proc/net/udp")?))
}

/// The inodes of the sockets the calling process holds descriptors for.
pub fn own_socket_inodes() -> BTreeSet<u64> {
    own_fd_table()
        .into_values()
        .filter_map(|target| match target {
            FdTarget::Socket(inode) => Some(inode),
            _ => None,
        })
        .collect()
}

/// The AF_UNIX socket bound to `path` (`@name` for an abstract name), if any.
pub fn unix_socket_bound_to(path: &str) -> io::Result<Option<UnixSocket>> {
    Ok(unix_sockets()?
        .into_iter()
        .find(|s| s.path.as_deref() == Some(path)))
}

/// The TCP socket listening on `addr`, if any.
pub fn tcp_listener_at(addr: SocketAddrV4) -> io::Result<Option<InetSocket>> {
    Ok(tcp_sockets()?
        .into_iter()
        .find(|s| s.state == TCP_LISTEN && s.local == addr))
}

pub(crate) fn parse_unix(table: &str) -> Vec<UnixSocket> {
    // "Num: RefCount Protocol Flags Type St Inode [Path]"
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let mut cols = row.split_whitespace();
            let _num = cols.next()?;
            let _refcount = cols.next()?;
            let _protocol = cols.next()?;
            let flags = u32::from_str_radix(cols.next()?, 16).ok()?;
            let kind = u16::from_str_radix(cols.next()?, 16).ok()?;
            let state = u8::from_str_radix(cols.next()?, 16).ok()?;
            let inode = cols.next()?.parse().ok()?;
            // A path may contain spaces: it is the rest of the row after the inode.
            let path = cols.next().map(|first| {
                let at = row.find(first).unwrap_or(0);
                row[at..].to_owned()
            });
            Some(UnixSocket {
                inode,
                kind,
                state,
                listening: flags & 0x0001_0000 != 0,
                path,
            })
        })
        .collect()
}

pub(crate) fn parse_inet(table: &str) -> Vec<InetSocket> {
    // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode"
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            Some(InetSocket {
                local: parse_inet_addr(cols.get(1)?)?,
                remote: parse_inet_addr(cols.get(2)?)?,
                state: u8::from_str_radix(cols.get(3)?, 16).ok()?,
                inode: cols.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:1F90` is 127.0.0.1:8080: the address is the in-memory (network order) `u32` printed
/// as a native number, the port a plain hexadecimal number.
fn parse_inet_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixListener;

    #[test]
    fn unix_rows_parse() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/a b.sock\n\
            0000000000000000: 00000002 00000000 00000000 0002 01 4243 @ipclab\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 4244\n";
        let rows = parse_unix(table);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            UnixSocket {
                inode: 4242,
                kind: UNIX_STREAM,
                state: 1,
                listening: true,
                path: Some("/run/a b.sock".into())
            }
        );
        assert_eq!(
            (rows[1].kind, rows[1].path.as_deref()),
            (UNIX_DGRAM, Some("@ipclab"))
        );
        assert_eq!(
            (rows[2].state, rows[2].path.as_ref()),
            (UNIX_CONNECTED, None)
        );
    }

    #[test]
    fn inet_rows_parse() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n";
        let rows = parse_inet(table);
        assert_eq!(
            rows,
            vec![InetSocket {
                local: "127.0.0.1:8080".parse().unwrap(),
                remote: "0.0.0.0:0".parse().unwrap(),
                state: TCP_LISTEN,
                inode: 31337
            }]
        );
    }

    #[test]
    fn a_live_tcp_listener_is_found_with_its_inode() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let std::net::SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let row = tcp_listener_at(addr)
            .unwrap()
            .expect("the listener is in /proc/net/tcp");
        let link = fs::read_link(format!("/proc/self/fd/{}", listener.as_raw_fd())).unwrap();
        assert_eq!(link.to_string_lossy(), format!("socket:[{}]", row.inode));
        drop(listener);
        // Another program may listen on the freed port at once: only our socket must go. It goes
        // when its last descriptor closes, and a process that another test thread is forking
        // holds a copy until its exec: wait for that, briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let now = tcp_listener_at(addr).unwrap();
            if now.as_ref().is_none_or(|r| r.inode != row.inode) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still listed: {now:?}"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_live_unix_listener_is_found_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let row = unix_socket_bound_to(path.to_str().unwrap())
            .unwrap()
            .expect("the listener is in /proc/net/unix");
        assert!(row.listening && row.kind == UNIX_STREAM);
        assert!(own_socket_inodes().contains(&row.inode));
        drop(listener);
    }
}
