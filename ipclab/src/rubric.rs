//! Points by task: `tests/exerciseNN/rubric.toml`, beside the suite it weighs.
//!
//! ```toml
//! [tasks]          # task number = its points; the exercise is worth their sum
//! 1 = 2
//! 2 = 3
//! [tests]          # optional: explicit points of a test function, taken out of its task's
//! task2_big = 2    # points; the task's other tests share the rest equally
//! [[review]]       # optional: what a person must check because no test can (reports list
//! task = 4         # them for the grader, who takes points off that task by hand)
//! check = "indices are read with Acquire and written with Release"
//! ```
//!
//! A test function's points are shared equally by its rstest cases. `cargo xtask verify` checks
//! every rubric against its suite: a graded test whose task has no points, a task with points
//! and no test, or points for a test that does not exist are errors that name it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::course::Course;
use crate::source::SourceTest;
use crate::suite::TestResult;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    /// Task number (as a TOML key) to its points.
    pub tasks: BTreeMap<String, f64>,
    /// Test function name to explicit points.
    #[serde(default)]
    pub tests: BTreeMap<String, f64>,
    /// What a person reads the submission for, because running code cannot show it here
    /// (memory ordering on x86, a handler's lock that ordinary code never holds in a test).
    #[serde(default)]
    pub review: Vec<ReviewItem>,
}

/// One check for a person, with the task whose points it can take.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewItem {
    pub task: u32,
    pub check: String,
}

/// The task of a graded test function name: `task3_x` → 3.
pub fn task_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("task")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || !rest[digits.len()..].starts_with('_') {
        return None;
    }
    digits.parse().ok()
}

impl Rubric {
    pub fn parse(text: &str) -> Result<Rubric, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn load(suite_dir: &Path) -> Result<Rubric, String> {
        let path = suite_dir.join("rubric.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Rubric::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn task_points(&self, task: u32) -> Option<f64> {
        self.tasks.get(&task.to_string()).copied()
    }

    /// The points of every graded test function of `suite`, or every mismatch between the two.
    pub fn function_points(
        &self,
        suite: &[SourceTest],
    ) -> Result<BTreeMap<String, f64>, Vec<String>> {
        let mut errors = Vec::new();
        for item in &self.review {
            if self.task_points(item.task).is_none() {
                errors.push(format!(
                    "review item for task {} names a task without points: {:?}",
                    item.task, item.check
                ));
            }
        }
        let graded: Vec<(&str, u32)> = suite
            .iter()
            .filter_map(|t| Some((t.name.as_str(), task_of(&t.name)?)))
            .collect();
        for (task, points) in &self.tasks {
            let Ok(number) = task.parse::<u32>() else {
                errors.push(format!("task {task:?} is not a task number"));
                continue;
            };
            if !points.is_finite() || *points < 0.0 {
                errors.push(format!("task {number} has invalid points {points}"));
            }
            if !graded.iter().any(|(_, t)| *t == number) {
                errors.push(format!(
                    "task {number} has points but no graded test (task{number}_…)"
                ));
            }
        }
        for (name, points) in &self.tests {
            if !graded.iter().any(|(n, _)| n == name) {
                errors.push(format!(
                    "points for {name}, which is not a graded test of the suite"
                ));
            } else if !points.is_finite() || *points < 0.0 {
                errors.push(format!("{name} has invalid points {points}"));
            }
        }
        let mut result = BTreeMap::new();
        let tasks: std::collections::BTreeSet<u32> = graded.iter().map(|(_, t)| *t).collect();
        for task in tasks {
            let names: Vec<&str> = graded
                .iter()
                .filter(|(_, t)| *t == task)
                .map(|(n, _)| *n)
                .collect();
            let Some(points) = self.task_points(task) else {
                for name in names {
                    errors.push(format!(
                        "{name} has no points: the rubric has no task {task}"
                    ));
                }
                continue;
            };
            let explicit: f64 = names.iter().filter_map(|n| self.tests.get(*n)).sum();
            let shared: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !self.tests.contains_key(*n))
                .collect();
            let rest = points - explicit;
            if rest < -1e-9 || (shared.is_empty() && rest.abs() > 1e-9) {
                errors.push(format!(
                    "task {task} is worth {points} points but its tests' explicit points add up to {explicit}"
                ));
                continue;
            }
            for name in names {
                let p = match self.tests.get(name) {
                    Some(p) => *p,
                    None => rest / shared.len() as f64,
                };
                result.insert(name.to_owned(), p);
            }
        }
        if errors.is_empty() {
            Ok(result)
        } else {
            Err(errors)
        }
    }

    /// The points of each libtest name (`f` or `f::case_K_x`): a function's points shared by
    /// the cases that ran. Names the rubric does not know get 0.
    pub fn test_points<'a>(
        &self,
        suite: &[SourceTest],
        names: impl IntoIterator<Item = &'a str> + Clone,
    ) -> BTreeMap<String, f64> {
        let per_function = self.function_points(suite).unwrap_or_default();
        let base = |n: &'a str| n.split_once("::").map_or(n, |(b, _)| b);
        let mut cases: BTreeMap<&str, usize> = BTreeMap::new();
        for name in names.clone() {
            *cases.entry(base(name)).or_default() += 1;
        }
        names
            .into_iter()
            .map(|name| {
                let b = base(name);
                let p = per_function.get(b).copied().unwrap_or(0.0) / cases[b] as f64;
                (name.to_owned(), p)
            })
            .collect()
    }
}

/// Points as a person writes them: `7.5`, `10`, `0.33`.
pub fn points_text(p: f64) -> String {
    let rounded = (p * 100.0).round() / 100.0;
    let text = format!("{rounded:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// An exercise's points as `cargo ipclab` shows them: for the exercise and for each task, the
/// points of the graded tests that pass, and the points possible.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Points {
    pub got: f64,
    pub of: f64,
    /// Task number to (got, of).
    pub tasks: BTreeMap<u32, (f64, f64)>,
}

impl Points {
    /// The points of `tests` (a run's results; none for an exercise not run yet, which has 0)
    /// by the rubric beside the exercise's suite, as the grader counts them. `None` when the
    /// suite has no rubric, or one that does not fit it (`cargo xtask verify` names the problem).
    pub fn of(course: &Course, exercise: &str, tests: &[TestResult]) -> Option<Points> {
        let dir = course.root.join("tests").join(exercise);
        let rubric = Rubric::load(&dir).ok()?;
        let suite = crate::source::tests_in(&std::fs::read_to_string(dir.join("main.rs")).ok()?);
        rubric.function_points(&suite).ok()?;
        let mut points = Points::default();
        for (task, of) in &rubric.tasks {
            if let Ok(task) = task.parse() {
                points.tasks.insert(task, (0.0, *of));
                points.of += of;
            }
        }
        let graded: Vec<&TestResult> = tests.iter().filter(|t| t.is_graded()).collect();
        let each = rubric.test_points(&suite, graded.iter().map(|t| t.name.as_str()));
        for test in graded.into_iter().filter(|t| t.passed) {
            let p = each.get(&test.name).copied().unwrap_or(0.0);
            points.got += p;
            if let Some((got, _)) = test.task.and_then(|task| points.tasks.get_mut(&task)) {
                *got += p;
            }
        }
        Some(points)
    }
}

/// Checks the rubric of every suite in `tests/`; returns one line per problem.
pub fn check_course(root: &Path, exercises: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for exercise in exercises {
        let dir = root.join("tests").join(exercise);
        let rubric = match Rubric::load(&dir) {
            Ok(r) => r,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let suite = match std::fs::read_to_string(dir.join("main.rs")) {
            Ok(s) => crate::source::tests_in(&s),
            Err(e) => {
                problems.push(format!("{exercise}: cannot read its suite: {e}"));
                continue;
            }
        };
        if let Err(errors) = rubric.function_points(&suite) {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| format!("{exercise} rubric: {e}")),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(names: &[&str]) -> Vec<SourceTest> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| SourceTest {
                name: (*n).to_owned(),
                offset: i,
                code: String::new(),
            })
            .collect()
    }

    #[test]
    fn tests_share_their_task_equally_unless_given_points() {
        let rubric = Rubric::parse("[tasks]\n1 = 2\n2 = 3\n[tests]\ntask2_big = 2\n").unwrap();
        let s = suite(&["task1_a", "task1_b", "task2_big", "task2_small", "bonus_x"]);
        let points = rubric.function_points(&s).unwrap();
        assert_eq!(points["task1_a"], 1.0);
        assert_eq!(points["task2_big"], 2.0);
        assert_eq!(points["task2_small"], 1.0);
        assert!(!points.contains_key("bonus_x"));
        let by_name = rubric.test_points(&s, ["task1_a::case_1_x", "task1_a::case_2_y", "task1_b"]);
        assert_eq!(by_name["task1_a::case_1_x"], 0.5);
        assert_eq!(by_name["task1_b"], 1.0);
    }

    #[test]
    fn mismatches_with_the_suite_are_errors_that_name_the_test() {
        let rubric = Rubric::parse("[tasks]\n1 = 2\n3 = 1\n[tests]\ntask1_gone = 1\n").unwrap();
        let errors = rubric
            .function_points(&suite(&["task1_a", "task2_b"]))
            .unwrap_err();
        let all = errors.join("\n");
        assert!(all.contains("task2_b has no points"), "{all}");
        assert!(
            all.contains("task 3 has points but no graded test"),
            "{all}"
        );
        assert!(all.contains("points for task1_gone"), "{all}");
    }

    #[test]
    fn explicit_points_may_not_exceed_the_task() {
        let rubric = Rubric::parse("[tasks]\n1 = 1\n[tests]\ntask1_a = 2\n").unwrap();
        let errors = rubric
            .function_points(&suite(&["task1_a", "task1_b"]))
            .unwrap_err();
        assert!(errors[0].contains("add up to 2"), "{errors:?}");
        assert!(Rubric::parse("[tasks]\n1 = 1\n[other]\n").is_err());
    }

    /// The committed rubrics agree with their suites (verify checks this too).
    #[test]
    fn every_rubric_of_the_course_matches_its_suite() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let exercises: Vec<String> = (1..=9).map(|n| format!("exercise{n:02}")).collect();
        let problems = check_course(root, &exercises);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn points_of_a_run_follow_the_rubric_and_share_a_function_among_its_cases() {
        let dir = tempfile::tempdir().unwrap();
        let suite_dir = dir.path().join("tests/exercise01");
        std::fs::create_dir_all(&suite_dir).unwrap();
        std::fs::write(
            suite_dir.join("main.rs"),
            "#[rstest]\n#[case::a(1)]\n#[case::b(2)]\nfn task1_cases(#[case] n: u32) {}\n\n\
             #[test]\nfn task2_one() {}\n",
        )
        .unwrap();
        std::fs::write(suite_dir.join("rubric.toml"), "[tasks]\n1 = 4\n2 = 6\n").unwrap();
        let course = Course {
            root: dir.path().to_path_buf(),
        };
        let result = |name: &str, passed| TestResult {
            name: name.to_owned(),
            task: crate::suite::task_of(name),
            passed,
            message: None,
        };
        let run = [
            result("task1_cases::case_1_a", true),
            result("task1_cases::case_2_b", false),
            result("task2_one", false),
            result("bonus_x", true),
        ];
        let points = Points::of(&course, "exercise01", &run).unwrap();
        assert_eq!((points.got, points.of), (2.0, 10.0));
        assert_eq!(points.tasks[&1], (2.0, 4.0));
        assert_eq!(points.tasks[&2], (0.0, 6.0));
        let fresh = Points::of(&course, "exercise01", &[]).unwrap();
        assert_eq!((fresh.got, fresh.of), (0.0, 10.0));
        assert!(
            Points::of(&course, "exercise02", &run).is_none(),
            "no rubric"
        );
    }

    #[test]
    fn review_items_are_read_and_must_name_a_task_with_points() {
        let rubric = Rubric::parse(
            "[tasks]\n1 = 10\n[[review]]\ntask = 1\ncheck = \"Acquire and Release\"\n\
             [[review]]\ntask = 2\ncheck = \"nowhere\"\n",
        )
        .unwrap();
        assert_eq!(rubric.review.len(), 2);
        assert_eq!(rubric.review[0].check, "Acquire and Release");
        let errors = rubric
            .function_points(&suite(&["task1_a"]))
            .expect_err("task 2 has no points");
        assert!(
            errors.iter().any(|e| e.contains("review item for task 2")),
            "{errors:?}"
        );
    }
}
