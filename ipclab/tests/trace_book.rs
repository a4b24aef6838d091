//! The book's timelines (`book/src/images/trace/*.strace`, one per chapter, each a reference
//! solution passing one graded test): the committed pictures are what the tool draws from the
//! committed traces, and the model understands every system call those solutions make.
//!
//! Regenerate a picture after changing the drawing code:
//! `cargo ipclab trace --from book/src/images/trace/NAME.strace` (it writes NAME.svg beside it).
//! Record a trace anew: `cargo ipclab trace N TEST --solution`, then copy the `.strace` it names.

use std::path::{Path, PathBuf};

use ipclab::trace::model::{Kind, Role};
use ipclab::trace::view::View;
use ipclab::trace::{diagnose, svg, Options, Trace};

/// System calls the reference solutions make that the timeline leaves out on purpose: memory,
/// threads, time, files that are not IPC objects, and the loader's start-up. Every other call a
/// solution makes must be one the model draws (a new one fails the test below: decide which).
const NOT_DRAWN: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "clock_gettime",
    "clock_nanosleep",
    "exit",
    "exit_group",
    "faccessat2",
    "fstat",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "newfstatat",
    "prctl",
    "pread64",
    "prlimit64",
    "rseq",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "sigaltstack",
    "statx",
    "sysinfo",
    "uname",
    "unlink",
    "unlinkat",
    "chdir",
    "chown",
    "fadvise64",
    "fchmodat",
    "ftruncate",
    "getpeername",
    "getsockname",
    "link",
    "mkdir",
    "pwrite64",
    "readlink",
    "restart_syscall",
    "setsockopt",
    "stat",
    "statfs",
    "symlink",
    "umask",
    "epoll_ctl",
];

/// Calls only the test harness makes (its walls, its deadline timers): never the student's code.
const HARNESS_ONLY: &[&str] = &[
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "mount",
    "setgroups",
    "setns",
    "setresgid",
    "setresuid",
    "timer_create",
    "timer_delete",
    "timer_settime",
    "unshare",
];

fn book_traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../book/src/images/trace");
    let mut traces: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "strace"))
        .collect();
    traces.sort();
    assert!(
        traces.len() >= 9,
        "every exercise's chapter shows a timeline: found {} traces in {}",
        traces.len(),
        dir.display()
    );
    traces
}

fn load(path: &Path) -> Trace {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Trace::from_strace(
        &text,
        Options {
            first_is_harness: true,
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_committed_picture_is_what_its_trace_draws() {
    for trace_file in book_traces() {
        let trace = load(&trace_file);
        let text = std::fs::read_to_string(&trace_file).expect("read above");
        let title = ipclab::trace::command::recorded_test(&text).unwrap_or_else(|| {
            trace_file
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        });
        let drawn = svg::render(&View::new(&trace, false), &diagnose(&trace), &title).to_string();
        let svg_file = trace_file.with_extension("svg");
        let committed = std::fs::read_to_string(&svg_file)
            .unwrap_or_else(|e| panic!("{}: {e}", svg_file.display()));
        assert!(
            drawn.trim_end() == committed.trim_end(),
            "{} is not what {} draws now: regenerate it with \
             `cargo ipclab trace --from book/src/images/trace/{}` and look at it",
            svg_file.display(),
            trace_file.display(),
            trace_file.file_name().unwrap().to_string_lossy()
        );
    }
}

#[test]
fn each_picture_shows_the_students_side_and_hides_the_harness() {
    for trace_file in book_traces() {
        let trace = load(&trace_file);
        let isolated = trace
            .processes
            .iter()
            .filter(|p| p.role == Role::Isolated)
            .count();
        assert_eq!(
            isolated,
            1,
            "{}: one test process runs the solution",
            trace_file.display()
        );
        let view = View::new(&trace, false);
        assert!(
            view.lanes.iter().all(|l| !l.harness),
            "{}: no harness lane is shown by default",
            trace_file.display()
        );
        let texts: Vec<&str> = view
            .rows
            .iter()
            .filter_map(|r| match r {
                ipclab::trace::view::Row::Event(i) => Some(trace.events[*i].text.as_str()),
                _ => None,
            })
            .collect();
        assert!(
            texts.iter().all(|t| !t.contains("harness")),
            "{}: the judge's checkpoints and the keeper's pipes are not shown: {:?}",
            trace_file.display(),
            texts
                .iter()
                .filter(|t| t.contains("harness"))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_system_call_of_the_reference_solutions_is_drawn_or_left_out_on_purpose() {
    let mut unknown = Vec::new();
    for trace_file in book_traces() {
        let trace = load(&trace_file);
        for event in &trace.events {
            let Kind::Call { name, .. } = &event.kind else {
                continue;
            };
            let code = trace
                .process(event.pid)
                .is_some_and(|p| p.role != Role::Harness);
            let modelled = event.ipc || ipclab::trace::model::is_modelled(name);
            if code && !modelled && !NOT_DRAWN.contains(&name.as_str()) {
                unknown.push(format!("{name} ({})", trace_file.display()));
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "system calls the timeline neither draws nor lists in NOT_DRAWN: {unknown:?}"
    );
}

#[test]
fn every_system_call_made_while_the_nine_solutions_pass_is_understood() {
    let list = include_str!("fixtures/strace/solution-syscalls.txt");
    let unknown: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter(|name| {
            !ipclab::trace::model::is_modelled(name)
                && !NOT_DRAWN.contains(name)
                && !HARNESS_ONLY.contains(name)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "system calls of the reference solutions' runs that the timeline neither draws nor \
         lists in NOT_DRAWN or HARNESS_ONLY: {unknown:?}"
    );
}
