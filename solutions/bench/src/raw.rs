//! The raw mechanisms some reference solutions are held against that the lab (lab.rs) has no
//! row for: a pipe or socket pair read into fresh memory, and a pipe echo through a child.
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

use crate::proc::{read_some, send_stream, sys, write_all, Child, Error, Result};

/// Bytes per second, from a byte count and a start time.
pub fn rate(bytes: usize, started: Instant) -> f64 {
    bytes as f64 / started.elapsed().as_secs_f64()
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
