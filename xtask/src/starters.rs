//! `cargo xtask starters`: every starter is generated from its reference solution, so the public
//! API (types, error enums, signatures, doc comments) is written once and the two cannot drift.
//!
//! The solution marks what the student must not see, in the manner of nbgrader's
//! `### BEGIN SOLUTION` cells. The markers are line comments, which rustfmt leaves alone and
//! which read as notes in the model code:
//!
//! - `// BEGIN SOLUTION Task 2: pipe(), fork(), …` … `// END SOLUTION`: the lines between are the
//!   solution; the starter gets `todo!("Task 2: pipe(), fork(), …")` in their place (the text
//!   after `BEGIN SOLUTION` is copied into the string literal as written, so `{{` stays `{{`).
//! - `// BEGIN SOLUTION` … `// END SOLUTION` with nothing after it: solution-only lines (a
//!   private helper, a field); the starter gets nothing, or what the region's `// STARTER:` lines say.
//! - `// STARTER: text`, inside a region or outside: starter-only text, emitted without the marker
//!   at the comment's indentation (guiding comments, the "Your task" paragraph, a placeholder
//!   field). Nothing else in the solution is starter-only.
//! - The module comment's first line `//! Exercise NN: … — reference solution.` loses the
//!   ` — reference solution` suffix.
//! - A `#[path = "../../../exercises/exerciseNN/src/given.rs"]` line is dropped: the solution
//!   takes the API the student is given (types, errors, given helpers) from the starter's
//!   `src/given.rs`, written once there and never generated, and the starter's `mod given;`
//!   finds the file beside it.
//!
//! Everything else (imports, helpers outside regions, doc comments) is copied. The result goes
//! through rustfmt, so a starter is formatted as `cargo fmt` would leave it.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BEGIN: &str = "// BEGIN SOLUTION";
const END: &str = "// END SOLUTION";
const STARTER: &str = "// STARTER:";
const SOLUTION_SUFFIX: &str = " — reference solution.";

/// A malformed marker, with the line it is on (1-based).
#[derive(Debug, PartialEq, Eq)]
pub struct MarkerError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// The starter's text for one solution file, before formatting.
pub fn strip(solution: &str) -> Result<String, MarkerError> {
    let mut out = String::with_capacity(solution.len());
    // The line a region opened at, while inside one.
    let mut open: Option<usize> = None;
    for (index, line) in solution.lines().enumerate() {
        let number = index + 1;
        let indent = &line[..line.len() - line.trim_start().len()];
        let text = line.trim_start();
        if let Some(rest) = text.strip_prefix(BEGIN) {
            if let Some(at) = open {
                return Err(MarkerError {
                    line: number,
                    problem: format!("BEGIN SOLUTION inside the region opened at line {at}"),
                });
            }
            if !rest.is_empty() && !rest.starts_with(' ') {
                return Err(MarkerError {
                    line: number,
                    problem: format!("unknown marker {text:?}"),
                });
            }
            open = Some(number);
            let message = rest.trim();
            if !message.is_empty() {
                out.push_str(&format!("{indent}todo!(\"{message}\")\n"));
            }
        } else if text.starts_with(END) {
            if open.take().is_none() {
                return Err(MarkerError {
                    line: number,
                    problem: "END SOLUTION without a BEGIN SOLUTION".into(),
                });
            }
        } else if let Some(rest) = text.strip_prefix(STARTER) {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            out.push_str(indent);
            out.push_str(rest);
            out.push('\n');
        } else if open.is_none() {
            if given_path(text) {
                continue;
            }
            match line.strip_suffix(SOLUTION_SUFFIX) {
                Some(head) if index == 0 && line.starts_with("//!") => {
                    out.push_str(head);
                    out.push_str(".\n");
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    match open {
        Some(at) => Err(MarkerError {
            line: at,
            problem: "BEGIN SOLUTION is never closed by END SOLUTION".into(),
        }),
        None => Ok(out),
    }
}

/// A `#[path = "…/exercises/…"]` attribute: the solution's way to a file of the starter's crate.
fn given_path(text: &str) -> bool {
    text.strip_prefix("#[path = \"")
        .and_then(|rest| rest.strip_suffix("\"]"))
        .is_some_and(|path| path.starts_with("../../../exercises/") && !path.contains('"'))
}

/// `strip` followed by rustfmt (edition 2021, the course's settings).
pub fn generate(solution: &str) -> Result<String, String> {
    let stripped = strip(solution).map_err(|e| e.to_string())?;
    rustfmt(&stripped)
}

fn rustfmt(source: &str) -> Result<String, String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run rustfmt (rustup component add rustfmt): {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = source.to_owned();
    // Write from a thread: rustfmt may start writing before it has read everything.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("rustfmt: {e}"))?;
    writer
        .join()
        .expect("the writer does not panic")
        .map_err(|e| format!("rustfmt: cannot write its input: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "rustfmt rejects the generated starter (is a region cut in the wrong place?):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("rustfmt: {e}"))
}

/// One generated file: where its starter lives, and the starter's text.
pub struct Generated {
    pub starter: PathBuf,
    pub text: String,
}

/// The starters of every exercise in the course at `root`, from `solutions/exerciseNN/src/**.rs`.
pub fn generate_all(root: &Path) -> Result<Vec<Generated>, String> {
    let mut generated = Vec::new();
    let solutions = root.join("solutions");
    let mut exercises: Vec<String> = fs::read_dir(&solutions)
        .map_err(|e| format!("cannot list {}: {e}", solutions.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("exercise"))
        .collect();
    exercises.sort();
    for exercise in exercises {
        let src = solutions.join(&exercise).join("src");
        for solution in rust_files(&src)? {
            let relative = solution.strip_prefix(&src).expect("found under src");
            let starter = root
                .join("exercises")
                .join(&exercise)
                .join("src")
                .join(relative);
            let source = fs::read_to_string(&solution)
                .map_err(|e| format!("cannot read {}: {e}", solution.display()))?;
            let text = generate(&source).map_err(|e| format!("{}: {e}", solution.display()))?;
            generated.push(Generated { starter, text });
        }
    }
    Ok(generated)
}

fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Writes every starter; returns the ones that changed.
pub fn write_all(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut changed = Vec::new();
    for g in generate_all(root)? {
        if fs::read_to_string(&g.starter).ok().as_deref() != Some(g.text.as_str()) {
            if let Some(parent) = g.starter.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            fs::write(&g.starter, &g.text)
                .map_err(|e| format!("cannot write {}: {e}", g.starter.display()))?;
            changed.push(g.starter);
        }
    }
    Ok(changed)
}

/// Every committed starter that differs from what its solution generates, with a short diff.
pub fn drifted(root: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut drifted = Vec::new();
    for g in generate_all(root)? {
        let committed = fs::read_to_string(&g.starter).unwrap_or_default();
        if committed != g.text {
            let relative = g.starter.strip_prefix(root).unwrap_or(&g.starter);
            drifted.push((g.starter.clone(), short_diff(&committed, &g.text, relative)));
        }
    }
    Ok(drifted)
}

/// A unified diff of at most 40 lines: enough to see what drifted.
fn short_diff(committed: &str, generated: &str, path: &Path) -> String {
    let diff = similar::TextDiff::from_lines(committed, generated);
    let text = diff
        .unified_diff()
        .context_radius(1)
        .header(
            &format!("{} (committed)", path.display()),
            &format!("{} (generated)", path.display()),
        )
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > 40 {
        format!(
            "{}\n… {} more lines",
            lines[..40].join("\n"),
            lines.len() - 40
        )
    } else {
        text.trim_end().to_owned()
    }
}

pub fn main(root: &Path) -> std::process::ExitCode {
    match write_all(root) {
        Ok(changed) => {
            for path in &changed {
                println!(
                    "wrote {}",
                    path.strip_prefix(root).unwrap_or(path).display()
                );
            }
            println!(
                "starters: {} regenerated, the others were up to date",
                changed.len()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask starters: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_region_becomes_its_todo_at_the_marker_indentation() {
        let solution = "fn f() -> u8 {\n    // BEGIN SOLUTION Task 1: add one\n    let x = 1;\n    x + 1\n    // END SOLUTION\n}\n";
        assert_eq!(
            strip(solution).unwrap(),
            "fn f() -> u8 {\n    todo!(\"Task 1: add one\")\n}\n"
        );
    }

    #[test]
    fn a_plain_region_disappears_and_starter_lines_take_its_place() {
        let solution = "struct S {\n    // BEGIN SOLUTION\n    // STARTER: // Change these fields as you like.\n    // STARTER: x: u8,\n    real: Vec<u8>,\n    // END SOLUTION\n}\n";
        assert_eq!(
            strip(solution).unwrap(),
            "struct S {\n    // Change these fields as you like.\n    x: u8,\n}\n"
        );
    }

    #[test]
    fn starter_lines_outside_regions_keep_their_relative_indentation() {
        let solution = "//! Exercise 01: pipes — reference solution.\n// STARTER: //!\n// STARTER: //! Your task: …\n// STARTER:\nfn g() {\n    // STARTER: if x {\n    // STARTER:     todo!(\"Task 2\")\n    // STARTER: }\n}\n";
        assert_eq!(
            strip(solution).unwrap(),
            "//! Exercise 01: pipes.\n//!\n//! Your task: …\n\nfn g() {\n    if x {\n        todo!(\"Task 2\")\n    }\n}\n"
        );
    }

    #[test]
    fn the_path_to_the_given_file_is_dropped_and_the_module_stays() {
        let solution = "#[path = \"../../../exercises/exercise03/src/given.rs\"]\nmod given;\npub use given::*;\n#[path = \"other.rs\"]\nmod other;\n";
        assert_eq!(
            strip(solution).unwrap(),
            "mod given;\npub use given::*;\n#[path = \"other.rs\"]\nmod other;\n"
        );
    }

    #[test]
    fn unbalanced_markers_are_errors_naming_the_line() {
        assert_eq!(
            strip("a\n// BEGIN SOLUTION\nb\n").unwrap_err().line,
            2,
            "never closed"
        );
        assert_eq!(strip("// END SOLUTION\n").unwrap_err().line, 1);
        let nested = strip("// BEGIN SOLUTION\n// BEGIN SOLUTION\n// END SOLUTION\n").unwrap_err();
        assert_eq!(nested.line, 2);
        assert!(nested.problem.contains("line 1"), "{}", nested.problem);
        assert!(strip("// BEGIN SOLUTIONS\n").is_err());
    }

    #[test]
    fn generated_text_is_rustfmt_formatted() {
        let solution = "fn f() {\n    // BEGIN SOLUTION Task 5: open the FIFO for writing without waiting (try_open_writer) and send each message\n    // END SOLUTION\n}\n";
        let starter = generate(solution).unwrap();
        assert!(
            starter.contains("todo!(\n        \"Task 5: open"),
            "{starter}"
        );
    }

    /// The committed starters are what their solutions generate (`cargo xtask verify` checks
    /// this too; here it fails fast, with the diff, in the tooling's tests).
    #[test]
    fn committed_starters_match_their_solutions() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let drifted = drifted(root).unwrap();
        let report: Vec<String> = drifted.iter().map(|(_, diff)| diff.clone()).collect();
        assert!(
            drifted.is_empty(),
            "run `cargo xtask starters`:\n{}",
            report.join("\n")
        );
    }
}
