// Read what a test process must never see, and print it for the report.
pub fn __attack() {
    for path in [
        "/etc/shadow",
        "@CANARY@",
        "@COURSE@/solutions/exercise01/src/lib.rs",
    ] {
        if let Ok(text) = std::fs::read_to_string(path) {
            println!("STOLEN {path}: {text}");
        }
    }
}
