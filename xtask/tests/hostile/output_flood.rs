// Write 512 MiB to standard output and error.
pub fn __attack() {
    use std::io::Write;
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..256 {
        let _ = std::io::stdout().write_all(&chunk);
        let _ = std::io::stderr().write_all(&chunk);
    }
}
