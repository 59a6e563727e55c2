//! Everything else fakebucket serves: an index page at `/`, the users'
//! avatars (`/avatars/{account_id}/128`), their profile pages (the
//! `links.html` target, `/{uuid}/`) and a 404 page.

use crate::fixtures::{self, FixtureUser};
use crate::html::{self, escape};
use crate::store::App;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `GET /`: what this server is and where its endpoints are.
pub(crate) async fn index(State(app): State<Arc<App>>) -> Response {
    let base = &app.base;
    let link = |segments: &[&str]| escape(&fixtures::link(base, segments, false));
    let consumers: String = app
        .config
        .consumers
        .iter()
        .map(|c| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                escape(&c.key),
                escape(&c.name),
                escape(c.callback.as_ref().map_or("(none)", |u| u.as_str())),
                escape(&c.scope_string()) + if c.private { " (private)" } else { "" },
            )
        })
        .collect();
    let users: String =
        app.config.users.iter().map(|u| format!("<li>{}</li>\n", user_line(&app, u))).collect();
    let body = format!(
        concat!(
            "<h1>fakebucket</h1>\n<p>A local emulator of Bitbucket Cloud's OAuth 2.0 and user API.</p>\n",
            "<table>\n<tr><th>authorize</th><td><code>{authorize}</code></td></tr>\n",
            "<tr><th>token</th><td><code>{token}</code></td></tr>\n",
            "<tr><th>API base</th><td><code>{api}</code></td></tr>\n</table>\n",
            "<h2>Consumers</h2>\n<table>\n<tr><th>key</th><th>name</th><th>callback</th><th>scopes</th></tr>\n{consumers}</table>\n",
            "<h2>Users</h2>\n<ul class=\"accounts\">\n{users}</ul>\n<p class=\"muted\">PKCE: {pkce}. Admin API: {admin}.</p>"
        ),
        authorize = link(&["site", "oauth2", "authorize"]),
        token = link(&["site", "oauth2", "access_token"]),
        api = escape(&fixtures::link(base, &["2.0"], true)),
        consumers = consumers,
        users = users,
        pkce = app.config.pkce,
        admin = if app.config.admin { "on, under /_fakebucket/" } else { "off" },
    );
    html::respond(StatusCode::OK, html::document("fakebucket", &body))
}

fn user_line(app: &App, user: &FixtureUser) -> String {
    format!(
        "<img src=\"{}\" alt=\"\" width=\"32\" height=\"32\"><span>{} <span class=\"muted\">@{}</span></span>",
        escape(&fixtures::link(&app.base, &["avatars", &user.account_id, "128"], false)),
        escape(&user.display_name),
        escape(&user.nickname),
    )
}

/// `GET /avatars/{account_id}` and `GET /avatars/{account_id}/{size}`: the
/// SVG avatar (the size is accepted and ignored; SVG scales).
pub(crate) async fn avatar(
    State(app): State<Arc<App>>,
    Path(params): Path<Vec<(String, String)>>,
) -> Response {
    let account_id = params.first().map(|(_, v)| v.as_str()).unwrap_or_default();
    let Some(user) = app.config.user(account_id) else {
        return not_found().await;
    };
    let mut response = fixtures::avatar_svg(user).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `GET /{uuid}/`: a user's public profile page, the target of `links.html`.
pub(crate) async fn profile(State(app): State<Arc<App>>, Path(uuid): Path<String>) -> Response {
    let Some(user) = app.config.users.iter().find(|u| u.uuid == uuid) else {
        return not_found().await;
    };
    let body = format!(
        "<h1 id=\"profile-name\">{}</h1>\n<p>{}</p>",
        escape(&user.display_name),
        user_line(&app, user)
    );
    html::respond(StatusCode::OK, html::document(&user.display_name, &body))
}

/// Any path fakebucket does not serve (outside `/2.0/`, which answers JSON).
pub(crate) async fn not_found() -> Response {
    html::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "fakebucket serves nothing at this address.",
    )
}
