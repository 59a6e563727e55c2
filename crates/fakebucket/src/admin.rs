//! The test-control API, served under `/_fakebucket/` when
//! [`Config::admin`](crate::Config::admin) is on.
//!
//! | request | effect |
//! |---|---|
//! | `POST /_fakebucket/clock/advance` `{"seconds": 7201}` | moves fakebucket's clock forward, a hundred years at most in all (more is a 400); answers `{"offset_seconds": N}` |
//! | `GET /_fakebucket/clock` | `{"offset_seconds": N}` |
//! | `POST /_fakebucket/faults` `{"target": "token"\|"api", "count": 1, "status": 503, "delay_ms": 0, "body": "json"\|"html"}` | the next `count` calls to the token endpoint or to `/2.0/*` wait `delay_ms`, then (if `status` is set) answer with it; answers 201 with the fault |
//! | `GET /_fakebucket/faults` | the faults still queued |
//! | `DELETE /_fakebucket/faults` | drops every queued fault |
//! | `GET /_fakebucket/counters` | [`Counters`] as JSON |
//! | `POST /_fakebucket/reset` | forgets every code, token, consent page, rate-limit window, fault and counter, and puts the clock back to real time |
//!
//! The same operations are methods on [`Handle`](crate::Handle) for tests
//! that run fakebucket in-process. Bad input gets a 400 with
//! `{"error": "..."}`.

// Errors in this module are finished HTTP answers on a cold path; boxing
// them would only add noise.
#![allow(clippy::result_large_err)]

use crate::store::App;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest delay a fault may ask for (ten minutes).
pub const MAX_FAULT_DELAY_MS: u64 = 600_000;

/// Which endpoint a [`Fault`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultTarget {
    /// `POST /site/oauth2/access_token`.
    Token,
    /// Everything under `/2.0/`.
    Api,
}

/// The body a failing [`Fault`] answers with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultBody {
    /// The endpoint's usual JSON error shape.
    #[default]
    Json,
    /// An HTML error page, as a proxy or load balancer in front of Bitbucket
    /// sends, so clients can be tested on a non-JSON answer.
    Html,
}

/// An injected failure: the next `count` calls to `target` wait `delay_ms`
/// and then, if `status` is set, answer with that status instead of being
/// handled. Faults queue up in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The endpoint to disturb.
    pub target: FaultTarget,
    /// How many calls this fault affects (at least one).
    #[serde(default = "one")]
    pub count: u32,
    /// The status to answer with (400 to 599), or `None` to only delay.
    #[serde(default)]
    pub status: Option<u16>,
    /// How long to wait before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// The kind of body a failing answer carries.
    #[serde(default)]
    pub body: FaultBody,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// One call to `target` fails with `status` and a JSON body.
    pub fn status(target: FaultTarget, status: u16) -> Self {
        Self { target, count: 1, status: Some(status), delay_ms: 0, body: FaultBody::Json }
    }

    /// One call to `target` is answered normally, but only after `delay`.
    pub fn delay(target: FaultTarget, delay: Duration) -> Self {
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Self { target, count: 1, status: None, delay_ms, body: FaultBody::Json }
    }

    /// The same fault for the next `count` calls.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// The same fault with an HTML body.
    pub fn html(mut self) -> Self {
        self.body = FaultBody::Html;
        self
    }

    /// Checks the limits: `count` at least one, `status` 400 to 599,
    /// `delay_ms` at most [`MAX_FAULT_DELAY_MS`], and a status or a delay.
    pub fn validate(&self) -> Result<(), InvalidFault> {
        if self.count == 0 {
            return Err(InvalidFault("count must be at least 1".into()));
        }
        if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            return Err(InvalidFault(format!("status must be between 400 and 599, not {status}")));
        }
        if self.delay_ms > MAX_FAULT_DELAY_MS {
            return Err(InvalidFault(format!("delay_ms must be at most {MAX_FAULT_DELAY_MS}")));
        }
        if self.status.is_none() && self.delay_ms == 0 {
            return Err(InvalidFault("a fault needs a status, a delay_ms, or both".into()));
        }
        Ok(())
    }
}

/// A [`Fault`] outside the limits [`Fault::validate`] checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault: {0}")]
pub struct InvalidFault(pub String);

/// What fakebucket has been asked so far (since start or the last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Token requests by grant, then by outcome. The grant is the request's
    /// `grant_type` when it is `authorization_code`, `refresh_token` or
    /// `client_credentials`, `none` when absent and `other` otherwise; the
    /// outcome is `ok`, the OAuth error code sent (`invalid_grant`, ...), or
    /// `fault` for an injected failure.
    pub token_requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// All token requests.
    pub token_requests_total: u64,
    /// API requests (`/2.0/*`, preflights excluded) by response status.
    pub api_requests: BTreeMap<String, u64>,
    /// All API requests, preflights excluded.
    pub api_requests_total: u64,
    /// CORS preflight requests to `/2.0/*`.
    pub api_preflights: u64,
    /// The authorize endpoint: `page` (consent pages shown), `granted`,
    /// `denied`, and `refused` (requests answered with an error).
    pub authorize: BTreeMap<String, u64>,
    /// Injected faults that have been served (delays included).
    pub faults_served: u64,
}

impl Counters {
    /// Token requests with this grant and outcome.
    pub fn token(&self, grant: &str, outcome: &str) -> u64 {
        self.token_requests.get(grant).and_then(|m| m.get(outcome)).copied().unwrap_or(0)
    }

    /// API requests answered with this status.
    pub fn api(&self, status: u16) -> u64 {
        self.api_requests.get(&status.to_string()).copied().unwrap_or(0)
    }

    /// Authorize-endpoint events of this kind.
    pub fn authorize(&self, event: &str) -> u64 {
        self.authorize.get(event).copied().unwrap_or(0)
    }

    pub(crate) fn count_token(&mut self, grant: &str, outcome: &str) {
        *self
            .token_requests
            .entry(grant.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
        self.token_requests_total += 1;
    }

    pub(crate) fn count_api(&mut self, status: StatusCode) {
        *self.api_requests.entry(status.as_u16().to_string()).or_default() += 1;
        self.api_requests_total += 1;
    }

    pub(crate) fn count_authorize(&mut self, event: &str) {
        *self.authorize.entry(event.to_owned()).or_default() += 1;
    }
}

/// The admin routes, to be nested under `/_fakebucket`.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/counters", get(counters))
        .route("/reset", post(reset))
        .fallback(|| async { bad(StatusCode::NOT_FOUND, "no such admin endpoint") })
}

fn bad(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| bad(StatusCode::BAD_REQUEST, &format!("bad JSON body: {e}")))
}

async fn clock(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({ "offset_seconds": app.config.clock.offset().as_secs() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: u64,
}

async fn advance(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let advance: Advance = match parse(&body) {
        Ok(a) => a,
        Err(response) => return response,
    };
    match app.config.clock.advance(Duration::from_secs(advance.seconds)) {
        Ok(_) => clock(State(app)).await,
        Err(too_far) => bad(StatusCode::BAD_REQUEST, &format!("seconds: {too_far}")),
    }
}

async fn add_fault(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(response) => return response,
    };
    if let Err(InvalidFault(message)) = fault.validate() {
        return bad(StatusCode::BAD_REQUEST, &message);
    }
    app.lock().add_fault(fault.clone());
    (StatusCode::CREATED, axum::Json(fault)).into_response()
}

async fn list_faults(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.lock().faults()).into_response()
}

async fn clear_faults(State(app): State<Arc<App>>) -> Response {
    app.lock().clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn counters(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.lock().counters.clone()).into_response()
}

async fn reset(State(app): State<Arc<App>>) -> Response {
    app.reset();
    StatusCode::NO_CONTENT.into_response()
}
