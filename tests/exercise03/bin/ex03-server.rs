//! `ex03-server KEY_FILE`: answers requests on the message queue whose key `ftok(KEY_FILE, 'q')`
//! names, with the request text in upper case, until the queue is removed.
//!
//! The queue must exist already (its creator owns it and removes it). Prints `served N requests`
//! when it ends.

use std::path::PathBuf;
use std::process::ExitCode;

use exercise03::{serve, Key, MessageQueue};

fn main() -> ExitCode {
    let Some(key_file) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ex03-server KEY_FILE");
        return ExitCode::from(2);
    };
    let result = Key::from_path(&key_file, b'q')
        .and_then(MessageQueue::open)
        .and_then(|queue| serve(&queue, |body| body.to_ascii_uppercase()));
    match result {
        Ok(served) => {
            println!("served {served} requests");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ex03-server: {e}");
            ExitCode::FAILURE
        }
    }
}
