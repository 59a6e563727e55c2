//! Browser tests of the SPA, run by wasm-bindgen-test in headless Chromium:
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --test web`.
//!
//! They cover what only a real page can show: session storage, cleaning the
//! address bar, the state check with deletion on use, the cross-tab lock and
//! the sealed channel, WebCrypto proofs and the key in IndexedDB, and the
//! views rendered into the DOM.
#![cfg(target_arch = "wasm32")]

use dance_protocol::token::TokenResponse;
use dance_protocol::{AccessToken, RefreshToken};
use futures::channel::oneshot;
use oauth_dance::config::Config;
use oauth_dance::deployment::Deployment;
use oauth_dance::flow::{self, Next};
use oauth_dance::keys::{self, KeyPair};
use oauth_dance::problem::{Permission, Problem, ProblemKind};
use oauth_dance::profile::Profile;
use oauth_dance::session::{Lineage, Session};
use oauth_dance::storage::{Key, SessionStore};
use oauth_dance::tabs::{self, Message};
use oauth_dance::tokens::{TokenEvent, Tokens};
use oauth_dance::views::{
    Landing, LandingProps, ProblemView, ProblemViewProps, ProfileView, ProfileViewProps,
};
use oauth_dance::weburl::WebUrl;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use web_sys::Element;
use yew::{AttrValue, Callback};

wasm_bindgen_test_configure!(run_in_browser);

/// The bundle's allocator (src/main.rs), so these tests run on it too.
#[global_allocator]
static ALLOCATOR: rlsf::SmallGlobalTlsf = rlsf::SmallGlobalTlsf::new();

// ---- helpers ----------------------------------------------------------------

fn document() -> web_sys::Document {
    web_sys::window().and_then(|w| w.document()).expect("a document")
}

fn session_storage() -> web_sys::Storage {
    web_sys::window().and_then(|w| w.session_storage().ok().flatten()).expect("sessionStorage")
}

fn local_storage() -> web_sys::Storage {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten()).expect("localStorage")
}

fn base() -> WebUrl {
    oauth_dance::flow::page_base().expect("the test page has a base URL")
}

fn location_href() -> String {
    web_sys::window().expect("window").location().href().expect("href")
}

/// Puts `path_and_query` in the address bar without navigating.
fn set_address(path_and_query: &str) {
    assert!(oauth_dance::browser::replace_url(path_and_query), "replaceState works");
}

fn config() -> Config {
    Config::parse(include_str!("../../config.json")).expect("the shipped config is valid")
}

/// A fresh, empty element attached to the body.
fn root() -> Element {
    let div = document().create_element("div").expect("div");
    document().body().expect("body").append_child(&div).expect("attach");
    div
}

fn text_of(root: &Element, selector: &str) -> Option<String> {
    root.query_selector(selector).ok().flatten().and_then(|e| e.text_content())
}

fn count(root: &Element, selector: &str) -> u32 {
    root.query_selector_all(selector).map(|list| list.length()).unwrap_or(0)
}

fn deployment() -> Deployment {
    Deployment::new(&base(), Some(&config()))
}

// ---- storage ----------------------------------------------------------------

#[wasm_bindgen_test]
fn storage_is_namespaced_session_storage_only() {
    let store = SessionStore::open().expect("sessionStorage is available");
    store.clear_ours();
    local_storage().clear().expect("clear localStorage");
    session_storage().set_item("other-app:keep", "1").expect("set");

    store.set(Key::Flow, "flow-value").expect("set");
    assert_eq!(
        session_storage().get_item("oauth-dance:flow").ok().flatten().as_deref(),
        Some("flow-value")
    );
    assert_eq!(store.take(Key::Flow).as_deref(), Some("flow-value"));
    assert_eq!(store.get(Key::Flow), None, "take deletes");

    store.set_json(Key::Session, &serde_json::json!({"a": 1})).expect("set json");
    store.set(Key::Flow, "x").expect("set");
    store.clear_ours();
    assert_eq!(store.get(Key::Session), None);
    assert_eq!(store.get(Key::Flow), None);
    assert_eq!(
        session_storage().get_item("other-app:keep").ok().flatten().as_deref(),
        Some("1"),
        "others' keys stay"
    );
    assert_eq!(local_storage().length().expect("length"), 0, "nothing ever goes to localStorage");
    let cookies =
        js_sys::Reflect::get(&document(), &"cookie".into()).ok().and_then(|c| c.as_string());
    assert!(!cookies.unwrap_or_default().contains("oauth-dance"), "no cookies");
    session_storage().remove_item("other-app:keep").expect("cleanup");
}

#[wasm_bindgen_test]
fn unreadable_json_counts_as_absent_and_is_deleted() {
    let store = SessionStore::open().expect("sessionStorage");
    store.set(Key::Flow, "{not json").expect("set");
    assert_eq!(store.take_json::<flow::PendingFlow>(Key::Flow), None);
    assert_eq!(store.get(Key::Flow), None);
}

// ---- the callback: URL cleaning and the state check --------------------------

#[wasm_bindgen_test]
fn the_callback_leaves_the_address_bar_and_the_state_is_used_once() {
    let store = SessionStore::open().expect("sessionStorage");
    store.clear_ours();
    let base = base();
    let authorize = flow::begin(&config(), &base, &store).expect("a flow is stored");
    let state = web_sys::Url::new(&authorize)
        .expect("the authorize URL parses")
        .search_params()
        .get("state")
        .expect("the authorize URL has a state");
    assert!(store.get(Key::Flow).is_some(), "the flow waits in session storage");

    let callback = format!("{}?code=the-code&state={state}&keep=1", base.path());
    set_address(&callback);
    let arrival = flow::take_callback(Some(&store), &base).expect("this is a callback");

    let href = location_href();
    assert!(!href.contains("code=") && !href.contains("state="), "cleaned: {href}");
    assert!(href.ends_with("?keep=1"), "other parameters stay: {href}");
    assert_eq!(store.get(Key::Flow), None, "the stored flow is deleted on use");

    match flow::after_callback(arrival, &deployment()) {
        Next::Exchange { request, .. } => {
            let form = request.to_form();
            assert!(form.contains("code=the-code"), "{form}");
            // The test page's base (http://127.0.0.1:PORT/) encodes the
            // same way in forms and in URI components.
            let redirect = String::from(js_sys::encode_uri_component(base.as_str()));
            assert!(form.contains(&format!("redirect_uri={redirect}")), "{form}");
        }
        Next::Fail(problem) => panic!("a matching state must exchange, got {problem}"),
    }

    // The same answer again (a reload, a second tab): nothing to match.
    set_address(&callback);
    let again = flow::take_callback(Some(&store), &base).expect("still looks like a callback");
    match flow::after_callback(again, &deployment()) {
        Next::Fail(problem) => assert_eq!(problem.kind.slug(), "state-missing"),
        Next::Exchange { .. } => panic!("a used state must never exchange twice"),
    }
    set_address(base.path());
}

#[wasm_bindgen_test]
fn a_forged_state_is_refused_and_the_real_one_is_gone() {
    let store = SessionStore::open().expect("sessionStorage");
    store.clear_ours();
    let base = base();
    flow::begin(&config(), &base, &store).expect("a flow is stored");

    set_address(&format!("{}?code=attacker-code&state=forged", base.path()));
    let arrival = flow::take_callback(Some(&store), &base).expect("a callback");
    assert_eq!(store.get(Key::Flow), None, "deleted even though it didn't match");
    assert!(!location_href().contains("attacker-code"));
    match flow::after_callback(arrival, &deployment()) {
        Next::Fail(problem) => assert_eq!(problem.kind.slug(), "state-mismatch"),
        Next::Exchange { .. } => panic!("a forged state must never exchange"),
    }
    set_address(base.path());
}

#[wasm_bindgen_test]
fn a_denial_is_cleaned_too() {
    let store = SessionStore::open().expect("sessionStorage");
    store.clear_ours();
    let base = base();
    set_address(&format!(
        "{}?error=access_denied&error_description=No+thanks&state=s",
        base.path()
    ));
    let arrival = flow::take_callback(Some(&store), &base).expect("a callback");
    assert!(!location_href().contains("error"), "{}", location_href());
    assert!(matches!(flow::after_callback(arrival, &deployment()), Next::Fail(_)));
}

#[wasm_bindgen_test]
fn an_ordinary_page_load_is_not_a_callback() {
    let store = SessionStore::open().expect("sessionStorage");
    let base = base();
    set_address(&format!("{}?tab=2", base.path()));
    assert_eq!(flow::take_callback(Some(&store), &base), None);
    assert!(location_href().ends_with("?tab=2"), "untouched");
    set_address(base.path());
}

#[wasm_bindgen_test]
fn sign_in_remembers_a_deep_link_on_this_origin() {
    let store = SessionStore::open().expect("sessionStorage");
    store.clear_ours();
    let base = base();
    set_address(&format!("{}deep/page?x=1#frag", base.path()));
    flow::begin(&config(), &base, &store).expect("stored");
    let stored: flow::PendingFlow = store.get_json(Key::Flow).expect("a flow");
    assert_eq!(stored.return_to, Some(format!("{}deep/page?x=1#frag", base.path())));
    assert_eq!(stored.redirect_uri, base.to_string(), "the redirect URI is the app's base");
    store.clear_ours();
    set_address(base.path());
}

// ---- cross-tab machinery -------------------------------------------------------

/// `navigator.locks` and its `request` method as the page sees it now.
fn lock_manager() -> (JsValue, js_sys::Function) {
    let navigator = web_sys::window().expect("window").navigator();
    let locks = js_sys::Reflect::get(&navigator, &"locks".into()).expect("navigator.locks");
    let request = js_sys::Reflect::get(&locks, &"request".into())
        .expect("request")
        .dyn_into()
        .expect("a function");
    (locks, request)
}

/// Takes the Web Lock `name` as another tab would, returning once it is
/// granted; the lock is held until the returned function is called.
async fn hold_lock(name: &str) -> js_sys::Function {
    let (locks, request) = lock_manager();
    let mut release = None;
    let held = js_sys::Promise::new(&mut |resolve, _reject| release = Some(resolve));
    let (granted, is_granted) = oneshot::channel::<()>();
    let callback =
        wasm_bindgen::closure::Closure::once_into_js(move |_lock: JsValue| -> js_sys::Promise {
            let _ = granted.send(());
            held
        });
    let _ = request.call2(&locks, &name.into(), &callback).expect("lock requested");
    is_granted.await.expect("the lock is granted");
    release.expect("the promise executor ran")
}

#[wasm_bindgen_test]
async fn a_tab_waiting_for_another_tabs_refresh_adopts_its_tokens_and_never_refreshes() {
    let (keeper, stale, release) = behind_another_tab(Tokens::new).await;
    let refreshing = keeper.refresh(stale.clone());
    // "Another tab", which holds the lock, broadcasts the rotated session.
    let other_tab = broadcast_rotation(&stale);
    let (refreshed, newer) = futures::future::join(refreshing, other_tab).await;
    let _ = release.call0(&JsValue::NULL);
    assert_eq!(refreshed.expect("the waiting tab takes the broadcast session"), newer);
    assert_eq!(keeper.current(), Some(newer));
}

/// A signed-in keeper made by `make`, whose session's refresh lock
/// "another tab" holds until the returned function is called. Its relay is
/// unreachable from the test page: if it refreshed on its own, the refresh
/// would fail and the test with it.
async fn behind_another_tab(
    make: impl FnOnce(Option<SessionStore>, WebUrl, Deployment, Callback<TokenEvent>) -> Tokens,
) -> (Tokens, Session, js_sys::Function) {
    let relay = WebUrl::parse("http://127.0.0.1:9/token").expect("url");
    let keeper = make(None, relay, deployment(), Callback::noop());
    let stale = sign_in(&keeper, "refresh-0").await;
    let release = hold_lock(&tabs::lock_name(&stale)).await;
    (keeper, stale, release)
}

/// Signs `keeper` in as the app does after the callback: a new lineage,
/// its key pair made and stored in IndexedDB, then the exchange's answer.
async fn sign_in(keeper: &Tokens, refresh: &str) -> Session {
    let (lineage, keys) = new_lineage().await;
    keeper.start(&lineage, keys, tokens_response(refresh))
}

/// A new lineage and its stored key pair.
async fn new_lineage() -> (Lineage, KeyPair) {
    let lineage = Lineage::generate();
    let keys = keys::create(&lineage.id).await.expect("WebCrypto and IndexedDB work here");
    (lineage, keys)
}

/// The session that follows `stale`, as another tab's refresh makes it.
fn rotated(stale: &Session) -> Session {
    let mut newer = stale.clone();
    newer.access_token = AccessToken::new("access-2");
    newer.refresh_token = Some(RefreshToken::new("refresh-1"));
    newer.generation = stale.generation + 1;
    newer
}

/// Posts, as another tab that just refreshed would, the session that
/// follows `stale`, sealed with the lineage's key; returns it.
async fn broadcast_rotation(stale: &Session) -> Session {
    let newer = rotated(stale);
    let sealed = tabs::seal(&stale.channel_key, &Message::rotated(&newer)).await;
    post_raw(&sealed.expect("sealed"));
    newer
}

/// Posts `data` on the channel, as any page of this origin can.
fn post_raw(data: &JsValue) {
    let channel = web_sys::BroadcastChannel::new(tabs::CHANNEL).expect("channel");
    channel.post_message(data).expect("posted");
    channel.close();
}

/// Runs `future`, or gives up after ten seconds (`None`): a guard against a
/// hang, not a measurement.
async fn within_ten_seconds<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    let limit = gloo_timers::future::TimeoutFuture::new(10_000);
    futures::pin_mut!(future);
    match futures::future::select(future, limit).await {
        futures::future::Either::Left((value, _)) => Some(value),
        futures::future::Either::Right(_) => None,
    }
}

/// Makes `navigator.locks.request` ignore its `signal`, as Chromium can for a
/// request aborted right after it is made; [`DeafLocks::remove`] undoes it.
/// (Only for the three-argument form the keeper uses.)
struct DeafLocks {
    locks: JsValue,
    _request: wasm_bindgen::closure::Closure<dyn Fn(JsValue, JsValue, JsValue) -> JsValue>,
}

impl DeafLocks {
    fn install() -> Self {
        let (locks, original) = lock_manager();
        let request = {
            let locks = locks.clone();
            wasm_bindgen::closure::Closure::<dyn Fn(JsValue, JsValue, JsValue) -> JsValue>::new(
                move |name: JsValue, _options: JsValue, callback: JsValue| {
                    original
                        .call3(&locks, &name, &js_sys::Object::new(), &callback)
                        .expect("request")
                },
            )
        };
        js_sys::Reflect::set(&locks, &"request".into(), request.as_ref()).expect("patched");
        Self { locks, _request: request }
    }

    fn remove(self) {
        js_sys::Reflect::delete_property(
            self.locks.unchecked_ref::<js_sys::Object>(),
            &"request".into(),
        )
        .expect("unpatched");
    }
}

/// Counts the page's `fetch` calls (still making them) until removed.
struct CountingFetch {
    original: JsValue,
    calls: Rc<std::cell::Cell<u32>>,
    _fetch: wasm_bindgen::closure::Closure<dyn Fn(JsValue, JsValue) -> JsValue>,
}

impl CountingFetch {
    fn install() -> Self {
        let window: JsValue = web_sys::window().expect("window").into();
        let original = js_sys::Reflect::get(&window, &"fetch".into()).expect("fetch");
        let calls = Rc::new(std::cell::Cell::new(0));
        let fetch = {
            let (window, calls) = (window.clone(), calls.clone());
            let original: js_sys::Function = original.clone().dyn_into().expect("a function");
            wasm_bindgen::closure::Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(
                move |input: JsValue, init: JsValue| {
                    calls.set(calls.get() + 1);
                    original.call2(&window, &input, &init).expect("fetch")
                },
            )
        };
        js_sys::Reflect::set(&window, &"fetch".into(), fetch.as_ref()).expect("patched");
        Self { original, calls, _fetch: fetch }
    }

    /// Puts the real `fetch` back; returns how often it was called.
    fn remove(self) -> u32 {
        let window: JsValue = web_sys::window().expect("window").into();
        js_sys::Reflect::set(&window, &"fetch".into(), &self.original).expect("unpatched");
        self.calls.get()
    }
}

/// Answers every `fetch` with a fresh token response, as the relay would,
/// and records when each call was made (ms since the epoch) and what it
/// sent, until removed.
struct FakeRelay {
    original: JsValue,
    calls: Rc<RefCell<Vec<f64>>>,
    sent: Rc<RefCell<Vec<Sent>>>,
    _fetch: wasm_bindgen::closure::Closure<dyn Fn(JsValue, JsValue) -> JsValue>,
}

/// What one request to the fake relay carried.
#[derive(Debug)]
struct Sent {
    body: String,
    /// Whether it had a `DPoP` header (it must not: the proof is in the body).
    dpop_header: bool,
}

impl FakeRelay {
    fn install() -> Self {
        let window: JsValue = web_sys::window().expect("window").into();
        let original = js_sys::Reflect::get(&window, &"fetch".into()).expect("fetch");
        let calls = Rc::new(RefCell::new(Vec::new()));
        let sent = Rc::new(RefCell::new(Vec::new()));
        let fetch = {
            let (window, calls, sent) = (window.clone(), calls.clone(), sent.clone());
            wasm_bindgen::closure::Closure::<dyn Fn(JsValue, JsValue) -> JsValue>::new(
                // The app's requests go through gloo-net, which calls
                // `fetch(request)` with a `Request` that carries the
                // method, headers and body.
                move |input: JsValue, _init: JsValue| {
                    calls.borrow_mut().push(js_sys::Date::now());
                    let n = calls.borrow().len();
                    let request: web_sys::Request = input.unchecked_into();
                    let (window, sent) = (window.clone(), sent.clone());
                    wasm_bindgen_futures::future_to_promise(async move {
                        let text = request.text()?;
                        let body =
                            wasm_bindgen_futures::JsFuture::from(text).await?.as_string().unwrap_or_default();
                        let dpop_header = request.headers().has("dpop")?;
                        sent.borrow_mut().push(Sent { body, dpop_header });
                        let body = format!(
                            r#"{{"access_token":"fresh-{n}","token_type":"bearer","expires_in":7200,"refresh_token":"rotated-{n}"}}"#
                        );
                        let init = js_sys::Object::new();
                        js_sys::Reflect::set(&init, &"status".into(), &200.into())?;
                        let class: js_sys::Function =
                            js_sys::Reflect::get(&window, &"Response".into())?.unchecked_into();
                        js_sys::Reflect::construct(&class, &js_sys::Array::of2(&body.into(), &init))
                    })
                    .into()
                },
            )
        };
        js_sys::Reflect::set(&window, &"fetch".into(), fetch.as_ref()).expect("patched");
        Self { original, calls, sent, _fetch: fetch }
    }

    /// Puts the real `fetch` back; returns what each call sent.
    fn remove_sent(self) -> Vec<Sent> {
        let sent = self.sent.clone();
        self.remove();
        sent.take()
    }

    /// Puts the real `fetch` back; returns when each call was made.
    fn remove(self) -> Vec<f64> {
        let window: JsValue = web_sys::window().expect("window").into();
        js_sys::Reflect::set(&window, &"fetch".into(), &self.original).expect("unpatched");
        self.calls.borrow().clone()
    }
}

/// A session is refreshed on its own, shortly before its access token
/// expires (a fifth of its lifetime before, at most five minutes), once.
#[wasm_bindgen_test]
async fn a_session_is_refreshed_before_its_access_token_expires() {
    let store = SessionStore::open().expect("sessionStorage");
    let keeper =
        Tokens::new(Some(store), config().relay_url.clone(), deployment(), Callback::noop());
    let relay = FakeRelay::install();
    let response: TokenResponse = serde_json::from_str(
        r#"{"access_token":"first","token_type":"bearer","expires_in":5,"refresh_token":"r1"}"#,
    )
    .expect("a token response");
    let (lineage, keys) = new_lineage().await;
    let expires_at =
        keeper.start(&lineage, keys, response).expires_at_ms.expect("an expiry") as f64;
    let is_fresh = || keeper.current().is_some_and(|s| s.access_token.secret() == "fresh-1");
    let refreshed = within_ten_seconds(async {
        while !is_fresh() {
            gloo_timers::future::TimeoutFuture::new(100).await;
        }
    })
    .await;
    let calls = relay.remove();
    keeper.sign_out();
    assert!(refreshed.is_some(), "no refresh within 10 s of a token that lives 5 s");
    assert_eq!(calls.len(), 1, "one refresh, not {}", calls.len());
    assert!(
        calls[0] < expires_at,
        "refreshed at {} ms, after the token expired at {expires_at} ms",
        calls[0]
    );
}

/// A tab that gives up waiting for another tab's refresh (no news came)
/// reports it, keeps its session, and never refreshes later, even when the
/// browser kept its withdrawn lock request and grants it once the other tab
/// lets go: the refresh token it holds may be dead by then.
#[wasm_bindgen_test]
async fn a_wait_that_timed_out_never_refreshes_later() {
    let (keeper, stale, release) = behind_another_tab(|store, relay, deployment, on_event| {
        Tokens::new(store, relay, deployment, on_event).with_wait_for_other_tab(200)
    })
    .await;
    let deaf = DeafLocks::install();
    let fetches = CountingFetch::install();
    let outcome = within_ten_seconds(keeper.refresh(stale.clone())).await;
    deaf.remove();
    // The other tab lets go, and the browser grants the request this tab
    // gave up on. Locks are granted in order: once this next request has
    // the lock, the abandoned one has had its turn.
    let _ = release.call0(&JsValue::NULL);
    let again = within_ten_seconds(hold_lock(&tabs::lock_name(&stale))).await;
    let calls = fetches.remove();
    if let Some(again) = &again {
        let _ = again.call0(&JsValue::NULL);
    }

    let problem = outcome
        .expect("still waiting 10 s after a 200 ms deadline")
        .expect_err("no newer session came, so the wait fails");
    assert_eq!(problem.kind, ProblemKind::RelaySlow, "{problem:?}");
    assert!(again.is_some(), "the lock is still taken after the abandoned request was granted");
    assert_eq!(calls, 0, "the abandoned request refreshed after all");
    assert_eq!(keeper.current(), Some(stale), "the session is untouched");
}

/// Chromium can leave a lock request that is aborted within milliseconds of
/// being made in the queue, its promise never settling (it made the
/// end-to-end "tab that was away" scenario fail about one run in ten). The
/// keeper must not depend on the abort: here `navigator.locks.request`
/// ignores the signal altogether, and a newer session from another tab must
/// still end the wait at once. When the lock is later granted to the
/// abandoned request, it is given straight back.
#[wasm_bindgen_test]
async fn a_newer_session_ends_the_wait_even_if_the_browser_ignores_the_abort() {
    let (keeper, stale, release) = behind_another_tab(Tokens::new).await;
    // From here on, lock requests ignore their signal.
    let deaf = DeafLocks::install();
    let refreshing = keeper.refresh(stale.clone());
    let outcome =
        within_ten_seconds(futures::future::join(refreshing, broadcast_rotation(&stale))).await;
    // Undo the patch and let the lock go before asserting, so that a failure
    // here leaves nothing behind for the other tests of this page.
    deaf.remove();
    let _ = release.call0(&JsValue::NULL);
    let (refreshed, newer) =
        outcome.expect("still waiting after 10 s, although another tab sent a newer session");
    assert_eq!(refreshed.expect("the waiting tab takes the broadcast session"), newer);
    assert_eq!(keeper.current(), Some(newer));

    // The request the browser kept is granted once the other tab let go,
    // and must not keep the lock.
    let again = within_ten_seconds(hold_lock(&tabs::lock_name(&stale)))
        .await
        .expect("the lock is still taken 10 s after the abandoned request was granted");
    let _ = again.call0(&JsValue::NULL);
}

fn tokens_response(refresh: &str) -> TokenResponse {
    TokenResponse {
        access_token: AccessToken::new("access-1"),
        token_type: "bearer".into(),
        expires_in: Some(7200),
        refresh_token: Some(RefreshToken::new(refresh)),
        scope: Some("account email".into()),
    }
}

#[wasm_bindgen_test]
async fn sign_out_reaches_tabs_that_share_the_session() {
    let relay = config().relay_url;
    let (tx, rx) = oneshot::channel::<TokenEvent>();
    let tx = RefCell::new(Some(tx));
    let on_event = Callback::from(move |event: TokenEvent| {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(event);
        }
    });
    // Two keepers with their own BroadcastChannel stand in for two tabs.
    let here = Tokens::new(None, relay.clone(), deployment(), Callback::noop());
    let other = Tokens::new(None, relay.clone(), deployment(), on_event);
    let unrelated = Tokens::new(None, relay, deployment(), Callback::noop());
    let shared = sign_in(&here, "shared-refresh").await;
    other.resume(shared);
    sign_in(&unrelated, "another-session").await;

    here.sign_out();
    assert_eq!(here.current(), None);
    let event = rx.await.expect("the other tab hears about it");
    assert_eq!(event, TokenEvent::Ended(Problem::signed_out_elsewhere()));
    assert_eq!(other.current(), None, "the other tab forgot the tokens");
    assert!(unrelated.current().is_some(), "a different session is left alone");
}

// ---- the session's key and its proofs ---------------------------------------------

fn subtle() -> web_sys::SubtleCrypto {
    oauth_dance::crypto::subtle().expect("the test page is a secure context")
}

/// Parses JSON into a JavaScript value (WebCrypto's parameters).
fn js(json: &str) -> js_sys::Object {
    js_sys::JSON::parse(json).expect("JSON").unchecked_into()
}

async fn settle(promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, JsValue> {
    wasm_bindgen_futures::JsFuture::from(promise?).await
}

/// Decodes base64url (no padding) with the browser's `atob`.
fn unbase64url(text: &str) -> Vec<u8> {
    let mut standard: String = text
        .chars()
        .map(|c| {
            if c == '-' {
                '+'
            } else if c == '_' {
                '/'
            } else {
                c
            }
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    let binary = web_sys::window().expect("window").atob(&standard).expect("base64url");
    binary.chars().map(|c| c as u8).collect()
}

/// The three parts of a compact JWS: header and claims as JSON, and the
/// signature's bytes; and the signing input.
fn jws_parts(proof: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
    let parts: Vec<&str> = proof.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts: {proof}");
    for part in &parts {
        assert!(
            part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "base64url without padding: {part}"
        );
    }
    let json = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&unbase64url(part)).expect("the part is JSON")
    };
    (json(parts[0]), json(parts[1]), unbase64url(parts[2]), format!("{}.{}", parts[0], parts[1]))
}

/// Whether `signature` over `input` verifies with WebCrypto against `jwk`.
async fn verifies(jwk: &serde_json::Value, signature: &[u8], input: &[u8]) -> bool {
    let key = settle(subtle().import_key_with_object(
        "jwk",
        &js(&jwk.to_string()),
        &js(r#"{"name":"ECDSA","namedCurve":"P-256"}"#),
        false,
        &js(r#"["verify"]"#),
    ))
    .await
    .expect("the proof's JWK imports as a P-256 public key")
    .unchecked_into::<web_sys::CryptoKey>();
    settle(subtle().verify_with_object_and_u8_array_and_u8_array(
        &js(r#"{"name":"ECDSA","hash":"SHA-256"}"#),
        &key,
        signature,
        input,
    ))
    .await
    .expect("verify runs")
    .as_bool()
    .expect("a boolean")
}

/// The `x` of a key pair's public key.
async fn public_x(keys: &KeyPair) -> String {
    oauth_dance::crypto::public_xy(&keys.public_key().expect("a public key")).await.expect("x").0
}

#[wasm_bindgen_test]
async fn a_proof_verifies_against_its_own_key_and_names_the_relay() {
    let (_, keys) = new_lineage().await;
    let relay = WebUrl::parse("https://relay.example/token?v=1").expect("url");
    let before = js_sys::Date::now() / 1000.0;
    let proof = oauth_dance::dpop::proof(&keys, &relay).await.expect("a proof");
    let (header, claims, signature, input) = jws_parts(&proof);

    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = header["jwk"].as_object().expect("a jwk object");
    let mut members: Vec<&str> = jwk.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["crv", "kty", "x", "y"], "only the public members: {jwk:?}");
    assert_eq!((&header["jwk"]["kty"], &header["jwk"]["crv"]), (&"EC".into(), &"P-256".into()));
    assert_eq!(header["jwk"]["x"].as_str(), Some(public_x(&keys).await.as_str()));
    assert_eq!(header.as_object().map(|h| h.len()), Some(3), "{header}");

    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://relay.example/token", "no query or fragment");
    let iat = claims["iat"].as_f64().expect("a number");
    assert!(iat.fract() == 0.0 && iat >= before.floor() && iat <= before + 5.0, "iat {iat}");
    let jti = claims["jti"].as_str().expect("a jti");
    assert!(unbase64url(jti).len() >= 16, "at least 16 random bytes: {jti}");
    assert_eq!(claims.as_object().map(|c| c.len()), Some(4), "{claims}");

    assert_eq!(signature.len(), 64, "ES256 signs with r || s");
    assert!(verifies(&header["jwk"], &signature, input.as_bytes()).await, "the signature verifies");
    let forged = input.replace('.', ".e");
    assert!(!verifies(&header["jwk"], &signature, forged.as_bytes()).await, "and only for itself");

    let again = oauth_dance::dpop::proof(&keys, &relay).await.expect("another proof");
    assert_ne!(jws_parts(&again).1["jti"], claims["jti"], "every proof has its own jti");
}

#[wasm_bindgen_test]
async fn the_private_key_cannot_be_extracted() {
    let (lineage, keys) = new_lineage().await;
    let private = keys.private_key().expect("a private key");
    assert!(!private.extractable(), "made with extractable: false");
    for format in ["jwk", "pkcs8"] {
        let exported = settle(subtle().export_key(format, &private)).await;
        assert!(exported.is_err(), "the private key was exported as {format}");
    }
    // The copy IndexedDB hands back is just as locked.
    let stored = keys::load(&lineage.id).await.expect("IndexedDB").expect("the stored pair");
    let private = stored.private_key().expect("a private key");
    assert!(!private.extractable());
    assert!(settle(subtle().export_key("jwk", &private)).await.is_err());
    keys::delete(&lineage.id);
}

/// Waits (at most ten seconds) until IndexedDB has no key for `lineage`.
async fn key_is_deleted(lineage: &str) -> bool {
    within_ten_seconds(async {
        while keys::load(lineage).await.expect("IndexedDB").is_some() {
            gloo_timers::future::TimeoutFuture::new(20).await;
        }
    })
    .await
    .is_some()
}

#[wasm_bindgen_test]
async fn the_key_is_kept_in_indexeddb_for_other_tabs_and_deleted_on_sign_out() {
    let keeper = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    let session = sign_in(&keeper, "refresh-0").await;
    let stored = keys::load(&session.lineage).await.expect("IndexedDB");
    let stored = stored.expect("the key pair is in IndexedDB under the lineage");
    let made = keys::load(&session.lineage).await.expect("IndexedDB").expect("still there");
    assert_eq!(public_x(&stored).await, public_x(&made).await);
    assert!(
        keys::load(&Lineage::generate().id).await.expect("IndexedDB").is_none(),
        "no key under another lineage"
    );

    keeper.sign_out();
    assert!(key_is_deleted(&session.lineage).await, "the key outlived the sign-out");
}

/// A tab restored from session storage (a reload, a duplicated tab) signs
/// its refresh with the key IndexedDB keeps for its lineage, in the form
/// body, never in a header.
#[wasm_bindgen_test]
async fn a_restored_tab_refreshes_with_a_proof_by_the_stored_key() {
    let first = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    let session = sign_in(&first, "refresh-0").await;
    drop(first);
    let stored = keys::load(&session.lineage).await.expect("IndexedDB").expect("stored");

    let restored = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    restored.resume(session.clone());
    let relay = FakeRelay::install();
    let refreshed = within_ten_seconds(restored.refresh(session.clone())).await;
    let sent = relay.remove_sent();
    let refreshed = refreshed.expect("no answer in 10 s").expect("refreshed");
    assert_eq!(refreshed.generation, 1);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!sent[0].dpop_header, "the proof must not ride in a header (CORS preflight)");
    let form = WebUrl::parse(&format!("https://x.test/?{}", sent[0].body)).expect("a form");
    let pairs = js_sys::Array::from(
        &web_sys::UrlSearchParams::new_with_str(form.query().unwrap_or_default())
            .expect("params")
            .get_all("dpop"),
    );
    assert_eq!(pairs.length(), 1, "one proof in the body: {}", sent[0].body);
    let proof = pairs.get(0).as_string().expect("a string");
    assert!(sent[0].body.starts_with("grant_type=refresh_token&refresh_token=refresh-0&dpop="));
    let (header, claims, signature, input) = jws_parts(&proof);
    assert_eq!(header["jwk"]["x"].as_str(), Some(public_x(&stored).await.as_str()));
    assert_eq!(claims["htu"], config().relay_url.as_str());
    assert!(verifies(&header["jwk"], &signature, input.as_bytes()).await);
    restored.sign_out();
}

/// Without its key (the browser's site data was cleared) a session can't be
/// refreshed: it ends at once, in plain words, without asking the relay.
#[wasm_bindgen_test]
async fn a_session_whose_key_is_gone_ends_without_asking_the_relay() {
    let (tx, rx) = oneshot::channel::<TokenEvent>();
    let tx = RefCell::new(Some(tx));
    let on_event = Callback::from(move |event: TokenEvent| {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(event);
        }
    });
    let first = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    let session = sign_in(&first, "refresh-0").await;
    drop(first);
    keys::delete(&session.lineage);
    assert!(key_is_deleted(&session.lineage).await);

    let restored = Tokens::new(None, config().relay_url, deployment(), on_event);
    restored.resume(session.clone());
    let fetches = CountingFetch::install();
    let outcome = within_ten_seconds(restored.refresh(session)).await;
    assert_eq!(fetches.remove(), 0, "the relay was asked without a key to sign with");
    let problem = outcome.expect("no answer in 10 s").expect_err("no key, no refresh");
    assert_eq!(problem.kind, ProblemKind::SessionUnbound, "{problem:?}");
    assert!(oauth_dance::session::is_final(&problem));
    assert_eq!(restored.current(), None, "signed out");
    let event = rx.await.expect("the app hears about it");
    assert!(matches!(event, TokenEvent::Ended(p) if p.kind == ProblemKind::SessionUnbound));
}

// ---- the sealed channel ---------------------------------------------------------

/// Waits until the page's count of rejected channel messages reaches
/// `count`; false after ten seconds.
async fn rejected_reaches(count: u32) -> bool {
    within_ten_seconds(async {
        while tabs::rejected_count() < count {
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
    })
    .await
    .is_some()
}

#[wasm_bindgen_test]
async fn a_message_opens_only_with_its_lineages_key() {
    let mine = Lineage::generate();
    let theirs = Lineage::generate();
    let session = Session::start(&mine, tokens_response("r"), 0);
    let message = Message::rotated(&session);
    let sealed = tabs::seal(&mine.channel_key, &message).await.expect("sealed");
    assert_eq!(tabs::open(&mine.channel_key, &sealed).await, Some(message.clone()));
    assert_eq!(tabs::open(&theirs.channel_key, &sealed).await, None, "opened with another key");
    // No token travels in the clear.
    let data = js_sys::Reflect::get(&sealed, &"data".into()).expect("data");
    let bytes = js_sys::Uint8Array::new(&data).to_vec();
    assert!(!String::from_utf8_lossy(&bytes).contains("access-1"), "the token is readable");
    let again = tabs::seal(&mine.channel_key, &message).await.expect("sealed");
    let iv = |v: &JsValue| {
        js_sys::Uint8Array::new(&js_sys::Reflect::get(v, &"iv".into()).expect("iv")).to_vec()
    };
    assert_eq!(iv(&sealed).len(), 12);
    assert_ne!(iv(&sealed), iv(&again), "every message has its own IV");
}

#[wasm_bindgen_test]
async fn a_changed_byte_or_junk_does_not_open() {
    let mine = Lineage::generate();
    let message = Message::signed_out(&Session::start(&mine, tokens_response("r"), 0));
    let sealed = tabs::seal(&mine.channel_key, &message).await.expect("sealed");
    let part = |name: &str| {
        js_sys::Uint8Array::new(&js_sys::Reflect::get(&sealed, &name.into()).expect(name)).to_vec()
    };
    let with = |name: &str, bytes: Vec<u8>| {
        let copy = js_sys::Object::new();
        for member in ["iv", "data"] {
            let value: JsValue = if member == name {
                js_sys::Uint8Array::from(&bytes[..]).buffer().into()
            } else {
                js_sys::Reflect::get(&sealed, &member.into()).expect(member)
            };
            js_sys::Reflect::set(&copy, &member.into(), &value).expect("set");
        }
        JsValue::from(copy)
    };
    let untouched = with("data", part("data"));
    assert_eq!(
        tabs::open(&mine.channel_key, &untouched).await,
        Some(message),
        "a faithful copy opens"
    );
    for (name, at) in [("data", 0), ("data", part("data").len() - 1), ("iv", 3)] {
        let mut bytes = part(name);
        bytes[at] ^= 1;
        let tampered = with(name, bytes);
        assert_eq!(tabs::open(&mine.channel_key, &tampered).await, None, "{name}[{at}] changed");
    }
    let text = JsValue::from_str(r#"{"lineage":"x","generation":0}"#);
    for junk in [text, JsValue::NULL, js_sys::Object::new().into(), JsValue::from(7)] {
        assert_eq!(tabs::open(&mine.channel_key, &junk).await, None, "{junk:?} opened");
    }
}

/// A message that does not open with the tab's key is ignored and counted:
/// one sealed for another lineage, a forged sign-out in the clear (the old
/// format), a tampered one. Nobody else can sign our tabs out or plant a
/// session; our own tabs still can.
#[wasm_bindgen_test]
async fn messages_that_do_not_open_are_ignored_and_counted() {
    let keeper = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    let mine = sign_in(&keeper, "refresh-0").await;
    let before = tabs::rejected_count();

    // A stranger's rotation "for" our lineage, sealed with its own key.
    let stranger = Lineage::generate();
    let planted = tabs::seal(&stranger.channel_key, &Message::rotated(&rotated(&mine))).await;
    post_raw(&planted.expect("sealed"));
    // A sign-out in the clear, as the channel carried it before.
    let forged = serde_json::to_string(&Message::signed_out(&mine)).expect("json");
    post_raw(&JsValue::from_str(&forged));
    assert!(rejected_reaches(before + 2).await, "the two messages were not counted");
    assert_eq!(keeper.current(), Some(mine.clone()), "a message that did not open was obeyed");
    let attribute =
        document().document_element().and_then(|e| e.get_attribute(tabs::REJECTED_ATTRIBUTE));
    assert_eq!(attribute, Some((before + 2).to_string()), "the count is on <html>");

    // Our own tab's sign-out opens, and is obeyed.
    let sealed = tabs::seal(&mine.channel_key, &Message::signed_out(&mine)).await;
    post_raw(&sealed.expect("sealed"));
    let signed_out = within_ten_seconds(async {
        while keeper.current().is_some() {
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
    })
    .await;
    assert!(signed_out.is_some(), "our own tab's sign-out was not obeyed");
    assert_eq!(tabs::rejected_count(), before + 2, "a message that opened was counted");
}

/// A session carried inside a message that opens must still be of the
/// tab's lineage: a tab of one sign-in can't hand its session to another.
#[wasm_bindgen_test]
async fn a_sealed_message_carrying_another_lineage_is_not_adopted() {
    let keeper = Tokens::new(None, config().relay_url, deployment(), Callback::noop());
    let mine = sign_in(&keeper, "refresh-0").await;
    let mut other = Session::start(&Lineage::generate(), tokens_response("theirs"), 0);
    other.generation = mine.generation + 5;
    let message = Message { session: Some(other), ..Message::rotated(&rotated(&mine)) };
    post_raw(&tabs::seal(&mine.channel_key, &message).await.expect("sealed"));
    // Then a proper rotation, which is adopted: the first one had its turn.
    let newer = broadcast_rotation(&mine).await;
    let adopted = within_ten_seconds(async {
        while keeper.current().as_ref() != Some(&newer) {
            gloo_timers::future::TimeoutFuture::new(10).await;
        }
    })
    .await;
    assert!(adopted.is_some(), "the proper rotation was not adopted: {:?}", keeper.current());
    keeper.sign_out();
}

// ---- views in the DOM ---------------------------------------------------------

#[wasm_bindgen_test]
async fn a_setup_problem_renders_its_checklist_and_retry() {
    let root = root();
    let problem = Problem::relay_unreachable(&deployment(), "TypeError: Failed to fetch");
    yew::Renderer::<ProblemView>::with_root_and_props(
        root.clone(),
        ProblemViewProps {
            problem,
            compact: false,
            with_action: false,
            on_retry: Callback::noop(),
            on_sign_in: Callback::noop(),
            on_reload: Callback::noop(),
            id: AttrValue::Static("problem"),
        },
    )
    .render();
    yew::scheduler::flush().await;

    let section = root.query_selector("#problem").ok().flatten().expect("#problem");
    assert_eq!(section.get_attribute("data-kind").as_deref(), Some("relay-unreachable"));
    assert_eq!(section.get_attribute("role").as_deref(), Some("alert"));
    assert_eq!(
        text_of(&root, "#problem-title").as_deref(),
        Some("Couldn't reach the sign-in relay")
    );
    assert_eq!(count(&root, "#checklist li"), 3);
    let settings = text_of(&root, "#checklist").unwrap_or_default();
    assert!(settings.contains("DANCE_ALLOWED_ORIGINS on the relay"), "{settings}");
    assert!(settings.contains(&flow::origin_of(&base())), "{settings}");
    assert!(text_of(&root, "#problem-detail").unwrap_or_default().contains("Failed to fetch"));
    let retry = root.query_selector("button#retry").ok().flatten().expect("a retry button");
    assert_eq!(retry.text_content().as_deref(), Some("Try again"));
    assert_eq!(count(&root, "#sign-in-again"), 0);
}

#[wasm_bindgen_test]
async fn a_user_problem_offers_sign_in_again() {
    let root = root();
    let (tx, rx) = oneshot::channel::<()>();
    let tx = RefCell::new(Some(tx));
    yew::Renderer::<ProblemView>::with_root_and_props(
        root.clone(),
        ProblemViewProps {
            problem: Problem::state_mismatch(),
            compact: false,
            with_action: false,
            on_retry: Callback::noop(),
            on_sign_in: Callback::from(move |_| {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(());
                }
            }),
            on_reload: Callback::noop(),
            id: AttrValue::Static("problem"),
        },
    )
    .render();
    yew::scheduler::flush().await;
    assert_eq!(count(&root, "#checklist"), 0, "no checklist for a visitor's problem");
    assert_eq!(count(&root, "#retry"), 0);
    let button: web_sys::HtmlElement = root
        .query_selector("#sign-in-again")
        .ok()
        .flatten()
        .and_then(|e| wasm_bindgen::JsCast::dyn_into(e).ok())
        .expect("a sign-in-again button");
    button.click();
    rx.await.expect("the button calls back");
}

#[wasm_bindgen_test]
async fn the_landing_shows_why_the_session_ended() {
    let root = root();
    yew::Renderer::<Landing>::with_root_and_props(
        root.clone(),
        LandingProps {
            href: Some(AttrValue::from("https://bitbucket.org/site/oauth2/authorize?x=1")),
            reason: Some(Problem::session_expired("invalid_grant")),
            on_sign_in: Callback::noop(),
        },
    )
    .render();
    yew::scheduler::flush().await;
    let link = root.query_selector("a#sign-in").ok().flatten().expect("a sign-in link");
    assert_eq!(
        link.get_attribute("href").as_deref(),
        Some("https://bitbucket.org/site/oauth2/authorize?x=1")
    );
    assert_eq!(link.text_content().as_deref().map(str::trim), Some("Sign in with Bitbucket"));
    assert_eq!(text_of(&root, "#problem-title").as_deref(), Some("Your session has ended"));
}

#[wasm_bindgen_test]
async fn the_profile_renders_text_and_only_https_links() {
    let user = serde_json::from_str(
        r#"{"display_name":"<img src=x onerror=alert(1)>","nickname":"alice","account_id":"557058:1",
            "uuid":"{abc}","account_status":"active","created_on":"2019-02-19T10:36:46.361566-08:00",
            "has_2fa_enabled":true,"website":"javascript:alert(1)","location":null,
            "links":{"html":{"href":"http://127.0.0.1:9090/alice/"},
                     "avatar":{"href":"http://127.0.0.1:9090/avatars/alice.svg"}}}"#,
    )
    .expect("user JSON");
    let emails = vec![
        serde_json::from_str(
            r#"{"email":"alice@example.com","is_primary":true,"is_confirmed":true}"#,
        )
        .expect("email"),
        serde_json::from_str(
            r#"{"email":"old@example.com","is_primary":false,"is_confirmed":false}"#,
        )
        .expect("email"),
    ];
    let root = root();
    yew::Renderer::<ProfileView>::with_root_and_props(
        root.clone(),
        ProfileViewProps {
            profile: Rc::new(Profile::new(&user, Ok(emails))),
            on_retry: Callback::noop(),
            on_sign_in: Callback::noop(),
        },
    )
    .render();
    yew::scheduler::flush().await;

    assert_eq!(text_of(&root, "#display-name").as_deref(), Some("<img src=x onerror=alert(1)>"));
    assert_eq!(count(&root, "#display-name img"), 0, "API text is never markup");
    assert_eq!(text_of(&root, "#member-since").as_deref(), Some("19 February 2019"));
    assert_eq!(text_of(&root, "#two-factor").as_deref(), Some("On"));
    assert_eq!(count(&root, "#location"), 0, "null fields are not shown");
    assert_eq!(count(&root, "#website a"), 0, "no javascript: link");
    assert_eq!(count(&root, "#bitbucket-profile a"), 0, "http profile link shown as text");
    assert_eq!(
        text_of(&root, "#bitbucket-profile").as_deref(),
        Some("http://127.0.0.1:9090/alice/")
    );
    let avatar = root.query_selector("img#avatar").ok().flatten().expect("avatar");
    assert_eq!(
        avatar.get_attribute("src").as_deref(),
        Some("http://127.0.0.1:9090/avatars/alice.svg")
    );
    assert!(avatar.get_attribute("alt").unwrap_or_default().starts_with("Avatar of"));
    assert_eq!(count(&root, "#emails li"), 2);
    let first = text_of(&root, "#emails li:first-child").unwrap_or_default();
    assert!(
        first.contains("alice@example.com")
            && first.contains("Primary")
            && first.contains("Confirmed"),
        "{first}"
    );
    assert!(text_of(&root, "#emails li:last-child").unwrap_or_default().contains("Unconfirmed"));
    let revoke = text_of(&root, "#revoke-note").unwrap_or_default();
    assert!(revoke.contains("Personal settings → App authorizations"), "{revoke}");
}

#[wasm_bindgen_test]
async fn a_missing_email_permission_is_explained_inside_the_profile() {
    let user = serde_json::from_str(
        r#"{"display_name":"Bob","links":{"html":{"href":"https://bitbucket.org/bob/"}}}"#,
    )
    .expect("user JSON");
    let root = root();
    let signed_in_again = Rc::new(RefCell::new(0));
    let counter = signed_in_again.clone();
    yew::Renderer::<ProfileView>::with_root_and_props(
        root.clone(),
        ProfileViewProps {
            profile: Rc::new(Profile::new(
                &user,
                Err(Problem::api_forbidden(Permission::Email, "Forbidden")),
            )),
            on_retry: Callback::noop(),
            on_sign_in: Callback::from(move |_| *counter.borrow_mut() += 1),
        },
    )
    .render();
    yew::scheduler::flush().await;
    assert_eq!(count(&root, "#problem"), 0, "the page itself is fine");
    assert!(
        text_of(&root, "#emails-problem-explanation")
            .unwrap_or_default()
            .contains("Account: Email")
    );
    assert_eq!(count(&root, "#emails-problem-checklist li"), 1);
    // Its way out: once the permission is added, a new sign-in gets it.
    let button = root
        .query_selector("button#emails-problem-sign-in-again")
        .ok()
        .flatten()
        .expect("a \"Sign in again\" button in the emails notice");
    assert_eq!(button.text_content().as_deref(), Some("Sign in again"));
    button.unchecked_into::<web_sys::HtmlElement>().click();
    assert_eq!(*signed_in_again.borrow(), 1, "the button signs in again");
    let link = root.query_selector("#bitbucket-profile a").ok().flatten().expect("an https link");
    assert_eq!(link.get_attribute("href").as_deref(), Some("https://bitbucket.org/bob/"));
    assert_eq!(link.get_attribute("rel").as_deref(), Some("noopener noreferrer"));
}

#[wasm_bindgen_test]
async fn a_site_that_does_not_ask_for_emails_shows_no_emails_section() {
    let user = serde_json::from_str(r#"{"display_name":"Bob"}"#).expect("user JSON");
    let root = root();
    yew::Renderer::<ProfileView>::with_root_and_props(
        root.clone(),
        ProfileViewProps {
            profile: Rc::new(Profile::without_emails(&user)),
            on_retry: Callback::noop(),
            on_sign_in: Callback::noop(),
        },
    )
    .render();
    yew::scheduler::flush().await;
    assert_eq!(text_of(&root, "#display-name").as_deref(), Some("Bob"));
    assert_eq!(count(&root, "#emails-title"), 0);
    assert_eq!(count(&root, "#emails"), 0);
}

#[wasm_bindgen_test]
fn the_crash_view_needs_no_app() {
    let root = root();
    oauth_dance::render_crash(&root);
    assert_eq!(text_of(&root, "#problem-title").as_deref(), Some("Something went wrong"));
    let reload = root.query_selector("a#reload").ok().flatten().expect("a reload link");
    assert_eq!(reload.get_attribute("href"), Some(location_href()));
}

// ---- URLs, parsed by this browser ---------------------------------------------

/// The same expectations as `weburl`'s native tests (which run on the `url`
/// crate), here met by the browser's own `URL`.
#[wasm_bindgen_test]
fn the_browsers_url_parser_gives_the_same_parts() {
    let u = WebUrl::parse("https://User:pw@Example.test:8443/a/b?x=1&y#frag").expect("parses");
    assert_eq!(u.as_str(), "https://User:pw@example.test:8443/a/b?x=1&y#frag");
    assert_eq!(u.origin(), "https://example.test:8443");
    assert_eq!((u.scheme(), u.host(), u.path()), ("https", "example.test", "/a/b"));
    assert_eq!((u.query(), u.fragment()), (Some("x=1&y"), Some("frag")));
    assert!(u.has_credentials());
    let plain = WebUrl::parse("http://127.0.0.1:8080").expect("parses");
    assert_eq!((plain.path(), plain.query(), plain.fragment()), ("/", None, None));
    assert_eq!(WebUrl::parse("javascript:alert(1)").expect("parses").origin(), "null");
    assert_eq!(WebUrl::parse("not a url"), None);

    let base = WebUrl::parse("https://user.github.io/repo/index.html?x#y").expect("parses");
    assert_eq!(
        base.join("config.json").map(String::from).as_deref(),
        Some("https://user.github.io/repo/config.json")
    );
    assert_eq!(base.join("//evil.example/").expect("joins").origin(), "https://evil.example");
    assert_eq!(
        base.without_query_and_fragment().as_str(),
        "https://user.github.io/repo/index.html"
    );
    for yes in ["http://127.0.0.1:8787/", "http://127.1/", "http://[::1]/", "http://localhost/"] {
        assert!(WebUrl::parse(yes).expect("parses").is_loopback(), "{yes}");
    }
    for no in ["http://10.0.0.1/", "http://[::2]/", "http://localhost.example/"] {
        assert!(!WebUrl::parse(no).expect("parses").is_loopback(), "{no}");
    }
}

// ---- config.json requested by screen.js ---------------------------------------

/// Leaves what `assets/screen.js` leaves: `{ url, reply, abort }`, the reply
/// being an answer already in hand with `body`. Returns its controller.
fn leave_early_config(url: &str, body: &str) -> web_sys::AbortController {
    let early = js_sys::Object::new();
    let response = web_sys::Response::new_with_opt_str(Some(body)).expect("a response");
    let set = |name: &str, value: &JsValue| {
        js_sys::Reflect::set(&early, &name.into(), value).expect("set");
    };
    set("url", &url.into());
    set("reply", &js_sys::Promise::resolve(&response));
    let abort = web_sys::AbortController::new().expect("a controller");
    set("abort", &abort);
    js_sys::Reflect::set(&js_sys::global(), &oauth_dance::api::EARLY_CONFIG_GLOBAL.into(), &early)
        .expect("set the global");
    abort
}

fn early_config_left() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &oauth_dance::api::EARLY_CONFIG_GLOBAL.into())
        .expect("has")
}

/// The first load of the settings uses the request screen.js started (here an
/// answer no server could give: this test has no config.json to fetch), and
/// takes it: nothing is left for a second load.
#[wasm_bindgen_test]
async fn the_first_config_load_takes_over_screen_js_request() {
    let url = "http://127.0.0.1:1/app/config.json";
    let body = include_str!("../../config.json")
        .replace("DemoKeyOfTheOauthDanceFakebucket", "from-screen-js");
    let abort = leave_early_config(url, &body);
    let parsed = WebUrl::parse(url).expect("url");
    let config = oauth_dance::api::fetch_config(&parsed).await.expect("the early answer is used");
    assert_eq!(config.client_id.as_str(), "from-screen-js");
    assert!(!early_config_left(), "the early request was not taken");
    assert!(!abort.signal().aborted(), "the request the app used was aborted");
}

/// A request screen.js started for another address is not used: it is
/// aborted and dropped.
#[wasm_bindgen_test]
fn an_early_request_for_another_address_is_not_used() {
    let abort = leave_early_config("http://127.0.0.1:1/other/config.json", "{}");
    assert!(oauth_dance::api::take_early_config("http://127.0.0.1:1/app/config.json").is_none());
    assert!(!early_config_left(), "a mismatched early request was left behind");
    assert!(abort.signal().aborted(), "a mismatched early request runs on");
    assert!(oauth_dance::api::take_early_config("http://127.0.0.1:1/other/config.json").is_none());
}

// ---- JSON through the browser's JSON.parse ----------------------------------

#[wasm_bindgen_test]
fn json_parse_builds_the_tree_the_native_tests_expect() {
    use oauth_dance::json::{Json, MAX_DEPTH, parse};
    assert_eq!(
        parse(r#"{"b": [1, -2, 0.5, "é\u00e9", null, true], "a": {}, "b": false}"#),
        Ok(Json::Object(vec![
            ("b".to_owned(), Json::Bool(false)),
            ("a".to_owned(), Json::Object(vec![])),
        ])),
        "a repeated key keeps its place and takes the last value"
    );
    assert_eq!(
        parse(r#"[1, -2, 0.5, "é\u00e9", null, true, 9007199254740993]"#),
        Ok(Json::Array(vec![
            Json::Number(1.0),
            Json::Number(-2.0),
            Json::Number(0.5),
            Json::String("éé".to_owned()),
            Json::Null,
            Json::Bool(true),
            Json::Number(9_007_199_254_740_992.0),
        ]))
    );
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(&deep(MAX_DEPTH)).is_ok());
    let error = parse(&deep(MAX_DEPTH + 1)).expect_err("too deep");
    assert!(error.to_string().contains("nested"), "{error}");
    for bad in ["", "{", "[] []", "{'a': 1}", "[1,]", "NaN"] {
        let error = parse(bad).expect_err(bad);
        assert!(!error.to_string().is_empty(), "{bad}: JSON.parse's message is kept");
    }
}

#[wasm_bindgen_test]
fn json_parse_errors_say_where_but_never_quote_the_text() {
    use oauth_dance::json::{Json, parse};
    let secret = "SECRET-TOKEN-TAIL";
    for bad in [format!(r#"{{"access_token":"{secret}","expires_in":x}}"#), secret.to_owned()] {
        let error = parse(&bad).expect_err("not JSON").to_string();
        assert!(error.starts_with("not valid JSON"), "{error}");
        assert!(!error.contains("SECRET") && !error.contains("TAIL"), "quotes the text: {error}");
    }
    // What only the browser does (src/json.rs lists it).
    assert_eq!(parse(r#""\ud800""#), Ok(Json::String("\u{fffd}".to_owned())));
    assert_eq!(parse("1e400"), Ok(Json::Number(f64::INFINITY)));
    assert_eq!(
        parse(r#"{"b":1,"2":2}"#),
        Ok(Json::Object(vec![
            ("2".to_owned(), Json::Number(2.0)),
            ("b".to_owned(), Json::Number(1.0)),
        ]))
    );
}

#[wasm_bindgen_test]
fn a_broken_config_json_gets_its_checklist_line_in_this_browser() {
    let line = |text: &str| {
        let issues = Config::parse(text).expect_err("not a valid config");
        assert_eq!(issues.len(), 1, "{text}");
        format!("{}: {}", issues[0].name, issues[0].fix)
    };
    let garbage = line(r#"{"client_id": "abc", oops}"#);
    assert!(garbage.starts_with("config.json: Must be a valid JSON object"), "{garbage}");
    assert!(garbage.contains("not valid JSON at position"), "where it breaks: {garbage}");
    assert!(!garbage.contains("oops"), "the text is quoted: {garbage}");
    let list = line("[1, 2]");
    assert!(list.contains("invalid type: an array, expected a JSON object"), "{list}");
}

#[wasm_bindgen_test]
fn bitbucket_payloads_read_through_json_parse_as_serde_json_reads_them() {
    use dance_protocol::bitbucket::{ApiError, Email, Paginated, User};
    use dance_protocol::token::TokenError;
    use oauth_dance::json::from_str;
    fn same<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) {
        let direct = serde_json::from_str::<T>(text).ok();
        assert_eq!(from_str::<T>(text).ok(), direct, "{text}");
    }
    for text in [
        r#"{"display_name":"Alice","has_2fa_enabled":null,"location":null,"links":{"avatar":{"href":"https://a.test/x.png"}},"created_on":"2019-02-19T10:36:46.361566-08:00"}"#,
        r#"{"display_name":null,"links":null}"#,
        r#"{"display_name":5}"#,
        r#"{"values":[{"email":"a@b.test","is_primary":null,"is_confirmed":true,"type":"email"}],"next":"https://api.test/2.0/user/emails?page=2","page":1,"pagelen":10,"size":11}"#,
        r#"{"values":[{"is_primary":true}]}"#,
        r#"{"type":"error","error":{"message":"Access token expired."}}"#,
        r#"{"type":"error","error":{"message":"m","detail":{"required":["email"],"granted":["account"]}}}"#,
        r#"{"type":"error","error":{"message":"m","detail":"text"}}"#,
        r#"{"error":"invalid_grant","error_description":"The code has expired."}"#,
        r#"{"access_token":"a","token_type":"bearer","expires_in":"7200","scopes":"account email"}"#,
        r#"{"access_token":"a","token_type":"bearer","expires_in":7200,"refresh_token":"r","scope":"account"}"#,
    ] {
        same::<User>(text);
        same::<Paginated<Email>>(text);
        same::<ApiError>(text);
        same::<TokenError>(text);
        same::<TokenResponse>(text);
    }
}

#[wasm_bindgen_test]
fn the_bundles_allocator_reuses_freed_memory_and_bounds_growth() {
    const PAGE: usize = 65_536;
    let pages = || core::arch::wasm32::memory_size(0);
    // Many short-lived allocations of mixed sizes, up to a few wasm pages,
    // as parsing and rendering make: memory must stop growing once the
    // freed blocks are reused.
    let churn = || {
        for round in 0..200usize {
            let sizes = [8, 24, 100, 1_000, 4_096, 70_000, 200_000];
            let fill = u8::try_from(round % 251).unwrap_or(0);
            let blocks: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![fill; n + round]).collect();
            assert!(blocks.iter().zip(sizes).all(|(b, n)| b.len() == n + round));
        }
    };
    churn();
    let after_first = pages();
    churn();
    churn();
    assert_eq!(pages(), after_first, "memory grew although every block was freed");
    // A buffer grown one byte at a time to 1 MiB, three times over: pools are
    // never merged, so the first may take about twice its size, and the
    // later ones must reuse it.
    let before = pages();
    for _ in 0..3 {
        let mut buffer = Vec::new();
        for i in 0..(1usize << 20) {
            buffer.push(u8::try_from(i % 256).unwrap_or(0));
        }
        assert_eq!(buffer.len(), 1 << 20);
    }
    let grown = (pages() - before) * PAGE;
    assert!(grown <= 3 << 20, "a 1 MiB buffer grew memory by {grown} B");
}
