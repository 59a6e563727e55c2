//! `cargo xtask bench`: benchmarks.
//!
//! - `relay [ARGS]`: the relay's load generator, `cargo run --release -p
//!   dance-relay --example loadgen -- ARGS` (the relay crate owns it).
//! - `browser`: the browser timing of issue 6, not written yet.

use anyhow::{Result, bail};

use crate::util::{self, step};

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    target: Target,
}

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
enum Target {
    /// Load-test the relay with its load generator (arguments are passed on).
    Relay {
        /// Arguments for the load generator (`cargo xtask bench relay -- --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time the sign-in in a real browser (not written yet).
    Browser,
}

/// Runs `cargo xtask bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    match &args.target {
        Target::Relay { args } => relay(args),
        Target::Browser => bail!(
            "`cargo xtask bench browser` does not exist yet: it comes with the end-to-end suite \
             (issue 6)"
        ),
    }
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
    step("load-testing the relay (release build of the load generator)");
    let mut command = util::cargo();
    command.args(["run", "--release", "-p", "dance-relay", "--example", "loadgen", "--"]);
    command.args(args);
    util::run(&mut command)
}
