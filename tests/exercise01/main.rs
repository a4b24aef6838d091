//! The graded suite of exercise 01: fork and anonymous pipes.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), because the code under test forks and blocks; when the
//! deadline passes, the message names the usual cause of that hang. The body only runs the code
//! and hands back plain data; the verdict is the judge's (`.judge`), which reads the kernel's
//! state of the test's processes itself at checkpoints (`checkpoint`) and when the body returns.

use std::io::Read;
use std::os::fd::AsFd;
use std::panic;
use std::time::Duration;

use exercise01::*;
use ipclab_support::data::{payload, Received, MIB, PIPE_BUF, PIPE_CAPACITY};
use ipclab_support::descriptors::{assert_no_fd_leaks, fds_opened_since};
use ipclab_support::interrupt::Interrupter;
use ipclab_support::{checkpoint, isolated};
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{kill, signal, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult};
use rstest::rstest;
use serde::{Deserialize, Serialize};

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

/// How a child ended, as the judge gets it: `ChildExit` in plain data (the signal by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Exit {
    Exited(i32),
    Signaled(String),
}

impl From<ChildExit> for Exit {
    fn from(exit: ChildExit) -> Exit {
        match exit {
            ChildExit::Exited(code) => Exit::Exited(code),
            ChildExit::Signaled(signal) => signaled(signal),
        }
    }
}

fn signaled(signal: Signal) -> Exit {
    Exit::Signaled(signal.as_str().to_owned())
}

/// What `pipeline` returned, as the judge gets it (output cut at 64 KiB: enough for every text
/// a test compares; the long transfers are compared by digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pipeline {
    stdout: Vec<u8>,
    first: Exit,
    second: Exit,
}

impl From<PipelineOutput> for Pipeline {
    fn from(out: PipelineOutput) -> Pipeline {
        let mut stdout = out.stdout;
        stdout.truncate(64 * 1024);
        Pipeline {
            stdout,
            first: out.first.into(),
            second: out.second.into(),
        }
    }
}

/// At most `max` characters of `bytes` as text, for a message.
fn text_of(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned()
}

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
        (counter, Exit::from(finished.exit))
    })
    .judge(|(counter, exit), _| {
        assert_eq!(
            counter, 41,
            "the parent's counter changed: `child` ran in the parent's own address space. It must \
             run only in the child that fork() creates, which changes its own copy of memory."
        );
        assert_eq!(
            exit,
            Exit::Exited(42),
            "the child should exit with the code `child` returned (42: it saw 41 and changed its copy)"
        );
    });
}

#[test]
fn task1_child_is_a_new_process_whose_parent_is_the_caller() {
    isolated(WAIT_HINT, || {
        let parent = getpid();
        let finished = fork_and_wait(|| {
            checkpoint("child runs");
            if getppid() == parent && getpid() != parent {
                0
            } else {
                3
            }
        })
        .expect("fork_and_wait returned an error");
        (finished.pid.as_raw(), Exit::from(finished.exit))
    })
    .judge(|(pid, exit), seen| {
        let parent = seen.end.root;
        assert_ne!(
            pid, parent,
            "`pid` must be the child's pid, as fork() returned it to the parent"
        );
        let child = seen.at("child runs").requester();
        assert!(
            child.pid() != parent && child.info.ppid.as_raw() == parent,
            "`child` must run in a new process whose parent is the caller of fork_and_wait \
             (the kernel says it ran in pid {}, whose parent is {}; the caller is {parent})",
            child.pid(),
            child.info.ppid
        );
        assert_eq!(
            pid,
            child.pid(),
            "`pid` must be the child's pid, as fork() returned it to the parent"
        );
        assert_eq!(
            exit,
            Exit::Exited(0),
            "`child` must run in a new process whose parent is the caller of fork_and_wait"
        );
    });
}

#[test]
fn task1_parent_reaps_the_child() {
    isolated(WAIT_HINT, || {
        let finished = fork_and_wait(|| 0).expect("fork_and_wait returned an error");
        finished.pid.as_raw()
    })
    .judge(|pid, seen| {
        seen.end
            .assert_no_zombies("fork_and_wait must waitpid() for its child before returning.");
        assert!(
            seen.end.process(pid).is_none(),
            "the child (pid {pid}) is still in the process table after fork_and_wait returned"
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
        Exit::from(finished.exit)
    })
    .judge(|exit, _| {
        assert_eq!(
            exit,
            signaled(Signal::SIGTERM),
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
        (
            Received::of(&message.bytes, &expected),
            Exit::from(message.exit),
        )
    })
    .judge(|(received, exit), _| {
        received.assert_matches(&payload(len), "the message the parent read");
        assert_eq!(
            exit,
            Exit::Exited(0),
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
        Received::of(&message.bytes, &expected)
    })
    .judge(|received, _| {
        received.assert_matches(
            &payload(4 * MIB),
            "the message read while signals kept arriving",
        );
    });
}

#[test]
fn task2_child_writes_into_a_pipe_holding_only_the_write_end() {
    isolated(EOF_HINT, || {
        checkpoint("before the call");
        let message = message_from_child(|| {
            // Runs in the child: the judge reads which pipe descriptors it holds now.
            checkpoint("the child writes");
            b"ok".to_vec()
        })
        .expect("message_from_child returned an error");
        text_of(&message.bytes, 200)
    })
    .judge(|text, seen| {
        let before = seen.at("before the call").test_process();
        let child = seen.at("the child writes").requester();
        // Which pipe descriptors does the child hold beyond what the parent had?
        let pipes: Vec<(i32, i32)> = fds_opened_since(before, child)
            .into_iter()
            .filter(|(_, entry)| entry.target.is_pipe())
            .map(|(fd, entry)| (fd, entry.access_mode()))
            .collect();
        match pipes.as_slice() {
            [(_, libc::O_WRONLY)] => {}
            [] => panic!(
                "the child holds no pipe at all: the message must go through a pipe (pipe() \
                 before fork())"
            ),
            more => panic!(
                "the child still holds {} pipe descriptors {:?} (fd, access mode) when it writes: \
                 it must close the read end first and keep only the write end",
                more.len(),
                more
            ),
        }
        assert_eq!(text, "ok", "the message the parent read");
    });
}

#[test]
fn task2_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(EOF_HINT, || {
        checkpoint("before the call");
        let message =
            message_from_child(|| b"hello".to_vec()).expect("message_from_child returned an error");
        message.pid.as_raw()
    })
    .judge(|pid, seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Close both ends of the pipe in the parent: the write end right after fork, the read \
             end after reading.",
        );
        seen.end
            .assert_no_zombies("Reap the child with waitpid() after reading its message.");
        assert_ne!(pid, seen.end.root, "`pid` must be the child's");
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
            checkpoint("serving");
            let mut answer: Vec<u8> = received.into_iter().rev().collect();
            answer.extend_from_slice(format!("|served by {}", getpid()).as_bytes());
            answer
        })
        .expect("round_trip returned an error");
        let reversed: Vec<u8> = request.iter().rev().copied().collect();
        let served_by = reply.get(len..).map(|t| text_of(t, 200)).unwrap_or_default();
        (
            Received::of(&reply[..len.min(reply.len())], &reversed),
            served_by,
        )
    })
    .judge(|(reversed_part, served_by), seen| {
        assert!(
            served_by.starts_with("|served by "),
            "the reply should be `serve(request)`: the request reversed, then `|served by <pid>`; got {served_by:?} after the first {len} bytes"
        );
        let parent = seen.end.root;
        assert_ne!(
            served_by,
            format!("|served by {parent}"),
            "`serve` ran in the parent; it must run in the child"
        );
        assert_ne!(
            seen.at("serving").requester().pid(),
            parent,
            "`serve` ran in the parent; it must run in the child"
        );
        let reversed: Vec<u8> = payload(len).into_iter().rev().collect();
        reversed_part.assert_matches(&reversed, "the reply");
    });
}

#[test]
fn task3_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(ROUND_TRIP_HINT, || {
        checkpoint("before the call");
        round_trip(b"ping", |_| b"pong".to_vec()).expect("round_trip returned an error");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "All four pipe ends must be closed in the parent by the time round_trip returns.",
        );
        seen.end
            .assert_no_zombies("Reap the child with waitpid() after reading the reply.");
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
        Received::of(&output, &input.to_ascii_uppercase())
    })
    .judge(|output, _| {
        output.assert_matches(&payload(len).to_ascii_uppercase(), "the transformed stream");
    });
}

#[test]
fn task4_parent_leaks_no_descriptor_and_reaps_the_child() {
    isolated(DEADLOCK_HINT, || {
        checkpoint("before the call");
        stream_through_child(&payload(3 * PIPE_CAPACITY), <[u8]>::to_vec)
            .expect("stream_through_child returned an error");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Every pipe end must be closed in the parent when stream_through_child returns.",
        );
        seen.end
            .assert_no_zombies("Reap the child with waitpid() once its output has ended.");
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
        Pipeline::from(pipeline(&ps, &["grep", "mysql"]).expect("pipeline returned an error"))
    })
    .judge(|out, _| {
        ipclab_support::assert_snapshot!(
            "task5_grep_keeps_the_mysql_lines",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!((out.first, out.second), (Exit::Exited(0), Exit::Exited(0)));
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
        text_of(&out.stdout, 4096)
    })
    .judge(|text, _| {
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
        Pipeline::from(
            pipeline(
                &["sh", "-c", "echo data; exit 3"],
                &["sh", "-c", "cat >/dev/null; exit 5"],
            )
            .expect("pipeline returned an error"),
        )
    })
    .judge(|out, _| {
        assert_eq!(out.first, Exit::Exited(3), "the first stage exited with 3");
        assert_eq!(
            out.second,
            Exit::Exited(5),
            "the second stage exited with 5"
        );
    });
}

#[test]
fn task5_parent_reads_while_the_stages_run() {
    isolated(PIPELINE_HINT, || {
        let out = pipeline(&["head", "-c", "1048576", "/dev/zero"], &["cat"])
            .expect("pipeline returned an error");
        Received::of(&out.stdout, &vec![0u8; MIB])
    })
    .judge(|stdout, _| {
        stdout.assert_matches(
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
        Pipeline::from(pipeline(&["yes"], &["head", "-n", "1"]).expect("pipeline returned an error"))
    })
    .judge(|out, _| {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "y\n");
        assert_eq!(
            out.first,
            signaled(Signal::SIGPIPE),
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
        checkpoint("before the call");
        match pipeline(first, second) {
            Err(Error::CommandNotFound { command }) => Ok(command),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(|result: std::result::Result<String, String>, seen| {
        match result {
            Ok(command) => assert_eq!(command, "ipclab-no-such-command"),
            Err(other) => panic!("expected Err(Error::CommandNotFound {{ command: \"ipclab-no-such-command\" }}), got {other}"),
        }
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "Even when a stage cannot start, every pipe end must be closed.",
        );
        seen.end.assert_no_zombies(
            "Even when a stage cannot start, every stage that was forked must be reaped.",
        );
        let strays: Vec<_> = seen.end.descendants().iter().map(|p| &p.info).collect();
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
        (
            matches!(result, Err(Error::EmptyCommand)),
            format!("{result:?}"),
        )
    })
    .judge(|(rejected, result), seen| {
        assert!(rejected, "expected Err(Error::EmptyCommand), got {result}");
        seen.end
            .assert_no_zombies("Check the commands before forking anything.");
    });
}

#[test]
fn task5_parent_leaks_no_descriptor_and_reaps_both_stages() {
    isolated(PIPELINE_HINT, || {
        checkpoint("before the call");
        pipeline(&["echo", "hi"], &["cat"]).expect("pipeline returned an error");
    })
    .judge(|(), seen| {
        assert_no_fd_leaks(
            seen.at("before the call").test_process(),
            seen.end.test_process(),
            "The parent must close its copies of every pipe end.",
        );
        seen.end
            .assert_no_zombies("Reap both stages with waitpid().");
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
        (fed.written, Exit::from(fed.exit))
    })
    .judge(|(written, exit), _| {
        assert_eq!(written, len, "feed_child must report every byte written");
        assert_eq!(
            exit,
            Exit::Exited(0),
            "the child must read all {len} bytes, then EOF"
        );
    });
}

#[test]
fn task6_interrupted_partial_writes_are_continued() {
    const LEN: usize = 4 * MIB;
    isolated(FEED_HINT, || {
        // Signals interrupt the parent's writes, and the child shrinks the pipe to one page so
        // that the writer blocks often: an interrupted write returns the count written so far.
        let _noise =
            Interrupter::every(Duration::from_micros(200)).expect("start the interrupting timer");
        let fed = feed_child(&payload(LEN), move |mut pipe| {
            let _ = fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(4096));
            let mut received = Vec::new();
            match pipe.read_to_end(&mut received) {
                Ok(_) if received == payload(LEN) => 0,
                _ => 3,
            }
        })
        .expect(
            "feed_child returned an error while signals kept arriving: a write interrupted before \
             writing anything fails with EINTR and must be retried",
        );
        (fed.written, Exit::from(fed.exit))
    })
    .judge(|(written, exit), _| {
        assert_eq!(
            exit,
            Exit::Exited(0),
            "the child did not receive exactly the bytes sent: a write interrupted by a signal may \
             write only part of the buffer and return that count; write the rest"
        );
        assert_eq!(written, LEN);
    });
}

#[test]
fn task6_writing_after_the_reader_left_is_a_broken_pipe() {
    isolated(FEED_HINT, || {
        match feed_child(&payload(MIB), drop_and_exit) {
            Err(Error::BrokenPipe { written }) => Ok(written),
            other => Err(format!("{other:?}")),
        }
    })
    .judge(|result: std::result::Result<usize, String>, seen| {
        match result {
            Ok(written) => assert!(written < MIB, "written = {written}"),
            Err(other) => panic!(
                "the child closed its read end and exited at once, so writing 1 MiB must fail with \
                 EPIPE, reported as Err(Error::BrokenPipe {{ .. }}); got {other}"
            ),
        }
        seen.end
            .assert_no_zombies("Reap the child even when writing failed.");
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
                let fed = panic::catch_unwind(|| feed_child(&payload(MIB), drop_and_exit));
                let code = match fed {
                    Ok(Err(Error::BrokenPipe { .. })) => 0,
                    Ok(_) => 2,
                    Err(payload) => {
                        // Handed to the parent, so that the verdict names what went wrong.
                        let text = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let _ = std::fs::write(child_panic_file(), text);
                        101
                    }
                };
                // SAFETY: ends the forked test process without returning into the harness.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                let status = match waitpid(child, None).expect("waitpid") {
                    WaitStatus::Exited(_, code) => Ok(Exit::Exited(code)),
                    WaitStatus::Signaled(_, signal, _) => Ok(signaled(signal)),
                    other => Err(format!("{other:?}")),
                };
                (status, std::fs::read_to_string(child_panic_file()).ok())
            }
        }
    })
    .judge(|(status, panicked): (std::result::Result<Exit, String>, Option<String>), _| {
        if let Some(message) = panicked {
            panic!("feed_child panicked (in a process with SIGPIPE at its default action): {message}");
        }
        match status {
        Ok(Exit::Exited(0)) => {}
        Ok(Exit::Signaled(signal)) if signal == Signal::SIGPIPE.as_str() => panic!(
            "with SIGPIPE at its default action, the write to a pipe without readers killed \
             the process. Block SIGPIPE in the writing thread (pthread_sigmask) while \
             writing, and consume a pending SIGPIPE before restoring the mask."
        ),
        other => panic!("feed_child did not report Err(Error::BrokenPipe) ({other:?})"),
        }
    });
}

/// Where the forked writer of the test above leaves the message of a panic.
fn child_panic_file() -> std::path::PathBuf {
    std::env::temp_dir().join("feed_child-panic")
}

fn drop_and_exit(pipe: std::fs::File) -> i32 {
    drop(pipe);
    0
}
