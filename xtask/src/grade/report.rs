//! A submission's grade and the four ways of writing it down: `text` for a person, `json` (our
//! own, complete), Gradescope's `results.json` and Exercism's test-runner `results.json` (v2),
//! plus the class spreadsheet (CSV).
//!
//! One point per graded test (`taskN_…`), grouped by task.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::source::{self, SourceTest};

/// The grade of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The submission as named on the command line.
    pub submission: String,
    /// Graded tests passed, of all graded tests.
    pub score: u32,
    pub max_score: u32,
    /// Points from the rubrics (`tests/exerciseNN/rubric.toml`): what the grade is.
    #[serde(default)]
    pub points: f64,
    #[serde(default)]
    pub max_points: f64,
    /// Wall time of the whole grading, builds included.
    pub seconds: f64,
    pub exercises: Vec<ExerciseReport>,
}

/// Where the graded sources of an exercise came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sources {
    /// The submission's `exercises/exerciseNN/src`, different from the starter.
    Submitted,
    /// The submission's sources are byte for byte the starter's.
    Untouched,
    /// The submission has no `exercises/exerciseNN/src`: graded as the untouched starter.
    Missing,
}

/// How the suite run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The suite ran; every graded test has a verdict.
    Ran,
    /// The student's code does not compile: every test scores 0.
    BuildFailed,
    /// The whole suite outlived its deadline and was killed: unfinished tests score 0.
    TimedOut,
}

/// The grade of one exercise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExerciseReport {
    /// `exercise01`.
    pub exercise: String,
    /// The mechanism, from the README: `fork and anonymous pipes`.
    pub title: String,
    pub sources: Sources,
    pub outcome: Outcome,
    /// For a build failure, the compiler's first error; for a timeout, what happened.
    pub message: Option<String>,
    pub score: u32,
    pub max_score: u32,
    #[serde(default)]
    pub points: f64,
    #[serde(default)]
    pub max_points: f64,
    pub tasks: Vec<TaskReport>,
    /// In the order the suite's source lists them.
    pub tests: Vec<TestReport>,
    /// What the instructor should know that is not a test: leftovers, suspicious code.
    pub notes: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub task: u32,
    pub title: Option<String>,
    pub score: u32,
    pub max_score: u32,
    #[serde(default)]
    pub points: f64,
    #[serde(default)]
    pub max_points: f64,
}

/// One graded test: one point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// libtest's name: `task2_parent_reads_whole_message_then_eof::case_3_pipe_buf`.
    pub name: String,
    pub task: u32,
    /// Its position within the task (1-based, file order): Gradescope's `number` is `task.number`.
    pub number: u32,
    pub passed: bool,
    /// What it is worth (from the rubric), and what it earned.
    #[serde(default)]
    pub points: f64,
    #[serde(default)]
    pub max_points: f64,
    /// Why it failed: the suite's teaching message.
    pub message: Option<String>,
    /// The test's source (for Exercism's `test_code`); not part of our JSON.
    #[serde(default, skip_serializing)]
    pub code: String,
}

/// A graded test's verdict before it is placed in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub name: String,
    pub task: u32,
    pub passed: bool,
    pub message: Option<String>,
}

impl ExerciseReport {
    /// Orders the verdicts as the suite's source does, numbers them within their task and adds up
    /// the points.
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        exercise: &str,
        title: &str,
        task_title: impl Fn(u32) -> Option<String>,
        sources: Sources,
        outcome: Outcome,
        message: Option<String>,
        mut verdicts: Vec<Verdict>,
        suite: &[SourceTest],
    ) -> ExerciseReport {
        verdicts.sort_by_key(|v| source::order_key(suite, &v.name));
        let mut per_task: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
        let mut tests = Vec::with_capacity(verdicts.len());
        for v in verdicts {
            let entry = per_task.entry(v.task).or_default();
            entry.1 += 1;
            if v.passed {
                entry.0 += 1;
            }
            tests.push(TestReport {
                code: source::code_of(suite, &v.name).unwrap_or("").to_owned(),
                number: entry.1,
                name: v.name,
                task: v.task,
                points: if v.passed { 1.0 } else { 0.0 },
                max_points: 1.0,
                passed: v.passed,
                message: v.message,
            });
        }
        let tasks: Vec<TaskReport> = per_task
            .into_iter()
            .map(|(task, (score, max_score))| TaskReport {
                task,
                title: task_title(task),
                score,
                max_score,
                points: f64::from(score),
                max_points: f64::from(max_score),
            })
            .collect();
        ExerciseReport {
            exercise: exercise.to_owned(),
            title: title.to_owned(),
            sources,
            outcome,
            message,
            score: tasks.iter().map(|t| t.score).sum(),
            max_score: tasks.iter().map(|t| t.max_score).sum(),
            points: tasks.iter().map(|t| t.points).sum(),
            max_points: tasks.iter().map(|t| t.max_points).sum(),
            tasks,
            tests,
            notes: Vec::new(),
            seconds: 0.0,
        }
    }
}

impl ExerciseReport {
    /// Gives each test what the rubric says it is worth (`worth`: libtest name to points; a
    /// test it does not name is worth 0) and adds the points up per task and exercise.
    pub fn weigh(&mut self, worth: &BTreeMap<String, f64>) {
        for t in &mut self.tests {
            t.max_points = worth.get(&t.name).copied().unwrap_or(0.0);
            t.points = if t.passed { t.max_points } else { 0.0 };
        }
        for task in &mut self.tasks {
            let of_task = self.tests.iter().filter(|t| t.task == task.task);
            task.points = of_task.clone().map(|t| t.points).sum();
            task.max_points = of_task.map(|t| t.max_points).sum();
        }
        self.points = self.tasks.iter().map(|t| t.points).sum();
        self.max_points = self.tasks.iter().map(|t| t.max_points).sum();
    }
}

pub use ipclab::rubric::points_text as points;

impl Report {
    pub fn new(submission: &str, exercises: Vec<ExerciseReport>, seconds: f64) -> Report {
        Report {
            submission: submission.to_owned(),
            score: exercises.iter().map(|e| e.score).sum(),
            max_score: exercises.iter().map(|e| e.max_score).sum(),
            points: exercises.iter().map(|e| e.points).sum(),
            max_points: exercises.iter().map(|e| e.max_points).sum(),
            seconds,
            exercises,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// text

/// The human report: per exercise a line, per task a line with its points, then the failing
/// tests with their messages, then the total.
pub fn text(report: &Report) -> String {
    text_with(report, true)
}

/// The text report without the failing tests (Gradescope lists those itself).
pub fn summary(report: &Report) -> String {
    text_with(report, false)
}

fn text_with(report: &Report, failures: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Grade of {}", report.submission);
    for e in &report.exercises {
        out.push('\n');
        let heading = format!("{}: {}", e.exercise, e.title);
        let _ = writeln!(
            out,
            "{heading:<50} {:>6}/{:<3} points  tests {:>3}/{}",
            points(e.points),
            points(e.max_points),
            e.score,
            e.max_score
        );
        match e.sources {
            Sources::Submitted => {}
            Sources::Untouched => {
                let _ = writeln!(out, "  (the submitted sources are the untouched starter)");
            }
            Sources::Missing => {
                let _ = writeln!(
                    out,
                    "  (not in the submission: graded as the untouched starter)"
                );
            }
        }
        match e.outcome {
            Outcome::Ran => {}
            Outcome::BuildFailed => {
                let _ = writeln!(
                    out,
                    "  DOES NOT COMPILE: every test scores 0. The first error:"
                );
                let _ = writeln!(out, "{}", indent(e.message.as_deref().unwrap_or(""), 4));
            }
            Outcome::TimedOut => {
                let _ = writeln!(out, "  TIMED OUT: {}", e.message.as_deref().unwrap_or(""));
            }
        }
        for t in &e.tasks {
            let name = match &t.title {
                Some(title) => format!("Task {}: {title}", t.task),
                None => format!("Task {}", t.task),
            };
            let _ = writeln!(
                out,
                "  {name:<48} {:>6}/{:<3} points  tests {:>3}/{}",
                points(t.points),
                points(t.max_points),
                t.score,
                t.max_score
            );
            if e.outcome == Outcome::BuildFailed || !failures {
                continue;
            }
            for test in e.tests.iter().filter(|x| x.task == t.task && !x.passed) {
                let _ = writeln!(out, "      FAILED {}", test.name);
                if let Some(m) = &test.message {
                    let _ = writeln!(out, "{}", indent(m, 13));
                }
            }
        }
        for note in &e.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    let _ = writeln!(
        out,
        "\n{:<50} {:>6}/{:<3} points  tests {:>3}/{}",
        "Total",
        points(report.points),
        points(report.max_points),
        report.score,
        report.max_score
    );
    out
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ------------------------------------------------------------------------------------------------
// json (ours)

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report always serialises")
}

// ------------------------------------------------------------------------------------------------
// Gradescope

/// Gradescope's `results.json` (the autograder specification's field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradescopeResults {
    pub score: f64,
    /// Seconds.
    pub execution_time: u64,
    /// Shown above the tests: our text report.
    pub output: String,
    /// `text`: shown as written (line breaks and alignment kept).
    pub output_format: String,
    pub visibility: Visibility,
    pub stdout_visibility: Visibility,
    pub tests: Vec<GradescopeTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradescopeTest {
    pub name: String,
    pub score: f64,
    pub max_score: f64,
    pub status: GradescopeStatus,
    /// The suite's teaching failure message (empty when it passed).
    pub output: String,
    pub output_format: String,
    pub visibility: Visibility,
    /// `task.test`, e.g. `1.3` (with several exercises, `exercise.task.test`).
    pub number: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradescopeStatus {
    Passed,
    Failed,
}

/// When Gradescope shows a result to the student.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Hidden,
    AfterDueDate,
    AfterPublished,
    Visible,
}

impl Visibility {
    pub fn parse(s: &str) -> Option<Visibility> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

pub fn gradescope(report: &Report, visibility: Visibility) -> GradescopeResults {
    let several = report.exercises.len() > 1;
    let mut tests = Vec::new();
    for e in &report.exercises {
        let number: u32 = e
            .exercise
            .trim_start_matches("exercise")
            .parse()
            .unwrap_or(0);
        for t in &e.tests {
            tests.push(GradescopeTest {
                name: if several {
                    format!("{} {}", e.exercise, t.name)
                } else {
                    t.name.clone()
                },
                score: t.points,
                max_score: t.max_points,
                status: if t.passed {
                    GradescopeStatus::Passed
                } else {
                    GradescopeStatus::Failed
                },
                output: t.message.clone().unwrap_or_default(),
                output_format: "text".into(),
                visibility,
                number: if several {
                    format!("{number}.{}.{}", t.task, t.number)
                } else {
                    format!("{}.{}", t.task, t.number)
                },
                tags: vec![e.exercise.clone(), format!("task{}", t.task)],
            });
        }
    }
    GradescopeResults {
        score: report.points,
        execution_time: report.seconds.ceil() as u64,
        output: summary(report),
        output_format: "text".into(),
        visibility,
        stdout_visibility: visibility,
        tests,
    }
}

// ------------------------------------------------------------------------------------------------
// Exercism

/// Exercism's test-runner `results.json`, version 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExercismResults {
    pub version: u32,
    pub status: ExercismStatus,
    /// Required when `status` is `error`: what went wrong (the compiler's first error).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    pub tests: Vec<ExercismTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExercismTest {
    pub name: String,
    pub status: ExercismStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    /// What the test printed; the suites' messages are in `message`, so this stays empty.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output: Option<String>,
    pub test_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExercismStatus {
    Pass,
    Fail,
    Error,
}

pub fn exercism(report: &Report) -> ExercismResults {
    let several = report.exercises.len() > 1;
    let mut tests = Vec::new();
    let mut errors = Vec::new();
    for e in &report.exercises {
        if e.outcome != Outcome::Ran {
            errors.push(format!(
                "{}: {}",
                e.exercise,
                e.message.as_deref().unwrap_or("did not run")
            ));
        }
        for t in &e.tests {
            tests.push(ExercismTest {
                name: if several {
                    format!("{} {}", e.exercise, t.name)
                } else {
                    t.name.clone()
                },
                status: match (e.outcome, t.passed) {
                    (_, true) => ExercismStatus::Pass,
                    (Outcome::BuildFailed, false) => ExercismStatus::Error,
                    _ => ExercismStatus::Fail,
                },
                message: if t.passed { None } else { t.message.clone() },
                output: None,
                test_code: t.code.clone(),
            });
        }
    }
    let status = if !errors.is_empty() {
        ExercismStatus::Error
    } else if tests.iter().all(|t| t.status == ExercismStatus::Pass) && !tests.is_empty() {
        ExercismStatus::Pass
    } else {
        ExercismStatus::Fail
    };
    ExercismResults {
        version: 2,
        status,
        message: (!errors.is_empty()).then(|| errors.join("\n\n")),
        tests,
    }
}

// ------------------------------------------------------------------------------------------------
// CSV (a class)

pub fn csv_header(exercises: &[String]) -> String {
    let mut cells = vec!["student".to_owned()];
    cells.extend(exercises.iter().cloned());
    cells.push("total".into());
    cells.join(",")
}

/// One student's line: points per exercise (from the rubrics; empty when the exercise could not
/// be graded), total.
pub fn csv_line(student: &str, report: Option<&Report>, exercises: &[String]) -> String {
    let mut cells = vec![csv_cell(student)];
    for name in exercises {
        let score = report.and_then(|r| r.exercises.iter().find(|e| &e.exercise == name));
        cells.push(score.map(|e| points(e.points)).unwrap_or_default());
    }
    cells.push(report.map(|r| points(r.points)).unwrap_or_default());
    cells.join(",")
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn verdict(name: &str, passed: bool) -> Verdict {
        Verdict {
            name: name.into(),
            task: ipclab::suite::task_of(name).unwrap(),
            passed,
            message: (!passed).then(|| format!("{name} failed: the pipe was never closed")),
        }
    }

    fn sample() -> Report {
        let suite = source::tests_in(
            "#[test]\nfn task1_b() {}\n\n#[rstest]\n#[case::one(1)]\n#[case::two(2)]\nfn task1_a(#[case] n: u8) {}\n\n#[test]\nfn task2_c() {\n    assert!(false);\n}\n",
        );
        let exercise = ExerciseReport::assemble(
            "exercise01",
            "fork and anonymous pipes",
            |n| (n == 1).then(|| "Fork".to_owned()),
            Sources::Submitted,
            Outcome::Ran,
            None,
            vec![
                verdict("task2_c", false),
                verdict("task1_a::case_2_two", true),
                verdict("task1_b", true),
                verdict("task1_a::case_1_one", false),
            ],
            &suite,
        );
        Report::new("alice", vec![exercise], 12.3)
    }

    #[test]
    fn tests_are_in_file_order_numbered_within_their_task_and_summed_per_task() {
        let r = sample();
        let e = &r.exercises[0];
        let order: Vec<(&str, u32, u32)> = e
            .tests
            .iter()
            .map(|t| (t.name.as_str(), t.task, t.number))
            .collect();
        assert_eq!(
            order,
            [
                ("task1_b", 1, 1),
                ("task1_a::case_1_one", 1, 2),
                ("task1_a::case_2_two", 1, 3),
                ("task2_c", 2, 1)
            ]
        );
        assert_eq!((e.score, e.max_score), (2, 4));
        assert_eq!((r.score, r.max_score), (2, 4));
        assert_eq!(
            e.tasks,
            [
                TaskReport {
                    task: 1,
                    title: Some("Fork".into()),
                    score: 2,
                    max_score: 3,
                    points: 2.0,
                    max_points: 3.0,
                },
                TaskReport {
                    task: 2,
                    title: None,
                    score: 0,
                    max_score: 1,
                    points: 0.0,
                    max_points: 1.0,
                },
            ]
        );
        assert_eq!(
            e.tests[3].code,
            "#[test]\nfn task2_c() {\n    assert!(false);\n}"
        );
    }

    #[test]
    fn our_json_round_trips() {
        let mut r = sample();
        let back: Report = serde_json::from_str(&json(&r)).unwrap();
        // The test code is for Exercism only, not part of our format.
        for t in &mut r.exercises[0].tests {
            t.code.clear();
        }
        assert_eq!(back, r);
        let v: Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["exercises"][0]["sources"], "submitted");
        assert_eq!(v["exercises"][0]["outcome"], "ran");
        assert!(v["exercises"][0]["tests"][0].get("code").is_none());
    }

    #[test]
    fn gradescope_fields_are_named_as_gradescope_reads_them() {
        let gs = gradescope(&sample(), Visibility::AfterDueDate);
        let v = serde_json::to_value(&gs).unwrap();
        let mut top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        top.sort_unstable();
        assert_eq!(
            top,
            [
                "execution_time",
                "output",
                "output_format",
                "score",
                "stdout_visibility",
                "tests",
                "visibility"
            ]
        );
        assert_eq!(v["score"], json!(2.0));
        assert_eq!(v["execution_time"], json!(13));
        assert_eq!(v["visibility"], "after_due_date");
        assert_eq!(
            v["tests"][1],
            json!({
                "name": "task1_a::case_1_one",
                "score": 0.0,
                "max_score": 1.0,
                "status": "failed",
                "output": "task1_a::case_1_one failed: the pipe was never closed",
                "output_format": "text",
                "visibility": "after_due_date",
                "number": "1.2",
                "tags": ["exercise01", "task1"],
            })
        );
        assert_eq!(v["tests"][0]["status"], "passed");
        assert_eq!(v["tests"][0]["output"], "");
        let back: GradescopeResults = serde_json::from_value(v).unwrap();
        assert_eq!(back, gs);
    }

    #[test]
    fn gradescope_numbers_name_the_exercise_when_there_are_several() {
        let mut r = sample();
        let mut second = r.exercises[0].clone();
        second.exercise = "exercise02".into();
        r.exercises.push(second);
        let gs = gradescope(&r, Visibility::Visible);
        assert_eq!(gs.tests[0].number, "1.1.1");
        assert_eq!(gs.tests[4].number, "2.1.1");
        assert_eq!(gs.tests[4].name, "exercise02 task1_b");
    }

    #[test]
    fn visibility_names_are_gradescopes() {
        for (s, v) in [
            ("hidden", Visibility::Hidden),
            ("after_due_date", Visibility::AfterDueDate),
            ("after_published", Visibility::AfterPublished),
            ("visible", Visibility::Visible),
        ] {
            assert_eq!(Visibility::parse(s), Some(v));
        }
        assert_eq!(Visibility::parse("public"), None);
    }

    #[test]
    fn exercism_v2_lists_tests_in_file_order_with_their_code() {
        let ex = exercism(&sample());
        let v = serde_json::to_value(&ex).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["status"], "fail");
        assert!(v.get("message").is_none());
        assert_eq!(
            v["tests"][3],
            json!({
                "name": "task2_c",
                "status": "fail",
                "message": "task2_c failed: the pipe was never closed",
                "test_code": "#[test]\nfn task2_c() {\n    assert!(false);\n}",
            })
        );
        assert_eq!(
            v["tests"][0],
            json!({"name": "task1_b", "status": "pass", "test_code": "#[test]\nfn task1_b() {}"})
        );
        let back: ExercismResults = serde_json::from_value(v).unwrap();
        assert_eq!(back, ex);
    }

    #[test]
    fn exercism_reports_a_build_failure_as_an_error_with_the_compilers_message() {
        let mut r = sample();
        let e = &mut r.exercises[0];
        e.outcome = Outcome::BuildFailed;
        e.message = Some("error[E0425]: cannot find value `x`".into());
        for t in &mut e.tests {
            t.passed = false;
        }
        let v = serde_json::to_value(exercism(&r)).unwrap();
        assert_eq!(v["status"], "error");
        assert_eq!(
            v["message"],
            "exercise01: error[E0425]: cannot find value `x`"
        );
        assert_eq!(v["tests"][0]["status"], "error");
    }

    #[test]
    fn exercism_passes_only_when_every_test_passes() {
        let mut r = sample();
        for t in &mut r.exercises[0].tests {
            t.passed = true;
        }
        assert_eq!(exercism(&r).status, ExercismStatus::Pass);
    }

    #[test]
    fn the_rubric_weighs_tests_tasks_and_the_exercise() {
        let mut e = sample().exercises.remove(0);
        let worth: BTreeMap<String, f64> = e
            .tests
            .iter()
            .map(|t| (t.name.clone(), if t.task == 1 { 2.0 } else { 0.5 }))
            .collect();
        e.weigh(&worth);
        let passed: f64 = e.tests.iter().filter(|t| t.passed).map(|_| 2.0).sum();
        assert_eq!(e.points, passed);
        assert_eq!(
            e.tasks.iter().map(|t| t.max_points).sum::<f64>(),
            e.max_points
        );
        assert_eq!(points(7.5), "7.5");
        assert_eq!(points(10.0), "10");
        assert_eq!(points(1.0 / 3.0), "0.33");
    }

    #[test]
    fn text_shows_points_per_task_failures_with_their_message_and_the_total() {
        let t = text(&sample());
        assert!(t.contains("exercise01: fork and anonymous pipes"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("  Task 1: Fork") && l.ends_with("2/3")),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("  Task 2 ") && l.ends_with("0/1")),
            "{t}"
        );
        assert!(
            t.contains("      FAILED task1_a::case_1_one\n             task1_a::case_1_one failed"),
            "{t}"
        );
        assert!(!t.contains("FAILED task1_b"), "{t}");
        assert!(
            t.lines()
                .any(|l| l.starts_with("Total") && l.ends_with("2/4")),
            "{t}"
        );
    }

    #[test]
    fn csv_has_one_column_per_exercise_and_quotes_awkward_names() {
        let names = vec!["exercise01".to_owned(), "exercise02".to_owned()];
        assert_eq!(csv_header(&names), "student,exercise01,exercise02,total");
        let r = sample();
        assert_eq!(csv_line("alice", Some(&r), &names), "alice,2,,2");
        assert_eq!(
            csv_line("Doe, \"J\"", None, &names),
            "\"Doe, \"\"J\"\"\",,,"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// JUnit XML (GitLab, Jenkins, nextest users): one testsuite per exercise, one testcase per test.

fn xml(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = report.exercises.iter().map(|e| e.tests.len()).sum();
    let failures: usize = report
        .exercises
        .iter()
        .map(|e| e.tests.iter().filter(|t| !t.passed).count())
        .sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">",
        xml(&report.submission),
        report.seconds
    );
    for e in &report.exercises {
        let failed = e.tests.iter().filter(|t| !t.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">",
            xml(&e.exercise),
            e.tests.len(),
            e.seconds
        );
        let _ = writeln!(out, "    <properties>");
        let _ = writeln!(
            out,
            "      <property name=\"title\" value=\"{}\"/>\n      <property name=\"score\" value=\"{} of {}\"/>",
            xml(&e.title),
            e.score,
            e.max_score
        );
        let _ = writeln!(out, "    </properties>");
        for t in &e.tests {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}.task{}\"",
                xml(&t.name),
                xml(&e.exercise),
                t.task
            );
            if t.passed {
                out.push_str("/>\n");
            } else {
                let message = t
                    .message
                    .as_deref()
                    .or(e.message.as_deref())
                    .unwrap_or("failed");
                let first = message.lines().next().unwrap_or("failed");
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(first),
                    xml(message)
                );
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A submission that could not be graded: one suite with one erroring case that says why.
pub fn junit_error(submission: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{0}\" tests=\"1\" failures=\"0\" errors=\"1\">\n  \
         <testsuite name=\"{0}\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase name=\"grading\" classname=\"ipclab\">\n      \
         <error message=\"{1}\">{1}</error>\n    </testcase>\n  </testsuite>\n</testsuites>\n",
        xml(submission),
        xml(message)
    )
}

#[cfg(test)]
mod junit_tests {
    use super::*;
    use quick_xml::events::Event;

    fn sample() -> Report {
        let test = |name: &str, task, passed, message: Option<&str>| TestReport {
            name: name.into(),
            task,
            number: 1,
            passed,
            points: if passed { 1.0 } else { 0.0 },
            max_points: 1.0,
            message: message.map(str::to_owned),
            code: String::new(),
        };
        let exercise = ExerciseReport {
            exercise: "exercise01".into(),
            title: "fork & pipes".into(),
            sources: Sources::Submitted,
            outcome: Outcome::Ran,
            message: None,
            score: 1,
            max_score: 2,
            points: 1.0,
            max_points: 2.0,
            tasks: vec![],
            tests: vec![
                test("task1_forks", 1, true, None),
                test(
                    "task2_reads::case_1_x",
                    2,
                    false,
                    Some("Task 2: expected <EOF> & \"done\"\nsecond line"),
                ),
            ],
            notes: vec![],
            seconds: 1.5,
        };
        Report::new("alice", vec![exercise], 2.0)
    }

    /// Parses the XML back: (element path, attributes) of every start or empty element, and the
    /// text inside each failure.
    /// An element's path from the root and its attributes.
    type Element = (String, Vec<(String, String)>);

    fn parse(xml: &str) -> (Vec<Element>, Vec<String>) {
        let mut reader = quick_xml::Reader::from_str(xml);
        let (mut elements, mut texts, mut stack) = (Vec::new(), Vec::new(), Vec::<String>::new());
        loop {
            match reader.read_event().expect("well-formed XML") {
                event @ (Event::Start(_) | Event::Empty(_)) => {
                    let (Event::Start(e) | Event::Empty(e)) = &event else {
                        unreachable!()
                    };
                    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            )
                        })
                        .collect();
                    let path = stack
                        .iter()
                        .chain([&name])
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("/");
                    elements.push((path, attrs));
                    if matches!(event, Event::Start(_)) {
                        stack.push(name);
                    }
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Text(t) => {
                    let text = t.unescape().unwrap().trim().to_owned();
                    if !text.is_empty() {
                        texts.push(text);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        (elements, texts)
    }

    #[test]
    fn junit_has_a_suite_per_exercise_and_a_case_per_test_with_failures() {
        let (elements, texts) = parse(&junit(&sample()));
        let paths: Vec<&str> = elements.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"testsuites"));
        assert!(paths.contains(&"testsuites/testsuite"));
        let cases: Vec<_> = elements
            .iter()
            .filter(|(p, _)| p == "testsuites/testsuite/testcase")
            .collect();
        assert_eq!(cases.len(), 2);
        let attr =
            |e: &Element, k: &str| e.1.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(
            attr(cases[1], "name").as_deref(),
            Some("task2_reads::case_1_x")
        );
        assert_eq!(
            attr(cases[1], "classname").as_deref(),
            Some("exercise01.task2")
        );
        let failure = elements
            .iter()
            .find(|(p, _)| p == "testsuites/testsuite/testcase/failure")
            .expect("the failing test has a failure element");
        assert_eq!(
            attr(failure, "message").as_deref(),
            Some("Task 2: expected <EOF> & \"done\"")
        );
        assert!(
            texts.iter().any(|t| t.ends_with("second line")),
            "{texts:?}"
        );
        let suite = elements
            .iter()
            .find(|(p, _)| p == "testsuites/testsuite")
            .unwrap();
        assert_eq!(attr(suite, "failures").as_deref(), Some("1"));
        assert_eq!(attr(suite, "tests").as_deref(), Some("2"));
    }

    #[test]
    fn an_ungradable_submission_is_one_erroring_case() {
        let (elements, _) = parse(&junit_error("bob", "no exercises/ <here>"));
        assert!(elements
            .iter()
            .any(|(p, _)| p == "testsuites/testsuite/testcase/error"));
    }
}
