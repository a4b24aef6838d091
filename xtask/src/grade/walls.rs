//! The walls around a submission's build (and the run of its tests' judges): Landlock lets
//! `cargo` and `rustc` read the grading copy, the toolchain, the dependency cache and the system,
//! and write only the target directory and the run's own temporary directory. So
//! `include_str!("/path/to/course/solutions/…")` or `#[path = …] mod` fail to compile: the course
//! that holds the solutions is not visible. (The test processes get walls of their own on top,
//! from the suites' support crate.)
//!
//! Applied by re-running this very binary as `xtask sandbox-exec …`, which restricts itself and
//! then becomes the command: Landlock restricts the calling thread, so it is set up in a fresh,
//! single-threaded process rather than between fork and exec of a multi-threaded one.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use landlock::{
    path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    ABI,
};

/// What a build may read (and execute), besides the system directories.
pub struct Walls {
    pub readable: Vec<PathBuf>,
    pub writable: Vec<PathBuf>,
}

const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/proc", "/sys", "/opt",
];

impl Walls {
    /// For a build of `copy` into `target`, with `tmp` as its TMPDIR.
    pub fn for_build(copy: PathBuf, target: PathBuf, tmp: PathBuf) -> Walls {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".rustup"));
        Walls {
            readable: vec![copy, rustup_home],
            // cargo takes its package cache lock even offline.
            writable: vec![target, tmp, cargo_home],
        }
    }

    /// The command line that runs `program args…` behind these walls.
    pub fn wrap(&self) -> Vec<OsString> {
        let exe = std::env::current_exe().unwrap_or_else(|_| "xtask".into());
        let mut line: Vec<OsString> = vec![exe.into(), "sandbox-exec".into()];
        for r in &self.readable {
            line.push("--read".into());
            line.push(r.into());
        }
        for w in &self.writable {
            line.push("--write".into());
            line.push(w.into());
        }
        line.push("--".into());
        line
    }
}

/// `xtask sandbox-exec [--read DIR]… [--write DIR]… -- PROGRAM ARGS…`: restricts itself, then
/// becomes PROGRAM. Fails (exit 125) rather than run PROGRAM without walls it was asked for, unless
/// the kernel has no Landlock at all, which it says on stderr.
pub fn main(args: &[String]) -> ExitCode {
    let mut readable: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
    // /dev/null, /dev/ptmx and the terminals: the tests' processes write there.
    let mut writable = vec![PathBuf::from("/dev")];
    let mut it = args.iter();
    let mut program = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--read" => readable.extend(it.next().map(PathBuf::from)),
            "--write" => writable.extend(it.next().map(PathBuf::from)),
            "--" => {
                program = it.by_ref().cloned().collect();
                break;
            }
            other => {
                eprintln!("xtask sandbox-exec: unknown option {other}");
                return ExitCode::from(125);
            }
        }
    }
    let Some((name, rest)) = program.split_first() else {
        eprintln!("xtask sandbox-exec: which program? (after --)");
        return ExitCode::from(125);
    };
    let abi = ABI::V5;
    let existing = |v: Vec<PathBuf>| v.into_iter().filter(|p| p.exists()).collect::<Vec<_>>();
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.create())
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                existing(readable),
                AccessFs::from_read(abi),
            ))
        })
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                existing(writable),
                AccessFs::from_all(abi),
            ))
        })
        .and_then(|r| r.restrict_self());
    match status {
        Ok(s) if s.ruleset == RulesetStatus::NotEnforced => {
            eprintln!("xtask: WARNING: this kernel has no Landlock: the build runs without walls");
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!("xtask sandbox-exec: cannot set up the walls: {e}");
            return ExitCode::from(125);
        }
    }
    let error = Command::new(name).args(rest).exec();
    eprintln!("xtask sandbox-exec: cannot run {name}: {error}");
    ExitCode::from(125)
}
