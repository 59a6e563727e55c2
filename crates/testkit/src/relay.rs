//! The native relay in-process on loopback, through `dance_relay`'s own
//! entry point (`run_with_clock`), stoppable and restartable on the same
//! address.

use anyhow::{Context as _, Result};
use dance_relay::{Clock, Config, Listeners, RunError};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

/// A relay configuration for fakebucket's demo consumer on `fakebucket`
/// that allows exactly the Origin `origin` and the redirect URI
/// `redirect_uri`. Everything else is the relay's default (rate limit on,
/// no sealing key); callers change what their case needs.
pub fn relay_config(fakebucket: &fakebucket::Handle, origin: &str, redirect_uri: &str) -> Config {
    let mut config = Config::new(
        dance_protocol::ClientId::new(fakebucket::DEMO_KEY),
        dance_protocol::ClientSecret::new(fakebucket::DEMO_SECRET),
    );
    config.token_url = fakebucket.token_url();
    config.allowed_origins = vec![origin.to_owned()];
    config.allowed_redirect_uris = vec![redirect_uri.to_owned()];
    config
}

/// The serving task and its shutdown trigger.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RunError>>,
}

/// `dance-relay` served in-process on `127.0.0.1`, on its [`Clock`], until
/// stopped or dropped. It keeps its addresses when stopped, so that
/// [`Relay::restart`] brings it back where the SPA's `config.json` says it is.
pub struct Relay {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    config: Config,
    clock: Clock,
    running: Option<Running>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("addr", &self.addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Serves `config` on a free loopback port, without a metrics listener.
    ///
    /// # Errors
    ///
    /// An invalid configuration, or no port to bind.
    pub async fn start(config: Config) -> Result<Self> {
        Self::start_on(config, false).await
    }

    /// [`Relay::start`] with a metrics listener (`GET /metrics`) on a second
    /// loopback port.
    ///
    /// # Errors
    ///
    /// As [`Relay::start`].
    pub async fn start_with_metrics(config: Config) -> Result<Self> {
        Self::start_on(config, true).await
    }

    async fn start_on(config: Config, metrics: bool) -> Result<Self> {
        // `run` would refuse it too, but only inside its task.
        config.validate().context("the relay's configuration is invalid")?;
        let public = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = public.local_addr()?;
        let metrics = match metrics {
            true => Some(bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?),
            false => None,
        };
        let metrics_addr = metrics.as_ref().map(TcpListener::local_addr).transpose()?;
        let mut relay = Self { addr, metrics_addr, config, clock: Clock::default(), running: None };
        relay.serve(Listeners { public, metrics });
        Ok(relay)
    }

    fn serve(&mut self, listeners: Listeners) {
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender means stop as well.
            let _ = stopped.await;
        };
        let task = tokio::spawn(dance_relay::run_with_clock(
            listeners,
            self.config.clone(),
            self.clock.clone(),
            shutdown,
        ));
        self.running = Some(Running { stop, task });
    }

    /// The public listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, if it has one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// `http://127.0.0.1:PORT{path}` on the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token`.
    pub fn token_url(&self) -> Url {
        // A socket address and a path always make a URL.
        Url::parse(&self.url("/token")).unwrap_or_else(|_| unreachable!("a loopback URL"))
    }

    /// The relay's clock: [`Clock::advance`] moves it forward, for the
    /// relay too.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stops accepting and waits for the requests in flight, as `run`'s
    /// graceful shutdown does. Stopping a stopped relay does nothing.
    ///
    /// # Errors
    ///
    /// The serving task panicked, or `run` failed.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(Running { stop, task }) = self.running.take() else { return Ok(()) };
        let _ = stop.send(());
        task.await.context("the relay's task")?.context("the relay ran")
    }

    /// Stops, waiting at most `grace` for the requests in flight (kept-open
    /// connections can hold a graceful stop for the whole drain), then ends
    /// the serving task.
    pub async fn halt(&mut self, grace: Duration) {
        let Some(Running { stop, mut task }) = self.running.take() else { return };
        let _ = stop.send(());
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            // Cancelled: its listeners are closed once it has ended.
            let _ = task.await;
        }
    }

    /// Serves again on the same addresses, after [`Relay::halt`] or
    /// [`Relay::stop`] (a running relay is halted first, with two seconds'
    /// grace).
    ///
    /// # Errors
    ///
    /// A port taken in the meantime.
    pub async fn restart(&mut self) -> Result<()> {
        self.halt(Duration::from_secs(2)).await;
        let public = bind(self.addr).await?;
        let metrics = match self.metrics_addr {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        self.serve(Listeners { public, metrics });
        Ok(())
    }

    /// Whether the public port refuses connections now.
    pub async fn is_down(&self) -> bool {
        tokio::net::TcpStream::connect(self.addr).await.is_err()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(Running { stop, .. }) = self.running.take() {
            let _ = stop.send(());
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot bind the relay to {addr}"))
}
