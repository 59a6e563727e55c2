//! The doctor against the local stack: fakebucket, the relay and a static
//! server with GitHub Pages' semantics (unknown paths get `404.html` with
//! status 404), all in-process on 127.0.0.1:0, in a sound configuration and
//! in broken ones. Each broken one must fail the right check with a fix
//! naming the setting to change. The relay seals refresh tokens unless a
//! test says otherwise, as a deployment should.

use super::*;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use dance_protocol::ClientSecret;
use dance_protocol::deployment::config::Settings;
use dance_relay_core::SealingKey;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::services::{ServeDir, ServeFile};

/// What to break in the stack.
#[derive(Default)]
struct Setup {
    /// The relay allows this origin instead of the site's.
    origin: Option<&'static str>,
    /// The relay allows this redirect URI instead of the site's.
    redirect: Option<&'static str>,
    /// The relay uses this secret instead of the consumer's.
    secret: Option<&'static str>,
    /// The site has no config.json.
    no_config: bool,
    /// The site has no 404.html.
    no_404: bool,
    /// The page was built for this path instead of `/repo/`.
    base_href: Option<&'static str>,
    /// The page's CSP leaves the relay out.
    csp_without_relay: bool,
    /// Nothing listens where the relay should be.
    relay_down: bool,
    /// The relay has no sealing key: refresh tokens pass through unbound.
    unsealed: bool,
    /// The relay's clock runs this much ahead, so it finds every proof
    /// stale (as it would a proof whose URL a proxy's Host header belies).
    relay_clock_ahead: Option<Duration>,
}

/// A running stack; dropping it stops the servers and removes the site.
struct Stack {
    site: Url,
    relay: Url,
    dir: PathBuf,
    fakebucket: fakebucket::Handle,
    _relay: Option<dance_testkit::Relay>,
    _stops: Vec<oneshot::Sender<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        // A leftover temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const CLIENT_ID: &str = fakebucket::DEMO_KEY;

async fn stack(setup: Setup) -> Stack {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let site_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the site");
    let site = Url::parse(&format!("http://{}/repo/", site_listener.local_addr().expect("addr")))
        .expect("site URL");

    let fakebucket =
        dance_testkit::start_fakebucket(dance_testkit::fakebucket_config(&site, |_| {}))
            .await
            .expect("fakebucket");

    let (relay, relay_server) = if setup.relay_down {
        // An address where nothing listens.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let relay = Url::parse(&format!("http://{}/token", listener.local_addr().expect("addr")))
            .expect("relay URL");
        (relay, None)
    } else {
        let origin = setup.origin.map_or_else(|| deployment::origin(&site), str::to_owned);
        let redirect = setup.redirect.map_or_else(|| site.to_string(), str::to_owned);
        let mut config = dance_testkit::relay_config(&fakebucket, &origin, &redirect);
        if let Some(secret) = setup.secret {
            config.client_secret = ClientSecret::new(secret);
        }
        if !setup.unsealed {
            config.sealing_keys = vec![SealingKey::generate()];
        }
        let server = dance_testkit::Relay::start(config).await.expect("the relay");
        if let Some(ahead) = setup.relay_clock_ahead {
            server.clock().advance(ahead);
        }
        (server.token_url(), Some(server))
    };
    let mut stops = Vec::new();

    let dir = std::env::temp_dir().join(format!(
        "dance-doctor-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("site dir");
    let fb_origin = deployment::origin(&fakebucket.url());
    let relay_origin =
        if setup.csp_without_relay { String::new() } else { deployment::origin(&relay) };
    let base = setup.base_href.unwrap_or("/repo/");
    let index = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'self' 'wasm-unsafe-eval'; img-src 'self' {fb_origin}; \
         connect-src 'self' {relay_origin} {fb_origin}\">\
         <base href=\"{base}\">\
         <template id=\"dance-app\" data-js=\"{base}app-1a2b.js\" \
         data-wasm=\"{base}app-1a2b_bg.wasm\"></template></head><body></body></html>"
    );
    std::fs::write(dir.join("index.html"), &index).expect("index.html");
    if !setup.no_404 {
        std::fs::write(dir.join("404.html"), &index).expect("404.html");
    }
    std::fs::write(dir.join("app-1a2b.js"), "// glue").expect("glue");
    std::fs::write(dir.join("app-1a2b_bg.wasm"), b"\0asm\x01\0\0\0").expect("wasm");
    if !setup.no_config {
        let config = Settings::new(
            CLIENT_ID,
            fakebucket.authorize_url().as_str(),
            relay.as_str(),
            fakebucket.api_base().as_str(),
        );
        std::fs::write(dir.join(contract::FILE), config.to_json()).expect("config.json");
    }

    // GitHub Pages: files as they are, anything else 404.html with status 404.
    let files = ServeDir::new(&dir).not_found_service(ServeFile::new(dir.join("404.html")));
    let router = Router::new().nest_service("/repo", files);
    let (stop, stopped) = oneshot::channel::<()>();
    stops.push(stop);
    tokio::spawn(async move {
        let served = axum::serve(site_listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = served.await {
            eprintln!("the static server stopped: {error}");
        }
    });

    Stack { site, relay, dir, fakebucket, _relay: relay_server, _stops: stops }
}

async fn doctor(stack: &Stack, relay: Option<&str>) -> Report {
    diagnose(stack.site.as_str(), relay, false).await
}

fn listing(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{:?} {}: {} | fix: {}",
                f.status,
                f.topic,
                f.what,
                f.fix.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_sound_deployment_passes_every_check() {
    let stack = stack(Setup::default()).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    for topic in
        ["site", "app", "config", "csp", "deep-links", "healthz", "cors", "redirect-uri", "sealing"]
    {
        assert_eq!(report.worst(topic), Some(Status::Ok), "{topic}:\n{all}");
    }
    assert!(report.findings.iter().all(|f| f.status == Status::Ok), "{all}");
    assert!(
        report.manual.iter().any(|line| line.contains(&format!("exactly {}", stack.site))),
        "{:?}",
        report.manual
    );
    assert!(report.manual.iter().any(|line| line.contains(CLIENT_ID)), "{:?}", report.manual);

    // The relay given explicitly, as a bare origin, is the same relay.
    let origin = format!("{}/", deployment::origin(&stack.relay));
    let report = doctor(&stack, Some(&origin)).await;
    assert_eq!(report.failures(), 0, "{}", listing(&report));
}

#[tokio::test]
async fn a_relay_without_a_sealing_key_works_but_warns_that_refresh_tokens_are_unbound() {
    let stack = stack(Setup { unsealed: true, ..Setup::default() }).await;
    let before = stack.fakebucket.counters().token_requests_total;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("redirect-uri"), Some(Status::Ok), "{all}");
    assert_eq!(report.worst("sealing"), Some(Status::Warn), "{all}");
    assert!(
        report.findings.iter().any(|f| f.topic == "sealing" && f.what.contains("unbound")),
        "{all}"
    );
    let fix = report.fixes("sealing");
    assert!(fix.contains("DANCE_SEALING_KEY") && fix.contains("dance-relay keygen"), "{fix}");
    assert!(fix.contains("wrangler secret put DANCE_SEALING_KEY"), "{fix}");
    assert_eq!(report.failures(), 0, "{all}");
    // The exchange and the refresh both reached Bitbucket.
    let forwarded = stack.fakebucket.counters().token_requests_total - before;
    assert_eq!(forwarded, 2, "{all}");
}

#[tokio::test]
async fn a_sealing_relay_refuses_the_dummy_refresh_token_without_asking_bitbucket() {
    let stack = stack(Setup::default()).await;
    let before = stack.fakebucket.counters().token_requests_total;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("sealing"), Some(Status::Ok), "{all}");
    assert!(report.findings.iter().any(|f| f.topic == "sealing" && f.what.contains("sealed")));
    let forwarded = stack.fakebucket.counters().token_requests_total - before;
    assert_eq!(forwarded, 1, "only the exchange reaches Bitbucket:\n{all}");
}

#[tokio::test]
async fn a_relay_refusing_the_proof_fails_naming_the_host_header_and_the_clock() {
    let ahead = Duration::from_secs(3600);
    let stack = stack(Setup { relay_clock_ahead: Some(ahead), ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("dpop"), Some(Status::Fail), "{all}");
    let fix = report.fixes("dpop");
    assert!(fix.contains("proxy_set_header Host $host;") && fix.contains("clock"), "{fix}");
    assert_eq!(report.worst("redirect-uri"), None, "the exchange did not get through:\n{all}");
    assert_eq!(report.worst("sealing"), None, "not probed with a refused proof:\n{all}");
    assert_eq!(report.failures(), 1, "{all}");
}

#[tokio::test]
async fn a_relay_refusing_the_site_origin_fails_cors_naming_the_origin() {
    let stack = stack(Setup { origin: Some("http://127.0.0.1:1"), ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("cors"), Some(Status::Fail), "{all}");
    let fix = report.fixes("cors");
    assert!(fix.contains("DANCE_ALLOWED_ORIGINS"), "{fix}");
    assert!(fix.contains(&format!("add {} to", deployment::origin(&stack.site))), "{fix}");
    assert_eq!(report.worst("healthz"), Some(Status::Ok), "{all}");
    assert_eq!(report.worst("redirect-uri"), None, "not probed after a refused preflight:\n{all}");
}

#[tokio::test]
async fn a_redirect_uri_missing_from_the_allowlist_fails_naming_the_uri() {
    let stack =
        stack(Setup { redirect: Some("http://127.0.0.1:1/other/"), ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("cors"), Some(Status::Ok), "{all}");
    assert_eq!(report.worst("redirect-uri"), Some(Status::Fail), "{all}");
    let fix = report.fixes("redirect-uri");
    assert!(fix.contains(&format!("add {} to DANCE_ALLOWED_REDIRECT_URIS", stack.site)), "{fix}");
    assert_eq!(report.failures(), 1, "{all}");
}

#[tokio::test]
async fn a_missing_config_json_fails_naming_the_repository_variables() {
    let stack = stack(Setup { no_config: true, ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("config"), Some(Status::Fail), "{all}");
    let fix = report.fixes("config");
    assert!(fix.contains("BITBUCKET_CLIENT_ID") && fix.contains("RELAY_URL"), "{fix}");
    assert_eq!(report.worst("relay"), Some(Status::Fail), "no relay to check:\n{all}");

    // With --relay, the relay's own checks still run (and pass).
    let report = doctor(&stack, Some(stack.relay.as_str())).await;
    let all = listing(&report);
    assert_eq!(report.worst("config"), Some(Status::Fail), "{all}");
    for topic in ["healthz", "cors", "redirect-uri"] {
        assert_eq!(report.worst(topic), Some(Status::Ok), "{topic}:\n{all}");
    }
}

#[tokio::test]
async fn a_relay_that_is_down_fails_healthz_and_stops_there() {
    let stack = stack(Setup { relay_down: true, ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("healthz"), Some(Status::Fail), "{all}");
    assert!(report.fixes("healthz").contains("start the relay"), "{all}");
    assert_eq!(report.worst("cors"), None, "{all}");
    assert_eq!(report.worst("config"), Some(Status::Ok), "{all}");
}

#[tokio::test]
async fn a_relay_with_the_wrong_secret_fails_its_credentials() {
    let stack = stack(Setup { secret: Some("not-the-secret"), ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("relay-credentials"), Some(Status::Fail), "{all}");
    let fix = report.fixes("relay-credentials");
    assert!(fix.contains("DANCE_CLIENT_ID") && fix.contains(CLIENT_ID), "{fix}");
    assert_eq!(report.worst("redirect-uri"), None, "{all}");
}

#[tokio::test]
async fn a_site_built_for_another_path_fails_the_app_check() {
    let stack = stack(Setup { base_href: Some("/"), ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("app"), Some(Status::Fail), "{all}");
    let fix = report.fixes("app");
    assert!(fix.contains("built for the path / but is served at /repo/"), "{fix}");
    assert!(fix.contains(&format!("cargo xtask pages --site-url {}", stack.site)), "{fix}");
}

#[tokio::test]
async fn a_policy_without_the_relay_fails_the_csp_check() {
    let stack = stack(Setup { csp_without_relay: true, ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("csp"), Some(Status::Fail), "{all}");
    assert!(report.fixes("csp").contains("RELAY_URL"), "{all}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.topic == "csp" && f.what.contains(&deployment::origin(&stack.relay))),
        "{all}"
    );
}

#[tokio::test]
async fn a_relay_other_than_the_configured_one_is_a_config_failure() {
    let stack = stack(Setup::default()).await;
    let report = doctor(&stack, Some("http://127.0.0.1:1/token")).await;
    let all = listing(&report);
    assert!(
        report.findings.iter().any(|f| f.status == Status::Fail
            && f.topic == "config"
            && f.what.contains("sends the app to the relay")),
        "{all}"
    );
    assert!(report.fixes("config").contains("RELAY_URL to http://127.0.0.1:1/token"), "{all}");
    assert_eq!(report.worst("healthz"), Some(Status::Fail), "nothing listens there:\n{all}");
}

#[tokio::test]
async fn without_404_html_deep_links_only_warn() {
    let stack = stack(Setup { no_404: true, ..Setup::default() }).await;
    let report = doctor(&stack, None).await;
    let all = listing(&report);
    assert_eq!(report.worst("deep-links"), Some(Status::Warn), "{all}");
    assert!(report.fixes("deep-links").contains("publish 404.html"), "{all}");
    assert_eq!(report.failures(), 0, "{all}");
}

#[tokio::test]
async fn an_unreachable_site_fails_and_an_unparsable_one_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let report = diagnose(&format!("http://{addr}/repo/"), None, false).await;
    assert_eq!(report.worst("site"), Some(Status::Fail), "{}", listing(&report));
    assert_eq!(report.worst("relay"), Some(Status::Fail), "{}", listing(&report));

    let report = diagnose("user.github.io/repo", None, false).await;
    assert_eq!(report.findings.len(), 1, "{}", listing(&report));
    assert!(report.fixes("site").contains("--site https://"), "{}", listing(&report));
}

// ---- pure parts ------------------------------------------------------------

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let url = |text: &str| Url::parse(text).expect("url");
    let site = insecure("site", &url("http://user.github.io/repo/"), "the site").expect("insecure");
    assert!(site.fix.as_deref().is_some_and(|fix| fix.contains("Enforce HTTPS")), "{site:?}");
    let relay =
        insecure("relay", &url("http://relay.example/token"), "the relay").expect("insecure");
    assert!(relay.fix.as_deref().is_some_and(|fix| fix.contains("RELAY_URL")), "{relay:?}");
    assert!(insecure("site", &url("http://127.0.0.1:8080/"), "the site").is_none());
    assert!(insecure("site", &url("https://user.github.io/repo/"), "the site").is_none());
}

#[test]
fn config_json_is_checked_by_the_apps_rules() {
    let good = r#"{"client_id":"AbC","authorize_url":"https://bitbucket.org/site/oauth2/authorize",
        "relay_url":"https://relay.example/token","api_base":"https://api.bitbucket.org/2.0/",
        "scopes":["account","email"]}"#;
    let (config, problems) = check_config(good);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(config.expect("usable").relay_url.as_str(), "https://relay.example/token");

    let bad = r#"{"client_id":"","authorize_url":"https://bitbucket.org/site/oauth2/authorize",
        "relay_url":"http://relay.example/token","api_base":"https://api.bitbucket.org/2.0",
        "scopes":["account"],"apiBase":"x"}"#;
    let (config, problems) = check_config(bad);
    assert!(config.is_none());
    let text: Vec<String> =
        problems.iter().map(|(s, what, fix)| format!("{s:?} {what} | {fix}")).collect();
    let joined = text.join("\n");
    assert!(joined.contains("Fail client_id in config.json is empty | set the repository variable BITBUCKET_CLIENT_ID"), "{joined}");
    assert!(
        joined.contains("relay_url in config.json (http://relay.example/token) not https"),
        "{joined}"
    );
    assert!(joined.contains("RELAY_URL"), "{joined}");
    assert!(
        joined.contains(
            "api_base in config.json (https://api.bitbucket.org/2.0) does not end with /"
        ),
        "{joined}"
    );
    assert!(joined.contains("Warn scopes in config.json lacks \"email\""), "{joined}");
    assert!(
        joined.contains(
            "Fail config.json has an unknown setting `apiBase` (did you mean `api_base`?), which \
             the app refuses"
        ),
        "{joined}"
    );

    let (_, problems) = check_config("<!doctype html><p>app</p>");
    assert!(problems[0].1.contains("probably missing"), "{problems:?}");
    let (_, problems) = check_config("[1]");
    assert!(problems[0].1.contains("not a JSON object"), "{problems:?}");
}

/// What the tools write (`Settings::to_json`, the one writer of the file)
/// passes every check, for the local stack and for Bitbucket Cloud.
#[test]
fn the_written_config_json_passes_every_check() {
    for settings in [
        Settings::new(
            CLIENT_ID,
            "http://127.0.0.1:9090/site/oauth2/authorize",
            "http://127.0.0.1:8787/token",
            "http://127.0.0.1:9090/2.0/",
        ),
        Settings::bitbucket("AbC123", "https://relay.example.com/token"),
    ] {
        let (config, problems) = check_config(&settings.to_json());
        assert!(problems.is_empty(), "{settings:?}: {problems:?}");
        let config = config.expect("usable");
        assert_eq!(config.client_id, settings.client_id);
        assert_eq!(config.relay_url.as_str(), settings.relay_url);
        assert_eq!(config.api_base.as_str(), settings.api_base);
    }
}

/// Each rule of the contract that the app refuses a config.json for fails
/// the doctor's check too, naming the setting.
#[test]
fn what_the_app_refuses_fails_the_config_check() {
    let good = Settings::bitbucket("AbC123", "https://relay.example.com/token");
    let failing = |change: &dyn Fn(&mut serde_json::Value), expected: &str| {
        let mut value: serde_json::Value =
            serde_json::from_str(&good.to_json()).expect("the writer writes JSON");
        change(&mut value);
        let (_, problems) = check_config(&value.to_string());
        let fails: Vec<&String> =
            problems.iter().filter(|(s, _, _)| *s == Status::Fail).map(|(_, w, _)| w).collect();
        assert!(fails.iter().any(|what| what.contains(expected)), "{expected}: {problems:?}");
    };
    failing(&|v| v["client_id"] = " AbC123".into(), "client_id in config.json is \" AbC123\"");
    failing(&|v| v["client_id"] = 5.into(), "client_id in config.json is missing");
    failing(&|v| v["relay_url"] = "ftp://relay.example.com/token".into(), "not an https URL");
    failing(
        &|v| v["api_base"] = "https://api.bitbucket.org/2.0/?x=1".into(),
        "api_base in config.json (https://api.bitbucket.org/2.0/?x=1) has a query",
    );
    failing(&|v| v["authorize_url"] = "https://u:p@bitbucket.org/x".into(), "user name");
    failing(&|v| v["relay_url"] = "https://relay.example.com/token#x".into(), "#fragment");
    failing(&|v| v["scopes"] = serde_json::json!(["account", "emails"]), "\"emails\"");
    failing(&|v| v["scopes"] = serde_json::json!(["account", "email", 3]), "not a string: 3");
    failing(&|v| v["Scope"] = serde_json::json!([]), "(did you mean `scopes`?)");
}

#[test]
fn the_app_base_drops_the_file_query_and_fragment() {
    let base = |text: &str| app_base(&Url::parse(text).expect("url")).to_string();
    assert_eq!(base("https://user.github.io/repo/"), "https://user.github.io/repo/");
    assert_eq!(
        base("https://user.github.io/repo/index.html?x=1#y"),
        "https://user.github.io/repo/"
    );
    assert_eq!(base("http://127.0.0.1:8080/?code=a"), "http://127.0.0.1:8080/");
}

#[test]
fn exchange_answers_are_told_apart() {
    let site = "https://user.github.io/repo/";
    let origin = "https://user.github.io";
    let classify =
        |status, body: &str| classify_exchange(status, body, "", origin, site, Some("AbC"));
    // Told by the relay's `reason`, whatever the sentence says.
    let refused = classify(
        400,
        r#"{"error":"invalid_request","error_description":"any wording","reason":"redirect_uri_not_allowed"}"#,
    );
    assert_eq!((refused.status, refused.topic), (Status::Fail, "redirect-uri"));
    let prose_only = classify(
        400,
        r#"{"error":"invalid_request","error_description":"redirect_uri is not on the relay's allowlist"}"#,
    );
    assert_eq!(prose_only.status, Status::Ok, "read by its prose: {prose_only:?}");
    let forwarded = classify(
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid authorization code."}"#,
    );
    assert_eq!((forwarded.status, forwarded.topic), (Status::Ok, "redirect-uri"));
    let form = classify(
        400,
        r#"{"error":"invalid_request","error_description":"code_verifier is malformed"}"#,
    );
    assert_eq!(
        form.status,
        Status::Ok,
        "an upstream invalid_request still proves forwarding: {form:?}"
    );
    let client = classify(401, r#"{"error":"invalid_client"}"#);
    assert_eq!((client.status, client.topic), (Status::Fail, "relay-credentials"));
    assert!(
        client.fix.as_deref().is_some_and(|fix| fix.contains("(AbC, as in config.json)")),
        "{client:?}"
    );
    let down = classify(502, r#"{"error":"temporarily_unavailable"}"#);
    assert_eq!((down.status, down.topic), (Status::Fail, "relay-upstream"));
    assert!(down.fix.as_deref().is_some_and(|fix| fix.contains("DANCE_TOKEN_URL")), "{down:?}");
    let limited = classify_exchange(429, "{}", "42", origin, site, None);
    assert_eq!(limited.status, Status::Warn);
    assert!(limited.fix.as_deref().is_some_and(|fix| fix.contains("42 s")), "{limited:?}");
    assert_eq!(classify(200, "{}").status, Status::Fail, "a dummy code never succeeds");
    assert_eq!(classify(400, "not json").status, Status::Fail);
    let proof = classify(
        400,
        r#"{"error":"invalid_dpop_proof","error_description":"the DPoP proof's htu is not this relay's token URL"}"#,
    );
    assert_eq!((proof.status, proof.topic), (Status::Fail, "dpop"));
    assert!(proof.fix.as_deref().is_some_and(|fix| fix.contains("Host $host")), "{proof:?}");
}

#[test]
fn refresh_answers_are_told_apart_by_code_and_reason() {
    let classify = |status, body: &str| classify_refresh(status, body, "");
    let sealed = classify(
        400,
        r#"{"error":"invalid_grant","error_description":"prose may change","reason":"not_sealed"}"#,
    );
    assert_eq!((sealed.status, sealed.topic), (Status::Ok, "sealing"));
    // Bitbucket's answer to an unknown refresh token, passed through.
    let bitbucket =
        classify(400, r#"{"error":"invalid_request","error_description":"Invalid refresh_token"}"#);
    assert_eq!((bitbucket.status, bitbucket.topic), (Status::Warn, "sealing"));
    assert!(bitbucket.what.contains("unbound"), "{bitbucket:?}");
    assert!(
        bitbucket.fix.as_deref().is_some_and(|fix| fix.contains("dance-relay keygen")),
        "{bitbucket:?}"
    );
    // The reason counts only with its code, and the prose never counts.
    for body in [
        r#"{"error":"invalid_grant","error_description":"not_sealed"}"#,
        r#"{"error":"invalid_request","reason":"not_sealed"}"#,
        r#"{"error":"invalid_grant","reason":"session_ended"}"#,
        "not json",
    ] {
        assert_eq!(classify(400, body).status, Status::Warn, "{body}");
    }
    assert_eq!(classify(401, r#"{"error":"invalid_client"}"#).status, Status::Warn);
    let proof = classify(400, r#"{"error":"invalid_dpop_proof","reason":"wrong_key"}"#);
    assert_eq!((proof.status, proof.topic), (Status::Fail, "dpop"));
    let limited = classify_refresh(429, "{}", "42");
    assert_eq!((limited.status, limited.topic), (Status::Warn, "sealing"));
    assert!(limited.what.contains("could not tell"), "{limited:?}");
    assert!(limited.fix.as_deref().is_some_and(|fix| fix.contains("42 s")), "{limited:?}");
}

#[test]
fn the_app_base_and_boot_files_are_read_like_the_spa_does() {
    let url = |text: &str| Url::parse(text).expect("url");
    assert_eq!(
        app_base(&url("https://u.github.io/repo/index.html?x#y")).as_str(),
        "https://u.github.io/repo/"
    );
    assert_eq!(app_base(&url("https://u.github.io/repo/")).as_str(), "https://u.github.io/repo/");
    let html =
        "<template id=\"dance-app\" data-js=\"/r/a.js\" data-wasm=\"/r/a_bg.wasm\"></template>";
    assert_eq!(boot_files(html), Some(vec!["/r/a.js".into(), "/r/a_bg.wasm".into()]));
    assert_eq!(boot_files("<p>hello</p>"), None);
}
