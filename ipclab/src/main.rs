//! `cargo ipclab`: the student's home base. Everything happens in [`ipclab::cli`].

fn main() -> std::process::ExitCode {
    ipclab::cli::main()
}
