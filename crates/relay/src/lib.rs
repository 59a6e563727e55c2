//! dance-relay: the token relay of oauth-dance.
//!
//! To the browser, the relay is an OAuth 2.0 token endpoint for a public
//! client (RFC 6749 4.1.3 and 6, with PKCE per RFC 7636); to Bitbucket it is
//! the confidential client that holds the secret. It keeps no state between
//! requests, so any number of copies behave as one.
//!
//! This crate is the native shell around [`dance_relay_core`], which holds
//! every rule (routes, gates, errors, CORS, the judging of upstream answers,
//! the configuration checks). The same core runs in the Cloudflare Worker
//! (`dance-relay-worker`). What is native lives here:
//!
//! Map of the modules:
//! - [`cli`]: flags and `DANCE_*` variables ([`cli::Cli`]) turned into a
//!   [`Config`], and `dance-relay check`.
//! - `routes`: the core's steps with the IO between them (reading the body
//!   within its deadline, a concurrency slot per exchange), the access log,
//!   and `/metrics` for the metrics listener.
//! - `upstream`: the pooled reqwest client that sends what the core asks.
//! - `metrics`: Prometheus counters and the upstream latency histogram.
//! - `server`: the hyper accept loop with header limits and graceful shutdown;
//!   hyper holds a connection only while one of its requests is served.
//! - [`logging`]: the binary's log output.
//!
//! Start it in-process with [`run`] on a listener of your own (tests use
//! `127.0.0.1:0`), with a second one for `GET /metrics` if wanted
//! ([`Listeners`]), or call [`app`] and drive the public router with
//! `tower::ServiceExt::oneshot` without any socket.

pub mod cli;
pub mod logging;
mod metrics;
mod routes;
mod server;
mod upstream;

pub use dance_relay_core::config;
pub use dance_relay_core::{
    Config, ConfigError, DEFAULT_TOKEN_URL, Limits, Outcome, Problem, Severity,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration has errors.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client for the token endpoint could not be built.
    #[error("cannot set up the HTTP client for the token endpoint: {0}")]
    Client(#[source] reqwest::Error),
}

/// The relay's public router (no `/metrics`), for serving or for `oneshot`
/// tests.
///
/// The configuration is used as given; [`run`] validates it first.
///
/// # Panics
///
/// If the TLS client cannot be initialised, which does not happen with the
/// bundled rustls and its built-in roots. Use [`try_app`] to get an error.
pub fn app(config: Config) -> axum::Router {
    match try_app(config) {
        Ok(router) => router,
        Err(error) => panic!("{error}"),
    }
}

/// The relay's public router, or why its HTTP client could not be built.
pub fn try_app(config: Config) -> Result<axum::Router, RunError> {
    try_app_with_clock(config, Clock::default())
}

/// [`try_app`] on a [`Clock`] of the caller's: tests move it forward to
/// reach a session's end without waiting for it.
pub fn try_app_with_clock(config: Config, clock: Clock) -> Result<axum::Router, RunError> {
    Ok(routers(config, clock)?.0)
}

/// The public router and the metrics router, over the same counters.
fn routers(config: Config, clock: Clock) -> Result<(axum::Router, axum::Router), RunError> {
    let relay = relay(&config, clock)?;
    Ok((routes::router(relay.clone()), routes::metrics_router(relay)))
}

/// The relay's shared state: its rules, its HTTP client, its counters.
fn relay(config: &Config, clock: Clock) -> Result<Arc<routes::Relay>, RunError> {
    Ok(Arc::new(routes::Relay::new(config, clock).map_err(RunError::Client)?))
}

/// Where the relay serves: the public listener (`/token`, `/healthz`) and,
/// if any, the metrics listener (`GET /metrics`, and nothing else). A bare
/// [`TcpListener`] is a relay without metrics.
#[derive(Debug)]
pub struct Listeners {
    /// The listener a reverse proxy or the browsers reach.
    pub public: TcpListener,
    /// The listener for `GET /metrics`; meant for loopback.
    pub metrics: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(public: TcpListener) -> Self {
        Self { public, metrics: None }
    }
}

/// The relay's wall clock: the system's, moved forward by however much
/// [`Clock::advance`] added. Sealed refresh tokens and DPoP proofs are
/// judged by it. Clones share the same offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Clock {
    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ahead_ms.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The time since the Unix epoch.
    pub fn now(&self) -> Duration {
        let system =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        system + Duration::from_millis(self.ahead_ms.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Validates `config`, then serves it on `listeners` (a [`Listeners`], or a
/// bare [`TcpListener`] for no metrics) until `shutdown` completes. Both
/// listeners then stop accepting, and requests in flight finish (for at most
/// the upstream and body timeouts plus a second) before it returns.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    run_with_clock(listeners, config, Clock::default(), shutdown).await
}

/// [`run`] on a [`Clock`] of the caller's.
pub async fn run_with_clock(
    listeners: impl Into<Listeners>,
    config: Config,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    config.validate()?;
    let Listeners { public, metrics } = listeners.into();
    let limits = config.limits.clone();
    let relay = relay(&config, clock)?;
    let metrics_router = routes::metrics_router(relay.clone());
    let drain = limits.upstream_timeout + limits.body_timeout + Duration::from_secs(1);
    // One shutdown for both listeners.
    let (stop, stopping) = tokio::sync::watch::channel(());
    let stopped = |mut stopping: tokio::sync::watch::Receiver<()>| async move {
        let _ = stopping.changed().await;
    };
    let serve_metrics = async {
        if let Some(listener) = metrics {
            let service = |peer, _| server::RouterService { router: metrics_router.clone(), peer };
            server::serve(listener, service, &limits, None, drain, stopped(stopping.clone())).await;
        }
    };
    let service = |peer, session| server::RelayService { relay: relay.clone(), peer, session };
    let admission = Some(server::admission(&limits));
    tokio::join!(
        async move {
            shutdown.await;
            let _ = stop.send(());
        },
        server::serve(public, service, &limits, admission, drain, stopped(stopping.clone())),
        serve_metrics,
    );
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the binary's shutdown trigger.
///
/// On Unix the handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives while the accept loop is
/// busy is never missed. Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let (mut interrupt, mut terminate) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(stream) => stream.recv().await,
                    None => std::future::pending().await,
                }
            };
            let terminated = async {
                match terminate.as_mut() {
                    Some(stream) => stream.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = interrupted => tracing::info!("Ctrl-C received"),
                _ = terminated => tracing::info!("SIGTERM received"),
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            } else {
                std::future::pending::<()>().await;
            }
        }
    }
}
