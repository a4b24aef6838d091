//! The graded suite of exercise 05: signals.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Everything that installs handlers,
//! changes masks, forks or waits runs in a process of its own with a deadline (`isolated`):
//! dispositions are per process, and a signal that never comes must become a failing test with a
//! hint, not a hung `cargo test`. The kernel is the witness: `/proc/<pid>/status` shows which
//! signals a process catches (SigCgt), ignores (SigIgn), blocks (SigBlk) and has pending (SigPnd
//! for one thread, ShdPnd for the whole process). The test process only runs the code and hands
//! back what it saw; the judge reads the kernel's state itself at the test's checkpoints and
//! decides.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use exercise05::*;
use ipclab_support::procfs::{self, BlockedCall, SignalState};
use ipclab_support::{checkpoint, isolated, Snapshot, Witness};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, gettid, getuid, pipe2, ForkResult, Pid, Uid};
use predicates::prelude::*;
use rstest::rstest;
use serde::{Deserialize, Serialize};

const NEVER_RETURNED_HINT: &str = "the call never returned: building the signal table or refusing SIGKILL/SIGSTOP involves no waiting, so look for a loop that never ends";

const HANDLER_HINT: &str = "a signal was sent but never counted. Does the handler (installed with \
     sigaction) increment the count and write a byte to the self-pipe that wait_for reads? Is the \
     signal blocked somewhere?";

const SIGINFO_HINT: &str = "who_sent never returned. Install the handler with SA_SIGINFO before \
     calling `trigger`, and wait for the delivery on something the handler signals (a self-pipe).";

const MASK_HINT: &str = "the test hung around a blocked signal. `block` must block only the \
     signals asked for, in the calling thread, and unblocking must restore the previous mask.";

const RESTART_HINT: &str = "the test waited for the read to start or to end. read_during_signal \
     must call read(2) on the descriptor it is given exactly once, and return when that call \
     returns: Interrupted on EINTR (no SA_RESTART), the data with SA_RESTART.";

const WORKER_HINT: &str = "the worker did not stop. Between units it must wait for input *or* a \
     signal: a handler that sets a flag is not enough if the worker then blocks in read (the \
     signal may come just before the read, and then no EINTR wakes it). Wait with poll on \
     stdin and a self-pipe the handler writes to.";

const REAP_HINT: &str = "a child stayed in the process table. A child that exits is a zombie \
     until its parent calls waitpid: the SIGCHLD handler must reap it. SIGCHLD does not queue, so \
     one delivery may stand for several exits: reap every exited child with waitpid(…, WNOHANG) \
     in a loop, not just one per signal.";

/// A signal's name for messages, without relying on the code under test.
fn name_of(signal: i32) -> String {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    match Signal::try_from(signal) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) if (min..=max).contains(&signal) => format!("SIGRTMIN+{}", signal - min),
        Err(_) => format!("signal {signal}"),
    }
}

fn sigrtmin_plus(n: i32) -> i32 {
    libc::SIGRTMIN() + n
}

/// The calling thread's id, for the judge to find its mask and pending set in a snapshot.
fn tid() -> i32 {
    gettid().as_raw()
}

/// The signal state of the test process as the judge saw it (dispositions are per process).
fn process_signals(snap: &Snapshot) -> SignalState {
    snap.test_process().signals
}

/// The signal state of thread `tid` as the judge saw it (masks and SigPnd are per thread).
#[track_caller]
fn thread_signals(snap: &Snapshot, tid: i32) -> SignalState {
    snap.processes
        .iter()
        .flat_map(|p| &p.threads)
        .find(|t| t.tid == tid)
        .unwrap_or_else(|| {
            panic!(
                "thread {tid} was not in the process table at {:?}",
                snap.label
            )
        })
        .signals
}

/// Sends `signal` to one thread of this process (tgkill), so that the test decides which
/// thread gets it. Works for real-time signals too.
fn send_to_thread(tid: Pid, signal: i32) {
    // SAFETY: tgkill takes plain integers.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, getpid().as_raw(), tid.as_raw(), signal) };
    assert_eq!(rc, 0, "tgkill failed: {}", Errno::last());
}

/// Blocks `signal` in the calling thread, without the code under test.
fn test_block(signal: i32, how: libc::c_int) {
    // SAFETY: plain sigset_t operations on values we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        assert_eq!(
            libc::pthread_sigmask(how, &set, std::ptr::null_mut()),
            0,
            "pthread_sigmask"
        );
    }
}

/// Waits for a condition on kernel state (`/proc`), yielding the CPU in between. The deadline of
/// `isolated` ends it if the condition never comes. Only paces the test: the judge checks.
fn wait_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        std::thread::yield_now();
    }
}

/// How a process ended, in the judge's own terms (not the code under test's types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Ended {
    Exited(i32),
    Signaled(i32),
    Other(String),
}

impl From<WaitStatus> for Ended {
    fn from(status: WaitStatus) -> Ended {
        match status {
            WaitStatus::Exited(_, code) => Ended::Exited(code),
            WaitStatus::Signaled(_, signal, _) => Ended::Signaled(signal as i32),
            other => Ended::Other(format!("{other:?}")),
        }
    }
}

impl From<&ChildExit> for Ended {
    fn from(exit: &ChildExit) -> Ended {
        match exit {
            ChildExit::Exited(code) => Ended::Exited(*code),
            ChildExit::Signaled(signal) => Ended::Signaled(*signal),
        }
    }
}

/// The children a Reaper reported: (pid, how it ended), by pid.
type ReapedList = Vec<(i32, Ended)>;

/// The Reaper's report as plain data, sorted by pid.
fn reaped_list(reaped: &[Reaped]) -> ReapedList {
    let mut list: Vec<(i32, Ended)> = reaped
        .iter()
        .map(|r| (r.pid.as_raw(), Ended::from(&r.exit)))
        .collect();
    list.sort_by_key(|(pid, _)| *pid);
    list
}

/// Runs `body` in a forked child, where the process has one thread only: there, a signal sent to
/// the process must wait in ShdPnd when that thread blocks it. The child's pid and the text its
/// body returns come back; a panic in the child is reported with the test's failure.
fn in_single_threaded_child(what: &str, body: impl FnOnce() -> String) -> (i32, String) {
    let (result_read, result_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
    // SAFETY: the child runs `body` and ends with _exit; it never returns into the harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            drop(result_read);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            if let Ok(text) = &outcome {
                let _ = std::fs::File::from(result_write).write_all(text.as_bytes());
            }
            // SAFETY: ends the forked copy of the test at once.
            unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 101 }) }
        }
        ForkResult::Parent { child } => {
            drop(result_write);
            let mut text = String::new();
            let _ = std::fs::File::from(result_read).read_to_string(&mut text);
            match waitpid(child, None).expect("waitpid") {
                WaitStatus::Exited(_, 0) => (child.as_raw(), text),
                other => panic!(
                    "{what}: the check ran in a single-threaded child process and failed \
                     ({other:?}); its message is below"
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The handler's window: a thread parked in read(2), where nothing but a signal handler can run.

thread_local! {
    /// True while this thread is parked in read(2) by [`Parked`]: whatever it runs then is a
    /// signal handler. `const`-initialised and without a destructor, so the allocator below can
    /// read it without allocating.
    static IN_HANDLER_WINDOW: Cell<bool> = const { Cell::new(false) };
}

/// Allocations (and frees) made by a thread while it was parked: by a handler, then.
static ALLOCATIONS_IN_HANDLERS: AtomicUsize = AtomicUsize::new(0);

/// The test binary's allocator: the system's, which notes every call made inside a handler's
/// window. A handler may not allocate (it may have interrupted `malloc` itself).
struct WatchingAllocator;

fn note_allocation() {
    if IN_HANDLER_WINDOW.with(Cell::get) {
        ALLOCATIONS_IN_HANDLERS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for WatchingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: WatchingAllocator = WatchingAllocator;

/// A thread of the test's own, asleep in `read(2)` on a pipe of its own until released. Between
/// its flag and the system call it runs no code that allocates, so anything it does while
/// parked is the work of a signal handler that ran on it; a read that fails with EINTR (a
/// handler without SA_RESTART) is counted and made again.
struct Parked {
    at: ParkedAt,
    release: OwnedFd,
    thread: std::thread::JoinHandle<usize>,
}

/// Where a [`Parked`] thread sleeps: its tid and the descriptor it reads.
#[derive(Debug, Clone, Copy)]
struct ParkedAt {
    tid: Pid,
    fd: i32,
}

impl Parked {
    fn start() -> Parked {
        Parked::start_unblocking(None)
    }

    /// [`Parked::start`], with `signal` unblocked in the parked thread (for a process whose
    /// other threads block it, so that the kernel gives it to this thread).
    fn start_unblocking(signal: Option<i32>) -> Parked {
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let fd = read_end.as_raw_fd();
        let (tid_send, tid_receive) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            if let Some(signal) = signal {
                test_block(signal, libc::SIG_UNBLOCK);
            }
            tid_send.send(gettid()).expect("hand over the tid");
            drop(tid_send);
            let mut interrupted = 0;
            let mut byte = 0u8;
            loop {
                IN_HANDLER_WINDOW.with(|w| w.set(true));
                // SAFETY: reads one byte into a live local variable.
                let n = unsafe { libc::read(read_end.as_raw_fd(), (&raw mut byte).cast(), 1) };
                let errno = Errno::last_raw();
                IN_HANDLER_WINDOW.with(|w| w.set(false));
                if n < 0 && errno == libc::EINTR {
                    interrupted += 1;
                    continue;
                }
                break interrupted;
            }
        });
        let tid = tid_receive.recv().expect("the parked thread's tid");
        Parked {
            at: ParkedAt { tid, fd },
            release: write_end,
            thread,
        }
    }

    /// Releases the thread; returns how many of its reads failed with EINTR.
    fn release(self) -> usize {
        nix::unistd::write(&self.release, b"!").expect("release the parked thread");
        self.thread.join().expect("the parked thread")
    }
}

impl ParkedAt {
    /// Waits until the thread sleeps in its read.
    fn wait_parked(self) {
        procfs::wait_until_blocked(self.tid, Duration::from_secs(60), |c| {
            c.number == libc::SYS_read && c.args[0] == self.fd as u64
        })
        .expect("the parked thread never blocked in read()");
    }

    /// Sends `signal` to the parked thread once it sleeps in its read, and waits until the
    /// handler has run there (see [`ParkedAt::wait_handled`]).
    fn deliver(self, signal: i32) -> BlockedCall {
        self.wait_parked();
        send_to_thread(self.tid, signal);
        self.wait_handled(signal)
    }

    /// Waits until `signal`, sent to the parked thread (or to its process, which blocks it in
    /// every other thread), is no longer pending and the thread sleeps again: in its read (the
    /// handler returned) or in another call (which only the handler can have made: it waits for
    /// something). Returns that call.
    fn wait_handled(self, signal: i32) -> BlockedCall {
        wait_until(|| {
            procfs::signal_state(self.tid).is_ok_and(|s| {
                !s.thread_pending.contains_number(signal)
                    && !s.shared_pending.contains_number(signal)
            })
        });
        let mut call = None;
        wait_until(|| {
            call = procfs::blocked_call(self.tid);
            call.is_some()
        });
        call.expect("seen asleep")
    }
}

/// What a handler did when it ran on a [`Parked`] thread while another thread held the locks of
/// stdout and stderr.
#[derive(Debug, Serialize, Deserialize)]
struct HandlerWindow {
    /// The parked thread and its descriptor, for the judge.
    tid: i32,
    fd: i32,
    /// Allocations made inside the window.
    allocations: usize,
    /// Reads of the parked thread that failed with EINTR.
    interrupted: usize,
}

/// Runs a handler for `signal` in the window: a parked thread gets the signal while a helper
/// thread holds the locks of stdout and stderr (so that `println!` or `eprintln!` in the handler
/// waits for them) and lets the judge look once the handler has run or got stuck (checkpoint
/// "handler ran"). `run` gets a function that sends the signal (call it exactly once) and
/// returns when the code under test is done with the delivery.
fn handler_window(signal: i32, run: impl FnOnce(&dyn Fn())) -> HandlerWindow {
    handler_window_with(
        Parked::start(),
        move |at| {
            at.deliver(signal);
        },
        run,
    )
}

/// [`handler_window`] with the thread parked already and the helper's way of delivering the
/// signal (`deliver` returns once the handler has run or got stuck).
fn handler_window_with(
    parked: Parked,
    deliver: impl FnOnce(ParkedAt) + Send + 'static,
    run: impl FnOnce(&dyn Fn()),
) -> HandlerWindow {
    let at = parked.at;
    let (locked_send, locked) = mpsc::channel();
    let (go, go_receive) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let out = std::io::stdout().lock();
        let err = std::io::stderr().lock();
        locked_send.send(()).expect("say the locks are held");
        if go_receive.recv().is_err() {
            return; // the signal was never asked for
        }
        deliver(at);
        checkpoint("handler ran");
        drop((out, err));
    });
    locked.recv().expect("the helper holds the locks");
    let before = ALLOCATIONS_IN_HANDLERS.load(Ordering::SeqCst);
    run(&|| go.send(()).expect("ask the helper to send the signal"));
    drop(go);
    holder.join().expect("the helper thread");
    let interrupted = parked.release();
    HandlerWindow {
        tid: at.tid.as_raw(),
        fd: at.fd,
        allocations: ALLOCATIONS_IN_HANDLERS.load(Ordering::SeqCst) - before,
        interrupted,
    }
}

impl HandlerWindow {
    /// As text, for [`in_single_threaded_child`]: `tid fd allocations interrupted`.
    fn to_text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.tid, self.fd, self.allocations, self.interrupted
        )
    }

    fn from_text(text: &str) -> HandlerWindow {
        let n: Vec<usize> = text
            .split_whitespace()
            .map(|w| w.parse().expect("a number"))
            .collect();
        assert_eq!(n.len(), 4, "the child's report {text:?}");
        HandlerWindow {
            tid: n[0] as i32,
            fd: n[1] as i32,
            allocations: n[2],
            interrupted: n[3],
        }
    }
}

/// The judge's verdict on a handler run in the window.
#[track_caller]
fn assert_async_signal_safe(window: &HandlerWindow, seen: &Witness, handler: &str) {
    let thread = seen
        .at("handler ran")
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .find(|t| t.tid == window.tid)
        .expect("the parked thread");
    match thread.blocked {
        Some(c) if c.number == libc::SYS_read && c.args[0] == window.fd as u64 => {}
        Some(c) if c.number == libc::SYS_futex => panic!(
            "{handler} waits for a lock: the signal interrupted a thread while another thread \
             held the locks of stdout and stderr, and the handler went to sleep in futex(). \
             println!, eprintln! and Mutex take locks, which a handler may not: the code it \
             interrupted may hold them. Count in an atomic and write(2) a byte to a self-pipe."
        ),
        other => panic!(
            "{handler} went to sleep in a system call ({other:?}) instead of returning; a \
             handler must never block"
        ),
    }
    assert_eq!(
        window.allocations, 0,
        "{handler} allocated or freed memory ({} call(s) to the allocator while it ran): a \
         handler may have interrupted malloc itself, so it may not allocate (no format!, \
         String, Vec, Box or println!). Touch only atomics and call async-signal-safe functions \
         such as write(2).",
        window.allocations
    );
}

/// Sets the disposition of `signal` to SIG_IGN, without the code under test.
fn test_ignore(signal: i32) {
    // SAFETY: SIG_IGN installs no code.
    let previous = unsafe { libc::signal(signal, libc::SIG_IGN) };
    assert_ne!(previous, libc::SIG_ERR, "signal(SIG_IGN)");
}

/// The judge's check that the thread's mask at `label` is what it was at `before`: a function
/// of the exercise that blocks signals for its own purposes must unblock them before returning.
#[track_caller]
fn assert_mask_as_before(seen: &Witness, tid: i32, before: &str, label: &str, function: &str) {
    let then = thread_signals(seen.at(before), tid).blocked;
    let now = thread_signals(seen.at(label), tid).blocked;
    assert_eq!(
        now, then,
        "{function} left the calling thread's signal mask changed (SigBlk {:#x} before, {:#x} \
         after): a signal blocked for a while must be unblocked again (restore the old mask)",
        then.0, now.0
    );
}

// ---------------------------------------------------------------------------------------------
// Task 1: the signal table.

#[test]
fn task1_table_matches_the_kill_l_of_bash() {
    isolated("running `bash -c 'kill -l'` hung", kill_l).judge(
        |ours: String, _| match Command::new("bash").args(["-c", "kill -l"]).output() {
            Ok(out) if out.status.success() => {
                let theirs = String::from_utf8_lossy(&out.stdout);
                assert_eq!(
                    ours, theirs,
                    "kill_l() differs from what bash's `kill -l` prints on this machine (entries \
                     `%2d) NAME`, a tab after each but every fifth, which ends its line)"
                );
            }
            _ => println!("note: bash is not installed here; only the snapshot grades task 1"),
        },
    );
}

#[test]
fn task1_table_matches_the_reviewed_snapshot() {
    isolated(NEVER_RETURNED_HINT, kill_l).judge(|table: String, _| {
        ipclab_support::assert_snapshot!("task1_kill_l", table);
    });
}

/// The table as plain data: (name, number) in the order given.
fn table_entries() -> Vec<(String, i32)> {
    signal_table()
        .into_iter()
        .map(|s| (s.name, s.number))
        .collect()
}

#[rstest]
#[case::sighup("SIGHUP", libc::SIGHUP)]
#[case::sigint_is_ctrl_c("SIGINT", libc::SIGINT)]
#[case::sigkill_is_kill_9("SIGKILL", libc::SIGKILL)]
#[case::sigusr1("SIGUSR1", libc::SIGUSR1)]
#[case::sigterm("SIGTERM", libc::SIGTERM)]
#[case::sigstkflt("SIGSTKFLT", libc::SIGSTKFLT)]
#[case::sigchld("SIGCHLD", libc::SIGCHLD)]
#[case::sigstop("SIGSTOP", libc::SIGSTOP)]
#[case::sigtstp_is_ctrl_z("SIGTSTP", libc::SIGTSTP)]
#[case::sigsys("SIGSYS", libc::SIGSYS)]
#[case::sigrtmin("SIGRTMIN", libc::SIGRTMIN())]
#[case::sigrtmin_plus_1("SIGRTMIN+1", libc::SIGRTMIN() + 1)]
#[case::sigrtmax_minus_1("SIGRTMAX-1", libc::SIGRTMAX() - 1)]
#[case::sigrtmax("SIGRTMAX", libc::SIGRTMAX())]
fn task1_names_and_numbers_agree_with_libc(#[case] name: &str, #[case] number: i32) {
    isolated(NEVER_RETURNED_HINT, table_entries).judge(|table: Vec<(String, i32)>, _| {
        let found: Vec<&(String, i32)> = table.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(
            found.len(),
            1,
            "signal_table() should list {name} exactly once, found {found:?}"
        );
        assert_eq!(
            found[0].1, number,
            "{name} is signal {number} here (libc says so), the table says {}",
            found[0].1
        );
    });
}

#[test]
fn task1_table_is_in_order_and_skips_what_the_c_library_reserves() {
    isolated(NEVER_RETURNED_HINT, table_entries).judge(|table: Vec<(String, i32)>, _| {
        let numbers: Vec<i32> = table.iter().map(|(_, n)| *n).collect();
        let expected: Vec<i32> = (1..32).chain(libc::SIGRTMIN()..=libc::SIGRTMAX()).collect();
        assert_eq!(
            numbers, expected,
            "the table lists 1 to 31, then SIGRTMIN to SIGRTMAX (read at run time with \
             libc::SIGRTMIN()/SIGRTMAX(): the C library keeps the first real-time signals for itself)"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: a handler that counts.

#[test]
fn task2_handler_shows_in_sigcgt_and_goes_on_drop() {
    isolated(HANDLER_HINT, || {
        checkpoint("before install");
        let counter = SignalCounter::install(libc::SIGUSR1).expect("install returned an error");
        checkpoint("installed");
        let count = counter.count();
        drop(counter);
        checkpoint("dropped");
        (count, tid())
    })
    .judge(|(count, tid): (usize, i32), seen| {
        assert!(!process_signals(seen.at("before install"))
            .caught
            .contains(Signal::SIGUSR1));
        assert!(
            process_signals(seen.at("installed"))
                .caught
                .contains(Signal::SIGUSR1),
            "after install, the kernel should list SIGUSR1 in SigCgt (a handler is installed): \
             install it with sigaction"
        );
        assert_eq!(count, 0, "no signal was sent yet");
        assert!(
            !process_signals(seen.at("dropped"))
                .caught
                .contains(Signal::SIGUSR1),
            "dropping the counter must put the previous disposition (the default) back, \
             with the `struct sigaction` that sigaction returned when installing"
        );
        assert_mask_as_before(
            seen,
            tid,
            "before install",
            "dropped",
            "SignalCounter::install and drop",
        );
    });
}

#[test]
fn task2_dropping_the_counter_restores_the_disposition_it_replaced() {
    isolated(HANDLER_HINT, || {
        // Not the default: a counter that "restores" SIG_DFL would get it wrong.
        test_ignore(libc::SIGUSR1);
        checkpoint("ignored");
        let counter = SignalCounter::install(libc::SIGUSR1).expect("install returned an error");
        checkpoint("installed");
        drop(counter);
        checkpoint("dropped");
    })
    .judge(|(), seen| {
        assert!(process_signals(seen.at("ignored"))
            .ignored
            .contains(Signal::SIGUSR1));
        let installed = process_signals(seen.at("installed"));
        assert!(
            installed.caught.contains(Signal::SIGUSR1)
                && !installed.ignored.contains(Signal::SIGUSR1),
            "install must replace SIG_IGN with the counting handler (SigCgt, not SigIgn): \
             {installed:x?}"
        );
        let dropped = process_signals(seen.at("dropped"));
        assert!(
            dropped.ignored.contains(Signal::SIGUSR1) && !dropped.caught.contains(Signal::SIGUSR1),
            "SIGUSR1 was ignored (SIG_IGN) before the counter was installed, so dropping it must \
             put SIG_IGN back: restore the `struct sigaction` that sigaction returned when \
             installing, not SIG_DFL; the kernel shows SigIgn {:#x}, SigCgt {:#x}",
            dropped.ignored.0,
            dropped.caught.0
        );
    });
}

/// What the body saw after each signal of the sender child: the count, then what wait_for
/// returned (None if the count was too low to wait for).
type CountsSeen = Vec<(usize, Option<usize>)>;

#[test]
fn task2_counts_each_signal_from_another_process() {
    isolated(HANDLER_HINT, || {
        let counter = SignalCounter::install(libc::SIGUSR1).expect("install returned an error");
        // The signals go to a thread parked in read(2), so that the test knows when each
        // handler has returned, whatever the count says.
        let parked = Parked::start();
        let target = parked.at;
        let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let (sent_read, sent_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let parent = getpid();
        // SAFETY: the child reads, signals, answers and _exits.
        let child = match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop((go_write, sent_read));
                let mut byte = [0u8; 1];
                while nix::unistd::read(go_read.as_fd(), &mut byte).unwrap_or(0) == 1 {
                    // SAFETY: tgkill takes plain integers.
                    unsafe {
                        libc::syscall(
                            libc::SYS_tgkill,
                            parent.as_raw(),
                            target.tid.as_raw(),
                            libc::SIGUSR1,
                        )
                    };
                    let _ = nix::unistd::write(&sent_write, b"!");
                }
                // SAFETY: ends the child.
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        };
        drop((go_read, sent_write));
        let mut seen: CountsSeen = Vec::new();
        for n in 1..=3 {
            // One signal at a time: the next is sent only after this one was handled, so none
            // can merge with another.
            target.wait_parked();
            nix::unistd::write(&go_write, b"!").expect("write to the child");
            let mut byte = [0u8; 1];
            nix::unistd::read(sent_read.as_fd(), &mut byte).expect("the child's answer");
            target.wait_handled(libc::SIGUSR1);
            let count = counter.count();
            if count < n {
                // wait_for(n) would wait for ever: the judge says why.
                seen.push((count, None));
                break;
            }
            seen.push((
                count,
                Some(counter.wait_for(n).expect("wait_for returned an error")),
            ));
        }
        drop(go_write);
        waitpid(child, None).expect("waitpid");
        parked.release();
        (seen, counter.count())
    })
    .judge(|(after_each, count): (CountsSeen, usize), seen| {
        for (n, (counted, waited)) in (1..=3).zip(&after_each) {
            assert_eq!(
                *counted, n,
                "after the child's signal number {n} had been handled, count() was {counted}: \
                 each delivery must add one (a flag is not a count: increment a static atomic \
                 in the handler)"
            );
            assert_eq!(
                *waited,
                Some(n),
                "after the child's signal number {n}, wait_for({n}) returned {waited:?}"
            );
        }
        assert_eq!(after_each.len(), 3, "wait_for ran three times");
        assert_eq!(count, 3, "three SIGUSR1 were sent and handled");
        seen.end.assert_no_zombies("(the test's own sender child)");
    });
}

#[rstest]
#[case::standard_signal_coalesces(libc::SIGUSR1, 1)]
#[case::realtime_signal_queues(sigrtmin_plus(1), 5)]
fn task2_five_sent_while_blocked(#[case] signal: i32, #[case] deliveries: usize) {
    isolated(HANDLER_HINT, || {
        let counter = SignalCounter::install(signal).expect("install returned an error");
        test_block(signal, libc::SIG_BLOCK);
        for _ in 0..5 {
            send_to_thread(gettid(), signal);
        }
        checkpoint("sent while blocked");
        let while_blocked = counter.count();
        // Unblocking delivers everything pending, one handler after the other, before
        // pthread_sigmask returns: the count is final then (no need to wait for it).
        test_block(signal, libc::SIG_UNBLOCK);
        let counted = counter.count();
        checkpoint("unblocked");
        let waited = (counted >= deliveries).then(|| {
            counter
                .wait_for(deliveries)
                .expect("wait_for returned an error")
        });
        (tid(), while_blocked, counted, waited)
    })
    .judge(
        |(tid, while_blocked, counted, waited): (i32, usize, usize, Option<usize>), seen| {
            assert!(
                thread_signals(seen.at("sent while blocked"), tid)
                    .thread_pending
                    .contains_number(signal),
                "the kernel should show signal {signal} pending (SigPnd) while it is blocked"
            );
            assert_eq!(
                while_blocked, 0,
                "a blocked signal must not reach the handler"
            );
            assert!(
                !thread_signals(seen.at("unblocked"), tid)
                    .thread_pending
                    .contains_number(signal),
                "once unblocked, signal {signal} must be delivered (the kernel still shows it \
                 pending)"
            );
            assert_eq!(
                counted,
                deliveries,
                "5 × signal {signal} ({}) were sent while it was blocked: the kernel keeps one \
                 pending standard signal but queues every real-time one, so the handler ran \
                 {deliveries} time(s) and the count must say so (count every delivery: a flag is \
                 not a count)",
                name_of(signal)
            );
            assert_eq!(
                waited,
                Some(deliveries),
                "the count had reached {deliveries}, so wait_for({deliveries}) must return it"
            );
        },
    );
}

#[test]
fn task2_the_handler_is_async_signal_safe() {
    isolated(HANDLER_HINT, || {
        let counter = SignalCounter::install(libc::SIGUSR1).expect("install returned an error");
        let window = handler_window(libc::SIGUSR1, |send| send());
        (window, counter.count())
    })
    .judge(|(window, count): (HandlerWindow, usize), seen| {
        assert_async_signal_safe(&window, seen, "the counting handler");
        assert_eq!(count, 1, "one SIGUSR1 was delivered and must be counted");
    });
}

#[test]
fn task2_blocking_reads_elsewhere_go_on_with_sa_restart() {
    isolated(HANDLER_HINT, || {
        let counter = SignalCounter::install(libc::SIGUSR1).expect("install returned an error");
        let parked = Parked::start();
        parked.at.deliver(libc::SIGUSR1);
        let interrupted = parked.release();
        (interrupted, counter.count())
    })
    .judge(|(interrupted, count): (usize, usize), _| {
        assert_eq!(count, 1, "one SIGUSR1 was delivered and must be counted");
        assert_eq!(
            interrupted, 0,
            "the counted signal arrived while another thread was blocked in read(2), and that \
             read failed with EINTR: install the counting handler with SA_RESTART (sa_flags), \
             as its doc comment says, so that the kernel restarts such calls"
        );
    });
}

#[test]
fn task2_wait_for_sleeps_in_the_kernel_until_the_signal_comes() {
    isolated(HANDLER_HINT, || {
        let counter = SignalCounter::install(libc::SIGUSR2).expect("install returned an error");
        let (tid_send, tid_receive) = mpsc::channel();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| {
                tid_send.send(gettid()).expect("hand over the tid");
                counter.wait_for(1).map_err(|e| format!("{e:?}"))
            });
            let tid = tid_receive.recv().expect("the waiting thread's tid");
            // No signal has come: a wait that blocks is asleep in the kernel by now.
            let slept = procfs::wait_until_blocked(tid, Duration::from_secs(5), |_| true)
                .map(|call| call.number);
            checkpoint("waiting");
            kill(getpid(), Signal::SIGUSR2).expect("kill");
            let got = waiting.join().expect("the waiting thread");
            (tid.as_raw(), slept, got)
        })
    })
    .judge(
        |(tid, slept, got): (
            i32,
            std::result::Result<i64, String>,
            std::result::Result<usize, String>,
        ),
         seen| {
            assert_eq!(
                got,
                Ok(1),
                "wait_for(1) should return Ok(1) once the one signal has come"
            );
            let asleep = seen
                .at("waiting")
                .test_process()
                .threads
                .iter()
                .any(|t| t.tid == tid && t.blocked.is_some());
            assert!(
                slept.is_ok() && asleep,
                "wait_for(1) never slept while no signal had come: it kept the CPU busy (a loop \
                 that checks the count). Block reading the self-pipe, which the handler writes \
                 to, until the count is reached"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Task 3: SA_SIGINFO, who sent it.

/// Forks a child that checks in with the judge (so that the judge knows its pid itself), takes
/// `uid` as its real uid if given, and sends `signal` to `parent`.
fn sending_child(parent: Pid, signal: Signal, uid: Option<Uid>) -> Pid {
    // SAFETY: the child only checks in, changes its uids, sends a signal and _exits.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            checkpoint("the sender");
            if let Some(uid) = uid {
                let _ = nix::unistd::setresuid(uid, Uid::from_raw(0), Uid::from_raw(0));
            }
            let _ = kill(parent, signal);
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    }
}

#[test]
fn task3_reports_the_pid_and_uid_of_another_process() {
    isolated(SIGINFO_HINT, || {
        let parent = getpid();
        // Not the default: who_sent must put back what it replaced, not SIG_DFL.
        test_ignore(libc::SIGUSR2);
        checkpoint("before who_sent");
        let mut sender_pid = None;
        let sender = who_sent(libc::SIGUSR2, || {
            sender_pid = Some(sending_child(parent, Signal::SIGUSR2, None));
        })
        .expect("who_sent returned an error");
        let child = sender_pid.expect("the trigger ran");
        waitpid(child, None).expect("waitpid");
        checkpoint("who_sent returned");
        (
            (sender.pid.as_raw(), sender.uid.as_raw()),
            getuid().as_raw(),
            tid(),
        )
    })
    .judge(|(reported, uid, tid): ((i32, u32), u32, i32), seen| {
        let child = seen.at("the sender").requester;
        assert_eq!(
            reported,
            (child, uid),
            "the sender was the child (pid {child}, uid {uid}): read si_pid and si_uid from the \
             siginfo_t that an SA_SIGINFO handler receives (reported: pid {}, uid {})",
            reported.0,
            reported.1
        );
        let after = process_signals(seen.at("who_sent returned"));
        assert!(
            !after.caught.contains(Signal::SIGUSR2),
            "who_sent must restore the previous disposition of SIGUSR2 before returning"
        );
        assert!(
            after.ignored.contains(Signal::SIGUSR2),
            "SIGUSR2 was ignored (SIG_IGN) before who_sent, so who_sent must put SIG_IGN back \
             (the `struct sigaction` that sigaction returned), not SIG_DFL"
        );
        assert_mask_as_before(
            seen,
            tid,
            "before who_sent",
            "who_sent returned",
            "who_sent",
        );
    });
}

#[test]
fn task3_the_handler_is_async_signal_safe() {
    isolated(SIGINFO_HINT, || {
        let mut sender = None;
        let window = handler_window(libc::SIGUSR2, |send| {
            sender = Some(who_sent(libc::SIGUSR2, send).map(|s| s.pid.as_raw()));
        });
        let sender = sender
            .expect("who_sent ran")
            .expect("who_sent returned an error");
        (window, sender)
    })
    .judge(|(window, sender): (HandlerWindow, i32), seen| {
        assert_async_signal_safe(&window, seen, "who_sent's SA_SIGINFO handler");
        assert_eq!(
            sender, seen.end.root,
            "the test process sent the signal to itself"
        );
    });
}

#[test]
fn task3_the_uid_is_the_senders_real_uid() {
    isolated(SIGINFO_HINT, || {
        let parent = getpid();
        let root = getuid().is_root();
        // As root, the sender takes another real uid (keeping the right to signal us as its
        // effective uid): si_uid must report it, which getuid() in the receiver would not.
        let sender_uid = if root { Uid::from_raw(65534) } else { getuid() };
        let mut sender_pid = None;
        let sender = who_sent(libc::SIGUSR1, || {
            sender_pid = Some(sending_child(
                parent,
                Signal::SIGUSR1,
                root.then_some(sender_uid),
            ));
        })
        .expect("who_sent returned an error");
        waitpid(sender_pid.expect("the trigger ran"), None).expect("waitpid");
        if !root {
            println!("note: not root, so the sender could not take another uid");
        }
        (sender.uid.as_raw(), sender_uid.as_raw())
    })
    .judge(|(reported, sender_uid): (u32, u32), seen| {
        seen.at("the sender");
        assert_eq!(
            reported, sender_uid,
            "the sender's real uid was {sender_uid}: report si_uid from the siginfo_t, not the \
             receiver's own uid"
        );
    });
}

#[test]
fn task3_a_signal_to_oneself_names_oneself() {
    isolated(SIGINFO_HINT, || {
        let sender = who_sent(sigrtmin_plus(3), || {
            // SAFETY: tgkill takes plain integers.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    getpid().as_raw(),
                    gettid().as_raw(),
                    libc::SIGRTMIN() + 3,
                )
            };
        })
        .expect("who_sent returned an error");
        sender.pid.as_raw()
    })
    .judge(|pid: i32, seen| {
        assert_eq!(
            pid, seen.end.root,
            "the process signalled itself, so si_pid is its own pid"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: blocking, pending, unblocking.

static TEST_HANDLER_HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn test_handler(_: libc::c_int) {
    TEST_HANDLER_HITS.fetch_add(1, Ordering::SeqCst);
}

/// Installs the test's own counting handler for SIGUSR2 (task 4 does not depend on task 2).
fn install_test_handler() {
    let action = SigAction::new(
        SigHandler::Handler(test_handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic.
    unsafe { sigaction(Signal::SIGUSR2, &action) }.expect("sigaction");
}

#[test]
fn task4_blocked_signals_show_in_sigblk_until_unblocked() {
    isolated(MASK_HINT, || {
        let guard = block(&[libc::SIGUSR1, sigrtmin_plus(2)]).expect("block returned an error");
        checkpoint("blocked");
        guard.unblock().expect("unblock returned an error");
        checkpoint("unblocked");
        tid()
    })
    .judge(|tid: i32, seen| {
        let rt = sigrtmin_plus(2);
        let mask = thread_signals(seen.at("blocked"), tid).blocked;
        assert!(
            mask.contains(Signal::SIGUSR1) && mask.contains_number(rt),
            "the kernel's SigBlk for this thread should hold SIGUSR1 and SIGRTMIN+2 ({mask:x?}): \
             block them with sigprocmask/pthread_sigmask (SIG_BLOCK)"
        );
        assert!(
            !mask.contains(Signal::SIGUSR2),
            "only the signals asked for may be blocked ({mask:x?})"
        );
        let mask = thread_signals(seen.at("unblocked"), tid).blocked;
        assert!(
            !mask.contains(Signal::SIGUSR1) && !mask.contains_number(rt),
            "after unblock, SigBlk should no longer hold them ({mask:x?})"
        );
    });
}

/// What the test process saw around a blocked SIGUSR2.
#[derive(Debug, Serialize, Deserialize)]
struct PendingSeen {
    tid: i32,
    hits_while_blocked: usize,
    listed: Vec<i32>,
    hits_after_unblock: usize,
    listed_after_unblock: Vec<i32>,
}

#[test]
fn task4_a_blocked_signal_is_pending_and_delivered_on_unblock() {
    isolated(MASK_HINT, || {
        install_test_handler();
        let guard = block(&[libc::SIGUSR2]).expect("block returned an error");
        send_to_thread(gettid(), libc::SIGUSR2);
        checkpoint("sent while blocked");
        let hits_while_blocked = TEST_HANDLER_HITS.load(Ordering::SeqCst);
        let listed = pending().expect("pending returned an error");
        guard.unblock().expect("unblock returned an error");
        let hits_after_unblock = TEST_HANDLER_HITS.load(Ordering::SeqCst);
        checkpoint("unblocked");
        PendingSeen {
            tid: tid(),
            hits_while_blocked,
            listed,
            hits_after_unblock,
            listed_after_unblock: pending().expect("pending returned an error"),
        }
    })
    .judge(|got: PendingSeen, seen| {
        assert!(
            thread_signals(seen.at("sent while blocked"), got.tid)
                .thread_pending
                .contains(Signal::SIGUSR2),
            "SIGUSR2 was sent to this thread while blocked: the kernel should show it in SigPnd"
        );
        assert_eq!(
            got.hits_while_blocked, 0,
            "a blocked signal must not be delivered: was it really blocked?"
        );
        assert!(
            got.listed.contains(&libc::SIGUSR2),
            "pending() should list SIGUSR2 ({}), as sigpending reports it; got {:?}",
            libc::SIGUSR2,
            got.listed
        );
        assert_eq!(
            got.hits_after_unblock, 1,
            "unblocking delivers the pending SIGUSR2 before sigprocmask returns"
        );
        assert!(
            !thread_signals(seen.at("unblocked"), got.tid)
                .thread_pending
                .contains(Signal::SIGUSR2),
            "once delivered, SIGUSR2 is no longer pending"
        );
        assert!(
            got.listed_after_unblock.is_empty(),
            "{:?}",
            got.listed_after_unblock
        );
    });
}

#[test]
fn task4_signal_to_the_process_waits_in_shdpnd() {
    isolated(MASK_HINT, || {
        let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        // SAFETY: the child blocks, reports, waits and unblocks, then _exits.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop((ready_read, go_write));
                // A single-threaded process: blocking in this thread blocks it process-wide.
                let run = || match block(&[libc::SIGTERM]) {
                    Ok(guard) => {
                        let _ = nix::unistd::write(&ready_write, b"!");
                        let _ = nix::unistd::read(go_read.as_fd(), &mut [0u8; 1]);
                        // The pending SIGTERM (default action: terminate) is delivered here.
                        let _ = guard.unblock();
                        3
                    }
                    Err(e) => {
                        eprintln!("block(&[SIGTERM]) failed in the child: {e}");
                        2
                    }
                };
                let code = std::panic::catch_unwind(run).unwrap_or(101);
                // SAFETY: ends the child.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop((ready_write, go_read));
                let mut ready = [0u8; 1];
                let n = nix::unistd::read(ready_read.as_fd(), &mut ready).expect("read");
                if n == 0 {
                    let status = waitpid(child, None).expect("waitpid");
                    panic!(
                        "the child could not block SIGTERM ({status:?}: block returned an error \
                         or panicked, see below)"
                    );
                }
                kill(child, Signal::SIGTERM).expect("kill");
                checkpoint("SIGTERM sent");
                nix::unistd::write(&go_write, b"!").expect("write");
                let status = waitpid(child, None).expect("waitpid");
                (child.as_raw(), Ended::from(status))
            }
        }
    })
    .judge(|(child, status): (i32, Ended), seen| {
        let snap = seen.at("SIGTERM sent");
        let state = snap
            .expect_process(child, "the child that blocks SIGTERM")
            .clone();
        assert!(
            state.signals.shared_pending.contains(Signal::SIGTERM),
            "SIGTERM sent to a process that blocks it waits in ShdPnd (pending for the \
             process); the kernel shows {:x?}",
            state.signals
        );
        assert!(
            !state.info.is_zombie(),
            "the child died from SIGTERM although it blocked it"
        );
        assert_eq!(
            status,
            Ended::Signaled(libc::SIGTERM),
            "on unblock, the pending SIGTERM must be delivered (and, at its default \
             action, end the child)"
        );
        assert!(seen.end.process(child).is_none(), "the child was reaped");
    });
}

#[test]
fn task4_unblocking_restores_the_previous_mask() {
    isolated(MASK_HINT, || {
        let outer = block(&[libc::SIGUSR1]).expect("block returned an error");
        let inner = block(&[libc::SIGUSR2]).expect("block returned an error");
        drop(inner);
        checkpoint("inner dropped");
        drop(outer);
        checkpoint("outer dropped");
        tid()
    })
    .judge(|tid: i32, seen| {
        let mask = thread_signals(seen.at("inner dropped"), tid).blocked;
        assert!(
            mask.contains(Signal::SIGUSR1) && !mask.contains(Signal::SIGUSR2),
            "dropping the inner guard must restore the mask from before it (SIGUSR1 still \
             blocked, SIGUSR2 not): keep the old mask that sigprocmask returns and set it back; \
             SigBlk is {mask:x?}"
        );
        let mask = thread_signals(seen.at("outer dropped"), tid).blocked;
        assert!(
            !mask.contains(Signal::SIGUSR1),
            "dropping the outer guard restores the original mask; SigBlk is {mask:x?}"
        );
    });
}

#[test]
fn task4_an_inner_block_of_an_already_blocked_signal_leaves_it_blocked() {
    isolated(MASK_HINT, || {
        let outer = block(&[libc::SIGUSR1]).expect("block returned an error");
        let inner = block(&[libc::SIGUSR1, libc::SIGUSR2]).expect("block returned an error");
        inner.unblock().expect("unblock returned an error");
        checkpoint("inner unblocked");
        let again = block(&[libc::SIGUSR1]).expect("block returned an error");
        drop(again);
        checkpoint("inner dropped");
        drop(outer);
        checkpoint("outer dropped");
        tid()
    })
    .judge(|tid: i32, seen| {
        for (label, how) in [
            ("inner unblocked", "unblock()"),
            ("inner dropped", "dropping"),
        ] {
            let mask = thread_signals(seen.at(label), tid).blocked;
            assert!(
                mask.contains(Signal::SIGUSR1),
                "SIGUSR1 was blocked by an outer guard, then again by an inner one: {how} the \
                 inner guard must leave it blocked (restore the old mask with SIG_SETMASK; \
                 SIG_UNBLOCK of the inner set would undo the outer block too); SigBlk is \
                 {mask:x?}"
            );
        }
        let mask = thread_signals(seen.at("inner unblocked"), tid).blocked;
        assert!(
            !mask.contains(Signal::SIGUSR2),
            "unblock() of the inner guard must unblock SIGUSR2, which only it blocked; SigBlk \
             is {mask:x?}"
        );
        let mask = thread_signals(seen.at("outer dropped"), tid).blocked;
        assert!(
            !mask.contains(Signal::SIGUSR1),
            "dropping the outer guard restores the original mask; SigBlk is {mask:x?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 5: SA_RESTART or EINTR.

/// What `read_during_signal` reported, in the judge's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum ReadSeen {
    Data(Vec<u8>),
    Interrupted,
}

impl From<ReadOutcome> for ReadSeen {
    fn from(outcome: ReadOutcome) -> ReadSeen {
        match outcome {
            ReadOutcome::Data(data) => ReadSeen::Data(data),
            ReadOutcome::Interrupted => ReadSeen::Interrupted,
        }
    }
}

/// Starts a helper thread that waits until thread `tid` blocks in read(2) on `fd`, lets the
/// judge look (checkpoint "reader blocked"), sends it `signal`, waits until the kernel has
/// delivered it and, if given, then writes `data`.
///
/// A thread of the same process (not a child) watches, because reading another process's
/// `/proc/<pid>/task/<tid>/syscall` needs ptrace rights that Yama often denies.
fn signal_the_reader(
    tid: Pid,
    fd: i32,
    signal: i32,
    then: Option<(OwnedFd, &'static [u8])>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        procfs::wait_until_blocked(tid, Duration::from_secs(30), |c| {
            c.number == libc::SYS_read && c.args[0] == fd as u64
        })
        .expect("the reader never blocked in read() on the pipe");
        checkpoint("reader blocked");
        send_to_thread(tid, signal);
        wait_until(|| {
            procfs::signal_state(tid).is_ok_and(|s| !s.thread_pending.contains_number(signal))
        });
        if let Some((fd, data)) = then {
            nix::unistd::write(&fd, data).expect("write to the pipe");
        }
    })
}

/// The judge's own look at the reader: at "reader blocked", thread `tid` sleeps in read(fd).
#[track_caller]
fn assert_reader_was_blocked(snap: &Snapshot, tid: i32, fd: i32) {
    let thread = snap
        .processes
        .iter()
        .flat_map(|p| &p.threads)
        .find(|t| t.tid == tid)
        .expect("the reading thread");
    assert!(
        thread
            .blocked
            .is_some_and(|c| c.number == libc::SYS_read && c.args[0] == fd as u64),
        "read_during_signal must call read(2) on the descriptor it is given (fd {fd}) and block \
         there; the kernel shows the thread in {:?}",
        thread.blocked
    );
}

#[test]
fn task5_without_sa_restart_the_read_fails_with_eintr() {
    isolated(RESTART_HINT, || {
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        // Not the default: the disposition restored must be this one, not SIG_DFL.
        test_ignore(libc::SIGUSR1);
        checkpoint("before");
        let helper = signal_the_reader(gettid(), raw(&read_end), libc::SIGUSR1, None);
        let outcome = read_during_signal(read_end.as_fd(), libc::SIGUSR1, false, 64)
            .expect("read_during_signal returned an error");
        helper.join().expect("the helper thread");
        drop(write_end);
        checkpoint("returned");
        (tid(), raw(&read_end), ReadSeen::from(outcome))
    })
    .judge(|(tid, fd, outcome): (i32, i32, ReadSeen), seen| {
        assert_reader_was_blocked(seen.at("reader blocked"), tid, fd);
        assert_eq!(
            outcome,
            ReadSeen::Interrupted,
            "a handler ran while read(2) was blocked, and without SA_RESTART the read fails \
             with EINTR: report it as ReadOutcome::Interrupted (do not retry)"
        );
        let after = process_signals(seen.at("returned"));
        assert!(
            !after.caught.contains(Signal::SIGUSR1) && after.ignored.contains(Signal::SIGUSR1),
            "the previous disposition of SIGUSR1 (SIG_IGN here) must be restored before \
             returning, from the `struct sigaction` that sigaction returned, not SIG_DFL; the \
             kernel shows SigIgn {:#x}, SigCgt {:#x}",
            after.ignored.0,
            after.caught.0
        );
        assert_mask_as_before(seen, tid, "before", "returned", "read_during_signal");
    });
}

const RESTART_DATA: &[u8] = b"written after the signal was handled";

#[test]
fn task5_with_sa_restart_the_read_goes_on_and_returns_the_data() {
    isolated(RESTART_HINT, || {
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let helper = signal_the_reader(
            gettid(),
            raw(&read_end),
            libc::SIGUSR2,
            Some((write_end, RESTART_DATA)),
        );
        let outcome = read_during_signal(read_end.as_fd(), libc::SIGUSR2, true, 64)
            .expect("read_during_signal returned an error");
        helper.join().expect("the helper thread");
        (tid(), raw(&read_end), ReadSeen::from(outcome))
    })
    .judge(|(tid, fd, outcome): (i32, i32, ReadSeen), seen| {
        assert_reader_was_blocked(seen.at("reader blocked"), tid, fd);
        assert_eq!(
            outcome,
            ReadSeen::Data(RESTART_DATA.to_vec()),
            "with SA_RESTART, the kernel restarts the read after the handler returns, and it \
             returns the data written afterwards"
        );
    });
}

fn raw(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

// ---------------------------------------------------------------------------------------------
// Task 6: graceful shutdown, and the two signals nobody catches.

/// The worker's pid file, in the test's scratch directory (the judge looks there itself).
fn pid_file() -> PathBuf {
    std::env::temp_dir().join("worker.pid")
}

/// The `ex05-worker` program, driven line by line.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pid: Pid,
    transcript: Vec<String>,
}

/// What the test saw of a worker's run, for the judge.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerRun {
    pid: i32,
    /// What the pid file held once the worker said `ready`.
    pid_file_then: String,
    transcript: Vec<String>,
    exit_code: Option<i32>,
}

impl Worker {
    fn start() -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ex05-worker"))
            .arg(pid_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex05-worker");
        let pid = Pid::from_raw(child.id() as i32);
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let stdin = child.stdin.take();
        let mut worker = Worker {
            child,
            stdin,
            stdout,
            pid,
            transcript: Vec::new(),
        };
        worker.expect_line("ready ");
        worker
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the worker");
        stdin.flush().expect("flush");
    }

    /// The next line of output, which must start with `prefix` (the judge checks the whole
    /// transcript; this only stops a run that went wrong early).
    fn expect_line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .expect("read the worker's output");
        if n == 0 {
            let status = self.child.wait().expect("wait for the worker");
            let mut stderr = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!(
                "the worker's output ended ({status}) where a line starting with {prefix:?} was \
                 expected; its output so far: {:?}; its stderr:\n{stderr}",
                self.transcript
            );
        }
        let line = line.trim_end().to_owned();
        self.transcript.push(line.clone());
        assert!(
            line.starts_with(prefix),
            "expected a line starting with {prefix:?}, the worker printed {line:?}"
        );
        line
    }

    /// Waits for the worker's exit; returns what the judge needs.
    fn finish(mut self, pid_file_then: String) -> WorkerRun {
        drop(self.stdin.take());
        let mut rest = String::new();
        let _ = self.stdout.read_to_string(&mut rest);
        self.transcript.extend(rest.lines().map(str::to_owned));
        let exit_code = self.child.wait().expect("wait for the worker").code();
        WorkerRun {
            pid: self.pid.as_raw(),
            pid_file_then,
            transcript: std::mem::take(&mut self.transcript),
            exit_code,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pid file's content now (empty if there is none).
fn pid_file_content() -> String {
    std::fs::read_to_string(pid_file()).unwrap_or_default()
}

impl WorkerRun {
    /// The judge's checks of the start: `ready PID`, and the pid file written before it.
    #[track_caller]
    fn assert_started(&self) {
        let pid = self.pid;
        assert_eq!(
            self.transcript.first().map(String::as_str),
            Some(format!("ready {pid}").as_str()),
            "the first line names the worker's pid"
        );
        assert_eq!(
            self.pid_file_then.trim(),
            pid.to_string(),
            "before printing `ready`, the worker writes its pid to the pid file"
        );
    }

    /// The judge's checks of the end: exit code 0 and the pid file gone (the judge looks).
    #[track_caller]
    fn assert_shut_down(&self, seen: &ipclab_support::Witness, message: &str) {
        assert_eq!(self.exit_code, Some(0), "{message}");
        assert!(
            !seen.scratch.join("worker.pid").exists(),
            "the worker must remove its pid file when it shuts down"
        );
    }

    /// The judge's check that line `n` of the transcript starts with `prefix`.
    #[track_caller]
    fn assert_line(&self, n: usize, prefix: &str) {
        let line = self.transcript.get(n).map(String::as_str).unwrap_or("");
        assert!(
            line.starts_with(prefix),
            "expected a line starting with {prefix:?}, the worker printed {line:?} (its output: \
             {:?})",
            self.transcript
        );
    }
}

/// True once `signal`, sent to process `pid`, has been delivered, or waits pending while every
/// thread of the process blocks it (then nothing but the process's own wait can take it).
fn signal_arrived(pid: Pid, signal: Signal) -> bool {
    let Ok(process) = procfs::signal_state(pid) else {
        return true; // gone: the judge says what became of it
    };
    let tids = procfs::threads(pid);
    let threads: Vec<SignalState> = tids
        .iter()
        .filter_map(|tid| procfs::thread_signal_state(pid, *tid).ok())
        .collect();
    let pending = process.shared_pending.contains(signal)
        || threads.iter().any(|t| t.thread_pending.contains(signal));
    !pending || threads.iter().all(|t| t.blocked.contains(signal))
}

#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint_as_ctrl_c(Signal::SIGINT)]
fn task6_signal_during_a_unit_lets_it_finish_then_exit_0(#[case] signal: Signal) {
    isolated(WORKER_HINT, || {
        let mut worker = Worker::start();
        let written = pid_file_content();
        checkpoint("ready");
        worker.send("begin");
        worker.expect_line("working 1");
        kill(worker.pid, signal).expect("kill");
        // Wait until the signal has really arrived in the middle of the unit: delivered, or
        // pending while every thread blocks it (a worker that takes signals only in ppoll,
        // sigwaitinfo or a signalfd leaves them pending until it waits).
        let pid = worker.pid;
        wait_until(|| signal_arrived(pid, signal));
        checkpoint("signal delivered");
        worker.send("end");
        worker.finish(written)
    })
    .judge(|run: WorkerRun, seen| {
        run.assert_started();
        let state = seen
            .at("ready")
            .expect_process(run.pid, "the worker, once ready")
            .signals;
        assert!(
            state.caught.contains(Signal::SIGTERM) && state.caught.contains(Signal::SIGINT),
            "once ready, the worker must catch SIGTERM and SIGINT (the kernel's SigCgt for it is \
             {:x?})",
            state.caught
        );
        let worker = seen.at("signal delivered").process(run.pid);
        assert!(
            worker.is_some_and(|p| !p.info.is_zombie()),
            "the worker ended at {} in the middle of a unit: it must finish the unit first",
            signal.as_str()
        );
        let transcript = run.transcript.join("\n");
        ipclab_support::assert_snapshot!(
            format!("task6_unit_finished_after_{}", signal.as_str()),
            transcript,
            filters = [(r"ready \d+", "ready [pid]")]
        );
        run.assert_shut_down(seen, "after a graceful shutdown the worker exits with 0");
    });
}

#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint_as_ctrl_c(Signal::SIGINT)]
fn task6_signal_between_units_stops_at_once(#[case] signal: Signal) {
    isolated(WORKER_HINT, || {
        let mut worker = Worker::start();
        let written = pid_file_content();
        worker.send("begin");
        worker.expect_line("working 1");
        worker.send("end");
        worker.expect_line("done 1");
        kill(worker.pid, signal).expect("kill");
        worker.expect_line(&format!("stopped by {} after 1 units", signal.as_str()));
        worker.finish(written)
    })
    .judge(|run: WorkerRun, seen| {
        run.assert_started();
        run.assert_line(1, "working 1");
        run.assert_line(2, "done 1");
        run.assert_line(3, &format!("stopped by {} after 1 units", signal.as_str()));
        run.assert_shut_down(seen, "a graceful shutdown exits with 0");
    });
}

const JUST_BEFORE_THE_WAIT_HINT: &str = "the signal came just before the worker went to sleep \
     waiting for its next line (after `done 1`), its handler ran, and the worker slept on. That \
     is the race of \"check a flag, then block in read(2)\": when the handler runs after the \
     check but before the read begins, there is no EINTR to wake the read, however the handler \
     is installed. Wait for input and signals in one call: poll on the input and a self-pipe \
     the handler writes to (or ppoll/pselect with the signals blocked outside it, signalfd, \
     sigwaitinfo).";

/// A system call that changes the signal mask for its duration: a signal blocked outside it
/// can only be handled inside it, so it is never rewound.
#[cfg(target_arch = "x86_64")]
fn swaps_the_signal_mask(number: i64) -> bool {
    [
        libc::SYS_ppoll,
        libc::SYS_pselect6,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_rt_sigsuspend,
        libc::SYS_rt_sigtimedwait,
    ]
    .contains(&number)
}

/// Makes `signal` arrive at the worst moment for process `pid`: just before each of its threads
/// entered the system call it now sleeps in. Each thread is stopped (ptrace), and one asleep in
/// a call that the stop interrupted is set back to the instruction that makes the call, as if
/// it had not made it yet; then the signal is sent and the threads go on. A handler that runs
/// now runs *before* those calls begin, which is an interleaving the kernel may always choose
/// (the signal may come at any instruction), and the calls are then made afresh. Calls that
/// change the signal mask (ppoll, pselect, sigsuspend, sigtimedwait) are left alone: a signal
/// can only be handled inside them. Returns the calls set back, by number.
#[cfg(target_arch = "x86_64")]
fn signal_just_before_the_wait(pid: Pid, signal: Signal) -> Vec<i64> {
    const RESTARTS: [i64; 5] = [
        -libc::EINTR as i64,
        -512, // ERESTARTSYS
        -513, // ERESTARTNOINTR
        -514, // ERESTARTNOHAND
        -516, // ERESTART_RESTARTBLOCK
    ];
    let tids: Vec<i32> = procfs::threads(pid).iter().map(|t| t.as_raw()).collect();
    assert!(!tids.is_empty(), "the worker's threads: it is gone");
    // SAFETY (every ptrace and waitpid call below): plain integers and a regs struct we own.
    for (k, &tid) in tids.iter().enumerate() {
        let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) };
        if rc != 0 && k == 0 && Errno::last() == Errno::EPERM {
            // Yama's ptrace_scope 2 or 3, or a container without ptrace: no way to choose the
            // moment. The test then only checks a signal sent while the worker waits.
            println!(
                "note: ptrace is not allowed here (EPERM), so the signal comes while the worker \
                 waits, not just before: this run cannot catch the flag-then-read race"
            );
            kill(pid, signal).expect("kill");
            return Vec::new();
        }
        assert_eq!(rc, 0, "PTRACE_SEIZE thread {tid}: {}", Errno::last());
        let rc = unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0) };
        assert_eq!(rc, 0, "PTRACE_INTERRUPT thread {tid}: {}", Errno::last());
    }
    let mut rewound = Vec::new();
    for &tid in &tids {
        let mut status = 0;
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL) };
        assert_eq!(rc, tid, "waitpid for thread {tid}: {}", Errno::last());
        assert!(
            libc::WIFSTOPPED(status) && status >> 16 == libc::PTRACE_EVENT_STOP,
            "thread {tid} of the worker did not stop for the test (status {status:#x})"
        );
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0, &raw mut regs) };
        assert_eq!(rc, 0, "PTRACE_GETREGS thread {tid}: {}", Errno::last());
        let number = regs.orig_rax as i64;
        if number >= 0 && RESTARTS.contains(&(regs.rax as i64)) && !swaps_the_signal_mask(number) {
            // Back to the `syscall` instruction (two bytes), with the call's number in rax, and
            // no system call in progress (orig_rax -1), so the kernel does not restart it itself.
            regs.rax = regs.orig_rax;
            regs.orig_rax = u64::MAX;
            regs.rip -= 2;
            let rc = unsafe { libc::ptrace(libc::PTRACE_SETREGS, tid, 0, &raw const regs) };
            assert_eq!(rc, 0, "PTRACE_SETREGS thread {tid}: {}", Errno::last());
            rewound.push(number);
        }
    }
    kill(pid, signal).expect("kill");
    for &tid in &tids {
        let rc = unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0, 0) };
        assert_eq!(rc, 0, "PTRACE_DETACH thread {tid}: {}", Errno::last());
    }
    rewound
}

#[cfg(not(target_arch = "x86_64"))]
fn signal_just_before_the_wait(pid: Pid, signal: Signal) -> Vec<i64> {
    println!("note: not x86_64, so the signal is sent while the worker waits, not just before");
    kill(pid, signal).expect("kill");
    vec![-1]
}

#[rstest]
#[case::sigterm(Signal::SIGTERM)]
#[case::sigint_as_ctrl_c(Signal::SIGINT)]
fn task6_a_signal_just_before_the_worker_waits_still_stops_it(#[case] signal: Signal) {
    isolated(JUST_BEFORE_THE_WAIT_HINT, || {
        let mut worker = Worker::start();
        let written = pid_file_content();
        worker.send("begin");
        worker.expect_line("working 1");
        worker.send("end");
        worker.expect_line("done 1");
        // Between units, the worker goes to sleep until its next line or a signal.
        let pid = worker.pid;
        wait_until(|| procfs::process(pid).is_ok_and(|p| p.is_some_and(|p| p.state == 'S')));
        checkpoint("waiting between units");
        let rewound = signal_just_before_the_wait(pid, signal);
        worker.expect_line(&format!("stopped by {} after 1 units", signal.as_str()));
        (worker.finish(written), rewound)
    })
    .judge(|(run, rewound): (WorkerRun, Vec<i64>), seen| {
        run.assert_started();
        let worker = seen
            .at("waiting between units")
            .expect_process(run.pid, "the worker, between units");
        assert!(
            worker.threads.iter().any(|t| t.blocked.is_some()),
            "between units the worker must sleep in a system call until its next line or a \
             signal comes (it used the CPU instead)"
        );
        println!("calls the signal came just before: {rewound:?}");
        run.assert_line(3, &format!("stopped by {} after 1 units", signal.as_str()));
        run.assert_shut_down(seen, "a graceful shutdown exits with 0");
    });
}

#[test]
fn task6_without_signals_the_worker_runs_until_its_input_ends() {
    isolated(WORKER_HINT, || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ex05-worker"))
            .arg(pid_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex05-worker");
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(b"begin\nstep 1\nstep 2\nend\nbegin\nend\n")
            .expect("write to the worker");
        drop(stdin);
        let out = child.wait_with_output().expect("wait for the worker");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .judge(
        |(code, stdout, stderr): (Option<i32>, String, String), seen| {
            assert_eq!(
                code,
                Some(0),
                "the worker must succeed at the end of its input; its stderr:\n{stderr}"
            );
            let expected =
                r"^ready \d+\nworking 1\ndone 1\nworking 2\ndone 2\ninput ended after 2 units\n$";
            assert!(
                predicate::str::is_match(expected)
                    .expect("a valid regex")
                    .eval(&stdout),
                "the worker's output {stdout:?} does not match {expected:?}. Its input was \
                 begin, step 1, step 2, end, begin, end: a unit ends only at its `end` line, and \
                 the lines before it are the unit's work"
            );
            assert!(
                !seen.scratch.join("worker.pid").exists(),
                "the pid file must be gone at exit"
            );
        },
    );
}

/// What refusing SIGKILL or SIGSTOP returned, in the judge's own terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Refusal {
    Uncatchable { signal: i32, errno: i32 },
    Other(String),
}

fn refusal<T: std::fmt::Debug>(result: &exercise05::Result<T>) -> Refusal {
    match result {
        Err(Error::Uncatchable { signal, errno }) => Refusal::Uncatchable {
            signal: *signal,
            errno: *errno as i32,
        },
        other => Refusal::Other(format!("{other:?}")),
    }
}

/// What a call on a number that names no usable signal returned, as the judge gets it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Invalid {
    InvalidSignal { signal: i32 },
    Other(String),
}

fn invalid<T: std::fmt::Debug>(result: &exercise05::Result<T>) -> Invalid {
    match result {
        Err(Error::InvalidSignal { signal }) => Invalid::InvalidSignal { signal: *signal },
        other => Invalid::Other(format!("{other:?}")),
    }
}

/// Why `signal` is no signal a program can use, for the failure message.
fn why_invalid(signal: i32) -> &'static str {
    if signal == 32 || signal == 33 {
        "the kernel has it, but the C library keeps 32 and 33 for its threads and sigaction \
         refuses them with EINVAL, which here is not about SIGKILL or SIGSTOP"
    } else {
        "Linux numbers its signals 1 to 64"
    }
}

#[track_caller]
fn assert_invalid(what: &str, signal: i32, result: Invalid, seen: &Witness) {
    assert_eq!(
        result,
        Invalid::InvalidSignal { signal },
        "{what} on {signal}: expected Err(Error::InvalidSignal {{ signal: {signal} }}), because \
         {}",
        why_invalid(signal)
    );
    let (before, after) = (
        process_signals(seen.at("before")),
        process_signals(seen.at("refused")),
    );
    assert_eq!(
        (after.caught, after.ignored),
        (before.caught, before.ignored),
        "{what} on {signal} was refused, but the process's dispositions changed (SigCgt, SigIgn)"
    );
}

#[rstest]
#[case::zero(0)]
#[case::negative(-1)]
#[case::beyond_64(65)]
#[case::reserved_32(32)]
#[case::reserved_33(33)]
fn task2_a_number_that_names_no_usable_signal_is_invalid(#[case] signal: i32) {
    isolated("SignalCounter::install hung", || {
        checkpoint("before");
        let result = SignalCounter::install(signal).map(drop);
        checkpoint("refused");
        invalid(&result)
    })
    .judge(|result: Invalid, seen| assert_invalid("SignalCounter::install", signal, result, seen));
}

#[rstest]
#[case::zero(0)]
#[case::beyond_64(65)]
#[case::reserved_32(32)]
fn task6_ignoring_a_number_that_names_no_usable_signal_is_invalid(#[case] signal: i32) {
    isolated("ignore hung", || {
        checkpoint("before");
        let result = ignore(signal).map(drop);
        checkpoint("refused");
        invalid(&result)
    })
    .judge(|result: Invalid, seen| assert_invalid("ignore", signal, result, seen));
}

#[rstest]
#[case::catch_sigkill(libc::SIGKILL, false)]
#[case::ignore_sigkill(libc::SIGKILL, true)]
#[case::catch_sigstop(libc::SIGSTOP, false)]
#[case::ignore_sigstop(libc::SIGSTOP, true)]
fn task6_sigkill_and_sigstop_cannot_be_caught_or_ignored(
    #[case] signal: i32,
    #[case] try_ignore: bool,
) {
    isolated("asking to catch or ignore SIGKILL/SIGSTOP hung", || {
        let result = if try_ignore {
            ignore(signal).map(drop)
        } else {
            Shutdown::on(&[signal]).map(drop)
        };
        checkpoint("refused");
        refusal(&result)
    })
    .judge(|result: Refusal, seen| {
        match result {
            Refusal::Uncatchable { signal: s, errno } => {
                assert_eq!(s, signal);
                assert_eq!(errno, Errno::EINVAL as i32, "the kernel answers EINVAL");
            }
            Refusal::Other(other) => panic!(
                "the kernel refuses to change the disposition of {} (sigaction fails with EINVAL): \
                 report it as Err(Error::Uncatchable {{ signal, errno: EINVAL }}); got {other}",
                name_of(signal)
            ),
        }
        let state = process_signals(seen.at("refused"));
        assert!(
            !state.caught.contains_number(signal) && !state.ignored.contains_number(signal),
            "the kernel lists {} as caught or ignored?! {state:x?}",
            name_of(signal)
        );
    });
}

#[test]
fn task6_a_refused_signal_leaves_nothing_installed() {
    isolated("Shutdown::on hung", || {
        let result = Shutdown::on(&[libc::SIGTERM, libc::SIGKILL]);
        checkpoint("refused");
        (
            matches!(result, Err(Error::Uncatchable { .. })),
            format!("{result:?}"),
        )
    })
    .judge(|(uncatchable, result): (bool, String), seen| {
        assert!(
            uncatchable,
            "SIGKILL among the signals: expected Err(Error::Uncatchable), got {result}"
        );
        assert!(
            !process_signals(seen.at("refused"))
                .caught
                .contains(Signal::SIGTERM),
            "Shutdown::on failed, so the SIGTERM handler it installed first must be removed again"
        );
    });
}

#[test]
fn task6_ignore_shows_in_sigign_until_dropped() {
    isolated("ignore hung", || {
        // Not the default: the test's own handler, which dropping the guard must put back.
        install_test_handler();
        let ignored = ignore(libc::SIGUSR2).expect("ignore returned an error");
        checkpoint("ignored");
        drop(ignored);
        checkpoint("dropped");
        // Only into a handler: at SIG_DFL, SIGUSR2 would end the test process.
        let caught =
            procfs::signal_state(getpid()).is_ok_and(|s| s.caught.contains(Signal::SIGUSR2));
        caught.then(|| {
            send_to_thread(gettid(), libc::SIGUSR2);
            TEST_HANDLER_HITS.load(Ordering::SeqCst)
        })
    })
    .judge(|hits: Option<usize>, seen| {
        let ignored = process_signals(seen.at("ignored"));
        assert!(
            ignored.ignored.contains(Signal::SIGUSR2) && !ignored.caught.contains(Signal::SIGUSR2),
            "the kernel should list SIGUSR2 in SigIgn (and no longer in SigCgt): {ignored:x?}"
        );
        let dropped = process_signals(seen.at("dropped"));
        assert!(
            !dropped.ignored.contains(Signal::SIGUSR2),
            "dropping the guard must restore the previous disposition"
        );
        assert!(
            dropped.caught.contains(Signal::SIGUSR2) && hits == Some(1),
            "SIGUSR2 had a handler before ignore(), so dropping the guard must put that handler \
             back (the `struct sigaction` that sigaction returned), not SIG_DFL; the kernel \
             shows SigCgt {:#x}, and a SIGUSR2 sent afterwards reached the handler {hits:?} \
             time(s)",
            dropped.caught.0
        );
    });
}

#[test]
fn task6_dropping_shutdown_restores_the_dispositions_it_replaced() {
    isolated("Shutdown::on hung", || {
        test_ignore(libc::SIGTERM);
        checkpoint("before");
        {
            let _shutdown = Shutdown::on(&[libc::SIGTERM, libc::SIGINT]).expect("Shutdown::on");
            checkpoint("installed");
            // Dropped here.
        }
        checkpoint("dropped");
        tid()
    })
    .judge(|tid: i32, seen| {
        let installed = process_signals(seen.at("installed"));
        assert!(
            installed.caught.contains(Signal::SIGTERM) && installed.caught.contains(Signal::SIGINT),
            "Shutdown::on(SIGTERM, SIGINT) must catch both (SigCgt {:#x})",
            installed.caught.0
        );
        let dropped = process_signals(seen.at("dropped"));
        assert!(
            dropped.ignored.contains(Signal::SIGTERM) && !dropped.caught.contains(Signal::SIGTERM),
            "SIGTERM was ignored (SIG_IGN) before Shutdown::on, so dropping the Shutdown must \
             put SIG_IGN back (the `struct sigaction` that sigaction returned), not SIG_DFL; \
             the kernel shows SigIgn {:#x}, SigCgt {:#x}",
            dropped.ignored.0,
            dropped.caught.0
        );
        // SIGINT as it was (its default, or SIG_IGN when started from a background job).
        let before = process_signals(seen.at("before"));
        assert_eq!(
            (
                dropped.caught.contains(Signal::SIGINT),
                dropped.ignored.contains(Signal::SIGINT)
            ),
            (
                before.caught.contains(Signal::SIGINT),
                before.ignored.contains(Signal::SIGINT)
            ),
            "dropping the Shutdown must put SIGINT's disposition from before Shutdown::on back \
             (caught, ignored), from the `struct sigaction` that sigaction returned"
        );
        assert_mask_as_before(seen, tid, "before", "dropped", "Shutdown::on and drop");
    });
}

/// What the test saw of a Shutdown's accessors.
#[derive(Debug, Serialize, Deserialize)]
struct ShutdownSeen {
    fds: Vec<i32>,
    requested_before: Option<i32>,
    readable_before: usize,
    requested_after_usr2: Option<i32>,
    readable_after_usr2: usize,
    requested_after_both: Option<i32>,
}

/// How many of `fds` poll says are readable now (without waiting).
fn readable(fds: &[std::os::fd::BorrowedFd<'_>]) -> usize {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut polled: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    poll(&mut polled, PollTimeout::ZERO).expect("poll");
    polled
        .iter()
        .filter(|p| p.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
        .count()
}

#[test]
fn task6_shutdown_records_the_first_signal_and_wakes_its_fds() {
    isolated("Shutdown::on or its accessors hung", || {
        let shutdown = Shutdown::on(&[libc::SIGUSR1, libc::SIGUSR2]).expect("Shutdown::on");
        let fds = shutdown.fds();
        let numbers = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        checkpoint("installed");
        let requested_before = shutdown.requested();
        let readable_before = readable(&fds);
        // A signal sent to the calling thread is handled before tgkill returns.
        send_to_thread(gettid(), libc::SIGUSR2);
        let requested_after_usr2 = shutdown.requested();
        let readable_after_usr2 = readable(&fds);
        send_to_thread(gettid(), libc::SIGUSR1);
        ShutdownSeen {
            fds: numbers,
            requested_before,
            readable_before,
            requested_after_usr2,
            readable_after_usr2,
            requested_after_both: shutdown.requested(),
        }
    })
    .judge(|got: ShutdownSeen, seen| {
        let open = &seen.at("installed").test_process().fds;
        assert!(
            !got.fds.is_empty() && got.fds.iter().all(|fd| open.contains_key(fd)),
            "fds() must return descriptors the process has open (the kernel's table has {:?}), \
             got {:?}",
            open.keys().collect::<Vec<_>>(),
            got.fds
        );
        assert_eq!(got.requested_before, None, "no signal had arrived yet");
        assert_eq!(
            got.readable_before, 0,
            "before any signal, none of fds() may be readable (poll would wake at once)"
        );
        assert_eq!(
            got.requested_after_usr2,
            Some(libc::SIGUSR2),
            "after SIGUSR2, requested() must say SIGUSR2"
        );
        assert!(
            got.readable_after_usr2 >= 1,
            "after SIGUSR2, one of fds() must be readable: the handler writes a byte to a \
             self-pipe that poll can wait on"
        );
        assert_eq!(
            got.requested_after_both,
            Some(libc::SIGUSR2),
            "SIGUSR2 came first, then SIGUSR1: requested() names the first"
        );
    });
}

#[test]
fn task6_the_shutdown_handler_is_async_signal_safe() {
    isolated("Shutdown::on hung, or its handler never returned", || {
        let shutdown = Shutdown::on(&[libc::SIGTERM]).expect("Shutdown::on");
        let window = handler_window(libc::SIGTERM, |send| send());
        (window, shutdown.requested())
    })
    .judge(|(window, requested): (HandlerWindow, Option<i32>), seen| {
        assert_async_signal_safe(&window, seen, "the Shutdown handler");
        assert_eq!(requested, Some(libc::SIGTERM), "SIGTERM was delivered");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 7: reaping on SIGCHLD.

#[test]
fn task7_children_are_reaped_as_they_exit() {
    isolated(REAP_HINT, || {
        let reaper = Reaper::install().expect("install returned an error");
        checkpoint("installed");
        let mut children = Vec::new();
        for k in 0..4 {
            let (release_read, release_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
            let pid = reaper
                .spawn(move || {
                    // Wait for the test to say "exit now".
                    let _ = nix::unistd::read(release_read.as_fd(), &mut [0u8; 1]);
                    10 + k
                })
                .expect("spawn returned an error");
            children.push((pid, release_write, 10 + k));
        }
        checkpoint("spawned");
        // Release them in a scrambled order; the test never calls into the Reaper meanwhile.
        for k in [2, 0, 3, 1] {
            let (pid, release, _) = &children[k];
            nix::unistd::write(release, b"!").expect("release a child");
            wait_until(|| procfs::process(*pid).expect("read /proc").is_none());
            checkpoint("one more exited");
        }
        let spawned: Vec<(i32, i32)> = children
            .iter()
            .map(|(pid, _, code)| (pid.as_raw(), *code))
            .collect();
        (spawned, reaped_list(&reaper.reaped()))
    })
    .judge(|(spawned, reaped): (Vec<(i32, i32)>, ReapedList), seen| {
        assert!(
            process_signals(seen.at("installed"))
                .caught
                .contains(Signal::SIGCHLD),
            "the Reaper must catch SIGCHLD (SigCgt)"
        );
        let pids: Vec<i32> = spawned.iter().map(|(pid, _)| *pid).collect();
        let at_spawn = seen.at("spawned");
        for pid in &pids {
            assert!(
                at_spawn
                    .process(*pid)
                    .is_some_and(|p| p.info.ppid.as_raw() == at_spawn.root),
                "spawn returned pid {pid}, which is no child of the test process"
            );
        }
        let released = seen.all_at("one more exited");
        assert_eq!(released.len(), 4, "four children were released");
        for snap in released {
            for pid in &pids {
                assert!(
                    !snap.process(*pid).is_some_and(|p| p.info.is_zombie()),
                    "pid {pid} is a zombie"
                );
            }
        }
        let mut expected: Vec<(i32, Ended)> = spawned
            .iter()
            .map(|(pid, code)| (*pid, Ended::Exited(*code)))
            .collect();
        expected.sort_by_key(|(pid, _)| *pid);
        assert_eq!(
            reaped, expected,
            "reaped() should list every child with its exit code"
        );
    });
}

#[test]
fn task7_one_sigchld_for_many_exits_still_reaps_them_all() {
    isolated(REAP_HINT, || {
        in_single_threaded_child("six children exiting under one SIGCHLD", || {
            let reaper = Reaper::install().expect("install returned an error");
            // SIGCHLD blocked in the only thread: the six exits leave one pending SIGCHLD.
            test_block(libc::SIGCHLD, libc::SIG_BLOCK);
            // Each child exits once it gets a byte; none gets one before all six run.
            let (release_read, release_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
            let release = &release_read;
            let pids: Vec<Pid> = (0..6)
                .map(|k| {
                    reaper
                        .spawn(move || {
                            let _ = nix::unistd::read(release.as_fd(), &mut [0u8; 1]);
                            k
                        })
                        .expect("spawn returned an error")
                })
                .collect();
            nix::unistd::write(&release_write, &[0u8; 6]).expect("release the children");
            wait_until(|| procfs::zombie_children(getpid()).len() == pids.len());
            checkpoint("six exited");
            test_block(libc::SIGCHLD, libc::SIG_UNBLOCK);
            let reaped = reaper.wait_all().expect("wait_all returned an error");
            checkpoint("reaped");
            format!("{}\n{reaped:?}", reaped.len())
        })
    })
    .judge(|(child, text): (i32, String), seen| {
        let exited = seen.at("six exited");
        assert_eq!(
            exited.requester, child,
            "the single-threaded child checked in"
        );
        assert_eq!(
            exited.zombie_children_of(child).len(),
            6,
            "six children exited and wait for their parent"
        );
        assert!(
            exited
                .requester()
                .signals
                .shared_pending
                .contains(Signal::SIGCHLD),
            "six children exited: SIGCHLD should be pending, once"
        );
        let (count, reaped) = text.split_once('\n').unwrap_or(("", ""));
        assert_eq!(
            count, "6",
            "one SIGCHLD stood for six exits: all six must be reaped (waitpid with WNOHANG \
             in a loop); reaped {reaped}"
        );
        let left = seen.at("reaped").zombie_children_of(child);
        assert!(
            left.is_empty(),
            "{} zombie child(ren) left unreaped. Reap every exited child on each SIGCHLD.",
            left.len()
        );
    });
}

#[test]
fn task7_exit_codes_and_deaths_by_signal_are_reported() {
    isolated(REAP_HINT, || {
        let reaper = Reaper::install().expect("install returned an error");
        let exits = reaper.spawn(|| 3).expect("spawn returned an error");
        let killed = reaper
            .spawn(|| {
                // SAFETY: restoring the default action installs no handler.
                unsafe { nix::sys::signal::signal(Signal::SIGUSR1, SigHandler::SigDfl) }
                    .expect("reset SIGUSR1");
                let _ = kill(getpid(), Signal::SIGUSR1);
                0
            })
            .expect("spawn returned an error");
        let reaped = reaper.wait_all().expect("wait_all returned an error");
        checkpoint("all reaped");
        ((exits.as_raw(), killed.as_raw()), reaped_list(&reaped))
    })
    .judge(
        |((exits, killed), reaped): ((i32, i32), ReapedList), seen| {
            let mut expected = vec![
                (exits, Ended::Exited(3)),
                (killed, Ended::Signaled(libc::SIGUSR1)),
            ];
            expected.sort_by_key(|(pid, _)| *pid);
            assert_eq!(reaped, expected);
            seen.at("all reaped")
                .assert_no_zombies("wait_all returns once every child is reaped.");
        },
    );
}

#[test]
fn task7_a_childs_exit_does_not_interrupt_reads_elsewhere() {
    isolated(REAP_HINT, || {
        in_single_threaded_child("the reaper's SIGCHLD during a read", || {
            let reaper = Reaper::install().expect("install returned an error");
            // Only the parked thread lets SIGCHLD in: the child's exit runs the handler there,
            // while it sleeps in read(2).
            let parked = Parked::start_unblocking(Some(libc::SIGCHLD));
            test_block(libc::SIGCHLD, libc::SIG_BLOCK);
            parked.at.wait_parked();
            let child = reaper.spawn(|| 0).expect("spawn returned an error");
            // Once the child is a zombie (or reaped already), its SIGCHLD has been sent.
            wait_until(|| procfs::process(child).is_ok_and(|p| p.is_none_or(|p| p.is_zombie())));
            parked.at.wait_handled(libc::SIGCHLD);
            let reaped = reaper.wait_all().expect("wait_all returned an error");
            let interrupted = parked.release();
            test_block(libc::SIGCHLD, libc::SIG_UNBLOCK);
            format!("{interrupted} {}", reaped.len())
        })
    })
    .judge(|(_, text): (i32, String), _| {
        let (interrupted, reaped) = text.split_once(' ').expect("the child's report");
        assert_eq!(reaped, "1", "the one child must be reaped");
        assert_eq!(
            interrupted, "0",
            "a child's exit (its SIGCHLD) interrupted a read another thread was blocked in, and \
             that read failed with EINTR: install the SIGCHLD handler with SA_RESTART, so that \
             the program's blocking calls go on when a child exits"
        );
    });
}

#[test]
fn task7_the_handler_is_async_signal_safe() {
    isolated(REAP_HINT, || {
        in_single_threaded_child("the SIGCHLD handler in the window", || {
            let reaper = Reaper::install().expect("install returned an error");
            let (release_read, release_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
            let child = reaper
                .spawn(move || {
                    let _ = nix::unistd::read(release_read.as_fd(), &mut [0u8; 1]);
                    0
                })
                .expect("spawn returned an error");
            // Only the parked thread lets SIGCHLD in: the child's exit runs the handler there.
            let parked = Parked::start_unblocking(Some(libc::SIGCHLD));
            test_block(libc::SIGCHLD, libc::SIG_BLOCK);
            let deliver = move |at: ParkedAt| {
                at.wait_parked();
                nix::unistd::write(&release_write, b"!").expect("release the child");
                // Once the child is a zombie (or reaped already), its SIGCHLD has been sent.
                wait_until(|| {
                    procfs::process(child).is_ok_and(|p| p.is_none_or(|p| p.is_zombie()))
                });
                at.wait_handled(libc::SIGCHLD);
            };
            let window = handler_window_with(parked, deliver, |send| send());
            let reaped = reaper.wait_all().expect("wait_all returned an error");
            test_block(libc::SIGCHLD, libc::SIG_UNBLOCK);
            format!("{}\n{}", window.to_text(), reaped.len())
        })
    })
    .judge(|(_, text): (i32, String), seen| {
        let (window, reaped) = text.split_once('\n').expect("the child's report");
        let window = HandlerWindow::from_text(window);
        assert_async_signal_safe(&window, seen, "the SIGCHLD handler");
        assert_eq!(reaped, "1", "one child exited and must be reaped");
    });
}

#[test]
fn task7_dropping_the_reaper_restores_the_sigchld_disposition_it_replaced() {
    isolated(REAP_HINT, || {
        // Not the default: the disposition the Reaper must put back.
        test_ignore(libc::SIGCHLD);
        checkpoint("before");
        let reaper = Reaper::install().expect("install returned an error");
        reaper.spawn(|| 0).expect("spawn returned an error");
        let reaped = reaper.wait_all().expect("wait_all returned an error");
        drop(reaper);
        checkpoint("dropped");
        (tid(), reaped.len())
    })
    .judge(|(tid, reaped): (i32, usize), seen| {
        assert_eq!(reaped, 1, "one child was spawned and reaped");
        let dropped = process_signals(seen.at("dropped"));
        assert!(
            dropped.ignored.contains(Signal::SIGCHLD) && !dropped.caught.contains(Signal::SIGCHLD),
            "SIGCHLD was ignored (SIG_IGN) before the Reaper, so dropping it must put SIG_IGN \
             back (the `struct sigaction` that sigaction returned), not SIG_DFL; the kernel \
             shows SigIgn {:#x}, SigCgt {:#x}",
            dropped.ignored.0,
            dropped.caught.0
        );
        assert_mask_as_before(seen, tid, "before", "dropped", "the Reaper");
    });
}

#[test]
fn task7_dropping_the_reaper_leaves_no_child_and_restores_sigchld() {
    isolated(REAP_HINT, || {
        let (hold_read, hold_write) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
        let reaper = Reaper::install().expect("install returned an error");
        let pid = reaper
            .spawn(move || {
                // Never released: still running when the Reaper goes.
                let _ = nix::unistd::read(hold_read.as_fd(), &mut [0u8; 1]);
                0
            })
            .expect("spawn returned an error");
        checkpoint("spawned");
        drop(reaper);
        checkpoint("dropped");
        drop(hold_write);
        pid.as_raw()
    })
    .judge(|pid: i32, seen| {
        seen.at("spawned")
            .expect_process(pid, "the Reaper's child, still running");
        assert!(
            seen.at("dropped").process(pid).is_none(),
            "a child still running when the Reaper is dropped must be killed and reaped \
             (nothing may be left behind)"
        );
        assert!(
            !process_signals(seen.at("dropped"))
                .caught
                .contains(Signal::SIGCHLD),
            "dropping the Reaper must restore the previous SIGCHLD disposition"
        );
    });
}
