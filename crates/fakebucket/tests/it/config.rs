//! The configuration types and the `--consumer` / `--user` syntax.

use fakebucket::{
    Config, ConfigError, Consumer, ConsumerParseError, DEMO_CALLBACK, DEMO_KEY, DEMO_SECRET,
    FixtureUser, PkceMode,
};
use url::Url;

#[test]
fn default_config_is_the_demo() {
    let config = Config::default();
    let demo = config.consumer(DEMO_KEY).expect("demo consumer");
    assert_eq!(demo.secret, DEMO_SECRET);
    assert_eq!(demo.callback.as_ref().map(Url::as_str), Some(DEMO_CALLBACK));
    assert_eq!(demo.scope_string(), "account email");
    assert!(!demo.private);
    assert_eq!(config.token_lifetime.as_secs(), 7200);
    assert_eq!(config.pkce, PkceMode::Ignore);
    assert!(!config.admin && !config.legacy_scopes_field);
    assert_eq!(config.rate_limit.requests, 1000);
    assert_eq!(config.users.len(), 4);
    assert_eq!(config.refresh_token_lifetime.as_secs(), 90 * 24 * 3600);
    assert!(config.refresh_grace.is_zero() && !config.short_tokens);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn the_demo_consumer_has_credentials_of_todays_lengths() {
    // Consumers Bitbucket creates since 2026: a 32-character key, a secret of
    // about 76. Letters and digits only, so they need no escaping anywhere
    // (URLs, Basic credentials, the `--consumer` syntax).
    assert_eq!(DEMO_KEY.len(), 32);
    assert_eq!(DEMO_SECRET.len(), 76);
    for value in [DEMO_KEY, DEMO_SECRET] {
        assert!(value.bytes().all(|b| b.is_ascii_alphanumeric()), "{value}");
    }
    let parsed: Consumer = Consumer::demo_spec().parse().expect("the demo spec parses");
    assert_eq!((parsed.key.as_str(), parsed.secret.as_str()), (DEMO_KEY, DEMO_SECRET));
    assert_eq!(parsed.callback, Consumer::demo().callback);
}

#[test]
fn consumer_syntax() {
    let c: Consumer = "key:secret:http://127.0.0.1:3000/cb".parse().expect("valid");
    assert_eq!((c.key.as_str(), c.secret.as_str()), ("key", "secret"));
    assert_eq!(c.callback.as_ref().map(Url::as_str), Some("http://127.0.0.1:3000/cb"));
    assert_eq!(c.scopes, ["account", "email"]);

    let c: Consumer =
        "k:s:https://x.example/:scopes=account:name=My App:private".parse().expect("valid");
    assert_eq!(c.scopes, ["account"]);
    assert_eq!(c.name, "My App");
    assert!(c.private);
    assert_eq!(c.callback.as_ref().map(Url::as_str), Some("https://x.example/"));

    let c: Consumer = "k:s:".parse().expect("valid");
    assert_eq!(c.callback, None);
    let c: Consumer = "k:s::private".parse().expect("valid");
    assert!(c.private && c.callback.is_none());

    assert_eq!("k:s".parse::<Consumer>(), Err(ConsumerParseError::Shape));
    assert_eq!(":s:http://x/".parse::<Consumer>(), Err(ConsumerParseError::Empty));
    assert!(matches!("k:s:not a url".parse::<Consumer>(), Err(ConsumerParseError::Callback(_))));
    assert_eq!(
        "k:s:http://x/:scopes=account,root".parse::<Consumer>(),
        Err(ConsumerParseError::Scope("root".into()))
    );
}

#[test]
fn user_syntax() {
    let u: FixtureUser = "octo:Octo Cat:octo@example.com,cat@example.org".parse().expect("valid");
    assert_eq!(u.display_name, "Octo Cat");
    assert_eq!(u.primary_email(), Some("octo@example.com"));
    assert_eq!(u.emails.len(), 2);
    assert!(u.uuid.starts_with('{') && u.uuid.ends_with('}') && u.uuid.len() == 38, "{}", u.uuid);
    let again: FixtureUser = "octo".parse().expect("valid");
    assert_eq!(again.uuid, u.uuid, "ids are stable across runs");
    assert_eq!(again.primary_email(), Some("octo@example.com"));
    assert!("".parse::<FixtureUser>().is_err());
    assert!("bad name".parse::<FixtureUser>().is_err());
    assert!("ok:Name:not-an-email".parse::<FixtureUser>().is_err());
}

#[test]
fn validate_catches_impossible_configs() {
    let mut config = Config::default();
    config.consumers.push(Consumer::demo());
    assert_eq!(config.validate(), Err(ConfigError::DuplicateConsumer(DEMO_KEY.into())));
    let mut config = Config::default();
    let first = config.users[0].clone();
    config.users.push(first);
    assert!(matches!(config.validate(), Err(ConfigError::DuplicateUser(_))));
    let config = Config { token_lifetime: std::time::Duration::ZERO, ..Config::default() };
    assert_eq!(config.validate(), Err(ConfigError::ZeroLifetime));
    let config = Config { refresh_token_lifetime: std::time::Duration::ZERO, ..Config::default() };
    assert_eq!(config.validate(), Err(ConfigError::ZeroLifetime));
    assert_eq!("require".parse(), Ok(PkceMode::Require));
    assert!("plain".parse::<PkceMode>().is_err());
}
