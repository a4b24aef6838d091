//! `cargo ipclab bench N`: your exercise N raced against the reference, in the same run.
//!
//! The benchmark (`solutions/bench`, package `ipclab-bench`) is built twice in release mode: as
//! it is (the reference), and from a generated workspace in `target/ipclab/bench/workspace`
//! whose copy of its manifest takes `exerciseNN` from `exercises/` (your crate) and every other
//! exercise from `solutions/`. Two binaries, because two packages named `exerciseNN` cannot be in
//! one build. Both run `--only exerciseNN` in turns, a few rounds each, so that whatever else the
//! machine does hits both alike; the last round also counts system calls per message with strace
//! (when it is installed). The result is a ratio per row, best round against best round (other
//! work on the machine only ever slows a run), and a one-line verdict.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anstream::println;
use clap::Args;
use serde::Deserialize;

use crate::cli::{spinner, App, Failure};
use crate::render::{command, paint, BOLD, GOOD, WARN};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The exercise: `1`, `01` or `exercise01`.
    pub exercise: String,
    /// Runs of each binary, taken in turns (the best round of each is compared).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rounds: usize,
    /// Shorter measurements (noisier ratios).
    #[arg(long)]
    pub quick: bool,
}

/// One measurement cell of the bench's results.json (the fields read here).
#[derive(Debug, Clone, Deserialize)]
pub struct Cell {
    pub median: Option<f64>,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Throughput {
    pub mechanism: String,
    pub size: usize,
    pub one_cpu: Option<Cell>,
    pub two_cpus: Option<Cell>,
    /// The name of the raw mechanism's row this solution's row stands beside.
    #[serde(default)]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Latency {
    pub mechanism: String,
    pub one_cpu: Option<Cell>,
    pub two_cpus: Option<Cell>,
    #[serde(default)]
    pub raw: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Syscalls {
    pub mechanism: String,
    pub per_message: Vec<(String, f64)>,
    pub total_per_message: f64,
    pub error: Option<String>,
    /// What the kernel accounted to the same run without strace, per message.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Per message of a run on one CPU, from `getrusage`: times a side went to sleep waiting for the
/// other, and the CPU time in user code and in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Usage {
    pub sleeps: f64,
    pub user_us: f64,
    pub kernel_us: f64,
}

/// What the student's run does more of per message than the reference's, where the accounting
/// can tell (differences under a fifth or under 0.2 µs are within the scheduler tick's grain).
fn more_work(student: &Syscalls, reference: &Syscalls) -> Vec<String> {
    let (Some(s), Some(r)) = (student.usage, reference.usage) else {
        return Vec::new();
    };
    let clearly_more = |s: f64, r: f64| s - r >= 0.2 && s >= 1.2 * r;
    let mut more = Vec::new();
    if clearly_more(s.user_us, r.user_us) {
        more.push(format!(
            "{:.1} µs more of user-space CPU time (copies, allocation, checks)",
            s.user_us - r.user_us
        ));
    }
    if clearly_more(s.kernel_us, r.kernel_us) {
        more.push(format!(
            "{:.1} µs more of kernel time (larger copies, more waking)",
            s.kernel_us - r.kernel_us
        ));
    }
    if s.sleeps - r.sleeps >= 0.1 {
        more.push(format!(
            "{:.1} more sleeps (a side waiting for the other, then woken)",
            s.sleeps - r.sleeps
        ));
    }
    more
}

/// An `ipclab-bench --only` run.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    /// The raw mechanisms the solution rows stand beside (their `raw`), measured in the same run.
    #[serde(default)]
    pub throughput: Vec<Throughput>,
    #[serde(default)]
    pub latency: Vec<Latency>,
    pub solutions: Vec<Throughput>,
    pub solution_latency: Vec<Latency>,
    #[serde(default)]
    pub syscalls: Vec<Syscalls>,
}

/// One row of both runs: speeds (higher is faster: bytes per second, or round trips per second)
/// on one CPU and on two, for each round.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The row's key in `syscalls` (`throughput: NAME @ SIZE` or `latency: NAME`).
    pub key: String,
    /// What the student reads: `stream_through_child (64 KiB writes)`.
    pub label: String,
    /// What a system call count is per: `message`, `round trip`, `pipeline`.
    pub per: &'static str,
    /// The key of the raw mechanism's row (in [`raw_speeds`]) this row stands beside.
    pub raw: Option<String>,
    pub one: Vec<f64>,
    pub two: Vec<f64>,
}

/// The rows of one run as speeds (a failed or unverified cell is left out).
pub fn speeds(run: &Run, exercise: &str) -> Vec<Measured> {
    let speed = |c: &Option<Cell>, invert: bool| -> Option<f64> {
        let c = c.as_ref()?;
        let m = c
            .median
            .filter(|m| *m > 0.0 && c.verified && c.error.is_none())?;
        Some(if invert { 1.0 / m } else { m })
    };
    let short = |name: &str| {
        name.strip_prefix(exercise)
            .map_or(name, str::trim_start)
            .to_owned()
    };
    let throughput = run.solutions.iter().map(|r| Measured {
        key: format!("throughput: {} @ {}", r.mechanism, r.size),
        label: format!("{} ({} per write)", short(&r.mechanism), size(r.size)),
        per: "message",
        raw: r
            .raw
            .as_ref()
            .map(|raw| format!("throughput: {raw} @ {}", r.size)),
        one: speed(&r.one_cpu, false).into_iter().collect(),
        two: speed(&r.two_cpus, false).into_iter().collect(),
    });
    let latency = run.solution_latency.iter().map(|r| Measured {
        key: format!("latency: {}", r.mechanism),
        label: match short(&r.mechanism) {
            name if name.contains("round") => name,
            name => format!("{name} (time per exchange)"),
        },
        per: if r.mechanism.contains("pipeline") {
            "pipeline"
        } else {
            "round trip"
        },
        raw: r.raw.as_ref().map(|raw| format!("latency: {raw}")),
        one: speed(&r.one_cpu, true).into_iter().collect(),
        two: speed(&r.two_cpus, true).into_iter().collect(),
    });
    throughput.chain(latency).collect()
}

/// The raw mechanisms' rows of one run as speeds, keyed as [`Measured::raw`] names them.
pub fn raw_speeds(run: &Run) -> Vec<Measured> {
    let as_run = Run {
        throughput: Vec::new(),
        latency: Vec::new(),
        solutions: run.throughput.clone(),
        solution_latency: run.latency.clone(),
        syscalls: Vec::new(),
    };
    speeds(&as_run, "")
        .into_iter()
        .map(|mut m| {
            let name = m.key.split_once(": ").map_or(&*m.key, |(_, name)| name);
            m.label = name
                .rsplit_once(" @ ")
                .map_or(name, |(name, _)| name)
                .to_owned();
            m
        })
        .collect()
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// Adds `next`'s samples to `all`, row by row (rows matched by key).
pub fn gather(all: &mut Vec<Measured>, next: Vec<Measured>) {
    for row in next {
        match all.iter_mut().find(|r| r.key == row.key) {
            Some(r) => {
                r.one.extend(row.one);
                r.two.extend(row.two);
            }
            None => all.push(row),
        }
    }
}

/// The fastest of the rounds: whatever else the machine does only ever slows a run down.
pub fn best(samples: &[f64]) -> Option<f64> {
    samples.iter().copied().reduce(f64::max)
}

/// Student ÷ reference, best round against best round, as speeds: below 1, the student's code
/// is slower.
pub fn ratio(student: &[f64], reference: &[f64]) -> Option<f64> {
    Some(best(student)? / best(reference)?)
}

/// `3` and `2 read, 1 write`.
fn calls(s: &Syscalls) -> (String, String) {
    let each: Vec<String> = s
        .per_message
        .iter()
        .map(|(name, n)| format!("{} {name}", number(*n)))
        .collect();
    (number(s.total_per_message), each.join(", "))
}

/// 2 → `2`, 2.5 → `2.5`, 0.333 → `0.3`.
fn number(n: f64) -> String {
    let r = (n * 10.0).round() / 10.0;
    if (r - r.round()).abs() < 1e-9 {
        format!("{}", r.round() as i64)
    } else {
        format!("{r}")
    }
}

/// The one-line verdict of a row: `ratio` is student ÷ reference (the worse placement's, named
/// by `placement`); the system calls per message of both, when counted; `noise` how much the
/// reference's own rounds varied (fastest ÷ slowest; 1 on a quiet machine).
pub fn verdict(
    label: &str,
    per: &str,
    ratio: f64,
    placement: &str,
    student: Option<&Syscalls>,
    reference: Option<&Syscalls>,
    noise: f64,
) -> String {
    let head = format!("your {label} is {ratio:.2} of the reference{placement}");
    let counted = match (student, reference) {
        (Some(s), Some(r)) if s.error.is_none() && r.error.is_none() => Some((s, r)),
        _ => None,
    };
    let differ = counted.filter(|(s, r)| (s.total_per_message - r.total_per_message).abs() >= 0.5);
    let noisy = noise >= 1.2;
    let note = if noisy {
        format!(" (the reference itself varied ×{noise:.1} between rounds: a busy machine)")
    } else {
        String::new()
    };
    let line = match (ratio, differ, counted) {
        (r, _, _) if (0.95..1.05).contains(&r) => {
            return format!("{head}: as fast (within this machine's noise)")
        }
        // A difference of system calls is a fact whatever the noise: it is the first thing to look at.
        (r, Some((s, theirs)), _) if r < 1.0 => {
            let ((s, each_s), (r, each_r)) = (calls(s), calls(theirs));
            format!(
                "{head}: it makes {s} system calls per {per} ({each_s}) where the reference \
                 makes {r} ({each_r})"
            )
        }
        (r, _, _) if noisy && r > 1.0 / noise && r < noise => {
            return format!(
                "{head}: within the reference's own spread between rounds (×{noise:.1}), so this \
                 run cannot tell them apart; run it again when the machine is quieter"
            )
        }
        (r, _, _) if r >= 1.05 => format!("{head}: faster than the reference"),
        (_, None, Some((mine, theirs))) => {
            let (s, each) = calls(mine);
            let calls = if s == "1" {
                "system call"
            } else {
                "system calls"
            };
            match more_work(mine, theirs) {
                more if more.is_empty() => format!(
                    "{head}: the same {s} {calls} per {per} ({each}), so the time goes between \
                     them (copies, buffer sizes, wake-ups)"
                ),
                more => format!(
                    "{head}: the same {s} {calls} per {per} ({each}), but per {per} yours takes {}",
                    more.join(", ")
                ),
            }
        }
        _ => format!("{head}: slower"),
    };
    format!("{line}{note}")
}

/// The lines of the "beside the raw mechanism" table: for each row that names its raw
/// mechanism, yours ÷ raw and the reference ÷ raw, one CPU / two CPUs (`—` where a placement
/// was not measured).
pub fn beside_raw(theirs: &[Measured], ours: &[Measured], raw: &[Measured]) -> Vec<String> {
    let pair = |row: Option<&Measured>, base: &Measured| -> String {
        let cell = |a: Option<&Vec<f64>>, b: &[f64]| {
            a.and_then(|a| ratio(a, b))
                .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}"))
        };
        format!(
            "{} / {}",
            cell(row.map(|r| &r.one), &base.one),
            cell(row.map(|r| &r.two), &base.two)
        )
    };
    theirs
        .iter()
        .filter_map(|row| {
            let base = raw.iter().find(|b| Some(&b.key) == row.raw.as_ref())?;
            let mine = ours.iter().find(|r| r.key == row.key);
            Some(format!(
                "{:<58} {:>11} {:>11}\n    (raw: {})",
                row.label,
                pair(mine, base),
                pair(Some(row), base),
                base.label
            ))
        })
        .collect()
}

/// The manifest of the generated workspace: `solutions/Cargo.toml` with only the bench as
/// member and every relative path made absolute.
pub fn workspace_manifest(solutions_manifest: &str, solutions: &Path) -> String {
    let mut out = String::from(
        "# Generated by `cargo ipclab bench`: the reference benchmark built against your code.\n",
    );
    for line in solutions_manifest.lines() {
        if line.trim_start().starts_with("members") {
            out.push_str("members = [\"bench\"]\n");
        } else {
            out.push_str(&absolute_paths(line, solutions));
            out.push('\n');
        }
    }
    out
}

/// The bench's manifest with `exercise` taken from `student` and the others from `solutions`.
pub fn bench_manifest(
    bench_manifest: &str,
    solutions: &Path,
    exercise: &str,
    student: &Path,
) -> String {
    let mut out = String::new();
    for line in bench_manifest.lines() {
        let ours = line.trim_start().starts_with(&format!("{exercise} "))
            && line.contains(&format!("path = \"../{exercise}\""));
        if ours {
            out.push_str(&line.replace(
                &format!("path = \"../{exercise}\""),
                &format!("path = {:?}", student.display().to_string()),
            ));
        } else {
            out.push_str(&absolute_paths(line, &solutions.join("bench")));
        }
        out.push('\n');
    }
    out
}

/// `path = "../x"` → `path = "/abs/x"`, relative to `dir`.
fn absolute_paths(line: &str, dir: &Path) -> String {
    let Some(start) = line.find("path = \"../") else {
        return line.to_owned();
    };
    let rel_start = start + "path = \"".len();
    let Some(len) = line[rel_start..].find('"') else {
        return line.to_owned();
    };
    let rel = &line[rel_start..rel_start + len];
    let abs = normalise(&dir.join(rel));
    format!(
        "{}{}{}",
        &line[..rel_start],
        abs.display(),
        &line[rel_start + len..]
    )
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Writes the generated workspace under `dir`; returns its manifest.
pub fn generate(root: &Path, exercise: &str, dir: &Path) -> std::io::Result<PathBuf> {
    let solutions = root.join("solutions");
    let bench = dir.join("bench");
    std::fs::create_dir_all(&bench)?;
    let manifest = dir.join("Cargo.toml");
    std::fs::write(
        &manifest,
        workspace_manifest(
            &std::fs::read_to_string(solutions.join("Cargo.toml"))?,
            &solutions,
        ),
    )?;
    std::fs::write(
        bench.join("Cargo.toml"),
        bench_manifest(
            &std::fs::read_to_string(solutions.join("bench/Cargo.toml"))?,
            &solutions,
            exercise,
            &root.join("exercises").join(exercise),
        ),
    )?;
    // The same lock file: the same versions of every dependency as the reference.
    if let Ok(lock) = std::fs::read(solutions.join("Cargo.lock")) {
        std::fs::write(dir.join("Cargo.lock"), lock)?;
    }
    for part in ["src", "c", "build.rs"] {
        let link = bench.join(part);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(solutions.join("bench").join(part), &link)?;
    }
    Ok(manifest)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Builds the bench of `manifest` in release mode and copies its binary to `to`.
fn build(manifest: &Path, target: &Path, to: &Path, what: &str) -> Result<(), Failure> {
    let bar = spinner(format!(
        "building the benchmark against {what} (release mode)"
    ));
    let out = Command::new(cargo())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "ipclab-bench",
            "--manifest-path",
        ])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null())
        .output();
    bar.finish_and_clear();
    let out = out.map_err(|e| Failure::runtime(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        let errors = String::from_utf8_lossy(&out.stderr);
        return Err(Failure::runtime(format!(
            "the benchmark does not build against {what}: {}",
            crate::status::first_error(&errors)
        )));
    }
    std::fs::copy(target.join("release/ipclab-bench"), to).map_err(|e| {
        Failure::runtime(format!(
            "cannot copy the benchmark to {}: {e}",
            to.display()
        ))
    })?;
    Ok(())
}

/// The first failed cell of a run: `ROW: ERROR`.
fn first_error(run: &Run) -> Option<String> {
    let cells = run
        .solutions
        .iter()
        .flat_map(|r| [(&r.mechanism, &r.one_cpu), (&r.mechanism, &r.two_cpus)])
        .chain(
            run.solution_latency
                .iter()
                .flat_map(|r| [(&r.mechanism, &r.one_cpu), (&r.mechanism, &r.two_cpus)]),
        );
    cells.into_iter().find_map(|(name, cell)| {
        let cell = cell.as_ref()?;
        match (&cell.error, cell.verified) {
            (Some(e), _) => Some(format!("{name}: {e}")),
            (None, false) => Some(format!("{name}: a transfer arrived wrong")),
            _ => None,
        }
    })
}

/// How long one `--only` run may take (a few seconds, usually) before it is taken for a hang.
const MEASUREMENT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs one `--only` measurement; returns its results.
fn measure(
    binary: &Path,
    exercise: &str,
    out: &Path,
    quick: bool,
    count: bool,
) -> Result<Run, Failure> {
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", out.display())))?;
    let _ = std::fs::remove_file(out.join("results.json"));
    let log_path = out.join("stderr.txt");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", log_path.display())))?;
    let mut cmd = Command::new(binary);
    cmd.args(["--only", exercise, "--out"]).arg(out);
    if quick {
        cmd.arg("--quick");
    }
    if count {
        cmd.arg("--count-syscalls");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| Failure::runtime(format!("cannot run {}: {e}", binary.display())))?;
    // Polled, not waited for: a hang (a deadlock the graded tests did not provoke) must end.
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < MEASUREMENT_DEADLINE => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            _ => break None,
        }
    };
    // Whatever the run left behind (a child nobody waited for) goes with it.
    crate::reaper::kill_descendants();
    let Some(status) = status else {
        return Err(Failure::runtime(format!(
            "a measurement of {exercise} ({}) did not finish in {} s and was stopped: a hang \
             the graded tests do not provoke? (its output: {})",
            binary.display(),
            MEASUREMENT_DEADLINE.as_secs(),
            log_path.display()
        )));
    };
    let text = std::fs::read_to_string(out.join("results.json")).unwrap_or_default();
    let run = serde_json::from_str::<Run>(&text);
    match run {
        Ok(run) if status.success() => Ok(run),
        Ok(run) if first_error(&run).is_some() => Err(Failure::runtime(format!(
            "a measurement of {exercise} failed ({}): {}",
            binary.display(),
            first_error(&run).unwrap_or_default()
        ))),
        _ => {
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            let why = stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no results");
            Err(Failure::runtime(format!(
                "a measurement of {exercise} failed ({}): {why} (see {})",
                binary.display(),
                out.display()
            )))
        }
    }
}

pub fn bench(app: &App, args: BenchArgs) -> Result<ExitCode, Failure> {
    let exercise = app.exercise(&args.exercise)?;
    let number = app.info(&exercise).number;
    let record = app.run_with_message(
        &exercise,
        false,
        format!("{exercise}: does it pass its graded tests? (the race is only for code that does)"),
    )?;
    if !record.state().is_done() {
        let progress = match record.state().points() {
            Some((got, of)) => format!(" ({got} of {of} graded tests pass)"),
            None => String::new(),
        };
        return Err(Failure::runtime(format!(
            "{exercise} does not pass its graded tests yet{progress}: only correct code races the \
             reference (`cargo ipclab run {number}` shows what fails)"
        )));
    }
    let root = app.course().root.clone();
    let solutions = root.join("solutions");
    if !solutions.join("bench/Cargo.toml").is_file() {
        return Err(Failure::runtime(
            "this copy of the course comes without the reference solutions and their benchmark \
             (solutions/bench): there is nothing to race here",
        ));
    }
    let dir = crate::status::target_dir(app.course()).join("ipclab/bench");
    let workspace = dir.join("workspace");
    let manifest = generate(&root, &exercise, &workspace)
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", workspace.display())))?;
    // One target directory for both builds: the dependencies are compiled once.
    let target = solutions.join("target");
    let reference = dir.join("ipclab-bench-reference");
    let student = dir.join("ipclab-bench-yours");
    build(
        &solutions.join("Cargo.toml"),
        &target,
        &reference,
        "the reference",
    )?;
    build(&manifest, &target, &student, &format!("your {exercise}"))?;
    let strace = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let rounds = args.rounds.max(1);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_calls, mut their_calls) = (Vec::new(), Vec::new());
    // The raw mechanisms, measured by both binaries alike (the same code in each).
    let mut raw = Vec::new();
    for round in 0..rounds {
        let count = strace && round + 1 == rounds;
        for (name, binary, into, calls) in [
            ("the reference", &reference, &mut theirs, &mut their_calls),
            ("yours", &student, &mut ours, &mut our_calls),
        ] {
            let bar = spinner(format!(
                "round {} of {rounds}: {name}{}",
                round + 1,
                if count {
                    " (and its system calls, with strace)"
                } else {
                    ""
                }
            ));
            let out = dir.join(format!(
                "{}-{}",
                if name == "yours" {
                    "yours"
                } else {
                    "reference"
                },
                round + 1
            ));
            let run = measure(binary, &exercise, &out, args.quick, count);
            bar.finish_and_clear();
            let run = run?;
            gather(into, speeds(&run, &exercise));
            gather(&mut raw, raw_speeds(&run));
            if count {
                *calls = run.syscalls;
            }
        }
    }
    if theirs.is_empty() {
        println!("{exercise} has no transfer or round trip to measure: there is nothing to race.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} your {exercise} ÷ the reference, as speeds (above 1: yours is faster), the best of \
         {rounds} rounds each, taken in turns:",
        paint(BOLD, "bench")
    );
    println!("  {:<58} {:>8} {:>9}", "", "one CPU", "two CPUs");
    let mut verdicts = Vec::new();
    for row in &theirs {
        let mine = ours.iter().find(|r| r.key == row.key);
        let one = mine.and_then(|m| ratio(&m.one, &row.one));
        let two = mine.and_then(|m| ratio(&m.two, &row.two));
        let cell = |r: Option<f64>, had: bool| match r {
            Some(r) => format!("{r:.2}"),
            None if had => "failed".to_owned(),
            None => "—".to_owned(),
        };
        println!(
            "  {:<58} {:>8} {:>9}",
            row.label,
            cell(one, !row.one.is_empty()),
            cell(two, !row.two.is_empty())
        );
        let worse = match (one, two) {
            (Some(a), Some(b)) if b < a => Some((b, " on two CPUs")),
            (Some(a), _) => Some((a, if two.is_some() { " on one CPU" } else { "" })),
            (None, Some(b)) => Some((b, " on two CPUs")),
            (None, None) => None,
        };
        if let Some((r, placement)) = worse {
            let find = |all: &[Syscalls]| all.iter().find(|s| s.mechanism == row.key).cloned();
            let spread = |v: &[f64]| {
                let lo = v.iter().copied().fold(f64::MAX, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                if lo > 0.0 && hi > 0.0 {
                    hi / lo
                } else {
                    1.0
                }
            };
            let line = verdict(
                &row.label,
                row.per,
                r,
                placement,
                find(&our_calls).as_ref(),
                find(&their_calls).as_ref(),
                spread(&row.one).max(spread(&row.two)),
            );
            verdicts.push((r, line));
        }
    }
    let beside = beside_raw(&theirs, &ours, &raw);
    if !beside.is_empty() {
        println!();
        println!(
            "{}: yours and the reference ÷ the bare system calls in a loop (1.00: as fast as \
             the mechanism itself allows), one CPU / two CPUs:",
            paint(BOLD, "beside the raw mechanism")
        );
        println!("  {:<58} {:>11} {:>11}", "", "yours", "reference");
        for line in beside {
            println!("  {line}");
        }
    }
    println!();
    for (r, line) in verdicts {
        let mark = if r >= 0.95 {
            paint(GOOD, "✓")
        } else {
            paint(WARN, "·")
        };
        println!("{mark} {line}");
    }
    if !strace {
        println!("(strace is not installed: ratios only, no system calls counted)");
    }
    println!(
        "The raw results are in {}; {} again for a second opinion.",
        dir.display(),
        command(&format!("bench {number}"))
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(total: f64, each: &[(&str, f64)]) -> Syscalls {
        Syscalls {
            mechanism: "m".into(),
            per_message: each.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
            total_per_message: total,
            error: None,
            usage: None,
        }
    }

    #[test]
    fn the_verdict_names_the_system_calls_when_they_differ() {
        let line = verdict(
            "round_trip (one way) (64 KiB per write)",
            "message",
            0.62,
            "",
            Some(&calls(3.0, &[("read", 2.0), ("write", 1.0)])),
            Some(&calls(2.0, &[("read", 1.0), ("write", 1.0)])),
            1.0,
        );
        assert_eq!(
            line,
            "your round_trip (one way) (64 KiB per write) is 0.62 of the reference: it makes \
             3 system calls per message (2 read, 1 write) where the reference makes 2 (1 read, 1 write)"
        );
    }

    #[test]
    fn the_verdict_points_between_the_calls_when_they_are_the_same() {
        let same = calls(2.0, &[("read", 1.0), ("write", 1.0)]);
        let line = verdict(
            "x",
            "message",
            0.5,
            " on two CPUs",
            Some(&same),
            Some(&same),
            1.0,
        );
        assert_eq!(
            line,
            "your x is 0.50 of the reference on two CPUs: the same 2 system calls per message \
             (1 read, 1 write), so the time goes between them (copies, buffer sizes, wake-ups)"
        );
        let one = calls(1.0, &[("read", 1.0)]);
        assert!(
            verdict("x", "message", 0.5, "", Some(&one), Some(&one), 1.0)
                .contains("the same 1 system call per")
        );
        assert!(verdict("x", "message", 0.97, "", None, None, 1.0)
            .ends_with("as fast (within this machine's noise)"));
        assert!(verdict("x", "message", 1.2, "", None, None, 1.0)
            .ends_with("faster than the reference"));
        assert_eq!(
            verdict("x", "message", 0.5, "", None, None, 1.0),
            "your x is 0.50 of the reference: slower"
        );
    }

    #[test]
    fn with_the_same_calls_the_verdict_names_the_work_the_kernel_accounted() {
        let with = |user_us, kernel_us, sleeps| Syscalls {
            usage: Some(Usage {
                sleeps,
                user_us,
                kernel_us,
            }),
            ..calls(2.0, &[("msgsnd", 1.0), ("msgrcv", 1.0)])
        };
        assert_eq!(
            verdict(
                "x",
                "message",
                0.6,
                "",
                Some(&with(2.5, 4.0, 1.0)),
                Some(&with(0.5, 4.1, 0.8)),
                1.0
            ),
            "your x is 0.60 of the reference: the same 2 system calls per message (1 msgsnd, \
             1 msgrcv), but per message yours takes 2.0 µs more of user-space CPU time (copies, \
             allocation, checks), 0.2 more sleeps (a side waiting for the other, then woken)"
        );
        // Differences within the accounting's grain say nothing.
        assert!(verdict(
            "x",
            "message",
            0.6,
            "",
            Some(&with(0.6, 4.0, 0.8)),
            Some(&with(0.5, 3.9, 0.75)),
            1.0
        )
        .ends_with("so the time goes between them (copies, buffer sizes, wake-ups)"));
    }

    #[test]
    fn a_busy_machine_is_said_and_hides_no_difference_of_system_calls() {
        assert_eq!(
            verdict("x", "message", 1.28, "", None, None, 1.8),
            "your x is 1.28 of the reference: within the reference's own spread between rounds \
             (×1.8), so this run cannot tell them apart; run it again when the machine is quieter"
        );
        let line = verdict(
            "x",
            "round trip",
            0.73,
            "",
            Some(&calls(48.0, &[("read", 32.0), ("write", 16.0)])),
            Some(&calls(3.0, &[("read", 2.0), ("write", 1.0)])),
            2.0,
        );
        assert_eq!(
            line,
            "your x is 0.73 of the reference: it makes 48 system calls per round trip (32 read, \
             16 write) where the reference makes 3 (2 read, 1 write) (the reference itself \
             varied ×2.0 between rounds: a busy machine)"
        );
        assert!(verdict("x", "message", 2.5, "", None, None, 1.8).ends_with("faster than the reference (the reference itself varied ×1.8 between rounds: a busy machine)"));
    }

    #[test]
    fn ratios_are_of_speeds_and_latency_is_inverted() {
        let run: Run = serde_json::from_str(
            r#"{"solutions":[{"mechanism":"exercise01 stream_through_child","size":65536,
                "one_cpu":{"median":100.0,"verified":true,"error":null},"two_cpus":null}],
               "solution_latency":[{"mechanism":"exercise01 round_trip","one_cpu":
                {"median":0.5,"verified":true,"error":null},"two_cpus":
                {"median":0.1,"verified":false,"error":"broken"}}]}"#,
        )
        .unwrap();
        let rows = speeds(&run, "exercise01");
        assert_eq!(rows[0].label, "stream_through_child (64 KiB per write)");
        assert_eq!(
            rows[0].key,
            "throughput: exercise01 stream_through_child @ 65536"
        );
        assert_eq!(rows[0].one, [100.0]);
        assert_eq!(rows[1].key, "latency: exercise01 round_trip");
        assert_eq!(rows[1].one, [2.0]);
        assert!(
            rows[1].two.is_empty(),
            "an unverified cell is no measurement"
        );
        let mut all = rows.clone();
        gather(&mut all, rows);
        assert_eq!(all[0].one, [100.0, 100.0]);
        assert_eq!(ratio(&[1.0, 3.0, 2.0], &[4.0, 6.0]), Some(0.5));
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn the_raw_mechanism_stands_beside_both_sides() {
        let run: Run = serde_json::from_str(
            r#"{"throughput":[{"mechanism":"FIFO","size":4096,
                "one_cpu":{"median":200.0,"verified":true},"two_cpus":null}],
               "latency":[{"mechanism":"System V semaphores","one_cpu":
                {"median":0.5,"verified":true},"two_cpus":{"median":0.25,"verified":true}}],
               "solutions":[{"mechanism":"exercise02 send","size":4096,"raw":"FIFO",
                "one_cpu":{"median":100.0,"verified":true},"two_cpus":null}],
               "solution_latency":[{"mechanism":"exercise02 ping","raw":"System V semaphores",
                "one_cpu":{"median":1.0,"verified":true},"two_cpus":{"median":1.0,"verified":true}}]}"#,
        )
        .unwrap();
        let raw = raw_speeds(&run);
        assert_eq!(raw[0].key, "throughput: FIFO @ 4096");
        assert_eq!(raw[0].label, "FIFO");
        assert_eq!(raw[1].key, "latency: System V semaphores");
        let reference = speeds(&run, "exercise02");
        let mut yours = reference.clone();
        yours[0].one = vec![50.0];
        let lines = beside_raw(&reference, &yours, &raw);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("send (4 KiB per write)")
                && lines[0].contains("0.25 / —")
                && lines[0].contains("0.50 / —")
                && lines[0].ends_with("(raw: FIFO)"),
            "{}",
            lines[0]
        );
        // Latency as speeds: the raw round trip takes half (one CPU) and a quarter (two CPUs)
        // of the solution's.
        assert!(lines[1].contains("0.50 / 0.25"), "{}", lines[1]);
    }

    #[test]
    fn the_generated_manifests_take_only_this_exercise_from_the_student() {
        let solutions = Path::new("/course/solutions");
        let bench = "exercise01 = { path = \"../exercise01\" }\n\
                     exercise03 = { path = \"../exercise03\", optional = true }\n\
                     exercise04 = { path = \"../exercise04\", optional = true }\n";
        let out = bench_manifest(
            bench,
            solutions,
            "exercise03",
            Path::new("/course/exercises/exercise03"),
        );
        assert_eq!(
            out,
            "exercise01 = { path = \"/course/solutions/exercise01\" }\n\
             exercise03 = { path = \"/course/exercises/exercise03\", optional = true }\n\
             exercise04 = { path = \"/course/solutions/exercise04\", optional = true }\n"
        );
        let ws = workspace_manifest(
            "[workspace]\nmembers = [\"exercise*\", \"bench\"]\nipclab-support = { path = \"../tests/support\" }\n",
            solutions,
        );
        assert!(ws.contains("members = [\"bench\"]\n"), "{ws}");
        assert!(
            ws.contains("ipclab-support = { path = \"/course/tests/support\" }"),
            "{ws}"
        );
    }
}
