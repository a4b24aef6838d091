//! Nothing the tool starts may outlive it: not `cargo test`, not a test's isolated process, not a
//! child the student's code forked and forgot.
//!
//! The tool makes itself a *child subreaper*: a process orphaned anywhere below it is reparented
//! to it instead of to init, so the whole tree stays visible through the `PPid` links in `/proc`.
//! After every suite run (and when the tool is interrupted) [`kill_descendants`] kills whatever
//! is left below it and reaps it.

use std::collections::{HashMap, HashSet};
use std::fs;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{getpid, Pid};

/// Orphans below this process are reparented to it (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Every process below this one (children, grandchildren, …), from `/proc`.
pub fn descendants() -> Vec<Pid> {
    let me = getpid().as_raw();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for (pid, ppid) in process_table() {
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![me];
    while let Some(parent) = todo.pop() {
        for &child in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(child) {
                found.push(Pid::from_raw(child));
                todo.push(child);
            }
        }
    }
    found
}

/// Kills every process below this one and reaps what becomes ours. Returns how many processes
/// were found still there (0 after a clean run).
pub fn kill_descendants() -> usize {
    let me = getpid().as_raw();
    let mut total = 0;
    // Each round kills what is left and reaps our direct children; reaping a parent hands us its
    // children (we are the subreaper), which the next round finds. A fork racing with the kill
    // is caught by a later round; the bound only guards against a pathological fork storm.
    for _ in 0..64 {
        let below = descendants();
        if below.is_empty() {
            break;
        }
        total += below.len();
        for pid in &below {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        for pid in below {
            if parent_of(pid) == Some(me) {
                // Blocks only until the SIGKILL is delivered. ECHILD: someone reaped it already.
                while let Err(Errno::EINTR) = waitpid(pid, None) {}
            }
        }
    }
    total
}

fn parent_of(pid: Pid) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, ppid)| ppid)
}

/// `(pid, ppid)` of every process.
fn process_table() -> Vec<(i32, i32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(&stat).map(|(_, ppid)| (pid, ppid))
        })
        .collect()
}

/// `(state, ppid)` from `/proc/<pid>/stat`; the command name may hold spaces and parentheses,
/// so the fields are read after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_are_read() {
        assert_eq!(parse_stat("42 (a) b (c)) S 7 42 42 0 -1"), Some(('S', 7)));
        assert_eq!(parse_stat("garbage"), None);
    }

    /// Kills every descendant of the unit-test process: no other unit test of this crate may
    /// start processes.
    #[test]
    fn a_forgotten_child_is_found_and_killed() {
        let mut child = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("cat starts");
        let pid = Pid::from_raw(child.id() as i32);
        assert!(descendants().contains(&pid));
        assert!(kill_descendants() >= 1);
        assert!(!descendants().contains(&pid));
        // Already reaped by kill_descendants: std's wait reports ECHILD.
        assert!(child.try_wait().is_err() || child.try_wait().unwrap().is_some());
    }
}
