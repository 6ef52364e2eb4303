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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::nuget_exe::NugetExe;
use testkit::pynuget::Pynuget;

use crate::support::example::{
    castoff, configure, example_repo, example_versions, feed_puts, journal, next_version, text, Run, Setup, FEED_KEY,
    GIT_IDENTITY, KEY_ENV, PACKAGE_ID, PLATFORMS, STEPS,
};
use crate::support::images::{skopeo_digest, skopeo_inspect_raw};
use crate::support::registry::{Registry, Request};
use crate::support::{temp_dir, tree_hash_except, TempRepo};

// ---------------------------------------------------------------------------------------
// Journals
// ---------------------------------------------------------------------------------------

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

/// `os/arch[/variant]` of every entry of an index, as a set.
fn index_platforms(index: &Value) -> BTreeSet<String> {
    testkit::images::index_platforms(index).into_iter().collect()
}

fn platform_set() -> BTreeSet<String> {
    PLATFORMS.iter().map(|p| p.to_string()).collect()
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

/// The seed of the crash matrix's byte offsets, unless `CASTOFF_IT_CRASH_SEED` names
/// another (decimal or `0x` hex). It is printed with the offsets it gives, so any run can
/// be repeated exactly.
const CRASH_SEED: u64 = 0xc4a5_0ff5_eed0_2024;
const CRASH_SEED_ENV: &str = "CASTOFF_IT_CRASH_SEED";
/// Offsets drawn inside each kind of upload body.
const OFFSETS_PER_UPLOAD: u64 = 10;
/// Crash cases run at once (each is two releases with two pynugets of its own).
const PARALLEL_CASES: usize = 3;
/// Every step boundary castoff can be killed at with the release configured as the
/// crash copies are (three feeds, the git step on): after the journal is first written,
/// after each step, and after each feed of publish.
const BOUNDARIES: [&str; 10] = [
    "after:journal",
    "after:bump",
    "after:build",
    "after:manifest",
    "after:pack",
    "after:publish:pynuget",
    "after:publish:pynuget2",
    "after:publish:folder",
    "after:publish",
    "after:git",
];
/// The boundaries also run with the images going into the OCI layout (dist/oci) instead
/// of the registry: those around the steps that write the layout, and the last.
const LAYOUT_BOUNDARIES: [&str; 4] = ["after:bump", "after:build", "after:manifest", "after:git"];
/// The steps in order, as a static so that the prefixes in [`done_before`] are too.
static STEP_ORDER: [&str; 6] = STEPS;

/// splitmix64 (Steele, Lea, Flood): the same seed gives the same numbers everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (the modulo bias is nothing at these sizes).
    fn within(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

/// `count` byte offsets in `1..end`, one drawn in each of `count` equal slices, so that
/// they spread from the start of the body to its end and never repeat.
fn draw_offsets(rng: &mut SplitMix64, end: u64, count: u64) -> Vec<u64> {
    let width = (end - 1) / count;
    assert!(width > 0, "a body of {end} bytes is too small for {count} offsets");
    (0..count).map(|i| rng.within(1 + i * width, 1 + (i + 1) * width)).collect()
}

fn crash_seed() -> u64 {
    let Ok(text) = std::env::var(CRASH_SEED_ENV) else { return CRASH_SEED };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|e| e.to_string()),
        None => text.parse().map_err(|e: std::num::ParseIntError| e.to_string()),
    };
    parsed.unwrap_or_else(|e| panic!("{CRASH_SEED_ENV}={text}: {e}"))
}

/// Where a crash copy's images go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Its own repository in the shared registry.
    Registry,
    /// The example's OCI layout, dist/oci.
    Layout,
}

/// One case of the matrix: where castoff is killed, and where the images go.
struct Point {
    at: String,
    target: Target,
}

impl Point {
    fn new(at: impl Into<String>, target: Target) -> Point {
        Point { at: at.into(), target }
    }

    fn name(&self) -> String {
        match self.target {
            Target::Registry => self.at.clone(),
            Target::Layout => format!("{} (OCI layout)", self.at),
        }
    }

    /// The case's own repository in the registry.
    fn image(&self) -> String {
        format!("crash/{}", self.at.replace(':', "-"))
    }
}

/// A copy of the crash template releasing to its own registry repository (or its own
/// OCI layout) and two pynugets of its own (the package id and version are the same in
/// every copy, so a shared feed would answer 409 to all but the first), plus the folder
/// feed dist/feed, with the git step on.
struct Copy {
    repo: TempRepo,
    feeds: [Pynuget; 2],
    /// The registry repository, for [`Target::Registry`].
    image: Option<String>,
}

impl Copy {
    fn new(template: &TempRepo, registry: &Registry, target: Target, image: &str) -> Copy {
        let repo = template.clone_repo();
        let feeds = [Pynuget::start(FEED_KEY), Pynuget::start(FEED_KEY)];
        let image = (target == Target::Registry).then(|| image.to_string());
        let setup = Setup {
            registry: image.as_deref().map(|name| (registry, name)),
            pynuget: Some(&feeds[0]),
            pynuget2: Some(&feeds[1]),
            folder_feed: true,
            git: true,
            payload: true,
        };
        configure(&repo, &setup);
        Copy { repo, feeds, image }
    }

    fn release(&self, crash_at: Option<&str>) -> Run {
        let mut env = vec![(KEY_ENV, FEED_KEY)];
        env.extend(GIT_IDENTITY);
        env.extend(crash_at.map(|point| ("CASTOFF_CRASH_AT", point)));
        castoff(&self.repo, &["--json", "release"], &env)
    }

    /// What the release left in the registry (or the layout) and on the feeds.
    fn end_state(&self, registry: &Registry, version: &str) -> EndState {
        let (tags, pushes, blobs) = match &self.image {
            Some(image) => {
                let tags =
                    ["latest", version].iter().map(|tag| (tag.to_string(), served(registry, image, tag))).collect();
                (tags, pushes(registry, image), BTreeSet::new())
            }
            None => {
                let (tags, blobs) = layout_contents(&self.repo.join(LAYOUT));
                (tags, BTreeMap::new(), blobs)
            }
        };
        let mut packages = BTreeMap::new();
        for (name, feed) in ["pynuget", "pynuget2"].iter().zip(&self.feeds) {
            for file in feed.package_files() {
                let shown = format!("{name}: {}", file.file_name().unwrap().to_string_lossy());
                packages.insert(shown, fs::read(&file).unwrap());
            }
        }
        let folder = self.repo.join(FOLDER_FEED);
        for file in
            walkdir::WalkDir::new(&folder).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file())
        {
            if !file.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let shown = format!("folder: {}", file.path().strip_prefix(&folder).unwrap().display());
                packages.insert(shown, fs::read(file.path()).unwrap());
            }
        }
        EndState { tags, pushes, blobs, feed_puts: self.feeds.iter().map(feed_puts).collect(), packages }
    }
}

/// The OCI layout the example builds into, and the folder feed of the crash copies.
const LAYOUT: &str = "dist/oci";
const FOLDER_FEED: &str = "dist/feed";
/// castoff's temp-file prefix: `fsutil::write_atomic` (VERSION, the baseline, the
/// journal, the cache), the OCI layout's blobs and index.json, the layer cache, `pack`
/// and the folder feed all write `.castoff-tmp-*` beside the file and rename it.
const TEMP_PREFIX: &str = ".castoff-tmp-";

/// The digest the registry serves for `repo:tag`, or why it serves none.
fn served(registry: &Registry, repo: &str, tag: &str) -> String {
    let response = registry.get(&format!("/v2/{repo}/manifests/{tag}"));
    match (response.status, response.digest) {
        (200, Some(digest)) => digest,
        (status, _) => format!("not served (HTTP {status})"),
    }
}

/// Every entry of the layout's index.json as `(ref.name, digest)`, sorted (duplicates
/// kept), and every blob under blobs/ (`alg:hex`, temp files left out).
fn layout_contents(layout: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
    let mut tags = Vec::new();
    if let Ok(bytes) = fs::read(layout.join("index.json")) {
        let index: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let name = entry["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or("(no ref.name)");
            tags.push((name.to_string(), entry["digest"].as_str().unwrap_or("(no digest)").to_string()));
        }
    }
    tags.sort();
    (tags, layout_blobs(layout))
}

fn layout_blobs(layout: &Path) -> BTreeSet<String> {
    let mut blobs = BTreeSet::new();
    let Ok(algorithms) = fs::read_dir(layout.join("blobs")) else { return blobs };
    for algorithm in algorithms.flatten() {
        for blob in fs::read_dir(algorithm.path()).into_iter().flatten().flatten() {
            let name = blob.file_name().to_string_lossy().into_owned();
            if !name.starts_with(TEMP_PREFIX) {
                blobs.insert(format!("{}:{name}", algorithm.file_name().to_string_lossy()));
            }
        }
    }
    blobs
}

/// The blobs of the layout that index.json does not reach (through indexes, manifests,
/// configs and layers); an empty layout, or none, has none.
fn unreachable_blobs(layout: &Path) -> Vec<String> {
    let Ok(bytes) = fs::read(layout.join("index.json")) else { return Vec::new() };
    let mut todo: Vec<String> = Vec::new();
    let mut reached = BTreeSet::new();
    let children = |json: &Value, todo: &mut Vec<String>| {
        let listed = json["manifests"].as_array().into_iter().chain(json["layers"].as_array()).flatten();
        todo.extend(listed.chain([&json["config"]]).filter_map(|d| d["digest"].as_str()).map(str::to_string));
    };
    children(&serde_json::from_slice(&bytes).unwrap_or(Value::Null), &mut todo);
    while let Some(digest) = todo.pop() {
        if !reached.insert(digest.clone()) {
            continue;
        }
        let Some((algorithm, hex)) = digest.split_once(':') else { continue };
        if let Ok(bytes) = fs::read(layout.join("blobs").join(algorithm).join(hex)) {
            if let Ok(json) = serde_json::from_slice::<Value>(&bytes) {
                children(&json, &mut todo);
            }
        }
    }
    let shown = layout.display();
    layout_blobs(layout)
        .difference(&reached)
        .map(|blob| format!("{shown}/blobs/{}", blob.replacen(':', "/", 1)))
        .collect()
}

/// What a crash must not leave behind once the re-run is over: castoff's temp files
/// (`.castoff-tmp-*`, anywhere outside .git, its cache included), `*.tmp` and
/// `*.partial` files in dist/, and blobs in the OCI layout that index.json does not
/// reach.
fn leftovers(repo: &TempRepo) -> Vec<String> {
    let mut found = Vec::new();
    let walk =
        walkdir::WalkDir::new(repo.path()).into_iter().filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    for entry in walk.filter_map(Result::ok).filter(|e| !e.file_type().is_dir()) {
        let rel = entry.path().strip_prefix(repo.path()).unwrap().display().to_string();
        let name = entry.file_name().to_string_lossy();
        let in_dist = rel.starts_with("dist/");
        if name.starts_with(TEMP_PREFIX) || (in_dist && (name.ends_with(".tmp") || name.ends_with(".partial"))) {
            found.push(rel);
        }
    }
    found.extend(unreachable_blobs(&repo.join(LAYOUT)).into_iter().map(|blob| format!("unreachable blob {blob}")));
    found
}

/// What a release left behind, to compare a crashed and re-run one with an uninterrupted
/// one.
struct EndState {
    /// Registry: `latest` and the version, with the digest the registry serves for each.
    /// Layout: every entry of index.json as `(ref.name, digest)`, sorted, duplicates kept.
    tags: Vec<(String, String)>,
    /// Registry: every completed upload and manifest PUT, counted.
    pushes: BTreeMap<String, usize>,
    /// Layout: every blob.
    blobs: BTreeSet<String>,
    /// Each pynuget's answers to pushes, in order.
    feed_puts: Vec<Vec<u16>>,
    /// Every package file each pynuget stored and every file of the folder feed.
    packages: BTreeMap<String, Vec<u8>>,
}

/// The steps a re-run must find done after a crash at `at` (and so report already-done,
/// without doing them again).
fn done_before(at: &str) -> &'static [&'static str] {
    let steps = match at {
        "after:journal" => 0,
        "after:bump" => 1,
        "after:build" => 2,
        "after:manifest" => 3,
        "after:pack" => 4,
        // Publish itself is checked per feed: the other feeds may or may not have finished.
        _ if at.starts_with("after:publish:") => 4,
        "after:publish" => 5,
        "after:git" => 6,
        _ if at.starts_with("upload:blob:") => 1,
        _ if at.starts_with("upload:nuget:") => 4,
        _ => panic!("no expectation for crash point {at}"),
    };
    &STEP_ORDER[..steps]
}

/// What one crash case found, sorted into what the matrix counts.
#[derive(Default)]
struct Outcome {
    name: String,
    /// The first run died of SIGKILL at the crash point.
    killed: bool,
    /// Temp files there were between the crash and the re-run.
    left_by_crash: usize,
    /// The re-run exited 0, continued the release (`resumed`) and completed its journal.
    completed: bool,
    /// Something pushed, stored, tagged or committed twice.
    duplicated: Vec<String>,
    /// VERSION (or the baseline, the journal, the release commit) not bumped exactly once.
    version: Vec<String>,
    /// Temp files (and unreachable layout blobs) left after the re-run.
    temp_files: Vec<String>,
    /// Anything else that differs from an uninterrupted release.
    other: Vec<String>,
}

impl Outcome {
    fn failed(&self) -> bool {
        !self.killed
            || !self.completed
            || !self.duplicated.is_empty()
            || !self.version.is_empty()
            || !self.temp_files.is_empty()
            || !self.other.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "[{}] killed: {}, temp files after the crash: {}, re-run completed: {}, duplicated: {}, \
             version errors: {}, temp files left: {}, other problems: {}",
            self.name,
            self.killed,
            self.left_by_crash,
            self.completed,
            self.duplicated.len(),
            self.version.len(),
            self.temp_files.len(),
            self.other.len()
        )
    }

    fn problems(&self) -> String {
        let mut text = self.summary();
        for (kind, list) in [
            ("duplicated", &self.duplicated),
            ("version", &self.version),
            ("temp file left", &self.temp_files),
            ("problem", &self.other),
        ] {
            for item in list {
                text.push_str(&format!("\n- {kind}: {item}"));
            }
        }
        text
    }
}

/// Everything a crash case is compared against: the template's commit and the end state
/// of an uninterrupted release of it, per target.
struct Reference {
    base: String,
    registry: EndState,
    layout: EndState,
}

fn crash_and_resume(registry: &Registry, template: &TempRepo, point: &Point, reference: &Reference) -> Outcome {
    let version = next_version();
    let mut out = Outcome { name: point.name(), ..Outcome::default() };
    let copy = Copy::new(template, registry, point.target, &point.image());

    let first = copy.release(Some(&point.at));
    out.killed = first.status.signal() == Some(9) && first.stderr.contains("CASTOFF_CRASH_AT");
    if !out.killed {
        out.other.push(format!("the first run was not killed by CASTOFF_CRASH_AT: {}", first.describe()));
        return out;
    }
    out.left_by_crash = leftovers(&copy.repo).len();

    let second = copy.release(None);
    let lines = second.try_lines().unwrap_or_else(|problem| {
        out.other.push(format!("the re-run's output: {problem}"));
        Vec::new()
    });
    if !second.status.success() {
        out.other.push(format!("the re-run failed: {}", second.describe()));
    }
    let result = lines.iter().find(|line| line["event"] == "result").cloned().unwrap_or(Value::Null);
    let journal_path = copy.repo.join(&format!(".castoff/journal/{version}.json"));
    let journal: Value =
        fs::read(&journal_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
    out.completed = second.status.success() && result["resumed"] == true && journal["complete"] == true;
    if second.status.success() && !out.completed {
        out.other
            .push(format!("the re-run did not continue and complete the release: result {result}, journal {journal}"));
    }

    // VERSION bumped exactly once: in the file, the baseline, the journal, the one release
    // commit and the result.
    if copy.repo.version() != version {
        out.version.push(format!("VERSION is {}, expected {version}", copy.repo.version()));
    }
    if copy.repo.baseline().version != version {
        out.version.push(format!("the baseline records {}, expected {version}", copy.repo.baseline().version));
    }
    if second.status.success() && result["version"] != version.as_str() {
        out.version.push(format!("the re-run released {}, expected {version}", result["version"]));
    }
    let journals: Vec<String> = fs::read_dir(copy.repo.join(".castoff/journal"))
        .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let journals: Vec<String> = journals.into_iter().filter(|name| !name.starts_with(TEMP_PREFIX)).collect();
    if journals != [format!("{version}.json")] {
        out.version.push(format!("journals {journals:?}: one release makes one journal"));
    }
    let released = copy.repo.git(&["show", "HEAD:VERSION"]);
    if released.trim() != version {
        out.version.push(format!("the release commit holds VERSION {}", released.trim()));
    }

    // Nothing twice: one release commit and tag, each upload and manifest PUT once, the
    // package stored once per feed, no duplicate entry in the layout's index.json.
    let commits: usize =
        copy.repo.git(&["rev-list", "--count", &format!("{}..HEAD", reference.base)]).trim().parse().unwrap();
    match commits {
        1 => {}
        0 => out.other.push("no release commit".into()),
        n => out.duplicated.push(format!("{n} release commits on top of the template's commit")),
    }
    let tags = copy.repo.git(&["tag", "--points-at", "HEAD"]);
    if tags.split_whitespace().collect::<Vec<_>>() != [format!("v{version}")] {
        out.other.push(format!("the tags on the release commit: {tags:?}, expected v{version}"));
    }
    let expected = match point.target {
        Target::Registry => &reference.registry,
        Target::Layout => &reference.layout,
    };
    let end = copy.end_state(registry, &version);
    let twice: Vec<(&String, &usize)> = end.pushes.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        out.duplicated.push(format!("pushed more than once: {twice:?}"));
    } else if end.pushes != expected.pushes {
        out.other.push(format!(
            "uploads and manifest PUTs {:?}, an uninterrupted release made {:?}",
            end.pushes, expected.pushes
        ));
    }
    let names: Vec<&String> = end.tags.iter().map(|(name, _)| name).collect();
    let distinct: BTreeSet<&String> = names.iter().copied().collect();
    if distinct.len() != names.len() {
        out.duplicated.push(format!("a tag listed twice: {:?}", end.tags));
    } else if end.tags != expected.tags {
        out.other.push(format!("tags {:?}, an uninterrupted release made {:?}", end.tags, expected.tags));
    }
    if end.blobs != expected.blobs {
        let extra: Vec<_> = end.blobs.difference(&expected.blobs).collect();
        let missing: Vec<_> = expected.blobs.difference(&end.blobs).collect();
        out.other.push(format!("the layout's blobs differ: extra {extra:?}, missing {missing:?}"));
    }
    for (feed, puts) in ["pynuget", "pynuget2"].iter().zip(&end.feed_puts) {
        let stored = puts.iter().filter(|status| **status == 201).count();
        if stored > 1 || puts.contains(&409) {
            out.duplicated.push(format!("{feed} was pushed the package again: {puts:?}"));
        } else if stored == 0 {
            out.other.push(format!("{feed} never stored the package: {puts:?}"));
        }
    }
    if end.packages != expected.packages {
        let differ: Vec<&String> = end
            .packages
            .keys()
            .chain(expected.packages.keys())
            .filter(|file| end.packages.get(*file) != expected.packages.get(*file))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        out.other.push(format!("the feeds' files differ from an uninterrupted release's: {differ:?}"));
    }

    // The steps done before the crash were checked, not redone; the rest ran.
    let done = done_before(&point.at);
    let statuses: Vec<(String, String)> = lines
        .iter()
        .filter(|line| line["event"] == "step-finished")
        .map(|line| {
            (line["step"].as_str().unwrap_or("?").to_string(), line["status"].as_str().unwrap_or("?").to_string())
        })
        .collect();
    let steps: Vec<&str> = statuses.iter().map(|(step, _)| step.as_str()).collect();
    if steps != STEPS {
        out.other.push(format!("the re-run finished steps {steps:?}, expected {STEPS:?}"));
    }
    for (step, status) in &statuses {
        let fine = match step.as_str() {
            "publish" if point.at.starts_with("after:publish:") => status == "done" || status == "already-done",
            _ if done.contains(&step.as_str()) => status == "already-done",
            _ => status == "done",
        };
        if !fine {
            out.other.push(format!("step {step} was {status} in the re-run"));
        }
    }

    out.temp_files = leftovers(&copy.repo);
    out
}

/// One uninterrupted release of a copy of the template to `target`: its end state,
/// checked to be clean (each push once, each feed stored the package once, no leftovers).
fn reference_release(registry: &Registry, template: &TempRepo, target: Target) -> (EndState, u64, u64) {
    let version = next_version();
    let copy = Copy::new(template, registry, target, "crash/reference");
    copy.release(None).assert_ok();
    let end = copy.end_state(registry, &version);
    let nupkg = copy.repo.read(&format!("dist/nuget/{PACKAGE_ID}.{version}.nupkg"));
    assert!(end.pushes.values().all(|n| *n == 1), "an uninterrupted release pushed something twice: {:?}", end.pushes);
    assert_eq!(end.feed_puts, [[201], [201]], "each pynuget stored the package once");
    assert!(end.tags.iter().all(|(_, digest)| digest.starts_with("sha256:")), "{:?}", end.tags);
    for feed in &copy.feeds {
        assert_eq!(fs::read(&feed.package_files()[0]).unwrap(), nupkg, "pynuget holds the packed nupkg");
    }
    let left = leftovers(&copy.repo);
    assert!(left.is_empty(), "an uninterrupted release to the {target:?} left {left:?}");
    // The smallest payload layer of the three platforms: the upload offsets are drawn inside it.
    let layer = match target {
        Target::Registry => {
            let index = registry.manifest("crash/reference", &version);
            let children = index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap());
            let largest = |digest: &str| {
                let manifest = registry.manifest("crash/reference", digest);
                manifest["layers"].as_array().unwrap().iter().map(|l| l["size"].as_u64().unwrap()).max().unwrap()
            };
            children.map(largest).min().unwrap()
        }
        Target::Layout => 0,
    };
    (end, layer, nupkg.len() as u64)
}

/// The crash matrix: a release is killed (SIGKILL) at every step boundary (after writing
/// its journal, after each step, after each of its three feeds, after git), and at
/// seeded random byte offsets inside the image layer uploads and inside the NuGet push
/// (a 3 MiB payload is in every image and in the package, so both bodies are read in
/// many pieces); the boundaries around the image steps are run again with the images
/// going into the OCI layout. After each crash the release is run again, without the
/// crash, and must end exactly as an uninterrupted release of the same commit does:
/// VERSION bumped once (file, baseline, journal, the one release commit), the same index
/// digests under `latest` and the version (or the same index.json entries and blobs), the
/// same uploads and manifest PUTs in the registry's access log (each once), the package
/// stored once by each pynuget (no second PUT answered 409) and the same folder feed, the
/// steps done before the crash reported already-done, and no temp file left behind
/// (`.castoff-tmp-*` anywhere, `*.tmp`/`*.partial` in dist/, blobs the layout's index.json
/// does not reach). Every case is a clone of one committed template (same commit,
/// SOURCE_DATE_EPOCH fixed) with its own registry repository and pynugets; one registry
/// serves them all. The seed, the offsets and every count are printed. Real programs:
/// docker-registry, pynuget, git.
#[test]
fn a_killed_release_finishes_on_a_re_run_as_an_uninterrupted_one_would() {
    let started = Instant::now();
    let registry = Registry::start();
    let template = example_repo(true);
    let base = template.git(&["rev-parse", "HEAD"]).trim().to_string();

    let ((registry_end, layer, nupkg), (layout_end, _, _)) = std::thread::scope(|scope| {
        let layout = scope.spawn(|| reference_release(&registry, &template, Target::Layout));
        let pushed = reference_release(&registry, &template, Target::Registry);
        (pushed, layout.join().expect("the layout reference release"))
    });
    let reference = Reference { base, registry: registry_end, layout: layout_end };

    let seed = crash_seed();
    let mut rng = SplitMix64(seed);
    let blob_offsets = draw_offsets(&mut rng, layer, OFFSETS_PER_UPLOAD);
    let nuget_offsets = draw_offsets(&mut rng, nupkg, OFFSETS_PER_UPLOAD);
    println!("crash matrix: seed {seed:#018x} ({CRASH_SEED_ENV} sets another)");
    println!("crash matrix: upload:blob offsets inside the {layer}-byte payload layer: {blob_offsets:?}");
    println!("crash matrix: upload:nuget offsets inside the push of the {nupkg}-byte nupkg: {nuget_offsets:?}");

    let mut points: Vec<Point> = BOUNDARIES.iter().map(|at| Point::new(*at, Target::Registry)).collect();
    points.extend(blob_offsets.iter().map(|n| Point::new(format!("upload:blob:{n}"), Target::Registry)));
    points.extend(nuget_offsets.iter().map(|n| Point::new(format!("upload:nuget:{n}"), Target::Registry)));
    points.extend(LAYOUT_BOUNDARIES.iter().map(|at| Point::new(*at, Target::Layout)));

    let outcomes = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_CASES {
            scope.spawn(|| {
                while let Some(point) = points.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let case = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        crash_and_resume(&registry, &template, point, &reference)
                    }));
                    let outcome = case.unwrap_or_else(|panic| {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic without a message".into());
                        Outcome {
                            name: point.name(),
                            other: vec![format!("panicked: {message}")],
                            ..Outcome::default()
                        }
                    });
                    println!("{}", outcome.summary());
                    outcomes.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();

    let total = points.len();
    let completed = outcomes.iter().filter(|o| o.killed && o.completed).count();
    let duplicated = outcomes.iter().filter(|o| !o.duplicated.is_empty()).count();
    let version_errors = outcomes.iter().filter(|o| !o.version.is_empty()).count();
    let temp_files: usize = outcomes.iter().map(|o| o.temp_files.len()).sum();
    let cleaned: usize = outcomes.iter().map(|o| o.left_by_crash).sum();
    crate::support::count(&format!(
        "crash matrix: {total} points, {completed} resumed and completed, {duplicated} duplicated, \
         {version_errors} version errors, {temp_files} temp files left"
    ));
    println!("crash matrix: {cleaned} temp files were there between a crash and its re-run");
    println!("crash matrix: wall time {:.1} s ({PARALLEL_CASES} cases at a time)", started.elapsed().as_secs_f64());
    let failures: Vec<String> = outcomes.iter().filter(|o| o.failed()).map(Outcome::problems).collect();
    assert!(total >= 30, "the crash matrix has {total} points, fewer than 30");
    assert!(
        failures.is_empty() && completed == total && duplicated == 0 && version_errors == 0 && temp_files == 0,
        "{} of {total} crash cases failed (seed {seed:#018x}):\n\n{}",
        failures.len(),
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
