//! `cargo ipclab trace N [TEST]`: the subcommand, from its arguments to the two pictures.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anstream::{eprintln, print, println};
use clap::Args;

use super::run::{self, TraceError};
use super::view::View;
use super::{diagnose, svg, term, Options, Trace};
use crate::cli::{spinner, App, Failure};
use crate::course::Implementation;
use crate::render::{command, paint, BOLD, WARN};
use crate::status;

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The exercise: `1`, `01` or `exercise01`.
    #[arg(required_unless_present = "from")]
    pub exercise: Option<String>,
    /// The test (its full name, or a part of it that names one test); default: the first
    /// graded test that fails.
    pub test: Option<String>,
    /// Open the picture in the browser (with xdg-open).
    #[arg(long)]
    pub open: bool,
    /// Show the test harness's processes too (dimmed): normally only your code is shown.
    #[arg(long)]
    pub harness: bool,
    /// Also print every process's open descriptors at this time (milliseconds, as shown).
    #[arg(long, value_name = "MS")]
    pub at: Option<f64>,
    /// Trace the reference solution instead of your code.
    #[arg(long, hide = true)]
    pub solution: bool,
    /// Draw an existing strace output (`strace -f -tt -T -yy -o FILE`) instead of running a test.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Where to write the SVG (default: target/ipclab/trace/EXERCISE-TEST.svg).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl From<TraceError> for Failure {
    fn from(e: TraceError) -> Failure {
        Failure {
            message: e.0,
            code: 1,
        }
    }
}

pub fn trace(app: &App, args: TraceArgs) -> Result<ExitCode, Failure> {
    let (trace_file, title, default_svg) = match &args.from {
        Some(file) => {
            let title = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (file.clone(), title, file.with_extension("svg"))
        }
        None => record(app, &args)?,
    };
    let text = std::fs::read_to_string(&trace_file)
        .map_err(|e| Failure::runtime(format!("cannot read {}: {e}", trace_file.display())))?;
    let title = recorded_test(&text).unwrap_or(title);
    let trace = Trace::from_strace(
        &text,
        Options {
            first_is_harness: true,
        },
    )
    .map_err(|e| Failure::runtime(format!("{}: {e}", trace_file.display())))?;
    let findings = diagnose(&trace);
    let view = View::new(&trace, args.harness);
    print!("{}", term::render(&view, &findings));
    if let Some(ms) = args.at {
        println!();
        print!(
            "{}",
            term::tables(&view, (ms.max(0.0) * 1000.0) as u64, &[])
        );
    }
    let svg_path = args.output.clone().unwrap_or(default_svg);
    let document = svg::render(&view, &findings, &title);
    if let Some(dir) = svg_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    }
    ::svg::save(&svg_path, &document)
        .map_err(|e| Failure::runtime(format!("cannot write {}: {e}", svg_path.display())))?;
    println!();
    println!("{} {}", paint(BOLD, "Picture:"), svg_path.display());
    println!("{} {}", paint(BOLD, "strace output:"), trace_file.display());
    if args.open {
        open(&svg_path);
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds, picks the test and traces it; gives the trace file, a title and the SVG's path.
fn record(app: &App, args: &TraceArgs) -> Result<(PathBuf, String, PathBuf), Failure> {
    run::check_strace()?;
    let exercise = app.exercise(args.exercise.as_deref().unwrap_or_default())?;
    let implementation = if args.solution {
        Implementation::Solution
    } else {
        Implementation::Exercise
    };
    let course = app.course();
    let bar = spinner(format!("{exercise}: building the tests"));
    let binary = run::build_test_binary(course, &exercise, implementation);
    bar.finish_and_clear();
    let binary = binary?;
    let all = run::list_tests(&binary)?;
    let test = match &args.test {
        Some(wanted) => run::pick_test(&all, wanted)?,
        None => default_test(app, &exercise, &all, implementation)?,
    };
    let trace_file = run::trace_path(course, &exercise, &test, "strace");
    let bar = spinner(format!("{exercise}: running {test} under strace"));
    let traced = run::trace_test(
        &binary,
        &test,
        &course.exercise_dir(&exercise, implementation),
        &trace_file,
    );
    bar.finish_and_clear();
    let traced = traced?;
    // strace exits as the test binary did: libtest exits 0 when the test passed, 101 when not.
    match traced.status.map(|s| s.code()) {
        Some(Some(0)) => println!("{} {test} passes under strace.", paint(BOLD, "✓")),
        Some(Some(101)) => println!("{} {test} fails under strace.", paint(WARN, "✗")),
        None => println!(
            "{} {test} was stopped after {} s under strace.",
            paint(WARN, "✗"),
            run::RUN_DEADLINE.as_secs()
        ),
        Some(_) => println!(
            "{} {test} ended without a verdict under strace.",
            paint(WARN, "?")
        ),
    }
    println!();
    let svg = run::trace_path(course, &exercise, &test, "svg");
    Ok((trace_file, format!("{exercise}: {test}"), svg))
}

/// The first failing graded test, from the cached verdict or a fresh run; the first graded test
/// when every one passes.
fn default_test(
    app: &App,
    exercise: &str,
    all: &[String],
    implementation: Implementation,
) -> Result<String, Failure> {
    let first_graded = || {
        all.iter()
            .filter(|t| crate::suite::task_of(t).is_some())
            .min_by(|a, b| (crate::suite::task_of(a), *a).cmp(&(crate::suite::task_of(b), *b)))
            .cloned()
            .ok_or_else(|| Failure::runtime(format!("{exercise} has no graded tests to trace")))
    };
    if implementation == Implementation::Solution {
        return first_graded();
    }
    let record = app.run_with_spinner(exercise, false)?;
    match status::first_failure(record.tests()) {
        Some(failing) if all.contains(&failing.name) => {
            println!(
                "Tracing the first failing test: {}",
                paint(BOLD, &failing.name)
            );
            Ok(failing.name.clone())
        }
        _ => {
            let test = first_graded()?;
            println!(
                "Every graded test of {exercise} passes; tracing {} (name another: {}).",
                paint(BOLD, &test),
                command(&format!(
                    "trace {} TEST",
                    exercise.trim_start_matches("exercise")
                ))
            );
            Ok(test)
        }
    }
}

/// "exercise06: task4_…" from the trace's first line, the test binary's execve (its file is
/// `exerciseNN-HASH`, its first argument the test's name), when the trace is of a graded test.
pub fn recorded_test(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let call = &line[line.find("execve(\"")? + "execve(\"".len()..];
    let (path, rest) = call.split_once('"')?;
    let binary = path.rsplit('/').next()?;
    let (exercise, _hash) = binary.rsplit_once('-')?;
    // `["/…/exercise06-0c41…"..., "task4_…", "--exact", …]`: the quoted parts are the odd
    // pieces between quotes; a part strace cut short is followed by `...`.
    let pieces: Vec<&str> = rest.split_once('[')?.1.split('"').collect();
    let test = pieces.get(3)?;
    let whole = !test.is_empty() && !pieces.get(4)?.starts_with("...");
    (exercise.starts_with("exercise") && whole).then(|| format!("{exercise}: {test}"))
}

/// Opens `path` with xdg-open when there is one; says where the file is otherwise.
fn open(path: &Path) {
    let opened = Command::new("xdg-open")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match opened {
        Ok(status) if status.success() => {}
        Ok(_) | Err(_) => eprintln!(
            "ipclab: could not open the picture (no xdg-open here?): open {} in a browser",
            path.display()
        ),
    }
}
