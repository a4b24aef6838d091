//! Findings the trace proves: each one is stated only when the records leave no doubt, and
//! names the process, the descriptor and what to change.

use std::fmt;

use super::fds::{End, Object};
use super::model::{Ending, Event, Kind, Pid, Role, Trace};
use super::parse::{Micros, Outcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `reader` slept in a read of `pipe` until it died, while `holder` kept a write end open.
    ReaderWaitsForWriteEnd {
        reader: Pid,
        read_fd: i32,
        pipe: String,
        holder: Pid,
        holder_fd: i32,
    },
    /// `pid` ended and no wait returned it.
    NeverWaited { pid: Pid, parent: Option<Pid> },
    /// `pid` had a SIGCHLD handler and got fewer SIGCHLDs than its children ended.
    SigchldCoalesced {
        pid: Pid,
        delivered: usize,
        exits: usize,
    },
    /// A write to `object` failed with EPIPE (`killed`: SIGPIPE ended the process).
    BrokenPipe {
        pid: Pid,
        fd: i32,
        object: String,
        killed: bool,
    },
}

/// A finding with the words that go with it.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub finding: Finding,
    /// When it shows, for the pictures.
    pub at: Micros,
    pub text: String,
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Every certain finding of `trace`, in the order they happened.
pub fn diagnose(trace: &Trace) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    waits_for_write_end(trace, &mut out);
    never_waited(trace, &mut out);
    sigchld_coalesced(trace, &mut out);
    broken_pipes(trace, &mut out);
    out.sort_by_key(|d| d.at);
    out
}

fn is_code(trace: &Trace, pid: Pid) -> bool {
    trace.process(pid).is_some_and(|p| p.role != Role::Harness)
}

fn waits_for_write_end(trace: &Trace, out: &mut Vec<Diagnosis>) {
    for event in &trace.events {
        let Kind::Call { name, fds, .. } = &event.kind else {
            continue;
        };
        if !matches!(name.as_str(), "read" | "readv") || !never_returned(trace, event) {
            continue;
        }
        let Some((read_fd, desc)) = fds.first() else {
            continue;
        };
        let Object::Pipe(_) = desc.object else {
            continue;
        };
        let Some(reader) = trace.process(event.pid) else {
            continue;
        };
        // Never returned: asleep until the reader died (or the trace ended).
        let until = reader.ended_at().unwrap_or(trace.end);
        let pipe = trace
            .names
            .get(&desc.object)
            .unwrap_or("the pipe")
            .to_owned();
        for holder in trace.code() {
            if holder.start > event.start {
                continue;
            }
            // A holder that ended on its own before the reader closed its write end then: EOF
            // could have come after that. Only a holder killed with the reader, or alive, counts.
            let voluntary_exit_before = matches!(
                &holder.end,
                Some((at, Ending::Exited(_))) if *at < until
            );
            if voluntary_exit_before {
                continue;
            }
            let last = holder
                .ended_at()
                .unwrap_or(until)
                .min(until)
                .saturating_sub(1);
            let before = trace.table_at(holder.pid, event.start);
            let after = trace.table_at(holder.pid, last);
            let held = before.iter().find(|(fd, d)| {
                d.object == desc.object
                    && d.end == Some(End::Write)
                    && after.get(fd).is_some_and(|a| a.object == desc.object)
            });
            if let Some((&holder_fd, _)) = held {
                let whom = if holder.pid == reader.pid {
                    "it".to_owned()
                } else {
                    trace.who(holder.pid)
                };
                let how = match &reader.end {
                    Some((_, Ending::Killed(signal))) => format!("until it was killed ({signal})"),
                    Some(_) => "until it ended".to_owned(),
                    None => "until the trace ended".to_owned(),
                };
                out.push(Diagnosis {
                    at: event.start,
                    text: format!(
                        "{} blocked in read(fd {read_fd}, {pipe}) {how}, while {whom} still held \
                         {pipe}'s write end (fd {holder_fd}): a reader sees end of file only once \
                         every write end is closed, so close it in each process that does not \
                         write (right after fork)",
                        trace.who(reader.pid)
                    ),
                    finding: Finding::ReaderWaitsForWriteEnd {
                        reader: reader.pid,
                        read_fd: *read_fd,
                        pipe: pipe.clone(),
                        holder: holder.pid,
                        holder_fd,
                    },
                });
            }
        }
    }
}

/// The read never gave the program an answer: the process died inside it, or it was interrupted
/// (by the harness's SIGSTOP before the kill at the deadline) and the process made no other call
/// before it was killed.
fn never_returned(trace: &Trace, read: &Event) -> bool {
    let Kind::Call { result, .. } = &read.kind else {
        return false;
    };
    if read.end.is_none() {
        return true;
    }
    let interrupted = result.errno().is_some_and(|e| e.starts_with("ERESTART"));
    let killed = trace
        .process(read.pid)
        .is_some_and(|p| matches!(p.end, Some((_, Ending::Killed(_)))));
    let later_call = trace
        .events
        .iter()
        .any(|e| e.pid == read.pid && e.start > read.start && matches!(e.kind, Kind::Call { .. }));
    interrupted && killed && !later_call
}

fn never_waited(trace: &Trace, out: &mut Vec<Diagnosis>) {
    for p in trace.code() {
        // The first process of a plain trace is strace's own child: strace reaps it.
        if p.parent.is_none() {
            continue;
        }
        let Some(ended) = p.ended_at() else {
            continue;
        };
        if p.reaped.is_some() {
            continue;
        }
        let parent = p.parent;
        let fate = match parent
            .and_then(|pp| trace.process(pp))
            .and_then(|pp| pp.ended_at())
        {
            Some(_) => "it stayed a zombie until its parent ended",
            None => "it stayed a zombie",
        };
        out.push(Diagnosis {
            at: ended,
            text: format!(
                "{} ended and was never waited for: {fate} (call waitpid for every child you fork)",
                trace.who(p.pid)
            ),
            finding: Finding::NeverWaited { pid: p.pid, parent },
        });
    }
}

fn sigchld_coalesced(trace: &Trace, out: &mut Vec<Diagnosis>) {
    for p in trace.code() {
        let Some(since) = p.sigchld_handler else {
            continue;
        };
        let until = p
            .sigchld_handler_until
            .or(p.ended_at())
            .unwrap_or(trace.end);
        let exits = trace
            .processes
            .iter()
            .filter(|c| c.parent == Some(p.pid))
            .filter(|c| c.ended_at().is_some_and(|at| at >= since && at <= until))
            .count();
        let delivered = trace
            .events
            .iter()
            .filter(|e| e.pid == p.pid && e.start >= since)
            .filter(|e| matches!(&e.kind, Kind::Signal { signal, .. } if signal == "SIGCHLD"))
            .count();
        let reaped_all = trace
            .processes
            .iter()
            .filter(|c| c.parent == Some(p.pid) && c.ended_at().is_some())
            .all(|c| c.reaped.is_some_and(|(by, _)| by == p.pid));
        if delivered < exits {
            let text = if reaped_all {
                format!(
                    "SIGCHLD was delivered {} for {exits} exits of {}'s children (standard \
                     signals do not queue), and all {exits} were reaped: a SIGCHLD handler must \
                     reap in a loop (waitpid(-1, WNOHANG) until none is left), never once per \
                     signal",
                    times(delivered),
                    trace.who(p.pid)
                )
            } else {
                format!(
                    "SIGCHLD was delivered {} for {exits} exits of {}'s children: standard signals \
                     do not queue, so a handler must reap in a loop (waitpid(-1, WNOHANG) until \
                     it finds no more)",
                    times(delivered),
                    trace.who(p.pid)
                )
            };
            out.push(Diagnosis {
                at: until,
                text,
                finding: Finding::SigchldCoalesced {
                    pid: p.pid,
                    delivered,
                    exits,
                },
            });
        }
    }
}

fn times(n: usize) -> String {
    match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

fn broken_pipes(trace: &Trace, out: &mut Vec<Diagnosis>) {
    for event in trace.events.iter().filter(|e| is_code(trace, e.pid)) {
        let Kind::Call {
            name, result, fds, ..
        } = &event.kind
        else {
            continue;
        };
        if !matches!(result, Outcome::Error { errno } if errno == "EPIPE") {
            continue;
        }
        let (fd, object) = match fds.first() {
            Some((fd, desc)) => (*fd, trace.describe(desc)),
            None => (-1, "a pipe or socket".to_owned()),
        };
        let killed = trace
            .process(event.pid)
            .is_some_and(|p| matches!(&p.end, Some((_, Ending::Killed(s))) if s == "SIGPIPE"));
        out.push(Diagnosis {
            at: event.start,
            text: format!(
                "{}'s {name} to fd {fd} ({object}) failed with EPIPE{}: no process held the \
                 reading end any more (the reader had closed it or ended)",
                trace.who(event.pid),
                if killed {
                    ", and SIGPIPE killed it"
                } else {
                    ""
                }
            ),
            finding: Finding::BrokenPipe {
                pid: event.pid,
                fd,
                object,
                killed,
            },
        });
    }
}
