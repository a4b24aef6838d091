//! `cargo xtask variants [exerciseNN …] [--repeat]`: runs the corpus of classic bugs.
//!
//! Each classic bug is a patch against a reference solution,
//! `tests/variants/exerciseNN/<short-name>.patch`: header lines, a blank line, then a unified
//! diff made with `git diff` (paths `a/solutions/exerciseNN/src/…`), which `git apply` takes
//! whatever the header says:
//!
//! ```text
//! Bug: a read that gives up on EINTR instead of retrying
//! Test: task2_reads_survive_interrupting_signals
//! Message: Interrupted
//! Repeat: 50
//! ```
//!
//! `Test` is the graded test (a libtest filter) that must fail, `Message` a text its failure
//! output must contain (the message that names the bug), `Repeat` (optional) how many runs show
//! that a race is provoked with certainty. For each patch, on a scratch copy of `solutions/` and
//! `tests/`: apply it, build the suite once, run the test binary with the filter, and check that
//! it fails with the message. With `--repeat`, a variant runs `Repeat` times (every run must
//! catch it) and the unpatched reference runs each test as often (every run must pass);
//! without, each runs once. The account goes to `tests/variants/REPORT.md`, one section per
//! exercise measured (the others' sections are kept).
//!
//! A patch that no longer applies, does not compile or names a test that matches nothing is a
//! failure of the corpus, reported as such. Too slow for `verify` (a build per variant): it is a
//! report run by hand.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ipclab::course::Course;

use crate::leftovers::{self, Baseline};
use crate::scratch::{cell, ScratchTree, Stamp};

pub const USAGE: &str = "cargo xtask variants [exerciseNN …] [--repeat]\n                                         \
check that every classic bug of tests/variants/ fails its test with its message;\n                                         \
--repeat runs each `Repeat` times (and the reference as often)";

/// A single run of a test binary is ended after this long (each test has its own, shorter,
/// deadline inside the suite; this only guards against a harness that hangs).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// One patch's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub bug: String,
    pub test: String,
    pub message: String,
    pub repeat: Option<u32>,
}

/// The header of a variant patch: `Key: value` lines up to the first blank line (or the diff).
pub fn parse_header(text: &str) -> Result<Header, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with("diff --git") || line.starts_with("--- ") {
            break;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line without `Key: value`: {line:?}"))?;
        fields.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let mut take = |key: &str| {
        fields
            .remove(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("the header has no `{}:` line", capitalized(key)))
    };
    let bug = take("bug")?;
    let test = take("test")?;
    let message = take("message")?;
    let repeat = match fields.remove("repeat") {
        None => None,
        Some(r) => Some(
            r.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`Repeat: {r}` is not a positive number"))?,
        ),
    };
    if !text.contains("\ndiff --git ") && !text.contains("\n--- ") {
        return Err("no diff after the header".into());
    }
    Ok(Header {
        bug,
        test,
        message,
        repeat,
    })
}

fn capitalized(key: &str) -> String {
    let mut c = key.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

struct Variant {
    name: String,
    path: PathBuf,
    header: Result<Header, String>,
}

/// What one run of a test filter showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// Every test the filter chose passed.
    Passed,
    /// Some failed; the output holds the message wanted (when one was asked for).
    Failed { seen: String, has_message: bool },
    /// The filter chose no test.
    NoTest,
    /// The binary did not end within [`RUN_LIMIT`], or could not be run.
    Broken(String),
}

/// Judges a test binary's output: exit status and what libtest printed.
pub fn judge_output(success: bool, output: &str, message: Option<&str>) -> Run {
    let ran: usize = output
        .lines()
        .filter_map(|l| l.strip_prefix("running "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    if ran == 0 {
        return if success {
            Run::NoTest
        } else {
            Run::Broken(format!(
                "the test binary failed before any test: {}",
                first_lines(output)
            ))
        };
    }
    if success {
        return Run::Passed;
    }
    let has_message = message.is_some_and(|m| output.contains(m));
    let seen = message
        .filter(|_| has_message)
        .and_then(|m| output.lines().find(|l| l.contains(m)))
        .map(str::to_owned)
        .or_else(|| panic_message(output))
        .unwrap_or_else(|| format!("(no panic message; output ends: {})", last_lines(output)));
    Run::Failed {
        seen: seen.trim().to_owned(),
        has_message,
    }
}

/// The first line of the first failure in libtest's output: what follows the first
/// `---- NAME stdout ----` line (the suites print their own failure text there, without
/// `panicked at`), or else what follows the first `panicked at` line.
fn panic_message(output: &str) -> Option<String> {
    let after = |marker: &dyn Fn(&str) -> bool| {
        let mut lines = output.lines().skip_while(|l| !marker(l)).skip(1);
        lines
            .find(|l| !l.trim().is_empty())
            .map(|l| {
                if l.contains("panicked at") {
                    lines.find(|l| !l.trim().is_empty()).unwrap_or(l)
                } else {
                    l
                }
            })
            .map(|l| l.trim().to_owned())
    };
    after(&|l: &str| l.starts_with("---- ") && l.ends_with(" stdout ----"))
        .or_else(|| after(&|l: &str| l.contains("panicked at")))
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

fn first_lines(text: &str) -> String {
    text.lines().take(5).collect::<Vec<_>>().join(" / ")
}

/// The tally of one variant (or of the reference for one test).
#[derive(Debug, Clone, Default)]
struct Tally {
    runs: u32,
    /// Variant: failed with the message. Reference: passed.
    good: u32,
    /// The first run that was not good, described.
    first_bad: Option<String>,
    /// The failure message first seen (a variant's, with or without the message wanted).
    seen: Option<String>,
    /// How the runs ended: `passed`, `failed with the message`, `failed otherwise`, ….
    kinds: BTreeMap<&'static str, u32>,
}

impl Tally {
    fn all_good(&self) -> bool {
        self.runs > 0 && self.good == self.runs
    }

    /// `49 passed, 1 failed otherwise; first: run 3: …`.
    fn describe_bad(&self) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!(
            "{}; first: {}",
            kinds.join(", "),
            self.first_bad.as_deref().unwrap_or("no run")
        )
    }
}

pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let course = Course {
        root: root.to_path_buf(),
    };
    let repeat = args.iter().any(|a| a == "--repeat");
    let names: Vec<&String> = args.iter().filter(|a| *a != "--repeat").collect();
    if names.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    }
    let chosen = match crate::mutants::choose(&course, &names) {
        Ok(chosen) => chosen,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::from(2);
        }
    };
    leftovers::become_subreaper();
    let stamp = Stamp::now(root);
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut failures = 0;
    for exercise in &chosen {
        let variants = match list(root, exercise) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("xtask: {exercise}: {e}");
                failures += 1;
                continue;
            }
        };
        if variants.is_empty() {
            if !names.is_empty() {
                eprintln!("xtask: {exercise}: no variants in tests/variants/{exercise}/");
            }
            continue;
        }
        let (section, failed) = exercise_section(root, exercise, &variants, repeat, &stamp);
        failures += failed;
        sections.push((exercise.clone(), section));
    }
    if let Err(e) = write_report(root, &sections) {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "xtask: variants: {} exercises measured, {failures} problems; see tests/variants/REPORT.md",
        sections.len()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn list(root: &Path, exercise: &str) -> Result<Vec<Variant>, String> {
    let dir = root.join("tests/variants").join(exercise);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut variants = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "patch") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let header = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|t| parse_header(&t));
        variants.push(Variant { name, path, header });
    }
    variants.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(variants)
}

/// Runs one exercise's variants and its reference; returns the report section and the number
/// of problems.
fn exercise_section(
    root: &Path,
    exercise: &str,
    variants: &[Variant],
    repeat: bool,
    stamp: &Stamp,
) -> (String, usize) {
    let runs_of = |h: &Header| if repeat { h.repeat.unwrap_or(1) } else { 1 };
    let mut problems = 0;

    // The reference first: a test that fails without any patch proves nothing about a variant.
    let mut wanted: BTreeMap<String, u32> = BTreeMap::new();
    for h in variants.iter().filter_map(|v| v.header.as_ref().ok()) {
        let n = wanted.entry(h.test.clone()).or_default();
        *n = (*n).max(runs_of(h));
    }
    eprintln!("xtask: {exercise}: the reference solution");
    let mut reference: BTreeMap<String, Tally> = BTreeMap::new();
    match build_in_copy(root, exercise, None) {
        Ok((tree, exe)) => {
            for (test, runs) in &wanted {
                let tally = tally(&tree, exercise, &exe, test, *runs, None);
                if !tally.all_good() {
                    problems += 1;
                }
                reference.insert(test.clone(), tally);
            }
        }
        Err(e) => {
            problems += 1;
            for test in wanted.keys() {
                reference.insert(
                    test.clone(),
                    Tally {
                        first_bad: Some(e.clone()),
                        ..Tally::default()
                    },
                );
            }
        }
    }

    let mut rows = Vec::new();
    for v in variants {
        let header = match &v.header {
            Ok(h) => h,
            Err(e) => {
                problems += 1;
                rows.push(format!(
                    "| {} | | | **broken**: {} | | | |",
                    v.name,
                    cell(e)
                ));
                continue;
            }
        };
        eprintln!("xtask: {exercise}: variant {} ({})", v.name, header.bug);
        let (verdict, tally_text, seen) = match build_in_copy(root, exercise, Some(&v.path)) {
            Err(e) => (format!("**broken**: {e}"), String::new(), String::new()),
            Ok((tree, exe)) => {
                let t = tally(
                    &tree,
                    exercise,
                    &exe,
                    &header.test,
                    runs_of(header),
                    Some(&header.message),
                );
                let verdict = if t.all_good() {
                    "caught".to_owned()
                } else {
                    format!("**not caught** ({})", t.describe_bad())
                };
                let seen = t.seen.clone().unwrap_or_default();
                (verdict, format!("{}/{}", t.good, t.runs), seen)
            }
        };
        if verdict != "caught" {
            problems += 1;
        }
        let reference_text = reference
            .get(&header.test)
            .map(|r| format!("{}/{}", r.good, r.runs))
            .unwrap_or_default();
        rows.push(format!(
            "| {} | {} | `{}` | {} | {} | {} | {} |",
            v.name,
            cell(&header.bug),
            cell(&header.test),
            cell(&verdict),
            tally_text,
            reference_text,
            if seen.is_empty() {
                String::new()
            } else {
                format!("`{}`", cell(&seen).replace('`', "'"))
            }
        ));
    }

    let mut text = format!(
        "Measured {} at {} on {}; {}.\n\n\
         | variant | bug | test | verdict | caught | reference passed | message seen |\n\
         |---|---|---|---|---|---|---|\n",
        stamp.date,
        stamp.commit,
        stamp.machine,
        if repeat {
            "each variant run `Repeat` times (1 without), the reference as often per test"
        } else {
            "each variant and the reference run once (`--repeat` for the race tallies)"
        }
    );
    for row in rows {
        text.push_str(&row);
        text.push('\n');
    }
    let failing: Vec<String> = reference
        .iter()
        .filter(|(_, t)| !t.all_good())
        .map(|(test, t)| format!("- the reference fails `{test}`: {}\n", t.describe_bad()))
        .collect();
    if !failing.is_empty() {
        text.push_str("\n**The unpatched reference does not pass every test named:**\n\n");
        text.extend(failing);
    }
    (text, problems)
}

/// A scratch copy with `patch` applied and the exercise's suite built: the copy and the test
/// binary. The binary of one target directory is overwritten by the next build, so each
/// variant is run before the next is built.
fn build_in_copy(
    root: &Path,
    exercise: &str,
    patch: Option<&Path>,
) -> Result<(ScratchTree, PathBuf), String> {
    let tree = ScratchTree::new(root, &format!("ipclab-variant-{exercise}-"))?;
    if let Some(patch) = patch {
        let out = Command::new("git")
            .args(["apply", "--verbose"])
            .arg(patch)
            .current_dir(tree.path())
            .output()
            .map_err(|e| format!("could not run git apply: {e}"))?;
        if !out.status.success() {
            let errors = String::from_utf8_lossy(&out.stderr);
            let first = errors
                .lines()
                .find(|l| l.contains("patch failed") || l.contains("corrupt patch"))
                .or_else(|| errors.lines().find(|l| l.starts_with("error")))
                .unwrap_or("git apply failed");
            return Err(format!(
                "the patch no longer applies to the solution ({}): re-make it with `git diff` \
                 on the current solution (`git apply --check {}` shows where)",
                first.trim(),
                patch.strip_prefix(root).unwrap_or(patch).display()
            ));
        }
    }
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "test",
            "--package",
            exercise,
            "--test",
            exercise,
            "--no-run",
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(tree.solutions())
        .env("CARGO_TARGET_DIR", root.join("target/variants/target"))
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !out.status.success() {
        let errors = String::from_utf8_lossy(&out.stderr);
        let first = errors
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("cargo test --no-run failed");
        return Err(format!("does not compile: {first}"));
    }
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == exercise)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no test binary `{exercise}`"))?;
    Ok((tree, exe))
}

/// Runs `exe` with the filter `test` `runs` times. With `message` (a variant), a good run fails
/// with that message; without (the reference), a good run passes.
fn tally(
    tree: &ScratchTree,
    exercise: &str,
    exe: &Path,
    test: &str,
    runs: u32,
    message: Option<&str>,
) -> Tally {
    let mut t = Tally::default();
    for i in 0..runs {
        let run = run_once(tree, exercise, exe, test, message);
        t.runs += 1;
        let kind = match &run {
            Run::Passed => "passed",
            Run::Failed {
                has_message: true, ..
            } if message.is_some() => "failed with the message",
            Run::Failed { .. } if message.is_some() => "failed otherwise",
            Run::Failed { .. } => "failed",
            Run::NoTest => "matched no test",
            Run::Broken(_) => "broken",
        };
        *t.kinds.entry(kind).or_default() += 1;
        let bad = match (&run, message) {
            (Run::Passed, None) => None,
            (
                Run::Failed {
                    seen,
                    has_message: true,
                },
                Some(_),
            ) => {
                t.seen.get_or_insert_with(|| seen.clone());
                None
            }
            (Run::Failed { seen, .. }, Some(m)) => {
                t.seen.get_or_insert_with(|| seen.clone());
                Some(format!("failed without {m:?}"))
            }
            (Run::Passed, Some(_)) => Some("the test passed".to_owned()),
            (Run::Failed { seen, .. }, None) => Some(format!("failed: {seen}")),
            (Run::NoTest, _) => Some(format!("no test matches {test:?}")),
            (Run::Broken(e), _) => Some(e.clone()),
        };
        match bad {
            None => t.good += 1,
            Some(b) => {
                t.first_bad
                    .get_or_insert_with(|| format!("run {}: {b}", i + 1));
                // A filter that matches nothing will match nothing the next time either.
                if run == Run::NoTest {
                    break;
                }
            }
        }
        if runs > 1 && (i + 1) % 10 == 0 {
            eprintln!("xtask:   {test}: {} of {} runs good so far", t.good, t.runs);
        }
    }
    t
}

fn run_once(
    tree: &ScratchTree,
    exercise: &str,
    exe: &Path,
    test: &str,
    message: Option<&str>,
) -> Run {
    let tmp = match tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(tree.path())
    {
        Ok(t) => t,
        Err(e) => return Run::Broken(format!("no temporary directory: {e}")),
    };
    let private_ipc = leftovers::private_ipc_namespace();
    let baseline = Baseline::take(private_ipc);
    let (uid_key, uid_base) = baseline.uid_env();
    let child = Command::new(exe)
        .arg(test)
        // A patch may name an ungraded (bonus) test, which is opt-in (`#[ignore]`).
        .arg("--include-ignored")
        .current_dir(tree.solutions().join(exercise))
        .env("CI", "true")
        .env("INSTA_UPDATE", "no")
        .env("TMPDIR", tmp.path())
        .env(uid_key, uid_base)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Run::Broken(format!("could not run {}: {e}", exe.display())),
    };
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
    .collect();
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > RUN_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    let output: String = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let _ = baseline.left_behind(tmp.path());
    match status {
        None => Run::Broken(format!("still running after {RUN_LIMIT:?}, killed")),
        Some(status) => judge_output(status.success(), &output, message),
    }
}

const REPORT_HEAD: &str = "# The corpus of classic bugs\n\n\
Written by `cargo xtask variants` (see CONTRIBUTING.md). Each variant is a patch in \
`tests/variants/exerciseNN/` that puts one classic bug into the reference solution; its header \
names the graded test that must fail and the message the failure must show. **caught**: runs \
in which the test failed with that message; **reference passed**: runs in which the same test \
passed on the unpatched solution. A race-provoking test shows 50 of 50 for both \
(`cargo xtask variants --repeat`). Each section is the last run of that exercise.\n";

fn write_report(root: &Path, measured: &[(String, String)]) -> Result<(), String> {
    if measured.is_empty() {
        return Ok(());
    }
    let dir = root.join("tests/variants");
    let path = dir.join("REPORT.md");
    let mut sections = crate::mutants::sections(&fs::read_to_string(&path).unwrap_or_default());
    for (exercise, text) in measured {
        sections.insert(exercise.clone(), text.clone());
    }
    let mut text = REPORT_HEAD.to_owned();
    for (name, body) in &sections {
        text.push_str(&format!("\n## {name}\n\n{}\n", body.trim_end()));
    }
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "Bug: a read that gives up on EINTR\n\
Test: task2_reads_survive_interrupting_signals\n\
Message: Interrupted\n\
Repeat: 50\n\
\n\
diff --git a/solutions/exercise01/src/lib.rs b/solutions/exercise01/src/lib.rs\n\
--- a/solutions/exercise01/src/lib.rs\n\
+++ b/solutions/exercise01/src/lib.rs\n";

    #[test]
    fn a_header_is_read_up_to_the_blank_line() {
        assert_eq!(
            parse_header(PATCH),
            Ok(Header {
                bug: "a read that gives up on EINTR".into(),
                test: "task2_reads_survive_interrupting_signals".into(),
                message: "Interrupted".into(),
                repeat: Some(50),
            })
        );
        let no_repeat = PATCH.replace("Repeat: 50\n", "");
        assert_eq!(parse_header(&no_repeat).unwrap().repeat, None);
        assert!(parse_header(&PATCH.replace("Message: Interrupted\n", ""))
            .unwrap_err()
            .contains("Message:"));
        assert!(parse_header(&PATCH.replace("50", "many")).is_err());
        assert!(parse_header("Bug: b\nTest: t\nMessage: m\n\nno diff\n").is_err());
    }

    #[test]
    fn test_output_is_judged_by_status_message_and_count() {
        let failed =
            "running 1 test\ntest task2_x ... FAILED\n\nfailures:\n\n---- task2_x stdout ----\n\
thread 'task2_x' panicked at tests/exercise01/main.rs:10:5:\n\
the read gave up: Interrupted (EINTR) must be retried\n\ntest result: FAILED. 0 passed; 1 failed\n";
        assert_eq!(
            judge_output(false, failed, Some("must be retried")),
            Run::Failed {
                seen: "the read gave up: Interrupted (EINTR) must be retried".into(),
                has_message: true
            }
        );
        assert_eq!(
            judge_output(false, failed, Some("a zombie")),
            Run::Failed {
                seen: "the read gave up: Interrupted (EINTR) must be retried".into(),
                has_message: false
            }
        );
        assert_eq!(
            judge_output(true, "running 1 test\ntest task2_x ... ok\n", None),
            Run::Passed
        );
        assert_eq!(
            judge_output(true, "running 0 tests\n\ntest result: ok. 0 passed\n", None),
            Run::NoTest
        );
        assert!(matches!(
            judge_output(false, "error: cannot start\n", None),
            Run::Broken(_)
        ));
    }
}
