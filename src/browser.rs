//! Small, fallible helpers over the page itself: the window, its URLs, the
//! history, the clock, performance marks and the console.
//!
//! This is leaf glue over `web-sys`: it knows nothing of the app's own
//! modules, which call down into it. Nothing here panics: a missing
//! `window` (which only happens outside a page) reads as `None` and the
//! callers turn that into a problem or skip the optional step.

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

/// The document's base URL, `document.baseURI` (set by trunk's `<base>`
/// from its public URL, so `/repo/` on a GitHub Pages project site), as the
/// browser reports it.
pub fn base_uri() -> Option<WebUrl> {
    let base = window()?.document()?.base_uri().ok()??;
    WebUrl::parse(&base)
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

/// The attribute of `<html>` by which `assets/screen.js` names the screen
/// `index.html` shows first: absent for the landing page, `resuming` for
/// "Signing you in…".
pub const SCREEN_ATTRIBUTE: &str = "data-screen";
/// Set on `<html>` by `assets/screen.js` when "Sign in" was pressed before
/// the app ran.
pub const QUEUED_ATTRIBUTE: &str = "data-queued";
/// Set on `<html>` once the app runs: `assets/screen.js` stops catching
/// clicks then.
pub const STARTED_ATTRIBUTE: &str = "data-app";
/// The markup rendered into `index.html` at build time: the shell's root,
/// marked with the class `prerendered` (the app's own shell has the same id).
pub const PRERENDERED_SELECTOR: &str = ".shell.prerendered";

fn root_element() -> Option<web_sys::Element> {
    window()?.document()?.document_element()
}

/// Whether `index.html` shows "Signing you in…" first (rather than the
/// landing page), as `assets/screen.js` picked it.
pub fn shows_resuming_screen() -> bool {
    root_element()
        .and_then(|root| root.get_attribute(SCREEN_ATTRIBUTE))
        .is_some_and(|screen| screen == "resuming")
}

/// Sets `name` to `value` on `<html>`, where tests and `assets/screen.js`
/// read the page's state.
pub fn set_root_attribute(name: &str, value: &str) {
    if let Some(root) = root_element() {
        let _ = root.set_attribute(name, value);
    }
}

/// Whether "Sign in" was pressed before the app ran; forgets it.
pub fn take_queued_sign_in() -> bool {
    let Some(root) = root_element() else { return false };
    let queued = root.has_attribute(QUEUED_ATTRIBUTE);
    let _ = root.remove_attribute(QUEUED_ATTRIBUTE);
    queued
}

/// Takes over from the page's built-in markup: removes it and tells
/// `assets/screen.js` that the app now handles clicks. The app renders its
/// first screen (the same one) before the browser paints again. Keyboard
/// focus moves along: a person who tabbed to the built-in "Sign in" is on
/// the app's "Sign in" afterwards.
pub fn take_over_page() {
    use wasm_bindgen::JsCast as _;

    let Some(document) = window().and_then(|w| w.document()) else { return };
    if let Ok(Some(prerendered)) = document.query_selector(PRERENDERED_SELECTOR) {
        let focused = document
            .active_element()
            .filter(|element| prerendered.contains(Some(element)))
            .map(|element| element.id())
            .filter(|id| !id.is_empty());
        prerendered.remove();
        let app_element = focused.and_then(|id| document.get_element_by_id(&id));
        if let Some(element) = app_element.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = element.focus();
        }
    }
    if let Some(root) = document.document_element() {
        let _ = root.set_attribute(STARTED_ATTRIBUTE, "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Key;

    /// `assets/screen.js` runs before the app and can't share its code, so
    /// it repeats these names: they must agree, or the first screen and the
    /// app's would differ.
    #[test]
    fn screen_js_agrees_with_the_app() {
        let script = include_str!("../assets/screen.js");
        for name in [SCREEN_ATTRIBUTE, QUEUED_ATTRIBUTE, STARTED_ATTRIBUTE, Key::Session.name()] {
            assert!(script.contains(&format!("'{name}'")), "screen.js lacks '{name}'");
        }
        assert!(script.contains("'resuming'"), "the value shows_resuming_screen reads");
        // screen.js removes the same markup when the app cannot run.
        assert!(script.contains(&format!("querySelector('{PRERENDERED_SELECTOR}')")));
    }
}
