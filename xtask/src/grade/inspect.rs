//! Looks at a submission's compiled library for code that would run where the tests do not call
//! it: in the judge's own process.
//!
//! The judge of every test runs in libtest's process, which links the student's library but
//! never calls it. A library can still get code run there without being called: a constructor
//! (`.init_array`), an exported C symbol that replaces one the harness uses (`#[no_mangle] fn
//! write`), or a `#[global_allocator]`. None of these has a place in an exercise, so a library
//! that has one is not run at all; the report says why. Read from the object code (not the
//! source), so that macros and `include!` cannot hide it.

use std::fs;
use std::path::Path;

use object::read::archive::ArchiveFile;
use object::{Object, ObjectSection, ObjectSymbol};

/// Sections whose contents the loader runs before `main` or at exit.
const RUN_BY_THE_LOADER: &[&str] = &[
    ".init_array",
    ".fini_array",
    ".preinit_array",
    ".ctors",
    ".dtors",
    ".init",
    ".fini",
];

/// What in `rlib` could run outside the calls the tests make; empty when nothing.
pub fn code_outside_calls(rlib: &Path) -> Result<Vec<String>, String> {
    let data = fs::read(rlib).map_err(|e| format!("cannot read {}: {e}", rlib.display()))?;
    let archive = ArchiveFile::parse(&*data)
        .map_err(|e| format!("{} is not an rlib: {e}", rlib.display()))?;
    let mut found = Vec::new();
    for member in archive.members() {
        let member = member.map_err(|e| format!("bad rlib member: {e}"))?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        if !name.ends_with(".o") {
            continue;
        }
        let Ok(bytes) = member.data(&*data) else {
            continue;
        };
        let Ok(file) = object::File::parse(bytes) else {
            continue;
        };
        for section in file.sections() {
            let Ok(section_name) = section.name() else {
                continue;
            };
            let runs = RUN_BY_THE_LOADER
                .iter()
                .any(|s| section_name == *s || section_name.starts_with(&format!("{s}.")));
            if runs && section.size() > 0 {
                found.push(format!(
                    "a constructor or destructor (section {section_name}): code the loader runs \
                     before main or at exit"
                ));
            }
        }
        for symbol in file.symbols() {
            if !symbol.is_definition() || !symbol.is_global() {
                continue;
            }
            let Ok(sym) = symbol.name() else { continue };
            if sym.contains("__rg_alloc")
                || sym.contains("__rust_alloc")
                || sym.contains("__rdl_alloc")
            {
                found.push(
                    "a #[global_allocator]: it would run in the judge's process on every \
                     allocation"
                        .to_owned(),
                );
            } else if !sym.starts_with("_ZN")
                && !sym.starts_with("_R")
                && !sym.starts_with("DW.ref.")
            {
                found.push(format!(
                    "an exported symbol `{sym}` (#[no_mangle] or #[export_name]): it can replace a \
                     function of the same name that the test harness uses"
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `INSPECT_RLIB=path` checks one library by hand (e.g. one built with a constructor).
    #[test]
    fn a_library_named_by_hand_is_described() {
        if let Some(path) = std::env::var_os("INSPECT_RLIB") {
            let found = code_outside_calls(Path::new(&path)).unwrap();
            assert!(!found.is_empty());
            eprintln!("{found:#?}");
        }
    }

    /// The library of the course's own build of exercise 01 (the starter or the solution):
    /// nothing of the kind.
    #[test]
    fn the_course_libraries_hold_no_code_outside_calls() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let deps = root.join("target/debug/deps");
        let Ok(entries) = fs::read_dir(&deps) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libexercise") && name.ends_with(".rlib") {
                let found = code_outside_calls(&entry.path()).unwrap();
                assert!(found.is_empty(), "{name}: {found:?}");
            }
        }
    }
}
