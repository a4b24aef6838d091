//! The untrusted side's only way to talk to its judge: messages on a socket.
//!
//! The body of an isolated test runs the student's code, so nothing it says can be believed on
//! its own: it can only *hand over data* (the value the body returns) and *ask to be looked at*
//! ([`checkpoint`]): then it blocks while the trusted side reads this process's state from
//! `/proc` itself. The judge decides; this module only carries messages.
//!
//! Each message is one packet on a `SOCK_SEQPACKET` socket inherited at [`PROBE_FD_ENV`]. The
//! kernel attaches the sender's real pid to each packet (`SCM_CREDENTIALS`), so the judge knows
//! who asked whatever the message says. A message that wants an answer carries the write end of
//! a fresh pipe (`SCM_RIGHTS`); the judge writes one byte there when it is done looking, so that
//! several processes can wait for their own answers at once.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// Names the descriptor number of the probe socket in an isolated process.
pub(crate) const PROBE_FD_ENV: &str = "IPCLAB_PROBE_FD";

/// The largest message the judge accepts: an observation must be data a person could read (a
/// digest and a length for a 4 MiB payload, not the payload).
pub(crate) const MAX_MESSAGE: usize = 192 * 1024;

/// What the untrusted side can say.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Message {
    /// "Look at me now": the sender blocks until the judge has taken a snapshot.
    Checkpoint { label: String },
    /// The body returned this value (JSON); the sender blocks until the end snapshot is taken.
    Done { value: serde_json::Value },
    /// A panic, in any thread of any process of the test.
    Panic {
        thread: String,
        at: String,
        message: String,
    },
    /// The body's panic escaped it: the test failed on the untrusted side.
    BodyFailed,
    /// A process forked by the code under test returned into the test instead of exiting.
    ForkedChildReturned { panicked: bool },
}

/// Lets the judge look at the calling process (and every process of the test) now, and waits
/// until it has. `label` names the moment; the judge finds the snapshot by it
/// ([`crate::Witness::at`]).
///
/// Call it from test code inside an isolated body, in the test process or in a child the code
/// under test forked. Outside an isolated test it panics.
pub fn checkpoint(label: &str) {
    send(
        &Message::Checkpoint {
            label: label.to_owned(),
        },
        true,
    )
    .unwrap_or_else(|e| {
        panic!("checkpoint {label:?}: cannot reach the judge ({e}); is this an isolated test?")
    });
}

/// True inside the process that runs an isolated body (or a child it forked).
pub fn in_isolated_process() -> bool {
    probe_fd().is_some()
}

fn probe_fd() -> Option<RawFd> {
    std::env::var(PROBE_FD_ENV).ok()?.parse().ok()
}

/// Sends `message`; with `wait`, blocks until the judge answers.
pub(crate) fn send(message: &Message, wait: bool) -> Result<(), String> {
    let fd = probe_fd().ok_or("no probe socket in this process")?;
    let bytes = serde_json::to_vec(message).map_err(|e| format!("cannot encode: {e}"))?;
    if bytes.len() > MAX_MESSAGE {
        return Err(format!(
            "the message is {} bytes, more than the judge accepts ({MAX_MESSAGE}): return a \
             digest and a length instead of large data",
            bytes.len()
        ));
    }
    let answer = if wait {
        let (read_end, write_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        Some((read_end, write_end))
    } else {
        None
    };
    let fds: Vec<RawFd> = answer.iter().map(|(_, w)| w.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(
            fd,
            &[IoSlice::new(&bytes)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("send to the judge: {e}")),
        }
    }
    if let Some((read_end, write_end)) = answer {
        drop(write_end);
        wait_for_answer(&read_end)?;
    }
    Ok(())
}

fn wait_for_answer(read_end: &OwnedFd) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(read_end, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err("the judge went away without answering".into()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("wait for the judge: {e}")),
        }
    }
}

/// One message as the judge receives it.
pub(crate) struct Received {
    /// The sender's pid as the kernel saw it.
    pub pid: i32,
    /// `None` for a packet that was not valid JSON of a [`Message`].
    pub message: Option<Message>,
    /// Where to answer, if the sender waits for an answer.
    pub answer: Option<OwnedFd>,
}

/// Receives one message on the judge's end; `Ok(None)` at end of file (every untrusted process
/// has closed its end).
pub(crate) fn receive(socket: BorrowedFd<'_>) -> Result<Option<Received>, Errno> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1024];
    let mut space = nix::cmsg_space!(libc::ucred, [RawFd; 4]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let (len, pid, mut fds) = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut pid = 0;
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(|_| Errno::EINVAL)? {
                    match cmsg {
                        ControlMessageOwned::ScmCredentials(creds) => pid = creds.pid(),
                        ControlMessageOwned::ScmRights(rights) => fds.extend(rights),
                        _ => {}
                    }
                }
                break (msg.bytes, pid, fds);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    // SAFETY: SCM_RIGHTS hands this process new descriptors that nothing else owns.
    let mut owned: Vec<OwnedFd> = fds
        .drain(..)
        .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        .collect();
    if len == 0 && owned.is_empty() {
        return Ok(None);
    }
    let message = serde_json::from_slice(&buf[..len]).ok();
    let answer = if owned.is_empty() {
        None
    } else {
        Some(owned.swap_remove(0))
    };
    Ok(Some(Received {
        pid,
        message,
        answer,
    }))
}
