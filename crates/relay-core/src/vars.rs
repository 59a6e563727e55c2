//! The relay's settings as text: the `DANCE_*` variables, read into a
//! [`Config`] with every problem reported at once.
//!
//! A Cloudflare Worker gets its settings as text vars and secrets and reads
//! them with [`Config::from_vars`]; the native binary reads the same
//! variables through clap (its `cli` module), using the helpers here for the
//! values that need more than a number or a flag. [`Config::to_vars`] is the
//! inverse, for whoever writes a Worker's settings (the local `workerd`
//! launcher, the demo). The names here are the only spelling of each
//! setting: the configuration checks and the native command line use them.

use crate::config::{Config, DEFAULT_SESSION_LIFETIME, Limits, Problem, default_token_url};
use crate::seal::SealingKey;
use dance_protocol::{ClientId, ClientSecret};
use std::time::Duration;
use url::Url;

/// The OAuth consumer's Key.
pub const CLIENT_ID: &str = "DANCE_CLIENT_ID";
/// The OAuth consumer's Secret (a Worker secret, never a plain var).
pub const CLIENT_SECRET: &str = "DANCE_CLIENT_SECRET";
/// Where token requests are forwarded.
pub const TOKEN_URL: &str = "DANCE_TOKEN_URL";
/// Comma-separated origins allowed to call `/token`.
pub const ALLOWED_ORIGINS: &str = "DANCE_ALLOWED_ORIGINS";
/// Comma-separated redirect URIs a code exchange may name.
pub const ALLOWED_REDIRECT_URIS: &str = "DANCE_ALLOWED_REDIRECT_URIS";
/// Whether requests without `Origin` are served.
pub const ALLOW_MISSING_ORIGIN: &str = "DANCE_ALLOW_MISSING_ORIGIN";
/// The largest request body, in bytes.
pub const MAX_BODY_BYTES: &str = "DANCE_MAX_BODY_BYTES";
/// The largest request header section, in bytes.
pub const MAX_HEADER_BYTES: &str = "DANCE_MAX_HEADER_BYTES";
/// The upstream deadline (`500ms`, `10s`, `1m`).
pub const UPSTREAM_TIMEOUT: &str = "DANCE_UPSTREAM_TIMEOUT";
/// Requests per minute per client address; 0 turns the limit off.
pub const RATE_LIMIT: &str = "DANCE_RATE_LIMIT";

/// How many exchanges may wait on the token endpoint at once (native relay only).
pub const MAX_CONCURRENCY: &str = "DANCE_MAX_CONCURRENCY";
/// How many connections may be open at once (native relay only).
pub const MAX_CONNECTIONS: &str = "DANCE_MAX_CONNECTIONS";
/// Whether `X-Forwarded-For` decides the client address (native relay only).
pub const TRUST_PROXY: &str = "DANCE_TRUST_PROXY";
/// Where `GET /metrics` is served, if anywhere (native relay only).
pub const METRICS_LISTEN: &str = "DANCE_METRICS_LISTEN";

/// The settings only the native relay has, each with why a Worker does
/// without it.
pub const NATIVE_ONLY: [(&str, &str); 4] = [
    (TRUST_PROXY, "the client address is always CF-Connecting-IP"),
    (MAX_CONCURRENCY, "Cloudflare scales the isolates"),
    (MAX_CONNECTIONS, "Cloudflare scales the isolates"),
    (METRICS_LISTEN, "a Worker has no metrics endpoint; Cloudflare counts its requests"),
];

/// The sealing keys for refresh tokens, comma-separated, the sealing one
/// first (a secret).
pub const SEALING_KEY: &str = "DANCE_SEALING_KEY";
/// How long a session may last from its sign-in (`30d`, `12h`, ...).
pub const SESSION_LIFETIME: &str = "DANCE_SESSION_LIFETIME";

/// Every variable [`Config::from_vars`] reads, in the order `to_vars` writes them.
pub const ALL: [&str; 12] = [
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_URL,
    ALLOWED_ORIGINS,
    ALLOWED_REDIRECT_URIS,
    ALLOW_MISSING_ORIGIN,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    UPSTREAM_TIMEOUT,
    RATE_LIMIT,
    SEALING_KEY,
    SESSION_LIFETIME,
];

impl Config {
    /// Reads a configuration from variables, `lookup(name)` giving each
    /// one's value or `None` when it is not set. Unset settings take the same
    /// defaults as the native binary's. Returns the configuration (with
    /// harmless placeholders where a value could not be read) and every
    /// problem, those of reading the values first, then [`Config::problems`].
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<Problem>) {
        let mut problems = Vec::new();
        let client_id = ClientId::new(lookup(CLIENT_ID).unwrap_or_default());
        let client_secret = ClientSecret::new(lookup(CLIENT_SECRET).unwrap_or_default());
        let token_url = match lookup(TOKEN_URL) {
            Some(text) => parse_token_url(&text, &mut problems),
            None => default_token_url(),
        };
        let list = |name: &str| entries(&[lookup(name).unwrap_or_default()]);
        let defaults = Limits::default();
        let allow_missing_origin = read(&lookup, ALLOW_MISSING_ORIGIN, parse_bool, &mut problems);
        let max_body_bytes = read(&lookup, MAX_BODY_BYTES, parse_count, &mut problems);
        let max_header_bytes = read(&lookup, MAX_HEADER_BYTES, parse_count, &mut problems);
        let upstream_timeout = read(&lookup, UPSTREAM_TIMEOUT, parse_duration, &mut problems);
        let rate_limit = read(&lookup, RATE_LIMIT, parse_count, &mut problems);
        let sealing_keys = read(&lookup, SEALING_KEY, parse_sealing_keys, &mut problems);
        let session_lifetime = read(&lookup, SESSION_LIFETIME, parse_duration, &mut problems);
        let config = Config {
            client_id,
            client_secret,
            token_url,
            allowed_origins: list(ALLOWED_ORIGINS),
            allowed_redirect_uris: list(ALLOWED_REDIRECT_URIS),
            allow_missing_origin: allow_missing_origin.unwrap_or(false),
            trust_proxy: false,
            sealing_keys: sealing_keys.unwrap_or_default(),
            session_lifetime: session_lifetime.unwrap_or(DEFAULT_SESSION_LIFETIME),
            limits: Limits {
                max_body_bytes: max_body_bytes.unwrap_or(defaults.max_body_bytes),
                max_header_bytes: max_header_bytes.unwrap_or(defaults.max_header_bytes),
                upstream_timeout: upstream_timeout.unwrap_or(defaults.upstream_timeout),
                rate_limit_per_minute: rate_limit.unwrap_or(defaults.rate_limit_per_minute),
                ..defaults
            },
        };
        problems.extend(config.problems());
        drop_unset_warnings_of_unreadable(&mut problems);
        (config, problems)
    }

    /// The variables that [`Config::from_vars`] reads back into this
    /// configuration, the secret included (write it as a secret, not a
    /// plain var). Settings that only the native binary has (the proxy
    /// trust, the concurrency cap, the deadlines for headers and bodies) are
    /// not among them.
    pub fn to_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            (CLIENT_ID, self.client_id.as_str().to_owned()),
            (CLIENT_SECRET, self.client_secret.secret().to_owned()),
            (TOKEN_URL, self.token_url.to_string()),
            (ALLOWED_ORIGINS, self.allowed_origins.join(",")),
            (ALLOWED_REDIRECT_URIS, self.allowed_redirect_uris.join(",")),
            (ALLOW_MISSING_ORIGIN, self.allow_missing_origin.to_string()),
            (MAX_BODY_BYTES, self.limits.max_body_bytes.to_string()),
            (MAX_HEADER_BYTES, self.limits.max_header_bytes.to_string()),
            (UPSTREAM_TIMEOUT, format!("{}ms", self.limits.upstream_timeout.as_millis())),
            (RATE_LIMIT, self.limits.rate_limit_per_minute.to_string()),
            (
                SEALING_KEY,
                self.sealing_keys.iter().map(SealingKey::encode).collect::<Vec<_>>().join(","),
            ),
            (SESSION_LIFETIME, format!("{}s", self.session_lifetime.as_secs())),
        ]
    }
}

/// A warning for each [`NATIVE_ONLY`] setting that `lookup` finds set: the
/// Worker logs them, since it ignores those settings.
pub fn ignored_by_the_worker(lookup: impl Fn(&str) -> Option<String>) -> Vec<Problem> {
    NATIVE_ONLY
        .iter()
        .filter(|(name, _)| lookup(name).is_some())
        .map(|(name, why)| {
            Problem::warning(
                name,
                format!("the Worker ignores this setting of the native relay ({why})"),
            )
        })
        .collect()
}

/// The value of variable `name`, parsed, or `None` when it is unset or
/// unreadable (then with a problem saying why).
fn read<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let text = lookup(name)?;
    parse(&text).map_err(|message| problems.push(Problem::error(name, message))).ok()
}

/// The token URL, or the default with a problem saying why `text` is not one.
pub fn parse_token_url(text: &str, problems: &mut Vec<Problem>) -> Url {
    Url::parse(text).unwrap_or_else(|e| {
        // A value with an `@` may carry credentials: it is not repeated.
        let shown = if text.contains('@') { "the value".to_owned() } else { format!("`{text}`") };
        problems.push(Problem::error(TOKEN_URL, format!("{shown} is not a URL ({e})")));
        default_token_url()
    })
}

/// Drops the warning that a setting is not set when it was set but could not
/// be read (its error says so already): an unreadable `DANCE_SEALING_KEY`
/// leaves the configuration without keys, which [`Config::problems`] would
/// otherwise also report as "not set".
pub fn drop_unset_warnings_of_unreadable(problems: &mut Vec<Problem>) {
    let unreadable: Vec<&'static str> = problems
        .iter()
        .filter(|p| p.severity == crate::Severity::Error)
        .map(|p| p.setting)
        .collect();
    // The native binary also reads the keys from `DANCE_SEALING_KEY_FILE`.
    let keys_unreadable = unreadable.iter().any(|s| s.starts_with(SEALING_KEY));
    problems.retain(|p| {
        !(p.severity == crate::Severity::Warning && p.setting == SEALING_KEY && keys_unreadable)
    });
}

/// A comma-separated list of sealing keys; an empty value means none.
pub fn parse_sealing_keys(text: &str) -> Result<Vec<SealingKey>, String> {
    entries(&[text.to_owned()])
        .iter()
        .enumerate()
        .map(|(i, key)| SealingKey::parse(key).map_err(|e| format!("key {}: {e}", i + 1)))
        .collect()
}

/// List entries without surrounding spaces, empty ones dropped (so that
/// `a, b,` means `a` and `b`). Each value may itself be a comma-separated list.
pub fn entries(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 500ms, 10s, 1m, 12h or 30d"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(value.saturating_mul(3600))),
        "d" => Ok(Duration::from_secs(value.saturating_mul(24 * 3600))),
        _ => Err(format!(
            "`{text}` has an unknown unit; use ms, s, m, h or d (500ms, 10s, 1m, 12h, 30d)"
        )),
    }
}

/// Parses the flag spellings the native binary accepts: true/false, 1/0,
/// yes/no, on/off, y/n, in any case; empty means false.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "n" | "" => Ok(false),
        _ => Err(format!("`{text}` is not true or false")),
    }
}

/// Parses a whole number that fits its setting.
fn parse_count<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a whole number"));
    }
    digits.parse().map_err(|_| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> (Config, Vec<Problem>) {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 24 * 3600)));
        assert!(parse_duration("1w").expect_err("no weeks").contains("unknown unit"));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_worker_configuration_reads_back_what_was_written() {
        let mut config = Config::new(ClientId::new("key"), ClientSecret::new("s3cret"));
        config.token_url = "http://127.0.0.1:9090/site/oauth2/access_token".parse().expect("url");
        config.allowed_origins = vec!["https://a.example".into(), "http://127.0.0.1:8080".into()];
        config.allowed_redirect_uris = vec!["https://a.example/app/".into()];
        config.limits.upstream_timeout = Duration::from_millis(1500);
        config.limits.rate_limit_per_minute = 0;
        config.limits.max_body_bytes = 4096;
        config.sealing_keys = vec![SealingKey::generate(), SealingKey::generate()];
        config.session_lifetime = Duration::from_secs(7 * 24 * 3600);
        let vars = config.to_vars();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (read, problems) = from(&pairs);
        assert_eq!(problems, vec![]);
        assert_eq!(format!("{read:?}"), format!("{config:?}"));
        assert_eq!(read.client_secret.secret(), "s3cret");
        assert_eq!(vars.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ALL);
    }

    #[test]
    fn unset_settings_take_the_binary_defaults() {
        let (config, problems) = from(&[
            (CLIENT_ID, "key"),
            (CLIENT_SECRET, "secret"),
            (ALLOWED_ORIGINS, " https://a.example , "),
            (ALLOWED_REDIRECT_URIS, "https://a.example/"),
        ]);
        // Only the reminder that refresh tokens are not sealed.
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].setting, problems[0].severity), (SEALING_KEY, Severity::Warning));
        assert!(problems[0].message.contains("unbound"), "{}", problems[0].message);
        assert!(config.sealing_keys.is_empty());
        assert_eq!(config.session_lifetime, DEFAULT_SESSION_LIFETIME);
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.token_url.as_str(), crate::DEFAULT_TOKEN_URL);
        assert_eq!(config.allowed_origins, ["https://a.example"]);
        assert!(!config.allow_missing_origin && !config.trust_proxy);
    }

    #[test]
    fn unreadable_values_are_reported_together_with_the_checks() {
        let (_, problems) = from(&[
            (TOKEN_URL, "not a url"),
            (MAX_BODY_BYTES, "lots"),
            (UPSTREAM_TIMEOUT, "1w"),
            (ALLOW_MISSING_ORIGIN, "perhaps"),
            (RATE_LIMIT, "99999999999"),
            (SEALING_KEY, "c2hvcnQ, not base64!"),
            (SESSION_LIFETIME, "forever"),
        ]);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let joined = text.join("\n");
        for expected in [
            "error: DANCE_TOKEN_URL: `not a url` is not a URL",
            "error: DANCE_MAX_BODY_BYTES: `lots` is not a whole number",
            "error: DANCE_UPSTREAM_TIMEOUT: `1w` has an unknown unit",
            "error: DANCE_SEALING_KEY: key 1: a sealing key must be 32 bytes, this one is 5",
            "error: DANCE_SESSION_LIFETIME: `forever` is not a duration",
            "error: DANCE_ALLOW_MISSING_ORIGIN: `perhaps` is not true or false",
            "error: DANCE_RATE_LIMIT: `99999999999` is too large",
            "error: DANCE_CLIENT_ID: the client id is empty",
            "error: DANCE_CLIENT_SECRET: the client secret is empty",
            "error: DANCE_ALLOWED_ORIGINS: no origin is allowed",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
        assert!(!joined.contains("c2hvcnQ"), "a key, even a broken one, is never printed");
        let warnings: Vec<_> = problems.iter().filter(|p| p.severity != Severity::Error).collect();
        assert_eq!(warnings, Vec::<&Problem>::new(), "an unreadable key is not also \"not set\"");
        let (_, url_problems) = from(&[(TOKEN_URL, "https://user:hunter2@[bad")]);
        let printed = format!("{url_problems:?}");
        assert!(printed.contains("the value is not a URL") && !printed.contains("hunter2"));
    }

    #[test]
    fn the_worker_warns_about_each_native_only_setting_it_is_given() {
        let set = [(METRICS_LISTEN, "127.0.0.1:9787"), (TRUST_PROXY, "true")];
        let map: HashMap<&str, &str> = set.into_iter().collect();
        let warnings = ignored_by_the_worker(|name| map.get(name).map(|v| (*v).to_owned()));
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "warning: DANCE_TRUST_PROXY: the Worker ignores this setting of the native relay \
                 (the client address is always CF-Connecting-IP)",
                "warning: DANCE_METRICS_LISTEN: the Worker ignores this setting of the native \
                 relay (a Worker has no metrics endpoint; Cloudflare counts its requests)",
            ]
        );
        let none = ignored_by_the_worker(|name| (name == CLIENT_ID).then(|| "key".to_owned()));
        assert_eq!(none, vec![], "settings both relays read are not warned about");
    }

    #[test]
    fn flags_take_every_usual_spelling() {
        for (text, value) in [("true", true), ("ON", true), ("1", true), ("no", false), ("", false)]
        {
            assert_eq!(parse_bool(text), Ok(value), "{text}");
        }
    }
}
