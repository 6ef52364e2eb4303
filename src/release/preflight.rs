//! Preflight: before the first step changes anything, check everything the planned
//! steps need (the builder and its tools, the registry and its credentials, the
//! packages' inputs, every feed's key and endpoint, git) and report every problem at
//! once, so a release engineer fixes them in one go instead of one failed run each.

use std::str::FromStr;

use semver::Version;

use super::{git_step, Plan, ReleaseOptions, StepAction, StepKind};
use crate::config::OutputTarget;
use crate::error::{Error, Result};
use crate::image::BuildOptions;
use crate::nuget::pack::PackOptions;
use crate::project::Project;
use crate::registry::Reference;

pub(super) fn preflight(project: &Project, options: &ReleaseOptions, plan: &Plan, version: &Version) -> Result<()> {
    // Steps to check only (done in an earlier run) need no builder or key: their checks
    // read, and a step whose check fails and must run again reports what it lacks then.
    let runs = |step: StepKind| plan.step(step).is_some_and(|s| s.action == StepAction::Run);
    // Describe the steps at the version they will run at (VERSION is bumped later).
    let at = project.planning_at(version.clone());
    let mut problems = Vec::new();
    if runs(StepKind::Build) || runs(StepKind::Manifest) {
        problems.extend(images(&at, options).err());
    }
    if runs(StepKind::Pack) {
        problems.extend(crate::nuget::pack::pack(&at, &PackOptions { dry_run: true, check_only: true }).err());
    }
    if runs(StepKind::Publish) {
        problems.extend(crate::nuget::publish::preflight(&at));
    }
    if runs(StepKind::Git) {
        problems.extend(git_step::preflight(project, version, options.git_push));
    }
    match problems.len() {
        0 => Ok(()),
        _ => Err(Error::Preflight(problems)),
    }
}

/// The builder and its tools (what `castoff build --dry-run` checks), then, for a
/// registry, one read of the first platform's tag: the registry answers and takes the
/// credentials castoff found.
fn images(project: &Project, options: &ReleaseOptions) -> Result<()> {
    let planned =
        crate::image::run(project, BuildOptions { dry_run: true, jobs: options.jobs, ..BuildOptions::default() })?;
    let Some(image) = project.config.image.as_ref() else { return Ok(()) };
    if image.build.output != OutputTarget::Registry {
        return Ok(());
    }
    let Some(first) = planned.images.first() else { return Ok(()) };
    let reference = Reference::from_str(&first.reference).map_err(|e| {
        Error::Internal(format!("planned reference `{}` does not parse: {}", first.reference, e.problem()))
    })?;
    crate::image::client(project, image).head_manifest(&reference)?;
    Ok(())
}
