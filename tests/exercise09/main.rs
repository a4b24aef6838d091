//! The graded suite of exercise 09: a small shell.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Every test runs in a process of its
//! own with a deadline (`isolated`), whose failure message names the usual cause of a hang; the
//! test process only runs the code and hands back what it saw (the parser's and the built-ins'
//! results as the suite's own plain data, transcripts, exit statuses), and the judge decides. The
//! kernel's view (process groups, stopped processes, zombies, descriptor tables, the working
//! directory as a descriptor of `.` resolves it) comes from the judge's own snapshots at the
//! test's checkpoints; files the commands wrote are read by the judge from the test's scratch
//! directory.
//!
//! The shell binary `ex09-shell` is driven two ways: through plain files and pipes for what needs
//! no terminal (its transcript, standard output and error merged, is compared with a reviewed
//! snapshot), and through a pseudo-terminal for job control, where Ctrl+C and Ctrl+Z are bytes
//! typed on the terminal and the kernel (`/proc`, `tcgetpgrp`) says who is in which process group
//! and who is stopped.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use exercise09::*;
use ipclab_support::descriptors::assert_no_fd_leaks;
use ipclab_support::procfs::FdTarget;
use ipclab_support::pty::Pty;
use ipclab_support::witness::ProcessState;
use ipclab_support::{checkpoint, isolated, isolated_for, Deadline, Snapshot, Witness};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use rstest::rstest;
use serde::{Deserialize, Serialize};

const NEVER_RETURNED_HINT: &str = "the call never returned. The parser must advance through the line on every step; a built-in must not wait for anything";

const SHELL: &str = env!("CARGO_BIN_EXE_ex09-shell");

const PIPELINE_HINT: &str = "the pipeline hung. Usually a stage waits for end of file on a pipe \
     whose write end is still open somewhere else: in the shell (close every pipe end once the \
     stages are forked) or in another stage (create the pipes with O_CLOEXEC, so that each stage \
     keeps only what it dup2-ed onto 0 and 1). Or the shell waited for a stage before starting the \
     next, and the first is blocked writing into a full pipe: fork every stage first, then wait.";

const SCRIPT_HINT: &str = "the shell did not finish its script. It must read its standard input \
     line by line, run each line to completion, and exit at end of input (read returns 0); a \
     pipeline that never ends is the usual culprit (see task 2).";

const KILL_HINT: &str = "the process the test told `kill` to signal did not die: does the \
     built-in send the signal it names (kill(2)) to every PID given, and does a negative PID reach \
     the whole process group?";

const JOB_HINT: &str = "the terminal session hung. Usual causes: the job's processes are not the \
     terminal's foreground process group (setpgid each stage into one new group, then tcsetpgrp), \
     so Ctrl+C and Ctrl+Z go elsewhere; the stages still ignore SIGINT/SIGTSTP because the shell \
     does (ignored dispositions survive exec: reset them to SIG_DFL in the child); or the shell \
     waits without WUNTRACED and never hears that the job stopped.";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The parser's results as the suite's own plain data: the judge compares these, never the
/// exercise's types. Field and type names are the exercise's, so that `Debug` reads the same.
mod seen {
    use std::path::PathBuf;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Command {
        pub argv: Vec<String>,
        pub stdin: Option<PathBuf>,
        pub stdout: Option<PathBuf>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Pipeline {
        pub commands: Vec<Command>,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ParseError {
        MissingCommandBeforePipe,
        MissingCommandAfterPipe,
        MissingCommand,
        MissingFileName(char),
        DuplicateRedirection(char),
        UnterminatedQuote(char),
        TrailingBackslash,
    }

    /// Reads the exercise's value field by field (no code of the exercise runs).
    pub fn pipeline(p: &exercise09::Pipeline) -> Pipeline {
        Pipeline {
            commands: p
                .commands
                .iter()
                .map(|c| Command {
                    argv: c.argv.clone(),
                    stdin: c.stdin.clone(),
                    stdout: c.stdout.clone(),
                })
                .collect(),
        }
    }

    pub fn parse_error(e: &exercise09::ParseError) -> ParseError {
        use exercise09::ParseError as E;
        match e {
            E::MissingCommandBeforePipe => ParseError::MissingCommandBeforePipe,
            E::MissingCommandAfterPipe => ParseError::MissingCommandAfterPipe,
            E::MissingCommand => ParseError::MissingCommand,
            E::MissingFileName(c) => ParseError::MissingFileName(*c),
            E::DuplicateRedirection(c) => ParseError::DuplicateRedirection(*c),
            E::UnterminatedQuote(c) => ParseError::UnterminatedQuote(*c),
            E::TrailingBackslash => ParseError::TrailingBackslash,
        }
    }

    /// How a stage ended.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Status {
        Exited(i32),
        Signaled(i32),
    }

    pub fn status(s: &exercise09::Status) -> Status {
        match s {
            exercise09::Status::Exited(code) => Status::Exited(*code),
            exercise09::Status::Signaled(signal) => Status::Signaled(*signal as i32),
        }
    }

    pub fn statuses(s: &[exercise09::Status]) -> Vec<Status> {
        s.iter().map(status).collect()
    }

    /// What a built-in did.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Builtin {
        Continue,
        Exit(Option<i32>),
    }

    /// The shell's errors the tests tell apart; `Other` keeps the `Debug` text of the rest.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub enum ShellError {
        Redirect { path: PathBuf, errno: i32 },
        Cd { dir: PathBuf, errno: i32 },
        Usage { builtin: String },
        UnknownSignal(String),
        Kill { errno: i32 },
        Other(String),
    }

    pub fn shell_error(e: &exercise09::ShellError) -> ShellError {
        use exercise09::ShellError as E;
        match e {
            E::Redirect { path, errno } => ShellError::Redirect {
                path: path.clone(),
                errno: *errno as i32,
            },
            E::Cd { dir, errno } => ShellError::Cd {
                dir: dir.clone(),
                errno: *errno as i32,
            },
            E::Usage { builtin, .. } => ShellError::Usage {
                builtin: (*builtin).to_owned(),
            },
            E::UnknownSignal(name) => ShellError::UnknownSignal(name.clone()),
            E::Kill { errno, .. } => ShellError::Kill {
                errno: *errno as i32,
            },
            other => ShellError::Other(format!("{other:?}")),
        }
    }

    pub fn builtin(
        r: &Result<exercise09::BuiltinOutcome, exercise09::ShellError>,
    ) -> Result<Builtin, ShellError> {
        match r {
            Ok(exercise09::BuiltinOutcome::Continue) => Ok(Builtin::Continue),
            Ok(exercise09::BuiltinOutcome::Exit(code)) => Ok(Builtin::Exit(*code)),
            Err(e) => Err(shell_error(e)),
        }
    }
}

/// What `parse` returned, as plain data (the error's text goes with it, for messages).
type Parsed = Result<seen::Pipeline, (seen::ParseError, String)>;

fn parsed(line: &str) -> Parsed {
    match parse(line) {
        Ok(p) => Ok(seen::pipeline(&p)),
        Err(e) => Err((seen::parse_error(&e), format!("{e}"))),
    }
}

/// The judge's unwrap of a line that must parse.
#[track_caller]
fn valid(parsed: Parsed, line: &str) -> seen::Pipeline {
    parsed.unwrap_or_else(|(e, _)| panic!("{line:?} is a valid line, got {e:?}"))
}

fn words(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|w| (*w).to_owned()).collect()
}

fn cmd(argv: &[&str]) -> Command {
    Command {
        argv: words(argv),
        stdin: None,
        stdout: None,
    }
}

fn pipeline(commands: Vec<Command>) -> Pipeline {
    Pipeline { commands }
}

/// A file in the test's scratch directory (its TMPDIR), where the judge reads it itself.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// What `run_pipeline` returned, as plain data.
type Ran = Result<Vec<seen::Status>, seen::ShellError>;

fn ran(pipeline: &Pipeline) -> Ran {
    run_pipeline(pipeline)
        .map(|s| seen::statuses(&s))
        .map_err(|e| seen::shell_error(&e))
}

/// The judge's unwrap of a pipeline that must run.
#[track_caller]
fn statuses(ran: Ran) -> Vec<seen::Status> {
    ran.unwrap_or_else(|e| panic!("run_pipeline: {e:?}"))
}

fn status(s: Status) -> seen::Status {
    seen::status(&s)
}

/// What the shell printed for a script (standard output and error, in the order written) and
/// how it ended.
#[derive(Debug, Serialize, Deserialize)]
struct Run {
    transcript: String,
    code: Option<i32>,
}

impl Run {
    /// The judge's check that the shell did not panic.
    #[track_caller]
    fn assert_no_panic(&self) {
        if self.transcript.contains("panicked at") {
            panic!(
                "the shell panicked while running the script:\n{}",
                self.transcript
            );
        }
    }
}

/// Runs the shell in `dir` with `script` as its standard input (a file, not a terminal: no
/// prompt, no job control) and its standard output and error going into one pipe.
fn run_script(dir: &Path, script: &str) -> Run {
    let mut input = tempfile::tempfile().expect("a temporary file for the script");
    input
        .write_all(script.as_bytes())
        .expect("write the script");
    input.rewind().expect("rewind the script");
    let (read_end, write_end) = nix::unistd::pipe().expect("a pipe for the transcript");
    let mut command = std::process::Command::new(SHELL);
    command
        .current_dir(dir)
        .stdin(input)
        .stdout(File::from(write_end.try_clone().expect("dup the pipe")))
        .stderr(File::from(write_end));
    let mut child = command.spawn().expect("start ex09-shell");
    // Our copies of the write end go with `command`: the transcript ends when the shell (and
    // everything it started) has closed it.
    drop(command);
    let mut transcript = String::new();
    File::from(read_end)
        .read_to_string(&mut transcript)
        .expect("read the shell's output");
    let status = child.wait().expect("wait for the shell");
    Run {
        transcript,
        code: status.code(),
    }
}

/// A process that blocks until it is killed: `cat` reading a pipe nobody writes to. The write
/// end goes with the returned pair's second element.
fn blocked_cat(
    configure: impl FnOnce(&mut std::process::Command),
) -> (Child, std::process::ChildStdin) {
    let mut command = std::process::Command::new("cat");
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    configure(&mut command);
    let mut child = command.spawn().expect("start cat");
    let stdin = child.stdin.take().expect("cat's stdin");
    (child, stdin)
}

fn fd_link(line: &str) -> String {
    line.trim().to_owned()
}

/// The shell on a pseudo-terminal, after its first prompt.
fn interactive_shell() -> Pty {
    let mut pty = Pty::spawn(SHELL, &[]).expect("start ex09-shell on a pseudo-terminal");
    pty.expect(
        PROMPT,
        "the shell's first prompt (it prints PROMPT when its standard input is a terminal, after \
         JobControl::new has taken the terminal)",
    );
    pty
}

/// The processes the shell started, as the judge saw them.
fn jobs_of(snap: &Snapshot, shell: i32) -> Vec<&ProcessState> {
    let mut below = vec![shell];
    let mut found = Vec::new();
    for p in &snap.processes {
        if below.contains(&p.info.ppid.as_raw()) && p.pid() != shell {
            below.push(p.pid());
            found.push(p);
        }
    }
    found
}

#[track_caller]
fn process(snap: &Snapshot, pid: i32) -> &ProcessState {
    snap.process(pid)
        .unwrap_or_else(|| panic!("process {pid} is gone"))
}

/// The judge's canonical form of a path (the test and the judge see the same file system).
fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).expect("canonicalize")
}

/// The working directory, as the kernel resolves it: the test opens `.` and the judge reads
/// what that descriptor refers to.
fn open_cwd() -> File {
    File::open(".").expect("open the working directory")
}

#[track_caller]
fn cwd_at(snap: &Snapshot, fd: i32) -> PathBuf {
    match snap.test_process().fds.get(&fd).map(|e| &e.target) {
        Some(FdTarget::Path(path)) => path.clone(),
        other => panic!(
            "the test's descriptor of `.` is {other:?} at {:?}",
            snap.label
        ),
    }
}

/// The judge's check that the test process left nothing open between checkpoints `before` and
/// `after`.
#[track_caller]
fn assert_no_leaks(seen: &Witness, before: &str, after: &str, what_to_close: &str) {
    assert_no_fd_leaks(
        seen.at(before).test_process(),
        seen.at(after).test_process(),
        what_to_close,
    );
}

// ---------------------------------------------------------------------------------------------
// Task 1: parsing a line.

#[test]
fn task1_words_are_separated_by_blanks() {
    let line = "ls -l   /tmp\t-a";
    isolated(NEVER_RETURNED_HINT, || parsed(line)).judge(|got: Parsed, _| {
        assert_eq!(
            valid(got, line),
            seen::pipeline(&pipeline(vec![cmd(&["ls", "-l", "/tmp", "-a"])])),
            "spaces and tabs separate words, however many there are"
        );
    });
}

#[rstest]
#[case::empty("")]
#[case::spaces("    ")]
#[case::tab("\t")]
fn task1_a_blank_line_is_an_empty_pipeline(#[case] line: &str) {
    isolated(NEVER_RETURNED_HINT, || parsed(line)).judge(|got: Parsed, _| {
        assert_eq!(
            got,
            Ok(seen::pipeline(&Pipeline::default())),
            "a blank line is no error: it is a pipeline of no commands, which the shell skips"
        );
    });
}

#[rstest]
#[case::single_quotes("echo 'a  b'", &["echo", "a  b"])]
#[case::double_quotes("echo \"a  b\"", &["echo", "a  b"])]
#[case::quotes_join_a_word("echo a'b c'd", &["echo", "ab cd"])]
#[case::empty_quotes_are_a_word("printf '' x", &["printf", "", "x"])]
#[case::operators_in_quotes_are_text("echo 'a|b' \"<c>\"", &["echo", "a|b", "<c>"])]
#[case::backslash_escapes_one_character(r"echo a\ b \| \'", &["echo", "a b", "|", "'"])]
#[case::double_quotes_escape_quote_and_backslash(r#"echo "say \"hi\" \\ \n""#, &["echo", r#"say "hi" \ \n"#])]
#[case::single_quotes_are_literal(r#"echo 'a\b"c'"#, &["echo", r#"a\b"c"#])]
fn task1_quotes_and_backslashes(#[case] line: &str, #[case] expected: &[&str]) {
    isolated(NEVER_RETURNED_HINT, || parsed(line)).judge(|got: Parsed, _| {
        assert_eq!(
            valid(got, line),
            seen::pipeline(&pipeline(vec![cmd(expected)])),
            "quotes group characters into one word and are removed; a backslash makes the next \
             character ordinary"
        );
    });
}

#[rstest]
#[case::spaced("ps auxf | grep mysql | wc -l")]
#[case::unspaced("ps auxf|grep mysql|wc -l")]
fn task1_pipes_separate_commands(#[case] line: &str) {
    isolated(NEVER_RETURNED_HINT, || parsed(line)).judge(|got: Parsed, _| {
        assert_eq!(
            got.unwrap_or_else(|(e, _)| panic!("a valid line: {e:?}")),
            seen::pipeline(&pipeline(vec![
                cmd(&["ps", "auxf"]),
                cmd(&["grep", "mysql"]),
                cmd(&["wc", "-l"])
            ])),
            "an unquoted | ends one command and starts the next, with or without spaces around it"
        );
    });
}

#[test]
fn task1_pipelines_have_any_length() {
    let line = ["cat"; 12].join(" | ");
    isolated(NEVER_RETURNED_HINT, || parsed(&line)).judge(|got: Parsed, _| {
        assert_eq!(
            got.unwrap_or_else(|(e, _)| panic!("a valid line: {e:?}")),
            seen::pipeline(&pipeline(vec![cmd(&["cat"]); 12])),
            "twelve commands joined by `|` are a pipeline of twelve commands: no fixed limit"
        );
    });
}

#[rstest]
#[case::at_the_end("sort < in.txt", cmd_with(&["sort"], Some("in.txt"), None))]
#[case::first("> out.txt echo hi", cmd_with(&["echo", "hi"], None, Some("out.txt")))]
#[case::unspaced("cat<in>out", cmd_with(&["cat"], Some("in"), Some("out")))]
#[case::quoted_name("wc -l > 'my file'", cmd_with(&["wc", "-l"], None, Some("my file")))]
fn task1_redirections_belong_to_their_command(#[case] line: &str, #[case] expected: Command) {
    isolated(NEVER_RETURNED_HINT, || parsed(line)).judge(|got: Parsed, _| {
        assert_eq!(
            got.unwrap_or_else(|(e, _)| panic!("a valid line: {e:?}")),
            seen::pipeline(&pipeline(vec![expected])),
            "`< file` and `> file` may stand anywhere in a command; the next word is the file name, \
             and neither is an argument"
        );
    });
}

fn cmd_with(argv: &[&str], stdin: Option<&str>, stdout: Option<&str>) -> Command {
    Command {
        argv: words(argv),
        stdin: stdin.map(PathBuf::from),
        stdout: stdout.map(PathBuf::from),
    }
}

#[test]
fn task1_the_notes_pipeline() {
    isolated(NEVER_RETURNED_HINT, || {
        parsed("ps auxf | grep 'my sql' | wc -l > \"count file.txt\"")
    })
    .judge(|got: Parsed, _| {
        let parsed = got.unwrap_or_else(|(e, _)| panic!("a valid line: {e:?}"));
        ipclab_support::assert_debug_snapshot!("task1_the_notes_pipeline", parsed);
    });
}

#[rstest]
#[case::leading_pipe("| wc", ParseError::MissingCommandBeforePipe)]
#[case::trailing_pipe("ls |", ParseError::MissingCommandAfterPipe)]
#[case::two_pipes("ls | | wc", ParseError::MissingCommandAfterPipe)]
#[case::no_file_name("cat <", ParseError::MissingFileName('<'))]
#[case::pipe_instead_of_file_name("ls > | wc", ParseError::MissingFileName('>'))]
#[case::only_a_redirection("< in.txt", ParseError::MissingCommand)]
#[case::two_inputs("cat < a < b", ParseError::DuplicateRedirection('<'))]
#[case::two_outputs("ls > a > b", ParseError::DuplicateRedirection('>'))]
#[case::open_single_quote("echo 'oops", ParseError::UnterminatedQuote('\''))]
#[case::open_double_quote("echo \"oops", ParseError::UnterminatedQuote('"'))]
#[case::trailing_backslash("echo \\", ParseError::TrailingBackslash)]
fn task1_mistakes_are_named(#[case] line: &str, #[case] expected: ParseError) {
    let wanted = seen::parse_error(&expected);
    isolated(NEVER_RETURNED_HINT, || (parsed(line), expected.to_string())).judge(
        |(got, why): (Parsed, String), _| {
            assert_eq!(
                got.map_err(|(e, _)| e),
                Err(wanted.clone()),
                "{line:?} is not a valid line: parse must say why ({why})"
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Task 2: running a pipeline.

#[rstest]
#[case::success(&["true"], Status::Exited(0))]
#[case::failure(&["false"], Status::Exited(1))]
#[case::exit_code(&["sh", "-c", "exit 7"], Status::Exited(7))]
#[case::killed(&["sh", "-c", "kill -TERM $$"], Status::Signaled(Signal::SIGTERM))]
fn task2_a_command_runs_and_its_status_is_reported(
    #[case] argv: &[&str],
    #[case] expected: Status,
) {
    isolated(PIPELINE_HINT, || ran(&pipeline(vec![cmd(argv)]))).judge(|got: Ran, _| {
        assert_eq!(
            statuses(got),
            vec![status(expected)],
            "waitpid says how `{}` ended",
            argv.join(" ")
        );
    });
}

#[rstest]
#[case::two(2)]
#[case::three(3)]
#[case::ten(10)]
fn task2_each_stage_feeds_the_next(#[case] stages: usize) {
    isolated(PIPELINE_HINT, || {
        let out = scratch("out.txt");
        // echo x | sed s/$/y/ | sed s/$/y/ | … > out.txt
        let mut commands = vec![cmd(&["echo", "x"])];
        commands.extend((1..stages).map(|_| cmd(&["sed", "s/$/y/"])));
        commands.last_mut().unwrap().stdout = Some(out);
        ran(&pipeline(commands))
    })
    .judge(|got: Ran, seen| {
        assert_eq!(
            statuses(got),
            vec![seen::Status::Exited(0); stages],
            "one status per stage, in pipeline order"
        );
        let expected = format!("x{}\n", "y".repeat(stages - 1));
        assert_eq!(
            fs::read_to_string(seen.scratch.join("out.txt")).expect("read out.txt"),
            expected,
            "every sed added one y: each stage's output must be the next stage's input"
        );
    });
}

#[test]
fn task2_stages_are_joined_by_pipes_and_redirected_to_files() {
    isolated(PIPELINE_HINT, || {
        let (input, output) = (scratch("in.txt"), scratch("out.txt"));
        fs::write(&input, "").expect("create in.txt");
        // Each stage asks the kernel what its standard streams are, then passes on what the
        // previous stages said.
        let report = ["sh", "-c", "readlink /proc/$$/fd/0 /proc/$$/fd/1; cat"];
        let mut commands = vec![cmd(&report), cmd(&report), cmd(&report)];
        commands[0].stdin = Some(input);
        commands[2].stdout = Some(output);
        ran(&pipeline(commands))
    })
    .judge(|got: Ran, seen| {
        statuses(got);
        let (input, output) = (seen.scratch.join("in.txt"), seen.scratch.join("out.txt"));
        let text = fs::read_to_string(&output).expect("read out.txt");
        let lines: Vec<String> = text.lines().map(fd_link).collect();
        let [third_in, third_out, second_in, second_out, first_in, first_out] = &lines[..] else {
            panic!(
                "expected six lines (stdin and stdout of the 3rd, 2nd, 1st stage), got {text:?}"
            );
        };
        assert_eq!(
            Path::new(first_in),
            canonical(&input),
            "`< in.txt`: the first stage's stdin must be the file"
        );
        assert!(
            first_out.starts_with("pipe:["),
            "the first stage's stdout must be a pipe, the kernel says {first_out}"
        );
        assert_eq!(
            second_in, first_out,
            "the second stage's stdin must be the pipe the first writes into"
        );
        assert!(
            second_out.starts_with("pipe:[") && second_out != first_out,
            "the second stage's stdout must be a second pipe, the kernel says {second_out}"
        );
        assert_eq!(
            third_in, second_out,
            "the third stage's stdin must be the pipe the second writes into"
        );
        assert_eq!(
            Path::new(third_out),
            canonical(&output),
            "`> out.txt`: the last stage's stdout must be the file"
        );
    });
}

#[test]
fn task2_stages_run_at_the_same_time() {
    isolated(PIPELINE_HINT, || {
        let mut count = cmd(&["wc", "-c"]);
        count.stdout = Some(scratch("count.txt"));
        // 1 MiB is sixteen times what a pipe holds: head can only finish if wc reads meanwhile.
        ran(&pipeline(vec![
            cmd(&["head", "-c", "1048576", "/dev/zero"]),
            count,
        ]))
    })
    .judge(|got: Ran, seen| {
        assert_eq!(
            statuses(got),
            vec![seen::Status::Exited(0); 2],
            "`head -c 1048576 /dev/zero | wc -c > count.txt`: both stages must exit with 0"
        );
        let count = fs::read_to_string(seen.scratch.join("count.txt"))
            .expect("`> count.txt` must create count.txt");
        assert_eq!(
            count.trim(),
            "1048576",
            "wc must have counted the whole MiB head wrote through the pipe"
        );
    });
}

#[test]
fn task2_a_writer_whose_reader_left_dies_of_sigpipe() {
    isolated(PIPELINE_HINT, || {
        let mut head = cmd(&["head", "-n", "1"]);
        head.stdout = Some(scratch("out.txt"));
        ran(&pipeline(vec![cmd(&["yes"]), head]))
    })
    .judge(|got: Ran, _| {
        assert_eq!(
            statuses(got),
            vec![
                seen::Status::Signaled(libc::SIGPIPE),
                seen::Status::Exited(0)
            ],
            "`yes | head -n 1`: once head exits, yes's next write raises SIGPIPE, which must kill \
             it, as in any shell. If yes exited with an error instead (\"Broken pipe\"), it \
             inherited SIGPIPE ignored from the shell (Rust ignores SIGPIPE at start-up, and an \
             ignored disposition survives exec): reset it to SIG_DFL in the child before exec."
        );
    });
}

#[test]
fn task2_output_redirection_creates_or_truncates() {
    isolated(PIPELINE_HINT, || {
        let (old, new) = (scratch("old.txt"), scratch("new.txt"));
        fs::write(&old, "a much longer text that was here before\n").expect("write old.txt");
        [&old, &new]
            .into_iter()
            .map(|path| {
                let mut echo = cmd(&["echo", "short"]);
                echo.stdout = Some(path.clone());
                let ran = ran(&pipeline(vec![echo]));
                // What the file holds right after this run (the judge reads it again at the end).
                (ran, fs::read_to_string(path).unwrap_or_default())
            })
            .collect::<Vec<(Ran, String)>>()
    })
    .judge(|runs: Vec<(Ran, String)>, seen| {
        assert_eq!(runs.len(), 2);
        for ((got, then), name) in runs.into_iter().zip(["old.txt", "new.txt"]) {
            statuses(got);
            let message = format!(
                "`> {name}` must create the file if needed and truncate it (O_CREAT | O_TRUNC)"
            );
            assert_eq!(then, "short\n", "{message}");
            assert_eq!(
                fs::read_to_string(seen.scratch.join(name)).expect("read"),
                "short\n",
                "{message}"
            );
        }
    });
}

/// The umask the mode test sets: not the usual 022, so that a mode hard-coded as 0o644 shows.
const UMASK: u32 = 0o002;

#[test]
fn task2_a_created_file_gets_mode_0666_minus_the_umask() {
    isolated(PIPELINE_HINT, || {
        use nix::sys::stat::{umask, Mode};
        umask(Mode::from_bits_truncate(UMASK as libc::mode_t));
        let mut echo = cmd(&["echo", "new"]);
        echo.stdout = Some(scratch("created.txt"));
        ran(&pipeline(vec![echo]))
    })
    .judge(|got: Ran, seen| {
        statuses(got);
        let mode = fs::metadata(seen.scratch.join("created.txt"))
            .expect("`> created.txt` must create the file")
            .permissions()
            .mode()
            & 0o7777;
        let expected = 0o666 & !UMASK;
        let decimal = [644, 666].into_iter().find(|d| mode == d & !UMASK);
        let cause = if let Some(d) = decimal {
            format!(" The mode was written in decimal: {d} is {d:#o}; write the octal 0o666.")
        } else if mode == 0o644 {
            " The mode looks hard-coded as 0o644, which is what 0o666 gives under the usual umask \
             022 only: pass 0o666 and let the kernel take away the umask's bits."
                .to_owned()
        } else {
            String::new()
        };
        assert!(
            mode == expected,
            "`> created.txt` created the file with mode {mode:#o}; a file created by `>` gets \
             mode 0o666 minus the umask (the test set umask {UMASK:03o}, so {expected:#o}): open \
             it with O_CREAT and mode 0o666, as any shell does.{cause}"
        );
    });
}

#[test]
fn task2_a_missing_input_file_starts_nothing() {
    isolated(PIPELINE_HINT, || {
        let missing = scratch("missing.txt");
        let mut cat = cmd(&["cat"]);
        cat.stdin = Some(missing.clone());
        checkpoint("before");
        let got = ran(&pipeline(vec![cat, cmd(&["wc", "-l"])]));
        checkpoint("after");
        (missing, got)
    })
    .judge(|(missing, got): (PathBuf, Ran), seen| {
        match got {
            Err(seen::ShellError::Redirect { path, errno }) => {
                assert_eq!(
                    path, missing,
                    "ShellError::Redirect must name the file that could not be opened"
                );
                assert_eq!(
                    errno,
                    Errno::ENOENT as i32,
                    "opening a missing file for `<` fails with ENOENT (got errno {errno})"
                );
            }
            other => panic!(
                "expected Err(ShellError::Redirect {{ path: …/missing.txt, errno: ENOENT }}), got \
                 {other:?}"
            ),
        }
        assert_no_leaks(
            seen,
            "before",
            "after",
            "Even when a redirection fails, every file and pipe opened for the pipeline must be closed.",
        );
        let after = seen.at("after");
        let started: Vec<_> = after.descendants().iter().map(|p| p.info.clone()).collect();
        assert!(
            started.is_empty() && after.zombie_children_of(after.root).is_empty(),
            "open the redirections before forking anything: processes were started ({started:?})"
        );
    });
}

#[test]
fn task2_a_missing_program_exits_127_and_the_rest_runs() {
    isolated(PIPELINE_HINT, || {
        ran(&pipeline(vec![
            cmd(&["ipclab-no-such-command", "--flag"]),
            cmd(&["wc", "-l"]),
        ]))
    })
    .judge(|got: Ran, _| {
        let got = got.unwrap_or_else(|e| {
            panic!("a missing program is the stage's failure, not run_pipeline's: {e:?}")
        });
        assert_eq!(
            got,
            vec![seen::Status::Exited(127), seen::Status::Exited(0)],
            "when exec fails with ENOENT the child prints `ipclab: NAME: command not found` and \
             _exits with 127 (the shell's convention); the other stages run normally"
        );
    });
}

#[test]
fn task2_the_shell_keeps_no_descriptor_and_reaps_every_stage() {
    isolated(PIPELINE_HINT, || {
        let mut last = cmd(&["cat"]);
        last.stdout = Some(scratch("out.txt"));
        checkpoint("before");
        let got = ran(&pipeline(vec![cmd(&["echo", "hi"]), cmd(&["cat"]), last]));
        checkpoint("after");
        got
    })
    .judge(|got: Ran, seen| {
        statuses(got);
        assert_no_leaks(
            seen,
            "before",
            "after",
            "The shell must close its copies of every pipe end and redirection file.",
        );
        let after = seen.at("after");
        after.assert_no_zombies("Wait for every stage, not only the last.");
        let left: Vec<_> = after.descendants().iter().map(|p| p.info.clone()).collect();
        assert!(
            left.is_empty(),
            "stages still running after run_pipeline returned: {left:?}"
        );
    });
}

#[test]
fn task2_the_shell_runs_a_script() {
    isolated(SCRIPT_HINT, || {
        let script = r"printf 'root 1 init\nmysql 812 mysqld --port=3306\nalice 990 bash\nalice 991 mysql -u alice\n' | grep mysql | wc -l
printf 'pear\napple\nfig\n' | sort | tr a-z A-Z > fruit.txt
cat < fruit.txt
false
sh -c 'echo to stderr >&2; exit 3'
ipclab-no-such-command | cat
sh -c 'kill -TERM $$'
cat < missing.txt
echo last line
";
        run_script(&std::env::temp_dir(), script)
    })
    .judge(|run: Run, _| {
        run.assert_no_panic();
        ipclab_support::assert_snapshot!("task2_the_shell_runs_a_script", run.transcript);
        assert_eq!(
            run.code,
            Some(0),
            "at end of input the shell exits with the last command's status"
        );
    });
}

#[test]
fn task2_the_shell_exits_with_the_last_status() {
    isolated(SCRIPT_HINT, || {
        let mut shell = std::process::Command::new(SHELL)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ex09-shell");
        let mut stdin = shell.stdin.take().expect("piped");
        stdin
            .write_all(b"true\nsh -c 'exit 5'\n")
            .expect("write the script");
        drop(stdin);
        let out = shell.wait_with_output().expect("wait for the shell");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .judge(|(code, stdout, stderr): (Option<i32>, String, String), _| {
        assert_eq!(
            code,
            Some(5),
            "the shell must exit with the last command's status (5); its stderr:\n{stderr}"
        );
        assert!(stdout.is_empty(), "the shell printed {stdout:?} on stdout");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: built-in commands.

/// What a built-in returned, as plain data, and what it wrote.
type BuiltinRan = (Result<seen::Builtin, seen::ShellError>, String);

fn builtin(argv: &[&str]) -> BuiltinRan {
    let mut out = Vec::new();
    let result = run_builtin(&words(argv), &mut out);
    (
        seen::builtin(&result),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

/// Runs `cd` (with `dir`, a new directory of the scratch directory, as its argument, or with
/// none and `dir` as $HOME) and opens `.` afterwards, for the judge to resolve.
fn cd_into(dir: &str, as_argument: bool) -> (Result<seen::Builtin, seen::ShellError>, i32) {
    let dir = scratch(dir);
    fs::create_dir(&dir).expect("mkdir");
    let argv = if as_argument {
        vec!["cd", dir.to_str().expect("a UTF-8 scratch path")]
    } else {
        std::env::set_var("HOME", &dir);
        vec!["cd"]
    };
    let (result, _) = builtin(&argv);
    let cwd = open_cwd();
    checkpoint("after cd");
    (result, std::os::fd::AsRawFd::as_raw_fd(&cwd))
}

/// The judge's half of the `cd` tests: `cd` returned Continue and the kernel says the working
/// directory is now `dir`.
#[track_caller]
fn assert_cd_reached(
    (result, fd): (Result<seen::Builtin, seen::ShellError>, i32),
    seen: &Witness,
    dir: &str,
    how: &str,
) {
    assert!(
        matches!(result, Ok(seen::Builtin::Continue)),
        "{how}: expected Ok(BuiltinOutcome::Continue), got {result:?}"
    );
    assert_eq!(
        cwd_at(seen.at("after cd"), fd),
        canonical(&seen.scratch.join(dir)),
        "{how}: the kernel says the process's working directory did not become {dir}: cd must \
         chdir() in the shell itself (a child's chdir would change only the child's)"
    );
}

#[test]
fn task3_cd_changes_the_shells_own_directory() {
    isolated(SCRIPT_HINT, || cd_into("elsewhere", true)).judge(|got, seen| {
        assert_cd_reached(got, seen, "elsewhere", "`cd DIR`");
    });
}

#[test]
fn task3_cd_alone_goes_home() {
    isolated(SCRIPT_HINT, || cd_into("home", false)).judge(|got, seen| {
        assert_cd_reached(got, seen, "home", "`cd` without an argument goes to $HOME");
    });
}

#[test]
fn task3_cd_to_a_missing_directory_is_an_error() {
    isolated(SCRIPT_HINT, || {
        // Start where the sandbox lets the test open `.`: its scratch directory.
        std::env::set_current_dir(std::env::temp_dir()).expect("chdir to the scratch directory");
        let before = open_cwd();
        let (result, _) = builtin(&["cd", "/ipclab/no/such/dir"]);
        let after = open_cwd();
        checkpoint("after cd");
        (
            result,
            std::os::fd::AsRawFd::as_raw_fd(&before),
            std::os::fd::AsRawFd::as_raw_fd(&after),
        )
    })
    .judge(
        |(result, before, after): (Result<seen::Builtin, seen::ShellError>, i32, i32), seen| {
            match result {
                Err(seen::ShellError::Cd { dir, errno }) => {
                    assert_eq!(
                        dir,
                        PathBuf::from("/ipclab/no/such/dir"),
                        "ShellError::Cd must name the directory cd was given"
                    );
                    assert_eq!(
                        errno,
                        Errno::ENOENT as i32,
                        "chdir to a missing directory fails with ENOENT (got errno {errno})"
                    );
                }
                other => {
                    panic!("expected Err(ShellError::Cd {{ errno: ENOENT, .. }}), got {other:?}")
                }
            }
            let snap = seen.at("after cd");
            assert_eq!(
                cwd_at(snap, after),
                cwd_at(snap, before),
                "a cd that failed must leave the working directory where it was"
            );
        },
    );
}

#[rstest]
#[case::no_argument(&["exit"], Some(None))]
#[case::code(&["exit", "3"], Some(Some(3)))]
#[case::code_wraps_at_256(&["exit", "257"], Some(Some(1)))]
#[case::not_a_number(&["exit", "three"], None)]
fn task3_exit_says_how_to_end(#[case] argv: &[&str], #[case] expected: Option<Option<i32>>) {
    isolated(NEVER_RETURNED_HINT, || builtin(argv)).judge(|(result, _): BuiltinRan, _| {
        match (expected, result) {
            (Some(code), Ok(seen::Builtin::Exit(got))) => assert_eq!(
                got,
                code,
                "`{}`: Exit(None) means \"the last command's status\"; a code keeps its low 8 bits",
                argv.join(" ")
            ),
            (None, Err(seen::ShellError::Usage { builtin })) => assert_eq!(builtin, "exit"),
            (expected, got) => panic!(
                "`{}`: expected {}, got {got:?}",
                argv.join(" "),
                match expected {
                    Some(code) => format!("Ok(BuiltinOutcome::Exit({code:?}))"),
                    None => "Err(ShellError::Usage { builtin: \"exit\", .. })".into(),
                }
            ),
        }
    });
}

#[test]
fn task3_kill_l_lists_every_signal() {
    isolated(NEVER_RETURNED_HINT, || builtin(&["kill", "-l"])).judge(
        |(result, out): BuiltinRan, _| {
            assert!(
                matches!(result, Ok(seen::Builtin::Continue)),
                "`kill -l`: expected Ok(BuiltinOutcome::Continue), got {result:?}"
            );
            // The layout is free: read the `NUMBER) NAME` pairs, whatever the spacing.
            let tokens: Vec<&str> = out.split_whitespace().collect();
            let pairs: Vec<String> = tokens
                .windows(2)
                .filter(|w| w[0].ends_with(')') && w[0][..w[0].len() - 1].parse::<u32>().is_ok())
                .map(|w| format!("{} {}", w[0], w[1]))
                .collect();
            assert!(
                !pairs.is_empty(),
                "kill -l must write `NUMBER) NAME` pairs such as ` 9) SIGKILL`; it wrote {out:?}"
            );
            ipclab_support::assert_snapshot!("task3_kill_l_lists_every_signal", pairs.join("\n"));
        },
    );
}

/// Waits until each of `pids` (children of the test) has ended, without reaping them: the
/// judge's next snapshot shows them as zombies, with their wait status.
fn ended_unreaped(pids: &[i32]) {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    for &pid in pids {
        waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        )
        .expect("waitid for a signalled process");
    }
}

/// How the zombie `pid` ended, as the kernel shows it to the judge (its wait status).
#[track_caller]
fn exit_status(snap: &Snapshot, pid: i32) -> i32 {
    process(snap, pid).info.exit_status.unwrap_or_else(|| {
        panic!(
            "process {pid} is not a zombie at {:?}: the kernel shows no wait status",
            snap.label
        )
    })
}

/// A wait status in words.
fn how_it_ended(status: i32) -> String {
    match status & 0x7f {
        0 => format!("exited with code {}", (status >> 8) & 0xff),
        n => match Signal::try_from(n) {
            Ok(signal) => format!("was killed by {}", signal.as_str()),
            Err(_) => format!("was killed by signal {n}"),
        },
    }
}

#[rstest]
#[case::by_number("-9", Signal::SIGKILL)]
#[case::by_name("-TERM", Signal::SIGTERM)]
#[case::with_sig_prefix("-SIGUSR1", Signal::SIGUSR1)]
#[case::in_lower_case("-int", Signal::SIGINT)]
#[case::default_is_term("", Signal::SIGTERM)]
fn task3_kill_sends_the_named_signal(#[case] spec: &str, #[case] expected: Signal) {
    isolated(KILL_HINT, || {
        let (mut target, _keep_blocked) = blocked_cat(|_| {});
        let pid = target.id().to_string();
        let argv: Vec<&str> = ["kill", spec, &pid]
            .into_iter()
            .filter(|w| !w.is_empty())
            .collect();
        let (result, _) = builtin(&argv);
        ended_unreaped(&[target.id() as i32]);
        checkpoint("target ended");
        target.wait().expect("wait for the target");
        (argv.join(" "), result, target.id() as i32)
    })
    .judge(
        |(argv, result, pid): (String, Result<seen::Builtin, seen::ShellError>, i32), seen| {
            assert!(
                matches!(result, Ok(seen::Builtin::Continue)),
                "`{argv}`: expected Ok(BuiltinOutcome::Continue), got {result:?}"
            );
            let status = exit_status(seen.at("target ended"), pid);
            assert!(
                status & 0x7f == expected as i32,
                "`{argv}`: the kernel says the target {}, not by {}",
                how_it_ended(status),
                expected.as_str()
            );
        },
    );
}

#[test]
fn task3_kill_with_a_negative_pid_signals_a_process_group() {
    isolated(KILL_HINT, || {
        let (mut leader, _in1) = blocked_cat(|c| {
            c.process_group(0);
        });
        let group = leader.id() as i32;
        let (mut member, _in2) = blocked_cat(|c| {
            c.process_group(group);
        });
        checkpoint("group formed");
        let (result, _) = builtin(&["kill", "-TERM", &format!("-{group}")]);
        let pids = [leader.id() as i32, member.id() as i32];
        ended_unreaped(&pids);
        checkpoint("group ended");
        for child in [&mut leader, &mut member] {
            child.wait().expect("wait");
        }
        (group, result, pids)
    })
    .judge(
        |(group, result, pids): (i32, Result<seen::Builtin, seen::ShellError>, [i32; 2]), seen| {
            let formed = seen.at("group formed");
            let members: Vec<i32> = formed
                .descendants()
                .iter()
                .filter(|p| p.info.pgid.as_raw() == group)
                .map(|p| p.pid())
                .collect();
            assert_eq!(members.len(), 2, "the test's two cats form group {group}");
            assert!(
                matches!(result, Ok(seen::Builtin::Continue)),
                "`kill -TERM -{group}`: expected Ok(BuiltinOutcome::Continue), got {result:?}"
            );
            for (who, pid) in ["leader", "other member"].into_iter().zip(pids) {
                let status = exit_status(seen.at("group ended"), pid);
                assert!(
                    status & 0x7f == libc::SIGTERM,
                    "`kill -TERM -{group}`: the group's {who} must get SIGTERM (kill(2) with a \
                     negative pid signals the whole process group); the kernel says it {}",
                    how_it_ended(status)
                );
            }
        },
    );
}

#[rstest]
#[case::unknown_signal(&["kill", "-NOPE", "1"])]
#[case::no_such_process(&["kill", "-TERM", "2147483647"])]
#[case::no_pid(&["kill", "-TERM"])]
#[case::pid_not_a_number(&["kill", "-TERM", "init"])]
fn task3_kill_mistakes_are_errors(#[case] argv: &[&str]) {
    isolated(NEVER_RETURNED_HINT, || {
        let mut out = Vec::new();
        let result = run_builtin(&words(argv), &mut out);
        // The error's text, as the shell prints it after `ipclab: `.
        let text = result.as_ref().err().map(|e| e.to_string());
        (seen::builtin(&result), text)
    })
    .judge(
        |(result, text): (Result<seen::Builtin, seen::ShellError>, Option<String>), _| {
            let line = argv.join(" ");
            let usage = |result: &Result<seen::Builtin, seen::ShellError>| {
                matches!(result, Err(seen::ShellError::Usage { builtin }) if builtin == "kill")
            };
            match argv {
                [_, "-NOPE", ..] => assert!(
                    matches!(&result, Err(seen::ShellError::UnknownSignal(name)) if name.contains("NOPE")),
                    "`{line}`: a signal name that does not exist must fail with \
                     Err(ShellError::UnknownSignal(\"NOPE\")), got {result:?}"
                ),
                [.., "2147483647"] => assert!(
                    matches!(result, Err(seen::ShellError::Kill { errno }) if errno == Errno::ESRCH as i32),
                    "`{line}`: kill(2) fails with ESRCH for a process that does not exist, which \
                     must come back as Err(ShellError::Kill {{ errno: ESRCH, .. }}), got {result:?}"
                ),
                [_, _] => {
                    assert!(
                        usage(&result),
                        "`{line}` (no PID) must fail with Err(ShellError::Usage {{ builtin: \
                         \"kill\", .. }}), got {result:?}"
                    );
                    assert_eq!(
                        text.as_deref(),
                        Some(KILL_USAGE),
                        "`{line}` (no PID): the shell must print exactly the line `ipclab: \
                         {KILL_USAGE}` (the statement's usage line), so the error's text must be \
                         {KILL_USAGE:?}"
                    );
                }
                _ => assert!(
                    usage(&result),
                    "`{line}`: a PID that is not a number must fail with \
                     Err(ShellError::Usage {{ builtin: \"kill\", .. }}), got {result:?}"
                ),
            }
        },
    );
}

/// What `kill` with no PID says (after the shell's `ipclab: `), as the statement gives it.
const KILL_USAGE: &str = "kill: usage: kill -l | kill [-SIGNAL] PID...";

#[test]
fn task3_builtins_in_the_shell() {
    isolated(SCRIPT_HINT, || {
        let dir = std::env::temp_dir();
        fs::create_dir(dir.join("sub")).expect("mkdir sub");
        let script = "cd sub\npwd\ncd nowhere\nkill -NOPE 1\nkill -9\nexit 4\necho not reached\n";
        run_script(&dir, script)
    })
    .judge(|run: Run, seen| {
        run.assert_no_panic();
        let transcript = run
            .transcript
            .replace(&canonical(&seen.scratch).display().to_string(), "[tmp]");
        ipclab_support::assert_snapshot!("task3_builtins_in_the_shell", transcript);
        assert_eq!(run.code, Some(4), "`exit 4` ends the shell with code 4");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: job control on a terminal.

/// What the test saw of a session on the terminal: the shell's pid, the terminal's foreground
/// group at the moments the test names, the transcript, and how the shell ended.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Session {
    shell: i32,
    transcript: String,
    success: Option<bool>,
}

impl Session {
    fn start(pty: &Pty) -> Session {
        Session {
            shell: pty.pid().as_raw(),
            ..Session::default()
        }
    }

    /// Lets the judge look at every process, the terminal's foreground group included
    /// (checkpoint `moment`).
    fn look(&self, moment: &str) {
        checkpoint(moment);
    }

    fn end(mut self, pty: &Pty) -> Session {
        self.transcript = pty.transcript();
        self
    }

    /// The terminal's foreground process group at `moment`, as the judge saw it: the `tpgid`
    /// the kernel shows for the shell, whose controlling terminal it is (what tcgetpgrp says).
    #[track_caller]
    fn foreground_at(&self, seen: &Witness, moment: &str) -> i32 {
        process(seen.at(moment), self.shell).terminal_foreground
    }

    /// The judge's check that the transcript shows `needle`, as the test waited for it.
    #[track_caller]
    fn assert_shows(&self, needle: &str, waiting_for: &str) {
        assert!(
            self.transcript.contains(needle),
            "{waiting_for}: the terminal never showed {needle:?}; it shows:\n{}",
            self.transcript
        );
    }
}

#[test]
fn task4_the_shell_takes_the_terminal_and_ignores_its_signals() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let session = Session::start(&pty);
        session.look("at the prompt");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file (Ctrl+D at the prompt)");
        session.end(&pty)
    })
    .judge(|session: Session, seen| {
        let shell = process(seen.at("at the prompt"), session.shell);
        assert_eq!(
            shell.info.pgid.as_raw(),
            session.shell,
            "the shell leads a process group of its own"
        );
        assert_eq!(
            session.foreground_at(seen, "at the prompt"),
            shell.info.pgid.as_raw(),
            "at the prompt the shell's group must be the terminal's foreground group (tcsetpgrp)"
        );
        let signals = shell.signals;
        for sig in [Signal::SIGINT, Signal::SIGTSTP, Signal::SIGTTOU] {
            assert!(
                signals.ignored.contains(sig) || signals.caught.contains(sig),
                "the shell must not die or stop on {}: ignore it (the kernel shows it in neither \
                 SigIgn nor SigCgt of /proc/<pid>/status)",
                sig.as_str()
            );
        }
        assert!(
            seen.end.process(session.shell).is_none(),
            "the shell exited"
        );
    });
}

#[test]
fn task4_a_pipeline_is_one_process_group_in_the_foreground() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let session = Session::start(&pty);
        pty.send_line("cat | cat");
        pty.send_line("ping");
        pty.expect("ping\n", "`cat | cat` passing a line typed on the terminal");
        // Both cats are running now (the first read the terminal, the second wrote it).
        session.look("job running");
        pty.send(b"\x04");
        pty.expect(
            PROMPT,
            "the prompt after the job ended (Ctrl+D ends cat's input)",
        );
        session.look("job ended");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
        session.end(&pty)
    })
    .judge(|session: Session, seen| {
        let running = seen.at("job running");
        let stages: Vec<_> = jobs_of(running, session.shell)
            .into_iter()
            .filter(|p| p.info.comm == "cat")
            .map(|p| p.info.clone())
            .collect();
        assert_eq!(stages.len(), 2, "expected the two cats, found {stages:?}");
        let group = stages[0].pgid;
        assert!(
            stages.iter().all(|p| p.pgid == group),
            "the stages of one pipeline must share one process group: {stages:?}"
        );
        assert_ne!(
            group.as_raw(),
            session.shell,
            "the job's process group must not be the shell's, or Ctrl+C would reach the shell too"
        );
        assert!(
            stages.iter().any(|p| p.pid == group),
            "the group is led by one of the stages (the first: setpgid(0, 0))"
        );
        assert_eq!(
            session.foreground_at(seen, "job running"),
            group.as_raw(),
            "the running job's group must be the terminal's foreground group (tcsetpgrp)"
        );
        assert_eq!(
            session.foreground_at(seen, "job ended"),
            session.shell,
            "when the job ends, the shell must take the terminal back (tcsetpgrp)"
        );
        seen.at("job ended")
            .assert_no_zombies("(the test's own children)");
    });
}

#[test]
fn task4_ctrl_c_ends_the_job_not_the_shell() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let mut session = Session::start(&pty);
        pty.send_line("cat");
        pty.send_line("ping");
        pty.expect("ping\n", "cat repeating a line typed on the terminal");
        pty.send(b"\x03");
        pty.expect(
            "killed by SIGINT",
            "the shell reporting that Ctrl+C killed the job",
        );
        pty.expect(PROMPT, "the next prompt: the shell survives Ctrl+C");
        session.look("after Ctrl+C");
        pty.send_line("echo still 'here'");
        pty.expect("still here\n", "the shell running a command after Ctrl+C");
        pty.send(b"\x04");
        let status = pty.wait("the shell exiting at end of file");
        session.success = Some(status.success());
        session.end(&pty)
    })
    .judge(|session: Session, seen| {
        session.assert_shows(
            "killed by SIGINT",
            "the shell reporting that Ctrl+C killed the job",
        );
        let shell = process(seen.at("after Ctrl+C"), session.shell);
        assert!(!shell.info.is_zombie(), "the shell must not die of Ctrl+C");
        session.assert_shows("still here\n", "the shell running a command after Ctrl+C");
        assert_eq!(session.success, Some(true), "the shell ended with an error");
    });
}

#[test]
fn task4_ctrl_z_stops_the_job_and_fg_resumes_it() {
    isolated_for(Deadline::secs(15), JOB_HINT, || {
        let mut pty = interactive_shell();
        let session = Session::start(&pty);
        pty.send_line("cat");
        pty.send_line("ping");
        pty.expect("ping\n", "cat repeating a line typed on the terminal");
        session.look("cat running");
        pty.send(b"\x1a");
        pty.expect(
            "Stopped",
            "the shell reporting that Ctrl+Z stopped the job (waitpid with WUNTRACED)",
        );
        pty.expect(PROMPT, "the prompt while the job is stopped");
        session.look("job stopped");
        pty.send_line("fg");
        pty.send_line("pong");
        pty.expect(
            "pong\n",
            "cat running again after fg (SIGCONT) and reading the terminal",
        );
        session.look("job resumed");
        pty.send(b"\x04");
        pty.expect(PROMPT, "the prompt after the resumed job ended");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
        session.end(&pty)
    })
    .judge(|session: Session, seen| {
        let cat = jobs_of(seen.at("cat running"), session.shell)
            .into_iter()
            .find(|p| p.info.comm == "cat")
            .expect("the running cat")
            .info
            .clone();
        let cat_pid = cat.pid.as_raw();
        assert!(
            process(seen.at("job stopped"), cat_pid).info.is_stopped(),
            "the kernel must show the stopped job in state T (/proc/<pid>/stat)"
        );
        assert_eq!(
            session.foreground_at(seen, "job stopped"),
            session.shell,
            "while the job is stopped, the shell must own the terminal again"
        );
        assert!(
            !process(seen.at("job resumed"), cat_pid).info.is_stopped(),
            "after fg the job must run again"
        );
        assert_eq!(
            session.foreground_at(seen, "job resumed"),
            cat.pgid.as_raw(),
            "fg must give the terminal back to the job (tcsetpgrp) before continuing it"
        );
        ipclab_support::assert_snapshot!("task4_ctrl_z_and_fg_transcript", session.transcript);
    });
}

#[test]
fn task4_fg_without_a_stopped_job_is_an_error() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let session = Session::start(&pty);
        pty.send_line("fg");
        pty.expect(
            "no stopped job",
            "fg reporting that there is nothing to resume",
        );
        pty.expect(PROMPT, "the prompt after fg failed");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
        session.end(&pty)
    })
    .judge(|session: Session, _| {
        session.assert_shows(
            "no stopped job",
            "fg reporting that there is nothing to resume",
        );
    });
}

#[test]
fn task4_exit_ends_stopped_jobs_and_leaves_no_zombie() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let session = Session::start(&pty);
        pty.send_line("cat | cat");
        pty.send_line("ping");
        pty.expect("ping\n", "`cat | cat` passing a line typed on the terminal");
        pty.send(b"\x1a");
        pty.expect("Stopped", "the shell reporting that Ctrl+Z stopped the job");
        pty.expect(PROMPT, "the prompt while the job is stopped");
        session.look("job stopped");
        pty.send_line("exit");
        pty.wait("the shell exiting with a stopped job");
        checkpoint("shell gone");
        session.end(&pty)
    })
    .judge(|session: Session, seen| {
        session.assert_shows("Stopped", "the shell reporting that Ctrl+Z stopped the job");
        let stopped = jobs_of(seen.at("job stopped"), session.shell);
        assert!(
            stopped.iter().any(|p| p.info.is_stopped()),
            "the kernel shows no stopped process of the job after Ctrl+Z: {:?}",
            stopped.iter().map(|p| &p.info).collect::<Vec<_>>()
        );
        // The shell's orphans would have been handed to the test process (a child subreaper).
        let left: Vec<_> = seen
            .at("shell gone")
            .descendants()
            .iter()
            .map(|p| p.info.clone())
            .collect();
        assert!(
            left.is_empty(),
            "processes of the stopped job outlived the shell: {left:?}. Before exiting, send \
             SIGHUP and SIGCONT to each stopped job's process group and reap its processes \
             (JobControl::end_jobs)."
        );
    });
}
