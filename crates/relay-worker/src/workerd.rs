//! Runs the built Worker in a local `workerd` on loopback: how the tests,
//! the end-to-end suite, the demo and the benchmark get a Worker relay with
//! no Cloudflare account and no network.
//!
//! [`Workerd::start`] writes a workerd configuration (Cap'n Proto text) into
//! a fresh temporary directory beside copies of the two modules
//! `worker-build` produced (`index.js` and `index_bg.wasm`), with the
//! settings as text bindings, a socket on `127.0.0.1`, and outbound `fetch`
//! allowed to loopback only (without that, workerd refuses to connect to
//! `127.0.0.1`). It returns once the socket accepts connections. Dropping
//! the value stops workerd and removes the directory.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable naming workerd's binary (`cargo xtask` sets it).
pub const WORKERD_ENV: &str = "DANCE_WORKERD";
/// The environment variable naming worker-build's output directory, the one
/// holding `index.js` and `index_bg.wasm` (`cargo xtask` sets it).
pub const BUILD_ENV: &str = "DANCE_WORKER_BUILD";
/// The compatibility date the Worker is written for: the newest date the
/// pinned workerd supports, and the one `wrangler.toml` names.
pub const COMPATIBILITY_DATE: &str = "2026-11-17";
/// How long workerd may take to open its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running workerd serving the relay Worker.
#[derive(Debug)]
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Where the pieces are: workerd's binary and worker-build's output.
#[derive(Debug, Clone)]
pub struct Installation {
    /// workerd's native binary.
    pub workerd: PathBuf,
    /// The directory with `index.js` and `index_bg.wasm`.
    pub build: PathBuf,
}

impl Installation {
    /// The installation named by [`WORKERD_ENV`] and [`BUILD_ENV`], or a
    /// message that says how to get one.
    pub fn from_env() -> Result<Self, String> {
        let get = |name: &str| {
            std::env::var_os(name).map(PathBuf::from).ok_or_else(|| {
                format!(
                    "{name} is not set: the Worker relay's tests run under `cargo xtask test`, \
                     which builds the Worker and sets {WORKERD_ENV} and {BUILD_ENV}"
                )
            })
        };
        let installation = Self { workerd: get(WORKERD_ENV)?, build: get(BUILD_ENV)? };
        for module in ["index.js", "index_bg.wasm"] {
            let path = installation.build.join(module);
            if !path.is_file() {
                return Err(format!("{} does not exist: build the Worker first", path.display()));
            }
        }
        Ok(installation)
    }
}

impl Workerd {
    /// Starts workerd with the Worker and these settings (the `DANCE_*`
    /// variables, secret included) on `127.0.0.1:port`, or on a free port
    /// when `port` is `None`, and waits until it accepts connections.
    ///
    /// A free port is picked by binding and releasing it, so another process
    /// may take it first; then workerd cannot listen, and the start is tried
    /// again on another port, up to three times.
    pub fn start(
        installation: &Installation,
        vars: &[(&str, String)],
        port: Option<u16>,
    ) -> io::Result<Self> {
        let Some(port) = port else {
            let mut attempt = 1;
            loop {
                match Self::start_on(installation, vars, free_port()?) {
                    Err(_) if attempt < 3 => attempt += 1,
                    started => return started,
                }
            }
        };
        Self::start_on(installation, vars, port)
    }

    fn start_on(
        installation: &Installation,
        vars: &[(&str, String)],
        port: u16,
    ) -> io::Result<Self> {
        static INSTANCE: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dance-workerd-{}-{}",
            std::process::id(),
            INSTANCE.fetch_add(1, Ordering::Relaxed)
        ));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let config = prepare(&dir, installation, vars, addr)?;
        let log = std::fs::File::create(dir.join("workerd.log"))?;
        let child = Command::new(&installation.workerd)
            .arg("serve")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {}: {e}", installation.workerd.display()),
                )
            })?;
        let mut workerd = Self { child, addr, dir };
        workerd.wait_until_ready()?;
        Ok(workerd)
    }

    /// workerd's process id (to read its CPU time and memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address workerd listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What workerd printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("workerd.log")).unwrap_or_default()
    }

    fn wait_until_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "workerd exited ({status}) before serving:\n{}",
                    self.log()
                )));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "workerd did not open {} within {READY_TIMEOUT:?}:\n{}",
                    self.addr,
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes into `dir` what `workerd serve` needs to serve the Worker with
/// `vars` on `addr`: copies of the two modules and the configuration, whose
/// path it returns. Run `workerd serve <that path>`.
pub fn prepare(
    dir: &Path,
    installation: &Installation,
    vars: &[(&str, String)],
    addr: SocketAddr,
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for module in ["index.js", "index_bg.wasm"] {
        std::fs::copy(installation.build.join(module), dir.join(module))?;
    }
    let path = dir.join("config.capnp");
    std::fs::write(&path, config(vars, addr))?;
    Ok(path)
}

/// A port that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// The workerd configuration: the Worker with its settings as text
/// bindings, served on `addr`, its outbound `fetch` allowed to loopback.
pub fn config(vars: &[(&str, String)], addr: SocketAddr) -> String {
    let mut bindings = String::new();
    for (name, value) in vars {
        let _ = writeln!(bindings, "    (name = {}, text = {}),", quote(name), quote(value));
    }
    format!(
        r#"# Written by dance-relay-worker's launcher: the relay Worker on loopback.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "relay", worker = .relay),
    # Outbound fetch may reach loopback (fakebucket) and nothing else.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [(name = "http", address = "{addr}", http = (), service = "relay")],
);

const relay :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "{COMPATIBILITY_DATE}",
  bindings = [
{bindings}  ],
  globalOutbound = "loopback",
);
"#
    )
}

/// A Cap'n Proto text literal.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\x{:02x}", u32::from(c) & 0xff);
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Whether `path` looks like worker-build's output directory.
pub fn is_build_dir(path: &Path) -> bool {
    path.join("index.js").is_file() && path.join("index_bg.wasm").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_quoted_text_bindings() {
        let vars =
            [("DANCE_CLIENT_ID", "key".to_owned()), ("DANCE_CLIENT_SECRET", "a\"b\\c".to_owned())];
        let text = config(&vars, SocketAddr::from(([127, 0, 0, 1], 8787)));
        assert!(text.contains(r#"(name = "DANCE_CLIENT_ID", text = "key"),"#), "{text}");
        assert!(text.contains(r#"(name = "DANCE_CLIENT_SECRET", text = "a\"b\\c"),"#), "{text}");
        assert!(text.contains(r#"address = "127.0.0.1:8787""#), "{text}");
        assert!(text.contains(r#"globalOutbound = "loopback""#), "{text}");
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn a_missing_installation_says_how_to_get_one() {
        if std::env::var_os(WORKERD_ENV).is_none() {
            let message = Installation::from_env().expect_err("not set");
            assert!(message.contains("cargo xtask test"), "{message}");
        }
    }
}
