//! A problem in plain words, with its checklist and its way out.

use crate::problem::{Problem, WayOut};
use yew::prelude::*;

/// Properties of [`ProblemView`].
#[derive(Properties, PartialEq)]
pub struct ProblemViewProps {
    /// What went wrong.
    pub problem: Problem,
    /// A smaller notice without buttons (above the landing page, or inside
    /// the profile for emails).
    #[prop_or_default]
    pub compact: bool,
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
    let checklist_id =
        if id == "problem" { "checklist".to_owned() } else { format!("{id}-checklist") };
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
    let action = (!props.compact).then(|| match problem.way_out {
        WayOut::Retry => html! {
            <button id="retry" type="button" class="button primary" onclick={props.on_retry.clone()}>{"Try again"}</button>
        },
        WayOut::SignInAgain => html! {
            <button id="sign-in-again" type="button" class="button primary" onclick={props.on_sign_in.clone()}>{"Sign in again"}</button>
        },
        WayOut::Reload => html! {
            <button id="reload" type="button" class="button primary" onclick={props.on_reload.clone()}>{"Reload the page"}</button>
        },
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
