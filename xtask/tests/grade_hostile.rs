//! The grader against a class of hostile submissions: each is the exercise01 starter whose every
//! `todo!` first runs one attack from `tests/hostile/` (in the test process, as a student's code
//! runs). None may score a point, each report must hold the verdicts of the course's own judges,
//! and nothing outside the sandbox may change: the grader's files, its loopback services, the
//! processes of the machine.
//!
//! Cost: one `grade --class` run over the corpus (a build of exercise01 per submission).
//! The reference solution scoring full marks through the same grader is the job of
//! `grade.rs`; here every submission is the unsolved starter plus an attack, or the solution
//! taken from where it must not be reachable.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn course() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the course root")
        .to_path_buf()
}

const ATTACKS: &[&str] = &[
    "forge_pass_line",
    "rewrite_suites",
    "read_secrets",
    "network",
    "fork_loop",
    "output_flood",
    "escapee",
    "constructor",
    "include_solution",
];

/// The starter's source with every `todo!("…")` running `__attack()` first, only in the tests of
/// task 1 (enough to show each attack; a flood in every test would only cost time).
fn armed_starter(attack: &str) -> String {
    let starter =
        fs::read_to_string(course().join("exercises/exercise01/src/lib.rs")).expect("the starter");
    let mut armed = String::new();
    let mut rest = starter.as_str();
    while let Some(at) = rest.find("todo!(\"") {
        let end = at + rest[at..].find("\")").expect("a todo! message ends") + 2;
        armed.push_str(&rest[..at]);
        armed.push_str("{ crate::__arm(); ");
        armed.push_str(&rest[at..end]);
        armed.push_str(" }");
        rest = &rest[end..];
    }
    armed.push_str(rest);
    armed.push_str(
        "\nfn __arm() {\n    if std::thread::current().name().is_some_and(|n| n.starts_with(\"task1_\")) {\n        __attack();\n    }\n}\n",
    );
    armed.push_str(attack);
    armed
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Processes still running from this grading: they carry its mark in their environment (other
/// programs' tests, running at the same time on the machine, do not).
fn processes_marked(mark: &str) -> Vec<String> {
    let needle = format!("{MARK_ENV}={mark}");
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

const MARK_ENV: &str = "IPCLAB_HOSTILE_GRADING";

#[test]
fn hostile_submissions_score_nothing_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let canary = tmp.path().join("solutions-canary.rs");
    fs::write(&canary, "pub fn secret_solution() {}\n").unwrap();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    service.set_nonblocking(true).unwrap();
    let port = service.local_addr().unwrap().port().to_string();

    let class = tmp.path().join("class");
    for name in ATTACKS {
        let attack = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/hostile/{name}.rs")),
        )
        .unwrap()
        .replace("@PORT@", &port)
        .replace("@CANARY@", &canary.display().to_string())
        .replace("@COURSE@", &course().display().to_string());
        let src = class.join(name).join("exercises/exercise01/src");
        fs::create_dir_all(&src).unwrap();
        let lib = if attack.starts_with("// WHOLE LIB") {
            attack
        } else {
            armed_starter(&attack)
        };
        fs::write(src.join("lib.rs"), lib).unwrap();
    }
    let reports = tmp.path().join("reports");
    let mark = format!("{}", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(course())
        .env(MARK_ENV, &mark)
        .args(["grade", "--exercise", "1", "--format", "json", "--class"])
        .arg(&class)
        .arg("--out")
        .arg(tmp.path().join("grades.csv"))
        .arg("--reports")
        .arg(&reports)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "grading failed:\n{stderr}");

    for name in ATTACKS {
        let path = reports.join(format!("{name}.json"));
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}\n{stderr}"));
        let report: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(report["score"], 0, "{name} scored points:\n{text}");
        assert!(report["max_score"].as_u64().unwrap() > 0, "{name}:\n{text}");
        assert!(!text.contains("STOLEN"), "{name} read a secret:\n{text}");
        assert!(
            !text.contains("REACHED"),
            "{name} reached the host:\n{text}"
        );
        assert!(
            text.len() < 4 << 20,
            "{name}: a report of {} bytes",
            text.len()
        );
        match *name {
            "constructor" => assert!(text.contains("constructor or destructor"), "{text}"),
            "include_solution" => assert!(text.contains("build_failed"), "{text}"),
            "output_flood" => assert!(text.contains("output cut here"), "{text}"),
            _ => {}
        }
        // Every graded verdict comes from the course's judges, behind every wall (as root).
        if nix_is_root() && *name != "constructor" && *name != "include_solution" {
            assert!(
                text.contains("sandbox: own uid per test"),
                "{name}:\n{text}"
            );
            assert!(!text.contains("WARNING"), "{name}:\n{text}");
        }
    }
    assert_eq!(
        fs::read_to_string(&canary).unwrap(),
        "pub fn secret_solution() {}\n",
        "a submission changed a file of the grader's"
    );
    match service.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a submission connected to the grader's loopback service: {other:?}"),
    }
    let left = processes_marked(&mark);
    assert!(
        left.is_empty(),
        "processes of the grading still run: {left:?}"
    );
}
