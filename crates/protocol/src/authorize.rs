//! The authorization request (RFC 6749 4.1.1 with RFC 7636 4.3) and the
//! redirect that comes back from it (4.1.2, 4.1.2.1).

use crate::secret::{AuthorizationCode, ClientId, PkceChallenge, State};
use thiserror::Error;
use url::Url;

/// The query parameters an authorization response may put in the redirect
/// URI. The SPA removes all of them from the address bar before doing
/// anything else with the page (RFC 9700 4.2).
pub const CALLBACK_PARAMS: [&str; 6] =
    ["code", "state", "error", "error_description", "error_uri", "iss"];

/// The longest value accepted for any callback parameter. Real codes and
/// states are a few dozen characters; anything far longer is garbage or an
/// attack, and is refused before it reaches storage or the network.
pub const MAX_PARAM_LEN: usize = 2048;

/// Everything needed to send a person to the authorization endpoint.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The authorization endpoint, such as `https://bitbucket.org/site/oauth2/authorize`.
    pub authorize_url: Url,
    /// The consumer's key.
    pub client_id: ClientId,
    /// Where to come back to. Bitbucket accepts any URL that starts with the
    /// consumer's registered callback, and uses the registered one when absent.
    pub redirect_uri: Option<Url>,
    /// The fresh anti-CSRF value of this attempt.
    pub state: State,
    /// The S256 challenge of this attempt's verifier.
    pub code_challenge: PkceChallenge,
}

impl AuthorizeRequest {
    /// The URL to navigate to. Query parameters already present on the
    /// endpoint are kept; ours are appended.
    pub fn to_url(&self) -> Url {
        let mut url = self.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", self.client_id.as_str())
                .append_pair("state", self.state.secret());
            if let Some(redirect_uri) = &self.redirect_uri {
                query.append_pair("redirect_uri", redirect_uri.as_str());
            }
            query
                .append_pair("code_challenge", self.code_challenge.as_str())
                .append_pair("code_challenge_method", PkceChallenge::METHOD);
        }
        url
    }
}

/// What the authorization server sent the person back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// The person granted access (RFC 6749 4.1.2).
    Code {
        /// The single-use authorization code.
        code: AuthorizationCode,
        /// The state that came back; compare it with the stored one.
        state: String,
    },
    /// The server refused or the person cancelled (RFC 6749 4.1.2.1).
    Denied {
        /// The error code, such as `access_denied`.
        error: String,
        /// Human-readable text from the server, if any.
        description: Option<String>,
        /// The state that came back, if any.
        state: Option<String>,
    },
}

/// Why a URL is not a usable authorization response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallbackError {
    /// The URL carries none of `code`, `state` and `error`: it is an ordinary
    /// page load, not a return from the authorization server.
    #[error("this address is not a return from the authorization server")]
    NotACallback,
    /// A `state` came back, but neither a `code` nor an `error`.
    #[error("the authorization server sent no code back")]
    MissingCode,
    /// A `code` came back without the `state` that protects it.
    #[error("the authorization server sent a code without a state")]
    MissingState,
    /// A parameter appeared more than once (RFC 6749 3.1 forbids it).
    #[error("the parameter `{0}` appears more than once")]
    Duplicate(&'static str),
    /// A parameter is present but empty.
    #[error("the parameter `{0}` is empty")]
    Empty(&'static str),
    /// A parameter is longer than [`MAX_PARAM_LEN`].
    #[error("the parameter `{0}` is too long")]
    TooLong(&'static str),
    /// The `error` value has characters RFC 6749 4.1.2.1 does not allow.
    #[error("the `error` parameter is malformed")]
    MalformedError,
}

impl Callback {
    /// Reads an authorization response out of the redirect URI's query.
    pub fn parse(url: &Url) -> Result<Self, CallbackError> {
        let mut found: [Option<String>; 4] = Default::default();
        const NAMES: [&str; 4] = ["code", "state", "error", "error_description"];
        for (key, value) in url.query_pairs() {
            let Some(index) = NAMES.iter().position(|name| *name == key) else {
                continue;
            };
            let name = NAMES[index];
            if found[index].is_some() {
                return Err(CallbackError::Duplicate(name));
            }
            if value.len() > MAX_PARAM_LEN {
                return Err(CallbackError::TooLong(name));
            }
            found[index] = Some(value.into_owned());
        }
        let [code, state, error, description] = found;
        let non_empty = |name: &'static str, value: Option<String>| match value {
            Some(v) if v.is_empty() => Err(CallbackError::Empty(name)),
            other => Ok(other),
        };
        let (code, state, error) =
            (non_empty("code", code)?, non_empty("state", state)?, non_empty("error", error)?);

        if let Some(error) = error {
            // RFC 6749 4.1.2.1: error is %x20-21 / %x23-5B / %x5D-7E.
            if !error.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)) {
                return Err(CallbackError::MalformedError);
            }
            return Ok(Self::Denied {
                error,
                description: description.filter(|d| !d.is_empty()),
                state,
            });
        }
        match (code, state) {
            (Some(code), Some(state)) => {
                Ok(Self::Code { code: AuthorizationCode::new(code), state })
            }
            (Some(_), None) => Err(CallbackError::MissingState),
            (None, Some(_)) => Err(CallbackError::MissingCode),
            (None, None) if description.is_some() => Err(CallbackError::MissingCode),
            (None, None) => Err(CallbackError::NotACallback),
        }
    }

    /// The state that came back, whichever way the attempt ended.
    pub fn state(&self) -> Option<&str> {
        match self {
            Self::Code { state, .. } => Some(state),
            Self::Denied { state, .. } => state.as_deref(),
        }
    }
}

/// Removes every [`CALLBACK_PARAMS`] entry from `url`'s query, keeping the
/// other parameters in order, and drops the `?` when nothing is left.
/// Returns whether anything was removed.
pub fn strip_callback_params(url: &mut Url) -> bool {
    let before: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let kept: Vec<&(String, String)> =
        before.iter().filter(|(k, _)| !CALLBACK_PARAMS.contains(&k.as_str())).collect();
    if kept.len() == before.len() {
        return false;
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PkceVerifier;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL parses")
    }

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            authorize_url: url("https://bitbucket.org/site/oauth2/authorize"),
            client_id: ClientId::new("key 1&2"),
            redirect_uri: Some(url("https://user.github.io/repo/")),
            state: State::new("st"),
            code_challenge: PkceVerifier::new("v".repeat(43)).challenge(),
        }
    }

    #[test]
    fn authorize_url_has_every_parameter_encoded() {
        let req = request();
        let built = req.to_url();
        let pairs: Vec<(String, String)> = built.query_pairs().into_owned().collect();
        let expect = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(built.path(), "/site/oauth2/authorize");
        assert_eq!(expect("response_type"), Some("code"));
        assert_eq!(expect("client_id"), Some("key 1&2"));
        assert_eq!(expect("state"), Some("st"));
        assert_eq!(expect("redirect_uri"), Some("https://user.github.io/repo/"));
        assert_eq!(expect("code_challenge"), Some(req.code_challenge.as_str()));
        assert_eq!(expect("code_challenge_method"), Some("S256"));
        assert_eq!(pairs.len(), 6);
        assert!(!built.as_str().contains("key 1&2"), "client_id is encoded: {built}");
    }

    #[test]
    fn authorize_url_keeps_existing_query_and_omits_absent_redirect() {
        let mut req = request();
        req.authorize_url = url("https://example.test/auth?tenant=a");
        req.redirect_uri = None;
        let built = req.to_url();
        assert!(
            built.as_str().starts_with("https://example.test/auth?tenant=a&response_type=code")
        );
        assert!(!built.query_pairs().any(|(k, _)| k == "redirect_uri"));
    }

    #[test]
    fn parses_a_code() {
        let cb = Callback::parse(&url("https://a.test/?code=abc&state=xyz&other=1"));
        assert_eq!(
            cb,
            Ok(Callback::Code { code: AuthorizationCode::new("abc"), state: "xyz".into() })
        );
    }

    #[test]
    fn parses_a_denial() {
        let cb = Callback::parse(&url(
            "https://a.test/?error=access_denied&error_description=The+user+said+no&state=s",
        ));
        assert_eq!(
            cb,
            Ok(Callback::Denied {
                error: "access_denied".into(),
                description: Some("The user said no".into()),
                state: Some("s".into()),
            })
        );
        assert_eq!(cb.expect("parsed").state(), Some("s"));
    }

    #[test]
    fn refuses_garbage_with_typed_errors() {
        let cases = [
            ("https://a.test/", CallbackError::NotACallback),
            ("https://a.test/?x=1", CallbackError::NotACallback),
            ("https://a.test/?state=s", CallbackError::MissingCode),
            ("https://a.test/?error_description=huh", CallbackError::MissingCode),
            ("https://a.test/?code=c", CallbackError::MissingState),
            ("https://a.test/?code=c&code=d&state=s", CallbackError::Duplicate("code")),
            ("https://a.test/?code=c&state=s&state=t", CallbackError::Duplicate("state")),
            ("https://a.test/?code=&state=s", CallbackError::Empty("code")),
            ("https://a.test/?code=c&state=", CallbackError::Empty("state")),
            ("https://a.test/?error=bad%0Aline", CallbackError::MalformedError),
            ("https://a.test/?error=%22quoted%22", CallbackError::MalformedError),
        ];
        for (input, expected) in cases {
            assert_eq!(Callback::parse(&url(input)), Err(expected), "{input}");
        }
        let long = format!("https://a.test/?code={}&state=s", "c".repeat(MAX_PARAM_LEN + 1));
        assert_eq!(Callback::parse(&url(&long)), Err(CallbackError::TooLong("code")));
    }

    #[test]
    fn strips_callback_params_only() {
        let mut u = url("https://a.test/repo/?x=1&code=c&state=s&y=2#frag");
        assert!(strip_callback_params(&mut u));
        assert_eq!(u.as_str(), "https://a.test/repo/?x=1&y=2#frag");

        let mut u = url("https://a.test/?error=access_denied&error_description=no&state=s");
        assert!(strip_callback_params(&mut u));
        assert_eq!(u.as_str(), "https://a.test/");

        let mut u = url("https://a.test/?x=1");
        assert!(!strip_callback_params(&mut u));
        assert_eq!(u.as_str(), "https://a.test/?x=1");
    }
}
