//! Exercise 01: fork and anonymous pipes.
//!
//! Your task: implement the six functions below (tasks 1 to 6). The task statement is in
//! `README.md` beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise01`
//! grades your work.
//!
//! Every function here follows the same discipline, because every pipe bug is a broken rule:
//! create the pipe before `fork` (both processes must inherit it), close in each process the
//! ends it does not use (a reader sees EOF only when *every* write end is closed), and `wait`
//! for every child (or it lingers as a zombie).

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, unused_mut, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdin, dup2_stdout, execvp, fork, pipe2, ForkResult, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types and errors.
mod given;
pub use given::*;

/// Task 1: fork, run `child` in the child process, exit with the code it returns, and wait for it.
pub fn fork_and_wait(child: impl FnOnce() -> i32) -> Result<Finished> {
    todo!("Task 1: fork(); in the child run `child` and _exit with its code; in the parent waitpid for the child")
}

/// Task 2: the child writes what `produce` returns into a pipe; the parent reads it to EOF.
///
/// The child closes the read end before calling `produce`.
pub fn message_from_child(produce: impl FnOnce() -> Vec<u8>) -> Result<ChildMessage> {
    todo!("Task 2: pipe(), fork(), the child writes what `produce` returns; the parent closes its write end and reads to EOF, then reaps the child")
}

/// Task 3: send `request` to a child, which reads it to EOF, answers with `serve(request)` and
/// exits; return the answer.
pub fn round_trip(request: &[u8], serve: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Result<Vec<u8>> {
    todo!("Task 3: two pipes, one each way; send the request, close that write end, read the reply to EOF")
}

/// Task 4: stream `input` through a child that applies `transform` to each chunk it reads and
/// writes the result back, like a filter in a shell pipeline (`tr a-z A-Z`).
pub fn stream_through_child(
    input: &[u8],
    mut transform: impl FnMut(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>> {
    todo!("Task 4: like task 3, but the output starts flowing before the input ends: write and read at the same time")
}

/// Task 5: run `first | second` as a shell would: the first program's standard output becomes
/// the second's standard input. Returns the second's output and both exit statuses.
pub fn pipeline(first: &[&str], second: &[&str]) -> Result<PipelineOutput> {
    todo!("Task 5: pipe, fork twice, dup2 the pipe onto stdout of the first and stdin of the second, execvp both")
}

/// Task 6: give a child the read end of a pipe and run `consume` on it there; write all of
/// `data` into the write end, close it, and wait for the child (which exits with the code
/// `consume` returns).
///
/// If the child stops reading and closes its end, the write fails with EPIPE, reported as
/// [`Error::BrokenPipe`]; the process must not be killed by SIGPIPE even if its disposition is
/// the default one.
pub fn feed_child(data: &[u8], consume: impl FnOnce(File) -> i32) -> Result<Fed> {
    todo!("Task 6: the child gets the read end only; the parent writes, reports EPIPE as Error::BrokenPipe, and is not killed by SIGPIPE")
}
