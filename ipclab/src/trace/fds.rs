//! What a descriptor refers to, from strace's `-yy` decoding, and the names students read.
//!
//! strace shows `3<pipe:[10093]>`: the inode tells which pipe, but not which end, and a number
//! like 10093 means nothing to a reader. So pipes get letters in the order they appear ("pipe
//! A"), and the end comes from the call that made the descriptor (`pipe2` returns the read end
//! first) and is carried along through fork and dup.

use std::collections::HashMap;
use std::fmt;

/// The kernel object behind a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {
    /// An anonymous pipe or a FIFO, by inode.
    Pipe(u64),
    /// A socket, by inode: `kind` is strace's protocol (`UNIX-STREAM`, `TCP`, …), `peer` the
    /// other end's inode for a connected UNIX socket, `addr` the addresses for TCP and UDP.
    Socket {
        inode: u64,
        kind: String,
        peer: Option<u64>,
        addr: Option<String>,
    },
    /// A file or device, by path (a device's `<char 1:3>` dropped).
    Path(String),
    /// `anon_inode:[eventfd]` and whatever else strace decodes.
    Other(String),
}

impl Object {
    /// Reads strace's decoding: `pipe:[12]`, `UNIX-STREAM:[1->2]`, `TCP:[127.0.0.1:5->…]`,
    /// `/dev/null<char 1:3>`, `socket:[7]`.
    pub fn decode(text: &str) -> Object {
        if let Some(inode) = bracketed(text, "pipe:") {
            if let Ok(inode) = inode.parse() {
                return Object::Pipe(inode);
            }
        }
        if text.starts_with('/') {
            let path = match text.find('<') {
                Some(i) => &text[..i],
                None => text,
            };
            return Object::Path(path.to_owned());
        }
        if let Some((kind, rest)) = text.split_once(":[") {
            let inner = rest.strip_suffix(']').unwrap_or(rest);
            if kind == "socket" {
                if let Ok(inode) = inner.parse() {
                    return Object::Socket {
                        inode,
                        kind: "socket".into(),
                        peer: None,
                        addr: None,
                    };
                }
            }
            if kind.starts_with("UNIX") || kind.starts_with("TCP") || kind.starts_with("UDP") {
                let (first, second) = match inner.split_once("->") {
                    Some((a, b)) => (a, Some(b)),
                    None => (inner, None),
                };
                // UNIX sockets show inodes; TCP and UDP show addresses (the inode stays hidden).
                if let Ok(inode) = first.parse() {
                    return Object::Socket {
                        inode,
                        kind: kind.to_owned(),
                        peer: second.and_then(|p| p.parse().ok()),
                        addr: None,
                    };
                }
                return Object::Socket {
                    inode: 0,
                    kind: kind.to_owned(),
                    peer: None,
                    addr: Some(inner.to_owned()),
                };
            }
        }
        Object::Other(text.to_owned())
    }

    /// The identity that decides "the same object": a socket's own inode, a pipe's inode.
    pub fn key(&self) -> String {
        match self {
            Object::Pipe(inode) => format!("pipe:{inode}"),
            Object::Socket { inode: 0, addr, .. } => {
                format!("inet:{}", addr.as_deref().unwrap_or(""))
            }
            Object::Socket { inode, .. } => format!("socket:{inode}"),
            Object::Path(p) => format!("path:{p}"),
            Object::Other(o) => format!("other:{o}"),
        }
    }

    /// Objects that are about communication, as opposed to the libraries and files a program
    /// opens on its way up: what the pictures show.
    pub fn is_ipc(&self) -> bool {
        match self {
            Object::Pipe(_) | Object::Socket { .. } => true,
            Object::Path(p) => p.starts_with("/dev/shm/") || p.starts_with("/dev/mqueue/"),
            Object::Other(o) => o.starts_with("anon_inode:"),
        }
    }
}

fn bracketed<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')
}

/// Which end of a pipe a descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    Read,
    Write,
}

/// An open descriptor: the object, which end (for a pipe, when known) and whether exec closes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub object: Object,
    pub end: Option<End>,
    pub cloexec: bool,
}

/// Gives objects short names, in the order they appear: pipes `A`, `B`, …, sockets `S1`, ….
#[derive(Debug, Default, Clone)]
pub struct Names {
    names: HashMap<String, String>,
    pipes: usize,
    sockets: usize,
    harness: usize,
}

impl Names {
    /// The short name of `object` ("pipe A", "socket S2", "/tmp/x"), assigned on first use.
    pub fn name(&mut self, object: &Object) -> String {
        let key = object.key();
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name = match object {
            Object::Pipe(_) => {
                self.pipes += 1;
                format!("pipe {}", letters(self.pipes))
            }
            Object::Socket { kind, peer, .. } => {
                // Both ends of a socket pair share the pair's number: `socket S1` and `S1'`.
                if let Some(peer_name) = peer.and_then(|p| self.names.get(&format!("socket:{p}"))) {
                    format!("{peer_name}'")
                } else {
                    self.sockets += 1;
                    let kind = kind.to_lowercase().replace("-stream", " stream");
                    format!("{kind} S{}", self.sockets)
                }
            }
            Object::Path(p) => short_path(p),
            Object::Other(o) => o.clone(),
        };
        self.names.insert(key, name.clone());
        name
    }

    /// The name of an object the test harness made ("harness pipe 1"): the student's objects
    /// keep the letters, so the first pipe of their code is pipe A.
    pub fn name_for_harness(&mut self, object: &Object) -> String {
        let key = object.key();
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let kind = match object {
            Object::Pipe(_) => "pipe",
            Object::Socket { .. } => "socket",
            _ => return self.name(object),
        };
        self.harness += 1;
        let name = format!("harness {kind} {}", self.harness);
        self.names.insert(key, name.clone());
        name
    }

    /// An already given name, without assigning one.
    pub fn get(&self, object: &Object) -> Option<&str> {
        self.names.get(&object.key()).map(String::as_str)
    }
}

/// A path in a test's own temporary directory (`/tmp/ipclab-…/ipclab-test-kZDVwF/myPipe`) says
/// nothing but its last part: `…/myPipe`. Other paths stay whole.
pub fn short_path(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, file)) if dir.contains("/ipclab-test-") || dir.contains("/.tmp") => {
            format!("…/{file}")
        }
        _ => path.to_owned(),
    }
}

/// 1 → A, 26 → Z, 27 → AA.
fn letters(mut n: usize) -> String {
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// "pipe A, write end" for a descriptor, given its object's name.
pub struct Described<'a> {
    pub name: &'a str,
    pub end: Option<End>,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(End::Read) => write!(f, "{}, read end", self.name),
            Some(End::Write) => write!(f, "{}, write end", self.name),
            None => f.write_str(self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_decodings_become_objects() {
        assert_eq!(Object::decode("pipe:[10093]"), Object::Pipe(10093));
        assert_eq!(
            Object::decode("/dev/null<char 1:3>"),
            Object::Path("/dev/null".into())
        );
        assert_eq!(
            Object::decode("UNIX-STREAM:[11->12]"),
            Object::Socket {
                inode: 11,
                kind: "UNIX-STREAM".into(),
                peer: Some(12),
                addr: None
            }
        );
        let tcp = Object::decode("TCP:[127.0.0.1:5000->127.0.0.1:40000]");
        assert!(matches!(
            tcp,
            Object::Socket {
                inode: 0,
                addr: Some(_),
                ..
            }
        ));
        assert_eq!(Object::decode("socket:[7]").key(), "socket:7");
    }

    #[test]
    fn names_are_short_and_stable() {
        let mut names = Names::default();
        assert_eq!(names.name(&Object::Pipe(9)), "pipe A");
        assert_eq!(names.name(&Object::Pipe(3)), "pipe B");
        assert_eq!(names.name(&Object::Pipe(9)), "pipe A");
        let a = Object::decode("UNIX-STREAM:[11->12]");
        let b = Object::decode("UNIX-STREAM:[12->11]");
        assert_eq!(names.name(&a), "unix stream S1");
        assert_eq!(names.name(&b), "unix stream S1'");
        assert_eq!(letters(27), "AA");
    }
}
