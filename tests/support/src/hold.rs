//! Threads of the code under test held still, on purpose.
//!
//! Some bugs only show when a thread of the code under test is slower than the test: a `Drop`
//! that returns without joining the threads it started passes whenever those threads happen to
//! finish first, which on an idle machine is nearly always. [`Hold`] makes the slow case
//! certain: it stops chosen threads of this process inside a signal handler that waits on a
//! pipe, and lets them go only when the test says so. A drop that does not wait for them then
//! returns while they still exist, every time.
//!
//! The handler is installed with `SA_RESTART`, so a `read`, `accept` or `recv` the held thread
//! was asleep in resumes afterwards; `poll` and friends fail with `EINTR`, as they would for any
//! signal the program receives. Process-wide state changes here (a signal disposition): use it
//! inside [`crate::isolated`] only, and one `Hold` at a time.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use nix::unistd::{getpid, Pid};

use crate::procfs;

/// The gate's read end, for the handler (a signal handler can only reach statics).
static GATE: AtomicI32 = AtomicI32::new(-1);
/// How many times a thread entered the handler.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Set while a [`Hold`] exists: the statics above belong to it.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// The signal used: a real-time one, which no exercise uses for itself.
pub fn hold_signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn wait_at_gate(_: libc::c_int) {
    // SAFETY: errno is thread-local; the handler saves and restores it so that the interrupted
    // code sees its own value.
    let saved = unsafe { *libc::__errno_location() };
    HELD.fetch_add(1, Ordering::SeqCst);
    let mut byte = 0u8;
    loop {
        // SAFETY: read(2) is async-signal-safe; the buffer is a live local. The read returns 0
        // once the gate's write end is closed: that is the release.
        let n = unsafe { libc::read(GATE.load(Ordering::SeqCst), (&raw mut byte).cast(), 1) };
        // SAFETY: as above.
        if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        break;
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Threads of this process held in a signal handler until [`Hold::release`] (or drop).
pub struct Hold {
    /// The gate's write end; closing it releases every held thread. -1 once released.
    release: AtomicI32,
    /// The gate's read end, where held threads sleep.
    gate: OwnedFd,
    held: usize,
}

impl Hold {
    /// Holds each of `tids` (threads of this process) and returns once every one of them that
    /// can take the signal is held. A thread that ends first, or that blocks the signal, is not
    /// held (see [`Hold::held`]): the test decides whether that matters.
    pub fn threads(tids: &[Pid]) -> io::Result<Hold> {
        if IN_USE.swap(true, Ordering::SeqCst) {
            return Err(io::Error::other("only one Hold at a time"));
        }
        let (gate, release) = nix::unistd::pipe().map_err(io::Error::from)?;
        GATE.store(gate.as_raw_fd(), Ordering::SeqCst);
        HELD.store(0, Ordering::SeqCst);
        // SAFETY: sigaction is plain data; zeroed is a valid starting value (empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = wait_at_gate as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: the handler only uses async-signal-safe calls (read) and atomics. It stays
        // installed after the hold ends: a signal still pending then finds an open gate.
        if unsafe { libc::sigaction(hold_signal(), &action, std::ptr::null_mut()) } != 0 {
            IN_USE.store(false, Ordering::SeqCst);
            return Err(io::Error::last_os_error());
        }
        let mut hold = Hold {
            release: AtomicI32::new(std::os::fd::IntoRawFd::into_raw_fd(release)),
            gate,
            held: 0,
        };
        let pid = getpid();
        let mut signalled = Vec::new();
        for &tid in tids {
            // SAFETY: tgkill with a thread id of this process; at worst it is gone (ESRCH).
            let r = unsafe {
                libc::syscall(libc::SYS_tgkill, pid.as_raw(), tid.as_raw(), hold_signal())
            };
            if r == 0 {
                signalled.push(tid);
            }
        }
        // Wait for each signalled thread that still exists and does not block the signal: the
        // kernel delivers it as soon as the thread runs, so this is an event, not a guess.
        loop {
            let can_take = |tid: &&Pid| {
                procfs::thread_signal_state(pid, **tid)
                    .is_ok_and(|s| !s.blocked.contains_number(hold_signal()))
            };
            let waiting = signalled.iter().filter(can_take).count();
            let held = HELD.load(Ordering::SeqCst);
            if held >= waiting {
                hold.held = held;
                return Ok(hold);
            }
            std::thread::yield_now();
        }
    }

    /// How many threads are held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The descriptor a held thread sleeps on, in `read(2)`: a judge that sees a thread asleep
    /// there knows it is still held. (A thread that was joined may linger in the process's task
    /// list for a moment while the kernel finishes its exit; it is not asleep in this read.)
    pub fn gate_fd(&self) -> i32 {
        self.gate.as_raw_fd()
    }

    /// Lets every held thread go on; later calls do nothing. Safe to call from any thread.
    pub fn release(&self) {
        let fd = self.release.swap(-1, Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: `fd` is the gate's write end, owned by this Hold and closed only here.
            unsafe { libc::close(fd) };
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.release();
        IN_USE.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Run in the test harness's own process (no isolated): the handler stays installed, which is
    /// harmless here because nothing else sends the hold signal.
    #[test]
    fn a_held_thread_waits_until_released_and_its_read_resumes() {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let reading = std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid()).unwrap();
            let mut byte = [0u8; 1];
            nix::unistd::read(&reader, &mut byte).map(|n| (n, byte[0]))
        });
        let tid = tid_rx.recv().unwrap();
        procfs::wait_until_blocked(tid, Duration::from_secs(30), |c| c.number == libc::SYS_read)
            .unwrap();
        let hold = Hold::threads(&[tid]).unwrap();
        assert_eq!(hold.held(), 1);
        // Held: the byte is there, but the thread cannot take it until released.
        nix::unistd::write(&writer, b"x").unwrap();
        assert!(!reading.is_finished());
        hold.release();
        assert_eq!(reading.join().unwrap(), Ok((1, b'x')));
    }
}
