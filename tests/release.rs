//! `castoff release` end to end on the example project (examples/app: the native builder,
//! three platforms, one NuGet package with a snupkg), run as the real binary in a git
//! copy of the example, against real services:
//!
//! - Debian's docker-registry (CNCF distribution 2.8) for the images, anonymous or behind
//!   htpasswd basic auth; its access log counts every upload and manifest PUT, so
//!   "nothing pushed twice" is checked on the wire;
//! - pynuget (PyPI), the real NuGet v2 feed, for the package; its request log counts the
//!   pushes (a duplicate push would show as a second PUT answered 409);
//! - skopeo to read the indexes back, NuGet.exe 5.8 under mono to install the package;
//! - git for the commit the annotations name and for the release commit and tag.
//!
//! Crashes are injected with `CASTOFF_CRASH_AT` (castoff SIGKILLs itself at that point).
//! No test asserts a time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use testkit::nuget_exe::NugetExe;
use testkit::pynuget::Pynuget;

use crate::support::images::{skopeo_digest, skopeo_inspect_raw};
use crate::support::record::Recorder;
use crate::support::registry::{Registry, Request};
use crate::support::{temp_dir, tree_hash_except, TempRepo};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app");
const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm/v6", "linux/arm/v7"];
const STEPS: [&str; 6] = ["bump", "build", "manifest", "pack", "publish", "git"];
const PACKAGE_ID: &str = "Example.App";
/// The variable castoff.toml names for the pynuget feed's key.
const KEY_ENV: &str = "CASTOFF_IT_RELEASE_FEED_KEY";
const FEED_KEY: &str = "release-tests-feed-key-0123";
/// Fixes the `created` annotation, so separate runs on one commit are comparable.
const SOURCE_DATE_EPOCH: &str = "1700000000";
/// Not copied from examples/app: castoff's private state and what earlier runs built.
const NOT_COPIED: &[&str] = &[".castoff/cache", ".castoff/lock", ".castoff/journal", ".castoff/release.lock", "dist"];
/// A file of random bytes put into every image of the crash matrix, so that a blob upload
/// is read in many pieces and can be cut in the middle.
const PAYLOAD: &str = "assets/payload.bin";
const PAYLOAD_BYTES: usize = 3 << 20;

// ---------------------------------------------------------------------------------------
// The example project
// ---------------------------------------------------------------------------------------

/// The example's VERSION and the version its next patch release gets.
fn example_versions() -> (String, String) {
    let text = fs::read_to_string(format!("{EXAMPLE}/VERSION")).expect("examples/app/VERSION");
    let version = semver::Version::parse(text.trim()).expect("examples/app/VERSION holds a version");
    let next = semver::Version::new(version.major, version.minor, version.patch + 1);
    (version.to_string(), next.to_string())
}

fn next_version() -> String {
    example_versions().1
}

/// A git repository holding a copy of examples/app (with [`PAYLOAD`] when `payload`),
/// committed, then a change to a tracked source (app.py) committed on top, so that
/// `castoff release` (auto) bumps the patch.
fn example_repo(payload: bool) -> TempRepo {
    let repo = TempRepo::new();
    copy_tree(Path::new(EXAMPLE), repo.path(), "");
    if payload {
        repo.write(PAYLOAD, pseudo_random(PAYLOAD_BYTES));
    }
    repo.commit_all();
    let app = repo.read_string("app.py");
    repo.write("app.py", format!("{app}# changed for a release test\n"));
    repo.commit_all();
    repo
}

fn copy_tree(from: &Path, to: &Path, rel: &str) {
    let dir = from.join(rel);
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if NOT_COPIED.contains(&path.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            fs::create_dir_all(to.join(&path)).unwrap();
            copy_tree(from, to, &path);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), to.join(&path)).unwrap();
        } else {
            fs::copy(entry.path(), to.join(&path)).unwrap_or_else(|e| panic!("copy {path}: {e}"));
        }
    }
}

/// `len` bytes that do not compress (xorshift), the same on every run.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Where a copy of the example releases to; what is not set stays as the example has it
/// (OCI layout in dist/oci, the embedded default folder feed, no git step).
#[derive(Default, Clone, Copy)]
struct Setup<'a> {
    /// Push the images to this registry under this repository name.
    registry: Option<(&'a Registry, &'a str)>,
    /// Publish to this pynuget as feed `pynuget` (protocol v2, key from [`KEY_ENV`],
    /// symbols none: a v2 feed has no symbol endpoint).
    pynuget: Option<&'a Pynuget>,
    /// Also publish to a folder feed `folder` in dist/feed.
    folder_feed: bool,
    /// `[release] git = true`.
    git: bool,
    /// Put [`PAYLOAD`] into every image.
    payload: bool,
}

/// Rewrite the copy's castoff.toml for `setup` (left uncommitted, so copies of one
/// template share their commit).
fn configure(repo: &TempRepo, setup: &Setup<'_>) {
    let mut config: toml::Table = repo.read_string("castoff.toml").parse().expect("the example's castoff.toml");
    let image = config.get_mut("image").and_then(|v| v.as_table_mut()).expect("the example has [image]");
    if let Some((registry, name)) = setup.registry {
        image.insert("name".into(), registry.reference(name).into());
        image.remove("output");
    }
    if setup.payload {
        let files = image
            .get_mut("native")
            .and_then(|native| native.get_mut("files"))
            .and_then(|files| files.as_array_mut())
            .expect("the example has [image.native] files");
        let mut file = toml::Table::new();
        file.insert("src".into(), PAYLOAD.into());
        file.insert("dst".into(), "/app/payload.bin".into());
        file.insert("mode".into(), "0644".into());
        files.push(file.into());
    }
    let mut feeds = Vec::new();
    if let Some(feed) = setup.pynuget {
        let mut table = toml::Table::new();
        table.insert("name".into(), "pynuget".into());
        table.insert("url".into(), feed.url().into());
        table.insert("protocol".into(), "v2".into());
        table.insert("api_key_env".into(), KEY_ENV.into());
        table.insert("symbols".into(), "none".into());
        feeds.push(toml::Value::from(table));
    }
    if setup.folder_feed {
        let mut table = toml::Table::new();
        table.insert("name".into(), "folder".into());
        table.insert("url".into(), "dist/feed".into());
        feeds.push(toml::Value::from(table));
    }
    if !feeds.is_empty() {
        config.insert("feed".into(), feeds.into());
    }
    if setup.git {
        let mut release = toml::Table::new();
        release.insert("git".into(), true.into());
        config.insert("release".into(), release.into());
    }
    repo.write("castoff.toml", toml::to_string(&config).expect("castoff.toml serialises"));
}

// ---------------------------------------------------------------------------------------
// Running castoff
// ---------------------------------------------------------------------------------------

/// One finished castoff process.
struct Run {
    args: Vec<String>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "`castoff {}` ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }

    fn assert_ok(&self) -> &Run {
        assert!(self.status.success(), "expected success: {}", self.describe());
        self
    }

    /// Every stdout line as JSON (for `--json` runs).
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("a stdout line is not JSON ({e}): {line}\n{}", self.describe()))
            })
            .collect()
    }

    fn event(&self, name: &str) -> Value {
        let found: Vec<Value> = self.lines().into_iter().filter(|line| line["event"] == name).collect();
        assert_eq!(found.len(), 1, "expected one `{name}` line: {}", self.describe());
        found.into_iter().next().unwrap()
    }

    /// `(step, status)` of every step-finished line, in order.
    fn statuses(&self) -> Vec<(String, String)> {
        self.lines()
            .iter()
            .filter(|line| line["event"] == "step-finished")
            .map(|line| (text(&line["step"]), text(&line["status"])))
            .collect()
    }

    fn status_of(&self, step: &str) -> String {
        let found: Vec<String> = self.statuses().into_iter().filter(|(s, _)| s == step).map(|(_, st)| st).collect();
        assert_eq!(found.len(), 1, "expected one step-finished line for {step}: {}", self.describe());
        found.into_iter().next().unwrap()
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_string()
}

/// `castoff ARGS` in `repo` with `env`, a fixed SOURCE_DATE_EPOCH, no crash point and no
/// registry credentials or docker config of the machine's unless `env` gives them.
fn castoff(repo: &TempRepo, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = repo.castoff(args);
    for name in ["CASTOFF_CRASH_AT", "CASTOFF_REGISTRY_USERNAME", "CASTOFF_REGISTRY_PASSWORD", KEY_ENV] {
        command.env_remove(name);
    }
    let no_docker_config = std::env::temp_dir().join(format!("castoff-it-no-docker-config-{}", std::process::id()));
    command.env("DOCKER_CONFIG", &no_docker_config).env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run castoff");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn journal(repo: &TempRepo, version: &str) -> Value {
    let rel = format!(".castoff/journal/{version}.json");
    serde_json::from_str(&repo.read_string(&rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// `(step, part, status)` of every journal entry, in order.
fn journal_entries(journal: &Value) -> Vec<(String, Option<String>, String)> {
    journal["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {journal}"))
        .iter()
        .map(|e| (text(&e["step"]), e["part"].as_str().map(str::to_string), text(&e["status"])))
        .collect()
}

fn entry(step: &str, part: Option<&str>, status: &str) -> (String, Option<String>, String) {
    (step.to_string(), part.map(str::to_string), status.to_string())
}

// ---------------------------------------------------------------------------------------
// What the services received
// ---------------------------------------------------------------------------------------

/// What repository `repo` of the registry received, counted: every completed blob upload
/// (`blob sha256:…`, a 201 to a PUT or POST under `blobs/uploads/` naming the digest, or a
/// cross-repository mount) and every accepted manifest PUT (`manifest <tag or digest>`).
fn pushes(registry: &Registry, repo: &str) -> BTreeMap<String, usize> {
    let uploads = format!("/v2/{repo}/blobs/uploads/");
    let manifests = format!("/v2/{repo}/manifests/");
    let mut counts = BTreeMap::new();
    for request in registry.requests() {
        let key = if request.path().starts_with(&uploads) && request.status == 201 {
            let query = request.uri.split_once('?').map_or("", |(_, q)| q);
            let digest = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("digest=").or_else(|| pair.strip_prefix("mount=")))
                .unwrap_or_else(|| panic!("a completed upload without a digest: {request:?}"));
            format!("blob {}", digest.replace("%3A", ":").replace("%3a", ":"))
        } else if request.method == "PUT" && request.path().starts_with(&manifests) && request.status < 300 {
            format!("manifest {}", &request.path()[manifests.len()..])
        } else {
            continue;
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Requests that could change repository `repo` (any method but GET and HEAD).
fn writes_to(registry: &Registry, repo: &str) -> Vec<Request> {
    let prefix = format!("/v2/{repo}/");
    registry
        .requests()
        .into_iter()
        .filter(|r| r.path().starts_with(&prefix) && r.method != "GET" && r.method != "HEAD")
        .collect()
}

/// The digest the registry serves for `repo:tag`.
fn tag_digest(registry: &Registry, repo: &str, tag: &str) -> String {
    let response = registry.get(&format!("/v2/{repo}/manifests/{tag}"));
    assert_eq!(response.status, 200, "{repo}:{tag} is not in the registry: {}", response.text());
    response.digest.expect("the registry sends Docker-Content-Digest")
}

/// `os/arch[/variant]` of every entry of an index.
fn index_platforms(index: &Value) -> BTreeSet<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| {
            let p = &m["platform"];
            [&p["os"], &p["architecture"], &p["variant"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

fn platform_set() -> BTreeSet<String> {
    PLATFORMS.iter().map(|p| p.to_string()).collect()
}

/// The pushes pynuget answered, as `(status)` in order.
fn feed_puts(feed: &Pynuget) -> Vec<u16> {
    feed.requests().iter().filter(|r| r.method == "PUT").map(|r| r.status).collect()
}

// ---------------------------------------------------------------------------------------
// 1. A full release
// ---------------------------------------------------------------------------------------

/// The whole release of the example, uninterrupted, to the real registry and the real
/// pynuget, with the git step on: the indexes under `latest` and the version each list
/// the three platforms (read back with skopeo; every child's config matches its entry),
/// NuGet.exe installs the package from pynuget, the journal is complete with exactly one
/// done entry per step (publish: one per feed), and the release commit carries the
/// annotated tag. Real programs: docker-registry, skopeo, pynuget, NuGet.exe (mono), git.
#[test]
fn full_release_of_the_example_to_the_registry_and_pynuget() {
    let registry = Registry::start();
    let feed = Pynuget::start(FEED_KEY);
    let repo = example_repo(false);
    let (previous, version) = example_versions();
    configure(
        &repo,
        &Setup { registry: Some((&registry, "team/app")), pynuget: Some(&feed), git: true, ..Setup::default() },
    );

    let run = castoff(&repo, &["--json", "release"], &[(KEY_ENV, FEED_KEY)]);
    run.assert_ok();
    let lines = run.lines();
    // Without --dry-run: one line per finished step, then the result.
    let events: Vec<&Value> = lines.iter().map(|l| &l["event"]).collect();
    let (last, steps) = events.split_last().unwrap_or_else(|| panic!("no output: {}", run.describe()));
    assert_eq!(**last, "result", "{}", run.describe());
    assert!(steps.iter().all(|e| **e == "step-finished"), "{}", run.describe());
    let expected: Vec<(String, String)> = STEPS.iter().map(|s| (s.to_string(), "done".to_string())).collect();
    assert_eq!(run.statuses(), expected, "{}", run.describe());
    let result = run.event("result");
    assert_eq!(result["version"], version.as_str(), "{result}");
    assert_eq!(result["previous"], previous.as_str(), "{result}");
    assert_eq!(result["journal"], format!(".castoff/journal/{version}.json"), "{result}");

    // The indexes, read back with skopeo.
    let digest = skopeo_digest(&registry.reference(&format!("team/app:{version}")));
    for tag in ["latest", version.as_str()] {
        let reference = registry.reference(&format!("team/app:{tag}"));
        let index = skopeo_inspect_raw(&reference);
        assert_eq!(index_platforms(&index), platform_set(), "{reference}: {index}");
        assert_eq!(skopeo_digest(&reference), digest, "latest and {version} are the same index");
        for child in index["manifests"].as_array().unwrap() {
            let config = registry.image_config("team/app", child["digest"].as_str().unwrap());
            assert_eq!(config["architecture"], child["platform"]["architecture"], "{config}");
            assert_eq!(config["os"], child["platform"]["os"], "{config}");
        }
        let reported: Vec<&Value> =
            result["tags"].as_array().unwrap().iter().filter(|t| t["reference"] == reference).collect();
        assert_eq!(reported.len(), 1, "the result names {reference} once: {result}");
        assert_eq!(reported[0]["digest"], digest.as_str(), "{result}");
    }
    assert_eq!(
        registry.manifest("team/app", &version)["annotations"]["org.opencontainers.image.version"],
        version.as_str()
    );

    // The package, installed by NuGet.exe from pynuget.
    assert_eq!(feed_puts(&feed), [201], "one push to pynuget:\n{}", feed.log());
    let nupkg = format!("dist/nuget/{PACKAGE_ID}.{version}.nupkg");
    assert_eq!(feed.package_files().len(), 1, "{:?}", feed.package_files());
    assert_eq!(fs::read(&feed.package_files()[0]).unwrap(), repo.read(&nupkg), "pynuget holds the packed nupkg");
    let work = temp_dir();
    let installed = NugetExe::get()
        .install(PACKAGE_ID, &version, &feed.url(), work.path())
        .unwrap_or_else(|e| panic!("NuGet.exe could not install the released package from pynuget: {e}"));
    assert!(installed.join(format!("lib/netstandard2.0/{PACKAGE_ID}.dll")).is_file(), "{}", installed.display());

    // The journal.
    let journal = journal(&repo, &version);
    assert_eq!(journal["complete"], true, "{journal}");
    assert_eq!(journal["version"], version.as_str(), "{journal}");
    assert_eq!(journal["previous"], previous.as_str(), "{journal}");
    assert_eq!(
        journal_entries(&journal),
        [
            entry("bump", None, "done"),
            entry("build", None, "done"),
            entry("manifest", None, "done"),
            entry("pack", None, "done"),
            entry("publish", Some("pynuget"), "done"),
            entry("git", None, "done"),
        ],
        "{journal}"
    );

    // VERSION, the baseline and the release commit with its annotated tag.
    assert_eq!(repo.version(), version);
    assert_eq!(repo.baseline().version, version);
    let tag = format!("v{version}");
    assert_eq!(repo.git(&["cat-file", "-t", &tag]).trim(), "tag", "{tag} is an annotated tag");
    assert_eq!(repo.git(&["rev-parse", &format!("{tag}^{{commit}}")]), repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(repo.git(&["show", &format!("{tag}:VERSION")]).trim(), version);
    let dirty = repo.git(&["status", "--porcelain", "--", "VERSION", ".castoff/sources.lock"]);
    assert_eq!(dirty, "", "VERSION and the baseline are committed");
}

// ---------------------------------------------------------------------------------------
// 2. The crash matrix
// ---------------------------------------------------------------------------------------

/// A copy of the crash template releasing to its own registry repository and its own
/// pynuget (the package id and version are the same in every copy, so a shared feed
/// would answer 409 to all but the first).
struct Copy {
    repo: TempRepo,
    feed: Pynuget,
    image: String,
}

impl Copy {
    fn new(template: &TempRepo, registry: &Registry, image: &str) -> Copy {
        let repo = template.clone_repo();
        let feed = Pynuget::start(FEED_KEY);
        let setup = Setup {
            registry: Some((registry, image)),
            pynuget: Some(&feed),
            folder_feed: true,
            git: false,
            payload: true,
        };
        configure(&repo, &setup);
        Copy { repo, feed, image: image.to_string() }
    }

    fn release(&self, crash_at: Option<&str>) -> Run {
        let mut env = vec![(KEY_ENV, FEED_KEY)];
        env.extend(crash_at.map(|point| ("CASTOFF_CRASH_AT", point)));
        castoff(&self.repo, &["--json", "release"], &env)
    }
}

/// What an uninterrupted release left behind, to compare the crashed ones with.
struct EndState {
    latest: String,
    versioned: String,
    pushes: BTreeMap<String, usize>,
    nupkg: Vec<u8>,
}

/// The steps a re-run must find done after a crash at `point` (and so report
/// already-done, without doing them again).
fn done_before(point: &str) -> &'static [&'static str] {
    match point {
        "after:journal" => &[],
        "after:bump" => &["bump"],
        "after:build" => &["bump", "build"],
        "after:manifest" => &["bump", "build", "manifest"],
        "after:pack" => &["bump", "build", "manifest", "pack"],
        // One feed may or may not have finished: publish is checked per feed below.
        "after:publish:pynuget" => &["bump", "build", "manifest", "pack"],
        "after:publish" => &["bump", "build", "manifest", "pack", "publish"],
        _ if point.starts_with("upload:blob:") => &["bump"],
        _ if point.starts_with("upload:nuget:") => &["bump", "build", "manifest", "pack"],
        _ => panic!("no expectation for crash point {point}"),
    }
}

fn crash_and_resume(registry: &Registry, template: &TempRepo, point: &str, reference: &EndState) {
    let version = next_version();
    let copy = Copy::new(template, registry, &format!("crash/{}", point.replace(':', "-")));
    let image = copy.image.as_str();

    let first = copy.release(Some(point));
    assert_eq!(
        first.status.signal(),
        Some(9),
        "[{point}] the first run was not killed by CASTOFF_CRASH_AT: {}",
        first.describe()
    );
    assert!(first.stderr.contains("CASTOFF_CRASH_AT"), "[{point}] {}", first.describe());

    let second = copy.release(None);
    assert!(second.status.success(), "[{point}] the re-run failed: {}", second.describe());

    // Bumped exactly once, the release finished and continued, not restarted.
    assert_eq!(copy.repo.version(), version, "[{point}] VERSION after the re-run");
    assert_eq!(copy.repo.baseline().version, version, "[{point}] the baseline's version");
    let result = second.event("result");
    assert_eq!(result["version"], version.as_str(), "[{point}] {result}");
    assert_eq!(result["resumed"], true, "[{point}] the re-run continued the release: {result}");
    let journal = journal(&copy.repo, &version);
    assert_eq!(journal["complete"], true, "[{point}] {journal}");
    let others = copy.repo.join(".castoff/journal");
    let journals: Vec<String> =
        fs::read_dir(others).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(journals, [format!("{version}.json")], "[{point}] one release, one journal");

    // Steps done before the crash were checked, not redone; the rest ran.
    let done = done_before(point);
    for (step, status) in second.statuses() {
        let expected = match step.as_str() {
            "git" => "skipped",
            "publish" if point == "after:publish:pynuget" => continue,
            _ if done.contains(&step.as_str()) => "already-done",
            _ => "done",
        };
        assert_eq!(status, expected, "[{point}] step {step} in the re-run: {}", second.describe());
    }

    // The same end state as an uninterrupted release.
    assert_eq!(tag_digest(registry, image, "latest"), reference.latest, "[{point}] the `latest` index");
    assert_eq!(tag_digest(registry, image, &version), reference.versioned, "[{point}] the {version} index");
    assert_eq!(
        pushes(registry, image),
        reference.pushes,
        "[{point}] the uploads and manifest PUTs of the crashed run and the re-run together \
         (left) must be those of one uninterrupted release (right): nothing pushed twice"
    );
    let puts = feed_puts(&copy.feed);
    assert_eq!(puts.iter().filter(|s| **s == 201).count(), 1, "[{point}] pynuget stored the package once: {puts:?}");
    assert!(!puts.contains(&409), "[{point}] the package was pushed again after it was stored (409): {puts:?}");
    let stored = copy.feed.package_files();
    assert_eq!(stored.len(), 1, "[{point}] {stored:?}");
    assert_eq!(fs::read(&stored[0]).unwrap(), reference.nupkg, "[{point}] pynuget holds the reference's nupkg");
    let folder = format!("dist/feed/{0}/{version}/{0}.{version}.nupkg", PACKAGE_ID.to_lowercase());
    assert_eq!(copy.repo.read(&folder), reference.nupkg, "[{point}] the folder feed holds the reference's nupkg");
}

/// The crash matrix: a release killed (SIGKILL) after writing its journal, after each
/// step, after one feed of publish, and in the middle of an image layer upload and of a
/// NuGet push, then run again without the crash, ends exactly as an uninterrupted
/// release of the same commit does: VERSION bumped once, the same index digests under
/// `latest` and the version, the same uploads and manifest PUTs in the registry's access
/// log (each once), the package stored once by pynuget (no second PUT answered 409), and
/// the steps done before the crash reported already-done. Every case is a clone of one
/// committed template (same commit, SOURCE_DATE_EPOCH fixed) with its own registry
/// repository and its own pynuget; one registry serves them all. Real programs:
/// docker-registry, pynuget, git.
#[test]
fn a_killed_release_finishes_on_a_re_run_as_an_uninterrupted_one_would() {
    let registry = Registry::start();
    let template = example_repo(true);
    let version = next_version();

    let reference = Copy::new(&template, &registry, "crash/reference");
    let run = reference.release(None);
    run.assert_ok();
    let nupkg = reference.repo.read(&format!("dist/nuget/{PACKAGE_ID}.{version}.nupkg"));
    let end = EndState {
        latest: tag_digest(&registry, "crash/reference", "latest"),
        versioned: tag_digest(&registry, "crash/reference", &version),
        pushes: pushes(&registry, "crash/reference"),
        nupkg: nupkg.clone(),
    };
    assert_eq!(end.latest, end.versioned);
    assert!(end.pushes.values().all(|n| *n == 1), "an uninterrupted release pushed something twice: {:?}", end.pushes);
    for tag in ["latest", version.as_str()] {
        assert_eq!(end.pushes.get(&format!("manifest {tag}")), Some(&1), "{:?}", end.pushes);
    }
    assert_eq!(feed_puts(&reference.feed), [201]);
    drop(reference);

    let points = vec![
        "after:journal".to_string(),
        "after:bump".to_string(),
        "after:build".to_string(),
        "after:manifest".to_string(),
        "after:pack".to_string(),
        "after:publish:pynuget".to_string(),
        "after:publish".to_string(),
        format!("upload:blob:{}", PAYLOAD_BYTES / 2),
        format!("upload:nuget:{}", nupkg.len() / 2),
    ];
    let failures = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while let Some(point) = points.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let case = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        crash_and_resume(&registry, &template, point, &end)
                    }));
                    if let Err(panic) = case {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic without a message".into());
                        failures.lock().unwrap().push(format!("CASTOFF_CRASH_AT={point}:\n{message}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} crash cases failed:\n\n{}",
        failures.len(),
        points.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------
// 3. Dry run
// ---------------------------------------------------------------------------------------

/// `castoff release --dry-run` (human and `--json`) prints the plan with the registry's
/// and the feed's URLs and changes nothing: not one file of the repository (castoff's
/// private state included: no cache, lock or journal), nothing in the registry (catalog
/// unchanged, no write request) and nothing on the feed (no PUT, no package). Real
/// programs: docker-registry, pynuget, git.
#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let registry = Registry::start();
    let feed = Pynuget::start(FEED_KEY);
    let repo = example_repo(false);
    configure(&repo, &Setup { registry: Some((&registry, "team/app")), pynuget: Some(&feed), ..Setup::default() });
    let (previous, version) = example_versions();
    let before = tree_hash_except(repo.path(), &[".git"]);
    let catalog = registry.get("/v2/_catalog").json();

    let human = castoff(&repo, &["release", "--dry-run"], &[(KEY_ENV, FEED_KEY)]);
    human.assert_ok();
    assert!(human.stdout.contains(&format!("{previous} → {version}")), "{}", human.describe());
    assert!(human.stdout.contains(&registry.reference("team/app")), "the registry is named: {}", human.describe());
    let feed_host = feed.url().trim_end_matches('/').to_string();
    assert!(human.stdout.contains(&feed_host), "the feed URL is named: {}", human.describe());
    for step in STEPS {
        assert!(human.stdout.contains(step), "step {step} is listed: {}", human.describe());
    }

    let json = castoff(&repo, &["--json", "release", "--dry-run"], &[(KEY_ENV, FEED_KEY)]);
    json.assert_ok();
    let plan = json.event("plan");
    assert_eq!(plan["version"], version.as_str(), "{plan}");
    let statuses = json.statuses();
    let expected: Vec<(String, String)> =
        STEPS.iter().map(|s| (s.to_string(), if *s == "git" { "skipped" } else { "would-run" }.to_string())).collect();
    assert_eq!(statuses, expected, "{}", json.describe());
    assert_eq!(json.event("result")["dry_run"], true);

    assert_eq!(tree_hash_except(repo.path(), &[".git"]), before, "a dry run wrote to the repository");
    assert_eq!(repo.version(), previous.as_str());
    assert_eq!(registry.get("/v2/_catalog").json(), catalog, "a dry run changed the registry's catalog");
    let writes = writes_to(&registry, "team/app");
    assert!(writes.is_empty(), "a dry run sent write requests to the registry: {writes:?}");
    assert!(feed_puts(&feed).is_empty(), "a dry run pushed to the feed: {:?}", feed_puts(&feed));
    assert!(feed.package_files().is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. Secrets
// ---------------------------------------------------------------------------------------

/// A secret for this test run only: recognisable, and found nowhere by chance.
fn unique_secret(label: &str) -> String {
    let mut bytes = [0u8; 12];
    fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).unwrap();
    format!("{label}-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Every place a secret must not be: (where, text or bytes).
fn find_secret(places: &[(String, Vec<u8>)], secret: &str) -> Vec<String> {
    places
        .iter()
        .filter(|(_, bytes)| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
        .map(|(place, _)| place.clone())
        .collect()
}

/// The registry needs basic auth (the testkit's docker-registry with htpasswd); castoff
/// gets the password from a docker config.json `auths` entry, and the feed key from the
/// variable castoff.toml names. A release with `-v` (plain output), then a re-run with
/// `-v --json` (which checks every step against the registry and the feed, with auth),
/// both with the git step on and a recording `git` first on PATH: neither the password,
/// nor its base64 `user:password` form, nor the feed key appears in stdout, stderr, the
/// journal, any file under the repository (castoff's private state and .git included),
/// or the argv of any git castoff started. Real programs: docker-registry (htpasswd),
/// pynuget, git.
#[test]
fn secrets_appear_in_no_output_file_or_argv() {
    let password = unique_secret("registry-password");
    let feed_key = unique_secret("feed-key");
    let user = "castoff-release";
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let registry = Registry::start_with_basic_auth(user, &password);
    let feed = Pynuget::start(&feed_key);
    let docker_config = temp_dir();
    let auths = serde_json::json!({ "auths": { registry.host(): { "auth": basic } } });
    fs::write(docker_config.path().join("config.json"), auths.to_string()).unwrap();
    let recorder = Recorder::new(&["git"]);
    let repo = example_repo(false);
    configure(
        &repo,
        &Setup { registry: Some((&registry, "team/app")), pynuget: Some(&feed), git: true, ..Setup::default() },
    );
    let version = next_version();

    let path = recorder.path_env().into_string().unwrap();
    let config_dir = docker_config.path().display().to_string();
    let env = [(KEY_ENV, feed_key.as_str()), ("PATH", path.as_str()), ("DOCKER_CONFIG", config_dir.as_str())];
    let verbose = castoff(&repo, &["-v", "release"], &env);
    verbose.assert_ok();
    let json = castoff(&repo, &["-v", "--json", "release"], &env);
    json.assert_ok();
    for step in ["bump", "build", "manifest", "pack", "publish", "git"] {
        assert_eq!(json.status_of(step), "already-done", "the re-run checked {step}: {}", json.describe());
    }

    // The release really went through the auth (and needed it).
    assert!(registry.requests().iter().any(|r| r.status == 401), "the registry never asked for credentials");
    assert_eq!(index_platforms(&registry.manifest("team/app", &version)), platform_set());
    assert_eq!(feed.package_files().len(), 1);
    let calls = recorder.calls();
    assert!(calls.iter().any(|c| c.get(1..).is_some_and(|a| a.iter().any(|x| x == "tag"))), "git tag ran: {calls:?}");

    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for run in [&verbose, &json] {
        places.push((format!("stdout of `castoff {}`", run.args.join(" ")), run.stdout.clone().into_bytes()));
        places.push((format!("stderr of `castoff {}`", run.args.join(" ")), run.stderr.clone().into_bytes()));
    }
    for file in walkdir::WalkDir::new(repo.path()).into_iter().map(|e| e.unwrap()).filter(|e| e.file_type().is_file()) {
        let shown = file.path().strip_prefix(repo.path()).unwrap().display().to_string();
        places.push((format!("file {shown}"), fs::read(file.path()).unwrap()));
    }
    assert!(
        places.iter().any(|(p, _)| p == &format!("file .castoff/journal/{version}.json")),
        "the journal was searched"
    );
    for call in &calls {
        places.push((format!("argv {call:?}"), call.join("\0").into_bytes()));
    }
    for (name, secret) in [("registry password", &password), ("base64 user:password", &basic), ("feed key", &feed_key)]
    {
        let leaks = find_secret(&places, secret);
        assert!(leaks.is_empty(), "the {name} leaked into: {leaks:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Resume specifics
// ---------------------------------------------------------------------------------------

/// A release killed right after the build step, on the example as shipped (OCI layout in
/// dist/oci, the default folder feed; no services), continues on a re-run: the plan says
/// it continues, bump and build are checked and reported already-done (VERSION bumped
/// once), the remaining steps run, and the journal holds the first run's entries followed
/// by the re-run's. Real programs: git.
#[test]
fn a_release_killed_after_the_build_continues_with_the_manifest() {
    let repo = example_repo(false);
    let (previous, version) = example_versions();
    let first = castoff(&repo, &["--json", "release"], &[("CASTOFF_CRASH_AT", "after:build")]);
    assert_eq!(first.status.signal(), Some(9), "the first run was not killed: {}", first.describe());
    assert_eq!(repo.version(), version, "the bump happened before the build");
    let interrupted = journal(&repo, &version);
    assert_eq!(interrupted["complete"], false, "{interrupted}");
    assert_eq!(journal_entries(&interrupted), [entry("bump", None, "done"), entry("build", None, "done")]);

    let plan = castoff(&repo, &["--json", "plan"], &[]);
    plan.assert_ok();
    let plan = plan.event("plan");
    assert_eq!(plan["version"], version.as_str(), "{plan}");
    assert!(plan["resume"].as_str().is_some_and(|r| r.contains("continuing")), "the plan says it continues: {plan}");

    let second = castoff(&repo, &["--json", "release"], &[]);
    second.assert_ok();
    let expected: Vec<(String, String)> = [
        ("bump", "already-done"),
        ("build", "already-done"),
        ("manifest", "done"),
        ("pack", "done"),
        ("publish", "done"),
        ("git", "skipped"),
    ]
    .iter()
    .map(|(s, st)| (s.to_string(), st.to_string()))
    .collect();
    assert_eq!(second.statuses(), expected, "{}", second.describe());
    let result = second.event("result");
    assert_eq!(result["resumed"], true, "{result}");
    assert_eq!(result["version"], version.as_str(), "{result}");
    assert_eq!(result["previous"], previous.as_str(), "the journal keeps the version the release started from");
    assert_eq!(repo.version(), version, "VERSION bumped once");
    assert_eq!(repo.baseline().version, version);

    let journal = journal(&repo, &version);
    assert_eq!(journal["complete"], true, "{journal}");
    let entries = journal_entries(&journal);
    assert_eq!(
        entries.iter().map(|(step, _, status)| (step.as_str(), status.as_str())).collect::<Vec<_>>(),
        [
            ("bump", "done"),
            ("build", "done"),
            ("bump", "already-done"),
            ("build", "already-done"),
            ("manifest", "done"),
            ("pack", "done"),
            ("publish", "done"),
        ],
        "{journal}"
    );
    assert!(entries[6].1.is_some(), "publish is journalled per feed: {journal}");
    let index: Value = serde_json::from_str(&repo.read_string("dist/oci/index.json")).unwrap();
    let tags: BTreeSet<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert!(tags.contains("latest") && tags.contains(version.as_str()), "the layout has both tags: {tags:?}");
}

// ---------------------------------------------------------------------------------------
// 6. One release at a time
// ---------------------------------------------------------------------------------------

/// While another process holds `.castoff/release.lock` (an advisory flock, with the
/// holder's line castoff itself writes), `castoff release` fails at once with exit 1,
/// naming the holder, and changes nothing (not even an outdated `.castoff/.gitignore`). (The guard timeout below is shorter than the
/// 120 s a bump would wait for its own lock: it catches a release that waits instead of
/// failing, it does not measure anything.) Real programs: git.
#[test]
fn a_second_release_fails_at_once_naming_the_holder() {
    let repo = example_repo(false);
    // As an earlier castoff wrote it (before journals and the release lock): a refused
    // release must not bring it up to date either.
    repo.write(".castoff/.gitignore", "cache/\nlock\n");
    repo.commit_all();
    let (previous, _) = example_versions();
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut lock = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(repo.join(".castoff/release.lock"))
        .unwrap();
    lock.try_lock().expect("take the release lock");
    writeln!(lock, "pid 4242 · castoff release 9.9.9 · started {started}").unwrap();
    let before = repo.tree_hash();

    let output = repo
        .castoff(["release"])
        .env_remove("CASTOFF_CRASH_AT")
        .timeout(Duration::from_secs(100))
        .output()
        .expect("run castoff");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "expected exit 1:\n{stderr}");
    assert!(stderr.contains("pid 4242") && stderr.contains("castoff release 9.9.9"), "the holder is named:\n{stderr}");
    assert!(stderr.contains(".castoff/release.lock"), "the lock file is named:\n{stderr}");
    assert_eq!(repo.tree_hash(), before, "a refused release changed files");
    assert_eq!(repo.version(), previous);
    assert!(!repo.exists(".castoff/journal"), "a refused release wrote a journal");
    drop(lock);
}

// ---------------------------------------------------------------------------------------
// 7. castoff plan
// ---------------------------------------------------------------------------------------

/// `castoff plan` and `castoff plan --json` on the example as shipped (no services):
/// the six steps in order, git skipped because `[release] git` is not set, the version
/// the release would make; the JSON is one line that parses; nothing is written.
/// Real programs: git.
#[test]
fn plan_lists_the_six_steps_and_changes_nothing() {
    let repo = example_repo(false);
    let (previous, version) = example_versions();
    let before = tree_hash_except(repo.path(), &[".git"]);

    let human = castoff(&repo, &["plan"], &[]);
    human.assert_ok();
    assert!(human.stdout.contains(&format!("release {previous} → {version}")), "{}", human.describe());
    for (number, step) in STEPS.iter().enumerate() {
        let line = human.stdout.lines().find(|l| l.starts_with(&format!("{}. {step} ", number + 1)));
        let line = line.unwrap_or_else(|| panic!("no line for step {} {step}: {}", number + 1, human.describe()));
        assert_eq!(line.contains("[skip: "), *step == "git", "{line}");
    }
    assert!(human.stdout.contains("[skip: [release] git is not set]"), "{}", human.describe());

    let json = castoff(&repo, &["--json", "plan"], &[]);
    json.assert_ok();
    let lines = json.lines();
    assert_eq!(lines.len(), 1, "one JSON line: {}", json.describe());
    let plan = &lines[0];
    assert_eq!(plan["event"], "plan", "{plan}");
    assert_eq!(plan["version"], version.as_str(), "{plan}");
    assert_eq!(plan["previous"], previous.as_str(), "{plan}");
    let steps: Vec<(String, String)> =
        plan["steps"].as_array().unwrap().iter().map(|s| (text(&s["step"]), text(&s["action"]))).collect();
    let expected: Vec<(String, String)> =
        STEPS.iter().map(|s| (s.to_string(), if *s == "git" { "skip" } else { "run" }.to_string())).collect();
    assert_eq!(steps, expected, "{plan}");
    assert_eq!(plan["steps"][5]["reason"], "[release] git is not set", "{plan}");

    assert_eq!(tree_hash_except(repo.path(), &[".git"]), before, "planning wrote to the repository");
}

// ---------------------------------------------------------------------------------------
// 8. --only publish after a release
// ---------------------------------------------------------------------------------------

/// After a full release, `castoff release --only publish` reports publish already-done
/// (checked against the feed), skips every other step, and sends nothing that writes:
/// no PUT to pynuget, no write request to the registry. Real programs: docker-registry,
/// pynuget, git.
#[test]
fn only_publish_after_a_release_pushes_nothing() {
    let registry = Registry::start();
    let feed = Pynuget::start(FEED_KEY);
    let repo = example_repo(false);
    configure(&repo, &Setup { registry: Some((&registry, "team/app")), pynuget: Some(&feed), ..Setup::default() });
    let version = next_version();
    castoff(&repo, &["--json", "release"], &[(KEY_ENV, FEED_KEY)]).assert_ok();
    let registry_writes = writes_to(&registry, "team/app").len();
    assert_eq!(feed_puts(&feed), [201]);

    let again = castoff(&repo, &["--json", "release", "--only", "publish"], &[(KEY_ENV, FEED_KEY)]);
    again.assert_ok();
    let expected: Vec<(String, String)> = STEPS
        .iter()
        .map(|s| (s.to_string(), if *s == "publish" { "already-done" } else { "skipped" }.to_string()))
        .collect();
    assert_eq!(again.statuses(), expected, "{}", again.describe());
    assert_eq!(again.event("result")["version"], version.as_str());
    assert_eq!(feed_puts(&feed), [201], "--only publish pushed to the feed again");
    assert_eq!(writes_to(&registry, "team/app").len(), registry_writes, "--only publish wrote to the registry");
    assert_eq!(repo.version(), version);
}
