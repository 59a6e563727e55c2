//! The token keeper of a signed-in tab: the session in memory and in
//! session storage, the refresh timer, and the browser's side of the
//! cross-tab protocol ([`crate::tabs`]: Web Locks and the sealed
//! BroadcastChannel).
//!
//! # Lifetime
//! A [`Session`] says when to refresh ([`crate::session`]). A timer
//! refreshes then; and if a call still meets Bitbucket's `401 "Access token
//! expired."` (a laptop asleep past the timer),
//! [`Tokens::call_with_fresh_token`] refreshes once and runs the call once
//! more. A refusal of the refresh ends the session with a clear signed-out
//! state; there is no second attempt and no loop. An answer that arrives
//! after the person signed out is dropped, never stored.
//!
//! # A refresh token only this browser can use
//! The refresh token the SPA holds is the relay's sealed blob, bound to the
//! key pair its sign-in made ([`crate::keys`], in IndexedDB), and every
//! refresh carries a proof signed with that key ([`crate::dpop`]). A
//! session whose key is gone (site data cleared) can't be refreshed and
//! ends with [`Problem::session_unbound`], as do the relay's `wrong_key` and
//! `not_sealed` refusals; its `session_ended` refusal ends it with
//! [`Problem::session_limit`].

use crate::api;
use crate::deployment::Deployment;
use crate::keys::{self, KeyPair};
use crate::problem::{Problem, ProblemKind};
use crate::session::{ChannelKey, Lineage, Session, is_final};
use crate::storage::{Key, SessionStore};
use crate::tabs::{self, Adopt, CHANNEL, Message, WAIT_FOR_OTHER_TAB_MS, lock_name};
use crate::weburl::WebUrl;
use dance_protocol::AccessToken;
use dance_protocol::token::{TokenRequest, TokenResponse};
use futures::channel::oneshot;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use yew::Callback;

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
    /// Only the browser tests use it (feature `test-hooks`).
    #[cfg(feature = "test-hooks")]
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
    /// Only the browser tests use it (feature `test-hooks`), to stand in
    /// for a second tab.
    #[cfg(feature = "test-hooks")]
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

    /// Runs `call`, a request of Bitbucket's API, with the current access
    /// token; when the API answers "Access token expired." (a laptop asleep
    /// past the refresh timer), refreshes once and runs `call` once more
    /// with the fresh token.
    pub async fn call_with_fresh_token<T, F, Fut>(&self, call: F) -> Result<T, Problem>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, Problem>>,
    {
        let session =
            self.current().ok_or_else(|| Problem::session_expired("no session in this tab"))?;
        match call(session.access_token.clone()).await {
            Err(problem) if problem.kind == ProblemKind::TokenExpired => {
                let fresh = self.refresh(session).await?;
                call(fresh.access_token).await
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
            if let Some(sealed) = tabs::seal(&key, &message).await {
                let _ = channel.post_message(&sealed);
            }
        });
    }

    /// Handles a message from another tab: opens it with this tab's channel
    /// key, or counts it as rejected.
    async fn receive(&self, data: JsValue) {
        let opened = match self.current() {
            Some(session) => tabs::open(&session.channel_key, &data).await,
            None => None,
        };
        let Some(message) = opened else {
            tabs::count_rejected();
            return;
        };
        // The session may have moved on while the message was opened.
        match tabs::adopt(self.current().as_ref(), message) {
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
