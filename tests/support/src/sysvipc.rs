//! Readers of the kernel's table of System V IPC objects: `/proc/sysvipc/{msg,shm,sem}`.
//!
//! A System V message queue, shared-memory segment or semaphore set belongs to no process: it
//! lives until someone removes it (`IPC_RMID`) or the machine reboots. These tables are the
//! kernel's own list of what exists, so tests use them as the witness: the object exists, with
//! the mode it was created with, holds what was sent, and is gone after the code under test
//! cleaned up.
//!
//! Tests run in parallel threads and other suites create objects of their own, so look up the
//! one object the test made, by its id ([`message_queue`], [`shared_memory`], [`semaphore_set`]),
//! rather than comparing whole tables.
//!
//! ```no_run
//! use ipclab_support::sysvipc;
//! # let id = 0;
//! let row = sysvipc::message_queue(id).expect("the queue exists while in use");
//! assert_eq!(row.mode & 0o777, 0o600);
//! assert_eq!(row.qnum, 2);
//! // ... after removal:
//! assert!(sysvipc::message_queue(id).is_none());
//! ```
//!
//! Each file starts with a header row naming its columns; the parser finds columns by name, so it
//! does not depend on their order or on columns added by newer kernels.

use std::fmt;
use std::fs;

use nix::unistd::Pid;

/// `/proc/sysvipc/msg`: one row per message queue.
pub const MSG_TABLE: &str = "/proc/sysvipc/msg";
/// `/proc/sysvipc/shm`: one row per shared-memory segment.
pub const SHM_TABLE: &str = "/proc/sysvipc/shm";
/// `/proc/sysvipc/sem`: one row per semaphore set.
pub const SEM_TABLE: &str = "/proc/sysvipc/sem";

/// One message queue, as the kernel lists it in `/proc/sysvipc/msg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgQueueRow {
    /// The key it was created with (`IPC_PRIVATE` is 0).
    pub key: i32,
    /// The identifier `msgget` returned (column `msqid`).
    pub id: i32,
    /// The mode (column `perms`): permission bits `0o777`, as given to `msgget`.
    pub mode: u32,
    /// Bytes of message text currently in the queue (the `long` types are not counted).
    pub cbytes: u64,
    /// Messages currently in the queue.
    pub qnum: u64,
    /// The last process that sent (`msgsnd`), or 0 if none has.
    pub lspid: Pid,
    /// The last process that received (`msgrcv`), or 0 if none has.
    pub lrpid: Pid,
    /// Owner user id (can be changed with `IPC_SET`).
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator's user id (never changes).
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
}

/// One shared-memory segment, as the kernel lists it in `/proc/sysvipc/shm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmRow {
    /// The key it was created with (`IPC_PRIVATE` is 0).
    pub key: i32,
    /// The identifier `shmget` returned (column `shmid`).
    pub id: i32,
    /// The mode (column `perms`): permission bits `0o777`, plus `SHM_DEST` (`0o1000`, removal
    /// requested while still attached) and `SHM_LOCKED` (`0o2000`).
    pub mode: u32,
    /// Size in bytes, as requested from `shmget`.
    pub size: u64,
    /// The process that created it.
    pub cpid: Pid,
    /// The last process that attached or detached (`shmat`/`shmdt`), or 0.
    pub lpid: Pid,
    /// Current number of attachments (mappings) in all processes.
    pub nattch: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
}

impl ShmRow {
    /// True once `IPC_RMID` was requested while processes were still attached: the segment
    /// disappears at the last detach.
    pub fn is_marked_for_removal(&self) -> bool {
        self.mode & 0o1000 != 0
    }
}

/// One semaphore set, as the kernel lists it in `/proc/sysvipc/sem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemRow {
    /// The key it was created with (`IPC_PRIVATE` is 0).
    pub key: i32,
    /// The identifier `semget` returned (column `semid`).
    pub id: i32,
    /// The mode (column `perms`): permission bits `0o777`.
    pub mode: u32,
    /// Number of semaphores in the set.
    pub nsems: u64,
    /// Time of the last `semop` (seconds since the epoch), 0 if there was none.
    pub otime: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
}

/// The message queue with identifier `id`, or `None` if no such queue exists (never created, or
/// removed).
pub fn message_queue(id: i32) -> Option<MsgQueueRow> {
    message_queues().into_iter().find(|q| q.id == id)
}

/// The shared-memory segment with identifier `id`, or `None` if it does not exist (any more).
pub fn shared_memory(id: i32) -> Option<ShmRow> {
    shared_memory_segments().into_iter().find(|s| s.id == id)
}

/// The semaphore set with identifier `id`, or `None` if it does not exist (any more).
pub fn semaphore_set(id: i32) -> Option<SemRow> {
    semaphore_sets().into_iter().find(|s| s.id == id)
}

/// Every message queue on the system (in this IPC namespace).
pub fn message_queues() -> Vec<MsgQueueRow> {
    parse_msg(&read_table(MSG_TABLE)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every shared-memory segment on the system (in this IPC namespace).
pub fn shared_memory_segments() -> Vec<ShmRow> {
    parse_shm(&read_table(SHM_TABLE)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every semaphore set on the system (in this IPC namespace).
pub fn semaphore_sets() -> Vec<SemRow> {
    parse_sem(&read_table(SEM_TABLE)).unwrap_or_else(|e| panic!("{e}"))
}

fn read_table(path: &str) -> String {
    read_consistently(path).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}): the kernel lists System V IPC objects there on Linux")
    })
}

/// Reads a `/proc` table in large `read` calls.
///
/// Tables like `/proc/locks` are produced a few rows per `read` call: as many as the caller's
/// buffer asks for, up to a page. Each call starts again at a row *number*, so when another row
/// is removed between two calls (all the time while tests run in parallel), a row is skipped.
/// `fs::read_to_string` starts with a 32-byte read, which yields one row per call; asking for
/// 64 KiB at a time makes every table of up to a page (4 KiB) one consistent listing.
pub fn read_consistently(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut text = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(String::from_utf8_lossy(&text).into_owned()),
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Why a table could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses the text of `/proc/sysvipc/msg`.
pub fn parse_msg(text: &str) -> Result<Vec<MsgQueueRow>, ParseError> {
    Table::parse(text, "msg")?.rows(|r| {
        Ok(MsgQueueRow {
            key: r.num("key")?,
            id: r.num("msqid")?,
            mode: r.octal("perms")?,
            cbytes: r.num("cbytes")?,
            qnum: r.num("qnum")?,
            lspid: Pid::from_raw(r.num("lspid")?),
            lrpid: Pid::from_raw(r.num("lrpid")?),
            uid: r.num("uid")?,
            gid: r.num("gid")?,
            cuid: r.num("cuid")?,
            cgid: r.num("cgid")?,
        })
    })
}

/// Parses the text of `/proc/sysvipc/shm`.
pub fn parse_shm(text: &str) -> Result<Vec<ShmRow>, ParseError> {
    Table::parse(text, "shm")?.rows(|r| {
        Ok(ShmRow {
            key: r.num("key")?,
            id: r.num("shmid")?,
            mode: r.octal("perms")?,
            size: r.num("size")?,
            cpid: Pid::from_raw(r.num("cpid")?),
            lpid: Pid::from_raw(r.num("lpid")?),
            nattch: r.num("nattch")?,
            uid: r.num("uid")?,
            gid: r.num("gid")?,
            cuid: r.num("cuid")?,
            cgid: r.num("cgid")?,
        })
    })
}

/// Parses the text of `/proc/sysvipc/sem`.
pub fn parse_sem(text: &str) -> Result<Vec<SemRow>, ParseError> {
    Table::parse(text, "sem")?.rows(|r| {
        Ok(SemRow {
            key: r.num("key")?,
            id: r.num("semid")?,
            mode: r.octal("perms")?,
            nsems: r.num("nsems")?,
            otime: r.num("otime")?,
            uid: r.num("uid")?,
            gid: r.num("gid")?,
            cuid: r.num("cuid")?,
            cgid: r.num("cgid")?,
        })
    })
}

/// A whitespace-separated table whose first line names the columns.
struct Table<'a> {
    kind: &'a str,
    header: Vec<&'a str>,
    lines: Vec<&'a str>,
}

struct Row<'t, 'a> {
    table: &'t Table<'a>,
    fields: Vec<&'a str>,
    line: &'a str,
}

impl<'a> Table<'a> {
    fn parse(text: &'a str, kind: &'a str) -> Result<Table<'a>, ParseError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| ParseError(format!("/proc/sysvipc/{kind} is empty: no header row")))?
            .split_whitespace()
            .collect();
        Ok(Table {
            kind,
            header,
            lines: lines.collect(),
        })
    }

    fn rows<T>(
        &self,
        build: impl Fn(&Row<'_, 'a>) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        self.lines
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() != self.header.len() {
                    return Err(ParseError(format!(
                        "/proc/sysvipc/{}: a row has {} fields but the header names {} columns: {line:?}",
                        self.kind,
                        fields.len(),
                        self.header.len()
                    )));
                }
                build(&Row {
                    table: self,
                    fields,
                    line,
                })
            })
            .collect()
    }
}

impl Row<'_, '_> {
    fn field(&self, column: &str) -> Result<&str, ParseError> {
        let at = self
            .table
            .header
            .iter()
            .position(|h| *h == column)
            .ok_or_else(|| {
                ParseError(format!(
                    "/proc/sysvipc/{}: no column named {column:?} in the header ({})",
                    self.table.kind,
                    self.table.header.join(" ")
                ))
            })?;
        Ok(self.fields[at])
    }

    fn bad(&self, column: &str, value: &str) -> ParseError {
        ParseError(format!(
            "/proc/sysvipc/{}: column {column:?} holds {value:?}, not a number, in row {:?}",
            self.table.kind, self.line
        ))
    }

    fn num<T: std::str::FromStr>(&self, column: &str) -> Result<T, ParseError> {
        let value = self.field(column)?;
        value.parse().map_err(|_| self.bad(column, value))
    }

    /// The kernel prints `perms` in octal (`%4o`).
    fn octal(&self, column: &str) -> Result<u32, ParseError> {
        let value = self.field(column)?;
        u32::from_str_radix(value, 8).map_err(|_| self.bad(column, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Verbatim from Linux 6.x (with `ipcmk -Q`, `ipcmk -M 4096`, `ipcmk -S 2` and some traffic).
    const MSG: &str = "\
       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime
-745093244          0   644           0          0     0     0     0     0     0     0          0          0 1795619938
         0      32769   600          12          2  4242  4243  1000   100  1000   100 1795619940 1795619941 1795619939
";
    const SHM: &str = "\
       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
1365540205          0   644                  4096 10989     0      0     0     0     0     0          0          0 1795619938                     0                     0
         0          1  1600                 65536 11000 11001      1  1000  1000  1000  1000 1795619940          0 1795619939                  4096                     0
";
    const SEM: &str = "\
       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime
-588125750          0   644          2     0     0     0     0          0 1795619938
";

    #[test]
    fn msg_rows_parse() {
        let rows = parse_msg(MSG).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, -745093244);
        assert_eq!(rows[0].mode, 0o644);
        assert_eq!(
            rows[1],
            MsgQueueRow {
                key: 0,
                id: 32769,
                mode: 0o600,
                cbytes: 12,
                qnum: 2,
                lspid: Pid::from_raw(4242),
                lrpid: Pid::from_raw(4243),
                uid: 1000,
                gid: 100,
                cuid: 1000,
                cgid: 100,
            }
        );
    }

    #[test]
    fn shm_rows_parse_with_flags_in_mode() {
        let rows = parse_shm(SHM).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].size, rows[0].cpid), (4096, Pid::from_raw(10989)));
        assert!(!rows[0].is_marked_for_removal());
        let marked = rows[1];
        assert_eq!(
            (marked.id, marked.mode & 0o777, marked.nattch),
            (1, 0o600, 1)
        );
        assert!(marked.is_marked_for_removal());
        assert_eq!(marked.lpid, Pid::from_raw(11001));
    }

    #[test]
    fn sem_rows_parse() {
        let rows = parse_sem(SEM).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].id, rows[0].nsems, rows[0].mode), (0, 2, 0o644));
        assert_eq!(rows[0].otime, 0);
    }

    #[test]
    fn columns_are_found_by_name_not_position() {
        let shuffled = "qnum msqid key perms cbytes lspid lrpid cgid cuid gid uid\n\
                        3 7 -1 660 30 10 11 5 4 3 2\n";
        let row = parse_msg(shuffled).unwrap()[0];
        assert_eq!((row.id, row.key, row.qnum, row.cbytes), (7, -1, 3, 30));
        assert_eq!((row.uid, row.gid, row.cuid, row.cgid), (2, 3, 4, 5));
        assert_eq!(row.mode, 0o660);
    }

    #[test]
    fn an_empty_table_has_no_rows() {
        let header_only = MSG.lines().next().unwrap();
        assert_eq!(parse_msg(header_only).unwrap(), vec![]);
    }

    #[test]
    fn malformed_tables_are_reported() {
        assert!(parse_msg("").unwrap_err().to_string().contains("no header"));
        let missing = parse_sem("key semid perms\n1 2 644\n").unwrap_err();
        assert!(missing.to_string().contains("\"nsems\""), "{missing}");
        let short =
            parse_sem("key semid perms nsems uid gid cuid cgid otime\n1 2 644\n").unwrap_err();
        assert!(short.to_string().contains("3 fields"), "{short}");
        let bad = parse_sem("key semid perms nsems uid gid cuid cgid otime\n1 2 9x 1 0 0 0 0 0\n")
            .unwrap_err();
        assert!(bad.to_string().contains("\"perms\""), "{bad}");
    }

    #[test]
    fn a_new_queue_shows_up_and_goes_away() {
        // SAFETY: msgget/msgctl take plain integers; IPC_RMID ignores the buffer pointer.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        let row = message_queue(id);
        // SAFETY: as above.
        unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        let row = row.expect("the new queue is listed");
        assert_eq!((row.key, row.mode, row.qnum), (0, 0o600, 0));
        assert!(message_queue(id).is_none());
        // The live tables parse too.
        let _ = (shared_memory_segments(), semaphore_sets());
    }
}
