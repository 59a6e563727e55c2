//! `cargo xtask build`: the SPA's release bundle in `dist/`, and what it weighs.
//!
//! Trunk does the work (`trunk build --release`); `Trunk.toml` selects the
//! size-tuned `wasm-release` cargo profile, pins wasm-bindgen and wasm-opt, and
//! keeps trunk offline. Afterwards every file in `dist/` is listed with its size
//! raw, gzip-compressed (level 9) and brotli-compressed (quality 11): the last
//! two are what a browser downloads from a server that compresses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::budget;
use crate::setup::WASM_TARGET;
use crate::util::{self, step};

/// Options of `cargo xtask build`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct BuildArgs {
    /// The URL path the site is served under, e.g. `/repo/` for GitHub Pages (default `/`).
    #[arg(long, value_name = "PATH")]
    pub(crate) public_url: Option<String>,
    /// Where to put the bundle (default `dist/`).
    #[arg(long, value_name = "DIR")]
    pub(crate) dist: Option<PathBuf>,
    /// Skip the tool check of `cargo xtask setup --build-only`.
    #[arg(long)]
    pub(crate) no_setup: bool,
}

/// Runs `cargo xtask build`; returns the absolute path of the output directory.
pub(crate) fn run(args: &BuildArgs) -> Result<PathBuf> {
    if !args.no_setup {
        crate::setup::ensure(&[crate::setup::Need::Build])?;
    }
    let dist = match &args.dist {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => std::env::current_dir().context("no current directory")?.join(dir),
        None => dist_dir(),
    };
    fetch_wasm_dependencies()?;
    trunk_build(args.public_url.as_deref(), &dist)?;
    print_sizes(&dist)?;
    Ok(dist)
}

/// The absolute path of `dist/`.
pub(crate) fn dist_dir() -> PathBuf {
    util::root().join("dist")
}

/// Trunk runs cargo with `--offline` (Trunk.toml): download the crates the wasm
/// build needs first, which is a no-op when they are already in cargo's cache.
fn fetch_wasm_dependencies() -> Result<()> {
    step(format!("fetching crates for {WASM_TARGET}"));
    util::run(util::cargo().args(["fetch", "--target", WASM_TARGET]))
}

fn trunk_build(public_url: Option<&str>, dist: &Path) -> Result<()> {
    step(format!(
        "building the SPA under {}: trunk build --release (profile wasm-release, wasm-opt)",
        public_url.unwrap_or("/")
    ));
    // `tool` puts the pinned wasm-opt and esbuild first on PATH, and the
    // directory of the cargo that runs us before any other cargo, so trunk
    // builds the SPA with the same toolchain as everything else.
    let mut command = util::tool("trunk");
    command.current_dir(util::root()).args(["build", "--release"]);
    if dist != dist_dir() {
        command.arg("--dist").arg(dist);
    }
    if let Some(url) = public_url {
        command.args(["--public-url", url]);
    }
    util::run(&mut command).context("the SPA did not build")
}

/// One row of the size table: a file of the bundle and what it weighs.
pub(crate) struct Sizes {
    /// The path below the bundle's directory; `total` for the sum.
    pub(crate) name: String,
    pub(crate) raw: u64,
    pub(crate) gzip: u64,
    pub(crate) brotli: u64,
}

/// Every file under `dist` with its raw, gzip and brotli sizes, sorted by
/// path, and the total as the last row.
pub(crate) fn measure(dist: &Path) -> Result<Vec<Sizes>> {
    let mut files = Vec::new();
    collect_files(dist, &mut files)?;
    files.sort();
    let mut rows = Vec::new();
    for path in &files {
        let bytes =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let name = path.strip_prefix(dist).unwrap_or(path).to_string_lossy().into_owned();
        rows.push(Sizes {
            name,
            raw: bytes.len() as u64,
            gzip: budget::gzip(&bytes).len() as u64,
            brotli: budget::brotli(&bytes).len() as u64,
        });
    }
    rows.push(Sizes {
        name: "total".to_owned(),
        raw: rows.iter().map(|row| row.raw).sum(),
        gzip: rows.iter().map(|row| row.gzip).sum(),
        brotli: rows.iter().map(|row| row.brotli).sum(),
    });
    Ok(rows)
}

/// Prints every file under `dist` with its raw, gzip and brotli sizes, and the total.
fn print_sizes(dist: &Path) -> Result<()> {
    let rows = measure(dist)?;
    step(format!("dist/ ({})", dist.display()));
    let width = rows.iter().map(|row| row.name.len()).max().unwrap_or(0).max(5);
    println!("    {:<width$}  {:>10}  {:>10}  {:>10}", "file", "raw", "gzip", "brotli");
    for row in &rows {
        println!(
            "    {:<width$}  {:>10}  {:>10}  {:>10}",
            row.name,
            util::human_size(row.raw),
            util::human_size(row.gzip),
            util::human_size(row.brotli),
        );
    }
    Ok(())
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("could not list {}", dir.display()))?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::budget;

    #[test]
    fn compressed_sizes_shrink_repetitive_input_and_round_trip() {
        let text = "Sign in with Bitbucket. ".repeat(200);
        let gzip = budget::gzip(text.as_bytes()).len();
        let compressed = budget::brotli(text.as_bytes());
        assert!(gzip > 0 && gzip < 200, "gzip size {gzip}");
        assert!(
            !compressed.is_empty() && compressed.len() < 200,
            "brotli size {}",
            compressed.len()
        );

        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut compressed.as_slice(), &mut decoded).expect("decompress");
        assert_eq!(decoded, text.as_bytes());
    }
}
