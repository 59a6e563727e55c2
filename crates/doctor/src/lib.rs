//! `dance-doctor --site URL [--relay URL]` (also `cargo xtask doctor`):
//! checks a deployment from the outside, the way a browser on the site will
//! use it, and says for every problem exactly what to change. It is for
//! whoever deploys; the rules it checks against are the deployment contract
//! of `dance_protocol::deployment`, the same ones the SPA applies.
//!
//! In order:
//! 1. `site`: the page answers (redirects followed) over https (plain http
//!    only on loopback);
//! 2. `app`: it is the SPA, and its files load from the app's base (trunk's
//!    `<base href>`; a site built for another path fails here);
//! 3. `config`: `config.json` beside it is present and valid, by the rules
//!    the SPA applies (`dance_protocol::deployment::config`): known settings
//!    only, client id, https endpoints, `api_base` ending in `/`, Bitbucket
//!    scopes;
//! 4. `csp`: the page's Content-Security-Policy lets it call the relay and
//!    the API;
//! 5. `deep-links`: a path that is not a file still loads the app (404.html);
//! 6. `relay`, `healthz`: the relay (from `--relay` or `config.json`) is https
//!    and `GET /healthz` answers `ok` without a redirect;
//! 7. `cors`: a CORS preflight for `POST /token` from the site's origin is
//!    allowed;
//! 8. `redirect-uri`: a probe exchange with a dummy code, the redirect URI the
//!    SPA will send (its base URL, as `src/flow.rs` derives it from
//!    `document.baseURI`), the site's `Origin` and a DPoP proof (RFC 9449)
//!    made now for the relay URL, as the SPA sends one. The relay answers `400
//!    invalid_request` with `reason: redirect_uri_not_allowed` when the URI
//!    is not allowed; otherwise it forwards the exchange and Bitbucket
//!    refuses the dummy code (`invalid_grant`), which proves the allowlist, the
//!    forwarding and (`401 invalid_client` otherwise) the relay's credentials.
//!    A relay with a sealing key answers `400 invalid_dpop_proof` instead
//!    when the proof does not name the URL it was called at or its clock is
//!    off (`dpop`): then every sign-in fails the same way;
//! 9. `sealing`: a probe refresh with a dummy refresh token and a valid
//!    proof. A relay with a sealing key cannot open the token and answers
//!    `400 invalid_grant` with `reason: not_sealed`, forwarding nothing; a
//!    relay without one passes it on to Bitbucket, which refuses it
//!    (`invalid_request`). The second is a warning: sign-in works, but a
//!    refresh token lifted from a browser refreshes from anywhere.
//!
//! Answers are told apart by their `error` code and `reason` member, never by
//! their prose. What can't be seen from outside (the consumer's callback URL,
//! which key the relay uses) is listed at the end as things to compare by
//! hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use dance_protocol::deployment::config::{
    self as contract, ClientIdProblem, Endpoint, EndpointProblem, Field,
};
use dance_protocol::deployment::{self, page};
use dance_protocol::dpop::reason;
use dance_relay_core::dpop::testing::ProofKey;
use reqwest::{Client, Method, StatusCode, header};
use url::Url;

/// Options of `dance-doctor` (and `cargo xtask doctor`).
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The site's address, as people open it (e.g. https://user.github.io/repo/).
    #[arg(long, value_name = "URL")]
    site: String,
    /// The relay's /token URL (or its base URL); default: relay_url from the site's config.json.
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
}

/// Prints a progress line: `==> what`. `cargo xtask` prints with these
/// too, so the doctor's report looks like every other command's.
pub fn step(what: impl std::fmt::Display) {
    println!("==> {what}");
    flush();
}

/// Prints an indented detail line under the last progress line.
pub fn note(what: impl std::fmt::Display) {
    println!("    {what}");
    flush();
}

/// Flushes stdout so these lines keep their place among child processes'.
pub fn flush() {
    use std::io::Write as _;
    // A closed stdout is nothing we can report anywhere, so the error is dropped.
    let _ = std::io::stdout().flush();
}

/// Runs the doctor and prints its report; fails when any check fails.
pub fn run(args: &DoctorArgs) -> Result<()> {
    step(format!("checking the deployment at {}", args.site));
    let runtime = tokio::runtime::Runtime::new().context("could not start the tokio runtime")?;
    let report = runtime.block_on(diagnose(&args.site, args.relay.as_deref(), true));
    if !report.manual.is_empty() {
        step("to compare by hand (not visible from outside)");
        for line in &report.manual {
            note(line);
        }
    }
    let failures = report.failures();
    let warnings = report.findings.iter().filter(|f| f.status == Status::Warn).count();
    if failures > 0 {
        bail!("{failures} problem(s) found; each FAIL above says what to change");
    }
    step(if warnings > 0 {
        format!("no problems found ({warnings} warning(s) above)")
    } else {
        "no problems found".to_owned()
    });
    Ok(())
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth a look.
    Warn,
    /// Breaks sign-in.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    /// How it came out.
    pub status: Status,
    /// Which check (`site`, `config`, `cors`, ...).
    pub topic: &'static str,
    /// What was found.
    pub what: String,
    /// What to change, for warnings and failures.
    pub fix: Option<String>,
}

/// Everything the doctor found.
#[derive(Debug, Default)]
pub struct Report {
    /// The findings, in order.
    pub findings: Vec<Finding>,
    /// Things to compare by hand.
    pub manual: Vec<String>,
    /// Print each finding as it comes.
    echo: bool,
}

impl Report {
    fn push(&mut self, status: Status, topic: &'static str, what: String, fix: Option<String>) {
        let finding = Finding { status, topic, what, fix };
        if self.echo {
            print_finding(&finding);
        }
        self.findings.push(finding);
    }

    fn ok(&mut self, topic: &'static str, what: impl Into<String>) {
        self.push(Status::Ok, topic, what.into(), None);
    }

    fn warn(&mut self, topic: &'static str, what: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Warn, topic, what.into(), Some(fix.into()));
    }

    fn fail(&mut self, topic: &'static str, what: impl Into<String>, fix: impl Into<String>) {
        self.push(Status::Fail, topic, what.into(), Some(fix.into()));
    }

    fn add(&mut self, finding: Finding) {
        self.push(finding.status, finding.topic, finding.what, finding.fix);
    }

    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.findings.iter().filter(|f| f.status == Status::Fail).count()
    }

    /// The worst status among the findings of `topic`, if it was checked.
    #[cfg(test)]
    pub fn worst(&self, topic: &str) -> Option<Status> {
        self.findings.iter().filter(|f| f.topic == topic).map(|f| f.status).max()
    }

    /// The fixes suggested for `topic`, joined.
    #[cfg(test)]
    pub fn fixes(&self, topic: &str) -> String {
        self.findings
            .iter()
            .filter(|f| f.topic == topic)
            .filter_map(|f| f.fix.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn print_finding(finding: &Finding) {
    let label = match finding.status {
        Status::Ok => "ok",
        Status::Warn => "warn",
        Status::Fail => "FAIL",
    };
    note(format!("{label:<5} {:<13} {}", finding.topic, finding.what));
    if let Some(fix) = &finding.fix {
        note(format!("{:<19} fix: {fix}", ""));
    }
}

/// The HTTP clients: one that follows redirects (pages, like a browser
/// navigating) and one that doesn't (the relay: a browser's cross-origin
/// POST must not be redirected).
struct Clients {
    follow: Client,
    direct: Client,
}

impl Clients {
    fn new() -> Result<Self> {
        let builder = || {
            Client::builder()
                .user_agent(concat!("oauth-dance-doctor/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(15))
        };
        Ok(Self {
            follow: builder().build().context("could not set up an HTTP client")?,
            direct: builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("could not set up an HTTP client")?,
        })
    }
}

/// An error with its causes, on one line (reqwest's own message is terse).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The page as fetched.
struct Page {
    /// Where the redirects ended.
    url: Url,
    /// Its HTML.
    html: String,
}

/// Runs every check.
pub async fn diagnose(site_text: &str, relay_text: Option<&str>, echo: bool) -> Report {
    let mut report = Report { echo, ..Report::default() };
    let clients = match Clients::new() {
        Ok(clients) => clients,
        Err(error) => {
            report.fail("doctor", format!("{error:#}"), "this is a bug in dance-doctor");
            return report;
        }
    };
    let Ok(site) = Url::parse(site_text.trim()) else {
        report.fail(
            "site",
            format!("`{site_text}` is not a URL"),
            "pass the page's full address, e.g. --site https://user.github.io/repo/",
        );
        return report;
    };
    if let Some(finding) = insecure("site", &site, "the site") {
        report.add(finding);
    }

    let page = fetch_page(&clients, &site, &mut report).await;
    let base = match &page {
        Some(page) => check_app(&clients, page, &mut report).await,
        None => app_base(&site),
    };
    let config = match &page {
        Some(_) => fetch_config(&clients, &base, &mut report).await,
        None => None,
    };
    if page.is_some() {
        check_deep_links(&clients, &base, &mut report).await;
    }

    let relay = choose_relay(relay_text, config.as_ref(), &mut report);
    let origin = deployment::origin(&base);
    if let (Some(page), Some(relay)) = (&page, &relay) {
        check_csp(&page.html, &origin, relay, config.as_ref(), &mut report);
    }
    let redirect_uri = base.to_string();
    if let Some(relay) = &relay {
        check_relay(&clients, relay, &origin, &redirect_uri, config.as_ref(), &mut report).await;
    }

    report.manual.push(format!(
        "the Bitbucket consumer's Callback URL must be exactly {redirect_uri} (Bitbucket → \
         Workspace settings → OAuth consumers → your consumer → Edit)"
    ));
    if let Some(config) = &config {
        report.manual.push(format!(
            "the relay's DANCE_CLIENT_ID must be the Key in config.json, {}; with another valid \
             consumer every sign-in ends in invalid_grant",
            config.client_id
        ));
    }
    report
}

/// A finding when `url` is neither https nor http on loopback.
fn insecure(topic: &'static str, url: &Url, what: &str) -> Option<Finding> {
    (!deployment::is_secure_url(url)).then(|| Finding {
        status: Status::Fail,
        topic,
        what: format!("{what} {url} is not https"),
        fix: Some(match topic {
            "site" => "serve the site over https: on GitHub Pages turn on Settings → Pages → \
                       Enforce HTTPS; the relay refuses plain-http origins other than loopback"
                .to_owned(),
            _ => "serve the relay over https (a TLS-terminating reverse proxy or platform in \
                  front of it) and put that https address in RELAY_URL"
                .to_owned(),
        }),
    })
}

/// The app's base URL from a page URL: its directory, without query or
/// fragment, by the rule the SPA applies to `document.baseURI`
/// ([`deployment::app_base`]).
fn app_base(page: &Url) -> Url {
    Url::parse(&deployment::app_base(page.as_str())).unwrap_or_else(|_| page.clone())
}

async fn fetch_page(clients: &Clients, site: &Url, report: &mut Report) -> Option<Page> {
    let response = match clients.follow.get(site.clone()).send().await {
        Ok(response) => response,
        Err(error) => {
            report.fail(
                "site",
                format!("{site} does not answer: {}", describe(&error)),
                "check the address; on GitHub Pages the site appears once Settings → Pages → \
                 Source is \"GitHub Actions\" and the Pages workflow has run green",
            );
            return None;
        }
    };
    let url = response.url().clone();
    let status = response.status();
    if !status.is_success() {
        report.fail(
            "site",
            format!("{site} answers {status}"),
            "nothing is published there: check the address (a project site lives at \
             https://USER.github.io/REPO/) and the last run of the Pages workflow",
        );
        return None;
    }
    let html = match response.text().await {
        Ok(html) => html,
        Err(error) => {
            report.fail("site", format!("could not read {url}: {}", describe(&error)), "retry");
            return None;
        }
    };
    if url == *site {
        report.ok("site", format!("{site} answers {status}"));
    } else {
        report.ok("site", format!("{site} answers {status} (after redirects, at {url})"));
        if let Some(finding) = insecure("site", &url, "the page") {
            report.add(finding);
        }
    }
    Some(Page { url, html })
}

/// The files the SPA starts from, as its HTML names them on the
/// `<template id="dance-app">` (see Trunk.toml's `pattern_script`):
/// `data-js` (the wasm-bindgen glue) and `data-wasm`.
fn boot_files(html: &str) -> Option<Vec<String>> {
    let at = html.find("data-wasm=")?;
    let start = html[..at].rfind('<')?;
    let end = html[at..].find('>').map_or(html.len(), |end| at + end);
    let tag = &html[start..end];
    let attribute = |name: &str| -> Option<String> {
        let needle = format!(" {name}=\"");
        let from = tag.find(&needle)? + needle.len();
        tag[from..].split('"').next().map(str::to_owned)
    };
    let files: Vec<String> = ["data-js", "data-wasm"].iter().filter_map(|n| attribute(n)).collect();
    (!files.is_empty()).then_some(files)
}

/// Checks that the page is the SPA and its files load; returns the app's base.
async fn check_app(clients: &Clients, page: &Page, report: &mut Report) -> Url {
    let directory = app_base(&page.url);
    let base = match page::base_href(&page.html) {
        Some(href) => page.url.join(&href).map(|url| app_base(&url)).unwrap_or(directory.clone()),
        None => directory.clone(),
    };
    let Some(files) = boot_files(&page.html) else {
        report.fail(
            "app",
            format!("{} is not the oauth-dance app (no start-up script in its HTML)", page.url),
            "check the address; the Pages workflow publishes the app at the site's root",
        );
        return base;
    };
    let rebuild = format!(
        "the site was built for the path {} but is served at {}: rebuild for this address, \
         `cargo xtask pages --site-url {directory}` (the Pages workflow takes the address from \
         GitHub Pages itself; re-run it after changing the custom domain)",
        base.path(),
        directory.path()
    );
    if !page.url.path().starts_with(base.path()) {
        report.fail(
            "app",
            format!("the page's base {base} is not above the page {}", page.url),
            rebuild,
        );
        return base;
    }
    let mut missing = Vec::new();
    for file in &files {
        let Ok(url) = base.join(file) else {
            missing.push(format!("{file} (not a URL)"));
            continue;
        };
        match clients.follow.get(url.clone()).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => missing.push(format!("{url} ({})", response.status())),
            Err(error) => missing.push(format!("{url} ({})", describe(&error))),
        }
    }
    if missing.is_empty() {
        report.ok("app", format!("the app loads from {base} ({} files)", files.len()));
    } else {
        report.fail("app", format!("the app's files do not load: {}", missing.join(", ")), rebuild);
    }
    base
}

/// The settings of `config.json` the remaining checks use.
#[derive(Debug, Clone)]
struct ConfigJson {
    client_id: String,
    relay_url: Url,
    api_base: Url,
}

async fn fetch_config(clients: &Clients, base: &Url, report: &mut Report) -> Option<ConfigJson> {
    let url = base.join(contract::FILE).ok()?;
    let workflow = "the Pages workflow writes it: set the repository variables \
                    BITBUCKET_CLIENT_ID and RELAY_URL (Settings → Secrets and variables → \
                    Actions → Variables) and re-run it (Actions → Pages → Run workflow); \
                    elsewhere build with `cargo xtask pages` and publish its whole output";
    let response = match clients.follow.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => {
            report.fail("config", format!("{url} does not answer: {}", describe(&error)), "retry");
            return None;
        }
    };
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        report.fail("config", format!("config.json is missing ({url} answers 404)"), workflow);
        return None;
    }
    if !status.is_success() {
        report.fail("config", format!("{url} answers {status}"), workflow);
        return None;
    }
    let text = response.text().await.unwrap_or_default();
    let (config, problems) = check_config(&text);
    for (status, what, fix) in problems {
        report.push(status, "config", what, Some(fix));
    }
    if let Some(config) = &config {
        report.ok(
            "config",
            format!(
                "config.json is valid (client_id {}, relay_url {})",
                config.client_id, config.relay_url
            ),
        );
    }
    config
}

/// Checks `config.json` by the SPA's rules; returns the settings (when usable)
/// and every problem with its fix.
fn check_config(text: &str) -> (Option<ConfigJson>, Vec<(Status, String, String)>) {
    let rebuild = "config.json is written by `cargo xtask pages` (the Pages workflow runs it): \
                   re-run the workflow rather than editing the file";
    let mut problems = Vec::new();
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            let looks_like_html = text.trim_start().starts_with('<');
            problems.push((
                Status::Fail,
                format!(
                    "config.json is not JSON ({error}){}",
                    if looks_like_html {
                        "; the server answered with an HTML page, so the file is probably missing"
                    } else {
                        ""
                    }
                ),
                rebuild.to_owned(),
            ));
            return (None, problems);
        }
    };
    let Some(object) = value.as_object() else {
        problems.push((
            Status::Fail,
            "config.json is not a JSON object".to_owned(),
            rebuild.to_owned(),
        ));
        return (None, problems);
    };
    for key in object.keys() {
        if Field::from_name(key).is_none() {
            let hint = Field::suggest(key)
                .map(|field| format!(" (did you mean `{}`?)", field.name()))
                .unwrap_or_default();
            problems.push((
                Status::Fail,
                format!("config.json has an unknown setting `{key}`{hint}, which the app refuses"),
                rebuild.to_owned(),
            ));
        }
    }
    let client_id_fix = "set the repository variable BITBUCKET_CLIENT_ID to your Bitbucket \
                         consumer's Key and re-run the Pages workflow";
    let client_id = match object.get(Field::ClientId.name()).and_then(|v| v.as_str()) {
        Some(id) => match contract::check_client_id(id) {
            Ok(()) => Some(id.to_owned()),
            Err(problem) => {
                let what = match problem {
                    ClientIdProblem::Empty => "empty".to_owned(),
                    ClientIdProblem::Spaces => {
                        format!("{id:?}, with spaces or control characters, which the app refuses")
                    }
                };
                problems.push((
                    Status::Fail,
                    format!("client_id in config.json is {what}"),
                    client_id_fix.to_owned(),
                ));
                None
            }
        },
        None => {
            problems.push((
                Status::Fail,
                "client_id in config.json is missing or not a string".to_owned(),
                client_id_fix.to_owned(),
            ));
            None
        }
    };
    let mut url = |field: Field, fix: &str| -> Option<Url> {
        let text = object.get(field.name()).and_then(|v| v.as_str());
        let Some(parsed) = text.and_then(|t| Url::parse(t.trim()).ok()) else {
            problems.push((
                Status::Fail,
                format!("{} in config.json is {}", field.name(), shown(text)),
                fix.to_owned(),
            ));
            return None;
        };
        let wrong: Vec<&str> = contract::check_endpoint(field, &Endpoint::of(&parsed))
            .into_iter()
            .map(|problem| match problem {
                EndpointProblem::PlainHttp => "not https (plain http only works on 127.0.0.1)",
                EndpointProblem::NotHttps => "not an https URL",
                EndpointProblem::Credentials => "has a user name or password",
                EndpointProblem::Fragment => "has a #fragment",
                EndpointProblem::NoTrailingSlash => "does not end with /",
                EndpointProblem::Query => "has a query (?...)",
            })
            .collect();
        if wrong.is_empty() {
            Some(parsed)
        } else {
            problems.push((
                Status::Fail,
                format!("{} in config.json ({parsed}) {}", field.name(), wrong.join(", ")),
                fix.to_owned(),
            ));
            None
        }
    };
    let relay_fix = "set the repository variable RELAY_URL to the relay's https /token address \
                     and re-run the Pages workflow";
    let authorize_url = url(Field::AuthorizeUrl, rebuild);
    let relay_url = url(Field::RelayUrl, relay_fix);
    let api_base = url(Field::ApiBase, rebuild);
    if let Some(authorize) = &authorize_url
        && authorize.as_str() != deployment::BITBUCKET_AUTHORIZE_URL
        && !deployment::is_loopback_url(authorize)
    {
        problems.push((
            Status::Warn,
            format!("authorize_url is {authorize}, not Bitbucket Cloud's"),
            format!(
                "Bitbucket Cloud's is {}; rebuild with `cargo xtask pages`",
                deployment::BITBUCKET_AUTHORIZE_URL
            ),
        ));
    }
    match object.get(Field::Scopes.name()) {
        None => {}
        Some(serde_json::Value::Array(items)) => {
            for item in items {
                match item.as_str() {
                    Some(scope) if contract::is_known_scope(scope) => {}
                    Some(scope) => problems.push((
                        Status::Fail,
                        format!(
                            "scopes in config.json lists \"{scope}\", which is not a Bitbucket \
                             scope: the app refuses it"
                        ),
                        rebuild.to_owned(),
                    )),
                    None => problems.push((
                        Status::Fail,
                        format!("scopes in config.json has an entry that is not a string: {item}"),
                        rebuild.to_owned(),
                    )),
                }
            }
            for needed in contract::APP_SCOPES {
                if !items.iter().any(|item| item.as_str() == Some(needed)) {
                    problems.push((
                        Status::Warn,
                        format!("scopes in config.json lacks \"{needed}\""),
                        "the app needs account and email; rebuild with `cargo xtask pages`"
                            .to_owned(),
                    ));
                }
            }
        }
        Some(_) => problems.push((
            Status::Fail,
            "scopes in config.json is not a list".to_owned(),
            rebuild.to_owned(),
        )),
    }
    let config = match (client_id, authorize_url, relay_url, api_base) {
        (Some(client_id), Some(_), Some(relay_url), Some(api_base)) => {
            Some(ConfigJson { client_id, relay_url, api_base })
        }
        _ => None,
    };
    (config, problems)
}

/// How a missing or odd value is named.
fn shown(value: Option<&str>) -> String {
    match value {
        None => "missing or not a string".to_owned(),
        Some("") => "empty".to_owned(),
        Some(text) => format!("`{text}`, not usable"),
    }
}

/// The relay to check: `--relay` (a bare origin gets `/token`), else
/// config.json's; a disagreement between them is a failure.
fn choose_relay(
    given: Option<&str>,
    config: Option<&ConfigJson>,
    report: &mut Report,
) -> Option<Url> {
    let from_config = config.map(|c| c.relay_url.clone());
    let Some(text) = given.map(str::trim).filter(|t| !t.is_empty()) else {
        if from_config.is_none() {
            report.fail(
                "relay",
                "no relay to check: config.json has no usable relay_url",
                "fix config.json (above), or pass --relay https://relay.example.com/token",
            );
        }
        return from_config;
    };
    let mut relay = match Url::parse(text) {
        Ok(url) => url,
        Err(_) => {
            report.fail(
                "relay",
                format!("`{text}` is not a URL"),
                "pass --relay https://relay.example.com/token",
            );
            return None;
        }
    };
    if relay.path() == "/" {
        relay.set_path("/token");
    }
    if let Some(configured) = &from_config
        && *configured != relay
    {
        report.fail(
            "config",
            format!("config.json sends the app to the relay {configured}, not {relay}"),
            format!(
                "set the repository variable RELAY_URL to {relay} and re-run the Pages \
                 workflow (or, if {configured} is right, check that one with --relay)"
            ),
        );
    }
    Some(relay)
}

/// The page's CSP must let it call the relay and the API.
fn check_csp(
    html: &str,
    page_origin: &str,
    relay: &Url,
    config: Option<&ConfigJson>,
    report: &mut Report,
) {
    let Some(sources) = page::csp_sources(html, "connect-src") else {
        report.warn(
            "csp",
            "the page has no Content-Security-Policy with connect-src",
            "rebuild with `cargo xtask pages`, which keeps the app's policy and names the relay in it",
        );
        return;
    };
    let mut needed = vec![("the relay", deployment::origin(relay))];
    if let Some(config) = config {
        needed.push(("the API", deployment::origin(&config.api_base)));
    }
    let mut blocked = Vec::new();
    for (what, origin) in needed {
        let allowed = |source: &String| {
            source == &origin || source == "*" || (source == "'self'" && origin == page_origin)
        };
        if !sources.iter().any(allowed) {
            blocked.push(format!("{what} ({origin})"));
        }
    }
    if blocked.is_empty() {
        report.ok("csp", format!("the page may call {}", sources.join(" ")));
    } else {
        report.fail(
            "csp",
            format!(
                "the page's Content-Security-Policy blocks {}: connect-src is {}",
                blocked.join(" and "),
                sources.join(" ")
            ),
            "the policy is written from RELAY_URL at build time: re-run the Pages workflow after \
             changing RELAY_URL (or rebuild with `cargo xtask pages --relay-url ...`)",
        );
    }
}

async fn check_deep_links(clients: &Clients, base: &Url, report: &mut Report) {
    let Ok(url) = base.join("doctor-check/deep/link?x=1") else { return };
    let response = match clients.follow.get(url.clone()).send().await {
        Ok(response) => response,
        Err(error) => {
            report.warn("deep-links", format!("{url}: {}", describe(&error)), "retry");
            return;
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if boot_files(&body).is_some() {
        report.ok("deep-links", format!("{} loads the app ({status})", url.path()));
        return;
    }
    let published = match base.join("404.html") {
        Ok(page) => clients
            .follow
            .get(page)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success()),
        Err(_) => false,
    };
    let fix = if published {
        "404.html is there but this host does not answer unknown paths with it (GitHub Pages \
         does): configure the host to serve 404.html, or index.html, for paths that are not files"
    } else {
        "publish 404.html, a copy of index.html (`cargo xtask pages` writes it): GitHub Pages \
         answers unknown paths with it, so deep links load the app"
    };
    report.warn("deep-links", format!("{} does not load the app ({status})", url.path()), fix);
}

async fn check_relay(
    clients: &Clients,
    relay: &Url,
    origin: &str,
    redirect_uri: &str,
    config: Option<&ConfigJson>,
    report: &mut Report,
) {
    if let Some(finding) = insecure("relay", relay, "the relay") {
        report.add(finding);
    }
    if !check_health(clients, relay, report).await {
        return;
    }
    if !check_preflight(clients, relay, origin, report).await {
        return;
    }
    // One key for both probes, like one browser.
    let key = ProofKey::new();
    if probe_exchange(clients, relay, &key, origin, redirect_uri, config, report).await {
        probe_refresh(clients, relay, &key, origin, report).await;
    }
}

/// `GET /healthz` beside the token endpoint; returns whether it answered `ok`.
async fn check_health(clients: &Clients, relay: &Url, report: &mut Report) -> bool {
    let Ok(url) = relay.join("healthz") else { return false };
    let origin = deployment::origin(relay);
    match clients.direct.get(url.clone()).send().await {
        Err(error) => {
            report.fail(
                "healthz",
                format!("the relay does not answer at {url}: {}", describe(&error)),
                format!(
                    "start the relay (systemctl status dance-relay, docker ps) and make sure \
                     {origin} reaches it from the internet (DNS, firewall, reverse proxy)"
                ),
            );
            false
        }
        Ok(response) if response.status().is_redirection() => {
            let to = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_owned();
            report.fail(
                "healthz",
                format!("{url} redirects ({}) to {to}", response.status()),
                "use the relay's final https address in RELAY_URL: a browser's token request must \
                 not be redirected",
            );
            false
        }
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::OK && body.trim() == "ok" {
                report.ok("healthz", format!("{url} answers ok"));
                true
            } else {
                report.fail(
                    "healthz",
                    format!("{url} answers {status}, not the relay's \"ok\""),
                    "is RELAY_URL the relay's /token address? /healthz must be served beside it \
                     (a proxy with a path prefix must forward both)",
                );
                false
            }
        }
    }
}

/// The CORS preflight of the SPA's token request; returns whether it passed.
async fn check_preflight(
    clients: &Clients,
    relay: &Url,
    origin: &str,
    report: &mut Report,
) -> bool {
    let request = clients
        .direct
        .request(Method::OPTIONS, relay.clone())
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type");
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            report.fail(
                "cors",
                format!("the preflight to {relay} failed: {}", describe(&error)),
                "retry",
            );
            return false;
        }
    };
    let status = response.status();
    let allow_origin = header_text(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN);
    let allow_methods = header_text(&response, header::ACCESS_CONTROL_ALLOW_METHODS);
    let body = response.text().await.unwrap_or_default();
    let origins_fix = format!(
        "add {origin} to DANCE_ALLOWED_ORIGINS on the relay (exactly that: scheme and host, no \
         path, no trailing slash; comma-separated with others) and restart it"
    );
    if status == StatusCode::FORBIDDEN {
        report.fail(
            "cors",
            format!("the relay refuses the origin {origin}{}", described(&body)),
            origins_fix,
        );
        return false;
    }
    if !status.is_success() {
        report.fail(
            "cors",
            format!("the preflight OPTIONS {relay} answers {status}{}", described(&body)),
            "is RELAY_URL the relay's /token address? A proxy in front of the relay must pass \
             OPTIONS through to it",
        );
        return false;
    }
    let methods_ok = allow_methods.to_ascii_uppercase().split(',').any(|m| m.trim() == "POST");
    if allow_origin != origin || !methods_ok {
        report.fail(
            "cors",
            format!(
                "the preflight answer allows origin `{allow_origin}` and methods `{allow_methods}`, \
                 not {origin} with POST"
            ),
            format!(
                "{origins_fix}; if it is listed already, a proxy in front of the relay is \
                 answering OPTIONS itself or rewriting the CORS headers"
            ),
        );
        return false;
    }
    report.ok("cors", format!("the relay allows POST /token from {origin}"));
    true
}

fn header_text(response: &reqwest::Response, name: header::HeaderName) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// `: description` from an RFC 6749 error body, or nothing.
fn described(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match (value["error"].as_str(), value["error_description"].as_str()) {
        (Some(error), Some(description)) => format!(" ({error}: {description})"),
        (Some(error), None) => format!(" ({error})"),
        _ => String::new(),
    }
}

/// The dummy code sent by the probe; no Bitbucket issues such a code.
const PROBE_CODE: &str = "oauth-dance-doctor-probe";

/// The dummy refresh token of the probe refresh: neither a token Bitbucket
/// issued nor one a relay sealed.
const PROBE_REFRESH_TOKEN: &str = "oauth-dance-doctor-probe";

/// What to change when a relay refuses a proof made right now for the URL
/// the doctor called: the relay compares the proof's URL with the `Host`
/// header it receives and its own path, and its time with its own clock.
const PROOF_FIX: &str = "the relay checks each request's DPoP proof against the Host header it \
    receives, its path /token (under any prefix) and its own clock. A reverse proxy in front of \
    it must pass the Host header through (nginx: `proxy_set_header Host $host;`, Caddy does by \
    default), and the clocks of the relay's machine and of this one must be right to within a \
    minute (NTP)";

/// What to change when refresh tokens pass through unsealed.
const UNBOUND_FIX: &str = "set DANCE_SEALING_KEY on the relay (`dance-relay keygen` prints one; \
    Worker: `wrangler secret put DANCE_SEALING_KEY`, or the repository secret \
    DANCE_SEALING_KEY the relay's workflow deploys) and restart it";

/// A DPoP proof for a `POST` to `relay`, made now.
fn proof_for(key: &ProofKey, relay: &Url) -> String {
    let mut htu = relay.clone();
    htu.set_query(None);
    htu.set_fragment(None);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    key.proof(htu.as_str(), now)
}

/// A token request like the SPA's: a form with a fresh proof in its `dpop`
/// field, from the site's origin.
async fn post_token(
    clients: &Clients,
    relay: &Url,
    key: &ProofKey,
    origin: &str,
    fields: &[(&str, &str)],
) -> reqwest::Result<reqwest::Response> {
    let proof = proof_for(key, relay);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .append_pair(dance_protocol::dpop::FIELD, &proof)
        .finish();
    clients
        .direct
        .post(relay.clone())
        .header(header::ORIGIN, origin)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
}

/// A probe exchange: dummy code, the SPA's redirect URI, the site's origin,
/// a proof. Returns whether the relay read it (answered, and took the
/// origin and the proof), so that a probe refresh can tell more.
async fn probe_exchange(
    clients: &Clients,
    relay: &Url,
    key: &ProofKey,
    origin: &str,
    redirect_uri: &str,
    config: Option<&ConfigJson>,
    report: &mut Report,
) -> bool {
    // A verifier of the RFC 7636 shape, so the relay's form check passes.
    let verifier = format!("doctor-{}", "v".repeat(43 - "doctor-".len()));
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", PROBE_CODE),
        ("redirect_uri", redirect_uri),
        ("code_verifier", &verifier),
    ];
    let response = match post_token(clients, relay, key, origin, &fields).await {
        Ok(response) => response,
        Err(error) => {
            report.fail(
                "redirect-uri",
                format!("the probe exchange failed: {}", describe(&error)),
                "retry; if it keeps failing, check the relay's log",
            );
            return false;
        }
    };
    let status = response.status().as_u16();
    let allow_origin = header_text(&response, header::ACCESS_CONTROL_ALLOW_ORIGIN);
    let retry_after = header_text(&response, header::RETRY_AFTER);
    let body = response.text().await.unwrap_or_default();
    if status != 403 && allow_origin != origin {
        report.fail(
            "cors",
            format!(
                "the relay's answer to POST /token lacks Access-Control-Allow-Origin: {origin}"
            ),
            "the browser could not read it: a proxy in front of the relay must pass the relay's \
             CORS headers through",
        );
    }
    let client_id = config.map(|c| c.client_id.as_str());
    let finding = classify_exchange(status, &body, &retry_after, origin, redirect_uri, client_id);
    let read = !matches!(finding.topic, "cors" | "dpop");
    report.add(finding);
    read
}

/// A probe refresh: a dummy refresh token with a valid proof. Only a relay
/// that seals refresh tokens refuses it without asking Bitbucket.
async fn probe_refresh(
    clients: &Clients,
    relay: &Url,
    key: &ProofKey,
    origin: &str,
    report: &mut Report,
) {
    let fields = [("grant_type", "refresh_token"), ("refresh_token", PROBE_REFRESH_TOKEN)];
    match post_token(clients, relay, key, origin, &fields).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = header_text(&response, header::RETRY_AFTER);
            let body = response.text().await.unwrap_or_default();
            report.add(classify_refresh(status, &body, &retry_after));
        }
        Err(error) => report.warn(
            "sealing",
            format!("the probe refresh failed: {}", describe(&error)),
            "run the doctor again; if it keeps failing, check the relay's log",
        ),
    }
}

/// What the relay's answer to the probe refresh says about sealing.
fn classify_refresh(status: u16, body: &str, retry_after: &str) -> Finding {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let error = value["error"].as_str().unwrap_or_default();
    let why = value["reason"].as_str();
    let detail = described(body);
    let finding =
        |status, topic, what: String, fix: Option<String>| Finding { status, topic, what, fix };
    match status {
        400 if error == "invalid_grant" && why == Some(reason::NOT_SEALED) => finding(
            Status::Ok,
            "sealing",
            "refresh tokens are sealed and bound to the browser's key (the relay refused the \
             doctor's dummy refresh token itself)"
                .to_owned(),
            None,
        ),
        400 | 401 if error == "invalid_dpop_proof" => finding(
            Status::Fail,
            "dpop",
            format!("the relay refuses a DPoP proof made just now for its URL{detail}"),
            Some(PROOF_FIX.to_owned()),
        ),
        429 | 503 => finding(
            Status::Warn,
            "sealing",
            format!(
                "could not tell whether refresh tokens are sealed: the relay answered \
                 {status}{detail}"
            ),
            Some(format!(
                "run the doctor again in {} s",
                if retry_after.is_empty() { "60" } else { retry_after }
            )),
        ),
        _ => finding(
            Status::Warn,
            "sealing",
            format!(
                "refresh tokens are unbound: anyone who lifts one can refresh from anywhere (the \
                 relay did not refuse the doctor's dummy refresh token itself: {status}{detail})"
            ),
            Some(UNBOUND_FIX.to_owned()),
        ),
    }
}

/// What the relay's answer to the probe exchange means.
fn classify_exchange(
    status: u16,
    body: &str,
    retry_after: &str,
    origin: &str,
    redirect_uri: &str,
    client_id: Option<&str>,
) -> Finding {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let error = value["error"].as_str().unwrap_or_default();
    let detail = described(body);
    let finding =
        |status, topic, what: String, fix: Option<String>| Finding { status, topic, what, fix };
    match status {
        400 | 401 if error == "invalid_dpop_proof" => finding(
            Status::Fail,
            "dpop",
            format!(
                "the relay refuses a DPoP proof made just now for its URL{detail}, so it would \
                 refuse every sign-in"
            ),
            Some(PROOF_FIX.to_owned()),
        ),
        400 if error == "invalid_request"
            && value["reason"].as_str() == Some(reason::REDIRECT_URI_NOT_ALLOWED) =>
        {
            finding(
                Status::Fail,
                "redirect-uri",
                format!("the relay refuses the redirect URI {redirect_uri}{detail}"),
                Some(format!(
                    "add {redirect_uri} to DANCE_ALLOWED_REDIRECT_URIS on the relay (byte for byte, \
                 trailing slash included) and restart it; the Bitbucket consumer's Callback URL \
                 must be the same"
                )),
            )
        }
        400 if !error.is_empty() => finding(
            Status::Ok,
            "redirect-uri",
            format!(
                "the relay accepts the redirect URI {redirect_uri} and forwards exchanges \
                 (Bitbucket refused the doctor's dummy code{detail}, as it should)"
            ),
            None,
        ),
        401 => finding(
            Status::Fail,
            "relay-credentials",
            format!("Bitbucket rejects the relay's client credentials{detail}"),
            Some(format!(
                "set DANCE_CLIENT_ID on the relay to the consumer's Key{} and its secret \
                 (DANCE_CLIENT_SECRET_FILE) to the consumer's Secret, then restart it",
                client_id.map(|id| format!(" ({id}, as in config.json)")).unwrap_or_default()
            )),
        ),
        403 => finding(
            Status::Fail,
            "cors",
            format!("the relay refuses the origin {origin}{detail}"),
            Some(format!("add {origin} to DANCE_ALLOWED_ORIGINS on the relay and restart it")),
        ),
        429 => finding(
            Status::Warn,
            "redirect-uri",
            format!("the relay is rate limiting this address{detail}"),
            Some(format!(
                "run the doctor again in {} s",
                if retry_after.is_empty() { "60" } else { retry_after }
            )),
        ),
        502 | 504 => finding(
            Status::Fail,
            "relay-upstream",
            format!("the relay could not get an answer from the token endpoint ({status}){detail}"),
            Some(
                "check DANCE_TOKEN_URL on the relay (default \
                 https://bitbucket.org/site/oauth2/access_token) and that its host may make \
                 outbound https requests"
                    .to_owned(),
            ),
        ),
        503 => finding(
            Status::Warn,
            "redirect-uri",
            format!("the relay is busy (503){detail}"),
            Some(
                "run the doctor again shortly; if it persists raise DANCE_MAX_CONCURRENCY"
                    .to_owned(),
            ),
        ),
        _ => finding(
            Status::Fail,
            "redirect-uri",
            format!("the probe exchange got {status}{detail}, which a relay never sends for it"),
            Some("is RELAY_URL the relay's /token address? Check the relay's log".to_owned()),
        ),
    }
}

#[cfg(test)]
mod tests;
