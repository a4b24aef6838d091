//! What both pictures show, decided once: which processes get a lane, which events a row, and
//! what each lane is doing on each row. Time runs down, one row per event, so a process's
//! calls stay readable however close together they were; long pauses get a row of their own.

use super::fds::Object;
use super::model::{Event, Kind, Pid, Role, Trace};
use super::parse::{Micros, Outcome};

/// A pause longer than this between two rows is shown as its own row ("1.000 s later").
pub const GAP: Micros = 50_000;

#[derive(Debug, Clone)]
pub struct Lane {
    pub pid: Pid,
    /// `P1`, `P2`, … in the order the processes appeared.
    pub short: String,
    /// `9388, the test`, `9389, child of P1, runs tr`.
    pub label: String,
    pub harness: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Row {
    /// An index into `Trace::events`.
    Event(usize),
    /// Nothing shown happened for this long.
    Gap(Micros),
}

/// What a lane shows on a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Not started yet, or over.
    Absent,
    Running,
    /// Asleep in a blocking call.
    Asleep,
    /// This row's event is on this lane.
    Here,
}

#[derive(Debug, Clone)]
pub struct View<'a> {
    pub trace: &'a Trace,
    pub lanes: Vec<Lane>,
    pub rows: Vec<Row>,
    /// Time zero of the pictures: the first shown event.
    pub origin: Micros,
}

impl<'a> View<'a> {
    /// `harness`: give the test harness lanes too (drawn dimmed).
    pub fn new(trace: &'a Trace, harness: bool) -> View<'a> {
        let shown: Vec<&super::model::Process> = trace
            .processes
            .iter()
            .filter(|p| harness || p.role != Role::Harness)
            .collect();
        let short = |pid: Pid| {
            shown
                .iter()
                .position(|p| p.pid == pid)
                .map(|i| format!("P{}", i + 1))
        };
        let lanes: Vec<Lane> = shown
            .iter()
            .map(|p| {
                let mut label = p.pid.to_string();
                match p.role {
                    Role::Harness => label.push_str(", the test harness"),
                    Role::Isolated => label.push_str(", the test"),
                    Role::Code => {
                        if let Some(parent) = p.parent.and_then(short) {
                            label.push_str(&format!(", child of {parent}"));
                        }
                    }
                }
                let own = p.role == Role::Code || p.programs.len() > 1;
                if let (true, Some(program)) = (own, p.program()) {
                    label.push_str(&format!(", runs {program}"));
                }
                Lane {
                    pid: p.pid,
                    short: short(p.pid).unwrap_or_default(),
                    label,
                    harness: p.role == Role::Harness,
                }
            })
            .collect();
        let mut rows = Vec::new();
        let mut last: Option<Micros> = None;
        let mut origin = None;
        // The isolated process runs the student's code only once it executed the test binary:
        // before that it is the harness's spawning code.
        let exec_of = |pid: Pid| {
            trace
                .events
                .iter()
                .find(|e| e.pid == pid && e.call_name() == Some("execve") && e.end.is_some())
                .map(|e| e.start)
        };
        let code_from: Vec<(Pid, Micros)> = trace
            .processes
            .iter()
            .filter(|p| p.role == Role::Isolated)
            .filter_map(|p| Some((p.pid, exec_of(p.pid)?)))
            .collect();
        // What the test process inherited beyond stdin, stdout and stderr when it executed the
        // test binary (the judge's checkpoint socket, the keeper's report pipe) is the harness's;
        // so is every use of it, also in children the student's code forked.
        // Descriptors the harness passes over them (the reply pipe of a checkpoint) are too.
        let mut harness_objects: Vec<Object> = code_from
            .iter()
            .flat_map(|(pid, at)| trace.table_at(*pid, *at))
            .filter(|(fd, _)| *fd > 2)
            .map(|(_, desc)| desc.object)
            .collect();
        let harness_made = |object: &Object| {
            trace
                .names
                .get(object)
                .is_some_and(|name| name.starts_with("harness "))
        };
        let on_harness_objects = |objects: &[Object], event: &Event| match &event.kind {
            Kind::Call { fds, .. } => {
                !fds.is_empty()
                    && fds
                        .iter()
                        .all(|(_, d)| objects.contains(&d.object) || harness_made(&d.object))
            }
            _ => false,
        };
        for event in &trace.events {
            if let Kind::Call { passed, .. } = &event.kind {
                if on_harness_objects(&harness_objects, event) {
                    harness_objects.extend(passed.iter().map(|(_, d)| d.object.clone()));
                }
            }
        }
        let on_harness_objects = |event: &Event| on_harness_objects(&harness_objects, event);
        for (i, event) in trace.events.iter().enumerate() {
            if !event.ipc || !lanes.iter().any(|l| l.pid == event.pid) {
                continue;
            }
            if on_harness_objects(event) && !harness {
                continue;
            }
            // execvp tries each directory of PATH in turn: the misses before the program that
            // ran say nothing (a program that never ran keeps them all).
            let missed_exec = event.call_name() == Some("execve")
                && matches!(&event.kind, Kind::Call { result: Outcome::Error { errno }, .. } if errno == "ENOENT")
                && trace.events.iter().any(|e| {
                    e.pid == event.pid
                        && e.start > event.start
                        && e.call_name() == Some("execve")
                        && matches!(
                            &e.kind,
                            Kind::Call {
                                result: Outcome::Value { .. },
                                ..
                            }
                        )
                });
            if missed_exec {
                continue;
            }
            let before_exec = code_from
                .iter()
                .any(|(pid, at)| *pid == event.pid && event.start < *at);
            if before_exec && !harness {
                continue;
            }
            // Between fork and exec, spawning code resets every signal to its default: a wall of
            // rows that says nothing about the program (a student's dup2 there stays shown).
            let reset_before_exec = event.call_name() == Some("rt_sigaction")
                && event.text.ends_with("SIG_DFL")
                && exec_of(event.pid).is_some_and(|at| event.start < at);
            if reset_before_exec {
                continue;
            }
            if let Some(last) = last {
                if event.start.saturating_sub(last) > GAP {
                    rows.push(Row::Gap(event.start - last));
                }
            }
            origin.get_or_insert(event.start);
            last = Some(event.start);
            rows.push(Row::Event(i));
        }
        View {
            trace,
            lanes,
            rows,
            origin: origin.unwrap_or(trace.start),
        }
    }

    pub fn lane_of(&self, pid: Pid) -> Option<usize> {
        self.lanes.iter().position(|l| l.pid == pid)
    }

    pub fn event(&self, row: Row) -> Option<&'a Event> {
        match row {
            Row::Event(i) => self.trace.events.get(i),
            Row::Gap(_) => None,
        }
    }

    /// The time a row stands for.
    pub fn time(&self, index: usize) -> Micros {
        match self.rows[index] {
            Row::Event(i) => self.trace.events[i].start,
            // A gap row stands for the quiet time just before the next row.
            Row::Gap(_) => self.time(index + 1).saturating_sub(1),
        }
    }

    /// What lane `lane` shows on row `index`.
    pub fn cell(&self, lane: usize, index: usize) -> Cell {
        let pid = self.lanes[lane].pid;
        if let Some(event) = self.event(self.rows[index]) {
            if event.pid == pid {
                return Cell::Here;
            }
        }
        let t = self.time(index);
        let Some(process) = self.trace.process(pid) else {
            return Cell::Absent;
        };
        let end = process.ended_at().unwrap_or(self.trace.end);
        if t < process.start || t > end {
            return Cell::Absent;
        }
        let asleep = self
            .trace
            .events
            .iter()
            .any(|e| e.pid == pid && e.blocking && e.start < t && t < e.end.unwrap_or(end));
        if asleep {
            Cell::Asleep
        } else {
            Cell::Running
        }
    }

    /// The lanes a spawn on this row connects: (parent lane, child lane).
    pub fn spawn(&self, index: usize) -> Option<(usize, usize)> {
        let event = self.event(self.rows[index])?;
        let Kind::Spawn { child } = event.kind else {
            return None;
        };
        Some((self.lane_of(event.pid)?, self.lane_of(child)?))
    }

    /// The row where a blocking event that starts on `index` ends (its return, or its process's
    /// end), as a row index: the last row at or before that time.
    pub fn span_end_row(&self, index: usize) -> Option<usize> {
        let event = self.event(self.rows[index]).filter(|e| e.blocking)?;
        let end = event.end.unwrap_or_else(|| {
            self.trace
                .process(event.pid)
                .and_then(|p| p.ended_at())
                .unwrap_or(self.trace.end)
        });
        (index..self.rows.len())
            .take_while(|&r| self.time(r) <= end)
            .last()
    }
}

/// `1.234 ms`, `1.000 s`.
pub fn duration(micros: Micros) -> String {
    if micros >= 1_000_000 {
        format!("{:.3} s", micros as f64 / 1e6)
    } else {
        format!("{:.3} ms", micros as f64 / 1e3)
    }
}

/// The note after a blocking event's text: how long the process slept in it.
pub fn asleep_note(trace: &Trace, event: &Event) -> Option<String> {
    if !event.blocking {
        return None;
    }
    Some(match event.end {
        Some(end) => format!("asleep {}", duration(end - event.start)),
        None => {
            let until = trace
                .process(event.pid)
                .and_then(|p| p.ended_at())
                .unwrap_or(trace.end);
            format!("asleep {} until it died", duration(until - event.start))
        }
    })
}
