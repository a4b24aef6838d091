//! Building the book in every language, side by side: English into `book/build/`, each
//! translation into `book/build/<lang>/`, with the gettext workflow of mdbook-i18n-helpers
//! (the English text extracted to a `.pot`, translations in `book/po/<lang>.po`).
//!
//! A translation must be complete: every message of the current English text translated and
//! none fuzzy. Otherwise the build fails and says how many are left and how to update.

mod po;
mod svg_text;
pub(crate) mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The translations the book must have, each complete.
pub const LANGUAGES: [&str; 1] = ["zh-CN"];

pub const USAGE: &str = "cargo xtask book [--update-po]          build the book into book/build \
(translations into book/build/<lang>);\n                                         \
--update-po brings book/po/<lang>.po up to date with the English text";

/// `cargo xtask book [--update-po]`.
pub fn main(root: &Path, args: &[String]) -> ExitCode {
    let result = match args {
        [] => build(root),
        [flag] if flag == "--update-po" => update_po(root),
        _ => {
            eprintln!("usage: {USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds every language; any warning or error from mdBook, a code line wider than the page,
/// a broken internal link (in any language), or an incomplete translation fails the build
/// (after building it, so that a translator can look at the result).
pub fn build(root: &Path) -> Result<(), String> {
    let book = Book::prepare(root)?;
    run_mdbook(book.mdbook(None).arg("build").arg(&book.dir))?;
    // What mdBook accepts but a reader would trip over: code that scrolls sideways (checked
    // once, in the English source that every language shares).
    crate::codewidth::check(&book.dir.join("src"), root)?;
    // Numbers that a run of the benchmark measures come from the committed run, never typed.
    crate::measured::check(root)?;
    let pot = book.extract()?;
    let site_url = po::book_setting(&book.dir, "output.html", "site-url")?;
    let mut incomplete = Vec::new();
    for language in LANGUAGES {
        let dest = book.dir.join("build").join(language);
        let catalog = book.catalog(language)?;
        let translations = po::translations(&catalog);
        let mut mdbook = book.mdbook(Some(language));
        if let Some(title) =
            po::book_setting(&book.dir, "book", "title")?.and_then(|t| translations.get(&t))
        {
            mdbook.env("MDBOOK_BOOK__TITLE", title);
        }
        // The translation is published under the English site, in its own folder, so that
        // its 404 page links to its own pages.
        if let Some(url) = &site_url {
            mdbook.env(
                "MDBOOK_OUTPUT__HTML__SITE_URL",
                format!("{}/{language}/", url.trim_end_matches('/')),
            );
        }
        run_mdbook(
            mdbook
                .arg("build")
                .arg(&book.dir)
                .arg("--dest-dir")
                .arg(&dest),
        )?;
        translate_diagrams(&book.dir, &dest, &translations)?;
        let stats = po::stats(&pot, &catalog);
        eprintln!("xtask: book {language}: {stats}");
        if !stats.complete() {
            incomplete.push(format!("{language}: {stats}"));
        }
    }
    // Links, anchors and images that lead nowhere, in every language: a translated link or
    // heading can break what the English one got right.
    let mut problems: Vec<String> = crate::linkcheck::check(&book.dir.join("build"))
        .err()
        .into_iter()
        .collect();
    if !incomplete.is_empty() {
        problems.push(format!(
            "the translation is incomplete: {}.\nRun `cargo xtask book --update-po`, translate \
             the empty and fuzzy entries of book/po/<lang>.po (remove the `fuzzy` flag of each \
             entry once it is right), then build again.",
            incomplete.join("; ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Extracts the current English text and merges it into every language's catalog.
fn update_po(root: &Path) -> Result<(), String> {
    let book = Book::prepare(root)?;
    let pot = book.extract()?;
    for language in LANGUAGES {
        let path = book.po_path(language);
        let old = if path.exists() {
            Some(book.catalog(language)?)
        } else {
            None
        };
        let merged = po::merge(&pot, old.as_ref(), language);
        polib::po_file::write(&merged, &path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "xtask: {} updated: {}",
            path.strip_prefix(root).unwrap_or(&path).display(),
            po::stats(&pot, &merged)
        );
    }
    Ok(())
}

struct Book {
    dir: PathBuf,
    mdbook: String,
    tools: PathBuf,
    /// Scratch space for the extracted template.
    work: PathBuf,
}

impl Book {
    fn prepare(root: &Path) -> Result<Self, String> {
        let mdbook = tools::ensure_mdbook(root)?;
        tools::ensure_i18n_helpers(root)?;
        let work = root.join("target/book-i18n");
        std::fs::create_dir_all(&work)
            .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
        Ok(Book {
            dir: root.join("book"),
            mdbook,
            tools: tools::bin_dir(root),
            work,
        })
    }

    /// An mdbook command that finds the plugins in `target/tools`, translating into `language`.
    fn mdbook(&self, language: Option<&str>) -> Command {
        let mut cmd = Command::new(&self.mdbook);
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.tools.clone()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env(
            "PATH",
            std::env::join_paths(dirs).expect("PATH entries have no separator"),
        );
        if let Some(language) = language {
            cmd.env("MDBOOK_BOOK__LANGUAGE", language);
        }
        cmd
    }

    fn extract(&self) -> Result<polib::catalog::Catalog, String> {
        po::extract(
            &self.mdbook(None),
            &self.dir,
            &self.work,
            &self.work.join("messages.pot"),
        )
    }

    fn po_path(&self, language: &str) -> PathBuf {
        self.dir.join("po").join(format!("{language}.po"))
    }

    fn catalog(&self, language: &str) -> Result<polib::catalog::Catalog, String> {
        let path = self.po_path(language);
        if !path.exists() {
            return Err(format!(
                "no {} yet: run `cargo xtask book --update-po` to create it",
                path.display()
            ));
        }
        polib::po_file::parse(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// Runs mdbook; any warning or error it prints fails the build.
fn run_mdbook(cmd: &mut Command) -> Result<(), String> {
    let output = cmd
        .output()
        .map_err(|e| format!("could not run {:?}: {e}", cmd.get_program()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    if !output.status.success() || !complaints.is_empty() {
        let shown = if complaints.is_empty() {
            log.trim().to_owned()
        } else {
            complaints.join("\n")
        };
        return Err(format!("mdbook build reported problems:\n{shown}"));
    }
    Ok(())
}

/// Replaces the English diagrams copied into a translated build with translated ones.
fn translate_diagrams(
    book: &Path,
    dest: &Path,
    translations: &std::collections::HashMap<String, String>,
) -> Result<(), String> {
    for diagram in svg_text::diagrams(book)? {
        let svg = std::fs::read_to_string(&diagram)
            .map_err(|e| format!("cannot read {}: {e}", diagram.display()))?;
        let relative = diagram.strip_prefix(book.join("src")).unwrap_or(&diagram);
        let target = dest.join(relative);
        std::fs::write(&target, svg_text::translate(&svg, translations))
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    Ok(())
}
