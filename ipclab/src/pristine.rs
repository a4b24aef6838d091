//! Untouched starters are known without a run. An exercise whose starter and suite are exactly
//! what `reset` would restore (the course's published version in git, see [`git`]) fails every
//! graded test: `cargo xtask verify` checks that for every starter. So the first `cargo ipclab`
//! on a fresh clone shows the whole course at once instead of building and running nine suites.
//!
//! The number of graded tests (the points) of such an exercise is read from its suite's source:
//! one per `fn taskN_…` test, or one per `#[case]` of an rstest test. The first real run replaces
//! it with libtest's own count.

use std::collections::BTreeSet;
use std::fs;

use crate::course::Course;
use crate::git;

/// The exercises whose `exercises/NN/` and `tests/NN/` are identical to the published starter.
/// Empty when the course is not a git checkout (then every exercise is run, as before).
pub fn untouched(course: &Course) -> BTreeSet<String> {
    untouched_from_git(course).unwrap_or_default()
}

fn untouched_from_git(course: &Course) -> Option<BTreeSet<String>> {
    let source = git::starter_source(course).ok()?;
    let published: BTreeSet<String> =
        git::lines(course, &["ls-tree", "--name-only", &source, "exercises/"])?
            .into_iter()
            .filter_map(|path| path.strip_prefix("exercises/").map(str::to_owned))
            .collect();
    // Tracked files that differ from the source (staged or not), and files git does not track.
    let mut touched = git::lines(
        course,
        &[
            "diff",
            "--name-only",
            "--no-renames",
            &source,
            "--",
            "exercises",
            "tests",
        ],
    )?;
    touched.extend(git::lines(
        course,
        &[
            "ls-files",
            "--others",
            "--exclude-standard",
            "--",
            "exercises",
            "tests",
        ],
    )?);
    let touched: BTreeSet<String> = touched
        .iter()
        .filter_map(|path| {
            let mut parts = path.splitn(3, '/');
            let (top, name) = (parts.next()?, parts.next()?);
            matches!(top, "exercises" | "tests").then(|| name.to_owned())
        })
        .collect();
    Some(published.difference(&touched).cloned().collect())
}

/// How many graded tests the suite of `exercise` has, from its source; `None` if it cannot be
/// read or has none (then the exercise is run to find out).
pub fn graded_tests(course: &Course, exercise: &str) -> Option<usize> {
    let path = course.root.join("tests").join(exercise).join("main.rs");
    let count = count_graded(&fs::read_to_string(path).ok()?);
    (count > 0).then_some(count)
}

/// One per `fn taskN_…`, times the `#[case]` attributes above it (an rstest test).
fn count_graded(source: &str) -> usize {
    let mut cases = 0;
    let mut total = 0;
    for line in source.lines().map(str::trim) {
        // `#[case::name(…)]` or `#[case(…)]` is a case; a bare `#[case]` marks a parameter.
        if line.starts_with("#[case::") || line.starts_with("#[case(") {
            cases += 1;
        } else if let Some(name) = test_fn_name(line) {
            if crate::suite::task_of(name).is_some() {
                total += cases.max(1);
            }
            cases = 0;
        }
    }
    total
}

/// `fn name(` at the start of a line (after `pub`/`async`), as a test function is written.
fn test_fn_name(line: &str) -> Option<&str> {
    let rest = line
        .trim_start_matches("pub ")
        .trim_start_matches("async ")
        .strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graded_tests_count_each_case() {
        let suite = r#"
#[rstest]
#[case::owner_only(0o600)]
#[case::everyone(0o666)]
fn task1_mode(#[case] mode: u32) {}

#[test]
fn task2_round_trip() {}

#[rstest]
#[case(1, 2)]
fn task3_multi_line(
    #[case] a: u32,
    #[case] b: u32,
) {}

#[test]
fn bonus_unix_socket() {}

fn helper() {}
#[rstest]
#[case::a(1)]
fn taskx_not_graded(#[case] n: u32) {}
"#;
        assert_eq!(count_graded(suite), 4);
    }

    #[test]
    fn the_real_suites_have_graded_tests() {
        let course = Course {
            root: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .to_path_buf(),
        };
        for exercise in course.exercises().unwrap() {
            assert!(
                graded_tests(&course, &exercise).is_some(),
                "{exercise}: no graded test found in its suite's source"
            );
        }
    }
}
