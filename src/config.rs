//! The deployment's settings: `config.json`, read at run time.
//!
//! One build serves any deployment: the page fetches `config.json` from
//! beside `index.html` (see [`crate::api::fetch_config`]) and [`Config::parse`]
//! checks it here. Parsing does not stop at the first mistake: it collects
//! every bad or unknown setting as a checklist line ([`Setting`]), so whoever
//! deploys sees everything to fix at once instead of a blank page.
//!
//! The file's fields and every check are the deployment contract's
//! ([`dance_protocol::deployment::config`], which the doctor and the tools
//! that write the file share); this module is the browser's side of it: it
//! reads the file with the browser's JSON parser ([`crate::json`]) and its
//! URLs with the browser's `URL` ([`WebUrl`]), and words each problem.

use crate::json::Json;
use crate::problem::Setting;
use crate::weburl::WebUrl;
use dance_protocol::ClientId;
use dance_protocol::deployment::config::{
    self as contract, ClientIdProblem, Endpoint, EndpointProblem, Field,
};

/// The name of the settings file, relative to the app's base URL.
pub const CONFIG_FILE: &str = contract::FILE;

/// The settings a deployment provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The Bitbucket OAuth consumer's key.
    pub client_id: ClientId,
    /// The authorization endpoint, `https://bitbucket.org/site/oauth2/authorize`.
    pub authorize_url: WebUrl,
    /// The relay's token endpoint, such as `https://relay.example/token`.
    pub relay_url: WebUrl,
    /// The API base, `https://api.bitbucket.org/2.0/` (always ends with `/`).
    pub api_base: WebUrl,
    /// The scopes the consumer is expected to grant. Bitbucket fixes them on
    /// the consumer, so they are not sent; without `email` here, the app
    /// doesn't ask for email addresses and shows no emails section.
    pub scopes: Vec<String>,
    /// The text these settings were read from: a sign-in carries it to the
    /// callback in session storage, where [`Config::parse`] checks it again,
    /// so the way back needs no request for `config.json`.
    text: std::rc::Rc<str>,
}

impl Config {
    /// Parses and checks `config.json`. On failure, returns one checklist
    /// line per problem found, each naming the setting.
    pub fn parse(text: &str) -> Result<Self, Vec<Setting>> {
        let why = match crate::json::parse(text) {
            Ok(Json::Object(map)) => return Self::check(&map, text),
            Ok(other) => format!("invalid type: {}, expected a JSON object", other.kind()),
            Err(error) => error.to_string(),
        };
        Err(vec![issue(
            "config.json",
            format!(
                "Must be a valid JSON object such as {{\"client_id\": \"...\", ...}}; it isn't \
                 ({why})."
            ),
        )])
    }

    /// Checks the settings of `config.json`'s object.
    fn check(map: &[(String, Json)], text: &str) -> Result<Self, Vec<Setting>> {
        let mut issues = Vec::new();
        for (key, _) in map {
            if Field::from_name(key).is_none() {
                let fix = match Field::suggest(key) {
                    Some(known) => format!("Unknown setting; did you mean \"{}\"?", known.name()),
                    None => {
                        format!("Unknown setting; the known ones are {}.", contract::field_list())
                    }
                };
                issues.push(issue(&format!("{key} in config.json"), fix));
            }
        }

        let client_id = client_id(map, &mut issues);
        let authorize_url = endpoint(map, Field::AuthorizeUrl, &mut issues);
        let relay_url = endpoint(map, Field::RelayUrl, &mut issues);
        let api_base = endpoint(map, Field::ApiBase, &mut issues);
        let scopes = scopes(map, &mut issues);

        match (client_id, authorize_url, relay_url, api_base) {
            (Some(client_id), Some(authorize_url), Some(relay_url), Some(api_base))
                if issues.is_empty() =>
            {
                Ok(Self {
                    client_id,
                    authorize_url,
                    relay_url,
                    api_base,
                    scopes,
                    text: text.into(),
                })
            }
            _ => Err(issues),
        }
    }

    /// The text of `config.json` these settings came from.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the consumer is expected to grant `scope`.
    pub fn expects_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// How a wrong value is named in a message.
fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Array(_) => "a list",
        other => other.kind(),
    }
}

/// A checklist line.
fn issue(name: &str, fix: impl Into<std::borrow::Cow<'static, str>>) -> Setting {
    Setting { name: name.to_owned().into(), fix: fix.into() }
}

/// Checks `client_id`.
fn client_id(map: &[(String, Json)], issues: &mut Vec<Setting>) -> Option<ClientId> {
    let name = "client_id in config.json";
    match get(map, Field::ClientId.name()) {
        None => {
            issues
                .push(issue(name, "Missing: set it to the Key of your Bitbucket OAuth consumer."));
            None
        }
        Some(Json::String(id)) => match contract::check_client_id(id) {
            Ok(()) => Some(ClientId::new(id.clone())),
            Err(ClientIdProblem::Empty) => {
                issues.push(issue(
                    name,
                    "Empty: set it to the Key of your Bitbucket OAuth consumer.",
                ));
                None
            }
            Err(ClientIdProblem::Spaces) => {
                issues
                    .push(issue(name, "Must not contain spaces: copy the consumer's Key exactly."));
                None
            }
        },
        Some(other) => {
            issues.push(issue(
                name,
                format!(
                    "Must be a string (the Key of your Bitbucket OAuth consumer), not {}.",
                    type_name(other)
                ),
            ));
            None
        }
    }
}

/// Checks one endpoint URL by the contract's rules
/// ([`contract::check_endpoint`]): absolute, https (http only on loopback),
/// no credentials, no fragment; for `api_base`, a final `/` and no query.
fn endpoint(map: &[(String, Json)], field: Field, issues: &mut Vec<Setting>) -> Option<WebUrl> {
    let name = format!("{} in config.json", field.name());
    let example = field.example_url().unwrap_or_default();
    let text = match get(map, field.name()) {
        None => {
            issues.push(issue(&name, format!("Missing: set it, for example to {example}")));
            return None;
        }
        Some(Json::String(text)) => text,
        Some(other) => {
            issues.push(issue(
                &name,
                format!("Must be a string URL such as {example}, not {}.", type_name(other)),
            ));
            return None;
        }
    };
    let Some(url) = WebUrl::parse(text.trim()) else {
        issues
            .push(issue(&name, format!("Must be a full URL such as {example}; it is \"{text}\".")));
        return None;
    };
    let parts = Endpoint {
        scheme: url.scheme(),
        host: url.host(),
        path: url.path(),
        has_credentials: url.has_credentials(),
        has_query: url.query().is_some(),
        has_fragment: url.fragment().is_some(),
    };
    let problems = contract::check_endpoint(field, &parts);
    for problem in &problems {
        let fix: std::borrow::Cow<'static, str> = match problem {
            EndpointProblem::PlainHttp => {
                format!("Must use https (plain http only works on 127.0.0.1); it is {url}.").into()
            }
            EndpointProblem::NotHttps => {
                format!("Must be an https URL such as {example}; it is {url}.").into()
            }
            EndpointProblem::Credentials => "Must not contain a user name or password.".into(),
            EndpointProblem::Fragment => "Must not contain a #fragment.".into(),
            EndpointProblem::NoTrailingSlash => {
                format!("Must end with a slash, like {example}; it is {url}.").into()
            }
            EndpointProblem::Query => "Must not have a query (?...).".into(),
        };
        issues.push(issue(&name, fix));
    }
    problems.is_empty().then_some(url)
}

/// Checks `scopes`, which defaults to `["account", "email"]`.
fn scopes(map: &[(String, Json)], issues: &mut Vec<Setting>) -> Vec<String> {
    let name = "scopes in config.json";
    let Some(value) = get(map, Field::Scopes.name()) else {
        return contract::APP_SCOPES.map(str::to_owned).to_vec();
    };
    let Json::Array(items) = value else {
        issues
            .push(issue(name, "Must be a list of scope names, such as [\"account\", \"email\"]."));
        return Vec::new();
    };
    let mut scopes = Vec::new();
    for item in items {
        match item {
            Json::String(scope) if contract::is_known_scope(scope) => scopes.push(scope.clone()),
            Json::String(scope) => issues.push(issue(
                name,
                format!("\"{scope}\" is not a Bitbucket scope; this app needs \"account\" and \"email\"."),
            )),
            _ => issues.push(issue(name, "Every entry must be a string such as \"account\".")),
        }
    }
    scopes
}

/// Looks up a key.
fn get<'a>(map: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = r#"{"client_id": "DemoKeyOfTheOauthDanceFakebucket",
        "authorize_url": "http://127.0.0.1:9090/site/oauth2/authorize",
        "relay_url": "http://127.0.0.1:8787/token",
        "api_base": "http://127.0.0.1:9090/2.0/",
        "scopes": ["account", "email"]}"#;

    /// Parses `input` and returns the names of the settings flagged.
    fn issues(input: &str) -> Vec<String> {
        match Config::parse(input) {
            Ok(config) => panic!("expected issues, got {config:?}"),
            Err(issues) => issues.into_iter().map(|s| format!("{}: {}", s.name, s.fix)).collect(),
        }
    }

    #[test]
    fn the_demo_config_parses() {
        let config = Config::parse(DEMO).expect("demo config is valid");
        assert_eq!(config.client_id.as_str(), "DemoKeyOfTheOauthDanceFakebucket");
        assert_eq!(config.relay_url.as_str(), "http://127.0.0.1:8787/token");
        assert_eq!(
            config.api_base.join("user").expect("joins").as_str(),
            "http://127.0.0.1:9090/2.0/user"
        );
        assert!(config.expects_scope("email"));
    }

    #[test]
    fn the_shipped_config_json_parses() {
        let text = include_str!("../config.json");
        assert!(Config::parse(text).is_ok(), "config.json in the repository must be valid");
    }

    #[test]
    fn a_production_config_parses_and_scopes_default() {
        let config = Config::parse(
            r#"{"client_id":"AbC123","authorize_url":"https://bitbucket.org/site/oauth2/authorize",
                "relay_url":"https://relay.example.com/token","api_base":"https://api.bitbucket.org/2.0/"}"#,
        )
        .expect("valid");
        assert_eq!(config.scopes, ["account", "email"]);
    }

    #[test]
    fn garbage_gets_one_clear_line() {
        let found = issues("{not json");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("config.json: Must be a valid JSON object"), "{found:?}");
        assert!(issues("[1,2]")[0].contains("JSON object"));
        assert!(
            issues("[1,2]")[0].contains("invalid type: an array, expected a JSON object"),
            "{:?}",
            issues("[1,2]")
        );
        assert!(issues("").len() == 1);
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let found = issues(
            r#"{"client_id":"", "authorize_url":"bitbucket.org/site/oauth2/authorize",
                "relay_url":"http://relay.example.com/token","apiBase":"x","scopes":"account"}"#,
        );
        let joined = found.join("\n");
        assert!(joined.contains("client_id in config.json: Empty"), "{joined}");
        assert!(joined.contains("authorize_url in config.json: Must be a full URL"), "{joined}");
        assert!(joined.contains("relay_url in config.json: Must use https"), "{joined}");
        assert!(
            joined.contains("apiBase in config.json: Unknown setting; did you mean \"api_base\"?"),
            "{joined}"
        );
        assert!(joined.contains("api_base in config.json: Missing"), "{joined}");
        assert!(joined.contains("scopes in config.json: Must be a list"), "{joined}");
    }

    #[test]
    fn endpoint_rules() {
        let with = |field: &str, value: &str| {
            let mut v: serde_json::Value = serde_json::from_str(DEMO).expect("demo");
            v[field] = serde_json::Value::String(value.to_owned());
            Config::parse(&v.to_string())
        };
        assert!(with("relay_url", "https://relay.example/token").is_ok());
        assert!(with("relay_url", "http://localhost:8787/token").is_ok());
        assert!(with("relay_url", "http://[::1]:8787/token").is_ok());
        assert!(with("relay_url", "http://10.0.0.1/token").is_err());
        assert!(with("relay_url", "ftp://relay.example/token").is_err());
        assert!(with("relay_url", "https://user:pw@relay.example/token").is_err());
        assert!(with("relay_url", "https://relay.example/token#x").is_err());
        assert!(
            with("api_base", "https://api.bitbucket.org/2.0").is_err(),
            "needs the trailing slash"
        );
        assert!(with("client_id", "has space").is_err());
    }

    #[test]
    fn scopes_are_checked() {
        let found = issues(
            r#"{"client_id":"a","authorize_url":"https://b.test/a","relay_url":"https://r.test/token",
                "api_base":"https://api.test/2.0/","scopes":["account","emails",3]}"#,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("\"emails\" is not a Bitbucket scope"));
    }

    #[test]
    fn wrong_types_are_named() {
        let found =
            issues(r#"{"client_id":5,"authorize_url":true,"relay_url":null,"api_base":[]}"#);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].starts_with("client_id in config.json: Must be a string"));
        assert!(found[0].ends_with("not a number."), "{found:?}");
        assert!(found[2].ends_with("not null."), "{found:?}");
        assert!(found[3].ends_with("not a list."), "{found:?}");
    }

    #[test]
    fn a_repeated_key_counts_once_with_its_last_value_and_nested_values_are_named() {
        // As JSON.parse reads it in the browser.
        let found = issues(
            r#"{"client_id":"a b","client_id":"b","authorize_url":{"x":[1,{"y":2}]},
                "relay_url":"https://r.test/token","api_base":"https://api.test/2.0/"}"#,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("not an object."), "{found:?}");
    }

    /// What every tool writes (the deployment contract's writer, used by
    /// `cargo xtask pages` and `demo`, the end-to-end harness and the
    /// doctor's tests) is what the app reads.
    #[test]
    fn the_contracts_writer_writes_what_the_app_reads() {
        use dance_protocol::deployment::config::Settings;
        let demo = Settings::new(
            "DemoKeyOfTheOauthDanceFakebucket",
            "http://127.0.0.1:9090/site/oauth2/authorize",
            "http://127.0.0.1:8787/token",
            "http://127.0.0.1:9090/2.0/",
        );
        let text = demo.to_json();
        let config = Config::parse(&text).expect("the demo's settings are valid");
        assert_eq!(config.client_id.as_str(), demo.client_id);
        assert_eq!(config.authorize_url.as_str(), demo.authorize_url);
        assert_eq!(config.relay_url.as_str(), demo.relay_url);
        assert_eq!(config.api_base.as_str(), demo.api_base);
        assert_eq!(config.scopes, demo.scopes);
        assert_eq!(config.text(), text);
        let production = Settings::bitbucket("AbC123", "https://relay.example.com/token");
        let config = Config::parse(&production.to_json()).expect("Bitbucket's settings are valid");
        assert_eq!(config.api_base.as_str(), "https://api.bitbucket.org/2.0/");
        // The writer writes what it is given; the rules still refuse it.
        let mut plain = production;
        plain.relay_url = "http://relay.example.com/token".to_owned();
        assert_eq!(
            issues(&plain.to_json()),
            ["relay_url in config.json: Must use https (plain http only works on 127.0.0.1); \
                 it is http://relay.example.com/token."]
        );
    }

    #[test]
    fn every_problem_of_one_endpoint_is_listed() {
        let found = issues(
            &DEMO.replace("\"http://127.0.0.1:9090/2.0/\"", "\"http://api.example/2.0?x#y\""),
        );
        assert_eq!(
            found,
            [
                "api_base in config.json: Must use https (plain http only works on 127.0.0.1); \
                 it is http://api.example/2.0?x#y.",
                "api_base in config.json: Must not contain a #fragment.",
                "api_base in config.json: Must end with a slash, like \
                 https://api.bitbucket.org/2.0/; it is http://api.example/2.0?x#y.",
                "api_base in config.json: Must not have a query (?...).",
            ]
        );
    }
}
