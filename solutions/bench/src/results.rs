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
    /// The same raw loops written in C (c/raw.c), built and run in the same run; each row has
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
            } else {
                block.to_owned()
            };
            format!("<!-- i18n:skip -->\n{body}")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
        + "\n"
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
    for r in run.latency.iter().chain(&run.solution_latency) {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.mechanism,
            us(&r.one_cpu),
            us(&r.two_cpus)
        );
    }
    let _ = writeln!(
        out,
        "\nReference solutions beside the raw mechanism they use, GB/s:\n\n\
         | solution | bytes per write | one CPU | two CPUs | ÷ raw (one / two CPUs) |\n\
         |---|---:|---:|---:|---|"
    );
    for r in &run.solutions {
        let raw = r.raw.as_ref().and_then(|name| {
            run.solutions
                .iter()
                .find(|x| &x.mechanism == name && x.size == r.size)
        });
        let vs = raw.map_or(String::new(), |raw| {
            format!(
                "{} / {} ({})",
                ratio(median(&r.one_cpu), median(&raw.one_cpu)),
                ratio(median(&r.two_cpus), median(&raw.two_cpus)),
                raw.mechanism
            )
        });
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {vs} |",
            r.mechanism,
            size(r.size),
            gbs(&r.one_cpu),
            gbs(&r.two_cpus)
        );
    }
    out
}

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
