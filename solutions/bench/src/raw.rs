//! The raw mechanisms: memcpy, pipes, a socket pair and a System V message queue, each used as
//! plainly as possible. They are the yardsticks the reference solutions are held against.
//!
//! A throughput trial returns bytes per second, from before the fork to after the wait: the
//! fork costs well under 1 % of a trial.

use std::hint::black_box;
use std::os::fd::{AsFd, OwnedFd};
use std::thread;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::pipe2;

use crate::proc::{
    drain, read_exact, read_some, send_stream, sys, write_all, Child, Error, Result,
};

/// Bytes per second, from a byte count and a start time.
pub fn rate(bytes: usize, started: Instant) -> f64 {
    bytes as f64 / started.elapsed().as_secs_f64()
}

/// Copies `chunk` bytes from one buffer to another, `total / chunk` times: the speed of memory
/// (or of the cache, for buffers that fit in it) for this size, in this run, on this machine.
pub fn memcpy(chunk: usize, total: usize) -> Result<f64> {
    let src = vec![0xA5u8; chunk];
    let mut dst = vec![0u8; chunk];
    let rounds = (total / chunk).max(1);
    let started = Instant::now();
    for _ in 0..rounds {
        // black_box: the compiler must not notice that the copies are all the same.
        black_box(&mut dst).copy_from_slice(black_box(&src));
    }
    Ok(rate(rounds * chunk, started))
}

/// A pipe with its capacity set to `capacity` (F_SETPIPE_SZ), or the default 64 KiB.
fn pipe_of(capacity: Option<usize>) -> Result<(OwnedFd, OwnedFd)> {
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    if let Some(asked) = capacity {
        let size = libc::c_int::try_from(asked).unwrap_or(libc::c_int::MAX);
        let got =
            fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(size)).map_err(sys("fcntl(F_SETPIPE_SZ)"))?;
        let got = usize::try_from(got).unwrap_or(0);
        if got < asked {
            return Err(Error::PipeSize { asked, got });
        }
    }
    Ok((read_end, write_end))
}

/// The two ends of a one-way channel: (read, write).
#[derive(Clone, Copy)]
pub enum Channel {
    /// A pipe of the given capacity (F_SETPIPE_SZ), or of the default 64 KiB.
    Pipe(Option<usize>),
    /// A stream socket pair.
    SocketPair,
}

/// Where the receiver puts what it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// One buffer of `chunk` bytes, read into again and again: the mechanism alone.
    Scratch,
    /// A new buffer of the whole size, as an API that returns the bytes must: every page of it
    /// is touched for the first time (a page fault each), which costs about as much as the
    /// transfer itself.
    FreshMemory,
}

/// One way: a child writes `total` bytes in writes of `chunk`; we read them into `sink`.
pub fn one_way(
    channel: Channel,
    chunk: usize,
    total: usize,
    sink: Sink,
    child_cpu: usize,
) -> Result<f64> {
    let (read_end, write_end) = match channel {
        Channel::Pipe(capacity) => pipe_of(capacity)?,
        Channel::SocketPair => stream_pair()?,
    };
    let started = Instant::now();
    let child = Child::spawn("writer", Some(child_cpu), &[read_end.as_fd()], move || {
        send_stream(write_end, chunk, total)
    })?;
    let received = match sink {
        Sink::Scratch => drain(read_end, chunk)?,
        Sink::FreshMemory => {
            let mut memory = vec![0u8; total];
            let mut got = 0;
            while got < total {
                match read_some(read_end.as_fd(), &mut memory[got..]).map_err(sys("read"))? {
                    0 => break,
                    n => got += n,
                }
            }
            black_box(&memory);
            got
        }
    };
    child.wait()?;
    check("one-way transfer", total, received)?;
    Ok(rate(total, started))
}

fn stream_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))
}

/// Through a child and back: we write `input` (from a thread) while reading the echo into a
/// buffer of the right size; the child copies 64 KiB reads back. Each byte crosses two pipes.
/// This is the raw counterpart of `exercise01::stream_through_child`.
pub fn pipe_echo(input: &[u8], child_cpu: usize) -> Result<f64> {
    let (to_child_read, to_child_write) = pipe_of(None)?;
    let (from_child_read, from_child_write) = pipe_of(None)?;
    let started = Instant::now();
    let child = Child::spawn(
        "pipe echo",
        Some(child_cpu),
        &[to_child_write.as_fd(), from_child_read.as_fd()],
        move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read_some(to_child_read.as_fd(), &mut buf) {
                    Ok(0) => return 0,
                    Ok(n) => {
                        if write_all(from_child_write.as_fd(), &buf[..n]).is_err() {
                            return 1;
                        }
                    }
                    Err(_) => return 1,
                }
            }
        },
    )?;
    let mut output = vec![0u8; input.len()];
    let received = thread::scope(|scope| {
        // The writer owns the write end: when it is done, the end closes and the child sees EOF.
        let writer = scope.spawn(move || write_all(to_child_write.as_fd(), input));
        let mut got = 0;
        let read = loop {
            match read_some(from_child_read.as_fd(), &mut output[got..]) {
                Ok(0) => break Ok(got),
                Ok(n) => got += n,
                Err(errno) => break Err(errno),
            }
            if got == output.len() {
                // Everything is back; one more read must say EOF, which is not worth a byte.
                break Ok(got);
            }
        };
        let sent = writer.join().unwrap_or(Err(Errno::EIO));
        sent.map_err(sys("write")).and(read.map_err(sys("read")))
    })?;
    child.wait()?;
    check("pipe echo", input.len(), received)?;
    if output != input {
        return Err(Error::BadEcho { what: "pipe echo" });
    }
    Ok(rate(input.len(), started))
}

fn check(what: &'static str, sent: usize, received: usize) -> Result<()> {
    if sent == received {
        Ok(())
    } else {
        Err(Error::ShortTransfer {
            what,
            sent,
            received,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// System V message queue (nix has no wrapper: libc behind a small safe type).

/// The largest message text this benchmark sends: msgmax's usual value.
pub const MSG_MAX: usize = 8192;

/// The layout msgsnd and msgrcv exchange: a `long` type, then the text.
#[repr(C)]
struct MsgBuf {
    mtype: libc::c_long,
    mtext: [u8; MSG_MAX],
}

impl MsgBuf {
    fn new() -> Box<MsgBuf> {
        Box::new(MsgBuf {
            mtype: 1,
            mtext: [0xA5; MSG_MAX],
        })
    }
}

/// A private queue, removed (IPC_RMID) when dropped, also during a panic.
pub struct Queue {
    id: libc::c_int,
}

/// A handle on the queue that does not remove it: what a child takes.
#[derive(Clone, Copy)]
pub struct QueueId(libc::c_int);

impl Queue {
    pub fn create() -> Result<Queue> {
        // SAFETY: msgget takes plain integers.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(Error::Sys {
                call: "msgget",
                errno: Errno::last(),
            });
        }
        Ok(Queue { id })
    }

    pub fn handle(&self) -> QueueId {
        QueueId(self.id)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer argument.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

impl QueueId {
    /// Sends the first `len` bytes of `buf`'s text with type `mtype`; waits while the queue is full.
    fn send(self, buf: &mut MsgBuf, mtype: libc::c_long, len: usize) -> Result<()> {
        buf.mtype = mtype;
        let len = len.min(MSG_MAX);
        loop {
            // SAFETY: `buf` is a valid MsgBuf whose text holds at least `len` bytes.
            let rc = unsafe { libc::msgsnd(self.0, (buf as *const MsgBuf).cast(), len, 0) };
            match rc {
                0 => return Ok(()),
                _ if Errno::last() == Errno::EINTR => continue,
                _ => {
                    return Err(Error::Sys {
                        call: "msgsnd",
                        errno: Errno::last(),
                    })
                }
            }
        }
    }

    /// Receives the first message of type `mtype` (0: any) into `buf`; returns its length.
    fn receive(self, buf: &mut MsgBuf, mtype: libc::c_long) -> Result<usize> {
        loop {
            // SAFETY: `buf` has room for MSG_MAX bytes of text after its type.
            let rc =
                unsafe { libc::msgrcv(self.0, (buf as *mut MsgBuf).cast(), MSG_MAX, mtype, 0) };
            if let Ok(len) = usize::try_from(rc) {
                return Ok(len);
            }
            match Errno::last() {
                Errno::EINTR => continue,
                errno => {
                    return Err(Error::Sys {
                        call: "msgrcv",
                        errno,
                    })
                }
            }
        }
    }
}

/// The message type of data in [`msg_queue`]; [`END`] marks the end of the stream.
const DATA: libc::c_long = 1;
const END: libc::c_long = 2;

/// One way through a message queue: a child sends `total` bytes as messages of `chunk` bytes,
/// then an empty message of another type as the end; we receive until that one.
pub fn msg_queue(chunk: usize, total: usize, child_cpu: usize) -> Result<f64> {
    let queue = Queue::create()?;
    let id = queue.handle();
    let chunk = chunk.min(MSG_MAX);
    let started = Instant::now();
    let child = Child::spawn("queue sender", Some(child_cpu), &[], move || {
        let mut buf = MsgBuf::new();
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk);
            if id.send(&mut buf, DATA, n).is_err() {
                return 1;
            }
            left -= n;
        }
        i32::from(id.send(&mut buf, END, 0).is_err())
    })?;
    let mut buf = MsgBuf::new();
    let mut received = 0;
    loop {
        let len = id.receive(&mut buf, 0)?;
        if buf.mtype == END {
            break;
        }
        received += len;
    }
    child.wait()?;
    check("message queue", total, received)?;
    Ok(rate(total, started))
}

// ---------------------------------------------------------------------------------------------
// Latency: a ping-pong of one byte.

/// A child that echoes single bytes from `input` to `output` until end of file.
fn byte_echo(input: OwnedFd, output: OwnedFd) -> i32 {
    let mut byte = [0u8; 1];
    loop {
        match read_some(input.as_fd(), &mut byte) {
            Ok(0) => return 0,
            Ok(_) => {
                if write_all(output.as_fd(), &byte).is_err() {
                    return 1;
                }
            }
            Err(_) => return 1,
        }
    }
}

/// Sends one byte on `out` and reads the echo from `back`.
fn exchange(out: &OwnedFd, back: &OwnedFd, what: &'static str) -> Result<()> {
    write_all(out.as_fd(), b"x").map_err(sys("write"))?;
    let mut byte = [0u8; 1];
    match read_exact(back.as_fd(), &mut byte).map_err(sys("read"))? {
        true if byte == *b"x" => Ok(()),
        _ => Err(Error::BadEcho { what }),
    }
}

/// A pipe each way. The caller has pinned itself; the child pins itself to `child_cpu`.
/// `session` gets a function that does one exchange and runs the trials; then the child ends.
pub fn pipe_ping_pong<T>(
    child_cpu: usize,
    session: impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<T>,
) -> Result<T> {
    let (request_read, request_write) = pipe_of(None)?;
    let (reply_read, reply_write) = pipe_of(None)?;
    let child = Child::spawn(
        "pipe echo",
        Some(child_cpu),
        &[request_write.as_fd(), reply_read.as_fd()],
        move || byte_echo(request_read, reply_write),
    )?;
    let result = session(&mut || exchange(&request_write, &reply_read, "pipe"));
    // Our write end closes: the child's EOF.
    drop(request_write);
    child.wait()?;
    result
}

/// One stream socket pair, both directions on it.
pub fn socket_ping_pong<T>(
    child_cpu: usize,
    session: impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<T>,
) -> Result<T> {
    let (ours, theirs) = stream_pair()?;
    let child = Child::spawn("socket echo", Some(child_cpu), &[ours.as_fd()], move || {
        let theirs_too = match theirs.try_clone() {
            Ok(fd) => fd,
            Err(_) => return 1,
        };
        byte_echo(theirs, theirs_too)
    })?;
    let result = session(&mut || exchange(&ours, &ours, "socketpair"));
    drop(ours);
    child.wait()?;
    result
}

/// One queue: requests have type 1, replies type 2. Removing the queue ends the child.
pub fn queue_ping_pong<T>(
    child_cpu: usize,
    session: impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<T>,
) -> Result<T> {
    const REQUEST: libc::c_long = 1;
    const REPLY: libc::c_long = 2;
    let queue = Queue::create()?;
    let id = queue.handle();
    let child = Child::spawn("queue echo", Some(child_cpu), &[], move || {
        let mut buf = MsgBuf::new();
        loop {
            match id.receive(&mut buf, REQUEST) {
                Ok(len) => {
                    if id.send(&mut buf, REPLY, len).is_err() {
                        return 1;
                    }
                }
                // The queue was removed: the end of the session.
                Err(Error::Sys {
                    errno: Errno::EIDRM | Errno::EINVAL,
                    ..
                }) => return 0,
                Err(_) => return 1,
            }
        }
    })?;
    let mut buf = MsgBuf::new();
    let result = session(&mut || {
        buf.mtext[0] = b'x';
        id.send(&mut buf, REQUEST, 1)?;
        match id.receive(&mut buf, REPLY)? {
            1 if buf.mtext[0] == b'x' => Ok(()),
            _ => Err(Error::BadEcho {
                what: "message queue",
            }),
        }
    });
    drop(queue);
    child.wait()?;
    result
}
