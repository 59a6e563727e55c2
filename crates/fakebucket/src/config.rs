//! What a fakebucket instance emulates: its OAuth consumers, its users and
//! the knobs that switch between Bitbucket behaviours.
//!
//! [`Config::default`] is the demo set-up: one consumer, [`DEMO_KEY`] /
//! [`DEMO_SECRET`], whose callback is the demo SPA at [`DEMO_CALLBACK`]
//! and whose permissions are `account` and `email`, plus the built-in
//! [fixture users](crate::fixtures::default_users).
//!
//! Everything else in the repository that needs the demo consumer (the relay's
//! tests, `cargo xtask demo`, the end-to-end suite) reads these constants
//! rather than repeating the strings.

use crate::clock::Clock;
use crate::fixtures::{self, FixtureUser};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// The demo consumer's key (OAuth `client_id`). Consumers Bitbucket creates
/// since 2026 get 32-character keys, so the demo's has 32 characters too.
/// It is a public test value, not a credential.
pub const DEMO_KEY: &str = "DemoKeyOfTheOauthDanceFakebucket";

/// The demo consumer's secret: 76 characters, the length of a secret
/// Bitbucket issues since 2026. Everyone can read it here, so it only ever
/// means something to fakebucket.
pub const DEMO_SECRET: &str =
    "DemoSecretOfTheOauthDanceFakebucketEveryoneKnowsItNeverUseItForARealConsumer";

/// The demo consumer's registered callback: the demo SPA.
pub const DEMO_CALLBACK: &str = "http://127.0.0.1:8080/";

/// The length of the access tokens fakebucket issues by default: like
/// Bitbucket's since 2026, well over 2,500 characters.
pub const ACCESS_TOKEN_LEN: usize = 2600;

/// The length of the refresh tokens fakebucket issues by default (also over
/// 2,500 characters, and different from [`ACCESS_TOKEN_LEN`] so that a
/// client mixing the two up is caught).
pub const REFRESH_TOKEN_LEN: usize = 2560;

/// The access-token length with [`Config::short_tokens`]: the 88 characters
/// Bitbucket's tokens used to have.
pub const SHORT_ACCESS_TOKEN_LEN: usize = 88;

/// The refresh-token length with [`Config::short_tokens`].
pub const SHORT_REFRESH_TOKEN_LEN: usize = 24;

/// How long an unused refresh token lives by default: three months, counted
/// as 90 days.
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// The scopes Bitbucket Cloud knows, from its OAuth security definition, with
/// the sentence its consent page shows for each.
pub const SCOPES: &[(&str, &str)] = &[
    ("account", "Read your account information"),
    ("account:write", "Read and modify your account information"),
    ("email", "Read your account's primary email address"),
    ("issue", "Read your repositories' issues"),
    ("issue:write", "Read and modify your repositories' issues"),
    ("pipeline", "Access your repositories' build pipelines"),
    (
        "pipeline:variable",
        "Access your repositories' build pipelines and configure their variables",
    ),
    ("pipeline:write", "Access and rerun your repositories' build pipelines"),
    (
        "project",
        "Read your workspace's project settings and read repositories contained within your workspace's projects",
    ),
    ("project:admin", "Read and modify settings for projects in your workspace"),
    ("pullrequest", "Read your repositories and their pull requests"),
    ("pullrequest:write", "Read and modify your repositories and their pull requests"),
    ("repository", "Read your repositories"),
    ("repository:admin", "Administer your repositories"),
    ("repository:delete", "Delete your repositories"),
    ("repository:write", "Read and modify your repositories"),
    ("runner", "Access your workspaces/repositories' runners"),
    ("runner:write", "Access and edit your workspaces/repositories' runners"),
    ("snippet", "Read your snippets"),
    ("snippet:write", "Read and modify your snippets"),
    ("team", "Read your team membership information"),
    ("team:write", "Read and modify your team membership information"),
    ("webhook", "Read and modify your repositories' webhooks"),
    ("wiki", "Read and modify your repositories' wikis"),
];

/// The human description of a scope, as Bitbucket's consent page words it.
pub fn scope_description(scope: &str) -> Option<&'static str> {
    SCOPES.iter().find(|(name, _)| *name == scope).map(|(_, text)| *text)
}

/// Everything a fakebucket server needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The registered OAuth consumers (Bitbucket's name for OAuth clients).
    pub consumers: Vec<Consumer>,
    /// The accounts offered on the consent page. Must not be empty.
    pub users: Vec<FixtureUser>,
    /// How long an access token lives (`expires_in`); Bitbucket: 7200 s.
    pub token_lifetime: Duration,
    /// How long an authorization code (and a consent page) stays usable.
    pub code_lifetime: Duration,
    /// How long a refresh token lives unused, measured on [`Config::clock`];
    /// Bitbucket: three months ([`REFRESH_TOKEN_LIFETIME`]). Refresh tokens
    /// rotate, so every refresh starts a new period: a session refreshed at
    /// least once in each period lives on.
    pub refresh_token_lifetime: Duration,
    /// How long a refresh token keeps working after its first use. Bitbucket
    /// is reported to allow about ten minutes; the default is zero (a used
    /// token is refused at once), which is stricter, so a client that works
    /// here does not depend on the grace. A reuse within the window is
    /// answered like a first use: a new access token and a new refresh
    /// token, in the same grant.
    pub refresh_grace: Duration,
    /// Issue tokens of the old, short sizes ([`SHORT_ACCESS_TOKEN_LEN`] and
    /// [`SHORT_REFRESH_TOKEN_LEN`] characters) instead of Bitbucket's
    /// current ones ([`ACCESS_TOKEN_LEN`], [`REFRESH_TOKEN_LEN`]).
    pub short_tokens: bool,
    /// Whether PKCE is ignored (Bitbucket Cloud) or required (Data Center).
    pub pkce: PkceMode,
    /// Send the token response's scopes as `scopes`, as Bitbucket did before
    /// 2026-05-04, instead of `scope`.
    pub legacy_scopes_field: bool,
    /// Serve the test-control API under `/_fakebucket/`.
    pub admin: bool,
    /// The per-user API rate limit.
    pub rate_limit: RateLimit,
    /// The base URL used in links (`links.self`, avatars, `next` pages) and
    /// forms. `None`: `http://{listen address}/`, with an unspecified address
    /// such as `0.0.0.0` replaced by `127.0.0.1`.
    pub public_url: Option<Url>,
    /// The clock every expiry is measured on. Keep a clone to move time.
    pub clock: Clock,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            consumers: vec![Consumer::demo()],
            users: fixtures::default_users(),
            token_lifetime: Duration::from_secs(7200),
            code_lifetime: Duration::from_secs(600),
            refresh_token_lifetime: REFRESH_TOKEN_LIFETIME,
            refresh_grace: Duration::ZERO,
            short_tokens: false,
            pkce: PkceMode::Ignore,
            legacy_scopes_field: false,
            admin: false,
            rate_limit: RateLimit::default(),
            public_url: None,
            clock: Clock::new(),
        }
    }
}

impl Config {
    /// The consumer with this key, if one is registered.
    pub fn consumer(&self, key: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.key == key)
    }

    /// The user with this account id, if there is one.
    pub fn user(&self, account_id: &str) -> Option<&FixtureUser> {
        self.users.iter().find(|u| u.account_id == account_id)
    }

    /// Checks what the type system cannot: at least one user, unique consumer
    /// keys and user ids, and non-zero lifetimes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.users.is_empty() {
            return Err(ConfigError::NoUsers);
        }
        for (i, c) in self.consumers.iter().enumerate() {
            if self.consumers[..i].iter().any(|o| o.key == c.key) {
                return Err(ConfigError::DuplicateConsumer(c.key.clone()));
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            if self.users[..i]
                .iter()
                .any(|o| o.account_id == u.account_id || o.nickname == u.nickname)
            {
                return Err(ConfigError::DuplicateUser(u.nickname.clone()));
            }
        }
        if self.token_lifetime.is_zero()
            || self.code_lifetime.is_zero()
            || self.refresh_token_lifetime.is_zero()
        {
            return Err(ConfigError::ZeroLifetime);
        }
        if self.rate_limit.requests == 0 || self.rate_limit.window.is_zero() {
            return Err(ConfigError::ZeroRateLimit);
        }
        Ok(())
    }
}

/// A configuration that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The consent page needs someone to sign in as.
    #[error("at least one user is needed")]
    NoUsers,
    /// Two consumers share a key.
    #[error("consumer key {0:?} is registered twice")]
    DuplicateConsumer(String),
    /// Two users share an account id or nickname.
    #[error("user {0:?} is defined twice (same nickname or account id)")]
    DuplicateUser(String),
    /// A token, refresh-token or code lifetime of zero.
    #[error("token, refresh-token and code lifetimes must be longer than zero")]
    ZeroLifetime,
    /// A rate limit that allows nothing.
    #[error("the rate limit must allow at least one request in a non-empty window")]
    ZeroRateLimit,
}

/// How the token endpoint treats PKCE (RFC 7636).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PkceMode {
    /// Bitbucket Cloud: `code_challenge` and `code_verifier` are accepted and
    /// ignored.
    #[default]
    Ignore,
    /// Bitbucket Data Center: authorize requires an S256 `code_challenge`,
    /// and the token endpoint requires the matching `code_verifier`.
    Require,
}

impl FromStr for PkceMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ignore" => Ok(Self::Ignore),
            "require" => Ok(Self::Require),
            other => Err(format!("PKCE mode must be `ignore` or `require`, not {other:?}")),
        }
    }
}

impl fmt::Display for PkceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ignore => "ignore",
            Self::Require => "require",
        })
    }
}

/// At most `requests` authenticated API calls per user in any `window`
/// (a rolling window, as Bitbucket's is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls allowed per window.
    pub requests: u32,
    /// The window's length.
    pub window: Duration,
}

impl Default for RateLimit {
    /// Bitbucket's documented limit: about 1,000 requests per hour per user.
    fn default() -> Self {
        Self { requests: 1000, window: Duration::from_secs(3600) }
    }
}

/// An OAuth consumer, as registered in Bitbucket's workspace settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The application name shown on the consent page.
    pub name: String,
    /// The key (OAuth `client_id`). Its length is never checked: Bitbucket's
    /// are 18 characters on older consumers and 32 on newer ones.
    pub key: String,
    /// The secret (OAuth `client_secret`); 32 characters on older consumers,
    /// about 76 on newer ones, never checked.
    pub secret: String,
    /// The registered callback URL. A `redirect_uri` must start with it,
    /// compared as text: the `redirect_uri` exactly as sent against this
    /// URL as it prints (`Url` adds a `/` to an empty path, so
    /// `http://127.0.0.1:8080` registers as `http://127.0.0.1:8080/`).
    /// Bitbucket lets a consumer have none, and then refuses every token
    /// request with "No callback uri defined for the OAuth client.".
    pub callback: Option<Url>,
    /// The permissions granted to every token of this consumer (Bitbucket
    /// fixes scopes on the consumer, not per request).
    pub scopes: Vec<String>,
    /// "This is a private consumer": may use the client credentials grant.
    pub private: bool,
}

impl Consumer {
    /// A consumer with the `account` and `email` scopes, named after its key.
    pub fn new(key: impl Into<String>, secret: impl Into<String>, callback: Option<Url>) -> Self {
        let key = key.into();
        Self {
            name: key.clone(),
            key,
            secret: secret.into(),
            callback,
            scopes: vec!["account".into(), "email".into()],
            private: false,
        }
    }

    /// The demo consumer: [`DEMO_KEY`] / [`DEMO_SECRET`], callback
    /// [`DEMO_CALLBACK`], scopes `account email`.
    pub fn demo() -> Self {
        let callback = Url::parse(DEMO_CALLBACK).ok();
        Self { name: "oauth-dance demo".into(), ..Self::new(DEMO_KEY, DEMO_SECRET, callback) }
    }

    /// The demo consumer as a `--consumer` value:
    /// `KEY:SECRET:http://127.0.0.1:8080/`.
    pub fn demo_spec() -> String {
        format!("{DEMO_KEY}:{DEMO_SECRET}:{DEMO_CALLBACK}")
    }

    /// The same consumer with other scopes.
    pub fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The same consumer with another display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The same consumer marked private (client credentials allowed).
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// The scopes as the token response spells them: space-separated.
    pub fn scope_string(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A `--consumer` value that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsumerParseError {
    /// Fewer than three `:`-separated parts.
    #[error("expected KEY:SECRET:CALLBACK[:scopes=a,b][:name=NAME][:private]")]
    Shape,
    /// An empty key or secret.
    #[error("the consumer key and secret must not be empty")]
    Empty,
    /// The callback is not an absolute URL.
    #[error("the callback {0:?} is not an absolute URL")]
    Callback(String),
    /// A scope Bitbucket does not have.
    #[error("unknown scope {0:?}")]
    Scope(String),
}

impl FromStr for Consumer {
    type Err = ConsumerParseError;

    /// Parses `KEY:SECRET:CALLBACK[:scopes=account,email][:name=NAME][:private]`.
    ///
    /// The callback holds colons itself (`http://host:port/`), so options are
    /// peeled off the end: a trailing `:private`, `:scopes=...` or `:name=...`
    /// part is an option, everything between the secret and the options is
    /// the callback. An empty callback (`KEY:SECRET:`) registers none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let (Some(key), Some(secret), Some(mut rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ConsumerParseError::Shape);
        };
        if key.is_empty() || secret.is_empty() {
            return Err(ConsumerParseError::Empty);
        }
        let mut consumer = Consumer::new(key, secret, None);
        while let Some((head, last)) = rest.rsplit_once(':') {
            if last == "private" {
                consumer.private = true;
            } else if let Some(list) = last.strip_prefix("scopes=") {
                let scopes: Vec<String> =
                    list.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if let Some(bad) = scopes.iter().find(|s| scope_description(s).is_none()) {
                    return Err(ConsumerParseError::Scope(bad.clone()));
                }
                consumer.scopes = scopes;
            } else if let Some(name) = last.strip_prefix("name=") {
                consumer.name = name.to_owned();
            } else {
                break;
            }
            rest = head;
        }
        // The whole remainder may itself be a lone option (`KEY:SECRET:private`
        // has no callback), but that reads too much like a typo to guess at:
        // a callback must be a URL or empty.
        if !rest.is_empty() {
            let url =
                Url::parse(rest).map_err(|_| ConsumerParseError::Callback(rest.to_owned()))?;
            consumer.callback = Some(url);
        }
        Ok(consumer)
    }
}
