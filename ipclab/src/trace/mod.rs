//! `cargo ipclab trace`: what one graded test's processes did, as the kernel saw it.
//!
//! The bugs of this course hide in the kernel's state, not in the code: a write end still open
//! in one forgotten process, a child nobody reaped, a signal that arrived once for three exits.
//! strace sees all of it, but `strace -f` of a forking test is hundreds of interleaved lines.
//! This module runs the test under strace and turns its output into a picture:
//!
//! * [`parse`] joins strace's lines into whole calls; [`fds`] names what descriptors refer to;
//! * [`model`] builds the processes, their events and descriptor tables;
//! * [`diagnose`] states what the trace proves (and only that);
//! * [`svg`] and [`term`] draw it; [`run`] finds the test binary and runs strace.

pub mod command;
pub mod diagnose;
pub mod fds;
pub mod model;
pub mod parse;
pub mod run;
pub mod svg;
pub mod term;
pub mod view;

pub use diagnose::{diagnose, Diagnosis, Finding};
pub use model::{Options, Trace};
