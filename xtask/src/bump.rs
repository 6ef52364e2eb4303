//! `cargo xtask bump <level>`: the developer bump for castoff's own VERSION, through the
//! same library API a project's xtask uses.

use anyhow::{Context, Result};
use castoff::{BumpRequest, Level, Project, WriteOptions};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct BumpArgs {
    level: BumpLevel,
    /// Start or advance a prerelease, e.g. rc.
    #[arg(long)]
    pre: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BumpLevel {
    Major,
    Minor,
    Patch,
    Release,
    Auto,
}

pub fn run(args: BumpArgs) -> Result<()> {
    let level = |level| BumpRequest::Level { level, pre: args.pre.clone() };
    let request = match args.level {
        BumpLevel::Major => level(Level::Major),
        BumpLevel::Minor => level(Level::Minor),
        BumpLevel::Patch => level(Level::Patch),
        BumpLevel::Release => BumpRequest::Release,
        BumpLevel::Auto => BumpRequest::Auto,
    };
    let root = crate::workspace_root();
    let project =
        Project::open(&root, None).with_context(|| format!("opening the castoff project at {}", root.display()))?;
    let outcome =
        project.bump(&request, WriteOptions { dry_run: args.dry_run }).context("bumping castoff's VERSION")?;
    for warning in &outcome.warnings {
        eprintln!("warning: {warning}");
    }
    for (letter, path) in outcome.changes.listed() {
        println!("{letter} {path}");
    }
    let verb = if outcome.dry_run { "would bump" } else { "bumped" };
    match outcome.bumped {
        true => println!("{verb} {} → {} ({})", outcome.previous, outcome.version, outcome.reason),
        false => println!("{} unchanged: {}", outcome.version, outcome.reason),
    }
    Ok(())
}
