//! Every mechanism of the course, measured the same way: one-way throughput at several sizes and
//! a one-byte round trip, each checked byte for byte, beside memcpy and a trivial system call.
//!
//! Each mechanism is reduced to a pair of descriptors (or a System V object) so that one sender
//! and one receiver loop serve them all: what differs between two rows is the kernel's path,
//! never the benchmark's code.

use std::hint::black_box;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::socket::{
    bind, connect, getsockname, setsockopt, socket, socketpair, sockopt, AddressFamily, SockFlag,
    SockType, SockaddrIn, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::unistd::{getpid, mkfifo, pipe2};

use crate::proc::{read_some, sys, write_all, Child, Error, Result};

/// A mechanism that moves bytes between two descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fds {
    Pipe,
    PipeBig,
    Fifo,
    SocketStream,
    SocketDgram,
    UnixStream,
    Tcp,
    Udp,
}

impl Fds {
    pub const ALL: [Fds; 8] = [
        Fds::Pipe,
        Fds::PipeBig,
        Fds::Fifo,
        Fds::SocketStream,
        Fds::SocketDgram,
        Fds::UnixStream,
        Fds::Tcp,
        Fds::Udp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fds::Pipe => "pipe (64 KiB)",
            Fds::PipeBig => "pipe (1 MiB)",
            Fds::Fifo => "FIFO",
            Fds::SocketStream => "socketpair stream",
            Fds::SocketDgram => "socketpair datagram",
            Fds::UnixStream => "AF_UNIX stream",
            Fds::Tcp => "TCP loopback",
            Fds::Udp => "UDP loopback",
        }
    }

    /// Whether each write is one message (so a size above the socket's limit fails).
    fn datagram(self) -> bool {
        matches!(self, Fds::SocketDgram | Fds::Udp)
    }

    /// The sizes one write may have. UDP has no flow control: a fast sender loses datagrams on
    /// loopback, so it is measured for latency only.
    pub fn sizes(self, all: &[usize]) -> Vec<usize> {
        match self {
            Fds::Udp => vec![],
            Fds::SocketDgram => all.iter().copied().filter(|&s| s <= 64 * 1024).collect(),
            _ => all.to_vec(),
        }
    }

    /// (read end, write end) of a one-way channel.
    fn channel(self) -> Result<(OwnedFd, OwnedFd)> {
        match self {
            Fds::Pipe => pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2")),
            Fds::PipeBig => {
                let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))?;
                fcntl(&w, FcntlArg::F_SETPIPE_SZ(1 << 20)).map_err(sys("F_SETPIPE_SZ"))?;
                Ok((r, w))
            }
            Fds::Fifo => fifo(),
            Fds::SocketStream => pair(SockType::Stream),
            Fds::SocketDgram => pair(SockType::Datagram),
            Fds::UnixStream => unix_stream(),
            Fds::Tcp => tcp(),
            Fds::Udp => udp(),
        }
    }
}

fn pair(kind: SockType) -> Result<(OwnedFd, OwnedFd)> {
    socketpair(AddressFamily::Unix, kind, None, SockFlag::SOCK_CLOEXEC).map_err(sys("socketpair"))
}

/// A FIFO in the temporary directory, opened at both ends and unlinked at once: nothing stays.
fn fifo() -> Result<(OwnedFd, OwnedFd)> {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "ipclab-bench-{}-{}.fifo",
        getpid(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(sys("mkfifo"))?;
    let opened = (|| {
        let r = open(
            &path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open(fifo, O_RDONLY)"))?;
        let w = open(&path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys("open(fifo, O_WRONLY)"))?;
        fcntl(&r, FcntlArg::F_SETFL(OFlag::empty())).map_err(sys("fcntl(F_SETFL)"))?;
        Ok((r, w))
    })();
    let _ = std::fs::remove_file(&path);
    opened
}

/// Listens, connects and accepts: (accepted, connected).
fn listen_connect(
    family: AddressFamily,
    addr: &dyn Fn(&OwnedFd) -> Result<Box<dyn nix::sys::socket::SockaddrLike>>,
) -> Result<(OwnedFd, OwnedFd)> {
    let listener =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys("socket"))?;
    let target = addr(&listener)?;
    // SAFETY: plain integers.
    if unsafe { libc::listen(listener.as_raw_fd(), 4) } != 0 {
        return Err(Error::Sys {
            call: "listen",
            errno: Errno::last(),
        });
    }
    let client =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(sys("socket"))?;
    connect(client.as_raw_fd(), &*target).map_err(sys("connect"))?;
    let server = nix::sys::socket::accept(&listener).map_err(sys("accept"))?;
    Ok((server, client))
}

/// An abstract-namespace address: no file to remove afterwards.
fn unix_stream() -> Result<(OwnedFd, OwnedFd)> {
    listen_connect(AddressFamily::Unix, &|listener| {
        let name = format!("ipclab-bench-{}-{}", getpid(), listener.as_raw_fd());
        let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(sys("UnixAddr"))?;
        bind(listener.as_raw_fd(), &addr).map_err(sys("bind"))?;
        Ok(Box::new(addr))
    })
}

fn loopback(fd: &OwnedFd) -> Result<SockaddrIn> {
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).map_err(sys("bind"))?;
    getsockname::<SockaddrIn>(fd.as_raw_fd()).map_err(sys("getsockname"))
}

fn tcp() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = listen_connect(AddressFamily::Inet, &|l| Ok(Box::new(loopback(l)?)))?;
    for fd in [&r, &w] {
        setsockopt(fd, sockopt::TcpNoDelay, &true).map_err(sys("setsockopt(TCP_NODELAY)"))?;
    }
    Ok((r, w))
}

fn udp() -> Result<(OwnedFd, OwnedFd)> {
    let open = || {
        socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(sys("socket"))
    };
    let (a, b) = (open()?, open()?);
    let (addr_a, addr_b) = (loopback(&a)?, loopback(&b)?);
    connect(a.as_raw_fd(), &addr_b).map_err(sys("connect"))?;
    connect(b.as_raw_fd(), &addr_a).map_err(sys("connect"))?;
    // A lost datagram must end the run with an error, not hang it.
    let timeout = nix::sys::time::TimeVal::new(5, 0);
    for fd in [&a, &b] {
        setsockopt(fd, sockopt::ReceiveTimeout, &timeout).map_err(sys("SO_RCVTIMEO"))?;
    }
    Ok((a, b))
}

// ---------------------------------------------------------------------------------------------
// The bytes sent: a pattern with a period that no size divides, so a misplaced byte shows.

const PERIOD: usize = 4093;

pub struct Pattern(Vec<u8>);

impl Pattern {
    /// The whole buffer: `PERIOD` + the largest chunk (what the C loops index into).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn new(max_chunk: usize) -> Pattern {
        Pattern(
            (0..PERIOD + max_chunk)
                .map(|i| ((i % PERIOD) * 7 + 13) as u8)
                .collect(),
        )
    }
    /// The `len` bytes that belong at stream offset `at`.
    pub(crate) fn at(&self, at: usize, len: usize) -> &[u8] {
        let start = at % PERIOD;
        &self.0[start..start + len]
    }
}

/// One way: a child writes `total` bytes in writes of `size`; we read and check each byte.
/// Returns bytes per second.
pub fn throughput(
    fds: Fds,
    size: usize,
    total: usize,
    pattern: &Pattern,
    child_cpu: usize,
) -> Result<f64> {
    let (read_end, write_end) = fds.channel()?;
    let total = total / size * size;
    let started = Instant::now();
    let child = Child::spawn("sender", Some(child_cpu), &[read_end.as_fd()], || {
        let mut sent = 0;
        while sent < total {
            let out = pattern.at(sent, size);
            if fds.datagram() {
                if nix::unistd::write(&write_end, out) != Ok(size) {
                    return 1;
                }
            } else if write_all(write_end.as_fd(), out).is_err() {
                return 1;
            }
            sent += size;
        }
        drop(write_end);
        0
    })?;
    let mut buf = vec![0u8; size];
    let mut got = 0;
    while got < total {
        let n = read_some(read_end.as_fd(), &mut buf).map_err(sys("read"))?;
        if n == 0 || (fds.datagram() && n != size) {
            break;
        }
        if buf[..n] != *pattern.at(got, n) {
            return Err(Error::BadEcho { what: fds.name() });
        }
        got += n;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    child.wait()?;
    if got != total {
        return Err(Error::ShortTransfer {
            what: fds.name(),
            sent: total,
            received: got,
        });
    }
    Ok(rate)
}

/// Round trips, timed one by one: seconds each, after `rounds / 10` untimed ones.
pub type Exchange<'a> = &'a mut dyn FnMut(u8) -> Result<()>;

pub fn time_rounds(rounds: usize, exchange: Exchange<'_>) -> Result<Vec<f64>> {
    for i in 0..rounds / 10 {
        exchange(i as u8)?;
    }
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let started = Instant::now();
        exchange(i as u8)?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(times)
}

/// A one-byte ping-pong over two channels (one each way); the child echoes each byte.
pub fn fd_latency(fds: Fds, rounds: usize, child_cpu: usize) -> Result<Vec<f64>> {
    let (req_r, req_w) = fds.channel()?;
    let (rep_r, rep_w) = fds.channel()?;
    let child = Child::spawn(
        "echo",
        Some(child_cpu),
        &[req_w.as_fd(), rep_r.as_fd()],
        move || {
            let mut byte = [0u8; 1];
            loop {
                match read_some(req_r.as_fd(), &mut byte) {
                    // End of file, or the empty datagram that ends a datagram session.
                    Ok(0) => return 0,
                    Ok(_) if write_all(rep_w.as_fd(), &byte).is_ok() => {}
                    _ => return 1,
                }
            }
        },
    )?;
    let times = time_rounds(rounds, &mut |b| {
        write_all(req_w.as_fd(), &[b]).map_err(sys("write"))?;
        let mut byte = [0u8; 1];
        match read_some(rep_r.as_fd(), &mut byte).map_err(sys("read"))? {
            1 if byte[0] == b => Ok(()),
            _ => Err(Error::BadEcho { what: fds.name() }),
        }
    });
    if fds.datagram() {
        let _ = nix::unistd::write(&req_w, &[]);
    }
    drop(req_w);
    child.wait()?;
    times
}

// ---------------------------------------------------------------------------------------------
// System V message queue, semaphores and shared memory; signals; eventfd.

pub fn msgmax() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

struct Queue(libc::c_int);

impl Queue {
    fn new() -> Result<Queue> {
        // SAFETY: plain integers.
        let id = unsafe { libc::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(Error::Sys {
                call: "msgget",
                errno: Errno::last(),
            });
        }
        Ok(Queue(id))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer.
        unsafe { libc::msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// A message buffer: a `long` type, then the text (`buf[8..]`).
fn msg_buf(text: usize) -> Vec<u64> {
    vec![0u64; 1 + text.div_ceil(8)]
}

fn msgsnd(id: libc::c_int, buf: &mut [u64], mtype: u64, text: &[u8]) -> Result<()> {
    buf[0] = mtype;
    // SAFETY: buf holds a long then at least text.len() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.as_mut_ptr().add(1).cast(), text.len())
    };
    loop {
        // SAFETY: as above.
        let rc = unsafe { libc::msgsnd(id, buf.as_ptr().cast(), text.len(), 0) };
        match rc {
            0 => return Ok(()),
            _ if Errno::last() == Errno::EINTR => continue,
            _ => {
                return Err(Error::Sys {
                    call: "msgsnd",
                    errno: Errno::last(),
                })
            }
        }
    }
}

/// Receives a message of type `mtype` (0: any): (type, text).
fn msgrcv(id: libc::c_int, buf: &mut [u64], mtype: i64) -> Result<(u64, &[u8])> {
    let room = (buf.len() - 1) * 8;
    loop {
        // SAFETY: buf has room for a long and `room` bytes.
        let rc = unsafe { libc::msgrcv(id, buf.as_mut_ptr().cast(), room, mtype, 0) };
        if let Ok(len) = usize::try_from(rc) {
            // SAFETY: the kernel wrote `len` bytes of text after the type.
            let text = unsafe { std::slice::from_raw_parts(buf.as_ptr().add(1).cast(), len) };
            return Ok((buf[0], text));
        }
        match Errno::last() {
            Errno::EINTR => continue,
            errno => {
                return Err(Error::Sys {
                    call: "msgrcv",
                    errno,
                })
            }
        }
    }
}

pub fn queue_throughput(size: usize, total: usize, pattern: &Pattern, cpu: usize) -> Result<f64> {
    let queue = Queue::new()?;
    let id = queue.0;
    let count = total / size;
    let started = Instant::now();
    let child = Child::spawn("queue sender", Some(cpu), &[], || {
        let mut buf = msg_buf(size);
        for i in 0..count {
            if msgsnd(id, &mut buf, 1, pattern.at(i * size, size)).is_err() {
                return 1;
            }
        }
        0
    })?;
    let mut buf = msg_buf(size);
    for i in 0..count {
        let (_, text) = msgrcv(id, &mut buf, 0)?;
        if text != pattern.at(i * size, size) {
            return Err(Error::BadEcho {
                what: "message queue",
            });
        }
    }
    let rate = (count * size) as f64 / started.elapsed().as_secs_f64();
    child.wait()?;
    Ok(rate)
}

pub fn queue_latency(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    let queue = Queue::new()?;
    let id = queue.0;
    let child = Child::spawn("queue echo", Some(cpu), &[], move || {
        let mut buf = msg_buf(8);
        loop {
            let byte = match msgrcv(id, &mut buf, 1) {
                Ok((_, [b])) => *b,
                Ok((_, [])) => return 0,
                _ => return 1,
            };
            if msgsnd(id, &mut buf, 2, &[byte]).is_err() {
                return 1;
            }
        }
    })?;
    let mut buf = msg_buf(8);
    let times = time_rounds(rounds, &mut |b| {
        msgsnd(id, &mut buf, 1, &[b])?;
        match msgrcv(id, &mut buf, 2)? {
            (_, [got]) if *got == b => Ok(()),
            _ => Err(Error::BadEcho {
                what: "message queue",
            }),
        }
    });
    msgsnd(id, &mut buf, 1, &[])?;
    child.wait()?;
    times
}

struct Semaphores(libc::c_int);

impl Drop for Semaphores {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID on a set we created.
        unsafe { libc::semctl(self.0, 0, libc::IPC_RMID) };
    }
}

fn semop(id: libc::c_int, num: u16, op: i16) -> Result<()> {
    let mut sop = libc::sembuf {
        sem_num: num,
        sem_op: op,
        sem_flg: 0,
    };
    loop {
        // SAFETY: one valid sembuf.
        if unsafe { libc::semop(id, &mut sop, 1) } == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            errno => {
                return Err(Error::Sys {
                    call: "semop",
                    errno,
                })
            }
        }
    }
}

/// Two semaphores, both at 0: we post the first and wait on the second; the child the reverse.
/// Removing the set ends the child (EIDRM).
pub fn semaphore_latency(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    // SAFETY: plain integers.
    let id = unsafe { libc::semget(libc::IPC_PRIVATE, 2, libc::IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(Error::Sys {
            call: "semget",
            errno: Errno::last(),
        });
    }
    let set = Semaphores(id);
    let child = Child::spawn("semaphore echo", Some(cpu), &[], move || loop {
        match semop(id, 0, -1) {
            Ok(()) if semop(id, 1, 1).is_ok() => {}
            Err(Error::Sys {
                errno: Errno::EIDRM | Errno::EINVAL,
                ..
            }) => return 0,
            _ => return 1,
        }
    })?;
    let times = time_rounds(rounds, &mut |_| {
        semop(id, 0, 1)?;
        semop(id, 1, -1)
    });
    drop(set);
    child.wait()?;
    times
}

/// Shared memory (System V, removed at once: it lives while attached): a counter each way,
/// waited on by spinning, then by yielding the CPU, so that both on one CPU still progress.
pub fn shm_latency(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    // SAFETY: plain integers.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    if id < 0 {
        return Err(Error::Sys {
            call: "shmget",
            errno: Errno::last(),
        });
    }
    // SAFETY: attach anywhere; mark for removal at once.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    if addr as isize == -1 {
        return Err(Error::Sys {
            call: "shmat",
            errno: Errno::last(),
        });
    }
    struct Detach(*mut libc::c_void);
    impl Drop for Detach {
        fn drop(&mut self) {
            // SAFETY: attached above, detached once.
            unsafe { libc::shmdt(self.0) };
        }
    }
    let _detach = Detach(addr);
    // SAFETY: the segment is page-aligned, zeroed and at least two u32 long; atomics only.
    let (ping, pong) = unsafe {
        let p = addr.cast::<AtomicU32>();
        (&*p, &*p.add(16))
    };
    let wait = |cell: &AtomicU32, want: u32| {
        let mut spins = 0u32;
        while cell.load(Ordering::Acquire) != want {
            spins += 1;
            if spins > 2000 {
                // SAFETY: no arguments.
                unsafe { libc::sched_yield() };
            } else {
                std::hint::spin_loop();
            }
        }
    };
    const END: u32 = u32::MAX;
    let child = Child::spawn("shm echo", Some(cpu), &[], move || {
        let mut n = 1u32;
        loop {
            let mut spins = 0u32;
            loop {
                let v = ping.load(Ordering::Acquire);
                if v == END {
                    return 0;
                }
                if v == n {
                    break;
                }
                spins += 1;
                if spins > 2000 {
                    // SAFETY: no arguments.
                    unsafe { libc::sched_yield() };
                }
            }
            pong.store(n, Ordering::Release);
            n += 1;
        }
    })?;
    let mut n = 0u32;
    let times = time_rounds(rounds, &mut |_| {
        n += 1;
        ping.store(n, Ordering::Release);
        wait(pong, n);
        Ok(())
    });
    ping.store(END, Ordering::Release);
    child.wait()?;
    times
}

/// SIGUSR1 each way, received with sigwaitinfo (blocked in both, so no handler runs);
/// SIGUSR2 ends the child.
pub fn signal_latency(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR1);
    set.add(Signal::SIGUSR2);
    let mut old = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .map_err(sys("sigprocmask"))?;
    let parent = getpid();
    let run = (|| {
        let child = Child::spawn("signal echo", Some(cpu), &[], move || loop {
            match set.wait() {
                Ok(Signal::SIGUSR1) if kill(parent, Signal::SIGUSR1).is_ok() => {}
                Ok(Signal::SIGUSR2) => return 0,
                _ => return 1,
            }
        })?;
        let pid = child_pid(&child);
        let mut only = SigSet::empty();
        only.add(Signal::SIGUSR1);
        let times = time_rounds(rounds, &mut |_| {
            kill(pid, Signal::SIGUSR1).map_err(sys("kill"))?;
            let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::uninit();
            // SAFETY: a valid set and room for one siginfo.
            let rc = unsafe { libc::sigwaitinfo(only.as_ref(), info.as_mut_ptr()) };
            if rc != libc::SIGUSR1 {
                return Err(Error::Sys {
                    call: "sigwaitinfo",
                    errno: Errno::last(),
                });
            }
            // SAFETY: filled in by sigwaitinfo.
            let from = unsafe { info.assume_init().si_pid() };
            if from == pid.as_raw() {
                Ok(())
            } else {
                Err(Error::BadEcho { what: "signals" })
            }
        });
        kill(pid, Signal::SIGUSR2).map_err(sys("kill"))?;
        child.wait()?;
        times
    })();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
        .map_err(sys("sigprocmask"))?;
    run
}

fn child_pid(child: &Child) -> nix::unistd::Pid {
    child.pid()
}

/// Two eventfds: the floor of a blocking wake-up (one 8-byte counter, no data copied).
pub fn eventfd_latency(rounds: usize, cpu: usize) -> Result<Vec<f64>> {
    use nix::sys::eventfd::{EfdFlags, EventFd};
    let flags = EfdFlags::EFD_CLOEXEC;
    let (req, rep) = (
        EventFd::from_flags(flags).map_err(sys("eventfd"))?,
        EventFd::from_flags(flags).map_err(sys("eventfd"))?,
    );
    let child = Child::spawn("eventfd echo", Some(cpu), &[], || loop {
        match req.read() {
            Ok(1) if rep.write(1).is_ok() => {}
            Ok(2) => return 0,
            _ => return 1,
        }
    })?;
    let times = time_rounds(rounds, &mut |_| {
        req.write(1).map_err(sys("write(eventfd)"))?;
        match rep.read().map_err(sys("read(eventfd)"))? {
            1 => Ok(()),
            _ => Err(Error::BadEcho { what: "eventfd" }),
        }
    });
    req.write(2).map_err(sys("write(eventfd)"))?;
    child.wait()?;
    times
}

/// Source and destination of [`memcpy`], allocated (and their pages faulted in) once per span.
pub struct Buffers {
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Buffers {
    pub fn new(span: usize) -> Buffers {
        Buffers {
            src: (0..span).map(|i| (i % 251) as u8).collect(),
            dst: vec![1u8; span],
        }
    }
}

/// memcpy of `chunk` bytes, walking through the buffers' span (a span larger than the caches
/// measures memory, not cache; a span of `chunk` bytes stays in them); checks the last copy.
pub fn memcpy(chunk: usize, span: usize, buffers: &mut Buffers, total: usize) -> Result<f64> {
    let span = span.min(buffers.src.len()).max(chunk) / chunk * chunk;
    let (src, dst) = (&buffers.src[..span], &mut buffers.dst[..span]);
    let rounds = (total / chunk).max(1);
    let started = Instant::now();
    let mut at = 0;
    let mut last = 0;
    for _ in 0..rounds {
        black_box(&mut dst[at..at + chunk]).copy_from_slice(black_box(&src[at..at + chunk]));
        last = at;
        at = (at + chunk) % span;
    }
    let rate = (rounds * chunk) as f64 / started.elapsed().as_secs_f64();
    if dst[last..last + chunk] != src[last..last + chunk] {
        return Err(Error::BadEcho { what: "memcpy" });
    }
    Ok(rate)
}

/// Seconds per getppid(2), made with syscall(2) so that no library caches it.
pub fn syscall_cost(calls: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        // SAFETY: getppid takes no arguments and cannot fail.
        black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    started.elapsed().as_secs_f64() / calls as f64
}
