//! Where the course's pieces live. Every exercise has the same shape:
//!
//! ```text
//! exercises/exerciseNN/   the starter the student edits (package `exerciseNN`)
//!     README.md           the task statement: `# Exercise NN: title`, then `## Task N: …`
//!     hints.md            progressive hints: `## Task N: …`, then a numbered list
//! solutions/exerciseNN/   the reference solution (same package name, second workspace)
//! tests/exerciseNN/       the graded suite, compiled into both as test target `exerciseNN`
//! book/src/…              the chapter, linked from the README
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The root of a checkout of the course: the folder with `exercises/` and `tests/support/`.
#[derive(Debug, Clone)]
pub struct Course {
    pub root: PathBuf,
}

/// Which implementation a suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// `exercises/exerciseNN`: the student's work (untouched: the starter).
    Exercise,
    /// `solutions/exerciseNN`: the reference solution.
    Solution,
}

impl Course {
    /// Finds the course root at or above `start`.
    pub fn find(start: &Path) -> io::Result<Course> {
        start
            .ancestors()
            .find(|dir| dir.join("exercises").is_dir() && dir.join("tests/support").is_dir())
            .map(|root| Course { root: root.to_path_buf() })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{} is not inside the ipclab course (no exercises/ and tests/support/ above it); \
                         cd into your clone of the course",
                        start.display()
                    ),
                )
            })
    }

    /// The exercise names present (`exercise01`, …), in course order.
    pub fn exercises(&self) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = fs::read_dir(self.root.join("exercises"))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("Cargo.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_exercise_name(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The manifest of the workspace that holds `implementation`.
    pub fn manifest(&self, implementation: Implementation) -> PathBuf {
        match implementation {
            Implementation::Exercise => self.root.join("Cargo.toml"),
            Implementation::Solution => self.root.join("solutions/Cargo.toml"),
        }
    }

    pub fn exercise_dir(&self, name: &str, implementation: Implementation) -> PathBuf {
        let top = match implementation {
            Implementation::Exercise => "exercises",
            Implementation::Solution => "solutions",
        };
        self.root.join(top).join(name)
    }
}

/// `exercise` followed by exactly two digits.
pub fn is_exercise_name(name: &str) -> bool {
    name.strip_prefix("exercise")
        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Accepts `3`, `03` or `exercise03` and gives `exercise03`.
pub fn normalize_exercise(arg: &str) -> Option<String> {
    let digits = arg.strip_prefix("exercise").unwrap_or(arg);
    let n: u32 = digits.parse().ok()?;
    (1..=99).contains(&n).then(|| format!("exercise{n:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exercise_names_normalize() {
        assert_eq!(normalize_exercise("3").as_deref(), Some("exercise03"));
        assert_eq!(normalize_exercise("03").as_deref(), Some("exercise03"));
        assert_eq!(
            normalize_exercise("exercise12").as_deref(),
            Some("exercise12")
        );
        assert_eq!(normalize_exercise("0"), None);
        assert_eq!(normalize_exercise("pipes"), None);
        assert!(is_exercise_name("exercise01"));
        assert!(!is_exercise_name("exercise1"));
    }
}
