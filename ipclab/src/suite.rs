//! Running one exercise's graded suite with `cargo test` and reading the judges' verdicts.
//!
//! The suite is run exactly as the student runs it (`cargo test -p exerciseNN`), so `ipclab`,
//! `cargo xtask verify` and plain cargo can never disagree about what passes. Which tests passed
//! is read from the verdict record the suite's judges write (`IPCLAB_VERDICTS`, see
//! `ipclab_support::record`), not from libtest's text, which the code under test can print too;
//! libtest's text only says which tests ran and, for a suite without judges, what it says.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::course::{Course, Implementation};

/// A graded test's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// libtest's name, e.g. `task2_parent_reads_whole_message_then_eof::case_3_pipe_buf`.
    pub name: String,
    /// The task the test grades (from its `taskN_` prefix); `None` for ungraded (bonus) tests.
    pub task: Option<u32>,
    pub passed: bool,
    /// For a failure: the panic message, the part that teaches.
    pub message: Option<String>,
}

impl TestResult {
    pub fn is_graded(&self) -> bool {
        self.task.is_some()
    }
}

/// What happened when the suite was run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// The exercise (or the suite) did not compile: cargo's error output.
    BuildFailed { errors: String },
    /// The suite ran; every test's result, in the order libtest reported them.
    Ran { tests: Vec<TestResult> },
    /// The whole run outlived its deadline and was killed (a test without its own deadline hung).
    TimedOut { after: Duration },
}

#[derive(Debug, Clone)]
pub struct SuiteRun {
    pub exercise: String,
    pub implementation: Implementation,
    pub verdict: Verdict,
    /// Wall time of the whole run, build included.
    pub elapsed: Duration,
    /// Time the tests took, as libtest reports it (`finished in …s`), without the build.
    pub test_time: Option<Duration>,
    /// The distinct sandboxes the judges report their tests ran in
    /// (`ipclab_support::sandbox::Protections`, as JSON).
    pub protections: Vec<serde_json::Value>,
}

impl SuiteRun {
    /// Graded tests only.
    pub fn graded(&self) -> Vec<&TestResult> {
        match &self.verdict {
            Verdict::Ran { tests } => tests.iter().filter(|t| t.is_graded()).collect(),
            _ => Vec::new(),
        }
    }

    /// True when the suite ran and every graded test passed (and there was at least one).
    pub fn all_graded_passed(&self) -> bool {
        let graded = self.graded();
        !graded.is_empty() && graded.iter().all(|t| t.passed)
    }
}

/// Options for [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Kill the whole `cargo test` if it takes longer (every isolated test has its own, shorter
    /// deadline; this only guards against a hang outside them, and the build).
    pub deadline: Duration,
    /// Extra environment for cargo and the tests (e.g. `TMPDIR`).
    pub env: Vec<(String, String)>,
    /// A test passes only with a passing verdict in the judges' record; without this, a suite
    /// that writes no record at all (no judges) is read from libtest's text.
    pub require_verdicts: bool,
    /// Also run the opt-in tests (`#[ignore]`d: the ungraded bonus tests), as
    /// `cargo test -- --include-ignored` does. Students and the grader run without them.
    pub include_ignored: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            deadline: Duration::from_secs(900),
            env: Vec::new(),
            require_verdicts: false,
            include_ignored: false,
        }
    }
}

/// Held while a suite's `cargo` is being started. A process that must stop every run when it is
/// interrupted takes it first and keeps it: once it holds the lock, every run already started is
/// visible in `/proc` and no new one can start.
pub static SPAWN: Mutex<()> = Mutex::new(());

/// Runs the graded suite of `exercise` against `implementation`.
pub fn run(
    course: &Course,
    exercise: &str,
    implementation: Implementation,
    options: &RunOptions,
) -> io::Result<SuiteRun> {
    let started = Instant::now();
    let stdout = tempfile_in_target()?;
    let stderr = tempfile_in_target()?;
    // A directory only this user can enter: the record cannot be prepared by anyone else. In the
    // run's own TMPDIR when it has one (a sandboxed build may write there).
    let run_tmp = options
        .env
        .iter()
        .find(|(k, _)| k == "TMPDIR")
        .map(|(_, v)| std::path::PathBuf::from(v))
        .unwrap_or_else(std::env::temp_dir);
    let record_dir = tempfile::Builder::new()
        .prefix("ipclab-verdicts-")
        .tempdir_in(run_tmp)?;
    let record = record_dir.path().join("verdicts.jsonl");
    let mut cmd = Command::new(cargo());
    cmd.arg("test")
        .arg("--manifest-path")
        .arg(course.manifest(implementation))
        .args([
            "--package",
            exercise,
            "--test",
            exercise,
            "--no-fail-fast",
            "--color",
            "never",
        ])
        .args(["--", "--color", "never"])
        .args(options.include_ignored.then_some("--include-ignored"))
        .current_dir(&course.root)
        .stdin(Stdio::null())
        .stdout(stdout.try_clone()?)
        .stderr(stderr.try_clone()?)
        .process_group(0);
    if implementation == Implementation::Solution {
        // Starter and solution packages share names, binaries included: one target directory
        // for both would let one's binaries overwrite the other's.
        if let Some(shared) = std::env::var_os("CARGO_TARGET_DIR") {
            cmd.env(
                "CARGO_TARGET_DIR",
                std::path::Path::new(&shared).join("solutions"),
            );
        }
    }
    for (k, v) in &options.env {
        cmd.env(k, v);
    }
    cmd.env("IPCLAB_VERDICTS", &record);
    let mut child = {
        // Poisoned only by a panic in another spawn: the lock protects no data.
        let _spawning = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not start cargo ({e}): is Rust installed?"),
            )
        })?
    };
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(());
        status
    });
    let timed_out = rx.recv_timeout(options.deadline).is_err();
    if timed_out {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
    let status = waiter.join().expect("the waiting thread does not panic")?;
    let out = read_all(stdout);
    let err = read_all(stderr);

    let mut protections = Vec::new();
    let verdict = if timed_out {
        Verdict::TimedOut {
            after: options.deadline,
        }
    } else {
        let mut tests = parse_libtest(&out);
        let verdicts = read_verdicts(&std::fs::read_to_string(&record).unwrap_or_default());
        for v in &verdicts {
            if let Some(p) = &v.protections {
                if !protections.contains(p) {
                    protections.push(p.clone());
                }
            }
        }
        if options.require_verdicts || !verdicts.is_empty() {
            apply_verdicts(&mut tests, &verdicts);
        }
        if tests.is_empty() && !status.success() {
            Verdict::BuildFailed {
                errors: build_errors(&err),
            }
        } else {
            Verdict::Ran { tests }
        }
    };
    Ok(SuiteRun {
        exercise: exercise.to_owned(),
        implementation,
        verdict,
        elapsed: started.elapsed(),
        test_time: parse_test_time(&out),
        protections,
    })
}

/// One line of the judges' record (`ipclab_support::record::Verdict`; the fields read here).
#[derive(Debug, Deserialize)]
struct JudgedTest {
    test: String,
    passed: bool,
    message: Option<String>,
    #[serde(default)]
    protections: Option<serde_json::Value>,
}

fn read_verdicts(text: &str) -> Vec<JudgedTest> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The record decides: a test passes only if its judge said so (and never said otherwise); a
/// test libtest reported but no judge judged fails; a judged test libtest did not report (its
/// line was lost in output the code under test wrote) is added.
fn apply_verdicts(tests: &mut Vec<TestResult>, verdicts: &[JudgedTest]) {
    for t in tests.iter_mut() {
        let judged: Vec<&JudgedTest> = verdicts.iter().filter(|v| v.test == t.name).collect();
        match judged.iter().find(|v| !v.passed).or(judged.first()) {
            Some(v) if v.passed => {
                t.passed = true;
                t.message = None;
            }
            Some(v) => {
                t.passed = false;
                t.message = Some(
                    v.message
                        .clone()
                        .or_else(|| t.message.clone())
                        .unwrap_or_else(|| "failed".into()),
                );
            }
            None => {
                t.passed = false;
                t.message.get_or_insert_with(|| {
                    "no verdict: the test's judge never decided (did the test binary end early?)"
                        .into()
                });
            }
        }
    }
    for v in verdicts {
        if !tests.iter().any(|t| t.name == v.test) {
            tests.push(TestResult {
                name: v.test.clone(),
                task: task_of(&v.test),
                passed: v.passed,
                message: v.message.clone(),
            });
        }
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn tempfile_in_target() -> io::Result<File> {
    // An unlinked file: no pipe to drain while waiting, and nothing left behind.
    let dir = std::env::temp_dir();
    let path = dir.join(format!("ipclab-suite-{}-{}", std::process::id(), unique()));
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn read_all(mut file: File) -> String {
    let mut bytes = Vec::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// libtest's own measure of the test run: `… finished in 0.25s`.
pub fn parse_test_time(stdout: &str) -> Option<Duration> {
    stdout
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .find_map(|l| {
            l.rsplit_once("finished in ")?
                .1
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .map(Duration::from_secs_f64)
}

/// The task a test grades, from its name: `task3_…` grades task 3.
pub fn task_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("task")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    if after.is_empty() || after.starts_with('_') || after.starts_with("::") {
        digits.parse().ok()
    } else {
        None
    }
}

/// Reads libtest's human output: the `test NAME ... ok|FAILED|ignored` lines and, for failures,
/// the `---- NAME stdout ----` sections.
pub fn parse_libtest(stdout: &str) -> Vec<TestResult> {
    let mut tests: Vec<TestResult> = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, status)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let passed = match status.split_whitespace().next() {
            Some("ok") => true,
            Some("FAILED") => false,
            // ignored and benchmark lines are not verdicts.
            _ => continue,
        };
        tests.push(TestResult {
            name: name.to_owned(),
            task: task_of(name),
            passed,
            message: None,
        });
    }
    for (name, section) in failure_sections(stdout) {
        if let Some(t) = tests.iter_mut().find(|t| t.name == name) {
            t.message = Some(panic_message(&section));
        }
    }
    tests
}

fn failure_sections(stdout: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in stdout.lines() {
        let header = line
            .strip_prefix("---- ")
            .and_then(|r| r.strip_suffix(" stdout ----"));
        if let Some(name) = header {
            sections.extend(current.take());
            current = Some((name.to_owned(), String::new()));
        } else if line == "failures:" || line.starts_with("test result:") {
            sections.extend(current.take());
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections.extend(current);
    sections
}

/// The panic message of a failure section, without libtest's `thread '…' panicked at` header
/// and the backtrace note; the location is kept on its own line.
fn panic_message(section: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut location = None;
    let mut in_backtrace = false;
    for line in section.lines() {
        // With RUST_BACKTRACE set, the harness's frames follow the message: noise for the student.
        if line == "stack backtrace:" {
            in_backtrace = true;
            continue;
        }
        if in_backtrace && line.starts_with(' ') {
            continue;
        }
        in_backtrace = false;
        if line.starts_with("note: Some details are omitted") {
            continue;
        }
        if let Some(at) = panic_header(line) {
            location = Some(at.trim_end_matches(':').to_owned());
            continue;
        }
        if line.starts_with("note: run with `RUST_BACKTRACE") {
            continue;
        }
        lines.push(line);
    }
    let mut message = lines.join("\n").trim().to_owned();
    if let Some(at) = location {
        if !message.contains("\n  at ") {
            message.push_str(&format!("\n  (test at {at})"));
        }
    }
    message
}

/// The location in libtest's panic header, `thread 'NAME' panicked at LOCATION:`; since Rust
/// 1.92 the thread's id follows its name: `thread 'NAME' (1234) panicked at LOCATION:`.
fn panic_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("thread '")?;
    let (_, after) = rest.split_once("' ")?;
    let after = match after.strip_prefix('(') {
        Some(id) => {
            let (digits, tail) = id.split_once(") ")?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            tail
        }
        None => after,
    };
    after.strip_prefix("panicked at ")
}

fn build_errors(stderr: &str) -> String {
    // Cargo's progress lines say nothing about what to fix.
    stderr
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("Compiling ")
                || t.starts_with("Finished ")
                || t.starts_with("Running ")
                || t.starts_with("Blocking ")
                || t.starts_with("Downloaded ")
                || t.starts_with("Downloading ")
                || t.starts_with("Updating ")
                || t.starts_with("Locking ")
                || t.starts_with("Adding "))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
running 3 tests
test task1_child_change_is_invisible ... ok
test task2_message::case_1_empty ... FAILED
test bonus_something ... ignored, not graded
test task10_x ... ok

failures:

---- task2_message::case_1_empty stdout ----

thread 'task2_message::case_1_empty' panicked at tests/exercise01/main.rs:40:5:
not yet implemented: Task 2: create a pipe
  at exercises/exercise01/src/lib.rs:12:5
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    task2_message::case_1_empty

test result: FAILED. 2 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn libtest_output_is_read() {
        let tests = parse_libtest(SAMPLE);
        assert_eq!(tests.len(), 3);
        assert!(tests[0].passed && tests[0].task == Some(1));
        assert!(!tests[1].passed && tests[1].task == Some(2));
        assert_eq!(tests[2].task, Some(10));
        let msg = tests[1].message.as_deref().unwrap();
        assert!(msg.starts_with("not yet implemented: Task 2"), "{msg}");
        assert!(!msg.contains("RUST_BACKTRACE"), "{msg}");
        assert_eq!(parse_test_time(SAMPLE), Some(Duration::from_millis(10)));
    }

    #[test]
    fn panic_headers_with_and_without_a_thread_id_are_recognised() {
        assert_eq!(
            panic_header("thread 'task1_x' panicked at tests/a.rs:1:2:"),
            Some("tests/a.rs:1:2:")
        );
        assert_eq!(
            panic_header("thread 'task1_x' (21628) panicked at tests/a.rs:1:2:"),
            Some("tests/a.rs:1:2:")
        );
        assert_eq!(panic_header("thread 'x' said hello"), None);
        let section = "\nthread 'task1_x' (7) panicked at tests/a.rs:1:2:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_message(section), "boom\n  (test at tests/a.rs:1:2)");
        let with_backtrace = "thread 'task1_x' (7) panicked at tests/a.rs:1:2:\nboom\nstack backtrace:\n   0: __rustc::rust_begin_unwind\n             at /rustc/x.rs:1\n   1: core::panicking::panic_fmt\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.\n";
        assert_eq!(
            panic_message(with_backtrace),
            "boom\n  (test at tests/a.rs:1:2)"
        );
    }

    #[test]
    fn the_record_decides_over_libtests_text() {
        let mut tests = parse_libtest(SAMPLE);
        let record = concat!(
            r#"{"test":"task2_message::case_1_empty","passed":false,"message":"judged: no"}"#,
            "\n",
            r#"{"test":"task10_x","passed":true,"message":null}"#,
            "\n",
            r#"{"test":"task3_not_in_libtest","passed":true,"message":null}"#,
            "\nnot json\n"
        );
        apply_verdicts(&mut tests, &read_verdicts(record));
        let seen: Vec<(&str, bool)> = tests.iter().map(|t| (t.name.as_str(), t.passed)).collect();
        assert_eq!(
            seen,
            [
                // libtest said ok, but no judge said so: a forged line.
                ("task1_child_change_is_invisible", false),
                ("task2_message::case_1_empty", false),
                ("task10_x", true),
                ("task3_not_in_libtest", true),
            ]
        );
        assert_eq!(tests[1].message.as_deref(), Some("judged: no"));
        assert!(tests[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("no verdict"));
    }

    #[test]
    fn task_numbers_come_from_the_prefix() {
        assert_eq!(task_of("task3_x"), Some(3));
        assert_eq!(task_of("task12_x::case_1"), Some(12));
        assert_eq!(task_of("taskforce"), None);
        assert_eq!(task_of("bonus_task1_x"), None);
    }
}
