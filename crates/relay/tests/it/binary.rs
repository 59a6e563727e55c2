//! The `dance-relay` binary: `check`, `--help`, and serving until SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

fn relay_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dance-relay"));
    // Start from a clean slate: no DANCE_* variable of the caller leaks in.
    for (key, _) in std::env::vars() {
        if key.starts_with("DANCE_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

fn sound(command: &mut Command) -> &mut Command {
    command
        .env("DANCE_CLIENT_ID", fakebucket::DEMO_KEY)
        .env("DANCE_CLIENT_SECRET", "demo-secret-value")
        .env("DANCE_TOKEN_URL", "http://127.0.0.1:9090/site/oauth2/access_token")
        .env("DANCE_ALLOWED_ORIGINS", "http://127.0.0.1:8080")
        .env("DANCE_ALLOWED_REDIRECT_URIS", "http://127.0.0.1:8080/")
}

#[test]
fn check_passes_a_sound_configuration() {
    let output = sound(&mut relay_command()).arg("check").output().expect("run dance-relay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn check_says_exactly_what_is_wrong() {
    let output = sound(&mut relay_command())
        .arg("check")
        .env("DANCE_ALLOWED_ORIGINS", "https://user.github.io/,http://example.com")
        .env("DANCE_ALLOWED_REDIRECT_URIS", "http://example.com/callback")
        .env("DANCE_CLIENT_SECRET", "")
        .env("DANCE_TOKEN_URL", "http://bitbucket.org/site/oauth2/access_token")
        .env("DANCE_UPSTREAM_TIMEOUT", "0")
        .output()
        .expect("run dance-relay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for expected in [
        "error: DANCE_CLIENT_SECRET: the client secret is empty",
        "error: DANCE_TOKEN_URL: `http://bitbucket.org/site/oauth2/access_token` uses http",
        "error: DANCE_ALLOWED_ORIGINS: `https://user.github.io/` has a trailing slash",
        "write `https://user.github.io`",
        "error: DANCE_ALLOWED_ORIGINS: `http://example.com` uses http",
        "error: DANCE_ALLOWED_REDIRECT_URIS: `http://example.com/callback` uses http",
        "error: DANCE_UPSTREAM_TIMEOUT: 0 would time out every exchange",
        "configuration has 6 error(s)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
}

#[test]
fn check_warns_when_the_metrics_would_be_reachable_from_other_hosts() {
    let check = |address: &str| {
        let output = sound(&mut relay_command())
            .arg("check")
            .env("DANCE_METRICS_LISTEN", address)
            .output()
            .expect("run dance-relay");
        assert!(output.status.success(), "a warning is not an error: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let open = check("0.0.0.0:9787");
    assert!(
        open.contains(
            "warning: DANCE_METRICS_LISTEN: `0.0.0.0:9787` is not a loopback address, so the \
             metrics would be reachable from other hosts"
        ),
        "{open}"
    );
    let loopback = check("127.0.0.1:9787");
    assert!(!loopback.contains("DANCE_METRICS_LISTEN"), "{loopback}");
}

#[test]
fn check_reports_an_unreadable_secret_file_and_never_prints_the_secret() {
    let output = sound(&mut relay_command())
        .arg("check")
        .env("DANCE_CLIENT_SECRET_FILE", "/nonexistent/dance-secret")
        .output()
        .expect("run dance-relay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("both DANCE_CLIENT_SECRET and DANCE_CLIENT_SECRET_FILE are set"),
        "{stdout}"
    );

    let output = sound(&mut relay_command())
        .arg("check")
        .env_remove("DANCE_CLIENT_SECRET")
        .env("DANCE_CLIENT_SECRET_FILE", "/nonexistent/dance-secret")
        .output()
        .expect("run dance-relay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cannot read the secret file `/nonexistent/dance-secret`"), "{stdout}");
    assert!(!stdout.contains("demo-secret-value"));
}

#[test]
fn help_explains_every_setting_and_hides_the_secret() {
    let output = sound(&mut relay_command()).arg("--help").output().expect("run dance-relay");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for variable in [
        "DANCE_CLIENT_ID",
        "DANCE_CLIENT_SECRET",
        "DANCE_CLIENT_SECRET_FILE",
        "DANCE_TOKEN_URL",
        "DANCE_ALLOWED_ORIGINS",
        "DANCE_ALLOWED_REDIRECT_URIS",
        "DANCE_LISTEN",
        "DANCE_METRICS_LISTEN",
        "DANCE_ALLOW_MISSING_ORIGIN",
        "DANCE_MAX_BODY_BYTES",
        "DANCE_MAX_HEADER_BYTES",
        "DANCE_MAX_CONCURRENCY",
        "DANCE_UPSTREAM_TIMEOUT",
        "DANCE_RATE_LIMIT",
        "DANCE_TRUST_PROXY",
        "DANCE_LOG_FORMAT",
        "DANCE_WORKER_THREADS",
    ] {
        assert!(stdout.contains(&format!("env: {variable}")), "{variable} missing in\n{stdout}");
    }
    assert!(stdout.contains("check"), "{stdout}");
    assert!(!stdout.contains("demo-secret-value"), "the secret shows in --help:\n{stdout}");
}

#[test]
fn the_relay_refuses_to_start_on_errors() {
    let output = sound(&mut relay_command())
        .env("DANCE_ALLOWED_ORIGINS", "*")
        .env("DANCE_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run dance-relay");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`*` is not supported"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_relay_cleanly() {
    let mut child = sound(&mut relay_command())
        .env("DANCE_LISTEN", "127.0.0.1:0")
        .env("DANCE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dance-relay");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("the relay logs that it listens").expect("a line");
        let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        if json["message"] == "listening" {
            break json["address"].as_str().expect("an address").to_owned();
        }
    };
    let mut stream = std::net::TcpStream::connect(&address).expect("the relay accepts");
    std::io::Write::write_all(
        &mut stream,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .expect("write");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    let killed =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("the relay exits");
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("SIGTERM received")), "{rest:?}");
}

/// An HTTP/1.1 `GET path` to `address`: the whole answer, head and body.
fn get(address: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("the relay accepts");
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("write");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    answer
}

/// A child process killed when dropped, so a failed assertion leaves no
/// relay running (and holding the test's output open).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[test]
fn the_binary_serves_metrics_on_its_own_listener_only() {
    let child = sound(&mut relay_command())
        .env("DANCE_LISTEN", "127.0.0.1:0")
        .env("DANCE_METRICS_LISTEN", "127.0.0.1:0")
        .env("DANCE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dance-relay");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut public, mut metrics) = (None, None);
    while public.is_none() || metrics.is_none() {
        let line = lines.next().expect("the relay logs both addresses").expect("a line");
        let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        let address = json["address"].as_str().map(str::to_owned);
        match json["message"].as_str() {
            Some("listening") => public = address,
            Some("serving GET /metrics on its own listener") => metrics = address,
            _ => {}
        }
    }
    let (public, metrics) = (public.expect("public"), metrics.expect("metrics"));
    assert_ne!(public, metrics);
    let counters = get(&metrics, "/metrics");
    assert!(counters.starts_with("HTTP/1.1 200 "), "{counters}");
    assert!(counters.contains("dance_relay_requests_total{outcome=\"ok\"} 0\n"), "{counters}");
    let refused = get(&public, "/metrics");
    assert!(refused.starts_with("HTTP/1.1 404 "), "{refused}");
    assert!(!refused.contains("dance_relay_"), "{refused}");

    let killed =
        Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = child.0.wait().expect("the relay exits");
    assert!(status.success(), "both listeners stop on SIGTERM: {status:?}");
}

#[test]
fn boolean_variables_accept_the_usual_spellings() {
    for (value, ok) in
        [("1", true), ("yes", true), ("on", true), ("true", true), ("0", false), ("off", false)]
    {
        let output = sound(&mut relay_command())
            .arg("check")
            .env("DANCE_ALLOWED_ORIGINS", "")
            .env("DANCE_ALLOW_MISSING_ORIGIN", value)
            .output()
            .expect("run dance-relay");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.success(), ok, "{value}: {stdout}");
    }
}
