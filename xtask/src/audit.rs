//! `cargo xtask audit`: the supply-chain and configuration checks that no
//! compiler or test catches, each a pinned tool that works offline.
//!
//! 1. cargo-deny (`deny.toml`): every dependency's license is one we allow,
//!    no crate is banned or pulled in with a wildcard version, and every
//!    crate comes from crates.io. Duplicate versions are reported, not
//!    failed. Advisories are *not* checked: the RustSec database is a git
//!    repository on GitHub, which the project's machines cannot reach (with
//!    `--offline` cargo-deny fails for want of a local copy), and no package
//!    registry ships one. The inclusion graphs are left out of the output
//!    (`cargo tree -i CRATE` shows who pulls a crate in).
//! 2. zizmor on `.github/workflows`: the workflows' security (token
//!    permissions, pinned actions, credentials left in checkouts, template
//!    injection). `--offline` keeps it from calling the GitHub API, which it
//!    would otherwise do whenever `GH_TOKEN` or `GITHUB_TOKEN` is set.
//! 3. hadolint on `deploy/Dockerfile`.
//!
//! cargo-deny is found by cargo, as `cargo deny` (`cargo install` puts it in
//! `~/.cargo/bin`); zizmor and hadolint in the virtual environment that
//! `cargo xtask setup` makes from `tools/requirements-lint.txt`. Any finding
//! fails the run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{self, note, step};

/// The `bin` directory of the Python linters' virtual environment, relative
/// to the repository (installed from `tools/requirements-lint.txt`).
const LINT_BIN: &str = "target/tools/lint/bin";
/// zizmor, in [`LINT_BIN`].
const ZIZMOR: &str = "zizmor";
/// hadolint, in [`LINT_BIN`].
const HADOLINT: &str = "hadolint";
/// The workflows zizmor checks, relative to the repository.
const WORKFLOWS: &str = ".github/workflows";
/// The Dockerfile hadolint checks, relative to the repository.
const DOCKERFILE: &str = "deploy/Dockerfile";

/// Runs `cargo xtask audit`: cargo-deny, zizmor, hadolint, in that order;
/// stops at the first that finds something.
pub(crate) fn run() -> Result<()> {
    step("dependencies: licenses, bans, sources (cargo deny)");
    note("advisories not checked: the RustSec database is on GitHub, out of reach offline");
    util::run(util::cargo().args([
        "deny",
        "--offline",
        "--locked",
        // The root manifest is a package too: without this, only the SPA
        // and what it depends on would be checked.
        "--workspace",
        "check",
        "--hide-inclusion-graph",
        "licenses",
        "bans",
        "sources",
    ]))?;

    step(format!("GitHub workflows (zizmor {WORKFLOWS})"));
    util::run(lint_tool(ZIZMOR)?.args([
        "--offline",
        // Every audit, the documentation ones included: the workflows are
        // small enough to keep clean of all of them.
        "--persona",
        "pedantic",
        "--no-progress",
        "--strict-collection",
        WORKFLOWS,
    ]))?;

    step(format!("Dockerfile (hadolint {DOCKERFILE})"));
    util::run(lint_tool(HADOLINT)?.args(["--no-color", DOCKERFILE]))
}

/// A command running `name` from [`LINT_BIN`] in the repository's root.
fn lint_tool(name: &str) -> Result<Command> {
    let program: PathBuf = util::root().join(LINT_BIN).join(name);
    if !program.is_file() {
        bail!(
            "{} does not exist: run `cargo xtask setup` (it installs {name} from \
             tools/requirements-lint.txt)",
            program.display()
        );
    }
    let mut command = Command::new(program);
    command.current_dir(util::root());
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every linter is pinned to one version and to the hashes of its wheels,
    /// so `pip install --require-hashes` installs exactly what was reviewed.
    #[test]
    fn the_linters_are_pinned_with_hashes() {
        let path = util::root().join("tools/requirements-lint.txt");
        let text = std::fs::read_to_string(&path).expect("read tools/requirements-lint.txt");
        let joined = text.replace("\\\n", " ");
        let requirements: Vec<&str> = joined
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        for tool in [ZIZMOR, HADOLINT] {
            assert!(
                requirements.iter().any(|line| line.contains(tool)),
                "{} does not install {tool}",
                path.display()
            );
        }
        for line in requirements {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(name.contains("=="), "{name} is not pinned to one version");
            assert!(line.contains("--hash=sha256:"), "{name} has no --hash");
        }
    }
}
