//! `cargo xtask bench`: benchmarks.
//!
//! Each benchmark writes its report into its own section of BENCHMARKS.md
//! (`## Bundle size`, `## Relay`, `## Browser`, `## Lighthouse`), leaving the
//! others alone.
//!
//! - `size`: `cargo xtask build`, then every file of `dist/` raw, gzip and
//!   brotli, and the total the size budget (`tests/size.rs`) counts.
//! - `relay [ARGS]`: the relay's load generator, `cargo run --release -p
//!   dance-relay --example loadgen -- ARGS --report-out FILE` (the relay crate
//!   owns it).
//! - `browser`: the browser timing of the sign-in's callback page. Checks the build and browser
//!   tools (as `cargo xtask setup` does), builds the release SPA into `dist/`
//!   exactly as the test run's `build` phase does (`cargo xtask build`), then
//!   runs the benchmark of the end-to-end binary (`tests/e2e/bench.rs`):
//!   `cargo test -p oauth-dance --test e2e -- --ignored --exact
//!   bench::browser_timing --nocapture --test-threads=1` with `DANCE_E2E_DIST`
//!   at `dist/` and `DANCE_BENCH_OUT` naming the report file.
//!   `DANCE_BENCH_RUNS` / `DANCE_BENCH_WARMUP` in the environment change the
//!   run counts (20 and 1). Then, on the same build, the `lighthouse` part.
//! - `lighthouse [--no-build] [--dist DIR]`: Lighthouse's audits of the
//!   landing and the callback page, each the median of 5 runs
//!   ([`lighthouse`]); `browser` ends with it, and this runs it alone (on the
//!   last build with `--no-build`; built into, or taken from, `DIR` instead
//!   of `dist/` with `--dist`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::budget;
use crate::build::{self, BuildArgs};
use crate::lighthouse;
use crate::setup::{self, Need};
use crate::test::E2E_BENCH_PREFIX;
use crate::util::{self, step};
use crate::worker::{self, WorkerBuildArgs};

/// The benchmark's test name in the end-to-end binary.
const BROWSER_BENCH: &str = "browser_timing";

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    target: Target,
}

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Measure the SPA's release bundle, raw, gzip and brotli (writes BENCHMARKS.md).
    Size,
    /// Load-test the relay with its load generator (arguments are passed on).
    Relay {
        /// Arguments for the load generator (`cargo xtask bench relay -- --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time the sign-in's callback page in headless Chromium, then audit the landing and
    /// callback pages with Lighthouse (writes BENCHMARKS.md).
    Browser,
    /// Only the Lighthouse part of `browser`: audit the landing and callback pages, 5 runs each
    /// (writes BENCHMARKS.md).
    Lighthouse {
        /// Audit the dist/ of the last `cargo xtask build` instead of building first.
        #[arg(long)]
        no_build: bool,
        /// Build into (or with --no-build, audit) this directory instead of dist/.
        #[arg(long, value_name = "DIR")]
        dist: Option<PathBuf>,
    },
}

/// Runs `cargo xtask bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    match &args.target {
        Target::Size => size(),
        Target::Relay { args } => relay(args),
        Target::Browser => browser(),
        Target::Lighthouse { no_build, dist } => lighthouse_only(*no_build, dist.clone()),
    }
}

fn browser() -> Result<()> {
    setup::ensure(&[Need::Build, Need::Browser])?;
    let report = fresh_report_file("browser.md")?;
    let dist = build::run(&BuildArgs { no_setup: true, ..BuildArgs::default() })?;
    step("timing the sign-in in headless Chromium (tests/e2e/bench.rs)");
    let test = format!("{E2E_BENCH_PREFIX}{BROWSER_BENCH}");
    let mut command = util::cargo();
    command
        .args(["test", "-p", "oauth-dance", "--test", "e2e", "--"])
        .args(["--ignored", "--exact", &test, "--nocapture", "--test-threads=1"])
        .env("DANCE_E2E_DIST", &dist)
        .env("DANCE_BENCH_OUT", &report);
    util::run(&mut command)?;
    publish("Browser", &report)?;
    audit_with_lighthouse(&dist)
}

fn lighthouse_only(no_build: bool, dist: Option<PathBuf>) -> Result<()> {
    let dist = if no_build {
        let dist = dist.unwrap_or_else(build::dist_dir);
        if !dist.join("index.html").is_file() {
            bail!(
                "--no-build needs a previous `cargo xtask build`: {} has no index.html",
                dist.display()
            );
        }
        dist
    } else {
        setup::ensure(&[Need::Build, Need::Browser])?;
        build::run(&BuildArgs { no_setup: true, dist, ..BuildArgs::default() })?
    };
    audit_with_lighthouse(&dist)
}

/// Lighthouse on the build in `dist`, into its section of BENCHMARKS.md.
fn audit_with_lighthouse(dist: &Path) -> Result<()> {
    step("auditing the landing and callback pages with Lighthouse");
    let report = fresh_report_file("lighthouse.md")?;
    lighthouse::run(dist, &report)?;
    publish(lighthouse::SECTION, &report)
}

fn relay(args: &[String]) -> Result<()> {
    let examples = util::root().join("crates/relay/examples");
    let exists = ["loadgen.rs", "loadgen/main.rs"].iter().any(|path| examples.join(path).is_file());
    if !exists {
        bail!(
            "the relay's load generator is missing: expected {}/loadgen.rs (or loadgen/main.rs)",
            examples.display()
        );
    }
    // `--target worker` compares the Worker in workerd with the native relay.
    let on_workers = args.windows(2).any(|pair| pair[0] == "--target" && pair[1] == "worker")
        || args.iter().any(|arg| arg == "--target=worker");
    let mut command = util::cargo();
    if on_workers {
        setup::ensure(&[Need::Build, Need::Worker])?;
        let build = worker::run(&WorkerBuildArgs { no_setup: true })?;
        command.envs(worker::run_env(&build)?);
    }
    // `--target binding` compares the relay without and with a sealing key.
    let binding = args.windows(2).any(|pair| pair[0] == "--target" && pair[1] == "binding")
        || args.iter().any(|arg| arg == "--target=binding");
    let (file, section) = match (on_workers, binding) {
        (true, _) => ("relay-worker.md", "Relay on Workers"),
        (false, true) => ("relay-binding.md", "Bound refresh tokens at the relay"),
        (false, false) => ("relay.md", "Relay"),
    };
    step("load-testing the relay (release build of the load generator)");
    let report = fresh_report_file(file)?;
    command.args(["run", "--release", "-p", "dance-relay", "--example", "loadgen", "--"]);
    command.args(args).arg("--report-out").arg(&report);
    util::run(&mut command)?;
    publish(section, &report)
}

fn size() -> Result<()> {
    let dist = build::run(&BuildArgs::default())?;
    let rows = build::measure(&dist)?;
    let counted: u64 = rows
        .iter()
        .filter(|row| row.name != "total" && budget::counts(Path::new(&row.name)))
        .map(|row| row.brotli)
        .sum();
    let mut body = String::from(
        "Measured by `cargo xtask bench size`: `trunk build --release` with the `wasm-release` \
         profile (opt-level z, fat LTO, one codegen unit, panic abort) and wasm-opt -Oz; every \
         file of `dist/` raw, gzip (level 9) and brotli (quality 11), in bytes. Hashes in the \
         file names are trunk's and change with the content.\n\n\
         | file | raw | gzip | brotli |\n|---|---:|---:|---:|\n",
    );
    for row in &rows {
        body.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            if row.name == "total" { "**total**" } else { &row.name },
            thousands(row.raw),
            thousands(row.gzip),
            thousands(row.brotli)
        ));
    }
    body.push_str(&format!(
        "\nThe bundle budget counts the brotli bytes of the wasm, JavaScript, HTML and CSS: **{} \
         B against a limit of {} B** ({:.1} %), which `tests/size.rs` (run by `cargo xtask \
         test`) enforces.\n",
        thousands(counted),
        thousands(budget::LIMIT),
        counted as f64 * 100.0 / budget::LIMIT as f64
    ));
    let report = fresh_report_file("size.md")?;
    std::fs::write(&report, body)
        .with_context(|| format!("could not write {}", report.display()))?;
    publish("Bundle size", &report)
}

/// `1234567` as `1,234,567`.
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `target/bench/<name>`, removed if a previous run left it, so a run that
/// writes nothing can't publish stale numbers.
fn fresh_report_file(name: &str) -> Result<PathBuf> {
    let dir = util::root().join("target/bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("could not remove {}", path.display()));
        }
    }
    Ok(path)
}

/// Puts the report in `report` into the `## {heading}` section of BENCHMARKS.md.
fn publish(heading: &str, report: &Path) -> Result<()> {
    let body = std::fs::read_to_string(report).with_context(|| {
        format!(
            "the benchmark wrote no report to {}, so BENCHMARKS.md is unchanged",
            report.display()
        )
    })?;
    let path = util::root().join("BENCHMARKS.md");
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(error) => {
            return Err(error).with_context(|| format!("could not read {}", path.display()));
        }
    };
    std::fs::write(&path, replace_section(&old, heading, &body))
        .with_context(|| format!("could not write {}", path.display()))?;
    step(format!("wrote the \"{heading}\" section of {}", path.display()));
    Ok(())
}

/// `document` with its `## {heading}` section's body replaced by `body`, or
/// with the section appended when there is none. Other sections keep their
/// place and text; sections are separated by one blank line.
fn replace_section(document: &str, heading: &str, body: &str) -> String {
    let title = format!("## {heading}");
    let section = format!("{title}\n\n{}\n", body.trim());
    let lines: Vec<&str> = document.lines().collect();
    let Some(start) = lines.iter().position(|line| line.trim_end() == title) else {
        return format!("{}\n\n{section}", document.trim_end());
    };
    let end = lines[start + 1..]
        .iter()
        .position(|line| line.starts_with("## "))
        .map_or(lines.len(), |offset| start + 1 + offset);
    let before = lines[..start].join("\n");
    let after = lines[end..].join("\n");
    let mut out = format!("{}\n\n{section}", before.trim_end());
    if !after.is_empty() {
        out.push('\n');
        out.push_str(&after);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_appended_then_replaced_in_place() {
        let doc = "# Benchmarks\n\nIntro.\n";
        let doc = replace_section(doc, "Relay", "relay one\n");
        assert_eq!(doc, "# Benchmarks\n\nIntro.\n\n## Relay\n\nrelay one\n");
        let doc = replace_section(&doc, "Browser", "browser one");
        let doc = replace_section(&doc, "Relay", "relay two\n\n| a |\n");
        assert_eq!(
            doc,
            "# Benchmarks\n\nIntro.\n\n## Relay\n\nrelay two\n\n| a |\n\n## Browser\n\nbrowser one\n"
        );
        // A heading that only starts like ours is another section.
        let doc = replace_section(&doc, "Rel", "x");
        assert!(doc.ends_with("## Browser\n\nbrowser one\n\n## Rel\n\nx\n"), "{doc}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(122_880), "122,880");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
