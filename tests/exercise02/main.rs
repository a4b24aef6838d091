//! The graded suite of exercise 02: named pipes (`mkfifo`).
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`): opening a FIFO blocks until the other end is opened, and a
//! hang must become a failing test with a hint. The body only runs the code and hands back plain
//! data; the verdict is the judge's (`.judge`). The kernel is the witness: the judge itself
//! `stat`s what the test left in its scratch directory, reads at checkpoints who holds what open
//! and where a thread is waiting; `FIONREAD` (measured by the test) says how many bytes sit in
//! the pipe buffer: it is the one measurement the judge cannot make itself, because `/proc`
//! shows no pipe's fill level (`fdinfo` has the position and the flags, nothing more).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use assert_cmd::prelude::*;
use exercise02::*;
use ipclab_support::data::{payload, PIPE_BUF};
use ipclab_support::descriptors::assert_no_fd_leaks;
use ipclab_support::procfs::{self, FdTarget};
use ipclab_support::{checkpoint, isolated, Snapshot};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, sigaction, signal, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, gettid, mkfifo, ForkResult, Pid};
use predicates::prelude::*;
use rstest::rstest;
use serde::{Deserialize, Serialize};

const NEVER_RETURNED_HINT: &str = "the call never returned. receive_message must stop at end of file (a read that returns 0) instead of reading again, and create_fifo never waits for anything";

const SERVER: &str = env!("CARGO_BIN_EXE_ex02-fifo-server");
const CLIENT: &str = env!("CARGO_BIN_EXE_ex02-fifo-client");

const CREATE_HINT: &str = "creating a FIFO never blocks. Did create_fifo open the FIFO it made? \
     An open waits until the other end is opened too.";

const OPEN_HINT: &str = "an open of a FIFO hung. A blocking open waits for the other end: for \
     reading until a writer opens, for writing until a reader opens. The try_ variants must pass \
     O_NONBLOCK to open, so that they never wait.";

const FRAMING_HINT: &str = "reading a message hung. Read the 2-byte header, then exactly the \
     length it announces, and stop at end of file (read returns 0): never ask for more bytes \
     than the message has.";

const ATOMIC_HINT: &str = "the writers or the reader hung. A write into a full FIFO waits until \
     the reader makes room; the reader sees end of file only once every writer has closed the \
     FIFO. Does send_message retry forever on a short write?";

const SERVER_HINT: &str = "the server or a client hung. The server must open the FIFO for \
     reading without waiting for a client (a blocking open is deaf to SIGTERM), print its \
     readiness line, and stop at end of file (every client closed) or on SIGTERM/SIGINT; the \
     client must not wait for a server that is not there (open with O_NONBLOCK: ENXIO).";

// ---------------------------------------------------------------------------------------------
// Test helpers: FIFOs made by the test itself, and the kernel's view of them.

/// A FIFO made by the test (not by the code under test) in the test's scratch directory (its
/// TMPDIR), where the judge finds it: `seen.scratch.join(name)`. The scratch directory, FIFO
/// included, is removed after judging, even after a failure.
fn test_fifo(name: &str) -> PathBuf {
    let path = scratch_path(name);
    mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo for the test");
    path
}

/// `name` in the test's scratch directory, as the test process sees it.
fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// Opens the FIFO the way the test needs it, independently of the code under test.
fn raw_open(path: &Path, flags: OFlag) -> File {
    File::from(
        nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("the test could not open {}: {e}", path.display())),
    )
}

/// Bytes waiting in the pipe buffer behind `fd` (the FIONREAD ioctl). Measured in the test
/// process and handed to the judge as data: no snapshot can show it (`/proc/<pid>/fdinfo` of a
/// pipe has no fill level, and the ioctl needs a descriptor of the pipe).
fn unread_bytes(fd: &impl AsFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`, which lives for the whole call.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(
        rc,
        0,
        "ioctl(FIONREAD) failed: {}",
        io::Error::last_os_error()
    );
    n as usize
}

fn access_mode_name(flags: i32) -> &'static str {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    }
}

/// The `flags` of descriptor `fd` of the test process, as the judge read them at `snapshot`.
#[track_caller]
fn flags_at(snapshot: &Snapshot, fd: i32) -> i32 {
    snapshot
        .test_process()
        .fds
        .get(&fd)
        .unwrap_or_else(|| {
            panic!(
                "descriptor {fd} was not open at checkpoint {:?}: {:?}",
                snapshot.label,
                snapshot.test_process().fds
            )
        })
        .flags
}

/// Waits until thread `tid` sleeps in one of `calls`, as the kernel reports it. Returns false if
/// the thread finished first (so it never waited). (The test's way to know when to go on; the
/// judge checks the same at a checkpoint with [`asleep_at`].)
fn wait_until_asleep_in(tid: Pid, calls: &[libc::c_long]) -> bool {
    procfs::wait_until_blocked(tid, Duration::from_secs(5), |c| calls.contains(&c.number)).is_ok()
}

/// Whether thread `tid` was asleep in one of `calls` at `snapshot` (read by the judge).
fn asleep_at(snapshot: &Snapshot, tid: i32, calls: &[libc::c_long]) -> bool {
    snapshot
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .find(|t| t.tid == tid)
        .and_then(|t| t.blocked)
        .is_some_and(|call| calls.contains(&call.number))
}

/// Joins a thread, turning its panic into this thread's, message included.
#[track_caller]
fn join<T>(thread: JoinHandle<T>, what: &str) -> T {
    match thread.join() {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            panic!("{what} panicked: {message}")
        }
    }
}

/// A message as it travels: a 2-byte big-endian length, then the bytes (the format documented in
/// the exercise's `src/lib.rs`). The test encodes and decodes on its own, so that each task is
/// graded on its own function.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut record = (message.len() as u16).to_be_bytes().to_vec();
    record.extend_from_slice(message);
    record
}

fn kind_of(path: &Path) -> Option<fs::FileType> {
    fs::symlink_metadata(path).ok().map(|m| m.file_type())
}

/// A result of the code under test as the judge gets it: the value, or the error as `{:?}`
/// shows it (the judge runs none of the exercise's code, not even its `Debug`).
#[derive(PartialEq, Eq, Serialize, Deserialize)]
enum Obs<T> {
    Ok(T),
    Err(String),
}

impl<T: fmt::Debug> fmt::Debug for Obs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Obs::Ok(value) => write!(f, "Ok({value:?})"),
            Obs::Err(error) => write!(f, "Err({error})"),
        }
    }
}

fn obs<T, U>(result: Result<T>, keep: impl FnOnce(T) -> U) -> Obs<U> {
    match result {
        Ok(value) => Obs::Ok(keep(value)),
        Err(e) => Obs::Err(format!("{e:?}")),
    }
}

/// What a program run by the test did, as the judge gets it (output cut at 64 KiB).
#[derive(Debug, Serialize, Deserialize)]
struct Ran {
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Ran {
    fn of(output: Output) -> Ran {
        let cut = |mut v: Vec<u8>| {
            v.truncate(64 * 1024);
            v
        };
        Ran {
            status: output.status.into_raw(),
            stdout: cut(output.stdout),
            stderr: cut(output.stderr),
        }
    }

    /// As `std::process::Output`, for assert_cmd's assertions in the judge.
    fn output(&self) -> Output {
        Output {
            status: ExitStatus::from_raw(self.status),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
        }
    }
}

/// `FileKind` as its `Debug` shows it, and as its `Display` says it (copies made by the suite: the
/// judge runs none of the exercise's code).
fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::RegularFile => "RegularFile",
        FileKind::Directory => "Directory",
        FileKind::Symlink => "Symlink",
        FileKind::Fifo => "Fifo",
        FileKind::Socket => "Socket",
        FileKind::CharDevice => "CharDevice",
        FileKind::BlockDevice => "BlockDevice",
        FileKind::Unknown => "Unknown",
    }
}

fn kind_text(kind: FileKind) -> &'static str {
    match kind {
        FileKind::RegularFile => "a regular file",
        FileKind::Directory => "a directory",
        FileKind::Symlink => "a symbolic link",
        FileKind::Fifo => "a FIFO",
        FileKind::Socket => "a socket",
        FileKind::CharDevice => "a character device",
        FileKind::BlockDevice => "a block device",
        FileKind::Unknown => "something that could not be examined",
    }
}

// ---------------------------------------------------------------------------------------------
// Task 1: create a FIFO with exact permissions, refuse a taken path, remove it when done.

#[rstest]
#[case::owner_only(0o600)]
#[case::group_reads(0o640)]
#[case::everyone_writes(0o666)]
#[case::others_write_only(0o622)]
fn task1_fifo_has_exactly_the_requested_permissions(#[case] mode: u32) {
    isolated(CREATE_HINT, || {
        // A strict umask, as on many servers: mkfifo alone would clear bits of `mode`.
        umask(Mode::from_bits_truncate(0o077));
        let path = scratch_path("myPipe");
        let fifo = create_fifo(&path, mode).expect("create_fifo returned an error");
        let reported = fifo.path().to_path_buf();
        // Left in place for the judge to stat; the scratch directory goes after judging.
        std::mem::forget(fifo);
        reported
    })
    .judge(|reported: PathBuf, seen| {
        let path = seen.scratch.join("myPipe");
        let st = fs::symlink_metadata(&path).expect("nothing was created at the path");
        assert!(
            st.file_type().is_fifo(),
            "stat says {} is not a FIFO (st_mode {:o}): create it with mkfifo",
            path.display(),
            st.mode()
        );
        assert_eq!(
            st.mode() & 0o7777,
            mode,
            "the FIFO's permissions are {:o}, but {mode:o} was asked for. mkfifo's mode is \
             masked by the umask (077 here): set the exact permissions afterwards with chmod",
            st.mode() & 0o7777
        );
        assert_eq!(st.size(), 0, "a new FIFO has size 0");
        assert_eq!(reported, path, "Fifo::path must return where the FIFO is");
    });
}

#[derive(Debug, Clone, Copy)]
enum Existing {
    RegularFile,
    Directory,
    DanglingSymlink,
    Fifo,
    Socket,
    /// `/dev/null`: the one device every machine (and the sandbox) has.
    CharDevice,
}

impl Existing {
    /// Where the test puts it (or finds it): `taken` in the scratch directory `scratch`.
    fn path(self, scratch: &Path) -> PathBuf {
        match self {
            Existing::CharDevice => PathBuf::from("/dev/null"),
            _ => scratch.join("taken"),
        }
    }
}

#[rstest]
#[case::regular_file(Existing::RegularFile, FileKind::RegularFile)]
#[case::directory(Existing::Directory, FileKind::Directory)]
#[case::dangling_symlink(Existing::DanglingSymlink, FileKind::Symlink)]
#[case::fifo(Existing::Fifo, FileKind::Fifo)]
#[case::socket(Existing::Socket, FileKind::Socket)]
#[case::character_device(Existing::CharDevice, FileKind::CharDevice)]
fn task1_existing_path_is_a_clear_error_and_stays_untouched(
    #[case] existing: Existing,
    #[case] kind: FileKind,
) {
    let (name, text) = (kind_name(kind), kind_text(kind));
    isolated(CREATE_HINT, || {
        let path = existing.path(&std::env::temp_dir());
        match existing {
            Existing::RegularFile => fs::write(&path, "precious").unwrap(),
            Existing::Directory => fs::create_dir(&path).unwrap(),
            Existing::DanglingSymlink => std::os::unix::fs::symlink("nowhere", &path).unwrap(),
            Existing::Fifo => mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap(),
            // The socket file stays when the listener closes.
            Existing::Socket => drop(UnixListener::bind(&path).unwrap()),
            Existing::CharDevice => {}
        }
        let before = fs::symlink_metadata(&path).unwrap().ino();
        let result = match create_fifo(&path, 0o600) {
            Err(Error::PathExists { path, kind }) => Ok((path, kind_name(kind).to_owned())),
            other => Err(format!("{other:?}")),
        };
        (result, before)
    })
    .judge(
        |(result, before): (std::result::Result<(PathBuf, String), String>, u64), seen| {
            let path = existing.path(&seen.scratch);
            match result {
                Ok((p, k)) => {
                    assert_eq!(p, path, "PathExists must name the path");
                    assert_eq!(k, name, "PathExists must say what the path is");
                }
                Err(other) => panic!(
                    "{} exists as {text}: expected Err(Error::PathExists {{ path, kind: \
                     FileKind::{name} }}), got {other}. mkfifo fails with EEXIST; lstat (not \
                     stat: it would follow a symbolic link) says what is there",
                    path.display()
                ),
            }
            let after = fs::symlink_metadata(&path).unwrap_or_else(|_| {
                panic!("create_fifo removed the {text} that was already at the path: it must not touch what it did not create")
            });
            let same_kind = match existing {
                Existing::RegularFile => after.file_type().is_file(),
                Existing::Directory => after.file_type().is_dir(),
                Existing::DanglingSymlink => after.file_type().is_symlink(),
                Existing::Fifo => after.file_type().is_fifo(),
                Existing::Socket => after.file_type().is_socket(),
                Existing::CharDevice => after.file_type().is_char_device(),
            };
            assert!(
                after.ino() == before && same_kind,
                "the {text} at the path was replaced: create_fifo must not touch what it did not create"
            );
            if let Existing::RegularFile = existing {
                assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
            }
        },
    );
}

#[rstest]
#[case::setuid(0o4600)]
#[case::sticky(0o1666)]
#[case::file_type_bits(0o10600)]
fn task1_mode_outside_the_permission_bits_is_rejected(#[case] mode: u32) {
    isolated(CREATE_HINT, || {
        let path = scratch_path("fifo");
        match create_fifo(&path, mode) {
            Err(Error::InvalidMode { mode: m }) => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(|result: std::result::Result<u32, String>, seen| {
        match result {
            Ok(m) => assert_eq!(m, mode),
            Err(other) => panic!(
                "mode {mode:#o} has bits outside 0o777: expected Err(Error::InvalidMode {{ mode: \
                 {mode:#o} }}), got {other}"
            ),
        }
        assert!(
            kind_of(&seen.scratch.join("fifo")).is_none(),
            "create_fifo rejected the mode but left something at the path: check before mkfifo"
        );
    });
}

#[test]
fn task1_error_for_a_missing_directory_names_the_path() {
    isolated(CREATE_HINT, || {
        let path = scratch_path("no-such-directory").join("fifo");
        match create_fifo(&path, 0o600) {
            Err(e) => Ok(e.to_string()),
            Ok(fifo) => Err(format!("{:?}", fifo.path())),
        }
    })
    .judge(|result: std::result::Result<String, String>, seen| {
        let path = seen.scratch.join("no-such-directory").join("fifo");
        match result {
            Ok(e) => assert!(
                e.contains(&path.display().to_string()),
                "the error should name the path {}, so that the user knows what failed; it says: {e}",
                path.display()
            ),
            Err(created) => panic!("created {created} in a directory that does not exist?"),
        }
    });
}

#[test]
fn task1_dropping_the_guard_removes_the_fifo() {
    isolated(CREATE_HINT, || {
        let path = scratch_path("fifo");
        let fifo = create_fifo(&path, 0o600).expect("create_fifo returned an error");
        assert!(
            kind_of(&path).is_some_and(|k| k.is_fifo()),
            "create_fifo returned Ok but there is no FIFO at {}",
            path.display()
        );
        drop(fifo);

        // Also when a panic unwinds past the guard (in a thread of its own, so that the panic
        // is not this test's), with a FIFO of another name: the judge looks for both.
        let path = scratch_path("fifo-unwound");
        let unwound = thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _fifo = create_fifo(&path, 0o600).expect("create_fifo returned an error");
                    assert!(
                        kind_of(&path).is_some_and(|k| k.is_fifo()),
                        "create_fifo returned Ok but there is no FIFO at {}",
                        path.display()
                    );
                    panic!("a panic while the FIFO exists (on purpose)");
                })
                .join()
        });
        assert!(unwound.is_err());
    })
    .judge(|(), seen| {
        assert!(
            kind_of(&seen.scratch.join("fifo")).is_none(),
            "the FIFO is still there after its guard was dropped: impl Drop for Fifo must unlink it"
        );
        assert!(
            kind_of(&seen.scratch.join("fifo-unwound")).is_none(),
            "the FIFO is still there after a panic unwound past its guard"
        );
    });
}

#[test]
fn task1_dropping_the_guard_leaves_a_replaced_or_vanished_path_alone() {
    isolated(CREATE_HINT, || {
        // Someone moved the FIFO away and put a file of their own under its name. (Moved, not
        // removed: a removed FIFO's inode number could be given to the new file at once.)
        let replaced = scratch_path("replaced");
        let fifo = create_fifo(&replaced, 0o600).expect("create_fifo returned an error");
        fs::rename(&replaced, scratch_path("moved-away")).unwrap();
        fs::write(&replaced, "someone else's").unwrap();
        let dropped_replaced = panic::catch_unwind(AssertUnwindSafe(|| drop(fifo))).is_ok();
        // Someone removed the FIFO: the guard's unlink fails with ENOENT.
        let vanished = scratch_path("vanished");
        let fifo = create_fifo(&vanished, 0o600).expect("create_fifo returned an error");
        fs::remove_file(&vanished).unwrap();
        let dropped_vanished = panic::catch_unwind(AssertUnwindSafe(|| drop(fifo))).is_ok();
        (dropped_replaced, dropped_vanished)
    })
    .judge(|(dropped_replaced, dropped_vanished): (bool, bool), seen| {
        assert!(
            dropped_vanished,
            "dropping a guard whose FIFO someone had removed panicked: unlink fails (ENOENT) \
             then, and a drop must ignore that, never fail"
        );
        assert!(
            dropped_replaced,
            "dropping a guard whose path someone had taken over panicked: a drop must never fail"
        );
        assert_eq!(
            fs::read_to_string(seen.scratch.join("replaced"))
                .ok()
                .as_deref(),
            Some("someone else's"),
            "the FIFO had been moved away and a regular file put under its name, and dropping the \
             guard removed that file: remove the path only if it still names the FIFO you made \
             (compare the device and inode lstat gives with those of the FIFO at creation)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: the rules of open() on a FIFO.

#[test]
fn task2_nonblocking_writer_without_a_reader_gets_no_reader() {
    isolated(OPEN_HINT, || {
        let path = test_fifo("fifo");
        checkpoint("before the call");
        match try_open_writer(&path) {
            Err(Error::NoReader { path }) => Ok(path),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(|result: std::result::Result<PathBuf, String>, seen| {
        match result {
            Ok(p) => assert_eq!(p, seen.scratch.join("fifo"), "NoReader must name the path"),
            Err(other) => panic!(
                "nobody has the FIFO open for reading, so open(O_WRONLY | O_NONBLOCK) fails with \
                 ENXIO, to be reported as Err(Error::NoReader {{ path }}); got {other}"
            ),
        }
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "A failed open leaves nothing open.",
        );
    });
}

#[test]
fn task2_nonblocking_writer_with_a_reader_opens_and_then_blocks_normally() {
    isolated(OPEN_HINT, || {
        let path = test_fifo("fifo");
        let mut reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let mut writer = try_open_writer(&path).expect("try_open_writer returned an error");
        checkpoint("opened");
        writer.write_all(b"through the kernel").unwrap();
        let mut got = [0u8; 18];
        reader.read_exact(&mut got).unwrap();
        (
            writer.as_raw_fd(),
            String::from_utf8_lossy(&got).into_owned(),
        )
    })
    .judge(|(fd, got): (i32, String), seen| {
        let flags = flags_at(seen.at("opened"), fd);
        assert_eq!(
            flags & libc::O_ACCMODE,
            libc::O_WRONLY,
            "the writer was opened {}: open the FIFO O_WRONLY",
            access_mode_name(flags)
        );
        assert_eq!(
            flags & libc::O_NONBLOCK,
            0,
            "the writer is still O_NONBLOCK: clear it with fcntl(F_SETFL) after opening, so that \
             a write into a full FIFO waits instead of failing with EAGAIN"
        );
        assert_eq!(got, "through the kernel");
        let path = seen.scratch.join("fifo");
        let open = seen
            .at("opened")
            .test_process()
            .fds_to(&FdTarget::Path(path));
        assert_eq!(
            open.len(),
            2,
            "with the test's reader and the writer try_open_writer returned, the test process \
             should hold 2 descriptors of the FIFO, but the kernel shows {open:?}: \
             try_open_writer left another one open"
        );
    });
}

#[test]
fn task2_nonblocking_reader_opens_at_once_without_a_writer() {
    isolated(OPEN_HINT, || {
        let path = test_fifo("fifo");
        let reader = try_open_reader(&path).expect("try_open_reader returned an error");
        checkpoint("opened");
        // The kernel now counts a reader: a non-blocking open for writing succeeds.
        let writer = nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty());
        (reader.as_raw_fd(), writer.map(drop).map_err(|e| format!("{e:?}")))
    })
    .judge(|(fd, writer): (i32, std::result::Result<(), String>), seen| {
        let path = seen.scratch.join("fifo");
        let opened = seen.at("opened");
        let flags = flags_at(opened, fd);
        assert_eq!(
            flags & libc::O_ACCMODE,
            libc::O_RDONLY,
            "the reader was opened {}: open the FIFO O_RDONLY",
            access_mode_name(flags)
        );
        assert_eq!(
            flags & libc::O_NONBLOCK,
            0,
            "the reader is still O_NONBLOCK: clear it with fcntl(F_SETFL) after opening"
        );
        assert!(
            opened
                .test_process()
                .fds
                .get(&fd)
                .is_some_and(|e| e.target == FdTarget::Path(path.clone())),
            "the kernel does not show the returned descriptor as the FIFO {}",
            path.display()
        );
        assert!(
            writer.is_ok(),
            "with the reader open, open(O_WRONLY | O_NONBLOCK) should succeed, but failed: {writer:?}"
        );
        let open = opened.test_process().fds_to(&FdTarget::Path(path.clone()));
        assert_eq!(
            open,
            vec![fd],
            "the test process should hold one descriptor of the FIFO, the one try_open_reader \
             returned, but the kernel shows {open:?}: try_open_reader left another one open"
        );
    });
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Writer,
    Reader,
}

#[rstest]
#[case::writer_waits_for_a_reader(Side::Writer)]
#[case::reader_waits_for_a_writer(Side::Reader)]
fn task2_blocking_open_waits_for_the_other_end(#[case] side: Side) {
    let (function, other_end) = match side {
        Side::Writer => ("open_writer", "reading"),
        Side::Reader => ("open_reader", "writing"),
    };
    let calls = [libc::SYS_openat, libc::SYS_open];
    isolated(OPEN_HINT, || {
        let path = test_fifo("fifo");
        let (tid_tx, tid_rx) = mpsc::channel();
        let opener = {
            let path = path.clone();
            thread::spawn(move || -> Result<(i32, Vec<u8>)> {
                tid_tx.send(gettid()).unwrap();
                match side {
                    Side::Writer => {
                        let mut fifo = open_writer(&path)?;
                        checkpoint("opened");
                        fifo.write_all(b"sent once a reader came").unwrap();
                        Ok((fifo.as_raw_fd(), Vec::new()))
                    }
                    Side::Reader => {
                        let mut fifo = open_reader(&path)?;
                        checkpoint("opened");
                        let mut got = Vec::new();
                        fifo.read_to_end(&mut got).unwrap();
                        Ok((fifo.as_raw_fd(), got))
                    }
                }
            })
        };
        let tid = tid_rx.recv().unwrap();
        if !wait_until_asleep_in(tid, &calls) {
            let result = join(opener, function);
            panic!(
                "{function} returned before any process had opened the FIFO for {other_end} \
                 (it returned {result:?}). A blocking open of a FIFO waits for the other end: \
                 open it without O_NONBLOCK, and not O_RDWR (which never waits)."
            );
        }
        // The kernel shows the thread asleep in open(): the judge looks too. Now open the other
        // end.
        checkpoint("the opener waits");
        let received = match side {
            Side::Writer => {
                let mut reader = raw_open(&path, OFlag::O_RDONLY);
                let mut got = Vec::new();
                reader.read_to_end(&mut got).unwrap();
                got
            }
            Side::Reader => {
                let mut writer = raw_open(&path, OFlag::O_WRONLY);
                writer.write_all(b"sent once a writer came").unwrap();
                drop(writer);
                Vec::new()
            }
        };
        let (fd, read_by_opener) =
            join(opener, function).unwrap_or_else(|e| panic!("{function} returned an error: {e}"));
        (
            tid.as_raw(),
            fd,
            String::from_utf8_lossy(&received).into_owned(),
            String::from_utf8_lossy(&read_by_opener).into_owned(),
        )
    })
    .judge(
        |(tid, fd, received, read_by_opener): (i32, i32, String, String), seen| {
            assert!(
                asleep_at(seen.at("the opener waits"), tid, &calls),
                "{function} returned before any process had opened the FIFO for {other_end}. A \
             blocking open of a FIFO waits for the other end: open it without O_NONBLOCK, and \
             not O_RDWR (which never waits)."
            );
            let flags = flags_at(seen.at("opened"), fd);
            match side {
                Side::Writer => {
                    assert_eq!(
                        flags & libc::O_ACCMODE,
                        libc::O_WRONLY,
                        "open_writer must open O_WRONLY"
                    );
                    assert_eq!(received, "sent once a reader came");
                }
                Side::Reader => {
                    assert_eq!(
                        flags & libc::O_ACCMODE,
                        libc::O_RDONLY,
                        "open_reader must open O_RDONLY"
                    );
                    assert_eq!(read_by_opener, "sent once a writer came");
                }
            }
        },
    );
}

/// One of the four open helpers.
type OpenFn = fn(&Path) -> Result<File>;

/// Something that is not a FIFO, for the open helpers to refuse.
#[derive(Debug, Clone, Copy)]
enum NotAFifo {
    RegularFile,
    /// `open` refuses a directory for writing (EISDIR) before anything can be checked.
    Directory,
    /// `/dev/null`: it opens for reading and for writing, at once.
    CharDevice,
}

impl NotAFifo {
    fn path(self, scratch: &Path) -> PathBuf {
        match self {
            NotAFifo::RegularFile => scratch.join("plain.txt"),
            NotAFifo::Directory => scratch.join("a-directory"),
            NotAFifo::CharDevice => PathBuf::from("/dev/null"),
        }
    }
}

#[rstest]
#[case::regular_file(NotAFifo::RegularFile, FileKind::RegularFile)]
#[case::directory(NotAFifo::Directory, FileKind::Directory)]
#[case::character_device(NotAFifo::CharDevice, FileKind::CharDevice)]
fn task2_opening_something_else_is_not_a_fifo(#[case] what: NotAFifo, #[case] kind: FileKind) {
    const OPENS: [&str; 4] = [
        "open_reader",
        "open_writer",
        "try_open_reader",
        "try_open_writer",
    ];
    let (name, text) = (kind_name(kind), kind_text(kind));
    isolated(OPEN_HINT, || {
        let path = what.path(&std::env::temp_dir());
        match what {
            NotAFifo::RegularFile => fs::write(&path, "not a pipe").unwrap(),
            NotAFifo::Directory => fs::create_dir(&path).unwrap(),
            NotAFifo::CharDevice => {}
        }
        checkpoint("before the calls");
        let opens: [OpenFn; 4] = [
            |p| open_reader(p),
            |p| open_writer(p),
            |p| try_open_reader(p),
            |p| try_open_writer(p),
        ];
        opens
            .iter()
            .map(|open| match open(&path) {
                Err(Error::NotAFifo { path, kind }) => Ok((path, kind_name(kind).to_owned())),
                other => Err(format!("{other:?}")),
            })
            .collect::<Vec<_>>()
    })
    .judge(
        |results: Vec<std::result::Result<(PathBuf, String), String>>, seen| {
            let path = what.path(&seen.scratch);
            assert_eq!(results.len(), OPENS.len(), "one result per open helper");
            for (helper, result) in OPENS.iter().zip(results) {
                match result {
                    Ok((p, k)) => {
                        assert_eq!(p, path, "{helper}: NotAFifo must name the path");
                        assert_eq!(
                            k, name,
                            "{helper} on {text}: NotAFifo must say what it is (FileKind::{name})"
                        );
                    }
                    Err(other) => panic!(
                        "{helper} on {text} ({}): expected Err(Error::NotAFifo {{ path, kind: \
                         FileKind::{name} }}), got {other}. {}",
                        path.display(),
                        match what {
                            NotAFifo::Directory =>
                                "open refuses a directory for writing with \
                                 EISDIR: that, too, is NotAFifo (a directory); for reading it \
                                 opens, and fstat says what was opened",
                            _ => "After open, fstat says what was opened",
                        }
                    ),
                }
            }
            assert_no_fd_leaks(
                seen.at("before the calls").test_process(),
                seen.end.test_process(),
                "A descriptor opened on something that is not a FIFO must be closed again.",
            );
            if let NotAFifo::RegularFile = what {
                assert_eq!(fs::read_to_string(&path).unwrap(), "not a pipe");
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: reading framed messages.

/// A reader that hands out at most `step` bytes per read, after an EINTR each time, as a pipe
/// does when its writer writes in pieces and signals arrive. It remembers what its last read
/// gave, so that the judge can tell a reader that gave up on EINTR from one that gave up after
/// a short read.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
    interrupt_next: bool,
    last: LastRead,
}

/// What the last `read` of a [`Trickle`] gave the code under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum LastRead {
    None,
    Interrupted,
    /// `got` bytes where `asked` were asked for (0: end of file).
    Bytes {
        got: usize,
        asked: usize,
    },
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if !self.interrupt_next {
            self.last = LastRead::Interrupted;
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        self.last = LastRead::Bytes {
            got: n,
            asked: buf.len(),
        };
        Ok(n)
    }
}

/// What `receive_message` returned, as the judge gets it.
type Got = Obs<Option<Vec<u8>>>;

/// Calls `receive_message` `times` times on `reader` (or until it no longer returns a message).
fn receive_all(reader: &mut impl Read, times: usize) -> Vec<Got> {
    let mut got = Vec::new();
    for _ in 0..times {
        let result = obs(receive_message(reader), |m| m);
        let more = matches!(result, Obs::Ok(Some(_)));
        got.push(result);
        if !more {
            break;
        }
    }
    got
}

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::a_line("hello, fifo".len())]
#[case::longest(MAX_MESSAGE)]
fn task3_messages_are_received_whole_and_in_order_then_none(#[case] len: usize) {
    let messages = [payload(len), b"next".to_vec(), payload(len)];
    isolated(NEVER_RETURNED_HINT, || {
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        receive_all(&mut stream.as_slice(), messages.len() + 1)
    })
    .judge(|got: Vec<Got>, _| {
        let mut got = got.into_iter();
        for (i, expected) in messages.iter().enumerate() {
            match got.next() {
                Some(Obs::Ok(Some(got))) => assert!(
                    got == *expected,
                    "message {i}: got {} bytes, expected the {} bytes that were sent",
                    got.len(),
                    expected.len()
                ),
                other => panic!(
                    "message {i} ({} bytes): expected Ok(Some(..)), got {:?}",
                    expected.len(),
                    other.expect("one result per call")
                ),
            }
        }
        match got.next() {
            Some(Obs::Ok(None)) => {}
            other => panic!(
                "at end of file between messages, expected Ok(None), got {:?}",
                other.expect("one result per call")
            ),
        }
    });
}

#[rstest]
#[case::one_byte_per_read(1)]
#[case::three_bytes_per_read(3)]
#[case::thousand_bytes_per_read(1000)]
fn task3_partial_and_interrupted_reads_are_continued(#[case] step: usize) {
    let messages = [
        payload(MAX_MESSAGE),
        b"short".to_vec(),
        Vec::new(),
        payload(2000),
    ];
    isolated(NEVER_RETURNED_HINT, || {
        let data: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut reader = Trickle {
            data,
            at: 0,
            step,
            interrupt_next: false,
            last: LastRead::None,
        };
        let mut got = Vec::new();
        for _ in 0..messages.len() + 1 {
            let result = obs(receive_message(&mut reader), |m| m);
            let more = matches!(result, Obs::Ok(Some(_)));
            got.push((result, reader.last));
            if !more {
                break;
            }
        }
        got
    })
    .judge(|got: Vec<(Got, LastRead)>, _| {
        let mut got = got.into_iter();
        for (i, expected) in messages.iter().enumerate() {
            let (result, last) = got.next().expect("one result per call");
            let why = match last {
                LastRead::Interrupted => "Its last read failed with EINTR \
                     (ErrorKind::Interrupted), and it gave up: nothing was read, so retry that \
                     read"
                    .to_owned(),
                LastRead::Bytes { got, asked } if got > 0 && got < asked => format!(
                    "Its last read returned {got} of the {asked} bytes asked for, and it gave \
                     up: a short read is not the end of the message. Keep reading until the \
                     header, then the body, is complete; only a read that returns 0 is end of \
                     file"
                ),
                other => format!("Its last read: {other:?}"),
            };
            match result {
                Obs::Ok(Some(got)) => assert!(
                    got == *expected,
                    "message {i}: got {} bytes, expected {}. A read may return fewer bytes than asked \
                     for: keep reading until the header, then the body, is complete",
                    got.len(),
                    expected.len()
                ),
                other => panic!(
                    "message {i}, delivered {step} bytes per read with EINTR in between: expected \
                     Ok(Some(..)), got {other:?}. {why}"
                ),
            }
        }
        assert!(
            matches!(got.next(), Some((Obs::Ok(None), _))),
            "expected Ok(None) after the last message"
        );
    });
}

/// `expected` and `got` count the header too: the record a header of 100 announces is 102 bytes.
#[rstest]
#[case::inside_the_header(vec![0x00], 2, 1)]
#[case::inside_the_body([&100u16.to_be_bytes()[..], &[7u8; 10][..]].concat(), 102, 12)]
fn task3_end_of_file_inside_a_message_is_truncated(
    #[case] stream: Vec<u8>,
    #[case] expected: usize,
    #[case] got: usize,
) {
    isolated(NEVER_RETURNED_HINT, || {
        let mut reader = stream.as_slice();
        match receive_message(&mut reader) {
            Err(Error::TruncatedMessage { expected, got }) => Ok((expected, got)),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(
        |result: std::result::Result<(usize, usize), String>, _| match result {
            Ok(numbers) => assert_eq!(
                numbers,
                (expected, got),
                "the stream ends inside a message ({} bytes: {stream:?}): TruncatedMessage \
                 {{ expected, got }} should be ({expected}, {got}), counting the 2-byte header in \
                 both: the record needed {expected} bytes and {got} came",
                stream.len()
            ),
            Err(other) => panic!(
                "the stream ends inside a message ({} bytes: {stream:?}): expected \
                 Err(Error::TruncatedMessage {{ expected: {expected}, got: {got} }}), got {other}. \
                 Only end of file before a header's first byte is the clean end, Ok(None)",
                stream.len()
            ),
        },
    );
}

#[test]
fn task3_header_announcing_more_than_max_message_is_rejected() {
    let len = MAX_MESSAGE + 1;
    isolated(NEVER_RETURNED_HINT, || {
        let stream = [&(len as u16).to_be_bytes()[..], &vec![1u8; len][..]].concat();
        let mut reader = stream.as_slice();
        match receive_message(&mut reader) {
            Err(Error::MessageTooLong { len, max }) => Ok((len, max)),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(
        |result: std::result::Result<(usize, usize), String>, _| match result {
            Ok((l, max)) => assert_eq!((l, max), (len, MAX_MESSAGE)),
            Err(other) => panic!(
            "a header announcing {len} bytes (more than MAX_MESSAGE = {MAX_MESSAGE}) breaks the \
             protocol: expected Err(Error::MessageTooLong {{ len: {len}, max: {MAX_MESSAGE} }}), \
             got {other}"
        ),
        },
    );
}

#[test]
fn task3_a_message_split_across_writes_is_reassembled_from_a_fifo() {
    isolated(FRAMING_HINT, || {
        let path = test_fifo("fifo");
        let reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let mut writer = raw_open(&path, OFlag::O_WRONLY);
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let peek = reader.try_clone().unwrap();
        let record = frame(&payload(3000));
        let receiver = thread::spawn(move || {
            let mut reader = reader;
            receive_message(&mut reader)
        });
        // Half a message, then wait until the receiver has taken all of it out of the pipe
        // (FIONREAD says 0): it now holds a partial message and must wait for the rest.
        writer.write_all(&record[..1001]).unwrap();
        while unread_bytes(&peek) > 0 && !receiver.is_finished() {
            thread::yield_now();
        }
        writer.write_all(&record[1001..]).unwrap();
        drop(writer);
        obs(join(receiver, "receive_message"), |m| m)
    })
    .judge(|got: Got, _| match got {
        Obs::Ok(Some(got)) => assert!(
            got == payload(3000),
            "got {} bytes, expected the 3000 sent in two writes",
            got.len()
        ),
        other => panic!(
            "a message written in two pieces: expected Ok(Some(3000 bytes)), got {other:?}. \
             One read returned only the first piece: keep reading until the message is \
             complete"
        ),
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: sending messages atomically; several writers.

/// An open FIFO with the test holding both ends: messages can be sent without blocking.
fn fifo_pair() -> (File, File) {
    let path = test_fifo("fifo");
    let reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
    let writer = raw_open(&path, OFlag::O_WRONLY);
    (reader, writer)
}

/// A FIFO shrunk to one page with 4000 bytes in it, and a thread that sends a 1000-byte message
/// into it: the 1002-byte record does not fit, so `send_message` has to wait for room. Returns
/// the test's reader, the writer (the sender holds a clone), the sender's tid and its thread.
fn send_into_a_nearly_full_fifo() -> (File, Arc<File>, Pid, JoinHandle<Result<()>>) {
    let (reader, writer) = fifo_pair();
    nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("F_SETPIPE_SZ");
    (&writer).write_all(&[b'.'; 4000]).unwrap();
    let writer = Arc::new(writer);
    let (tid_tx, tid_rx) = mpsc::channel();
    let sender = {
        let writer = writer.clone();
        thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            send_message(&writer, &[b'm'; 1000])
        })
    };
    let tid = tid_rx.recv().unwrap();
    (reader, writer, tid, sender)
}

#[test]
fn task4_longest_message_fills_exactly_pipe_buf() {
    isolated(ATOMIC_HINT, || {
        let (mut reader, writer) = fifo_pair();
        send_message(&writer, &payload(MAX_MESSAGE)).expect("send_message returned an error");
        let in_fifo = unread_bytes(&reader);
        let mut record = vec![0u8; in_fifo.min(PIPE_BUF)];
        reader.read_exact(&mut record).unwrap();
        (in_fifo, record)
    })
    .judge(|(in_fifo, record): (usize, Vec<u8>), _| {
        assert_eq!(
            in_fifo, PIPE_BUF,
            "a message of MAX_MESSAGE bytes plus its header should put exactly PIPE_BUF bytes \
             into the FIFO"
        );
        assert!(
            record == frame(&payload(MAX_MESSAGE)),
            "the bytes in the FIFO are not the 2-byte big-endian length followed by the message"
        );
    });
}

#[test]
fn task4_too_long_message_is_refused_and_nothing_is_written() {
    isolated(ATOMIC_HINT, || {
        let (reader, writer) = fifo_pair();
        let result = match send_message(&writer, &payload(MAX_MESSAGE + 1)) {
            Err(Error::MessageTooLong { len, max }) => Ok((len, max)),
            other => Err(format!("{other:?}")),
        };
        (result, unread_bytes(&reader))
    })
    .judge(
        |(result, in_fifo): (std::result::Result<(usize, usize), String>, usize), _| {
            match result {
                Ok((len, max)) => assert_eq!((len, max), (MAX_MESSAGE + 1, MAX_MESSAGE)),
                Err(other) => panic!(
                    "a message of {} bytes cannot go in one atomic write: expected \
                     Err(Error::MessageTooLong {{ len: {}, max: {MAX_MESSAGE} }}), got {other}",
                    MAX_MESSAGE + 1,
                    MAX_MESSAGE + 1
                ),
            }
            assert_eq!(
                in_fifo, 0,
                "send_message refused the message but wrote bytes into the FIFO anyway: check the \
                 length before writing anything"
            );
        },
    );
}

#[test]
fn task4_a_message_is_one_write_header_and_body_together() {
    let calls = [libc::SYS_write, libc::SYS_writev];
    isolated(ATOMIC_HINT, || {
        let (mut reader, _writer, tid, sender) = send_into_a_nearly_full_fifo();
        let asleep = wait_until_asleep_in(tid, &calls);
        if !asleep {
            let sent = join(sender, "send_message");
            panic!(
                "send_message returned ({sent:?}) although the FIFO had room for only 96 more \
                 bytes: a blocking write must wait for room for the whole record"
            );
        }
        // The judge sees the sender asleep in write, and the test counts what is in the FIFO.
        checkpoint("the sender waits");
        let in_fifo = unread_bytes(&reader);
        if in_fifo != 4000 {
            // The verdict is the judge's; the sender is left waiting (the isolated process ends it).
            return (tid.as_raw(), in_fifo, Vec::new());
        }
        // Make room: the sender's write completes.
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let mut drained = vec![0u8; 4000];
        reader.read_exact(&mut drained).unwrap();
        let sent = join(sender, "send_message");
        sent.expect("send_message returned an error");
        let mut record = vec![0u8; 1002];
        reader.read_exact(&mut record).unwrap();
        (tid.as_raw(), in_fifo, record)
    })
    .judge(|(tid, in_fifo, record): (i32, usize, Vec<u8>), seen| {
        assert!(
            asleep_at(seen.at("the sender waits"), tid, &calls),
            "send_message returned although the FIFO had room for only 96 more bytes: a \
             blocking write must wait for room for the whole record"
        );
        assert_eq!(
            in_fifo,
            4000,
            "while send_message waited for room, {} bytes of its message were already in the \
             FIFO. Header and body must go in ONE write: the kernel delivers a write of at most \
             PIPE_BUF bytes all at once or not at all, so no other writer's bytes can come \
             between them",
            in_fifo.saturating_sub(4000)
        );
        assert!(
            record == frame(&[b'm'; 1000]),
            "the record in the FIFO is not the framed message"
        );
    });
}

const BROKEN_PIPE_HINT: &str = "send_message hung on a FIFO that no process has open for \
     reading. The write fails with EPIPE, and that is final (Error::BrokenPipe): only a write \
     that failed with EINTR, having written nothing, may be tried again.";

#[test]
fn task4_sending_when_every_reader_has_gone_is_broken_pipe() {
    isolated(BROKEN_PIPE_HINT, || {
        let (reader, writer) = fifo_pair();
        drop(reader);
        // As in every Rust program: ignored, SIGPIPE does not kill the writer, the write fails
        // with EPIPE instead.
        // SAFETY: SIG_IGN installs no handler.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.expect("ignore SIGPIPE");
        match send_message(&writer, b"anyone there?") {
            Err(Error::BrokenPipe) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(|result: std::result::Result<(), String>, _| {
        if let Err(other) = result {
            panic!(
                "the only reader of the FIFO has closed it, so the write fails with EPIPE: \
                 send_message must report that as Err(Error::BrokenPipe), got {other}"
            );
        }
    });
}

/// How often the interrupting handler of [`task4_a_send_interrupted_while_waiting_for_room_is_tried_again`] ran.
static INTERRUPTIONS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_interruption(_: libc::c_int) {
    INTERRUPTIONS.fetch_add(1, Ordering::SeqCst);
}

const INTERRUPTED_SEND_HINT: &str = "send_message or the test's reader hung after a signal \
     interrupted the send: a write that fails with EINTR has written nothing, so write the \
     whole record again (the reader then takes it).";

#[test]
fn task4_a_send_interrupted_while_waiting_for_room_is_tried_again() {
    let calls = [libc::SYS_write, libc::SYS_writev];
    isolated(INTERRUPTED_SEND_HINT, || {
        // Without SA_RESTART, as a program's own handler may well be: the waiting write is cut
        // short with EINTR instead of being resumed by the kernel.
        let action = SigAction::new(
            SigHandler::Handler(count_interruption),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic, which is async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &action) }.expect("install the SIGUSR1 handler");
        let (mut reader, writer, tid, sender) = send_into_a_nearly_full_fifo();
        if !wait_until_asleep_in(tid, &calls) {
            let sent = join(sender, "send_message");
            panic!(
                "send_message returned ({sent:?}) although the FIFO had room for only 96 more \
                 bytes: a blocking write must wait for room for the whole record"
            );
        }
        // SAFETY: tgkill with a thread of this process and a signal whose handler is installed.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                std::process::id(),
                tid.as_raw(),
                libc::SIGUSR1,
            )
        };
        assert_eq!(sent, 0, "tgkill: {}", io::Error::last_os_error());
        // The signal is delivered at once to a thread asleep in write: wait for its handler.
        while INTERRUPTIONS.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        // Asleep in write again (it tried again), or finished (it gave up).
        let waits_again = wait_until_asleep_in(tid, &calls);
        checkpoint("after the signal");
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let mut drained = vec![0u8; 4000];
        reader.read_exact(&mut drained).unwrap();
        let sent = obs(join(sender, "send_message"), |()| ());
        drop(writer);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        (tid.as_raw(), waits_again, sent, rest)
    })
    .judge(
        |(tid, waits_again, sent, rest): (i32, bool, Obs<()>, Vec<u8>), seen| {
            if let Obs::Err(error) = &sent {
                panic!(
                    "a signal (its handler installed without SA_RESTART) interrupted send_message \
                     while it waited for room, and it returned Err({error}). A write that fails \
                     with EINTR has written nothing: write the whole record again"
                );
            }
            assert!(
                waits_again && asleep_at(seen.at("after the signal"), tid, &calls),
                "after the signal, send_message should be waiting in write again for room"
            );
            assert!(
                rest == frame(&[b'm'; 1000]),
                "after the interrupted send, the FIFO should hold the framed message exactly once; \
                 it held {} bytes",
                rest.len()
            );
        },
    );
}

const WRITERS: usize = 4;
const RECORDS_PER_WRITER: usize = 250;

/// Record `i` of writer `w`: a readable prefix, then bytes that depend on both, of a size
/// between 100 and MAX_MESSAGE (MAX_MESSAGE itself included).
fn record(w: usize, i: usize) -> Vec<u8> {
    let len = if i % 10 == 0 {
        MAX_MESSAGE
    } else {
        100 + (i * 997 + w * 131) % (MAX_MESSAGE - 100)
    };
    let mut r = format!("writer {w} record {i} |").into_bytes();
    r.extend((r.len()..len).map(|k| b'a' + ((k * 7 + w * 5 + i * 3) % 26) as u8));
    r
}

/// Where the test leaves the stream the writers produced, for the judge to read (too big to
/// hand back as a value).
const STREAM_FILE: &str = "stream-read-from-the-fifo";

/// Where writer `w` of the test below leaves the message of a panic.
fn writer_panic_file(w: usize) -> String {
    format!("writer-{w}-panic")
}

#[test]
fn task4_several_writer_processes_never_interleave() {
    isolated(ATOMIC_HINT, || {
        let path = test_fifo("fifo");
        // Our read end exists before the writers open theirs, so their opens do not wait.
        let mut reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let all: Vec<Vec<Vec<u8>>> = (0..WRITERS)
            .map(|w| (0..RECORDS_PER_WRITER).map(|i| record(w, i)).collect())
            .collect();
        let (ready_read, ready_write): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut writers = Vec::new();
        for (w, records) in all.iter().enumerate() {
            // SAFETY: the child only writes prepared records and ends with _exit.
            match unsafe { fork() }.expect("fork") {
                ForkResult::Child => {
                    let code = panic::catch_unwind(AssertUnwindSafe(|| {
                        let fifo = OpenOptions::new().write(true).open(&path);
                        let _ = nix::unistd::write(&ready_write, b"r");
                        let fifo = fifo.unwrap();
                        for r in records {
                            if send_message(&fifo, r).is_err() {
                                return 1;
                            }
                        }
                        0
                    }))
                    .unwrap_or_else(|payload| {
                        // Handed to the judge, so that the verdict names what went wrong.
                        let text = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let _ = fs::write(scratch_path(&writer_panic_file(w)), text);
                        101
                    });
                    // SAFETY: ends the forked writer without returning into the test harness.
                    unsafe { libc::_exit(code) }
                }
                ForkResult::Parent { child } => writers.push(child),
            }
        }
        drop(ready_write);
        // Every writer has opened the FIFO (one byte each) and is writing, so the 64 KiB buffer
        // is full and all of them wait: from here on their writes compete.
        let mut ready = [0u8; WRITERS];
        File::from(ready_read).read_exact(&mut ready).unwrap();
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let mut stream = Vec::new();
        reader.read_to_end(&mut stream).unwrap();
        fs::write(scratch_path(STREAM_FILE), &stream).expect("keep the stream for the judge");
        writers
            .into_iter()
            .map(|pid| match waitpid(pid, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => None,
                other => Some(format!("{other:?}")),
            })
            .collect::<Vec<Option<String>>>()
    })
    .judge(|writers: Vec<Option<String>>, seen| {
        let all: Vec<Vec<Vec<u8>>> = (0..WRITERS)
            .map(|w| (0..RECORDS_PER_WRITER).map(|i| record(w, i)).collect())
            .collect();
        let stream = fs::read(seen.scratch.join(STREAM_FILE)).expect("the stream the test read");
        let mut next = [0usize; WRITERS];
        let mut rest = stream.as_slice();
        let mut count = 0;
        while !rest.is_empty() {
            let Some((len, body)) = rest
                .split_first_chunk::<2>()
                .map(|(h, b)| (usize::from(u16::from_be_bytes(*h)), b))
                .filter(|(len, b)| b.len() >= *len)
            else {
                panic!(
                    "after {count} whole records the stream ends inside a record: bytes were lost"
                );
            };
            let (got, after) = body.split_at(len);
            let text = String::from_utf8_lossy(&got[..got.len().min(40)]);
            let parsed = text.strip_prefix("writer ").and_then(|t| {
                let (w, t) = t.split_once(" record ")?;
                let (i, _) = t.split_once(" |")?;
                Some((w.parse::<usize>().ok()?, i.parse::<usize>().ok()?))
            });
            let Some((w, i)) = parsed.filter(|(w, _)| *w < WRITERS) else {
                panic!(
                    "record {count} in the FIFO does not start like a record ({text:?}): another \
                     writer's bytes came in the middle of a message. Send each message in one \
                     write of at most PIPE_BUF bytes"
                );
            };
            assert!(
                i == next[w] && all[w].get(i).is_some_and(|r| got == r),
                "record {count} in the FIFO, announced as writer {w}'s record {i}, is not that \
                 record whole (or not the next one from writer {w}, which was {}): messages \
                 interleaved. Send each message in one write of at most PIPE_BUF bytes",
                next[w]
            );
            next[w] += 1;
            count += 1;
            rest = after;
        }
        for (w, status) in writers.into_iter().enumerate() {
            if let Some(other) = status {
                match fs::read_to_string(seen.scratch.join(writer_panic_file(w))) {
                    Ok(panicked) => {
                        panic!(
                            "writer {w} did not finish sending: {other}; it panicked: {panicked}"
                        )
                    }
                    Err(_) => panic!("writer {w} did not finish sending: {other}"),
                }
            }
        }
        assert_eq!(
            next, [RECORDS_PER_WRITER; WRITERS],
            "records missing: each writer sent {RECORDS_PER_WRITER}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: a server and clients that are unrelated processes.

/// The server program, started by the test; its readiness line has been read.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

/// How the server ended, as the judge gets it.
#[derive(Debug, Serialize, Deserialize)]
struct Ended {
    /// The wait status (`ExitStatus::into_raw`).
    status: i32,
    /// What it printed after the lines the test read.
    rest: String,
    stderr: String,
}

impl Ended {
    fn status(&self) -> ExitStatus {
        ExitStatus::from_raw(self.status)
    }

    /// The judge's check that the server removed its FIFO (`name` in the scratch directory).
    #[track_caller]
    fn assert_fifo_removed(&self, seen: &ipclab_support::Witness, name: &str) {
        let path = seen.scratch.join(name);
        assert!(
            kind_of(&path).is_none(),
            "the server has ended but {} is still there: remove the FIFO on the way out (the \
             Fifo guard does it when dropped). Server stderr:\n{}",
            path.display(),
            self.stderr
        );
    }
}

impl Server {
    #[track_caller]
    fn start(path: &Path) -> Server {
        let mut child = Command::new(SERVER)
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex02-fifo-server");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let expected = format!("ready {}", path.display());
        if line.trim_end() != expected {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!(
                "the server's first line should be {expected:?}, printed once the FIFO exists; \
                 it printed {line:?}. Its stderr:\n{stderr}"
            );
        }
        Server { child, stdout }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end_matches('\n').to_owned()
    }

    /// Waits for the server to end; returns its status, the rest of its output and its stderr.
    fn finish(mut self) -> Ended {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        let _ = self
            .child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr);
        rest.truncate(64 * 1024);
        stderr.truncate(64 * 1024);
        Ended {
            status: status.into_raw(),
            rest,
            stderr,
        }
    }
}

#[test]
fn task5_server_and_client_exchange_messages() {
    isolated(SERVER_HINT, || {
        let path = scratch_path("myPipe");
        let server = Server::start(&path);
        let client = Command::new(CLIENT)
            .arg(&path)
            .args(["hello", "ça va?", "a\ttab", "bye"])
            .output()
            .expect("start ex02-fifo-client");
        let ended = client.status.success().then(|| server.finish());
        (Ran::of(client), ended)
    })
    .judge(|(client, ended): (Ran, Option<Ended>), seen| {
        client.output().assert().success();
        let ended = ended.expect("the server is waited for once the client succeeded");
        ended.assert_fifo_removed(seen, "myPipe");
        let status = ended.status();
        assert!(
            status.success(),
            "the server failed ({status}): {}",
            ended.stderr
        );
        let path = seen.scratch.join("myPipe");
        let transcript = format!("ready {}\n{}", path.display(), ended.rest)
            .replace(&path.display().to_string(), "<fifo>");
        ipclab_support::assert_snapshot!("task5_transcript_of_a_fixed_exchange", transcript);
    });
}

/// What the megabytes test saw while the server ran.
#[derive(Debug, Serialize, Deserialize)]
struct Megabytes {
    server: i32,
    first: String,
    client: i32,
    ended: Ended,
}

/// A second name the test gives the server's FIFO (a hard link), so that the judge can `stat`
/// the FIFO itself after the server has removed its own name.
const FIFO_LINK: &str = "myPipe.second-name";

/// Where the test leaves the server's transcript lines, for the judge to read.
const SERVER_LINES_FILE: &str = "server-lines.txt";

#[test]
fn task5_megabytes_pass_through_and_the_fifo_stays_empty_on_disk() {
    const LINES: usize = 4096;
    isolated(SERVER_HINT, || {
        let path = scratch_path("myPipe");
        let mut server = Server::start(&path);
        fs::hard_link(&path, scratch_path(FIFO_LINK)).expect("a second name for the FIFO");
        // Our own client, held open so that the server does not see end of file between clients.
        let keeper = raw_open(&path, OFlag::O_WRONLY);
        (&keeper).write_all(&frame(b"first")).unwrap();
        let first = server.next_line();

        // The kernel's view while the server runs, read by the judge: it holds the FIFO open by
        // its name.
        checkpoint("the server runs");

        // 4 MiB from an unrelated client process.
        let input_path = scratch_path("input.txt");
        let mut input = Vec::with_capacity(LINES * 1024);
        for n in 0..LINES {
            let mut line = format!("line {n} ").into_bytes();
            line.resize(1023, b'a' + (n % 26) as u8);
            input.extend_from_slice(&line);
            input.push(b'\n');
        }
        fs::write(&input_path, &input).unwrap();
        let mut client = Command::new(CLIENT)
            .arg(&path)
            .stdin(File::open(&input_path).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex02-fifo-client");
        let lines: Vec<String> = (0..LINES).map(|_| server.next_line()).collect();
        fs::write(scratch_path(SERVER_LINES_FILE), lines.join("\n"))
            .expect("keep the transcript for the judge");
        let client_status = client.wait().unwrap();

        drop(keeper);
        Megabytes {
            server: server.pid().as_raw(),
            first,
            client: client_status.into_raw(),
            ended: server.finish(),
        }
    })
    .judge(|seen_by_test: Megabytes, seen| {
        let Megabytes {
            server,
            first,
            client,
            ended,
        } = seen_by_test;
        let path = seen.scratch.join("myPipe");
        assert_eq!(first, "message 1: first");
        let table = &seen
            .at("the server runs")
            .expect_process(server, "the server should be running")
            .fds;
        assert!(
            table
                .values()
                .any(|e| e.target == FdTarget::Path(path.clone())),
            "the server's descriptor table does not show {} open: {table:?}",
            path.display()
        );

        let transcript =
            fs::read_to_string(seen.scratch.join(SERVER_LINES_FILE)).expect("the server's lines");
        let lines: Vec<&str> = transcript.split('\n').collect();
        for n in 0..LINES {
            let line = lines.get(n).copied().unwrap_or_default();
            assert!(
                line.starts_with(&format!("message {}: line {n} ", n + 2)) && line.len() > 1023,
                "transcript line {} should be message {} (line {n} of the client), got {:?}",
                n + 2,
                n + 2,
                &line[..line.len().min(60)]
            );
        }
        let client_status = ExitStatus::from_raw(client);
        assert!(
            client_status.success(),
            "the client failed: {client_status}"
        );

        // The judge's own stat, through the second name: the same inode, after 4 MiB.
        let meta = fs::symlink_metadata(seen.scratch.join(FIFO_LINK))
            .expect("the test's second name of the FIFO");
        let (is_fifo, size, blocks) = (meta.file_type().is_fifo(), meta.size(), meta.blocks());
        assert!(is_fifo, "stat says {} is not a FIFO", path.display());
        assert_eq!(
            (size, blocks),
            (0, 0),
            "4 MiB went through the FIFO, and stat should still report size 0 and no blocks: \
             the data goes through a buffer in the kernel, never to the disk"
        );

        ended.assert_fifo_removed(seen, "myPipe");
        let status = ended.status();
        assert!(
            status.success(),
            "the server failed ({status}): {}",
            ended.stderr
        );
        assert_eq!(
            ended.rest.trim_end(),
            format!(
                "end of file after {} messages ({} bytes)",
                LINES + 1,
                LINES * 1023 + 5
            )
        );
    });
}

#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint(Signal::SIGINT)]
fn task5_server_removes_the_fifo_when_told_to_stop(#[case] signal: Signal) {
    isolated(SERVER_HINT, || {
        let path = scratch_path("myPipe");
        let server = Server::start(&path);
        // No client comes: the server must wait asleep in the kernel (poll, read, ...), not spin.
        // The judge looks at the moment the test saw it asleep, or gave up waiting.
        let patience = Duration::from_secs_f64(5.0 * ipclab_support::isolate::scale());
        let _ = procfs::wait_until_blocked(server.pid(), patience, |_| true);
        checkpoint("no client has come");
        kill(server.pid(), signal).unwrap();
        (server.pid().as_raw(), server.finish())
    })
    .judge(|(pid, ended): (i32, Ended), seen| {
        let waiting = seen.at("no client has come");
        let server = waiting.expect_process(pid, "the server should be waiting for clients");
        if server.threads.iter().all(|t| t.blocked.is_none()) {
            let path = seen.scratch.join("myPipe");
            let nonblocking: Vec<String> = server
                .fds
                .iter()
                .filter(|(_, e)| e.target == FdTarget::Path(path.clone()))
                .filter(|(_, e)| e.flags & libc::O_NONBLOCK != 0)
                .map(|(fd, e)| format!("fd {fd} ({}, O_NONBLOCK)", access_mode_name(e.flags)))
                .collect();
            let why = if nonblocking.is_empty() {
                "is it polling in a loop?".to_owned()
            } else {
                format!(
                    "its descriptor of the FIFO is still O_NONBLOCK ({}), so every read of the \
                     empty FIFO fails with EAGAIN at once and the server spins. Clear O_NONBLOCK \
                     after opening (as try_open_reader does), or sleep in poll before each read",
                    nonblocking.join(", ")
                )
            };
            panic!(
                "no client had come, and the server was running instead of sleeping in the \
                 kernel (poll, read, ...) while it waited: {why}"
            );
        }
        ended.assert_fifo_removed(seen, "myPipe");
        let status = ended.status();
        assert!(
            status.success(),
            "{signal} ended the server ({status}) instead of making run_server return: block \
             SIGTERM and SIGINT before calling `ready` and wait for them with the FIFO (a \
             signalfd and poll). Stderr:\n{}",
            ended.stderr
        );
        assert_eq!(
            ended.rest.trim_end(),
            format!("stopped by {signal} after 0 messages (0 bytes)")
        );
    });
}

const EXISTING_PATH_HINT: &str = "the server went on although the path was taken by a \
     regular file: run_server must fail at once (create_fifo's Error::PathExists), before it \
     opens anything or prints its readiness line, and leave the file alone";

/// What the test saw of a server started on a path that is taken.
#[derive(Debug, Serialize, Deserialize)]
struct OnATakenPath {
    /// The test's own descriptor of the file that was there: the judge asks the kernel whether
    /// that file is still at its path.
    held: i32,
    /// The server's first line: empty if it failed at once.
    first: String,
    ran: Ran,
}

#[test]
fn task5_server_refuses_a_path_that_exists() {
    isolated(EXISTING_PATH_HINT, || {
        let path = scratch_path("notes.txt");
        fs::write(&path, "keep me").unwrap();
        // Held open by the test: if the server unlinks the file (to put its FIFO there), the
        // kernel shows this descriptor as "(deleted)".
        let held = File::open(&path).unwrap();
        let mut server = Command::new(SERVER)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex02-fifo-server");
        // A server that refuses prints nothing and exits (end of file here); one that went on
        // prints its readiness line and waits for clients.
        let mut stdout = BufReader::new(server.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        checkpoint("the server has answered");
        if !first.is_empty() {
            let _ = kill(Pid::from_raw(server.id() as i32), Signal::SIGTERM);
        }
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        let mut stderr = Vec::new();
        let _ = server.stderr.take().unwrap().read_to_end(&mut stderr);
        let status = server.wait().unwrap();
        OnATakenPath {
            held: held.as_raw_fd(),
            first,
            ran: Ran::of(Output {
                status,
                stdout: rest,
                stderr,
            }),
        }
    })
    .judge(|server: OnATakenPath, seen| {
        let path = seen.scratch.join("notes.txt");
        let target = seen
            .at("the server has answered")
            .test_process()
            .fds
            .get(&server.held)
            .map(|e| e.target.clone());
        assert_eq!(
            target,
            Some(FdTarget::Path(path.clone())),
            "the kernel shows the file that was at {} as {target:?}: the server removed (or \
             replaced) a file it did not create, to put its FIFO there. An existing path must make \
             the server fail, untouched: create_fifo's Error::PathExists",
            path.display()
        );
        assert!(
            server.first.is_empty(),
            "the path was taken, but the server went on and printed {:?}: run_server must fail \
             at once with create_fifo's Error::PathExists",
            server.first
        );
        server
            .ran
            .output()
            .assert()
            .failure()
            .stderr(predicate::str::contains("already exists as a regular file"));
        assert_eq!(
            fs::read_to_string(&path).ok().as_deref(),
            Some("keep me"),
            "the server must leave a file it did not create alone"
        );
    });
}

#[test]
fn task5_client_without_a_server_fails_at_once_with_no_reader() {
    isolated(SERVER_HINT, || {
        let path = test_fifo("fifo");
        Ran::of(
            Command::new(CLIENT)
                .arg(&path)
                .arg("anyone there?")
                .output()
                .expect("start ex02-fifo-client"),
        )
    })
    .judge(|client: Ran, _| {
        client
            .output()
            .assert()
            .failure()
            .stderr(predicate::str::contains("no reader"));
    });
}

#[test]
fn task5_the_client_returns_how_many_messages_it_sent() {
    isolated(SERVER_HINT, || {
        let path = test_fifo("fifo");
        // The test is the server: a reader that never waits, and reads once the client is done.
        let mut reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let sent = obs(run_client(&path, ["one", "two", "three"]), |n| n);
        let mut arrived = Vec::new();
        // Every writer has closed the FIFO: the reads end at end of file, not EAGAIN.
        reader.read_to_end(&mut arrived).unwrap();
        (sent, arrived)
    })
    .judge(|(sent, arrived): (Obs<usize>, Vec<u8>), _| {
        let expected: Vec<u8> = ["one", "two", "three"]
            .iter()
            .flat_map(|m| frame(m.as_bytes()))
            .collect();
        assert!(
            arrived == expected,
            "run_client with three messages should send them framed, in order; the FIFO held \
             {arrived:?}"
        );
        assert_eq!(
            sent,
            Obs::Ok(3),
            "run_client sent three messages, so it should return Ok(3)"
        );
    });
}

#[test]
fn task5_the_server_gives_back_the_signal_mask_it_found() {
    isolated(SERVER_HINT, || {
        let tid = gettid();
        checkpoint("before the server");
        let path = scratch_path("server-fifo");
        let mut client = None;
        let mut transcript = Vec::new();
        let served = run_server(
            &path,
            0o600,
            |at| {
                // The server holds the FIFO open for reading by now: this open does not wait.
                let at = at.to_owned();
                client = Some(thread::spawn(move || {
                    let mut writer = raw_open(&at, OFlag::O_WRONLY);
                    writer.write_all(&frame(b"hello")).unwrap();
                }));
            },
            &mut transcript,
        );
        if let Some(client) = client {
            join(client, "the test's client");
        }
        checkpoint("after the server");
        (tid.as_raw(), obs(served, |s| s.messages))
    })
    .judge(|(tid, served): (i32, Obs<usize>), seen| {
        assert_eq!(
            served,
            Obs::Ok(1),
            "run_server should serve the one message and return at end of file"
        );
        let blocked = |label: &str| {
            seen.at(label)
                .test_process()
                .threads
                .iter()
                .find(|t| t.tid == tid)
                .map(|t| t.signals.blocked)
                .unwrap_or_else(|| panic!("the thread that called run_server is gone at {label:?}"))
        };
        let (before, after) = (blocked("before the server"), blocked("after the server"));
        let left: Vec<&str> = [(Signal::SIGTERM, "SIGTERM"), (Signal::SIGINT, "SIGINT")]
            .into_iter()
            .filter(|(s, _)| after.contains(*s) && !before.contains(*s))
            .map(|(_, name)| name)
            .collect();
        assert!(
            left.is_empty() && after == before,
            "run_server returned with its caller's signal mask changed ({} still blocked): it \
             blocks SIGTERM and SIGINT to wait for them, and must give back the mask it found \
             (pthread_sigmask's old set) before it returns",
            if left.is_empty() {
                "other signals".to_owned()
            } else {
                left.join(" and ")
            }
        );
    });
}
