//! End to end: `cargo xtask grade` on real submissions of exercise01, and Gradescope's
//! `run_autograder` pointed at temporary directories instead of /autograder.
//!
//! Cost: the first run on a cold grading target directory compiles exercise01's dependencies
//! once (about 40 s on 2 cores); after that the whole file takes about 10 s. Every submission
//! recompiles only exercise01 and its suite.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn course() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the course root")
        .to_path_buf()
}

fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.current_dir(course());
    cmd
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A student's submission of exercise01 whose `src` is a copy of `src`.
fn submission(class: &Path, student: &str, src: &Path) -> PathBuf {
    let dir = class.join(student);
    copy_dir(src, &dir.join("exercises/exercise01/src"));
    dir
}

fn starter_src() -> PathBuf {
    course().join("exercises/exercise01/src")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

#[test]
fn a_class_is_graded_from_the_courses_own_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let class = tmp.path().join("class");
    submission(&class, "starter", &starter_src());
    submission(
        &class,
        "solution",
        &course().join("solutions/exercise01/src"),
    );
    // Does not compile.
    let broken = submission(&class, "broken", &starter_src());
    let lib = broken.join("exercises/exercise01/src/lib.rs");
    let mut text = fs::read_to_string(&lib).unwrap();
    text.push_str("\nfn oops( {\n");
    fs::write(&lib, text).unwrap();
    // The starter (with a change, so that it really runs) plus a suite, a manifest and a support
    // crate of the student's own that would pass everything: none of them may be used.
    let tampered = submission(&class, "tampered", &starter_src());
    let lib = tampered.join("exercises/exercise01/src/lib.rs");
    let mut text = fs::read_to_string(&lib).unwrap();
    text.push_str("\n// my work\n");
    fs::write(&lib, text).unwrap();
    // What the course gives is graded as the course has it, and the report says so.
    let given = tampered.join("exercises/exercise01/src/given.rs");
    let mut text = fs::read_to_string(&given).unwrap();
    text.push_str("\n// my change to what is given\n");
    fs::write(&given, text).unwrap();
    fs::create_dir_all(tampered.join("tests/exercise01")).unwrap();
    fs::write(
        tampered.join("tests/exercise01/main.rs"),
        "#[test]\nfn task1_child_changes_only_its_own_copy_of_memory() {}\n#[test]\nfn task2_anything() {}\n",
    )
    .unwrap();
    fs::write(
        tampered.join("exercises/exercise01/Cargo.toml"),
        "[package]\nname = \"exercise01\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[[test]]\nname = \"exercise01\"\npath = \"../../tests/exercise01/main.rs\"\n",
    )
    .unwrap();

    let csv = tmp.path().join("grades.csv");
    let reports = tmp.path().join("reports");
    let out = xtask()
        .args(["grade", "--class"])
        .arg(&class)
        .args(["--exercise", "1", "--format", "json", "--out"])
        .arg(&csv)
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "grading failed:\n{stderr}");

    let solution = read_json(&reports.join("solution.json"));
    let max = solution["max_score"].as_u64().unwrap();
    assert!(max > 0);
    assert_eq!(
        fs::read_to_string(&csv).unwrap(),
        // Points from the rubric: every exercise is worth 10.
        "student,exercise01,total\nbroken,0,0\nsolution,10,10\nstarter,0,0\ntampered,0,0\n",
        "{stderr}"
    );
    // One progress line per student, in order.
    let progress: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(progress.len(), 4, "{stderr}");
    assert!(
        progress[1].starts_with("[2/4] solution: exercise01 "),
        "{stderr}"
    );

    let e = &solution["exercises"][0];
    assert_eq!(e["outcome"], "ran");
    assert_eq!(e["sources"], "submitted");
    // The only notes of a correct submission say which walls its tests ran behind.
    let notes: Vec<&str> = e["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("sandbox: ")),
        "the report names the sandbox: {notes:?}"
    );
    for note in &notes {
        assert!(
            note.starts_with("sandbox: ") || note.starts_with("WARNING: graded WITHOUT"),
            "the solution left something behind: {note}"
        );
    }
    assert!(e["tests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["passed"] == true));
    let tasks = e["tasks"].as_array().unwrap();
    assert!(tasks.len() >= 2);
    assert_eq!(
        tasks
            .iter()
            .map(|t| t["max_score"].as_u64().unwrap())
            .sum::<u64>(),
        max
    );

    for student in ["starter", "tampered"] {
        let r = read_json(&reports.join(format!("{student}.json")));
        let e = &r["exercises"][0];
        assert_eq!(e["max_score"].as_u64(), Some(max), "{student}");
        for t in e["tests"].as_array().unwrap() {
            assert_eq!(t["passed"], false, "{student}: {t}");
            let message = t["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("not yet implemented: Task "),
                "{student}: {t}"
            );
        }
    }
    assert_eq!(
        read_json(&reports.join("starter.json"))["exercises"][0]["sources"],
        "untouched"
    );
    let tampered = read_json(&reports.join("tampered.json"));
    assert!(
        tampered["exercises"][0]["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("src/given.rs differs")),
        "{tampered}"
    );

    let r = read_json(&reports.join("broken.json"));
    let e = &r["exercises"][0];
    assert_eq!(e["outcome"], "build_failed");
    assert_eq!(e["max_score"].as_u64(), Some(max));
    let first = e["message"].as_str().unwrap();
    assert!(
        first.starts_with("error") && first.contains("exercises/exercise01/src/lib.rs"),
        "the compiler's first error, with its place: {first}"
    );
    assert!(
        !first.contains("ipclab-grade-"),
        "no temporary paths: {first}"
    );
}

#[test]
fn run_autograder_writes_gradescope_results_for_a_submission() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("source")).unwrap();
    fs::write(
        root.path().join("source/config.sh"),
        "IPCLAB_EXERCISES=\"1\"\nIPCLAB_VISIBILITY=\"after_published\"\n",
    )
    .unwrap();
    // The untouched starter: graded from the starter's cached run, so this compiles nothing new.
    copy_dir(
        &starter_src(),
        &root
            .path()
            .join("submission/ipclab-main/exercises/exercise01/src"),
    );
    let status = Command::new(course().join("grading/gradescope/run_autograder"))
        .env("AUTOGRADER_ROOT", root.path())
        .env("IPCLAB_COURSE", course())
        .env("IPCLAB_XTASK", env!("CARGO_BIN_EXE_xtask"))
        .status()
        .unwrap();
    assert!(status.success());
    let results = read_json(&root.path().join("results/results.json"));
    assert_eq!(results["score"], 0.0);
    assert_eq!(results["visibility"], "after_published");
    let tests = results["tests"].as_array().unwrap();
    assert!(!tests.is_empty());
    assert_eq!(tests[0]["number"], "1.1");
    assert_eq!(tests[0]["status"], "failed");
    // A test is worth its share of its task's points (the rubric).
    assert!(tests[0]["max_score"].as_f64().unwrap() > 0.0);
    let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
    assert!(
        (max - 10.0).abs() < 1e-9,
        "exercise01 is worth 10 points: {max}"
    );
    assert!(tests[0]["output"]
        .as_str()
        .unwrap()
        .starts_with("not yet implemented: Task 1"));
    assert!(results["output"].as_str().unwrap().contains("exercise01"));
}

#[test]
fn run_autograder_explains_an_upload_without_exercises() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("submission/homework")).unwrap();
    fs::write(root.path().join("submission/homework/lib.rs"), "").unwrap();
    let status = Command::new(course().join("grading/gradescope/run_autograder"))
        .env("AUTOGRADER_ROOT", root.path())
        .env("IPCLAB_COURSE", course())
        .env("IPCLAB_XTASK", env!("CARGO_BIN_EXE_xtask"))
        .env("IPCLAB_EXERCISES", "1")
        .status()
        .unwrap();
    assert!(status.success());
    let results = read_json(&root.path().join("results/results.json"));
    assert_eq!(results["score"], 0.0);
    let output = results["output"].as_str().unwrap();
    assert!(
        output.contains("no exercises/exerciseNN/ folder"),
        "{output}"
    );
}

#[test]
fn run_autograder_never_keeps_a_results_json_it_did_not_write() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("submission/exercises/exercise01/src")).unwrap();
    // A "grader" that, like a hostile submission, writes its own results and dies.
    let fake = root.path().join("fake-xtask");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\nmkdir -p {0}/results\necho '{{\"score\": 1000, \"tests\": []}}' > {0}/results/results.json\nkill -9 $$\n",
            root.path().display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let status = Command::new(course().join("grading/gradescope/run_autograder"))
        .env("AUTOGRADER_ROOT", root.path())
        .env("IPCLAB_COURSE", course())
        .env("IPCLAB_XTASK", &fake)
        .status()
        .unwrap();
    assert!(status.success());
    let results = read_json(&root.path().join("results/results.json"));
    assert_eq!(results["score"], 0, "{results}");
    assert!(
        results["output"]
            .as_str()
            .unwrap()
            .contains("the grader failed"),
        "{results}"
    );
}
