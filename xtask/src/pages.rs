//! `cargo xtask pages`: the SPA exactly as the GitHub Pages workflow
//! (`.github/workflows/pages.yml`) builds and publishes it.
//!
//! 1. `cargo xtask build` under the site's path (trunk's `--public-url`);
//! 2. `config.json` from the deployment's settings (client id, relay URL,
//!    Bitbucket's endpoints);
//! 3. the Content-Security-Policy of `index.html` pointed at the relay's
//!    origin, Bitbucket's API and its avatar hosts;
//! 4. `404.html`, a copy of the final `index.html`, so deep links load the
//!    app (see [`crate::site`]);
//! 5. what to set elsewhere (the consumer's callback URL, the relay's
//!    allowlists), printed and, on GitHub Actions, added to the job summary.
//!
//! | flag | environment | meaning |
//! |---|---|---|
//! | `--site-url` | `PAGES_SITE_URL` | the site's address; the workflow passes what `actions/configure-pages` reports, custom domain included |
//! | `--client-id` | `BITBUCKET_CLIENT_ID` | the consumer's Key (a repository variable) |
//! | `--relay-url` | `RELAY_URL` | the relay's `/token` URL (a repository variable) |
//! | `--public-url` | | the path instead of a site URL, for local builds |
//! | `--fakebucket` | | a Bitbucket emulator instead of bitbucket.org (tests) |
//!
//! Every problem with the settings is reported at once, naming the variable
//! to set. `cargo xtask test` builds the end-to-end suite's sub-path bundle
//! with [`run`] too, so the suite serves what the workflow publishes.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use dance_protocol::deployment;
use dance_protocol::deployment::config::{Endpoint, EndpointProblem, Field, check_endpoint};
use url::Url;

use crate::build::{self, BuildArgs};
use crate::site::{self, SiteSettings};
use crate::util::{note, step};

/// Options of `cargo xtask pages`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct PagesArgs {
    /// The site's address, e.g. https://user.github.io/repo/ or https://login.example.com/.
    /// The workflow passes the address GitHub Pages reports.
    #[arg(long, env = "PAGES_SITE_URL", value_name = "URL")]
    pub(crate) site_url: Option<String>,
    /// The Key of the Bitbucket OAuth consumer.
    #[arg(long, env = "BITBUCKET_CLIENT_ID", value_name = "KEY")]
    pub(crate) client_id: Option<String>,
    /// The relay's token endpoint, e.g. https://relay.example.com/token.
    #[arg(long, env = "RELAY_URL", value_name = "URL")]
    pub(crate) relay_url: Option<String>,
    /// The URL path to build for, instead of taking it from --site-url (e.g. /repo/).
    #[arg(long, value_name = "PATH")]
    pub(crate) public_url: Option<String>,
    /// Use a Bitbucket emulator serving everything on one origin (fakebucket) instead of
    /// bitbucket.org.
    #[arg(long, value_name = "URL")]
    pub(crate) fakebucket: Option<String>,
    /// Where to put the site (default `dist/`).
    #[arg(long, value_name = "DIR")]
    pub(crate) dist: Option<PathBuf>,
    /// Skip the tool check of `cargo xtask setup --build-only`.
    #[arg(long)]
    pub(crate) no_setup: bool,
}

/// A checked deployment: where it lives and what the SPA is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// trunk's public URL: `/repo/` or `/`.
    pub(crate) public_url: String,
    /// The site's address, when known.
    pub(crate) site_url: Option<Url>,
    /// `config.json` and the CSP's origins.
    pub(crate) settings: SiteSettings,
}

/// Runs `cargo xtask pages`; returns the output directory.
pub(crate) fn run(args: &PagesArgs) -> Result<PathBuf> {
    let plan = match plan(args) {
        Ok(plan) => plan,
        Err(problems) => {
            if std::env::var("GITHUB_ACTIONS").is_ok_and(|value| value == "true") {
                // Workflow commands: each problem shows up in the run's summary.
                for problem in &problems {
                    println!("::error title=Pages settings::{problem}");
                }
            }
            bail!("the Pages settings are incomplete:\n  - {}", problems.join("\n  - "));
        }
    };
    step(format!(
        "building the site for {}",
        plan.site_url.as_ref().map_or_else(|| plan.public_url.clone(), Url::to_string)
    ));
    let dist = build::run(&BuildArgs {
        public_url: Some(plan.public_url.clone()),
        dist: args.dist.clone(),
        no_setup: args.no_setup,
    })?;
    plan.settings.apply(&dist)?;
    site::write_not_found_page(&dist)?;
    report(&plan);
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .context("could not open the job summary ($GITHUB_STEP_SUMMARY)")?;
        file.write_all(summary_markdown(&plan).as_bytes())
            .context("could not write the job summary ($GITHUB_STEP_SUMMARY)")?;
    }
    Ok(dist)
}

/// A setting from a flag or the environment, with empty values (an unset
/// repository variable arrives as "") treated as absent.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|value| value.trim()).filter(|value| !value.is_empty())
}

/// Checks the settings; on failure, one line per problem, each naming what
/// to set.
pub(crate) fn plan(args: &PagesArgs) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();

    let site_text = given(args.site_url.as_ref());
    let site_url = site_text.and_then(|text| match parse_site_url(text) {
        Ok(url) => Some(url),
        Err(problem) => {
            problems.push(problem);
            None
        }
    });
    let public_url = match (given(args.public_url.as_ref()), &site_url) {
        (Some(path), Some(site)) if normalise_path(path) != site.path() => {
            problems.push(format!(
                "--public-url {path} disagrees with the site's path {} (from --site-url / \
                 PAGES_SITE_URL {site}); drop one of them",
                site.path()
            ));
            None
        }
        (Some(path), _) => Some(normalise_path(path)),
        (None, Some(site)) => Some(site.path().to_owned()),
        // An unusable site URL was reported above.
        (None, None) if site_text.is_some() => None,
        (None, None) => {
            problems.push(
                "the site's address is unknown: pass --site-url https://USER.github.io/REPO/ \
                 (the workflow passes the address GitHub Pages reports as PAGES_SITE_URL), or \
                 --public-url /REPO/ to build for a path only"
                    .to_owned(),
            );
            None
        }
    };

    let client_id = match given(args.client_id.as_ref()) {
        None => {
            problems.push(
                "BITBUCKET_CLIENT_ID is not set: add a repository variable BITBUCKET_CLIENT_ID \
                 (Settings → Secrets and variables → Actions → Variables) holding the Key of your \
                 Bitbucket OAuth consumer, or pass --client-id"
                    .to_owned(),
            );
            None
        }
        Some(id) if id.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            problems.push(format!(
                "BITBUCKET_CLIENT_ID `{id}` contains spaces: copy the consumer's Key exactly"
            ));
            None
        }
        Some(id) => Some(id.to_owned()),
    };

    let relay_url = match given(args.relay_url.as_ref()) {
        None => {
            problems.push(
                "RELAY_URL is not set: add a repository variable RELAY_URL holding your relay's \
                 token endpoint, such as https://relay.example.com/token, or pass --relay-url"
                    .to_owned(),
            );
            None
        }
        Some(text) => match parse_relay_url(text) {
            Ok(url) => Some(url),
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };

    let bitbucket = match given(args.fakebucket.as_ref()) {
        None => Some(Bitbucket::Cloud),
        Some(text) => match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                Some(Bitbucket::Emulator(with_trailing_slash(url)))
            }
            _ => {
                problems.push(format!("--fakebucket `{text}` is not an http(s) URL"));
                None
            }
        },
    };

    match (public_url, client_id, relay_url, bitbucket) {
        (Some(public_url), Some(client_id), Some(relay_url), Some(bitbucket))
            if problems.is_empty() =>
        {
            let settings = bitbucket.settings(client_id, relay_url).map_err(|e| vec![e])?;
            Ok(Plan { public_url, site_url, settings })
        }
        _ => Err(problems),
    }
}

/// Which Bitbucket the site signs in with.
enum Bitbucket {
    /// bitbucket.org.
    Cloud,
    /// An emulator serving authorize, API and avatars on one origin.
    Emulator(Url),
}

impl Bitbucket {
    fn settings(&self, client_id: String, relay_url: Url) -> Result<SiteSettings, String> {
        let url = |text: &str| Url::parse(text).map_err(|e| format!("bad URL {text}: {e}"));
        let relay_origin = deployment::origin(&relay_url);
        Ok(match self {
            Self::Cloud => SiteSettings {
                client_id,
                authorize_url: url(site::BITBUCKET_AUTHORIZE_URL)?,
                api_base: url(site::BITBUCKET_API_BASE)?,
                connect_origins: vec![
                    relay_origin,
                    deployment::origin(&url(site::BITBUCKET_API_BASE)?),
                ],
                img_origins: site::BITBUCKET_IMAGE_ORIGINS
                    .iter()
                    .map(|o| (*o).to_owned())
                    .collect(),
                relay_url,
            },
            Self::Emulator(base) => {
                let join = |path: &str| base.join(path).map_err(|e| format!("bad URL: {e}"));
                let origin = deployment::origin(base);
                SiteSettings {
                    client_id,
                    authorize_url: join("site/oauth2/authorize")?,
                    api_base: join("2.0/")?,
                    connect_origins: vec![relay_origin, origin.clone()],
                    img_origins: vec![origin],
                    relay_url,
                }
            }
        })
    }
}

/// `/repo` → `/repo/`, `repo` → `/repo/`, `` → `/`.
fn normalise_path(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() { "/".to_owned() } else { format!("/{trimmed}/") }
}

fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// The site's address: https (http only on loopback), no query or fragment,
/// a directory (a trailing slash is added).
fn parse_site_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|_| {
        format!(
            "PAGES_SITE_URL / --site-url `{text}` is not a URL such as https://user.github.io/repo/"
        )
    })?;
    if !deployment::is_secure_url(&url) {
        return Err(format!(
            "the site {url} is not served over https: the relay refuses plain-http origins other \
             than loopback. Turn on Settings → Pages → Enforce HTTPS (a new custom domain may \
             need a few minutes for its certificate), then run the workflow again"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("the site URL {url} must not have a query or fragment"));
    }
    Ok(with_trailing_slash(url))
}

/// The relay's token endpoint, checked by the deployment contract's rule
/// for `relay_url` (the one the SPA and the doctor apply: https, plain http
/// only on loopback, no credentials, no fragment); a bare origin gets
/// `/token`.
fn parse_relay_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|_| {
        format!("RELAY_URL `{text}` is not a URL such as https://relay.example.com/token")
    })?;
    let problems = check_endpoint(Field::RelayUrl, &Endpoint::of(&url));
    if let Some(problem) = problems.first() {
        return Err(match problem {
            EndpointProblem::PlainHttp | EndpointProblem::NotHttps => format!(
                "RELAY_URL {url} must use https (plain http only works on 127.0.0.1): put the \
                 relay behind a TLS-terminating proxy or platform and use its https address"
            ),
            EndpointProblem::Credentials => {
                "RELAY_URL must not contain a user name or password".to_owned()
            }
            EndpointProblem::Fragment
            | EndpointProblem::NoTrailingSlash
            | EndpointProblem::Query => format!("RELAY_URL {url} must not have a fragment"),
        });
    }
    if url.path() == "/" {
        url.set_path("/token");
    }
    Ok(url)
}

/// What the rest of the deployment must say, printed after a build.
fn report(plan: &Plan) {
    let settings = &plan.settings;
    let Some(site) = &plan.site_url else {
        step(format!("built for the path {} (no site URL given)", plan.public_url));
        return;
    };
    step(format!("the site: {site}"));
    note(format!(
        "Bitbucket consumer: Callback URL exactly {site}, permissions Account: Read and Email"
    ));
    note(format!(
        "relay: DANCE_CLIENT_ID={} DANCE_ALLOWED_ORIGINS={} DANCE_ALLOWED_REDIRECT_URIS={site}",
        settings.client_id,
        deployment::origin(site)
    ));
    note(
        "relay: DANCE_SEALING_KEY, a secret of its own (`dance-relay keygen`; for the Worker, the \
         repository secret DANCE_SEALING_KEY)",
    );
    note(format!("config.json: relay_url {}", settings.relay_url));
    note(format!("once deployed: cargo xtask doctor --site {site}"));
}

/// The job summary of the workflow run (GitHub-flavoured Markdown).
fn summary_markdown(plan: &Plan) -> String {
    let settings = &plan.settings;
    let mut out = String::from("## oauth-dance on GitHub Pages\n\n");
    let Some(site) = &plan.site_url else {
        let _ = writeln!(out, "Built for the path `{}`.", plan.public_url);
        return out;
    };
    // Writing to a String cannot fail.
    let _ = writeln!(out, "| where | setting | value |\n|---|---|---|");
    let _ = writeln!(out, "| Bitbucket consumer | Callback URL | `{site}` |");
    let _ = writeln!(out, "| Bitbucket consumer | Permissions | Account: Read, Account: Email |");
    let _ = writeln!(out, "| relay | `DANCE_CLIENT_ID` | `{}` |", settings.client_id);
    let _ = writeln!(out, "| relay | `DANCE_ALLOWED_ORIGINS` | `{}` |", deployment::origin(site));
    let _ = writeln!(out, "| relay | `DANCE_ALLOWED_REDIRECT_URIS` | `{site}` |");
    let _ = writeln!(
        out,
        "| relay | `DANCE_SEALING_KEY` | a secret of its own: `dance-relay keygen` (for the \
         Worker, the repository secret `DANCE_SEALING_KEY`) |"
    );
    let _ = writeln!(out, "| config.json | `relay_url` | `{}` |", settings.relay_url);
    let _ =
        writeln!(out, "\nCheck the deployment from outside: `cargo xtask doctor --site {site}`");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(site: &str, client: &str, relay: &str) -> PagesArgs {
        PagesArgs {
            site_url: Some(site.to_owned()),
            client_id: Some(client.to_owned()),
            relay_url: Some(relay.to_owned()),
            ..PagesArgs::default()
        }
    }

    #[test]
    fn a_project_site_builds_under_its_repository_path_against_bitbucket() {
        let plan = plan(&args(
            "https://user.github.io/oauth-dance",
            "AbC123",
            "https://relay.example.com/token",
        ))
        .expect("valid");
        assert_eq!(plan.public_url, "/oauth-dance/");
        assert_eq!(
            plan.site_url.as_ref().map(Url::as_str),
            Some("https://user.github.io/oauth-dance/")
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&plan.settings.config().to_json())
                .expect("JSON"),
            serde_json::json!({
                "client_id": "AbC123",
                "authorize_url": "https://bitbucket.org/site/oauth2/authorize",
                "relay_url": "https://relay.example.com/token",
                "api_base": "https://api.bitbucket.org/2.0/",
                "scopes": ["account", "email"],
            })
        );
        assert_eq!(
            plan.settings.connect_origins,
            ["https://relay.example.com", "https://api.bitbucket.org"]
        );
        assert!(plan.settings.img_origins.contains(&"https://secure.gravatar.com".to_owned()));
    }

    #[test]
    fn a_custom_domain_builds_at_the_root_and_a_bare_relay_origin_gets_token() {
        let plan = plan(&args("https://login.example.com/", "k", "https://relay.example.com"))
            .expect("valid");
        assert_eq!(plan.public_url, "/");
        assert_eq!(plan.settings.relay_url.as_str(), "https://relay.example.com/token");
    }

    #[test]
    fn every_missing_setting_is_named_at_once() {
        let problems = plan(&PagesArgs {
            site_url: Some(String::new()),
            client_id: Some("  ".to_owned()),
            ..PagesArgs::default()
        })
        .expect_err("incomplete");
        let joined = problems.join("\n");
        assert!(joined.contains("BITBUCKET_CLIENT_ID is not set"), "{joined}");
        assert!(joined.contains("RELAY_URL is not set"), "{joined}");
        assert!(joined.contains("the site's address is unknown"), "{joined}");
        assert_eq!(problems.len(), 3, "{joined}");
    }

    #[test]
    fn insecure_or_malformed_urls_are_refused_with_the_fix() {
        let problems =
            plan(&args("http://user.example/", "has space", "http://relay.example/token"))
                .expect_err("insecure");
        let joined = problems.join("\n");
        assert!(joined.contains("Enforce HTTPS"), "{joined}");
        assert!(joined.contains("contains spaces"), "{joined}");
        assert!(joined.contains("RELAY_URL http://relay.example/token must use https"), "{joined}");
        assert!(plan(&args("https://u.github.io/r/", "k", "relay.example/token")).is_err());
        assert!(plan(&args("https://u.github.io/r/", "k", "https://a:b@relay.example/")).is_err());
        assert!(plan(&args("https://u.github.io/r/?x", "k", "https://relay.example/")).is_err());
    }

    #[test]
    fn a_public_url_alone_builds_for_a_path_and_must_agree_with_a_site() {
        let local = PagesArgs {
            public_url: Some("repo".to_owned()),
            client_id: Some(fakebucket::DEMO_KEY.to_owned()),
            relay_url: Some("http://127.0.0.1:8787/token".to_owned()),
            fakebucket: Some("http://127.0.0.1:9090".to_owned()),
            ..PagesArgs::default()
        };
        let plan = plan(&local).expect("valid");
        assert_eq!(plan.public_url, "/repo/");
        assert_eq!(plan.site_url, None);
        assert_eq!(
            plan.settings.authorize_url.as_str(),
            "http://127.0.0.1:9090/site/oauth2/authorize"
        );
        assert_eq!(plan.settings.api_base.as_str(), "http://127.0.0.1:9090/2.0/");
        assert_eq!(
            plan.settings.connect_origins,
            ["http://127.0.0.1:8787", "http://127.0.0.1:9090"]
        );
        assert_eq!(plan.settings.img_origins, ["http://127.0.0.1:9090"]);

        let clash = PagesArgs { site_url: Some("https://u.github.io/other/".to_owned()), ..local };
        let problems = super::plan(&clash).expect_err("disagree");
        assert!(problems[0].contains("disagrees"), "{problems:?}");
    }

    #[test]
    fn the_summary_names_every_setting_to_copy() {
        let plan = plan(&args("https://user.github.io/repo/", "AbC", "https://r.example/token"))
            .expect("valid");
        let summary = summary_markdown(&plan);
        for expected in [
            "| Bitbucket consumer | Callback URL | `https://user.github.io/repo/` |",
            "| relay | `DANCE_ALLOWED_ORIGINS` | `https://user.github.io` |",
            "| relay | `DANCE_ALLOWED_REDIRECT_URIS` | `https://user.github.io/repo/` |",
            "| relay | `DANCE_CLIENT_ID` | `AbC` |",
            "| relay | `DANCE_SEALING_KEY` | a secret of its own: `dance-relay keygen`",
            "cargo xtask doctor --site https://user.github.io/repo/",
        ] {
            assert!(summary.contains(expected), "missing {expected:?} in\n{summary}");
        }
    }

    // ------------------------------------------------------ the workflow file

    fn workflow() -> String {
        std::fs::read_to_string(crate::util::root().join(".github/workflows/pages.yml"))
            .expect(".github/workflows/pages.yml")
    }

    /// The workflow runs the commands this crate tests, and feeds `cargo
    /// xtask pages` every variable it reads.
    #[test]
    fn the_workflow_builds_with_cargo_xtask_pages_and_the_official_actions() {
        use clap::Args as _;
        let text = workflow();
        for line in [
            "run: cargo xtask setup --build-only",
            "run: cargo xtask pages --no-setup --dist _site",
            "uses: actions/configure-pages@",
            "uses: actions/upload-pages-artifact@",
            "uses: actions/deploy-pages@",
            "path: _site",
            "branches: [main]",
            "workflow_dispatch:",
            "pages: write",
            "id-token: write",
        ] {
            assert!(text.contains(line), "the workflow lacks `{line}`");
        }
        let command = PagesArgs::augment_args(clap::Command::new("pages"));
        let variables: Vec<String> = command
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        assert_eq!(variables, ["PAGES_SITE_URL", "BITBUCKET_CLIENT_ID", "RELAY_URL"]);
        assert!(text.contains("PAGES_SITE_URL: ${{ needs.address.outputs.base_url }}"), "{text}");
        for name in ["BITBUCKET_CLIENT_ID", "RELAY_URL"] {
            assert!(text.contains(&format!("{name}: ${{{{ vars.{name} }}}}")), "{name} not passed");
        }
        let rust = std::fs::read_to_string(crate::util::root().join("Cargo.toml"))
            .expect("Cargo.toml")
            .lines()
            .find_map(|line| {
                line.strip_prefix("rust-version = \"")?.strip_suffix('"').map(str::to_owned)
            })
            .expect("rust-version");
        assert!(text.contains(&format!("rustup toolchain install {rust}.0")), "Rust {rust}");
    }

    /// actionlint (installed by `cargo xtask setup`) finds nothing.
    #[test]
    fn the_workflow_passes_actionlint() {
        crate::util::assert_actionlint_passes(".github/workflows/pages.yml");
    }

    /// The lint can fail: a broken workflow is reported.
    #[test]
    fn actionlint_catches_a_broken_workflow() {
        if crate::util::probe("actionlint", &["--version"]).is_none() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("xtask-actionlint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let broken = workflow().replace(
            "${{ needs.address.outputs.base_url }}",
            "${{ needs.address.outputs.base_url ",
        );
        let path = dir.join("pages.yml");
        std::fs::write(&path, broken).expect("write");
        let output = crate::util::tool("actionlint")
            .arg("-no-color")
            .arg(&path)
            .output()
            .expect("run actionlint");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(!output.status.success(), "actionlint accepted an unterminated expression");
    }
}
