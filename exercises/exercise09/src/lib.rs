//! Exercise 09: a small shell — the capstone.
//!
//! Your task: implement the functions below (tasks 1 to 4). The task statement is in `README.md`
//! beside this file; `cargo ipclab hint 9` gives hints; `cargo test -p exercise09` grades your
//! work. The shell's main loop is already written: `tests/exercise09/bin/ex09-shell.rs` reads a line, calls
//! [`parse`], then [`run_builtin`], [`run_pipeline`] or [`JobControl`], and reports how the job
//! ended. Try your shell any time with `cargo run -q -p exercise09 --bin ex09-shell`.
//!
//! Every child your shell forks follows the same discipline: rearrange its descriptors with
//! `dup2`, reset the signal dispositions the shell changed for itself, then `exec`; if `exec`
//! fails it reports why and ends with `_exit`, never returning into the shell's code.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, killpg, signal, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{
    chdir, dup2_stdin, dup2_stdout, execvp, fork, getpgrp, getpid, pipe2, setpgid, tcsetpgrp,
    ForkResult, Pid,
};

// Given to you in `given.rs`, beside this file (do not change it): the types, errors and constants.
mod given;
pub use given::*;

// ---------------------------------------------------------------------------------------------
// Task 1: parsing.

/// Task 1: split `line` into a pipeline of commands.
///
/// Words are separated by spaces or tabs. `'…'` quotes everything literally; `"…"` too, except
/// that `\"` and `\\` stand for `"` and `\`; outside quotes, `\` makes the next character
/// ordinary. Unquoted `|`, `<` and `>` are operators even without spaces around them
/// (`ls|wc -l>out`). `<` and `>` take the next word as a file name and may appear anywhere in a
/// command. A blank line is an empty pipeline.
pub fn parse(line: &str) -> Result<Pipeline, ParseError> {
    todo!("Task 1: split the line into words (quotes, backslashes), commands at |, and < > redirections; name each mistake with a ParseError")
}

// ---------------------------------------------------------------------------------------------
// Task 2: running a pipeline.

/// Task 2: run every command of `pipeline` at the same time, each stage's standard output
/// connected to the next stage's standard input by a pipe, `<` and `>` applied, and wait for all
/// of them. Returns one status per command, in pipeline order (an empty pipeline: none).
///
/// The commands inherit the caller's standard streams where no pipe or redirection replaces
/// them. The caller keeps no descriptor it did not have before, and no child is left unreaped.
/// If a redirection's file cannot be opened, nothing is started and the error says which file.
/// A program that cannot be found is not an error of the shell: that stage prints
/// `ipclab: NAME: command not found` on its standard error and exits with 127.
pub fn run_pipeline(pipeline: &Pipeline) -> Result<Vec<Status>> {
    todo!("Task 2: open the redirections, create N-1 close-on-exec pipes, fork every stage (dup2 its pipe ends or files onto 0 and 1, reset SIGPIPE, execvp), close your copies, then waitpid every stage")
}

// ---------------------------------------------------------------------------------------------
// Task 3: built-in commands.

/// Task 3: run the built-in command `argv` (`argv[0]` is one of [`BUILTINS`]) in the shell's own
/// process, writing any output to `out`.
///
/// * `cd DIR` changes the shell's working directory (`cd` alone: to `$HOME`).
/// * `exit [N]` ends the shell, with code N (0 to 255) or the last command's status.
/// * `kill -l` writes every signal as `NUMBER) NAME` (for example ` 9) SIGKILL`), in increasing
///   order, real-time ones included (`SIGRTMIN`, `SIGRTMIN+1`, …, `SIGRTMAX-1`, `SIGRTMAX`);
///   how many go on a line is up to you.
/// * `kill [-SIGNAL] PID…` sends SIGNAL (default SIGTERM) to each PID; a negative PID names a
///   process group. SIGNAL is a number (`-9`) or a name, with or without `SIG`, in any case
///   (`-KILL`, `-SIGKILL`, `-term`).
/// * `fg` is job control's ([`JobControl::fg`]): here it is [`ShellError::NoJobControl`].
pub fn run_builtin(argv: &[String], out: &mut dyn Write) -> Result<BuiltinOutcome> {
    todo!("Task 3: cd (chdir), exit [N], kill -l, kill [-SIGNAL] PID... (kill(2)), all in the shell's own process")
}

// ---------------------------------------------------------------------------------------------
// Task 4: job control.

/// The shell's side of job control on its terminal: which job is in the foreground, and the
/// stopped jobs `fg` can resume.
#[derive(Debug)]
pub struct JobControl {
    /// The terminal, for `tcsetpgrp`.
    terminal: OwnedFd,
    /// The shell's own process group, which gets the terminal back after every job.
    shell_pgid: Pid,
    // Add what you need: the stopped jobs (process group, pids, command line, job number).
}

impl JobControl {
    /// Task 4: take charge of `terminal` (the shell's standard input, a terminal).
    ///
    /// The shell becomes the leader of a process group of its own (if it is not already), that
    /// group becomes the terminal's foreground group, and the shell ignores the signals the
    /// terminal sends (SIGINT, SIGQUIT, SIGTSTP) and the ones for background groups that use the
    /// terminal (SIGTTIN, SIGTTOU), so that Ctrl+C and Ctrl+Z never end or stop the shell.
    pub fn new(terminal: OwnedFd) -> Result<JobControl> {
        todo!("Task 4: ignore SIGINT, SIGQUIT, SIGTSTP, SIGTTIN and SIGTTOU; lead your own process group; tcsetpgrp the terminal to it")
    }

    /// Task 4: run `pipeline` (typed as `line`) as a foreground job.
    ///
    /// All its processes form one new process group, which becomes the terminal's foreground
    /// group (so Ctrl+C and Ctrl+Z reach the job, not the shell), with the default actions for
    /// the terminal's signals. The shell waits with `WUNTRACED` until every process has ended
    /// ([`JobOutcome::Finished`]) or every process still alive is stopped
    /// ([`JobOutcome::Stopped`], the job is kept for `fg`), then takes the terminal back.
    pub fn run(&mut self, pipeline: &Pipeline, line: &str) -> Result<JobOutcome> {
        todo!("Task 4: fork the stages into one new process group (setpgid in parent and child), tcsetpgrp it, reset the signals in the children, waitpid(-pgid, WUNTRACED) until all ended or all stopped, take the terminal back")
    }

    /// Task 4: `fg`: resume the most recently stopped job in the foreground.
    ///
    /// Writes the job's command line to `out` (as shells do), gives the terminal to the job's
    /// process group, continues it with SIGCONT and waits for it as [`JobControl::run`] does.
    /// [`ShellError::NoJob`] if no job is stopped.
    pub fn fg(&mut self, out: &mut dyn Write) -> Result<JobOutcome> {
        todo!("Task 4: print the most recently stopped job's line, tcsetpgrp its group, killpg SIGCONT, wait for it as run does")
    }

    /// Task 4: before the shell exits: end every stopped job (SIGHUP, then SIGCONT so that a
    /// stopped process can act on it, as the kernel does for an orphaned process group) and reap
    /// its processes, so that no job outlives the shell as a stray process or a zombie.
    pub fn end_jobs(&mut self) {
        todo!("Task 4: killpg SIGHUP then SIGCONT each stopped job and reap its processes")
    }
}
