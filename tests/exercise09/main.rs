//! The graded suite of exercise 09: a small shell.
//!
//! Each test grades one behaviour of one task (`taskN_…`). Task 1 (the parser) is pure and runs
//! in the test process; everything that forks, waits or touches the terminal runs in a process
//! of its own with a deadline (`isolated`), whose failure message names the usual cause of a hang.
//!
//! The shell binary `ex09-shell` is driven two ways: through plain files and pipes for what needs
//! no terminal (its transcript, standard output and error merged, is compared with a reviewed
//! snapshot), and through a pseudo-terminal for job control, where Ctrl+C and Ctrl+Z are bytes
//! typed on the terminal and the kernel (`/proc`, `tcgetpgrp`) says who is in which process group
//! and who is stopped.

use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use exercise09::*;
use ipclab_support::procfs::{self, FdSnapshot, ProcessInfo};
use ipclab_support::pty::Pty;
use ipclab_support::{isolated, isolated_for, Deadline};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{getpid, Pid};
use rstest::rstest;

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

/// What the shell printed for a script (standard output and error, in the order written) and
/// how it ended.
struct Run {
    transcript: String,
    code: Option<i32>,
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
    if transcript.contains("panicked at") {
        panic!("the shell panicked while running the script:\n{transcript}");
    }
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

/// The processes the shell started that are still in the process table.
fn jobs_of(shell: Pid) -> Vec<ProcessInfo> {
    procfs::descendants(shell)
}

fn process(pid: Pid) -> ProcessInfo {
    procfs::process(pid)
        .expect("read /proc")
        .unwrap_or_else(|| panic!("process {pid} is gone"))
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).expect("canonicalize")
}

// ---------------------------------------------------------------------------------------------
// Task 1: parsing a line.

#[test]
fn task1_words_are_separated_by_blanks() {
    isolated(NEVER_RETURNED_HINT, || {
        let parsed = parse("ls -l   /tmp\t-a").expect("a valid line");
        assert_eq!(
            parsed,
            pipeline(vec![cmd(&["ls", "-l", "/tmp", "-a"])]),
            "spaces and tabs separate words, however many there are"
        );
    });
}

#[rstest]
#[case::empty("")]
#[case::spaces("    ")]
#[case::tab("\t")]
fn task1_a_blank_line_is_an_empty_pipeline(#[case] line: &str) {
    isolated(NEVER_RETURNED_HINT, || {
        assert_eq!(
            parse(line),
            Ok(Pipeline::default()),
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
    isolated(NEVER_RETURNED_HINT, || {
        let parsed = parse(line).unwrap_or_else(|e| panic!("{line:?} is a valid line, got {e:?}"));
        assert_eq!(
            parsed,
            pipeline(vec![cmd(expected)]),
            "quotes group characters into one word and are removed; a backslash makes the next \
             character ordinary"
        );
    });
}

#[rstest]
#[case::spaced("ps auxf | grep mysql | wc -l")]
#[case::unspaced("ps auxf|grep mysql|wc -l")]
fn task1_pipes_separate_commands(#[case] line: &str) {
    isolated(NEVER_RETURNED_HINT, || {
        assert_eq!(
            parse(line).expect("a valid line"),
            pipeline(vec![
                cmd(&["ps", "auxf"]),
                cmd(&["grep", "mysql"]),
                cmd(&["wc", "-l"])
            ]),
            "an unquoted | ends one command and starts the next, with or without spaces around it"
        );
    });
}

#[test]
fn task1_pipelines_have_any_length() {
    isolated(NEVER_RETURNED_HINT, || {
        let line = ["cat"; 12].join(" | ");
        let parsed = parse(&line).expect("a valid line");
        assert_eq!(parsed, pipeline(vec![cmd(&["cat"]); 12]));
    });
}

#[rstest]
#[case::at_the_end("sort < in.txt", cmd_with(&["sort"], Some("in.txt"), None))]
#[case::first("> out.txt echo hi", cmd_with(&["echo", "hi"], None, Some("out.txt")))]
#[case::unspaced("cat<in>out", cmd_with(&["cat"], Some("in"), Some("out")))]
#[case::quoted_name("wc -l > 'my file'", cmd_with(&["wc", "-l"], None, Some("my file")))]
fn task1_redirections_belong_to_their_command(#[case] line: &str, #[case] expected: Command) {
    isolated(NEVER_RETURNED_HINT, || {
        assert_eq!(
            parse(line).expect("a valid line"),
            pipeline(vec![expected]),
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
        let parsed =
            parse("ps auxf | grep 'my sql' | wc -l > \"count file.txt\"").expect("a valid line");
        insta::assert_debug_snapshot!("task1_the_notes_pipeline", parsed);
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
    isolated(NEVER_RETURNED_HINT, || {
        assert_eq!(
            parse(line),
            Err(expected.clone()),
            "{line:?} is not a valid line: parse must say why ({expected})"
        );
    });
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
    isolated(PIPELINE_HINT, || {
        let statuses = run_pipeline(&pipeline(vec![cmd(argv)])).expect("run_pipeline");
        assert_eq!(
            statuses,
            vec![expected],
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
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.txt");
        // echo x | sed s/$/y/ | sed s/$/y/ | … > out.txt
        let mut commands = vec![cmd(&["echo", "x"])];
        commands.extend((1..stages).map(|_| cmd(&["sed", "s/$/y/"])));
        commands.last_mut().unwrap().stdout = Some(out.clone());
        let statuses = run_pipeline(&pipeline(commands)).expect("run_pipeline");
        assert_eq!(
            statuses,
            vec![Status::Exited(0); stages],
            "one status per stage, in pipeline order"
        );
        let expected = format!("x{}\n", "y".repeat(stages - 1));
        assert_eq!(
            fs::read_to_string(&out).expect("read out.txt"),
            expected,
            "every sed added one y: each stage's output must be the next stage's input"
        );
    });
}

#[test]
fn task2_stages_are_joined_by_pipes_and_redirected_to_files() {
    isolated(PIPELINE_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
        fs::write(&input, "").expect("create in.txt");
        // Each stage asks the kernel what its standard streams are, then passes on what the
        // previous stages said.
        let report = ["sh", "-c", "readlink /proc/$$/fd/0 /proc/$$/fd/1; cat"];
        let mut commands = vec![cmd(&report), cmd(&report), cmd(&report)];
        commands[0].stdin = Some(input.clone());
        commands[2].stdout = Some(output.clone());
        run_pipeline(&pipeline(commands)).expect("run_pipeline");
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
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("count.txt");
        let mut count = cmd(&["wc", "-c"]);
        count.stdout = Some(out.clone());
        // 1 MiB is sixteen times what a pipe holds: head can only finish if wc reads meanwhile.
        let statuses = run_pipeline(&pipeline(vec![
            cmd(&["head", "-c", "1048576", "/dev/zero"]),
            count,
        ]))
        .expect("run_pipeline");
        assert_eq!(statuses, vec![Status::Exited(0); 2]);
        assert_eq!(fs::read_to_string(&out).expect("read").trim(), "1048576");
    });
}

#[test]
fn task2_a_writer_whose_reader_left_dies_of_sigpipe() {
    isolated(PIPELINE_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut head = cmd(&["head", "-n", "1"]);
        head.stdout = Some(dir.path().join("out.txt"));
        let statuses = run_pipeline(&pipeline(vec![cmd(&["yes"]), head])).expect("run_pipeline");
        assert_eq!(
            statuses,
            vec![Status::Signaled(Signal::SIGPIPE), Status::Exited(0)],
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
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, new) = (dir.path().join("old.txt"), dir.path().join("new.txt"));
        fs::write(&old, "a much longer text that was here before\n").expect("write old.txt");
        for path in [&old, &new] {
            let mut echo = cmd(&["echo", "short"]);
            echo.stdout = Some(path.clone());
            run_pipeline(&pipeline(vec![echo])).expect("run_pipeline");
            assert_eq!(
                fs::read_to_string(path).expect("read"),
                "short\n",
                "`> {}` must create the file if needed and truncate it (O_CREAT | O_TRUNC)",
                path.file_name().unwrap().to_string_lossy()
            );
        }
    });
}

#[test]
fn task2_a_missing_input_file_starts_nothing() {
    isolated(PIPELINE_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.txt");
        let mut cat = cmd(&["cat"]);
        cat.stdin = Some(missing.clone());
        let before = FdSnapshot::take();
        match run_pipeline(&pipeline(vec![cat, cmd(&["wc", "-l"])])) {
            Err(ShellError::Redirect { path, errno }) => {
                assert_eq!((path, errno), (missing, Errno::ENOENT));
            }
            other => panic!(
                "expected Err(ShellError::Redirect {{ path: …/missing.txt, errno: ENOENT }}), got \
                 {other:?}"
            ),
        }
        before.assert_no_leaks("Even when a redirection fails, every file and pipe opened for the pipeline must be closed.");
        let started = procfs::descendants(getpid());
        assert!(
            started.is_empty() && procfs::zombie_children(getpid()).is_empty(),
            "open the redirections before forking anything: processes were started ({started:?})"
        );
    });
}

#[test]
fn task2_a_missing_program_exits_127_and_the_rest_runs() {
    isolated(PIPELINE_HINT, || {
        let statuses = run_pipeline(&pipeline(vec![
            cmd(&["ipclab-no-such-command", "--flag"]),
            cmd(&["wc", "-l"]),
        ]))
        .expect("a missing program is the stage's failure, not run_pipeline's");
        assert_eq!(
            statuses,
            vec![Status::Exited(127), Status::Exited(0)],
            "when exec fails with ENOENT the child prints `ipclab: NAME: command not found` and \
             _exits with 127 (the shell's convention); the other stages run normally"
        );
    });
}

#[test]
fn task2_the_shell_keeps_no_descriptor_and_reaps_every_stage() {
    isolated(PIPELINE_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last = cmd(&["cat"]);
        last.stdout = Some(dir.path().join("out.txt"));
        let before = FdSnapshot::take();
        run_pipeline(&pipeline(vec![cmd(&["echo", "hi"]), cmd(&["cat"]), last]))
            .expect("run_pipeline");
        before.assert_no_leaks(
            "The shell must close its copies of every pipe end and redirection file.",
        );
        procfs::assert_no_zombies("Wait for every stage, not only the last.");
        let left = procfs::descendants(getpid());
        assert!(
            left.is_empty(),
            "stages still running after run_pipeline returned: {left:?}"
        );
    });
}

#[test]
fn task2_the_shell_runs_a_script() {
    isolated(SCRIPT_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
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
        let run = run_script(dir.path(), script);
        insta::assert_snapshot!("task2_the_shell_runs_a_script", run.transcript);
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
        let dir = tempfile::tempdir().expect("tempdir");
        assert_cmd::Command::new(SHELL)
            .current_dir(dir.path())
            .write_stdin("true\nsh -c 'exit 5'\n")
            .assert()
            .code(5)
            .stdout(predicates::str::is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: built-in commands.

fn builtin(argv: &[&str]) -> (Result<BuiltinOutcome, ShellError>, String) {
    let mut out = Vec::new();
    let result = run_builtin(&words(argv), &mut out);
    (result, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn task3_cd_changes_the_shells_own_directory() {
    isolated(SCRIPT_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let (result, _) = builtin(&["cd", dir.path().to_str().unwrap()]);
        assert!(
            matches!(result, Ok(BuiltinOutcome::Continue)),
            "cd DIR: expected Ok(Continue), got {result:?}"
        );
        assert_eq!(
            fs::read_link("/proc/self/cwd").expect("readlink /proc/self/cwd"),
            canonical(dir.path()),
            "the kernel says the process's working directory did not change: cd must chdir() in \
             the shell itself (a child's chdir would change only the child's)"
        );
    });
}

#[test]
fn task3_cd_alone_goes_home() {
    isolated(SCRIPT_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        std::env::set_var("HOME", dir.path());
        let (result, _) = builtin(&["cd"]);
        assert!(
            matches!(result, Ok(BuiltinOutcome::Continue)),
            "got {result:?}"
        );
        assert_eq!(
            fs::read_link("/proc/self/cwd").unwrap(),
            canonical(dir.path()),
            "`cd` without an argument goes to $HOME"
        );
    });
}

#[test]
fn task3_cd_to_a_missing_directory_is_an_error() {
    isolated(SCRIPT_HINT, || {
        let before = fs::read_link("/proc/self/cwd").unwrap();
        let (result, _) = builtin(&["cd", "/ipclab/no/such/dir"]);
        match result {
            Err(ShellError::Cd { dir, errno }) => {
                assert_eq!(
                    (dir, errno),
                    (PathBuf::from("/ipclab/no/such/dir"), Errno::ENOENT)
                )
            }
            other => panic!("expected Err(ShellError::Cd {{ errno: ENOENT, .. }}), got {other:?}"),
        }
        assert_eq!(fs::read_link("/proc/self/cwd").unwrap(), before);
    });
}

#[rstest]
#[case::no_argument(&["exit"], Some(None))]
#[case::code(&["exit", "3"], Some(Some(3)))]
#[case::code_wraps_at_256(&["exit", "257"], Some(Some(1)))]
#[case::not_a_number(&["exit", "three"], None)]
fn task3_exit_says_how_to_end(#[case] argv: &[&str], #[case] expected: Option<Option<i32>>) {
    isolated(NEVER_RETURNED_HINT, || {
        let (result, _) = builtin(argv);
        match (expected, result) {
            (Some(code), Ok(BuiltinOutcome::Exit(got))) => assert_eq!(
                got,
                code,
                "`{}`: Exit(None) means \"the last command's status\"; a code keeps its low 8 bits",
                argv.join(" ")
            ),
            (None, Err(ShellError::Usage { builtin, .. })) => assert_eq!(builtin, "exit"),
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
    isolated(NEVER_RETURNED_HINT, || {
        let (result, out) = builtin(&["kill", "-l"]);
        assert!(
            matches!(result, Ok(BuiltinOutcome::Continue)),
            "got {result:?}"
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
        insta::assert_snapshot!("task3_kill_l_lists_every_signal", pairs.join("\n"));
    });
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
        assert!(
            matches!(result, Ok(BuiltinOutcome::Continue)),
            "`{}`: got {result:?}",
            argv.join(" ")
        );
        let status = target.wait().expect("wait for the target");
        assert_eq!(
            status.signal(),
            Some(expected as i32),
            "`{}`: the kernel says the target ended with {status}, not by {}",
            argv.join(" "),
            expected.as_str()
        );
    });
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
        let (result, _) = builtin(&["kill", "-TERM", &format!("-{group}")]);
        assert!(
            matches!(result, Ok(BuiltinOutcome::Continue)),
            "got {result:?}"
        );
        for (who, child) in [("leader", &mut leader), ("other member", &mut member)] {
            assert_eq!(
                child.wait().expect("wait").signal(),
                Some(libc::SIGTERM),
                "`kill -TERM -{group}`: the group's {who} must get SIGTERM (kill(2) with a \
                 negative pid signals the whole process group)"
            );
        }
    });
}

#[rstest]
#[case::unknown_signal(&["kill", "-NOPE", "1"])]
#[case::no_such_process(&["kill", "-TERM", "2147483647"])]
#[case::no_pid(&["kill", "-TERM"])]
#[case::pid_not_a_number(&["kill", "-TERM", "init"])]
fn task3_kill_mistakes_are_errors(#[case] argv: &[&str]) {
    isolated(NEVER_RETURNED_HINT, || {
        let (result, _) = builtin(argv);
        let ok = match (argv, &result) {
            ([_, "-NOPE", ..], Err(ShellError::UnknownSignal(name))) => name.contains("NOPE"),
            ([.., "2147483647"], Err(ShellError::Kill { errno, .. })) => *errno == Errno::ESRCH,
            (_, Err(ShellError::Usage { builtin, .. })) => *builtin == "kill",
            _ => false,
        };
        assert!(
            ok,
            "`{}` must fail with the error that names the cause (UnknownSignal, Kill with ESRCH, or \
             Usage), got {result:?}",
            argv.join(" ")
        );
    });
}

#[test]
fn task3_builtins_in_the_shell() {
    isolated(SCRIPT_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir sub");
        let script = "cd sub\npwd\ncd nowhere\nkill -NOPE 1\nkill -9\nexit 4\necho not reached\n";
        let run = run_script(dir.path(), script);
        let transcript = run
            .transcript
            .replace(&canonical(dir.path()).display().to_string(), "[tmp]");
        insta::assert_snapshot!("task3_builtins_in_the_shell", transcript);
        assert_eq!(run.code, Some(4), "`exit 4` ends the shell with code 4");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: job control on a terminal.

#[test]
fn task4_the_shell_takes_the_terminal_and_ignores_its_signals() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        let shell = process(pty.pid());
        assert_eq!(
            shell.pgid,
            pty.pid(),
            "the shell leads a process group of its own"
        );
        assert_eq!(
            pty.foreground_group(),
            shell.pgid,
            "at the prompt the shell's group must be the terminal's foreground group (tcsetpgrp)"
        );
        let signals = procfs::signal_state(pty.pid()).expect("read /proc/<pid>/status");
        for sig in [Signal::SIGINT, Signal::SIGTSTP, Signal::SIGTTOU] {
            assert!(
                signals.ignored.contains(sig) || signals.caught.contains(sig),
                "the shell must not die or stop on {}: ignore it (the kernel shows it in neither \
                 SigIgn nor SigCgt of /proc/<pid>/status)",
                sig.as_str()
            );
        }
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file (Ctrl+D at the prompt)");
    });
}

#[test]
fn task4_a_pipeline_is_one_process_group_in_the_foreground() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        pty.send_line("cat | cat");
        pty.send_line("ping");
        pty.expect("ping\n", "`cat | cat` passing a line typed on the terminal");
        // Both cats are running now (the first read the terminal, the second wrote it).
        let stages: Vec<ProcessInfo> = jobs_of(pty.pid())
            .into_iter()
            .filter(|p| p.comm == "cat")
            .collect();
        assert_eq!(stages.len(), 2, "expected the two cats, found {stages:?}");
        let group = stages[0].pgid;
        assert!(
            stages.iter().all(|p| p.pgid == group),
            "the stages of one pipeline must share one process group: {stages:?}"
        );
        assert_ne!(
            group,
            pty.pid(),
            "the job's process group must not be the shell's, or Ctrl+C would reach the shell too"
        );
        assert!(
            stages.iter().any(|p| p.pid == group),
            "the group is led by one of the stages (the first: setpgid(0, 0))"
        );
        assert_eq!(
            pty.foreground_group(),
            group,
            "the running job's group must be the terminal's foreground group (tcsetpgrp)"
        );
        pty.send(b"\x04");
        pty.expect(
            PROMPT,
            "the prompt after the job ended (Ctrl+D ends cat's input)",
        );
        assert_eq!(
            pty.foreground_group(),
            pty.pid(),
            "when the job ends, the shell must take the terminal back (tcsetpgrp)"
        );
        procfs::assert_no_zombies("(the test's own children)");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
    });
}

#[test]
fn task4_ctrl_c_ends_the_job_not_the_shell() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        pty.send_line("cat");
        pty.send_line("ping");
        pty.expect("ping\n", "cat repeating a line typed on the terminal");
        pty.send(b"\x03");
        pty.expect(
            "killed by SIGINT",
            "the shell reporting that Ctrl+C killed the job",
        );
        pty.expect(PROMPT, "the next prompt: the shell survives Ctrl+C");
        let shell = process(pty.pid());
        assert!(!shell.is_zombie(), "the shell must not die of Ctrl+C");
        pty.send_line("echo still 'here'");
        pty.expect("still here\n", "the shell running a command after Ctrl+C");
        pty.send(b"\x04");
        let status = pty.wait("the shell exiting at end of file");
        assert!(status.success(), "the shell ended with {status}");
    });
}

#[test]
fn task4_ctrl_z_stops_the_job_and_fg_resumes_it() {
    isolated_for(Deadline::secs(15), JOB_HINT, || {
        let mut pty = interactive_shell();
        pty.send_line("cat");
        pty.send_line("ping");
        pty.expect("ping\n", "cat repeating a line typed on the terminal");
        let cat = jobs_of(pty.pid())
            .into_iter()
            .find(|p| p.comm == "cat")
            .expect("the running cat");
        pty.send(b"\x1a");
        pty.expect(
            "Stopped",
            "the shell reporting that Ctrl+Z stopped the job (waitpid with WUNTRACED)",
        );
        pty.expect(PROMPT, "the prompt while the job is stopped");
        assert!(
            process(cat.pid).is_stopped(),
            "the kernel must show the stopped job in state T (/proc/<pid>/stat)"
        );
        assert_eq!(
            pty.foreground_group(),
            pty.pid(),
            "while the job is stopped, the shell must own the terminal again"
        );
        pty.send_line("fg");
        pty.send_line("pong");
        pty.expect(
            "pong\n",
            "cat running again after fg (SIGCONT) and reading the terminal",
        );
        assert!(
            !process(cat.pid).is_stopped(),
            "after fg the job must run again"
        );
        assert_eq!(
            pty.foreground_group(),
            cat.pgid,
            "fg must give the terminal back to the job (tcsetpgrp) before continuing it"
        );
        pty.send(b"\x04");
        pty.expect(PROMPT, "the prompt after the resumed job ended");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
        insta::assert_snapshot!("task4_ctrl_z_and_fg_transcript", pty.transcript());
    });
}

#[test]
fn task4_fg_without_a_stopped_job_is_an_error() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        pty.send_line("fg");
        pty.expect(
            "no stopped job",
            "fg reporting that there is nothing to resume",
        );
        pty.expect(PROMPT, "the prompt after fg failed");
        pty.send(b"\x04");
        pty.wait("the shell exiting at end of file");
    });
}

#[test]
fn task4_exit_ends_stopped_jobs_and_leaves_no_zombie() {
    isolated(JOB_HINT, || {
        let mut pty = interactive_shell();
        pty.send_line("cat | cat");
        pty.send_line("ping");
        pty.expect("ping\n", "`cat | cat` passing a line typed on the terminal");
        pty.send(b"\x1a");
        pty.expect("Stopped", "the shell reporting that Ctrl+Z stopped the job");
        pty.expect(PROMPT, "the prompt while the job is stopped");
        pty.send_line("exit");
        pty.wait("the shell exiting with a stopped job");
        // The shell's orphans would have been handed to this process (a child subreaper).
        let left = procfs::descendants(getpid());
        assert!(
            left.is_empty(),
            "processes of the stopped job outlived the shell: {left:?}. Before exiting, send \
             SIGHUP and SIGCONT to each stopped job's process group and reap its processes \
             (JobControl::end_jobs)."
        );
    });
}
