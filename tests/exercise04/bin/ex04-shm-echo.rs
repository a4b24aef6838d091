//! `ex04-shm-echo <key file>`: an unrelated process that talks to the tests through a segment.
//!
//! It finds the segment created under `ftok(<key file>, 4)`, attaches it, and answers every
//! message in the mailbox (as the guest) with the same message in upper case, until it receives
//! an empty message. Nothing but the key connects it to the process that created the segment.

use std::env;
use std::path::Path;
use std::process::ExitCode;

use exercise04::{lookup, Attachment, Mailbox, Result, Side};

fn main() -> ExitCode {
    let Some(path) = env::args_os().nth(1) else {
        eprintln!("usage: ex04-shm-echo <key file>");
        return ExitCode::from(2);
    };
    match echo(Path::new(&path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ex04-shm-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn echo(key_file: &Path) -> Result<()> {
    let mut attachment = Attachment::new(lookup(key_file)?)?;
    let mailbox = Mailbox::new(&mut attachment, Side::Guest)?;
    loop {
        let message = mailbox.receive();
        if message.is_empty() {
            return Ok(());
        }
        mailbox.send(&message.to_ascii_uppercase())?;
    }
}
