//! The browser timing of the sign-in: how long the callback page takes, from its
//! navigation start to the rendered profile, and where that time goes.
//!
//! [`browser_timing`] signs in through the real pages [`RUNS`] times (after
//! [`WARMUP`] runs that are measured but left out), each run on a fresh
//! [`Stack`]: new fakebucket, relay, static server and a Chromium with a new,
//! empty profile. On the callback page it reads, with the Performance API,
//! the navigation entry, the app's `dance:*` marks and the resource entries
//! of the `.wasm` fetch, the POST to the relay and the two API calls. Then,
//! from the same page, it times bare round trips with `fetch()`: the relay's
//! `GET /healthz` and a `GET` of a path fakebucket answers with a small 404,
//! so the table shows what the app adds over the network.
//!
//! It prints a Markdown table of the median and p90 of every phase; with
//! `DANCE_BENCH_OUT=<file>` it also writes the whole report there (Markdown,
//! without a heading), which `cargo xtask bench browser` puts in the
//! `## Browser` section of BENCHMARKS.md.
//! `DANCE_BENCH_RUNS` and `DANCE_BENCH_WARMUP` change the run counts.
//!
//! Run it with `cargo xtask bench browser`, which builds the release SPA
//! first. `cargo xtask test` skips it (`--skip bench::`). Every wait is
//! bounded by the harness's timeout and every run by [`RUN_TIMEOUT`].

use crate::harness::{ADA, Mount, Stack, scenario};
use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Measured runs, unless `DANCE_BENCH_RUNS` says otherwise.
const RUNS: usize = 20;

/// Runs before the measured ones (first start of Chromium and of every
/// server code path), unless `DANCE_BENCH_WARMUP` says otherwise.
const WARMUP: usize = 1;

/// Bare round trips of each kind per run; the run keeps their median.
const ROUND_TRIPS: usize = 5;

/// The most one run (sign-in and measurement) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The path fakebucket answers with its small 404 page.
const FAKEBUCKET_404: &str = "bench-round-trip";

/// Everything read on the callback page, in milliseconds since its
/// navigation start (times) or as durations.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Navigation start to `dance:profile-rendered`.
    total: f64,
    /// Navigation start to `dance:boot`.
    wasm_start: f64,
    /// Navigation start to the document's `fetchStart`: the consent
    /// form's POST to fakebucket and its cross-origin redirect.
    redirect: f64,
    /// Navigation start to the end of the HTML document's response.
    document: f64,
    /// The `.wasm` resource entry's duration.
    wasm_fetch: f64,
    /// Navigation start to the `.wasm` resource's `responseEnd`.
    wasm_end: f64,
    /// The `.wasm` resource's transferred bytes (0 when from the cache).
    wasm_transfer: f64,
    /// `dance:callback-start` to `dance:exchange-done`.
    exchange: f64,
    /// `dance:boot` to `dance:config-loaded`.
    config: f64,
    /// The `config.json` resource duration.
    config_fetch: f64,
    /// `dance:config-loaded` to `dance:exchange-done`.
    exchange_after_config: f64,
    /// The relay POST's resource duration.
    relay_post: f64,
    /// `dance:exchange-done` to `dance:profile-loaded`.
    api: f64,
    /// The `GET /2.0/user` resource duration.
    api_user: f64,
    /// The `GET /2.0/user/emails` resource duration.
    api_emails: f64,
    /// `dance:profile-loaded` to `dance:profile-rendered`.
    render: f64,
    /// Median bare `fetch()` round trip to the relay's `/healthz`.
    bare_relay: f64,
    /// Median bare `fetch()` round trip to fakebucket (a 404).
    bare_fakebucket: f64,
    /// Median `POST /token` with the DPoP proof in the form: a simple
    /// request, no preflight (what the app sends).
    proof_in_form: f64,
    /// Median `POST /token` with the proof in a `DPoP` header to a URL the
    /// browser has not preflighted yet (RFC 9449's placement).
    proof_in_header: f64,
}

/// One row of the table: a label, what it spans, and how to read it from a
/// sample.
struct Row {
    label: &'static str,
    span: &'static str,
    value: fn(&Sample) -> f64,
    /// Whether this is a sub-row (shown indented) of the row above.
    detail: bool,
}

const ROWS: &[Row] = &[
    Row {
        label: "total",
        span: "navigation start → `dance:profile-rendered`",
        value: |s| s.total,
        detail: false,
    },
    Row {
        label: "wasm load and start",
        span: "navigation start → `dance:boot`",
        value: |s| s.wasm_start,
        detail: false,
    },
    Row {
        label: "consent POST and redirect",
        span: "navigation start → document `fetchStart`",
        value: |s| s.redirect,
        detail: true,
    },
    Row {
        label: "HTML document",
        span: "navigation start → document `responseEnd`",
        value: |s| s.document,
        detail: true,
    },
    Row {
        label: "`.wasm` fetch",
        span: "resource `duration`",
        value: |s| s.wasm_fetch,
        detail: true,
    },
    Row {
        label: "`.wasm` in hand",
        span: "navigation start → `.wasm` `responseEnd`",
        value: |s| s.wasm_end,
        detail: true,
    },
    Row {
        label: "compile, instantiate, start",
        span: "`.wasm` `responseEnd` → `dance:boot`",
        value: |s| s.wasm_start - s.wasm_end,
        detail: true,
    },
    Row {
        label: "token exchange",
        span: "`dance:callback-start` → `dance:exchange-done`",
        value: |s| s.exchange,
        detail: false,
    },
    Row {
        label: "config.json",
        span: "`dance:boot` → `dance:config-loaded`",
        value: |s| s.config,
        detail: true,
    },
    Row {
        label: "`GET config.json`",
        span: "resource `duration`",
        value: |s| s.config_fetch,
        detail: true,
    },
    Row {
        label: "exchange proper",
        span: "`dance:config-loaded` → `dance:exchange-done`",
        value: |s| s.exchange_after_config,
        detail: true,
    },
    Row {
        label: "relay `POST /token`",
        span: "resource `duration`",
        value: |s| s.relay_post,
        detail: true,
    },
    Row {
        label: "API calls",
        span: "`dance:exchange-done` → `dance:profile-loaded`",
        value: |s| s.api,
        detail: false,
    },
    Row {
        label: "`GET /2.0/user`",
        span: "resource `duration`",
        value: |s| s.api_user,
        detail: true,
    },
    Row {
        label: "`GET /2.0/user/emails`",
        span: "resource `duration`",
        value: |s| s.api_emails,
        detail: true,
    },
    Row {
        label: "render",
        span: "`dance:profile-loaded` → `dance:profile-rendered`",
        value: |s| s.render,
        detail: false,
    },
    Row {
        label: "bare round trip, relay",
        span: "`fetch()` of `GET /healthz`, median of 5 per run",
        value: |s| s.bare_relay,
        detail: false,
    },
    Row {
        label: "bare round trip, fakebucket",
        span: "`fetch()` of a `GET` answered 404, median of 5 per run",
        value: |s| s.bare_fakebucket,
        detail: false,
    },
    Row {
        label: "token POST, proof in the form",
        span: "`fetch()` of `POST /token` with a `dpop` field (simple request), median of 5",
        value: |s| s.proof_in_form,
        detail: false,
    },
    Row {
        label: "token POST, proof in a `DPoP` header",
        span: "the same with a `DPoP` header, first to its URL (preflight + POST), median of 5",
        value: |s| s.proof_in_header,
        detail: false,
    },
];

/// Reads the callback page's timeline. Arguments: the relay's token URL
/// and fakebucket's API base. Returns numbers, or `{missing: [...]}`.
const TIMELINE_JS: &str = r"
const [relayUrl, apiBase] = arguments;
const nav = performance.getEntriesByType('navigation')[0];
const mark = (name) => {
  const found = performance.getEntriesByName(name, 'mark');
  return found.length ? found[0].startTime : null;
};
const resources = performance.getEntriesByType('resource');
const path = (entry) => new URL(entry.name).pathname;
const find = (test) => resources.find(test) || null;
const wasm = find((r) => path(r).endsWith('.wasm'));
const relay = find((r) => r.name === relayUrl);
const config = find((r) => path(r).endsWith('/config.json'));
const user = find((r) => r.name.split('?')[0] === apiBase + 'user');
const emails = find((r) => r.name.split('?')[0] === apiBase + 'user/emails');
const marks = {};
for (const name of ['dance:boot', 'dance:callback-start', 'dance:config-loaded',
                    'dance:exchange-done', 'dance:profile-loaded', 'dance:profile-rendered']) {
  marks[name] = mark(name);
}
const missing = [];
if (!nav) missing.push('navigation entry');
for (const [name, at] of Object.entries(marks)) if (at === null) missing.push(name);
if (!wasm) missing.push('.wasm resource');
if (!relay) missing.push('relay POST resource');
if (!user) missing.push('/2.0/user resource');
if (!emails) missing.push('/2.0/user/emails resource');
if (missing.length) {
  return { missing, resources: resources.map((r) => path(r)), marks: Object.keys(marks) };
}
return {
  callback: new URL(nav.name).searchParams.has('code'),
  fetchStart: nav.fetchStart,
  documentEnd: nav.responseEnd,
  marks,
  wasm: wasm.duration,
  wasmEnd: wasm.responseEnd,
  wasmTransfer: wasm.transferSize,
  relay: relay.duration,
  // The settings travel with the sign-in: normally no request on this page.
  config: config ? config.duration : 0,
  user: user.duration,
  emails: emails.duration,
  date: new Date().toISOString().slice(0, 10),
};
";

/// Times bare round trips from the page. Arguments: the relay's `/healthz`
/// URL, a fakebucket URL, how many of each; then WebDriver's callback.
const ROUND_TRIPS_JS: &str = r"
const [relayUrl, fakebucketUrl, count, tokenUrl, done] = arguments;
const time = async (url, init) => {
  const started = performance.now();
  const response = await fetch(url, init || { mode: 'no-cors', cache: 'no-store' });
  await response.arrayBuffer();
  return performance.now() - started;
};
// A refresh with a junk proof: the relay refuses it (400) without calling
// upstream, so both placements time the browser and the relay alone.
const form = 'grant_type=refresh_token&refresh_token=bench';
const post = (body, headers) => ({
  method: 'POST', mode: 'cors', cache: 'no-store', credentials: 'omit', body,
  headers: Object.assign({ 'content-type': 'application/x-www-form-urlencoded' }, headers),
});
(async () => {
  const relay = [];
  const fakebucket = [];
  const proofInForm = [];
  const proofInHeader = [];
  for (let i = 0; i < count; i++) {
    relay.push(await time(relayUrl));
    fakebucket.push(await time(fakebucketUrl));
    proofInForm.push(await time(tokenUrl + '?form=' + i, post(form + '&dpop=e30.e30.e30')));
    // A URL of its own each time, so no cached preflight helps.
    proofInHeader.push(await time(tokenUrl + '?header=' + i, post(form, { dpop: 'e30.e30.e30' })));
  }
  done({ relay, fakebucket, proofInForm, proofInHeader });
})().catch((error) => done({ error: String(error) }));
";

/// What a run learns besides its sample: the browser and the date.
#[derive(Debug, Default, Clone)]
struct Context {
    browser: String,
    date: String,
}

/// The browser timing of the sign-in; see the module documentation.
#[tokio::test]
#[ignore = "benchmark: run by cargo xtask bench browser"]
async fn browser_timing() {
    let runs = env_count("DANCE_BENCH_RUNS", RUNS).max(1);
    let warmup = env_count("DANCE_BENCH_WARMUP", WARMUP);
    let mut samples = Vec::with_capacity(runs);
    let mut context = Context::default();
    for run in 0..warmup + runs {
        let mut measured = None;
        scenario("bench_browser", Mount::Root, async |stack| {
            let (sample, seen) = tokio::time::timeout(RUN_TIMEOUT, measure(stack))
                .await
                .map_err(|_| anyhow!("the run took longer than {RUN_TIMEOUT:?}"))??;
            measured = Some((sample, seen));
            Ok(())
        })
        .await;
        let Some((sample, seen)) = measured else { unreachable!("scenario panics on failure") };
        let kind = if run < warmup { "warm-up" } else { "run" };
        eprintln!(
            "bench {kind} {}: total {:.1} ms (wasm {:.1}, exchange {:.1}, API {:.1}, render {:.1})",
            if run < warmup { run + 1 } else { run + 1 - warmup },
            sample.total,
            sample.wasm_start,
            sample.exchange,
            sample.api,
            sample.render
        );
        if run >= warmup {
            samples.push(sample);
            context = seen;
        }
    }
    let table = table(&samples);
    println!("\n{table}");
    if let Some(out) = std::env::var_os("DANCE_BENCH_OUT") {
        let out = Path::new(&out);
        let section = section(&samples, warmup, &context, &table);
        if let Err(error) = std::fs::write(out, section.trim_end()) {
            panic!("could not write the results to {}: {error}", out.display());
        }
        println!("wrote the report to {}", out.display());
    }
}

/// A count from the environment, or `default`.
fn env_count(variable: &str, default: usize) -> usize {
    match std::env::var(variable) {
        Ok(value) => {
            value.parse().unwrap_or_else(|_| panic!("{variable}={value:?} is not a whole number"))
        }
        Err(_) => default,
    }
}

/// Signs in as Ada and reads the callback page's timeline and the bare
/// round trips.
async fn measure(stack: &mut Stack) -> Result<(Sample, Context)> {
    stack.open_landing("").await?;
    stack.sign_in().await?;
    stack
        .browser
        .wait_js(
            "return performance.getEntriesByName('dance:profile-rendered', 'mark').length > 0",
            "the dance:profile-rendered mark",
        )
        .await?;

    let relay_url = stack.relay.token_url();
    let api_base = stack.fakebucket.api_base();
    let timeline = stack
        .browser
        .client
        .execute(TIMELINE_JS, vec![json!(relay_url.as_str()), json!(api_base.as_str())])
        .await
        .context("reading the performance timeline")?;
    if let Some(missing) = timeline.get("missing") {
        bail!(
            "the callback page's timeline lacks {missing}; resources: {}; marks: {}",
            timeline["resources"],
            timeline["marks"]
        );
    }
    ensure!(
        timeline["callback"] == Value::Bool(true),
        "the page's navigation was not the OAuth callback"
    );

    let healthz = relay_url.join("healthz")?;
    let not_found = stack.fakebucket.url().join(FAKEBUCKET_404)?;
    let trips = stack
        .browser
        .client
        .execute_async(
            ROUND_TRIPS_JS,
            vec![
                json!(healthz.as_str()),
                json!(not_found.as_str()),
                json!(ROUND_TRIPS),
                json!(relay_url.as_str()),
            ],
        )
        .await
        .context("timing bare round trips")?;
    if let Some(error) = trips.get("error") {
        bail!("a bare round trip failed: {error}");
    }

    let number = |value: &Value, what: &str| {
        value.as_f64().ok_or_else(|| anyhow!("{what} is not a number: {value}"))
    };
    let marks = &timeline["marks"];
    let at = |name: &str| number(&marks[name], name);
    let median_of = |name: &str| -> Result<f64> {
        let list = trips[name].as_array().ok_or_else(|| anyhow!("no {name} round trips"))?;
        let mut times = list.iter().map(|v| number(v, name)).collect::<Result<Vec<f64>>>()?;
        Ok(median(&mut times))
    };
    let sample = Sample {
        total: at("dance:profile-rendered")?,
        wasm_start: at("dance:boot")?,
        redirect: number(&timeline["fetchStart"], "fetchStart")?,
        document: number(&timeline["documentEnd"], "responseEnd")?,
        wasm_fetch: number(&timeline["wasm"], "the .wasm duration")?,
        wasm_transfer: number(&timeline["wasmTransfer"], "the .wasm transferSize")?,
        wasm_end: number(&timeline["wasmEnd"], "the .wasm responseEnd")?,
        exchange: at("dance:exchange-done")? - at("dance:callback-start")?,
        config: at("dance:config-loaded")? - at("dance:boot")?,
        config_fetch: number(&timeline["config"], "the config.json duration")?,
        exchange_after_config: at("dance:exchange-done")? - at("dance:config-loaded")?,
        relay_post: number(&timeline["relay"], "the relay POST's duration")?,
        api: at("dance:profile-loaded")? - at("dance:exchange-done")?,
        api_user: number(&timeline["user"], "the /2.0/user duration")?,
        api_emails: number(&timeline["emails"], "the /2.0/user/emails duration")?,
        render: at("dance:profile-rendered")? - at("dance:profile-loaded")?,
        bare_relay: median_of("relay")?,
        bare_fakebucket: median_of("fakebucket")?,
        proof_in_form: median_of("proofInForm")?,
        proof_in_header: median_of("proofInHeader")?,
    };
    // Signed in as Ada, with her profile on screen: the run did what it says.
    stack.wait_profile(ADA).await?;
    let context = Context {
        browser: stack
            .browser
            .client
            .capabilities()
            .and_then(|c| c.get("browserVersion"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        date: timeline["date"].as_str().unwrap_or_default().to_owned(),
    };
    Ok((sample, context))
}

/// The median (mean of the two middle values for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The 90th percentile, nearest rank (the 18th of 20 values).
fn p90(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = (n * 9).div_ceil(10).max(1);
    values[rank - 1]
}

/// Median and p90 of one measure over the samples.
fn stats(samples: &[Sample], value: fn(&Sample) -> f64) -> (f64, f64) {
    let mut values: Vec<f64> = samples.iter().map(value).collect();
    (median(&mut values), p90(&mut values))
}

/// The Markdown table of every row.
fn table(samples: &[Sample]) -> String {
    let mut out = String::from("| phase | from → to | median ms | p90 ms |\n|---|---|---|---|\n");
    for row in ROWS {
        let (mid, high) = stats(samples, row.value);
        let label = if row.detail { format!("  ↳ {}", row.label) } else { row.label.to_owned() };
        let _ = writeln!(out, "| {label} | {} | {mid:.1} | {high:.1} |", row.span);
    }
    out
}

/// The whole `## Browser` section's body: method, machine, table, reading.
fn section(samples: &[Sample], warmup: usize, context: &Context, table: &str) -> String {
    let median_of = |value: fn(&Sample) -> f64| stats(samples, value).0;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let browser = if context.browser.is_empty() { "(version unknown)" } else { &context.browser };
    let transfer = median_of(|s| s.wasm_transfer);
    let mut out = String::new();
    let _ = write!(
        out,
        "Measured by `cargo xtask bench browser` (`tests/e2e/bench.rs`) on {date}: {runs} sign-ins \
         through the real pages, after {warmup} warm-up run(s) left out. Machine: {cores} cores \
         ({cpu}), headless Chromium {browser} over ChromeDriver, everything on loopback. The SPA is the \
         release build of `cargo xtask build` (`dist/`); fakebucket, the relay and the static \
         server run in the test process (its dev profile: workspace crates unoptimised, \
         dependencies at opt-level 1). Every run gets a fresh stack and a fresh, empty browser \
         profile, opens the landing page, signs in as Ada and waits for her profile. On the \
         callback page it reads `performance.getEntriesByType('navigation')`, the app's \
         `dance:*` marks and the resource entries of the `.wasm` fetch, the relay POST and the \
         two API calls; then it times, from the same page, {ROUND_TRIPS} bare `fetch()` round \
         trips each to the relay's `/healthz` and to a fakebucket path that answers 404 \
         (`mode: 'no-cors'`, `cache: 'no-store'`). Times are in milliseconds; \"↳\" rows are \
         parts of, or the network share of, the row above; p90 is the nearest rank.\n\n",
        date = if context.date.is_empty() { "(date unknown)" } else { &context.date },
        runs = samples.len(),
    );
    out.push_str(table);
    let wasm_from = if transfer < 1.0 {
        "from the HTTP cache (0 bytes transferred): the landing page has just loaded it"
    } else {
        "over the network"
    };
    let _ = write!(
        out,
        "\nReading the numbers (medians). Navigation start is the consent form's POST to \
         fakebucket, whose cross-origin redirect to the callback page takes {redirect:.1} ms \
         (the browser hides its details); the HTML document has arrived at {doc:.1} ms. The \
         `.wasm` fetch (the page's preload) starts at {wasm_begin:.1} ms, as the browser processes the \
         page's head, and takes {wasm_fetch:.1} ms, {wasm_from}; it is in hand at \
         {wasm_end:.1} ms, and compiling, instantiating and starting it takes {compile:.1} ms \
         more: the app is running at {wasm:.1} ms. The token exchange takes {exchange:.1} ms: \
         {config:.1} ms from the app's start to its settings in hand (they travel with the \
         sign-in in session storage and are checked again, so this page makes no \
         `config.json` request: its network time is {config_fetch:.1} ms), then {proper:.1} ms around a relay POST \
         whose network time is {relay:.1} ms, against {bare_relay:.1} ms for a bare round \
         trip to the relay. The POST is a simple CORS request (no preflight), so its extra \
         {relay_extra:.1} ms over the bare round trip are the relay's work, mostly its own \
         request to fakebucket's token endpoint and its check of the DPoP proof; the \
         remaining {app_exchange:.1} ms are the app's own around the request (checking the \
         callback against the stored attempt, making the sign-in's P-256 key pair with \
         WebCrypto and signing the proof, building the form, reading the JSON reply; the key \
         goes into IndexedDB in the background) and the browser's scheduling of it. The two API \
         calls run in parallel and take {api:.1} ms, against {user:.1} / {emails:.1} ms of \
         network time for `/2.0/user` and `/2.0/user/emails` (each includes a CORS preflight \
         for the `Authorization` header, so two round trips) and {bare_fb:.1} ms for a bare \
         round trip to fakebucket. Rendering the profile takes {render:.1} ms. In all, \
         {total:.1} ms from navigation start to the rendered profile.\n\n\
         Where the DPoP proof travels: in the form, a token POST is a simple request and \
         takes {in_form:.1} ms; in RFC 9449's `DPoP` header it needs a CORS preflight first \
         (the browser caches it per URL for the relay's `Access-Control-Max-Age`, so the \
         callback's exchange, the first POST of a fresh page, always pays it) and takes \
         {in_header:.1} ms. On loopback that is {header_extra:.1} ms; on a real network it is \
         one more round trip to the relay, tens to hundreds of milliseconds on a phone, on the \
         path between the person's consent and the profile. The app sends the proof in the form; \
         the relay accepts the header too, for RFC 9449 clients.\n",
        redirect = median_of(|s| s.redirect),
        doc = median_of(|s| s.document),
        wasm_fetch = median_of(|s| s.wasm_fetch),
        wasm_end = median_of(|s| s.wasm_end),
        wasm_begin = median_of(|s| s.wasm_end - s.wasm_fetch),
        compile = median_of(|s| s.wasm_start - s.wasm_end),
        config_fetch = median_of(|s| s.config_fetch),
        wasm = median_of(|s| s.wasm_start),
        exchange = median_of(|s| s.exchange),
        config = median_of(|s| s.config),
        proper = median_of(|s| s.exchange_after_config),
        relay = median_of(|s| s.relay_post),
        bare_relay = median_of(|s| s.bare_relay),
        relay_extra = median_of(|s| s.relay_post - s.bare_relay),
        app_exchange = median_of(|s| s.exchange_after_config - s.relay_post),
        api = median_of(|s| s.api),
        user = median_of(|s| s.api_user),
        emails = median_of(|s| s.api_emails),
        bare_fb = median_of(|s| s.bare_fakebucket),
        render = median_of(|s| s.render),
        total = median_of(|s| s.total),
        in_form = median_of(|s| s.proof_in_form),
        in_header = median_of(|s| s.proof_in_header),
        header_extra = median_of(|s| s.proof_in_header - s.proof_in_form),
    );
    out
}

#[test]
fn percentiles_of_twenty() {
    let mut values: Vec<f64> = (1..=20).rev().map(f64::from).collect();
    assert!((median(&mut values) - 10.5).abs() < f64::EPSILON);
    assert!((p90(&mut values) - 18.0).abs() < f64::EPSILON);
    assert!((median(&mut [3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
}
