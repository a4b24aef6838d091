//! Readers of the kernel's own account of a process, from `/proc`.
//!
//! Tests assert on these rather than on what the code under test says about itself: a pipe that
//! is really a pipe shows up as `pipe:[inode]` in the descriptor table, an unreaped child shows up
//! as a zombie (`Z`) in the process table, a blocked signal shows up in `SigBlk`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// What one open file descriptor refers to, as `readlink /proc/<pid>/fd/<n>` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FdTarget {
    /// An anonymous pipe (or a FIFO's pipe buffer): `pipe:[inode]`. Both ends share the inode.
    Pipe(u64),
    /// A socket: `socket:[inode]`.
    Socket(u64),
    /// An anonymous inode such as `anon_inode:[eventfd]`.
    AnonInode(String),
    /// A path in the file system (a regular file, a FIFO opened by name, a terminal, ...).
    Path(PathBuf),
}

impl FdTarget {
    fn parse(link: &str) -> FdTarget {
        let inode = |prefix: &str| {
            link.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
        };
        if let Some(n) = inode("pipe:[") {
            FdTarget::Pipe(n)
        } else if let Some(n) = inode("socket:[") {
            FdTarget::Socket(n)
        } else if let Some(rest) = link.strip_prefix("anon_inode:") {
            FdTarget::AnonInode(rest.to_owned())
        } else {
            FdTarget::Path(PathBuf::from(link))
        }
    }

    /// True for `pipe:[…]`.
    pub fn is_pipe(&self) -> bool {
        matches!(self, FdTarget::Pipe(_))
    }
}

impl fmt::Display for FdTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdTarget::Pipe(n) => write!(f, "pipe:[{n}]"),
            FdTarget::Socket(n) => write!(f, "socket:[{n}]"),
            FdTarget::AnonInode(s) => write!(f, "anon_inode:{s}"),
            FdTarget::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The descriptor table of `pid`: descriptor number to what it refers to.
///
/// Descriptors that close while the table is read are skipped, not reported as errors.
pub fn fd_table(pid: Pid) -> io::Result<BTreeMap<i32, FdTarget>> {
    read_fd_dir(&format!("/proc/{pid}/fd"))
}

/// The descriptor table of the calling process.
pub fn own_fd_table() -> BTreeMap<i32, FdTarget> {
    read_fd_dir("/proc/self/fd").expect("/proc/self/fd is readable on Linux")
}

fn read_fd_dir(dir: &str) -> io::Result<BTreeMap<i32, FdTarget>> {
    let mut table = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        match fs::read_link(entry.path()) {
            // The descriptor this very listing reads the directory through.
            Ok(target) if target.starts_with("/proc") && target.ends_with("fd") => {}
            Ok(target) => {
                table.insert(fd, FdTarget::parse(&target.to_string_lossy()));
            }
            // The descriptor closed between readdir and readlink (for /proc/self, the directory
            // handle itself is one of these).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(table)
}

/// How `fd` of the calling process was opened: `libc::O_RDONLY`, `O_WRONLY` or `O_RDWR`
/// (from the `flags` line of `/proc/self/fdinfo/<fd>`).
pub fn own_fd_access_mode(fd: i32) -> io::Result<i32> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|octal| i32::from_str_radix(octal.trim(), 8).ok())
        .map(|flags| flags & libc::O_ACCMODE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no flags line in fdinfo"))
}

/// The calling process's descriptors at one moment, to compare against later.
///
/// Take one before calling the code under test and call [`FdSnapshot::assert_no_leaks`] after:
/// every descriptor the code opened must have been closed again. Use it inside
/// [`crate::isolated`]: in the shared test process other tests open files at the same time.
#[derive(Debug, Clone)]
pub struct FdSnapshot(BTreeMap<i32, FdTarget>);

impl FdSnapshot {
    pub fn take() -> FdSnapshot {
        FdSnapshot(own_fd_table())
    }

    /// Descriptors open now that were not open (or referred to something else) at the snapshot.
    pub fn opened_since(&self) -> BTreeMap<i32, FdTarget> {
        own_fd_table()
            .into_iter()
            .filter(|(fd, target)| self.0.get(fd) != Some(target))
            .collect()
    }

    /// Panics, naming each leaked descriptor and `what_to_close`, if any descriptor opened since
    /// the snapshot is still open.
    #[track_caller]
    pub fn assert_no_leaks(&self, what_to_close: &str) {
        let leaked = self.opened_since();
        if !leaked.is_empty() {
            let list: Vec<String> = leaked
                .iter()
                .map(|(fd, t)| format!("fd {fd} -> {t}"))
                .collect();
            panic!(
                "descriptor leak: after the call the process still holds {} that it did not hold before \
                 ({}). {what_to_close}",
                if leaked.len() == 1 { "a descriptor" } else { "descriptors" },
                list.join(", ")
            );
        }
    }
}

/// One row of the process table, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: Pid,
    pub ppid: Pid,
    pub pgid: Pid,
    pub sid: Pid,
    /// `R` running, `S` sleeping, `D` disk wait, `T` stopped, `t` traced, `Z` zombie, ...
    pub state: char,
    /// The command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// For a zombie, how it ended, as `waitpid` would report it (`exit_code`, the last field
    /// of `stat`): `status & 0x7f` is the signal that killed it, or 0 and `status >> 8` the
    /// exit code. `None` while the process runs (or where the kernel does not show it).
    pub exit_status: Option<i32>,
}

impl ProcessInfo {
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z'
    }

    pub fn is_stopped(&self) -> bool {
        self.state == 'T'
    }
}

/// The process table row of `pid`, or `None` if no such process exists (it exited and was reaped).
pub fn process(pid: Pid) -> io::Result<Option<ProcessInfo>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => Ok(parse_stat(&stat)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process vanished while its stat file was being read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_stat(stat: &str) -> Option<ProcessInfo> {
    // "pid (comm) state ppid pgrp session ...": comm may itself contain spaces and parentheses,
    // so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat[..open].trim().parse().ok()?;
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let mut num = || rest.next().and_then(|s| s.parse::<i32>().ok());
    let (ppid, pgid, sid) = (num()?, num()?, num()?);
    // Field 52 of stat; fields 7..51 lie between.
    let exit_status = if state == 'Z' {
        stat[close + 1..]
            .split_whitespace()
            .nth(49)
            .and_then(|s| s.parse().ok())
    } else {
        None
    };
    Some(ProcessInfo {
        pid: Pid::from_raw(pid),
        ppid: Pid::from_raw(ppid),
        pgid: Pid::from_raw(pgid),
        sid: Pid::from_raw(sid),
        state,
        comm,
        exit_status,
    })
}

/// Every process visible in `/proc`.
pub fn all_processes() -> Vec<ProcessInfo> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| process(Pid::from_raw(pid)).ok().flatten())
        .collect()
}

/// The direct children of `pid`, running, stopped or zombie.
pub fn children(pid: Pid) -> Vec<ProcessInfo> {
    all_processes()
        .into_iter()
        .filter(|p| p.ppid == pid)
        .collect()
}

/// Children of `pid` that have exited but were never reaped with `wait`.
pub fn zombie_children(pid: Pid) -> Vec<ProcessInfo> {
    children(pid)
        .into_iter()
        .filter(ProcessInfo::is_zombie)
        .collect()
}

/// Every descendant of `pid` (children, their children, ...), parents before their children.
pub fn descendants(pid: Pid) -> Vec<ProcessInfo> {
    let all = all_processes();
    let mut found: Vec<ProcessInfo> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in all.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                frontier.push(p.pid);
                found.push(p.clone());
            }
        }
    }
    found
}

/// Panics, naming each zombie, if the calling process has children that exited unreaped.
#[track_caller]
pub fn assert_no_zombies(what_to_reap: &str) {
    let zombies = zombie_children(nix::unistd::getpid());
    if !zombies.is_empty() {
        let list: Vec<String> = zombies
            .iter()
            .map(|z| format!("pid {} ({})", z.pid, z.comm))
            .collect();
        panic!(
            "zombie left behind: {} exited but nobody called wait() for it, so the kernel still keeps \
             its exit status in the process table. {what_to_reap}",
            list.join(", ")
        );
    }
}

/// The system call a thread is asleep in, from `/proc/<tid>/syscall`: its number and the six
/// argument registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockedCall {
    pub number: i64,
    pub args: [u64; 6],
}

/// The system call thread `tid` is asleep in (state `S` or `D`), or `None` if it is running, not
/// in a system call, or gone. Works for threads of this process, and of others where ptrace
/// rules allow (root, or the same user without Yama restrictions).
pub fn blocked_call(tid: Pid) -> Option<BlockedCall> {
    let stat = process(tid).ok().flatten()?;
    if !matches!(stat.state, 'S' | 'D') {
        return None;
    }
    let text = fs::read_to_string(format!("/proc/{tid}/syscall")).ok()?;
    let mut fields = text.split_whitespace();
    let number = fields.next()?.parse().ok()?;
    let mut args = [0u64; 6];
    for arg in &mut args {
        *arg = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
    }
    Some(BlockedCall { number, args })
}

/// Waits until thread `tid` is asleep in a system call that `wanted` accepts, and returns it.
///
/// This is how a test knows that code is really blocked (in `read`, `open`, `msgrcv`, …) before
/// it acts: an event the kernel reports, not a guess with `sleep`. It polls, yielding the CPU
/// between reads; it gives up after `timeout`, or at once when the thread ends, and then says
/// what it saw last.
pub fn wait_until_blocked(
    tid: Pid,
    timeout: Duration,
    wanted: impl Fn(&BlockedCall) -> bool,
) -> Result<BlockedCall, String> {
    let started = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        match process(tid) {
            Ok(Some(_)) => {}
            _ => return Err(format!("thread {tid} ended (last seen: {last})")),
        }
        match blocked_call(tid) {
            Some(call) if wanted(&call) => return Ok(call),
            Some(call) => last = format!("asleep in system call {}", call.number),
            None => last = "running".to_owned(),
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "thread {tid} did not block in the expected system call within {timeout:?} \
                 (last seen: {last})"
            ));
        }
        std::thread::yield_now();
    }
}

/// A set of signals as the kernel prints it in `/proc/<pid>/status` (a 64-bit mask, bit n-1 for
/// signal n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SigSet(pub u64);

impl SigSet {
    pub fn contains(self, signal: Signal) -> bool {
        self.contains_number(signal as i32)
    }

    /// For real-time signals, which have no [`Signal`] variant.
    pub fn contains_number(self, signo: i32) -> bool {
        (1..=64).contains(&signo) && self.0 & (1u64 << (signo - 1)) != 0
    }
}

/// The signal fields of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalState {
    /// `SigPnd`: pending for this thread only.
    pub thread_pending: SigSet,
    /// `ShdPnd`: pending for the whole process.
    pub shared_pending: SigSet,
    /// `SigBlk`: blocked (masked) by this thread.
    pub blocked: SigSet,
    /// `SigIgn`: disposition set to ignore.
    pub ignored: SigSet,
    /// `SigCgt`: a handler is installed.
    pub caught: SigSet,
}

/// The threads of process `pid`, as `/proc/<pid>/task` lists them (none if it is gone).
pub fn threads(pid: Pid) -> Vec<Pid> {
    let mut tids: Vec<Pid> = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .map(Pid::from_raw)
                .collect()
        })
        .unwrap_or_default();
    tids.sort();
    tids
}

/// The threads of this process.
pub fn own_threads() -> Vec<Pid> {
    threads(nix::unistd::getpid())
}

/// The signal state of `pid` (for a multi-threaded process, of its main thread).
pub fn signal_state(pid: Pid) -> io::Result<SignalState> {
    signal_state_from(&format!("/proc/{pid}/status"))
}

/// The signal state of thread `tid` of process `pid` (masks are per thread).
pub fn thread_signal_state(pid: Pid, tid: Pid) -> io::Result<SignalState> {
    signal_state_from(&format!("/proc/{pid}/task/{tid}/status"))
}

/// The signal state of the calling thread (masks are per thread: this reads the thread's own).
pub fn own_thread_signal_state() -> io::Result<SignalState> {
    signal_state_from("/proc/thread-self/status")
}

fn signal_state_from(path: &str) -> io::Result<SignalState> {
    let status = fs::read_to_string(path)?;
    let mask = |field: &str| -> SigSet {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .map(SigSet)
            .unwrap_or_default()
    };
    Ok(SignalState {
        thread_pending: mask("SigPnd"),
        shared_pending: mask("ShdPnd"),
        blocked: mask("SigBlk"),
        ignored: mask("SigIgn"),
        caught: mask("SigCgt"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm_parses() {
        let p = parse_stat("42 (a) b (c)) S 1 42 40 0 -1").unwrap();
        assert_eq!(
            (
                p.pid.as_raw(),
                p.ppid.as_raw(),
                p.pgid.as_raw(),
                p.sid.as_raw()
            ),
            (42, 1, 42, 40)
        );
        assert_eq!((p.comm.as_str(), p.state), ("a) b (c)", 'S'));
    }

    #[test]
    fn a_zombie_shows_how_it_ended() {
        // SAFETY: the child only raises a signal at its default action (death).
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                // SAFETY: raise and _exit are async-signal-safe.
                unsafe {
                    libc::raise(libc::SIGTERM);
                    libc::_exit(0)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag};
                // Wait until it is a zombie, without reaping it.
                waitid(Id::Pid(child), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT).unwrap();
                let seen = process(child).unwrap().unwrap();
                waitpid(child, None).unwrap();
                assert_eq!((seen.state, seen.exit_status), ('Z', Some(libc::SIGTERM)));
            }
        }
    }

    #[test]
    fn fd_targets_parse() {
        assert_eq!(FdTarget::parse("pipe:[123]"), FdTarget::Pipe(123));
        assert_eq!(FdTarget::parse("socket:[9]"), FdTarget::Socket(9));
        assert_eq!(
            FdTarget::parse("anon_inode:[eventfd]"),
            FdTarget::AnonInode("[eventfd]".into())
        );
        assert_eq!(FdTarget::parse("/tmp/x"), FdTarget::Path("/tmp/x".into()));
    }

    #[test]
    fn a_new_pipe_shows_in_the_table_and_goes_away() {
        // Other test threads open and close descriptors meanwhile, so only our two are looked
        // at; suites call assert_no_leaks inside `isolated`, where nothing else runs.
        use std::os::fd::AsRawFd;
        let before = FdSnapshot::take();
        let (r, w) = nix::unistd::pipe().unwrap();
        let (rfd, wfd) = (r.as_raw_fd(), w.as_raw_fd());
        let opened = before.opened_since();
        let (Some(FdTarget::Pipe(a)), Some(FdTarget::Pipe(b))) =
            (opened.get(&rfd), opened.get(&wfd))
        else {
            panic!("both ends should show as pipe:[…]: {opened:?}");
        };
        assert_eq!(a, b, "both ends of one pipe share its inode");
        let inode = *a;
        drop((r, w));
        let now = own_fd_table();
        assert!(![rfd, wfd]
            .iter()
            .any(|fd| now.get(fd) == Some(&FdTarget::Pipe(inode))));
    }

    #[test]
    fn a_thread_blocked_in_read_is_seen_and_its_end_is_noticed() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&read_end) as u64;
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid()).unwrap();
            nix::unistd::read(&read_end, &mut [0u8; 1])
        });
        let tid = rx.recv().unwrap();
        let call = wait_until_blocked(tid, Duration::from_secs(10), |c| {
            c.number == libc::SYS_read && c.args[0] == fd
        });
        nix::unistd::write(&write_end, b"x").unwrap();
        assert_eq!(reader.join().unwrap(), Ok(1));
        assert_eq!(call.unwrap().number, libc::SYS_read);
        let gone = wait_until_blocked(tid, Duration::from_secs(1), |_| true);
        assert!(gone.unwrap_err().contains("ended"));
    }

    #[test]
    fn own_process_is_in_the_table() {
        let me = process(nix::unistd::getpid()).unwrap().unwrap();
        assert_eq!(me.ppid, nix::unistd::getppid());
        assert!(signal_state(me.pid).is_ok());
    }
}
