//! `cargo xtask new-exercise <NN> <slug> "<title>"`: a new exercise in every place it lives, so
//! that `cargo xtask verify exerciseNN` accepts it at once and the maintainer starts from a
//! compiling, graded skeleton instead of copying exercise01 by hand (CONTRIBUTING.md lists the
//! places).
//!
//! It writes the starter, the solution, the suite (one graded test), the hints, the chapter and
//! the book's exercise page, and adds the SUMMARY.md entry and the README table row. It never
//! overwrites: if any of the files exists, it stops before writing anything.
//!
//! The templates are the constants below; placeholders are `{NN}` (two digits), `{N}` (the
//! number), `{SLUG}` and `{TITLE}`. The suite is [`SUITE`], kept as one string so that a change of
//! the suite API (`ipclab_support::isolated`) is one edit here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str =
    "cargo xtask new-exercise <NN> <slug> \"<title>\"   add exercise NN in every place it lives";

/// The graded suite: one graded test, run isolated, with the kernel as the witness.
pub const SUITE: &str = r#"//! The graded suite of exercise {NN}: {TITLE}.
//!
//! Each test grades one behaviour of one task (`taskN_…`) and runs in a process of its own with
//! a deadline (`isolated`); when the deadline passes, the hint names the usual cause of a hang.

use exercise{NN}::*;
use ipclab_support::isolated;

const PID_HINT: &str = "own_pid never returned: it should only ask the kernel, never wait.";

#[test]
fn task1_own_pid_is_what_the_kernel_says() {
    // The body runs the student's code in a sandboxed test process and hands back plain data;
    // the judge decides, outside it, against what the kernel says (`seen.end.root` is the pid
    // of the test process as the judge saw it).
    isolated(PID_HINT, own_pid).judge(|pid: u32, seen| {
        assert_eq!(
            pid as i32, seen.end.root,
            "own_pid returns another process's id"
        );
    });
}
"#;

const MANIFEST: &str = r#"[package]
name = "exercise{NN}"
description = "{TITLE}"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

[lib]
# No tests live in the library itself: no empty unit-test run and no rustdoc pass, so
# `cargo test -p exerciseNN` shows the graded suite and nothing else.
test = false
doctest = false

[dependencies]
nix = { workspace = true, features = ["process"] }
libc.workspace = true
thiserror.workspace = true

[dev-dependencies]
ipclab-support.workspace = true
serde.workspace = true
rstest.workspace = true
insta.workspace = true

# The graded suite: written once in tests/, run against this starter and the solution alike.
[[test]]
name = "exercise{NN}"
path = "../../tests/exercise{NN}/main.rs"
"#;

const STARTER: &str = r#"//! Exercise {NN}: {TITLE}.
//!
//! Your task: implement the functions below. The task statement is in `README.md` beside this
//! file; `cargo ipclab hint {N}` gives hints; `cargo test -p exercise{NN}` grades your work.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

/// The id of the calling process, as the kernel knows it.
pub fn own_pid() -> u32 {
    todo!("Task 1: return the id of the calling process")
}
"#;

const SOLUTION: &str = r#"//! Exercise {NN}: {TITLE} (reference solution).

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

/// The id of the calling process, as the kernel knows it.
pub fn own_pid() -> u32 {
    nix::unistd::getpid().as_raw().unsigned_abs()
}
"#;

const README: &str = r#"# Exercise {NN}: {TITLE}

What you build in this exercise, and why it matters (one paragraph).

Read first: [{TITLE}](../../book/src/{SLUG}.md). Edit `src/lib.rs`; grade with
`cargo test -p exercise{NN}` (or `cargo ipclab watch`).

<!-- ANCHOR: tasks -->
## Task 1: the process's own id
Implement `own_pid`: return the id of the calling process. The test compares it with what the
kernel says (`/proc/self`).
<!-- ANCHOR_END: tasks -->
"#;

const HINTS: &str = r#"# Hints: exercise {NN}

## Task 1: the process's own id
1. Every process has an id, and the kernel tells a process its own.
2. There is a system call for exactly this; nix wraps it.
3. `nix::unistd::getpid()`, then `.as_raw()`.
"#;

const CHAPTER: &str = r#"# {TITLE}

What the kernel does for this mechanism, with commands to try and a diagram.

In [Exercise {NN}: {TITLE}](exercises/exercise{NN}.md) you build it from the system calls up.
"#;

const PAGE: &str = r#"# Exercise {NN}: {TITLE}

What you build, in a paragraph. Background: [{TITLE}](../{SLUG}.md).

| to | run or open |
|---|---|
| you edit | `exercises/exercise{NN}/src/lib.rs` |
| grade | `cargo test -p exercise{NN}`, or `cargo ipclab watch` to re-run on every save |
| stuck? | `cargo ipclab hint {N}` reveals the next hint for the first task not yet passing |
| afterwards | `cargo ipclab solution {N}` shows the reference solution once every test passes |

{{#include ../../../exercises/exercise{NN}/README.md:tasks}}
"#;

/// The exercise to add.
struct New {
    nn: String,
    n: u32,
    slug: String,
    title: String,
}

impl New {
    fn fill(&self, template: &str) -> String {
        template
            .replace("{NN}", &self.nn)
            .replace("{N}", &self.n.to_string())
            .replace("{SLUG}", &self.slug)
            .replace("{TITLE}", &self.title)
    }
}

pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let (root, args) = match args {
        [flag, dir, rest @ ..] if flag == "--course-dir" => (PathBuf::from(dir), rest),
        _ => (root.to_path_buf(), args),
    };
    let new = match parse(args) {
        Ok(new) => new,
        Err(e) => {
            eprintln!("xtask new-exercise: {e}\nusage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    match scaffold(&root, &new) {
        Ok(written) => {
            for path in written {
                println!("wrote {path}");
            }
            println!(
                "exercise{nn} is in place. Next: `cargo xtask verify exercise{nn}`, then replace \
                 the placeholder task, test and texts (CONTRIBUTING.md lists every place).",
                nn = new.nn
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask new-exercise: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<New, String> {
    let [nn, slug, title] = args else {
        return Err(format!("expected 3 arguments, got {}", args.len()));
    };
    let n: u32 = nn
        .parse()
        .ok()
        .filter(|n| (1..=99).contains(n) && nn.len() == 2)
        .ok_or_else(|| format!("{nn:?} is not a two-digit exercise number (01 to 99)"))?;
    if slug.is_empty()
        || !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "{slug:?} is not a chapter slug (lower-case letters, digits and dashes, e.g. `pipes`)"
        ));
    }
    let title = title.trim();
    if title.is_empty() || title.contains(['\n', '"', '|', '[', ']']) {
        return Err(format!(
            "{title:?} is not a usable title (one line, no quotes, brackets or `|`)"
        ));
    }
    Ok(New {
        nn: nn.clone(),
        n,
        slug: slug.clone(),
        title: title.to_owned(),
    })
}

/// Writes every file and the two index entries; returns the paths written.
fn scaffold(root: &Path, new: &New) -> Result<Vec<String>, String> {
    let nn = &new.nn;
    let files: Vec<(String, String)> = vec![
        (
            format!("exercises/exercise{nn}/Cargo.toml"),
            new.fill(MANIFEST),
        ),
        (
            format!("exercises/exercise{nn}/src/lib.rs"),
            new.fill(STARTER),
        ),
        (
            format!("exercises/exercise{nn}/README.md"),
            new.fill(README),
        ),
        (format!("exercises/exercise{nn}/hints.md"), new.fill(HINTS)),
        (
            format!("solutions/exercise{nn}/Cargo.toml"),
            new.fill(MANIFEST),
        ),
        (
            format!("solutions/exercise{nn}/src/lib.rs"),
            new.fill(SOLUTION),
        ),
        (format!("tests/exercise{nn}/main.rs"), new.fill(SUITE)),
        (format!("book/src/{}.md", new.slug), new.fill(CHAPTER)),
        (
            format!("book/src/exercises/exercise{nn}.md"),
            new.fill(PAGE),
        ),
    ];
    for dir in [
        format!("exercises/exercise{nn}"),
        format!("solutions/exercise{nn}"),
        format!("tests/exercise{nn}"),
    ] {
        if root.join(&dir).exists() {
            return Err(format!("{dir} exists already: nothing was written"));
        }
    }
    if let Some((path, _)) = files.iter().find(|(p, _)| root.join(p).exists()) {
        return Err(format!("{path} exists already: nothing was written"));
    }
    // The index entries are computed first too, so that a malformed index stops everything.
    let summary_path = root.join("book/src/SUMMARY.md");
    let summary = read(&summary_path)?;
    let summary = insert_after_last(
        &summary,
        |l| l.trim_start().starts_with("- [Exercise "),
        &new.fill(
            "- [{TITLE}]({SLUG}.md)\n  - [Exercise {NN}: {TITLE}](exercises/exercise{NN}.md)",
        ),
    );
    let readme_path = root.join("README.md");
    let readme = read(&readme_path)?;
    let readme = insert_after_last(
        &readme,
        |l| l.starts_with("| `exercise"),
        &new.fill("| `exercise{NN}` | {TITLE} | [{TITLE}](book/src/{SLUG}.md) |"),
    );
    let readme = readme.ok_or("README.md has no exercise table (rows `| `exerciseNN` | …`)")?;
    let summary = summary.ok_or("book/src/SUMMARY.md has no `- [Exercise …` entry to follow")?;

    let mut written = Vec::new();
    for (path, text) in &files {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&full, text).map_err(|e| format!("cannot write {path}: {e}"))?;
        written.push(path.clone());
    }
    fs::write(&summary_path, summary).map_err(|e| format!("cannot write SUMMARY.md: {e}"))?;
    written.push("book/src/SUMMARY.md (entry)".into());
    fs::write(&readme_path, readme).map_err(|e| format!("cannot write README.md: {e}"))?;
    written.push("README.md (table row)".into());
    Ok(written)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `text` with `insert` as new lines after the last line for which `is_entry` holds.
fn insert_after_last(text: &str, is_entry: impl Fn(&str) -> bool, insert: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.iter().rposition(|l| is_entry(l))?;
    let mut out: Vec<&str> = lines[..=last].to_vec();
    out.extend(insert.lines());
    out.extend(&lines[last + 1..]);
    Some(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn arguments_are_checked() {
        assert!(parse(&args(&["10", "pipes-again", "more pipes"])).is_ok());
        assert!(parse(&args(&["1", "x", "t"])).is_err());
        assert!(parse(&args(&["10", "Bad Slug", "t"])).is_err());
        assert!(parse(&args(&["10", "x", ""])).is_err());
        assert!(parse(&args(&["10", "x"])).is_err());
    }

    #[test]
    fn entries_go_after_the_last_one() {
        let text = "a\n| `exercise01` |\n| `exercise02` |\n\nb\n";
        assert_eq!(
            insert_after_last(text, |l| l.starts_with("| `exercise"), "| `exercise03` |").unwrap(),
            "a\n| `exercise01` |\n| `exercise02` |\n| `exercise03` |\n\nb\n"
        );
    }
}
