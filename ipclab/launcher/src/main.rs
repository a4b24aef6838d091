//! `cargo ipclab` runs this first. It has no dependencies, so cargo builds it in a moment even on
//! a fresh clone; it then builds the `ipclab` tool itself and hands over to it (`exec`, same
//! process, same arguments).
//!
//! Why: the tool's first build takes a minute or more on a small machine, and `cargo run --quiet`
//! would show a blank terminal all that time, while without `--quiet` every warm start would
//! print cargo's `Finished`/`Running` lines. Here the build's output is read as it comes: when
//! cargo has nothing to do (it only says `Finished`) nothing is shown; as soon as it starts
//! anything else (downloading, compiling, waiting for a lock) a line says what is happening and
//! progress follows, on one line on a terminal.

use std::env;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const NOTICE: &str = "ipclab: building the course tool first (the first build takes from half \
                      a minute to a few minutes, depending on the machine; later starts are \
                      instant)";

fn main() -> ExitCode {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    let Some(tool) = tool_path() else {
        eprintln!("ipclab: cannot find where cargo put this launcher (no current_exe)");
        return ExitCode::FAILURE;
    };
    if let Err(code) = build() {
        return code;
    }
    // Only returns if the exec failed.
    let e = Command::new(&tool).args(&args).exec();
    eprintln!("ipclab: cannot start {}: {e}", tool.display());
    ExitCode::FAILURE
}

/// `ipclab` sits beside this launcher: same target directory, same profile.
fn tool_path() -> Option<PathBuf> {
    let me = env::current_exe().ok()?;
    Some(me.parent()?.join("ipclab"))
}

/// What the build's standard error says, as it arrives.
enum Msg {
    Bytes(Vec<u8>),
    Done,
}

/// `cargo build -p ipclab`, silent when there is nothing to build.
fn build() -> Result<(), ExitCode> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--package", "ipclab", "--bin", "ipclab"]);
    // The workspace cargo found for `cargo ipclab`, wherever below it the student stands.
    if let Some(dir) = env::var_os("CARGO_MANIFEST_DIR") {
        cmd.arg("--manifest-path")
            .arg(PathBuf::from(dir).join("../Cargo.toml"));
    }
    let tty = io::stderr().is_terminal();
    if tty && env::var_os("CARGO_TERM_COLOR").is_none() && env::var_os("NO_COLOR").is_none() {
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    let mut child = match cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("ipclab: cannot run cargo to build the tool: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let mut stderr = child.stderr.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(Msg::Bytes(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Done);
    });

    let mut progress = Progress::new(tty);
    let mut text: Vec<u8> = Vec::new();
    loop {
        // Wakes up every second to keep the elapsed time moving during a long compile.
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Msg::Bytes(bytes)) => {
                text.extend_from_slice(&bytes);
                progress.saw(&text);
            }
            Ok(Msg::Done) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => progress.tick(),
        }
    }
    let status = child.wait();
    match status {
        Ok(status) if status.success() => {
            progress.finish();
            Ok(())
        }
        other => {
            // Whatever cargo said, in full (unless it was shown line by line already): the
            // compiler's errors are the useful part.
            if progress.tty || !progress.shown {
                if progress.tty {
                    eprint!("\r\x1b[K");
                }
                let _ = io::stderr().write_all(&text);
            }
            let how = match other {
                Ok(status) => status.to_string(),
                Err(e) => e.to_string(),
            };
            eprintln!("ipclab: building the course tool failed ({how}); the lines above say why");
            Err(ExitCode::FAILURE)
        }
    }
}

/// The progress shown while cargo builds: nothing until cargo says something other than
/// `Finished`, then one notice line and cargo's status lines (on a terminal: one line, redrawn).
struct Progress {
    tty: bool,
    shown: bool,
    started: Instant,
    /// How many of cargo's lines were handled.
    lines_done: usize,
    compiled: usize,
    last: String,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            shown: false,
            started: Instant::now(),
            lines_done: 0,
            compiled: 0,
            last: String::new(),
        }
    }

    /// `text` is everything cargo wrote so far.
    fn saw(&mut self, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        if !self.shown && !only_finished(&text) {
            self.shown = true;
            eprintln!("{NOTICE}");
        }
        if !self.shown {
            return;
        }
        let complete: Vec<&str> = text.split_inclusive('\n').collect();
        for line in complete.iter().skip(self.lines_done) {
            if !line.ends_with('\n') {
                break;
            }
            self.lines_done += 1;
            let line = strip_ansi(line).trim().to_owned();
            if line.starts_with("Compiling") {
                self.compiled += 1;
            }
            if self.tty {
                self.last = line;
                self.tick();
            } else {
                eprintln!("  {line}");
            }
        }
    }

    /// Redraws the progress line (terminal only).
    fn tick(&self) {
        if !(self.shown && self.tty) {
            return;
        }
        let width = env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse::<usize>().ok())
            .unwrap_or(80)
            .saturating_sub(1);
        let line = format!(
            "  {} s, {} crates compiled · {}",
            self.started.elapsed().as_secs(),
            self.compiled,
            self.last
        );
        let line: String = line.chars().take(width).collect();
        eprint!("\r\x1b[K{line}");
        let _ = io::stderr().flush();
    }

    fn finish(&self) {
        if self.shown && self.tty {
            eprintln!(
                "\r\x1b[K  built in {} s ({} crates)",
                self.started.elapsed().as_secs(),
                self.compiled
            );
        }
    }
}

/// Whether cargo said nothing yet, or only that the build is finished (nothing to do).
fn only_finished(text: &str) -> bool {
    let plain = strip_ansi(text);
    let rest = plain.trim_start();
    rest.is_empty()
        || "Finished".starts_with(rest)
        || (rest.starts_with("Finished") && rest.lines().count() <= 1)
}

/// Cargo's colours off, for counting and for the one-line display.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ … final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_build_stays_quiet_and_a_cold_one_does_not() {
        assert!(only_finished(""));
        assert!(only_finished("    Fini"));
        assert!(only_finished(
            "    \x1b[1m\x1b[32mFinished\x1b[0m `dev` profile [unoptimized] target(s) in 0.09s\n"
        ));
        assert!(!only_finished("   Compiling libc v0.2.177\n"));
        assert!(!only_finished("    Blocking waiting for file lock"));
        assert!(!only_finished("warning: unused import\n"));
    }
}
