//! The pristine starter of an exercise comes from git: the course's published version is the
//! upstream of the current branch if it has one, else `HEAD`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::course::Course;

/// A failure to talk to git, worded for the student.
#[derive(Debug)]
pub struct GitError(pub String);

impl std::fmt::Display for GitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn git(root: &Path, args: &[&str]) -> Result<Output, GitError> {
    Command::new("git")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| GitError(format!("could not run git ({e}): is git installed?")))
}

fn git_ok(root: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = git(root, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Where the starter comes from: `@{upstream}` if the branch has one, else `HEAD`.
pub fn starter_source(course: &Course) -> Result<String, GitError> {
    let root = &course.root;
    let inside = git(root, &["rev-parse", "--is-inside-work-tree"])?;
    if !inside.status.success() || String::from_utf8_lossy(&inside.stdout).trim() != "true" {
        return Err(GitError(format!(
            "{} is not a git checkout, so there is no published starter to restore; \
             clone the course with git to use `reset`",
            root.display()
        )));
    }
    let upstream = git(root, &["rev-parse", "--verify", "--quiet", "@{upstream}"])?;
    if upstream.status.success() {
        return Ok("@{upstream}".to_owned());
    }
    let head = git(root, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    if head.status.success() {
        Ok("HEAD".to_owned())
    } else {
        Err(GitError(format!(
            "the git repository at {} has no commit yet: there is no starter to restore",
            root.display()
        )))
    }
}

/// `exercises/<name>` as a pathspec relative to the course root (where git runs).
fn pathspec(exercise: &str) -> String {
    format!("exercises/{exercise}")
}

/// Whether `exercises/<name>` exists in `source`.
pub fn has_starter(course: &Course, source: &str, exercise: &str) -> Result<bool, GitError> {
    let object = format!("{source}:./{}", pathspec(exercise));
    Ok(git(&course.root, &["cat-file", "-e", &object])?
        .status
        .success())
}

/// `git diff --stat` of the exercise against `source`: what a reset would discard. Empty when
/// the exercise is the starter.
pub fn diff_stat(course: &Course, source: &str, exercise: &str) -> Result<String, GitError> {
    git_ok(
        &course.root,
        &[
            "diff",
            "--stat",
            "--no-color",
            source,
            "--",
            &pathspec(exercise),
        ],
    )
}

/// Files under the exercise that git does not track (and does not ignore): a reset keeps them.
pub fn untracked(course: &Course, exercise: &str) -> Result<Vec<String>, GitError> {
    Ok(git_ok(
        &course.root,
        &[
            "ls-files",
            "--others",
            "--exclude-standard",
            "--",
            &pathspec(exercise),
        ],
    )?
    .lines()
    .map(str::to_owned)
    .collect())
}

/// Restores `exercises/<name>` (working tree and index) from `source`, and nothing else.
pub fn restore(course: &Course, source: &str, exercise: &str) -> Result<(), GitError> {
    git_ok(
        &course.root,
        &[
            "restore",
            "--source",
            source,
            "--staged",
            "--worktree",
            "--",
            &pathspec(exercise),
        ],
    )
    .map(|_| ())
}

/// Whether the student changed the exercise (`None` when the course is not a git checkout).
pub fn modified(course: &Course, exercise: &str) -> Option<bool> {
    let out = git(
        &course.root,
        &["status", "--porcelain", "--", &pathspec(exercise)],
    )
    .ok()?;
    out.status
        .success()
        .then(|| !String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

/// The lines git prints for `args`, run at the course root; `None` if git fails.
pub fn lines(course: &Course, args: &[&str]) -> Option<Vec<String>> {
    let out = git(&course.root, args).ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}
