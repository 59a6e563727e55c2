//! oauth-dance's single-page app: "Sign in with Bitbucket" in the browser.
//!
//! The app runs the OAuth 2.0 authorization code flow with PKCE as a public
//! client. Bitbucket's token endpoint needs the client secret and answers no
//! CORS, so the code (and later each refresh token) goes through the relay
//! (`crates/relay`), and the API is called straight from the browser.
//!
//! Module map, from the outside in:
//! - [`app`]: the root component and the controller that runs the steps
//!   (start-up, callback, exchange, profile, refresh, sign-out) and reports
//!   them to the reducer.
//! - [`auth`]: the one state enum ([`auth::AuthState`]) and its pure
//!   reducer; the state also carries what a step hands to the next (the
//!   exchange kept for "Try again", its key, which step to re-run).
//! - [`views`]: function components that render state: landing, loading,
//!   profile, problem (with the set-up checklist).
//! - `prerender` (native, feature `prerender`): the first screens rendered
//!   from those same views into `index.html` at build time, so the page
//!   paints before the wasm arrives.
//! - [`flow`]: the authorization request and the callback: state and PKCE,
//!   cleaning the address bar, the constant-time state check, return paths.
//! - [`tokens`]: the token keeper of a tab: timely refresh, a refresh and
//!   retry when an API call meets an expired token, and the browser's side
//!   of the cross-tab protocol.
//! - [`tabs`]: the cross-tab protocol (Web Locks + a BroadcastChannel
//!   sealed with a key only the session's tabs hold) that keeps rotating
//!   refresh tokens from being lost: lock names, messages, what a tab
//!   adopts.
//! - [`session`]: a session's tokens and lineage, when to refresh them, and
//!   which refusals end it; pure, and what session storage keeps.
//! - [`keys`]: the session's non-extractable signing key, in IndexedDB.
//! - [`dpop`]: the DPoP proof (RFC 9449) every token request carries, so
//!   the relay's sealed refresh token works only from this browser.
//! - [`crypto`]: WebCrypto calls (key pairs, ECDSA, AES-GCM) and base64url;
//!   the bundle carries no cryptography of its own (but PKCE's SHA-256).
//! - [`api`]: the only module that does network IO: `config.json`, the
//!   relay, Bitbucket's API (the user, the email addresses page by page);
//!   every failure mapped to a [`problem::Problem`].
//! - [`problem`]: each failure in plain words, with the way out.
//! - [`deployment`]: the page's and the settings' values a set-up checklist
//!   names.
//! - [`profile`]: what the profile page shows, decided without the DOM.
//! - [`config`]: `config.json` parsing and checking.
//! - [`storage`]: `sessionStorage` with namespaced keys (never localStorage
//!   or cookies); the one value kept elsewhere is the signing key, which
//!   can't be written as text ([`keys`]).
//! - [`browser`]: leaf glue over the window, history and performance marks
//!   (web-sys only).
//! - [`weburl`]: URLs parsed by the browser's own `URL` (the `url` crate in
//!   native tests), so the bundle carries no URL parser.
//! - [`json`]: JSON parsed by the browser's own `JSON.parse` (serde_json in
//!   native tests) and read by the shared serde types, so the bundle carries
//!   no JSON parser.
//!
//! Invariants: the secret never reaches this code; no token ever goes in a
//! URL; the callback leaves the address bar before any network request; the
//! stored state is deleted on first use; values from the API are rendered as
//! text and only https URLs become links; components never unwrap.

pub mod api;
pub mod app;
pub mod auth;
pub mod browser;
pub mod config;
pub mod crypto;
pub mod deployment;
pub mod dpop;
pub mod flow;
pub mod json;
pub mod keys;
#[cfg(feature = "prerender")]
pub mod prerender;
pub mod problem;
pub mod profile;
pub mod session;
pub mod storage;
pub mod tabs;
pub mod tokens;
pub mod views;
pub mod weburl;

use wasm_bindgen::JsCast as _;

/// The class of the element the app renders into, at the end of `<body>`;
/// the stylesheet gives it no box of its own (`display: contents`).
pub const APP_ROOT_CLASS: &str = "app-root";

/// Starts the app: installs the panic hook that replaces the page with an
/// error view, then renders [`app::App`] into an element of its own at the
/// end of `<body>`.
pub fn start() {
    yew::set_custom_panic_hook(Box::new(|info| {
        browser::log_error(&format!("oauth-dance crashed: {info}"));
        if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
            render_crash(&body);
        }
    }));
    // Yew empties the element it renders into, so the app gets one of its
    // own: the built-in first screen stays until the app's first render is
    // in place (`browser::take_over_page`), focus included.
    let root = web_sys::window().and_then(|w| w.document()).and_then(|document| {
        let root = document.create_element("div").ok()?;
        root.set_class_name(APP_ROOT_CLASS);
        document.body()?.append_child(&root).ok()?;
        Some(root)
    });
    match root {
        Some(root) => {
            yew::Renderer::<app::App>::with_root(root).render();
        }
        // Only outside a page, where nothing could be shown anyway.
        None => browser::log_error("oauth-dance: no document body to start in"),
    }
}

/// Replaces `root`'s content with the crash view, built with plain DOM calls
/// (after a panic the app's own rendering can no longer be trusted). The
/// "Reload" link points at the page itself.
pub fn render_crash(root: &web_sys::Element) {
    let Some(document) = root.owner_document() else { return };
    let element = |tag: &str, id: &str, class: &str, text: &str| -> Option<web_sys::Element> {
        let el = document.create_element(tag).ok()?;
        if !id.is_empty() {
            el.set_id(id);
        }
        if !class.is_empty() {
            el.set_class_name(class);
        }
        el.set_text_content(Some(text));
        Some(el)
    };
    let problem = problem::Problem::crashed();
    let build = || -> Option<web_sys::Element> {
        let shell = element("main", "app", "shell crashed", "")?;
        let card = element("section", "problem", "card problem", "")?;
        card.set_attribute("role", "alert").ok()?;
        card.set_attribute("data-kind", problem.kind.slug()).ok()?;
        let title = element("h1", "problem-title", "problem-title", &problem.title)?;
        card.append_child(&title).ok()?;
        let explanation =
            element("p", "problem-explanation", "problem-explanation", &problem.explanation)?;
        card.append_child(&explanation).ok()?;
        let actions = element("div", "", "actions", "")?;
        let reload = element("a", "reload", "button primary", "Reload the page")?;
        let here = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_else(|| ".".to_owned());
        reload.set_attribute("href", &here).ok()?;
        actions.append_child(&reload).ok()?;
        card.append_child(&actions).ok()?;
        shell.append_child(&card).ok()?;
        Some(shell)
    };
    if let Some(view) = build() {
        root.set_text_content(None);
        let _ = root.append_child(view.unchecked_ref());
    }
}

#[cfg(test)]
mod tests {
    /// The element the app renders into has no box: the stylesheet says so
    /// under the class the app gives it.
    #[test]
    fn the_app_root_lays_out_as_nothing() {
        let css = include_str!("../style.css");
        let rule = format!(".{} {{\n  display: contents;\n}}", super::APP_ROOT_CLASS);
        assert!(css.contains(&rule), "style.css lacks {rule:?}");
    }
}
