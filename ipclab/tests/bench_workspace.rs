//! `cargo ipclab bench`'s generated workspace, read by cargo itself. (An integration test: the
//! library's unit tests include the reaper's, which reap any child of their process.)

use std::path::Path;
use std::process::Command;

use ipclab::bench::generate;

fn host() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// The generated workspace of this very course is one cargo accepts, and it builds the
/// student's exercise03 with every other exercise from solutions/.
#[test]
fn cargo_accepts_the_generated_workspace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(root, "exercise03", dir.path()).unwrap();
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest)
        // This machine's platform only: no downloads of other platforms' dependencies.
        .other_options(vec![
            "--offline".to_owned(),
            "--filter-platform".to_owned(),
            host(),
        ])
        .exec()
        .expect("cargo reads the generated workspace");
    let from = |name: &str| {
        let package = metadata
            .packages
            .iter()
            .find(|p| p.name.as_str() == name)
            .unwrap_or_else(|| panic!("{name} is in the build"));
        package
            .manifest_path
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_owned()
    };
    assert_eq!(from("exercise03"), "exercises");
    assert_eq!(from("exercise01"), "solutions");
    assert_eq!(from("exercise09"), "solutions");
}
