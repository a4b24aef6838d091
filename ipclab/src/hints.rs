//! Which hints the student has already seen: the one piece of state the tool keeps, in
//! `.ipclab/hints-revealed` at the course root (git-ignored). One line per task:
//! `exercise01 2 3` means that hints 1 to 3 of task 2 of exercise01 were shown.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::course::Course;

#[derive(Debug, Default)]
pub struct Revealed {
    path: PathBuf,
    counts: BTreeMap<(String, u32), usize>,
}

impl Revealed {
    pub fn load(course: &Course) -> Revealed {
        let path = course.root.join(".ipclab").join("hints-revealed");
        let mut counts = BTreeMap::new();
        for line in fs::read_to_string(&path).unwrap_or_default().lines() {
            let mut fields = line.split_whitespace();
            let (Some(exercise), Some(task), Some(count)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if let (Ok(task), Ok(count)) = (task.parse(), count.parse()) {
                counts.insert((exercise.to_owned(), task), count);
            }
        }
        Revealed { path, counts }
    }

    /// How many hints of the task were shown.
    pub fn count(&self, exercise: &str, task: u32) -> usize {
        self.counts
            .get(&(exercise.to_owned(), task))
            .copied()
            .unwrap_or(0)
    }

    pub fn set(&mut self, exercise: &str, task: u32, count: usize) {
        self.counts.insert((exercise.to_owned(), task), count);
    }

    pub fn save(&self) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let text: String = self
            .counts
            .iter()
            .map(|((exercise, task), count)| format!("{exercise} {task} {count}\n"))
            .collect();
        fs::write(&self.path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revealed_counts_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let course = Course {
            root: dir.path().to_path_buf(),
        };
        let mut revealed = Revealed::load(&course);
        assert_eq!(revealed.count("exercise01", 2), 0);
        revealed.set("exercise01", 2, 3);
        revealed.save().unwrap();
        let again = Revealed::load(&course);
        assert_eq!(again.count("exercise01", 2), 3);
        assert_eq!(again.count("exercise01", 1), 0);
    }
}
