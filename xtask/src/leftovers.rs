//! What a suite run may not leave behind: System V objects, POSIX IPC names, FIFOs, zombies,
//! stray processes.
//!
//! A baseline is taken before each run and compared after it. Whatever the run added is reported
//! and then removed, so that one faulty exercise does not spoil the checks of the next.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use ipclab_support::{procfs, sandbox};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{getpid, Pid};

/// Orphans of the runs (say, a child whose parent the deadline killed) are reparented to us
/// instead of init, so that we can see them, kill them and reap them.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers and touches no memory.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Moves this process into a new, empty System V IPC namespace, so that the next run's queues,
/// segments and semaphore sets are the only ones it sees: other programs' objects are neither
/// blamed on the run nor removed. Needs root (CAP_SYS_ADMIN); returns false where not allowed,
/// and the comparison then covers the whole machine.
pub fn private_ipc_namespace() -> bool {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC).is_ok()
}

/// The state of the machine before a run: only what a run could have made is compared, and only
/// what the run itself made is ever removed or blamed.
pub struct Baseline {
    /// System V objects, compared only inside a private IPC namespace (where every object is the
    /// run's own); outside one, other programs' objects are none of our business.
    sysv: Option<BTreeSet<(String, String)>>,
    posix: BTreeSet<PathBuf>,
    /// The first of the uids this run's tests get (as root): objects of other uids, other
    /// runs' tests among them, are not the run's.
    uid_base: u32,
}

impl Baseline {
    /// `private_ipc`: this process is in an IPC namespace of its own (see
    /// [`private_ipc_namespace`]).
    pub fn take(private_ipc: bool) -> Baseline {
        // Zombies among our children now are orphans of earlier work (the tooling tests, say),
        // not of the run that follows.
        reap_children();
        Baseline {
            sysv: private_ipc.then(sysv_objects),
            posix: posix_ipc_names(),
            uid_base: sandbox::uid_base_for_run(std::process::id()),
        }
    }

    /// The environment variable that gives the run's tests the uids this baseline recognises:
    /// pass it to the suite run.
    pub fn uid_env(&self) -> (String, String) {
        (sandbox::UID_BASE_ENV.into(), self.uid_base.to_string())
    }

    /// Everything the run added, described for a person, after removing it. Looks only at the
    /// run's own objects: its System V objects (in its private namespace), POSIX IPC names made by
    /// a test's own uid, the FIFOs and files in its own TMPDIR, and its own processes and zombies
    /// (we are the subreaper of everything it started). Nothing else is touched.
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
        // Zombies among our children were never reaped by the run's own processes.
        let zombies = zombie_children();
        if !zombies.is_empty() {
            found.push(format!(
                "zombies not reaped by anyone: pids {}",
                zombies.join(", ")
            ));
        }
        // Twice: a killed stray's own zombie children are reparented to us as it dies.
        reap_children();
        reap_children();

        if let Some(before) = &self.sysv {
            for (kind, id) in sysv_objects().difference(before) {
                remove_sysv(kind, id);
                found.push(format!(
                    "System V {kind} id {id} was not removed (IPC_RMID)"
                ));
            }
        }
        for name in posix_ipc_names().difference(&self.posix) {
            if self.made_by_a_test(name) {
                // unlink is shm_unlink, sem_unlink or mq_unlink for these file systems.
                let _ = fs::remove_file(name);
                found.push(format!(
                    "POSIX IPC object {} was not unlinked",
                    name.display()
                ));
            }
        }
        for fifo in fifos_below(run_tmpdir) {
            let _ = fs::remove_file(&fifo);
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
        found
    }
}

impl Baseline {
    /// Made by one of this run's test processes: owned by a uid of the run's range (as root), or,
    /// where tests run as our own user, by us (the closest a run without separate uids can tell).
    fn made_by_a_test(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = fs::symlink_metadata(path) else {
            return false;
        };
        let me = nix::unistd::geteuid().as_raw();
        let ours = (self.uid_base..self.uid_base + sandbox::UID_SPAN).contains(&meta.uid());
        ours || (me != 0 && meta.uid() == me)
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

/// Named POSIX shared memory, semaphores (`/dev/shm/sem.*`) and message queues (`/dev/mqueue`,
/// where that file system is mounted).
fn posix_ipc_names() -> BTreeSet<PathBuf> {
    ["/dev/shm", "/dev/mqueue"]
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .collect()
}

/// FIFOs anywhere below the run's own TMPDIR.
fn fifos_below(dir: &Path) -> Vec<PathBuf> {
    let mut fifos = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_fifo() {
                fifos.push(entry.path());
            } else if kind.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    fifos
}

/// Our children that exited and were never reaped: orphans of the runs, which came to us.
fn zombie_children() -> Vec<String> {
    procfs::zombie_children(getpid())
        .into_iter()
        .map(|p| format!("{} ({})", p.pid, p.comm))
        .collect()
}

/// Our children that are still running, with their command names.
fn children() -> Vec<(Pid, String)> {
    procfs::children(getpid())
        .into_iter()
        .filter(|p| !p.is_zombie())
        .map(|p| (p.pid, p.comm))
        .collect()
}

/// Reaps every child that has ended (between runs, all our children are orphans of the runs).
fn reap_children() {
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}
