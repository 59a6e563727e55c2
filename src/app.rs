//! The root component and the controller that runs the sign-in steps.
//!
//! [`App`] owns the [`AuthState`] reducer and shares its handle through a
//! context ([`AuthContext`]); [`Screen`] reads it and picks the view. The
//! [`Controller`] does the asynchronous work in order and reports each
//! outcome as an [`Action`]; what a step hands on to the next (the code
//! exchange kept for "Try again", the sign-in's key, which step to re-run)
//! travels in those actions and lives in the state, so the reducer tells
//! the whole story:
//!
//! 0. before the wasm runs, `index.html` already shows the first screen:
//!    the landing page, or "Signing you in…" on a return from Bitbucket or
//!    with a saved session (`assets/screen.js` picks it; the markup is these
//!    same views, rendered at build time by `crate::prerender`). The app
//!    starts on the same screen ([`browser::shows_resuming_screen`]), so
//!    taking over changes nothing on screen; a click on "Sign in" made
//!    before it ran is followed once the settings are in
//!    ([`browser::take_queued_sign_in`]);
//! 1. start-up ([`Controller::boot`]): open session storage, read and clean
//!    the callback from the address bar (before any network request), then
//!    the settings: on a return from Bitbucket, those the sign-in started
//!    with (carried in session storage, checked again), otherwise
//!    `config.json`;
//! 2. with a callback: check the state, make the sign-in's lineage and key
//!    pair, and exchange the code through the relay with a proof signed by
//!    that key (the key goes into IndexedDB in the background); without one:
//!    restore the tab's saved session, or show the landing page;
//! 3. signed in: fetch `/2.0/user` and `/2.0/user/emails` in parallel
//!    ([`api::fetch_user`], [`api::fetch_emails`]) and show the profile.
//!
//! "Try again" re-runs the step that failed ([`Retry`]: the settings, the
//! exchange with the same code and key, or the profile); "Sign in again"
//! starts a fresh attempt.

use crate::api;
use crate::auth::{Action, AuthState, Exchange, FirstScreen, ProfileState, Retry};
use crate::browser;
use crate::config::{CONFIG_FILE, Config};
use crate::deployment::Deployment;
use crate::flow::{self, Arrival, Next};
use crate::keys::{self, KeyPair};
use crate::problem::{Problem, WayOut};
use crate::profile::Profile;
use crate::session::{self, Lineage};
use crate::storage::SessionStore;
use crate::tokens::{TokenEvent, Tokens};
use crate::views::{Landing, ProblemView, ProfileView, loading, shell};
use crate::weburl::WebUrl;
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use yew::prelude::*;

/// The shared sign-in state: the reducer's handle.
pub type AuthContext = UseReducerHandle<AuthState>;

/// Runs the sign-in steps and reports to the reducer. One per app.
///
/// Where signing in stands, and what one step hands to the next, is the
/// reducer's; the settings are the app's state ([`App`] hands them in).
/// The controller keeps only what is made once and then serves every step
/// (session storage, the token keeper), and two flags between a click and
/// the request for the settings in flight.
pub struct Controller {
    dispatch: UseReducerDispatcher<AuthState>,
    /// Hands the settings to the app once they are in (which re-renders
    /// it, so the sign-in link gets its real address).
    on_config: Callback<Rc<Config>>,
    base: Option<WebUrl>,
    /// This tab's session storage, once opened.
    store: OnceCell<SessionStore>,
    /// The token keeper, made once the settings are in.
    tokens: OnceCell<Tokens>,
    /// `config.json` is on its way.
    config_loading: Cell<bool>,
    /// "Sign in" was pressed before the settings arrived: go on once they do.
    sign_in_pending: Cell<bool>,
}

impl Controller {
    /// A controller reporting to `dispatch`, and the settings to `on_config`.
    pub fn new(dispatch: UseReducerDispatcher<AuthState>, on_config: Callback<Rc<Config>>) -> Self {
        Self {
            dispatch,
            on_config,
            base: flow::page_base(),
            store: OnceCell::new(),
            tokens: OnceCell::new(),
            config_loading: Cell::new(false),
            sign_in_pending: Cell::new(false),
        }
    }

    /// Start-up, once per app. The callback is taken out of the address bar
    /// and out of storage synchronously, before the first network request.
    pub fn boot(self: &Rc<Self>) {
        browser::mark("dance:boot");
        let Some(base) = self.base.clone() else {
            self.dispatch
                .dispatch(Action::Failed(Problem::crashed().with_detail("no document base URL")));
            return;
        };
        let arrival = flow::take_callback(self.store(), &base);
        // Back from Bitbucket: the settings the sign-in started with came
        // back with it, so the exchange needs no request before its own.
        let carried = arrival
            .as_ref()
            .and_then(|arrival| arrival.stored.as_ref()?.config.as_deref())
            .and_then(|text| Config::parse(text).ok());
        match carried {
            Some(config) => {
                browser::mark("dance:config-loaded");
                let config = Rc::new(config);
                self.on_config.emit(config.clone());
                self.after_config(config, arrival);
            }
            // The first screen is already up: no "Getting things ready…".
            None => self.load_config(false, arrival),
        }
    }

    /// This tab's session storage, opened on first use; `None` when the
    /// browser refuses it.
    fn store(&self) -> Option<&SessionStore> {
        if self.store.get().is_none()
            && let Ok(store) = SessionStore::open()
        {
            let _ = self.store.set(store);
        }
        self.store.get()
    }

    /// The values a checklist names.
    fn deployment(&self, config: Option<&Config>) -> Deployment {
        match &self.base {
            Some(base) => Deployment::new(base, config),
            None => Deployment::default(),
        }
    }

    /// Fetches `config.json`, then goes on, with the return from Bitbucket
    /// (`arrival`) that waits for it; `announce` shows "Getting things
    /// ready…" meanwhile (a retry), instead of the screen on show.
    fn load_config(self: &Rc<Self>, announce: bool, arrival: Option<Arrival>) {
        if announce {
            self.dispatch.dispatch(Action::Loading);
        }
        if self.config_loading.replace(true) {
            return;
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(url) = this.base.as_ref().and_then(|b| b.join(CONFIG_FILE)) else {
                return;
            };
            let loaded = api::fetch_config(&url).await;
            this.config_loading.set(false);
            match loaded {
                Ok(config) => {
                    browser::mark("dance:config-loaded");
                    let config = Rc::new(config);
                    this.on_config.emit(config.clone());
                    this.after_config(config, arrival);
                }
                Err(problem) => {
                    this.dispatch.dispatch(Action::SettingsFailed(problem, arrival.map(Rc::new)));
                }
            }
        });
    }

    /// With settings in hand: handle the callback, or restore the session.
    fn after_config(self: &Rc<Self>, config: Rc<Config>, arrival: Option<Arrival>) {
        let Some(store) = self.store().cloned() else {
            self.dispatch.dispatch(Action::Failed(Problem::storage_unavailable()));
            return;
        };
        self.tokens.get_or_init(|| {
            let dispatch = self.dispatch.clone();
            let on_event = Callback::from(move |event: TokenEvent| match event {
                TokenEvent::Ended(problem) => dispatch.dispatch(Action::SessionEnded(problem)),
            });
            Tokens::new(
                Some(store),
                config.relay_url.clone(),
                self.deployment(Some(&config)),
                on_event,
            )
        });
        match arrival {
            // An old answer (history, a bookmark, a second tab) opened in a
            // tab that is signed in already: the address is clean and there
            // is nothing to exchange, so the signed-in profile is what to show.
            Some(arrival) if arrival.stored.is_none() && self.restore_session(&config) => {}
            Some(arrival) => match flow::after_callback(arrival, &self.deployment(Some(&config))) {
                Next::Exchange { request, return_to } => {
                    let exchange = Exchange { request, return_to, bound: None };
                    self.run_exchange(config, Rc::new(exchange));
                }
                Next::Fail(problem) => self.dispatch.dispatch(Action::Failed(problem)),
            },
            None => {
                if self.restore_session(&config) {
                    self.sign_in_pending.set(false);
                } else if self.sign_in_pending.take() | browser::take_queued_sign_in() {
                    self.begin_sign_in(Some(config));
                } else {
                    self.dispatch.dispatch(Action::SignedOut(None));
                }
            }
        }
    }

    /// Restores the tab's saved session and loads the profile; returns
    /// whether there was a session.
    fn restore_session(self: &Rc<Self>, config: &Rc<Config>) -> bool {
        let restored = self.tokens.get().is_some_and(Tokens::restore);
        if restored {
            self.dispatch.dispatch(Action::SignedIn);
            self.load_profile(config.clone());
        }
        restored
    }

    /// Exchanges the code of `exchange` through the relay, with a proof
    /// signed by the sign-in's key (made now, unless a failed attempt made
    /// it already).
    fn run_exchange(self: &Rc<Self>, config: Rc<Config>, exchange: Rc<Exchange>) {
        self.dispatch.dispatch(Action::Exchanging(exchange.clone()));
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let deployment = this.deployment(Some(&config));
            let result = async {
                let (lineage, keys) = match &exchange.bound {
                    Some(bound) => bound.clone(),
                    None => this.bind().await?,
                };
                match api::token(&config.relay_url, &exchange.request, &keys, &deployment).await {
                    Ok(response) => Ok((lineage, keys, response)),
                    Err(problem) => {
                        // A code that won't be tried again never becomes a
                        // session: its key goes.
                        if problem.way_out != WayOut::Retry {
                            keys::delete(&lineage.id);
                        }
                        Err(problem)
                    }
                }
            }
            .await;
            browser::mark("dance:exchange-done");
            match result {
                Ok((lineage, keys, response)) => {
                    if let Some(tokens) = this.tokens.get() {
                        tokens.start(&lineage, keys, response);
                    }
                    let back = this
                        .base
                        .as_ref()
                        .zip(exchange.return_to.clone())
                        .and_then(|(base, path)| flow::return_path(base, &path));
                    if let Some(path) = back {
                        browser::replace_url(&path);
                    }
                    // The state forgets the code: it works once.
                    this.dispatch.dispatch(Action::SignedIn);
                    this.load_profile(config);
                }
                Err(problem) => this.dispatch.dispatch(Action::Failed(problem)),
            }
        });
    }

    /// Makes the lineage and key pair of the sign-in being exchanged. The
    /// pair goes to the state, for a retry of the exchange, and into
    /// IndexedDB without waiting: this tab signs with the pair in memory,
    /// and only a reloaded or duplicated tab needs the stored one. Opening
    /// the database costs the callback more than the exchange itself, so it
    /// stays off the way to the profile. Should storing fail (site data
    /// blocked after the check at sign-in), this tab works on, and a reload
    /// ends the session with "can't be renewed" in plain words.
    async fn bind(&self) -> Result<(Lineage, KeyPair), Problem> {
        let (lineage, keys) = (Lineage::generate(), keys::generate().await?);
        self.dispatch.dispatch(Action::KeyMade(lineage.clone(), keys.clone()));
        let (id, stored) = (lineage.id.clone(), keys.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(problem) = keys::store(&id, &stored).await {
                browser::log_error(&format!("the sign-in key was not stored: {}", problem.title));
            }
        });
        Ok((lineage, keys))
    }

    /// Deletes the key made for the exchange `state` keeps for "Try
    /// again": it is abandoned, and that sign-in will never be a session.
    fn drop_exchange(state: &AuthState) {
        if let Some(Exchange { bound: Some((lineage, _)), .. }) = state.kept_exchange() {
            keys::delete(&lineage.id);
        }
    }

    /// Loads the profile and the email addresses in parallel.
    fn load_profile(self: &Rc<Self>, config: Rc<Config>) {
        let Some(tokens) = self.tokens.get().cloned() else { return };
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let (api_base, deployment) = (&config.api_base, &this.deployment(Some(&config)));
            // A site whose consumer doesn't grant `email` (config.json's
            // scopes) doesn't ask for the addresses.
            let asks_emails = config.expects_scope("email");
            let user =
                tokens.call_with_fresh_token(|token| api::fetch_user(api_base, token, deployment));
            let emails = async {
                if !asks_emails {
                    return None;
                }
                let emails = tokens
                    .call_with_fresh_token(|token| api::fetch_emails(api_base, token, deployment));
                Some(emails.await)
            };
            let (user, emails) = futures::future::join(user, emails).await;
            match user {
                Ok(user) => {
                    let profile = match emails {
                        Some(emails) => Profile::new(&user, emails),
                        None => Profile::without_emails(&user),
                    };
                    browser::mark("dance:profile-loaded");
                    this.dispatch.dispatch(Action::ProfileLoaded(Rc::new(profile)));
                }
                Err(problem) if session::is_final(&problem) => {
                    this.dispatch.dispatch(Action::SessionEnded(problem));
                }
                Err(problem) => this.dispatch.dispatch(Action::Failed(problem)),
            }
        });
    }

    /// An authorize URL for the sign-in link's `href`, so the button is a
    /// real link. Nothing is stored for it: a click always starts a fresh,
    /// stored attempt ([`Controller::sign_in`]), and a link opened some other
    /// way (a new tab) comes back to a clear "already used" problem.
    pub fn sign_in_href(&self, config: &Config) -> Option<AttrValue> {
        let (_unstored, url) = flow::new_flow(config, self.base.as_ref()?, None);
        Some(AttrValue::from(url))
    }

    /// Starts a fresh sign-in attempt and leaves for Bitbucket; an exchange
    /// that `state` keeps for "Try again" is abandoned, with the key made
    /// for it.
    pub fn sign_in(self: &Rc<Self>, config: Option<Rc<Config>>, state: &AuthState) {
        Self::drop_exchange(state);
        self.begin_sign_in(config);
    }

    /// [`Controller::sign_in`], with no exchange to abandon.
    fn begin_sign_in(self: &Rc<Self>, config: Option<Rc<Config>>) {
        browser::mark("dance:sign-in");
        let (Some(config), Some(base)) = (config, self.base.clone()) else {
            // The landing shows before the settings arrive: go on once they
            // are in (loading them again if they had failed).
            self.sign_in_pending.set(true);
            self.dispatch.dispatch(Action::Redirecting);
            self.load_config(false, None);
            return;
        };
        let Some(store) = self.store() else {
            self.dispatch.dispatch(Action::Failed(Problem::storage_unavailable()));
            return;
        };
        // Without WebCrypto and IndexedDB the sign-in could not finish:
        // say so now rather than after Bitbucket's consent page.
        if let Err(problem) = keys::check() {
            self.dispatch.dispatch(Action::Failed(problem));
            return;
        }
        match flow::begin(&config, &base, store) {
            Ok(url) => {
                self.dispatch.dispatch(Action::Redirecting);
                if !browser::navigate(&url) {
                    self.dispatch.dispatch(Action::Failed(
                        Problem::crashed().with_detail("navigation failed"),
                    ));
                }
            }
            Err(problem) => self.dispatch.dispatch(Action::Failed(problem)),
        }
    }

    /// Whether this tab holds a session (tokens), whatever is on screen.
    pub fn has_session(&self) -> bool {
        self.tokens.get().is_some_and(|tokens| tokens.current().is_some())
    }

    /// Signs out: every token and flow value of this app is removed, and
    /// the key of an exchange `state` keeps for "Try again".
    pub fn sign_out(&self, state: &AuthState) {
        match self.tokens.get() {
            Some(tokens) => tokens.sign_out(),
            None => {
                if let Some(store) = self.store.get() {
                    store.clear_ours();
                }
            }
        }
        Self::drop_exchange(state);
        self.dispatch.dispatch(Action::SignedOut(None));
    }

    /// Re-runs the step that failed in `state` ([`AuthState::try_again`]).
    pub fn retry(self: &Rc<Self>, state: &AuthState, config: Option<Rc<Config>>) {
        match (state.try_again(), config) {
            (Retry::Settings(arrival), _) => {
                self.load_config(true, arrival.map(|arrival| Arrival::clone(&arrival)));
            }
            (Retry::Exchange(exchange), Some(config)) => self.run_exchange(config, exchange),
            (Retry::Profile, Some(config)) => {
                self.dispatch.dispatch(Action::SignedIn);
                self.load_profile(config);
            }
            // The settings are in whenever these states exist; should they
            // not be, start over from them, and let go of the kept key.
            (Retry::Exchange(_) | Retry::Profile, None) => {
                Self::drop_exchange(state);
                self.load_config(true, None);
            }
        }
    }
}

/// The screen `index.html` shows first, as `assets/screen.js` picked it.
fn first_screen() -> FirstScreen {
    if browser::shows_resuming_screen() { FirstScreen::Resuming } else { FirstScreen::Landing }
}

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    // The screen `index.html` already shows, so taking over changes nothing.
    let state = use_reducer(|| AuthState::first(first_screen()));
    // The settings, once in.
    let config = use_state(|| None::<Rc<Config>>);
    let controller = {
        let dispatch = state.dispatcher();
        let set_config = config.setter();
        let on_config = Callback::from(move |loaded| set_config.set(Some(loaded)));
        use_memo((), move |_| Rc::new(Controller::new(dispatch, on_config)))
    };
    // The app's first screen is now in the document, beside the built-in
    // one it matches: remove that one before the browser paints again.
    use_effect_with((), |_| browser::take_over_page());
    {
        let controller = (*controller).clone();
        use_effect_with((), move |_| controller.boot());
    }
    // A real href for the sign-in link, prepared whenever the landing shows.
    let href = use_state(|| None::<AttrValue>);
    {
        let controller = (*controller).clone();
        let href = href.setter();
        let signed_out = matches!(*state, AuthState::SignedOut { .. });
        let config = (*config).clone();
        let ready = config.is_some();
        use_effect_with((signed_out, ready), move |(signed_out, _)| {
            if *signed_out {
                href.set(config.and_then(|config| controller.sign_in_href(&config)));
            }
        });
    }
    let callbacks = {
        let (a, b, d) = ((*controller).clone(), (*controller).clone(), (*controller).clone());
        let (state_a, state_b, state_d) = (state.clone(), state.clone(), state.clone());
        let (config_a, config_d) = ((*config).clone(), (*config).clone());
        Callbacks {
            sign_in: Callback::from(move |_| a.sign_in(config_a.clone(), &state_a)),
            sign_out: Callback::from(move |_| b.sign_out(&state_b)),
            retry: Callback::from(move |_| d.retry(&state_d, config_d.clone())),
            reload: Callback::from(|_| browser::reload()),
        }
    };
    html! {
        <ContextProvider<AuthContext> context={state}>
            <Screen {callbacks} href={(*href).clone()} has_session={controller.has_session()} />
        </ContextProvider<AuthContext>>
    }
}

/// What the screen says while a return from Bitbucket or a saved session
/// is picked up (the first screen `index.html` shows then, too).
pub const RESUMING: &str = "Signing you in…";

/// The callbacks the screens offer.
#[derive(Clone, PartialEq)]
pub struct Callbacks {
    /// Starts a sign-in.
    pub sign_in: Callback<MouseEvent>,
    /// Signs out.
    pub sign_out: Callback<MouseEvent>,
    /// Re-runs the failed step.
    pub retry: Callback<MouseEvent>,
    /// Reloads the page.
    pub reload: Callback<MouseEvent>,
}

/// Properties of [`Screen`].
#[derive(Properties, PartialEq)]
pub struct ScreenProps {
    /// What the buttons do.
    pub callbacks: Callbacks,
    /// The prepared sign-in href.
    #[prop_or_default]
    pub href: Option<AttrValue>,
    /// Whether tokens are stored: a problem shown then offers "Sign out".
    #[prop_or_default]
    pub has_session: bool,
}

/// Picks the view for the current [`AuthState`] (read from the context).
#[function_component(Screen)]
pub fn screen(props: &ScreenProps) -> Html {
    let Some(state) = use_context::<AuthContext>() else {
        return html! { <ProblemView problem={Problem::crashed()} /> };
    };
    let cb = &props.callbacks;
    let body = match &*state {
        AuthState::Loading => loading("Getting things ready…"),
        AuthState::Resuming => loading(RESUMING),
        AuthState::Redirecting => loading("Taking you to Bitbucket…"),
        AuthState::Exchanging(_) => loading(RESUMING),
        AuthState::SignedOut { reason } => html! {
            <Landing href={props.href.clone()} reason={reason.clone()} on_sign_in={cb.sign_in.clone()} />
        },
        AuthState::SignedIn { profile: ProfileState::Loading } => loading("Loading your profile…"),
        AuthState::SignedIn { profile: ProfileState::Ready(profile) } => {
            html! {
                <ProfileView profile={profile.clone()} on_retry={cb.retry.clone()} on_sign_in={cb.sign_in.clone()} />
            }
        }
        AuthState::Failed { problem, .. } => html! {
            <ProblemView problem={problem.clone()} on_retry={cb.retry.clone()}
                on_sign_in={cb.sign_in.clone()} on_reload={cb.reload.clone()} />
        },
    };
    // A problem with a session in hand (the profile failed to load, a
    // refresh could not reach the relay) offers to end it.
    let session_in_hand = state.is_signed_in()
        || matches!(&*state, AuthState::Failed { problem, .. } if problem.kind.is_api() || props.has_session);
    shell(session_in_hand, &cb.sign_out, body)
}
