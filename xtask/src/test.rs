//! `cargo xtask test`: every test of the project, in phases.
//!
//! 1. `setup`: the tool check of `cargo xtask setup` (installs what is missing).
//! 2. `native`: `cargo test --workspace`.
//! 3. `wasm`: `cargo test --target wasm32-unknown-unknown --tests` for the SPA
//!    (with its `test-hooks` feature) and for dance-protocol, run by
//!    wasm-bindgen-test-runner in headless Chromium through ChromeDriver
//!    (capabilities in `webdriver.json` at the root).
//! 4. `build`: `cargo xtask build` (the release bundle the end-to-end suite serves),
//!    and, for the suite's sub-path scenario, the GitHub Pages build: the same
//!    `pages::run` that `cargo xtask pages` and `.github/workflows/pages.yml`
//!    run (build under the path, config.json, CSP, 404.html), under `/repo/`
//!    into `target/dist-subpath/`. Only its inputs differ from the workflow's:
//!    the relay and fakebucket at the demo's origins, which the suite rewrites
//!    to its own ports as it serves the page (and it serves its own
//!    config.json).
//! 5. `size`: the bundle-size budget, `cargo test -p oauth-dance --test size --
//!    --include-ignored` with `DANCE_DIST` pointing at `dist/`.
//! 6. `worker`: `cargo xtask worker-build` (the relay as a Cloudflare Worker),
//!    then the relay's integration cases against that Worker in a local
//!    workerd: `cargo test -p dance-relay --test it -- --ignored`, with
//!    `DANCE_WORKERD` and `DANCE_WORKER_BUILD` set.
//! 7. `e2e`: `cargo test -p oauth-dance --test e2e -- --include-ignored
//!    --skip bench::` (the browser benchmark is `cargo xtask bench browser`'s) with
//!    `DANCE_E2E_DIST` pointing at `dist/`, `DANCE_E2E_DIST_SUBPATH` at
//!    `target/dist-subpath/`, and the Worker's variables for the scenarios that
//!    use the Worker as the relay.
//! 8. `relay`: `cargo xtask relay-release`, the relay's static musl binary as
//!    `deploy/Dockerfile` builds it, smoke-tested (static, `--help`, `check`,
//!    `/healthz`, SIGTERM).
//! 9. `audit`: `cargo xtask audit` (cargo-deny on the dependency tree,
//!    zizmor on the workflows, hadolint on the Dockerfile).
//! 10. `lint`: `cargo fmt --all --check`, and `cargo clippy --all-targets --
//!     -D warnings` for the workspace and again on wasm32 for the SPA,
//!     dance-protocol, dance-relay-core and the Worker (last, so that a style
//!     slip never hides a failing test).
//!
//! The first failing phase stops the run. The output ends with a summary of the
//! phases followed by every `test result:` line the runners printed, verbatim,
//! so whoever reads the end of a CI log sees the counts.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::audit;
use crate::build::{self, BuildArgs};
use crate::pages::{self, PagesArgs};
use crate::relay::{self, RelayReleaseArgs};
use crate::setup::{self, CHROMEDRIVER, WASM_TARGET};
use crate::util::{self, step};
use crate::worker::{self, WorkerBuildArgs};
use dance_relay_worker::workerd;

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Run only these phases (repeatable); the default is all of them.
    #[arg(long, value_enum, value_name = "PHASE")]
    only: Vec<Phase>,
    /// Skip these phases (repeatable).
    #[arg(long, value_enum, value_name = "PHASE")]
    skip: Vec<Phase>,
    /// Shorthand for `--only native`.
    #[arg(long, conflicts_with_all = ["only", "wasm_only"])]
    native_only: bool,
    /// Shorthand for `--only wasm`.
    #[arg(long, conflicts_with = "only")]
    wasm_only: bool,
}

/// A phase of the test run, in running order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Check and install tools.
    Setup,
    /// Native tests of every workspace crate.
    Native,
    /// Wasm tests in headless Chromium.
    Wasm,
    /// The release build of the SPA.
    Build,
    /// The bundle-size budget, checked on the release build.
    Size,
    /// The relay as a Cloudflare Worker, built and tested in workerd.
    Worker,
    /// The end-to-end suite in headless Chromium.
    E2e,
    /// The relay's static release binary, built and smoke-tested.
    Relay,
    /// The supply chain and the workflows: cargo-deny, zizmor, hadolint.
    Audit,
    /// rustfmt and clippy, warnings denied.
    Lint,
}

const ALL_PHASES: [Phase; 10] = [
    Phase::Setup,
    Phase::Native,
    Phase::Wasm,
    Phase::Build,
    Phase::Size,
    Phase::Worker,
    Phase::E2e,
    Phase::Relay,
    Phase::Audit,
    Phase::Lint,
];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::Native => "native",
            Self::Wasm => "wasm",
            Self::Build => "build",
            Self::Size => "size",
            Self::Worker => "worker",
            Self::E2e => "e2e",
            Self::Relay => "relay",
            Self::Audit => "audit",
            Self::Lint => "lint",
        }
    }
}

/// How a phase ended.
enum Outcome {
    Passed,
    Failed(String),
}

/// The record of one phase, for the summary.
struct Record {
    phase: Phase,
    outcome: Outcome,
    elapsed: Duration,
    test_results: Vec<String>,
}

/// Runs `cargo xtask test`. Exits the process with status 1 when a phase fails,
/// after printing the summary, so the summary stays the last thing printed.
pub(crate) fn run(args: &TestArgs) -> Result<()> {
    let selected = selected_phases(args);
    let started = Instant::now();
    let mut records = Vec::new();
    for phase in ALL_PHASES {
        if !selected.contains(&phase) {
            continue;
        }
        step(format!("phase {}", phase.name()));
        let phase_started = Instant::now();
        let mut test_results = Vec::new();
        let outcome = match run_phase(phase, &mut test_results) {
            Ok(outcome) => outcome,
            Err(error) => Outcome::Failed(format!("{error:#}")),
        };
        let failed = matches!(outcome, Outcome::Failed(_));
        records.push(Record { phase, outcome, elapsed: phase_started.elapsed(), test_results });
        if failed {
            break;
        }
    }
    print_summary(&records, &selected, started.elapsed());
    if records.iter().any(|record| matches!(record.outcome, Outcome::Failed(_))) {
        std::process::exit(1);
    }
    Ok(())
}

fn selected_phases(args: &TestArgs) -> Vec<Phase> {
    let only: Vec<Phase> = if args.native_only {
        vec![Phase::Native]
    } else if args.wasm_only {
        vec![Phase::Wasm]
    } else {
        args.only.clone()
    };
    ALL_PHASES
        .into_iter()
        .filter(|phase| only.is_empty() || only.contains(phase))
        .filter(|phase| !args.skip.contains(phase))
        .collect()
}

fn run_phase(phase: Phase, test_results: &mut Vec<String>) -> Result<Outcome> {
    match phase {
        Phase::Setup => setup::ensure_all().map(|()| Outcome::Passed),
        Phase::Native => cargo_tests(&mut native_command(), test_results),
        Phase::Wasm => {
            let suites: [(&str, &[&str]); 2] =
                [("oauth-dance", &[SPA_TEST_HOOKS]), ("dance-protocol", &[])];
            for (package, features) in suites {
                let outcome = cargo_tests(&mut wasm_command(package, features), test_results)?;
                if !matches!(outcome, Outcome::Passed) {
                    return Ok(outcome);
                }
            }
            Ok(Outcome::Passed)
        }
        Phase::Build => {
            build::run(&BuildArgs { no_setup: true, ..BuildArgs::default() })?;
            // The sub-path scenario of the end-to-end suite serves this one.
            pages::run(&subpath_pages_args())?;
            Ok(Outcome::Passed)
        }
        Phase::Size => cargo_tests(&mut size_command(), test_results),
        Phase::Worker => {
            let build = worker::run(&WorkerBuildArgs { no_setup: true })?;
            let mut command = util::cargo();
            command
                .args(["test", "-p", "dance-relay", "--test", "it", "--", "--ignored"])
                .envs(worker::run_env(&build)?);
            cargo_tests(&mut command, test_results)
        }
        Phase::E2e => {
            // The scenarios with the Worker as the relay need it built.
            let build = worker::build_dir();
            if !workerd::is_build_dir(&build) {
                worker::run(&WorkerBuildArgs { no_setup: true })?;
            }
            cargo_tests(e2e_command().envs(worker::run_env(&build)?), test_results)
        }
        Phase::Relay => {
            relay::run(&RelayReleaseArgs { no_setup: true })?;
            Ok(Outcome::Passed)
        }
        Phase::Audit => audit::run().map(|()| Outcome::Passed),
        Phase::Lint => {
            util::run(util::cargo().args(["fmt", "--all", "--check"]))
                .map_err(|error| error.context("formatting differs: run `cargo fmt --all`"))?;
            util::run(util::cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            // The SPA's browser code and the Worker only compile for wasm32.
            util::run(util::cargo().args([
                "clippy",
                "-p",
                "oauth-dance",
                "-p",
                "dance-protocol",
                "-p",
                "dance-relay-core",
                "-p",
                "dance-relay-worker",
                "--features",
                SPA_TEST_HOOKS,
                "--target",
                WASM_TARGET,
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            Ok(Outcome::Passed)
        }
    }
}

/// Runs a cargo test command, keeping its `test result:` lines.
fn cargo_tests(command: &mut Command, test_results: &mut Vec<String>) -> Result<Outcome> {
    let captured = util::run_capturing_results(command)?;
    test_results.extend(captured.test_results);
    Ok(if captured.status.success() {
        Outcome::Passed
    } else {
        Outcome::Failed(format!("`{}` failed ({})", util::display(command), captured.status))
    })
}

fn native_command() -> Command {
    let mut command = util::cargo();
    command.args(["test", "--workspace"]);
    command
}

/// The SPA's feature for its browser tests (a second tab, a short wait).
const SPA_TEST_HOOKS: &str = "oauth-dance/test-hooks";

/// Wasm tests of one package. `--tests` leaves out doctests, which can't run in
/// a browser. wasm-bindgen-test-runner finds ChromeDriver through `CHROMEDRIVER`
/// and reads extra Chromium capabilities from `WASM_BINDGEN_TEST_WEBDRIVER_JSON`;
/// `WASM_BINDGEN_USE_BROWSER` makes test crates that don't say where to run go
/// to the browser too (the runner's default would be Node.js).
fn wasm_command(package: &str, features: &[&str]) -> Command {
    let mut command = util::cargo();
    command
        .args(["test", "--target", WASM_TARGET, "--tests", "-p", package])
        .args(features.iter().flat_map(|feature| ["--features", feature]))
        .env("CHROMEDRIVER", CHROMEDRIVER)
        .env("WASM_BINDGEN_USE_BROWSER", "1")
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", util::root().join("webdriver.json"));
    command
}

/// The SPA's bundle-size budget (`tests/size.rs`, `#[ignore]`d so plain
/// `cargo test` skips it), checked against the fresh `dist/`.
fn size_command() -> Command {
    let mut command = util::cargo();
    command
        .args(["test", "-p", "oauth-dance", "--test", "size", "--", "--include-ignored"])
        .env("DANCE_DIST", build::dist_dir());
    command
}

/// The URL path of the second build, as on GitHub Pages.
const SUBPATH: &str = "/repo/";

/// The Pages build the end-to-end suite's sub-path scenario serves: what the
/// workflow runs, with the demo's relay and fakebucket origins (the suite's
/// `DEMO_RELAY_ORIGIN` and `DEMO_FAKEBUCKET_ORIGIN`, which it rewrites in the
/// page's CSP to its own ports).
fn subpath_pages_args() -> PagesArgs {
    PagesArgs {
        public_url: Some(SUBPATH.to_owned()),
        client_id: Some(fakebucket::DEMO_KEY.to_owned()),
        relay_url: Some("http://127.0.0.1:8787/token".to_owned()),
        fakebucket: Some("http://127.0.0.1:9090/".to_owned()),
        dist: Some(subpath_dist()),
        no_setup: true,
        ..PagesArgs::default()
    }
}

/// Where the build under [`SUBPATH`] goes.
fn subpath_dist() -> PathBuf {
    util::root().join("target/dist-subpath")
}

/// The module path of the end-to-end binary's benchmark (`tests/e2e/bench.rs`),
/// which `cargo xtask bench browser` runs and the test phase skips.
pub(crate) const E2E_BENCH_PREFIX: &str = "bench::";

/// The end-to-end command. The suite
/// serves `dist/` (`DANCE_E2E_DIST`) and the build under `/repo/`
/// (`DANCE_E2E_DIST_SUBPATH`). It leaves out the benchmark in the same binary
/// (`--skip bench::`).
fn e2e_command() -> Command {
    let mut command = util::cargo();
    command
        .args(["test", "-p", "oauth-dance", "--test", "e2e", "--", "--include-ignored"])
        .args(["--skip", E2E_BENCH_PREFIX])
        .env("DANCE_E2E_DIST", build::dist_dir())
        .env("DANCE_E2E_DIST_SUBPATH", subpath_dist());
    command
}

fn print_summary(records: &[Record], selected: &[Phase], elapsed: Duration) {
    let failed = records.iter().find(|record| matches!(record.outcome, Outcome::Failed(_)));
    if let Some(record) = failed {
        step(format!("FAILED in phase {}", record.phase.name()));
        if let Outcome::Failed(why) = &record.outcome {
            util::note(why);
        }
    }
    step(format!("summary ({} in total)", util::human_duration(elapsed)));
    for phase in ALL_PHASES {
        let Some(record) = records.iter().find(|record| record.phase == phase) else {
            let why = if selected.contains(&phase) { "not run" } else { "not selected" };
            println!("    {:<7} {why}", phase.name());
            continue;
        };
        let word = match &record.outcome {
            Outcome::Passed => "ok",
            Outcome::Failed(_) => "FAILED",
        };
        let counts = if record.test_results.is_empty() {
            String::new()
        } else {
            let total = Counts::sum(&record.test_results);
            format!(
                "{} passed, {} failed, {} ignored ({} test binaries)",
                total.passed,
                total.failed,
                total.ignored,
                record.test_results.len()
            )
        };
        let line = format!(
            "    {:<7} {:<8} {:>8}  {counts}",
            phase.name(),
            word,
            util::human_duration(record.elapsed),
        );
        println!("{}", line.trim_end());
    }
    let with_results: Vec<&Record> =
        records.iter().filter(|record| !record.test_results.is_empty()).collect();
    if !with_results.is_empty() {
        step("test results, one line per test binary");
        for record in with_results {
            for line in &record.test_results {
                println!("{line}");
            }
        }
    }
    util::flush();
}

/// The counts in libtest's `test result:` lines.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    /// Adds up lines like `test result: ok. 5 passed; 0 failed; 1 ignored; ...`.
    fn sum(lines: &[String]) -> Self {
        let mut total = Self::default();
        for line in lines {
            for part in line.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(label), Some(number)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(number) = number.parse::<u64>() else {
                    continue;
                };
                match label {
                    "passed" => total.passed += number,
                    "failed" => total.failed += number,
                    "ignored" => total.ignored += number,
                    _ => {}
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(only: Vec<Phase>, skip: Vec<Phase>, native_only: bool) -> TestArgs {
        TestArgs { only, skip, native_only, wasm_only: false }
    }

    #[test]
    fn counts_add_up_libtest_and_wasm_bindgen_test_lines() {
        let lines = [
            "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
                .to_owned(),
            "test result: FAILED. 2 passed; 3 failed; 0 ignored; 0 filtered out; finished in 0.20s"
                .to_owned(),
        ];
        assert_eq!(Counts::sum(&lines), Counts { passed: 7, failed: 3, ignored: 1 });
    }

    #[test]
    fn the_subpath_bundle_is_the_pages_build_with_the_demo_origins() {
        let plan = pages::plan(&subpath_pages_args()).expect("valid settings");
        assert_eq!(plan.public_url, SUBPATH);
        // The suite rewrites exactly these origins in the page's CSP.
        assert_eq!(
            plan.settings.connect_origins,
            ["http://127.0.0.1:8787", "http://127.0.0.1:9090"]
        );
        assert_eq!(plan.settings.img_origins, ["http://127.0.0.1:9090"]);
        let harness =
            std::fs::read_to_string(util::root().join("tests/e2e/harness.rs")).unwrap_or_default();
        if !harness.is_empty() {
            for origin in ["http://127.0.0.1:8787", "http://127.0.0.1:9090"] {
                assert!(
                    harness.contains(origin),
                    "tests/e2e/harness.rs no longer rewrites {origin}"
                );
            }
        }
    }

    #[test]
    fn all_phases_run_by_default_in_order() {
        assert_eq!(selected_phases(&args(vec![], vec![], false)), ALL_PHASES);
    }

    #[test]
    fn only_and_skip_select_phases() {
        assert_eq!(
            selected_phases(&args(vec![Phase::E2e, Phase::Native], vec![], false)),
            [Phase::Native, Phase::E2e]
        );
        assert_eq!(
            selected_phases(&args(vec![], vec![Phase::Setup, Phase::Build], false)),
            [
                Phase::Native,
                Phase::Wasm,
                Phase::Size,
                Phase::Worker,
                Phase::E2e,
                Phase::Relay,
                Phase::Audit,
                Phase::Lint
            ]
        );
        assert_eq!(selected_phases(&args(vec![], vec![], true)), [Phase::Native]);
    }
}
