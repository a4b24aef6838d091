//! `cargo xtask verify [exerciseNN …]`: the maintainers' check of the whole course.
//!
//! For every exercise (or the ones named) it runs the graded suite against the reference solution
//! (every graded test must pass) and against the untouched starter (every graded test must fail,
//! fast), and checks that neither run left anything behind. Without arguments it also runs the
//! tooling's own tests and builds the book. It ends with one line, `verify: N passed, N failed`.

mod bench;
mod bench_grading;
mod bench_startup;
mod book;
mod codewidth;
mod grade;
mod handout;
mod leftovers;
mod linkcheck;
mod lint;
mod measured;
mod mutants;
mod scaffold;
mod scratch;
mod starters;
mod variants;

use std::env;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use ipclab::course::{normalize_exercise, Course, Implementation};
use ipclab::suite::{self, RunOptions, SuiteRun, Verdict};

use leftovers::Baseline;

/// A starter's graded tests must all fail within this much test time: each fails at its first
/// `todo!`, so anything slower means a test waits for something before reaching the student's code.
const STARTER_TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("verify") => verify(&args[1..]),
        Some("grade") => grade::main(
            Course {
                root: course_root(),
            },
            &args[1..],
        ),
        Some("bench") if args[1..] == ["--startup"] => bench_startup::main(&course_root()),
        Some("handout") => handout::main(&course_root(), &args[1..]),
        Some("starters") => starters::main(&course_root()),
        Some("bench") => bench::run(&course_root(), &args[1..]),
        // Internal: how the grader walls in a submission's build.
        Some("sandbox-exec") => grade::walls::main(&args[1..]),
        Some("new-exercise") => scaffold::main(&course_root(), &args[1..]),
        Some("book") => book::main(&course_root(), &args[1..]),
        Some("mutants") => mutants::main(&course_root(), &args[1..]),
        Some("variants") => variants::main(&course_root(), &args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask verify [exerciseNN …]   check the course (all of it without arguments)\n       \
                 {}\n       \
                 cargo xtask handout [--no-check] <DIR>  write the students' repository (no solutions) into DIR\n       \
                 cargo xtask starters                    regenerate exercises/*/src from solutions/*/src\n       \
                 {}
       {}
       {}
       {}",
                book::USAGE,
                grade::USAGE,
                scaffold::USAGE,
                mutants::USAGE,
                variants::USAGE
            );
            ExitCode::from(2)
        }
    }
}

fn course_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the course root")
        .to_path_buf()
}

/// One line of the final account.
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

fn verify(args: &[String]) -> ExitCode {
    let course = Course {
        root: course_root(),
    };
    leftovers::become_subreaper();
    let all = match course.exercises() {
        Ok(all) => all,
        Err(e) => {
            eprintln!("xtask: cannot list exercises/: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chosen: Vec<String> = if args.is_empty() {
        all.clone()
    } else {
        let mut chosen = Vec::new();
        for arg in args {
            match normalize_exercise(arg).filter(|n| all.contains(n)) {
                Some(name) => chosen.push(name),
                None => {
                    eprintln!("xtask: no exercise {arg:?} (there are: {})", all.join(", "));
                    return ExitCode::from(2);
                }
            }
        }
        chosen
    };

    let mut checks: Vec<Check> = Vec::new();
    checks.push(starters_check(&course));
    report(checks.last().expect("just pushed"));
    let problems = grade::rubric::check_course(&course.root, &chosen);
    checks.push(Check {
        name: "rubrics".into(),
        ok: problems.is_empty(),
        detail: if problems.is_empty() {
            "every graded test has points, every point has a test".into()
        } else {
            problems.join("\n")
        },
    });
    report(checks.last().expect("just pushed"));
    if args.is_empty() {
        // Before the tooling tests, which lint the same files and would otherwise install
        // actionlint at the same time.
        for (name, result) in [
            ("workflow", lint::workflow_check(&course.root)),
            ("devcontainer", lint::devcontainer_check(&course.root)),
        ] {
            let (ok, detail) = match result {
                Ok(detail) => (true, detail),
                Err(detail) => (false, detail),
            };
            checks.push(Check {
                name: name.into(),
                ok,
                detail,
            });
            report(checks.last().expect("just pushed"));
        }
        checks.push(tooling_tests(&course));
        checks.push(bench_quick_test(&course));
        checks.push(match book::build(&course.root) {
            Ok(()) => Check {
                name: "book".into(),
                ok: true,
                detail: format!(
                    "builds with no warnings, translations ({}) complete",
                    book::LANGUAGES.join(", ")
                ),
            },
            Err(e) => Check {
                name: "book".into(),
                ok: false,
                detail: e,
            },
        });
        report(checks.last().expect("just pushed"));
    }
    for exercise in &chosen {
        for check in verify_exercise(&course, exercise) {
            report(&check);
            checks.push(check);
        }
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    println!();
    for c in checks.iter().filter(|c| !c.ok) {
        println!("FAILED {}: {}", c.name, c.detail);
    }
    println!(
        "verify: {} passed, {} failed",
        checks.len() - failed,
        failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(check: &Check) {
    println!(
        "{} {:<28} {}",
        if check.ok { "ok    " } else { "FAILED" },
        check.name,
        check.detail
    );
}

/// Every committed starter is what its solution generates (`cargo xtask starters` rewrites them).
fn starters_check(course: &Course) -> Check {
    let (ok, detail) = match starters::drifted(&course.root) {
        Ok(drifted) if drifted.is_empty() => {
            (true, "every starter is generated from its solution".into())
        }
        Ok(drifted) => (
            false,
            format!(
                "{} starters differ from their solutions (run `cargo xtask starters`):\n{}",
                drifted.len(),
                drifted
                    .iter()
                    .map(|(_, diff)| diff.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ),
        Err(e) => (false, e),
    };
    Check {
        name: "starters".into(),
        ok,
        detail,
    }
}

/// The tooling's own tests: `cargo test` at the root runs the default members (the CLI, this
/// tool and the support crate), never the unfinished starters.
fn tooling_tests(course: &Course) -> Check {
    let started = Instant::now();
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&course.root)
        .status();
    let ok = matches!(status, Ok(s) if s.success());
    let check = Check {
        name: "tooling tests".into(),
        ok,
        detail: format!(
            "cargo test (ipclab, xtask, support) in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    };
    report(&check);
    check
}

/// The benchmark's own test (solutions/bench/tests): a `--quick` run of `ipclab-bench` writes
/// every cell, every transfer verified. It never asserts a speed.
fn bench_quick_test(course: &Course) -> Check {
    let started = Instant::now();
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--quiet", "-p", "ipclab-bench"])
        .current_dir(course.root.join("solutions"))
        .status();
    let check = Check {
        name: "bench --quick".into(),
        ok: matches!(status, Ok(s) if s.success()),
        detail: format!(
            "ipclab-bench --quick: every cell present and verified, in {:.1} s (build included)",
            started.elapsed().as_secs_f64()
        ),
    };
    report(&check);
    check
}

/// The solution passes everything, the starter fails everything, and nothing is left behind.
fn verify_exercise(course: &Course, exercise: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    for implementation in [Implementation::Solution, Implementation::Exercise] {
        let which = match implementation {
            Implementation::Solution => "solution",
            Implementation::Exercise => "starter",
        };
        // Best effort: without root the run shares the machine's IPC objects, and then they are
        // not compared at all (other programs' objects are none of the run's business).
        let private_ipc = leftovers::private_ipc_namespace();
        let baseline = Baseline::take(private_ipc);
        let tmp = match tempfile::Builder::new().prefix("ipclab-verify-").tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                checks.push(Check {
                    name: format!("{exercise} {which}"),
                    ok: false,
                    detail: format!("no temporary directory: {e}"),
                });
                continue;
            }
        };
        let options = RunOptions {
            env: vec![
                ("TMPDIR".into(), tmp.path().display().to_string()),
                // insta must compare, never write: snapshots are reviewed by a person.
                ("CI".into(), "true".into()),
                baseline.uid_env(),
            ],
            require_verdicts: true,
            // The ungraded (bonus) tests are opt-in for students (`#[ignore]`d), but the
            // reference solution must pass them too.
            include_ignored: implementation == Implementation::Solution,
            ..RunOptions::default()
        };
        let run = suite::run(course, exercise, implementation, &options);
        let left = baseline.left_behind(tmp.path());
        if let (Implementation::Exercise, Ok(run)) = (implementation, &run) {
            checks.push(points_before_a_run(course, run));
        }
        checks.push(match run {
            Err(e) => Check {
                name: format!("{exercise} {which}"),
                ok: false,
                detail: format!("could not run: {e}"),
            },
            Ok(run) => judge(&run, implementation),
        });
        checks.push(Check {
            name: format!("{exercise} {which} leftovers"),
            ok: left.is_empty(),
            detail: if left.is_empty() {
                "nothing left behind".into()
            } else {
                left.join("; ")
            },
        });
    }
    checks
}

/// `cargo ipclab` shows an untouched starter's points without running it, counted from the
/// suite's source (`ipclab::pristine`): that count must be libtest's.
fn points_before_a_run(course: &Course, run: &SuiteRun) -> Check {
    let counted = ipclab::pristine::graded_tests(course, &run.exercise);
    let ran = match &run.verdict {
        Verdict::Ran { tests } => Some(tests.iter().filter(|t| t.is_graded()).count()),
        _ => None,
    };
    Check {
        name: format!("{} points", run.exercise),
        ok: ran.is_none() || counted == ran,
        detail: format!(
            "graded tests counted from the suite's source: {counted:?}, run: {ran:?} \
             (cargo ipclab shows the first before any run)"
        ),
    }
}

fn judge(run: &SuiteRun, implementation: Implementation) -> Check {
    let name = format!(
        "{} {}",
        run.exercise,
        if implementation == Implementation::Solution {
            "solution"
        } else {
            "starter"
        }
    );
    let tests = match &run.verdict {
        Verdict::BuildFailed { errors } => {
            return Check {
                name,
                ok: false,
                detail: format!("does not compile:\n{errors}"),
            };
        }
        Verdict::TimedOut { after } => {
            return Check {
                name,
                ok: false,
                detail: format!("the suite was still running after {after:?}"),
            };
        }
        Verdict::Ran { tests } => tests,
    };
    let graded: Vec<_> = tests.iter().filter(|t| t.is_graded()).collect();
    let passed = graded.iter().filter(|t| t.passed).count();
    let secs = run.elapsed.as_secs_f64();
    if graded.is_empty() {
        return Check {
            name,
            ok: false,
            detail: "the suite has no graded (taskN_…) tests".into(),
        };
    }
    match implementation {
        Implementation::Solution => {
            // Ungraded (bonus) tests too: the solution is the model for every test.
            let failing: Vec<String> = tests
                .iter()
                .filter(|t| !t.passed)
                .map(|t| {
                    format!(
                        "{}: {}",
                        t.name,
                        t.message.as_deref().unwrap_or("(no message)")
                    )
                })
                .collect();
            Check {
                ok: failing.is_empty(),
                detail: if failing.is_empty() {
                    format!(
                        "{passed}/{} graded tests pass, and {} ungraded ({secs:.1} s with build)",
                        graded.len(),
                        tests.len() - graded.len()
                    )
                } else {
                    format!(
                        "{} tests fail on the reference solution:\n{}",
                        failing.len(),
                        failing.join("\n")
                    )
                },
                name,
            }
        }
        Implementation::Exercise => {
            let passing: Vec<&str> = graded
                .iter()
                .filter(|t| t.passed)
                .map(|t| t.name.as_str())
                .collect();
            let silent: Vec<&str> = graded
                .iter()
                .filter(|t| !t.passed && t.message.as_deref().is_none_or(|m| m.trim().is_empty()))
                .map(|t| t.name.as_str())
                .collect();
            let slow = run.test_time.is_some_and(|t| t > STARTER_TIME_LIMIT);
            let ok = passing.is_empty() && silent.is_empty() && !slow;
            let detail = if !passing.is_empty() {
                format!(
                    "graded tests pass on the untouched starter (they grade nothing): {}",
                    passing.join(", ")
                )
            } else if !silent.is_empty() {
                format!("graded tests fail without a message: {}", silent.join(", "))
            } else if slow {
                format!(
                    "the failing starter took {:?} of test time (limit {STARTER_TIME_LIMIT:?})",
                    run.test_time
                )
            } else {
                format!(
                    "{}/{} graded tests fail with a message ({:.1} s of tests)",
                    graded.len(),
                    graded.len(),
                    run.test_time.unwrap_or_default().as_secs_f64()
                )
            };
            Check { name, ok, detail }
        }
    }
}
