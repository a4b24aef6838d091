//! Judge-side comparisons of descriptor tables between two snapshots, for every suite: "what did
//! the call open and not close", read from the kernel by the judge instead of by the test process
//! about itself.

use std::collections::BTreeMap;

use crate::witness::{FdEntry, ProcessState};

/// Descriptors that `after` holds and `before` did not hold (or held to something else).
///
/// `before` and `after` may be two processes: a forked child compared with its parent before the
/// fork shows what the child holds beyond what it inherited.
pub fn fds_opened_since<'a>(
    before: &ProcessState,
    after: &'a ProcessState,
) -> BTreeMap<i32, &'a FdEntry> {
    after
        .fds
        .iter()
        .filter(|(fd, entry)| before.fds.get(fd).map(|e| &e.target) != Some(&entry.target))
        .map(|(fd, entry)| (*fd, entry))
        .collect()
}

/// Panics, naming each leaked descriptor and `what_to_close`, if `after` holds a descriptor that
/// `before` did not (the judge's form of `procfs::FdSnapshot::assert_no_leaks`, same message).
#[track_caller]
pub fn assert_no_fd_leaks(before: &ProcessState, after: &ProcessState, what_to_close: &str) {
    let leaked = fds_opened_since(before, after);
    if !leaked.is_empty() {
        let list: Vec<String> = leaked
            .iter()
            .map(|(fd, e)| format!("fd {fd} -> {}", e.target))
            .collect();
        panic!(
            "descriptor leak: after the call the process still holds {} that it did not hold before \
             ({}). {what_to_close}",
            if leaked.len() == 1 { "a descriptor" } else { "descriptors" },
            list.join(", ")
        );
    }
}
