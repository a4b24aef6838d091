//! `ex02-fifo-client <path> [message]...`: send each argument as one message through the FIFO
//! at `path`; with no message arguments, send each line of standard input instead.
//!
//! Fails at once (no reader) if no server has the FIFO open.

use std::io::{self, Read};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next() else {
        eprintln!("ex02-fifo-client: expected a path\nusage: ex02-fifo-client <path> [message]...");
        return ExitCode::from(2);
    };
    let mut messages: Vec<Vec<u8>> = args.map(|a| a.into_encoded_bytes()).collect();
    if messages.is_empty() {
        let mut input = Vec::new();
        if let Err(e) = io::stdin().read_to_end(&mut input) {
            eprintln!("ex02-fifo-client: cannot read standard input: {e}");
            return ExitCode::FAILURE;
        }
        if input.last() == Some(&b'\n') {
            input.pop();
        }
        if !input.is_empty() {
            messages = input.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        }
    }
    match exercise02::run_client(&path, &messages) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ex02-fifo-client: {e}");
            ExitCode::FAILURE
        }
    }
}
