//! Drive a program through a pseudo-terminal, as a person at a keyboard would.
//!
//! Job control only exists on a terminal: Ctrl+C becomes SIGINT and Ctrl+Z becomes SIGTSTP
//! because the terminal's line discipline turns those bytes into signals for its *foreground
//! process group*, and a shell hands that role to a job with `tcsetpgrp`. A pipe has none of this.
//! So a test that grades job control starts the program on the slave side of a pseudo-terminal,
//! as the leader of a new session whose controlling terminal that slave is, and plays the
//! keyboard on the master side: [`Pty::send`] writes keys (`b"\x03"` is Ctrl+C, `b"\x1a"`
//! Ctrl+Z, `b"\x04"` Ctrl+D), [`Pty::expect`] reads what the program writes until a given text
//! appears.
//!
//! Two choices keep transcripts deterministic:
//! * Echo is off. With echo on, the terminal itself writes back every key, and whether that echo
//!   lands before or after the program's answer depends on scheduling. Signals (`ISIG`) and line
//!   editing (`ICANON`) stay on, so the program sees a normal cooked terminal.
//! * Every read has a deadline ([`EXPECT_TIMEOUT`], stretched by `IPCLAB_DEADLINE_SCALE`): when
//!   the text does not come, the test fails with what it was waiting for and the transcript so
//!   far, well before the isolated test's own deadline.

use std::env;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
use nix::unistd::{tcgetpgrp, Pid};

use crate::isolate::DEADLINE_SCALE_ENV;

/// How long [`Pty::expect`] waits for a text before failing the test (before scaling).
pub const EXPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A program running on a pseudo-terminal, and everything it has written so far.
#[derive(Debug)]
pub struct Pty {
    master: File,
    child: Option<Child>,
    pid: Pid,
    /// Every byte read from the master, as the program wrote it (with `\r\n` line ends).
    output: Vec<u8>,
    /// How much of the normalised transcript [`Pty::expect`] has already matched.
    consumed: usize,
    /// The terminal reported end of file: every process holding the slave has closed it.
    closed: bool,
}

impl Pty {
    /// Starts `program` with `args` on a new pseudo-terminal: its standard input, output and error
    /// are the slave, and it leads a new session whose controlling terminal is the slave (so it is
    /// also the terminal's foreground process group, as a login shell would be).
    pub fn spawn(program: impl AsRef<Path>, args: &[&str]) -> io::Result<Pty> {
        let (master, slave) = open_pair()?;
        let mut modes = tcgetattr(&slave).map_err(io::Error::from)?;
        modes
            .local_flags
            .remove(LocalFlags::ECHO | LocalFlags::ECHOE | LocalFlags::ECHOK | LocalFlags::ECHOCTL);
        tcsetattr(&slave, SetArg::TCSANOW, &modes).map_err(io::Error::from)?;

        let slave = File::from(slave);
        let mut command = Command::new(program.as_ref());
        command
            .args(args)
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave));
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (signal, setsid, ioctl); it allocates nothing.
        unsafe {
            command.pre_exec(|| {
                // A program on a terminal starts with the job-control signals at their defaults,
                // whatever its parent ignores (a test run from a background job ignores SIGINT).
                for signal in [
                    libc::SIGINT,
                    libc::SIGQUIT,
                    libc::SIGTSTP,
                    libc::SIGTTIN,
                    libc::SIGTTOU,
                ] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Standard input is the slave by now: make it the controlling terminal of the new
                // session (which also makes this process group its foreground group).
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // `command` holds the parent's copies of the slave until it is dropped, right after spawn:
        // from then on only the program holds it, so its exit closes the terminal.
        let child = command.spawn()?;
        drop(command);
        Ok(Pty {
            master: File::from(master),
            pid: Pid::from_raw(child.id() as i32),
            child: Some(child),
            output: Vec::new(),
            consumed: 0,
            closed: false,
        })
    }

    /// The program's process id (it leads its own session and process group).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The master side, e.g. for `tcgetpgrp`.
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// The terminal's foreground process group: who receives Ctrl+C and Ctrl+Z now.
    pub fn foreground_group(&self) -> Pid {
        tcgetpgrp(self.master.as_fd()).expect("tcgetpgrp on the pseudo-terminal's master")
    }

    /// Types `keys` on the keyboard.
    #[track_caller]
    pub fn send(&mut self, keys: &[u8]) {
        if let Err(e) = self.master.write_all(keys) {
            panic!(
                "could not type {:?} on the terminal: {e}\n{}",
                String::from_utf8_lossy(keys),
                self.transcript_section()
            );
        }
    }

    /// Types `line` followed by Enter.
    #[track_caller]
    pub fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes());
    }

    /// Reads until `needle` appears in what the program wrote after the previous match, and
    /// returns that stretch of output, `needle` included (line ends normalised to `\n`).
    ///
    /// Fails the test, saying `waiting_for` and showing the transcript, if the text has not come
    /// within [`EXPECT_TIMEOUT`] or the terminal closed first.
    #[track_caller]
    pub fn expect(&mut self, needle: &str, waiting_for: &str) -> String {
        self.expect_within(scaled(EXPECT_TIMEOUT), needle, waiting_for)
    }

    /// [`Pty::expect`] with a timeout of the caller's choosing (not scaled).
    #[track_caller]
    pub fn expect_within(&mut self, timeout: Duration, needle: &str, waiting_for: &str) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.transcript();
            if let Some(at) = text[self.consumed..].find(needle) {
                let end = self.consumed + at + needle.len();
                let matched = text[self.consumed..end].to_owned();
                self.consumed = end;
                return matched;
            }
            if self.closed {
                panic!(
                    "{waiting_for}: expected {needle:?} on the terminal, but the program closed \
                     it (it exited) first.\n{}",
                    self.transcript_section()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.read_some(left) && Instant::now() >= deadline {
                panic!(
                    "{waiting_for}: expected {needle:?} on the terminal, but it did not appear \
                     within {timeout:?}.\n{}",
                    self.transcript_section()
                );
            }
        }
    }

    /// Waits (with the [`EXPECT_TIMEOUT`] deadline) until the program and every process that
    /// shares its terminal have closed it, keeping their last output, then reaps the program.
    #[track_caller]
    pub fn wait(&mut self, waiting_for: &str) -> ExitStatus {
        let timeout = scaled(EXPECT_TIMEOUT);
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{waiting_for}: the terminal was still open after {timeout:?}: the program \
                     (or a process it started) is still running.\n{}",
                    self.transcript_section()
                );
            }
            self.read_some(left);
        }
        let mut child = self.child.take().expect("the program is reaped only once");
        child.wait().expect("wait for the program on the terminal")
    }

    /// Everything the program wrote so far, with `\r\n` normalised to `\n`.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output).replace("\r\n", "\n")
    }

    fn transcript_section(&self) -> String {
        let text = self.transcript();
        let unmatched = &text[self.consumed..];
        let after = if self.consumed > 0 && !unmatched.is_empty() {
            format!("\n(written since the last expected text: {unmatched:?})")
        } else {
            String::new()
        };
        format!("--- the terminal so far ---\n{text}\n--- end ---{after}")
    }

    /// Waits up to `timeout` for output and appends it; false if none came.
    fn read_some(&mut self, timeout: Duration) -> bool {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(Errno::EINTR) => return false,
            Err(e) => panic!("poll on the pseudo-terminal failed: {e}"),
        }
        let mut chunk = [0u8; 4096];
        match self.master.read(&mut chunk) {
            // Linux reports EIO on the master once no process holds the slave any more.
            Ok(0) => self.closed = true,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => self.closed = true,
            Ok(n) => self.output.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the pseudo-terminal failed: {e}"),
        }
        true
    }
}

impl Drop for Pty {
    /// A program still running (the test failed halfway) is killed and reaped.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A master and slave pair, both close-on-exec from the start. (`openpty` leaves them
/// inheritable: a program that another thread of this process starts meanwhile would keep the
/// terminal open, and its end of file would never come.)
fn open_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave_path = ptsname_r(&master)?;
    let slave = open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: PtyMaster owns the descriptor; into_raw_fd hands that ownership over.
    let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
    Ok((master, slave))
}

fn scaled(timeout: Duration) -> Duration {
    let scale = env::var(DEADLINE_SCALE_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0);
    timeout.mul_f64(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_reads_the_keyboard_and_writes_the_screen() {
        let mut pty = Pty::spawn("cat", &[]).unwrap();
        pty.send_line("hello");
        assert_eq!(pty.expect("hello\n", "cat echoing a line"), "hello\n");
        // Ctrl+D on an empty line is end of file for cat.
        pty.send(b"\x04");
        assert!(pty.wait("cat exiting at end of file").success());
        assert_eq!(
            pty.transcript(),
            "hello\n",
            "echo is off: only cat's output"
        );
    }

    #[test]
    fn the_program_leads_a_session_and_is_in_the_foreground() {
        // `exec`: with a fork between `echo` and `cat`, a Ctrl+C typed in that window is lost
        // now and then (dash forks with vfork there), which is not what this test is about.
        let mut pty = Pty::spawn("sh", &["-c", "echo ready; exec cat"]).unwrap();
        pty.expect("ready\n", "sh starting");
        assert_eq!(
            pty.foreground_group(),
            pty.pid(),
            "the session leader's group owns the terminal"
        );
        let info = crate::procfs::process(pty.pid()).unwrap().unwrap();
        assert_eq!((info.sid, info.pgid), (pty.pid(), pty.pid()));
        // Ctrl+C: the line discipline sends SIGINT to the foreground group.
        pty.send(b"\x03");
        let status = pty.wait("sh dying of SIGINT");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGINT));
    }

    #[test]
    #[should_panic(expected = "did not appear")]
    fn a_missing_text_fails_with_a_deadline() {
        let mut pty = Pty::spawn("cat", &[]).unwrap();
        pty.expect_within(
            Duration::from_millis(100),
            "never",
            "a text cat never writes",
        );
    }

    #[test]
    #[should_panic(expected = "closed it")]
    fn a_program_that_exits_fails_the_expectation_at_once() {
        let mut pty = Pty::spawn("true", &[]).unwrap();
        pty.expect("anything", "a text true never writes");
    }
}
