//! Nothing outlives its judge: when libtest's process is killed (Ctrl-C, an outer tool's
//! timeout), the test process and everything it started end too, including a child that left
//! the process group and the session and ignores SIGTERM. Its own file: the test makes its
//! process a subreaper, which must not meet other tests' children.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipclab_support::{isolated_for, Deadline};

const VICTIM_ENV: &str = "IPCLAB_OUTLIVE_VICTIM";

/// Not a test of its own: the hanging test that `a_killed_judge_takes_every_test_process_with_it`
/// runs in a judge it then kills. Without the variable it does nothing.
#[test]
fn victim() {
    if std::env::var_os(VICTIM_ENV).is_none() {
        return;
    }
    isolated_for(Deadline::secs(600), "held on purpose", || {
        // SAFETY: the children only change their session and dispositions, then pause.
        unsafe {
            if libc::fork() == 0 {
                libc::setsid();
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                loop {
                    libc::pause();
                }
            }
            loop {
                libc::pause();
            }
        }
    })
    .judge(|(), _| {});
}

/// Pids of the processes whose environment carries `mark`.
fn marked(mark: &str) -> Vec<i32> {
    let needle = format!("{VICTIM_ENV}={mark}");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                && fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    !s.rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let limit = limit.mul_f64(ipclab_support::isolate::scale());
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::yield_now();
    }
}

#[test]
fn a_killed_judge_takes_every_test_process_with_it() {
    // The killed judge's orphans come to us, so that their zombies can be reaped.
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mark = format!("{}-{}", std::process::id(), line!());
    let tmp = tempfile::tempdir().unwrap();
    let mut judge = Command::new(std::env::current_exe().unwrap())
        .args(["victim", "--exact", "--nocapture"])
        .env(VICTIM_ENV, &mark)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The judge, its keeper, the test process and the escaped child.
    wait_for(
        "the victim's four processes start",
        Duration::from_secs(120),
        || marked(&mark).len() >= 4,
    );
    judge.kill().unwrap();
    judge.wait().unwrap();
    wait_for(
        "every process of the killed judge's test ends",
        Duration::from_secs(30),
        || marked(&mark).is_empty(),
    );
    // Nor is the test's scratch directory left behind (no judge is left to remove it).
    wait_for(
        "the scratch directory goes",
        Duration::from_secs(30),
        || fs::read_dir(tmp.path()).is_ok_and(|mut d| d.next().is_none()),
    );
    // Reap what came to us (the keeper).
    while nix::sys::wait::waitpid(
        None::<nix::unistd::Pid>,
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    )
    .is_ok_and(|s| s != nix::sys::wait::WaitStatus::StillAlive)
    {}
}
