//! The bundle budget: the brotli-compressed total of the release bundle's
//! wasm, JavaScript, HTML and CSS must stay within the SPA's budget of 120 KB
//! plus the measured cost of the features asked for since
//! ([`budget::LIMIT`], in `tests/support/budget.rs`, says which).
//! BENCHMARKS.md has the breakdown and what each saving was worth.
//!
//! It needs a release build, so it is `#[ignore]`d; `cargo xtask test` runs
//! it after `trunk build --release` with `DANCE_DIST` set to the dist
//! directory:
//!
//! ```sh
//! trunk build --release
//! DANCE_DIST=dist cargo test -p oauth-dance --test size -- --ignored --nocapture
//! ```
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

#[path = "support/budget.rs"]
mod budget;

use budget::LIMIT;

/// One measured file.
struct Measured {
    name: String,
    raw: u64,
    gzip: u64,
    brotli: u64,
}

/// The files of `dir` (recursively) that count towards the budget.
fn bundle_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            bundle_files(&path, out)?;
        } else if budget::counts(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn measure(dist: &Path) -> Vec<Measured> {
    let mut files = Vec::new();
    bundle_files(dist, &mut files)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dist.display()));
    files.sort();
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            Measured {
                name: path.strip_prefix(dist).unwrap_or(path).display().to_string(),
                raw: bytes.len() as u64,
                gzip: budget::gzip(&bytes).len() as u64,
                brotli: budget::brotli(&bytes).len() as u64,
            }
        })
        .collect()
}

#[test]
#[ignore = "needs a release build; set DANCE_DIST (cargo xtask test does)"]
fn brotli_total_is_within_budget() {
    let dist = std::env::var_os("DANCE_DIST")
        .map(PathBuf::from)
        .expect("set DANCE_DIST to the dist directory");
    let files = measure(&dist);
    assert!(
        files.iter().any(|f| f.name.ends_with(".wasm")),
        "no .wasm in {}: build first",
        dist.display()
    );
    assert!(files.iter().any(|f| f.name.ends_with(".html")), "no index.html in {}", dist.display());
    println!("{:<44} {:>9} {:>9} {:>9}", "file", "raw", "gzip", "brotli");
    for f in &files {
        println!("{:<44} {:>9} {:>9} {:>9}", f.name, f.raw, f.gzip, f.brotli);
    }
    let total: u64 = files.iter().map(|f| f.brotli).sum();
    let (raw, gzip): (u64, u64) =
        (files.iter().map(|f| f.raw).sum(), files.iter().map(|f| f.gzip).sum());
    println!("{:<44} {:>9} {:>9} {:>9}", "total", raw, gzip, total);
    println!("the budget: {LIMIT} B; {} B to spare", LIMIT.saturating_sub(total));
    assert!(
        total <= LIMIT,
        "brotli total {total} B is over the budget of {LIMIT} B by {} B \
         (BENCHMARKS.md lists where the bytes go)",
        total - LIMIT
    );
}

#[test]
fn the_measure_counts_only_bundle_files() {
    let dir = std::env::temp_dir().join(format!("oauth-dance-size-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
    std::fs::write(dir.join("index.html"), "<p>hi</p>".repeat(100)).expect("write");
    std::fs::write(dir.join("sub/app.wasm"), [0u8; 4096]).expect("write");
    std::fs::write(dir.join("config.json"), "{}").expect("write");
    let files = measure(&dir);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["index.html", "sub/app.wasm"]);
    assert!(
        files.iter().all(|f| f.brotli > 0 && f.brotli < f.raw),
        "compression shrinks repetitive input"
    );
}

/// The landing page paints from the HTML alone: its headline and its
/// sign-in button are in the built `index.html` (rendered at build time from
/// the app's views), before any script or wasm runs.
#[test]
#[ignore = "needs a release build; set DANCE_DIST (cargo xtask test does)"]
fn the_first_screen_is_in_index_html() {
    let dist = std::env::var_os("DANCE_DIST")
        .map(PathBuf::from)
        .expect("set DANCE_DIST to the dist directory");
    let html = std::fs::read_to_string(dist.join("index.html")).expect("dist/index.html");
    let body = &html[html.find("<body>").expect("a <body>")..];
    for needle in [
        r#"<h1 id="landing-title">See your Bitbucket profile</h1>"#,
        r#"id="sign-in""#,
        "Sign in with Bitbucket</a>",
        "Signing you in…",
    ] {
        assert!(body.contains(needle), "the built index.html lacks {needle:?}");
    }
    let head = &html[..html.find("<body>").expect("a <body>")];
    assert!(
        head.contains(r#"<script src="screen.js"></script>"#),
        "screen.js must run in <head>, before the first paint"
    );
}
