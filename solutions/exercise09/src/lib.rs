// BEGIN SOLUTION
// STARTER: //! Exercise 09: a small shell — the capstone.
//! Exercise 09: a small shell — reference solution.
// END SOLUTION
//!
// BEGIN SOLUTION
// STARTER: //! Your task: implement the functions below (tasks 1 to 4). The task statement is in `README.md`
// STARTER: //! beside this file; `cargo ipclab hint 9` gives hints; `cargo test -p exercise09` grades your
// STARTER: //! work. The shell's main loop is already written: `tests/exercise09/bin/ex09-shell.rs` reads a line, calls
// STARTER: //! [`parse`], then [`run_builtin`], [`run_pipeline`] or [`JobControl`], and reports how the job
// STARTER: //! ended. Try your shell any time with `cargo run -q -p exercise09 --bin ex09-shell`.
//! The shell is split into parts that can be graded one by one: a parser (task 1), a pipeline
//! runner (task 2), the built-in commands (task 3) and job control (task 4). The binary
//! `ex09-shell` (`tests/exercise09/bin/ex09-shell.rs`) is the read–parse–run loop that ties them together.
// END SOLUTION
//!
// BEGIN SOLUTION
// STARTER: //! Every child your shell forks follows the same discipline: rearrange its descriptors with
//! Every child this shell forks follows the same discipline: rearrange its descriptors with
// END SOLUTION
//! `dup2`, reset the signal dispositions the shell changed for itself, then `exec`; if `exec`
//! fails it reports why and ends with `_exit`, never returning into the shell's code.
// STARTER:
// STARTER: // The starter leaves parameters and imports unused until you use them: remove this line when done.
// STARTER: #![allow(unused_variables, unused_imports, dead_code)]

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
#[path = "../../../exercises/exercise09/src/given.rs"]
mod given;
pub use given::*;

// BEGIN SOLUTION
fn sys(call: &'static str) -> impl Fn(Errno) -> ShellError {
    move |errno| ShellError::Sys { call, errno }
}
// END SOLUTION

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
    // BEGIN SOLUTION Task 1: split the line into words (quotes, backslashes), commands at |, and < > redirections; name each mistake with a ParseError
    let mut commands = Vec::new();
    let mut current = Command::default();
    let mut tokens = tokenize(line)?.into_iter();
    let mut saw_pipe = false;
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(word) => current.argv.push(word),
            Token::Pipe => {
                check_stage(&current, commands.is_empty())?;
                commands.push(std::mem::take(&mut current));
                saw_pipe = true;
            }
            Token::Redirect(op) => {
                let Some(Token::Word(path)) = tokens.next() else {
                    return Err(ParseError::MissingFileName(op));
                };
                let slot = if op == '<' {
                    &mut current.stdin
                } else {
                    &mut current.stdout
                };
                if slot.replace(PathBuf::from(path)).is_some() {
                    return Err(ParseError::DuplicateRedirection(op));
                }
            }
        }
    }
    if current == Command::default() {
        if saw_pipe {
            return Err(ParseError::MissingCommandAfterPipe);
        }
        // Nothing at all on the line.
        return Ok(Pipeline { commands });
    }
    check_stage(&current, commands.is_empty())?;
    commands.push(current);
    Ok(Pipeline { commands })
    // END SOLUTION
}

// BEGIN SOLUTION
/// A finished stage must name a program.
fn check_stage(stage: &Command, first: bool) -> Result<(), ParseError> {
    if !stage.argv.is_empty() {
        Ok(())
    } else if stage.stdin.is_some() || stage.stdout.is_some() {
        Err(ParseError::MissingCommand)
    } else if first {
        Err(ParseError::MissingCommandBeforePipe)
    } else {
        Err(ParseError::MissingCommandAfterPipe)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Pipe,
    /// `<` or `>`.
    Redirect(char),
}

fn tokenize(line: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    // `Some` as soon as a word has started, even if it is still empty (`''` is a word).
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => tokens.extend(word.take().map(Token::Word)),
            '|' | '<' | '>' => {
                tokens.extend(word.take().map(Token::Word));
                tokens.push(if c == '|' {
                    Token::Pipe
                } else {
                    Token::Redirect(c)
                });
            }
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(ParseError::UnterminatedQuote('\'')),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&escaped @ ('"' | '\\')) => {
                                chars.next();
                                word.push(escaped);
                            }
                            _ => word.push('\\'),
                        },
                        Some(c) => word.push(c),
                        None => return Err(ParseError::UnterminatedQuote('"')),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(escaped) => word.get_or_insert_with(String::new).push(escaped),
                None => return Err(ParseError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    tokens.extend(word.map(Token::Word));
    Ok(tokens)
}
// END SOLUTION

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
    // BEGIN SOLUTION Task 2: open the redirections, create N-1 close-on-exec pipes, fork every stage (dup2 its pipe ends or files onto 0 and 1, reset SIGPIPE, execvp), close your copies, then waitpid every stage
    if pipeline.commands.is_empty() {
        return Ok(Vec::new());
    }
    let pids = spawn(pipeline, None)?;
    // Wait for every stage even if one wait fails, so that none is left a zombie.
    let statuses: Vec<Result<Status>> = pids.into_iter().map(wait_until_done).collect();
    statuses.into_iter().collect()
    // END SOLUTION
}

// BEGIN SOLUTION
/// Everything a stage needs in the child, made before `fork`: the child of a multi-threaded
/// process should only make async-signal-safe calls, and allocation is not one of them.
struct Stage {
    argv: Vec<CString>,
    /// `ipclab: NAME: `, the start of the message the child prints if exec fails.
    failure_prefix: Vec<u8>,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
}

/// Job-control duties of a child: join process group `pgid` (0: a group of its own), and take
/// the terminal if it is the foreground job's.
#[derive(Clone, Copy)]
struct Group<'a> {
    pgid: Pid,
    terminal: BorrowedFd<'a>,
}

/// Forks one child per command and returns their pids, in pipeline order. With `terminal`, the
/// children form one new process group that becomes the terminal's foreground group.
fn spawn(pipeline: &Pipeline, terminal: Option<BorrowedFd<'_>>) -> Result<Vec<Pid>> {
    let mut stages = prepare(pipeline)?;
    // One pipe between each two neighbours. Close-on-exec: a stage keeps only the ends it dup2-ed
    // onto 0 and 1, so each reader sees EOF once its writer exits.
    for i in 1..stages.len() {
        let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
        // A redirection wins over the pipe, as in other shells (`ls | cat < file`).
        stages[i - 1].stdout.get_or_insert(write);
        stages[i].stdin.get_or_insert(read);
    }
    let mut pids: Vec<Pid> = Vec::with_capacity(stages.len());
    for stage in &stages {
        let group = terminal.map(|terminal| Group {
            pgid: pids.first().copied().unwrap_or(Pid::from_raw(0)),
            terminal,
        });
        // SAFETY: the child only makes async-signal-safe calls (setpgid, tcsetpgrp, sigaction,
        // dup2, execvp, write) on data prepared before the fork, then execs or `_exit`s.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => exec_stage(stage, group),
            Ok(ForkResult::Parent { child }) => {
                if let Some(group) = group {
                    // The child does the same: whichever runs first, the group exists before the
                    // next stage joins it and before anyone waits for it.
                    let pgid = pids.first().copied().unwrap_or(child);
                    let _ = setpgid(child, pgid);
                    if pids.is_empty() {
                        let _ = tcsetpgrp(group.terminal, child);
                    }
                }
                pids.push(child);
            }
            Err(errno) => {
                // Do not leave the stages already started running or unreaped.
                for &pid in &pids {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = wait_until_done(pid);
                }
                return Err(ShellError::Sys {
                    call: "fork",
                    errno,
                });
            }
        }
    }
    // `stages` (and with it every pipe end and redirection file) is dropped here: the children
    // have their own copies.
    Ok(pids)
}

/// Converts the commands for `execvp` and opens their redirections, before any fork.
fn prepare(pipeline: &Pipeline) -> Result<Vec<Stage>> {
    pipeline
        .commands
        .iter()
        .map(|command| {
            let argv = command
                .argv
                .iter()
                .map(|word| {
                    CString::new(word.as_str()).map_err(|_| ShellError::NulByte(word.clone()))
                })
                .collect::<Result<Vec<_>>>()?;
            if argv.is_empty() {
                return Err(ShellError::EmptyCommand);
            }
            let stdin = command
                .stdin
                .as_ref()
                .map(|path| open_redirect(path, OpenOptions::new().read(true)))
                .transpose()?;
            let stdout = command
                .stdout
                .as_ref()
                .map(|path| {
                    open_redirect(
                        path,
                        OpenOptions::new().write(true).create(true).truncate(true),
                    )
                })
                .transpose()?;
            Ok(Stage {
                failure_prefix: format!("ipclab: {}: ", command.argv[0]).into_bytes(),
                argv,
                stdin,
                stdout,
            })
        })
        .collect()
}

/// Opens a redirection's file. std opens with O_CLOEXEC, so only the stage that dup2-s it onto
/// 0 or 1 keeps it across exec.
fn open_redirect(path: &PathBuf, options: &OpenOptions) -> Result<OwnedFd> {
    options
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| ShellError::Redirect {
            path: path.clone(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })
}

/// The child's side of a stage. Never returns.
fn exec_stage(stage: &Stage, group: Option<Group<'_>>) -> ! {
    if let Some(group) = group {
        let _ = setpgid(Pid::from_raw(0), group.pgid);
        if group.pgid == Pid::from_raw(0) {
            // The first stage takes the terminal itself too: otherwise it could read from it
            // before the shell's tcsetpgrp and be stopped by SIGTTIN. SIGTTOU is still ignored
            // here (inherited from the shell), so this call from a background group is allowed.
            let _ = tcsetpgrp(group.terminal, getpgrp());
        }
    }
    // Dispositions set to "ignore" survive exec: give the program the defaults of what the shell
    // changed for itself. Rust ignores SIGPIPE at start-up; a job-control shell also ignores the
    // terminal's signals. (Without job control, what the shell inherited ignored stays ignored.)
    let terminal_signals: &[Signal] = if group.is_some() {
        &JOB_CONTROL_SIGNALS
    } else {
        &[]
    };
    for &sig in [Signal::SIGPIPE].iter().chain(terminal_signals) {
        // SAFETY: installing SIG_DFL sets no handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = SigSet::empty().thread_set_mask();

    let connected = stage
        .stdin
        .as_ref()
        .map_or(Ok(()), dup2_stdin)
        .and(stage.stdout.as_ref().map_or(Ok(()), dup2_stdout));
    let (errno, code) = match connected {
        Ok(()) => match execvp(&stage.argv[0], &stage.argv).unwrap_err() {
            Errno::ENOENT => (None, 127),
            errno => (Some(errno), 126),
        },
        Err(errno) => (Some(errno), 126),
    };
    let stderr = io::stderr();
    let _ = nix::unistd::write(stderr.as_fd(), &stage.failure_prefix);
    let reason = errno.map_or("command not found", Errno::desc);
    let _ = nix::unistd::write(stderr.as_fd(), reason.as_bytes());
    let _ = nix::unistd::write(stderr.as_fd(), b"\n");
    // SAFETY: ends the child at once, without running the shell's exit handlers or buffers.
    unsafe { libc::_exit(code) }
}

/// Waits until `pid` has ended (not merely stopped), retrying after EINTR.
fn wait_until_done(pid: Pid) -> Result<Status> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Status::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Status::Signaled(sig)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(ShellError::Sys {
                    call: "waitpid",
                    errno,
                })
            }
        }
    }
}
// END SOLUTION

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
    // BEGIN SOLUTION Task 3: cd (chdir), exit [N], kill -l, kill [-SIGNAL] PID... (kill(2)), all in the shell's own process
    let args: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    match argv.first().map(String::as_str) {
        Some("cd") => cd(&args),
        Some("exit") => exit(&args),
        Some("kill") => kill_builtin(&args, out),
        Some("fg") => Err(ShellError::NoJobControl),
        other => Err(ShellError::NotBuiltin(other.unwrap_or_default().to_owned())),
    }
    // END SOLUTION
}

// BEGIN SOLUTION
fn usage(builtin: &'static str, problem: impl Into<String>) -> ShellError {
    ShellError::Usage {
        builtin,
        problem: problem.into(),
    }
}

fn cd(args: &[&str]) -> Result<BuiltinOutcome> {
    let dir = match args {
        [] => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| usage("cd", "HOME not set"))?),
        [dir] => PathBuf::from(dir),
        _ => return Err(usage("cd", "too many arguments")),
    };
    chdir(&dir).map_err(|errno| ShellError::Cd { dir, errno })?;
    Ok(BuiltinOutcome::Continue)
}

fn exit(args: &[&str]) -> Result<BuiltinOutcome> {
    match args {
        [] => Ok(BuiltinOutcome::Exit(None)),
        [code] => code
            .parse::<i64>()
            // The kernel keeps only the low 8 bits of an exit code.
            .map(|n| BuiltinOutcome::Exit(Some(n.rem_euclid(256) as i32)))
            .map_err(|_| usage("exit", format!("{code}: numeric argument required"))),
        _ => Err(usage("exit", "too many arguments")),
    }
}

const KILL_USAGE: &str = "usage: kill -l | kill [-SIGNAL] PID...";

fn kill_builtin(args: &[&str], out: &mut dyn Write) -> Result<BuiltinOutcome> {
    let (signo, pids) = match args {
        ["-l"] => {
            write_signal_list(out).map_err(|e| ShellError::Sys {
                call: "write",
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            })?;
            return Ok(BuiltinOutcome::Continue);
        }
        [spec, pids @ ..] if spec.starts_with('-') => {
            let name = &spec[1..];
            let signo =
                signal_number(name).ok_or_else(|| ShellError::UnknownSignal(name.to_owned()))?;
            (signo, pids)
        }
        pids => (libc::SIGTERM, pids),
    };
    if pids.is_empty() {
        return Err(usage("kill", KILL_USAGE));
    }
    let pids = pids
        .iter()
        .map(|p| {
            p.parse::<i32>()
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| usage("kill", format!("{p}: not a process id ({KILL_USAGE})")))
        })
        .collect::<Result<Vec<i32>>>()?;
    // Signal every process, then report the first failure, as kill(1) does.
    let mut first_error = None;
    for pid in pids {
        if let Err(errno) = send_signal(pid, signo) {
            first_error.get_or_insert(ShellError::Kill { pid, errno });
        }
    }
    first_error.map_or(Ok(BuiltinOutcome::Continue), Err)
}

fn send_signal(pid: i32, signo: i32) -> nix::Result<()> {
    match Signal::try_from(signo) {
        Ok(sig) => kill(Pid::from_raw(pid), sig),
        // Real-time signals have no nix `Signal`: libc is the layer for them.
        Err(_) => {
            // SAFETY: kill takes two integers and touches no memory.
            let result = unsafe { libc::kill(pid, signo) };
            Errno::result(result).map(drop)
        }
    }
}

/// Every signal number with its name, in increasing order.
fn signal_table() -> Vec<(i32, String)> {
    let mut table: Vec<(i32, String)> = Signal::iterator()
        .map(|sig| (sig as i32, sig.as_str().to_owned()))
        .collect();
    table.sort();
    table.dedup_by_key(|(n, _)| *n);
    // glibc keeps the first two real-time signals for itself, so SIGRTMIN is 34 here.
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    for n in min..=max {
        let name = if n == min {
            "SIGRTMIN".to_owned()
        } else if n == max {
            "SIGRTMAX".to_owned()
        } else if n - min <= (max - min) / 2 {
            format!("SIGRTMIN+{}", n - min)
        } else {
            format!("SIGRTMAX-{}", max - n)
        };
        table.push((n, name));
    }
    table
}

fn write_signal_list(out: &mut dyn Write) -> io::Result<()> {
    for row in signal_table().chunks(5) {
        let line: Vec<String> = row
            .iter()
            .map(|(n, name)| format!("{n:2}) {name:<12}"))
            .collect();
        writeln!(out, "{}", line.join("").trim_end())?;
    }
    out.flush()
}

/// `9`, `KILL`, `SIGKILL`, `kill`, `RTMIN+1` → the signal's number.
fn signal_number(spec: &str) -> Option<i32> {
    if let Ok(n) = spec.parse::<i32>() {
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = spec.to_ascii_uppercase();
    let wanted = upper.strip_prefix("SIG").unwrap_or(&upper);
    signal_table()
        .into_iter()
        .find(|(_, name)| &name[3..] == wanted)
        .map(|(n, _)| n)
}
// END SOLUTION

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
    // BEGIN SOLUTION
    // STARTER: // Add what you need: the stopped jobs (process group, pids, command line, job number).
    /// Stopped jobs, the most recently stopped last.
    stopped: Vec<Job>,
    // END SOLUTION
}

// BEGIN SOLUTION
/// The signals a job-control shell ignores: the keyboard's (SIGINT, SIGQUIT, SIGTSTP) and the
/// ones a background group gets for using the terminal (SIGTTIN, SIGTTOU).
const JOB_CONTROL_SIGNALS: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

#[derive(Debug)]
struct Job {
    id: usize,
    line: String,
    pgid: Pid,
    /// The job's processes in pipeline order, and how each ended (`None`: not yet).
    pids: Vec<Pid>,
    ended: Vec<Option<Status>>,
}
// END SOLUTION

impl JobControl {
    /// Task 4: take charge of `terminal` (the shell's standard input, a terminal).
    ///
    /// The shell becomes the leader of a process group of its own (if it is not already), that
    /// group becomes the terminal's foreground group, and the shell ignores the signals the
    /// terminal sends (SIGINT, SIGQUIT, SIGTSTP) and the ones for background groups that use the
    /// terminal (SIGTTIN, SIGTTOU), so that Ctrl+C and Ctrl+Z never end or stop the shell.
    pub fn new(terminal: OwnedFd) -> Result<JobControl> {
        // BEGIN SOLUTION Task 4: ignore SIGINT, SIGQUIT, SIGTSTP, SIGTTIN and SIGTTOU; lead your own process group; tcsetpgrp the terminal to it
        for sig in JOB_CONTROL_SIGNALS {
            // SAFETY: SIG_IGN installs no handler.
            unsafe { signal(sig, SigHandler::SigIgn) }.map_err(sys("sigaction"))?;
        }
        let shell = getpid();
        if getpgrp() != shell {
            // A session leader already leads its group (and may not call setpgid): only others.
            setpgid(shell, shell).map_err(sys("setpgid"))?;
        }
        tcsetpgrp(&terminal, shell).map_err(sys("tcsetpgrp"))?;
        Ok(JobControl {
            terminal,
            shell_pgid: shell,
            stopped: Vec::new(),
        })
        // END SOLUTION
    }

    /// Task 4: run `pipeline` (typed as `line`) as a foreground job.
    ///
    /// All its processes form one new process group, which becomes the terminal's foreground
    /// group (so Ctrl+C and Ctrl+Z reach the job, not the shell), with the default actions for
    /// the terminal's signals. The shell waits with `WUNTRACED` until every process has ended
    /// ([`JobOutcome::Finished`]) or every process still alive is stopped
    /// ([`JobOutcome::Stopped`], the job is kept for `fg`), then takes the terminal back.
    pub fn run(&mut self, pipeline: &Pipeline, line: &str) -> Result<JobOutcome> {
        // BEGIN SOLUTION Task 4: fork the stages into one new process group (setpgid in parent and child), tcsetpgrp it, reset the signals in the children, waitpid(-pgid, WUNTRACED) until all ended or all stopped, take the terminal back
        if pipeline.commands.is_empty() {
            return Ok(JobOutcome::Finished(Vec::new()));
        }
        let pids = spawn(pipeline, Some(self.terminal.as_fd()));
        // Even when a fork failed, the shell must own the terminal again.
        let pids = match pids {
            Ok(pids) => pids,
            Err(e) => {
                let _ = tcsetpgrp(&self.terminal, self.shell_pgid);
                return Err(e);
            }
        };
        let job = Job {
            id: 0,
            line: line.to_owned(),
            pgid: pids[0],
            ended: vec![None; pids.len()],
            pids,
        };
        self.wait_in_foreground(job)
        // END SOLUTION
    }

    /// Task 4: `fg`: resume the most recently stopped job in the foreground.
    ///
    /// Writes the job's command line to `out` (as shells do), gives the terminal to the job's
    /// process group, continues it with SIGCONT and waits for it as [`JobControl::run`] does.
    /// [`ShellError::NoJob`] if no job is stopped.
    pub fn fg(&mut self, out: &mut dyn Write) -> Result<JobOutcome> {
        // BEGIN SOLUTION Task 4: print the most recently stopped job's line, tcsetpgrp its group, killpg SIGCONT, wait for it as run does
        let job = self.stopped.pop().ok_or(ShellError::NoJob)?;
        let _ = writeln!(out, "{}", job.line).and_then(|()| out.flush());
        if let Err(errno) = tcsetpgrp(&self.terminal, job.pgid) {
            self.stopped.push(job);
            return Err(ShellError::Sys {
                call: "tcsetpgrp",
                errno,
            });
        }
        if let Err(errno) = killpg(job.pgid, Signal::SIGCONT) {
            let _ = tcsetpgrp(&self.terminal, self.shell_pgid);
            self.stopped.push(job);
            return Err(ShellError::Sys {
                call: "killpg",
                errno,
            });
        }
        self.wait_in_foreground(job)
        // END SOLUTION
    }

    /// Task 4: before the shell exits: end every stopped job (SIGHUP, then SIGCONT so that a
    /// stopped process can act on it, as the kernel does for an orphaned process group) and reap
    /// its processes, so that no job outlives the shell as a stray process or a zombie.
    pub fn end_jobs(&mut self) {
        // BEGIN SOLUTION Task 4: killpg SIGHUP then SIGCONT each stopped job and reap its processes
        for job in self.stopped.drain(..) {
            let _ = killpg(job.pgid, Signal::SIGHUP);
            let _ = killpg(job.pgid, Signal::SIGCONT);
            for (pid, ended) in job.pids.iter().zip(&job.ended) {
                if ended.is_none() {
                    let _ = wait_until_done(*pid);
                }
            }
        }
        // END SOLUTION
    }

    // BEGIN SOLUTION
    /// Waits for the foreground job to end or stop, then takes the terminal back.
    fn wait_in_foreground(&mut self, mut job: Job) -> Result<JobOutcome> {
        let waited = wait_for_job(&mut job);
        let took_back = tcsetpgrp(&self.terminal, self.shell_pgid).map_err(sys("tcsetpgrp"));
        // A failed wait (ECHILD: someone else reaped the job) leaves nothing to keep.
        waited?;
        let all_ended = job.ended.iter().all(Option::is_some);
        let outcome = if all_ended {
            JobOutcome::Finished(job.ended.iter().flatten().copied().collect())
        } else {
            job.id = self.stopped.iter().map(|j| j.id).max().unwrap_or(0) + 1;
            let outcome = JobOutcome::Stopped {
                id: job.id,
                line: job.line.clone(),
            };
            self.stopped.push(job);
            outcome
        };
        took_back?;
        Ok(outcome)
    }
    // END SOLUTION
}

// BEGIN SOLUTION
/// Waits for the processes of `job` (as a group, with WUNTRACED) until each has ended or every
/// one still alive is stopped.
fn wait_for_job(job: &mut Job) -> Result<()> {
    let mut stopped = vec![false; job.pids.len()];
    loop {
        let alive: Vec<usize> = (0..job.pids.len())
            .filter(|&i| job.ended[i].is_none())
            .collect();
        if alive.iter().all(|&i| stopped[i]) {
            return Ok(());
        }
        let (pid, status) = match waitpid(
            Pid::from_raw(-job.pgid.as_raw()),
            Some(WaitPidFlag::WUNTRACED),
        ) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Some(Status::Exited(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Some(Status::Signaled(sig))),
            Ok(WaitStatus::Stopped(pid, _)) => (pid, None),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(ShellError::Sys {
                    call: "waitpid",
                    errno,
                })
            }
        };
        if let Some(i) = job.pids.iter().position(|&p| p == pid) {
            stopped[i] = status.is_none();
            job.ended[i] = status;
        }
    }
}
// END SOLUTION
