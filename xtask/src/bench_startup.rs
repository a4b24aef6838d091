//! The first ten minutes, measured: how long a newcomer waits for `cargo ipclab`, and how the
//! edit-to-verdict loop of exercise01 compares with a bare crate of the same dependencies.
//!
//! * `cargo ipclab` from its start to its first output line and to the full list, cold (a fresh
//!   clone: no target directory, the registry already fetched) and warm; beside it, the cold
//!   build of the `ipclab` package alone, which the list cannot beat. Goals: first line ≤ 1 s;
//!   list ≤ that build + 2 s cold, ≤ 0.5 s warm.
//! * The loop: a one-line edit, then `cargo test -p exercise01`, against the same edit and
//!   `cargo test` in a crate with exercise01's code and dependencies but none of the course's
//!   machinery (no workspace, no support crate, one trivial test). Goal: ratio ≤ 1.0. Runs of the
//!   two alternate, so that a change of load hits both.
//!
//! Everything runs in a copy of the course made a git checkout (untouched starters are read from
//! git), under `<target>/bench/startup/`, so the working tree is never touched.
//!
//! `cargo xtask bench --startup` runs this part alone; `cargo xtask bench` includes it.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Timed warm starts, and timed loop edits of each crate.
const WARM_RUNS: usize = 5;
const LOOP_RUNS: usize = 5;

/// The report's section and what failed.
pub fn report(root: &Path, target: &Path) -> (String, Vec<String>) {
    let mut out = String::from("## The first ten minutes\n\n");
    let mut failures = Vec::new();
    match startup(root, target) {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            let _ = writeln!(out, "`cargo ipclab` not measured: {e}\n");
            failures.push(format!("cargo ipclab start-up: {e}"));
        }
    }
    match loop_ratio(root, target) {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            let _ = writeln!(out, "Loop ratio not measured: {e}\n");
            failures.push(format!("loop ratio: {e}"));
        }
    }
    (out, failures)
}

/// `cargo xtask bench --startup`: this section alone, printed.
pub fn main(root: &Path) -> std::process::ExitCode {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let (text, failures) = report(root, &target);
    println!("{text}");
    for f in &failures {
        eprintln!("xtask bench: FAILED {f}");
    }
    if failures.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// A fresh clone, as far as cargo can tell: the course's sources (no build output, no git
/// history) committed to a new repository.
fn fresh_clone(root: &Path, to: &Path) -> Result<(), String> {
    if to.exists() {
        fs::remove_dir_all(to).map_err(|e| format!("cannot clear {}: {e}", to.display()))?;
    }
    copy_sources(root, to).map_err(|e| format!("cannot copy the course: {e}"))?;
    for args in [
        &["init", "--quiet"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.org",
            "commit",
            "--quiet",
            "-m",
            "the course",
        ],
    ] {
        let ok = Command::new("git")
            .args(args)
            .current_dir(to)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("git {args:?} failed in {}", to.display()));
        }
    }
    Ok(())
}

fn copy_sources(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | ".git" | "build")) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_sources(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// One `cargo ipclab`: time to its first line (on either stream) and to its end.
struct Start {
    first_line: Duration,
    done: Duration,
    stdout: String,
}

fn cargo_ipclab(course: &Path, target: &Path) -> Result<Start, String> {
    let started = Instant::now();
    let mut child = cargo()
        .arg("ipclab")
        .current_dir(course)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for (stream, is_stdout) in [
        (
            Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            true,
        ),
        (Box::new(child.stderr.take().expect("piped")), false),
    ] {
        let tx = tx.clone();
        readers.push(thread::spawn(move || {
            let mut stream = stream;
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if buf[..n].contains(&b'\n') {
                    let _ = tx.send(Instant::now());
                }
                all.extend_from_slice(&buf[..n]);
            }
            (is_stdout, all)
        }));
    }
    drop(tx);
    let first = rx.recv().ok();
    let status = child.wait().map_err(|e| format!("cargo ipclab: {e}"))?;
    let done = started.elapsed();
    let mut stdout = String::new();
    let mut stderr = String::new();
    for reader in readers {
        let (is_stdout, bytes) = reader.join().map_err(|_| "a reader panicked")?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if is_stdout {
            stdout = text;
        } else {
            stderr = text;
        }
    }
    if !status.success() || !stdout.contains("progress") {
        return Err(format!("cargo ipclab failed ({status}):\n{stderr}{stdout}"));
    }
    Ok(Start {
        first_line: first.map_or(done, |t| t - started),
        done,
        stdout,
    })
}

fn startup(root: &Path, target: &Path) -> Result<String, String> {
    let base = target.join("bench/startup");
    let course = base.join("course");
    fresh_clone(root, &course)?;
    // The registry fetched (a newcomer's first command may download too; that is the network's
    // time, not ours).
    let fetched = cargo()
        .arg("fetch")
        .current_dir(&course)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !fetched {
        return Err("cargo fetch failed".into());
    }
    // The cold build of the tool alone, in a target directory of its own.
    let build_target = base.join("target-build-only");
    let _ = fs::remove_dir_all(&build_target);
    let started = Instant::now();
    let built = cargo()
        .args(["build", "--quiet", "--package", "ipclab", "--bin", "ipclab"])
        .current_dir(&course)
        .env("CARGO_TARGET_DIR", &build_target)
        .status()
        .is_ok_and(|s| s.success());
    let build = started.elapsed();
    let _ = fs::remove_dir_all(&build_target);
    if !built {
        return Err("cargo build -p ipclab failed".into());
    }
    let start_target = base.join("target");
    let _ = fs::remove_dir_all(&start_target);
    let cold = cargo_ipclab(&course, &start_target)?;
    let lines = cold
        .stdout
        .lines()
        .filter(|l| l.contains(" not started "))
        .count();
    let mut warm = Vec::new();
    for _ in 0..WARM_RUNS {
        warm.push(cargo_ipclab(&course, &start_target)?);
    }
    let warm_first: Vec<Duration> = warm.iter().map(|s| s.first_line).collect();
    let warm_done: Vec<Duration> = warm.iter().map(|s| s.done).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`cargo ipclab` in a fresh clone (no target directory; registry fetched), which lists \
         {lines} untouched exercises without running them:\n\n\
         | | first output line | full list | goal |\n|---|---:|---:|---|\n\
         | cold | {} | {} | first line ≤ 1 s; list ≤ build + 2 s = {} |\n\
         | warm (median of {WARM_RUNS}) | {} | {} | list ≤ 0.50 s |\n\n\
         The cold build of the `ipclab` package alone (`cargo build -p ipclab`, same machine, \
         own target directory) took {}.\n",
        secs(cold.first_line),
        secs(cold.done),
        secs(build + Duration::from_secs(2)),
        secs(median(&warm_first)),
        secs(median(&warm_done)),
        secs(build),
    );
    let _ = fs::remove_dir_all(&start_target);
    Ok(out)
}

/// The same one-line edit and test run in exercise01 (the course) and in a bare crate.
fn loop_ratio(root: &Path, target: &Path) -> Result<String, String> {
    let base = target.join("bench/startup");
    let course = base.join("course");
    if !course.is_dir() {
        fresh_clone(root, &course)?;
    }
    let bare = base.join("bare");
    make_bare_crate(root, &bare)?;
    let course_target = base.join("target-loop-course");
    let bare_target = base.join("target-loop-bare");
    let course_lib = course.join("exercises/exercise01/src/lib.rs");
    let bare_lib = bare.join("src/lib.rs");
    let mut course_times = Vec::new();
    let mut bare_times = Vec::new();
    let mut course_tests = Vec::new();
    let mut bare_tests = Vec::new();
    // Edit 0 warms both (and builds the dependencies once).
    for edit in 0..=LOOP_RUNS {
        let t = timed_edit(
            &course_lib,
            edit,
            cargo()
                .args(["test", "-p", "exercise01"])
                .current_dir(&course)
                .env("CARGO_TARGET_DIR", &course_target),
        )?;
        let b = timed_edit(
            &bare_lib,
            edit,
            cargo()
                .arg("test")
                .current_dir(&bare)
                .env("CARGO_TARGET_DIR", &bare_target),
        )?;
        if edit > 0 {
            course_times.push(t.0);
            bare_times.push(b.0);
            course_tests.push(t.1);
            bare_tests.push(b.1);
        }
    }
    let (c, b) = (median(&course_times), median(&bare_times));
    let (ct, bt) = (median(&course_tests), median(&bare_tests));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "The loop: a one-line edit of `exercises/exercise01/src/lib.rs`, then `cargo test -p \
         exercise01` (the whole graded suite, each test isolated), **{}**; the same edit and \
         `cargo test` in a bare crate with exercise01's code, dependencies and profile, one \
         trivial test and no course machinery: **{}**. Ratio **{:.2}** (goal ≤ 1.0; medians \
         of {LOOP_RUNS} alternating runs). Of these, the tests themselves ran {} in the course \
         (libtest's `finished in`) and {} in the bare crate; the rest is cargo and the rebuild \
         (the library, and the suite that depends on it): {} against {}.\n",
        secs(c),
        secs(b),
        c.as_secs_f64() / b.as_secs_f64().max(1e-9),
        secs(ct),
        secs(bt),
        secs(c.saturating_sub(ct)),
        secs(b.saturating_sub(bt)),
    );
    Ok(out)
}

/// The loop's wall time, and libtest's own time for the tests.
fn timed_edit(lib: &Path, edit: usize, cmd: &mut Command) -> Result<(Duration, Duration), String> {
    let text =
        fs::read_to_string(lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
    let original = text
        .split("\n// bench edit")
        .next()
        .unwrap_or(&text)
        .to_owned();
    fs::write(lib, format!("{original}\n// bench edit {edit}\n"))
        .map_err(|e| format!("cannot edit {}: {e}", lib.display()))?;
    let started = Instant::now();
    let output = cmd
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !stdout.contains("test result:") {
        return Err(format!(
            "no tests ran in {}:\n{}",
            lib.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let tests = ipclab::suite::parse_test_time(&stdout).unwrap_or_default();
    Ok((elapsed, tests))
}

/// exercise01's library and dependencies, the course's profile and lock file, one test.
fn make_bare_crate(root: &Path, to: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(to);
    let write = |rel: &str, text: &str| -> Result<(), String> {
        let path: PathBuf = to.join(rel);
        fs::create_dir_all(path.parent().expect("a parent"))
            .and_then(|()| fs::write(&path, text))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let lib = fs::read_to_string(root.join("exercises/exercise01/src/lib.rs"))
        .map_err(|e| format!("cannot read exercise01: {e}"))?;
    let lock = fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    write(
        "Cargo.toml",
        "[package]\nname = \"exercise01\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         publish = false\n\n[lib]\ntest = false\ndoctest = false\n\n[dependencies]\n\
         nix = { version = \"0.32\", features = [\"fs\", \"process\", \"signal\"] }\n\
         libc = \"0.2\"\nthiserror = \"2\"\n\n[dev-dependencies]\n\
         rstest = { version = \"0.29\", default-features = false }\n\
         insta = { version = \"1.49\", features = [\"filters\"] }\n\n\
         [profile.dev]\ndebug = 0\n\n[workspace]\n",
    )?;
    // The course's lock file: the same versions (cargo drops what this crate does not use).
    write("Cargo.lock", &lock)?;
    write("src/lib.rs", &lib)?;
    write(
        "tests/snapshots/bare__exit.snap",
        "---\nsource: tests/bare.rs\nexpression: x\n---\nExited(0)\n",
    )?;
    write(
        "tests/bare.rs",
        "#[rstest::rstest]\n#[case::zero(0)]\nfn links_the_library(#[case] code: i32) {\n    \
         insta::assert_snapshot!(\"exit\", format!(\"{:?}\", exercise01::ChildExit::Exited(code)));\n}\n",
    )?;
    Ok(())
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
