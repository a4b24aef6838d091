//! Exercise 02: named pipes (`mkfifo`) — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 5) and the guard's `Drop`. The task
// STARTER: //! statement is in `README.md` beside this file; `cargo ipclab hint 2` gives hints;
// STARTER: //! `cargo test -p exercise02` grades your work. The two programs the tests start (the server and
// STARTER: //! the client, in `tests/exercise02/bin/`) only call `run_server` and `run_client`.
//!
//! A FIFO is a pipe with a name. The name is an entry in the file system, so processes that
//! share no ancestry can find it; the data never touches the disk: it goes through a buffer in
//! the kernel exactly as with an anonymous pipe, and the file's size stays 0.
//!
//! Messages travel framed: a 2-byte big-endian length ([`HEADER_LEN`]), then that many bytes,
//! header and body written together in **one** `write`. A write of at most `PIPE_BUF` bytes to a
//! pipe is atomic, so messages from several writers never interleave.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag, AT_FDCWD};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::{fchmodat, FchmodatFlags, Mode};
use nix::unistd::mkfifo;

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
#[path = "../../../exercises/exercise02/src/given.rs"]
mod given;
pub use given::*;

impl Drop for Fifo {
    fn drop(&mut self) {
        // BEGIN SOLUTION Task 1: remove the FIFO's name from the file system (unlink), ignoring errors: a drop must not fail
        // Somebody may have removed our FIFO and put something else there: leave that alone.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = nix::unistd::unlink(&self.path);
            }
        }
        // END SOLUTION
    }
}

/// Task 1: create a FIFO at `path` whose permissions are exactly `mode` (whatever the umask),
/// and return a guard that removes it when dropped.
///
/// Errors: [`Error::InvalidMode`] if `mode` has bits outside `0o777`; [`Error::PathExists`] if
/// `path` exists (as anything, a FIFO included), leaving it untouched; [`Error::Path`] for other
/// failures.
pub fn create_fifo(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
    // BEGIN SOLUTION Task 1: reject modes outside 0o777; mkfifo (EEXIST becomes PathExists with lstat's kind); then chmod to the exact mode, which the umask did not touch
    let path = path.as_ref();
    if mode & !0o777 != 0 {
        return Err(Error::InvalidMode { mode });
    }
    let permissions = Mode::from_bits_truncate(mode as libc::mode_t);
    match mkfifo(path, permissions) {
        Ok(()) => {}
        // mkfifo itself tells us the path is taken: no check-then-create race.
        Err(Errno::EEXIST) => {
            return Err(Error::PathExists {
                path: path.to_owned(),
                kind: kind_of(path),
            })
        }
        Err(errno) => return Err(path_error("mkfifo", path)(errno)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| path_error("stat", path)(errno_of(&e)));
    let fifo = match meta {
        Ok(meta) => Fifo {
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        },
        Err(e) => {
            let _ = nix::unistd::unlink(path);
            return Err(e);
        }
    };
    // mkfifo's mode is masked by the umask (0o022 typically turns 0o666 into 0o644); chmod is
    // not. If this fails, dropping the guard removes the FIFO again.
    fchmodat(AT_FDCWD, path, permissions, FchmodatFlags::FollowSymlink)
        .map_err(path_error("chmod", path))?;
    Ok(fifo)
    // END SOLUTION
}

/// Task 2: open the FIFO for reading, waiting until some process opens it for writing.
pub fn open_reader(path: impl AsRef<Path>) -> Result<File> {
    // BEGIN SOLUTION Task 2: open the FIFO O_RDONLY (this waits for a writer) and check with fstat that it is a FIFO
    open_fifo(path.as_ref(), OFlag::O_RDONLY)
    // END SOLUTION
}

/// Task 2: open the FIFO for writing, waiting until some process opens it for reading.
pub fn open_writer(path: impl AsRef<Path>) -> Result<File> {
    // BEGIN SOLUTION Task 2: open the FIFO O_WRONLY (this waits for a reader) and check with fstat that it is a FIFO
    open_fifo(path.as_ref(), OFlag::O_WRONLY)
    // END SOLUTION
}

/// Task 2: open the FIFO for reading without waiting for a writer (this always succeeds at once).
///
/// The returned file is in blocking mode again: a later read waits for data while a writer has
/// the FIFO open, and returns 0 (end of file) while none has.
pub fn try_open_reader(path: impl AsRef<Path>) -> Result<File> {
    // BEGIN SOLUTION Task 2: open the FIFO O_RDONLY | O_NONBLOCK (never waits), then clear O_NONBLOCK with fcntl
    let file = open_fifo(path.as_ref(), OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    set_blocking(file)
    // END SOLUTION
}

/// Task 2: open the FIFO for writing without waiting for a reader.
///
/// If no process has it open for reading, the kernel refuses with ENXIO: that is
/// [`Error::NoReader`]. The returned file is in blocking mode again: a write into a full FIFO
/// waits for the reader instead of failing with EAGAIN.
pub fn try_open_writer(path: impl AsRef<Path>) -> Result<File> {
    // BEGIN SOLUTION Task 2: open the FIFO O_WRONLY | O_NONBLOCK; ENXIO means no reader (Error::NoReader); then clear O_NONBLOCK with fcntl
    let file = open_fifo(path.as_ref(), OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(file)
    // END SOLUTION
}

/// Task 3: read one message (see [`HEADER_LEN`]) from `fifo`.
///
/// Returns `Ok(None)` at end of file between messages; [`Error::TruncatedMessage`] at end of
/// file inside one; [`Error::MessageTooLong`] for a header announcing more than
/// [`MAX_MESSAGE`] bytes. Reads that return fewer bytes than asked for, or fail with EINTR, are
/// continued.
pub fn receive_message(fifo: &mut impl Read) -> Result<Option<Vec<u8>>> {
    // BEGIN SOLUTION Task 3: read the 2-byte big-endian length, then exactly that many bytes; Ok(None) at end of file before a message
    let mut header = [0u8; HEADER_LEN];
    match read_full(fifo, &mut header)? {
        0 => return Ok(None),
        HEADER_LEN => {}
        got => {
            return Err(Error::TruncatedMessage {
                expected: HEADER_LEN,
                got,
            })
        }
    }
    let len = usize::from(u16::from_be_bytes(header));
    if len > MAX_MESSAGE {
        return Err(Error::MessageTooLong {
            len,
            max: MAX_MESSAGE,
        });
    }
    let mut body = vec![0u8; len];
    let got = read_full(fifo, &mut body)?;
    if got < len {
        return Err(Error::TruncatedMessage {
            expected: HEADER_LEN + len,
            got: HEADER_LEN + got,
        });
    }
    Ok(Some(body))
    // END SOLUTION
}

/// Task 4: send one message: its header and body in a single `write` of at most `PIPE_BUF`
/// bytes, so that it never interleaves with the messages of other writers.
///
/// Errors: [`Error::MessageTooLong`] (nothing is written) for more than [`MAX_MESSAGE`] bytes;
/// [`Error::BrokenPipe`] when no reader is left.
pub fn send_message(fifo: &File, message: &[u8]) -> Result<()> {
    // BEGIN SOLUTION Task 4: check the length, then write header and body together in ONE write of at most PIPE_BUF bytes
    let len = message.len();
    if len > MAX_MESSAGE {
        return Err(Error::MessageTooLong {
            len,
            max: MAX_MESSAGE,
        });
    }
    let mut record = [0u8; libc::PIPE_BUF];
    let header = u16::try_from(len).expect("MAX_MESSAGE fits in the u16 header");
    record[..HEADER_LEN].copy_from_slice(&header.to_be_bytes());
    record[HEADER_LEN..HEADER_LEN + len].copy_from_slice(message);
    let record = &record[..HEADER_LEN + len];
    // Not write_all: it would split a record if a write came back short, and a second write could
    // land after another writer's. A blocking pipe takes at most PIPE_BUF bytes in one go.
    let mut fifo = fifo;
    loop {
        match fifo.write(record) {
            Ok(n) if n == record.len() => return Ok(()),
            Ok(written) => {
                return Err(Error::ShortWrite {
                    written,
                    len: record.len(),
                })
            }
            // EINTR means nothing was written: trying again cannot duplicate anything.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => return Err(Error::BrokenPipe),
            Err(e) => return Err(sys("write")(errno_of(&e))),
        }
    }
    // END SOLUTION
}

/// Task 5: the server. Create the FIFO at `path` with `mode`, open it for reading, call `ready`
/// (from then on SIGTERM and SIGINT end the server cleanly), then write one line per message
/// into `transcript` until every client has closed its end (end of file) or SIGTERM or SIGINT
/// arrives. Either way, remove the FIFO before returning.
///
/// A transcript line is `message <n>: <text>`, with `n` counting from 1 and `text` the message
/// as `String::from_utf8_lossy(..).escape_debug()` shows it.
///
/// Signals are blocked only in the calling thread: call this from the main thread of a program
/// that has no other threads (as `ex02-fifo-server` does), or a SIGTERM could go to another one.
pub fn run_server(
    path: impl AsRef<Path>,
    mode: u32,
    ready: impl FnOnce(&Path),
    transcript: &mut impl Write,
) -> Result<Summary> {
    // BEGIN SOLUTION Task 5: block SIGTERM/SIGINT (signalfd), create the FIFO, open it without waiting, call ready, then poll and log each message until end of file or a signal
    let path = path.as_ref();
    // Declared first, so dropped last: the FIFO is gone before a signal can be delivered.
    let stop = StopSignals::block()?;
    let fifo = create_fifo(path, mode)?;
    // A blocking open would wait for the first client, deaf to SIGTERM: open without waiting,
    // then let poll wait for data, the last client leaving, or a signal.
    let mut reader = try_open_reader(path)?;
    ready(fifo.path());

    let mut summary = Summary::default();
    loop {
        let (data, signal) = {
            let mut fds = [
                PollFd::new(reader.as_fd(), PollFlags::POLLIN),
                PollFd::new(stop.fd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(sys("poll")(errno)),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if signal {
            if let Some(signal) = stop.received()? {
                summary.stopped_by = Some(signal);
                break;
            }
        }
        if data {
            // Readable, or hung up (POLLHUP: every writer has gone, the read returns 0). Writers
            // send whole messages in one write, so a message that has begun is all there.
            match receive_message(&mut reader)? {
                None => break,
                Some(message) => {
                    summary.messages += 1;
                    summary.bytes += message.len();
                    writeln!(
                        transcript,
                        "message {}: {}",
                        summary.messages,
                        String::from_utf8_lossy(&message).escape_debug()
                    )
                    .map_err(|e| sys("write")(errno_of(&e)))?;
                }
            }
        }
    }
    transcript.flush().map_err(|e| sys("write")(errno_of(&e)))?;
    drop(reader);
    drop(fifo);
    Ok(summary)
    // END SOLUTION
}

/// Task 5: the client. Open the FIFO for writing without waiting (no server: [`Error::NoReader`])
/// and send each message; returns how many were sent.
pub fn run_client<M: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    messages: impl IntoIterator<Item = M>,
) -> Result<usize> {
    // BEGIN SOLUTION Task 5: open the FIFO for writing without waiting (try_open_writer) and send each message
    let fifo = try_open_writer(path)?;
    let mut sent = 0;
    for message in messages {
        send_message(&fifo, message.as_ref())?;
        sent += 1;
    }
    Ok(sent)
    // END SOLUTION
}

// BEGIN SOLUTION
/// SIGTERM and SIGINT blocked in this thread and readable from a signalfd; the old mask comes
/// back on drop.
struct StopSignals {
    fd: SignalFd,
    old_mask: SigSet,
}

impl StopSignals {
    fn block() -> Result<StopSignals> {
        let mut stop = SigSet::empty();
        stop.add(Signal::SIGTERM);
        stop.add(Signal::SIGINT);
        let old_mask = stop
            .thread_swap_mask(SigmaskHow::SIG_BLOCK)
            .map_err(sys("pthread_sigmask"))?;
        match SignalFd::with_flags(&stop, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(StopSignals { fd, old_mask }),
            Err(errno) => {
                let _ = old_mask.thread_set_mask();
                Err(sys("signalfd")(errno))
            }
        }
    }

    fn received(&self) -> Result<Option<Signal>> {
        let info = self.fd.read_signal().map_err(sys("read signalfd"))?;
        Ok(info.and_then(|i| Signal::try_from(i.ssi_signo as i32).ok()))
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        let _ = self.old_mask.thread_set_mask();
    }
}

/// Opens `path` with `flags` and checks that it is a FIFO.
fn open_fifo(path: &Path, flags: OFlag) -> Result<File> {
    let fd: OwnedFd =
        open(path, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(|errno| match errno {
            Errno::ENXIO => Error::NoReader {
                path: path.to_owned(),
            },
            Errno::EISDIR => Error::NotAFifo {
                path: path.to_owned(),
                kind: FileKind::Directory,
            },
            errno => path_error("open", path)(errno),
        })?;
    let file = File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| path_error("fstat", path)(errno_of(&e)))?;
    let kind = kind_from(meta.file_type());
    if kind != FileKind::Fifo {
        return Err(Error::NotAFifo {
            path: path.to_owned(),
            kind,
        });
    }
    Ok(file)
}

/// Clears O_NONBLOCK on the open file description.
fn set_blocking(file: File) -> Result<File> {
    let flags = fcntl(&file, FcntlArg::F_GETFL).map_err(sys("fcntl"))?;
    let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(&file, FcntlArg::F_SETFL(flags)).map_err(sys("fcntl"))?;
    Ok(file)
}

/// Reads until `buf` is full or end of file; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(sys("read")(errno_of(&e))),
        }
    }
    Ok(got)
}

/// What is at `path` itself (a symbolic link is not followed).
fn kind_of(path: &Path) -> FileKind {
    std::fs::symlink_metadata(path).map_or(FileKind::Unknown, |meta| kind_from(meta.file_type()))
}

fn kind_from(t: std::fs::FileType) -> FileKind {
    if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_file() {
        FileKind::RegularFile
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_socket() {
        FileKind::Socket
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Unknown
    }
}

/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}

/// Attaches the call and the path to an errno.
fn path_error<'a>(call: &'static str, path: &'a Path) -> impl Fn(Errno) -> Error + 'a {
    move |errno| Error::Path {
        call,
        path: path.to_owned(),
        errno,
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
// END SOLUTION
