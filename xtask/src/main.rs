//! `cargo xtask`: the project's automation, written in Rust so it runs wherever
//! cargo does.
//!
//! Commands:
//! - `cargo xtask setup`: installs whatever of the toolchain is missing, each
//!   tool at an exact version (the wasm32 target, trunk, wasm-bindgen-cli at
//!   the version in Cargo.lock, wasm-opt, esbuild and workerd from
//!   `tools/package-lock.json`, Chromium and ChromeDriver, the linters from
//!   `tools/requirements-lint.txt`, cargo-deny, the musl target, worker-build)
//!   and skips what is present. `--check` only reports.
//! - `cargo xtask build`: set-up, then `trunk build --release` into `dist/`, then a
//!   table of every file's size raw, gzipped and brotli-compressed.
//!   `--public-url /repo/` builds for a sub-path.
//! - `cargo xtask pages`: the site exactly as the GitHub Pages workflow builds
//!   it: `build` under the site's path, `config.json` from the deployment's
//!   settings (`BITBUCKET_CLIENT_ID`, `RELAY_URL`, `PAGES_SITE_URL`), the CSP
//!   pointed at the relay and Bitbucket, and `404.html` for deep links.
//! - `cargo xtask doctor --site URL [--relay URL]`: checks a deployment from
//!   the outside and says what to change for each problem (the `dance-doctor`
//!   crate, `crates/doctor`, which also builds as a binary of its own).
//! - `cargo xtask relay-release`: the relay as one static (musl) binary, as
//!   `deploy/Dockerfile` builds it, smoke-tested.
//! - `cargo xtask worker-build`: the relay as a Cloudflare Worker
//!   (`worker-build --release` in `crates/relay-worker`, tools local only).
//! - `cargo xtask audit`: cargo-deny (licences, bans, sources), zizmor on the
//!   workflows, hadolint on the Dockerfile, each pinned and offline.
//! - `cargo xtask test`: set-up, then every test in order: native workspace tests,
//!   wasm tests in headless Chromium, the release build, its size budget, the
//!   relay's Worker in workerd, the end-to-end suite, the static relay, the
//!   audit, lint.
//!   Stops at the first failing phase; ends with the test runners' summary lines.
//! - `cargo xtask demo`: builds the SPA and runs fakebucket, the relay and a static
//!   server for `dist/` on loopback, logs interleaved; prints the one URL to
//!   open. `--bitbucket` runs against the real Bitbucket instead of fakebucket;
//!   `--relay worker` runs the relay's Worker in workerd instead of the binary.
//! - `cargo xtask bench size | relay [ARGS] | browser | lighthouse`: the
//!   benchmarks, each (`relay --target worker` puts the Worker beside the
//!   native relay) writing its section of BENCHMARKS.md; `browser` ends with
//!   Lighthouse's audits, which `lighthouse` runs alone.
//!
//! Module map: [`setup`] (tool checks and installs), [`audit`] (the
//! supply-chain checks), `workflows` (tests of the GitHub workflows), [`build`] (trunk and the
//! size table), [`site`] (config.json, the CSP and 404.html of a built site),
//! [`pages`] (the GitHub Pages build),
//! [`relay`] (the relay's static release and its deployment files), [`worker`]
//! (the relay's Worker build and the environment to run it), [`test`]
//! (the test phases), [`demo`] (child processes and logs), [`serve`] (the
//! static file server of the demo), [`bench`], [`lighthouse`] (Lighthouse's
//! audits for `bench`), and [`util`] (paths, progress
//! lines, running programs).

mod audit;
mod bench;
// The bundle budget and its byte counting, shared with `tests/size.rs`.
#[path = "../../tests/support/budget.rs"]
mod budget;
mod build;
// Chromium's flags, shared with the end-to-end suite (`tests/e2e`).
#[path = "../../tests/support/chromium.rs"]
mod chromium;
mod demo;
mod lighthouse;
mod minify;
mod pages;
mod relay;
mod serve;
mod setup;
mod site;
mod test;
mod util;
mod worker;
#[cfg(test)]
mod workflows;

use clap::{Parser, Subcommand};

/// The command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Automation for oauth-dance.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One subcommand of `cargo xtask`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Install the missing tools, pinned: wasm32 target, trunk, wasm-bindgen-cli, the npm
    /// tools (wasm-opt, esbuild, workerd), Chromium, the linters, cargo-deny, musl, worker-build.
    Setup(setup::SetupArgs),
    /// Build the SPA for release into dist/ and print the size of every file.
    Build(build::BuildArgs),
    /// Build the site for GitHub Pages (config.json, CSP, 404.html), as the Pages workflow does.
    Pages(pages::PagesArgs),
    /// Check a deployment from the outside: site, config.json, relay, CORS, allowlists.
    Doctor(dance_doctor::DoctorArgs),
    /// Build the relay as one static binary (musl) and smoke-test it.
    RelayRelease(relay::RelayReleaseArgs),
    /// Build the relay's Cloudflare Worker (worker-build, with the local tools only).
    WorkerBuild(worker::WorkerBuildArgs),
    /// Check the supply chain and the workflows: cargo-deny, zizmor, hadolint.
    Audit,
    /// Run every test: native, wasm in headless Chromium, release build, size budget, end-to-end.
    Test(test::TestArgs),
    /// Run the whole stack on loopback and print the URL to open.
    Demo(demo::DemoArgs),
    /// Benchmarks.
    Bench(bench::BenchArgs),
    /// Minify the release bundle's JavaScript and CSS (run by trunk's post_build hook, see Trunk.toml).
    #[command(hide = true)]
    Minify,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        // `{:#}` prints the chain of contexts on one line; no backtrace, even
        // with RUST_BACKTRACE set, since these errors are for people, not bugs.
        util::flush();
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Setup(args) => setup::run(&args),
        Command::Build(args) => build::run(&args).map(|_| ()),
        Command::Pages(args) => pages::run(&args).map(|_| ()),
        Command::Doctor(args) => dance_doctor::run(&args),
        Command::RelayRelease(args) => relay::run(&args).map(|_| ()),
        Command::WorkerBuild(args) => worker::run(&args).map(|_| ()),
        Command::Audit => audit::run(),
        Command::Test(args) => test::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Minify => minify::run(),
    }
}
