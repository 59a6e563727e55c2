//! The native shell's HTTP surface: every request goes to the core
//! ([`dance_relay_core::Relay`]), which routes it and runs the gates; this
//! module reads the body within its deadline, holds a concurrency slot while
//! the token endpoint works, serves `GET /metrics`, and writes the access log.

use crate::Clock;
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dance_relay_core::{AfterBody, Answer, Config, Outcome, Step, Verified};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use std::net::SocketAddr;
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

/// The router over a shared [`Relay`]: `/metrics` here, everything else in
/// the core.
pub(crate) fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(handle)
        .layer(middleware::from_fn_with_state(relay.clone(), access_log))
        .with_state(relay)
}

/// Every request but `/metrics`: the core's three steps with the IO between.
async fn handle(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let core = &relay.core;
    let now = relay.clock.now();
    let read = match core.request(&parts.method, parts.uri.path(), &parts.headers, peer, now) {
        Step::Answer(answer) => return into_response(answer),
        Step::ReadBody(read) => read,
    };
    let bytes = read_body(&relay, body).await;
    let body = match &bytes {
        Ok(bytes) => dance_relay_core::Body::Read(bytes),
        Err(failure) => *failure,
    };
    let forward = match core.read(read, body) {
        AfterBody::Answer(answer) => return into_response(answer),
        AfterBody::Forward(forward) => forward,
        AfterBody::Verify(verify) => {
            // ring, in the core: tens of microseconds, no blocking task needed.
            let valid = verify.proof().verify_here();
            match core.verified(verify, valid) {
                Verified::Forward(forward) => forward,
                Verified::Answer(answer) => return into_response(answer),
            }
        }
    };
    let slot = match tokio::time::timeout(relay.slot_timeout, relay.slots.acquire()).await {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) | Err(_) => return into_response(core.busy(forward)),
    };
    let answer = relay.upstream.send(&forward, &relay.metrics).await;
    drop(slot);
    into_response(core.answered(forward, answer))
}

/// Reads the whole body within the size limit and the body deadline.
async fn read_body(
    relay: &Relay,
    body: Body,
) -> Result<bytes::Bytes, dance_relay_core::Body<'static>> {
    let collect = Limited::new(body, relay.core.body_limit()).collect();
    match tokio::time::timeout(relay.body_timeout, collect).await {
        Err(_) => Err(dance_relay_core::Body::TimedOut),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(dance_relay_core::Body::TooLarge),
        Ok(Err(_)) => Err(dance_relay_core::Body::Unreadable),
    }
}

/// The core's answer as an axum response, its outcome kept for the log.
fn into_response(answer: Answer) -> Response {
    answer.map(Body::from)
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

/// Logs one line per request and counts its outcome. The line has the
/// method, the path (never the query), the status, the outcome and the
/// latency: nothing from the body or the headers.
async fn access_log(State(relay): State<Arc<Relay>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(64).collect();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    match response.extensions().get::<Outcome>().copied() {
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
    response
}
