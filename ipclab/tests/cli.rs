//! The `ipclab` command, driven as a student drives it, against a tiny fake course built in a
//! temporary directory: a workspace with no dependencies whose graded tests pass or fail
//! depending on constants in the starters, which the tests edit. The real course's suites are
//! never run here (they would rebuild heavy crates).
//!
//! Output is captured (not a terminal), so it is the plain, colourless, line-by-line form.
//! Synchronisation is on output lines, with a deadline; nothing sleeps.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command as StdCommand, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{mkfifo, Pid};
use predicates::prelude::*;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ipclab");

/// How long any one step may take once the fake course is built (every [`FakeCourse`] is built
/// before its test starts: no deadline covers a cold build, which a busy machine can make as slow
/// as it likes). A safety net against hangs, scaled by `IPCLAB_DEADLINE_SCALE` like every
/// deadline of the course; each wait ends on its event, long before this.
fn step() -> Duration {
    let scale = std::env::var("IPCLAB_DEADLINE_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 1.0)
        .unwrap_or(1.0);
    Duration::from_secs(90).mul_f64(scale)
}

/// A fake course: exercise01 (three graded tests, two tasks, README and hints), exercise02
/// (no README: its title comes from its package description; it passes), exercise03 (its suite
/// does not compile).
struct FakeCourse {
    dir: TempDir,
}

const STARTER01: &str = "\
//! The fake exercise 01: the tests pass when the constants are true.
pub const TASK1_FIRST: bool = false;
pub const TASK1_SECOND: bool = false;
pub const TASK2: bool = false;
";

const SUITE01: &str = r#"
#[test]
fn task1_first_constant_is_set() {
    if std::env::var_os("FAKE_HANG").is_some() {
        // A test stuck in a way its own deadline does not catch, with a child in a process
        // group of its own (so that killing cargo's group does not reach it).
        // FAKE_HANG names a FIFO: "ready" is written into it once the child runs.
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let marker = std::env::var("FAKE_HANG").unwrap();
        let _child = std::process::Command::new("sh")
            .args(["-c", "tail -f /dev/null; exit 0", &marker])
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut ready = std::fs::OpenOptions::new().write(true).open(&marker).unwrap();
        writeln!(ready, "ready").unwrap();
        loop {
            std::thread::park();
        }
    }
    assert!(
        exercise01::TASK1_FIRST,
        "not yet implemented: Task 1: set TASK1_FIRST\n  at exercises/exercise01/src/lib.rs:2:1"
    );
}

#[test]
fn task1_second_constant_is_set() {
    assert!(exercise01::TASK1_SECOND, "Task 1: TASK1_SECOND is still false");
}

#[test]
fn task2_last_constant_is_set() {
    assert!(
        exercise01::TASK2,
        "task2_last_constant_is_set did not finish within 10s, so its whole process tree was killed.\nLikely cause: TASK2 is still false"
    );
}

#[test]
fn bonus_is_not_graded() {}
"#;

impl FakeCourse {
    fn new() -> FakeCourse {
        let dir = tempfile::Builder::new()
            .prefix("ipclab-fake-course-")
            .tempdir()
            .expect("a temporary directory");
        let course = FakeCourse { dir };
        course.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"2\"\nmembers = [\"exercises/*\"]\n\n[profile.dev]\ndebug = 0\n",
        );
        course.write(".gitignore", "/target\n/.ipclab\n");
        course.write("tests/support/README.md", "shared test machinery\n");
        // exercise01: the model.
        course.write(
            "exercises/exercise01/Cargo.toml",
            &manifest("exercise01", "fake pipes"),
        );
        course.write("exercises/exercise01/src/lib.rs", STARTER01);
        course.write(
            "exercises/exercise01/README.md",
            "# Exercise 01: fake pipes\n\nA fake exercise.\n\n\
             Read first: [Pipes](../../book/src/pipes.md). Edit `src/lib.rs`.\n\n\
             ## Task 1: two constants\nSet them.\n\n## Task 2: one more constant\nSet it.\n",
        );
        course.write(
            "exercises/exercise01/hints.md",
            "# Hints: exercise 01\n\n## Task 1: two constants\n1. Look at src/lib.rs.\n\
             2. The constants are\n   booleans.\n3. Write `true`.\n\n\
             ## Task 2: one more constant\n1. Same as task 1.\n",
        );
        course.write("tests/exercise01/main.rs", SUITE01);
        // Points by task, which `cargo ipclab` shows beside the test counts (exercise02 has no
        // rubric: a point per graded test).
        course.write("tests/exercise01/rubric.toml", "[tasks]\n1 = 4\n2 = 6\n");
        course.write(
            "solutions/exercise01/src/lib.rs",
            "pub const TASK1_FIRST: bool = true;\npub const TASK1_SECOND: bool = true;\npub const TASK2: bool = true;\n",
        );
        course.write(
            "solutions/exercise01/src/bin/ex01-helper.rs",
            "fn main() {}\n",
        );
        // exercise02: no README yet, passes.
        course.write(
            "exercises/exercise02/Cargo.toml",
            &manifest("exercise02", "fake message queues"),
        );
        course.write(
            "exercises/exercise02/src/lib.rs",
            "pub const DONE: bool = true;\n",
        );
        course.write(
            "tests/exercise02/main.rs",
            "#[test]\nfn task1_done() { assert!(exercise02::DONE); }\n",
        );
        // exercise03: the suite does not compile (it is being written).
        course.write(
            "exercises/exercise03/Cargo.toml",
            &manifest("exercise03", "fake signals"),
        );
        course.write("exercises/exercise03/src/lib.rs", "pub fn f() {}\n");
        course.write(
            "exercises/exercise03/README.md",
            "# Exercise 03: fake signals\n\nRead first: [Signals](../../book/src/signals.md).\n\n\
             ## Task 1: call g\n",
        );
        course.write(
            "tests/exercise03/main.rs",
            "#[test]\nfn task1_calls_g() { exercise03::g(); }\n",
        );
        let status = StdCommand::new(cargo())
            .args(["generate-lockfile", "--offline", "--quiet"])
            .current_dir(course.root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo generate-lockfile");
        course.build();
        course
    }

    /// Builds the fake suites that compile, waiting for cargo to finish however long that
    /// takes: the deadlines of the steps that follow then cover no cold build.
    fn build(&self) {
        let status = StdCommand::new(cargo())
            .args([
                "test",
                "--no-run",
                "--quiet",
                "-p",
                "exercise01",
                "-p",
                "exercise02",
            ])
            .current_dir(self.root())
            .env("CARGO_TARGET_DIR", self.root().join("target"))
            .stdout(Stdio::null())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the fake course builds");
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root().join(rel)).unwrap()
    }

    /// Sets a constant of exercise01's starter, as a student's save does.
    fn set(&self, constant: &str, value: bool) {
        let text = self.read("exercises/exercise01/src/lib.rs");
        let (from, to) = (
            format!("{constant}: bool = {};", !value),
            format!("{constant}: bool = {value};"),
        );
        assert!(text.contains(&from), "{constant} is not {}", !value);
        self.write("exercises/exercise01/src/lib.rs", &text.replace(&from, &to));
    }

    /// `ipclab` run in the course, with the course's own target directory.
    fn ipclab(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.root())
            .env("CARGO_TARGET_DIR", self.root().join("target"))
            .env_remove("FAKE_HANG")
            .timeout(step());
        cmd
    }

    fn git(&self, args: &[&str]) {
        let status = StdCommand::new("git")
            .args([
                "-c",
                "user.name=Student",
                "-c",
                "user.email=student@example.org",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(self.root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    fn git_init(&self) {
        self.git(&["init", "--quiet"]);
        self.git(&["add", "."]);
        self.git(&["commit", "--quiet", "-m", "the course"]);
    }

    /// Plain text with the course's path replaced (it varies from run to run).
    fn redact(&self, text: &str) -> String {
        let root = self.root().display().to_string();
        text.replace(&root, "[course]").trim_end().to_owned()
    }

    /// A FIFO for the fake hanging test to say it is ready, and the line read from it (read in
    /// a thread, so that the test can wait for it with a deadline).
    fn readiness_fifo(&self) -> (String, Receiver<String>) {
        let path = self.root().join("ready.fifo");
        mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).expect("mkfifo");
        let (tx, rx) = mpsc::channel();
        let reader_path = path.clone();
        thread::spawn(move || {
            // Blocks until the fake test opens the FIFO for writing.
            let Ok(file) = fs::File::open(&reader_path) else {
                return;
            };
            let mut line = String::new();
            if BufReader::new(file).read_line(&mut line).is_ok() {
                let _ = tx.send(line.trim().to_owned());
            }
        });
        (path.display().to_string(), rx)
    }

    /// Processes whose command line mentions the course: there must be none once `ipclab` is
    /// done (cargo runs with `--manifest-path` into it; the fake hang's marker lives in it).
    fn processes_left(&self) -> Vec<String> {
        let root = self.root().display().to_string();
        let me = std::process::id().to_string();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_err() || name == me {
                continue;
            }
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&root) {
                found.push(format!("pid {name}: {cmdline}"));
            }
        }
        found
    }
}

fn manifest(name: &str, description: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\ndescription = \"{description}\"\nversion = \"0.1.0\"\n\
         edition = \"2021\"\npublish = false\n\n[lib]\ndoctest = false\n\n\
         [[test]]\nname = \"{name}\"\npath = \"../../tests/{name}/main.rs\"\n"
    )
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// A reviewed snapshot of a screen, with durations redacted.
macro_rules! snapshot {
    ($name:expr, $screen:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\b\d+(\.\d+)? (s|min)\b", "[duration]");
        settings.bind(|| insta::assert_snapshot!($name, $screen));
    }};
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn list_shows_every_exercise_with_status_points_and_what_is_next() {
    let course = FakeCourse::new();
    let output = course.ipclab().output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let screen = course.redact(&stdout_of(&output));
    assert!(
        !screen.contains('\x1b'),
        "no colour when stdout is not a terminal:\n{screen}"
    );
    snapshot!("list_fresh_course", screen);
    // `list` is also the default command, and the cache makes it instant: with a cargo that
    // cannot run, the verdicts still come from the cache, because nothing changed.
    let again = course
        .ipclab()
        .arg("list")
        .env("CARGO", "/bin/false")
        .output()
        .unwrap();
    assert_eq!(course.redact(&stdout_of(&again)), screen);
}

#[test]
fn list_reflects_an_edit() {
    let course = FakeCourse::new();
    course
        .ipclab()
        .assert()
        .success()
        .stdout(predicate::str::contains("not started"));
    course.set("TASK1_FIRST", true);
    course
        .ipclab()
        .assert()
        .success()
        .stdout(predicate::str::contains("in progress: 1 of 3 pass"))
        // Points by the rubric: task 1's 4 points are shared by its two tests.
        .stdout(predicate::str::contains("2/10"));
    course.set("TASK1_SECOND", true);
    course.set("TASK2", true);
    let output = course.ipclab().output().unwrap();
    let screen = course.redact(&stdout_of(&output));
    snapshot!("list_after_exercise01_passes", screen);
}

#[test]
fn list_knows_untouched_starters_without_running_them() {
    let course = FakeCourse::new();
    course.git_init();
    // A cargo that cannot run: an untouched starter (identical to git's) is "not started", with
    // its points (the rubric's) and its tests counted from the suite's source.
    let output = course.ipclab().env("CARGO", "/bin/false").output().unwrap();
    assert!(output.status.success());
    let screen = stdout_of(&output);
    let line = screen.lines().find(|l| l.contains(" 01 ")).unwrap();
    assert!(
        line.contains("not started") && line.ends_with("0/10"),
        "{screen}"
    );
    // An edit: that exercise runs (and with this cargo, cannot), the others still need no run.
    course.set("TASK1_FIRST", true);
    let output = course.ipclab().env("CARGO", "/bin/false").output().unwrap();
    let screen = stdout_of(&output);
    let line = screen.lines().find(|l| l.contains(" 01 ")).unwrap();
    assert!(!line.contains("not started"), "{screen}");
    let line = screen.lines().find(|l| l.contains(" 03 ")).unwrap();
    assert!(line.contains("not started"), "{screen}");
}

#[test]
fn run_shows_a_compact_verdict_and_fails_until_everything_passes() {
    let course = FakeCourse::new();
    course.set("TASK1_SECOND", true);
    let output = course.ipclab().args(["run", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "a failing exercise fails");
    snapshot!("run_verdict_failing", course.redact(&stdout_of(&output)));

    course.set("TASK1_FIRST", true);
    let output = course
        .ipclab()
        .args(["run", "exercise01"])
        .output()
        .unwrap();
    snapshot!(
        "run_verdict_task2_timed_out",
        course.redact(&stdout_of(&output))
    );

    course.set("TASK2", true);
    let output = course.ipclab().args(["run", "01"]).output().unwrap();
    assert!(output.status.success(), "a passing exercise succeeds");
    snapshot!("run_verdict_passing", course.redact(&stdout_of(&output)));
}

#[test]
fn a_suite_that_does_not_compile_shows_its_first_error() {
    let course = FakeCourse::new();
    let output = course.ipclab().args(["run", "3"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let screen = stdout_of(&output);
    assert!(
        screen.contains("It does not compile. The first error:"),
        "{screen}"
    );
    assert!(
        screen.contains("error[E0425]") && screen.contains("exercise03::g"),
        "the first compiler error is shown in full:\n{screen}"
    );
}

#[test]
fn check_without_an_exercise_checks_all_and_fails_if_one_fails() {
    let course = FakeCourse::new();
    let output = course.ipclab().arg("check").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    snapshot!("check_all", course.redact(&stdout_of(&output)));
    course
        .ipclab()
        .args(["check", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "All 1 graded tests of exercise02 pass.",
        ));
}

#[test]
fn hints_are_revealed_one_at_a_time_for_the_first_task_not_passing() {
    let course = FakeCourse::new();
    // Before any run: task 1.
    course
        .ipclab()
        .args(["hint", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("▸ 1. Look at src/lib.rs."))
        .stdout(predicate::str::contains("2 more hints for this task"));
    let output = course.ipclab().args(["hint", "1"]).output().unwrap();
    snapshot!("hint_second", course.redact(&stdout_of(&output)));
    course
        .ipclab()
        .args(["hint", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("▸ 3. Write `true`."))
        .stdout(predicate::str::contains(
            "That was the last hint for this task.",
        ))
        .stdout(predicate::str::contains("Pipes (book/src/pipes.md)"));
    // Task 1 passes after a run: the next hint is task 2's.
    course.set("TASK1_FIRST", true);
    course.set("TASK1_SECOND", true);
    course.ipclab().args(["run", "1"]).assert().failure();
    course
        .ipclab()
        .arg("hint")
        .assert()
        .success()
        .stdout(predicate::str::contains("Task 2: one more constant"))
        .stdout(predicate::str::contains("▸ 1. Same as task 1."));
    // A task by number, every hint at once.
    course
        .ipclab()
        .args(["hint", "1", "--task", "1", "--all"])
        .assert()
        .success()
        .stdout(predicate::str::contains("3. Write `true`."));
    course
        .ipclab()
        .args(["hint", "3"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("exercise03 has no hints yet"));
}

#[test]
fn reset_restores_only_the_exercise_after_confirmation() {
    let course = FakeCourse::new();
    course.git_init();
    course.set("TASK1_FIRST", true);
    course.write(
        "exercises/exercise02/src/lib.rs",
        "pub const DONE: bool = false;\n",
    );
    course.write("tests/exercise01/main.rs", "// a maintainer's edit\n");

    // Declining changes nothing.
    course
        .ipclab()
        .args(["reset", "1"])
        .write_stdin("n\n")
        .assert()
        .failure()
        .stdout(predicate::str::contains(
            "exercises/exercise01/src/lib.rs | 2 +-",
        ))
        .stdout(predicate::str::contains("Nothing was changed."));
    assert!(course
        .read("exercises/exercise01/src/lib.rs")
        .contains("TASK1_FIRST: bool = true"));

    course
        .ipclab()
        .args(["reset", "1"])
        .write_stdin("y\n")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "exercise01 is back to its starter.",
        ));
    assert_eq!(course.read("exercises/exercise01/src/lib.rs"), STARTER01);
    assert_eq!(
        course.read("exercises/exercise02/src/lib.rs"),
        "pub const DONE: bool = false;\n",
        "another exercise is never touched"
    );
    assert_eq!(
        course.read("tests/exercise01/main.rs"),
        "// a maintainer's edit\n",
        "the tests are never touched"
    );

    course
        .ipclab()
        .args(["reset", "1", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already its starter"));
    course.set("TASK2", true);
    course
        .ipclab()
        .args(["reset", "1", "--yes"])
        .assert()
        .success();
    assert_eq!(course.read("exercises/exercise01/src/lib.rs"), STARTER01);
}

#[test]
fn reset_outside_a_git_checkout_is_a_one_line_error() {
    let course = FakeCourse::new();
    let output = course
        .ipclab()
        .args(["reset", "1", "--yes"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not a git checkout"), "{err}");
}

#[test]
fn the_solution_opens_once_the_exercise_passes() {
    let course = FakeCourse::new();
    course
        .ipclab()
        .args(["solution", "1"])
        .assert()
        .failure()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "exercise01 does not pass yet (0 of 3 graded tests pass)",
        ));
    course
        .ipclab()
        .args(["solution", "1", "--force"])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning:"))
        .stdout(predicate::str::contains("pub const TASK2: bool = true;"));
    course.set("TASK1_FIRST", true);
    course.set("TASK1_SECOND", true);
    course.set("TASK2", true);
    course
        .ipclab()
        .args(["solution", "1"])
        .assert()
        .success()
        .stderr(predicate::str::is_empty())
        .stdout(predicate::str::contains(
            "// ── solutions/exercise01/src/lib.rs ──",
        ))
        .stdout(predicate::str::contains(
            "// ── solutions/exercise01/src/bin/ex01-helper.rs ──",
        ));
}

#[test]
fn bench_races_only_an_exercise_that_passes() {
    let course = FakeCourse::new();
    let output = course.ipclab().args(["bench", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("exercise01 does not pass its graded tests yet (0 of 3 graded tests pass)")
            && err.contains("`cargo ipclab run 1` shows what fails"),
        "{err}"
    );
    // Passing, but this course has no benchmark to race (solutions/bench): one line again.
    course.set("TASK1_FIRST", true);
    course.set("TASK1_SECOND", true);
    course.set("TASK2", true);
    let output = course.ipclab().args(["bench", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("nothing to race"), "{err}");
}

#[test]
fn bad_input_gives_a_one_line_error() {
    let course = FakeCourse::new();
    for args in [&["run", "7"][..], &["hint", "pipes"], &["solution", "0"]] {
        let output = course.ipclab().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: there is no exercise") && err.contains("01, 02, 03"),
            "{err}"
        );
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(elsewhere.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not inside the ipclab course"), "{err}");
}

#[test]
fn help_reads_well_and_colour_can_be_turned_off() {
    Command::new(BIN)
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("cargo ipclab watch"))
        .stdout(predicate::str::contains("--no-color"));
    let course = FakeCourse::new();
    course
        .ipclab()
        .args(["--no-color", "hint", "1"])
        .assert()
        .success()
        .stdout(predicate::str::contains('\x1b').not());
}

#[test]
fn a_hanging_run_is_stopped_and_leaves_no_process_behind() {
    let course = FakeCourse::new();
    // Built first, so that the short deadline below is all test time.
    course.ipclab().args(["run", "1"]).assert().failure();
    let (fifo, ready) = course.readiness_fifo();
    let output = course
        .ipclab()
        .args(["--deadline", "5", "run", "1"])
        .env("FAKE_HANG", &fifo)
        .output()
        .unwrap();
    assert_eq!(
        ready.recv_timeout(step()).ok().as_deref(),
        Some("ready"),
        "the fake test hung as planned"
    );
    assert_eq!(output.status.code(), Some(1));
    let screen = stdout_of(&output);
    assert!(
        screen.contains("The tests were still running after 5 s, so they were stopped."),
        "{screen}"
    );
    assert_eq!(course.processes_left(), Vec::<String>::new());
}

/// The private TMPDIRs of the runs of the `ipclab` with this pid that are still there.
fn run_tmpdirs_of(pid: u32) -> Vec<PathBuf> {
    fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("ipclab-run-{pid}-"))
            })
        })
        .collect()
}

/// `ipclab watch` with its output read line by line.
struct Watch {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Watch {
    fn start(course: &FakeCourse, args: &[&str]) -> Watch {
        Watch::start_with(course, args, &[])
    }

    fn start_with(course: &FakeCourse, args: &[&str], env: &[(&str, &str)]) -> Watch {
        let mut child = StdCommand::new(BIN)
            .args(args)
            .current_dir(course.root())
            .env("CARGO_TARGET_DIR", course.root().join("target"))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ipclab starts");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; the lines before it are kept in `seen`.
    fn wait_for(&mut self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + step();
        let start = self.seen.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return self.seen[start..].to_vec();
                    }
                }
                Err(_) => {
                    self.stop();
                    panic!(
                        "ipclab watch never printed {text:?}; it printed:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

impl Watch {
    /// SIGTERM: ipclab stops the suite it runs and everything below it, then exits.
    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn watch_reruns_on_every_save_and_moves_on_when_everything_passes() {
    let course = FakeCourse::new();
    let mut watch = Watch::start(&course, &["watch"]);
    let first = watch.wait_for("graded tests pass");
    assert!(
        first.iter().any(|l| l.contains("0 of 3 graded tests pass")),
        "{first:#?}"
    );
    watch.wait_for("hint: cargo ipclab hint 1");
    watch.wait_for("save to run the tests again");

    // A save: the verdict follows.
    course.set("TASK1_FIRST", true);
    let second = watch.wait_for("graded tests pass");
    assert!(
        second
            .iter()
            .any(|l| l.contains("1 of 3 graded tests pass")),
        "{second:#?}"
    );
    watch.wait_for("save to run the tests again");

    // `h` shows a hint without leaving watch mode.
    writeln!(watch.stdin, "h").unwrap();
    watch.wait_for("▸ 1. Look at src/lib.rs.");

    // A save that breaks the build: the first compiler error.
    course.write(
        "exercises/exercise01/src/lib.rs",
        &course
            .read("exercises/exercise01/src/lib.rs")
            .replace("pub const TASK2", "pub const TASK2 broken"),
    );
    watch.wait_for("It does not compile. The first error:");
    watch.wait_for("save to run the tests again");

    // Enter re-runs by hand (the manual mode's key works in every mode).
    writeln!(watch.stdin).unwrap();
    watch.wait_for("It does not compile. The first error:");

    // Everything passes: the pointer to the next exercise, and on to it. exercise02 passes too,
    // so the watch goes on to exercise03, whose suite does not compile.
    course.write(
        "exercises/exercise01/src/lib.rs",
        &STARTER01.replace("false", "true"),
    );
    watch.wait_for("All 3 graded tests of exercise01 pass.");
    watch.wait_for("Next: exercise02 · fake message queues.");
    watch.wait_for("All 1 graded tests of exercise02 pass.");
    watch.wait_for("Next: exercise03 · fake signals.");
    watch.wait_for("Read first: Signals (book/src/signals.md).");
    watch.wait_for("It does not compile. The first error:");
    watch.wait_for("save to run the tests again");

    writeln!(watch.stdin, "q").unwrap();
    let status = watch.child.wait().unwrap();
    assert!(status.success(), "q ends watch mode cleanly: {status:?}");
    assert_eq!(course.processes_left(), Vec::<String>::new());
}

#[test]
fn watch_in_manual_mode_reruns_on_enter() {
    let course = FakeCourse::new();
    let mut watch = Watch::start(&course, &["watch", "--manual", "1"]);
    watch.wait_for("0 of 3 graded tests pass");
    watch.wait_for("manual mode: press Enter to run the tests again");
    course.set("TASK1_FIRST", true);
    writeln!(watch.stdin).unwrap();
    let lines = watch.wait_for("graded tests pass");
    assert!(
        lines.iter().any(|l| l.contains("1 of 3 graded tests pass")),
        "{lines:#?}"
    );
    writeln!(watch.stdin, "q").unwrap();
    assert!(watch.child.wait().unwrap().success());
}

#[test]
fn watch_reruns_when_a_save_lands_during_a_run() {
    let course = FakeCourse::new();
    // Built first, so that the short deadline below is nearly all test time; then an edit, so
    // that watch mode does not start from the cached verdict.
    course.ipclab().args(["run", "1"]).assert().failure();
    course.set("TASK1_FIRST", true);
    course.build();
    let (fifo, ready) = course.readiness_fifo();
    let mut watch = Watch::start_with(
        &course,
        &["--deadline", "5", "watch"],
        &[("FAKE_HANG", &fifo)],
    );
    assert_eq!(
        ready.recv_timeout(step()).ok().as_deref(),
        Some("ready"),
        "the fake test hung as planned"
    );
    // The run is in progress (stuck until its deadline): a save now makes its verdict stale.
    course.set("TASK1_SECOND", true);
    let lines = watch.wait_for("the sources changed during the run; running the tests again.");
    assert!(
        !lines.iter().any(|l| l.contains("graded tests pass")),
        "the stale verdict is not shown: {lines:#?}"
    );
    watch.wait_for("── exercise01: run 2 ──");
    // Stopped as the second run starts.
    let pid = watch.child.id();
    watch.stop();
    assert_eq!(course.processes_left(), Vec::<String>::new());
    assert_eq!(
        run_tmpdirs_of(pid),
        Vec::<PathBuf>::new(),
        "the run's TMPDIR is removed"
    );
}

#[test]
fn watch_interrupted_during_a_run_leaves_nothing_behind() {
    let course = FakeCourse::new();
    let (fifo, ready) = course.readiness_fifo();
    let mut child = StdCommand::new(BIN)
        .args(["watch", "1"])
        .current_dir(course.root())
        .env("CARGO_TARGET_DIR", course.root().join("target"))
        .env("FAKE_HANG", &fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The suite is running, and its hanging test has forked: Ctrl-C.
    if ready.recv_timeout(step()).ok().as_deref() != Some("ready") {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the fake suite never started");
    }
    let pid = child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "Ctrl-C ends watch mode: {status:?}"
    );
    assert_eq!(course.processes_left(), Vec::<String>::new());
    assert_eq!(
        run_tmpdirs_of(pid),
        Vec::<PathBuf>::new(),
        "the run's TMPDIR is removed"
    );
}
