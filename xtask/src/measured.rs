//! Measurements are never typed into the book's prose: a speed or a latency written by hand
//! disagrees with the next run of the benchmark (it already happened once). Numbers come from
//! the committed run, through the tables the benchmark generates into `book/src/bench/`; the
//! prose around them says what the numbers mean, not what they are.
//!
//! The check looks for a number followed by a unit of speed or time, or by `×`, in the English
//! chapters (outside `book/src/bench/`), the exercises' READMEs and hints, and every
//! translation's messages.

use std::fs;
use std::path::Path;

use walkdir::WalkDir;

/// The units that only a measurement has.
const UNITS: [&str; 8] = ["GB/s", "MB/s", "GiB/s", "MiB/s", "µs", "ns", "μs", "×"];

/// The typed measurements of `text`: (line number, the number with its unit).
pub fn typed(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for unit in UNITS {
            let mut from = 0;
            while let Some(at) = line[from..].find(unit).map(|i| i + from) {
                from = at + unit.len();
                // The unit must end a word (so "ns" in "returns" or "nsec" is not one)...
                let after = line[from..].chars().next();
                if unit.chars().all(|c| c.is_ascii_alphabetic())
                    && after.is_some_and(|c| c.is_alphanumeric())
                {
                    continue;
                }
                // ...and follow a number, with at most one space between (none for a ratio:
                // "5 × SIGUSR1" counts signals, "3.2×" compares speeds).
                let before = match unit {
                    "×" => &line[..at],
                    _ => line[..at].strip_suffix(' ').unwrap_or(&line[..at]),
                };
                let digits: String = before
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
                    .collect();
                let number: String = digits.chars().rev().collect();
                let starts_word = before[..before.len() - number.len()]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric() && c != '_');
                if number.chars().any(|c| c.is_ascii_digit()) && starts_word {
                    found.push((n + 1, format!("{number} {unit}")));
                }
            }
        }
    }
    found
}

/// Every typed measurement in the course's prose, one line each (`file:line: 3.2 GB/s`).
pub fn check(root: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    for dir in ["book/src", "exercises"] {
        for entry in WalkDir::new(root.join(dir)).into_iter().flatten() {
            let path = entry.path();
            let generated = path.starts_with(root.join("book/src/bench"));
            if !generated && path.extension().is_some_and(|e| e == "md") {
                files.push(path.to_owned());
            }
        }
    }
    for entry in WalkDir::new(root.join("book/po")).into_iter().flatten() {
        if entry.path().extension().is_some_and(|e| e == "po") {
            files.push(entry.path().to_owned());
        }
    }
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        let is_po = shown.ends_with(".po");
        for (line, what) in typed(&text) {
            // In a catalog only the translations count: the English is checked at its source.
            let source_line = text.lines().nth(line - 1).unwrap_or_default();
            if is_po && (source_line.starts_with("msgid") || source_line.starts_with("#")) {
                continue;
            }
            problems.push(format!("{shown}:{line}: {what}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "measurements typed into the prose (numbers come from the committed run: refer to \
             the tables in book/src/bench/, which `ipclab-bench --out book/src/bench` writes):\n  {}",
            problems.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::typed;

    #[test]
    fn a_number_with_a_unit_of_speed_or_time_is_found() {
        assert_eq!(
            typed("the ring moves 12.8 GB/s\nand a round trip takes 11µs, or 3×"),
            vec![
                (1, "12.8 GB/s".to_owned()),
                (2, "11 µs".to_owned()),
                (2, "3 ×".to_owned())
            ]
        );
    }

    #[test]
    fn words_and_arithmetic_are_not_measurements() {
        assert!(typed("it returns ns of nothing; 2 nsec; x86_64 ns").is_empty());
        assert!(typed("`CMSG_SPACE(sizeof(int) * n)`, a 2 MiB L2, GB/s of memcpy").is_empty());
        assert!(typed("v2× and 5 × SIGUSR1 while blocked").is_empty());
    }
}
