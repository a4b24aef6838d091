//! The graded suite of exercise 03: System V message queues.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: a queue
//! that really exists shows up in `/proc/sysvipc/msg` with its mode, message count and bytes, and
//! disappears once removed. Every test runs the student's code in a sandboxed process of its own
//! with a deadline (`isolated`), and hands what it saw to a judge that runs where no student code
//! ran: the judge reads the kernel's queue table itself, at `checkpoint`s the body marks, and
//! decides the verdict. Every test also removes its queue itself at the end (a test-side guard),
//! so that a broken submission cannot leave queues behind.

use std::io::{BufRead, BufReader};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use assert_cmd::Command as BinCommand;
use exercise03::*;
use ipclab_support::data::{payload, Received};
use ipclab_support::procfs;
use ipclab_support::syscalls::SyscallWatch;
use ipclab_support::sysvipc::MsgQueueRow;
use ipclab_support::{checkpoint, isolated, Snapshot};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use rstest::rstest;
use serde::{Deserialize, Serialize};

const NEVER_RETURNED_HINT: &str = "a queue operation blocked or looped. Nothing in this test waits for a message: a receive that must not wait passes IPC_NOWAIT, and checks of arguments happen before any system call";

const RECEIVE_HINT: &str = "receive waited forever. A blocking msgrcv returns only when a message \
     of the selected type arrives: was the message sent to the same queue id, with a positive \
     type, and does the selector map to the right msgtyp (0, the type, or minus the bound)?";

const NOWAIT_HINT: &str =
    "a call that must not block did block. Pass IPC_NOWAIT in msgflg: msgrcv \
     then fails with ENOMSG on an empty queue, msgsnd with EAGAIN on a full one.";

const SERVER_HINT: &str = "the client/server exchange hung. The server must receive requests of \
     type REQUEST_TYPE only and answer each with type = the client's pid; the client must \
     receive only messages of its own pid's type. The server ends when the queue is removed \
     (msgrcv fails with EIDRM).";

const EIDRM_HINT: &str = "the blocked receiver never woke up. When the queue is removed \
     (IPC_RMID), a process blocked in msgrcv on it fails with EIDRM: report it as \
     Error::Removed, do not retry.";

/// The test's own safety net: removes the queue with this id when the test ends, however it
/// ends. (The code under test must remove its queues itself; task 7 checks that it does.)
struct RemoveAtEnd(i32);

impl Drop for RemoveAtEnd {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer; an id that no longer exists just fails.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A private queue for one test, with its safety net. The test creates a queue of its own first
/// (a decoy, removed at the end too), so that the queue under test is not the namespace's first
/// object, whose id is 0: an `id()` that returns 0 must not pass by luck.
fn private_queue(mode: u32) -> (OwnedQueue, [RemoveAtEnd; 2]) {
    let decoy = RemoveAtEnd(decoy_queue());
    let queue = MessageQueue::create(Key::private(), mode).expect("create a private queue");
    let net = RemoveAtEnd(queue.id());
    (queue, [decoy, net])
}

/// A private queue made by the test itself (raw msgget), not by the code under test.
fn decoy_queue() -> i32 {
    // SAFETY: msgget takes plain integers.
    let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
    assert!(
        id >= 0,
        "the test could not create its own queue: {}",
        std::io::Error::last_os_error()
    );
    id
}

/// A file to derive keys from, in a directory of its own that is deleted at the end.
fn key_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("queue.key");
    std::fs::write(&path, b"").expect("create the key file");
    (dir, path)
}

/// What the kernel listed for queue `id` in the snapshot; fails the test if it listed nothing.
#[track_caller]
fn row(seen: &Snapshot, id: i32) -> MsgQueueRow {
    seen.message_queue(id).copied().unwrap_or_else(|| {
        panic!(
            "queue {id} is not in /proc/sysvipc/msg: the kernel does not know it (was it created \
             with msgget(IPC_CREAT), and not removed too early?)"
        )
    })
}

/// A limit of the test's IPC namespace (`msgmax`, `msgmnb`), as the judge itself read it there.
#[track_caller]
fn limit_in(seen: &Snapshot, name: &str) -> usize {
    seen.ipc_limits
        .get(name)
        .map(|v| *v as usize)
        .unwrap_or_else(|| panic!("the judge could not read {name} of the test's IPC namespace"))
}

/// A limit as the calling process sees it (the body: to size its messages; the judge checks
/// with [`limit_in`]).
fn kernel_limit(path: &str) -> usize {
    std::fs::read_to_string(path)
        .expect("read a kernel limit")
        .trim()
        .parse()
        .expect("a number")
}

/// An error of the code under test, as the judge receives it: the variants the tests look for,
/// and any other as its debug text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Failure {
    NoSuchPath { path: PathBuf },
    InvalidProjectId,
    InvalidMode { mode: u32 },
    PrivateKey,
    NotFound { key: i32 },
    AlreadyExists { key: i32 },
    PermissionDenied { key: i32 },
    InvalidType { mtype: i64 },
    TooLarge { len: usize, max: usize },
    QueueFull { len: usize },
    Removed { id: i32 },
    Other(String),
}

fn failure(e: &Error) -> Failure {
    match e {
        Error::NoSuchPath { path } => Failure::NoSuchPath { path: path.clone() },
        Error::InvalidProjectId => Failure::InvalidProjectId,
        Error::InvalidMode { mode } => Failure::InvalidMode { mode: *mode },
        Error::PrivateKey => Failure::PrivateKey,
        Error::NotFound { key } => Failure::NotFound { key: *key },
        Error::AlreadyExists { key } => Failure::AlreadyExists { key: *key },
        Error::PermissionDenied { key } => Failure::PermissionDenied { key: *key },
        Error::InvalidType { mtype } => Failure::InvalidType { mtype: *mtype },
        Error::TooLarge { len, max } => Failure::TooLarge {
            len: *len,
            max: *max,
        },
        Error::QueueFull { len } => Failure::QueueFull { len: *len },
        Error::Removed { id } => Failure::Removed { id: *id },
        other => Failure::Other(format!("{other:?}")),
    }
}

/// A result of the code under test, as the judge receives it.
type Seen<T> = std::result::Result<T, Failure>;

fn seen<T, U>(result: Result<T>, keep: impl FnOnce(T) -> U) -> Seen<U> {
    result.map(keep).map_err(|e| failure(&e))
}

/// A message as the judge receives it: its type and its text (lossily as UTF-8).
fn text_of(m: Message) -> (i64, String) {
    (m.mtype, String::from_utf8_lossy(&m.data).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Task 1: create or open a queue from a key.

#[rstest]
#[case::owner_only(0o600)]
#[case::group_may_read(0o640)]
#[case::everyone(0o666)]
fn task1_private_queue_appears_in_the_kernel_with_the_requested_mode(#[case] mode: u32) {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(mode);
        checkpoint("created");
        queue.id()
    })
    .judge(|id, seen| {
        let listed = row(seen.at("created"), id);
        assert_eq!(
            listed.mode & 0o777,
            mode,
            "the kernel lists mode {:o}, but the queue was created with {mode:o}: pass the \
             permission bits in msgget's flags, together with IPC_CREAT",
            listed.mode & 0o777
        );
        assert_eq!(listed.key, 0, "a private queue has key IPC_PRIVATE (0)");
        assert_eq!(listed.qnum, 0, "a new queue holds no message");
    });
}

#[test]
fn task1_id_is_the_kernels_msqid() {
    isolated(NEVER_RETURNED_HINT, || {
        // Two queues of the test's own first: the new queue is neither 0 nor the first id.
        let decoys = [RemoveAtEnd(decoy_queue()), RemoveAtEnd(decoy_queue())];
        let queue = MessageQueue::create(Key::private(), 0o600).expect("create a private queue");
        let _net = RemoveAtEnd(queue.id());
        let handle = queue.handle();
        checkpoint("created");
        (decoys.map(|d| d.0), queue.id(), handle.id())
    })
    .judge(|(decoys, id, handle_id), seen| {
        let created = seen.at("created");
        let new: Vec<i32> = created
            .message_queues
            .iter()
            .map(|q| q.id)
            .filter(|q| !decoys.contains(q))
            .collect();
        let [msqid] = new[..] else {
            panic!(
                "create should make exactly one queue; besides the test's own {decoys:?} the \
                 kernel lists {new:?}"
            );
        };
        assert_eq!(
            id, msqid,
            "id() returned {id}, but the kernel's msqid of the new queue is {msqid} (the test's \
             own queues are {decoys:?}): return the id msgget gave"
        );
        assert_eq!(
            handle_id, msqid,
            "handle() must name the same queue (msqid {msqid}), its id() returned {handle_id}"
        );
    });
}

#[test]
fn task1_key_from_a_file_names_the_same_queue_for_every_opener() {
    isolated(NEVER_RETURNED_HINT, || {
        let (dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path on an existing file");
        let created = MessageQueue::create(key, 0o600).expect("create a queue for the key");
        let _net = RemoveAtEnd(created.id());
        let again = Key::from_path(&path, b'q').expect("the same key again");
        let opened = MessageQueue::open(again).expect("open the queue by its key");
        checkpoint("opened");
        // The key file stays for the judge, who derives the key itself (the scratch directory
        // goes when the test ends).
        let _ = dir.keep();
        (path, key.raw(), created.id(), opened.id())
    })
    .judge(|(path, key, created, opened), seen| {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string that outlives the call.
        let expected = unsafe { libc::ftok(c_path.as_ptr(), libc::c_int::from(b'q')) };
        assert_eq!(key, expected, "Key::from_path must be ftok(path, project)");
        assert_eq!(
            opened, created,
            "opening by the same key must give the same queue"
        );
        assert_eq!(
            row(seen.at("opened"), created).key,
            key,
            "the kernel lists the queue under the key"
        );
    });
}

#[test]
fn task1_missing_path_is_a_clear_error() {
    isolated(NEVER_RETURNED_HINT, || {
        let (dir, _path) = key_file();
        let missing = dir.path().join("no-such-file");
        let result = Key::from_path(&missing, b'q');
        let shown = result.as_ref().err().map(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "[TMP]")
        });
        (missing, seen(result, Key::raw), shown)
    })
    .judge(|(missing, result, shown), _| match result {
        Err(Failure::NoSuchPath { path }) => {
            assert_eq!(path, missing, "the error must name the missing path");
            ipclab_support::assert_snapshot!("task1_missing_path", shown.unwrap_or_default());
        }
        other => panic!(
            "ftok on a missing file fails with ENOENT: expected Err(Error::NoSuchPath {{ path }}), \
             got {other:?}"
        ),
    });
}

#[test]
fn task1_project_id_zero_is_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let (_dir, path) = key_file();
        seen(Key::from_path(&path, 0), Key::raw)
    })
    .judge(|result, _| {
        assert!(
            matches!(result, Err(Failure::InvalidProjectId)),
            "ftok needs a non-zero project id: expected Err(Error::InvalidProjectId), got {result:?}"
        );
    });
}

#[test]
fn task1_opening_a_queue_that_does_not_exist_is_not_found() {
    isolated(NEVER_RETURNED_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path on an existing file");
        let result = MessageQueue::open(key);
        let _net = result.as_ref().ok().map(|queue| RemoveAtEnd(queue.id()));
        (key.raw(), seen(result, |queue| queue.id()))
    })
    .judge(|(key, result), _| match result {
        Err(Failure::NotFound { key: k }) => assert_eq!(k, key, "name the key in the error"),
        Ok(_) => panic!("open created a queue: msgget without IPC_CREAT must fail with ENOENT"),
        Err(other) => panic!("expected Err(Error::NotFound {{ key }}), got {other:?}"),
    });
}

#[test]
fn task1_creating_a_queue_that_exists_is_already_exists() {
    isolated(NEVER_RETURNED_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path on an existing file");
        let first = MessageQueue::create(key, 0o600).expect("create the queue");
        let _net = RemoveAtEnd(first.id());
        let second = MessageQueue::create(key, 0o600);
        let second = seen(second, |second| {
            let id = second.id();
            std::mem::forget(second);
            id
        });
        (key.raw(), first.id(), second)
    })
    .judge(|(key, first, second), _| match second {
        Err(Failure::AlreadyExists { key: k }) => assert_eq!(k, key),
        Ok(id) => panic!(
            "create returned queue {id} for a key whose queue {first} exists: pass IPC_EXCL so \
             that msgget fails with EEXIST"
        ),
        Err(other) => panic!("expected Err(Error::AlreadyExists {{ key }}), got {other:?}"),
    });
}

#[test]
fn task1_open_refuses_the_private_key() {
    isolated(NEVER_RETURNED_HINT, || {
        let result = MessageQueue::open(Key::private());
        let _net = result.as_ref().ok().map(|queue| RemoveAtEnd(queue.id()));
        seen(result, |queue| queue.id())
    })
    .judge(|result, _| {
        assert!(
            matches!(result, Err(Failure::PrivateKey)),
            "msgget(IPC_PRIVATE) always makes a new queue, so `open` must refuse it with \
             Err(Error::PrivateKey); got {result:?}"
        );
    });
}

#[rstest]
#[case::sticky_bit(0o1600)]
#[case::ipc_creat_bit(0o1000 | 0o600)]
#[case::way_out_of_range(0o7_0000_0600)]
fn task1_mode_beyond_permission_bits_is_refused(#[case] mode: u32) {
    isolated(NEVER_RETURNED_HINT, || {
        let result = MessageQueue::create(Key::private(), mode);
        let _net = result.as_ref().ok().map(|queue| RemoveAtEnd(queue.id()));
        seen(result, |queue| queue.id())
    })
    .judge(|result, _| {
        assert!(
            matches!(result, Err(Failure::InvalidMode { mode: m }) if m == mode),
            "mode {mode:#o} has bits beyond 0o777, which msgget would read as flags (IPC_CREAT is \
             0o1000): expected Err(Error::InvalidMode {{ mode }}), got {result:?}"
        );
    });
}

#[test]
fn task1_permission_problem_is_reported() {
    isolated(RECEIVE_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path on an existing file");
        // Readable by its owner only: nobody else may write, and the owner may not write either.
        let queue = MessageQueue::create(key, 0o400).expect("create the queue");
        let _net = RemoveAtEnd(queue.id());
        let (mut from_child, mut to_parent) =
            std::io::pipe().expect("a pipe for the child's answer");
        // SAFETY: the child only changes its own identity, calls `open`, writes what it got and
        // _exits.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(from_child);
                // SAFETY: geteuid/setgid/setuid take plain integers. As root (who may open
                // anything), become `nobody` first; as anyone else, the 0o400 mode already
                // denies writing to the owner.
                let answer = unsafe {
                    if libc::geteuid() == 0
                        && (libc::setgid(65534) != 0 || libc::setuid(65534) != 0)
                    {
                        "no other user".to_owned()
                    } else {
                        match MessageQueue::open(key) {
                            Err(Error::PermissionDenied { key: k }) => format!("denied {k}"),
                            Ok(_) => "opened".to_owned(),
                            Err(other) => format!("other error {other:?}"),
                        }
                    }
                };
                let code = i32::from(
                    std::io::Write::write_all(&mut to_parent, answer.as_bytes()).is_err(),
                );
                // SAFETY: ends the child without returning into the test.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(to_parent);
                let mut answer = String::new();
                let _ = std::io::Read::read_to_string(&mut from_child, &mut answer);
                let status = waitpid(child, None).expect("waitpid");
                (key.raw(), format!("{status:?}"), answer)
            }
        }
    })
    .judge(|(key, status, answer), _| {
        if let Some(k) = answer.strip_prefix("denied ") {
            assert_eq!(
                k,
                key.to_string(),
                "Error::PermissionDenied must name the key"
            );
        } else if answer == "opened" {
            panic!(
                "a user without write permission opened the queue: ask msgget for read and \
                 write (0o600 in its flags), so that the kernel checks the queue's mode"
            );
        } else if answer.starts_with("other error") {
            panic!(
                "opening a queue the user may not write must fail with EACCES, reported as \
                 Err(Error::PermissionDenied {{ key }}); another error came back"
            );
        } else {
            panic!("the child testing permissions did not finish normally: {status} ({answer})");
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: typed messages.

/// A length that stands for "msgmax of the test's namespace" in the cases below (the judge's own
/// namespace may have another msgmax).
const MSGMAX_LEN: usize = usize::MAX;

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::one_kib(1024)]
#[case::msgmax(MSGMAX_LEN)]
fn task2_message_comes_back_with_its_type_and_text(#[case] len: usize) {
    isolated(RECEIVE_HINT, || {
        let len = if len == MSGMAX_LEN {
            kernel_limit(MSGMAX_PATH)
        } else {
            len
        };
        let (queue, _net) = private_queue(0o600);
        let text = payload(len);
        let sent = seen(queue.send(7, &text), |()| ());
        if sent.is_err() {
            return (len, queue.id(), sent, None);
        }
        checkpoint("sent");
        let message = queue.receive(Selector::First).expect("receive");
        checkpoint("received");
        (
            len,
            queue.id(),
            sent,
            Some((message.mtype, Received::of(&message.data, &text))),
        )
    })
    .judge(|(sent_len, id, sent, message), seen| {
        let limit = limit_in(&seen.end, "msgmax");
        let len = if len == MSGMAX_LEN { limit } else { len };
        assert_eq!(sent_len, len, "the test sent {len} bytes");
        let Some((mtype, received)) = message else {
            if len == limit {
                panic!(
                    "a message of exactly msgmax = {len} bytes must be sent: the limit is the \
                     largest size allowed, not the first one refused; send returned {sent:?}"
                );
            }
            panic!("send of {len} bytes failed: {sent:?}");
        };
        let listed = row(seen.at("sent"), id);
        assert_eq!(
            (listed.qnum, listed.cbytes as usize),
            (1, len),
            "after one send of {len} bytes the kernel should hold 1 message of {len} bytes \
             (the type is not counted)"
        );
        assert_eq!(mtype, 7, "the type travels with the message");
        received.assert_matches(&payload(len), "the received text");
        assert_eq!(
            row(seen.at("received"), id).qnum,
            0,
            "receiving takes the message out of the queue"
        );
    });
}

#[test]
fn task2_messages_of_any_type_come_out_in_sending_order() {
    isolated(RECEIVE_HINT, || {
        let (queue, _net) = private_queue(0o600);
        for (mtype, text) in [(3, "c"), (1, "a"), (2, "b")] {
            queue.send(mtype, text.as_bytes()).expect("send");
        }
        (0..3)
            .map(|_| text_of(queue.receive(Selector::First).expect("receive")))
            .collect::<Vec<_>>()
    })
    .judge(|got, _| {
        assert_eq!(
            got,
            [(3, "c".into()), (1, "a".into()), (2, "b".into())],
            "Selector::First (msgtyp 0) takes the oldest message, whatever its type"
        );
    });
}

#[test]
fn task2_selecting_a_type_skips_messages_of_other_types() {
    isolated(RECEIVE_HINT, || {
        let (queue, _net) = private_queue(0o600);
        for (mtype, text) in [(1, "a"), (2, "b"), (1, "c"), (2, "d")] {
            queue.send(mtype, text.as_bytes()).expect("send");
        }
        let take = |which| text_of(queue.receive(which).expect("receive"));
        let got = [
            take(Selector::OfType(2)),
            take(Selector::OfType(2)),
            take(Selector::First),
        ];
        checkpoint("taken");
        (queue.id(), got)
    })
    .judge(
        |(id, [first, second, third]): (i32, [(i64, String); 3]), seen| {
            assert_eq!(first, (2, "b".into()), "oldest message of type 2");
            assert_eq!(second, (2, "d".into()), "next message of type 2");
            assert_eq!(third, (1, "a".into()), "the type-1 messages stay, in order");
            assert_eq!(
                row(seen.at("taken"), id).qnum,
                1,
                "one message (\"c\") is left in the queue"
            );
        },
    );
}

#[test]
fn task2_lowest_type_up_to_a_bound_makes_a_priority_queue() {
    isolated(RECEIVE_HINT, || {
        let (queue, _net) = private_queue(0o600);
        for (mtype, text) in [
            (5, "low"),
            (3, "mid-1"),
            (9, "lowest"),
            (1, "urgent"),
            (3, "mid-2"),
        ] {
            queue.send(mtype, text.as_bytes()).expect("send");
        }
        let take = |which| {
            let m = queue.receive(which).expect("receive");
            format!("{}:{}", m.mtype, String::from_utf8_lossy(&m.data))
        };
        let order: Vec<String> = (0..3).map(|_| take(Selector::LowestUpTo(4))).collect();
        checkpoint("bounded");
        let rest = [
            take(Selector::LowestUpTo(i64::from(i32::MAX))),
            take(Selector::LowestUpTo(i64::from(i32::MAX))),
        ];
        (queue.id(), order, rest)
    })
    .judge(|(id, order, rest): (i32, Vec<String>, [String; 2]), seen| {
        assert_eq!(
            order,
            ["1:urgent", "3:mid-1", "3:mid-2"],
            "Selector::LowestUpTo(4) (msgtyp -4) takes the lowest type <= 4 first, oldest first \
             within a type"
        );
        let listed = row(seen.at("bounded"), id);
        assert_eq!(
            listed.qnum, 2,
            "types 5 and 9 are above the bound and stay queued"
        );
        assert_eq!(rest[0], "5:low");
        assert_eq!(rest[1], "9:lowest");
    });
}

#[rstest]
#[case::zero(0)]
#[case::negative(-5)]
fn task2_message_types_must_be_positive(#[case] mtype: i64) {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let sent = seen(queue.send(mtype, b"x"), |()| ());
        let selected = seen(queue.try_receive(Selector::OfType(mtype)), |m| {
            m.map(text_of)
        });
        checkpoint("refused");
        (queue.id(), sent, selected)
    })
    .judge(|(id, sent, selected), seen| {
        assert!(
            matches!(sent, Err(Failure::InvalidType { mtype: t }) if t == mtype),
            "a message's type must be > 0: expected Err(Error::InvalidType {{ mtype: {mtype} }}), \
             got {sent:?}"
        );
        assert!(
            matches!(selected, Err(Failure::InvalidType { .. })),
            "Selector::OfType needs a positive type too (0 and negatives mean other selectors): \
             expected Err(Error::InvalidType {{ .. }}), got {selected:?}"
        );
        assert_eq!(
            row(seen.at("refused"), id).qnum,
            0,
            "nothing may reach the queue"
        );
    });
}

#[rstest]
#[case::zero(0)]
#[case::negative(-5)]
fn task2_lowest_up_to_needs_a_positive_bound(#[case] bound: i64) {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        queue.send(1, b"queued").expect("send(1, \"queued\")");
        let selected = seen(queue.try_receive(Selector::LowestUpTo(bound)), |m| {
            m.map(text_of)
        });
        checkpoint("refused");
        (queue.id(), selected)
    })
    .judge(|(id, selected), seen| {
        assert!(
            matches!(selected, Err(Failure::InvalidType { .. })),
            "Selector::LowestUpTo({bound}) has no positive bound (msgtyp -0 would mean First, a \
             positive msgtyp OfType): expected Err(Error::InvalidType {{ .. }}), got {selected:?}"
        );
        assert_eq!(
            row(seen.at("refused"), id).qnum,
            1,
            "Selector::LowestUpTo({bound}) is refused: the queued message must stay in the queue"
        );
    });
}

#[test]
fn task2_message_from_another_process_is_received() {
    isolated(RECEIVE_HINT, || {
        let (queue, _net) = private_queue(0o600);
        // SAFETY: the child only sends and _exits.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = match queue.send(42, b"from the child") {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                // SAFETY: ends the child without running the parent's destructors (which would
                // remove the queue).
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                // Blocks until the child's message arrives.
                let message = queue.receive(Selector::OfType(42)).expect("receive");
                checkpoint("received");
                waitpid(child, None).expect("waitpid");
                (child.as_raw(), queue.id(), message.data)
            }
        }
    })
    .judge(|(child, id, data): (i32, i32, Vec<u8>), seen| {
        assert_eq!(data, b"from the child");
        assert_eq!(
            row(seen.at("received"), id).lspid.as_raw(),
            child,
            "the kernel names the child as the message's sender"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: non-blocking receive.

#[test]
fn task3_empty_queue_reports_no_message() {
    isolated(NOWAIT_HINT, || {
        let (queue, _net) = private_queue(0o600);
        seen(queue.try_receive(Selector::First), |m| m.map(text_of))
    })
    .judge(|got, _| {
        assert!(
            matches!(got, Ok(None)),
            "an empty queue with IPC_NOWAIT gives ENOMSG, which is not an error but the answer \
             \"no message\": expected Ok(None), got {got:?}"
        );
    });
}

#[test]
fn task3_no_message_of_the_selected_type_is_no_message_too() {
    isolated(NOWAIT_HINT, || {
        let (queue, _net) = private_queue(0o600);
        queue.send(1, b"type one").expect("send");
        let got = seen(queue.try_receive(Selector::OfType(2)), |m| m.map(text_of));
        checkpoint("tried");
        (queue.id(), got)
    })
    .judge(|(id, got), seen| {
        assert!(
            matches!(got, Ok(None)),
            "no message of type 2: expected Ok(None), got {got:?}"
        );
        assert_eq!(
            row(seen.at("tried"), id).qnum,
            1,
            "the type-1 message must stay in the queue"
        );
    });
}

#[test]
fn task3_a_waiting_message_is_returned_at_once() {
    isolated(NOWAIT_HINT, || {
        let (queue, _net) = private_queue(0o600);
        queue.send(4, b"ready").expect("send");
        queue
            .try_receive(Selector::First)
            .expect("try_receive")
            .map(text_of)
    })
    .judge(|got, _| {
        assert_eq!(got, Some((4, "ready".to_owned())));
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: limits.

#[test]
fn task4_kernel_limits_are_read_from_proc() {
    isolated(NEVER_RETURNED_HINT, || {
        (msgmax().expect("msgmax"), msgmnb().expect("msgmnb"))
    })
    .judge(|(max, mnb), seen| {
        let (max_in_proc, mnb_in_proc) =
            (limit_in(&seen.end, "msgmax"), limit_in(&seen.end, "msgmnb"));
        assert_eq!(max, max_in_proc, "msgmax() must read {MSGMAX_PATH}");
        assert_eq!(mnb, mnb_in_proc, "msgmnb() must read {MSGMNB_PATH}");
    });
}

#[test]
fn task4_message_larger_than_msgmax_is_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let max = kernel_limit(MSGMAX_PATH);
        let result = seen(queue.send(1, &payload(max + 1)), |()| ());
        checkpoint("refused");
        (queue.id(), max, result)
    })
    .judge(|(id, sent_len, result), seen| {
        let max = limit_in(&seen.end, "msgmax");
        assert_eq!(sent_len, max, "the test sent msgmax + 1 bytes of its namespace");
        match result {
            Err(Failure::TooLarge { len, max: m }) => assert_eq!(
                (len, m),
                (max + 1, max),
                "Error::TooLarge must carry the message's length and the kernel's msgmax"
            ),
            other => panic!(
                "a message of msgmax + 1 = {} bytes must be refused before msgsnd (which would only \
                 say EINVAL) with Err(Error::TooLarge {{ len, max }}); got {other:?}",
                max + 1
            ),
        }
        assert_eq!(row(seen.at("refused"), id).qnum, 0, "nothing may reach the queue");
    });
}

#[test]
fn task4_full_queue_is_reported_as_full() {
    isolated(NOWAIT_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let max = kernel_limit(MSGMAX_PATH);
        let capacity = kernel_limit(MSGMNB_PATH);
        let fits = capacity / max;
        let big = payload(max);
        let filling: Vec<Seen<()>> = (0..fits)
            .map(|_| seen(queue.try_send(1, &big), |()| ()))
            .collect();
        checkpoint("full");
        let one_more = seen(queue.try_send(1, &big), |()| ());
        queue.receive(Selector::First).expect("receive one");
        let after_taking_one = seen(queue.try_send(1, &big), |()| ());
        (
            queue.id(),
            max,
            capacity,
            filling,
            one_more,
            after_taking_one,
        )
    })
    .judge(
        |(id, max, capacity, filling, one_more, after_taking_one), seen| {
            assert_eq!(
                (max, capacity),
                (limit_in(&seen.end, "msgmax"), limit_in(&seen.end, "msgmnb")),
                "the test sized its messages by its namespace's msgmax and msgmnb"
            );
            let fits = capacity / max;
            for (n, sent) in filling.iter().enumerate() {
                if let Err(e) = sent {
                    panic!("message {} of {fits} should fit: {e:?}", n + 1);
                }
            }
            let listed = row(seen.at("full"), id);
            assert_eq!(
                listed.cbytes as usize,
                fits * max,
                "the kernel should hold {fits} messages of {max} bytes"
            );
            assert!(
                matches!(one_more, Err(Failure::QueueFull { .. })),
                "the queue holds {} of its {capacity} bytes, so another {max} do not fit: with \
             IPC_NOWAIT msgsnd fails with EAGAIN, reported as Err(Error::QueueFull {{ .. }}); got \
             {one_more:?}",
                listed.cbytes
            );
            assert!(
                after_taking_one.is_ok(),
                "after one message was taken out, there is room again: {after_taking_one:?}"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Task 5: queue status.

/// A queue's status as the judge receives it: (messages, bytes, last sender, last receiver).
type Counts = (u64, u64, Option<i32>, Option<i32>);

fn counts(status: &QueueStatus) -> Counts {
    (
        status.messages,
        status.bytes,
        status.last_sender.map(Pid::as_raw),
        status.last_receiver.map(Pid::as_raw),
    )
}

#[test]
fn task5_status_counts_messages_and_bytes_as_the_kernel_does() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o640);
        let fresh = counts(&queue.status().expect("status"));
        for len in [5, 7, 11] {
            queue.send(1, &payload(len)).expect("send");
        }
        let status = queue.status().expect("status");
        checkpoint("sent");
        (
            queue.id(),
            fresh,
            counts(&status),
            status.mode,
            status.capacity,
        )
    })
    .judge(|(id, fresh, status, mode, capacity), seen| {
        let msgmnb = limit_in(&seen.end, "msgmnb");
        assert_eq!(
            fresh,
            (0, 0, None, None),
            "a new queue is empty and nobody has sent or received"
        );
        let listed = row(seen.at("sent"), id);
        assert_eq!(
            (status.0, status.1),
            (listed.qnum, listed.cbytes),
            "status must report what the kernel holds (msg_qnum, msg_cbytes)"
        );
        assert_eq!((status.0, status.1), (3, 23));
        assert_eq!(mode, 0o640, "the permission bits of msg_perm.mode");
        assert_eq!(
            capacity as usize, msgmnb,
            "a new queue's capacity (msg_qbytes) is msgmnb"
        );
    });
}

#[test]
fn task5_last_sender_and_receiver_are_the_processes_that_did_it() {
    isolated(RECEIVE_HINT, || {
        let (queue, _net) = private_queue(0o600);
        // SAFETY: the child only sends and _exits.
        let child = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = i32::from(queue.send(1, b"hi").is_err());
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => child,
        };
        let exited = waitpid(child, None).expect("waitpid") == WaitStatus::Exited(child, 0);
        let sent = counts(&queue.status().expect("status"));
        checkpoint("sent");
        queue.receive(Selector::First).expect("receive");
        let received = counts(&queue.status().expect("status"));
        (queue.id(), child.as_raw(), exited, sent, received)
    })
    .judge(|(id, child, exited, sent, received), seen| {
        assert!(exited, "the child's send failed");
        assert_eq!(
            row(seen.at("sent"), id).lspid.as_raw(),
            child,
            "the kernel names the child as the last sender"
        );
        assert_eq!(
            sent.2,
            Some(child),
            "last_sender is msg_lspid: the child (pid {child}) sent last"
        );
        assert_eq!(sent.3, None, "nobody has received yet");
        assert_eq!(
            received.3,
            Some(seen.end.root),
            "last_receiver is msg_lrpid: this process received last"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 6: a client and a server, unrelated processes.

/// Starts `ex03-server` on the queue that `key_file` names.
fn start_server(key_file: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ex03-server"))
        .arg(key_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start ex03-server")
}

#[test]
fn task6_concurrent_clients_each_get_their_own_replies() {
    const WORDS: [[&str; 2]; 3] = [
        ["apple", "avocado"],
        ["banana", "blueberry"],
        ["cherry", "clementine"],
    ];
    isolated(SERVER_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path");
        let queue = MessageQueue::create(key, 0o600).expect("create the queue");
        let id = queue.id();
        let _net = RemoveAtEnd(id);
        let server = start_server(&path);

        // What each client printed, and whether it succeeded.
        let clients: Vec<(bool, String, String)> = thread::scope(|scope| {
            let running: Vec<_> = WORDS
                .iter()
                .map(|pair| {
                    let path = &path;
                    scope.spawn(move || {
                        let output = BinCommand::new(env!("CARGO_BIN_EXE_ex03-client"))
                            .arg(path)
                            .args(pair)
                            .timeout(Duration::from_secs(8))
                            .output()
                            .expect("run ex03-client");
                        (
                            output.status.success(),
                            String::from_utf8_lossy(&output.stdout).into_owned(),
                            String::from_utf8_lossy(&output.stderr).into_owned(),
                        )
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|client| client.join().expect("a client thread"))
                .collect()
        });
        checkpoint("served");

        queue.remove().expect("remove the queue");
        let output = server.wait_with_output().expect("wait for the server");
        (
            id,
            clients,
            output.status.success(),
            format!("{:?}", output.status),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    })
    .judge(|(id, clients, server_ok, server_status, summary), seen| {
        for (pair, (ok, stdout, stderr)) in WORDS.iter().zip(&clients) {
            let expected = format!("{}\n{}\n", pair[0].to_uppercase(), pair[1].to_uppercase());
            assert!(
                *ok,
                "ex03-client {} {} failed: stdout {stdout:?}, stderr {stderr:?}",
                pair[0], pair[1]
            );
            assert_eq!(
                stdout, &expected,
                "ex03-client {} {} printed the wrong replies",
                pair[0], pair[1]
            );
        }
        assert_eq!(
            row(seen.at("served"), id).qnum,
            0,
            "every request was taken by the server and every reply by its client"
        );
        assert!(
            server_ok,
            "the server must end normally once the queue is removed (its msgrcv fails with \
             EIDRM): {server_status}"
        );
        ipclab_support::assert_snapshot!("task6_server_summary", summary);
    });
}

#[test]
fn task6_server_replies_with_the_clients_pid_as_the_type() {
    isolated(SERVER_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path");
        let queue = MessageQueue::create(key, 0o600).expect("create the queue");
        let _net = RemoveAtEnd(queue.id());
        let mut server = start_server(&path);

        // Two requests as a client would send them, claiming pids 777777 and 888888.
        for (pid, text) in [(777_777i32, "first"), (888_888, "second")] {
            let mut request = pid.to_ne_bytes().to_vec();
            request.extend_from_slice(text.as_bytes());
            queue.send(REQUEST_TYPE, &request).expect("send a request");
        }
        let second = queue.receive(Selector::OfType(888_888)).expect("receive");
        let first = queue.receive(Selector::OfType(777_777)).expect("receive");
        queue.remove().expect("remove the queue");
        let status = server.wait().expect("wait for the server");
        (
            first.data,
            second.data,
            status.success(),
            format!("{status:?}"),
        )
    })
    .judge(
        |(first, second, ok, status): (Vec<u8>, Vec<u8>, bool, String), _| {
            assert_eq!(
                (first.as_slice(), second.as_slice()),
                (b"FIRST".as_slice(), b"SECOND".as_slice()),
                "each reply must have the requesting client's pid as its type"
            );
            assert!(ok, "the server must end normally: {status}");
        },
    );
}

#[test]
fn task6_client_names_its_pid_and_takes_only_its_reply() {
    isolated(SERVER_HINT, || {
        let (_dir, path) = key_file();
        let key = Key::from_path(&path, b'q').expect("Key::from_path");
        let queue = MessageQueue::create(key, 0o600).expect("create the queue");
        let _net = RemoveAtEnd(queue.id());
        // A reply for somebody else, already waiting: the client must leave it alone.
        queue.send(999_999, b"not yours").expect("send");

        // This test plays the server.
        let mut client = Command::new(env!("CARGO_BIN_EXE_ex03-client"))
            .arg(&path)
            .arg("hello")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ex03-client");
        let client_pid = client.id() as i32;
        let request = queue
            .receive(Selector::OfType(REQUEST_TYPE))
            .expect("receive");
        queue
            .send(i64::from(client_pid), b"hi, client")
            .expect("reply");
        let mut lines = BufReader::new(client.stdout.take().expect("the client's stdout")).lines();
        let reply = lines.next().and_then(|l| l.ok());
        let left = queue
            .try_receive(Selector::OfType(999_999))
            .expect("try_receive")
            .map(text_of);
        let status = client.wait().expect("wait for the client");
        (
            client_pid,
            request.data,
            reply,
            left,
            status.success(),
            format!("{status:?}"),
        )
    })
    .judge(|(client_pid, request, reply, left, ok, status), _| {
        assert_eq!(
            request.get(..4),
            Some(client_pid.to_ne_bytes().as_slice()),
            "a request's text starts with the client's pid (4 bytes, native order)"
        );
        assert_eq!(&request[4..], b"hello", "then the request body");
        if left.is_none() || reply.as_deref() == Some("not yours") {
            panic!(
                "the client took a message that was not of its pid's type (a reply of type \
                 999999 for somebody else, waiting in the queue; the client printed {reply:?}): \
                 receive with Selector::OfType(your pid), not Selector::First (msgtyp 0 takes \
                 any message)"
            );
        }
        assert_eq!(
            left,
            Some((999_999, "not yours".to_owned())),
            "the message for somebody else must stay in the queue as it was"
        );
        assert_eq!(
            reply.as_deref(),
            Some("hi, client"),
            "the client must print the reply of its pid's type"
        );
        assert!(ok, "the client failed after its reply: {status}");
    });
}

#[test]
fn task6_a_client_forked_after_a_call_names_its_own_pid() {
    isolated(SERVER_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let me = std::process::id() as i32;
        // This test plays the server. First the test process calls: its reply is waiting
        // before it asks.
        queue
            .send(i64::from(me), b"for the parent")
            .expect("send the parent's reply");
        let ours = call(&queue, b"parent").expect("the parent's call");
        queue
            .receive(Selector::OfType(REQUEST_TYPE))
            .expect("receive the parent's request");
        // Then a child of ours calls.
        // SAFETY: the child only calls and _exits.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code = match call(&queue, b"child") {
                    Ok(reply) if reply == b"for the child" => 0,
                    Ok(_) => 2,
                    Err(_) => 1,
                };
                // SAFETY: ends the child without running the parent's destructors (which would
                // remove the queue).
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let request = queue
                    .receive(Selector::OfType(REQUEST_TYPE))
                    .expect("receive the child's request");
                let named = request
                    .data
                    .first_chunk::<4>()
                    .map(|pid| i32::from_ne_bytes(*pid));
                // Answered as a server answers: to the pid the request names (the child gets
                // its answer even if that is the wrong pid, so the verdict is not a hang).
                match named {
                    Some(pid) if pid > 1 => queue
                        .send(i64::from(pid), b"for the child")
                        .expect("send the child's reply"),
                    _ => {
                        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                let status = waitpid(child, None).expect("waitpid");
                (me, ours, child.as_raw(), named, format!("{status:?}"))
            }
        }
    })
    .judge(|(me, ours, child, named, status), _| {
        assert_eq!(
            ours, b"for the parent",
            "the parent's call returns the reply of its pid's type"
        );
        let whose = if named == Some(me) {
            " (its parent's)"
        } else {
            ""
        };
        assert_eq!(
            named,
            Some(child),
            "a client forked after its parent had called `call` named pid {named:?}{whose} in \
             its request, not its own pid {child}: a pid the parent cached is stale in its \
             child (ask getpid in each call, or clear the cache in the child at fork)"
        );
        assert_eq!(
            status,
            format!("{:?}", WaitStatus::Exited(Pid::from_raw(child), 0)),
            "the child's call must return the reply of its own pid's type"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 7: removal.

#[test]
fn task7_remove_takes_the_queue_out_of_the_kernel() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        queue.send(1, b"discarded").expect("send");
        checkpoint("sent");
        queue.remove().expect("remove");
        checkpoint("removed");
        id
    })
    .judge(|id, seen| {
        row(seen.at("sent"), id);
        assert_eq!(
            seen.at("removed").message_queue(id),
            None,
            "queue {id} is still listed in /proc/sysvipc/msg after remove: call msgctl(IPC_RMID)"
        );
    });
}

#[test]
fn task7_remove_removes_the_queue_exactly_once() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        // Every msgctl this thread makes from now on is recorded (a seccomp notifier).
        let watch = SyscallWatch::start(libc::SYS_msgctl).expect("watch msgctl");
        let removed = seen(queue.remove(), |()| ());
        let removals: Vec<i32> = watch
            .calls()
            .iter()
            .filter(|call| (call.args[1] as i32) & 0xff == libc::IPC_RMID)
            .map(|call| call.args[0] as i32)
            .collect();
        checkpoint("removed");
        (id, removed, removals)
    })
    .judge(|(id, removed, removals), seen| {
        assert!(
            removed.is_ok(),
            "remove of an existing queue must succeed: {removed:?}"
        );
        assert_eq!(
            seen.at("removed").message_queue(id),
            None,
            "queue {id} is still listed"
        );
        assert!(
            removals.len() <= 1,
            "remove called msgctl(IPC_RMID) {} times, on ids {removals:?}: the owner's Drop ran \
             after remove and removed the queue a second time. By then the kernel may have given \
             id {id} to a new queue, which that second call destroys. Make remove consume the \
             owner without running its Drop (std::mem::forget, or a flag Drop checks)",
            removals.len()
        );
        assert_eq!(
            removals,
            [id],
            "remove must call msgctl(IPC_RMID) once, on the queue's own id {id}"
        );
    });
}

#[test]
fn task7_removing_a_queue_that_is_already_gone_is_an_error() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        // Somebody else (`ipcrm -q`) removes it first.
        // SAFETY: IPC_RMID ignores the buffer argument.
        let gone = unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        assert_eq!(gone, 0, "the test could not remove the queue itself");
        (id, seen(queue.remove(), |()| ()))
    })
    .judge(|(id, removed), _| {
        assert!(
            matches!(removed, Err(Failure::Removed { id: i }) if i == id),
            "remove of a queue that somebody else removed first must report it: msgctl(IPC_RMID) \
             fails with EINVAL, which is Err(Error::Removed {{ id: {id} }}); got {removed:?}"
        );
    });
}

#[test]
fn task7_dropping_the_owner_removes_the_queue() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        checkpoint("created");
        drop(queue);
        checkpoint("dropped");
        id
    })
    .judge(|id, seen| {
        row(seen.at("created"), id);
        assert_eq!(
            seen.at("dropped").message_queue(id),
            None,
            "queue {id} outlived its owner: a System V queue exists until IPC_RMID, so the owner's \
             Drop must remove it"
        );
    });
}

#[test]
fn task7_queue_is_removed_even_when_the_code_panics_halfway() {
    isolated(NEVER_RETURNED_HINT, || {
        let (ids_tx, ids_rx) = mpsc::channel();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let queue = MessageQueue::create(Key::private(), 0o600).expect("create");
            ids_tx.send(queue.id()).expect("send the id");
            queue.send(1, b"half done").expect("send");
            checkpoint("in use");
            panic!("the code using the queue panics halfway");
        }));
        let Ok(id) = ids_rx.try_recv() else {
            // Creating it failed: that panic is the test's answer.
            panic::resume_unwind(outcome.expect_err("the body always panics"));
        };
        checkpoint("unwound");
        let _net = RemoveAtEnd(id);
        id
    })
    .judge(|id, seen| {
        assert_eq!(row(seen.at("in use"), id).qnum, 1);
        let listed = seen.at("unwound").message_queue(id);
        assert_eq!(
            listed.map(|r| r.qnum),
            None,
            "queue {id} survived a panic: removal must happen in Drop, which runs while unwinding"
        );
    });
}

#[test]
fn task7_operations_on_a_removed_queue_say_so() {
    isolated(NEVER_RETURNED_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        let handle = queue.handle();
        queue.remove().expect("remove");
        let sent = handle.send(1, b"late").err().map(|e| failure(&e));
        let taken = handle
            .try_receive(Selector::First)
            .err()
            .map(|e| failure(&e));
        let status = handle.status().err().map(|e| failure(&e));
        let shown = Error::Removed { id }
            .to_string()
            .replace(&id.to_string(), "[ID]");
        (id, [sent, taken, status], shown)
    })
    .judge(
        |(id, [sent, taken, status], shown): (i32, [Option<Failure>; 3], String), _| {
            for (what, result) in [("send", sent), ("try_receive", taken), ("status", status)] {
                assert!(
                matches!(result, Some(Failure::Removed { id: i }) if i == id),
                "{what} on a removed queue must fail with Err(Error::Removed {{ id: {id} }}) (the \
                 kernel says EINVAL or EIDRM), got {result:?}"
            );
            }
            ipclab_support::assert_snapshot!("task7_removed", shown);
        },
    );
}

#[test]
fn task7_blocked_receiver_learns_that_the_queue_was_removed() {
    isolated(EIDRM_HINT, || {
        let (queue, _net) = private_queue(0o600);
        let id = queue.id();
        let handle = queue.handle();
        let (tid_tx, tid_rx) = mpsc::channel();
        let receiver = thread::spawn(move || {
            // SAFETY: gettid takes no arguments.
            tid_tx
                .send(unsafe { libc::gettid() })
                .expect("send the thread id");
            seen(handle.receive(Selector::First), text_of)
        });
        let tid = tid_rx.recv().expect("the receiver thread started");
        // Wait until the thread is asleep in msgrcv (the judge checks that it was) before
        // removing the queue.
        let blocked = procfs::wait_until_blocked(Pid::from_raw(tid), Duration::from_secs(5), |c| {
            c.number == libc::SYS_msgrcv
        });
        checkpoint("receiver waiting");
        queue.remove().expect("remove");
        let result = receiver.join().expect("the receiver thread does not panic");
        (id, tid, blocked.err(), result)
    })
    .judge(|(id, tid, not_blocked, result), seen| {
        let waiting = seen.at("receiver waiting");
        let in_msgrcv = waiting
            .test_process()
            .threads
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| t.blocked)
            .is_some_and(|call| call.number == libc::SYS_msgrcv);
        if !in_msgrcv {
            let what = not_blocked.unwrap_or_else(|| waiting.describe());
            panic!(
                "receive on an empty queue should block in msgrcv until a message comes, but \
                 {what}; it returned {result:?}"
            );
        }
        assert!(
            matches!(result, Err(Failure::Removed { id: i }) if i == id),
            "a receiver blocked on a queue that is removed wakes up with EIDRM: expected \
             Err(Error::Removed {{ id: {id} }}), got {result:?}"
        );
    });
}
