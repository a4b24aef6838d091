//! The trace model, its diagnoses and its terminal picture, from strace outputs recorded from
//! known programs (`tests/fixtures/strace/record.sh` re-records them from `programs/`).

use ipclab::trace::model::{Ending, Role};
use ipclab::trace::view::View;
use ipclab::trace::{diagnose, term, Finding, Options, Trace};

fn load(name: &str, first_is_harness: bool) -> Trace {
    let path = format!(
        "{}/tests/fixtures/strace/{name}.strace",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Trace::from_strace(&text, Options { first_is_harness })
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The terminal picture without colours, pids replaced by their lane names' order.
fn picture(trace: &Trace) -> String {
    let text = term::render(&View::new(trace, false), &diagnose(trace));
    let mut text = anstream::adapter::strip_str(&text).to_string();
    let mut pids: Vec<i32> = trace.processes.iter().map(|p| p.pid).collect();
    // Longest first, so that 9485 is not replaced inside 94851.
    pids.sort_by_key(|p| std::cmp::Reverse(p.to_string().len()));
    for pid in pids {
        let n = trace.processes.iter().position(|p| p.pid == pid).unwrap();
        text = text.replace(&pid.to_string(), &format!("<pid{n}>"));
    }
    text
}

#[test]
fn a_reader_killed_at_the_deadline_is_blamed_on_the_forgotten_write_end() {
    let trace = load("forgotten_write_end", true);
    let roles: Vec<Role> = trace.processes.iter().map(|p| p.role).collect();
    assert_eq!(roles, [Role::Harness, Role::Isolated, Role::Code]);
    let (test, reader) = (&trace.processes[1], &trace.processes[2]);
    assert_eq!(reader.parent, Some(test.pid));
    assert!(matches!(&reader.end, Some((_, Ending::Killed(s))) if s == "SIGKILL"));
    // The harness is a subreaper: it reaps both, the test's own wait never returned.
    assert_eq!(
        reader.reaped.map(|(by, _)| by),
        Some(trace.processes[0].pid)
    );
    let findings: Vec<Finding> = diagnose(&trace).into_iter().map(|d| d.finding).collect();
    assert_eq!(
        findings,
        [Finding::ReaderWaitsForWriteEnd {
            reader: reader.pid,
            read_fd: 3,
            pipe: "pipe A".into(),
            holder: test.pid,
            holder_fd: 4,
        }]
    );
    // While the reader waits, the test still holds the write end; the reader does not.
    let blocked = trace
        .events
        .iter()
        .rfind(|e| e.pid == reader.pid && e.call_name() == Some("read"))
        .unwrap();
    assert!(blocked.blocking && blocked.end.is_none());
    let test_fds = trace.table_at(test.pid, blocked.start);
    assert_eq!(trace.describe(&test_fds[&4]), "pipe A, write end");
    assert!(!trace.table_at(reader.pid, blocked.start).contains_key(&4));
    insta::assert_snapshot!("forgotten_write_end", picture(&trace));
}

#[test]
fn a_child_nobody_waits_for_is_reported() {
    let trace = load("zombie", false);
    let child = &trace.processes[1];
    assert_eq!(child.reaped, None);
    let findings: Vec<Finding> = diagnose(&trace).into_iter().map(|d| d.finding).collect();
    assert_eq!(
        findings,
        [Finding::NeverWaited {
            pid: child.pid,
            parent: Some(trace.processes[0].pid)
        }]
    );
    insta::assert_snapshot!("zombie", picture(&trace));
}

#[test]
fn one_sigchld_for_three_exits_is_reported() {
    let trace = load("coalesced_sigchld", false);
    let parent = &trace.processes[0];
    assert!(parent.sigchld_handler.is_some());
    assert!(trace.processes[1..]
        .iter()
        .all(|c| c.reaped.map(|r| r.0) == Some(parent.pid)));
    let findings: Vec<Finding> = diagnose(&trace).into_iter().map(|d| d.finding).collect();
    assert_eq!(
        findings,
        [Finding::SigchldCoalesced {
            pid: parent.pid,
            delivered: 1,
            exits: 3
        }]
    );
    insta::assert_snapshot!("coalesced_sigchld", picture(&trace));
}

#[test]
fn a_shell_pipeline_connects_its_stages_through_two_pipes() {
    let trace = load("pipeline", false);
    let programs: Vec<Option<&str>> = trace.processes.iter().map(|p| p.program()).collect();
    assert_eq!(programs, [Some("sh"), None, Some("tr"), Some("wc")]);
    let tr = &trace.processes[2];
    // Just after its exec, tr reads pipe A on stdin and writes pipe B on stdout.
    let exec = trace
        .events
        .iter()
        .find(|e| e.pid == tr.pid && e.call_name() == Some("execve"))
        .unwrap();
    let table = trace.table_at(tr.pid, exec.end.unwrap());
    assert_eq!(trace.describe(&table[&0]), "pipe A, read end");
    assert_eq!(trace.describe(&table[&1]), "pipe B, write end");
    assert!(!table.contains_key(&3) && !table.contains_key(&4) && !table.contains_key(&5));
    assert!(diagnose(&trace).is_empty(), "{:?}", diagnose(&trace));
    insta::assert_snapshot!("pipeline", picture(&trace));
}

#[test]
fn a_write_into_a_pipe_without_readers_is_reported() {
    let trace = load("sigpipe", false);
    let yes = &trace.processes[1];
    assert!(matches!(&yes.end, Some((_, Ending::Killed(s))) if s == "SIGPIPE"));
    let findings: Vec<Finding> = diagnose(&trace).into_iter().map(|d| d.finding).collect();
    assert_eq!(
        findings,
        [Finding::BrokenPipe {
            pid: yes.pid,
            fd: 1,
            object: "pipe A, write end".into(),
            killed: true
        }]
    );
}

#[test]
fn a_graded_test_whose_parent_keeps_its_write_end_is_diagnosed() {
    // A real graded test (exercise 01, task 2) under the course's harness: the harness stops
    // the hung test with SIGSTOP at its deadline (the read returns ERESTARTSYS), then kills it.
    let trace = load("exercise01_parent_keeps_write_end", true);
    let roles: Vec<Role> = trace.processes.iter().map(|p| p.role).collect();
    assert_eq!(roles[..3], [Role::Harness, Role::Isolated, Role::Code]);
    let test = trace.processes[1].pid;
    let findings: Vec<Finding> = diagnose(&trace).into_iter().map(|d| d.finding).collect();
    assert_eq!(
        findings,
        [Finding::ReaderWaitsForWriteEnd {
            reader: test,
            read_fd: 3,
            pipe: "pipe A".into(),
            holder: test,
            holder_fd: 4,
        }]
    );
    insta::assert_snapshot!("exercise01_parent_keeps_write_end", picture(&trace));
}
