//! The graded suite of exercise 06: socketpair.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), because the code under test forks, blocks and opens
//! descriptors; when the deadline passes, the message names the usual cause of that hang. The
//! body only runs the code and hands back plain data; the verdict is the judge's (`.judge`). The
//! kernel is the witness, read by the judge at checkpoints: `/proc/<pid>/fd` says which sockets
//! a process holds, `/proc/net/unix` what kind they are, `fdinfo` whether a descriptor is
//! close-on-exec.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use exercise06::*;
use ipclab_support::data::{payload, Received, MIB};
use ipclab_support::descriptors::{assert_no_fd_leaks, fds_opened_since};
use ipclab_support::netprocfs::{UnixSocket, UNIX_CONNECTED, UNIX_DGRAM, UNIX_STREAM};
use ipclab_support::procfs::FdTarget;
use ipclab_support::witness::ProcessState;
use ipclab_support::{checkpoint, isolated, Snapshot};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use rstest::rstest;
use serde::{Deserialize, Serialize};

const CONVERSATION_HINT: &str = "the conversation hung. Each request is one line: the child must \
     answer each line as soon as it has read it, and the parent must read one reply line before \
     it sends the next request. At the end the parent closes (or shuts down) its end so that the \
     child's read sees end of file and it exits; only then can waitpid return.";

const BOUNDARY_HINT: &str = "receiving hung. A stream socket reports end of file (a receive \
     returning 0) once the child has exited and the parent holds no copy of the child's end. A \
     datagram socket never reports end of file: receive with MSG_DONTWAIT and stop at EAGAIN. If \
     every datagram test hangs, see what task2_the_pair_has_the_socket_type_asked_for says about \
     the pair's type.";

const HALF_CLOSE_HINT: &str = "the round trip hung. The child reads the request until end of \
     file, so after sending it the parent must shutdown(SHUT_WR) its socket (closing it would \
     also end the reply's direction), and the child must not hold a copy of the parent's end.";

const PASSING_HINT: &str = "passing the descriptor hung. recv_fd blocks until a message arrives: \
     send_fd must send the label as ordinary data with the descriptor as an SCM_RIGHTS control \
     message in the same sendmsg call (on a stream socket, a message with no data carries nothing).";

const COPROCESS_HINT: &str = "the program never saw end of file, or never answered. Its standard \
     input and output must be its end of the socket pair (dup2 onto 0 and 1), and our end must be \
     close-on-exec (SOCK_CLOEXEC): a copy of our end held by the program keeps the connection open \
     after finish() closes ours.";

/// Descriptors `after` holds that `before` did not, that are sockets, as (fd, inode).
fn sockets_opened_since(before: &ProcessState, after: &ProcessState) -> Vec<(i32, u64)> {
    fds_opened_since(before, after)
        .into_iter()
        .filter_map(|(fd, entry)| match entry.target {
            FdTarget::Socket(inode) => Some((fd, inode)),
            _ => None,
        })
        .collect()
}

/// What the kernel said about the socket with `inode` at `snapshot`, for a message.
fn unix_socket(snapshot: &Snapshot, inode: u64) -> Option<&UnixSocket> {
    snapshot.unix_sockets.iter().find(|s| s.inode == inode)
}

/// Descriptors as `fd -> target` lines, for a message.
fn described(
    fds: &std::collections::BTreeMap<i32, &ipclab_support::witness::FdEntry>,
) -> Vec<String> {
    fds.iter()
        .map(|(fd, e)| format!("{fd} -> {}", e.target))
        .collect()
}

/// How a child ended, as the judge gets it: `ChildExit` in plain data (the signal by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Exit {
    Exited(i32),
    Signaled(String),
}

impl From<ChildExit> for Exit {
    fn from(exit: ChildExit) -> Exit {
        match exit {
            ChildExit::Exited(code) => Exit::Exited(code),
            ChildExit::Signaled(signal) => Exit::Signaled(signal.as_str().to_owned()),
        }
    }
}

/// What one receive returned, as the judge gets it (the suite's copy of the exercise's `Chunk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Chunk {
    bytes: Vec<u8>,
    truncated: bool,
}

/// The chunks `receive_after_sends` returned, in plain data (at most 64 of them, for a message).
fn chunks(received: Vec<exercise06::Chunk>) -> Vec<Chunk> {
    received
        .into_iter()
        .take(64)
        .map(|c| Chunk {
            bytes: c.bytes,
            truncated: c.truncated,
        })
        .collect()
}

/// Whether a result matched what the test expects, and the result as `{:?}` shows it.
fn verdict_data<T: std::fmt::Debug>(result: &T, expected: bool) -> (bool, String) {
    (expected, format!("{result:?}"))
}

// ---------------------------------------------------------------------------------------------
// Task 1: requests and replies both ways over one socket pair.

#[test]
fn task1_child_answers_each_request_in_order() {
    isolated(CONVERSATION_HINT, || {
        let mut seen = 0;
        ask_child(&["ping", "two words", "", "last"], |request| {
            seen += 1;
            format!("{seen}:{}", request.to_uppercase())
        })
        .expect("ask_child returned an error")
    })
    .judge(|replies: Vec<String>, _| {
        assert_eq!(
            replies,
            ["1:PING", "2:TWO WORDS", "3:", "4:LAST"],
            "each request gets one reply line, in order, from one child that serves them all"
        );
    });
}

#[test]
fn task1_answer_runs_in_a_child_holding_one_connected_stream_socket() {
    isolated(CONVERSATION_HINT, || {
        checkpoint("before the call");
        ask_child(&["who"], |_| {
            // Runs in the child: the judge reads which descriptors it holds now.
            checkpoint("answering");
            "ok".into()
        })
        .expect("ask_child returned an error")
    })
    .judge(|replies: Vec<String>, seen| {
        let parent = seen.end.root;
        let answering = seen.at("answering");
        let child = answering.requester();
        assert!(
            child.pid() != parent && child.info.ppid.as_raw() == parent,
            "answer must run in a child of the caller"
        );
        // Which descriptors does the child hold beyond what the parent had?
        let before = seen.at("before the call").test_process();
        let opened = fds_opened_since(before, child);
        let sockets = sockets_opened_since(before, child);
        match sockets.as_slice() {
            [(_, inode)] if opened.len() == 1 => match unix_socket(answering, *inode) {
                Some(s) if s.kind == UNIX_STREAM && s.state == UNIX_CONNECTED => {}
                other => panic!(
                    "the child's socket should be a connected AF_UNIX stream socket; \
                     /proc/net/unix says {other:?}"
                ),
            },
            _ => panic!(
                "the child should hold exactly one new descriptor, its end of the socket \
                 pair (requests and replies share it); it holds {:?}",
                described(&opened)
            ),
        }
        assert_eq!(replies, ["ok"]);
    });
}

#[test]
fn task1_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(CONVERSATION_HINT, || {
        checkpoint("before the call");
        ask_child(&["a", "b"], str::to_owned).expect("ask_child returned an error");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Close the parent's end of the socket pair before returning.",
        );
        seen.end
            .assert_no_zombies("Reap the child with waitpid() once the conversation ends.");
    });
}

#[test]
fn task1_request_with_a_newline_is_rejected_before_forking() {
    isolated(CONVERSATION_HINT, || {
        let result = ask_child(&["fine", "two\nlines"], str::to_owned);
        verdict_data(
            &result,
            matches!(result, Err(Error::NewlineInRequest { index: 1 })),
        )
    })
    .judge(|(rejected, result): (bool, String), seen| {
        assert!(
            rejected,
            "expected Err(Error::NewlineInRequest {{ index: 1 }}), got {result}"
        );
        assert!(
            seen.end.children_of(seen.end.root).is_empty(),
            "check the requests before forking: no child should have been started"
        );
    });
}

#[test]
fn task1_a_child_that_stops_answering_is_reported() {
    isolated(CONVERSATION_HINT, || {
        // A newline in an answer makes the child give up (it would read as two replies).
        let result = ask_child(&["a", "b", "c"], |r| {
            if r == "b" {
                "bro\nken".into()
            } else {
                r.into()
            }
        });
        verdict_data(
            &result,
            matches!(result, Err(Error::ChildHungUp { answered: 1 })),
        )
    })
    .judge(|(reported, result): (bool, String), seen| {
        assert!(
            reported,
            "the child answered one request, then closed its end: expected \
             Err(Error::ChildHungUp {{ answered: 1 }}), got {result}"
        );
        seen.end
            .assert_no_zombies("Reap the child even when the conversation fails.");
    });
}

/// Whether descriptor `fd` of this process is a stream socket (`SO_TYPE` is `SOCK_STREAM`).
fn is_stream_socket(fd: i32) -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_TYPE writes one int into `ty`; a descriptor that is no socket fails.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    } == 0;
    ok && ty == libc::SOCK_STREAM
}

#[test]
fn task1_a_last_answer_cut_off_by_the_childs_exit_is_no_reply() {
    isolated(CONVERSATION_HINT, || {
        checkpoint("before the call");
        let before = held_descriptors();
        let result = ask_child(&["a", "last"], move |request| {
            if request != "last" {
                return request.into();
            }
            // Runs in the child: the test writes the last answer itself, straight to the
            // child's end of the pair (the stream socket it holds that the test did not),
            // without its newline, and ends the child.
            let sockets: Vec<i32> = held_descriptors()
                .into_iter()
                .filter(|fd| !before.contains(fd) && is_stream_socket(*fd))
                .collect();
            if sockets.is_empty() {
                return "the test found no socket in the child".into();
            }
            for fd in sockets {
                // SAFETY: writes a constant buffer to a descriptor this process holds.
                unsafe { libc::write(fd, b"cut".as_ptr().cast(), 3) };
            }
            checkpoint("wrote an answer without its newline");
            // SAFETY: ends the child at once, as a child that crashes would.
            unsafe { libc::_exit(0) }
        });
        verdict_data(
            &result,
            matches!(result, Err(Error::ChildHungUp { answered: 1 })),
        )
    })
    .judge(|(reported, result): (bool, String), seen| {
        // The child did write the cut answer: the verdict below is about it.
        seen.at("wrote an answer without its newline");
        assert!(
            reported,
            "the child answered \"a\", then wrote \"cut\" with no newline and exited: a reply \
             is a whole line, and end of file before its newline is no reply. Expected \
             Err(Error::ChildHungUp {{ answered: 1 }}), got {result}"
        );
        seen.end
            .assert_no_zombies("Reap the child even when the conversation fails.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: a stream has no message boundaries; datagrams keep them.

const THREE: [&[u8]; 3] = [b"one", b"two", b"three"];

#[test]
fn task2_one_stream_read_returns_bytes_of_several_writes() {
    isolated(BOUNDARY_HINT, || {
        chunks(
            receive_after_sends(Kind::Stream, &THREE, 64)
                .expect("receive_after_sends returned an error"),
        )
    })
    .judge(|chunks: Vec<Chunk>, _| {
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        assert_eq!(String::from_utf8_lossy(&joined), "onetwothree");
        assert_eq!(
            chunks.len(),
            1,
            "all three writes were queued before the first read, and the 64-byte buffer holds \
             them all: one read of a stream returns all 11 bytes, because a stream keeps no \
             boundaries between writes. Got {chunks:?}"
        );
    });
}

#[rstest]
#[case::roomy_buffer(64)]
#[case::exact_buffer(5)]
fn task2_each_datagram_arrives_whole_one_per_receive(#[case] buf_len: usize) {
    isolated(BOUNDARY_HINT, || {
        chunks(
            receive_after_sends(Kind::Datagram, &THREE, buf_len)
                .expect("receive_after_sends returned an error"),
        )
    })
    .judge(|chunks: Vec<Chunk>, _| {
        let got: Vec<(String, bool)> = chunks
            .iter()
            .map(|c| (String::from_utf8_lossy(&c.bytes).into_owned(), c.truncated))
            .collect();
        assert_eq!(
            got,
            [
                ("one".into(), false),
                ("two".into(), false),
                ("three".into(), false)
            ],
            "a SOCK_DGRAM socket pair delivers each send as one datagram, one per receive"
        );
    });
}

#[test]
fn task2_an_empty_datagram_is_still_a_datagram() {
    isolated(BOUNDARY_HINT, || {
        chunks(
            receive_after_sends(Kind::Datagram, &[b"a", b"", b"b"], 16)
                .expect("receive_after_sends returned an error"),
        )
    })
    .judge(|chunks: Vec<Chunk>, _| {
        let got: Vec<&[u8]> = chunks.iter().map(|c| c.bytes.as_slice()).collect();
        assert_eq!(
            got,
            [&b"a"[..], b"", b"b"],
            "a zero-length send on a datagram socket is a datagram of its own (a receive \
             returning 0 is not end of file there)"
        );
    });
}

#[test]
fn task2_a_too_small_buffer_truncates_a_datagram() {
    isolated(BOUNDARY_HINT, || {
        chunks(
            receive_after_sends(Kind::Datagram, &[b"datagram", b"ok"], 4)
                .expect("receive_after_sends returned an error"),
        )
    })
    .judge(|chunks: Vec<Chunk>, _| {
        let got: Vec<(String, bool)> = chunks
            .iter()
            .map(|c| (String::from_utf8_lossy(&c.bytes).into_owned(), c.truncated))
            .collect();
        assert_eq!(
            got,
            [("data".into(), true), ("ok".into(), false)],
            "with a 4-byte buffer the first datagram is cut to 4 bytes, the kernel sets MSG_TRUNC \
             in the returned flags (report it as `truncated`), and the rest of it is discarded: \
             the next receive returns the next datagram"
        );
    });
}

#[test]
fn task2_a_stream_never_truncates() {
    isolated(BOUNDARY_HINT, || {
        chunks(
            receive_after_sends(Kind::Stream, &[b"datagram", b"ok"], 4)
                .expect("receive_after_sends returned an error"),
        )
    })
    .judge(|chunks: Vec<Chunk>, _| {
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        assert_eq!(
            String::from_utf8_lossy(&joined),
            "datagramok",
            "a stream read with a small buffer leaves the rest for the next read: nothing is lost"
        );
        assert!(
            chunks.iter().all(|c| !c.truncated && c.bytes.len() <= 4),
            "stream reads fill at most the buffer and are never truncated: {chunks:?}"
        );
    });
}

// The pair's type, seen by the judge: a pthread_atfork handler makes the child of
// `receive_after_sends` stop at a checkpoint right after the fork, while it holds both ends, and
// report their types to the test, which stops waiting if the pair is of the wrong type (a stream
// asked to behave as datagrams may never end: it reports end of file forever).

/// Write end of the pipe the atfork handler and the worker report on (-1: not watching).
static REPORTS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
/// Descriptors the test process held before the call (not the pair's).
static HELD_BEFORE: std::sync::OnceLock<Vec<i32>> = std::sync::OnceLock::new();
/// A report: `[tag, count, type…]`, fixed size so that one read takes one report.
const REPORT_LEN: usize = 8;
const FORKED: u8 = 1;
const RETURNED: u8 = 2;

fn held_descriptors() -> Vec<i32> {
    fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn send_report(tag: u8, types: &[u8]) {
    let fd = REPORTS.load(std::sync::atomic::Ordering::SeqCst);
    let mut report = [0u8; REPORT_LEN];
    report[0] = tag;
    let types = &types[..types.len().min(REPORT_LEN - 2)];
    report[1] = types.len() as u8;
    report[2..2 + types.len()].copy_from_slice(types);
    // SAFETY: writes a local buffer to a pipe descriptor this process holds.
    unsafe { libc::write(fd, report.as_ptr().cast(), REPORT_LEN) };
}

/// Runs in the student's child right after `fork`, before its code: lets the judge look, then
/// tells the test the types of the sockets the child holds that the test did not hold before.
extern "C" fn report_pair_after_fork() {
    let fd = REPORTS.load(std::sync::atomic::Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    checkpoint("forked");
    let before = HELD_BEFORE.get().cloned().unwrap_or_default();
    let types: Vec<u8> = held_descriptors()
        .into_iter()
        .filter(|n| !before.contains(n) && *n != fd)
        .filter_map(|n| {
            let mut ty: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_TYPE writes one int into `ty`; a descriptor that is no socket fails.
            let ok = unsafe {
                libc::getsockopt(
                    n,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&mut ty as *mut libc::c_int).cast(),
                    &mut len,
                )
            } == 0;
            ok.then_some(ty as u8)
        })
        .collect();
    send_report(FORKED, &types);
}

/// What the test saw of the pair: whether it stopped waiting because the child reported a
/// socket of the wrong type, and what the call returned if it did return.
type PairSeen = (bool, Option<String>);

fn watch_pair(kind: Kind) -> PairSeen {
    let wanted = match kind {
        Kind::Stream => libc::SOCK_STREAM as u8,
        Kind::Datagram => libc::SOCK_DGRAM as u8,
    };
    let (read_end, write_end) = nix::unistd::pipe().expect("a pipe for the reports");
    REPORTS.store(write_end.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    HELD_BEFORE.get_or_init(held_descriptors);
    // SAFETY: registers a handler that runs in forked children only.
    let registered = unsafe { libc::pthread_atfork(None, None, Some(report_pair_after_fork)) };
    assert_eq!(registered, 0, "pthread_atfork");
    checkpoint("before");
    // Named as the test's thread, so that a panic in it (a `todo!`) is the test's message.
    let name = std::thread::current().name().unwrap_or("test").to_owned();
    let worker = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let result = std::panic::catch_unwind(|| receive_after_sends(kind, &THREE, 64));
            send_report(RETURNED, &[]);
            result
        })
        .expect("start the worker thread");
    let mut reports = File::from(read_end);
    loop {
        let mut report = [0u8; REPORT_LEN];
        reports.read_exact(&mut report).expect("read a report");
        if report[0] == FORKED {
            let types = &report[2..2 + report[1] as usize];
            if types.iter().any(|t| *t != wanted) {
                // The call may never return: the judge has seen enough.
                return (true, None);
            }
            continue;
        }
        return match worker.join().expect("the worker thread") {
            Ok(result) => (false, Some(format!("{result:?}"))),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("{message}")
            }
        };
    }
}

fn socket_type_name(kind: u16) -> String {
    match kind {
        UNIX_STREAM => "SOCK_STREAM".into(),
        UNIX_DGRAM => "SOCK_DGRAM".into(),
        5 => "SOCK_SEQPACKET".into(),
        other => format!("type {other}"),
    }
}

#[rstest]
#[case::stream(Kind::Stream)]
#[case::datagram(Kind::Datagram)]
fn task2_the_pair_has_the_socket_type_asked_for(#[case] kind: Kind) {
    isolated(BOUNDARY_HINT, || watch_pair(kind)).judge(|(_, result): PairSeen, seen| {
        let (wanted, name) = match kind {
            Kind::Stream => (UNIX_STREAM, "Kind::Stream"),
            Kind::Datagram => (UNIX_DGRAM, "Kind::Datagram"),
        };
        let forked = seen.all_at("forked");
        let Some(snapshot) = forked.first() else {
            panic!(
                "receive_after_sends({name}, …) never forked a child (the test watches fork() \
                 with pthread_atfork); it returned {result:?}"
            );
        };
        let before: Vec<u64> = seen
            .at("before")
            .test_process()
            .fds
            .values()
            .filter_map(|e| match e.target {
                FdTarget::Socket(inode) => Some(inode),
                _ => None,
            })
            .collect();
        let mut pair: Vec<u64> = snapshot
            .processes
            .iter()
            .flat_map(|p| p.fds.values())
            .filter_map(|e| match e.target {
                FdTarget::Socket(inode) if !before.contains(&inode) => Some(inode),
                _ => None,
            })
            .collect();
        pair.sort_unstable();
        pair.dedup();
        assert!(
            !pair.is_empty(),
            "when receive_after_sends({name}, …) forked, no process of the test held a new \
             socket: create the socket pair before forking"
        );
        for inode in pair {
            let socket = unix_socket(snapshot, inode).unwrap_or_else(|| {
                panic!("socket inode {inode} is not in /proc/net/unix: the pair must be AF_UNIX")
            });
            assert!(
                socket.kind == wanted,
                "receive_after_sends({name}, …) created its socket pair as {} (the kernel's \
                 /proc/net/unix for inode {inode}): {name} asks for socketpair(AF_UNIX, {}, …). \
                 (A stream never runs dry the way datagrams do: once the child has gone, every \
                 receive returns 0, end of file, so a loop waiting for EAGAIN never ends.)",
                socket_type_name(socket.kind),
                socket_type_name(wanted)
            );
        }
    });
}

/// What each receive returned, one line per call, for a person to read.
fn transcript(title: &str, chunks: &[Chunk]) -> String {
    let mut text = format!("{title}:\n");
    for (i, c) in chunks.iter().enumerate() {
        text.push_str(&format!(
            "  receive {}: {:?}{}\n",
            i + 1,
            String::from_utf8_lossy(&c.bytes),
            if c.truncated { " (MSG_TRUNC)" } else { "" }
        ));
    }
    text
}

const BY_TYPE: [(&str, Kind, usize); 4] = [
    ("SOCK_STREAM, 64-byte buffer", Kind::Stream, 64),
    ("SOCK_STREAM, 4-byte buffer", Kind::Stream, 4),
    ("SOCK_DGRAM, 64-byte buffer", Kind::Datagram, 64),
    ("SOCK_DGRAM, 4-byte buffer", Kind::Datagram, 4),
];

#[test]
fn task2_the_same_three_sends_received_by_type() {
    isolated(BOUNDARY_HINT, || {
        BY_TYPE
            .iter()
            .map(|&(_, kind, buf_len)| {
                chunks(
                    receive_after_sends(kind, &THREE, buf_len)
                        .expect("receive_after_sends returned an error"),
                )
            })
            .collect::<Vec<_>>()
    })
    .judge(|received: Vec<Vec<Chunk>>, _| {
        assert_eq!(received.len(), BY_TYPE.len(), "one result per socket type");
        let mut text = String::new();
        for ((title, _, _), chunks) in BY_TYPE.iter().zip(&received) {
            text.push_str(&transcript(title, chunks));
        }
        // A stream cuts the bytes wherever the buffer ends; datagrams keep their edges and lose
        // what does not fit.
        ipclab_support::assert_snapshot!("task2_the_same_three_sends_received_by_type", text);
    });
}

#[test]
fn task2_sends_that_do_not_fit_are_an_error_not_a_hang() {
    isolated(BOUNDARY_HINT, || {
        // 4 MiB cannot be queued in a socket's buffer before anyone receives.
        let big = payload(4 * MIB);
        let result = receive_after_sends(Kind::Stream, &[&big], 64);
        verdict_data(&result, matches!(result, Err(Error::ChildFailed { .. })))
    })
    .judge(|(failed, result): (bool, String), seen| {
        assert!(
            failed,
            "the child cannot queue 4 MiB before the parent receives: its send must fail \
             (MSG_DONTWAIT) and the call return Err(Error::ChildFailed {{ .. }}) rather than \
             hang; got {result}"
        );
        seen.end
            .assert_no_zombies("Reap the child even when it failed.");
    });
}

#[test]
fn task2_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(BOUNDARY_HINT, || {
        checkpoint("before the calls");
        for kind in [Kind::Stream, Kind::Datagram] {
            receive_after_sends(kind, &THREE, 8).expect("receive_after_sends returned an error");
        }
        checkpoint("after the calls");
        let zero = receive_after_sends(Kind::Stream, &THREE, 0);
        verdict_data(&zero, matches!(zero, Err(Error::ZeroBuffer)))
    })
    .judge(|(rejected, zero): (bool, String), seen| {
        let after = seen.at("after the calls");
        assert_no_fd_leaks(
            seen.at("before the calls").test_process(),
            after.test_process(),
            "Close the parent's end of the socket pair before returning.",
        );
        after.assert_no_zombies("Reap the child before receiving.");
        assert!(
            rejected,
            "a 0-byte buffer must be Err(Error::ZeroBuffer), got {zero}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: half-close.

/// The reply the child of task 3 sends: the request reversed, then `|done`.
fn reversed_then_done(request: &[u8]) -> Vec<u8> {
    let mut answer: Vec<u8> = request.iter().rev().copied().collect();
    answer.extend_from_slice(b"|done");
    answer
}

#[rstest]
#[case::empty(0)]
#[case::small(5)]
#[case::one_mib(MIB)]
fn task3_shutdown_ends_the_request_while_the_reply_flows_back(#[case] len: usize) {
    isolated(HALF_CLOSE_HINT, || {
        let request = payload(len);
        let reply = half_close_round_trip(&request, |received| reversed_then_done(&received))
            .expect("half_close_round_trip returned an error");
        Received::of(&reply, &reversed_then_done(&request))
    })
    .judge(|reply: Received, _| {
        reply.assert_matches(
            &reversed_then_done(&payload(len)),
            "the reply (the request reversed, then |done)",
        );
    });
}

#[test]
fn task3_request_and_reply_share_one_socket() {
    isolated(HALF_CLOSE_HINT, || {
        checkpoint("before the call");
        let reply = half_close_round_trip(b"?", |_| {
            // Runs in the child, after it has seen end of file on the request: the judge reads
            // what the child and the parent hold now.
            checkpoint("serving");
            b"ok".to_vec()
        })
        .expect("half_close_round_trip returned an error");
        String::from_utf8_lossy(&reply[..reply.len().min(200)]).into_owned()
    })
    .judge(|reply: String, seen| {
        let before = seen.at("before the call").test_process();
        let serving = seen.at("serving");
        let child = serving.requester();
        let opened = fds_opened_since(before, child);
        let mine = sockets_opened_since(before, child);
        let parents = sockets_opened_since(before, serving.test_process());
        if mine.len() != 1 || opened.len() != 1 {
            panic!(
                "the child should hold exactly one new descriptor, its end of one stream \
                 socket pair; it holds {:?}",
                described(&opened)
            );
        } else if parents.is_empty() {
            panic!(
                "the child saw end of file because the parent closed its socket: then no reply \
                 could come back. shutdown(SHUT_WR) ends only the parent's sending direction"
            );
        }
        assert_eq!(reply, "ok");
    });
}

#[test]
fn task3_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(HALF_CLOSE_HINT, || {
        checkpoint("before the call");
        half_close_round_trip(b"ping", |_| b"pong".to_vec())
            .expect("half_close_round_trip returned an error");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Close the parent's socket once the reply has ended.",
        );
        seen.end
            .assert_no_zombies("Reap the child with waitpid() after reading the reply.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: passing an open descriptor with SCM_RIGHTS.

fn stream_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

/// Forks a child that runs `child` on its end of a fresh stream pair and writes the text it
/// returns back on that end; the parent runs `parent` on its end, then returns the child's text.
fn with_child(child: impl FnOnce(&OwnedFd) -> String, parent: impl FnOnce(&OwnedFd)) -> String {
    let (ours, theirs) = stream_pair();
    // SAFETY: the child runs the test's closure, reports and ends with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(ours);
            let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(&theirs)))
                .unwrap_or_else(|_| "the child panicked (see above)".into());
            let mut socket = UnixStream::from(theirs);
            let _ = socket.write_all(report.as_bytes());
            drop(socket);
            // SAFETY: ends the forked test process without returning into the harness.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            parent(&ours);
            let mut socket = UnixStream::from(ours);
            let mut report = String::new();
            socket
                .read_to_string(&mut report)
                .expect("read the child's report");
            assert!(matches!(waitpid(child, None), Ok(WaitStatus::Exited(_, 0))));
            report
        }
    }
}

#[test]
fn task4_receiver_reads_a_file_it_never_opened() {
    isolated(PASSING_HINT, || {
        let path = std::env::temp_dir().join("notes.txt");
        with_child(
            move |socket| {
                checkpoint("before recv_fd");
                let passed = match recv_fd(socket.as_fd()) {
                    Ok(passed) => passed,
                    Err(e) => return format!("recv_fd returned an error: {e}"),
                };
                // The judge reads what the receiver's descriptor table gained.
                checkpoint("received");
                let fd = passed.fd.as_raw_fd();
                let mut text = String::new();
                if File::from(passed.fd).read_to_string(&mut text).is_err() {
                    return "the received descriptor could not be read".into();
                }
                format!("{fd} {}|{text}", String::from_utf8_lossy(&passed.label))
            },
            |socket| {
                // Created after fork: the child cannot have inherited it or opened it.
                fs::write(&path, "a file the child never opened").expect("write the file");
                let file = File::open(&path).expect("open the file");
                send_fd(socket.as_fd(), file.as_fd(), b"notes").expect("send_fd returned an error");
                // Closing ours does not close the child's: each descriptor counts.
                drop(file);
            },
        )
    })
    .judge(|report: String, seen| {
        let expected_path = seen.scratch.join("notes.txt");
        let Some((fd, report)) = report
            .split_once(' ')
            .and_then(|(fd, rest)| Some((fd.parse::<i32>().ok()?, rest)))
        else {
            assert_eq!(report, "notes|a file the child never opened");
            unreachable!("the report names the received descriptor first");
        };
        let new = fds_opened_since(
            seen.at("before recv_fd").requester(),
            seen.at("received").requester(),
        );
        if new.get(&fd).map(|e| &e.target) != Some(&FdTarget::Path(expected_path.clone())) {
            panic!(
                "the receiver's descriptor table should have gained fd {fd} -> {}; it \
                 gained {:?}",
                expected_path.display(),
                described(&new)
            );
        }
        assert_eq!(report, "notes|a file the child never opened");
    });
}

#[test]
fn task4_sender_and_receiver_share_one_open_file() {
    isolated(PASSING_HINT, || {
        let path = std::env::temp_dir().join("digits");
        fs::write(&path, "0123456789").expect("write the file");
        let mut file = File::open(&path).expect("open the file");
        let mut first = [0u8; 4];
        file.read_exact(&mut first).expect("read 4 bytes");
        let report = with_child(
            |socket| match recv_fd(socket.as_fd()) {
                Ok(passed) => {
                    let mut next = [0u8; 3];
                    match File::from(passed.fd).read_exact(&mut next) {
                        Ok(()) => String::from_utf8_lossy(&next).into_owned(),
                        Err(e) => format!("reading the received descriptor failed: {e}"),
                    }
                }
                Err(e) => format!("recv_fd returned an error: {e}"),
            },
            |socket| {
                send_fd(socket.as_fd(), file.as_fd(), b"digits").expect("send_fd returned an error")
            },
        );
        // The child has read and exited: the judge reads our descriptor's offset.
        checkpoint("after the child read");
        (report, file.as_raw_fd())
    })
    .judge(|(report, fd): (String, i32), seen| {
        assert_eq!(
            report, "456",
            "the parent had read 4 bytes before sending: the received descriptor refers to the \
             same open file (the same offset), not to the file opened afresh by name"
        );
        let entry = seen
            .at("after the child read")
            .test_process()
            .fds
            .get(&fd)
            .unwrap_or_else(|| panic!("the parent's descriptor {fd} of the file is gone"));
        assert_eq!(
            entry.pos, 7,
            "the child's read moved the parent's offset too (the kernel's fdinfo says {}): one \
             open file, two descriptors",
            entry.pos
        );
    });
}

#[test]
fn task4_received_descriptor_is_close_on_exec() {
    isolated(PASSING_HINT, || {
        let (a, b) = stream_pair();
        let file = File::open("/proc/self/stat").expect("open a file");
        send_fd(a.as_fd(), file.as_fd(), b"stat").expect("send_fd returned an error");
        let passed = recv_fd(b.as_fd()).expect("recv_fd returned an error");
        checkpoint("received");
        (passed.label.clone(), passed.fd.as_raw_fd())
    })
    .judge(|(label, fd): (Vec<u8>, i32), seen| {
        assert_eq!(label, b"stat");
        let received = seen.at("received");
        let flags = received
            .test_process()
            .fds
            .get(&fd)
            .unwrap_or_else(|| panic!("the received descriptor {fd} is not open"))
            .flags;
        assert!(
            flags & libc::O_CLOEXEC != 0,
            "the received descriptor is not close-on-exec (fdinfo flags {flags:o}): every program \
             this process execs would inherit it. Receive with MSG_CMSG_CLOEXEC."
        );
    });
}

#[test]
fn task4_a_message_without_a_descriptor_is_a_clear_error() {
    isolated(PASSING_HINT, || {
        let (a, b) = stream_pair();
        checkpoint("before the calls");
        UnixStream::from(a.try_clone().expect("dup"))
            .write_all(b"just bytes")
            .expect("write");
        let result = recv_fd(b.as_fd());
        let no_descriptor = verdict_data(&result, matches!(result, Err(Error::NoDescriptor)));
        drop(result);
        drop(a);
        let result = recv_fd(b.as_fd());
        let peer_closed = verdict_data(&result, matches!(result, Err(Error::PeerClosed)));
        drop(result);
        checkpoint("after the calls");
        (no_descriptor, peer_closed)
    })
    .judge(
        |((no_descriptor, first), (peer_closed, second)): ((bool, String), (bool, String)),
         seen| {
            assert!(
                no_descriptor,
                "plain bytes with no SCM_RIGHTS control message: expected Err(Error::NoDescriptor), \
                 got {first}"
            );
            assert!(
                peer_closed,
                "the peer closed its end (end of file): expected Err(Error::PeerClosed), got {second}"
            );
            let before = seen.at("before the calls").test_process();
            let after = seen.at("after the calls").test_process();
            // Our own end `a` was closed on purpose in between: only new descriptors count.
            assert_no_fd_leaks(
                before,
                after,
                "recv_fd must not leave descriptors open when it fails.",
            );
        },
    );
}

#[rstest]
#[case::empty(0)]
#[case::too_long(MAX_LABEL + 1)]
fn task4_a_label_of_the_wrong_size_is_rejected(#[case] len: usize) {
    isolated(PASSING_HINT, || {
        let (a, _b) = stream_pair();
        let result = send_fd(a.as_fd(), a.as_fd(), &vec![b'x'; len]);
        verdict_data(
            &result,
            matches!(result, Err(Error::BadLabel { len: l }) if l == len),
        )
    })
    .judge(|(rejected, result): (bool, String), _| {
        assert!(
            rejected,
            "a {len}-byte label must be Err(Error::BadLabel {{ len: {len} }}), got {result}"
        );
    });
}

#[rstest]
#[case::one_byte(1)]
#[case::exactly_max_label(MAX_LABEL)]
fn task4_labels_at_the_limits_travel_whole(#[case] len: usize) {
    isolated(PASSING_HINT, || {
        let (a, b) = stream_pair();
        let label: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let file = File::open("/proc/self/stat").expect("open a file");
        let sent = send_fd(a.as_fd(), file.as_fd(), &label);
        let received = recv_fd(b.as_fd()).map(|passed| passed.label);
        (
            format!("{sent:?}"),
            sent.is_ok(),
            received.as_ref().ok().cloned(),
            format!("{received:?}"),
        )
    })
    .judge(
        |(sent, sent_ok, received, shown): (String, bool, Option<Vec<u8>>, String), _| {
            assert!(
                sent_ok,
                "a label of {len} bytes is allowed (1 to MAX_LABEL = {MAX_LABEL}): send_fd gave {sent}"
            );
            let expected: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(
                received.as_deref() == Some(&expected[..]),
                "the {len}-byte label must arrive whole with the descriptor; recv_fd gave {shown}"
            );
        },
    );
}

#[test]
fn task4_passing_leaks_no_descriptor() {
    isolated(PASSING_HINT, || {
        let (a, b) = stream_pair();
        checkpoint("before the calls");
        for _ in 0..3 {
            let file = File::open("/proc/self/stat").expect("open a file");
            send_fd(a.as_fd(), file.as_fd(), b"x").expect("send_fd returned an error");
            drop(file);
            drop(recv_fd(b.as_fd()).expect("recv_fd returned an error"));
        }
        checkpoint("after the calls");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the calls").test_process(),
            seen.at("after the calls").test_process(),
            "send_fd keeps no copy of what it sends, and the received descriptor is owned by \
             Passed (dropping it closes it).",
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: a program at the other end, and descriptor hygiene across exec.

const INSPECT: &str = env!("CARGO_BIN_EXE_ex06-inspect");

/// Reads the program's descriptor table (lines up to `end`).
fn read_table(reader: &mut impl BufRead) {
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("read from the program");
        assert!(n > 0, "the program ended before reporting its descriptors");
        if line.trim_end() == "end" {
            return;
        }
    }
}

#[test]
fn task5_program_talks_through_the_socket() {
    isolated(COPROCESS_HINT, || {
        let co = spawn_coprocess(&[INSPECT]).expect("spawn_coprocess returned an error");
        let mut reader = BufReader::new(co.socket.try_clone().expect("dup"));
        read_table(&mut reader);
        (&co.socket)
            .write_all(b"hello\nsocket pair\n")
            .expect("write");
        let mut replies = String::new();
        for _ in 0..2 {
            reader.read_line(&mut replies).expect("read");
        }
        drop(reader);
        let exit = Exit::from(co.finish().expect("finish returned an error"));
        (replies, exit)
    })
    .judge(|(replies, exit): (String, Exit), _| {
        assert_eq!(replies, "HELLO\nSOCKET PAIR\n");
        assert_eq!(exit, Exit::Exited(0));
    });
}

#[test]
fn task5_program_holds_only_its_end_as_stdin_and_stdout() {
    isolated(COPROCESS_HINT, || {
        // Descriptors this test process already had may be inherited legitimately; only what
        // spawn_coprocess opened is judged.
        checkpoint("before the call");
        let co = spawn_coprocess(&[INSPECT]).expect("spawn_coprocess returned an error");
        // Once the program has reported its table it runs its own code, waiting for input: the
        // judge reads its descriptor table, and ours, from the kernel.
        let mut reader = BufReader::new(co.socket.try_clone().expect("dup"));
        read_table(&mut reader);
        drop(reader);
        checkpoint("the program runs");
        let pid = co.pid.as_raw();
        co.finish().expect("finish returned an error");
        pid
    })
    .judge(|pid: i32, seen| {
        let inherited = seen.at("before the call").test_process();
        let running = seen.at("the program runs");
        let program = running.expect_process(pid, "the program should be running");
        let target = |fd: i32| program.fds.get(&fd).map(|e| e.target.to_string());
        let (stdin, stdout) = (target(0), target(1));
        assert!(
            stdin.as_ref().is_some_and(|t| t.starts_with("socket:[")) && stdin == stdout,
            "the program's stdin and stdout should be one and the same socket (its end of the \
             pair); the kernel says 0 -> {stdin:?}, 1 -> {stdout:?}"
        );
        let extra: Vec<String> = program
            .fds
            .iter()
            .filter(|(fd, e)| **fd > 2 && inherited.fds.get(fd).map(|i| &i.target) != Some(&e.target))
            .map(|(fd, e)| format!("{fd} -> {}", e.target))
            .collect();
        assert!(
            extra.is_empty(),
            "the program inherited descriptors beyond 0, 1 and 2: {extra:?}. Create the pair \
             (and any other descriptor) close-on-exec; only the dup2 copies on 0 and 1 survive exec."
        );
        let ours = sockets_opened_since(inherited, running.test_process());
        let [(_, our_inode)] = ours[..] else {
            panic!("the caller should hold exactly one new socket, its end of the pair: {ours:?}");
        };
        assert_ne!(
            stdin,
            Some(format!("socket:[{our_inode}]")),
            "the program holds our end of the pair, not its own"
        );
    });
}

#[test]
fn task5_closing_our_end_is_the_programs_end_of_file() {
    isolated(COPROCESS_HINT, || {
        checkpoint("before the call");
        let co = spawn_coprocess(&[INSPECT]).expect("spawn_coprocess returned an error");
        Exit::from(co.finish().expect("finish returned an error"))
    })
    .judge(|exit: Exit, seen| {
        assert_eq!(
            exit,
            Exit::Exited(0),
            "the program reads until end of file and then exits with 0"
        );
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Our end of the pair and every helper descriptor must be closed.",
        );
        seen.end
            .assert_no_zombies("finish() must reap the program.");
    });
}

#[test]
fn task5_missing_program_is_a_clear_error() {
    isolated(COPROCESS_HINT, || {
        checkpoint("before the call");
        let result = spawn_coprocess(&["ipclab-no-such-program"]);
        let missing = verdict_data(
            &result,
            matches!(&result, Err(Error::CommandNotFound { command }) if command == "ipclab-no-such-program"),
        );
        drop(result);
        checkpoint("after the call");
        let empty = spawn_coprocess(&[]);
        (missing, verdict_data(&empty, matches!(empty, Err(Error::EmptyCommand))))
    })
    .judge(
        |((not_found, result), (rejected, empty)): ((bool, String), (bool, String)), seen| {
            assert!(
                not_found,
                "expected Err(Error::CommandNotFound {{ command: \"ipclab-no-such-program\" }}), got {result}"
            );
            let after = seen.at("after the call");
            assert_no_fd_leaks(
                seen.at("before the call").test_process(),
                after.test_process(),
                "Close both ends of the pair when the program cannot start.",
            );
            after.assert_no_zombies("Reap the child whose exec failed.");
            assert!(
                rejected,
                "an empty command must be Err(Error::EmptyCommand), got {empty}"
            );
        },
    );
}
