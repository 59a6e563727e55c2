//! fakebucket: a faithful local emulator of Bitbucket Cloud's OAuth 2.0
//! authorization code flow and of `GET /2.0/user` and `GET /2.0/user/emails`.
//!
//! No machine that builds oauth-dance reaches bitbucket.org, and a newcomer
//! has no OAuth consumer yet, so the demo and every test run against this
//! emulator instead. It is only useful if code that works against it works
//! against Bitbucket, so it copies Bitbucket's behaviour as documented and
//! observed, quirks included, as of 2026.
//!
//! # Endpoints (all on one origin, `{base}` = e.g. `http://127.0.0.1:9090/`)
//!
//! | path | what |
//! |---|---|
//! | `GET {base}site/oauth2/authorize` | validates the request, shows the consent page ([`oauth`](crate#modules)) |
//! | `POST {base}site/oauth2/authorize` | the consent form's answer: `302` to the callback with `code`+`state` or `error=access_denied` |
//! | `POST {base}site/oauth2/access_token` | the token endpoint: Basic client auth, form body, `authorization_code`, `refresh_token`, `client_credentials` |
//! | `OPTIONS {base}site/oauth2/access_token` | `500`, as Bitbucket answers a browser's preflight |
//! | `GET {base}2.0/user` | the token's user (scope `account`) |
//! | `GET {base}2.0/user/emails` | their addresses, paginated with `page`/`pagelen`/`next` (scope `email`) |
//! | `GET {base}2.0/user/emails/{email}` | one address (scope `email`) |
//! | `GET {base}avatars/{account_id}/128` | the user's avatar, an SVG made in memory |
//! | `GET {base}{uuid}/` | the user's profile page (`links.html`) |
//! | `{base}_fakebucket/...` | the test-control API, only with [`Config::admin`] ([`admin`]) |
//!
//! # Behaviour worth knowing
//!
//! - The consent page lists the application's name and permissions and
//!   offers the configured users in `<select id="user">`, with the buttons
//!   `#grant` and `#cancel`. It works without JavaScript, by keyboard, and
//!   from a plain HTTP client (read the hidden `txn` field, post it back with
//!   `user` and `decision=grant`).
//! - `redirect_uri` is optional; when sent it must *start with* the
//!   consumer's callback URL (Bitbucket's prefix rule, on the text as sent:
//!   `http://127.0.0.1:8080` does not start with `http://127.0.0.1:8080/`),
//!   and the token request must then repeat it exactly.
//! - Codes are single-use and expire after [`Config::code_lifetime`]; a
//!   replayed code revokes every token issued from it.
//! - Access and refresh tokens are over 2,500 characters each, as
//!   Bitbucket's are since 2026 ([`ACCESS_TOKEN_LEN`], [`REFRESH_TOKEN_LEN`]);
//!   [`Config::short_tokens`] issues the old 88- and 24-character ones.
//! - Refresh tokens rotate: a used one is refused (Bitbucket's `Invalid
//!   refresh_token`) once [`Config::refresh_grace`] has passed since its
//!   first use (default zero), and an unused one dies after
//!   [`Config::refresh_token_lifetime`] (three months) on the [`Clock`].
//! - The demo consumer has a 32-character key and a 76-character secret, the
//!   lengths of a consumer Bitbucket creates today ([`DEMO_KEY`],
//!   [`DEMO_SECRET`]); consumer credentials of any length are accepted.
//! - Token responses carry `scope` (or `scopes` with
//!   [`Config::legacy_scopes_field`]), `expires_in`, `token_type: "bearer"`
//!   and Bitbucket's odd `state` field holding the grant type.
//! - PKCE is ignored unless [`Config::pkce`] is [`PkceMode::Require`].
//! - The API takes tokens from `Authorization: Bearer` only, answers CORS
//!   like Bitbucket (see [`ALLOW_HEADERS`]) and rate-limits per user.
//!
//! # Modules
//!
//! - [`config`]: [`Config`], [`Consumer`] (with the `--consumer` syntax),
//!   [`PkceMode`], [`RateLimit`].
//! - [`fixtures`]: the users and the Bitbucket JSON made from them.
//! - [`clock`]: the [`Clock`] every expiry is measured on; tests move it.
//! - [`admin`]: the test-control API, [`Fault`] and [`Counters`].
//! - Private: `oauth` (authorize and consent), `token` (token endpoint),
//!   `api` (`/2.0`), `pages` (index, avatars, profiles), `store` (codes and
//!   tokens), `html`, `form`, `random`.
//!
//! # Running it
//!
//! `cargo run -p fakebucket` serves on `127.0.0.1:9090` with the demo
//! consumer [`DEMO_KEY`] / [`DEMO_SECRET`]. In tests:
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let fakebucket = fakebucket::spawn(fakebucket::Config::default()).await?;
//! println!("authorize at {}", fakebucket.authorize_url());
//! fakebucket.advance_clock(std::time::Duration::from_secs(7201)); // tokens expire
//! fakebucket.shutdown().await
//! # }
//! ```

pub mod admin;
mod api;
pub mod clock;
pub mod config;
pub mod fixtures;
mod form;
mod html;
mod oauth;
mod pages;
mod random;
mod store;
mod token;

pub use admin::{Counters, Fault, FaultBody, FaultTarget, InvalidFault};
pub use api::{ALLOW_HEADERS, ALLOW_METHODS, EXPOSE_HEADERS};
pub use clock::{Clock, TooFar};
pub use config::{
    ACCESS_TOKEN_LEN, Config, ConfigError, Consumer, ConsumerParseError, DEMO_CALLBACK, DEMO_KEY,
    DEMO_SECRET, PkceMode, REFRESH_TOKEN_LEN, REFRESH_TOKEN_LIFETIME, RateLimit,
    SHORT_ACCESS_TOKEN_LEN, SHORT_REFRESH_TOKEN_LEN,
};
pub use fixtures::{FixtureEmail, FixtureUser, Presence};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::App;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use url::Url;

/// Serves fakebucket on `listener` until `shutdown` completes, then finishes
/// the requests in flight (cutting injected delays short) and returns.
///
/// Fails at once if the configuration is invalid ([`Config::validate`]).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (app, stop) = prepare(config, listener.local_addr()?)?;
    tracing::info!(target: "fakebucket", base = %app.base, admin = app.config.admin, pkce = %app.config.pkce, "fakebucket listening");
    serve(listener, app, stop, shutdown).await
}

/// Starts fakebucket on `127.0.0.1` and a free port, in the background, with
/// the admin API turned on whatever `config.admin` says (this is the entry
/// point for tests; use [`run`] to serve without it).
pub async fn spawn(mut config: Config) -> io::Result<Handle> {
    config.admin = true;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (app, stop) = prepare(config, addr)?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app.clone(), stop, async move {
        let _ = rx.await;
    }));
    Ok(Handle { app, addr, shutdown: Some(tx), task: Some(task) })
}

fn prepare(config: Config, addr: SocketAddr) -> io::Result<(Arc<App>, watch::Sender<bool>)> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let base = match &config.public_url {
        Some(url) => {
            let mut url = url.clone();
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            url
        }
        None => {
            let ip = if addr.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                addr.ip()
            };
            Url::parse(&format!("http://{}/", SocketAddr::new(ip, addr.port())))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        }
    };
    let (stop, stopped) = watch::channel(false);
    Ok((Arc::new(App::new(config, base, stopped)), stop))
}

async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
}

/// All routes, wrapped in the request log.
fn router(app: Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(pages::index))
        .route(
            "/site/oauth2/authorize",
            get(oauth::authorize).post(oauth::decide).fallback(oauth::wrong_method),
        )
        .route(
            "/site/oauth2/access_token",
            post(token::access_token).options(token::options).fallback(token::wrong_method),
        )
        .route("/avatars/{account_id}", get(pages::avatar))
        .route("/avatars/{account_id}/{size}", get(pages::avatar))
        .route("/{uuid}/", get(pages::profile))
        .nest("/2.0", api::routes(app.clone()))
        .fallback(pages::not_found);
    if app.config.admin {
        router = router.nest("/_fakebucket", admin::routes());
    }
    router.layer(middleware::from_fn(log)).with_state(app)
}

/// One log line per request: method, path (never the query, which carries
/// codes and state), status and time taken.
async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        target: "fakebucket",
        %method,
        %path,
        status = response.status().as_u16(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

/// A running fakebucket started by [`spawn`]. Dropping it stops the server.
#[derive(Debug)]
pub struct Handle {
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Handle {
    /// The base URL, with a trailing slash: `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> Url {
        self.app.base.clone()
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base}site/oauth2/authorize`.
    pub fn authorize_url(&self) -> Url {
        self.join("site/oauth2/authorize")
    }

    /// `{base}site/oauth2/access_token`.
    pub fn token_url(&self) -> Url {
        self.join("site/oauth2/access_token")
    }

    /// `{base}2.0/`, the API base (with a trailing slash, so `join("user")` works).
    pub fn api_base(&self) -> Url {
        self.join("2.0/")
    }

    /// `{base}_fakebucket/`, the admin API.
    pub fn admin_url(&self) -> Url {
        self.join("_fakebucket/")
    }

    fn join(&self, path: &str) -> Url {
        self.app.base.join(path).unwrap_or_else(|_| self.app.base.clone())
    }

    /// The configuration being served (with `admin` on).
    pub fn config(&self) -> &Config {
        &self.app.config
    }

    /// Moves fakebucket's clock forward (`POST /_fakebucket/clock/advance`).
    ///
    /// # Panics
    /// When the clock would pass [`Clock::MAX_OFFSET`] (a hundred years): a
    /// test that asks for that has a bug.
    pub fn advance_clock(&self, by: Duration) {
        if let Err(too_far) = self.app.config.clock.advance(by) {
            panic!("fakebucket's clock: {too_far}");
        }
    }

    /// Queues a fault (`POST /_fakebucket/faults`).
    pub fn inject_fault(&self, fault: Fault) -> Result<(), InvalidFault> {
        fault.validate()?;
        self.app.lock().add_fault(fault);
        Ok(())
    }

    /// Drops every queued fault (`DELETE /_fakebucket/faults`).
    pub fn clear_faults(&self) {
        self.app.lock().clear_faults();
    }

    /// The counters so far (`GET /_fakebucket/counters`).
    pub fn counters(&self) -> Counters {
        self.app.lock().counters.clone()
    }

    /// Forgets all codes, tokens, faults and counters and puts the clock
    /// back (`POST /_fakebucket/reset`).
    pub fn reset(&self) {
        self.app.reset();
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
