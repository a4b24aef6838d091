//! The `ipclab` command: arguments, and one function per subcommand.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anstream::{eprintln, print, println};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::course::{normalize_exercise, Course};
use crate::hints::Revealed;
use crate::info::{self, ExerciseInfo};
use crate::render::{self, command, paint, ListEntry, BAD, BOLD, WARN};
use crate::rubric::Points;
use crate::status::{self, Record, State, Tester};
use crate::{git, pristine, reaper, signals, watch};

const ABOUT: &str = "The companion of the ipclab course: your progress, a watch mode that \
                     re-runs the tests on every save, hints, and a way back to the starter.";

const AFTER_HELP: &str = "\
Start here:
  cargo ipclab            where you are: every exercise, its status, what is next
  cargo ipclab watch      work on the next exercise; the tests re-run on every save
  cargo ipclab hint       stuck? the next hint for the first task that does not pass yet
  cargo ipclab run 1      run exercise 1's tests once, now, and show the verdict
  cargo ipclab check      pass or fail for every exercise (re-runs only what changed)
  cargo ipclab reset 1    back to exercise 1's starter (asks first)
  cargo ipclab solution 1 the reference solution, once exercise 1 passes
  cargo ipclab bench 1    race the reference: your exercise 1 beside it, as ratios, once it passes

Run these from the course's folder (or below it): elsewhere cargo answers `no such command`.

Exercises are named by number: `1`, `01` and `exercise01` are the same exercise.
The tests are the same as `cargo test -p exercise01`: ipclab only runs and reads them.";

#[derive(Debug, Parser)]
#[command(
    name = "ipclab",
    bin_name = "cargo ipclab",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Never colour the output (colour is used only on terminals, and never when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// The course's folder (default: the one you are in, or above it).
    #[arg(long, global = true, value_name = "DIR")]
    pub course_dir: Option<PathBuf>,

    /// Stop a whole test run after this many seconds (each graded test has its own deadline).
    #[arg(long, global = true, value_name = "SECONDS", hide = true)]
    pub deadline: Option<u64>,

    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Every exercise with its status and points, and which one is next (the default).
    List,
    /// Work on an exercise: its tests re-run every time you save, until they all pass.
    Watch {
        /// The exercise (default: the first one that does not pass yet).
        exercise: Option<String>,
        /// Do not watch files: press Enter to re-run the tests (for file systems where change
        /// events do not arrive, such as a Windows drive under WSL or a network share).
        #[arg(long)]
        manual: bool,
    },
    /// Build and run one exercise's tests now, even if nothing changed since the last run, and
    /// show the verdict in full; exits non-zero if a graded test fails.
    Run {
        /// The exercise: `1`, `01` or `exercise01`.
        exercise: String,
    },
    /// Pass or fail for one exercise or all of them, running only the tests whose sources
    /// changed since their last run (`run` always runs); exits non-zero if a graded test fails.
    Check {
        /// The exercise (default: all of them).
        exercise: Option<String>,
    },
    /// The next hint for the first task that does not pass yet: first a nudge, then the calls.
    Hint {
        /// The exercise (default: the first one that does not pass yet).
        exercise: Option<String>,
        /// The hints of this task instead.
        #[arg(long, value_name = "N")]
        task: Option<u32>,
        /// Every hint of the task at once.
        #[arg(long)]
        all: bool,
    },
    /// Restore an exercise's starter from git, discarding your changes to it (asks first).
    Reset {
        /// The exercise: `1`, `01` or `exercise01`.
        exercise: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// See what a test's processes did: a timeline of their system calls, recorded with strace.
    Trace(crate::trace::command::TraceArgs),
    /// Race the reference: your exercise, once it passes, measured beside the reference solution
    /// in the same run, as ratios, with what makes the difference (system calls per message).
    Bench(crate::bench::BenchArgs),
    /// The reference solution of an exercise, once your code passes its tests.
    Solution {
        /// The exercise: `1`, `01` or `exercise01`.
        exercise: String,
        /// Show it even though the exercise does not pass yet.
        #[arg(long)]
        force: bool,
    },
}

/// A failure the student can act on, shown as one line.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    pub(crate) fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<git::GitError> for Failure {
    fn from(e: git::GitError) -> Failure {
        Failure::runtime(e.0)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.no_color {
        anstream::ColorChoice::Never.write_global();
    }
    let result = dispatch(cli);
    signals::wait_if_interrupted();
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{} {}", paint(BAD, "error:"), failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    let start = match &cli.course_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .map_err(|e| Failure::runtime(format!("cannot read the current directory: {e}")))?,
    };
    let course = Course::find(&start).map_err(|e| Failure::usage(e.to_string()))?;
    // Whatever the suites start is ours to clean up, even if the student presses Ctrl-C.
    reaper::become_subreaper();
    signals::install()
        .map_err(|e| Failure::runtime(format!("cannot handle Ctrl-C safely: {e}")))?;
    let mut tester = Tester::new(course);
    if let Some(secs) = cli.deadline {
        tester.deadline = Duration::from_secs(secs);
    }
    let app = App {
        tester,
        untouched: std::cell::OnceCell::new(),
    };
    match cli.command.unwrap_or(Cmd::List) {
        Cmd::List => app.list(),
        Cmd::Watch { exercise, manual } => {
            let exercise = match exercise {
                Some(arg) => Some(app.exercise(&arg)?),
                None => None,
            };
            watch::watch(&app, exercise, manual)
        }
        Cmd::Run { exercise } => {
            let exercise = app.exercise(&exercise)?;
            let record = app.run_with_spinner(&exercise, true)?;
            Ok(app.show_verdict(&exercise, &record))
        }
        Cmd::Check {
            exercise: Some(arg),
        } => {
            let exercise = app.exercise(&arg)?;
            let record = app.run_with_spinner(&exercise, false)?;
            Ok(app.show_verdict(&exercise, &record))
        }
        Cmd::Check { exercise: None } => app.check_all(),
        Cmd::Hint {
            exercise,
            task,
            all,
        } => {
            let exercise = match exercise {
                Some(arg) => app.exercise(&arg)?,
                None => app.current_from_cache()?,
            };
            app.hint(&exercise, task, all)
        }
        Cmd::Reset { exercise, yes } => {
            let exercise = app.exercise(&exercise)?;
            app.reset(&exercise, yes)
        }
        Cmd::Solution { exercise, force } => {
            let exercise = app.exercise(&exercise)?;
            app.solution(&exercise, force)
        }
        Cmd::Trace(args) => crate::trace::command::trace(&app, args),
        Cmd::Bench(args) => crate::bench::bench(&app, args),
    }
}

/// The course and the means to test it, shared by the subcommands.
pub struct App {
    pub tester: Tester,
    /// The exercises identical to their published starter (asked of git once per command).
    untouched: std::cell::OnceCell<std::collections::BTreeSet<String>>,
}

impl App {
    pub fn course(&self) -> &Course {
        &self.tester.course
    }

    fn untouched(&self) -> &std::collections::BTreeSet<String> {
        self.untouched
            .get_or_init(|| pristine::untouched(self.course()))
    }

    pub fn exercises(&self) -> Result<Vec<String>, Failure> {
        self.course().exercises().map_err(|e| {
            Failure::runtime(format!(
                "cannot list {}: {e}",
                self.course().root.join("exercises").display()
            ))
        })
    }

    /// `3` → `exercise03`, if the course has it.
    pub fn exercise(&self, arg: &str) -> Result<String, Failure> {
        let all = self.exercises()?;
        match normalize_exercise(arg) {
            Some(name) if all.contains(&name) => Ok(name),
            _ => Err(Failure::usage(format!(
                "there is no exercise {arg:?} in this course (there are: {})",
                if all.is_empty() {
                    "none yet".to_owned()
                } else {
                    all.iter()
                        .map(|n| n.trim_start_matches("exercise"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
        }
    }

    pub fn info(&self, exercise: &str) -> ExerciseInfo {
        ExerciseInfo::load(self.course(), exercise)
    }

    /// The first exercise that does not pass, judged from the cache alone (fresh or not);
    /// `None` when every exercise passes.
    pub fn first_not_done_cached(&self) -> Result<Option<String>, Failure> {
        Ok(self.exercises()?.into_iter().find(|name| {
            !self
                .tester
                .fresh(name)
                .is_some_and(|record| record.state().is_done())
        }))
    }

    /// The exercise to work on: the first one not passing (from the cache), else the last one.
    pub fn current_from_cache(&self) -> Result<String, Failure> {
        let all = self.exercises()?;
        if let Some(name) = self.first_not_done_cached()? {
            return Ok(name);
        }
        all.last()
            .cloned()
            .ok_or_else(|| Failure::runtime("this course has no exercises yet"))
    }

    /// Runs the suite, with a spinner on a terminal. `fresh`: ignore the cache.
    pub fn run_with_spinner(&self, exercise: &str, fresh: bool) -> Result<Record, Failure> {
        self.run_with_message(
            exercise,
            fresh,
            format!("{exercise}: building and running the tests"),
        )
    }

    /// As [`App::run_with_spinner`], with the spinner saying `message`.
    pub fn run_with_message(
        &self,
        exercise: &str,
        fresh: bool,
        message: String,
    ) -> Result<Record, Failure> {
        if !fresh {
            if let Some(record) = self.tester.fresh(exercise) {
                return Ok(record);
            }
        }
        let spinner = spinner(message);
        let result = self.tester.run(exercise);
        spinner.finish_and_clear();
        result.map_err(|e| Failure::runtime(format!("could not run the tests of {exercise}: {e}")))
    }

    /// An exercise's points by its rubric: those of `record`'s passing tests, or 0 without a run.
    pub fn points(&self, exercise: &str, record: Option<&Record>) -> Option<Points> {
        Points::of(self.course(), exercise, record.map_or(&[], |r| r.tests()))
    }

    /// Prints the verdict; the exit code says whether every graded test passes.
    pub fn show_verdict(&self, exercise: &str, record: &Record) -> ExitCode {
        print!(
            "{}",
            render::verdict(
                &self.info(exercise),
                record,
                self.points(exercise, Some(record)).as_ref()
            )
        );
        if record.state().is_done() {
            let later = self.exercises().unwrap_or_default();
            let next = later
                .iter()
                .skip_while(|n| n.as_str() != exercise)
                .skip(1)
                .find(|n| !self.tester.fresh(n).is_some_and(|r| r.state().is_done()));
            if let Some(next) = next {
                let info = self.info(next);
                println!(
                    "Next: {next} ({}): {}",
                    info.title,
                    command(&format!("watch {}", info.number))
                );
            }
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Every exercise's state: fresh from the cache, "not started" for an untouched starter
    /// (see [`pristine`]), or by running the stale suites.
    fn states(&self) -> Result<Vec<(String, State)>, Failure> {
        let all = self.exercises()?;
        let untouched = self.untouched();
        let known = |name: &String| -> Option<State> {
            if let Some(record) = self.tester.fresh(name) {
                return Some(record.state());
            }
            if !untouched.contains(name) {
                return None;
            }
            pristine::graded_tests(self.course(), name).map(|total| State::NotStarted { total })
        };
        let stale: Vec<&String> = all.iter().filter(|name| known(name).is_none()).collect();
        let bar = if stale.is_empty() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(stale.len() as u64).with_style(
                ProgressStyle::with_template(
                    "{spinner} testing {msg:12} [{bar:24}] {pos}/{len} exercises ({elapsed})",
                )
                .expect("the template is valid")
                .progress_chars("#>."),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        };
        let mut states = Vec::new();
        for name in &all {
            let state = match known(name) {
                Some(state) => Ok(state),
                None => {
                    bar.set_message(name.clone());
                    let record = self.tester.run(name);
                    bar.inc(1);
                    record.map(|r| r.state())
                }
            };
            match state {
                Ok(state) => states.push((name.clone(), state)),
                Err(e) => {
                    bar.suspend(|| eprintln!("ipclab: could not run the tests of {name}: {e}"));
                    states.push((name.clone(), State::Unknown));
                }
            }
        }
        bar.finish_and_clear();
        Ok(states)
    }

    pub fn list(&self) -> Result<ExitCode, Failure> {
        let entries: Vec<ListEntry> = self
            .states()?
            .into_iter()
            .map(|(name, state)| ListEntry {
                modified: match state {
                    _ if self.untouched().contains(&name) => Some(false),
                    State::NotStarted { .. } => git::modified(self.course(), &name),
                    _ => None,
                },
                info: self.info(&name),
                points: self.points(&name, self.tester.fresh(&name).as_ref()),
                state,
            })
            .collect();
        print!("{}", render::list(&entries));
        Ok(ExitCode::SUCCESS)
    }

    fn check_all(&self) -> Result<ExitCode, Failure> {
        let states = self.states()?;
        let mut failing = 0;
        for (name, state) in &states {
            let info = self.info(name);
            let line = match state {
                State::Done { total } => {
                    format!(
                        "{} {name}: all {total} graded tests pass",
                        paint(render::GOOD, "✓")
                    )
                }
                State::NotStarted { total } => {
                    format!("{} {name}: 0 of {total} graded tests pass", paint(BAD, "✗"))
                }
                State::InProgress { passed, total } => format!(
                    "{} {name}: {passed} of {total} graded tests pass",
                    paint(BAD, "✗")
                ),
                State::NoGradedTests => format!("· {name}: no graded tests yet"),
                State::DoesNotCompile { first_error } => format!(
                    "{} {name}: does not compile: {}",
                    paint(BAD, "✗"),
                    first_error.lines().next().unwrap_or("")
                ),
                State::TimedOut { after } => format!(
                    "{} {name}: the tests were stopped after {}",
                    paint(BAD, "✗"),
                    render::duration(*after)
                ),
                State::Unknown => format!("{} {name}: the tests could not run", paint(BAD, "✗")),
            };
            if !matches!(state, State::Done { .. } | State::NoGradedTests) {
                failing += 1;
            }
            println!("{line}  ({})", info.title);
        }
        println!("{} passed, {failing} failed", states.len() - failing);
        Ok(if failing == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// Shows the next hint (see `Cmd::Hint`) and remembers that it was shown.
    pub fn hint(&self, exercise: &str, task: Option<u32>, all: bool) -> Result<ExitCode, Failure> {
        let info = self.info(exercise);
        let Some(hints) = info::hints(self.course(), exercise) else {
            return Err(Failure::runtime(format!(
                "{exercise} has no hints yet (exercises/{exercise}/hints.md is missing)"
            )));
        };
        let record = self.tester.last(exercise);
        let task = match task {
            Some(t) => t,
            None => {
                if record.as_ref().is_some_and(|r| r.state().is_done()) {
                    println!(
                        "{} {exercise} passes every graded test already. {} shows the hints of one task anyway.",
                        paint(render::GOOD, "✓"),
                        command(&format!("hint {} --task N", info.number))
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                record
                    .as_ref()
                    .and_then(|r| status::first_unfinished_task(r.tests()))
                    .or_else(|| hints.first().map(|h| h.task.number))
                    .unwrap_or(1)
            }
        };
        let Some(task_hints) = hints.iter().find(|h| h.task.number == task) else {
            return Err(Failure::usage(format!(
                "{exercise} has no hints for task {task} (hints.md has tasks {})",
                hints
                    .iter()
                    .map(|h| h.task.number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if task_hints.hints.is_empty() {
            return Err(Failure::runtime(format!(
                "task {task} of {exercise} has no hints written yet"
            )));
        }
        let mut revealed = Revealed::load(self.course());
        let before = revealed.count(exercise, task).min(task_hints.hints.len());
        let now = if all {
            task_hints.hints.len()
        } else {
            (before + 1).min(task_hints.hints.len())
        };
        print!("{}", render::hints(&info, task_hints, before, now));
        revealed.set(exercise, task, now);
        if let Err(e) = revealed.save() {
            eprintln!("ipclab: could not remember which hints you saw: {e}");
        }
        Ok(ExitCode::SUCCESS)
    }

    fn reset(&self, exercise: &str, yes: bool) -> Result<ExitCode, Failure> {
        let course = self.course();
        let source = git::starter_source(course)?;
        if !git::has_starter(course, &source, exercise)? {
            return Err(Failure::runtime(format!(
                "exercises/{exercise} is not part of the published course ({source}), so it has no starter to restore"
            )));
        }
        let diff = git::diff_stat(course, &source, exercise)?;
        let untracked = git::untracked(course, exercise)?;
        if diff.trim().is_empty() {
            println!("{exercise} is already its starter: nothing to reset.");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "Resetting {exercise} restores its starter (from {source}) and discards these changes:"
        );
        print!("{diff}");
        if !untracked.is_empty() {
            println!(
                "Files you added are kept (they are not part of the starter): {}",
                untracked.join(", ")
            );
        }
        if !yes && !confirm(&format!("Discard your changes to exercises/{exercise}?"))? {
            println!("Nothing was changed.");
            return Ok(ExitCode::FAILURE);
        }
        git::restore(course, &source, exercise)?;
        println!(
            "{} {exercise} is back to its starter. {} to start again.",
            paint(render::GOOD, "✓"),
            command(&format!("watch {}", self.info(exercise).number))
        );
        Ok(ExitCode::SUCCESS)
    }

    fn solution(&self, exercise: &str, force: bool) -> Result<ExitCode, Failure> {
        let dir = self
            .course()
            .exercise_dir(exercise, crate::course::Implementation::Solution);
        let lib = dir.join("src/lib.rs");
        // A course handed out by an instructor (`cargo xtask handout`) has no solutions/ at all.
        if !self.course().root.join("solutions").exists() {
            return Err(Failure::runtime(format!(
                "this copy of the course comes without its solutions: the reference solution of \
                 {exercise} comes from your instructor"
            )));
        }
        if !lib.is_file() {
            return Err(Failure::runtime(format!(
                "the reference solution of {exercise} is not in this checkout ({} is missing)",
                lib.display()
            )));
        }
        if force {
            eprintln!(
                "{} showing the solution of {exercise} before it passes: reading it now takes away \
                 the part where you find out. A hint ({}) is often enough.",
                paint(WARN, "warning:"),
                command(&format!("hint {}", self.info(exercise).number))
            );
        } else {
            let record = self.run_with_spinner(exercise, false)?;
            if !record.state().is_done() {
                let progress = match record.state().points() {
                    Some((got, of)) => format!(" ({got} of {of} graded tests pass)"),
                    None => String::new(),
                };
                return Err(Failure::runtime(format!(
                    "{exercise} does not pass yet{progress}; its solution opens once it does \
                     (`cargo ipclab solution {} --force` shows it anyway)",
                    self.info(exercise).number
                )));
            }
        }
        let mut files = vec![lib];
        if let Ok(entries) = std::fs::read_dir(dir.join("src/bin")) {
            let mut bins: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect();
            bins.sort();
            files.extend(bins);
        }
        for file in files {
            let shown = file
                .strip_prefix(&self.course().root)
                .unwrap_or(&file)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::runtime(format!("cannot read {shown}: {e}")))?;
            println!("{}", paint(BOLD, format!("// ── {shown} ──")));
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            println!();
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A spinner on stderr when it is a terminal (indicatif hides it otherwise).
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner()
        .with_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("the template is valid"),
        )
        .with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Asks a yes/no question on the terminal; end of input means no.
fn confirm(question: &str) -> Result<bool, Failure> {
    print!("{question} [y/N] ");
    let _ = io::stdout().flush();
    let mut answer = String::new();
    let read = io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::runtime(format!("cannot read your answer: {e}")))?;
    if read == 0 && !io::stdin().is_terminal() {
        println!();
        println!("(no answer on standard input: pass --yes to reset without asking)");
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}
