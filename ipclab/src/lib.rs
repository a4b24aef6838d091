//! The library behind the `ipclab` command: where the course's pieces are, and how to run an
//! exercise's graded suite and read its verdict. `cargo xtask verify` uses the same code, so
//! there is one definition of what "passing" means.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "ipclab teaches Linux inter-process communication and runs only on Linux \
     (a virtual machine or WSL 2 works)."
);

pub mod course;
pub mod suite;
