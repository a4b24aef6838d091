// A child that leaves the process group and the session and ignores SIGTERM, then hangs.
pub fn __attack() {
    // SAFETY: the child only changes its own session and signal disposition, then pauses.
    unsafe {
        if libc::fork() == 0 {
            libc::setsid();
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            if libc::fork() == 0 {
                loop {
                    libc::pause();
                }
            }
            libc::_exit(0);
        }
    }
}
