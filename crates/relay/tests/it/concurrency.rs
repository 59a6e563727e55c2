//! Hundreds of simultaneous exchanges through the relay, all correct: every
//! one gets its own tokens, and fakebucket saw each code exactly once.

use crate::{Relay, client, code_form, mint_code, relay_config};
use dance_protocol::PkceVerifier;
use std::collections::HashSet;
use std::time::Duration;

const EXCHANGES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_simultaneous_exchanges_all_succeed() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
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

/// At `max_connections` open connections the relay accepts no more: the
/// next one waits, unanswered, until an open one closes, then is served.
#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.limits.max_connections = 2;
    let relay = Relay::start(config).await;
    let connect = || tokio::net::TcpStream::connect(relay.addr);
    // Two connections that have said nothing yet hold both places.
    let first = connect().await.expect("connect");
    let _second = connect().await.expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect().await.expect("the kernel queues the connection");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let waited =
        tokio::time::timeout(Duration::from_millis(700), third.read_to_end(&mut answer)).await;
    assert!(waited.is_err(), "served past the cap: {}", String::from_utf8_lossy(&answer));
    // One place frees up: the waiting connection is served.
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer))
        .await
        .expect("served once a connection closed")
        .expect("read");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok\n"), "{text}");
}
