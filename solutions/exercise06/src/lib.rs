//! Exercise 06: socketpair — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
// STARTER: //! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise06` grades your
// STARTER: //! work.
//!
//! `socketpair(AF_UNIX, type, 0)` gives two sockets already connected to each other. Unlike a
//! pipe, each end both reads and writes, so one pair carries requests one way and replies the
//! other. The type decides the shape of what travels: `SOCK_STREAM` is a byte stream (no message
//! boundaries, end of file when the peer shuts down or closes), `SOCK_DGRAM` carries whole
//! datagrams. And because both ends are in the same kernel, a message can carry open file
//! descriptors (`SCM_RIGHTS`).
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    recvmsg, sendmsg, shutdown, socketpair, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdin, dup2_stdout, execvp, fork, pipe2, ForkResult, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
#[path = "../../../exercises/exercise06/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}
// END SOLUTION

/// Task 1: a conversation with a child over one stream socket pair.
///
/// Fork a child; for each request in turn, send it as one line (`request` + `\n`) and read the
/// child's reply line before sending the next. The child reads requests line by line until end
/// of file, answers each with `answer(request)` as one line, and exits with 0 at end of file.
/// Returns the replies without their newlines, after reaping the child.
///
/// A request containing `\n` is [`Error::NewlineInRequest`] (checked before forking). If the
/// child stops answering early (end of file before a reply, or before the newline that ends
/// one: a cut-off line is no reply), [`Error::ChildHungUp`].
// BEGIN SOLUTION
// STARTER: pub fn ask_child(requests: &[&str], answer: impl FnMut(&str) -> String) -> Result<Vec<String>> {
// STARTER: todo!("Task 1: a stream socketpair and fork; the child answers each request line with one reply line until EOF; the parent sends a request, reads its reply, and so on, then closes its end and reaps the child")
pub fn ask_child(requests: &[&str], mut answer: impl FnMut(&str) -> String) -> Result<Vec<String>> {
    if let Some(index) = requests.iter().position(|r| r.contains('\n')) {
        return Err(Error::NewlineInRequest { index });
    }
    let (ours, theirs) = stream_pair()?;
    // SAFETY: the child only serves on its socket and then `_exit`s; it never returns.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ours);
            exit_child(move || serve_lines(UnixStream::from(theirs), &mut answer))
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let socket = UnixStream::from(ours);
            let replies = converse(&socket, requests);
            // Closing our end is the child's end of file, even if the conversation failed
            // half-way: then it exits and can be reaped.
            drop(socket);
            reap(child)?;
            replies
        }
    }
    // END SOLUTION
}

/// Task 2: message boundaries, stream versus datagram.
///
/// Create a socket pair of `kind` and fork. The child sends each element of `sends` with one
/// send call, then exits. The parent first waits for the child (so every send has completed
/// before the first receive), then receives into a buffer of `buf_len` bytes, one call at a
/// time, recording what each call returned, until nothing is left: for a stream, until end of
/// file; for datagrams (which have no end of file), until a non-blocking receive finds nothing.
///
/// `sends` must fit in the socket's buffer (a few KiB is fine): the child sends before anyone
/// receives, so a send that would block fails instead, and the call returns
/// [`Error::ChildFailed`]. A `buf_len` of 0 is [`Error::ZeroBuffer`].
pub fn receive_after_sends(kind: Kind, sends: &[&[u8]], buf_len: usize) -> Result<Vec<Chunk>> {
    // BEGIN SOLUTION Task 2: a socketpair of `kind` and fork; the child sends each message with one send and exits; the parent reaps it, then receives into a `buf_len` buffer until EOF (stream) or EAGAIN under MSG_DONTWAIT (datagram), reporting MSG_TRUNC
    if buf_len == 0 {
        return Err(Error::ZeroBuffer);
    }
    let ty = match kind {
        Kind::Stream => SockType::Stream,
        Kind::Datagram => SockType::Datagram,
    };
    let (ours, theirs) = socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC)
        .map_err(sys("socketpair"))?;
    // SAFETY: the child only sends on its socket and then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ours);
            exit_child(move || {
                for message in sends {
                    // One send call per message: for a datagram socket, one datagram each.
                    // Never blocking: nobody receives until we exit, so messages that do not
                    // fit in the socket's buffer are an error (EAGAIN), not a deadlock.
                    match nix::sys::socket::send(
                        theirs.as_raw_fd(),
                        message,
                        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                    ) {
                        Ok(n) if n == message.len() => {}
                        _ => return 1,
                    }
                }
                0
            })
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            // Everything is queued once the child has exited; only then does receiving start.
            let exit = reap(child)?;
            if exit != ChildExit::Exited(0) {
                return Err(Error::ChildFailed { exit });
            }
            let mut chunks = Vec::new();
            let mut buf = vec![0u8; buf_len];
            loop {
                let flags = match kind {
                    Kind::Stream => MsgFlags::empty(),
                    // A datagram socket never reports end of file: stop when the queue is empty.
                    Kind::Datagram => MsgFlags::MSG_DONTWAIT,
                };
                let received = {
                    let mut iov = [IoSliceMut::new(&mut buf)];
                    recvmsg::<UnixAddr>(ours.as_raw_fd(), &mut iov, None, flags)
                        .map(|msg| (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC)))
                };
                match (kind, received) {
                    (Kind::Stream, Ok((0, _))) => return Ok(chunks),
                    (_, Ok((n, truncated))) => chunks.push(Chunk {
                        bytes: buf[..n].to_vec(),
                        truncated,
                    }),
                    (Kind::Datagram, Err(Errno::EAGAIN)) => return Ok(chunks),
                    (_, Err(Errno::EINTR)) => continue,
                    (_, Err(errno)) => {
                        return Err(Error::Sys {
                            call: "recvmsg",
                            errno,
                        })
                    }
                }
            }
        }
    }
    // END SOLUTION
}

/// Task 3: a round trip over one stream socket, ended by a half-close.
///
/// Fork a child. The parent sends `request`, then shuts down the writing direction of its socket
/// (`shutdown(SHUT_WR)`) and reads the reply until end of file. The child reads the request
/// until end of file, sends `serve(request)` back on the same socket, and exits. The parent
/// reaps the child and returns the reply.
pub fn half_close_round_trip(
    request: &[u8],
    serve: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> Result<Vec<u8>> {
    // BEGIN SOLUTION Task 3: one stream socketpair; the parent sends the request, shutdown(SHUT_WR), reads the reply to EOF; the child reads to EOF and answers on the same socket
    let (ours, theirs) = stream_pair()?;
    // SAFETY: the child only uses its socket and `serve`, then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ours);
            exit_child(move || {
                let mut socket = UnixStream::from(theirs);
                let mut request = Vec::new();
                if socket.read_to_end(&mut request).is_err() {
                    return 1;
                }
                match write_all_fd(socket.as_fd(), &serve(request)) {
                    Ok(()) => 0,
                    Err(_) => 1,
                }
            })
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let mut socket = UnixStream::from(ours);
            let reply = write_all_fd(socket.as_fd(), request)
                // Our direction ends here: the child's read sees end of file, while replies can
                // still come back the other way. Closing the socket would end both directions.
                .and_then(|()| {
                    shutdown(socket.as_raw_fd(), Shutdown::Write).map_err(sys("shutdown"))
                })
                .and_then(|()| {
                    let mut reply = Vec::new();
                    socket.read_to_end(&mut reply).map_err(io_error("read"))?;
                    Ok(reply)
                });
            drop(socket);
            reap(child)?;
            reply
        }
    }
    // END SOLUTION
}

/// Task 4a: send `fd` over `socket` with `SCM_RIGHTS`, together with `label` as the message's
/// ordinary data (1 to [`MAX_LABEL`] bytes, else [`Error::BadLabel`]: on a stream socket a
/// message without data would carry no descriptor).
///
/// The caller keeps its own descriptor; the receiver gets a new one for the same open file.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, label: &[u8]) -> Result<()> {
    // BEGIN SOLUTION Task 4: sendmsg with the label as data and the descriptor in an SCM_RIGHTS control message
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(Error::BadLabel { len: label.len() });
    }
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(label)];
    loop {
        match sendmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            // The descriptor travels with the first byte, so a short send still delivered it;
            // the rest of the label follows as plain data.
            Ok(n) => {
                return write_all_fd(socket, &label[n..]);
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "sendmsg",
                    errno,
                })
            }
        }
    }
    // END SOLUTION
}

/// Task 4b: receive one descriptor sent with [`send_fd`], and its label.
///
/// The new descriptor is close-on-exec (`MSG_CMSG_CLOEXEC`). A message without a descriptor is
/// [`Error::NoDescriptor`]; end of file is [`Error::PeerClosed`]. No received descriptor is ever
/// left open on an error.
pub fn recv_fd(socket: BorrowedFd<'_>) -> Result<Passed> {
    // BEGIN SOLUTION Task 4: recvmsg with MSG_CMSG_CLOEXEC and room for an SCM_RIGHTS control message; own the received descriptor; no descriptor is Error::NoDescriptor, EOF is Error::PeerClosed
    let mut label = [0u8; MAX_LABEL];
    // Room for the most descriptors one message can carry (SCM_MAX_FD), so the kernel never
    // truncates the control data: every descriptor it installs, we see, own and can close.
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let (len, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut label)];
        match recvmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(sys("recvmsg"))? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: the kernel just installed these descriptors in our table and
                        // nothing else refers to them: we are their only owner.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, fds);
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "recvmsg",
                    errno,
                })
            }
        }
    };
    let mut fds = fds.into_iter();
    match (len, fds.len()) {
        (0, 0) => Err(Error::PeerClosed),
        (_, 0) => Err(Error::NoDescriptor),
        (_, 1) => Ok(Passed {
            fd: fds.next().expect("one descriptor"),
            label: label[..len].to_vec(),
        }),
        // Dropping the iterator closes every one of them.
        (_, count) => Err(Error::TooManyDescriptors { count }),
    }
    // END SOLUTION
}

/// Task 5: start `argv` with one end of a stream socket pair as its standard input and output;
/// keep the other end. Nothing else of ours may reach the program: our end in particular must
/// be close-on-exec, or the program would hold it open and never see end of file.
pub fn spawn_coprocess(argv: &[&str]) -> Result<Coprocess> {
    // BEGIN SOLUTION Task 5: a close-on-exec stream socketpair and fork; in the child dup2 its end onto stdin and stdout and execvp; report a failed exec as Error::CommandNotFound
    let program = Program::new(argv)?;
    let (ours, theirs) = stream_pair()?;
    // Reports a failed exec: exec closes it (close-on-exec) when it succeeds.
    let (status_read, status_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the child only rearranges descriptors and execs (or reports and `_exit`s).
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop((ours, status_read));
            // dup2 makes 0 and 1 copies of our end without close-on-exec; `theirs` itself is
            // close-on-exec and vanishes at exec.
            let errno = match dup2_stdin(&theirs).and_then(|()| dup2_stdout(&theirs)) {
                Ok(()) => execvp(&program.argv[0], &program.argv).unwrap_err(),
                Err(errno) => errno,
            };
            let _ = nix::unistd::write(&status_write, &(errno as i32).to_ne_bytes());
            // SAFETY: ends this copy of the process without running the parent's cleanup.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop((theirs, status_write));
            let mut report = Vec::new();
            let read = File::from(status_read).read_to_end(&mut report);
            let exec_error = match <[u8; 4]>::try_from(report.as_slice()) {
                Ok(bytes) => Some(match Errno::from_raw(i32::from_ne_bytes(bytes)) {
                    Errno::ENOENT => Error::CommandNotFound {
                        command: program.name(),
                    },
                    errno => Error::Exec {
                        command: program.name(),
                        errno,
                    },
                }),
                Err(_) => read.err().map(io_error("read")),
            };
            if let Some(error) = exec_error {
                drop(ours);
                // If the read failed the program may be running: make sure it does not linger.
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                reap(child)?;
                return Err(error);
            }
            Ok(Coprocess {
                pid: child,
                socket: UnixStream::from(ours),
            })
        }
    }
    // END SOLUTION
}

impl Coprocess {
    /// Closes our end (the program's end of file) and waits for the program to exit.
    pub fn finish(self) -> Result<ChildExit> {
        // BEGIN SOLUTION Task 5: close our end (the program's end of file), then waitpid for the program
        let Coprocess { pid, socket } = self;
        drop(socket);
        reap(pid)
        // END SOLUTION
    }
}

// BEGIN SOLUTION
// ---- private ----

/// The parent's side of task 1: one request, one reply, in lock step.
fn converse(socket: &UnixStream, requests: &[&str]) -> Result<Vec<String>> {
    let mut reader = BufReader::new(socket);
    let mut replies = Vec::with_capacity(requests.len());
    for request in requests {
        let line = format!("{request}\n");
        match write_all_fd(socket.as_fd(), line.as_bytes()) {
            Ok(()) => {}
            // The child is gone: its end is closed.
            Err(Error::Sys {
                errno: Errno::EPIPE | Errno::ECONNRESET,
                ..
            }) => {
                return Err(Error::ChildHungUp {
                    answered: replies.len(),
                })
            }
            Err(e) => return Err(e),
        }
        let mut reply = String::new();
        let n = reader.read_line(&mut reply).map_err(io_error("read"))?;
        if n == 0 || !reply.ends_with('\n') {
            return Err(Error::ChildHungUp {
                answered: replies.len(),
            });
        }
        reply.pop();
        replies.push(reply);
    }
    Ok(replies)
}

/// The child's side of task 1. Returns the exit code.
fn serve_lines(socket: UnixStream, answer: &mut impl FnMut(&str) -> String) -> i32 {
    let mut reader = BufReader::new(&socket);
    let mut request = String::new();
    loop {
        request.clear();
        match reader.read_line(&mut request) {
            Ok(0) => return 0,
            Ok(_) => {}
            Err(_) => return 1,
        }
        let reply = answer(request.trim_end_matches('\n'));
        // A newline inside the reply would read as two replies: refuse rather than garble.
        if reply.contains('\n') {
            return 2;
        }
        if write_all_fd(socket.as_fd(), format!("{reply}\n").as_bytes()).is_err() {
            return 1;
        }
    }
}

/// A connected pair of close-on-exec stream sockets.
fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))
}

/// Writes all of `data` to a socket. `MSG_NOSIGNAL`: a peer that is gone is an `EPIPE` error,
/// not a SIGPIPE that kills the process (a plain `write` would raise it).
fn write_all_fd(socket: BorrowedFd<'_>, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match nix::sys::socket::send(socket.as_fd().as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "send",
                    errno,
                })
            }
        }
    }
    Ok(())
}

/// A program and its arguments, converted for `execvp` before any fork.
struct Program {
    argv: Vec<CString>,
}

impl Program {
    fn new(words: &[&str]) -> Result<Program> {
        if words.is_empty() || words[0].is_empty() {
            return Err(Error::EmptyCommand);
        }
        let argv = words
            .iter()
            .map(|w| {
                CString::new(*w).map_err(|_| Error::Exec {
                    command: w.replace('\0', "\\0"),
                    errno: Errno::EINVAL,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Program { argv })
    }

    fn name(&self) -> String {
        self.argv[0].to_string_lossy().into_owned()
    }
}

/// Runs `f` in the child and ends the child with its result, never returning: a child that
/// returned (or unwound from a panic) would go on running its parent's code.
fn exit_child(f: impl FnOnce() -> i32) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: `_exit` ends the process at once, without the parent's atexit handlers or buffers.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid`, retrying when a signal interrupts the wait, and says how it ended.
fn reap(pid: Pid) -> Result<ChildExit> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ChildExit::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(ChildExit::Signaled(signal)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "waitpid",
                    errno,
                })
            }
        }
    }
}

fn io_error(call: &'static str) -> impl Fn(io::Error) -> Error {
    move |e| Error::Sys {
        call,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}
// END SOLUTION
