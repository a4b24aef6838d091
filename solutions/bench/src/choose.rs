//! "Which mechanism when, in this run": the choices a programmer faces, each answered by ranking
//! the run's own rows. The book's prose says why each answer holds; the numbers come from here so
//! that they can never disagree with the run.

use std::fmt::Write as _;

use crate::results::{Cell, Latency, Run, Throughput};

/// The rows a choice is made between: all mechanisms, or the ones named.
enum Among<'a> {
    All,
    Only(&'a [&'a str]),
}

impl Among<'_> {
    fn admits(&self, name: &str) -> bool {
        match self {
            Among::All => true,
            Among::Only(names) => names.contains(&name),
        }
    }
}

fn median(c: &Option<Cell>) -> Option<f64> {
    c.as_ref().filter(|c| c.verified).and_then(|c| c.median)
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The rows at `size` bytes per write on two CPUs, fastest first, at most `n`:
/// "name 5.10 GB/s (0.39 of memcpy)".
fn by_throughput(run: &Run, bytes: usize, among: Among, n: usize) -> String {
    let memcpy = run
        .memcpy
        .iter()
        .find(|r| r.size == bytes && r.mechanism.contains("cache-resident"))
        .and_then(|r| median(&r.one_cpu));
    let mut rows: Vec<(&Throughput, f64)> = run
        .throughput
        .iter()
        .filter(|r| r.size == bytes && among.admits(&r.mechanism))
        .filter_map(|r| Some((r, median(&r.two_cpus)?)))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = rows
        .iter()
        .take(n)
        .map(|(r, v)| {
            let of = memcpy.map_or(String::new(), |m| format!(" ({:.2} of memcpy)", v / m));
            format!("{} {:.2} GB/s{of}", r.mechanism, v / 1e9)
        })
        .collect();
    or_dash(list)
}

/// The round trips on one CPU (`two == false`) or two, fastest first, at most `n`: "name 4.1 µs".
fn by_latency(run: &Run, two: bool, among: Among, n: usize) -> String {
    let at = |r: &Latency| median(if two { &r.two_cpus } else { &r.one_cpu });
    let mut rows: Vec<(&Latency, f64)> = run
        .latency
        .iter()
        .filter(|r| among.admits(&r.mechanism))
        .filter_map(|r| Some((r, at(r)?)))
        .collect();
    rows.sort_by(|a, b| a.1.total_cmp(&b.1));
    let list: Vec<String> = rows
        .iter()
        .take(n)
        .map(|(r, v)| format!("{} {:.1} µs", r.mechanism, v * 1e6))
        .collect();
    or_dash(list)
}

fn or_dash(list: Vec<String>) -> String {
    if list.is_empty() {
        "—".into()
    } else {
        list.join(" · ")
    }
}

const RING_SPIN: &str = "shared-memory ring (spin, then yield)";
const RING_FUTEX: &str = "shared-memory ring (futex wake-up)";
const WAKE_UPS: [&str; 3] = [
    "eventfd",
    "signals (kill + sigwaitinfo)",
    "System V semaphores",
];
const BY_NAME: [&str; 3] = ["FIFO", "AF_UNIX stream", "System V message queue"];
const BOUNDARIES: [&str; 2] = ["socketpair datagram", "System V message queue"];
const NETWORK: [&str; 2] = ["TCP loopback", "AF_UNIX stream"];

/// The Markdown of the "Which mechanism when" table.
pub fn markdown(run: &Run) -> String {
    let kernel: Vec<&str> = run
        .throughput
        .iter()
        .map(|r| r.mechanism.as_str())
        .filter(|m| *m != RING_SPIN && *m != RING_FUTEX)
        .collect();
    let rows = [
        (
            "bulk data (1 MiB per write, two CPUs)".to_owned(),
            by_throughput(run, 1 << 20, Among::All, 4),
        ),
        (
            "many small messages (64 B per write, two CPUs)".to_owned(),
            by_throughput(run, 64, Among::All, 4),
        ),
        (
            "small messages through the kernel only (64 B, two CPUs)".to_owned(),
            by_throughput(run, 64, Among::Only(&kernel), 3),
        ),
        (
            "a one-byte request and its answer, one CPU".to_owned(),
            by_latency(run, false, Among::All, 4),
        ),
        (
            "a one-byte request and its answer, two CPUs".to_owned(),
            by_latency(run, true, Among::All, 4),
        ),
        (
            "only a wake-up, no data (round trip, two CPUs)".to_owned(),
            by_latency(run, true, Among::Only(&WAKE_UPS), 3),
        ),
        (
            "unrelated processes that meet by a path or a key (4 KiB, two CPUs)".to_owned(),
            by_throughput(run, 4096, Among::Only(&BY_NAME), 3),
        ),
        (
            "the kernel keeps each message whole (4 KiB, two CPUs)".to_owned(),
            by_throughput(run, 4096, Among::Only(&BOUNDARIES), 2),
        ),
        (
            format!(
                "the same code across machines: TCP on loopback beside AF_UNIX ({}, two CPUs)",
                size(64 << 10)
            ),
            by_throughput(run, 64 << 10, Among::Only(&NETWORK), 2),
        ),
    ];
    let mut out = String::from(
        "Which mechanism when, in this run (fastest first; throughput in GB/s, round trips as \
         medians):\n\n| if you need | the candidates in this run |\n|---|---|\n",
    );
    for (need, candidates) in rows {
        let _ = writeln!(out, "| {need} | {candidates} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Machine;

    fn cell(v: f64) -> Option<Cell> {
        Some(Cell {
            median: Some(v),
            min: None,
            max: None,
            p99: None,
            verified: true,
            error: None,
        })
    }

    fn throughput(name: &str, size: usize, two: f64) -> Throughput {
        Throughput {
            mechanism: name.into(),
            size,
            one_cpu: cell(two),
            two_cpus: cell(two),
            raw: None,
            raw_in_turns: None,
        }
    }

    fn run() -> Run {
        Run {
            quick: true,
            machine: Machine {
                cpu_model: String::new(),
                caches: Vec::new(),
                cores: 2,
                allowed_cpus: vec![0, 1],
                kernel: String::new(),
                msgmax: 8192,
                load_average_start: String::new(),
                load_average_end: String::new(),
                seconds: 0.0,
                note: String::new(),
            },
            memcpy: vec![throughput("memcpy (cache-resident)", 64, 10e9)],
            syscall_seconds: 1e-7,
            throughput: vec![
                throughput("pipe (64 KiB)", 64, 0.1e9),
                throughput(RING_SPIN, 64, 2e9),
                throughput("FIFO", 64, 0.2e9),
            ],
            latency: vec![Latency {
                mechanism: "eventfd".into(),
                one_cpu: cell(4e-6),
                two_cpus: None,
                raw: None,
                raw_in_turns: None,
            }],
            solutions: Vec::new(),
            solution_latency: Vec::new(),
            c_throughput: Vec::new(),
            c_latency: Vec::new(),
            syscalls: Vec::new(),
        }
    }

    #[test]
    fn candidates_come_fastest_first_with_their_share_of_memcpy() {
        let run = run();
        assert_eq!(
            by_throughput(&run, 64, Among::All, 2),
            "shared-memory ring (spin, then yield) 2.00 GB/s (0.20 of memcpy) · \
             FIFO 0.20 GB/s (0.02 of memcpy)"
        );
        let table = markdown(&run);
        assert!(
            table.contains("| small messages through the kernel only (64 B, two CPUs) | FIFO"),
            "{table}"
        );
    }

    #[test]
    fn a_placement_not_measured_is_a_dash_not_a_guess() {
        let run = run();
        assert_eq!(by_latency(&run, false, Among::All, 3), "eventfd 4.0 µs");
        assert_eq!(by_latency(&run, true, Among::All, 3), "—");
    }
}
