//! The rendered book's internal links: every link, anchor and image must point at something.
//!
//! mdBook accepts a link to a missing page, a `#fragment` that matches no heading and an image
//! that is not there, and renders them as they are. This check reads the HTML it wrote instead of
//! the Markdown, so the heading ids are the ones mdBook really generated (for every language, and
//! after every preprocessor), not a guess at its rules. It needs no network and no extra tool.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

use html5gum::{DefaultEmitter, Token, Tokenizer};
use percent_encoding::percent_decode_str;
use walkdir::WalkDir;

/// Attributes that make the browser fetch or open another file of the site.
const LINKING: &[(&str, &str)] = &[
    ("a", "href"),
    ("area", "href"),
    ("link", "href"),
    ("img", "src"),
    ("script", "src"),
    ("source", "src"),
    ("iframe", "src"),
    ("object", "data"),
];

/// One HTML page as far as links are concerned.
#[derive(Default)]
struct Page {
    /// Every `id` (and `<a name>`) on the page: the targets of `#fragment`s.
    ids: BTreeSet<String>,
    /// `(tag, url)` of every link the page makes, in document order.
    links: Vec<(String, String)>,
    /// The `<base href>`, which mdBook writes into the 404 page when `site-url` is set.
    base: Option<String>,
}

/// Checks every internal link of the HTML book in `build`; the error lists each broken one as
/// `page: <tag> url: what is wrong`.
pub fn check(build: &Path) -> Result<(), String> {
    let pages = read_pages(build)?;
    // The 404 page is served from any depth, so mdBook makes its links absolute under the
    // site's path (`site-url`): that path is where the build directory is published.
    let site_path = pages
        .get(Path::new("404.html"))
        .and_then(|p| p.base.clone())
        .filter(|b| b.starts_with('/'))
        .unwrap_or_else(|| "/".to_owned());
    // A page may repeat a link (mdBook writes some images twice): report each once.
    let mut problems = BTreeSet::new();
    for (name, page) in &pages {
        for (tag, url) in &page.links {
            if let Err(why) = resolve(build, name, page, &site_path, url, &pages) {
                problems.insert(format!("{}: <{tag}> {url}: {why}", name.display()));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} broken internal link(s) in {}:\n{}",
            problems.len(),
            build.display(),
            problems.into_iter().collect::<Vec<_>>().join("\n")
        ))
    }
}

fn read_pages(build: &Path) -> Result<HashMap<PathBuf, Page>, String> {
    if !build.is_dir() {
        return Err(format!("no rendered book in {}", build.display()));
    }
    let mut pages = HashMap::new();
    for entry in WalkDir::new(build) {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", build.display()))?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "html") {
            continue;
        }
        let html =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let relative = path
            .strip_prefix(build)
            .expect("walkdir stays under its root")
            .to_path_buf();
        pages.insert(relative, parse(&html));
    }
    Ok(pages)
}

fn parse(html: &str) -> Page {
    let mut emitter = DefaultEmitter::default();
    // So that the bodies of <script> and <style> are read as text, not as tags.
    emitter.naively_switch_states(true);
    let mut page = Page::default();
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        let Token::StartTag(tag) = token else {
            continue;
        };
        let name = String::from_utf8_lossy(&tag.name).into_owned();
        let attribute = |key: &str| {
            tag.attributes
                .get(key.as_bytes())
                .map(|v| String::from_utf8_lossy(&v.value).into_owned())
        };
        if let Some(id) = attribute("id") {
            page.ids.insert(id);
        }
        if name == "a" {
            if let Some(anchor) = attribute("name") {
                page.ids.insert(anchor);
            }
        }
        if name == "base" {
            page.base = attribute("href");
        }
        for (element, key) in LINKING {
            if name == *element {
                if let Some(url) = attribute(key) {
                    page.links.push((name.clone(), url));
                }
            }
        }
    }
    page
}

/// `Ok` when `url`, found on page `from`, leads to an existing file (and, for a `#fragment` into
/// an HTML page, to an element with that id); external URLs are not this check's business.
fn resolve(
    build: &Path,
    from: &Path,
    page: &Page,
    site_path: &str,
    url: &str,
    pages: &HashMap<PathBuf, Page>,
) -> Result<(), String> {
    let url = url.trim();
    if url.is_empty() || is_external(url) {
        return Ok(());
    }
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    let path = percent_decode_str(path).decode_utf8_lossy();
    let target = if path.is_empty() {
        from.to_path_buf()
    } else {
        let base = page.base.as_deref().unwrap_or("");
        let joined = if path.starts_with('/') {
            path.into_owned()
        } else if base.starts_with('/') {
            format!("{base}{path}")
        } else {
            let dir = from.parent().unwrap_or(Path::new(""));
            dir.join(base)
                .join(path.as_ref())
                .to_string_lossy()
                .into_owned()
        };
        site_relative(&joined, site_path)?
    };
    let target = if build.join(&target).is_dir() {
        target.join("index.html")
    } else {
        target
    };
    if !build.join(&target).is_file() {
        return Err(format!("no file {}", target.display()));
    }
    let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
        return Ok(());
    };
    let Some(linked) = pages.get(&target) else {
        // A fragment into a non-HTML file (an SVG, say) is not checked.
        return Ok(());
    };
    let id = percent_decode_str(fragment).decode_utf8_lossy();
    if linked.ids.contains(id.as_ref()) {
        Ok(())
    } else {
        Err(format!(
            "no element with id \"{id}\" in {}",
            target.display()
        ))
    }
}

fn is_external(url: &str) -> bool {
    if url.starts_with("//") {
        return true;
    }
    // A scheme: letters, digits, `+`, `-`, `.` before the first `:`, with no `/` before it.
    url.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// The path of `joined` (relative to the build directory, or absolute under `site_path`) as a
/// normalised path inside the build directory.
fn site_relative(joined: &str, site_path: &str) -> Result<PathBuf, String> {
    let inside = if let Some(absolute) = joined.strip_prefix('/') {
        let site = site_path.trim_start_matches('/');
        absolute
            .strip_prefix(site)
            .ok_or_else(|| format!("absolute path outside the site's {site_path}"))?
            .to_owned()
    } else {
        joined.to_owned()
    };
    let mut normal = PathBuf::new();
    for part in Path::new(&inside).components() {
        match part {
            Component::Normal(p) => normal.push(p),
            Component::ParentDir => {
                if !normal.pop() {
                    return Err("leads outside the book".into());
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small rendered book: `pages` are (path, HTML body) pairs, `files` other files.
    fn book(pages: &[(&str, &str)], files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (path, body) in pages {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(
                path,
                format!("<!DOCTYPE html><html><body>{body}</body></html>"),
            )
            .unwrap();
        }
        for path in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "<svg/>").unwrap();
        }
        dir
    }

    const GOOD: &[(&str, &str)] = &[
        (
            "index.html",
            r##"<h1 id="intro">Intro</h1><a href="pipes.html#close-on-exec">x</a>
                <a href="#intro">top</a><a href="exercises/">ex</a>
                <img src="images/ring.svg"><a href="https://man7.org/x.html#nope">man</a>
                <a href="mailto:someone@example.org">mail</a>
                <script>var s = '<a href="missing.html">';</script>"##,
        ),
        (
            "pipes.html",
            r#"<h2 id="close-on-exec">Close-on-exec</h2><a href="exercises/exercise01.html">e</a>"#,
        ),
        (
            "exercises/exercise01.html",
            r#"<a href="../pipes.html#close-on-exec">back</a><a href="../index.html?x=1">i</a>"#,
        ),
        ("exercises/index.html", ""),
        (
            "404.html",
            r#"<head><base href="/ipclab/"></head><a href="pipes.html">p</a>
               <a href="/ipclab/index.html#intro">i</a>"#,
        ),
    ];

    #[test]
    fn a_sound_book_passes() {
        let dir = book(GOOD, &["images/ring.svg"]);
        assert_eq!(check(dir.path()), Ok(()));
    }

    #[test]
    fn a_broken_page_link_anchor_or_image_fails_and_is_named() {
        let mut pages = GOOD.to_vec();
        pages.push((
            "signals.html",
            r##"<a href="pipe.html">a missing page</a>
               <a href="pipes.html#close-on-exit">a missing anchor</a>
               <a href="#nowhere">a missing anchor here</a>
               <img src="images/missing.svg"><img src="images/missing.svg">
               <a href="../outside.html">outside</a>"##,
        ));
        let dir = book(&pages, &["images/ring.svg"]);
        let err = check(dir.path()).expect_err("five broken links");
        // (The image is linked twice, as mdBook sometimes does, and reported once.)
        assert!(err.starts_with("5 broken internal link(s)"), "{err}");
        for expected in [
            "signals.html: <a> pipe.html: no file pipe.html",
            "signals.html: <a> pipes.html#close-on-exit: no element with id \"close-on-exit\" in pipes.html",
            "signals.html: <a> #nowhere: no element with id \"nowhere\" in signals.html",
            "signals.html: <img> images/missing.svg: no file images/missing.svg",
            "signals.html: <a> ../outside.html: leads outside the book",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn the_404_page_must_stay_under_the_site_path() {
        let mut pages = GOOD.to_vec();
        pages[4] = (
            "404.html",
            r#"<head><base href="/ipclab/"></head><a href="/other/index.html">o</a>"#,
        );
        let dir = book(&pages, &["images/ring.svg"]);
        let err = check(dir.path()).expect_err("a link outside the site");
        assert!(err.contains("outside the site's /ipclab/"), "{err}");
    }

    #[test]
    fn percent_encoded_paths_and_fragments_are_decoded() {
        let dir = book(
            &[
                (
                    "index.html",
                    r#"<a href="zh%20CN.html#%E7%AE%A1%E9%81%93">p</a>"#,
                ),
                ("zh CN.html", r#"<h2 id="管道">管道</h2>"#),
            ],
            &[],
        );
        assert_eq!(check(dir.path()), Ok(()));
    }

    #[test]
    fn no_book_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check(&dir.path().join("build")).unwrap_err();
        assert!(err.starts_with("no rendered book"), "{err}");
    }
}
