//! Exercise 05: signals.
//!
//! Your task: implement the functions and methods below (tasks 1 to 7). The task statement is in
//! `README.md` beside this file; `cargo ipclab hint 5` gives hints; `cargo test -p exercise05`
//! grades your work.
//!
//! A signal interrupts a process at any instruction, so a handler may only do what is safe at
//! any instruction: touch atomics and make async-signal-safe system calls (`write`, `waitpid`).
//! No allocation, no locks, no `println!` in a handler. The usual shape: the handler counts in a
//! static atomic and writes one byte to a self-pipe; ordinary code waits for the signal by
//! reading that pipe.
//!
//! Signals are plain numbers here (`i32`), because `nix::sys::signal::Signal` has no variants for
//! the real-time signals (SIGRTMIN..SIGRTMAX, known only at run time through
//! `libc::SIGRTMIN()`). So `sigaction`, the masks and `sigpending` go through `libc` where the
//! signal may be a real-time one: keep each `unsafe` call in a small safe function.

// The starter leaves parameters and imports unused until you use them: remove this line when done.
#![allow(unused_variables, unused_imports, dead_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::{fork, getpid, pipe2, ForkResult, Pid, Uid};

// Given to you in `given.rs`, beside this file (do not change it): the errors, and the types
// the tests build or match on (ChildExit and one per task, named at each task below).
mod given;
pub use given::*;

// ---------------------------------------------------------------------------------------------
// Task 1: the signal table.

// Given in `given.rs`: [`SignalName`], and [`signal_name`], which looks a number up in your
// table.

/// Task 1: every signal of this system, in order of number, named as bash's `kill -l` names them.
///
/// The standard signals 1 to 31 keep their names (`SIGHUP` … `SIGSYS`). The real-time signals
/// run from `SIGRTMIN` to `SIGRTMAX`, both known only at run time (`libc::SIGRTMIN()`): the C
/// library keeps the first kernel real-time signals for itself, so on glibc the range starts at
/// 34 and numbers 32 and 33 are not listed. The lower half of the range is named from the
/// bottom (`SIGRTMIN+1`, …), the upper half from the top (…, `SIGRTMAX-1`); the signal exactly in
/// the middle counts from the bottom.
pub fn signal_table() -> Vec<SignalName> {
    todo!("Task 1: list 1..=31 with their names (nix's Signal::as_str), then SIGRTMIN()..=SIGRTMAX() named SIGRTMIN+n / SIGRTMAX-n")
}

/// Task 1: the table as bash's `kill -l` prints it: entries `%2d) NAME`, five to a line, each
/// followed by a tab except the fifth, which is followed by a newline; a last, incomplete line
/// ends with its tab and then a newline.
pub fn kill_l() -> String {
    todo!("Task 1: format signal_table() as bash's `kill -l` does: `{{:2}}) NAME`, tabs between, a newline after every fifth")
}

// ---------------------------------------------------------------------------------------------
// Task 2: a counting handler.

/// Counts the deliveries of one signal to this process.
///
/// [`SignalCounter::install`] installs (with `sigaction`) a handler that only does
/// async-signal-safe work: it increments an atomic counter and writes one byte to a self-pipe.
/// Dropping the counter puts the previous disposition back.
#[derive(Debug)]
pub struct SignalCounter {
    // Add what you need: the signal, the previous `struct sigaction`, the self-pipe's ends.
    signal: i32,
}

impl SignalCounter {
    /// Task 2: installs the counting handler for `signal` (standard or real-time), with
    /// `SA_RESTART` so that it does not disturb blocking calls elsewhere in the program.
    ///
    /// Errors: [`Error::InvalidSignal`] for a number that is no signal a program can use,
    /// [`Error::Uncatchable`] for SIGKILL and SIGSTOP.
    pub fn install(signal: i32) -> Result<SignalCounter> {
        todo!("Task 2: sigaction with a handler that increments a static atomic and writes a byte to a self-pipe; keep the old action")
    }

    /// The number of deliveries so far.
    pub fn count(&self) -> usize {
        todo!("Task 2: read the atomic the handler increments")
    }

    /// Blocks until at least `n` deliveries have happened; returns the count then.
    pub fn wait_for(&self, n: usize) -> Result<usize> {
        todo!("Task 2: until the count reaches n, block reading the self-pipe (retry on EINTR)")
    }
}

impl Drop for SignalCounter {
    fn drop(&mut self) {
        // Task 2: put the previous disposition back, then close the self-pipe.
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: who sent it.

// Given in `given.rs`: [`Sender`].

/// Task 3: installs an `SA_SIGINFO` handler for `signal`, calls `trigger` (which makes someone
/// send the signal), waits for the delivery and says who sent it; then restores the previous
/// disposition. If several arrive, the first one is reported.
pub fn who_sent(signal: i32, trigger: impl FnOnce()) -> Result<Sender> {
    todo!("Task 3: an SA_SIGINFO handler stores si_pid and si_uid in atomics and wakes you; install it before calling `trigger`")
}

// ---------------------------------------------------------------------------------------------
// Task 4: blocking and pending.

/// Signals blocked in the calling thread by [`block`]; dropping it (or [`Blocked::unblock`])
/// puts back the mask that was there before.
#[derive(Debug)]
pub struct Blocked {
    // Add what you need: the mask to put back.
}

/// Task 4: blocks `signals` in the calling thread (`sigprocmask`, or `pthread_sigmask` in a
/// multi-threaded program). A blocked signal that arrives stays pending until it is unblocked.
pub fn block(signals: &[i32]) -> Result<Blocked> {
    todo!("Task 4: build a sigset_t of `signals`, pthread_sigmask(SIG_BLOCK, …) and keep the old mask")
}

impl Blocked {
    /// Task 4: restores the mask from before [`block`]; a signal that became pending meanwhile
    /// is delivered before this returns.
    pub fn unblock(self) -> Result<()> {
        todo!("Task 4: pthread_sigmask(SIG_SETMASK, the old mask)")
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // Task 4: restore the old mask here too, unless `unblock` already did.
    }
}

/// Task 4: the signals pending for the calling thread (sent to it or to the whole process, and
/// blocked), in order of number, as `sigpending` reports them.
pub fn pending() -> Result<Vec<i32>> {
    todo!("Task 4: sigpending, then sigismember for 1..=64")
}

// ---------------------------------------------------------------------------------------------
// Task 5: SA_RESTART or EINTR.

// Given in `given.rs`: [`ReadOutcome`].

/// Task 5: with a handler for `signal` installed (with `SA_RESTART` if `restart`), makes one
/// blocking `read(2)` of up to `max` bytes from `fd` and reports what it did; then restores the
/// previous disposition.
pub fn read_during_signal(
    fd: BorrowedFd<'_>,
    signal: i32,
    restart: bool,
    max: usize,
) -> Result<ReadOutcome> {
    todo!("Task 5: install a handler (SA_RESTART only if `restart`), call read(2) once, map EINTR to Interrupted, restore the old action")
}

// ---------------------------------------------------------------------------------------------
// Task 6: graceful shutdown, and the two signals nobody catches.

/// A request to shut down, recorded by a handler for SIGTERM, SIGINT or whichever signals were
/// asked for. Dropping it restores their previous dispositions.
#[derive(Debug)]
pub struct Shutdown {
    // Add what you need: one installed handler (and self-pipe) per signal.
}

impl Shutdown {
    /// Task 6: catches each of `signals` with a handler that only records the request.
    ///
    /// SIGKILL and SIGSTOP cannot be caught: the kernel's EINVAL is reported as
    /// [`Error::Uncatchable`] (and nothing stays installed).
    pub fn on(signals: &[i32]) -> Result<Shutdown> {
        todo!("Task 6: a handler per signal that records it; map sigaction's EINVAL for SIGKILL/SIGSTOP to Error::Uncatchable")
    }

    /// The first of the signals that arrived, if any did.
    pub fn requested(&self) -> Option<i32> {
        todo!("Task 6: which signal the handlers recorded first")
    }

    /// Descriptors that become readable when one of the signals arrives (for `poll`).
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        todo!("Task 6: the read ends of the self-pipes")
    }
}

/// Sets `signal`'s disposition to "ignore" (`SIG_IGN`); dropping the guard restores the
/// previous one.
#[derive(Debug)]
pub struct Ignored {
    // Add what you need: the signal and its previous `struct sigaction`.
}

/// Task 6: ignores `signal`. SIGKILL and SIGSTOP cannot be ignored: the kernel's EINVAL is
/// reported as [`Error::Uncatchable`]; a number that is no signal a program can use is
/// [`Error::InvalidSignal`].
pub fn ignore(signal: i32) -> Result<Ignored> {
    todo!("Task 6: sigaction with SIG_IGN; map the kernel's EINVAL for SIGKILL/SIGSTOP to Error::Uncatchable")
}

impl Drop for Ignored {
    fn drop(&mut self) {
        // Task 6: restore the previous disposition.
    }
}

// Given in `given.rs`: [`WorkSummary`], what [`run_worker`] returns.

/// Task 6: the worker behind the `ex05-worker` program.
///
/// It catches SIGTERM and SIGINT, writes its pid (and a newline) to `pid_file`, prints
/// `ready <pid>`, then runs units of work read from `input`: a line `begin` starts unit N
/// (printing `working N`), and the unit is complete at the next line `end` (printing `done N`);
/// the lines between them are the unit's work and print nothing.
/// A signal that arrives during a unit lets the unit finish; between units, it stops the worker
/// at once. Either way, or at the end of the input, the worker removes `pid_file`, prints
/// `stopped by SIGTERM after N units` (or `input ended after N units`) and returns.
pub fn run_worker(
    pid_file: &Path,
    input: BorrowedFd<'_>,
    output: &mut dyn Write,
) -> Result<WorkSummary> {
    todo!("Task 6: Shutdown::on(SIGTERM, SIGINT), pid file, `ready`; between units poll the input and the shutdown fds; finish a unit before stopping")
}

// ---------------------------------------------------------------------------------------------
// Task 7: reaping on SIGCHLD.

// Given in `given.rs`: [`MAX_CHILDREN`] and [`Reaped`].

/// Starts children and reaps each one as it exits, from a SIGCHLD handler, so that none stays a
/// zombie. Only one Reaper exists at a time (it owns the process's SIGCHLD handler); dropping it
/// restores the previous SIGCHLD disposition and kills and reaps the children still running.
#[derive(Debug)]
pub struct Reaper {
    // Add what you need. The handler can only reach statics: keep the children's pids and
    // statuses in a static array of atomics.
}

impl Reaper {
    /// Task 7: installs the SIGCHLD handler (`SA_RESTART`, so that blocking calls elsewhere go
    /// on when a child exits; `SA_NOCLDSTOP`: only exits matter).
    pub fn install() -> Result<Reaper> {
        todo!("Task 7: sigaction(SIGCHLD) with a handler that reaps with waitpid(pid, WNOHANG) every child that has exited")
    }

    /// Task 7: forks a child that runs `child` and exits with the code it returns.
    pub fn spawn(&self, child: impl FnOnce() -> i32) -> Result<Pid> {
        todo!("Task 7: fork; the child runs `child` and _exits; the parent records the pid where the handler sees it")
    }

    /// Task 7: the children reaped so far.
    pub fn reaped(&self) -> Vec<Reaped> {
        todo!("Task 7: the recorded pids and statuses of the reaped children")
    }

    /// Task 7: blocks until every child started so far has been reaped; returns them all.
    pub fn wait_all(&self) -> Result<Vec<Reaped>> {
        todo!(
            "Task 7: until no child is left running, block on the self-pipe the handler writes to"
        )
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Task 7: restore the old SIGCHLD action, then kill and reap the children still running.
    }
}
