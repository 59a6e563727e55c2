//! `dance-doctor --site URL [--relay URL]`: checks an oauth-dance deployment
//! from the outside and says what to change for each problem. The checks
//! live in the library (`dance_doctor`), which `cargo xtask doctor` runs too.

use clap::Parser;

/// Check an oauth-dance deployment from the outside: site, config.json, CSP,
/// relay, CORS, allowlists, sealing.
#[derive(Debug, Parser)]
#[command(name = "dance-doctor", version)]
struct Cli {
    #[command(flatten)]
    args: dance_doctor::DoctorArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dance_doctor::run(&cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
