//! dance-testkit: the running stack of oauth-dance's tests and benchmarks,
//! written once. A dev-dependency only (and the relay's load generator's):
//! it ships in nothing.
//!
//! - fakebucket in-process on `127.0.0.1:0` ([`start_fakebucket`], with
//!   [`fakebucket_config`] for a stack whose SPA has a port of its own; any
//!   of fakebucket's options, short tokens or a refresh grace, say, are
//!   fields of its `Config`);
//! - the native relay in-process in front of it ([`Relay`], configured by
//!   [`relay_config`] for an Origin and redirect URI allowlist), through the
//!   relay's own `run_with_clock`;
//! - authorization codes for a PKCE challenge, a state and a redirect URI,
//!   minted through fakebucket's consent page as a browser would submit it
//!   ([`mint_code`] for an [`Authorization`], [`demo_authorization`];
//!   [`ConsentError`] says what changed when the page no longer fits);
//! - [`http_client`], which never follows redirects.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use dance_testkit::{ORIGIN, REDIRECT_URI, Relay};
//! let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await?;
//! let relay =
//!     Relay::start(dance_testkit::relay_config(&fakebucket, ORIGIN, REDIRECT_URI)).await?;
//! let verifier = dance_protocol::PkceVerifier::generate();
//! let request = dance_testkit::demo_authorization(&fakebucket, &verifier, "some-state");
//! let code = dance_testkit::mint_code(&dance_testkit::http_client(), &request).await?;
//! // POST code + verifier to relay.token_url() with the Origin ORIGIN...
//! # let _ = (relay, code);
//! # Ok(())
//! # }
//! ```
//!
//! The ChromeDriver, the static server and the Worker in workerd stay with
//! the suites that need them (`tests/e2e/harness.rs`, the relay's
//! `tests/it`); Chromium's flags are in `tests/support/chromium.rs`, which
//! xtask includes too.

mod consent;
mod relay;

pub use consent::{ConsentError, ConsentForm, mint_code, read_consent_page};
pub use relay::{Relay, relay_config};

use anyhow::Context as _;
use dance_protocol::authorize::AuthorizeParams;
use dance_protocol::token::TokenRequest;
use dance_protocol::{AuthorizationCode, ClientId, PkceChallenge, PkceVerifier, State};
use url::Url;

/// The SPA's origin in a stack whose SPA is not served: the demo's.
pub const ORIGIN: &str = "http://127.0.0.1:8080";

/// The SPA's redirect URI in such a stack: the demo consumer's callback.
pub const REDIRECT_URI: &str = fakebucket::DEMO_CALLBACK;

/// Starts fakebucket in-process on `127.0.0.1:0` with `config`, its
/// test-control API on (`fakebucket::spawn`). Drop the handle, or call its
/// `shutdown`, to stop it.
///
/// # Errors
///
/// An invalid configuration, or no port to bind.
pub async fn start_fakebucket(config: fakebucket::Config) -> anyhow::Result<fakebucket::Handle> {
    fakebucket::spawn(config).await.context("fakebucket did not start")
}

/// fakebucket's demo set-up for a stack whose SPA is at `spa`: the demo
/// consumer only, with `spa` as its callback, then changed by `consumer`
/// (its name or permissions, say).
pub fn fakebucket_config(
    spa: &Url,
    consumer: impl FnOnce(&mut fakebucket::Consumer),
) -> fakebucket::Config {
    let mut demo = fakebucket::Consumer::demo();
    demo.callback = Some(spa.clone());
    consumer(&mut demo);
    fakebucket::Config { consumers: vec![demo], ..fakebucket::Config::default() }
}

/// An authorize request, as the SPA sends a person to fakebucket with it:
/// what [`mint_code`] asks a code for.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// fakebucket's authorize endpoint.
    pub authorize_url: Url,
    /// The consumer's key.
    pub client_id: ClientId,
    /// Where to come back to, as sent (fakebucket compares the text).
    pub redirect_uri: Option<String>,
    /// The attempt's state.
    pub state: State,
    /// The S256 challenge of the attempt's verifier.
    pub code_challenge: PkceChallenge,
}

impl Authorization {
    /// The authorize URL, written by the SPA's own code
    /// (`dance_protocol::authorize::AuthorizeParams::to_url_string`).
    pub fn to_url(&self) -> Url {
        let url = AuthorizeParams {
            authorize_url: self.authorize_url.as_str(),
            client_id: &self.client_id,
            redirect_uri: self.redirect_uri.as_deref(),
            state: &self.state,
            code_challenge: &self.code_challenge,
        }
        .to_url_string();
        // fakebucket's URL with a form-encoded query stays a URL.
        Url::parse(&url).unwrap_or_else(|e| unreachable!("an authorize URL: {e}"))
    }
}

/// The authorize request the SPA of a stack without a served SPA sends:
/// the demo consumer, [`REDIRECT_URI`], `state`, and the S256 challenge of
/// `verifier`.
pub fn demo_authorization(
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
    state: &str,
) -> Authorization {
    Authorization {
        authorize_url: fakebucket.authorize_url(),
        client_id: ClientId::new(fakebucket::DEMO_KEY),
        redirect_uri: Some(REDIRECT_URI.to_owned()),
        state: State::new(state),
        code_challenge: verifier.challenge(),
    }
}

/// The form body that redeems `code` for the demo SPA ([`REDIRECT_URI`])
/// with the PKCE `verifier` its challenge came from, as the SPA posts it
/// (RFC 6749 4.1.3, RFC 7636 4.5), written by the protocol's own
/// `TokenRequest::to_form`.
pub fn code_form(code: &str, verifier: &PkceVerifier) -> String {
    TokenRequest::AuthorizationCode {
        code: AuthorizationCode::new(code),
        redirect_uri: REDIRECT_URI.to_owned(),
        code_verifier: verifier.clone(),
    }
    .to_form()
}

/// An HTTP client (rustls) that never follows redirects: a test reads each
/// `Location` itself, and [`mint_code`] needs the grant's.
///
/// # Panics
///
/// If the TLS stack cannot be set up, which the bundled rustls does not do.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client: {e}"))
}
