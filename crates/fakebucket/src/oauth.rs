//! The authorization endpoint, `/site/oauth2/authorize`: validation, the
//! consent page and the redirect back to the application.
//!
//! `GET` checks the request in the order Bitbucket's answers imply. Problems
//! that make the redirect target untrustworthy (unknown `client_id`, a
//! `redirect_uri` that does not start with the registered callback, no
//! callback at all) get an error page and never a redirect. "Start with" is
//! a comparison of text: the `redirect_uri` exactly as sent (after the
//! query string's own percent-decoding) must begin with the callback URL
//! character for character, so `http://127.0.0.1:8080` is refused for the
//! callback `http://127.0.0.1:8080/`, and so is `HTTP://127.0.0.1:8080/`. Problems after
//! that (`response_type` other than `code`, a missing PKCE challenge in
//! `require` mode) are sent back to the application as RFC 6749 4.1.2.1
//! errors with the same `state`.
//!
//! A valid request is remembered under a random transaction id and the
//! consent page is shown. Its form posts the transaction id, the chosen user
//! (`<select id="user">`) and the button pressed (`#grant` or `#cancel`) back
//! to the same URL; the answer is a `302` to the callback with `code` and
//! `state`, or with `error=access_denied`. A transaction can be answered once.

use crate::config::{PkceMode, scope_description};
use crate::form;
use crate::html::{self, escape};
use crate::store::{App, Pending};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use url::Url;

/// `GET /site/oauth2/authorize`.
pub(crate) async fn authorize(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    let fields = form::parse(query.unwrap_or_default().as_bytes());
    let refuse = |status, title: &str, message: &str| {
        app.lock().counters.count_authorize("refused");
        html::error_page(status, title, message)
    };

    let Some(consumer) = form::get(&fields, "client_id").and_then(|id| app.config.consumer(id))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Invalid client_id",
            "This application is not registered with fakebucket. Check the client_id (the consumer key).",
        );
    };

    let redirect_uri_sent = form::get(&fields, "redirect_uri").map(str::to_owned);
    let Some(callback) = &consumer.callback else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "No callback URL",
            "No callback uri defined for the OAuth client.",
        );
    };
    let redirect = match &redirect_uri_sent {
        None => callback.clone(),
        // Bitbucket's rule is a plain prefix match on the text as sent, not
        // on a parsed URL: `http://127.0.0.1:8080` does not start with
        // `http://127.0.0.1:8080/`, although both parse to the same URL.
        Some(sent) => match Url::parse(sent) {
            Ok(url) if sent.starts_with(callback.as_str()) => url,
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Invalid redirect_uri",
                    "The redirect_uri does not match the callback URL registered for this application.",
                );
            }
        },
    };

    let state = form::get(&fields, "state").map(str::to_owned);
    let send_back = |error: &str, description: &str| {
        app.lock().counters.count_authorize("refused");
        redirect_to(
            &redirect,
            &[("error", error), ("error_description", description)],
            state.as_deref(),
        )
    };
    match form::get(&fields, "response_type") {
        Some("code") => {}
        None => return send_back("invalid_request", "The response_type parameter is required."),
        Some("token") => {
            return send_back(
                "unsupported_response_type",
                "The implicit grant (response_type=token) is no longer supported. Use response_type=code.",
            );
        }
        Some(_) => {
            return send_back("unsupported_response_type", "Only response_type=code is supported.");
        }
    }

    let challenge = form::get(&fields, "code_challenge").map(str::to_owned);
    if app.config.pkce == PkceMode::Require {
        if challenge.is_none() {
            return send_back("invalid_request", "code_challenge is required.");
        }
        if form::get(&fields, "code_challenge_method") != Some("S256") {
            return send_back("invalid_request", "code_challenge_method must be S256.");
        }
    }

    let now = app.now();
    let pending = Pending {
        consumer: consumer.key.clone(),
        redirect_uri_sent,
        redirect,
        state,
        challenge,
        expires: now + app.config.code_lifetime,
    };
    let page = consent_page(&app, &pending, &consumer.name, &consumer.scopes);
    let mut store = app.lock();
    let txn = store.add_pending(pending, now);
    store.counters.count_authorize("page");
    drop(store);
    html::respond(StatusCode::OK, page.replace(TXN_MARK, &txn))
}

/// Where the transaction id goes in the consent page; replaced once the page
/// is stored (the id is letters and digits, so needs no escaping).
const TXN_MARK: &str = "\u{1}txn\u{1}";

fn consent_page(app: &App, pending: &Pending, app_name: &str, scopes: &[String]) -> String {
    let scope_items: String = scopes
        .iter()
        .map(|s| {
            format!(
                "<li data-scope=\"{}\">{}</li>\n",
                escape(s),
                escape(scope_description(s).unwrap_or(s.as_str()))
            )
        })
        .collect();
    let options: String = app
        .config
        .users
        .iter()
        .map(|u| {
            format!(
                "<option value=\"{}\">{} (@{})</option>\n",
                escape(&u.account_id),
                escape(&u.display_name),
                escape(&u.nickname)
            )
        })
        .collect();
    let accounts: String = app
        .config
        .users
        .iter()
        .map(|u| {
            format!(
                "<li><img src=\"{}\" alt=\"\" width=\"32\" height=\"32\"><span>{} <span class=\"muted\">@{} &middot; {}</span></span></li>\n",
                escape(&crate::fixtures::link(&app.base, &["avatars", &u.account_id, "128"], false)),
                escape(&u.display_name),
                escape(&u.nickname),
                escape(u.primary_email().unwrap_or("no primary email")),
            )
        })
        .collect();
    let mut target = pending.redirect.clone();
    target.set_query(None);
    target.set_fragment(None);
    let action = crate::fixtures::link(&app.base, &["site", "oauth2", "authorize"], false);
    let body = format!(
        concat!(
            "<h1 id=\"consent-title\"><strong id=\"app-name\">{app}</strong> is requesting access to your Bitbucket account</h1>\n",
            "<p>This application will be able to:</p>\n<ul class=\"scopes\" id=\"scopes\">\n{scopes}</ul>\n",
            "<form method=\"post\" action=\"{action}\">\n",
            "<input type=\"hidden\" name=\"txn\" value=\"{txn}\">\n",
            "<label for=\"user\">Continue as</label>\n<select id=\"user\" name=\"user\">\n{options}</select>\n",
            "<ul class=\"accounts\" aria-label=\"Accounts on this fakebucket\">\n{accounts}</ul>\n",
            "<p class=\"muted\">You will be sent back to <code id=\"redirect-target\">{target}</code>.</p>\n",
            "<div class=\"actions\">\n",
            "<button id=\"grant\" class=\"primary\" type=\"submit\" name=\"decision\" value=\"grant\">Grant access</button>\n",
            "<button id=\"cancel\" type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\n",
            "</div>\n</form>"
        ),
        app = escape(app_name),
        scopes = scope_items,
        action = escape(&action),
        txn = TXN_MARK,
        options = options,
        accounts = accounts,
        target = escape(target.as_str()),
    );
    html::document(&format!("Authorize {app_name}"), &body)
}

/// `POST /site/oauth2/authorize`: the consent page's answer.
pub(crate) async fn decide(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let fields = form::parse(&body);
    let now = app.now();
    let refuse = |message: &str| {
        app.lock().counters.count_authorize("refused");
        html::error_page(StatusCode::BAD_REQUEST, "Authorization failed", message)
    };
    let decision = form::get(&fields, "decision");
    if !matches!(decision, Some("grant" | "cancel")) {
        return refuse("The form must say grant or cancel.");
    }
    let Some(pending) = form::get(&fields, "txn").and_then(|txn| app.lock().take_pending(txn, now))
    else {
        return refuse(
            "This authorization request has expired or was already answered. Start again from the application.",
        );
    };
    let state = pending.state.as_deref();
    if decision == Some("cancel") {
        app.lock().counters.count_authorize("denied");
        return redirect_to(
            &pending.redirect,
            &[
                ("error", "access_denied"),
                ("error_description", "The user denied access to the application."),
            ],
            state,
        );
    }
    let Some(user) = form::get(&fields, "user").and_then(|id| app.config.user(id)) else {
        return refuse("Choose one of the listed accounts.");
    };
    let mut store = app.lock();
    let code = store.issue_code(&pending, &user.account_id, app.config.code_lifetime, now);
    store.counters.count_authorize("granted");
    drop(store);
    redirect_to(&pending.redirect, &[("code", &code)], state)
}

/// A `302 Found` to `target` with `pairs` and then `state` (when there is
/// one) added to its query.
fn redirect_to(target: &Url, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let mut url = target.clone();
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Any other method on the authorize URL.
pub(crate) async fn wrong_method() -> Response {
    let mut response = html::error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "The authorization endpoint takes GET (the request) and POST (the consent form).",
    );
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}
