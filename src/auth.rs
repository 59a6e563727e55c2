//! The sign-in state: one enum, changed only by a pure reducer.
//!
//! [`AuthState`] is everything the interface needs to decide what to show,
//! and everything the steps need to go on: the code exchange under way
//! (kept for "Try again", with the sign-in's key once made) and which step
//! "Try again" re-runs ([`Retry`]). It holds no tokens (those live in
//! [`crate::tokens`]), so it can be printed (the code and the verifier
//! redact themselves), compared and tested freely. The app keeps it in a
//! `use_reducer` and shares the handle through a context; asynchronous work
//! (in [`crate::app`]) reports back by dispatching [`Action`]s. The reducer
//! ignores actions that arrive too late to matter, such as a profile that
//! finishes loading after the person signed out, so no ordering of network
//! replies can put the interface in a wrong state.

use crate::flow::Arrival;
use crate::keys::KeyPair;
use crate::problem::{Problem, WayOut};
use crate::profile::Profile;
use crate::session::Lineage;
use dance_protocol::token::TokenRequest;
use std::rc::Rc;
use yew::Reducible;

/// Where signing in stands.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AuthState {
    /// Starting up: reading the settings, the callback or the stored session.
    #[default]
    Loading,
    /// Starting up on a return from Bitbucket or with a saved session:
    /// "Signing you in…" from the first paint.
    Resuming,
    /// Not signed in; `reason` says why when it wasn't the person's choice
    /// (a refused sign-in, an ended session).
    SignedOut {
        /// Why the person is signed out, if it needs saying.
        reason: Option<Problem>,
    },
    /// On the way to Bitbucket's authorization page.
    Redirecting,
    /// Back from Bitbucket, swapping the code for tokens through the relay.
    Exchanging(Rc<Exchange>),
    /// Signed in.
    SignedIn {
        /// The profile, or that it is still loading.
        profile: ProfileState,
    },
    /// Stuck: the view shows the problem and its way out.
    Failed {
        /// What went wrong.
        problem: Problem,
        /// What "Try again" re-runs.
        retry: Retry,
    },
}

/// A code exchange: run, and run again on "Try again".
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The token request for the relay.
    pub request: TokenRequest,
    /// The page to restore afterwards.
    pub return_to: Option<String>,
    /// The lineage and key pair of this sign-in, once made: a retry signs
    /// with the same key.
    pub bound: Option<(Lineage, KeyPair)>,
}

/// Two exchanges are the same when they present the same request, for the
/// same page, bound to the same lineage (a lineage has one key pair).
impl PartialEq for Exchange {
    fn eq(&self, other: &Self) -> bool {
        fn lineage(exchange: &Exchange) -> Option<&Lineage> {
            exchange.bound.as_ref().map(|(lineage, _)| lineage)
        }
        self.request == other.request
            && self.return_to == other.return_to
            && lineage(self) == lineage(other)
    }
}

impl Eq for Exchange {}

/// What "Try again" re-runs: the step that was under way when it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Loading the settings, and whatever follows; with the return from
    /// Bitbucket that was waiting for them, if any.
    Settings(Option<Rc<Arrival>>),
    /// The code exchange, with the same code and key.
    Exchange(Rc<Exchange>),
    /// Loading the profile.
    Profile,
}

/// The screen `index.html` shows before the app runs (picked by
/// `assets/screen.js`), and so the app's first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstScreen {
    /// The landing page.
    Landing,
    /// "Signing you in…": back from Bitbucket, or a saved session.
    Resuming,
}

/// The profile of a signed-in person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileState {
    /// `/2.0/user` and `/2.0/user/emails` are on their way.
    Loading,
    /// Loaded.
    Ready(Rc<Profile>),
}

/// What happened, as reported to the reducer.
#[derive(Clone, Debug)]
pub enum Action {
    /// Work restarted from the top (start-up or a retry).
    Loading,
    /// Signed out, with the reason if any.
    SignedOut(Option<Problem>),
    /// Leaving for Bitbucket.
    Redirecting,
    /// The code exchange started.
    Exchanging(Rc<Exchange>),
    /// The key pair of the exchange under way was made: a retry signs with
    /// it.
    KeyMade(Lineage, KeyPair),
    /// Tokens are in hand; the profile starts loading.
    SignedIn,
    /// The profile arrived.
    ProfileLoaded(Rc<Profile>),
    /// Something failed; show it. "Try again" re-runs the step under way.
    Failed(Problem),
    /// The settings could not be loaded; a return from Bitbucket waits
    /// for them.
    SettingsFailed(Problem, Option<Rc<Arrival>>),
    /// The session ended on its own (refresh refused, or signed out in
    /// another tab). Only meaningful while signed in.
    SessionEnded(Problem),
}

impl AuthState {
    /// The state the app starts in: the screen `index.html` already shows.
    pub fn first(screen: FirstScreen) -> AuthState {
        match screen {
            FirstScreen::Landing => AuthState::SignedOut { reason: None },
            FirstScreen::Resuming => AuthState::Resuming,
        }
    }

    /// The next state. Pure: the same state and action always give the same result.
    pub fn next(&self, action: Action) -> AuthState {
        match (self, action) {
            (_, Action::Loading) => AuthState::Loading,
            (_, Action::SignedOut(reason)) => AuthState::SignedOut { reason },
            (_, Action::Redirecting) => AuthState::Redirecting,
            (_, Action::Exchanging(exchange)) => AuthState::Exchanging(exchange),
            // The key belongs to the exchange under way; a late one (the
            // person gave up meanwhile) is not kept.
            (AuthState::Exchanging(exchange), Action::KeyMade(lineage, keys))
                if exchange.bound.is_none() =>
            {
                let bound = Some((lineage, keys));
                AuthState::Exchanging(Rc::new(Exchange { bound, ..Exchange::clone(exchange) }))
            }
            (state, Action::KeyMade(..)) => state.clone(),
            (_, Action::SignedIn) => AuthState::SignedIn { profile: ProfileState::Loading },
            // A profile only lands on a signed-in page; late arrivals after a
            // sign-out or a failure are dropped.
            (AuthState::SignedIn { .. }, Action::ProfileLoaded(profile)) => {
                AuthState::SignedIn { profile: ProfileState::Ready(profile) }
            }
            (state, Action::ProfileLoaded(_)) => state.clone(),
            (state, Action::Failed(problem)) => {
                AuthState::Failed { retry: state.step_under_way(&problem), problem }
            }
            (_, Action::SettingsFailed(problem, arrival)) => {
                AuthState::Failed { problem, retry: Retry::Settings(arrival) }
            }
            // An ended session signs out whatever was on screen for it, but
            // never replaces a sign-out that already has its reason.
            (
                AuthState::SignedIn { .. }
                | AuthState::Failed { .. }
                | AuthState::Loading
                | AuthState::Resuming,
                Action::SessionEnded(problem),
            ) => AuthState::SignedOut { reason: Some(problem) },
            (state, Action::SessionEnded(_)) => state.clone(),
        }
    }

    /// What "Try again" re-runs after `problem` stopped this state's step:
    /// the exchange when its problem says to try again (otherwise the code
    /// is spent and its key deleted), the profile when signed in, else
    /// the settings. A failure of a new sign-in, or of anything on a
    /// problem's page, starts over from the settings.
    fn step_under_way(&self, problem: &Problem) -> Retry {
        match self {
            AuthState::Exchanging(exchange) if problem.way_out == WayOut::Retry => {
                Retry::Exchange(exchange.clone())
            }
            AuthState::SignedIn { .. } => Retry::Profile,
            _ => Retry::Settings(None),
        }
    }

    /// What "Try again" re-runs in this state: the step that failed, or
    /// the profile when signed in (its email addresses may have failed).
    pub fn try_again(&self) -> Retry {
        match self {
            AuthState::Failed { retry, .. } => retry.clone(),
            AuthState::SignedIn { .. } => Retry::Profile,
            _ => Retry::Settings(None),
        }
    }

    /// The code exchange kept for "Try again", if any.
    pub fn kept_exchange(&self) -> Option<&Exchange> {
        match self {
            AuthState::Exchanging(exchange)
            | AuthState::Failed { retry: Retry::Exchange(exchange), .. } => Some(exchange),
            _ => None,
        }
    }

    /// Whether the person is signed in (whatever the profile's state).
    pub fn is_signed_in(&self) -> bool {
        matches!(self, AuthState::SignedIn { .. })
    }
}

impl Reducible for AuthState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let next = self.next(action);
        if next == *self { self } else { Rc::new(next) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_protocol::bitbucket::User;

    fn exchange() -> Rc<Exchange> {
        use dance_protocol::{AuthorizationCode, PkceVerifier};
        Rc::new(Exchange {
            request: TokenRequest::AuthorizationCode {
                code: AuthorizationCode::new("c0de"),
                redirect_uri: "https://user.github.io/repo/".into(),
                code_verifier: PkceVerifier::new("v".repeat(43)),
            },
            return_to: Some("/repo/deep".into()),
            bound: None,
        })
    }

    fn profile() -> Rc<Profile> {
        Rc::new(Profile::new(
            &User { display_name: Some("Alice".into()), ..User::default() },
            Ok(vec![]),
        ))
    }

    /// Runs `actions` from `start` and returns the final state.
    fn check(start: AuthState, actions: Vec<Action>) -> AuthState {
        let mut state = Rc::new(start);
        for action in actions {
            state = state.reduce(action);
        }
        (*state).clone()
    }

    #[test]
    fn starts_on_the_screen_the_page_shows() {
        assert_eq!(AuthState::default(), AuthState::Loading);
        assert_eq!(AuthState::first(FirstScreen::Landing), AuthState::SignedOut { reason: None });
        assert_eq!(AuthState::first(FirstScreen::Resuming), AuthState::Resuming);
        // A saved session that turns out to be over signs out with its reason.
        let reason = Problem::session_expired("invalid_grant");
        assert_eq!(
            check(AuthState::Resuming, vec![Action::SessionEnded(reason.clone())]),
            AuthState::SignedOut { reason: Some(reason) }
        );
    }

    #[test]
    fn the_happy_path() {
        let end = check(
            AuthState::Loading,
            vec![
                Action::Exchanging(exchange()),
                Action::SignedIn,
                Action::ProfileLoaded(profile()),
            ],
        );
        assert_eq!(end, AuthState::SignedIn { profile: ProfileState::Ready(profile()) });
        assert!(end.is_signed_in());
    }

    #[test]
    fn a_late_profile_is_dropped() {
        let end = check(
            AuthState::SignedIn { profile: ProfileState::Loading },
            vec![Action::SignedOut(None), Action::ProfileLoaded(profile())],
        );
        assert_eq!(end, AuthState::SignedOut { reason: None });
        let failed = AuthState::Failed { problem: Problem::api_server(500), retry: Retry::Profile };
        assert_eq!(check(failed.clone(), vec![Action::ProfileLoaded(profile())]), failed);
    }

    #[test]
    fn an_ended_session_signs_out_with_its_reason() {
        let reason = Problem::session_expired("invalid_grant");
        let end = check(
            AuthState::SignedIn { profile: ProfileState::Ready(profile()) },
            vec![Action::SessionEnded(reason.clone())],
        );
        assert_eq!(end, AuthState::SignedOut { reason: Some(reason.clone()) });
        assert!(!end.is_signed_in());

        // It doesn't disturb someone who is already signed out or mid sign-in.
        let out = AuthState::SignedOut { reason: Some(Problem::access_denied(None)) };
        assert_eq!(check(out.clone(), vec![Action::SessionEnded(reason.clone())]), out);
        assert_eq!(
            check(AuthState::Exchanging(exchange()), vec![Action::SessionEnded(reason)]),
            AuthState::Exchanging(exchange())
        );
    }

    #[test]
    fn failures_and_retries() {
        let problem = Problem::relay_slow(20);
        let end = check(AuthState::Exchanging(exchange()), vec![Action::Failed(problem.clone())]);
        assert_eq!(end, AuthState::Failed { problem, retry: Retry::Exchange(exchange()) });
        assert_eq!(check(end, vec![Action::Loading]), AuthState::Loading);
        assert_eq!(
            check(AuthState::SignedOut { reason: None }, vec![Action::Redirecting]),
            AuthState::Redirecting
        );
    }

    #[test]
    fn try_again_reruns_the_step_that_failed() {
        let slow = Problem::relay_slow(20);
        let failed = |start: AuthState, problem: &Problem| match check(
            start,
            vec![Action::Failed(problem.clone())],
        ) {
            AuthState::Failed { retry, .. } => retry,
            other => panic!("not failed: {other:?}"),
        };
        assert_eq!(failed(AuthState::Resuming, &slow), Retry::Settings(None));
        assert_eq!(failed(AuthState::Loading, &slow), Retry::Settings(None));
        assert_eq!(failed(AuthState::SignedOut { reason: None }, &slow), Retry::Settings(None));
        assert_eq!(failed(AuthState::Redirecting, &slow), Retry::Settings(None));
        assert_eq!(
            failed(AuthState::SignedIn { profile: ProfileState::Loading }, &slow),
            Retry::Profile
        );
        assert_eq!(failed(AuthState::Exchanging(exchange()), &slow), Retry::Exchange(exchange()));
        // A spent code is not tried again: the settings are.
        let spent = Problem::code_rejected("invalid_grant");
        assert_ne!(spent.way_out, WayOut::Retry);
        assert_eq!(failed(AuthState::Exchanging(exchange()), &spent), Retry::Settings(None));
        // A new sign-in that fails on a problem's page abandons the
        // exchange kept there.
        let kept = AuthState::Failed { problem: slow.clone(), retry: Retry::Exchange(exchange()) };
        assert_eq!(kept.kept_exchange(), Some(&*exchange()));
        let after = check(kept, vec![Action::Failed(Problem::storage_unavailable())]);
        assert_eq!(after.kept_exchange(), None);
        // "Try again" on a page that failed re-runs its step; on the
        // profile page (the email addresses failed), the profile.
        let failed_exchange =
            AuthState::Failed { problem: slow.clone(), retry: Retry::Exchange(exchange()) };
        assert_eq!(failed_exchange.try_again(), Retry::Exchange(exchange()));
        let shown = AuthState::SignedIn { profile: ProfileState::Ready(profile()) };
        assert_eq!(shown.try_again(), Retry::Profile);
        assert_eq!(AuthState::Resuming.try_again(), Retry::Settings(None));
        // The settings' failure keeps the return from Bitbucket waiting.
        let arrival = Rc::new(crate::flow::Arrival {
            callback: Err(dance_protocol::authorize::CallbackError::NotACallback),
            stored: None,
        });
        assert_eq!(
            check(
                AuthState::Resuming,
                vec![Action::SettingsFailed(slow.clone(), Some(arrival.clone()))]
            ),
            AuthState::Failed { problem: slow, retry: Retry::Settings(Some(arrival)) }
        );
    }

    #[test]
    fn the_exchange_keeps_its_key_for_a_retry() {
        let lineage = Lineage::generate();
        let bound = check(
            AuthState::Exchanging(exchange()),
            vec![Action::KeyMade(lineage.clone(), crate::keys::KeyPair::placeholder())],
        );
        let kept = bound.kept_exchange().expect("still exchanging");
        assert_eq!(kept.bound.as_ref().map(|(l, _)| l), Some(&lineage));
        assert_ne!(bound, AuthState::Exchanging(exchange()), "a bound exchange is another one");
        // Its retry signs with the same key.
        let failed = check(bound, vec![Action::Failed(Problem::relay_slow(20))]);
        let retry = failed.kept_exchange().expect("kept for a retry");
        assert_eq!(retry.bound.as_ref().map(|(l, _)| l), Some(&lineage));
        // A key made after the person moved on is not kept.
        let out = AuthState::SignedOut { reason: None };
        assert_eq!(
            check(
                out.clone(),
                vec![Action::KeyMade(Lineage::generate(), crate::keys::KeyPair::placeholder())]
            ),
            out
        );
        // Success forgets the code.
        let signed_in = check(AuthState::Exchanging(exchange()), vec![Action::SignedIn]);
        assert_eq!(signed_in.kept_exchange(), None);
    }

    #[test]
    fn unchanged_state_keeps_its_allocation() {
        let state = Rc::new(AuthState::Loading);
        let next = state.clone().reduce(Action::Loading);
        assert!(Rc::ptr_eq(&state, &next), "no re-render when nothing changed");
    }
}
