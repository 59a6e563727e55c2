//! The relay's configuration and its validation.
//!
//! [`Config`] is plain data with no command-line parsing in it, so tests and
//! embedders build it directly. The native binary builds it from flags and
//! `DANCE_*` variables (its `cli` module); the Worker from its vars and
//! secrets through [`crate::vars`]. [`Config::problems`] is the one place that
//! knows what a sound configuration looks like: `dance-relay check` prints its
//! findings, the native relay refuses to start on any error among them, and a
//! misconfigured Worker answers every request with them.

use crate::seal::SealingKey;
use crate::vars;
use dance_protocol::{ClientId, ClientSecret};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// Bitbucket Cloud's token endpoint, the default upstream.
pub const DEFAULT_TOKEN_URL: &str = dance_protocol::deployment::BITBUCKET_TOKEN_URL;

/// Everything the relay needs to serve.
///
/// `Debug` is safe to print: the secret redacts itself.
#[derive(Debug, Clone)]
pub struct Config {
    /// The OAuth consumer's key, sent to the token endpoint as the Basic user.
    pub client_id: ClientId,
    /// The OAuth consumer's secret, sent as the Basic password and nowhere else.
    pub client_secret: ClientSecret,
    /// Where token requests are forwarded.
    pub token_url: Url,
    /// Origins allowed to call `/token`, compared byte for byte with the
    /// request's `Origin` header.
    pub allowed_origins: Vec<String>,
    /// Redirect URIs an authorization code exchange may name, compared byte
    /// for byte.
    pub allowed_redirect_uris: Vec<String>,
    /// Serve requests that carry no `Origin` header (non-browser clients).
    pub allow_missing_origin: bool,
    /// Take the client address for rate limiting from the last
    /// `X-Forwarded-For` entry instead of the TCP peer.
    pub trust_proxy: bool,
    /// The keys that seal refresh tokens: the first seals, every one opens
    /// (so a new key can be put first while the old one still opens the
    /// tokens out there). Empty: refresh tokens pass through unsealed and
    /// unbound, as Bitbucket issued them.
    pub sealing_keys: Vec<SealingKey>,
    /// How long a session may last from its sign-in, refreshes included,
    /// when refresh tokens are sealed. Past it a refresh is refused.
    pub session_lifetime: Duration,
    /// Sizes, counts and deadlines.
    pub limits: Limits,
}

/// The default [`Config::session_lifetime`]: 30 days.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The relay's resource limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted request header section, in bytes. Up to twice this
    /// size the relay answers a JSON 431; beyond, the HTTP layer cuts the
    /// connection with a bare 431.
    pub max_header_bytes: usize,
    /// Exchanges forwarded upstream at the same time; more wait for a slot.
    /// The native relay also reads at most twice this many requests at once.
    pub max_concurrency: usize,
    /// Connections open at the same time (native relay); more wait in the
    /// kernel's accept queue until one closes.
    pub max_connections: usize,
    /// Deadline for the token endpoint's complete answer.
    pub upstream_timeout: Duration,
    /// How long a request waits for a concurrency slot before it gets a 503.
    pub slot_timeout: Duration,
    /// Requests per minute per client address (IPv6 per /64); 0 turns the
    /// limit off. Bursts may use the whole minute's budget at once.
    pub rate_limit_per_minute: u32,
    /// Deadline for receiving a request body once its headers arrived.
    pub body_timeout: Duration,
    /// Deadline for receiving a request's headers, which also closes idle
    /// keep-alive connections.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024,
            max_header_bytes: 8 * 1024,
            max_concurrency: 64,
            max_connections: 4096,
            upstream_timeout: Duration::from_secs(10),
            slot_timeout: Duration::from_secs(5),
            rate_limit_per_minute: 60,
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// A configuration for the given consumer with Bitbucket's token URL,
    /// default limits, and empty allowlists (which refuse everything: fill
    /// them before serving).
    pub fn new(client_id: ClientId, client_secret: ClientSecret) -> Self {
        Self {
            client_id,
            client_secret,
            token_url: default_token_url(),
            allowed_origins: Vec::new(),
            allowed_redirect_uris: Vec::new(),
            allow_missing_origin: false,
            trust_proxy: false,
            sealing_keys: Vec::new(),
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            limits: Limits::default(),
        }
    }

    /// Everything wrong or suspicious in this configuration, in the order of
    /// the settings. An empty list means the configuration is sound.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        check_client_id(self.client_id.as_str(), &mut problems);
        check_secret(self.client_secret.secret(), &mut problems);
        check_token_url(&self.token_url, &mut problems);
        check_origins(&self.allowed_origins, self.allow_missing_origin, &mut problems);
        check_redirect_uris(&self.allowed_redirect_uris, &self.allowed_origins, &mut problems);
        check_limits(&self.limits, &mut problems);
        check_sealing(&self.sealing_keys, self.session_lifetime, &mut problems);
        if self.trust_proxy {
            problems.push(Problem::warning(
                vars::TRUST_PROXY,
                "X-Forwarded-For decides the client address for rate limiting: make sure the relay \
                 is reachable only through one reverse proxy that appends to that header, or any \
                 client can pick its own address",
            ));
        }
        problems
    }

    /// Succeeds when [`Config::problems`] holds no error (warnings are fine).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let errors: Vec<Problem> =
            self.problems().into_iter().filter(|p| p.severity == Severity::Error).collect();
        if errors.is_empty() { Ok(()) } else { Err(ConfigError { problems: errors }) }
    }
}

/// Refresh tokens unsealed (a warning: that is how Bitbucket issues them,
/// but anyone holding one can refresh through the relay from anywhere), a
/// key given twice, or a session lifetime outside reason.
fn check_sealing(keys: &[SealingKey], lifetime: Duration, problems: &mut Vec<Problem>) {
    if keys.is_empty() {
        problems.push(Problem::warning(
            vars::SEALING_KEY,
            "not set: refresh tokens are unbound, so anyone who lifts one from a browser can \
             refresh through this relay from anywhere; set a key (`dance-relay keygen` prints \
             one) to seal them and bind each to its browser's key",
        ));
    }
    if keys.iter().enumerate().any(|(i, key)| keys[..i].contains(key)) {
        problems.push(Problem::warning(vars::SEALING_KEY, "the same key is listed twice"));
    }
    const MIN: Duration = Duration::from_secs(3600);
    const MAX: Duration = Duration::from_secs(365 * 24 * 3600);
    if !(MIN..=MAX).contains(&lifetime) {
        problems.push(Problem::error(
            vars::SESSION_LIFETIME,
            format!(
                "{} s is outside 1 hour to 365 days (the default is 30 days)",
                lifetime.as_secs()
            ),
        ));
    }
}

/// Bitbucket's token URL as a parsed [`Url`].
pub fn default_token_url() -> Url {
    // The constant is a valid URL; `check_token_url`'s test proves it.
    Url::parse(DEFAULT_TOKEN_URL).unwrap_or_else(|_| unreachable!("DEFAULT_TOKEN_URL is valid"))
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The relay would not work as intended, or would be unsafe: it refuses to start.
    Error,
    /// Worth a look, but the relay can run.
    Warning,
}

/// One finding about a configuration, naming the setting it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The environment variable of the setting, such as `DANCE_ALLOWED_ORIGINS`.
    pub setting: &'static str,
    /// What is wrong and how to fix it, in one sentence.
    pub message: String,
}

impl Problem {
    /// An error about `setting`.
    pub fn error(setting: &'static str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, setting, message: message.into() }
    }

    /// A warning about `setting`.
    pub fn warning(setting: &'static str, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, setting, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.setting, self.message)
    }
}

/// A configuration with at least one [`Severity::Error`] problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", list(.problems))]
pub struct ConfigError {
    /// The errors found (warnings are left out).
    pub problems: Vec<Problem>,
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{}: {}", p.setting, p.message)).collect::<Vec<_>>().join("; ")
}

/// The report of `dance-relay check` (and of a misconfigured Worker): one
/// line per problem, then the verdict; and whether it passed (no errors).
pub fn report(problems: &[Problem]) -> (String, bool) {
    let errors = problems.iter().filter(|p| p.severity == Severity::Error).count();
    let mut report: String = problems.iter().map(|p| format!("{p}\n")).collect();
    if errors == 0 {
        let warnings = problems.len();
        report.push_str(&format!(
            "configuration OK{}\n",
            if warnings > 0 { format!(" ({warnings} warning(s))") } else { String::new() }
        ));
    } else {
        report.push_str(&format!("configuration has {errors} error(s)\n"));
    }
    (report, errors == 0)
}

/// Whether a URL host is the local machine, where plain http is acceptable:
/// the rule the SPA and `cargo xtask` apply too
/// ([`dance_protocol::deployment::is_loopback_host`]), `*.localhost` included.
pub fn is_loopback_host(url: &Url) -> bool {
    url.host_str().is_some_and(dance_protocol::deployment::is_loopback_host)
}

/// Checks the metrics listener's address (`DANCE_METRICS_LISTEN`, native
/// relay only). Whoever reaches it reads the relay's counters, so anything
/// but a loopback address gets a warning: a firewall or a container may
/// still keep other hosts out, which the relay cannot see.
pub fn check_metrics_listen(address: SocketAddr, problems: &mut Vec<Problem>) {
    if !address.ip().to_canonical().is_loopback() {
        problems.push(Problem::warning(
            vars::METRICS_LISTEN,
            format!(
                "`{address}` is not a loopback address, so the metrics would be reachable from \
                 other hosts; listen on 127.0.0.1 or [::1] unless a firewall keeps them out"
            ),
        ));
    }
}

fn check_client_id(id: &str, problems: &mut Vec<Problem>) {
    const SETTING: &str = vars::CLIENT_ID;
    if id.trim().is_empty() {
        problems.push(Problem::error(
            SETTING,
            "the client id is empty; set it to the OAuth consumer's Key",
        ));
    } else if id.contains(':') {
        problems.push(Problem::error(
            SETTING,
            "the client id contains ':', which HTTP Basic authentication cannot carry; \
             Bitbucket keys never do: check that the right value was copied",
        ));
    } else if id.trim() != id {
        problems.push(Problem::error(
            SETTING,
            "the client id has leading or trailing whitespace; remove it",
        ));
    }
}

fn check_secret(secret: &str, problems: &mut Vec<Problem>) {
    const SETTING: &str = vars::CLIENT_SECRET;
    if secret.is_empty() {
        problems.push(Problem::error(
            SETTING,
            "the client secret is empty; set it (or DANCE_CLIENT_SECRET_FILE) to the OAuth \
             consumer's Secret",
        ));
    } else if secret.trim() != secret {
        problems.push(Problem::warning(
            SETTING,
            "the client secret has leading or trailing whitespace; Bitbucket secrets have none, \
             so it was probably copied with extra characters",
        ));
    }
}

fn check_token_url(url: &Url, problems: &mut Vec<Problem>) {
    const SETTING: &str = vars::TOKEN_URL;
    // Messages show the URL without any credentials it carries.
    let url_with_userinfo = url;
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let url = &shown;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(url) => {}
        "http" => problems.push(Problem::error(
            SETTING,
            format!(
                "`{url}` uses http, which would send the client secret in clear text; use https \
                 (plain http is allowed only for loopback hosts such as 127.0.0.1)"
            ),
        )),
        other => problems.push(Problem::error(
            SETTING,
            format!("`{url}` has the scheme `{other}`; the token URL must be https"),
        )),
    }
    if !url_with_userinfo.username().is_empty() || url_with_userinfo.password().is_some() {
        problems.push(Problem::error(
            SETTING,
            "the token URL contains credentials; remove them (the relay sends the client id and \
             secret itself)",
        ));
    }
    if url.fragment().is_some() {
        problems.push(Problem::error(SETTING, format!("`{url}` has a #fragment; remove it")));
    }
}

fn check_origins(origins: &[String], allow_missing: bool, problems: &mut Vec<Problem>) {
    const SETTING: &str = vars::ALLOWED_ORIGINS;
    if origins.is_empty() && !allow_missing {
        problems.push(Problem::error(
            SETTING,
            "no origin is allowed, so every browser request would be refused; list the origin of \
             the page that signs in, such as https://user.github.io",
        ));
    }
    for (i, origin) in origins.iter().enumerate() {
        if origins[..i].contains(origin) {
            problems.push(Problem::warning(SETTING, format!("`{origin}` is listed twice")));
        }
        if let Err(message) = check_origin(origin) {
            problems.push(Problem::error(SETTING, message));
        }
    }
}

/// Checks that `origin` is written exactly as browsers send the `Origin` header.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Err("`*` is not supported: list every origin allowed to sign in".to_owned());
    }
    if origin == "null" {
        return Err(
            "`null` is the origin of sandboxed frames and local files; it cannot be allowed"
                .to_owned(),
        );
    }
    let url = Url::parse(origin).map_err(|e| {
        format!("`{origin}` is not an origin ({e}); write it as scheme://host[:port], such as https://user.github.io")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{origin}` is not an http or https origin"));
    }
    let canonical = url.origin().ascii_serialization();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{origin}` contains credentials; write `{canonical}`"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{origin}` has a query or fragment; an origin is scheme, host and port only: write `{canonical}`"
        ));
    }
    if url.path() != "/" {
        return Err(format!(
            "`{origin}` has a path; an origin is scheme, host and port only, so the page \
             {origin} has the origin `{canonical}`: write that"
        ));
    }
    if origin.ends_with('/') {
        return Err(format!(
            "`{origin}` has a trailing slash; browsers send the Origin header without one, so it \
             would never match: write `{canonical}`"
        ));
    }
    if canonical != origin {
        return Err(format!(
            "`{origin}` is not written the way browsers send it (lower-case host, no default \
             port): write `{canonical}`"
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(format!(
            "`{origin}` uses http; tokens must not travel in clear text, so only loopback \
             origins (localhost and names under it, 127.0.0.0/8, [::1]) may use http: serve the \
             page over https"
        ));
    }
    Ok(())
}

fn check_redirect_uris(uris: &[String], origins: &[String], problems: &mut Vec<Problem>) {
    const SETTING: &str = vars::ALLOWED_REDIRECT_URIS;
    if uris.is_empty() {
        problems.push(Problem::error(
            SETTING,
            "no redirect URI is allowed, so every code exchange would be refused; list the \
             callback URL registered on the OAuth consumer, such as https://user.github.io/repo/",
        ));
    }
    for (i, uri) in uris.iter().enumerate() {
        if uris[..i].contains(uri) {
            problems.push(Problem::warning(SETTING, format!("`{uri}` is listed twice")));
        }
        let url = match Url::parse(uri) {
            Ok(url) => url,
            Err(e) => {
                problems
                    .push(Problem::error(SETTING, format!("`{uri}` is not an absolute URL ({e})")));
                continue;
            }
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(&url) => {}
            "http" => problems.push(Problem::error(
                SETTING,
                format!(
                    "`{uri}` uses http, which would expose authorization codes; use https \
                     (plain http is allowed only for loopback hosts)"
                ),
            )),
            other => problems.push(Problem::error(
                SETTING,
                format!("`{uri}` has the scheme `{other}`; a web page's redirect URI is https"),
            )),
        }
        if url.fragment().is_some() {
            problems.push(Problem::error(
                SETTING,
                format!("`{uri}` has a #fragment, which RFC 6749 3.1.2 forbids in redirect URIs"),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            problems.push(Problem::error(SETTING, format!("`{uri}` contains credentials")));
        }
        if url.as_str() != uri {
            problems.push(Problem::error(
                SETTING,
                format!(
                    "`{uri}` is not in the normalized form that browsers and the SPA send \
                     (`{}`), so it would never match: write that",
                    url.as_str()
                ),
            ));
        }
        let origin = url.origin().ascii_serialization();
        if !origins.is_empty() && !origins.contains(&origin) {
            problems.push(Problem::warning(
                SETTING,
                format!(
                    "the origin of `{uri}` (`{origin}`) is not in DANCE_ALLOWED_ORIGINS, so the \
                     page it leads to could not call the relay"
                ),
            ));
        }
    }
}

fn check_limits(limits: &Limits, problems: &mut Vec<Problem>) {
    if limits.max_body_bytes < 1024 {
        problems.push(Problem::error(
            vars::MAX_BODY_BYTES,
            format!(
                "{} bytes is too small for a code exchange; use at least 1024 (default 8192)",
                limits.max_body_bytes
            ),
        ));
    } else if limits.max_body_bytes > 1024 * 1024 {
        problems.push(Problem::warning(
            vars::MAX_BODY_BYTES,
            "more than 1 MiB: a token request is a few hundred bytes, so this only helps abuse",
        ));
    }
    if limits.max_header_bytes < 2048 {
        problems.push(Problem::error(
            vars::MAX_HEADER_BYTES,
            format!(
                "{} bytes is smaller than the headers browsers send; use at least 2048 (default 8192)",
                limits.max_header_bytes
            ),
        ));
    } else if limits.max_header_bytes > 256 * 1024 {
        problems.push(Problem::error(
            vars::MAX_HEADER_BYTES,
            "more than 256 KiB; use at most 262144 (default 8192)",
        ));
    }
    if limits.max_connections == 0 {
        problems.push(Problem::error(
            vars::MAX_CONNECTIONS,
            "0 would never accept a connection; use at least 1 (default 4096)",
        ));
    }
    if limits.max_concurrency == 0 {
        problems.push(Problem::error(
            vars::MAX_CONCURRENCY,
            "0 would never forward anything; use at least 1 (default 64)",
        ));
    }
    if limits.upstream_timeout.is_zero() {
        problems.push(Problem::error(
            vars::UPSTREAM_TIMEOUT,
            "0 would time out every exchange; use something like 10s",
        ));
    } else if limits.upstream_timeout > Duration::from_secs(60) {
        problems.push(Problem::warning(
            vars::UPSTREAM_TIMEOUT,
            "more than a minute: browsers and users give up long before that",
        ));
    }
    if limits.body_timeout.is_zero()
        || limits.header_timeout.is_zero()
        || limits.slot_timeout.is_zero()
    {
        problems.push(Problem::error(
            "limits",
            "the body, header and slot timeouts must be longer than zero",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sound() -> Config {
        let mut config = Config::new(ClientId::new("key"), ClientSecret::new("secret"));
        config.allowed_origins =
            vec!["https://user.github.io".into(), "http://127.0.0.1:8080".into()];
        config.allowed_redirect_uris =
            vec!["https://user.github.io/repo/".into(), "http://127.0.0.1:8080/".into()];
        config.sealing_keys = vec![SealingKey::generate()];
        config
    }

    fn errors_of(config: &Config) -> Vec<String> {
        config
            .problems()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_sound_configuration_has_no_problem() {
        assert_eq!(sound().problems(), vec![]);
        assert!(sound().validate().is_ok());
        assert_eq!(default_token_url().as_str(), DEFAULT_TOKEN_URL);
    }

    #[test]
    fn each_bad_origin_gets_a_precise_message() {
        let cases = [
            ("https://user.github.io/", "trailing slash"),
            ("https://user.github.io/repo/", "has a path"),
            ("http://example.com", "uses http"),
            ("https://User.GitHub.io", "lower-case host"),
            ("https://example.com:443", "no default port"),
            ("*", "`*` is not supported"),
            ("null", "sandboxed"),
            ("user.github.io", "is not an origin"),
            ("ftp://example.com", "not an http or https origin"),
            ("https://a@example.com", "credentials"),
            ("https://example.com?x", "query or fragment"),
        ];
        for (origin, expected) in cases {
            let mut config = sound();
            config.allowed_origins.push(origin.to_owned());
            let errors = errors_of(&config);
            assert_eq!(errors.len(), 1, "{origin}: {errors:?}");
            assert!(errors[0].contains(expected), "{origin}: {}", errors[0]);
            assert!(errors[0].starts_with("error: DANCE_ALLOWED_ORIGINS: "), "{}", errors[0]);
        }
        // Loopback hosts may use http, by the rule the SPA and `cargo xtask`
        // share (a name under `localhost` included, as browsers treat it).
        for ok in [
            "http://localhost:8080",
            "http://[::1]:3000",
            "http://app.localhost:8080",
            "http://127.0.0.2:8080",
            "https://example.com:8443",
        ] {
            let mut config = sound();
            config.allowed_origins.push(ok.to_owned());
            assert_eq!(errors_of(&config), Vec::<String>::new(), "{ok}");
        }
    }

    #[test]
    fn each_bad_redirect_uri_gets_a_precise_message() {
        let cases = [
            ("http://example.com/cb", "uses http"),
            ("https://user.github.io/repo/#x", "fragment"),
            ("https://user.github.io", "normalized form"),
            ("/relative", "not an absolute URL"),
            ("myapp://callback", "scheme `myapp`"),
        ];
        for (uri, expected) in cases {
            let mut config = sound();
            config.allowed_redirect_uris.push(uri.to_owned());
            let errors = errors_of(&config);
            assert!(!errors.is_empty(), "{uri}");
            assert!(errors.iter().any(|e| e.contains(expected)), "{uri}: {errors:?}");
        }
    }

    #[test]
    fn secrets_urls_and_limits_are_checked() {
        let mut config = sound();
        config.client_secret = ClientSecret::new("");
        assert!(errors_of(&config)[0].contains("the client secret is empty"));

        let mut config = sound();
        config.client_id = ClientId::new("a:b");
        assert!(errors_of(&config)[0].contains("':'"));

        let mut config = sound();
        config.token_url =
            Url::parse("http://bitbucket.org/site/oauth2/access_token").expect("url");
        assert!(errors_of(&config)[0].contains("clear text"));
        config.token_url =
            Url::parse("http://127.0.0.1:9090/site/oauth2/access_token").expect("url");
        assert!(errors_of(&config).is_empty());

        let mut config = sound();
        config.limits.max_concurrency = 0;
        config.limits.max_body_bytes = 10;
        config.limits.upstream_timeout = Duration::ZERO;
        assert_eq!(errors_of(&config).len(), 3);

        let mut config = sound();
        config.allowed_origins.clear();
        config.allowed_redirect_uris.clear();
        let errors = errors_of(&config);
        assert!(
            errors[0].contains("no origin is allowed") && errors[1].contains("no redirect URI")
        );
        config.allow_missing_origin = true;
        assert_eq!(errors_of(&config).len(), 1);
    }

    #[test]
    fn warnings_do_not_fail_validation() {
        let mut config = sound();
        config.allowed_redirect_uris.push("https://elsewhere.example/cb".into());
        config.trust_proxy = true;
        config.sealing_keys.clear();
        let problems = config.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().all(|p| p.severity == Severity::Warning));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_relay_must_accept_at_least_one_connection() {
        let mut config = sound();
        config.limits.max_connections = 0;
        let errors = errors_of(&config);
        assert!(errors.iter().any(|e| e.contains("DANCE_MAX_CONNECTIONS")), "{errors:?}");
    }

    #[test]
    fn a_metrics_listener_off_loopback_gets_a_warning() {
        let problems_of = |address: &str| {
            let mut problems = Vec::new();
            check_metrics_listen(address.parse().expect("an address"), &mut problems);
            problems
        };
        for loopback in ["127.0.0.1:9787", "127.0.0.2:9787", "[::1]:9787", "[::ffff:127.0.0.1]:80"]
        {
            assert_eq!(problems_of(loopback), vec![], "{loopback}");
        }
        for open in ["0.0.0.0:9787", "[::]:9787", "192.0.2.7:9787", "[2001:db8::1]:9787"] {
            let problems = problems_of(open);
            assert_eq!(problems.len(), 1, "{open}: {problems:?}");
            let text = problems[0].to_string();
            assert!(text.starts_with("warning: DANCE_METRICS_LISTEN: "), "{text}");
            assert!(text.contains(open) && text.contains("reachable from other hosts"), "{text}");
        }
    }

    #[test]
    fn sealing_settings_are_checked() {
        let mut config = sound();
        let key = config.sealing_keys[0].clone();
        config.sealing_keys.push(key.clone());
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("listed twice"));
        config.sealing_keys.truncate(1);
        for (lifetime, ok) in
            [(59 * 60, false), (3600, true), (365 * 86_400, true), (366 * 86_400, false)]
        {
            config.session_lifetime = Duration::from_secs(lifetime);
            assert_eq!(config.validate().is_ok(), ok, "{lifetime} s");
        }
        let printed = format!("{config:?}");
        assert!(!printed.contains(&key.encode()), "{printed}");
    }

    #[test]
    fn a_token_url_is_never_shown_with_its_credentials() {
        let mut config = sound();
        config.token_url = "http://user:hunter2@bitbucket.example/site/oauth2/access_token"
            .parse()
            .expect("a URL");
        let printed: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
        let printed = printed.join("\n");
        assert!(printed.contains("uses http") && printed.contains("contains credentials"));
        assert!(!printed.contains("hunter2") && !printed.contains("user:"), "{printed}");
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let mut config = sound();
        config.client_secret = ClientSecret::new(" hunter2-secret ");
        config.client_id = ClientId::new("");
        let printed =
            format!("{config:?} {:?} {}", config.problems(), config.validate().expect_err("bad"));
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
