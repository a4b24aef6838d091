//! mdBook and its translation plugins, installed into `target/tools` on first use so that a
//! fresh machine with only Rust needs no manual step.

use std::path::{Path, PathBuf};
use std::process::Command;

const MDBOOK_VERSION: &str = "0.5.4";
/// `mdbook-xgettext` (extracts the English text) and `mdbook-gettext` (translates the book).
const I18N_HELPERS_VERSION: &str = "0.4.0";

/// The directory that holds the installed tools' binaries.
pub fn bin_dir(root: &Path) -> PathBuf {
    root.join("target/tools/bin")
}

/// An mdBook of the pinned minor version: on PATH, in `target/tools`, or installed there now.
pub fn ensure_mdbook(root: &Path) -> Result<String, String> {
    let wanted = format!(
        "v{}",
        MDBOOK_VERSION
            .rsplit_once('.')
            .map_or(MDBOOK_VERSION, |(minor, _)| minor)
    );
    let local = bin_dir(root).join("mdbook");
    for candidate in ["mdbook".to_owned(), local.display().to_string()] {
        let version = Command::new(&candidate).arg("--version").output();
        if matches!(&version, Ok(v) if String::from_utf8_lossy(&v.stdout).contains(&format!("{wanted}.")))
        {
            return Ok(candidate);
        }
    }
    install(
        root,
        "mdbook",
        MDBOOK_VERSION,
        &["--no-default-features", "--features", "search"],
    )?;
    Ok(local.display().to_string())
}

/// mdbook-i18n-helpers of the pinned version in `target/tools` (cargo's install record says
/// which version is there), installed now if missing.
pub fn ensure_i18n_helpers(root: &Path) -> Result<(), String> {
    let record = root.join("target/tools/.crates.toml");
    let installed = std::fs::read_to_string(record).unwrap_or_default();
    let wanted = format!("\"mdbook-i18n-helpers {I18N_HELPERS_VERSION} ");
    let binaries = ["mdbook-gettext", "mdbook-xgettext"];
    if installed.contains(&wanted) && binaries.iter().all(|b| bin_dir(root).join(b).is_file()) {
        return Ok(());
    }
    install(root, "mdbook-i18n-helpers", I18N_HELPERS_VERSION, &[])
}

pub fn install(root: &Path, krate: &str, version: &str, extra: &[&str]) -> Result<(), String> {
    eprintln!(
        "xtask: installing {krate} {version} into target/tools (once; a few minutes on two cores)"
    );
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "install",
            krate,
            "--version",
            version,
            "--locked",
            "--quiet",
        ])
        .args(extra)
        .arg("--root")
        .arg(root.join("target/tools"))
        .status()
        .map_err(|e| format!("could not run cargo install: {e}"))?;
    if !status.success() {
        return Err(format!("cargo install {krate} {version} failed"));
    }
    Ok(())
}
