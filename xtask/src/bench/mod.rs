//! `cargo xtask bench [GROUP]`: castoff measured side by side with the tool a user would
//! otherwise run, in one run, reported as ratios. Nothing here asserts a time; the
//! figures go into the issue notes.

mod build;
mod data;
mod manifest;
mod measure;
mod nuget;
mod release;
mod sources;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct BenchArgs {
    /// Which benchmark group to run (default: all).
    group: Option<Group>,
    /// Files in the generated source tree.
    #[arg(long, default_value_t = 100_000)]
    files: usize,
    /// Total size of the generated source tree, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: u64,
    /// Timed runs per measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// Source tracking: status, fingerprint, edited file, start-up.
    Sources,
    /// Multi-arch manifests against the docker manifest CLI.
    Manifest,
    /// The native builder against buildah: 4 platforms × a 20 MB file, cold and unchanged.
    Build,
    /// NuGet: push to pynuget against curl, peak RSS, pack against NuGet.exe (mono).
    Nuget,
    /// `castoff release` end to end: examples/app against the separate commands, and its
    /// overhead beyond the builds and uploads on a registry and pynuget.
    Release,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let castoff = build_castoff()?;
    if args.group.is_none() || args.group == Some(Group::Sources) {
        sources::run(&castoff, &args)?;
    }
    if args.group.is_none() || args.group == Some(Group::Manifest) {
        manifest::run(&castoff, &args)?;
    }
    if args.group.is_none() || args.group == Some(Group::Build) {
        build::run(&castoff, &args)?;
    }
    if args.group.is_none() || args.group == Some(Group::Nuget) {
        nuget::run(&castoff, &args)?;
    }
    if args.group.is_none() || args.group == Some(Group::Release) {
        release::run(&castoff, &args)?;
    }
    Ok(())
}

/// Build the release binary the benchmarks time.
fn build_castoff() -> Result<std::path::PathBuf> {
    let root = crate::workspace_root();
    duct::cmd!("cargo", "build", "--release", "--quiet", "--package", "castoff", "--bin", "castoff")
        .dir(&root)
        .run()
        .context("building castoff in release mode")?;
    Ok(root.join("target/release/castoff"))
}
