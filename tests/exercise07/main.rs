//! The graded suite of exercise 07: semaphores and locks.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: the
//! semaphore's value and the number of processes asleep in its wait queue come from `semctl`
//! called by the test itself, the set's existence from `/proc/sysvipc/sem`, file locks and their
//! waiters from `/proc/locks`. Tests that fork or block run in a process of their own with a
//! deadline (`isolated`).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercise07::*;
use ipclab_support::sysvipc;
use ipclab_support::{isolated, isolated_for, procfs, Deadline};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, ForkResult, Pid};
use rstest::rstest;

const SEM_HINT: &str = "a semaphore operation hung. wait() (P, semop -1) sleeps while the value \
     is 0: was the semaphore created with the right initial value (semctl SETVAL), and does \
     post() really add 1 (semop +1) to the same set?";

const COUNT_HINT: &str = "counting hung. Does every child end with _exit after its iterations, \
     does the parent waitpid for every child, and does every wait() have its post()?";

const UNDO_HINT: &str = "the semaphore stayed taken after its holder was killed, so the next \
     process waited forever. lock() must take the semaphore with SEM_UNDO in sem_flg: the \
     kernel then gives it back when the process ends, however it ends.";

const FILE_LOCK_HINT: &str = "a file lock hung. try_lock must not wait (LOCK_NB, or F_SETLK \
     rather than F_SETLKW), and a lock must be released when its guard is dropped.";

const RMID_HINT: &str = "the process waiting on the semaphore never woke up. When the set is \
     removed (IPC_RMID), a process asleep in semop fails with EIDRM: report it as \
     Error::Removed, do not retry.";

/// The test's own safety net: removes the semaphore set with this id when the test ends.
struct RemoveAtEnd(i32);

impl Drop for RemoveAtEnd {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID takes no fourth argument; an id that no longer exists just fails.
        unsafe { libc::semctl(self.0, 0, libc::IPC_RMID) };
    }
}

fn semaphore(initial: i32) -> (Semaphore, RemoveAtEnd) {
    let sem = Semaphore::new(initial, 0o600).expect("Semaphore::new");
    let net = RemoveAtEnd(sem.id());
    (sem, net)
}

/// The semaphore's value, as the kernel reports it to the test.
fn kernel_value(id: i32) -> i32 {
    // SAFETY: GETVAL takes no fourth argument.
    let value = unsafe { libc::semctl(id, 0, libc::GETVAL) };
    assert!(
        value >= 0,
        "semctl(GETVAL) on set {id}: {}",
        std::io::Error::last_os_error()
    );
    value
}

/// How many processes sleep in the semaphore's wait queue, as the kernel reports it.
fn kernel_waiters(id: i32) -> i32 {
    // SAFETY: GETNCNT takes no fourth argument.
    unsafe { libc::semctl(id, 0, libc::GETNCNT) }
}

/// Waits until the kernel shows `n` processes asleep on semaphore `id` (an event, polled).
#[track_caller]
fn wait_for_waiters(id: i32, n: i32, what: &str) {
    let started = Instant::now();
    while kernel_waiters(id) != n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: the kernel shows {} processes waiting on the semaphore, expected {n}",
            kernel_waiters(id)
        );
        thread::yield_now();
    }
}

/// Forks a child running `body`, which ends with `_exit(body())`.
fn spawn_child(body: impl FnOnce() -> i32) -> Pid {
    // SAFETY: the child runs `body` and then `_exit`s; it never returns into the test.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: ends the child without running the test's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    }
}

fn files((read, write): (std::os::fd::OwnedFd, std::os::fd::OwnedFd)) -> (File, File) {
    (File::from(read), File::from(write))
}

#[track_caller]
fn exit_code(pid: Pid) -> i32 {
    match waitpid(pid, None).expect("waitpid") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("child {pid} did not exit normally: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Task 1: a semaphore makes shared-memory updates safe.

#[rstest]
#[case::closed(0)]
#[case::binary(1)]
#[case::counting(5)]
fn task1_semaphore_starts_at_its_initial_value(#[case] initial: i32) {
    let (sem, _net) = semaphore(initial);
    assert_eq!(
        kernel_value(sem.id()),
        initial,
        "the kernel holds a different value: set it with semctl(SETVAL) after semget"
    );
    assert_eq!(
        sem.value().expect("value"),
        initial,
        "value() is semctl(GETVAL)"
    );
}

#[test]
fn task1_wait_takes_one_and_post_gives_one_back() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(2);
        sem.wait().expect("wait");
        assert_eq!(kernel_value(sem.id()), 1, "wait (P) subtracts 1");
        sem.wait().expect("wait");
        assert_eq!(kernel_value(sem.id()), 0, "wait (P) subtracts 1");
        sem.post().expect("post");
        assert_eq!(kernel_value(sem.id()), 1, "post (V) adds 1");
    });
}

#[test]
fn task1_wait_sleeps_until_another_process_posts() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(0);
        let child = spawn_child(|| i32::from(sem.wait().is_err()));
        wait_for_waiters(
            sem.id(),
            1,
            "the child's wait() on a semaphore at 0 should sleep in the kernel's wait queue",
        );
        sem.post().expect("post");
        assert_eq!(
            exit_code(child),
            0,
            "the child's wait() should succeed after the post"
        );
        assert_eq!(
            kernel_value(sem.id()),
            0,
            "the child took the unit the parent gave"
        );
    });
}

#[test]
fn task1_children_share_the_counter() {
    isolated(COUNT_HINT, || {
        let counter = SharedCounter::new().expect("SharedCounter::new");
        let child = spawn_child(|| {
            for _ in 0..5 {
                counter.increment_racily();
            }
            0
        });
        assert_eq!(exit_code(child), 0);
        assert_eq!(
            counter.get(),
            5,
            "the child's increments are invisible to the parent: the counter must live in a \
             MAP_SHARED mapping made before fork (a private mapping is copied on write)"
        );
    });
}

#[test]
fn task1_without_a_lock_updates_are_lost() {
    isolated_for(Deadline::secs(30), COUNT_HINT, || {
        let (processes, iterations) = (4, 5000);
        let total = count_in_processes(processes, iterations, None).expect("count_in_processes");
        let expected = (processes * iterations) as u64;
        println!("without a lock: {total} of {expected} increments arrived");
        assert!(
            total > 0,
            "no increment arrived at all: are the children using the shared counter?"
        );
        assert!(
            total < expected,
            "{processes} processes each incremented {iterations} times without a lock, and no \
             update was lost ({total}). With read, sched_yield, write in every increment and all \
             children started together, their read-modify-writes must overlap: do the children \
             run at the same time (fork them all, then let them start), and does \
             increment_racily yield between its read and its write?"
        );
    });
}

#[rstest]
#[case::two_processes(2, 2000)]
#[case::four_processes(4, 1000)]
fn task1_with_a_semaphore_no_update_is_lost(#[case] processes: usize, #[case] iterations: usize) {
    isolated_for(Deadline::secs(30), COUNT_HINT, || {
        let (sem, _net) = semaphore(1);
        let total =
            count_in_processes(processes, iterations, Some(&sem)).expect("count_in_processes");
        assert_eq!(
            total,
            (processes * iterations) as u64,
            "with every increment between wait() and post() on a semaphore starting at 1, no \
             update may be lost"
        );
        assert_eq!(
            kernel_value(sem.id()),
            1,
            "after all the children, the semaphore must be back at 1: every wait needs its post"
        );
        let row = sysvipc::semaphore_set(sem.id()).expect("the set is listed in /proc/sysvipc/sem");
        assert!(
            row.otime > 0,
            "the kernel records no semop on the semaphore: the children must use it"
        );
        procfs::assert_no_zombies("Reap every counting child with waitpid.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: SEM_UNDO.

#[test]
fn task2_try_wait_says_whether_it_got_the_semaphore() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(1);
        assert!(
            sem.try_wait().expect("try_wait"),
            "the semaphore was free (1)"
        );
        assert_eq!(kernel_value(sem.id()), 0);
        let again = sem.try_wait();
        assert!(
            matches!(again, Ok(false)),
            "at 0, a semop with IPC_NOWAIT fails with EAGAIN, which means \"not now\": expected \
             Ok(false), got {again:?}"
        );
    });
}

#[test]
fn task2_dropping_the_guard_gives_the_semaphore_back() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(1);
        let guard = sem.lock().expect("lock");
        assert_eq!(kernel_value(sem.id()), 0, "lock takes the unit");
        drop(guard);
        assert_eq!(
            kernel_value(sem.id()),
            1,
            "dropping the guard gives it back"
        );
    });
}

#[test]
fn task2_a_holder_killed_while_holding_does_not_keep_the_semaphore() {
    isolated(UNDO_HINT, || {
        let (sem, _net) = semaphore(1);
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        let (hold_read, _hold_write) = files(pipe().expect("pipe"));
        let holder = spawn_child(|| {
            let Ok(guard) = sem.lock() else { return 1 };
            let _ = (&ready_write).write_all(b"!");
            // Holds the semaphore until killed (the parent never writes).
            let _ = (&hold_read).read(&mut [0u8; 1]);
            drop(guard);
            0
        });
        drop(ready_write);
        (&ready_read)
            .read_exact(&mut [0u8; 1])
            .expect("the holder reports that it holds the semaphore");
        assert_eq!(kernel_value(sem.id()), 0, "the holder has the semaphore");

        kill(holder, Signal::SIGKILL).expect("kill the holder");
        waitpid(holder, None).expect("waitpid");
        assert_eq!(
            kernel_value(sem.id()),
            1,
            "the holder was killed while holding the semaphore, and the kernel did not give it \
             back: take it with SEM_UNDO, so that the kernel undoes the operation when the \
             process dies"
        );
    });
}

#[test]
fn task2_a_waiter_gets_the_semaphore_when_the_holder_is_killed() {
    isolated(UNDO_HINT, || {
        let (sem, _net) = semaphore(1);
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        let (hold_read, _hold_write) = files(pipe().expect("pipe"));
        let holder = spawn_child(|| {
            let Ok(_guard) = sem.lock() else { return 1 };
            let _ = (&ready_write).write_all(b"!");
            let _ = (&hold_read).read(&mut [0u8; 1]);
            0
        });
        drop(ready_write);
        (&ready_read)
            .read_exact(&mut [0u8; 1])
            .expect("the holder reports that it holds the semaphore");

        let waiter = spawn_child(|| match sem.lock() {
            Ok(_guard) => 0,
            Err(_) => 1,
        });
        wait_for_waiters(
            sem.id(),
            1,
            "the second locker should sleep until the holder is gone",
        );
        kill(holder, Signal::SIGKILL).expect("kill the holder");
        waitpid(holder, None).expect("waitpid");
        assert_eq!(exit_code(waiter), 0, "the waiter should get the semaphore");
        assert_eq!(
            kernel_value(sem.id()),
            1,
            "nobody holds the semaphore at the end"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: file locks.

/// One line of `/proc/locks`.
#[derive(Debug)]
struct FileLock {
    /// A request that waits for the lock (shown with `->`).
    waiting: bool,
    /// `WRITE` (exclusive) or `READ` (shared).
    access: String,
    inode: u64,
}

/// The locks and lock requests the kernel lists on the file with inode `inode`.
fn locks_on(inode: u64) -> Vec<FileLock> {
    let table = sysvipc::read_consistently("/proc/locks").expect("read /proc/locks");
    table
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1).peekable();
            let waiting = fields.next_if_eq(&"->").is_some();
            let fields: Vec<&str> = fields.collect();
            // kind, ADVISORY, access, pid, major:minor:inode, start, end
            let inode = fields.get(4)?.rsplit(':').next()?.parse().ok()?;
            Some(FileLock {
                waiting,
                access: fields.get(2)?.to_string(),
                inode,
            })
        })
        .filter(|lock| lock.inode == inode)
        .collect()
}

/// A child process holding the log file's lock until told to let go.
struct Holder {
    pid: Pid,
    release: File,
}

impl Holder {
    /// Starts a child that takes `path`'s lock; returns once it holds it.
    fn start(path: &Path) -> Holder {
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        let (release_read, release_write) = files(pipe().expect("pipe"));
        let pid = spawn_child(|| {
            let Ok(log) = LogFile::open(path) else {
                return 1;
            };
            let Ok(_lock) = log.lock() else { return 2 };
            let _ = (&ready_write).write_all(b"!");
            let _ = (&release_read).read(&mut [0u8; 1]);
            0
        });
        // If the holder fails before it writes, the read below sees end of file at once.
        drop(ready_write);
        (&ready_read)
            .read_exact(&mut [0u8; 1])
            .expect("the holder reports that it holds the lock");
        Holder {
            pid,
            release: release_write,
        }
    }

    /// Tells the holder to release the lock and exit; waits for it.
    #[track_caller]
    fn let_go(self) {
        (&self.release)
            .write_all(b"!")
            .expect("tell the holder to let go");
        assert_eq!(exit_code(self.pid), 0, "the lock holder failed");
    }
}

#[test]
fn task3_second_locker_is_told_it_would_block() {
    isolated(FILE_LOCK_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let holder = Holder::start(&path);
        let inode = fs::metadata(&path).expect("the log file exists").ino();
        let held = locks_on(inode);
        assert!(
            held.iter().any(|l| !l.waiting && l.access == "WRITE"),
            "the kernel lists no exclusive lock on the log file in /proc/locks while the holder \
             holds it: lock with flock(LOCK_EX) or fcntl(F_SETLKW, F_WRLCK); found {held:?}"
        );

        let log = LogFile::open(&path).expect("open the log");
        let attempt = log.try_lock();
        assert!(
            matches!(attempt, Ok(None)),
            "another process holds the lock, so a non-blocking request must report \"would \
             block\" as Ok(None); got {attempt:?}"
        );
        drop(attempt);
        holder.let_go();
        let attempt = log.try_lock().expect("try_lock");
        assert!(
            attempt.is_some(),
            "the holder is gone: the lock is free again"
        );
        drop(attempt);
        assert!(
            locks_on(inode).is_empty(),
            "the lock must be released when its guard is dropped"
        );
    });
}

#[test]
fn task3_append_waits_for_the_lock() {
    isolated(FILE_LOCK_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let holder = Holder::start(&path);
        let inode = fs::metadata(&path).expect("the log file exists").ino();
        let writer = spawn_child(|| {
            let Ok(log) = LogFile::open(&path) else {
                return 1;
            };
            i32::from(log.append_record(&["first line", "second line"]).is_err())
        });
        // The kernel lists a waiting request (`->`) once the writer sleeps on the lock.
        let started = Instant::now();
        while !locks_on(inode).iter().any(|l| l.waiting) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "append_record must wait for the lock another process holds (a blocking \
                 flock or F_SETLKW), but /proc/locks shows no waiting request: {:?}; the file \
                 holds {:?}",
                locks_on(inode),
                fs::read_to_string(&path).unwrap_or_default()
            );
            thread::yield_now();
        }
        assert_eq!(
            fs::read_to_string(&path).expect("read the log"),
            "",
            "nothing may be written while another process holds the lock"
        );
        holder.let_go();
        assert_eq!(exit_code(writer), 0, "append_record failed");
        assert_eq!(
            fs::read_to_string(&path).expect("read the log"),
            "first line\nsecond line\n"
        );
    });
}

#[test]
fn task3_concurrent_writers_never_interleave_records() {
    isolated_for(Deadline::secs(30), FILE_LOCK_HINT, || {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.log");
        let (writers, records, lines) = (4, 50, 4);
        let children: Vec<Pid> = (0..writers)
            .map(|w| {
                let path = &path;
                spawn_child(move || {
                    let Ok(log) = LogFile::open(path) else {
                        return 1;
                    };
                    for r in 0..records {
                        let text: Vec<String> =
                            (0..lines).map(|l| format!("w{w} r{r} l{l}")).collect();
                        let refs: Vec<&str> = text.iter().map(String::as_str).collect();
                        if log.append_record(&refs).is_err() {
                            return 2;
                        }
                    }
                    0
                })
            })
            .collect();
        for child in children {
            assert_eq!(exit_code(child), 0, "a writer failed");
        }
        let content = fs::read_to_string(&path).expect("read the log");
        let all: Vec<&str> = content.lines().collect();
        assert_eq!(
            all.len(),
            writers * records * lines,
            "lines are missing: open the log with O_APPEND, so that every write goes to the \
             end of the file as it is then, not over another writer's lines"
        );
        for (n, record) in all.chunks(lines).enumerate() {
            // Line l of a record reads "w<writer> r<record> l<l>".
            let head = record[0].rsplit_once(' ').map(|(head, _)| head);
            let whole = record.iter().enumerate().all(|(l, line)| {
                let expected = head.map(|h| format!("{h} l{l}"));
                expected.as_deref() == Some(*line)
            });
            assert!(
                whole,
                "record {n} of the log is interleaved with another writer's lines: {record:?}. \
                 Hold the lock for the whole record"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Task 4: errors and cleanup.

#[test]
fn task4_set_is_listed_while_it_exists_and_gone_after_drop() {
    let sem = Semaphore::new(1, 0o640).expect("Semaphore::new");
    let id = sem.id();
    let _net = RemoveAtEnd(id);
    let row = sysvipc::semaphore_set(id).expect("the new set is listed in /proc/sysvipc/sem");
    assert_eq!(
        (row.nsems, row.mode & 0o777),
        (1, 0o640),
        "one semaphore, mode 0o640"
    );
    drop(sem);
    assert!(
        sysvipc::semaphore_set(id).is_none(),
        "semaphore set {id} outlived its owner: Drop must remove it (semctl IPC_RMID)"
    );
}

#[test]
fn task4_remove_reports_and_removes() {
    let sem = Semaphore::new(1, 0o600).expect("Semaphore::new");
    let id = sem.id();
    let _net = RemoveAtEnd(id);
    sem.remove().expect("remove");
    assert!(
        sysvipc::semaphore_set(id).is_none(),
        "set {id} is still listed after remove"
    );
}

#[test]
fn task4_set_is_removed_even_when_the_code_panics_halfway() {
    let (ids_tx, ids_rx) = mpsc::channel();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let sem = Semaphore::new(1, 0o600).expect("Semaphore::new");
        ids_tx.send(sem.id()).expect("send the id");
        let _guard = sem.lock().expect("lock");
        panic!("the code holding the semaphore panics halfway");
    }));
    let Ok(id) = ids_rx.try_recv() else {
        // Creating it failed: that panic is the test's answer.
        panic::resume_unwind(outcome.expect_err("the body always panics"));
    };
    let listed = sysvipc::semaphore_set(id);
    let _net = RemoveAtEnd(id);
    assert!(
        listed.is_none(),
        "semaphore set {id} survived a panic: removal belongs in Drop, which runs while unwinding"
    );
}

#[rstest]
#[case::negative(-1)]
#[case::above_semvmx(SEMVMX + 1)]
fn task4_initial_value_out_of_range_is_refused(#[case] value: i32) {
    let result = Semaphore::new(value, 0o600);
    if let Ok(sem) = &result {
        let _net = RemoveAtEnd(sem.id());
    }
    assert!(
        matches!(result, Err(Error::InvalidValue { value: v }) if v == value),
        "a semaphore holds 0 to SEMVMX ({SEMVMX}): expected Err(Error::InvalidValue {{ value: \
         {value} }}), got {result:?}"
    );
}

#[test]
fn task4_mode_beyond_permission_bits_is_refused() {
    let result = Semaphore::new(1, 0o1600);
    if let Ok(sem) = &result {
        let _net = RemoveAtEnd(sem.id());
    }
    assert!(
        matches!(result, Err(Error::InvalidMode { mode: 0o1600 })),
        "mode 0o1600 has bits beyond 0o777, which semget would read as IPC_CREAT: expected \
         Err(Error::InvalidMode {{ mode: 0o1600 }}), got {result:?}"
    );
}

#[test]
fn task4_waiter_learns_that_the_set_was_removed() {
    isolated(RMID_HINT, || {
        let sem = Semaphore::new(0, 0o600).expect("Semaphore::new");
        let id = sem.id();
        let _net = RemoveAtEnd(id);
        let waiter = spawn_child(|| match sem.wait() {
            Err(Error::Removed { id: i }) if i == id => 0,
            Err(_) => 2,
            Ok(()) => 3,
        });
        wait_for_waiters(id, 1, "wait() on a semaphore at 0 should sleep");
        sem.remove().expect("remove");
        match exit_code(waiter) {
            0 => {}
            2 => panic!(
                "the waiter got an error other than Err(Error::Removed {{ id: {id} }}): semop \
                 fails with EIDRM when the set is removed while it sleeps"
            ),
            other => panic!("the waiter's wait() did not fail as it should (code {other})"),
        }
    });
}
