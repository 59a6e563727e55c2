//! Property tests: URL round trips and the verifier rules. The `url` crate
//! is the independent reading the string-based URL code is checked against.

use dance_protocol::authorize::{
    AuthorizeParams, CALLBACK_PARAMS, Callback, CallbackError, strip_callback_query,
};
use dance_protocol::token::TokenRequest;
use dance_protocol::{ClientId, PkceVerifier, RefreshToken, State, VerifierError};
use proptest::prelude::*;
use url::Url;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_verifiers_are_accepted(v in "[A-Za-z0-9._~-]{43,128}") {
        let parsed = PkceVerifier::parse(&v).expect("valid by construction");
        prop_assert_eq!(parsed.secret(), v.as_str());
        prop_assert_eq!(parsed.challenge().as_str().len(), 43);
    }

    #[test]
    fn out_of_range_lengths_are_refused(v in "[A-Za-z0-9._~-]{0,42}|[A-Za-z0-9._~-]{129,200}") {
        let refused = matches!(PkceVerifier::parse(&v), Err(VerifierError::TooShort(_) | VerifierError::TooLong(_)));
        prop_assert!(refused);
    }

    #[test]
    fn any_foreign_character_is_refused(
        prefix in "[A-Za-z0-9._~-]{0,60}",
        bad in "[^A-Za-z0-9._~-]",
        suffix in "[A-Za-z0-9._~-]{0,60}",
    ) {
        let v = format!("{prefix}{bad}{suffix}");
        prop_assert_eq!(PkceVerifier::parse(&v), Err(VerifierError::BadCharacter(prefix.len())));
    }

    #[test]
    fn authorize_url_round_trips(client in "\\PC{1,40}", redirect_path in "[a-z/]{0,20}", extra in "[a-z]{1,8}") {
        let redirect = Url::parse(&format!("https://site.test/{redirect_path}?{extra}=1")).expect("url");
        let verifier = PkceVerifier::generate();
        let (client_id, state, challenge) =
            (ClientId::new(client.clone()), State::generate(), verifier.challenge());
        let request = AuthorizeParams {
            authorize_url: "https://bitbucket.org/site/oauth2/authorize",
            client_id: &client_id,
            redirect_uri: Some(redirect.as_str()),
            state: &state,
            code_challenge: &challenge,
        };
        let url = Url::parse(&request.to_url_string()).expect("the built URL parses");
        let get = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        prop_assert_eq!(get("client_id"), Some(client));
        prop_assert_eq!(get("redirect_uri"), Some(redirect.to_string()));
        prop_assert_eq!(get("state"), Some(state.secret().to_owned()));
        prop_assert_eq!(get("code_challenge"), Some(verifier.challenge().as_str().to_owned()));
        prop_assert_eq!(get("code_challenge_method"), Some("S256".to_owned()));
    }

    #[test]
    fn callback_round_trips(code in "\\PC{1,100}", state in "\\PC{1,100}", keep in "[a-z]{1,8}") {
        let mut url = Url::parse("https://site.test/repo/").expect("url");
        url.query_pairs_mut().append_pair(&format!("k{keep}"), "v").append_pair("code", &code).append_pair("state", &state);
        let query = url.query().unwrap_or_default().to_owned();
        match Callback::from_query(&query) {
            Ok(Callback::Code { code: got_code, state: got_state }) => {
                prop_assert_eq!(got_code.secret(), code.as_str());
                prop_assert_eq!(got_state, state);
            }
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        let kept = strip_callback_query(&query).expect("there was something to strip");
        prop_assert_eq!(Callback::from_query(&kept), Err(CallbackError::NotACallback));
        prop_assert_eq!(kept, format!("k{keep}=v"));
    }

    #[test]
    fn callback_parser_never_panics(query in "\\PC{0,200}") {
        let _ = Callback::from_query(&query);
        let _ = strip_callback_query(&query);
    }

    #[test]
    fn refresh_form_round_trips(token in "\\PC{1,200}") {
        let request = TokenRequest::RefreshToken { refresh_token: RefreshToken::new(token) };
        prop_assert_eq!(TokenRequest::parse_form(request.to_form().as_bytes()), Ok(request));
    }

    #[test]
    fn form_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = TokenRequest::parse_form(&body);
    }

    #[test]
    fn authorize_url_string_equals_the_url_crates_writing(
        endpoint_query in proptest::option::of("[a-z=&%0-9]{0,12}"),
        fragment in proptest::option::of("[a-z]{0,6}"),
        client in "\\PC{1,40}",
        redirect in proptest::option::of("[a-z0-9/?=&#% é+-]{0,30}"),
    ) {
        let mut endpoint = "https://bitbucket.org/site/oauth2/authorize".to_owned();
        if let Some(query) = endpoint_query {
            endpoint = format!("{endpoint}?{query}");
        }
        if let Some(fragment) = fragment {
            endpoint = format!("{endpoint}#{fragment}");
        }
        let authorize_url = Url::parse(&endpoint).expect("url");
        let redirect_uri = redirect.map(|path| {
            let base = Url::parse("https://site.test/").expect("url");
            base.join(&format!("repo/{path}")).expect("a relative path joins")
        });
        let (client_id, state, challenge) =
            (ClientId::new(client), State::generate(), PkceVerifier::generate().challenge());
        let request = AuthorizeParams {
            authorize_url: authorize_url.as_str(),
            client_id: &client_id,
            redirect_uri: redirect_uri.as_ref().map(Url::as_str),
            state: &state,
            code_challenge: &challenge,
        };
        // The reference: the same pairs appended by the `url` crate.
        let mut reference = authorize_url.clone();
        {
            let mut query = reference.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("client_id", client_id.as_str());
            query.append_pair("state", state.secret());
            if let Some(uri) = &redirect_uri {
                query.append_pair("redirect_uri", uri.as_str());
            }
            query.append_pair("code_challenge", challenge.as_str());
            query.append_pair("code_challenge_method", "S256");
        }
        prop_assert_eq!(request.to_url_string(), reference.as_str());
    }

    #[test]
    fn callback_from_query_reads_what_the_url_crate_reads(query in "[a-z_=&%+0-9]{0,60}|\\PC{0,60}") {
        let mut url = Url::parse("https://site.test/").expect("url");
        url.set_query(Some(&query));
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let only = |name: &str| {
            let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
            match (values.next(), values.next()) {
                (Some(value), None) => Some(value.to_owned()),
                _ => None,
            }
        };
        match Callback::from_query(url.query().unwrap_or_default()) {
            Ok(Callback::Code { code, state }) => {
                prop_assert_eq!(only("code"), Some(code.secret().to_owned()));
                prop_assert_eq!(only("state"), Some(state));
            }
            Ok(Callback::Denied { error, state, .. }) => {
                prop_assert_eq!(only("error"), Some(error));
                prop_assert_eq!(only("state"), state);
            }
            Err(CallbackError::NotACallback) => {
                let names = ["code", "state", "error", "error_description"];
                prop_assert!(!pairs.iter().any(|(k, _)| names.contains(&k.as_str())));
            }
            Err(_) => {}
        }
    }

    #[test]
    fn strip_callback_query_equals_rebuilding_with_url(
        pairs in proptest::collection::vec(
            ("code|state|error|error_description|error_uri|iss|x|tab|\\PC{0,5}", "\\PC{0,8}"),
            0..6,
        ),
    ) {
        let mut url = Url::parse("https://site.test/repo/#top").expect("url");
        if !pairs.is_empty() {
            url.query_pairs_mut().extend_pairs(&pairs);
        }
        let query = url.query().unwrap_or_default().to_owned();
        // An independent reference: rebuild the query from the kept pairs.
        let kept: Vec<&(String, String)> =
            pairs.iter().filter(|(k, _)| !CALLBACK_PARAMS.contains(&k.as_str())).collect();
        let expected = (kept.len() != pairs.len()).then(|| {
            let mut reference = url.clone();
            reference.set_query(None);
            if !kept.is_empty() {
                reference.query_pairs_mut().extend_pairs(kept);
            }
            reference.query().unwrap_or_default().to_owned()
        });
        prop_assert_eq!(strip_callback_query(&query), expected);
    }
}
