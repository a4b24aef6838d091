//! Graded snapshots: output compared, in the judge, with a reviewed `.snap` file.
//!
//! Some tests grade output that is easiest to read whole (a shell's transcript, a signal table):
//! the expected text lives in `tests/exerciseNN/snapshots/<module>__<name>.snap`, in `insta`'s
//! format (a YAML header between `---` lines, then the text), reviewed by a maintainer.
//! [`assert_snapshot!`](crate::assert_snapshot) and
//! [`assert_debug_snapshot!`](crate::assert_debug_snapshot) compare a value with it, in the
//! judging closure (libtest's process, with the value the body returned), and differ from
//! `insta`'s own macros in what a failure does:
//!
//! * the panic message itself carries the whole verdict: a sentence that names the first
//!   difference, then a line diff (`-` expected, `+` actual, with line numbers), so the record
//!   the grader keeps and the screen `ipclab` shows are readable, not an empty diff;
//! * nothing is written into `tests/`, and nothing suggests accepting the new output: a graded
//!   snapshot is part of the specification, a mismatch is a failing test like any other;
//! * no environment variable makes a mismatch pass (`INSTA_FORCE_PASS`, `INSTA_UPDATE` and `CI`
//!   are not read).
//!
//! Maintainers change a snapshot on purpose: with `IPCLAB_PROPOSE_SNAPSHOTS=1` in the
//! environment, a mismatch (or a missing `.snap`) also writes the actual text as
//! `<name>.snap.new` beside it, which `cargo insta review` shows and can accept. The test still
//! fails. `CONTRIBUTING.md` describes the routine.
//!
//! Values are compared as `insta` compares file snapshots: trailing white space at the end of
//! the text is ignored and `\r\n` counts as `\n`. Filters (`filters = [(regex, replacement)]`)
//! are applied to the actual text first, as `insta`'s `filters` setting does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The environment variable that makes a mismatch also write `<name>.snap.new` for review.
pub const PROPOSE_VAR: &str = "IPCLAB_PROPOSE_SNAPSHOTS";

/// Where an assertion was written (filled in by the macros).
#[doc(hidden)]
pub struct Site {
    pub manifest_dir: &'static str,
    pub file: &'static str,
    pub line: u32,
    pub module: &'static str,
    pub expression: &'static str,
}

/// Compares the text of a `Display` value with the reviewed snapshot `name`; panics with the
/// difference. Filters, if given, are `(regex, replacement)` pairs applied to the value first.
///
/// ```ignore
/// ipclab_support::assert_snapshot!("task2_the_shell_runs_a_script", run.transcript);
/// ipclab_support::assert_snapshot!(name, transcript, filters = [(r"ready \d+", "ready [pid]")]);
/// ```
#[macro_export]
macro_rules! assert_snapshot {
    ($name:expr, $value:expr $(, filters = [$(($re:expr, $with:expr)),* $(,)?])? $(,)?) => {
        $crate::snapshot::assert_text(
            &$crate::__snapshot_site!($value),
            ::std::convert::AsRef::<str>::as_ref(&$name),
            &::std::format!("{}", $value),
            &[$($(($re, $with)),*)?],
        )
    };
}

/// Like [`assert_snapshot!`](crate::assert_snapshot), for a `Debug` value, pretty-printed
/// (`{:#?}`, as `insta::assert_debug_snapshot!`).
#[macro_export]
macro_rules! assert_debug_snapshot {
    ($name:expr, $value:expr $(, filters = [$(($re:expr, $with:expr)),* $(,)?])? $(,)?) => {
        $crate::snapshot::assert_text(
            &$crate::__snapshot_site!($value),
            ::std::convert::AsRef::<str>::as_ref(&$name),
            &::std::format!("{:#?}", $value),
            &[$($(($re, $with)),*)?],
        )
    };
}

/// Where a snapshot assertion stands, for both macros. Public for them only.
#[doc(hidden)]
#[macro_export]
macro_rules! __snapshot_site {
    ($value:expr) => {
        $crate::snapshot::Site {
            manifest_dir: ::std::env!("CARGO_MANIFEST_DIR"),
            file: ::std::file!(),
            line: ::std::line!(),
            module: ::std::module_path!(),
            expression: ::std::stringify!($value),
        }
    };
}

/// What the macros call. Public for them only.
#[doc(hidden)]
#[track_caller]
pub fn assert_text(site: &Site, name: &str, actual: &str, filters: &[(&str, &str)]) {
    let actual = filter(actual, filters);
    let (root, dir) = snapshot_dir(site);
    let file_name = format!("{}__{}.snap", site.module.replace("::", "__"), name);
    let path = dir.join(&file_name);
    let shown = lexical(path.strip_prefix(&root).unwrap_or(&path));
    let expected = match insta::Snapshot::from_file(&path) {
        Ok(snapshot) => match snapshot.as_text() {
            Some(text) => text.to_string(),
            None => panic!(
                "the graded snapshot {} is not a text snapshot",
                shown.display()
            ),
        },
        Err(e) => {
            let proposed = propose(site, &path, &actual);
            panic!(
                "the graded snapshot `{name}` could not be read ({}: {e}); it belongs to the \
                 suite (restore it from the course's repository){proposed}",
                shown.display()
            );
        }
    };
    let actual = normalize(&actual);
    if expected == actual {
        return;
    }
    let proposed = propose(site, &path, &actual);
    panic!(
        "{}{proposed}",
        difference(name, &shown.display().to_string(), &expected, &actual)
    );
}

/// `path` with `dir/..` pairs taken out, as the student reads it (`tests/exercise09/…`, not
/// `exercises/exercise09/../../tests/exercise09/…`).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for part in path.components() {
        match (part, out.last()) {
            (Component::CurDir, _) => {}
            (Component::ParentDir, Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out.iter().collect()
}

/// Applies `(regex, replacement)` filters in order, as `insta`'s `filters` setting does.
fn filter(text: &str, filters: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (re, with) in filters {
        let re =
            regex::Regex::new(re).unwrap_or_else(|e| panic!("invalid snapshot filter {re:?}: {e}"));
        text = re.replace_all(&text, *with).into_owned();
    }
    text
}

/// `insta`'s normalisation of file snapshots: trailing white space of the whole text is
/// ignored, `\r\n` is `\n`.
fn normalize(text: &str) -> String {
    text.trim_end().replace("\r\n", "\n")
}

/// The workspace root the suite was compiled in (where `file!()` is relative to) and the
/// suite's `snapshots/` folder, found from the assertion's site.
fn snapshot_dir(site: &Site) -> (PathBuf, PathBuf) {
    let manifest = Path::new(site.manifest_dir);
    let file = Path::new(site.file);
    if file.is_absolute() {
        let dir = file.parent().unwrap_or(file).join("snapshots");
        return (PathBuf::from("/"), dir);
    }
    for base in manifest.ancestors() {
        let source = base.join(file);
        if source.is_file() {
            let dir = source.parent().unwrap_or(base).join("snapshots");
            return (base.to_path_buf(), dir);
        }
    }
    panic!(
        "cannot find the suite's source {} from {} to locate its snapshots",
        site.file, site.manifest_dir
    );
}

/// With [`PROPOSE_VAR`] set, writes `actual` as `<path>.new` in `insta`'s format, for
/// `cargo insta review`, and returns a sentence saying so; otherwise writes nothing.
fn propose(site: &Site, path: &Path, actual: &str) -> String {
    if std::env::var_os(PROPOSE_VAR).is_none_or(|v| v.is_empty() || v == "0") {
        return String::new();
    }
    let new = path.with_extension("snap.new");
    let header = format!(
        "---\nsource: {}\nassertion_line: {}\nexpression: {}\n---\n",
        serde_json::Value::from(site.file),
        site.line,
        serde_json::Value::from(site.expression),
    );
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&new, format!("{header}{}\n", normalize(actual))));
    match written {
        Ok(()) => format!(
            "\n({PROPOSE_VAR} is set: the actual text was written to {} for `cargo insta review`)",
            lexical(&new).display()
        ),
        Err(e) => format!(
            "\n({PROPOSE_VAR} is set, but {} could not be written: {e})",
            lexical(&new).display()
        ),
    }
}

/// The most lines of diff a message shows.
const MAX_DIFF_LINES: usize = 120;

/// The failure message: a sentence that names the first difference, then a line diff with
/// three lines of context, `-` for the snapshot's lines and `+` for the actual ones.
pub fn difference(name: &str, shown: &str, expected: &str, actual: &str) -> String {
    use similar::{ChangeTag, TextDiff};
    let expected_lines: Vec<&str> = expected.split('\n').collect();
    let actual_lines: Vec<&str> = actual.split('\n').collect();
    let diff = TextDiff::from_slices(&expected_lines, &actual_lines);
    let mut message = format!(
        "the output differs from the reviewed snapshot `{name}`: {}",
        first_difference(&diff, &expected_lines, &actual_lines, actual)
    );
    let _ = write!(
        message,
        "\n\n  - expected (the graded snapshot, {shown})\n  + actual (what the code under test \
         produced)\n"
    );
    let mut shown_lines = 0;
    let mut hidden = 0;
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            message.push_str("  ...\n");
        }
        for op in group {
            for change in diff.iter_changes(op) {
                if shown_lines >= MAX_DIFF_LINES {
                    hidden += 1;
                    continue;
                }
                shown_lines += 1;
                let (sign, number) = match change.tag() {
                    ChangeTag::Delete => ('-', change.old_index()),
                    ChangeTag::Insert => ('+', change.new_index()),
                    ChangeTag::Equal => (' ', change.new_index()),
                };
                let number = number.map_or(String::new(), |n| (n + 1).to_string());
                let _ = writeln!(message, "{sign}{number:>5} | {}", change.value());
            }
        }
    }
    if hidden > 0 {
        let _ = writeln!(message, "  ... and {hidden} more lines of diff");
    }
    message.push_str(
        "\nThe snapshot is part of the graded suite and stays as it is: change the code until \
         its output matches it.",
    );
    message
}

/// One sentence about the first place where `actual` leaves `expected`.
fn first_difference(
    diff: &similar::TextDiff<'_, '_, '_, str>,
    expected_lines: &[&str],
    actual_lines: &[&str],
    actual: &str,
) -> String {
    use similar::DiffOp;
    if actual.is_empty() {
        return format!(
            "the output is empty, the snapshot has {} lines",
            expected_lines.len()
        );
    }
    let changed: usize = diff
        .ops()
        .iter()
        .map(|op| match *op {
            DiffOp::Equal { .. } => 0,
            DiffOp::Delete { old_len, .. } => old_len,
            DiffOp::Insert { new_len, .. } => new_len,
            DiffOp::Replace {
                old_len, new_len, ..
            } => old_len.max(new_len),
        })
        .sum();
    let count = if changed == 1 {
        "1 line differs".to_owned()
    } else {
        format!("{changed} lines differ")
    };
    let first = diff
        .ops()
        .iter()
        .find(|op| !matches!(op, DiffOp::Equal { .. }));
    let sentence = match first {
        Some(&DiffOp::Replace {
            old_index,
            new_index,
            ..
        }) => {
            let (want, got) = (expected_lines[old_index], actual_lines[new_index]);
            let how = if want.split_whitespace().eq(got.split_whitespace()) {
                " (only the white space differs)"
            } else {
                ""
            };
            format!(
                "line {} is {got:?} where the snapshot has {want:?}{how}",
                new_index + 1
            )
        }
        Some(&DiffOp::Delete {
            old_index,
            new_index,
            old_len,
        }) => {
            let want = expected_lines[old_index];
            if new_index >= actual_lines.len() {
                format!(
                    "the output ends after line {new_index}; the snapshot goes on with {want:?} \
                     ({old_len} lines missing)"
                )
            } else {
                format!(
                    "line {} of the snapshot, {want:?}, is missing before line {} {:?}",
                    old_index + 1,
                    new_index + 1,
                    actual_lines[new_index]
                )
            }
        }
        Some(&DiffOp::Insert {
            old_index,
            new_index,
            new_len,
        }) => {
            let got = actual_lines[new_index];
            if old_index >= expected_lines.len() {
                format!(
                    "the output goes on after the snapshot's last line with {got:?} ({new_len} \
                     extra lines)"
                )
            } else {
                format!(
                    "line {} is {got:?}, which the snapshot does not have ({new_len} extra lines)",
                    new_index + 1
                )
            }
        }
        _ => "the texts differ".to_owned(),
    };
    format!("{sentence}; {count}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line_is_named_with_both_versions() {
        let message = difference("s", "x.snap", "a\nb\nc", "a\nB\nc");
        assert!(
            message.contains("line 2 is \"B\" where the snapshot has \"b\"; 1 line differs"),
            "{message}"
        );
        assert!(message.contains("-    2 | b\n+    2 | B\n"), "{message}");
        assert!(!message.contains("insta review"), "{message}");
    }

    #[test]
    fn white_space_differences_are_made_visible() {
        let message = difference("s", "x.snap", "a\tb", "a b");
        assert!(
            message.contains("\"a b\" where the snapshot has \"a\\tb\""),
            "{message}"
        );
        assert!(
            message.contains("only the white space differs"),
            "{message}"
        );
    }

    #[test]
    fn missing_and_extra_lines_are_named() {
        let message = difference("s", "x.snap", "a\nb\nc", "a");
        assert!(
            message.contains("the output ends after line 1"),
            "{message}"
        );
        let message = difference("s", "x.snap", "a", "a\nb");
        assert!(
            message.contains("goes on after the snapshot's last line with \"b\""),
            "{message}"
        );
        let message = difference("s", "x.snap", "a", "");
        assert!(message.contains("the output is empty"), "{message}");
    }

    #[test]
    fn paths_are_shown_without_detours() {
        assert_eq!(
            lexical(Path::new(
                "exercises/exercise09/../../tests/exercise09/snapshots/a.snap"
            )),
            Path::new("tests/exercise09/snapshots/a.snap")
        );
        assert_eq!(
            lexical(Path::new("exercise09/../../tests/x.snap")),
            Path::new("../tests/x.snap")
        );
    }

    #[test]
    fn filters_apply_in_order() {
        assert_eq!(
            filter("ready 123\nready 4", &[(r"ready \d+", "ready [pid]")]),
            "ready [pid]\nready [pid]"
        );
    }

    #[test]
    fn a_proposal_is_a_snapshot_insta_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m__n.snap");
        std::env::set_var(PROPOSE_VAR, "1");
        let site = Site {
            manifest_dir: "/nowhere",
            file: "ex/../../tests/ex/main.rs",
            line: 7,
            module: "m",
            expression: "String::from_utf8_lossy(&out.stdout)",
        };
        let said = propose(&site, &path, "one\n\ttwo: \"x\"\n\n");
        std::env::remove_var(PROPOSE_VAR);
        assert!(said.contains("cargo insta review"), "{said}");
        let read = insta::Snapshot::from_file(&path.with_extension("snap.new")).unwrap();
        assert_eq!(read.as_text().unwrap().to_string(), "one\n\ttwo: \"x\"");
        assert_eq!(
            read.metadata().expression(),
            Some("String::from_utf8_lossy(&out.stdout)")
        );
        assert_eq!(read.metadata().assertion_line(), Some(7));
    }
}
