//! dance-relay-core: every rule of the oauth-dance token relay, and no IO.
//!
//! To the browser, the relay is an OAuth 2.0 token endpoint for a public
//! client (RFC 6749 4.1.3 and 6, with PKCE per RFC 7636); to Bitbucket it is
//! the confidential client that holds the secret. This crate decides every
//! answer; it never touches a socket, a clock or an async runtime, so the
//! same rules run in the native binary (`dance-relay`, tokio and hyper) and
//! in a Cloudflare Worker (`dance-relay-worker`, wasm32). The shells only
//! move bytes: they read a request, call [`Relay`]'s steps, send the
//! [`Forward`] request with their own HTTP client, and write the [`Answer`].
//!
//! Map of the modules:
//! - [`relay`]: [`Relay`], the three steps of a request and the order of
//!   the gates (header size, origin, rate limit, content type, body size,
//!   form and grant, `redirect_uri` allowlist).
//! - [`config`]: [`Config`], its [`Limits`], and [`Config::problems`], the
//!   validation behind `dance-relay check` and a Worker's error page.
//! - [`vars`]: the `DANCE_*` variables read into a `Config` (a Worker's vars
//!   and secrets) and written from one.
//! - `cors`: the origin allowlist, enforced by the relay itself, and the CORS
//!   headers.
//! - `limits`: the per-address rate limiter and the header size.
//! - [`upstream`]: client authentication, and the judging of the token
//!   endpoint's answer ([`UpstreamAnswer`], [`Transport`]).
//! - [`seal`]: sealed refresh tokens ([`SealingKey`], the blob format), which
//!   bind a session to its browser's key and to an absolute end.
//! - [`dpop`]: checking the DPoP proof (RFC 9449) each token request carries.
//! - [`error`]: how every request can end ([`Outcome`]) and the RFC 6749 5.2
//!   body of each failure.

pub mod config;
mod cors;
pub mod dpop;
pub mod error;
mod limits;
pub mod relay;
pub mod seal;
pub mod upstream;
pub mod vars;

pub use config::{
    Config, ConfigError, DEFAULT_TOKEN_URL, Limits, Problem, Severity, default_token_url,
    is_loopback_host,
};
pub use dpop::Unverified;
pub use error::Outcome;
pub use relay::{AfterBody, Body, Forward, ReadBody, Relay, Step, Verified, Verify};
pub use seal::SealingKey;
pub use upstream::{MAX_ANSWER_BYTES, Transport, UpstreamAnswer};

/// An answer to the browser: status, headers and the whole body. Answers
/// that end a request carry their [`Outcome`] in the extensions.
pub type Answer = http::Response<Vec<u8>>;
