//! The whole lab in one run: every mechanism, each size, both placements; then the files.

use std::path::Path;

use crate::cbase;
use crate::lab::{self, Fds, Pattern};
use crate::proc::{Pinned, Placement, Result};
use crate::results::{Cell, Latency, Run, Throughput};
use crate::ring::{self, Wait};
use crate::stats::{trials, Sample};
use crate::{progress, wanted, LatencyRow, Row};

pub const SIZES: [usize; 4] = [64, 4096, 64 * 1024, 1 << 20];

pub struct Lab {
    pub memcpy: Vec<Throughput>,
    pub syscall_seconds: f64,
    pub throughput: Vec<Throughput>,
    pub latency: Vec<Latency>,
    /// The same loops in C (c/raw.c), named as their Rust rows.
    pub c_throughput: Vec<Throughput>,
    pub c_latency: Vec<Latency>,
}

/// The capacity of the raw ring, as exercise04's ring is measured with.
pub const RING_CAPACITY: usize = 4 << 20;

pub fn ring_name(wait: Wait) -> &'static str {
    match wait {
        Wait::Spin => "shared-memory ring (spin, then yield)",
        Wait::Futex => "shared-memory ring (futex wake-up)",
    }
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
    let big = if quick { 64 << 20 } else { 256 << 20 };
    let mut buffers = lab::Buffers::new(big);
    for size in SIZES {
        for (name, span) in [
            ("memcpy (cache-resident)", size),
            ("memcpy (from memory)", big),
        ] {
            let one = on(Placement::SameCpu, cpus, &mut |_| {
                trials(n, || lab::memcpy(size, span, &mut buffers, bytes(size) * 8))
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
    drop(buffers);
    let syscall_seconds = lab::syscall_cost(if quick { 100_000 } else { 2_000_000 });

    let mut throughput = Vec::new();
    let mut c_throughput = Vec::new();
    let row = |name: &str, size, [one, two]: [Option<Cell>; 2]| Throughput {
        mechanism: name.into(),
        size,
        one_cpu: one,
        two_cpus: two,
        raw: None,
    };
    for fds in Fds::ALL {
        progress(fds.name());
        for size in fds.sizes(&SIZES) {
            let cells = both_throughput(cpus, n, &|cpu| {
                lab::throughput(fds, size, bytes(size), &pattern, cpu)
            });
            throughput.push(row(fds.name(), size, cells));
            if let Some(kind) = cbase::kind(fds) {
                let cells = both_throughput(cpus, n, &|cpu| {
                    cbase::fd_throughput(kind, size, bytes(size), &pattern, cpu)
                });
                c_throughput.push(row(fds.name(), size, cells));
            }
        }
    }
    for wait in [Wait::Spin, Wait::Futex] {
        progress(ring_name(wait));
        for size in SIZES {
            // More bytes than the other rows: the ring is fast, and a trial must outlast a
            // time slice or two to say anything.
            let total =
                bytes(size).max(if quick { 16 << 20 } else { 512 << 20 }.min(size * 20_000));
            let cells = both_throughput(cpus, n, &|cpu| {
                ring::throughput(wait, size, RING_CAPACITY, total, &pattern, cpu)
            });
            throughput.push(row(ring_name(wait), size, cells));
            let cells = both_throughput(cpus, n, &|cpu| {
                cbase::ring_throughput(wait, size, RING_CAPACITY, total, &pattern, cpu)
            });
            c_throughput.push(row(ring_name(wait), size, cells));
        }
    }
    progress("System V message queue");
    let msgmax = lab::msgmax();
    let mut queue_sizes: Vec<usize> = SIZES.iter().copied().filter(|&s| s < msgmax).collect();
    queue_sizes.push(msgmax);
    for size in queue_sizes {
        let cells = both_throughput(cpus, n, &|cpu| {
            lab::queue_throughput(size, bytes(size), &pattern, cpu)
        });
        throughput.push(row("System V message queue", size, cells));
        let cells = both_throughput(cpus, n, &|cpu| {
            cbase::queue_throughput(size, bytes(size), &pattern, cpu)
        });
        c_throughput.push(row("System V message queue", size, cells));
    }

    progress("latency");
    let mut latency = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(usize) -> Result<Vec<f64>>| {
        let [one, two] = both_latency(cpus, f);
        latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: two,
            raw: None,
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
    let mut c_latency = Vec::new();
    let mut add_c = |name: &str, f: &dyn Fn(usize) -> Result<Vec<f64>>| {
        let [one, two] = both_latency(cpus, f);
        c_latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: two,
            raw: None,
        });
    };
    for fds in Fds::ALL {
        if let Some(kind) = cbase::kind(fds) {
            add_c(fds.name(), &|cpu| cbase::fd_latency(kind, rounds, cpu));
        }
    }
    add_c("System V message queue", &|cpu| {
        cbase::queue_latency(rounds, cpu)
    });
    Lab {
        memcpy,
        syscall_seconds,
        throughput,
        latency,
        c_throughput,
        c_latency,
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
        raw: r.raw.map(str::to_owned),
    }
}

/// Exercises 02, 05, 07, 08 and 09 beside their raw mechanisms: (throughput, latency) rows.
pub fn more_solutions(
    quick: bool,
    n: usize,
    rounds: usize,
    cpus: &[usize],
) -> (Vec<Throughput>, Vec<Latency>) {
    use crate::more;
    let pattern = Pattern::new(1 << 20);
    let total = if quick { 4 << 20 } else { 64 << 20 };
    let mut throughput = Vec::new();
    if wanted("exercise02") {
        progress("exercise02 send_message / receive_message");
        let [one, two] = both_throughput(cpus, n, &|cpu| more::ex02_fifo(total, &pattern, cpu));
        throughput.push(Throughput {
            mechanism: "exercise02 send_message / receive_message".into(),
            size: 4096,
            one_cpu: one,
            two_cpus: two,
            raw: Some(Fds::Fifo.name().into()),
        });
    }
    let mut latency = Vec::new();
    let mut add = |name: &str, raw: &str, cells: [Option<Cell>; 2]| {
        let [one, two] = cells;
        latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: two,
            raw: Some(raw.into()),
        });
    };
    if wanted("exercise05") {
        progress("exercise05 SignalCounter ping-pong");
        add(
            "exercise05 SignalCounter (handler + self-pipe)",
            "signals (kill + sigwaitinfo)",
            both_latency(cpus, &|cpu| more::ex05_signals(rounds, cpu)),
        );
    }
    if wanted("exercise07") {
        progress("exercise07 Semaphore ping-pong");
        add(
            "exercise07 Semaphore post / wait",
            "System V semaphores",
            both_latency(cpus, &|cpu| more::ex07_semaphores(rounds, cpu)),
        );
    }
    if wanted("exercise08") {
        progress("exercise08 EchoServer / Client::echo");
        for (name, raw, endpoint) in [
            (
                "exercise08 Client::echo (AF_UNIX)",
                Fds::UnixStream.name(),
                exercise08::Endpoint::UnixAbstract(format!(
                    "ipclab-bench-ex08-{}",
                    std::process::id()
                )),
            ),
            (
                "exercise08 Client::echo (TCP)",
                Fds::Tcp.name(),
                exercise08::Endpoint::Tcp(std::net::SocketAddrV4::new(
                    std::net::Ipv4Addr::LOCALHOST,
                    0,
                )),
            ),
        ] {
            let cells = [Placement::SameCpu, Placement::CrossCpu].map(|p| {
                p.cpus(cpus).map(|(ours, theirs)| {
                    let old = Pinned::to(ours);
                    let times = old.and_then(|_pinned| {
                        more::ex08_echo(endpoint.clone(), rounds, ours, theirs)
                    });
                    latency_cell(times)
                })
            });
            add(name, raw, cells);
        }
    }
    if !wanted("exercise09") {
        return (throughput, latency);
    }
    progress("exercise09 run_pipeline and sh -c");
    let pipelines = if quick { 5 } else { 40 };
    let sh = "sh -c, a pipeline of two /bin/true";
    for (name, through_sh) in [
        (sh, true),
        (
            "exercise09 run_pipeline, a pipeline of two /bin/true",
            false,
        ),
    ] {
        let one = on(Placement::SameCpu, cpus, &mut |_| {
            (0..pipelines)
                .map(|_| more::ex09_pipeline(through_sh))
                .collect()
        })
        .map(latency_cell);
        latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: None,
            raw: (!through_sh).then(|| sh.into()),
        });
    }
    (throughput, latency)
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
        .chain(&run.solutions)
        .chain(&run.c_throughput);
    let ok = |c: &Option<Cell>| c.as_ref().is_none_or(|c| c.verified && c.error.is_none());
    all.clone().all(|r| ok(&r.one_cpu) && ok(&r.two_cpus))
        && run
            .latency
            .iter()
            .chain(&run.solution_latency)
            .chain(&run.c_latency)
            .all(|r| ok(&r.one_cpu) && ok(&r.two_cpus))
}
