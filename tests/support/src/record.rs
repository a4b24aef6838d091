//! The verdict record: one JSON line per judged test, written by the judge.
//!
//! `ipclab`, `cargo xtask verify` and the grader read verdicts from here, not from libtest's
//! text (which the code under test can print too). The file is named by [`VERDICTS_ENV`] in the
//! judge's environment; the test process never has that variable, and behind the sandbox it
//! cannot open the file either.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use crate::sandbox::Protections;

/// The path of the record, set by whoever runs the suite.
pub const VERDICTS_ENV: &str = "IPCLAB_VERDICTS";

/// One judged test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// libtest's name of the test.
    pub test: String,
    pub passed: bool,
    /// Why it failed: the part that teaches.
    pub message: Option<String>,
    /// The walls the test process ran behind (none for a test that never started one).
    pub protections: Option<Protections>,
    /// What the code under test printed, cut at the sandbox's output limit.
    pub output: String,
}

/// Appends `verdict` to the record, if one is kept. One `write` of a whole line on an
/// `O_APPEND` file: verdicts of tests judged at the same time never interleave.
pub fn write(verdict: &Verdict) {
    let Some(path) = std::env::var_os(VERDICTS_ENV) else {
        return;
    };
    let mut line = serde_json::to_string(verdict).unwrap_or_default();
    line.push('\n');
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path);
    match file {
        Ok(mut f) => {
            if let Err(e) = f.write_all(line.as_bytes()) {
                eprintln!("ipclab: cannot write the verdict record {path:?}: {e}");
            }
        }
        Err(e) => eprintln!("ipclab: cannot open the verdict record {path:?}: {e}"),
    }
}

/// Reads a record: the verdicts in the order they were judged; lines that do not parse are
/// skipped (a record is only ever written by judges, whole lines at a time).
pub fn read(text: &str) -> Vec<Verdict> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
