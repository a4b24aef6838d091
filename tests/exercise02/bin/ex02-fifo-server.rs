//! `ex02-fifo-server <path> [mode]`: create a FIFO at `path` (permissions `mode`, octal, default
//! 600), print `ready <path>` once it exists, then print one line per message received until
//! every client has closed the FIFO or SIGTERM/SIGINT arrives. The FIFO is removed either way.
//!
//! Try it: `ex02-fifo-server /tmp/myfifo` in one terminal, `ex02-fifo-client /tmp/myfifo hello`
//! in another.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, mode) = match args.as_slice() {
        [path] => (PathBuf::from(path), 0o600),
        [path, mode] => match u32::from_str_radix(mode, 8) {
            Ok(mode) => (PathBuf::from(path), mode),
            Err(_) => return usage(&format!("mode {mode:?} is not an octal number")),
        },
        _ => return usage("expected a path and an optional mode"),
    };
    let ready = |path: &std::path::Path| {
        println!("ready {}", path.display());
        let _ = io::stdout().flush();
    };
    match exercise02::run_server(&path, mode, ready, &mut io::stdout()) {
        Ok(summary) => {
            let how = match summary.stopped_by {
                None => "end of file".to_owned(),
                Some(signal) => format!("stopped by {signal}"),
            };
            println!(
                "{how} after {} messages ({} bytes)",
                summary.messages, summary.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ex02-fifo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("ex02-fifo-server: {problem}\nusage: ex02-fifo-server <path> [mode, octal]");
    ExitCode::from(2)
}
