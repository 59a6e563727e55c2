//! The relay benchmark behind `cargo xtask bench relay`.
//!
//! Everything runs on loopback and stops by itself:
//! 1. fakebucket starts in this process; the release `dance-relay` binary
//!    starts as a child process in front of it (rate limiting off, logs at
//!    `info` as in production, drained to nowhere), so its memory and CPU can
//!    be read from `/proc/PID/status` and `/proc/PID/stat`.
//! 2. Authorization codes are minted beforehand through fakebucket's consent
//!    flow (codes are single-use, so every exchange needs its own).
//! 3. The same number of code exchanges, with the same concurrency, go to
//!    fakebucket directly (with the client authentication the relay would
//!    add) and through the relay, alternating between the two in slices so
//!    that both see the same stretches of the machine's load. Each side gets
//!    a warm-up first.
//! 4. A burst opens `--connections` connections to the relay at once, then
//!    sends one exchange on each, all together.
//!
//! Steps 1 to 4 are one run, on a relay process of its own; `--runs` runs
//! (5 by default) give each measure's median and range, so that one noisy
//! run cannot decide a verdict. Then the burst alone, at a quarter, half and
//! all of `--connections`, each on fresh relays, shows where its memory goes.
//!
//! It reports throughput, p50/p99 latency of both paths, the relay's
//! overhead, its CPU time per exchange, and its resident memory idle, under
//! load and with the burst's connections open, against the relay's targets.
//!
//! Run with:
//! ```sh
//! cargo run --release -p dance-relay --example loadgen -- --report-out target/bench/relay.md
//! ```
//!
//! or `cargo xtask bench relay`, which does that and puts the report in the
//! `## Relay` section of BENCHMARKS.md.

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use dance_protocol::PkceVerifier;
use dance_testkit::{ORIGIN, REDIRECT_URI};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Options of the benchmark.
#[derive(Debug, Parser)]
#[command(about = "Benchmark dance-relay against fakebucket on loopback")]
struct Args {
    /// Exchanges per path (direct, and through the relay) in the throughput runs.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Exchanges in flight at once in the throughput runs.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Exchanges per path in the latency runs, which send one at a time so
    /// that queueing on the machine's few cores does not hide the relay's own cost.
    #[arg(long, default_value_t = 5_000)]
    latency_requests: usize,
    /// Connections opened at once in the burst.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Runs of the native benchmark, each on a fresh relay process; the
    /// report gives each measure's median and range.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Warm-up exchanges before each measured run.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    /// The relay binary; default: `dance-relay` beside this example's directory.
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Extra environment for the relay process (KEY=VALUE), e.g. RUST_LOG=warn; repeatable.
    #[arg(long = "relay-env", value_name = "KEY=VALUE")]
    relay_env: Vec<String>,
    /// Also write the report (Markdown, without a heading) to this file.
    #[arg(long, value_name = "FILE")]
    report_out: Option<PathBuf>,
    /// `native`: the full benchmark of `dance-relay`. `worker`: the Worker
    /// in a local workerd side by side with `dance-relay`, in the same run,
    /// against the same fakebucket (needs DANCE_WORKERD and
    /// DANCE_WORKER_BUILD, which `cargo xtask bench relay --target worker` sets).
    /// `binding`: `dance-relay` without and with a sealing key, side by side
    /// (the cost of checking DPoP proofs and sealing refresh tokens).
    #[arg(long, value_enum, default_value_t = BenchTarget::Native)]
    target: BenchTarget,
}

/// What `--target` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BenchTarget {
    Native,
    Worker,
    Binding,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.requests > 0
            && args.latency_requests > 0
            && args.concurrency > 0
            && args.connections > 0
            && args.runs > 0,
        "counts must be positive"
    );
    let relay_bin = relay_binary(args.relay_bin.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = match args.target {
        BenchTarget::Native => runtime.block_on(bench(&args, &relay_bin))?,
        BenchTarget::Worker => runtime.block_on(bench_worker(&args, &relay_bin))?,
        BenchTarget::Binding => runtime.block_on(bench_binding(&args, &relay_bin))?,
    };
    println!("{report}");
    if let Some(path) = &args.report_out {
        std::fs::write(path, &report)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("(written to {})", path.display());
    }
    Ok(())
}

/// Finds the relay binary, building it first when run through `cargo run`.
fn relay_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet", "-p", "dance-relay", "--bin", "dance-relay"])
            .status()
            .context("cannot run cargo to build dance-relay")?;
        ensure!(status.success(), "building dance-relay failed");
    }
    let exe = std::env::current_exe().context("cannot find this program")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("this program is not in target/<profile>/examples")?;
    let bin = dir.join("dance-relay");
    ensure!(
        bin.exists(),
        "{} does not exist: run `cargo build --release -p dance-relay` or pass --relay-bin",
        bin.display()
    );
    Ok(bin)
}

/// CPU time of a process, split as the kernel accounts it.
#[derive(Clone, Copy)]
struct Cpu {
    user: Duration,
    system: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;
    fn add(self, other: Cpu) -> Cpu {
        Cpu { user: self.user + other.user, system: self.system + other.system }
    }
}

impl Cpu {
    /// Microseconds per exchange: (user, system, total).
    fn per(self, exchanges: usize) -> (f64, f64, f64) {
        let n = exchanges.max(1) as f64;
        let (u, s) = (self.user.as_secs_f64() * 1e6 / n, self.system.as_secs_f64() * 1e6 / n);
        (u, s, u + s)
    }
}

/// The relay child process; killed if the benchmark fails half-way.
struct RelayProcess {
    child: Child,
    address: String,
}

impl RelayProcess {
    fn start(bin: &Path, token_url: &str, extra_env: &[String]) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command.env("RUST_LOG", "info");
        for pair in extra_env {
            let (key, value) = pair.split_once('=').context("--relay-env takes KEY=VALUE")?;
            command.env(key, value);
        }
        let mut child = command
            .env("DANCE_CLIENT_ID", fakebucket::DEMO_KEY)
            .env("DANCE_CLIENT_SECRET", fakebucket::DEMO_SECRET)
            .env("DANCE_TOKEN_URL", token_url)
            .env("DANCE_ALLOWED_ORIGINS", ORIGIN)
            .env("DANCE_ALLOWED_REDIRECT_URIS", REDIRECT_URI)
            .env("DANCE_LISTEN", "127.0.0.1:0")
            .env("DANCE_RATE_LIMIT", "0")
            .env("DANCE_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("the relay exited before listening");
            };
            let line = line.context("reading the relay's output")?;
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["message"] == "listening" {
                break json["address"].as_str().context("no address in the log line")?.to_owned();
            }
        };
        // Keep draining the log, or the relay would block on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Self { child, address })
    }

    /// Resident memory now and at its peak.
    fn memory(&self) -> anyhow::Result<Memory> {
        proc_status(self.child.id())
    }

    /// User and system CPU time so far.
    fn cpu(&self, ticks_per_second: f64) -> anyhow::Result<Cpu> {
        proc_cpu(self.child.id(), ticks_per_second)
    }
}

/// A process's user and system CPU time so far.
fn proc_cpu(pid: u32, ticks_per_second: f64) -> anyhow::Result<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context("cannot read /proc/PID/stat")?;
    let after_name = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); fields[0] is field 3.
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    Ok(Cpu {
        user: Duration::from_secs_f64(utime / ticks_per_second),
        system: Duration::from_secs_f64(stime / ticks_per_second),
    })
}

impl RelayProcess {
    /// SIGTERM, then wait: the relay's graceful shutdown.
    fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        ensure!(status.success(), "kill -TERM failed");
        let exit = self.child.wait()?;
        ensure!(exit.success(), "the relay exited with {exit}");
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Mints `count` codes through the consent flow (the test kit's
/// [`dance_testkit::mint_code`]), `concurrency` at a time.
async fn mint_codes(
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let http = dance_testkit::http_client();
    let request = Arc::new(dance_testkit::demo_authorization(fakebucket, verifier, "bench"));
    let left = Arc::new(AtomicUsize::new(count));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, request, left) = (http.clone(), request.clone(), left.clone());
        workers.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                codes.push(dance_testkit::mint_code(&http, &request).await?);
            }
            anyhow::Ok(codes)
        }));
    }
    let mut codes = Vec::with_capacity(count);
    for worker in workers {
        codes.extend(worker.await??);
    }
    Ok(codes)
}

/// The forms of `n` exchanges, each with a code minted just now. fakebucket's
/// store grows with every code and token and is swept on each request, so
/// each phase starts from an empty store with codes minted just for it: every
/// path measured sees the same upstream.
async fn fresh_forms(
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    fakebucket.reset();
    Ok(forms(mint_codes(fakebucket, verifier, n, 8).await?, verifier))
}

/// Where a run sends its exchanges.
#[derive(Clone)]
enum Target {
    /// fakebucket's token endpoint, with Basic client authentication.
    Direct(String),
    /// The relay's `/token`, with the SPA's Origin.
    Relay(String),
}

/// The latencies and wall time of one run.
struct Run {
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Run {
    fn empty() -> Self {
        Self { latencies: Vec::new(), wall: Duration::ZERO }
    }

    /// Adds `other`'s exchanges and time to this run's (unsorted until sorted again).
    fn absorb(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.wall += other.wall;
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }
}

/// Sends one exchange per form, `concurrency` at a time, and checks each answer.
async fn run(target: &Target, forms: Vec<String>, concurrency: usize) -> anyhow::Result<Run> {
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(concurrency).tcp_nodelay(true).build()?;
    let forms = Arc::new(forms);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, forms, next, target) =
            (http.clone(), forms.clone(), next.clone(), target.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(form) = forms.get(i) else { break };
                let request = match &target {
                    Target::Direct(url) => http
                        .post(url)
                        .basic_auth(fakebucket::DEMO_KEY, Some(fakebucket::DEMO_SECRET)),
                    Target::Relay(url) => http.post(url).header("origin", ORIGIN),
                };
                let sent = Instant::now();
                let response = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                latencies.push(sent.elapsed());
                ensure!(
                    status == 200,
                    "exchange failed with {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(forms.len());
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    Ok(Run { latencies, wall })
}

/// Opens `forms.len()` connections to the relay, reports the relay's memory
/// with all of them open and idle, then sends one exchange on each at once.
async fn burst(relay: &RelayProcess, forms: Vec<String>) -> anyhow::Result<(Memory, Duration)> {
    let mut streams = Vec::with_capacity(forms.len());
    for _ in 0..forms.len() {
        let stream = tokio::net::TcpStream::connect(&relay.address).await?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }
    // Make sure the relay has accepted (and set up) every connection: one
    // round trip on the last one is answered only after all earlier accepts.
    let last = streams.last_mut().context("no connection")?;
    let probe =
        one_exchange(last, "GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n".to_owned()).await?;
    ensure!(probe == 200, "health check failed");
    let idle_connections = relay.memory()?;
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .zip(forms)
        .map(|(mut stream, form)| {
            tokio::spawn(async move {
                let request = format!(
                    "POST /token HTTP/1.1\r\nhost: bench\r\norigin: {ORIGIN}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
                    form.len()
                );
                one_exchange(&mut stream, request).await
            })
        })
        .collect();
    for task in tasks {
        let status = task.await??;
        ensure!(status == 200, "a burst exchange failed with {status}");
    }
    Ok((idle_connections, started.elapsed()))
}

/// Writes a request and reads one response (head plus Content-Length body);
/// returns its status.
async fn one_exchange(stream: &mut tokio::net::TcpStream, request: String) -> anyhow::Result<u16> {
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        ensure!(n > 0, "the connection closed before a full response");
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buffer.len() >= end + 4 + length {
            let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            return Ok(status);
        }
    }
}

fn forms(codes: Vec<String>, verifier: &PkceVerifier) -> Vec<String> {
    codes.into_iter().map(|code| dance_testkit::code_form(&code, verifier)).collect()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn ms_f64(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A process's memory from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Default)]
struct Memory {
    /// Resident now (`VmRSS`).
    rss: u64,
    /// Resident at the peak so far (`VmHWM`).
    peak: u64,
    /// The anonymous part of `rss` (heap, stacks): what the relay allocates.
    anon: u64,
    /// The file-backed part of `rss`: the binary's and libraries' pages mapped so far.
    file: u64,
}

fn proc_status(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read /proc/PID/status (Linux only)")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/PID/status"))
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        peak: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// Alternates `blocks` slices of `forms` between `direct` and `through`
/// (direct first), each slice `concurrency` at a time, so that both paths
/// sample the same stretches of the machine's load; returns both paths'
/// merged runs and the relay's CPU time during its slices.
async fn interleaved(
    direct: &Target,
    through: &Target,
    relay: &RelayProcess,
    forms: Vec<String>,
    concurrency: usize,
    blocks: usize,
    ticks: f64,
) -> anyhow::Result<(Run, Run, Cpu)> {
    let slice = forms.len().div_ceil(2 * blocks.max(1)).max(1);
    let mut forms = forms.into_iter();
    let (mut direct_run, mut relay_run) = (Run::empty(), Run::empty());
    let mut cpu = Cpu { user: Duration::ZERO, system: Duration::ZERO };
    loop {
        let for_direct: Vec<String> = forms.by_ref().take(slice).collect();
        let for_relay: Vec<String> = forms.by_ref().take(slice).collect();
        if for_direct.is_empty() || for_relay.is_empty() {
            break;
        }
        direct_run.absorb(run(direct, for_direct, concurrency).await?);
        let before = relay.cpu(ticks)?;
        relay_run.absorb(run(through, for_relay, concurrency).await?);
        cpu = cpu + (relay.cpu(ticks)? - before);
    }
    direct_run.latencies.sort_unstable();
    relay_run.latencies.sort_unstable();
    Ok((direct_run, relay_run, cpu))
}

/// One run of the native benchmark, on a relay process of its own.
struct NativeRun {
    direct_serial: Run,
    relay_serial: Run,
    direct_loaded: Run,
    relay_loaded: Run,
    serial_cpu: Cpu,
    loaded_cpu: Cpu,
    burst_cpu: Cpu,
    burst_wall: Duration,
    start: Memory,
    idle: Memory,
    loaded: Memory,
    open: Memory,
    after: Memory,
}

impl NativeRun {
    /// Added latency at `p`: the relay's percentile minus the direct path's.
    fn added(&self, serial: bool, p: f64) -> f64 {
        let (relay, direct) = if serial {
            (&self.relay_serial, &self.direct_serial)
        } else {
            (&self.relay_loaded, &self.direct_loaded)
        };
        relay.percentile(p).as_secs_f64() * 1e3 - direct.percentile(p).as_secs_f64() * 1e3
    }
}

/// A fresh relay process through one complete run: warm-up, latency one at
/// a time, throughput, burst.
async fn native_run(
    args: &Args,
    relay_bin: &Path,
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
    ticks: f64,
) -> anyhow::Result<NativeRun> {
    let relay = RelayProcess::start(relay_bin, fakebucket.token_url().as_str(), &args.relay_env)?;
    let start = relay.memory()?;
    let fresh = |n: usize| fresh_forms(fakebucket, verifier, n);
    let direct = Target::Direct(fakebucket.token_url().to_string());
    let through = Target::Relay(format!("http://{}/token", relay.address));
    run(&direct, fresh(args.warmup).await?, args.concurrency).await?;
    run(&through, fresh(args.warmup).await?, args.concurrency).await?;
    let idle = relay.memory()?;

    eprintln!("  {} exchanges per path one at a time, interleaved...", args.latency_requests);
    let forms = fresh(2 * args.latency_requests).await?;
    let (direct_serial, relay_serial, serial_cpu) =
        interleaved(&direct, &through, &relay, forms, 1, 10, ticks).await?;
    eprintln!(
        "  {} exchanges per path, {} in flight, interleaved...",
        args.requests, args.concurrency
    );
    let forms = fresh(2 * args.requests).await?;
    let (direct_loaded, relay_loaded, loaded_cpu) =
        interleaved(&direct, &through, &relay, forms, args.concurrency, 4, ticks).await?;
    let loaded = relay.memory()?;

    eprintln!("  burst of {} connections...", args.connections);
    let forms = fresh(args.connections).await?;
    let before = relay.cpu(ticks)?;
    let (open, burst_wall) = burst(&relay, forms).await?;
    let burst_cpu = relay.cpu(ticks)? - before;
    let after = relay.memory()?;
    relay.stop()?;
    Ok(NativeRun {
        direct_serial,
        relay_serial,
        direct_loaded,
        relay_loaded,
        serial_cpu,
        loaded_cpu,
        burst_cpu,
        burst_wall,
        start,
        idle,
        loaded,
        open,
        after,
    })
}

/// Where the burst's memory goes: a fresh relay per size, warmed up, then
/// `n` connections opened and one exchange sent on each at once. Returns
/// the relay's memory with the connections open and idle, and after the
/// burst (with its peak).
async fn burst_at(
    n: usize,
    args: &Args,
    relay_bin: &Path,
    fakebucket: &fakebucket::Handle,
    verifier: &PkceVerifier,
) -> anyhow::Result<(Memory, Memory)> {
    let relay = RelayProcess::start(relay_bin, fakebucket.token_url().as_str(), &args.relay_env)?;
    let through = Target::Relay(format!("http://{}/token", relay.address));
    run(&through, fresh_forms(fakebucket, verifier, args.warmup).await?, args.concurrency).await?;
    let forms = fresh_forms(fakebucket, verifier, n).await?;
    let (open, _) = burst(&relay, forms).await?;
    let after = relay.memory()?;
    relay.stop()?;
    Ok((open, after))
}

/// The median of `values` and their range, `values` sorted in place.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
    (median, values[0], values[n - 1])
}

/// `--target native`: `--runs` runs, each on a fresh relay process, then
/// the burst at a quarter, half and all of `--connections` on fresh relays.
async fn bench(args: &Args, relay_bin: &Path) -> anyhow::Result<String> {
    let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await?;
    let ticks = clock_ticks();
    let verifier = PkceVerifier::generate();
    let mut runs = Vec::new();
    for i in 0..args.runs {
        eprintln!("run {} of {}:", i + 1, args.runs);
        runs.push(native_run(args, relay_bin, &fakebucket, &verifier, ticks).await?);
    }
    let sizes: Vec<usize> = [4, 2, 1].iter().map(|d| (args.connections / d).max(1)).collect();
    let mut scaling = Vec::new();
    for &n in &sizes {
        eprintln!("burst of {n} connections on fresh relays, {} times...", args.runs);
        let mut at = Vec::new();
        for _ in 0..args.runs {
            at.push(burst_at(n, args, relay_bin, &fakebucket, &verifier).await?);
        }
        scaling.push((n, at));
    }
    fakebucket.shutdown().await?;
    Ok(native_report(args, &runs, &scaling))
}

/// The Markdown report of [`bench`].
fn native_report(
    args: &Args,
    runs: &[NativeRun],
    scaling: &[(usize, Vec<(Memory, Memory)>)],
) -> String {
    let n = runs.len();
    let of = |pick: &dyn Fn(&NativeRun) -> f64| -> Vec<f64> { runs.iter().map(pick).collect() };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let (c, conns) = (args.concurrency, args.connections);
    let mut out = format!(
        "Measured by `cargo xtask bench relay` (`crates/relay/examples/loadgen.rs`): {profile} \
         build, {cores} cores, loopback, {n} runs. fakebucket runs in the load generator's \
         process; the relay is the release `dance-relay` binary as a child process (default \
         settings, rate limit off, JSON logs at info drained to nowhere), a fresh one for each \
         run. Every exchange is an `authorization_code` exchange of a fresh code minted \
         beforehand through fakebucket's consent page. Each run: {w} warm-up exchanges per path \
         ({c} in flight); {l} exchanges per path one at a time, then {r} per path with {c} in \
         flight, each phase alternating between the two paths in slices (10 and 4 per path) so \
         that both sample the same stretches of the machine's load; then a burst of {conns} \
         exchanges at once, one on each of {conns} connections opened beforehand. Each row is \
         the median of the runs, with their range; a verdict is the median's.\n\n\
         | relay measure | median | min – max of {n} runs | target | verdict |\n\
         |---|---|---|---|---|\n",
        w = args.warmup,
        l = args.latency_requests,
        r = args.requests,
    );
    let mut row = |name: &str, mut values: Vec<f64>, unit: &str, target: Option<f64>| {
        let over = target.map_or(0, |limit| values.iter().filter(|v| **v >= limit).count());
        let (median, min, max) = spread(&mut values);
        let (target, verdict) = match target {
            Some(limit) => {
                let met = if median < limit { "**met**" } else { "**not met**" };
                let verdict = match over {
                    0 => met.to_owned(),
                    over => format!("{met}; {over} of {n} runs over"),
                };
                (format!("< {limit} {unit}"), verdict)
            }
            None => (String::new(), String::new()),
        };
        let digits = if unit == "ms" { 3 } else { 1 };
        out.push_str(&format!(
            "| {name} | {median:.digits$} {unit} | {min:.digits$} – {max:.digits$} | {target} | {verdict} |\n"
        ));
    };
    let lat = args.latency_requests;
    let req = args.requests;
    row("added latency at p99, one at a time", of(&|r| r.added(true, 0.99)), "ms", Some(1.0));
    row(
        &format!("relay CPU per exchange, {c} in flight (user + system)"),
        of(&|r| r.loaded_cpu.per(req).2),
        "µs",
        Some(50.0),
    );
    row(
        &format!("relay peak RSS, {conns} exchanges at once on {conns} connections"),
        of(&|r| mib(r.after.peak)),
        "MiB",
        Some(20.0),
    );
    row("added latency at p50, one at a time", of(&|r| r.added(true, 0.5)), "ms", None);
    row(&format!("added latency at p50, {c} in flight"), of(&|r| r.added(false, 0.5)), "ms", None);
    row(&format!("added latency at p99, {c} in flight"), of(&|r| r.added(false, 0.99)), "ms", None);
    row(
        &format!("throughput through the relay, share of direct, {c} in flight"),
        of(&|r| 100.0 * r.relay_loaded.rate() / r.direct_loaded.rate()),
        "%",
        None,
    );
    row(
        &format!("relay CPU per exchange, {c} in flight: user"),
        of(&|r| r.loaded_cpu.per(req).0),
        "µs",
        None,
    );
    row(
        &format!("relay CPU per exchange, {c} in flight: system"),
        of(&|r| r.loaded_cpu.per(req).1),
        "µs",
        None,
    );
    row(
        "relay CPU per exchange, one at a time (user + system)",
        of(&|r| r.serial_cpu.per(lat).2),
        "µs",
        None,
    );
    row("relay RSS at start", of(&|r| mib(r.start.rss)), "MiB", None);
    row("relay RSS idle after warm-up", of(&|r| mib(r.idle.rss)), "MiB", None);
    row("relay peak RSS before the burst", of(&|r| mib(r.loaded.peak)), "MiB", None);
    row(
        &format!("relay RSS with {conns} connections open, idle"),
        of(&|r| mib(r.open.rss)),
        "MiB",
        None,
    );
    row("relay RSS after the burst: anonymous", of(&|r| mib(r.after.anon)), "MiB", None);
    row("relay RSS after the burst: file-backed", of(&|r| mib(r.after.file)), "MiB", None);
    row("burst: wall time", of(&|r| r.burst_wall.as_secs_f64() * 1e3), "ms", None);
    row(
        "burst: relay CPU per exchange, each on a new connection",
        of(&|r| r.burst_cpu.per(conns).2),
        "µs",
        None,
    );

    out.push_str(
        "\nThe paths (medians of the runs):\n\n\
         | path | in flight | exchanges/s | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n",
    );
    type Pick = fn(&NativeRun) -> &Run;
    let paths: [(&str, usize, Pick); 4] = [
        ("fakebucket directly", 1, |r| &r.direct_serial),
        ("through dance-relay", 1, |r| &r.relay_serial),
        ("fakebucket directly", c, |r| &r.direct_loaded),
        ("through dance-relay", c, |r| &r.relay_loaded),
    ];
    for (name, in_flight, pick) in paths {
        let median = |f: &dyn Fn(&Run) -> f64| spread(&mut of(&|r| f(pick(r)))).0;
        out.push_str(&format!(
            "| {name} | {in_flight} | {:.0} | {:.3} | {:.3} | {:.3} |\n",
            median(&Run::rate),
            median(&|r| ms_f64(r.percentile(0.5))),
            median(&|r| ms_f64(r.percentile(0.99))),
            median(&|r| ms_f64(r.latencies.last().copied().unwrap_or_default())),
        ));
    }

    out.push_str(&format!(
        "\nEach run:\n\n\
         | run | added p50 / p99 ms, one at a time | CPU µs per exchange, {c} in flight | CPU µs per exchange, one at a time | peak RSS MiB (anonymous + file-backed after the burst) |\n\
         |---|---|---|---|---|\n"
    ));
    for (i, r) in runs.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.3} / {:.3} | {:.1} | {:.1} | {:.1} ({:.1} + {:.1}) |\n",
            i + 1,
            r.added(true, 0.5),
            r.added(true, 0.99),
            r.loaded_cpu.per(req).2,
            r.serial_cpu.per(lat).2,
            mib(r.after.peak),
            mib(r.after.anon),
            mib(r.after.file),
        ));
    }

    out.push_str(
        "\nWhere the burst's memory goes: for each size, fresh relays (one per run), warmed up, \
         then that many connections opened and left idle, then one exchange sent on each at \
         once (medians of the runs). \"Per exchange\" is the growth from the idle connections to \
         the peak, divided by their number.\n\n\
         | exchanges at once | RSS with the connections idle, MiB | peak RSS MiB | after: anonymous MiB | after: file-backed MiB | peak growth per exchange, KiB |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut peaks = Vec::new();
    for (size, at) in scaling {
        let median = |f: &dyn Fn(&(Memory, Memory)) -> f64| {
            spread(&mut at.iter().map(f).collect::<Vec<_>>()).0
        };
        let peak = median(&|(_, after)| after.peak as f64);
        peaks.push((*size, peak));
        out.push_str(&format!(
            "| {size} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            median(&|(open, _)| mib(open.rss)),
            peak / 1024.0,
            median(&|(_, after)| mib(after.anon)),
            median(&|(_, after)| mib(after.file)),
            median(&|(open, after)| (after.peak as f64 - open.rss as f64) / *size as f64),
        ));
    }
    if let (Some(&(n0, p0)), Some(&(n1, p1))) = (peaks.first(), peaks.last())
        && n1 > n0
    {
        out.push_str(&format!(
            "\nFrom {n0} to {n1} exchanges at once, the median peak grows by {:.1} KiB per \
             exchange.\n",
            (p1 - p0) / (n1 - n0) as f64
        ));
    }
    out.push_str(
        "\nReading the numbers: an added latency is the relay path's percentile minus the direct \
         path's, in the same run. The CPU times are the relay process's user and system time \
         (from `/proc/PID/stat`, 10 ms ticks) divided by the exchanges of that phase; they \
         include the kernel's loopback TCP work for both ends of the relay's two connections and \
         the pipe writes of the access log (written in batches, whenever the relay runs out of \
         work). Run one at a time, every exchange also pays for waking the idle relay up. The \
         machine is shared by the load generator, fakebucket and the relay, so latencies under \
         load are mostly queueing for the two cores. Memory: RSS includes the file-backed pages \
         of the binary and libc mapped so far (about 6 MiB, shared with the page cache). A \
         connection costs a task and a socket (about 1 KiB) except while hyper reads and answers \
         one of its requests (hyper's 8 KiB read and 8 KiB write buffers and the request's \
         state), and hyper holds at most twice `DANCE_MAX_CONCURRENCY` requests (128 by \
         default) at once, the others waiting unread in the kernel; each exchange waiting on the \
         token endpoint also holds one of the relay's pooled connections to it.\n",
    );
    out
}

/// One relay's numbers in the side-by-side run.
struct Side {
    serial: Run,
    serial_cpu: Cpu,
    loaded: Run,
    loaded_cpu: Cpu,
    peak_rss: u64,
}

/// `--target worker`: the Worker in workerd and the native relay, each
/// measured the same way against the same fakebucket, in one run.
async fn bench_worker(args: &Args, relay_bin: &Path) -> anyhow::Result<String> {
    use dance_relay_worker::workerd::{Installation, Workerd};
    let installation = Installation::from_env().map_err(anyhow::Error::msg)?;
    let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await?;
    let native = RelayProcess::start(relay_bin, fakebucket.token_url().as_str(), &args.relay_env)?;
    let mut config = dance_testkit::relay_config(&fakebucket, ORIGIN, REDIRECT_URI);
    config.limits.rate_limit_per_minute = 0;
    let vars = config.to_vars();
    let mut startups = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let workerd = Workerd::start(&installation, &vars, None)?;
        startups.push(started.elapsed());
        drop(workerd);
    }
    startups.sort_unstable();
    let workerd = Workerd::start(&installation, &vars, None)?;
    // The same Worker with a sealing key: each exchange's DPoP proof is
    // verified and its refresh token sealed, in wasm (p256, ChaCha).
    config.sealing_keys = vec![dance_relay_core::SealingKey::generate()];
    let sealing = Workerd::start(&installation, &config.to_vars(), None)?;
    let ticks = clock_ticks();
    let verifier = PkceVerifier::generate();
    let key = dance_relay_core::dpop::testing::ProofKey::new();
    let fresh = |n: usize| fresh_forms(&fakebucket, &verifier, n);
    // Forms for a relay: with proofs for its token URL when it seals.
    let forms_for = |n: usize, proofs_for: Option<String>| {
        let (fakebucket, verifier, key) = (&fakebucket, &verifier, &key);
        async move {
            let forms = fresh_forms(fakebucket, verifier, n).await?;
            anyhow::Ok(match proofs_for {
                Some(htu) => with_proofs(forms, key, &htu),
                None => forms,
            })
        }
    };
    let direct = Target::Direct(fakebucket.token_url().to_string());
    let relays = [
        (
            "dance-relay (native)",
            native.child.id(),
            Target::Relay(format!("http://{}/token", native.address)),
            None,
        ),
        ("dance-relay-worker (workerd)", workerd.pid(), Target::Relay(workerd.url("/token")), None),
        (
            "dance-relay-worker with a sealing key",
            sealing.pid(),
            Target::Relay(sealing.url("/token")),
            Some(sealing.url("/token")),
        ),
    ];
    eprintln!("warming up...");
    run(&direct, fresh(args.warmup).await?, args.concurrency).await?;
    for (_, _, target, proofs_for) in &relays {
        run(target, forms_for(args.warmup, proofs_for.clone()).await?, args.concurrency).await?;
    }
    let direct_serial = run(&direct, fresh(args.latency_requests).await?, 1).await?;
    let direct_loaded = run(&direct, fresh(args.requests).await?, args.concurrency).await?;
    let mut sides = Vec::new();
    for (name, pid, target, proofs_for) in &relays {
        eprintln!(
            "{name}: {} one at a time, {} with {} in flight...",
            args.latency_requests, args.requests, args.concurrency
        );
        let forms = forms_for(args.latency_requests, proofs_for.clone()).await?;
        let before = proc_cpu(*pid, ticks)?;
        let serial = run(target, forms, 1).await?;
        let serial_cpu = proc_cpu(*pid, ticks)? - before;
        let forms = forms_for(args.requests, proofs_for.clone()).await?;
        let before = proc_cpu(*pid, ticks)?;
        let loaded = run(target, forms, args.concurrency).await?;
        let loaded_cpu = proc_cpu(*pid, ticks)? - before;
        let peak_rss = proc_status(*pid)?.peak;
        sides.push(Side { serial, serial_cpu, loaded, loaded_cpu, peak_rss });
    }
    drop(workerd);
    drop(sealing);
    native.stop()?;
    fakebucket.shutdown().await?;

    let (wasm, js) = (
        std::fs::read(installation.build.join("index_bg.wasm"))?,
        std::fs::read(installation.build.join("index.js"))?,
    );
    let gzip = |bytes: &[u8]| -> anyhow::Result<usize> {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes)?;
        Ok(encoder.finish()?.len())
    };
    let upload = gzip(&wasm)? + gzip(&js)?;
    let over =
        |relay: &Run, p: f64| ms(relay.percentile(p).saturating_sub(direct_serial.percentile(p)));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut out = format!(
        "Measured by `cargo xtask bench relay --target worker` (`crates/relay/examples/loadgen.rs`): \
         {cores} cores, loopback, one run, one fakebucket. The native relay is the release \
         `dance-relay` binary; the Worker is worker-build's release output served by workerd \
         (npm `workerd`, the runtime Cloudflare runs) with outbound fetch to loopback. Latency: \
         {} exchanges per relay, one at a time; throughput: {} exchanges, {} in flight; each after \
         {} warm-up exchanges. CPU is the serving process's user + system time (`/proc/PID/stat`) \
         per exchange.\n\n",
        args.latency_requests, args.requests, args.concurrency, args.warmup
    );
    out.push_str(&format!(
        "| Worker measure | value | limit |\n|---|---|---|\n\
         | upload size (wasm + JS, gzip) | {} KiB ({} KiB wasm raw) | 3 MiB (Workers Free), 10 MiB (Paid) |\n\
         | workerd start-up until it accepts connections, median of 5 (min, max) | {} ms ({}, {}) | |\n\n",
        upload / 1024,
        wasm.len() / 1024,
        ms(startups[2]),
        ms(startups[0]),
        ms(startups[4]),
    ));
    out.push_str(&format!(
        "| relay | exchanges/s, {c} in flight | p50 / p99 ms, {c} in flight | added p50 / p99 ms, one at a time | CPU µs per exchange, one at a time | CPU µs per exchange, {c} in flight | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|\n\
         | fakebucket directly | {:.0} | {} / {} | | | | |\n",
        direct_loaded.rate(),
        ms(direct_loaded.percentile(0.5)),
        ms(direct_loaded.percentile(0.99)),
        c = args.concurrency,
    ));
    for ((name, _, _, _), side) in relays.iter().zip(&sides) {
        out.push_str(&format!(
            "| {name} | {:.0} | {} / {} | {} / {} | {:.1} | {:.1} | {} |\n",
            side.loaded.rate(),
            ms(side.loaded.percentile(0.5)),
            ms(side.loaded.percentile(0.99)),
            over(&side.serial, 0.5),
            over(&side.serial, 0.99),
            side.serial_cpu.per(args.latency_requests).2,
            side.loaded_cpu.per(args.requests).2,
            mib(side.peak_rss),
        ));
    }
    out.push_str(
        "\nReading the numbers: workerd runs the relay as wasm inside V8, so each exchange also \
         pays for crossing between JavaScript and wasm, V8's own fetch and HTTP stacks, and the \
         runtime's per-request bookkeeping; its memory is mostly V8's heap and the runtime, not \
         the relay. On Cloudflare, the CPU time that counts against a Worker's limit (10 ms per \
         request on the Free plan) is the isolate's, without the network work done by the \
         runtime, so the per-exchange CPU here is an upper bound. The last row is the Worker with \
         a sealing key: each exchange's DPoP proof is verified (p256, compiled to wasm) and its \
         refresh token sealed (XChaCha20-Poly1305); the difference to the row above is what \
         binding refresh tokens costs a Worker.\n",
    );
    Ok(out)
}

/// Adds a DPoP proof for `htu`, made now by `key`, to each form: what the
/// SPA sends to a relay that seals refresh tokens.
fn with_proofs(
    forms: Vec<String>,
    key: &dance_relay_core::dpop::testing::ProofKey,
    htu: &str,
) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    forms.into_iter().map(|form| format!("{form}&dpop={}", key.proof(htu, now))).collect()
}

/// `--target binding`: the same relay binary without and with a sealing key,
/// measured the same way against the same fakebucket, in one run. With the
/// key, every exchange carries a DPoP proof the relay verifies (ECDSA P-256)
/// and its answer's refresh token is sealed (XChaCha20-Poly1305).
async fn bench_binding(args: &Args, relay_bin: &Path) -> anyhow::Result<String> {
    let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await?;
    let token_url = fakebucket.token_url().to_string();
    let plain = RelayProcess::start(relay_bin, &token_url, &args.relay_env)?;
    let mut sealing_env = args.relay_env.clone();
    sealing_env
        .push(format!("DANCE_SEALING_KEY={}", dance_relay_core::SealingKey::generate().encode()));
    let sealed = RelayProcess::start(relay_bin, &token_url, &sealing_env)?;
    let ticks = clock_ticks();
    let key = dance_relay_core::dpop::testing::ProofKey::new();
    let verifier = PkceVerifier::generate();
    const NAMES: [&str; 2] = ["without a sealing key", "with a sealing key"];
    let relays = [(NAMES[0], &plain, false), (NAMES[1], &sealed, true)];
    let forms_for = |n: usize, relay: &RelayProcess, proofs: bool| {
        let htu = format!("http://{}/token", relay.address);
        let (fakebucket, verifier, key) = (&fakebucket, &verifier, &key);
        async move {
            let forms = fresh_forms(fakebucket, verifier, n).await?;
            anyhow::Ok(if proofs { with_proofs(forms, key, &htu) } else { forms })
        }
    };
    eprintln!("warming up...");
    for (_, relay, proofs) in relays {
        let target = Target::Relay(format!("http://{}/token", relay.address));
        run(&target, forms_for(args.warmup, relay, proofs).await?, args.concurrency).await?;
    }
    let mut sides = Vec::new();
    for (name, relay, proofs) in relays {
        eprintln!(
            "{name}: {} one at a time, {} with {} in flight...",
            args.latency_requests, args.requests, args.concurrency
        );
        let target = Target::Relay(format!("http://{}/token", relay.address));
        let forms = forms_for(args.latency_requests, relay, proofs).await?;
        let before = relay.cpu(ticks)?;
        let serial = run(&target, forms, 1).await?;
        let serial_cpu = relay.cpu(ticks)? - before;
        let forms = forms_for(args.requests, relay, proofs).await?;
        let before = relay.cpu(ticks)?;
        let loaded = run(&target, forms, args.concurrency).await?;
        let loaded_cpu = relay.cpu(ticks)? - before;
        let peak_rss = relay.memory()?.peak;
        sides.push(Side { serial, serial_cpu, loaded, loaded_cpu, peak_rss });
    }
    plain.stop()?;
    sealed.stop()?;
    fakebucket.shutdown().await?;

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut out = format!(
        "Measured by `cargo xtask bench relay --target binding` \
         (`crates/relay/examples/loadgen.rs`): {cores} cores, loopback, one run, one fakebucket, \
         two release `dance-relay` processes that differ only in `DANCE_SEALING_KEY`. With the \
         key, each code exchange carries a DPoP proof (made beforehand by the load generator) \
         that the relay verifies, and the refresh token of each answer is sealed. Latency: {} \
         exchanges per relay, one at a time; throughput: {} exchanges, {} in flight; each after \
         {} warm-up exchanges. CPU is the relay process's user + system time \
         (`/proc/PID/stat`) per exchange.\n\n",
        args.latency_requests, args.requests, args.concurrency, args.warmup
    );
    out.push_str(&format!(
        "| relay | exchanges/s, {c} in flight | p50 / p99 ms, {c} in flight | p50 / p99 ms, one at a time | CPU µs per exchange, one at a time | CPU µs per exchange, {c} in flight | peak RSS MiB |\n\
         |---|---|---|---|---|---|---|\n",
        c = args.concurrency,
    ));
    for (name, side) in NAMES.iter().zip(&sides) {
        out.push_str(&format!(
            "| {name} | {:.0} | {} / {} | {} / {} | {:.1} | {:.1} | {} |\n",
            side.loaded.rate(),
            ms(side.loaded.percentile(0.5)),
            ms(side.loaded.percentile(0.99)),
            ms(side.serial.percentile(0.5)),
            ms(side.serial.percentile(0.99)),
            side.serial_cpu.per(args.latency_requests).2,
            side.loaded_cpu.per(args.requests).2,
            mib(side.peak_rss),
        ));
    }
    let extra = |pick: fn(&Side, &Args) -> f64| pick(&sides[1], args) - pick(&sides[0], args);
    out.push_str(&format!(
        "\nThe binding's cost: {:+.1} µs of CPU per exchange one at a time, {:+.1} µs with {} in \
         flight. Proof verification is one ECDSA P-256 verification; sealing is one \
         XChaCha20-Poly1305 encryption of a few hundred bytes. A refresh adds one decryption to \
         that, which this run does not measure separately.\n",
        extra(|s, a| s.serial_cpu.per(a.latency_requests).2),
        extra(|s, a| s.loaded_cpu.per(a.requests).2),
        args.concurrency,
    ));
    Ok(out)
}
