//! `dance-relay`: serve the token relay, check its configuration, or make a
//! sealing key.
//!
//! Run with (here with fakebucket's demo consumer):
//! ```sh
//! DANCE_CLIENT_ID=DemoKeyOfTheOauthDanceFakebucket \
//! DANCE_CLIENT_SECRET=DemoSecretOfTheOauthDanceFakebucketEveryoneKnowsItNeverUseItForARealConsumer \
//! DANCE_TOKEN_URL=http://127.0.0.1:9090/site/oauth2/access_token \
//! DANCE_ALLOWED_ORIGINS=http://127.0.0.1:8080 \
//! DANCE_ALLOWED_REDIRECT_URIS=http://127.0.0.1:8080/ \
//!   cargo run -p dance-relay            # or: cargo run -p dance-relay -- check
//! ```

use anyhow::Context as _;
use clap::Parser as _;
use dance_relay::cli::{Cli, Command};
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;

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
    // On one thread (the default), log lines are written whenever the
    // runtime runs out of work (below), off the requests' path; the guard
    // writes what is left when serving ends. With more threads, the thread
    // that accepts connections is not one that runs out of work, so each
    // line is written at once.
    let one_thread = cli.settings.worker_threads == 1;
    let _logs = if one_thread {
        let logs = dance_relay::logging::init_deferred(cli.settings.log_format);
        Some(logs.context("cannot set up logging")?)
    } else {
        dance_relay::logging::init(cli.settings.log_format).context("cannot set up logging")?;
        None
    };
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
    // One thread (the default): everything runs on this thread, the accept
    // loop and the connections alike, with no hand-off between threads.
    let mut runtime = if one_thread {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.on_thread_park(dance_relay::logging::flush);
        builder
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(usize::from(cli.settings.worker_threads));
        builder
    };
    let runtime = runtime.enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (public, address) = bind(resolved.listen).await?;
        tracing::info!(%address, token_url = %resolved.config.token_url, "listening");
        let metrics = match resolved.metrics_listen {
            Some(metrics_address) => {
                let (listener, address) = bind(metrics_address).await?;
                tracing::info!(%address, "serving GET /metrics on its own listener");
                Some(listener)
            }
            None => None,
        };
        let listeners = dance_relay::Listeners { public, metrics };
        dance_relay::run(listeners, resolved.config, dance_relay::shutdown_signal())
            .await
            .context("the relay failed")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A listener on `address`, and the address it got (the port `0` asked for).
async fn bind(address: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener =
        TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr().context("cannot read the listening address")?;
    Ok((listener, bound))
}
