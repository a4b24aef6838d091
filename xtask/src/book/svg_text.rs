//! The words inside the book's SVG diagrams, as translation messages.
//!
//! mdbook-i18n-helpers translates Markdown only, and a diagram copied per language would drift
//! from the English one unnoticed. So the text of every `<title>`, `<desc>` and `<text>` element
//! goes into the same catalog as the chapters (its inner markup, `<tspan>` included, is the
//! message), the completeness check covers it, and the translated book gets SVGs written from
//! the English ones with each such text replaced.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The elements whose content is text a reader sees (or a screen reader reads).
const TEXT_ELEMENTS: [&str; 3] = ["title", "desc", "text"];

/// One piece of translatable text and the byte range it occupies in its SVG.
#[derive(Debug, PartialEq)]
pub struct Piece {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// The translatable pieces of one SVG document, in document order. Text with no letter in it
/// (`3`, `→`) needs no translation and is left out.
pub fn pieces(svg: &str) -> Vec<Piece> {
    let mut found = Vec::new();
    for name in TEXT_ELEMENTS {
        let open = format!("<{name}");
        let close = format!("</{name}>");
        let mut from = 0;
        while let Some(at) = svg[from..].find(&open).map(|i| i + from) {
            let after_name = at + open.len();
            from = after_name;
            // `<textPath` or `<titlebar` are other elements.
            if !svg[after_name..].starts_with([' ', '>', '\n', '\t']) {
                continue;
            }
            let Some(content_start) = svg[after_name..].find('>').map(|i| after_name + i + 1)
            else {
                break;
            };
            if svg[..content_start].ends_with("/>") {
                continue;
            }
            let Some(content_end) = svg[content_start..].find(&close).map(|i| content_start + i)
            else {
                break;
            };
            let text = &svg[content_start..content_end];
            if text.chars().any(char::is_alphabetic) {
                found.push(Piece {
                    text: text.to_owned(),
                    start: content_start,
                    end: content_end,
                });
            }
            from = content_end + close.len();
        }
    }
    found.sort_by_key(|p| p.start);
    found
}

/// The SVG with every piece that has a translation replaced by it.
pub fn translate(svg: &str, translations: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(svg.len());
    let mut copied = 0;
    for piece in pieces(svg) {
        if let Some(translated) = translations.get(&piece.text) {
            out.push_str(&svg[copied..piece.start]);
            out.push_str(translated);
            copied = piece.end;
        }
    }
    out.push_str(&svg[copied..]);
    out
}

/// The book's diagrams: every `.svg` under `src/images`, sorted so that extraction is stable.
pub fn diagrams(book: &Path) -> Result<Vec<PathBuf>, String> {
    let dir = book.join("src/images");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r#"<svg><title id="t">A pipe</title><desc id="d">Two ends</desc>
<text x="1" class="mono">fd 3</text><text x="2">3</text><textPath>no</textPath>
<text x="3"><tspan class="b">full:</tspan> write blocks</text><text/></svg>"#;

    #[test]
    fn finds_titles_descriptions_and_texts_with_their_markup() {
        let texts: Vec<String> = pieces(SVG).into_iter().map(|p| p.text).collect();
        assert_eq!(
            texts,
            [
                "A pipe",
                "Two ends",
                "fd 3",
                r#"<tspan class="b">full:</tspan> write blocks"#
            ]
        );
    }

    #[test]
    fn replaces_only_translated_pieces() {
        let translations = HashMap::from([
            ("A pipe".to_owned(), "管道".to_owned()),
            (
                r#"<tspan class="b">full:</tspan> write blocks"#.to_owned(),
                r#"<tspan class="b">满：</tspan>write 阻塞"#.to_owned(),
            ),
        ]);
        let out = translate(SVG, &translations);
        assert!(out.contains(r#"<title id="t">管道</title>"#));
        assert!(out.contains(r#"<desc id="d">Two ends</desc>"#));
        assert!(out.contains(r#"<text x="3"><tspan class="b">满：</tspan>write 阻塞</text>"#));
        assert!(out.contains(r#"<text x="2">3</text>"#));
    }
}
