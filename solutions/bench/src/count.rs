//! System calls per message, counted with `strace -c -f`: the "why" of a ratio below 0.95.
//!
//! `ipclab-bench --count KIND NAME SIZE MESSAGES` runs one measurement (the row `NAME` of kind
//! `throughput` or `latency`; a name starting with `C: ` is the row's C twin) with `MESSAGES`
//! writes or round trips, both sides on one CPU. The full run starts that under strace twice, with
//! M and 2M messages: the difference, divided by the extra messages, is the cost per message with
//! the setup (fork, mmap, the segment) taken out.
//!
//! Counts of *waiting* calls (futex, sched_yield, and how often a read finds nothing) depend on
//! timing, and strace slows every call: read them as orders of magnitude. Counts of the calls a
//! loop makes per message by design (a write, a read, a msgsnd) are exact.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeVal;

use crate::lab::{self, Fds, Pattern};
use crate::proc::{Error, Result};
use crate::results::{Syscalls, Usage};
use crate::ring::{self, Wait};
use crate::suite::{ring_name, EX02, EX02_BUFFERED, RING_CAPACITY, RING_INTO_BUFFER};
use crate::{cbase, more, raw, solutions};

/// Which rows can be counted, and how: runs `messages` of them on `cpu`.
/// `None`: no such row.
pub fn run(kind: &str, name: &str, size: usize, messages: usize, cpu: usize) -> Option<Result<()>> {
    let pattern = Pattern::new(1 << 20);
    let fds = Fds::ALL
        .into_iter()
        .find(|f| f.name() == name.trim_start_matches("C: "));
    let ring = [Wait::Spin, Wait::Futex]
        .into_iter()
        .find(|&w| ring_name(w) == name.trim_start_matches("C: "));
    let c = name.starts_with("C: ");
    let total = size * messages;
    let done = |r: Result<f64>| Some(r.map(|_| ()));
    let times = |r: Result<Vec<f64>>| Some(r.map(|_| ()));
    let input = || (0..total).map(|i| i as u8).collect::<Vec<u8>>();
    match (kind, name) {
        ("throughput", _) if fds.is_some() => {
            let fds = fds?;
            if c {
                done(cbase::fd_throughput(
                    cbase::kind(fds)?,
                    size,
                    total,
                    &pattern,
                    cpu,
                ))
            } else {
                done(lab::throughput(fds, size, total, &pattern, cpu))
            }
        }
        ("throughput", _) if ring.is_some() => {
            let wait = ring?;
            if c {
                done(cbase::ring_throughput(
                    wait,
                    size,
                    RING_CAPACITY,
                    total,
                    &pattern,
                    cpu,
                ))
            } else {
                done(ring::throughput(
                    wait,
                    ring::Read::InPlace,
                    size,
                    RING_CAPACITY,
                    total,
                    &pattern,
                    cpu,
                ))
            }
        }
        ("throughput", RING_INTO_BUFFER) => done(ring::throughput(
            Wait::Spin,
            ring::Read::IntoBuffer,
            size,
            RING_CAPACITY,
            total,
            &pattern,
            cpu,
        )),
        ("throughput", "System V message queue") => {
            done(lab::queue_throughput(size, total, &pattern, cpu))
        }
        ("throughput", "C: System V message queue") => {
            done(cbase::queue_throughput(size, total, &pattern, cpu))
        }
        ("throughput", "pipe, into fresh memory") => done(raw::one_way(
            raw::Channel::Pipe(None),
            size,
            total,
            raw::Sink::FreshMemory,
            cpu,
        )),
        ("throughput", "socketpair, into fresh memory") => done(raw::one_way(
            raw::Channel::SocketPair,
            size,
            total,
            raw::Sink::FreshMemory,
            cpu,
        )),
        ("throughput", "pipe there and back (child echoes)") => done(raw::pipe_echo(&input(), cpu)),
        ("throughput", "exercise01 stream_through_child") => {
            done(solutions::ex01_stream(&input(), cpu))
        }
        ("throughput", "exercise01 round_trip (one way)") => {
            done(solutions::ex01_round_trip(&input()))
        }
        #[cfg(feature = "exercise06")]
        ("throughput", "exercise06 half_close_round_trip (one way)") => {
            done(solutions::ex06_half_close(&input()))
        }
        #[cfg(feature = "exercise03")]
        ("throughput", "exercise03 MessageQueue send/receive") => {
            done(solutions::ex03::stream(size, total, cpu))
        }
        #[cfg(feature = "exercise04")]
        ("throughput", "exercise04 shared-memory ring (4 MiB)") => {
            done(solutions::ex04::ring(size, 4 << 20, total, cpu))
        }
        ("throughput", EX02 | EX02_BUFFERED) => done(more::ex02_fifo(
            exercise02::MAX_MESSAGE * messages,
            &pattern,
            cpu,
            name == EX02_BUFFERED,
        )),
        ("latency", _) if fds.is_some() => {
            let fds = fds?;
            if c {
                times(cbase::fd_latency(cbase::kind(fds)?, messages, cpu))
            } else {
                times(lab::fd_latency(fds, messages, cpu))
            }
        }
        ("latency", "System V message queue") => times(lab::queue_latency(messages, cpu)),
        ("latency", "C: System V message queue") => times(cbase::queue_latency(messages, cpu)),
        ("latency", "System V semaphores") => times(lab::semaphore_latency(messages, cpu)),
        ("latency", "signals (kill + sigwaitinfo)") => times(lab::signal_latency(messages, cpu)),
        ("latency", "exercise05 SignalCounter (handler + self-pipe)") => {
            times(more::ex05_signals(messages, cpu))
        }
        ("latency", "exercise07 Semaphore post / wait") => {
            times(more::ex07_semaphores(messages, cpu))
        }
        ("latency", "exercise08 Client::echo (AF_UNIX)") => times(more::ex08_echo(
            exercise08::Endpoint::UnixAbstract(format!(
                "ipclab-bench-count-{}",
                std::process::id()
            )),
            messages,
            cpu,
            cpu,
        )),
        ("latency", "exercise08 Client::echo (TCP)") => times(more::ex08_echo(
            exercise08::Endpoint::Tcp(std::net::SocketAddrV4::new(
                std::net::Ipv4Addr::LOCALHOST,
                0,
            )),
            messages,
            cpu,
            cpu,
        )),
        #[cfg(feature = "exercise03")]
        ("latency", "exercise03 call / serve") => {
            times(solutions::ex03::ping_pong(cpu, |exchange| {
                lab::time_rounds(messages, &mut |_| exchange())
            }))
        }
        ("latency", "System V shared memory (spin, then yield)") => {
            times(lab::shm_latency(messages, cpu))
        }
        #[cfg(feature = "exercise04")]
        ("latency", "exercise04 Mailbox (spins, then yields)") => {
            times(solutions::ex04::ping_pong(cpu, |exchange| {
                lab::time_rounds(messages, &mut |_| exchange())
            }))
        }
        #[cfg(feature = "exercise06")]
        ("latency", "exercise06 ask_child (one line each way)") => done(solutions::ex06_ask_child(
            &vec!["x"; messages + messages / 10],
            cpu,
        )),
        ("latency", "exercise01 round_trip of 1 byte (fork, exchange, wait)") => {
            Some((0..messages + messages / 10).try_for_each(|_| solutions::ex01_round_trip_call()))
        }
        ("latency", "sh -c, a pipeline of two /bin/true") => Some(
            (0..messages + messages / 10).try_for_each(|_| more::ex09_pipeline(true).map(|_| ())),
        ),
        ("latency", "exercise09 run_pipeline, a pipeline of two /bin/true") => Some(
            (0..messages + messages / 10).try_for_each(|_| more::ex09_pipeline(false).map(|_| ())),
        ),
        _ => None,
    }
}

/// Messages the loop makes in a run of `messages`: latency runs make `messages / 10` untimed
/// round trips first.
fn made(kind: &str, messages: usize) -> usize {
    if kind == "latency" {
        messages + messages / 10
    } else {
        messages
    }
}

/// The key of a row in `Run::syscalls`.
pub fn key(kind: &str, name: &str, size: usize) -> String {
    if kind == "latency" {
        format!("{kind}: {name}")
    } else {
        format!("{kind}: {name} @ {size}")
    }
}

/// The arguments of this program's `--count` run of a row.
fn count_args(kind: &str, name: &str, size: usize, messages: usize) -> [String; 5] {
    [
        "--count".into(),
        kind.into(),
        name.into(),
        size.to_string(),
        messages.to_string(),
    ]
}

/// Runs `--count` under `strace -c -f` and reads its summary: calls by name.
fn strace(kind: &str, name: &str, size: usize, messages: usize) -> Result<Vec<(String, usize)>> {
    let out = std::env::temp_dir().join(format!(
        "ipclab-bench-strace-{}-{messages}.txt",
        std::process::id()
    ));
    let exe = std::env::current_exe().map_err(|e| Error::Solution {
        exercise: "strace",
        message: e.to_string(),
    })?;
    let status = Command::new("strace")
        .arg("-f")
        .arg("-c")
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(exe)
        .args(count_args(kind, name, size, messages))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Solution {
            exercise: "strace",
            message: format!("cannot run strace: {e}"),
        })?;
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        return Err(Error::Solution {
            exercise: "strace",
            message: format!("the counted run failed ({status})"),
        });
    }
    Ok(parse(&text))
}

/// `strace -c` lines: `% time  seconds  usecs/call  calls  [errors]  syscall`.
fn parse(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = *f.last()?;
            if f.len() < 5 || name == "total" || !f[0].chars().next()?.is_ascii_digit() {
                return None;
            }
            Some((name.to_owned(), f[3].parse().ok()?))
        })
        .collect()
}

/// The `--count` run of a row as it is, without strace: what the kernel accounted to it and to
/// the sides it forked and waited for (`RUSAGE_CHILDREN` of this process, before and after).
fn accounted(kind: &str, name: &str, size: usize, messages: usize) -> Result<[f64; 4]> {
    let usage = || {
        getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|errno| Error::Sys {
            call: "getrusage",
            errno,
        })
    };
    let exe = std::env::current_exe().map_err(|e| Error::Solution {
        exercise: "getrusage",
        message: e.to_string(),
    })?;
    let before = usage()?;
    let status = Command::new(exe)
        .args(count_args(kind, name, size, messages))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::Solution {
            exercise: "getrusage",
            message: format!("cannot start the counted run: {e}"),
        })?;
    let after = usage()?;
    if !status.success() {
        return Err(Error::Solution {
            exercise: "getrusage",
            message: format!("the counted run failed ({status})"),
        });
    }
    let micros = |t: TimeVal| t.tv_sec() as f64 * 1e6 + t.tv_usec() as f64;
    Ok([
        (after.voluntary_context_switches() - before.voluntary_context_switches()) as f64,
        (after.involuntary_context_switches() - before.involuntary_context_switches()) as f64,
        micros(after.user_time()) - micros(before.user_time()),
        micros(after.system_time()) - micros(before.system_time()),
    ])
}

/// How long an accounted run should last at least. CPU time is split between user code and the
/// kernel by the scheduler's tick, so a run must see a few hundred ticks for the split to mean
/// something; without strace a run of the strace runs' length is over in milliseconds.
const ACCOUNTED_RUN: Duration = Duration::from_millis(200);

/// The accounted cost per message: runs of M and 2M messages apart, as for the calls, with M
/// first grown until a run lasts `ACCOUNTED_RUN`.
fn usage(kind: &str, name: &str, size: usize, messages: usize) -> Result<Usage> {
    let mut messages = messages;
    let small = loop {
        let started = Instant::now();
        let small = accounted(kind, name, size, messages)?;
        let took = started.elapsed();
        if took >= ACCOUNTED_RUN || messages >= 1 << 24 {
            break small;
        }
        // Never more than 16 times at once: the setup can dominate a short run.
        let grow = (ACCOUNTED_RUN.as_secs_f64() / took.as_secs_f64().max(1e-3)).ceil();
        messages *= (grow as usize).clamp(2, 16);
    };
    let large = accounted(kind, name, size, 2 * messages)?;
    let extra = (made(kind, 2 * messages) - made(kind, messages)) as f64;
    let per = |i: usize| ((large[i] - small[i]) / extra).max(0.0);
    Ok(Usage {
        sleeps: per(0),
        preemptions: per(1),
        user_us: per(2),
        kernel_us: per(3),
    })
}

/// Counts one row: per message, M and 2M messages apart.
pub fn count(kind: &str, name: &str, size: usize, messages: usize) -> Syscalls {
    let result = (|| {
        let small = strace(kind, name, size, messages)?;
        let large = strace(kind, name, size, 2 * messages)?;
        let extra = (made(kind, 2 * messages) - made(kind, messages)) as f64;
        let mut per: Vec<(String, f64)> = large
            .iter()
            .map(|(call, n)| {
                let before = small.iter().find(|(c, _)| c == call).map_or(0, |(_, n)| *n);
                (call.clone(), (*n as f64 - before as f64) / extra)
            })
            .filter(|(_, per)| *per >= 0.05)
            .collect();
        per.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok::<_, Error>(per)
    })();
    let (per_message, error) = match result {
        Ok(per) => (per, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Syscalls {
        mechanism: key(kind, name, size),
        messages,
        total_per_message: per_message.iter().map(|(_, n)| n).sum(),
        per_message,
        // Without the calls, the accounting says little; a failure here is not the calls'.
        usage: error
            .is_none()
            .then(|| usage(kind, name, size, messages).ok())
            .flatten(),
        error,
    }
}

/// Whether strace can run here at all.
pub fn available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/proc/self/exe").exists()
}
