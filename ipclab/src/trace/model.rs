//! The timeline: processes (who forked whom, what they ran, how they ended, who reaped them),
//! what each one did, and each one's descriptor table at any moment.
//!
//! The model is built by replaying the parsed records in the order their effects happened: a
//! `pipe2` takes effect when it returns, a `clone` when it starts (the child may run before its
//! parent's `clone` returns, and it starts with the parent's table of that moment).

use std::collections::{BTreeMap, HashMap};

use super::fds::{Desc, Described, End, Names, Object};
use super::parse::{self, Call, Micros, Outcome, ParseError, Record, What};

pub type Pid = i32;

/// A call that took at least this long is drawn as a span: the process was asleep in it.
pub const BLOCKED_MIN: Micros = 1_000;

/// Who a process is, for the pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The test harness: the first process of the trace and its threads. Not the student's.
    Harness,
    /// The isolated process the harness started for the one test: it runs the student's code.
    Isolated,
    /// Anything the student's code started.
    Code,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Killed(String),
}

#[derive(Debug, Clone)]
pub struct Process {
    pub pid: Pid,
    pub parent: Option<Pid>,
    pub role: Role,
    pub threads: Vec<Pid>,
    /// When it was created (its parent's fork), or first seen.
    pub start: Micros,
    pub end: Option<(Micros, Ending)>,
    /// The process whose wait returned this one's pid, and when.
    pub reaped: Option<(Pid, Micros)>,
    /// The programs it executed, in order (`/usr/bin/tr`).
    pub programs: Vec<String>,
    /// When it installed a handler (not SIG_DFL or SIG_IGN) for SIGCHLD.
    pub sigchld_handler: Option<Micros>,
    /// When it put SIG_DFL or SIG_IGN back after that.
    pub sigchld_handler_until: Option<Micros>,
}

impl Process {
    /// The program's short name (`tr`), if it executed one.
    pub fn program(&self) -> Option<&str> {
        self.programs
            .last()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
    }

    pub fn ended_at(&self) -> Option<Micros> {
        self.end.as_ref().map(|(at, _)| *at)
    }
}

/// What an event is, for the diagnoses; `text` in [`Event`] is what people read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Call {
        name: String,
        result: Outcome,
        /// The descriptors the call used, with what they were when it ran.
        fds: Vec<(i32, Desc)>,
        /// Descriptors sent (`sendmsg`) or received (`recvmsg`) with SCM_RIGHTS, as numbered in
        /// this process.
        passed: Vec<(i32, Desc)>,
    },
    /// The process created `child` (fork, vfork, clone without CLONE_THREAD).
    Spawn {
        child: Pid,
    },
    Signal {
        signal: String,
        sender: Option<Pid>,
    },
    End(Ending),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub pid: Pid,
    pub tid: Pid,
    pub start: Micros,
    /// `None`: the call never returned (the process was killed in it, or the trace ended).
    pub end: Option<Micros>,
    pub kind: Kind,
    /// One line for people: `read fd 3 (pipe A, read end) → 5 bytes`.
    pub text: String,
    /// About communication between processes (the pictures show these; the loader's reads of
    /// shared libraries are not).
    pub ipc: bool,
    /// A span: the process slept in this call (at least [`BLOCKED_MIN`], or until it died).
    pub blocking: bool,
}

impl Event {
    pub fn call_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Call { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// One change to a process's descriptor table.
#[derive(Debug, Clone)]
pub struct FdChange {
    pub pid: Pid,
    pub at: Micros,
    pub fd: i32,
    /// `None`: closed.
    pub desc: Option<Desc>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The first process of the trace is a test harness (true for `cargo ipclab trace`; false
    /// for a trace of a plain program).
    pub first_is_harness: bool,
}

#[derive(Debug, Clone)]
pub struct Trace {
    /// In the order they appeared.
    pub processes: Vec<Process>,
    /// In the order they started.
    pub events: Vec<Event>,
    /// In the order they happened.
    pub changes: Vec<FdChange>,
    pub names: Names,
    pub start: Micros,
    pub end: Micros,
}

/// Calls that can put a process to sleep.
const BLOCKING: &[&str] = &[
    "poll",
    "ppoll",
    "epoll_wait",
    "flock",
    "read",
    "readv",
    "write",
    "writev",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "accept",
    "accept4",
    "connect",
    "openat",
    "wait4",
    "waitid",
    "msgsnd",
    "msgrcv",
    "semop",
    "semtimedop",
    "mq_timedsend",
    "mq_timedreceive",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "pause",
    "vfork",
];

/// Calls whose result is what another process did (bytes it wrote, its exit, its post).
const WAITING: &[&str] = &[
    "poll",
    "ppoll",
    "epoll_wait",
    "flock",
    "read",
    "readv",
    "recvfrom",
    "recvmsg",
    "accept",
    "accept4",
    "openat",
    "wait4",
    "waitid",
    "msgrcv",
    "semop",
    "semtimedop",
    "mq_timedreceive",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "pause",
    "execve",
];

/// Calls that are about processes and IPC whatever their arguments.
const ALWAYS_SHOWN: &[&str] = &[
    "shutdown",
    "flock",
    "rt_sigpending",
    "rt_sigqueueinfo",
    "mq_getsetattr",
    "mq_notify",
    "pipe",
    "pipe2",
    "socketpair",
    "mknod",
    "mknodat",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "mq_open",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_unlink",
    "kill",
    "tgkill",
    "wait4",
    "waitid",
    "execve",
    "setsid",
    "setpgid",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "pause",
    "bind",
    "listen",
    "connect",
];

const SPAWNING: &[&str] = &["clone", "clone3", "fork", "vfork"];

/// Calls the model reads for their effect on descriptor tables (beyond the lists above).
const TRACKED: &[&str] = &[
    "close_range",
    "signalfd4",
    "pidfd_open",
    "epoll_create1",
    "close",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "open",
    "openat",
    "socket",
    "eventfd2",
    "memfd_create",
    "rt_sigaction",
    "rt_sigprocmask",
];

/// Whether the model understands `name` (draws it when it concerns IPC, follows its effect on
/// descriptors): the tests check that every call of the reference solutions is, or is left out
/// on purpose.
pub fn is_modelled(name: &str) -> bool {
    [BLOCKING, ALWAYS_SHOWN, SPAWNING, TRACKED]
        .iter()
        .any(|list| list.contains(&name))
}

/// Decides, once every process's programs are known, which processes are the harness's.
///
/// A graded test runs as a chain: libtest (the first process), which starts a *keeper* (the test
/// binary again, through `/proc/self/exe`), which starts the *test process* (once more the test
/// binary) where the student's code runs. Older traces have no keeper: libtest starts the test
/// process itself. So a child of the harness that runs the test binary is the test process,
/// unless one of its own children runs the test binary too: then it is the keeper, and that
/// child is the test process. Everything else the harness starts (the keeper's killer, the
/// judge's `cargo metadata`) is the harness's; everything the test process starts is code.
fn assign_roles(processes: &mut [Process]) {
    let Some(root) = processes.first() else {
        return;
    };
    let root_program = root.programs.first().cloned();
    let runs_test_binary = |p: &Process| {
        p.programs
            .first()
            .is_some_and(|prog| prog == "/proc/self/exe" || Some(prog) == root_program.as_ref())
    };
    let test_binary: Vec<bool> = processes.iter().map(runs_test_binary).collect();
    let mut roles: Vec<Role> = Vec::with_capacity(processes.len());
    for (i, p) in processes.iter().enumerate() {
        let parent_role = p
            .parent
            .and_then(|parent| processes[..i].iter().position(|q| q.pid == parent))
            .map(|j| roles[j]);
        let role = match parent_role {
            None if i == 0 => Role::Harness,
            None => p.role,
            Some(Role::Harness) => {
                let keeper = processes
                    .iter()
                    .zip(&test_binary)
                    .any(|(child, runs)| child.parent == Some(p.pid) && *runs);
                if test_binary[i] && !keeper {
                    Role::Isolated
                } else {
                    Role::Harness
                }
            }
            Some(Role::Isolated | Role::Code) => Role::Code,
        };
        roles.push(role);
    }
    for (p, role) in processes.iter_mut().zip(roles) {
        p.role = role;
    }
}

impl Trace {
    /// Builds the timeline from strace's output.
    pub fn from_strace(text: &str, options: Options) -> Result<Trace, ParseError> {
        let records = parse::parse(text)?;
        let trace = Builder::new(&records, options).build(records.clone());
        if !options.first_is_harness {
            return Ok(trace);
        }
        // Which processes are the harness's is known only at the end (the keeper is recognised
        // by its child): a second pass names their objects apart from the student's.
        let mut builder = Builder::new(&records, options);
        builder.harness = trace
            .processes
            .iter()
            .filter(|p| p.role == Role::Harness)
            .map(|p| p.pid)
            .collect();
        for p in trace.processes.iter().filter(|p| p.role == Role::Isolated) {
            let exec = trace
                .events
                .iter()
                .find(|e| e.pid == p.pid && e.call_name() == Some("execve") && e.end.is_some());
            if let Some(exec) = exec {
                builder.spawning_until.insert(p.pid, exec.start);
            }
        }
        Ok(builder.build(records))
    }

    pub fn process(&self, pid: Pid) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The descriptor table of `pid` just after `at`.
    pub fn table_at(&self, pid: Pid, at: Micros) -> BTreeMap<i32, Desc> {
        let mut table = BTreeMap::new();
        for change in self.changes.iter().filter(|c| c.pid == pid && c.at <= at) {
            match &change.desc {
                Some(desc) => table.insert(change.fd, desc.clone()),
                None => table.remove(&change.fd),
            };
        }
        table
    }

    /// "pipe A, write end".
    pub fn describe(&self, desc: &Desc) -> String {
        let name = self
            .names
            .get(&desc.object)
            .map(str::to_owned)
            .unwrap_or_else(|| Names::default().name(&desc.object));
        Described {
            name: &name,
            end: desc.end,
        }
        .to_string()
    }

    /// "process 9388 (tr)", "the isolated test process 9388".
    pub fn who(&self, pid: Pid) -> String {
        match self.process(pid) {
            Some(p) => match (p.role, p.program()) {
                (Role::Isolated, _) => format!("process {pid} (the test)"),
                (Role::Harness, _) => format!("process {pid} (the test harness)"),
                (Role::Code, Some(program)) => format!("process {pid} ({program})"),
                (Role::Code, None) => format!("process {pid}"),
            },
            None => format!("process {pid}"),
        }
    }

    /// Processes that are not the harness: the student's code.
    pub fn code(&self) -> impl Iterator<Item = &Process> {
        self.processes.iter().filter(|p| p.role != Role::Harness)
    }
}

/// Replays the records; see the module's documentation.
struct Builder {
    options: Options,
    /// tid → (creating tid, is a thread).
    created: HashMap<Pid, (Pid, bool)>,
    /// tid → its process.
    owner: HashMap<Pid, Pid>,
    processes: Vec<Process>,
    live: HashMap<Pid, BTreeMap<i32, Desc>>,
    changes: Vec<FdChange>,
    names: Names,
    /// FIFOs made with mknod, by path.
    fifos: Vec<String>,
    /// The harness's processes, known from a first pass: their objects get names of their own.
    harness: Vec<Pid>,
    /// The test process is the harness's until it executes the test binary (its sandbox set-up).
    spawning_until: HashMap<Pid, Micros>,
    /// Which end each descriptor sent with SCM_RIGHTS was, for the receiver's copy.
    sent_ends: HashMap<Object, Option<End>>,
    root: Option<Pid>,
}

impl Builder {
    fn new(records: &[Record], options: Options) -> Builder {
        let mut created = HashMap::new();
        for record in records {
            if let What::Call(call) = &record.what {
                if let (true, Some(child)) = (
                    SPAWNING.contains(&call.name.as_str()),
                    call.result.value().filter(|v| *v > 0),
                ) {
                    let thread = call.args.iter().any(|a| a.contains("CLONE_THREAD"));
                    created.insert(child as Pid, (record.tid, thread));
                }
            }
        }
        Builder {
            options,
            created,
            owner: HashMap::new(),
            processes: Vec::new(),
            live: HashMap::new(),
            changes: Vec::new(),
            names: Names::default(),
            fifos: Vec::new(),
            sent_ends: HashMap::new(),
            harness: Vec::new(),
            spawning_until: HashMap::new(),
            root: records.first().map(|r| r.tid),
        }
    }

    /// The process a task belongs to, creating the process on first sight.
    fn process_of(&mut self, tid: Pid, at: Micros) -> Pid {
        if let Some(pid) = self.owner.get(&tid) {
            return *pid;
        }
        let pid = match self.created.get(&tid).copied() {
            Some((creator, true)) => self.process_of(creator, at),
            Some((creator, false)) => {
                let parent = self.process_of(creator, at);
                self.add_process(tid, Some(parent), at);
                tid
            }
            None => {
                self.add_process(tid, None, at);
                tid
            }
        };
        self.owner.insert(tid, pid);
        if let Some(p) = self.processes.iter_mut().find(|p| p.pid == pid) {
            if !p.threads.contains(&tid) {
                p.threads.push(tid);
            }
        }
        pid
    }

    fn add_process(&mut self, pid: Pid, parent: Option<Pid>, at: Micros) {
        let role = match parent.and_then(|p| self.role(p)) {
            _ if !self.options.first_is_harness => Role::Code,
            None if Some(pid) == self.root => Role::Harness,
            Some(Role::Harness) => Role::Isolated,
            _ => Role::Code,
        };
        if let Some(parent) = parent {
            let table = self.live.get(&parent).cloned().unwrap_or_default();
            for (fd, desc) in &table {
                self.changes.push(FdChange {
                    pid,
                    at,
                    fd: *fd,
                    desc: Some(desc.clone()),
                });
            }
            self.live.insert(pid, table);
        }
        self.processes.push(Process {
            pid,
            parent,
            role,
            threads: Vec::new(),
            start: at,
            end: None,
            reaped: None,
            programs: Vec::new(),
            sigchld_handler: None,
            sigchld_handler_until: None,
        });
    }

    fn role(&self, pid: Pid) -> Option<Role> {
        self.processes.iter().find(|p| p.pid == pid).map(|p| p.role)
    }

    fn proc_mut(&mut self, pid: Pid) -> &mut Process {
        self.processes
            .iter_mut()
            .find(|p| p.pid == pid)
            .expect("processes are added before they are used")
    }

    fn set(&mut self, pid: Pid, at: Micros, fd: i32, desc: Option<Desc>) {
        let table = self.live.entry(pid).or_default();
        match &desc {
            Some(d) => {
                if table.get(&fd) == Some(d) {
                    return;
                }
                table.insert(fd, d.clone());
            }
            None => {
                if table.remove(&fd).is_none() {
                    return;
                }
            }
        }
        if let Some(d) = &desc {
            let spawning = self.spawning_until.get(&pid).is_some_and(|exec| at < *exec);
            if self.harness.contains(&pid) || spawning {
                self.names.name_for_harness(&d.object);
            } else {
                self.names.name(&d.object);
            }
        }
        self.changes.push(FdChange { pid, at, fd, desc });
    }

    fn build(mut self, records: Vec<Record>) -> Trace {
        // Effects in the order they happened; events are then listed in the order they began.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| (effect_time(&records[i]), i));
        let mut events: Vec<(usize, Event)> = Vec::new();
        for i in order {
            let record = &records[i];
            let pid = self.process_of(record.tid, record.at);
            let event = match &record.what {
                What::Call(call) => self.call(pid, record.tid, call),
                What::Signal { signal, sender } => Some(Event {
                    pid,
                    tid: record.tid,
                    start: record.at,
                    end: Some(record.at),
                    text: match sender {
                        Some(s) => format!("{signal} arrives (from {s})"),
                        None => format!("{signal} arrives"),
                    },
                    kind: Kind::Signal {
                        signal: signal.clone(),
                        sender: *sender,
                    },
                    ipc: true,
                    blocking: false,
                }),
                What::Exited { .. } | What::Killed { .. } if record.tid != pid => None,
                What::Exited { code } => Some(self.ended(pid, record.at, Ending::Exited(*code))),
                What::Killed { signal } => {
                    Some(self.ended(pid, record.at, Ending::Killed(signal.clone())))
                }
            };
            if let Some(event) = event {
                events.push((i, event));
            }
        }
        events.sort_by_key(|(i, e)| (e.start, *i));
        let start = records.iter().map(|r| r.at).min().unwrap_or(0);
        let end = records
            .iter()
            .map(|r| match &r.what {
                What::Call(c) => c.end.unwrap_or(c.start),
                _ => r.at,
            })
            .max()
            .unwrap_or(start);
        self.changes.sort_by_key(|c| c.at);
        if self.options.first_is_harness {
            assign_roles(&mut self.processes);
        }
        Trace {
            processes: self.processes,
            events: events.into_iter().map(|(_, e)| e).collect(),
            changes: self.changes,
            names: self.names,
            start,
            end,
        }
    }

    fn ended(&mut self, pid: Pid, at: Micros, ending: Ending) -> Event {
        let fds: Vec<i32> = self
            .live
            .get(&pid)
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default();
        for fd in fds {
            self.set(pid, at, fd, None);
        }
        self.proc_mut(pid).end = Some((at, ending.clone()));
        Event {
            pid,
            tid: pid,
            start: at,
            end: Some(at),
            text: match &ending {
                Ending::Exited(code) => format!("exits with status {code}"),
                Ending::Killed(signal) => format!("killed by {signal}"),
            },
            kind: Kind::End(ending),
            ipc: true,
            blocking: false,
        }
    }

    /// What `fd` of `pid` is, as our table knows it when strace names the same object there;
    /// otherwise just the object strace names (end and close-on-exec unknown).
    fn desc_of(&self, pid: Pid, fd: i32, object: Object) -> Desc {
        self.live
            .get(&pid)
            .and_then(|t| t.get(&fd))
            .filter(|d| d.object == object)
            .cloned()
            .unwrap_or(Desc {
                object,
                end: None,
                cloexec: false,
            })
    }

    fn desc_text(&self, desc: &Desc) -> String {
        let name = self
            .names
            .get(&desc.object)
            .map(str::to_owned)
            .unwrap_or_else(|| desc.object.key());
        Described {
            name: &name,
            end: desc.end,
        }
        .to_string()
    }

    fn fd_text(&self, pid: Pid, fd: i32) -> String {
        match self.live.get(&pid).and_then(|t| t.get(&fd)) {
            Some(desc) => format!("fd {fd} ({})", self.desc_text(desc)),
            None => format!("fd {fd}"),
        }
    }

    fn is_ipc_desc(&self, desc: &Desc) -> bool {
        desc.object.is_ipc() || matches!(&desc.object, Object::Path(p) if self.fifos.contains(p))
    }

    fn call(&mut self, pid: Pid, tid: Pid, call: &Call) -> Option<Event> {
        let name = call.name.as_str();
        // What strace's -yy says each descriptor argument is: trust it over our bookkeeping.
        let usage_end = match name {
            "read" | "readv" | "recvfrom" | "recvmsg" => Some(End::Read),
            "write" | "writev" | "sendto" | "sendmsg" => Some(End::Write),
            _ => None,
        };
        let mut used = Vec::new();
        for (i, arg) in call.args.iter().enumerate() {
            if let Some((fd, object)) = decoded_fd(arg) {
                // Which end a read or write used, for a pipe whose creation the trace missed.
                let end_seen = match object {
                    Object::Pipe(_) if i == 0 => usage_end,
                    _ => None,
                };
                let known = self.live.get(&pid).and_then(|t| t.get(&fd)).cloned();
                let desc = match known {
                    Some(d) if d.object == object => Desc {
                        end: d.end.or(end_seen),
                        ..d
                    },
                    _ => Desc {
                        object,
                        end: end_seen,
                        cloexec: false,
                    },
                };
                used.push((fd, desc.clone()));
                self.set(pid, call.start, fd, Some(desc));
            }
        }
        let at = call.end.unwrap_or(call.start);
        let ok = call.result.value().is_some_and(|v| v >= 0);
        let mut ipc = ALWAYS_SHOWN.contains(&name) || used.iter().any(|(_, d)| self.is_ipc_desc(d));
        let fd_arg = |i: usize| call.args.get(i).and_then(|a| leading_int(a));
        let mut passed = Vec::new();
        let text;
        match name {
            "pipe" | "pipe2" | "socketpair" => {
                let list = call.args.get(if name == "socketpair" { 3 } else { 0 });
                let flags = call.args.get(1).map(String::as_str).unwrap_or("");
                let cloexec = flags.contains("O_CLOEXEC") || flags.contains("SOCK_CLOEXEC");
                let mut made = Vec::new();
                if ok {
                    let pair: Vec<(i32, Object)> = list
                        .map(|l| parse::split_args(l.trim_start_matches('[').trim_end_matches(']')))
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|a| decoded_fd(a))
                        .collect();
                    // strace shows a stream pair's peers only once they are connected to
                    // something it has seen: the second end is the first one's peer.
                    let mut pair = pair;
                    if let [(_, Object::Socket { inode: first, .. }), (_, Object::Socket { peer, .. })] =
                        pair.as_mut_slice()
                    {
                        peer.get_or_insert(*first);
                    }
                    for (k, (fd, object)) in pair.into_iter().enumerate() {
                        let end = match (&object, k) {
                            (Object::Pipe(_), 0) => Some(End::Read),
                            (Object::Pipe(_), _) => Some(End::Write),
                            _ => None,
                        };
                        let desc = Desc {
                            object,
                            end,
                            cloexec,
                        };
                        used.push((fd, desc.clone()));
                        self.set(pid, at, fd, Some(desc));
                        made.push(self.fd_text(pid, fd));
                    }
                }
                text = if ok {
                    format!("{name} → {}", made.join(", "))
                } else {
                    format!("{name} → {}", result_text(&call.result))
                };
            }
            "close_range" => {
                // close_range(first, last, flags): every descriptor in the range goes (unless
                // CLOSE_RANGE_CLOEXEC only marks them).
                let first = fd_arg(0).unwrap_or(i32::MAX);
                let last = call
                    .args
                    .get(1)
                    .and_then(|a| a.trim().parse::<u64>().ok())
                    .map_or(i32::MAX, |l| l.min(i32::MAX as u64) as i32);
                let only_mark = call.args.get(2).is_some_and(|f| f.contains("CLOEXEC"));
                if ok && !only_mark {
                    let closing: Vec<i32> = self
                        .live
                        .get(&pid)
                        .map(|t| {
                            t.keys()
                                .copied()
                                .filter(|fd| (first..=last).contains(fd))
                                .collect()
                        })
                        .unwrap_or_default();
                    for fd in closing {
                        self.set(pid, at, fd, None);
                    }
                }
                text = format!(
                    "close_range({}) → {}",
                    call.args.join(", "),
                    result_text(&call.result)
                );
            }
            "shutdown" => {
                let fd = fd_arg(0).unwrap_or(-1);
                let how = call.args.get(1).cloned().unwrap_or_default();
                text = format!(
                    "shutdown {} {how} → {}",
                    self.fd_text(pid, fd),
                    result_text(&call.result)
                );
            }
            "poll" | "ppoll" => {
                // `[{fd=3<pipe:[12]>, events=POLLIN}, …]`: the descriptors it waited on.
                let list = call.args.first().cloned().unwrap_or_default();
                let mut waited = Vec::new();
                for piece in list.split("fd=").skip(1) {
                    let arg = piece.split(", events").next().unwrap_or("");
                    if let Some((fd, object)) = decoded_fd(arg) {
                        let desc = self.desc_of(pid, fd, object);
                        ipc |= self.is_ipc_desc(&desc);
                        used.push((fd, desc));
                        waited.push(self.fd_text(pid, fd));
                    }
                }
                text = format!(
                    "{name} on {} → {}",
                    waited.join(", "),
                    result_text(&call.result)
                );
            }
            "close" => {
                let fd = fd_arg(0).unwrap_or(-1);
                text = format!("close {}", self.fd_text(pid, fd));
                if let Some(d) = self.live.get(&pid).and_then(|t| t.get(&fd)) {
                    ipc = self.is_ipc_desc(d);
                }
                self.set(pid, at, fd, None);
            }
            "dup" | "dup2" | "dup3" | "fcntl" => {
                let old = fd_arg(0).unwrap_or(-1);
                let cmd = call.args.get(1).map(String::as_str).unwrap_or("");
                let new = match name {
                    "dup" => call.result.value().map(|v| v as i32),
                    "fcntl" if cmd.starts_with("F_DUPFD") => call.result.value().map(|v| v as i32),
                    "fcntl" => None,
                    _ => call.args.get(1).and_then(|a| leading_int(a)),
                };
                let source = self.live.get(&pid).and_then(|t| t.get(&old)).cloned();
                text = match (name, new) {
                    ("fcntl", None) => {
                        if cmd == "F_SETFD" {
                            let on = call.args.get(2).is_some_and(|a| a.contains("FD_CLOEXEC"));
                            if let (true, Some(d)) = (ok, source.clone()) {
                                self.set(pid, at, old, Some(Desc { cloexec: on, ..d }));
                            }
                        }
                        // Queries (F_GETFD, F_GETFL) change nothing: not worth a row.
                        ipc &= !cmd.starts_with("F_GET");
                        format!(
                            "fcntl {} {}",
                            self.fd_text(pid, old),
                            call.args[1..].join(" ")
                        )
                    }
                    (_, Some(new)) => {
                        let text = format!("{name} {} onto fd {new}", self.fd_text(pid, old));
                        if ok {
                            let cloexec = call.args.iter().skip(2).any(|a| a.contains("CLOEXEC"))
                                || cmd == "F_DUPFD_CLOEXEC";
                            let desc = source
                                .map(|d| Desc { cloexec, ..d })
                                .or_else(|| returned_desc(&call.result, cloexec));
                            self.set(pid, at, new, desc);
                        }
                        text
                    }
                    (_, None) => format!(
                        "{name} {} → {}",
                        self.fd_text(pid, old),
                        result_text(&call.result)
                    ),
                };
            }
            "openat" | "open" | "socket" | "accept" | "accept4" | "eventfd2" | "mq_open"
            | "memfd_create" | "signalfd4" | "pidfd_open" | "epoll_create1" => {
                let path = call
                    .args
                    .iter()
                    .find(|a| a.starts_with('"'))
                    .map(|a| unquote(a));
                let flags = call
                    .args
                    .iter()
                    .skip(1)
                    .find(|a| a.contains("O_") || a.contains("SOCK_"));
                let cloexec = flags.is_some_and(|f| f.contains("CLOEXEC"));
                let is_fifo = path.as_ref().is_some_and(|p| {
                    self.fifos
                        .iter()
                        .any(|f| f.ends_with(p.as_str()) || p.ends_with(f.as_str()))
                });
                if ok {
                    if let Some(fd) = call.result.value() {
                        let mut desc = returned_desc(&call.result, cloexec).unwrap_or(Desc {
                            object: Object::Other(name.to_owned()),
                            end: None,
                            cloexec,
                        });
                        if is_fifo {
                            desc.end = match flags {
                                Some(f) if f.contains("O_WRONLY") => Some(End::Write),
                                Some(f) if f.contains("O_RDWR") => None,
                                _ => Some(End::Read),
                            };
                            if let Object::Path(p) = &desc.object {
                                if !self.fifos.contains(p) {
                                    self.fifos.push(p.clone());
                                }
                            }
                        }
                        ipc |= self.is_ipc_desc(&desc) || is_fifo;
                        self.set(pid, at, fd as i32, Some(desc));
                    }
                }
                let what = match (name, path) {
                    ("accept" | "accept4", _) => {
                        format!("on {}", self.fd_text(pid, fd_arg(0).unwrap_or(-1)))
                    }
                    (_, Some(p)) => super::fds::short_path(&p),
                    _ => call.args.first().cloned().unwrap_or_default(),
                };
                text = match call.result.value() {
                    Some(fd) if ok => format!("{name} {what} → {}", self.fd_text(pid, fd as i32)),
                    _ => format!("{name} {what} → {}", result_text(&call.result)),
                };
            }
            "mknod" | "mknodat" => {
                if let Some(path) = call.args.iter().find(|a| a.starts_with('"')) {
                    if call.args.iter().any(|a| a.contains("S_IFIFO")) {
                        self.fifos.push(unquote(path));
                    }
                }
                let path = call.args.iter().find(|a| a.starts_with('"'));
                let mode = call.args.iter().find_map(|a| a.strip_prefix("S_IFIFO|"));
                text = match (path, mode) {
                    (Some(path), Some(mode)) => format!(
                        "mkfifo {} (mode {mode}) → {}",
                        super::fds::short_path(&unquote(path)),
                        result_text(&call.result)
                    ),
                    _ => format!(
                        "{name}({}) → {}",
                        call.args.join(", "),
                        result_text(&call.result)
                    ),
                };
            }
            "read" | "readv" | "recvfrom" | "recvmsg" => {
                let fd = fd_arg(0).unwrap_or(-1);
                let got = match &call.result {
                    Outcome::Value { value: 0, .. } => "end of file".to_owned(),
                    Outcome::Value { value, .. } => bytes(*value),
                    Outcome::None => "never returned".to_owned(),
                    Outcome::Error { errno } if errno.starts_with("ERESTART") => {
                        "interrupted by a signal".to_owned()
                    }
                    other => result_text(other),
                };
                text = format!("{name} {} → {got}", self.fd_text(pid, fd));
                if name == "recvmsg" && ok {
                    // The kernel installed copies of the sender's descriptors in this process.
                    let cloexec = call.args.iter().any(|a| a.contains("MSG_CMSG_CLOEXEC"));
                    for (new_fd, object) in call.args.get(1).map(|a| rights(a)).unwrap_or_default()
                    {
                        let end = self.sent_ends.get(&object).copied().flatten();
                        let desc = Desc {
                            object,
                            end,
                            cloexec,
                        };
                        self.set(pid, at, new_fd, Some(desc.clone()));
                        passed.push((new_fd, desc));
                    }
                }
            }
            "write" | "writev" | "sendto" | "sendmsg" => {
                let fd = fd_arg(0).unwrap_or(-1);
                let asked = call.args.get(2).and_then(|a| leading_int(a));
                let sent = match (&call.result, asked) {
                    (Outcome::Value { value, .. }, Some(n)) if *value as i32 != n => {
                        format!("{value} of {n} bytes")
                    }
                    (Outcome::Value { value, .. }, _) => bytes(*value),
                    (Outcome::None, _) => "never returned".to_owned(),
                    (other, _) => result_text(other),
                };
                text = format!("{name} to {} → {sent}", self.fd_text(pid, fd));
                if name == "sendmsg" {
                    for (sent_fd, object) in call.args.get(1).map(|a| rights(a)).unwrap_or_default()
                    {
                        let desc = self.desc_of(pid, sent_fd, object);
                        self.sent_ends.insert(desc.object.clone(), desc.end);
                        passed.push((sent_fd, desc));
                    }
                }
            }
            "clone" | "clone3" | "fork" | "vfork" => {
                let child = call.result.value().filter(|v| *v > 0).map(|v| v as Pid);
                let thread = call.args.iter().any(|a| a.contains("CLONE_THREAD"));
                return match child {
                    Some(child) if !thread => {
                        self.process_of(child, call.start);
                        Some(Event {
                            pid,
                            tid,
                            start: call.start,
                            end: call.end,
                            text: format!("{name} → child {child}"),
                            kind: Kind::Spawn { child },
                            ipc: true,
                            blocking: false,
                        })
                    }
                    Some(child) => {
                        self.process_of(child, call.start);
                        None
                    }
                    None => None,
                };
            }
            "execve" => {
                let path = call.args.first().map(|a| unquote(a)).unwrap_or_default();
                if ok {
                    let closing: Vec<i32> = self
                        .live
                        .get(&pid)
                        .map(|t| {
                            t.iter()
                                .filter(|(_, d)| d.cloexec)
                                .map(|(fd, _)| *fd)
                                .collect()
                        })
                        .unwrap_or_default();
                    for fd in closing {
                        self.set(pid, at, fd, None);
                    }
                    self.proc_mut(pid).programs.push(path.clone());
                }
                // A test binary's path is long and says little: its file name is enough.
                let shown = match path.rsplit_once('/') {
                    Some((_, file)) if path.len() > 32 => format!("…/{file}"),
                    _ => path.clone(),
                };
                text = format!("execve {shown} → {}", result_text(&call.result));
            }
            "wait4" | "waitid" => {
                let nowait = call.args.iter().any(|a| a.contains("WNOWAIT"));
                let reaped = match name {
                    "wait4" => call.result.value().filter(|v| *v > 0).map(|v| v as Pid),
                    _ if ok => call.args.get(2).and_then(|info| {
                        let at = info.find("si_pid=")? + "si_pid=".len();
                        leading_int(&info[at..])
                    }),
                    _ => None,
                };
                let target = call.args.first().cloned().unwrap_or_default();
                text = match reaped {
                    Some(child) if nowait => {
                        format!("{name}({target}) → {child} has ended (WNOWAIT: not reaped)")
                    }
                    Some(child) => {
                        if let Some(p) = self.processes.iter_mut().find(|p| p.pid == child) {
                            p.reaped = Some((pid, at));
                        }
                        format!("{name}({target}) → reaped {child}")
                    }
                    None => format!("{name}({target}) → {}", result_text(&call.result)),
                };
            }
            "rt_sigaction" => {
                let signal = call.args.first().cloned().unwrap_or_default();
                let new = call.args.get(1).cloned().unwrap_or_default();
                let handler = new
                    .split_once("sa_handler=")
                    .map(|(_, h)| h.split([',', '}']).next().unwrap_or("").to_owned());
                if let (true, "SIGCHLD", Some(h)) = (ok, signal.as_str(), &handler) {
                    let installed = h != "SIG_DFL" && h != "SIG_IGN";
                    let process = self.proc_mut(pid);
                    if installed {
                        process.sigchld_handler = Some(at);
                        process.sigchld_handler_until = None;
                    } else if process.sigchld_handler.is_some() {
                        process.sigchld_handler_until = Some(at);
                    }
                }
                // The runtime's own crash handlers say nothing about the student's code.
                // The runtime's own crash handlers and glibc's real-time signals for its threads
                // say nothing about the student's code.
                ipc = handler.is_some()
                    && !matches!(signal.as_str(), "SIGSEGV" | "SIGBUS")
                    && !signal.starts_with("SIGRT");
                text = match handler {
                    Some(h) => format!("sigaction {signal} → handler {h}"),
                    None => format!("sigaction {signal} (query)"),
                };
            }
            "rt_sigprocmask" => {
                let how = call.args.first().cloned().unwrap_or_default();
                let set = call.args.get(1).cloned().unwrap_or_default();
                // glibc blocks every signal around fork and spawn: not the student's doing.
                let noise = set == "NULL"
                    || set.starts_with("~[")
                    || set.contains("RTMIN")
                    || (how == "SIG_SETMASK" && set == "[]");
                ipc = !noise;
                text = format!("sigprocmask {how} {set}");
            }
            "bind" | "connect" | "listen" => {
                let fd = fd_arg(0).unwrap_or(-1);
                let address = call.args.get(1).and_then(|a| socket_address(a));
                text = match (name, address) {
                    ("listen", _) => format!(
                        "listen on {} → {}",
                        self.fd_text(pid, fd),
                        result_text(&call.result)
                    ),
                    (_, Some(address)) => format!(
                        "{name} {} {} {address} → {}",
                        self.fd_text(pid, fd),
                        if name == "bind" { "to" } else { "with" },
                        result_text(&call.result)
                    ),
                    _ => format!(
                        "{name} {} → {}",
                        self.fd_text(pid, fd),
                        result_text(&call.result)
                    ),
                };
            }
            "semop" | "semtimedop" => {
                // `[{sem_num=0, sem_op=-1, sem_flg=0}]` → `sem 0 -1`.
                let ops: Vec<String> = call
                    .args
                    .get(1)
                    .map(|list| {
                        list.split('{')
                            .skip(1)
                            .map(|op| {
                                let field = |key: &str| {
                                    op.split([',', '}'])
                                        .find_map(|f| f.trim().strip_prefix(key))
                                        .unwrap_or("?")
                                        .to_owned()
                                };
                                let flags = field("sem_flg=");
                                let flags = if flags == "0" {
                                    String::new()
                                } else {
                                    format!(" ({flags})")
                                };
                                format!("sem {} {:+}{flags}", field("sem_num="), {
                                    field("sem_op=").parse::<i64>().unwrap_or(0)
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let set = call.args.first().cloned().unwrap_or_default();
                text = format!(
                    "{name} on set {set}: {} → {}",
                    ops.join(", "),
                    result_text(&call.result)
                );
            }
            _ => {
                let args: Vec<String> = call.args.iter().map(|a| short(a, 28)).collect();
                text = format!(
                    "{name}({}) → {}",
                    args.join(", "),
                    result_text(&call.result)
                );
            }
        }
        let text = if passed.is_empty() {
            text
        } else {
            let verb = if name == "sendmsg" {
                "passing"
            } else {
                "receiving"
            };
            let list: Vec<String> = passed
                .iter()
                .map(|(fd, d)| format!("fd {fd} ({})", self.desc_text(d)))
                .collect();
            ipc = true;
            format!("{text}, {verb} {}", list.join(", "))
        };
        let blocking = BLOCKING.contains(&name)
            && match call.end {
                None => !matches!(name, "exit_group"),
                Some(end) => end - call.start >= BLOCKED_MIN,
            };
        // A call too short to draw as a span is a point in time. A call that waits for others
        // (a wait that reaps, a read that gets bytes) is placed when it returned, after what it
        // waited for; a call that acts (a write, a removal) when it began, before what it caused.
        let start = match call.end {
            Some(end) if !blocking && WAITING.contains(&name) => end,
            _ => call.start,
        };
        Some(Event {
            pid,
            tid,
            start,
            end: call.end,
            kind: Kind::Call {
                name: name.to_owned(),
                result: call.result.clone(),
                fds: used,
                passed,
            },
            text,
            ipc,
            blocking,
        })
    }
}

fn bytes(n: i64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

fn effect_time(record: &Record) -> Micros {
    match &record.what {
        What::Call(call) if SPAWNING.contains(&call.name.as_str()) => call.start,
        What::Call(call) => call.end.unwrap_or(call.start),
        _ => record.at,
    }
}

/// `{sa_family=AF_INET, sin_port=htons(5), sin_addr=inet_addr("127.0.0.1")}` → `127.0.0.1:5`;
/// `{sa_family=AF_UNIX, sun_path="/tmp/s"}` → `/tmp/s` (`@name` for an abstract one).
fn socket_address(arg: &str) -> Option<String> {
    let field = |key: &str| {
        let start = arg.find(key)? + key.len();
        let rest = &arg[start..];
        let end = rest.find([')', ',', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim_matches('"').to_owned())
    };
    if let Some(path) = field("sun_path=") {
        let path = path
            .strip_prefix('@')
            .map_or(path.clone(), |p| format!("@{p}"));
        return Some(super::fds::short_path(&path));
    }
    let port = field("sin6_port=htons(").or_else(|| field("sin_port=htons("))?;
    let host = field("inet_addr(\"")
        .or_else(|| field("inet_pton(AF_INET6, \""))
        .unwrap_or_default();
    Some(format!("{host}:{port}"))
}

/// The descriptors of every SCM_RIGHTS message in a `msghdr` as strace prints it:
/// `…cmsg_type=SCM_RIGHTS, cmsg_data=[4<pipe:[21647]>, 5<…>]…` → (4, pipe 21647), (5, …).
fn rights(msghdr: &str) -> Vec<(i32, Object)> {
    let mut found = Vec::new();
    let mut rest = msghdr;
    while let Some(i) = rest.find("cmsg_type=SCM_RIGHTS, cmsg_data=[") {
        rest = &rest[i + "cmsg_type=SCM_RIGHTS, cmsg_data=[".len()..];
        let Some(end) = rest.find("]}") else { break };
        found.extend(
            parse::split_args(&rest[..end])
                .iter()
                .filter_map(|a| decoded_fd(a.trim())),
        );
        rest = &rest[end..];
    }
    found
}

/// `3<pipe:[12]>` → (3, pipe 12).
fn decoded_fd(arg: &str) -> Option<(i32, Object)> {
    let open = arg.find('<')?;
    let fd: i32 = arg[..open].parse().ok()?;
    Some((fd, Object::decode(&decoding(&arg[open + 1..])?)))
}

/// `/tmp/x>` → `/tmp/x`; an unlinked file, `/tmp/x>(deleted)`, → `/tmp/x (deleted)`.
fn decoding(rest: &str) -> Option<String> {
    match rest.strip_suffix(">(deleted)") {
        Some(path) => Some(format!("{path} (deleted)")),
        None => rest.strip_suffix('>').map(str::to_owned),
    }
}

fn returned_desc(result: &Outcome, cloexec: bool) -> Option<Desc> {
    match result {
        Outcome::Value {
            decoded: Some(d), ..
        } => Some(Desc {
            object: Object::decode(d),
            end: None,
            cloexec,
        }),
        _ => None,
    }
}

fn leading_int(text: &str) -> Option<i32> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(text.len(), |(i, _)| i);
    text[..end].parse().ok()
}

fn unquote(text: &str) -> String {
    text.trim_end_matches("...").trim_matches('"').to_owned()
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

pub fn result_text(result: &Outcome) -> String {
    match result {
        Outcome::Value { value, .. } => value.to_string(),
        Outcome::Error { errno } => errno.clone(),
        Outcome::None => "never returned".to_owned(),
        Outcome::Other(text) => short(text, 24),
    }
}
