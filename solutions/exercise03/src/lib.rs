//! Exercise 03: System V message queues — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions below (tasks 1 to 7). The task statement is in `README.md`
// STARTER: //! beside this file; `cargo ipclab hint 3` gives hints; `cargo test -p exercise03` grades your
// STARTER: //! work.
//!
//! A message queue is a list of messages kept by the kernel. It belongs to no process: it exists
//! from `msgget(IPC_CREAT)` until someone removes it with `msgctl(IPC_RMID)`, whoever made it and
//! whether or not that process still runs. So the one who creates a queue owns its removal
//! ([`OwnedQueue`] does it on drop), and everyone else only opens it ([`MessageQueue`]).
//!
//! The `nix` crate does not wrap System V IPC, so this file calls `libc` directly. Every `unsafe`
//! block is small and says why it is sound; everything outside them is safe Rust.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs;
use std::mem;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
// BEGIN SOLUTION
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::OnceLock;
// END SOLUTION

use nix::errno::Errno;
use nix::unistd::{getpid, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
#[path = "../../../exercises/exercise03/src/given.rs"]
mod given;
pub use given::*;

impl Key {
    /// Task 1: the key `ftok(path, project)` derives from an existing file's device and inode
    /// number, and the low 8 bits of `project` (which must not be 0).
    ///
    /// A missing file is [`Error::NoSuchPath`]; project 0 is [`Error::InvalidProjectId`].
    pub fn from_path(path: &Path, project: u8) -> Result<Key> {
        // BEGIN SOLUTION Task 1: libc::ftok on the path as a CString; ENOENT becomes Error::NoSuchPath
        if project == 0 {
            return Err(Error::InvalidProjectId);
        }
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Sys {
            call: "ftok",
            errno: Errno::EINVAL,
        })?;
        // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
        let key = unsafe { libc::ftok(c_path.as_ptr(), libc::c_int::from(project)) };
        if key == -1 {
            return Err(match Errno::last() {
                Errno::ENOENT | Errno::ENOTDIR => Error::NoSuchPath {
                    path: path.to_path_buf(),
                },
                errno => Error::Sys {
                    call: "ftok",
                    errno,
                },
            });
        }
        Ok(Key(key))
        // END SOLUTION
    }
}

/// Task 4: the kernel's limit on one message's text (`/proc/sys/kernel/msgmax`), in bytes.
pub fn msgmax() -> Result<usize> {
    // BEGIN SOLUTION Task 4: read and parse /proc/sys/kernel/msgmax
    read_limit(MSGMAX_PATH)
    // END SOLUTION
}

/// Task 4: the default capacity of a new queue (`/proc/sys/kernel/msgmnb`), in bytes.
pub fn msgmnb() -> Result<usize> {
    // BEGIN SOLUTION Task 4: read and parse /proc/sys/kernel/msgmnb
    read_limit(MSGMNB_PATH)
    // END SOLUTION
}

// BEGIN SOLUTION
/// msgmax, read once per process: it changes only by sysctl, and reading /proc for every message
/// made sending four times slower than the bare system call.
fn cached_msgmax() -> Result<usize> {
    static MSGMAX: OnceLock<usize> = OnceLock::new();
    if let Some(max) = MSGMAX.get() {
        return Ok(*max);
    }
    let max = msgmax()?;
    Ok(*MSGMAX.get_or_init(|| max))
}

fn read_limit(path: &'static str) -> Result<usize> {
    let text = fs::read_to_string(path).map_err(|e| Error::Limit {
        path,
        reason: e.to_string(),
    })?;
    text.trim().parse().map_err(|_| Error::Limit {
        path,
        reason: format!("{:?} is not a number", text.trim()),
    })
}
// END SOLUTION

impl MessageQueue {
    /// Task 1: create a new queue for `key` with permission bits `mode` (at most `0o777`). A
    /// queue that already exists for a (non-private) key is [`Error::AlreadyExists`]; a mode
    /// with other bits is [`Error::InvalidMode`].
    pub fn create(key: Key, mode: u32) -> Result<OwnedQueue> {
        // BEGIN SOLUTION Task 1: msgget(key, IPC_CREAT | IPC_EXCL | mode); map EEXIST and EACCES to their Error variants
        if mode & !0o777 != 0 {
            return Err(Error::InvalidMode { mode });
        }
        // The mode fits in the nine low bits, checked above.
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int;
        let id = msgget(key, flags)?;
        Ok(OwnedQueue {
            queue: MessageQueue { id },
        })
        // END SOLUTION
    }

    /// Task 1: open the existing queue for `key`, for reading and writing. No queue is
    /// [`Error::NotFound`]; a queue this user may not read and write is
    /// [`Error::PermissionDenied`]; the private key is [`Error::PrivateKey`].
    pub fn open(key: Key) -> Result<MessageQueue> {
        // BEGIN SOLUTION Task 1: msgget(key, 0o600) asks for read and write; map ENOENT and EACCES to their Error variants
        if key.is_private() {
            return Err(Error::PrivateKey);
        }
        // Asking for read and write (0o600) makes the kernel check the queue's mode now, rather
        // than at the first send or receive.
        let id = msgget(key, 0o600)?;
        Ok(MessageQueue { id })
        // END SOLUTION
    }

    /// The queue identifier (`msqid`), as `ipcs -q` and `/proc/sysvipc/msg` show it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Task 2: append a message of type `mtype` (positive, else [`Error::InvalidType`]) to the
    /// queue; blocks while the queue is full. Text longer than [`msgmax`] is
    /// [`Error::TooLarge`] (task 4), refused before any system call.
    pub fn send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        // BEGIN SOLUTION Task 2: lay out a c_long type followed by the text, then msgsnd
        self.send_with(mtype, &[data], 0)
        // END SOLUTION
    }

    /// Task 4: like `send`, but a full queue is [`Error::QueueFull`] instead of a wait.
    pub fn try_send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        // BEGIN SOLUTION Task 4: msgsnd with IPC_NOWAIT; EAGAIN means the queue is full
        self.send_with(mtype, &[data], libc::IPC_NOWAIT)
        // END SOLUTION
    }

    /// Task 2: take the message `which` selects out of the queue; blocks until there is one.
    ///
    /// Task 7: if the queue is removed (while waiting, or before), this is [`Error::Removed`].
    pub fn receive(&self, which: Selector) -> Result<Message> {
        // BEGIN SOLUTION Task 2: msgrcv into a buffer of a c_long and msgmax bytes, with msgtyp 0, t or -bound
        self.receive_with(which, 0)?.ok_or(Error::Sys {
            call: "msgrcv",
            errno: Errno::ENOMSG,
        })
        // END SOLUTION
    }

    /// Task 3: like `receive`, but returns `Ok(None)` at once if no message matches.
    pub fn try_receive(&self, which: Selector) -> Result<Option<Message>> {
        // BEGIN SOLUTION Task 3: msgrcv with IPC_NOWAIT; ENOMSG means Ok(None)
        self.receive_with(which, libc::IPC_NOWAIT)
        // END SOLUTION
    }

    /// Task 5: the queue's status, from `msgctl(IPC_STAT)`.
    pub fn status(&self) -> Result<QueueStatus> {
        // BEGIN SOLUTION Task 5: msgctl(IPC_STAT) into a zeroed libc::msqid_ds
        // SAFETY: msqid_ds is plain data; all zeroes is a valid value.
        let mut ds: libc::msqid_ds = unsafe { mem::zeroed() };
        // SAFETY: `ds` is a valid, writable msqid_ds for the kernel to fill.
        if unsafe { libc::msgctl(self.id, libc::IPC_STAT, &mut ds) } == -1 {
            return Err(self.error("msgctl(IPC_STAT)", Errno::last()));
        }
        let pid = |raw: libc::pid_t| (raw != 0).then(|| Pid::from_raw(raw));
        Ok(QueueStatus {
            messages: ds.msg_qnum,
            bytes: ds.__msg_cbytes,
            capacity: ds.msg_qbytes,
            last_sender: pid(ds.msg_lspid),
            last_receiver: pid(ds.msg_lrpid),
            mode: u32::from(ds.msg_perm.mode) & 0o777,
        })
        // END SOLUTION
    }

    // BEGIN SOLUTION
    /// Sends one message whose text is `parts`, one after the other.
    fn send_with(&self, mtype: i64, parts: &[&[u8]], flags: libc::c_int) -> Result<()> {
        let mtype_c = libc::c_long::try_from(mtype)
            .ok()
            .filter(|t| *t > 0)
            .ok_or(Error::InvalidType { mtype })?;
        let len = parts.iter().map(|part| part.len()).sum();
        // Checked before the call: the kernel would say only EINVAL, which also means "no queue".
        let max = cached_msgmax()?;
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        // This thread's buffer, taken out for the call (a nested call would find none and
        // allocate its own) and put back after it.
        let buffer = MessageBuffer::outgoing(SEND_WORDS.take(), mtype_c, parts);
        let sent = self.send_buffer(&buffer, len, flags);
        SEND_WORDS.set(buffer.words);
        sent
    }

    fn send_buffer(&self, buffer: &MessageBuffer, len: usize, flags: libc::c_int) -> Result<()> {
        loop {
            // SAFETY: the buffer holds a c_long type followed by `len` bytes of text, as msgsnd
            // reads it; it outlives the call.
            let sent = unsafe { libc::msgsnd(self.id, buffer.as_ptr(), len, flags) };
            if sent == 0 {
                return Ok(());
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::EAGAIN => return Err(Error::QueueFull { len }),
                errno => return Err(self.error("msgsnd", errno)),
            }
        }
    }

    fn receive_with(&self, which: Selector, flags: libc::c_int) -> Result<Option<Message>> {
        let msgtyp = match which {
            Selector::First => 0,
            Selector::OfType(t) if t > 0 => t,
            Selector::LowestUpTo(bound) if bound > 0 => -bound,
            Selector::OfType(t) | Selector::LowestUpTo(t) => {
                return Err(Error::InvalidType { mtype: t })
            }
        };
        let msgtyp =
            libc::c_long::try_from(msgtyp).map_err(|_| Error::InvalidType { mtype: msgtyp })?;
        // No message in the queue is longer than msgmax was when it was sent.
        let capacity = cached_msgmax()?;
        // This thread's buffer, taken out for the call (a nested call would find none and
        // allocate its own) and put back after it.
        let mut buffer = MessageBuffer::incoming(RECEIVE_WORDS.take(), capacity);
        let received = self.receive_into(&mut buffer, capacity, msgtyp, flags);
        RECEIVE_WORDS.set(buffer.words);
        received
    }

    fn receive_into(
        &self,
        buffer: &mut MessageBuffer,
        capacity: usize,
        msgtyp: libc::c_long,
        flags: libc::c_int,
    ) -> Result<Option<Message>> {
        // The size msgrcv may fill is read off the memory reserved, not assumed from what was
        // asked for: a buffer one word short then refuses a message of exactly `capacity`
        // bytes (E2BIG) instead of letting the kernel write past its end.
        let room = buffer.text_room().min(capacity);
        loop {
            // SAFETY: the buffer has room for a c_long and `room` bytes of text, which is the
            // most msgrcv may write; it outlives the call.
            let got = unsafe { libc::msgrcv(self.id, buffer.as_mut_ptr(), room, msgtyp, flags) };
            if got >= 0 {
                // Non-negative, checked above.
                let len = got as usize;
                // SAFETY: msgrcv succeeded: it wrote the type and `len` bytes of text.
                let (mtype, text) = unsafe { buffer.received(len) };
                // c_long is i64 here, but only 32 bits wide on 32-bit targets.
                #[allow(clippy::useless_conversion)]
                let mtype = i64::from(mtype);
                return Ok(Some(Message {
                    mtype,
                    // The one copy the API costs: the text comes after the type in the
                    // buffer, and a Vec<u8> cannot start in the middle of an allocation.
                    data: text.to_vec(),
                }));
            }
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::ENOMSG => return Ok(None),
                errno => return Err(self.error("msgrcv", errno)),
            }
        }
    }

    /// Names the cause of a failed call on this queue.
    fn error(&self, call: &'static str, errno: Errno) -> Error {
        match errno {
            // With the arguments checked beforehand, EINVAL means the id names no queue any more.
            Errno::EIDRM | Errno::EINVAL => Error::Removed { id: self.id },
            errno => Error::Sys { call, errno },
        }
    }
    // END SOLUTION
}

impl OwnedQueue {
    /// A handle on the same queue that does not remove it (to move into a thread, say).
    pub fn handle(&self) -> MessageQueue {
        self.queue.clone()
    }

    /// Task 7: remove the queue now (`IPC_RMID`), reporting failure. Processes blocked on it wake
    /// up with EIDRM; messages still in it are discarded.
    pub fn remove(self) -> Result<()> {
        // BEGIN SOLUTION Task 7: msgctl(IPC_RMID), and make sure Drop does not remove it a second time
        let id = self.queue.id;
        // The queue is removed here, not again in Drop.
        mem::forget(self);
        rmid(id)
        // END SOLUTION
    }
}

impl Drop for OwnedQueue {
    /// Task 7: the guard. Runs on a normal return and while unwinding from a panic alike.
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Until task 7 is done, queues are not removed: `ipcs -q` shows them, `ipcrm -q ID`
        // STARTER: // removes them by hand.
        // Nothing useful can be done with a failure here; `remove` reports it.
        let _ = rmid(self.queue.id);
        // END SOLUTION
    }
}

// BEGIN SOLUTION
fn rmid(id: i32) -> Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so a null pointer is fine.
    if unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
        return Err(match Errno::last() {
            Errno::EINVAL | Errno::EIDRM => Error::Removed { id },
            errno => Error::Sys {
                call: "msgctl(IPC_RMID)",
                errno,
            },
        });
    }
    Ok(())
}

fn msgget(key: Key, flags: libc::c_int) -> Result<i32> {
    // SAFETY: msgget takes plain integers.
    let id = unsafe { libc::msgget(key.0, flags) };
    if id >= 0 {
        return Ok(id);
    }
    let key = key.0;
    Err(match Errno::last() {
        Errno::ENOENT => Error::NotFound { key },
        Errno::EEXIST => Error::AlreadyExists { key },
        Errno::EACCES => Error::PermissionDenied { key },
        errno => Error::Sys {
            call: "msgget",
            errno,
        },
    })
}

/// The memory layout `msgsnd` and `msgrcv` exchange: a `long` type, then the text. Kept in a
/// vector of `c_long` so that the type field is aligned.
///
/// Neither direction zeroes memory first: a message to send is packed straight from its text,
/// and a buffer to receive into is left for the kernel to fill (zeroing `msgmax` bytes for each
/// receive cost more than the rest of the call's user-space work together).
struct MessageBuffer {
    words: Vec<libc::c_long>,
}

const WORD: usize = mem::size_of::<libc::c_long>();

thread_local! {
    /// Each thread's receive buffer, kept between calls: allocating (and freeing) `msgmax`
    /// bytes for every receive was most of a small message's user-space cost. It holds
    /// `msgmax` bytes per thread that has received, until the thread ends.
    static RECEIVE_WORDS: Cell<Vec<libc::c_long>> = const { Cell::new(Vec::new()) };
    /// Each thread's send buffer, kept between calls for the same reason.
    static SEND_WORDS: Cell<Vec<libc::c_long>> = const { Cell::new(Vec::new()) };
}

impl MessageBuffer {
    /// A message to send, in `words` (whatever it held is dropped): `mtype`, then the bytes of
    /// `parts` one after the other, the last word padded with zero bytes. Each byte is written
    /// once.
    fn outgoing(
        mut words: Vec<libc::c_long>,
        mtype: libc::c_long,
        parts: &[&[u8]],
    ) -> MessageBuffer {
        let len: usize = parts.iter().map(|part| part.len()).sum();
        let count = 1 + len.div_ceil(WORD);
        words.clear();
        words.reserve(count);
        let spare = &mut words.spare_capacity_mut()[..count];
        spare[0].write(mtype);
        // SAFETY: the words after the type, seen as their bytes: the same memory, which is
        // valid for bytes of any value (and MaybeUninit<u8> asks for no initialisation).
        let text: &mut [MaybeUninit<u8>] = unsafe {
            std::slice::from_raw_parts_mut(spare[1..].as_mut_ptr().cast(), (count - 1) * WORD)
        };
        let mut at = 0;
        for part in parts {
            let place = &mut text[at..at + part.len()];
            // SAFETY: `place` is exactly `part.len()` bytes of our buffer, which `part` (memory
            // of the caller's) cannot overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), place.as_mut_ptr().cast(), part.len())
            };
            at += part.len();
        }
        for padding in &mut text[at..] {
            padding.write(0);
        }
        // SAFETY: the first `count` words are initialised now: the type, then every byte of
        // the words after it (the text, then the padding).
        unsafe { words.set_len(count) };
        MessageBuffer { words }
    }

    /// Room for a type and `text_len` bytes of text in `words` (whatever it held is dropped,
    /// and nothing is initialised: `msgrcv` writes it).
    fn incoming(mut words: Vec<libc::c_long>, text_len: usize) -> MessageBuffer {
        words.clear();
        words.reserve(1 + text_len.div_ceil(WORD));
        MessageBuffer { words }
    }

    /// How many bytes of text fit after the type in the memory this buffer holds.
    fn text_room(&self) -> usize {
        self.words.capacity().saturating_sub(1) * WORD
    }

    /// The type and the text of a message `msgrcv` wrote into an `incoming` buffer.
    ///
    /// # Safety
    /// `msgrcv` must have succeeded on this buffer, returning `len`: then it wrote the type and
    /// `len` bytes of text.
    unsafe fn received(&self, len: usize) -> (libc::c_long, &[u8]) {
        let words = self.words.as_ptr();
        // SAFETY: the caller says the kernel wrote these bytes, all inside the capacity that
        // `incoming` reserved (msgrcv writes at most the size it was given); u8 has no alignment
        // or validity requirements.
        unsafe {
            let text = std::slice::from_raw_parts(words.add(1).cast::<u8>(), len);
            (words.read(), text)
        }
    }

    fn as_ptr(&self) -> *const libc::c_void {
        self.words.as_ptr().cast()
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.words.as_mut_ptr().cast()
    }
}

/// This process's pid, as `call` names it: asked of the kernel once per process rather than
/// once per call (a `getpid` system call was a fifth of a round trip's calls).
///
/// A pid is the one value here that `fork` changes: the child has a pid of its own. A pid kept
/// in a struct, or in a static no one resets, is inherited by a child forked after the first
/// call; the child's requests would then name its parent, and its replies would go to whoever
/// asks for the parent's type. So the cache is cleared in every child at the fork itself: a
/// handler registered with `pthread_atfork` before any pid is cached runs in the child before
/// `fork` returns there (glibc's `fork`, which nix's `fork` and `libc::fork` are, runs it). A
/// process made without `fork` skips it: `vfork` and `posix_spawn` children, and the raw
/// `clone` that `std::process::Command` may use, only `exec` (a new program starts with nothing
/// cached). If the handler cannot be registered, nothing is cached.
fn own_pid() -> i32 {
    static PID: AtomicI32 = AtomicI32::new(0); // 0: not known yet
    static CLEARED_AT_FORK: AtomicBool = AtomicBool::new(false);
    extern "C" fn forget_pid() {
        // Runs in a forked child, where only async-signal-safe work is allowed: an atomic store.
        PID.store(0, Ordering::Relaxed);
    }
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let pid = getpid().as_raw();
    // Two threads may both register the handler here: running it twice does no harm.
    let registered = CLEARED_AT_FORK.load(Ordering::Acquire)
        // SAFETY: registers a child handler that only stores to an atomic.
        || unsafe { libc::pthread_atfork(None, None, Some(forget_pid)) } == 0;
    if registered {
        CLEARED_AT_FORK.store(true, Ordering::Release);
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}
// END SOLUTION

/// Task 6, client side: send `body` as a request (type [`REQUEST_TYPE`], the text being this
/// process's pid as 4 native-endian bytes followed by `body`) and return the text of the reply,
/// the message whose type is this process's pid. That is the calling process's own pid, also in
/// a child forked after its parent has called: a pid cached before the fork is the parent's.
pub fn call(queue: &MessageQueue, body: &[u8]) -> Result<Vec<u8>> {
    // BEGIN SOLUTION Task 6: send pid ++ body with type REQUEST_TYPE, then receive the message of type getpid()
    let me = own_pid();
    // The pid and the body go into the message as they are, with no request assembled first.
    queue.send_with(REQUEST_TYPE, &[&me.to_ne_bytes(), body], 0)?;
    Ok(queue.receive(Selector::OfType(i64::from(me)))?.data)
    // END SOLUTION
}

/// Task 6, server side: take requests (type [`REQUEST_TYPE`]) one at a time and answer each
/// with `handle(body)`, as a message whose type is the requesting client's pid. Runs until the
/// queue is removed, then returns how many requests it answered.
// BEGIN SOLUTION
// STARTER: pub fn serve(queue: &MessageQueue, handle: impl FnMut(&[u8]) -> Vec<u8>) -> Result<u64> {
// STARTER: todo!("Task 6: loop: receive type REQUEST_TYPE, split off the pid, send the answer with type = pid; stop at Error::Removed")
pub fn serve(queue: &MessageQueue, mut handle: impl FnMut(&[u8]) -> Vec<u8>) -> Result<u64> {
    let mut served = 0;
    loop {
        let request = match queue.receive(Selector::OfType(REQUEST_TYPE)) {
            Ok(request) => request,
            Err(Error::Removed { .. }) => return Ok(served),
            Err(e) => return Err(e),
        };
        // A malformed request (no pid, or not a client's pid) cannot be answered: skip it
        // rather than let one bad client stop the server.
        let Some((pid, body)) = request.data.split_first_chunk::<4>() else {
            continue;
        };
        let client = i32::from_ne_bytes(*pid);
        if client <= 1 {
            continue;
        }
        match queue.send(i64::from(client), &handle(body)) {
            Ok(()) => served += 1,
            Err(Error::Removed { .. }) => return Ok(served),
            Err(e) => return Err(e),
        }
    }
    // END SOLUTION
}
