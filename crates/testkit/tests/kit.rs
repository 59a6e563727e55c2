//! The kit against the real fakebucket and relay: minted codes redeem, a
//! consent page that no longer fits says so, and the relay stops and comes
//! back on its address.

use dance_protocol::PkceVerifier;
use dance_testkit::{
    ConsentError, ORIGIN, REDIRECT_URI, Relay, demo_authorization, http_client, mint_code,
    read_consent_page, relay_config, start_fakebucket,
};
use std::time::Duration;
use url::Url;

/// The consent page for a fresh demo authorization, and its address.
async fn consent_page(fakebucket: &fakebucket::Handle) -> (String, Url) {
    let verifier = PkceVerifier::generate();
    let url = demo_authorization(fakebucket, &verifier, "kit").to_url();
    let page = http_client().get(url.clone()).send().await.expect("the consent page");
    assert_eq!(page.status(), 200);
    (page.text().await.expect("its text"), url)
}

#[tokio::test]
async fn a_minted_code_redeems_at_fakebuckets_token_endpoint() {
    // PKCE required: the code is only good with the challenge's verifier.
    let config = fakebucket::Config { pkce: fakebucket::PkceMode::Require, ..Default::default() };
    let fakebucket = start_fakebucket(config).await.expect("fakebucket");
    let http = http_client();
    let verifier = PkceVerifier::generate();
    let request = demo_authorization(&fakebucket, &verifier, "kit-state");
    let code = mint_code(&http, &request).await.expect("a code");

    let answer = http
        .post(fakebucket.token_url())
        .basic_auth(fakebucket::DEMO_KEY, Some(fakebucket::DEMO_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(dance_testkit::code_form(&code, &verifier))
        .send()
        .await
        .expect("the token endpoint answers");
    assert_eq!(answer.status(), 200);
    let json: serde_json::Value = answer.json().await.expect("JSON");
    let token = json["access_token"].as_str().expect("an access token");
    let counters = fakebucket.counters();
    assert_eq!((counters.authorize("granted"), counters.token("authorization_code", "ok")), (1, 1));
    // Granted as the preselected user: the first one.
    let user: serde_json::Value = http
        .get(fakebucket.api_base().join("user").expect("URL"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the API answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(user["account_id"], fakebucket.config().users[0].account_id.as_str());
}

#[tokio::test]
async fn the_form_is_read_as_a_browser_submits_it() {
    let fakebucket = start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let (html, url) = consent_page(&fakebucket).await;
    let form = read_consent_page(&html, &url).expect("the consent form");
    assert_eq!(form.action, fakebucket.authorize_url());
    assert!(form.field("txn").is_some_and(|txn| !txn.is_empty()), "{form:?}");
    assert_eq!(form.field("user"), Some(fakebucket.config().users[0].account_id.as_str()));
    assert_eq!(form.fields.last(), Some(&("decision".to_owned(), "grant".to_owned())));
}

#[tokio::test]
async fn a_changed_consent_page_says_what_changed() {
    let fakebucket = start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let (html, url) = consent_page(&fakebucket).await;
    let changes = [
        ("id=\"grant\"", "id=\"allow\"", "no form holds a submit button with id=\"grant\""),
        ("name=\"txn\"", "name=\"transaction\"", "would not send [\"txn\"]"),
        ("name=\"user\"", "name=\"account\"", "would not send [\"user\"]"),
        ("method=\"post\"", "method=\"get\"", "does not post"),
    ];
    for (from, to, expected) in changes {
        assert!(html.contains(from), "the consent page has {from}");
        let changed = html.replace(from, to);
        let error = read_consent_page(&changed, &url).expect_err("a changed page");
        assert!(matches!(error, ConsentError::PageChanged { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(expected), "{from} -> {to}: {message}");
        assert!(message.contains("crates/testkit/src/consent.rs"), "{message}");
    }
}

#[test]
fn options_without_a_value_and_selected_ones_are_read_as_browsers_do() {
    let page = Url::parse("http://127.0.0.1:1/site/oauth2/authorize?x=1").expect("URL");
    let html = "<form method=POST action=/decide><input type=hidden name=txn value='a&amp;b'>\
                <input type=checkbox name=remember><input name=note disabled value=x>\
                <select name=user><option> First </option><option selected>Second</option>\
                </select><button id=cancel name=decision value=cancel>Cancel</button>\
                <button id=grant name=decision value=grant>Grant</button></form>";
    let form = read_consent_page(html, &page).expect("a form");
    assert_eq!(form.action.as_str(), "http://127.0.0.1:1/decide");
    let fields: Vec<(&str, &str)> =
        form.fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(fields, [("txn", "a&b"), ("user", "Second"), ("decision", "grant")]);
}

#[tokio::test]
async fn a_refused_authorization_is_an_error_not_a_page() {
    let fakebucket = start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let verifier = PkceVerifier::generate();
    let mut request = demo_authorization(&fakebucket, &verifier, "kit");
    request.redirect_uri = Some("http://elsewhere.example/".to_owned());
    let error = mint_code(&http_client(), &request).await.expect_err("refused");
    assert!(matches!(error, ConsentError::Refused { status: 400, .. }), "{error:?}: {error}");
}

#[tokio::test]
async fn the_relay_exchanges_a_minted_code_and_comes_back_after_a_stop() {
    let fakebucket = start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut relay =
        Relay::start(relay_config(&fakebucket, ORIGIN, REDIRECT_URI)).await.expect("the relay");
    let http = http_client();
    let exchange = async |relay: &Relay| {
        let verifier = PkceVerifier::generate();
        let request = demo_authorization(&fakebucket, &verifier, "kit");
        let code = mint_code(&http, &request).await.expect("a code");
        http.post(relay.token_url())
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(dance_testkit::code_form(&code, &verifier))
            .send()
            .await
            .expect("the relay answers")
            .status()
    };
    assert_eq!(exchange(&relay).await, 200);
    let addr = relay.addr();

    relay.stop().await.expect("a graceful stop");
    assert!(relay.is_down().await);
    relay.restart().await.expect("a restart");
    assert_eq!(relay.addr(), addr);
    assert_eq!(exchange(&relay).await, 200);

    relay.halt(Duration::from_secs(2)).await;
    assert!(relay.is_down().await);
}

#[tokio::test]
async fn an_invalid_relay_configuration_fails_at_start() {
    let fakebucket = start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket, ORIGIN, REDIRECT_URI);
    config.allowed_origins.clear();
    let error = Relay::start(config).await.expect_err("refused");
    assert!(error.to_string().contains("invalid"), "{error:#}");
}
