//! The plan: which steps run and what each would do, decided from castoff.toml, the
//! files on disk and the journal alone. No network I/O, no file changed: `castoff plan`
//! and `castoff release --dry-run` print it, and the executor follows it.

use serde::Serialize;

use semver::Version;

use super::journal::Journal;
use super::{git_step, BumpChoice, ReleaseOptions, StepKind};
use crate::error::{Error, Location, Result};
use crate::image::BuildOptions;
use crate::nuget::pack::PackOptions;
use crate::nuget::publish::PublishOptions;
use crate::project::{Project, WriteOptions};
use crate::sources::BASELINE_FILE;
use crate::version::BumpRequest;

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
    /// What is released and why: the first lines of [`Plan::human`], and what a real
    /// release prints before its steps.
    pub fn headline(&self) -> Vec<String> {
        let mut lines = vec![match self.previous == self.version {
            true => format!("release {} ({})", self.version, self.bump_reason),
            false => format!("release {} → {} ({})", self.previous, self.version, self.bump_reason),
        }];
        lines.extend(self.resume.clone());
        lines
    }

    /// Lines for humans: the headline, then one block per step.
    pub fn human(&self) -> Vec<String> {
        let mut lines = self.headline();
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
    make(project, options).map(|(plan, _)| plan)
}

/// The plan, and how its version was chosen (which the executor needs as well).
pub(super) fn make(project: &Project, options: &ReleaseOptions) -> Result<(Plan, Chosen)> {
    if let (Some(from), Some(only)) = (options.from, options.only) {
        return Err(Error::usage(
            format!("--from {from} and --only {only} ask for different sets of steps"),
            "give one of them: --from runs a step and every one after it, --only runs one",
        ));
    }
    let current = project.read_version()?.version;
    let chosen = choose_version(project, options, &current)?;
    let describe = match chosen.version == current {
        true => project.clone(),
        false => project.planning_at(chosen.version.clone()),
    };
    let mut warnings = Vec::new();
    let steps = StepKind::ALL
        .into_iter()
        .map(|step| {
            let action = action(project, options, &chosen, step);
            let (summary, details) = match &action {
                StepAction::Skip { .. } => (describe_briefly(project, step), Vec::new()),
                _ => describe_step(&describe, options, &chosen, step, &mut warnings),
            };
            PlannedStep { step, action, summary, details }
        })
        .collect();
    let plan = Plan {
        previous: current.to_string(),
        version: chosen.version.to_string(),
        bump_reason: chosen.reason.clone(),
        journal: Journal::relative_path(&chosen.version.to_string()),
        resume: resume_line(&chosen),
        steps,
        warnings,
    };
    Ok((plan, chosen))
}

/// `plan` made again under the release lock, where another release may have moved
/// things since: the version and every step's action are chosen afresh, and the step
/// descriptions (builder probes, dry runs) are kept unless the version or a step's
/// run-or-skip changed, in which case the whole plan is made again.
pub(super) fn refresh(project: &Project, options: &ReleaseOptions, plan: Plan) -> Result<(Plan, Chosen)> {
    let current = project.read_version()?.version;
    let chosen = choose_version(project, options, &current)?;
    let actions: Vec<StepAction> = plan.steps.iter().map(|s| action(project, options, &chosen, s.step)).collect();
    let skipped = |action: &StepAction| matches!(action, StepAction::Skip { .. });
    let same_shape = plan.previous == current.to_string()
        && plan.version == chosen.version.to_string()
        && plan.steps.iter().zip(&actions).all(|(step, action)| skipped(&step.action) == skipped(action));
    if !same_shape {
        return make(project, options);
    }
    let steps = plan.steps.into_iter().zip(actions).map(|(step, action)| PlannedStep { action, ..step }).collect();
    let resume = resume_line(&chosen);
    Ok((Plan { bump_reason: chosen.reason.clone(), resume, steps, ..plan }, chosen))
}

/// The line saying which unfinished release is continued and what it has done.
fn resume_line(chosen: &Chosen) -> Option<String> {
    chosen.journal.as_ref().filter(|j| chosen.resumed && !j.entries.is_empty()).map(|j| {
        let done: Vec<&str> = j.done_steps().into_iter().map(StepKind::name).collect();
        format!(
            "continuing the unfinished release of {} (done: {}); to start over instead, remove {}",
            j.version,
            if done.is_empty() { "nothing yet".to_string() } else { done.join(", ") },
            Journal::relative_path(&j.version)
        )
    })
}

/// The version a release publishes, and the journal it continues, if any.
pub(super) struct Chosen {
    pub version: Version,
    pub reason: String,
    /// The bump that makes `version` (what a resumed release repeats).
    pub bump: BumpChoice,
    /// This release's journal as it is on disk (an earlier run of the same version).
    pub journal: Option<Journal>,
    /// `journal` is an unfinished release being continued.
    pub resumed: bool,
    /// The release raises VERSION (or, resumed, raised it).
    pub bumps: bool,
}

/// An unfinished release is continued rather than bumped again: its journal names the
/// version VERSION already holds (the bump happened), or the version it holds names
/// the journal's starting point (the bump was planned and may not have happened).
fn choose_version(project: &Project, options: &ReleaseOptions, current: &Version) -> Result<Chosen> {
    let bump_selected = selected(options, StepKind::Bump);
    let unchanged = |reason: String, bump: BumpChoice| -> Result<Chosen> {
        let journal = Journal::load(&project.root, &current.to_string())?;
        let resumed = journal.as_ref().is_some_and(|j| !j.complete);
        Ok(Chosen { version: current.clone(), reason, bump, journal, resumed, bumps: false })
    };
    if !bump_selected {
        return unchanged("the bump step is not selected".into(), BumpChoice::None);
    }
    // A journal is a release to continue only if that release chose its version: its
    // bump ran, or was planned to move VERSION. One written by `--only`/`--from` runs
    // that left the bump out chose nothing, and must not stop a due bump.
    let unfinished: Vec<Journal> = (Journal::unfinished(&project.root)?.into_iter())
        .filter(|j| j.done(StepKind::Bump, None).is_some() || j.previous != j.version)
        .collect();
    let continuing = unfinished.iter().find(|j| j.version == current.to_string()).or_else(|| {
        unfinished.iter().find(|j| j.previous == current.to_string() && j.done(StepKind::Bump, None).is_none())
    });
    if let Some(journal) = continuing {
        if options.bump != BumpChoice::Auto && options.bump != journal.bump {
            return Err(Error::usage(
                format!(
                    "an unfinished release of {} (bump {}) is waiting to be continued, and --bump {} asks for another",
                    journal.version, journal.bump, options.bump
                ),
                format!(
                    "run `castoff release` without --bump to finish {}, or remove {} to abandon it",
                    journal.version,
                    Journal::relative_path(&journal.version)
                ),
            ));
        }
        let version = Version::parse(&journal.version).map_err(|e| {
            Error::invalid(
                Location::file(Journal::relative_path(&journal.version)).with_key("version"),
                format!("`{}` is not a version: {e}", journal.version),
                format!("remove {} to start the release over", Journal::relative_path(&journal.version)),
            )
        })?;
        let reason = match journal.previous == journal.version {
            true => format!("continuing the release of {version}"),
            false => format!("continuing the release of {version}, bumped from {}", journal.previous),
        };
        let bumps = journal.previous != journal.version;
        return Ok(Chosen {
            version,
            reason,
            bump: journal.bump,
            journal: Some(journal.clone()),
            resumed: true,
            bumps,
        });
    }
    let request = match options.bump {
        BumpChoice::None => return unchanged("--bump none: releasing VERSION as it is".into(), BumpChoice::None),
        BumpChoice::Auto => BumpRequest::Auto,
        BumpChoice::Level(level) => BumpRequest::Level { level, pre: None },
    };
    let outcome = project.bump(&request, WriteOptions { dry_run: true })?;
    let version = Version::parse(&outcome.version)
        .map_err(|e| Error::Internal(format!("bump produced `{}`: {e}", outcome.version)))?;
    match version == *current {
        true => unchanged(outcome.reason, options.bump),
        false => {
            let journal = Journal::load(&project.root, &outcome.version)?;
            Ok(Chosen { version, reason: outcome.reason, bump: options.bump, journal, resumed: false, bumps: true })
        }
    }
}

/// Whether `--from`/`--only` leave `step` in.
pub(super) fn selected(options: &ReleaseOptions, step: StepKind) -> bool {
    options.only.is_none_or(|only| only == step) && options.from.is_none_or(|from| step >= from)
}

/// Why castoff.toml leaves `step` out of every release of this project, if it does.
pub(super) fn not_configured(project: &Project, step: StepKind) -> Option<&'static str> {
    let config = &project.config;
    match step {
        StepKind::Build | StepKind::Manifest if config.image.is_none() => Some("castoff.toml has no [image]"),
        StepKind::Pack | StepKind::Publish if config.packages.is_empty() => Some("castoff.toml has no [[package]]"),
        StepKind::Git if !config.release.git => Some("[release] git is not set"),
        _ => None,
    }
}

fn action(project: &Project, options: &ReleaseOptions, chosen: &Chosen, step: StepKind) -> StepAction {
    let skip = |reason: &str| StepAction::Skip { reason: reason.to_string() };
    if let Some(reason) = not_configured(project, step) {
        return skip(reason);
    }
    match step {
        StepKind::Bump
            if chosen.bump == BumpChoice::None
                && chosen.journal.as_ref().is_none_or(|j| j.done(step, None).is_none()) =>
        {
            return match selected(options, step) {
                true => skip("--bump none"),
                false => skip(&not_selected(options)),
            }
        }
        _ => {}
    }
    if !selected(options, step) {
        return skip(&not_selected(options));
    }
    match chosen.journal.as_ref().and_then(|j| j.done(step, None)) {
        Some(_) if step != StepKind::Publish => StepAction::Verify,
        // Publish is journalled per feed: it checks the feeds done and pushes the rest.
        _ => StepAction::Run,
    }
}

fn not_selected(options: &ReleaseOptions) -> String {
    match (options.only, options.from) {
        (Some(only), _) => format!("--only {only}"),
        (_, Some(from)) => format!("before --from {from}"),
        _ => "not selected".into(),
    }
}

fn describe_briefly(project: &Project, step: StepKind) -> String {
    match step {
        StepKind::Bump => format!("raise {} when the tracked sources changed", project.config.version.file),
        StepKind::Build => "build and push one image per platform".into(),
        StepKind::Manifest => "push the multi-arch index under every release tag".into(),
        StepKind::Pack => "pack every [[package]] with its symbols".into(),
        StepKind::Publish => "push the packages to every [[feed]]".into(),
        StepKind::Git => "commit VERSION and the baseline, and tag the commit".into(),
    }
}

/// One line and the detail lines for a step that runs, with the project as it will be
/// at the release's version. What cannot be described (no builder installed, say)
/// becomes a detail and a warning: preflight reports it properly before anything runs.
fn describe_step(
    project: &Project,
    options: &ReleaseOptions,
    chosen: &Chosen,
    step: StepKind,
    warnings: &mut Vec<String>,
) -> (String, Vec<String>) {
    let version = chosen.version.to_string();
    let mut unknown = |e: Error| -> Vec<String> {
        warnings.push(format!("{step}: {e}"));
        vec![format!("cannot describe yet: {e}")]
    };
    match step {
        StepKind::Bump => {
            let file = &project.config.version.file;
            match chosen.bumps {
                true => (
                    format!("{file} → {version} ({})", chosen.reason),
                    vec![format!("record the source baseline {BASELINE_FILE}"), format!("write {file} = {version}")],
                ),
                false => (format!("{file} stays {version} ({})", chosen.reason), Vec::new()),
            }
        }
        StepKind::Build => {
            let build = BuildOptions { dry_run: true, jobs: options.jobs, ..BuildOptions::default() };
            match crate::image::run(project, build) {
                Ok(outcome) => {
                    let summary = format!(
                        "{} image(s) with {} → {}",
                        outcome.images.len(),
                        outcome.builder.name(),
                        outcome.output
                    );
                    let mut details: Vec<String> =
                        outcome.images.iter().map(|i| format!("{} → {}", i.platform, i.reference)).collect();
                    details.extend(outcome.planned.iter().map(|command| format!("run: {command}")));
                    (summary, details)
                }
                Err(e) => (describe_briefly(project, step), unknown(e)),
            }
        }
        StepKind::Manifest => match crate::manifest::planned_tags(project, &chosen.version) {
            Ok(tags) => (
                format!("index of every platform under {} tag(s)", tags.len()),
                tags.into_iter().map(|t| format!("push index → {t}")).collect(),
            ),
            Err(e) => (describe_briefly(project, step), unknown(e)),
        },
        StepKind::Pack => match crate::nuget::pack::pack(project, &PackOptions { dry_run: true, check_only: true }) {
            Ok(outcome) => (format!("{} package(s) at {version}", outcome.packages.len()), outcome.human()),
            Err(e) => (describe_briefly(project, step), unknown(e)),
        },
        StepKind::Publish => {
            let publish = PublishOptions { dry_run: true, ..PublishOptions::default() };
            match crate::nuget::publish::publish(project, &publish) {
                Ok(outcome) => {
                    warnings.extend(outcome.warnings());
                    (format!("{} feed(s)", outcome.feeds.len()), outcome.human())
                }
                Err(e) => (describe_briefly(project, step), unknown(e)),
            }
        }
        StepKind::Git => {
            let commands = git_step::commands(project, &chosen.version, options.git_push);
            (
                format!("commit and tag {}", project.tag_for(&chosen.version)),
                commands.iter().map(|c| format!("run: {c}")).collect(),
            )
        }
    }
}
