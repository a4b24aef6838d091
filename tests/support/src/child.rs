//! Children that a test forks itself: run a closure in a copy of the test, end with `_exit`.
//!
//! Use inside [`crate::isolated`], where the test has the process to itself.

use std::panic::{self, AssertUnwindSafe};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// Forks; the child runs `body` and ends with `_exit` and what `body` returned (101 if it
/// panicked). It never returns into the test, so the test's code runs once, in the parent.
pub fn spawn_child(body: impl FnOnce() -> i32) -> Pid {
    // SAFETY: the child runs only `body` and ends with _exit; it never returns into the test.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: ends the child at once, without running the test's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

/// Waits for `pid` and returns its exit code; fails the test, naming `what`, if it did not exit
/// normally (a signal ended it).
#[track_caller]
pub fn exit_code(pid: Pid, what: &str) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Err(nix::errno::Errno::EINTR) => continue,
            other => panic!("{what} (pid {pid}) did not exit normally: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_exits_with_what_its_body_returns() {
        crate::isolated("the child never exited", || {
            (
                exit_code(spawn_child(|| 7), "the child"),
                exit_code(spawn_child(|| panic!("on purpose")), "the child"),
            )
        })
        .judge(|(returned, panicked), _| {
            assert_eq!(returned, 7);
            assert_eq!(panicked, 101);
        });
    }
}
