//! The whole lab in one run: every mechanism, each size, both placements; then the files.

use std::path::Path;

use crate::cbase;
use crate::lab::{self, Fds, Pattern};
use crate::proc::{allowed_cpus, Pinned, Placement, Result};
use crate::results::{Cell, Latency, Run, Throughput};
use crate::ring::{self, Read, Wait};
use crate::stats::{paired_trials, trials, Sample};
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

/// The raw spinning ring whose consumer copies into a buffer: exercise04's ring's raw mechanism.
pub const RING_INTO_BUFFER: &str = "shared-memory ring, read into a buffer (spin, then yield)";

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

/// Runs `pair(child CPU)` pinned on one CPU and on two: the cells of two measurements taken in
/// turns, as (the first's, the second's). Pinning that fails marks both cells failed.
fn pair_on(
    cpus: &[usize],
    pair: &mut dyn FnMut(usize) -> Result<(Cell, Cell)>,
) -> (Cells, Option<Cells>) {
    let [one, two] = [Placement::SameCpu, Placement::CrossCpu].map(|p| {
        on(p, cpus, pair)
            .map(|r| r.unwrap_or_else(|e| (Cell::failed(&e), Cell::failed(e))))
            .map_or((None, None), |(a, b)| (Some(a), Some(b)))
    });
    ([one.0, two.0], Some([one.1, two.1]))
}

/// A throughput measurement and, where there is one, what it is compared with (a raw row's C
/// twin, a solution's raw mechanism), one CPU and two. With a second, the two take turns trial
/// by trial, so that the machine's other work weighs on both sides of their ratio alike.
pub(crate) fn throughput_in_turns(
    cpus: &[usize],
    n: usize,
    first: &dyn Fn(usize) -> Result<f64>,
    second: Option<&dyn Fn(usize) -> Result<f64>>,
) -> (Cells, Option<Cells>) {
    let Some(second) = second else {
        return (both_throughput(cpus, n, first), None);
    };
    pair_on(cpus, &mut |cpu| {
        let (a, b) = paired_trials(n, || first(cpu), || second(cpu));
        Ok((cell(a), cell(b)))
    })
}

/// A latency measurement: `(rounds, child CPU)` to the times of its round trips.
pub(crate) type Rounds<'a> = &'a dyn Fn(usize, usize) -> Result<Vec<f64>>;

/// How many turns each of two latency measurements takes, each with its share of the rounds.
const LATENCY_TURNS: usize = 4;

/// As [`throughput_in_turns`], for round trips: with a second measurement, the rounds are run
/// in `LATENCY_TURNS` turns of each, taken alternately.
pub(crate) fn latency_in_turns(
    cpus: &[usize],
    rounds: usize,
    first: Rounds,
    second: Option<Rounds>,
) -> (Cells, Option<Cells>) {
    let Some(second) = second else {
        return (both_latency(cpus, &|cpu| first(rounds, cpu)), None);
    };
    let share = rounds.div_ceil(LATENCY_TURNS);
    pair_on(cpus, &mut |cpu| {
        let (mut a, mut b) = (Ok(Vec::new()), Ok(Vec::new()));
        for turn in 0..LATENCY_TURNS {
            let sides: [(&mut Result<Vec<f64>>, Rounds); 2] = if turn % 2 == 0 {
                [(&mut a, first), (&mut b, second)]
            } else {
                [(&mut b, second), (&mut a, first)]
            };
            for (times, side) in sides {
                if let Ok(list) = times {
                    match side(share, cpu) {
                        Ok(t) => list.extend(t),
                        Err(e) => *times = Err(e),
                    }
                }
            }
        }
        Ok((latency_cell(a), latency_cell(b)))
    })
}

fn both_latency(cpus: &[usize], f: &dyn Fn(usize) -> Result<Vec<f64>>) -> [Option<Cell>; 2] {
    [Placement::SameCpu, Placement::CrossCpu]
        .map(|p| on(p, cpus, &mut |cpu| f(cpu)).map(latency_cell))
}

/// Bytes per trial of a throughput row: enough writes to average over, capped so that one trial
/// stays short.
fn trial_bytes(quick: bool, size: usize) -> usize {
    let cap = if quick { 4 << 20 } else { 128 << 20 };
    let writes = if quick { 1000 } else { 20_000 };
    (size * writes).min(cap).max(size * 4)
}

/// Bytes per trial of a ring row: more than the other rows, because the ring is fast and a
/// trial must outlast a time slice or two to say anything.
fn ring_bytes(quick: bool, size: usize) -> usize {
    trial_bytes(quick, size).max(if quick { 16 << 20 } else { 512 << 20 }.min(size * 20_000))
}

/// The sizes the System V message queue is measured at: the lab's sizes below msgmax, and msgmax.
fn queue_sizes() -> Vec<usize> {
    let msgmax = lab::msgmax();
    let mut sizes: Vec<usize> = SIZES.iter().copied().filter(|&s| s < msgmax).collect();
    sizes.push(msgmax);
    sizes
}

/// One throughput row of the lab, by name and size, in Rust and, if `twins` and it has one, in
/// C: `None` for a name the lab does not measure.
fn lab_throughput(
    name: &str,
    size: usize,
    quick: bool,
    n: usize,
    cpus: &[usize],
    pattern: &Pattern,
    twins: bool,
) -> Option<(Cells, Option<Cells>)> {
    let bytes = trial_bytes(quick, size);
    if let Some(fds) = Fds::ALL.into_iter().find(|f| f.name() == name) {
        let kind = cbase::kind(fds).filter(|_| twins);
        let c = kind.map(|kind| move |cpu| cbase::fd_throughput(kind, size, bytes, pattern, cpu));
        return Some(throughput_in_turns(
            cpus,
            n,
            &|cpu| lab::throughput(fds, size, bytes, pattern, cpu),
            c.as_ref().map(|c| c as &dyn Fn(usize) -> Result<f64>),
        ));
    }
    if let Some(wait) = [Wait::Spin, Wait::Futex]
        .into_iter()
        .find(|&w| ring_name(w) == name)
    {
        let total = ring_bytes(quick, size);
        let c = |cpu| cbase::ring_throughput(wait, size, RING_CAPACITY, total, pattern, cpu);
        return Some(throughput_in_turns(
            cpus,
            n,
            &|cpu| {
                ring::throughput(
                    wait,
                    Read::InPlace,
                    size,
                    RING_CAPACITY,
                    total,
                    pattern,
                    cpu,
                )
            },
            twins.then_some(&c as &dyn Fn(usize) -> Result<f64>),
        ));
    }
    if name == RING_INTO_BUFFER {
        let total = ring_bytes(quick, size);
        let raw = |cpu| {
            ring::throughput(
                Wait::Spin,
                Read::IntoBuffer,
                size,
                RING_CAPACITY,
                total,
                pattern,
                cpu,
            )
        };
        return Some(throughput_in_turns(cpus, n, &raw, None));
    }
    if name == QUEUE {
        let c = |cpu| cbase::queue_throughput(size, bytes, pattern, cpu);
        return Some(throughput_in_turns(
            cpus,
            n,
            &|cpu| lab::queue_throughput(size, bytes, pattern, cpu),
            twins.then_some(&c as &dyn Fn(usize) -> Result<f64>),
        ));
    }
    None
}

/// One row's cells, one CPU and two; a lab row comes with its C twin's where it has one.
type Cells = [Option<Cell>; 2];

const QUEUE: &str = "System V message queue";
const LATENCY_ONLY: [&str; 5] = [
    QUEUE,
    "System V semaphores",
    "System V shared memory (spin, then yield)",
    "signals (kill + sigwaitinfo)",
    "eventfd",
];

/// One latency row of the lab, by name, in Rust and, if `twins` and it has one, in C: `None`
/// for a name the lab does not measure. Each side is given the rounds it makes.
fn lab_latency(
    name: &str,
    rounds: usize,
    cpus: &[usize],
    twins: bool,
) -> Option<(Cells, Option<Cells>)> {
    if let Some(fds) = Fds::ALL.into_iter().find(|f| f.name() == name) {
        let kind = cbase::kind(fds).filter(|_| twins);
        let c = kind.map(|kind| move |rounds, cpu| cbase::fd_latency(kind, rounds, cpu));
        return Some(latency_in_turns(
            cpus,
            rounds,
            &|rounds, cpu| lab::fd_latency(fds, rounds, cpu),
            c.as_ref().map(|c| c as Rounds),
        ));
    }
    let rust: Rounds = match name {
        QUEUE => &lab::queue_latency,
        "System V semaphores" => &lab::semaphore_latency,
        "System V shared memory (spin, then yield)" => &lab::shm_latency,
        "signals (kill + sigwaitinfo)" => &lab::signal_latency,
        "eventfd" => &lab::eventfd_latency,
        _ => return None,
    };
    let wake_up = cbase::wake_up_latency(name);
    let twin: Option<Rounds> = if name == QUEUE {
        Some(&cbase::queue_latency)
    } else {
        wake_up.as_ref().map(|twin| twin as Rounds)
    };
    Some(latency_in_turns(cpus, rounds, rust, twin.filter(|_| twins)))
}

fn throughput_row(name: &str, size: usize, [one, two]: [Option<Cell>; 2]) -> Throughput {
    Throughput {
        mechanism: name.into(),
        size,
        one_cpu: one,
        two_cpus: two,
        raw: None,
        raw_in_turns: None,
    }
}

fn latency_row(name: &str, [one, two]: [Option<Cell>; 2]) -> Latency {
    Latency {
        mechanism: name.into(),
        one_cpu: one,
        two_cpus: two,
        raw: None,
        raw_in_turns: None,
    }
}

/// The lab's rows that `solutions` and `latency` name as their raw mechanisms (for `--only`:
/// the student's race shows the raw loop beside both sides). Rows the lab does not measure
/// (the solutions' own raw rows, such as "pipe, into fresh memory") are left to their caller.
pub fn raw_rows(
    solutions: &[Throughput],
    latency: &[Latency],
    quick: bool,
    n: usize,
    rounds: usize,
    cpus: &[usize],
) -> (Vec<Throughput>, Vec<Latency>) {
    let pattern = Pattern::new(1 << 20);
    let mut throughput: Vec<Throughput> = Vec::new();
    for r in solutions {
        let Some(raw) = &r.raw else { continue };
        if throughput
            .iter()
            .any(|t| &t.mechanism == raw && t.size == r.size)
        {
            continue;
        }
        if let Some((cells, _)) = lab_throughput(raw, r.size, quick, n, cpus, &pattern, false) {
            progress(&format!("the raw mechanism: {raw}"));
            throughput.push(throughput_row(raw, r.size, cells));
        }
    }
    let mut lat: Vec<Latency> = Vec::new();
    for r in latency {
        let Some(raw) = &r.raw else { continue };
        if lat.iter().any(|l| &l.mechanism == raw) {
            continue;
        }
        if let Some((cells, _)) = lab_latency(raw, rounds, cpus, false) {
            progress(&format!("the raw mechanism: {raw}"));
            lat.push(latency_row(raw, cells));
        }
    }
    (throughput, lat)
}

pub fn run(quick: bool, n: usize, rounds: usize, cpus: &[usize]) -> Lab {
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
                trials(n, || {
                    lab::memcpy(size, span, &mut buffers, trial_bytes(quick, size) * 8)
                })
            })
            .map(cell);
            memcpy.push(Throughput {
                mechanism: name.into(),
                size,
                one_cpu: one,
                two_cpus: None,
                raw: None,
                raw_in_turns: None,
            });
        }
    }
    drop(buffers);
    let syscall_seconds = lab::syscall_cost(if quick { 100_000 } else { 2_000_000 });

    let mut throughput = Vec::new();
    let mut c_throughput = Vec::new();
    let rows = Fds::ALL
        .into_iter()
        .flat_map(|fds| fds.sizes(&SIZES).into_iter().map(move |s| (fds.name(), s)))
        .chain(
            [Wait::Spin, Wait::Futex]
                .into_iter()
                .flat_map(|w| SIZES.map(|s| (ring_name(w), s))),
        )
        .chain(queue_sizes().into_iter().map(|s| (QUEUE, s)));
    let mut last = "";
    for (name, size) in rows {
        if name != last {
            progress(name);
            last = name;
        }
        let (rust, c) = lab_throughput(name, size, quick, n, cpus, &pattern, true)
            .expect("the lab measures its own rows");
        throughput.push(throughput_row(name, size, rust));
        if let Some(c) = c {
            c_throughput.push(throughput_row(name, size, c));
        }
    }

    progress("latency");
    let mut latency = Vec::new();
    let mut c_latency = Vec::new();
    let names = Fds::ALL.map(Fds::name).into_iter().chain(LATENCY_ONLY);
    for name in names {
        let (rust, c) =
            lab_latency(name, rounds, cpus, true).expect("the lab measures its own rows");
        latency.push(latency_row(name, rust));
        if let Some(c) = c {
            c_latency.push(latency_row(name, c));
        }
    }
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
        raw_in_turns: r
            .raw_in_turns
            .map(|(one, two)| [one.map(cell), two.map(cell)]),
    }
}

pub fn solution_latency(r: LatencyRow) -> Latency {
    let secs = |c: Option<Result<Sample>>| c.map(cell);
    Latency {
        mechanism: r.mechanism,
        one_cpu: secs(r.same),
        two_cpus: secs(r.cross),
        raw: r.raw.map(str::to_owned),
        raw_in_turns: r.raw_in_turns.map(|(one, two)| [secs(one), secs(two)]),
    }
}

/// exercise02's messages read from the FIFO as it is, and through a `BufReader`.
pub const EX02: &str = "exercise02 send_message / receive_message";
pub const EX02_BUFFERED: &str =
    "exercise02 send_message / receive_message (through a BufReader of PIPE_BUF bytes)";

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
        for (name, buffered) in [(EX02, false), (EX02_BUFFERED, true)] {
            let ([one, two], raw) = throughput_in_turns(
                cpus,
                n,
                &|cpu| more::ex02_fifo(total, &pattern, cpu, buffered),
                Some(&|cpu| lab::throughput(Fds::Fifo, 4096, total, &pattern, cpu)),
            );
            throughput.push(Throughput {
                mechanism: name.into(),
                size: 4096,
                one_cpu: one,
                two_cpus: two,
                raw: Some(Fds::Fifo.name().into()),
                raw_in_turns: raw,
            });
        }
    }
    let mut latency = Vec::new();
    let mut add = |name: &str, raw: &str, (cells, raw_in_turns): (Cells, Option<Cells>)| {
        let [one, two] = cells;
        latency.push(Latency {
            mechanism: name.into(),
            one_cpu: one,
            two_cpus: two,
            raw: Some(raw.into()),
            raw_in_turns,
        });
    };
    if wanted("exercise05") {
        progress("exercise05 SignalCounter ping-pong");
        add(
            "exercise05 SignalCounter (handler + self-pipe)",
            "signals (kill + sigwaitinfo)",
            latency_in_turns(
                cpus,
                rounds,
                &more::ex05_signals,
                Some(&lab::signal_latency),
            ),
        );
    }
    if wanted("exercise07") {
        progress("exercise07 Semaphore ping-pong");
        add(
            "exercise07 Semaphore post / wait",
            "System V semaphores",
            latency_in_turns(
                cpus,
                rounds,
                &more::ex07_semaphores,
                Some(&lab::semaphore_latency),
            ),
        );
    }
    if wanted("exercise08") {
        progress("exercise08 EchoServer / Client::echo");
        for (name, fds, endpoint) in [
            (
                "exercise08 Client::echo (AF_UNIX)",
                Fds::UnixStream,
                exercise08::Endpoint::UnixAbstract(format!(
                    "ipclab-bench-ex08-{}",
                    std::process::id()
                )),
            ),
            (
                "exercise08 Client::echo (TCP)",
                Fds::Tcp,
                exercise08::Endpoint::Tcp(std::net::SocketAddrV4::new(
                    std::net::Ipv4Addr::LOCALHOST,
                    0,
                )),
            ),
        ] {
            // The client's threads are placed too: on the CPU this process is pinned to.
            let echo = |rounds, theirs| {
                let ours = allowed_cpus()?.first().copied().unwrap_or(theirs);
                more::ex08_echo(endpoint.clone(), rounds, ours, theirs)
            };
            let raw = |rounds, cpu| lab::fd_latency(fds, rounds, cpu);
            add(
                name,
                fds.name(),
                latency_in_turns(cpus, rounds, &echo, Some(&raw)),
            );
        }
    }
    if !wanted("exercise09") {
        return (throughput, latency);
    }
    progress("exercise09 run_pipeline and sh -c");
    let pipelines = if quick { 5 } else { 40 };
    let sh = "sh -c, a pipeline of two /bin/true";
    let ex09 = "exercise09 run_pipeline, a pipeline of two /bin/true";
    // One pipeline of each in turns (sh -c first, then run_pipeline, then the other way round).
    let times = on(Placement::SameCpu, cpus, &mut |_| {
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for i in 0..pipelines {
            for through_sh in [i % 2 == 0, i % 2 != 0] {
                let time = more::ex09_pipeline(through_sh)?;
                if through_sh { &mut theirs } else { &mut ours }.push(time);
            }
        }
        Ok((theirs, ours))
    });
    let (sh_cell, ex09_cell) = match times {
        Some(Ok((theirs, ours))) => (Some(latency_cell(Ok(theirs))), Some(latency_cell(Ok(ours)))),
        Some(Err(e)) => (Some(Cell::failed(&e)), Some(Cell::failed(e))),
        None => (None, None),
    };
    latency.push(Latency {
        mechanism: sh.into(),
        one_cpu: sh_cell.clone(),
        two_cpus: None,
        raw: None,
        raw_in_turns: None,
    });
    latency.push(Latency {
        mechanism: ex09.into(),
        one_cpu: ex09_cell,
        two_cpus: None,
        raw: Some(sh.into()),
        raw_in_turns: Some([sh_cell, None]),
    });
    (throughput, latency)
}

/// Writes results.json, results.md, which-mechanism.md and the charts into `dir`; returns the
/// Markdown of both tables.
pub fn write(run: &Run, dir: &Path) -> std::result::Result<String, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(run)?)?;
    let markdown = crate::results::untranslated(&crate::results::markdown(run));
    std::fs::write(dir.join("results.md"), &markdown)?;
    let choose = crate::results::untranslated(&crate::choose::markdown(run));
    std::fs::write(dir.join("which-mechanism.md"), &choose)?;
    crate::results::throughput_chart(run, false, &dir.join("throughput-one-cpu.svg"))?;
    crate::results::throughput_chart(run, true, &dir.join("throughput-two-cpus.svg"))?;
    crate::results::latency_chart(run, &dir.join("latency.svg"))?;
    Ok(format!("{markdown}\n{choose}"))
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
