//! Tests that hold every GitHub workflow to the rules of a build chain we can
//! trust: whatever the Pages build writes runs in every visitor's browser,
//! and the Worker deployment holds the client secret, so
//! - every action is pinned by full commit SHA, its release in a comment;
//! - no token by default, each job names the permissions it needs, and only a
//!   job that runs nothing of the repository may write;
//! - checkout leaves no credentials in `.git/config`;
//! - nothing executable comes from a cache, and every tool a workflow
//!   installs is pinned (`cargo install --locked` at an exact version).
//!
//! zizmor (`cargo xtask audit`) checks the same and more; these tests say
//! exactly what this repository promises, and need no tool to run.

use crate::util;

/// Every workflow file: its name and text.
fn workflows() -> Vec<(String, String)> {
    let dir = util::root().join(".github/workflows");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect(".github/workflows")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .map(|path| {
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).expect("workflow"))
        })
        .collect();
    files.sort();
    assert!(files.len() >= 2, "the workflows are missing: {files:?}");
    files
}

/// The text of a line with its comment removed (a `#` that starts a word).
fn code(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.find(" #").map_or(line, |at| &line[..at]).trim_end()
}

/// What is wrong with the `uses:` lines of a workflow, one message each.
fn unpinned_actions(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for line in text.lines() {
        let Some((_, action)) = line.split_once("uses:") else { continue };
        if line.trim_start().starts_with('#') {
            continue;
        }
        let action = action.trim();
        let (reference, comment) = action.split_once(" # ").unwrap_or((action, ""));
        let commit = reference.rsplit_once('@').map(|(_, commit)| commit.trim());
        let pinned =
            commit.is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()));
        if reference.starts_with("./") {
            continue;
        }
        if !pinned {
            problems.push(format!("not pinned by commit: {}", line.trim()));
        } else if !comment.trim_start().starts_with('v') {
            problems.push(format!("no release in the comment: {}", line.trim()));
        }
    }
    problems
}

/// The jobs of a workflow: each job's name and its lines (indentation kept).
fn jobs(text: &str) -> Vec<(String, Vec<&str>)> {
    let mut jobs: Vec<(String, Vec<&str>)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line == "jobs:" {
            inside = true;
            continue;
        }
        if !inside || line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            inside = false;
        } else if !line.starts_with("   ") && line.trim_end().ends_with(':') {
            jobs.push((line.trim().trim_end_matches(':').to_owned(), Vec::new()));
        } else if let Some((_, lines)) = jobs.last_mut() {
            lines.push(line);
        }
    }
    jobs
}

/// The permissions a job's lines grant: `scope: level` pairs.
fn permissions<'a>(lines: &[&'a str]) -> Option<Vec<(&'a str, &'a str)>> {
    let start = lines.iter().position(|line| code(line) == "    permissions:")?;
    Some(
        lines[start + 1..]
            .iter()
            .take_while(|line| line.starts_with("      "))
            .filter_map(|line| code(line).trim().split_once(':'))
            .map(|(scope, level)| (scope.trim(), level.trim()))
            .collect(),
    )
}

#[test]
fn every_action_is_pinned_by_commit() {
    for (name, text) in workflows() {
        let problems = unpinned_actions(&text);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

/// The check can fail: a tag, a branch or a short SHA is caught.
#[test]
fn a_tag_pin_is_caught() {
    let text = "    steps:\n      - uses: actions/checkout@v4\n      \
                - uses: actions/cache@main\n      - uses: a/b@3d3c42e # v1\n      \
                - uses: a/b@3d3c42e5aac5ba805825da76410c181273ba90b1\n      \
                - uses: a/b@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n";
    assert_eq!(unpinned_actions(text).len(), 4, "{:#?}", unpinned_actions(text));
}

/// No token unless a job asks, and write access only where nothing of the
/// repository runs.
#[test]
fn each_job_asks_for_the_least_it_needs() {
    for (name, text) in workflows() {
        assert!(text.lines().any(|line| code(line) == "permissions: {}"), "{name}: no default");
        let jobs = jobs(&text);
        assert!(!jobs.is_empty(), "{name}: no jobs found");
        for (job, lines) in jobs {
            let granted = permissions(&lines)
                .unwrap_or_else(|| panic!("{name}: job {job} does not name its permissions"));
            let writes: Vec<_> = granted.iter().filter(|(_, level)| *level == "write").collect();
            let runs_repository = lines.iter().any(|line| {
                line.contains("uses: actions/checkout@")
                    || code(line).trim_start().starts_with("run:")
            });
            if runs_repository {
                // The Worker deployment's token is Cloudflare's, a secret;
                // GitHub's own stays read-only there too.
                assert!(writes.is_empty(), "{name}: job {job} runs our code with {writes:?}");
            }
            if name == "pages.yml" {
                let expected: &[(&str, &str)] = match job.as_str() {
                    "address" => &[("pages", "read")],
                    "build" => &[("contents", "read")],
                    "deploy" => &[("pages", "write"), ("id-token", "write")],
                    other => panic!("pages.yml: unexpected job {other}"),
                };
                assert_eq!(granted, expected, "pages.yml: job {job}");
            }
        }
    }
}

/// The checks can fail: a job without permissions, or one that builds with
/// write access, is caught.
#[test]
fn the_permission_checks_see_jobs_and_grants() {
    let text = "permissions: {}\njobs:\n  build:\n    runs-on: x\n    permissions:\n      \
                contents: read\n      pages: write # too much\n    steps:\n      - run: make\n  \
                other:\n    steps:\n      - run: make\n";
    let jobs = jobs(text);
    assert_eq!(jobs.iter().map(|(job, _)| job.as_str()).collect::<Vec<_>>(), ["build", "other"]);
    assert_eq!(permissions(&jobs[0].1), Some(vec![("contents", "read"), ("pages", "write")]));
    assert_eq!(permissions(&jobs[1].1), None);
}

/// Checkout writes the job's token into `.git/config` unless told not to,
/// where every later step (build scripts included) can read it.
#[test]
fn checkout_keeps_no_credentials() {
    for (name, text) in workflows() {
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !line.contains("uses: actions/checkout@") {
                continue;
            }
            let indent = line.find('-').expect("a step") + 2;
            let step: Vec<&str> = lines[at + 1..]
                .iter()
                .take_while(|next| next.len() > indent && next[..indent].trim().is_empty())
                .copied()
                .collect();
            assert!(
                step.iter().any(|line| code(line).trim() == "persist-credentials: false"),
                "{name}: checkout at line {} keeps the token in .git/config",
                at + 1
            );
        }
    }
}

/// Nothing is restored from a cache (any earlier run could have written an
/// executable there), and every tool is installed at an exact version from
/// its lockfile.
#[test]
fn no_cached_or_unpinned_tools() {
    let wrangler = std::fs::read_to_string(util::root().join("crates/relay-worker/wrangler.toml"))
        .expect("wrangler.toml");
    let mut files = workflows();
    files.push(("wrangler.toml".to_owned(), wrangler));
    for (name, text) in files {
        for line in text.lines().map(code) {
            for banned in ["actions/cache", "restore-keys", "npm install -g", "npm i -g", "npx "] {
                assert!(!line.contains(banned), "{name}: `{}`", line.trim());
            }
            if line.contains("cargo install") {
                assert!(
                    line.contains("--locked") && line.contains("--version ="),
                    "{name}: not pinned: `{}`",
                    line.trim()
                );
            }
        }
    }
}

/// The Worker deployment pins the wrangler it runs.
#[test]
fn the_worker_deployment_pins_wrangler() {
    let (_, text) = workflows()
        .into_iter()
        .find(|(name, _)| name == "relay-worker.yml")
        .expect("relay-worker.yml");
    let version = text
        .lines()
        .find_map(|line| code(line).trim().strip_prefix("wranglerVersion: "))
        .map(|version| version.trim_matches('"'))
        .expect("wranglerVersion");
    assert!(
        version.split('.').count() == 3
            && version.split('.').all(|part| part.parse::<u32>().is_ok()),
        "wranglerVersion {version:?} is not an exact version"
    );
}
