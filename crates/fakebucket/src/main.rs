//! The `fakebucket` binary: serves the emulator until Ctrl-C.
//!
//! Run with
//!
//! ```sh
//! cargo run -p fakebucket                       # 127.0.0.1:9090, demo consumer
//! cargo run -p fakebucket -- --admin --pkce require \
//!     --consumer 'my-key:my-secret:http://localhost:3000/:scopes=account:name=My App'
//! FAKEBUCKET_LISTEN=0.0.0.0:9090 FAKEBUCKET_PUBLIC_URL=http://fake.test:9090/ cargo run -p fakebucket
//! ```
//!
//! then open `http://127.0.0.1:9090/` for the endpoints, consumers and users.
//! Every flag has a `FAKEBUCKET_*` environment variable; `--help` lists them.

use anyhow::Context as _;
use clap::Parser;
use fakebucket::{Config, Consumer, FixtureUser, PkceMode, RateLimit};
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// A local emulator of Bitbucket Cloud's OAuth 2.0 and user API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "FAKEBUCKET_LISTEN", default_value = "127.0.0.1:9090")]
    listen: SocketAddr,

    /// Base URL for links and forms, when clients reach the server by
    /// another name than the listen address.
    #[arg(long, env = "FAKEBUCKET_PUBLIC_URL")]
    public_url: Option<Url>,

    /// An OAuth consumer: KEY:SECRET:CALLBACK[:scopes=account,email][:name=NAME][:private].
    /// Repeatable (`;` separates several in the environment variable).
    /// An empty CALLBACK registers none. Default: the demo consumer
    /// DemoKeyOfTheOauthDanceFakebucket:DemoSecretOfTheOauthDanceFakebucketEveryoneKnowsItNeverUseItForARealConsumer:http://127.0.0.1:8080/
    /// (a 32-character key and a 76-character secret, as Bitbucket issues
    /// them now). Keys and secrets of any length are accepted.
    #[arg(long = "consumer", env = "FAKEBUCKET_CONSUMERS", value_delimiter = ';')]
    consumers: Vec<Consumer>,

    /// An extra user: NICKNAME[:DISPLAY NAME[:EMAIL,EMAIL...]]. Repeatable
    /// (`;` separates several in the environment variable).
    #[arg(long = "user", env = "FAKEBUCKET_USERS", value_delimiter = ';')]
    users: Vec<FixtureUser>,

    /// Offer only the --user accounts, not the built-in ones.
    #[arg(long, env = "FAKEBUCKET_NO_DEFAULT_USERS", requires = "users")]
    no_default_users: bool,

    /// Access-token lifetime in seconds (`expires_in`).
    #[arg(long, env = "FAKEBUCKET_TOKEN_LIFETIME", default_value_t = 7200, value_parser = clap::value_parser!(u64).range(1..))]
    token_lifetime: u64,

    /// Authorization-code lifetime in seconds.
    #[arg(long, env = "FAKEBUCKET_CODE_LIFETIME", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    code_lifetime: u64,

    /// Refresh-token lifetime in seconds: a refresh token unused this long
    /// dies (Bitbucket: three months). Each refresh issues a new one.
    #[arg(long, env = "FAKEBUCKET_REFRESH_LIFETIME", default_value_t = fakebucket::REFRESH_TOKEN_LIFETIME.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    refresh_lifetime: u64,

    /// Seconds a refresh token keeps working after its first use (Bitbucket
    /// allows about 600). The default, 0, refuses any reuse at once, which
    /// is stricter than Bitbucket.
    #[arg(long, env = "FAKEBUCKET_REFRESH_GRACE", default_value_t = 0, value_name = "SECONDS")]
    refresh_grace: u64,

    /// Issue short tokens (88-character access, 24-character refresh tokens)
    /// instead of Bitbucket-sized ones of over 2,500 characters each.
    #[arg(long, env = "FAKEBUCKET_SHORT_TOKENS")]
    short_tokens: bool,

    /// PKCE handling: `ignore` (Bitbucket Cloud) or `require` (Data Center, S256).
    #[arg(long, env = "FAKEBUCKET_PKCE", default_value = "ignore")]
    pkce: PkceMode,

    /// Name the token response's scopes `scopes`, as before 2026-05-04.
    #[arg(long, env = "FAKEBUCKET_LEGACY_SCOPES_FIELD")]
    legacy_scopes_field: bool,

    /// Serve the test-control API under /_fakebucket/.
    #[arg(long, env = "FAKEBUCKET_ADMIN")]
    admin: bool,

    /// API calls allowed per user per hour.
    #[arg(long, env = "FAKEBUCKET_RATE_LIMIT", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,

    /// Log format.
    #[arg(long, env = "FAKEBUCKET_LOG", default_value = "text", value_parser = ["text", "json"])]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter);
    if args.log == "json" {
        subscriber.json().init();
    } else {
        subscriber.init();
    }

    let mut config = Config::default();
    if !args.consumers.is_empty() {
        config.consumers = args.consumers;
    }
    if args.no_default_users {
        config.users.clear();
    }
    config.users.extend(args.users);
    config.token_lifetime = Duration::from_secs(args.token_lifetime);
    config.code_lifetime = Duration::from_secs(args.code_lifetime);
    config.refresh_token_lifetime = Duration::from_secs(args.refresh_lifetime);
    config.refresh_grace = Duration::from_secs(args.refresh_grace);
    config.short_tokens = args.short_tokens;
    config.pkce = args.pkce;
    config.legacy_scopes_field = args.legacy_scopes_field;
    config.admin = args.admin;
    config.rate_limit = RateLimit { requests: args.rate_limit, ..RateLimit::default() };
    config.public_url = args.public_url;
    config.validate().context("Invalid configuration")?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("Cannot listen on {}", args.listen))?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    fakebucket::run(listener, config, shutdown).await.context("fakebucket stopped with an error")
}
