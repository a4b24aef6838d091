//! A witness of the system calls the code under test makes: which calls of one kind, with which
//! arguments, in order.
//!
//! Some bugs leave no trace in the kernel's tables. A queue removed twice with `IPC_RMID` looks
//! the same afterwards as one removed once (the second call fails with EINVAL and changes
//! nothing), until the kernel has given the old id to another object, which the second call then
//! destroys. [`SyscallWatch`] sees such calls as they are made: a seccomp filter sends every call
//! of the watched number to a supervisor thread (a `SECCOMP_RET_USER_NOTIF` listener), which
//! records the caller and the arguments and lets the call go on unchanged
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). A call is recorded before it runs, so when it has
//! returned, the record is there.
//!
//! The filter stays for the rest of the process's life and is inherited by threads and children
//! created afterwards (their calls are recorded too, under their pid). Use it inside
//! [`crate::isolated`] only, in the test's own process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

/// One recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedCall {
    /// The thread that made it (its tid, as the kernel names it in the caller's pid namespace).
    pub tid: i32,
    /// The six argument registers.
    pub args: [u64; 6],
}

/// While alive (and after: the filter cannot be removed), records every call of one system call
/// made by the thread that started it and by the threads and processes it creates afterwards.
pub struct SyscallWatch {
    calls: Arc<Mutex<Vec<WatchedCall>>>,
}

impl SyscallWatch {
    /// Starts recording system call `number` (`libc::SYS_…`) in the calling thread.
    pub fn start(number: libc::c_long) -> io::Result<SyscallWatch> {
        let calls = Arc::new(Mutex::new(Vec::new()));
        // The supervisor starts before the filter exists, so its own calls are never filtered.
        let (listener_tx, listener_rx) = mpsc::channel::<OwnedFd>();
        {
            let calls = Arc::clone(&calls);
            thread::Builder::new()
                .name("syscall-watch".into())
                .spawn(move || {
                    if let Ok(listener) = listener_rx.recv() {
                        supervise(&listener, &calls);
                    }
                })?;
        }
        let listener = install_filter(number)?;
        listener_tx
            .send(listener)
            .map_err(|_| io::Error::other("the supervisor thread ended"))?;
        Ok(SyscallWatch { calls })
    }

    /// The calls recorded so far, in the order they were made.
    pub fn calls(&self) -> Vec<WatchedCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The architecture the filter accepts calls of (`AUDIT_ARCH_…` of `<linux/audit.h>`); calls of
/// another ABI are allowed unrecorded.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

fn install_filter(number: libc::c_long) -> io::Result<OwnedFd> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    // struct seccomp_data: int nr at 0, __u32 arch at 4.
    let program = [
        stmt(LD_W_ABS, 4),
        jump(AUDIT_ARCH, 0, 3),
        stmt(LD_W_ABS, 0),
        jump(number as u32, 0, 1),
        stmt(RET_K, libc::SECCOMP_RET_USER_NOTIF),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: prctl and seccomp take plain integers and a pointer to `fprog`, which outlives the
    // calls; the kernel copies the program.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd as i32))
    }
}

/// Records each notification and lets the call continue, for as long as the process lives.
fn supervise(listener: &OwnedFd, calls: &Mutex<Vec<WatchedCall>>) {
    loop {
        // SAFETY: both structures are plain data; zeroed is the state the kernel requires before
        // NOTIF_RECV, and the ioctls write only into them.
        let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        let received = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notif as *mut libc::seccomp_notif,
            )
        };
        if received != 0 {
            match io::Error::last_os_error().raw_os_error() {
                // Interrupted, or the caller went away before we read it.
                Some(libc::EINTR) | Some(libc::ENOENT) => continue,
                _ => return,
            }
        }
        if let Ok(mut calls) = calls.lock() {
            calls.push(WatchedCall {
                tid: notif.pid as i32,
                args: notif.data.args,
            });
        }
        let mut response: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        response.id = notif.id;
        response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
        // SAFETY: as above; a caller that went away makes this fail with ENOENT, which is fine.
        unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut response as *mut libc::seccomp_notif_resp,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_recorded_and_still_made() {
        crate::isolated("the watched call never returned", || {
            let watch = SyscallWatch::start(libc::SYS_getppid).expect("start watching");
            // SAFETY: getppid takes no arguments.
            let parent = unsafe { libc::syscall(libc::SYS_getppid) };
            let calls = watch.calls();
            (parent, std::os::unix::process::parent_id(), calls.len())
        })
        .judge(|(parent, expected, recorded): (i64, u32, usize), _| {
            assert_eq!(parent, i64::from(expected), "the call went on unchanged");
            assert!(recorded >= 1, "the call was recorded");
        });
    }
}
