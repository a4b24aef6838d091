//! Given to you: do not change this file.
//!
//! The errors of this exercise, as the tests use them.
//! `lib.rs` re-exports everything here (`pub use given::*`); your work is in `lib.rs`. The grader
//! uses the course's copy of this file, so a change here would not be graded.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Errors of this exercise. Each names its cause; none is a bare errno.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// Not a signal number this kernel knows (valid numbers are 1 to 64 on Linux).
    #[error("{signal} is not a signal number (Linux numbers its signals 1 to 64)")]
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
