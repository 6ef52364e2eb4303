//! `cargo xtask bump <level>`: the developer bump for castoff's own VERSION, through the
//! same library API a project's xtask uses.

use anyhow::{Context, Result};
use castoff::{BumpRequest, Project, WriteOptions};
use clap::Args;

#[derive(Args)]
pub struct BumpArgs {
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(BumpRequest::LEVELS))]
    level: String,
    /// Start or advance a prerelease, e.g. rc.
    #[arg(long)]
    pre: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: BumpArgs) -> Result<()> {
    let request = BumpRequest::parse(&args.level, args.pre).map_err(anyhow::Error::msg)?;
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
    println!("{}", outcome.summary());
    Ok(())
}
