//! `grade --class DIR --jobs N`: N submissions at once.
//!
//! Each submission is graded by a grader process of its own (this binary, `grade <submission>`),
//! so that each is the subreaper of its own runs and its leftover checks see only its own
//! processes. Each of the N slots has a target directory of its own (builds of different sources
//! must never share one: cargo gives the exercise package the same artifact name in every copy,
//! so one build could run another's test binary). The slots are seeded with a copy of the
//! grading target directory once the pristine starters are built, so the dependencies are
//! compiled once for all.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::report::Report;
use super::{Grader, Options};

/// The result of every student, in the order given.
pub fn grade_all(
    grader: &mut Grader,
    students: &[(String, PathBuf)],
    options: &Options,
) -> Result<Vec<Result<Report, String>>, String> {
    grader.prepare()?;
    let out = tempfile::Builder::new()
        .prefix("ipclab-grade-jobs-")
        .tempdir()
        .map_err(|e| format!("no temporary directory: {e}"))?;
    let slots: Vec<PathBuf> = (0..options.jobs.min(students.len()))
        .map(|k| grader.target_dir.join(format!("job-{k}")))
        .collect();
    for slot in &slots {
        seed(&grader.target_dir, slot)
            .map_err(|e| format!("cannot prepare {}: {e}", slot.display()))?;
    }
    let exe = std::env::current_exe().map_err(|e| format!("no grader binary: {e}"))?;
    let mut results: Vec<Option<Result<Report, String>>> = vec![None; students.len()];
    let mut running: Vec<(usize, usize, Child)> = Vec::new();
    let mut next = 0;
    let mut free: Vec<usize> = (0..slots.len()).rev().collect();
    while next < students.len() || !running.is_empty() {
        while next < students.len() {
            let Some(slot) = free.pop() else { break };
            let (_, path) = &students[next];
            let mut cmd = Command::new(&exe);
            cmd.arg("grade")
                .arg(path)
                .args(["--format", "json", "--out"])
                .arg(out.path().join(format!("{next}.json")))
                .arg("--target-dir")
                .arg(&slots[slot])
                .arg("--deadline")
                .arg(options.deadline.as_secs().to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for e in &grader.exercises {
                cmd.args(["--exercise", e]);
            }
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start a grader: {e}"))?;
            running.push((next, slot, child));
            next += 1;
        }
        // Wait for any one of them.
        let status = nix::sys::wait::wait().map_err(|e| format!("wait: {e}"))?;
        let Some(pid) = status.pid() else { continue };
        if let Some(at) = running
            .iter()
            .position(|(_, _, c)| c.id() as i32 == pid.as_raw())
        {
            let (student, slot, _) = running.swap_remove(at);
            free.push(slot);
            let file = out.path().join(format!("{student}.json"));
            let text = fs::read_to_string(&file).unwrap_or_default();
            results[student] = Some(serde_json::from_str::<Report>(&text).map_err(|_| {
                serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("its grader ended with {status:?}"))
            }));
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not graded".into())))
        .collect())
}

/// Copies the grading target directory (without other slots) into `slot`, once.
fn seed(from: &Path, slot: &Path) -> std::io::Result<()> {
    if slot.exists() {
        return Ok(());
    }
    let partial = slot.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    copy_tree(from, &partial)?;
    fs::rename(&partial, slot)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("job-") {
            continue;
        }
        let kind = entry.file_type()?;
        let target = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
            // Keep modification times: cargo's freshness checks compare them.
            let modified = entry.metadata()?.modified()?;
            fs::File::options()
                .write(true)
                .open(&target)?
                .set_modified(modified)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        }
    }
    Ok(())
}
