//! The only module that talks to the network.
//!
//! Three destinations, three kinds of request:
//! - the app's own `config.json` (a plain GET);
//! - the relay's token endpoint: a `POST` with an
//!   `application/x-www-form-urlencoded` body (a CORS "simple" request, so no
//!   preflight), for both the code exchange and refreshes, each carrying a
//!   fresh DPoP proof in the form field `dpop` ([`crate::dpop`]);
//! - Bitbucket's API, `GET /2.0/user` ([`fetch_user`]) and
//!   `GET /2.0/user/emails` with its pages ([`fetch_emails`]), with only
//!   `Authorization: Bearer ...`: any other custom header would fail
//!   Bitbucket's CORS preflight. Tokens never go in a URL. The callers
//!   pass the access token; the token keeper
//!   ([`crate::tokens::Tokens::call_with_fresh_token`]) runs a call again
//!   with a fresh one when Bitbucket says it expired.
//!
//! Every request has a deadline (an `AbortController` fired by a timer), sends
//! no cookies and no referrer, and bypasses the HTTP cache. Every failure is
//! mapped to a typed [`Problem`] by a pure function ([`relay_reply`],
//! [`api_reply`], [`config_reply`]) that native tests exercise with the
//! exact bodies the relay and Bitbucket send.

use crate::config::Config;
use crate::deployment::Deployment;
use crate::keys::KeyPair;
use crate::problem::{Permission, Problem};
use crate::weburl::WebUrl;
use dance_protocol::AccessToken;
use dance_protocol::bitbucket::{ApiError, Email, Paginated, User};
use dance_protocol::dpop::reason;
use dance_protocol::token::{ErrorCode, TokenError, TokenRequest, TokenResponse};
use serde::de::DeserializeOwned;

/// Seconds to wait for `config.json`.
pub const CONFIG_TIMEOUT_S: u32 = 15;
/// Seconds to wait for the relay (its own upstream deadline is 10 s).
pub const RELAY_TIMEOUT_S: u32 = 20;
/// Seconds to wait for Bitbucket's API.
pub const API_TIMEOUT_S: u32 = 20;

/// An HTTP answer, whatever its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
    /// `Retry-After` in seconds, when present and readable.
    pub retry_after: Option<u32>,
}

/// Why there is no answer at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request never got an answer: offline, refused connection, DNS, or
    /// a CORS refusal (which browsers report the same way).
    Network(String),
    /// No answer within the deadline, in seconds.
    Timeout(u32),
}

/// Which grant a relay call was for: the same error means different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The code exchange.
    Code,
    /// A refresh.
    Refresh,
}

// ---- pure mapping of answers -------------------------------------------------

/// Reads the relay's answer: tokens, or the problem in plain words.
/// See the error table in `crates/relay/README.md`. The relay's refusals of
/// a proof or a sealed token are told apart by `error` and the `reason`
/// member, never by the description.
pub fn relay_reply(
    reply: &Reply,
    grant: Grant,
    deployment: &Deployment,
) -> Result<TokenResponse, Problem> {
    if reply.status == 200 {
        let tokens: TokenResponse = crate::json::from_str(&reply.body)
            .map_err(|e| Problem::malformed("The sign-in relay", format!("token response: {e}")))?;
        if tokens.token_type != "bearer" {
            return Err(Problem::malformed(
                "The sign-in relay",
                format!("token_type is \"{}\", not \"bearer\"", tokens.token_type),
            ));
        }
        return Ok(tokens);
    }
    let error: Option<TokenError> = crate::json::from_str(&reply.body).ok();
    let code = error.as_ref().map(|e| e.error.clone());
    let why = error.as_ref().and_then(|e| e.reason.as_deref());
    let description = error.as_ref().and_then(|e| e.error_description.clone()).unwrap_or_default();
    let detail = match &error {
        Some(error) => format!("HTTP {}: {error}", reply.status),
        None => format!("HTTP {}", reply.status),
    };
    match (reply.status, code, grant) {
        (400 | 401, Some(ErrorCode::InvalidGrant), Grant::Refresh)
            if why == Some(reason::SESSION_ENDED) =>
        {
            Err(Problem::session_limit(&detail))
        }
        (400 | 401, Some(ErrorCode::InvalidGrant), Grant::Refresh)
            if why == Some(reason::NOT_SEALED) =>
        {
            Err(Problem::session_unbound(&detail))
        }
        (400 | 401, Some(ErrorCode::InvalidDpopProof), Grant::Refresh)
            if why == Some(reason::WRONG_KEY) =>
        {
            Err(Problem::session_unbound(&detail))
        }
        // A proof out of time says nothing against the session: fix the
        // clock and try again.
        (400 | 401, Some(ErrorCode::InvalidDpopProof), _) if why == Some(reason::CLOCK) => {
            Err(Problem::proof_rejected(&detail))
        }
        // Any other refused proof is the deployment's (a proxy that rewrites
        // the Host header, a relay at another address): the details name
        // the check, and `cargo xtask doctor` the fix.
        (400 | 401, Some(ErrorCode::InvalidDpopProof), _) => Err(Problem::relay_failed(&detail)),
        (400, Some(ErrorCode::InvalidRequest), Grant::Code)
            // The relay's allowlist (a typed reason), or Bitbucket's "No
            // callback uri defined for the OAuth client." (the consumer has
            // no Callback URL; Bitbucket gives no code but its wording).
            if why == Some(reason::REDIRECT_URI_NOT_ALLOWED)
                || description.contains("callback uri") =>
        {
            Err(Problem::relay_refused_redirect(deployment, &description))
        }
        (400 | 401, Some(ErrorCode::InvalidGrant), Grant::Code) => {
            Err(Problem::code_rejected(&detail))
        }
        // Bitbucket answers a dead refresh token with invalid_request.
        (400 | 401, Some(ErrorCode::InvalidGrant | ErrorCode::InvalidRequest), Grant::Refresh) => {
            Err(Problem::session_expired(&detail))
        }
        (_, Some(ErrorCode::InvalidClient), _) => Err(Problem::relay_client_rejected(&detail)),
        (403, _, _) => Err(Problem::relay_refused_origin(deployment, &detail)),
        (429 | 503, _, _) => Err(Problem::relay_busy(reply.retry_after, &detail)),
        (502, Some(ErrorCode::Other(code)), _) if code == "server_error" => {
            Err(Problem::upstream_broken(&detail))
        }
        (502 | 504, _, _) => Err(Problem::upstream_unavailable(&detail)),
        _ => Err(Problem::relay_failed(&detail)),
    }
}

/// Checks the status of an answer of Bitbucket's API: `Ok` for 200, else
/// the problem. `permission` names the consumer permission the call needs,
/// for a 403 (Bitbucket's `detail.required`, when present, wins).
pub fn api_status(reply: &Reply, permission: Permission) -> Result<(), Problem> {
    if reply.status == 200 {
        return Ok(());
    }
    let error = crate::json::from_str::<ApiError>(&reply.body).ok();
    let text = error.as_ref().map(|e| e.error.message.as_str()).unwrap_or_default();
    match reply.status {
        401 if error.as_ref().is_some_and(ApiError::is_token_expired) => {
            Err(Problem::token_expired())
        }
        401 => Err(Problem::api_unauthorized(text)),
        403 => {
            let required = error.as_ref().map(|e| e.error.required_scopes()).unwrap_or_default();
            let permission = if required.iter().any(|s| s == "email") {
                Permission::Email
            } else if required.iter().any(|s| s == "account") {
                Permission::Account
            } else {
                permission
            };
            Err(Problem::api_forbidden(permission, text))
        }
        429 => Err(Problem::api_rate_limited(reply.retry_after)),
        status @ 500..=599 => Err(Problem::api_server(status)),
        status => Err(Problem::api_failed(status, text)),
    }
}

/// Reads an answer of Bitbucket's API into `T`, or the problem: the
/// status ([`api_status`]), then the body.
pub fn api_reply<T: DeserializeOwned>(reply: &Reply, permission: Permission) -> Result<T, Problem> {
    api_status(reply, permission)?;
    crate::json::from_str(&reply.body).map_err(|e| Problem::malformed("Bitbucket", e.to_string()))
}

/// Reads the answer for `config.json`.
pub fn config_reply(reply: &Reply, config_url: &str) -> Result<Config, Problem> {
    match reply.status {
        200 => Config::parse(&reply.body).map_err(Problem::config_invalid),
        404 => Err(Problem::config_missing(config_url)),
        status => Err(Problem::config_unreachable(config_url, format!("HTTP {status}"))),
    }
}

/// The next page of a paginated answer, only if it stays under the API base
/// (the access token is never sent anywhere else).
pub fn next_page(api_base: &WebUrl, next: Option<&str>) -> Option<WebUrl> {
    let next = WebUrl::parse(next?)?;
    let same_origin = next.origin() == api_base.origin();
    (same_origin && next.path().starts_with(api_base.path())).then_some(next)
}

// ---- the requests ----------------------------------------------------------

/// Fetches and checks `config.json` at `url`. The first call takes over the
/// request `assets/screen.js` started while the wasm was loading, when it is
/// for the same URL ([`take_early_config`]); later calls (a retry) fetch anew.
pub async fn fetch_config(url: &WebUrl) -> Result<Config, Problem> {
    match send(Outgoing {
        method: gloo_net::http::Method::GET,
        url: url.as_str(),
        bearer: None,
        form: None,
        timeout_s: CONFIG_TIMEOUT_S,
        started: take_early_config(url.as_str()),
    })
    .await
    {
        Ok(reply) => config_reply(&reply, url.as_str()),
        Err(Failure::Network(detail)) => Err(Problem::config_unreachable(url.as_str(), detail)),
        Err(Failure::Timeout(s)) => {
            Err(Problem::config_unreachable(url.as_str(), format!("no answer within {s} s")))
        }
    }
}

/// Sends a token request to the relay, with a fresh DPoP proof signed by
/// the session's `keys`.
pub async fn token(
    relay_url: &WebUrl,
    request: &TokenRequest,
    keys: &KeyPair,
    deployment: &Deployment,
) -> Result<TokenResponse, Problem> {
    let grant = match request {
        TokenRequest::AuthorizationCode { .. } => Grant::Code,
        TokenRequest::RefreshToken { .. } => Grant::Refresh,
    };
    let proof = crate::dpop::proof(keys, relay_url).await?;
    let outgoing = Outgoing {
        method: gloo_net::http::Method::POST,
        url: relay_url.as_str(),
        bearer: None,
        form: Some(request.to_form_with_proof(&proof)),
        timeout_s: RELAY_TIMEOUT_S,
        started: None,
    };
    match send(outgoing).await {
        Ok(reply) => relay_reply(&reply, grant, deployment),
        Err(Failure::Network(detail)) => Err(Problem::relay_unreachable(deployment, detail)),
        Err(Failure::Timeout(s)) => Err(Problem::relay_slow(s)),
    }
}

/// The most pages of email addresses fetched.
const MAX_EMAIL_PAGES: usize = 10;

/// `GET {api_base}user` with `token`: the person's account.
pub async fn fetch_user(
    api_base: &WebUrl,
    token: AccessToken,
    deployment: &Deployment,
) -> Result<User, Problem> {
    let url = api_join(api_base, "user")?;
    api_reply(&get(&url, &token, deployment).await?, Permission::Account)
}

/// `GET {api_base}user/emails` with `token`, following `next` (under the
/// API base only, [`next_page`]) for up to [`MAX_EMAIL_PAGES`] pages: every
/// address of the person.
pub async fn fetch_emails(
    api_base: &WebUrl,
    token: AccessToken,
    deployment: &Deployment,
) -> Result<Vec<Email>, Problem> {
    let mut url = api_join(api_base, "user/emails")?;
    let mut all = Vec::new();
    for _ in 0..MAX_EMAIL_PAGES {
        let reply = get(&url, &token, deployment).await?;
        let page: Paginated<Email> = api_reply(&reply, Permission::Email)?;
        all.extend(page.values);
        match next_page(api_base, page.next.as_deref()) {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok(all)
}

/// `{api_base}{path}`.
fn api_join(api_base: &WebUrl, path: &str) -> Result<WebUrl, Problem> {
    api_base.join(path).ok_or_else(|| {
        Problem::malformed("config.json", format!("api_base can't be joined with {path}"))
    })
}

/// An authenticated `GET` of Bitbucket's API: its answer, whatever the
/// status (the caller reads it with [`api_reply`]), or the problem of no
/// answer. The token goes only in the `Authorization` header.
async fn get(url: &WebUrl, token: &AccessToken, deployment: &Deployment) -> Result<Reply, Problem> {
    let outgoing = Outgoing {
        method: gloo_net::http::Method::GET,
        url: url.as_str(),
        bearer: Some(token.secret()),
        form: None,
        timeout_s: API_TIMEOUT_S,
        started: None,
    };
    match send(outgoing).await {
        Ok(reply) => Ok(reply),
        Err(Failure::Network(detail)) => Err(Problem::api_unreachable(deployment, detail)),
        Err(Failure::Timeout(s)) => {
            Err(Problem::api_unreachable(deployment, format!("no answer within {s} s")))
        }
    }
}

/// A request about to be sent.
struct Outgoing<'a> {
    method: gloo_net::http::Method,
    url: &'a str,
    bearer: Option<&'a str>,
    form: Option<String>,
    timeout_s: u32,
    /// The same request, already under way: its answer is used instead of
    /// sending it again.
    started: Option<Started>,
}

/// A `fetch` that is already under way, and the controller that aborts it.
pub struct Started {
    reply: js_sys::Promise,
    abort: web_sys::AbortController,
}

/// The global under which `assets/screen.js` leaves the `config.json` request
/// it starts before the wasm is loaded: `{ url, reply, abort }`.
pub const EARLY_CONFIG_GLOBAL: &str = "danceEarlyConfig";

/// Takes (once: the global is deleted) the request for `config.json` that
/// `assets/screen.js` started, if it is for `url` (a request for another URL is
/// aborted). Anything else there, or nothing, gives `None`, and the caller
/// fetches as usual.
pub fn take_early_config(url: &str) -> Option<Started> {
    use wasm_bindgen::{JsCast as _, JsValue};

    let global = js_sys::global();
    let key = JsValue::from_str(EARLY_CONFIG_GLOBAL);
    let early = js_sys::Reflect::get(&global, &key).ok().filter(JsValue::is_object)?;
    let _ = js_sys::Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &key);
    let field = |name: &str| js_sys::Reflect::get(&early, &JsValue::from_str(name)).ok();
    let abort: web_sys::AbortController = field("abort")?.dyn_into().ok()?;
    if field("url")?.as_string()? != url {
        // Not the file this app reads: stop it rather than let it run on.
        abort.abort();
        return None;
    }
    Some(Started { reply: field("reply")?.dyn_into().ok()?, abort })
}

/// Sends a request with `fetch` and reads the whole answer, within the deadline.
async fn send(outgoing: Outgoing<'_>) -> Result<Reply, Failure> {
    use gloo_net::http::{RequestBuilder, Response};
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen::{JsCast as _, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{
        AbortController, ReferrerPolicy, RequestCache, RequestCredentials, RequestMode,
        RequestRedirect,
    };

    // The deadline: a timer aborts the request (and the body read). Dropping
    // the timer when we return cancels it.
    let timed_out = Rc::new(Cell::new(false));
    let network = |what: &str, detail: String| -> Failure {
        if timed_out.get() {
            Failure::Timeout(outgoing.timeout_s)
        } else {
            Failure::Network(format!("{what}: {detail}"))
        }
    };
    let gloo = |what: &str, error: gloo_net::Error| network(what, error.to_string());
    let js = |what: &str, error: JsValue| network(what, crate::browser::error_text(&error));

    let (controller, request) = match outgoing.started {
        Some(Started { reply, abort }) => (Some(abort), Err(reply)),
        None => {
            let controller = AbortController::new().ok();
            let mut builder = RequestBuilder::new(outgoing.url)
                .method(outgoing.method)
                .mode(RequestMode::Cors)
                .credentials(RequestCredentials::Omit)
                .cache(RequestCache::NoStore)
                .referrer_policy(ReferrerPolicy::NoReferrer)
                // Neither the relay, the API nor config.json redirects: a
                // redirect would be someone else's answer, so it fails instead.
                .redirect(RequestRedirect::Error)
                .abort_signal(controller.as_ref().map(AbortController::signal).as_ref());
            if let Some(token) = outgoing.bearer {
                builder = builder.header("Authorization", &format!("Bearer {token}"));
            }
            let request = match &outgoing.form {
                Some(form) => builder
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(JsValue::from_str(form)),
                None => builder.build(),
            };
            (controller, Ok(request.map_err(|e| gloo("request", e))?))
        }
    };
    let _deadline = controller.map(|controller| {
        let timed_out = timed_out.clone();
        gloo_timers::callback::Timeout::new(outgoing.timeout_s.saturating_mul(1000), move || {
            timed_out.set(true);
            controller.abort();
        })
    });

    let response = match request {
        Ok(request) => request.send().await.map_err(|e| gloo("fetch", e))?,
        // The request `assets/screen.js` started: a bare `fetch` promise.
        Err(reply) => {
            let raw = JsFuture::from(reply).await.map_err(|e| js("fetch", e))?;
            Response::from(raw.dyn_into::<web_sys::Response>().map_err(|e| js("fetch", e))?)
        }
    };
    let status = response.status();
    let retry_after =
        response.headers().get("retry-after").and_then(|value| value.trim().parse().ok());
    let body = response.text().await.map_err(|e| gloo("body", e))?;
    Ok(Reply { status, body, retry_after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::ProblemKind;

    fn reply(status: u16, body: &str) -> Reply {
        Reply { status, body: body.to_owned(), retry_after: None }
    }

    fn deployment() -> Deployment {
        Deployment {
            origin: "http://127.0.0.1:8080".into(),
            redirect_uri: "http://127.0.0.1:8080/".into(),
            relay_url: "http://127.0.0.1:8787/token".into(),
            api_base: "http://127.0.0.1:9090/2.0/".into(),
        }
    }

    /// Maps a relay answer and returns the problem's kind, or "ok".
    fn relay(status: u16, body: &str, grant: Grant) -> &'static str {
        match relay_reply(&reply(status, body), grant, &deployment()) {
            Ok(_) => "ok",
            Err(problem) => problem.kind.slug(),
        }
    }

    #[test]
    fn relay_success() {
        let body = r#"{"access_token":"at","token_type":"Bearer","expires_in":"7200","refresh_token":"rt","scopes":"account email"}"#;
        let tokens = relay_reply(&reply(200, body), Grant::Code, &deployment()).expect("tokens");
        assert_eq!(tokens.access_token.secret(), "at");
        assert_eq!(tokens.expires_in, Some(7200));
        assert_eq!(tokens.scope.as_deref(), Some("account email"));
        assert_eq!(
            relay(200, r#"{"access_token":"at","token_type":"mac"}"#, Grant::Code),
            "malformed"
        );
        assert_eq!(relay(200, "<html>", Grant::Code), "malformed");
        assert_eq!(relay(200, r#"{"token_type":"bearer"}"#, Grant::Code), "malformed");
    }

    #[test]
    fn relay_error_table() {
        use Grant::{Code, Refresh};
        let e = |code: &str, description: &str| {
            format!(r#"{{"error":"{code}","error_description":"{description}"}}"#)
        };
        let cases = [
            (
                400,
                r#"{"error":"invalid_request","error_description":"any words","reason":"redirect_uri_not_allowed"}"#
                    .to_owned(),
                Code,
                "relay-refused-redirect",
            ),
            // Prose alone is not read: the relay says it with `reason`.
            (
                400,
                e("invalid_request", "redirect_uri is not on the relay's allowlist"),
                Code,
                "relay-failed",
            ),
            (
                400,
                e("invalid_request", "No callback uri defined for the OAuth client."),
                Code,
                "relay-refused-redirect",
            ),
            (400, e("invalid_grant", "The code has expired"), Code, "code-rejected"),
            (400, e("invalid_grant", "Invalid refresh_token"), Refresh, "session-expired"),
            (400, e("invalid_request", "Invalid refresh_token"), Refresh, "session-expired"),
            (400, e("invalid_request", "the field `code` is missing"), Code, "relay-failed"),
            (400, e("unsupported_grant_type", "x"), Code, "relay-failed"),
            (401, e("invalid_client", "Bad credentials"), Code, "relay-client-rejected"),
            (401, e("invalid_client", "Bad credentials"), Refresh, "relay-client-rejected"),
            (403, e("invalid_request", "origin not allowed"), Code, "relay-refused-origin"),
            (429, e("temporarily_unavailable", "slow down"), Code, "relay-busy"),
            (503, e("temporarily_unavailable", "busy"), Refresh, "relay-busy"),
            (
                502,
                e("temporarily_unavailable", "Bitbucket could not be reached"),
                Code,
                "upstream-unavailable",
            ),
            (502, e("server_error", "not OAuth"), Code, "upstream-broken"),
            (504, e("temporarily_unavailable", "timeout"), Code, "upstream-unavailable"),
            (500, "oops".to_owned(), Code, "relay-failed"),
            (431, String::new(), Code, "relay-failed"),
        ];
        for (status, body, grant, expected) in cases {
            assert_eq!(relay(status, &body, grant), expected, "{status} {body} {grant:?}");
        }
    }

    #[test]
    fn relay_refusals_of_proofs_and_sealed_tokens() {
        use Grant::{Code, Refresh};
        let e = |code: &str, reason: Option<&str>| match reason {
            Some(reason) => format!(
                r#"{{"error":"{code}","error_description":"prose may change","reason":"{reason}"}}"#
            ),
            None => format!(r#"{{"error":"{code}","error_description":"prose may change"}}"#),
        };
        let cases = [
            // The exchange's proof was refused for its time: fix the clock.
            (400, e("invalid_dpop_proof", Some("clock")), Code, "proof-rejected"),
            (400, e("invalid_dpop_proof", Some("clock")), Refresh, "proof-rejected"),
            // For anything else: the relay's setup, named in the details.
            (400, e("invalid_dpop_proof", None), Code, "relay-failed"),
            (400, e("invalid_dpop_proof", None), Refresh, "relay-failed"),
            // The session is bound to another key, or was never sealed.
            (400, e("invalid_dpop_proof", Some("wrong_key")), Refresh, "session-unbound"),
            (400, e("invalid_grant", Some("not_sealed")), Refresh, "session-unbound"),
            // The relay's longest session lifetime.
            (400, e("invalid_grant", Some("session_ended")), Refresh, "session-limit"),
            // A reason counts only with its error code and grant.
            (400, e("invalid_grant", Some("wrong_key")), Refresh, "session-expired"),
            (400, e("invalid_grant", Some("session_ended")), Code, "code-rejected"),
            (400, e("invalid_grant", Some("something_new")), Refresh, "session-expired"),
            // Prose is never read.
            (
                400,
                r#"{"error":"invalid_grant","error_description":"session_ended"}"#.to_owned(),
                Refresh,
                "session-expired",
            ),
        ];
        for (status, body, grant, expected) in cases {
            assert_eq!(relay(status, &body, grant), expected, "{status} {body} {grant:?}");
        }
        let problem = relay_reply(
            &reply(400, &e("invalid_grant", Some("session_ended"))),
            Refresh,
            &deployment(),
        )
        .expect_err("refused");
        assert!(crate::session::is_final(&problem), "the session is over");
        assert!(problem.explanation.contains("longest time"), "{}", problem.explanation);
        let clock = e("invalid_dpop_proof", Some("clock"));
        let problem = relay_reply(&reply(400, &clock), Code, &deployment()).expect_err("refused");
        assert!(!crate::session::is_final(&problem), "a clock can be fixed");
    }

    #[test]
    fn a_proof_rides_in_the_form_so_the_post_stays_simple() {
        use dance_protocol::RefreshToken;
        let request =
            TokenRequest::RefreshToken { refresh_token: RefreshToken::new("sealed.blob-_") };
        assert_eq!(
            request.to_form_with_proof("h.c.s"),
            "grant_type=refresh_token&refresh_token=sealed.blob-_&dpop=h.c.s"
        );
    }

    #[test]
    fn relay_problems_keep_the_details_and_retry_after() {
        let busy = Reply {
            status: 429,
            body: r#"{"error":"temporarily_unavailable","error_description":"rate limited"}"#
                .into(),
            retry_after: Some(7),
        };
        let problem = relay_reply(&busy, Grant::Code, &deployment()).expect_err("busy");
        assert!(problem.explanation.contains("7 seconds"), "{}", problem.explanation);
        assert_eq!(
            problem.detail.as_deref(),
            Some("HTTP 429: temporarily_unavailable: rate limited")
        );
    }

    #[test]
    fn api_answers() {
        let user: User = api_reply(&reply(200, r#"{"display_name":"Alice"}"#), Permission::Account)
            .expect("user");
        assert_eq!(user.display_name.as_deref(), Some("Alice"));
        let kind = |status: u16, body: &str| {
            api_reply::<User>(&reply(status, body), Permission::Account)
                .expect_err("a problem")
                .kind
        };
        assert_eq!(
            kind(401, r#"{"type":"error","error":{"message":"Access token expired."}}"#),
            ProblemKind::TokenExpired
        );
        assert_eq!(
            kind(
                401,
                r#"{"type":"error","error":{"message":"Token is invalid, expired, or not supported for this endpoint."}}"#
            ),
            ProblemKind::ApiUnauthorized
        );
        assert_eq!(kind(401, "not json"), ProblemKind::ApiUnauthorized);
        assert_eq!(
            kind(403, r#"{"type":"error","error":{"message":"Forbidden"}}"#),
            ProblemKind::ApiForbidden
        );
        assert_eq!(kind(429, ""), ProblemKind::ApiRateLimited);
        assert_eq!(kind(500, ""), ProblemKind::ApiServer);
        assert_eq!(kind(503, "<html>"), ProblemKind::ApiServer);
        assert_eq!(
            kind(404, r#"{"type":"error","error":{"message":"Resource not found"}}"#),
            ProblemKind::ApiFailed
        );
        assert_eq!(kind(200, "{\"display_name\": 5}"), ProblemKind::Malformed);
        assert_eq!(kind(200, "<html>"), ProblemKind::Malformed);
    }

    #[test]
    fn forbidden_emails_name_the_email_permission() {
        let problem = api_reply::<Paginated<Email>>(&reply(403, "{}"), Permission::Email)
            .expect_err("forbidden");
        assert!(problem.explanation.contains("Account: Email"), "{}", problem.explanation);
        // Bitbucket's detail names the scope it wanted; that wins.
        let body = r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.",
            "detail":{"required":["email"],"granted":["account"]}}}"#;
        let problem =
            api_reply::<User>(&reply(403, body), Permission::Account).expect_err("forbidden");
        assert!(problem.explanation.contains("Account: Email"), "{}", problem.explanation);
    }

    #[test]
    fn config_answers() {
        let url = "https://user.github.io/repo/config.json";
        assert!(config_reply(&reply(200, include_str!("../config.json")), url).is_ok());
        assert_eq!(
            config_reply(&reply(404, "nope"), url).expect_err("missing").kind,
            ProblemKind::ConfigMissing
        );
        assert_eq!(
            config_reply(&reply(500, ""), url).expect_err("broken").kind,
            ProblemKind::ConfigUnreachable
        );
        let invalid = config_reply(&reply(200, "{}"), url).expect_err("invalid");
        assert_eq!(invalid.kind, ProblemKind::ConfigInvalid);
        assert_eq!(invalid.checklist.len(), 4, "{:?}", invalid.checklist);
    }

    #[test]
    fn pagination_never_leaves_the_api() {
        let base = WebUrl::parse("https://api.bitbucket.org/2.0/").expect("base");
        assert_eq!(
            next_page(&base, Some("https://api.bitbucket.org/2.0/user/emails?page=2"))
                .map(String::from),
            Some("https://api.bitbucket.org/2.0/user/emails?page=2".to_owned())
        );
        assert_eq!(next_page(&base, Some("https://evil.example/2.0/user/emails?page=2")), None);
        assert_eq!(next_page(&base, Some("http://api.bitbucket.org/2.0/user/emails")), None);
        assert_eq!(next_page(&base, Some("https://api.bitbucket.org/1.0/x")), None);
        assert_eq!(
            next_page(&base, Some("/2.0/user/emails?page=2")),
            None,
            "relative next is refused"
        );
        assert_eq!(next_page(&base, None), None);
    }
}
