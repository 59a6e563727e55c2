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
//! # A refresh token only this browser can use
//! The refresh token the SPA holds is the relay's sealed blob, bound to the
//! key pair its sign-in made ([`crate::keys`], in IndexedDB), and every
//! refresh carries a proof signed with that key ([`crate::dpop`]). A
//! session whose key is gone (site data cleared) can't be refreshed and
//! ends with [`Problem::session_unbound`], as do the relay's `wrong_key` and
//! `not_sealed` refusals; its `session_ended` refusal ends it with
//! [`Problem::session_limit`].
//!
//! # Several tabs, one rotating refresh token
//! Bitbucket rotates refresh tokens: each refresh kills the token it used.
//! Tabs normally hold separate sessions (session storage is per tab), but a
//! tab opened from another (duplicate tab, `window.open`) starts with a
//! *copy* of the opener's session storage, so two tabs can hold the same
//! refresh token. If both refreshed, the slower one would present a dead
//! token and lose the session (as it does with oidc-client-ts:
//! <https://github.com/authts/oidc-client-ts/issues/430>). Each session
//! therefore belongs to a [`Lineage`], made at sign-in before the code exchange and
//! shared by every tab that inherited the session: a random id (the key of
//! its record in IndexedDB) and a random 32-byte *channel key*, kept in
//! session storage with the tokens. A session also counts its `generation`
//! (how often it was refreshed). Two browser features keep the tabs of a
//! lineage in step:
//!
//! - **Web Locks**: a tab refreshes only while holding the exclusive lock of
//!   its session's generation, so at most one refresh of a given refresh
//!   token is ever in flight in the browser. The tab that refreshed *keeps*
//!   that lock (until its next refresh, sign-out or close): a tab still
//!   waiting for it can only be holding the dead token, and must never get
//!   to use it. The lock's name ([`lock_name`]) is [`REFRESH_LOCK`] and the
//!   base64url SHA-256 of the channel key and the generation: only the
//!   lineage's tabs can name it, and a page that lists the origin's locks
//!   (`navigator.locks.query()`) learns neither the lineage nor the next
//!   generation's name.
//! - **BroadcastChannel** ([`CHANNEL`]) carries the result: after a refresh
//!   the tab posts `{lineage, generation, session}`. Every tab of the same
//!   lineage at an older generation adopts the session into its own session
//!   storage and stops waiting for the lock (it withdraws the request with
//!   an `AbortSignal`, and should the browser grant it anyway, gives the
//!   lock straight back). A tab that finds the lock taken also posts
//!   `{lineage, generation, ask: true}`; any tab further along answers with
//!   its session, so a tab that was away (navigated elsewhere, discarded)
//!   when the news went out catches up instead of using its dead token.
//!   Sign-out posts `{lineage, generation}` without a session, and the tabs
//!   of that lineage sign out too.
//!
//! So a tab either refreshes (holding the lock) or receives the new tokens;
//! it never presents a rotated token, whatever order the lock grant and the
//! message arrive in. A tab that waits 30 s for another tab's refresh gives
//! up with a retryable problem. (The `storage` event can't do this job: it
//! fires only for `localStorage`, and session storage is not shared between
//! tabs.) Without Web Locks (very old browsers), refreshes are serialised
//! within the tab only, by an async mutex.
//!
//! # A channel only our tabs can use
//! Every page of the origin can join the channel and take any lock name,
//! and on GitHub Pages the origin is shared by every project site of the
//! account. So no message goes out in the clear: each is the JSON of a
//! [`Message`], encrypted and authenticated with the lineage's channel key
//! (WebCrypto AES-GCM, a fresh random 12-byte IV per message) and posted as
//! `{iv: Uint8Array, data: ArrayBuffer}` ([`seal`], [`open`]). A tab acts on
//! a message only when it opens with the tab's own channel key, names the
//! tab's lineage, carries (if any) a session of that same lineage and key,
//! and, to be adopted, a newer generation ([`adopt`]); a sign-out must open
//! too, so no other page can sign our tabs out, plant a session or ask for
//! one. A message that does not open (another key, a changed byte, junk, or
//! any message while the tab has no session) is dropped and counted: the
//! page's count is the [`REJECTED_ATTRIBUTE`] attribute of `<html>`
//! (`document.documentElement.dataset.channelRejected`, absent until the
//! first), where end-to-end tests read it. Messages of another sign-in in
//! another tab of the site count too: they are sealed with another key.
//! Nothing is written to `localStorage`, and no token leaves the origin.

use crate::api;
use crate::crypto;
use crate::keys::{self, KeyPair};
use crate::problem::{Deployment, Permission, Problem, ProblemKind};
use crate::storage::{Key, SessionStore};
use crate::weburl::WebUrl;
use dance_protocol::token::{TokenRequest, TokenResponse};
use dance_protocol::{AccessToken, PkceVerifier, RefreshToken, State};
use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU32, Ordering};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use yew::Callback;

/// The prefix of the Web Locks that serialise refreshes across tabs.
pub const REFRESH_LOCK: &str = "oauth-dance:refresh:";
/// How long a tab waits for another tab's refresh before giving up.
pub const WAIT_FOR_OTHER_TAB_MS: u32 = 30_000;
/// The BroadcastChannel on which tabs share rotated tokens.
pub const CHANNEL: &str = "oauth-dance";
/// The attribute of `<html>` that counts the channel messages this page
/// could not open.
pub const REJECTED_ATTRIBUTE: &str = "data-channel-rejected";
/// The most a refresh is brought forward: five minutes.
const MAX_MARGIN_MS: u64 = 300_000;
/// The longest token lifetime taken at its word: ten years. Longer ones (a
/// broken or hostile answer) are read as this, so every time the session
/// stores stays a whole number JSON.parse reads exactly (below 2^53).
const MAX_LIFETIME_S: u64 = 10 * 365 * 24 * 3600;

/// The key that seals a lineage's channel messages and names its locks:
/// base64url of 32 random bytes (the `k` of an AES-256 JWK). A secret of
/// the lineage's tabs: `Debug` redacts it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelKey(String);

impl ChannelKey {
    /// The key itself, in base64url. Never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelKey([redacted])")
    }
}

/// Who a sign-in is across tabs and refreshes, chosen at sign-in before the
/// code exchange, with the key pair whose record in IndexedDB is named by
/// `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// A random id, not a secret: the key of the session's record in
    /// IndexedDB.
    pub id: String,
    /// The channel key of the lineage's tabs.
    pub channel_key: ChannelKey,
}

impl Lineage {
    /// A new lineage: a random id and a random channel key.
    pub fn generate() -> Self {
        Self {
            id: State::generate().secret().chars().take(16).collect(),
            // A state is exactly what the key needs: 32 random bytes in base64url.
            channel_key: ChannelKey(State::generate().secret().to_owned()),
        }
    }
}

/// The tokens of one signed-in session. `Debug` redacts the tokens and the
/// channel key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token for the API.
    pub access_token: AccessToken,
    /// The refresh token (the relay's sealed one); replaced on every refresh.
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
    /// The id of the [`Lineage`] this session descends from.
    #[serde(default)]
    pub lineage: String,
    /// The channel key of the lineage (empty in a session stored before
    /// there were keys, which then can neither talk nor refresh).
    #[serde(default)]
    pub channel_key: ChannelKey,
    /// How many refreshes this lineage went through.
    #[serde(default)]
    pub generation: u32,
}

impl Session {
    /// The first session of `lineage`, from the code exchange's answer
    /// received at `now_ms`.
    pub fn start(lineage: &Lineage, response: TokenResponse, now_ms: u64) -> Self {
        let lifetime_ms = response.expires_in.map(|s| s.min(MAX_LIFETIME_S) * 1000);
        Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token,
            expires_at_ms: lifetime_ms.map(|life| now_ms.saturating_add(life)),
            refresh_at_ms: lifetime_ms
                .map(|life| now_ms.saturating_add(life - (life / 5).min(MAX_MARGIN_MS))),
            scope: response.scope,
            lineage: lineage.id.clone(),
            channel_key: lineage.channel_key.clone(),
            generation: 0,
        }
    }

    /// The session that follows this one, from a refresh's answer received
    /// at `now_ms`. When the answer has no new refresh token, this one's
    /// stays valid (RFC 6749 6).
    pub fn next(&self, response: TokenResponse, now_ms: u64) -> Self {
        let lineage = Lineage { id: self.lineage.clone(), channel_key: self.channel_key.clone() };
        let fresh = Self::start(&lineage, response, now_ms);
        Self {
            refresh_token: fresh.refresh_token.or_else(|| self.refresh_token.clone()),
            generation: self.generation.saturating_add(1),
            ..fresh
        }
    }

    /// Milliseconds until the refresh is due (0 when overdue), or `None` when
    /// this session can't or needn't be refreshed.
    pub fn refresh_delay_ms(&self, now_ms: u64) -> Option<u64> {
        self.refresh_token.as_ref()?;
        Some(self.refresh_at_ms?.saturating_sub(now_ms))
    }
}

/// The Web Lock a refresh of `session` must hold: [`REFRESH_LOCK`] and the
/// base64url SHA-256 of its channel key and generation. That is RFC 7636's
/// S256 transform, which the bundle carries for PKCE anyway: it costs
/// nothing and, unlike WebCrypto's digest, needs no waiting.
pub fn lock_name(session: &Session) -> String {
    let seed = format!("{}:{}", session.channel_key.secret(), session.generation);
    format!("{REFRESH_LOCK}{}", PkceVerifier::new(seed).challenge().as_str())
}

/// A message between tabs on the [`CHANNEL`], about the session `lineage`:
/// with a `session`, "it reached `generation`, here it is"; with `ask`,
/// "I am stuck at `generation`: whoever is further, please tell"; with
/// neither, "it signed out". It travels sealed ([`seal`]). (A plain struct
/// rather than a tagged enum: it keeps the bundle smaller.)
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

/// Seals `message` for the channel with `key`: its JSON, encrypted and
/// authenticated with AES-GCM under a fresh IV, as `{iv, data}`. `None`
/// when WebCrypto fails (then nothing is sent).
pub async fn seal(key: &ChannelKey, message: &Message) -> Option<JsValue> {
    let text = serde_json::to_string(message).ok()?;
    crypto::seal(key.secret(), text.as_bytes()).await.ok()
}

/// The message in `data` when it opens with `key` (it was sealed with that
/// key and not changed since) and reads as a [`Message`]; `None` otherwise.
pub async fn open(key: &ChannelKey, data: &JsValue) -> Option<Message> {
    let plain = crypto::open(key.secret(), data).await.ok()?;
    crate::json::from_str(&String::from_utf8(plain).ok()?).ok()
}

/// How many channel messages this page could not open so far (shown as
/// the [`REJECTED_ATTRIBUTE`] of `<html>`).
pub fn rejected_count() -> u32 {
    REJECTED.load(Ordering::Relaxed)
}

/// The page's count of rejected messages, whichever keeper rejected them.
static REJECTED: AtomicU32 = AtomicU32::new(0);

/// Counts one more message that did not open.
fn count_rejected() {
    let count = REJECTED.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    if let Some(root) = root_element() {
        let _ = root.set_attribute(REJECTED_ATTRIBUTE, &count.to_string());
    }
}

/// `<html>`.
fn root_element() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.document_element()
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

/// Decides what a message that opened with the tab's channel key means for
/// a tab holding `current`. Pure.
pub fn adopt(current: Option<&Session>, message: Message) -> Adopt {
    let Some(current) = current else { return Adopt::Ignore };
    if current.lineage.is_empty() || current.lineage != message.lineage {
        return Adopt::Ignore;
    }
    if message.ask {
        return if current.generation > message.generation { Adopt::Answer } else { Adopt::Ignore };
    }
    match message.session {
        Some(session)
            if session.lineage == current.lineage
                && session.channel_key == current.channel_key
                && session.generation > current.generation =>
        {
            Adopt::Replace(session)
        }
        Some(_) => Adopt::Ignore,
        None => Adopt::End,
    }
}

/// Whether a failed refresh means the session is over (rather than a
/// transient failure worth trying again later).
pub fn is_final(problem: &Problem) -> bool {
    matches!(
        problem.kind,
        ProblemKind::SessionExpired
            | ProblemKind::SessionUnbound
            | ProblemKind::SessionLimit
            | ProblemKind::CodeRejected
            | ProblemKind::RelayClientRejected
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
    /// The key pair of a lineage, once made or loaded: `(lineage, keys)`.
    keys: RefCell<Option<(String, KeyPair)>>,
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
            keys: RefCell::new(None),
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
                    let (tokens, data) = (Tokens { inner }, event.data());
                    wasm_bindgen_futures::spawn_local(async move { tokens.receive(data).await });
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

    /// Starts the first session of `lineage`, whose key pair is `keys`
    /// (already stored), from the code exchange's answer.
    pub fn start(&self, lineage: &Lineage, keys: KeyPair, response: TokenResponse) -> Session {
        *self.inner.keys.borrow_mut() = Some((lineage.id.clone(), keys));
        let session = Session::start(lineage, response, now_ms());
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

    /// Signs out: forgets the tokens, every value this app stored in the
    /// tab and the session's key, and tells tabs sharing the session.
    pub fn sign_out(&self) {
        if let Some(session) = self.current() {
            self.post(Message::signed_out(&session), &session.channel_key);
        }
        self.forget(true);
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
        let keys = self.keys_of(&stale).await?;
        match lock_manager() {
            Some(locks) => self.refresh_under_lock(locks, stale, keys).await,
            None => self.refresh_locked(stale, keys).await.map(|(session, _)| session),
        }
    }

    /// The key pair of `session`'s lineage: the one this tab made or loaded,
    /// or the one in IndexedDB (a reloaded or duplicated tab). Without one
    /// the session can't be refreshed, and it ends.
    async fn keys_of(&self, session: &Session) -> Result<KeyPair, Problem> {
        if let Some((lineage, keys)) = self.inner.keys.borrow().as_ref()
            && *lineage == session.lineage
        {
            return Ok(keys.clone());
        }
        match keys::load(&session.lineage).await? {
            Some(keys) => {
                *self.inner.keys.borrow_mut() = Some((session.lineage.clone(), keys.clone()));
                Ok(keys)
            }
            None => {
                let problem = Problem::session_unbound("no key for this session in IndexedDB");
                if self.current().is_some_and(|current| current.lineage == session.lineage) {
                    self.end(problem.clone());
                }
                Err(problem)
            }
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
        keys: KeyPair,
    ) -> Result<Session, Problem> {
        let name = lock_name(&stale);
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

        let (this, slot, task) = (self.clone(), reply.clone(), stale.clone());
        // Runs once the lock is granted; the lock is held until the promise
        // it returns settles.
        let callback = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                let Some(tx) = slot.borrow_mut().take() else { return Ok(JsValue::UNDEFINED) };
                match this.refresh_locked(task, keys).await {
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
        self.post(Message::ask(&stale), &stale.channel_key);
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
    async fn refresh_locked(
        &self,
        stale: Session,
        keys: KeyPair,
    ) -> Result<(Session, bool), Problem> {
        if let Some(fresher) = self.fresher_than(&stale)? {
            return Ok((fresher, false));
        }
        let Some(previous) = stale.refresh_token.clone() else {
            let problem = Problem::session_expired("Bitbucket issued no refresh token");
            self.end(problem.clone());
            return Err(problem);
        };
        let request = TokenRequest::RefreshToken { refresh_token: previous };
        let (relay_url, deployment) = (&self.inner.relay_url, &self.inner.deployment);
        match api::token(relay_url, &request, &keys, deployment).await {
            // Signed out (here or in another tab) while the request was in
            // flight: the new tokens are not kept, stored or shared.
            Ok(_) if self.current().is_none() => {
                Err(Problem::session_expired("signed out during the refresh"))
            }
            Ok(response) => {
                let session = stale.next(response, now_ms());
                self.replace(session.clone());
                self.post(Message::rotated(&session), &session.channel_key);
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

    /// Forgets everything this tab stored, and deletes the session's key:
    /// the session is over for every tab of its lineage.
    fn forget(&self, delete_key: bool) {
        let ended = self.inner.session.borrow_mut().take();
        self.inner.keys.borrow_mut().take();
        self.inner.timer.borrow_mut().take();
        self.inner.held.borrow_mut().take();
        self.abandon_waits();
        if let Some(store) = &self.inner.store {
            store.clear_ours();
        }
        if let Some(session) = ended.filter(|_| delete_key) {
            keys::delete(&session.lineage);
        }
    }

    /// Ends the session for `reason` and tells the app. The key goes only
    /// when the whole lineage is over (signed out, past the relay's
    /// lifetime, or unbound): a refusal that may concern this tab alone,
    /// such as a refresh token another tab already used, must not take the
    /// key from under the lineage's other tabs.
    fn end(&self, reason: Problem) {
        let lineage_over = matches!(
            reason.kind,
            ProblemKind::SignedOutElsewhere
                | ProblemKind::SessionLimit
                | ProblemKind::SessionUnbound
        );
        self.forget(lineage_over);
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

    /// Seals `message` with `key` and posts it to the other tabs, as soon
    /// as WebCrypto is done.
    fn post(&self, message: Message, key: &ChannelKey) {
        let Some(channel) = self.inner.channel.clone() else { return };
        let key = key.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(sealed) = seal(&key, &message).await {
                let _ = channel.post_message(&sealed);
            }
        });
    }

    /// Handles a message from another tab: opens it with this tab's channel
    /// key, or counts it as rejected.
    async fn receive(&self, data: JsValue) {
        let opened = match self.current() {
            Some(session) => open(&session.channel_key, &data).await,
            None => None,
        };
        let Some(message) = opened else {
            count_rejected();
            return;
        };
        // The session may have moved on while the message was opened.
        match adopt(self.current().as_ref(), message) {
            Adopt::Ignore => {}
            Adopt::Replace(session) => self.replace(session),
            Adopt::End => self.end(Problem::signed_out_elsewhere()),
            Adopt::Answer => {
                if let Some(current) = self.current() {
                    self.post(Message::rotated(&current), &current.channel_key);
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

    /// The first session of a new lineage.
    fn first(expires_in: Option<u64>, refresh: Option<&str>, now_ms: u64) -> Session {
        Session::start(&Lineage::generate(), response(expires_in, refresh), now_ms)
    }

    #[test]
    fn refresh_is_brought_forward() {
        let s = first(Some(7200), Some("r1"), 1_000);
        assert_eq!(s.expires_at_ms, Some(1_000 + 7_200_000));
        assert_eq!(
            s.refresh_at_ms,
            Some(1_000 + 7_200_000 - 300_000),
            "five minutes early at most"
        );
        assert_eq!(s.refresh_delay_ms(1_000), Some(6_900_000));
        assert_eq!(s.refresh_delay_ms(99_999_999), Some(0), "overdue means now");

        let short = first(Some(10), Some("r1"), 0);
        assert_eq!(short.refresh_at_ms, Some(8_000), "a fifth early for short lifetimes");
    }

    #[test]
    fn no_refresh_without_a_refresh_token_or_expiry() {
        assert_eq!(first(Some(7200), None, 0).refresh_delay_ms(0), None);
        assert_eq!(first(None, Some("r"), 0).refresh_delay_ms(0), None);
    }

    #[test]
    fn the_old_refresh_token_stays_when_none_is_issued() {
        let first = first(Some(7200), Some("r1"), 0);
        let next = first.next(response(Some(7200), None), 10);
        assert_eq!(next.refresh_token, Some(RefreshToken::new("r1")));
        let rotated = first.next(response(Some(7200), Some("r2")), 10);
        assert_eq!(rotated.refresh_token, Some(RefreshToken::new("r2")));
        assert_eq!(rotated.expires_at_ms, Some(10 + 7_200_000), "the new answer's lifetime");
    }

    #[test]
    fn lineage_and_generation_follow_refreshes() {
        let lineage = Lineage::generate();
        let other = Lineage::generate();
        assert_eq!(lineage.id.len(), 16);
        assert_eq!(lineage.channel_key.secret().len(), 43, "32 bytes in base64url");
        assert_ne!(lineage.id, other.id, "every sign-in starts its own lineage");
        assert_ne!(lineage.channel_key, other.channel_key, "with its own channel key");
        let first = Session::start(&lineage, response(Some(7200), Some("r1")), 0);
        assert_eq!((first.lineage.as_str(), first.generation), (lineage.id.as_str(), 0));
        assert_eq!(first.channel_key, lineage.channel_key);
        let next = first.next(response(Some(7200), Some("r2")), 10);
        assert_eq!((next.lineage.as_str(), next.generation), (lineage.id.as_str(), 1));
        assert_eq!(next.channel_key, lineage.channel_key, "the key stays with the lineage");
    }

    #[test]
    fn lock_names_hide_the_lineage_and_follow_key_and_generation() {
        let first = first(Some(7200), Some("r1"), 0);
        let name = lock_name(&first);
        assert!(name.starts_with(REFRESH_LOCK), "{name}");
        assert_eq!(name.len(), REFRESH_LOCK.len() + 43, "a SHA-256 in base64url: {name}");
        assert!(!name.contains(&first.lineage), "the lineage shows: {name}");
        assert!(!name.contains(first.channel_key.secret()), "the key shows: {name}");
        assert_eq!(name, lock_name(&first.clone()), "every tab of the lineage names it alike");
        let next = first.next(response(Some(7200), Some("r2")), 10);
        assert_ne!(name, lock_name(&next), "each generation has its own lock");
        let rekeyed = Session { channel_key: Lineage::generate().channel_key, ..first.clone() };
        assert_ne!(name, lock_name(&rekeyed), "only the key's holders can name it");
        let known = Session { channel_key: ChannelKey("k".into()), generation: 0, ..first };
        assert_eq!(
            lock_name(&known),
            "oauth-dance:refresh:dB19b2U-TQkpgPhLS87ETzZYSrbqWc1AmDOkLFU6btU",
            "base64url(SHA-256(\"k:0\"))"
        );
    }

    #[test]
    fn messages_only_touch_older_tabs_of_the_same_lineage() {
        let mine = first(Some(7200), Some("r1"), 0);
        let newer = mine.next(response(Some(7200), Some("r2")), 5);
        let stranger = first(Some(7200), Some("x"), 0);
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
    fn a_carried_session_must_be_of_the_same_lineage_and_key() {
        let mine = first(Some(7200), Some("r1"), 0);
        let newer = mine.next(response(Some(7200), Some("r2")), 5);
        // The envelope names our lineage, the session inside another one.
        let mut planted = first(Some(7200), Some("theirs"), 0);
        planted.generation = 9;
        let message = Message { session: Some(planted.clone()), ..Message::rotated(&newer) };
        assert_eq!(adopt(Some(&mine), message), Adopt::Ignore, "another lineage inside");
        // Our lineage's id, but another channel key.
        let mut rekeyed = newer.clone();
        rekeyed.channel_key = Lineage::generate().channel_key;
        assert_eq!(
            adopt(Some(&mine), Message::rotated(&rekeyed)),
            Adopt::Ignore,
            "a session must keep the lineage's key"
        );
        // A newer generation named on the envelope but not in the session.
        let mut same = mine.clone();
        same.access_token = AccessToken::new("other");
        let message = Message { generation: 7, ..Message::rotated(&same) };
        assert_eq!(adopt(Some(&mine), message), Adopt::Ignore, "the session's generation counts");
    }

    #[test]
    fn messages_round_trip_and_sessions_redact() {
        let session = first(Some(60), Some("r2"), 0);
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
        assert!(!debug.contains(session.channel_key.secret()), "{debug}");
        assert!(debug.contains("ChannelKey([redacted])"), "{debug}");
    }

    #[test]
    fn a_session_stored_before_channel_keys_still_reads() {
        let stored = r#"{"access_token":"a","refresh_token":"r","lineage":"0123456789abcdef","generation":3}"#;
        let session: Session = crate::json::from_str(stored).expect("reads");
        assert_eq!(session.channel_key.secret(), "", "no key: it can neither talk nor refresh");
        assert_eq!(session.generation, 3);
    }

    #[test]
    fn only_refusals_end_a_session() {
        assert!(is_final(&Problem::session_expired("invalid_grant")));
        assert!(is_final(&Problem::session_unbound("wrong_key")));
        assert!(is_final(&Problem::session_limit("session_ended")));
        assert!(!is_final(&Problem::proof_rejected("invalid_dpop_proof")));
        assert!(!is_final(&Problem::key_unavailable(true, "indexedDB is missing")));
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
        let session = Session::start(&Lineage::generate(), response, now);
        assert_eq!(session.expires_at_ms, Some(now + MAX_LIFETIME_S * 1000));
        assert!(session.expires_at_ms.is_some_and(|ms| ms < 1 << 53));
        let stored = serde_json::to_string(&session).expect("writes");
        assert_eq!(crate::json::from_str::<Session>(&stored).expect("reads back"), session);
    }
}
