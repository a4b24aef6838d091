//! Exercise 03: System V message queues.
//!
//! Your task: implement the functions below (tasks 1 to 7). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 3` gives hints; `cargo test -p exercise03` grades your
//! work.
//!
//! A message queue is a list of messages kept by the kernel. It belongs to no process: it exists
//! from `msgget(IPC_CREAT)` until someone removes it with `msgctl(IPC_RMID)`, whoever made it and
//! whether or not that process still runs. So the one who creates a queue owns its removal
//! ([`OwnedQueue`] does it on drop), and everyone else only opens it ([`MessageQueue`]).
//!
//! The `nix` crate does not wrap System V IPC, so this file calls `libc` directly. Every `unsafe`
//! block is small and says why it is sound; everything outside them is safe Rust.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs;
use std::mem;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{getpid, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

impl Key {
    /// Task 1: the key `ftok(path, project)` derives from an existing file's device and inode
    /// number, and the low 8 bits of `project` (which must not be 0).
    ///
    /// A missing file is [`Error::NoSuchPath`]; project 0 is [`Error::InvalidProjectId`].
    pub fn from_path(path: &Path, project: u8) -> Result<Key> {
        todo!("Task 1: libc::ftok on the path as a CString; ENOENT becomes Error::NoSuchPath")
    }
}

/// Task 4: the kernel's limit on one message's text (`/proc/sys/kernel/msgmax`), in bytes.
pub fn msgmax() -> Result<usize> {
    todo!("Task 4: read and parse /proc/sys/kernel/msgmax")
}

/// Task 4: the default capacity of a new queue (`/proc/sys/kernel/msgmnb`), in bytes.
pub fn msgmnb() -> Result<usize> {
    todo!("Task 4: read and parse /proc/sys/kernel/msgmnb")
}

impl MessageQueue {
    /// Task 1: create a new queue for `key` with permission bits `mode` (at most `0o777`). A
    /// queue that already exists for a (non-private) key is [`Error::AlreadyExists`]; a mode
    /// with other bits is [`Error::InvalidMode`].
    pub fn create(key: Key, mode: u32) -> Result<OwnedQueue> {
        todo!("Task 1: msgget(key, IPC_CREAT | IPC_EXCL | mode); map EEXIST and EACCES to their Error variants")
    }

    /// Task 1: open the existing queue for `key`, for reading and writing. No queue is
    /// [`Error::NotFound`]; a queue this user may not read and write is
    /// [`Error::PermissionDenied`]; the private key is [`Error::PrivateKey`].
    pub fn open(key: Key) -> Result<MessageQueue> {
        todo!("Task 1: msgget(key, 0o600) asks for read and write; map ENOENT and EACCES to their Error variants")
    }

    /// The queue identifier (`msqid`), as `ipcs -q` and `/proc/sysvipc/msg` show it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Task 2: append a message of type `mtype` (positive, else [`Error::InvalidType`]) to the
    /// queue; blocks while the queue is full. Text longer than [`msgmax`] is
    /// [`Error::TooLarge`] (task 4), refused before any system call.
    pub fn send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        todo!("Task 2: lay out a c_long type followed by the text, then msgsnd")
    }

    /// Task 4: like `send`, but a full queue is [`Error::QueueFull`] instead of a wait.
    pub fn try_send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        todo!("Task 4: msgsnd with IPC_NOWAIT; EAGAIN means the queue is full")
    }

    /// Task 2: take the message `which` selects out of the queue; blocks until there is one.
    ///
    /// Task 7: if the queue is removed (while waiting, or before), this is [`Error::Removed`].
    pub fn receive(&self, which: Selector) -> Result<Message> {
        todo!(
            "Task 2: msgrcv into a buffer of a c_long and msgmax bytes, with msgtyp 0, t or -bound"
        )
    }

    /// Task 3: like `receive`, but returns `Ok(None)` at once if no message matches.
    pub fn try_receive(&self, which: Selector) -> Result<Option<Message>> {
        todo!("Task 3: msgrcv with IPC_NOWAIT; ENOMSG means Ok(None)")
    }

    /// Task 5: the queue's status, from `msgctl(IPC_STAT)`.
    pub fn status(&self) -> Result<QueueStatus> {
        todo!("Task 5: msgctl(IPC_STAT) into a zeroed libc::msqid_ds")
    }
}

impl OwnedQueue {
    /// A handle on the same queue that does not remove it (to move into a thread, say).
    pub fn handle(&self) -> MessageQueue {
        self.queue.clone()
    }

    /// Task 7: remove the queue now (`IPC_RMID`), reporting failure. Processes blocked on it wake
    /// up with EIDRM; messages still in it are discarded.
    pub fn remove(self) -> Result<()> {
        todo!("Task 7: msgctl(IPC_RMID), and make sure Drop does not remove it a second time")
    }
}

impl Drop for OwnedQueue {
    /// Task 7: the guard. Runs on a normal return and while unwinding from a panic alike.
    fn drop(&mut self) {
        // Until task 7 is done, queues are not removed: `ipcs -q` shows them, `ipcrm -q ID`
        // removes them by hand.
    }
}

/// Task 6, client side: send `body` as a request (type [`REQUEST_TYPE`], the text being this
/// process's pid as 4 native-endian bytes followed by `body`) and return the text of the reply,
/// the message whose type is this process's pid. That is the calling process's own pid, also in
/// a child forked after its parent has called: a pid cached before the fork is the parent's.
pub fn call(queue: &MessageQueue, body: &[u8]) -> Result<Vec<u8>> {
    todo!("Task 6: send pid ++ body with type REQUEST_TYPE, then receive the message of type getpid()")
}

/// Task 6, server side: take requests (type [`REQUEST_TYPE`]) one at a time and answer each
/// with `handle(body)`, as a message whose type is the requesting client's pid. Runs until the
/// queue is removed, then returns how many requests it answered.
pub fn serve(queue: &MessageQueue, handle: impl FnMut(&[u8]) -> Vec<u8>) -> Result<u64> {
    todo!("Task 6: loop: receive type REQUEST_TYPE, split off the pid, send the answer with type = pid; stop at Error::Removed")
}
