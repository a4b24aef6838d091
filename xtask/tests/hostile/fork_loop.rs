// Fork without end; every child blocks forever.
pub fn __attack() {
    for _ in 0..1500 {
        // SAFETY: the child only pauses.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause blocks until a signal.
                unsafe { libc::pause() };
            },
            -1 => break,
            _ => {}
        }
    }
}
