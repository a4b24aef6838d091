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

/// What the shell prints before reading a line, when its standard input is a terminal.
pub const PROMPT: &str = "ipclab$ ";

/// The commands the shell runs itself instead of forking a program: a child could not change
/// the shell's working directory, end the shell, or resume one of the shell's jobs.
pub const BUILTINS: &[&str] = &["cd", "exit", "kill", "fg"];

/// One command of a pipeline: the program and its arguments, and its own redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The program (`argv[0]`, looked up in `PATH`) and its arguments, quotes removed.
    pub argv: Vec<String>,
    /// `< file`: standard input comes from this file instead of the pipe or the terminal.
    pub stdin: Option<PathBuf>,
    /// `> file`: standard output goes to this file (created, or truncated if it exists).
    pub stdout: Option<PathBuf>,
}

/// A line of input: commands joined by `|`. A blank line is a pipeline of no commands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pipeline {
    pub commands: Vec<Command>,
}

/// Why a line is not a valid pipeline. Each message names what is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `| wc`: the line starts with a pipe.
    #[error("missing command before |")]
    MissingCommandBeforePipe,
    /// `ls |` or `ls | | wc`: a pipe with nothing after it.
    #[error("missing command after |")]
    MissingCommandAfterPipe,
    /// `< in.txt`: redirections but no program to apply them to.
    #[error("missing command: a redirection needs a program to apply to")]
    MissingCommand,
    /// `cat <` or `ls > | wc`: the operator (`<` or `>`) is not followed by a file name.
    #[error("missing file name after {0}")]
    MissingFileName(char),
    /// `cat < a < b`: one command, two redirections of the same stream.
    #[error("{0} given twice in one command")]
    DuplicateRedirection(char),
    /// `echo 'hello`: the quote (`'` or `"`) is never closed.
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
    /// `echo \`: a backslash must escape the character after it.
    #[error("nothing after the backslash at the end of the line")]
    TrailingBackslash,
}

/// How one process of a pipeline ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It called `exit(code)`. 127 is the shell's convention for "command not found", 126 for
    /// "found but could not be executed".
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

/// What happened to a job the shell ran in the foreground.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every process of the job ended; one status per command, in pipeline order.
    Finished(Vec<Status>),
    /// The job was stopped (Ctrl+Z) and is kept as job number `id`, for `fg`.
    Stopped { id: usize, line: String },
}

/// What the shell does after a built-in command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinOutcome {
    /// Read the next line.
    Continue,
    /// End the shell with this exit code (`None`: the status of the last command, as `exit`
    /// without an argument does).
    Exit(Option<i32>),
}

/// Errors of the shell. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// A `<` or `>` file could not be opened; nothing was started.
    #[error("{}: {}", path.display(), errno.desc())]
    Redirect { path: PathBuf, errno: Errno },
    /// A command of the pipeline names no program (`parse` never makes one).
    #[error("a command of the pipeline names no program")]
    EmptyCommand,
    /// A word contains a NUL byte, which cannot be passed to a program.
    #[error("{0:?}: a NUL byte cannot be passed to a program")]
    NulByte(String),
    /// `cd` could not change to the directory.
    #[error("cd: {}: {}", dir.display(), errno.desc())]
    Cd { dir: PathBuf, errno: Errno },
    /// A built-in was used the wrong way; `problem` says how.
    #[error("{builtin}: {problem}")]
    Usage {
        builtin: &'static str,
        problem: String,
    },
    /// `kill -NAME` with a name (or number) that is no signal.
    #[error("kill: {0}: unknown signal (kill -l lists them)")]
    UnknownSignal(String),
    /// `kill` could not signal this process (or, for a negative number, process group).
    #[error("kill: ({pid}) - {}", errno.desc())]
    Kill { pid: i32, errno: Errno },
    /// [`run_builtin`] was asked to run a program that is no built-in.
    #[error("{0}: not a built-in command")]
    NotBuiltin(String),
    /// `fg` in a shell without job control (its standard input is not a terminal).
    #[error("fg: no job control (standard input is not a terminal)")]
    NoJobControl,
    /// `fg` with no stopped job.
    #[error("fg: no stopped job")]
    NoJob,
}

pub type Result<T, E = ShellError> = std::result::Result<T, E>;

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
