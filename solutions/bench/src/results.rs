//! The run as data: the JSON file, the Markdown tables the book includes, and the charts.
//! Everything a reader sees is generated from one `Run`, never typed in.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// A measurement on one placement: its summary, or why it failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// 99th percentile (latency only).
    pub p99: Option<f64>,
    /// Every byte arrived, in order, as sent (and every helper process exited 0).
    pub verified: bool,
    pub error: Option<String>,
}

impl Cell {
    pub fn failed(e: impl std::fmt::Display) -> Cell {
        Cell {
            median: None,
            min: None,
            max: None,
            p99: None,
            verified: false,
            error: Some(e.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub mechanism: String,
    /// Bytes per write or message.
    pub size: usize,
    /// Bytes per second, both processes on one CPU.
    pub one_cpu: Option<Cell>,
    /// Bytes per second, on two CPUs.
    pub two_cpus: Option<Cell>,
    /// The raw mechanism a reference solution is compared with.
    pub raw: Option<String>,
    /// The raw mechanism (`raw`) measured again in turns with this row, trial by trial, one CPU
    /// and two: what its ÷ raw ratio divides by, so that the machine's other work weighs on both
    /// alike. Absent from rows without a raw mechanism, and from older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_in_turns: Option<[Option<Cell>; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub mechanism: String,
    /// Seconds per one-byte round trip.
    pub one_cpu: Option<Cell>,
    pub two_cpus: Option<Cell>,
    /// The raw mechanism a reference solution is compared with (a row of `latency`).
    #[serde(default)]
    pub raw: Option<String>,
    /// The raw mechanism (`raw`) measured again in turns with this row, trial by trial, one CPU
    /// and two: what its ÷ raw ratio divides by, so that the machine's other work weighs on both
    /// alike. Absent from rows without a raw mechanism, and from older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_in_turns: Option<[Option<Cell>; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cache {
    pub level: String,
    pub kind: String,
    pub size: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub caches: Vec<Cache>,
    pub cores: usize,
    pub allowed_cpus: Vec<usize>,
    pub kernel: String,
    pub msgmax: usize,
    pub load_average_start: String,
    pub load_average_end: String,
    pub seconds: f64,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub quick: bool,
    pub machine: Machine,
    /// Bytes per second of memcpy, one process.
    pub memcpy: Vec<Throughput>,
    /// Seconds per getppid(2).
    pub syscall_seconds: f64,
    pub throughput: Vec<Throughput>,
    pub latency: Vec<Latency>,
    /// The reference solutions beside their raw mechanisms.
    pub solutions: Vec<Throughput>,
    pub solution_latency: Vec<Latency>,
    /// The same raw loops written in C (c/raw.c), built and run in turns with them; each row has
    /// the name and size of its Rust twin in `throughput` / `latency`.
    #[serde(default)]
    pub c_throughput: Vec<Throughput>,
    #[serde(default)]
    pub c_latency: Vec<Latency>,
    /// System calls per message of each side of a comparison, counted with `strace -c -f`.
    #[serde(default)]
    pub syscalls: Vec<Syscalls>,
}

/// What `strace -c -f` counted for one measurement: per message, the run's setup subtracted
/// (two runs of `messages` and `2 × messages`, the difference divided by `messages`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Syscalls {
    pub mechanism: String,
    pub messages: usize,
    /// (system call, calls per message), most frequent first.
    pub per_message: Vec<(String, f64)>,
    pub total_per_message: f64,
    pub error: Option<String>,
    /// What the kernel accounted to the same run without strace, per message.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Per message, from `getrusage(RUSAGE_CHILDREN)` around a run of the row without strace (both
/// sides on one CPU), with the setup taken out as for the calls: how often a side went to sleep
/// waiting for the other (voluntary context switches), how often the scheduler took the CPU
/// from a side that could have gone on, and the CPU time spent in user code and in the kernel.
/// The explanation of a ratio whose two sides make the same calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub sleeps: f64,
    pub preemptions: f64,
    pub user_us: f64,
    pub kernel_us: f64,
}

fn first_line(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split(':').nth(1))
        .map(|v| v.trim().to_owned())
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub fn machine(allowed: &[usize], load_start: String) -> Machine {
    let mut caches = Vec::new();
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        if !Path::new(&dir).exists() {
            break;
        }
        caches.push(Cache {
            level: read(format!("{dir}/level")),
            kind: read(format!("{dir}/type")),
            size: read(format!("{dir}/size")),
        });
    }
    Machine {
        cpu_model: first_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        caches,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        allowed_cpus: allowed.to_vec(),
        kernel: format!("Linux {}", read("/proc/sys/kernel/osrelease")),
        msgmax: crate::lab::msgmax(),
        load_average_start: load_start,
        load_average_end: String::new(),
        seconds: 0.0,
        note: String::new(),
    }
}

pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

fn gbs(c: &Option<Cell>) -> String {
    match c {
        None => "—".into(),
        Some(Cell {
            median: Some(m), ..
        }) => format!("{:.2}", m / 1e9),
        Some(c) => format!("failed: {}", c.error.as_deref().unwrap_or("?")),
    }
}

fn us(c: &Option<Cell>) -> String {
    match c {
        None => "—".into(),
        Some(Cell {
            median: Some(m),
            p99: Some(p),
            ..
        }) => {
            format!("{:.1} ({:.1})", m * 1e6, p * 1e6)
        }
        // The solutions' sessions are timed as a whole: a median of trials, no percentile.
        Some(Cell {
            median: Some(m), ..
        }) => format!("{:.1}", m * 1e6),
        Some(c) => format!("failed: {}", c.error.as_deref().unwrap_or("?")),
    }
}

fn median(c: &Option<Cell>) -> Option<f64> {
    c.as_ref().and_then(|c| c.median)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

/// Marks every block of `markdown` for the book's translation to skip (`<!-- i18n:skip -->`):
/// generated numbers read the same in every language, and a new run must not leave the
/// translated book incomplete. Tables become HTML, one block each: the translation tools take a
/// Markdown table cell by cell, and skip only the next block.
pub fn untranslated(markdown: &str) -> String {
    markdown
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let block = block.trim_matches('\n');
            let body = if block.starts_with('|') {
                html_table(block)
            } else if block.starts_with("- ") {
                html_list(block)
            } else {
                block.to_owned()
            };
            format!("<!-- i18n:skip -->\n{body}")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n"
}

/// `**bold**` and `code` spans of generated text as HTML, `&` and `<` escaped.
fn inline_html(text: &str) -> String {
    let text = text.replace('&', "&amp;").replace('<', "&lt;");
    let mut out = String::new();
    for (i, part) in text.split("**").enumerate() {
        let part: String = part
            .split('`')
            .enumerate()
            .map(|(j, p)| {
                if j % 2 == 1 {
                    format!("<code>{p}</code>")
                } else {
                    p.to_owned()
                }
            })
            .collect();
        if i % 2 == 1 {
            out.push_str(&format!("<strong>{part}</strong>"));
        } else {
            out.push_str(&part);
        }
    }
    out
}

/// A Markdown list as one HTML block: the translation tools would take each item apart, and
/// skip only the first.
fn html_list(list: &str) -> String {
    let mut out = String::from("<ul>\n");
    for item in list.split("\n- ") {
        let item = item.trim_start_matches("- ").replace('\n', " ");
        out.push_str(&format!("<li>{}</li>\n", inline_html(&item)));
    }
    out.push_str("</ul>");
    out
}

/// A Markdown table as an HTML table on consecutive lines (one HTML block).
fn html_table(table: &str) -> String {
    let cells = |row: &str| -> Vec<String> {
        row.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| {
                let c = c.trim().replace('&', "&amp;").replace('<', "&lt;");
                // `code` spans, as Markdown would show them.
                let mut out = String::new();
                for (i, part) in c.split('`').enumerate() {
                    if i % 2 == 1 {
                        out.push_str(&format!("<code>{part}</code>"));
                    } else {
                        out.push_str(part);
                    }
                }
                out
            })
            .collect()
    };
    let rows: Vec<&str> = table.lines().collect();
    let right: Vec<bool> = rows
        .get(1)
        .map(|sep| cells(sep).iter().map(|c| c.ends_with(':')).collect())
        .unwrap_or_default();
    let align = |i: usize| {
        if right.get(i).copied().unwrap_or(false) {
            " style=\"text-align: right\""
        } else {
            ""
        }
    };
    let mut out = String::from("<table>\n<thead><tr>");
    for (i, c) in cells(rows[0]).iter().enumerate() {
        out.push_str(&format!("<th{}>{c}</th>", align(i)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows.iter().skip(2) {
        out.push_str("<tr>");
        for (i, c) in cells(row).iter().enumerate() {
            out.push_str(&format!("<td{}>{c}</td>", align(i)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>");
    out
}

/// The Markdown the book includes: the machine, then every table.
pub fn markdown(run: &Run) -> String {
    let m = &run.machine;
    let mut out = String::new();
    let caches: Vec<String> = m
        .caches
        .iter()
        .map(|c| format!("L{} {} {}", c.level, c.kind, c.size))
        .collect();
    let _ = writeln!(
        out,
        "Measured on {} ({} CPUs, {}; caches {}), {}. Load average {} at the start, {} at \
         the end; the run took {:.0} s. {}\n",
        m.cpu_model,
        m.cores,
        m.kernel,
        caches.join(", "),
        if run.quick { "quick run" } else { "full run" },
        m.load_average_start,
        m.load_average_end,
        m.seconds,
        m.note
    );
    let _ = writeln!(
        out,
        "A trivial system call (getppid) costs {:.0} ns.\n",
        run.syscall_seconds * 1e9
    );
    let _ = writeln!(out, "{}", limits(run));
    let _ = writeln!(out, "| memcpy | bytes per copy | GB/s |\n|---|---:|---:|");
    for r in &run.memcpy {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.mechanism,
            size(r.size),
            gbs(&r.one_cpu)
        );
    }
    let _ = writeln!(
        out,
        "\nThroughput, GB/s (÷ memcpy: divided by cache-resident memcpy of the same size):\n"
    );
    let _ = writeln!(
        out,
        "| mechanism | bytes per write | one CPU | two CPUs | ÷ memcpy (two CPUs) |\n\
         |---|---:|---:|---:|---:|"
    );
    let cached = |s: usize| {
        run.memcpy
            .iter()
            .find(|r| r.size == s && r.mechanism.contains("cache-resident"))
            .and_then(|r| median(&r.one_cpu))
    };
    for r in &run.throughput {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.mechanism,
            size(r.size),
            gbs(&r.one_cpu),
            gbs(&r.two_cpus),
            ratio(median(&r.two_cpus), cached(r.size))
        );
    }
    let _ = writeln!(
        out,
        "\nOne-byte round trip, µs: median (99th percentile):\n\n\
         | mechanism | one CPU | two CPUs |\n|---|---:|---:|"
    );
    for r in &run.latency {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.mechanism,
            us(&r.one_cpu),
            us(&r.two_cpus)
        );
    }
    if !run.c_throughput.is_empty() {
        let _ = writeln!(
            out,
            "\nRust with nix ÷ the same loop in C (c/raw.c, built by the cc crate in the same \
             build, run in turns with the Rust loop; speed ratios, 1.00 is as fast, the target is \
             at least 0.95). Why, for a ratio below it: system calls per message of each side \
             (`strace -c -f`), then sleeps and CPU time per message (`getrusage`), both sides on \
             one CPU.\n\n\
             | mechanism | bytes per write | one CPU | two CPUs | why (per message) |\n\
             |---|---:|---:|---:|---|"
        );
        for c in &run.c_throughput {
            let Some(r) = find(&run.throughput, &c.mechanism, c.size) else {
                continue;
            };
            let (one, two) = (
                speed(median(&r.one_cpu), median(&c.one_cpu)),
                speed(median(&r.two_cpus), median(&c.two_cpus)),
            );
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                c.mechanism,
                size(c.size),
                fmt_ratio(one),
                fmt_ratio(two),
                miss_why(
                    run,
                    "throughput",
                    &c.mechanism,
                    &format!("C: {}", c.mechanism),
                    c.size,
                    [one, two]
                ),
            );
        }
        for c in &run.c_latency {
            let Some(r) = run.latency.iter().find(|r| r.mechanism == c.mechanism) else {
                continue;
            };
            let (one, two) = (
                speed(median(&c.one_cpu), median(&r.one_cpu)),
                speed(median(&c.two_cpus), median(&r.two_cpus)),
            );
            let _ = writeln!(
                out,
                "| {} | one-byte round trip | {} | {} | {} |",
                c.mechanism,
                fmt_ratio(one),
                fmt_ratio(two),
                miss_why(
                    run,
                    "latency",
                    &c.mechanism,
                    &format!("C: {}", c.mechanism),
                    0,
                    [one, two]
                ),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nReference solutions beside the raw mechanism they use, GB/s (÷ raw: the solution's \
         speed divided by the raw mechanism's, placed the same way and measured in turns with \
         it; the target is at least 0.95):\n\n\
         | solution | bytes per write | one CPU | two CPUs | ÷ raw (one / two CPUs) | why (per message) |\n\
         |---|---:|---:|---:|---|---|"
    );
    for r in &run.solutions {
        if r.raw.is_none() {
            continue;
        }
        let (vs, why) = throughput_vs_raw(run, r).map_or(
            (String::new(), String::new()),
            |(raw, [one, two])| {
                (
                    format!("{} / {} ({raw})", fmt_ratio(one), fmt_ratio(two)),
                    miss_why(run, "throughput", &r.mechanism, raw, r.size, [one, two]),
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {vs} | {why} |",
            r.mechanism,
            size(r.size),
            gbs(&r.one_cpu),
            gbs(&r.two_cpus)
        );
    }
    let _ = writeln!(
        out,
        "\nReference solutions' round trips beside the raw mechanism, µs: median (99th \
         percentile) (÷ raw: the raw round trip's time divided by the solution's, so that 1.00 \
         is as fast and less is slower; measured in turns with it):\n\n\
         | solution | one CPU | two CPUs | ÷ raw (one / two CPUs) | why (per message) |\n\
         |---|---:|---:|---|---|"
    );
    for r in &run.solution_latency {
        let (vs, why) =
            latency_vs_raw(run, r).map_or((String::new(), String::new()), |(raw, [one, two])| {
                (
                    format!("{} / {} ({raw})", fmt_ratio(one), fmt_ratio(two)),
                    miss_why(run, "latency", &r.mechanism, raw, 0, [one, two]),
                )
            });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {vs} | {why} |",
            r.mechanism,
            us(&r.one_cpu),
            us(&r.two_cpus)
        );
    }
    out
}

fn find<'a>(rows: &'a [Throughput], name: &str, size: usize) -> Option<&'a Throughput> {
    rows.iter().find(|r| r.mechanism == name && r.size == size)
}

fn speed(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}"))
}

/// Below this a ratio is a miss that needs a why.
pub const TARGET: f64 = 0.95;

/// Every (kind, row, size) whose ratio misses the target, both sides of each comparison.
/// A solution row's ÷ raw ratios, one CPU and two, with the raw row's name: against its raw
/// mechanism as measured in turns with it where the run has that, else against the raw row
/// measured on its own. `None` for a row without a raw mechanism in this run.
fn throughput_vs_raw<'a>(run: &'a Run, r: &'a Throughput) -> Option<(&'a str, [Option<f64>; 2])> {
    let name = r.raw.as_deref()?;
    let alone = find(&run.throughput, name, r.size).or(find(&run.solutions, name, r.size));
    let raw = raw_cells(&r.raw_in_turns, alone.map(|a| [&a.one_cpu, &a.two_cpus]))?;
    let cells = [&r.one_cpu, &r.two_cpus];
    Some((
        name,
        [0, 1].map(|i| speed(median(cells[i]), median(raw[i]))),
    ))
}

/// As [`throughput_vs_raw`], for round trips: the raw round trip's time ÷ the solution's.
fn latency_vs_raw<'a>(run: &'a Run, r: &'a Latency) -> Option<(&'a str, [Option<f64>; 2])> {
    let name = r.raw.as_deref()?;
    let alone = run
        .latency
        .iter()
        .chain(&run.solution_latency)
        .find(|x| x.mechanism == name);
    let raw = raw_cells(&r.raw_in_turns, alone.map(|a| [&a.one_cpu, &a.two_cpus]))?;
    let cells = [&r.one_cpu, &r.two_cpus];
    Some((
        name,
        [0, 1].map(|i| speed(median(raw[i]), median(cells[i]))),
    ))
}

/// The raw mechanism's cells a solution is divided by: those measured in turns with it, else
/// those of its row measured alone.
fn raw_cells<'a>(
    in_turns: &'a Option<[Option<Cell>; 2]>,
    alone: Option<[&'a Option<Cell>; 2]>,
) -> Option<[&'a Option<Cell>; 2]> {
    match in_turns {
        Some([one, two]) => Some([one, two]),
        None => alone,
    }
}

pub fn misses(run: &Run) -> Vec<(&'static str, String, usize)> {
    let mut out = Vec::new();
    let missed = |a: Option<f64>, b: Option<f64>| [a, b].iter().flatten().any(|r| *r < TARGET);
    for c in &run.c_throughput {
        if let Some(r) = find(&run.throughput, &c.mechanism, c.size) {
            if missed(
                speed(median(&r.one_cpu), median(&c.one_cpu)),
                speed(median(&r.two_cpus), median(&c.two_cpus)),
            ) {
                out.push(("throughput", c.mechanism.clone(), c.size));
                out.push(("throughput", format!("C: {}", c.mechanism), c.size));
            }
        }
    }
    for c in &run.c_latency {
        if let Some(r) = run.latency.iter().find(|r| r.mechanism == c.mechanism) {
            if missed(
                speed(median(&c.one_cpu), median(&r.one_cpu)),
                speed(median(&c.two_cpus), median(&r.two_cpus)),
            ) {
                out.push(("latency", c.mechanism.clone(), 0));
                out.push(("latency", format!("C: {}", c.mechanism), 0));
            }
        }
    }
    for r in &run.solutions {
        if let Some((name, [one, two])) = throughput_vs_raw(run, r) {
            if missed(one, two) {
                out.push(("throughput", r.mechanism.clone(), r.size));
                out.push(("throughput", name.to_owned(), r.size));
            }
        }
    }
    for r in &run.solution_latency {
        if let Some((name, [one, two])) = latency_vs_raw(run, r) {
            if missed(one, two) {
                out.push(("latency", r.mechanism.clone(), 0));
                out.push(("latency", name.to_owned(), 0));
            }
        }
    }
    out
}

fn calls<'a>(run: &'a Run, kind: &str, name: &str, size: usize) -> Option<&'a Syscalls> {
    let key = if kind == "latency" {
        format!("{kind}: {name}")
    } else {
        format!("{kind}: {name} @ {size}")
    };
    run.syscalls.iter().find(|s| s.mechanism == key)
}

fn per_message(s: &Syscalls) -> String {
    if let Some(e) = &s.error {
        return format!("not counted ({e})");
    }
    let top: Vec<String> = s
        .per_message
        .iter()
        .take(4)
        .map(|(call, n)| format!("{call} {n:.1}"))
        .collect();
    let calls = if top.is_empty() {
        "0".into()
    } else {
        format!("{:.1} ({})", s.total_per_message, top.join(", "))
    };
    match s.usage {
        Some(u) => format!(
            "{calls}, {:.2} sleeps, {:.2} µs user, {:.2} µs kernel",
            u.sleeps, u.user_us, u.kernel_us
        ),
        None => calls,
    }
}

/// What the accounted runs of `a` and `b` say `a` does more of per message: the measured part
/// of a miss's why. Empty if nothing differs by enough to tell from the accounting's grain.
fn more_work(a: &Syscalls, b: &Syscalls) -> Vec<String> {
    let (Some(x), Some(y)) = (a.usage, b.usage) else {
        return Vec::new();
    };
    // CPU time is accounted in scheduler ticks, spread over the run: differences under a
    // fifth, or under 0.2 µs, are within its grain.
    let clearly_more = |x: f64, y: f64| x - y >= 0.2 && x >= 1.2 * y;
    let mut more = Vec::new();
    if clearly_more(x.user_us, y.user_us) {
        more.push(format!(
            "{:.2} µs more in user code (copies, allocation, checks)",
            x.user_us - y.user_us
        ));
    }
    if clearly_more(x.kernel_us, y.kernel_us) {
        more.push(format!(
            "{:.2} µs more in the kernel (copies in and out, sleeping and waking)",
            x.kernel_us - y.kernel_us
        ));
    }
    if x.sleeps - y.sleeps >= 0.1 {
        more.push(format!(
            "{:.2} more sleeps (a side waiting for the other, then woken)",
            x.sleeps - y.sleeps
        ));
    }
    more
}

/// The why of a miss: both sides' system calls and accounted work per message, and what their
/// difference says.
fn miss_why(
    run: &Run,
    kind: &str,
    a: &str,
    b: &str,
    size: usize,
    ratios: [Option<f64>; 2],
) -> String {
    if !ratios.iter().flatten().any(|r| *r < TARGET) {
        return String::new();
    }
    let (Some(x), Some(y)) = (calls(run, kind, a, size), calls(run, kind, b, size)) else {
        return "not counted in this run".into();
    };
    let verdict = if x.error.is_some() || y.error.is_some() {
        String::new()
    } else {
        let d = x.total_per_message - y.total_per_message;
        let calls = if d >= 0.5 {
            format!("{d:.1} more calls")
        } else if d <= -0.5 {
            format!("{:.1} fewer calls", -d)
        } else {
            "the same calls".into()
        };
        let more = more_work(x, y);
        if !more.is_empty() {
            format!(
                "; per message, on one CPU, {}: {calls}, {}",
                short(a),
                more.join(", ")
            )
        } else if x.usage.is_some() && y.usage.is_some() {
            format!(
                "; per message, on one CPU, {}: {calls}, and no more work or sleeps than {}: \
                 the gap is in where the sides run (a wake-up that crosses CPUs, bytes that \
                 cross caches) or the machine's noise",
                short(a),
                short(b)
            )
        } else {
            format!("; {calls} per message (the work per message was not accounted)")
        }
    };
    format!(
        "{}: {}; {}: {}{verdict}",
        short(a),
        per_message(x),
        short(b),
        per_message(y)
    )
}

fn short(name: &str) -> String {
    if name.starts_with("exercise") {
        name.split(' ').next().unwrap_or(name).into()
    } else if name.starts_with("C: ") {
        "C".into()
    } else {
        "raw".into()
    }
}

/// What limits this run, from the run's own numbers: caches, memory bandwidth, wake-ups.
fn limits(run: &Run) -> String {
    let m = &run.machine;
    let mut out = String::from("What limits this run:\n\n");
    let cache = |level: &str| {
        m.caches
            .iter()
            .find(|c| c.level == level && c.kind != "Instruction")
            .map(|c| c.size.clone())
    };
    let kib = |s: &str| {
        s.trim_end_matches('K')
            .parse::<usize>()
            .ok()
            .map(|k| k * 1024)
    };
    let at = |rows: &[Throughput], name: &str, size: usize, two: bool| {
        find(rows, name, size).and_then(|r| median(if two { &r.two_cpus } else { &r.one_cpu }))
    };
    let mem = |name: &str| at(&run.memcpy, name, 1 << 20, false);
    let (cached, from_memory) = (mem("memcpy (cache-resident)"), mem("memcpy (from memory)"));
    let gb = |v: Option<f64>| v.map_or("—".into(), |v| format!("{:.1} GB/s", v / 1e9));
    let _ = writeln!(
        out,
        "- **Caches** (per CPU, as /sys reports them): L1d {}, L2 {}, L3 {}. **memcpy of 1 MiB**: \
         {} with source and destination in the caches, {} when they walk through 256 MiB (the \
         memory bandwidth one core gets here).",
        cache("1").unwrap_or_default(),
        cache("2").unwrap_or_default(),
        cache("3").unwrap_or_default(),
        gb(cached),
        gb(from_memory)
    );
    let spin = at(
        &run.throughput,
        "shared-memory ring (spin, then yield)",
        1 << 20,
        true,
    );
    let futex = at(
        &run.throughput,
        "shared-memory ring (futex wake-up)",
        1 << 20,
        true,
    );
    let ex04 = at(
        &run.solutions,
        "exercise04 shared-memory ring (4 MiB)",
        1 << 20,
        true,
    );
    // The raw ring that copies into a buffer as exercise04's consumer does, measured in turns
    // with it.
    let into_buffer = find(
        &run.solutions,
        "exercise04 shared-memory ring (4 MiB)",
        1 << 20,
    )
    .and_then(|r| r.raw_in_turns.as_ref())
    .and_then(|[_, two]| median(two));
    let r = |a: Option<f64>, b: Option<f64>| fmt_ratio(speed(a, b));
    let l2_small = cache("2")
        .and_then(|s| kib(&s))
        .is_some_and(|l2| l2 < RING_BYTES);
    let _ = writeln!(
        out,
        "- **The ring at 1 MiB per write, two CPUs**: the raw ring {} when it spins ({} of \
         cache-resident memcpy, {} of memcpy from memory), {} with a futex wake-up; exercise04's \
         ring {} ({} of cache-resident memcpy, target 0.8; {} of the raw spinning ring, whose \
         consumer checks the bytes where they lie, while exercise04's copies them out and the \
         benchmark then checks the copy; {} of the raw ring whose consumer does the same, {} in \
         the same minutes).{}",
        gb(spin),
        r(spin, cached),
        r(spin, from_memory),
        gb(futex),
        gb(ex04),
        r(ex04, cached),
        r(ex04, spin),
        r(ex04, into_buffer),
        gb(into_buffer),
        if l2_small {
            " The 4 MiB ring is larger than one CPU's L2: what the producer writes leaves its L2 \
             and the consumer fetches it from the shared L3 or from memory, a copy between two \
             cores' caches that cache-resident memcpy never makes. The raw ring, with nothing \
             else in its loop, shows how far that lets any ring go on this machine."
        } else {
            ""
        }
    );
    let kernel_best = run
        .throughput
        .iter()
        .filter(|t| t.size == 64 && !t.mechanism.contains("ring"))
        .filter_map(|t| median(&t.two_cpus).or(median(&t.one_cpu)))
        .fold(None, |best: Option<f64>, v| {
            Some(best.map_or(v, |b| b.max(v)))
        });
    let spin64 = at(
        &run.throughput,
        "shared-memory ring (spin, then yield)",
        64,
        true,
    );
    let futex64 = at(
        &run.throughput,
        "shared-memory ring (futex wake-up)",
        64,
        true,
    );
    let futex_calls = calls(run, "throughput", "shared-memory ring (futex wake-up)", 64)
        .map(per_message)
        .map(|c| format!(" (system calls per 64-byte write: {c})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- **Wake-ups**: at 64 B per write on two CPUs the spinning ring moves {} the best \
         kernel-copying mechanism (target 5), the futex ring {}{futex_calls}: a ring that sleeps \
         when it is empty pays a wake-up each time the other side finds it so.",
        r(spin64, kernel_best) + "×",
        r(futex64, kernel_best) + "×",
    );
    let _ = writeln!(
        out,
        "- **The machine**: {} CPUs, load average {} at the start and {} at the end of the \
         run. {}",
        m.cores,
        m.load_average_start,
        m.load_average_end,
        if m.note.is_empty() {
            "A load above 0.5 means other work shared the CPUs, and the spinning rows suffer most."
        } else {
            m.note.as_str()
        }
    );
    out
}

const RING_BYTES: usize = 4 << 20;

type Plot = Result<(), Box<dyn std::error::Error>>;

/// Throughput by size, one line per mechanism, both axes logarithmic.
pub fn throughput_chart(run: &Run, two: bool, path: &Path) -> Plot {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = if two {
        "Throughput, two CPUs"
    } else {
        "Throughput, one CPU"
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((32f64..2.0e6).log_scale(), (1e6f64..1e11).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("bytes per write")
        .y_desc("bytes per second")
        .x_label_formatter(&|x| size(x.round() as usize))
        .y_label_formatter(&|y| format!("{:.0e}", y))
        .draw()?;
    let mut names: Vec<&str> = Vec::new();
    for r in run.memcpy.iter().chain(&run.throughput) {
        if !names.contains(&r.mechanism.as_str()) {
            names.push(&r.mechanism);
        }
    }
    for (i, name) in names.iter().enumerate() {
        let points: Vec<(f64, f64)> = run
            .memcpy
            .iter()
            .chain(&run.throughput)
            .filter(|r| r.mechanism == *name)
            .filter_map(|r| {
                let cell = if two && r.two_cpus.is_some() {
                    &r.two_cpus
                } else {
                    &r.one_cpu
                };
                median(cell).map(|m| (r.size as f64, m))
            })
            .collect();
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Horizontal bars of the median round trip, a whisker to the 99th percentile.
pub fn latency_chart(run: &Run, path: &Path) -> Plot {
    let rows: Vec<&Latency> = run.latency.iter().chain(&run.solution_latency).collect();
    let height = 80 + 34 * rows.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = rows.len() as f64;
    let labels: Vec<String> = rows.iter().map(|r| r.mechanism.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "One-byte round trip: median bar, 99th percentile whisker",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(300)
        .build_cartesian_2d((0.1f64..10_000.0).log_scale(), 0f64..n)?;
    chart
        .configure_mesh()
        .x_desc("µs per round trip (log scale)")
        .y_labels(rows.len() * 2 + 1)
        .y_label_formatter(&|y| {
            let i = (n - y - 0.5).round();
            if (n - y - 0.5 - i).abs() < 0.01 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .disable_y_mesh()
        .draw()?;
    for (two, color, label) in [(false, BLUE, "one CPU"), (true, RED, "two CPUs")] {
        let bars = rows.iter().enumerate().filter_map(|(i, r)| {
            let cell = if two { &r.two_cpus } else { &r.one_cpu };
            let c = cell.as_ref()?;
            let top = n - i as f64 - if two { 0.5 } else { 0.1 };
            Some((top, c.median? * 1e6, c.p99.unwrap_or(c.median?) * 1e6))
        });
        let bars: Vec<_> = bars.collect();
        chart
            .draw_series(bars.iter().map(|&(top, m, _)| {
                Rectangle::new([(0.1, top), (m, top - 0.35)], color.mix(0.6).filled())
            }))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart.draw_series(bars.iter().map(|&(top, m, p)| {
            PathElement::new([(m, top - 0.175), (p, top - 0.175)], BLACK.stroke_width(1))
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(median: f64) -> serde_json::Value {
        serde_json::json!({"median": median, "min": median, "max": median, "p99": null,
                           "verified": true, "error": null})
    }

    /// A run with the raw FIFO at 2 GB/s on its own, and a solution beside it.
    fn run(raw_in_turns: serde_json::Value) -> Run {
        serde_json::from_value(serde_json::json!({
            "quick": true,
            "machine": {"cpu_model": "", "caches": [], "cores": 2, "allowed_cpus": [0, 1],
                        "kernel": "", "msgmax": 8192, "load_average_start": "",
                        "load_average_end": "", "seconds": 0.0, "note": ""},
            "memcpy": [], "syscall_seconds": 1e-7, "latency": [], "solution_latency": [],
            "throughput": [{"mechanism": "FIFO", "size": 4096, "one_cpu": cell(2e9),
                            "two_cpus": cell(2e9), "raw": null}],
            "solutions": [{"mechanism": "exercise02 x", "size": 4096, "one_cpu": cell(1e9),
                           "two_cpus": cell(1e9), "raw": "FIFO",
                           "raw_in_turns": raw_in_turns}],
        }))
        .expect("a run")
    }

    #[test]
    fn a_solution_is_divided_by_its_raw_mechanism_measured_in_turns_where_there_is_one() {
        let alone = run(serde_json::Value::Null);
        let r = &alone.solutions[0];
        assert_eq!(
            throughput_vs_raw(&alone, r),
            Some(("FIFO", [Some(0.5), Some(0.5)]))
        );
        let in_turns = run(serde_json::json!([cell(1e9), cell(4e9)]));
        let r = &in_turns.solutions[0];
        assert_eq!(
            throughput_vs_raw(&in_turns, r),
            Some(("FIFO", [Some(1.0), Some(0.25)]))
        );
        // Older runs have no such field, and a run written without one leaves it out.
        assert!(!serde_json::to_string(&alone)
            .unwrap()
            .contains("raw_in_turns"));
    }
}
