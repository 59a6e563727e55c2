//! The native shell's HTTP surface: every request to the public listener
//! goes to the core ([`dance_relay_core::Relay`]), which routes it and runs
//! the gates; this module reads the body within its deadline, holds a
//! concurrency slot while the token endpoint works, and writes the access
//! log. `GET /metrics` has a router of its own, for a listener of its own,
//! so that whatever reaches the token endpoint cannot read the counters.

use crate::Clock;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use dance_relay_core::{AfterBody, Answer, Config, Outcome, Step, Verified};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Body as HttpBody;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Everything a request handler needs, shared by all requests.
#[derive(Debug)]
pub(crate) struct Relay {
    core: dance_relay_core::Relay,
    upstream: Upstream,
    slots: Semaphore,
    body_timeout: Duration,
    slot_timeout: Duration,
    /// The wall clock the core judges proofs, sealed tokens and rates by.
    clock: Clock,
    pub(crate) metrics: Metrics,
}

impl Relay {
    pub(crate) fn new(config: &Config, clock: Clock) -> Result<Self, reqwest::Error> {
        let limits = &config.limits;
        Ok(Self {
            core: dance_relay_core::Relay::new(config),
            upstream: Upstream::new(
                &config.token_url,
                limits.upstream_timeout,
                limits.max_concurrency,
            )?,
            slots: Semaphore::new(limits.max_concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            body_timeout: limits.body_timeout,
            slot_timeout: limits.slot_timeout,
            clock,
            metrics: Metrics::default(),
        })
    }
}

/// The public router over a shared [`Relay`], for [`crate::app`] and its
/// `oneshot` tests: every request goes to [`Relay::serve`] (`/metrics` too,
/// which the core does not know). The listeners of [`crate::run`] call
/// [`Relay::serve`] directly, without a router in between.
pub(crate) fn router(relay: Arc<Relay>) -> Router {
    Router::new().fallback(routed).with_state(relay)
}

/// The metrics listener's router: `GET /metrics` of the same [`Relay`], and
/// nothing else.
pub(crate) fn metrics_router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(relay.clone(), access_log))
        .with_state(relay)
}

/// [`Relay::serve`] behind the router, with the client's address when the
/// request carries one.
async fn routed(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    relay.serve(request, peer).await.response.map(Body::new)
}

/// What [`Relay::serve`] answered.
pub(crate) struct Served {
    /// The answer to send.
    pub(crate) response: axum::http::Response<Full<Bytes>>,
    /// The request ended cleanly: its body was read to the end, so the
    /// connection is ready for the next request once the answer is out.
    pub(crate) body_read: bool,
}

impl Relay {
    /// Serves one request of the public listener: the core's three steps
    /// with the IO between, then the access log line and the counters.
    pub(crate) async fn serve<B>(
        &self,
        request: axum::http::Request<B>,
        peer: Option<IpAddr>,
    ) -> Served
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let (answer, body_read) = self.handle(&parts, body, peer).await;
        let outcome = answer.extensions().get::<Outcome>().copied();
        log_request(self, &parts.method, parts.uri.path(), answer.status(), outcome, started);
        Served { response: answer.map(|body| Full::new(Bytes::from(body))), body_read }
    }

    /// The core's three steps with the IO between them. Also tells whether
    /// the request's body was read to its end (or there was none).
    async fn handle<B>(&self, parts: &Parts, body: B, peer: Option<IpAddr>) -> (Answer, bool)
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let core = &self.core;
        let now = self.clock.now();
        let read = match core.request(&parts.method, parts.uri.path(), &parts.headers, peer, now) {
            Step::Answer(answer) => return (answer, body.is_end_stream()),
            Step::ReadBody(read) => read,
        };
        let bytes = self.read_body(body).await;
        let body = match &bytes {
            Ok(bytes) => dance_relay_core::Body::Read(bytes),
            Err(failure) => *failure,
        };
        let body_read = bytes.is_ok();
        let forward = match core.read(read, body) {
            AfterBody::Answer(answer) => return (answer, body_read),
            AfterBody::Forward(forward) => forward,
            AfterBody::Verify(verify) => {
                // ring, in the core: tens of microseconds, no blocking task needed.
                let valid = verify.proof().verify_here();
                match core.verified(verify, valid) {
                    Verified::Forward(forward) => forward,
                    Verified::Answer(answer) => return (answer, body_read),
                }
            }
        };
        let slot = match tokio::time::timeout(self.slot_timeout, self.slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) | Err(_) => return (core.busy(forward), body_read),
        };
        let answer = self.upstream.send(&forward, &self.metrics).await;
        drop(slot);
        (core.answered(forward, answer), body_read)
    }

    /// Reads the whole body within the size limit and the body deadline.
    async fn read_body<B>(&self, body: B) -> Result<Bytes, dance_relay_core::Body<'static>>
    where
        B: HttpBody<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let collect = Limited::new(body, self.core.body_limit()).collect();
        match tokio::time::timeout(self.body_timeout, collect).await {
            Err(_) => Err(dance_relay_core::Body::TimedOut),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) if error.is::<LengthLimitError>() => {
                Err(dance_relay_core::Body::TooLarge)
            }
            Ok(Err(_)) => Err(dance_relay_core::Body::Unreadable),
        }
    }
}

/// `GET /metrics`.
async fn metrics(State(relay): State<Arc<Relay>>) -> Response {
    let mut response = relay.metrics.render().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The metrics listener's access log (see [`log_request`]).
async fn access_log(State(relay): State<Arc<Relay>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let response = next.run(request).await;
    let outcome = response.extensions().get::<Outcome>().copied();
    log_request(&relay, &method, uri.path(), response.status(), outcome, started);
    response
}

/// Logs one line per request and counts its outcome. The line has the
/// method, the path (never the query), the status, the outcome and the
/// latency: nothing from the body or the headers.
fn log_request(
    relay: &Relay,
    method: &Method,
    path: &str,
    status: StatusCode,
    outcome: Option<Outcome>,
    started: Instant,
) {
    // At most 64 characters of the path.
    let path = path.char_indices().nth(64).map_or(path, |(end, _)| &path[..end]);
    let status = status.as_u16();
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match outcome {
        Some(outcome) => {
            relay.metrics.count(outcome);
            tracing::info!(
                target: "dance_relay::access",
                %method, path, status, outcome = outcome.label(), latency_us, "request"
            );
        }
        None if method == Method::GET || method == Method::HEAD => {
            tracing::debug!(target: "dance_relay::access", %method, path, status, latency_us, "request");
        }
        None => {
            tracing::info!(target: "dance_relay::access", %method, path, status, latency_us, "request");
        }
    }
}
