//! The authorization request (RFC 6749 4.1.1 with RFC 7636 4.3) and the
//! redirect that comes back from it (4.1.2, 4.1.2.1).
//!
//! Everything works on plain strings ([`AuthorizeParams::to_url_string`],
//! [`Callback::from_query`], [`strip_callback_query`]): the SPA feeds them
//! with the browser's own URL parser, so no URL crate (and its IDNA tables)
//! lands in the bundle. The property tests check them against the `url`
//! crate as an independent reading of the same WHATWG rules.

use crate::secret::{AuthorizationCode, ClientId, PkceChallenge, State};
use thiserror::Error;

/// The query parameters an authorization response may put in the redirect
/// URI. The SPA removes all of them from the address bar before doing
/// anything else with the page (RFC 9700 4.2).
pub const CALLBACK_PARAMS: [&str; 6] =
    ["code", "state", "error", "error_description", "error_uri", "iss"];

/// The longest value accepted for any callback parameter. Real codes and
/// states are a few dozen characters; anything far longer is garbage or an
/// attack, and is refused before it reaches storage or the network.
pub const MAX_PARAM_LEN: usize = 2048;

/// Everything needed to send a person to the authorization endpoint, with
/// URLs as the caller's parser serialised them (the SPA uses the browser's
/// `URL`).
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeParams<'a> {
    /// The authorization endpoint, already serialised as an absolute URL
    /// (`URL.href` or `url::Url::as_str`), such as
    /// `https://bitbucket.org/site/oauth2/authorize`.
    pub authorize_url: &'a str,
    /// The consumer's key.
    pub client_id: &'a ClientId,
    /// Where to come back to, serialised the same way. Bitbucket accepts any
    /// URL that starts with the consumer's registered callback, and uses the
    /// registered one when absent.
    pub redirect_uri: Option<&'a str>,
    /// The fresh anti-CSRF value of this attempt.
    pub state: &'a State,
    /// The S256 challenge of this attempt's verifier.
    pub code_challenge: &'a PkceChallenge,
}

impl<'a> AuthorizeParams<'a> {
    /// The query parameters this request adds, in order.
    fn pairs(&self) -> impl Iterator<Item = (&'static str, &'a str)> {
        let Self { client_id, redirect_uri, state, code_challenge, .. } = *self;
        [
            Some(("response_type", "code")),
            Some(("client_id", client_id.as_str())),
            Some(("state", state.secret())),
            redirect_uri.map(|uri| ("redirect_uri", uri)),
            Some(("code_challenge", code_challenge.as_str())),
            Some(("code_challenge_method", PkceChallenge::METHOD)),
        ]
        .into_iter()
        .flatten()
    }

    /// The URL to navigate to: query parameters already on the endpoint are
    /// kept, ours are appended (form-encoded, as `url::Url::query_pairs_mut`
    /// would write them), and a fragment stays at the end.
    pub fn to_url_string(&self) -> String {
        let (before, fragment) = match self.authorize_url.split_once('#') {
            Some((before, fragment)) => (before, Some(fragment)),
            None => (self.authorize_url, None),
        };
        let mut url = before.to_owned();
        let query_start = match url.find('?') {
            Some(at) => at + 1,
            None => {
                url.push('?');
                url.len()
            }
        };
        // `for_suffix` puts a `&` before each pair unless the query is empty.
        let mut query = form_urlencoded::Serializer::for_suffix(url, query_start);
        query.extend_pairs(self.pairs());
        let mut url = query.finish();
        if let Some(fragment) = fragment {
            url.push('#');
            url.push_str(fragment);
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
    /// Reads an authorization response out of a query string (without the
    /// leading `?`), such as `code=abc&state=xyz`.
    pub fn from_query(query: &str) -> Result<Self, CallbackError> {
        let mut found: [Option<String>; 4] = Default::default();
        const NAMES: [&str; 4] = ["code", "state", "error", "error_description"];
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
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

/// The query string (without the leading `?`) with every
/// [`CALLBACK_PARAMS`] entry removed and the other parameters kept in order
/// (form-encoded again), or `None` when there was nothing to remove. An
/// empty result means no query at all is left.
pub fn strip_callback_query(query: &str) -> Option<String> {
    let before = form_urlencoded::parse(query.as_bytes());
    let is_callback = |key: &str| CALLBACK_PARAMS.contains(&key);
    if !before.clone().any(|(key, _)| is_callback(&key)) {
        return None;
    }
    let kept = before.filter(|(key, _)| !is_callback(key));
    Some(form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PkceVerifier;

    fn params<'a>(
        endpoint: &'a str,
        client_id: &'a ClientId,
        state: &'a State,
        challenge: &'a PkceChallenge,
    ) -> AuthorizeParams<'a> {
        AuthorizeParams {
            authorize_url: endpoint,
            client_id,
            redirect_uri: Some("https://user.github.io/repo/"),
            state,
            code_challenge: challenge,
        }
    }

    #[test]
    fn authorize_url_string_appends_encoded_parameters() {
        let (client, state) = (ClientId::new("key 1&2"), State::new("st"));
        let challenge = PkceVerifier::new("v".repeat(43)).challenge();
        let url =
            params("https://bitbucket.org/site/oauth2/authorize", &client, &state, &challenge)
                .to_url_string();
        assert_eq!(
            url,
            format!(
                "https://bitbucket.org/site/oauth2/authorize?response_type=code&client_id=key+1%262\
                 &state=st&redirect_uri=https%3A%2F%2Fuser.github.io%2Frepo%2F\
                 &code_challenge={}&code_challenge_method=S256",
                challenge.as_str()
            )
        );
        let kept =
            params("https://e.test/a?tenant=x#frag", &client, &state, &challenge).to_url_string();
        assert!(kept.starts_with("https://e.test/a?tenant=x&response_type=code&"), "{kept}");
        assert!(kept.ends_with("&code_challenge_method=S256#frag"), "{kept}");
        let empty_query = params("https://e.test/a?", &client, &state, &challenge).to_url_string();
        assert!(empty_query.starts_with("https://e.test/a?response_type=code&"), "{empty_query}");
        let mut no_redirect = params("https://e.test/a", &client, &state, &challenge);
        no_redirect.redirect_uri = None;
        assert!(!no_redirect.to_url_string().contains("redirect_uri"));
    }

    #[test]
    fn callbacks_parse_from_a_query_string() {
        assert_eq!(
            Callback::from_query("code=abc&state=x%20y&other=1"),
            Ok(Callback::Code { code: AuthorizationCode::new("abc"), state: "x y".into() })
        );
        assert_eq!(
            Callback::from_query("error=access_denied&error_description=no+way&state=s"),
            Ok(Callback::Denied {
                error: "access_denied".into(),
                description: Some("no way".into()),
                state: Some("s".into()),
            })
        );
        assert_eq!(Callback::from_query(""), Err(CallbackError::NotACallback));
        assert_eq!(
            Callback::from_query("error=access_denied&state=s").expect("parsed").state(),
            Some("s")
        );
    }

    #[test]
    fn callbacks_refuse_garbage_with_typed_errors() {
        let cases = [
            ("", CallbackError::NotACallback),
            ("x=1", CallbackError::NotACallback),
            ("state=s", CallbackError::MissingCode),
            ("error_description=huh", CallbackError::MissingCode),
            ("code=c", CallbackError::MissingState),
            ("code=c&code=d&state=s", CallbackError::Duplicate("code")),
            ("code=c&state=s&state=t", CallbackError::Duplicate("state")),
            ("code=&state=s", CallbackError::Empty("code")),
            ("code=c&state=", CallbackError::Empty("state")),
            ("error=bad%0Aline", CallbackError::MalformedError),
            ("error=%22quoted%22", CallbackError::MalformedError),
        ];
        for (query, expected) in cases {
            assert_eq!(Callback::from_query(query), Err(expected), "{query}");
        }
        let long = format!("code={}&state=s", "c".repeat(MAX_PARAM_LEN + 1));
        assert_eq!(Callback::from_query(&long), Err(CallbackError::TooLong("code")));
    }

    #[test]
    fn callback_parameters_are_stripped_from_a_query_string() {
        assert_eq!(strip_callback_query("x=1&code=c&state=s&y=a+b").as_deref(), Some("x=1&y=a+b"));
        assert_eq!(strip_callback_query("error=e&iss=i&error_uri=u").as_deref(), Some(""));
        assert_eq!(strip_callback_query("x=1&y=2"), None);
        assert_eq!(strip_callback_query(""), None);
    }
}
