//! The origin policy: which browser pages may call the relay, enforced by the
//! server itself and advertised with CORS headers.
//!
//! CORS alone only stops a browser from *reading* an answer; the request would
//! still be forwarded. So the relay checks `Origin` before doing anything and
//! refuses other origins with a 403 that carries no CORS headers. Answers to an
//! allowed origin carry `Access-Control-Allow-Origin` with that exact origin
//! (never `*`, never credentials) and expose `Retry-After`. Every `/token`
//! answer varies by `Origin`, so caches never mix them up.

use crate::Answer;
use crate::error::{Outcome, RelayError};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::collections::HashSet;

/// How long browsers may cache a preflight answer, in seconds.
pub(crate) const PREFLIGHT_MAX_AGE: u32 = 600;

/// The allowed origins and what to do without an `Origin` header.
#[derive(Debug)]
pub(crate) struct OriginPolicy {
    allowed: HashSet<String>,
    allow_missing: bool,
}

impl OriginPolicy {
    pub(crate) fn new(allowed: &[String], allow_missing: bool) -> Self {
        Self { allowed: allowed.iter().cloned().collect(), allow_missing }
    }

    /// The request's origin if it is allowed, `None` if there is none and
    /// that is allowed, or the refusal.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<Option<HeaderValue>, RelayError> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = values.next() else {
            return if self.allow_missing { Ok(None) } else { Err(RelayError::OriginMissing) };
        };
        // A comma never appears in an origin: it means the header was sent
        // more than once and folded into one line on the way (as the
        // Workers runtime, like every Fetch implementation, does).
        if values.next().is_some() || origin.as_bytes().contains(&b',') {
            return Err(RelayError::OriginRepeated);
        }
        match origin.to_str() {
            Ok(text) if self.allowed.contains(text) => Ok(Some(origin.clone())),
            Ok(text) => Err(RelayError::OriginNotAllowed(printable(text))),
            Err(_) => Err(RelayError::OriginNotAllowed("(not ASCII)".to_owned())),
        }
    }
}

/// An origin fit to quote in an error message: short, without control
/// characters, in backticks.
fn printable(origin: &str) -> String {
    let short: String = origin.chars().take(100).filter(|c| !c.is_control()).collect();
    format!("`{short}`")
}

/// Adds the headers every `/token` answer carries, and the CORS headers when
/// the request came from an allowed origin.
pub(crate) fn decorate(response: &mut Answer, origin: Option<&HeaderValue>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers
            .insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
    }
}

/// The answer to `OPTIONS /token`.
///
/// An allowed origin gets the policy (POST, `Content-Type`, cached for
/// [`PREFLIGHT_MAX_AGE`]); the browser compares it with what it asked for. A
/// disallowed one gets the same 403 as its POST would. Without `Origin` (when
/// that is allowed) it is not a preflight: the answer just lists the methods.
pub(crate) fn preflight(policy: &OriginPolicy, headers: &HeaderMap) -> Answer {
    let origin = match policy.check(headers) {
        Ok(origin) => origin,
        Err(refusal) => {
            let mut response = refusal.into_answer();
            decorate(&mut response, None);
            return response;
        }
    };
    let mut response = Answer::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.extensions_mut().insert(Outcome::Preflight);
    let out = response.headers_mut();
    out.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.append(header::VARY, HeaderValue::from_static("origin"));
    out.append(header::VARY, HeaderValue::from_static("access-control-request-method"));
    out.append(header::VARY, HeaderValue::from_static("access-control-request-headers"));
    if let Some(origin) = origin {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
        // `DPoP`: clients that send the proof as RFC 9449 writes it.
        out.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, dpop"),
        );
        out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(PREFLIGHT_MAX_AGE));
    }
    response
}
