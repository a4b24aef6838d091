//! `ex09-shell`: the shell's read–parse–run loop. The same file in the starter and the solution:
//! everything it does, it asks the library (`parse`, `run_pipeline`, `run_builtin`,
//! `JobControl`).
//!
//! It prints the prompt only when its standard input is a terminal, so that a script piped in
//! (`printf 'ls | wc -l\n' | ex09-shell`) gives a transcript with nothing but the commands'
//! output and the shell's reports. Reports (`ipclab: exit status 3`, errors) go to standard
//! error, always after the job they describe has ended.

use std::io::{self, Write};
use std::os::fd::AsFd;

use exercise09::{
    parse, run_builtin, run_pipeline, BuiltinOutcome, JobControl, JobOutcome, ShellError, Status,
    BUILTINS, PROMPT,
};
use nix::errno::Errno;
use nix::sys::signal::Signal;

fn main() {
    let stdin = io::stdin();
    let interactive = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let mut jobs = if interactive {
        let terminal = stdin.as_fd().try_clone_to_owned();
        match terminal
            .map_err(|e| e.to_string())
            .and_then(|t| JobControl::new(t).map_err(|e| e.to_string()))
        {
            Ok(jobs) => Some(jobs),
            Err(e) => {
                eprintln!("ipclab: no job control: {e}");
                None
            }
        }
    } else {
        None
    };

    let mut last = 0;
    loop {
        if interactive {
            print!("{PROMPT}");
            let _ = io::stdout().flush();
        }
        let Some(line) = read_line() else { break };
        let pipeline = match parse(&line) {
            Ok(pipeline) => pipeline,
            Err(e) => {
                eprintln!("ipclab: {e}");
                last = 2;
                continue;
            }
        };
        let builtin = match pipeline.commands.as_slice() {
            [command] if BUILTINS.contains(&command.argv[0].as_str()) => Some(command),
            _ => None,
        };
        if let Some(command) = builtin {
            if command.stdin.is_some() || command.stdout.is_some() {
                eprintln!(
                    "ipclab: {}: built-in commands take no redirections",
                    command.argv[0]
                );
                last = 2;
                continue;
            }
            let mut stdout = io::stdout();
            if command.argv[0] == "fg" {
                if let Some(jobs) = jobs.as_mut() {
                    last = report(jobs.fg(&mut stdout), interactive);
                    continue;
                }
            }
            let outcome = run_builtin(&command.argv, &mut stdout);
            let _ = stdout.flush();
            match outcome {
                Ok(BuiltinOutcome::Continue) => last = 0,
                Ok(BuiltinOutcome::Exit(code)) => {
                    last = code.unwrap_or(last);
                    break;
                }
                Err(e) => {
                    eprintln!("ipclab: {e}");
                    last = 1;
                }
            }
        } else if !pipeline.commands.is_empty() {
            let outcome = match jobs.as_mut() {
                Some(jobs) => jobs.run(&pipeline, line.trim()),
                None => run_pipeline(&pipeline).map(JobOutcome::Finished),
            };
            last = report(outcome, interactive);
        }
    }
    if let Some(jobs) = jobs.as_mut() {
        jobs.end_jobs();
    }
    let _ = io::stdout().flush();
    std::process::exit(last);
}

/// Says how a job ended, if that is news (a failure, a signal, a stop), and returns the shell's
/// status for it: the last command's exit code, or 128 + the signal's number.
fn report(outcome: Result<JobOutcome, ShellError>, interactive: bool) -> i32 {
    // On a terminal, Ctrl+C or Ctrl+Z was typed on the job's line: start the report on a new one.
    let newline = if interactive { "\n" } else { "" };
    match outcome {
        Ok(JobOutcome::Finished(statuses)) => match statuses.last() {
            None | Some(Status::Exited(0)) => 0,
            Some(&Status::Exited(code)) => {
                eprintln!("ipclab: exit status {code}");
                code
            }
            Some(&Status::Signaled(signal)) => {
                let newline = if signal == Signal::SIGINT {
                    newline
                } else {
                    ""
                };
                eprintln!("{newline}ipclab: killed by {}", signal.as_str());
                128 + signal as i32
            }
        },
        Ok(JobOutcome::Stopped { id, line }) => {
            eprintln!("{newline}[{id}]+ Stopped  {line}");
            128 + Signal::SIGTSTP as i32
        }
        Err(e) => {
            eprintln!("ipclab: {e}");
            1
        }
    }
}

/// Reads one line from standard input, one byte at a time: the shell must not read ahead into
/// input that belongs to the commands it runs (they share its standard input). `None` at end of
/// file.
fn read_line() -> Option<String> {
    let stdin = io::stdin();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(stdin.as_fd(), &mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(byte[0]),
            Err(Errno::EINTR) => continue,
            // EIO: the terminal went away. Like end of file, there is nothing more to read.
            Err(_) => break,
        }
    }
    // A last line without a newline still counts.
    (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned())
}
