//! The root component and the controller that runs the sign-in steps.
//!
//! [`App`] owns the [`AuthState`] reducer and shares its handle through a
//! context ([`AuthContext`]); [`Screen`] reads it and picks the view. The
//! [`Controller`] does the asynchronous work in order and reports each
//! outcome as an [`Action`]:
//!
//! 0. before the wasm runs, `index.html` already shows the first screen:
//!    the landing page, or "Signing you in…" on a return from Bitbucket or
//!    with a saved session (`assets/screen.js` picks it; the markup is these
//!    same views, rendered at build time by [`crate::prerender`]). The app
//!    starts on the same screen ([`browser::first_screen`]), so taking over
//!    changes nothing on screen; a click on "Sign in" made before it ran is
//!    followed once the settings are in ([`browser::take_queued_sign_in`]);
//! 1. start-up ([`Controller::boot`]): open session storage, read and clean
//!    the callback from the address bar (before any network request), then
//!    the settings: on a return from Bitbucket, those the sign-in started
//!    with (carried in session storage, checked again), otherwise
//!    `config.json`;
//! 2. with a callback: check the state, make the sign-in's lineage and key
//!    pair, and exchange the code through the relay with a proof signed by
//!    that key (the key goes into IndexedDB in the background); without one:
//!    restore the tab's saved session, or show the landing page;
//! 3. signed in: fetch `/2.0/user` and `/2.0/user/emails` in parallel and
//!    show the profile.
//!
//! "Try again" re-runs the step that failed (the settings, the exchange with
//! the same code, or the profile); "Sign in again" starts a fresh attempt.

use crate::api;
use crate::auth::{Action, AuthState, ProfileState};
use crate::browser;
use crate::config::{CONFIG_FILE, Config};
use crate::flow::{self, Arrival, Next};
use crate::keys::{self, KeyPair};
use crate::problem::{Deployment, Permission, Problem};
use crate::profile::Profile;
use crate::storage::SessionStore;
use crate::tokens::{self, Lineage, TokenEvent, Tokens};
use crate::views::{Landing, ProblemView, ProfileView, loading, shell};
use crate::weburl::WebUrl;
use dance_protocol::bitbucket::{Email, Paginated, User};
use dance_protocol::token::TokenRequest;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use yew::prelude::*;

/// The shared sign-in state: the reducer's handle.
pub type AuthContext = UseReducerHandle<AuthState>;

/// Which step "Try again" re-runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Loading the settings (and then whatever follows).
    Boot,
    /// The code exchange.
    Exchange,
    /// Loading the profile.
    Profile,
}

/// A code exchange to run, and run again on "Try again".
#[derive(Clone)]
struct Exchange {
    request: TokenRequest,
    return_to: Option<String>,
    /// The lineage and stored key pair of this sign-in, once made: a retry
    /// signs with the same key.
    bound: Option<(Lineage, KeyPair)>,
}

/// Runs the sign-in steps and reports to the reducer. One per app.
pub struct Controller {
    dispatch: UseReducerDispatcher<AuthState>,
    base: Option<WebUrl>,
    store: RefCell<Option<SessionStore>>,
    arrival: RefCell<Option<Arrival>>,
    exchange: RefCell<Option<Exchange>>,
    config: RefCell<Option<Rc<Config>>>,
    tokens: RefCell<Option<Tokens>>,
    step: Cell<Step>,
    booted: Cell<bool>,
    /// `config.json` is on its way.
    config_loading: Cell<bool>,
    /// "Sign in" was pressed before the settings arrived: go on once they do.
    sign_in_pending: Cell<bool>,
    /// Re-renders the app when something outside the state changed (the
    /// settings arrived, so the sign-in link gets its real address).
    refresh: Callback<()>,
}

impl Controller {
    /// A controller reporting to `dispatch`.
    pub fn new(dispatch: UseReducerDispatcher<AuthState>, refresh: Callback<()>) -> Self {
        Self {
            dispatch,
            base: browser::base_url(),
            store: RefCell::new(None),
            arrival: RefCell::new(None),
            exchange: RefCell::new(None),
            config: RefCell::new(None),
            tokens: RefCell::new(None),
            step: Cell::new(Step::Boot),
            booted: Cell::new(false),
            config_loading: Cell::new(false),
            sign_in_pending: Cell::new(false),
            refresh,
        }
    }

    /// Start-up. The callback is taken out of the address bar and out of
    /// storage synchronously, before the first network request.
    pub fn boot(self: &Rc<Self>) {
        if self.booted.replace(true) {
            return;
        }
        browser::mark("dance:boot");
        let Some(base) = self.base.clone() else {
            self.dispatch
                .dispatch(Action::Failed(Problem::crashed().with_detail("no document base URL")));
            return;
        };
        let store = SessionStore::open().ok();
        let arrival = flow::take_callback(store.as_ref(), &base);
        *self.store.borrow_mut() = store;
        // Back from Bitbucket: the settings the sign-in started with came
        // back with it, so the exchange needs no request before its own.
        let carried = arrival
            .as_ref()
            .and_then(|arrival| arrival.stored.as_ref()?.config.as_deref())
            .and_then(|text| Config::parse(text).ok());
        *self.arrival.borrow_mut() = arrival;
        match carried {
            Some(config) => {
                browser::mark("dance:config-loaded");
                *self.config.borrow_mut() = Some(Rc::new(config));
                self.after_config();
            }
            // The first screen is already up: no "Getting things ready…".
            None => self.load_config(false),
        }
    }

    /// The values a checklist names.
    fn deployment(&self) -> Deployment {
        match &self.base {
            Some(base) => flow::deployment(base, self.config.borrow().as_deref()),
            None => Deployment::default(),
        }
    }

    /// Fetches `config.json`, then continues; `announce` shows "Getting
    /// things ready…" meanwhile (a retry), instead of the screen on show.
    fn load_config(self: &Rc<Self>, announce: bool) {
        self.step.set(Step::Boot);
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
                    *this.config.borrow_mut() = Some(Rc::new(config));
                    this.refresh.emit(());
                    this.after_config();
                }
                Err(problem) => this.dispatch.dispatch(Action::Failed(problem)),
            }
        });
    }

    /// With settings in hand: handle the callback, or restore the session.
    fn after_config(self: &Rc<Self>) {
        if self.store.borrow().is_none() {
            *self.store.borrow_mut() = SessionStore::open().ok();
        }
        if self.store.borrow().is_none() {
            self.dispatch.dispatch(Action::Failed(Problem::storage_unavailable()));
            return;
        }
        let Some(config) = self.config.borrow().clone() else { return };
        if self.tokens.borrow().is_none() {
            let dispatch = self.dispatch.clone();
            let on_event = Callback::from(move |event: TokenEvent| match event {
                TokenEvent::Ended(problem) => dispatch.dispatch(Action::SessionEnded(problem)),
            });
            let tokens = Tokens::new(
                self.store.borrow().clone(),
                config.relay_url.clone(),
                self.deployment(),
                on_event,
            );
            *self.tokens.borrow_mut() = Some(tokens);
        }
        let arrival = self.arrival.borrow_mut().take();
        match arrival {
            // An old answer (history, a bookmark, a second tab) opened in a
            // tab that is signed in already: the address is clean and there
            // is nothing to exchange, so the signed-in profile is what to show.
            Some(arrival) if arrival.stored.is_none() && self.restore_session() => {}
            Some(arrival) => match flow::after_callback(arrival, &self.deployment()) {
                Next::Exchange { request, return_to } => {
                    *self.exchange.borrow_mut() =
                        Some(Exchange { request, return_to, bound: None });
                    self.run_exchange();
                }
                Next::Fail(problem) => self.dispatch.dispatch(Action::Failed(problem)),
            },
            None => {
                if self.restore_session() {
                    self.sign_in_pending.set(false);
                } else if self.sign_in_pending.take() | browser::take_queued_sign_in() {
                    self.sign_in();
                } else {
                    self.dispatch.dispatch(Action::SignedOut(None));
                }
            }
        }
    }

    /// Restores the tab's saved session and loads the profile; returns
    /// whether there was a session.
    fn restore_session(self: &Rc<Self>) -> bool {
        let restored = self.tokens.borrow().as_ref().is_some_and(Tokens::restore);
        if restored {
            self.dispatch.dispatch(Action::SignedIn);
            self.load_profile();
        }
        restored
    }

    /// Exchanges the code kept for this attempt through the relay, with a
    /// proof signed by the sign-in's key.
    fn run_exchange(self: &Rc<Self>) {
        self.step.set(Step::Exchange);
        let Some(exchange) = self.exchange.borrow().clone() else {
            self.dispatch.dispatch(Action::SignedOut(None));
            return;
        };
        let Some(config) = self.config.borrow().clone() else { return };
        self.dispatch.dispatch(Action::Exchanging);
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let result = match this.bind(exchange.bound).await {
                Ok((lineage, keys, fresh)) => {
                    if fresh {
                        this.keep_key(&lineage, &keys);
                    }
                    api::token(&config.relay_url, &exchange.request, &keys, &this.deployment())
                        .await
                        .map(|response| (lineage, keys, response))
                }
                Err(problem) => Err(problem),
            };
            browser::mark("dance:exchange-done");
            match result {
                Ok((lineage, keys, response)) => {
                    // A code works once: never keep it past a success.
                    this.exchange.borrow_mut().take();
                    if let Some(tokens) = this.tokens.borrow().as_ref() {
                        tokens.start(&lineage, keys, response);
                    }
                    let back = this
                        .base
                        .as_ref()
                        .zip(exchange.return_to)
                        .and_then(|(base, path)| flow::return_path(base, &path));
                    if let Some(path) = back {
                        browser::replace_url(&path);
                    }
                    this.dispatch.dispatch(Action::SignedIn);
                    this.load_profile();
                }
                Err(problem) => {
                    if problem.way_out != crate::problem::WayOut::Retry {
                        this.drop_exchange();
                    }
                    this.dispatch.dispatch(Action::Failed(problem));
                }
            }
        });
    }

    /// Remembers a new key pair for a retry of the exchange, and stores it
    /// in IndexedDB without waiting: this tab signs with the pair in memory,
    /// and only a reloaded or duplicated tab needs the stored one. Opening
    /// the database costs the callback more than the exchange itself, so it
    /// stays off the way to the profile. Should storing fail (site data
    /// blocked after the check at sign-in), this tab works on, and a reload
    /// ends the session with "can't be renewed" in plain words.
    fn keep_key(&self, lineage: &Lineage, keys: &KeyPair) {
        if let Some(exchange) = self.exchange.borrow_mut().as_mut() {
            exchange.bound = Some((lineage.clone(), keys.clone()));
        }
        let (id, keys) = (lineage.id.clone(), keys.clone());
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(problem) = keys::store(&id, &keys).await {
                browser::log_error(&format!("the sign-in key was not stored: {}", problem.title));
            }
        });
    }

    /// The lineage and key pair of the sign-in being exchanged: those of an
    /// earlier attempt (`bound`), or new ones (`true`: to be kept).
    async fn bind(
        &self,
        bound: Option<(Lineage, KeyPair)>,
    ) -> Result<(Lineage, KeyPair, bool), Problem> {
        if let Some((lineage, keys)) = bound {
            return Ok((lineage, keys, false));
        }
        Ok((Lineage::generate(), keys::generate().await?, true))
    }

    /// Forgets the exchange, and deletes the key made for it: that sign-in
    /// will never be a session.
    fn drop_exchange(&self) {
        let dropped = self.exchange.borrow_mut().take();
        if let Some(Exchange { bound: Some((lineage, _)), .. }) = dropped {
            keys::delete(&lineage.id);
        }
    }

    /// Loads the profile and the email addresses in parallel.
    fn load_profile(self: &Rc<Self>) {
        self.step.set(Step::Profile);
        let (Some(config), Some(tokens)) =
            (self.config.borrow().clone(), self.tokens.borrow().clone())
        else {
            return;
        };
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let base = &config.api_base;
            // A site whose consumer doesn't grant `email` (config.json's
            // scopes) doesn't ask for the addresses.
            let asks_emails = config.expects_scope("email");
            let emails =
                async { if asks_emails { Some(fetch_emails(&tokens, base).await) } else { None } };
            let (user, emails) = futures::future::join(fetch_user(&tokens, base), emails).await;
            match user {
                Ok(user) => {
                    let profile = match emails {
                        Some(emails) => Profile::new(&user, emails),
                        None => Profile::without_emails(&user),
                    };
                    browser::mark("dance:profile-loaded");
                    this.dispatch.dispatch(Action::ProfileLoaded(Rc::new(profile)));
                }
                Err(problem) if tokens::is_final(&problem) => {
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
    pub fn sign_in_href(&self) -> Option<AttrValue> {
        let (config, base) = (self.config.borrow().clone()?, self.base.clone()?);
        let (_unstored, url) = flow::new_flow(&config, &base, None);
        Some(AttrValue::from(url))
    }

    /// Starts a fresh sign-in attempt and leaves for Bitbucket.
    pub fn sign_in(self: &Rc<Self>) {
        browser::mark("dance:sign-in");
        let (Some(config), Some(base)) = (self.config.borrow().clone(), self.base.clone()) else {
            // The landing shows before the settings arrive: go on once they
            // are in (loading them again if they had failed).
            self.sign_in_pending.set(true);
            self.dispatch.dispatch(Action::Redirecting);
            self.load_config(false);
            return;
        };
        let store = self.store.borrow().clone().or_else(|| SessionStore::open().ok());
        let Some(store) = store else {
            self.dispatch.dispatch(Action::Failed(Problem::storage_unavailable()));
            return;
        };
        // A new attempt abandons an exchange left for "Try again", and the
        // key made for it.
        self.drop_exchange();
        // Without WebCrypto and IndexedDB the sign-in could not finish:
        // say so now rather than after Bitbucket's consent page.
        if let Err(problem) = keys::check() {
            self.dispatch.dispatch(Action::Failed(problem));
            return;
        }
        match flow::begin(&config, &base, &store) {
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

    /// Whether the settings are in.
    pub fn has_config(&self) -> bool {
        self.config.borrow().is_some()
    }

    /// Whether this tab holds a session (tokens), whatever is on screen.
    pub fn has_session(&self) -> bool {
        self.tokens.borrow().as_ref().is_some_and(|tokens| tokens.current().is_some())
    }

    /// Signs out: every token and flow value of this app is removed.
    pub fn sign_out(&self) {
        match self.tokens.borrow().as_ref() {
            Some(tokens) => tokens.sign_out(),
            None => {
                if let Some(store) = self.store.borrow().as_ref() {
                    store.clear_ours();
                }
            }
        }
        self.drop_exchange();
        self.dispatch.dispatch(Action::SignedOut(None));
    }

    /// Re-runs the step that failed.
    pub fn retry(self: &Rc<Self>) {
        match self.step.get() {
            Step::Boot => self.load_config(true),
            Step::Exchange if self.exchange.borrow().is_some() => self.run_exchange(),
            Step::Exchange => self.load_config(true),
            Step::Profile => {
                self.dispatch.dispatch(Action::SignedIn);
                self.load_profile();
            }
        }
    }
}

/// The most pages of email addresses fetched.
const MAX_EMAIL_PAGES: usize = 10;

/// `{api_base}{path}`.
fn api_join(api_base: &WebUrl, path: &str) -> Result<WebUrl, Problem> {
    api_base.join(path).ok_or_else(|| {
        Problem::malformed("config.json", format!("api_base can't be joined with {path}"))
    })
}

/// `GET {api_base}user`.
async fn fetch_user(tokens: &Tokens, api_base: &WebUrl) -> Result<User, Problem> {
    let url = api_join(api_base, "user")?;
    api::parse_api(&tokens.get(&url, Permission::Account).await?)
}

/// `GET {api_base}user/emails`, following `next` (under the API base only)
/// for up to [`MAX_EMAIL_PAGES`] pages.
async fn fetch_emails(tokens: &Tokens, api_base: &WebUrl) -> Result<Vec<Email>, Problem> {
    let mut url = api_join(api_base, "user/emails")?;
    let mut all = Vec::new();
    for _ in 0..MAX_EMAIL_PAGES {
        let page: Paginated<Email> = api::parse_api(&tokens.get(&url, Permission::Email).await?)?;
        all.extend(page.values);
        match api::next_page(api_base, page.next.as_deref()) {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok(all)
}

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    // The screen `index.html` already shows, so taking over changes nothing.
    let state = use_reducer(|| AuthState::first(browser::first_screen()));
    let refresh = use_force_update();
    let controller = {
        let dispatch = state.dispatcher();
        let refresh = Callback::from(move |()| refresh.force_update());
        use_memo((), move |_| Rc::new(Controller::new(dispatch, refresh)))
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
        let ready = controller.has_config();
        use_effect_with((signed_out, ready), move |(signed_out, _)| {
            if *signed_out {
                href.set(controller.sign_in_href());
            }
        });
    }
    let callbacks = {
        let c = (*controller).clone();
        let (a, b, d) = (c.clone(), c.clone(), c);
        Callbacks {
            sign_in: Callback::from(move |_| a.sign_in()),
            sign_out: Callback::from(move |_| b.sign_out()),
            retry: Callback::from(move |_| d.retry()),
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
        AuthState::Exchanging => loading(RESUMING),
        AuthState::SignedOut { reason } => html! {
            <Landing href={props.href.clone()} reason={reason.clone()} on_sign_in={cb.sign_in.clone()} />
        },
        AuthState::SignedIn { profile: ProfileState::Loading } => loading("Loading your profile…"),
        AuthState::SignedIn { profile: ProfileState::Ready(profile) } => {
            html! {
                <ProfileView profile={profile.clone()} on_retry={cb.retry.clone()} on_sign_in={cb.sign_in.clone()} />
            }
        }
        AuthState::Failed(problem) => html! {
            <ProblemView problem={problem.clone()} on_retry={cb.retry.clone()}
                on_sign_in={cb.sign_in.clone()} on_reload={cb.reload.clone()} />
        },
    };
    // A problem with a session in hand (the profile failed to load, a
    // refresh could not reach the relay) offers to end it.
    let session_in_hand = state.is_signed_in()
        || matches!(&*state, AuthState::Failed(problem) if problem.kind.is_api() || props.has_session);
    shell(session_in_hand, &cb.sign_out, body)
}
