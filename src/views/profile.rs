//! The signed-in page: avatar, name, the account's facts and its emails.

use super::ProblemView;
use crate::profile::{Profile, Value};
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`ProfileView`].
#[derive(Properties, PartialEq)]
pub struct ProfileViewProps {
    /// What to show.
    pub profile: Rc<Profile>,
    /// The emails notice's "Try again" (loads the profile again).
    #[prop_or_default]
    pub on_retry: Callback<MouseEvent>,
    /// The emails notice's "Sign in again" (after a permission was added).
    #[prop_or_default]
    pub on_sign_in: Callback<MouseEvent>,
}

/// The profile card.
#[function_component(ProfileView)]
pub fn profile_view(props: &ProfileViewProps) -> Html {
    let profile = &props.profile;
    use_effect_with(props.profile.clone(), |_| crate::browser::mark("dance:profile-rendered"));

    let avatar = match &profile.avatar {
        Some(src) => html! {
            <img id="avatar" class="avatar" src={src.clone()} width="96" height="96"
                 alt={format!("Avatar of {}", profile.display_name)} referrerpolicy="no-referrer" />
        },
        None => html! {
            <div id="avatar" class="avatar initials" role="img" aria-label={format!("Initials of {}", profile.display_name)}>
                { profile.initials.clone() }
            </div>
        },
    };
    let handle = profile.field("nickname").and_then(|f| match &f.value {
        Value::Text(nick) if *nick != profile.display_name => Some(nick.clone()),
        _ => None,
    });
    let facts = profile.fields.iter().map(|field| {
        let value = match &field.value {
            Value::Text(text) => html! { { text.clone() } },
            Value::Link { href, text } => html! {
                <a href={href.clone()} rel="noopener noreferrer" target="_blank">{ text.clone() }</a>
            },
        };
        html! {
            <div class="fact">
                <dt>{ field.label }</dt>
                <dd id={field.id}>{ value }</dd>
            </div>
        }
    });
    let emails = profile.emails.as_ref().map(|emails| match emails {
        Ok(rows) if rows.is_empty() => html! {
            <p id="emails" class="muted">{"Bitbucket shared no email addresses."}</p>
        },
        Ok(rows) => html! {
            <ul id="emails" class="emails">
                { for rows.iter().map(|row| html! {
                    <li class="email">
                        <span class="address">{ row.address.clone() }</span>
                        <span class="badges">
                            if row.primary { <span class="badge primary">{"Primary"}</span> }
                            if row.confirmed {
                                <span class="badge ok">{"Confirmed"}</span>
                            } else {
                                <span class="badge warn">{"Unconfirmed"}</span>
                            }
                        </span>
                    </li>
                }) }
            </ul>
        },
        Err(problem) => html! {
            <ProblemView id="emails-problem" problem={problem.clone()} compact=true with_action=true
                on_retry={props.on_retry.clone()} on_sign_in={props.on_sign_in.clone()} />
        },
    });
    html! {
        <article id="profile" class="card profile" aria-labelledby="display-name">
            <header class="profile-head">
                { avatar }
                <div class="who">
                    <h1 id="display-name">{ profile.display_name.clone() }</h1>
                    if let Some(nick) = handle {
                        <p class="handle">{ format!("@{nick}") }</p>
                    }
                </div>
            </header>
            <section class="block" aria-labelledby="account-title">
                <h2 id="account-title" class="block-title">{"Account"}</h2>
                <dl class="facts">{ for facts }</dl>
            </section>
            if let Some(emails) = emails {
                <section class="block" aria-labelledby="emails-title">
                    <h2 id="emails-title" class="block-title">{"Email addresses"}</h2>
                    { emails }
                </section>
            }
            // Bitbucket has no revocation endpoint: signing out only forgets
            // the tokens here, so say where the grant itself is taken back.
            <p id="revoke-note" class="muted revoke-note">
                {"Signing out only forgets this session here. To revoke the app's access, \
                  use Bitbucket's Personal settings → App authorizations."}
            </p>
        </article>
    }
}
