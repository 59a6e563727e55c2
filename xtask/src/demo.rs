//! `cargo xtask demo`: the whole stack on loopback, like a Procfile runner.
//!
//! Builds the SPA (unless `--no-build`), writes `dist/config.json` for the
//! stack, builds and starts `fakebucket` and `dance-relay` as child processes
//! and serves `dist/` itself. The children's stdout and stderr are read line by
//! line and printed with a coloured `name |` prefix, interleaved with the static
//! server's request log. When everything listens, one URL is printed. Ctrl-C
//! (or SIGTERM) stops everything: each child gets SIGTERM, then SIGKILL if it
//! is still running 5 s later, and is waited for. If a child exits on its own,
//! the rest is stopped and the demo fails naming it.
//!
//! With `--bitbucket` the relay talks to the real Bitbucket with the consumer
//! in `BITBUCKET_CLIENT_ID` / `BITBUCKET_CLIENT_SECRET`, and no fakebucket runs.
//!
//! Either relay (`--relay native` or `--relay worker`) seals refresh tokens
//! with a key made for this run, as a deployment should: the demo shows the
//! relay as it is meant to run, DPoP proofs and sealed tokens included. A
//! session therefore does not outlive the demo: after a restart its refresh
//! is refused (`not_sealed`) and the app asks to sign in again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use dance_protocol::deployment::config::Settings;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::build::{self, BuildArgs};
use crate::setup;
use crate::site::{
    self, BITBUCKET_API_BASE, BITBUCKET_AUTHORIZE_URL, BITBUCKET_IMAGE_ORIGINS, BITBUCKET_TOKEN_URL,
};
use crate::util::{self, step};
use crate::worker::{self, WorkerBuildArgs};
use dance_relay_core::{SealingKey, vars};
use dance_relay_worker::workerd::{self, Installation};

/// The demo consumer fakebucket knows by default.
const DEMO_CLIENT_ID: &str = fakebucket::DEMO_KEY;
/// See [`DEMO_CLIENT_ID`]. Not a secret: it only exists in the emulator.
const DEMO_CLIENT_SECRET: &str = fakebucket::DEMO_SECRET;
/// How long a child gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the stack gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Run against the real Bitbucket: needs BITBUCKET_CLIENT_ID and BITBUCKET_CLIENT_SECRET.
    #[arg(long)]
    bitbucket: bool,
    /// Serve the dist/ of the last build instead of building (skips set-up too).
    #[arg(long)]
    no_build: bool,
    /// Build into (or with --no-build, serve) this directory instead of dist/; its
    /// config.json and CSP are rewritten for this stack. `cargo xtask bench lighthouse` serves a
    /// copy of dist/ this way, on ports of its own.
    #[arg(long, value_name = "DIR")]
    dist: Option<PathBuf>,
    /// Port of the SPA's static server (the page to open).
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    port: u16,
    /// Port of the relay.
    #[arg(long, default_value_t = 8787, value_name = "PORT")]
    relay_port: u16,
    /// Port of fakebucket.
    #[arg(long, default_value_t = 9090, value_name = "PORT")]
    fakebucket_port: u16,
    /// Which relay to run: the native binary, or the Cloudflare Worker in a local workerd. Either
    /// seals refresh tokens with a key made for this run.
    #[arg(long, value_enum, default_value_t = RelayKind::Native)]
    relay: RelayKind,
}

/// The relay the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum RelayKind {
    /// `dance-relay`, the native binary.
    #[default]
    Native,
    /// `dance-relay-worker` in workerd, the open-source Workers runtime.
    Worker,
}

impl RelayKind {
    /// The name its log lines carry.
    fn name(self) -> &'static str {
        match self {
            Self::Native => "dance-relay",
            Self::Worker => "relay-worker",
        }
    }
}

/// Everything the pieces must agree on: addresses, URLs, the consumer.
struct Stack {
    spa: SocketAddr,
    relay: SocketAddr,
    relay_kind: RelayKind,
    /// `None` with `--bitbucket`.
    fakebucket: Option<SocketAddr>,
    client_id: String,
    client_secret: String,
    authorize_url: String,
    token_url: String,
    api_base: String,
    /// The relay's sealing key, made for this run and never printed.
    sealing_key: SealingKey,
}

impl Stack {
    fn new(args: &DemoArgs) -> Result<Self> {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        if args.bitbucket {
            let client_id = required_env("BITBUCKET_CLIENT_ID")?;
            let client_secret = required_env("BITBUCKET_CLIENT_SECRET")?;
            Ok(Self {
                spa: loopback(args.port),
                relay: loopback(args.relay_port),
                relay_kind: args.relay,
                fakebucket: None,
                client_id,
                client_secret,
                authorize_url: BITBUCKET_AUTHORIZE_URL.to_owned(),
                token_url: BITBUCKET_TOKEN_URL.to_owned(),
                api_base: BITBUCKET_API_BASE.to_owned(),
                sealing_key: SealingKey::generate(),
            })
        } else {
            let fakebucket = loopback(args.fakebucket_port);
            Ok(Self {
                spa: loopback(args.port),
                relay: loopback(args.relay_port),
                relay_kind: args.relay,
                fakebucket: Some(fakebucket),
                client_id: DEMO_CLIENT_ID.to_owned(),
                client_secret: DEMO_CLIENT_SECRET.to_owned(),
                authorize_url: format!("http://{fakebucket}/site/oauth2/authorize"),
                token_url: format!("http://{fakebucket}/site/oauth2/access_token"),
                api_base: format!("http://{fakebucket}/2.0/"),
                sealing_key: SealingKey::generate(),
            })
        }
    }

    /// The SPA's origin, which the relay allows.
    fn origin(&self) -> String {
        format!("http://{}", self.spa)
    }

    /// The page to open, which is also the OAuth callback URL.
    fn page_url(&self) -> String {
        format!("{}/", self.origin())
    }

    /// The origins the page fetches from (the relay, the API) and loads images
    /// from (avatars), for the Content-Security-Policy.
    fn csp_origins(&self) -> (Vec<String>, Vec<String>) {
        let relay = format!("http://{}", self.relay);
        match self.fakebucket {
            Some(fakebucket) => {
                let fakebucket = format!("http://{fakebucket}");
                (vec![relay, fakebucket.clone()], vec![fakebucket])
            }
            None => (
                vec![relay, "https://api.bitbucket.org".to_owned()],
                BITBUCKET_IMAGE_ORIGINS.iter().map(|origin| (*origin).to_owned()).collect(),
            ),
        }
    }

    /// The SPA's `config.json`, for the deployment contract's writer.
    fn config(&self) -> Settings {
        Settings::new(
            &self.client_id,
            &self.authorize_url,
            format!("http://{}/token", self.relay),
            &self.api_base,
        )
    }
}

fn required_env(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => bail!(
            "--bitbucket needs the OAuth consumer's key and secret in BITBUCKET_CLIENT_ID and \
             BITBUCKET_CLIENT_SECRET; {name} is not set (create a consumer under Bitbucket → \
             Workspace settings → OAuth consumers, callback URL = the demo page's URL)"
        ),
    }
}

/// Runs `cargo xtask demo`.
pub(crate) fn run(args: &DemoArgs) -> Result<()> {
    if args.bitbucket && args.relay == RelayKind::Worker {
        bail!(
            "--relay worker runs the Worker in a local workerd that may only reach loopback \
             (fakebucket); against the real Bitbucket, use the native relay or deploy the Worker"
        );
    }
    let stack = Stack::new(args)?;
    check_ports_free(&stack)?;
    let dist = if args.no_build {
        existing_dist(args.dist.clone().unwrap_or_else(build::dist_dir))?
    } else {
        build::run(&BuildArgs { dist: args.dist.clone(), ..BuildArgs::default() })?
    };
    build_servers(&stack)?;
    if stack.relay_kind == RelayKind::Worker {
        let build = worker::build_dir();
        if !(args.no_build && workerd::is_build_dir(&build)) {
            worker::run(&WorkerBuildArgs { no_setup: false })?;
        }
    }
    write_config(&dist, &stack)?;
    allow_origins_in_csp(&dist, &stack)?;
    let runtime = tokio::runtime::Runtime::new().context("could not start the tokio runtime")?;
    runtime.block_on(run_stack(&stack, dist))
}

/// Fails early, with the flag to change, when a port is taken.
fn check_ports_free(stack: &Stack) -> Result<()> {
    let mut ports = vec![("--port", stack.spa), ("--relay-port", stack.relay)];
    if let Some(fakebucket) = stack.fakebucket {
        ports.push(("--fakebucket-port", fakebucket));
    }
    for (flag, addr) in ports {
        std::net::TcpListener::bind(addr).with_context(|| {
            format!("{addr} is not free (another demo running?); choose another port with {flag}")
        })?;
    }
    Ok(())
}

fn existing_dist(dist: PathBuf) -> Result<PathBuf> {
    if !dist.join("index.html").is_file() {
        bail!(
            "--no-build needs a previous build, but {} has no index.html: run `cargo xtask build`",
            dist.display()
        );
    }
    Ok(dist)
}

fn build_servers(stack: &Stack) -> Result<()> {
    step("building the servers (cargo build)");
    let mut command = util::cargo();
    command.arg("build");
    if stack.fakebucket.is_some() {
        command.args(["-p", "fakebucket"]);
    }
    if stack.relay_kind == RelayKind::Native {
        command.args(["-p", "dance-relay"]);
    }
    util::run(&mut command)
}

fn write_config(dist: &Path, stack: &Stack) -> Result<()> {
    site::write_config(dist, &stack.config())
}

/// The SPA's index.html carries a Content-Security-Policy naming the default
/// demo's origins; point its `connect-src` and `img-src` at this stack's.
fn allow_origins_in_csp(dist: &Path, stack: &Stack) -> Result<()> {
    let (connect, img) = stack.csp_origins();
    if site::point_csp(dist, &connect, &img)? {
        step(format!(
            "pointed the Content-Security-Policy in {} at this stack",
            dist.join("index.html").display()
        ));
    }
    Ok(())
}

/// The directory of the workspace's debug binaries.
fn debug_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| util::root().join("target"), PathBuf::from)
        .join("debug")
}

/// One child process to run.
struct ChildSpec {
    name: &'static str,
    command: Command,
    /// Said instead of the command line, which may hold the secret.
    description: String,
}

fn child_specs(stack: &Stack) -> Result<Vec<ChildSpec>> {
    let bin = debug_dir();
    let mut specs = Vec::new();
    if let Some(fakebucket) = stack.fakebucket {
        let mut command = Command::new(bin.join("fakebucket"));
        let consumer = format!("{}:{}:{}", stack.client_id, stack.client_secret, stack.page_url());
        command.arg("--listen").arg(fakebucket.to_string()).arg("--consumer").arg(consumer);
        specs.push(ChildSpec {
            name: "fakebucket",
            command,
            description: format!(
                "fakebucket on {fakebucket} (consumer {}, callback {})",
                stack.client_id,
                stack.page_url()
            ),
        });
    }
    specs.push(match stack.relay_kind {
        RelayKind::Native => native_relay_spec(stack, &bin),
        RelayKind::Worker => worker_relay_spec(stack)?,
    });
    Ok(specs)
}

fn native_relay_spec(stack: &Stack, bin: &Path) -> ChildSpec {
    let mut command = Command::new(bin.join("dance-relay"));
    command
        .env("DANCE_LISTEN", stack.relay.to_string())
        .env(vars::CLIENT_ID, &stack.client_id)
        .env(vars::CLIENT_SECRET, &stack.client_secret)
        .env(vars::TOKEN_URL, &stack.token_url)
        .env(vars::ALLOWED_ORIGINS, stack.origin())
        .env(vars::ALLOWED_REDIRECT_URIS, stack.page_url())
        .env(vars::SEALING_KEY, stack.sealing_key.encode());
    ChildSpec {
        name: RelayKind::Native.name(),
        command,
        description: format!(
            "dance-relay on {} (client {}, token endpoint {}, origin {}, refresh tokens sealed \
             with a key made for this run)",
            stack.relay,
            stack.client_id,
            stack.token_url,
            stack.origin()
        ),
    }
}

/// workerd serving the relay Worker with the same settings as the native
/// relay would get, its configuration written under `target/demo-workerd`.
fn worker_relay_spec(stack: &Stack) -> Result<ChildSpec> {
    let installation = Installation {
        workerd: setup::workerd_binary()
            .context("workerd is not installed: run `cargo xtask setup`")?,
        build: worker::build_dir(),
    };
    let config = worker_config(stack)?;
    let dir = util::root().join("target/demo-workerd");
    let path = workerd::prepare(&dir, &installation, &config.to_vars(), stack.relay)
        .with_context(|| format!("writing workerd's configuration in {}", dir.display()))?;
    let mut command = Command::new(&installation.workerd);
    command.arg("serve").arg(path);
    Ok(ChildSpec {
        name: RelayKind::Worker.name(),
        command,
        description: format!(
            "the relay Worker in workerd on {} (client {}, token endpoint {}, origin {}, refresh \
             tokens sealed with a key made for this run)",
            stack.relay,
            stack.client_id,
            stack.token_url,
            stack.origin()
        ),
    })
}

/// The Worker's settings: those the native relay gets from its environment.
fn worker_config(stack: &Stack) -> Result<dance_relay_core::Config> {
    let mut config = dance_relay_core::Config::new(
        dance_protocol::ClientId::new(&stack.client_id),
        dance_protocol::ClientSecret::new(&stack.client_secret),
    );
    config.token_url = stack.token_url.parse().context("the token URL")?;
    config.allowed_origins = vec![stack.origin()];
    config.allowed_redirect_uris = vec![stack.page_url()];
    config.sealing_keys = vec![stack.sealing_key.clone()];
    Ok(config)
}

/// Runs the static server and the children until Ctrl-C or a child's exit.
async fn run_stack(stack: &Stack, dist: PathBuf) -> Result<()> {
    let mut names = vec!["static", "xtask", stack.relay_kind.name()];
    if stack.fakebucket.is_some() {
        names.push("fakebucket");
    }
    let console = Console::new(&names);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (exit_tx, mut exit_rx) = mpsc::channel(4);

    let listener = tokio::net::TcpListener::bind(stack.spa)
        .await
        .with_context(|| format!("could not listen on {} (choose another --port)", stack.spa))?;
    let static_console = console.clone();
    let log: crate::serve::Log = Arc::new(move |line| static_console.line("static", &line));
    let mut stop = stop_rx.clone();
    let server = tokio::spawn(
        axum::serve(listener, crate::serve::app(dist.clone(), log))
            .with_graceful_shutdown(async move {
                // An error means the sender is gone, which also means stop.
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .into_future(),
    );
    console.line("xtask", &format!("serving {} on {}", dist.display(), stack.spa));

    let mut supervisors = Vec::new();
    let mut started = Ok(());
    for spec in child_specs(stack)? {
        console.line("xtask", &format!("starting {}", spec.description));
        match spawn_child(spec, &console) {
            Ok((name, child, pumps)) => supervisors.push(tokio::spawn(supervise(
                name,
                child,
                pumps,
                stop_rx.clone(),
                exit_tx.clone(),
                console.clone(),
            ))),
            Err(error) => {
                started = Err(error);
                break;
            }
        }
    }
    drop(exit_tx);

    let outcome = match started {
        Ok(()) => wait_until_done(stack, &console, &mut exit_rx).await,
        Err(error) => Err(error),
    };

    console.line("xtask", "stopping everything");
    // Receivers may all be gone already, which is fine: nothing left to stop.
    let _ = stop_tx.send(true);
    for supervisor in supervisors {
        // A panicked supervisor has nothing left to clean up.
        let _ = supervisor.await;
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => console.line("static", &format!("server error: {error}")),
        Err(error) => console.line("static", &format!("server task failed: {error}")),
    }
    console.line("xtask", "stopped");
    outcome
}

/// Waits for the stack to listen (then prints the URL), and then for Ctrl-C,
/// SIGTERM or a child's exit.
async fn wait_until_done(
    stack: &Stack,
    console: &Console,
    exits: &mut mpsc::Receiver<(&'static str, ExitStatus)>,
) -> Result<()> {
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let ready = wait_ready(stack);
    tokio::pin!(ready);
    let mut announced = false;
    loop {
        tokio::select! {
            result = &mut ready, if !announced => {
                result?;
                announced = true;
                announce(stack, console);
            }
            signal = &mut signal => {
                let name = signal?;
                console.line("xtask", &format!("{name} received"));
                return Ok(());
            }
            exited = exits.recv() => {
                return match exited {
                    Some((name, status)) => Err(anyhow!("{name} exited on its own ({status}); see its log above")),
                    None => Err(anyhow!("every child process has exited")),
                };
            }
        }
    }
}

fn announce(stack: &Stack, console: &Console) {
    if stack.fakebucket.is_none() {
        console.line(
            "xtask",
            "running against the real Bitbucket: the consumer's callback URL must be the page below, exactly",
        );
    }
    println!();
    step(format!("open {}", stack.page_url()));
    util::note(
        "refresh tokens are sealed with a key made for this run: a session ends with the demo",
    );
    util::note("(Ctrl-C stops everything)");
    println!();
    util::flush();
}

/// Waits until every server accepts TCP connections.
async fn wait_ready(stack: &Stack) -> Result<()> {
    let mut targets = vec![(stack.relay_kind.name(), stack.relay)];
    if let Some(fakebucket) = stack.fakebucket {
        targets.push(("fakebucket", fakebucket));
    }
    let started = Instant::now();
    for (name, addr) in targets {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if started.elapsed() > START_TIMEOUT {
                bail!("{name} is not listening on {addr} after {} s", START_TIMEOUT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, saying which.
async fn shutdown_signal() -> Result<&'static str> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("could not listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result.context("could not listen for Ctrl-C")?;
            Ok("Ctrl-C")
        }
        _ = terminate.recv() => Ok("SIGTERM"),
    }
}

type Spawned = (&'static str, Child, Vec<JoinHandle<()>>);

/// Starts a child with piped output, and tasks that print its lines.
fn spawn_child(spec: ChildSpec, console: &Console) -> Result<Spawned> {
    let ChildSpec { name, mut command, .. } = spec;
    command
        .current_dir(util::root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    if !console.colour {
        command.env("NO_COLOR", "1");
    }
    let mut child =
        command.spawn().with_context(|| format!("could not start {name} (was it built?)"))?;
    let mut pumps = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(name, stdout, console.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(name, stderr, console.clone())));
    }
    Ok((name, child, pumps))
}

/// Prints every line read from `reader` under `name`.
async fn pump(name: &'static str, reader: impl AsyncRead + Unpin, console: Console) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                console.line(name, text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// Owns a child: reports its exit, or stops it when asked.
async fn supervise(
    name: &'static str,
    mut child: Child,
    pumps: Vec<JoinHandle<()>>,
    mut stop: watch::Receiver<bool>,
    exits: mpsc::Sender<(&'static str, ExitStatus)>,
    console: Console,
) {
    /// What ended the wait; the watch guard must not live across later awaits.
    enum Ended {
        Exited(std::io::Result<ExitStatus>),
        Stopped,
    }
    let ended = tokio::select! {
        status = child.wait() => Ended::Exited(status),
        _ = stop.wait_for(|stopped| *stopped) => Ended::Stopped,
    };
    match ended {
        Ended::Exited(status) => {
            drain(pumps).await;
            match status {
                // Nobody listening any more means we are stopping anyway.
                Ok(status) => {
                    let _ = exits.send((name, status)).await;
                }
                Err(error) => console.line("xtask", &format!("could not wait for {name}: {error}")),
            }
        }
        Ended::Stopped => {
            terminate(name, &mut child, &console).await;
            drain(pumps).await;
        }
    }
}

/// Lets the output tasks print what is left (bounded, in case a grandchild
/// keeps a pipe open).
async fn drain(pumps: Vec<JoinHandle<()>>) {
    for pump in pumps {
        // Whatever a pump left unprinted after a second is not worth waiting for.
        let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
    }
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`]; waits for the child either way.
async fn terminate(name: &str, child: &mut Child, console: &Console) {
    if let Some(pid) = child.id() {
        // `kill` may be missing; the SIGKILL below still stops the child.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    let status = match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            console.line(
                "xtask",
                &format!("{name} still runs {} s after SIGTERM: killing it", STOP_GRACE.as_secs()),
            );
            // A kill error means it is already gone; `wait` below says how it ended.
            let _ = child.kill().await;
            child.wait().await
        }
    };
    match status {
        Ok(status) => console.line("xtask", &format!("{name} stopped ({status})")),
        Err(error) => console.line("xtask", &format!("could not wait for {name}: {error}")),
    }
}

/// Prints lines under a coloured, aligned `name |` prefix.
#[derive(Clone)]
struct Console {
    width: usize,
    colour: bool,
}

impl Console {
    fn new(names: &[&str]) -> Self {
        use std::io::IsTerminal;
        Self {
            width: names.iter().map(|name| name.len()).max().unwrap_or(0),
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn line(&self, name: &str, text: &str) {
        let prefix = format!("{name:>width$} |", width = self.width);
        if self.colour {
            println!("\x1b[{}m{prefix}\x1b[0m {text}", colour_of(name));
        } else {
            println!("{prefix} {text}");
        }
        util::flush();
    }
}

/// The ANSI colour of a process's prefix.
fn colour_of(name: &str) -> &'static str {
    match name {
        "fakebucket" => "36",
        "dance-relay" | "relay-worker" => "35",
        "static" => "32",
        _ => "33;1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_relay_gets_the_native_relays_settings_and_refuses_the_real_bitbucket() {
        let mut demo = args(false);
        demo.relay = RelayKind::Worker;
        let stack = Stack::new(&demo).expect("a stack");
        assert_eq!(stack.relay_kind.name(), "relay-worker");
        let config = worker_config(&stack).expect("the Worker's settings");
        let settings = config.to_vars();
        let sealing = settings.iter().find(|(name, _)| *name == vars::SEALING_KEY);
        assert_eq!(sealing.map(|(_, key)| key.clone()), Some(stack.sealing_key.encode()));
        // Read back as the Worker reads them: sound, without even the
        // warning that refresh tokens are unbound.
        let (read, problems) = dance_relay_core::Config::from_vars(|name| {
            settings.iter().find(|(n, _)| *n == name).map(|(_, value)| value.clone())
        });
        assert_eq!(problems, vec![], "the Worker's settings have problems");
        assert_eq!(read.sealing_keys, std::slice::from_ref(&stack.sealing_key));
        let mut real = args(true);
        real.relay = RelayKind::Worker;
        let error = run(&real).expect_err("refused").to_string();
        assert!(error.contains("--relay worker"), "{error}");
    }

    fn args(bitbucket: bool) -> DemoArgs {
        DemoArgs {
            bitbucket,
            no_build: true,
            dist: None,
            port: 8080,
            relay_port: 8787,
            fakebucket_port: 9090,
            relay: RelayKind::Native,
        }
    }

    #[test]
    fn local_config_points_everything_at_loopback() {
        let stack = Stack::new(&args(false)).expect("stack");
        assert_eq!(
            stack.config(),
            Settings {
                client_id: DEMO_CLIENT_ID.to_owned(),
                authorize_url: "http://127.0.0.1:9090/site/oauth2/authorize".to_owned(),
                relay_url: "http://127.0.0.1:8787/token".to_owned(),
                api_base: "http://127.0.0.1:9090/2.0/".to_owned(),
                scopes: vec!["account".to_owned(), "email".to_owned()],
            }
        );
        assert_eq!(stack.page_url(), "http://127.0.0.1:8080/");
        assert_eq!(stack.token_url, "http://127.0.0.1:9090/site/oauth2/access_token");
    }

    /// The repository's `config.json` (what `trunk serve` and a plain build
    /// ship) holds what the demo writes for its default ports.
    #[test]
    fn the_shipped_config_json_is_the_demos() {
        let stack = Stack::new(&args(false)).expect("stack");
        let path = crate::util::root().join("config.json");
        let shipped: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("config.json"))
                .expect("JSON");
        let written: serde_json::Value =
            serde_json::from_str(&stack.config().to_json()).expect("JSON");
        assert_eq!(shipped, written);
    }

    #[test]
    fn real_bitbucket_stack_allows_bitbucket_api_and_avatars() {
        let mut demo = args(true);
        demo.relay_port = 9999;
        // The constructor reads the consumer from the environment; build the
        // stack by hand instead of touching the process environment.
        let stack = Stack {
            spa: SocketAddr::from(([127, 0, 0, 1], demo.port)),
            relay: SocketAddr::from(([127, 0, 0, 1], demo.relay_port)),
            relay_kind: RelayKind::Native,
            fakebucket: None,
            client_id: "key".to_owned(),
            client_secret: "secret".to_owned(),
            authorize_url: BITBUCKET_AUTHORIZE_URL.to_owned(),
            token_url: BITBUCKET_TOKEN_URL.to_owned(),
            api_base: BITBUCKET_API_BASE.to_owned(),
            sealing_key: SealingKey::generate(),
        };
        let (connect, img) = stack.csp_origins();
        assert_eq!(connect, ["http://127.0.0.1:9999", "https://api.bitbucket.org"]);
        assert!(img.contains(&"https://secure.gravatar.com".to_owned()));
        assert_eq!(
            child_specs(&stack).expect("specs").len(),
            1,
            "no fakebucket against the real Bitbucket"
        );
        assert_eq!(stack.config().relay_url, "http://127.0.0.1:9999/token");
    }

    #[test]
    fn children_get_the_agreed_flags_and_environment() {
        let stack = Stack::new(&args(false)).expect("stack");
        let specs = child_specs(&stack).expect("specs");
        let names: Vec<&str> = specs.iter().map(|spec| spec.name).collect();
        assert_eq!(names, ["fakebucket", "dance-relay"]);

        let fakebucket = specs[0].command.as_std();
        let args: Vec<_> = fakebucket.get_args().collect();
        assert_eq!(
            args,
            [
                "--listen",
                "127.0.0.1:9090",
                "--consumer",
                fakebucket::Consumer::demo_spec().as_str()
            ]
        );

        let relay = specs[1].command.as_std();
        let env: Vec<(String, String)> = relay
            .get_envs()
            .filter_map(|(key, value)| {
                Some((key.to_string_lossy().into_owned(), value?.to_string_lossy().into_owned()))
            })
            .collect();
        for (key, value) in [
            ("DANCE_CLIENT_ID", DEMO_CLIENT_ID),
            ("DANCE_CLIENT_SECRET", DEMO_CLIENT_SECRET),
            ("DANCE_TOKEN_URL", "http://127.0.0.1:9090/site/oauth2/access_token"),
            ("DANCE_ALLOWED_ORIGINS", "http://127.0.0.1:8080"),
            ("DANCE_ALLOWED_REDIRECT_URIS", "http://127.0.0.1:8080/"),
        ] {
            assert!(env.contains(&(key.to_owned(), value.to_owned())), "{key} missing in {env:?}");
        }
        assert!(
            !specs[1].description.contains(DEMO_CLIENT_SECRET),
            "the description must not show the secret"
        );
        let key = stack.sealing_key.encode();
        assert!(
            env.contains(&(vars::SEALING_KEY.to_owned(), key.clone())),
            "{} missing in {env:?}",
            vars::SEALING_KEY
        );
        assert!(!specs[1].description.contains(&key), "the description must not show the key");
        assert!(specs[1].description.contains("sealed"), "{}", specs[1].description);
    }

    #[test]
    fn every_run_seals_with_a_key_of_its_own() {
        let (one, two) = (Stack::new(&args(false)), Stack::new(&args(false)));
        let (one, two) = (one.expect("stack"), two.expect("stack"));
        assert_ne!(one.sealing_key, two.sealing_key);
    }
}
