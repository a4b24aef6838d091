// Rewrite the suites (the grading copy's and a file of the grader's), the snapshots, set insta's
// variables, then fail as the starter does.
pub fn __attack() {
    let suite = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/exercise02/main.rs");
    let _ = std::fs::write(suite, "#[test]\nfn task1_anything() {}\n");
    let _ = std::fs::write("@CANARY@", "overwritten by a submission");
    let snaps = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/exercise01/snapshots");
    if let Ok(dir) = std::fs::read_dir(snaps) {
        for e in dir.flatten() {
            let _ = std::fs::write(e.path(), "forged");
        }
    }
    std::env::set_var("INSTA_FORCE_PASS", "1");
    std::env::set_var("INSTA_UPDATE", "always");
}
