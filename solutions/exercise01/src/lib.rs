//! Exercise 01: fork and anonymous pipes — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the six functions below (tasks 1 to 6). The task statement is in
// STARTER: //! `README.md` beside this file; `cargo ipclab hint 1` gives hints; `cargo test -p exercise01`
// STARTER: //! grades your work.
//!
//! Every function here follows the same discipline, because every pipe bug is a broken rule:
//! create the pipe before `fork` (both processes must inherit it), close in each process the
//! ends it does not use (a reader sees EOF only when *every* write end is closed), and `wait`
//! for every child (or it lingers as a zombie).
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, unused_mut, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
// BEGIN SOLUTION
use std::panic::{self, AssertUnwindSafe};
use std::thread;
// END SOLUTION

use nix::errno::Errno;
use nix::fcntl::OFlag;
// BEGIN SOLUTION
// STARTER: use nix::sys::signal::Signal;
use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};
// END SOLUTION
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stdin, dup2_stdout, execvp, fork, pipe2, ForkResult, Pid};

// Given to you in `given.rs`, beside this file (do not change it): the types and errors.
#[path = "../../../exercises/exercise01/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}
// END SOLUTION

/// Task 1: fork, run `child` in the child process, exit with the code it returns, and wait for it.
pub fn fork_and_wait(child: impl FnOnce() -> i32) -> Result<Finished> {
    // BEGIN SOLUTION Task 1: fork(); in the child run `child` and _exit with its code; in the parent waitpid for the child
    // SAFETY: the child only runs `child` and then `_exit`s; it never returns into our caller.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => exit_child(child),
        ForkResult::Parent { child: pid } => Ok(Finished {
            pid,
            exit: reap(pid)?,
        }),
    }
    // END SOLUTION
}

/// Task 2: the child writes what `produce` returns into a pipe; the parent reads it to EOF.
///
/// The child closes the read end before calling `produce`.
pub fn message_from_child(produce: impl FnOnce() -> Vec<u8>) -> Result<ChildMessage> {
    // BEGIN SOLUTION Task 2: pipe(), fork(), the child writes what `produce` returns; the parent closes its write end and reads to EOF, then reaps the child
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the child only uses the pipe and `produce`, then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(read_end);
            exit_child(move || {
                let mut pipe = File::from(write_end);
                match pipe.write_all(&produce()) {
                    Ok(()) => 0,
                    Err(_) => 1,
                }
            })
        }
        ForkResult::Parent { child } => {
            // Our copy of the write end must go, or read_to_end would wait for it forever.
            drop(write_end);
            let read = read_to_eof(read_end);
            let exit = reap(child)?;
            Ok(ChildMessage {
                pid: child,
                bytes: read?,
                exit,
            })
        }
    }
    // END SOLUTION
}

/// Task 3: send `request` to a child, which reads it to EOF, answers with `serve(request)` and
/// exits; return the answer.
pub fn round_trip(request: &[u8], serve: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Result<Vec<u8>> {
    // BEGIN SOLUTION Task 3: two pipes, one each way; send the request, close that write end, read the reply to EOF
    let (to_child_read, to_child_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let (to_parent_read, to_parent_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the child only uses its two pipe ends and `serve`, then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(to_child_write);
            drop(to_parent_read);
            exit_child(move || {
                let mut request = Vec::new();
                if File::from(to_child_read).read_to_end(&mut request).is_err() {
                    return 1;
                }
                match File::from(to_parent_write).write_all(&serve(request)) {
                    Ok(()) => 0,
                    Err(_) => 1,
                }
            })
        }
        ForkResult::Parent { child } => {
            drop(to_child_read);
            drop(to_parent_write);
            // Writing the whole request first cannot deadlock: the child reads all of it before
            // it writes anything. Dropping the File closes the write end: the child's EOF.
            let sent = write_all(to_child_write, request);
            let reply = read_to_eof(to_parent_read);
            reap(child)?;
            sent?;
            reply
        }
    }
    // END SOLUTION
}

/// Task 4: stream `input` through a child that applies `transform` to each chunk it reads and
/// writes the result back, like a filter in a shell pipeline (`tr a-z A-Z`).
pub fn stream_through_child(
    input: &[u8],
    // BEGIN SOLUTION
    // STARTER: mut transform: impl FnMut(&[u8]) -> Vec<u8>,
    mut transform: impl FnMut(&[u8]) -> Vec<u8>,
    // END SOLUTION
) -> Result<Vec<u8>> {
    // BEGIN SOLUTION Task 4: like task 3, but the output starts flowing before the input ends: write and read at the same time
    let (to_child_read, to_child_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let (from_child_read, from_child_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the child only uses its two pipe ends and `transform`, then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(to_child_write);
            drop(from_child_read);
            exit_child(move || {
                let (mut input, mut output) =
                    (File::from(to_child_read), File::from(from_child_write));
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    match input.read(&mut chunk) {
                        Ok(0) => return 0,
                        Ok(n) => {
                            if output.write_all(&transform(&chunk[..n])).is_err() {
                                return 1;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return 1,
                    }
                }
            })
        }
        ForkResult::Parent { child } => {
            drop(to_child_read);
            drop(from_child_write);
            // Both pipes hold only 64 KiB. Writing all the input before reading any output would
            // deadlock: the child blocks writing output nobody reads, we block writing input it
            // no longer reads. So one thread writes while this one reads.
            let output = thread::scope(|scope| {
                let writer = scope.spawn(|| write_all(to_child_write, input));
                let output = read_to_eof(from_child_read);
                let sent = writer.join().expect("the writer thread does not panic");
                sent.and(output)
            });
            reap(child)?;
            output
        }
    }
    // END SOLUTION
}

/// Task 5: run `first | second` as a shell would: the first program's standard output becomes
/// the second's standard input. Returns the second's output and both exit statuses.
pub fn pipeline(first: &[&str], second: &[&str]) -> Result<PipelineOutput> {
    // BEGIN SOLUTION Task 5: pipe, fork twice, dup2 the pipe onto stdout of the first and stdin of the second, execvp both
    // Everything that allocates happens before fork.
    let first = Program::new(first)?;
    let second = Program::new(second)?;
    let (link_read, link_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;

    let first_stage = first.spawn(None, Some(link_write))?;
    let second_stage = second.spawn(Some(link_read), Some(out_write));
    let second_stage = match second_stage {
        Ok(stage) => stage,
        Err(e) => {
            // Its stdout went to a pipe nobody will read: make sure it does not linger.
            let _ = nix::sys::signal::kill(first_stage.pid, Signal::SIGKILL);
            reap(first_stage.pid)?;
            return Err(e);
        }
    };
    // The pipe ends now belong to the children only (spawn dropped our copies): the second
    // stage sees EOF when the first exits, and we see EOF when the second exits.
    let stdout = read_to_eof(out_read);
    let first_exit = reap(first_stage.pid)?;
    let second_exit = reap(second_stage.pid)?;
    let stdout = stdout?;
    first_stage.exec_result?;
    second_stage.exec_result?;
    Ok(PipelineOutput {
        stdout,
        first: first_exit,
        second: second_exit,
    })
    // END SOLUTION
}

/// Task 6: give a child the read end of a pipe and run `consume` on it there; write all of
/// `data` into the write end, close it, and wait for the child (which exits with the code
/// `consume` returns).
///
/// If the child stops reading and closes its end, the write fails with EPIPE, reported as
/// [`Error::BrokenPipe`]; the process must not be killed by SIGPIPE even if its disposition is
/// the default one.
pub fn feed_child(data: &[u8], consume: impl FnOnce(File) -> i32) -> Result<Fed> {
    // BEGIN SOLUTION Task 6: the child gets the read end only; the parent writes, reports EPIPE as Error::BrokenPipe, and is not killed by SIGPIPE
    let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
    // SAFETY: the child only runs `consume` on its read end, then `_exit`s.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            // Our copy of the write end would keep our own reads from ever seeing EOF.
            drop(write_end);
            exit_child(move || consume(File::from(read_end)))
        }
        ForkResult::Parent { child } => {
            drop(read_end);
            let written = without_sigpipe(|| write_all(write_end, data));
            let exit = reap(child)?;
            Ok(Fed {
                written: written?,
                exit,
            })
        }
    }
    // END SOLUTION
}

// BEGIN SOLUTION
/// A program and its arguments, converted for `execvp` before any fork.
struct Program {
    argv: Vec<CString>,
}

/// A started pipeline stage. `exec_result` says whether `exec` succeeded.
struct Stage {
    pid: Pid,
    exec_result: Result<()>,
}

impl Program {
    fn new(words: &[&str]) -> Result<Program> {
        if words.is_empty() || words[0].is_empty() {
            return Err(Error::EmptyCommand);
        }
        let argv = words
            .iter()
            .map(|w| {
                CString::new(*w).map_err(|_| Error::Sys {
                    call: "execvp",
                    errno: Errno::EINVAL,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Program { argv })
    }

    fn name(&self) -> String {
        self.argv[0].to_string_lossy().into_owned()
    }

    /// Forks a child that connects `stdin`/`stdout` and execs the program. Consumes (and so
    /// closes, in the parent) the descriptors it is given.
    ///
    /// A failed `exec` is reported through a close-on-exec pipe: a successful exec closes it with
    /// nothing written; a failure writes the errno. So the parent knows, without guessing from
    /// exit code 127, that the program could not be run.
    fn spawn(&self, stdin: Option<OwnedFd>, stdout: Option<OwnedFd>) -> Result<Stage> {
        let (status_read, status_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
        // SAFETY: the child only rearranges descriptors and execs (or reports and `_exit`s).
        match unsafe { fork() }.map_err(sys("fork"))? {
            ForkResult::Child => {
                drop(status_read);
                // An ignored signal stays ignored across exec. Rust ignores SIGPIPE at start-up,
                // so without this `yes | head -n 1` would make `yes` fail with EPIPE and complain
                // instead of dying quietly of SIGPIPE, as it does under a shell.
                // SAFETY: restoring the default disposition installs no handler.
                let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
                let connected = stdin
                    .map_or(Ok(()), dup2_stdin)
                    .and(stdout.map_or(Ok(()), dup2_stdout));
                let errno = match connected {
                    Ok(()) => execvp(&self.argv[0], &self.argv).unwrap_err(),
                    Err(errno) => errno,
                };
                let _ = nix::unistd::write(&status_write, &(errno as i32).to_ne_bytes());
                // SAFETY: ends this copy of the process without running the parent's cleanup.
                unsafe { libc::_exit(127) }
            }
            ForkResult::Parent { child } => {
                drop((stdin, stdout, status_write));
                let report = read_to_eof(status_read)?;
                let exec_result = match <[u8; 4]>::try_from(report.as_slice()) {
                    Err(_) => Ok(()),
                    Ok(bytes) => Err(match Errno::from_raw(i32::from_ne_bytes(bytes)) {
                        Errno::ENOENT => Error::CommandNotFound {
                            command: self.name(),
                        },
                        errno => Error::Exec {
                            command: self.name(),
                            errno,
                        },
                    }),
                };
                Ok(Stage {
                    pid: child,
                    exec_result,
                })
            }
        }
    }
}

/// Runs `f` in the child and ends the child with its result, never returning: a child that
/// returned (or unwound from a panic) would go on running its parent's code.
fn exit_child(f: impl FnOnce() -> i32) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: `_exit` ends the process at once, without the parent's atexit handlers or buffers.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid`, retrying when a signal interrupts the wait, and says how it ended.
fn reap(pid: Pid) -> Result<ChildExit> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(ChildExit::Exited(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(ChildExit::Signaled(signal)),
            // Stopped or continued: not finished yet.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(Error::Sys {
                    call: "waitpid",
                    errno,
                })
            }
        }
    }
}

fn read_to_eof(fd: OwnedFd) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // read_to_end retries reads interrupted by a signal (EINTR) and stops only at EOF.
    File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(io_error("read"))?;
    Ok(bytes)
}

/// Writes all of `data`, continuing after partial writes and EINTR; EPIPE becomes BrokenPipe.
/// Closes the descriptor when done, which is the reader's EOF.
fn write_all(fd: OwnedFd, data: &[u8]) -> Result<usize> {
    let mut pipe = File::from(fd);
    let mut written = 0;
    while written < data.len() {
        match pipe.write(&data[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                return Err(Error::BrokenPipe { written })
            }
            Err(e) => return Err(io_error("write")(e)),
        }
    }
    Ok(written)
}

fn io_error(call: &'static str) -> impl Fn(io::Error) -> Error {
    move |e| Error::Sys {
        call,
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Runs `f` with SIGPIPE blocked in this thread, so that a write to a pipe with no reader fails
/// with EPIPE instead of killing the process, whatever the process's disposition for SIGPIPE.
/// A SIGPIPE raised meanwhile is consumed before the old mask comes back.
///
/// Blocking (per thread) rather than ignoring (per process) leaves the rest of the program alone.
fn without_sigpipe<T>(f: impl FnOnce() -> T) -> T {
    let mut pipe_only = SigSet::empty();
    pipe_only.add(Signal::SIGPIPE);
    let Ok(old_mask) = pipe_only.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        return f();
    };
    let result = f();
    if !old_mask.contains(Signal::SIGPIPE) {
        consume_pending_sigpipe();
        let _ = old_mask.thread_set_mask();
    }
    result
}

fn consume_pending_sigpipe() {
    // sigpending and sigtimedwait have no nix wrapper; libc is the layer here.
    // SAFETY: both calls only write into the sigset_t values we own.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        if libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGPIPE) == 1 {
            let mut pipe_only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pipe_only);
            libc::sigaddset(&mut pipe_only, libc::SIGPIPE);
            let no_wait = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe_only, std::ptr::null_mut(), &no_wait);
        }
    }
}
// END SOLUTION
