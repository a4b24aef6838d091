//! The keeper: a small trusted process between the judge and the test process.
//!
//! The judge (libtest's process) can go away at any moment: Ctrl-C, a SIGKILL from an outer
//! tool's timeout. The test process and whatever it started must not outlive it. So the judge
//! does not start the test process itself; it starts a keeper (its own test binary again, in
//! keeper mode), which
//!
//! * is a child subreaper, so every process of the test stays below it, whatever the code under
//!   test does (`setsid`, double forks, a parent that dies);
//! * starts the test process behind the walls of [`crate::sandbox`];
//! * watches its standard input, a pipe from the judge: end of file means the judge is gone or
//!   wants the test ended, and the keeper then freezes, kills and reaps the whole tree;
//! * carries a deadline of its own, so a test can never run unbounded even if the judge hangs;
//! * after the test process ends, kills and reaps whatever it left running, and reports how it
//!   ended on a pipe of its own.
//!
//! The keeper runs none of the student's code: it only forks, waits and kills.

use std::env;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{getpid, Pid};
use serde::{Deserialize, Serialize};

use crate::procfs;
use crate::sandbox::{self, Policy, Protections};

/// Set in the keeper's environment to the test's name.
pub(crate) const KEEPER_ENV: &str = "IPCLAB_KEEPER";
/// Set in the test process's environment to the test's name.
pub(crate) const ISOLATED_ENV: &str = "IPCLAB_ISOLATED";
/// The keeper's own deadline, in milliseconds.
pub(crate) const KEEPER_DEADLINE_ENV: &str = "IPCLAB_KEEPER_DEADLINE_MS";
/// The policy to apply (JSON).
pub(crate) const POLICY_ENV: &str = "IPCLAB_POLICY";
/// The descriptor the keeper reports on.
pub(crate) const REPORT_FD_ENV: &str = "IPCLAB_REPORT_FD";

/// What the keeper tells the judge, one JSON line each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Report {
    /// The test process runs, with these walls.
    Started { pid: i32, protections: Protections },
    /// It could not be started.
    CouldNotStart { error: String },
    /// Everything is over.
    Ended {
        /// `Some(code)` if the test process exited, `None` if a signal killed it.
        exit_code: Option<i32>,
        signal: Option<i32>,
        /// The judge closed the pipe (gone, or ending the test at its deadline).
        told_to_stop: bool,
        /// The keeper's own deadline passed.
        keeper_deadline: bool,
        /// Processes still running after the test process ended, killed by the keeper.
        killed_leftovers: Vec<String>,
    },
}

/// The keeper's whole life; never returns.
pub(crate) fn run() -> ! {
    let started = Instant::now();
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let report_fd: RawFd = env::var(REPORT_FD_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    // SAFETY: the judge put the report pipe's write end at this number for us alone.
    let mut reports = unsafe { File::from_raw_fd(report_fd) };
    // SAFETY: F_SETFD on our own descriptor: the test process must not inherit it.
    unsafe { libc::fcntl(report_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut say = |report: &Report| {
        let mut line = serde_json::to_string(report).unwrap_or_default();
        line.push('\n');
        let _ = reports.write_all(line.as_bytes());
    };
    let deadline = Duration::from_millis(
        env::var(KEEPER_DEADLINE_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60_000),
    );
    let policy: Policy = match env::var(POLICY_ENV)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
    {
        Some(p) => p,
        None => {
            say(&Report::CouldNotStart {
                error: "the keeper got no policy".into(),
            });
            // SAFETY: ends this process at once.
            unsafe { libc::_exit(1) }
        }
    };

    let (child, protections) = match start_test_process(&policy) {
        Ok(started) => started,
        Err(error) => {
            say(&Report::CouldNotStart { error });
            // SAFETY: ends this process at once.
            unsafe { libc::_exit(1) }
        }
    };
    let pid = Pid::from_raw(child.id() as i32);
    say(&Report::Started {
        pid: pid.as_raw(),
        protections: protections.clone(),
    });

    let (status, told_to_stop, keeper_deadline) = watch(child, started, deadline);
    let killed_leftovers = end_everything(protections.uid);
    if told_to_stop == Some(Hangup::JudgeGone) {
        // Nobody else will remove the test's scratch directory. (Here the message-queue file
        // system is mounted in it: detach it first.)
        let _ = nix::mount::umount2(
            &policy.scratch.join(".mqueue"),
            nix::mount::MntFlags::MNT_DETACH,
        );
        let _ = std::fs::remove_dir_all(&policy.scratch);
    }
    let told_to_stop = told_to_stop.is_some();
    say(&Report::Ended {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        told_to_stop,
        keeper_deadline,
        killed_leftovers,
    });
    // SAFETY: ends this process at once, without running libtest any further.
    unsafe { libc::_exit(0) }
}

/// Starts the test binary again for the same test, behind the walls.
fn start_test_process(policy: &Policy) -> Result<(std::process::Child, Protections), String> {
    let keeper = getpid();
    let uid = policy.drop_user.then(|| Policy::uid_for(keeper.as_raw()));
    if let Some(uid) = uid {
        sandbox::give_to(&policy.scratch, uid)
            .map_err(|e| format!("cannot hand the scratch directory to uid {uid}: {e}"))?;
    }
    let test = env::var(KEEPER_ENV).unwrap_or_default();
    let mut policy = policy.clone();
    if policy.private_ipc {
        // The test's IPC namespace is made here, on this thread, so that its POSIX message
        // queues can be given a place Landlock knows (see `sandbox::private_ipc_with_mqueue`).
        match sandbox::private_ipc_with_mqueue(&policy.scratch) {
            Ok(()) => policy.private_ipc_done = true,
            Err(e) => return Err(format!("cannot give the test an IPC namespace: {e}")),
        }
    }
    let policy = &policy;
    let mut ruleset = sandbox::landlock_ruleset(policy);
    let protections = Protections {
        uid,
        private_network: policy.private_network,
        private_ipc: policy.private_ipc,
        landlock_abi: if ruleset.is_some() {
            sandbox::landlock_abi().min(6)
        } else {
            0
        },
        process_limit: uid.map(|_| sandbox::PROCESS_LIMIT),
        cpu_seconds: policy.cpu_seconds,
        file_size_limit: sandbox::FILE_SIZE_LIMIT,
        memory_limit: sandbox::MEMORY_LIMIT,
        output_limit: sandbox::OUTPUT_LIMIT,
    };
    let args: Vec<String> = env::args().skip(1).collect();
    let mut command = Command::new("/proc/self/exe");
    command
        .args(&args)
        .env_remove(KEEPER_ENV)
        .env_remove(KEEPER_DEADLINE_ENV)
        .env_remove(POLICY_ENV)
        .env_remove(REPORT_FD_ENV)
        .env_remove(crate::record::VERDICTS_ENV)
        .env(ISOLATED_ENV, &test)
        .env("TMPDIR", &policy.scratch)
        .env("HOME", &policy.scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| format!("cannot pass the output on: {e}"))?,
        ))
        .process_group(0);
    let probe_fd: RawFd = env::var(crate::probe::PROBE_FD_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("INSTA_") {
            command.env_remove(key);
        }
    }
    if uid.is_some() {
        // Root's PATH may name directories the test's uid cannot enter (EACCES instead of
        // ENOENT for a missing program).
        command.env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
    }
    let policy = policy.clone();
    // SAFETY: the closure runs between fork and exec and makes only system calls (unshare,
    // socket/ioctl, setrlimit, setres[ug]id, prctl, landlock); the ruleset was built before fork.
    unsafe {
        command.pre_exec(move || {
            // Nothing but standard input, output, error and the probe is inherited (the rest
            // becomes close-on-exec: CLOSE_RANGE_CLOEXEC): not the
            // judge's descriptors, nor whatever the judge's own caller leaked into it.
            libc::syscall(libc::SYS_close_range, 3u32, (probe_fd - 1) as u32, 4u32);
            libc::syscall(libc::SYS_close_range, (probe_fd + 1) as u32, u32::MAX, 4u32);
            sandbox::default_signal_dispositions();
            let mut flags = 0;
            if policy.private_ipc && !policy.private_ipc_done {
                flags |= libc::CLONE_NEWIPC;
            }
            if policy.private_network {
                flags |= libc::CLONE_NEWNET;
            }
            if flags != 0 && libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if policy.private_network {
                sandbox::loopback_up()?;
            }
            sandbox::limit(libc::RLIMIT_CORE, 0)?;
            sandbox::limit(libc::RLIMIT_CPU, policy.cpu_seconds)?;
            sandbox::limit(libc::RLIMIT_FSIZE, sandbox::FILE_SIZE_LIMIT)?;
            sandbox::limit(libc::RLIMIT_AS, sandbox::MEMORY_LIMIT)?;
            if let Some(uid) = uid {
                sandbox::limit(libc::RLIMIT_NPROC, sandbox::PROCESS_LIMIT)?;
                sandbox::become_user(uid)?;
            }
            // After the change of uid, which clears it: the test process dies with its keeper.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != keeper.as_raw() {
                libc::_exit(1);
            }
            if let Some(ruleset) = ruleset.take() {
                ruleset
                    .restrict_self()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            } else {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start the test process: {e}"))?;
    Ok((child, protections))
}

/// Waits for the test process to end, the judge to hang up, or the keeper's deadline.
/// Why the judge's pipe closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hangup {
    /// The judge ended the test at its deadline (and will clean up after it).
    Deadline,
    /// The judge is gone.
    JudgeGone,
}

fn watch(
    mut child: std::process::Child,
    started: Instant,
    deadline: Duration,
) -> (Option<std::process::ExitStatus>, Option<Hangup>, bool) {
    let pid = child.id() as i32;
    // SAFETY: pidfd_open returns a new descriptor for our own child (or fails).
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (None, None, true);
        }
        let stdin = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        let mut fds = vec![PollFd::new(stdin, PollFlags::POLLIN)];
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(
                unsafe { std::os::fd::BorrowedFd::borrow_raw(p.as_raw_fd()) },
                PollFlags::POLLIN,
            ));
        }
        let wait =
            PollTimeout::try_from(left.min(Duration::from_millis(200))).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, wait);
        let judge_gone = fds[0].revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
        });
        if let Ok(Some(status)) = child.try_wait() {
            return (Some(status), None, false);
        }
        if judge_gone {
            // The judge says "stop" before it hangs up at a deadline; a judge that died says
            // nothing (its end of the pipe closed with it).
            let mut word = [0u8; 4];
            let said = nix::unistd::read(stdin, &mut word).unwrap_or(0);
            let why = if said > 0 {
                Hangup::Deadline
            } else {
                Hangup::JudgeGone
            };
            return (None, Some(why), false);
        }
    }
}

/// Freezes every process below the keeper, kills them all and reaps them. With a uid of the
/// test's own, also kills every process of that uid, wherever it went. Returns those that were
/// still running (besides the test process itself, if it was).
fn end_everything(uid: Option<u32>) -> Vec<String> {
    let me = getpid();
    let mut stopped: Vec<procfs::ProcessInfo> = Vec::new();
    loop {
        let fresh: Vec<procfs::ProcessInfo> = procfs::descendants(me)
            .into_iter()
            .filter(|p| !stopped.iter().any(|s| s.pid == p.pid))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for p in fresh {
            let _ = kill(p.pid, Signal::SIGSTOP);
            stopped.push(p);
        }
    }
    for p in &stopped {
        let _ = kill(p.pid, Signal::SIGKILL);
    }
    if let Some(uid) = uid {
        kill_all_of(uid);
    }
    while waitpid(None::<Pid>, None).is_ok() {}
    stopped
        .iter()
        .filter(|p| !p.is_zombie())
        .map(|p| format!("pid {} ({})", p.pid, p.comm))
        .collect()
}

/// `kill(-1, SIGKILL)` as `uid`: every process of that uid, and nothing else.
fn kill_all_of(uid: u32) {
    // SAFETY: the child makes only system calls and ends with _exit.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => unsafe {
            if libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0 {
                libc::kill(-1, libc::SIGKILL);
            }
            libc::_exit(0);
        },
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let _ = waitpid(child, None);
        }
        Err(_) => {}
    }
}
