//! The screens, as function components that only render their props, and
//! two plain view functions for what has no state ([`shell`], [`loading`]).
//!
//! Views never fetch, store or unwrap: they receive data and callbacks and
//! turn them into semantic HTML. Every value from Bitbucket is rendered as a
//! text node (Yew escapes it); links exist only where the model
//! ([`crate::profile`]) produced an https URL. Elements that tests look for
//! carry stable ids: `app`, `main`, `sign-in`, `sign-out`, `landing`,
//! `landing-title`, `loading`, `profile`, `avatar`, `display-name`, the
//! field ids of [`crate::profile::Field`] (`nickname`, `account-id`, `uuid`,
//! `account-status`, `member-since`, `two-factor`, `location`, `website`,
//! `bitbucket-profile`), `emails`, `emails-problem*`, `problem` (with
//! `data-kind`, see [`crate::problem::ProblemKind::slug`]), `problem-title`,
//! `problem-explanation`, `problem-detail`, `checklist` (its items carry
//! `data-setting`), `retry`, `sign-in-again`, `reload`.

mod landing;
mod loading;
mod problem;
mod profile;

pub use landing::{Landing, LandingProps};
pub use loading::loading;
pub use problem::{ProblemView, ProblemViewProps};
pub use profile::{ProfileView, ProfileViewProps};

use yew::prelude::*;

/// The page frame: header with the app's name (and "Sign out" when
/// `signed_in`), `body` as the main content, and a short footer. A plain view
/// function rather than a component: it has no state, and each component
/// costs about 1 KB of wasm in Yew's machinery.
pub fn shell(signed_in: bool, on_sign_out: &Callback<MouseEvent>, body: Html) -> Html {
    html! {
        <div id="app" class="shell">
            <header class="topbar">
                <span class="brand">
                    <svg class="brand-mark" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false">
                        <path d="M3 4.5h18l-2.6 15.2a1.5 1.5 0 0 1-1.5 1.3H7.1a1.5 1.5 0 0 1-1.5-1.3z" fill="currentColor" opacity="0.9"/>
                        <path d="M9.2 9.5h5.6l-.9 5.5h-3.8z" fill="var(--surface)"/>
                    </svg>
                    {"oauth-dance"}
                </span>
                if signed_in {
                    <button id="sign-out" type="button" class="button quiet" onclick={on_sign_out.clone()}>
                        {"Sign out"}
                    </button>
                }
            </header>
            <main id="main" class="content" tabindex="-1">
                { body }
            </main>
            <footer class="footer">
                {"OAuth 2.0 with PKCE. The client secret stays on the relay and never reaches this page."}
            </footer>
        </div>
    }
}
