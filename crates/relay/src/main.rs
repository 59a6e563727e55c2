//! `dance-relay`: serve the token relay, check its configuration, or make a
//! sealing key.
//!
//! Run with:
//! ```sh
//! DANCE_CLIENT_ID=demo-client DANCE_CLIENT_SECRET=demo-secret \
//! DANCE_TOKEN_URL=http://127.0.0.1:9090/site/oauth2/access_token \
//! DANCE_ALLOWED_ORIGINS=http://127.0.0.1:8080 \
//! DANCE_ALLOWED_REDIRECT_URIS=http://127.0.0.1:8080/ \
//!   cargo run -p dance-relay            # or: cargo run -p dance-relay -- check
//! ```

use anyhow::Context as _;
use clap::Parser as _;
use dance_relay::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Check => {
            let (report, ok) = dance_relay::cli::check(&cli.settings);
            print!("{report}");
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Keygen => {
            println!("{}", dance_relay_core::SealingKey::generate().encode());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => serve(&cli),
    }
}

fn serve(cli: &Cli) -> anyhow::Result<ExitCode> {
    dance_relay::logging::init(cli.settings.log_format).context("cannot set up logging")?;
    let resolved = match cli.settings.resolve() {
        Ok(resolved) => resolved,
        Err(problems) => {
            for problem in problems {
                eprintln!("{problem}");
            }
            eprintln!("dance-relay: not starting; `dance-relay check` prints the same report");
            return Ok(ExitCode::FAILURE);
        }
    };
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(cli.settings.worker_threads))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(resolved.listen)
            .await
            .with_context(|| format!("cannot listen on {}", resolved.listen))?;
        let address = listener.local_addr().context("cannot read the listening address")?;
        tracing::info!(%address, token_url = %resolved.config.token_url, "listening");
        dance_relay::run(listener, resolved.config, dance_relay::shutdown_signal())
            .await
            .context("the relay failed")
    })?;
    Ok(ExitCode::SUCCESS)
}
