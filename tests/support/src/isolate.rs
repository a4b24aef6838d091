//! Run one test body in a process of its own, with a deadline that kills everything it started.
//!
//! Code under test forks, waits for children, blocks on pipes and changes signal dispositions.
//! Inside libtest's shared, multi-threaded process that would make tests interfere with each
//! other (a `wait` that reaps another test's child, a disposition that changes under another
//! test) and turn a student's deadlock into a `cargo test` that never ends. So:
//!
//! 1. The test (in libtest's process) re-runs its own test binary for just this one test, in a new
//!    process group (and, where allowed, a System V IPC namespace of its own), with output going
//!    to unlinked temporary files.
//! 2. In that process ("the isolated process") the body runs. The process is a child subreaper,
//!    so everything the body starts stays in its tree even when an intermediate parent dies; after
//!    the body, whatever is still running is killed and reaped.
//! 3. If the isolated process is not done by the deadline, the whole tree is frozen with SIGSTOP,
//!    killed with SIGKILL and reaped, and the test fails with the hint written for that task.
//!
//! Re-running the binary (rather than forking the test harness) gives the body a clean,
//! single-test process: forking a multi-threaded harness could copy a lock held by another thread.

use std::env;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{getpid, Pid};

use crate::procfs;

/// Set in the isolated process to the name of the test it runs.
const ISOLATED_ENV: &str = "IPCLAB_ISOLATED";

/// Multiplies every deadline, for slow machines or runs under valgrind or strace (e.g. `3`).
pub const DEADLINE_SCALE_ENV: &str = "IPCLAB_DEADLINE_SCALE";

const PANIC_BEGIN: &str = "\u{1e}ipclab-panic";
const PANIC_END: &str = "\u{1e}end";
/// Written by the isolated process when a panic escaped the body (as opposed to one the body
/// caught itself, which is no failure).
const BODY_FAILED: &str = "\u{1e}ipclab-body-failed";

/// How long an isolated test may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Duration);

impl Default for Deadline {
    /// Ten seconds: generous for every task's real work on a loaded two-core machine, short
    /// enough that a hang costs the student little.
    fn default() -> Self {
        Deadline(Duration::from_secs(10))
    }
}

impl Deadline {
    pub fn secs(secs: u64) -> Deadline {
        Deadline(Duration::from_secs(secs))
    }

    fn scaled(self) -> Duration {
        let scale = env::var(DEADLINE_SCALE_ENV)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1.0);
        self.0.mul_f64(scale)
    }
}

/// Runs `body` in a process of its own with the default deadline (10 s).
///
/// `on_timeout` is what the student reads if the deadline passes: name the usual cause of a hang
/// in this task ("timed out waiting for EOF: is a write end of the pipe still open in the parent
/// or the child?").
///
/// Must be called directly from a test function (it finds the test by the thread libtest runs it
/// on). The body's panics, assertion failures and output are reported as the test's own.
#[track_caller]
pub fn isolated(on_timeout: &str, body: impl FnOnce()) {
    isolated_for(Deadline::default(), on_timeout, body)
}

/// [`isolated`] with a deadline of the test's choosing.
#[track_caller]
pub fn isolated_for(deadline: Deadline, on_timeout: &str, body: impl FnOnce()) {
    let current = thread::current();
    let test_name = match current.name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => panic!(
            "ipclab_support::isolated must be called from a #[test] function run by libtest \
             (it finds the test to re-run by the test thread's name)"
        ),
    };
    if env::var(ISOLATED_ENV).as_deref() == Ok(test_name.as_str()) {
        run_here(body);
    } else {
        run_in_own_process(&test_name, deadline, on_timeout);
    }
}

/// The isolated process's side: run the body, then leave no process behind.
fn run_here(body: impl FnOnce()) {
    let me = getpid();
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    install_panic_reporter();

    let outcome = panic::catch_unwind(AssertUnwindSafe(body));

    if getpid() != me {
        // A process forked by the code under test came back up into the test harness, by
        // returning or by panicking. Letting it go on would run the rest of the test (and libtest)
        // twice, so it ends here.
        eprintln!(
            "ipclab: a forked child (pid {}) {} into the test instead of exiting. \
             End the child's branch with std::process::exit (or libc::_exit) so that it never \
             runs the parent's code.",
            getpid(),
            if outcome.is_ok() {
                "returned"
            } else {
                "panicked and unwound"
            }
        );
        // SAFETY: _exit ends this process at once, which is exactly what this copy must do.
        unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 101 }) };
    }
    kill_and_reap_descendants();
    if let Err(payload) = outcome {
        eprintln!("{BODY_FAILED}");
        panic::resume_unwind(payload);
    }
}

/// Every panic in the isolated process (and in processes it forks) is also written to stderr
/// between markers, with its pid, thread and location, for the test's side to quote.
fn install_panic_reporter() {
    panic::set_hook(Box::new(|info| {
        let message = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic with a non-text payload)".to_owned()
        };
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = thread::current();
        eprintln!(
            "{PANIC_BEGIN} pid={} thread={} at={at}\n{message}\n{PANIC_END}",
            getpid(),
            thread.name().unwrap_or("unnamed"),
        );
    }));
}

/// Stops every descendant (so none can fork any more), kills them all and reaps them.
fn kill_and_reap_descendants() {
    let me = getpid();
    let stopped = freeze_tree(me);
    for pid in &stopped {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    // Everything left is ours (we are the subreaper) and dead or dying: reap until none remain.
    while waitpid(None::<Pid>, None).is_ok() {}
}

/// SIGSTOPs the descendants of `root` until a listing finds no new ones; returns them all.
fn freeze_tree(root: Pid) -> Vec<Pid> {
    let mut stopped: Vec<Pid> = Vec::new();
    loop {
        let fresh: Vec<Pid> = procfs::descendants(root)
            .into_iter()
            .map(|p| p.pid)
            .filter(|pid| !stopped.contains(pid))
            .collect();
        if fresh.is_empty() {
            return stopped;
        }
        for pid in fresh {
            let _ = kill(pid, Signal::SIGSTOP);
            stopped.push(pid);
        }
    }
}

/// The test's side: re-run this one test in a new process group and judge the result.
#[track_caller]
fn run_in_own_process(test_name: &str, deadline: Deadline, on_timeout: &str) {
    let stdout = tempfile::tempfile().expect("create a temporary file for the test's output");
    let stderr = tempfile::tempfile().expect("create a temporary file for the test's output");
    let exe = env::current_exe().expect("find the test binary to re-run");
    let mut command = Command::new(exe);
    command
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED_ENV, test_name)
        .env_remove("RUST_TEST_THREADS")
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("duplicate an output file"))
        .stderr(stderr.try_clone().expect("duplicate an output file"))
        .process_group(0);
    // Where allowed (as root: in CI, when grading), the test gets a System V IPC namespace of
    // its own: queues, segments and semaphore sets the code under test forgets to remove vanish
    // with the test's processes instead of piling up, and parallel tests cannot see each
    // other's. Inside, /proc/sysvipc shows the test's own objects, so the suites' checks hold.
    // SAFETY: the closure runs in the forked child before exec and makes one async-signal-safe
    // system call; it allocates nothing. Failure (EPERM without root) leaves the shared namespace.
    unsafe {
        command.pre_exec(|| {
            libc::unshare(libc::CLONE_NEWIPC);
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .expect("re-run the test binary for an isolated test");
    let pid = Pid::from_raw(child.id() as i32);
    // Become a subreaper before anything can be orphaned; see `reap_orphans`.
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send(());
        status
    });
    let timed_out = done_rx.recv_timeout(deadline.scaled()).is_err();
    let killed = if timed_out {
        kill_tree(pid)
    } else {
        Vec::new()
    };
    let status = waiter
        .join()
        .expect("the waiting thread does not panic")
        .expect("wait for the isolated test process");
    reap_orphans(killed);
    // Anything that left the tree but stayed in the process group goes too.
    let _ = killpg(pid, Signal::SIGKILL);

    let report = Report {
        stdout: read_all(stdout),
        stderr: read_all(stderr),
        pid,
    };
    if timed_out {
        fail(format!(
            "{test_name} did not finish within {:?}, so its whole process tree was killed.\n\
             Likely cause: {on_timeout}{}",
            deadline.scaled(),
            report.context()
        ));
    }
    report.judge(test_name, status);
}

/// Fails the test with `message` alone. A plain `panic!` here would add a location inside this
/// crate and, with RUST_BACKTRACE set, a backtrace of the harness: noise between the student and
/// the message. The test's own line is named instead.
#[track_caller]
fn fail(message: String) -> ! {
    let test_line = panic::Location::caller();
    let file = test_line.file();
    // Suites are compiled from `exercises/exerciseNN/../../tests/…`: show the plain path.
    let file = file.find("tests/").map_or(file, |i| &file[i..]);
    println!("{message}\n  (test: {file}:{})", test_line.line());
    panic::resume_unwind(Box::new(message))
}

/// Timeout: freeze and kill the isolated process's whole tree, the process itself last. Returns
/// the descendants killed, parents before children.
fn kill_tree(pid: Pid) -> Vec<Pid> {
    let _ = kill(pid, Signal::SIGSTOP);
    let tree = freeze_tree(pid);
    for p in &tree {
        let _ = kill(*p, Signal::SIGKILL);
    }
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = kill(pid, Signal::SIGKILL);
    tree
}

/// Reaps the killed tree. Once the isolated process is dead, its orphans would be reparented to
/// init, which does not reap on every machine (zombies would pile up); as a child subreaper this
/// process receives them instead. Reaping parents first hands us each one's children in turn.
fn reap_orphans(pids: Vec<Pid>) {
    for pid in pids {
        // ECHILD: already reaped by its own parent before it died. Either way, done.
        while let Err(Errno::EINTR) = waitpid(pid, None) {}
    }
}

struct Report {
    stdout: String,
    stderr: String,
    pid: Pid,
}

struct PanicRecord {
    pid: i32,
    thread: String,
    at: String,
    message: String,
}

impl Report {
    #[track_caller]
    fn judge(&self, test_name: &str, status: ExitStatus) {
        let panics = self.panics();
        let (main, others): (Vec<&PanicRecord>, Vec<&PanicRecord>) = panics
            .iter()
            .partition(|p| p.pid == self.pid.as_raw() && p.thread == test_name);
        // A panic that escaped the body is a failure even if libtest in the isolated process
        // counted it as a pass (a #[should_panic] test): the verdict is given here. Panics the
        // body caught itself (testing a guard's cleanup, say) are no failure.
        let body_failed = self.stderr.lines().any(|l| l == BODY_FAILED);
        let ran_and_passed = status.success() && self.stdout.contains("test result: ok. 1 passed");
        if ran_and_passed && !body_failed {
            // Goes to libtest's capture: shown with --nocapture, like any test's output.
            print!("{}", self.student_output());
            return;
        }
        let mut message = match main.last().filter(|_| body_failed) {
            Some(p) => format!("{}\n  at {}", p.message, p.at),
            None => self.describe_exit(status),
        };
        for p in others {
            let whose = if p.pid == self.pid.as_raw() {
                format!("thread '{}'", p.thread)
            } else {
                format!("forked child pid {}", p.pid)
            };
            message.push_str(&format!(
                "\n(also: {whose} panicked at {}: {})",
                p.at, p.message
            ));
        }
        fail(format!("{message}{}", self.context()));
    }

    fn describe_exit(&self, status: ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = Signal::try_from(sig)
                .map(|s| s.as_str())
                .unwrap_or("an unknown signal");
            let why = match sig {
                libc::SIGPIPE => {
                    ": it wrote to a pipe or socket that nobody can read any more \
                                 (every read end is closed)"
                }
                libc::SIGSEGV | libc::SIGBUS => {
                    ": it touched memory it may not (unsafe code, a \
                                                  detached shared-memory segment?)"
                }
                libc::SIGABRT => ": it aborted (a panic while panicking, or a failed libc check)",
                _ => "",
            };
            format!("the test process was killed by {name}{why}")
        } else if self.stdout.contains("running 0 tests") {
            "the isolated process ran no test: was `isolated` called from a test that libtest \
             names differently?"
                .to_owned()
        } else {
            format!(
                "the test process ended with {status} before the test finished: did the code call \
                 std::process::exit in the parent, or did a child end the parent's test?"
            )
        }
    }

    fn panics(&self) -> Vec<PanicRecord> {
        let mut found = Vec::new();
        let mut rest = self.stderr.as_str();
        while let Some(start) = rest.find(PANIC_BEGIN) {
            let block = &rest[start + PANIC_BEGIN.len()..];
            let Some(end) = block.find(PANIC_END) else {
                break;
            };
            let (header, message) = block[..end].split_once('\n').unwrap_or((&block[..end], ""));
            let field = |key: &str| {
                header
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .unwrap_or("")
                    .to_owned()
            };
            found.push(PanicRecord {
                pid: field("pid").parse().unwrap_or(0),
                thread: field("thread"),
                at: field("at"),
                message: message.trim_end().to_owned(),
            });
            rest = &block[end + PANIC_END.len()..];
        }
        found
    }

    /// What the code under test printed, without libtest's framing and the panic markers.
    fn student_output<'a>(&'a self) -> String {
        let framing = |l: &str| {
            l.is_empty()
                || l.starts_with("running ")
                || l.starts_with("test result:")
                || l == "failures:"
                || l == "successes:"
                || l.starts_with("    ")
                || matches!(l, "ok" | "FAILED")
        };
        // With --nocapture, libtest writes `test NAME ... ` and then whatever the test prints on
        // the same line; a test killed at its deadline never gets its `ok`.
        let unframed = |l: &'a str| -> &'a str {
            match l
                .strip_prefix("test ")
                .and_then(|rest| rest.split_once(" ..."))
            {
                Some((_, after)) => after.trim_start(),
                None => l,
            }
        };
        let out: Vec<&str> = self
            .stdout
            .lines()
            .map(unframed)
            .filter(|l| !framing(l))
            .collect();
        let mut err = String::new();
        let mut in_marker = false;
        for line in self.stderr.lines() {
            if line.starts_with(PANIC_BEGIN) {
                in_marker = true;
            } else if line == PANIC_END {
                in_marker = false;
            } else if !in_marker
                && line != BODY_FAILED
                && !line.starts_with("note: run with `RUST_BACKTRACE")
            {
                err.push_str(line);
                err.push('\n');
            }
        }
        let mut all = out.join("\n");
        if !all.is_empty() {
            all.push('\n');
        }
        all + &err
    }

    fn context(&self) -> String {
        let output = self.student_output();
        if output.trim().is_empty() {
            String::new()
        } else {
            format!(
                "\n--- output of the isolated test process ---\n{}",
                output.trim_end()
            )
        }
    }
}

fn read_all(mut file: File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_body_passes() {
        isolated("unreachable", || assert_eq!(1 + 1, 2));
    }

    #[test]
    #[should_panic(expected = "the body's own message")]
    fn a_panicking_body_fails_with_its_message() {
        isolated("unreachable", || panic!("the body's own message"));
    }

    #[test]
    fn a_panic_the_body_catches_is_no_failure() {
        isolated("unreachable", || {
            let caught = std::panic::catch_unwind(|| panic!("caught on purpose"));
            assert!(caught.is_err());
        });
    }

    #[test]
    #[should_panic(expected = "Likely cause: waiting on a pipe nobody writes")]
    fn a_hanging_body_is_killed_at_the_deadline() {
        isolated_for(Deadline::secs(1), "waiting on a pipe nobody writes", || {
            let (read_end, _write_end) = nix::unistd::pipe().unwrap();
            // A child that would outlive the deadline too: the whole tree must go.
            // SAFETY: the child only blocks in read and never returns.
            if let nix::unistd::ForkResult::Child = unsafe { nix::unistd::fork() }.unwrap() {
                let _ = nix::unistd::read(&read_end, &mut [0u8; 1]);
                unsafe { libc::_exit(0) };
            }
            let _ = nix::unistd::read(&read_end, &mut [0u8; 1]);
        });
    }

    #[test]
    #[should_panic(expected = "killed by SIGPIPE")]
    fn death_by_signal_is_named() {
        isolated("unreachable", || {
            let _ = nix::sys::signal::raise(Signal::SIGPIPE);
            // SIGPIPE is ignored in Rust programs: restore the default to feel it.
            // SAFETY: installs the default disposition, no handler.
            unsafe {
                nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
            }
            .unwrap();
            let _ = nix::sys::signal::raise(Signal::SIGPIPE);
        });
    }
}
