//! `ex03-client KEY_FILE TEXT...`: sends each TEXT as a request to the server listening on the
//! message queue whose key `ftok(KEY_FILE, 'q')` names, and prints each reply on a line.

use std::path::PathBuf;
use std::process::ExitCode;

use exercise03::{call, Key, MessageQueue};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(key_file) = args.next().map(PathBuf::from) else {
        eprintln!("usage: ex03-client KEY_FILE TEXT...");
        return ExitCode::from(2);
    };
    let queue = match Key::from_path(&key_file, b'q').and_then(MessageQueue::open) {
        Ok(queue) => queue,
        Err(e) => {
            eprintln!("ex03-client: {e}");
            return ExitCode::FAILURE;
        }
    };
    for text in args {
        match call(&queue, text.as_encoded_bytes()) {
            Ok(reply) => println!("{}", String::from_utf8_lossy(&reply)),
            Err(e) => {
                eprintln!("ex03-client: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
