//! The few HTML pages fakebucket serves: the consent page's frame, error
//! pages, the index and profile pages, and the escaping they all rely on.
//!
//! Pages are plain strings built with `format!`. Every value that did not
//! come from this file (application names, user names, URLs, `state`) goes
//! through [`escape`] first. Styles are inline; nothing is loaded from
//! anywhere else, and the Content-Security-Policy says so.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for use in HTML element content and quoted attribute values
/// (and in XML, for the SVG avatars).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet shared by every page.
const STYLE: &str = "
:root { color-scheme: light; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
body { margin: 0; background: #f4f5f7; color: #172b4d; }
main { max-width: 34rem; margin: 3rem auto; background: #fff; border-radius: 8px;
       box-shadow: 0 1px 3px rgba(9,30,66,.25); padding: 2rem; }
.brand { margin: 0 0 1.5rem; font-weight: 600; color: #0052cc; }
.brand span { color: #6b778c; font-weight: 400; }
h1 { font-size: 1.3rem; margin: 0 0 1rem; line-height: 1.4; }
ul.scopes { padding-left: 1.2rem; }
ul.scopes li { margin: .3rem 0; }
ul.accounts { list-style: none; padding: 0; margin: 1rem 0; }
ul.accounts li { display: flex; align-items: center; gap: .6rem; margin: .4rem 0; }
ul.accounts img { border-radius: 50%; }
label { display: block; font-weight: 600; margin: 1rem 0 .4rem; }
select { font: inherit; padding: .4rem; width: 100%; }
.muted { color: #6b778c; font-size: .9rem; }
code { overflow-wrap: anywhere; }
.actions { display: flex; gap: .8rem; margin-top: 1.5rem; }
button { font: inherit; padding: .55rem 1.2rem; border-radius: 4px; border: 1px solid #c1c7d0;
         background: #fff; color: #172b4d; cursor: pointer; }
button.primary { background: #0052cc; border-color: #0052cc; color: #fff; }
button:focus-visible, select:focus-visible, a:focus-visible { outline: 3px solid #4c9aff; outline-offset: 2px; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .2rem .8rem .2rem 0; }
";

/// A complete HTML document with the shared frame. `title` is escaped here;
/// `body` must already be safe HTML.
pub(crate) fn document(title: &str, body: &str) -> String {
    format!(
        concat!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            "<meta name=\"referrer\" content=\"no-referrer\">\n",
            "<title>{title}</title>\n<style>{style}</style>\n</head>\n<body>\n<main>\n",
            "<p class=\"brand\">fakebucket <span>&middot; a local stand-in for Bitbucket Cloud</span></p>\n",
            "{body}\n</main>\n</body>\n</html>\n"
        ),
        title = escape(title),
        style = STYLE,
        body = body,
    )
}

/// Wraps a finished page in a response with the headers every page gets:
/// HTML content type, no caching, no framing, and a CSP that allows only
/// inline styles and same-origin images.
pub(crate) fn respond(status: StatusCode, page: String) -> Response {
    let mut response = (status, page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// An error page: the authorize endpoint's answer when it must not redirect
/// (unknown client, bad redirect URI), and the answer to anything malformed.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1 id=\"error-title\">{}</h1>\n<p id=\"error-message\">{}</p>",
        escape(title),
        escape(message)
    );
    respond(status, document(title, &body))
}
