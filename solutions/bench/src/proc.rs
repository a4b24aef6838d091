//! Processes, CPUs and descriptors: the plumbing every measurement shares.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, getpid, getppid, ForkResult, Pid};

/// Errors of the benchmark. Each names its cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error("{call} failed: {errno}")]
    Sys { call: &'static str, errno: Errno },
    /// A helper process did not exit with status 0 (it reports its own failure that way).
    #[error("the {role} process ended badly: {status}")]
    ChildFailed { role: &'static str, status: String },
    /// Fewer bytes (or messages) arrived than were sent: the measurement would be meaningless.
    #[error("{what}: sent {sent} bytes but {received} arrived")]
    ShortTransfer {
        what: &'static str,
        sent: usize,
        received: usize,
    },
    /// The kernel did not give a pipe the capacity asked for (see /proc/sys/fs/pipe-max-size).
    #[error("F_SETPIPE_SZ asked for {asked} bytes but the pipe holds {got}")]
    PipeSize { asked: usize, got: usize },
    /// A reply differed from what was sent in a ping-pong.
    #[error("{what}: the echo came back different from the message sent")]
    BadEcho { what: &'static str },
    /// A reference solution returned an error.
    #[error("{exercise}: {message}")]
    Solution {
        exercise: &'static str,
        message: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attaches the name of the failed call to an errno.
pub fn sys(call: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::Sys { call, errno }
}

/// Wraps a reference solution's error, keeping its message (which names the cause).
pub fn solution<E: std::fmt::Display>(exercise: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Solution {
        exercise,
        message: e.to_string(),
    }
}

/// A forked helper process. Waiting for it is the normal end; dropping it without waiting
/// (an error or a panic half-way) kills and reaps it, so no measurement leaves a process behind.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    role: &'static str,
    reaped: bool,
}

impl Child {
    /// Forks a child that runs `body` and ends with the code it returns (101 if it panics).
    ///
    /// Everything `body` captured by move is dropped in the parent as soon as the child exists:
    /// move the child's descriptors into `body`, and the parent's copies are closed here, which
    /// is what lets each side see end of file when the other is done.
    ///
    /// `parent_ends` are the descriptors only the parent uses: the child closes its copies
    /// first, or a child reading to end of file would wait for its own copy of the write end.
    ///
    /// Call it only while this process has a single thread: the child may allocate.
    /// With `cpu`, the child first pins itself to that CPU.
    pub fn spawn(
        role: &'static str,
        cpu: Option<usize>,
        parent_ends: &[BorrowedFd<'_>],
        body: impl FnOnce() -> i32,
    ) -> Result<Child> {
        let parent = getpid();
        // SAFETY: the process is single-threaded at this point (every caller forks before it
        // starts a thread, and joins its threads before the next fork), so the child may use
        // the allocator; it runs `body` and `_exit`s, never returning into our caller.
        match unsafe { fork() }.map_err(sys("fork"))? {
            ForkResult::Child => exit_child(|| {
                // Some helpers spin on shared memory: if the benchmark is killed (Ctrl-C), they
                // must go too rather than spin on as orphans. If the parent died before the
                // request took effect, our parent is someone else already.
                if set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent {
                    return 3;
                }
                if cpu.is_some_and(|cpu| pin(cpu).is_err()) {
                    return 2;
                }
                for fd in parent_ends {
                    // The OwnedFd that owns this descriptor is never dropped in the child (it
                    // ends with `_exit`), so closing it here cannot close it twice.
                    if nix::unistd::close(fd.as_raw_fd()).is_err() {
                        return 3;
                    }
                }
                body()
            }),
            ForkResult::Parent { child } => {
                drop(body);
                Ok(Child {
                    pid: child,
                    role,
                    reaped: false,
                })
            }
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits for the child; anything but `exit(0)` is an error.
    pub fn wait(mut self) -> Result<()> {
        self.reaped = true;
        match reap(self.pid)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            status => Err(Error::ChildFailed {
                role: self.role,
                status: format!("{status:?}"),
            }),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = reap(self.pid);
        }
    }
}

/// Runs `f` and ends the process with its result, never returning: a child that returned (or
/// unwound from a panic) would go on running the parent's code.
pub fn exit_child(f: impl FnOnce() -> i32) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: `_exit` ends the process at once, without the parent's atexit handlers or buffers.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid` to end, retrying when a signal interrupts the wait.
fn reap(pid: Pid) -> Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return Ok(status),
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

/// Writes all of `data`, continuing after partial writes and EINTR.
pub fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// One read, retried on EINTR; 0 means end of file.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Reads exactly `buf.len()` bytes; false at a premature end of file.
pub fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match read_some(fd, &mut buf[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(true)
}

/// The sending side of every one-way measurement: `total` bytes in writes of `chunk` bytes.
/// Returns the child's exit code: 0, or 1 if a write failed.
pub fn send_stream(fd: impl AsFd, chunk: usize, total: usize) -> i32 {
    // Not zeros: a zero-filled allocation may share the kernel's zero page and flatter reads.
    let data = vec![0xA5u8; chunk];
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk);
        if write_all(fd.as_fd(), &data[..n]).is_err() {
            return 1;
        }
        left -= n;
    }
    0
}

/// Where the two processes of a latency measurement run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Both on one CPU: every exchange is a switch from one process to the other.
    SameCpu,
    /// On two CPUs: every exchange wakes a process on the other CPU (an inter-processor
    /// interrupt, and on a virtual machine a trip through the hypervisor).
    CrossCpu,
}

/// The CPUs this process may use, as sched_getaffinity reports them.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(sys("sched_getaffinity"))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

impl Placement {
    /// The CPUs of (parent, child), from the allowed ones; `None` if there are too few.
    pub fn cpus(self, allowed: &[usize]) -> Option<(usize, usize)> {
        match (self, allowed) {
            (_, []) => None,
            (Placement::SameCpu, [first, ..]) => Some((*first, *first)),
            (Placement::CrossCpu, [first, second, ..]) => Some((*first, *second)),
            (Placement::CrossCpu, [_]) => None,
        }
    }
}

/// Pins the calling thread to one CPU.
pub fn pin(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(sys("CpuSet::set"))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(sys("sched_setaffinity"))
}

/// Pins this thread to `cpu` until dropped, then gives it back the CPUs it had.
pub struct Pinned {
    old: CpuSet,
}

impl Pinned {
    pub fn to(cpu: usize) -> Result<Pinned> {
        let old = sched_getaffinity(Pid::from_raw(0)).map_err(sys("sched_getaffinity"))?;
        pin(cpu)?;
        Ok(Pinned { old })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.old);
    }
}

/// A one-byte handshake on a pipe: the child says that its side is set up before the parent
/// starts a wait that only the child can end (spinning on shared memory). A child that exits
/// before it is ready closes the pipe instead, and the parent reports that rather than spin on.
pub fn ready_pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe2"))
}

/// The child's half of [`ready_pipe`]: true if the byte went out.
pub fn say_ready(write_end: std::os::fd::OwnedFd) -> bool {
    write_all(write_end.as_fd(), b"r").is_ok()
}

/// The parent's half of [`ready_pipe`]: waits for the byte; end of file means the child failed.
pub fn wait_ready(read_end: std::os::fd::OwnedFd, role: &'static str) -> Result<()> {
    let mut byte = [0u8; 1];
    if read_exact(read_end.as_fd(), &mut byte).map_err(sys("read"))? {
        Ok(())
    } else {
        Err(Error::ChildFailed {
            role,
            status: "it exited before it was ready".into(),
        })
    }
}
