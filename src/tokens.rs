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
//!
//! # Several tabs, one rotating refresh token
//! Bitbucket rotates refresh tokens: each refresh kills the token it used.
//! Tabs normally hold separate sessions (session storage is per tab), but a
//! tab opened from another (duplicate tab, `window.open`) starts with a
//! *copy* of the opener's session storage, so two tabs can hold the same
//! refresh token. If both refreshed, the slower one would present a dead
//! token and lose the session (oidc-client-ts#430). Two browser features,
//! both limited to this origin, prevent that:
//!
//! - **Web Locks** (`navigator.locks.request("oauth-dance:refresh", ...)`)
//!   serialise refreshes across every tab of the origin: at most one refresh
//!   is in flight per browser. Inside the lock a tab first checks whether
//!   its tokens changed while it waited; if they did, another tab already
//!   refreshed and there is nothing to do.
//! - **BroadcastChannel** (`"oauth-dance"`) carries the result: after a
//!   refresh, and before releasing the lock, the tab posts
//!   `{previous, session}`. Every tab whose refresh token
//!   equals `previous` (the same lineage) adopts the new session into its own
//!   session storage; tabs with other sessions ignore it. Sign-out posts
//!   `{previous}` (no session) so tabs of the same lineage sign out
//!   too. Nothing is written to `localStorage` and no token ever leaves the
//!   origin. (The `storage` event can't do this job: it only fires for
//!   `localStorage`, and session storage is not shared between tabs.)
//!
//! The order of a channel message and a lock grant in another tab is not
//! specified, so a tab whose refresh is refused checks once more whether a
//! newer session arrived meanwhile before it gives up. Without Web Locks
//! (very old browsers, non-secure contexts), refreshes are still serialised
//! within the tab by an async mutex.

use crate::api;
use crate::problem::{Deployment, Permission, Problem, ProblemKind};
use crate::storage::{Key, SessionStore};
use dance_protocol::token::{TokenRequest, TokenResponse};
use dance_protocol::{AccessToken, RefreshToken};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};
use url::Url;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use yew::Callback;

/// The Web Lock that serialises refreshes across tabs.
pub const REFRESH_LOCK: &str = "oauth-dance:refresh";
/// The BroadcastChannel on which tabs share rotated tokens.
pub const CHANNEL: &str = "oauth-dance";
/// The most a refresh is brought forward: five minutes.
const MAX_MARGIN_MS: u64 = 300_000;

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
}

impl Session {
    /// A session from a token response received at `now_ms`. When a refresh
    /// answer has no new refresh token, the `previous` one stays valid
    /// (RFC 6749 6).
    pub fn from_response(response: TokenResponse, now_ms: u64, previous: Option<&Session>) -> Self {
        let lifetime_ms = response.expires_in.map(|s| s.saturating_mul(1000));
        Self {
            access_token: response.access_token,
            refresh_token: response.refresh_token.or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            expires_at_ms: lifetime_ms.map(|life| now_ms.saturating_add(life)),
            refresh_at_ms: lifetime_ms.map(|life| now_ms.saturating_add(life - (life / 5).min(MAX_MARGIN_MS))),
            scope: response.scope,
        }
    }

    /// Milliseconds until the refresh is due (0 when overdue), or `None` when
    /// this session can't or needn't be refreshed.
    pub fn refresh_delay_ms(&self, now_ms: u64) -> Option<u64> {
        self.refresh_token.as_ref()?;
        Some(self.refresh_at_ms?.saturating_sub(now_ms))
    }

    /// Whether this session's refresh token is `token`: the same lineage.
    fn holds(&self, token: &RefreshToken) -> bool {
        self.refresh_token.as_ref() == Some(token)
    }
}

/// A message between tabs on the [`CHANNEL`]: the session whose refresh
/// token was `previous` was refreshed into `session`, or, without a
/// `session`, signed out. (A plain struct rather than a tagged enum: it
/// keeps the bundle smaller.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The refresh token of the session concerned (dead after a refresh).
    pub previous: RefreshToken,
    /// The new session after a refresh; absent for a sign-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
}

impl Message {
    /// "The session of `previous` is now `session`."
    pub fn rotated(previous: RefreshToken, session: Session) -> Self {
        Self { previous, session: Some(session) }
    }

    /// "The session of `previous` signed out."
    pub fn signed_out(previous: RefreshToken) -> Self {
        Self { previous, session: None }
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
}

/// Decides what a message means for a tab holding `current`. Pure.
pub fn adopt(current: Option<&Session>, message: Message) -> Adopt {
    let Some(current) = current else { return Adopt::Ignore };
    if !current.holds(&message.previous) {
        return Adopt::Ignore;
    }
    match message.session {
        Some(session) => Adopt::Replace(session),
        None => Adopt::End,
    }
}

/// Whether a failed refresh means the session is over (rather than a
/// transient failure worth trying again later).
pub fn is_final(problem: &Problem) -> bool {
    matches!(problem.kind, ProblemKind::SessionExpired | ProblemKind::CodeRejected | ProblemKind::RelayClientRejected)
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

/// The shared state behind [`Tokens`].
struct Inner {
    session: RefCell<Option<Session>>,
    store: Option<SessionStore>,
    relay_url: Url,
    deployment: Deployment,
    on_event: Callback<TokenEvent>,
    channel: Option<web_sys::BroadcastChannel>,
    listener: RefCell<Option<Closure<dyn FnMut(web_sys::MessageEvent)>>>,
    timer: RefCell<Option<gloo_timers::callback::Timeout>>,
    in_tab: futures::lock::Mutex<()>,
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
    pub fn new(store: Option<SessionStore>, relay_url: Url, deployment: Deployment, on_event: Callback<TokenEvent>) -> Self {
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
        });
        if let Some(channel) = &inner.channel {
            let weak: Weak<Inner> = Rc::downgrade(&inner);
            let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                if let Some(inner) = weak.upgrade() {
                    Tokens { inner }.receive(event.data().as_string().as_deref());
                }
            });
            channel.set_onmessage(Some(listener.as_ref().unchecked_ref()));
            *inner.listener.borrow_mut() = Some(listener);
        }
        Self { inner }
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

    /// Starts a session from the code exchange's answer.
    pub fn start(&self, response: TokenResponse) {
        self.replace(Session::from_response(response, now_ms(), None));
    }

    /// The current session.
    pub fn current(&self) -> Option<Session> {
        self.inner.session.borrow().clone()
    }

    /// Signs out: forgets the tokens and every value this app stored in the
    /// tab, and tells tabs sharing the session.
    pub fn sign_out(&self) {
        if let Some(previous) = self.current().and_then(|s| s.refresh_token) {
            self.post(&Message::signed_out(previous));
        }
        self.forget();
    }

    /// An authenticated `GET` of the API ([`api::get`]) with the current
    /// access token; on "Access token expired." refreshes once and tries
    /// once more. Returns the body of the 200.
    pub async fn get(&self, url: &Url, permission: Permission) -> Result<String, Problem> {
        let session = self.current().ok_or_else(|| Problem::session_expired("no session in this tab"))?;
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
    /// At most one refresh runs at a time in the whole browser.
    pub async fn refresh(&self, stale: Session) -> Result<Session, Problem> {
        let _in_tab = self.inner.in_tab.lock().await;
        let this = self.clone();
        with_web_lock(REFRESH_LOCK, move || async move { this.refresh_locked(stale).await })
            .await
            .unwrap_or_else(|| Err(Problem::relay_failed("the refresh was interrupted")))
    }

    /// The refresh itself, run while holding the lock.
    async fn refresh_locked(&self, stale: Session) -> Result<Session, Problem> {
        match self.current() {
            None => return Err(Problem::session_expired("signed out meanwhile")),
            Some(current) if current != stale => return Ok(current),
            Some(_) => {}
        }
        let Some(previous) = stale.refresh_token.clone() else {
            let problem = Problem::session_expired("Bitbucket issued no refresh token");
            self.end(problem.clone());
            return Err(problem);
        };
        let request = TokenRequest::RefreshToken { refresh_token: previous.clone() };
        match api::token(&self.inner.relay_url, &request, &self.inner.deployment).await {
            Ok(response) => {
                let session = Session::from_response(response, now_ms(), Some(&stale));
                self.replace(session.clone());
                self.post(&Message::rotated(previous, session.clone()));
                Ok(session)
            }
            Err(problem) => {
                // A late message from the tab that refreshed first may have
                // brought a newer session in the meantime.
                if let Some(current) = self.current().filter(|c| *c != stale) {
                    return Ok(current);
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
    }

    /// Forgets everything this tab stored.
    fn forget(&self) {
        *self.inner.session.borrow_mut() = None;
        self.inner.timer.borrow_mut().take();
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
                    if let Some(stale) = tokens.current() {
                        if let Err(problem) = tokens.refresh(stale).await {
                            crate::browser::log_error(&format!("oauth-dance: refresh failed: {problem}"));
                        }
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
        let Some(message) = data.and_then(|text| serde_json::from_str::<Message>(text).ok()) else {
            return;
        };
        match adopt(self.current().as_ref(), message) {
            Adopt::Ignore => {}
            Adopt::Replace(session) => self.replace(session),
            Adopt::End => self.end(Problem::signed_out_elsewhere()),
        }
    }
}

/// The browser clock in whole milliseconds.
fn now_ms() -> u64 {
    crate::browser::now_ms().max(0.0) as u64
}

/// Runs `work` while holding the Web Lock `name` (exclusive, across all tabs
/// of this origin); runs it without the lock where Web Locks are missing.
/// `None` only if the work started under the lock but never finished.
pub async fn with_web_lock<F, Fut, T>(name: &str, work: F) -> Option<T>
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    let work = Rc::new(RefCell::new(Some(work)));
    let result: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));

    if let Some((locks, request)) = lock_manager() {
        let (task, out) = (work.clone(), result.clone());
        // `navigator.locks.request(name, callback)`: the lock is held until
        // the promise the callback returns settles.
        let callback = Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
            wasm_bindgen_futures::future_to_promise(async move {
                let task = task.borrow_mut().take();
                if let Some(task) = task {
                    let value = task().await;
                    *out.borrow_mut() = Some(value);
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        if let Ok(promise) = request.call2(&locks, &JsValue::from_str(name), &callback) {
            if let Ok(promise) = promise.dyn_into::<js_sys::Promise>() {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            }
        }
    }
    if let Some(value) = result.borrow_mut().take() {
        return Some(value);
    }
    // No Web Locks, or the request failed before running the work. (If the
    // work was taken but left no result, it must not run twice.)
    let task = work.borrow_mut().take();
    match task {
        Some(task) => Some(task().await),
        None => None,
    }
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
        assert_eq!(s.refresh_at_ms, Some(1_000 + 7_200_000 - 300_000), "five minutes early at most");
        assert_eq!(s.refresh_delay_ms(1_000), Some(6_900_000));
        assert_eq!(s.refresh_delay_ms(99_999_999), Some(0), "overdue means now");

        let short = Session::from_response(response(Some(10), Some("r1")), 0, None);
        assert_eq!(short.refresh_at_ms, Some(8_000), "a fifth early for short lifetimes");
    }

    #[test]
    fn no_refresh_without_a_refresh_token_or_expiry() {
        assert_eq!(Session::from_response(response(Some(7200), None), 0, None).refresh_delay_ms(0), None);
        assert_eq!(Session::from_response(response(None, Some("r")), 0, None).refresh_delay_ms(0), None);
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
    fn messages_only_touch_the_same_lineage() {
        let mine = Session::from_response(response(Some(7200), Some("r1")), 0, None);
        let newer = Session::from_response(response(Some(7200), Some("r2")), 5, None);
        let rotated = |previous: &str| Message::rotated(RefreshToken::new(previous), newer.clone());
        assert_eq!(adopt(Some(&mine), rotated("r1")), Adopt::Replace(newer.clone()));
        assert_eq!(adopt(Some(&mine), rotated("other")), Adopt::Ignore);
        assert_eq!(adopt(None, rotated("r1")), Adopt::Ignore);
        let out = |previous: &str| Message::signed_out(RefreshToken::new(previous));
        assert_eq!(adopt(Some(&mine), out("r1")), Adopt::End);
        assert_eq!(adopt(Some(&mine), out("r0")), Adopt::Ignore);
    }

    #[test]
    fn messages_round_trip_and_sessions_redact() {
        let session = Session::from_response(response(Some(60), Some("r2")), 0, None);
        let message = Message::rotated(RefreshToken::new("r1"), session.clone());
        let text = serde_json::to_string(&message).expect("serialises");
        assert!(text.starts_with(r#"{"previous":"r1","session":{"#), "{text}");
        let out = serde_json::to_string(&Message::signed_out(RefreshToken::new("r1"))).expect("serialises");
        assert_eq!(out, r#"{"previous":"r1"}"#);
        assert_eq!(serde_json::from_str::<Message>(&text).expect("parses"), message);
        let debug = format!("{session:?}");
        assert!(!debug.contains("\"at\"") && !debug.contains("r2"), "{debug}");
    }

    #[test]
    fn only_refusals_end_a_session() {
        assert!(is_final(&Problem::session_expired("invalid_grant")));
        assert!(!is_final(&Problem::relay_slow(20)));
        assert!(!is_final(&Problem::upstream_unavailable("502")));
    }
}
