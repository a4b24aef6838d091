//! `cargo ipclab trace` on a real test, where strace is installed (CI installs it).

use std::path::Path;
use std::process::Command;

use assert_cmd::assert::OutputAssertExt;
use assert_cmd::cargo::CommandCargoExt;
use predicates::prelude::*;

#[test]
fn tracing_a_starter_test_draws_the_test_process_and_writes_an_svg() {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("note: strace is not installed; skipping the end-to-end trace test");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = tempfile::tempdir().unwrap();
    let svg = out.path().join("trace.svg");
    let assert = Command::cargo_bin("ipclab")
        .unwrap()
        .args(["--course-dir"])
        .arg(root)
        .args(["trace", "1", "task1_parent_reaps_the_child", "--output"])
        .arg(&svg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    // The starter's task 1 is `todo!()`: the test process runs, panics and exits.
    assert!(
        predicate::str::contains("P1").eval(&stdout) && stdout.contains("the test"),
        "{stdout}"
    );
    assert!(stdout.contains("exits with status"), "{stdout}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.starts_with("<svg") && picture.contains("the test"),
        "{picture}"
    );
}

#[test]
fn without_strace_one_line_says_how_to_install_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let empty = tempfile::tempdir().unwrap();
    Command::cargo_bin("ipclab")
        .unwrap()
        .arg("--course-dir")
        .arg(root)
        .args(["trace", "1"])
        .env("PATH", empty.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "strace is not installed: install it with `sudo apt-get install strace`",
        ))
        .stderr(predicate::function(|s: &str| s.lines().count() == 1));
}
