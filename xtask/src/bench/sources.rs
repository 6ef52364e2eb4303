//! Source tracking against git and b3sum on a generated tree (default 100,000 files,
//! about 1 GiB), kept under target/ so repeated runs skip generating it.
//!
//! Both sides run with a warm page cache: "cold" below means castoff has no stat cache
//! (it walks and hashes everything), not that the kernel dropped its caches.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::measure::{ms, print_table, time, Row};
use super::BenchArgs;
use crate::prereqs::ensure_programs;

const DIRS_PER_LEVEL: usize = 100;

pub fn run(castoff: &Path, args: &BenchArgs) -> Result<()> {
    ensure_programs(&[("git", "git"), ("b3sum", "b3sum")])?;
    let tree = prepare_tree(args.files, args.mib)?;
    let run_castoff = |cli: &[&str]| -> Result<String> {
        duct::cmd(castoff, cli).dir(&tree).stderr_null().unchecked().read().context("running castoff")
    };
    let git_status = || -> Result<String> {
        duct::cmd!("git", "status", "--porcelain").dir(&tree).read().context("running git status")
    };
    let total_bytes = tree_bytes(&tree.join("src"))?;
    let mut rows = Vec::new();

    // Cold full fingerprint: no stat cache, every file walked and hashed.
    let cold_runs = args.runs.clamp(1, 3);
    let cold = time(cold_runs, false, || {
        let _ = fs::remove_dir_all(tree.join(".castoff/cache"));
        run_castoff(&["status"]).map(drop)
    })?;
    let b3 = time(cold_runs, true, || {
        duct::cmd!("sh", "-c", "find src -type f -print0 | xargs -0 b3sum > /dev/null")
            .dir(&tree)
            .run()
            .map(drop)
            .context("running b3sum")
    })?;
    let mib = total_bytes as f64 / (1 << 20) as f64;
    let (ours, theirs) = (mib / cold.median.as_secs_f64(), mib / b3.median.as_secs_f64());
    rows.push(Row {
        what: format!("cold full fingerprint, {} files, {mib:.0} MiB (throughput)", args.files),
        castoff: format!("{ours:.0} MiB/s ({})", ms(cold.median)),
        other: format!("find + xargs b3sum: {theirs:.0} MiB/s ({})", ms(b3.median)),
        ratio: format!("{:.2}x throughput", ours / theirs),
        goal: ">= 1.5x".into(),
        met: ours / theirs >= 1.5,
    });

    // Warm check of an unchanged tree: metadata only. Stamps younger than castoff's racy
    // margin (1.1 s: one coarse filesystem tick) are re-hashed rather than trusted, and
    // the reset above may have just rewritten files, so let them age first.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    run_castoff(&["status"])?; // leaves a fresh stat cache
    let proof = run_castoff(&["--json", "status"])?;
    if !proof.contains("\"hashed\":0") || !proof.contains("\"walked\":false") {
        bail!("the warm check read file content or walked: {proof}");
    }
    let warm = time(args.runs, true, || {
        let out = duct::cmd(castoff, ["status", "--check"]).dir(&tree).stderr_null().unchecked().run()?;
        match out.status.code() {
            Some(0) => Ok(()),
            other => bail!("castoff status --check exited {other:?} on an unchanged tree"),
        }
    })?;
    let git_warm = time(args.runs, true, || git_status().map(drop))?;
    let what = "unchanged tree: `castoff status --check`, warm stat cache (0 files read)";
    rows.push(Row::time(what, warm, "git status --porcelain", git_warm, 0.5));

    // One edited file.
    let edited = &file_path(args.files / 2);
    let original = fs::read(tree.join(edited)).with_context(|| format!("reading {edited}"))?;
    let mut changed = original.clone();
    changed[0] ^= 0xff;
    fs::write(tree.join(edited), &changed)?;
    let result = (|| -> Result<Row> {
        let named = run_castoff(&["bump", "auto", "--dry-run"])?;
        if !named.contains(edited) {
            bail!("castoff bump auto --dry-run did not name {edited}: {named}");
        }
        let one = time(args.runs, true, || run_castoff(&["bump", "auto", "--dry-run"]).map(drop))?;
        let git_one = time(args.runs, true, || git_status().map(drop))?;
        let what = "one edited file: `castoff bump auto --dry-run` names it";
        Ok(Row::time(what, one, "git status --porcelain", git_one, 1.0))
    })();
    fs::write(tree.join(edited), &original)?;
    rows.push(result?);

    // Start-up.
    let startup = time(200, true, || run_castoff(&["version"]).map(drop))?;
    let cat = time(200, true, || duct::cmd!("cat", "VERSION").dir(&tree).read().map(drop).context("cat"))?;
    rows.push(Row {
        what: "`castoff version` start-up (median of 200)".into(),
        castoff: ms(startup.median),
        other: format!("cat VERSION (process floor): {}", ms(cat.median)),
        ratio: format!("{:.2}x time", startup.median.as_secs_f64() / cat.median.as_secs_f64()),
        goal: "median <= 5 ms".into(),
        met: startup.median.as_secs_f64() <= 0.005,
    });

    print_table(
        &format!("sources: {} files, {mib:.0} MiB, {} cores, median of {} runs", args.files, cores(), args.runs),
        &rows,
    );
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Generate (once) a git repo with `files` pseudo-random files under src/ totalling about
/// `mib` MiB, two directory levels deep, committed, with castoff initialised.
fn prepare_tree(files: usize, mib: u64) -> Result<PathBuf> {
    let tree = crate::workspace_root().join(format!("target/xtask-bench/sources-{files}-{mib}"));
    let ready = tree.with_extension("ready");
    if ready.exists() {
        // Back to the committed state, in case an earlier run was interrupted.
        duct::cmd!("git", "checkout", "--quiet", "--", "src").dir(&tree).run().context("resetting the tree")?;
        return Ok(tree);
    }
    let _ = fs::remove_dir_all(&tree);
    let _ = fs::remove_file(&ready);
    eprintln!("bench: generating {files} files, {mib} MiB in {} (once)", tree.display());
    let average = (mib << 20) / files.max(1) as u64;
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut buffer = Vec::new();
    for index in 0..files {
        let path = tree.join(file_path(index));
        if index % DIRS_PER_LEVEL == 0 {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
        }
        // Sizes spread between half and one and a half times the average.
        let size = (average / 2 + next() % average.max(1)) as usize;
        buffer.clear();
        while buffer.len() < size {
            buffer.extend_from_slice(&next().to_le_bytes());
        }
        buffer.truncate(size);
        let mut file = fs::File::create(&path)?;
        file.write_all(&buffer)?;
    }
    fs::write(tree.join("VERSION"), "1.0.0\n")?;
    fs::write(tree.join("castoff.toml"), "[version]\nsources = [\"src/**\"]\n")?;
    let git = |args: &[&str]| duct::cmd("git", args).dir(&tree).stdout_null().run().map(drop);
    git(&["init", "-q"])?;
    git(&["-c", "core.looseCompression=0", "add", "-A"])?;
    git(&["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "tree"])?;
    let castoff = crate::workspace_root().join("target/release/castoff");
    duct::cmd(castoff, ["bump", "auto"]).dir(&tree).stdout_null().run().context("recording the baseline")?;
    git(&["add", "-A"])?;
    git(&["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "baseline"])?;
    fs::write(&ready, "")?;
    Ok(tree)
}

/// Where the generator puts file number `index`: 100 files per directory, two levels.
fn file_path(index: usize) -> String {
    let per = DIRS_PER_LEVEL;
    format!("src/d{:03}/d{:03}/f{:04}", index / (per * per), index / per % per, index % per)
}

fn tree_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { tree_bytes(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}
