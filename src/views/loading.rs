//! The waiting screen: a spinner and what we are waiting for.

use yew::prelude::*;

/// Properties of [`Loading`].
#[derive(Properties, PartialEq)]
pub struct LoadingProps {
    /// What is happening, such as "Signing you in…".
    pub message: AttrValue,
}

/// A polite live region, so screen readers announce progress.
#[function_component(Loading)]
pub fn loading(props: &LoadingProps) -> Html {
    html! {
        <section id="loading" class="card center" role="status" aria-live="polite">
            <span class="spinner" aria-hidden="true"></span>
            <p class="loading-text">{ props.message.clone() }</p>
        </section>
    }
}
