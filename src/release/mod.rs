//! `castoff release`: the whole flow from castoff.toml, planned first, then executed
//! step by step with every result journalled so a failed or killed release continues
//! where it stopped.
//!
//! - [`plan`] decides, without network I/O and without changing a file, which steps
//!   run and what each would do (the same commands and URLs a dry run prints).
//! - [`preflight`] checks every tool, credential and feed the plan needs and reports
//!   everything missing at once, before the first step.
//! - [`execute`] runs the steps in order; each first asks whether its result already
//!   exists (journal + a check against the registry, feed or disk) and records "already
//!   done" instead of doing it twice.
//! - [`journal`] is `.castoff/journal/<version>.json`, rewritten atomically after each
//!   step; it is what makes a re-run a continuation, and what keeps VERSION from being
//!   bumped twice.
//!
//! The library API ([`Release`]) is what `castoff release` and a project's own
//! `cargo xtask release` both call.

pub mod events;
mod execute;
mod git_step;
pub mod journal;
mod plan;
mod preflight;
pub mod render;
mod steps;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use events::{Event, EventSink, Silent, StepStatus};
pub use plan::{Plan, PlannedStep, StepAction};

use crate::error::Result;
use crate::project::Project;
use crate::version::Level;

/// The steps of a release, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Bump,
    Build,
    Manifest,
    Pack,
    Publish,
    Git,
}

impl StepKind {
    pub const ALL: [StepKind; 6] =
        [StepKind::Bump, StepKind::Build, StepKind::Manifest, StepKind::Pack, StepKind::Publish, StepKind::Git];
    pub const NAMES: [&'static str; 6] = ["bump", "build", "manifest", "pack", "publish", "git"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StepKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        StepKind::ALL
            .into_iter()
            .find(|step| step.name() == s)
            .ok_or_else(|| format!("`{s}` is not a release step; the steps are {}", StepKind::NAMES.join(", ")))
    }
}

/// How the release picks its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BumpChoice {
    /// Patch, only when tracked sources changed since the baseline (`castoff bump auto`).
    #[default]
    Auto,
    /// Always raise this part.
    Level(Level),
    /// Release the version VERSION holds.
    None,
}

impl BumpChoice {
    pub const NAMES: [&'static str; 5] = ["auto", "major", "minor", "patch", "none"];

    pub fn parse(s: &str) -> Option<BumpChoice> {
        Some(match s {
            "auto" => BumpChoice::Auto,
            "major" => BumpChoice::Level(Level::Major),
            "minor" => BumpChoice::Level(Level::Minor),
            "patch" => BumpChoice::Level(Level::Patch),
            "none" => BumpChoice::None,
            _ => return None,
        })
    }
}

impl fmt::Display for BumpChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BumpChoice::Auto => f.write_str("auto"),
            BumpChoice::None => f.write_str("none"),
            BumpChoice::Level(level) => crate::version::BumpRequest::Level { level: *level, pre: None }.fmt(f),
        }
    }
}

/// What the caller asks of a release.
#[derive(Debug, Clone, Default)]
pub struct ReleaseOptions {
    pub bump: BumpChoice,
    /// Print the plan with every command and URL; change nothing.
    pub dry_run: bool,
    /// Run this step and the ones after it; earlier ones are taken as done.
    pub from: Option<StepKind>,
    /// Run only this step.
    pub only: Option<StepKind>,
    /// Push the release commit and tag (only with `[release] git = true`).
    pub git_push: bool,
    /// Platforms built at once (default: one per core).
    pub jobs: Option<usize>,
}

/// A planned release, ready to run: `Release::plan(...)?.execute(&sink)`.
pub struct Release<'p> {
    project: &'p Project,
    options: ReleaseOptions,
    plan: Plan,
    preflighted: bool,
}

impl<'p> Release<'p> {
    /// Plan a release of `project`: no network I/O, no file changed.
    pub fn plan(project: &'p Project, options: ReleaseOptions) -> Result<Release<'p>> {
        let plan = plan::plan(project, &options)?;
        Ok(Release { project, options, plan, preflighted: false })
    }

    /// Check every tool, credential and feed the plan needs, reporting all that is
    /// missing in one error. Reads only. [`Release::execute`] runs it when the caller
    /// has not (callers run it first to print nothing but the error when it fails).
    pub fn preflight(&mut self) -> Result<()> {
        execute::preflight(self.project, &self.options, &self.plan)?;
        self.preflighted = true;
        Ok(())
    }

    /// The steps, as `castoff plan` prints them.
    pub fn steps(&self) -> &Plan {
        &self.plan
    }

    /// Preflight, then run every planned step (or, in a dry run, report them).
    pub fn execute(mut self, sink: &dyn EventSink) -> Result<ReleaseOutcome> {
        if !self.preflighted {
            self.preflight()?;
        }
        execute::execute(self.project, &self.options, self.plan, sink)
    }
}

/// What a release did, for the summary table and the final `--json` object.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseOutcome {
    pub version: String,
    pub previous: String,
    pub dry_run: bool,
    /// The journal, relative to the project root (none in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// The release continued an earlier, unfinished run.
    pub resumed: bool,
    pub steps: Vec<StepReport>,
    /// Release tag → index digest.
    pub tags: Vec<TagReport>,
    /// Package file → feed → what happened.
    pub packages: Vec<PackageReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: StepKind,
    pub status: StepStatus,
    pub seconds: f64,
    pub summary: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    pub reference: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageReport {
    pub file: String,
    pub feed: String,
    pub outcome: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip_in_release_order() {
        for (step, name) in StepKind::ALL.into_iter().zip(StepKind::NAMES) {
            assert_eq!(step.name(), name);
            assert_eq!(name.parse::<StepKind>(), Ok(step));
        }
        assert!(StepKind::ALL.windows(2).all(|pair| pair[0] < pair[1]), "ordered as they run");
        let error = "deploy".parse::<StepKind>().unwrap_err();
        assert!(error.contains("bump, build, manifest, pack, publish, git"), "{error}");
    }

    #[test]
    fn from_and_only_select_steps() {
        let only = ReleaseOptions { only: Some(StepKind::Pack), ..ReleaseOptions::default() };
        let from = ReleaseOptions { from: Some(StepKind::Manifest), ..ReleaseOptions::default() };
        let picked = |options: &ReleaseOptions| -> Vec<StepKind> {
            StepKind::ALL.into_iter().filter(|step| plan::selected(options, *step)).collect()
        };
        assert_eq!(picked(&only), [StepKind::Pack]);
        assert_eq!(picked(&from), [StepKind::Manifest, StepKind::Pack, StepKind::Publish, StepKind::Git]);
        assert_eq!(picked(&ReleaseOptions::default()), StepKind::ALL);
    }

    #[test]
    fn bump_choices_parse_and_print() {
        for name in BumpChoice::NAMES {
            assert_eq!(BumpChoice::parse(name).map(|c| c.to_string()).as_deref(), Some(name));
        }
        assert_eq!(BumpChoice::parse("huge"), None);
    }
}
