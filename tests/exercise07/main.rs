//! The graded suite of exercise 07: semaphores and locks.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: the
//! semaphore's value and the number of processes asleep in its wait queue come from `semctl`
//! called by the test itself, the set's existence from `/proc/sysvipc/sem`, file locks and their
//! waiters from `/proc/locks`. Tests that fork or block run in a process of their own with a
//! deadline (`isolated`).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use exercise07::*;
use ipclab_support::child::{exit_code, spawn_child};
use ipclab_support::sysvipc;
use ipclab_support::{isolated, isolated_for, procfs, Deadline};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe, Pid};
use rstest::rstest;

const NEVER_RETURNED_HINT: &str = "a semaphore or lock operation blocked. Nothing in this test waits: creating, reading, removing and refusing bad arguments must not call semop with a decrement";

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

fn files((read, write): (std::os::fd::OwnedFd, std::os::fd::OwnedFd)) -> (File, File) {
    (File::from(read), File::from(write))
}

// ---------------------------------------------------------------------------------------------
// Task 1: a semaphore makes shared-memory updates safe.

#[rstest]
#[case::closed(0)]
#[case::binary(1)]
#[case::counting(5)]
fn task1_semaphore_starts_at_its_initial_value(#[case] initial: i32) {
    isolated(NEVER_RETURNED_HINT, || {
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
    });
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
            exit_code(child, "the child"),
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
        assert_eq!(exit_code(child, "the child"), 0);
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
        assert_eq!(
            exit_code(waiter, "the child"),
            0,
            "the waiter should get the semaphore"
        );
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
        assert_eq!(
            exit_code(self.pid, "the lock holder"),
            0,
            "the lock holder failed"
        );
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
        assert_eq!(exit_code(writer, "the child"), 0, "append_record failed");
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
            assert_eq!(exit_code(child, "the child"), 0, "a writer failed");
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
    isolated(NEVER_RETURNED_HINT, || {
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
    });
}

#[test]
fn task4_remove_reports_and_removes() {
    isolated(NEVER_RETURNED_HINT, || {
        let sem = Semaphore::new(1, 0o600).expect("Semaphore::new");
        let id = sem.id();
        let _net = RemoveAtEnd(id);
        sem.remove().expect("remove");
        assert!(
            sysvipc::semaphore_set(id).is_none(),
            "set {id} is still listed after remove"
        );
    });
}

#[test]
fn task4_set_is_removed_even_when_the_code_panics_halfway() {
    isolated(NEVER_RETURNED_HINT, || {
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
    });
}

#[rstest]
#[case::negative(-1)]
#[case::above_semvmx(SEMVMX + 1)]
fn task4_initial_value_out_of_range_is_refused(#[case] value: i32) {
    isolated(NEVER_RETURNED_HINT, || {
        let result = Semaphore::new(value, 0o600);
        if let Ok(sem) = &result {
            let _net = RemoveAtEnd(sem.id());
        }
        assert!(
            matches!(result, Err(Error::InvalidValue { value: v }) if v == value),
            "a semaphore holds 0 to SEMVMX ({SEMVMX}): expected Err(Error::InvalidValue {{ value: \
             {value} }}), got {result:?}"
        );
    });
}

#[test]
fn task4_mode_beyond_permission_bits_is_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let result = Semaphore::new(1, 0o1600);
        if let Ok(sem) = &result {
            let _net = RemoveAtEnd(sem.id());
        }
        assert!(
            matches!(result, Err(Error::InvalidMode { mode: 0o1600 })),
            "mode 0o1600 has bits beyond 0o777, which semget would read as IPC_CREAT: expected \
             Err(Error::InvalidMode {{ mode: 0o1600 }}), got {result:?}"
        );
    });
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
        match exit_code(waiter, "the child") {
            0 => {}
            2 => panic!(
                "the waiter got an error other than Err(Error::Removed {{ id: {id} }}): semop \
                 fails with EIDRM when the set is removed while it sleeps"
            ),
            other => panic!("the waiter's wait() did not fail as it should (code {other})"),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Bonus (ungraded): POSIX IPC. Named semaphores and shared memory live in /dev/shm, message
// queues in the mqueue file system; every test uses names of its own and unlinks them at the end.

const POSIX_SEM_HINT: &str = "a named semaphore hung. sem_wait sleeps while the value is 0: was \
     the semaphore created with the value asked for, does every wait have its post, and do the \
     children open the semaphore by the name they were given?";

const SHM_HINT: &str = "a shared memory test hung: the other process never reported back. Does \
     SharedMemory::open find the segment by its name (shm_open without O_CREAT, size from \
     fstat), and does it return rather than wait?";

const MQ_HINT: &str = "a message queue operation hung. mq_receive sleeps while the queue is \
     empty and mq_send while it is full: do send and receive use the queue opened by that name, \
     and does receive pass a buffer of the queue's full message size?";

static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

/// A POSIX IPC name no other test (or test process) uses.
fn unique_name(kind: &str) -> String {
    let n = NEXT_NAME.fetch_add(1, Ordering::SeqCst);
    format!("/ipclab-ex07-{kind}-{}-{n}", std::process::id())
}

#[derive(Clone, Copy)]
enum Posix {
    Semaphore,
    SharedMemory,
    MessageQueue,
}

/// The test's own safety net: unlinks the name when the test ends (if it still exists).
struct UnlinkAtEnd(Posix, String);

impl Drop for UnlinkAtEnd {
    fn drop(&mut self) {
        let name = CString::new(self.1.as_str()).expect("no NUL in test names");
        match self.0 {
            // SAFETY: `name` is NUL-terminated; a name that no longer exists just fails.
            Posix::Semaphore => unsafe {
                libc::sem_unlink(name.as_ptr());
            },
            Posix::SharedMemory => {
                let _ = nix::sys::mman::shm_unlink(name.as_c_str());
            }
            Posix::MessageQueue => {
                let _ = nix::mqueue::mq_unlink(name.as_c_str());
            }
        }
    }
}

/// The file glibc keeps a named semaphore in.
fn sem_file(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(format!("sem.{}", &name[1..]))
}

/// The file a shared memory segment is.
fn shm_file(name: &str) -> PathBuf {
    Path::new("/dev/shm").join(&name[1..])
}

/// The line of `/proc/<pid>/maps` that maps `file` (ending in " (deleted)" once unlinked).
fn maps_line(pid: Pid, file: &Path) -> Option<String> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let file = file.to_str()?;
    maps.lines()
        .find(|line| {
            // address perms offset dev inode path
            let path = line
                .split_whitespace()
                .skip(5)
                .collect::<Vec<_>>()
                .join(" ");
            path == file || path == format!("{file} (deleted)")
        })
        .map(str::to_owned)
}

/// The line of `/proc/<pid>/maps` that maps the file with inode `inode` of `/dev/shm`, whatever
/// its name (glibc's sem_open builds a new semaphore under a temporary name, then links it).
fn maps_inode(pid: Pid, inode: u64) -> Option<String> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(4) == Some(&inode.to_string().as_str())
                && fields
                    .get(5)
                    .is_some_and(|path| path.starts_with("/dev/shm/"))
        })
        .map(str::to_owned)
}

/// Whether a descriptor of this process refers to `file`.
fn has_open(file: &Path) -> bool {
    fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == file))
}

/// Whether the message queue `name` exists, asked of the kernel directly.
fn mq_exists(name: &str) -> bool {
    use nix::mqueue::{mq_close, mq_open, MQ_OFlag};
    match mq_open(
        name,
        MQ_OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
        None,
    ) {
        Ok(mqd) => {
            let _ = mq_close(mqd);
            true
        }
        Err(_) => false,
    }
}

/// The kernel's status line of a message queue (`QSIZE:… NOTIFY:… SIGNO:… NOTIFY_PID:…`), read
/// through the queue's descriptor: on Linux, reading a queue's file gives this line.
fn queue_status(queue: &MessageQueue) -> String {
    let fd = queue.as_fd().as_raw_fd();
    fs::read_to_string(format!("/proc/self/fd/{fd}")).expect("read the queue's file")
}

/// `QSIZE`: the bytes of all messages queued.
#[track_caller]
fn qsize(status: &str) -> u64 {
    status
        .split_whitespace()
        .find_map(|field| field.strip_prefix("QSIZE:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no QSIZE in the queue's status line {status:?}"))
}

/// The directory where this IPC namespace's message queues are listed by name (an mqueue file
/// system, usually /dev/mqueue), or why there is none to look at.
fn mqueue_dir(queue: &MessageQueue) -> std::result::Result<PathBuf, String> {
    let fd = queue.as_fd().as_raw_fd();
    let ours = fs::metadata(format!("/proc/self/fd/{fd}"))
        .map_err(|e| format!("cannot stat the queue: {e}"))?
        .dev();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    // "id parent major:minor root mount-point options … - fstype source options"
    let mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter(|line| {
            line.split(" - ")
                .nth(1)
                .is_some_and(|s| s.starts_with("mqueue "))
        })
        .filter_map(|line| line.split_whitespace().nth(4).map(PathBuf::from))
        .collect();
    if mounts.is_empty() {
        return Err(
            "no mqueue file system is mounted here (as root: mkdir -p /dev/mqueue && \
                    mount -t mqueue none /dev/mqueue), so the queue could not be looked up by \
                    name"
                .to_owned(),
        );
    }
    mounts
        .iter()
        .find(|dir| fs::metadata(dir).is_ok_and(|m| m.dev() == ours))
        .cloned()
        .ok_or_else(|| {
            format!(
                "the mqueue file systems mounted at {mounts:?} list another IPC namespace's \
                 queues (this run has a private one), so the queue could not be looked up by name"
            )
        })
}

// --- Bonus 1: a named semaphore

#[test]
fn bonus_named_semaphore_lives_in_dev_shm_until_unlinked() {
    isolated(POSIX_SEM_HINT, || {
        let name = unique_name("sem");
        let _net = UnlinkAtEnd(Posix::Semaphore, name.clone());
        let (sem, owned) = NamedSemaphore::create(&name, 3).expect("NamedSemaphore::create");
        let file = sem_file(&name);
        let meta = fs::metadata(&file).unwrap_or_else(|e| {
            panic!(
                "a named semaphore is the file {} ({e}): create it with sem_open(name, \
                 O_CREAT | O_EXCL, 0o600, initial)",
                file.display()
            )
        });
        assert_eq!(meta.mode() & 0o777, 0o600, "the semaphore's mode is 0o600");
        let me = nix::unistd::getpid();
        assert!(
            maps_inode(me, meta.ino()).is_some(),
            "sem_open maps {} into the process: this process maps no such file",
            file.display()
        );
        assert_eq!(sem.value().expect("value"), 3, "value() is sem_getvalue");
        sem.wait().expect("wait");
        assert_eq!(
            sem.value().expect("value"),
            2,
            "wait (sem_wait) subtracts 1"
        );
        sem.post().expect("post");
        assert_eq!(sem.value().expect("value"), 3, "post (sem_post) adds 1");

        drop(owned);
        assert!(
            !file.exists(),
            "{} is still there after the PosixName was dropped: its Drop must sem_unlink the \
             name",
            file.display()
        );
        sem.post().expect("post after unlink");
        assert_eq!(
            sem.value().expect("value"),
            4,
            "unlinking removes the name, not the semaphore: a process that has it open keeps \
             using it"
        );
        let again = NamedSemaphore::open(&name);
        assert!(
            matches!(again, Err(Error::NoSuchName { .. })),
            "after sem_unlink, opening the name fails with ENOENT: expected \
             Err(Error::NoSuchName), got {again:?}"
        );
        drop(sem);
        assert!(
            maps_inode(me, meta.ino()).is_none(),
            "dropping the NamedSemaphore must sem_close it, which unmaps its file"
        );
    });
}

#[test]
fn bonus_named_semaphore_processes_that_open_it_by_name_lose_no_update() {
    isolated_for(Deadline::secs(30), POSIX_SEM_HINT, || {
        let name = unique_name("sem");
        let _net = UnlinkAtEnd(Posix::Semaphore, name.clone());
        let (sem, owned) = NamedSemaphore::create(&name, 0).expect("NamedSemaphore::create");
        // The test lets go of its handle: the children can reach the semaphore only by name.
        drop(sem);
        let file = sem_file(&name);
        let (processes, iterations) = (4, 1000);
        let (total_read, total_write) = files(pipe().expect("pipe"));
        let counting =
            spawn_child(
                || match count_with_named_semaphore(&name, processes, iterations) {
                    Ok(total) => {
                        let _ = (&total_write).write_all(&total.to_le_bytes());
                        0
                    }
                    Err(e) => {
                        eprintln!("count_with_named_semaphore: {e}");
                        1
                    }
                },
            );
        drop(total_write);

        // At 0, every counting child sleeps in the kernel (a futex wait) until a post.
        let started = Instant::now();
        let sleepers = loop {
            let children = procfs::children(counting);
            let asleep: Vec<Pid> = children
                .iter()
                .filter(|c| {
                    procfs::blocked_call(c.pid).is_some_and(|call| call.number == libc::SYS_futex)
                })
                .map(|c| c.pid)
                .collect();
            if asleep.len() == processes {
                break asleep;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the semaphore is at 0, so all {processes} counting children should sleep in \
                 sem_wait (a futex wait); {} of them do, of the children {children:?}",
                asleep.len()
            );
            thread::yield_now();
        };
        for child in sleepers {
            assert!(
                maps_line(child, &file).is_some(),
                "counting child {child} does not map {}: each child must open the semaphore by \
                 its name (NamedSemaphore::open, that is sem_open)",
                file.display()
            );
        }

        // One unit, passed from child to child by wait and post.
        let opener = NamedSemaphore::open(&name).expect("NamedSemaphore::open");
        opener.post().expect("post");
        let mut total = [0u8; 8];
        let reported = (&total_read).read_exact(&mut total);
        assert_eq!(
            exit_code(counting, "the child"),
            0,
            "count_with_named_semaphore failed"
        );
        reported.expect("the counting process reports its total");
        assert_eq!(
            u64::from_le_bytes(total),
            (processes * iterations) as u64,
            "with every increment between wait() and post() on the named semaphore, no update \
             may be lost"
        );
        assert_eq!(
            opener.value().expect("value"),
            1,
            "after the children the semaphore holds the one unit again: every wait needs its post"
        );
        drop(opener);
        owned.unlink().expect("unlink");
        assert!(!file.exists(), "{} outlived sem_unlink", file.display());
        procfs::assert_no_zombies("Reap every counting child with waitpid.");
    });
}

// --- Bonus 2: shared memory

#[test]
fn bonus_shm_segment_lives_in_dev_shm_and_in_the_maps() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let (memory, owned) = SharedMemory::create(&name, 4096).expect("SharedMemory::create");
        let file = shm_file(&name);
        let meta = fs::metadata(&file).unwrap_or_else(|e| {
            panic!(
                "a POSIX shared memory segment is the file {} ({e}): create it with \
                 shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0o600)",
                file.display()
            )
        });
        assert_eq!(
            meta.len(),
            4096,
            "the segment's size is the file's: give it with ftruncate"
        );
        assert_eq!(meta.mode() & 0o777, 0o600, "the segment's mode is 0o600");
        assert_eq!(memory.size(), 4096);
        let me = nix::unistd::getpid();
        assert!(
            maps_line(me, &file).is_some(),
            "this process maps no {}: map the shm_open descriptor with mmap(MAP_SHARED)",
            file.display()
        );
        assert!(
            !has_open(&file),
            "a descriptor of {} is still open: close it after mmap, the mapping keeps the segment",
            file.display()
        );

        memory.write_at(100, b"hello").expect("write_at");
        let content = fs::read(&file).expect("read the segment's file");
        assert_eq!(
            &content[100..105],
            b"hello",
            "the segment is the file: bytes written through the mapping are in it"
        );
        let other = fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open the file");
        other.write_all_at(b"world", 200).expect("write the file");
        drop(other);
        let mut seen = [0u8; 5];
        memory.read_at(200, &mut seen).expect("read_at");
        assert_eq!(
            &seen, b"world",
            "bytes written to the file appear in the mapping"
        );

        drop(memory);
        assert!(
            maps_line(me, &file).is_none(),
            "dropping SharedMemory must munmap it"
        );
        assert!(file.exists(), "unmapping does not remove the name");
        drop(owned);
        assert!(
            !file.exists(),
            "{} is still there after the PosixName was dropped: its Drop must shm_unlink the name",
            file.display()
        );
    });
}

#[test]
fn bonus_shm_another_process_opens_it_by_name() {
    isolated(SHM_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let file = shm_file(&name);
        let (go_read, go_write) = files(pipe().expect("pipe"));
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        let (done_read, done_write) = files(pipe().expect("pipe"));
        // Forked before the segment exists: it can reach the segment only by its name.
        let child = spawn_child(|| {
            if (&go_read).read_exact(&mut [0u8; 1]).is_err() {
                return 1;
            }
            let Ok(memory) = SharedMemory::open(&name) else {
                return 2;
            };
            let mut greeting = [0u8; 5];
            if memory.read_at(0, &mut greeting).is_err() || &greeting != b"hello" {
                return 3;
            }
            if memory.write_at(8000, b"world").is_err() {
                return 4;
            }
            let _ = (&ready_write).write_all(b"!");
            let _ = (&done_read).read(&mut [0u8; 1]);
            0
        });
        drop((ready_write, done_read));

        let (memory, _owned) = SharedMemory::create(&name, 8192).expect("SharedMemory::create");
        memory.write_at(0, b"hello").expect("write_at");
        (&go_write)
            .write_all(b"!")
            .expect("start the other process");
        if (&ready_read).read_exact(&mut [0u8; 1]).is_err() {
            let why = match exit_code(child, "the child") {
                2 => "SharedMemory::open failed",
                3 => "it did not read the bytes written before (\"hello\" at 0)",
                4 => "write_at(8000, 5 bytes) failed: open must map the segment's whole size",
                _ => "it ended early",
            };
            panic!("the other process could not use the segment by its name: {why}");
        }
        assert!(
            maps_line(child, &file).is_some(),
            "the other process maps no {}: SharedMemory::open must shm_open the name and mmap \
             it",
            file.display()
        );
        let mut reply = [0u8; 5];
        memory.read_at(8000, &mut reply).expect("read_at");
        assert_eq!(
            &reply, b"world",
            "the other process's write is not visible here: both must map the same segment \
             with MAP_SHARED"
        );
        (&done_write)
            .write_all(b"!")
            .expect("let the other process go");
        assert_eq!(exit_code(child, "the child"), 0);
    });
}

#[test]
fn bonus_shm_mapping_outlives_the_name() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let file = shm_file(&name);
        let (memory, owned) = SharedMemory::create(&name, 4096).expect("SharedMemory::create");
        memory.write_at(0, b"still here").expect("write_at");
        owned.unlink().expect("unlink");
        assert!(!file.exists(), "unlink removes the name at once");
        let line = maps_line(nix::unistd::getpid(), &file)
            .expect("the mapping stays after the name is gone (this process maps no such file)");
        assert!(
            line.ends_with("(deleted)"),
            "the kernel marks the mapping of an unlinked segment \"(deleted)\": {line}"
        );
        let mut seen = [0u8; 10];
        memory.read_at(0, &mut seen).expect("read_at");
        assert_eq!(&seen, b"still here", "the segment lives while it is mapped");
        let again = SharedMemory::open(&name);
        assert!(
            matches!(again, Err(Error::NoSuchName { .. })),
            "after shm_unlink, opening the name fails with ENOENT: expected Err(Error::NoSuchName), \
             got {again:?}"
        );
    });
}

#[test]
fn bonus_shm_out_of_bounds_and_empty_are_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let (memory, _owned) = SharedMemory::create(&name, 4096).expect("SharedMemory::create");
        let result = memory.write_at(4090, b"too long");
        assert!(
            matches!(
                result,
                Err(Error::OutOfBounds {
                    offset: 4090,
                    len: 8,
                    size: 4096
                })
            ),
            "8 bytes at 4090 do not fit 4096: expected Err(Error::OutOfBounds {{ offset: 4090, len: \
             8, size: 4096 }}), got {result:?}"
        );
        let result = memory.read_at(usize::MAX, &mut [0u8; 2]);
        assert!(
            matches!(result, Err(Error::OutOfBounds { .. })),
            "an offset near usize::MAX must be refused, not overflow: got {result:?}"
        );
        memory
            .write_at(4088, b"the end!")
            .expect("the last 8 bytes fit");

        let empty = unique_name("shm");
        let _net_empty = UnlinkAtEnd(Posix::SharedMemory, empty.clone());
        let result = SharedMemory::create(&empty, 0);
        assert!(
            matches!(result, Err(Error::EmptySegment { .. })),
            "a segment of 0 bytes cannot be mapped: expected Err(Error::EmptySegment), got {:?}",
            result.as_ref().map(|(m, _)| m.size())
        );
        drop(result);
        assert!(
            !shm_file(&empty).exists(),
            "refusing an empty segment must leave no name behind"
        );
    });
}

// --- Bonus 3: a message queue with priorities

#[test]
fn bonus_mq_highest_priority_comes_first() {
    isolated(MQ_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let (queue, _owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        let sent = [
            ("low", 1),
            ("high", 9),
            ("middle", 5),
            ("high again", 9),
            ("lowest", 0),
        ];
        for (message, priority) in sent {
            queue.send(message.as_bytes(), priority).expect("send");
        }
        assert_eq!(
            queue.queued().expect("queued"),
            5,
            "five messages are queued"
        );
        let received: Vec<(String, u32)> = (0..sent.len())
            .map(|_| {
                let (bytes, priority) = queue.receive().expect("receive");
                (String::from_utf8_lossy(&bytes).into_owned(), priority)
            })
            .collect();
        let expected: Vec<(String, u32)> = [
            ("high", 9),
            ("high again", 9),
            ("middle", 5),
            ("low", 1),
            ("lowest", 0),
        ]
        .iter()
        .map(|(m, p)| (m.to_string(), *p))
        .collect();
        assert_eq!(
            received, expected,
            "mq_receive returns the oldest message of the highest priority, with its priority \
             (System V's msgrcv instead picks by the type the receiver asks for)"
        );
    });
}

#[test]
fn bonus_mq_another_process_sends_by_name() {
    isolated(MQ_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let (go_read, go_write) = files(pipe().expect("pipe"));
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        // Forked before the queue exists: it can reach the queue only by its name.
        let child = spawn_child(|| {
            if (&go_read).read_exact(&mut [0u8; 1]).is_err() {
                return 1;
            }
            let Ok(queue) = MessageQueue::open(&name) else {
                return 2;
            };
            if queue.send(b"ping", 1).is_err() || queue.send(b"pong!!", 2).is_err() {
                return 3;
            }
            let _ = (&ready_write).write_all(b"!");
            0
        });
        drop(ready_write);

        let (queue, owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        (&go_write)
            .write_all(b"!")
            .expect("start the other process");
        let sent = (&ready_read).read_exact(&mut [0u8; 1]);
        match exit_code(child, "the child") {
            0 => sent.expect("the sender reports"),
            2 => panic!("the other process could not open the queue by its name"),
            3 => panic!("the other process could not send"),
            other => panic!("the sender failed (exit code {other})"),
        }
        let status = queue_status(&queue);
        assert_eq!(
            qsize(&status),
            10,
            "the kernel counts the bytes queued (QSIZE): \"ping\" and \"pong!!\" make 10, but \
             the queue's file says {status:?}"
        );
        match mqueue_dir(&queue) {
            Ok(dir) => {
                let listed = dir.join(&name[1..]);
                let text = fs::read_to_string(&listed).unwrap_or_else(|e| {
                    panic!("the queue is not listed as {} ({e})", listed.display())
                });
                assert_eq!(qsize(&text), 10, "{} says {text:?}", listed.display());
            }
            Err(why) => {
                eprintln!("note: {why}; QSIZE was read through the queue's descriptor instead")
            }
        }
        assert_eq!(
            queue.receive().expect("receive"),
            (b"pong!!".to_vec(), 2),
            "the higher priority comes first"
        );
        assert_eq!(queue.receive().expect("receive"), (b"ping".to_vec(), 1));
        assert_eq!(qsize(&queue_status(&queue)), 0, "the queue is empty again");

        owned.unlink().expect("unlink");
        assert!(
            !mq_exists(&name),
            "the queue can still be opened by its name after unlink: PosixName::unlink must \
             mq_unlink it"
        );
        queue
            .send(b"still works", 0)
            .expect("a queue that is open stays usable after its name is gone");
    });
}

#[test]
fn bonus_mq_bad_priority_and_oversized_message_are_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let (queue, _owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        let result = queue.send(b"x", MQ_PRIO_MAX);
        assert!(
            matches!(result, Err(Error::InvalidPriority { priority }) if priority == MQ_PRIO_MAX),
            "priorities lie below MQ_PRIO_MAX ({MQ_PRIO_MAX}): expected \
             Err(Error::InvalidPriority), got {result:?}"
        );
        let result = queue.send(&vec![0u8; MQ_MESSAGE_SIZE + 1], 0);
        assert!(
            matches!(
                result,
                Err(Error::MessageTooLong { len, max }) if len == MQ_MESSAGE_SIZE + 1 && max == MQ_MESSAGE_SIZE
            ),
            "the queue's messages hold {MQ_MESSAGE_SIZE} bytes: expected Err(Error::MessageTooLong), \
             got {result:?}"
        );
        queue
            .send(&vec![0u8; MQ_MESSAGE_SIZE], MQ_PRIO_MAX - 1)
            .expect("a full-size message at the highest priority fits");
        assert_eq!(queue.queued().expect("queued"), 1);
    });
}

// --- Bonus: names

#[test]
fn bonus_posix_name_taken_and_name_missing_are_reported() {
    isolated(NEVER_RETURNED_HINT, || {
        let (sem, shm, mq) = (unique_name("sem"), unique_name("shm"), unique_name("mq"));
        let _nets = (
            UnlinkAtEnd(Posix::Semaphore, sem.clone()),
            UnlinkAtEnd(Posix::SharedMemory, shm.clone()),
            UnlinkAtEnd(Posix::MessageQueue, mq.clone()),
        );
        let missing = (
            NamedSemaphore::open(&sem).err(),
            SharedMemory::open(&shm).err(),
            MessageQueue::open(&mq).err(),
        );
        assert!(
            matches!(
                missing,
                (
                    Some(Error::NoSuchName { .. }),
                    Some(Error::NoSuchName { .. }),
                    Some(Error::NoSuchName { .. })
                )
            ),
            "opening a name that does not exist fails with ENOENT: expected Error::NoSuchName for \
             the semaphore, the segment and the queue, got {missing:?}"
        );
        let _first = (
            NamedSemaphore::create(&sem, 1).expect("NamedSemaphore::create"),
            SharedMemory::create(&shm, 64).expect("SharedMemory::create"),
            MessageQueue::create(&mq).expect("MessageQueue::create"),
        );
        let taken = (
            NamedSemaphore::create(&sem, 1).err(),
            SharedMemory::create(&shm, 64).err(),
            MessageQueue::create(&mq).err(),
        );
        assert!(
            matches!(
                taken,
                (
                    Some(Error::NameTaken { .. }),
                    Some(Error::NameTaken { .. }),
                    Some(Error::NameTaken { .. })
                )
            ),
            "creating with O_CREAT | O_EXCL a name that exists fails with EEXIST: expected \
             Error::NameTaken for all three, got {taken:?}"
        );
    });
}

#[rstest]
#[case::no_leading_slash("ipclab-ex07-no-slash")]
#[case::nothing_after_the_slash("/")]
#[case::a_second_slash("/ipclab-ex07/inner")]
#[case::longer_than_name_max(&format!("/{}", "x".repeat(256)))]
fn bonus_invalid_posix_names_are_refused(#[case] name: &str) {
    isolated(NEVER_RETURNED_HINT, || {
        let results = (
            NamedSemaphore::open(name).err(),
            SharedMemory::open(name).err(),
            MessageQueue::open(name).err(),
        );
        assert!(
            matches!(
                results,
                (
                    Some(Error::InvalidName { .. }),
                    Some(Error::InvalidName { .. }),
                    Some(Error::InvalidName { .. })
                )
            ),
            "a POSIX IPC name is '/' and then 1 to NAME_MAX characters without '/'; {name:?} is not \
             one: expected Error::InvalidName from all three opens, before any system call, got \
             {results:?}"
        );
    });
}

#[test]
fn bonus_posix_names_are_unlinked_even_when_the_code_panics() {
    isolated(NEVER_RETURNED_HINT, || {
        let (sem, shm, mq) = (unique_name("sem"), unique_name("shm"), unique_name("mq"));
        let _nets = (
            UnlinkAtEnd(Posix::Semaphore, sem.clone()),
            UnlinkAtEnd(Posix::SharedMemory, shm.clone()),
            UnlinkAtEnd(Posix::MessageQueue, mq.clone()),
        );
        let (created_tx, created_rx) = mpsc::channel();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let _all = (
                NamedSemaphore::create(&sem, 1).expect("NamedSemaphore::create"),
                SharedMemory::create(&shm, 64).expect("SharedMemory::create"),
                MessageQueue::create(&mq).expect("MessageQueue::create"),
            );
            created_tx.send(()).expect("send");
            panic!("the code using the objects panics halfway");
        }));
        if created_rx.try_recv().is_err() {
            // Creating them failed: that panic is the test's answer.
            panic::resume_unwind(outcome.expect_err("the body always panics"));
        }
        let left: Vec<String> = [
            (
                sem_file(&sem).exists(),
                sem_file(&sem).display().to_string(),
            ),
            (
                shm_file(&shm).exists(),
                shm_file(&shm).display().to_string(),
            ),
            (mq_exists(&mq), format!("message queue {mq}")),
        ]
        .into_iter()
        .filter_map(|(exists, what)| exists.then_some(what))
        .collect();
        assert!(
            left.is_empty(),
            "{left:?} survived a panic: unlinking belongs in PosixName's Drop, which runs while \
             unwinding"
        );
    });
}
