//! The timeline for a terminal (an SSH session has no browser): one row per event, one narrow
//! column per process, like `git log --graph`. Styles are ANSI; `anstream` drops them when
//! the output is not a terminal or NO_COLOR is set.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

use super::diagnose::Diagnosis;
use super::model::{Ending, Kind, Pid, Trace};
use super::parse::Micros;
use super::view::{asleep_note, duration, Cell, Row, View};
use crate::render::{paint, BOLD, DIM, WARN};

const ASLEEP: Style = AnsiColor::Red.on_default();
const SPAWN: Style = AnsiColor::Cyan.on_default();

/// The whole rendering: lanes, rows, findings.
pub fn render(view: &View<'_>, findings: &[Diagnosis]) -> String {
    let mut out = String::new();
    for lane in &view.lanes {
        let line = format!("{:>4}  {}", lane.short, lane.label);
        let _ = writeln!(
            out,
            "{}",
            if lane.harness { paint(DIM, line) } else { line }
        );
    }
    let _ = writeln!(out);
    let header: String = view
        .lanes
        .iter()
        .map(|l| format!("{:<3}", l.short))
        .collect();
    let _ = writeln!(out, "{:>10}  {}", "ms", paint(BOLD, header.trim_end()));
    for index in 0..view.rows.len() {
        let cells = cells(view, index);
        match view.rows[index] {
            Row::Gap(quiet) => {
                let _ = writeln!(
                    out,
                    "{:>10}  {cells}  {}",
                    "",
                    paint(DIM, format!("… {} later", duration(quiet)))
                );
            }
            Row::Event(i) => {
                let event = &view.trace.events[i];
                let mut text = event.text.clone();
                if let Some(note) = asleep_note(view.trace, event) {
                    text = format!("{text}  {}", paint(ASLEEP, format!("[{note}]")));
                }
                let harness = view
                    .lane_of(event.pid)
                    .is_some_and(|l| view.lanes[l].harness);
                let text = if harness { paint(DIM, text) } else { text };
                let _ = writeln!(
                    out,
                    "{:>10}  {cells}  {text}",
                    millis(event.start - view.origin.min(event.start))
                );
            }
        }
    }
    if !findings.is_empty() {
        let _ = writeln!(out);
        for finding in findings {
            let _ = writeln!(out, "{} {finding}", paint(WARN, "finding:"));
        }
    }
    out
}

fn millis(micros: Micros) -> String {
    format!("{:.3}", micros as f64 / 1e3)
}

fn cells(view: &View<'_>, index: usize) -> String {
    let spawn = view.spawn(index);
    let event = view.event(view.rows[index]);
    let mut out = String::new();
    for lane in 0..view.lanes.len() {
        let in_arrow = spawn.is_some_and(|(a, b)| lane > a.min(b) && lane < a.max(b));
        let (mark, style) = match view.cell(lane, index) {
            Cell::Here => match event.map(|e| &e.kind) {
                Some(Kind::End(Ending::Killed(_))) => ("✕", ASLEEP),
                Some(Kind::End(Ending::Exited(_))) => ("○", Style::new()),
                Some(Kind::Signal { .. }) => ("↯", WARN),
                Some(Kind::Spawn { .. }) => ("●", SPAWN),
                _ if event.is_some_and(|e| e.blocking) => ("┳", ASLEEP),
                _ => ("●", Style::new()),
            },
            _ if spawn.is_some_and(|(_, child)| child == lane) => ("▸", SPAWN),
            Cell::Asleep => ("┃", ASLEEP),
            Cell::Running => ("│", Style::new()),
            Cell::Absent => (" ", Style::new()),
        };
        let mark = if in_arrow && mark == " " { "─" } else { mark };
        let fill = match spawn {
            Some((a, b)) if lane >= a.min(b) && lane < a.max(b) => "──",
            _ => "  ",
        };
        let style = if in_arrow { SPAWN } else { style };
        let _ = write!(out, "{}{}", paint(style, mark), paint(SPAWN, fill));
    }
    // The last lane's filler is never part of an arrow.
    out.truncate(out.trim_end().len());
    let visible = (view.lanes.len() * 3).saturating_sub(2);
    let pad = visible.saturating_sub(visible_width(&out));
    out.push_str(&" ".repeat(pad));
    out
}

/// Characters on screen, without ANSI sequences.
fn visible_width(text: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// Every shown process's open descriptors at `at` (microseconds since the trace's origin).
pub fn tables(view: &View<'_>, at: Micros, pids: &[Pid]) -> String {
    let trace: &Trace = view.trace;
    let mut out = String::new();
    let when = view.origin + at;
    let _ = writeln!(out, "Descriptor tables at {} ms:", millis(at));
    for lane in view
        .lanes
        .iter()
        .filter(|l| pids.is_empty() || pids.contains(&l.pid))
    {
        let table = trace.table_at(lane.pid, when);
        let alive = trace
            .process(lane.pid)
            .is_some_and(|p| p.start <= when && p.ended_at().is_none_or(|end| when < end));
        if !alive {
            continue;
        }
        let _ = writeln!(out, "  {} ({})", lane.short, lane.label);
        for (fd, desc) in &table {
            let _ = writeln!(out, "    fd {fd:<3} {}", trace.describe(desc));
        }
    }
    out
}
