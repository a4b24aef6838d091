//! The walls around the process that runs the student's code.
//!
//! Modelled on what isolate, nsjail and bubblewrap do, with what the kernel gives without extra
//! tools, applied between fork and exec of the test process (so before any of its code runs):
//!
//! | protection | as root (CI, grading) | as a student (not root) |
//! |---|---|---|
//! | user | a uid and gid of its own, unique per test, not the grader's | the student's own |
//! | network | a namespace of its own with only loopback up | the host's |
//! | System V IPC | a namespace of its own | the host's |
//! | file system (Landlock) | system directories and the test binaries read-only, a scratch directory per test writable, nothing else visible (the course, its solutions, the suites) | the same |
//! | signals (Landlock scope) | cannot signal processes outside the test | the same |
//! | limits | processes (per uid), CPU time, file size, address space, no core files | CPU time, file size, address space, no core files |
//! | output | cut at [`OUTPUT_LIMIT`] by the judge | the same |
//! | lifetime | killed with its keeper, which outlives the judge and carries its own deadline | the same |
//!
//! What was in force is reported with every verdict ([`Protections`]), so that a grade obtained
//! without the walls says so.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Set to `off` in the judge's environment to run the test process without walls (for a
/// maintainer debugging the machinery; never in grading).
pub const SANDBOX_ENV: &str = "IPCLAB_SANDBOX";

/// What the judge keeps of a test's output (stdout and stderr together).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The first uid of the range from which each test gets one (plus the keeper's pid).
const UID_BASE: u32 = 1_000_000_000;

/// A run of many suites (`cargo xtask verify`, `grade`) may give its tests a range of uids of its
/// own, `[base, base + UID_SPAN)`, by setting this in their environment: its leftover checks then
/// tell its own tests' objects from those of other runs on the same machine.
pub const UID_BASE_ENV: &str = "IPCLAB_UID_BASE";

/// How many uids one run's range holds: one per possible pid.
pub const UID_SPAN: u32 = 1 << 22;

/// The uid range of the run with process id `run_pid` (see [`UID_BASE_ENV`]): one of 511 ranges
/// above the default one (tests run without a range of their own, by `cargo test` itself, take
/// the first), all below `u32::MAX`.
pub fn uid_base_for_run(run_pid: u32) -> u32 {
    UID_BASE + (run_pid % 511 + 1) * UID_SPAN
}

/// The range's first uid from the environment, if it is one [`uid_base_for_run`] gives.
fn uid_base() -> u32 {
    std::env::var(UID_BASE_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|b| {
            *b >= UID_BASE && (b - UID_BASE) % UID_SPAN == 0 && (b - UID_BASE) / UID_SPAN < 512
        })
        .unwrap_or(UID_BASE)
}

/// What the judge asks the keeper to apply to the test process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Policy {
    pub drop_user: bool,
    pub private_network: bool,
    pub private_ipc: bool,
    /// Set by the keeper once it made the namespace itself.
    #[serde(default)]
    pub private_ipc_done: bool,
    pub landlock: bool,
    /// Where the test may write (its TMPDIR and HOME).
    pub scratch: PathBuf,
    /// Read and execute, besides the system directories.
    pub readable: Vec<PathBuf>,
    pub cpu_seconds: u64,
}

/// What was in force for one test, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protections {
    pub uid: Option<u32>,
    pub private_network: bool,
    pub private_ipc: bool,
    /// The Landlock ABI version the kernel enforced (0: none).
    pub landlock_abi: i32,
    pub process_limit: Option<u64>,
    pub cpu_seconds: u64,
    pub file_size_limit: u64,
    pub memory_limit: u64,
    pub output_limit: usize,
}

impl Protections {
    /// One line for a person.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.uid {
            Some(uid) => parts.push(format!("own uid {uid}")),
            None => parts.push("the grader's own uid (NOT separated)".to_owned()),
        }
        parts.push(if self.private_network {
            "own network namespace (loopback only)".to_owned()
        } else {
            "host network (NOT separated)".to_owned()
        });
        parts.push(if self.private_ipc {
            "own System V IPC namespace".to_owned()
        } else {
            "host System V IPC".to_owned()
        });
        parts.push(if self.landlock_abi > 0 {
            format!(
                "Landlock ABI {} (course and solutions invisible)",
                self.landlock_abi
            )
        } else {
            "no Landlock (files NOT protected)".to_owned()
        });
        if let Some(n) = self.process_limit {
            parts.push(format!("at most {n} processes"));
        }
        parts.push(format!(
            "CPU {} s, files {} MiB, memory {} MiB, output {} KiB",
            self.cpu_seconds,
            self.file_size_limit >> 20,
            self.memory_limit >> 20,
            self.output_limit >> 10
        ));
        parts.join(", ")
    }

    /// True when every wall was up: the verdict can be trusted against a hostile submission.
    pub fn complete(&self) -> bool {
        self.uid.is_some() && self.private_network && self.private_ipc && self.landlock_abi > 0
    }
}

pub(crate) const FILE_SIZE_LIMIT: u64 = 256 << 20;
pub(crate) const MEMORY_LIMIT: u64 = 4 << 30;
pub(crate) const PROCESS_LIMIT: u64 = 512;

impl Policy {
    /// The walls this machine allows for a test with `deadline_secs`, writing into `scratch`.
    pub(crate) fn for_this_machine(scratch: &Path, deadline_secs: u64) -> Policy {
        let off = std::env::var(SANDBOX_ENV).as_deref() == Ok("off");
        let root = nix::unistd::geteuid().is_root();
        let exe = fs::read_link("/proc/self/exe").unwrap_or_default();
        let mut readable: Vec<PathBuf> = exe
            .ancestors()
            .skip(1)
            .take(2)
            .map(Path::to_path_buf)
            .collect();
        if let Some(extra) = std::env::var_os("IPCLAB_SANDBOX_READ") {
            readable.extend(std::env::split_paths(&extra));
        }
        Policy {
            drop_user: !off && root && full_uid_map() && reachable_by_others(&exe),
            private_network: !off && root,
            private_ipc: !off && root,
            private_ipc_done: false,
            landlock: !off,
            scratch: scratch.to_path_buf(),
            readable,
            cpu_seconds: deadline_secs * 2 + 10,
        }
    }

    /// The uid a test run by keeper `keeper_pid` gets: unique among running tests, since pids are.
    pub(crate) fn uid_for(keeper_pid: i32) -> u32 {
        uid_base() + keeper_pid as u32 % UID_SPAN
    }
}

/// Only with an identity mapping of every uid can a fresh uid be used (not in a container that
/// maps a small range).
fn full_uid_map() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// Another uid can run the test binaries only if every directory above them lets others pass.
fn reachable_by_others(exe: &Path) -> bool {
    exe.ancestors()
        .skip(1)
        .all(|dir| fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 != 0))
}

/// The system directories every test may read and execute.
const SYSTEM_READABLE: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/sys", "/opt",
];

/// A Landlock ruleset for `policy`, created before fork (it opens paths, which may allocate), to
/// be enforced in the child with [`enforce_landlock`].
pub(crate) fn landlock_ruleset(policy: &Policy) -> Option<landlock::RulesetCreated> {
    use landlock::{
        path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
    };
    if !policy.landlock {
        return None;
    }
    let abi = ABI::V6;
    let existing = |paths: Vec<PathBuf>| -> Vec<PathBuf> {
        paths.into_iter().filter(|p| p.exists()).collect()
    };
    let readable = existing(
        SYSTEM_READABLE
            .iter()
            .map(PathBuf::from)
            .chain(policy.readable.iter().cloned())
            .collect(),
    );
    // The message-queue mount needs a rule of its own: queues are reached through the IPC
    // namespace's internal mount, whose walk up ends at this file system's root, not at scratch.
    let writable = existing(vec![
        policy.scratch.clone(),
        policy.scratch.join(".mqueue"),
        PathBuf::from("/dev"),
    ]);
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .ok()?
        .scope(Scope::Signal)
        .ok()?
        .create()
        .ok()?
        .add_rules(path_beneath_rules(&readable, AccessFs::from_read(abi)))
        .ok()?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        .ok()
}

/// The Landlock ABI the kernel offers (0: none).
pub(crate) fn landlock_abi() -> i32 {
    // SAFETY: with a null attribute and LANDLOCK_CREATE_RULESET_VERSION the call only returns
    // the ABI version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// Gives the calling thread (and the processes it then starts) an IPC namespace of its own,
/// and mounts that namespace's POSIX message queue file system at `scratch/.mqueue` in a mount
/// namespace of its own. `mq_open` reaches queues through the namespace's internal mount of that
/// file system, which Landlock would refuse as lying beneath no rule; with this mount, the rule
/// that opens the scratch directory covers its root too. As root only.
pub(crate) fn private_ipc_with_mqueue(scratch: &Path) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    let at = scratch.join(".mqueue");
    fs::create_dir_all(&at)?;
    mount(
        Some("mqueue"),
        &at,
        Some("mqueue"),
        MsFlags::empty(),
        None::<&str>,
    )?;
    Ok(())
}

/// Brings the loopback interface up in a fresh network namespace (it starts down). Only system
/// calls: safe between fork and exec.
pub(crate) fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket and two ioctls on a zeroed ifreq naming "lo".
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut result = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(sock);
        if result < 0 {
            return Err(err);
        }
    }
    Ok(())
}

/// Sets one resource limit (soft and hard). Only a system call.
pub(crate) fn limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Becomes `uid`/`gid` with no supplementary groups, for good. Only system calls.
pub(crate) fn become_user(uid: u32) -> std::io::Result<()> {
    // SAFETY: plain system calls with integer arguments and a null group list.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(uid, uid, uid) != 0
            || libc::setresuid(uid, uid, uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The scratch directory must belong to the test's uid for it to write there.
pub(crate) fn give_to(path: &Path, uid: u32) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    // SAFETY: chown reads a NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), uid, uid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Puts every signal back to its default action (between fork and exec; only `signal(2)`, which
/// is async-signal-safe). A disposition of SIG_IGN survives exec, so a grader started from a
/// background job (`cmd &` ignores SIGINT and SIGQUIT) or under `nohup` would otherwise hand its
/// tests processes that cannot be interrupted: every test starts from the same, default state.
pub(crate) fn default_signal_dispositions() {
    for signal in 1..libc::SIGRTMIN() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: SIG_DFL is always a valid disposition; a refused signal number changes nothing.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}
