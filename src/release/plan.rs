//! The plan: which steps run and what each would do, decided from castoff.toml, the
//! files on disk and the journal alone. No network I/O, no file changed: `castoff plan`
//! and `castoff release --dry-run` print it, and the executor follows it.

use serde::Serialize;

use super::{ReleaseOptions, StepKind};
use crate::error::Result;
use crate::project::Project;

/// What the executor will do with a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum StepAction {
    /// Run it (after checking whether its result already exists).
    Run,
    /// The journal records it complete: check that its result is still there, and run
    /// it again only if not.
    Verify,
    /// Leave it out, for `reason`.
    Skip { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub step: StepKind,
    #[serde(flatten)]
    pub action: StepAction,
    /// One line: what the step does in this release.
    pub summary: String,
    /// Every command it would run and every URL or path it would write, secrets
    /// redacted.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// VERSION now.
    pub previous: String,
    /// The version this release publishes.
    pub version: String,
    /// Why the version is what it is (bumped, unchanged, resumed).
    pub bump_reason: String,
    /// The journal this release writes, relative to the project root.
    pub journal: String,
    /// Set when an unfinished release of `version` is being continued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    pub steps: Vec<PlannedStep>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Lines for humans: the version line, then one block per step.
    pub fn human(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match self.previous == self.version {
            true => lines.push(format!("release {} ({})", self.version, self.bump_reason)),
            false => lines.push(format!("release {} → {} ({})", self.previous, self.version, self.bump_reason)),
        }
        if let Some(resume) = &self.resume {
            lines.push(resume.clone());
        }
        for (number, step) in self.steps.iter().enumerate() {
            let action = match &step.action {
                StepAction::Run => String::new(),
                StepAction::Verify => " [done: verify only]".to_string(),
                StepAction::Skip { reason } => format!(" [skip: {reason}]"),
            };
            lines.push(format!("{}. {:<9} {}{action}", number + 1, step.step.name(), step.summary));
            lines.extend(step.details.iter().map(|detail| format!("     {detail}")));
        }
        lines
    }

    pub fn step(&self, kind: StepKind) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.step == kind)
    }
}

pub(super) fn plan(project: &Project, options: &ReleaseOptions) -> Result<Plan> {
    let _ = (project, options);
    todo!("plan")
}
