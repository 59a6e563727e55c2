//! The relay's Cloudflare Worker: `cargo xtask worker-build`, and the
//! environment that tests, the demo and the benchmark need to run it in a
//! local workerd.
//!
//! worker-build downloads wasm-bindgen, wasm-opt and esbuild unless it is
//! told where they are. It is always told: `WASM_BINDGEN_BIN`,
//! `WASM_OPT_BIN` and `ESBUILD_BIN` name the copies `cargo xtask setup`
//! installed, so a build never reaches for the network. It builds into its
//! own target directory, because it compiles with `WASM_BINDGEN_USE_JS_SYS=1`,
//! which cargo does not fingerprint: sharing the workspace's target directory
//! would make cargo and worker-build rebuild each other's artefacts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup;
use crate::util::{self, note, step};

/// The Worker crate's directory.
pub(crate) fn crate_dir() -> PathBuf {
    util::root().join("crates/relay-worker")
}

/// worker-build's output: `index.js`, `index_bg.wasm` and `worker/shim.mjs`.
pub(crate) fn build_dir() -> PathBuf {
    crate_dir().join("build")
}

/// Options of `cargo xtask worker-build`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct WorkerBuildArgs {
    /// Don't check the toolchain first.
    #[arg(long)]
    pub(crate) no_setup: bool,
}

/// Runs `cargo xtask worker-build`: `worker-build --release` with the local
/// tools, then the size of what would be uploaded.
pub(crate) fn run(args: &WorkerBuildArgs) -> Result<PathBuf> {
    if !args.no_setup {
        setup::ensure(&[setup::Need::Build, setup::Need::Worker])?;
    }
    step("building the relay Worker (worker-build --release)");
    let mut command = Command::new("worker-build");
    command
        .arg("--release")
        .current_dir(crate_dir())
        .env("CARGO_TARGET_DIR", util::root().join("target/relay-worker"))
        .envs(tool_env()?);
    if let Some(path) = util::path_with_cargo_first() {
        command.env("PATH", path);
    }
    util::run(&mut command)?;
    let build = build_dir();
    for module in ["index.js", "index_bg.wasm"] {
        let path = build.join(module);
        let size = std::fs::metadata(&path)
            .with_context(|| format!("worker-build did not write {}", path.display()))?
            .len();
        note(format!("{:<14} {}", module, util::human_size(size)));
    }
    Ok(build)
}

/// `WASM_BINDGEN_BIN`, `WASM_OPT_BIN` and `ESBUILD_BIN` for worker-build.
fn tool_env() -> Result<Vec<(&'static str, OsString)>> {
    let on_path = |program: &str| -> Result<OsString> {
        util::probe("sh", &["-c", &format!("command -v {program}")])
            .map(|path| OsString::from(path.trim()))
            .with_context(|| format!("{program} is not on PATH: run `cargo xtask setup`"))
    };
    let esbuild = setup::esbuild_binary().context(
        "esbuild's native binary was not found under npm's global root: run `cargo xtask setup`",
    )?;
    Ok(vec![
        ("WASM_BINDGEN_BIN", on_path("wasm-bindgen")?),
        ("WASM_OPT_BIN", on_path("wasm-opt")?),
        ("ESBUILD_BIN", esbuild.into_os_string()),
    ])
}

/// `DANCE_WORKERD` and `DANCE_WORKER_BUILD` for whatever runs the Worker
/// locally (the relay's tests, the end-to-end suite, the benchmark).
pub(crate) fn run_env(build: &Path) -> Result<Vec<(&'static str, OsString)>> {
    let Some(workerd) = setup::workerd_binary() else {
        bail!("workerd is not installed: run `cargo xtask setup`");
    };
    Ok(vec![
        ("DANCE_WORKERD", workerd.into_os_string()),
        ("DANCE_WORKER_BUILD", build.as_os_str().to_owned()),
    ])
}
