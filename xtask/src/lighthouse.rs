//! Lighthouse's view of the SPA: `cargo xtask bench lighthouse`, which is
//! also the last step of `cargo xtask bench browser`.
//!
//! - Lighthouse itself comes from npm, pinned exactly in
//!   `tools/lighthouse/package.json` and locked with integrity hashes in
//!   `tools/lighthouse/package-lock.json`. It is installed on first use, by
//!   the bench and nothing else ([`setup::ensure_npm_lockfile`]: `npm ci
//!   --ignore-scripts` into `tools/lighthouse/node_modules`, stamped with the
//!   lockfile's SHA-256), apart from the build's npm tools in `tools/`. No
//!   package of that lockfile has an install script.
//! - The site is a copy of the release build (`target/bench/lighthouse/site`)
//!   served by `cargo xtask demo --no-build --dist <copy>` as a child process,
//!   on free loopback ports: the demo's static server (gzip, as GitHub Pages),
//!   fakebucket and the relay, with `config.json` and the page's CSP pointed
//!   at them. `dist/` itself is left as the build made it.
//! - Two pages: the landing page (the site's base URL) and the callback page
//!   (the base URL with `?code=...&state=...`, as Bitbucket sends a person
//!   back, with a made-up code and state: no sign-in was started in that
//!   browser profile, so the app finds none waiting and shows its plain-words
//!   problem without any exchange). Each is audited [`RUNS`] times,
//!   alternating, each run in a fresh headless Chromium ([`chrome_flags`],
//!   a new, empty `--user-data-dir`) with Lighthouse's default mobile preset
//!   (simulated slow 4G, 4x CPU slowdown).
//! - From each JSON report ([`parse_report`]): FCP, LCP, TBT, CLS, TTI (the
//!   `interactive` audit, which Lighthouse 12 still reports but no longer
//!   scores), the performance, accessibility, best-practices and SEO scores,
//!   and the failing audits of the last three. The section of BENCHMARKS.md
//!   ([`section`]) shows the median of each, per page, beside the targets.
//!   The numbers are measured, never asserted.
//!
//! `DANCE_LIGHTHOUSE_RUNS` changes the number of runs per page (5).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use crate::chromium;
use crate::setup::{self, CHROMIUM};
use crate::util::{self, note, step};

/// The heading of the section in BENCHMARKS.md.
pub(crate) const SECTION: &str = "Lighthouse";

/// The Lighthouse release `tools/lighthouse/package.json` pins: the newest
/// 12.x (13 wants Node 22).
const LIGHTHOUSE_VERSION: &str = "12.8.2";

/// Runs per page, unless `DANCE_LIGHTHOUSE_RUNS` says otherwise.
const RUNS: usize = 5;

/// Chromium's flags besides the profile: headless, and the offline ones
/// every headless Chromium of the project gets
/// ([`chromium::OFFLINE_FLAGS`], shared with the end-to-end suite).
fn chrome_flags() -> String {
    let mut flags = vec!["--headless=new"];
    flags.extend(chromium::OFFLINE_FLAGS);
    flags.join(" ")
}

/// The categories audited.
const CATEGORIES: &str = "performance,accessibility,best-practices,seo";

/// The query of the callback page: what Bitbucket appends, made up.
const CALLBACK_QUERY: &str = "?code=made-up-code-for-lighthouse&state=made-up-state-for-lighthouse";

/// The most one Lighthouse run may take (its own page-load limit is 45 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The most the demo may take to listen (it may first build fakebucket
/// and the relay).
const DEMO_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// How long the demo gets to stop after SIGTERM before it is killed (it
/// gives its own children 5 s).
const DEMO_STOP_GRACE: Duration = Duration::from_secs(15);

/// The pages audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Landing,
    Callback,
}

const PAGES: [Page; 2] = [Page::Landing, Page::Callback];

impl Page {
    fn name(self) -> &'static str {
        match self {
            Self::Landing => "landing",
            Self::Callback => "callback",
        }
    }

    /// The page's URL under the site's base URL (which ends in `/`).
    fn url(self, base: &str) -> String {
        match self {
            Self::Landing => base.to_owned(),
            Self::Callback => format!("{base}{CALLBACK_QUERY}"),
        }
    }
}

/// `tools/lighthouse/`: Lighthouse's own npm directory.
fn lighthouse_dir() -> PathBuf {
    util::root().join("tools/lighthouse")
}

/// Where the runs keep their files: the site's copy, the reports, the logs.
fn work_dir() -> PathBuf {
    util::root().join("target/bench/lighthouse")
}

/// Audits the release build in `dist` and writes the section's body to `report`.
pub(crate) fn run(dist: &Path, report: &Path) -> Result<()> {
    let cli = install()?;
    check_node()?;
    if !Path::new(CHROMIUM).exists() {
        bail!("Lighthouse runs Chromium at {CHROMIUM}, which is missing: run `cargo xtask setup`");
    }
    let runs = match std::env::var("DANCE_LIGHTHOUSE_RUNS") {
        Ok(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|runs| *runs > 0)
            .with_context(|| format!("DANCE_LIGHTHOUSE_RUNS={text} is not a positive number"))?,
        Err(_) => RUNS,
    };
    let work = work_dir();
    remove_dir(&work)?;
    let site = work.join("site");
    copy_dir(dist, &site)?;
    let demo = Demo::start(&site, &work.join("demo.log"))?;
    step(format!(
        "auditing {} with Lighthouse {LIGHTHOUSE_VERSION}, {runs} runs per page",
        demo.base
    ));
    let mut results: Vec<(Page, Vec<Run>)> = PAGES.iter().map(|page| (*page, Vec::new())).collect();
    for number in 1..=runs {
        for (page, page_runs) in &mut results {
            let name = format!("{}-{number}", page.name());
            let json = lighthouse_once(&cli, &page.url(&demo.base), &work, &name)?;
            let run = parse_report(&json).with_context(|| {
                format!("the Lighthouse report {}", work.join(format!("{name}.json")).display())
            })?;
            note(format!("{name}: {}", run.summary()));
            page_runs.push(run);
        }
    }
    demo.stop();
    let context = Context {
        chromium: util::probe(CHROMIUM, &["--version"])
            .and_then(|out| out.split_whitespace().nth(1).map(str::to_owned))
            .unwrap_or_else(|| "(version unknown)".to_owned()),
        runs,
    };
    let body = section(&results, &context)?;
    std::fs::write(report, body).with_context(|| format!("could not write {}", report.display()))
}

/// Installs `tools/lighthouse/package-lock.json` unless it is there; returns
/// Lighthouse's command-line script.
fn install() -> Result<PathBuf> {
    let dir = lighthouse_dir();
    let started = Instant::now();
    let what = format!("Lighthouse {LIGHTHOUSE_VERSION}");
    if setup::ensure_npm_lockfile(&dir, &what)? {
        note(format!(
            "installed {what} in {} ({} in {})",
            util::human_duration(started.elapsed()),
            util::human_size(dir_size(&dir.join("node_modules"))),
            dir.join("node_modules").display()
        ));
    }
    let cli = dir.join("node_modules/lighthouse/cli/index.js");
    if !cli.is_file() {
        bail!(
            "{} is missing although {} is installed: remove {} and run again",
            cli.display(),
            dir.join("package-lock.json").display(),
            dir.join("node_modules").display()
        );
    }
    Ok(cli)
}

/// Lighthouse 12 needs Node.js 18.20 or newer (Debian 12's own is 18.19).
fn check_node() -> Result<()> {
    let version = util::probe("node", &["--version"])
        .context("Lighthouse needs Node.js (18.20 or newer), and `node` does not run")?;
    let mut parts =
        version.trim_start_matches('v').split('.').map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (18, 20) {
        bail!("Lighthouse {LIGHTHOUSE_VERSION} needs Node.js 18.20 or newer; `node` is {version}");
    }
    Ok(())
}

/// One Lighthouse run of `url` in a fresh Chromium profile; returns its JSON
/// report, kept as `work/<name>.json` (its output in `work/<name>.log`).
fn lighthouse_once(cli: &Path, url: &str, work: &Path, name: &str) -> Result<Value> {
    let out = work.join(format!("{name}.json"));
    let log_path = work.join(format!("{name}.log"));
    let profile = work.join("profile");
    remove_dir(&profile)?;
    std::fs::create_dir_all(&profile)
        .with_context(|| format!("could not create {}", profile.display()))?;
    let profile_text = profile.to_string_lossy();
    if profile_text.contains(char::is_whitespace) {
        bail!("Lighthouse's --chrome-flags can't carry a path with spaces: {profile_text}");
    }
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("could not create {}", log_path.display()))?;
    let mut command = util::tool("node");
    command
        .arg(cli)
        .arg(url)
        .args(["--output=json", "--quiet", "--no-enable-error-reporting"])
        .arg(format!("--output-path={}", out.display()))
        .arg(format!("--only-categories={CATEGORIES}"))
        .arg(format!("--chrome-flags={} --user-data-dir={profile_text}", chrome_flags()))
        .env("CHROME_PATH", CHROMIUM)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("could not share the log file")?)
        .stderr(log);
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", util::display(&command)))?;
    // On SIGINT, Lighthouse stops its Chromium before it exits.
    let waited = wait_bounded(&mut child, RUN_TIMEOUT, "-INT", Duration::from_secs(10))?;
    // Chromium is gone once Lighthouse has ended; a leftover file is harmless.
    let _ = std::fs::remove_dir_all(&profile);
    let failed = match waited {
        Waited::Exited(status) if status.success() => None,
        Waited::Exited(status) => Some(format!("ended with {status}")),
        Waited::Stopped | Waited::Killed => {
            Some(format!("did not finish within {} s", RUN_TIMEOUT.as_secs()))
        }
    };
    if let Some(failed) = failed {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = output.lines().rev().take(20).collect();
        bail!(
            "Lighthouse on {url} {failed}: `{}`\n{}",
            util::display(&command),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let text = std::fs::read_to_string(&out)
        .with_context(|| format!("Lighthouse wrote no report to {}", out.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", out.display()))
}

/// How a child we waited for ended.
enum Waited {
    /// On its own, within the limit.
    Exited(std::process::ExitStatus),
    /// After the signal.
    Stopped,
    /// Killed, since the signal did not stop it.
    Killed,
}

/// Waits up to `limit` for `child`; past it, sends `signal` (so that it can
/// stop what it started), waits up to `grace` more, then kills it.
fn wait_bounded(
    child: &mut Child,
    limit: Duration,
    signal: &str,
    grace: Duration,
) -> Result<Waited> {
    let started = Instant::now();
    let mut signalled = false;
    loop {
        if let Some(status) = child.try_wait().context("could not wait for a child process")? {
            return Ok(if signalled { Waited::Stopped } else { Waited::Exited(status) });
        }
        let elapsed = started.elapsed();
        if elapsed >= limit && !signalled {
            // `kill` may be missing; the kill below still stops the child.
            let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
            signalled = true;
        } else if elapsed >= limit + grace {
            // An error means it has just exited, which `wait` then reports.
            let _ = child.kill();
            child.wait().context("could not wait for a child process")?;
            return Ok(Waited::Killed);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------- the site

/// `cargo xtask demo --no-build --dist <site>` as a child process, on free
/// loopback ports; stopped (SIGTERM, as Ctrl-C would) when dropped.
struct Demo {
    child: Option<Child>,
    /// The site's base URL, ending in `/`.
    base: String,
}

impl Demo {
    fn start(site: &Path, log_path: &Path) -> Result<Self> {
        let [port, relay_port, fakebucket_port] = free_ports()?;
        // This very binary, unless a build since it started (trunk's hook
        // runs `cargo xtask minify`) has replaced it: then `cargo xtask`.
        let exe = std::env::current_exe().ok().filter(|exe| exe.is_file());
        let mut command = match exe {
            Some(exe) => Command::new(exe),
            None => {
                let mut cargo = util::cargo();
                cargo.arg("xtask");
                cargo
            }
        };
        command
            .args(["demo", "--no-build", "--dist"])
            .arg(site)
            .args(["--port", &port.to_string()])
            .args(["--relay-port", &relay_port.to_string()])
            .args(["--fakebucket-port", &fakebucket_port.to_string()])
            .env("NO_COLOR", "1")
            .current_dir(util::root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        step(format!("starting the site, fakebucket and the relay (log: {})", log_path.display()));
        note(format!("$ {}", util::display(&command)));
        let mut child = command.spawn().context("could not start `cargo xtask demo`")?;
        let stdout = child.stdout.take().context("the demo's output")?;
        let mut log = std::fs::File::create(log_path)
            .with_context(|| format!("could not create {}", log_path.display()))?;
        let mut demo = Self { child: Some(child), base: String::new() };
        // Its lines go to the log; until it is ready, to the console too.
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A full disk only costs the log.
                let _ = writeln!(log, "{line}");
                if !ready {
                    println!("    {line}");
                    util::flush();
                    if let Some(url) = line.strip_prefix("==> open ") {
                        ready = true;
                        // The receiver may have given up already.
                        let _ = ready_tx.send(url.trim().to_owned());
                    }
                }
            }
        });
        let started = Instant::now();
        demo.base = loop {
            match ready_rx.recv_timeout(Duration::from_millis(500)) {
                Ok(url) => break url,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("the demo ended before it was ready; see its output above")
                }
            }
            let child = demo.child.as_mut().context("the demo")?;
            if let Some(status) = child.try_wait().context("could not wait for the demo")? {
                bail!("the demo ended ({status}) before it was ready; see its output above");
            }
            if started.elapsed() > DEMO_TIMEOUT {
                bail!("the demo was not ready after {} s", DEMO_TIMEOUT.as_secs());
            }
        };
        if !demo.base.ends_with('/') {
            return Err(anyhow!("the demo's page {} does not end in /", demo.base));
        }
        Ok(demo)
    }

    /// Stops the demo and everything it runs.
    fn stop(mut self) {
        self.stop_child();
    }

    fn stop_child(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        match wait_bounded(&mut child, Duration::ZERO, "-TERM", DEMO_STOP_GRACE) {
            Ok(Waited::Stopped | Waited::Exited(_)) => {}
            Ok(Waited::Killed) => note(format!(
                "the demo was killed: it still ran {} s after SIGTERM",
                DEMO_STOP_GRACE.as_secs()
            )),
            Err(error) => note(format!("could not stop the demo: {error:#}")),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_child();
    }
}

/// Three loopback ports free right now.
fn free_ports() -> Result<[u16; 3]> {
    let bind = || std::net::TcpListener::bind(("127.0.0.1", 0)).context("no free loopback port");
    // All three are held at once, so they differ.
    let listeners = [bind()?, bind()?, bind()?];
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr().context("a bound port")?.port();
    }
    Ok(ports)
}

/// Copies the directory `from` to `to` (which must not exist).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("could not create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("could not read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not read {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("could not copy {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// Removes a directory tree if it is there.
fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("could not remove {}", dir.display())),
    }
}

/// The bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |meta| meta.len()),
            _ => 0,
        })
        .sum()
}

// ------------------------------------------------------------ the reports

/// A failing audit of the accessibility, best-practices or SEO category.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failing {
    /// The audit's id, e.g. `color-contrast`.
    id: String,
    /// Its title as reported (for a failed check, the failure's wording).
    title: String,
    /// The category that counts it.
    category: String,
}

/// What one Lighthouse report says: times in milliseconds, scores 0 to 1.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    fcp: f64,
    lcp: f64,
    tbt: f64,
    cls: f64,
    /// `interactive`: still reported by Lighthouse 12, weighted 0.
    tti: Option<f64>,
    performance: f64,
    accessibility: f64,
    best_practices: f64,
    seo: f64,
    failing: Vec<Failing>,
    /// The element whose paint was the LCP (its CSS selector).
    lcp_element: Option<String>,
    /// Lighthouse's split of the LCP (TTFB, Load Delay, Load Time, Render
    /// Delay), in milliseconds.
    lcp_phases: Vec<(String, f64)>,
    version: String,
    /// The day of the run, from `fetchTime`.
    date: String,
    /// Form factor, throttling and screen, in words.
    settings: String,
    /// Lighthouse's own CPU benchmark of the host.
    benchmark_index: Option<f64>,
    warnings: Vec<String>,
}

impl Run {
    /// One line for the console.
    fn summary(&self) -> String {
        format!(
            "FCP {}, LCP {}, TBT {}, CLS {}, TTI {}; performance {}, accessibility {}, best \
             practices {}, SEO {}{}",
            seconds(self.fcp),
            seconds(self.lcp),
            millis(self.tbt),
            shift(self.cls),
            self.tti.map_or_else(|| "none".to_owned(), seconds),
            score(self.performance),
            score(self.accessibility),
            score(self.best_practices),
            score(self.seo),
            if self.failing.is_empty() {
                String::new()
            } else {
                let ids: Vec<&str> = self.failing.iter().map(|f| f.id.as_str()).collect();
                format!("; failing: {}", ids.join(", "))
            }
        )
    }
}

/// The categories whose failing audits are listed.
const CHECKED_CATEGORIES: [&str; 3] = ["accessibility", "best-practices", "seo"];

/// Reads what the bench needs from a Lighthouse (12) JSON report.
fn parse_report(report: &Value) -> Result<Run> {
    if let Some(error) = report.get("runtimeError") {
        bail!(
            "Lighthouse failed: {} ({})",
            error["message"].as_str().unwrap_or("no message"),
            error["code"].as_str().unwrap_or("no code")
        );
    }
    let audits = &report["audits"];
    let metric = |id: &str| -> Result<f64> {
        audits[id]["numericValue"].as_f64().with_context(|| {
            let why = audits[id]["errorMessage"].as_str().unwrap_or("no numericValue");
            format!("the report's `{id}` audit has no value ({why})")
        })
    };
    let category = |id: &str| -> Result<f64> {
        report["categories"][id]["score"].as_f64().with_context(|| {
            format!("the report has no score for the `{id}` category (an audit of it errored?)")
        })
    };
    let mut failing = Vec::new();
    for name in CHECKED_CATEGORIES {
        let refs = report["categories"][name]["auditRefs"].as_array().into_iter().flatten();
        for id in refs.filter_map(|entry| entry["id"].as_str()) {
            let audit = &audits[id];
            let counted = matches!(audit["scoreDisplayMode"].as_str(), Some("binary" | "numeric"));
            if counted && audit["score"].as_f64().is_some_and(|score| score < 1.0) {
                failing.push(Failing {
                    id: id.to_owned(),
                    title: audit["title"].as_str().unwrap_or_default().to_owned(),
                    category: name.to_owned(),
                });
            }
        }
    }
    let settings = &report["configSettings"];
    let throttling = &settings["throttling"];
    let screen = &settings["screenEmulation"];
    let settings = format!(
        "{} form factor, {} throttling ({} ms round trip, {:.1} Mbit/s, CPU slowed {}x), a \
         {}x{} screen at {} device pixels per CSS pixel",
        settings["formFactor"].as_str().unwrap_or("unknown"),
        match settings["throttlingMethod"].as_str() {
            Some("simulate") => "simulated",
            Some(other) => other,
            None => "unknown",
        },
        throttling["rttMs"].as_f64().unwrap_or(f64::NAN),
        throttling["throughputKbps"].as_f64().unwrap_or(f64::NAN) / 1024.0,
        throttling["cpuSlowdownMultiplier"].as_f64().unwrap_or(f64::NAN),
        screen["width"].as_u64().unwrap_or(0),
        screen["height"].as_u64().unwrap_or(0),
        screen["deviceScaleFactor"].as_f64().unwrap_or(f64::NAN),
    );
    Ok(Run {
        fcp: metric("first-contentful-paint")?,
        lcp: metric("largest-contentful-paint")?,
        tbt: metric("total-blocking-time")?,
        cls: metric("cumulative-layout-shift")?,
        tti: audits["interactive"]["numericValue"].as_f64(),
        performance: category("performance")?,
        accessibility: category("accessibility")?,
        best_practices: category("best-practices")?,
        seo: category("seo")?,
        failing,
        lcp_element: lcp_element(&audits["largest-contentful-paint-element"]),
        lcp_phases: lcp_phases(&audits["largest-contentful-paint-element"]),
        version: report["lighthouseVersion"].as_str().unwrap_or("unknown").to_owned(),
        date: report["fetchTime"].as_str().unwrap_or_default().chars().take(10).collect(),
        settings,
        benchmark_index: report["environment"]["benchmarkIndex"].as_f64(),
        warnings: report["runWarnings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|warning| warning.as_str().map(str::to_owned))
            .collect(),
    })
}

/// The selector of the LCP element: the first node in the audit's details.
fn lcp_element(audit: &Value) -> Option<String> {
    fn find(value: &Value) -> Option<&str> {
        match value {
            Value::Object(map) => match map.get("type").and_then(Value::as_str) {
                Some("node") => map.get("selector").and_then(Value::as_str),
                _ => map.values().find_map(find),
            },
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    find(&audit["details"]).map(str::to_owned)
}

/// The `phase` and `timing` of every row of the audit's details that has both.
fn lcp_phases(audit: &Value) -> Vec<(String, f64)> {
    let tables = audit["details"]["items"].as_array().into_iter().flatten();
    let rows = tables.flat_map(|table| table["items"].as_array().into_iter().flatten());
    rows.filter_map(|row| Some((row["phase"].as_str()?.to_owned(), row["timing"].as_f64()?)))
        .collect()
}

/// The median (the mean of the two middle values for an even count), or
/// `None` without values.
fn median(values: &[f64]) -> Option<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some(f64::midpoint(values[n / 2 - 1], values[n / 2])),
    }
}

/// A goal the project set for a measure.
#[derive(Debug, Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Self::AtMost(limit) => value <= limit,
            Self::AtLeast(floor) => value >= floor,
        }
    }
}

/// One row of the table.
struct Row {
    label: &'static str,
    value: fn(&Run) -> Option<f64>,
    show: fn(f64) -> String,
    /// The goal and the pages it is set for.
    goal: Option<(Goal, &'static [Page])>,
    /// The goal in words.
    target: &'static str,
}

const LANDING: &[Page] = &[Page::Landing];

const ROWS: &[Row] = &[
    Row {
        label: "First Contentful Paint",
        value: |run| Some(run.fcp),
        show: seconds,
        goal: None,
        target: "",
    },
    Row {
        label: "Largest Contentful Paint",
        value: |run| Some(run.lcp),
        show: seconds,
        goal: Some((Goal::AtMost(1200.0), LANDING)),
        target: "landing ≤ 1.2 s",
    },
    Row {
        label: "Total Blocking Time",
        value: |run| Some(run.tbt),
        show: millis,
        goal: None,
        target: "",
    },
    Row {
        label: "Cumulative Layout Shift",
        value: |run| Some(run.cls),
        show: shift,
        goal: Some((Goal::AtMost(0.0), LANDING)),
        target: "landing 0",
    },
    Row {
        label: "Time to Interactive (`interactive`, unscored)",
        value: |run| run.tti,
        show: seconds,
        goal: None,
        target: "",
    },
    Row {
        label: "**performance score**",
        value: |run| Some(run.performance),
        show: score,
        goal: Some((Goal::AtLeast(0.99), LANDING)),
        target: "landing ≥ 0.99",
    },
    Row {
        label: "**accessibility score**",
        value: |run| Some(run.accessibility),
        show: score,
        goal: Some((Goal::AtLeast(1.0), &PAGES)),
        target: "1.0",
    },
    Row {
        label: "**best-practices score**",
        value: |run| Some(run.best_practices),
        show: score,
        goal: Some((Goal::AtLeast(1.0), &PAGES)),
        target: "1.0",
    },
    Row {
        label: "**SEO score**",
        value: |run| Some(run.seo),
        show: score,
        goal: Some((Goal::AtLeast(1.0), &PAGES)),
        target: "1.0",
    },
];

fn seconds(ms: f64) -> String {
    format!("{:.2} s", ms / 1000.0)
}

fn millis(ms: f64) -> String {
    format!("{ms:.0} ms")
}

fn shift(value: f64) -> String {
    format!("{value:.3}")
}

fn score(value: f64) -> String {
    format!("{value:.2}")
}

/// One cell: the median, and the range when the runs differ.
fn cell(runs: &[Run], row: &Row) -> (Option<f64>, String) {
    let values: Vec<f64> = runs.iter().filter_map(row.value).collect();
    let Some(mid) = median(&values) else {
        return (None, "not reported".to_owned());
    };
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (low_text, high_text) = ((row.show)(low), (row.show)(high));
    let mut text = (row.show)(mid);
    if low_text != high_text {
        let _ = write!(text, " ({low_text} – {high_text})");
    }
    if values.len() < runs.len() {
        let _ = write!(text, ", in {} of {} runs", values.len(), runs.len());
    }
    (Some(mid), text)
}

/// What the section says besides the reports.
struct Context {
    chromium: String,
    runs: usize,
}

/// The section's body: how it was measured, the table, the targets, the
/// failing audits.
fn section(results: &[(Page, Vec<Run>)], context: &Context) -> Result<String> {
    let first =
        results.iter().find_map(|(_, runs)| runs.first()).context("no Lighthouse run to report")?;
    let all: Vec<&Run> = results.iter().flat_map(|(_, runs)| runs).collect();
    let benchmark: Vec<f64> = all.iter().filter_map(|run| run.benchmark_index).collect();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mut out = String::new();
    let _ = write!(
        out,
        "Measured by `cargo xtask bench lighthouse` (also the last step of `cargo xtask bench \
         browser`) on {date}: Lighthouse {version} (npm, `tools/lighthouse/package-lock.json`) \
         on headless Chromium {chromium}, {cores} cores, everything on loopback. Each page is \
         audited {runs} times, the pages taking turns, every run in a fresh Chromium with a new, \
         empty profile (`{flags}` and a new `--user-data-dir`). Lighthouse's default mobile \
         preset: {settings}; the page loads unthrottled, and Lighthouse computes the times for \
         that network and CPU from what it observed (Lantern). Lighthouse rated this machine's \
         CPU at {benchmark} (its `benchmarkIndex`, median). The site is the release build of \
         `cargo xtask build`, copied and served by `cargo xtask demo --no-build --dist` on free \
         ports: the demo's static server, gzip-compressed as GitHub Pages sends it, with \
         fakebucket and the relay beside it.\n\n",
        date = first.date,
        version = first.version,
        chromium = context.chromium,
        runs = context.runs,
        flags = chrome_flags(),
        settings = first.settings,
        benchmark =
            median(&benchmark).map_or_else(|| "?".to_owned(), |value| format!("{value:.0}")),
    );
    out.push_str(
        "- **landing**: the site's base URL, as a visitor first opens it: the HTML, `screen.js` \
         (which, once the page is painted, asks for `config.json`, the glue and the wasm), and the signed-out page with its \
         sign-in button.\n\
         - **callback**: the base URL with `?code=…&state=…`, as Bitbucket sends a person back, \
         but with a made-up code and state: a real pair needs a sign-in started in the same \
         browser profile (its state waits in that tab's sessionStorage), which Lighthouse can't \
         do. So the app takes the code out of the address bar, shows its \"Signing you in…\" \
         screen, fetches `config.json` (late, as on every real return: `screen.js` doesn't ask \
         early when the address holds a code), finds no sign-in waiting and shows the \
         plain-words problem instead of exchanging the code. What this page measures is the \
         first paint of the callback screen: the HTML, the wasm's load and start, \
         `config.json`, a render; not the token exchange nor the API calls after it (the \
         Browser section times those, on loopback).\n\n",
    );
    let _ = writeln!(
        out,
        "Each cell is the median of the {} runs, with the lowest and highest in brackets when \
         they differ; each measure's median is taken on its own, so a column need not be one \
         run. Times are Lighthouse's simulated ones. Time to Interactive is Lighthouse's \
         `interactive` audit: Lighthouse 12 still reports it but, since Lighthouse 10, gives it \
         no weight; the performance score weighs TBT 30 %, LCP 25 %, CLS 25 %, FCP 10 % and \
         Speed Index 10 %.\n",
        context.runs
    );
    out.push_str("| measure |");
    for (page, _) in results {
        let _ = write!(out, " {} |", page.name());
    }
    out.push_str(" target |\n|---|");
    for _ in results {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    let (mut met, mut missed) = (Vec::new(), Vec::new());
    for row in ROWS {
        let _ = write!(out, "| {} |", row.label);
        for (page, runs) in results {
            let (value, text) = cell(runs, row);
            let _ = write!(out, " {text} |");
            if let (Some((goal, pages)), Some(value)) = (row.goal, value)
                && pages.contains(page)
            {
                let what = format!(
                    "{} {} {}",
                    page.name(),
                    row.label.trim_matches('*').split(" (").next().unwrap_or(row.label),
                    (row.show)(value)
                );
                if goal.met(value) { met.push(what) } else { missed.push(what) }
            }
        }
        let _ = writeln!(out, " {} |", row.target);
    }
    let list =
        |items: &[String]| if items.is_empty() { "none".to_owned() } else { items.join(", ") };
    let _ = writeln!(
        out,
        "\nAgainst the targets (medians): met: {}; missed: {}.",
        list(&met),
        list(&missed)
    );
    out.push_str(
        "\nWhat paints the Largest Contentful Paint (the element of most runs), and Lighthouse's \
         split of its time (medians):\n",
    );
    for (page, runs) in results {
        let element = most_common(runs, |run| run.lcp_element.clone());
        let _ = writeln!(out, "- {}: {element}{}", page.name(), phases(runs));
    }
    out.push_str("\nFailing audits of accessibility, best practices and SEO:\n");
    for (page, runs) in results {
        let mut seen: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
        for failing in runs.iter().flat_map(|run| &run.failing) {
            let entry = seen
                .entry((failing.category.clone(), failing.id.clone()))
                .or_insert_with(|| (failing.title.clone(), 0));
            entry.1 += 1;
        }
        if seen.is_empty() {
            let _ = writeln!(out, "- {}: none", page.name());
        }
        for ((category, id), (title, count)) in &seen {
            let _ = writeln!(
                out,
                "- {}: `{id}` ({category}, in {count} of {} runs): {title}",
                page.name(),
                runs.len()
            );
        }
    }
    let mut warnings: Vec<&str> =
        all.iter().flat_map(|run| &run.warnings).map(String::as_str).collect();
    warnings.sort_unstable();
    warnings.dedup();
    if !warnings.is_empty() {
        out.push_str("\nLighthouse's warnings:\n");
        for warning in warnings {
            let _ = writeln!(out, "- {}", warning.replace('\n', " "));
        }
    }
    Ok(out)
}

/// `, TTFB 0.46 s, …, Render Delay 1.51 s`: the median of each LCP phase.
fn phases(runs: &[Run]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in runs.iter().flat_map(|run| &run.lcp_phases) {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let mut out = String::new();
    for name in names {
        let values: Vec<f64> = runs
            .iter()
            .flat_map(|run| &run.lcp_phases)
            .filter(|(phase, _)| phase == name)
            .map(|(_, timing)| *timing)
            .collect();
        if let Some(mid) = median(&values) {
            let _ = write!(out, ", {name} {}", seconds(mid));
        }
    }
    out
}

/// The value most runs give (the first of equals), or `unknown`.
fn most_common(runs: &[Run], value: impl Fn(&Run) -> Option<String>) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for found in runs.iter().filter_map(value) {
        match counts.iter_mut().find(|(seen, _)| *seen == found) {
            Some((_, count)) => *count += 1,
            None => counts.push((found, 1)),
        }
    }
    let best = counts.iter().map(|(_, count)| *count).max().unwrap_or(0);
    counts
        .into_iter()
        .find(|(_, count)| *count == best)
        .map_or_else(|| "unknown".to_owned(), |(found, _)| format!("`{found}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Lighthouse 12 report cut down by hand to the fields the bench reads,
    /// with the shapes of a real one (`lighthouse --output=json`).
    const FIXTURE: &str = include_str!("../testdata/lighthouse-report.json");

    fn fixture() -> Value {
        serde_json::from_str(FIXTURE).expect("the fixture is JSON")
    }

    #[test]
    fn a_report_gives_its_metrics_scores_and_failing_checks() {
        let run = parse_report(&fixture()).expect("parsed");
        assert_eq!(run.fcp, 998.3);
        assert_eq!(run.lcp, 1857.3);
        assert_eq!(run.tbt, 19.5);
        assert_eq!(run.cls, 0.0038);
        assert_eq!(run.tti, Some(2933.8));
        assert_eq!(run.performance, 0.96);
        assert_eq!(run.accessibility, 0.95);
        assert_eq!(run.best_practices, 1.0);
        assert_eq!(run.seo, 1.0);
        // Only failed checks count: not a passed one, not one that does not
        // apply, not a manual one, not a performance opportunity.
        assert_eq!(
            run.failing,
            vec![Failing {
                id: "color-contrast".to_owned(),
                title: "Background and foreground colors do not have a sufficient contrast ratio."
                    .to_owned(),
                category: "accessibility".to_owned(),
            }]
        );
        assert_eq!(
            run.lcp_element.as_deref(),
            Some("div#app > main#main > section#landing > p.lead")
        );
        assert_eq!(
            run.lcp_phases,
            [("TTFB".to_owned(), 453.7), ("Render Delay".to_owned(), 2403.7)]
        );
        assert_eq!(run.version, "12.8.2");
        assert_eq!(run.date, "2026-12-03");
        assert_eq!(run.benchmark_index, Some(2281.5));
        assert_eq!(
            run.settings,
            "mobile form factor, simulated throttling (150 ms round trip, 1.6 Mbit/s, CPU slowed \
             4x), a 412x823 screen at 1.75 device pixels per CSS pixel"
        );
    }

    #[test]
    fn a_report_without_tti_still_parses_and_a_broken_one_says_why() {
        let mut report = fixture();
        report["audits"].as_object_mut().expect("audits").remove("interactive");
        assert_eq!(parse_report(&report).expect("parsed").tti, None);

        let mut report = fixture();
        report["categories"]["seo"]["score"] = Value::Null;
        let error = parse_report(&report).expect_err("no SEO score").to_string();
        assert!(error.contains("`seo`"), "{error}");

        let mut report = fixture();
        report["audits"]["largest-contentful-paint"]["numericValue"] = Value::Null;
        report["audits"]["largest-contentful-paint"]["errorMessage"] = "NO_LCP".into();
        let error = parse_report(&report).expect_err("no LCP").to_string();
        assert!(error.contains("largest-contentful-paint") && error.contains("NO_LCP"), "{error}");

        let mut report = fixture();
        report["runtimeError"] =
            serde_json::json!({"code": "NO_FCP", "message": "The page did not paint"});
        let error = parse_report(&report).expect_err("runtime error").to_string();
        assert!(error.contains("NO_FCP"), "{error}");
    }

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    /// Five runs of a page whose LCP, performance score and SEO score vary.
    fn five_runs() -> Vec<Run> {
        let base = parse_report(&fixture()).expect("parsed");
        [
            (1900.0, 0.95, 1.0),
            (1100.0, 0.99, 1.0),
            (1150.0, 1.0, 0.9),
            (1000.0, 0.99, 1.0),
            (1180.0, 0.98, 1.0),
        ]
        .into_iter()
        .map(|(lcp, performance, seo)| {
            let mut run = base.clone();
            run.lcp = lcp;
            run.performance = performance;
            run.seo = seo;
            run.tti = None;
            run.failing.clear();
            run
        })
        .collect()
    }

    #[test]
    fn the_section_shows_medians_ranges_and_targets() {
        let landing = five_runs();
        let callback = vec![parse_report(&fixture()).expect("parsed")];
        let context = Context { chromium: "156.0.8078.114".to_owned(), runs: 5 };
        let text = section(&[(Page::Landing, landing), (Page::Callback, callback)], &context)
            .expect("a section");
        assert!(text.contains("Lighthouse 12.8.2"), "{text}");
        assert!(text.contains("| measure | landing | callback | target |"), "{text}");
        assert!(
            text.contains(
                "| Largest Contentful Paint | 1.15 s (1.00 s – 1.90 s) | 1.86 s | landing ≤ 1.2 s |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| **performance score** | 0.99 (0.95 – 1.00) | 0.96 | landing ≥ 0.99 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| Time to Interactive (`interactive`, unscored) | not reported | 2.93 s |"
            ),
            "{text}"
        );
        assert!(text.contains("| **SEO score** | 1.00 (0.90 – 1.00) | 1.00 | 1.0 |"), "{text}");
        assert!(text.contains("missed: landing Cumulative Layout Shift 0.004, landing accessibility score 0.95, callback accessibility score 0.95."), "{text}");
        assert!(
            text.contains(
                "met: landing Largest Contentful Paint 1.15 s, landing performance score 0.99"
            ),
            "{text}"
        );
        assert!(text.contains("- landing: none\n"), "{text}");
        assert!(
            text.contains(
                "- callback: `color-contrast` (accessibility, in 1 of 1 runs): Background"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "- landing: `div#app > main#main > section#landing > p.lead`, TTFB 0.45 s, \
                 Render Delay 2.40 s\n"
            ),
            "{text}"
        );
    }

    /// `tools/lighthouse/package.json` pins the version the bench names,
    /// and its lockfile records an integrity hash for every package and no
    /// install script (`npm ci --ignore-scripts` skips nothing needed).
    #[test]
    fn lighthouse_is_pinned_exactly_and_locked() {
        let (package, packages) = crate::setup::read_npm_lockfile(&lighthouse_dir());
        assert_eq!(package["devDependencies"]["lighthouse"], LIGHTHOUSE_VERSION);
        for (path, entry) in &packages {
            assert!(entry.get("hasInstallScript").is_none(), "{path} has an install script");
        }
        assert_eq!(packages["node_modules/lighthouse"]["version"], LIGHTHOUSE_VERSION);
    }
}
