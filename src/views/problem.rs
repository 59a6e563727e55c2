//! A problem in plain words, with its checklist and its way out.

use crate::problem::{Problem, WayOut};
use yew::prelude::*;

/// Properties of [`ProblemView`].
#[derive(Properties, PartialEq)]
pub struct ProblemViewProps {
    /// What went wrong.
    pub problem: Problem,
    /// A smaller notice (above the landing page, or inside the profile for
    /// emails), without its button unless `with_action`.
    #[prop_or_default]
    pub compact: bool,
    /// Offer the way out even when `compact` (the emails notice does; the
    /// notice above the landing page has the sign-in button below it).
    #[prop_or_default]
    pub with_action: bool,
    /// Called by "Try again".
    #[prop_or_default]
    pub on_retry: Callback<MouseEvent>,
    /// Called by "Sign in again".
    #[prop_or_default]
    pub on_sign_in: Callback<MouseEvent>,
    /// Called by "Reload".
    #[prop_or_default]
    pub on_reload: Callback<MouseEvent>,
    /// The element id; the parts' ids derive from it (`problem-title`, ...,
    /// and `checklist` for the main one, `{id}-checklist` otherwise).
    #[prop_or(AttrValue::Static("problem"))]
    pub id: AttrValue,
}

/// Shows a [`Problem`]: title, explanation, the set-up checklist when the
/// deployment is at fault, technical detail folded away, and one button.
#[function_component(ProblemView)]
pub fn problem_view(props: &ProblemViewProps) -> Html {
    let problem = &props.problem;
    let setup = problem.is_setup_problem();
    let class =
        classes!("card", "problem", setup.then_some("setup"), props.compact.then_some("compact"));
    let id = props.id.clone();
    let title_id = format!("{id}-title");
    let explanation_id = format!("{id}-explanation");
    let detail_id = format!("{id}-detail");
    // The main view's parts keep short ids (`checklist`, `retry`, ...);
    // another view's are prefixed with its id.
    let part = |name: &str| if id == "problem" { name.to_owned() } else { format!("{id}-{name}") };
    let checklist_id = part("checklist");
    let title = if props.compact {
        html! { <h2 id={title_id.clone()} class="problem-title">{ problem.title.clone() }</h2> }
    } else {
        html! { <h1 id={title_id.clone()} class="problem-title">{ problem.title.clone() }</h1> }
    };
    let checklist = setup.then(|| {
        html! {
            <div class="checklist-box">
                <h2 class="checklist-title">{"To fix, for whoever runs this site"}</h2>
                <ol id={checklist_id} class="checklist">
                    { for problem.checklist.iter().map(|item| html! {
                        <li data-setting={item.name.clone()}>
                            <span class="setting">{ item.name.clone() }</span>
                            <span class="fix">{ item.fix.clone() }</span>
                        </li>
                    }) }
                </ol>
            </div>
        }
    });
    let detail = problem.detail.as_ref().map(|detail| {
        html! {
            <details id={detail_id} class="detail">
                <summary>{"Technical details"}</summary>
                <code>{ detail.clone() }</code>
            </details>
        }
    });
    let action = (!props.compact || props.with_action).then(|| {
        let (name, label, onclick) = match problem.way_out {
            WayOut::Retry => ("retry", "Try again", &props.on_retry),
            WayOut::SignInAgain => ("sign-in-again", "Sign in again", &props.on_sign_in),
            WayOut::Reload => ("reload", "Reload the page", &props.on_reload),
        };
        html! {
            <button id={part(name)} type="button" class="button primary" onclick={onclick.clone()}>{ label }</button>
        }
    });
    html! {
        <section {id} {class} role="alert" data-kind={problem.kind.slug()} aria-labelledby={title_id}>
            <div class="problem-head">
                <span class="problem-icon" aria-hidden="true">{ if setup { "\u{2699}" } else { "!" } }</span>
                { title }
            </div>
            <p id={explanation_id} class="problem-explanation">{ problem.explanation.clone() }</p>
            { for checklist }
            { for detail }
            if let Some(action) = action {
                <div class="actions">{ action }</div>
            }
        </section>
    }
}
