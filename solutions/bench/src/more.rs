//! The reference solutions of exercises 02, 05, 07, 08 and 09, through their public APIs, each
//! placed as its raw mechanism in lab.rs is (parent on one CPU, the other side on the same CPU or
//! on the other one), each transfer checked.

use std::os::fd::AsFd;
use std::time::Instant;

use crate::lab::{time_rounds, Pattern};
use crate::proc::{pin, ready_pipe, say_ready, solution, wait_ready, Child, Error, Result};

/// exercise02: `send_message` in a child, `receive_message` here, over a FIFO: messages of
/// `MAX_MESSAGE` bytes (a 2-byte header, so each write is PIPE_BUF bytes, as the raw FIFO's 4 KiB
/// writes). `buffered`: the reader is wrapped in a `BufReader` of PIPE_BUF bytes, the raw loop's
/// read size, so that one `read` serves a header and a body instead of one each. Payload bytes
/// per second.
pub fn ex02_fifo(total: usize, pattern: &Pattern, cpu: usize, buffered: bool) -> Result<f64> {
    use exercise02::{create_fifo, open_reader, receive_message, send_message, MAX_MESSAGE};
    let path = std::env::temp_dir().join(format!("ipclab-bench-ex02-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let fifo = create_fifo(&path, 0o600).map_err(solution("exercise02"))?;
    let count = total / MAX_MESSAGE;
    let started = Instant::now();
    let child = Child::spawn("exercise02 client", Some(cpu), &[], || {
        let Ok(writer) = exercise02::open_writer(&path) else {
            return 1;
        };
        for i in 0..count {
            if send_message(&writer, pattern.at(i * MAX_MESSAGE, MAX_MESSAGE)).is_err() {
                return 1;
            }
        }
        0
    })?;
    let file = open_reader(fifo.path()).map_err(solution("exercise02"))?;
    let mut reader: Box<dyn std::io::Read> = if buffered {
        Box::new(std::io::BufReader::with_capacity(libc::PIPE_BUF, file))
    } else {
        Box::new(file)
    };
    for i in 0..count {
        match receive_message(&mut reader).map_err(solution("exercise02"))? {
            Some(m) if m == pattern.at(i * MAX_MESSAGE, MAX_MESSAGE) => {}
            _ => {
                return Err(Error::BadEcho {
                    what: "exercise02 receive_message",
                })
            }
        }
    }
    let rate = (count * MAX_MESSAGE) as f64 / started.elapsed().as_secs_f64();
    child.wait()?;
    drop(fifo);
    Ok(rate)
}

/// exercise05: a SIGUSR1 ping-pong between two `SignalCounter`s (a handler that counts and
/// writes a byte to a self-pipe; `wait_for` reads the pipe). Seconds per round trip.
pub fn ex05_signals(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    use exercise05::SignalCounter;
    use nix::sys::signal::{kill, Signal};
    let exchanges = rounds / 10 + rounds;
    let parent = nix::unistd::getpid();
    let (ready_read, ready_write) = ready_pipe()?;
    // The child installs its own counter before ours exists: a fork would share our self-pipe.
    let child = Child::spawn("exercise05 echo", Some(cpu), &[ready_read.as_fd()], || {
        let Ok(counter) = SignalCounter::install(libc::SIGUSR1) else {
            return 1;
        };
        if !say_ready(ready_write) {
            return 1;
        }
        for n in 1..=exchanges {
            if counter.wait_for(n).is_err() || kill(parent, Signal::SIGUSR1).is_err() {
                return 1;
            }
        }
        0
    })?;
    let counter = SignalCounter::install(libc::SIGUSR1).map_err(solution("exercise05"))?;
    wait_ready(ready_read, "exercise05 echo")?;
    let pid = child.pid();
    let mut n = 0;
    let times = time_rounds(rounds, &mut |_| {
        n += 1;
        kill(pid, Signal::SIGUSR1).map_err(crate::proc::sys("kill"))?;
        counter.wait_for(n).map_err(solution("exercise05"))?;
        Ok(())
    });
    child.wait()?;
    drop(counter);
    times
}

/// exercise07: two `Semaphore`s, posted and waited on in turn (`post` / `wait`, one semop each).
pub fn ex07_semaphores(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    use exercise07::Semaphore;
    let exchanges = rounds / 10 + rounds;
    let ping = Semaphore::new(0, 0o600).map_err(solution("exercise07"))?;
    let pong = Semaphore::new(0, 0o600).map_err(solution("exercise07"))?;
    let (a, b) = (&ping, &pong);
    // By reference: the child must not own (and so remove) the sets.
    let child = Child::spawn("exercise07 echo", Some(cpu), &[], move || {
        for _ in 0..exchanges {
            if a.wait().is_err() || b.post().is_err() {
                return 1;
            }
        }
        0
    })?;
    let times = time_rounds(rounds, &mut |_| {
        ping.post().map_err(solution("exercise07"))?;
        pong.wait().map_err(solution("exercise07"))
    });
    child.wait()?;
    times
}

/// exercise08: `Client::echo` of one byte against an `EchoServer` (a thread of this process,
/// started while we sit on `server_cpu`: it inherits that CPU). Seconds per round trip.
pub fn ex08_echo(
    at: exercise08::Endpoint,
    rounds: usize,
    ours: usize,
    server_cpu: usize,
) -> Result<Vec<f64>> {
    use exercise08::{Client, EchoServer};
    pin(server_cpu)?;
    let server = EchoServer::start(&at).map_err(solution("exercise08"));
    pin(ours)?;
    let server = server?;
    let mut client = Client::connect(server.endpoint()).map_err(solution("exercise08"))?;
    let times = time_rounds(rounds, &mut |b| match client
        .echo(&[b])
        .map_err(solution("exercise08"))?
    {
        reply if reply == [b] => Ok(()),
        _ => Err(Error::BadEcho {
            what: "exercise08 Client::echo",
        }),
    });
    drop(client);
    // Joins the server's threads: after this the process forks safely again.
    drop(server);
    times
}

/// exercise09: `run_pipeline` of `/bin/true | /bin/true`, or the same line through `sh -c`.
/// Seconds per pipeline (two forks, two execs, the waits).
pub fn ex09_pipeline(through_sh: bool) -> Result<f64> {
    const LINE: &str = "/bin/true | /bin/true";
    let started = Instant::now();
    if through_sh {
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", LINE])
            .status()
            .map_err(|e| Error::Solution {
                exercise: "sh -c",
                message: e.to_string(),
            })?;
        if !status.success() {
            return Err(Error::ChildFailed {
                role: "sh -c",
                status: status.to_string(),
            });
        }
    } else {
        let pipeline = exercise09::parse(LINE).map_err(solution("exercise09"))?;
        let statuses = exercise09::run_pipeline(&pipeline).map_err(solution("exercise09"))?;
        if statuses != [exercise09::Status::Exited(0); 2] {
            return Err(Error::ChildFailed {
                role: "exercise09 pipeline",
                status: format!("{statuses:?}"),
            });
        }
    }
    Ok(started.elapsed().as_secs_f64())
}
