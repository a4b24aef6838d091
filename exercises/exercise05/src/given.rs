//! Given to you: do not change this file.
//!
//! The errors and types of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{Pid, Uid};

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// Not a signal a program may use: Linux numbers its signals 1 to 64, and the C library
    /// keeps 32 and 33 for its threads (`sigaction` and `sigaddset` refuse them with EINVAL).
    #[error("{signal} is not a signal a program can use (Linux numbers its signals 1 to 64; the C library keeps 32 and 33)")]
    InvalidSignal { signal: i32 },
    /// The kernel refused to let the process catch or ignore this signal: SIGKILL and SIGSTOP
    /// always keep their default action, and `sigaction` fails with EINVAL.
    #[error("signal {signal} ({name}) cannot be caught or ignored: sigaction failed with {errno}", name = standard_name(*.signal))]
    Uncatchable { signal: i32, errno: Errno },
    /// This library already has a handler installed for the signal (a handler is per process).
    #[error("a handler from this library is already installed for signal {signal}: drop it first")]
    AlreadyInstalled { signal: i32 },
    /// A [`Reaper`](crate::Reaper) keeps track of a fixed number of children.
    #[error("a Reaper tracks at most {max} children")]
    TooManyChildren { max: usize },
    /// Reading or writing the worker's input, output or pid file failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// The name of a standard signal (`SIGKILL`), for messages; `signal N` for other numbers.
fn standard_name(signal: i32) -> String {
    Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

/// How a child process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    /// It called `exit(code)`.
    Exited(i32),
    /// The signal with this number ended it.
    Signaled(i32),
}

// ---------------------------------------------------------------------------------------------
// Task 1: the signal table.

/// One line of the table: a signal's number and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalName {
    pub number: i32,
    pub name: String,
}

/// The name [`signal_table`](crate::signal_table) gives `number`, or `"signal N"` for a number it does not list.
pub fn signal_name(number: i32) -> String {
    crate::signal_table()
        .into_iter()
        .find(|s| s.number == number)
        .map_or_else(|| format!("signal {number}"), |s| s.name)
}

// ---------------------------------------------------------------------------------------------
// Task 3: who sent it.

/// Who sent a signal, from the `siginfo_t` the kernel passes to an `SA_SIGINFO` handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// `si_pid`: the sending process.
    pub pid: Pid,
    /// `si_uid`: the sender's real user id.
    pub uid: Uid,
}

// ---------------------------------------------------------------------------------------------
// Task 5: SA_RESTART or EINTR.

/// What one blocking read did while a signal was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The read returned these bytes (empty: end of file).
    Data(Vec<u8>),
    /// The read failed with EINTR: a handler ran and the call was not restarted.
    Interrupted,
}

// ---------------------------------------------------------------------------------------------
// Task 6: graceful shutdown.

/// What [`run_worker`](crate::run_worker) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkSummary {
    /// Units of work completed.
    pub units: usize,
    /// The signal that stopped the worker, or `None` if its input ended.
    pub stopped_by: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Task 7: reaping on SIGCHLD.

/// The most children one [`Reaper`](crate::Reaper) tracks.
pub const MAX_CHILDREN: usize = 64;

/// A child that a [`Reaper`](crate::Reaper) reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: Pid,
    pub exit: ChildExit,
}
