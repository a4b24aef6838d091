//! Given to you: do not change this file.
//!
//! The types and errors of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How a child process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It called `exit(code)` (or returned from `main`).
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// The reader went away: every read end of the pipe is closed, so the kernel refused the
    /// write with EPIPE after `written` bytes had gone through.
    #[error("broken pipe: the reader closed its end after {written} bytes")]
    BrokenPipe { written: usize },
    /// A pipeline stage named no program.
    #[error("empty command: a pipeline stage needs at least a program name")]
    EmptyCommand,
    /// A pipeline stage could not be started.
    #[error("command not found: {command}")]
    CommandNotFound { command: String },
    /// A pipeline stage's program exists but `exec` failed for another reason.
    #[error("could not run {command}: {errno}")]
    Exec { command: String, errno: Errno },
}

pub type Result<T> = std::result::Result<T, Error>;

/// What [`fork_and_wait`](crate::fork_and_wait) observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The child's process id, as `fork` returned it to the parent.
    pub pid: Pid,
    pub exit: ChildExit,
}

/// What [`message_from_child`](crate::message_from_child) received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildMessage {
    pub pid: Pid,
    /// Every byte the child wrote, in order.
    pub bytes: Vec<u8>,
    pub exit: ChildExit,
}

/// What [`pipeline`](crate::pipeline) produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineOutput {
    /// Everything the second stage wrote to its standard output.
    pub stdout: Vec<u8>,
    pub first: ChildExit,
    pub second: ChildExit,
}

/// What [`feed_child`](crate::feed_child) observed when every byte was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    pub written: usize,
    pub exit: ChildExit,
}
