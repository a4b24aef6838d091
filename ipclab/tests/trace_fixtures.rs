//! The trace model, its diagnoses and its terminal picture, from strace outputs recorded from
//! known programs (`tests/fixtures/strace/record.sh` re-records them).

use ipclab::trace::model::{Ending, Role};
use ipclab::trace::view::View;
use ipclab::trace::{diagnose, term, Finding, Options, Trace};

fn load(name: &str, first_is_harness: bool) -> Trace {
    let path = format!(
        "{}/tests/fixtures/strace/{name}.strace",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Trace::from_strace(&text, Options { first_is_harness })
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn picture(trace: &Trace) -> String {
    anstream::adapter::strip_str(&term::render(&View::new(trace, false), &diagnose(trace)))
        .to_string()
}

#[test]
fn dump() {
    for (name, h) in [
        ("forgotten_write_end", true),
        ("zombie", false),
        ("coalesced_sigchld", false),
        ("pipeline", false),
        ("sigpipe", false),
    ] {
        let t = load(name, h);
        println!("=== {name}\n{}", picture(&t));
    }
}
