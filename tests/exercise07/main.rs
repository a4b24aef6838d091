//! The graded suite of exercise 07: semaphores and locks.
//!
//! Each test grades one behaviour of one task (`taskN_…`). The kernel is the witness: who sleeps
//! on a semaphore or a lock (the system call each thread is blocked in) and which semaphore sets
//! exist (the System V table of the test's IPC namespace) come from the judge's own snapshots at
//! the test's checkpoints, with each semaphore's value and the file locks of `/proc/locks`, and
//! each descriptor's flags (`O_APPEND`); log files are read by the judge itself from the test's
//! scratch directory. Where an interleaving matters, the test makes it happen: writers wait at a
//! gate until all are ready, a traced writer stops at every system call so that the judge sees
//! the lock between two lines of a record, and a `pthread_atfork` handler lets the judge look
//! when the last counting child has been forked. Every test runs in a process of its own with a
//! deadline (`isolated`). The bonus tests are ungraded and opt-in (`#[ignore]`):
//! `cargo test -p exercise07 -- --ignored` runs them.

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
use ipclab_support::procfs::FdTarget;
use ipclab_support::{checkpoint, isolated, isolated_for, procfs, Deadline, Snapshot, Witness};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{pipe, Pid};
use rstest::rstest;
use serde::{Deserialize, Serialize};

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

/// The judge's reading: the value of semaphore set `id` in the snapshot at checkpoint `label`.
#[track_caller]
fn value_at(seen: &Witness, label: &str, id: i32) -> i32 {
    let snap = seen.at(label);
    snap.semaphores_of(id).first().map_or_else(
        || panic!("at checkpoint {label:?} the kernel lists no semaphore set {id}"),
        |s| s.value,
    )
}

/// How many processes sleep in the semaphore's wait queue, as the kernel reports it.
fn kernel_waiters(id: i32) -> i32 {
    // SAFETY: GETNCNT takes no fourth argument.
    unsafe { libc::semctl(id, 0, libc::GETNCNT) }
}

/// Waits until the kernel shows `n` processes asleep on semaphore `id` (an event, polled), then
/// lets the judge look (checkpoint `label`): it checks who sleeps there itself.
#[track_caller]
fn wait_for_waiters(id: i32, n: i32, what: &str, label: &str) {
    let started = Instant::now();
    while kernel_waiters(id) != n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: the kernel shows {} processes waiting on the semaphore, expected {n}",
            kernel_waiters(id)
        );
        thread::yield_now();
    }
    checkpoint(label);
}

/// The judge's check: process `pid` sleeps in semop on set `id` in `snap`.
#[track_caller]
fn assert_sleeps_on_semaphore(snap: &Snapshot, pid: i32, id: i32, what: &str) {
    let process = snap.expect_process(pid, what);
    let asleep = process.threads.iter().any(|t| {
        t.blocked.is_some_and(|c| {
            (c.number == libc::SYS_semop || c.number == libc::SYS_semtimedop)
                && c.args[0] as i32 == id
        })
    });
    let calls: Vec<_> = process.threads.iter().map(|t| t.blocked).collect();
    assert!(
        asleep,
        "{what}: the kernel shows process {pid} asleep in {calls:?}, not in semop on set {id}"
    );
}

fn files((read, write): (std::os::fd::OwnedFd, std::os::fd::OwnedFd)) -> (File, File) {
    (File::from(read), File::from(write))
}

/// A result of the code under test as plain data: whether it was the expected one, and its
/// `Debug` text for the message.
fn seen<T: std::fmt::Debug>(result: &T, expected: bool) -> (bool, String) {
    (expected, format!("{result:?}"))
}

// ---------------------------------------------------------------------------------------------
// Task 1: a semaphore makes shared-memory updates safe.

#[rstest]
#[case::closed(0)]
#[case::binary(1)]
#[case::counting(5)]
fn task1_semaphore_starts_at_its_initial_value(#[case] initial: i32) {
    isolated(NEVER_RETURNED_HINT, || {
        // A set of the test's own first: the student's is then not the namespace's first
        // (whose id is 0), so an id() that returns a constant shows.
        // SAFETY: semget takes plain integers.
        let decoy = unsafe { libc::semget(libc::IPC_PRIVATE, 1, libc::IPC_CREAT | 0o600) };
        assert!(decoy >= 0, "semget: {}", std::io::Error::last_os_error());
        let _decoy = RemoveAtEnd(decoy);
        let (sem, _net) = semaphore(initial);
        checkpoint("created");
        (decoy, sem.id(), sem.value().expect("value"))
    })
    .judge(|(decoy, id, value): (i32, i32, i32), seen| {
        let created = seen.at("created");
        assert_ne!(
            id, decoy,
            "id() returned {id}, the id of the test's own set, created before: return the id \
             semget gave the new set"
        );
        assert!(
            created.semaphore_set(id).is_some(),
            "Semaphore::new returned id {id}, but the kernel lists no such set"
        );
        assert_eq!(
            created.semaphore_sets.len(),
            2,
            "Semaphore::new must create exactly one set; the kernel lists {:?}",
            created
                .semaphore_sets
                .iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            value_at(seen, "created", id),
            initial,
            "the kernel holds a different value: set it with semctl(SETVAL) after semget"
        );
        assert_eq!(value, initial, "value() is semctl(GETVAL)");
    });
}

#[test]
fn task1_wait_takes_one_and_post_gives_one_back() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(2);
        sem.wait().expect("wait");
        checkpoint("waited once");
        sem.wait().expect("wait");
        checkpoint("waited twice");
        sem.post().expect("post");
        checkpoint("posted");
        sem.id()
    })
    .judge(|id: i32, seen| {
        assert_eq!(value_at(seen, "waited once", id), 1, "wait (P) subtracts 1");
        assert_eq!(
            value_at(seen, "waited twice", id),
            0,
            "wait (P) subtracts 1"
        );
        assert_eq!(value_at(seen, "posted", id), 1, "post (V) adds 1");
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
            "child waits",
        );
        sem.post().expect("post");
        let code = exit_code(child, "the child");
        checkpoint("child done");
        (sem.id(), child.as_raw(), code)
    })
    .judge(|(id, child, code): (i32, i32, i32), seen| {
        let value = value_at(seen, "child done", id);
        assert_sleeps_on_semaphore(
            seen.at("child waits"),
            child,
            id,
            "the child's wait() on a semaphore at 0 should sleep in the kernel's wait queue",
        );
        assert_eq!(code, 0, "the child's wait() should succeed after the post");
        assert_eq!(value, 0, "the child took the unit the parent gave");
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
        let code = exit_code(child, "the child");
        assert_eq!(code, 0);
        (code, counter.get())
    })
    .judge(|(code, count): (i32, u64), _| {
        assert_eq!(code, 0);
        assert_eq!(
            count, 5,
            "the child's increments are invisible to the parent: the counter must live in a \
             MAP_SHARED mapping made before fork (a private mapping is copied on write)"
        );
    });
}

/// The start addresses of this process's shared mappings of anonymous memory (`rw-s`, backed by
/// `/dev/zero (deleted)`), as `/proc/self/maps` lists them.
fn shared_anonymous_mappings() -> Vec<String> {
    let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.lines()
        .filter(|line| {
            let mut fields = line.split_whitespace();
            let perms = fields.nth(1).unwrap_or("");
            perms.ends_with('s') && line.contains("/dev/zero")
        })
        .filter_map(|line| line.split('-').next().map(str::to_owned))
        .collect()
}

#[test]
fn task1_a_dropped_counter_gives_its_page_back() {
    isolated(NEVER_RETURNED_HINT, || {
        let before = shared_anonymous_mappings();
        let counter = SharedCounter::new().expect("SharedCounter::new");
        let made: Vec<String> = shared_anonymous_mappings()
            .into_iter()
            .filter(|m| !before.contains(m))
            .collect();
        drop(counter);
        let left: Vec<String> = shared_anonymous_mappings()
            .into_iter()
            .filter(|m| made.contains(m))
            .collect();
        (made, left)
    })
    .judge(|(made, left): (Vec<String>, Vec<String>), _| {
        assert!(
            !made.is_empty(),
            "SharedCounter::new made no shared anonymous mapping (/proc/self/maps lists none \
             more than before): map it with MAP_SHARED | MAP_ANONYMOUS"
        );
        assert!(
            left.is_empty(),
            "the counter's mapping at {left:?} is still in /proc/self/maps after the \
             SharedCounter was dropped: its Drop must munmap it, or every counter leaks a page"
        );
    });
}

/// How many children the test expects `count_in_processes` to fork, and how many forks it has
/// seen: [`after_fork_in_parent`] counts them.
static CHILDREN_EXPECTED: AtomicUsize = AtomicUsize::new(usize::MAX);
static FORKS_SEEN: AtomicUsize = AtomicUsize::new(0);

/// A `pthread_atfork` handler of the test: it runs in the parent after every `fork`. After the
/// last child's fork it waits until every child is asleep (waiting for the start) or has ended,
/// then lets the judge look: children that really start together are all there, waiting.
extern "C" fn after_fork_in_parent() {
    let forks = FORKS_SEEN.fetch_add(1, Ordering::SeqCst) + 1;
    if forks != CHILDREN_EXPECTED.load(Ordering::SeqCst) {
        return;
    }
    let me = nix::unistd::getpid();
    let started = Instant::now();
    // A child that runs (increments) is neither asleep nor ended; it ends soon.
    while !procfs::children(me)
        .iter()
        .all(|c| c.is_zombie() || procfs::blocked_call(c.pid).is_some())
        && started.elapsed() < Duration::from_secs(10)
    {
        thread::yield_now();
    }
    checkpoint("last child forked");
}

#[test]
fn task1_without_a_lock_updates_are_lost() {
    let (processes, iterations) = (4, 5000);
    isolated_for(Deadline::secs(30), COUNT_HINT, || {
        CHILDREN_EXPECTED.store(processes, Ordering::SeqCst);
        // SAFETY: registers a handler that runs in this (the parent) process after each fork.
        let registered = unsafe { libc::pthread_atfork(None, Some(after_fork_in_parent), None) };
        assert_eq!(registered, 0, "pthread_atfork");
        let total = count_in_processes(processes, iterations, None).expect("count_in_processes");
        let expected = (processes * iterations) as u64;
        println!("without a lock: {total} of {expected} increments arrived");
        (total, FORKS_SEEN.load(Ordering::SeqCst))
    })
    .judge(|(total, forks): (u64, usize), seen| {
        let expected = (processes * iterations) as u64;
        let Some(forked) = seen.all_at("last child forked").first().copied() else {
            panic!(
                "count_in_processes({processes}, …) forked {forks} children, expected \
                 {processes} (the test counts calls of fork())"
            )
        };
        let children = forked.children_of(forked.root);
        assert_eq!(
            children.len(),
            processes,
            "when the last child was forked, the test process had {} children, expected all \
             {processes} at once",
            children.len()
        );
        for child in &children {
            assert!(
                !child.info.is_zombie(),
                "child {} had already done its increments and ended before the last child was \
                 forked: the children must start together. Fork them all first, each waiting \
                 (asleep) for the start, then let them all go (e.g. they read a pipe whose write \
                 end the parent closes after the last fork)",
                child.pid()
            );
            assert!(
                child.threads.iter().any(|t| t.blocked.is_some()),
                "child {} was already running when the last child was forked: the children must \
                 start together. Fork them all first, each waiting (asleep) for the start, then \
                 let them all go",
                child.pid()
            );
        }
        assert!(
            total > 0,
            "no increment arrived at all: are the children using the shared counter?"
        );
        assert!(
            total < expected,
            "{processes} processes each incremented {iterations} times without a lock, and no \
             update was lost ({total}). With read, sched_yield, write in every increment and all \
             children started together, their read-modify-writes must overlap: does \
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
        checkpoint("counted");
        (sem.id(), total)
    })
    .judge(|(id, total): (i32, u64), seen| {
        let value = value_at(seen, "counted", id);
        assert_eq!(
            total,
            (processes * iterations) as u64,
            "with every increment between wait() and post() on a semaphore starting at 1, no \
             update may be lost"
        );
        assert_eq!(
            value, 1,
            "after all the children, the semaphore must be back at 1: every wait needs its post"
        );
        let counted = seen.at("counted");
        let row = counted
            .semaphore_set(id)
            .expect("the set is listed in /proc/sysvipc/sem");
        assert!(
            row.otime > 0,
            "the kernel records no semop on the semaphore: the children must use it"
        );
        counted.assert_no_zombies("Reap every counting child with waitpid.");
    });
}

#[test]
fn task1_a_child_that_cannot_count_is_reported() {
    isolated_for(Deadline::secs(30), COUNT_HINT, || {
        let (sem, _net) = semaphore(1);
        // The set is gone before any child uses it: every child's wait() fails.
        // SAFETY: IPC_RMID takes no fourth argument.
        let gone = unsafe { libc::semctl(sem.id(), 0, libc::IPC_RMID) } == 0;
        let result = count_in_processes(2, 10, Some(&sem));
        checkpoint("counted");
        (
            gone,
            seen(
                &result,
                matches!(
                    result,
                    Err(Error::ChildFailed { .. } | Error::Removed { .. })
                ),
            ),
        )
    })
    .judge(|(gone, (reported, result)): (bool, (bool, String)), seen| {
        assert!(gone, "the test could not remove the semaphore set itself");
        assert!(
            reported,
            "the semaphore set was removed, so every child's wait() failed, yet \
             count_in_processes returned {result}: a child that cannot do its work must end \
             with a nonzero status, and the parent must report it (Err(Error::ChildFailed))"
        );
        seen.at("counted")
            .assert_no_zombies("Reap every counting child with waitpid, also when one fails.");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 2: SEM_UNDO.

#[test]
fn task2_try_wait_says_whether_it_got_the_semaphore() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(1);
        let first = sem.try_wait().expect("try_wait");
        checkpoint("taken");
        let again = sem.try_wait();
        (sem.id(), first, seen(&again, matches!(again, Ok(false))))
    })
    .judge(
        |(id, first, (refused, again)): (i32, bool, (bool, String)), seen| {
            assert!(first, "the semaphore was free (1)");
            assert_eq!(
                value_at(seen, "taken", id),
                0,
                "try_wait returned true, so it took the unit (semop -1 with IPC_NOWAIT)"
            );
            assert!(
            refused,
            "at 0, a semop with IPC_NOWAIT fails with EAGAIN, which means \"not now\": expected \
             Ok(false), got {again}"
        );
        },
    );
}

#[test]
fn task2_waiters_counts_the_processes_asleep_on_the_semaphore() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(0);
        let none = sem.waiters().expect("waiters");
        let children: Vec<Pid> = (0..2)
            .map(|_| spawn_child(|| i32::from(sem.wait().is_err())))
            .collect();
        wait_for_waiters(
            sem.id(),
            2,
            "two children's wait() on a semaphore at 0 should sleep in its wait queue",
            "two asleep",
        );
        let two = sem.waiters().expect("waiters");
        for _ in &children {
            sem.post().expect("post");
        }
        let codes: Vec<i32> = children
            .iter()
            .map(|c| exit_code(*c, "a waiting child"))
            .collect();
        (sem.id(), none, two, codes, sem.waiters().expect("waiters"))
    })
    .judge(
        |(id, none, two, codes, after): (i32, i32, i32, Vec<i32>, i32), seen| {
            let asleep = seen
                .at("two asleep")
                .semaphores_of(id)
                .first()
                .map(|s| s.waiting_to_decrease);
            assert_eq!(asleep, Some(2), "the kernel counts two processes asleep");
            assert_eq!(
                (none, two, after),
                (0, 2, 0),
                "waiters() is semctl(GETNCNT): the number of processes asleep in wait(), 0 \
                 before the children wait, 2 while both do, 0 after both got a unit"
            );
            assert_eq!(
                codes,
                [0, 0],
                "both children's wait() succeeds after the posts"
            );
        },
    );
}

#[test]
fn task2_dropping_the_guard_gives_the_semaphore_back() {
    isolated(SEM_HINT, || {
        let (sem, _net) = semaphore(1);
        let guard = sem.lock().expect("lock");
        checkpoint("locked");
        drop(guard);
        checkpoint("released");
        sem.id()
    })
    .judge(|id: i32, seen| {
        let (locked, released) = (value_at(seen, "locked", id), value_at(seen, "released", id));
        assert_eq!(locked, 0, "lock takes the unit");
        assert_eq!(released, 1, "dropping the guard gives it back");
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
        checkpoint("holding");
        kill(holder, Signal::SIGKILL).expect("kill the holder");
        waitpid(holder, None).expect("waitpid");
        checkpoint("holder gone");
        (sem.id(), holder.as_raw())
    })
    .judge(|(id, holder): (i32, i32), seen| {
        let (held, after) = (
            value_at(seen, "holding", id),
            value_at(seen, "holder gone", id),
        );
        seen.at("holding")
            .expect_process(holder, "the holder, holding the semaphore");
        assert_eq!(held, 0, "the holder has the semaphore");
        assert!(
            seen.end.process(holder).is_none(),
            "the holder was killed and reaped"
        );
        assert_eq!(
            after, 1,
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
            "waiter sleeps",
        );
        kill(holder, Signal::SIGKILL).expect("kill the holder");
        waitpid(holder, None).expect("waitpid");
        let code = exit_code(waiter, "the child");
        checkpoint("waiter done");
        (sem.id(), waiter.as_raw(), code)
    })
    .judge(|(id, waiter, code): (i32, i32, i32), seen| {
        let value = value_at(seen, "waiter done", id);
        assert_sleeps_on_semaphore(
            seen.at("waiter sleeps"),
            waiter,
            id,
            "the second locker should sleep until the holder is gone",
        );
        assert_eq!(code, 0, "the waiter should get the semaphore");
        assert_eq!(value, 1, "nobody holds the semaphore at the end");
    });
}

// ---------------------------------------------------------------------------------------------
// Task 3: file locks.

/// One line of `/proc/locks`.
#[derive(Debug, Serialize, Deserialize)]
struct FileLock {
    /// A request that waits for the lock (shown with `->`).
    waiting: bool,
    /// `WRITE` (exclusive) or `READ` (shared).
    access: String,
    inode: u64,
}

/// The locks and lock requests among `table` (lines of `/proc/locks`) on the file with inode
/// `inode`.
fn locks_in<'a>(table: impl IntoIterator<Item = &'a str>, inode: u64) -> Vec<FileLock> {
    table
        .into_iter()
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

/// The locks on `inode` in the judge's snapshot.
fn locks_seen(snap: &Snapshot, inode: u64) -> Vec<FileLock> {
    locks_in(snap.file_locks.iter().map(String::as_str), inode)
}

/// The locks on `inode` now, as the test process reads them (only to wait for an event; the
/// judge reads its own snapshot).
fn locks_now(inode: u64) -> Vec<FileLock> {
    let table =
        ipclab_support::sysvipc::read_consistently("/proc/locks").expect("read /proc/locks");
    locks_in(table.lines(), inode)
}

fn holds_exclusive(locks: &[FileLock]) -> bool {
    locks.iter().any(|l| !l.waiting && l.access == "WRITE")
}

/// The log file of task 3, in the test's scratch directory: the judge reads it there itself.
const LOG: &str = "app.log";

fn log_path() -> PathBuf {
    std::env::temp_dir().join(LOG)
}

/// The judge's check: process `pid` sleeps waiting for a file lock (flock, or fcntl F_SETLKW).
#[track_caller]
fn assert_waits_for_a_lock(snap: &Snapshot, pid: i32, what: &str) {
    let process = snap.expect_process(pid, what);
    let waiting = process.threads.iter().any(|t| {
        t.blocked.is_some_and(|c| {
            c.number == libc::SYS_flock
                || (c.number == libc::SYS_fcntl && c.args[1] as i32 == libc::F_SETLKW)
                || (c.number == libc::SYS_fcntl && c.args[1] as i32 == libc::F_OFD_SETLKW)
        })
    });
    let calls: Vec<_> = process.threads.iter().map(|t| t.blocked).collect();
    assert!(waiting, "{what}: the kernel shows it asleep in {calls:?}");
}

/// A child process holding the log file's lock until told to let go.
struct Holder {
    pid: Pid,
    release: File,
}

impl Holder {
    /// Starts a child that takes `path`'s lock; returns once it holds it.
    fn start(path: &Path) -> Holder {
        // Here first, so that an error (or a todo!) is the test's answer.
        drop(LogFile::open(path).expect("LogFile::open"));
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

    /// Tells the holder to release the lock and exit; waits for it and returns its exit code.
    fn let_go(self) -> i32 {
        (&self.release)
            .write_all(b"!")
            .expect("tell the holder to let go");
        exit_code(self.pid, "the lock holder")
    }
}

/// What the test saw of a second locker.
#[derive(Debug, Serialize, Deserialize)]
struct SecondLocker {
    inode: u64,
    would_block: (bool, String),
    holder_code: i32,
    free_again: bool,
}

#[test]
fn task3_second_locker_is_told_it_would_block() {
    isolated(FILE_LOCK_HINT, || {
        let path = log_path();
        let holder = Holder::start(&path);
        let inode = fs::metadata(&path).expect("the log file exists").ino();
        checkpoint("held");

        let log = LogFile::open(&path).expect("open the log");
        let attempt = log.try_lock();
        let would_block = seen(&attempt, matches!(attempt, Ok(None)));
        drop(attempt);
        let holder_code = holder.let_go();
        let attempt = log.try_lock().expect("try_lock");
        let free_again = attempt.is_some();
        checkpoint("taken again");
        drop(attempt);
        checkpoint("dropped");
        SecondLocker {
            inode,
            would_block,
            holder_code,
            free_again,
        }
    })
    .judge(|got: SecondLocker, seen| {
        let held = locks_seen(seen.at("held"), got.inode);
        assert!(
            holds_exclusive(&held),
            "the kernel lists no exclusive lock on the log file in /proc/locks while the holder \
             holds it: lock with flock(LOCK_EX) or fcntl(F_SETLKW, F_WRLCK); found {held:?}"
        );
        assert!(
            got.would_block.0,
            "another process holds the lock, so a non-blocking request must report \"would \
             block\" as Ok(None); got {}",
            got.would_block.1
        );
        assert_eq!(got.holder_code, 0, "the lock holder failed");
        assert!(got.free_again, "the holder is gone: the lock is free again");
        let taken = locks_seen(seen.at("taken again"), got.inode);
        assert!(
            holds_exclusive(&taken),
            "try_lock returned a guard, but the kernel lists no exclusive lock on the log file: \
             {taken:?}"
        );
        let left = locks_seen(seen.at("dropped"), got.inode);
        assert!(
            left.is_empty(),
            "the lock must be released when its guard is dropped; /proc/locks still lists \
             {left:?}"
        );
    });
}

#[test]
fn task3_append_waits_for_the_lock() {
    isolated(FILE_LOCK_HINT, || {
        let path = log_path();
        let holder = Holder::start(&path);
        let inode = fs::metadata(&path).expect("the log file exists").ino();
        let writer = spawn_child(|| {
            let Ok(log) = LogFile::open(&path) else {
                return 1;
            };
            i32::from(log.append_record(&["first line", "second line"]).is_err())
        });
        // The kernel lists a waiting request (`->`) once the writer sleeps on the lock; a writer
        // that does not wait writes the file, or ends, instead.
        let started = Instant::now();
        while !locks_now(inode).iter().any(|l| l.waiting)
            && fs::metadata(&path).map_or(0, |m| m.len()) == 0
            && procfs::process(writer)
                .ok()
                .flatten()
                .is_some_and(|p| !p.is_zombie())
            && started.elapsed() < Duration::from_secs(10)
        {
            thread::yield_now();
        }
        checkpoint("writer waits");
        let while_held = fs::read_to_string(&path).expect("read the log");
        let holder_code = holder.let_go();
        let writer_code = exit_code(writer, "the child");
        (writer.as_raw(), inode, while_held, holder_code, writer_code)
    })
    .judge(
        |(writer, inode, while_held, holder_code, writer_code): (i32, u64, String, i32, i32),
         seen| {
            assert_eq!(
                while_held, "",
                "append_record wrote while another process held the lock: it must take the \
                 lock (and wait for it) before it writes"
            );
            let waiting = seen.at("writer waits");
            let locks = locks_seen(waiting, inode);
            assert!(
                locks.iter().any(|l| l.waiting),
                "append_record must wait for the lock another process holds (a blocking flock \
                 or F_SETLKW), but /proc/locks shows no waiting request: {locks:?}"
            );
            assert_waits_for_a_lock(
                waiting,
                writer,
                "append_record must wait for the lock another process holds (a blocking flock \
                 or F_SETLKW)",
            );
            assert_eq!(holder_code, 0, "the lock holder failed");
            assert_eq!(writer_code, 0, "append_record failed");
            assert_eq!(
                fs::read_to_string(seen.scratch.join(LOG)).expect("read the log"),
                "first line\nsecond line\n"
            );
        },
    );
}

/// The judge's check: every descriptor that process `pid` has open on the log has O_APPEND.
#[track_caller]
fn assert_log_open_for_appending(snap: &Snapshot, pid: i32) {
    let process = snap.expect_process(pid, "a writer, its log open");
    for (fd, entry) in &process.fds {
        let on_log =
            matches!(&entry.target, FdTarget::Path(p) if p.file_name() == Some(LOG.as_ref()));
        assert!(
            !on_log || entry.flags & libc::O_APPEND != 0,
            "writer {pid} has the log open as descriptor {fd} without O_APPEND (flags {:#o}): \
             open it for appending, so that every write goes to the end of the file as it is \
             then. Without O_APPEND each process writes at its own offset, over the other \
             writers' lines",
            entry.flags
        );
    }
}

#[test]
fn task3_concurrent_writers_never_interleave_records() {
    let (writers, records, lines) = (4, 50, 4);
    isolated_for(Deadline::secs(30), FILE_LOCK_HINT, || {
        let path = log_path();
        // Here first, so that an error (or a todo!) is the test's answer.
        drop(LogFile::open(&path).expect("LogFile::open"));
        let (ready_read, ready_write) = files(pipe().expect("pipe"));
        let (gate_read, gate_write) = files(pipe().expect("pipe"));
        let children: Vec<Pid> = (0..writers)
            .map(|w| {
                let (path, mut ready_write, mut gate_read) = (&path, &ready_write, &gate_read);
                spawn_child(move || {
                    let Ok(log) = LogFile::open(path) else {
                        return 1;
                    };
                    // Every writer has the log open before any starts: then they all start at
                    // once, and their records compete for the end of the file.
                    let _ = ready_write.write_all(b"!");
                    if gate_read.read_exact(&mut [0u8; 1]).is_err() {
                        return 3;
                    }
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
        drop(ready_write);
        let mut ready = vec![0u8; writers];
        let all_ready = (&ready_read).read_exact(&mut ready).is_ok();
        if all_ready {
            checkpoint("writers ready");
        }
        (&gate_write)
            .write_all(&ready)
            .expect("open the writers' gate");
        let codes: Vec<i32> = children
            .iter()
            .map(|child| exit_code(*child, "a writer"))
            .collect();
        (
            children.iter().map(|c| c.as_raw()).collect::<Vec<i32>>(),
            codes,
        )
    })
    .judge(|(pids, codes): (Vec<i32>, Vec<i32>), seen| {
        for code in &codes {
            match code {
                0 => {}
                1 => panic!("a writer's LogFile::open failed"),
                101 => panic!("a writer panicked"),
                _ => panic!("a writer's append_record failed (code {code})"),
            }
        }
        let ready = seen.at("writers ready");
        for pid in pids {
            assert_log_open_for_appending(ready, pid);
        }
        let content = fs::read_to_string(seen.scratch.join(LOG)).expect("read the log");
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

const RECORD: [&str; 3] = ["first line", "second line", "third line"];

/// The tracer's side of the test below: runs the traced `writer` from system call to system call
/// (its entries and exits), and at every stop where the log holds part of the record (at least
/// its first line, not all of it) lets the judge look. Returns the writer's exit code (or the
/// signal that ended it, negated) and how much of the log each look saw.
fn trace_the_writer(writer: Pid, path: &Path) -> (i32, Vec<u64>) {
    let first = RECORD[0].len() as u64 + 1;
    let whole: u64 = RECORD.iter().map(|l| l.len() as u64 + 1).sum();
    let mut status = 0;
    let mut looks = Vec::new();
    // SAFETY (every waitpid and ptrace below): plain integers and a status int of ours.
    let wait = |status: &mut i32| loop {
        if unsafe { libc::waitpid(writer.as_raw(), status, 0) } == writer.as_raw() {
            return;
        }
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINTR),
            "waitpid on the traced writer"
        );
    };
    wait(&mut status);
    assert!(
        libc::WIFSTOPPED(status),
        "the writer stops itself before it writes (status {status:#x})"
    );
    let options = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    assert_eq!(
        unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, writer.as_raw(), 0, options) },
        0,
        "PTRACE_SETOPTIONS: {}",
        std::io::Error::last_os_error()
    );
    let mut signal = 0;
    loop {
        assert_eq!(
            unsafe { libc::ptrace(libc::PTRACE_SYSCALL, writer.as_raw(), 0, signal) },
            0,
            "PTRACE_SYSCALL: {}",
            std::io::Error::last_os_error()
        );
        signal = 0;
        wait(&mut status);
        if libc::WIFEXITED(status) {
            return (libc::WEXITSTATUS(status), looks);
        }
        if libc::WIFSIGNALED(status) {
            return (-libc::WTERMSIG(status), looks);
        }
        let stop = libc::WSTOPSIG(status);
        if stop != libc::SIGTRAP | 0x80 {
            // A signal for the writer: deliver it.
            signal = stop;
            continue;
        }
        let written = fs::metadata(path).map_or(0, |m| m.len());
        if (first..whole).contains(&written) {
            checkpoint("part of the record written");
            looks.push(written);
        }
    }
}

#[test]
fn task3_the_lock_is_held_between_the_lines_of_a_record() {
    isolated(FILE_LOCK_HINT, || {
        let path = log_path();
        let log = LogFile::open(&path).expect("LogFile::open");
        let inode = fs::metadata(&path).expect("the log file exists").ino();
        let writer = spawn_child(|| {
            // The test traces this process: it stops at every system call, so the judge sees
            // the kernel's locks at each step of append_record, between every two lines.
            // SAFETY: PTRACE_TRACEME and raise take plain integers.
            if unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) } != 0 {
                return 3;
            }
            unsafe { libc::raise(libc::SIGSTOP) };
            i32::from(log.append_record(&RECORD).is_err())
        });
        let (code, looks) = trace_the_writer(writer, &path);
        (inode, code, looks)
    })
    .judge(|(inode, code, looks): (u64, i32, Vec<u64>), seen| {
        match code {
            0 => {}
            3 => panic!("the test could not trace its writer (PTRACE_TRACEME failed)"),
            c if c < 0 => panic!("the writer was killed by signal {}", -c),
            c => panic!("append_record failed (code {c})"),
        }
        let content = fs::read_to_string(seen.scratch.join(LOG)).expect("read the log");
        assert_eq!(
            content,
            RECORD.map(|l| format!("{l}\n")).concat(),
            "append_record writes each line of the record, each with its line break"
        );
        let stops = seen.all_at("part of the record written");
        assert!(
            !stops.is_empty(),
            "the log never held part of the record: append_record must write each line with a \
             write of its own (the test looks between the lines)"
        );
        for (snap, written) in stops.iter().zip(&looks) {
            let locks = locks_seen(snap, inode);
            assert!(
                holds_exclusive(&locks),
                "the writer let go of the lock in the middle of its record ({written} bytes of \
                 it written): another writer could have put its lines between these. Take the \
                 lock once for the whole record, not around each line; /proc/locks showed \
                 {locks:?}"
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
        checkpoint("created");
        drop(sem);
        checkpoint("dropped");
        id
    })
    .judge(|id: i32, seen| {
        let row = seen
            .at("created")
            .semaphore_set(id)
            .expect("the new set is listed in /proc/sysvipc/sem");
        assert_eq!(
            (row.nsems, row.mode & 0o777),
            (1, 0o640),
            "one semaphore, mode 0o640"
        );
        assert!(
            seen.at("dropped").semaphore_set(id).is_none(),
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
        checkpoint("created");
        sem.remove().expect("remove");
        checkpoint("removed");
        id
    })
    .judge(|id: i32, seen| {
        assert!(
            seen.at("created").semaphore_set(id).is_some(),
            "Semaphore::new returned id {id}, but the kernel lists no such set"
        );
        assert!(
            seen.at("removed").semaphore_set(id).is_none(),
            "set {id} is still listed after remove"
        );
    });
}

#[test]
fn task4_remove_reports_a_set_that_is_already_gone() {
    isolated(NEVER_RETURNED_HINT, || {
        let sem = Semaphore::new(1, 0o600).expect("Semaphore::new");
        let id = sem.id();
        // Another process (here: the test) removes the set first.
        // SAFETY: IPC_RMID takes no fourth argument.
        let gone = unsafe { libc::semctl(id, 0, libc::IPC_RMID) } == 0;
        let result = sem.remove();
        (
            id,
            gone,
            seen(
                &result,
                matches!(result, Err(Error::Removed { id: i }) if i == id),
            ),
        )
    })
    .judge(
        |(id, gone, (removed, result)): (i32, bool, (bool, String)), _| {
            assert!(gone, "the test could not remove set {id} itself");
            assert!(
                removed,
                "set {id} was removed by another process before remove() ran: semctl(IPC_RMID) \
             fails (EINVAL or EIDRM), and remove must report it as Err(Error::Removed {{ id: \
             {id} }}), not Ok; got {result}"
            );
        },
    );
}

#[test]
fn task4_set_is_removed_even_when_the_code_panics_halfway() {
    isolated(NEVER_RETURNED_HINT, || {
        let (ids_tx, ids_rx) = mpsc::channel();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let sem = Semaphore::new(1, 0o600).expect("Semaphore::new");
            ids_tx.send(sem.id()).expect("send the id");
            let _guard = sem.lock().expect("lock");
            checkpoint("created");
            panic!("the code holding the semaphore panics halfway");
        }));
        let Ok(id) = ids_rx.try_recv() else {
            // Creating it failed: that panic is the test's answer.
            panic::resume_unwind(outcome.expect_err("the body always panics"));
        };
        checkpoint("unwound");
        let _net = RemoveAtEnd(id);
        id
    })
    .judge(|id: i32, seen| {
        assert!(
            seen.at("created").semaphore_set(id).is_some(),
            "Semaphore::new returned id {id}, but the kernel lists no such set"
        );
        assert!(
            seen.at("unwound").semaphore_set(id).is_none(),
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
        seen(
            &result,
            matches!(result, Err(Error::InvalidValue { value: v }) if v == value),
        )
    })
    .judge(|(refused, result): (bool, String), _| {
        assert!(
            refused,
            "a semaphore holds 0 to SEMVMX ({SEMVMX}): expected Err(Error::InvalidValue {{ value: \
             {value} }}), got {result}"
        );
    });
}

#[rstest]
#[case::zero(0)]
#[case::semvmx(SEMVMX)]
fn task4_initial_values_at_the_limits_are_accepted(#[case] value: i32) {
    isolated(NEVER_RETURNED_HINT, || {
        let result = Semaphore::new(value, 0o600);
        let id = result.as_ref().map(Semaphore::id).ok();
        let _net = id.map(RemoveAtEnd);
        checkpoint("created");
        (id, format!("{:?}", result.as_ref().map(drop)))
    })
    .judge(|(id, result): (Option<i32>, String), seen| {
        let Some(id) = id else {
            panic!(
                "a semaphore holds 0 to SEMVMX ({SEMVMX}) inclusive: Semaphore::new({value}, \
                 0o600) must succeed, got {result} (is the range check 0..SEMVMX instead of \
                 0..=SEMVMX?)"
            )
        };
        let held = seen
            .at("created")
            .semaphores_of(id)
            .first()
            .map(|s| s.value);
        assert_eq!(
            held,
            Some(value),
            "the kernel holds {held:?} in set {id}, not the initial value {value} (semctl SETVAL)"
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
        seen(
            &result,
            matches!(result, Err(Error::InvalidMode { mode: 0o1600 })),
        )
    })
    .judge(|(refused, result): (bool, String), _| {
        assert!(
            refused,
            "mode 0o1600 has bits beyond 0o777, which semget would read as IPC_CREAT: expected \
             Err(Error::InvalidMode {{ mode: 0o1600 }}), got {result}"
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
        wait_for_waiters(id, 1, "wait() on a semaphore at 0 should sleep", "waiting");
        sem.remove().expect("remove");
        checkpoint("removed");
        (id, waiter.as_raw(), exit_code(waiter, "the child"))
    })
    .judge(|(id, waiter, code): (i32, i32, i32), seen| {
        assert_sleeps_on_semaphore(
            seen.at("waiting"),
            waiter,
            id,
            "wait() on a semaphore at 0 should sleep",
        );
        assert!(
            seen.at("removed").semaphore_set(id).is_none(),
            "set {id} is still listed after remove"
        );
        match code {
            0 => {}
            2 => panic!(
                "the waiter got an error other than Err(Error::Removed {{ id: {id} }}): semop \
                 fails with EIDRM when the set is removed while it sleeps"
            ),
            other => panic!("the waiter's wait() did not fail as it should (code {other})"),
        }
    });
}

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

/// The judge's check, after the test: nothing of `name` is left in /dev/shm (the judge looks at
/// the file system itself; /dev/shm is the machine's, not the test's own).
#[track_caller]
fn assert_gone_from_dev_shm(file: &str, message: &str) {
    assert!(!Path::new(file).exists(), "{message}");
}

// --- Bonus 1: a named semaphore

/// What the test saw of a named semaphore's life.
#[derive(Debug, Serialize, Deserialize)]
struct NamedSemaphoreLife {
    file: String,
    mode: u32,
    mapped: bool,
    values: Vec<u32>,
    file_after_unlink: bool,
    value_after_unlink: u32,
    reopened: (bool, String),
    mapped_after_close: bool,
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let me = nix::unistd::getpid();
        let mapped = maps_inode(me, meta.ino()).is_some();
        let mut values = vec![sem.value().expect("value")];
        sem.wait().expect("wait");
        values.push(sem.value().expect("value"));
        sem.post().expect("post");
        values.push(sem.value().expect("value"));

        drop(owned);
        let file_after_unlink = file.exists();
        sem.post().expect("post after unlink");
        let value_after_unlink = sem.value().expect("value");
        let again = NamedSemaphore::open(&name);
        let reopened = seen(&again, matches!(again, Err(Error::NoSuchName { .. })));
        drop(again);
        drop(sem);
        NamedSemaphoreLife {
            file: file.display().to_string(),
            mode: meta.mode() & 0o777,
            mapped,
            values,
            file_after_unlink,
            value_after_unlink,
            reopened,
            mapped_after_close: maps_inode(me, meta.ino()).is_some(),
        }
    })
    .judge(|got: NamedSemaphoreLife, _| {
        let file = &got.file;
        assert_eq!(got.mode, 0o600, "the semaphore's mode is 0o600");
        assert!(
            got.mapped,
            "sem_open maps {file} into the process: this process maps no such file"
        );
        assert_eq!(got.values.len(), 3);
        assert_eq!(got.values[0], 3, "value() is sem_getvalue");
        assert_eq!(got.values[1], 2, "wait (sem_wait) subtracts 1");
        assert_eq!(got.values[2], 3, "post (sem_post) adds 1");
        let unlinked = format!(
            "{file} is still there after the PosixName was dropped: its Drop must sem_unlink the \
             name"
        );
        assert!(!got.file_after_unlink, "{unlinked}");
        assert_gone_from_dev_shm(file, &unlinked);
        assert_eq!(
            got.value_after_unlink, 4,
            "unlinking removes the name, not the semaphore: a process that has it open keeps \
             using it"
        );
        assert!(
            got.reopened.0,
            "after sem_unlink, opening the name fails with ENOENT: expected \
             Err(Error::NoSuchName), got {}",
            got.reopened.1
        );
        assert!(
            !got.mapped_after_close,
            "dropping the NamedSemaphore must sem_close it, which unmaps its file"
        );
    });
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_named_semaphore_values_up_to_sem_value_max_are_accepted() {
    isolated(POSIX_SEM_HINT, || {
        let name = unique_name("sem");
        let _net = UnlinkAtEnd(Posix::Semaphore, name.clone());
        let largest = NamedSemaphore::create(&name, SEM_VALUE_MAX);
        let value = largest
            .as_ref()
            .ok()
            .map(|(sem, _)| format!("{:?}", sem.value()));
        let largest = format!("{:?}", largest.map(drop));
        let other = unique_name("sem");
        let _net = UnlinkAtEnd(Posix::Semaphore, other.clone());
        let above = NamedSemaphore::create(&other, SEM_VALUE_MAX + 1);
        let refused =
            matches!(above, Err(Error::ValueTooLarge { value }) if value == SEM_VALUE_MAX + 1);
        (largest, value, (refused, format!("{:?}", above.map(drop))))
    })
    .judge(
        |(largest, value, (refused, above)): (String, Option<String>, (bool, String)), _| {
            assert_eq!(
                largest, "Ok(())",
                "a POSIX semaphore holds 0 to SEM_VALUE_MAX ({SEM_VALUE_MAX}) inclusive: \
                 create(name, SEM_VALUE_MAX) must succeed (is the check `<` instead of `<=`?)"
            );
            assert_eq!(
                value.as_deref(),
                Some(format!("Ok({SEM_VALUE_MAX})").as_str()),
                "the semaphore created with SEM_VALUE_MAX holds it (sem_getvalue)"
            );
            assert!(
                refused,
                "SEM_VALUE_MAX + 1 does not fit a POSIX semaphore: expected \
                 Err(Error::ValueTooLarge {{ value: {} }}), got {above}",
                SEM_VALUE_MAX + 1
            );
        },
    );
}

/// What the test saw of processes counting under a named semaphore.
#[derive(Debug, Serialize, Deserialize)]
struct NamedCounting {
    file: String,
    counting: i32,
    /// The sleeping children, and whether each mapped the semaphore's file.
    sleepers: Vec<(i32, bool)>,
    code: i32,
    total: Option<u64>,
    value: u32,
    file_after_unlink: bool,
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_named_semaphore_processes_that_open_it_by_name_lose_no_update() {
    let (processes, iterations) = (4, 1000);
    isolated_for(Deadline::secs(30), POSIX_SEM_HINT, || {
        let name = unique_name("sem");
        let _net = UnlinkAtEnd(Posix::Semaphore, name.clone());
        let (sem, owned) = NamedSemaphore::create(&name, 0).expect("NamedSemaphore::create");
        // The test lets go of its handle: the children can reach the semaphore only by name.
        drop(sem);
        let file = sem_file(&name);
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
        checkpoint("children asleep");
        let sleepers: Vec<(i32, bool)> = sleepers
            .into_iter()
            .map(|child| (child.as_raw(), maps_line(child, &file).is_some()))
            .collect();

        // One unit, passed from child to child by wait and post.
        let opener = NamedSemaphore::open(&name).expect("NamedSemaphore::open");
        opener.post().expect("post");
        let mut total = [0u8; 8];
        let reported = (&total_read).read_exact(&mut total);
        let code = exit_code(counting, "the child");
        assert_eq!(code, 0, "count_with_named_semaphore failed");
        let value = opener.value().expect("value");
        drop(opener);
        owned.unlink().expect("unlink");
        NamedCounting {
            file: file.display().to_string(),
            counting: counting.as_raw(),
            sleepers,
            code,
            total: reported.ok().map(|()| u64::from_le_bytes(total)),
            value,
            file_after_unlink: file.exists(),
        }
    })
    .judge(|got: NamedCounting, seen| {
        let asleep = seen.at("children asleep");
        let futex_sleepers: Vec<i32> = asleep
            .children_of(got.counting)
            .into_iter()
            .filter(|c| {
                c.threads
                    .iter()
                    .any(|t| t.blocked.is_some_and(|call| call.number == libc::SYS_futex))
            })
            .map(|c| c.pid())
            .collect();
        assert_eq!(
            futex_sleepers.len(),
            processes,
            "the semaphore is at 0, so all {processes} counting children should sleep in \
             sem_wait (a futex wait); {} of them do",
            futex_sleepers.len()
        );
        for (child, mapped) in &got.sleepers {
            assert!(
                *mapped,
                "counting child {child} does not map {}: each child must open the semaphore by \
                 its name (NamedSemaphore::open, that is sem_open)",
                got.file
            );
        }
        assert_eq!(got.code, 0, "count_with_named_semaphore failed");
        let total = got.total.expect("the counting process reports its total");
        assert_eq!(
            total,
            (processes * iterations) as u64,
            "with every increment between wait() and post() on the named semaphore, no update \
             may be lost"
        );
        assert_eq!(
            got.value, 1,
            "after the children the semaphore holds the one unit again: every wait needs its post"
        );
        let unlinked = format!("{} outlived sem_unlink", got.file);
        assert!(!got.file_after_unlink, "{unlinked}");
        assert_gone_from_dev_shm(&got.file, &unlinked);
        seen.end
            .assert_no_zombies("Reap every counting child with waitpid.");
    });
}

// --- Bonus 2: shared memory

/// What the test saw of a shared memory segment's life.
#[derive(Debug, Serialize, Deserialize)]
struct SegmentLife {
    file: String,
    len: u64,
    mode: u32,
    size: usize,
    mapped: bool,
    in_file: Vec<u8>,
    in_mapping: Vec<u8>,
    mapped_after_drop: bool,
    file_after_munmap: bool,
    file_after_unlink: bool,
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let me = nix::unistd::getpid();
        let mapped = maps_line(me, &file).is_some();
        checkpoint("mapped");

        memory.write_at(100, b"hello").expect("write_at");
        let content = fs::read(&file).expect("read the segment's file");
        let other = fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .expect("open the file");
        other.write_all_at(b"world", 200).expect("write the file");
        drop(other);
        let mut in_mapping = [0u8; 5];
        memory.read_at(200, &mut in_mapping).expect("read_at");
        let size = memory.size();

        drop(memory);
        let mapped_after_drop = maps_line(me, &file).is_some();
        let file_after_munmap = file.exists();
        drop(owned);
        SegmentLife {
            file: file.display().to_string(),
            len: meta.len(),
            mode: meta.mode() & 0o777,
            size,
            mapped,
            in_file: content.get(100..105).unwrap_or_default().to_vec(),
            in_mapping: in_mapping.to_vec(),
            mapped_after_drop,
            file_after_munmap,
            file_after_unlink: file.exists(),
        }
    })
    .judge(|got: SegmentLife, seen| {
        let file = &got.file;
        assert_eq!(
            got.len, 4096,
            "the segment's size is the file's: give it with ftruncate"
        );
        assert_eq!(got.mode, 0o600, "the segment's mode is 0o600");
        assert_eq!(got.size, 4096);
        assert!(
            got.mapped,
            "this process maps no {file}: map the shm_open descriptor with mmap(MAP_SHARED)"
        );
        let open = seen
            .at("mapped")
            .test_process()
            .fds_to(&procfs::FdTarget::Path(PathBuf::from(file)));
        assert!(
            open.is_empty(),
            "a descriptor of {file} is still open: close it after mmap, the mapping keeps the segment"
        );
        assert_eq!(
            got.in_file, b"hello",
            "the segment is the file: bytes written through the mapping are in it"
        );
        assert_eq!(
            got.in_mapping, b"world",
            "bytes written to the file appear in the mapping"
        );
        assert!(!got.mapped_after_drop, "dropping SharedMemory must munmap it");
        assert!(got.file_after_munmap, "unmapping does not remove the name");
        let unlinked = format!(
            "{file} is still there after the PosixName was dropped: its Drop must shm_unlink the name"
        );
        assert!(!got.file_after_unlink, "{unlinked}");
        assert_gone_from_dev_shm(file, &unlinked);
    });
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let child_maps = maps_line(child, &file).is_some();
        let mut reply = [0u8; 5];
        memory.read_at(8000, &mut reply).expect("read_at");
        (&done_write)
            .write_all(b"!")
            .expect("let the other process go");
        (
            file.display().to_string(),
            child_maps,
            reply.to_vec(),
            exit_code(child, "the child"),
        )
    })
    .judge(
        |(file, child_maps, reply, code): (String, bool, Vec<u8>, i32), _| {
            assert!(
            child_maps,
            "the other process maps no {file}: SharedMemory::open must shm_open the name and mmap \
             it"
        );
            assert_eq!(
                reply, b"world",
                "the other process's write is not visible here: both must map the same segment \
             with MAP_SHARED"
            );
            assert_eq!(code, 0);
        },
    );
}

/// What the test saw of a segment whose name was unlinked while mapped.
#[derive(Debug, Serialize, Deserialize)]
struct UnlinkedSegment {
    file_after_unlink: bool,
    maps_line: Option<String>,
    seen: Vec<u8>,
    reopened: (bool, String),
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_shm_mapping_outlives_the_name() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let file = shm_file(&name);
        let (memory, owned) = SharedMemory::create(&name, 4096).expect("SharedMemory::create");
        memory.write_at(0, b"still here").expect("write_at");
        owned.unlink().expect("unlink");
        let file_after_unlink = file.exists();
        let maps_line = maps_line(nix::unistd::getpid(), &file);
        let mut seen_bytes = [0u8; 10];
        memory.read_at(0, &mut seen_bytes).expect("read_at");
        let again = SharedMemory::open(&name);
        UnlinkedSegment {
            file_after_unlink,
            maps_line,
            seen: seen_bytes.to_vec(),
            reopened: seen(&again, matches!(again, Err(Error::NoSuchName { .. }))),
        }
    })
    .judge(|got: UnlinkedSegment, _| {
        assert!(!got.file_after_unlink, "unlink removes the name at once");
        let line = got
            .maps_line
            .expect("the mapping stays after the name is gone (this process maps no such file)");
        assert!(
            line.ends_with("(deleted)"),
            "the kernel marks the mapping of an unlinked segment \"(deleted)\": {line}"
        );
        assert_eq!(got.seen, b"still here", "the segment lives while it is mapped");
        assert!(
            got.reopened.0,
            "after shm_unlink, opening the name fails with ENOENT: expected Err(Error::NoSuchName), \
             got {}",
            got.reopened.1
        );
    });
}

/// What the test saw of refused segment operations.
#[derive(Debug, Serialize, Deserialize)]
struct Refusals {
    too_long: (bool, String),
    near_max: (bool, String),
    empty: (bool, String),
    empty_file: String,
    empty_left: bool,
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_shm_out_of_bounds_and_empty_are_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let (memory, _owned) = SharedMemory::create(&name, 4096).expect("SharedMemory::create");
        let result = memory.write_at(4090, b"too long");
        let too_long = seen(
            &result,
            matches!(
                result,
                Err(Error::OutOfBounds {
                    offset: 4090,
                    len: 8,
                    size: 4096
                })
            ),
        );
        let result = memory.read_at(usize::MAX, &mut [0u8; 2]);
        let near_max = seen(&result, matches!(result, Err(Error::OutOfBounds { .. })));
        memory
            .write_at(4088, b"the end!")
            .expect("the last 8 bytes fit");

        let empty = unique_name("shm");
        let _net_empty = UnlinkAtEnd(Posix::SharedMemory, empty.clone());
        let result = SharedMemory::create(&empty, 0);
        let refused = (
            matches!(result, Err(Error::EmptySegment { .. })),
            format!("{:?}", result.as_ref().map(|(m, _)| m.size())),
        );
        drop(result);
        Refusals {
            too_long,
            near_max,
            empty: refused,
            empty_file: shm_file(&empty).display().to_string(),
            empty_left: shm_file(&empty).exists(),
        }
    })
    .judge(|got: Refusals, _| {
        assert!(
            got.too_long.0,
            "8 bytes at 4090 do not fit 4096: expected Err(Error::OutOfBounds {{ offset: 4090, len: \
             8, size: 4096 }}), got {}",
            got.too_long.1
        );
        assert!(
            got.near_max.0,
            "an offset near usize::MAX must be refused, not overflow: got {}",
            got.near_max.1
        );
        assert!(
            got.empty.0,
            "a segment of 0 bytes cannot be mapped: expected Err(Error::EmptySegment), got {}",
            got.empty.1
        );
        let left = "refusing an empty segment must leave no name behind";
        assert!(!got.empty_left, "{left}");
        assert_gone_from_dev_shm(&got.empty_file, left);
    });
}

// --- Bonus 3: a message queue with priorities

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_mq_highest_priority_comes_first() {
    isolated(MQ_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let (queue, _owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        for (message, priority) in MQ_SENT {
            queue.send(message.as_bytes(), priority).expect("send");
        }
        let queued = queue.queued().expect("queued");
        let received: Vec<(String, u32)> = (0..MQ_SENT.len())
            .map(|_| {
                let (bytes, priority) = queue.receive().expect("receive");
                (String::from_utf8_lossy(&bytes).into_owned(), priority)
            })
            .collect();
        (queued, received)
    })
    .judge(|(queued, received): (usize, Vec<(String, u32)>), _| {
        assert_eq!(queued, 5, "five messages are queued");
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

const MQ_SENT: [(&str, u32); 5] = [
    ("low", 1),
    ("high", 9),
    ("middle", 5),
    ("high again", 9),
    ("lowest", 0),
];

/// What the test saw of a queue another process sent to by name.
#[derive(Debug, Serialize, Deserialize)]
struct QueueByName {
    status: String,
    /// The queue's line in its mqueue directory, or why it could not be looked up.
    listed: std::result::Result<(String, String), String>,
    first: (Vec<u8>, u32),
    second: (Vec<u8>, u32),
    qsize_after: u64,
    exists_after_unlink: bool,
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let listed = mqueue_dir(&queue).map(|dir| {
            let listed = dir.join(&name[1..]);
            let text = fs::read_to_string(&listed).unwrap_or_else(|e| {
                panic!("the queue is not listed as {} ({e})", listed.display())
            });
            (listed.display().to_string(), text)
        });
        let first = queue.receive().expect("receive");
        let second = queue.receive().expect("receive");
        let qsize_after = qsize(&queue_status(&queue));
        owned.unlink().expect("unlink");
        let exists_after_unlink = mq_exists(&name);
        queue
            .send(b"still works", 0)
            .expect("a queue that is open stays usable after its name is gone");
        QueueByName {
            status,
            listed,
            first,
            second,
            qsize_after,
            exists_after_unlink,
        }
    })
    .judge(|got: QueueByName, _| {
        let status = &got.status;
        assert_eq!(
            qsize(status),
            10,
            "the kernel counts the bytes queued (QSIZE): \"ping\" and \"pong!!\" make 10, but \
             the queue's file says {status:?}"
        );
        match &got.listed {
            Ok((listed, text)) => assert_eq!(qsize(text), 10, "{listed} says {text:?}"),
            Err(why) => {
                println!("note: {why}; QSIZE was read through the queue's descriptor instead")
            }
        }
        assert_eq!(
            got.first,
            (b"pong!!".to_vec(), 2),
            "the higher priority comes first"
        );
        assert_eq!(got.second, (b"ping".to_vec(), 1));
        assert_eq!(got.qsize_after, 0, "the queue is empty again");
        assert!(
            !got.exists_after_unlink,
            "the queue can still be opened by its name after unlink: PosixName::unlink must \
             mq_unlink it"
        );
    });
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_mq_bad_priority_and_oversized_message_are_refused() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let (queue, _owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        let result = queue.send(b"x", MQ_PRIO_MAX);
        let priority = seen(
            &result,
            matches!(result, Err(Error::InvalidPriority { priority }) if priority == MQ_PRIO_MAX),
        );
        let result = queue.send(&vec![0u8; MQ_MESSAGE_SIZE + 1], 0);
        let too_long = seen(
            &result,
            matches!(
                result,
                Err(Error::MessageTooLong { len, max }) if len == MQ_MESSAGE_SIZE + 1 && max == MQ_MESSAGE_SIZE
            ),
        );
        queue
            .send(&vec![0u8; MQ_MESSAGE_SIZE], MQ_PRIO_MAX - 1)
            .expect("a full-size message at the highest priority fits");
        (priority, too_long, queue.queued().expect("queued"))
    })
    .judge(|(priority, too_long, queued): ((bool, String), (bool, String), usize), _| {
        assert!(
            priority.0,
            "priorities lie below MQ_PRIO_MAX ({MQ_PRIO_MAX}): expected \
             Err(Error::InvalidPriority), got {}",
            priority.1
        );
        assert!(
            too_long.0,
            "the queue's messages hold {MQ_MESSAGE_SIZE} bytes: expected Err(Error::MessageTooLong), \
             got {}",
            too_long.1
        );
        assert_eq!(queued, 1);
    });
}

// --- Bonus: names

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let missing = seen(
            &missing,
            matches!(
                missing,
                (
                    Some(Error::NoSuchName { .. }),
                    Some(Error::NoSuchName { .. }),
                    Some(Error::NoSuchName { .. })
                )
            ),
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
        let taken = seen(
            &taken,
            matches!(
                taken,
                (
                    Some(Error::NameTaken { .. }),
                    Some(Error::NameTaken { .. }),
                    Some(Error::NameTaken { .. })
                )
            ),
        );
        (missing, taken)
    })
    .judge(|(missing, taken): ((bool, String), (bool, String)), _| {
        assert!(
            missing.0,
            "opening a name that does not exist fails with ENOENT: expected Error::NoSuchName for \
             the semaphore, the segment and the queue, got {}",
            missing.1
        );
        assert!(
            taken.0,
            "creating with O_CREAT | O_EXCL a name that exists fails with EEXIST: expected \
             Error::NameTaken for all three, got {}",
            taken.1
        );
    });
}

#[rstest]
#[case::no_leading_slash("ipclab-ex07-no-slash")]
#[case::nothing_after_the_slash("/")]
#[case::dot("/.")]
#[case::dot_dot("/..")]
#[case::a_second_slash("/ipclab-ex07/inner")]
#[case::longer_than_name_max(&format!("/{}", "x".repeat(256)))]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_invalid_posix_names_are_refused(#[case] name: &str) {
    isolated(NEVER_RETURNED_HINT, || {
        let results = (
            NamedSemaphore::open(name).err(),
            SharedMemory::open(name).err(),
            MessageQueue::open(name).err(),
        );
        seen(
            &results,
            matches!(
                results,
                (
                    Some(Error::InvalidName { .. }),
                    Some(Error::InvalidName { .. }),
                    Some(Error::InvalidName { .. })
                )
            ),
        )
    })
    .judge(|(refused, results): (bool, String), _| {
        assert!(
            refused,
            "a POSIX IPC name is '/' and then 1 to NAME_MAX characters without '/'; {name:?} is not \
             one: expected Error::InvalidName from all three opens, before any system call, got \
             {results}"
        );
    });
}

/// A name of exactly `len` characters after its `/`, unique to this test.
fn name_of_length(kind: &str, len: usize) -> String {
    let base = unique_name(kind);
    format!("{base}{}", "x".repeat(len + 1 - base.len()))
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_posix_names_at_the_length_limit_are_accepted() {
    isolated(NEVER_RETURNED_HINT, || {
        let (sem, shm, mq) = (
            name_of_length("sem", 251),
            name_of_length("shm", 255),
            name_of_length("mq", 255),
        );
        let too_long_sem = name_of_length("sem", 252);
        let _nets = (
            UnlinkAtEnd(Posix::Semaphore, sem.clone()),
            UnlinkAtEnd(Posix::SharedMemory, shm.clone()),
            UnlinkAtEnd(Posix::MessageQueue, mq.clone()),
            UnlinkAtEnd(Posix::Semaphore, too_long_sem.clone()),
        );
        let at_limit = (
            format!("{:?}", NamedSemaphore::create(&sem, 1).map(drop)),
            format!("{:?}", SharedMemory::create(&shm, 64).map(drop)),
            format!("{:?}", MessageQueue::create(&mq).map(drop)),
        );
        let above = NamedSemaphore::create(&too_long_sem, 1);
        let refused = seen(&above, matches!(above, Err(Error::InvalidName { .. })));
        (at_limit, refused)
    })
    .judge(
        |((sem, shm, mq), refused): ((String, String, String), (bool, String)), _| {
            assert_eq!(
                sem, "Ok(())",
                "a semaphore's name may have 251 characters after its '/' (its file is \
                 /dev/shm/sem.<name>, at most NAME_MAX = 255): create with 251 must succeed"
            );
            assert_eq!(
                shm, "Ok(())",
                "a shared memory segment's name may have NAME_MAX = 255 characters after its \
                 '/': create with 255 must succeed (the limit is the largest length allowed)"
            );
            assert_eq!(
                mq, "Ok(())",
                "a message queue's name may have NAME_MAX = 255 characters after its '/': \
                 create with 255 must succeed (the limit is the largest length allowed)"
            );
            assert!(
                refused.0,
                "a semaphore's name of 252 characters after its '/' makes a file name longer \
                 than NAME_MAX (sem. + 252): expected Err(Error::InvalidName), got {}",
                refused.1
            );
        },
    );
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_unlinking_a_name_that_is_already_gone_is_reported() {
    isolated(NEVER_RETURNED_HINT, || {
        let name = unique_name("shm");
        let _net = UnlinkAtEnd(Posix::SharedMemory, name.clone());
        let (segment, owned) = SharedMemory::create(&name, 64).expect("SharedMemory::create");
        // Somebody else unlinks the name first.
        let cname = CString::new(name.as_str()).expect("no NUL in test names");
        nix::sys::mman::shm_unlink(cname.as_c_str()).expect("the test's shm_unlink");
        let result = owned.unlink();
        drop(segment);
        seen(&result, matches!(result, Err(Error::NoSuchName { .. })))
    })
    .judge(|(reported, result): (bool, String), _| {
        assert!(
            reported,
            "PosixName::unlink of a name somebody else unlinked first must say so: shm_unlink \
             fails with ENOENT, which is Err(Error::NoSuchName); got {result}"
        );
    });
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
fn bonus_mq_dropping_the_queue_closes_its_descriptor() {
    isolated(MQ_HINT, || {
        let name = unique_name("mq");
        let _net = UnlinkAtEnd(Posix::MessageQueue, name.clone());
        let descriptors = || -> Vec<String> {
            fs::read_dir("/proc/self/fd")
                .expect("/proc/self/fd")
                .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
                .map(|target| target.display().to_string())
                .filter(|target| target.ends_with(&name[1..]))
                .collect()
        };
        let (queue, owned) = MessageQueue::create(&name).expect("MessageQueue::create");
        let open = descriptors().len();
        drop(queue);
        let left = descriptors().len();
        drop(owned);
        (open, left)
    })
    .judge(|(open, left): (usize, usize), _| {
        assert_eq!(
            open, 1,
            "after MessageQueue::create this process should hold one descriptor of the queue \
             (/proc/self/fd links to its name)"
        );
        assert_eq!(
            left, 0,
            "the queue's descriptor is still open after the MessageQueue was dropped: its Drop \
             must mq_close it"
        );
    });
}

#[test]
#[ignore = "ungraded bonus: `cargo test -p exercise07 -- --ignored` runs the bonus tests"]
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
        let files = [
            sem_file(&sem).display().to_string(),
            shm_file(&shm).display().to_string(),
        ];
        let left: Vec<String> = [
            (Path::new(&files[0]).exists(), files[0].clone()),
            (Path::new(&files[1]).exists(), files[1].clone()),
            (mq_exists(&mq), format!("message queue {mq}")),
        ]
        .into_iter()
        .filter_map(|(exists, what)| exists.then_some(what))
        .collect();
        (files, left)
    })
    .judge(|(files, left): ([String; 2], Vec<String>), _| {
        // The judge looks at /dev/shm itself; the queue lives in the test's IPC namespace.
        let mut left = left;
        for file in files {
            if Path::new(&file).exists() && !left.contains(&file) {
                left.push(file);
            }
        }
        assert!(
            left.is_empty(),
            "{left:?} survived a panic: unlinking belongs in PosixName's Drop, which runs while \
             unwinding"
        );
    });
}
