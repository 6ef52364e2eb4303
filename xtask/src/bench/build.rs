//! `castoff build` with the native builder against buildah, 4 platforms × one 20 MB
//! file each (FROM scratch + COPY of the file), both pushing into Debian's
//! docker-registry on loopback.
//!
//! Fairness:
//! - every cold run, of either side, pushes into a registry started just for it: nothing
//!   is already there, and buildah cannot mount blobs across repositories from an
//!   earlier run (its blob-info cache, shared under /var/lib/containers/cache, would
//!   otherwise point it at them);
//! - every cold castoff run starts without `.castoff/cache`, every cold buildah run with
//!   a new private storage (no layer cache, no stored images);
//! - buildah builds with `--layers` (its layer cache, as docker build has) and pushes
//!   each platform right after building it, one platform after another as a Makefile
//!   would; a second row runs the four build+push sequences at once;
//! - the files are the same for both, 0755, backdated so castoff trusts their stamps
//!   (it re-hashes anything stamped within 1.1 s of now), and in the page cache;
//! - the content is deterministic and half-compressible, standing in for a binary:
//!   4 KiB blocks, half of them random bytes (incompressible) and half built from a
//!   256-word vocabulary of 8-byte words (about 3.5:1); gzip -6 keeps about 64% of it
//!   (real binaries compress more: castoff's own keeps 26%). All zeros would compress to
//!   nothing and flatter whoever compresses; all random would flatter whoever compresses
//!   slowest, as deflate skips incompressible data quickly.
//!
//! The no-change rows rebuild after a cold run with nothing changed: castoff with its
//! layer cache warm, buildah with its layer cache (`--layers`) and stored images; both
//! targets already hold every blob and manifest.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use testkit::buildah::ContainerStorage;
use testkit::registry::{Registry, Request};

use super::data::BinaryLike;
use super::measure::{ms, print_table, Row, Timing};
use super::BenchArgs;
use crate::prereqs::ensure_programs;

const PLATFORMS: [(&str, &str); 4] =
    [("linux/amd64", "amd64"), ("linux/arm/v6", "armv6"), ("linux/arm/v7", "armv7"), ("linux/arm64", "arm64")];
const FILE_BYTES: usize = 20 << 20;
const VERSION: &str = "0.1.0";
const CONTAINERFILE: &str = "FROM scratch\nARG SUFFIX\nCOPY dist/${SUFFIX}/app /usr/local/bin/app\n";
/// The goals.
const COLD_SPEEDUP: f64 = 3.0;
const NO_CHANGE_LIMIT: Duration = Duration::from_millis(100);

pub fn run(castoff: &Path, args: &BenchArgs) -> Result<()> {
    ensure_programs(&[("git", "git"), ("docker-registry", "docker-registry"), ("buildah", "buildah")])?;
    // Cold runs and buildah's rebuilds take seconds each: at most 3 (as sources' cold
    // rows); castoff's no-change rebuild takes --runs.
    let runs = args.runs.clamp(1, 3);
    let warm_runs = args.runs.max(1);
    let project = testkit::temp_dir();
    let root = project.path();
    prepare_project(root)?;
    let mib = (PLATFORMS.len() * FILE_BYTES) as f64 / (1 << 20) as f64;
    eprintln!("bench build: {mib:.0} MiB of files in {}, {runs} runs per side (+1 warm-up)", root.display());

    // Cold runs, the three contenders in turn each round, so that load from elsewhere on
    // the machine hits them alike. Round 0 is an untimed warm-up. What the last round
    // left (registry, cache, buildah storage) is what the no-change rebuilds start from.
    let buildah = Buildah { root };
    let (mut ours, mut sequential, mut parallel) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept = None;
    for round in 0..=runs {
        let (castoff_took, registry) = cold_castoff(castoff, root)?;
        let (sequential_took, buildah_left) = buildah.cold(false)?;
        let (parallel_took, _) = buildah.cold(true)?;
        eprintln!(
            "bench build: cold round {round}{}: castoff {}, buildah {} one by one, {} at once (load {})",
            if round == 0 { " (warm-up)" } else { "" },
            castoff_took.show(),
            sequential_took.show(),
            parallel_took.show(),
            load_average(),
        );
        if round > 0 {
            ours.push(castoff_took);
            sequential.push(sequential_took);
            parallel.push(parallel_took);
        }
        kept = Some((registry, buildah_left));
    }
    let cpu = |took: &[Took]| median(took.iter().map(|t| t.cpu).collect()).median;
    let (cpu_ours, cpu_buildah, cpu_parallel) = (cpu(&ours), cpu(&sequential), cpu(&parallel));
    let wall = |took: Vec<Took>| median(took.into_iter().map(|t| t.wall).collect());
    let (cold_ours, cold_buildah, cold_parallel) = (wall(ours), wall(sequential), wall(parallel));
    let (registry, (buildah_registry, storage)) = kept.context("no cold round")?;
    let pushed_bytes = compressed_bytes(&registry, "bench/native")?;

    // No change, castoff: the cache is warm and the registry has every image.
    let before = registry.requests().len();
    let out = castoff_build(castoff, root)?;
    let seen = registry.requests()[before..].to_vec();
    expect_statuses(&out, "up-to-date")?;
    let our_requests = out["requests"].as_u64().context("no `requests` in castoff's JSON")?;
    let verbose = castoff_verbose(castoff, root)?;
    let cached = verbose.lines().filter(|l| l.contains(" layer ") && l.ends_with(", cached)")).count();
    let mut samples = Vec::new();
    for _ in 0..warm_runs {
        let start = Instant::now();
        let out = castoff_build(castoff, root)?;
        samples.push(start.elapsed());
        expect_statuses(&out, "up-to-date")?;
    }
    let warm_ours = median(samples);

    // No change, buildah: the storage and registry of its last sequential cold run.
    let before = buildah_registry.requests().len();
    buildah.all(&storage, &buildah_registry)?;
    let buildah_seen = buildah_registry.requests()[before..].to_vec();
    let mut samples = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        buildah.all(&storage, &buildah_registry)?;
        samples.push(start.elapsed());
    }
    let warm_buildah = median(samples);

    let speedup = |ours: Timing, theirs: Timing| theirs.median.as_secs_f64() / ours.median.as_secs_f64();
    let cold_row = |what: &str, other: &str, theirs: Timing, their_cpu: Duration| {
        let ratio = speedup(cold_ours, theirs);
        Row {
            what: format!("cold: {what} ({:.0} MiB/s of files)", mib / secs(cold_ours)),
            castoff: format!("{} (CPU {})", ms(cold_ours.median), ms(cpu_ours)),
            other: format!("{other}: {} (CPU {})", ms(theirs.median), ms(their_cpu)),
            ratio: format!("{ratio:.1}x faster"),
            goal: format!(">= {COLD_SPEEDUP}x faster"),
            met: ratio >= COLD_SPEEDUP,
        }
    };
    let writes =
        |requests: &[Request]| requests.iter().filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD")).count();
    let (our_writes, their_writes) = (writes(&seen), writes(&buildah_seen));
    let no_change_met = warm_ours.median <= NO_CHANGE_LIMIT && our_writes == 0 && cached == PLATFORMS.len();
    let rows = [
        cold_row(
            "native build+push 4×20 MB",
            "buildah build --layers + push, one platform after another",
            cold_buildah,
            cpu_buildah,
        ),
        cold_row("the same castoff runs", "buildah, the 4 build+push at once", cold_parallel, cpu_parallel),
        Row {
            what: format!("no-change rebuild: 4× up-to-date, {cached}/4 layers from cache"),
            castoff: ms(warm_ours.median),
            other: format!("buildah build --layers + push again: {}", ms(warm_buildah.median)),
            ratio: format!("{:.1}x faster", speedup(warm_ours, warm_buildah)),
            goal: format!("<= {} ms, cached, nothing uploaded", NO_CHANGE_LIMIT.as_millis()),
            met: no_change_met,
        },
        Row {
            what: "no-change rebuild: HTTP requests at the registry (writes)".into(),
            castoff: format!("{} ({our_writes} writes); castoff's count: {our_requests}", seen.len()),
            other: format!("buildah: {} ({their_writes} writes)", buildah_seen.len()),
            ratio: format!("{:.2}x", seen.len() as f64 / buildah_seen.len().max(1) as f64),
            goal: "reads only".into(),
            met: our_writes == 0,
        },
    ];
    print_table(
        &format!(
            "build: {} platforms × 20 MiB (native pushed {:.1} MiB gzip), Debian docker-registry, {} cores, \
             median of {runs} runs (castoff's no-change rebuild: {warm_runs}), load average {} at the end",
            PLATFORMS.len(),
            pushed_bytes as f64 / (1 << 20) as f64,
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            load_average(),
        ),
        &rows,
    );
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let cold_speedup = speedup(cold_ours, cold_buildah);
    println!();
    println!(
        "goal: native cold build+push >= {COLD_SPEEDUP}x faster than buildah: {} ({cold_speedup:.1}x sequential, \
         {:.1}x against 4 at once)",
        verdict(cold_speedup >= COLD_SPEEDUP),
        speedup(cold_ours, cold_parallel),
    );
    println!(
        "goal: no-change rebuild <= {} ms with every blob present: {} ({}, {cached}/4 layers cached, \
         {} registry requests, {our_writes} writes)",
        NO_CHANGE_LIMIT.as_millis(),
        verdict(no_change_met),
        ms(warm_ours.median),
        seen.len(),
    );
    Ok(())
}

/// One cold `castoff build`: a registry of its own, no layer cache. The registry is
/// returned for the no-change rebuild.
fn cold_castoff(castoff: &Path, root: &Path) -> Result<(Took, Registry)> {
    let registry = Registry::start();
    write_config(root, &registry)?;
    let _ = fs::remove_dir_all(root.join(".castoff/cache"));
    let start = Stopwatch::start()?;
    let out = castoff_build(castoff, root)?;
    let took = start.stop()?;
    expect_statuses(&out, "pushed")?;
    Ok((took, registry))
}

/// Wall time and the CPU time (user + system) of the child processes that ended meanwhile:
/// the tool's own work, not the registry's. CPU time says how much work each side
/// does when other load on the machine makes wall times noisy.
struct Took {
    wall: Duration,
    cpu: Duration,
}

impl Took {
    fn show(&self) -> String {
        format!("{} (CPU {})", ms(self.wall), ms(self.cpu))
    }
}

/// Started [`Took`] measurement.
struct Stopwatch {
    start: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Result<Stopwatch> {
        Ok(Stopwatch { start: Instant::now(), cpu: children_cpu()? })
    }

    fn stop(self) -> Result<Took> {
        let wall = self.start.elapsed();
        Ok(Took { wall, cpu: children_cpu()?.saturating_sub(self.cpu) })
    }
}

/// cutime + cstime from /proc/self/stat: CPU time of the children waited for so far
/// (and of their own waited-for children), in clock ticks of 10 ms.
fn children_cpu() -> Result<Duration> {
    let stat = fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    // Fields 16 and 17 of proc(5); the list starts at field 3 (state).
    let ticks = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).context("parsing /proc/self/stat");
    Ok(Duration::from_millis((ticks(16)? + ticks(17)?) * 10))
}

/// The 1-minute load average, to read the timings against.
fn load_average() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}

fn secs(timing: Timing) -> f64 {
    timing.median.as_secs_f64()
}

fn median(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    Timing { median: samples[samples.len() / 2] }
}

/// A committed git project (VERSION, .gitignore of dist/) and the four files.
fn prepare_project(root: &Path) -> Result<()> {
    fs::write(root.join("VERSION"), format!("{VERSION}\n"))?;
    fs::write(root.join(".gitignore"), "/dist/\n")?;
    fs::write(root.join("Containerfile"), CONTAINERFILE)?;
    let git = |args: &[&str]| duct::cmd("git", args).dir(root).stdout_null().run().map(drop).context("running git");
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "bench"])?;
    let backdated = SystemTime::now() - Duration::from_secs(10);
    for (index, (_, suffix)) in PLATFORMS.iter().enumerate() {
        let dir = root.join("dist").join(suffix);
        fs::create_dir_all(&dir)?;
        let path = dir.join("app");
        let mut file = fs::File::create(&path)?;
        file.write_all(&BinaryLike::bytes(index as u64 + 1, FILE_BYTES))?;
        file.set_modified(backdated)?;
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    Ok(())
}

/// castoff.toml naming `registry`'s `bench/native`.
fn write_config(root: &Path, registry: &Registry) -> Result<()> {
    let platforms: Vec<String> = PLATFORMS.iter().map(|(p, _)| format!("\"{p}\"")).collect();
    let text = format!(
        "[image]\nname = \"{}\"\nplatforms = [{}]\nbuilder = \"native\"\n\n[image.native]\n\
         files = [{{ src = \"dist/{{suffix}}/app\", dst = \"/usr/local/bin/app\", mode = \"0755\" }}]\n",
        registry.reference("bench/native"),
        platforms.join(", "),
    );
    fs::write(root.join("castoff.toml"), text).context("writing castoff.toml")
}

/// `castoff --json build` in `root`, its JSON; fails unless it exits 0.
fn castoff_build(castoff: &Path, root: &Path) -> Result<Value> {
    let out = duct::cmd(castoff, ["--json", "build"])
        .dir(root)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running castoff build")?;
    if !out.status.success() {
        bail!("castoff build failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("castoff's JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// `castoff -v build`: what the builder logged (stderr).
fn castoff_verbose(castoff: &Path, root: &Path) -> Result<String> {
    let out = duct::cmd(castoff, ["-v", "build"])
        .dir(root)
        .stdout_null()
        .stderr_capture()
        .unchecked()
        .run()
        .context("running castoff -v build")?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.success() {
        true => Ok(log),
        false => bail!("castoff -v build failed ({}):\n{log}", out.status),
    }
}

/// Every image of castoff's JSON has `status`.
fn expect_statuses(out: &Value, status: &str) -> Result<()> {
    let images = out["images"].as_array().context("no `images` in castoff's JSON")?;
    let all = images.len() == PLATFORMS.len() && images.iter().all(|image| image["status"] == status);
    match all {
        true => Ok(()),
        false => bail!("expected {} images with status {status}: {out}", PLATFORMS.len()),
    }
}

/// Total size of the layers the 4 images of `repo` at `registry` reference.
fn compressed_bytes(registry: &Registry, repo: &str) -> Result<u64> {
    let mut total = 0;
    for (_, suffix) in PLATFORMS {
        let manifest = registry.manifest(repo, &format!("{VERSION}-{suffix}"));
        let layers = manifest["layers"].as_array().context("a manifest without layers")?;
        total += layers.iter().filter_map(|l| l["size"].as_u64()).sum::<u64>();
    }
    Ok(total)
}

/// buildah in the project directory.
struct Buildah<'a> {
    root: &'a Path,
}

impl Buildah<'_> {
    /// The 4 platforms built and pushed with a new storage into a new registry, one after
    /// another or all at once; both are returned for the no-change rebuild.
    fn cold(&self, at_once: bool) -> Result<(Took, (Registry, ContainerStorage))> {
        let (registry, storage) = (Registry::start(), ContainerStorage::new());
        let start = Stopwatch::start()?;
        match at_once {
            false => self.all(&storage, &registry)?,
            true => std::thread::scope(|scope| {
                let threads: Vec<_> = PLATFORMS
                    .iter()
                    .map(|&(platform, suffix)| {
                        let (storage, registry) = (&storage, &registry);
                        scope.spawn(move || self.build_and_push(storage, registry, platform, suffix))
                    })
                    .collect();
                threads.into_iter().try_for_each(|t| t.join().unwrap_or_else(|_| bail!("a buildah thread panicked")))
            })?,
        }
        Ok((start.stop()?, (registry, storage)))
    }

    /// Build and push each platform in turn, as a Makefile would.
    fn all(&self, storage: &ContainerStorage, registry: &Registry) -> Result<()> {
        PLATFORMS.iter().try_for_each(|(platform, suffix)| self.build_and_push(storage, registry, platform, suffix))
    }

    /// `buildah build --layers` of `platform` and `buildah push` to `bench/buildah:0.1.0-SUFFIX`.
    fn build_and_push(
        &self,
        storage: &ContainerStorage,
        registry: &Registry,
        platform: &str,
        suffix: &str,
    ) -> Result<()> {
        let local = format!("localhost/bench:{suffix}");
        let root = self.root.to_str().context("a non-UTF-8 temporary directory")?;
        let mut build = storage.buildah();
        build
            .args(["build", "--quiet", "--isolation", "chroot", "--layers", "--platform", platform])
            .args(["--build-arg", &format!("SUFFIX={suffix}"), "-f", &format!("{root}/Containerfile"), "-t", &local])
            .arg(root);
        checked(&mut build)?;
        let mut push = storage.buildah();
        push.args(["push", "--quiet", "--tls-verify=false", &local])
            .arg(format!("docker://{}", registry.reference(&format!("bench/buildah:{VERSION}-{suffix}"))));
        checked(&mut push)
    }
}

fn checked(command: &mut Command) -> Result<()> {
    let out = command.output().with_context(|| format!("running {command:?}"))?;
    match out.status.success() {
        true => Ok(()),
        false => bail!("{command:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr)),
    }
}
