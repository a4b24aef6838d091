//! The whole lab in one run: every mechanism, each size, both placements; then the files.

use std::path::Path;

use crate::lab::{self, Fds, Pattern};
use crate::proc::{Pinned, Placement, Result};
use crate::results::{Cell, Latency, Run, Throughput};
use crate::stats::{trials, Sample};
use crate::{progress, LatencyRow, Row};

pub const SIZES: [usize; 4] = [64, 4096, 64 * 1024, 1 << 20];

pub struct Lab {
    pub memcpy: Vec<Throughput>,
    pub syscall_seconds: f64,
    pub throughput: Vec<Throughput>,
    pub latency: Vec<Latency>,
}

fn cell(r: Result<Sample>) -> Cell {
    match r {
        Ok(s) => Cell {
            median: Some(s.median),
            min: Some(s.min),
            max: Some(s.max),
            p99: None,
            verified: true,
            error: None,
        },
        Err(e) => Cell::failed(e),
    }
}

fn latency_cell(r: Result<Vec<f64>>) -> Cell {
    match r {
        Ok(mut t) if !t.is_empty() => {
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
            Cell {
                median: Some(at(0.5)),
                min: Some(t[0]),
                max: Some(t[t.len() - 1]),
                p99: Some(at(0.99)),
                verified: true,
                error: None,
            }
        }
        Ok(_) => Cell::failed("no round trips"),
        Err(e) => Cell::failed(e),
    }
}

/// Runs `f(child CPU)` pinned as `placement` says; `None` if the CPUs do not allow it.
fn on<T>(
    placement: Placement,
    cpus: &[usize],
    f: &mut dyn FnMut(usize) -> Result<T>,
) -> Option<Result<T>> {
    placement.cpus(cpus).map(|(ours, theirs)| {
        let _pinned = Pinned::to(ours)?;
        f(theirs)
    })
}

fn both_throughput(
    cpus: &[usize],
    n: usize,
    trial: &dyn Fn(usize) -> Result<f64>,
) -> [Option<Cell>; 2] {
    [Placement::SameCpu, Placement::CrossCpu]
        .map(|p| on(p, cpus, &mut |cpu| trials(n, || trial(cpu))).map(cell))
}

fn both_latency(cpus: &[usize], f: &dyn Fn(usize) -> Result<Vec<f64>>) -> [Option<Cell>; 2] {
    [Placement::SameCpu, Placement::CrossCpu]
        .map(|p| on(p, cpus, &mut |cpu| f(cpu)).map(latency_cell))
}

pub fn run(quick: bool, n: usize, rounds: usize, cpus: &[usize]) -> Lab {
    // Bytes per trial: enough writes to average over, capped so that one trial stays short.
    let cap = if quick { 4 << 20 } else { 128 << 20 };
    let writes = if quick { 1000 } else { 20_000 };
    let bytes = |size: usize| (size * writes).min(cap).max(size * 4);
    let pattern = Pattern::new(1 << 20);

    progress("memcpy and a system call");
    let mut memcpy = Vec::new();
    for size in SIZES {
        for (name, span) in [
            ("memcpy (cache-resident)", size),
            ("memcpy (from memory)", 256 << 20),
        ] {
            let span = if quick && span > size { 64 << 20 } else { span };
            let one = on(Placement::SameCpu, cpus, &mut |_| {
                trials(n, || lab::memcpy(size, span, bytes(size) * 8))
            })
            .map(cell);
            memcpy.push(Throughput {
                mechanism: name.into(),
                size,
                one_cpu: one,
                two_cpus: None,
                raw: None,
            });
        }
    }
    let syscall_seconds = lab::syscall_cost(if quick { 100_000 } else { 2_000_000 });

    let mut throughput = Vec::new();
    for fds in Fds::ALL {
        progress(fds.name());
        for size in fds.sizes(&SIZES) {
            let [one, two] = both_throughput(cpus, n, &|cpu| {
                lab::throughput(fds, size, bytes(size), &pattern, cpu)
            });
            throughput.push(Throughput {
                mechanism: fds.name().into(),
                size,
                one_cpu: one,
                two_cpus: two,
                raw: None,
            });
        }
    }
    progress("System V message queue");
    let msgmax = lab::msgmax();
    let mut queue_sizes: Vec<usize> = SIZES.iter().copied().filter(|&s| s < msgmax).collect();
    queue_sizes.push(msgmax);
    for size in queue_sizes {
        let [one, two] = both_throughput(cpus, n, &|cpu| {
            lab::queue_throughput(size, bytes(size), &pattern, cpu)
        });
        throughput.push(Throughput {
            mechanism: "System V message queue".into(),
            size,
            one_cpu: one,
            two_cpus: two,
            raw: None,
        });
    }

    progress("latency");
    let mut latency = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(usize) -> Result<Vec<f64>>| {
        let [one, two] = both_latency(cpus, f);
        latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: two,
        });
    };
    for fds in Fds::ALL {
        add(fds.name(), &|cpu| lab::fd_latency(fds, rounds, cpu));
    }
    add("System V message queue", &|cpu| {
        lab::queue_latency(rounds, cpu)
    });
    add("System V semaphores", &|cpu| {
        lab::semaphore_latency(rounds, cpu)
    });
    add("System V shared memory (spin, then yield)", &|cpu| {
        lab::shm_latency(rounds, cpu)
    });
    add("signals (kill + sigwaitinfo)", &|cpu| {
        lab::signal_latency(rounds, cpu)
    });
    add("eventfd", &|cpu| lab::eventfd_latency(rounds, cpu));
    Lab {
        memcpy,
        syscall_seconds,
        throughput,
        latency,
    }
}

pub fn solution_row(r: Row) -> Throughput {
    Throughput {
        mechanism: r.mechanism,
        size: r.size,
        one_cpu: r.one.map(cell),
        two_cpus: r.two.map(cell),
        raw: r.raw.map(str::to_owned),
    }
}

pub fn solution_latency(r: LatencyRow) -> Latency {
    let secs = |c: Option<Result<Sample>>| c.map(cell);
    Latency {
        mechanism: r.mechanism,
        one_cpu: secs(r.same),
        two_cpus: secs(r.cross),
    }
}

/// Writes results.json, results.md and the charts into `dir`; returns the Markdown.
pub fn write(run: &Run, dir: &Path) -> std::result::Result<String, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(run)?)?;
    let markdown = crate::results::untranslated(&crate::results::markdown(run));
    std::fs::write(dir.join("results.md"), &markdown)?;
    crate::results::throughput_chart(run, false, &dir.join("throughput-one-cpu.svg"))?;
    crate::results::throughput_chart(run, true, &dir.join("throughput-two-cpus.svg"))?;
    crate::results::latency_chart(run, &dir.join("latency.svg"))?;
    Ok(markdown)
}

/// Every cell there and verified.
pub fn complete(run: &Run) -> bool {
    let all = run
        .memcpy
        .iter()
        .chain(&run.throughput)
        .chain(&run.solutions);
    let ok = |c: &Option<Cell>| c.as_ref().is_none_or(|c| c.verified && c.error.is_none());
    all.clone().all(|r| ok(&r.one_cpu) && ok(&r.two_cpus))
        && run
            .latency
            .iter()
            .chain(&run.solution_latency)
            .all(|r| ok(&r.one_cpu) && ok(&r.two_cpus))
}
