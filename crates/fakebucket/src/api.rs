//! The REST API under `/2.0/`: `GET /2.0/user`, `GET /2.0/user/emails`
//! (paginated) and `GET /2.0/user/emails/{email}`, with Bitbucket's CORS,
//! authentication, scope checks, rate limit and error bodies.
//!
//! - Access tokens are read from `Authorization: Bearer ...` only. A token in
//!   the query string (`?access_token=`) is ignored, as Bitbucket ignores it
//!   since 2026-05, so such a request is simply unauthenticated.
//! - Errors are `{"type": "error", "error": {"message": ...}}`: an expired
//!   token gets "Access token expired."; an unknown one "Token is invalid,
//!   expired, or not supported for this endpoint."; a missing scope a 403
//!   whose `detail` is an object `{"required": [...], "granted": [...]}` (as
//!   Bitbucket really sends, although its schema says `detail` is a string);
//!   an unknown path 404 "Resource not found" with Bitbucket's detail text.
//! - CORS: every answer carries `Access-Control-Allow-Origin: *`. A
//!   preflight (`OPTIONS`) is answered 200 with the fixed header list
//!   Bitbucket documents, including its missing comma
//!   (`X-CsrftokenX-Requested-With`). The list is the same whatever the
//!   browser asks for; a browser that asks to send a header not in it (such
//!   as `User-Agent` or `X-Requested-With`) then refuses to make the request.
//! - Rate limit: at most [`RateLimit::requests`](crate::RateLimit) calls per
//!   user in any rolling window; beyond it, 429 with a `Retry-After`.

// Errors in this module are finished HTTP answers on a cold path; boxing
// them would only add noise.
#![allow(clippy::result_large_err)]

use crate::admin::{FaultBody, FaultTarget};
use crate::fixtures::{self, FixtureUser};
use crate::form;
use crate::store::{App, Grant, Lookup};
use axum::Router;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// `Access-Control-Allow-Headers` exactly as Bitbucket's API documentation
/// shows it, missing comma included.
pub const ALLOW_HEADERS: &str = "Accept, Authorization, Content-Type, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since, Origin, Range, X-CsrftokenX-Requested-With";
/// `Access-Control-Allow-Methods` as Bitbucket sends it.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// `Access-Control-Expose-Headers` as Bitbucket sends it.
pub const EXPOSE_HEADERS: &str =
    "Accept-Ranges, Content-Encoding, Content-Length, Content-Type, ETag, Last-Modified";

/// The sentence on injected HTML error pages.
pub(crate) const INJECTED: &str = "fakebucket injected this fault.";

/// Bitbucket's text for an unknown API path.
const NOT_FOUND_DETAIL: &str = "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/";

/// The routes to nest under `/2.0`.
pub(crate) fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/user", get(user).fallback(wrong_method))
        .route("/user/emails", get(emails).fallback(wrong_method))
        .route("/user/emails/{email}", get(email).fallback(wrong_method))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app, around))
}

/// A Bitbucket API error body.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "type": "error", "error": { "message": message } })))
        .into_response()
}

/// An HTML error page like the ones a proxy in front of an API sends;
/// `note` is a fixed sentence from fakebucket's own code.
pub(crate) fn html_error(status: StatusCode, note: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n<body><h1>{code} {reason}</h1>\n<p>{note}</p></body></html>\n",
        code = status.as_u16(),
        note = crate::html::escape(note),
    );
    let mut response = (status, page).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// Runs around every `/2.0` request: answers preflights, applies injected
/// faults, adds the CORS headers and counts the answer.
async fn around(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        app.lock().counters.api_preflights += 1;
        let mut response = StatusCode::OK.into_response();
        let headers = response.headers_mut();
        headers
            .insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        headers
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        return with_cors(response);
    }
    let mut response = None;
    if let Some(fault) = app.take_fault(FaultTarget::Api) {
        app.fault_delay(fault.delay_ms).await;
        if let Some(status) = fault.status {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response = Some(match fault.body {
                FaultBody::Json => error(
                    status,
                    &format!("fakebucket injected a fault (HTTP {}).", status.as_u16()),
                ),
                FaultBody::Html => html_error(status, INJECTED),
            });
        }
    }
    let response = match response {
        Some(r) => r,
        None => next.run(request).await,
    };
    app.lock().counters.count_api(response.status());
    with_cors(response)
}

fn with_cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    response
}

/// The checks every endpoint makes: a valid Bearer token, the rate limit,
/// then the scope. Returns the token's user.
fn authorize<'a>(
    app: &'a App,
    headers: &HeaderMap,
    scope: &str,
) -> Result<&'a FixtureUser, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Authentication required: send the access token as Authorization: Bearer <token>.",
        ));
    };
    let now = app.now();
    let mut store = app.lock();
    let grant: Grant = match store.lookup_access(token, now) {
        Lookup::Valid(g) => g,
        Lookup::Expired => return Err(error(StatusCode::UNAUTHORIZED, "Access token expired.")),
        Lookup::Unknown => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "Token is invalid, expired, or not supported for this endpoint.",
            ));
        }
    };
    let limit = app.config.rate_limit;
    if let Err(wait) = store.rate_check(&grant.user, limit.requests, limit.window, now) {
        let mut response =
            error(StatusCode::TOO_MANY_REQUESTS, "Rate limit for this resource has been exceeded");
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&seconds) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Err(response);
    }
    drop(store);
    if !has_scope(&grant.scopes, scope) {
        let body = json!({
            "type": "error",
            "error": {
                "message": "Your credentials lack one or more required privilege scopes.",
                "detail": { "granted": grant.scopes, "required": [scope] },
            },
        });
        return Err((StatusCode::FORBIDDEN, axum::Json(body)).into_response());
    }
    app.config.user(&grant.user).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "Token is invalid, expired, or not supported for this endpoint.",
        )
    })
}

/// Whether `granted` covers `required`; a `:write` scope implies its read scope.
fn has_scope(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| g == required || g.strip_suffix(":write") == Some(required))
}

async fn user(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match authorize(&app, &headers, "account") {
        Ok(user) => axum::Json(fixtures::user_json(user, &app.base)).into_response(),
        Err(response) => response,
    }
}

async fn emails(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let user = match authorize(&app, &headers, "email") {
        Ok(user) => user,
        Err(response) => return response,
    };
    let fields = form::parse(query.unwrap_or_default().as_bytes());
    let number = |name: &str, default: usize| match form::get(&fields, name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid {name}: expected a whole number of at least 1."),
            )
        }),
    };
    let pagelen = match number("pagelen", 10) {
        Ok(n) => n.min(100),
        Err(response) => return response,
    };
    let page = match number("page", 1) {
        Ok(n) => n,
        Err(response) => return response,
    };
    let size = user.emails.len();
    let values: Vec<Value> = user
        .emails
        .iter()
        .skip((page - 1).saturating_mul(pagelen))
        .take(pagelen)
        .map(|e| fixtures::email_json(e, &app.base))
        .collect();
    let page_link = |n: usize| {
        let mut url = app.base.join("2.0/user/emails").unwrap_or_else(|_| app.base.clone());
        url.query_pairs_mut()
            .append_pair("page", &n.to_string())
            .append_pair("pagelen", &pagelen.to_string());
        url.to_string()
    };
    let mut body = json!({ "pagelen": pagelen, "values": values, "page": page, "size": size });
    if let Some(map) = body.as_object_mut() {
        if page.saturating_mul(pagelen) < size {
            map.insert("next".into(), page_link(page + 1).into());
        }
        if page > 1 {
            map.insert("previous".into(), page_link(page - 1).into());
        }
    }
    axum::Json(body).into_response()
}

async fn email(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(address): Path<String>,
) -> Response {
    let user = match authorize(&app, &headers, "email") {
        Ok(user) => user,
        Err(response) => return response,
    };
    match user.emails.iter().find(|e| e.email.eq_ignore_ascii_case(&address)) {
        Some(e) => axum::Json(fixtures::email_json(e, &app.base)).into_response(),
        None => error(StatusCode::NOT_FOUND, "Email not found"),
    }
}

/// Any path under `/2.0/` that fakebucket does not serve.
async fn not_found() -> Response {
    let body = json!({ "type": "error", "error": { "message": "Resource not found", "detail": NOT_FOUND_DETAIL } });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn wrong_method() -> Response {
    let mut response = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed: this resource is read-only here.",
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}
