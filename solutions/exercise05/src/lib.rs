//! Exercise 05: signals — reference solution.
// STARTER: //!
// STARTER: //! Your task: implement the functions and methods below (tasks 1 to 7). The task statement is in
// STARTER: //! `README.md` beside this file; `cargo ipclab hint 5` gives hints; `cargo test -p exercise05`
// STARTER: //! grades your work.
//!
//! A signal interrupts a process at any instruction, so a handler may only do what is safe at
//! any instruction: touch atomics and make async-signal-safe system calls (`write`, `waitpid`).
// BEGIN SOLUTION
// STARTER: //! No allocation, no locks, no `println!` in a handler. The usual shape: the handler counts in a
// STARTER: //! static atomic and writes one byte to a self-pipe; ordinary code waits for the signal by
// STARTER: //! reading that pipe.
//! Every handler here does exactly that: it counts in a static atomic, records what it must in
//! static atomics, and writes one byte to a self-pipe so that ordinary code can *wait* for the
//! signal by reading the pipe. Everything else (allocation, locks, printing) happens outside.
// END SOLUTION
//!
//! Signals are plain numbers here (`i32`), because `nix::sys::signal::Signal` has no variants for
// BEGIN SOLUTION
// STARTER: //! the real-time signals (SIGRTMIN..SIGRTMAX, known only at run time through
// STARTER: //! `libc::SIGRTMIN()`). So `sigaction`, the masks and `sigpending` go through `libc` where the
// STARTER: //! signal may be a real-time one: keep each `unsafe` call in a small safe function.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]
//! the real-time signals (SIGRTMIN..SIGRTMAX, whose numbers are only known at run time). For the
//! same reason `sigaction`, the signal masks and `sigpending` go through `libc` in the small `raw`
//! module at the end, each call behind a safe function.
// END SOLUTION

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab exercises use Linux system calls and /proc: build them on Linux.");

use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
// BEGIN SOLUTION
use std::panic::{self, AssertUnwindSafe};
// END SOLUTION
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::{fork, getpid, pipe2, ForkResult, Pid, Uid};

// Given to you in `given.rs`, beside this file (do not change it): the errors, and the types
// the tests build or match on (ChildExit and one per task, named at each task below).
#[path = "../../../exercises/exercise05/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
/// Attaches the name of the failed call to an errno.
fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}
// END SOLUTION

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
    // BEGIN SOLUTION Task 1: list 1..=31 with their names (nix's Signal::as_str), then SIGRTMIN()..=SIGRTMAX() named SIGRTMIN+n / SIGRTMAX-n
    let standard = (1..32).filter_map(|number| {
        Signal::try_from(number).ok().map(|s| SignalName {
            number,
            name: s.as_str().to_owned(),
        })
    });
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let realtime = (min..=max).map(move |number| SignalName {
        number,
        name: realtime_name(number, min, max),
    });
    standard.chain(realtime).collect()
    // END SOLUTION
}

// BEGIN SOLUTION
fn realtime_name(number: i32, min: i32, max: i32) -> String {
    let (from_min, from_max) = (number - min, max - number);
    match (from_min, from_max) {
        (0, _) => "SIGRTMIN".to_owned(),
        (_, 0) => "SIGRTMAX".to_owned(),
        _ if from_min <= from_max => format!("SIGRTMIN+{from_min}"),
        _ => format!("SIGRTMAX-{from_max}"),
    }
}
// END SOLUTION

/// Task 1: the table as bash's `kill -l` prints it: entries `%2d) NAME`, five to a line, each
/// followed by a tab except the fifth, which is followed by a newline; a last, incomplete line
/// ends with its tab and then a newline.
pub fn kill_l() -> String {
    // BEGIN SOLUTION Task 1: format signal_table() as bash's `kill -l` does: `{{:2}}) NAME`, tabs between, a newline after every fifth
    let mut out = String::new();
    let mut column = 0;
    for entry in signal_table() {
        out.push_str(&format!("{:2}) {}", entry.number, entry.name));
        column += 1;
        if column == 5 {
            out.push('\n');
            column = 0;
        } else {
            out.push('\t');
        }
    }
    if column != 0 {
        out.push('\n');
    }
    out
    // END SOLUTION
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
    // BEGIN SOLUTION
    // STARTER: // Add what you need: the signal, the previous `struct sigaction`, the self-pipe's ends.
    // STARTER: signal: i32,
    installed: Installed,
    // END SOLUTION
}

impl SignalCounter {
    /// Task 2: installs the counting handler for `signal` (standard or real-time), with
    /// `SA_RESTART` so that it does not disturb blocking calls elsewhere in the program.
    ///
    /// Errors: [`Error::InvalidSignal`] for a number that is no signal a program can use,
    /// [`Error::Uncatchable`] for SIGKILL and SIGSTOP.
    pub fn install(signal: i32) -> Result<SignalCounter> {
        // BEGIN SOLUTION Task 2: sigaction with a handler that increments a static atomic and writes a byte to a self-pipe; keep the old action
        let installed = Installed::new(signal, Handler::Plain(on_signal), libc::SA_RESTART)?;
        Ok(SignalCounter { installed })
        // END SOLUTION
    }

    /// The number of deliveries so far.
    pub fn count(&self) -> usize {
        // BEGIN SOLUTION Task 2: read the atomic the handler increments
        self.installed.count()
        // END SOLUTION
    }

    /// Blocks until at least `n` deliveries have happened; returns the count then.
    pub fn wait_for(&self, n: usize) -> Result<usize> {
        // BEGIN SOLUTION
        // STARTER: todo!("Task 2: until the count reaches n, block reading the self-pipe (retry on EINTR)")
        // STARTER: }
        // STARTER: }
        // STARTER:
        // STARTER: impl Drop for SignalCounter {
        // STARTER: fn drop(&mut self) {
        // STARTER: // Task 2: put the previous disposition back, then close the self-pipe.
        self.installed.wait_for(n)
        // END SOLUTION
    }
}

// ---------------------------------------------------------------------------------------------
// Task 3: who sent it.

// Given in `given.rs`: [`Sender`].

/// Task 3: installs an `SA_SIGINFO` handler for `signal`, calls `trigger` (which makes someone
/// send the signal), waits for the delivery and says who sent it; then restores the previous
/// disposition. If several arrive, the first one is reported.
pub fn who_sent(signal: i32, trigger: impl FnOnce()) -> Result<Sender> {
    // BEGIN SOLUTION Task 3: an SA_SIGINFO handler stores si_pid and si_uid in atomics and wakes you; install it before calling `trigger`
    let installed = Installed::new(
        signal,
        Handler::Info(on_signal_with_info),
        libc::SA_SIGINFO | libc::SA_RESTART,
    )?;
    trigger();
    installed.wait_for(1)?;
    let slot = slot(signal).expect("Installed::new checked the number");
    Ok(Sender {
        pid: Pid::from_raw(slot.sender_pid.load(Ordering::SeqCst)),
        uid: Uid::from_raw(slot.sender_uid.load(Ordering::SeqCst)),
    })
    // END SOLUTION
}

// ---------------------------------------------------------------------------------------------
// Task 4: blocking and pending.

/// Signals blocked in the calling thread by [`block`]; dropping it (or [`Blocked::unblock`])
/// puts back the mask that was there before.
#[derive(Debug)]
pub struct Blocked {
    // BEGIN SOLUTION
    // STARTER: // Add what you need: the mask to put back.
    previous: raw::Mask,
    restored: bool,
    // END SOLUTION
}

/// Task 4: blocks `signals` in the calling thread (`sigprocmask`, or `pthread_sigmask` in a
/// multi-threaded program). A blocked signal that arrives stays pending until it is unblocked.
pub fn block(signals: &[i32]) -> Result<Blocked> {
    // BEGIN SOLUTION Task 4: build a sigset_t of `signals`, pthread_sigmask(SIG_BLOCK, …) and keep the old mask
    let set = raw::Mask::of(signals)?;
    let previous = raw::set_thread_mask(libc::SIG_BLOCK, &set)?;
    Ok(Blocked {
        previous,
        restored: false,
    })
    // END SOLUTION
}

impl Blocked {
    /// Task 4: restores the mask from before [`block`]; a signal that became pending meanwhile
    /// is delivered before this returns.
    // BEGIN SOLUTION
    // STARTER: pub fn unblock(self) -> Result<()> {
    // STARTER: todo!("Task 4: pthread_sigmask(SIG_SETMASK, the old mask)")
    pub fn unblock(mut self) -> Result<()> {
        self.restored = true;
        raw::set_thread_mask(libc::SIG_SETMASK, &self.previous).map(drop)
        // END SOLUTION
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 4: restore the old mask here too, unless `unblock` already did.
        if !self.restored {
            let _ = raw::set_thread_mask(libc::SIG_SETMASK, &self.previous);
        }
        // END SOLUTION
    }
}

/// Task 4: the signals pending for the calling thread (sent to it or to the whole process, and
/// blocked), in order of number, as `sigpending` reports them.
pub fn pending() -> Result<Vec<i32>> {
    // BEGIN SOLUTION Task 4: sigpending, then sigismember for 1..=64
    Ok(raw::pending()?.members())
    // END SOLUTION
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
    // BEGIN SOLUTION Task 5: install a handler (SA_RESTART only if `restart`), call read(2) once, map EINTR to Interrupted, restore the old action
    let flags = if restart { libc::SA_RESTART } else { 0 };
    let _installed = Installed::new(signal, Handler::Plain(on_signal), flags)?;
    let mut buf = vec![0u8; max];
    // One read, deliberately not retried: EINTR is the answer being asked for.
    match nix::unistd::read(fd, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            Ok(ReadOutcome::Data(buf))
        }
        Err(Errno::EINTR) => Ok(ReadOutcome::Interrupted),
        Err(errno) => Err(Error::Sys {
            call: "read",
            errno,
        }),
    }
    // END SOLUTION
}

// ---------------------------------------------------------------------------------------------
// Task 6: graceful shutdown, and the two signals nobody catches.

/// A request to shut down, recorded by a handler for SIGTERM, SIGINT or whichever signals were
/// asked for. Dropping it restores their previous dispositions.
#[derive(Debug)]
pub struct Shutdown {
    // BEGIN SOLUTION
    // STARTER: // Add what you need: one installed handler (and self-pipe) per signal.
    installed: Vec<Installed>,
    // END SOLUTION
}

impl Shutdown {
    /// Task 6: catches each of `signals` with a handler that only records the request.
    ///
    /// SIGKILL and SIGSTOP cannot be caught: the kernel's EINVAL is reported as
    /// [`Error::Uncatchable`] (and nothing stays installed).
    pub fn on(signals: &[i32]) -> Result<Shutdown> {
        // BEGIN SOLUTION Task 6: a handler per signal that records it; map sigaction's EINVAL for SIGKILL/SIGSTOP to Error::Uncatchable
        let installed = signals
            .iter()
            .map(|&signal| Installed::new(signal, Handler::Plain(on_signal), 0))
            .collect::<Result<Vec<_>>>()?;
        Ok(Shutdown { installed })
        // END SOLUTION
    }

    /// The first of the signals that arrived, if any did.
    pub fn requested(&self) -> Option<i32> {
        // BEGIN SOLUTION Task 6: which signal the handlers recorded first
        self.installed
            .iter()
            .filter(|i| i.count() > 0)
            .min_by_key(|i| i.slot().first_arrival.load(Ordering::SeqCst))
            .map(|i| i.signal)
        // END SOLUTION
    }

    /// Descriptors that become readable when one of the signals arrives (for `poll`).
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        // BEGIN SOLUTION Task 6: the read ends of the self-pipes
        self.installed.iter().map(|i| i.wake_read.as_fd()).collect()
        // END SOLUTION
    }
}

/// Sets `signal`'s disposition to "ignore" (`SIG_IGN`); dropping the guard restores the
/// previous one.
#[derive(Debug)]
pub struct Ignored {
    // BEGIN SOLUTION
    // STARTER: // Add what you need: the signal and its previous `struct sigaction`.
    signal: i32,
    previous: raw::Action,
    // END SOLUTION
}

/// Task 6: ignores `signal`. SIGKILL and SIGSTOP cannot be ignored: the kernel's EINVAL is
/// reported as [`Error::Uncatchable`]; a number that is no signal a program can use is
/// [`Error::InvalidSignal`].
pub fn ignore(signal: i32) -> Result<Ignored> {
    // BEGIN SOLUTION Task 6: sigaction with SIG_IGN; map the kernel's EINVAL for SIGKILL/SIGSTOP to Error::Uncatchable
    let previous = raw::set_action(signal, &raw::Action::ignore())?;
    Ok(Ignored { signal, previous })
    // END SOLUTION
}

impl Drop for Ignored {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 6: restore the previous disposition.
        let _ = raw::set_action(self.signal, &self.previous);
        // END SOLUTION
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
    // BEGIN SOLUTION Task 6: Shutdown::on(SIGTERM, SIGINT), pid file, `ready`; between units poll the input and the shutdown fds; finish a unit before stopping
    let shutdown = Shutdown::on(&[libc::SIGTERM, libc::SIGINT])?;
    let _pid_file = PidFile::create(pid_file)?;
    let mut lines = LineReader::new(input);
    let say = |output: &mut dyn Write, line: String| {
        writeln!(output, "{line}")
            .and_then(|()| output.flush())
            .map_err(|source| Error::Io {
                what: "writing the worker's output",
                source,
            })
    };
    say(output, format!("ready {}", getpid()))?;

    let mut units = 0;
    let stopped_by = loop {
        // Between units: wait for the next line or for a shutdown request, whichever is first.
        // poll on the self-pipes closes the race of "check the flag, then block in read".
        let Some(line) = lines.next_line(Some(&shutdown))? else {
            break shutdown.requested();
        };
        if line != "begin" {
            say(output, format!("ignored {line:?}: expected `begin`"))?;
            continue;
        }
        say(output, format!("working {}", units + 1))?;
        // Inside a unit, signals only leave their mark: the unit runs to its end.
        loop {
            match lines.next_line(None)? {
                Some(line) if line == "end" => break,
                Some(_) => continue,
                None => {
                    return Err(Error::Io {
                        what: "reading the worker's input",
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "input ended in the middle of a unit",
                        ),
                    })
                }
            }
        }
        units += 1;
        say(output, format!("done {units}"))?;
        if let Some(signal) = shutdown.requested() {
            break Some(signal);
        }
    };
    let summary = match stopped_by {
        Some(signal) => format!("stopped by {} after {units} units", signal_name(signal)),
        None => format!("input ended after {units} units"),
    };
    say(output, summary)?;
    Ok(WorkSummary { units, stopped_by })
    // END SOLUTION
}

// BEGIN SOLUTION
/// A pid file that is removed when dropped, on every way out of the worker.
struct PidFile(PathBuf);

impl PidFile {
    fn create(path: &Path) -> Result<PidFile> {
        fs::write(path, format!("{}\n", getpid())).map_err(|source| Error::Io {
            what: "writing the pid file",
            source,
        })?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Lines from a descriptor, read with plain `read(2)` so that `poll` on the same descriptor
/// tells the truth (a buffered reader could hold a line that `poll` does not know about).
struct LineReader<'fd> {
    fd: BorrowedFd<'fd>,
    buffer: Vec<u8>,
    eof: bool,
}

impl<'fd> LineReader<'fd> {
    fn new(fd: BorrowedFd<'fd>) -> Self {
        LineReader {
            fd,
            buffer: Vec::new(),
            eof: false,
        }
    }

    /// The next line, or `None` at end of input or, with `interrupt`, once a shutdown is
    /// requested before a complete line is there.
    fn next_line(&mut self, interrupt: Option<&Shutdown>) -> Result<Option<String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).trim().to_owned();
                return Ok(Some(line));
            }
            if self.eof {
                return Ok(None);
            }
            if let Some(shutdown) = interrupt {
                if shutdown.requested().is_some() {
                    return Ok(None);
                }
                if !self.wait_readable(shutdown)? {
                    continue; // a signal: the check above ends the loop
                }
            }
            let mut chunk = [0u8; 4096];
            match nix::unistd::read(self.fd, &mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(sys("read")(errno)),
            }
        }
    }

    /// Waits until the input or one of the shutdown pipes is readable; true if the input is.
    fn wait_readable(&self, shutdown: &Shutdown) -> Result<bool> {
        let mut fds = vec![PollFd::new(self.fd, PollFlags::POLLIN)];
        fds.extend(
            shutdown
                .fds()
                .into_iter()
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => Ok(fds[0].revents().is_some_and(|r| !r.is_empty())),
            Err(Errno::EINTR) => Ok(false),
            Err(errno) => Err(sys("poll")(errno)),
        }
    }
}
// END SOLUTION

// ---------------------------------------------------------------------------------------------
// Task 7: reaping on SIGCHLD.

// Given in `given.rs`: [`MAX_CHILDREN`] and [`Reaped`].

/// Starts children and reaps each one as it exits, from a SIGCHLD handler, so that none stays a
/// zombie. Only one Reaper exists at a time (it owns the process's SIGCHLD handler); dropping it
/// restores the previous SIGCHLD disposition and kills and reaps the children still running.
#[derive(Debug)]
pub struct Reaper {
    // BEGIN SOLUTION
    // STARTER: // Add what you need. The handler can only reach statics: keep the children's pids and
    // STARTER: // statuses in a static array of atomics.
    installed: Option<Installed>,
    // END SOLUTION
}

impl Reaper {
    /// Task 7: installs the SIGCHLD handler (`SA_RESTART`, so that blocking calls elsewhere go
    /// on when a child exits; `SA_NOCLDSTOP`: only exits matter).
    pub fn install() -> Result<Reaper> {
        // BEGIN SOLUTION Task 7: sigaction(SIGCHLD) with a handler that reaps with waitpid(pid, WNOHANG) every child that has exited
        let installed = Installed::new(
            libc::SIGCHLD,
            Handler::Plain(on_sigchld),
            libc::SA_RESTART | libc::SA_NOCLDSTOP,
        )?;
        for child in &CHILDREN {
            child.state.store(FREE, Ordering::SeqCst);
        }
        Ok(Reaper {
            installed: Some(installed),
        })
        // END SOLUTION
    }

    /// Task 7: forks a child that runs `child` and exits with the code it returns.
    pub fn spawn(&self, child: impl FnOnce() -> i32) -> Result<Pid> {
        // BEGIN SOLUTION Task 7: fork; the child runs `child` and _exits; the parent records the pid where the handler sees it
        let entry = CHILDREN
            .iter()
            .find(|c| {
                c.state
                    .compare_exchange(FREE, STARTING, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or(Error::TooManyChildren { max: MAX_CHILDREN })?;
        // SAFETY: the child only runs `child` and then `_exit`s; it never returns to our caller.
        match unsafe { fork() } {
            Err(errno) => {
                entry.state.store(FREE, Ordering::SeqCst);
                Err(sys("fork")(errno))
            }
            Ok(ForkResult::Child) => exit_child(child),
            Ok(ForkResult::Parent { child: pid }) => {
                entry.pid.store(pid.as_raw(), Ordering::SeqCst);
                entry.state.store(RUNNING, Ordering::SeqCst);
                // The child may have exited, and its SIGCHLD been handled, before it was
                // registered: look once more now that it is.
                reap_exited();
                Ok(pid)
            }
        }
        // END SOLUTION
    }

    /// Task 7: the children reaped so far.
    pub fn reaped(&self) -> Vec<Reaped> {
        // BEGIN SOLUTION Task 7: the recorded pids and statuses of the reaped children
        CHILDREN
            .iter()
            .filter(|c| c.state.load(Ordering::SeqCst) == REAPED)
            .map(|c| Reaped {
                pid: Pid::from_raw(c.pid.load(Ordering::SeqCst)),
                exit: decode_status(c.status.load(Ordering::SeqCst)),
            })
            .collect()
        // END SOLUTION
    }

    /// Task 7: blocks until every child started so far has been reaped; returns them all.
    pub fn wait_all(&self) -> Result<Vec<Reaped>> {
        // BEGIN SOLUTION Task 7: until no child is left running, block on the self-pipe the handler writes to
        let installed = self.installed.as_ref().expect("present until drop");
        loop {
            let running = CHILDREN
                .iter()
                .any(|c| matches!(c.state.load(Ordering::SeqCst), RUNNING | STARTING));
            if !running {
                return Ok(self.reaped());
            }
            // The handler writes a byte after every reap: sleep until the next one.
            installed.wait_for_byte()?;
        }
        // END SOLUTION
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // BEGIN SOLUTION
        // STARTER: // Task 7: restore the old SIGCHLD action, then kill and reap the children still running.
        // First the handler goes (and any delivery in progress finishes), then the leftovers.
        drop(self.installed.take());
        for c in &CHILDREN {
            if c.state.load(Ordering::SeqCst) == RUNNING {
                let pid = Pid::from_raw(c.pid.load(Ordering::SeqCst));
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                while let Err(Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
            }
            c.state.store(FREE, Ordering::SeqCst);
        }
        // END SOLUTION
    }
}

// BEGIN SOLUTION
const FREE: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const REAPED: u8 = 3;

/// One child of the Reaper, shared with the SIGCHLD handler (hence atomics only).
struct ChildSlot {
    state: AtomicU8,
    pid: AtomicI32,
    status: AtomicI32,
}

static CHILDREN: [ChildSlot; MAX_CHILDREN] = [const {
    ChildSlot {
        state: AtomicU8::new(FREE),
        pid: AtomicI32::new(0),
        status: AtomicI32::new(0),
    }
}; MAX_CHILDREN];

extern "C" fn on_sigchld(signal: libc::c_int) {
    let saved = Errno::last_raw();
    reap_exited();
    on_signal(signal);
    Errno::set_raw(saved);
}

/// Reaps every registered child that has exited, without blocking. Async-signal-safe: atomics
/// and `waitpid(WNOHANG)` only. SIGCHLD does not queue (many children exiting at once may
/// produce one signal), so every pass looks at every child rather than reaping just one.
///
/// It may run in a handler on one thread and in `spawn` on another at once: the kernel hands a
/// child's status to exactly one `waitpid`, and only that caller records it.
fn reap_exited() {
    for c in &CHILDREN {
        if c.state.load(Ordering::SeqCst) != RUNNING {
            continue;
        }
        let pid = c.pid.load(Ordering::SeqCst);
        let mut status = 0;
        // SAFETY: waitpid writes only into `status`.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            c.status.store(status, Ordering::SeqCst);
            c.state.store(REAPED, Ordering::SeqCst);
            wake(libc::SIGCHLD);
        }
    }
}

fn decode_status(status: i32) -> ChildExit {
    if libc::WIFSIGNALED(status) {
        ChildExit::Signaled(libc::WTERMSIG(status))
    } else {
        ChildExit::Exited(libc::WEXITSTATUS(status))
    }
}

/// Runs `f` in a forked child and ends the child with its result, never returning: a child that
/// returned (or unwound from a panic) would go on running its parent's code.
fn exit_child(f: impl FnOnce() -> i32) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: `_exit` ends the process at once, without the parent's atexit handlers or buffers.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------------------------
// The machinery shared by every handler: one slot of atomics per signal number.

/// What the handlers of one signal share with ordinary code.
struct Slot {
    /// Taken by an [`Installed`] handler of this library.
    owned: AtomicBool,
    /// Deliveries since installation.
    count: AtomicUsize,
    /// The order of the first delivery among all signals (for [`Shutdown::requested`]).
    first_arrival: AtomicUsize,
    /// The write end of the self-pipe, or -1.
    wake_fd: AtomicI32,
    /// Handlers between reading `wake_fd` and writing to it, so that it is not closed under them.
    in_flight: AtomicUsize,
    sender_pid: AtomicI32,
    sender_uid: AtomicU32,
}

const SLOTS_LEN: usize = 65;

static SLOTS: [Slot; SLOTS_LEN] = [const {
    Slot {
        owned: AtomicBool::new(false),
        count: AtomicUsize::new(0),
        first_arrival: AtomicUsize::new(usize::MAX),
        wake_fd: AtomicI32::new(-1),
        in_flight: AtomicUsize::new(0),
        sender_pid: AtomicI32::new(0),
        sender_uid: AtomicU32::new(0),
    }
}; SLOTS_LEN];

/// A global order of arrivals, for "which came first".
static ARRIVALS: AtomicUsize = AtomicUsize::new(0);

fn slot(signal: i32) -> Option<&'static Slot> {
    usize::try_from(signal)
        .ok()
        .filter(|&n| n >= 1)
        .and_then(|n| SLOTS.get(n))
}

/// The handler of the counting kinds: count, remember the order, wake the waiter.
extern "C" fn on_signal(signal: libc::c_int) {
    let saved = Errno::last_raw();
    if let Some(slot) = slot(signal) {
        if slot.count.fetch_add(1, Ordering::SeqCst) == 0 {
            let order = ARRIVALS.fetch_add(1, Ordering::SeqCst);
            slot.first_arrival.store(order, Ordering::SeqCst);
        }
        wake(signal);
    }
    // A handler that changes errno would corrupt the errno of the code it interrupted.
    Errno::set_raw(saved);
}

/// The `SA_SIGINFO` handler: the kernel says who sent the signal.
extern "C" fn on_signal_with_info(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    if let (Some(slot), false) = (slot(signal), info.is_null()) {
        if slot.count.load(Ordering::SeqCst) == 0 {
            // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t for this delivery;
            // si_pid and si_uid are meaningful for signals sent with kill, sigqueue or tgkill.
            let (pid, uid) = unsafe { ((*info).si_pid(), (*info).si_uid()) };
            slot.sender_pid.store(pid, Ordering::SeqCst);
            slot.sender_uid.store(uid, Ordering::SeqCst);
        }
    }
    on_signal(signal);
}

/// Writes one byte to the signal's self-pipe. Async-signal-safe: atomics and `write(2)`.
fn wake(signal: i32) {
    let Some(slot) = slot(signal) else { return };
    slot.in_flight.fetch_add(1, Ordering::SeqCst);
    let fd = slot.wake_fd.load(Ordering::SeqCst);
    if fd >= 0 {
        // A full pipe (EAGAIN) is fine: the waiter has bytes to read already.
        // SAFETY: writes one byte from a live stack variable to a descriptor that stays open
        // while `in_flight` is non-zero (see `Installed::drop`).
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
    slot.in_flight.fetch_sub(1, Ordering::SeqCst);
}

#[derive(Debug, Clone, Copy)]
enum Handler {
    Plain(extern "C" fn(libc::c_int)),
    Info(extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)),
}

/// A handler of this library for one signal, with its self-pipe. Dropping it restores the
/// previous disposition, waits for deliveries in progress, closes the pipe and frees the slot.
#[derive(Debug)]
struct Installed {
    signal: i32,
    previous: raw::Action,
    wake_read: OwnedFd,
    // Kept open for the handler (which uses its number through the slot); closed on drop.
    _wake_write: OwnedFd,
}

impl Installed {
    fn new(signal: i32, handler: Handler, flags: libc::c_int) -> Result<Installed> {
        let slot = slot(signal).ok_or(Error::InvalidSignal { signal })?;
        if slot
            .owned
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return Err(Error::AlreadyInstalled { signal });
        }
        let release = |e: Error| {
            slot.owned.store(false, Ordering::SeqCst);
            e
        };
        let (wake_read, wake_write) = pipe2(OFlag::O_CLOEXEC)
            .map_err(sys("pipe2"))
            .map_err(release)?;
        // Only the handler's end is non-blocking: a handler must never block.
        fcntl(wake_write.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(sys("fcntl"))
            .map_err(release)?;
        slot.count.store(0, Ordering::SeqCst);
        slot.first_arrival.store(usize::MAX, Ordering::SeqCst);
        slot.wake_fd.store(wake_write.as_raw_fd(), Ordering::SeqCst);
        match raw::set_action(signal, &raw::Action::handler(handler, flags)) {
            Ok(previous) => Ok(Installed {
                signal,
                previous,
                wake_read,
                _wake_write: wake_write,
            }),
            Err(e) => {
                slot.wake_fd.store(-1, Ordering::SeqCst);
                Err(release(e))
            }
        }
    }

    fn slot(&self) -> &'static Slot {
        slot(self.signal).expect("checked in Installed::new")
    }

    fn count(&self) -> usize {
        self.slot().count.load(Ordering::SeqCst)
    }

    fn wait_for(&self, n: usize) -> Result<usize> {
        loop {
            let count = self.count();
            if count >= n {
                return Ok(count);
            }
            self.wait_for_byte()?;
        }
    }

    /// Blocks until the handler has written a byte since the last call.
    fn wait_for_byte(&self) -> Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(self.wake_read.as_fd(), &mut byte) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(sys("read")(errno)),
            }
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = raw::set_action(self.signal, &self.previous);
        let slot = self.slot();
        slot.wake_fd.store(-1, Ordering::SeqCst);
        // A delivery that began before the disposition changed may still be writing to the
        // pipe: the descriptor must not be closed (and its number reused) under it.
        while slot.in_flight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
        // The pipe's two ends close when the fields are dropped, after this function.
        slot.owned.store(false, Ordering::SeqCst);
    }
}

/// The calls `nix` does not cover for real-time signals, each behind a safe function.
mod raw {
    use super::{sys, Error, Handler, Result};
    use nix::errno::Errno;
    use std::fmt;
    use std::mem::MaybeUninit;

    /// A `sigset_t` that may hold real-time signals (nix's `SigSet` holds only `Signal`s).
    #[derive(Clone, Copy)]
    pub struct Mask(libc::sigset_t);

    impl fmt::Debug for Mask {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_tuple("Mask").field(&self.members()).finish()
        }
    }

    impl Mask {
        pub fn empty() -> Mask {
            let mut set = MaybeUninit::uninit();
            // SAFETY: sigemptyset initialises the whole set it is given.
            unsafe {
                libc::sigemptyset(set.as_mut_ptr());
                Mask(set.assume_init())
            }
        }

        pub fn of(signals: &[i32]) -> Result<Mask> {
            let mut mask = Mask::empty();
            for &signal in signals {
                // SAFETY: the set is initialised. sigaddset refuses what is no signal a program
                // may use: outside 1 to 64, and the C library's own 32 and 33.
                if unsafe { libc::sigaddset(&mut mask.0, signal) } != 0 {
                    return Err(Error::InvalidSignal { signal });
                }
            }
            Ok(mask)
        }

        pub fn members(&self) -> Vec<i32> {
            // SAFETY: sigismember only reads the initialised set.
            (1..=64)
                .filter(|&n| unsafe { libc::sigismember(&self.0, n) } == 1)
                .collect()
        }
    }

    /// `pthread_sigmask(how, set)`: changes the calling thread's mask, returns the old one.
    pub fn set_thread_mask(how: libc::c_int, set: &Mask) -> Result<Mask> {
        let mut old = Mask::empty();
        // SAFETY: both sets are valid sigset_t values we own.
        let rc = unsafe { libc::pthread_sigmask(how, &set.0, &mut old.0) };
        if rc != 0 {
            return Err(Error::Sys {
                call: "pthread_sigmask",
                errno: Errno::from_raw(rc),
            });
        }
        Ok(old)
    }

    /// `sigpending`: blocked signals waiting for this thread or for the process.
    pub fn pending() -> Result<Mask> {
        let mut set = Mask::empty();
        // SAFETY: sigpending writes into the set we own.
        Errno::result(unsafe { libc::sigpending(&mut set.0) }).map_err(sys("sigpending"))?;
        Ok(set)
    }

    /// A `struct sigaction`.
    #[derive(Clone, Copy)]
    pub struct Action(libc::sigaction);

    impl fmt::Debug for Action {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Action")
                .field("handler", &self.0.sa_sigaction)
                .field("flags", &self.0.sa_flags)
                .finish()
        }
    }

    impl Action {
        fn with(handler: libc::sighandler_t, flags: libc::c_int) -> Action {
            // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, no flags); the fields
            // that matter are set below and the mask is initialised by sigemptyset.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = handler;
            action.sa_flags = flags;
            // SAFETY: initialises the mask we own.
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            Action(action)
        }

        pub fn ignore() -> Action {
            Action::with(libc::SIG_IGN, 0)
        }

        pub fn handler(handler: Handler, flags: libc::c_int) -> Action {
            let address = match handler {
                Handler::Plain(f) => f as *const () as libc::sighandler_t,
                Handler::Info(f) => f as *const () as libc::sighandler_t,
            };
            Action::with(address, flags)
        }
    }

    /// `sigaction(signal, action)`: returns the previous action. The kernel's EINVAL for
    /// SIGKILL and SIGSTOP becomes [`Error::Uncatchable`]; for any other number (outside 1 to
    /// 64, or the C library's own 32 and 33) it is [`Error::InvalidSignal`].
    pub fn set_action(signal: i32, action: &Action) -> Result<Action> {
        let mut previous = Action::with(libc::SIG_DFL, 0);
        // SAFETY: both structs are valid and owned by us; the handlers installed are
        // async-signal-safe (atomics and write/waitpid only).
        let rc = unsafe { libc::sigaction(signal, &action.0, &mut previous.0) };
        match Errno::result(rc) {
            Ok(_) => Ok(previous),
            Err(Errno::EINVAL) if matches!(signal, libc::SIGKILL | libc::SIGSTOP) => {
                Err(Error::Uncatchable {
                    signal,
                    errno: Errno::EINVAL,
                })
            }
            Err(Errno::EINVAL) => Err(Error::InvalidSignal { signal }),
            Err(errno) => Err(Error::Sys {
                call: "sigaction",
                errno,
            }),
        }
    }
}
// END SOLUTION
