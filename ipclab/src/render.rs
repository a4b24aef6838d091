//! The screens: the course list, an exercise's verdict, hints. They are built as strings with
//! ANSI styles; `anstream` drops the styles when colour is off (`--no-color`, `NO_COLOR`, or
//! output that is not a terminal).

use std::fmt::Write as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::info::{ExerciseInfo, TaskHints};
use crate::rubric::{points_text, Points};
use crate::status::{self, Record, State};
use crate::suite::{TestResult, Verdict};

pub const GOOD: Style = AnsiColor::Green.on_default().bold();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const NEXT: Style = AnsiColor::Cyan.on_default().bold();
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

/// `text` in `style`.
pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// `cargo ipclab …`: the command as the student types it.
pub fn command(args: &str) -> String {
    paint(BOLD, format!("cargo ipclab {args}"))
}

/// One exercise's line in the list.
pub struct ListEntry {
    pub info: ExerciseInfo,
    pub state: State,
    /// Whether the student changed the exercise (from git), to tell "not started" from "in
    /// progress, nothing passing yet".
    pub modified: Option<bool>,
    /// Its points by the rubric beside its suite; without one, a point per graded test.
    pub points: Option<Points>,
}

impl ListEntry {
    /// `(got, of)`: the rubric's points, else a point per graded test; `None` when unknown.
    fn points(&self) -> Option<(f64, f64)> {
        let (passed, total) = self.state.points()?;
        Some(match &self.points {
            Some(p) => (p.got, p.of),
            None => (passed as f64, total as f64),
        })
    }
}

/// The course list: every exercise, its status and points, the course's progress, what is next.
pub fn list(entries: &[ListEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint(BOLD, "ipclab: Linux IPC in Rust"));
    let _ = writeln!(out);
    let width = entries
        .iter()
        .map(|e| e.info.title.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(20, 44);
    let next = entries.iter().position(|e| !e.state.is_done());
    for (i, entry) in entries.iter().enumerate() {
        let (mark, status, style) = status_words(entry);
        let mark = if Some(i) == next && !matches!(entry.state, State::DoesNotCompile { .. }) {
            paint(NEXT, "▸")
        } else {
            mark
        };
        let points = match entry.points() {
            Some((got, of)) => format!("{}/{}", points_text(got), points_text(of)),
            None => "–".to_owned(),
        };
        let title = truncate(&entry.info.title, width);
        let _ = writeln!(
            out,
            " {mark} {:02} {title:<width$}  {} {points:>6}",
            entry.info.number,
            paint(style, format!("{status:<26}")),
        );
        if let State::DoesNotCompile { first_error } = &entry.state {
            let headline: Vec<&str> = first_error.lines().take(2).map(str::trim).collect();
            let _ = writeln!(out, "      {}", paint(DIM, headline.join(" ")));
        }
    }
    let (got, of) = entries
        .iter()
        .filter_map(ListEntry::points)
        .fold((0.0, 0.0), |(g, o), (eg, eo)| (g + eg, o + eo));
    let done = entries.iter().filter(|e| e.state.is_done()).count();
    let _ = writeln!(out);
    // Hundredths of a point, so that the bar and the percentage need no floating point.
    let (got_c, of_c) = (
        (got * 100.0).round() as usize,
        (of * 100.0).round() as usize,
    );
    let percent = (got_c * 100).checked_div(of_c).unwrap_or(0);
    let _ = writeln!(
        out,
        " progress {} {} of {} points ({percent}%), {done} of {} exercises done",
        bar(got_c, of_c, 30),
        points_text(got),
        points_text(of),
        entries.len()
    );
    let unknown = entries.iter().filter(|e| e.points().is_none()).count();
    if unknown > 0 {
        let _ = writeln!(
            out,
            "          {}",
            paint(
                DIM,
                format!(
                    "(+ the points of {unknown} exercise{} whose tests could not run)",
                    plural(unknown)
                )
            )
        );
    }
    let _ = writeln!(out);
    match next {
        Some(i) => {
            let info = &entries[i].info;
            let _ = writeln!(
                out,
                " next: {} ({}). Run {} to work on it.",
                paint(BOLD, &info.name),
                info.title,
                command("watch")
            );
            if let Some(chapter) = &info.chapter {
                let _ = writeln!(
                    out,
                    "       Read first: {} ({})",
                    chapter.title,
                    chapter.path.display()
                );
            }
        }
        None if entries.is_empty() => {
            let _ = writeln!(out, " This course has no exercises yet.");
        }
        None => {
            let _ = writeln!(
                out,
                " {} every exercise passes: you have finished the course.",
                paint(GOOD, "✓")
            );
        }
    }
    out
}

fn status_words(entry: &ListEntry) -> (String, String, Style) {
    match &entry.state {
        State::Unknown => (paint(DIM, "?"), "not run yet".to_owned(), DIM),
        State::NotStarted { total } if entry.modified == Some(true) => (
            paint(WARN, "•"),
            format!("in progress: 0 of {total} pass"),
            Style::new(),
        ),
        State::NotStarted { .. } => (paint(DIM, "·"), "not started".to_owned(), Style::new()),
        State::InProgress { passed, total } => (
            paint(WARN, "•"),
            format!("in progress: {passed} of {total} pass"),
            Style::new(),
        ),
        State::Done { .. } => (paint(GOOD, "✓"), "done".to_owned(), GOOD),
        State::NoGradedTests => (paint(DIM, "·"), "no graded tests yet".to_owned(), DIM),
        State::DoesNotCompile { .. } => (paint(BAD, "✗"), "does not compile".to_owned(), BAD),
        State::TimedOut { after } => (
            paint(BAD, "✗"),
            format!("tests stopped after {}", duration(*after)),
            BAD,
        ),
    }
}

/// `[#########.............]`
pub fn bar(got: usize, of: usize, width: usize) -> String {
    let filled = (got * width).checked_div(of).unwrap_or(0);
    format!(
        "[{}{}]",
        paint(GOOD, "#".repeat(filled)),
        ".".repeat(width - filled)
    )
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width - 1).collect();
        cut.push('…');
        cut
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `0.42 s`, `12 s`, `15 min`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if d.subsec_nanos() == 0 && secs < 120.0 {
        format!("{} s", d.as_secs())
    } else if secs < 10.0 {
        format!("{secs:.2} s")
    } else if secs < 120.0 {
        format!("{secs:.0} s")
    } else {
        format!("{:.0} min", secs / 60.0)
    }
}

/// An exercise's verdict: ✓/✗ per task with its tests passing, the first failure in full, and
/// the command for a hint.
/// With `points` (the rubric's), each task and the total show their points too.
pub fn verdict(info: &ExerciseInfo, record: &Record, points: Option<&Points>) -> String {
    let mut out = String::new();
    let heading = format!("{} · {}", info.name, info.title);
    match &record.verdict {
        Verdict::BuildFailed { errors } => {
            let _ = writeln!(out, "{} {heading}", paint(BAD, "✗"));
            let _ = writeln!(
                out,
                "{}",
                paint(BAD, "It does not compile. The first error:")
            );
            let _ = writeln!(out);
            for line in status::first_error(errors).lines() {
                let _ = writeln!(out, "    {line}");
            }
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "`cargo test -p {}` shows every error and warning.",
                info.name
            );
        }
        Verdict::TimedOut { after } => {
            let _ = writeln!(out, "{} {heading}", paint(BAD, "✗"));
            let _ = writeln!(
                out,
                "{}",
                paint(
                    BAD,
                    format!(
                        "The tests were still running after {}, so they were stopped.",
                        duration(*after)
                    )
                )
            );
            let _ = writeln!(
                out,
                "Every graded test has its own, shorter deadline, so this is usually the build \
                 waiting for something (another cargo holding the lock on the target directory?) \
                 or a test run stuck outside the graded tests."
            );
        }
        Verdict::Ran { tests } => ran(&mut out, info, &heading, tests, record.test_time, points),
    }
    out
}

fn ran(
    out: &mut String,
    info: &ExerciseInfo,
    heading: &str,
    tests: &[TestResult],
    test_time: Option<Duration>,
    points: Option<&Points>,
) {
    let graded: Vec<&TestResult> = tests.iter().filter(|t| t.is_graded()).collect();
    let passed = graded.iter().filter(|t| t.passed).count();
    if graded.is_empty() {
        let _ = writeln!(out, "{} {heading}", paint(DIM, "·"));
        let _ = writeln!(
            out,
            "The suite has no graded tests yet: this exercise is still being written."
        );
        return;
    }
    let all = passed == graded.len();
    let _ = writeln!(
        out,
        "{} {heading}",
        if all {
            paint(GOOD, "✓")
        } else {
            paint(BAD, "✗")
        }
    );
    // Tasks: those the README names, and any the suite grades that it does not.
    let mut numbers: Vec<u32> = info.tasks.iter().map(|t| t.number).collect();
    numbers.extend(graded.iter().filter_map(|t| t.task));
    numbers.sort_unstable();
    numbers.dedup();
    let width = numbers
        .iter()
        .map(|n| info.task_title(*n).map_or(0, |t| t.chars().count()))
        .max()
        .unwrap_or(0)
        .min(50);
    for n in numbers {
        let of_task: Vec<&&TestResult> = graded.iter().filter(|t| t.task == Some(n)).collect();
        let ok = of_task.iter().filter(|t| t.passed).count();
        let title = truncate(info.task_title(n).unwrap_or(""), width.max(1));
        let (mark, count) = if of_task.is_empty() {
            (paint(DIM, "·"), "no tests yet".to_owned())
        } else if ok == of_task.len() {
            (paint(GOOD, "✓"), format!("{ok}/{}", of_task.len()))
        } else {
            (paint(BAD, "✗"), format!("{ok}/{}", of_task.len()))
        };
        let task_points =
            points
                .and_then(|p| p.tasks.get(&n))
                .map_or(String::new(), |(got, of)| {
                    format!(
                        "  {:>9}",
                        format!("{}/{} pt", points_text(*got), points_text(*of))
                    )
                });
        let _ = writeln!(
            out,
            "  {mark} Task {n:<2} {title:<width$}  {count:>5}{task_points}"
        );
    }
    let time = test_time.map_or(String::new(), |t| format!(" (tests took {})", duration(t)));
    let total = points.map_or(String::new(), |p| {
        format!(": {} of {} points", points_text(p.got), points_text(p.of))
    });
    let _ = writeln!(
        out,
        "  {passed} of {} graded tests pass{total}{time}",
        graded.len()
    );
    let Some(first) = status::first_failure(tests) else {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            paint(
                GOOD,
                format!("All {} graded tests of {} pass.", graded.len(), info.name)
            )
        );
        return;
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "{} {}", paint(BAD, "✗"), paint(BOLD, &first.name));
    let message = status::tidy_paths(
        first
            .message
            .as_deref()
            .unwrap_or("(the test printed no message)"),
    );
    for line in message.lines() {
        let _ = writeln!(out, "    {line}");
    }
    let others: Vec<&str> = graded
        .iter()
        .filter(|t| !t.passed && t.name != first.name && t.task == first.task)
        .map(|t| t.name.as_str())
        .collect();
    if !others.is_empty() {
        let mut sorted = others;
        sorted.sort_unstable();
        let shown: Vec<&str> = sorted.iter().take(3).copied().collect();
        let more = sorted.len() - shown.len();
        let _ = writeln!(
            out,
            "  {}",
            paint(
                DIM,
                format!(
                    "also failing in task {}: {}{}",
                    first.task.unwrap_or(0),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            )
        );
    }
    let _ = writeln!(out);
    // `hint 1` names the exercise; say so, and which task its next hint is for.
    let task = first.task.map_or(String::new(), |t| format!(", task {t}"));
    let _ = writeln!(
        out,
        "hint: {}   {}",
        command(&format!("hint {}", info.number)),
        paint(DIM, format!("(exercise {}{task})", info.number))
    );
}

/// The hints of one task: those seen before, then the new one.
pub fn hints(info: &ExerciseInfo, task: &TaskHints, before: usize, now: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} · Task {}: {}",
        info.name, task.task.number, task.task.title
    );
    let _ = writeln!(out);
    for (i, hint) in task.hints.iter().enumerate().take(now) {
        if i < before {
            let _ = writeln!(out, "  {}", paint(DIM, format!("{}. {hint}", i + 1)));
        } else {
            let _ = writeln!(out, "{} {}. {hint}", paint(NEXT, "▸"), i + 1);
        }
    }
    let _ = writeln!(out);
    let left = task.hints.len() - now;
    if left > 0 {
        let _ = writeln!(
            out,
            "{left} more hint{} for this task: run {} again.",
            plural(left),
            command(&format!("hint {}", info.number))
        );
    } else {
        let _ = writeln!(out, "That was the last hint for this task.");
        if let Some(chapter) = &info.chapter {
            let _ = writeln!(
                out,
                "The chapter explains the mechanism: {} ({}).",
                chapter.title,
                chapter.path.display()
            );
        }
        let _ = writeln!(
            out,
            "Once the exercise passes, {} shows the reference solution.",
            command(&format!("solution {}", info.number))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_is_proportional() {
        anstream::ColorChoice::Never.write_global();
        let plain = |s: String| anstream::adapter::strip_str(&s).to_string();
        assert_eq!(plain(bar(0, 10, 10)), "[..........]");
        assert_eq!(plain(bar(5, 10, 10)), "[#####.....]");
        assert_eq!(plain(bar(3, 0, 4)), "[....]");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(420)), "0.42 s");
        assert_eq!(duration(Duration::from_secs(12)), "12 s");
        assert_eq!(duration(Duration::from_secs(5)), "5 s");
        assert_eq!(duration(Duration::from_secs(900)), "15 min");
    }
}
