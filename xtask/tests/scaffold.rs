//! `cargo xtask new-exercise`, run on a copy of the course: every place of the new exercise
//! exists, both workspaces still parse with it, and a second run refuses to overwrite. (Whether
//! `verify` accepts it means building and running it: the maintainer's `cargo xtask verify
//! exercise10` does that, not this test.)

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn course_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The course's sources, without build output or git's store.
fn copy_course(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | ".git" | "build")) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_course(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

fn parses(manifest: &Path) -> String {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{} does not parse: {}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_new_exercise_appears_in_every_place_and_the_workspaces_still_parse() {
    let tmp = tempfile::Builder::new()
        .prefix("ipclab-scaffold-")
        .tempdir()
        .unwrap();
    let course = tmp.path();
    copy_course(course_root(), course).unwrap();
    let out = Command::new(XTASK)
        .args(["new-exercise", "--course-dir"])
        .arg(course)
        .args(["10", "demo", "a demo mechanism"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for path in [
        "exercises/exercise10/Cargo.toml",
        "exercises/exercise10/src/lib.rs",
        "exercises/exercise10/README.md",
        "exercises/exercise10/hints.md",
        "solutions/exercise10/Cargo.toml",
        "solutions/exercise10/src/lib.rs",
        "tests/exercise10/main.rs",
        "book/src/demo.md",
        "book/src/exercises/exercise10.md",
    ] {
        assert!(course.join(path).is_file(), "{path} is missing");
    }
    let read = |p: &str| fs::read_to_string(course.join(p)).unwrap();
    assert!(read("book/src/SUMMARY.md")
        .contains("  - [Exercise 10: a demo mechanism](exercises/exercise10.md)"));
    assert!(read("book/src/SUMMARY.md").contains("- [a demo mechanism](demo.md)"));
    assert!(read("README.md").contains("| `exercise10` | a demo mechanism |"));
    assert!(read("book/src/exercises/exercise10.md")
        .contains("{{#include ../../../exercises/exercise10/README.md:tasks}}"));
    let task_statement = read("exercises/exercise10/README.md");
    assert!(
        task_statement.contains("<!-- ANCHOR: tasks -->")
            && task_statement.contains("<!-- ANCHOR_END: tasks -->")
            && task_statement.starts_with("# Exercise 10: a demo mechanism\n")
    );
    assert!(read("tests/exercise10/main.rs").contains("fn task1_"));
    assert_eq!(
        read("exercises/exercise10/Cargo.toml"),
        read("solutions/exercise10/Cargo.toml"),
        "starter and solution manifests are identical"
    );
    assert!(parses(&course.join("Cargo.toml")).contains("\"name\":\"exercise10\""));
    assert!(parses(&course.join("solutions/Cargo.toml")).contains("\"name\":\"exercise10\""));

    // A second run writes nothing and says why, in one line.
    let summary = read("book/src/SUMMARY.md");
    let again = Command::new(XTASK)
        .args(["new-exercise", "--course-dir"])
        .arg(course)
        .args(["10", "demo", "a demo mechanism"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(read("book/src/SUMMARY.md"), summary);
}

#[test]
fn bad_arguments_are_a_usage_error() {
    let out = Command::new(XTASK)
        .args(["new-exercise", "1", "Not A Slug", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a two-digit exercise number"));
}
