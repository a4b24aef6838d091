//! `cargo xtask mutants [exerciseNN …] [--report-only]`: mutation testing of the reference
//! solutions, each with its exercise's graded suite as the test.
//!
//! cargo-mutants changes one thing at a time in `solutions/exerciseNN/src` (a function that
//! returns `Ok(())` at once, a `<` turned into `<=`, a `!` removed) and runs the exercise's tests;
//! a change that no test notices (a *survivor*) is behaviour the suite does not check. The suites
//! live outside the solutions workspace, so cargo-mutants' own copy of the workspace would not
//! build: it runs `--in-place` on a scratch copy of `solutions/` and `tests/` instead.
//!
//! Results: a row per exercise in `tests/mutants/REPORT.md` (caught, missed, timeout, unviable,
//! the score with timeouts counted as caught, dated, with the commit and the machine), and the
//! survivors in `tests/mutants/survivors.md`, each with a verdict a maintainer fills in (the test
//! that now catches it, or why none should). Only the exercises measured are rewritten; the
//! verdicts of survivors that remain are kept. cargo-mutants' full output (a log and a diff per
//! mutant) stays in `target/mutants/exerciseNN/mutants.out`.
//!
//! It takes minutes per exercise (a build and a suite run per mutant), so it is a report run by
//! hand, never by `verify` or CI.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use ipclab::course::{normalize_exercise, Course};

use crate::leftovers::{self, Baseline};
use crate::scratch::{cell, ScratchTree, Stamp};

pub const USAGE: &str = "cargo xtask mutants [exerciseNN …] [--report-only]\n                                         \
mutation testing of the solutions (slow) into tests/mutants/;\n                                         \
--report-only rewrites the reports from the last run's target/mutants";

/// The version measured; installed into `target/tools` when missing.
const CARGO_MUTANTS_VERSION: &str = "27.1.0";
/// A mutant's suite run may take this many times the unmutated run before it counts as a
/// timeout: the machine is shared, and a busy minute must not turn into a verdict.
const TIMEOUT_MULTIPLIER: &str = "4";
/// …and never less than this many seconds.
const MINIMUM_TEST_TIMEOUT: &str = "180";

pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let course = Course {
        root: root.to_path_buf(),
    };
    let report_only = args.iter().any(|a| a == "--report-only");
    let names: Vec<&String> = args.iter().filter(|a| *a != "--report-only").collect();
    if names.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    }
    let chosen = match choose(&course, &names) {
        Ok(chosen) => chosen,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::from(2);
        }
    };
    let tool = if report_only {
        None
    } else {
        match ensure_cargo_mutants(root) {
            Ok(tool) => Some(tool),
            Err(e) => {
                eprintln!("xtask: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    leftovers::become_subreaper();
    let mut failed = false;
    for exercise in &chosen {
        let out = root.join("target/mutants").join(exercise);
        if let Some(tool) = &tool {
            if let Err(e) = run(root, tool, exercise, &out) {
                eprintln!("xtask: {exercise}: {e}");
                failed = true;
                continue;
            }
        }
        match write_reports(root, exercise, &out) {
            Ok(row) => eprintln!(
                "xtask: {exercise}: {} caught, {} missed, {} timeout, {} unviable: {}",
                row.counts.caught,
                row.counts.missed,
                row.counts.timeout,
                row.counts.unviable,
                row.counts.score()
            ),
            Err(e) => {
                eprintln!("xtask: {exercise}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The exercises named (all of them without names), as `exerciseNN`.
pub fn choose(course: &Course, names: &[&String]) -> Result<Vec<String>, String> {
    let all = course
        .exercises()
        .map_err(|e| format!("cannot list exercises/: {e}"))?;
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|arg| {
            normalize_exercise(arg)
                .filter(|n| all.contains(n))
                .ok_or_else(|| format!("no exercise {arg:?} (there are: {})", all.join(", ")))
        })
        .collect()
}

/// cargo-mutants of the pinned version: on PATH, in `target/tools`, or installed there now.
fn ensure_cargo_mutants(root: &Path) -> Result<PathBuf, String> {
    let local = crate::book::tools::bin_dir(root).join("cargo-mutants");
    for candidate in [PathBuf::from("cargo-mutants"), local.clone()] {
        let version = Command::new(&candidate)
            .args(["mutants", "--version"])
            .output();
        if matches!(&version, Ok(v) if String::from_utf8_lossy(&v.stdout).trim()
            == format!("cargo-mutants {CARGO_MUTANTS_VERSION}"))
        {
            return Ok(candidate);
        }
    }
    crate::book::tools::install(root, "cargo-mutants", CARGO_MUTANTS_VERSION, &[])?;
    Ok(local)
}

/// Runs cargo-mutants on one exercise's solution; its results land in `out/mutants.out`.
fn run(root: &Path, tool: &Path, exercise: &str, out: &Path) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let stamp = Stamp::now(root);
    fs::write(
        out.join("stamp.json"),
        serde_json::to_string_pretty(&stamp).expect("a stamp serializes"),
    )
    .map_err(|e| format!("cannot write the stamp: {e}"))?;
    let tree = ScratchTree::new(root, &format!("ipclab-mutants-{exercise}-"))?;
    let tmp = tree.path().join("tmp");
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let private_ipc = leftovers::private_ipc_namespace();
    let baseline = Baseline::take(private_ipc);
    eprintln!(
        "xtask: {exercise}: cargo-mutants in {} (a build and a suite run per mutant: minutes)",
        tree.path().display()
    );
    let started = Instant::now();
    let status = Command::new(tool)
        .arg("mutants")
        // The copy is ours to change; cargo-mutants' own copy would lose ../../tests.
        .arg("--in-place")
        .arg("--no-config")
        .arg("--dir")
        .arg(tree.solutions())
        .args(["--package", exercise])
        // The solution's own code, not the course's programs (tests/exerciseNN/bin) that the
        // package also builds.
        .args(["--file", &format!("{exercise}/src/**")])
        .args(["--timeout-multiplier", TIMEOUT_MULTIPLIER])
        .args(["--minimum-test-timeout", MINIMUM_TEST_TIMEOUT])
        .args(["--colors", "never"])
        .arg("--output")
        .arg(out)
        // Passed on to the test binaries: the ungraded bonus tests (`#[ignore]`d so that a
        // student's `cargo test` stays green without them) test the bonus code, which would
        // otherwise count as untested.
        .args(["--", "--", "--include-ignored"])
        // One target directory across runs: dependencies are built once (the copy's sources
        // are newer than anything in it, see ScratchTree).
        .env("CARGO_TARGET_DIR", root.join("target/mutants/target"))
        // insta compares, never writes.
        .env("CI", "true")
        .env("INSTA_UPDATE", "no")
        .env("TMPDIR", &tmp)
        .env(baseline.uid_env().0, baseline.uid_env().1)
        .status()
        .map_err(|e| format!("could not run {}: {e}", tool.display()))?;
    let left = baseline.left_behind(&tmp);
    if !left.is_empty() {
        eprintln!(
            "xtask: {exercise}: the mutants' runs left behind (removed): {}",
            left.join("; ")
        );
    }
    fs::write(
        out.join("took.txt"),
        format!("{}", started.elapsed().as_secs()),
    )
    .map_err(|e| format!("cannot write the duration: {e}"))?;
    // 0: all caught; 2: some missed; 3: some timed out. The rest means no measurement (4: the
    // unmutated suite failed) or an interrupted one, which write_reports marks as partial.
    match status.code() {
        Some(0 | 2 | 3) => Ok(()),
        Some(4) => Err(format!(
            "the suite fails on the unmutated solution: no measurement (see {}/mutants.out/log)",
            out.display()
        )),
        _ => {
            eprintln!(
                "xtask: {exercise}: cargo-mutants ended with {status}; reporting what it measured"
            );
            Ok(())
        }
    }
}

/// How the mutants of one exercise fared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Mutants generated.
    pub total: usize,
    pub caught: usize,
    pub missed: usize,
    pub timeout: usize,
    pub unviable: usize,
}

impl Counts {
    pub fn tested(&self) -> usize {
        self.caught + self.missed + self.timeout + self.unviable
    }

    /// (caught + timeout) / (caught + timeout + missed): unviable mutants do not compile and
    /// prove nothing either way; a timeout is a mutant the suite did not let pass.
    pub fn score(&self) -> String {
        let viable = self.caught + self.timeout + self.missed;
        if viable == 0 {
            return "n/a".into();
        }
        let percent = 100.0 * (self.caught + self.timeout) as f64 / viable as f64;
        format!("{percent:.0}%")
    }
}

/// cargo-mutants' results: the mutants of each outcome, one name a line
/// (`exercise01/src/lib.rs:42:9: replace read_all -> Result<usize> with Ok(0)`).
pub struct Outcomes {
    pub counts: Counts,
    pub missed: Vec<String>,
}

impl Outcomes {
    pub fn read(dir: &Path) -> Result<Outcomes, String> {
        let list = |name: &str| -> Result<Vec<String>, String> {
            let path = dir.join(name);
            match fs::read_to_string(&path) {
                Ok(text) => Ok(parse_list(&text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        };
        let mutants = fs::read_to_string(dir.join("mutants.json")).map_err(|e| {
            format!(
                "no results in {} ({e}): run `cargo xtask mutants` first",
                dir.display()
            )
        })?;
        let total = serde_json::from_str::<serde_json::Value>(&mutants)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .ok_or_else(|| format!("{}/mutants.json is not a list", dir.display()))?;
        let missed = list("missed.txt")?;
        Ok(Outcomes {
            counts: Counts {
                total,
                caught: list("caught.txt")?.len(),
                missed: missed.len(),
                timeout: list("timeout.txt")?.len(),
                unviable: list("unviable.txt")?.len(),
            },
            missed,
        })
    }
}

pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One exercise's line of REPORT.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub exercise: String,
    pub counts: Counts,
    pub stamp: Stamp,
    /// Minutes the run took.
    pub took: String,
}

const TABLE_HEAD: &str = "| exercise | mutants | caught | missed | timeout | unviable | score | measured | commit | machine | took |\n\
|---|---|---|---|---|---|---|---|---|---|---|";

impl Row {
    fn line(&self) -> String {
        let c = &self.counts;
        let mutants = if c.tested() < c.total {
            format!("{} (partial: {} tested)", c.total, c.tested())
        } else {
            c.total.to_string()
        };
        format!(
            "| {} | {mutants} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.exercise,
            c.caught,
            c.missed,
            c.timeout,
            c.unviable,
            c.score(),
            cell(&self.stamp.date),
            cell(&self.stamp.commit),
            cell(&self.stamp.machine),
            cell(&self.took),
        )
    }

    /// A row of the table as [`Row::line`] wrote it.
    pub fn parse(line: &str) -> Option<Row> {
        let cells: Vec<&str> = line
            .trim()
            .strip_prefix('|')?
            .strip_suffix('|')?
            .split(" | ")
            .map(str::trim)
            .collect();
        let [exercise, mutants, caught, missed, timeout, unviable, _score, date, commit, machine, took] =
            cells[..]
        else {
            return None;
        };
        if !exercise.starts_with("exercise") {
            return None;
        }
        let number = |s: &str| s.parse::<usize>().ok();
        Some(Row {
            exercise: exercise.to_owned(),
            counts: Counts {
                total: number(mutants.split_whitespace().next()?)?,
                caught: number(caught)?,
                missed: number(missed)?,
                timeout: number(timeout)?,
                unviable: number(unviable)?,
            },
            stamp: Stamp {
                date: date.to_owned(),
                commit: commit.to_owned(),
                machine: machine.to_owned(),
            },
            took: took.to_owned(),
        })
    }
}

fn report_text(rows: &BTreeMap<String, Row>, all: &[String]) -> String {
    let mut text = format!(
        "# Mutation testing of the reference solutions\n\n\
         Written by `cargo xtask mutants` (see CONTRIBUTING.md): cargo-mutants \
         {CARGO_MUTANTS_VERSION} on each reference solution (`solutions/exerciseNN/src`), with \
         the exercise's tests (its graded suite, `tests/exerciseNN/main.rs`, and the ungraded \
         bonus tests in it) as the test. \
         **Score** = (caught + timeout) / (caught + timeout + missed): a timeout is a mutant the \
         suite did not let pass; unviable mutants do not compile and count neither way. \
         Goal: at least 95% per exercise, and a verdict for every survivor in \
         [survivors.md](survivors.md) (the test that now catches it, or why none should).\n\n\
         Each row is the last measurement of that exercise (`cargo xtask mutants exerciseNN` \
         replaces its row): compare rows only with their commits in mind.\n\n{TABLE_HEAD}\n"
    );
    for row in rows.values() {
        text.push_str(&row.line());
        text.push('\n');
    }
    let unmeasured: Vec<&str> = all
        .iter()
        .filter(|e| !rows.contains_key(*e))
        .map(String::as_str)
        .collect();
    if !unmeasured.is_empty() {
        text.push_str(&format!("\nNot measured yet: {}.\n", unmeasured.join(", ")));
    }
    text
}

/// Rewrites this exercise's row of REPORT.md and its section of survivors.md from the results
/// in `out`.
fn write_reports(root: &Path, exercise: &str, out: &Path) -> Result<Row, String> {
    let outcomes = Outcomes::read(&out.join("mutants.out"))?;
    let stamp: Stamp = fs::read_to_string(out.join("stamp.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or_else(|| {
            format!(
                "no stamp in {}: run `cargo xtask mutants` first",
                out.display()
            )
        })?;
    let took = fs::read_to_string(out.join("took.txt"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or_else(|| "?".into(), |s| format!("{} min", s.div_ceil(60)));
    let row = Row {
        exercise: exercise.to_owned(),
        counts: outcomes.counts.clone(),
        stamp,
        took,
    };
    let dir = root.join("tests/mutants");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let report = dir.join("REPORT.md");
    let mut rows: BTreeMap<String, Row> = fs::read_to_string(&report)
        .unwrap_or_default()
        .lines()
        .filter_map(Row::parse)
        .map(|r| (r.exercise.clone(), r))
        .collect();
    rows.insert(exercise.to_owned(), row.clone());
    let all = Course {
        root: root.to_path_buf(),
    }
    .exercises()
    .unwrap_or_default();
    fs::write(&report, report_text(&rows, &all))
        .map_err(|e| format!("cannot write {}: {e}", report.display()))?;

    let survivors = dir.join("survivors.md");
    let old = fs::read_to_string(&survivors).unwrap_or_default();
    let text = survivors_text(&old, exercise, &row, &outcomes.missed);
    fs::write(&survivors, text)
        .map_err(|e| format!("cannot write {}: {e}", survivors.display()))?;
    Ok(row)
}

const SURVIVORS_HEAD: &str = "# Surviving mutants\n\n\
Written by `cargo xtask mutants`: for each exercise, the mutants of its last run that no test \
caught (cargo-mutants' name: file, line, column, what was replaced). Each has a verdict line for \
a maintainer to fill in:\n\n\
- `verdict: open`: not looked at yet;\n\
- `verdict: test <name> (tests/exerciseNN/main.rs)`: the test that now catches it (the next run \
drops it from this list);\n\
- `verdict: reason: <one line>`: why no test should catch it (an equivalent mutant, an \
unreachable error path).\n\n\
A rerun keeps the verdicts of the survivors that remain, matched by file and replacement \
(not by line, which moves).\n";

/// A survivor's name without its line and column, which move when the code above it changes.
pub fn survivor_key(name: &str) -> String {
    match name.split_once(": ") {
        Some((place, what)) => {
            let file = place.split(':').next().unwrap_or(place);
            format!("{file}: {what}")
        }
        None => name.to_owned(),
    }
}

/// survivors.md with `exercise`'s section rewritten for `missed`, keeping the verdicts already
/// given and every other exercise's section.
pub fn survivors_text(old: &str, exercise: &str, row: &Row, missed: &[String]) -> String {
    let mut sections = sections(old);
    let mut verdicts: BTreeMap<String, VecDeque<String>> = BTreeMap::new();
    if let Some(section) = sections.get(exercise) {
        let mut current: Option<String> = None;
        for line in section.lines() {
            if let Some(name) = line
                .strip_prefix("- `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                current = Some(survivor_key(name));
            } else if let (Some(key), Some(verdict)) =
                (&current, line.trim().strip_prefix("verdict: "))
            {
                verdicts
                    .entry(key.clone())
                    .or_default()
                    .push_back(verdict.to_owned());
                current = None;
            }
        }
    }
    let mut body = format!(
        "Measured {} at {} on {}: {} of {} viable mutants missed (score {}).\n\n",
        row.stamp.date,
        row.stamp.commit,
        row.stamp.machine,
        row.counts.missed,
        row.counts.caught + row.counts.missed + row.counts.timeout,
        row.counts.score()
    );
    if missed.is_empty() {
        body.push_str("No survivors.\n");
    }
    for name in missed {
        let verdict = verdicts
            .get_mut(&survivor_key(name))
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| "open".into());
        body.push_str(&format!("- `{name}`\n  verdict: {verdict}\n"));
    }
    sections.insert(exercise.to_owned(), body);
    let mut text = SURVIVORS_HEAD.to_owned();
    for (name, body) in &sections {
        text.push_str(&format!("\n## {name}\n\n{}", body.trim_end()));
        text.push('\n');
    }
    text
}

/// The `## exerciseNN` sections of a Markdown file, by name (their text without the heading).
pub fn sections(text: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            if let Some((n, b)) = current.take() {
                sections.insert(n, b);
            }
            current = Some((name.trim().to_owned(), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((n, b)) = current {
        sections.insert(n, b);
    }
    sections
        .into_iter()
        .map(|(n, b)| (n, b.trim().to_owned() + "\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            date: "2026-12-02 01:00 UTC".into(),
            commit: "abc1234567".into(),
            machine: "2 CPUs (Some CPU), Linux 6.18".into(),
        }
    }

    #[test]
    fn counts_score_timeouts_as_caught_and_ignore_unviable() {
        let c = Counts {
            total: 40,
            caught: 30,
            missed: 5,
            timeout: 5,
            unviable: 0,
        };
        assert_eq!(c.score(), "88%");
        let c = Counts { unviable: 100, ..c };
        assert_eq!(c.score(), "88%");
        assert_eq!(Counts::default().score(), "n/a");
    }

    #[test]
    fn outcomes_are_read_from_cargo_mutants_lists() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("mutants.json"), "[{}, {}, {}, {}, {}]").unwrap();
        fs::write(
            dir.path().join("caught.txt"),
            "exercise01/src/lib.rs:10:5: replace f -> usize with 0\n\
             exercise01/src/lib.rs:12:5: replace f -> usize with 1\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("missed.txt"),
            "exercise01/src/lib.rs:20:9: replace < with <= in g\n",
        )
        .unwrap();
        fs::write(dir.path().join("timeout.txt"), "").unwrap();
        let o = Outcomes::read(dir.path()).unwrap();
        assert_eq!(
            o.counts,
            Counts {
                total: 5,
                caught: 2,
                missed: 1,
                timeout: 0,
                unviable: 0
            }
        );
        assert_eq!(
            o.missed,
            ["exercise01/src/lib.rs:20:9: replace < with <= in g"]
        );
    }

    #[test]
    fn a_report_row_reads_back_as_written() {
        let row = Row {
            exercise: "exercise03".into(),
            counts: Counts {
                total: 50,
                caught: 40,
                missed: 3,
                timeout: 2,
                unviable: 1,
            },
            stamp: stamp(),
            took: "12 min".into(),
        };
        assert_eq!(Row::parse(&row.line()), Some(row.clone()));
        let partial = Row {
            counts: Counts {
                total: 60,
                ..row.counts.clone()
            },
            ..row
        };
        assert!(partial.line().contains("60 (partial: 46 tested)"));
        assert_eq!(Row::parse(&partial.line()), Some(partial));
        assert_eq!(Row::parse("|---|---|"), None);
    }

    #[test]
    fn survivors_keep_their_verdicts_when_lines_move() {
        let row = Row {
            exercise: "exercise01".into(),
            counts: Counts::default(),
            stamp: stamp(),
            took: "1 min".into(),
        };
        let first = survivors_text(
            "",
            "exercise01",
            &row,
            &[
                "exercise01/src/lib.rs:20:9: replace < with <= in g".into(),
                "exercise01/src/lib.rs:30:5: replace h with ()".into(),
            ],
        );
        assert!(first
            .contains("- `exercise01/src/lib.rs:20:9: replace < with <= in g`\n  verdict: open\n"));
        let edited = first.replace(
            "in g`\n  verdict: open",
            "in g`\n  verdict: reason: equivalent: the loop ends at the same index",
        );
        let other = survivors_text(&edited, "exercise03", &row, &[]);
        let second = survivors_text(
            &other,
            "exercise01",
            &row,
            &["exercise01/src/lib.rs:24:9: replace < with <= in g".into()],
        );
        assert!(second.contains(
            "- `exercise01/src/lib.rs:24:9: replace < with <= in g`\n  verdict: reason: equivalent: the loop ends at the same index\n"
        ));
        assert!(!second.contains("replace h with ()"));
        assert!(second.contains("## exercise03\n"));
        assert_eq!(sections(&second).len(), 2);
    }
}
