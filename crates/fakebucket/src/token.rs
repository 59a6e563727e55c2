//! The token endpoint, `/site/oauth2/access_token`.
//!
//! Checks run in this order, each answering with Bitbucket's own words where
//! they are known and RFC 6749 5.2 where they are not:
//!
//! 1. an injected [fault](crate::admin::Fault), if one is queued;
//! 2. HTTP Basic client authentication, the only method accepted
//!    (`401 invalid_client` otherwise);
//! 3. the body: only a form body is read, so a JSON body has no
//!    `grant_type` and gets `400 invalid_grant` "Unsupported grant type: None";
//! 4. a consumer without a callback URL gets "No callback uri defined for the
//!    OAuth client." whatever it asks for;
//! 5. the grant itself: `authorization_code` (single use, expiry,
//!    `redirect_uri` and, in `require` mode, PKCE), `refresh_token`
//!    (rotating) or `client_credentials` (private consumers only).
//!
//! Refresh tokens rotate: each use returns a new refresh token, and the one
//! used keeps working only for [`Config::refresh_grace`](crate::Config::refresh_grace)
//! after its first use (by default not at all). A refresh token nobody uses
//! for [`Config::refresh_token_lifetime`](crate::Config::refresh_token_lifetime)
//! (three months) dies. A used, expired, unknown or missing refresh token gets
//! Bitbucket's `400 {"error_description": "Invalid refresh_token", "error":
//! "invalid_request"}`.
//!
//! Every answer carries `Cache-Control: no-store`. A success looks like
//! Bitbucket's: `access_token`, `scope` (or `scopes` in legacy mode),
//! `expires_in`, `refresh_token`, `token_type: "bearer"`, and `state` set to
//! the grant type, which Bitbucket really does send. Both tokens are over
//! 2,500 characters long, as Bitbucket's are now, unless
//! [`Config::short_tokens`](crate::Config::short_tokens) is set.

use crate::admin::{FaultBody, FaultTarget};
use crate::config::{Consumer, PkceMode};
use crate::form;
use crate::store::{App, Grant, Redeem};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use std::sync::Arc;

/// Bitbucket's words for an unknown, used or expired refresh token.
const INVALID_REFRESH: &str = "Invalid refresh_token";

/// A token-endpoint failure: status, RFC 6749 error code, description.
struct Failure {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into() }
    }

    fn bad(code: &'static str, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, description)
    }

    fn into_response(self) -> Response {
        let mut response = no_store(
            self.status,
            json!({ "error_description": self.description, "error": self.code }),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Bitbucket.org HTTP\""),
            );
        }
        response
    }
}

/// A JSON answer that no cache may keep (RFC 6749 5.1).
fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /site/oauth2/access_token`.
pub(crate) async fn access_token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    let fields = if is_form { form::parse(&body) } else { Default::default() };
    let grant_type = form::get(&fields, "grant_type");
    let grant_label = match grant_type {
        Some(g @ ("authorization_code" | "refresh_token" | "client_credentials")) => g,
        Some(_) => "other",
        None => "none",
    };

    if let Some(fault) = app.take_fault(FaultTarget::Token) {
        app.fault_delay(fault.delay_ms).await;
        if let Some(status) = fault.status {
            app.lock().counters.count_token(grant_label, "fault");
            return fault_response(status, fault.body);
        }
    }

    let outcome = handle(&app, &headers, &fields, grant_type);
    let mut store = app.lock();
    match outcome {
        Ok(response) => {
            store.counters.count_token(grant_label, "ok");
            response
        }
        Err(failure) => {
            store.counters.count_token(grant_label, failure.code);
            failure.into_response()
        }
    }
}

fn handle(
    app: &App,
    headers: &HeaderMap,
    fields: &std::collections::HashMap<String, String>,
    grant_type: Option<&str>,
) -> Result<Response, Failure> {
    let consumer = authenticate(app, headers)?;
    let grant_type = match grant_type {
        Some(g @ ("authorization_code" | "refresh_token" | "client_credentials")) => g,
        other => {
            // Bitbucket prints the value Python-style: a missing one is `None`.
            let shown: String = other.unwrap_or("None").chars().take(64).collect();
            return Err(Failure::bad("invalid_grant", format!("Unsupported grant type: {shown}")));
        }
    };
    if consumer.callback.is_none() {
        return Err(Failure::bad(
            "invalid_request",
            "No callback uri defined for the OAuth client.",
        ));
    }
    match grant_type {
        "authorization_code" => authorization_code(app, consumer, fields),
        "refresh_token" => refresh_token(app, consumer, fields),
        _ => client_credentials(app, consumer),
    }
}

/// HTTP Basic client authentication; nothing else is accepted.
fn authenticate<'a>(app: &'a App, headers: &HeaderMap) -> Result<&'a Consumer, Failure> {
    let fail = |why: &str| Failure::new(StatusCode::UNAUTHORIZED, "invalid_client", why);
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(fail(
            "Client authentication is required: HTTP Basic with the consumer key and secret.",
        ));
    };
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(fail("Client authentication must use the HTTP Basic scheme."));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    let Some((key, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Err(fail("The Basic credentials are not valid base64 of key:secret."));
    };
    match app.config.consumer(key) {
        Some(c) if c.secret == secret => Ok(c),
        _ => Err(fail("Invalid client credentials.")),
    }
}

fn authorization_code(
    app: &App,
    consumer: &Consumer,
    fields: &std::collections::HashMap<String, String>,
) -> Result<Response, Failure> {
    let Some(code) = form::get(fields, "code") else {
        return Err(Failure::bad("invalid_request", "The code parameter is required."));
    };
    let now = app.now();
    let mut store = app.lock();
    let found = match store.redeem_code(code, &consumer.key, now) {
        Redeem::Valid(c) => c,
        Redeem::Unknown => {
            return Err(Failure::bad("invalid_grant", "Invalid authorization code."));
        }
        Redeem::Replayed => {
            return Err(Failure::bad(
                "invalid_grant",
                "The authorization code has already been used; the tokens issued from it are revoked.",
            ));
        }
        Redeem::Expired => {
            return Err(Failure::bad("invalid_grant", "The authorization code has expired."));
        }
    };
    if let Some(sent) = &found.redirect_uri_sent
        && form::get(fields, "redirect_uri") != Some(sent.as_str())
    {
        return Err(Failure::bad(
            "invalid_grant",
            "The redirect_uri does not match the one used in the authorization request.",
        ));
    }
    if app.config.pkce == PkceMode::Require {
        let Some(verifier) = form::get(fields, "code_verifier") else {
            return Err(Failure::bad("invalid_request", "code_verifier is required."));
        };
        let matches = dance_protocol::PkceVerifier::parse(verifier)
            .is_ok_and(|v| Some(v.challenge().as_str()) == found.challenge.as_deref());
        if !matches {
            return Err(Failure::bad(
                "invalid_grant",
                "The code_verifier does not match the code_challenge.",
            ));
        }
    }
    store.consume_code(code);
    let grant = Grant {
        consumer: consumer.key.clone(),
        user: found.user.clone(),
        scopes: consumer.scopes.clone(),
        expires: now + app.config.token_lifetime,
        family: found.family,
    };
    let (access, refresh) = store.issue_tokens(grant, true, &app.config, now);
    Ok(success(app, consumer, access, refresh, "authorization_code"))
}

fn refresh_token(
    app: &App,
    consumer: &Consumer,
    fields: &std::collections::HashMap<String, String>,
) -> Result<Response, Failure> {
    let now = app.now();
    let mut store = app.lock();
    let grace = app.config.refresh_grace;
    let Some(old) = form::get(fields, "refresh_token")
        .and_then(|t| store.use_refresh(t, &consumer.key, grace, now))
    else {
        return Err(Failure::bad("invalid_request", INVALID_REFRESH));
    };
    let grant = Grant { expires: now + app.config.token_lifetime, ..old };
    let (access, refresh) = store.issue_tokens(grant, true, &app.config, now);
    Ok(success(app, consumer, access, refresh, "refresh_token"))
}

fn client_credentials(app: &App, consumer: &Consumer) -> Result<Response, Failure> {
    if !consumer.private {
        return Err(Failure::bad(
            "unauthorized_client",
            "The client credentials grant is only available to private consumers.",
        ));
    }
    // A private consumer's tokens act for its owner: the first user.
    let Some(owner) = app.config.users.first() else {
        return Err(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "No users are configured.",
        ));
    };
    let now = app.now();
    let mut store = app.lock();
    let family = store.new_family();
    let grant = Grant {
        consumer: consumer.key.clone(),
        user: owner.account_id.clone(),
        scopes: consumer.scopes.clone(),
        expires: now + app.config.token_lifetime,
        family,
    };
    let (access, _) = store.issue_tokens(grant, false, &app.config, now);
    Ok(success(app, consumer, access, None, "client_credentials"))
}

fn success(
    app: &App,
    consumer: &Consumer,
    access: String,
    refresh: Option<String>,
    grant: &str,
) -> Response {
    let scope_field = if app.config.legacy_scopes_field { "scopes" } else { "scope" };
    let mut body = json!({
        "access_token": access,
        scope_field: consumer.scope_string(),
        "expires_in": app.config.token_lifetime.as_secs(),
        "token_type": "bearer",
        "state": grant,
    });
    if let (Some(refresh), Some(map)) = (refresh, body.as_object_mut()) {
        map.insert("refresh_token".into(), refresh.into());
    }
    no_store(StatusCode::OK, body)
}

/// An injected failure's answer.
fn fault_response(status: u16, body: FaultBody) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        FaultBody::Json => {
            let code = if status.is_server_error() { "server_error" } else { "invalid_request" };
            let description = format!("fakebucket injected a fault (HTTP {}).", status.as_u16());
            no_store(status, json!({ "error_description": description, "error": code }))
        }
        FaultBody::Html => crate::api::html_error(status, crate::api::INJECTED),
    }
}

/// `OPTIONS /site/oauth2/access_token`: Bitbucket answers a CORS preflight
/// here with a bare 500 and no CORS headers
/// (https://github.com/leonhartX/gas-github/issues/144), which is why a
/// browser can never call this endpoint and the relay exists.
pub(crate) async fn options() -> Response {
    crate::api::html_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The token endpoint does not answer CORS preflight requests (nor does Bitbucket's).",
    )
}

/// Any method other than POST and OPTIONS.
pub(crate) async fn wrong_method() -> Response {
    let mut response = Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "The token endpoint only accepts POST.",
    )
    .into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}
