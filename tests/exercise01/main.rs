//! The graded suite of exercise 01: fork and anonymous pipes.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), because the code under test forks and blocks; when the
//! deadline passes, the message names the usual cause of that hang. The body only runs the code
//! and hands back plain data; the verdict is the judge's (`.judge`), which reads the kernel's
//! state of the test's processes itself at checkpoints (`checkpoint`) and when the body returns.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::panic;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use exercise01::*;
use ipclab_support::child::{exit_code, spawn_child};
use ipclab_support::data::{payload, Received, MIB, PIPE_BUF, PIPE_CAPACITY};
use ipclab_support::descriptors::{assert_no_fd_leaks, fds_opened_since};
use ipclab_support::interrupt::Interrupter;
use ipclab_support::procfs::{self, BlockedCall};
use ipclab_support::witness::syscall_name;
use ipclab_support::{checkpoint, isolated, Snapshot};
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{kill, sigaction, signal, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, gettid, ForkResult, Pid};
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

const INTERRUPTED_READ_HINT: &str = "the message never arrived after a signal interrupted the \
     parent's read. A read cut short by a signal fails with EINTR: retry it (and waitpid too); \
     the parent must still close its write end and read to EOF.";

const INTERRUPTED_CHILD_HINT: &str = "the stream never ended after a signal interrupted the \
     child's read. In the child, a read cut short by a signal fails with EINTR: retry it instead \
     of ending the loop; the parent must keep writing and reading at the same time.";

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

/// Fails, naming each one, if the test process still had a child when the body returned: a
/// zombie, or a child still running or exiting (the reader sees EOF before the writer is gone,
/// so "no zombie" alone would pass a function that never reaps, now and then).
#[track_caller]
fn assert_no_child_left(end: &Snapshot, function: &str, what_to_reap: &str) {
    let left: Vec<String> = end
        .children_of(end.root)
        .iter()
        .map(|p| format!("pid {} ({}, state {})", p.pid(), p.info.comm, p.info.state))
        .collect();
    assert!(
        left.is_empty(),
        "{function} returned while its child was still in the process table: {}. Whatever \
         it has read, a function that forks must waitpid() for each child before it returns. \
         {what_to_reap}",
        left.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// Certain interruptions: a signal that arrives while the code under test is blocked.

/// How often the test's own signal handler ran (in the process where it ran).
static HANDLED: AtomicUsize = AtomicUsize::new(0);
/// Where the handler writes one byte each time it runs, when not -1 (so that another process can
/// wait for it).
static HANDLED_NOTIFY_FD: AtomicI32 = AtomicI32::new(-1);
/// The signal the test sends on purpose (the periodic interrupter uses SIGALRM).
const CERTAIN_SIGNAL: Signal = Signal::SIGUSR1;

extern "C" fn count_interruption(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    let fd = HANDLED_NOTIFY_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the buffer is a live local.
        unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
    }
}

/// Installs the counting handler for [`CERTAIN_SIGNAL`], without SA_RESTART: a blocking call it
/// interrupts fails with EINTR instead of resuming. Children forked later inherit it.
fn install_counting_handler() {
    let action = SigAction::new(
        SigHandler::Handler(count_interruption),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only touches atomics and calls write, both async-signal-safe.
    unsafe { sigaction(CERTAIN_SIGNAL, &action) }.expect("install the test's signal handler");
}

/// A pipe, as (read end, write end) files.
fn file_pipe(what: &str) -> (std::fs::File, std::fs::File) {
    let (read, write) = nix::unistd::pipe().expect(what);
    (read.into(), write.into())
}

/// System calls in which code waiting for a pipe sleeps.
fn waits_for_input(call: &BlockedCall) -> bool {
    [
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_poll,
        libc::SYS_ppoll,
        libc::SYS_select,
        libc::SYS_pselect6,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
    ]
    .contains(&call.number)
}

/// System calls in which code waiting for input or for a child sleeps.
fn waits_for_input_or_a_child(call: &BlockedCall) -> bool {
    waits_for_input(call) || [libc::SYS_wait4, libc::SYS_waitid].contains(&call.number)
}

/// System calls in which code waiting for room in a pipe sleeps.
fn waits_for_room(call: &BlockedCall) -> bool {
    [
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_pwrite64,
        libc::SYS_pwritev,
    ]
    .contains(&call.number)
}

/// System calls in which a writer sleeps: waiting for room, or (done writing) for its child.
fn waits_for_room_or_a_child(call: &BlockedCall) -> bool {
    waits_for_room(call) || [libc::SYS_wait4, libc::SYS_waitid].contains(&call.number)
}

/// Starts a thread that waits until thread `tid` of this process is asleep in a call `asleep_in`
/// accepts, interrupts it with [`CERTAIN_SIGNAL`], waits until the handler ran, and then opens
/// `gate` (writes a byte and closes it), whatever happened. Joins to the call it interrupted,
/// by name, or why it could not.
fn interrupt_when_blocked(
    tid: Pid,
    mut gate: std::fs::File,
    asleep_in: fn(&BlockedCall) -> bool,
) -> thread::JoinHandle<std::result::Result<String, String>> {
    thread::spawn(move || {
        let before = HANDLED.load(Ordering::SeqCst);
        let outcome =
            procfs::wait_until_blocked(tid, Duration::from_secs(5), asleep_in).and_then(|call| {
                // SAFETY: tgkill takes plain integers; `tid` is a thread of this process.
                let sent = unsafe {
                    libc::syscall(
                        libc::SYS_tgkill,
                        getpid().as_raw(),
                        tid.as_raw(),
                        CERTAIN_SIGNAL as libc::c_int,
                    )
                };
                if sent != 0 {
                    return Err(format!(
                        "tgkill failed: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                // The handler runs as the interrupted call returns: an event, not a guess.
                while HANDLED.load(Ordering::SeqCst) == before {
                    thread::yield_now();
                }
                Ok(syscall_name(call.number))
            });
        let _ = gate.write_all(b"go");
        outcome
    })
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
    isolated(INTERRUPTED_READ_HINT, || {
        // Made certain: the child's `produce` waits on a gate, so the parent's read has nothing to
        // read and blocks; a helper thread waits (with the kernel's word) until the parent's
        // thread is asleep in a system call, sends it a signal whose handler has no SA_RESTART,
        // waits until the handler ran (the call was cut short with EINTR), and only then opens
        // the gate.
        install_counting_handler();
        let (mut gate_read, gate_write) = file_pipe("a pipe for the gate");
        let interrupted = interrupt_when_blocked(gettid(), gate_write, waits_for_input_or_a_child);
        let expected = payload(4 * MIB);
        let sent = expected.clone();
        let message = message_from_child(move || {
            let mut go = [0u8; 1];
            let _ = gate_read.read_exact(&mut go);
            sent
        });
        let interrupted = interrupted.join().expect("the interrupting thread");
        (
            interrupted,
            message
                .map(|m| Received::of(&m.bytes, &expected))
                .map_err(|e| format!("{e:?}")),
        )
    })
    .judge(|(interrupted, message), _| {
        let call = interrupted.unwrap_or_else(|why| {
            panic!("the test could not interrupt the parent while it waited for the message: {why}")
        });
        match message {
            Err(e) => panic!(
                "message_from_child returned {e} after a signal interrupted the parent while it \
                 was blocked in {call}: a read (or waitpid) cut short by a signal fails with \
                 EINTR (io::ErrorKind::Interrupted) and must simply be retried"
            ),
            Ok(received) => received.assert_matches(
                &payload(4 * MIB),
                &format!(
                    "the message read after a signal interrupted the parent blocked in {call} \
                     (a read that gives up on EINTR returns too early: retry it)"
                ),
            ),
        }
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
        assert_no_child_left(
            &seen.end,
            "message_from_child",
            "Reap the child with waitpid() after reading its message.",
        );
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
        assert_no_child_left(
            &seen.end,
            "round_trip",
            "Reap the child with waitpid() after reading the reply.",
        );
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
        assert_no_child_left(
            &seen.end,
            "stream_through_child",
            "Reap the child with waitpid() once its output has ended.",
        );
    });
}

/// The bytes of `payload(len)` that the test's transform keeps: one in 4096 (the child's output
/// stays far smaller than a pipe, so the child never blocks writing it).
fn kept(bytes: &[u8], offset: usize) -> Vec<u8> {
    bytes
        .iter()
        .enumerate()
        .filter(|(i, _)| (offset + i) % 4096 == 0)
        .map(|(_, b)| *b)
        .collect()
}

#[test]
fn task4_child_reads_survive_interrupting_signals() {
    const LEN: usize = 4 * MIB;
    isolated(INTERRUPTED_CHILD_HINT, || {
        // Made certain, in the child that stream_through_child forks: at its first chunk the
        // child (running the test's transform) names itself to a monitor process and stops the
        // parent (SIGSTOP), so no more input comes. The monitor waits until the child is asleep
        // reading the drained pipe, interrupts it with a signal whose handler (inherited from
        // this process, without SA_RESTART) tells the monitor it ran, then lets the parent go on.
        install_counting_handler();
        let (handled_read, handled_write) = file_pipe("a pipe for the handler");
        HANDLED_NOTIFY_FD.store(handled_write.as_raw_fd(), Ordering::SeqCst);
        let (announce_read, announce_write) = file_pipe("a pipe for the child's pid");
        let report = std::env::temp_dir().join("monitor-report");
        let parent = getpid();
        let monitor = {
            let report = report.clone();
            let theirs = [handled_write.as_raw_fd(), announce_write.as_raw_fd()];
            spawn_child(move || {
                // The write ends are the child's and the parent's: without this copy, a read
                // here sees EOF once they are gone.
                for fd in theirs {
                    // SAFETY: closes this process's copies of two descriptors it never uses.
                    unsafe { libc::close(fd) };
                }
                let said = monitor_child_read(parent, announce_read, handled_read);
                let _ = std::fs::write(&report, format!("{said:?}"));
                0
            })
        };
        let input = payload(LEN);
        let mut announce = Some(announce_write);
        let mut offset = 0;
        let output = stream_through_child(&input, |chunk| {
            if let Some(mut to_monitor) = announce.take() {
                let _ = to_monitor.write_all(&getpid().as_raw().to_ne_bytes());
                drop(to_monitor);
                let _ = kill(getppid(), Signal::SIGSTOP);
            }
            let kept = kept(chunk, offset);
            offset += chunk.len();
            kept
        });
        drop(announce);
        HANDLED_NOTIFY_FD.store(-1, Ordering::SeqCst);
        drop(handled_write);
        exit_code(monitor, "the monitor");
        let said: String = std::fs::read_to_string(&report).unwrap_or_default();
        (
            said,
            output
                .map(|out| Received::of(&out, &kept(&input, 0)))
                .map_err(|e| format!("{e:?}")),
        )
    })
    .judge(|(said, output), _| {
        let Some(call) = said
            .strip_prefix("Ok(\"")
            .and_then(|s| s.strip_suffix("\")"))
        else {
            panic!(
                "the test could not interrupt the child while it waited for input: {said} \
                 (transform must be called on each chunk as it is read, in the child)"
            );
        };
        match output {
            Err(e) => panic!(
                "stream_through_child returned {e} after a signal interrupted the child while it \
                 was blocked in {call}: in the child's loop, a read that fails with EINTR \
                 (io::ErrorKind::Interrupted) must be retried, not end the stream"
            ),
            Ok(received) => received.assert_matches(
                &kept(&payload(LEN), 0),
                &format!(
                    "the stream after a signal interrupted the child blocked in {call} (in the \
                     child's loop, a read that fails with EINTR must be retried, not end the \
                     stream)"
                ),
            ),
        }
    });
}

/// True when every thread of `pid` is stopped (state `T`).
fn every_thread_stopped(pid: Pid) -> bool {
    let tids = procfs::threads(pid);
    !tids.is_empty()
        && tids.into_iter().all(|tid| {
            procfs::process(tid)
                .ok()
                .flatten()
                .is_some_and(|p| p.is_stopped())
        })
}

/// The monitor of the test above, in a process of its own: learns the child's pid, waits until
/// the parent `test` is stopped and the child asleep reading, interrupts the child and waits
/// until its handler ran, then continues the parent (on every path). Says which call it
/// interrupted.
fn monitor_child_read(
    test: Pid,
    mut announce: std::fs::File,
    mut handled: std::fs::File,
) -> std::result::Result<String, String> {
    let mut pid = [0u8; 4];
    let said = announce
        .read_exact(&mut pid)
        .map_err(|_| "the child never called transform before the input ended".to_owned())
        .and_then(|()| {
            let child = Pid::from_raw(i32::from_ne_bytes(pid));
            let started = std::time::Instant::now();
            // Every thread, the parent's writer included: the main thread shows "stopped" while
            // another may still be finishing a write into the pipe.
            while !every_thread_stopped(test) {
                if started.elapsed() > Duration::from_secs(5) {
                    return Err("the parent was never stopped".to_owned());
                }
                thread::yield_now();
            }
            let call = procfs::wait_until_blocked(child, Duration::from_secs(5), waits_for_input)?;
            kill(child, CERTAIN_SIGNAL).map_err(|e| format!("kill: {e}"))?;
            let mut byte = [0u8; 1];
            handled
                .read_exact(&mut byte)
                .map_err(|_| "the child's signal handler never ran".to_owned())?;
            Ok(syscall_name(call.number))
        });
    let _ = kill(test, Signal::SIGCONT);
    said
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
        // This process's own stdin is /dev/null: a stage that inherits it instead of getting the
        // pipe reads end of file at once, rather than hanging, and says so below.
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        nix::unistd::dup2_stdin(null.as_fd()).expect("make /dev/null this process's stdin");
        // Each stage asks the kernel what its standard streams are.
        let first = ["sh", "-c", "readlink /proc/$$/fd/1"];
        let second = [
            "sh",
            "-c",
            "readlink /proc/$$/fd/0; readlink /proc/$$/fd/1; cat",
        ];
        let out = pipeline(&first, &second).map_err(|e| format!("{e:?}"));
        out.map(|out| text_of(&out.stdout, 4096))
    })
    .judge(|text: std::result::Result<String, String>, seen| {
        let text = text.unwrap_or_else(|e| panic!("pipeline returned an error: {e}"));
        let lines: Vec<&str> = text.lines().collect();
        let Some(second_stdin) = lines.first() else {
            panic!(
                "the second stage wrote nothing the parent could read: dup2 the write end of a \
                 second pipe onto its fd 1 and read that pipe in the parent (printed elsewhere: \
                 {:?})",
                text_of(seen.output.as_bytes(), 300)
            );
        };
        assert!(
            second_stdin.starts_with("pipe:["),
            "the second stage's stdin is {second_stdin}, not the pipe from the first stage: in \
             the second child, dup2 the pipe's read end onto fd 0 (standard input) before execvp"
        );
        let Some(second_stdout) = lines.get(1) else {
            panic!("the second stage's output ended after one line: {text:?}");
        };
        assert!(
            second_stdout.starts_with("pipe:[") && second_stdout != second_stdin,
            "the second stage's stdout should be a second pipe, read by the parent; the kernel \
             says it is {second_stdout}"
        );
        let Some(first_stdout) = lines.get(2) else {
            panic!(
                "the second stage read nothing from its stdin ({second_stdin}): the first stage's \
                 output went elsewhere. In the first child, dup2 the pipe's write end onto fd 1 \
                 (standard output) before execvp (what this process printed: {:?})",
                text_of(seen.output.as_bytes(), 300)
            );
        };
        assert!(
            first_stdout.starts_with("pipe:["),
            "the first stage's stdout should be a pipe, the kernel says it is {first_stdout}"
        );
        assert_eq!(
            second_stdin, first_stdout,
            "the second stage's stdin must be the same pipe as the first stage's stdout (dup2 the \
             pipe's ends onto fd 1 of the first stage and fd 0 of the second)"
        );
        assert_eq!(lines.len(), 3, "unexpected output: {text:?}");
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
fn task5_program_that_cannot_be_executed_is_an_exec_error() {
    isolated(PIPELINE_HINT, || {
        // A script without execute permission: execvp fails with EACCES, not ENOENT.
        let script = std::env::temp_dir().join("not-executable.sh");
        std::fs::write(&script, "#!/bin/sh\necho ran\n").expect("write the script");
        let script = script.to_str().expect("a UTF-8 path").to_owned();
        checkpoint("before the call");
        let result = match pipeline(&[script.as_str()], &["cat"]) {
            Err(Error::Exec { command, errno }) => Ok((command, errno as i32)),
            other => Err(format!("{other:?}")),
        };
        (script, result)
    })
    .judge(
        |(script, result): (String, std::result::Result<(String, i32), String>), seen| {
            match result {
                Ok((command, errno)) => {
                    assert_eq!(command, script, "Error::Exec must name the program");
                    assert_eq!(
                        errno,
                        libc::EACCES,
                        "execvp of a file without execute permission fails with EACCES"
                    );
                }
                Err(other) => panic!(
                    "a program that exists but may not be executed (execvp fails with EACCES) \
                     must be Err(Error::Exec {{ command, errno: EACCES }}), not reported as \
                     missing nor as success: got {other}"
                ),
            }
            assert_no_fd_leaks(
                seen.at("before the call").test_process(),
                seen.end.test_process(),
                "Even when a stage cannot start, every pipe end must be closed.",
            );
            assert_no_child_left(
                &seen.end,
                "pipeline",
                "Even when a stage cannot start, every stage that was forked must be reaped.",
            );
        },
    );
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
        assert_no_child_left(&seen.end, "pipeline", "Reap both stages with waitpid().");
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
        // Made certain: the child shrinks the pipe and then waits on a gate before it reads, so
        // the parent's write fills the pipe and sleeps with part of its buffer written; a helper
        // thread sees it asleep in write (the kernel's word), sends a signal whose handler has
        // no SA_RESTART, waits until the handler ran, and only then opens the gate. A write
        // cut short that way returns the count it wrote (or fails with EINTR if it had written
        // nothing yet); both must be carried on from. The periodic interrupter adds more.
        install_counting_handler();
        let (mut gate_read, gate_write) = file_pipe("a pipe for the gate");
        let interrupted = interrupt_when_blocked(gettid(), gate_write, waits_for_room_or_a_child);
        let _noise =
            Interrupter::every(Duration::from_micros(200)).expect("start the interrupting timer");
        let fed = feed_child(&payload(LEN), move |mut pipe| {
            let _ = fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(4096));
            let mut go = [0u8; 1];
            let _ = gate_read.read_exact(&mut go);
            let mut received = Vec::new();
            match pipe.read_to_end(&mut received) {
                Ok(_) if received == payload(LEN) => 0,
                Ok(_) if received.len() < LEN => 3,
                _ => 4,
            }
        })
        .map(|fed| (fed.written, Exit::from(fed.exit)))
        .map_err(|e| format!("{e:?}"));
        (interrupted.join().expect("the interrupting thread"), fed)
    })
    .judge(|(interrupted, fed), _| {
        let call = interrupted.unwrap_or_else(|why| {
            panic!("the test could not interrupt the parent while it waited for room: {why}")
        });
        let (written, exit) = fed.unwrap_or_else(|e| {
            panic!(
                "feed_child returned {e} after a signal interrupted the parent blocked in {call}: \
                 a write interrupted before writing anything fails with EINTR and must be retried"
            )
        });
        assert_ne!(
            exit,
            Exit::Exited(3),
            "the child received fewer bytes than were sent{}: a write cut short by a signal \
             returns the count it wrote so far; write the rest",
            if call.starts_with("wait") {
                " (feed_child was waiting for the child while the pipe was still full, the rest \
                 of the data never written)"
            } else {
                ""
            }
        );
        assert_eq!(
            exit,
            Exit::Exited(0),
            "the child did not receive exactly the bytes sent (more, or others): after a write \
             that was cut short, write the rest from where it stopped"
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
        assert_no_child_left(
            &seen.end,
            "feed_child",
            "Reap the child even when writing failed.",
        );
    });
}

#[rstest]
#[case::delivered(false)]
#[case::broken_pipe(true)]
fn task6_signal_mask_is_restored_and_no_sigpipe_left_pending(#[case] reader_leaves: bool) {
    isolated(FEED_HINT, || {
        checkpoint("before the call");
        let fed = if reader_leaves {
            feed_child(&payload(MIB), drop_and_exit)
        } else {
            feed_child(b"some bytes", |mut pipe| {
                let mut all = Vec::new();
                i32::from(pipe.read_to_end(&mut all).is_err())
            })
        };
        checkpoint("returned");
        (gettid().as_raw(), format!("{fed:?}"))
    })
    .judge(|(tid, fed), seen| {
        let thread_at = |label: &str| {
            seen.at(label)
                .test_process()
                .threads
                .iter()
                .find(|t| t.tid == tid)
                .map(|t| t.signals)
                .unwrap_or_else(|| panic!("the calling thread is missing at {label:?}"))
        };
        let (before, after) = (thread_at("before the call"), thread_at("returned"));
        assert!(
            !after.blocked.contains(Signal::SIGPIPE) || before.blocked.contains(Signal::SIGPIPE),
            "feed_child returned ({fed}) with SIGPIPE still blocked in the calling thread: restore \
             the mask it found (pthread_sigmask with the old set) before returning"
        );
        assert_eq!(
            after.blocked, before.blocked,
            "feed_child returned ({fed}) with another signal mask than it found: restore the old \
             mask before returning"
        );
        assert!(
            !after.thread_pending.contains(Signal::SIGPIPE)
                && !after.shared_pending.contains(Signal::SIGPIPE),
            "feed_child returned ({fed}) with a SIGPIPE pending: consume it (sigtimedwait) before \
             unblocking, or it hits the caller later"
        );
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
