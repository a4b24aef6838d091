//! What the measuring commands (`cargo xtask mutants`, `cargo xtask variants`) share: a scratch
//! copy of the tree they may change, and the stamp that says what a report measured.
//!
//! The graded suites live outside the solutions workspace (`solutions/exerciseNN/Cargo.toml`
//! points at `../../tests/exerciseNN/main.rs`), so a copy of `solutions/` alone does not build:
//! the copy holds `solutions/` and `tests/` side by side, as the course does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary copy of `solutions/` and `tests/`, removed when dropped.
pub struct ScratchTree {
    dir: tempfile::TempDir,
}

impl ScratchTree {
    /// Copies the course's `solutions/` and `tests/` and the exercises' `src/given.rs` (no build
    /// output, no earlier results).
    ///
    /// The copies get fresh modification times, on purpose: the measuring commands keep one
    /// target directory across copies (so that dependencies are built once), and cargo decides
    /// freshness by modification time. A copy older than the last build in that directory would
    /// be taken as built already and the old binary run.
    pub fn new(root: &Path, prefix: &str) -> Result<ScratchTree, String> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        for top in ["solutions", "tests"] {
            copy_tree(&root.join(top), &dir.path().join(top))?;
        }
        // The given API of each exercise is written once, in the student's crate, and the
        // solution includes it from there (`#[path = "../../../exercises/exerciseNN/src/given.rs"]`).
        let exercises = root.join("exercises");
        for entry in fs::read_dir(&exercises)
            .map_err(|e| format!("cannot read {}: {e}", exercises.display()))?
            .flatten()
        {
            let given = entry.path().join("src/given.rs");
            if given.is_file() {
                let to = dir
                    .path()
                    .join("exercises")
                    .join(entry.file_name())
                    .join("src");
                fs::create_dir_all(&to)
                    .map_err(|e| format!("cannot create {}: {e}", to.display()))?;
                fs::copy(&given, to.join("given.rs"))
                    .map_err(|e| format!("cannot copy {}: {e}", given.display()))?;
            }
        }
        // tests/support inherits its package fields and dependencies from the root workspace:
        // the copy gets that workspace, with the support crate as its only member.
        let manifest = root_manifest(root)?;
        fs::write(dir.path().join("Cargo.toml"), manifest)
            .map_err(|e| format!("cannot write the copy's Cargo.toml: {e}"))?;
        Ok(ScratchTree { dir })
    }

    /// The copy's root (it holds `solutions/` and `tests/`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The copy's solutions workspace.
    pub fn solutions(&self) -> PathBuf {
        self.dir.path().join("solutions")
    }
}

/// The root Cargo.toml with `tests/support` as the workspace's only member.
fn root_manifest(root: &Path) -> Result<String, String> {
    let path = root.join("Cargo.toml");
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut manifest: toml::Table = text
        .parse()
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let workspace = manifest
        .get_mut("workspace")
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| format!("{} has no [workspace]", path.display()))?;
    workspace.insert(
        "members".into(),
        toml::Value::Array(vec![toml::Value::String("tests/support".into())]),
    );
    workspace.remove("default-members");
    Ok(manifest.to_string())
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let walk = walkdir::WalkDir::new(from).into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        // Build output and cargo-mutants' results are no part of the sources.
        !(e.file_type().is_dir() && (name == "target" || name.starts_with("mutants.out")))
    });
    for entry in walk {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let rel = entry
            .path()
            .strip_prefix(from)
            .expect("walkdir stays below its root");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&dest)
                .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        } else if entry.file_type().is_file() {
            // fs::copy keeps the permissions, not the times: the copy is newer than any build.
            fs::copy(entry.path(), &dest)
                .map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// When, on what and where a measurement was taken.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// `2026-12-02 01:23 UTC`.
    pub date: String,
    /// The short commit of the course, with `+changes` when solutions/ or tests/ differ from it.
    pub commit: String,
    /// `2 CPUs (Intel Xeon …), Linux 6.18`.
    pub machine: String,
}

impl Stamp {
    pub fn now(root: &Path) -> Stamp {
        Stamp {
            date: output_of(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
                .unwrap_or_else(|| "unknown date".into()),
            commit: commit(root),
            machine: machine(),
        }
    }
}

fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn commit(root: &Path) -> String {
    let head = output_of(
        Command::new("git")
            .args(["rev-parse", "--short=10", "HEAD"])
            .current_dir(root),
    )
    .unwrap_or_else(|| "unknown commit".into());
    let changed = output_of(
        Command::new("git")
            // The measurements' own reports and the variant patches (a variants report lists
            // them) are no part of the sources measured.
            .args([
                "status",
                "--porcelain",
                "--",
                "solutions",
                "tests",
                "exercises",
            ])
            .args([":(exclude)tests/mutants", ":(exclude)tests/variants"])
            .current_dir(root),
    )
    .is_some();
    if changed {
        format!("{head}+changes")
    } else {
        head
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{cpus} CPUs ({model}), Linux {kernel}")
}

/// A single line fit for a Markdown table cell.
pub fn cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.replace('|', "\\|");
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(159).collect::<String>())
    } else {
        line
    }
}
