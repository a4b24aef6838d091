//! What an exercise says about itself: its title and tasks (from `README.md`), its chapter (the
//! README's "Read first" link), and its hints (from `hints.md`).
//!
//! Exercises are written in parallel and may be half-done at any moment, so every piece is
//! optional: an exercise without a README still has the description of its package.

use std::fs;
use std::path::PathBuf;

use crate::course::{Course, Implementation};

/// One task of an exercise: `## Task N: title`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub number: u32,
    pub title: String,
}

/// The chapter a README asks to read first: `Read first: [Pipes](../../book/src/pipes.md)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chapter {
    pub title: String,
    /// Relative to the course root, e.g. `book/src/pipes.md`.
    pub path: PathBuf,
}

/// What is known about one exercise without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExerciseInfo {
    /// `exercise01`.
    pub name: String,
    /// `1`.
    pub number: u32,
    /// The mechanism: the README's title, else the package description, else "(no title yet)".
    pub title: String,
    pub tasks: Vec<Task>,
    pub chapter: Option<Chapter>,
}

impl ExerciseInfo {
    /// Reads `exercises/<name>/README.md` and `Cargo.toml`; never fails (missing parts are `None`
    /// or empty).
    pub fn load(course: &Course, name: &str) -> ExerciseInfo {
        let dir = course.exercise_dir(name, Implementation::Exercise);
        let number = name
            .strip_prefix("exercise")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let readme = fs::read_to_string(dir.join("README.md")).unwrap_or_default();
        let title = readme_title(&readme)
            .or_else(|| {
                fs::read_to_string(dir.join("Cargo.toml"))
                    .ok()
                    .and_then(|toml| package_description(&toml))
            })
            .unwrap_or_else(|| "(no title yet)".to_owned());
        ExerciseInfo {
            name: name.to_owned(),
            number,
            title,
            tasks: tasks(&readme),
            chapter: chapter(&readme),
        }
    }

    /// The task's title, if the README names it.
    pub fn task_title(&self, number: u32) -> Option<&str> {
        self.tasks
            .iter()
            .find(|t| t.number == number)
            .map(|t| t.title.as_str())
    }
}

/// `# Exercise 01: fork and anonymous pipes` gives `fork and anonymous pipes`.
pub fn readme_title(readme: &str) -> Option<String> {
    let first = readme.lines().find(|l| !l.trim().is_empty())?;
    let rest = first.strip_prefix("# Exercise ")?;
    let (_, title) = rest.split_once(':')?;
    let title = title.trim();
    (!title.is_empty()).then(|| title.to_owned())
}

/// The `## Task N: title` headings, in order.
pub fn tasks(markdown: &str) -> Vec<Task> {
    markdown.lines().filter_map(task_heading).collect()
}

/// `## Task 3: a round trip` gives task 3.
fn task_heading(line: &str) -> Option<Task> {
    let rest = line.strip_prefix("## Task ")?;
    let (number, title) = rest.split_once(':')?;
    Some(Task {
        number: number.trim().parse().ok()?,
        title: title.trim().to_owned(),
    })
}

/// The README's `Read first: [Title](../../book/src/x.md)` link, as a path from the course root.
pub fn chapter(readme: &str) -> Option<Chapter> {
    let at = readme.find("Read first:")?;
    let rest = &readme[at + "Read first:".len()..];
    let open = rest.find('[')?;
    let close = rest[open..].find("](")? + open;
    let title = rest[open + 1..close].trim();
    let target_start = close + 2;
    let target_end = rest[target_start..].find(')')? + target_start;
    let target = rest[target_start..target_end].trim();
    // The link is relative to `exercises/exerciseNN/`.
    let path = target.strip_prefix("../../").unwrap_or(target);
    Some(Chapter {
        title: title.to_owned(),
        path: PathBuf::from(path),
    })
}

/// `description = "…"` in a package manifest (the simple form the course uses).
pub fn package_description(toml: &str) -> Option<String> {
    toml.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "description" {
            return None;
        }
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The hints of one task, from nudge to concrete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskHints {
    pub task: Task,
    pub hints: Vec<String>,
}

/// Reads `exercises/<name>/hints.md`: `## Task N: title` headings, each followed by a numbered
/// list. A list item may continue on the following (indented or plain) lines.
pub fn hints(course: &Course, name: &str) -> Option<Vec<TaskHints>> {
    let text = fs::read_to_string(
        course
            .exercise_dir(name, Implementation::Exercise)
            .join("hints.md"),
    )
    .ok()?;
    Some(parse_hints(&text))
}

pub fn parse_hints(markdown: &str) -> Vec<TaskHints> {
    let mut all: Vec<TaskHints> = Vec::new();
    let mut in_task = false;
    for line in markdown.lines() {
        if let Some(task) = task_heading(line) {
            all.push(TaskHints {
                task,
                hints: Vec::new(),
            });
            in_task = true;
            continue;
        }
        if line.starts_with('#') {
            // Another heading (a bonus section, say) ends the task's list.
            in_task = false;
            continue;
        }
        let Some(current) = all.last_mut().filter(|_| in_task) else {
            continue;
        };
        if let Some(item) = list_item(line) {
            current.hints.push(item.to_owned());
        } else if !line.trim().is_empty() {
            if let Some(last) = current.hints.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        }
    }
    all
}

/// `12. text` gives `text`.
fn list_item(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    trimmed[digits..].strip_prefix(". ").map(str::trim)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_heading_that_is_not_a_task_ends_the_list() {
        let hints = super::parse_hints(
            "# Hints\n\n## Task 1: one\n1. a\n2. b\n\n## Bonus: extra\n1. not task 1's\n",
        );
        assert_eq!(hints.len(), 1);
        assert_eq!(hints[0].hints, vec!["a".to_owned(), "b".to_owned()]);
    }

    use super::*;

    const README: &str = "\
# Exercise 01: fork and anonymous pipes

Intro.

Read first: [Pipes](../../book/src/pipes.md). Edit `src/lib.rs`.

## Task 1: fork gives the child its own memory
Text.

## Task 2: a message from child to parent
";

    #[test]
    fn readme_gives_title_tasks_and_chapter() {
        assert_eq!(
            readme_title(README).as_deref(),
            Some("fork and anonymous pipes")
        );
        let tasks = tasks(README);
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].number, 2);
        assert_eq!(tasks[1].title, "a message from child to parent");
        let chapter = chapter(README).unwrap();
        assert_eq!(chapter.title, "Pipes");
        assert_eq!(chapter.path, PathBuf::from("book/src/pipes.md"));
    }

    #[test]
    fn a_readme_without_the_expected_heading_has_no_title() {
        assert_eq!(readme_title("# Pipes\n"), None);
        assert_eq!(readme_title(""), None);
        assert_eq!(chapter("no link here"), None);
    }

    #[test]
    fn description_comes_from_the_manifest() {
        let toml = "[package]\nname = \"exercise02\"\ndescription = \"named pipes\"\n";
        assert_eq!(package_description(toml).as_deref(), Some("named pipes"));
        assert_eq!(package_description("[package]\n"), None);
    }

    #[test]
    fn hints_are_numbered_lists_under_task_headings() {
        let md = "\
# Hints: exercise 01

## Task 1: fork
1. A nudge.
2. More concrete,
   on two lines.
3. The calls.

## Task 2: pipe
1. Only one.
";
        let hints = parse_hints(md);
        assert_eq!(hints.len(), 2);
        assert_eq!(hints[0].task.number, 1);
        assert_eq!(
            hints[0].hints,
            vec!["A nudge.", "More concrete, on two lines.", "The calls."]
        );
        assert_eq!(hints[1].hints, vec!["Only one."]);
    }
}
