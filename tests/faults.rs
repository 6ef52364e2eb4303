//! The fault matrix: `castoff release` of the example project (examples/app: the native
//! builder, three platforms, one NuGet package with a legacy `.symbols.nupkg`) through
//! the fault-injecting proxy of `support::proxy`, which sits in front of the real
//! services:
//!
//! - Debian's docker-registry behind htpasswd Basic auth (credentials in a docker
//!   `config.json` under `DOCKER_CONFIG`); the proxy plays the bearer token server in
//!   front of it (a stand-in: no real token server runs here, see `support::proxy`);
//! - two pynuget v2 feeds: `pynuget` takes the nupkg, `symbols` the legacy symbols
//!   package (`packages = false`, `symbols = "legacy"`), so a symbols PUT exists and does
//!   not collide with the nupkg of the same id and version.
//!
//! Every fault (500, 502, 503, 429 with and without Retry-After; reset; stall; truncate;
//! redirect to another host) is crossed with every network step (manifest GET, blob
//! upload, manifest PUT, token fetch, package PUT, symbol PUT): 72 scenarios, each in its
//! own copy of one committed template, with its own registry repository, its own package
//! id and its own proxies, all sharing one registry and the two feeds. Each scenario is
//! classified:
//!
//! - **completed**: exit 0 and the end state is correct: both release tags resolve (read
//!   from the registry directly, not through the proxy) to one index listing all three
//!   platforms, whose children, configs and layers are all there with their digests; the
//!   nupkg and the symbols package are stored once, each on its feed, byte for byte as
//!   packed; VERSION (and the baseline) bumped once; the journal complete, and the only
//!   one.
//! - **failed cleanly**: exit 1 with an error that names the failed step and where (the
//!   proxy's address or the feed's name), and a journal (or, refused in preflight before
//!   anything changed: no journal and VERSION untouched, as "a release refused changes
//!   nothing" says); then a re-run through the same proxies, disarmed, completes with the
//!   correct end state, VERSION still bumped once.
//! - **wrong state**: anything else, including a run killed after the generous
//!   [`RUN_TIMEOUT`], and any credential (`Authorization`, `X-NuGet-ApiKey`) reaching the
//!   redirect's other host.
//!
//! Combinations that cannot happen as named are defined and run anyway: a truncated or
//! stalled answer without a body (a HEAD, a PUT answered 201 with nothing) is cut or held
//! inside its head (see `support::proxy`); a redirected POST or PUT to the registry is not
//! followed (castoff follows GET and HEAD only) and must fail cleanly naming the 307; a
//! redirected push must fail cleanly (the API key goes only to the feed's own origin); a
//! redirected token fetch is followed without the Basic credentials, and the other host
//! hands out a token as an anonymous token service would.
//!
//! The scenarios' seeds come from [`BASE_SEED`] (override with `CASTOFF_FAULT_SEED`); a
//! seed decides which matching request is hit first (1st or 2nd, among as many as a
//! fault-free reference run makes), how many times (1, 2 or always), the Retry-After
//! value, and in the proxy where a reset or a cut happens and whether a reset or stall
//! comes before or after the service saw the request. `CASTOFF_FAULT_ONLY=<text>` runs
//! only the scenarios whose `fault step` label contains the text (for diagnosis; the
//! count of 72 is then not asserted). No test asserts a time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use tempfile::TempDir;
use testkit::pynuget::Pynuget;
use testkit::registry::sha256_digest;

use crate::support::example::{example_repo, example_versions};
use crate::support::proxy::{Fault, Proxy, Scenario, SplitMix64, Step, Upstream, ALWAYS};
use crate::support::registry::Registry;
use crate::support::{temp_dir, TempRepo, TreeHash};

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm/v6", "linux/arm/v7"];
const EXAMPLE_ID: &str = "Example.App";
/// The variable castoff.toml names for both feeds' key.
const KEY_ENV: &str = "CASTOFF_IT_FAULTS_FEED_KEY";
const FEED_KEY: &str = "faults-feed-key-0123";
const REGISTRY_USER: &str = "castoff-faults";
const REGISTRY_PASSWORD: &str = "faults-registry-password-4567";
/// Fixes the `created` annotation, so every copy's release is the same but for names.
const SOURCE_DATE_EPOCH: &str = "1700000000";

/// `[network]` for the matrix: small, so that stalls and persistent faults fail fast.
const ATTEMPTS: u32 = 4;
const TIMEOUT_SECONDS: u64 = 3;
const TOTAL_SECONDS: u64 = 20;
/// Each feed's `timeout` (its reads and writes; the default is the NuGet client's 300 s).
const FEED_TIMEOUT_SECONDS: u64 = 3;
/// How long a stall lasts: well past every timeout above.
const STALL: Duration = Duration::from_secs(10);
/// A castoff run still going after this is hung: it is killed and the scenario is a
/// wrong state. Far beyond what the retry budget allows (a guard, not a measurement).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Scenarios run at once.
const THREADS: usize = 4;
/// Where the scenarios' seeds come from (see the module comment).
const BASE_SEED: u64 = 0xca57_0ff0_fa17_5eed;

// ---------------------------------------------------------------------------------------
// The project
// ---------------------------------------------------------------------------------------

/// The real services every scenario shares, and the template they copy.
struct Services {
    registry: Registry,
    packages: Pynuget,
    symbols: Pynuget,
    template: TempRepo,
    previous: String,
    version: String,
}

impl Services {
    fn start() -> Services {
        let (previous, version) = example_versions();
        Services {
            registry: Registry::start_with_basic_auth(REGISTRY_USER, REGISTRY_PASSWORD),
            packages: Pynuget::start(FEED_KEY),
            symbols: Pynuget::start(FEED_KEY),
            template: example_repo(false),
            previous,
            version,
        }
    }
}

/// One copy of the template releasing through its own three proxies (registry, package
/// feed, symbols feed) to its own repository `faults/<name>` and package id.
struct Copy {
    repo: TempRepo,
    registry_proxy: Proxy,
    packages_proxy: Proxy,
    symbols_proxy: Proxy,
    docker_config: TempDir,
    repository: String,
    id: String,
}

impl Copy {
    fn new(services: &Services, name: &str, id: &str) -> Copy {
        let repo = services.template.clone_repo();
        let basic = Some((REGISTRY_USER.to_string(), REGISTRY_PASSWORD.to_string()));
        let registry_proxy = Proxy::start(services.registry.host(), Upstream::Registry { basic }, STALL);
        let feed_host = |feed: &Pynuget| feed.url().trim_start_matches("http://").trim_end_matches('/').to_string();
        let packages_proxy = Proxy::start(&feed_host(&services.packages), Upstream::Feed, STALL);
        let symbols_proxy = Proxy::start(&feed_host(&services.symbols), Upstream::Feed, STALL);
        let docker_config = temp_dir();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
        let auths = serde_json::json!({ "auths": { registry_proxy.host(): { "auth": auth } } });
        fs::write(docker_config.path().join("config.json"), auths.to_string()).unwrap();
        let copy = Copy {
            repo,
            registry_proxy,
            packages_proxy,
            symbols_proxy,
            docker_config,
            repository: format!("faults/{name}"),
            id: id.to_string(),
        };
        copy.configure();
        copy
    }

    /// castoff.toml for this copy (left uncommitted), and the package id in the nuspec.
    fn configure(&self) {
        let nuspec = format!("nuget/{EXAMPLE_ID}.nuspec");
        let text = self.repo.read_string(&nuspec);
        let renamed = text.replace(&format!("<id>{EXAMPLE_ID}</id>"), &format!("<id>{}</id>", self.id));
        assert_ne!(text, renamed, "the example's nuspec has <id>{EXAMPLE_ID}</id>");
        self.repo.write(&nuspec, renamed);

        let mut config: toml::Table =
            self.repo.read_string("castoff.toml").parse().expect("the example's castoff.toml");
        let image = config.get_mut("image").and_then(|v| v.as_table_mut()).expect("the example has [image]");
        image.insert("name".into(), format!("{}/{}", self.registry_proxy.host(), self.repository).into());
        image.remove("output");
        let packages = config.get_mut("package").and_then(|v| v.as_array_mut()).expect("the example has [[package]]");
        let package = packages[0].as_table_mut().expect("[[package]] is a table");
        package.insert("symbols".into(), "legacy".into());
        let feed = |name: &str, proxy: &Proxy, packages: bool, symbols: &str| {
            let mut table = toml::Table::new();
            table.insert("name".into(), name.into());
            table.insert("url".into(), proxy.url("/").into());
            table.insert("protocol".into(), "v2".into());
            table.insert("api_key_env".into(), KEY_ENV.into());
            table.insert("packages".into(), packages.into());
            table.insert("symbols".into(), symbols.into());
            table.insert("timeout".into(), (FEED_TIMEOUT_SECONDS as i64).into());
            toml::Value::from(table)
        };
        let feeds = vec![
            feed("pynuget", &self.packages_proxy, true, "none"),
            feed("symbols", &self.symbols_proxy, false, "legacy"),
        ];
        config.insert("feed".into(), feeds.into());
        let mut network = toml::Table::new();
        network.insert("attempts".into(), i64::from(ATTEMPTS).into());
        network.insert("timeout_seconds".into(), (TIMEOUT_SECONDS as i64).into());
        network.insert("total_seconds".into(), (TOTAL_SECONDS as i64).into());
        config.insert("network".into(), network.into());
        self.repo.write("castoff.toml", toml::to_string(&config).expect("castoff.toml serialises"));
    }

    fn proxies(&self) -> [(&'static str, &Proxy); 3] {
        [
            ("registry", &self.registry_proxy),
            ("pynuget feed", &self.packages_proxy),
            ("symbols feed", &self.symbols_proxy),
        ]
    }

    fn arm(&self, scenario: Scenario) {
        self.proxies().iter().for_each(|(_, proxy)| proxy.arm(scenario));
    }

    fn disarm(&self) {
        self.proxies().iter().for_each(|(_, proxy)| proxy.disarm());
    }

    fn applied(&self) -> u32 {
        self.proxies().iter().map(|(_, proxy)| proxy.applied()).sum()
    }

    /// Matching requests per step, over the three proxies.
    fn counts(&self) -> BTreeMap<Step, u32> {
        let mut counts = BTreeMap::new();
        for (_, proxy) in self.proxies() {
            for (step, n) in proxy.counts() {
                *counts.entry(step).or_insert(0) += n;
            }
        }
        counts
    }

    /// Requests that reached the redirects' other host.
    fn recorded(&self) -> usize {
        self.proxies().iter().map(|(_, proxy)| proxy.recorded().len()).sum()
    }

    fn leaks(&self) -> Vec<String> {
        self.proxies().iter().flat_map(|(_, proxy)| proxy.credential_leaks()).collect()
    }

    fn logs(&self) -> String {
        self.proxies()
            .iter()
            .map(|(name, proxy)| {
                format!("--- {name} proxy {} (redirects to {}) ---\n{}", proxy.host(), proxy.other_host(), proxy.log())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Names castoff may use for where a failure happened.
    fn places(&self) -> Vec<String> {
        let mut places: Vec<String> =
            self.proxies().iter().flat_map(|(_, p)| [p.host().to_string(), p.other_host().to_string()]).collect();
        places.extend(["pynuget", "symbols"].map(|feed| format!("`{feed}`")));
        places.extend(["pynuget", "symbols"].map(|feed| format!("feed {feed}")));
        places
    }

    /// `castoff --json release`, killed after [`RUN_TIMEOUT`].
    fn release(&self) -> Run {
        let mut command = self.repo.castoff(["--json", "release"]);
        for name in ["CASTOFF_CRASH_AT", "CASTOFF_REGISTRY_USERNAME", "CASTOFF_REGISTRY_PASSWORD"] {
            command.env_remove(name);
        }
        command
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
            .env(KEY_ENV, FEED_KEY)
            .timeout(RUN_TIMEOUT);
        let output = command.output().expect("run castoff");
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// One finished (or killed) castoff run.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "`castoff --json release` ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The stdout lines that are JSON objects.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|line| line["event"] == name).collect()
    }

    fn error(&self) -> Option<Value> {
        self.lines().into_iter().find(|line| line.get("error").is_some()).map(|line| line["error"].clone())
    }
}

// ---------------------------------------------------------------------------------------
// End state
// ---------------------------------------------------------------------------------------

/// Everything a completed release must have left, as a list of what is wrong.
fn end_state_problems(services: &Services, copy: &Copy, run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let version = services.version.as_str();
    let repo = &copy.repo;

    if repo.version() != version {
        problems.push(format!("VERSION is {}, expected {version} (bumped once)", repo.version()));
    }
    if repo.baseline().version != version {
        problems.push(format!("the baseline's version is {}, expected {version}", repo.baseline().version));
    }
    let results = run.events("result");
    match results.as_slice() {
        [result] if result["version"] == version => {}
        _ => problems.push(format!("expected one result event for {version}, got {results:?}")),
    }
    let journals: Vec<String> = fs::read_dir(repo.join(".castoff/journal"))
        .map(|dir| dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    if journals != [format!("{version}.json")] {
        problems.push(format!("journals {journals:?}, expected only {version}.json"));
    } else {
        let journal: Value =
            serde_json::from_str(&repo.read_string(&format!(".castoff/journal/{version}.json"))).unwrap_or(Value::Null);
        if journal["complete"] != true {
            problems.push(format!("the journal is not complete: {journal}"));
        }
    }

    problems.extend(registry_problems(services, copy));
    problems.extend(feed_problems(services, copy));
    problems
}

/// Both tags: one index with all platforms; every child, config and layer present.
fn registry_problems(services: &Services, copy: &Copy) -> Vec<String> {
    let registry = &services.registry;
    let repository = &copy.repository;
    let mut problems = Vec::new();
    let mut digests = BTreeSet::new();
    for tag in ["latest", services.version.as_str()] {
        let response = registry.get(&format!("/v2/{repository}/manifests/{tag}"));
        if response.status != 200 {
            problems.push(format!("{repository}:{tag} answers {}: {}", response.status, response.text()));
            continue;
        }
        digests.insert(response.digest.clone().unwrap_or_default());
        let index: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let Some(children) = index["manifests"].as_array() else {
            problems.push(format!("{repository}:{tag} is not an index: {}", response.text()));
            continue;
        };
        let platforms: BTreeSet<String> = testkit::images::index_platforms(&index).into_iter().collect();
        let expected: BTreeSet<String> = PLATFORMS.iter().map(|p| p.to_string()).collect();
        if platforms != expected {
            problems.push(format!("{repository}:{tag} lists {platforms:?}, expected {expected:?}"));
        }
        for child in children {
            let digest = child["digest"].as_str().unwrap_or_default();
            let response = registry.get(&format!("/v2/{repository}/manifests/{digest}"));
            if response.status != 200 || sha256_digest(&response.body) != digest {
                problems.push(format!("child {digest} of {repository}:{tag}: {} {}", response.status, response.text()));
                continue;
            }
            let manifest: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
            for blob in std::iter::once(&manifest["config"]).chain(layers.iter()) {
                let digest = blob["digest"].as_str().unwrap_or_default();
                let response = registry.get(&format!("/v2/{repository}/blobs/{digest}"));
                if response.status != 200 || sha256_digest(&response.body) != digest {
                    problems.push(format!(
                        "blob {digest} of {repository}: {} ({} bytes)",
                        response.status,
                        response.body.len()
                    ));
                }
            }
        }
    }
    if digests.len() > 1 {
        problems.push(format!("latest and {} are different indexes: {digests:?}", services.version));
    }
    problems
}

/// The nupkg once on `pynuget`, the symbols package once on `symbols`, as packed.
fn feed_problems(services: &Services, copy: &Copy) -> Vec<String> {
    let version = &services.version;
    let mut problems = Vec::new();
    let packed = |suffix: &str| copy.repo.join(&format!("dist/nuget/{}.{version}{suffix}", copy.id));
    for (feed, name, file) in
        [(&services.packages, "pynuget", packed(".nupkg")), (&services.symbols, "symbols", packed(".symbols.nupkg"))]
    {
        let marker = format!("/nuget_packages/{}/", copy.id);
        let stored: Vec<_> =
            feed.package_files().into_iter().filter(|path| path.to_string_lossy().contains(&marker)).collect();
        let expected = feed.server_dir().join(format!("nuget_packages/{}/{version}.nupkg", copy.id));
        if stored != [expected.clone()] {
            problems.push(format!("feed {name} holds {stored:?} for {}, expected {}", copy.id, expected.display()));
            continue;
        }
        match (fs::read(&stored[0]), fs::read(&file)) {
            (Ok(on_feed), Ok(local)) if on_feed == local => {}
            (Ok(_), Ok(_)) => problems.push(format!("feed {name}'s copy differs from {}", file.display())),
            (a, b) => problems.push(format!("cannot compare feed {name}'s copy with {}: {a:?} {b:?}", file.display())),
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// One scenario
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Completed,
    FailedCleanly,
    Wrong,
}

struct Outcome {
    class: Class,
    /// One line for the table.
    summary: String,
    /// Everything needed to diagnose it: the problems, both runs, the proxies' logs.
    details: String,
    /// Whether the fault was applied at all (a scenario that never fired proves nothing).
    fired: bool,
}

/// Whether a failed run failed cleanly: exit 1, an error naming the failed step and
/// where, and a journal (or a preflight refusal that changed nothing). `Ok` says how.
fn clean_failure(services: &Services, copy: &Copy, run: &Run, before: &TreeHash) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    if run.status.code() != Some(1) {
        problems.push(match run.status.signal() {
            Some(9) => format!("killed after {RUN_TIMEOUT:?}: castoff hung"),
            Some(signal) => format!("killed by signal {signal}"),
            None => format!("exit code {:?}, expected 1", run.status.code()),
        });
    }
    let message = run.error().and_then(|e| e["message"].as_str().map(str::to_string)).unwrap_or_default();
    if message.is_empty() {
        problems.push("no {\"error\": {\"message\": …}} line on stdout".into());
    }
    if !copy.places().iter().any(|place| message.contains(place.as_str())) {
        problems.push(format!("the error does not say where (no proxy address or feed name): {message:?}"));
    }
    let failed: Vec<String> = run
        .events("step-finished")
        .iter()
        .filter(|e| e["status"] == "failed")
        .filter_map(|e| e["step"].as_str().map(str::to_string))
        .collect();
    let journal = copy.repo.join(&format!(".castoff/journal/{}.json", services.version));
    let how = if journal.exists() {
        let text = fs::read_to_string(&journal).unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if value["complete"] != false {
            problems.push(format!("the journal of a failed release says complete = {}", value["complete"]));
        }
        match failed.as_slice() {
            [step] if message.contains(&format!("release step `{step}` failed")) => {}
            _ => problems.push(format!(
                "expected one failed step named in the error; failed steps {failed:?}, error {message:?}"
            )),
        }
        if copy.repo.version() != services.version {
            problems.push(format!(
                "VERSION is {} after a journalled failure, expected {}",
                copy.repo.version(),
                services.version
            ));
        }
        format!("failed in {}", failed.join(","))
    } else {
        if copy.repo.version() != services.previous {
            problems.push(format!("no journal, but VERSION changed to {}", copy.repo.version()));
        }
        let after = copy.repo.tree_hash();
        if &after != before {
            problems
                .push(format!("a release refused in preflight changed files:\nbefore {before:?}\nafter  {after:?}"));
        }
        if copy.repo.exists(".castoff/journal")
            && fs::read_dir(copy.repo.join(".castoff/journal")).is_ok_and(|mut d| d.next().is_some())
        {
            problems.push("no journal for the version, but other journals".into());
        }
        if !message.to_lowercase().contains("preflight") && !failed.is_empty() {
            problems.push(format!("no journal, yet steps failed ({failed:?}) outside preflight"));
        }
        "refused in preflight, nothing changed".to_string()
    };
    match problems.is_empty() {
        true => Ok(format!("{how}: {}", one_line(&message, 160))),
        false => Err(problems),
    }
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.chars().count() > max {
        true => format!("{}…", flat.chars().take(max).collect::<String>()),
        false => flat,
    }
}

fn run_scenario(services: &Services, index: usize, scenario: Scenario) -> Outcome {
    let copy = Copy::new(services, &format!("s{index:02}"), &format!("Faults.S{index:02}"));
    copy.arm(scenario);
    let before = copy.repo.tree_hash();
    let first = copy.release();
    let fired = copy.applied() > 0;
    copy.disarm();
    let mut problems = Vec::new();
    let mut second = None;
    let class = if first.status.success() {
        problems.extend(end_state_problems(services, &copy, &first));
        Class::Completed
    } else {
        match clean_failure(services, &copy, &first, &before) {
            Ok(how) => {
                let rerun = copy.release();
                if !rerun.status.success() {
                    problems.push(format!("the fault-free re-run failed ({})", rerun.status));
                } else {
                    problems.extend(
                        end_state_problems(services, &copy, &rerun)
                            .into_iter()
                            .map(|p| format!("after the re-run: {p}")),
                    );
                    let resumed = rerun.events("result").first().map(|r| r["resumed"].clone());
                    if how.starts_with("failed in") && resumed != Some(Value::Bool(true)) {
                        problems
                            .push(format!("the re-run did not continue the journalled release: resumed {resumed:?}"));
                    }
                }
                second = Some((how, rerun));
                Class::FailedCleanly
            }
            Err(found) => {
                problems.extend(found);
                Class::Wrong
            }
        }
    };
    problems.extend(copy.leaks().into_iter().map(|leak| format!("credential leaked: {leak}")));
    let class = if problems.is_empty() { class } else { Class::Wrong };
    let applied = match copy.recorded() {
        0 => format!("fault applied {}x", copy.applied()),
        n => format!("fault applied {}x; the other host got {n} request(s), none with credentials", copy.applied()),
    };
    let summary = match (class, &second) {
        (Class::Completed, _) => format!("completed ({applied})"),
        (Class::FailedCleanly, Some((how, _))) => format!("failed cleanly, re-run completed ({applied}): {how}"),
        _ => format!("WRONG STATE ({applied}): {}", problems.join("; ")),
    };
    let mut details = format!("[s{index:02}] {scenario}\n");
    if !problems.is_empty() {
        details.push_str(&format!("problems:\n- {}\n", problems.join("\n- ")));
    }
    details.push_str(&format!("\nfirst run: {}\n", first.describe()));
    if let Some((_, rerun)) = &second {
        details.push_str(&format!("\nre-run: {}\n", rerun.describe()));
    }
    details.push_str(&format!("\nproxy logs:\n{}\n", copy.logs()));
    Outcome { class, summary, details, fired }
}

// ---------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------

/// The twelve faults; a Retry-After value comes from the scenario's seed.
fn fault_of(kind: usize, rng: &mut SplitMix64) -> Fault {
    const CODES: [u16; 4] = [500, 502, 503, 429];
    match kind {
        0..=7 => Fault::Status { code: CODES[kind / 2], retry_after: (kind % 2 == 1).then(|| rng.below(3) as u32) },
        8 => Fault::Reset,
        9 => Fault::Stall,
        10 => Fault::Truncate,
        11 => Fault::Redirect,
        _ => unreachable!("twelve faults"),
    }
}

fn base_seed() -> u64 {
    match std::env::var("CASTOFF_FAULT_SEED") {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("CASTOFF_FAULT_SEED={text:?}: {e}"))
        }
        Err(_) => BASE_SEED,
    }
}

/// Every fault crossed with every network step, against the real registry and the real
/// pynuget feeds through the fault proxy: each release completes with a correct end
/// state, or fails cleanly and a re-run completes; none is left in a wrong state. Real
/// programs: docker-registry, pynuget (two), git; the token server is the proxy's
/// stand-in (see `support::proxy`).
#[test]
fn every_fault_at_every_network_step_completes_or_fails_cleanly() {
    let services = Services::start();

    // A fault-free release through the proxies: the harness works, and how many
    // requests of each step a release makes (a fault's first hit is chosen among them).
    let reference = Copy::new(&services, "reference", "Faults.Reference");
    let run = reference.release();
    assert!(run.status.success(), "the fault-free reference release failed: {}\n{}", run.describe(), reference.logs());
    let problems = end_state_problems(&services, &reference, &run);
    assert!(problems.is_empty(), "the reference release's end state: {problems:?}\n{}", reference.logs());
    let counts = reference.counts();
    for step in Step::ALL {
        assert!(
            counts.get(&step).is_some_and(|n| *n > 0),
            "a release makes no {step} request: {counts:?}\n{}",
            reference.logs()
        );
    }
    let shown: Vec<String> = counts.iter().map(|(step, n)| format!("{step} {n}")).collect();
    println!("a fault-free release makes these requests: {}", shown.join(", "));
    drop(reference);

    let base = base_seed();
    let only = std::env::var("CASTOFF_FAULT_ONLY").ok();
    let mut cases = Vec::new();
    for kind in 0..12 {
        for step in Step::ALL {
            let index = cases.len() + 1;
            let seed = SplitMix64::new(base ^ index as u64).next_u64();
            let mut rng = SplitMix64::new(seed ^ 0x5eed_5eed_5eed_5eed);
            let fault = fault_of(kind, &mut rng);
            let times = [1, 2, ALWAYS][rng.below(3) as usize];
            let first = 1 + rng.below(u64::from(counts[&step].min(2))) as u32;
            cases.push((index, Scenario { seed, fault, step, times, first }));
        }
    }
    let label = |s: &Scenario| format!("{} {}", s.fault, s.step);
    if let Some(only) = &only {
        cases.retain(|(_, s)| label(s).contains(only.as_str()));
    }

    let started = Instant::now();
    let outcomes: Mutex<Vec<(usize, Scenario, Outcome)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                while let Some((index, scenario)) = cases.get(next.fetch_add(1, Ordering::SeqCst)).copied() {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_scenario(&services, index, scenario)
                    }))
                    .unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic without a message".into());
                        Outcome {
                            class: Class::Wrong,
                            summary: format!("WRONG STATE (the harness panicked): {}", one_line(&message, 300)),
                            details: format!("[s{index:02}] {scenario}\nthe harness panicked:\n{message}"),
                            fired: true,
                        }
                    });
                    println!("[s{index:02}] {scenario} → {}", outcome.summary);
                    outcomes.lock().unwrap().push((index, scenario, outcome));
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let mut outcomes = outcomes.into_inner().unwrap();
    outcomes.sort_by_key(|(index, _, _)| *index);

    let count = |class: Class| outcomes.iter().filter(|(_, _, o)| o.class == class).count();
    let (completed, failed, wrong) = (count(Class::Completed), count(Class::FailedCleanly), count(Class::Wrong));
    println!("\nfault matrix (base seed {base:#018x}):");
    for (index, scenario, outcome) in &outcomes {
        println!("  [s{index:02}] {scenario} → {}", outcome.summary);
    }
    // Every scenario's runs and proxy logs with CASTOFF_FAULT_LOGS set; else the wrong ones.
    let all_logs = std::env::var_os("CASTOFF_FAULT_LOGS").is_some();
    for (_, _, outcome) in outcomes.iter().filter(|(_, _, o)| all_logs || o.class == Class::Wrong) {
        let title = if outcome.class == Class::Wrong { "wrong state" } else { "scenario" };
        println!("\n=== {title} ===\n{}", outcome.details);
    }
    println!("fault matrix wall time: {:.0} s ({THREADS} at a time)", elapsed.as_secs_f64());
    crate::support::count(&format!(
        "fault matrix: {} run, {completed} completed, {failed} failed cleanly, {wrong} wrong state",
        outcomes.len()
    ));
    let idle: Vec<String> =
        outcomes.iter().filter(|(_, _, o)| !o.fired).map(|(i, s, _)| format!("[s{i:02}] {s}")).collect();
    assert!(idle.is_empty(), "scenarios whose fault never fired (they prove nothing): {idle:?}");
    if only.is_none() {
        assert_eq!(outcomes.len(), 72, "12 faults × 6 steps");
    }
    assert_eq!(wrong, 0, "{wrong} scenario(s) left in a wrong state; see above");
}

// ---------------------------------------------------------------------------------------
// The proxy itself
// ---------------------------------------------------------------------------------------

/// A trivial upstream for the proxy's self-test: answers every request with a fixed
/// 1000-byte body (GET), no body (HEAD), or 201 and nothing (PUT, POST), and records the
/// `Authorization` header each request carried.
struct Trivial {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

const TRIVIAL_BODY: usize = 1000;

/// Method, target and `Authorization` of a request the trivial upstream answered.
type Seen = (String, String, Option<String>);

impl Trivial {
    fn start() -> Trivial {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line);
                    }
                    let mut lines = head.lines();
                    let mut words = lines.next().unwrap_or("").split(' ');
                    let (method, target) =
                        (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
                    let header = |name: &str| {
                        head.lines().find_map(|l| {
                            l.split_once(':')
                                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_string())
                        })
                    };
                    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    record.lock().unwrap().push((method.clone(), target, header("authorization")));
                    let response = match method.as_str() {
                        "GET" => format!("HTTP/1.1 200 OK\r\nContent-Length: {TRIVIAL_BODY}\r\n\r\n{}", "x".repeat(TRIVIAL_BODY)),
                        "HEAD" => format!("HTTP/1.1 200 OK\r\nContent-Length: {TRIVIAL_BODY}\r\nDocker-Content-Digest: sha256:00\r\n\r\n"),
                        _ => "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_string(),
                    };
                    let _ = stream.write_all(response.as_bytes());
                });
            }
        });
        Trivial { host, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// How an exchange with the proxy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The proxy closed the connection in order (FIN).
    Closed,
    /// TCP RST.
    Reset,
    /// Nothing more arrived within the client's read timeout.
    Silent,
}

/// Send `request` raw to `host` and read until the connection ends or goes quiet for
/// `quiet`.
fn exchange(host: &str, request: &[u8], quiet: Duration) -> (Vec<u8>, End) {
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(quiet)).unwrap();
    stream.write_all(request).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (received, End::Closed),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (received, End::Reset),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (received, End::Silent)
            }
            Err(e) => panic!("reading from {host}: {e}"),
        }
    }
}

/// The response's head (up to the blank line) as text, and its body.
fn split_response(bytes: &[u8]) -> (String, Vec<u8>) {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(bytes.len(), |p| p + 4);
    (String::from_utf8_lossy(&bytes[..end]).into_owned(), bytes[end..].to_vec())
}

fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
    })
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: proxy\r\n{extra}\r\n").into_bytes()
}

/// Each fault does what it says, against a trivial upstream: statuses with and without
/// Retry-After (and only for `times` requests from the `first`), a reset (RST, the
/// response incomplete), a stall (nothing complete within the client's timeout), a
/// truncation (fewer bytes than the Content-Length kept in the head, then FIN; inside
/// the head for a HEAD), a redirect to the other origin that records credentials and
/// forwards; the stand-in token flow; telling package and symbol pushes apart; and the
/// same seed giving the same decisions. No castoff involved.
#[test]
fn the_fault_proxy_does_what_each_fault_says() {
    let upstream = Trivial::start();
    let path = "/v2/team/app/manifests/1.0";
    let stall = Duration::from_secs(3);
    let quiet = Duration::from_secs(1);
    let scenario = |fault, times, first| Scenario { seed: 7, fault, step: Step::ManifestGet, times, first };

    // The stand-in token flow: a 401 challenge naming the proxy's realm, a token, and the
    // request forwarded without the bearer token.
    let registry = Proxy::start(&upstream.host, Upstream::Registry { basic: None }, stall);
    let token = {
        let (bytes, end) = exchange(registry.host(), &get(path, ""), quiet);
        let (head, _) = split_response(&bytes);
        assert_eq!(end, End::Closed);
        assert!(head.starts_with("HTTP/1.1 401"), "{head}");
        let challenge = header_value(&head, "WWW-Authenticate").expect("a challenge");
        let realm = format!("Bearer realm=\"http://{}/token\"", registry.host());
        assert!(
            challenge.starts_with(&realm) && challenge.contains("scope=\"repository:team/app:pull\""),
            "{challenge}"
        );
        let (bytes, _) =
            exchange(registry.host(), &get("/token?service=test&scope=repository:team/app:pull", ""), quiet);
        let (head, body) = split_response(&bytes);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let value: Value = serde_json::from_slice(&body).unwrap();
        value["token"].as_str().unwrap().to_string()
    };
    let bearer = format!("Authorization: Bearer {token}\r\n");
    let (bytes, _) = exchange(registry.host(), &get(path, &bearer), quiet);
    assert!(bytes.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&bytes));
    let last = upstream.seen().last().cloned().unwrap();
    assert_eq!(last.2, None, "the bearer token is not forwarded to an anonymous upstream: {last:?}");
    assert_eq!(registry.counts().get(&Step::TokenFetch), Some(&1));
    let authorised = |proxy: &Proxy, request: &[u8]| exchange(proxy.host(), request, quiet);

    // Status, with Retry-After, hitting only the 2nd request; then without, always.
    registry.arm(scenario(Fault::Status { code: 503, retry_after: Some(2) }, 1, 2));
    let before = upstream.seen().len();
    let (first, _) = authorised(&registry, &get(path, &bearer));
    let (second, _) = authorised(&registry, &get(path, &bearer));
    let (third, _) = authorised(&registry, &get(path, &bearer));
    assert!(first.starts_with(b"HTTP/1.1 200"), "the 1st request passes");
    let (head, _) = split_response(&second);
    assert!(head.starts_with("HTTP/1.1 503"), "the 2nd is hit: {head}");
    assert_eq!(header_value(&head, "Retry-After").as_deref(), Some("2"));
    assert!(third.starts_with(b"HTTP/1.1 200"), "times = 1: the 3rd passes");
    assert_eq!(upstream.seen().len(), before + 2, "the faulted request never reached the upstream");
    registry.arm(scenario(Fault::Status { code: 429, retry_after: None }, ALWAYS, 1));
    for _ in 0..3 {
        let (bytes, _) = authorised(&registry, &get(path, &bearer));
        let (head, _) = split_response(&bytes);
        assert!(head.starts_with("HTTP/1.1 429") && header_value(&head, "Retry-After").is_none(), "{head}");
    }
    assert_eq!(registry.applied(), 4);

    // Reset: an RST, with the response incomplete (nothing, or part of it).
    for seed in 0..6 {
        registry.arm(Scenario { seed, ..scenario(Fault::Reset, 1, 1) });
        let (bytes, end) = authorised(&registry, &get(path, &bearer));
        assert_eq!(end, End::Reset, "seed {seed}: {}", registry.log());
        assert!(bytes.len() < 1000, "seed {seed}: the response is incomplete ({} bytes)", bytes.len());
    }
    // A reset during a request body (a PUT), or after forwarding it.
    let put = |proxy: &Proxy, body: &[u8]| {
        let mut request = format!(
            "PUT /v2/team/app/blobs/uploads/1?digest=x HTTP/1.1\r\nHost: p\r\n{bearer}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        exchange(proxy.host(), &request, quiet)
    };
    for seed in 0..6 {
        registry.arm(Scenario { seed, step: Step::BlobUpload, ..scenario(Fault::Reset, 1, 1) });
        let (_, end) = put(&registry, &[7; 5000]);
        assert_eq!(end, End::Reset, "seed {seed}: {}", registry.log());
    }
    assert!(registry.log().contains("request body bytes (not forwarded)"), "{}", registry.log());
    assert!(registry.log().contains("response bytes"), "{}", registry.log());

    // Stall: nothing complete arrives within the client's timeout.
    for seed in 0..4 {
        registry.arm(Scenario { seed, ..scenario(Fault::Stall, 1, 1) });
        let (bytes, end) = authorised(&registry, &get(path, &bearer));
        assert_eq!(end, End::Silent, "seed {seed}");
        let (head, body) = split_response(&bytes);
        assert!(body.is_empty() && (bytes.is_empty() || head.starts_with("HTTP/1.1 200")), "seed {seed}: {head}");
    }

    // A response without a body never completes either: its head lacks the final blank line.
    for seed in 0..4 {
        registry.arm(Scenario { seed, ..scenario(Fault::Stall, 1, 1) });
        let request = format!("HEAD {path} HTTP/1.1\r\nHost: p\r\n{bearer}\r\n").into_bytes();
        let (bytes, end) = authorised(&registry, &request);
        assert_eq!(end, End::Silent, "seed {seed}");
        assert!(!bytes.windows(4).any(|w| w == b"\r\n\r\n"), "seed {seed}: {:?}", String::from_utf8_lossy(&bytes));
    }

    // Truncate: the Content-Length is kept, fewer bytes arrive, then FIN.
    for seed in 0..4 {
        registry.arm(Scenario { seed, ..scenario(Fault::Truncate, 1, 1) });
        let (bytes, end) = authorised(&registry, &get(path, &bearer));
        assert_eq!(end, End::Closed, "seed {seed}");
        let (head, body) = split_response(&bytes);
        assert_eq!(header_value(&head, "Content-Length").as_deref(), Some("1000"), "seed {seed}: {head}");
        assert!(body.len() < TRIVIAL_BODY, "seed {seed}: {} body bytes", body.len());
    }
    // A HEAD has no body: the cut falls inside the head.
    registry.arm(scenario(Fault::Truncate, 1, 1));
    let head_request = format!("HEAD {path} HTTP/1.1\r\nHost: p\r\n{bearer}\r\n").into_bytes();
    let (bytes, end) = authorised(&registry, &head_request);
    assert_eq!(end, End::Closed);
    assert!(!bytes.windows(4).any(|w| w == b"\r\n\r\n"), "the head is cut: {:?}", String::from_utf8_lossy(&bytes));

    // Redirect: 307 to the same path on localhost:<other>, which records credentials and
    // forwards (here, a follower that keeps the header: the leak is recorded).
    registry.arm(scenario(Fault::Redirect, 1, 1));
    let (bytes, _) = authorised(&registry, &get(&format!("{path}?q=1"), &bearer));
    let (head, _) = split_response(&bytes);
    assert!(head.starts_with("HTTP/1.1 307"), "{head}");
    let location = header_value(&head, "Location").unwrap();
    assert_eq!(location, format!("http://{}{path}?q=1", registry.other_host()));
    assert!(registry.other_host().starts_with("localhost:"));
    let other = registry.other_addr().to_string();
    let (bytes, _) = exchange(&other, &get(&format!("{path}?q=1"), ""), quiet);
    assert!(bytes.starts_with(b"HTTP/1.1 200"), "the other host forwards: {}", String::from_utf8_lossy(&bytes));
    assert!(registry.credential_leaks().is_empty());
    let _ = exchange(&other, &get(path, &bearer), quiet);
    assert_eq!(registry.credential_leaks().len(), 1, "{:?}", registry.recorded());
    let (bytes, _) = exchange(&other, &get("/token?service=test", ""), quiet);
    assert!(bytes.starts_with(b"HTTP/1.1 200"), "the other host hands out tokens without credentials");

    // Package and symbol pushes are told apart by the file name in the multipart body.
    let feed = Proxy::start(&upstream.host, Upstream::Feed, stall);
    for file in ["App.1.0.0.nupkg", "App.1.0.0.symbols.nupkg", "App.1.0.0.nupkg"] {
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"package\"; filename=\"{file}\"\r\n\r\nzip\r\n--b--\r\n"
        );
        let request = format!(
            "PUT /api/v2/package/ HTTP/1.1\r\nHost: f\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (bytes, _) = exchange(feed.host(), request.as_bytes(), quiet);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201"), "{text}");
    }
    let counts = feed.counts();
    assert_eq!((counts.get(&Step::PackagePut), counts.get(&Step::SymbolPut)), (Some(&2), Some(&1)), "{}", feed.log());
    let _ = exchange(feed.host(), &get("/FindPackagesById()?id='App'", ""), quiet);
    assert_eq!(feed.counts().values().sum::<u32>(), 3, "a feed GET is no push step");

    // The same seed, the same decisions; another seed, others.
    let decisions = |seed: u64| {
        let proxy = Proxy::start(&upstream.host, Upstream::Registry { basic: None }, stall);
        proxy.arm(Scenario { seed, fault: Fault::Truncate, step: Step::ManifestGet, times: ALWAYS, first: 1 });
        for _ in 0..5 {
            let _ = exchange(proxy.host(), &get(path, ""), quiet);
        }
        proxy
            .log()
            .lines()
            .filter(|l| l.contains("FAULT"))
            .map(|l| l.split_once(" [").unwrap().1.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(decisions(11), decisions(11));
    assert_ne!(decisions(11), decisions(12));
}
