//! Builds the C twins of the lab's raw loops (c/raw.c) with the `cc` crate, in the same build as
//! the Rust ones: the Rust ÷ C ratios of a run compare two programs built side by side, today.
fn main() {
    println!("cargo:rerun-if-changed=c/raw.c");
    cc::Build::new()
        .file("c/raw.c")
        .opt_level(2)
        .flag_if_supported("-std=gnu11")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("ipclab_raw_c");
}
