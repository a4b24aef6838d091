//! A raw shared-memory ring, the yardstick of exercise04's: a System V segment of one header page
//! and `capacity` bytes of data. `head` and `tail` count bytes, each written by one side only;
//! the producer copies the pattern in, the consumer checks every byte where it lies (one pass,
//! no copy out: the point of shared memory is that the reader can use the bytes in place).
//!
//! Each side reads the other's index only when its last reading says it must wait (the ring
//! full, or empty), and the consumer takes all that is there, up to [`STEP`] or a write's size:
//! a cache line that both sides write to would otherwise travel from one core to the other on
//! every write, which at 64 B per write costs more than the copy.
//!
//! Waiting comes in two kinds, the two ends of the trade-off:
//! - [`Wait::Spin`]: watch the other side's index, yielding the CPU after 2000 spins (so that
//!   both processes on one CPU still progress);
//! - [`Wait::Futex`]: sleep in the kernel at once (futex on a sequence word), and the other side
//!   makes a FUTEX_WAKE only when someone sleeps: the blocking wake-up a pipe pays on every
//!   exchange, here paid only when a side has nothing to do.
//!
//! c/raw.c has the same ring, line for line (`ipclab_c_ring_throughput`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use nix::errno::Errno;

use crate::lab::Pattern;
use crate::proc::{Child, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Spin,
    Futex,
}

/// How the consumer takes the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Checks them where they lie, in steps of up to [`STEP`] or a write's size: the most a
    /// ring allows.
    InPlace,
    /// Copies up to one write's size into a buffer, releases them, then checks the copy: what an
    /// API of `read(&mut buf)` costs, as exercise04's `Consumer::read` is.
    IntoBuffer,
}

/// The header page, each side's words on their own cache line (the C struct is the same).
#[repr(C)]
struct Header {
    head: AtomicU64,
    _pad0: [u8; 56],
    tail: AtomicU64,
    _pad1: [u8; 56],
    head_seq: AtomicU32,
    head_waiting: AtomicU32,
    _pad2: [u8; 56],
    tail_seq: AtomicU32,
    tail_waiting: AtomicU32,
}

const HEADER: usize = 4096;

/// The most the consumer checks before it publishes its index, unless a write is larger.
pub const STEP: usize = 64 * 1024;

fn futex(word: &AtomicU32, op: libc::c_int, val: u32) {
    // SAFETY: a valid, aligned 32-bit word in a shared mapping; no timeout, no second word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            val,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        )
    };
}

/// One side's index, its sequence word and its "someone sleeps" flag.
struct Side<'a> {
    index: &'a AtomicU64,
    seq: &'a AtomicU32,
    waiting: &'a AtomicU32,
}

impl Header {
    fn side(&self, head: bool) -> Side<'_> {
        if head {
            Side {
                index: &self.head,
                seq: &self.head_seq,
                waiting: &self.head_waiting,
            }
        } else {
            Side {
                index: &self.tail,
                seq: &self.tail_seq,
                waiting: &self.tail_waiting,
            }
        }
    }
}

impl Side<'_> {
    /// Waits until `have(index)` reaches `need`; returns the index seen.
    fn wait(&self, wait: Wait, need: u64, have: impl Fn(u64) -> u64) -> u64 {
        let mut spins = 0u32;
        loop {
            let v = self.index.load(Ordering::Acquire);
            if have(v) >= need {
                return v;
            }
            match wait {
                Wait::Spin => {
                    spins += 1;
                    if spins > 2000 {
                        // SAFETY: no arguments.
                        unsafe { libc::sched_yield() };
                    } else {
                        std::hint::spin_loop();
                    }
                }
                Wait::Futex => {
                    let seq = self.seq.load(Ordering::SeqCst);
                    self.waiting.store(1, Ordering::SeqCst);
                    if have(self.index.load(Ordering::SeqCst)) < need {
                        futex(self.seq, libc::FUTEX_WAIT, seq);
                    }
                    self.waiting.store(0, Ordering::SeqCst);
                }
            }
        }
    }

    fn publish(&self, wait: Wait, value: u64) {
        match wait {
            Wait::Spin => self.index.store(value, Ordering::Release),
            Wait::Futex => {
                self.index.store(value, Ordering::SeqCst);
                self.seq.fetch_add(1, Ordering::SeqCst);
                if self.waiting.load(Ordering::SeqCst) != 0 {
                    futex(self.seq, libc::FUTEX_WAKE, 1);
                }
            }
        }
    }
}

/// An attached, already removed segment (it lives while attached; a fork inherits it).
struct Segment(*mut u8);

impl Segment {
    fn new(len: usize) -> Result<Segment> {
        // SAFETY: plain integers.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(Error::Sys {
                call: "shmget",
                errno: Errno::last(),
            });
        }
        // SAFETY: attach anywhere, then mark for removal at once.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        let errno = Errno::last();
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        if addr as isize == -1 {
            return Err(Error::Sys {
                call: "shmat",
                errno,
            });
        }
        Ok(Segment(addr.cast()))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: attached in new, detached once.
        unsafe { libc::shmdt(self.0.cast()) };
    }
}

/// One way through the ring: a child produces `total` bytes in writes of `size`, we take them
/// as `read` says. Bytes per second.
pub fn throughput(
    wait: Wait,
    read: Read,
    size: usize,
    capacity: usize,
    total: usize,
    pattern: &Pattern,
    cpu: usize,
) -> Result<f64> {
    let segment = Segment::new(HEADER + capacity)?;
    // SAFETY: the segment is page-aligned and zeroed: a valid Header of atomics, then `capacity`
    // bytes that only the producer writes (before publishing) and the consumer reads (after).
    let header = unsafe { &*segment.0.cast::<Header>() };
    let data = unsafe { segment.0.add(HEADER) };
    let (cap, size64) = (capacity as u64, size as u64);
    let total = (total / size * size) as u64;
    let started = Instant::now();
    let child = Child::spawn("ring producer", Some(cpu), &[], move || {
        let (heads, tails) = (header.side(true), header.side(false));
        let (mut head, mut tail) = (0u64, 0u64);
        while head < total {
            if cap - (head - tail) < size64 {
                tail = tails.wait(wait, size64, |tail| cap - (head - tail));
            }
            let at = (head % cap) as usize;
            let first = (capacity - at).min(size);
            let src = pattern.at(head as usize, size);
            // SAFETY: [at, at + first) and [0, size - first) lie in the data area, and the
            // consumer is past them (the wait above).
            unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), data.add(at), first);
                std::ptr::copy_nonoverlapping(src.as_ptr().add(first), data, size - first);
            }
            head += size64;
            heads.publish(wait, head);
        }
        0
    })?;
    let (heads, tails) = (header.side(true), header.side(false));
    let (mut head, mut tail) = (0u64, 0u64);
    let step = match read {
        Read::InPlace => size.max(STEP),
        Read::IntoBuffer => size,
    } as u64;
    let mut buf = vec![0u8; if read == Read::IntoBuffer { size } else { 0 }];
    let mut bad = false;
    while tail < total {
        if head == tail {
            head = heads.wait(wait, 1, |head| head - tail);
        }
        let n = (head - tail).min(step) as usize;
        let at = (tail % cap) as usize;
        let first = (capacity - at).min(n);
        // SAFETY: the producer published these bytes (Acquire above) and waits before reusing them.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(data.add(at), first),
                std::slice::from_raw_parts(data, n - first),
            )
        };
        let at = tail as usize;
        if read == Read::IntoBuffer {
            buf[..first].copy_from_slice(a);
            buf[first..n].copy_from_slice(b);
            tail += n as u64;
            tails.publish(wait, tail);
            if buf[..n] != *pattern.at(at, n) {
                bad = true;
                break;
            }
        } else {
            if a != pattern.at(at, first) || b != pattern.at(at + first, n - first) {
                bad = true;
                break;
            }
            tail += n as u64;
            tails.publish(wait, tail);
        }
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    if bad {
        // Dropping the child kills it.
        drop(child);
        return Err(Error::BadEcho {
            what: "shared-memory ring",
        });
    }
    child.wait()?;
    Ok(rate)
}
