//! The signed-out page: what the app does and the sign-in button.

use super::ProblemView;
use crate::problem::Problem;
use yew::prelude::*;

/// Properties of [`Landing`].
#[derive(Properties, PartialEq)]
pub struct LandingProps {
    /// An authorize URL for the link's `href`, so the button is a real
    /// link; a click starts a fresh attempt of its own.
    #[prop_or_default]
    pub href: Option<AttrValue>,
    /// Why the person was signed out, if it wasn't their choice.
    #[prop_or_default]
    pub reason: Option<Problem>,
    /// Called by the sign-in button.
    pub on_sign_in: Callback<MouseEvent>,
}

/// The landing page.
#[function_component(Landing)]
pub fn landing(props: &LandingProps) -> Html {
    let on_sign_in = props.on_sign_in.clone();
    let onclick = Callback::from(move |event: MouseEvent| {
        // Let the browser open a new tab or window as asked; a plain click
        // starts a fresh attempt in this tab.
        if event.ctrl_key() || event.meta_key() || event.shift_key() || event.button() != 0 {
            return;
        }
        event.prevent_default();
        on_sign_in.emit(event);
    });
    html! {
        <>
            if let Some(reason) = &props.reason {
                <ProblemView problem={reason.clone()} compact=true />
            }
            <section id="landing" class="card hero" aria-labelledby="landing-title">
                <h1 id="landing-title">{"See your Bitbucket profile"}</h1>
                <p class="lead">
                    {"Sign in with your Bitbucket account and this page shows your profile and email \
                      addresses. It can read your account, and nothing else."}
                </p>
                <a id="sign-in" class="button primary big"
                   href={props.href.clone().unwrap_or_else(|| AttrValue::from("#"))} {onclick}>
                    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
                        <path d="M3 4.5h18l-2.6 15.2a1.5 1.5 0 0 1-1.5 1.3H7.1a1.5 1.5 0 0 1-1.5-1.3z" fill="currentColor"/>
                        <path d="M9.2 9.5h5.6l-.9 5.5h-3.8z" fill="var(--accent)"/>
                    </svg>
                    {"Sign in with Bitbucket"}
                </a>
                <ol class="steps" aria-label="How signing in works">
                    <li><strong>{"Approve on Bitbucket"}</strong>
                        <span>{"Bitbucket asks whether this site may read your account and email addresses."}</span></li>
                    <li><strong>{"The relay finishes the sign-in"}</strong>
                        <span>{"It swaps a one-time code for an access token, adding the secret only it knows."}</span></li>
                    <li><strong>{"Your browser reads your profile"}</strong>
                        <span>{"Straight from Bitbucket's API. Your password never reaches this site."}</span></li>
                </ol>
            </section>
        </>
    }
}
