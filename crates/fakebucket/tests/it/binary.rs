//! The `fakebucket` binary's flags for Bitbucket's 2026 behaviour, run as a
//! child process on `127.0.0.1:0`.

use crate::{form, hidden, location, param};
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use url::Url;

/// A running `fakebucket` binary, killed when dropped.
struct Running {
    child: Child,
    base: Url,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `args` and waits for its "listening" log line.
fn run(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fakebucket"))
        .args(["--listen", "127.0.0.1:0", "--log", "json"])
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("FAKEBUCKET_CONSUMERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let base = BufReader::new(stdout).lines().map_while(Result::ok).find_map(|line| {
        let entry = serde_json::from_str::<Value>(&line).ok()?;
        Url::parse(entry["fields"]["base"].as_str()?).ok()
    });
    let running = Running {
        child,
        base: base.unwrap_or_else(|| Url::parse("http://0.0.0.0/").expect("url")),
    };
    assert_ne!(running.base.as_str(), "http://0.0.0.0/", "fakebucket exited without listening");
    running
}

/// Signs in as the first user with the demo consumer: the token response.
async fn sign_in(http: &reqwest::Client, base: &Url) -> Value {
    let mut authorize = base.join("site/oauth2/authorize").expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", fakebucket::DEMO_KEY)
        .append_pair("response_type", "code");
    let page = http.get(authorize.clone()).send().await.expect("page").text().await.expect("text");
    let user = crate::id("ada");
    let answer = http
        .post(authorize)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("txn", &hidden(&page, "txn")), ("user", &user), ("decision", "grant")]))
        .send()
        .await
        .expect("grant");
    let code = param(&location(&answer), "code").expect("a code");
    token(http, base, &[("grant_type", "authorization_code"), ("code", &code)]).await.1
}

async fn token(http: &reqwest::Client, base: &Url, fields: &[(&str, &str)]) -> (StatusCode, Value) {
    let answer = http
        .post(base.join("site/oauth2/access_token").expect("url"))
        .basic_auth(fakebucket::DEMO_KEY, Some(fakebucket::DEMO_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .expect("token request");
    (answer.status(), answer.json().await.expect("JSON"))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

#[tokio::test]
async fn by_default_tokens_are_long_and_a_used_refresh_token_dies_at_once() {
    let server = run(&[]);
    let http = client();
    let body = sign_in(&http, &server.base).await;
    let refresh = body["refresh_token"].as_str().expect("refresh");
    assert_eq!(body["access_token"].as_str().map(str::len), Some(fakebucket::ACCESS_TOKEN_LEN));
    assert_eq!(refresh.len(), fakebucket::REFRESH_TOKEN_LEN);
    let fields = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_eq!(token(&http, &server.base, &fields).await.0, StatusCode::OK);
    let (status, again) = token(&http, &server.base, &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error_description"], "Invalid refresh_token");
}

#[tokio::test]
async fn short_tokens_and_refresh_grace_flags() {
    let server = run(&["--short-tokens", "--refresh-grace", "600"]);
    let http = client();
    let body = sign_in(&http, &server.base).await;
    let refresh = body["refresh_token"].as_str().expect("refresh");
    assert_eq!(body["access_token"].as_str().map(str::len), Some(88));
    assert_eq!(refresh.len(), 24);
    let fields = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    for _ in 0..2 {
        let (status, answer) = token(&http, &server.base, &fields).await;
        assert_eq!(status, StatusCode::OK, "reused within the grace window: {answer}");
    }
}

#[test]
fn help_names_the_new_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_fakebucket"))
        .arg("--help")
        .output()
        .expect("the binary runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--short-tokens", "--refresh-grace", "--refresh-lifetime", fakebucket::DEMO_KEY] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
}
