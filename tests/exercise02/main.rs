//! The graded suite of exercise 02: named pipes (`mkfifo`).
//!
//! Each test grades one behaviour of one task (`taskN_…`). Tests that open FIFOs, fork, start the
//! server and client programs or change the umask run in a process of their own with a deadline
//! (`isolated`): opening a FIFO blocks until the other end is opened, and a hang must become a
//! failing test with a hint. The kernel is the witness: `stat` says what the file is and how big,
//! `/proc` says who holds it open and where a thread is waiting, `FIONREAD` says how many bytes
//! sit in the pipe buffer.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use assert_cmd::prelude::*;
use exercise02::*;
use ipclab_support::data::{payload, PIPE_BUF};
use ipclab_support::isolated;
use ipclab_support::procfs::{self, FdSnapshot, FdTarget};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{lstat, umask, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, gettid, mkfifo, ForkResult, Pid};
use predicates::prelude::*;
use rstest::rstest;
use tempfile::TempDir;

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

/// A FIFO made by the test (not by the code under test) in a private temporary directory. The
/// directory, FIFO included, is removed when the `TempDir` is dropped, even after a failure.
fn test_fifo() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let path = dir.path().join("fifo");
    mkfifo(&path, Mode::from_bits_truncate(0o600)).expect("mkfifo for the test");
    (dir, path)
}

/// Opens the FIFO the way the test needs it, independently of the code under test.
fn raw_open(path: &Path, flags: OFlag) -> File {
    File::from(
        nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
            .unwrap_or_else(|e| panic!("the test could not open {}: {e}", path.display())),
    )
}

/// Bytes waiting in the pipe buffer behind `fd` (the FIONREAD ioctl).
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

/// The `flags:` line of `/proc/self/fdinfo/<fd>`: how the descriptor was opened.
fn open_flags(file: &File) -> i32 {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))
        .expect("read /proc/self/fdinfo");
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|octal| i32::from_str_radix(octal.trim(), 8).ok())
        .expect("a flags line in fdinfo")
}

fn access_mode_name(flags: i32) -> &'static str {
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        _ => "O_RDWR",
    }
}

/// Waits until thread `tid` sleeps in one of `calls`, as the kernel reports it. Returns false if
/// the thread finished first (so it never waited).
fn wait_until_asleep_in(tid: Pid, calls: &[libc::c_long]) -> bool {
    procfs::wait_until_blocked(tid, Duration::from_secs(5), |c| calls.contains(&c.number)).is_ok()
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
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("myPipe");
        let fifo = create_fifo(&path, mode).expect("create_fifo returned an error");
        let st = lstat(&path).expect("nothing was created at the path");
        assert_eq!(
            SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()),
            SFlag::S_IFIFO,
            "stat says {} is not a FIFO (st_mode {:o}): create it with mkfifo",
            path.display(),
            st.st_mode
        );
        assert_eq!(
            st.st_mode & 0o7777,
            mode,
            "the FIFO's permissions are {:o}, but {mode:o} was asked for. mkfifo's mode is \
             masked by the umask (077 here): set the exact permissions afterwards with chmod",
            st.st_mode & 0o7777
        );
        assert_eq!(st.st_size, 0, "a new FIFO has size 0");
        assert_eq!(
            fifo.path(),
            path,
            "Fifo::path must return where the FIFO is"
        );
    });
}

#[derive(Debug, Clone, Copy)]
enum Existing {
    RegularFile,
    Directory,
    DanglingSymlink,
    Fifo,
}

#[rstest]
#[case::regular_file(Existing::RegularFile, FileKind::RegularFile)]
#[case::directory(Existing::Directory, FileKind::Directory)]
#[case::dangling_symlink(Existing::DanglingSymlink, FileKind::Symlink)]
#[case::fifo(Existing::Fifo, FileKind::Fifo)]
fn task1_existing_path_is_a_clear_error_and_stays_untouched(
    #[case] existing: Existing,
    #[case] kind: FileKind,
) {
    isolated(CREATE_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("taken");
        match existing {
            Existing::RegularFile => fs::write(&path, "precious").unwrap(),
            Existing::Directory => fs::create_dir(&path).unwrap(),
            Existing::DanglingSymlink => std::os::unix::fs::symlink("nowhere", &path).unwrap(),
            Existing::Fifo => mkfifo(&path, Mode::from_bits_truncate(0o600)).unwrap(),
        }
        let before = fs::symlink_metadata(&path).unwrap();
        match create_fifo(&path, 0o600) {
            Err(Error::PathExists { path: p, kind: k }) => {
                assert_eq!(p, path, "PathExists must name the path");
                assert_eq!(k, kind, "PathExists must say what the path is");
            }
            other => panic!(
                "{} exists as {kind}: expected Err(Error::PathExists {{ path, kind: \
                 FileKind::{kind:?} }}), got {other:?}. mkfifo fails with EEXIST; lstat (not \
                 stat: it would follow a symbolic link) says what is there",
                path.display()
            ),
        }
        let after = fs::symlink_metadata(&path).unwrap_or_else(|_| {
            panic!("create_fifo removed the {kind} that was already at the path: it must not touch what it did not create")
        });
        assert_eq!(
            (after.ino(), after.file_type()),
            (before.ino(), before.file_type()),
            "the {kind} at the path was replaced: create_fifo must not touch what it did not create"
        );
        if let Existing::RegularFile = existing {
            assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        }
    });
}

#[rstest]
#[case::setuid(0o4600)]
#[case::sticky(0o1666)]
#[case::file_type_bits(0o10600)]
fn task1_mode_outside_the_permission_bits_is_rejected(#[case] mode: u32) {
    isolated(CREATE_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("fifo");
        match create_fifo(&path, mode) {
            Err(Error::InvalidMode { mode: m }) => assert_eq!(m, mode),
            other => panic!(
                "mode {mode:#o} has bits outside 0o777: expected Err(Error::InvalidMode {{ mode: \
                 {mode:#o} }}), got {other:?}"
            ),
        }
        assert!(
            kind_of(&path).is_none(),
            "create_fifo rejected the mode but left something at the path: check before mkfifo"
        );
    });
}

#[test]
fn task1_error_for_a_missing_directory_names_the_path() {
    isolated(CREATE_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("no-such-directory").join("fifo");
        match create_fifo(&path, 0o600) {
            Err(e) => assert!(
                e.to_string().contains(&path.display().to_string()),
                "the error should name the path {}, so that the user knows what failed; it says: {e}",
                path.display()
            ),
            Ok(fifo) => panic!("created {:?} in a directory that does not exist?", fifo.path()),
        }
    });
}

#[test]
fn task1_dropping_the_guard_removes_the_fifo() {
    isolated(CREATE_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("fifo");
        let fifo = create_fifo(&path, 0o600).expect("create_fifo returned an error");
        assert!(
            kind_of(&path).is_some_and(|k| k.is_fifo()),
            "create_fifo returned Ok but there is no FIFO at {}",
            path.display()
        );
        drop(fifo);
        assert!(
            kind_of(&path).is_none(),
            "the FIFO is still there after its guard was dropped: impl Drop for Fifo must unlink it"
        );

        // Also when a panic unwinds past the guard (in a thread of its own, so that the panic
        // is not this test's).
        let unwound = thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _fifo = create_fifo(&path, 0o600).expect("create_fifo returned an error");
                    panic!("a panic while the FIFO exists (on purpose)");
                })
                .join()
        });
        assert!(unwound.is_err());
        assert!(
            kind_of(&path).is_none(),
            "the FIFO is still there after a panic unwound past its guard"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: the rules of open() on a FIFO.

#[test]
fn task2_nonblocking_writer_without_a_reader_gets_no_reader() {
    isolated(OPEN_HINT, || {
        let (_dir, path) = test_fifo();
        let before = FdSnapshot::take();
        match try_open_writer(&path) {
            Err(Error::NoReader { path: p }) => assert_eq!(p, path, "NoReader must name the path"),
            other => panic!(
                "nobody has the FIFO open for reading, so open(O_WRONLY | O_NONBLOCK) fails with \
                 ENXIO, to be reported as Err(Error::NoReader {{ path }}); got {other:?}"
            ),
        }
        before.assert_no_leaks("A failed open leaves nothing open.");
    });
}

#[test]
fn task2_nonblocking_writer_with_a_reader_opens_and_then_blocks_normally() {
    isolated(OPEN_HINT, || {
        let (_dir, path) = test_fifo();
        let mut reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let mut writer = try_open_writer(&path).expect("try_open_writer returned an error");
        let flags = open_flags(&writer);
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
        writer.write_all(b"through the kernel").unwrap();
        let mut got = [0u8; 18];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through the kernel");
    });
}

#[test]
fn task2_nonblocking_reader_opens_at_once_without_a_writer() {
    isolated(OPEN_HINT, || {
        let (_dir, path) = test_fifo();
        let reader = try_open_reader(&path).expect("try_open_reader returned an error");
        let flags = open_flags(&reader);
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
            procfs::own_fd_table()
                .get(&reader.as_raw_fd())
                .is_some_and(|t| *t == FdTarget::Path(path.clone())),
            "the kernel does not show the returned descriptor as the FIFO {}",
            path.display()
        );
        // The kernel now counts a reader: a non-blocking open for writing succeeds.
        let writer = nix::fcntl::open(&path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty());
        assert!(
            writer.is_ok(),
            "with the reader open, open(O_WRONLY | O_NONBLOCK) should succeed, but failed: {writer:?}"
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
    isolated(OPEN_HINT, || {
        let (_dir, path) = test_fifo();
        let (tid_tx, tid_rx) = mpsc::channel();
        let opener = {
            let path = path.clone();
            thread::spawn(move || -> Result<(i32, Vec<u8>)> {
                tid_tx.send(gettid()).unwrap();
                match side {
                    Side::Writer => {
                        let mut fifo = open_writer(&path)?;
                        fifo.write_all(b"sent once a reader came").unwrap();
                        Ok((open_flags(&fifo), Vec::new()))
                    }
                    Side::Reader => {
                        let mut fifo = open_reader(&path)?;
                        let mut got = Vec::new();
                        fifo.read_to_end(&mut got).unwrap();
                        Ok((open_flags(&fifo), got))
                    }
                }
            })
        };
        let tid = tid_rx.recv().unwrap();
        let (function, other_end) = match side {
            Side::Writer => ("open_writer", "reading"),
            Side::Reader => ("open_reader", "writing"),
        };
        let calls = [libc::SYS_openat, libc::SYS_open];
        if !wait_until_asleep_in(tid, &calls) {
            let result = join(opener, function);
            panic!(
                "{function} returned before any process had opened the FIFO for {other_end} \
                 (it returned {result:?}). A blocking open of a FIFO waits for the other end: \
                 open it without O_NONBLOCK, and not O_RDWR (which never waits)."
            );
        }
        // The kernel shows the thread asleep in open(). Now open the other end.
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
        let (flags, read_by_opener) =
            join(opener, function).unwrap_or_else(|e| panic!("{function} returned an error: {e}"));
        match side {
            Side::Writer => {
                assert_eq!(
                    flags & libc::O_ACCMODE,
                    libc::O_WRONLY,
                    "open_writer must open O_WRONLY"
                );
                assert_eq!(
                    String::from_utf8_lossy(&received),
                    "sent once a reader came"
                );
            }
            Side::Reader => {
                assert_eq!(
                    flags & libc::O_ACCMODE,
                    libc::O_RDONLY,
                    "open_reader must open O_RDONLY"
                );
                assert_eq!(
                    String::from_utf8_lossy(&read_by_opener),
                    "sent once a writer came"
                );
            }
        }
    });
}

/// One of the four open helpers.
type OpenFn = fn(&Path) -> Result<File>;

#[test]
fn task2_opening_something_else_is_not_a_fifo() {
    isolated(OPEN_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let file = dir.path().join("plain.txt");
        fs::write(&file, "not a pipe").unwrap();
        let before = FdSnapshot::take();
        let opens: [(&str, OpenFn); 4] = [
            ("open_reader", |p| open_reader(p)),
            ("open_writer", |p| open_writer(p)),
            ("try_open_reader", |p| try_open_reader(p)),
            ("try_open_writer", |p| try_open_writer(p)),
        ];
        for (name, open) in opens {
            match open(&file) {
                Err(Error::NotAFifo { path, kind }) => {
                    assert_eq!(path, file, "{name}: NotAFifo must name the path");
                    assert_eq!(
                        kind,
                        FileKind::RegularFile,
                        "{name}: NotAFifo must say what it is"
                    );
                }
                other => panic!(
                    "{name} on a regular file: expected Err(Error::NotAFifo {{ path, kind: \
                     FileKind::RegularFile }}), got {other:?}. After open, fstat says what was \
                     opened"
                ),
            }
        }
        before.assert_no_leaks(
            "A descriptor opened on something that is not a FIFO must be closed again.",
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), "not a pipe");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: reading framed messages.

/// A reader that hands out at most `step` bytes per read, after an EINTR each time, as a pipe
/// does when its writer writes in pieces and signals arrive.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    step: usize,
    interrupt_next: bool,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt_next = !self.interrupt_next;
        if !self.interrupt_next {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::a_line("hello, fifo".len())]
#[case::longest(MAX_MESSAGE)]
fn task3_messages_are_received_whole_and_in_order_then_none(#[case] len: usize) {
    isolated(NEVER_RETURNED_HINT, || {
        let messages = [payload(len), b"next".to_vec(), payload(len)];
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut reader = stream.as_slice();
        for (i, expected) in messages.iter().enumerate() {
            match receive_message(&mut reader) {
                Ok(Some(got)) => assert!(
                    got == *expected,
                    "message {i}: got {} bytes, expected the {} bytes that were sent",
                    got.len(),
                    expected.len()
                ),
                other => panic!(
                    "message {i} ({} bytes): expected Ok(Some(..)), got {other:?}",
                    expected.len()
                ),
            }
        }
        match receive_message(&mut reader) {
            Ok(None) => {}
            other => panic!("at end of file between messages, expected Ok(None), got {other:?}"),
        }
    });
}

#[rstest]
#[case::one_byte_per_read(1)]
#[case::three_bytes_per_read(3)]
#[case::thousand_bytes_per_read(1000)]
fn task3_partial_and_interrupted_reads_are_continued(#[case] step: usize) {
    isolated(NEVER_RETURNED_HINT, || {
        let messages = [
            payload(MAX_MESSAGE),
            b"short".to_vec(),
            Vec::new(),
            payload(2000),
        ];
        let data: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut reader = Trickle {
            data,
            at: 0,
            step,
            interrupt_next: false,
        };
        for (i, expected) in messages.iter().enumerate() {
            match receive_message(&mut reader) {
                Ok(Some(got)) => assert!(
                    got == *expected,
                    "message {i}: got {} bytes, expected {}. A read may return fewer bytes than asked \
                     for: keep reading until the header, then the body, is complete",
                    got.len(),
                    expected.len()
                ),
                other => panic!(
                    "message {i}, delivered {step} bytes per read with EINTR in between: expected \
                     Ok(Some(..)), got {other:?}. Retry a read that fails with ErrorKind::Interrupted"
                ),
            }
        }
        assert!(
            matches!(receive_message(&mut reader), Ok(None)),
            "expected Ok(None) after the last message"
        );
    });
}

#[rstest]
#[case::inside_the_header(vec![0x00])]
#[case::inside_the_body([&100u16.to_be_bytes()[..], &[7u8; 10][..]].concat())]
fn task3_end_of_file_inside_a_message_is_truncated(#[case] stream: Vec<u8>) {
    isolated(NEVER_RETURNED_HINT, || {
        let mut reader = stream.as_slice();
        match receive_message(&mut reader) {
            Err(Error::TruncatedMessage { .. }) => {}
            other => panic!(
                "the stream ends inside a message ({} bytes: {stream:?}): expected \
                 Err(Error::TruncatedMessage {{ .. }}), got {other:?}. Only end of file before a \
                 header's first byte is the clean end, Ok(None)",
                stream.len()
            ),
        }
    });
}

#[test]
fn task3_header_announcing_more_than_max_message_is_rejected() {
    isolated(NEVER_RETURNED_HINT, || {
        let len = MAX_MESSAGE + 1;
        let stream = [&(len as u16).to_be_bytes()[..], &vec![1u8; len][..]].concat();
        let mut reader = stream.as_slice();
        match receive_message(&mut reader) {
            Err(Error::MessageTooLong { len: l, max }) => {
                assert_eq!((l, max), (len, MAX_MESSAGE));
            }
            other => panic!(
                "a header announcing {len} bytes (more than MAX_MESSAGE = {MAX_MESSAGE}) breaks the \
                 protocol: expected Err(Error::MessageTooLong {{ len: {len}, max: {MAX_MESSAGE} }}), \
                 got {other:?}"
            ),
        }
    });
}

#[test]
fn task3_a_message_split_across_writes_is_reassembled_from_a_fifo() {
    isolated(FRAMING_HINT, || {
        let (_dir, path) = test_fifo();
        let reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let mut writer = raw_open(&path, OFlag::O_WRONLY);
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let peek = reader.try_clone().unwrap();
        let message = payload(3000);
        let record = frame(&message);
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
        match join(receiver, "receive_message") {
            Ok(Some(got)) => assert!(
                got == message,
                "got {} bytes, expected the 3000 sent in two writes",
                got.len()
            ),
            other => panic!(
                "a message written in two pieces: expected Ok(Some(3000 bytes)), got {other:?}. \
                 One read returned only the first piece: keep reading until the message is \
                 complete"
            ),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: sending messages atomically; several writers.

/// An open FIFO with the test holding both ends: messages can be sent without blocking.
fn fifo_pair() -> (TempDir, File, File) {
    let (dir, path) = test_fifo();
    let reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
    let writer = raw_open(&path, OFlag::O_WRONLY);
    (dir, reader, writer)
}

#[test]
fn task4_longest_message_fills_exactly_pipe_buf() {
    isolated(ATOMIC_HINT, || {
        let (_dir, mut reader, writer) = fifo_pair();
        let message = payload(MAX_MESSAGE);
        send_message(&writer, &message).expect("send_message returned an error");
        assert_eq!(
            unread_bytes(&reader),
            PIPE_BUF,
            "a message of MAX_MESSAGE bytes plus its header should put exactly PIPE_BUF bytes \
             into the FIFO"
        );
        let mut record = vec![0u8; PIPE_BUF];
        reader.read_exact(&mut record).unwrap();
        assert!(
            record == frame(&message),
            "the bytes in the FIFO are not the 2-byte big-endian length followed by the message"
        );
    });
}

#[test]
fn task4_too_long_message_is_refused_and_nothing_is_written() {
    isolated(ATOMIC_HINT, || {
        let (_dir, reader, writer) = fifo_pair();
        match send_message(&writer, &payload(MAX_MESSAGE + 1)) {
            Err(Error::MessageTooLong { len, max }) => {
                assert_eq!((len, max), (MAX_MESSAGE + 1, MAX_MESSAGE))
            }
            other => panic!(
                "a message of {} bytes cannot go in one atomic write: expected \
                 Err(Error::MessageTooLong {{ len: {}, max: {MAX_MESSAGE} }}), got {other:?}",
                MAX_MESSAGE + 1,
                MAX_MESSAGE + 1
            ),
        }
        assert_eq!(
            unread_bytes(&reader),
            0,
            "send_message refused the message but wrote bytes into the FIFO anyway: check the \
             length before writing anything"
        );
    });
}

#[test]
fn task4_a_message_is_one_write_header_and_body_together() {
    isolated(ATOMIC_HINT, || {
        let (_dir, mut reader, writer) = fifo_pair();
        // Shrink the FIFO to one page and fill most of it: a 1002-byte record no longer fits.
        nix::fcntl::fcntl(&writer, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).expect("F_SETPIPE_SZ");
        let filler = vec![b'.'; 4000];
        (&writer).write_all(&filler).unwrap();
        let writer = std::sync::Arc::new(writer);
        let (tid_tx, tid_rx) = mpsc::channel();
        let sender = {
            let writer = writer.clone();
            thread::spawn(move || {
                tid_tx.send(gettid()).unwrap();
                send_message(&writer, &[b'm'; 1000])
            })
        };
        let tid = tid_rx.recv().unwrap();
        let asleep = wait_until_asleep_in(tid, &[libc::SYS_write, libc::SYS_writev]);
        let in_fifo = unread_bytes(&reader);
        if !asleep {
            let sent = join(sender, "send_message");
            panic!(
                "send_message returned ({sent:?}) although the FIFO had room for only 96 more \
                 bytes: a blocking write must wait for room for the whole record"
            );
        }
        // (If this fails, the sender is left waiting: the isolated process ends it.)
        assert_eq!(
            in_fifo,
            4000,
            "while send_message waited for room, {} bytes of its message were already in the \
             FIFO. Header and body must go in ONE write: the kernel delivers a write of at most \
             PIPE_BUF bytes all at once or not at all, so no other writer's bytes can come \
             between them",
            in_fifo.saturating_sub(4000)
        );
        // Make room: the sender's write completes.
        nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let mut drained = vec![0u8; 4000];
        reader.read_exact(&mut drained).unwrap();
        let sent = join(sender, "send_message");
        sent.expect("send_message returned an error");
        let mut record = vec![0u8; 1002];
        reader.read_exact(&mut record).unwrap();
        assert!(
            record == frame(&[b'm'; 1000]),
            "the record in the FIFO is not the framed message"
        );
    });
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

#[test]
fn task4_several_writer_processes_never_interleave() {
    isolated(ATOMIC_HINT, || {
        let (_dir, path) = test_fifo();
        // Our read end exists before the writers open theirs, so their opens do not wait.
        let mut reader = raw_open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK);
        let all: Vec<Vec<Vec<u8>>> = (0..WRITERS)
            .map(|w| (0..RECORDS_PER_WRITER).map(|i| record(w, i)).collect())
            .collect();
        let (ready_read, ready_write): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let mut writers = Vec::new();
        for records in &all {
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
                    .unwrap_or(101);
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

        let mut next = [0usize; WRITERS];
        let mut stream = Vec::new();
        reader.read_to_end(&mut stream).unwrap();
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
                i == next[w] && got == all[w][i],
                "record {count} in the FIFO, announced as writer {w}'s record {i}, is not that \
                 record whole (or not the next one from writer {w}, which was {}): messages \
                 interleaved. Send each message in one write of at most PIPE_BUF bytes",
                next[w]
            );
            next[w] += 1;
            count += 1;
            rest = after;
        }
        for (w, pid) in writers.into_iter().enumerate() {
            match waitpid(pid, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => {}
                other => panic!("writer {w} did not finish sending: {other:?}"),
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
    path: PathBuf,
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
        Server {
            child,
            stdout,
            path: path.to_owned(),
        }
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
    fn finish(mut self) -> (ExitStatus, String, String) {
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
        assert!(
            kind_of(&self.path).is_none(),
            "the server has ended but {} is still there: remove the FIFO on the way out (the \
             Fifo guard does it when dropped). Server stderr:\n{stderr}",
            self.path.display()
        );
        (status, rest, stderr)
    }
}

#[test]
fn task5_server_and_client_exchange_messages() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("myPipe");
        let server = Server::start(&path);
        Command::new(CLIENT)
            .arg(&path)
            .args(["hello", "ça va?", "a\ttab", "bye"])
            .assert()
            .success();
        let (status, rest, stderr) = server.finish();
        assert!(status.success(), "the server failed ({status}): {stderr}");
        let transcript = format!("ready {}\n{rest}", path.display())
            .replace(&path.display().to_string(), "<fifo>");
        insta::assert_snapshot!("task5_transcript_of_a_fixed_exchange", transcript);
    });
}

#[test]
fn task5_megabytes_pass_through_and_the_fifo_stays_empty_on_disk() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("myPipe");
        let mut server = Server::start(&path);
        // Our own client, held open so that the server does not see end of file between clients.
        let keeper = raw_open(&path, OFlag::O_WRONLY);
        (&keeper).write_all(&frame(b"first")).unwrap();
        assert_eq!(server.next_line(), "message 1: first");

        // The kernel's view while the server runs: it holds the FIFO open by its name.
        let table = procfs::fd_table(server.pid()).expect("read the server's /proc/<pid>/fd");
        assert!(
            table.values().any(|t| *t == FdTarget::Path(path.clone())),
            "the server's descriptor table does not show {} open: {table:?}",
            path.display()
        );

        // 4 MiB from an unrelated client process.
        const LINES: usize = 4096;
        let input_path = dir.path().join("input.txt");
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
        for n in 0..LINES {
            let line = server.next_line();
            assert!(
                line.starts_with(&format!("message {}: line {n} ", n + 2)) && line.len() > 1023,
                "transcript line {} should be message {} (line {n} of the client), got {:?}",
                n + 2,
                n + 2,
                &line[..line.len().min(60)]
            );
        }
        let client_status = client.wait().unwrap();
        assert!(
            client_status.success(),
            "the client failed: {client_status}"
        );

        let meta = fs::symlink_metadata(&path).expect("the FIFO vanished while the server runs");
        assert!(
            meta.file_type().is_fifo(),
            "stat says {} is not a FIFO",
            path.display()
        );
        assert_eq!(
            (meta.size(), meta.blocks()),
            (0, 0),
            "4 MiB went through the FIFO, and stat should still report size 0 and no blocks: \
             the data goes through a buffer in the kernel, never to the disk"
        );

        drop(keeper);
        let (status, rest, stderr) = server.finish();
        assert!(status.success(), "the server failed ({status}): {stderr}");
        assert_eq!(
            rest.trim_end(),
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
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("myPipe");
        let server = Server::start(&path);
        kill(server.pid(), signal).unwrap();
        let (status, rest, stderr) = server.finish();
        assert!(
            status.success(),
            "{signal} ended the server ({status}) instead of making run_server return: block \
             SIGTERM and SIGINT before calling `ready` and wait for them with the FIFO (a \
             signalfd and poll). Stderr:\n{stderr}"
        );
        assert_eq!(
            rest.trim_end(),
            format!("stopped by {signal} after 0 messages (0 bytes)")
        );
    });
}

#[test]
fn task5_server_refuses_a_path_that_exists() {
    isolated(SERVER_HINT, || {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("notes.txt");
        fs::write(&path, "keep me").unwrap();
        Command::new(SERVER)
            .arg(&path)
            .assert()
            .failure()
            .stderr(predicate::str::contains("already exists as a regular file"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "keep me",
            "the server must leave a file it did not create alone"
        );
    });
}

#[test]
fn task5_client_without_a_server_fails_at_once_with_no_reader() {
    isolated(SERVER_HINT, || {
        let (_dir, path) = test_fifo();
        Command::new(CLIENT)
            .arg(&path)
            .arg("anyone there?")
            .assert()
            .failure()
            .stderr(predicate::str::contains("no reader"));
    });
}
