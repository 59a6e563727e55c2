//! Command-line flags and `DANCE_*` environment variables, turned into a
//! [`Config`] with every problem reported at once.
//!
//! The binary parses [`Cli`] and either serves or runs `check`, which prints
//! what [`Settings::problems`] finds: the issues of reading the settings
//! (an unreadable secret file, a malformed URL) followed by
//! [`Config::problems`].

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use dance_protocol::{ClientId, ClientSecret};
use dance_relay_core::vars::{self, entries, parse_token_url};
use dance_relay_core::{Config, DEFAULT_TOKEN_URL, Limits, Problem, Severity};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `dance-relay` command line.
#[derive(Debug, Parser)]
#[command(
    name = "dance-relay",
    version,
    about = "A stateless OAuth 2.0 token relay: the browser's token endpoint, holding the client secret for Bitbucket.",
    long_about = "A stateless OAuth 2.0 token relay for single-page apps that sign in with Bitbucket.\n\n\
        Browsers POST /token (authorization_code with PKCE, or refresh_token); the relay checks the \
        Origin and redirect_uri against its allowlists, adds HTTP Basic client authentication with \
        the secret, forwards to the token URL and returns a normalized RFC 6749 answer. It also \
        serves GET /healthz, and GET /metrics (Prometheus) on a listener of its own if \
        --metrics-listen is set.\n\n\
        Every option can be set with the environment variable shown next to it. Lists take \
        comma-separated values. Run `dance-relay check` to validate a configuration.",
    after_help = "Example:\n  DANCE_CLIENT_ID=key DANCE_CLIENT_SECRET_FILE=/run/secrets/bitbucket \\\n  \
        DANCE_ALLOWED_ORIGINS=https://user.github.io \\\n  \
        DANCE_ALLOWED_REDIRECT_URIS=https://user.github.io/repo/ dance-relay"
)]
pub struct Cli {
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The settings, shared by every command.
    #[command(flatten)]
    pub settings: Settings,
}

/// The subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the relay (the default when no command is given).
    Serve,
    /// Validate the configuration: print every problem and exit with status 1 if any is an error.
    Check,
    /// Print a new random sealing key for DANCE_SEALING_KEY.
    Keygen,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting, from flags or the environment.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// The Key of the Bitbucket OAuth consumer.
    #[arg(long, env = vars::CLIENT_ID, global = true, value_name = "KEY")]
    pub client_id: Option<String>,

    /// The Secret of the OAuth consumer. Prefer --client-secret-file: a flag is visible to every
    /// user of the machine, and so is the environment of a process in some setups.
    #[arg(
        long,
        env = vars::CLIENT_SECRET,
        hide_env_values = true,
        global = true,
        value_name = "SECRET"
    )]
    pub client_secret: Option<SecretText>,

    /// A file holding the Secret of the OAuth consumer (a trailing newline is ignored). Exactly one
    /// of this and --client-secret must be set.
    #[arg(long, env = CLIENT_SECRET_FILE, global = true, value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,

    /// The token endpoint requests are forwarded to. Must be https, except on a loopback host.
    #[arg(long, env = vars::TOKEN_URL, default_value = DEFAULT_TOKEN_URL, global = true, value_name = "URL")]
    pub token_url: String,

    /// Origins allowed to call /token, exactly as browsers send them: scheme://host[:port], no
    /// path, no trailing slash (https://user.github.io). http only for loopback. Comma-separated.
    #[arg(
        long = "allowed-origin",
        env = vars::ALLOWED_ORIGINS,
        value_delimiter = ',',
        global = true,
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,

    /// Redirect URIs a code exchange may name; a request's redirect_uri must equal one of them
    /// byte for byte (https://user.github.io/repo/). Comma-separated.
    #[arg(
        long = "allowed-redirect-uri",
        env = vars::ALLOWED_REDIRECT_URIS,
        value_delimiter = ',',
        global = true,
        value_name = "URI"
    )]
    pub allowed_redirect_uris: Vec<String>,

    /// Keys that seal refresh tokens and bind each to its browser's DPoP key: 32 random bytes in
    /// base64url each (`dance-relay keygen` prints one). The first seals, all open: to rotate, put
    /// a new key first and drop the old one after the session lifetime. Unset: refresh tokens
    /// pass through unsealed and unbound. Comma-separated; keep it secret.
    #[arg(long = "sealing-key", env = vars::SEALING_KEY, hide_env_values = true, allow_hyphen_values = true, global = true, value_name = "KEY")]
    pub sealing_keys: Option<SecretText>,

    /// A file holding the sealing keys, as for --sealing-key (comma- or newline-separated); keeps
    /// them out of the environment, like --client-secret-file. At most one of the two.
    #[arg(long, env = SEALING_KEY_FILE, global = true, value_name = "PATH")]
    pub sealing_key_file: Option<PathBuf>,

    /// How long a session may last from its sign-in, refreshes included, when refresh tokens are
    /// sealed: 12h, 30d; a bare number is seconds. Past it the person signs in again.
    #[arg(long, env = vars::SESSION_LIFETIME, default_value = "30d", value_parser = parse_duration, global = true, value_name = "DURATION")]
    pub session_lifetime: Duration,

    /// The address and port to listen on.
    #[arg(
        long,
        env = "DANCE_LISTEN",
        default_value = "127.0.0.1:8787",
        global = true,
        value_name = "ADDR:PORT"
    )]
    pub listen: String,

    /// Serve GET /metrics (Prometheus) on this address and port, and only there. Meant for
    /// loopback (127.0.0.1:9787): anything that reaches it reads the counters. Unset or empty:
    /// no metrics endpoint.
    #[arg(long, env = vars::METRICS_LISTEN, global = true, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,

    /// Also serve requests without an Origin header, which come from scripts and servers rather
    /// than browsers. Off by default; the variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = vars::ALLOW_MISSING_ORIGIN, global = true, action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub allow_missing_origin: bool,

    /// The largest request body accepted, in bytes (413 beyond).
    #[arg(long, env = vars::MAX_BODY_BYTES, default_value_t = Limits::default().max_body_bytes, global = true, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// The largest request header section accepted, in bytes (431 beyond).
    #[arg(long, env = vars::MAX_HEADER_BYTES, default_value_t = Limits::default().max_header_bytes, global = true, value_name = "BYTES")]
    pub max_header_bytes: usize,

    /// How many exchanges may wait on the token endpoint at once; more requests queue for a slot
    /// and get 503 if none frees up within 5 seconds. At most twice as many requests are read at
    /// once; more wait unread (for up to 5 seconds).
    #[arg(long, env = vars::MAX_CONCURRENCY, default_value_t = Limits::default().max_concurrency, global = true, value_name = "N")]
    pub max_concurrency: usize,

    /// How many connections may be open at once; more wait in the kernel's accept queue until one
    /// closes, and the relay logs once that it reached the limit.
    #[arg(long, env = vars::MAX_CONNECTIONS, default_value_t = Limits::default().max_connections, global = true, value_name = "N")]
    pub max_connections: usize,

    /// How long the token endpoint may take to answer (504 beyond): 500ms, 10s, 1m; a bare
    /// number is seconds.
    #[arg(long, env = vars::UPSTREAM_TIMEOUT, default_value = "10s", value_parser = parse_duration, global = true, value_name = "DURATION")]
    pub upstream_timeout: Duration,

    /// Requests per minute per client IP address (IPv6: per /64), in bursts up to the same number;
    /// 429 with Retry-After beyond. 0 turns rate limiting off.
    #[arg(long, env = vars::RATE_LIMIT, default_value_t = Limits::default().rate_limit_per_minute, global = true, value_name = "PER_MINUTE")]
    pub rate_limit: u32,

    /// Rate limit by the last X-Forwarded-For entry instead of the connection's address. Set only
    /// when the relay is reachable solely through one reverse proxy that appends that header.
    /// Off by default; the variable takes true/false, 1/0, yes/no or on/off.
    #[arg(long, env = vars::TRUST_PROXY, global = true, action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub trust_proxy: bool,

    /// Threads serving requests. One is plenty for a token relay (thousands of exchanges per
    /// second) and costs the least CPU and memory per exchange; run more copies to scale out.
    #[arg(long, env = "DANCE_WORKER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256), global = true, value_name = "N")]
    pub worker_threads: u16,

    /// How log lines are written. RUST_LOG filters them (default: info).
    #[arg(long, env = "DANCE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

/// A configuration ready to serve.
#[derive(Debug)]
pub struct Resolved {
    /// The relay's configuration.
    pub config: Config,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to serve the metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Warnings worth logging at start-up.
    pub warnings: Vec<Problem>,
}

impl Settings {
    /// Every problem in these settings, errors and warnings.
    pub fn problems(&self) -> Vec<Problem> {
        self.build().2
    }

    /// The configuration, or every problem if any of them is an error.
    pub fn resolve(&self) -> Result<Resolved, Vec<Problem>> {
        let (config, addresses, problems) = self.build();
        match addresses {
            Some(Addresses { listen, metrics })
                if !problems.iter().any(|p| p.severity == Severity::Error) =>
            {
                Ok(Resolved { config, listen, metrics_listen: metrics, warnings: problems })
            }
            _ => Err(problems),
        }
    }

    /// Builds a configuration, with harmless placeholders where a setting
    /// could not be read, so that every problem is found in one pass.
    fn build(&self) -> (Config, Option<Addresses>, Vec<Problem>) {
        let mut problems = Vec::new();
        let client_id = ClientId::new(self.client_id.clone().unwrap_or_default());
        let client_secret = self.secret(&mut problems);
        let token_url = parse_token_url(&self.token_url, &mut problems);
        let listen = parse_address(
            "DANCE_LISTEN",
            &self.listen,
            "127.0.0.1:8787 or [::]:8787",
            &mut problems,
        );
        let metrics = self.metrics_listen(&mut problems);
        let config = Config {
            client_id,
            client_secret,
            token_url,
            allowed_origins: entries(&self.allowed_origins),
            allowed_redirect_uris: entries(&self.allowed_redirect_uris),
            allow_missing_origin: self.allow_missing_origin,
            trust_proxy: self.trust_proxy,
            sealing_keys: self.sealing_keys(&mut problems),
            session_lifetime: self.session_lifetime,
            limits: Limits {
                max_body_bytes: self.max_body_bytes,
                max_header_bytes: self.max_header_bytes,
                max_concurrency: self.max_concurrency,
                max_connections: self.max_connections,
                upstream_timeout: self.upstream_timeout,
                rate_limit_per_minute: self.rate_limit,
                ..Limits::default()
            },
        };
        problems.extend(config.problems());
        vars::drop_unset_warnings_of_unreadable(&mut problems);
        let addresses = match (listen, metrics) {
            (Ok(listen), Ok(metrics)) => Some(Addresses { listen, metrics }),
            _ => None,
        };
        (config, addresses, problems)
    }

    /// The metrics listener's address: `None` when unset or empty (no
    /// metrics endpoint), `Err` when unreadable (with a problem saying why).
    fn metrics_listen(&self, problems: &mut Vec<Problem>) -> Result<Option<SocketAddr>, ()> {
        let Some(text) = self.metrics_listen.as_deref().map(str::trim).filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        let address =
            parse_address(vars::METRICS_LISTEN, text, "127.0.0.1:9787 or [::1]:9787", problems)?;
        dance_relay_core::config::check_metrics_listen(address, problems);
        Ok(Some(address))
    }

    /// The sealing keys, from the flag or the file, or none with a problem
    /// saying why they cannot be read.
    fn sealing_keys(&self, problems: &mut Vec<Problem>) -> Vec<dance_relay_core::SealingKey> {
        let source = SecretSource {
            value: self.sealing_keys.as_ref().map(SecretText::expose),
            file: self.sealing_key_file.as_deref(),
            setting: vars::SEALING_KEY,
            file_setting: SEALING_KEY_FILE,
        };
        let Ok(Some(text)) = source.read(problems) else { return Vec::new() };
        // A file may hold one key per line.
        vars::parse_sealing_keys(&text.replace(['\n', '\r'], ",")).unwrap_or_else(|message| {
            problems.push(Problem::error(source.setting_used(), message));
            Vec::new()
        })
    }

    /// The secret from the flag or the file. Problems reading it are
    /// reported here; an empty secret is reported by [`Config::problems`].
    fn secret(&self, problems: &mut Vec<Problem>) -> ClientSecret {
        let source = SecretSource {
            value: self.client_secret.as_ref().map(SecretText::expose),
            file: self.client_secret_file.as_deref(),
            setting: vars::CLIENT_SECRET,
            file_setting: CLIENT_SECRET_FILE,
        };
        match source.read(problems) {
            Ok(secret) => ClientSecret::new(secret.unwrap_or_default()),
            // Not empty, so that only the reading problem is reported.
            Err(()) => ClientSecret::new("placeholder"),
        }
    }
}

/// The addresses to listen on, when every one of them could be read.
struct Addresses {
    listen: SocketAddr,
    metrics: Option<SocketAddr>,
}

/// An address and port, or `Err` with a problem that shows `example`.
fn parse_address(
    setting: &'static str,
    text: &str,
    example: &str,
    problems: &mut Vec<Problem>,
) -> Result<SocketAddr, ()> {
    text.parse().map_err(|_| {
        problems.push(Problem::error(
            setting,
            format!("`{text}` is not an address and port such as {example}"),
        ));
    })
}

/// The text of a secret setting (the client secret, the sealing keys) as
/// given on the command line or in the environment. `Debug` never prints
/// it, so neither does `Settings`' derived `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText([redacted])")
    }
}

impl std::str::FromStr for SecretText {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

/// The variable naming the file that holds the client secret.
pub const CLIENT_SECRET_FILE: &str = "DANCE_CLIENT_SECRET_FILE";
/// The variable naming the file that holds the sealing keys.
pub const SEALING_KEY_FILE: &str = "DANCE_SEALING_KEY_FILE";

/// A secret given as a value (flag or variable) or as a file.
struct SecretSource<'a> {
    value: Option<&'a str>,
    file: Option<&'a std::path::Path>,
    setting: &'static str,
    file_setting: &'static str,
}

impl SecretSource<'_> {
    /// The setting the secret came from, for messages about its content.
    fn setting_used(&self) -> &'static str {
        if self.file.is_some() { self.file_setting } else { self.setting }
    }

    /// The secret's text (a file's without its trailing newline), `None`
    /// when neither is set, or `Err` when it cannot be read (with a problem
    /// saying why). The text itself never goes into a message.
    fn read(&self, problems: &mut Vec<Problem>) -> Result<Option<String>, ()> {
        let path = match (self.value, self.file) {
            (Some(_), Some(_)) => {
                problems.push(Problem::error(
                    self.file_setting,
                    format!(
                        "both {} and {} are set; keep only one",
                        self.setting, self.file_setting
                    ),
                ));
                return Err(());
            }
            (Some(value), None) => return Ok(Some(value.to_owned())),
            (None, None) => return Ok(None),
            (None, Some(path)) => path,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(Problem::error(
                    self.file_setting,
                    format!("cannot read the secret file `{}`: {e}", path.display()),
                ));
                return Err(());
            }
        };
        warn_if_world_readable(path, self.file_setting, problems);
        let Ok(mut text) = String::from_utf8(bytes) else {
            problems.push(Problem::error(
                self.file_setting,
                format!("the secret file `{}` is not UTF-8 text", path.display()),
            ));
            return Err(());
        };
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Some(text))
    }
}

#[cfg(unix)]
fn warn_if_world_readable(
    path: &std::path::Path,
    setting: &'static str,
    problems: &mut Vec<Problem>,
) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o004 != 0
    {
        problems.push(Problem::warning(
            setting,
            format!(
                "the secret file `{}` is readable by every user of this machine; chmod 600 it",
                path.display()
            ),
        ));
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_: &std::path::Path, _: &'static str, _: &mut Vec<Problem>) {}

pub use dance_relay_core::vars::parse_duration;

/// Runs `dance-relay check`: the report to print and whether it passed.
pub fn check(settings: &Settings) -> (String, bool) {
    dance_relay_core::config::report(&settings.problems())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_relay_core::SealingKey;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("dance-relay").chain(args.iter().copied()))
            .expect("valid command line")
    }

    #[test]
    fn flags_build_a_config() {
        let (new, old) = (SealingKey::generate(), SealingKey::generate());
        let cli = parse(&[
            "check",
            "--client-id",
            "key",
            "--client-secret",
            "s3cret",
            "--allowed-origin",
            "https://a.example, https://b.example,",
            "--allowed-origin",
            "http://127.0.0.1:8080",
            "--allowed-redirect-uri",
            "https://a.example/app/",
            "--upstream-timeout",
            "2s",
            "--rate-limit",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--sealing-key",
            &format!("{},{}", new.encode(), old.encode()),
            "--session-lifetime",
            "7d",
        ]);
        assert_eq!(cli.command, Some(Command::Check));
        let resolved = cli.settings.resolve().expect("sound");
        assert_eq!(
            resolved.config.allowed_origins,
            ["https://a.example", "https://b.example", "http://127.0.0.1:8080"]
        );
        assert_eq!(resolved.config.limits.upstream_timeout, Duration::from_secs(2));
        assert_eq!(resolved.config.limits.rate_limit_per_minute, 0);
        assert_eq!(resolved.config.client_secret.secret(), "s3cret");
        assert_eq!(resolved.config.token_url.as_str(), DEFAULT_TOKEN_URL);
        assert_eq!(resolved.config.sealing_keys, [new, old]);
        assert_eq!(resolved.config.session_lifetime, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(resolved.warnings, vec![]);
    }

    /// The settings every sound command line needs.
    const SOUND_ARGS: [&str; 8] = [
        "--client-id",
        "key",
        "--client-secret",
        "s3cret",
        "--allowed-origin",
        "https://a.example",
        "--allowed-redirect-uri",
        "https://a.example/",
    ];

    #[test]
    fn the_metrics_listener_is_off_unless_set_and_warned_about_off_loopback() {
        let key = SealingKey::generate().encode();
        let resolve = |extra: &[&str]| {
            let sealing = ["--sealing-key", key.as_str()];
            let args: Vec<&str> = SOUND_ARGS.iter().chain(&sealing).chain(extra).copied().collect();
            parse(&args).settings.resolve()
        };
        let off = resolve(&[]).expect("sound");
        assert_eq!((off.metrics_listen, off.warnings), (None, vec![]));
        let empty = resolve(&["--metrics-listen", " "]).expect("sound");
        assert_eq!(empty.metrics_listen, None);
        let loopback = resolve(&["--metrics-listen", "127.0.0.1:9787"]).expect("sound");
        assert_eq!(loopback.metrics_listen, Some("127.0.0.1:9787".parse().expect("address")));
        assert_eq!(loopback.warnings, vec![]);
        let open = resolve(&["--metrics-listen", "0.0.0.0:9787"]).expect("a warning, not an error");
        assert_eq!(open.metrics_listen, Some("0.0.0.0:9787".parse().expect("address")));
        let warnings: Vec<String> = open.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .starts_with("warning: DANCE_METRICS_LISTEN: `0.0.0.0:9787` is not a loopback"),
            "{warnings:?}"
        );
        let broken = resolve(&["--metrics-listen", "localhost:9787"]).expect_err("not an address");
        let text: Vec<String> = broken.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            ["error: DANCE_METRICS_LISTEN: `localhost:9787` is not an address and port such as \
              127.0.0.1:9787 or [::1]:9787"]
        );
    }

    #[test]
    fn unreadable_inputs_are_reported_together() {
        let cli = parse(&[
            "--client-secret-file",
            "/nonexistent/secret",
            "--token-url",
            "not a url",
            "--listen",
            "localhost",
        ]);
        let problems = cli.settings.resolve().expect_err("broken");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let joined = text.join("\n");
        for expected in [
            "DANCE_CLIENT_SECRET_FILE: cannot read the secret file `/nonexistent/secret`",
            "DANCE_TOKEN_URL: `not a url` is not a URL",
            "DANCE_LISTEN: `localhost` is not an address",
            "DANCE_CLIENT_ID: the client id is empty",
            "DANCE_ALLOWED_ORIGINS: no origin is allowed",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
        let (report, ok) = check(&cli.settings);
        assert!(!ok);
        assert!(report.ends_with("error(s)\n"), "{report}");
    }

    #[test]
    fn settings_never_print_their_secrets() {
        let key = SealingKey::generate().encode();
        let cli = parse(&["--client-secret", "hunter2-secret", "--sealing-key", &key]);
        let printed = format!("{cli:?}");
        assert!(!printed.contains("hunter2") && !printed.contains(&key), "{printed}");
        assert_eq!(
            cli.settings.client_secret.as_ref().map(SecretText::expose),
            Some("hunter2-secret")
        );
    }

    #[test]
    fn sealing_keys_come_from_a_file_too() {
        let dir = std::env::temp_dir().join(format!("dance-relay-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let (new, old) = (SealingKey::generate(), SealingKey::generate());
        let file = dir.join("sealing-keys");
        std::fs::write(&file, format!("{}\n{}\n", new.encode(), old.encode())).expect("write");
        let path = file.to_str().expect("a UTF-8 path");
        let with = |extra: &[&str]| {
            let args: Vec<&str> = SOUND_ARGS.iter().chain(extra).copied().collect();
            parse(&args).settings.build()
        };
        // One key per line, the trailing newline ignored.
        let (config, _, problems) = with(&["--sealing-key-file", path]);
        assert_eq!(config.sealing_keys, [new.clone(), old]);
        assert!(problems.iter().all(|p| p.severity != Severity::Error), "{problems:?}");
        // Not both; an unreadable file is an error, not also "not set".
        let (_, _, problems) = with(&["--sealing-key-file", path, "--sealing-key", &new.encode()]);
        assert!(
            problems
                .iter()
                .any(|p| p.setting == SEALING_KEY_FILE && p.message.contains("keep only one"))
        );
        let (_, _, problems) = with(&["--sealing-key-file", "/nonexistent/keys"]);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 1, "{text:?}");
        assert!(text[0].starts_with("error: DANCE_SEALING_KEY_FILE: cannot read"), "{text:?}");
        // A broken key in the file is reported against the file.
        std::fs::write(&file, "short\n").expect("write");
        let (_, _, problems) = with(&["--sealing-key-file", path]);
        let printed = format!("{problems:?}");
        assert!(problems.iter().any(|p| p.setting == SEALING_KEY_FILE), "{printed}");
        assert!(!printed.contains(&new.encode()), "a key was printed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
