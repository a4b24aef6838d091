//! Run one test's body in a sandboxed process of its own, and decide the verdict outside it.
//!
//! The body runs the student's code, so the process that runs it cannot be trusted: it could
//! print libtest's "ok" line, exit 0, rewrite files or change its environment. So a graded test
//! has two halves:
//!
//! ```ignore
//! #[test]
//! fn task1_parent_reaps_the_child() {
//!     isolated(WAIT_HINT, || {
//!         // Untrusted: runs the student's code in the test process, behind the sandbox.
//!         let finished = fork_and_wait(|| 0).expect("fork_and_wait returned an error");
//!         finished.pid.as_raw()                  // data handed to the judge
//!     })
//!     .judge(|pid, seen| {
//!         // Trusted: runs in libtest's process, where no student code has run.
//!         seen.end.assert_no_zombies("fork_and_wait must waitpid() for its child");
//!         assert!(seen.end.process(pid).is_none(), "the child is still in the process table");
//!     });
//! }
//! ```
//!
//! 1. libtest's process (the **judge**) starts a **keeper** ([`crate::keeper`]): its own test
//!    binary again, which starts the **test process** (the binary once more, for this one test)
//!    behind the walls of [`crate::sandbox`] and makes sure that nothing outlives the judge.
//! 2. The test process runs the body. Its only channel to the judge is [`crate::probe`]: it hands
//!    back the body's value, and at each [`crate::checkpoint`] it waits while the judge reads the
//!    kernel's state of every process of the test itself ([`crate::witness::Snapshot`]).
//! 3. The judge runs the judging closure on that data and writes the verdict into the record
//!    ([`crate::record`]) that `ipclab`, `verify` and the grader read. A test passes only when
//!    its judge ran and returned; nothing the test process does can make that happen.
//! 4. At the deadline the judge takes a last snapshot (what every process was blocked in, for
//!    the message), and the keeper freezes, kills and reaps the whole tree.
//!
//! Re-running the binary (rather than forking the multi-threaded test harness) gives the body a
//! clean, single-test process.

use std::env;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{setsockopt, socketpair, sockopt, AddressFamily, SockFlag, SockType};
use nix::unistd::{getpid, Pid};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keeper::{
    self, Report, ISOLATED_ENV, KEEPER_DEADLINE_ENV, KEEPER_ENV, POLICY_ENV, REPORT_FD_ENV,
};
use crate::probe::{self, Message, PROBE_FD_ENV};
use crate::procfs::FdTarget;
use crate::record::{self, Verdict};
use crate::sandbox::{Policy, Protections, OUTPUT_LIMIT};
use crate::witness::{Hidden, Snapshot};

/// Multiplies every deadline, for slow machines or runs under valgrind or strace (e.g. `3`).
pub const DEADLINE_SCALE_ENV: &str = "IPCLAB_DEADLINE_SCALE";

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

    /// The deadline times [`DEADLINE_SCALE_ENV`].
    pub fn scaled(self) -> Duration {
        self.0.mul_f64(scale())
    }
}

/// The factor of [`DEADLINE_SCALE_ENV`] (1 when unset or not a positive number).
pub fn scale() -> f64 {
    env::var(DEADLINE_SCALE_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
}

/// Everything the judge saw of the test's processes.
#[derive(Debug)]
pub struct Witness {
    /// Snapshots taken at [`crate::checkpoint`]s, in the order they were asked for.
    pub checkpoints: Vec<Snapshot>,
    /// Taken when the body returned, before anything was cleaned up.
    pub end: Snapshot,
    /// The test's scratch directory (its `TMPDIR`), still holding what the test left there.
    pub scratch: PathBuf,
    /// What the code under test printed (stdout and stderr together, cut at 64 KiB).
    pub output: String,
    /// The walls the test ran behind.
    pub protections: Protections,
}

impl Witness {
    /// The first snapshot taken at checkpoint `label`; panics if the code never reached it.
    #[track_caller]
    pub fn at(&self, label: &str) -> &Snapshot {
        self.checkpoints
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| {
                panic!(
                    "the test never reached its checkpoint {label:?} (the code under test did not \
                     run the test's closure that far)"
                )
            })
    }

    /// Every snapshot taken at checkpoint `label`, in order.
    pub fn all_at(&self, label: &str) -> Vec<&Snapshot> {
        self.checkpoints
            .iter()
            .filter(|s| s.label == label)
            .collect()
    }
}

/// What became of the body; judge it with [`Outcome::judge`]. A test passes only if it does.
#[must_use = "a test passes only when its outcome is judged: call .judge(|value, witness| …)"]
pub struct Outcome<T> {
    test: String,
    result: Result<(serde_json::Value, Witness), String>,
    output: String,
    protections: Option<Protections>,
    _scratch: Option<tempfile::TempDir>,
    test_line: &'static Location<'static>,
    judged: bool,
    _value: PhantomData<T>,
}

impl<T: DeserializeOwned> Outcome<T> {
    /// Runs `judge` on what the body handed back and what the judge saw. The test passes if
    /// `judge` returns; its assertions are the test's verdict.
    pub fn judge(mut self, judge: impl FnOnce(T, &Witness)) {
        self.judged = true;
        let result = std::mem::replace(&mut self.result, Err(String::new()));
        let (value, witness) = match result {
            Ok(v) => v,
            Err(message) => {
                let message = format!("{message}{}", context(&self.output));
                self.verdict(false, Some(message.clone()));
                fail(self.test_line, message);
            }
        };
        let value: T = match serde_json::from_value(value) {
            Ok(v) => v,
            Err(e) => {
                let message = format!(
                    "the test process handed back something that is not what the test returns \
                     ({e}): was its result forged?"
                );
                self.verdict(false, Some(message.clone()));
                fail(self.test_line, message);
            }
        };
        match panic::catch_unwind(AssertUnwindSafe(|| judge(value, &witness))) {
            Ok(()) => {
                // Goes to libtest's capture: shown with --nocapture, like any test's output.
                print!("{}", self.output);
                self.verdict(true, None);
            }
            Err(payload) => {
                let message = panic_text(&*payload);
                self.verdict(false, Some(format!("{message}{}", context(&self.output))));
                println!("{}", context(&self.output).trim_start());
                panic::resume_unwind(payload);
            }
        }
    }

    fn verdict(&self, passed: bool, message: Option<String>) {
        record::write(&Verdict {
            test: self.test.clone(),
            passed,
            message,
            protections: self.protections.clone(),
            output: self.output.clone(),
        });
    }
}

impl<T> Drop for Outcome<T> {
    fn drop(&mut self) {
        if !self.judged && !thread::panicking() {
            record::write(&Verdict {
                test: self.test.clone(),
                passed: false,
                message: Some("the test was never judged".into()),
                protections: self.protections.clone(),
                output: String::new(),
            });
            panic!("{}: the outcome of `isolated` was never judged", self.test);
        }
    }
}

/// Runs `body` in a sandboxed process of its own with the default deadline (10 s).
///
/// `on_timeout` is what the student reads if the deadline passes: name the usual cause of a hang
/// in this task ("timed out waiting for EOF: is a write end of the pipe still open in the parent
/// or the child?").
///
/// Must be called directly from a test function (it finds the test by the thread libtest runs it
/// on). The body's value must be plain data (`Serialize`): the judge gets a copy.
#[track_caller]
pub fn isolated<T: Serialize + DeserializeOwned>(
    on_timeout: &str,
    body: impl FnOnce() -> T,
) -> Outcome<T> {
    isolated_for(Deadline::default(), on_timeout, body)
}

/// [`isolated`] with a deadline of the test's choosing.
#[track_caller]
pub fn isolated_for<T: Serialize + DeserializeOwned>(
    deadline: Deadline,
    on_timeout: &str,
    body: impl FnOnce() -> T,
) -> Outcome<T> {
    let test_line = Location::caller();
    let current = thread::current();
    let test_name = match current.name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => panic!(
            "ipclab_support::isolated must be called from a #[test] function run by libtest \
             (it finds the test to re-run by the test thread's name)"
        ),
    };
    if env::var(KEEPER_ENV).as_deref() == Ok(test_name.as_str()) {
        keeper::run();
    }
    if env::var(ISOLATED_ENV).as_deref() == Ok(test_name.as_str()) {
        run_body(body);
    }
    judge_side(test_name, deadline, on_timeout, test_line)
}

// ---------------------------------------------------------------------------------------------
// The test process's side.

/// Runs the body and hands its value to the judge; never returns.
fn run_body<T: Serialize>(body: impl FnOnce() -> T) -> ! {
    let me = getpid();
    if let Some(fd) = env::var(PROBE_FD_ENV)
        .ok()
        .and_then(|s| s.parse::<RawFd>().ok())
    {
        // Forked children keep it (checkpoints); programs they exec do not.
        // SAFETY: F_SETFD on a descriptor number; harmless if it is not open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    install_panic_reporter();

    let outcome = panic::catch_unwind(AssertUnwindSafe(body));
    if getpid() != me {
        // A process forked by the code under test came back up into the test, by returning or
        // by panicking. Letting it go on would run the rest of the test twice.
        let _ = probe::send(
            &Message::ForkedChildReturned {
                panicked: outcome.is_err(),
            },
            false,
        );
        // SAFETY: _exit ends this process at once, which is exactly what this copy must do.
        unsafe { libc::_exit(if outcome.is_ok() { 0 } else { 101 }) };
    }
    let sent = match outcome {
        Ok(value) => match serde_json::to_value(&value) {
            Ok(value) => probe::send(&Message::Done { value }, true),
            Err(e) => probe::send(
                &Message::Panic {
                    thread: thread::current().name().unwrap_or("").to_owned(),
                    at: String::new(),
                    message: format!("the test's value cannot be handed to the judge: {e}"),
                },
                false,
            )
            .and_then(|()| probe::send(&Message::BodyFailed, false)),
        },
        Err(_) => probe::send(&Message::BodyFailed, false),
    };
    if let Err(e) = sent {
        eprintln!("ipclab: cannot reach the judge: {e}");
    }
    // SAFETY: ends the test process without running libtest further; the keeper reaps the rest.
    unsafe { libc::_exit(0) }
}

/// Every panic in the test process (and in processes it forks) goes to the judge, with its
/// thread and location, for the message.
fn install_panic_reporter() {
    panic::set_hook(Box::new(|info| {
        let message = panic_text(info.payload());
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = thread::current().name().unwrap_or("unnamed").to_owned();
        let _ = probe::send(
            &Message::Panic {
                thread,
                at,
                message,
            },
            false,
        );
    }));
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic with a non-text payload)".to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The judge's side.

struct PanicSeen {
    pid: i32,
    thread: String,
    at: String,
    message: String,
}

/// Everything the judge learnt while the test ran.
#[derive(Default)]
struct Run {
    root: Option<i32>,
    protections: Option<Protections>,
    could_not_start: Option<String>,
    checkpoints: Vec<Snapshot>,
    done: Option<(serde_json::Value, Snapshot)>,
    body_failed: bool,
    panics: Vec<PanicSeen>,
    notes: Vec<String>,
    deadline: Option<Snapshot>,
    ended: Option<Report>,
}

fn judge_side<T>(
    test: String,
    deadline: Deadline,
    on_timeout: &str,
    test_line: &'static Location<'static>,
) -> Outcome<T> {
    let failed = |message: String| Outcome {
        test: test.clone(),
        result: Err(message),
        output: String::new(),
        protections: None,
        _scratch: None,
        test_line,
        judged: false,
        _value: PhantomData,
    };
    let scratch = match tempfile::Builder::new().prefix("ipclab-test-").tempdir() {
        Ok(dir) => dir,
        Err(e) => return failed(format!("ipclab: no scratch directory for the test: {e}")),
    };
    match start_and_watch(&test, deadline, &scratch) {
        Ok((run, output)) => conclude(test, run, output, scratch, deadline, on_timeout, test_line),
        Err(e) => failed(format!("ipclab could not run the test process: {e}")),
    }
}

/// Descriptor numbers, in the keeper and the test process, of the probe socket and the report
/// pipe: high, so that the code under test's own descriptors get the numbers it expects.
fn channel_fds() -> (RawFd, RawFd) {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
        .min(1024) as RawFd;
    (soft - 24, soft - 23)
}

fn start_and_watch(
    test: &str,
    deadline: Deadline,
    scratch: &tempfile::TempDir,
) -> Result<(Run, String), String> {
    let limit = deadline.scaled();
    let policy = Policy::for_this_machine(scratch.path(), limit.as_secs() + 1);
    let (judge_end, test_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socketpair: {e}"))?;
    setsockopt(&judge_end, sockopt::PassCred, &true).map_err(|e| format!("SO_PASSCRED: {e}"))?;
    let mut hidden = Hidden::default();
    for end in [&judge_end, &test_end] {
        let inode = nix::sys::stat::fstat(end.as_fd())
            .map(|s| s.st_ino)
            .map_err(|e| format!("fstat: {e}"))?;
        hidden.targets.push(FdTarget::Socket(inode));
    }
    let (out_read, out_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // The test's standard output and error are this pipe: judges look past it, as they looked
    // past a terminal.
    if let Ok(stat) = nix::sys::stat::fstat(out_read.as_fd()) {
        hidden.targets.push(FdTarget::Pipe(stat.st_ino));
    }
    let (report_read, report_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (probe_fd, report_fd) = channel_fds();
    let exe = env::current_exe().map_err(|e| format!("no test binary: {e}"))?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0(exe.as_os_str())
        // --include-ignored: an opt-in (`#[ignore]`d, ungraded) test that libtest was asked to
        // run must run in its copy too.
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KEEPER_ENV, test)
        .env(
            KEEPER_DEADLINE_ENV,
            (limit + Duration::from_secs(10)).as_millis().to_string(),
        )
        .env(
            POLICY_ENV,
            serde_json::to_string(&policy).unwrap_or_default(),
        )
        .env(PROBE_FD_ENV, probe_fd.to_string())
        .env(REPORT_FD_ENV, report_fd.to_string())
        .env_remove("RUST_TEST_THREADS")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(out_write))
        .process_group(0);
    let (test_raw, report_raw) = (test_end.as_raw_fd(), report_write.as_raw_fd());
    // SAFETY: dup2 between fork and exec; the new descriptors are not close-on-exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(test_raw, probe_fd) < 0 || libc::dup2(report_raw, report_fd) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut keeper = command
        .spawn()
        .map_err(|e| format!("cannot start the keeper: {e}"))?;
    drop(command);
    drop(test_end);
    drop(report_write);
    let keeper_pid = Pid::from_raw(keeper.id() as i32);
    let mut control = keeper.stdin.take();

    let output = thread::spawn(move || read_capped(out_read));
    let mut run = Run::default();
    let mut reports = ReportReader::new(report_read);
    let started = Instant::now();
    let mut probe_open = true;
    let mut ending_since: Option<Instant> = None;
    loop {
        if run.ended.is_some() {
            break;
        }
        let wait = match ending_since {
            Some(since) => (Duration::from_secs(10).mul_f64(scale()))
                .checked_sub(since.elapsed())
                .unwrap_or_default(),
            None => limit.saturating_sub(started.elapsed()),
        };
        if wait.is_zero() {
            if ending_since.is_some() {
                // The keeper did not report in time: end it and its group ourselves.
                let _ = killpg(keeper_pid, Signal::SIGKILL);
                run.notes.push("the keeper did not end in time".into());
                break;
            }
            if let Some(root) = run.root {
                run.deadline = Some(Snapshot::capture("deadline", root, root, &hidden));
            }
            // "stop": the keeper ends the test, and knows that this judge is still here (a
            // judge that dies closes the pipe without a word).
            if let Some(mut pipe) = control.take() {
                use std::io::Write;
                let _ = pipe.write_all(b"stop");
            }
            ending_since = Some(Instant::now());
            continue;
        }
        let mut fds = vec![PollFd::new(reports.fd(), PollFlags::POLLIN)];
        // Messages only once the test process is known (its pid is in the keeper's first line).
        let listen = probe_open && run.root.is_some();
        if listen {
            fds.push(PollFd::new(judge_end.as_fd(), PollFlags::POLLIN));
        }
        let timeout =
            PollTimeout::try_from(wait.min(Duration::from_secs(1))).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let report_ready = fds[0].any().unwrap_or(false);
        let probe_ready = listen && fds[1].any().unwrap_or(false);
        if probe_ready {
            match probe::receive(judge_end.as_fd()) {
                Ok(Some(received)) => handle(&mut run, received, &mut hidden),
                Ok(None) | Err(_) => probe_open = false,
            }
            continue;
        }
        if report_ready {
            for report in reports.read() {
                match report {
                    Report::Started { pid, protections } => {
                        run.root = Some(pid);
                        run.protections = Some(protections);
                    }
                    Report::CouldNotStart { error } => {
                        run.could_not_start = Some(error);
                    }
                    ended @ Report::Ended { .. } => {
                        // Messages still queued on the socket were sent before the end.
                        while probe_open {
                            let mut fds = [PollFd::new(judge_end.as_fd(), PollFlags::POLLIN)];
                            if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
                                break;
                            }
                            match probe::receive(judge_end.as_fd()) {
                                Ok(Some(received)) => handle(&mut run, received, &mut hidden),
                                _ => probe_open = false,
                            }
                        }
                        run.ended = Some(ended);
                    }
                }
            }
            if reports.closed && run.ended.is_none() {
                run.notes.push("the keeper ended without a report".into());
                break;
            }
        }
    }
    drop(control);
    let _ = keeper.wait();
    let output = output.join().unwrap_or_default();
    Ok((run, output))
}

fn handle(run: &mut Run, received: probe::Received, hidden: &mut Hidden) {
    let root = run.root.unwrap_or(0);
    let answer = received.answer;
    let mut hidden_now = hidden.clone();
    if let Some(pipe) = &answer {
        if let Ok(stat) = nix::sys::stat::fstat(pipe.as_fd()) {
            hidden_now.targets.push(FdTarget::Pipe(stat.st_ino));
        }
    }
    match received.message {
        Some(Message::Checkpoint { label }) => {
            let snap = Snapshot::capture(&label, received.pid, root, &hidden_now);
            run.checkpoints.push(snap);
        }
        Some(Message::Done { value }) if received.pid == root && run.done.is_none() => {
            let snap = Snapshot::capture("end", root, root, &hidden_now);
            run.done = Some((value, snap));
        }
        Some(Message::Done { .. }) => run.notes.push(format!(
            "a result sent by pid {} was ignored: only the test process, once, hands back the \
             test's value",
            received.pid
        )),
        Some(Message::Panic {
            thread,
            at,
            message,
        }) => run.panics.push(PanicSeen {
            pid: received.pid,
            thread,
            at,
            message,
        }),
        Some(Message::BodyFailed) if received.pid == root => run.body_failed = true,
        Some(Message::BodyFailed) => {}
        Some(Message::ForkedChildReturned { panicked }) => run.notes.push(format!(
            "a forked child (pid {}) {} into the test instead of exiting. End the child's branch \
             with std::process::exit (or libc::_exit) so that it never runs the parent's code.",
            received.pid,
            if panicked {
                "panicked and unwound"
            } else {
                "returned"
            }
        )),
        None => run.notes.push(format!(
            "pid {} sent the judge something that is not a message",
            received.pid
        )),
    }
    if let Some(pipe) = answer {
        let _ = nix::unistd::write(&pipe, b"k");
    }
}

fn conclude<T>(
    test: String,
    run: Run,
    output: String,
    scratch: tempfile::TempDir,
    deadline: Deadline,
    on_timeout: &str,
    test_line: &'static Location<'static>,
) -> Outcome<T> {
    let Run {
        root,
        protections,
        could_not_start,
        checkpoints,
        done,
        body_failed,
        panics,
        notes,
        deadline: at_deadline,
        ended,
    } = run;
    let root = root.unwrap_or(0);
    let mut extra = String::new();
    for note in &notes {
        extra.push_str(&format!("\n(ipclab: {note})"));
    }
    let (main, others): (Vec<&PanicSeen>, Vec<&PanicSeen>) = panics
        .iter()
        .partition(|p| p.pid == root && p.thread == test);
    for p in &others {
        let whose = if p.pid == root {
            format!("thread '{}'", p.thread)
        } else {
            format!("forked child pid {}", p.pid)
        };
        extra.push_str(&format!(
            "\n(also: {whose} panicked at {}: {})",
            p.at, p.message
        ));
    }
    let result = if let Some(error) = could_not_start {
        Err(format!("ipclab could not start the test process: {error}"))
    } else if let Some(snapshot) = at_deadline {
        Err(format!(
            "{test} did not finish within {:?}, so its whole process tree was killed.\n\
             Likely cause: {on_timeout}\nAt the deadline:\n{}{extra}",
            deadline.scaled(),
            snapshot.describe()
        ))
    } else {
        match done.filter(|_| !body_failed) {
            Some((value, end)) => Ok((
                value,
                Witness {
                    checkpoints,
                    end,
                    scratch: scratch.path().to_path_buf(),
                    output: output.clone(),
                    protections: protections.clone().unwrap_or_default(),
                },
            )),
            None => {
                let message = match main.last().filter(|_| body_failed) {
                    Some(p) => format!("{}\n  at {}", p.message, p.at),
                    None => describe_end(ended.as_ref()),
                };
                Err(format!("{message}{extra}"))
            }
        }
    };
    Outcome {
        test,
        result,
        output,
        protections,
        _scratch: Some(scratch),
        test_line,
        judged: false,
        _value: PhantomData,
    }
}

fn describe_end(ended: Option<&Report>) -> String {
    match ended {
        Some(Report::Ended {
            signal: Some(sig), ..
        }) => {
            let name = Signal::try_from(*sig)
                .map(|s| s.as_str())
                .unwrap_or("an unknown signal");
            let why = match *sig {
                libc::SIGPIPE => {
                    ": it wrote to a pipe or socket that nobody can read any more (every read \
                     end is closed)"
                }
                libc::SIGSEGV | libc::SIGBUS => {
                    ": it touched memory it may not (unsafe code, a detached shared-memory \
                     segment?)"
                }
                libc::SIGABRT => ": it aborted (a panic while panicking, or a failed libc check)",
                libc::SIGXCPU => ": it used up its CPU time (an endless loop?)",
                libc::SIGXFSZ => ": it wrote a file larger than the sandbox allows",
                _ => "",
            };
            format!("the test process was killed by {name}{why}")
        }
        Some(Report::Ended {
            exit_code: Some(code),
            ..
        }) => format!(
            "the test process ended (exit status {code}) before the test finished: did the code \
             call std::process::exit in the parent, or did a child end the parent's test?"
        ),
        _ => "the test process ended before the test finished".to_owned(),
    }
}

/// Reads the keeper's report lines.
struct ReportReader {
    file: File,
    buffer: Vec<u8>,
    closed: bool,
}

impl ReportReader {
    fn new(fd: OwnedFd) -> ReportReader {
        ReportReader {
            file: File::from(fd),
            buffer: Vec::new(),
            closed: false,
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }

    fn read(&mut self) -> Vec<Report> {
        let mut chunk = [0u8; 4096];
        match self.file.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            Err(_) => self.closed = true,
        }
        let mut reports = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            if let Ok(report) = serde_json::from_slice(&line) {
                reports.push(report);
            }
        }
        reports
    }
}

/// Reads everything from `fd`, keeping the first [`OUTPUT_LIMIT`] bytes and counting the rest.
fn read_capped(fd: OwnedFd) -> String {
    let mut file = File::from(fd);
    let mut kept = Vec::new();
    let mut dropped: u64 = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                let take = room.min(n);
                kept.extend_from_slice(&chunk[..take]);
                dropped += (n - take) as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!(
            "\n[ipclab: output cut here: {dropped} more bytes were written and dropped]\n"
        ));
    }
    text
}

fn context(output: &str) -> String {
    if output.trim().is_empty() {
        String::new()
    } else {
        format!(
            "\n--- output of the test process ---\n{}",
            output.trim_end()
        )
    }
}

/// Fails the test with `message` alone. A plain `panic!` here would add a location inside this
/// crate and, with RUST_BACKTRACE set, a backtrace of the harness: noise between the student and
/// the message. The test's own line is named instead.
fn fail(test_line: &Location<'_>, message: String) -> ! {
    let file = test_line.file();
    // Suites are compiled from `exercises/exerciseNN/../../tests/…`: show the plain path.
    let file = file.find("tests/").map_or(file, |i| &file[i..]);
    println!("{message}\n  (test: {file}:{})", test_line.line());
    panic::resume_unwind(Box::new(message))
}
