//! Hundreds of simultaneous exchanges through the relay, all correct: every
//! one gets its own tokens, and fakebucket saw each code exactly once.

use crate::{Relay, client, code_form, mint_code, relay_config};
use dance_protocol::PkceVerifier;
use std::collections::HashSet;
use std::time::Duration;

const EXCHANGES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_simultaneous_exchanges_all_succeed() {
    let fakebucket = fakebucket::spawn(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    // More requests than slots: some wait, none may be turned away.
    config.limits.max_concurrency = 64;
    config.limits.slot_timeout = Duration::from_secs(120);
    config.limits.upstream_timeout = Duration::from_secs(120);
    let relay = Relay::start(config).await;
    let http = client();
    let mut prepared = Vec::with_capacity(EXCHANGES);
    for _ in 0..EXCHANGES {
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        prepared.push(code_form(&code, &verifier));
    }

    let url = relay.url("/token");
    let tasks: Vec<_> = prepared
        .into_iter()
        .map(|form| {
            // One client per exchange: each is its own browser, on its own connection.
            let (http, url) = (client(), url.clone());
            tokio::spawn(async move {
                let response = http
                    .post(url)
                    .header("origin", crate::ORIGIN)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .expect("the relay answers");
                let status = response.status().as_u16();
                let json: serde_json::Value = response.json().await.expect("JSON");
                (status, json)
            })
        })
        .collect();

    let mut access_tokens = HashSet::new();
    let mut refresh_tokens = HashSet::new();
    for task in tasks {
        let (status, json) = task.await.expect("the task finished");
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["token_type"], "bearer");
        access_tokens.insert(json["access_token"].as_str().expect("access token").to_owned());
        refresh_tokens.insert(json["refresh_token"].as_str().expect("refresh token").to_owned());
    }
    assert_eq!(access_tokens.len(), EXCHANGES, "every exchange got its own access token");
    assert_eq!(refresh_tokens.len(), EXCHANGES, "every exchange got its own refresh token");
    let counters = fakebucket.counters();
    assert_eq!(counters.token("authorization_code", "ok"), EXCHANGES as u64);
    assert_eq!(counters.token_requests_total, EXCHANGES as u64);
    relay.stop().await;
}
