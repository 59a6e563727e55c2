//! The HTTP surface: `POST`/`OPTIONS /token`, `GET /healthz`, `GET /metrics`,
//! and the access log.
//!
//! A token request goes through these gates in order, each cheap before the
//! next: header size, origin (403, nothing else happens), rate limit (429),
//! content type (415), body size and deadline (413, 408), form syntax and
//! grant (400), redirect URI allowlist (400), a concurrency slot (503), and
//! only then the token endpoint.

use crate::config::Config;
use crate::cors::{self, OriginPolicy};
use crate::error::{Outcome, RelayError, json_response};
use crate::limits::{self, RateLimiter};
use crate::metrics::Metrics;
use crate::upstream::Upstream;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dance_protocol::token::{TokenRequest, TokenResponse};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Everything a request handler needs, shared by all requests.
#[derive(Debug)]
pub(crate) struct Relay {
    origins: OriginPolicy,
    redirect_uris: HashSet<String>,
    upstream: Upstream,
    limiter: Option<RateLimiter>,
    slots: Semaphore,
    trust_proxy: bool,
    max_body_bytes: usize,
    max_header_bytes: usize,
    body_timeout: Duration,
    slot_timeout: Duration,
    pub(crate) metrics: Metrics,
}

impl Relay {
    pub(crate) fn new(config: Config) -> Result<Self, reqwest::Error> {
        let limits = config.limits;
        let upstream = Upstream::new(
            config.token_url,
            config.client_id,
            config.client_secret,
            limits.upstream_timeout,
            limits.max_concurrency,
        )?;
        Ok(Self {
            origins: OriginPolicy::new(&config.allowed_origins, config.allow_missing_origin),
            redirect_uris: config.allowed_redirect_uris.into_iter().collect(),
            upstream,
            limiter: (limits.rate_limit_per_minute > 0)
                .then(|| RateLimiter::new(limits.rate_limit_per_minute)),
            slots: Semaphore::new(limits.max_concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            trust_proxy: config.trust_proxy,
            max_body_bytes: limits.max_body_bytes,
            max_header_bytes: limits.max_header_bytes,
            body_timeout: limits.body_timeout,
            slot_timeout: limits.slot_timeout,
            metrics: Metrics::default(),
        })
    }
}

/// The router over a shared [`Relay`].
pub(crate) fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route(
            "/token",
            post(token).options(preflight).fallback(|| async { RelayError::MethodNotAllowed }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { RelayError::NotFound })
        .layer(middleware::from_fn_with_state(relay.clone(), access_log))
        .with_state(relay)
}

/// `POST /token`.
async fn token(State(relay): State<Arc<Relay>>, request: Request) -> Response {
    let origin = match relay.origins.check(request.headers()) {
        Ok(origin) => origin,
        Err(refusal) => {
            let mut response = refusal.into_response();
            cors::decorate(&mut response, None);
            return response;
        }
    };
    let mut response = match exchange(&relay, request).await {
        Ok(tokens) => tokens_response(&tokens),
        Err(error) => error.into_response(),
    };
    cors::decorate(&mut response, origin.as_ref());
    response
}

/// The gates after the origin check, then the exchange itself.
async fn exchange(relay: &Relay, request: Request) -> Result<TokenResponse, RelayError> {
    if let Some(limiter) = &relay.limiter {
        let client = limits::client_ip(&request, relay.trust_proxy);
        limiter
            .check(client, Instant::now())
            .map_err(|retry_after| RelayError::RateLimited { retry_after })?;
    }
    if !is_form(request.headers()) {
        return Err(RelayError::UnsupportedMediaType);
    }
    let body = read_body(relay, request.into_body()).await?;
    let token_request = TokenRequest::parse_form(&body)?;
    if let TokenRequest::AuthorizationCode { redirect_uri, .. } = &token_request
        && !relay.redirect_uris.contains(redirect_uri)
    {
        return Err(RelayError::RedirectUriNotAllowed);
    }
    let _slot = tokio::time::timeout(relay.slot_timeout, relay.slots.acquire())
        .await
        .map_err(|_| RelayError::Busy)?
        .map_err(|_| RelayError::Busy)?;
    Ok(relay.upstream.exchange(&token_request, &relay.metrics).await?)
}

/// Whether the `Content-Type` is a UTF-8 form: the media type in any case,
/// optionally with a `charset` of UTF-8 and other parameters.
fn is_form(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut parts = text.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        Some(_) => true,
        None => param.trim().is_empty(),
    })
}

/// Reads the whole body within the size limit and the body deadline.
async fn read_body(relay: &Relay, body: Body) -> Result<bytes::Bytes, RelayError> {
    let limit = relay.max_body_bytes;
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(relay.body_timeout, collect).await {
        Err(_) => Err(RelayError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(RelayError::BodyTooLarge { limit }),
        Ok(Err(_)) => Err(RelayError::BodyUnreadable),
    }
}

/// A 200 with the normalized token response.
fn tokens_response(tokens: &TokenResponse) -> Response {
    json_response(StatusCode::OK, tokens, Outcome::Ok)
}

/// `OPTIONS /token`.
async fn preflight(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    cors::preflight(&relay.origins, &headers)
}

/// `GET /healthz`.
async fn healthz() -> Response {
    let mut response = "ok\n".into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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

/// Checks the header size, then logs one line per request and counts its
/// outcome. The line has the method, the path (never the query), the status,
/// the outcome and the latency: nothing from the body or the headers.
async fn access_log(State(relay): State<Arc<Relay>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(64).collect();
    let response = if limits::header_bytes(request.headers()) > relay.max_header_bytes {
        let mut response =
            RelayError::HeadersTooLarge { limit: relay.max_header_bytes }.into_response();
        let origin = relay.origins.check(request.headers()).ok().flatten();
        cors::decorate(&mut response, origin.as_ref());
        response
    } else {
        next.run(request).await
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().expect("value"));
        headers
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded",
            "application/x-www-form-urlencoded;charset=UTF-8",
            "application/x-www-form-urlencoded; charset=\"utf-8\"",
            "application/x-www-form-urlencoded; foo=bar",
        ] {
            assert!(is_form(&form(ok)), "{ok}");
        }
        for bad in [
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=latin1",
            "application/x-www-form-urlencoded; junk",
            "application/x-www-form-urlencodedx",
            "",
        ] {
            assert!(!is_form(&form(bad)), "{bad}");
        }
        assert!(!is_form(&HeaderMap::new()));
        let mut twice = form("application/x-www-form-urlencoded");
        twice.append(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().expect("v"));
        assert!(!is_form(&twice));
    }
}
