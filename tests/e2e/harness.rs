//! The stack every scenario runs against, and the browser that drives it.
//!
//! [`scenario`] is the entry point of each test: it waits for a browser
//! slot, starts a [`Stack`] (fakebucket, the relay and a static server for
//! the trunk-built SPA, all in-process on `127.0.0.1:0`, plus a ChromeDriver
//! with a fresh headless Chromium profile), runs the test body, saves a
//! screenshot of the last screen under `target/e2e/<name>.png`, and tears
//! everything down. A failing body gets the page's address, its visible text
//! and fakebucket's counters added to its error, so a red run says what the
//! browser showed.
//!
//! Waiting is always polling for something observable (an element in the
//! DOM, a counter in fakebucket) up to [`TIMEOUT`], never a fixed sleep.

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use axum::Router;
use axum::extract::{Request, State};
use axum::handler::HandlerWithoutStateExt as _;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use dance_protocol::deployment::config::Settings;
use dance_relay_worker::workerd::{Installation, Workerd};
use fakebucket::Counters;
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};
use tower_http::services::ServeDir;
use url::Url;

/// How long any wait may take before the test fails. Generous on purpose:
/// it only bounds a hang, it never decides an outcome on a healthy machine.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// How often polled conditions (counters, DOM) are checked.
const POLL: Duration = Duration::from_millis(50);

/// The desktop window size of every test and of the desktop screenshots.
pub(crate) const DESKTOP: (u32, u32) = (1280, 800);

/// The phone-sized window of the narrow screenshots.
pub(crate) const PHONE: (u32, u32) = (390, 844);

/// The display name of fakebucket's first user, preselected on its consent page.
pub(crate) const ADA: &str = "Ada Lovelace";

/// The OAuth consumer fakebucket registers and the relay uses.
const CLIENT_ID: &str = fakebucket::DEMO_KEY;

/// The relay and fakebucket origins of the demo, which the SPA's
/// `index.html` names in its Content-Security-Policy.
const DEMO_RELAY_ORIGIN: &str = "http://127.0.0.1:8787";
const DEMO_FAKEBUCKET_ORIGIN: &str = "http://127.0.0.1:9090";

/// The flags of the headless Chromium driven by ChromeDriver besides the
/// offline ones ([`crate::chromium::OFFLINE_FLAGS`]): no
/// scrollbars in the screenshots, and one language. `--user-data-dir` and
/// `--window-size` are added per browser.
const CHROMIUM_FLAGS: [&str; 3] = ["--headless", "--hide-scrollbars", "--lang=en-US"];

// ---- running a scenario ----------------------------------------------------

/// Where the SPA is served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Mount {
    /// At the root, `http://127.0.0.1:PORT/`, from `DANCE_E2E_DIST`.
    #[default]
    Root,
    /// Under `/repo/`, as on GitHub Pages, from `DANCE_E2E_DIST_SUBPATH`
    /// (a build made with `trunk build --public-url /repo/`).
    SubPath,
}

impl Mount {
    fn dist_variable(self) -> &'static str {
        match self {
            Mount::Root => "DANCE_E2E_DIST",
            Mount::SubPath => "DANCE_E2E_DIST_SUBPATH",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Mount::Root => "/",
            Mount::SubPath => "/repo/",
        }
    }
}

/// Runs one end-to-end test: `body` gets a fresh [`Stack`]; afterwards the
/// last screen is saved as `target/e2e/<name>.png` and the stack is torn
/// down. Panics (failing the test) with a diagnosis when anything fails.
pub(crate) async fn scenario(
    name: &str,
    mount: Mount,
    body: impl AsyncFnOnce(&mut Stack) -> Result<()>,
) {
    scenario_with(name, mount, |_| {}, body).await;
}

/// Which relay a scenario's stack runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RelayTarget {
    /// `dance-relay`, in-process.
    #[default]
    Native,
    /// `dance-relay-worker` in a local workerd (`DANCE_WORKERD` and
    /// `DANCE_WORKER_BUILD`, which `cargo xtask test` sets).
    Worker,
}

/// [`scenario`] with the given relay.
pub(crate) async fn scenario_on(
    name: &str,
    target: RelayTarget,
    body: impl AsyncFnOnce(&mut Stack) -> Result<()>,
) {
    run_scenario(name, Mount::Root, target, |_| {}, body).await;
}

/// [`scenario`] with fakebucket's consumer changed first by `consumer`
/// (its permissions, say).
pub(crate) async fn scenario_with(
    name: &str,
    mount: Mount,
    consumer: impl FnOnce(&mut fakebucket::Consumer),
    body: impl AsyncFnOnce(&mut Stack) -> Result<()>,
) {
    run_scenario(name, mount, RelayTarget::Native, consumer, body).await;
}

async fn run_scenario(
    name: &str,
    mount: Mount,
    target: RelayTarget,
    consumer: impl FnOnce(&mut fakebucket::Consumer),
    body: impl AsyncFnOnce(&mut Stack) -> Result<()>,
) {
    let _slot = browser_slot().await;
    let started = Instant::now();
    let mut stack = match Stack::start(mount, target, consumer).await {
        Ok(stack) => stack,
        Err(error) => panic!("{name}: the stack did not start: {error:#}"),
    };
    let outcome = body(&mut stack).await;
    let shot = stack.screenshot(name).await;
    let diagnosis = match &outcome {
        Ok(()) => String::new(),
        Err(_) => stack.diagnose().await,
    };
    stack.close().await;
    if let Err(error) = outcome {
        panic!("{name} failed: {error:#}\n{diagnosis}");
    }
    if let Err(error) = shot {
        panic!("{name}: could not save its screenshot: {error:#}");
    }
    eprintln!("{name}: passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// At most this many browsers run at once (`DANCE_E2E_BROWSERS`, default 2):
/// headless Chromium is heavy and the machines have two cores.
async fn browser_slot() -> SemaphorePermit<'static> {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let n =
            std::env::var("DANCE_E2E_BROWSERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2usize);
        Semaphore::new(n.max(1))
    });
    // The semaphore is never closed, so acquiring cannot fail.
    slots.acquire().await.unwrap_or_else(|_| unreachable!("the browser semaphore is never closed"))
}

/// The directory of a trunk-built SPA, from `variable`, checked.
fn dist_dir(variable: &str) -> Result<PathBuf> {
    let Some(dir) = std::env::var_os(variable) else {
        bail!(
            "{variable} is not set. The end-to-end suite serves a trunk-built SPA: run it with \
             `cargo xtask test`, which builds one and sets {variable}, or build with \
             `trunk build --release{}` and set {variable} to the absolute path of its output",
            if variable == "DANCE_E2E_DIST_SUBPATH" {
                " --public-url /repo/ --dist <dir>"
            } else {
                ""
            }
        );
    };
    let dir = PathBuf::from(dir);
    ensure!(
        dir.join("index.html").is_file(),
        "{variable}={} has no index.html: point it at the output directory of `trunk build`",
        dir.display()
    );
    Ok(dir)
}

/// `target/e2e/`, where screenshots go.
pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("e2e")
}

// ---- the stack -------------------------------------------------------------

/// fakebucket, the relay, the static server and a browser, for one test.
pub(crate) struct Stack {
    /// The emulated Bitbucket: counters, clock and faults.
    pub(crate) fakebucket: fakebucket::Handle,
    /// The token relay, which a test may stop and start again.
    pub(crate) relay: Relay,
    /// The static server of the SPA.
    pub(crate) site: Site,
    /// The browser.
    pub(crate) browser: Browser,
}

impl Stack {
    async fn start(
        mount: Mount,
        target: RelayTarget,
        tweak: impl FnOnce(&mut fakebucket::Consumer),
    ) -> Result<Self> {
        let dist = dist_dir(mount.dist_variable())?;

        // The static server's port decides the SPA's URL, which fakebucket
        // must know as the consumer's callback: bind it first.
        let site_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the static server")?;
        let site_addr = site_listener.local_addr()?;
        let spa = Url::parse(&format!("http://{site_addr}{}", mount.prefix()))?;
        let origin = spa.origin().ascii_serialization();

        let config = dance_testkit::fakebucket_config(&spa, |consumer| {
            consumer.name = "oauth-dance e2e".to_owned();
            tweak(consumer);
        });
        let fakebucket = dance_testkit::start_fakebucket(config).await?;

        let mut relay_config = dance_testkit::relay_config(&fakebucket, &origin, spa.as_str());
        // As the demo and the deploy examples: refresh tokens sealed and
        // bound to the browser's key.
        relay_config.sealing_keys = vec![dance_relay_core::SealingKey::generate()];
        let relay = Relay::start(target, relay_config).await?;

        // Written by the deployment contract's writer, as `cargo xtask pages` does.
        let spa_config = Settings::new(
            CLIENT_ID,
            fakebucket.authorize_url().as_str(),
            relay.token_url().as_str(),
            fakebucket.api_base().as_str(),
        )
        .to_json();
        // The demo build's CSP names the demo's relay and fakebucket origins;
        // a deployment substitutes its own, and so does this stack.
        let rewrites = [
            (DEMO_RELAY_ORIGIN.to_owned(), origin_of(&relay.token_url())),
            (DEMO_FAKEBUCKET_ORIGIN.to_owned(), origin_of(&fakebucket.url())),
        ];
        let site = Site::start(site_listener, &dist, mount, spa.clone(), spa_config, &rewrites)?;

        let browser = Browser::start().await?;
        Ok(Self { fakebucket, relay, site, browser })
    }

    /// The SPA's base URL (`http://127.0.0.1:PORT/` or `.../repo/`).
    pub(crate) fn spa(&self) -> &Url {
        &self.site.spa
    }

    /// A URL relative to the SPA's base.
    pub(crate) fn spa_join(&self, path: &str) -> Result<Url> {
        Ok(self.site.spa.join(path)?)
    }

    /// fakebucket's counters now.
    pub(crate) fn counters(&self) -> Counters {
        self.fakebucket.counters()
    }

    /// Waits until fakebucket's counters satisfy `ready`, or fails saying
    /// `what` was expected.
    pub(crate) async fn wait_counters(
        &self,
        what: &str,
        ready: impl Fn(&Counters) -> bool,
    ) -> Result<Counters> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let counters = self.counters();
            if ready(&counters) {
                return Ok(counters);
            }
            if Instant::now() > deadline {
                bail!("fakebucket never saw {what}; its counters: {}", show(&counters));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves the current screen as `target/e2e/<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        self.browser.screenshot(name).await
    }

    /// Opens the SPA at `path` (relative to its base) and waits for the
    /// landing page's sign-in button.
    pub(crate) async fn open_landing(&self, path: &str) -> Result<()> {
        self.browser.goto(&self.spa_join(path)?).await?;
        self.browser.wait_id("sign-in").await?;
        Ok(())
    }

    /// From the landing page: presses "Sign in with Bitbucket" and waits
    /// for fakebucket's consent page. Returns the authorize URL the SPA sent
    /// the browser to.
    pub(crate) async fn go_to_consent(&self) -> Result<Url> {
        self.browser.click("sign-in").await?;
        self.browser.wait_id("grant").await?;
        let url = self.browser.url().await?;
        ensure!(
            url.as_str().starts_with(self.fakebucket.authorize_url().as_str()),
            "the consent page is not fakebucket's authorize endpoint: {url}"
        );
        Ok(url)
    }

    /// On the consent page: grants access as the preselected user (Ada).
    pub(crate) async fn grant(&self) -> Result<()> {
        self.browser.click("grant").await
    }

    /// Waits for the profile of the user with this display name.
    pub(crate) async fn wait_profile(&self, display_name: &str) -> Result<()> {
        self.browser.wait_text("display-name", display_name).await?;
        Ok(())
    }

    /// The whole sign-in from the landing page: consent granted as Ada, then
    /// her profile.
    pub(crate) async fn sign_in(&self) -> Result<()> {
        self.go_to_consent().await?;
        self.grant().await?;
        self.wait_profile(ADA).await
    }

    /// What the browser shows and what crossed the wire, for a failure message.
    async fn diagnose(&self) -> String {
        let url = match self.browser.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(error) => format!("(unknown: {error})"),
        };
        let text = match self
            .browser
            .client
            .execute("return document.body ? document.body.innerText : ''", vec![])
            .await
        {
            Ok(Value::String(text)) => text.chars().take(1500).collect(),
            Ok(other) => other.to_string(),
            Err(error) => format!("(unreadable: {error})"),
        };
        // Which refresh locks are held or waited for tells a stuck
        // cross-tab refresh from a slow network.
        let locks = match self
            .browser
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 if (!navigator.locks) { done('(no Web Locks)'); return; }
                 navigator.locks.query().then(
                     (q) => done(JSON.stringify({ held: q.held.map((l) => l.name),
                                                  pending: q.pending.map((l) => l.name) })),
                     (e) => done('(query failed: ' + e + ')'));",
                vec![],
            )
            .await
        {
            Ok(Value::String(locks)) => locks,
            Ok(other) => other.to_string(),
            Err(error) => format!("(unreadable: {error})"),
        };
        format!(
            "  address bar: {url}\n  page text:\n    {}\n  web locks: {locks}\n  fakebucket counters: {}\n  static server requests: {:?}",
            text.replace('\n', "\n    "),
            show(&self.counters()),
            self.site.requests(),
        )
    }

    async fn close(mut self) {
        self.browser.close().await;
        self.relay.stop().await;
        self.site.stop();
        let _ = self.fakebucket.shutdown().await;
    }
}

/// `scheme://host:port` of a URL.
pub(crate) fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Counters as compact JSON.
pub(crate) fn show(counters: &Counters) -> String {
    serde_json::to_string(counters).unwrap_or_else(|e| format!("(unprintable: {e})"))
}

// ---- the relay -------------------------------------------------------------

/// The relay, served in-process (the kit's [`dance_testkit::Relay`]) or in
/// a local workerd. It keeps its address when stopped, so it can come back
/// on the same port (the SPA's `config.json` names it).
pub(crate) struct Relay {
    addr: SocketAddr,
    /// The native relay, with its clock, which a test may move forward.
    native: Option<dance_testkit::Relay>,
    /// For the Worker: its settings, where it is installed, and the running
    /// workerd.
    worker: Option<(dance_relay::Config, Installation, Option<Workerd>)>,
}

impl Relay {
    async fn start(target: RelayTarget, config: dance_relay::Config) -> Result<Self> {
        config.validate().context("the relay configuration of the harness is invalid")?;
        match target {
            RelayTarget::Native => {
                let native = dance_testkit::Relay::start(config).await?;
                Ok(Self { addr: native.addr(), native: Some(native), worker: None })
            }
            RelayTarget::Worker => {
                let installation = Installation::from_env().map_err(|e| anyhow!(e))?;
                let workerd = start_workerd(&installation, &config, None).await?;
                let addr = workerd.addr();
                Ok(Self { addr, native: None, worker: Some((config, installation, Some(workerd))) })
            }
        }
    }

    /// Moves the native relay's clock forward (a Worker runs on workerd's
    /// clock, which a test cannot move).
    pub(crate) fn advance_clock(&self, by: Duration) -> Result<()> {
        let native = self.native.as_ref().context("the Worker's clock cannot be moved")?;
        native.clock().advance(by);
        Ok(())
    }

    /// The relay's token endpoint, `http://127.0.0.1:PORT/token`.
    pub(crate) fn token_url(&self) -> Url {
        // An address with a port always makes a valid URL.
        Url::parse(&format!("http://{}/token", self.addr))
            .unwrap_or_else(|_| unreachable!("a socket address URL"))
    }

    /// Stops serving: the port is closed until [`Relay::restart`].
    pub(crate) async fn stop(&mut self) {
        if let Some((_, _, workerd)) = &mut self.worker {
            // Dropping it stops workerd.
            workerd.take();
        }
        if let Some(native) = &mut self.native {
            // Open keep-alive connections could hold the graceful drain
            // open; nothing of the test is in flight, so cut them.
            native.halt(Duration::from_secs(2)).await;
        }
    }

    /// Serves again on the same address.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        if let Some((config, installation, workerd)) = &mut self.worker {
            let port = Some(self.addr.port());
            *workerd = Some(start_workerd(installation, config, port).await?);
        }
        if let Some(native) = &mut self.native {
            native.restart().await?;
        }
        Ok(())
    }

    /// Whether the port refuses connections now.
    pub(crate) async fn is_down(&self) -> bool {
        tokio::net::TcpStream::connect(self.addr).await.is_err()
    }
}

/// Starts the Worker in workerd with `config`'s settings.
async fn start_workerd(
    installation: &Installation,
    config: &dance_relay::Config,
    port: Option<u16>,
) -> Result<Workerd> {
    let (installation, vars) = (installation.clone(), config.to_vars());
    tokio::task::spawn_blocking(move || Workerd::start(&installation, &vars, port))
        .await?
        .context("starting the Worker relay in workerd")
}

// ---- the static server -----------------------------------------------------

/// The static server of the SPA: `dist/` with a fallback to `index.html`
/// for deep links, and this stack's `config.json`. It records the address
/// of every request, and can hold callbacks (see [`Site::hold_callbacks`]).
pub(crate) struct Site {
    spa: Url,
    shared: Arc<Mutex<SiteState>>,
    stop: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct SiteState {
    /// Path and query of every request, in order.
    requests: Vec<String>,
    /// Answer OAuth callbacks with a placeholder page instead of the SPA.
    hold: bool,
}

/// The placeholder page served for a held callback.
const HELD_PAGE: &str = "<!doctype html><title>held</title>\
    <p id=\"held\">The test harness held this OAuth callback; the app did not see it.</p>";

impl Site {
    /// `rewrites` are applied to `index.html` as it is served: the page's
    /// Content-Security-Policy names the relay and API origins, and this
    /// stack's ports are not the demo's.
    fn start(
        listener: TcpListener,
        dist: &Path,
        mount: Mount,
        spa: Url,
        config: String,
        rewrites: &[(String, String)],
    ) -> Result<Self> {
        let shared = Arc::new(Mutex::new(SiteState::default()));
        let index_path = dist.join("index.html");
        let mut index = std::fs::read_to_string(&index_path)
            .with_context(|| format!("reading {}", index_path.display()))?;
        for (from, to) in rewrites {
            index = index.replace(from.as_str(), to);
        }
        let index = Arc::new(index);
        let index_route = {
            let index = index.clone();
            move || {
                let index = index.clone();
                async move { index_response(&index) }
            }
        };
        // Files that exist are served as they are; anything else (a
        // directory, a deep link such as /some/page) gets index.html.
        let files = ServeDir::new(dist)
            .append_index_html_on_directories(false)
            .fallback(index_route.clone().into_service());
        let config_route = get(move || {
            let config = config.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], config) }
        });
        let router = match mount {
            Mount::Root => Router::new()
                .route("/config.json", config_route)
                .route("/index.html", get(index_route))
                .fallback_service(files),
            Mount::SubPath => {
                // As GitHub Pages does: a path with no file gets the site's
                // 404.html (which `cargo xtask pages` makes a copy of
                // index.html) with status 404, so deep links work only
                // through that page.
                let not_found_path = dist.join("404.html");
                let mut not_found = std::fs::read_to_string(&not_found_path)
                    .with_context(|| format!("reading {}", not_found_path.display()))?;
                for (from, to) in rewrites {
                    not_found = not_found.replace(from.as_str(), to);
                }
                let not_found = Arc::new(not_found);
                let index = index.clone();
                let files = ServeDir::new(dist).append_index_html_on_directories(false).fallback(
                    get(move |uri: axum::http::Uri| {
                        let (index, not_found) = (index.clone(), not_found.clone());
                        async move {
                            // The nested service sees paths below /repo.
                            if uri.path() == "/" {
                                return index_response(&index);
                            }
                            let mut response = index_response(&not_found);
                            *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
                            response
                        }
                    })
                    .into_service(),
                );
                Router::new()
                    .route("/repo/config.json", config_route)
                    .route("/repo/index.html", get(index_route))
                    .nest_service("/repo", files)
                    .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not under /repo/") })
            }
        };
        // gzip for a browser that accepts it, as GitHub Pages sends it, so
        // the browser benchmark times the transfer a deployment would have.
        let router = router
            .layer(tower_http::compression::CompressionLayer::new())
            .layer(middleware::from_fn_with_state(shared.clone(), record));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(error) = served.await {
                eprintln!("the static server stopped with an error: {error}");
            }
        });
        Ok(Self { spa, shared, stop: Some(tx) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SiteState> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Path and query of every request so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// The last OAuth callback the browser brought here (an absolute URL).
    pub(crate) fn last_callback(&self) -> Result<Url> {
        let requests = self.requests();
        let found = requests.iter().rev().find(|r| is_callback(r)).ok_or_else(|| {
            anyhow!("no OAuth callback reached the static server; requests: {requests:?}")
        })?;
        Ok(self.spa.join(found)?)
    }

    /// While on, a request carrying `code` or `error` is answered with a
    /// placeholder page (`#held`) instead of the SPA: the test gets the real
    /// callback URL to tamper with or replay, and the app never sees it.
    pub(crate) fn hold_callbacks(&self, hold: bool) {
        self.state().hold = hold;
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The SPA's page, never cached (each test rewrites it differently).
fn index_response(index: &str) -> Response {
    let mut response = Html(index.to_owned()).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Whether a request path-and-query carries an OAuth callback.
fn is_callback(path_and_query: &str) -> bool {
    let Some((_, query)) = path_and_query.split_once('?') else { return false };
    query.split('&').any(|pair| pair.starts_with("code=") || pair.starts_with("error="))
}

async fn record(
    State(shared): State<Arc<Mutex<SiteState>>>,
    request: Request,
    next: Next,
) -> Response {
    let target = request.uri().path_and_query().map(ToString::to_string).unwrap_or_default();
    let hold = {
        let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(target.clone());
        state.hold && is_callback(&target)
    };
    if hold {
        return Html(HELD_PAGE).into_response();
    }
    next.run(request).await
}

// ---- the browser -----------------------------------------------------------

/// A ChromeDriver of our own driving a headless Chromium with a fresh profile.
pub(crate) struct Browser {
    /// The WebDriver session.
    pub(crate) client: Client,
    driver: Child,
    /// Held only to be deleted when the browser is gone.
    _profile: ProfileDir,
    closed: bool,
}

/// Starts ChromeDriver on a port of its choosing: the process, the port and
/// the rest of its output.
async fn start_chromedriver(
    chromedriver: &str,
) -> Result<(tokio::process::Child, u16, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>)>
{
    // Port 0: ChromeDriver picks a free port and says which.
    let mut driver = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so the browser it starts can be killed
        // with it if a test ends without closing the session.
        .process_group(0)
        .spawn()
        .with_context(|| {
            format!(
                "starting {chromedriver} (install chromium-driver, or set DANCE_E2E_CHROMEDRIVER)"
            )
        })?;
    let stdout = driver.stdout.take().context("ChromeDriver's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let port = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let port: u16 =
                    rest.trim_end_matches('.').trim().parse().context("ChromeDriver's port")?;
                return Ok(port);
            }
        }
        bail!("ChromeDriver exited before it was ready")
    })
    .await
    .context("ChromeDriver did not start in time")??;
    Ok((driver, port, lines))
}

impl Browser {
    async fn start() -> Result<Self> {
        let chromedriver = std::env::var("DANCE_E2E_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chromium =
            std::env::var("DANCE_E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = ProfileDir::new()?;

        // ChromeDriver now and then exits before it is ready (seen on a
        // loaded machine): try it three times.
        let mut attempt = 0;
        let (driver, port, mut lines) = loop {
            attempt += 1;
            match start_chromedriver(&chromedriver).await {
                Ok(started) => break started,
                Err(error) if attempt < 3 => {
                    eprintln!("ChromeDriver did not start ({error:#}); trying again");
                }
                Err(error) => return Err(error),
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut args: Vec<String> = crate::chromium::OFFLINE_FLAGS
            .iter()
            .chain(&CHROMIUM_FLAGS)
            .map(|f| (*f).to_owned())
            .collect();
        args.push(format!("--user-data-dir={}", profile.0.display()));
        args.push(format!("--window-size={},{}", DESKTOP.0, DESKTOP.1));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context(
                "opening a WebDriver session (is Chromium installed at DANCE_E2E_CHROMIUM?)",
            )?;
        let browser = Self { client, driver, _profile: profile, closed: false };
        browser.resize(DESKTOP).await?;
        Ok(browser)
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        self.closed = true;
    }

    /// Sets the size of the page's viewport.
    pub(crate) async fn resize(&self, (width, height): (u32, u32)) -> Result<()> {
        self.client.set_window_size(width, height).await?;
        // The window size includes nothing else in headless mode, but check:
        // the screenshots must have the width they claim.
        let inner =
            self.client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await?;
        let (w, h) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        if (w, h) != (u64::from(width), u64::from(height)) {
            // Headful windows have frames: grow the window by the difference.
            let grown = (2 * width).saturating_sub(u32::try_from(w).unwrap_or(width));
            let grown_h = (2 * height).saturating_sub(u32::try_from(h).unwrap_or(height));
            self.client.set_window_size(grown, grown_h).await?;
        }
        Ok(())
    }

    /// Runs a Chrome DevTools protocol command in this tab (ChromeDriver's
    /// `goog/cdp/execute`), for what WebDriver has no command for.
    pub(crate) async fn cdp(&self, cmd: &'static str, params: Value) -> Result<Value> {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .with_context(|| format!("the DevTools command {cmd}"))
    }

    /// Saves the current screen as `target/e2e/<name>.png`.
    pub(crate) async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Opens `url` in the current tab.
    pub(crate) async fn goto(&self, url: &Url) -> Result<()> {
        self.client.goto(url.as_str()).await.with_context(|| format!("opening {url}"))
    }

    /// Reloads the current page.
    pub(crate) async fn reload(&self) -> Result<()> {
        Ok(self.client.refresh().await?)
    }

    /// The address bar.
    pub(crate) async fn url(&self) -> Result<Url> {
        Ok(self.client.current_url().await?)
    }

    /// Waits for the app's element with this id. The first screens built
    /// into `index.html` (inside `.prerendered`) carry the same ids until
    /// the app replaces them; every lookup by id here means the app's own,
    /// but [`Browser::wait_built_in`].
    pub(crate) async fn wait_id(&self, id: &str) -> Result<Element> {
        self.wait_css(&app_element(id), &format!("#{id}")).await
    }

    /// Waits for the element with this id in the first screens built into
    /// `index.html`, before the app replaces them.
    pub(crate) async fn wait_built_in(&self, id: &str) -> Result<Element> {
        let selector = format!(".prerendered [id=\"{id}\"]");
        self.wait_css(&selector, &format!("the built-in #{id}")).await
    }

    async fn wait_css(&self, selector: &str, what: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(TIMEOUT)
            .every(POLL)
            .for_element(Locator::Css(selector))
            .await
            .with_context(|| format!("waiting for {what}"))
    }

    /// Waits for an element matching an XPath expression.
    pub(crate) async fn wait_xpath(&self, xpath: &str, what: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(TIMEOUT)
            .every(POLL)
            .for_element(Locator::XPath(xpath))
            .await
            .with_context(|| format!("waiting for {what}"))
    }

    /// Waits until the element with this id shows `text` (a substring).
    pub(crate) async fn wait_text(&self, id: &str, text: &str) -> Result<Element> {
        let xpath = format!(
            "//*[@id={}][contains(normalize-space(.), {})]{NOT_BUILT_IN}",
            xpath_literal(id),
            xpath_literal(text)
        );
        self.wait_xpath(&xpath, &format!("#{id} to show {text:?}")).await
    }

    /// Waits until one of these ids is in the page and says which.
    pub(crate) async fn wait_any(&self, ids: &[&str]) -> Result<String> {
        let condition: Vec<String> =
            ids.iter().map(|id| format!("@id={}", xpath_literal(id))).collect();
        let xpath = format!("//*[{}]{NOT_BUILT_IN}", condition.join(" or "));
        let element = self.wait_xpath(&xpath, &format!("one of {ids:?}")).await?;
        Ok(element.attr("id").await?.unwrap_or_default())
    }

    /// Waits for the problem view of this kind (`data-kind`), returning its title.
    pub(crate) async fn wait_problem(&self, kind: &str) -> Result<String> {
        let xpath = format!("//*[@id='problem'][@data-kind={}]", xpath_literal(kind));
        self.wait_xpath(&xpath, &format!("the problem view of kind {kind:?}")).await?;
        self.text("problem-title").await
    }

    /// Waits until a script returns `true`, failing with `what` otherwise.
    pub(crate) async fn wait_js(&self, script: &str, what: &str) -> Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.js(script).await? == Value::Bool(true) {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "waited in vain for {what}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether an element with this id is in the page now (no waiting).
    pub(crate) async fn has(&self, id: &str) -> Result<bool> {
        match self.client.find(Locator::Css(&app_element(id))).await {
            Ok(_) => Ok(true),
            Err(CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::NoSuchElement =>
            {
                Ok(false)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The visible text of the element with this id (which must be there).
    pub(crate) async fn text(&self, id: &str) -> Result<String> {
        let element = self
            .client
            .find(Locator::Css(&app_element(id)))
            .await
            .with_context(|| format!("finding #{id}"))?;
        Ok(element.text().await?.trim().to_owned())
    }

    /// Clicks the element with this id once it is there.
    pub(crate) async fn click(&self, id: &str) -> Result<()> {
        let element = self.wait_id(id).await?;
        element.click().await.with_context(|| format!("clicking #{id}"))
    }

    /// Presses and releases one key, sent to whatever has the focus.
    pub(crate) async fn press(&self, key: Key) -> Result<()> {
        let key: char = key.into();
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(actions).await?;
        Ok(())
    }

    /// The id of the focused element ("" when it has none).
    pub(crate) async fn focused_id(&self) -> Result<String> {
        let id = self
            .client
            .execute("return document.activeElement ? document.activeElement.id : ''", vec![])
            .await?;
        Ok(id.as_str().unwrap_or_default().to_owned())
    }

    /// Presses Tab until the element with this id has the focus (at most
    /// `limit` presses), as a keyboard user would.
    pub(crate) async fn tab_to(&self, id: &str, limit: usize) -> Result<()> {
        let mut seen = Vec::new();
        for _ in 0..limit {
            self.press(Key::Tab).await?;
            let focused = self.focused_id().await?;
            if focused == id {
                return Ok(());
            }
            seen.push(focused);
        }
        bail!(
            "#{id} never got the focus in {limit} presses of Tab; the focus went through {seen:?}"
        )
    }

    /// Runs a script in the page and returns its value.
    pub(crate) async fn js(&self, script: &str) -> Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Every `sessionStorage` key of the page's origin, with its value.
    pub(crate) async fn session_storage(&self) -> Result<Vec<(String, String)>> {
        self.storage("sessionStorage").await
    }

    /// Every `localStorage` key of the page's origin, with its value.
    pub(crate) async fn local_storage(&self) -> Result<Vec<(String, String)>> {
        self.storage("localStorage").await
    }

    async fn storage(&self, which: &str) -> Result<Vec<(String, String)>> {
        let script = format!(
            "const s = window.{which}; const out = []; \
             for (let i = 0; i < s.length; i++) {{ const k = s.key(i); out.push([k, s.getItem(k)]); }} return out;"
        );
        let value = self.js(&script).await?;
        let pairs = value.as_array().cloned().unwrap_or_default();
        Ok(pairs
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap_or_default().to_owned(),
                    p[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // A test ended without closing the session: kill ChromeDriver's
            // process group (ChromeDriver and the Chromium it started).
            if let Some(pid) = self.driver.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A fresh, empty Chromium profile directory, deleted on drop.
struct ProfileDir(PathBuf);

impl ProfileDir {
    fn new() -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "dance-e2e-profile-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A string as an XPath 1.0 literal (which has no escapes: pick the quote).
fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

// ---- steps every scenario shares ---------------------------------------------

/// The query parameters of a URL, decoded.
pub(crate) fn query_pairs(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

/// Fails unless the address bar is free of every OAuth callback parameter.
pub(crate) fn ensure_clean_address(url: &Url) -> Result<()> {
    let leaked: Vec<String> = query_pairs(url)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| matches!(k.as_str(), "code" | "state" | "error" | "error_description"))
        .collect();
    ensure!(leaked.is_empty(), "the address bar still carries {leaked:?}: {url}");
    ensure!(
        url.fragment().is_none_or(|f| !f.contains("token")),
        "the address bar carries a token: {url}"
    );
    Ok(())
}

/// A Chrome DevTools protocol command sent through ChromeDriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// A CSS selector for the app's element with this id: not one of the first
/// screens built into `index.html`, which carry the same ids until the app
/// has rendered its own.
fn app_element(id: &str) -> String {
    format!("[id=\"{id}\"]:not(.prerendered *)")
}

/// An XPath predicate with the same meaning as [`app_element`]'s `:not`.
const NOT_BUILT_IN: &str =
    "[not(ancestor::*[contains(concat(' ', normalize-space(@class), ' '), ' prerendered ')])]";
