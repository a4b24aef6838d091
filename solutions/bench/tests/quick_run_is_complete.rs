//! The benchmark's own test: a `--quick` run writes a complete, verified result. It never
//! asserts a speed (the machine may be busy); it asserts that every cell is there.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_quick_run_has_every_cell_verified() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let status = Command::new(env!("CARGO_BIN_EXE_ipclab-bench"))
        .args(["--quick", "--out"])
        .arg(dir.path())
        .status()
        .expect("ipclab-bench runs");
    assert!(status.success(), "ipclab-bench --quick failed: {status}");
    for file in [
        "results.md",
        "which-mechanism.md",
        "throughput-one-cpu.svg",
        "throughput-two-cpus.svg",
        "latency.svg",
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).expect(file);
        assert!(!text.is_empty(), "{file} is empty");
    }
    let choose = std::fs::read_to_string(dir.path().join("which-mechanism.md")).unwrap();
    assert!(
        !choose.contains("<td>—</td>"),
        "a need in \"which mechanism when\" has no candidate measured:\n{choose}"
    );
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .expect("results.json is JSON");
    let machine = &run["machine"];
    for key in [
        "cpu_model",
        "kernel",
        "load_average_start",
        "load_average_end",
    ] {
        assert!(
            machine[key].as_str().is_some_and(|s| !s.is_empty()),
            "machine.{key} missing"
        );
    }
    assert!(machine["cores"].as_u64().is_some_and(|n| n > 0));
    assert!(machine["caches"].is_array());
    let two_cpus = machine["allowed_cpus"].as_array().map_or(0, Vec::len) >= 2;

    let rows = |key: &str| run[key].as_array().cloned().unwrap_or_default();
    let has = |key: &str, mechanism: &str, size: Option<u64>| {
        rows(key).iter().any(|r| {
            r["mechanism"] == mechanism && size.is_none_or(|s| r["size"].as_u64() == Some(s))
        })
    };
    let sizes = [64, 4096, 65536, 1 << 20];
    for mechanism in [
        "pipe (64 KiB)",
        "pipe (1 MiB)",
        "FIFO",
        "socketpair stream",
        "AF_UNIX stream",
        "TCP loopback",
    ] {
        for size in sizes {
            assert!(
                has("throughput", mechanism, Some(size)),
                "{mechanism} at {size} B"
            );
        }
    }
    for size in [64, 4096, 65536] {
        assert!(has("throughput", "socketpair datagram", Some(size)));
    }
    let msgmax = machine["msgmax"].as_u64().unwrap();
    assert!(has("throughput", "System V message queue", Some(msgmax)));
    for size in sizes {
        assert!(has("memcpy", "memcpy (cache-resident)", Some(size)));
        assert!(has("memcpy", "memcpy (from memory)", Some(size)));
    }
    for mechanism in [
        "pipe (64 KiB)",
        "FIFO",
        "socketpair stream",
        "socketpair datagram",
        "AF_UNIX stream",
        "TCP loopback",
        "UDP loopback",
        "System V message queue",
        "System V semaphores",
        "System V shared memory (spin, then yield)",
        "signals (kill + sigwaitinfo)",
        "eventfd",
    ] {
        assert!(has("latency", mechanism, None), "latency of {mechanism}");
    }
    assert!(run["syscall_seconds"].as_f64().is_some());
    for wait in ["spin, then yield", "futex wake-up"] {
        let ring = format!("shared-memory ring ({wait})");
        for size in sizes {
            assert!(has("throughput", &ring, Some(size)), "{ring} at {size} B");
            assert!(
                has("c_throughput", &ring, Some(size)),
                "C {ring} at {size} B"
            );
        }
    }
    // The C twins: the same rows as their Rust loops, for every mechanism but UDP.
    for mechanism in [
        "pipe (64 KiB)",
        "pipe (1 MiB)",
        "FIFO",
        "socketpair stream",
        "socketpair datagram",
        "AF_UNIX stream",
        "TCP loopback",
    ] {
        for size in sizes.iter().copied() {
            // A datagram socket pair takes at most 64 KiB per message (as its Rust loop).
            if mechanism == "socketpair datagram" && size > 64 * 1024 {
                continue;
            }
            assert!(
                has("c_throughput", mechanism, Some(size)),
                "C {mechanism} at {size} B"
            );
        }
        assert!(
            has("c_latency", mechanism, None),
            "C latency of {mechanism}"
        );
    }
    assert!(has("c_throughput", "System V message queue", Some(msgmax)));
    for mechanism in [
        "System V message queue",
        "System V semaphores",
        "signals (kill + sigwaitinfo)",
        "eventfd",
    ] {
        assert!(
            has("c_latency", mechanism, None),
            "C latency of {mechanism}"
        );
    }
    // Every reference solution with a transfer or a round trip, beside its raw row.
    for (key, mechanism) in [
        ("solutions", "exercise01 stream_through_child"),
        ("solutions", "exercise02 send_message / receive_message"),
        (
            "solutions",
            "exercise02 send_message / receive_message (through a BufReader of PIPE_BUF bytes)",
        ),
        ("solutions", "exercise03 MessageQueue send/receive"),
        ("solutions", "exercise04 shared-memory ring (4 MiB)"),
        ("solutions", "exercise06 half_close_round_trip (one way)"),
        ("solution_latency", "exercise03 call / serve"),
        (
            "solution_latency",
            "exercise05 SignalCounter (handler + self-pipe)",
        ),
        ("solution_latency", "exercise07 Semaphore post / wait"),
        ("solution_latency", "exercise08 Client::echo (AF_UNIX)"),
        ("solution_latency", "exercise08 Client::echo (TCP)"),
        (
            "solution_latency",
            "exercise09 run_pipeline, a pipeline of two /bin/true",
        ),
    ] {
        let row = rows(key).into_iter().find(|r| r["mechanism"] == mechanism);
        let row = row.unwrap_or_else(|| panic!("{key}: no row {mechanism}"));
        let raw = row["raw"]
            .as_str()
            .unwrap_or_else(|| panic!("{mechanism}: no raw"));
        let raws = if key == "solutions" {
            [rows("throughput"), rows("solutions")].concat()
        } else {
            [rows("latency"), rows("solution_latency")].concat()
        };
        // Measured in turns with the solution (what its ratio divides by), or as a row.
        let in_turns = row["raw_in_turns"]
            .as_array()
            .is_some_and(|cells| cells.iter().any(|c| c["verified"] == true));
        assert!(
            in_turns || raws.iter().any(|r| r["mechanism"] == raw),
            "{mechanism}: its raw mechanism {raw:?} is measured neither in turns with it nor as \
             a row"
        );
    }

    for key in [
        "memcpy",
        "throughput",
        "latency",
        "solutions",
        "solution_latency",
        "c_throughput",
        "c_latency",
    ] {
        for row in rows(key) {
            // The raw mechanism measured in turns with a solution: each cell there is verified.
            for cell in row["raw_in_turns"].as_array().into_iter().flatten() {
                assert!(
                    cell.is_null() || cell["verified"] == true,
                    "{key}: the raw mechanism in turns with {row}"
                );
            }
            for placement in ["one_cpu", "two_cpus"] {
                let cell = &row[placement];
                let needed = placement == "one_cpu" || (two_cpus && key != "memcpy");
                if cell.is_null() {
                    // The solutions that fork their own child can only be measured on one CPU.
                    assert!(
                        !needed || key.starts_with("solution"),
                        "{key} {row} {placement}"
                    );
                    continue;
                }
                assert_eq!(cell["verified"], true, "{key}: {row}");
                assert!(cell["median"].as_f64().is_some(), "{key}: {row}");
                if key == "latency" || key == "c_latency" {
                    assert!(cell["p99"].as_f64().is_some(), "{key}: {row}");
                }
            }
        }
    }
}

/// `--only exerciseNN` (what `cargo ipclab bench N` runs, twice): that exercise's rows and
/// nothing else, each verified, each counted with strace when asked and strace is here.
#[test]
fn only_one_exercise_is_measured_when_asked() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let status = Command::new(env!("CARGO_BIN_EXE_ipclab-bench"))
        .args([
            "--only",
            "exercise07",
            "--quick",
            "--count-syscalls",
            "--out",
        ])
        .arg(dir.path())
        .status()
        .expect("ipclab-bench runs");
    assert!(
        status.success(),
        "ipclab-bench --only exercise07 failed: {status}"
    );
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .expect("results.json is JSON");
    for key in ["memcpy", "solutions", "c_throughput", "c_latency"] {
        assert_eq!(
            run[key].as_array().map(Vec::len),
            Some(0),
            "{key} is not empty"
        );
    }
    let latency = run["solution_latency"].as_array().unwrap();
    assert_eq!(latency.len(), 1, "{latency:?}");
    assert_eq!(latency[0]["mechanism"], "exercise07 Semaphore post / wait");
    assert_eq!(latency[0]["one_cpu"]["verified"], true);
    // The raw mechanism it stands beside, measured in the same run (the race shows it), and
    // nothing else of the lab.
    assert_eq!(run["throughput"].as_array().map(Vec::len), Some(0));
    let raw = run["latency"].as_array().unwrap();
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0]["mechanism"], latency[0]["raw"]);
    assert_eq!(raw[0]["mechanism"], "System V semaphores");
    assert_eq!(raw[0]["one_cpu"]["verified"], true);
    let strace = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if strace {
        let counted = run["syscalls"].as_array().unwrap();
        assert_eq!(counted.len(), 1, "{counted:?}");
        assert_eq!(
            counted[0]["mechanism"],
            "latency: exercise07 Semaphore post / wait"
        );
        assert!(counted[0]["error"].is_null(), "{:?}", counted[0]);
        assert!(counted[0]["total_per_message"].as_f64().unwrap() > 0.0);
        // And the work per message the kernel accounted to a run without strace.
        for field in ["sleeps", "preemptions", "user_us", "kernel_us"] {
            let value = counted[0]["usage"][field].as_f64();
            assert!(
                value.is_some_and(|v| v >= 0.0),
                "usage.{field} is {value:?} in {:?}",
                counted[0]
            );
        }
    }
}
