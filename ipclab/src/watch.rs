//! `ipclab watch`: the edit-to-verdict loop. The current exercise's tests re-run on every save;
//! when they all pass, the loop points at the next chapter and moves on.
//!
//! File events arrive through `notify` (inotify), debounced so that an editor's burst of writes
//! is one change. Standard input is read too: Enter re-runs (the manual mode, for file systems
//! where change events do not arrive), `h` shows a hint, `q` quits. A change that arrives while
//! the suite runs (a save in the middle of a build) makes the run stale: its verdict is not
//! shown and the tests run again.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use anstream::{print, println};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};

use crate::cli::{App, Failure};
use crate::render::{self, command, paint, BOLD, DIM, GOOD, WARN};
use crate::status;

enum Event {
    /// Sources changed on disk.
    Changed,
    /// The watcher reported an error.
    WatchFailed(String),
    /// Enter on standard input.
    Rerun,
    Hint,
    Quit,
}

pub fn watch(app: &App, chosen: Option<String>, manual: bool) -> Result<ExitCode, Failure> {
    let (tx, rx) = mpsc::channel();
    spawn_stdin_reader(tx.clone());
    let tty = io::stdout().is_terminal();
    let mut current = match chosen {
        Some(name) => name,
        None => match app.first_not_done_cached()? {
            Some(name) => name,
            None => app.current_from_cache()?,
        },
    };
    loop {
        let outcome = watch_one(app, &current, manual, tty, &tx, &rx)?;
        match outcome {
            Outcome::Quit => return Ok(ExitCode::SUCCESS),
            Outcome::Passed => {}
        }
        let all = app.exercises()?;
        let later = all.iter().skip_while(|n| **n != current).skip(1);
        let next = later
            .clone()
            .find(|n| !app.tester.fresh(n).is_some_and(|r| r.state().is_done()))
            .cloned();
        match next {
            Some(next) => {
                let info = app.info(&next);
                println!();
                println!(
                    "{} Next: {} · {}.",
                    paint(GOOD, "→"),
                    paint(BOLD, &next),
                    info.title
                );
                if let Some(chapter) = &info.chapter {
                    println!(
                        "  Read first: {} ({}).",
                        chapter.title,
                        chapter.path.display()
                    );
                }
                if course_has_readme(app, &next) {
                    println!("  The task statement is exercises/{next}/README.md.");
                }
                println!("  Now watching {next}.");
                println!();
                current = next;
            }
            None => {
                println!();
                println!(
                    "{} Every exercise from here on passes. {} shows the whole course.",
                    paint(GOOD, "✓"),
                    command("list")
                );
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

fn course_has_readme(app: &App, exercise: &str) -> bool {
    app.course()
        .exercise_dir(exercise, crate::course::Implementation::Exercise)
        .join("README.md")
        .is_file()
}

enum Outcome {
    Passed,
    Quit,
}

fn watch_one(
    app: &App,
    exercise: &str,
    manual: bool,
    tty: bool,
    tx: &Sender<Event>,
    rx: &Receiver<Event>,
) -> Result<Outcome, Failure> {
    let course = app.course();
    let dirs: Vec<PathBuf> = [
        course.root.join("exercises").join(exercise),
        course.root.join("tests").join(exercise),
    ]
    .into_iter()
    .filter(|d| d.is_dir())
    .collect();
    // Kept alive for as long as this exercise is watched; dropping it stops the watcher.
    let mut _watcher = None;
    let how = if manual {
        format!(
            "manual mode: press {} to run the tests again",
            paint(BOLD, "Enter")
        )
    } else {
        match start_watcher(&dirs, tx.clone()) {
            Ok(w) => {
                _watcher = Some(w);
                if let Some(fs) = unreliable_fs(&course.root) {
                    println!(
                        "{} the course is on {fs}, where change events may not arrive. If saving \
                         does not re-run the tests, press Enter, or use {}.",
                        paint(WARN, "note:"),
                        command("watch --manual")
                    );
                }
                format!(
                    "watching exercises/{exercise}/: save to run the tests again, or press {}",
                    paint(BOLD, "Enter")
                )
            }
            Err(e) => {
                println!(
                    "{} cannot watch the files ({e}). Press Enter to run the tests again \
                     ({} does so from the start).",
                    paint(WARN, "note:"),
                    command("watch --manual")
                );
                format!("press {} to run the tests again", paint(BOLD, "Enter"))
            }
        }
    };
    let mut runs = 0;
    loop {
        runs += 1;
        // On a terminal the last verdict stays on screen while the next run builds and runs
        // (which can take the deadline of a hanging test), with a spinner below it saying what
        // runs now; the screen is cleared only when the new verdict is ready.
        let redraw = tty && runs > 1;
        if !redraw {
            println!("── {exercise}: run {runs} ──");
        }
        let _ = io::stdout().flush();
        // inotify also reports files being opened and read (by cargo, by an editor): only a
        // change of the sources' fingerprint counts as a save.
        let before = status::fingerprint(course, exercise);
        let message = if redraw {
            format!(
                "run {runs}: building {exercise} and running its tests (the verdict above is \
                 from run {})",
                runs - 1
            )
        } else {
            format!("{exercise}: building and running the tests")
        };
        let record = app.run_with_message(exercise, runs > 1, message)?;
        // A save during the run: this verdict is already stale.
        let mut changed = false;
        let mut quit = false;
        for event in rx.try_iter() {
            match event {
                Event::Changed => changed = true,
                Event::Quit => quit = true,
                Event::WatchFailed(e) => report_watch_failure(&e),
                Event::Rerun | Event::Hint => {}
            }
        }
        if quit {
            return Ok(Outcome::Quit);
        }
        if changed && status::fingerprint(course, exercise) != before {
            println!("{exercise}: the sources changed during the run; running the tests again.");
            continue;
        }
        if redraw {
            // The new verdict replaces the old one. (Not on the first run: the pointer to this
            // exercise's chapter is on screen.)
            print!("\x1b[2J\x1b[H");
        }
        print!(
            "{}",
            render::verdict(
                &app.info(exercise),
                &record,
                app.points(exercise, Some(&record)).as_ref()
            )
        );
        if record.state().is_done() {
            return Ok(Outcome::Passed);
        }
        println!();
        println!(
            "{}",
            paint(
                DIM,
                format!("{how}; h + Enter: a hint; q + Enter or Ctrl-C: quit.")
            )
        );
        // Wait for the next reason to run.
        loop {
            let Ok(event) = rx.recv() else {
                return Ok(Outcome::Quit);
            };
            match event {
                Event::Changed if status::fingerprint(course, exercise) == before => {}
                Event::Changed | Event::Rerun => break,
                Event::Quit => return Ok(Outcome::Quit),
                Event::Hint => {
                    println!();
                    if let Err(e) = app.hint(exercise, None, false) {
                        println!("{}", e.message);
                    }
                }
                Event::WatchFailed(e) => report_watch_failure(&e),
            }
        }
    }
}

fn report_watch_failure(e: &str) {
    println!(
        "{} watching the files failed ({e}); press Enter to run the tests again.",
        paint(WARN, "note:")
    );
}

fn start_watcher(
    dirs: &[PathBuf],
    tx: Sender<Event>,
) -> Result<Debouncer<RecommendedWatcher>, notify::Error> {
    let mut debouncer = new_debouncer(
        Duration::from_millis(250),
        move |result: DebounceEventResult| {
            let event = match result {
                Ok(events) => {
                    if !events.iter().any(|e| relevant(&e.path)) {
                        return;
                    }
                    Event::Changed
                }
                Err(e) => Event::WatchFailed(e.to_string()),
            };
            let _ = tx.send(event);
        },
    )?;
    for dir in dirs {
        debouncer.watcher().watch(dir, RecursiveMode::Recursive)?;
    }
    Ok(debouncer)
}

/// Sources, manifests and snapshots; not editors' swap and backup files.
fn relevant(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.ends_with('~') || name.ends_with(".snap.new") {
        return false;
    }
    if path.components().any(|c| c.as_os_str() == "target") {
        return false;
    }
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("rs" | "toml" | "snap")
    )
}

/// Reads commands from standard input: Enter re-runs, `h` is a hint, `q` quits. At end of input
/// (say, standard input is /dev/null) the thread just ends.
fn spawn_stdin_reader(tx: Sender<Event>) {
    let _ = thread::Builder::new()
        .name("ipclab-stdin".into())
        .spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let event = match line.trim() {
                    "" | "r" => Event::Rerun,
                    "h" | "hint" => Event::Hint,
                    "q" | "quit" | "exit" => Event::Quit,
                    _ => continue,
                };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
}

/// File systems where inotify does not see changes made by another machine or by Windows.
fn unreliable_fs(path: &Path) -> Option<&'static str> {
    let fs = nix::sys::statfs::statfs(path).ok()?;
    // The magic numbers of statfs(2).
    match fs.filesystem_type().0 as u64 {
        0x6969 => Some("NFS"),
        0x517B | 0xFE53_4D42 | 0xFF53_4D42 => Some("a Windows (SMB) share"),
        0x0102_1997 => Some("a 9p file system (a Windows drive under WSL 2?)"),
        0x6573_5546 => Some("a FUSE file system"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sources_trigger_a_run() {
        assert!(relevant(Path::new("/c/exercises/exercise01/src/lib.rs")));
        assert!(relevant(Path::new("/c/exercises/exercise01/Cargo.toml")));
        assert!(!relevant(Path::new(
            "/c/exercises/exercise01/src/.lib.rs.swp"
        )));
        assert!(!relevant(Path::new("/c/exercises/exercise01/src/lib.rs~")));
        assert!(!relevant(Path::new("/c/exercises/exercise01/README.md")));
        assert!(!relevant(Path::new(
            "/c/tests/exercise01/snapshots/a.snap.new"
        )));
    }
}
