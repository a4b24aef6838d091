//! Code in the book must fit the page: a line of a code block longer than [`MAX_WIDTH`]
//! characters makes the reader scroll sideways, in the browser and in print.
//!
//! The check reads the Markdown sources, with `{{#include}}` directives expanded the way mdBook
//! expands them, so that a long line is reported where it can be fixed: in the chapter, or in the
//! included file (an exercise's README, a source file behind an anchor).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use walkdir::WalkDir;

/// The widest code line the book's page shows without scrolling (tabs count to the next multiple
/// of 8, as browsers render them).
pub const MAX_WIDTH: usize = 88;

/// mdBook gives up after this many nested includes; so do we.
const MAX_DEPTH: usize = 10;

/// One line of a chapter after includes are expanded, with the place it came from.
#[derive(Clone)]
struct Line {
    text: String,
    file: PathBuf,
    number: usize,
}

/// Checks every code block of every chapter under `src`; the error lists each line that is too
/// wide as `file:line: width`, with paths relative to `root`.
pub fn check(src: &Path, root: &Path) -> Result<(), String> {
    let mut chapters: Vec<PathBuf> = WalkDir::new(src)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| e.into_path())
        .collect();
    chapters.sort();
    let mut problems = Vec::new();
    let mut too_wide = BTreeSet::new();
    for chapter in &chapters {
        let lines = expand(chapter, 0, &mut problems);
        for (line, width) in wide_code_lines(&lines) {
            too_wide.insert((line.file.clone(), line.number, width));
        }
    }
    for (file, number, width) in too_wide {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        problems.push(format!(
            "{shown}:{number}: a code line of {width} characters (at most {MAX_WIDTH})"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) with code in the book:\n{}",
            problems.len(),
            problems.join("\n")
        ))
    }
}

/// The lines of `file`, with each line that is only an `{{#include …}}` replaced by what it
/// includes; an include that cannot be resolved becomes a problem and includes nothing.
fn expand(file: &Path, depth: usize, problems: &mut Vec<String>) -> Vec<Line> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", file.display()));
            return Vec::new();
        }
    };
    let mut lines = Vec::new();
    for (index, text) in text.lines().enumerate() {
        let here = Line {
            text: text.to_owned(),
            file: file.to_path_buf(),
            number: index + 1,
        };
        let Some(spec) = include_directive(text) else {
            lines.push(here);
            continue;
        };
        let place = format!("{}:{}: {{{{#include {spec}}}}}", file.display(), index + 1);
        if depth >= MAX_DEPTH {
            problems.push(format!(
                "{place}: includes nested more than {MAX_DEPTH} deep"
            ));
            continue;
        }
        let (path, selection) = spec.split_once(':').unwrap_or((spec, ""));
        let included = file.parent().unwrap_or(Path::new(".")).join(path.trim());
        if !included.is_file() {
            problems.push(format!("{place}: no file {}", included.display()));
            continue;
        }
        let all = expand(&included, depth + 1, problems);
        match select(all, selection) {
            Ok(chosen) => lines.extend(chosen),
            Err(e) => problems.push(format!("{place}: {e}")),
        }
    }
    lines
}

/// `path[:selection]` of a line that consists of one `{{#include …}}` directive.
fn include_directive(line: &str) -> Option<&str> {
    let inner = line
        .trim()
        .strip_prefix("{{#include ")?
        .strip_suffix("}}")?
        .trim();
    (!inner.is_empty()).then_some(inner)
}

/// mdBook's selections: nothing (the whole file), `N`, `N:`, `:M`, `N:M` (lines, from 1), or an
/// anchor name (the lines between `ANCHOR: name` and `ANCHOR_END: name`, without any line that
/// marks an anchor).
fn select(lines: Vec<Line>, selection: &str) -> Result<Vec<Line>, String> {
    let selection = selection.trim();
    if selection.is_empty() {
        return Ok(lines);
    }
    let number = |s: &str| -> Result<Option<usize>, String> {
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| format!("bad line number {s:?}"))
        }
    };
    let first = selection.split(':').next().unwrap_or("");
    if first.is_empty() || first.chars().all(|c| c.is_ascii_digit()) {
        let (start, end) = match selection.split_once(':') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(selection)?;
                (n, n)
            }
        };
        let start = start.unwrap_or(1).max(1);
        let end = end.unwrap_or(lines.len()).min(lines.len());
        return Ok(lines
            .into_iter()
            .skip(start - 1)
            .take((end + 1).saturating_sub(start))
            .collect());
    }
    let anchor = selection;
    let is_mark = |text: &str, kind: &str| {
        text.split_once(kind)
            .map(|(_, rest)| rest.trim_start())
            .and_then(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                    .next()
            })
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
    };
    let mut inside = false;
    let mut found = false;
    let mut chosen = Vec::new();
    for line in lines {
        if let Some(name) = is_mark(&line.text, "ANCHOR_END:") {
            if name == anchor {
                inside = false;
            }
            continue;
        }
        if let Some(name) = is_mark(&line.text, "ANCHOR:") {
            if name == anchor {
                inside = true;
                found = true;
            }
            continue;
        }
        if inside {
            chosen.push(line);
        }
    }
    if found {
        Ok(chosen)
    } else {
        Err(format!("no anchor {anchor:?}"))
    }
}

/// The lines of code blocks (fenced or indented, also in lists and quotes) wider than
/// [`MAX_WIDTH`], with their width.
fn wide_code_lines(lines: &[Line]) -> Vec<(&Line, usize)> {
    let mut text = String::new();
    let mut starts = Vec::with_capacity(lines.len());
    for line in lines {
        starts.push(text.len());
        text.push_str(&line.text);
        text.push('\n');
    }
    let line_at = |offset: usize| starts.partition_point(|&s| s <= offset).saturating_sub(1);
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    let mut wide = Vec::new();
    let mut in_code = false;
    for (event, range) in Parser::new_ext(&text, options).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(code) if in_code => {
                let verbatim = text.get(range.clone()) == Some(code.as_ref());
                let mut offset = 0;
                for (i, piece) in code.split_inclusive('\n').enumerate() {
                    let index = if verbatim {
                        line_at(range.start + offset)
                    } else {
                        line_at(range.start) + i
                    };
                    offset += piece.len();
                    let width = display_width(piece.trim_end_matches(['\n', '\r']));
                    if width > MAX_WIDTH {
                        if let Some(line) = lines.get(index) {
                            wide.push((line, width));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    wide
}

/// Characters on screen, with each tab advancing to the next multiple of 8.
fn display_width(line: &str) -> usize {
    line.chars().fold(0, |column, c| {
        if c == '\t' {
            column + 8 - column % 8
        } else {
            column + 1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn short_code_and_long_prose_pass() {
        let dir = tempfile::tempdir().unwrap();
        let long_prose = "word ".repeat(40);
        write(
            dir.path(),
            "src/a.md",
            &format!("# A\n\n{long_prose}\n\n```sh\nls -l\n```\n\n`{long_prose}`\n"),
        );
        assert_eq!(check(&dir.path().join("src"), dir.path()), Ok(()));
    }

    #[test]
    fn a_long_line_is_reported_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(MAX_WIDTH + 1);
        let fits = "y".repeat(MAX_WIDTH);
        write(
            dir.path(),
            "src/a.md",
            &format!("# A\n\n```text\n{fits}\n{long}\n```\n\n> ```sh\n> {long}\n> ```\n\n- item\n\n  ```\n  {long}\n  ```\n"),
        );
        let err = check(&dir.path().join("src"), dir.path()).unwrap_err();
        for expected in [
            "src/a.md:5: a code line of 89 characters (at most 88)",
            "src/a.md:9: a code line of 89 characters",
            "src/a.md:15: a code line of 89 characters",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        assert!(err.starts_with("3 problem(s)"), "{err}");
    }

    #[test]
    fn tabs_count_to_the_next_stop() {
        assert_eq!(display_width("a\tb"), 9);
        assert_eq!(display_width("\t\t"), 16);
    }

    #[test]
    fn included_lines_are_reported_where_they_live() {
        let dir = tempfile::tempdir().unwrap();
        let long = "z".repeat(MAX_WIDTH + 5);
        write(
            dir.path(),
            "code/lib.rs",
            &format!("fn a() {{}}\n// ANCHOR: shown\nfn b() {{}}\n// {long}\n// ANCHOR_END: shown\n// {long}\n"),
        );
        write(
            dir.path(),
            "src/b.md",
            "# B\n\n```rust\n{{#include ../code/lib.rs:shown}}\n```\n\n```rust\n{{#include ../code/lib.rs:1:2}}\n```\n",
        );
        let err = check(&dir.path().join("src"), dir.path()).unwrap_err();
        assert!(
            err.contains("code/lib.rs:4: a code line of 96 characters"),
            "{err}"
        );
        assert!(!err.contains("lib.rs:6"), "line 6 is not shown:\n{err}");
    }

    #[test]
    fn a_missing_include_or_anchor_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "code/lib.rs", "fn a() {}\n");
        write(
            dir.path(),
            "src/c.md",
            "{{#include ../code/gone.rs}}\n\n{{#include ../code/lib.rs:nothere}}\n",
        );
        let err = check(&dir.path().join("src"), dir.path()).unwrap_err();
        assert!(
            err.contains("c.md:1: {{#include ../code/gone.rs}}: no file"),
            "{err}"
        );
        assert!(
            err.contains("c.md:3: {{#include ../code/lib.rs:nothere}}: no anchor \"nothere\""),
            "{err}"
        );
    }
}
