//! The authorization code flow with PKCE, from this tab's point of view.
//!
//! Leaving ([`begin`]): a fresh `state` and PKCE verifier (from
//! `crypto.getRandomValues`, through `dance-protocol`) are kept in this tab's
//! session storage together with the redirect URI and the page to come back
//! to, and the tab navigates to the authorize URL.
//!
//! Coming back ([`take_callback`], then [`after_callback`]):
//! 1. `code`, `state` and `error*` are removed from the address bar with
//!    `history.replaceState` first, before any network call, so a reload,
//!    back/forward or a bookmark can never replay them and no `Referer`
//!    carries them (RFC 9700 4.2, 4.3).
//! 2. The stored flow is taken out of storage, which deletes it whether or
//!    not it matches (RFC 9700 4.7.1): a second tab, a reload or a forged
//!    link finds nothing to match.
//! 3. The returned `state` is compared with the stored one in constant time
//!    ([`State::matches`]); only on a match does the code go to the relay.
//!
//! Redirect URI and deep links: the redirect URI is the app's base URL
//! (`document.baseURI`, from trunk's public URL), so a project site at
//! `https://user.github.io/repo/` comes back to exactly that; nothing is
//! hard-coded. The page the person was on is restored afterwards, but only
//! if it is a same-origin path under the base ([`return_path`]): never an
//! open redirect (RFC 9700 4.11).

use crate::config::Config;
use crate::deployment::Deployment;
use crate::problem::Problem;
use crate::storage::{Key, SessionStore};
use crate::weburl::WebUrl;
use dance_protocol::authorize::{AuthorizeParams, Callback, CallbackError, strip_callback_query};
use dance_protocol::token::TokenRequest;
use dance_protocol::{PkceVerifier, State};
use serde::{Deserialize, Serialize};

/// A sign-in in progress, kept in session storage while the person is at
/// Bitbucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlow {
    /// The anti-CSRF value sent in the authorization request.
    pub state: State,
    /// The PKCE verifier whose challenge was sent.
    pub verifier: PkceVerifier,
    /// The redirect URI sent (the token request must repeat it exactly).
    pub redirect_uri: String,
    /// Where to go after signing in: a same-origin path, query and fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The `config.json` text the sign-in started with, so the callback
    /// needs no request for it. Checked again like a fetched one; a value
    /// planted by another page of the origin could only name a relay that
    /// the page's Content-Security-Policy (`connect-src`) already allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// What to do after the callback was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// The state matched: exchange this code (through the relay), then go
    /// to `return_to`.
    Exchange {
        /// The token request for the relay.
        request: TokenRequest,
        /// The page to restore afterwards.
        return_to: Option<String>,
    },
    /// Stop and show this.
    Fail(Problem),
}

/// A return from Bitbucket, read from the address bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// What came back (or why it is unusable).
    pub callback: Result<Callback, CallbackError>,
    /// The flow this tab had stored, already deleted from storage.
    pub stored: Option<PendingFlow>,
}

// ---- pure parts ------------------------------------------------------------

/// The app's base URL from `document.baseURI`: the directory of the page
/// (a trailing file name such as `index.html` dropped), without query or
/// fragment, by the deployment contract's rule
/// ([`dance_protocol::deployment::app_base`], which the doctor applies too).
pub fn app_base(base_uri: &WebUrl) -> WebUrl {
    WebUrl::parse(&dance_protocol::deployment::app_base(base_uri.as_str()))
        .unwrap_or_else(|| base_uri.clone())
}

/// The app's base URL in this page: [`app_base`] of `document.baseURI`
/// (trunk's public URL, so `/repo/` on a GitHub Pages project site). This
/// is also the redirect URI.
pub fn page_base() -> Option<WebUrl> {
    crate::browser::base_uri().map(|uri| app_base(&uri))
}

/// The redirect URI: the base URL itself.
pub fn redirect_uri(base: &WebUrl) -> WebUrl {
    base.clone()
}

/// The origin as browsers send it in `Origin` (no trailing slash).
pub fn origin_of(url: &WebUrl) -> String {
    url.origin().to_owned()
}

/// The authorization response in `page`, if the page is the redirect URI
/// (the base path) and carries any of `code`, `state`, `error`.
pub fn callback_in(page: &WebUrl, base: &WebUrl) -> Option<Result<Callback, CallbackError>> {
    if page.path() != base.path() || origin_of(page) != origin_of(base) {
        return None;
    }
    match Callback::from_query(page.query().unwrap_or_default()) {
        Err(CallbackError::NotACallback) => None,
        other => Some(other),
    }
}

/// The address to show instead of `page` once the callback parameters are
/// removed, as a path with query and fragment; `None` when there was nothing
/// to remove.
pub fn cleaned(page: &WebUrl) -> Option<String> {
    let query = strip_callback_query(page.query()?)?;
    Some(relative(page, Some(query.as_str()).filter(|q| !q.is_empty())))
}

/// `path?query#fragment` of a URL, with `query` in place of its own.
fn relative(url: &WebUrl, query: Option<&str>) -> String {
    let mut out = url.path().to_owned();
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    if let Some(fragment) = url.fragment() {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// The page to come back to after signing in, when `candidate` (a URL or a
/// path) is on the same origin and under the app's base path. Callback
/// parameters are stripped from it. Anything else, such as
/// `https://evil.example/`, `//evil.example/`, `/\evil.example` or
/// `javascript:...`, gives `None`: no open redirect.
pub fn return_path(base: &WebUrl, candidate: &str) -> Option<String> {
    if candidate.is_empty() || candidate.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let url = base.join(candidate)?;
    if origin_of(&url) != origin_of(base) || !url.path().starts_with(base.path()) {
        return None;
    }
    let query = match url.query().map(|query| (query, strip_callback_query(query))) {
        Some((_, Some(stripped))) => Some(stripped).filter(|q| !q.is_empty()),
        Some((query, None)) => Some(query.to_owned()),
        None => None,
    };
    let path = relative(&url, query.as_deref());
    // Coming back to the base itself needs no restoring.
    (path != base.path()).then_some(path)
}

/// Checks the callback against the stored flow and decides what happens.
///
/// The stored flow must already be deleted from storage; this only
/// compares. The state is compared with [`State::matches`] (constant time).
pub fn after_callback(arrival: Arrival, deployment: &Deployment) -> Next {
    let Arrival { callback, stored } = arrival;
    let callback = match callback {
        Ok(callback) => callback,
        Err(error) => return Next::Fail(Problem::callback_malformed(&error.to_string())),
    };
    let Some(flow) = stored else {
        return Next::Fail(Problem::state_missing());
    };
    let matched = callback.state().is_some_and(|returned| flow.state.matches(returned));
    if !matched {
        return Next::Fail(Problem::state_mismatch());
    }
    match callback {
        Callback::Denied { error, description, .. } => Next::Fail(if error == "access_denied" {
            Problem::access_denied(description.as_deref())
        } else {
            Problem::authorize_failed(&error, description.as_deref(), deployment)
        }),
        Callback::Code { code, .. } => Next::Exchange {
            request: TokenRequest::AuthorizationCode {
                code,
                redirect_uri: flow.redirect_uri,
                code_verifier: flow.verifier,
            },
            return_to: flow.return_to,
        },
    }
}

/// A fresh flow and the authorize URL that starts it.
pub fn new_flow(
    config: &Config,
    base: &WebUrl,
    return_to: Option<String>,
) -> (PendingFlow, String) {
    let state = State::generate();
    let verifier = PkceVerifier::generate();
    let redirect = redirect_uri(base);
    let url = AuthorizeParams {
        authorize_url: config.authorize_url.as_str(),
        client_id: &config.client_id,
        redirect_uri: Some(redirect.as_str()),
        state: &state,
        code_challenge: &verifier.challenge(),
    }
    .to_url_string();
    let flow = PendingFlow {
        state,
        verifier,
        redirect_uri: redirect.to_string(),
        return_to,
        config: Some(config.text().to_owned()),
    };
    (flow, url)
}

// ---- the browser side ------------------------------------------------------

/// Reads the address bar and, if it carries an authorization response:
/// removes it with `history.replaceState` (first, before anything else),
/// then takes (reads and deletes) this tab's stored flow.
///
/// Call this once at start-up, before any network request.
pub fn take_callback(store: Option<&SessionStore>, base: &WebUrl) -> Option<Arrival> {
    let page = crate::browser::page_url()?;
    if let Some(clean) = cleaned(&page) {
        crate::browser::replace_url(&clean);
    }
    let callback = callback_in(&page, base)?;
    crate::browser::mark("dance:callback-start");
    let stored = store.and_then(|s| s.take_json::<PendingFlow>(Key::Flow));
    Some(Arrival { callback, stored })
}

/// Starts a sign-in: a fresh state and verifier are stored for this tab and
/// the authorize URL to navigate to is returned. The current page (when it
/// is a deep link under the base) is remembered for the return.
pub fn begin(config: &Config, base: &WebUrl, store: &SessionStore) -> Result<String, Problem> {
    let here = crate::browser::page_url().and_then(|page| return_path(base, page.as_str()));
    let (flow, url) = new_flow(config, base, here);
    store.set_json(Key::Flow, &flow)?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_protocol::AuthorizationCode;

    fn url(s: &str) -> WebUrl {
        WebUrl::parse(s).expect("test URL")
    }

    fn config() -> Config {
        Config::parse(include_str!("../config.json")).expect("demo config")
    }

    fn flow(state: &str) -> PendingFlow {
        PendingFlow {
            state: State::new(state),
            verifier: PkceVerifier::new("v".repeat(43)),
            redirect_uri: "https://user.github.io/repo/".into(),
            return_to: Some("/repo/settings?tab=2#top".into()),
            config: None,
        }
    }

    fn deployment() -> Deployment {
        Deployment::new(&url("https://user.github.io/repo/"), None)
    }

    #[test]
    fn base_and_redirect_come_from_the_page() {
        assert_eq!(
            app_base(&url("https://user.github.io/repo/")).as_str(),
            "https://user.github.io/repo/"
        );
        assert_eq!(
            app_base(&url("https://user.github.io/repo/index.html?x=1#y")).as_str(),
            "https://user.github.io/repo/"
        );
        assert_eq!(
            app_base(&url("http://127.0.0.1:8080/?code=a&state=b")).as_str(),
            "http://127.0.0.1:8080/"
        );
        let base = url("https://user.github.io/repo/");
        assert_eq!(redirect_uri(&base).as_str(), "https://user.github.io/repo/");
        assert_eq!(origin_of(&base), "https://user.github.io");
        assert_eq!(origin_of(&url("http://127.0.0.1:8080/")), "http://127.0.0.1:8080");
    }

    #[test]
    fn callbacks_are_only_read_at_the_redirect_uri() {
        let base = url("https://user.github.io/repo/");
        let at = |s: &str| callback_in(&url(s), &base);
        assert!(matches!(
            at("https://user.github.io/repo/?code=c&state=s"),
            Some(Ok(Callback::Code { .. }))
        ));
        assert!(matches!(
            at("https://user.github.io/repo/?error=access_denied&state=s"),
            Some(Ok(Callback::Denied { .. }))
        ));
        assert_eq!(
            at("https://user.github.io/repo/?state=s"),
            Some(Err(CallbackError::MissingCode))
        );
        assert_eq!(at("https://user.github.io/repo/"), None);
        assert_eq!(at("https://user.github.io/repo/?tab=1"), None);
        assert_eq!(
            at("https://user.github.io/repo/deep?code=c&state=s"),
            None,
            "not the redirect URI"
        );
        assert_eq!(at("https://user.github.io/other/?code=c&state=s"), None);
    }

    #[test]
    fn cleaning_removes_every_callback_parameter() {
        assert_eq!(cleaned(&url("http://127.0.0.1:8080/?code=c&state=s")).as_deref(), Some("/"));
        assert_eq!(
            cleaned(&url("https://u.github.io/repo/?keep=1&error=access_denied&error_description=no&state=s#f")).as_deref(),
            Some("/repo/?keep=1#f")
        );
        assert_eq!(cleaned(&url("https://u.github.io/repo/?keep=1")), None, "nothing to clean");
    }

    #[test]
    fn return_paths_stay_on_this_app() {
        let base = url("https://user.github.io/repo/");
        let check = |candidate: &str| return_path(&base, candidate);
        assert_eq!(check("/repo/settings?tab=2#top").as_deref(), Some("/repo/settings?tab=2#top"));
        assert_eq!(check("https://user.github.io/repo/a/b").as_deref(), Some("/repo/a/b"));
        assert_eq!(check("/repo/x?code=c&state=s&y=1").as_deref(), Some("/repo/x?y=1"));
        assert_eq!(
            check("https://user.github.io/repo/"),
            None,
            "the base itself needs no restoring"
        );
        for evil in [
            "https://evil.example/repo/",
            "//evil.example/repo/",
            "/\\evil.example",
            "\\\\evil.example",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user.github.io/other-repo/",
            "/other/",
            "http://user.github.io/repo/x",
            "https://user.github.io:444/repo/x",
            "/repo/\nx",
            "",
        ] {
            assert_eq!(check(evil), None, "{evil:?} must be refused");
        }
    }

    #[test]
    fn a_matching_state_exchanges_the_code() {
        let next = after_callback(
            Arrival {
                callback: Ok(Callback::Code {
                    code: AuthorizationCode::new("the-code"),
                    state: "s1".into(),
                }),
                stored: Some(flow("s1")),
            },
            &deployment(),
        );
        let Next::Exchange { request, return_to } = next else {
            panic!("expected an exchange, got {next:?}")
        };
        assert_eq!(return_to.as_deref(), Some("/repo/settings?tab=2#top"));
        let form = request.to_form();
        assert!(form.contains("code=the-code"), "{form}");
        assert!(form.contains("redirect_uri=https%3A%2F%2Fuser.github.io%2Frepo%2F"), "{form}");
        assert!(form.contains(&format!("code_verifier={}", "v".repeat(43))), "{form}");
    }

    #[test]
    fn a_wrong_or_missing_state_never_exchanges() {
        let code = |state: &str| {
            Ok(Callback::Code { code: AuthorizationCode::new("c"), state: state.into() })
        };
        let kind = |arrival| match after_callback(arrival, &deployment()) {
            Next::Fail(problem) => problem.kind.slug(),
            Next::Exchange { .. } => "exchange",
        };
        assert_eq!(
            kind(Arrival { callback: code("forged"), stored: Some(flow("s1")) }),
            "state-mismatch"
        );
        assert_eq!(
            kind(Arrival { callback: code("s1x"), stored: Some(flow("s1")) }),
            "state-mismatch"
        );
        assert_eq!(
            kind(Arrival { callback: code("s"), stored: Some(flow("s1")) }),
            "state-mismatch"
        );
        assert_eq!(kind(Arrival { callback: code("s1"), stored: None }), "state-missing");
        assert_eq!(
            kind(Arrival { callback: Err(CallbackError::MissingCode), stored: Some(flow("s1")) }),
            "callback-malformed"
        );
    }

    #[test]
    fn denials_are_explained() {
        let denied = |error: &str, state: Option<&str>| Arrival {
            callback: Ok(Callback::Denied {
                error: error.into(),
                description: Some("The user said no".into()),
                state: state.map(Into::into),
            }),
            stored: Some(flow("s1")),
        };
        let Next::Fail(problem) =
            after_callback(denied("access_denied", Some("s1")), &deployment())
        else {
            panic!("a denial never exchanges")
        };
        assert_eq!(problem.kind.slug(), "access-denied");
        assert_eq!(problem.detail.as_deref(), Some("access_denied: The user said no"));

        let Next::Fail(problem) =
            after_callback(denied("unauthorized_client", Some("s1")), &deployment())
        else {
            panic!("a denial never exchanges")
        };
        assert_eq!(problem.kind.slug(), "authorize-failed");
        assert!(problem.checklist.iter().any(|s| s.fix.contains("https://user.github.io/repo/")));

        let Next::Fail(problem) = after_callback(denied("access_denied", None), &deployment())
        else {
            panic!("a denial never exchanges")
        };
        assert_eq!(problem.kind.slug(), "state-mismatch", "an unbound error is not trusted");
    }

    #[test]
    fn new_flows_are_fresh_and_carry_the_redirect_uri() {
        let base = url("http://127.0.0.1:8080/");
        let (a, url_a) = new_flow(&config(), &base, None);
        let (b, _) = new_flow(&config(), &base, None);
        assert_ne!(a.state, b.state);
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.state.secret().len(), 43);
        // State and challenge are base64url: form encoding leaves them as they are.
        assert_eq!(
            url_a,
            format!(
                "http://127.0.0.1:9090/site/oauth2/authorize?response_type=code\
                 &client_id=DemoKeyOfTheOauthDanceFakebucket&state={}\
                 &redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2F&code_challenge={}\
                 &code_challenge_method=S256",
                a.state.secret(),
                a.verifier.challenge().as_str()
            )
        );
    }

    #[test]
    fn stored_flows_round_trip_as_json() {
        let f = flow("s1");
        let json = serde_json::to_string(&f).expect("serialises");
        assert_eq!(crate::json::from_str::<PendingFlow>(&json).expect("parses"), f);
        assert!(
            format!("{f:?}").contains("[redacted]"),
            "Debug never prints the state or verifier"
        );
    }
}
