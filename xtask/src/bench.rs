//! `cargo xtask bench [--quick]`: how fast is the course, for the student, the grader and the
//! reference solutions?
//!
//! Speed is measured here, never asserted in a test. Four numbers matter:
//!
//! 1. the student's edit-to-verdict loop: a one-line edit in `exercises/exercise01/src/lib.rs`,
//!    then `cargo test -p exercise01` (done in a copy of the course, so the working tree is never
//!    touched);
//! 2. each suite's run time, from libtest's `finished in` line (build excluded);
//! 3. the grading time of one submission: `cargo xtask verify exercise01`, wall time;
//! 4. how close the mechanisms and the reference solutions come to the machine's limits: the
//!    `ipclab-bench` program in `solutions/bench`, which measures memcpy in the same run.
//!
//! The report goes to `<target>/bench/report.md` (`<target>` is `$CARGO_TARGET_DIR`, or
//! `target/` in the course) and to standard output.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ipclab::course::{Course, Implementation};
use ipclab::suite::{self, RunOptions, SuiteRun, Verdict};

/// Timed runs of each loop measurement (after one untimed warm-up).
const RUNS: usize = 5;
/// Timed runs of `cargo xtask verify exercise01` and of each suite.
const GRADING_RUNS: usize = 3;
/// The longest one suite run (build included) may take here.
const SUITE_DEADLINE: Duration = Duration::from_secs(180);

pub fn run(root: &Path, args: &[String]) -> ExitCode {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(other) = args.iter().find(|a| *a != "--quick") {
        eprintln!("usage: cargo xtask bench [--quick]   (unknown argument {other:?})");
        return ExitCode::from(2);
    }
    let course = Course {
        root: root.to_path_buf(),
    };
    let target = target_dir(root);
    let (runs, grading_runs) = if quick { (2, 1) } else { (RUNS, GRADING_RUNS) };
    let mut failures = Vec::new();
    let mut report = String::from("# ipclab benchmarks\n\n");
    let _ = writeln!(
        report,
        "One machine's numbers ({} CPUs, load average {} at the start). Read the ratios and the \
         orders of magnitude; each time is the median of the timed runs after one warm-up.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );

    section("the first ten minutes: cargo ipclab cold and warm, the loop against a bare crate");
    let (startup, startup_failures) = crate::bench_startup::report(root, &target);
    report.push_str(&startup);
    failures.extend(startup_failures);

    section("the student's edit-to-verdict loop (exercise01)");
    report.push_str("## The student's loop\n\n");
    match edit_to_verdict(root, &target, runs) {
        Ok(times) => {
            let _ = writeln!(
                report,
                "A one-line edit (a changed comment) in `exercises/exercise01/src/lib.rs`, then \
                 `cargo test -p exercise01`, on the untouched starter (every test fails at its \
                 `todo!`): **{}** (fastest {}, slowest {}; {} runs, in a copy of the course).\n",
                secs(median(&times)),
                secs(times.iter().min().copied().unwrap_or_default()),
                secs(times.iter().max().copied().unwrap_or_default()),
                times.len()
            );
        }
        Err(e) => {
            let _ = writeln!(report, "Not measured: {e}\n");
            failures.push(format!("edit-to-verdict loop: {e}"));
        }
    }

    section("grading one submission: cargo xtask verify exercise01");
    report.push_str("## Grading one submission\n\n");
    match verify_time(root, grading_runs) {
        Ok((times, failed)) => {
            let _ = writeln!(
                report,
                "`cargo xtask verify exercise01` (the solution's suite, the starter's suite and \
                 the leftovers checks, builds warm): **{}** ({} runs).\n",
                secs(median(&times)),
                times.len()
            );
            if let Some(line) = failed {
                let _ = writeln!(report, "One run did not pass: `{line}`.\n");
                failures.push(format!("cargo xtask verify exercise01: {line}"));
            }
        }
        Err(e) => {
            let _ = writeln!(report, "Not measured: {e}\n");
            failures.push(format!("grading time: {e}"));
        }
    }

    section("what trusted grading costs");
    failures.extend(crate::bench_grading::measure(
        root,
        &target,
        quick,
        &mut report,
    ));

    section("each suite's run time");
    report.push_str(
        "## Each suite's run time\n\nlibtest's own `finished in` time (the build is not \
         included), against the reference solution and against the untouched starter.\n\n\
         | exercise | solution: tests | solution: time | starter: time |\n|---|---:|---:|---:|\n",
    );
    match course.exercises() {
        Ok(exercises) => {
            for exercise in exercises {
                let solution =
                    suite_time(&course, &exercise, Implementation::Solution, grading_runs);
                let starter =
                    suite_time(&course, &exercise, Implementation::Exercise, grading_runs);
                let tests = solution.as_ref().map_or(String::new(), |(_, t)| t.clone());
                let cell = |r: &Result<(Duration, String), String>| match r {
                    Ok((time, _)) => secs(*time),
                    Err(e) => e.clone(),
                };
                let _ = writeln!(
                    report,
                    "| {exercise} | {tests} | {} | {} |",
                    cell(&solution),
                    cell(&starter)
                );
            }
        }
        Err(e) => failures.push(format!("cannot list exercises/: {e}")),
    }

    section("mechanisms and reference solutions (ipclab-bench)");
    report.push('\n');
    match mechanisms(root, quick) {
        Ok(tables) => report.push_str(&tables),
        Err(e) => {
            let _ = writeln!(
                report,
                "## How fast is each mechanism?\n\nNot measured: {e}"
            );
            failures.push(format!("ipclab-bench: {e}"));
        }
    }
    let _ = writeln!(report, "\nLoad average at the end: {}.", load_average());

    let path = target.join("bench/report.md");
    let written = fs::create_dir_all(target.join("bench")).and_then(|()| fs::write(&path, &report));
    println!("{report}");
    match written {
        Ok(()) => eprintln!("xtask bench: report written to {}", path.display()),
        Err(e) => failures.push(format!("cannot write {}: {e}", path.display())),
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("xtask bench: FAILED {f}");
        }
        ExitCode::FAILURE
    }
}

fn section(what: &str) {
    eprintln!("xtask bench: {what} …");
}

/// Where cargo builds: `$CARGO_TARGET_DIR`, or `target/` in the course.
fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The student's loop, measured in a copy of the course under `<target>/bench/course`, so that
/// the working tree is never edited (even if this is interrupted). The copy has a target
/// directory of its own next to it: the first run builds the dependencies once.
fn edit_to_verdict(root: &Path, target: &Path, runs: usize) -> Result<Vec<Duration>, String> {
    let copy = target.join("bench/course");
    if copy.exists() {
        fs::remove_dir_all(&copy).map_err(|e| format!("cannot clear {}: {e}", copy.display()))?;
    }
    for part in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "ipclab",
        "xtask",
        "tests/support",
        "tests/exercise01",
        "exercises/exercise01",
    ] {
        copy_tree(&root.join(part), &copy.join(part))
            .map_err(|e| format!("cannot copy {part} into {}: {e}", copy.display()))?;
    }
    let lib = copy.join("exercises/exercise01/src/lib.rs");
    let original =
        fs::read_to_string(&lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
    let copy_target = target.join("bench/course-target");
    let tmp = tempfile::Builder::new()
        .prefix("ipclab-bench-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?;
    let mut times = Vec::new();
    // Run 0 is the warm-up (and, the first time, builds the dependencies).
    for edit in 0..=runs {
        fs::write(&lib, format!("{original}// ipclab bench: edit {edit}\n"))
            .map_err(|e| format!("cannot edit {}: {e}", lib.display()))?;
        let started = Instant::now();
        let output = cargo()
            .args(["test", "-p", "exercise01"])
            .current_dir(&copy)
            .env("CARGO_TARGET_DIR", &copy_target)
            .env("TMPDIR", tmp.path())
            // insta must compare, never write.
            .env("CI", "true")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run cargo: {e}"))?;
        let elapsed = started.elapsed();
        // The starter fails its tests, so cargo exits with 101: what matters is that they ran.
        if !String::from_utf8_lossy(&output.stdout).contains("test result:") {
            return Err(format!(
                "cargo test -p exercise01 ran no tests:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if edit > 0 {
            times.push(elapsed);
        }
    }
    Ok(times)
}

/// Copies a file or a directory tree, leaving out build output.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == "target" || name == "build" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(name))?;
        }
        Ok(())
    } else {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from, to).map(|_| ())
    }
}

/// `cargo xtask verify exercise01`, wall time, exactly as a grader types it. Also returns the
/// verdict line of a failed run: the time counts all the same (on a shared machine the
/// leftovers check may see another user's zombie), but the report says so.
fn verify_time(root: &Path, runs: usize) -> Result<(Vec<Duration>, Option<String>), String> {
    let mut times = Vec::new();
    let mut failed = None;
    for run in 0..=runs {
        let started = Instant::now();
        let output = cargo()
            .args(["xtask", "verify", "exercise01"])
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run cargo: {e}"))?;
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.contains("verify: ") {
            return Err(format!(
                "cargo xtask verify exercise01 did not run:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        if !output.status.success() {
            failed = stdout
                .lines()
                .rfind(|l| l.starts_with("FAILED"))
                .map(str::to_owned);
        }
        if run > 0 {
            times.push(elapsed);
        }
    }
    Ok((times, failed))
}

/// The median `finished in` time of a suite, and how many graded tests passed (for a solution).
fn suite_time(
    course: &Course,
    exercise: &str,
    implementation: Implementation,
    runs: usize,
) -> Result<(Duration, String), String> {
    let tmp = tempfile::Builder::new()
        .prefix("ipclab-bench-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?;
    let options = RunOptions {
        env: vec![
            ("TMPDIR".into(), tmp.path().display().to_string()),
            ("CI".into(), "true".into()),
        ],
        // Every test has its own deadline; this one only stops a suite that hangs outside
        // them from holding up the whole benchmark (a cold build fits well within it).
        deadline: SUITE_DEADLINE,
        require_verdicts: true,
        include_ignored: false,
    };
    let mut times = Vec::new();
    let mut tests = String::new();
    // The first run builds; libtest's own time excludes that, so every run counts.
    for _ in 0..runs {
        let run: SuiteRun = suite::run(course, exercise, implementation, &options)
            .map_err(|e| format!("could not run: {e}"))?;
        match &run.verdict {
            Verdict::BuildFailed { .. } => return Err("does not build".into()),
            Verdict::TimedOut { after } => return Err(format!("timed out after {after:?}")),
            Verdict::Ran { .. } => {}
        }
        let graded = run.graded();
        tests = format!(
            "{}/{} pass",
            graded.iter().filter(|t| t.passed).count(),
            graded.len()
        );
        times.push(run.test_time.ok_or("no `finished in` line")?);
    }
    Ok((median(&times), tests))
}

/// Builds and runs `ipclab-bench` in release mode (it also writes `target/ipclab-bench/`:
/// results.json, results.md and the SVG charts); returns its Markdown tables.
fn mechanisms(root: &Path, quick: bool) -> Result<String, String> {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--release", "--manifest-path"])
        .arg(root.join("solutions/Cargo.toml"))
        .args(["-p", "ipclab-bench"]);
    if quick {
        cmd.args(["--", "--quick"]);
    }
    // The solutions workspace builds into a target directory of its own (as `suite::run` does):
    // its packages have the same names as the starters.
    if let Some(shared) = env::var_os("CARGO_TARGET_DIR") {
        cmd.env("CARGO_TARGET_DIR", Path::new(&shared).join("solutions"));
    }
    let output = cmd
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    let tables = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(tables)
    } else if tables.contains("| mechanism |") {
        // Some measurement failed: the tables say which, in its row.
        Err(format!("a measurement failed:\n{tables}"))
    } else {
        Err(format!("ipclab-bench did not run ({})", output.status))
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(
            median(&[ms(4), ms(1), ms(2), ms(3)]),
            Duration::from_micros(2500)
        );
        assert_eq!(median(&[]), Duration::ZERO);
    }

    #[test]
    fn copies_leave_out_build_output() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        fs::create_dir_all(from.path().join("a/target")).unwrap();
        fs::write(from.path().join("a/keep.rs"), "x").unwrap();
        fs::write(from.path().join("a/target/drop"), "x").unwrap();
        copy_tree(&from.path().join("a"), &to.path().join("a")).unwrap();
        assert!(to.path().join("a/keep.rs").is_file());
        assert!(!to.path().join("a/target").exists());
    }
}
