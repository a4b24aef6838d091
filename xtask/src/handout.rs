//! `cargo xtask handout <DIR>`: the repository an instructor gives students.
//!
//! The public course (this repository) keeps its solutions for self-learners. A class needs the
//! same course without them: no `solutions/`, none of the instructor's tools (`grading/`, this
//! `xtask`, the CI script, the maintainers' guide), a README written for students, and the
//! GitHub Actions workflow that grades every push with the instructor's copy of the suites.
//! The copy is checked on the spot: it builds, every graded test fails on it, `cargo ipclab`
//! works in it and `cargo ipclab solution` there says that solutions come from the instructor.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use ipclab::course::{Course, Implementation};
use ipclab::suite::{self, RunOptions};

/// The student's README, in place of the course's.
const README: &str = include_str!("../handout/README.md");
/// Where the grading workflow template lives in the course, and where the handout puts it.
pub const WORKFLOW: &str = "grading/github/grade.yml";
const WORKFLOW_IN_HANDOUT: &str = ".github/workflows/grade.yml";

/// Tracked paths the handout leaves out: solutions, the instructor's and maintainers' tools,
/// and the tooling's own tests (which need the solutions).
const LEFT_OUT: &[&str] = &[
    "solutions/",
    "grading/",
    "xtask/",
    ".ci/",
    "ipclab/tests/",
    "CONTRIBUTING.md",
    "README.md",
];

/// Whether a tracked path of the course belongs in the handout.
pub fn handed_out(path: &str) -> bool {
    !LEFT_OUT
        .iter()
        .any(|out| path == *out || (out.ends_with('/') && path.starts_with(out)))
}

/// The course's tracked files (as they are in the working tree), relative to `root`.
fn tracked_files(root: &Path) -> Result<Vec<String>, String> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run git ls-files: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "git ls-files failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter(|p| root.join(p).is_file())
        .map(str::to_owned)
        .collect())
}

/// The root `Cargo.toml` without the `xtask` member (the handout has no xtask), its opening
/// comment (which speaks of the solutions) rewritten for students.
fn handout_manifest(manifest: &str) -> String {
    let body = manifest
        .find("[workspace]")
        .map_or(manifest, |at| &manifest[at..]);
    let header = "# The course workspace. You edit `exercises/`; the graded suites live in `tests/` and are\n\
                  # compiled into each exercise package as its integration test.\n";
    format!("{header}{body}")
        .replace(", \"xtask\"", "")
        .replace("\"xtask\", ", "")
        .replace("exclude = [\"solutions\"]\n", "")
}

/// `.cargo/config.toml` without the `cargo xtask` alias.
fn handout_cargo_config(config: &str) -> String {
    config
        .lines()
        .filter(|l| !l.starts_with("xtask =") && !l.contains("`cargo xtask"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes the handout of the course at `root` into `dir`, which must not exist or be empty.
pub fn write(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, String> {
    if dir.exists()
        && fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty: the handout goes into a new or empty directory",
            dir.display()
        ));
    }
    let mut written = Vec::new();
    let mut put = |relative: &str, contents: Vec<u8>| -> Result<(), String> {
        let target = dir.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&target, contents)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        written.push(PathBuf::from(relative));
        Ok(())
    };
    for path in tracked_files(root)? {
        if !handed_out(&path) {
            continue;
        }
        let source = root.join(&path);
        let bytes = fs::read(&source).map_err(|e| format!("cannot read {path}: {e}"))?;
        let bytes = match path.as_str() {
            "Cargo.toml" => handout_manifest(&String::from_utf8_lossy(&bytes)).into_bytes(),
            ".cargo/config.toml" => {
                handout_cargo_config(&String::from_utf8_lossy(&bytes)).into_bytes()
            }
            _ => bytes,
        };
        put(&path, bytes)?;
    }
    put("README.md", README.as_bytes().to_vec())?;
    let workflow =
        fs::read(root.join(WORKFLOW)).map_err(|e| format!("cannot read {WORKFLOW}: {e}"))?;
    put(WORKFLOW_IN_HANDOUT, workflow)?;
    Ok(written)
}

/// The on-the-spot check of a written handout. Builds in a temporary target directory, so the
/// handout is left as written.
pub fn check(dir: &Path) -> Result<Vec<String>, String> {
    let target = tempfile::Builder::new()
        .prefix("ipclab-handout-target-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?;
    let target_env = target.path().display().to_string();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut done = Vec::new();

    let build = Command::new(&cargo)
        .args(["build", "--quiet", "--workspace", "--all-targets"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target_env)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !build.success() {
        return Err("the handout does not build (cargo build --workspace --all-targets)".into());
    }
    done.push("it builds (cargo build --workspace --all-targets)".to_owned());

    let course = Course {
        root: dir.to_path_buf(),
    };
    let exercises = course
        .exercises()
        .map_err(|e| format!("cannot list the handout's exercises: {e}"))?;
    let options = RunOptions {
        env: vec![
            ("CARGO_TARGET_DIR".into(), target_env.clone()),
            ("CI".into(), "true".into()),
        ],
        ..RunOptions::default()
    };
    for exercise in &exercises {
        let run = suite::run(&course, exercise, Implementation::Exercise, &options)
            .map_err(|e| format!("{exercise}: could not run its suite: {e}"))?;
        let verdict = crate::judge(&run, Implementation::Exercise);
        if !verdict.ok {
            return Err(format!("{exercise}: {}", verdict.detail));
        }
    }
    done.push(format!(
        "every graded test of the {} exercises fails on it",
        exercises.len()
    ));

    let ipclab = |args: &[&str]| {
        Command::new(&cargo)
            .arg("ipclab")
            .args(args)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", &target_env)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo ipclab: {e}"))
    };
    let list = ipclab(&[])?;
    if !list.status.success() {
        return Err(format!(
            "`cargo ipclab` fails in the handout: {}",
            String::from_utf8_lossy(&list.stderr).trim()
        ));
    }
    done.push("`cargo ipclab` lists the course".to_owned());
    let solution = ipclab(&["solution", "1"])?;
    let said = String::from_utf8_lossy(&solution.stderr);
    if solution.status.success() || !said.contains("instructor") {
        return Err(format!(
            "`cargo ipclab solution 1` should say that solutions come from the instructor; it said: {}",
            said.trim()
        ));
    }
    done.push("`cargo ipclab solution 1` says the solution comes from the instructor".to_owned());
    // The first `cargo ipclab` run keeps its progress in .ipclab/: not part of the handout.
    let _ = fs::remove_dir_all(dir.join(".ipclab"));
    Ok(done)
}

pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let (no_check, dirs): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|a| a.as_str() == "--no-check");
    let [dir] = dirs.as_slice() else {
        eprintln!("usage: cargo xtask handout [--no-check] <DIR>");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir.as_str());
    match write(root, dir) {
        Ok(files) => println!(
            "handout: {} files written to {}",
            files.len(),
            dir.display()
        ),
        Err(e) => {
            eprintln!("xtask handout: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !no_check.is_empty() {
        return ExitCode::SUCCESS;
    }
    println!("handout: checking it (builds every exercise: a few minutes)");
    match check(dir) {
        Ok(done) => {
            for line in done {
                println!("ok     {line}");
            }
            println!("handout: ready; make it the students' repository (git init, push)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask handout: the handout fails its check: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solutions_and_instructor_files_stay_out() {
        for path in [
            "solutions/exercise01/src/lib.rs",
            "grading/gradescope/setup.sh",
            "xtask/src/main.rs",
            ".ci/run",
            "CONTRIBUTING.md",
            "ipclab/tests/cli.rs",
        ] {
            assert!(!handed_out(path), "{path}");
        }
        for path in [
            "exercises/exercise01/src/lib.rs",
            "tests/exercise01/main.rs",
            "tests/support/src/lib.rs",
            "ipclab/src/cli.rs",
            "book/src/pipes.md",
            "Cargo.lock",
        ] {
            assert!(handed_out(path), "{path}");
        }
    }

    #[test]
    fn the_manifest_loses_xtask_and_the_config_its_alias() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let manifest = handout_manifest(&fs::read_to_string(root.join("Cargo.toml")).unwrap());
        assert!(!manifest.contains("xtask"), "{manifest}");
        assert!(manifest.contains("\"ipclab\""), "{manifest}");
        let config =
            handout_cargo_config(&fs::read_to_string(root.join(".cargo/config.toml")).unwrap());
        assert!(!config.contains("xtask"), "{config}");
        assert!(config.contains("ipclab = "), "{config}");
    }
}
