//! Helpers every command uses: where the repository is, progress lines, and
//! running programs with clear errors.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// The `cargo` that runs us (cargo sets `CARGO` for `cargo run`), so child builds
/// use the same toolchain as the caller.
pub(crate) fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// Where `cargo xtask setup` installs the tools that live inside the
/// repository rather than on the machine: npm's tools from
/// `tools/package-lock.json`, and the Python linters from
/// `tools/requirements-lint.txt` in their own virtual environment.
pub(crate) fn local_tool_dirs() -> [PathBuf; 2] {
    [root().join("tools/node_modules/.bin"), root().join("target/tools/lint/bin")]
}

/// `PATH` for the tools we run: [`local_tool_dirs`] first (so trunk finds
/// the pinned wasm-opt, and nothing installed elsewhere on the machine
/// stands in for a pinned tool), then the directory of [`cargo_program`]
/// (trunk runs `cargo` by name), then the inherited `PATH`.
pub(crate) fn tool_path() -> OsString {
    let cargo = PathBuf::from(cargo_program());
    let cargo_dir = cargo.parent().filter(|_| cargo.is_absolute()).map(Path::to_path_buf);
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs = local_tool_dirs().into_iter().chain(cargo_dir).chain(std::env::split_paths(&rest));
    std::env::join_paths(dirs).unwrap_or(rest)
}

/// `program` as the tools' [`tool_path`] finds it: a bare name is looked up
/// in [`local_tool_dirs`] first; anything else is returned as it is.
fn resolve(program: &OsStr) -> OsString {
    if Path::new(program).components().count() != 1 {
        return program.to_owned();
    }
    local_tool_dirs()
        .iter()
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .map_or_else(|| program.to_owned(), PathBuf::into_os_string)
}

/// A command running the tool `program` (as [`resolve`] finds it) with
/// [`tool_path`] as its `PATH`.
pub(crate) fn tool(program: &str) -> Command {
    let mut command = Command::new(resolve(OsStr::new(program)));
    command.env("PATH", tool_path());
    command
}

/// A `cargo` command that runs in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(root());
    command
}

/// The progress lines every command prints (`==> what`, then indented
/// details), the doctor's own.
pub(crate) use dance_doctor::{flush, note, step};

/// A shell-like rendering of a command, for progress and error messages.
pub(crate) fn display(command: &Command) -> String {
    let mut parts = vec![command.get_program().to_string_lossy().into_owned()];
    if parts[0] == cargo_program().to_string_lossy() {
        "cargo".clone_into(&mut parts[0]);
    }
    parts.extend(command.get_args().map(quote));
    let env: Vec<String> = command
        .get_envs()
        // PATH is long and only ever extended: leave it out.
        .filter(|(key, _)| *key != "PATH")
        .filter_map(|(key, value)| {
            value.map(|value| format!("{}={}", key.to_string_lossy(), quote(value)))
        })
        .collect();
    if env.is_empty() { parts.join(" ") } else { format!("{} {}", env.join(" "), parts.join(" ")) }
}

fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:@,+".contains(c))
    {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs a command with inherited stdio, printing it first; fails unless it succeeds.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    note(format!("$ {}", display(command)));
    // Nothing we run may wait for input: CI has none to give.
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not start `{}`", display(command)))?;
    check_status(command, status)
}

/// Turns an unsuccessful exit into an error that names the command.
pub(crate) fn check_status(command: &Command, status: ExitStatus) -> Result<()> {
    if status.success() { Ok(()) } else { bail!("`{}` failed ({status})", display(command)) }
}

/// Runs `program args...` quietly and returns its trimmed stdout (or stderr when
/// stdout is empty), or `None` when it can't be started or fails. Used to probe
/// `--version` of tools.
pub(crate) fn probe(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let mut command = Command::new(resolve(program.as_ref()));
    let output = command.args(args).env("PATH", tool_path()).stdin(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if stdout.is_empty() {
        Some(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    } else {
        Some(stdout)
    }
}

/// Whether we run as root (so apt-get may be used).
pub(crate) fn is_root() -> bool {
    probe("id", &["-u"]).is_some_and(|uid| uid == "0")
}

/// Whether this is a Debian-like system with apt-get.
pub(crate) fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && probe("apt-get", &["--version"]).is_some()
}

/// What a command printed to stdout that matters after it ends.
pub(crate) struct Captured {
    /// How the command ended.
    pub(crate) status: ExitStatus,
    /// The `test result: ...` lines it printed, verbatim, in order.
    pub(crate) test_results: Vec<String>,
}

/// Runs a command whose stdout is echoed line by line as it comes and scanned
/// for libtest's `test result:` lines; stderr goes straight through.
pub(crate) fn run_capturing_results(command: &mut Command) -> Result<Captured> {
    note(format!("$ {}", display(command)));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", display(command)))?;
    let mut test_results = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let out = std::io::stdout();
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .context("could not read the output of a child process")?;
            if read == 0 {
                break;
            }
            let mut out = out.lock();
            // A closed stdout must not abort the run: the child's exit status decides.
            let _ = out.write_all(&line);
            let _ = out.flush();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.starts_with("test result:") {
                test_results.push(text.to_owned());
            }
        }
    }
    let status =
        child.wait().with_context(|| format!("could not wait for `{}`", display(command)))?;
    Ok(Captured { status, test_results })
}

/// A human size: bytes below 1 KiB, else KiB or MiB with one decimal.
pub(crate) fn human_size(bytes: u64) -> String {
    // Precision loss is irrelevant for sizes shown with one decimal.
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{:.1} MiB", value / (1024.0 * 1024.0))
    }
}

/// A duration as `12.3s` or `4m05s`.
pub(crate) fn human_duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// Tests: actionlint (installed by `cargo xtask setup`) finds nothing in the
/// workflow at `path` (relative to the repository). Without actionlint the
/// check says so and passes, except on CI, where set-up installs it.
#[cfg(test)]
pub(crate) fn assert_actionlint_passes(path: &str) {
    if probe("actionlint", &["--version"]).is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "actionlint is not installed, and CI must lint {path}: run `cargo xtask setup`"
        );
        eprintln!(
            "actionlint is not installed (`cargo xtask setup` installs it): {path} not linted"
        );
        return;
    }
    let output = tool("actionlint")
        .args(["-no-color", path])
        .current_dir(root())
        .output()
        .expect("run actionlint");
    assert!(
        output.status.success(),
        "actionlint on {path}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut command = tool("trunk");
        command.args(["build", "--public-url", "/repo/", "it's here"]).env("A", "b c");
        assert_eq!(display(&command), r"A='b c' trunk build --public-url /repo/ 'it'\''s here'");
    }

    #[test]
    fn human_size_picks_a_unit() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
    }

    #[test]
    fn human_duration_switches_to_minutes() {
        assert_eq!(human_duration(std::time::Duration::from_millis(12_340)), "12.3s");
        assert_eq!(human_duration(std::time::Duration::from_secs(245)), "4m05s");
    }
}
