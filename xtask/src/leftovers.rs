//! What a suite run may not leave behind: System V objects, FIFOs, zombies, stray processes.
//!
//! A baseline is taken before each run and compared after it. Whatever the run added is reported
//! and then removed, so that one faulty exercise does not spoil the checks of the next.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{getpid, Pid};

/// Orphans of the runs (say, a child whose parent the deadline killed) are reparented to us
/// instead of init, so that we can see them, kill them and reap them.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// The state of the machine before a run.
pub struct Baseline {
    sysv: BTreeSet<(String, String)>,
    fifos: BTreeSet<PathBuf>,
    zombies: BTreeSet<i32>,
}

impl Baseline {
    pub fn take() -> Baseline {
        Baseline {
            sysv: sysv_objects(),
            fifos: fifos_in_tmp(),
            zombies: zombies(),
        }
    }

    /// Everything the run added, described for a person, after removing it.
    pub fn left_behind(&self, run_tmpdir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        // Orphans that are still running are ours (we are the subreaper): stop them first.
        let strays: Vec<String> = children()
            .into_iter()
            .map(|(pid, comm)| {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                format!("pid {pid} ({comm})")
            })
            .collect();
        if !strays.is_empty() {
            found.push(format!(
                "stray processes still running: {}",
                strays.join(", ")
            ));
        }
        // Twice: a killed stray's own zombie children are reparented to us as it dies.
        reap_children();
        reap_children();

        for (kind, id) in sysv_objects().difference(&self.sysv) {
            remove_sysv(kind, id);
            found.push(format!(
                "System V {kind} id {id} was not removed (IPC_RMID)"
            ));
        }
        for fifo in fifos_in_tmp().difference(&self.fifos) {
            let _ = fs::remove_file(fifo);
            found.push(format!("FIFO {} was not removed", fifo.display()));
        }
        if let Ok(entries) = fs::read_dir(run_tmpdir) {
            for entry in entries.flatten() {
                found.push(format!(
                    "{} was left in the run's TMPDIR",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        let new_zombies: Vec<String> = zombies()
            .difference(&self.zombies)
            .map(|p| p.to_string())
            .collect();
        if !new_zombies.is_empty() {
            found.push(format!(
                "zombies not reaped by anyone: pids {}",
                new_zombies.join(", ")
            ));
        }
        found
    }
}

/// `(kind, id)` of every System V object, from `/proc/sysvipc`.
fn sysv_objects() -> BTreeSet<(String, String)> {
    let mut objects = BTreeSet::new();
    for (kind, file, id_column) in [
        ("message queue", "msg", 1),
        ("shared memory segment", "shm", 1),
        ("semaphore set", "sem", 1),
    ] {
        let Ok(table) = fs::read_to_string(format!("/proc/sysvipc/{file}")) else {
            continue;
        };
        for row in table.lines().skip(1) {
            if let Some(id) = row.split_whitespace().nth(id_column) {
                objects.insert((kind.to_owned(), id.to_owned()));
            }
        }
    }
    objects
}

fn remove_sysv(kind: &str, id: &str) {
    let Ok(id) = id.parse::<i32>() else { return };
    // SAFETY: IPC_RMID with a null buffer reads and writes no memory of ours.
    unsafe {
        match kind {
            "message queue" => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            "shared memory segment" => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            _ => libc::semctl(id, 0, libc::IPC_RMID),
        };
    }
}

/// FIFOs in the system temporary directory, one level deep (tests make them in a temporary
/// directory of their own, which itself should be gone).
fn fifos_in_tmp() -> BTreeSet<PathBuf> {
    let mut fifos = BTreeSet::new();
    let mut dirs = vec![(std::env::temp_dir(), 0)];
    if std::env::temp_dir() != Path::new("/tmp") {
        dirs.push((PathBuf::from("/tmp"), 0));
    }
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_fifo() {
                fifos.insert(entry.path());
            } else if kind.is_dir() && depth < 1 {
                dirs.push((entry.path(), depth + 1));
            }
        }
    }
    fifos
}

/// Zombies that a run could have left: ours (we are the subreaper of everything the runs start)
/// or init's (on machines where init does not reap). Other programs' zombies are not counted.
fn zombies() -> BTreeSet<i32> {
    let me = getpid().as_raw();
    let mut found = BTreeSet::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (
            fields.next(),
            fields.next().and_then(|p| p.parse::<i32>().ok()),
        );
        if state == Some("Z") && (ppid == Some(me) || ppid == Some(1)) {
            found.insert(pid);
        }
    }
    found
}

/// Our children that are still running, with their command names.
fn children() -> Vec<(Pid, String)> {
    let me = getpid().as_raw();
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (
            fields.next(),
            fields.next().and_then(|p| p.parse::<i32>().ok()),
        );
        if ppid == Some(me) && state != Some("Z") {
            let comm = head
                .split_once('(')
                .map(|(_, c)| c)
                .unwrap_or("?")
                .to_owned();
            found.push((Pid::from_raw(pid), comm));
        }
    }
    found
}

/// Reaps every child that has ended (between runs, all our children are orphans of the runs).
fn reap_children() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}
