//! Test machinery shared by every ipclab suite.
//!
//! A suite is a specification the student reads, so the pieces here exist to keep suites short
//! and their failures readable:
//!
//! * [`isolated`] runs a test body (the student's code) in a sandboxed process of its own with a
//!   deadline, and hands what it returns to a judging closure that runs where no student code has
//!   run: the verdict cannot be forged, a hang becomes a failing test with a hint, and nothing
//!   outlives the test. [`checkpoint`] lets the judge read the kernel's state of the test's
//!   processes itself ([`witness`]); [`sandbox`] says what walls the test ran behind; [`record`]
//!   is the structured verdict that tools read instead of libtest's text.
//! * [`procfs`] reads what the kernel shows about a process (open descriptors, children,
//!   zombies, signal masks), so that tests can use the kernel as the witness: a submission that
//!   fakes a mechanism, leaks a descriptor or leaves a zombie fails.
//! * [`interrupt`] interrupts the code under test with signals, so that code which does not
//!   retry after EINTR or continue after a partial write fails.
//! * [`sysvipc`] reads the kernel's tables of System V IPC objects (`/proc/sysvipc/{msg,shm,sem}`),
//!   so that tests see which queues, segments and semaphore sets exist, what they hold, and that
//!   they are gone after cleanup.
//! * [`hold`] holds threads of the code under test still in a signal handler, so that code
//!   which does not wait for its threads (a drop that does not join) fails every time.
//! * [`child`] forks a child that runs a closure and ends with `_exit`, and reads its exit code.
//! * [`data`] names the message sizes where pipes change behaviour and compares payloads.
//! * [`pty`] drives a program through a pseudo-terminal (keys in, screen out, every read with a
//!   deadline), for what only exists on a terminal: job control, Ctrl+C, Ctrl+Z.
//! * [`netprocfs`] reads the kernel's socket tables (`/proc/net/{unix,tcp,udp}`): what a socket
//!   inode is bound to, whether it listens, its type.
//! * [`snapshot`] compares output with a reviewed `.snap` file in the judge
//!   ([`assert_snapshot!`]): a mismatch shows a line diff and writes nothing.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ipclab teaches Linux inter-process communication: it reads /proc and uses Linux system calls. \
     Build it on Linux (a virtual machine or WSL 2 works)."
);

pub mod child;
pub mod data;
pub mod hold;
pub mod interrupt;
pub mod isolate;
mod keeper;
pub mod netprocfs;
pub mod probe;
pub mod procfs;
pub mod pty;
pub mod record;
pub mod sandbox;
pub mod snapshot;
pub mod syscalls;
pub mod sysvipc;
pub mod witness;

pub use isolate::{isolated, isolated_for, Deadline, Outcome, Witness};
pub use probe::checkpoint;
pub use witness::Snapshot;
pub mod descriptors;
