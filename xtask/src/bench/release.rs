//! `castoff release` end to end, against what a user would otherwise run: the separate
//! castoff commands one after another, and, below them, the raw uploads.
//!
//! Two parts:
//! - examples/app as shipped (native builder into the OCI layout dist/oci, 3 platforms,
//!   one NuGet package into the default folder feed dist/feed): `castoff --json release
//!   --bump patch` against `castoff bump patch && castoff build && castoff manifest &&
//!   castoff pack && castoff publish`, each command timed as well (run from here one after
//!   another, stopping at the first failure, as `sh -e` would, without the shell's own
//!   start). The goal is a release in at most 1 s.
//! - uploads that matter: 3 platforms × 8 MiB of random bytes pushed to Debian's
//!   docker-registry and an 8 MB nupkg pushed to pynuget (v2, api_key_env). W is the
//!   release's wall time; X is what `castoff build`, `castoff manifest` and `castoff
//!   publish` take when each is run alone (after an untimed `castoff bump patch`; publish
//!   packs first, as it does when the package is missing), so (W − X) / W is what the
//!   release adds beyond the builds and uploads. The goal is at most 10%. S, the sum of the
//!   release's own build, manifest and publish step times from its JSON events, says how
//!   much of W is outside those steps. The raw uploads (skopeo copy of the same images from
//!   an OCI layout castoff built, curl PUT of the same nupkg, one after another) are the
//!   floor.
//!
//! Fairness:
//! - every run, of either side, starts from a fresh copy of a committed git project (no
//!   dist/, no .castoff/cache, no journal) and, in the second part, pushes into a registry
//!   and a pynuget started just for it: nothing is already there. Copying, committing and
//!   starting servers is not timed;
//! - the sides take turns each round, so that load from elsewhere hits them alike; round 0
//!   is an untimed warm-up that also puts the files in the page cache;
//! - the files are backdated so castoff trusts their stamps (as in the build bench).
//!
//! Nothing here asserts a time: the goals are reported as met or not.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use testkit::images::{push_with_skopeo, Format};
use testkit::pynuget::Pynuget;
use testkit::registry::Registry;

use super::data::BinaryLike;
use super::measure::{median, ms, print_table, Row, Timing};
use super::BenchArgs;
use crate::prereqs::ensure_programs;

/// The release steps in their order, as `--json` names them.
const STEPS: [&str; 6] = ["bump", "build", "manifest", "pack", "publish", "git"];
/// The commands a shell script would run instead of `castoff release` on examples/app.
const SCRIPT: [&str; 5] = ["bump", "build", "manifest", "pack", "publish"];
/// The commands whose time is "the builds and uploads themselves".
const WORK: [&str; 3] = ["build", "manifest", "publish"];
const PLATFORMS: [(&str, &str); 3] = [("linux/amd64", "amd64"), ("linux/arm/v6", "armv6"), ("linux/arm/v7", "armv7")];
const FILE_BYTES: usize = 8 << 20;
const PAYLOAD_BYTES: usize = 8 << 20;
const PACKAGE: &str = "Bench.Release";
const VERSION: &str = "0.1.0";
const KEY: &str = "bench-key";
const KEY_ENV: &str = "CASTOFF_BENCH_RELEASE_KEY";
/// The goals.
const EXAMPLE_LIMIT: Duration = Duration::from_secs(1);
const OVERHEAD_GOAL: f64 = 0.10;

pub fn run(castoff: &Path, args: &BenchArgs) -> Result<()> {
    ensure_programs(&[
        ("git", "git"),
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("curl", "curl"),
        ("python3", "python3"),
    ])?;
    testkit::pynuget::try_ensure_pynuget_venv().map_err(|e| anyhow!("pynuget venv: {e}"))?;
    let example = example(castoff, args)?;
    let uploads = uploads(castoff, args)?;
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!();
    println!(
        "goal: release examples/app end to end in <= {} ms: {} ({})",
        EXAMPLE_LIMIT.as_millis(),
        verdict(example <= EXAMPLE_LIMIT),
        ms(example)
    );
    println!(
        "goal: release overhead beyond the builds and uploads <= {:.0}%: {} ({:.1}%)",
        OVERHEAD_GOAL * 100.0,
        verdict(uploads <= OVERHEAD_GOAL),
        uploads * 100.0
    );
    Ok(())
}

/// Part 1: examples/app, release against the script. The release's median wall time.
fn example(castoff: &Path, args: &BenchArgs) -> Result<Duration> {
    let runs = args.runs.clamp(1, 5);
    let template = testkit::temp_dir();
    copy_example(template.path())?;
    commit(template.path(), &["-A"])?;
    eprintln!("bench release: examples/app copied to {}, {runs} runs per side (+1 warm-up)", template.path().display());

    let (mut releases, mut scripts) = (Vec::new(), Vec::new());
    for round in 0..=runs {
        let copy = testkit::temp_dir();
        copy_into(template.path(), copy.path())?;
        let released = release(castoff, copy.path(), &[])?;
        let copy = testkit::temp_dir();
        copy_into(template.path(), copy.path())?;
        let script = commands(castoff, copy.path(), &SCRIPT, &[], &[])?;
        eprintln!(
            "bench release: example round {round}{}: release {} ({}), script {} ({})",
            warm_up(round),
            ms(released.wall),
            released.show(),
            ms(script.wall),
            script.show(),
        );
        if round > 0 {
            releases.push(released);
            scripts.push(script);
        }
    }
    let ours = median(releases.iter().map(|r| r.wall).collect());
    let theirs = median(scripts.iter().map(|s| s.wall).collect());
    let mut rows = vec![Row {
        what: "end to end: `castoff release --bump patch`".into(),
        castoff: ms(ours.median),
        other: format!("bump && build && manifest && pack && publish: {}", ms(theirs.median)),
        ratio: format!("{:.2}x time", secs(ours) / secs(theirs)),
        goal: format!("<= {} ms", EXAMPLE_LIMIT.as_millis()),
        met: ours.median <= EXAMPLE_LIMIT,
    }];
    rows.extend(step_rows(&releases, &scripts));
    rows.push(outside_steps_row(&releases));
    print_table(
        &format!(
            "release: examples/app (native builder into OCI layout dist/oci, {} platforms, 1 NuGet package into the \
             folder feed dist/feed), {} cores, median of {runs} runs, load average {} at the end",
            PLATFORMS.len(),
            cores(),
            load_average(),
        ),
        &rows,
    );
    Ok(ours.median)
}

/// Part 2: a registry and pynuget, uploads that matter. The release's overhead (W − X) / W.
fn uploads(castoff: &Path, args: &BenchArgs) -> Result<f64> {
    let runs = args.runs.clamp(1, 3);
    let template = testkit::temp_dir();
    prepare_project(template.path())?;
    let payload_mib = (PLATFORMS.len() * FILE_BYTES + PAYLOAD_BYTES) as f64 / (1 << 20) as f64;
    eprintln!(
        "bench release: {payload_mib:.0} MiB of files in {}, {runs} runs per side (+1 warm-up)",
        template.path().display()
    );

    // The raw uploads' input, untimed: the same images in an OCI layout and the same
    // package, built and packed by castoff at the version before the release's.
    let layout_project = testkit::temp_dir();
    copy_into(template.path(), layout_project.path())?;
    write_config(layout_project.path(), "localhost:1/bench/release", Some("oci-layout:dist/oci"), None)?;
    commands(castoff, layout_project.path(), &["build", "pack"], &[], &[])?;
    let layout = layout_project.path().join("dist/oci");
    let nupkg = layout_project.path().join(format!("dist/nuget/{PACKAGE}.{VERSION}.nupkg"));
    let nupkg_bytes = fs::metadata(&nupkg).with_context(|| format!("castoff pack wrote no {}", nupkg.display()))?.len();

    let env = [(KEY_ENV, KEY)];
    let (mut releases, mut alone, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=runs {
        let (registry, feed) = (Registry::start(), Pynuget::start(KEY));
        let copy = testkit::temp_dir();
        copy_into(template.path(), copy.path())?;
        write_config(copy.path(), &registry.reference("bench/release"), None, Some(&feed))?;
        commit(copy.path(), &["castoff.toml"])?;
        let released = release(castoff, copy.path(), &env)?;
        expect_stored(&feed, "castoff release")?;
        drop((registry, feed));

        let (registry, feed) = (Registry::start(), Pynuget::start(KEY));
        let copy = testkit::temp_dir();
        copy_into(template.path(), copy.path())?;
        write_config(copy.path(), &registry.reference("bench/release"), None, Some(&feed))?;
        commit(copy.path(), &["castoff.toml"])?;
        let separate = commands(castoff, copy.path(), &["bump", "build", "manifest", "publish"], &["bump"], &env)?;
        expect_stored(&feed, "castoff publish")?;
        drop((registry, feed));

        let (registry, feed) = (Registry::start(), Pynuget::start(KEY));
        let uploaded = raw_uploads(&layout, &nupkg, &registry, &feed)?;
        expect_stored(&feed, "curl")?;
        drop((registry, feed));

        eprintln!(
            "bench release: upload round {round}{}: release {} ({}), alone {} ({}), raw {} (load {})",
            warm_up(round),
            ms(released.wall),
            released.show(),
            ms(separate.wall),
            separate.show(),
            uploaded.show(),
            load_average(),
        );
        if round > 0 {
            releases.push(released);
            alone.push(separate);
            raw.push(uploaded);
        }
    }

    let wall = median(releases.iter().map(|r| r.wall).collect());
    let work = median(alone.iter().map(|s| s.sum(&WORK)).collect());
    let in_steps = median(releases.iter().map(|r| r.sum(&WORK)).collect());
    let raw_total = median(raw.iter().map(|r| r.skopeo + r.curl).collect());
    let raw_skopeo = median(raw.iter().map(|r| r.skopeo).collect());
    let raw_curl = median(raw.iter().map(|r| r.curl).collect());
    let overhead = (secs(wall) - secs(work)) / secs(wall);
    let alone_median = |name: &str| ms(median(alone.iter().map(|s| s.took(name)).collect()).median);
    let mut rows = vec![
        Row {
            what: "release wall time W".into(),
            castoff: ms(wall.median),
            other: format!(
                "X = build {} + manifest {} + publish {} (packs first), each alone: {}",
                alone_median("build"),
                alone_median("manifest"),
                alone_median("publish"),
                ms(work.median)
            ),
            ratio: format!("{:.2}x time", secs(wall) / secs(work)),
            goal: "(reported)".into(),
            met: true,
        },
        Row {
            what: "overhead beyond the builds and uploads: (W − X) / W".into(),
            castoff: format!("{:.1}% ({})", overhead * 100.0, signed_ms(secs(wall) - secs(work))),
            other: format!("X: {}", ms(work.median)),
            ratio: format!("{:.1}%", overhead * 100.0),
            goal: format!("<= {:.0}%", OVERHEAD_GOAL * 100.0),
            met: overhead <= OVERHEAD_GOAL,
        },
        Row {
            what: "S = the release's build + manifest + publish steps (its JSON)".into(),
            castoff: format!("{} (W − S = {})", ms(in_steps.median), signed_ms(secs(wall) - secs(in_steps))),
            other: format!("X: {}", ms(work.median)),
            ratio: format!("{:.2}x time", secs(in_steps) / secs(work)),
            goal: "(reported)".into(),
            met: true,
        },
        Row {
            what: format!(
                "raw uploads: {} images + {:.1} MB nupkg, one after another",
                PLATFORMS.len(),
                nupkg_bytes as f64 / 1e6
            ),
            castoff: format!("W: {}", ms(wall.median)),
            other: format!(
                "skopeo copy ×{} {} + curl PUT {}: {}",
                PLATFORMS.len(),
                ms(raw_skopeo.median),
                ms(raw_curl.median),
                ms(raw_total.median)
            ),
            ratio: format!("{:.2}x time", secs(wall) / secs(raw_total)),
            goal: "(reported)".into(),
            met: true,
        },
    ];
    rows.extend(step_rows(&releases, &alone));
    rows.push(outside_steps_row(&releases));
    print_table(
        &format!(
            "release: {} platforms × {} MiB random (native builder) to Debian docker-registry + a {:.1} MB nupkg to \
             pynuget v2, loopback, {} cores, median of {runs} runs, load average {} at the end",
            PLATFORMS.len(),
            FILE_BYTES >> 20,
            nupkg_bytes as f64 / 1e6,
            cores(),
            load_average(),
        ),
        &rows,
    );
    Ok(overhead)
}

/// One `castoff --json release --bump patch`: its wall time and its steps.
struct Released {
    wall: Duration,
    /// Step name → (status, seconds), from the `step-finished` events.
    steps: BTreeMap<String, (String, Duration)>,
}

impl Released {
    fn sum(&self, names: &[&str]) -> Duration {
        names.iter().filter_map(|name| self.steps.get(*name)).map(|(_, took)| *took).sum()
    }

    fn show(&self) -> String {
        let steps: Vec<String> = STEPS
            .iter()
            .filter_map(|name| self.steps.get(*name).map(|(status, took)| format!("{name} {status} {}", ms(*took))))
            .collect();
        steps.join(", ")
    }
}

/// Separate castoff commands run one after another: each one's time, and the whole.
struct Commands {
    wall: Duration,
    took: Vec<(String, Duration)>,
}

impl Commands {
    fn took(&self, name: &str) -> Duration {
        self.took.iter().filter(|(n, _)| n == name).map(|(_, took)| *took).sum()
    }

    fn sum(&self, names: &[&str]) -> Duration {
        names.iter().map(|name| self.took(name)).sum()
    }

    fn show(&self) -> String {
        let took: Vec<String> = self.took.iter().map(|(name, took)| format!("{name} {}", ms(*took))).collect();
        took.join(", ")
    }
}

/// The raw uploads of one round.
struct Raw {
    skopeo: Duration,
    curl: Duration,
}

impl Raw {
    fn show(&self) -> String {
        format!("skopeo {}, curl {}", ms(self.skopeo), ms(self.curl))
    }
}

/// `castoff --json release --bump patch` in `dir`; fails unless it exits 0 and every
/// step either did its work or was skipped (a fresh project has nothing already done).
fn release(castoff: &Path, dir: &Path, env: &[(&str, &str)]) -> Result<Released> {
    let mut command = Command::new(castoff);
    command.args(["--json", "release", "--bump", "patch"]).current_dir(dir).envs(env.iter().copied());
    let start = Instant::now();
    let out = command.output().context("running castoff release")?;
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "castoff release failed ({}); the bench needs `castoff release [--bump LEVEL] [--json]`:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut steps = BTreeMap::new();
    let mut result = false;
    for line in stdout.lines().filter(|line| !line.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).with_context(|| format!("castoff release's JSON: {line}"))?;
        match event["event"].as_str() {
            Some("step-finished") => {
                let step = event["step"].as_str().context("a step-finished event without `step`")?;
                let status = event["status"].as_str().context("a step-finished event without `status`")?;
                let seconds = event["seconds"].as_f64().context("a step-finished event without `seconds`")?;
                if !matches!(status, "done" | "skipped") {
                    bail!("castoff release on a fresh project: step {step} ended {status}:\n{stdout}");
                }
                steps.insert(step.to_string(), (status.to_string(), Duration::from_secs_f64(seconds.max(0.0))));
            }
            Some("result") => result = true,
            _ => {}
        }
    }
    if !result || steps.is_empty() {
        bail!("castoff release printed no step-finished events or no result:\n{stdout}");
    }
    Ok(Released { wall, steps })
}

/// `castoff NAME` for each of `names` in `dir`, one after another, stopping at the first
/// failure; the ones in `untimed` run but count in neither their own time nor the whole.
fn commands(castoff: &Path, dir: &Path, names: &[&str], untimed: &[&str], env: &[(&str, &str)]) -> Result<Commands> {
    let (mut wall, mut took) = (Duration::ZERO, Vec::new());
    for name in names {
        let mut command = Command::new(castoff);
        command.arg(name).current_dir(dir).envs(env.iter().copied());
        if *name == "bump" {
            command.arg("patch");
        }
        let start = Instant::now();
        let out = command.output().with_context(|| format!("running castoff {name}"))?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!(
                "castoff {name} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !untimed.contains(name) {
            wall += elapsed;
            took.push((name.to_string(), elapsed));
        }
    }
    Ok(Commands { wall, took })
}

/// skopeo copy of each platform's image from `layout`, then curl PUT of `nupkg`, into a
/// new registry and feed.
fn raw_uploads(layout: &Path, nupkg: &Path, registry: &Registry, feed: &Pynuget) -> Result<Raw> {
    let start = Instant::now();
    for (_, suffix) in PLATFORMS {
        let tag = format!("{VERSION}-{suffix}");
        push_with_skopeo(layout, &tag, &registry.reference(&format!("bench/raw:{tag}")), Format::Oci);
    }
    let skopeo = start.elapsed();
    let mut curl = feed.curl_push(nupkg, KEY);
    let start = Instant::now();
    let out = curl.output().context("running curl")?;
    let took = start.elapsed();
    let status = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || status.trim() != "201" {
        bail!("{curl:?} failed ({}): {status}{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(Raw { skopeo, curl: took })
}

/// One row per release step: its median time (and status) against the same command run
/// alone, where there is one.
fn step_rows(releases: &[Released], alone: &[Commands]) -> Vec<Row> {
    let mut rows = Vec::new();
    for name in STEPS {
        let Some((status, _)) = releases.iter().find_map(|r| r.steps.get(name)) else { continue };
        let ours = median(releases.iter().map(|r| r.steps.get(name).map(|(_, t)| *t).unwrap_or_default()).collect());
        let has_alone = alone.iter().any(|s| s.took.iter().any(|(n, _)| n == name));
        let theirs = median(alone.iter().map(|s| s.took(name)).collect());
        rows.push(Row {
            what: format!("step {name} ({status})"),
            castoff: ms(ours.median),
            other: match has_alone {
                true => {
                    format!("castoff {name}{} alone: {}", if name == "bump" { " patch" } else { "" }, ms(theirs.median))
                }
                false => "(not run alone)".into(),
            },
            ratio: match has_alone {
                true => format!("{:.2}x time", secs(ours) / secs(theirs).max(1e-9)),
                false => "-".into(),
            },
            goal: "(reported)".into(),
            met: true,
        });
    }
    rows
}

/// The release's time outside its steps: start-up, planning, the journal, the summary.
fn outside_steps_row(releases: &[Released]) -> Row {
    let outside = median(releases.iter().map(|r| r.wall.saturating_sub(r.sum(&STEPS))).collect());
    Row {
        what: "release outside its steps (start-up, plan, journal)".into(),
        castoff: ms(outside.median),
        other: "-".into(),
        ratio: "-".into(),
        goal: "(reported)".into(),
        met: true,
    }
}

/// examples/app into `dest`, as a user's checkout would hold it: without what castoff
/// writes (dist/, .castoff/cache, .castoff/journal, .castoff/lock), with dist/ ignored.
fn copy_example(dest: &Path) -> Result<()> {
    copy_into(&crate::workspace_root().join("examples/app"), dest)?;
    for written in ["dist", ".castoff/cache", ".castoff/journal"] {
        let _ = fs::remove_dir_all(dest.join(written));
    }
    let _ = fs::remove_file(dest.join(".castoff/lock"));
    let ignore = dest.join(".gitignore");
    let mut text = fs::read_to_string(&ignore).unwrap_or_default();
    if !text.lines().any(|line| line.trim() == "/dist/" || line.trim() == "dist/") {
        text.push_str("/dist/\n");
        fs::write(&ignore, text)?;
    }
    Ok(())
}

/// A committed git project (VERSION, a nuspec) with the files castoff releases as
/// untracked build outputs: one per platform and the package's DLL, all random bytes.
fn prepare_project(root: &Path) -> Result<()> {
    fs::write(root.join("VERSION"), format!("{VERSION}\n"))?;
    fs::write(root.join(".gitignore"), "/dist/\n/bin/\n/nuget/lib/\n")?;
    let lib = root.join("nuget/lib/netstandard2.0");
    fs::create_dir_all(&lib)?;
    fs::write(
        root.join(format!("nuget/{PACKAGE}.nuspec")),
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  <metadata>\n    \
             <id>{PACKAGE}</id>\n    <version>$version$</version>\n    <authors>bench</authors>\n    \
             <description>castoff release benchmark package</description>\n  </metadata>\n  \
             <files>\n    <file src=\"lib/**\" target=\"lib\" />\n  </files>\n</package>\n"
        ),
    )?;
    let backdated = SystemTime::now() - Duration::from_secs(10);
    let mut files = vec![(lib.join(format!("{PACKAGE}.dll")), PAYLOAD_BYTES, 0o644)];
    for (_, suffix) in PLATFORMS {
        fs::create_dir_all(root.join("bin").join(suffix))?;
        files.push((root.join("bin").join(suffix).join("app"), FILE_BYTES, 0o755));
    }
    for (seed, (path, size, mode)) in files.into_iter().enumerate() {
        fs::write(&path, BinaryLike::random(seed as u64 + 1, size))?;
        fs::File::options().write(true).open(&path)?.set_modified(backdated)?;
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    commit(root, &["-A"])
}

/// castoff.toml releasing the native images as `name` (or into `output`), the package and,
/// when given, `feed` as a v2 feed.
fn write_config(root: &Path, name: &str, output: Option<&str>, feed: Option<&Pynuget>) -> Result<()> {
    let platforms: Vec<String> = PLATFORMS.iter().map(|(p, _)| format!("\"{p}\"")).collect();
    let mut text =
        format!("[image]\nname = \"{name}\"\nplatforms = [{}]\nbuilder = \"native\"\n", platforms.join(", "));
    if let Some(output) = output {
        text.push_str(&format!("output = \"{output}\"\n"));
    }
    text.push_str(
        "\n[image.native]\nfiles = [{ src = \"bin/{suffix}/app\", dst = \"/usr/local/bin/app\", mode = \"0755\" }]\n",
    );
    text.push_str(&format!("\n[[package]]\nnuspec = \"nuget/{PACKAGE}.nuspec\"\nsymbols = \"none\"\n"));
    if let Some(feed) = feed {
        text.push_str(&format!(
            "\n[[feed]]\nname = \"pynuget\"\nurl = \"{}\"\nprotocol = \"v2\"\napi_key_env = \"{KEY_ENV}\"\n",
            feed.url()
        ));
    }
    fs::write(root.join("castoff.toml"), text).context("writing castoff.toml")
}

/// `git init` (when needed), `git add PATHS` and a commit in `root`.
fn commit(root: &Path, paths: &[&str]) -> Result<()> {
    let git = |args: &[&str]| {
        duct::cmd("git", args).dir(root).stdout_null().stderr_capture().run().map(drop).context("running git")
    };
    if !root.join(".git").exists() {
        git(&["init", "-q"])?;
    }
    git(&[&["add"], paths].concat())?;
    git(&["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "--allow-empty", "-m", "bench"])
}

/// `template`'s content copied into the (new, empty) directory `copy`, mtimes kept.
fn copy_into(template: &Path, copy: &Path) -> Result<()> {
    let mut from = template.as_os_str().to_os_string();
    from.push("/.");
    duct::cmd("cp", [std::ffi::OsStr::new("-a"), &from, copy.as_os_str()]).run().context("copying a project")?;
    Ok(())
}

/// Pynuget stored exactly one package.
fn expect_stored(feed: &Pynuget, who: &str) -> Result<()> {
    let files = feed.package_files();
    match files.len() {
        1 => Ok(()),
        _ => bail!("after {who}, pynuget holds {files:?}, not one package; requests: {:?}", feed.requests()),
    }
}

fn warm_up(round: usize) -> &'static str {
    if round == 0 {
        " (warm-up)"
    } else {
        ""
    }
}

fn signed_ms(seconds: f64) -> String {
    format!("{:+.1} ms", seconds * 1000.0)
}

fn secs(timing: Timing) -> f64 {
    timing.median.as_secs_f64()
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The 1-minute load average, to read the timings against.
fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}
