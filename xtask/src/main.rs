//! castoff's own automation, in Rust so it runs wherever cargo does:
//! `cargo xtask test | lint | bump <level> | release | bench <name>`.

#![allow(clippy::disallowed_methods)] // automation runs cargo, apt-get and the tools it measures

mod bench;
mod bump;
mod fuzz;
mod prereqs;
mod release;
mod test;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "castoff's development tasks")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the tests need, then run the whole test suite (what CI runs).
    Test {
        /// Extra arguments passed to `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// cargo fmt --check and cargo clippy --all-targets -D warnings.
    Lint,
    /// Bump castoff's own VERSION through the library API (not a subprocess).
    Bump(bump::BumpArgs),
    /// Release castoff itself through the library API (`--dry-run` to see the plan).
    Release(release::ReleaseArgs),
    /// Measure castoff against the tools users would otherwise run, side by side.
    Bench(bench::BenchArgs),
    /// Fuzz the parsers (cargo-fuzz, nightly) for `--time` seconds per target; crashes go to fuzz/regressions/.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> Result<()> {
    match Xtask::parse().task {
        Task::Test { args } => test::run(&args),
        Task::Lint => test::lint(),
        Task::Bump(args) => bump::run(args),
        Task::Release(args) => release::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Fuzz(args) => fuzz::run(args),
    }
}

/// The workspace root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}
