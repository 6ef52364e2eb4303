//! `cargo xtask release`: castoff releasing itself through the library API, exactly as
//! a project's own xtask does (`castoff init --xtask` writes the same shape).

use anyhow::{Context, Result};
use castoff::release::render::{OutputStyle, Renderer};
use castoff::{BumpChoice, Project, Release, ReleaseOptions, StepKind};
use clap::Args;

#[derive(Args)]
pub struct ReleaseArgs {
    /// auto, major, minor, patch or none.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(BumpChoice::NAMES))]
    bump: String,
    /// Print the plan with every command; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run only this step.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(StepKind::NAMES))]
    only: Option<String>,
    /// Push the release commit and tag.
    #[arg(long)]
    git_push: bool,
    /// One JSON object per step and a final result.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ReleaseArgs) -> Result<()> {
    let root = crate::workspace_root();
    let project =
        Project::open(&root, None).with_context(|| format!("opening the castoff project at {}", root.display()))?;
    let options = ReleaseOptions {
        bump: BumpChoice::parse(&args.bump).unwrap_or_default(),
        dry_run: args.dry_run,
        only: args.only.as_deref().map(str::parse).transpose().map_err(anyhow::Error::msg)?,
        git_push: args.git_push,
        ..ReleaseOptions::default()
    };
    let release = Release::plan(&project, options).context("planning castoff's release")?;
    let renderer = Renderer::new(OutputStyle { json: args.json, ..OutputStyle::default() });
    renderer.plan(release.steps()).context("printing the plan")?;
    let outcome = release.execute(&renderer).context("releasing castoff")?;
    renderer.finish(&outcome).context("printing the summary")?;
    Ok(())
}
