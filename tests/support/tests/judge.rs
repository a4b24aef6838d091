//! The judge's own tests: verdicts come from the judging closure, never from what the test
//! process says or does.

use std::panic;

use ipclab_support::{checkpoint, isolated, isolated_for, Deadline};
use nix::unistd::{fork, ForkResult};

#[test]
fn a_judged_value_passes() {
    isolated("unreachable", || 1 + 1).judge(|sum: i32, _| assert_eq!(sum, 2));
}

#[test]
#[should_panic(expected = "the body's own message")]
fn a_panicking_body_fails_with_its_message() {
    isolated("unreachable", || -> i32 {
        panic!("the body's own message")
    })
    .judge(|_, _| {});
}

#[test]
#[should_panic(expected = "judged wrong")]
fn the_judge_decides() {
    isolated("unreachable", || 3).judge(|n: i32, _| assert_eq!(n, 2, "judged wrong"));
}

#[test]
#[should_panic(expected = "before the test finished")]
fn a_forged_pass_line_and_exit_zero_fail() {
    isolated("unreachable", || -> i32 {
        println!("test result: ok. 1 passed; 0 failed");
        // SAFETY: ends the test process at once, as a forging submission would.
        unsafe { libc::_exit(0) }
    })
    .judge(|_, _| {});
}

#[test]
#[should_panic(expected = "Likely cause: waiting on a pipe nobody writes")]
fn a_hanging_body_is_killed_at_the_deadline_and_the_message_says_where_it_was() {
    isolated_for(Deadline::secs(1), "waiting on a pipe nobody writes", || {
        let (read_end, _write_end) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only blocks in read and never returns.
        if let ForkResult::Child = unsafe { fork() }.unwrap() {
            let _ = nix::unistd::read(&read_end, &mut [0u8; 1]);
            unsafe { libc::_exit(0) };
        }
        let _ = nix::unistd::read(&read_end, &mut [0u8; 1]);
    })
    .judge(|(), _| {});
}

#[test]
fn a_checkpoint_shows_the_kernels_view_of_the_asking_process() {
    isolated("unreachable", || {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        checkpoint("two ends open");
        drop(read_end);
        checkpoint("one end open");
        drop(write_end);
        std::process::id() as i32
    })
    .judge(|pid, seen| {
        let before = seen.at("two ends open");
        assert_eq!(before.requester, pid);
        assert_eq!(
            before.requester().pipe_fds().len(),
            2,
            "{:?}",
            before.requester().fds
        );
        assert_eq!(seen.at("one end open").requester().pipe_fds().len(), 1);
        assert_eq!(seen.end.test_process().pipe_fds().len(), 0);
    });
}

#[test]
fn a_checkpoint_in_a_forked_child_names_the_child() {
    isolated("unreachable", || {
        // SAFETY: the child asks to be looked at and exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                checkpoint("in the child");
                unsafe { libc::_exit(0) };
            }
            ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap();
                child.as_raw()
            }
        }
    })
    .judge(|child, seen| {
        let snap = seen.at("in the child");
        assert_eq!(snap.requester, child);
        assert_eq!(snap.requester().info.ppid.as_raw(), snap.root);
        assert!(seen.end.process(child).is_none(), "reaped");
    });
}

#[test]
fn a_forged_result_from_another_process_is_ignored() {
    let caught = panic::catch_unwind(|| {
        isolated("unreachable", || {
            // A child hands back a value and the parent dies: no verdict may come of it.
            match unsafe { fork() }.unwrap() {
                ForkResult::Child => 42,
                ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
            }
        })
        .judge(|n: i32, _| assert_eq!(n, 42));
    });
    assert!(caught.is_err());
}

#[test]
fn the_snapshot_holds_the_ipc_limits_of_the_tests_namespace() {
    isolated("reading /proc/sys/kernel never returned", || {
        std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .expect("read msgmax")
            .trim()
            .parse::<u64>()
            .expect("a number")
    })
    .judge(|msgmax, seen| {
        assert_eq!(
            seen.end.ipc_limits.get("msgmax"),
            Some(&msgmax),
            "the judge reads the limits in the test's own IPC namespace"
        );
        assert!(seen.end.ipc_limits.contains_key("msgmnb"));
    });
}
