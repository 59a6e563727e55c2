//! The tokens of a signed-in tab, and keeping them fresh.
//!
//! # Lifetime
//! A [`Session`] remembers when its access token expires and when to
//! refresh it: a fifth of the lifetime early, at most five minutes (so
//! Bitbucket's 7200 s tokens refresh at 6900 s). A timer refreshes then;
//! and if a call still meets Bitbucket's `401 "Access token expired."`
//! (a laptop asleep past the timer), [`Tokens::get`] refreshes once
//! and retries the call once. A refusal of the refresh ends the session
//! with a clear signed-out state; there is no second attempt and no loop.
//! An answer that arrives after the person signed out is dropped, never
//! stored.
//!
//! # Several tabs, one rotating refresh token
//! Bitbucket rotates refresh tokens: each refresh kills the token it used.
//! Tabs normally hold separate sessions (session storage is per tab), but a
//! tab opened from another (duplicate tab, `window.open`) starts with a
//! *copy* of the opener's session storage, so two tabs can hold the same
//! refresh token. If both refreshed, the slower one would present a dead
//! token and lose the session (oidc-client-ts#430). Each session therefore
//! carries a random, non-secret `lineage` id (shared by every tab that
//! inherited it) and a `generation` (how often it was refreshed), and two
//! browser features, both limited to this origin, keep the tabs of a
//! lineage in step:
//!
//! - **Web Locks**: a tab refreshes only while holding the exclusive lock
//!   `oauth-dance:refresh:<lineage>:<generation>`, so at most one refresh of
//!   a given refresh token is ever in flight in the browser. The tab that
//!   refreshed *keeps* that lock (until its next refresh, sign-out or
//!   close): a tab still waiting for it can only be holding the dead token,
//!   and must never get to use it.
//! - **BroadcastChannel** (`"oauth-dance"`) carries the result: after a
//!   refresh the tab posts `{lineage, generation, session}`. Every tab of the
//!   same lineage at an older generation adopts the session into its own
//!   session storage and stops waiting for the lock (it withdraws the
//!   request with an `AbortSignal`, and should the browser grant it anyway,
//!   gives the lock straight back). A tab that finds the lock taken also posts
//!   `{lineage, generation, ask: true}`; any tab further along answers with
//!   its session, so a tab that was away (navigated elsewhere, discarded)
//!   when the news went out catches up instead of using its dead token.
//!   Sign-out posts `{lineage, generation}` without a session, and the tabs
//!   of that lineage sign out too.
//!
//! So a tab either refreshes (holding the lock) or receives the new tokens;
//! it never presents a rotated token, whatever order the lock grant and the
//! message arrive in. A tab that waits 30 s for another tab's refresh gives
//! up with a retryable problem. Nothing is written to `localStorage`, and no
//! token leaves the origin. (The `storage` event can't do this job: it
//! fires only for `localStorage`, and session storage is not shared between
//! tabs.) Without Web Locks (very old browsers, non-secure contexts),
//! refreshes are serialised within the tab only, by an async mutex.

use crate::api;
use crate::problem::{Deployment, Permission, Problem, ProblemKind};
use crate::storage::{Key, SessionStore};
use crate::weburl::WebUrl;
use dance_protocol::token::{TokenRequest, TokenResponse};
use dance_protocol::{AccessToken, RefreshToken, State};
use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use yew::Callback;

/// The prefix of the Web Locks that serialise refreshes across tabs.
pub const REFRESH_LOCK: &str = "oauth-dance:refresh:";
/// How long a tab waits for another tab's refresh before giving up.
pub const WAIT_FOR_OTHER_TAB_MS: u32 = 30_000;
/// The BroadcastChannel on which tabs share rotated tokens.
pub const CHANNEL: &str = "oauth-dance";
/// The most a refresh is brought forward: five minutes.
const MAX_MARGIN_MS: u64 = 300_000;
/// The longest token lifetime taken at its word: ten years. Longer ones (a
/// broken or hostile answer) are read as this, so every time the session
/// stores stays a whole number JSON.parse reads exactly (below 2^53).
const MAX_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;

/// The tokens of one signed-in session. `Debug` redacts the tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token for the API.
    pub access_token: AccessToken,
    /// The refresh token; replaced on every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires (ms since the epoch), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// When to refresh (ms since the epoch), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_at_ms: Option<u64>,
    /// The scopes granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A random id of the sign-in this session descends from, shared by the
    /// tabs that inherited it. Not a secret.
    #[serde(default)]
    pub lineage: String,
    /// How many refreshes this lineage went through.
    #[serde(default)]
    pub generation: u32,
}

impl Session {
    /// A session from a token response received at `now_ms`. When a refresh
    /// answer has no new refresh token, the `previous` one stays valid
    /// (RFC 6749 6).
    pub fn from_response(response: TokenResponse, now_ms: u64, previous: Option<&Session>) -> Self {
        let lifetime_ms = response.expires_in.map(|s| s.min(MAX_LIFETIME_S) * 1000);
        Self {
            access_token: response.access_token,
            refresh_token: response
                .refresh_token
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at_ms: lifetime_ms.map(|life| now_ms.saturating_add(life)),
            refresh_at_ms: lifetime_ms
                .map(|life| now_ms.saturating_add(life - (life / 5).min(MAX_MARGIN_MS))),
            scope: response.scope,
            lineage: match previous {
                Some(p) => p.lineage.clone(),
                None => State::generate().secret().chars().take(16).collect(),
            },
            generation: previous.map_or(0, |p| p.generation.saturating_add(1)),
        }
    }

    /// The Web Lock a refresh of this session must hold.
    pub fn lock_name(&self) -> String {
        format!("{REFRESH_LOCK}{}:{}", self.lineage, self.generation)
    }

    /// Milliseconds until the refresh is due (0 when overdue), or `None` when
    /// this session can't or needn't be refreshed.
    pub fn refresh_delay_ms(&self, now_ms: u64) -> Option<u64> {
        self.refresh_token.as_ref()?;
        Some(self.refresh_at_ms?.saturating_sub(now_ms))
    }
}

/// A message between tabs on the [`CHANNEL`], about the session `lineage`:
/// with a `session`, "it reached `generation`, here it is"; with `ask`,
/// "I am stuck at `generation`: whoever is further, please tell"; with
/// neither, "it signed out". (A plain struct rather than a tagged enum: it
/// keeps the bundle smaller.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The lineage concerned.
    pub lineage: String,
    /// The sender's generation.
    pub generation: u32,
    /// The new session after a refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// A request for a newer session of the lineage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ask: bool,
}

impl Message {
    /// "The lineage of `session` was refreshed into `session`."
    pub fn rotated(session: &Session) -> Self {
        Self { session: Some(session.clone()), ..Self::signed_out(session) }
    }

    /// "The lineage of `session` signed out."
    pub fn signed_out(session: &Session) -> Self {
        Self {
            lineage: session.lineage.clone(),
            generation: session.generation,
            session: None,
            ask: false,
        }
    }

    /// "I hold `stale`: does any tab have a newer session of its lineage?"
    pub fn ask(stale: &Session) -> Self {
        Self { ask: true, ..Self::signed_out(stale) }
    }
}

/// What a tab does with a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adopt {
    /// Not about this tab's session: ignore it.
    Ignore,
    /// Take this session as ours.
    Replace(Session),
    /// Our session ended in another tab.
    End,
    /// Another tab is behind us: send it our session.
    Answer,
}

/// Decides what a message means for a tab holding `current`. Pure.
pub fn adopt(current: Option<&Session>, message: Message) -> Adopt {
    let Some(current) = current else { return Adopt::Ignore };
    if current.lineage.is_empty() || current.lineage != message.lineage {
        return Adopt::Ignore;
    }
    if message.ask {
        return if current.generation > message.generation { Adopt::Answer } else { Adopt::Ignore };
    }
    match message.session {
        Some(session) if session.generation > current.generation => Adopt::Replace(session),
        Some(_) => Adopt::Ignore,
        None => Adopt::End,
    }
}

/// Whether a failed refresh means the session is over (rather than a
/// transient failure worth trying again later).
pub fn is_final(problem: &Problem) -> bool {
    matches!(
        problem.kind,
        ProblemKind::SessionExpired | ProblemKind::CodeRejected | ProblemKind::RelayClientRejected
    )
}

/// News for the app from the token keeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenEvent {
    /// The session is over (refresh refused, or signed out in another tab);
    /// show the signed-out page with this reason.
    Ended(Problem),
}

/// The token keeper of this tab: memory, session storage, the refresh timer
/// and the cross-tab channel. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct Tokens {
    inner: Rc<Inner>,
}

/// The channel's message handler, kept alive as long as the keeper.
type Listener = Closure<dyn FnMut(web_sys::MessageEvent)>;

/// Where the outcome of one lock request goes. Whoever takes the sender
/// first decides: the lock callback (it refreshes), or an abandonment (a
/// newer session arrived, or the wait timed out), which drops it.
type Reply = Rc<RefCell<Option<oneshot::Sender<Result<Session, Problem>>>>>;

/// A lock request that waits for another tab.
struct Waiter {
    reply: Reply,
    controller: Option<web_sys::AbortController>,
}

impl Waiter {
    /// Ends the wait now and withdraws the request. Dropping the sender is
    /// what wakes the waiting refresh: the abort alone is not enough, as
    /// Chromium can leave a request that is aborted within milliseconds of
    /// being made in the queue, its promise never settling (seen in the
    /// end-to-end suite, about one run in ten). If such a request is granted
    /// later, its callback finds no sender and returns at once, releasing
    /// the lock.
    fn abandon(&self) {
        self.reply.borrow_mut().take();
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}

/// Withdraws a [`Waiter`] when dropped: abandons it (harmless once it is
/// answered, as the sender is gone and a granted lock ignores its signal)
/// and takes it off the list.
struct Withdraw<'a> {
    inner: &'a Inner,
    waiter: Rc<Waiter>,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.waiter.abandon();
        self.inner.waiting.borrow_mut().retain(|w| !Rc::ptr_eq(w, &self.waiter));
    }
}

/// The shared state behind [`Tokens`].
struct Inner {
    session: RefCell<Option<Session>>,
    store: Option<SessionStore>,
    relay_url: WebUrl,
    deployment: Deployment,
    on_event: Callback<TokenEvent>,
    channel: Option<web_sys::BroadcastChannel>,
    listener: RefCell<Option<Listener>>,
    timer: RefCell<Option<gloo_timers::callback::Timeout>>,
    in_tab: futures::lock::Mutex<()>,
    /// [`WAIT_FOR_OTHER_TAB_MS`], unless a test shortened it.
    wait_ms: std::cell::Cell<u32>,
    /// Keeps the lock of the generation this tab last refreshed away from;
    /// dropping it releases that lock.
    held: RefCell<Option<oneshot::Sender<()>>>,
    /// Lock requests waiting for another tab; abandoned when a newer
    /// session arrives.
    waiting: RefCell<Vec<Rc<Waiter>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(channel) = &self.channel {
            channel.set_onmessage(None);
            channel.close();
        }
    }
}

impl Tokens {
    /// A keeper for `relay_url`, reporting to `on_event`. Opens the channel.
    pub fn new(
        store: Option<SessionStore>,
        relay_url: WebUrl,
        deployment: Deployment,
        on_event: Callback<TokenEvent>,
    ) -> Self {
        let channel = web_sys::BroadcastChannel::new(CHANNEL).ok();
        let inner = Rc::new(Inner {
            session: RefCell::new(None),
            store,
            relay_url,
            deployment,
            on_event,
            channel,
            listener: RefCell::new(None),
            timer: RefCell::new(None),
            in_tab: futures::lock::Mutex::new(()),
            wait_ms: std::cell::Cell::new(WAIT_FOR_OTHER_TAB_MS),
            held: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
        });
        if let Some(channel) = &inner.channel {
            let weak: Weak<Inner> = Rc::downgrade(&inner);
            let listener = Listener::new(move |event: web_sys::MessageEvent| {
                if let Some(inner) = weak.upgrade() {
                    Tokens { inner }.receive(event.data().as_string().as_deref());
                }
            });
            channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
            *inner.listener.borrow_mut() = Some(listener);
        }
        Self { inner }
    }

    /// Waits at most `ms` for another tab's refresh instead of
    /// [`WAIT_FOR_OTHER_TAB_MS`], so that tests can reach the deadline.
    pub fn with_wait_for_other_tab(self, ms: u32) -> Self {
        self.inner.wait_ms.set(ms);
        self
    }

    /// Loads a session saved by an earlier page load of this tab. Returns
    /// whether there was one.
    pub fn restore(&self) -> bool {
        let saved = self.inner.store.as_ref().and_then(|s| s.get_json::<Session>(Key::Session));
        let found = saved.is_some();
        *self.inner.session.borrow_mut() = saved;
        self.schedule();
        found
    }

    /// Starts a new session (a new lineage) from the code exchange's answer.
    pub fn start(&self, response: TokenResponse) -> Session {
        let session = Session::from_response(response, now_ms(), None);
        self.replace(session.clone());
        session
    }

    /// Takes over an existing session, as a tab that inherited it does.
    pub fn resume(&self, session: Session) {
        self.replace(session);
    }

    /// The current session.
    pub fn current(&self) -> Option<Session> {
        self.inner.session.borrow().clone()
    }

    /// Signs out: forgets the tokens and every value this app stored in the
    /// tab, and tells tabs sharing the session.
    pub fn sign_out(&self) {
        if let Some(session) = self.current() {
            self.post(&Message::signed_out(&session));
        }
        self.forget();
    }

    /// An authenticated `GET` of the API ([`api::get`]) with the current
    /// access token; on "Access token expired." refreshes once and tries
    /// once more. Returns the body of the 200.
    pub async fn get(&self, url: &WebUrl, permission: Permission) -> Result<String, Problem> {
        let session =
            self.current().ok_or_else(|| Problem::session_expired("no session in this tab"))?;
        let deployment = &self.inner.deployment;
        match api::get(url, &session.access_token, permission, deployment).await {
            Err(problem) if problem.kind == ProblemKind::TokenExpired => {
                let fresh = self.refresh(session).await?;
                api::get(url, &fresh.access_token, permission, deployment).await
            }
            other => other,
        }
    }

    /// Refreshes `stale`, unless someone (this tab or another) already did.
    /// See the module documentation for how tabs share this.
    pub async fn refresh(&self, stale: Session) -> Result<Session, Problem> {
        let _in_tab = self.inner.in_tab.lock().await;
        if let Some(fresher) = self.fresher_than(&stale)? {
            return Ok(fresher);
        }
        match lock_manager() {
            Some(locks) => self.refresh_under_lock(locks, stale).await,
            None => self.refresh_locked(stale).await.map(|(session, _)| session),
        }
    }

    /// The current session when it is newer than `stale`; an error when the
    /// tab signed out meanwhile.
    fn fresher_than(&self, stale: &Session) -> Result<Option<Session>, Problem> {
        match self.current() {
            None => Err(Problem::session_expired("signed out meanwhile")),
            Some(current) if current != *stale => Ok(Some(current)),
            Some(_) => Ok(None),
        }
    }

    /// Requests the lock of `stale`'s generation and refreshes while holding
    /// it; gives up when a newer session arrives from another tab (the wait
    /// is abandoned) or after [`WAIT_FOR_OTHER_TAB_MS`] (or what a test set).
    async fn refresh_under_lock(
        &self,
        (locks, request): (JsValue, js_sys::Function),
        stale: Session,
    ) -> Result<Session, Problem> {
        let (tx, rx) = oneshot::channel::<Result<Session, Problem>>();
        let reply: Reply = Rc::new(RefCell::new(Some(tx)));
        let waiter = Rc::new(Waiter {
            reply: reply.clone(),
            controller: web_sys::AbortController::new().ok(),
        });
        let options = js_sys::Object::new();
        if let Some(controller) = &waiter.controller {
            let _ =
                js_sys::Reflect::set(&options, &JsValue::from_str("signal"), &controller.signal());
        }
        self.inner.waiting.borrow_mut().push(waiter.clone());
        // However this wait ends (an answer, an abandonment, or this future
        // being dropped), the request is withdrawn and forgotten.
        let _withdraw = Withdraw { inner: &self.inner, waiter: waiter.clone() };
        let wait_ms = self.inner.wait_ms.get();
        let deadline = {
            let waiter = waiter.clone();
            gloo_timers::callback::Timeout::new(wait_ms, move || waiter.abandon())
        };

        let (this, slot, name, task) =
            (self.clone(), reply.clone(), stale.lock_name(), stale.clone());
        // Runs once the lock is granted; the lock is held until the promise
        // it returns settles.
        let callback = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                let Some(tx) = slot.borrow_mut().take() else { return Ok(JsValue::UNDEFINED) };
                match this.refresh_locked(task).await {
                    Ok((session, true)) => {
                        // Keep this generation's lock; replacing the previous
                        // sender releases the lock of the generation before.
                        let (release, released) = oneshot::channel::<()>();
                        this.inner.held.replace(Some(release));
                        let _ = tx.send(Ok(session));
                        let _ = released.await;
                    }
                    Ok((session, false)) => {
                        let _ = tx.send(Ok(session));
                    }
                    Err(problem) => {
                        let _ = tx.send(Err(problem));
                    }
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        match request.call3(&locks, &JsValue::from_str(&name), &options, &callback) {
            Ok(promise) => {
                // When the request ends without running the callback (it
                // failed), dropping the sender wakes the wait below. Awaiting
                // the promise also keeps an abort's rejection from being
                // reported as unhandled.
                wasm_bindgen_futures::spawn_local(async move {
                    if let Ok(promise) = promise.dyn_into::<js_sys::Promise>() {
                        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                    }
                    reply.borrow_mut().take();
                });
            }
            Err(_) => {
                reply.borrow_mut().take();
            }
        }
        // If another tab already refreshed this generation (and holds its
        // lock), it answers with the newer session, which ends the wait;
        // this covers a tab that was away when the news went out.
        self.post(&Message::ask(&stale));
        let outcome = rx.await;
        drop(deadline);
        match outcome {
            Ok(result) => result,
            // Abandoned: a newer session arrived, or the wait timed out.
            Err(oneshot::Canceled) => match self.fresher_than(&stale)? {
                Some(fresher) => Ok(fresher),
                None => Err(Problem::relay_slow(wait_ms.div_ceil(1000))
                    .with_detail("waited for another tab's refresh")),
            },
        }
    }

    /// The refresh itself, run while holding the lock (or, without Web Locks,
    /// the in-tab mutex). Returns the session and whether this call rotated it.
    async fn refresh_locked(&self, stale: Session) -> Result<(Session, bool), Problem> {
        if let Some(fresher) = self.fresher_than(&stale)? {
            return Ok((fresher, false));
        }
        let Some(previous) = stale.refresh_token.clone() else {
            let problem = Problem::session_expired("Bitbucket issued no refresh token");
            self.end(problem.clone());
            return Err(problem);
        };
        let request = TokenRequest::RefreshToken { refresh_token: previous };
        match api::token(&self.inner.relay_url, &request, &self.inner.deployment).await {
            // Signed out (here or in another tab) while the request was in
            // flight: the new tokens are not kept, stored or shared.
            Ok(_) if self.current().is_none() => {
                Err(Problem::session_expired("signed out during the refresh"))
            }
            Ok(response) => {
                let session = Session::from_response(response, now_ms(), Some(&stale));
                self.replace(session.clone());
                self.post(&Message::rotated(&session));
                Ok((session, true))
            }
            Err(problem) => {
                if let Some(fresher) = self.fresher_than(&stale)? {
                    return Ok((fresher, false));
                }
                if is_final(&problem) {
                    self.end(problem.clone());
                }
                Err(problem)
            }
        }
    }

    /// Keeps `session` in memory and storage and re-arms the timer.
    fn replace(&self, session: Session) {
        if let Some(store) = &self.inner.store {
            let _ = store.set_json(Key::Session, &session);
        }
        *self.inner.session.borrow_mut() = Some(session);
        self.schedule();
        self.abandon_waits();
    }

    /// Ends this tab's waits for another tab's refresh.
    fn abandon_waits(&self) {
        let waiting: Vec<Rc<Waiter>> = self.inner.waiting.borrow_mut().drain(..).collect();
        for waiter in waiting {
            waiter.abandon();
        }
    }

    /// Forgets everything this tab stored.
    fn forget(&self) {
        *self.inner.session.borrow_mut() = None;
        self.inner.timer.borrow_mut().take();
        self.inner.held.borrow_mut().take();
        self.abandon_waits();
        if let Some(store) = &self.inner.store {
            store.clear_ours();
        }
    }

    /// Ends the session for `reason` and tells the app.
    fn end(&self, reason: Problem) {
        self.forget();
        self.inner.on_event.emit(TokenEvent::Ended(reason));
    }

    /// Arms the refresh timer for the current session.
    fn schedule(&self) {
        let delay = self.current().and_then(|s| s.refresh_delay_ms(now_ms()));
        let timer = delay.map(|ms| {
            let weak = Rc::downgrade(&self.inner);
            // setTimeout takes at most 2^31 - 1 ms (about 24 days).
            let ms = u32::try_from(ms.min(i32::MAX as u64)).unwrap_or(u32::MAX >> 1);
            gloo_timers::callback::Timeout::new(ms, move || {
                let Some(inner) = weak.upgrade() else { return };
                let tokens = Tokens { inner };
                wasm_bindgen_futures::spawn_local(async move {
                    if let Some(stale) = tokens.current()
                        && let Err(problem) = tokens.refresh(stale).await
                    {
                        crate::browser::log_error(&format!(
                            "oauth-dance: refresh failed: {problem}"
                        ));
                    }
                });
            })
        });
        *self.inner.timer.borrow_mut() = timer;
    }

    /// Posts a message to the other tabs.
    fn post(&self, message: &Message) {
        if let (Some(channel), Ok(text)) = (&self.inner.channel, serde_json::to_string(message)) {
            let _ = channel.post_message(&JsValue::from_str(&text));
        }
    }

    /// Handles a message from another tab.
    fn receive(&self, data: Option<&str>) {
        let Some(message) = data.and_then(|text| crate::json::from_str::<Message>(text).ok())
        else {
            return;
        };
        match adopt(self.current().as_ref(), message) {
            Adopt::Ignore => {}
            Adopt::Replace(session) => self.replace(session),
            Adopt::End => self.end(Problem::signed_out_elsewhere()),
            Adopt::Answer => {
                if let Some(current) = self.current() {
                    self.post(&Message::rotated(&current));
                }
            }
        }
    }
}

/// The browser clock in whole milliseconds.
fn now_ms() -> u64 {
    crate::browser::now_ms().max(0.0) as u64
}

/// `navigator.locks` and its `request` method, when the browser has them.
fn lock_manager() -> Option<(JsValue, js_sys::Function)> {
    let navigator = web_sys::window()?.navigator();
    let locks = js_sys::Reflect::get(&navigator, &JsValue::from_str("locks")).ok()?;
    if locks.is_undefined() || locks.is_null() {
        return None;
    }
    let request = js_sys::Reflect::get(&locks, &JsValue::from_str("request")).ok()?;
    Some((locks, request.dyn_into::<js_sys::Function>().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(expires_in: Option<u64>, refresh: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: AccessToken::new("at"),
            token_type: "bearer".into(),
            expires_in,
            refresh_token: refresh.map(RefreshToken::new),
            scope: Some("account email".into()),
        }
    }

    #[test]
    fn refresh_is_brought_forward() {
        let s = Session::from_response(response(Some(7200), Some("r1")), 1_000, None);
        assert_eq!(s.expires_at_ms, Some(1_000 + 7_200_000));
        assert_eq!(
            s.refresh_at_ms,
            Some(1_000 + 7_200_000 - 300_000),
            "five minutes early at most"
        );
        assert_eq!(s.refresh_delay_ms(1_000), Some(6_900_000));
        assert_eq!(s.refresh_delay_ms(99_999_999), Some(0), "overdue means now");

        let short = Session::from_response(response(Some(10), Some("r1")), 0, None);
        assert_eq!(short.refresh_at_ms, Some(8_000), "a fifth early for short lifetimes");
    }

    #[test]
    fn no_refresh_without_a_refresh_token_or_expiry() {
        assert_eq!(
            Session::from_response(response(Some(7200), None), 0, None).refresh_delay_ms(0),
            None
        );
        assert_eq!(
            Session::from_response(response(None, Some("r")), 0, None).refresh_delay_ms(0),
            None
        );
    }

    #[test]
    fn the_old_refresh_token_stays_when_none_is_issued() {
        let first = Session::from_response(response(Some(7200), Some("r1")), 0, None);
        let next = Session::from_response(response(Some(7200), None), 10, Some(&first));
        assert_eq!(next.refresh_token, Some(RefreshToken::new("r1")));
        let rotated = Session::from_response(response(Some(7200), Some("r2")), 10, Some(&first));
        assert_eq!(rotated.refresh_token, Some(RefreshToken::new("r2")));
    }

    #[test]
    fn lineage_and_generation_follow_refreshes() {
        let first = Session::from_response(response(Some(7200), Some("r1")), 0, None);
        let other = Session::from_response(response(Some(7200), Some("r1")), 0, None);
        assert_eq!(first.lineage.len(), 16);
        assert_ne!(first.lineage, other.lineage, "every sign-in starts its own lineage");
        assert_eq!(first.generation, 0);
        let next = Session::from_response(response(Some(7200), Some("r2")), 10, Some(&first));
        assert_eq!((next.lineage.as_str(), next.generation), (first.lineage.as_str(), 1));
        assert_eq!(next.lock_name(), format!("oauth-dance:refresh:{}:1", first.lineage));
        assert!(!next.lock_name().contains("r2"), "lock names carry no token");
    }

    #[test]
    fn messages_only_touch_older_tabs_of_the_same_lineage() {
        let mine = Session::from_response(response(Some(7200), Some("r1")), 0, None);
        let newer = Session::from_response(response(Some(7200), Some("r2")), 5, Some(&mine));
        let stranger = Session::from_response(response(Some(7200), Some("x")), 0, None);
        assert_eq!(adopt(Some(&mine), Message::rotated(&newer)), Adopt::Replace(newer.clone()));
        assert_eq!(adopt(Some(&newer), Message::rotated(&newer)), Adopt::Ignore, "already there");
        assert_eq!(adopt(Some(&newer), Message::rotated(&mine)), Adopt::Ignore, "never go back");
        assert_eq!(
            adopt(Some(&stranger), Message::rotated(&newer)),
            Adopt::Ignore,
            "another sign-in"
        );
        assert_eq!(adopt(None, Message::rotated(&newer)), Adopt::Ignore);
        assert_eq!(adopt(Some(&newer), Message::signed_out(&mine)), Adopt::End);
        assert_eq!(adopt(Some(&stranger), Message::signed_out(&mine)), Adopt::Ignore);
        // A tab that is behind asks; only tabs further along answer.
        assert_eq!(adopt(Some(&newer), Message::ask(&mine)), Adopt::Answer);
        assert_eq!(adopt(Some(&mine), Message::ask(&mine)), Adopt::Ignore);
        assert_eq!(adopt(Some(&mine), Message::ask(&newer)), Adopt::Ignore);
        assert_eq!(adopt(Some(&stranger), Message::ask(&mine)), Adopt::Ignore);
        let mut legacy = mine.clone();
        legacy.lineage.clear();
        assert_eq!(
            adopt(Some(&legacy), Message::signed_out(&legacy)),
            Adopt::Ignore,
            "no lineage, no match"
        );
    }

    #[test]
    fn messages_round_trip_and_sessions_redact() {
        let session = Session::from_response(response(Some(60), Some("r2")), 0, None);
        let message = Message::rotated(&session);
        let text = serde_json::to_string(&message).expect("serialises");
        assert!(
            text.starts_with(&format!(
                r#"{{"lineage":"{}","generation":0,"session":{{"#,
                session.lineage
            )),
            "{text}"
        );
        let out = serde_json::to_string(&Message::signed_out(&session)).expect("serialises");
        assert_eq!(out, format!(r#"{{"lineage":"{}","generation":0}}"#, session.lineage));
        assert_eq!(crate::json::from_str::<Message>(&text).expect("parses"), message);
        let ask = serde_json::to_string(&Message::ask(&session)).expect("serialises");
        assert_eq!(
            ask,
            format!(r#"{{"lineage":"{}","generation":0,"ask":true}}"#, session.lineage)
        );
        assert_eq!(crate::json::from_str::<Message>(&ask).expect("parses"), Message::ask(&session));
        let debug = format!("{session:?}");
        assert!(!debug.contains("\"at\"") && !debug.contains("r2"), "{debug}");
    }

    #[test]
    fn only_refusals_end_a_session() {
        assert!(is_final(&Problem::session_expired("invalid_grant")));
        assert!(!is_final(&Problem::relay_slow(20)));
        assert!(!is_final(&Problem::upstream_unavailable("502")));
    }

    #[test]
    fn an_absurd_lifetime_is_capped_so_the_stored_session_reads_back() {
        let response: TokenResponse = crate::json::from_str(
            r#"{"access_token":"a","token_type":"bearer","refresh_token":"r","expires_in":18446744073709549568}"#,
        )
        .expect("reads");
        let now = 1_700_000_000_000;
        let session = Session::from_response(response, now, None);
        assert_eq!(session.expires_at_ms, Some(now + MAX_LIFETIME_S * 1000));
        assert!(session.expires_at_ms.is_some_and(|ms| ms < 1 << 53));
        let stored = serde_json::to_string(&session).expect("writes");
        assert_eq!(crate::json::from_str::<Session>(&stored).expect("reads back"), session);
    }
}
