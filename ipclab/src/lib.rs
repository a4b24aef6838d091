//! The library behind the `ipclab` command: where the course's pieces are, and how to run an
//! exercise's graded suite and read its verdict. `cargo xtask verify` uses the same code, so
//! there is one definition of what "passing" means.
//!
//! * [`course`] and [`info`]: the exercises, their titles, tasks, chapters and hints.
//! * [`suite`]: runs `cargo test -p exerciseNN` and reads libtest's verdict.
//! * [`status`]: where an exercise stands, cached by a fingerprint of its sources.
//! * [`cli`], [`watch`], [`render`]: the command, its watch mode and its screens.
//! * [`pristine`]: untouched starters, known as "not started" without a run.
//! * [`rubric`]: points by task (`tests/exerciseNN/rubric.toml`), shared with the grader;
//!   [`source`]: the suite's test functions as written.
//! * [`hints`]: which hints were shown (the tool's only state); [`git`]: the starter, for `reset`.
//! * [`reaper`] and [`signals`]: nothing a run starts outlives it, even on Ctrl-C.
//! * [`bench`]: `cargo ipclab bench`, the student's code raced against the reference.
//! * [`trace`]: `cargo ipclab trace`, one test's processes and system calls as a timeline.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ipclab teaches Linux inter-process communication and runs only on Linux \
     (a virtual machine or WSL 2 works)."
);

pub mod bench;
pub mod cli;
pub mod course;
pub mod git;
pub mod hints;
pub mod info;
pub mod pristine;
pub mod reaper;
pub mod render;
pub mod rubric;
pub mod signals;
pub mod source;
pub mod status;
pub mod suite;
pub mod trace;
pub mod watch;
