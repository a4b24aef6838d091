//! What the trusted side saw of the untrusted processes: the kernel's state, read from `/proc`
//! by the judge itself.
//!
//! A [`Snapshot`] is taken at every [`crate::checkpoint`] (while the process that asked waits),
//! when the body has returned (before anything is cleaned up), and at a deadline. It holds every
//! process of the test's tree: its row in the process table, its descriptor table, its signal
//! state and each thread's blocking system call, plus the System V tables of the test's IPC
//! namespace and the socket tables of its network namespace. The judge asserts on these, so a
//! submission cannot fake them: they are what the kernel says, read by code the student's code
//! never ran in.

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

use crate::netprocfs::{self, InetSocket, UnixSocket};
use crate::procfs::{self, BlockedCall, FdTarget, ProcessInfo, SignalState};
use crate::sysvipc::{self, MsgQueueRow, SemRow, ShmRow};

/// One open descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdEntry {
    pub target: FdTarget,
    /// The `flags` of `/proc/<pid>/fdinfo/<fd>`: access mode, `O_NONBLOCK`, `O_APPEND`,
    /// `O_CLOEXEC` (shown as `libc::O_CLOEXEC`).
    pub flags: i32,
    /// The file offset (`pos` of fdinfo), shared by every descriptor of one open file
    /// description.
    pub pos: u64,
}

impl FdEntry {
    /// `libc::O_RDONLY`, `O_WRONLY` or `O_RDWR`.
    pub fn access_mode(&self) -> i32 {
        self.flags & libc::O_ACCMODE
    }

    pub fn is_cloexec(&self) -> bool {
        self.flags & libc::O_CLOEXEC != 0
    }
}

/// One thread of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadState {
    pub tid: i32,
    /// The system call it was asleep in, if any.
    pub blocked: Option<BlockedCall>,
    /// Its own mask and pending set (masks are per thread).
    pub signals: SignalState,
}

/// One process of the test's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    pub info: ProcessInfo,
    pub fds: BTreeMap<i32, FdEntry>,
    /// Of the main thread (see `threads` for the others).
    pub signals: SignalState,
    pub threads: Vec<ThreadState>,
    /// Lines of `/proc/<pid>/maps` for System V shared memory (`/SYSV…`).
    pub sysv_maps: Vec<String>,
    /// The foreground process group of its controlling terminal (`tpgid` in
    /// `/proc/<pid>/stat`; -1 without a terminal): what `tcgetpgrp` would say.
    pub terminal_foreground: i32,
}

impl ProcessState {
    pub fn pid(&self) -> i32 {
        self.info.pid.as_raw()
    }

    /// Descriptors that refer to a pipe: (fd, access mode).
    pub fn pipe_fds(&self) -> Vec<(i32, i32)> {
        self.fds
            .iter()
            .filter(|(_, e)| e.target.is_pipe())
            .map(|(fd, e)| (*fd, e.access_mode()))
            .collect()
    }

    /// The descriptors that refer to `target`.
    pub fn fds_to(&self, target: &FdTarget) -> Vec<i32> {
        self.fds
            .iter()
            .filter(|(_, e)| &e.target == target)
            .map(|(fd, _)| *fd)
            .collect()
    }
}

/// The kernel's state of every process of the test, at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The checkpoint's label; `"end"` for the snapshot taken when the body returned,
    /// `"deadline"` for the one taken when the deadline passed.
    pub label: String,
    /// The process that asked for it (the test process for `"end"`).
    pub requester: i32,
    /// The process that runs the test body.
    pub root: i32,
    /// The test process first, then its descendants, parents before children.
    pub processes: Vec<ProcessState>,
    pub message_queues: Vec<MsgQueueRow>,
    pub shared_memory: Vec<ShmRow>,
    pub semaphore_sets: Vec<SemRow>,
    /// Every semaphore of every set, by set id (read with `semctl` by the judge).
    pub semaphores: BTreeMap<i32, Vec<Semaphore>>,
    /// The System V limits of the test's IPC namespace, by name, as the judge read them from
    /// `/proc/sys/kernel/` inside it: `msgmax`, `msgmnb`, `msgmni`, `shmmax`, `shmall`, `shmmni`
    /// (a limit that could not be read is absent). Each IPC namespace has its own.
    pub ipc_limits: BTreeMap<String, u64>,
    /// Lines of `/proc/locks` (file locks of the whole machine: match them by inode).
    pub file_locks: Vec<String>,
    pub unix_sockets: Vec<UnixSocket>,
    pub tcp_sockets: Vec<InetSocket>,
    pub udp_sockets: Vec<InetSocket>,
}

/// One semaphore, as `semctl` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Semaphore {
    /// `GETVAL`.
    pub value: i32,
    /// `GETNCNT`: processes waiting for the value to grow.
    pub waiting_to_decrease: i32,
    /// `GETZCNT`: processes waiting for the value to be zero.
    pub waiting_for_zero: i32,
    /// `GETPID`: the last process that changed it.
    pub last_pid: i32,
}

/// What a snapshot must not show: the judge's own machinery in the untrusted processes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hidden {
    pub targets: Vec<FdTarget>,
}

impl Snapshot {
    /// Reads everything now. `root` is the test process; `ipc_ns_of` is a process whose System V
    /// IPC namespace holds the test's objects.
    pub(crate) fn capture(label: &str, requester: i32, root: i32, hidden: &Hidden) -> Snapshot {
        let root_pid = Pid::from_raw(root);
        let mut processes = Vec::new();
        let mut tree: Vec<ProcessInfo> = procfs::process(root_pid)
            .ok()
            .flatten()
            .into_iter()
            .collect();
        tree.extend(procfs::descendants(root_pid));
        for info in tree {
            processes.push(process_state(info, hidden));
        }
        let (message_queues, shared_memory, semaphore_sets, semaphores, ipc_limits) =
            sysv_tables_of(root);
        let net = |table: &str| {
            fs::read_to_string(format!("/proc/{root}/net/{table}")).unwrap_or_default()
        };
        Snapshot {
            label: label.to_owned(),
            requester,
            root,
            processes,
            message_queues,
            shared_memory,
            semaphore_sets,
            semaphores,
            ipc_limits,
            // In large reads: a row removed between two small reads (other programs' locks
            // come and go) would make the table skip one of the test's.
            file_locks: sysvipc::read_consistently("/proc/locks")
                .map(|t| t.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            unix_sockets: netprocfs::parse_unix(&net("unix")),
            tcp_sockets: netprocfs::parse_inet(&net("tcp")),
            udp_sockets: netprocfs::parse_inet(&net("udp")),
        }
    }

    /// The process `pid`, if it existed (running, stopped or zombie) at that moment.
    pub fn process(&self, pid: i32) -> Option<&ProcessState> {
        self.processes.iter().find(|p| p.pid() == pid)
    }

    /// The process `pid`; panics with `why` if it did not exist.
    #[track_caller]
    pub fn expect_process(&self, pid: i32, why: &str) -> &ProcessState {
        self.process(pid).unwrap_or_else(|| {
            panic!(
                "{why} (pid {pid} was not a process of the test at checkpoint {:?})",
                self.label
            )
        })
    }

    /// The process that asked for this snapshot.
    pub fn requester(&self) -> &ProcessState {
        self.process(self.requester)
            .expect("the process that asked for a snapshot is in it")
    }

    /// The test process itself.
    pub fn test_process(&self) -> &ProcessState {
        self.process(self.root)
            .expect("the test process is in its own snapshot")
    }

    /// Direct children of `pid`.
    pub fn children_of(&self, pid: i32) -> Vec<&ProcessState> {
        self.processes
            .iter()
            .filter(|p| p.info.ppid.as_raw() == pid && p.pid() != pid)
            .collect()
    }

    /// Children of `pid` that have exited and were not reaped.
    pub fn zombie_children_of(&self, pid: i32) -> Vec<&ProcessState> {
        self.children_of(pid)
            .into_iter()
            .filter(|p| p.info.is_zombie())
            .collect()
    }

    /// Every process of the tree but the test process.
    pub fn descendants(&self) -> Vec<&ProcessState> {
        self.processes
            .iter()
            .filter(|p| p.pid() != self.root)
            .collect()
    }

    /// Panics, naming each one, if the test process had zombie children.
    #[track_caller]
    pub fn assert_no_zombies(&self, what_to_reap: &str) {
        let zombies = self.zombie_children_of(self.root);
        if !zombies.is_empty() {
            let list: Vec<String> = zombies
                .iter()
                .map(|z| format!("pid {} ({})", z.pid(), z.info.comm))
                .collect();
            panic!(
                "{} zombie child(ren) left unreaped: {}. {what_to_reap}",
                zombies.len(),
                list.join(", ")
            );
        }
    }

    pub fn message_queue(&self, id: i32) -> Option<&MsgQueueRow> {
        self.message_queues.iter().find(|q| q.id == id)
    }

    pub fn shared_memory_segment(&self, id: i32) -> Option<&ShmRow> {
        self.shared_memory.iter().find(|s| s.id == id)
    }

    pub fn semaphore_set(&self, id: i32) -> Option<&SemRow> {
        self.semaphore_sets.iter().find(|s| s.id == id)
    }

    /// The semaphores of set `id` (empty if the set did not exist).
    pub fn semaphores_of(&self, id: i32) -> &[Semaphore] {
        self.semaphores.get(&id).map_or(&[], Vec::as_slice)
    }

    /// One line per process: what it was doing (for a deadline's message).
    pub fn describe(&self) -> String {
        let mut lines = Vec::new();
        for p in &self.processes {
            let role = if p.pid() == self.root {
                "the test process".to_owned()
            } else {
                format!("child of {}", p.info.ppid)
            };
            let doing = if p.info.is_zombie() {
                "a zombie (exited, never reaped)".to_owned()
            } else if p.info.is_stopped() {
                "stopped".to_owned()
            } else {
                let calls: Vec<String> = p
                    .threads
                    .iter()
                    .filter_map(|t| t.blocked.map(|call| describe_call(&call, p)))
                    .collect();
                if calls.is_empty() {
                    "running".to_owned()
                } else {
                    calls.join("; ")
                }
            };
            lines.push(format!(
                "  pid {} ({}, {role}): {doing}",
                p.pid(),
                p.info.comm
            ));
        }
        lines.join("\n")
    }
}

fn describe_call(call: &BlockedCall, p: &ProcessState) -> String {
    let name = syscall_name(call.number);
    let fd_arg = |i: usize| {
        let fd = call.args[i] as i32;
        match p.fds.get(&fd) {
            Some(e) => format!("fd {fd} = {}", e.target),
            None => format!("fd {fd}"),
        }
    };
    match call.number {
        libc::SYS_read
        | libc::SYS_write
        | libc::SYS_recvfrom
        | libc::SYS_sendto
        | libc::SYS_recvmsg
        | libc::SYS_sendmsg
        | libc::SYS_accept
        | libc::SYS_accept4
        | libc::SYS_connect => format!("asleep in {name}({})", fd_arg(0)),
        _ => format!("asleep in {name}"),
    }
}

/// Names of the system calls a test of this course is likely to sleep in.
pub fn syscall_name(number: i64) -> String {
    let known = [
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_openat, "open"),
        (libc::SYS_wait4, "waitpid"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_poll, "poll"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_select, "select"),
        (libc::SYS_pselect6, "pselect"),
        (libc::SYS_epoll_wait, "epoll_wait"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_semop, "semop"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_recvfrom, "recv"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_sendto, "send"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_futex, "futex (a lock or a thread join)"),
        (libc::SYS_nanosleep, "sleep"),
        (libc::SYS_clock_nanosleep, "sleep"),
        (libc::SYS_pause, "pause"),
        (libc::SYS_rt_sigsuspend, "sigsuspend"),
        (libc::SYS_rt_sigtimedwait, "sigwait"),
        (libc::SYS_flock, "flock"),
        (libc::SYS_fcntl, "fcntl (a record lock?)"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| (*name).to_owned())
        .unwrap_or_else(|| format!("system call {number}"))
}

fn process_state(info: ProcessInfo, hidden: &Hidden) -> ProcessState {
    let pid = info.pid;
    let fds = procfs::fd_table(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, target)| !hidden.targets.contains(target))
        .map(|(fd, target)| {
            let (flags, pos) = fd_info(pid.as_raw(), fd).unwrap_or((0, 0));
            (fd, FdEntry { target, flags, pos })
        })
        .collect();
    let signals = procfs::signal_state(pid).unwrap_or_default();
    let threads = fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            let mut tids: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            tids.sort();
            tids.into_iter()
                .map(|tid| ThreadState {
                    tid,
                    blocked: procfs::blocked_call(Pid::from_raw(tid)),
                    signals: procfs::thread_signal_state(pid, Pid::from_raw(tid))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let sysv_maps = fs::read_to_string(format!("/proc/{pid}/maps"))
        .map(|maps| {
            maps.lines()
                .filter(|l| l.contains("/SYSV"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let terminal_foreground = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            // state ppid pgrp session tty_nr tpgid
            rest.split_whitespace().nth(5)?.parse().ok()
        })
        .unwrap_or(-1);
    ProcessState {
        info,
        fds,
        signals,
        threads,
        sysv_maps,
        terminal_foreground,
    }
}

fn fd_info(pid: i32, fd: i32) -> Option<(i32, u64)> {
    let info = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let flags = i32::from_str_radix(field("flags:")?, 8).ok()?;
    let pos = field("pos:").and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((flags, pos))
}

type SysvTables = (
    Vec<MsgQueueRow>,
    Vec<ShmRow>,
    Vec<SemRow>,
    BTreeMap<i32, Vec<Semaphore>>,
    BTreeMap<String, u64>,
);

/// The limits [`Snapshot::ipc_limits`] holds, as the calling thread's IPC namespace has them.
fn ipc_limits() -> BTreeMap<String, u64> {
    ["msgmax", "msgmnb", "msgmni", "shmmax", "shmall", "shmmni"]
        .into_iter()
        .filter_map(|name| {
            let value = fs::read_to_string(format!("/proc/sys/kernel/{name}")).ok()?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The System V tables as the test's processes see them, the value of every semaphore and the
/// namespace's limits. As
/// root the test has an IPC namespace of its own: a short-lived thread joins it to read them
/// (namespaces are per thread for IPC).
fn sysv_tables_of(pid: i32) -> SysvTables {
    let read = || {
        let sets = sysvipc::semaphore_sets();
        let values = sets
            .iter()
            .map(|set| {
                let all = (0..set.nsems as i32)
                    .map(|n| {
                        // SAFETY: semctl with these commands reads nothing from us and returns
                        // an integer (or -1 if the set vanished meanwhile).
                        let get = |cmd| unsafe { libc::semctl(set.id, n, cmd) };
                        Semaphore {
                            value: get(libc::GETVAL),
                            waiting_to_decrease: get(libc::GETNCNT),
                            waiting_for_zero: get(libc::GETZCNT),
                            last_pid: get(libc::GETPID),
                        }
                    })
                    .collect();
                (set.id, all)
            })
            .collect();
        (
            sysvipc::message_queues(),
            sysvipc::shared_memory_segments(),
            sets,
            values,
            ipc_limits(),
        )
    };
    let same_ns = fs::read_link(format!("/proc/{pid}/ns/ipc")).ok()
        == fs::read_link("/proc/thread-self/ns/ipc").ok();
    if same_ns {
        return read();
    }
    let ns: PathBuf = Path::new("/proc").join(pid.to_string()).join("ns/ipc");
    std::thread::scope(|s| {
        s.spawn(|| {
            let Ok(file) = fs::File::open(&ns) else {
                return Default::default();
            };
            match nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWIPC) {
                Ok(()) => read(),
                Err(_) => Default::default(),
            }
        })
        .join()
        .unwrap_or_default()
    })
}
