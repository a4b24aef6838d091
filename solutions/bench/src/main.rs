//! `ipclab-bench`: how close do the mechanisms, and the reference solutions, come to the
//! machine's limits?
//!
//! One run measures, side by side: memcpy (the ceiling for anything that copies), raw pipes, a
//! raw socket pair and a raw System V message queue, and the reference solutions' own transfer
//! functions through their public APIs. Then a one-byte ping-pong for each, with both processes
//! on one CPU and on two. It prints Markdown tables; the ratios are the thing to read, since one
//! machine's absolute numbers say little about another's.
//!
//! `cargo xtask bench` runs it (plus the student's edit-to-verdict loop and grading times); alone:
//! `cargo run --release --manifest-path solutions/Cargo.toml -p ipclab-bench [-- --quick]`.
//! `--only exerciseNN` measures that exercise's rows alone (no lab, no charts): `cargo ipclab
//! bench N` runs it twice, built against the reference and against the student's crate.

#[cfg(not(target_os = "linux"))]
compile_error!("ipclab-bench measures Linux system calls: build it on Linux.");

mod cbase;
mod choose;
mod count;
mod lab;
mod more;
mod proc;
mod raw;
mod results;
mod ring;
mod solutions;
mod stats;
mod suite;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use proc::{allowed_cpus, Pinned, Placement, Result};
use stats::{trials, Sample};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// How much work one run does: trials per measurement, and a scale for the bytes per trial.
#[derive(Clone, Copy)]
struct Effort {
    trials: usize,
    /// Bytes per trial are `base >> shrink`.
    shrink: u32,
    /// Exchanges per latency trial.
    rounds: usize,
}

impl Effort {
    fn bytes(self, base: usize) -> usize {
        (base >> self.shrink).max(MIB)
    }
}

/// `--only exerciseNN`: the exercise whose rows alone are measured (for `cargo ipclab bench N`).
static ONLY: OnceLock<String> = OnceLock::new();

/// Whether this run measures `exercise`'s rows (every exercise's, unless `--only` says one).
pub(crate) fn wanted(exercise: &str) -> bool {
    ONLY.get().is_none_or(|only| only == exercise)
}

/// One line of the throughput table: bytes per second with both processes on one CPU, and on
/// two (`None` where that placement cannot be arranged).
pub(crate) struct Row {
    pub(crate) mechanism: String,
    /// Bytes per write (or per message).
    pub(crate) size: usize,
    pub(crate) one: Option<Result<Sample>>,
    pub(crate) two: Option<Result<Sample>>,
    /// The raw mechanism this one is built on (the name of its row).
    pub(crate) raw: Option<&'static str>,
    /// That raw mechanism measured in turns with this row, one CPU and two.
    pub(crate) raw_in_turns: Option<Placed>,
}

/// Trials on one CPU and on two (`None` where that placement cannot be arranged).
pub(crate) type Placed = (Option<Result<Sample>>, Option<Result<Sample>>);

/// One line of the latency table: round-trip seconds with both processes on one CPU, and on two.
pub(crate) struct LatencyRow {
    pub(crate) mechanism: String,
    /// The lab's row of the raw mechanism this one is built on.
    pub(crate) raw: Option<&'static str>,
    pub(crate) same: Option<Result<Sample>>,
    pub(crate) cross: Option<Result<Sample>>,
    /// That raw mechanism measured in turns with this row, one CPU and two.
    pub(crate) raw_in_turns: Option<Placed>,
}

const USAGE: &str = "\
usage: ipclab-bench [--quick] [--out DIR] [--note TEXT]   the whole lab and every solution
       ipclab-bench --only exerciseNN [--quick] [--count-syscalls] [--out DIR]
       ipclab-bench --render DIR          redraw DIR's tables and charts from its results.json
       ipclab-bench --count throughput|latency NAME SIZE MESSAGES   one measurement, for strace";

/// The flags and how many values each takes: anything else is a mistake to report, not to
/// ignore (an ignored typo would start a run of a minute and overwrite the last results).
const FLAGS: [(&str, usize); 7] = [
    ("--quick", 0),
    ("--out", 1),
    ("--note", 1),
    ("--only", 1),
    ("--count-syscalls", 0),
    ("--render", 1),
    ("--count", 4),
];

/// `Err(line)` for an argument no flag takes.
fn check_arguments(args: &[String]) -> std::result::Result<(), String> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some((flag, values)) = FLAGS.iter().find(|(f, _)| f == arg) else {
            return Err(format!("ipclab-bench: unknown argument {arg:?}"));
        };
        for _ in 0..*values {
            if rest.next().is_none() {
                return Err(format!("ipclab-bench: {flag} needs {values} value(s)"));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Err(line) = check_arguments(&args) {
        eprintln!("{line}\n{USAGE}");
        return ExitCode::from(2);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let out_dir = match args.iter().position(|a| a == "--out") {
        Some(i) => match args.get(i + 1) {
            Some(dir) => std::path::PathBuf::from(dir),
            None => {
                eprintln!("ipclab-bench: --out needs a directory");
                return ExitCode::from(2);
            }
        },
        None => std::path::PathBuf::from("target/ipclab-bench"),
    };
    // `--render DIR`: rewrite DIR's Markdown and charts from its results.json (no measuring), for
    // a change to how results are shown.
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--render")
        .and_then(|i| args.get(i + 1))
    {
        let dir = std::path::Path::new(dir);
        let run = std::fs::read_to_string(dir.join("results.json"))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .and_then(|run| suite::write(&run, dir).map_err(|e| e.to_string()));
        return match run {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipclab-bench: cannot render {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    // `--count KIND NAME SIZE MESSAGES`: one measurement, for strace to count (count.rs).
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let (kind, name) = (args.get(i + 1), args.get(i + 2));
        let number = |j: usize| args.get(i + j).and_then(|s| s.parse::<usize>().ok());
        let (Some(kind), Some(name), Some(size), Some(messages)) =
            (kind, name, number(3), number(4))
        else {
            eprintln!("usage: ipclab-bench --count throughput|latency NAME SIZE MESSAGES");
            return ExitCode::from(2);
        };
        let cpu = allowed_cpus()
            .ok()
            .and_then(|c| c.first().copied())
            .unwrap_or(0);
        let run = proc::Pinned::to(cpu).and_then(|_pinned| {
            count::run(kind, name, size, messages, cpu).unwrap_or(Err(proc::Error::Solution {
                exercise: "--count",
                message: format!("no {kind} row named {name:?}"),
            }))
        });
        return match run {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipclab-bench --count: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // `--only exerciseNN`: that exercise's solution rows and nothing else (no lab, no C, no
    // charts), written as results.json in `--out`, each row counted with strace if asked
    // (`--count-syscalls`). `cargo ipclab bench N` runs two builds of it, the reference and the
    // student's, and compares them.
    if let Some(i) = args.iter().position(|a| a == "--only") {
        let Some(exercise) = args.get(i + 1) else {
            eprintln!("ipclab-bench: --only needs an exercise (exercise01 … exercise09)");
            return ExitCode::from(2);
        };
        let known = (1..=9).any(|n| *exercise == format!("exercise{n:02}"));
        if !known {
            eprintln!("ipclab-bench: --only takes exercise01 … exercise09, not {exercise:?}");
            return ExitCode::from(2);
        }
        let _ = ONLY.set(exercise.clone());
        let count = args.iter().any(|a| a == "--count-syscalls");
        return only(exercise, quick, count, &out_dir);
    }
    let note = args
        .iter()
        .position(|a| a == "--note")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let effort = if quick {
        Effort {
            trials: 1,
            shrink: 4,
            rounds: 200,
        }
    } else {
        Effort {
            trials: 5,
            shrink: 1,
            rounds: 2000,
        }
    };
    let started = Instant::now();
    let load_before = results::load_average();
    let cpus = match allowed_cpus() {
        Ok(cpus) => cpus,
        Err(e) => {
            eprintln!("ipclab-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let machine = results::machine(&cpus, load_before);
    let lab = suite::run(quick, effort.trials, effort.rounds, &cpus);
    let rows = throughput(effort, &cpus);
    let latency = latency(effort, &cpus);
    let (more_throughput, more_latency) =
        suite::more_solutions(quick, effort.trials, effort.rounds, &cpus);
    let mut run = results::Run {
        quick,
        machine,
        memcpy: lab.memcpy,
        syscall_seconds: lab.syscall_seconds,
        throughput: lab.throughput,
        latency: lab.latency,
        solutions: rows
            .into_iter()
            .map(suite::solution_row)
            .chain(more_throughput)
            .collect(),
        solution_latency: latency.into_iter().chain(more_latency).collect(),
        c_throughput: lab.c_throughput,
        c_latency: lab.c_latency,
        syscalls: Vec::new(),
    };
    // The "why" of each ratio below 0.95: system calls per message of both sides. Not in a
    // quick run (strace makes it slow), unless asked for.
    if (!quick || args.iter().any(|a| a == "--count-syscalls")) && count::available() {
        progress("system calls per message of each ratio below 0.95 (strace -c -f)");
        for (kind, name, size) in results::misses(&run) {
            let key = count::key(kind, &name, size);
            if run.syscalls.iter().any(|s| s.mechanism == key) {
                continue;
            }
            let messages = match (kind, size) {
                // A fork and exec or two per message: fewer.
                _ if name.contains("/bin/true") => 20,
                ("latency", _) => {
                    if quick {
                        100
                    } else {
                        400
                    }
                }
                (_, s) if s <= 4096 => {
                    if quick {
                        200
                    } else {
                        2000
                    }
                }
                (_, s) if s <= 64 * 1024 => 200,
                _ => 40,
            };
            run.syscalls.push(count::count(kind, &name, size, messages));
        }
    }
    let mut machine = run.machine.clone();
    machine.load_average_end = results::load_average();
    machine.seconds = started.elapsed().as_secs_f64();
    machine.note = note;
    run.machine = machine;
    match suite::write(&run, &out_dir) {
        Ok(markdown) => print!("{markdown}"),
        Err(e) => {
            eprintln!(
                "ipclab-bench: cannot write the results in {}: {e}",
                out_dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    if suite::complete(&run) {
        ExitCode::SUCCESS
    } else {
        eprintln!("ipclab-bench: some measurements failed (see the tables)");
        ExitCode::FAILURE
    }
}

/// The `--only` run: `exercise`'s rows, one CPU and two, into `out/results.json`.
fn only(exercise: &str, quick: bool, count: bool, out: &std::path::Path) -> ExitCode {
    // As much work per measurement as the full run: a shorter one is mostly noise.
    let effort = Effort {
        trials: if quick { 1 } else { 5 },
        shrink: if quick { 4 } else { 1 },
        rounds: if quick { 200 } else { 2000 },
    };
    let cpus = match allowed_cpus() {
        Ok(cpus) => cpus,
        Err(e) => {
            eprintln!("ipclab-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut machine = results::machine(&cpus, results::load_average());
    let mine = |name: &str| name.starts_with(&format!("{exercise} "));
    let (more_throughput, more_latency) =
        suite::more_solutions(quick, effort.trials, effort.rounds, &cpus);
    // The exercise's rows, and the raw rows measured beside them (the loops the solutions'
    // `raw` names that the lab has no row for, such as "pipe, into fresh memory").
    let (solutions, raw_throughput): (Vec<_>, Vec<_>) = throughput(effort, &cpus)
        .into_iter()
        .map(suite::solution_row)
        .chain(more_throughput)
        .partition(|r| mine(&r.mechanism));
    let (solution_latency, raw_latency): (Vec<_>, Vec<_>) = latency(effort, &cpus)
        .into_iter()
        .chain(more_latency)
        .partition(|r| mine(&r.mechanism));
    // Every other raw row the exercise's rows name comes from the lab, measured here alone.
    let (lab_throughput, lab_latency) = suite::raw_rows(
        &solutions,
        &solution_latency,
        quick,
        effort.trials,
        effort.rounds,
        &cpus,
    );
    let named = |raw: &str, size: Option<usize>| {
        solutions
            .iter()
            .any(|s| s.raw.as_deref() == Some(raw) && size.is_none_or(|z| z == s.size))
            || solution_latency
                .iter()
                .any(|s| size.is_none() && s.raw.as_deref() == Some(raw))
    };
    let raw_throughput: Vec<_> = raw_throughput
        .into_iter()
        .filter(|r| named(&r.mechanism, Some(r.size)))
        .chain(lab_throughput)
        .collect();
    let raw_latency: Vec<_> = raw_latency
        .into_iter()
        .filter(|r| named(&r.mechanism, None))
        .chain(lab_latency)
        .collect();
    let mut run = results::Run {
        quick,
        machine: machine.clone(),
        memcpy: Vec::new(),
        syscall_seconds: 0.0,
        throughput: raw_throughput,
        latency: raw_latency,
        solutions,
        solution_latency,
        c_throughput: Vec::new(),
        c_latency: Vec::new(),
        syscalls: Vec::new(),
    };
    if count && count::available() {
        progress("system calls per message (strace -c -f)");
        let rows: Vec<(&str, String, usize)> = run
            .solutions
            .iter()
            .map(|r| ("throughput", r.mechanism.clone(), r.size))
            .chain(
                run.solution_latency
                    .iter()
                    .map(|r| ("latency", r.mechanism.clone(), 1)),
            )
            .collect();
        for (kind, name, size) in rows {
            let messages = match (kind, size) {
                _ if name.contains("/bin/true") => 20,
                ("latency", _) => 200,
                (_, s) if s <= 64 * KIB => 200,
                _ => 40,
            };
            run.syscalls.push(count::count(kind, &name, size, messages));
        }
    }
    machine.load_average_end = results::load_average();
    machine.seconds = started.elapsed().as_secs_f64();
    run.machine = machine;
    let written = std::fs::create_dir_all(out)
        .map_err(|e| e.to_string())
        .and_then(|()| serde_json::to_string_pretty(&run).map_err(|e| e.to_string()))
        .and_then(|json| std::fs::write(out.join("results.json"), json).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!(
            "ipclab-bench: cannot write {}: {e}",
            out.join("results.json").display()
        );
        return ExitCode::FAILURE;
    }
    if suite::complete(&run) {
        ExitCode::SUCCESS
    } else {
        eprintln!("ipclab-bench: some measurements failed (see results.json)");
        ExitCode::FAILURE
    }
}

/// Says what is being measured, on stderr, so that a slow run shows where it is.
fn progress(what: &str) {
    eprintln!("ipclab-bench: {what}");
}

/// Runs `trial` (given the child's CPU) with this process pinned as `placement` says.
fn placed(
    placement: Placement,
    cpus: &[usize],
    n: usize,
    mut trial: impl FnMut(usize) -> Result<f64>,
) -> Option<Result<Sample>> {
    placement.cpus(cpus).map(|(ours, theirs)| {
        let _pinned = Pinned::to(ours)?;
        trials(n, || trial(theirs))
    })
}

/// As [`placed`], for a solution's `trial` and its raw mechanism's `raw`, taken in turns:
/// (the solution's trials, the raw mechanism's).
fn placed_in_turns(
    placement: Placement,
    cpus: &[usize],
    n: usize,
    trial: &dyn Fn(usize) -> Result<f64>,
    raw: &dyn Fn(usize) -> Result<f64>,
) -> (Option<Result<Sample>>, Option<Result<Sample>>) {
    let Some((ours, theirs)) = placement.cpus(cpus) else {
        return (None, None);
    };
    match Pinned::to(ours) {
        Ok(_pinned) => {
            let (a, b) = stats::paired_trials(n, || trial(theirs), || raw(theirs));
            (Some(a), Some(b))
        }
        // The raw mechanism then goes unmeasured too: the table falls back on its lab row.
        Err(e) => (Some(Err(e)), None),
    }
}

fn throughput(effort: Effort, cpus: &[usize]) -> Vec<Row> {
    use raw::{one_way, Channel, Sink};
    use Placement::{CrossCpu, SameCpu};
    let n = effort.trials;
    let both = |trial: &dyn Fn(usize) -> Result<f64>| {
        (
            placed(SameCpu, cpus, n, trial),
            placed(CrossCpu, cpus, n, trial),
        )
    };
    // A solution's trials and its raw mechanism's, in turns: (the solution's, the raw's).
    let beside = |trial: &dyn Fn(usize) -> Result<f64>, raw: &dyn Fn(usize) -> Result<f64>| {
        let [(one, raw_one), (two, raw_two)] =
            [SameCpu, CrossCpu].map(|p| placed_in_turns(p, cpus, n, trial, raw));
        ((one, two), Some((raw_one, raw_two)))
    };
    let row = |mechanism: &str, size, ((one, two), raw_in_turns): (Placed, _), raw| Row {
        mechanism: mechanism.into(),
        size,
        one,
        two,
        raw,
        raw_in_turns,
    };

    // The raw mechanisms the lab (suite.rs) has no row for: how the solutions that return a
    // `Vec` or echo through a child use a pipe or a socket pair. The plain pipe, socket pair and
    // queue rows are the lab's.
    const PIPE_MEMORY: &str = "pipe, into fresh memory";
    const SOCKET_MEMORY: &str = "socketpair, into fresh memory";
    const QUEUE: &str = "System V message queue";
    const ECHO: &str = "pipe there and back (child echoes)";
    let queue_bytes = effort.bytes(32 * MIB);
    let mut rows = Vec::new();
    let input: Vec<u8> = (0..effort.bytes(64 * MIB)).map(|i| i as u8).collect();
    // (With `--only`, only the ones the exercise's rows stand beside.)
    if wanted("exercise01") || wanted("exercise06") {
        progress("raw pipes and socket pair into fresh memory, a pipe echo");
        for (name, channel, of) in [
            (PIPE_MEMORY, Channel::Pipe(None), "exercise01"),
            (SOCKET_MEMORY, Channel::SocketPair, "exercise06"),
        ] {
            if wanted(of) {
                let cells =
                    both(&|cpu| one_way(channel, 64 * KIB, input.len(), Sink::FreshMemory, cpu));
                rows.push(row(name, 64 * KIB, (cells, None), None));
            }
        }
        if wanted("exercise01") {
            let cells = both(&|cpu| raw::pipe_echo(&input, cpu));
            rows.push(row(ECHO, 64 * KIB, (cells, None), None));
        }
    }

    if wanted("exercise01") {
        progress("exercise01");
        let cells = beside(&|cpu| solutions::ex01_stream(&input, cpu), &|cpu| {
            raw::pipe_echo(&input, cpu)
        });
        rows.push(row(
            "exercise01 stream_through_child",
            64 * KIB,
            cells,
            Some(ECHO),
        ));
        // round_trip's child is forked by the solution and does its work before any code of ours
        // runs in it: it can only be placed on the CPU it inherits, ours.
        let (one, raw_one) = placed_in_turns(
            SameCpu,
            cpus,
            n,
            &|_| solutions::ex01_round_trip(&input),
            &|cpu| {
                one_way(
                    Channel::Pipe(None),
                    64 * KIB,
                    input.len(),
                    Sink::FreshMemory,
                    cpu,
                )
            },
        );
        rows.push(row(
            "exercise01 round_trip (one way)",
            64 * KIB,
            ((one, None), Some((raw_one, None))),
            Some(PIPE_MEMORY),
        ));
    }

    #[cfg(feature = "exercise03")]
    if wanted("exercise03") {
        progress("exercise03");
        let pattern = lab::Pattern::new(8 * KIB);
        let cells = beside(
            &|cpu| solutions::ex03::stream(8 * KIB, queue_bytes, cpu),
            &|cpu| lab::queue_throughput(8 * KIB, queue_bytes, &pattern, cpu),
        );
        rows.push(row(
            "exercise03 MessageQueue send/receive",
            8 * KIB,
            cells,
            Some(QUEUE),
        ));
    }
    #[cfg(not(feature = "exercise03"))]
    let _ = (QUEUE, queue_bytes);
    #[cfg(feature = "exercise04")]
    if wanted("exercise04") {
        progress("exercise04");
        // A ring of 4 MiB: several writes' worth, so that neither side waits for the other
        // as long as both run.
        for (size, bytes) in [(64 * KIB, 512 * MIB), (MIB, 2048 * MIB)] {
            let bytes = effort.bytes(bytes);
            let pattern = lab::Pattern::new(size);
            let cells = beside(
                &|cpu| solutions::ex04::ring(size, 4 * MIB, bytes, cpu),
                &|cpu| {
                    use ring::{Read, Wait};
                    ring::throughput(
                        Wait::Spin,
                        Read::IntoBuffer,
                        size,
                        4 * MIB,
                        bytes,
                        &pattern,
                        cpu,
                    )
                },
            );
            rows.push(row(
                "exercise04 shared-memory ring (4 MiB)",
                size,
                cells,
                Some(suite::RING_INTO_BUFFER),
            ));
        }
    }
    #[cfg(feature = "exercise06")]
    if wanted("exercise06") {
        progress("exercise06");
        // As for round_trip: the solution forks, so the child stays on our CPU.
        let (one, raw_one) = placed_in_turns(
            SameCpu,
            cpus,
            n,
            &|_| solutions::ex06_half_close(&input),
            &|cpu| {
                one_way(
                    Channel::SocketPair,
                    64 * KIB,
                    input.len(),
                    Sink::FreshMemory,
                    cpu,
                )
            },
        );
        rows.push(row(
            "exercise06 half_close_round_trip (one way)",
            64 * KIB,
            ((one, None), Some((raw_one, None))),
            Some(SOCKET_MEMORY),
        ));
    }
    rows
}

/// Trials of `rounds` exchanges each: seconds per round trip.
fn round_trips(
    effort: Effort,
    rounds: usize,
) -> impl FnOnce(&mut dyn FnMut() -> Result<()>) -> Result<Sample> {
    move |exchange| {
        trials(effort.trials, || {
            let started = Instant::now();
            for _ in 0..rounds {
                exchange()?;
            }
            Ok(started.elapsed().as_secs_f64() / rounds as f64)
        })
    }
}

/// The solutions' round trips, each beside its raw mechanism where the two can take turns.
fn latency(effort: Effort, cpus: &[usize]) -> Vec<results::Latency> {
    progress("latency (one-byte ping-pong), same CPU and different CPUs");
    let rounds = effort.rounds;
    // Each measurement gets (parent CPU, child CPU); the parent pins itself for its duration.
    let each = |measure: &dyn Fn(usize) -> Result<Sample>| {
        let run = |placement: Placement| {
            placement.cpus(cpus).map(|(ours, theirs)| {
                let _pinned = Pinned::to(ours)?;
                measure(theirs)
            })
        };
        (run(Placement::SameCpu), run(Placement::CrossCpu))
    };
    // Round trips timed one by one, in turns with the raw mechanism's.
    let in_turns = |mechanism: &str, raw: &'static str, solution: suite::Rounds, of_raw| {
        let ([one, two], raw_in_turns) =
            suite::latency_in_turns(cpus, rounds, solution, Some(of_raw));
        results::Latency {
            mechanism: mechanism.into(),
            one_cpu: one,
            two_cpus: two,
            raw: Some(raw.into()),
            raw_in_turns,
        }
    };
    let mut rows = Vec::new();
    #[cfg(feature = "exercise03")]
    if wanted("exercise03") {
        rows.push(in_turns(
            "exercise03 call / serve",
            "System V message queue",
            &|rounds, cpu| {
                solutions::ex03::ping_pong(cpu, |exchange| {
                    lab::time_rounds(rounds, &mut |_| exchange())
                })
            },
            &lab::queue_latency,
        ));
    }
    #[cfg(feature = "exercise04")]
    if wanted("exercise04") {
        rows.push(in_turns(
            "exercise04 Mailbox (spins, then yields)",
            "System V shared memory (spin, then yield)",
            &|rounds, cpu| {
                solutions::ex04::ping_pong(cpu, |exchange| {
                    lab::time_rounds(rounds, &mut |_| exchange())
                })
            },
            &lab::shm_latency,
        ));
    }
    #[cfg(feature = "exercise06")]
    if wanted("exercise06") {
        // ask_child takes every request at once: only their average time can be measured, in
        // trials of its own.
        let requests = vec!["x"; rounds];
        let (same, cross) =
            each(&|cpu| trials(effort.trials, || solutions::ex06_ask_child(&requests, cpu)));
        rows.push(suite::solution_latency(LatencyRow {
            mechanism: "exercise06 ask_child (one line each way)".into(),
            raw: Some("socketpair stream"),
            same,
            cross,
            raw_in_turns: None,
        }));
    }
    // A process per request: fork, one exchange, wait. The child starts on our CPU.
    if !wanted("exercise01") {
        return rows;
    }
    let same = cpus.first().map(|&cpu| {
        let _pinned = Pinned::to(cpu)?;
        let calls = (rounds / 10).max(10);
        round_trips(effort, calls)(&mut solutions::ex01_round_trip_call)
    });
    rows.push(suite::solution_latency(LatencyRow {
        mechanism: "exercise01 round_trip of 1 byte (fork, exchange, wait)".into(),
        raw: None,
        same,
        cross: None,
        raw_in_turns: None,
    }));
    rows
}

#[cfg(test)]
mod tests {
    use super::check_arguments;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_typo_is_reported_instead_of_starting_a_run() {
        assert_eq!(
            check_arguments(&args(&["--quik"])),
            Err("ipclab-bench: unknown argument \"--quik\"".into())
        );
        assert!(check_arguments(&args(&["--out"])).is_err());
        assert!(check_arguments(&args(&["--only", "exercise07", "--count-syscalls"])).is_ok());
        assert!(check_arguments(&args(&["--count", "latency", "FIFO", "1", "10"])).is_ok());
    }
}
