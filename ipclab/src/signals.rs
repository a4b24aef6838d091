//! Ctrl-C, a closed terminal or a `kill` must not leave a suite running behind the tool.
//!
//! `cargo test` runs in a process group of its own (so that a deadline can kill it whole), which
//! also means the terminal's Ctrl-C does not reach it. A thread of ours receives SIGINT, SIGTERM
//! and SIGHUP instead, kills everything below us, removes the run's temporary directory and ends
//! the tool with the conventional status (128 + signal number).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::{reaper, suite};

/// The temporary directory of the run in progress, to remove if we are interrupted.
static RUN_TMPDIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Set once a signal arrived: the signal thread is cleaning up and will end the process.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// If a signal arrived, never returns: the signal thread is cleaning up and ends the process
/// itself. (The main thread may see its run fail meanwhile, since its `cargo` was killed and
/// reaped under it: that failure is not the student's to read, and the main thread must not
/// end the process before the cleanup is complete.)
pub fn wait_if_interrupted() {
    while INTERRUPTED.load(Ordering::SeqCst) {
        thread::park();
    }
}

/// Creates the temporary directory of the run about to start, and remembers it so that an
/// interruption removes it. Checked under the same lock as the signal thread's removal: once a
/// signal arrived, no directory is created (the call waits for the process to end instead).
pub fn create_run_tmpdir(path: &Path) -> std::io::Result<()> {
    let mut slot = RUN_TMPDIR.lock().unwrap_or_else(|e| e.into_inner());
    if INTERRUPTED.load(Ordering::SeqCst) {
        drop(slot);
        wait_if_interrupted();
        unreachable!("wait_if_interrupted returns only when no signal arrived");
    }
    std::fs::create_dir(path)?;
    *slot = Some(path.to_path_buf());
    Ok(())
}

/// Removes the run's temporary directory (with whatever a test left in it).
pub fn remove_run_tmpdir(path: &Path) {
    let mut slot = RUN_TMPDIR.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_dir_all(path);
    *slot = None;
}

/// Starts the thread that cleans up on SIGINT, SIGTERM and SIGHUP.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new()
        .name("ipclab-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                // Both locks are kept until the process ends. Once we hold the first, a run
                // being started is visible in /proc and no new one starts; once we hold the
                // second, no run directory is created or forgotten.
                let _no_more_runs = suite::SPAWN.lock().unwrap_or_else(|e| e.into_inner());
                reaper::kill_descendants();
                let slot = RUN_TMPDIR.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(dir) = slot.as_ref() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                if signal == SIGINT {
                    eprintln!("\nipclab: interrupted; the tests that were running are stopped.");
                }
                std::process::exit(128 + signal);
            }
        })?;
    Ok(())
}
