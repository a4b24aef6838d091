//! The timeline as an SVG picture for the browser (and the book): time runs down, one column
//! per process, forks drawn as arrows from parent to child, sleeping calls as red bars, and
//! what the trace proves written under it with the descriptor tables of the moment it is about.

use svg::node::element::{
    Circle, Definitions, Group, Line, Marker, Path, Rectangle, Style, Text, Title,
};
use svg::Document;

use super::diagnose::{Diagnosis, Finding};
use super::model::{Ending, Kind};
use super::view::{asleep_note, duration, Cell, Row, View};

const ROW: f64 = 18.0;
const LANE: f64 = 28.0;
const CHAR: f64 = 6.6;
const TIME_X: f64 = 78.0;
const LANES_X: f64 = 100.0;

const CSS: &str = "
text { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, monospace; font-size: 11px; fill: #222; }
.title { font-size: 14px; font-weight: bold; }
.dim { fill: #888; }
.time { text-anchor: end; fill: #666; }
.head { text-anchor: middle; font-weight: bold; }
.asleep { fill: #c0392b; }
.finding { fill: #7a4a00; }
.holder { fill: #c0392b; font-weight: bold; }
";

/// The picture of `view`, titled `title`.
pub fn render(view: &View<'_>, findings: &[Diagnosis], title: &str) -> Document {
    let lanes = view.lanes.len();
    let text_x = LANES_X + lanes as f64 * LANE + 8.0;
    let legend_top = 44.0;
    let rows_top = legend_top + lanes as f64 * 16.0 + 30.0;
    let row_y = |i: usize| rows_top + i as f64 * ROW;

    let mut texts: Vec<String> = Vec::new();
    let mut body = Group::new();
    let mut dimmed = Group::new().set("opacity", 0.35);

    // Lanes: a line while the process exists, its name on top.
    for (l, lane) in view.lanes.iter().enumerate() {
        let x = lane_x(l);
        let present: Vec<usize> = (0..view.rows.len())
            .filter(|&r| view.cell(l, r) != Cell::Absent)
            .collect();
        let mut group = Group::new();
        if let (Some(first), Some(last)) = (present.first(), present.last()) {
            group = group.add(
                Line::new()
                    .set("x1", x)
                    .set("x2", x)
                    .set("y1", row_y(*first))
                    .set("y2", row_y(*last))
                    .set("stroke", "#999")
                    .set("stroke-width", 1.5),
            );
        }
        group = group.add(
            Text::new(lane.short.clone())
                .set("x", x)
                .set("y", rows_top - 14.0)
                .set("class", "head"),
        );
        let legend = format!("{}  {}", lane.short, lane.label);
        texts.push(legend.clone());
        group = group.add(
            Text::new(legend)
                .set("x", 16)
                .set("y", legend_top + l as f64 * 16.0),
        );
        if lane.harness {
            dimmed = dimmed.add(group);
        } else {
            body = body.add(group);
        }
    }

    for (r, row) in view.rows.iter().enumerate() {
        let y = row_y(r);
        let event = match row {
            Row::Gap(quiet) => {
                let text = format!("… {} later", duration(*quiet));
                texts.push(text.clone());
                body = body.add(
                    Text::new(text)
                        .set("x", text_x)
                        .set("y", y + 4.0)
                        .set("class", "dim"),
                );
                continue;
            }
            Row::Event(i) => &view.trace.events[*i],
        };
        let Some(l) = view.lane_of(event.pid) else {
            continue;
        };
        let harness = view.lanes[l].harness;
        let x = lane_x(l);
        let mut group = Group::new();
        if let Some(end_row) = view.span_end_row(r) {
            let note = asleep_note(view.trace, event).unwrap_or_default();
            group = group.add(
                Rectangle::new()
                    .set("x", x - 4.0)
                    .set("y", y)
                    .set("width", 8)
                    .set("height", (row_y(end_row) - y).max(4.0))
                    .set("rx", 3)
                    .set("fill", "#e74c3c")
                    .set("opacity", 0.8)
                    .add(Title::new(format!("{}: {note}", event.text))),
            );
        }
        if let Some((from, to)) = view.spawn(r) {
            let (x1, x2) = (lane_x(from), lane_x(to));
            let toward = if x2 > x1 { -5.0 } else { 5.0 };
            group = group.add(
                Line::new()
                    .set("x1", x1)
                    .set("x2", x2 + toward)
                    .set("y1", y)
                    .set("y2", y)
                    .set("stroke", "#2471a3")
                    .set("stroke-width", 1.5)
                    .set("marker-end", "url(#arrow)"),
            );
        }
        group = group.add(mark(&event.kind, x, y));
        let time = format!(
            "{:.3}",
            (event.start - view.origin.min(event.start)) as f64 / 1e3
        );
        group = group.add(
            Text::new(time)
                .set("x", TIME_X)
                .set("y", y + 4.0)
                .set("class", "time"),
        );
        let mut label = event.text.clone();
        if let Some(note) = asleep_note(view.trace, event) {
            label = format!("{label}  [{note}]");
        }
        texts.push(label.clone());
        let class = if event.blocking { "asleep" } else { "" };
        group = group.add(
            Text::new(label)
                .set("x", text_x)
                .set("y", y + 4.0)
                .set("class", class),
        );
        if harness {
            dimmed = dimmed.add(group);
        } else {
            body = body.add(group);
        }
    }

    let widest = texts.iter().map(|t| t.chars().count()).max().unwrap_or(40) as f64;
    let width = (text_x + widest * CHAR + 24.0).clamp(640.0, 1400.0);
    let wrap_at = ((width - 40.0) / CHAR) as usize;
    let mut y = row_y(view.rows.len()) + 16.0;
    for finding in findings {
        for (k, line) in textwrap::wrap(&finding.text, wrap_at).iter().enumerate() {
            let line = if k == 0 {
                format!("! {line}")
            } else {
                format!("  {line}")
            };
            body = body.add(
                Text::new(line)
                    .set("x", 16)
                    .set("y", y)
                    .set("class", "finding"),
            );
            y += 15.0;
        }
        y += 6.0;
    }
    if let Some((at, reader, holders)) = tables_moment(findings) {
        y += 8.0;
        let heading = format!(
            "Open descriptors at {} ms, when {} began the read that never returned:",
            format_args!("{:.3}", (at - view.origin.min(at)) as f64 / 1e3),
            view.lane_of(reader)
                .map(|l| view.lanes[l].short.clone())
                .unwrap_or_else(|| reader.to_string())
        );
        body = body.add(
            Text::new(heading)
                .set("x", 16)
                .set("y", y)
                .set("font-weight", "bold"),
        );
        y += 16.0;
        for lane in view.lanes.iter().filter(|l| !l.harness) {
            let alive = view
                .trace
                .process(lane.pid)
                .is_some_and(|p| p.start <= at && p.ended_at().is_none_or(|end| at < end));
            if !alive {
                continue;
            }
            let table = view.trace.table_at(lane.pid, at);
            body = body.add(
                Text::new(format!("{}:", lane.short))
                    .set("x", 24)
                    .set("y", y),
            );
            let mut x = 24.0 + 5.0 * CHAR;
            // Only what connects processes: the test's own stdout files are no part of the story.
            for (fd, desc) in table.iter().filter(|(_, d)| d.object.is_ipc()) {
                let entry = format!("fd {fd} {}", view.trace.describe(desc));
                let class = if holders.contains(&(lane.pid, *fd)) {
                    "holder"
                } else {
                    ""
                };
                let len = entry.chars().count() as f64 * CHAR + 18.0;
                if x + len > width - 16.0 {
                    x = 24.0 + 5.0 * CHAR;
                    y += 15.0;
                }
                body = body.add(Text::new(entry).set("x", x).set("y", y).set("class", class));
                x += len;
            }
            y += 17.0;
        }
    }
    let height = y + 16.0;

    let arrow = Marker::new()
        .set("id", "arrow")
        .set("viewBox", (0, 0, 10, 10))
        .set("refX", 5)
        .set("refY", 5)
        .set("markerWidth", 6)
        .set("markerHeight", 6)
        .set("orient", "auto-start-reverse")
        .add(
            Path::new()
                .set("d", "M 0 0 L 10 5 L 0 10 z")
                .set("fill", "#2471a3"),
        );
    Document::new()
        .set("viewBox", (0, 0, width.round(), height.round()))
        .set("width", width.round())
        .set("height", height.round())
        .add(Style::new(CSS))
        .add(Definitions::new().add(arrow))
        .add(
            Rectangle::new()
                .set("width", "100%")
                .set("height", "100%")
                .set("fill", "white"),
        )
        .add(
            Text::new(title)
                .set("x", 16)
                .set("y", 24)
                .set("class", "title"),
        )
        .add(dimmed)
        .add(body)
}

fn lane_x(lane: usize) -> f64 {
    LANES_X + lane as f64 * LANE + LANE / 2.0
}

/// The marker of an event on its lane.
fn mark(kind: &Kind, x: f64, y: f64) -> Group {
    let group = Group::new();
    match kind {
        Kind::End(Ending::Killed(_)) => group.add(
            Path::new()
                .set(
                    "d",
                    format!(
                        "M {} {} l 8 8 M {} {} l -8 8",
                        x - 4.0,
                        y - 4.0,
                        x + 4.0,
                        y - 4.0
                    ),
                )
                .set("stroke", "#c0392b")
                .set("stroke-width", 2.5),
        ),
        Kind::End(Ending::Exited(_)) => group.add(
            Circle::new()
                .set("cx", x)
                .set("cy", y)
                .set("r", 4.5)
                .set("fill", "white")
                .set("stroke", "#333")
                .set("stroke-width", 1.5),
        ),
        Kind::Signal { .. } => group.add(
            Path::new()
                .set("d", format!("M {x} {} l 5 5 l -5 5 l -5 -5 z", y - 5.0))
                .set("fill", "#f39c12"),
        ),
        Kind::Spawn { .. } => group.add(
            Circle::new()
                .set("cx", x)
                .set("cy", y)
                .set("r", 4)
                .set("fill", "#2471a3"),
        ),
        Kind::Call { .. } => group.add(
            Circle::new()
                .set("cx", x)
                .set("cy", y)
                .set("r", 3.5)
                .set("fill", "#333"),
        ),
    }
}

/// The moment the descriptor tables are drawn for: the first reader that waited forever, with
/// the descriptors that kept it waiting.
/// When, whose read, and the (pid, fd) pairs that held the write end.
type Moment = (u64, i32, Vec<(i32, i32)>);

fn tables_moment(findings: &[Diagnosis]) -> Option<Moment> {
    let first = findings
        .iter()
        .find(|d| matches!(d.finding, Finding::ReaderWaitsForWriteEnd { .. }))?;
    let Finding::ReaderWaitsForWriteEnd { reader, .. } = first.finding else {
        return None;
    };
    let holders = findings
        .iter()
        .filter(|d| d.at == first.at)
        .filter_map(|d| match d.finding {
            Finding::ReaderWaitsForWriteEnd {
                reader: r,
                holder,
                holder_fd,
                ..
            } if r == reader => Some((holder, holder_fd)),
            _ => None,
        })
        .collect();
    Some((first.at, reader, holders))
}
