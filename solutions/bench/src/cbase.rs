//! The C twins of the raw loops (c/raw.c, built by build.rs with the `cc` crate): the same
//! system calls, sizes, pattern and check as lab.rs and ring.rs, so that Rust ÷ C is the cost of
//! writing the loop in Rust with nix.

use nix::errno::Errno;

use crate::lab::{Fds, Pattern};
use crate::proc::{Error, Result};
use crate::ring::Wait;

extern "C" {
    fn ipclab_c_fd_throughput(
        kind: libc::c_int,
        size: usize,
        total: usize,
        pattern: *const u8,
        cpu: libc::c_int,
        rate: *mut f64,
    ) -> libc::c_int;
    fn ipclab_c_fd_latency(
        kind: libc::c_int,
        rounds: usize,
        cpu: libc::c_int,
        times: *mut f64,
    ) -> libc::c_int;
    fn ipclab_c_queue_throughput(
        size: usize,
        total: usize,
        pattern: *const u8,
        cpu: libc::c_int,
        rate: *mut f64,
    ) -> libc::c_int;
    fn ipclab_c_queue_latency(rounds: usize, cpu: libc::c_int, times: *mut f64) -> libc::c_int;
    fn ipclab_c_semaphore_latency(rounds: usize, cpu: libc::c_int, times: *mut f64) -> libc::c_int;
    fn ipclab_c_signal_latency(rounds: usize, cpu: libc::c_int, times: *mut f64) -> libc::c_int;
    fn ipclab_c_eventfd_latency(rounds: usize, cpu: libc::c_int, times: *mut f64) -> libc::c_int;
    fn ipclab_c_ring_throughput(
        mode: libc::c_int,
        size: usize,
        capacity: usize,
        total: usize,
        pattern: *const u8,
        cpu: libc::c_int,
        rate: *mut f64,
    ) -> libc::c_int;
}

/// The mechanisms with a C twin.
pub fn kind(fds: Fds) -> Option<libc::c_int> {
    match fds {
        Fds::Pipe => Some(0),
        Fds::PipeBig => Some(1),
        Fds::SocketStream => Some(2),
        Fds::Fifo => Some(3),
        Fds::SocketDgram => Some(4),
        Fds::UnixStream => Some(5),
        Fds::Tcp => Some(6),
        // UDP's Rust loop sets a receive timeout against lost datagrams; no twin.
        Fds::Udp => None,
    }
}

fn check(rc: libc::c_int, what: &'static str) -> Result<()> {
    match rc {
        0 => Ok(()),
        -1 => Err(Error::BadEcho { what }),
        -2 => Err(Error::ShortTransfer {
            what,
            sent: 0,
            received: 0,
        }),
        -3 => Err(Error::ChildFailed {
            role: what,
            status: "not exit(0)".into(),
        }),
        errno => Err(Error::Sys {
            call: what,
            errno: Errno::from_raw(errno),
        }),
    }
}

fn cpu(cpu: usize) -> libc::c_int {
    libc::c_int::try_from(cpu).unwrap_or(0)
}

pub fn fd_throughput(
    kind: libc::c_int,
    size: usize,
    total: usize,
    pattern: &Pattern,
    on: usize,
) -> Result<f64> {
    let mut rate = 0.0;
    // SAFETY: the pattern holds PERIOD + 1 MiB bytes and every size is at most 1 MiB.
    let rc = unsafe {
        ipclab_c_fd_throughput(
            kind,
            size,
            total,
            pattern.bytes().as_ptr(),
            cpu(on),
            &mut rate,
        )
    };
    check(rc, "C throughput loop").map(|()| rate)
}

pub fn fd_latency(kind: libc::c_int, rounds: usize, on: usize) -> Result<Vec<f64>> {
    let mut times = vec![0.0; rounds];
    // SAFETY: room for `rounds` times.
    let rc = unsafe { ipclab_c_fd_latency(kind, rounds, cpu(on), times.as_mut_ptr()) };
    check(rc, "C ping-pong").map(|()| times)
}

pub fn queue_throughput(size: usize, total: usize, pattern: &Pattern, on: usize) -> Result<f64> {
    let mut rate = 0.0;
    // SAFETY: as for fd_throughput; size is at most msgmax.
    let rc = unsafe {
        ipclab_c_queue_throughput(size, total, pattern.bytes().as_ptr(), cpu(on), &mut rate)
    };
    check(rc, "C message queue loop").map(|()| rate)
}

pub fn queue_latency(rounds: usize, on: usize) -> Result<Vec<f64>> {
    let mut times = vec![0.0; rounds];
    // SAFETY: room for `rounds` times.
    let rc = unsafe { ipclab_c_queue_latency(rounds, cpu(on), times.as_mut_ptr()) };
    check(rc, "C message queue ping-pong").map(|()| times)
}

/// The C twin of a wake-up without data, by the lab's row name: `twin(rounds, cpu)`.
pub fn wake_up_latency(name: &str) -> Option<impl Fn(usize, usize) -> Result<Vec<f64>>> {
    type Twin = unsafe extern "C" fn(usize, libc::c_int, *mut f64) -> libc::c_int;
    let twin: Twin = match name {
        "System V semaphores" => ipclab_c_semaphore_latency,
        "signals (kill + sigwaitinfo)" => ipclab_c_signal_latency,
        "eventfd" => ipclab_c_eventfd_latency,
        _ => return None,
    };
    Some(move |rounds: usize, on: usize| {
        let mut times = vec![0.0; rounds];
        // SAFETY: room for `rounds` times.
        let rc = unsafe { twin(rounds, cpu(on), times.as_mut_ptr()) };
        check(rc, "C wake-up ping-pong").map(|()| times)
    })
}

pub fn ring_throughput(
    wait: Wait,
    size: usize,
    capacity: usize,
    total: usize,
    pattern: &Pattern,
    on: usize,
) -> Result<f64> {
    let mut rate = 0.0;
    let mode = match wait {
        Wait::Spin => 0,
        Wait::Futex => 1,
    };
    // SAFETY: as for fd_throughput; size is at most capacity.
    let rc = unsafe {
        ipclab_c_ring_throughput(
            mode,
            size,
            capacity,
            total,
            pattern.bytes().as_ptr(),
            cpu(on),
            &mut rate,
        )
    };
    check(rc, "C shared-memory ring").map(|()| rate)
}
