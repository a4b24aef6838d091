//! The graded suite of exercise 04: System V shared memory.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: the table
//! of segments in `/proc/sysvipc/shm` (does the segment exist, how many attachments, who touched
//! it last) and the address-space maps in `/proc/<pid>/maps` (is the segment really mapped, in
//! which processes, at which addresses). Tests that fork or wait on another process run in a
//! process of their own with a deadline (`isolated`).
//!
//! Every segment a test creates is owned by a guard (the student's `Segment`, or the suite's own
//! `RawSegment`), so a failing test still leaves nothing in the kernel's table.

use std::cell::Cell;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use assert_cmd::assert::OutputAssertExt;
use assert_cmd::Command as CmdAssert;
use exercise04::*;
use ipclab_support::child::{exit_code, spawn_child};
use ipclab_support::data::{assert_same_bytes, payload, MIB};
use ipclab_support::sysvipc::{self, ShmRow};
use ipclab_support::{isolated, isolated_for, Deadline};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{getpid, pipe, Pid};
use predicates::prelude::*;
use rstest::rstest;

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

const FOREIGN_HINT: &str = "attaching as another user hung: Attachment::new must return an error, \
     not wait.";

// ---------------------------------------------------------------------------------------------
// What the kernel shows: /proc/sysvipc/shm rows and /proc/<pid>/maps lines.

/// The segment's row in `/proc/sysvipc/shm`, which must exist.
#[track_caller]
fn row(id: ShmId, when: &str) -> ShmRow {
    sysvipc::shared_memory(id.as_raw()).unwrap_or_else(|| {
        panic!("/proc/sysvipc/shm lists no segment with id {id} {when}, but it should still exist")
    })
}

/// Asserts that the kernel no longer lists segment `id`.
#[track_caller]
fn assert_gone(id: ShmId, why: &str) {
    if let Some(row) = sysvipc::shared_memory(id.as_raw()) {
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

/// The mappings of segment `id` in process `pid`. The kernel names a segment's mapping
/// `/SYSV<key in hex>` and shows the segment id in the inode column.
fn mappings_of(pid: Pid, id: ShmId) -> Vec<Mapping> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/maps: {e}"));
    maps.lines()
        .filter_map(|line| {
            let fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            let [range, perms, _offset, _dev, inode, name, ..] = &fields[..] else {
                return None;
            };
            if !name.starts_with("/SYSV") || inode.parse::<i32>().ok()? != id.as_raw() {
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
fn the_mapping(pid: Pid, id: ShmId, whose: &str) -> Mapping {
    let found = mappings_of(pid, id);
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

fn key_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("segment.key");
    fs::write(
        &path,
        b"ftok turns this file's inode and device into a key\n",
    )
    .expect("key file");
    path
}

/// The key the kernel should list for a segment created under `path`, computed by the test.
fn ftok(path: &Path) -> i32 {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 temp path")).unwrap();
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::ftok(c.as_ptr(), PROJECT_ID) }
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
        let row = row(segment.id(), "right after Segment::create");
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
        assert_eq!(row.cpid, getpid(), "the creator's pid in /proc/sysvipc/shm");
        assert_eq!(row.nattch, 0, "creating a segment does not attach it");
        assert_eq!(segment.size(), size);
    });
}

#[test]
fn task1_attachment_is_a_shared_mapping_of_the_segment() {
    isolated(SEGMENT_HINT, || {
        let size = 3 * PAGE + 1;
        let segment = Segment::create(size).expect("Segment::create returned an error");
        let id = segment.id();
        let attachment = segment.attach().expect("attach returned an error");

        let slice = attachment.as_slice();
        assert_eq!(slice.len(), size, "as_slice() must cover the whole segment");
        assert!(
            slice.iter().all(|&b| b == 0),
            "a new segment holds zeros (the kernel clears its pages)"
        );
        let mapping = the_mapping(getpid(), id, "this process");
        assert_eq!(
            mapping.start,
            slice.as_ptr() as usize,
            "the slice must start where the kernel mapped the segment (the address shmat returned)"
        );
        assert_eq!(
            mapping.len(),
            size.div_ceil(PAGE) * PAGE,
            "the mapping covers the segment's size rounded up to whole pages"
        );
        // What the kernel prints, with what varies from run to run redacted.
        let mut fields = mapping.fields.clone();
        fields[0] = "[start]-[end]".into();
        fields[3] = "[device]".into();
        fields[4] = "[shmid]".into();
        insta::assert_snapshot!("task1_maps_line_of_an_attachment", fields.join(" "));
        assert_eq!(
            row(id, "while attached").nattch,
            1,
            "one attachment, nattch 1"
        );

        drop(attachment);
        assert!(
            mappings_of(getpid(), id).is_empty(),
            "dropping the Attachment must detach (shmdt): /proc/self/maps still maps segment {id}"
        );
        assert_eq!(
            row(id, "after the detach").nattch,
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
        assert_ne!(
            first.as_slice().as_ptr(),
            second.as_slice().as_ptr(),
            "each attachment is a mapping of its own, at its own address"
        );
        first.as_mut_slice()[..5].copy_from_slice(b"hello");
        first.as_mut_slice()[2 * PAGE - 3..].copy_from_slice(b"end");
        assert_eq!(
            &second.as_slice()[..5],
            b"hello",
            "a store through one attachment must be visible through the other: same physical pages"
        );
        assert_eq!(&second.as_slice()[2 * PAGE - 3..], b"end");
        assert_eq!(mappings_of(getpid(), segment.id()).len(), 2);
        assert_eq!(row(segment.id(), "with two attachments").nattch, 2);
    });
}

#[test]
fn task1_dropping_the_segment_removes_it() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let id = segment.id();
        row(id, "right after Segment::create");
        drop(segment);
        assert_gone(
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
            seen.set(Some(segment.id()));
            let mut attachment = segment.attach().expect("attach returned an error");
            attachment.as_mut_slice()[0] = 1;
            panic!("a deliberate panic halfway through (part of the test)");
        }));
        assert!(outcome.is_err());
        let id = seen
            .get()
            .expect("the segment was created before the panic");
        assert!(
            mappings_of(getpid(), id).is_empty(),
            "after the panic unwound, segment {id} is still mapped: Attachment's Drop must detach"
        );
        assert_gone(
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
        let id = segment.id();
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
        let answer = mailbox.receive();
        assert_eq!(
            String::from_utf8_lossy(&answer),
            "ping from the parent / pong from the child",
            "the child's answer, read from the segment"
        );
        // The kernel's account: one segment, mapped in both address spaces.
        let ours = the_mapping(getpid(), id, "the parent");
        let theirs = the_mapping(
            child,
            id,
            "the child (it inherits the attachment across fork)",
        );
        assert_eq!(ours.perms, "rw-s", "a shared, writable mapping");
        assert_eq!(theirs.perms, "rw-s", "a shared, writable mapping");
        assert_eq!(row(id, "during the exchange").nattch, 2);
        mailbox.send(b"").expect("send returned an error");
        assert_eq!(
            exit_code(child, "the child"),
            0,
            "the child's exchange failed"
        );
        assert_eq!(
            row(id, "after the child exited").nattch,
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
        match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, 0) => {}
            WaitStatus::Exited(_, 3) => panic!("seccomp strict mode is not available here"),
            WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _) => panic!(
                "the child was killed (SIGKILL) while sending: it ran under seccomp strict mode, \
                 where any system call but read/write/exit is fatal. Sending into a free slot of \
                 the mailbox must be plain stores into the attached segment: no system call, no \
                 allocation, no sleeping"
            ),
            other => panic!(
                "the sending child failed: {other:?} (exit 2: Mailbox::new failed, 4: send failed)"
            ),
        }
        // The child is gone; what it stored stayed in the segment's pages.
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");
        assert_same_bytes(
            &mailbox.receive(),
            &message,
            "the message the child stored before it exited",
        );
    });
}

#[test]
fn task2_unrelated_processes_meet_through_a_key() {
    isolated(ECHO_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = key_file(&dir);
        let segment =
            Segment::create_at(&path, 16 * KIB).expect("Segment::create_at returned an error");
        let id = segment.id();
        assert_eq!(
            row(id, "after create_at").key,
            ftok(&path),
            "the segment's key must be ftok(path, PROJECT_ID)"
        );
        assert_eq!(
            lookup(&path).expect("lookup returned an error"),
            id,
            "lookup(path) must find the segment created under that path's key"
        );
        let mut attachment = segment.attach().expect("attach returned an error");
        let mailbox =
            Mailbox::new(&mut attachment, Side::Host).expect("Mailbox::new returned an error");

        // A separate program: it inherits no attachment, only the name of the key file.
        let mut echo = Command::new(env!("CARGO_BIN_EXE_ex04-shm-echo"))
            .arg(&path)
            .spawn()
            .expect("start ex04-shm-echo");
        let echo_pid = Pid::from_raw(echo.id() as i32);
        mailbox
            .send(b"hello, stranger")
            .expect("send returned an error");
        assert_eq!(
            String::from_utf8_lossy(&mailbox.receive()),
            "HELLO, STRANGER",
            "ex04-shm-echo answers in upper case"
        );
        let theirs = the_mapping(echo_pid, id, "ex04-shm-echo");
        assert_eq!(theirs.perms, "rw-s");
        assert_eq!(row(id, "during the exchange").nattch, 2);

        mailbox.send(b"").expect("send returned an error");
        let status = echo.wait().expect("wait for ex04-shm-echo");
        assert!(status.success(), "ex04-shm-echo failed: {status}");
        let after = row(id, "after ex04-shm-echo exited");
        assert_eq!(after.nattch, 1);
        assert_eq!(
            after.lpid, echo_pid,
            "the kernel records ex04-shm-echo as the last process to attach or detach"
        );
    });
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
        let marked = row(id, "after IPC_RMID while two attachments remain");
        assert!(
            marked.is_marked_for_removal(),
            "after IPC_RMID the kernel marks the segment (SHM_DEST, 0o1000 in its mode); it lists mode {:o}",
            marked.mode
        );
        assert_eq!(marked.nattch, 2, "both attachments are still there");
        assert_eq!(marked.key, 0, "a segment marked for removal loses its key");
        assert!(
            status(id)
                .expect("status returned an error for a marked but attached segment")
                .marked_for_removal,
            "status(id).marked_for_removal"
        );
        assert_eq!(
            &second.as_slice()[..10],
            b"still here",
            "attachments keep working after IPC_RMID"
        );

        drop(first);
        assert_eq!(row(id, "after the first detach").nattch, 1);
        drop(second);
        assert_gone(
            id,
            "the last attachment is gone, so the kernel must have destroyed it",
        );
        assert!(
            matches!(status(id), Err(Error::NoSuchSegment { id: e }) if e == id),
            "status of a destroyed segment must be Err(Error::NoSuchSegment), got {:?}",
            status(id)
        );
    });
}

#[test]
fn task3_a_removed_key_is_free_for_a_new_segment() {
    isolated(SEGMENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = key_file(&dir);
        let old = Segment::create_at(&path, PAGE).expect("Segment::create_at returned an error");
        let old_id = old.id();
        let _attachment = old.attach().expect("attach returned an error");
        old.remove().expect("Segment::remove returned an error");
        assert!(
            matches!(lookup(&path), Err(Error::NoSuchKey { .. })),
            "after IPC_RMID the key no longer finds the segment: lookup must fail with \
             Error::NoSuchKey, got {:?}",
            lookup(&path)
        );
        let new = Segment::create_at(&path, PAGE)
            .expect("the key is free again after IPC_RMID, so create_at must succeed");
        assert_ne!(new.id(), old_id, "a new segment, with a new id");
        assert_eq!(row(old_id, "while still attached").nattch, 1);
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
        let held = row(id, "while only the child is attached");
        assert!(held.is_marked_for_removal());
        assert_eq!(held.nattch, 1, "only the child's attachment is left");
        assert_eq!(
            held.lpid,
            getpid(),
            "the parent detached last (lpid), and the segment lives on"
        );
        fs::File::from(go_write)
            .write_all(b"!")
            .expect("write the child's cue");
        match exit_code(child, "the child") {
            0 => {}
            2 => {
                panic!("in the child, status(id) did not report one attachment, marked for removal")
            }
            code => panic!("the child did not find the creator's bytes (exit {code})"),
        }
        assert_gone(id, "the child's exit was the last detach");
    });
}

#[test]
fn task3_status_agrees_with_the_kernel_table() {
    isolated(SEGMENT_HINT, || {
        let segment = Segment::create(5 * KIB).expect("Segment::create returned an error");
        let id = segment.id();
        let check = |when: &str| {
            let s = status(id).expect("status returned an error");
            let r = row(id, when);
            assert_eq!(s.size as u64, r.size, "size {when}");
            assert_eq!(s.attachments, r.nattch, "attachments (nattch) {when}");
            assert_eq!(s.creator, r.cpid, "creator (cpid) {when}");
            assert_eq!(
                s.last_attach_or_detach, r.lpid,
                "last attach or detach (lpid) {when}"
            );
            assert_eq!(
                s.marked_for_removal,
                r.is_marked_for_removal(),
                "marked {when}"
            );
            s
        };
        let fresh = check("before any attach");
        assert_eq!((fresh.size, fresh.attachments), (5 * KIB, 0));
        assert_eq!(fresh.creator, getpid());
        let attachment = segment.attach().expect("attach returned an error");
        let attached = check("while attached");
        assert_eq!(attached.attachments, 1);
        assert_eq!(attached.last_attach_or_detach, getpid());
        drop(attachment);
        assert_eq!(check("after the detach").attachments, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: a single-producer single-consumer ring.

/// The stream the ring tests send: byte `i` is `PATTERN[i % PATTERN_LEN]`. The pattern's length
/// shares no factor with any ring size, so each wrap-around lands somewhere new in it.
const PATTERN_LEN: usize = 1_000_003;

/// Compares `got` with the stream at `offset`, saying where they differ.
#[track_caller]
fn check_stream(pattern: &[u8], offset: usize, got: &[u8]) {
    let mut at = 0;
    while at < got.len() {
        let p = (offset + at) % PATTERN_LEN;
        let n = (got.len() - at).min(PATTERN_LEN - p);
        if got[at..at + n] != pattern[p..p + n] {
            let bad = (0..n).find(|&i| got[at + i] != pattern[p + i]).unwrap();
            panic!(
                "the consumer read a wrong byte at offset {} of the stream (got {:#04x}, expected \
                 {:#04x}): bytes were lost, duplicated or read before the producer had written \
                 them (torn read), or a wrap-around went wrong",
                offset + at + bad,
                got[at + bad],
                pattern[p + bad]
            );
        }
        at += n;
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
        let mut received = 0;
        for want in reads.iter().cycle() {
            let n = consumer.read(&mut buf[..*want]);
            if n == 0 {
                break;
            }
            check_stream(&pattern, received, &buf[..n]);
            received += n;
            assert!(
                received <= total,
                "the consumer received more bytes than were sent"
            );
        }
        assert_eq!(
            received, total,
            "the stream ended (read returned 0) before all bytes arrived"
        );
        assert_eq!(
            exit_code(child, "the producer"),
            0,
            "the producing child failed"
        );
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
        assert_eq!(
            &buf[..n],
            b"last words",
            "what was written before the producer went away"
        );
        assert_eq!(
            consumer.read(&mut buf),
            0,
            "once the producer is dropped and everything is read, read returns 0 (end of stream)"
        );
    });
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
        assert!(
            first > 0 && first < PAGE,
            "into an empty ring in a one-page segment, write copies what fits (more than 0 bytes, \
             less than the page: the indices live in the segment too) and returns; it returned {first}"
        );
        let mut buf = vec![0u8; 100];
        assert_eq!(consumer.read(&mut buf), 100);
        assert_same_bytes(&buf, &data[..100], "the first 100 bytes read");
        let second = producer
            .write(&data[first..])
            .expect("write returned an error");
        assert_eq!(
            second, 100,
            "after the consumer freed 100 bytes of a full ring, write copies exactly those 100"
        );
        let mut rest = vec![0u8; 3 * PAGE];
        let mut got = 0;
        while got < first {
            got += consumer.read(&mut rest[got..first]);
        }
        assert_same_bytes(
            &rest[..first],
            &data[100..first + 100],
            "the rest of the ring",
        );
    });
}

#[test]
fn task4_writer_learns_that_the_consumer_left() {
    isolated(RING_HINT, || {
        let segment = Segment::create(PAGE).expect("Segment::create returned an error");
        let mut for_producer = segment.attach().expect("attach returned an error");
        let mut for_consumer = segment.attach().expect("attach returned an error");
        let mut producer =
            Producer::new(&mut for_producer).expect("Producer::new returned an error");
        drop(Consumer::new(&mut for_consumer).expect("Consumer::new returned an error"));
        match producer.write_all(&payload(2 * PAGE)) {
            Err(Error::ConsumerGone { written }) => assert!(written < PAGE, "written = {written}"),
            other => panic!(
                "the consumer was dropped, so once the ring is full write_all must fail with \
                 Err(Error::ConsumerGone {{ .. }}) instead of waiting forever; got {other:?}"
            ),
        }
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
    isolated(SEGMENT_HINT, || match Segment::create(size) {
        Err(Error::TooLarge { size: reported }) => assert_eq!(reported, size),
        other => panic!(
            "a segment of {size} bytes is more than /proc/sys/kernel/shmmax allows: expected \
                 Err(Error::TooLarge {{ size: {size} }}), got {other:?}"
        ),
    });
}

#[test]
fn task5_an_empty_segment_is_rejected() {
    isolated(SEGMENT_HINT, || {
        let result = Segment::create(0);
        assert!(
            matches!(result, Err(Error::ZeroSize)),
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
        match Attachment::new(id) {
            Err(Error::NoSuchSegment { id: reported }) => assert_eq!(reported, id),
            other => panic!(
                "segment {id} does not exist: shmat fails with EINVAL, which must be reported as \
                 Err(Error::NoSuchSegment {{ id: {id} }}); got {other:?}"
            ),
        }
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
            match Attachment::new(id) {
                Err(Error::PermissionDenied { id: reported }) if reported == id => 0,
                Err(Error::PermissionDenied { .. }) => 2,
                Ok(_) => 3,
                Err(_) => 4,
            }
        });
        match exit_code(child, "the unprivileged child") {
            0 => {}
            10 => eprintln!("note: could not drop privileges here; nothing to check"),
            2 => panic!("Error::PermissionDenied must name the segment's id"),
            3 => panic!("attaching a segment of mode 0 as another user succeeded: impossible"),
            101 => panic!("Attachment::new panicked in the child (its message is below)"),
            _ => panic!(
                "shmat fails with EACCES for a segment whose mode does not let us in: report it as \
                 Err(Error::PermissionDenied {{ id }})"
            ),
        }
        assert_eq!(row(id, "after the child's attempt").nattch, 0);
    });
}

#[test]
fn task5_lookup_without_a_segment_names_the_key_file() {
    isolated(SEGMENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = key_file(&dir);
        match lookup(&path) {
            Err(Error::NoSuchKey {
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
        let missing = dir.path().join("no-such-file");
        assert!(
            matches!(lookup(&missing), Err(Error::KeyFile { .. })),
            "ftok needs an existing file: for a missing one expected Err(Error::KeyFile {{ .. }}), \
             got {:?}",
            lookup(&missing)
        );
    });
}

#[test]
fn task5_creating_twice_under_one_key_is_already_exists() {
    isolated(SEGMENT_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = key_file(&dir);
        let _first = Segment::create_at(&path, PAGE).expect("Segment::create_at returned an error");
        let second = Segment::create_at(&path, PAGE);
        assert!(
            matches!(&second, Err(Error::AlreadyExists { path: p, .. }) if *p == path),
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
        assert!(capacity > 0 && capacity < PAGE / 2);
        match mailbox.send(&payload(capacity + 1)) {
            Err(Error::MessageTooLong { len, capacity: c }) => {
                assert_eq!((len, c), (capacity + 1, capacity))
            }
            other => panic!(
                "a message one byte longer than capacity() must be Err(Error::MessageTooLong), got \
                 {other:?}"
            ),
        }
        let tiny = Segment::create(100).expect("Segment::create returned an error");
        let mut tiny = tiny.attach().expect("attach returned an error");
        assert!(
            matches!(
                Mailbox::new(&mut tiny, Side::Host),
                Err(Error::TooSmall { .. })
            ),
            "a 100-byte segment cannot hold a mailbox: expected Err(Error::TooSmall)"
        );
    });
}

#[test]
fn task5_echo_program_names_the_missing_segment() {
    isolated(NEVER_RETURNED_HINT, || {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = key_file(&dir);
        let output = CmdAssert::new(env!("CARGO_BIN_EXE_ex04-shm-echo"))
            .arg(&path)
            .timeout(Duration::from_secs(5))
            .output()
            .expect("run ex04-shm-echo");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked"),
            "ex04-shm-echo panicked instead of reporting that no segment exists for its key file:\n{stderr}"
        );
        // The same, said with predicates: a failure whose message names the key file.
        output
            .assert()
            .failure()
            .stderr(predicate::str::contains(path.to_str().unwrap()));
    });
}
