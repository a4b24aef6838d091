//! Exercise 04: System V shared memory — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 5). The task statement is in `README.md`
// STARTER: //! beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise04` grades your
// STARTER: //! work.
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
// STARTER: //! The `nix` crate has no System V calls: use `libc::shmget`, `shmat`, `shmdt`, `shmctl` and
// STARTER: //! `ftok`, each in an `unsafe` block with a `// SAFETY:` comment saying why the call is sound.
// STARTER: //!
//! # Soundness
//!
//! Rust's aliasing rules describe one process; they cannot see the other processes that map the
//! same pages. The slices handed out by [`Attachment::as_slice`] and [`Attachment::as_mut_slice`]
//! are sound *within this process* (the borrow checker keeps them exclusive here), but another
//! process may store into the same bytes at any time. Use plain slices for bulk data that a
//! protocol has handed over to you, and atomics ([`Mailbox`], [`Producer`], [`Consumer`]) for
//! anything both sides touch concurrently.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

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
#[path = "../../../exercises/exercise04/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}
// END SOLUTION

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
        // BEGIN SOLUTION Task 1: shmget(IPC_PRIVATE, size, IPC_CREAT | IPC_EXCL | 0o600) and keep the id in a Segment
        Segment::get(libc::IPC_PRIVATE, size).map_err(|errno| create_error(errno, size))
        // END SOLUTION
    }

    /// Task 2: creates a new segment of `size` bytes, mode `0600`, under the key
    /// `ftok(path, PROJECT_ID)`, so that unrelated processes can find it with [`lookup`].
    ///
    /// Fails with [`Error::AlreadyExists`] if that key already names a segment.
    pub fn create_at(path: &Path, size: usize) -> Result<Segment> {
        // BEGIN SOLUTION Task 2: like create, with the key from key_for(path) instead of IPC_PRIVATE
        let key = key_for(path)?;
        Segment::get(key, size).map_err(|errno| match errno {
            Errno::EEXIST => Error::AlreadyExists {
                path: path.to_owned(),
                key,
            },
            errno => create_error(errno, size),
        })
        // END SOLUTION
    }

    // BEGIN SOLUTION
    fn get(key: libc::key_t, size: usize) -> std::result::Result<Segment, Errno> {
        if size == 0 {
            // The kernel would say EINVAL, which also means "too large": tell them apart here.
            return Err(Errno::ERANGE);
        }
        // SAFETY: shmget takes plain integers and touches no memory of ours.
        let id = unsafe { libc::shmget(key, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(Errno::last());
        }
        Ok(Segment {
            id: ShmId(id),
            size,
        })
    }
    // END SOLUTION

    /// Task 3: marks the segment for removal now (`IPC_RMID`) and reports failure.
    ///
    /// It disappears at once if nobody is attached, or else at the last detach; meanwhile its key
    /// is gone (new [`lookup`]s fail) but existing attachments keep working.
    pub fn remove(self) -> Result<()> {
        // BEGIN SOLUTION Task 3: shmctl(id, IPC_RMID, null), and make sure Drop does not remove it a second time
        let id = self.id;
        // The guard's job is done here, with errors reported: no second IPC_RMID in drop.
        mem::forget(self);
        remove(id)
        // END SOLUTION
    }
}

impl Drop for Segment {
    /// Task 1: marks the segment for removal, so that it never outlives its creator's interest.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // The check only keeps this todo! from aborting a test run that is already panicking:
        // STARTER: // replace the whole `if` with your code. Drop must remove the segment during a panic too.
        // STARTER: if !std::thread::panicking() {
        // STARTER: todo!("Task 1: shmctl(id, IPC_RMID, null) when the Segment guard is dropped")
        // STARTER: }
        // Nothing to report from a destructor: at worst someone removed it already.
        let _ = remove(self.id);
        // END SOLUTION
    }
}

// BEGIN SOLUTION
fn remove(id: ShmId) -> Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is fine.
    let rc = unsafe { libc::shmctl(id.0, libc::IPC_RMID, ptr::null_mut()) };
    if rc < 0 {
        return Err(id_error(Errno::last(), id, "shmctl(IPC_RMID)"));
    }
    Ok(())
}

fn create_error(errno: Errno, size: usize) -> Error {
    match errno {
        Errno::ERANGE => Error::ZeroSize,
        // shmget says EINVAL when the size is outside [SHMMIN, SHMMAX].
        Errno::EINVAL => Error::TooLarge { size },
        Errno::ENOSPC => Error::NoSpace,
        errno => Error::Sys {
            call: "shmget",
            errno,
        },
    }
}

/// Maps the errno of a call that names a segment by id.
fn id_error(errno: Errno, id: ShmId, call: &'static str) -> Error {
    match errno {
        // EINVAL: no such id (or an id whose slot was reused); EIDRM: removed.
        Errno::EINVAL | Errno::EIDRM => Error::NoSuchSegment { id },
        Errno::EACCES | Errno::EPERM => Error::PermissionDenied { id },
        errno => Error::Sys { call, errno },
    }
}
// END SOLUTION

impl Attachment {
    /// Task 1: attaches segment `id` read-write, at an address the kernel chooses.
    ///
    /// Errors (task 5): [`Error::NoSuchSegment`] for an id that does not exist (or no longer
    /// does), [`Error::PermissionDenied`] for a segment this process may not use.
    pub fn new(id: ShmId) -> Result<Attachment> {
        // BEGIN SOLUTION Task 1: shmat(id, null, 0), then the segment's size from shmctl(IPC_STAT)
        // SAFETY: a null address lets the kernel choose where to map; no memory of ours is touched.
        let addr = unsafe { libc::shmat(id.0, ptr::null(), 0) };
        if addr as isize == -1 {
            return Err(id_error(Errno::last(), id, "shmat"));
        }
        let addr = NonNull::new(addr.cast::<u8>()).ok_or(Error::Sys {
            call: "shmat",
            errno: Errno::EFAULT,
        })?;
        // From here on the guard exists: any error below detaches again.
        let mut attachment = Attachment {
            addr,
            size: 0,
            id,
            _not_sync: PhantomData,
        };
        attachment.size = stat(id)?.shm_segsz;
        Ok(attachment)
        // END SOLUTION
    }

    /// Task 1: the segment's bytes, for as long as the attachment lives.
    ///
    /// Another process may change them meanwhile: read data that your protocol has handed over.
    pub fn as_slice(&self) -> &[u8] {
        // BEGIN SOLUTION Task 1: a slice over the mapping: std::slice::from_raw_parts(address, size)
        // SAFETY: the mapping is `size` bytes long, readable, and stays mapped while `self`
        // lives (shmdt happens only in drop/detach, which need `self` by value or `&mut`).
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.size) }
        // END SOLUTION
    }

    /// Task 1: the segment's bytes, writable, for as long as the attachment is borrowed.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // BEGIN SOLUTION Task 1: std::slice::from_raw_parts_mut(address, size)
        // SAFETY: as for `as_slice`; `&mut self` makes this the only slice in this process.
        unsafe { std::slice::from_raw_parts_mut(self.addr.as_ptr(), self.size) }
        // END SOLUTION
    }

    /// Detaches now and reports failure (dropping detaches too, silently).
    pub fn detach(self) -> Result<()> {
        // BEGIN SOLUTION Task 3: shmdt(address), and make sure Drop does not detach a second time
        let addr = self.addr;
        mem::forget(self);
        detach(addr)
        // END SOLUTION
    }
}

impl Drop for Attachment {
    /// Task 1: detach, so that the segment's attachment count drops.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: if !std::thread::panicking() {
        // STARTER: todo!("Task 1: shmdt(address) when the Attachment is dropped")
        // STARTER: }
        let _ = detach(self.addr);
        // END SOLUTION
    }
}

// BEGIN SOLUTION
fn detach(addr: NonNull<u8>) -> Result<()> {
    // SAFETY: `addr` is an address shmat returned and nothing in this process uses the mapping
    // any more (the attachment that owned it is gone).
    if unsafe { libc::shmdt(addr.as_ptr().cast()) } < 0 {
        return Err(sys("shmdt")(Errno::last()));
    }
    Ok(())
}
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// Task 2: finding a segment from an unrelated process.

/// Task 2: the key `ftok` makes from `path` and [`PROJECT_ID`].
pub fn key_for(path: &Path) -> Result<libc::key_t> {
    // BEGIN SOLUTION Task 2: ftok(path as a C string, PROJECT_ID); -1 means the file cannot be used
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::KeyFile {
        path: path.to_owned(),
        errno: Errno::EINVAL,
    })?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    let key = unsafe { libc::ftok(c_path.as_ptr(), PROJECT_ID) };
    if key == -1 {
        return Err(Error::KeyFile {
            path: path.to_owned(),
            errno: Errno::last(),
        });
    }
    Ok(key)
    // END SOLUTION
}

/// Task 2: the id of the existing segment created under `ftok(path, PROJECT_ID)`.
///
/// Fails with [`Error::NoSuchKey`] if there is none.
pub fn lookup(path: &Path) -> Result<ShmId> {
    // BEGIN SOLUTION Task 2: shmget(key_for(path), 0, 0): find, never create; ENOENT means no such key
    let key = key_for(path)?;
    // SAFETY: shmget takes plain integers. Size 0 and no IPC_CREAT: find, never create.
    let id = unsafe { libc::shmget(key, 0, 0) };
    if id < 0 {
        return Err(match Errno::last() {
            Errno::ENOENT => Error::NoSuchKey {
                path: path.to_owned(),
                key,
            },
            errno => Error::Sys {
                call: "shmget",
                errno,
            },
        });
    }
    Ok(ShmId(id))
    // END SOLUTION
}

// ---------------------------------------------------------------------------------------------
// Task 3: what the kernel knows about a segment.

// Given in `given.rs`: [`SegmentStatus`].

/// Task 3: asks the kernel (`shmctl(IPC_STAT)`) about segment `id`.
pub fn status(id: ShmId) -> Result<SegmentStatus> {
    // BEGIN SOLUTION Task 3: shmctl(id, IPC_STAT, &mut shmid_ds); SHM_DEST (0o1000) in shm_perm.mode means marked for removal
    let ds = stat(id)?;
    Ok(SegmentStatus {
        size: ds.shm_segsz,
        attachments: ds.shm_nattch,
        creator: Pid::from_raw(ds.shm_cpid),
        last_attach_or_detach: Pid::from_raw(ds.shm_lpid),
        marked_for_removal: u32::from(ds.shm_perm.mode) & SHM_DEST != 0,
    })
    // END SOLUTION
}

// BEGIN SOLUTION
/// The mode bit the kernel sets on a segment marked for removal (`SHM_DEST` in
/// `<linux/shm.h>`; the libc crate does not export it for Linux).
const SHM_DEST: u32 = 0o1000;

fn stat(id: ShmId) -> Result<libc::shmid_ds> {
    let mut ds = MaybeUninit::<libc::shmid_ds>::uninit();
    // SAFETY: IPC_STAT writes one shmid_ds into the buffer we pass.
    if unsafe { libc::shmctl(id.0, libc::IPC_STAT, ds.as_mut_ptr()) } < 0 {
        return Err(id_error(Errno::last(), id, "shmctl(IPC_STAT)"));
    }
    // SAFETY: shmctl succeeded, so it filled the structure.
    Ok(unsafe { ds.assume_init() })
}
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// Task 2: a mailbox of one message each way.

// Given in `given.rs`: [`Side`].

// BEGIN SOLUTION
/// A slot header: a state word and a length, alone on a cache line, then the data.
const SLOT_HEADER: usize = 64;
const EMPTY: u32 = 0;
const FULL: u32 = 1;
// END SOLUTION

/// A two-way mailbox laid out in a segment: one slot for each direction, each holding at most
/// one message at a time.
///
/// A fresh segment (all zeros) must read as two empty slots: nothing to initialise. Publish a
/// message by storing its bytes first and then marking the slot full with a release store; the
/// receiver's acquire load of "full" makes the bytes visible. The receiver empties the slot the
/// same way.
#[derive(Debug)]
pub struct Mailbox<'a> {
    // BEGIN SOLUTION
    // STARTER: // Change these fields as you like.
    // STARTER: attachment: &'a mut Attachment,
    base: NonNull<u8>,
    capacity: usize,
    // END SOLUTION
    side: Side,
    // BEGIN SOLUTION
    _attachment: PhantomData<&'a mut Attachment>,
    // END SOLUTION
}

impl<'a> Mailbox<'a> {
    /// Task 2: the mailbox in `attachment`, seen from `side`.
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold two slots of a 64-byte header
    /// and 64 bytes of data each (256 bytes).
    pub fn new(attachment: &'a mut Attachment, side: Side) -> Result<Mailbox<'a>> {
        // BEGIN SOLUTION Task 2: lay out two slots (a header with a state word and a length, then data) in the attachment
        // Each slot starts on a 64-byte boundary (shmat returns page-aligned addresses), so its
        // header words are aligned and on a cache line of their own.
        let stride = (attachment.size() / 2) & !63;
        if stride < SLOT_HEADER + 64 {
            return Err(Error::TooSmall {
                size: attachment.size(),
                needed: 2 * (SLOT_HEADER + 64),
            });
        }
        Ok(Mailbox {
            base: attachment.addr,
            capacity: stride - SLOT_HEADER,
            side,
            _attachment: PhantomData,
        })
        // END SOLUTION
    }

    /// The largest message either side can send.
    pub fn capacity(&self) -> usize {
        // BEGIN SOLUTION Task 2: the data bytes of one slot
        self.capacity
        // END SOLUTION
    }

    /// Task 2: waits until our outgoing slot is empty, then copies `message` into it and
    /// publishes it.
    ///
    /// If the slot is already empty this is nothing but loads and stores into the segment: no
    /// system call. Fails with [`Error::MessageTooLong`] if it does not fit.
    pub fn send(&self, message: &[u8]) -> Result<()> {
        // BEGIN SOLUTION Task 2: wait for our slot's state to be empty (Acquire), copy the bytes, store the length, then store full (Release)
        if message.len() > self.capacity {
            return Err(Error::MessageTooLong {
                len: message.len(),
                capacity: self.capacity,
            });
        }
        let slot = self.slot(self.side == Side::Host);
        wait_until(|| slot.state.load(Ordering::Acquire) == EMPTY);
        // SAFETY: the slot is empty, so the receiver does not touch its data until we publish;
        // `message` fits in the `capacity` bytes after the header.
        unsafe { ptr::copy_nonoverlapping(message.as_ptr(), slot.data, message.len()) };
        slot.len.store(message.len() as u64, Ordering::Relaxed);
        // Release: the bytes and the length are visible before "full" is.
        slot.state.store(FULL, Ordering::Release);
        Ok(())
        // END SOLUTION
    }

    /// Task 2: waits for a message in our incoming slot, takes it, and empties the slot.
    pub fn receive(&self) -> Vec<u8> {
        // BEGIN SOLUTION Task 2: wait for the other slot's state to be full (Acquire), copy the bytes out, then store empty (Release)
        let slot = self.slot(self.side == Side::Guest);
        wait_until(|| slot.state.load(Ordering::Acquire) == FULL);
        // A corrupt length (another program writing nonsense) must not make us read past the slot.
        let len = (slot.len.load(Ordering::Relaxed) as usize).min(self.capacity);
        let mut message = vec![0u8; len];
        // SAFETY: the slot is full, so the sender does not touch it until we empty it; `len` is
        // within the slot's data.
        unsafe { ptr::copy_nonoverlapping(slot.data, message.as_mut_ptr(), len) };
        // Release: we are done reading before the sender may write again.
        slot.state.store(EMPTY, Ordering::Release);
        message
        // END SOLUTION
    }

    // BEGIN SOLUTION
    /// The first slot carries host-to-guest messages, the second guest-to-host.
    fn slot(&self, host_to_guest: bool) -> Slot<'_> {
        let offset = if host_to_guest {
            0
        } else {
            SLOT_HEADER + self.capacity
        };
        // SAFETY: both slots lie within the attachment (checked in `new`); headers are 64-byte
        // aligned, so the atomics are aligned, and the segment is only accessed through atomics
        // for these words.
        unsafe {
            let header = self.base.as_ptr().add(offset);
            Slot {
                state: AtomicU32::from_ptr(header.cast()),
                len: AtomicU64::from_ptr(header.add(8).cast()),
                data: header.add(SLOT_HEADER),
            }
        }
    }
    // END SOLUTION
}

// BEGIN SOLUTION
struct Slot<'m> {
    state: &'m AtomicU32,
    len: &'m AtomicU64,
    data: *mut u8,
}

/// Spins until `ready` holds: first with the CPU's spin hint, then yielding the CPU, so that a
/// peer on the same CPU gets to run. Never sleeps.
fn wait_until(mut ready: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < 128 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// Task 4: a single-producer single-consumer ring buffer.

// BEGIN SOLUTION
/// The ring's header: the producer's index, the consumer's index and the two "gone" flags, each
/// on a cache line of its own so that the two sides do not fight over one line.
const HEAD: usize = 0;
const TAIL: usize = 64;
const PRODUCER_DONE: usize = 128;
const CONSUMER_GONE: usize = 192;
const RING_HEADER: usize = 256;

/// The ring's shared words, borrowed from the segment.
struct RingHeader<'a> {
    /// Bytes ever written; only the producer stores it.
    head: &'a AtomicU64,
    /// Bytes ever read; only the consumer stores it.
    tail: &'a AtomicU64,
    producer_done: &'a AtomicU32,
    consumer_gone: &'a AtomicU32,
    data: *mut u8,
    capacity: usize,
}

impl RingHeader<'_> {
    fn new(attachment: &mut Attachment) -> Result<RingHeader<'_>> {
        let needed = RING_HEADER + 1;
        if attachment.size() < needed {
            return Err(Error::TooSmall {
                size: attachment.size(),
                needed,
            });
        }
        let base = attachment.as_ptr();
        // SAFETY: the header lies within the attachment (checked above) and is 64-byte aligned
        // (shmat returns page-aligned addresses); these words are only accessed atomically.
        unsafe {
            Ok(RingHeader {
                head: AtomicU64::from_ptr(base.add(HEAD).cast()),
                tail: AtomicU64::from_ptr(base.add(TAIL).cast()),
                producer_done: AtomicU32::from_ptr(base.add(PRODUCER_DONE).cast()),
                consumer_gone: AtomicU32::from_ptr(base.add(CONSUMER_GONE).cast()),
                data: base.add(RING_HEADER),
                capacity: attachment.size() - RING_HEADER,
            })
        }
    }
}
// END SOLUTION

/// The writing end of a ring laid out in a segment. Dropping it ends the stream: the consumer
/// reads what is left, then end of stream.
///
/// A fresh segment (all zeros) must read as an empty ring. Keep a cached copy of the other
/// side's index and re-read the shared one only when the cache says "full": otherwise the two
/// processes fight over one cache line on every call and throughput swings tenfold.
pub struct Producer<'a> {
    // BEGIN SOLUTION
    // STARTER: // Change these fields as you like.
    // STARTER: attachment: &'a mut Attachment,
    ring: RingHeader<'a>,
    /// Our own index: bytes written so far.
    head: u64,
    /// The consumer's index as we last read it: never ahead of the real one.
    cached_tail: u64,
    // END SOLUTION
}

impl<'a> Producer<'a> {
    /// Task 4: the producing end of the ring in `attachment` (a fresh segment is an empty ring).
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold the header and one byte.
    pub fn new(attachment: &'a mut Attachment) -> Result<Producer<'a>> {
        // BEGIN SOLUTION Task 4: a header in the segment (head, tail, a producer-done and a consumer-gone flag), data after it
        let ring = RingHeader::new(attachment)?;
        let head = ring.head.load(Ordering::Relaxed);
        let cached_tail = ring.tail.load(Ordering::Acquire);
        Ok(Producer {
            ring,
            head,
            cached_tail,
        })
        // END SOLUTION
    }

    /// How many bytes the ring holds when full.
    pub fn capacity(&self) -> usize {
        // BEGIN SOLUTION Task 4: the size of the data area
        self.ring.capacity
        // END SOLUTION
    }

    /// Task 4: copies as much of `data` as fits, waiting only while the ring is full; returns
    /// how much was copied (at least one byte unless `data` is empty).
    ///
    /// Fails with [`Error::ConsumerGone`] if the consumer has dropped its end.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        // BEGIN SOLUTION Task 4: wait while head - tail == capacity, copy into [head % capacity ..) (in two parts at the wrap), then store head (Release)
        if data.is_empty() {
            return Ok(0);
        }
        // The consumer writes this flag once, when it leaves: reading it costs no cache traffic.
        if self.ring.consumer_gone.load(Ordering::Acquire) != 0 {
            return Err(Error::ConsumerGone { written: 0 });
        }
        let capacity = self.ring.capacity as u64;
        if self.head - self.cached_tail == capacity {
            let (tail, gone) = (self.ring.tail, self.ring.consumer_gone);
            let mut cached = self.cached_tail;
            wait_until(|| {
                // Acquire: the consumer has finished copying out what it released.
                cached = tail.load(Ordering::Acquire);
                self.head - cached < capacity || gone.load(Ordering::Acquire) != 0
            });
            self.cached_tail = cached;
            if self.head - self.cached_tail == capacity {
                return Err(Error::ConsumerGone { written: 0 });
            }
        }
        let free = (capacity - (self.head - self.cached_tail)) as usize;
        let n = free.min(data.len());
        let start = (self.head % capacity) as usize;
        let first = n.min(self.ring.capacity - start);
        // SAFETY: [head, head + n) is free space (the consumer is done with it), split into at
        // most two contiguous runs inside the data area.
        unsafe {
            ptr::copy_nonoverlapping(data.as_ptr(), self.ring.data.add(start), first);
            ptr::copy_nonoverlapping(data.as_ptr().add(first), self.ring.data, n - first);
        }
        self.head += n as u64;
        // Release: the bytes are in place before the consumer can see the new head.
        self.ring.head.store(self.head, Ordering::Release);
        Ok(n)
        // END SOLUTION
    }

    /// Task 4: writes all of `data`, waiting for room as needed.
    // BEGIN SOLUTION
    // STARTER: pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
    // STARTER: todo!("Task 4: call write until everything is written")
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        let mut written = 0;
        while !data.is_empty() {
            match self.write(data) {
                Ok(n) => {
                    written += n;
                    data = &data[n..];
                }
                Err(Error::ConsumerGone { .. }) => return Err(Error::ConsumerGone { written }),
                Err(e) => return Err(e),
            }
        }
        Ok(())
        // END SOLUTION
    }
}

impl Drop for Producer<'_> {
    /// Task 4: end of stream.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: if !std::thread::panicking() {
        // STARTER: todo!("Task 4: set the producer-done flag (Release) so the consumer sees end of stream")
        // STARTER: }
        self.ring.producer_done.store(1, Ordering::Release);
        // END SOLUTION
    }
}

/// The reading end of a ring laid out in a segment. Dropping it tells the producer that nobody
/// reads any more.
pub struct Consumer<'a> {
    // BEGIN SOLUTION
    // STARTER: // Change these fields as you like.
    // STARTER: attachment: &'a mut Attachment,
    ring: RingHeader<'a>,
    /// Our own index: bytes read so far.
    tail: u64,
    /// The producer's index as we last read it: never ahead of the real one.
    cached_head: u64,
    // END SOLUTION
}

impl<'a> Consumer<'a> {
    /// Task 4: the consuming end of the ring in `attachment`.
    ///
    /// Fails with [`Error::TooSmall`] if the segment cannot hold the header and one byte.
    pub fn new(attachment: &'a mut Attachment) -> Result<Consumer<'a>> {
        // BEGIN SOLUTION Task 4: the same header as Producer::new, seen from the other side
        let ring = RingHeader::new(attachment)?;
        let tail = ring.tail.load(Ordering::Relaxed);
        let cached_head = ring.head.load(Ordering::Acquire);
        Ok(Consumer {
            ring,
            tail,
            cached_head,
        })
        // END SOLUTION
    }

    /// Task 4: waits until at least one byte is available, copies as many as fit in `buf`, and
    /// returns how many; returns 0 once the producer has gone and everything was read.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        // BEGIN SOLUTION Task 4: wait while tail == head and the producer is not done, copy out of [tail % capacity ..), then store tail (Release)
        if buf.is_empty() {
            return 0;
        }
        if self.cached_head == self.tail {
            let (head, done) = (self.ring.head, self.ring.producer_done);
            let mut cached = self.cached_head;
            wait_until(|| {
                // Check "done" first: if it is set, the head we load after it is final.
                let finished = done.load(Ordering::Acquire) != 0;
                cached = head.load(Ordering::Acquire);
                cached != self.tail || finished
            });
            self.cached_head = cached;
            if self.cached_head == self.tail {
                return 0;
            }
        }
        let capacity = self.ring.capacity as u64;
        let n = ((self.cached_head - self.tail) as usize).min(buf.len());
        let start = (self.tail % capacity) as usize;
        let first = n.min(self.ring.capacity - start);
        // SAFETY: [tail, tail + n) was published by the producer (acquire load of head above),
        // which does not touch it until we move the tail past it.
        unsafe {
            ptr::copy_nonoverlapping(self.ring.data.add(start), buf.as_mut_ptr(), first);
            ptr::copy_nonoverlapping(self.ring.data, buf.as_mut_ptr().add(first), n - first);
        }
        self.tail += n as u64;
        // Release: we are done reading these bytes before the producer may overwrite them.
        self.ring.tail.store(self.tail, Ordering::Release);
        n
        // END SOLUTION
    }
}

impl Drop for Consumer<'_> {
    /// Task 4: tell the producer nobody reads any more.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: if !std::thread::panicking() {
        // STARTER: todo!("Task 4: set the consumer-gone flag (Release)")
        // STARTER: }
        self.ring.consumer_gone.store(1, Ordering::Release);
        // END SOLUTION
    }
}
