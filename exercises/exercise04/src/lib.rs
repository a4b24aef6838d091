//! Exercise 04: System V shared memory.
//!
//! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise04` grades your
//! work.
//!
//! A shared-memory segment is a set of pages the kernel keeps under an id. Each process that
//! attaches it (`shmat`) gets a range of its own virtual addresses mapped onto those same physical
//! pages, so a store by one process is a load away for the other: no system call, no copy through
//! the kernel. The price is that the kernel no longer orders anything for you. Everything beyond
//! "the bytes are there" (is the message complete? has the reader taken it?) is your protocol,
//! built from atomics with acquire/release ordering.
//!
//! Two guards keep the kernel's tables clean: a [`Segment`] marks its segment for removal
//! (`IPC_RMID`) when dropped, and an [`Attachment`] detaches (`shmdt`) when dropped. The segment
//! disappears once it is marked and its last attachment is gone.
//!
//! The `nix` crate has no System V calls: use `libc::shmget`, `shmat`, `shmdt`, `shmctl` and
//! `ftok`, each in an `unsafe` block with a `// SAFETY:` comment saying why the call is sound.
//!
//! # Soundness
//!
//! Rust's aliasing rules describe one process; they cannot see the other processes that map the
//! same pages. The slices handed out by [`Attachment::as_slice`] and [`Attachment::as_mut_slice`]
//! are sound *within this process* (the borrow checker keeps them exclusive here), but another
//! process may store into the same bytes at any time. Use plain slices for bulk data that a
//! protocol has handed over to you, and atomics ([`Mailbox`], [`Producer`], [`Consumer`]) for
//! anything both sides touch concurrently.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;
// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

// ---------------------------------------------------------------------------------------------
// Task 1: a segment and an attachment.

// Given in `given.rs`: [`Segment`] with its accessors `id`, `size` and `attach`, and
// [`Attachment`] with `id`, `size` and `as_ptr`.

impl Segment {
    /// Task 1: creates a new private segment (`IPC_PRIVATE`) of `size` bytes, mode `0600`.
    ///
    /// The kernel fills it with zeros. Errors: [`Error::ZeroSize`], [`Error::TooLarge`],
    /// [`Error::NoSpace`].
    pub fn create(size: usize) -> Result<Segment> {
        todo!("Task 1: shmget(IPC_PRIVATE, size, IPC_CREAT | IPC_EXCL | 0o600) and keep the id in a Segment")
    }

    /// Task 2: creates a new segment of `size` bytes, mode `0600`, under the key
    /// `ftok(path, PROJECT_ID)`, so that unrelated processes can find it with [`lookup`].
    ///
    /// Fails with [`Error::AlreadyExists`] if that key already names a segment.
    pub fn create_at(path: &Path, size: usize) -> Result<Segment> {
        todo!("Task 2: like create, with the key from key_for(path) instead of IPC_PRIVATE")
    }

    /// Task 3: marks the segment for removal now (`IPC_RMID`) and reports failure.
    ///
    /// It disappears at once if nobody is attached, or else at the last detach; meanwhile its key
    /// is gone (new [`lookup`]s fail) but existing attachments keep working.
    pub fn remove(self) -> Result<()> {
        todo!("Task 3: shmctl(id, IPC_RMID, null), and make sure Drop does not remove it a second time")
    }
}

impl Drop for Segment {
    /// Task 1: marks the segment for removal, so that it never outlives its creator's interest.
    fn drop(&mut self) {
        // The check only keeps this todo! from aborting a test run that is already panicking:
        // replace the whole `if` with your code. Drop must remove the segment during a panic too.
        if !std::thread::panicking() {
            todo!("Task 1: shmctl(id, IPC_RMID, null) when the Segment guard is dropped")
        }
    }
}

impl Attachment {
    /// Task 1: attaches segment `id` read-write, at an address the kernel chooses.
    ///
    /// Errors (task 5): [`Error::NoSuchSegment`] for an id that does not exist (or no longer
    /// does), [`Error::PermissionDenied`] for a segment this process may not use.
    pub fn new(id: ShmId) -> Result<Attachment> {
        todo!("Task 1: shmat(id, null, 0), then the segment's size from shmctl(IPC_STAT)")
    }

    /// Task 1: the segment's bytes, for as long as the attachment lives.
    ///
    /// Another process may change them meanwhile: read data that your protocol has handed over.
    pub fn as_slice(&self) -> &[u8] {
        todo!("Task 1: a slice over the mapping: std::slice::from_raw_parts(address, size)")
    }

    /// Task 1: the segment's bytes, writable, for as long as the attachment is borrowed.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        todo!("Task 1: std::slice::from_raw_parts_mut(address, size)")
    }

    /// Detaches now and reports failure (dropping detaches too, silently).
    pub fn detach(self) -> Result<()> {
        todo!("Task 3: shmdt(address), and make sure Drop does not detach a second time")
    }
}

impl Drop for Attachment {
    /// Task 1: detach, so that the segment's attachment count drops.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            todo!("Task 1: shmdt(address) when the Attachment is dropped")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Task 2: finding a segment from an unrelated process.

/// Task 2: the key `ftok` makes from `path` and [`PROJECT_ID`].
pub fn key_for(path: &Path) -> Result<libc::key_t> {
    todo!("Task 2: ftok(path as a C string, PROJECT_ID); -1 means the file cannot be used")
}

/// Task 2: the id of the existing segment created under `ftok(path, PROJECT_ID)`.
///
/// Fails with [`Error::NoSuchKey`] if there is none.
pub fn lookup(path: &Path) -> Result<ShmId> {
    todo!("Task 2: shmget(key_for(path), 0, 0): find, never create; ENOENT means no such key")
}

// ---------------------------------------------------------------------------------------------
// Task 3: what the kernel knows about a segment.

// Given in `given.rs`: [`SegmentStatus`].

/// Task 3: asks the kernel (`shmctl(IPC_STAT)`) about segment `id`.
pub fn status(id: ShmId) -> Result<SegmentStatus> {
    todo!("Task 3: shmctl(id, IPC_STAT, &mut shmid_ds); SHM_DEST (0o1000) in shm_perm.mode means marked for removal")
}

// ---------------------------------------------------------------------------------------------
// Task 2: a mailbox of one message each way.

// Given in `given.rs`: [`Side`].

/// A two-way mailbox laid out in a segment: one slot for each direction, each holding at most
/// one message at a time.
///
/// A fresh segment (all zeros) must read as two empty slots: nothing to initialise. Publish a
/// message by storing its bytes first and then marking the slot full with a release store; the
/// receiver's acquire load of "full" makes the bytes visible. The receiver empties the slot the
/// same way.
#[derive(Debug)]
pub struct Mailbox<'a> {
    // Change these fields as you like.
    attachment: &'a mut Attachment,
    side: Side,
}

impl<'a> Mailbox<'a> {
    /// Task 2: the mailbox in `attachment`, seen from `side`.
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold two slots of a 64-byte header
    /// and 64 bytes of data each (256 bytes).
    pub fn new(attachment: &'a mut Attachment, side: Side) -> Result<Mailbox<'a>> {
        todo!("Task 2: lay out two slots (a header with a state word and a length, then data) in the attachment")
    }

    /// The largest message either side can send.
    pub fn capacity(&self) -> usize {
        todo!("Task 2: the data bytes of one slot")
    }

    /// Task 2: waits until our outgoing slot is empty, then copies `message` into it and
    /// publishes it.
    ///
    /// If the slot is already empty this is nothing but loads and stores into the segment: no
    /// system call. Fails with [`Error::MessageTooLong`] if it does not fit.
    pub fn send(&self, message: &[u8]) -> Result<()> {
        todo!("Task 2: wait for our slot's state to be empty (Acquire), copy the bytes, store the length, then store full (Release)")
    }

    /// Task 2: waits for a message in our incoming slot, takes it, and empties the slot.
    pub fn receive(&self) -> Vec<u8> {
        todo!("Task 2: wait for the other slot's state to be full (Acquire), copy the bytes out, then store empty (Release)")
    }
}

// ---------------------------------------------------------------------------------------------
// Task 4: a single-producer single-consumer ring buffer.

/// The writing end of a ring laid out in a segment. Dropping it ends the stream: the consumer
/// reads what is left, then end of stream.
///
/// A fresh segment (all zeros) must read as an empty ring. Keep a cached copy of the other
/// side's index and re-read the shared one only when the cache says "full": otherwise the two
/// processes fight over one cache line on every call and throughput swings tenfold.
pub struct Producer<'a> {
    // Change these fields as you like.
    attachment: &'a mut Attachment,
}

impl<'a> Producer<'a> {
    /// Task 4: the producing end of the ring in `attachment` (a fresh segment is an empty ring).
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold the header and one byte.
    pub fn new(attachment: &'a mut Attachment) -> Result<Producer<'a>> {
        todo!("Task 4: a header in the segment (head, tail, a producer-done and a consumer-gone flag), data after it")
    }

    /// How many bytes the ring holds when full.
    pub fn capacity(&self) -> usize {
        todo!("Task 4: the size of the data area")
    }

    /// Task 4: copies as much of `data` as fits, waiting only while the ring is full; returns
    /// how much was copied (at least one byte unless `data` is empty).
    ///
    /// Fails with [`Error::ConsumerGone`] if the consumer has dropped its end.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        todo!("Task 4: wait while head - tail == capacity, copy into [head % capacity ..) (in two parts at the wrap), then store head (Release)")
    }

    /// Task 4: writes all of `data`, waiting for room as needed.
    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        todo!("Task 4: call write until everything is written")
    }
}

impl Drop for Producer<'_> {
    /// Task 4: end of stream.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            todo!("Task 4: set the producer-done flag (Release) so the consumer sees end of stream")
        }
    }
}

/// The reading end of a ring laid out in a segment. Dropping it tells the producer that nobody
/// reads any more.
pub struct Consumer<'a> {
    // Change these fields as you like.
    attachment: &'a mut Attachment,
}

impl<'a> Consumer<'a> {
    /// Task 4: the consuming end of the ring in `attachment`.
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold the header and one byte.
    pub fn new(attachment: &'a mut Attachment) -> Result<Consumer<'a>> {
        todo!("Task 4: the same header as Producer::new, seen from the other side")
    }

    /// Task 4: waits until at least one byte is available, copies as many as fit in `buf`, and
    /// returns how many; returns 0 once the producer has gone and everything was read.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        todo!("Task 4: wait while tail == head and the producer is not done, copy out of [tail % capacity ..), then store tail (Release)")
    }
}

impl Drop for Consumer<'_> {
    /// Task 4: tell the producer nobody reads any more.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            todo!("Task 4: set the consumer-gone flag (Release)")
        }
    }
}
