//! `cargo xtask relay-release`: the relay as one static binary, built exactly
//! as `deploy/Dockerfile` builds it, then smoke-tested.
//!
//! The build is `cargo build --release --locked -p dance-relay --target
//! <arch>-unknown-linux-musl` (the musl target and `musl-gcc` come from
//! `cargo xtask setup`). The smoke test then checks that the binary
//! - is static (its ELF program headers name no interpreter),
//! - explains every `DANCE_*` setting of the relay's README in `--help`, and
//!   the README documents every one `--help` names,
//! - prints a sealing key with `keygen`,
//! - passes `check` with a sound configuration (sealed with that key, so
//!   without a single warning) and fails it with a broken one,
//! - serves `GET /healthz` and exits cleanly on SIGTERM.
//!
//! The tests of this module hold the deployment files to the same commands:
//! the Dockerfile's build steps must be the ones [`cargo_args`] names, and
//! the systemd unit must keep its sandboxing (checked with `systemd-analyze`
//! where it exists).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::setup::{self, Need};
use crate::util::{self, note, step};

/// Options of `cargo xtask relay-release`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RelayReleaseArgs {
    /// Skip the tool check of `cargo xtask setup` (musl target, musl-gcc).
    #[arg(long)]
    pub(crate) no_setup: bool,
}

/// How long the smoke test waits for the binary to listen or to stop.
const SMOKE_DEADLINE: Duration = Duration::from_secs(20);

/// The arguments of `cargo` that build the release binary for `target`.
pub(crate) fn cargo_args(target: &str) -> Vec<String> {
    ["build", "--release", "--locked", "-p", "dance-relay", "--target", target]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Where cargo puts the release binary for `target`.
pub(crate) fn binary_path(target: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| util::root().join("target"), PathBuf::from)
        .join(target)
        .join("release/dance-relay")
}

/// Runs `cargo xtask relay-release`; returns the binary's path.
pub(crate) fn run(args: &RelayReleaseArgs) -> Result<PathBuf> {
    if !args.no_setup {
        setup::ensure(&[Need::Relay])?;
    }
    let target = setup::musl_target();
    step(format!("building the relay's static binary ({target}, release)"));
    util::run(util::cargo().args(cargo_args(&target))).context("the relay did not build")?;
    let binary = binary_path(&target);
    smoke_test(&binary)?;
    let size = std::fs::metadata(&binary).map(|meta| meta.len()).unwrap_or_default();
    step(format!("{} ({}, static)", binary.display(), util::human_size(size)));
    Ok(binary)
}

/// Checks the built binary: static, documented, validating, serving.
fn smoke_test(binary: &Path) -> Result<()> {
    step(format!("smoke-testing {}", binary.display()));
    let bytes =
        std::fs::read(binary).with_context(|| format!("could not read {}", binary.display()))?;
    ensure!(
        !has_interpreter(&bytes)?,
        "{} is dynamically linked (it names an ELF interpreter): the musl build should be static",
        binary.display()
    );
    note("static: no ELF interpreter");

    let help = output(relay(binary).arg("--help"))?;
    ensure!(help.0, "`dance-relay --help` failed:\n{}", help.1);
    let readme_path = util::root().join("crates/relay/README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .with_context(|| format!("could not read {}", readme_path.display()))?;
    let settings = dance_settings(&readme);
    ensure!(!settings.is_empty(), "{} names no DANCE_* setting", readme_path.display());
    let (unexplained, undocumented) = settings_disagreement(&settings, &help.1);
    ensure!(unexplained.is_empty(), "`dance-relay --help` does not explain {unexplained:?}");
    ensure!(
        undocumented.is_empty(),
        "{} does not document {undocumented:?}, which `dance-relay --help` names",
        readme_path.display()
    );
    note(format!("--help explains all {} DANCE_* settings of the README", settings.len()));

    let (ok, key) = output(relay(binary).arg("keygen"))?;
    ensure!(ok, "`dance-relay keygen` failed:\n{key}");
    let key = key.trim().to_owned();
    dance_relay_core::SealingKey::parse(&key)
        .map_err(|e| anyhow::anyhow!("`dance-relay keygen` printed no sealing key: {e}"))?;
    note("keygen: prints a sealing key");

    let port = free_port()?;
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let sound = |command: &mut Command| {
        command
            .env("DANCE_CLIENT_ID", "smoke-client")
            .env("DANCE_CLIENT_SECRET", "smoke-secret")
            .env("DANCE_TOKEN_URL", "http://127.0.0.1:9/site/oauth2/access_token")
            .env("DANCE_ALLOWED_ORIGINS", "http://127.0.0.1:8080")
            .env("DANCE_ALLOWED_REDIRECT_URIS", "http://127.0.0.1:8080/")
            .env("DANCE_SEALING_KEY", &key)
            .env("DANCE_LISTEN", listen.to_string());
    };
    let mut check = relay(binary);
    check.arg("check");
    sound(&mut check);
    let (ok, text) = output(&mut check)?;
    ensure!(ok, "`dance-relay check` refused a sound configuration:\n{text}");
    ensure!(
        !text.contains("warning"),
        "`dance-relay check` warns about a sound, sealed configuration:\n{text}"
    );
    ensure!(!text.contains(&key), "`dance-relay check` printed the sealing key");
    let (ok, text) = output(relay(binary).arg("check").env("DANCE_CLIENT_ID", "x"))?;
    ensure!(
        !ok && text.contains("DANCE_ALLOWED_ORIGINS"),
        "`dance-relay check` accepted a configuration without origins:\n{text}"
    );
    note("check: accepts a sound configuration without a warning, names what a broken one lacks");

    let mut serve = relay(binary);
    sound(&mut serve);
    let mut child = serve
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let served = wait_healthy(listen, &mut child);
    // SIGTERM is how systemd and Docker stop it; `kill` is part of procps.
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let stopped = wait_exit(&mut child);
    served?;
    let status = stopped?;
    ensure!(status.success(), "dance-relay exited with {status} after SIGTERM");
    note(format!("served GET /healthz on {listen} and stopped cleanly on SIGTERM"));
    Ok(())
}

/// A command running the relay binary with no `DANCE_*` variable inherited.
fn relay(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DANCE_") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// Runs a command; returns whether it succeeded and its stdout and stderr.
fn output(command: &mut Command) -> Result<(bool, String)> {
    let out =
        command.output().with_context(|| format!("could not run {}", util::display(command)))?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// A port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("could not bind a port")?;
    Ok(listener.local_addr().context("no local address")?.port())
}

/// Polls `GET /healthz` until it answers `200 ok`, the child exits, or the deadline.
fn wait_healthy(addr: SocketAddr, child: &mut std::process::Child) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(response) = http_get(addr, "/healthz") {
            ensure!(
                response.starts_with("HTTP/1.1 200") && response.trim_end().ends_with("ok"),
                "GET /healthz answered:\n{response}"
            );
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("could not poll dance-relay")? {
            bail!("dance-relay exited ({status}) instead of serving on {addr}");
        }
        if started.elapsed() > SMOKE_DEADLINE {
            bail!("dance-relay did not answer on {addr} within {} s", SMOKE_DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for the child to exit; kills it after the deadline.
fn wait_exit(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("could not poll dance-relay")? {
            return Ok(status);
        }
        if started.elapsed() > SMOKE_DEADLINE {
            // Already exiting or not: the wait below says how it ended.
            let _ = child.kill();
            let status = child.wait().context("could not wait for dance-relay")?;
            bail!(
                "dance-relay did not stop within {} s of SIGTERM ({status})",
                SMOKE_DEADLINE.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A bare HTTP/1.1 GET; returns the whole response as text.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// Every distinct `DANCE_*` name in `text`, in order of appearance.
fn dance_settings(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (at, _) in text.match_indices("DANCE_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let name = name.trim_end_matches('_').to_owned();
        if name.len() > "DANCE_".len() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The settings the README names that `help` does not, and those `help`
/// names that the README does not, so that neither side can fall behind.
fn settings_disagreement(readme: &[String], help: &str) -> (Vec<String>, Vec<String>) {
    let unexplained = readme.iter().filter(|name| !help.contains(name.as_str())).cloned();
    let undocumented = dance_settings(help).into_iter().filter(|name| !readme.contains(name));
    (unexplained.collect(), undocumented.collect())
}

/// Whether an ELF file has a `PT_INTERP` program header (is dynamically
/// linked). Static and static-pie executables have none.
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    ensure!(elf.len() >= 64 && elf.starts_with(b"\x7fELF"), "not an ELF file");
    ensure!(elf[4] == 2 && elf[5] == 1, "not a 64-bit little-endian ELF file");
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at =
        |at: usize| elf.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let phoff = u64_at(0x20).context("truncated ELF header")?;
    let phentsize = u16_at(0x36).context("truncated ELF header")?;
    let phnum = u16_at(0x38).context("truncated ELF header")?;
    let phoff = usize::try_from(phoff).context("program headers out of range")?;
    for index in 0..usize::from(phnum) {
        let at = phoff + index * usize::from(phentsize);
        let kind = elf
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .context("truncated program header")?;
        if kind == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Dockerfile's instructions: (keyword, arguments), continuation
    /// lines joined, comments and blank lines dropped.
    fn instructions(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if trimmed.starts_with('#') {
                continue;
            }
            if let Some(body) = trimmed.strip_suffix('\\') {
                current.push_str(body);
                current.push(' ');
                continue;
            }
            current.push_str(trimmed);
            let (keyword, rest) = current.split_once(char::is_whitespace).unwrap_or((&current, ""));
            out.push((
                keyword.to_ascii_uppercase(),
                rest.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
            current.clear();
        }
        out
    }

    fn dockerfile() -> String {
        std::fs::read_to_string(util::root().join("deploy/Dockerfile")).expect("deploy/Dockerfile")
    }

    /// The build stage's shell commands, split at `&&`.
    fn build_commands(instructions: &[(String, String)]) -> Vec<String> {
        let runtime = instructions.iter().rposition(|(k, _)| k == "FROM").expect("a FROM");
        instructions[..runtime]
            .iter()
            .filter(|(keyword, _)| keyword == "RUN")
            .flat_map(|(_, command)| command.split("&&").map(|part| part.trim().to_owned()))
            .collect()
    }

    #[test]
    fn the_dockerfile_builds_with_the_commands_xtask_runs() {
        let instructions = instructions(&dockerfile());
        let target = "\"$(uname -m)-unknown-linux-musl\"";
        let commands = build_commands(&instructions);
        let cargo = format!("cargo {}", cargo_args(target).join(" "));
        assert!(commands.contains(&cargo), "no `{cargo}` among {commands:#?}");
        assert!(commands.contains(&format!("rustup target add {target}")), "{commands:#?}");
        assert!(
            commands.iter().any(|c| c.starts_with("apt-get install") && c.contains("musl-tools")),
            "musl-tools (musl-gcc) must be installed: {commands:#?}"
        );
        // The musl target the Dockerfile computes is the one xtask uses here.
        assert_eq!(setup::musl_target(), format!("{}-unknown-linux-musl", std::env::consts::ARCH));
    }

    /// The examples people copy publish the relay's port on loopback only:
    /// it speaks plain HTTP and trusts the proxy in front of it, so a port
    /// open to the world would skip both.
    #[test]
    fn the_docker_examples_publish_on_loopback() {
        let readme = std::fs::read_to_string(util::root().join("deploy/README.md"))
            .expect("deploy/README.md");
        let mut published = 0;
        for (name, text) in [("deploy/Dockerfile", dockerfile()), ("deploy/README.md", readme)] {
            let words: Vec<&str> = text
                .lines()
                .filter(|line| line.contains("docker run"))
                .flat_map(str::split_whitespace)
                .collect();
            for pair in words.windows(2).filter(|pair| ["-p", "--publish"].contains(&pair[0])) {
                let mapping = pair[1].trim_matches('`');
                assert!(
                    mapping.starts_with("127.0.0.1:") || mapping.starts_with("[::1]:"),
                    "{name} publishes {mapping} beyond loopback"
                );
                published += 1;
            }
        }
        assert!(published >= 2, "the examples changed: update this test");
    }

    #[test]
    fn the_dockerfile_is_multi_stage_minimal_and_unprivileged() {
        let instructions = instructions(&dockerfile());
        let froms: Vec<&String> =
            instructions.iter().filter(|(k, _)| k == "FROM").map(|(_, rest)| rest).collect();
        assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
        let rust_version = std::fs::read_to_string(util::root().join("Cargo.toml"))
            .expect("Cargo.toml")
            .lines()
            .find_map(|line| {
                line.strip_prefix("rust-version = \"")?.strip_suffix('"').map(str::to_owned)
            })
            .expect("rust-version in Cargo.toml");
        // Each base image by digest: a tag can be moved to other contents,
        // a digest cannot. The tag stays beside it, for people.
        let image = |from: &str| {
            let (reference, _) = from.split_once(' ').unwrap_or((from, ""));
            let (tag, digest) = reference
                .split_once("@sha256:")
                .unwrap_or_else(|| panic!("not pinned by digest: FROM {from}"));
            assert!(
                digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
                "not a SHA-256 digest: FROM {from}"
            );
            tag.to_owned()
        };
        assert_eq!(image(froms[0]), format!("rust:{rust_version}-slim"), "the workspace's Rust");
        assert!(froms[0].ends_with(" AS build"), "{}", froms[0]);
        let runtime_image = image(froms[1]);
        assert!(
            runtime_image.starts_with("gcr.io/distroless/static")
                || runtime_image.starts_with("debian:"),
            "a minimal runtime image: {}",
            froms[1]
        );
        let runtime_start = instructions.iter().rposition(|(k, _)| k == "FROM").expect("FROM");
        let runtime = &instructions[runtime_start..];
        assert!(
            !runtime.iter().any(|(k, _)| k == "RUN"),
            "the runtime stage runs nothing (distroless has no shell)"
        );
        let user = runtime.iter().rev().find(|(k, _)| k == "USER").map(|(_, v)| v.as_str());
        let user = user.expect("the runtime stage sets USER");
        let name = user.split(':').next().unwrap_or_default();
        assert!(!["root", "0", ""].contains(&name), "USER must not be root: {user}");
        let copy = runtime.iter().find(|(k, _)| k == "COPY").map(|(_, v)| v.as_str());
        assert!(copy.is_some_and(|c| c.starts_with("--from=build ")), "{copy:?}");
        let entry = runtime.iter().find(|(k, _)| k == "ENTRYPOINT").map(|(_, v)| v.as_str());
        assert_eq!(entry, Some("[\"/usr/local/bin/dance-relay\"]"), "exec form, no shell");
        let env = runtime
            .iter()
            .filter(|(k, _)| k == "ENV")
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(env.contains("DANCE_LISTEN=0.0.0.0:8787"), "listen on every interface: {env}");
        assert!(runtime.iter().any(|(k, v)| k == "EXPOSE" && v == "8787"));
        assert!(!instructions.iter().any(|(k, v)| k == "ADD" && v.contains("://")), "no downloads");
        let ignore = std::fs::read_to_string(util::root().join("deploy/Dockerfile.dockerignore"))
            .expect("deploy/Dockerfile.dockerignore");
        for entry in ["target", "dist", ".git"] {
            assert!(ignore.lines().any(|line| line.trim() == entry), "{entry} not ignored");
        }
    }

    #[test]
    fn dance_settings_are_collected_once_each() {
        let text =
            "| `DANCE_CLIENT_ID` | x |\nDANCE_CLIENT_SECRET(_FILE) and DANCE_CLIENT_ID, DANCE_\n";
        assert_eq!(dance_settings(text), ["DANCE_CLIENT_ID", "DANCE_CLIENT_SECRET"]);
    }

    /// The README and `--help` name the same settings: checked here on
    /// the relay's own command line, without building the release binary.
    #[test]
    fn the_relay_readme_documents_every_setting_of_its_help() {
        use clap::CommandFactory as _;
        let help = dance_relay::cli::Cli::command().render_long_help().to_string();
        let readme = std::fs::read_to_string(util::root().join("crates/relay/README.md"))
            .expect("crates/relay/README.md");
        let settings = dance_settings(&readme);
        assert_eq!(settings_disagreement(&settings, &help), (vec![], vec![]));
        for name in dance_relay_core::vars::ALL {
            assert!(settings.iter().any(|s| s == name), "the README lacks {name}");
        }
        assert_eq!(settings.len(), dance_settings(&help).len(), "{settings:?}");
    }

    #[test]
    fn elf_interpreters_are_detected() {
        // The test binary itself is linked against the system's libc.
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        let dynamic = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(has_interpreter(&me).expect("an ELF file"), dynamic);
        assert!(has_interpreter(b"#!/bin/sh\n").is_err());
        let mut truncated = me[..64].to_vec();
        truncated[0x38] = 9;
        assert!(has_interpreter(&truncated).is_err(), "program headers beyond the end");
    }

    // ------------------------------------------------------ the systemd unit

    fn unit() -> String {
        std::fs::read_to_string(util::root().join("deploy/dance-relay.service"))
            .expect("deploy/dance-relay.service")
    }

    /// `(section, key, value)` of every setting in a unit file.
    fn settings(text: &str) -> Vec<(String, String, String)> {
        let mut section = String::new();
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, value)) = line.split_once('=') {
                out.push((section.clone(), key.trim().to_owned(), value.trim().to_owned()));
            } else {
                panic!("not a setting: {line}");
            }
        }
        out
    }

    #[test]
    fn the_systemd_unit_is_sandboxed_and_reads_the_secret_as_a_credential() {
        let all = settings(&unit());
        let service = |key: &str| -> Vec<String> {
            all.iter()
                .filter(|(s, k, _)| s == "Service" && k == key)
                .map(|(_, _, v)| v.clone())
                .collect()
        };
        for (key, value) in [
            ("ExecStart", "/usr/local/bin/dance-relay"),
            ("DynamicUser", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("CapabilityBoundingSet", ""),
            ("SystemCallArchitectures", "native"),
            ("EnvironmentFile", "/etc/dance-relay/relay.env"),
            ("LoadCredential", "client-secret:/etc/dance-relay/client-secret"),
            ("Environment", "DANCE_CLIENT_SECRET_FILE=%d/client-secret"),
        ] {
            assert!(
                service(key).contains(&value.to_owned()),
                "{key}={value} missing: {:?}",
                service(key)
            );
        }
        assert_eq!(
            service("SystemCallFilter").first().map(String::as_str),
            Some("@system-service")
        );
        let families = service("RestrictAddressFamilies").join(" ");
        assert!(families.contains("AF_INET") && families.contains("AF_INET6"), "{families}");
        assert!(!families.contains("AF_NETLINK") && !families.contains("AF_PACKET"), "{families}");
        assert!(
            all.iter()
                .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target")
        );
    }

    /// `systemd-analyze`, where it exists: `verify` must say nothing, and
    /// the offline security review must rate the unit's exposure low.
    #[test]
    fn the_systemd_unit_passes_systemd_analyze() {
        if util::probe("systemd-analyze", &["--version"]).is_none() {
            eprintln!("systemd-analyze is not installed: only the parse test checked the unit");
            return;
        }
        let dir = std::env::temp_dir().join(format!("xtask-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("dance-relay.service");
        // verify also checks that ExecStart exists: point it at a real program.
        let exe = std::env::current_exe().expect("exe");
        let text = unit().replace("/usr/local/bin/dance-relay", &exe.to_string_lossy());
        std::fs::write(&path, text).expect("write unit");

        let verify =
            Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("run");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        assert!(
            verify.status.success() && said.trim().is_empty(),
            "systemd-analyze verify:\n{said}"
        );

        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
            .arg(&path)
            .output()
            .expect("run");
        let said = String::from_utf8_lossy(&security.stdout);
        let overall =
            said.lines().find(|line| line.contains("Overall exposure level")).unwrap_or("");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(security.status.success(), "exposure above 2.5:\n{overall}\n{said}");
        assert!(overall.contains(" OK") || overall.contains(" SAFE"), "{overall}");
    }
}
