//! Every way signing in can fail, told in plain words with the way out.
//!
//! A [`Problem`] is what the interface shows instead of a blank page or a
//! stack trace: a title, an explanation a non-developer can follow, an
//! optional technical detail (for the person who runs the site), the action
//! that gets the visitor unstuck ([`WayOut`]) and, when the deployment itself
//! is at fault, a checklist naming each setting to fix ([`Setting`]).
//!
//! Every failure in the app is turned into one of the constructors below, so
//! the wording lives in one place and tests can assert on the [`ProblemKind`]
//! rather than on prose.

use crate::deployment::Deployment;
use std::borrow::Cow;
use std::fmt;

/// Which failure happened. Tests and the `data-kind` attribute of the problem
/// view key on this, never on the wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// `config.json` is not there (404).
    ConfigMissing,
    /// `config.json` could not be fetched at all.
    ConfigUnreachable,
    /// `config.json` is there but wrong.
    ConfigInvalid,
    /// The browser refuses sessionStorage (private mode, a privacy setting).
    StorageUnavailable,
    /// The person declined at Bitbucket (`error=access_denied`).
    AccessDenied,
    /// Bitbucket sent another error code back to the callback.
    AuthorizeFailed,
    /// A callback arrived but this tab has no sign-in in progress.
    StateMissing,
    /// A callback arrived whose `state` is not the one this tab stored.
    StateMismatch,
    /// The callback had a `state` but no `code` (or was otherwise malformed).
    CallbackMalformed,
    /// The relay did not answer (down, wrong URL, or our origin refused).
    RelayUnreachable,
    /// The relay did not answer in time.
    RelaySlow,
    /// The relay refused our `redirect_uri` (not on its allowlist).
    RelayRefusedRedirect,
    /// The relay refused our origin with a readable 403.
    RelayRefusedOrigin,
    /// Bitbucket refused the relay's client id or secret (`invalid_client`).
    RelayClientRejected,
    /// The code was refused (`invalid_grant`): used, expired or not ours.
    CodeRejected,
    /// The relay or Bitbucket is rate limiting us (429, 503).
    RelayBusy,
    /// Bitbucket could not be reached from the relay, or timed out (502, 504).
    UpstreamUnavailable,
    /// Bitbucket answered the relay with something that is not OAuth.
    UpstreamBroken,
    /// Any other relay answer.
    RelayFailed,
    /// Refreshing failed: the session is over.
    SessionExpired,
    /// The relay refused the browser's DPoP proof (`invalid_dpop_proof`),
    /// most often because the computer's clock is off.
    ProofRejected,
    /// The session's key is gone from this browser, or the relay no longer
    /// accepts it (`wrong_key`, `not_sealed`): the session is over.
    SessionUnbound,
    /// The session reached the relay's longest lifetime (`session_ended`).
    SessionLimit,
    /// WebCrypto or IndexedDB is missing or refused: no key can be made or
    /// kept, so nobody can sign in with this browser here.
    KeyUnavailable,
    /// Another tab of this session signed out.
    SignedOutElsewhere,
    /// The API said "Access token expired.": refresh once and retry.
    TokenExpired,
    /// The API refused the token for another reason (401).
    ApiUnauthorized,
    /// The API refused for lack of a scope (403).
    ApiForbidden,
    /// The API is rate limiting us (429).
    ApiRateLimited,
    /// The API failed (5xx).
    ApiServer,
    /// The API could not be reached.
    ApiUnreachable,
    /// Any other API answer.
    ApiFailed,
    /// A reply was not the JSON we expected.
    Malformed,
    /// The app itself crashed (a panic).
    Crashed,
}

impl ProblemKind {
    /// Whether this is a failure of Bitbucket's API, which happens while a
    /// session is in hand.
    pub fn is_api(self) -> bool {
        matches!(
            self,
            Self::TokenExpired
                | Self::ApiUnauthorized
                | Self::ApiForbidden
                | Self::ApiRateLimited
                | Self::ApiServer
                | Self::ApiUnreachable
                | Self::ApiFailed
        )
    }

    /// A stable, kebab-case name for the `data-kind` attribute.
    pub fn slug(self) -> &'static str {
        match self {
            Self::ConfigMissing => "config-missing",
            Self::ConfigUnreachable => "config-unreachable",
            Self::ConfigInvalid => "config-invalid",
            Self::StorageUnavailable => "storage-unavailable",
            Self::AccessDenied => "access-denied",
            Self::AuthorizeFailed => "authorize-failed",
            Self::StateMissing => "state-missing",
            Self::StateMismatch => "state-mismatch",
            Self::CallbackMalformed => "callback-malformed",
            Self::RelayUnreachable => "relay-unreachable",
            Self::RelaySlow => "relay-slow",
            Self::RelayRefusedRedirect => "relay-refused-redirect",
            Self::RelayRefusedOrigin => "relay-refused-origin",
            Self::RelayClientRejected => "relay-client-rejected",
            Self::CodeRejected => "code-rejected",
            Self::RelayBusy => "relay-busy",
            Self::UpstreamUnavailable => "upstream-unavailable",
            Self::UpstreamBroken => "upstream-broken",
            Self::RelayFailed => "relay-failed",
            Self::SessionExpired => "session-expired",
            Self::ProofRejected => "proof-rejected",
            Self::SessionUnbound => "session-unbound",
            Self::SessionLimit => "session-limit",
            Self::KeyUnavailable => "key-unavailable",
            Self::SignedOutElsewhere => "signed-out-elsewhere",
            Self::TokenExpired => "token-expired",
            Self::ApiUnauthorized => "api-unauthorized",
            Self::ApiForbidden => "api-forbidden",
            Self::ApiRateLimited => "api-rate-limited",
            Self::ApiServer => "api-server",
            Self::ApiUnreachable => "api-unreachable",
            Self::ApiFailed => "api-failed",
            Self::Malformed => "malformed",
            Self::Crashed => "crashed",
        }
    }
}

/// What the visitor can do about a problem: the main button of the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WayOut {
    /// Try the failed step again (it may be transient, or fixed meanwhile).
    Retry,
    /// Start a fresh sign-in.
    SignInAgain,
    /// Reload the page (after a crash, nothing else is safe).
    Reload,
}

/// One line of a set-up checklist: a setting and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Where the setting lives, such as `relay_url in config.json`.
    pub name: Cow<'static, str>,
    /// What to check or change, with the exact value when we know it.
    pub fix: Cow<'static, str>,
}

/// A failure, ready to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Which failure this is.
    pub kind: ProblemKind,
    /// A short headline in plain words.
    pub title: Cow<'static, str>,
    /// One or two sentences: what happened, and what it means for the visitor.
    pub explanation: Cow<'static, str>,
    /// Technical detail for whoever runs the site (status, error code), if any.
    pub detail: Option<String>,
    /// The main way out.
    pub way_out: WayOut,
    /// Settings to check when the deployment is at fault; empty otherwise.
    pub checklist: Vec<Setting>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

/// Which Bitbucket permission an API call needs, for a 403's explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Scope `account`, "Account: Read" in Bitbucket's consumer form.
    Account,
    /// Scope `email`, "Account: Email" in the form.
    Email,
}

impl Permission {
    /// The scope name.
    pub fn scope(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Email => "email",
        }
    }

    /// The checkbox label in Bitbucket's consumer form.
    pub fn label(self) -> &'static str {
        match self {
            Self::Account => "Account: Read",
            Self::Email => "Account: Email",
        }
    }

    /// What the permission lets the app read, in plain words.
    fn what(self) -> &'static str {
        match self {
            Self::Account => "your account details",
            Self::Email => "your email addresses",
        }
    }
}

impl Problem {
    /// A problem with no detail and no checklist.
    pub fn new(
        kind: ProblemKind,
        title: &'static str,
        explanation: impl Into<Cow<'static, str>>,
        way_out: WayOut,
    ) -> Self {
        Self {
            kind,
            title: Cow::Borrowed(title),
            explanation: explanation.into(),
            detail: None,
            way_out,
            checklist: Vec::new(),
        }
    }

    /// Adds technical detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        if !detail.is_empty() {
            self.detail = Some(detail);
        }
        self
    }

    /// Adds a checklist line.
    pub fn with_setting(
        mut self,
        name: impl Into<Cow<'static, str>>,
        fix: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.checklist.push(Setting { name: name.into(), fix: fix.into() });
        self
    }

    /// Whether this problem is the deployment's fault, so the view shows a
    /// set-up checklist rather than a plain error.
    pub fn is_setup_problem(&self) -> bool {
        !self.checklist.is_empty()
    }

    // ---- configuration ------------------------------------------------

    /// `config.json` answered 404.
    pub fn config_missing(config_url: &str) -> Self {
        Self::new(
            ProblemKind::ConfigMissing,
            "This site isn't set up yet",
            "The app needs a settings file, config.json, next to its page, and there is none.",
            WayOut::Retry,
        )
        .with_detail(format!("GET {config_url} answered 404 Not Found"))
        .with_setting(
            "config.json",
            format!(
                "Publish config.json at {config_url} with client_id, authorize_url, relay_url, \
                 api_base and scopes."
            ),
        )
    }

    /// `config.json` could not be fetched (network error or a non-404 failure).
    pub fn config_unreachable(config_url: &str, detail: impl Into<String>) -> Self {
        Self::new(
            ProblemKind::ConfigUnreachable,
            "Couldn't load this site's settings",
            "The app could not download its settings file. Check your connection and try again.",
            WayOut::Retry,
        )
        .with_detail(format!("GET {config_url}: {}", detail.into()))
    }

    /// `config.json` is there but invalid; `issues` lists each bad setting.
    pub fn config_invalid(issues: Vec<Setting>) -> Self {
        let mut problem = Self::new(
            ProblemKind::ConfigInvalid,
            "This site's settings need fixing",
            "The settings file, config.json, has mistakes. Whoever runs this site can fix them \
             with the checklist below.",
            WayOut::Retry,
        );
        problem.checklist = issues;
        problem
    }

    /// sessionStorage throws or is absent.
    pub fn storage_unavailable() -> Self {
        Self::new(
            ProblemKind::StorageUnavailable,
            "Your browser is blocking this tab's storage",
            "Signing in keeps a few values in this tab's session storage, and the browser refuses \
             it (a private window or a privacy setting can do that). Allow site data for this page \
             and try again.",
            WayOut::Retry,
        )
    }

    // ---- the callback ---------------------------------------------------

    /// The person declined at Bitbucket.
    pub fn access_denied(description: Option<&str>) -> Self {
        let problem = Self::new(
            ProblemKind::AccessDenied,
            "You didn't allow access",
            "Bitbucket says access wasn't granted, so you're not signed in and nothing was shared \
             with this site. You can sign in again whenever you like.",
            WayOut::SignInAgain,
        );
        match description {
            Some(text) => problem.with_detail(format!("access_denied: {text}")),
            None => problem,
        }
    }

    /// Bitbucket sent another error to the callback.
    pub fn authorize_failed(
        error: &str,
        description: Option<&str>,
        deployment: &Deployment,
    ) -> Self {
        let detail = match description {
            Some(text) => format!("{error}: {text}"),
            None => error.to_owned(),
        };
        let problem = Self::new(
            ProblemKind::AuthorizeFailed,
            "Bitbucket couldn't start the sign-in",
            "Bitbucket sent you back with an error instead of a sign-in.",
            WayOut::SignInAgain,
        )
        .with_detail(detail);
        // These codes mean the request itself was wrong for this consumer.
        if matches!(
            error,
            "invalid_request" | "unauthorized_client" | "invalid_scope" | "invalid_client"
        ) {
            problem
                .with_setting(
                    "client_id in config.json",
                    "Must be the Key of the Bitbucket OAuth consumer.",
                )
                .with_setting(
                    "Callback URL of the Bitbucket consumer",
                    format!("Must be {} (this page's address).", deployment.redirect_uri),
                )
        } else {
            problem
        }
    }

    /// A callback arrived but no sign-in is in progress in this tab.
    pub fn state_missing() -> Self {
        Self::new(
            ProblemKind::StateMissing,
            "This sign-in was already used",
            "This page was opened with a sign-in answer that this tab isn't waiting for: it was \
             already used (a reload or the back button), or it was started in another tab. \
             Nothing was sent anywhere.",
            WayOut::SignInAgain,
        )
    }

    /// The returned state does not match the stored one.
    pub fn state_mismatch() -> Self {
        Self::new(
            ProblemKind::StateMismatch,
            "This sign-in doesn't match yours",
            "The answer from Bitbucket doesn't belong to the sign-in this tab started. It could be \
             a forged link trying to sign you in to someone else's account, so it was ignored and \
             nothing was sent anywhere.",
            WayOut::SignInAgain,
        )
    }

    /// The callback had no code, or could not be parsed.
    pub fn callback_malformed(reason: &str) -> Self {
        Self::new(
            ProblemKind::CallbackMalformed,
            "Bitbucket's answer was incomplete",
            "You came back from Bitbucket without the code needed to finish signing in. \
             Nothing was sent anywhere.",
            WayOut::SignInAgain,
        )
        .with_detail(reason.to_owned())
    }

    // ---- the relay ------------------------------------------------------

    /// The relay did not answer: down, wrong URL, or our origin refused (a
    /// browser reports a CORS refusal as a network error).
    pub fn relay_unreachable(deployment: &Deployment, detail: impl Into<String>) -> Self {
        let health = crate::weburl::WebUrl::parse(&deployment.relay_url)
            .and_then(|relay| relay.join("healthz"))
            .map(String::from)
            .unwrap_or_else(|| "the relay's /healthz".to_owned());
        Self::new(
            ProblemKind::RelayUnreachable,
            "Couldn't reach the sign-in relay",
            "The relay that finishes the sign-in did not answer. Either it isn't running, or it \
             refused this page's address (browsers report that as a network error too).",
            WayOut::Retry,
        )
        .with_detail(detail.into())
        .with_setting(
            "relay_url in config.json",
            format!("Must be the relay's /token address; it is {}.", deployment.relay_url),
        )
        .with_setting("The relay is running", format!("Opening {health} should show \"ok\"."))
        .with_setting(
            "DANCE_ALLOWED_ORIGINS on the relay",
            format!("Must list this page's origin exactly: {}", deployment.origin),
        )
    }

    /// The relay did not answer in time.
    pub fn relay_slow(seconds: u32) -> Self {
        Self::new(
            ProblemKind::RelaySlow,
            "Signing in is taking too long",
            "The sign-in relay didn't answer in time. It may be busy or starting up; try again \
             in a moment.",
            WayOut::Retry,
        )
        .with_detail(format!("no answer within {seconds} s"))
    }

    /// The relay's allowlist lacks our redirect URI.
    pub fn relay_refused_redirect(deployment: &Deployment, description: &str) -> Self {
        Self::new(
            ProblemKind::RelayRefusedRedirect,
            "The relay doesn't accept this page's address",
            "The sign-in relay only finishes sign-ins for pages it knows, and this page's address \
             isn't on its list.",
            WayOut::Retry,
        )
        .with_detail(format!("invalid_request: {description}"))
        .with_setting(
            "DANCE_ALLOWED_REDIRECT_URIS on the relay",
            format!("Must include exactly {}", deployment.redirect_uri),
        )
        .with_setting(
            "Callback URL of the Bitbucket consumer",
            format!("Must be {}", deployment.redirect_uri),
        )
    }

    /// The relay refused our origin with a readable answer.
    pub fn relay_refused_origin(deployment: &Deployment, detail: &str) -> Self {
        Self::new(
            ProblemKind::RelayRefusedOrigin,
            "The relay doesn't accept this site",
            "The sign-in relay only serves the sites it knows, and this one isn't on its list.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
        .with_setting(
            "DANCE_ALLOWED_ORIGINS on the relay",
            format!("Must list this page's origin exactly: {}", deployment.origin),
        )
    }

    /// Bitbucket refused the relay's own credentials.
    pub fn relay_client_rejected(detail: &str) -> Self {
        Self::new(
            ProblemKind::RelayClientRejected,
            "Bitbucket rejected this site's credentials",
            "The sign-in relay's consumer key or secret isn't accepted by Bitbucket, so nobody \
             can sign in until whoever runs this site fixes it.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
        .with_setting(
            "DANCE_CLIENT_ID and DANCE_CLIENT_SECRET (or _FILE) on the relay",
            "Must be the Key and Secret of the Bitbucket OAuth consumer.",
        )
        .with_setting(
            "client_id in config.json",
            "Must be the same Key as the relay's DANCE_CLIENT_ID.",
        )
    }

    /// The code or refresh token was refused: sign in again.
    pub fn code_rejected(detail: &str) -> Self {
        Self::new(
            ProblemKind::CodeRejected,
            "That sign-in has expired",
            "Bitbucket didn't accept the sign-in: each one works only once and only for a few \
             minutes. Please sign in again.",
            WayOut::SignInAgain,
        )
        .with_detail(detail.to_owned())
    }

    /// Rate limited or out of capacity; `retry_after` in seconds when known.
    pub fn relay_busy(retry_after: Option<u32>, detail: &str) -> Self {
        let explanation = match retry_after {
            Some(seconds) => format!(
                "Too many sign-ins are happening right now. Please try again in {seconds} seconds."
            ),
            None => {
                "Too many sign-ins are happening right now. Please try again shortly.".to_owned()
            }
        };
        Self::new(ProblemKind::RelayBusy, "Sign-in is busy right now", explanation, WayOut::Retry)
            .with_detail(detail.to_owned())
    }

    /// Bitbucket was unreachable or slow from the relay.
    pub fn upstream_unavailable(detail: &str) -> Self {
        Self::new(
            ProblemKind::UpstreamUnavailable,
            "Bitbucket isn't answering",
            "The sign-in relay couldn't get an answer from Bitbucket. This is usually brief; \
             try again in a moment.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
    }

    /// Bitbucket answered the relay with something that isn't OAuth.
    pub fn upstream_broken(detail: &str) -> Self {
        Self::new(
            ProblemKind::UpstreamBroken,
            "Bitbucket gave an unexpected answer",
            "The sign-in relay got a reply from its token address that wasn't an OAuth answer.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
        .with_setting(
            "DANCE_TOKEN_URL on the relay",
            "Must be https://bitbucket.org/site/oauth2/access_token (or your emulator's).",
        )
    }

    /// Any other relay failure.
    pub fn relay_failed(detail: &str) -> Self {
        Self::new(
            ProblemKind::RelayFailed,
            "Signing in didn't work",
            "The sign-in relay refused the request.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
    }

    /// A refresh failed for good: the session is over.
    pub fn session_expired(detail: &str) -> Self {
        Self::new(
            ProblemKind::SessionExpired,
            "Your session has ended",
            "Bitbucket no longer accepts this sign-in, so you've been signed out. Sign in again \
             to continue.",
            WayOut::SignInAgain,
        )
        .with_detail(detail.to_owned())
    }

    /// The relay refused the proof signed with this browser's key.
    pub fn proof_rejected(detail: &str) -> Self {
        Self::new(
            ProblemKind::ProofRejected,
            "The relay didn't accept this browser's proof",
            "Signing in sends a proof made with a key only this browser holds, stamped with the \
             time. The sign-in relay refused it, most likely because this computer's clock is off \
             by more than a minute. Set the clock to the right time and try again.",
            WayOut::Retry,
        )
        .with_detail(detail.to_owned())
    }

    /// The session's key is gone, or the relay no longer accepts it.
    pub fn session_unbound(detail: &str) -> Self {
        Self::new(
            ProblemKind::SessionUnbound,
            "Your session can't be renewed",
            "Your sign-in works only with a key kept in this browser, and that key is gone or no \
             longer accepted (clearing this site's data removes it), so you've been signed out. \
             Sign in again to continue.",
            WayOut::SignInAgain,
        )
        .with_detail(detail.to_owned())
    }

    /// The session reached the longest time the relay lets it last.
    pub fn session_limit(detail: &str) -> Self {
        Self::new(
            ProblemKind::SessionLimit,
            "Your session reached its time limit",
            "Your session reached the longest time it may last on this site, so you've been \
             signed out. Sign in again to continue.",
            WayOut::SignInAgain,
        )
        .with_detail(detail.to_owned())
    }

    /// WebCrypto or IndexedDB is missing or failed; `secure` tells whether
    /// the page is a secure context (elsewhere browsers offer no WebCrypto).
    pub fn key_unavailable(secure: bool, detail: impl Into<String>) -> Self {
        let explanation = if secure {
            "Signing in makes a key only this browser can use and keeps it in the browser's \
             storage for this site (IndexedDB). This browser can't: it may be too old, or a \
             private window or a privacy setting blocks site data. Update the browser or allow \
             site data for this page, and try again."
        } else {
            "Signing in makes a key only this browser can use, and browsers allow that only on \
             secure pages. Open this page at its https:// address and sign in there."
        };
        Self::new(
            ProblemKind::KeyUnavailable,
            "This browser can't keep a sign-in key",
            explanation,
            WayOut::Retry,
        )
        .with_detail(detail)
    }

    /// Another tab sharing this session signed out.
    pub fn signed_out_elsewhere() -> Self {
        Self::new(
            ProblemKind::SignedOutElsewhere,
            "You signed out in another tab",
            "This tab shared its sign-in with another tab of this site, which signed out, so \
             this one is signed out too.",
            WayOut::SignInAgain,
        )
    }

    // ---- the API --------------------------------------------------------

    /// The API said the access token expired.
    pub fn token_expired() -> Self {
        Self::new(
            ProblemKind::TokenExpired,
            "Your sign-in needs renewing",
            "Bitbucket says the access token has expired.",
            WayOut::SignInAgain,
        )
        .with_detail("401 Access token expired.")
    }

    /// The API refused the token (401, not an expiry).
    pub fn api_unauthorized(message: &str) -> Self {
        Self::new(
            ProblemKind::ApiUnauthorized,
            "Bitbucket no longer accepts this sign-in",
            "Your access was revoked or has run out. Sign in again to continue.",
            WayOut::SignInAgain,
        )
        .with_detail(format!("401 {message}"))
    }

    /// The API refused for lack of a permission (403).
    pub fn api_forbidden(permission: Permission, message: &str) -> Self {
        Self::new(
            ProblemKind::ApiForbidden,
            "This site lacks a permission",
            format!(
                "Bitbucket won't share {} with this site: its OAuth consumer doesn't have the \
                 \u{201c}{}\u{201d} permission.",
                permission.what(),
                permission.label()
            ),
            WayOut::SignInAgain,
        )
        .with_detail(format!("403 {message} (scope {})", permission.scope()))
        .with_setting(
            "Permissions of the Bitbucket OAuth consumer",
            format!("Tick \u{201c}{}\u{201d}, save, then sign in again.", permission.label()),
        )
    }

    /// The API is rate limiting us.
    pub fn api_rate_limited(retry_after: Option<u32>) -> Self {
        let explanation = match retry_after {
            Some(seconds) => format!(
                "Bitbucket has had too many requests from your account recently. Please try again \
                 in {seconds} seconds."
            ),
            None => "Bitbucket has had too many requests from your account recently. Please wait \
                     a few minutes and try again."
                .to_owned(),
        };
        Self::new(
            ProblemKind::ApiRateLimited,
            "Bitbucket asks us to slow down",
            explanation,
            WayOut::Retry,
        )
        .with_detail("429 Too Many Requests")
    }

    /// The API failed with a 5xx.
    pub fn api_server(status: u16) -> Self {
        Self::new(
            ProblemKind::ApiServer,
            "Bitbucket is having trouble",
            "Bitbucket couldn't load your profile just now. This is usually brief; try again in \
             a moment.",
            WayOut::Retry,
        )
        .with_detail(format!("HTTP {status}"))
    }

    /// The API could not be reached.
    pub fn api_unreachable(deployment: &Deployment, detail: impl Into<String>) -> Self {
        Self::new(
            ProblemKind::ApiUnreachable,
            "Couldn't reach Bitbucket",
            "Your profile couldn't be loaded because Bitbucket's API did not answer. Check your \
             connection and try again.",
            WayOut::Retry,
        )
        .with_detail(detail.into())
        .with_setting(
            "api_base in config.json",
            format!(
                "Must be Bitbucket's API address, https://api.bitbucket.org/2.0/; it is {}.",
                deployment.api_base
            ),
        )
    }

    /// Any other API failure.
    pub fn api_failed(status: u16, message: &str) -> Self {
        Self::new(
            ProblemKind::ApiFailed,
            "Bitbucket refused the request",
            "Bitbucket couldn't load your profile.",
            WayOut::Retry,
        )
        .with_detail(format!("HTTP {status}: {message}"))
    }

    /// A reply was not the JSON we expected; `from` names who sent it.
    pub fn malformed(from: &str, detail: impl Into<String>) -> Self {
        Self::new(
            ProblemKind::Malformed,
            "Got an answer we couldn't read",
            format!("{from} sent a reply that isn't what this app expects. Trying again may help."),
            WayOut::Retry,
        )
        .with_detail(detail.into())
    }

    /// The app crashed.
    pub fn crashed() -> Self {
        Self::new(
            ProblemKind::Crashed,
            "Something went wrong",
            "This page hit an unexpected error and stopped. Reloading usually fixes it.",
            WayOut::Reload,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Deployment {
        Deployment {
            origin: "https://user.github.io".into(),
            redirect_uri: "https://user.github.io/repo/".into(),
            relay_url: "https://relay.example/token".into(),
            api_base: "https://api.bitbucket.org/2.0/".into(),
        }
    }

    #[test]
    fn configuration_failures_name_the_setting_and_value() {
        let d = deployment();
        let problem = Problem::relay_unreachable(&d, "TypeError: Failed to fetch");
        assert!(problem.is_setup_problem());
        let names: Vec<&str> = problem.checklist.iter().map(|s| s.name.as_ref()).collect();
        assert!(names.contains(&"DANCE_ALLOWED_ORIGINS on the relay"), "{names:?}");
        assert!(problem.checklist.iter().any(|s| s.fix.contains("https://user.github.io")));
        assert!(problem.checklist.iter().any(|s| s.fix.contains("https://relay.example/healthz")));

        let problem =
            Problem::relay_refused_redirect(&d, "redirect_uri is not on the relay's allowlist");
        assert_eq!(problem.checklist[0].name, "DANCE_ALLOWED_REDIRECT_URIS on the relay");
        assert!(problem.checklist[0].fix.ends_with("https://user.github.io/repo/"));
    }

    #[test]
    fn user_failures_have_no_checklist() {
        for problem in [
            Problem::access_denied(None),
            Problem::state_missing(),
            Problem::state_mismatch(),
            Problem::code_rejected("invalid_grant"),
            Problem::relay_slow(20),
            Problem::proof_rejected("invalid_dpop_proof"),
            Problem::session_unbound("wrong_key"),
            Problem::session_limit("session_ended"),
            Problem::key_unavailable(true, "indexedDB is missing"),
        ] {
            assert!(!problem.is_setup_problem(), "{problem}");
            assert!(!problem.title.is_empty() && !problem.explanation.is_empty());
        }
        assert_eq!(Problem::state_mismatch().way_out, WayOut::SignInAgain);
        assert_eq!(Problem::relay_slow(20).way_out, WayOut::Retry);
    }

    #[test]
    fn a_missing_key_store_names_its_cause() {
        let insecure = Problem::key_unavailable(false, "crypto.subtle is missing");
        assert!(insecure.explanation.contains("https://"), "{}", insecure.explanation);
        assert_eq!(insecure.detail.as_deref(), Some("crypto.subtle is missing"));
        let refused = Problem::key_unavailable(true, "indexedDB is missing");
        assert!(refused.explanation.contains("IndexedDB"), "{}", refused.explanation);
        assert!(!refused.explanation.contains("https://"), "{}", refused.explanation);
        assert!(
            Problem::proof_rejected("").explanation.contains("clock"),
            "a refused proof names the usual fix"
        );
    }

    #[test]
    fn forbidden_names_the_permission() {
        let problem = Problem::api_forbidden(Permission::Email, "Forbidden");
        assert!(problem.explanation.contains("Account: Email"));
        assert!(problem.checklist[0].fix.contains("Account: Email"));
    }

    #[test]
    fn empty_detail_is_dropped_and_display_is_compact() {
        let problem = Problem::relay_failed("");
        assert_eq!(problem.detail, None);
        assert_eq!(problem.to_string(), "relay-failed: Signing in didn't work");
        let problem = Problem::api_server(503);
        assert_eq!(problem.to_string(), "api-server: Bitbucket is having trouble (HTTP 503)");
    }

    #[test]
    fn slugs_are_unique() {
        use std::collections::HashSet;
        let kinds = [
            ProblemKind::ConfigMissing,
            ProblemKind::ConfigUnreachable,
            ProblemKind::ConfigInvalid,
            ProblemKind::StorageUnavailable,
            ProblemKind::AccessDenied,
            ProblemKind::AuthorizeFailed,
            ProblemKind::StateMissing,
            ProblemKind::StateMismatch,
            ProblemKind::CallbackMalformed,
            ProblemKind::RelayUnreachable,
            ProblemKind::RelaySlow,
            ProblemKind::RelayRefusedRedirect,
            ProblemKind::RelayRefusedOrigin,
            ProblemKind::RelayClientRejected,
            ProblemKind::CodeRejected,
            ProblemKind::RelayBusy,
            ProblemKind::UpstreamUnavailable,
            ProblemKind::UpstreamBroken,
            ProblemKind::RelayFailed,
            ProblemKind::SessionExpired,
            ProblemKind::ProofRejected,
            ProblemKind::SessionUnbound,
            ProblemKind::SessionLimit,
            ProblemKind::KeyUnavailable,
            ProblemKind::SignedOutElsewhere,
            ProblemKind::TokenExpired,
            ProblemKind::ApiUnauthorized,
            ProblemKind::ApiForbidden,
            ProblemKind::ApiRateLimited,
            ProblemKind::ApiServer,
            ProblemKind::ApiUnreachable,
            ProblemKind::ApiFailed,
            ProblemKind::Malformed,
            ProblemKind::Crashed,
        ];
        let slugs: HashSet<&str> = kinds.iter().map(|k| k.slug()).collect();
        assert_eq!(slugs.len(), kinds.len());
    }
}
