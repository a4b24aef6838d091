//! `ex05-worker PID_FILE`: units of work from standard input, until SIGTERM, SIGINT or the end
//! of the input. See `run_worker` in the library for the protocol.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(pid_file) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ex05-worker PID_FILE");
        return ExitCode::from(2);
    };
    let stdin = io::stdin();
    let mut stdout = io::stdout();
    match exercise05::run_worker(&pid_file, stdin.as_fd(), &mut stdout) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ex05-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
