//! The accounts fakebucket knows and the Bitbucket JSON built from them.
//!
//! The JSON is written out field by field with `serde_json::json!`, following
//! the official `user` schema and the payloads captured from the real API
//! (`crates/protocol/tests/data/api-schemas.json`). It deliberately does not serialize
//! the `dance_protocol` types: the SPA parses with those, and a mistake in
//! them must show up as a failure against fakebucket rather than be mirrored
//! by it.
//!
//! The built-in users ([`default_users`]) cover the shapes a client meets:
//! - `ada`: every field filled in;
//! - `grace`: `has_2fa_enabled` and `location` null, no `website` at all, a
//!   `created_on` with a negative offset, as in the captured sample;
//! - `mei.tanaka`: a new-style account id, an empty `website`, and 14
//!   addresses (some unconfirmed, the primary one third) so that
//!   `/2.0/user/emails` has a second page;
//! - `zoe_obrien`: markup, quotes and a `javascript:` website in her profile,
//!   as anyone may type into a Bitbucket profile, to prove clients escape
//!   what they show and never follow a non-https link.

use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::str::FromStr;
use thiserror::Error;
use url::Url;

/// A profile field that Bitbucket may send with a value, send as `null`, or
/// leave out of the object entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence<T> {
    /// The key is missing from the JSON object.
    Absent,
    /// The key is present with the value `null`.
    Null,
    /// The key is present with this value.
    Set(T),
}

impl<T: Into<Value> + Clone> Presence<T> {
    /// Adds the field to `object` as this presence says.
    fn put(&self, object: &mut Map<String, Value>, key: &str) {
        match self {
            Presence::Absent => {}
            Presence::Null => {
                object.insert(key.to_owned(), Value::Null);
            }
            Presence::Set(v) => {
                object.insert(key.to_owned(), v.clone().into());
            }
        }
    }
}

/// One of a user's email addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureEmail {
    /// The address.
    pub email: String,
    /// Whether this is the primary address (exactly one per user should be).
    pub is_primary: bool,
    /// Whether the user has confirmed the address.
    pub is_confirmed: bool,
}

impl FixtureEmail {
    /// A confirmed address, primary or not.
    pub fn confirmed(email: impl Into<String>, is_primary: bool) -> Self {
        Self { email: email.into(), is_primary, is_confirmed: true }
    }

    /// An unconfirmed, non-primary address.
    pub fn unconfirmed(email: impl Into<String>) -> Self {
        Self { email: email.into(), is_primary: false, is_confirmed: false }
    }
}

/// A Bitbucket account that can sign in on the consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureUser {
    /// The UUID with braces, such as `{8a1c5f2e-...}`.
    pub uuid: String,
    /// The Atlassian account id (also the avatar's path segment).
    pub account_id: String,
    /// The non-unique handle.
    pub nickname: String,
    /// The name to show.
    pub display_name: String,
    /// Account creation time, served verbatim (RFC 3339, offset, microseconds).
    pub created_on: String,
    /// Two-step verification; Bitbucket often sends `null`.
    pub has_2fa_enabled: Presence<bool>,
    /// Atlassian staff flag.
    pub is_staff: bool,
    /// Free-text location.
    pub location: Presence<String>,
    /// Free-text website (not necessarily a URL).
    pub website: Presence<String>,
    /// Email addresses in the order `/2.0/user/emails` lists them.
    pub emails: Vec<FixtureEmail>,
}

impl FixtureUser {
    /// The initials drawn on the avatar: the first letter of the first two
    /// words of the display name that start with a letter or digit.
    pub fn initials(&self) -> String {
        let letters: String = self
            .display_name
            .split_whitespace()
            .filter_map(|w| w.chars().next().filter(|c| c.is_alphanumeric()))
            .take(2)
            .flat_map(char::to_uppercase)
            .collect();
        if letters.is_empty() { "?".to_owned() } else { letters }
    }

    /// The account's primary address, if it has one.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails.iter().find(|e| e.is_primary).map(|e| e.email.as_str())
    }
}

/// The four built-in users; see the module documentation for what each is for.
pub fn default_users() -> Vec<FixtureUser> {
    let mut mei_emails = vec![
        FixtureEmail::confirmed("mei@example.com", false),
        FixtureEmail::unconfirmed("mei.work@example.org"),
        FixtureEmail::confirmed("mei.tanaka@example.com", true),
    ];
    mei_emails.extend(
        (1..=10).map(|i| FixtureEmail::confirmed(format!("mei+{i:02}@example.com"), false)),
    );
    mei_emails.push(FixtureEmail::unconfirmed("old-mei@example.net"));

    vec![
        FixtureUser {
            uuid: "{8a1c5f2e-3b4d-4e6f-9a0b-1c2d3e4f5a6b}".into(),
            account_id: "5f1d2c3b4a5968778695a4b3".into(),
            nickname: "ada".into(),
            display_name: "Ada Lovelace".into(),
            created_on: "2015-03-12T09:41:27.118604+00:00".into(),
            has_2fa_enabled: Presence::Set(true),
            is_staff: false,
            location: Presence::Set("London".into()),
            website: Presence::Set("https://ada.example.com/".into()),
            emails: vec![
                FixtureEmail::confirmed("ada@example.com", true),
                FixtureEmail::confirmed("ada.lovelace@example.org", false),
            ],
        },
        FixtureUser {
            uuid: "{3f6e2b1a-7c8d-4e9f-a0b1-c2d3e4f5a6b7}".into(),
            account_id: "60a7b8c9d0e1f2a3b4c5d6e7".into(),
            nickname: "grace".into(),
            display_name: "Grace Hopper".into(),
            created_on: "2019-02-19T10:36:46.361566-08:00".into(),
            has_2fa_enabled: Presence::Null,
            is_staff: false,
            location: Presence::Null,
            website: Presence::Absent,
            emails: vec![FixtureEmail::confirmed("grace@example.net", true)],
        },
        FixtureUser {
            uuid: "{c4d5e6f7-0819-4a2b-bc3d-4e5f60718293}".into(),
            account_id: "712020:9d2f6c4a-1e3b-4a5c-8d7e-6f5a4b3c2d1e".into(),
            nickname: "mei.tanaka".into(),
            display_name: "Mei Tanaka".into(),
            created_on: "2023-11-05T23:07:01.004512+09:00".into(),
            has_2fa_enabled: Presence::Set(false),
            is_staff: false,
            location: Presence::Set("Osaka".into()),
            website: Presence::Set(String::new()),
            emails: mei_emails,
        },
        FixtureUser {
            uuid: "{e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b}".into(),
            account_id: "5b9e8d7c6b5a493827161504".into(),
            nickname: "zoe_obrien".into(),
            display_name: "Zoë \"Zed\" O'Brien <script>alert('fakebucket')</script> & Co.".into(),
            created_on: "2012-07-01T00:00:00.000001+05:30".into(),
            has_2fa_enabled: Presence::Set(true),
            is_staff: true,
            location: Presence::Set("<img src=x onerror=alert(1)>".into()),
            website: Presence::Set("javascript:alert(document.domain)".into()),
            emails: vec![FixtureEmail::confirmed("zoe.o'brien@example.com", true)],
        },
    ]
}

/// A `--user` value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserParseError {
    /// The nickname is empty or has characters outside `[A-Za-z0-9._-]`.
    #[error("the nickname must be non-empty and use only letters, digits, '.', '_' and '-'")]
    Nickname,
    /// An address without `@`.
    #[error("{0:?} is not an email address")]
    Email(String),
}

impl FromStr for FixtureUser {
    type Err = UserParseError;

    /// Parses `NICKNAME[:DISPLAY NAME[:EMAIL[,EMAIL...]]]`. The first address
    /// is the primary one; all are confirmed. The UUID and account id are
    /// derived from the nickname, so the same flag gives the same account on
    /// every run.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let nickname = parts.next().unwrap_or_default();
        if nickname.is_empty()
            || !nickname.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(UserParseError::Nickname);
        }
        let display_name = parts.next().filter(|d| !d.is_empty()).unwrap_or(nickname).to_owned();
        let mut emails = Vec::new();
        for (i, email) in
            parts.next().unwrap_or_default().split(',').filter(|e| !e.is_empty()).enumerate()
        {
            if !email.contains('@') {
                return Err(UserParseError::Email(email.to_owned()));
            }
            emails.push(FixtureEmail::confirmed(email, i == 0));
        }
        if emails.is_empty() {
            emails.push(FixtureEmail::confirmed(format!("{nickname}@example.com"), true));
        }
        let hash = fnv1a128(nickname.as_bytes());
        let hex = format!("{hash:032x}");
        Ok(FixtureUser {
            uuid: format!(
                "{{{}-{}-4{}-8{}-{}}}",
                &hex[0..8],
                &hex[8..12],
                &hex[13..16],
                &hex[17..20],
                &hex[20..32]
            ),
            account_id: hex[..24].to_owned(),
            nickname: nickname.to_owned(),
            display_name,
            created_on: "2024-01-02T03:04:05.678901+00:00".into(),
            has_2fa_enabled: Presence::Null,
            is_staff: false,
            location: Presence::Null,
            website: Presence::Absent,
            emails,
        })
    }
}

/// FNV-1a, 128-bit: a fixed, dependency-free hash for stable made-up ids.
fn fnv1a128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    bytes.iter().fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME))
}

/// `base` joined with path segments, each percent-encoded as a path segment
/// (so `{uuid}` becomes `%7Buuid%7D`, as in Bitbucket's links).
pub(crate) fn link(base: &Url, segments: &[&str], trailing_slash: bool) -> String {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
        if trailing_slash {
            path.push("");
        }
    }
    url.to_string()
}

/// The `GET /2.0/user` body for `user`, with links under `base`.
pub fn user_json(user: &FixtureUser, base: &Url) -> Value {
    let uuid = user.uuid.as_str();
    let href = |segments: &[&str]| json!({ "href": link(base, segments, false) });
    let mut object = json!({
        "display_name": user.display_name,
        "links": {
            "self": href(&["2.0", "users", uuid]),
            "avatar": href(&["avatars", &user.account_id, "128"]),
            "repositories": href(&["2.0", "repositories", uuid]),
            "snippets": href(&["2.0", "snippets", uuid]),
            "html": { "href": link(base, &[uuid], true) },
            "hooks": href(&["2.0", "users", uuid, "hooks"]),
        },
        "created_on": user.created_on,
        "type": "user",
        "uuid": uuid,
        "account_id": user.account_id,
        "nickname": user.nickname,
        "account_status": "active",
        "is_staff": user.is_staff,
    });
    if let Some(map) = object.as_object_mut() {
        user.has_2fa_enabled.put(map, "has_2fa_enabled");
        user.location.put(map, "location");
        user.website.put(map, "website");
    }
    object
}

/// One element of `GET /2.0/user/emails` (and the body of
/// `GET /2.0/user/emails/{email}`).
pub fn email_json(email: &FixtureEmail, base: &Url) -> Value {
    json!({
        "is_primary": email.is_primary,
        "is_confirmed": email.is_confirmed,
        "type": "email",
        "email": email.email,
        "links": { "self": { "href": link(base, &["2.0", "user", "emails", &email.email], false) } },
    })
}

/// A 128 x 128 SVG avatar: the user's initials on a colour derived from the
/// account id. Generated in memory, so no image is ever fetched from elsewhere.
pub fn avatar_svg(user: &FixtureUser) -> String {
    const COLOURS: [&str; 8] =
        ["#0052cc", "#00875a", "#5243aa", "#de350b", "#ff8b00", "#00a3bf", "#6554c0", "#403294"];
    let hash = fnv1a128(user.account_id.as_bytes());
    let colour = COLOURS[(hash % COLOURS.len() as u128) as usize];
    let mut svg = String::new();
    let _ = write!(
        svg,
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128" role="img" aria-label="{label}">"#,
            r#"<rect width="128" height="128" rx="64" fill="{colour}"/>"#,
            r##"<text x="64" y="64" dy="0.35em" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-size="52" fill="#ffffff">{initials}</text>"##,
            "</svg>"
        ),
        label = crate::html::escape(&user.display_name),
        colour = colour,
        initials = crate::html::escape(&user.initials()),
    );
    svg
}
