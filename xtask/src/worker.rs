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
        setup::ensure(&[setup::Need::Worker])?;
    }
    step("building the relay Worker (worker-build --release)");
    let mut command = util::tool("worker-build");
    command
        .arg("--release")
        .current_dir(crate_dir())
        .env("CARGO_TARGET_DIR", util::root().join("target/relay-worker"))
        .envs(tool_env()?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn workflow() -> String {
        std::fs::read_to_string(util::root().join(".github/workflows/relay-worker.yml"))
            .expect(".github/workflows/relay-worker.yml")
    }

    /// The lines of the block that follows the first line containing
    /// `marker` within the step named `step`, less their indentation.
    fn block_after(text: &str, step: &str, marker: &str) -> Vec<String> {
        let mut lines = text.lines().skip_while(|line| !line.contains(&format!("name: {step}")));
        let start = lines.find(|line| line.contains(marker)).expect("the marker");
        let indent = start.len() - start.trim_start().len();
        let body: Vec<&str> = lines
            .take_while(|line| {
                line.trim().is_empty() || line.len() - line.trim_start().len() > indent
            })
            .collect();
        let inner = body
            .iter()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.len() - line.trim_start().len())
            .min()
            .unwrap_or(0);
        body.iter().map(|line| line.get(inner..).unwrap_or("").to_owned()).collect()
    }

    /// The workflow stores both of the relay's secrets as Worker secrets,
    /// checks the sealing key before it deploys, and runs only actions
    /// pinned by commit.
    #[test]
    fn the_worker_workflow_deploys_both_secrets_and_requires_a_sealing_key() {
        let text = workflow();
        let secrets = block_after(&text, "Deploy (wrangler deploy)", "secrets: |");
        let secrets: Vec<&str> =
            secrets.iter().map(|line| line.trim()).filter(|line| !line.is_empty()).collect();
        assert_eq!(secrets, ["DANCE_CLIENT_SECRET", "DANCE_SEALING_KEY"]);
        for line in [
            "DANCE_CLIENT_SECRET: ${{ secrets.BITBUCKET_CLIENT_SECRET }}",
            "DANCE_SEALING_KEY: ${{ secrets.DANCE_SEALING_KEY }}",
        ] {
            assert!(text.contains(line), "the workflow lacks `{line}`");
        }
        let check = text.find("name: Check the sealing key").expect("the check step");
        let deploy = text.find("name: Deploy (wrangler deploy)").expect("the deploy step");
        assert!(check < deploy, "the key is checked before deploying");
        for line in text.lines().filter(|line| line.trim_start().starts_with("- uses:")) {
            let commit = line.split('@').nth(1).and_then(|rest| rest.split_whitespace().next());
            assert!(
                commit.is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit())),
                "not pinned by commit: {line}"
            );
        }
    }

    /// The workflow's check of DANCE_SEALING_KEY agrees with the relay on
    /// keys as `dance-relay keygen` and `openssl rand -base64 32` make them
    /// and on the usual mistakes (it checks their shape; the Worker itself
    /// also refuses a key whose last character has stray bits).
    #[test]
    fn the_workflows_key_check_agrees_with_the_relay() {
        use base64::Engine as _;
        use dance_relay_core::SealingKey;
        let script = block_after(&workflow(), "Check the sealing key", "run: |").join("\n");
        let url = SealingKey::generate().encode();
        let standard = base64::engine::general_purpose::STANDARD.encode([0xfb; 32]);
        for value in [
            url.clone(),
            standard.clone(),
            format!(" {url} , {standard}, "),
            format!("{url},,{standard}"),
            format!("{url}\n"),
            String::new(),
            " , ".to_owned(),
            "abc".to_owned(),
            format!("{url},abc"),
            format!("{url}{url}"),
            format!("{url}\n{standard}"),
            format!("{standard}=="),
            standard.trim_end_matches('=').to_owned(),
            format!("{url}="),
        ] {
            let relay = dance_relay_core::vars::parse_sealing_keys(&value)
                .is_ok_and(|keys| !keys.is_empty());
            let output = Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .env("DANCE_SEALING_KEY", &value)
                .output()
                .expect("run bash");
            let said = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.success(), relay, "{value:?}: {said}");
            assert!(!said.contains(&url) && !said.contains(&standard), "a key was printed");
        }
    }

    /// actionlint (installed by `cargo xtask setup`) finds nothing.
    #[test]
    fn the_worker_workflow_passes_actionlint() {
        util::assert_actionlint_passes(".github/workflows/relay-worker.yml");
    }
}
