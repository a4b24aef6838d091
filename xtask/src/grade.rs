//! `cargo xtask grade`: grades students' submissions with the course's own suites.
//!
//! ```text
//! cargo xtask grade <submission> [--exercise N …] [--format text|json|gradescope|exercism|junit] [--out FILE]
//! cargo xtask grade --class <dir> [--exercise N …] [--out FILE.csv] [--reports DIR] [--format …]
//! ```
//!
//! A submission is a directory holding the student's `exercises/exerciseNN/` folders (a clone of
//! the course, or an unpacked upload; one wrapping folder is looked through). Only the student's
//! `exercises/exerciseNN/src/**` is taken (less `src/given.rs`, what the course gives: the
//! course's copy of it is used): the suites, the support crate, the manifests and
//! `Cargo.lock` come from this course. Each submission is graded in a fresh temporary copy of the
//! course with the student's sources in place, by `ipclab::suite::run` (the same run and the same
//! definition of passing as the student's `cargo test -p exerciseNN`), followed by the leftover
//! checks of `cargo xtask verify`. One point per graded test (`taskN_…`).
//!
//! Which tests exist is not taken from the student's run (whose output the student's code could
//! forge or cut short) but from a run of the untouched starter, made once per version of the
//! exercise and cached in the grading target directory. A graded test that the student's run did
//! not report scores 0; a result for a test the suite does not have is ignored, with a note.

mod inspect;
mod parallel;
pub(crate) mod report;
// Shared with `cargo ipclab`, which shows the same points.
pub(crate) use ipclab::rubric;
use ipclab::source;
pub mod walls;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ipclab::course::{normalize_exercise, Course, Implementation};
use ipclab::info::ExerciseInfo;
use ipclab::suite::{self, RunOptions, TestResult, Verdict as SuiteVerdict};

use crate::leftovers::{self, Baseline};
use report::{ExerciseReport, Outcome, Report, Sources, Verdict, Visibility};

pub const USAGE: &str = "cargo xtask grade <submission> [--exercise N …] [--format text|json|gradescope|exercism] [--out FILE]\n       \
     cargo xtask grade --class <dir> [--exercise N …] [--out FILE.csv] [--reports DIR] [--format …]";

const HELP: &str = "\
Grades submissions with the course's own suites: one point per graded test (taskN_…).

  cargo xtask grade <submission> [options]     one submission: a directory with exercises/exerciseNN/
  cargo xtask grade --class <dir> [options]    every subdirectory of <dir> is one submission;
                                               writes a CSV: student,exercise01,…,total

Options:
  --exercise N        grade exercise N only (repeatable; default: every exercise of the course)
  --format F          text (default), json, gradescope (results.json), exercism (results.json v2),
                      junit (JUnit XML: GitLab, Jenkins)
  --out FILE          write the report (or, with --class, the CSV) to FILE instead of stdout
  --reports DIR       with --class: also write each student's report, in --format, to DIR
  --visibility V      Gradescope visibility: visible (default), hidden, after_due_date, after_published
  --target-dir DIR    where the submissions are built (default: $CARGO_TARGET_DIR/grading, else
                      target/grading); kept between runs so that dependencies are built once
  --deadline SECS     kill a whole suite run after SECS (default 900; each test has its own deadline)
  --jobs N            with --class: grade N submissions at once, each in a target directory of its
                      own (seeded with the dependencies built once), each in a grader process of
                      its own

Only exercises/exerciseNN/src/** is taken from a submission (but src/given.rs, what the course gives,
is the course's); everything else comes from the course.
IPCLAB_DEADLINE_SCALE=3 stretches every test's deadline (slow or loaded graders).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Gradescope,
    Exercism,
    Junit,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Text => "txt",
            Format::Junit => "xml",
            _ => "json",
        }
    }
}

#[derive(Debug)]
struct Options {
    submission: Option<PathBuf>,
    class: Option<PathBuf>,
    exercises: Vec<String>,
    format: Format,
    out: Option<PathBuf>,
    reports: Option<PathBuf>,
    visibility: Visibility,
    target_dir: Option<PathBuf>,
    deadline: Duration,
    jobs: usize,
}

fn parse_args(args: &[String], all: &[String]) -> Result<Options, String> {
    let mut o = Options {
        submission: None,
        class: None,
        exercises: Vec::new(),
        format: Format::Text,
        out: None,
        reports: None,
        visibility: Visibility::Visible,
        target_dir: None,
        deadline: RunOptions::default().deadline,
        jobs: 1,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--exercise" | "-e" => {
                let v = value()?;
                for one in v.split(',') {
                    match normalize_exercise(one).filter(|n| all.contains(n)) {
                        Some(name) if !o.exercises.contains(&name) => o.exercises.push(name),
                        Some(_) => {}
                        None => {
                            return Err(format!(
                                "no exercise {one:?} (there are: {})",
                                all.join(", ")
                            ))
                        }
                    }
                }
            }
            "--format" | "-f" => {
                o.format = match value()?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    "gradescope" => Format::Gradescope,
                    "exercism" => Format::Exercism,
                    "junit" => Format::Junit,
                    other => {
                        return Err(format!(
                            "unknown format {other:?}: text, json, gradescope or exercism"
                        ))
                    }
                }
            }
            "--out" | "-o" => o.out = Some(value()?.into()),
            "--reports" => o.reports = Some(value()?.into()),
            "--class" => o.class = Some(value()?.into()),
            "--target-dir" => o.target_dir = Some(value()?.into()),
            "--visibility" => {
                let v = value()?;
                o.visibility = Visibility::parse(&v).ok_or_else(|| {
                    format!(
                        "unknown visibility {v:?}: visible, hidden, after_due_date or after_published"
                    )
                })?;
            }
            "--jobs" | "-j" => {
                let v = value()?;
                o.jobs = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--jobs takes a positive number, not {v:?}"))?;
            }
            "--deadline" => {
                let v = value()?;
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("--deadline takes whole seconds, not {v:?}"))?;
                o.deadline = Duration::from_secs(secs);
            }
            _ if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ => {
                if o.submission.is_some() {
                    return Err(format!(
                        "one submission at a time (got {arg:?} too); use --class <dir> for several"
                    ));
                }
                o.submission = Some(arg.into());
            }
        }
    }
    match (&o.submission, &o.class) {
        (Some(_), Some(_)) => Err("give a submission or --class <dir>, not both".into()),
        (None, None) => Err("which submission? (or --class <dir>)".into()),
        _ if o.reports.is_some() && o.class.is_none() => {
            Err("--reports goes with --class (for one submission, use --out)".into())
        }
        _ if o.jobs > 1 && o.class.is_none() => Err("--jobs goes with --class".into()),
        _ => Ok(o),
    }
}

/// `cargo xtask grade …`.
pub fn main(course: Course, args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let all = match course.exercises() {
        Ok(all) => all,
        Err(e) => {
            eprintln!("xtask grade: cannot list the course's exercises/: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = match parse_args(args, &all) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask grade: {e}\nusage: {USAGE}\n(cargo xtask grade --help for more)");
            return ExitCode::from(2);
        }
    };
    let exercises = if options.exercises.is_empty() {
        all
    } else {
        options.exercises.clone()
    };
    let target_dir = options.target_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| course.root.join("target"))
            .join("grading")
    });
    leftovers::become_subreaper();
    // Every run of this grader gets an IPC namespace of its own where allowed (root), so that
    // leftovers are the run's own and nothing of other programs is ever removed.
    let private_ipc = leftovers::private_ipc_namespace();
    let mut grader = Grader {
        private_ipc,
        course,
        exercises,
        target_dir,
        deadline: options.deadline,
        expected: HashMap::new(),
    };
    match &options.class {
        Some(dir) => grade_class(&mut grader, dir, &options),
        None => {
            let submission = options
                .submission
                .as_deref()
                .expect("checked by parse_args");
            let label = submission.display().to_string();
            let result = grader.grade(submission, &label);
            let (text, code) = match result {
                Ok(report) => (render(&report, &options), ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("xtask grade: {e}");
                    (
                        render_failure(&label, &e, options.format),
                        ExitCode::FAILURE,
                    )
                }
            };
            if let Err(e) = write_out(options.out.as_deref(), &text) {
                eprintln!("xtask grade: {e}");
                return ExitCode::FAILURE;
            }
            code
        }
    }
}

fn render(report: &Report, options: &Options) -> String {
    match options.format {
        Format::Text => report::text(report),
        Format::Json => report::json(report),
        Format::Gradescope => to_json(&report::gradescope(report, options.visibility)),
        Format::Exercism => to_json(&report::exercism(report)),
        Format::Junit => report::junit(report),
    }
}

/// A submission that could not be graded at all still gets a report in the asked-for format, so
/// that Gradescope or Exercism show the student why.
fn render_failure(label: &str, error: &str, format: Format) -> String {
    let message = format!("Could not grade {label}: {error}");
    match format {
        Format::Text => format!("{message}\n"),
        Format::Json => to_json(&serde_json::json!({ "submission": label, "error": error })),
        Format::Gradescope => to_json(&serde_json::json!({
            "score": 0.0,
            "output": message,
            "visibility": "visible",
            "stdout_visibility": "visible",
            "tests": [],
        })),
        Format::Exercism => to_json(&serde_json::json!({
            "version": 2,
            "status": "error",
            "message": message,
            "tests": [],
        })),
        Format::Junit => report::junit_error(label, &message),
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).expect("reports always serialise") + "\n"
}

fn write_out(out: Option<&Path>, text: &str) -> Result<(), String> {
    match out {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
    }
}

fn grade_class(grader: &mut Grader, dir: &Path, options: &Options) -> ExitCode {
    let mut students: Vec<(String, PathBuf)> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .filter(|(name, _)| !name.starts_with('.'))
            .collect(),
        Err(e) => {
            eprintln!(
                "xtask grade: cannot read the class directory {}: {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    students.sort();
    if students.is_empty() {
        eprintln!(
            "xtask grade: {} has no subdirectories (one per student)",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let mut csv = vec![report::csv_header(&grader.exercises)];
    let mut failures = 0;
    let total = students.len();
    let mut results = if options.jobs > 1 {
        match parallel::grade_all(grader, &students, options) {
            Ok(r) => Some(r.into_iter()),
            Err(e) => {
                eprintln!("xtask grade: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    for (i, (student, path)) in students.iter().enumerate() {
        let started = Instant::now();
        let result = match results.as_mut().and_then(Iterator::next) {
            Some(r) => r,
            None => grader.grade(path, student),
        };
        let line = match &result {
            Ok(r) => {
                let parts: Vec<String> = r
                    .exercises
                    .iter()
                    .map(|e| {
                        let how = match (e.outcome, e.sources) {
                            (Outcome::BuildFailed, _) => " (does not compile)",
                            (Outcome::TimedOut, _) => " (timed out)",
                            (_, Sources::Missing) => " (missing)",
                            (_, Sources::Untouched) => " (untouched)",
                            _ => "",
                        };
                        format!("{} {}/{} tests{how}", e.exercise, e.score, e.max_score)
                    })
                    .collect();
                format!(
                    "{}; total {}/{} ({:.1} s)",
                    parts.join(", "),
                    r.score,
                    r.max_score,
                    if options.jobs > 1 {
                        r.seconds
                    } else {
                        started.elapsed().as_secs_f64()
                    }
                )
            }
            Err(e) => {
                failures += 1;
                format!("NOT GRADED: {e}")
            }
        };
        eprintln!("[{}/{total}] {student}: {line}", i + 1);
        csv.push(report::csv_line(
            student,
            result.as_ref().ok(),
            &grader.exercises,
        ));
        if let Some(reports) = &options.reports {
            let text = match &result {
                Ok(r) => render(r, options),
                Err(e) => render_failure(student, e, options.format),
            };
            let file = reports.join(format!("{student}.{}", options.format.extension()));
            if let Err(e) = write_out(Some(&file), &text) {
                eprintln!("xtask grade: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = write_out(options.out.as_deref(), &(csv.join("\n") + "\n")) {
        eprintln!("xtask grade: {e}");
        return ExitCode::FAILURE;
    }
    if failures > 0 {
        eprintln!("xtask grade: {failures} of {total} submissions could not be graded (empty cells in the CSV)");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

struct Grader {
    private_ipc: bool,
    course: Course,
    exercises: Vec<String>,
    target_dir: PathBuf,
    deadline: Duration,
    /// Per exercise: the graded tests, from a run of the untouched starter.
    expected: HashMap<String, Vec<TestResult>>,
}

impl Grader {
    fn grade(&mut self, submission: &Path, label: &str) -> Result<Report, String> {
        let started = Instant::now();
        let student = find_exercises_dir(submission)?;
        let mut exercises = Vec::new();
        for exercise in self.exercises.clone() {
            // A fresh copy of the pristine course for every exercise: nothing an earlier
            // exercise's build or tests did can reach this one (and the test processes, behind
            // their walls, cannot write the copy at all).
            let work = tempfile::Builder::new()
                .prefix("ipclab-grade-")
                .tempdir()
                .map_err(|e| format!("no temporary directory: {e}"))?;
            copy_course(&self.course.root, work.path())
                .map_err(|e| format!("cannot copy the course to {}: {e}", work.path().display()))?;
            let copy = Course {
                root: work.path().to_path_buf(),
            };
            exercises.push(self.grade_exercise(&copy, exercise.as_str(), &student)?);
        }
        Ok(Report::new(
            label,
            exercises,
            started.elapsed().as_secs_f64(),
        ))
    }

    fn grade_exercise(
        &mut self,
        copy: &Course,
        exercise: &str,
        student: &Path,
    ) -> Result<ExerciseReport, String> {
        let started = Instant::now();
        let info = ExerciseInfo::load(&self.course, exercise);
        let suite_source = fs::read_to_string(
            self.course
                .root
                .join("tests")
                .join(exercise)
                .join("main.rs"),
        )
        .unwrap_or_default();
        let suite_tests = source::tests_in(&suite_source);
        // Before the student's sources go in: the copy still holds the starter.
        let expected = self.expected(copy, exercise)?;

        let starter_src = self
            .course
            .exercise_dir(exercise, Implementation::Exercise)
            .join("src");
        let student_src = student.join(exercise).join("src");
        let sources = if !student_src.is_dir() {
            Sources::Missing
        } else if same_tree(&student_src, &starter_src) {
            Sources::Untouched
        } else {
            Sources::Submitted
        };
        let mut notes = Vec::new();
        let (outcome, message, verdicts) = if sources != Sources::Submitted {
            // The same sources as the starter give the starter's results: no need to run them.
            let verdicts = expected
                .iter()
                .map(|t| Verdict {
                    name: t.name.clone(),
                    task: t.task.unwrap_or(0),
                    passed: t.passed,
                    message: t.message.clone(),
                })
                .collect();
            (Outcome::Ran, None, verdicts)
        } else {
            let target_src = copy
                .exercise_dir(exercise, Implementation::Exercise)
                .join("src");
            // What the course gives (`src/given.rs`: types, errors, helpers that the suite
            // relies on, "do not change") is graded as the course has it, like the suites.
            let given = fs::read(target_src.join(GIVEN)).ok();
            fs::remove_dir_all(&target_src)
                .map_err(|e| format!("cannot clear {}: {e}", target_src.display()))?;
            let skipped = copy_student_tree(&student_src, &target_src)
                .map_err(|e| format!("cannot copy {}: {e}", student_src.display()))?;
            for s in skipped {
                notes.push(format!("{s} was not taken (only regular files are)"));
            }
            if let Some(given) = given {
                let theirs = target_src.join(GIVEN);
                match fs::read(&theirs) {
                    Ok(bytes) if bytes == given => {}
                    // Missing (an upload of lib.rs alone): nothing to say.
                    Err(_) => {}
                    Ok(_) => notes.push(format!(
                        "src/{GIVEN} differs from the course's: graded with the course's copy \
                         (it is given, not to be changed)"
                    )),
                }
                fs::write(&theirs, &given)
                    .map_err(|e| format!("cannot write {}: {e}", theirs.display()))?;
            }
            notes.extend(suspicious(&target_src));
            let build_tmp = tempfile::Builder::new()
                .prefix("ipclab-grade-build-")
                .tempdir()
                .map_err(|e| format!("no temporary directory: {e}"))?;
            let built = self.build_walled(copy, exercise, build_tmp.path());
            let outside = match &built {
                Ok((rlib, _)) => inspect::code_outside_calls(rlib).unwrap_or_else(|e| vec![e]),
                Err(_) => Vec::new(),
            };
            if let Err(errors) = built {
                // It does not compile behind the walls; whether it would outside them does not
                // matter (that is how a submission would reach the solutions).
                let clean = |m: &str| m.replace(&format!("{}/", copy.root.display()), "");
                judge(
                    &expected,
                    SuiteVerdict::BuildFailed { errors },
                    &mut notes,
                    clean,
                )
            } else if outside.is_empty() {
                let run = self.run(copy, exercise, &mut notes, true)?;
                let clean = |m: &str| m.replace(&format!("{}/", copy.root.display()), "");
                let verdict = match &built {
                    Ok((_, fresh)) if !fresh.still() => SuiteVerdict::BuildFailed {
                        errors: "error: the suite was rebuilt outside the build's walls, so the \
                                 grade could not be trusted (tell the course's maintainers)"
                            .into(),
                    },
                    _ => run.verdict,
                };
                judge(&expected, verdict, &mut notes, clean)
            } else {
                let message = format!(
                    "not run: the library holds code that would run outside the calls the tests \
                     make: {}",
                    outside.join("; ")
                );
                notes.push(message.clone());
                let verdicts = expected
                    .iter()
                    .map(|t| Verdict {
                        name: t.name.clone(),
                        task: t.task.unwrap_or(0),
                        passed: false,
                        message: Some(message.clone()),
                    })
                    .collect();
                (Outcome::Ran, Some(message), verdicts)
            }
        };
        let mut report = ExerciseReport::assemble(
            exercise,
            &info.title,
            |n| info.task_title(n).map(str::to_owned),
            sources,
            outcome,
            message,
            verdicts,
            &suite_tests,
        );
        match rubric::Rubric::load(&self.course.root.join("tests").join(exercise)) {
            Ok(r) => {
                let worth =
                    r.test_points(&suite_tests, report.tests.iter().map(|t| t.name.as_str()));
                report.weigh(&worth);
                notes.extend(r.review.iter().map(|item| {
                    format!(
                        "review by hand (task {}, not graded by the tests): {}",
                        item.task, item.check
                    )
                }));
            }
            Err(e) => notes.push(format!("no rubric, one point per test: {e}")),
        }
        report.notes = notes;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Computes (or reads from the cache) the expected tests of every exercise, each from a
    /// pristine copy, so that later gradings only read the cache.
    fn prepare(&mut self) -> Result<(), String> {
        for exercise in self.exercises.clone() {
            let work = tempfile::Builder::new()
                .prefix("ipclab-grade-")
                .tempdir()
                .map_err(|e| format!("no temporary directory: {e}"))?;
            copy_course(&self.course.root, work.path())
                .map_err(|e| format!("cannot copy the course: {e}"))?;
            let copy = Course {
                root: work.path().to_path_buf(),
            };
            self.expected(&copy, &exercise)?;
        }
        Ok(())
    }

    /// Builds the student's library and the suite behind the build's walls; returns the
    /// library's rlib, or the compiler's errors. The suite is built too, so that the run after it
    /// only runs (everything is fresh): the tests' judges and keepers work outside these walls,
    /// behind which they could not set up their own.
    fn build_walled(
        &self,
        copy: &Course,
        exercise: &str,
        tmp: &Path,
    ) -> Result<(PathBuf, Fresh), String> {
        let walls = walls::Walls::for_build(
            copy.root.clone(),
            self.target_dir.clone(),
            tmp.to_path_buf(),
        )
        .wrap();
        let output = std::process::Command::new(&walls[0])
            .args(&walls[1..])
            .arg(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args([
                "test",
                "--no-run",
                "--message-format=json",
                "--package",
                exercise,
            ])
            .args(["--test", exercise, "--color", "never"])
            .arg("--manifest-path")
            .arg(copy.root.join("Cargo.toml"))
            .envs(build_env(&self.target_dir, tmp))
            .current_dir(&copy.root)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        let messages: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let rlib = messages
            .iter()
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == exercise)
            .flat_map(|m| {
                m["filenames"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|f| f.as_str().map(PathBuf::from))
            })
            .find(|f| f.extension().is_some_and(|e| e == "rlib"));
        let executables: Vec<PathBuf> = messages
            .iter()
            .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
            .collect();
        match rlib {
            Some(rlib) if output.status.success() => Ok((rlib, Fresh::of(executables))),
            _ => {
                let rendered: Vec<&str> = messages
                    .iter()
                    .filter(|m| m["reason"] == "compiler-message")
                    .filter_map(|m| m["message"]["rendered"].as_str())
                    .collect();
                Err(if rendered.is_empty() {
                    String::from_utf8_lossy(&output.stderr).into_owned()
                } else {
                    rendered.join("\n")
                })
            }
        }
    }

    /// Runs the suite in `copy` as `cargo xtask verify` does, noting (and removing) leftovers.
    fn run(
        &self,
        copy: &Course,
        exercise: &str,
        notes: &mut Vec<String>,
        walled: bool,
    ) -> Result<suite::SuiteRun, String> {
        let baseline = Baseline::take(self.private_ipc);
        let tmp = tempfile::Builder::new()
            .prefix("ipclab-grade-tmp-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let options = RunOptions {
            deadline: self.deadline,
            env: vec![
                (
                    "CARGO_TARGET_DIR".into(),
                    self.target_dir.display().to_string(),
                ),
                ("TMPDIR".into(), tmp.path().display().to_string()),
                // insta must compare, never write.
                ("CI".into(), "true".into()),
                // The dependencies were fetched for the pristine starter: the build of a
                // submission needs no network (and, behind its walls, has none to reach).
                (
                    "CARGO_NET_OFFLINE".into(),
                    if walled { "true" } else { "false" }.into(),
                ),
                ("CARGO_TERM_COLOR".into(), "never".into()),
                baseline.uid_env(),
            ],
            require_verdicts: true,
            // Ungraded (bonus) tests are opt-in: they earn nothing, so they are not run.
            include_ignored: false,
        };
        let run = suite::run(copy, exercise, Implementation::Exercise, &options)
            .map_err(|e| format!("could not run the suite of {exercise}: {e}"))?;
        notes.extend(protection_notes(&run.protections));
        for left in baseline.left_behind(tmp.path()) {
            notes.push(format!("left behind (and removed): {left}"));
        }
        Ok(run)
    }

    /// The graded tests of `exercise`, from a run of the untouched starter in `copy` (cached in
    /// the target directory, keyed by a hash of everything that decides the list).
    fn expected(&mut self, copy: &Course, exercise: &str) -> Result<Vec<TestResult>, String> {
        if let Some(list) = self.expected.get(exercise) {
            return Ok(list.clone());
        }
        let key = course_hash(&self.course.root, exercise);
        let cache = self
            .target_dir
            .join("ipclab-grade")
            .join(format!("{exercise}-starter-{key:016x}.json"));
        let cached: Option<Vec<TestResult>> = fs::read_to_string(&cache)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .filter(|l: &Vec<TestResult>| !l.is_empty());
        let list = match cached {
            Some(list) => list,
            None => {
                let mut ignored = Vec::new();
                // The course's own starter, in a pristine copy: no walls needed, and it may fetch
                // the dependencies the submissions' offline builds then use.
                let run = self.run(copy, exercise, &mut ignored, false)?;
                let list: Vec<TestResult> = match run.verdict {
                    SuiteVerdict::Ran { tests } => {
                        tests.into_iter().filter(TestResult::is_graded).collect()
                    }
                    SuiteVerdict::BuildFailed { errors } => {
                        return Err(format!(
                            "the course's own starter of {exercise} does not compile (run `cargo xtask verify {exercise}`):\n{}",
                            first_error(&errors)
                        ))
                    }
                    SuiteVerdict::TimedOut { after } => {
                        return Err(format!(
                            "the course's own starter of {exercise} ran for {after:?} without finishing (run `cargo xtask verify {exercise}`)"
                        ))
                    }
                };
                if list.is_empty() {
                    return Err(format!(
                        "the suite of {exercise} has no graded (taskN_…) tests"
                    ));
                }
                let clean = format!("{}/", copy.root.display());
                let list: Vec<TestResult> = list
                    .into_iter()
                    .map(|mut t| {
                        t.message = t.message.map(|m| m.replace(&clean, ""));
                        t
                    })
                    .collect();
                if let Some(parent) = cache.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                let _ = fs::write(&cache, serde_json::to_string(&list).unwrap_or_default());
                list
            }
        };
        self.expected.insert(exercise.to_owned(), list.clone());
        Ok(list)
    }
}

/// The test binaries of a walled build, as they were: the run that follows must not rebuild them
/// outside the walls.
struct Fresh(Vec<(PathBuf, Option<std::time::SystemTime>)>);

impl Fresh {
    fn of(executables: Vec<PathBuf>) -> Fresh {
        let stamp = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        Fresh(
            executables
                .into_iter()
                .map(|p| {
                    let t = stamp(&p);
                    (p, t)
                })
                .collect(),
        )
    }

    fn still(&self) -> bool {
        self.0
            .iter()
            .all(|(p, t)| fs::metadata(p).and_then(|m| m.modified()).ok() == *t)
    }
}

/// The environment of a submission's walled build (the run that follows uses the same, so that
/// cargo finds everything fresh).
fn build_env(target: &Path, tmp: &Path) -> Vec<(String, String)> {
    vec![
        ("CARGO_TARGET_DIR".into(), target.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("CARGO_NET_OFFLINE".into(), "true".into()),
        ("CARGO_TERM_COLOR".into(), "never".into()),
    ]
}

/// What the judges say the tests ran behind, for the report: loud when a wall was missing.
fn protection_notes(reported: &[serde_json::Value]) -> Vec<String> {
    use ipclab_support::sandbox::Protections;
    let seen: Vec<Protections> = reported
        .iter()
        .filter_map(|p| serde_json::from_value(p.clone()).ok())
        .collect();
    if seen.is_empty() {
        return vec!["WARNING: no test reported its sandbox: the protections are unknown".into()];
    }
    let mut descriptions: Vec<String> = seen
        .iter()
        .map(|p| {
            let d = p.describe();
            // The uid differs per test; the walls are what matter.
            match d.split_once(", ") {
                Some((uid, rest)) if uid.starts_with("own uid") => {
                    format!("own uid per test, {rest}")
                }
                _ => d,
            }
        })
        .collect();
    descriptions.sort();
    descriptions.dedup();
    let mut notes: Vec<String> = descriptions
        .into_iter()
        .map(|d| format!("sandbox: {d}"))
        .collect();
    if seen.iter().any(|p| !p.complete()) {
        notes.push(
            "WARNING: graded WITHOUT every protection (grade as root on Linux with namespaces and \
             Landlock): a hostile submission could have read files or reached the network"
                .into(),
        );
    }
    notes
}

/// The verdict of each expected test from what the student's run reported.
fn judge(
    expected: &[TestResult],
    verdict: SuiteVerdict,
    notes: &mut Vec<String>,
    clean: impl Fn(&str) -> String,
) -> (Outcome, Option<String>, Vec<Verdict>) {
    let all_failed = |message: String| -> Vec<Verdict> {
        expected
            .iter()
            .map(|t| Verdict {
                name: t.name.clone(),
                task: t.task.unwrap_or(0),
                passed: false,
                message: Some(message.clone()),
            })
            .collect()
    };
    match verdict {
        SuiteVerdict::BuildFailed { errors } => {
            let first = clean(&first_error(&errors));
            let verdicts = all_failed(format!("the exercise does not compile:\n{first}"));
            (Outcome::BuildFailed, Some(first), verdicts)
        }
        SuiteVerdict::TimedOut { after } => {
            let message = format!(
                "the whole suite was still running after {}s and was killed: a test hung outside its own deadline",
                after.as_secs()
            );
            (
                Outcome::TimedOut,
                Some(message.clone()),
                all_failed(message),
            )
        }
        SuiteVerdict::Ran { tests } => {
            let mut verdicts = Vec::with_capacity(expected.len());
            for e in expected {
                let reported: Vec<&TestResult> =
                    tests.iter().filter(|t| t.name == e.name).collect();
                let failed = reported.iter().find(|t| !t.passed);
                if reported.len() > 1 {
                    notes.push(format!(
                        "{} was reported {} times (something printed libtest's lines): counted as {}",
                        e.name,
                        reported.len(),
                        if failed.is_some() { "failed" } else { "passed" }
                    ));
                }
                let (passed, message) = match (reported.is_empty(), failed) {
                    (true, _) => (
                        false,
                        Some(
                            "no result: the test binary ended before this test reported one \
                             (did the code under test exit, abort or kill the test process?)"
                                .to_owned(),
                        ),
                    ),
                    (false, Some(f)) => (
                        false,
                        Some(clean(f.message.as_deref().unwrap_or("failed (no message)"))),
                    ),
                    (false, None) => (true, None),
                };
                verdicts.push(Verdict {
                    name: e.name.clone(),
                    task: e.task.unwrap_or(0),
                    passed,
                    message,
                });
            }
            let unknown: Vec<&str> = tests
                .iter()
                .filter(|t| t.is_graded() && !expected.iter().any(|e| e.name == t.name))
                .map(|t| t.name.as_str())
                .collect();
            if !unknown.is_empty() {
                notes.push(format!(
                    "ignored results for tests the suite does not have: {}",
                    unknown.join(", ")
                ));
            }
            (Outcome::Ran, None, verdicts)
        }
    }
}

/// The first error of cargo's output, with its source snippet (up to 40 lines).
fn first_error(errors: &str) -> String {
    let lines: Vec<&str> = errors.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("error")) else {
        return lines
            .iter()
            .take(40)
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
    };
    let mut end = start + 1;
    while end < lines.len()
        && !lines[end].starts_with("error")
        && !lines[end].starts_with("warning")
        && !lines[end].starts_with("For more information")
        && end - start < 40
    {
        end += 1;
    }
    lines[start..end].join("\n").trim_end().to_owned()
}

/// The folder that holds the student's `exerciseNN/` folders: `<submission>/exercises`, the same
/// one level down (an upload unpacked into a folder of its own), or the submission itself when
/// the student uploaded the `exercises` folder's contents.
fn find_exercises_dir(submission: &Path) -> Result<PathBuf, String> {
    if !submission.is_dir() {
        return Err(format!("{} is not a directory", submission.display()));
    }
    let has_exercises = |dir: &Path| -> bool {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(ipclab::course::is_exercise_name)
                    && e.path().is_dir()
            })
        })
    };
    if has_exercises(&submission.join("exercises")) {
        return Ok(submission.join("exercises"));
    }
    if has_exercises(submission) {
        return Ok(submission.to_path_buf());
    }
    let subdirs: Vec<PathBuf> = fs::read_dir(submission)
        .map_err(|e| format!("cannot read {}: {e}", submission.display()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| !n.starts_with('.') && n != "__MACOSX")
        })
        .map(|e| e.path())
        .collect();
    if let [only] = subdirs.as_slice() {
        if has_exercises(&only.join("exercises")) {
            return Ok(only.join("exercises"));
        }
    }
    Err(format!(
        "no exercises/exerciseNN/ folder in {}: a submission is a copy of the course (or of its \
         exercises/ folder) with the student's work in exercises/exerciseNN/src",
        submission.display()
    ))
}

/// Top-level entries of the course that a grading copy does not need.
const NOT_COPIED: &[&str] = &["target", ".git", "solutions", "book", "grading", ".ipclab"];

/// Copies the course (without build output, history, solutions or book) to `to`.
fn copy_course(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if NOT_COPIED.iter().any(|n| name == *n) {
            continue;
        }
        copy_entry(&entry.path(), &to.join(&name))?;
    }
    Ok(())
}

fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let kind = fs::symlink_metadata(from)?.file_type();
    if kind.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if kind.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            if entry.file_name() == "target" {
                continue;
            }
            copy_entry(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else if kind.is_file() {
        fs::copy(from, to).map(|_| ())
    } else {
        Ok(())
    }
}

/// Copies the student's sources: directories and regular files only. Returns what was skipped
/// (symbolic links could point anywhere, e.g. at the suite).
/// The file of an exercise's crate that holds what the student is given (see
/// `xtask/src/starters.rs`): graded as the course has it.
const GIVEN: &str = "given.rs";

fn copy_student_tree(from: &Path, to: &Path) -> io::Result<Vec<String>> {
    let mut skipped = Vec::new();
    fs::create_dir_all(to)?;
    let mut todo = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = todo.pop() {
        for entry in fs::read_dir(&src)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = dst.join(entry.file_name());
            if kind.is_dir() {
                fs::create_dir_all(&target)?;
                todo.push((entry.path(), target));
            } else if kind.is_file() {
                fs::copy(entry.path(), &target)?;
            } else {
                skipped.push(entry.path().display().to_string());
            }
        }
    }
    Ok(skipped)
}

/// Every regular file below `dir`: (path relative to `dir`, contents), sorted.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                let rel = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap_or(&entry.path())
                    .to_path_buf();
                files.push((rel, fs::read(entry.path()).unwrap_or_default()));
            }
        }
    }
    files.sort();
    files
}

fn same_tree(a: &Path, b: &Path) -> bool {
    files_below(a) == files_below(b)
}

/// Attributes that let a library replace symbols the test binary uses (`waitpid`, the harness's
/// own functions) or run code before `main`: legitimate in a few places, worth a look in a
/// submission. Reported, never penalised.
fn suspicious(src: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    for (path, bytes) in files_below(src) {
        let text = String::from_utf8_lossy(&bytes);
        for pattern in ["no_mangle", "export_name", "link_section", "link_name"] {
            if text.contains(pattern) {
                notes.push(format!(
                    "src/{} uses `{pattern}`: such code can replace functions the tests call or \
                     run before them; read it before trusting the score",
                    path.display()
                ));
            }
        }
    }
    notes
}

/// FNV-1a over everything that decides which graded tests an exercise has: the root manifest and
/// lock file, the exercise's manifest and starter sources, its suite and the support crate.
fn course_hash(root: &Path, exercise: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for file in ["Cargo.toml", "Cargo.lock"] {
        feed(file.as_bytes());
        feed(&fs::read(root.join(file)).unwrap_or_default());
    }
    for dir in [
        root.join("exercises").join(exercise),
        root.join("tests").join(exercise),
        root.join("tests/support"),
    ] {
        for (path, bytes) in files_below(&dir) {
            if path.starts_with("target") {
                continue;
            }
            feed(dir.join(&path).to_string_lossy().as_bytes());
            feed(&(bytes.len() as u64).to_le_bytes());
            feed(&bytes);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, passed: bool, message: Option<&str>) -> TestResult {
        TestResult {
            name: name.into(),
            task: suite::task_of(name),
            passed,
            message: message.map(str::to_owned),
        }
    }

    fn expected() -> Vec<TestResult> {
        vec![
            result("task1_a", false, Some("not yet implemented: Task 1")),
            result("task1_b", false, Some("not yet implemented: Task 1")),
            result("task2_c", false, Some("not yet implemented: Task 2")),
        ]
    }

    #[test]
    fn missing_results_score_zero_and_forged_ones_are_ignored() {
        let reported = vec![
            result("task1_a", true, None),
            // task1_b never reported: the binary ended early.
            result(
                "task2_c",
                false,
                Some("/tmp/x/exercises/exercise01/src/lib.rs: boom"),
            ),
            result("task2_c", true, None),
            result("task9_invented", true, None),
            result("bonus_x", true, None),
        ];
        let mut notes = Vec::new();
        let (outcome, message, verdicts) = judge(
            &expected(),
            SuiteVerdict::Ran { tests: reported },
            &mut notes,
            |m| m.replace("/tmp/x/", ""),
        );
        assert_eq!(outcome, Outcome::Ran);
        assert_eq!(message, None);
        let v: Vec<(&str, bool)> = verdicts
            .iter()
            .map(|v| (v.name.as_str(), v.passed))
            .collect();
        assert_eq!(
            v,
            [("task1_a", true), ("task1_b", false), ("task2_c", false)]
        );
        assert!(verdicts[1]
            .message
            .as_deref()
            .unwrap()
            .starts_with("no result"));
        assert_eq!(
            verdicts[2].message.as_deref(),
            Some("exercises/exercise01/src/lib.rs: boom")
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("task2_c was reported 2 times"),
            "{notes:?}"
        );
        assert!(
            notes[1].contains("task9_invented") && !notes[1].contains("bonus"),
            "{notes:?}"
        );
    }

    #[test]
    fn a_build_failure_scores_zero_everywhere_with_the_first_error() {
        let errors = "warning: unused import\n --> exercises/exercise01/src/lib.rs:1:5\n\nerror[E0425]: cannot find value `x` in this scope\n --> exercises/exercise01/src/lib.rs:9:5\n  |\n9 |     x\n  |     ^ not found in this scope\n\nerror[E0308]: mismatched types\n\nFor more information about this error, try `rustc --explain E0425`.\nerror: could not compile `exercise01`";
        let mut notes = Vec::new();
        let (outcome, message, verdicts) = judge(
            &expected(),
            SuiteVerdict::BuildFailed {
                errors: errors.into(),
            },
            &mut notes,
            str::to_owned,
        );
        assert_eq!(outcome, Outcome::BuildFailed);
        assert_eq!(
            message.as_deref(),
            Some("error[E0425]: cannot find value `x` in this scope\n --> exercises/exercise01/src/lib.rs:9:5\n  |\n9 |     x\n  |     ^ not found in this scope")
        );
        assert_eq!(verdicts.len(), 3);
        assert!(verdicts.iter().all(|v| !v.passed
            && v.message
                .as_deref()
                .unwrap()
                .starts_with("the exercise does not compile:\nerror[E0425]")));
    }

    #[test]
    fn the_exercises_folder_is_found_at_the_top_one_level_down_or_as_the_upload_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let clone = tmp.path().join("clone");
        fs::create_dir_all(clone.join("exercises/exercise01/src")).unwrap();
        assert_eq!(find_exercises_dir(&clone).unwrap(), clone.join("exercises"));

        let wrapped = tmp.path().join("wrapped");
        fs::create_dir_all(wrapped.join("ipclab-main/exercises/exercise02")).unwrap();
        fs::create_dir_all(wrapped.join("__MACOSX")).unwrap();
        assert_eq!(
            find_exercises_dir(&wrapped).unwrap(),
            wrapped.join("ipclab-main/exercises")
        );

        let bare = tmp.path().join("bare");
        fs::create_dir_all(bare.join("exercise03/src")).unwrap();
        assert_eq!(find_exercises_dir(&bare).unwrap(), bare);

        let empty = tmp.path().join("empty");
        fs::create_dir_all(empty.join("notes")).unwrap();
        let err = find_exercises_dir(&empty).unwrap_err();
        assert!(err.contains("no exercises/exerciseNN/ folder"), "{err}");
    }

    #[test]
    fn only_regular_files_of_the_students_sources_are_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("lib.rs"), "pub fn f() {}").unwrap();
        fs::write(src.join("bin/x.rs"), "fn main() {}").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("sneaky.rs")).unwrap();
        let dst = tmp.path().join("dst");
        let skipped = copy_student_tree(&src, &dst).unwrap();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].ends_with("sneaky.rs"));
        assert!(dst.join("bin/x.rs").is_file() && !dst.join("sneaky.rs").exists());
        assert!(same_tree(&src.join("bin"), &dst.join("bin")));
        assert!(!same_tree(&src, &tmp.path().join("nothing")));
        fs::write(
            dst.join("lib.rs"),
            "#[no_mangle]\npub extern \"C\" fn waitpid() {}",
        )
        .unwrap();
        let notes = suspicious(&dst);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("src/lib.rs uses `no_mangle`"),
            "{notes:?}"
        );
    }

    #[test]
    fn options_are_checked() {
        let all = vec!["exercise01".to_owned(), "exercise02".to_owned()];
        let args = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
        let o = parse_args(
            &args("sub -e 2 --exercise=1 --format gradescope --visibility hidden"),
            &all,
        )
        .unwrap();
        assert_eq!(o.exercises, ["exercise02", "exercise01"]);
        assert_eq!(o.format, Format::Gradescope);
        assert_eq!(o.visibility, Visibility::Hidden);
        assert!(parse_args(&args("sub -e 7"), &all)
            .unwrap_err()
            .contains("no exercise \"7\""));
        assert!(parse_args(&args("a b"), &all).is_err());
        assert!(parse_args(&args("--class c sub"), &all).is_err());
        assert!(parse_args(&args("sub --reports r"), &all).is_err());
        assert!(parse_args(&args("--format html sub"), &all).is_err());
        assert!(parse_args(&args(""), &all).is_err());
        assert!(parse_args(&args("--class c --reports r"), &all).is_ok());
    }
}
