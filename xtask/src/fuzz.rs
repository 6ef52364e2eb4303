//! `cargo xtask fuzz [--time SECS] [TARGET]`: libFuzzer (cargo-fuzz, nightly) on each
//! target in `fuzz/fuzz_targets/`, in turn, for SECS seconds each.
//!
//! Every crash libFuzzer writes (a panic, a property that failed, a timeout, an
//! out-of-memory) is copied into `fuzz/regressions/<target>/`, where
//! `tests/fuzz_regressions.rs` runs it on every `cargo test` (stable, milliseconds), so
//! it stays fixed once fixed. This task is never part of `cargo xtask test`.
//!
//! New inputs libFuzzer finds go to a scratch corpus in `fuzz/target/corpus/<target>/`
//! (kept between runs, not committed); `fuzz/corpus/<target>/` holds only the
//! hand-picked seeds. Each run's full output is in `fuzz/target/logs/<target>.log`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::builder::PossibleValuesParser;
use clap::Args;

/// The fuzz targets, as named in fuzz/Cargo.toml and `castoff::fuzzing`.
pub const TARGETS: &[&str] = &["version_file", "config", "reference", "platform", "nuspec", "www_authenticate"];

/// A target is fuzzed again after a crash, for the time left, until it crashes this
/// often or crashes the same way twice.
const MAX_CRASHES: usize = 3;

/// libFuzzer's limit on one input, in seconds: a parser this slow on one input is a bug.
const INPUT_TIMEOUT: u64 = 10;

#[derive(Args)]
pub struct FuzzArgs {
    /// The target to fuzz (default: every target, in turn).
    #[arg(value_parser = PossibleValuesParser::new(TARGETS))]
    target: Option<String>,
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 60)]
    time: u64,
}

/// What one target's runs came to.
struct Outcome {
    target: &'static str,
    runs: u64,
    seconds: f64,
    crashes: Vec<Crash>,
}

struct Crash {
    /// Where the input was copied, relative to the workspace root.
    regression: PathBuf,
    /// The panic message (or libFuzzer's error line), for the report.
    summary: String,
}

pub fn run(args: FuzzArgs) -> Result<()> {
    let root = crate::workspace_root();
    ensure_nightly()?;
    ensure_cargo_fuzz()?;
    let targets: Vec<&'static str> = match &args.target {
        Some(target) => TARGETS.iter().copied().filter(|t| t == target).collect(),
        None => TARGETS.to_vec(),
    };
    eprintln!("fuzz: building {} target(s) (nightly, ASan, release with debug assertions)", targets.len());
    let build: Vec<&str> = std::iter::once("build").chain(args.target.as_deref()).collect();
    cargo_fuzz(&root, &build).run().context("cargo +nightly fuzz build failed")?;
    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(fuzz_target(&root, target, args.time)?);
    }
    report(&outcomes);
    let crashes: usize = outcomes.iter().map(|o| o.crashes.len()).sum();
    if crashes > 0 {
        bail!(
            "{crashes} crash(es) found and copied to fuzz/regressions/; \
             `cargo test --test integration fuzz_regressions` fails until they are fixed"
        );
    }
    Ok(())
}

/// `rustup toolchain list` names a nightly, or the task cannot run.
fn ensure_nightly() -> Result<()> {
    let list = duct::cmd!("rustup", "toolchain", "list")
        .read()
        .context("`rustup toolchain list` failed; cargo-fuzz needs rustup's nightly toolchain")?;
    if !list.lines().any(|line| line.starts_with("nightly")) {
        bail!(
            "the nightly toolchain is not installed, and cargo-fuzz needs it (libFuzzer's \
             instrumentation uses -Z flags): run `rustup toolchain install nightly`, then \
             `cargo xtask fuzz` again"
        );
    }
    Ok(())
}

/// Install cargo-fuzz once, when `cargo fuzz` is not there.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = duct::cmd!("cargo", "fuzz", "--version").stdout_null().stderr_null().unchecked().run();
    if present.is_ok_and(|out| out.status.success()) {
        return Ok(());
    }
    eprintln!("fuzz: cargo-fuzz is missing; installing it (cargo install cargo-fuzz --locked)");
    duct::cmd!("cargo", "install", "cargo-fuzz", "--locked").run().context("cargo install cargo-fuzz failed")?;
    Ok(())
}

/// `cargo +nightly fuzz <args>` in the workspace root (cargo-fuzz finds `fuzz/`).
fn cargo_fuzz(root: &Path, args: &[&str]) -> duct::Expression {
    let mut all = vec!["+nightly", "fuzz"];
    all.extend_from_slice(args);
    // Let `+nightly` choose the toolchain even when this xtask runs under another.
    duct::cmd("cargo", all).dir(root).env_remove("RUSTUP_TOOLCHAIN").env("RUST_BACKTRACE", "1")
}

/// Fuzz one target for `seconds`, going on after a crash for the time left.
fn fuzz_target(root: &Path, target: &'static str, seconds: u64) -> Result<Outcome> {
    let fuzz = root.join("fuzz");
    let scratch = fuzz.join("target").join("corpus").join(target);
    let seeds = fuzz.join("corpus").join(target);
    let logs = fuzz.join("target").join("logs");
    fs::create_dir_all(&scratch).with_context(|| format!("create {}", scratch.display()))?;
    fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
    let log = logs.join(format!("{target}.log"));
    let budget = Duration::from_secs(seconds);
    let started = Instant::now();
    let mut outcome = Outcome { target, runs: 0, seconds: 0.0, crashes: Vec::new() };
    let mut seen: Vec<String> = Vec::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let left = budget.saturating_sub(started.elapsed()).as_secs_f64().round().max(1.0) as u64;
        eprintln!("fuzz: {target}: {left} s (log: {})", shown(root, &log));
        let (scratch, seeds) = (scratch.to_string_lossy(), seeds.to_string_lossy());
        let (max_time, timeout) = (format!("-max_total_time={left}"), format!("-timeout={INPUT_TIMEOUT}"));
        let this_log = logs.join(format!("{target}.{attempt}.log"));
        let args = ["run", target, &scratch, &seeds, "--", &max_time, &timeout, "-print_final_stats=1"];
        let status = cargo_fuzz(root, &args)
            .stderr_to_stdout()
            .stdout_path(&this_log)
            .unchecked()
            .run()
            .with_context(|| format!("cannot run cargo +nightly fuzz run {target}"))?
            .status;
        let text = fs::read_to_string(&this_log).with_context(|| format!("read {}", this_log.display()))?;
        append(&log, &text, attempt == 1)?;
        let _ = fs::remove_file(&this_log);
        outcome.runs += runs(&text);
        if status.success() {
            break;
        }
        let artifacts = artifacts(&text);
        if artifacts.is_empty() {
            bail!(
                "cargo +nightly fuzz run {target} failed without a crash artifact ({status}); the end of its output:\n{}",
                tail(&text, 30)
            );
        }
        let (key, summary) = crash_summary(root, &text);
        let repeated = seen.contains(&key);
        for artifact in artifacts {
            let source = root.join(&artifact);
            let source = if source.exists() { source } else { PathBuf::from(&artifact) };
            let name = source.file_name().context("artifact without a file name")?;
            let dir = fuzz.join("regressions").join(target);
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            let regression = dir.join(name);
            if !repeated {
                fs::copy(&source, &regression)
                    .with_context(|| format!("copy {} to {}", source.display(), regression.display()))?;
                let input = preview(&fs::read(&source).unwrap_or_default());
                let summary = format!("input: {input}\n{summary}");
                eprintln!("fuzz: {target}: CRASH, copied to {}\n{summary}", shown(root, &regression));
                outcome.crashes.push(Crash { regression: shown(root, &regression).into(), summary });
            }
        }
        seen.push(key);
        if repeated || outcome.crashes.len() >= MAX_CRASHES || started.elapsed() + Duration::from_secs(5) >= budget {
            break;
        }
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Executions, from libFuzzer's final stats, else its `Done N runs` line, else the last
/// status line (`#N ...`) before a crash.
fn runs(log: &str) -> u64 {
    let number = |s: &str| s.trim().split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok());
    if let Some(n) = log.lines().rev().find_map(|l| l.strip_prefix("stat::number_of_executed_units:").and_then(number))
    {
        return n;
    }
    if let Some(n) = log.lines().rev().find_map(|l| l.strip_prefix("Done ").and_then(number)) {
        return n;
    }
    log.lines().rev().find_map(|l| l.strip_prefix('#').and_then(number)).unwrap_or(0)
}

/// The files libFuzzer says it wrote a crashing input to.
fn artifacts(log: &str) -> Vec<String> {
    let mut found: Vec<String> = log
        .lines()
        .filter_map(|line| line.split_once("Test unit written to ").map(|(_, path)| path.trim().to_string()))
        .collect();
    found.dedup();
    found
}

/// The panic (location, message and the frames in this workspace's code) or
/// libFuzzer's error line, and a key that is the same for the same crash: the panic's
/// location and message, without the thread name and id.
fn crash_summary(root: &Path, log: &str) -> (String, String) {
    let lines: Vec<&str> = log.lines().collect();
    let Some(at) = lines.iter().position(|line| line.contains("panicked at ")) else {
        let line = lines
            .iter()
            .find(|line| line.contains("ERROR: libFuzzer") || line.contains("ERROR: AddressSanitizer"))
            .map_or("no panic message; see the log", |line| line.trim());
        return (line.to_string(), line.to_string());
    };
    let location = lines[at].split_once("panicked at ").map_or(lines[at], |(_, rest)| rest);
    let message: Vec<&str> = lines[at + 1..]
        .iter()
        .take(12)
        .take_while(|line| {
            !line.starts_with("stack backtrace:") && !line.starts_with("note:") && !line.starts_with("==")
        })
        .copied()
        .collect();
    let key = format!("{location}\n{}", message.join("\n"));
    // Backtrace frames are `N: function` followed by `at path:line:col`; this
    // workspace's own frames have paths relative to it (`./src/...`, `./fuzz/...`).
    let mut frames = Vec::new();
    for pair in lines[at..].windows(2).take(200) {
        let (function, place) = (pair[0].trim(), pair[1].trim());
        let ours = |place: &str| place.split(':').next().is_some_and(|file| root.join(file).is_file());
        if let (Some((_, function)), Some(place)) = (function.split_once(": "), place.strip_prefix("at ./")) {
            if ours(place) {
                frames.push(format!("    {function} ({place})"));
            }
        }
        if frames.len() == 8 || pair[1].starts_with("==") {
            break;
        }
    }
    let mut text = format!("panicked at {location}\n{}", message.join("\n"));
    if !frames.is_empty() {
        text.push_str(&format!("\n  in:\n{}", frames.join("\n")));
    }
    (key, text)
}

fn append(log: &Path, text: &str, fresh: bool) -> Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!fresh)
        .truncate(fresh)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("write {}", log.display()))
}

/// The crashing input as an escaped string, shortened.
fn preview(bytes: &[u8]) -> String {
    const SHOWN: usize = 300;
    let text = format!("{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]));
    match bytes.len() > SHOWN {
        true => format!("{text}... ({} bytes)", bytes.len()),
        false => text,
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

fn report(outcomes: &[Outcome]) {
    println!("\nfuzz summary:");
    println!("  {:<18} {:>12} {:>8} {:>8}", "target", "runs", "seconds", "crashes");
    for o in outcomes {
        println!("  {:<18} {:>12} {:>8.0} {:>8}", o.target, o.runs, o.seconds, o.crashes.len());
    }
    for o in outcomes {
        for crash in &o.crashes {
            println!("\n{}: {}\n{}", o.target, crash.regression.display(), crash.summary);
        }
    }
}
