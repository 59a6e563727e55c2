//! The deployment's settings: `config.json`, read at run time.
//!
//! One build serves any deployment: the page fetches `config.json` from
//! beside `index.html` (see [`crate::api::fetch_config`]) and [`Config::parse`]
//! checks it here. Parsing does not stop at the first mistake: it collects
//! every bad or unknown setting as a checklist line ([`Setting`]), so whoever
//! deploys sees everything to fix at once instead of a blank page.
//!
//! ```json
//! {"client_id": "DemoKeyOfTheOauthDanceFakebucket",
//!  "authorize_url": "http://127.0.0.1:9090/site/oauth2/authorize",
//!  "relay_url": "http://127.0.0.1:8787/token",
//!  "api_base": "http://127.0.0.1:9090/2.0/",
//!  "scopes": ["account", "email"]}
//! ```

use crate::json::Json;
use crate::problem::Setting;
use crate::weburl::WebUrl;
use dance_protocol::ClientId;

/// The name of the settings file, relative to the app's base URL.
pub const CONFIG_FILE: &str = "config.json";

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

/// The fields `config.json` may have.
const FIELDS: [&str; 5] = ["client_id", "authorize_url", "relay_url", "api_base", "scopes"];

/// Bitbucket Cloud's OAuth scopes.
const KNOWN_SCOPES: [&str; 24] = [
    "account",
    "account:write",
    "email",
    "issue",
    "issue:write",
    "pipeline",
    "pipeline:write",
    "pipeline:variable",
    "project",
    "project:admin",
    "pullrequest",
    "pullrequest:write",
    "repository",
    "repository:write",
    "repository:admin",
    "repository:delete",
    "runner",
    "runner:write",
    "snippet",
    "snippet:write",
    "team",
    "team:write",
    "webhook",
    "wiki",
];

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
            if !FIELDS.contains(&key.as_str()) {
                let fix = match suggest(key) {
                    Some(known) => format!("Unknown setting; did you mean \"{known}\"?"),
                    None => format!("Unknown setting; the known ones are {}.", FIELDS.join(", ")),
                };
                issues.push(issue(&format!("{key} in config.json"), fix));
            }
        }

        let client_id = client_id(map, &mut issues);
        let authorize_url = endpoint(
            map,
            "authorize_url",
            "https://bitbucket.org/site/oauth2/authorize",
            &mut issues,
        );
        let relay_url = endpoint(map, "relay_url", "https://relay.example/token", &mut issues);
        let api_base = endpoint(map, "api_base", "https://api.bitbucket.org/2.0/", &mut issues);
        if let Some(base) = &api_base {
            if !base.path().ends_with('/') {
                issues.push(issue(
                    "api_base in config.json",
                    format!(
                        "Must end with a slash, like https://api.bitbucket.org/2.0/; it is {base}."
                    ),
                ));
            }
            if base.query().is_some() {
                issues.push(issue("api_base in config.json", "Must not have a query (?...)."));
            }
        }
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

/// A known field that `key` is probably a misspelling of (case, dashes, camelCase).
fn suggest(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
    };
    let wanted = squash(key);
    FIELDS
        .into_iter()
        .find(|field| squash(field) == wanted || squash(field).trim_end_matches('s') == wanted)
}

/// Checks `client_id`.
fn client_id(map: &[(String, Json)], issues: &mut Vec<Setting>) -> Option<ClientId> {
    let name = "client_id in config.json";
    match get(map, "client_id") {
        None => {
            issues
                .push(issue(name, "Missing: set it to the Key of your Bitbucket OAuth consumer."));
            None
        }
        Some(Json::String(id)) if id.trim().is_empty() => {
            issues.push(issue(name, "Empty: set it to the Key of your Bitbucket OAuth consumer."));
            None
        }
        Some(Json::String(id)) if id.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            issues.push(issue(name, "Must not contain spaces: copy the consumer's Key exactly."));
            None
        }
        Some(Json::String(id)) => Some(ClientId::new(id.clone())),
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

/// Checks one endpoint URL: absolute, https (http only on loopback), no
/// credentials, no fragment.
fn endpoint(
    map: &[(String, Json)],
    field: &str,
    example: &str,
    issues: &mut Vec<Setting>,
) -> Option<WebUrl> {
    let name = format!("{field} in config.json");
    let text = match get(map, field) {
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
    let url = match WebUrl::parse(text.trim()) {
        Some(url) => url,
        None => {
            issues.push(issue(
                &name,
                format!("Must be a full URL such as {example}; it is \"{text}\"."),
            ));
            return None;
        }
    };
    let mut ok = true;
    match url.scheme() {
        "https" => {}
        "http" if url.is_loopback() => {}
        "http" => {
            issues.push(issue(
                &name,
                format!("Must use https (plain http only works on 127.0.0.1); it is {url}."),
            ));
            ok = false;
        }
        _ => {
            issues.push(issue(
                &name,
                format!("Must be an https URL such as {example}; it is {url}."),
            ));
            ok = false;
        }
    }
    if url.has_credentials() {
        issues.push(issue(&name, "Must not contain a user name or password."));
        ok = false;
    }
    if url.fragment().is_some() {
        issues.push(issue(&name, "Must not contain a #fragment."));
        ok = false;
    }
    ok.then_some(url)
}

/// Checks `scopes`, which defaults to `["account", "email"]`.
fn scopes(map: &[(String, Json)], issues: &mut Vec<Setting>) -> Vec<String> {
    let name = "scopes in config.json";
    let Some(value) = get(map, "scopes") else {
        return vec!["account".to_owned(), "email".to_owned()];
    };
    let Json::Array(items) = value else {
        issues
            .push(issue(name, "Must be a list of scope names, such as [\"account\", \"email\"]."));
        return Vec::new();
    };
    let mut scopes = Vec::new();
    for item in items {
        match item {
            Json::String(scope) if KNOWN_SCOPES.contains(&scope.as_str()) => scopes.push(scope.clone()),
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
}
