//! Signals that interrupt the code under test, on purpose.
//!
//! In real programs a blocking `read`, `write` or `waitpid` can be cut short by a signal: the call
//! fails with EINTR, or a `write` returns having written only part of the buffer. Code that
//! treats EINTR as fatal, or ignores the count a `write` returns, works in a quiet test and fails
//! in production. [`Interrupter`] makes the test noisy: it delivers a signal with a do-nothing
//! handler (installed without `SA_RESTART`) to the calling thread, over and over.
//!
//! Process-wide state changes here (a signal disposition, a timer): use it inside
//! [`crate::isolated`] only.

use std::io;
use std::time::Duration;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal used; its handler does nothing, so only the interruption is felt.
pub const INTERRUPT_SIGNAL: Signal = Signal::SIGALRM;

extern "C" fn ignore_interrupt(_: libc::c_int) {}

/// While alive, interrupts the thread that created it every `period`.
pub struct Interrupter {
    timer: libc::timer_t,
    previous: SigAction,
}

impl Interrupter {
    /// Starts interrupting the calling thread every `period`.
    pub fn every(period: Duration) -> io::Result<Interrupter> {
        let action = SigAction::new(
            SigHandler::Handler(ignore_interrupt),
            // Without SA_RESTART: interrupted calls fail with EINTR instead of resuming.
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler is an empty extern "C" function, trivially async-signal-safe.
        let previous = unsafe { sigaction(INTERRUPT_SIGNAL, &action) }.map_err(io::Error::from)?;

        // A POSIX timer aimed at this thread (SIGEV_THREAD_ID): a process-directed signal would
        // usually go to the harness's main thread instead of the one running the test.
        // SAFETY: sigevent is plain data; zeroed is a valid starting value.
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = INTERRUPT_SIGNAL as i32;
        event.sigev_notify_thread_id = nix::unistd::gettid().as_raw();
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: both pointers are to live locals; the kernel fills `timer`.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) } != 0 {
            let error = io::Error::last_os_error();
            // SAFETY: restores the disposition saved above.
            let _ = unsafe { sigaction(INTERRUPT_SIGNAL, &previous) };
            return Err(error);
        }
        let interrupter = Interrupter { timer, previous };
        let spec = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let schedule = libc::itimerspec {
            it_interval: spec,
            it_value: spec,
        };
        // SAFETY: `timer` was created above; `schedule` is a live local.
        if unsafe { libc::timer_settime(interrupter.timer, 0, &schedule, std::ptr::null_mut()) }
            != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(interrupter)
    }
}

impl Drop for Interrupter {
    fn drop(&mut self) {
        // SAFETY: deletes the timer created in `every` and restores the saved disposition. A
        // signal still pending is handled by whichever disposition is current: both are harmless.
        unsafe {
            libc::timer_delete(self.timer);
            let _ = sigaction(INTERRUPT_SIGNAL, &self.previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocking_read_is_interrupted() {
        crate::isolated("the read was never interrupted", || {
            let (read_end, _write_end) = nix::unistd::pipe().unwrap();
            let _interrupter = Interrupter::every(Duration::from_millis(1)).unwrap();
            let mut buf = [0u8; 1];
            nix::unistd::read(&read_end, &mut buf).map_err(|e| e as i32)
        })
        .judge(|result: Result<usize, i32>, _| {
            assert_eq!(result, Err(libc::EINTR));
        });
    }
}
