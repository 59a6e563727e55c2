//! The waiting screen: a spinner and what we are waiting for.

use yew::prelude::*;

/// What is happening ("Signing you in…") with a spinner, in a polite live
/// region, so screen readers announce progress.
pub fn loading(message: &'static str) -> Html {
    html! {
        <section id="loading" class="card center" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            <p class="loading-text">{ message }</p>
        </section>
    }
}
