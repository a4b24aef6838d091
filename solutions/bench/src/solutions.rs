//! The reference solutions, measured through their public APIs only: what a student's correct
//! code can reach, next to the raw mechanism it is built on.

use std::time::Instant;

use crate::proc::{pin, solution, Error, Result};
use crate::raw::rate;

/// A message every answer checks, so that no measurement times a broken transfer.
fn expect_len(reply: &[u8], what: &'static str, sent: usize) -> Result<()> {
    let received = <[u8; 8]>::try_from(reply).map_or(0, |b| u64::from_ne_bytes(b) as usize);
    if received == sent {
        Ok(())
    } else {
        Err(Error::ShortTransfer {
            what,
            sent,
            received,
        })
    }
}

/// What a serving child answers in one-way measurements: the length it received.
fn length_of(request: &[u8]) -> Vec<u8> {
    (request.len() as u64).to_ne_bytes().to_vec()
}

/// `exercise01::stream_through_child` with the identity transform: each byte goes to the child
/// and back through two pipes. Input bytes per second.
///
/// The transform runs in the child: its first call moves the child to `child_cpu`.
pub fn ex01_stream(input: &[u8], child_cpu: usize) -> Result<f64> {
    let mut pinned = false;
    let started = Instant::now();
    let output = exercise01::stream_through_child(input, |chunk| {
        if !pinned {
            pinned = true;
            // A failed pin leaves the child where it is: the numbers would be mislabelled,
            // not wrong, and the one-CPU placement is what it inherits anyway.
            let _ = pin(child_cpu);
        }
        chunk.to_vec()
    })
    .map_err(solution("exercise01"))?;
    if output != input {
        return Err(Error::BadEcho {
            what: "exercise01::stream_through_child",
        });
    }
    Ok(rate(input.len(), started))
}

/// `exercise01::round_trip` with a large request and a tiny answer: one way through a pipe,
/// into a child that reads to end of file.
pub fn ex01_round_trip(request: &[u8]) -> Result<f64> {
    let started = Instant::now();
    let reply =
        exercise01::round_trip(request, |r| length_of(&r)).map_err(solution("exercise01"))?;
    expect_len(&reply, "exercise01::round_trip", request.len())?;
    Ok(rate(request.len(), started))
}

/// One `exercise01::round_trip` of one byte: fork, exchange, wait. Seconds per call.
///
/// The child is forked on the caller's CPU and stays there: this one is same-CPU only.
pub fn ex01_round_trip_call() -> Result<()> {
    let reply = exercise01::round_trip(b"x", |r| r).map_err(solution("exercise01"))?;
    if reply != b"x" {
        return Err(Error::BadEcho {
            what: "exercise01::round_trip",
        });
    }
    Ok(())
}

/// `exercise06::half_close_round_trip` with a large request and a tiny answer: one way through
/// a stream socket pair.
#[cfg(feature = "exercise06")]
pub fn ex06_half_close(request: &[u8]) -> Result<f64> {
    let started = Instant::now();
    let reply = exercise06::half_close_round_trip(request, |r| length_of(&r))
        .map_err(solution("exercise06"))?;
    expect_len(&reply, "exercise06::half_close_round_trip", request.len())?;
    Ok(rate(request.len(), started))
}

/// `exercise06::ask_child`: `requests.len()` one-line exchanges with one child, whose first
/// answer moves it to `child_cpu`. Seconds per exchange (the one fork is spread over them all).
#[cfg(feature = "exercise06")]
pub fn ex06_ask_child(requests: &[&str], child_cpu: usize) -> Result<f64> {
    let mut pinned = false;
    let started = Instant::now();
    let replies = exercise06::ask_child(requests, |request| {
        // This closure runs in the child; a failed pin only makes the answer wrong, which the
        // parent then reports.
        if !pinned {
            pinned = true;
            if pin(child_cpu).is_err() {
                return String::from("pin failed");
            }
        }
        request.to_owned()
    })
    .map_err(solution("exercise06"))?;
    if replies
        .iter()
        .map(String::as_str)
        .ne(requests.iter().copied())
    {
        return Err(Error::BadEcho {
            what: "exercise06::ask_child",
        });
    }
    Ok(started.elapsed().as_secs_f64() / requests.len().max(1) as f64)
}

#[cfg(feature = "exercise03")]
pub mod ex03 {
    //! exercise03: a System V message queue, through `MessageQueue` and `call`/`serve`.

    use std::time::Instant;

    use exercise03::{call, serve, Key, MessageQueue, Selector};

    use crate::proc::{solution, Child, Error, Result};
    use crate::raw::rate;

    const DATA: i64 = 1;
    const END: i64 = 2;

    /// One way: a child sends `total` bytes in messages of `chunk`, then an end message.
    pub fn stream(chunk: usize, total: usize, child_cpu: usize) -> Result<f64> {
        let queue = MessageQueue::create(Key::private(), 0o600).map_err(solution("exercise03"))?;
        let theirs = queue.handle();
        // The lab's pattern, checked byte for byte as the raw queue's is.
        let pattern = crate::lab::Pattern::new(chunk);
        let pattern = &pattern;
        let started = Instant::now();
        let child = Child::spawn("exercise03 sender", Some(child_cpu), &[], move || {
            let mut sent = 0;
            while sent < total {
                let n = (total - sent).min(chunk);
                if theirs.send(DATA, pattern.at(sent, n)).is_err() {
                    return 1;
                }
                sent += n;
            }
            i32::from(theirs.send(END, &[]).is_err())
        })?;
        let mut received = 0;
        loop {
            let message = queue
                .receive(Selector::First)
                .map_err(solution("exercise03"))?;
            if message.mtype == END {
                break;
            }
            if message.data != pattern.at(received, message.data.len()) {
                return Err(Error::BadEcho {
                    what: "exercise03 MessageQueue",
                });
            }
            received += message.data.len();
        }
        child.wait()?;
        if received != total {
            return Err(Error::ShortTransfer {
                what: "exercise03 queue",
                sent: total,
                received,
            });
        }
        Ok(rate(total, started))
    }

    /// `call` against a child running `serve` on `child_cpu`; removing the queue ends it.
    pub fn ping_pong<T>(
        child_cpu: usize,
        session: impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<T>,
    ) -> Result<T> {
        let queue = MessageQueue::create(Key::private(), 0o600).map_err(solution("exercise03"))?;
        let theirs = queue.handle();
        let child = Child::spawn("exercise03 server", Some(child_cpu), &[], move || {
            i32::from(serve(&theirs, |body| body.to_vec()).is_err())
        })?;
        let result = session(&mut || match call(&queue, b"x") {
            Ok(reply) if reply == b"x" => Ok(()),
            Ok(_) => Err(Error::BadEcho {
                what: "exercise03::call",
            }),
            Err(e) => Err(solution("exercise03")(e)),
        });
        // Removing the queue is the server's signal to return.
        let removed = queue.remove().map_err(solution("exercise03"));
        child.wait()?;
        removed?;
        result
    }
}

#[cfg(feature = "exercise04")]
pub mod ex04 {
    //! exercise04: System V shared memory, through the `Producer`/`Consumer` ring and `Mailbox`.

    use std::time::Instant;

    use std::os::fd::AsFd;

    use exercise04::{Attachment, Consumer, Mailbox, Producer, Segment, Side};

    use crate::proc::{ready_pipe, say_ready, solution, wait_ready, Child, Error, Result};
    use crate::raw::rate;

    /// The ring's own header in exercise04's layout; the rest of the segment is its capacity.
    const RING_HEADER: usize = 256;

    /// One way through a ring of `capacity` bytes: a child produces `total` bytes in writes of
    /// `chunk`, we consume them in reads of up to `chunk`.
    pub fn ring(chunk: usize, capacity: usize, total: usize, child_cpu: usize) -> Result<f64> {
        let segment = Segment::create(RING_HEADER + capacity).map_err(solution("exercise04"))?;
        let id = segment.id();
        let (ready_read, ready_write) = ready_pipe()?;
        // The lab's pattern, checked byte for byte as the raw ring's is.
        let pattern = crate::lab::Pattern::new(chunk);
        let pattern = &pattern;
        let started = Instant::now();
        let child = Child::spawn(
            "exercise04 producer",
            Some(child_cpu),
            &[ready_read.as_fd()],
            move || {
                let Ok(mut attachment) = Attachment::new(id) else {
                    return 1;
                };
                let Ok(mut producer) = Producer::new(&mut attachment) else {
                    return 1;
                };
                // From here on every way out (a panic too) drops the producer, which ends the
                // stream, so the consumer below cannot wait forever.
                if !say_ready(ready_write) {
                    return 1;
                }
                let mut sent = 0;
                while sent < total {
                    let n = (total - sent).min(chunk);
                    if producer.write_all(pattern.at(sent, n)).is_err() {
                        return 1;
                    }
                    sent += n;
                }
                // Dropping the producer marks the end of the stream.
                0
            },
        )?;
        wait_ready(ready_read, "exercise04 producer")?;
        let mut attachment = segment.attach().map_err(solution("exercise04"))?;
        let mut consumer = Consumer::new(&mut attachment).map_err(solution("exercise04"))?;
        let mut buf = vec![0u8; chunk];
        let mut received = 0;
        loop {
            match consumer.read(&mut buf) {
                0 => break,
                n if buf[..n] == *pattern.at(received, n) => received += n,
                _ => {
                    return Err(Error::BadEcho {
                        what: "exercise04 ring",
                    })
                }
            }
        }
        drop(consumer);
        child.wait()?;
        if received != total {
            return Err(Error::ShortTransfer {
                what: "exercise04 ring",
                sent: total,
                received,
            });
        }
        Ok(rate(total, started))
    }

    /// The mailbox: we are the host, a child on `child_cpu` the guest that sends every message
    /// back; an empty message ends it. Waiting in the mailbox spins, then yields the CPU.
    pub fn ping_pong<T>(
        child_cpu: usize,
        session: impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<T>,
    ) -> Result<T> {
        let segment = Segment::create(4096).map_err(solution("exercise04"))?;
        let id = segment.id();
        let (ready_read, ready_write) = ready_pipe()?;
        let child = Child::spawn(
            "exercise04 guest",
            Some(child_cpu),
            &[ready_read.as_fd()],
            move || {
                let Ok(mut attachment) = Attachment::new(id) else {
                    return 1;
                };
                let Ok(mailbox) = Mailbox::new(&mut attachment, Side::Guest) else {
                    return 1;
                };
                if !say_ready(ready_write) {
                    return 1;
                }
                loop {
                    let message = mailbox.receive();
                    if message.is_empty() {
                        return 0;
                    }
                    if mailbox.send(&message).is_err() {
                        return 1;
                    }
                }
            },
        )?;
        wait_ready(ready_read, "exercise04 guest")?;
        let mut attachment = segment.attach().map_err(solution("exercise04"))?;
        let mailbox = Mailbox::new(&mut attachment, Side::Host).map_err(solution("exercise04"))?;
        let result = session(&mut || {
            mailbox.send(b"x").map_err(solution("exercise04"))?;
            if mailbox.receive() == b"x" {
                Ok(())
            } else {
                Err(Error::BadEcho {
                    what: "exercise04 mailbox",
                })
            }
        });
        let ended = mailbox.send(b"").map_err(solution("exercise04"));
        // On an error above the child may still spin: `Child`'s drop kills it then.
        ended?;
        child.wait()?;
        result
    }
}
