//! One connection, many requests: the native relay hands a connection to
//! hyper for each request and takes it back once answered (see the relay's
//! `server.rs`). Every request on a kept-open connection is answered, in
//! order, whether it comes after the last answer, together with it
//! (pipelined), or after an answer given before its body was read; and a
//! `Connection: close` closes it. Requests past what the relay reads at once
//! wait unread, and are still answered.

use crate::upstream::wait_for_in_flight;
use crate::{ORIGIN, Relay, client, code_form, error_of, mint_code, refresh_form, relay_config};
use dance_protocol::PkceVerifier;
use fakebucket::{Fault, FaultTarget};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A connection to the relay and the bytes read past the last response.
struct Wire {
    stream: TcpStream,
    read: Vec<u8>,
}

impl Wire {
    async fn open(relay: &Relay) -> Self {
        let stream = TcpStream::connect(relay.addr).await.expect("connect");
        Self { stream, read: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next response: its status and body (by its Content-Length).
    async fn response(&mut self) -> (u16, String) {
        loop {
            if let Some(end) = self.read.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.read[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().expect("a length"));
                if self.read.len() >= end + 4 + length {
                    let status = head.split_whitespace().nth(1).expect("a status");
                    let body = String::from_utf8_lossy(&self.read[end + 4..end + 4 + length]);
                    let answer = (status.parse().expect("a number"), body.into_owned());
                    self.read.drain(..end + 4 + length);
                    return answer;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "closed before a full response: {}",
                String::from_utf8_lossy(&self.read)
            );
            self.read.extend_from_slice(&chunk[..n]);
        }
    }
}

fn health() -> String {
    "GET /healthz HTTP/1.1\r\nhost: relay\r\n\r\n".to_owned()
}

fn exchange(form: &str) -> String {
    format!(
        "POST /token HTTP/1.1\r\nhost: relay\r\norigin: {ORIGIN}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
        form.len()
    )
}

async fn fresh_form(fakebucket: &fakebucket::Handle) -> String {
    let verifier = PkceVerifier::generate();
    let code = mint_code(&client(), fakebucket, &verifier).await;
    code_form(&code, &verifier)
}

fn access_token(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
    json["access_token"].as_str().expect("an access token").to_owned()
}

#[tokio::test]
async fn a_kept_open_connection_serves_request_after_request() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let mut wire = Wire::open(&relay).await;
    wire.send(health().as_bytes()).await;
    assert_eq!(wire.response().await, (200, "ok\n".to_owned()));
    let mut tokens = Vec::new();
    for _ in 0..3 {
        wire.send(exchange(&fresh_form(&fakebucket).await).as_bytes()).await;
        let (status, body) = wire.response().await;
        assert_eq!(status, 200, "{body}");
        tokens.push(access_token(&body));
    }
    wire.send(health().as_bytes()).await;
    assert_eq!(wire.response().await, (200, "ok\n".to_owned()));
    let distinct: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 3, "each exchange got its own tokens");
    assert_eq!(fakebucket.counters().token_requests_total, 3);
    relay.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let (first, second) = (fresh_form(&fakebucket).await, fresh_form(&fakebucket).await);
    let mut wire = Wire::open(&relay).await;
    // Four requests in one write, the last one cut in two.
    let all = [
        exchange(&first),
        health(),
        exchange(&second),
        "GET /no-such-path HTTP/1.1\r\nhost: relay\r\n\r\n".to_owned(),
    ]
    .concat();
    let (most, tail) = all.split_at(all.len() - 10);
    wire.send(most.as_bytes()).await;
    let (status, body) = wire.response().await;
    assert_eq!(status, 200, "{body}");
    let first_token = access_token(&body);
    assert_eq!(wire.response().await, (200, "ok\n".to_owned()));
    let (status, body) = wire.response().await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(access_token(&body), first_token);
    wire.send(tail.as_bytes()).await;
    let (status, body) = wire.response().await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(fakebucket.counters().token_requests_total, 2);
    relay.stop().await;
}

#[tokio::test]
async fn a_refusal_before_the_body_was_read_leaves_the_connection_usable() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let mut wire = Wire::open(&relay).await;
    // Refused on its head (a foreign origin): its body is never read.
    let form = fresh_form(&fakebucket).await;
    let foreign = exchange(&form).replace(ORIGIN, "https://evil.example");
    wire.send(foreign.as_bytes()).await;
    let (status, body) = wire.response().await;
    assert_eq!(status, 403, "{body}");
    // The unread body was skipped, not taken for the next request.
    wire.send(exchange(&form).as_bytes()).await;
    let (status, body) = wire.response().await;
    assert_eq!(status, 200, "{body}");
    wire.send(health().as_bytes()).await;
    assert_eq!(wire.response().await, (200, "ok\n".to_owned()));
    assert_eq!(fakebucket.counters().token_requests_total, 1);
    relay.stop().await;
}

#[tokio::test]
async fn connection_close_closes_the_connection_after_the_answer() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let mut wire = Wire::open(&relay).await;
    wire.send(exchange(&fresh_form(&fakebucket).await).as_bytes()).await;
    let (status, body) = wire.response().await;
    assert_eq!(status, 200, "{body}");
    wire.send(b"GET /healthz HTTP/1.1\r\nhost: relay\r\nconnection: close\r\n\r\n").await;
    assert_eq!(wire.response().await, (200, "ok\n".to_owned()));
    let mut rest = Vec::new();
    wire.stream.read_to_end(&mut rest).await.expect("read to the end");
    assert!(rest.is_empty() && wire.read.is_empty(), "{}", String::from_utf8_lossy(&rest));
    relay.stop().await;
}

#[tokio::test]
async fn requests_past_what_the_relay_reads_at_once_are_still_answered() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    // One slot for the token endpoint, so two requests read at once.
    config.limits.max_concurrency = 1;
    config.limits.slot_timeout = Duration::from_millis(100);
    config.limits.upstream_timeout = Duration::from_secs(30);
    let relay = Relay::start(config).await;
    fakebucket
        .inject_fault(Fault::delay(FaultTarget::Token, Duration::from_secs(60)))
        .expect("a valid fault");
    let mut held = Wire::open(&relay).await;
    held.send(exchange(&refresh_form("held")).as_bytes()).await;
    wait_for_in_flight(&relay, 1).await;
    // Three more at once: one is read and waits for the slot; the others
    // wait unread for their turn (or the slot timeout), then are read too.
    let mut wires = Vec::new();
    for request in [exchange(&refresh_form("a")), exchange(&refresh_form("b")), health()] {
        let mut wire = Wire::open(&relay).await;
        wire.send(request.as_bytes()).await;
        wires.push(wire);
    }
    let mut answers = Vec::new();
    for wire in &mut wires {
        answers.push(wire.response().await);
    }
    for (status, body) in &answers[..2] {
        assert_eq!(*status, 503, "{body}");
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(error_of(&json), "temporarily_unavailable");
    }
    assert_eq!(answers[2], (200, "ok\n".to_owned()));
    // Stopping fakebucket cuts its delay short and frees the held request.
    fakebucket.shutdown().await.expect("fakebucket stops");
    let _ = held.response().await;
}
