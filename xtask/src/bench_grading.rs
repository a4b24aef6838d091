//! What trusted grading costs: one correct submission graded, against a plain `cargo test` of
//! the same code; and a class graded with one job and with two.
//!
//! Both sides rebuild the student's crate (the grader always grades from a fresh copy, so the
//! plain run gets an edit before each of its runs too), on warm target directories of their own.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Adds the section to `report`; returns what failed.
pub fn measure(root: &Path, target: &Path, quick: bool, report: &mut String) -> Vec<String> {
    let mut failures = Vec::new();
    report.push_str("## What trusted grading costs\n\n");
    match overhead(root, target, if quick { 1 } else { 3 }) {
        Ok((grade, plain)) => {
            let _ = writeln!(
                report,
                "Grading one correct submission of exercise01 (`cargo xtask grade SUB --exercise \
                 1`: a fresh copy, the walled build, the check of the compiled library, every \
                 test behind its sandbox with its judge, the leftover checks): **{}**; a plain \
                 `cargo test -p exercise01` of the same code after an edit: **{}**; ratio \
                 **{:.2}** (goal: at most 1.5).\n",
                secs(grade),
                secs(plain),
                grade.as_secs_f64() / plain.as_secs_f64().max(1e-9)
            );
        }
        Err(e) => {
            let _ = writeln!(report, "Grading overhead not measured: {e}\n");
            failures.push(format!("grading overhead: {e}"));
        }
    }
    let copies = if quick { 4 } else { 20 };
    match class(root, target, copies) {
        Ok((one, two)) => {
            let _ = writeln!(
                report,
                "A class of {copies} copies of that submission: `--jobs 1` **{}**, `--jobs 2` \
                 **{}**: {:.2}x faster with two jobs (goal: at least 1.6x on two cores).\n",
                secs(one),
                secs(two),
                one.as_secs_f64() / two.as_secs_f64().max(1e-9)
            );
        }
        Err(e) => {
            let _ = writeln!(report, "Class grading not measured: {e}\n");
            failures.push(format!("class grading: {e}"));
        }
    }
    failures
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn xtask(root: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap_or_else(|_| "xtask".into()));
    c.current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn submission(root: &Path, at: &Path) -> Result<(), String> {
    let src = at.join("exercises/exercise01/src");
    fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    for entry in fs::read_dir(root.join("solutions/exercise01/src")).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().is_file() {
            fs::copy(entry.path(), src.join(entry.file_name())).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn timed(mut cmd: Command, what: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if !status.success() {
        return Err(format!("{what} failed ({status})"));
    }
    Ok(started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn overhead(root: &Path, target: &Path, runs: usize) -> Result<(Duration, Duration), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sub = tmp.path().join("sub");
    submission(root, &sub)?;
    let grading = target.join("bench/grading");
    let grade = || {
        let mut c = xtask(root);
        c.arg("grade")
            .arg(&sub)
            .args(["--exercise", "1", "--format", "json", "--target-dir"])
            .arg(&grading);
        c
    };
    // A copy of the course with the solution in the starter's place, for the plain run.
    let plain_course = tmp.path().join("course");
    for dir in ["exercises", "tests", "ipclab", "xtask", ".cargo"] {
        copy_tree(&root.join(dir), &plain_course.join(dir)).map_err(|e| e.to_string())?;
    }
    for file in ["Cargo.toml", "Cargo.lock"] {
        fs::copy(root.join(file), plain_course.join(file)).map_err(|e| e.to_string())?;
    }
    let _ = fs::remove_dir_all(plain_course.join("exercises/exercise01/src"));
    submission(root, &plain_course)?;
    let lib = plain_course.join("exercises/exercise01/src/lib.rs");
    let plain = || {
        let mut text = fs::read_to_string(&lib).unwrap_or_default();
        text.push_str("\n// an edit\n");
        let _ = fs::write(&lib, text);
        let mut c = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
        c.args(["test", "-p", "exercise01", "--test", "exercise01"])
            .current_dir(&plain_course)
            .env("CARGO_TARGET_DIR", target.join("bench/plain"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // Warm both.
    timed(grade(), "grade")?;
    timed(plain(), "cargo test")?;
    let mut g = Vec::new();
    let mut p = Vec::new();
    for _ in 0..runs {
        g.push(timed(grade(), "grade")?);
        p.push(timed(plain(), "cargo test")?);
    }
    Ok((median(g), median(p)))
}

fn class(root: &Path, target: &Path, copies: usize) -> Result<(Duration, Duration), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let class = tmp.path().join("class");
    for i in 0..copies {
        submission(root, &class.join(format!("student{i:02}")))?;
    }
    let grading = target.join("bench/class");
    let run = |jobs: &str| {
        let mut c = xtask(root);
        c.args(["grade", "--exercise", "1", "--jobs", jobs, "--class"])
            .arg(&class)
            .arg("--out")
            .arg(tmp.path().join(format!("grades-{jobs}.csv")))
            .arg("--target-dir")
            .arg(&grading);
        c
    };
    // Warm the target directory and the job slots.
    timed(run("2"), "grade --class --jobs 2")?;
    let one = timed(run("1"), "grade --class --jobs 1")?;
    let two = timed(run("2"), "grade --class --jobs 2")?;
    Ok((one, two))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_name() == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
