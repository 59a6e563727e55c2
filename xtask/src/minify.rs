//! `cargo xtask minify`: trunk's post-build hook. It puts the app's first
//! screens into `index.html` (every build), and minifies the release
//! bundle's JavaScript and CSS.
//!
//! The first screens are the app's own views rendered to HTML
//! (`oauth_dance::prerender`), inserted at the marker comment in `<body>`
//! ([`FIRST_SCREENS_MARKER`]), so the page paints before the wasm arrives.
//!
//! Trunk's own minifier can't parse wasm-bindgen's glue (it warns and copies
//! it as is) and doesn't touch `screen.js` (a copied file), so Trunk.toml leaves
//! it off and runs this command as a `post_build` hook instead; every release
//! build (`trunk build --release`, `cargo xtask build`, `pages`, `demo`) gets
//! it:
//!
//! 1. every `*.js` and `*.css` in trunk's staging directory goes through
//!    esbuild `--minify` (installed by `cargo xtask setup`);
//! 2. the `integrity` attributes (subresource integrity) that trunk wrote into
//!    `index.html` for those files (the style sheet's) are recomputed, since
//!    the bytes changed.
//!
//! `index.html` itself is not minified: a deployer reads its CSP.
//!
//! Debug builds (`trunk serve`, `trunk build`) are left readable.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use sha2::Digest as _;

use crate::util;
use dance_protocol::deployment::page;

/// The comment in `index.html`'s `<body>` where the first screens go.
pub(crate) const FIRST_SCREENS_MARKER: &str =
    "<!-- The first screens, rendered from the app's views at build time (src/prerender.rs). -->";

/// `html` with the first screens after [`FIRST_SCREENS_MARKER`].
fn with_first_screens(html: &str) -> Result<String> {
    if !html.contains(FIRST_SCREENS_MARKER) {
        bail!("index.html has no `{FIRST_SCREENS_MARKER}` in its <body>");
    }
    let screens = oauth_dance::prerender::first_screens();
    Ok(html.replacen(FIRST_SCREENS_MARKER, &format!("{FIRST_SCREENS_MARKER}\n  {screens}"), 1))
}

/// Runs the hook: the first screens, then (release builds only) the minifier.
pub(crate) fn run() -> Result<()> {
    let staging = std::env::var_os("TRUNK_STAGING_DIR").map(PathBuf::from).context(
        "TRUNK_STAGING_DIR is not set: `minify` is meant to run as trunk's post_build hook",
    )?;
    let page = staging.join("index.html");
    let html = std::fs::read_to_string(&page)
        .with_context(|| format!("could not read {}", page.display()))?;
    std::fs::write(&page, with_first_screens(&html)?)
        .with_context(|| format!("could not write {}", page.display()))?;
    if std::env::var("TRUNK_PROFILE").as_deref() != Ok("release") {
        return Ok(());
    }
    let mut scripts = Vec::new();
    for entry in std::fs::read_dir(&staging)
        .with_context(|| format!("could not list {}", staging.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "js" || ext == "css") {
            scripts.push(path);
        }
    }
    scripts.sort();
    for script in &scripts {
        minify(script)?;
    }
    let html = std::fs::read_to_string(&page)
        .with_context(|| format!("could not read {}", page.display()))?;
    let mut patched = html.clone();
    for script in &scripts {
        let bytes = std::fs::read(script)
            .with_context(|| format!("could not read {}", script.display()))?;
        let name = script.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        patched = set_integrity(&patched, name, &bytes);
    }
    if patched != html {
        std::fs::write(&page, patched)
            .with_context(|| format!("could not write {}", page.display()))?;
    }
    Ok(())
}

/// Minifies one script or style sheet in place with esbuild.
fn minify(script: &Path) -> Result<()> {
    let before = std::fs::metadata(script).map(|m| m.len()).unwrap_or_default();
    let status = crate::util::tool("esbuild")
        .arg("--minify")
        .arg("--log-level=warning")
        .arg(script)
        .arg(format!("--outfile={}", script.display()))
        .arg("--allow-overwrite")
        .status()
        .context("could not run esbuild (`cargo xtask setup` installs it)")?;
    if !status.success() {
        bail!("esbuild could not minify {} ({status})", script.display());
    }
    let after = std::fs::metadata(script).map(|m| m.len()).unwrap_or_default();
    util::note(format!(
        "minified {}: {before} -> {after} bytes",
        script.file_name().unwrap_or_default().to_string_lossy()
    ));
    Ok(())
}

/// Rewrites the `integrity` of every tag in `html` whose `href` or `src`
/// names the file `name` (in any directory), for its new `bytes`, keeping
/// the hash algorithm trunk chose.
fn set_integrity(html: &str, name: &str, bytes: &[u8]) -> String {
    let lower = html.to_ascii_lowercase();
    let mut edits = Vec::new();
    for tag in page::tags(&lower, "link").chain(page::tags(&lower, "script")) {
        let names_file = ["href", "src"].iter().any(|attribute| {
            page::attribute(&lower, tag.clone(), attribute)
                .is_some_and(|value| html[value].rsplit('/').next() == Some(name))
        });
        let Some(integrity) = page::attribute(&lower, tag.clone(), "integrity") else { continue };
        if !names_file {
            continue;
        }
        let value = match html[integrity.clone()].split_once('-').map(|(algorithm, _)| algorithm) {
            Some("sha256") => format!("sha256-{}", base64_of(&sha2::Sha256::digest(bytes))),
            Some("sha512") => format!("sha512-{}", base64_of(&sha2::Sha512::digest(bytes))),
            _ => format!("sha384-{}", base64_of(&sha2::Sha384::digest(bytes))),
        };
        edits.push((integrity, value));
    }
    let mut out = html.to_owned();
    edits.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, value) in edits {
        out.replace_range(range, &value);
    }
    out
}

fn base64_of(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integrity_of_the_named_file_is_recomputed_in_any_markup() {
        // sha384 of "abc" (as `printf abc | openssl dgst -sha384 -binary | base64` prints it).
        let abc = "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn";
        let page = "<link rel=modulepreload href=/repo/app-1.js integrity=sha384-old crossorigin>\
                    <link rel=\"stylesheet\" href=\"/repo/app-1.css\" integrity=\"sha384-keep\">\
                    <LINK HREF='app-1.js' INTEGRITY='sha384-old'>";
        let patched = set_integrity(page, "app-1.js", b"abc");
        assert_eq!(
            patched,
            format!(
                "<link rel=modulepreload href=/repo/app-1.js integrity={abc} crossorigin>\
                 <link rel=\"stylesheet\" href=\"/repo/app-1.css\" integrity=\"sha384-keep\">\
                 <LINK HREF='app-1.js' INTEGRITY='{abc}'>"
            )
        );
        // Another file of the same stem, and a tag without integrity, stay.
        assert_eq!(set_integrity(page, "app-1.j", b"abc"), page);
        assert_eq!(set_integrity("<link href=a.js>", "a.js", b"abc"), "<link href=a.js>");
    }

    #[test]
    fn trunks_other_algorithms_are_kept() {
        let patched = set_integrity("<link href=a.js integrity=sha256-x>", "a.js", b"abc");
        assert_eq!(
            patched,
            "<link href=a.js integrity=sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=>"
        );
    }
}
