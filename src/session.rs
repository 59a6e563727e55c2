//! The tokens of one signed-in session, and when to refresh them: pure
//! arithmetic and the record kept in session storage, tested natively.
//!
//! A [`Session`] remembers when its access token expires and when to
//! refresh it: a fifth of the lifetime early, at most five minutes (so
//! Bitbucket's 7200 s tokens refresh at 6900 s). The token keeper
//! ([`crate::tokens`]) arms its timer from [`Session::refresh_delay_ms`]
//! and stores the session as JSON; [`is_final`] tells a refusal that ends
//! the session from a failure worth trying again.
//!
//! Every session belongs to a [`Lineage`], made at sign-in before the code
//! exchange and shared by every tab that inherited the session: a random id
//! (the key of its record in IndexedDB) and a random 32-byte channel key,
//! kept in session storage with the tokens. A session also counts its
//! `generation` (how often it was refreshed). What the tabs of a lineage do
//! with them is the business of [`crate::tabs`].

use crate::problem::{Problem, ProblemKind};
use dance_protocol::token::TokenResponse;
use dance_protocol::{AccessToken, RefreshToken, State};
use serde::{Deserialize, Serialize};
use std::fmt;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn response(expires_in: Option<u64>, refresh: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: AccessToken::new("at"),
            token_type: "bearer".into(),
            expires_in,
            refresh_token: refresh.map(RefreshToken::new),
            scope: Some("account email".into()),
        }
    }

    /// The first session of a new lineage.
    pub(crate) fn first(expires_in: Option<u64>, refresh: Option<&str>, now_ms: u64) -> Session {
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
