//! What the suite's source says about its tests: the order they are written in (Exercism wants
//! tests in file order; libtest reports them in the order they finish) and each test's code.

/// One test function of a suite, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTest {
    /// The function's name, e.g. `task2_parent_reads_whole_message_then_eof`.
    pub name: String,
    /// Byte offset of the function in the file: orders tests as written.
    pub offset: usize,
    /// The function with its attributes (`#[rstest]`, `#[case::…]`) and doc comments.
    pub code: String,
}

/// The test functions of a suite's `main.rs`, in file order. Only top-level `fn` items preceded
/// by a `#[test]` or `#[rstest]` attribute count; the parse is shallow (no macro expansion), so
/// a test it misses is still graded, just sorted last and shown without code.
pub fn tests_in(source: &str) -> Vec<SourceTest> {
    let mut found = Vec::new();
    // The start of the attribute block (attributes, doc comments, and their continuation lines)
    // above the current line, and whether it holds `#[test]` or `#[rstest]`.
    let mut block: Option<(usize, bool)> = None;
    for (offset, line) in line_offsets(source) {
        if let Some(name) = fn_name(line) {
            if let Some((start, true)) = block {
                let end = block_end(source, offset).unwrap_or(source.len());
                found.push(SourceTest {
                    name: name.to_owned(),
                    offset,
                    code: source[start..end].trim_end().to_owned(),
                });
            }
            block = None;
        } else if line.starts_with("#[") || line.starts_with("///") {
            let is_test = line.starts_with("#[test]") || line.starts_with("#[rstest");
            block = Some(match block {
                Some((start, t)) => (start, t || is_test),
                None => (offset, is_test),
            });
        } else {
            // Indented lines and closing brackets continue a multi-line attribute.
            let continues = line.starts_with([' ', '\t', ')', ']']) && !line.trim().is_empty();
            if !continues {
                block = None;
            }
        }
    }
    found
}

/// Sort key of a libtest name: the position of its function, then the rstest case number.
pub fn order_key(tests: &[SourceTest], name: &str) -> (usize, u32, String) {
    let (base, case) = match name.split_once("::") {
        Some((base, case)) => (base, case_number(case)),
        None => (name, 0),
    };
    let offset = tests
        .iter()
        .find(|t| t.name == base)
        .map_or(usize::MAX, |t| t.offset);
    (offset, case, name.to_owned())
}

/// The code of the function behind a libtest name (`base::case_3_x` → `base`).
pub fn code_of<'a>(tests: &'a [SourceTest], name: &str) -> Option<&'a str> {
    let base = name.split_once("::").map_or(name, |(base, _)| base);
    tests
        .iter()
        .find(|t| t.name == base)
        .map(|t| t.code.as_str())
}

/// `case_3_pipe_buf` → 3 (rstest numbers cases from 1, zero-padded when there are ten or more).
fn case_number(case: &str) -> u32 {
    case.strip_prefix("case_")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

fn line_offsets(source: &str) -> Vec<(usize, &str)> {
    let mut offset = 0;
    source
        .split_inclusive('\n')
        .map(|line| {
            let here = offset;
            offset += line.len();
            (here, line.trim_end_matches('\n'))
        })
        .collect()
}

/// `fn name(` or `async fn name(` at the start of a line (top level only: no indentation).
fn fn_name(line: &str) -> Option<&str> {
    let rest = line
        .strip_prefix("fn ")
        .or_else(|| line.strip_prefix("async fn "))?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// The offset just past the `}` that closes the first `{` at or after `from`. Skips string and
/// character literals and comments, so that braces inside them do not count.
fn block_end(source: &str, from: usize) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = from;
    let mut depth = 0usize;
    let mut opened = false;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'r' if matches!(bytes.get(i + 1), Some(b'"' | b'#'))
                && !bytes
                    .get(i.wrapping_sub(1))
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') =>
            {
                // A raw string: r"…" or r#"…"#.
                let mut hashes = 0;
                i += 1;
                while bytes.get(i) == Some(&b'#') {
                    hashes += 1;
                    i += 1;
                }
                if bytes.get(i) != Some(&b'"') {
                    continue;
                }
                i += 1;
                loop {
                    if i >= bytes.len() {
                        return None;
                    }
                    if bytes[i] == b'"'
                        && bytes[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&b| b == b'#')
                            .count()
                            == hashes
                    {
                        i += hashes;
                        break;
                    }
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            // A character literal ('{', '\'', '\u{7b}'), not a lifetime ('a).
            b'\'' => {
                if bytes.get(i + 1) == Some(&b'\\') {
                    if let Some(close) = source[i + 2..].find('\'') {
                        i += 2 + close;
                    }
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 2;
                }
            }
            b'{' => {
                depth += 1;
                opened = true;
            }
            b'}' if opened => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r##"use x::y;

const HINT: &str = "a { brace in a string";

/// Second in the file.
#[test]
fn task1_b() {
    let c = '}';
    let s = "}}";
    let r = r#"{"#;
    // } in a comment
    assert!(true, "{}", 1);
}

fn helper() {}

#[rstest]
#[case::empty(0)]
#[case::big(
    1 << 20,
)]
fn task1_a(#[case] n: usize) {
    let _ = n;
}
"##;

    #[test]
    fn test_functions_are_found_in_file_order_with_their_code() {
        let tests = tests_in(SUITE);
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["task1_b", "task1_a"]);
        assert!(tests[0]
            .code
            .starts_with("/// Second in the file.\n#[test]\nfn task1_b()"));
        assert!(
            tests[0].code.ends_with("assert!(true, \"{}\", 1);\n}"),
            "{}",
            tests[0].code
        );
        assert!(
            tests[1].code.starts_with("#[rstest]\n#[case::empty(0)]"),
            "{}",
            tests[1].code
        );
        assert!(tests[1].code.ends_with("let _ = n;\n}"));
    }

    #[test]
    fn libtest_names_sort_by_function_then_case_number() {
        let tests = tests_in(SUITE);
        let mut names = vec![
            "task1_a::case_2_big",
            "unknown_test",
            "task1_a::case_10_x",
            "task1_a::case_1_empty",
            "task1_b",
        ];
        names.sort_by_key(|n| order_key(&tests, n));
        assert_eq!(
            names,
            [
                "task1_b",
                "task1_a::case_1_empty",
                "task1_a::case_2_big",
                "task1_a::case_10_x",
                "unknown_test"
            ]
        );
        assert_eq!(
            code_of(&tests, "task1_a::case_1_empty"),
            Some(tests[1].code.as_str())
        );
        assert_eq!(code_of(&tests, "nope"), None);
    }
}
