//! `config.json`, the SPA's settings: the one description of the file that
//! every party shares. The SPA reads it (`src/config.rs`, with the browser's
//! own JSON and URL parsers), `cargo xtask` and the test stacks write it
//! ([`Settings::to_json`]), and the doctor checks a deployed one. Each
//! setting's rule is here once, on plain strings or on the parts of an
//! already-parsed URL ([`Endpoint`]), so the browser's `URL` and the `url`
//! crate feed the same checks; what a party *says* about a problem (the
//! SPA's checklist line, the doctor's fix) stays with that party.
//!
//! ```json
//! {"client_id": "DemoKeyOfTheOauthDanceFakebucket",
//!  "authorize_url": "http://127.0.0.1:9090/site/oauth2/authorize",
//!  "relay_url": "http://127.0.0.1:8787/token",
//!  "api_base": "http://127.0.0.1:9090/2.0/",
//!  "scopes": ["account", "email"]}
//! ```

use serde::Serialize;

use super::{BITBUCKET_API_BASE, BITBUCKET_AUTHORIZE_URL, is_secure_enough};

/// The name of the settings file, beside the app's `index.html`.
pub const FILE: &str = "config.json";

/// The scopes the app asks the consumer for, and `scopes`' default.
pub const APP_SCOPES: [&str; 2] = ["account", "email"];

/// Bitbucket Cloud's OAuth scopes: the values `scopes` may list.
pub const KNOWN_SCOPES: [&str; 24] = [
    "account",
    "account:write",
    "email",
    "issue",
    "issue:write",
    "pipeline",
    "pipeline:write",
    "pipeline:variable",
    "project",
    "project:admin",
    "pullrequest",
    "pullrequest:write",
    "repository",
    "repository:write",
    "repository:admin",
    "repository:delete",
    "runner",
    "runner:write",
    "snippet",
    "snippet:write",
    "team",
    "team:write",
    "webhook",
    "wiki",
];

/// One setting of `config.json`; any other key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `client_id`: the Bitbucket OAuth consumer's Key (required).
    ClientId,
    /// `authorize_url`: the authorization endpoint (required).
    AuthorizeUrl,
    /// `relay_url`: the relay's token endpoint (required).
    RelayUrl,
    /// `api_base`: the API base, ending in `/` (required).
    ApiBase,
    /// `scopes`: the scopes the consumer grants (default [`APP_SCOPES`]).
    Scopes,
}

impl Field {
    /// Every setting, in the order the file lists them.
    pub const ALL: [Self; 5] =
        [Self::ClientId, Self::AuthorizeUrl, Self::RelayUrl, Self::ApiBase, Self::Scopes];

    /// The three settings that are URLs, each checked by [`check_endpoint`].
    pub const ENDPOINTS: [Self; 3] = [Self::AuthorizeUrl, Self::RelayUrl, Self::ApiBase];

    /// The key in `config.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ClientId => "client_id",
            Self::AuthorizeUrl => "authorize_url",
            Self::RelayUrl => "relay_url",
            Self::ApiBase => "api_base",
            Self::Scopes => "scopes",
        }
    }

    /// The setting named `key`, if it is one.
    pub fn from_name(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.name() == key)
    }

    /// An example value of a URL setting, to show in a message: the
    /// production endpoint, or a relay's shape. `None` for the others.
    pub const fn example_url(self) -> Option<&'static str> {
        match self {
            Self::AuthorizeUrl => Some(BITBUCKET_AUTHORIZE_URL),
            Self::RelayUrl => Some("https://relay.example/token"),
            Self::ApiBase => Some(BITBUCKET_API_BASE),
            Self::ClientId | Self::Scopes => None,
        }
    }

    /// The setting an unknown `key` is probably a misspelling of: the same
    /// letters and digits in any case, without dashes or underscores
    /// (`apiBase`, `API-BASE`), or without the plural's `s` (`scope`).
    pub fn suggest(key: &str) -> Option<Self> {
        let squash = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let wanted = squash(key);
        Self::ALL.into_iter().find(|field| {
            let known = squash(field.name());
            known == wanted || known.trim_end_matches('s') == wanted
        })
    }
}

/// The known settings, comma-separated, for a message: [`Field::ALL`]'s
/// names, written out so that no one builds the text at run time (bundle
/// size; a test checks it against [`Field::ALL`]).
pub const fn field_list() -> &'static str {
    "client_id, authorize_url, relay_url, api_base, scopes"
}

/// Why a `client_id` is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdProblem {
    /// Empty, or only spaces.
    Empty,
    /// Contains a space or a control character (a Key has none: it was
    /// copied with something around it).
    Spaces,
}

/// Checks a `client_id` exactly as written (not trimmed: the relay and
/// Bitbucket compare it byte for byte).
pub fn check_client_id(id: &str) -> Result<(), ClientIdProblem> {
    if id.trim().is_empty() {
        Err(ClientIdProblem::Empty)
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(ClientIdProblem::Spaces)
    } else {
        Ok(())
    }
}

/// Whether `scope` is one of Bitbucket Cloud's ([`KNOWN_SCOPES`]).
pub fn is_known_scope(scope: &str) -> bool {
    KNOWN_SCOPES.contains(&scope)
}

/// The parts of an endpoint's URL that the rules read, as a WHATWG URL
/// parser (the browser's `URL`, the `url` crate) gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// The scheme, without `:` (`https`).
    pub scheme: &'a str,
    /// The host as serialised (lowercase, IPv6 in brackets), without port.
    pub host: &'a str,
    /// The path (`/2.0/`).
    pub path: &'a str,
    /// Whether a user name or password is present.
    pub has_credentials: bool,
    /// Whether there is a query, even an empty one.
    pub has_query: bool,
    /// Whether there is a fragment, even an empty one.
    pub has_fragment: bool,
}

#[cfg(feature = "url")]
impl<'a> Endpoint<'a> {
    /// The parts of a URL parsed by the `url` crate.
    pub fn of(url: &'a url::Url) -> Self {
        Self {
            scheme: url.scheme(),
            host: url.host_str().unwrap_or_default(),
            path: url.path(),
            has_credentials: !url.username().is_empty() || url.password().is_some(),
            has_query: url.query().is_some(),
            has_fragment: url.fragment().is_some(),
        }
    }
}

/// Why an endpoint URL is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointProblem {
    /// Plain `http` on a host other than the local machine.
    PlainHttp,
    /// Neither `https` nor `http`.
    NotHttps,
    /// It carries a user name or password.
    Credentials,
    /// It has a `#fragment`.
    Fragment,
    /// `api_base` only: the path does not end with `/` (the app joins
    /// `user` and `user/emails` to it).
    NoTrailingSlash,
    /// `api_base` only: it has a query.
    Query,
}

/// Checks the URL of the endpoint `field` (one of [`Field::ENDPOINTS`]):
/// https (plain http only on loopback), no credentials, no fragment; for
/// `api_base`, a path ending in `/` and no query. Returns every problem, in
/// that order.
pub fn check_endpoint(field: Field, url: &Endpoint<'_>) -> Vec<EndpointProblem> {
    let mut problems = Vec::new();
    if !is_secure_enough(url.scheme, url.host) {
        problems.push(if url.scheme == "http" {
            EndpointProblem::PlainHttp
        } else {
            EndpointProblem::NotHttps
        });
    }
    if url.has_credentials {
        problems.push(EndpointProblem::Credentials);
    }
    if url.has_fragment {
        problems.push(EndpointProblem::Fragment);
    }
    if field == Field::ApiBase {
        if !url.path.ends_with('/') {
            problems.push(EndpointProblem::NoTrailingSlash);
        }
        if url.has_query {
            problems.push(EndpointProblem::Query);
        }
    }
    problems
}

/// The settings of one deployment, as `config.json` holds them: what every
/// tool that writes the file fills in ([`Settings::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The Bitbucket OAuth consumer's Key.
    pub client_id: String,
    /// The authorization endpoint.
    pub authorize_url: String,
    /// The relay's token endpoint.
    pub relay_url: String,
    /// The API base, ending in `/`.
    pub api_base: String,
    /// The scopes the consumer grants.
    pub scopes: Vec<String>,
}

impl Settings {
    /// Settings with the app's scopes ([`APP_SCOPES`]).
    pub fn new(
        client_id: impl Into<String>,
        authorize_url: impl Into<String>,
        relay_url: impl Into<String>,
        api_base: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            authorize_url: authorize_url.into(),
            relay_url: relay_url.into(),
            api_base: api_base.into(),
            scopes: APP_SCOPES.map(str::to_owned).to_vec(),
        }
    }

    /// Settings for Bitbucket Cloud itself and the relay at `relay_url`.
    pub fn bitbucket(client_id: impl Into<String>, relay_url: impl Into<String>) -> Self {
        Self::new(client_id, BITBUCKET_AUTHORIZE_URL, relay_url, BITBUCKET_API_BASE)
    }

    /// The text of `config.json`: pretty-printed JSON and a final newline.
    pub fn to_json(&self) -> String {
        // Serialising strings into a map cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint<'a>(scheme: &'a str, host: &'a str, path: &'a str) -> Endpoint<'a> {
        Endpoint {
            scheme,
            host,
            path,
            has_credentials: false,
            has_query: false,
            has_fragment: false,
        }
    }

    #[test]
    fn fields_have_one_name_each_and_misspellings_are_recognised() {
        for field in Field::ALL {
            assert_eq!(Field::from_name(field.name()), Some(field));
            assert_eq!(Field::suggest(field.name()), Some(field));
        }
        assert_eq!(Field::from_name("apiBase"), None);
        assert_eq!(Field::suggest("apiBase"), Some(Field::ApiBase));
        assert_eq!(Field::suggest("Client-ID"), Some(Field::ClientId));
        assert_eq!(Field::suggest("scope"), Some(Field::Scopes));
        assert_eq!(Field::suggest("relay"), None);
        assert_eq!(field_list(), Field::ALL.map(Field::name).join(", "));
        for field in Field::ALL {
            let example = field.example_url();
            assert_eq!(example.is_some(), Field::ENDPOINTS.contains(&field), "{field:?}");
            assert!(example.is_none_or(|url| url.starts_with("https://")), "{field:?}");
        }
    }

    #[test]
    fn client_ids_are_taken_exactly_as_written() {
        assert_eq!(check_client_id("DemoKeyOfTheOauthDanceFakebucket"), Ok(()));
        assert_eq!(check_client_id(""), Err(ClientIdProblem::Empty));
        assert_eq!(check_client_id(" \t"), Err(ClientIdProblem::Empty));
        assert_eq!(check_client_id("a b"), Err(ClientIdProblem::Spaces));
        assert_eq!(check_client_id(" key"), Err(ClientIdProblem::Spaces), "not trimmed");
        assert_eq!(check_client_id("key\n"), Err(ClientIdProblem::Spaces));
        assert_eq!(check_client_id("ke\u{7}y"), Err(ClientIdProblem::Spaces));
    }

    #[test]
    fn scopes_are_bitbuckets() {
        for scope in APP_SCOPES {
            assert!(is_known_scope(scope), "{scope}");
        }
        assert!(is_known_scope("repository:admin"));
        assert!(!is_known_scope("emails"));
        assert!(!is_known_scope("Account"));
        assert!(!is_known_scope(""));
    }

    #[test]
    fn endpoints_are_https_or_loopback_without_credentials_or_fragment() {
        use EndpointProblem::*;
        let check = |url: Endpoint<'_>| check_endpoint(Field::RelayUrl, &url);
        assert_eq!(check(endpoint("https", "relay.example", "/token")), []);
        assert_eq!(check(endpoint("http", "127.0.0.1", "/token")), []);
        assert_eq!(check(endpoint("http", "localhost", "/token")), []);
        assert_eq!(check(endpoint("http", "[::1]", "/token")), []);
        assert_eq!(check(endpoint("http", "relay.example", "/token")), [PlainHttp]);
        assert_eq!(check(endpoint("http", "10.0.0.1", "/token")), [PlainHttp]);
        assert_eq!(check(endpoint("ftp", "relay.example", "/token")), [NotHttps]);
        assert_eq!(check(endpoint("ftp", "127.0.0.1", "/token")), [NotHttps]);
        let with_all = Endpoint {
            has_credentials: true,
            has_fragment: true,
            has_query: true,
            ..endpoint("http", "relay.example", "/token")
        };
        assert_eq!(check(with_all), [PlainHttp, Credentials, Fragment], "a query is fine");
        assert_eq!(
            check_endpoint(Field::ApiBase, &with_all),
            [PlainHttp, Credentials, Fragment, NoTrailingSlash, Query]
        );
        assert_eq!(check_endpoint(Field::ApiBase, &endpoint("https", "api.test", "/2.0/")), []);
        assert_eq!(
            check_endpoint(Field::AuthorizeUrl, &endpoint("https", "b.test", "/a")),
            [],
            "only api_base needs the slash"
        );
    }

    #[cfg(feature = "url")]
    #[test]
    fn parsed_urls_are_checked_by_their_parts() {
        use EndpointProblem::*;
        let check = |field, text: &str| {
            let url = url::Url::parse(text).expect("url");
            check_endpoint(field, &Endpoint::of(&url))
        };
        assert_eq!(check(Field::RelayUrl, "http://LOCALHOST:8787/token"), []);
        assert_eq!(check(Field::RelayUrl, "http://127.1/token"), []);
        assert_eq!(check(Field::RelayUrl, "https://user:pw@relay.example/token"), [Credentials]);
        assert_eq!(check(Field::RelayUrl, "https://user@relay.example/token"), [Credentials]);
        assert_eq!(check(Field::RelayUrl, "https://relay.example/token#"), [Fragment]);
        assert_eq!(check(Field::ApiBase, "https://api.bitbucket.org/2.0"), [NoTrailingSlash]);
        assert_eq!(check(Field::ApiBase, "https://api.bitbucket.org/2.0/?"), [Query]);
        assert_eq!(check(Field::ApiBase, BITBUCKET_API_BASE), []);
        assert_eq!(check(Field::AuthorizeUrl, BITBUCKET_AUTHORIZE_URL), []);
    }

    #[test]
    fn the_writer_names_every_field_and_nothing_else() {
        let settings =
            Settings::new("key", "https://b.test/a", "https://r.test/token", "https://a.test/");
        let text = settings.to_json();
        assert!(text.ends_with("}\n"), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let object = value.as_object().expect("an object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut names = Field::ALL.map(Field::name);
        names.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, names);
        assert_eq!(value["client_id"], "key");
        assert_eq!(value["relay_url"], "https://r.test/token");
        assert_eq!(value["scopes"], serde_json::json!(["account", "email"]));
        // Whatever a value holds, it is written as a JSON string.
        let odd = Settings::new("a\"b\\c\n", "x", "y", "z").to_json();
        let value: serde_json::Value = serde_json::from_str(&odd).expect("JSON");
        assert_eq!(value["client_id"], "a\"b\\c\n");
    }

    #[test]
    fn bitbuckets_settings_pass_every_check() {
        let settings = Settings::bitbucket("AbC123", "https://relay.example.com/token");
        assert_eq!(check_client_id(&settings.client_id), Ok(()));
        assert!(settings.scopes.iter().all(|scope| is_known_scope(scope)));
        for (field, text) in [
            (Field::AuthorizeUrl, &settings.authorize_url),
            (Field::RelayUrl, &settings.relay_url),
            (Field::ApiBase, &settings.api_base),
        ] {
            let (scheme, rest) = text.split_once("://").expect("absolute");
            let host = rest.split('/').next().expect("host");
            let path = &rest[host.len()..];
            assert_eq!(check_endpoint(field, &endpoint(scheme, host, path)), [], "{text}");
        }
    }
}
