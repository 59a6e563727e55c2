//! The sign-in state: one enum, changed only by a pure reducer.
//!
//! [`AuthState`] is everything the interface needs to decide what to show.
//! It holds no tokens (those live in [`crate::tokens`]), so it can be
//! printed, compared and tested freely. The app keeps it in a
//! `use_reducer` and shares the handle through a context; asynchronous work
//! (in [`crate::app`]) reports back by dispatching [`Action`]s. The reducer
//! ignores actions that arrive too late to matter, such as a profile that
//! finishes loading after the person signed out, so no ordering of network
//! replies can put the interface in a wrong state.

use crate::problem::Problem;
use crate::profile::Profile;
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
    Exchanging,
    /// Signed in.
    SignedIn {
        /// The profile, or that it is still loading.
        profile: ProfileState,
    },
    /// Stuck: the view shows the problem and its way out.
    Failed(Problem),
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Work restarted from the top (start-up or a retry).
    Loading,
    /// Signed out, with the reason if any.
    SignedOut(Option<Problem>),
    /// Leaving for Bitbucket.
    Redirecting,
    /// The code exchange started.
    Exchanging,
    /// Tokens are in hand; the profile starts loading.
    SignedIn,
    /// The profile arrived.
    ProfileLoaded(Rc<Profile>),
    /// Something failed; show it.
    Failed(Problem),
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
            (_, Action::Exchanging) => AuthState::Exchanging,
            (_, Action::SignedIn) => AuthState::SignedIn { profile: ProfileState::Loading },
            // A profile only lands on a signed-in page; late arrivals after a
            // sign-out or a failure are dropped.
            (AuthState::SignedIn { .. }, Action::ProfileLoaded(profile)) => {
                AuthState::SignedIn { profile: ProfileState::Ready(profile) }
            }
            (state, Action::ProfileLoaded(_)) => state.clone(),
            (_, Action::Failed(problem)) => AuthState::Failed(problem),
            // An ended session signs out whatever was on screen for it, but
            // never replaces a sign-out that already has its reason.
            (
                AuthState::SignedIn { .. }
                | AuthState::Failed(_)
                | AuthState::Loading
                | AuthState::Resuming,
                Action::SessionEnded(problem),
            ) => AuthState::SignedOut { reason: Some(problem) },
            (state, Action::SessionEnded(_)) => state.clone(),
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
            vec![Action::Exchanging, Action::SignedIn, Action::ProfileLoaded(profile())],
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
        let failed = AuthState::Failed(Problem::api_server(500));
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
            check(AuthState::Exchanging, vec![Action::SessionEnded(reason)]),
            AuthState::Exchanging
        );
    }

    #[test]
    fn failures_and_retries() {
        let problem = Problem::relay_slow(20);
        let end = check(AuthState::Exchanging, vec![Action::Failed(problem.clone())]);
        assert_eq!(end, AuthState::Failed(problem));
        assert_eq!(check(end, vec![Action::Loading]), AuthState::Loading);
        assert_eq!(
            check(AuthState::SignedOut { reason: None }, vec![Action::Redirecting]),
            AuthState::Redirecting
        );
    }

    #[test]
    fn unchanged_state_keeps_its_allocation() {
        let state = Rc::new(AuthState::Loading);
        let next = state.clone().reduce(Action::Loading);
        assert!(Rc::ptr_eq(&state, &next), "no re-render when nothing changed");
    }
}
