//! The cross-tab protocol: how the tabs of one sign-in share a rotating
//! refresh token, and never present a dead one.
//!
//! The keeper of each tab ([`crate::tokens::Tokens`]) runs it in the
//! browser; what is decided here (the lock names, the messages, whether a
//! tab adopts a message) is pure and tested natively, and the channel's
//! sealing is the thin WebCrypto glue of [`crate::crypto`].
//!
//!
//! # Several tabs, one rotating refresh token
//! Bitbucket rotates refresh tokens: each refresh kills the token it used.
//! Tabs normally hold separate sessions (session storage is per tab), but a
//! tab opened from another (duplicate tab, `window.open`) starts with a
//! *copy* of the opener's session storage, so two tabs can hold the same
//! refresh token. If both refreshed, the slower one would present a dead
//! token and lose the session (as it does with oidc-client-ts:
//! <https://github.com/authts/oidc-client-ts/issues/430>). Each session
//! therefore belongs to a [`Lineage`](crate::session::Lineage), made at sign-in before the code exchange and
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

use crate::crypto;
use crate::session::{ChannelKey, Session};
use dance_protocol::PkceVerifier;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use wasm_bindgen::JsValue;

/// The prefix of the Web Locks that serialise refreshes across tabs.
pub const REFRESH_LOCK: &str = "oauth-dance:refresh:";
/// How long a tab waits for another tab's refresh before giving up.
pub const WAIT_FOR_OTHER_TAB_MS: u32 = 30_000;
/// The BroadcastChannel on which tabs share rotated tokens.
pub const CHANNEL: &str = "oauth-dance";
/// The attribute of `<html>` that counts the channel messages this page
/// could not open.
pub const REJECTED_ATTRIBUTE: &str = "data-channel-rejected";

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
pub(crate) fn count_rejected() {
    let count = REJECTED.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    crate::browser::set_root_attribute(REJECTED_ATTRIBUTE, &count.to_string());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Lineage;
    use crate::session::tests::{first, response};
    use dance_protocol::AccessToken;

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
        let key: ChannelKey = crate::json::from_str(r#""k""#).expect("a key");
        let known = Session { channel_key: key, generation: 0, ..first };
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
}
