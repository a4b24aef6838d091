//! The translation catalogs: extracting the English text, merging it into `po/<lang>.po`, and
//! counting what is left to translate, in Rust so that no gettext install is needed.
//!
//! The English text is what `mdbook-xgettext` extracts from the chapters (after `{{#include}}`,
//! so the exercises' task statements are in it) plus the diagrams' text (`svg_text`).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::process::Command;

use polib::catalog::Catalog;
use polib::message::{Message, MessageFlags, MessageMutView, MessageView};
use polib::metadata::CatalogMetadata;

use super::svg_text;

/// The English text of the book as a template catalog (`.pot`), written to `pot_path` too so a
/// translator can open it.
pub fn extract(
    mdbook: &Command,
    book: &Path,
    work: &Path,
    pot_path: &Path,
) -> Result<Catalog, String> {
    let out = work.join("xgettext");
    let mut cmd = clone_command(mdbook);
    cmd.arg("build").arg(book).arg("--dest-dir").arg(&out).env(
        "MDBOOK_OUTPUT",
        r#"{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}"#,
    );
    let output = cmd
        .output()
        .map_err(|e| format!("could not run mdbook for xgettext: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "mdbook-xgettext failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let extracted = find_pot(&out).ok_or_else(|| {
        format!(
            "mdbook-xgettext wrote no messages.pot under {}",
            out.display()
        )
    })?;
    let mut pot = polib::po_file::parse(&extracted)
        .map_err(|e| format!("cannot read {}: {e}", extracted.display()))?;
    if let Some(title) = book_setting(book, "book", "title")? {
        add_source(&mut pot, &title, "book.toml");
    }
    for diagram in svg_text::diagrams(book)? {
        let svg = std::fs::read_to_string(&diagram)
            .map_err(|e| format!("cannot read {}: {e}", diagram.display()))?;
        let source = diagram
            .strip_prefix(book)
            .unwrap_or(&diagram)
            .display()
            .to_string();
        for piece in svg_text::pieces(&svg) {
            add_source(&mut pot, &piece.text, &source);
        }
    }
    polib::po_file::write(&pot, pot_path)
        .map_err(|e| format!("cannot write {}: {e}", pot_path.display()))?;
    Ok(pot)
}

/// A string setting of `book.toml` (`section` as written in its header, e.g. `output.html`).
/// The title is one: mdbook-xgettext does not extract it, so it is one more message, and a
/// translated build gets it through `MDBOOK_BOOK__TITLE`.
pub fn book_setting(book: &Path, section: &str, key: &str) -> Result<Option<String>, String> {
    let path = book.join("book.toml");
    let toml = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let header = format!("[{section}]");
    let mut in_section = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == header;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if in_section && name.trim() == key {
            return Ok(value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned));
        }
    }
    Ok(None)
}

/// `mdbook-xgettext` puts the file in the renderer's own directory (`<dest>/xgettext/`) or,
/// with a single renderer, in `<dest>` itself.
fn find_pot(out: &Path) -> Option<std::path::PathBuf> {
    [out.join("messages.pot"), out.join("xgettext/messages.pot")]
        .into_iter()
        .find(|p| p.is_file())
}

fn clone_command(cmd: &Command) -> Command {
    let mut copy = Command::new(cmd.get_program());
    copy.args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => copy.env(key, v),
            None => copy.env_remove(key),
        };
    }
    copy
}

fn add_source(catalog: &mut Catalog, msgid: &str, source: &str) {
    if let Some(mut existing) = catalog.find_message_mut(None, msgid, None) {
        let sources = existing.source_mut();
        if !sources.split_whitespace().any(|s| s == source) {
            sources.push(' ');
            sources.push_str(source);
        }
        return;
    }
    catalog.append_or_update(
        Message::build_singular()
            .with_msgid(msgid.to_owned())
            .with_source(source.to_owned())
            .done(),
    );
}

/// How much of the current English text a catalog translates.
#[derive(Debug, Default, PartialEq)]
pub struct Stats {
    pub translated: usize,
    pub fuzzy: usize,
    /// Untranslated, including messages the catalog does not have yet.
    pub untranslated: usize,
    /// Of the untranslated: English text newer than the catalog (run `--update-po`).
    pub missing: usize,
}

impl Stats {
    pub fn total(&self) -> usize {
        self.translated + self.fuzzy + self.untranslated
    }

    pub fn complete(&self) -> bool {
        self.fuzzy == 0 && self.untranslated == 0
    }

    pub fn percent(&self) -> f64 {
        if self.total() == 0 {
            100.0
        } else {
            100.0 * self.translated as f64 / self.total() as f64
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} messages translated ({:.1}%), {} fuzzy, {} untranslated",
            self.translated,
            self.total(),
            self.percent(),
            self.fuzzy,
            self.untranslated
        )?;
        if self.missing > 0 {
            write!(f, " ({} not yet in the catalog)", self.missing)?;
        }
        Ok(())
    }
}

/// Counts the template's messages against the catalog, as `msgfmt --statistics` would after a
/// `msgmerge`: a message the catalog lacks counts as untranslated.
pub fn stats(pot: &Catalog, po: &Catalog) -> Stats {
    let mut stats = Stats::default();
    for message in pot.messages() {
        match po.find_message(None, message.msgid(), None) {
            None => {
                stats.untranslated += 1;
                stats.missing += 1;
            }
            Some(m) if m.is_fuzzy() => stats.fuzzy += 1,
            Some(m) if m.is_translated() => stats.translated += 1,
            Some(_) => stats.untranslated += 1,
        }
    }
    stats
}

/// The catalog for the current English text, like `msgmerge`: translations of unchanged
/// messages are kept; a changed message gets the translation of the most similar old one,
/// marked fuzzy for review; messages no longer in the English text are dropped.
pub fn merge(pot: &Catalog, po: Option<&Catalog>, language: &str) -> Catalog {
    let metadata = match po {
        Some(po) => clone_metadata(&po.metadata),
        None => {
            let mut m = clone_metadata(&pot.metadata);
            m.language = language.to_owned();
            m.content_type = "text/plain; charset=UTF-8".to_owned();
            m
        }
    };
    let mut merged = Catalog::new(metadata);
    let wanted: HashSet<&str> = pot.messages().map(|m| m.msgid()).collect();
    let old: HashMap<&str, &dyn MessageView> = po
        .map(|po| po.messages().map(|m| (m.msgid(), m)).collect())
        .unwrap_or_default();
    let retired: Vec<&dyn MessageView> = old
        .values()
        .filter(|m| !wanted.contains(m.msgid()) && m.is_translated())
        .copied()
        .collect();
    for message in pot.messages() {
        let (msgstr, fuzzy) = match old.get(message.msgid()) {
            Some(m) => (m.msgstr().unwrap_or_default().to_owned(), m.is_fuzzy()),
            None => match most_similar(message.msgid(), &retired) {
                Some(m) => (m.msgstr().unwrap_or_default().to_owned(), true),
                None => (String::new(), false),
            },
        };
        let mut flags = MessageFlags::new();
        if fuzzy {
            flags.add_flag("fuzzy");
        }
        merged.append_or_update(
            Message::build_singular()
                .with_msgid(message.msgid().to_owned())
                .with_source(message.source().to_owned())
                .with_comments(message.comments().to_owned())
                .with_flags(flags)
                .with_msgstr(msgstr)
                .done(),
        );
    }
    merged
}

fn clone_metadata(m: &CatalogMetadata) -> CatalogMetadata {
    CatalogMetadata::parse(&m.export_for_po()).unwrap_or_default()
}

/// The retired message sharing the most words with `msgid` (at least 60% of the larger word
/// set): an edited paragraph keeps most of its words, another paragraph does not.
fn most_similar<'a>(msgid: &str, retired: &[&'a dyn MessageView]) -> Option<&'a dyn MessageView> {
    let words: HashSet<&str> = msgid.split_whitespace().collect();
    retired
        .iter()
        .map(|m| {
            let theirs: HashSet<&str> = m.msgid().split_whitespace().collect();
            let shared = words.intersection(&theirs).count() as f64;
            (shared / words.len().max(theirs.len()).max(1) as f64, *m)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, m)| m)
}

/// Translations usable in the built book: translated and not fuzzy, as gettext itself uses them.
pub fn translations(po: &Catalog) -> HashMap<String, String> {
    po.messages()
        .filter(|m| m.is_translated() && !m.is_fuzzy())
        .map(|m| {
            (
                m.msgid().to_owned(),
                m.msgstr().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(entries: &[(&str, &str, bool)]) -> Catalog {
        let mut c = Catalog::new(CatalogMetadata::new());
        for (id, text, fuzzy) in entries {
            let mut flags = MessageFlags::new();
            if *fuzzy {
                flags.add_flag("fuzzy");
            }
            c.append_or_update(
                Message::build_singular()
                    .with_msgid((*id).to_owned())
                    .with_msgstr((*text).to_owned())
                    .with_flags(flags)
                    .done(),
            );
        }
        c
    }

    #[test]
    fn reads_string_settings_of_book_toml_by_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("book.toml"),
            "[book]\ntitle = \"A book\"\n\n[output.html]\nsite-url = \"/x/\"\ntitle = 3\n",
        )
        .expect("write");
        let get = |section, key| book_setting(dir.path(), section, key).expect("read");
        assert_eq!(get("book", "title").as_deref(), Some("A book"));
        assert_eq!(get("output.html", "site-url").as_deref(), Some("/x/"));
        assert_eq!(get("output.html", "title"), None);
        assert_eq!(get("book", "site-url"), None);
    }

    #[test]
    fn counts_missing_fuzzy_and_empty_as_not_done() {
        let pot = catalog(&[
            ("a", "", false),
            ("b", "", false),
            ("c", "", false),
            ("d", "", false),
        ]);
        let po = catalog(&[("a", "甲", false), ("b", "乙", true), ("c", "", false)]);
        let s = stats(&pot, &po);
        assert_eq!(
            s,
            Stats {
                translated: 1,
                fuzzy: 1,
                untranslated: 2,
                missing: 1
            }
        );
        assert!(!s.complete());
        assert_eq!(s.percent(), 25.0);
    }

    #[test]
    fn merge_keeps_translations_and_marks_an_edited_paragraph_fuzzy() {
        let pot = catalog(&[
            ("The pipe is a buffer in the kernel.", "", false),
            (
                "A pipe has two ends, read and write, and a buffer.",
                "",
                false,
            ),
            ("Something entirely new.", "", false),
        ]);
        let po = catalog(&[
            (
                "The pipe is a buffer in the kernel.",
                "管道是内核中的缓冲区。",
                false,
            ),
            (
                "A pipe has two ends, read and write.",
                "管道有两端：读端和写端。",
                false,
            ),
        ]);
        let merged = merge(&pot, Some(&po), "zh-CN");
        let get = |id: &str| merged.find_message(None, id, None).expect("merged");
        assert_eq!(
            get("The pipe is a buffer in the kernel.").msgstr().unwrap(),
            "管道是内核中的缓冲区。"
        );
        let edited = get("A pipe has two ends, read and write, and a buffer.");
        assert!(edited.is_fuzzy());
        assert_eq!(edited.msgstr().unwrap(), "管道有两端：读端和写端。");
        assert!(!get("Something entirely new.").is_translated());
        assert!(merged
            .find_message(None, "A pipe has two ends, read and write.", None)
            .is_none());
        let s = stats(&pot, &merged);
        assert_eq!((s.translated, s.fuzzy, s.untranslated), (1, 1, 1));
    }
}
