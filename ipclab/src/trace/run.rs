//! Running one graded test under strace: build the suite's test binary, pick the test, run it
//! alone under `strace -f`, as `cargo test` would run it.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cargo_metadata::Message;

use crate::course::{Course, Implementation};
use crate::status;

/// The calls strace records: process life, descriptors, every IPC mechanism of the course,
/// signals. Reads and writes of every descriptor are included (the pictures keep those on
/// pipes, sockets and FIFOs). `ipclab/tests/fixtures/strace/record.sh` uses the same set.
pub const TRACE_SET: &str = "%process,pipe,pipe2,socketpair,socket,bind,listen,connect,accept,\
accept4,mknod,mknodat,openat,dup,dup2,dup3,fcntl,close,read,write,readv,writev,sendto,sendmsg,\
recvfrom,recvmsg,msgget,msgsnd,msgrcv,msgctl,shmget,shmat,shmdt,shmctl,semget,semop,semtimedop,\
semctl,mq_open,mq_timedsend,mq_timedreceive,mq_unlink,kill,tgkill,rt_sigaction,rt_sigprocmask,\
rt_sigsuspend,rt_sigtimedwait,pause,wait4,waitid,execve,clone,clone3,fork,vfork,exit_group,\
setpgid,setsid";

/// strace slows every system call down: the test's deadlines are stretched by this much.
pub const DEADLINE_SCALE: f64 = 2.0;

/// The most a traced test may take, its own deadline included, before the trace is stopped.
pub const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// A reason the trace could not be made, in one sentence for the student.
#[derive(Debug)]
pub struct TraceError(pub String);

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TraceError {}

fn fail(message: impl Into<String>) -> TraceError {
    TraceError(message.into())
}

/// Checks that strace can run; the error says how to install it.
pub fn check_strace() -> Result<(), TraceError> {
    match Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(fail(
            "strace is not installed: install it with `sudo apt-get install strace` (Debian, \
             Ubuntu, WSL), `sudo dnf install strace` (Fedora) or `sudo pacman -S strace` (Arch), \
             then run this again",
        )),
        Err(e) => Err(fail(format!("cannot run strace: {e}"))),
    }
}

/// Builds the graded suite of `exercise` and gives the test binary's path.
pub fn build_test_binary(
    course: &Course,
    exercise: &str,
    implementation: Implementation,
) -> Result<PathBuf, TraceError> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("test")
        .arg("--manifest-path")
        .arg(course.manifest(implementation))
        .args(["--no-run", "--message-format=json-render-diagnostics"])
        .args(["--package", exercise, "--test", exercise])
        .current_dir(&course.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if implementation == Implementation::Solution {
        // As `suite::run` does: the solution's binaries must not land on the starter's.
        if let Some(shared) = std::env::var_os("CARGO_TARGET_DIR") {
            cmd.env("CARGO_TARGET_DIR", Path::new(&shared).join("solutions"));
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("could not start cargo ({e}): is Rust installed?")))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let errors = thread::spawn(move || io::read_to_string(stderr).unwrap_or_default());
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut binary = None;
    for message in Message::parse_stream(BufReader::new(stdout)).flatten() {
        if let Message::CompilerArtifact(artifact) = message {
            let is_suite = artifact.target.name == exercise
                && artifact.target.kind.iter().any(|k| k.to_string() == "test");
            if let (true, Some(exe)) = (is_suite, artifact.executable) {
                binary = Some(exe.into_std_path_buf());
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("cargo did not finish: {e}")))?;
    let errors = errors.join().unwrap_or_default();
    match binary {
        Some(binary) if status.success() => Ok(binary),
        _ => Err(fail(format!(
            "{exercise} does not build: {}",
            status::first_error(&errors)
        ))),
    }
}

/// The names of the tests in a suite binary (`--list`).
pub fn list_tests(binary: &Path) -> Result<Vec<String>, TraceError> {
    let out = Command::new(binary)
        .args(["--list", "--format", "terse"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot list the tests of {}: {e}",
                binary.display()
            ))
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect())
}

/// The test `wanted` names: an exact name, else the one test whose name contains it.
pub fn pick_test(all: &[String], wanted: &str) -> Result<String, TraceError> {
    if all.iter().any(|t| t == wanted) {
        return Ok(wanted.to_owned());
    }
    let matching: Vec<&String> = all.iter().filter(|t| t.contains(wanted)).collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(fail(format!(
            "no test is named {wanted:?} (the tests are: {})",
            all.join(", ")
        ))),
        many => Err(fail(format!(
            "{wanted:?} names {} tests: say which ({})",
            many.len(),
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// What a traced run left.
#[derive(Debug)]
pub struct Traced {
    /// strace's output.
    pub trace_file: PathBuf,
    /// The test's libtest output (stdout).
    pub stdout: String,
    pub status: Option<ExitStatus>,
}

/// Runs `test` of `binary` alone under strace, writing strace's output to `trace_file`.
/// `workdir`: the exercise's folder, where `cargo test` runs its tests.
pub fn trace_test(
    binary: &Path,
    test: &str,
    workdir: &Path,
    trace_file: &Path,
) -> Result<Traced, TraceError> {
    if let Some(dir) = trace_file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    }
    let scale = std::env::var("IPCLAB_DEADLINE_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
        * DEADLINE_SCALE;
    let tmp = std::env::temp_dir().join(format!("ipclab-trace-{}", std::process::id()));
    crate::signals::create_run_tmpdir(&tmp)
        .map_err(|e| fail(format!("cannot create {}: {e}", tmp.display())))?;
    let output = tempfile(&tmp, "stdout")?;
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-tt", "-T", "-yy", "-s", "64", "-e"])
        .arg(format!("trace={TRACE_SET}"))
        .arg("-o")
        .arg(trace_file)
        .arg("--")
        .arg(binary)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .current_dir(workdir)
        .env("IPCLAB_DEADLINE_SCALE", scale.to_string())
        .env("INSTA_UPDATE", "no")
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(output.try_clone().map_err(|e| fail(e.to_string()))?)
        .stderr(Stdio::null())
        .process_group(0);
    let result = run_with_deadline(cmd);
    crate::reaper::kill_descendants();
    let stdout = std::fs::read_to_string(tmp.join("stdout")).unwrap_or_default();
    crate::signals::remove_run_tmpdir(&tmp);
    let status = result?;
    if !trace_file.is_file() {
        return Err(fail("strace wrote no trace (is ptrace allowed here?)"));
    }
    Ok(Traced {
        trace_file: trace_file.to_owned(),
        stdout,
        status,
    })
}

fn tempfile(dir: &Path, name: &str) -> Result<File, TraceError> {
    File::create(dir.join(name))
        .map_err(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))
}

/// Runs `cmd` in its own process group; kills the group after [`RUN_DEADLINE`] (`None`).
fn run_with_deadline(mut cmd: Command) -> Result<Option<ExitStatus>, TraceError> {
    let mut child = {
        let _spawning = crate::suite::SPAWN
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cmd.spawn()
            .map_err(|e| fail(format!("could not start strace: {e}")))?
    };
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let timed_out = rx.recv_timeout(RUN_DEADLINE).is_err();
    if timed_out {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let status = waiter
        .join()
        .expect("the waiting thread does not panic")
        .map_err(|e| fail(format!("strace did not finish: {e}")))?;
    Ok((!timed_out).then_some(status))
}

/// `target/ipclab/trace/exercise01-task2_x--case_1.strace`: a file name for a test's trace.
pub fn trace_path(course: &Course, exercise: &str, test: &str, ext: &str) -> PathBuf {
    let safe: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    status::target_dir(course)
        .join("ipclab")
        .join("trace")
        .join(format!("{exercise}-{safe}.{ext}"))
}
