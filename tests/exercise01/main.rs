//! The graded suite of exercise 01: fork and anonymous pipes.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), because the code under test forks and blocks; when the
//! deadline passes, the message names the usual cause of that hang.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use exercise01::*;
use ipclab_support::data::{assert_same_bytes, payload, MIB, PIPE_BUF, PIPE_CAPACITY};
use ipclab_support::interrupt::Interrupter;
use ipclab_support::isolated;
use ipclab_support::procfs::{self, FdSnapshot};
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult};
use rstest::rstest;

const WAIT_HINT: &str = "the parent never got past waitpid: does it wait for the pid that fork \
     returned, and does the child end with _exit after running `child` instead of returning?";

const EOF_HINT: &str = "timed out waiting for EOF. A read returns 0 (end of file) only when every \
     write end of the pipe is closed: the parent must close its copy of the write end right after \
     fork, and the child must close it when done writing.";

const ROUND_TRIP_HINT: &str = "the round trip hung. The child reads the request until EOF, so the \
     parent must close the request pipe's write end once it has written (and the child its own \
     copy, right after fork); likewise for the reply pipe in the other direction.";

const DEADLOCK_HINT: &str = "deadlock. Each pipe holds only 64 KiB: if the parent writes all the \
     input before reading any output, the child blocks writing output nobody reads while the \
     parent blocks writing input the child no longer reads. Write and read at the same time (a \
     writer thread, or poll).";

const PIPELINE_HINT: &str =
    "the pipeline hung. Either a stage waits for EOF on a pipe whose write \
     end the parent (or the other stage) still holds: close every copy you do not need, and make \
     pipes close-on-exec; or the parent waited for the stages before reading their output, and \
     the second stage is blocked writing into a full pipe.";

const FEED_HINT: &str = "feeding the child hung. The child reads until EOF: the parent must close \
     its write end after writing, and the child must close its inherited copy of the write end \
     first, or its own read never sees EOF.";

// ---------------------------------------------------------------------------------------------
// Task 1: fork gives the child a separate copy of memory.

#[test]
fn task1_child_changes_only_its_own_copy_of_memory() {
    isolated(WAIT_HINT, || {
        let mut counter: u64 = 41;
        let counter_in_child = &mut counter;
        let finished = fork_and_wait(|| {
            *counter_in_child += 1;
            if *counter_in_child == 42 {
                42
            } else {
                1
            }
        })
        .expect("fork_and_wait returned an error");
        assert_eq!(
            counter, 41,
            "the parent's counter changed: `child` ran in the parent's own address space. It must \
             run only in the child that fork() creates, which changes its own copy of memory."
        );
        assert_eq!(
            finished.exit,
            ChildExit::Exited(42),
            "the child should exit with the code `child` returned (42: it saw 41 and changed its copy)"
        );
    });
}

#[test]
fn task1_child_is_a_new_process_whose_parent_is_the_caller() {
    isolated(WAIT_HINT, || {
        let parent = getpid();
        let finished = fork_and_wait(|| {
            if getppid() == parent && getpid() != parent {
                0
            } else {
                3
            }
        })
        .expect("fork_and_wait returned an error");
        assert_ne!(
            finished.pid, parent,
            "`pid` must be the child's pid, as fork() returned it to the parent"
        );
        assert_eq!(
            finished.exit,
            ChildExit::Exited(0),
            "`child` must run in a new process whose parent is the caller of fork_and_wait"
        );
    });
}

#[test]
fn task1_parent_reaps_the_child() {
    isolated(WAIT_HINT, || {
        let finished = fork_and_wait(|| 0).expect("fork_and_wait returned an error");
        procfs::assert_no_zombies("fork_and_wait must waitpid() for its child before returning.");
        assert_eq!(
            procfs::process(finished.pid).expect("read /proc"),
            None,
            "the child (pid {}) is still in the process table after fork_and_wait returned",
            finished.pid
        );
    });
}

#[test]
fn task1_death_by_signal_is_reported_as_such() {
    isolated(WAIT_HINT, || {
        let finished = fork_and_wait(|| {
            let _ = kill(getpid(), Signal::SIGTERM);
            0
        })
        .expect("fork_and_wait returned an error");
        assert_eq!(
            finished.exit,
            ChildExit::Signaled(Signal::SIGTERM),
            "a child killed by SIGTERM did not exit: waitpid reports WaitStatus::Signaled, not Exited"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: a message from child to parent through a pipe.

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::pipe_buf(PIPE_BUF)]
#[case::pipe_buf_plus_one(PIPE_BUF + 1)]
#[case::pipe_capacity(PIPE_CAPACITY)]
#[case::one_mib(MIB)]
fn task2_parent_reads_whole_message_then_eof(#[case] len: usize) {
    isolated(EOF_HINT, || {
        let expected = payload(len);
        let sent = expected.clone();
        let message =
            message_from_child(move || sent).expect("message_from_child returned an error");
        assert_same_bytes(&message.bytes, &expected, "the message the parent read");
        assert_eq!(
            message.exit,
            ChildExit::Exited(0),
            "the child should exit with 0 after writing"
        );
    });
}

#[test]
fn task2_reads_survive_interrupting_signals() {
    isolated(EOF_HINT, || {
        // A signal every 200 µs interrupts the parent's blocking reads and waitpid (EINTR).
        let _noise =
            Interrupter::every(Duration::from_micros(200)).expect("start the interrupting timer");
        let expected = payload(4 * MIB);
        let sent = expected.clone();
        let message = message_from_child(move || sent).expect(
            "message_from_child returned an error while signals kept arriving: a read or waitpid \
             interrupted by a signal fails with EINTR and must simply be retried",
        );
        assert_same_bytes(
            &message.bytes,
            &expected,
            "the message read while signals kept arriving",
        );
    });
}

#[test]
fn task2_child_writes_into_a_pipe_holding_only_the_write_end() {
    isolated(EOF_HINT, || {
        let before = FdSnapshot::take();
        let message = message_from_child(move || {
            // Runs in the child: which pipe descriptors does it hold beyond what the parent had?
            let pipes: Vec<(i32, i32)> = before
                .opened_since()
                .into_iter()
                .filter(|(_, target)| target.is_pipe())
                .map(|(fd, _)| (fd, procfs::own_fd_access_mode(fd).unwrap_or(-1)))
                .collect();
            match pipes.as_slice() {
                [(_, libc::O_WRONLY)] => b"ok".to_vec(),
                [] => b"the child holds no pipe at all: the message must go through a pipe \
                        (pipe() before fork())"
                    .to_vec(),
                more => format!(
                    "the child still holds {} pipe descriptors {:?} (fd, access mode) when it \
                     writes: it must close the read end first and keep only the write end",
                    more.len(),
                    more
                )
                .into_bytes(),
            }
        })
        .expect("message_from_child returned an error");
        assert_eq!(String::from_utf8_lossy(&message.bytes), "ok");
    });
}

#[test]
fn task2_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(EOF_HINT, || {
        let before = FdSnapshot::take();
        let message =
            message_from_child(|| b"hello".to_vec()).expect("message_from_child returned an error");
        before.assert_no_leaks("Close both ends of the pipe in the parent: the write end right after fork, the read end after reading.");
        procfs::assert_no_zombies("Reap the child with waitpid() after reading its message.");
        assert_ne!(message.pid, getpid(), "`pid` must be the child's");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: a round trip over two pipes.

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::pipe_buf_plus_one(PIPE_BUF + 1)]
#[case::one_mib(MIB)]
fn task3_request_reaches_child_and_reply_comes_back(#[case] len: usize) {
    isolated(ROUND_TRIP_HINT, || {
        let request = payload(len);
        let reply = round_trip(&request, |received| {
            let mut answer: Vec<u8> = received.into_iter().rev().collect();
            answer.extend_from_slice(format!("|served by {}", getpid()).as_bytes());
            answer
        })
        .expect("round_trip returned an error");

        let mut expected: Vec<u8> = request.iter().rev().copied().collect();
        let served_by = reply
            .get(len..)
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        assert!(
            served_by.starts_with("|served by "),
            "the reply should be `serve(request)`: the request reversed, then `|served by <pid>`; got {served_by:?} after the first {len} bytes"
        );
        assert_ne!(
            served_by,
            format!("|served by {}", getpid()),
            "`serve` ran in the parent; it must run in the child"
        );
        expected.extend_from_slice(&reply[len..]);
        assert_same_bytes(&reply, &expected, "the reply");
    });
}

#[test]
fn task3_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(ROUND_TRIP_HINT, || {
        let before = FdSnapshot::take();
        round_trip(b"ping", |_| b"pong".to_vec()).expect("round_trip returned an error");
        before.assert_no_leaks(
            "All four pipe ends must be closed in the parent by the time round_trip returns.",
        );
        procfs::assert_no_zombies("Reap the child with waitpid() after reading the reply.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: streaming more than the pipes hold.

#[rstest]
#[case::empty(0)]
#[case::just_past_capacity(PIPE_CAPACITY + 1)]
#[case::four_capacities(4 * PIPE_CAPACITY)]
#[case::four_mib(4 * MIB)]
fn task4_stream_larger_than_the_pipes_without_deadlock(#[case] len: usize) {
    isolated(DEADLOCK_HINT, || {
        let input = payload(len);
        let output = stream_through_child(&input, |chunk| chunk.to_ascii_uppercase())
            .expect("stream_through_child returned an error");
        assert_same_bytes(
            &output,
            &input.to_ascii_uppercase(),
            "the transformed stream",
        );
    });
}

#[test]
fn task4_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(DEADLOCK_HINT, || {
        let before = FdSnapshot::take();
        stream_through_child(&payload(3 * PIPE_CAPACITY), <[u8]>::to_vec)
            .expect("stream_through_child returned an error");
        before.assert_no_leaks(
            "Every pipe end must be closed in the parent when stream_through_child returns.",
        );
        procfs::assert_no_zombies("Reap the child with waitpid() once its output has ended.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: a two-stage shell pipeline, `A | B`.

#[test]
fn task5_output_of_first_becomes_input_of_second() {
    isolated(PIPELINE_HINT, || {
        // As in `ps auxf | grep mysql`, with a fixed process list.
        let ps = [
            "printf",
            "root 1 init\nmysql 812 mysqld --port=3306\nalice 990 bash\nalice 991 mysql -u alice\n",
        ];
        let out = pipeline(&ps, &["grep", "mysql"]).expect("pipeline returned an error");
        insta::assert_snapshot!(
            "task5_grep_keeps_the_mysql_lines",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            (out.first, out.second),
            (ChildExit::Exited(0), ChildExit::Exited(0))
        );
    });
}

#[test]
fn task5_stages_are_joined_by_one_pipe() {
    isolated(PIPELINE_HINT, || {
        // Each stage asks the kernel what its standard streams are.
        let first = ["sh", "-c", "readlink /proc/$$/fd/1"];
        let second = [
            "sh",
            "-c",
            "readlink /proc/$$/fd/0; readlink /proc/$$/fd/1; cat",
        ];
        let out = pipeline(&first, &second).expect("pipeline returned an error");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        let [second_stdin, second_stdout, first_stdout] = lines[..] else {
            panic!("expected three lines (second stage's stdin and stdout, then the first's stdout), got {text:?}");
        };
        assert!(
            first_stdout.starts_with("pipe:["),
            "the first stage's stdout should be a pipe, the kernel says it is {first_stdout}"
        );
        assert_eq!(
            second_stdin, first_stdout,
            "the second stage's stdin must be the same pipe as the first stage's stdout (dup2 the pipe's ends onto fd 0 and fd 1)"
        );
        assert!(
            second_stdout.starts_with("pipe:[") && second_stdout != first_stdout,
            "the second stage's stdout should be a second pipe, read by the parent; the kernel says it is {second_stdout}"
        );
    });
}

#[test]
fn task5_exit_statuses_of_both_stages_are_reported() {
    isolated(PIPELINE_HINT, || {
        let out = pipeline(
            &["sh", "-c", "echo data; exit 3"],
            &["sh", "-c", "cat >/dev/null; exit 5"],
        )
        .expect("pipeline returned an error");
        assert_eq!(
            out.first,
            ChildExit::Exited(3),
            "the first stage exited with 3"
        );
        assert_eq!(
            out.second,
            ChildExit::Exited(5),
            "the second stage exited with 5"
        );
    });
}

#[test]
fn task5_parent_reads_while_the_stages_run() {
    isolated(PIPELINE_HINT, || {
        let out = pipeline(&["head", "-c", "1048576", "/dev/zero"], &["cat"])
            .expect("pipeline returned an error");
        assert_same_bytes(
            &out.stdout,
            &vec![0u8; MIB],
            "the output of `head -c 1048576 /dev/zero | cat`",
        );
    });
}

#[test]
fn task5_stages_start_with_the_default_sigpipe_action() {
    isolated(PIPELINE_HINT, || {
        // `head` exits after one line; `yes` then writes into a pipe without readers. Under a
        // shell it dies of SIGPIPE at once. This test process ignores SIGPIPE (Rust does at
        // start-up) and an ignored signal stays ignored across exec.
        let out = pipeline(&["yes"], &["head", "-n", "1"]).expect("pipeline returned an error");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "y\n");
        assert_eq!(
            out.first,
            ChildExit::Signaled(Signal::SIGPIPE),
            "`yes` should be killed by SIGPIPE once `head` has gone, as under a shell. It inherited \
             SIGPIPE ignored from this Rust process: reset it to SIG_DFL in the child before exec."
        );
    });
}

#[rstest]
#[case::first_stage_missing(true)]
#[case::second_stage_missing(false)]
fn task5_missing_command_is_a_clear_error(#[case] first_missing: bool) {
    isolated(PIPELINE_HINT, || {
        let missing = ["ipclab-no-such-command", "--flag"];
        let present = ["cat"];
        let (first, second): (&[&str], &[&str]) = if first_missing {
            (&missing, &present)
        } else {
            (&present, &missing)
        };
        let before = FdSnapshot::take();
        match pipeline(first, second) {
            Err(Error::CommandNotFound { command }) => assert_eq!(command, "ipclab-no-such-command"),
            other => panic!("expected Err(Error::CommandNotFound {{ command: \"ipclab-no-such-command\" }}), got {other:?}"),
        }
        before.assert_no_leaks("Even when a stage cannot start, every pipe end must be closed.");
        procfs::assert_no_zombies(
            "Even when a stage cannot start, every stage that was forked must be reaped.",
        );
        let strays = procfs::descendants(getpid());
        assert!(
            strays.is_empty(),
            "processes left running after the error: {strays:?}"
        );
    });
}

#[test]
fn task5_empty_command_is_rejected() {
    isolated(PIPELINE_HINT, || {
        let result = pipeline(&[], &["cat"]);
        assert!(
            matches!(result, Err(Error::EmptyCommand)),
            "expected Err(Error::EmptyCommand), got {result:?}"
        );
        procfs::assert_no_zombies("Check the commands before forking anything.");
    });
}

#[test]
fn task5_parent_leaks_no_descriptor_and_reaps_both_stages() {
    isolated(PIPELINE_HINT, || {
        let before = FdSnapshot::take();
        pipeline(&["echo", "hi"], &["cat"]).expect("pipeline returned an error");
        before.assert_no_leaks("The parent must close its copies of every pipe end.");
        procfs::assert_no_zombies("Reap both stages with waitpid().");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 6: end of file and broken pipes.

#[rstest]
#[case::empty(0)]
#[case::pipe_buf(PIPE_BUF)]
#[case::one_mib(MIB)]
fn task6_reader_sees_eof_once_every_write_end_is_closed(#[case] len: usize) {
    isolated(FEED_HINT, || {
        let fed = feed_child(&payload(len), move |mut pipe| {
            let mut received = Vec::new();
            match pipe.read_to_end(&mut received) {
                Ok(n) if n == len => 0,
                _ => 1,
            }
        })
        .expect("feed_child returned an error");
        assert_eq!(
            fed.written, len,
            "feed_child must report every byte written"
        );
        assert_eq!(
            fed.exit,
            ChildExit::Exited(0),
            "the child must read all {len} bytes, then EOF"
        );
    });
}

#[test]
fn task6_interrupted_partial_writes_are_continued() {
    isolated(FEED_HINT, || {
        let len = 4 * MIB;
        // Signals interrupt the parent's writes, and the child shrinks the pipe to one page so
        // that the writer blocks often: an interrupted write returns the count written so far.
        let _noise =
            Interrupter::every(Duration::from_micros(200)).expect("start the interrupting timer");
        let fed = feed_child(&payload(len), move |mut pipe| {
            let _ = fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(4096));
            let mut received = Vec::new();
            match pipe.read_to_end(&mut received) {
                Ok(_) if received == payload(len) => 0,
                _ => 3,
            }
        })
        .expect(
            "feed_child returned an error while signals kept arriving: a write interrupted before \
             writing anything fails with EINTR and must be retried",
        );
        assert_eq!(
            fed.exit,
            ChildExit::Exited(0),
            "the child did not receive exactly the bytes sent: a write interrupted by a signal may \
             write only part of the buffer and return that count; write the rest"
        );
        assert_eq!(fed.written, len);
    });
}

#[test]
fn task6_writing_after_the_reader_left_is_a_broken_pipe() {
    isolated(FEED_HINT, || {
        let result = feed_child(&payload(MIB), drop_and_exit);
        match result {
            Err(Error::BrokenPipe { written }) => assert!(written < MIB, "written = {written}"),
            other => panic!(
                "the child closed its read end and exited at once, so writing 1 MiB must fail with \
                 EPIPE, reported as Err(Error::BrokenPipe {{ .. }}); got {other:?}"
            ),
        }
        procfs::assert_no_zombies("Reap the child even when writing failed.");
    });
}

#[test]
fn task6_broken_pipe_does_not_kill_the_writer_even_with_default_sigpipe() {
    isolated(FEED_HINT, || {
        // Rust programs ignore SIGPIPE at start-up; C programs and many others do not. A library
        // must work either way, so run feed_child in a process where SIGPIPE kills.
        // SAFETY: the child is single-threaded code of this test and ends with _exit.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                // SAFETY: restoring the default disposition installs no handler.
                unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.expect("reset SIGPIPE");
                let code = match feed_child(&payload(MIB), drop_and_exit) {
                    Err(Error::BrokenPipe { .. }) => 0,
                    _ => 2,
                };
                // SAFETY: ends the forked test process without returning into the harness.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => {}
                WaitStatus::Signaled(_, Signal::SIGPIPE, _) => panic!(
                    "with SIGPIPE at its default action, the write to a pipe without readers killed \
                     the process. Block SIGPIPE in the writing thread (pthread_sigmask) while \
                     writing, and consume a pending SIGPIPE before restoring the mask."
                ),
                other => panic!("feed_child did not report Err(Error::BrokenPipe) ({other:?})"),
            },
        }
    });
}

fn drop_and_exit(pipe: std::fs::File) -> i32 {
    drop(pipe);
    0
}
