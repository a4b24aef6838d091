//! Where an exercise stands, derived from running its graded suite, never from a state file that
//! could drift from the code.
//!
//! A run's verdict is cached under `<target dir>/ipclab/status/`, keyed by a fingerprint of
//! everything the verdict depends on (the exercise's sources, its suite, the shared test support,
//! `Cargo.lock`): when nothing changed, the cached verdict is the verdict, and `ipclab list` is
//! instant. Any edit changes the fingerprint, and the suite runs again.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::course::{Course, Implementation};
use crate::reaper;
use crate::suite::{self, RunOptions, SuiteRun, TestResult, Verdict};

/// Bumped when the cache's meaning changes: older records are then stale.
const CACHE_FORMAT: u32 = 1;

/// A run as remembered in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub format: u32,
    pub fingerprint: String,
    pub verdict: Verdict,
    pub elapsed: Duration,
    pub test_time: Option<Duration>,
    /// Seconds since the epoch when the run ended.
    pub finished: u64,
}

/// Where an exercise stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No run is known.
    Unknown,
    /// The suite ran and no graded test passes.
    NotStarted { total: usize },
    /// Some graded tests pass.
    InProgress { passed: usize, total: usize },
    /// Every graded test passes.
    Done { total: usize },
    /// The suite has no graded tests (yet): the exercise is still being written.
    NoGradedTests,
    /// The exercise or its suite does not compile: the first compiler error.
    DoesNotCompile { first_error: String },
    /// The whole run outlived its deadline.
    TimedOut { after: Duration },
}

impl State {
    pub fn of(verdict: &Verdict) -> State {
        match verdict {
            Verdict::BuildFailed { errors } => State::DoesNotCompile {
                first_error: first_error(errors),
            },
            Verdict::TimedOut { after } => State::TimedOut { after: *after },
            Verdict::Ran { tests } => {
                let graded: Vec<&TestResult> = tests.iter().filter(|t| t.is_graded()).collect();
                let passed = graded.iter().filter(|t| t.passed).count();
                let total = graded.len();
                if total == 0 {
                    State::NoGradedTests
                } else if passed == total {
                    State::Done { total }
                } else if passed == 0 {
                    State::NotStarted { total }
                } else {
                    State::InProgress { passed, total }
                }
            }
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, State::Done { .. })
    }

    /// `(points so far, points possible)` when known: one point per graded test.
    pub fn points(&self) -> Option<(usize, usize)> {
        match *self {
            State::NotStarted { total } => Some((0, total)),
            State::InProgress { passed, total } => Some((passed, total)),
            State::Done { total } => Some((total, total)),
            _ => None,
        }
    }
}

/// The first compiler error of cargo's output: from the first line that starts with `error`
/// to the end of that diagnostic (an empty line), without the warnings before it.
pub fn first_error(errors: &str) -> String {
    let errors = tidy_paths(errors);
    let lines: Vec<&str> = errors.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("error")) else {
        return errors
            .lines()
            .next()
            .unwrap_or("(no compiler output)")
            .to_owned();
    };
    let end = lines[start..]
        .iter()
        .position(|l| l.trim().is_empty())
        .map_or(lines.len(), |n| start + n);
    lines[start..end].join("\n")
}

/// The suite is compiled as `exercises/exerciseNN/../../tests/exerciseNN/main.rs`: show the
/// plain `tests/exerciseNN/main.rs`.
pub fn tidy_paths(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("exercises/exercise") {
        let after = &rest[at + "exercises/exercise".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 2 && after[digits..].starts_with("/../../") {
            out.push_str(&rest[..at]);
            rest = &after[digits + "/../../".len()..];
        } else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// The test whose failure to show first: the lowest task, then by name (libtest reports tests
/// in the order they finish, which varies from run to run).
pub fn first_failure(tests: &[TestResult]) -> Option<&TestResult> {
    tests
        .iter()
        .filter(|t| t.is_graded() && !t.passed)
        .min_by(|a, b| (a.task, &a.name).cmp(&(b.task, &b.name)))
}

/// The first task with a graded test that does not pass.
pub fn first_unfinished_task(tests: &[TestResult]) -> Option<u32> {
    first_failure(tests).and_then(|t| t.task)
}

/// The deadline of a whole run, build included. Each graded test has its own (10 s by default),
/// so this only ends a run stuck outside them; it is shorter than `cargo xtask verify`'s, because
/// a student waits in front of it.
pub const DEADLINE: Duration = Duration::from_secs(300);

/// Runs suites and remembers their verdicts.
#[derive(Debug, Clone)]
pub struct Tester {
    pub course: Course,
    /// The deadline of a whole `cargo test` (the suite's own tests have their own, shorter ones).
    pub deadline: Duration,
}

impl Tester {
    pub fn new(course: Course) -> Tester {
        Tester {
            course,
            deadline: DEADLINE,
        }
    }

    /// The directory of the status cache: `<target dir>/ipclab/status`.
    pub fn cache_dir(&self) -> PathBuf {
        target_dir(&self.course).join("ipclab").join("status")
    }

    fn cache_file(&self, exercise: &str) -> PathBuf {
        self.cache_dir().join(format!("{exercise}.json"))
    }

    /// The last run of `exercise`, fresh or not.
    pub fn last(&self, exercise: &str) -> Option<Record> {
        let text = fs::read_to_string(self.cache_file(exercise)).ok()?;
        let record: Record = serde_json::from_str(&text).ok()?;
        (record.format == CACHE_FORMAT).then_some(record)
    }

    /// The last run of `exercise` if nothing it depends on changed since.
    pub fn fresh(&self, exercise: &str) -> Option<Record> {
        let record = self.last(exercise)?;
        (record.fingerprint == fingerprint(&self.course, exercise)).then_some(record)
    }

    /// Runs the graded suite of `exercise` as `cargo test -p exercise` does, cleans up after it
    /// (processes below us, the run's private TMPDIR) and caches the verdict.
    pub fn run(&self, exercise: &str) -> io::Result<Record> {
        // Taken before the run: an edit during the build makes this record stale, as it must.
        let fingerprint = fingerprint(&self.course, exercise);
        let tmp = RunTmp::create()?;
        let options = RunOptions {
            deadline: self.deadline,
            env: vec![
                // FIFOs and sockets a test leaves in TMPDIR go with it.
                ("TMPDIR".into(), tmp.path.display().to_string()),
                // A snapshot mismatch must not write `.snap.new` files into the suite (that
                // would change the fingerprint and, in watch mode, trigger another run).
                ("INSTA_UPDATE".into(), "no".into()),
            ],
            require_verdicts: false,
            include_ignored: false,
        };
        let run = suite::run(&self.course, exercise, Implementation::Exercise, &options);
        // Interrupted: the run was killed under us; its verdict means nothing and must not be
        // cached. The signal thread ends the process.
        crate::signals::wait_if_interrupted();
        reaper::kill_descendants();
        drop(tmp);
        let run = run?;
        let record = Record {
            format: CACHE_FORMAT,
            fingerprint,
            verdict: run.verdict.clone(),
            elapsed: run.elapsed,
            test_time: run.test_time,
            finished: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        // A cache that cannot be written only costs a re-run next time.
        let _ = self.save(exercise, &record);
        Ok(record)
    }

    /// The fresh cached verdict, else a new run.
    pub fn fresh_or_run(&self, exercise: &str) -> io::Result<Record> {
        match self.fresh(exercise) {
            Some(record) => Ok(record),
            None => self.run(exercise),
        }
    }

    fn save(&self, exercise: &str, record: &Record) -> io::Result<()> {
        let dir = self.cache_dir();
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{exercise}.{}.tmp", std::process::id()));
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(record).map_err(io::Error::other)?,
        )?;
        // Atomic: a concurrent `ipclab list` sees the old record or the new one.
        fs::rename(&tmp, self.cache_file(exercise))
    }
}

impl Record {
    pub fn state(&self) -> State {
        State::of(&self.verdict)
    }

    pub fn tests(&self) -> &[TestResult] {
        match &self.verdict {
            Verdict::Ran { tests } => tests,
            _ => &[],
        }
    }

    /// As a [`SuiteRun`], for code that shows verdicts.
    pub fn as_run(&self, exercise: &str) -> SuiteRun {
        SuiteRun {
            exercise: exercise.to_owned(),
            implementation: Implementation::Exercise,
            verdict: self.verdict.clone(),
            elapsed: self.elapsed,
            test_time: self.test_time,
            protections: Vec::new(),
        }
    }
}

/// The run's private temporary directory, removed (with whatever a test left in it) on drop.
struct RunTmp {
    path: PathBuf,
}

impl RunTmp {
    fn create() -> io::Result<RunTmp> {
        let path = std::env::temp_dir().join(format!(
            "ipclab-run-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        crate::signals::create_run_tmpdir(&path)?;
        Ok(RunTmp { path })
    }
}

impl Drop for RunTmp {
    fn drop(&mut self) {
        crate::signals::remove_run_tmpdir(&self.path);
    }
}

/// Cargo's target directory for the course: `CARGO_TARGET_DIR` if set, else `<root>/target`.
pub fn target_dir(course: &Course) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir().unwrap_or_default().join(dir)
            }
        }
        _ => course.root.join("target"),
    }
}

/// A fingerprint of everything a verdict depends on: the path, size and modification time of
/// every file of the exercise, its suite, the shared support crate, and the lock file.
pub fn fingerprint(course: &Course, exercise: &str) -> String {
    let mut hasher = DefaultHasher::new();
    CACHE_FORMAT.hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    let root = &course.root;
    for path in [
        root.join("exercises").join(exercise),
        root.join("tests").join(exercise),
        root.join("tests/support"),
        root.join("Cargo.lock"),
        root.join("Cargo.toml"),
    ] {
        hash_tree(root, &path, &mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn hash_tree(root: &Path, path: &Path, hasher: &mut DefaultHasher) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        // A missing piece is part of the fingerprint too: it may appear later.
        (path.strip_prefix(root).unwrap_or(path), "missing").hash(hasher);
        return;
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if meta.is_dir() {
        if name == "target" || name.starts_with('.') {
            return;
        }
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            hash_tree(root, &entry, hasher);
        }
    } else {
        // Editors' swap and backup files and insta's pending snapshots do not change a verdict.
        if name.starts_with('.')
            || name.ends_with('~')
            || name.ends_with(".snap.new")
            || name.ends_with(".pending-snap")
        {
            return;
        }
        path.strip_prefix(root).unwrap_or(path).hash(hasher);
        meta.len().hash(hasher);
        meta.modified().ok().hash(hasher);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(name: &str, passed: bool) -> TestResult {
        TestResult {
            name: name.to_owned(),
            task: suite::task_of(name),
            passed,
            message: (!passed).then(|| format!("{name} failed")),
        }
    }

    #[test]
    fn states_follow_the_graded_tests() {
        let ran = |tests| State::of(&Verdict::Ran { tests });
        assert_eq!(ran(vec![]), State::NoGradedTests);
        assert_eq!(
            ran(vec![graded("task1_a", false), graded("bonus", true)]),
            State::NotStarted { total: 1 }
        );
        assert_eq!(
            ran(vec![graded("task1_a", true), graded("task2_b", false)]),
            State::InProgress {
                passed: 1,
                total: 2
            }
        );
        assert_eq!(ran(vec![graded("task1_a", true)]), State::Done { total: 1 });
    }

    #[test]
    fn the_first_failure_is_the_lowest_task_then_by_name() {
        let tests = vec![
            graded("task3_a", false),
            graded("task2_z", false),
            graded("task1_a", true),
            graded("task2_b", false),
        ];
        assert_eq!(first_failure(&tests).unwrap().name, "task2_b");
        assert_eq!(first_unfinished_task(&tests), Some(2));
    }

    #[test]
    fn suite_paths_are_shown_from_the_course_root() {
        assert_eq!(
            tidy_paths(" --> exercises/exercise03/../../tests/exercise03/main.rs:2:34"),
            " --> tests/exercise03/main.rs:2:34"
        );
        assert_eq!(
            tidy_paths("exercises/exercise03/src/lib.rs"),
            "exercises/exercise03/src/lib.rs"
        );
    }

    #[test]
    fn the_first_error_skips_warnings_and_stops_at_the_blank_line() {
        let out = "warning: unused variable\n --> src/lib.rs:1:1\n\n\
                   error[E0308]: mismatched types\n --> src/lib.rs:3:5\n  |\n3 | x\n\n\
                   error: aborting due to 1 previous error\n";
        assert_eq!(
            first_error(out),
            "error[E0308]: mismatched types\n --> src/lib.rs:3:5\n  |\n3 | x"
        );
    }

    #[test]
    fn the_fingerprint_changes_with_an_edit_and_ignores_pending_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("exercises/exercise01/src")).unwrap();
        fs::create_dir_all(root.join("tests/exercise01/snapshots")).unwrap();
        fs::create_dir_all(root.join("tests/support")).unwrap();
        fs::write(root.join("exercises/exercise01/src/lib.rs"), "a").unwrap();
        let course = Course {
            root: root.to_path_buf(),
        };
        let before = fingerprint(&course, "exercise01");
        fs::write(root.join("tests/exercise01/snapshots/x.snap.new"), "x").unwrap();
        assert_eq!(fingerprint(&course, "exercise01"), before);
        fs::write(root.join("exercises/exercise01/src/lib.rs"), "ab").unwrap();
        assert_ne!(fingerprint(&course, "exercise01"), before);
    }
}
