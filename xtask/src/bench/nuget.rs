//! `castoff publish` and `castoff pack` against what a NuGet user would otherwise run:
//! curl pushing the same file to the same real v2 feed (pynuget), and NuGet.exe 5.8 pack
//! under mono.
//!
//! Fairness:
//! - every timed push, of either side, goes to a pynuget started just for it (an empty
//!   feed: pynuget answers 409 to a package it has, and its push cost grows with nothing
//!   else), on loopback; starting it is not timed;
//! - both push the very file `castoff pack` wrote (untimed, before), as a multipart PUT
//!   to `api/v2/package/` with the key in X-NuGet-ApiKey; curl is told nothing castoff is
//!   not (no compression, no chunking); castoff's time includes what it does before the
//!   upload (reading castoff.toml, checking the package), as a user waits for that too;
//! - the push content is random bytes (a 200 MB nupkg is mostly incompressible payload
//!   anyway), so the file on the wire has the stated size;
//! - round 0 of every comparison is an untimed warm-up that puts the files in the page
//!   cache for both; peak RSS is GNU time's maximum resident set size of the process
//!   (castoff's own; curl's for comparison);
//! - pack: the same nuspec and files (8 DLLs of half-compressible bytes with their
//!   portable PDBs, 20 MB in all) into nupkg + snupkg, castoff from castoff.toml,
//!   NuGet.exe with `-Symbols -SymbolPackageFormat snupkg`; both write fresh files each run.
//!
//! Pynuget itself (Flask's development server, which hashes each upload in one read) is
//! the slow end of a push, so the push ratio says whether castoff adds anything on top.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use testkit::nuget_exe::NugetExe;
use testkit::pynuget::Pynuget;

use super::data::BinaryLike;
use super::measure::{ms, print_table, time, Row, Timing};
use super::BenchArgs;
use crate::prereqs::{ensure_nuget_tools, ensure_programs};

const VERSION: &str = "1.0.0";
const KEY: &str = "bench-key";
const KEY_ENV: &str = "CASTOFF_BENCH_NUGET_KEY";
const BIG: u64 = 200_000_000;
const MID: u64 = 20_000_000;
/// The goals.
const THROUGHPUT_GOAL: f64 = 0.9;
const RSS_GOAL_MB: f64 = 50.0;
const PACK_SPEEDUP: f64 = 10.0;
/// The pack comparison's DLLs (each with a PDB a quarter its size).
const PACK_DLLS: usize = 8;
const PACK_DLL_BYTES: usize = 2_000_000;

pub fn run(castoff: &Path, args: &BenchArgs) -> Result<()> {
    ensure_programs(&[("time", "time"), ("curl", "curl")])?;
    ensure_nuget_tools()?;
    let nuget = NugetExe::try_get().map_err(|e| anyhow!("{e}"))?;
    // A 200 MB push takes seconds on each side: at most 3 rounds (as other cold rows).
    let push_runs = args.runs.clamp(1, 3);
    let pack_runs = args.runs.max(1);
    let project = testkit::temp_dir();
    let root = project.path();
    fs::write(root.join("VERSION"), format!("{VERSION}\n"))?;

    let big = Pushes::measure(castoff, root, "Bench.Big", BIG, push_runs)?;
    let mid = Pushes::measure(castoff, root, "Bench.Mid", MID, push_runs)?;
    let (ours_pack, theirs_pack) = pack(castoff, nuget, root, pack_runs)?;

    let ratio = big.ours_throughput() / big.curl_throughput();
    let rss_row = |what: &str, pushes: &Pushes| Row {
        what: format!("peak RSS, publish {what}"),
        castoff: format!("{:.1} MB", pushes.ours_rss_mb),
        other: format!("curl: {:.1} MB", pushes.curl_rss_mb),
        ratio: format!("{:.2}x", pushes.ours_rss_mb / pushes.curl_rss_mb),
        goal: format!("<= {RSS_GOAL_MB} MB"),
        met: pushes.ours_rss_mb <= RSS_GOAL_MB,
    };
    let push_row = |what: &str, pushes: &Pushes, goal: bool| {
        let ratio = pushes.ours_throughput() / pushes.curl_throughput();
        Row {
            what: format!("push {what} to pynuget"),
            castoff: format!("{} ({:.0} MB/s)", ms(pushes.ours.median), pushes.ours_throughput()),
            other: format!("curl -F: {} ({:.0} MB/s)", ms(pushes.curl.median), pushes.curl_throughput()),
            ratio: format!("{ratio:.2}x throughput"),
            goal: if goal { format!(">= {THROUGHPUT_GOAL}x") } else { "(reported)".into() },
            met: !goal || ratio >= THROUGHPUT_GOAL,
        }
    };
    let pack_speedup = theirs_pack.median.as_secs_f64() / ours_pack.median.as_secs_f64();
    let pack_mb = (PACK_DLLS * (PACK_DLL_BYTES + PACK_DLL_BYTES / 4)) as f64 / 1e6;
    print_table(
        &format!(
            "nuget: pynuget 0.2.5 v2 feed on loopback, NuGet.exe {} under mono; median of {push_runs} pushes \
             and {pack_runs} packs per side",
            testkit::nuget_exe::NUGET_EXE_VERSION
        ),
        &[
            push_row(&mb_label(big.bytes), &big, true),
            push_row(&mb_label(mid.bytes), &mid, false),
            Row {
                what: format!("of which before the upload: publish --dry-run, {}", mb_label(big.bytes)),
                castoff: ms(big.ours_dry.median),
                other: format!("its share of castoff's push: {:.0}%", 100.0 * secs(big.ours_dry) / secs(big.ours)),
                ratio: format!("{:.2}x curl's push", secs(big.ours_dry) / secs(big.curl)),
                goal: "(reported)".into(),
                met: true,
            },
            rss_row(&mb_label(mid.bytes), &mid),
            rss_row(&mb_label(big.bytes), &big),
            Row {
                what: format!("pack nupkg + snupkg, {PACK_DLLS} DLLs + PDBs, {pack_mb:.0} MB"),
                castoff: ms(ours_pack.median),
                other: format!("NuGet.exe pack -Symbols (mono): {}", ms(theirs_pack.median)),
                ratio: format!("{pack_speedup:.1}x faster"),
                goal: format!(">= {PACK_SPEEDUP}x faster"),
                met: pack_speedup >= PACK_SPEEDUP,
            },
        ],
    );
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let worst_rss = big.ours_rss_mb.max(mid.ours_rss_mb);
    println!();
    println!(
        "goal: push a 200 MB nupkg at >= {THROUGHPUT_GOAL}x curl's throughput: {} ({ratio:.2}x)",
        verdict(ratio >= THROUGHPUT_GOAL)
    );
    println!(
        "goal: peak RSS <= {RSS_GOAL_MB} MB for 20 MB and 200 MB packages alike: {} ({:.1} MB and {:.1} MB)",
        verdict(worst_rss <= RSS_GOAL_MB),
        mid.ours_rss_mb,
        big.ours_rss_mb
    );
    println!(
        "goal: pack >= {PACK_SPEEDUP}x faster than NuGet.exe pack: {} ({pack_speedup:.1}x)",
        verdict(pack_speedup >= PACK_SPEEDUP)
    );
    Ok(())
}

fn mb_label(bytes: u64) -> String {
    format!("{:.0} MB nupkg", bytes as f64 / 1e6)
}

/// One package size pushed by both sides.
struct Pushes {
    bytes: u64,
    ours: Timing,
    /// `castoff publish --dry-run`: the same up to the upload (config, package checks).
    ours_dry: Timing,
    curl: Timing,
    ours_rss_mb: f64,
    curl_rss_mb: f64,
}

impl Pushes {
    /// Pack `id` with a `payload`-byte DLL (untimed), then push the nupkg to fresh feeds
    /// with castoff and with curl, `runs` rounds after a warm-up.
    fn measure(castoff: &Path, root: &Path, id: &str, payload: u64, runs: usize) -> Result<Pushes> {
        let lib = root.join(format!("{id}/lib/netstandard2.0"));
        fs::create_dir_all(&lib)?;
        write_bytes(&lib.join(format!("{id}.dll")), payload as usize, Content::Random, 1)?;
        fs::write(root.join(format!("{id}/{id}.nuspec")), nuspec(id))?;
        write_config(root, id, "none", None)?;
        castoff_ok(castoff, root, "pack", &[])?;
        let nupkg = root.join(format!("dist/nuget/{id}.{VERSION}.nupkg"));
        let bytes =
            fs::metadata(&nupkg).with_context(|| format!("castoff pack did not write {}", nupkg.display()))?.len();
        eprintln!("bench nuget: {} ({bytes} bytes), {runs} pushes per side (+1 warm-up)", nupkg.display());

        let (mut ours, mut theirs, mut ours_rss, mut theirs_rss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut dry = Vec::new();
        for round in 0..=runs {
            let feed = Pynuget::start(KEY);
            write_config(root, id, "none", Some(&feed))?;
            let start = Instant::now();
            castoff_ok(castoff, root, "publish", &["--dry-run"])?;
            let dry_took = start.elapsed();
            let (ours_took, ours_kib) = measured(castoff_command(castoff, root, "publish"), root, None)?;
            expect_stored(&feed, bytes, "castoff publish")?;

            let feed = Pynuget::start(KEY);
            let (theirs_took, theirs_kib) = measured(feed.curl_push(&nupkg, KEY), root, Some("201"))?;
            expect_stored(&feed, bytes, "curl")?;
            eprintln!(
                "bench nuget: push round {round}{}: castoff {} ({ours_kib} KiB peak; dry run {}), curl {} \
                 ({theirs_kib} KiB peak)",
                if round == 0 { " (warm-up)" } else { "" },
                ms(ours_took),
                ms(dry_took),
                ms(theirs_took),
            );
            if round > 0 {
                dry.push(dry_took);
                ours.push(ours_took);
                theirs.push(theirs_took);
                ours_rss.push(ours_kib);
                theirs_rss.push(theirs_kib);
            }
        }
        let max_mb = |kib: &[u64]| kib.iter().copied().max().unwrap_or(0) as f64 * 1024.0 / 1e6;
        Ok(Pushes {
            bytes,
            ours: median(ours),
            ours_dry: median(dry),
            curl: median(theirs),
            ours_rss_mb: max_mb(&ours_rss),
            curl_rss_mb: max_mb(&theirs_rss),
        })
    }

    fn ours_throughput(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.ours.median.as_secs_f64()
    }

    fn curl_throughput(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.curl.median.as_secs_f64()
    }
}

/// castoff pack and NuGet.exe pack of the same nuspec and files, timed.
fn pack(castoff: &Path, nuget: &NugetExe, root: &Path, runs: usize) -> Result<(Timing, Timing)> {
    let id = "Bench.Pack";
    let lib = root.join(format!("{id}/lib/netstandard2.0"));
    fs::create_dir_all(&lib)?;
    for index in 0..PACK_DLLS {
        let name = format!("{id}.Part{index}");
        write_bytes(&lib.join(format!("{name}.dll")), PACK_DLL_BYTES, Content::BinaryLike, index as u64 + 10)?;
        write_bytes(&lib.join(format!("{name}.pdb")), PACK_DLL_BYTES / 4, Content::Pdb, index as u64 + 100)?;
    }
    let nuspec_path = root.join(format!("{id}/{id}.nuspec"));
    fs::write(&nuspec_path, nuspec(id))?;
    write_config(root, id, "snupkg", None)?;
    let ours = time(runs, true, || {
        castoff_ok(castoff, root, "pack", &[])?;
        Ok(())
    })?;
    for extension in ["nupkg", "snupkg"] {
        let path = root.join(format!("dist/nuget/{id}.{VERSION}.{extension}"));
        if !path.is_file() {
            bail!("castoff pack wrote no {}", path.display());
        }
    }
    let work = testkit::temp_dir();
    let out = root.join("dist/nuget-exe");
    let theirs = time(runs, true, || {
        let created = nuget.pack(&nuspec_path, &out, true, work.path()).map_err(|e| anyhow!("{e}"))?;
        match created.len() {
            2 => Ok(()),
            _ => bail!("NuGet.exe pack made {created:?}"),
        }
    })?;
    Ok((ours, theirs))
}

/// `<id>` with `lib/**` as its files, relative to the nuspec (as NuGet.exe and castoff read it).
fn nuspec(id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  <metadata>\n    \
         <id>{id}</id>\n    <version>{VERSION}</version>\n    <authors>bench</authors>\n    \
         <description>castoff benchmark package {id}</description>\n  </metadata>\n  \
         <files>\n    <file src=\"lib/**\" target=\"lib\" />\n  </files>\n</package>\n"
    )
}

/// castoff.toml with the one package `id` and, when given, `feed` as a v2 feed.
fn write_config(root: &Path, id: &str, symbols: &str, feed: Option<&Pynuget>) -> Result<()> {
    let mut text = format!("[[package]]\nnuspec = \"{id}/{id}.nuspec\"\nsymbols = \"{symbols}\"\n");
    if let Some(feed) = feed {
        text.push_str(&format!(
            "\n[[feed]]\nname = \"pynuget\"\nurl = \"{}\"\nprotocol = \"v2\"\napi_key_env = \"{KEY_ENV}\"\n",
            feed.url()
        ));
    }
    fs::write(root.join("castoff.toml"), text).context("writing castoff.toml")
}

fn castoff_command(castoff: &Path, root: &Path, subcommand: &str) -> Command {
    let mut command = Command::new(castoff);
    command.arg(subcommand).current_dir(root).env(KEY_ENV, KEY);
    command
}

/// `castoff SUBCOMMAND ARGS` in `root`, asserted to exit 0.
fn castoff_ok(castoff: &Path, root: &Path, subcommand: &str, args: &[&str]) -> Result<()> {
    let mut command = castoff_command(castoff, root, subcommand);
    command.args(args);
    let out = command.output().with_context(|| format!("running castoff {subcommand}"))?;
    if !out.status.success() {
        bail!(
            "castoff {subcommand} failed ({}); the bench needs a working `castoff pack` and `castoff publish` \
             ([[package]] nuspec/symbols, [[feed]] protocol = \"v2\"):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Run `command` under GNU time: its wall time (measured here, around time's own
/// negligible fork) and its peak RSS in KiB. Fails unless it exits 0 and, when given,
/// printed `expect_stdout` (curl's HTTP status).
fn measured(command: Command, dir: &Path, expect_stdout: Option<&str>) -> Result<(Duration, u64)> {
    let report = dir.join(".bench-time");
    let mut timed = Command::new("time");
    timed.arg("--format=%M").arg("--output").arg(&report).arg(command.get_program()).args(command.get_args());
    if let Some(cwd) = command.get_current_dir() {
        timed.current_dir(cwd);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(name, value),
            None => timed.env_remove(name),
        };
    }
    let start = Instant::now();
    let out = timed.output().with_context(|| format!("running {command:?} under time"))?;
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || expect_stdout.is_some_and(|expected| stdout.trim() != expected) {
        bail!("{command:?} failed ({}):\n{stdout}{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    let kib = fs::read_to_string(&report)?
        .lines()
        .filter_map(|line| line.trim().parse::<u64>().ok())
        .next_back()
        .with_context(|| format!("GNU time wrote no peak RSS to {}", report.display()))?;
    Ok((took, kib))
}

/// The feed stored exactly one package, of `bytes` bytes.
fn expect_stored(feed: &Pynuget, bytes: u64, who: &str) -> Result<()> {
    let files: Vec<PathBuf> = feed.package_files();
    let sizes: Vec<u64> = files.iter().filter_map(|f| fs::metadata(f).ok()).map(|m| m.len()).collect();
    match sizes.as_slice() {
        [size] if *size == bytes => Ok(()),
        _ => bail!(
            "after {who}, pynuget holds {files:?} ({sizes:?} bytes), not one {bytes}-byte package; requests: {:?}",
            feed.requests()
        ),
    }
}

fn secs(timing: Timing) -> f64 {
    timing.median.as_secs_f64()
}

fn median(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    Timing { median: samples[samples.len() / 2] }
}

#[derive(Clone, Copy)]
enum Content {
    /// Incompressible: the size on the wire is the size of the file.
    Random,
    /// Half random 4 KiB blocks, half from a small vocabulary (as the build bench's).
    BinaryLike,
    /// A portable PDB's "BSJB" signature, then binary-like bytes.
    Pdb,
}

/// `size` deterministic bytes of `content` (xorshift from `seed`) into `path`.
fn write_bytes(path: &Path, size: usize, content: Content, seed: u64) -> Result<()> {
    let mut data = BinaryLike::new(seed);
    let mut file = std::io::BufWriter::new(fs::File::create(path)?);
    if matches!(content, Content::Pdb) {
        file.write_all(b"BSJB")?;
    }
    let mut written = if matches!(content, Content::Pdb) { 4 } else { 0 };
    let mut block = Vec::with_capacity(4096);
    while written < size {
        block.clear();
        data.block(matches!(content, Content::Random), &mut block);
        let take = block.len().min(size - written);
        file.write_all(&block[..take])?;
        written += take;
    }
    file.flush()?;
    Ok(())
}
