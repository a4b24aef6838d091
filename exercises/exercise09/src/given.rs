//! Given to you: do not change this file.
//!
//! The types, errors and constants of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;

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
    /// [`run_builtin`](crate::run_builtin) was asked to run a program that is no built-in.
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
