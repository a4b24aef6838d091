//! Reading `strace -f -tt -T -yy` output into whole records.
//!
//! With `-f`, strace interleaves the tasks of every process: a call that blocks is printed as
//! `NAME(args <unfinished ...>` when it starts and finished by a later `<... NAME resumed>rest`
//! line of the same task. This module joins those halves, so that the model above it sees one
//! record per call with its start, its end (none when the task died inside it) and its result.

use std::collections::HashMap;
use std::fmt;

/// Microseconds since midnight, as strace's `-tt` prints them.
pub type Micros = u64;

/// One call, joined from its halves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    /// The arguments, split at top-level commas, as strace printed them.
    pub args: Vec<String>,
    pub result: Outcome,
    /// When the call was entered.
    pub start: Micros,
    /// When it returned; `None` when the task ended inside it (killed, or the trace ended).
    pub end: Option<Micros>,
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A value (fd, pid, byte count), with strace's `-yy` decoding of a returned descriptor.
    Value { value: i64, decoded: Option<String> },
    /// `-1 ENAME (description)`, or a restart code such as `ERESTARTSYS`.
    Error { errno: String },
    /// `= ?`: the call did not return (exit_group, or a task killed inside a call).
    None,
    /// Anything else strace printed (`0x7f…`, a value we do not read).
    Other(String),
}

impl Outcome {
    pub fn value(&self) -> Option<i64> {
        match self {
            Outcome::Value { value, .. } => Some(*value),
            _ => None,
        }
    }

    pub fn errno(&self) -> Option<&str> {
        match self {
            Outcome::Error { errno } => Some(errno),
            _ => None,
        }
    }
}

/// One record of the trace, with the task (thread id) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub tid: i32,
    pub at: Micros,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Call(Call),
    /// `--- SIGCHLD {si_signo=…, si_pid=…} ---`: a signal delivered to the task.
    Signal {
        signal: String,
        sender: Option<i32>,
    },
    /// `+++ exited with N +++`
    Exited {
        code: i32,
    },
    /// `+++ killed by SIGKILL +++`
    Killed {
        signal: String,
    },
}

/// A line strace wrote that this parser does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub text: String,
    pub why: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} of the strace output: {} ({})",
            self.line, self.why, self.text
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole `strace -f -tt -T -yy -o FILE` output. Records come out in the order of
/// their start (a call resumed later is placed where it began).
pub fn parse(text: &str) -> Result<Vec<Record>, ParseError> {
    let mut records: Vec<Record> = Vec::new();
    // Per task: the index in `records` of its unfinished call, and the arguments so far.
    let mut pending: HashMap<i32, (usize, String)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let err = |why| ParseError {
            line: n + 1,
            text: line.to_owned(),
            why,
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.splitn(2, char::is_whitespace);
        let tid: i32 = match words.next().and_then(|w| w.parse().ok()) {
            Some(tid) => tid,
            // strace's own notes ("strace: Process 12 attached") carry no pid first.
            None => continue,
        };
        let rest = words.next().unwrap_or("").trim_start();
        let (stamp, rest) = rest.split_once(' ').ok_or_else(|| err("no timestamp"))?;
        let at = parse_time(stamp).ok_or_else(|| err("a timestamp that is not HH:MM:SS.micros"))?;
        let rest = rest.trim_start();
        if let Some(signal) = rest.strip_prefix("--- ") {
            let body = signal.trim_end_matches(" ---");
            if body.starts_with("stopped by ") {
                continue;
            }
            let (signal, info) = body.split_once(' ').unwrap_or((body, ""));
            records.push(Record {
                tid,
                at,
                what: What::Signal {
                    signal: signal.to_owned(),
                    sender: field(info, "si_pid").and_then(|v| v.parse().ok()),
                },
            });
        } else if let Some(end) = rest.strip_prefix("+++ ") {
            let end = end.trim_end_matches(" +++");
            let what = if let Some(code) = end.strip_prefix("exited with ") {
                What::Exited {
                    code: code.trim().parse().map_err(|_| err("an exit code"))?,
                }
            } else if let Some(signal) = end.strip_prefix("killed by ") {
                What::Killed {
                    signal: signal.split_whitespace().next().unwrap_or("").to_owned(),
                }
            } else {
                // `superseded by execve in pid N`: the task lives on under another id.
                continue;
            };
            records.push(Record { tid, at, what });
        } else if let Some(resumed) = rest.strip_prefix("<... ") {
            let (_, tail) = resumed
                .split_once(" resumed>")
                .ok_or_else(|| err("a `<...` line without `resumed>`"))?;
            let Some((index, mut args)) = pending.remove(&tid) else {
                // The call began before the trace did (strace attached mid-call).
                continue;
            };
            let tail = tail.trim_start_matches(" <unfinished ...>");
            if let Some(still) = tail.strip_suffix(" <unfinished ...>") {
                // Resumed and at once suspended again (e.g. by a signal): keep collecting.
                args.push_str(still);
                pending.insert(tid, (index, args));
                continue;
            }
            args.push_str(tail);
            let What::Call(call) = &mut records[index].what else {
                unreachable!("pending entries point at calls")
            };
            finish(call, &args, Some(at)).map_err(err)?;
        } else if let Some((name, body)) = rest.split_once('(') {
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err("neither a call, a signal nor an exit"));
            }
            let mut call = Call {
                name: name.to_owned(),
                args: Vec::new(),
                result: Outcome::None,
                start: at,
                end: None,
            };
            if let Some(partial) = body.strip_suffix(" <unfinished ...>") {
                pending.insert(tid, (records.len(), partial.to_owned()));
                call.args = split_args(partial);
            } else {
                finish(&mut call, body, None).map_err(err)?;
            }
            records.push(Record {
                tid,
                at,
                what: What::Call(call),
            });
        } else {
            return Err(err("neither a call, a signal nor an exit"));
        }
    }
    Ok(records)
}

/// Fills in a call from `args) = result <duration>`. `resumed_at`: the time of the resumed line,
/// the end when strace printed no duration.
fn finish(call: &mut Call, text: &str, resumed_at: Option<Micros>) -> Result<(), &'static str> {
    let close = closing_paren(text).ok_or("a call without its closing parenthesis")?;
    call.args = split_args(&text[..close]);
    let after = text[close + 1..].trim();
    let result = after
        .strip_prefix('=')
        .ok_or("a call without `= result`")?
        .trim();
    let (result, duration) = match result.rsplit_once(" <") {
        Some((value, dur)) => match dur.strip_suffix('>').and_then(|d| d.parse::<f64>().ok()) {
            Some(secs) => (value.trim(), Some((secs * 1e6).round() as Micros)),
            None => (result, None),
        },
        None => (result, None),
    };
    call.result = outcome(result);
    call.end = match (&call.result, duration) {
        (Outcome::None, _) => None,
        (_, Some(d)) => Some(call.start + d),
        (_, None) => resumed_at.or(Some(call.start)),
    };
    Ok(())
}

fn outcome(text: &str) -> Outcome {
    if text == "?" {
        return Outcome::None;
    }
    let (value, rest) = split_value(text);
    if let Some(errno) = rest
        .split_whitespace()
        .next()
        .filter(|w| w.starts_with('E') && w.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Outcome::Error {
            errno: errno.to_owned(),
        };
    }
    let (number, decoded) = match value.split_once('<') {
        Some((n, d)) => {
            let d = match d.strip_suffix(">(deleted)") {
                Some(path) => format!("{path} (deleted)"),
                None => d.strip_suffix('>').unwrap_or(d).to_owned(),
            };
            (n, Some(d))
        }
        None => (value, None),
    };
    match number.parse() {
        Ok(value) => Outcome::Value { value, decoded },
        Err(_) => Outcome::Other(text.to_owned()),
    }
}

/// `3</a b<char 1:3>> rest` → (`3</a b<char 1:3>>`, `rest`): the value with its balanced
/// decoding, then whatever follows.
fn split_value(text: &str) -> (&str, &str) {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ' ' if depth <= 0 => return (&text[..i], text[i..].trim_start()),
            _ => {}
        }
    }
    (text, "")
}

/// The index of the `)` that closes the argument list, skipping strings and nested brackets.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut chars = text.char_indices().peekable();
    let mut prev = ' ';
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => skip_string(&mut chars),
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth -= 1,
            '<' => depth += 1,
            '>' if prev != '-' && prev != '=' => depth -= 1,
            _ => {}
        }
        prev = c;
    }
    None
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return,
            _ => {}
        }
    }
}

/// Splits an argument list at the commas that are not inside strings or brackets.
pub fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    let mut prev = ' ';
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => skip_string(&mut chars),
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '>' if prev != '-' && prev != '=' => depth -= 1,
            ',' if depth <= 0 => {
                args.push(text[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        args.push(last.to_owned());
    }
    args
}

/// `HH:MM:SS.micros` → microseconds since midnight.
fn parse_time(stamp: &str) -> Option<Micros> {
    let (hms, micros) = stamp.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let micros: u64 = format!("{micros:0<6}").get(..6)?.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + micros)
}

/// The value of `name=` in a `{a=1, b=2}` signal description.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    let inner = info.trim().trim_start_matches('{').trim_end_matches('}');
    split_args_borrowed(inner).find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

fn split_args_borrowed(text: &str) -> impl Iterator<Item = &str> {
    text.split(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_of_a_blocking_call_are_joined() {
        let text = "\
7  21:27:34.155832 read(3<pipe:[10093]>,  <unfinished ...>
8  21:27:34.155900 close(4<pipe:[10093]>) = 0 <0.000010>
7  21:27:34.160000 <... read resumed>\"hello\", 64) = 5 <0.004168>
";
        let records = parse(text).unwrap();
        assert_eq!(records.len(), 2);
        let What::Call(read) = &records[0].what else {
            panic!()
        };
        assert_eq!(read.name, "read");
        assert_eq!(read.args, ["3<pipe:[10093]>", "\"hello\"", "64"]);
        assert_eq!(read.result.value(), Some(5));
        assert_eq!(read.end, Some(read.start + 4168));
    }

    #[test]
    fn a_task_killed_inside_a_call_has_no_end() {
        let text = "\
9  21:27:34.155832 read(3<pipe:[10093]>,  <unfinished ...>
9  21:27:35.155017 <... read resumed> <unfinished ...>) = ?
9  21:27:35.155168 +++ killed by SIGKILL +++
";
        let records = parse(text).unwrap();
        let What::Call(read) = &records[0].what else {
            panic!()
        };
        assert_eq!(read.end, None);
        assert_eq!(read.args, ["3<pipe:[10093]>"]);
        assert_eq!(
            records[1].what,
            What::Killed {
                signal: "SIGKILL".into()
            }
        );
    }

    #[test]
    fn results_are_read_with_their_decoding_and_errors() {
        assert_eq!(
            outcome("1</dev/null<char 1:3>>"),
            Outcome::Value {
                value: 1,
                decoded: Some("/dev/null<char 1:3>".into())
            }
        );
        assert_eq!(
            outcome("-1 EPIPE (Broken pipe)"),
            Outcome::Error {
                errno: "EPIPE".into()
            }
        );
        assert_eq!(
            outcome("? ERESTARTSYS (To be restarted if SA_RESTART is set)"),
            Outcome::Error {
                errno: "ERESTARTSYS".into()
            }
        );
        assert_eq!(outcome("?"), Outcome::None);
        assert_eq!(
            outcome("4</tmp/x/#1016>(deleted)"),
            Outcome::Value {
                value: 4,
                decoded: Some("/tmp/x/#1016 (deleted)".into())
            }
        );
        assert_eq!(
            split_args("[3<UNIX-STREAM:[1->2]>, 4<UNIX-STREAM:[2->1]>], 0, \"a,b\\\"\""),
            [
                "[3<UNIX-STREAM:[1->2]>, 4<UNIX-STREAM:[2->1]>]",
                "0",
                "\"a,b\\\"\""
            ]
        );
    }

    #[test]
    fn signals_name_their_sender() {
        let text = "5  00:00:01.5 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=6, si_uid=0} ---\n";
        let records = parse(text).unwrap();
        assert_eq!(records[0].at, 1_500_000);
        assert_eq!(
            records[0].what,
            What::Signal {
                signal: "SIGCHLD".into(),
                sender: Some(6)
            }
        );
    }
}
