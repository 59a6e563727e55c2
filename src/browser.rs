//! Small, fallible helpers over the page itself: the window, its URLs, the
//! history, the clock, performance marks and the console.
//!
//! Nothing here panics: a missing `window` (which only happens outside a
//! page) reads as `None` and the callers turn that into a [`Problem`]
//! or skip the optional step.
//!
//! [`Problem`]: crate::problem::Problem

use crate::weburl::WebUrl;
use wasm_bindgen::JsValue;

/// The page's window, when there is one.
pub fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

/// The page's full address (`location.href`).
pub fn page_url() -> Option<WebUrl> {
    let href = window()?.location().href().ok()?;
    WebUrl::parse(&href)
}

/// The app's base URL: `document.baseURI` (set by trunk's `<base>` from its
/// public URL, so `/repo/` on a GitHub Pages project site), without query or
/// fragment. This is also the redirect URI (see [`crate::flow::app_base`]).
pub fn base_url() -> Option<WebUrl> {
    let base = window()?.document()?.base_uri().ok()??;
    WebUrl::parse(&base).map(|url| crate::flow::app_base(&url))
}

/// Replaces the current history entry's URL (same origin only) without
/// navigating: `history.replaceState(null, "", url)`.
pub fn replace_url(url: &str) -> bool {
    let Some(history) = window().and_then(|w| w.history().ok()) else {
        return false;
    };
    history.replace_state_with_url(&JsValue::NULL, "", Some(url)).is_ok()
}

/// Navigates the tab to `url` (`location.assign`).
pub fn navigate(url: &str) -> bool {
    window().is_some_and(|w| w.location().assign(url).is_ok())
}

/// Reloads the page.
pub fn reload() {
    if let Some(window) = window() {
        let _ = window.location().reload();
    }
}

/// Milliseconds since the Unix epoch, from the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Records a performance mark (`performance.mark(name)`), read by the
/// browser benchmark. Names start with `dance:`.
pub fn mark(name: &str) {
    if let Some(performance) = window().and_then(|w| w.performance()) {
        let _ = performance.mark(name);
    }
}

/// Writes an error line to the console. Callers never pass secrets: every
/// token type redacts itself in `Display`.
pub fn log_error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(message));
}

/// Whether the page is a secure context (https, or http on localhost),
/// the only kind browsers give WebCrypto to.
pub fn is_secure() -> bool {
    window().is_some_and(|w| w.is_secure_context())
}

/// The message of something the browser threw or rejected with (an `Error`
/// or `DOMException`, or a string), for a problem's technical detail.
pub fn error_text(error: &JsValue) -> String {
    use wasm_bindgen::JsCast as _;
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".to_owned())
}
