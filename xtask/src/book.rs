//! Building the book with mdBook, installed into `target/tools` on first use so that a fresh
//! machine with only Rust needs no manual step.

use std::path::Path;
use std::process::Command;

const MDBOOK_VERSION: &str = "0.5.4";

/// Builds `book/` into `book/build`; any warning or error from mdBook fails the build, and so
/// does a code line wider than the page or a broken internal link.
pub fn build(root: &Path) -> Result<(), String> {
    let mdbook = ensure_mdbook(root)?;
    let output = Command::new(&mdbook)
        .arg("build")
        .arg(root.join("book"))
        .output()
        .map_err(|e| format!("could not run {mdbook}: {e}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    if !output.status.success() || !complaints.is_empty() {
        let shown = if complaints.is_empty() {
            log.trim().to_owned()
        } else {
            complaints.join("\n")
        };
        return Err(format!("mdbook build reported problems:\n{shown}"));
    }
    // What mdBook accepts but a reader would trip over: code that scrolls sideways, and links,
    // anchors or images that lead nowhere.
    crate::codewidth::check(&root.join("book/src"), root)?;
    crate::linkcheck::check(&root.join("book/build"))
}

/// An mdBook of the pinned minor version: on PATH, in `target/tools`, or installed there now.
fn ensure_mdbook(root: &Path) -> Result<String, String> {
    let wanted = format!(
        "v{}",
        MDBOOK_VERSION
            .rsplit_once('.')
            .map_or(MDBOOK_VERSION, |(minor, _)| minor)
    );
    let local = root.join("target/tools/bin/mdbook");
    for candidate in ["mdbook".to_owned(), local.display().to_string()] {
        let version = Command::new(&candidate).arg("--version").output();
        if matches!(&version, Ok(v) if String::from_utf8_lossy(&v.stdout).contains(&format!("{wanted}.")))
        {
            return Ok(candidate);
        }
    }
    eprintln!("xtask: installing mdbook {MDBOOK_VERSION} into target/tools (once; a few minutes on two cores)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            "mdbook",
            "--version",
            MDBOOK_VERSION,
            "--locked",
            "--quiet",
        ])
        .args(["--no-default-features", "--features", "search", "--root"])
        .arg(root.join("target/tools"))
        .status()
        .map_err(|e| format!("could not run cargo install: {e}"))?;
    if !status.success() {
        return Err(format!("cargo install mdbook {MDBOOK_VERSION} failed"));
    }
    Ok(local.display().to_string())
}
