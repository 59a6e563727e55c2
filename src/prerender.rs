//! The first screens, rendered to HTML at build time from the app's own
//! views, so that `index.html` paints the page before the wasm arrives.
//!
//! The post-build hook (`cargo xtask minify`) puts [`first_screens`] into
//! `index.html`: the page frame ([`shell`]) holding both screens the app can
//! start on, the landing page and "Signing you in…". `assets/screen.js`, a
//! classic script in `<head>` that runs before the first paint, picks one
//! (the stylesheet hides the other): "Signing you in…" on a return from
//! Bitbucket or with a saved session, the landing page otherwise. The app
//! starts on the same screen ([`crate::auth::AuthState::first`]) and
//! replaces this markup once it has rendered its own, so nothing moves.
//!
//! Native only (feature `prerender`): Yew's server renderer never enters
//! the bundle.

use crate::app::RESUMING;
use crate::views::{Landing, loading, shell};
use yew::prelude::*;

/// The class that marks the built-in markup (the stylesheet shows one of
/// its screens, as `assets/screen.js` says).
pub const PRERENDERED_CLASS: &str = "prerendered";

#[function_component(FirstScreens)]
fn first_screens_view() -> Html {
    let nothing = Callback::noop();
    let body = html! {
        <>
            <Landing on_sign_in={nothing.clone()} />
            { loading(RESUMING) }
        </>
    };
    shell(false, &nothing, body)
}

/// The markup of the first screens, for `index.html`'s `<body>`.
pub fn first_screens() -> String {
    let renderer = yew::LocalServerRenderer::<FirstScreens>::new().hydratable(false);
    let html = futures::executor::block_on(renderer.render());
    let marked = html.replacen(
        r#"id="app" class="shell""#,
        &format!(r#"id="app" class="shell {PRERENDERED_CLASS}""#),
        1,
    );
    assert_ne!(marked, html, "the shell's root is no longer `<div id=\"app\" class=\"shell\">`");
    marked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both first screens are there, inside the marked frame, with the ids
    /// the app and the tests rely on, and nothing of Yew's hydration.
    #[test]
    fn the_first_screens_are_the_apps_views() {
        let html = first_screens();
        assert!(html.starts_with(r#"<div id="app" class="shell prerendered">"#), "{html}");
        for needle in [
            r#"id="landing""#,
            r#"id="landing-title""#,
            "See your Bitbucket profile",
            r#"id="sign-in""#,
            "Sign in with Bitbucket",
            r#"id="loading""#,
            RESUMING,
        ] {
            assert!(html.contains(needle), "missing {needle:?} in {html}");
        }
        assert!(!html.contains("<!--"), "hydration markers: {html}");
        assert!(!html.contains("sign-out"), "signed out: no sign-out button");
    }
}
