//! The graded suite of exercise 04: System V shared memory.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: the table
//! of segments in `/proc/sysvipc/shm` (does the segment exist, how many attachments, who touched
//! it last) and the address-space maps in `/proc/<pid>/maps` (is the segment really mapped, in
//! which processes, at which addresses). Every test runs the student's code in a sandboxed
//! process of its own with a deadline (`isolated`); a judge that runs no student code reads the
//! table and the maps itself, at `checkpoint`s the body marks, and decides the verdict.
//!
//! Every segment a test creates is owned by a guard (the student's `Segment`, or the suite's own
//! `RawSegment`), so a failing test still leaves nothing in the kernel's table. And every judge
//! ends (`judge_all`) by asking the kernel whether anything is left once the body's guards are
//! gone: a segment in the table or a `/SYSV…` mapping in any process is a leak.

use std::cell::Cell;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use assert_cmd::Command as CmdAssert;
use exercise04::*;
use ipclab_support::child::{exit_code, spawn_child};
use ipclab_support::data::{payload, Received, MIB};
use ipclab_support::sysvipc::ShmRow;
use ipclab_support::witness::ProcessState;
use ipclab_support::{checkpoint, isolated, isolated_for, Deadline, Outcome, Snapshot, Witness};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::pipe;
use rstest::rstest;
use serde::{Deserialize, Serialize};

const NEVER_RETURNED_HINT: &str = "the test hung: creating, attaching, detaching or removing a segment never blocks, so look for a loop that waits for a condition that never comes";

const PAGE: usize = 4096;
const KIB: usize = 1024;

const SEGMENT_HINT: &str = "the test hung: creating, attaching, detaching or removing a segment \
     never blocks, so look for a loop that waits for a condition that never comes";

const MAILBOX_HINT: &str = "the mailbox exchange hung. `receive` waits until the other side's \
     slot is published as full: does `send` store the bytes and the length first and then the \
     \"full\" state with Ordering::Release, and does `receive` load it with Ordering::Acquire and \
     store \"empty\" when done? Do Host and Guest use opposite slots?";

const ECHO_HINT: &str = "talking to ex04-shm-echo hung. The program finds the segment with \
     lookup(key file) and answers as Side::Guest: if it printed an error above, lookup or attach \
     failed; otherwise check that Host sends in the slot the Guest receives from.";

const RMID_HINT: &str = "the test hung while a child held the segment: does the child process end \
     (with _exit) once it has read the pipe, and does the parent wait for it?";

const RING_HINT: &str = "the ring transfer hung. A producer waits only while the ring is full \
     (head - tail == capacity) and a consumer only while it is empty and the producer is still \
     there: check which index each side stores (Release) and loads (Acquire), that a waiting side \
     re-reads the other's index instead of spinning on a stale copy, and that dropping the \
     Producer marks the end of the stream.";

const CONSUMER_GONE_HINT: &str = "write_all kept waiting for room although the consumer had \
     been dropped before it read anything: nobody will ever make room. Dropping the Consumer \
     must set a \"gone\" flag in the segment (Release), and the producer must check it \
     (Acquire) before it writes and while it waits for room, and fail with \
     Error::ConsumerGone";

const FOREIGN_HINT: &str = "attaching as another user hung: Attachment::new must return an error, \
     not wait.";

// ---------------------------------------------------------------------------------------------
// What the kernel shows: /proc/sysvipc/shm rows and /proc/<pid>/maps lines, as the judge read
// them into a snapshot.

/// The segment's row in `/proc/sysvipc/shm`, which must exist.
#[track_caller]
fn row(seen: &Snapshot, id: i32, when: &str) -> ShmRow {
    seen.shared_memory_segment(id).copied().unwrap_or_else(|| {
        panic!("/proc/sysvipc/shm lists no segment with id {id} {when}, but it should still exist")
    })
}

/// Asserts that the kernel no longer lists segment `id`.
#[track_caller]
fn assert_gone(seen: &Snapshot, id: i32, why: &str) {
    if let Some(row) = seen.shared_memory_segment(id) {
        panic!(
            "segment {id} still exists in /proc/sysvipc/shm ({} attachment(s), {}marked for \
             removal): {why}",
            row.nattch,
            if row.is_marked_for_removal() {
                ""
            } else {
                "not "
            }
        );
    }
}

/// One line of `/proc/<pid>/maps` that maps a System V segment.
#[derive(Debug, Clone)]
struct Mapping {
    start: usize,
    end: usize,
    perms: String,
    /// The other fields, as the kernel prints them.
    fields: Vec<String>,
}

impl Mapping {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// The mappings of segment `id` in a process. The kernel names a segment's mapping
/// `/SYSV<key in hex>` and shows the segment id in the inode column.
fn mappings_of(process: &ProcessState, id: i32) -> Vec<Mapping> {
    process
        .sysv_maps
        .iter()
        .filter_map(|line| {
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            let [range, perms, _offset, _dev, inode, name, ..] = &fields[..] else {
                return None;
            };
            if !name.starts_with("/SYSV") || inode.parse::<i32>().ok()? != id {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some(Mapping {
                start: usize::from_str_radix(start, 16).ok()?,
                end: usize::from_str_radix(end, 16).ok()?,
                perms: perms.clone(),
                fields,
            })
        })
        .collect()
}

/// The one mapping of segment `id` in process `pid`.
#[track_caller]
fn the_mapping(seen: &Snapshot, pid: i32, id: i32, whose: &str) -> Mapping {
    let process = seen.expect_process(pid, &format!("{whose} should be running"));
    let found = mappings_of(process, id);
    match found.as_slice() {
        [one] => one.clone(),
        [] => panic!(
            "/proc/{pid}/maps shows no mapping of segment {id} in {whose}: it should be attached \
             there (shmat), and the kernel lists every attachment as a /SYSV… line"
        ),
        more => panic!(
            "/proc/{pid}/maps shows {} mappings of segment {id} in {whose}, expected one: is it \
             attached more than once?",
            more.len()
        ),
    }
}

/// The judge's last look, after its own verdict: once the body has returned, every guard it held
/// is dropped and every child it forked has ended, so no segment may be left in the kernel's
/// table and no `/SYSV…` mapping in any process of the test. A leak that no other assertion saw
/// (an attachment a function made for itself and kept, a segment created on an error path)
/// shows here.
fn assert_nothing_left(seen: &Witness) {
    let end = &seen.end;
    for process in &end.processes {
        assert!(
            process.sysv_maps.is_empty(),
            "after the test's code returned and every guard was dropped, pid {} still maps a \
             System V segment: {:?}. Something attached (shmat) and never detached (shmdt): each \
             Attachment must detach when dropped, and a function that attaches for its own use \
             must detach before it returns",
            process.pid(),
            process.sysv_maps
        );
    }
    assert!(
        end.shared_memory.is_empty(),
        "after the test's code returned and every guard was dropped, the kernel still lists \
         segment(s) {:?} in /proc/sysvipc/shm: something created a segment that no guard \
         removes (IPC_RMID), for example on an error path",
        end.shared_memory.iter().map(|r| r.id).collect::<Vec<_>>()
    );
}

/// `judge`, then [`assert_nothing_left`].
trait JudgeAndLookForLeftovers<T> {
    fn judge_all(self, judge: impl FnOnce(T, &Witness));
}

impl<T: serde::de::DeserializeOwned> JudgeAndLookForLeftovers<T> for Outcome<T> {
    fn judge_all(self, judge: impl FnOnce(T, &Witness)) {
        self.judge(|value, seen| {
            judge(value, seen);
            assert_nothing_left(seen);
        });
    }
}

// ---------------------------------------------------------------------------------------------
// What the code under test returned, as the judge receives it.

/// An error of the code under test: the variants the tests look for, any other as its debug
/// text. Segment ids as plain numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Failure {
    TooLarge { size: usize },
    ZeroSize,
    NoSuchSegment { id: i32 },
    PermissionDenied { id: i32 },
    KeyFile { path: PathBuf },
    NoSuchKey { path: PathBuf, key: i32 },
    AlreadyExists { path: PathBuf, key: i32 },
    TooSmall { size: usize, needed: usize },
    MessageTooLong { len: usize, capacity: usize },
    ConsumerGone { written: usize },
    Other(String),
}

fn failure(e: &Error) -> Failure {
    match e {
        Error::TooLarge { size } => Failure::TooLarge { size: *size },
        Error::ZeroSize => Failure::ZeroSize,
        Error::NoSuchSegment { id } => Failure::NoSuchSegment { id: id.as_raw() },
        Error::PermissionDenied { id } => Failure::PermissionDenied { id: id.as_raw() },
        Error::KeyFile { path, .. } => Failure::KeyFile { path: path.clone() },
        Error::NoSuchKey { path, key } => Failure::NoSuchKey {
            path: path.clone(),
            key: *key,
        },
        Error::AlreadyExists { path, key } => Failure::AlreadyExists {
            path: path.clone(),
            key: *key,
        },
        Error::TooSmall { size, needed } => Failure::TooSmall {
            size: *size,
            needed: *needed,
        },
        Error::MessageTooLong { len, capacity } => Failure::MessageTooLong {
            len: *len,
            capacity: *capacity,
        },
        Error::ConsumerGone { written } => Failure::ConsumerGone { written: *written },
        other => Failure::Other(format!("{other:?}")),
    }
}

type Seen<T> = std::result::Result<T, Failure>;

/// The result, with what the judge needs of its value.
fn seen<T, U>(result: Result<T>, keep: impl FnOnce(T) -> U) -> Seen<U> {
    result.map(keep).map_err(|e| failure(&e))
}

/// What `status` reported, as the judge receives it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct StatusSeen {
    size: usize,
    attachments: u64,
    creator: i32,
    last_attach_or_detach: i32,
    marked_for_removal: bool,
}

fn status_seen(s: SegmentStatus) -> StatusSeen {
    StatusSeen {
        size: s.size,
        attachments: s.attachments,
        creator: s.creator.as_raw(),
        last_attach_or_detach: s.last_attach_or_detach.as_raw(),
        marked_for_removal: s.marked_for_removal,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for processes.

/// Blocks until a byte arrives on the pipe (a readiness event, not a sleep).
fn wait_for_cue(read_end: &OwnedFd) {
    let mut pipe = fs::File::from(read_end.try_clone().expect("dup the pipe's read end"));
    let _ = pipe.read_exact(&mut [0u8; 1]);
}

/// A segment the test creates itself with raw `shmget`, e.g. with a mode the exercise's API does
/// not offer. Removed on drop, even when the test fails.
struct RawSegment(i32);

impl RawSegment {
    fn create(size: usize, mode: i32) -> RawSegment {
        // SAFETY: shmget takes plain integers.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | mode) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        RawSegment(id)
    }
}

impl Drop for RawSegment {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer argument.
        unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A key file in a directory of the test's scratch space that stays until the test ends, so
/// that the judge can derive the key from it itself.
fn key_file() -> PathBuf {
    let dir = tempfile::tempdir().expect("temporary directory").keep();
    let path = dir.join("segment.key");
    fs::write(
        &path,
        b"ftok turns this file's inode and device into a key\n",
    )
    .expect("key file");
    path
}

/// The key the kernel should list for a segment created under `path`, computed by the judge.
fn ftok(path: &Path) -> i32 {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 temp path")).unwrap();
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::ftok(c.as_ptr(), PROJECT_ID) }
}

/// How a child ended, as the judge receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ChildEnd {
    Exited(i32),
    Killed(String),
    Other(String),
}

fn child_end(status: WaitStatus) -> ChildEnd {
    match status {
        WaitStatus::Exited(_, code) => ChildEnd::Exited(code),
        WaitStatus::Signaled(_, signal, _) => ChildEnd::Killed(signal.as_str().to_owned()),
        other => ChildEnd::Other(format!("{other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Task 1: a segment, an attachment, a slice.

#[rstest]
#[case::one_byte(1)]
#[case::one_page(PAGE)]
#[case::one_page_plus_one(PAGE + 1)]
#[case::one_mib_plus_one(MIB + 1)]
fn task1_new_segment_has_the_requested_size_and_mode(#[case] size: usize) {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(size).expect("Segment::create returned an error");
        checkpoint("created");
        (segment.id().as_raw(), segment.size())
    })
    .judge_all(|(id, reported_size), seen| {
        let row = row(seen.at("created"), id, "right after Segment::create");
        assert_eq!(
            row.size, size as u64,
            "the kernel's size for the segment (shmget's size argument)"
        );
        assert_eq!(
            row.mode & 0o777,
            0o600,
            "the segment's mode should be 0600 (read and write for the owner only), the kernel lists {:o}",
            row.mode & 0o777
        );
        assert_eq!(
            row.key, 0,
            "Segment::create makes a private segment (IPC_PRIVATE, key 0)"
        );
        assert_eq!(
            row.cpid.as_raw(),
            seen.end.root,
            "the creator's pid in /proc/sysvipc/shm"
        );
        assert_eq!(row.nattch, 0, "creating a segment does not attach it");
        assert_eq!(reported_size, size);
    });
}

#[test]
fn task1_attachment_is_a_shared_mapping_of_the_segment() {
    const SIZE: usize = 3 * PAGE + 1;
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(SIZE).expect("Segment::create returned an error");
        let id = segment.id().as_raw();
        let attachment = segment.attach().expect("attach returned an error");
        let slice = attachment.as_slice();
        let (len, zeros, start) = (
            slice.len(),
            slice.iter().all(|&b| b == 0),
            slice.as_ptr() as usize,
        );
        checkpoint("attached");
        drop(attachment);
        checkpoint("detached");
        (id, len, zeros, start)
    })
    .judge_all(|(id, len, zeros, start), seen| {
        assert_eq!(len, SIZE, "as_slice() must cover the whole segment");
        assert!(
            zeros,
            "a new segment holds zeros (the kernel clears its pages)"
        );
        let attached = seen.at("attached");
        let mapping = the_mapping(attached, attached.root, id, "this process");
        assert_eq!(
            mapping.start, start,
            "the slice must start where the kernel mapped the segment (the address shmat returned)"
        );
        assert_eq!(
            mapping.len(),
            SIZE.div_ceil(PAGE) * PAGE,
            "the mapping covers the segment's size rounded up to whole pages"
        );
        // What the kernel prints, with what varies from run to run redacted.
        let mut fields = mapping.fields.clone();
        fields[0] = "[start]-[end]".into();
        fields[3] = "[device]".into();
        fields[4] = "[shmid]".into();
        ipclab_support::assert_snapshot!("task1_maps_line_of_an_attachment", fields.join(" "));
        assert_eq!(
            row(attached, id, "while attached").nattch,
            1,
            "one attachment, nattch 1"
        );

        let detached = seen.at("detached");
        assert!(
            mappings_of(detached.test_process(), id).is_empty(),
            "dropping the Attachment must detach (shmdt): /proc/self/maps still maps segment {id}"
        );
        assert_eq!(
            row(detached, id, "after the detach").nattch,
            0,
            "after the attachment is dropped, nattch goes back to 0"
        );
    });
}

#[test]
fn task1_two_attachments_are_two_addresses_for_the_same_bytes() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(2 * PAGE).expect("Segment::create returned an error");
        let mut first = segment.attach().expect("attach returned an error");
        let second = segment.attach().expect("attach returned an error");
        let addresses = (
            first.as_slice().as_ptr() as usize,
            second.as_slice().as_ptr() as usize,
        );
        first.as_mut_slice()[..5].copy_from_slice(b"hello");
        first.as_mut_slice()[2 * PAGE - 3..].copy_from_slice(b"end");
        let through_second = (
            second.as_slice()[..5].to_vec(),
            second.as_slice()[2 * PAGE - 3..].to_vec(),
        );
        checkpoint("two attachments");
        (segment.id().as_raw(), addresses, through_second)
    })
    .judge_all(|(id, (first, second), (head, tail)), seen| {
        assert_ne!(
            first, second,
            "each attachment is a mapping of its own, at its own address"
        );
        assert_eq!(
            head, b"hello",
            "a store through one attachment must be visible through the other: same physical pages"
        );
        assert_eq!(tail, b"end");
        let both = seen.at("two attachments");
        assert_eq!(mappings_of(both.test_process(), id).len(), 2);
        assert_eq!(row(both, id, "with two attachments").nattch, 2);
    });
}

#[test]
fn task1_dropping_the_segment_removes_it() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let id = segment.id().as_raw();
        checkpoint("created");
        drop(segment);
        checkpoint("dropped");
        id
    })
    .judge_all(|id, seen| {
        row(seen.at("created"), id, "right after Segment::create");
        assert_gone(
            seen.at("dropped"),
            id,
            "dropping the Segment guard must remove it (shmctl IPC_RMID); a System V object outlives \
             every process unless someone removes it",
        );
    });
}

#[test]
fn task1_segment_is_removed_even_when_the_code_panics() {
    isolated(SEGMENT_HINT, || {
        let seen = Cell::new(None);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let segment = Segment::create(PAGE).expect("Segment::create returned an error");
            seen.set(Some(segment.id().as_raw()));
            let mut attachment = segment.attach().expect("attach returned an error");
            attachment.as_mut_slice()[0] = 1;
            panic!("a deliberate panic halfway through (part of the test)");
        }));
        checkpoint("unwound");
        (outcome.is_err(), seen.get())
    })
    .judge_all(|(panicked, id), seen| {
        assert!(panicked);
        let id = id.expect("the segment was created before the panic");
        let unwound = seen.at("unwound");
        assert!(
            mappings_of(unwound.test_process(), id).is_empty(),
            "after the panic unwound, segment {id} is still mapped: Attachment's Drop must detach"
        );
        assert_gone(
            unwound,
            id,
            "after the panic unwound; the guards' Drop implementations must detach and remove",
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: two processes, one set of pages.

#[test]
fn task2_parent_and_child_see_each_others_writes() {
    isolated(MAILBOX_HINT, || {
        let segment = Segment::create(16 * KIB).expect("Segment::create returned an error");
        let id = segment.id().as_raw();
        let mut attachment = segment.attach().expect("attach returned an error");
        let child = spawn_child(|| {
            // The child's copy of the attachment: fork maps the same segment into the child.
            let mailbox = match Mailbox::new(&mut attachment, Side::Guest) {
                Ok(m) => m,
                Err(_) => return 2,
            };
            let question = mailbox.receive();
            let mut answer = question.clone();
            answer.extend_from_slice(b" / pong from the child");
            if mailbox.send(&answer).is_err() {
                return 3;
            }
            // Stay attached until the parent has looked at us.
            if mailbox.receive().is_empty() {
                0
            } else {
                4
            }
        });
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");
        mailbox
            .send(b"ping from the parent")
            .expect("send returned an error");
        let answer = String::from_utf8_lossy(&mailbox.receive()).into_owned();
        checkpoint("during the exchange");
        mailbox.send(b"").expect("send returned an error");
        let code = exit_code(child, "the child");
        checkpoint("after the child exited");
        (id, child.as_raw(), answer, code)
    })
    .judge_all(|(id, child, answer, code), seen| {
        assert_eq!(
            answer, "ping from the parent / pong from the child",
            "the child's answer, read from the segment"
        );
        // The kernel's account: one segment, mapped in both address spaces.
        let during = seen.at("during the exchange");
        let ours = the_mapping(during, during.root, id, "the parent");
        let theirs = the_mapping(
            during,
            child,
            id,
            "the child (it inherits the attachment across fork)",
        );
        assert_eq!(ours.perms, "rw-s", "a shared, writable mapping");
        assert_eq!(theirs.perms, "rw-s", "a shared, writable mapping");
        assert_eq!(row(during, id, "during the exchange").nattch, 2);
        assert_eq!(code, 0, "the child's exchange failed");
        assert_eq!(
            row(
                seen.at("after the child exited"),
                id,
                "after the child exited"
            )
            .nattch,
            1,
            "a process that exits is detached from everything"
        );
    });
}

#[test]
fn task2_a_message_arrives_with_plain_stores_no_system_call() {
    isolated(MAILBOX_HINT, || {
        let segment = Segment::create(16 * KIB).expect("Segment::create returned an error");
        let mut attachment = segment.attach().expect("attach returned an error");
        let message = payload(4 * KIB);
        let child = spawn_child(|| {
            let Ok(mailbox) = Mailbox::new(&mut attachment, Side::Guest) else {
                return 2;
            };
            // From here on the kernel kills this process (SIGKILL) at any system call other than
            // read, write and exit: sending must be nothing but stores into shared memory.
            // SAFETY: prctl with plain integers; strict mode needs no filter program.
            if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_STRICT) } != 0 {
                return 3;
            }
            let code = match mailbox.send(&message) {
                Ok(()) => 0,
                Err(_) => 4,
            };
            // exit_group (what _exit calls) is not allowed in strict mode; plain exit is.
            // SAFETY: ends this single-threaded process.
            unsafe { libc::syscall(libc::SYS_exit, code) };
            unreachable!()
        });
        let end = child_end(waitpid(child, None).expect("waitpid"));
        if end != ChildEnd::Exited(0) {
            // Nothing was sent: receiving would wait forever.
            return (end, None);
        }
        // The child is gone; what it stored stayed in the segment's pages.
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");
        (end, Some(Received::of(&mailbox.receive(), &message)))
    })
    .judge_all(|(end, received), _| {
        match end {
            ChildEnd::Exited(0) => {}
            ChildEnd::Exited(3) => panic!("seccomp strict mode is not available here"),
            ChildEnd::Killed(signal) if signal == "SIGKILL" => panic!(
                "the child was killed (SIGKILL) while sending: it ran under seccomp strict mode, \
                 where any system call but read/write/exit is fatal. Sending into a free slot of \
                 the mailbox must be plain stores into the attached segment: no system call, no \
                 allocation, no sleeping"
            ),
            other => panic!(
                "the sending child failed: {other:?} (exit 2: Mailbox::new failed, 4: send failed)"
            ),
        }
        received.expect("the message was received").assert_matches(
            &payload(4 * KIB),
            "the message the child stored before it exited",
        );
    });
}

#[test]
fn task2_unrelated_processes_meet_through_a_key() {
    isolated(ECHO_HINT, || {
        let path = key_file();
        let segment =
            Segment::create_at(&path, 16 * KIB).expect("Segment::create_at returned an error");
        let id = segment.id().as_raw();
        checkpoint("after create_at");
        let looked_up = lookup(&path).expect("lookup returned an error").as_raw();
        let mut attachment = segment.attach().expect("attach returned an error");
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");

        // A separate program: it inherits no attachment, only the name of the key file.
        let mut echo = Command::new(env!("CARGO_BIN_EXE_ex04-shm-echo"))
            .arg(&path)
            .spawn()
            .expect("start ex04-shm-echo");
        let echo_pid = echo.id() as i32;
        mailbox
            .send(b"hello, stranger")
            .expect("send returned an error");
        let answer = String::from_utf8_lossy(&mailbox.receive()).into_owned();
        checkpoint("during the exchange");

        mailbox.send(b"").expect("send returned an error");
        let status = echo.wait().expect("wait for ex04-shm-echo");
        checkpoint("after ex04-shm-echo exited");
        (
            path,
            id,
            looked_up,
            echo_pid,
            answer,
            (status.success(), status.to_string()),
        )
    })
    .judge_all(
        |(path, id, looked_up, echo_pid, answer, (ok, status)), seen| {
            assert_eq!(
                row(seen.at("after create_at"), id, "after create_at").key,
                ftok(&path),
                "the segment's key must be ftok(path, PROJECT_ID)"
            );
            assert_eq!(
                looked_up, id,
                "lookup(path) must find the segment created under that path's key"
            );
            assert_eq!(
                answer, "HELLO, STRANGER",
                "ex04-shm-echo answers in upper case"
            );
            let during = seen.at("during the exchange");
            let theirs = the_mapping(during, echo_pid, id, "ex04-shm-echo");
            assert_eq!(theirs.perms, "rw-s");
            assert_eq!(row(during, id, "during the exchange").nattch, 2);

            assert!(ok, "ex04-shm-echo failed: {status}");
            let after = row(
                seen.at("after ex04-shm-echo exited"),
                id,
                "after ex04-shm-echo exited",
            );
            assert_eq!(after.nattch, 1);
            assert_eq!(
                after.lpid.as_raw(),
                echo_pid,
                "the kernel records ex04-shm-echo as the last process to attach or detach"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: IPC_RMID marks for removal; the last detach removes.

#[test]
fn task3_removed_segment_lives_until_the_last_detach() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(2 * PAGE).expect("Segment::create returned an error");
        let id = segment.id();
        let mut first = segment.attach().expect("attach returned an error");
        let second = segment.attach().expect("attach returned an error");
        first.as_mut_slice()[..10].copy_from_slice(b"still here");

        segment.remove().expect("Segment::remove returned an error");
        checkpoint("after IPC_RMID");
        let marked = status(id)
            .expect("status returned an error for a marked but attached segment")
            .marked_for_removal;
        let kept = second.as_slice()[..10].to_vec();

        drop(first);
        checkpoint("after the first detach");
        drop(second);
        checkpoint("after the last detach");
        let destroyed = seen(status(id), status_seen);
        (id.as_raw(), marked, kept, destroyed)
    })
    .judge_all(|(id, marked_by_status, kept, destroyed), seen| {
        let marked = row(
            seen.at("after IPC_RMID"),
            id,
            "after IPC_RMID while two attachments remain",
        );
        assert!(
            marked.is_marked_for_removal(),
            "after IPC_RMID the kernel marks the segment (SHM_DEST, 0o1000 in its mode); it lists mode {:o}",
            marked.mode
        );
        assert_eq!(marked.nattch, 2, "both attachments are still there");
        assert_eq!(marked.key, 0, "a segment marked for removal loses its key");
        assert!(marked_by_status, "status(id).marked_for_removal");
        assert_eq!(
            kept, b"still here",
            "attachments keep working after IPC_RMID"
        );

        assert_eq!(
            row(seen.at("after the first detach"), id, "after the first detach").nattch,
            1
        );
        assert_gone(
            seen.at("after the last detach"),
            id,
            "the last attachment is gone, so the kernel must have destroyed it",
        );
        assert!(
            matches!(destroyed, Err(Failure::NoSuchSegment { id: e }) if e == id),
            "status of a destroyed segment must be Err(Error::NoSuchSegment), got {destroyed:?}"
        );
    });
}

#[test]
fn task3_a_removed_key_is_free_for_a_new_segment() {
    isolated(SEGMENT_HINT, || {
        let path = key_file();
        let old = Segment::create_at(&path, PAGE).expect("Segment::create_at returned an error");
        let old_id = old.id().as_raw();
        let _attachment = old.attach().expect("attach returned an error");
        old.remove().expect("Segment::remove returned an error");
        let found = seen(lookup(&path), ShmId::as_raw);
        let new = Segment::create_at(&path, PAGE)
            .expect("the key is free again after IPC_RMID, so create_at must succeed");
        checkpoint("recreated");
        (old_id, found, new.id().as_raw())
    })
    .judge_all(|(old_id, found, new_id), seen| {
        assert!(
            matches!(found, Err(Failure::NoSuchKey { .. })),
            "after IPC_RMID the key no longer finds the segment: lookup must fail with \
             Error::NoSuchKey, got {found:?}"
        );
        assert_ne!(new_id, old_id, "a new segment, with a new id");
        assert_eq!(
            row(seen.at("recreated"), old_id, "while still attached").nattch,
            1
        );
    });
}

#[test]
fn task3_segment_outlives_its_creator_while_a_child_is_attached() {
    isolated(RMID_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let id = segment.id();
        let mut attachment = segment.attach().expect("attach returned an error");
        attachment.as_mut_slice()[..20].copy_from_slice(b"left by the creator.");
        let (go_read, go_write) = pipe().expect("pipe");
        let child = spawn_child(|| {
            wait_for_cue(&go_read);
            // The creator has removed and detached by now: only this attachment keeps it alive.
            let alone = status(id).is_ok_and(|s| s.attachments == 1 && s.marked_for_removal);
            // The judge looks too: the child got this far and still maps the segment.
            checkpoint("the child after status");
            match (alone, &attachment.as_slice()[..20]) {
                (true, b"left by the creator.") => 0,
                (false, _) => 2,
                _ => 3,
            }
        });
        drop(go_read);
        segment.remove().expect("Segment::remove returned an error");
        attachment
            .detach()
            .expect("Attachment::detach returned an error");
        checkpoint("while only the child is attached");
        fs::File::from(go_write)
            .write_all(b"!")
            .expect("write the child's cue");
        let code = exit_code(child, "the child");
        checkpoint("after the child exited");
        (id.as_raw(), code)
    })
    .judge_all(|(id, code), seen| {
        let alone = seen.at("while only the child is attached");
        assert!(
            mappings_of(alone.test_process(), id).is_empty(),
            "Attachment::detach returned Ok, but the parent still maps the segment \
             (/proc/{}/maps): detach must shmdt the attachment",
            alone.root
        );
        let held = row(alone, id, "while only the child is attached");
        assert!(held.is_marked_for_removal());
        assert_eq!(held.nattch, 1, "only the child's attachment is left");
        assert_eq!(
            held.lpid.as_raw(),
            alone.root,
            "the parent detached last (lpid), and the segment lives on"
        );
        let in_child = seen.at("the child after status");
        let child = in_child.requester;
        the_mapping(in_child, child, id, "the child");
        let then = row(in_child, id, "while the child looked at it");
        match code {
            0 => {}
            2 => panic!(
                "in the child, status(id) did not report one attachment, marked for removal, \
                 while the kernel listed {} attachment(s), {}marked",
                then.nattch,
                if then.is_marked_for_removal() {
                    ""
                } else {
                    "not "
                }
            ),
            code => panic!("the child did not find the creator's bytes (exit {code})"),
        }
        assert_gone(
            seen.at("after the child exited"),
            id,
            "the child's exit was the last detach",
        );
    });
}

#[test]
fn task3_removing_a_segment_that_is_gone_is_no_such_segment() {
    isolated(SEGMENT_HINT, || {
        // Another segment first, so that the one under test is not the namespace's first id.
        let _other = Segment::create(PAGE).expect("Segment::create returned an error");
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let id = segment.id().as_raw();
        // Someone else removes it (nobody is attached, so the kernel destroys it at once).
        // SAFETY: IPC_RMID ignores the buffer argument.
        let rc = unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "the test's own IPC_RMID failed");
        checkpoint("removed by someone else");
        (id, seen(segment.remove(), |()| ()))
    })
    .judge_all(|(id, removed), seen| {
        assert_gone(
            seen.at("removed by someone else"),
            id,
            "the test removed it itself",
        );
        match removed {
            Err(Failure::NoSuchSegment { id: reported }) => assert_eq!(
                reported, id,
                "Error::NoSuchSegment must name the segment's id"
            ),
            other => panic!(
                "segment {id} was already gone, so shmctl(IPC_RMID) fails (EINVAL) and \
                 Segment::remove must report it as Err(Error::NoSuchSegment {{ id }}), not \
                 swallow it; got {other:?}"
            ),
        }
    });
}

#[test]
fn task3_status_agrees_with_the_kernel_table() {
    const MOMENTS: [&str; 3] = ["before any attach", "while attached", "after the detach"];
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(5 * KIB).expect("Segment::create returned an error");
        let id = segment.id();
        let check = |when: &str| {
            let s = status(id).expect("status returned an error");
            checkpoint(when);
            status_seen(s)
        };
        let fresh = check(MOMENTS[0]);
        let attachment = segment.attach().expect("attach returned an error");
        let attached = check(MOMENTS[1]);
        drop(attachment);
        let detached = check(MOMENTS[2]);
        (id.as_raw(), [fresh, attached, detached])
    })
    .judge_all(|(id, statuses), seen| {
        for (when, s) in MOMENTS.iter().zip(&statuses) {
            let r = row(seen.at(when), id, when);
            assert_eq!(s.size as u64, r.size, "size {when}");
            assert_eq!(s.attachments, r.nattch, "attachments (nattch) {when}");
            assert_eq!(s.creator, r.cpid.as_raw(), "creator (cpid) {when}");
            assert_eq!(
                s.last_attach_or_detach,
                r.lpid.as_raw(),
                "last attach or detach (lpid) {when}"
            );
            assert_eq!(
                s.marked_for_removal,
                r.is_marked_for_removal(),
                "marked {when}"
            );
        }
        let [fresh, attached, detached] = statuses;
        let me = seen.end.root;
        assert_eq!((fresh.size, fresh.attachments), (5 * KIB, 0));
        assert_eq!(fresh.creator, me);
        assert_eq!(attached.attachments, 1);
        assert_eq!(attached.last_attach_or_detach, me);
        assert_eq!(detached.attachments, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: a single-producer single-consumer ring.

/// The stream the ring tests send: byte `i` is `PATTERN[i % PATTERN_LEN]`. The pattern's length
/// shares no factor with any ring size, so each wrap-around lands somewhere new in it.
const PATTERN_LEN: usize = 1_000_003;

/// How `got` differs from the stream at `offset`, if it does.
fn stream_difference(pattern: &[u8], offset: usize, got: &[u8]) -> Option<String> {
    let mut at = 0;
    while at < got.len() {
        let p = (offset + at) % PATTERN_LEN;
        let n = (got.len() - at).min(PATTERN_LEN - p);
        if got[at..at + n] != pattern[p..p + n] {
            let bad = (0..n).find(|&i| got[at + i] != pattern[p + i]).unwrap();
            return Some(format!(
                "the consumer read a wrong byte at offset {} of the stream (got {:#04x}, expected \
                 {:#04x}): bytes were lost, duplicated or read before the producer had written \
                 them (torn read), or a wrap-around went wrong",
                offset + at + bad,
                got[at + bad],
                pattern[p + bad]
            ));
        }
        at += n;
    }
    None
}

/// FNV-1a over a stream read piece by piece: the judge recomputes it over the bytes that should
/// have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct StreamDigest(u64);

impl StreamDigest {
    fn new() -> StreamDigest {
        StreamDigest(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    }

    /// The digest of the first `total` bytes of the stream.
    fn of_stream(pattern: &[u8], total: usize) -> StreamDigest {
        let mut digest = StreamDigest::new();
        let mut done = 0;
        while done < total {
            let n = (total - done).min(PATTERN_LEN);
            digest.update(&pattern[..n]);
            done += n;
        }
        digest
    }
}

/// How the producer in the ring tests gets its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Slices of a ready-made pattern: the producer keeps the ring full.
    Fast,
    /// Built byte by byte before each write: the consumer keeps finding the ring empty and reads
    /// each write the moment it is published, which is when a torn read shows.
    Slow,
}

/// What the consumer of a ring test saw.
#[derive(Debug, Serialize, Deserialize)]
struct Stream {
    received: usize,
    digest: StreamDigest,
    /// The first difference from the stream, if the consumer read a wrong byte.
    wrong: Option<String>,
    producer_exit: Option<i32>,
}

#[rstest]
#[case::sixteen_mib_through_a_page(PAGE, 16 * MIB, Pace::Fast)]
#[case::sixty_four_mib_through_64_kib(64 * KIB, 64 * MIB, Pace::Fast)]
#[case::eight_mib_from_a_slow_producer(64 * KIB, 8 * MIB, Pace::Slow)]
fn task4_ring_moves_many_mib_between_two_processes(
    #[case] segment_size: usize,
    #[case] total: usize,
    #[case] pace: Pace,
) {
    isolated_for(Deadline::secs(20), RING_HINT, || {
        let pattern = payload(PATTERN_LEN);
        let segment = Segment::create(segment_size).expect("Segment::create returned an error");
        let mut attachment = segment.attach().expect("attach returned an error");
        let child = spawn_child(|| {
            let Ok(mut producer) = Producer::new(&mut attachment) else {
                return 2;
            };
            // Writes of awkward sizes, so that they straddle the end of the ring.
            let sizes = [1, 7, 4093, 65_537, 1000, 300_000];
            let mut sent = 0;
            for size in sizes.iter().cycle() {
                if sent == total {
                    break;
                }
                let p = sent % PATTERN_LEN;
                let n = (*size).min(total - sent).min(PATTERN_LEN - p);
                let written = match pace {
                    Pace::Fast => producer.write_all(&pattern[p..p + n]),
                    Pace::Slow => {
                        let chunk: Vec<u8> = (p..p + n).map(|i| pattern[i]).collect();
                        producer.write_all(&chunk)
                    }
                };
                if written.is_err() {
                    return 3;
                }
                sent += n;
            }
            0 // dropping the producer ends the stream
        });
        let mut consumer = Consumer::new(&mut attachment).expect("Consumer::new returned an error");
        let mut buf = vec![0u8; 100_000];
        let reads = [100_000, 3, 4096, 77_777];
        let mut stream = Stream {
            received: 0,
            digest: StreamDigest::new(),
            wrong: None,
            producer_exit: None,
        };
        for want in reads.iter().cycle() {
            let n = consumer.read(&mut buf[..*want]);
            if n == 0 {
                break;
            }
            stream.wrong = stream_difference(&pattern, stream.received, &buf[..n]);
            stream.digest.update(&buf[..n]);
            stream.received += n;
            if stream.wrong.is_some() || stream.received > total {
                // The stream is broken: the judge says how; waiting for more could hang.
                return stream;
            }
        }
        stream.producer_exit = Some(exit_code(child, "the producer"));
        stream
    })
    .judge_all(|stream, _| {
        if let Some(wrong) = stream.wrong {
            panic!("{wrong}");
        }
        assert!(
            stream.received <= total,
            "the consumer received more bytes than were sent"
        );
        assert_eq!(
            stream.received, total,
            "the stream ended (read returned 0) before all bytes arrived"
        );
        let pattern = payload(PATTERN_LEN);
        assert_eq!(
            stream.digest,
            StreamDigest::of_stream(&pattern, total),
            "the bytes the consumer read are not the stream the producer wrote"
        );
        match stream.producer_exit {
            Some(0) => {}
            Some(2) => panic!("in the producing child, Producer::new returned an error"),
            Some(3) => panic!(
                "in the producing child, write_all returned an error although the consumer was \
                 still reading"
            ),
            Some(101) => panic!("the producing child panicked (its message is below)"),
            other => panic!("the producing child failed: exit {other:?}"),
        }
    });
}

#[test]
fn task4_consumer_reads_the_rest_then_end_of_stream() {
    isolated(RING_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        // Two attachments in one process: each end gets its own.
        let mut for_producer = segment.attach().expect("attach returned an error");
        let mut for_consumer = segment.attach().expect("attach returned an error");
        let mut producer =
            Producer::new(&mut for_producer).expect("Producer::new returned an error");
        let mut consumer =
            Consumer::new(&mut for_consumer).expect("Consumer::new returned an error");
        producer
            .write_all(b"last words")
            .expect("write_all returned an error");
        drop(producer);
        let mut buf = [0u8; 64];
        let n = consumer.read(&mut buf);
        let first = buf[..n].to_vec();
        (first, consumer.read(&mut buf))
    })
    .judge_all(|(first, then), _| {
        assert_eq!(
            first, b"last words",
            "what was written before the producer went away"
        );
        assert_eq!(
            then, 0,
            "once the producer is dropped and everything is read, read returns 0 (end of stream)"
        );
    });
}

/// What the consumer of the overwrite test saw after the first write, if that went right.
#[derive(Debug, Serialize, Deserialize)]
struct AfterTheFirstWrite {
    read: usize,
    first_100: Received,
    second: usize,
    rest: Received,
}

#[test]
fn task4_writer_never_overwrites_unread_bytes() {
    isolated(RING_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut for_producer = segment.attach().expect("attach returned an error");
        let mut for_consumer = segment.attach().expect("attach returned an error");
        let mut producer =
            Producer::new(&mut for_producer).expect("Producer::new returned an error");
        let mut consumer =
            Consumer::new(&mut for_consumer).expect("Consumer::new returned an error");
        let data = payload(3 * PAGE);
        let first = producer.write(&data).expect("write returned an error");
        if !(first > 0 && first < PAGE) {
            // The judge says what is wrong; reading on could wait forever.
            return (first, None);
        }
        let mut buf = vec![0u8; 100];
        let read = consumer.read(&mut buf);
        let first_100 = Received::of(&buf, &data[..100]);
        let second = producer
            .write(&data[first..])
            .expect("write returned an error");
        let mut rest = vec![0u8; 3 * PAGE];
        let mut got = 0;
        while got < first {
            got += consumer.read(&mut rest[got..first]);
        }
        let rest = Received::of(&rest[..first], &data[100..first + 100]);
        (
            first,
            Some(AfterTheFirstWrite {
                read,
                first_100,
                second,
                rest,
            }),
        )
    })
    .judge_all(|(first, after), _| {
        assert!(
            first > 0 && first < PAGE,
            "into an empty ring in a one-page segment, write copies what fits (more than 0 bytes, \
             less than the page: the indices live in the segment too) and returns; it returned {first}"
        );
        let after = after.expect("the consumer's reads");
        let data = payload(3 * PAGE);
        assert_eq!(after.read, 100);
        after
            .first_100
            .assert_matches(&data[..100], "the first 100 bytes read");
        assert_eq!(
            after.second, 100,
            "after the consumer freed 100 bytes of a full ring, write copies exactly those 100"
        );
        after
            .rest
            .assert_matches(&data[100..first + 100], "the rest of the ring");
    });
}

#[test]
fn task4_capacity_is_what_an_empty_ring_takes() {
    isolated(RING_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut for_producer = segment.attach().expect("attach returned an error");
        let mut for_consumer = segment.attach().expect("attach returned an error");
        let mut producer =
            Producer::new(&mut for_producer).expect("Producer::new returned an error");
        let _consumer = Consumer::new(&mut for_consumer).expect("Consumer::new returned an error");
        let capacity = producer.capacity();
        // More than any one-page ring holds: write copies what fits and returns at once.
        let took = seen(producer.write(&payload(2 * PAGE)), |n| n);
        (capacity, took)
    })
    .judge_all(|(capacity, took), _| {
        assert!(
            capacity > 0 && capacity < PAGE,
            "the ring of a one-page segment holds more than 0 bytes and less than the page (the \
             indices live in the segment too): capacity() returned {capacity}"
        );
        assert_eq!(
            took,
            Ok(capacity),
            "into an empty ring, write copies as much as the ring holds when full, which is what \
             capacity() reports"
        );
    });
}

/// How much of a long `write_all` the consumer reads before it leaves.
const READ_BEFORE_LEAVING: usize = 1000;

#[test]
fn task4_a_write_all_cut_short_by_the_consumer_says_how_much_went() {
    isolated(CONSUMER_GONE_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut attachment = segment.attach().expect("attach returned an error");
        // The consumer, in a process of its own: it reads a little of the stream, then leaves.
        let child = spawn_child(|| {
            let Ok(mut consumer) = Consumer::new(&mut attachment) else {
                return 2;
            };
            let mut buf = [0u8; READ_BEFORE_LEAVING];
            let mut got = 0;
            while got < READ_BEFORE_LEAVING {
                match consumer.read(&mut buf[got..]) {
                    0 => return 3,
                    n => got += n,
                }
            }
            0
        });
        let mut producer = Producer::new(&mut attachment).expect("Producer::new returned an error");
        let capacity = producer.capacity();
        let result = seen(producer.write_all(&payload(4 * PAGE)), |()| ());
        (capacity, result, exit_code(child, "the consumer"))
    })
    .judge_all(|(capacity, result, consumer), _| {
        assert_eq!(consumer, 0, "the test's consumer could not read its bytes");
        match result {
            Err(Failure::ConsumerGone { written }) => assert!(
                (READ_BEFORE_LEAVING..=READ_BEFORE_LEAVING + capacity).contains(&written),
                "the consumer read {READ_BEFORE_LEAVING} bytes of write_all's data and left with \
                 at most capacity() = {capacity} more in the ring, so ConsumerGone {{ written }} \
                 must count between {READ_BEFORE_LEAVING} and {} bytes; it says {written}: count \
                 every byte the ring took during this call",
                READ_BEFORE_LEAVING + capacity
            ),
            other => panic!(
                "the consumer left in the middle of a write_all of 4 pages: expected \
                 Err(Error::ConsumerGone {{ written }}), got {other:?}"
            ),
        }
    });
}

#[test]
fn task4_writer_learns_that_the_consumer_left() {
    // Nothing in this test waits but the producer, so a hang has one cause, named by the hint.
    isolated(CONSUMER_GONE_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut for_producer = segment.attach().expect("attach returned an error");
        let mut for_consumer = segment.attach().expect("attach returned an error");
        let mut producer =
            Producer::new(&mut for_producer).expect("Producer::new returned an error");
        drop(Consumer::new(&mut for_consumer).expect("Consumer::new returned an error"));
        seen(producer.write_all(&payload(2 * PAGE)), |()| ())
    })
    .judge_all(|result, _| match result {
        Err(Failure::ConsumerGone { written }) => assert!(written < PAGE, "written = {written}"),
        other => panic!(
            "the consumer was dropped, so once the ring is full write_all must fail with \
             Err(Error::ConsumerGone {{ .. }}) instead of waiting forever; got {other:?}"
        ),
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: errors that name their cause.

fn shmmax_from_proc() -> u64 {
    fs::read_to_string("/proc/sys/kernel/shmmax")
        .expect("/proc/sys/kernel/shmmax")
        .trim()
        .parse()
        .expect("shmmax is a number")
}

#[rstest]
#[case::above_shmmax(usize::try_from(shmmax_from_proc().saturating_add(1)).unwrap_or(usize::MAX))]
#[case::usize_max(usize::MAX)]
fn task5_a_segment_beyond_the_kernel_limit_is_too_large(#[case] size: usize) {
    isolated(SEGMENT_HINT, || seen(Segment::create(size), |_| ())).judge_all(|result, _| {
        match result {
            Err(Failure::TooLarge { size: reported }) => assert_eq!(reported, size),
            other => panic!(
                "a segment of {size} bytes is more than /proc/sys/kernel/shmmax allows: expected \
                 Err(Error::TooLarge {{ size: {size} }}), got {other:?}"
            ),
        }
    });
}

#[test]
fn task5_an_empty_segment_is_rejected() {
    isolated(SEGMENT_HINT, || seen(Segment::create(0), |_| ())).judge_all(|result, _| {
        assert!(
            matches!(result, Err(Failure::ZeroSize)),
            "shmget refuses size 0 with the same EINVAL as a size too large: tell them apart and \
             return Err(Error::ZeroSize); got {result:?}"
        );
    });
}

#[rstest]
#[case::removed(true)]
#[case::never_valid(false)]
fn task5_attaching_a_missing_segment_is_no_such_segment(#[case] removed: bool) {
    isolated(SEGMENT_HINT, || {
        let id = if removed {
            let segment = Segment::create(PAGE).expect("Segment::create returned an error");
            let id = segment.id();
            segment.remove().expect("Segment::remove returned an error");
            id
        } else {
            ShmId::from_raw(-1)
        };
        (id.as_raw(), seen(Attachment::new(id), |_| ()))
    })
    .judge_all(|(id, result), _| match result {
        Err(Failure::NoSuchSegment { id: reported }) => assert_eq!(reported, id),
        other => panic!(
            "segment {id} does not exist: shmat fails with EINVAL, which must be reported as \
             Err(Error::NoSuchSegment {{ id: {id} }}); got {other:?}"
        ),
    });
}

#[test]
fn task5_attaching_a_foreign_segment_is_permission_denied() {
    isolated(FOREIGN_HINT, || {
        // Mode 0: nobody but a privileged process may attach it.
        let foreign = RawSegment::create(PAGE, 0);
        let id = ShmId::from_raw(foreign.0);
        let child = spawn_child(|| {
            // As root, become an ordinary user first: root may attach anything.
            // SAFETY: setgid/setuid take plain integers.
            if unsafe { libc::geteuid() } == 0
                && unsafe { libc::setgid(65534) != 0 || libc::setuid(65534) != 0 }
            {
                return 10;
            }
            let attached = Attachment::new(id);
            // The judge looks at the child now: did the call return, is anything mapped?
            checkpoint("the child's attempt returned");
            match attached {
                Err(Error::PermissionDenied { id: reported }) if reported == id => 0,
                Err(Error::PermissionDenied { .. }) => 2,
                Ok(_) => 3,
                Err(_) => 4,
            }
        });
        let code = exit_code(child, "the unprivileged child");
        checkpoint("after the child's attempt");
        (id.as_raw(), code)
    })
    .judge_all(|(id, code), seen| {
        match code {
            0 => {}
            10 => {
                eprintln!("note: could not drop privileges here; nothing to check");
                return;
            }
            2 => panic!("Error::PermissionDenied must name the segment's id"),
            3 => panic!("attaching a segment of mode 0 as another user succeeded: impossible"),
            101 => panic!("Attachment::new panicked in the child (its message is below)"),
            _ => panic!(
                "shmat fails with EACCES for a segment whose mode does not let us in: report it as \
                 Err(Error::PermissionDenied {{ id }})"
            ),
        }
        let attempt = seen.at("the child's attempt returned");
        assert!(
            mappings_of(attempt.expect_process(attempt.requester, "the child"), id).is_empty(),
            "the kernel shows segment {id} mapped in the unprivileged child: shmat must have failed"
        );
        assert_eq!(
            row(
                seen.at("after the child's attempt"),
                id,
                "after the child's attempt"
            )
            .nattch,
            0
        );
    });
}

#[test]
fn task5_lookup_without_a_segment_names_the_key_file() {
    isolated(SEGMENT_HINT, || {
        let path = key_file();
        let without_segment = seen(lookup(&path), |_| ());
        let missing = path.with_file_name("no-such-file");
        let without_file = seen(lookup(&missing), |_| ());
        (path, without_segment, without_file)
    })
    .judge_all(|(path, without_segment, without_file), _| {
        match without_segment {
            Err(Failure::NoSuchKey {
                path: reported,
                key,
            }) => {
                assert_eq!(reported, path);
                assert_eq!(key, ftok(&path), "the key is ftok(path, PROJECT_ID)");
            }
            other => panic!(
                "no segment was created under this key: expected Err(Error::NoSuchKey {{ .. }}), got \
                 {other:?}"
            ),
        }
        assert!(
            matches!(without_file, Err(Failure::KeyFile { .. })),
            "ftok needs an existing file: for a missing one expected Err(Error::KeyFile {{ .. }}), \
             got {without_file:?}"
        );
    });
}

#[test]
fn task5_creating_twice_under_one_key_is_already_exists() {
    isolated(SEGMENT_HINT, || {
        let path = key_file();
        let _first = Segment::create_at(&path, PAGE).expect("Segment::create_at returned an error");
        let second = seen(Segment::create_at(&path, PAGE), |_| ());
        (path, second)
    })
    .judge_all(|(path, second), _| {
        assert!(
            matches!(&second, Err(Failure::AlreadyExists { path: p, .. }) if *p == path),
            "create_at must not silently reuse a segment someone else created (IPC_EXCL): expected \
             Err(Error::AlreadyExists {{ .. }}), got {second:?}"
        );
    });
}

#[test]
fn task5_a_message_larger_than_the_mailbox_is_refused() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut attachment = segment.attach().expect("attach returned an error");
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");
        let capacity = mailbox.capacity();
        if !(capacity > 0 && capacity < PAGE / 2) {
            // The judge says what is wrong.
            return (capacity, Ok(()), (Ok(()), None), Ok(()));
        }
        // One byte too many first, into the empty slot (an implementation may check the length
        // after waiting for room); then exactly capacity() bytes, which must fit and arrive.
        let too_long = seen(mailbox.send(&payload(capacity + 1)), |()| ());
        let exactly = seen(mailbox.send(&payload(capacity)), |()| ());
        let received = if exactly.is_ok() {
            let mut other_side = segment.attach().expect("attach returned an error");
            let guest =
                Mailbox::new(&mut other_side, Side::Guest).expect("Mailbox::new returned an error");
            Some(Received::of(&guest.receive(), &payload(capacity)))
        } else {
            None
        };
        let tiny = Segment::create(100).expect("Segment::create returned an error");
        let mut tiny = tiny.attach().expect("attach returned an error");
        let in_tiny = seen(Mailbox::new(&mut tiny, Side::Host), |_| ());
        (capacity, too_long, (exactly, received), in_tiny)
    })
    .judge_all(|(capacity, too_long, (exactly, received), in_tiny), _| {
        assert!(
            capacity > 0 && capacity < PAGE / 2,
            "a one-page mailbox has two slots, so capacity() must be more than 0 and less than \
             half a page; it is {capacity}"
        );
        if let Err(e) = exactly {
            panic!(
                "a message of exactly capacity() = {capacity} bytes must fit the mailbox, but send \
                 refused it: {e:?}. capacity() is the largest message: compare with >, not >="
            );
        }
        received
            .expect("the guest's receive")
            .assert_matches(&payload(capacity), "a message of exactly capacity() bytes");
        match too_long {
            Err(Failure::MessageTooLong { len, capacity: c }) => {
                assert_eq!((len, c), (capacity + 1, capacity))
            }
            other => panic!(
                "a message one byte longer than capacity() must be Err(Error::MessageTooLong), got \
                 {other:?}"
            ),
        }
        assert!(
            matches!(in_tiny, Err(Failure::TooSmall { .. })),
            "a 100-byte segment cannot hold a mailbox: expected Err(Error::TooSmall)"
        );
    });
}

#[test]
fn task5_echo_program_names_the_missing_segment() {
    isolated(NEVER_RETURNED_HINT, || {
        let path = key_file();
        let output = CmdAssert::new(env!("CARGO_BIN_EXE_ex04-shm-echo"))
            .arg(&path)
            .timeout(Duration::from_secs(5))
            .output()
            .expect("run ex04-shm-echo");
        (
            path,
            output.status.success(),
            output.status.to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .judge_all(|(path, succeeded, status, stderr), _| {
        assert!(
            !stderr.contains("panicked"),
            "ex04-shm-echo panicked instead of reporting that no segment exists for its key file:\n{stderr}"
        );
        // A failure whose message names the key file.
        assert!(
            !succeeded,
            "ex04-shm-echo must fail when no segment exists for its key file ({status})"
        );
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "ex04-shm-echo's error must name the key file {}; it said:\n{stderr}",
            path.display()
        );
    });
}
