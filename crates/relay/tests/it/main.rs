//! Integration tests of the relay: the relay on `127.0.0.1:0` in front of
//! fakebucket, also on loopback and in-process, or the router alone through
//! `oneshot` for refusals that must never reach upstream.
//!
//! One list of cases, two targets: every case written with
//! [`on_both_targets!`] runs once against the native relay (module
//! `native`) and once against the Cloudflare Worker (`dance-relay-worker`)
//! running in a local workerd on loopback (module `worker`). The Worker
//! cases are `#[ignore]`d because they need the built Worker and workerd;
//! `cargo xtask test` builds both and runs them with `--ignored worker::`.
//! Cases that only make sense for the native binary (its metrics, its
//! concurrency slots, its socket deadlines, its command line, its logs)
//! are plain tests.
//!
//! Modules:
//! - `binding`: sealed refresh tokens, bound to the browser's DPoP key.
//! - `exchange`: good exchanges, refresh with rotation, upstream OAuth errors.
//! - `refusals`: every request the relay must refuse, and proof nothing was forwarded.
//! - `upstream`: the token endpoint down, slow, failing or answering nonsense.
//! - `logs`: a full exchange's logs carry no secret, code, verifier or token.
//! - `props`: arbitrary bodies and headers get 4xx JSON, never a 5xx or a panic.
//! - `concurrency`: hundreds of simultaneous exchanges, all correct.
//! - `connections`: many requests on one kept-open connection, pipelined too.
//! - `metrics`: `GET /metrics` on its own listener and nowhere else.
//! - `binary`: `dance-relay check`, `--help`, and shutdown on SIGTERM.

mod binary;
mod binding;
mod concurrency;
mod connections;
mod exchange;
mod logs;
mod metrics;
mod props;
mod refusals;
mod upstream;

use axum::body::Body;
use axum::http::{Request, Response};
use dance_protocol::PkceVerifier;
use dance_relay::Config;
use dance_relay_worker::workerd::{Installation, Workerd};
use std::net::SocketAddr;
use tower::ServiceExt as _;

/// Which relay a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `dance-relay`, in-process on loopback (or its router without a socket).
    Native,
    /// `dance-relay-worker` in a local workerd on loopback.
    Worker,
}

/// Writes each case twice: `native::NAME` and `worker::NAME` (ignored unless
/// asked for), each given its [`Target`] as `target`.
macro_rules! on_both_targets {
    ($($(#[doc = $doc:literal])* async fn $name:ident($target:ident) $body:block)*) => {
        /// The cases against the native relay.
        mod native {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[tokio::test]
                async fn $name() {
                    let $target = crate::Target::Native;
                    $body
                }
            )*
        }

        /// The same cases against the Worker in workerd.
        mod worker {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[tokio::test]
                #[ignore = "needs the built Worker and workerd: `cargo xtask test` runs it"]
                async fn $name() {
                    let $target = crate::Target::Worker;
                    $body
                }
            )*
        }
    };
}
pub(crate) use on_both_targets;

/// The SPA's origin and redirect URI in every test: the demo's, which the
/// demo consumer's callback names.
pub(crate) use dance_testkit::{ORIGIN, REDIRECT_URI};

/// An HTTP client that never follows redirects.
pub(crate) use dance_testkit::http_client as client;

/// A relay configuration for the demo consumer on `fakebucket`, with rate
/// limiting off (tests that need it turn it on).
pub(crate) fn relay_config(fakebucket: &fakebucket::Handle) -> Config {
    let mut config = dance_testkit::relay_config(fakebucket, ORIGIN, REDIRECT_URI);
    config.limits.rate_limit_per_minute = 0;
    config
}

/// A relay served on loopback until the value is dropped: the kit's native
/// relay, or the Worker in workerd.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    /// The metrics listener's address (the native relay's, unless started
    /// without one).
    pub(crate) metrics_addr: Option<SocketAddr>,
    native: Option<dance_testkit::Relay>,
    workerd: Option<Workerd>,
}

impl Relay {
    /// The native relay, with its metrics listener on loopback too.
    pub(crate) async fn start(config: Config) -> Self {
        Self::start_with_metrics(config, true).await
    }

    /// The native relay, with or without a metrics listener.
    pub(crate) async fn start_with_metrics(config: Config, metrics: bool) -> Self {
        let native = match metrics {
            true => dance_testkit::Relay::start_with_metrics(config).await,
            false => dance_testkit::Relay::start(config).await,
        }
        .unwrap_or_else(|e| panic!("the relay did not start: {e:#}"));
        Self {
            addr: native.addr(),
            metrics_addr: native.metrics_addr(),
            native: Some(native),
            workerd: None,
        }
    }

    /// The relay of `target` with `config`.
    pub(crate) async fn start_on(target: Target, config: Config) -> Self {
        match target {
            Target::Native => Self::start(config).await,
            Target::Worker => {
                let installation = Installation::from_env().unwrap_or_else(|e| panic!("{e}"));
                let vars = config.to_vars();
                let workerd =
                    tokio::task::spawn_blocking(move || Workerd::start(&installation, &vars, None))
                        .await
                        .expect("the start task")
                        .unwrap_or_else(|e| panic!("workerd did not start: {e}"));
                Self {
                    addr: workerd.addr(),
                    metrics_addr: None,
                    native: None,
                    workerd: Some(workerd),
                }
            }
        }
    }

    /// Whether this is the native relay (which has `/metrics`, on its own
    /// listener).
    pub(crate) fn is_native(&self) -> bool {
        self.workerd.is_none()
    }

    /// `GET /metrics` on the metrics listener.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr.expect("a relay with a metrics listener"))
    }

    /// What workerd logged, for failure messages (empty for the native relay).
    pub(crate) fn log(&self) -> String {
        self.workerd.as_ref().map(Workerd::log).unwrap_or_default()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers shutdown and waits for `run` to return.
    pub(crate) async fn stop(mut self) {
        if let Some(native) = &mut self.native {
            native.stop().await.unwrap_or_else(|e| panic!("{e:#}"));
        }
    }
}

/// Gets a fresh authorization code from fakebucket the way a user would
/// (the kit's [`dance_testkit::mint_code`]), for the demo consumer,
/// [`REDIRECT_URI`] and the S256 challenge of `verifier`.
pub(crate) async fn mint_code(
    http: &reqwest::Client,
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
) -> String {
    let request = dance_testkit::demo_authorization(fakebucket, verifier, "test-state");
    dance_testkit::mint_code(http, &request).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The form body of a code exchange.
pub(crate) use dance_testkit::code_form;

/// The form body of a refresh.
pub(crate) fn refresh_form(refresh_token: &str) -> String {
    let refresh_token = dance_protocol::RefreshToken::new(refresh_token);
    dance_protocol::token::TokenRequest::RefreshToken { refresh_token }.to_form()
}

/// POSTs a form to the relay's `/token` as the SPA would.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    relay: &Relay,
    form: String,
) -> reqwest::Response {
    http.post(relay.url("/token"))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("the relay answers")
}

/// What a case sends its requests to: the native router with no socket, or
/// a relay on loopback (the Worker).
pub(crate) enum Subject {
    Router(axum::Router),
    Running(Box<Relay>),
}

impl Subject {
    /// The native relay's router, or the Worker on loopback.
    pub(crate) async fn new(target: Target, config: Config) -> Self {
        match target {
            Target::Native => Self::Router(dance_relay::app(config)),
            Target::Worker => Self::Running(Box::new(Relay::start_on(target, config).await)),
        }
    }

    /// Sends one request, returning status, headers and the body as JSON
    /// (`Null` if the body is not JSON).
    pub(crate) async fn send(&self, request: Request<Body>) -> (Response<()>, serde_json::Value) {
        match self {
            Self::Router(app) => oneshot(app, request).await,
            Self::Running(relay) => over_the_wire(relay, request).await,
        }
    }
}

/// Sends `request` to a running relay over HTTP/1.1, headers and body as
/// they are (repeated headers stay repeated).
async fn over_the_wire(relay: &Relay, request: Request<Body>) -> (Response<()>, serde_json::Value) {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.expect("a readable body");
    let url = relay.url(&parts.uri.to_string());
    let sent = client()
        .request(parts.method, url)
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the relay answers: {e}\n{}", relay.log()));
    let mut response = Response::builder().status(sent.status());
    for (name, value) in sent.headers() {
        response = response.header(name, value);
    }
    let bytes = sent.bytes().await.expect("a readable body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (response.body(()).expect("a response"), json)
}

/// Sends one request through the router with no socket, returning status,
/// headers and the body as JSON (`Null` if the body is not JSON).
pub(crate) async fn oneshot(
    app: &axum::Router,
    request: Request<Body>,
) -> (Response<()>, serde_json::Value) {
    let response = app.clone().oneshot(request).await.expect("the router is infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("a readable body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (Response::from_parts(parts, ()), json)
}

/// A `POST /token` from the allowed origin with a form content type.
pub(crate) fn form_request(body: impl Into<Body>) -> Request<Body> {
    Request::post("/token")
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.into())
        .expect("a valid request")
}

/// The fields a response varies by, from every `Vary` line (a list may be
/// one line, as the Workers runtime folds it, or several, as hyper sends it).
pub(crate) fn vary_of(headers: &axum::http::HeaderMap) -> Vec<String> {
    headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

/// The `error` field of a JSON error body.
pub(crate) fn error_of(json: &serde_json::Value) -> &str {
    json["error"].as_str().unwrap_or("<no error field>")
}

/// The `error_description` field of a JSON error body.
pub(crate) fn description_of(json: &serde_json::Value) -> &str {
    json["error_description"].as_str().unwrap_or("<no description>")
}
