//! `cargo xtask handout --no-check` into a temporary directory: what the students get. The full
//! check (build, every graded test failing) is the command's own job and takes minutes; this test
//! checks the contents and that cargo reads the workspace.

use std::path::Path;
use std::process::Command;

#[test]
fn the_handout_has_the_course_without_solutions_or_instructor_files() {
    let course = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("class");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["handout", "--no-check"])
        .arg(&dir)
        .current_dir(course)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for absent in [
        "solutions",
        "grading",
        "xtask",
        ".ci",
        "CONTRIBUTING.md",
        "ipclab/tests",
    ] {
        assert!(!dir.join(absent).exists(), "{absent} is in the handout");
    }
    for present in [
        "exercises/exercise01/src/lib.rs",
        "exercises/exercise09/hints.md",
        "tests/exercise01/main.rs",
        "tests/support/Cargo.toml",
        "ipclab/src/cli.rs",
        "book/book.toml",
        "Cargo.lock",
        ".github/workflows/grade.yml",
    ] {
        assert!(dir.join(present).is_file(), "{present} is missing");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("come from your instructor"), "{readme}");
    assert!(!readme.contains("cargo xtask"), "{readme}");
    let starter = std::fs::read_to_string(dir.join("exercises/exercise01/src/lib.rs")).unwrap();
    assert!(!starter.contains("BEGIN SOLUTION"));
    assert_eq!(
        starter,
        std::fs::read_to_string(course.join("exercises/exercise01/src/lib.rs")).unwrap()
    );

    // Cargo reads the handout's workspace: every exercise, no xtask.
    let metadata = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "{}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let metadata = String::from_utf8_lossy(&metadata.stdout);
    assert!(metadata.contains("\"name\":\"exercise09\""));
    assert!(!metadata.contains("\"name\":\"xtask\""));

    // Writing into a directory that is not empty is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["handout", "--no-check"])
        .arg(&dir)
        .current_dir(course)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}
