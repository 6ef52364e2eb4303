//! The executor (after the caller's preflight): take the release lock, re-plan under
//! it, then run each planned step in order. Every finished step (every feed, for
//! publish) is appended to the journal and the journal saved before the next one
//! starts; a failure is recorded too, and the release stops there.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use semver::Version;
use serde_json::Value;

use super::journal::{now, Entry, Journal};
use super::plan::{self, Chosen};
use super::steps::{self, Ctx, Done};
use super::{
    preflight, Event, EventSink, PackageReport, Plan, ReleaseOptions, ReleaseOutcome, StepAction, StepKind, StepReport,
    StepStatus, TagReport,
};
use crate::config::{FeedKind, OutputTarget};
use crate::error::{Error, Result};
use crate::faults::crash_point;
use crate::fsutil;
use crate::image::OciLayout;
use crate::project::{ensure_castoff_dir, ensure_castoff_gitignore, Project};
use crate::version::ProjectLock;

/// Held for a whole release: a second `castoff release` of the project fails at once,
/// naming this one. (Separate from the VERSION lock, which the bump step takes.)
pub const RELEASE_LOCK: &str = ".castoff/release.lock";

pub(super) fn execute(
    project: &Project,
    options: &ReleaseOptions,
    plan: Plan,
    sink: &dyn EventSink,
) -> Result<ReleaseOutcome> {
    let started = Instant::now();
    if options.dry_run {
        return Ok(dry_run(plan, sink, started));
    }
    ensure_castoff_dir(&project.root)?;
    let _lock = ProjectLock::acquire(
        &project.root.join(RELEASE_LOCK),
        &format!("castoff release {}", plan.version),
        Duration::ZERO,
    )?;
    // Only the lock holder upgrades `.castoff/.gitignore` (to name the journals): a
    // refused release changes nothing.
    ensure_castoff_gitignore(&project.root)?;
    remove_stale_temps(project)?;
    // Another release may have finished steps between planning and the lock.
    let (plan, chosen) = plan::refresh(project, options, plan)?;
    let version = parse_version(&plan.version)?;
    Executor::new(project, options, sink, &plan, chosen, version)?.run(started)
}

/// Preflight (see [`preflight`]); it reads only, so a release refused for a missing
/// tool or key has written nothing, not even the lock file.
pub(super) fn preflight(project: &Project, options: &ReleaseOptions, plan: &Plan) -> Result<()> {
    preflight::preflight(project, options, plan, &parse_version(&plan.version)?)
}

/// Delete what an earlier, killed castoff left half-written (`.castoff-tmp-*` beside
/// the journal, VERSION and the baseline, the packages, a project-local folder feed's
/// files, an OCI layout's blobs and index). Only files whose writer is dead go: every
/// temp file is flocked while written (`fsutil::temp_file_in`). The locks that keep
/// castoff's own writers out are held as well: the release lock (by the caller), the
/// project lock for VERSION and the baseline, the layout's lock for the layout.
fn remove_stale_temps(project: &Project) -> Result<()> {
    let root = &project.root;
    fsutil::remove_stale_temps(&root.join(super::journal::JOURNAL_DIR), 0);
    {
        let _project_lock = project.lock("castoff release: removing a killed release's temp files")?;
        let version_dir = project.version_path().parent().map(Path::to_path_buf).unwrap_or_else(|| root.clone());
        fsutil::remove_stale_temps(&version_dir, 0);
        fsutil::remove_stale_temps(&root.join(crate::project::CASTOFF_DIR), 0);
    }
    for package in &project.config.packages {
        fsutil::remove_stale_temps(&root.join(&package.output), 0);
    }
    let folders: Vec<std::path::PathBuf> = match project.config.feeds.is_empty() {
        true => vec![std::path::PathBuf::from(crate::config::DEFAULT_FEED_DIR)],
        false => (project.config.feeds.iter())
            .filter_map(|feed| match &feed.kind {
                FeedKind::Folder { path } => Some(path.clone()),
                _ => None,
            })
            .collect(),
    };
    // Folder feeds outside the project may be shared with other projects: left alone.
    for folder in folders.into_iter().filter(|folder| folder.is_relative()) {
        // <feed>/<id>/<version>/<files>
        fsutil::remove_stale_temps(&root.join(folder), 2);
    }
    if let Some(OutputTarget::OciLayout(dir)) = project.config.image.as_ref().map(|image| &image.build.output) {
        if let Ok(layout) = OciLayout::open(root, dir) {
            let _layout_lock = layout.lock()?;
            // <layout>/index.json, <layout>/blobs/<algorithm>/<hex>
            fsutil::remove_stale_temps(layout.dir(), 2);
        }
    }
    Ok(())
}

fn parse_version(text: &str) -> Result<Version> {
    Version::parse(text).map_err(|e| Error::Internal(format!("planned version `{text}`: {e}")))
}

fn dry_run(plan: Plan, sink: &dyn EventSink, started: Instant) -> ReleaseOutcome {
    let steps = plan
        .steps
        .iter()
        .map(|step| {
            let (status, summary) = match &step.action {
                StepAction::Skip { reason } => (StepStatus::Skipped, vec![reason.clone()]),
                StepAction::Run | StepAction::Verify => {
                    (StepStatus::WouldRun, std::iter::once(step.summary.clone()).chain(step.details.clone()).collect())
                }
            };
            sink.event(&Event::StepFinished {
                step: step.step,
                status,
                seconds: 0.0,
                summary: summary.clone(),
                result: Value::Null,
            });
            StepReport { step: step.step, status, seconds: 0.0, summary }
        })
        .collect();
    ReleaseOutcome {
        version: plan.version,
        previous: plan.previous,
        dry_run: true,
        journal: None,
        resumed: plan.resume.is_some(),
        steps,
        tags: Vec::new(),
        packages: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

struct Executor<'a> {
    project: &'a Project,
    options: &'a ReleaseOptions,
    sink: &'a dyn EventSink,
    plan: &'a Plan,
    version: Version,
    /// VERSION when the release started (the journal's `previous`).
    from: Version,
    resumed: bool,
    journal: Mutex<Journal>,
}

impl<'a> Executor<'a> {
    fn new(
        project: &'a Project,
        options: &'a ReleaseOptions,
        sink: &'a dyn EventSink,
        plan: &'a Plan,
        chosen: Chosen,
        version: Version,
    ) -> Result<Executor<'a>> {
        let journal = chosen.journal.unwrap_or_else(|| Journal::new(&plan.version, &plan.previous, chosen.bump));
        let from = Version::parse(&journal.previous).map_err(|e| {
            Error::invalid(
                crate::error::Location::file(Journal::relative_path(&journal.version)).with_key("previous"),
                format!("`{}` is not a version: {e}", journal.previous),
                format!("remove {} to start the release over", Journal::relative_path(&journal.version)),
            )
        })?;
        Ok(Executor {
            project,
            options,
            sink,
            plan,
            version,
            from,
            resumed: chosen.resumed,
            journal: Mutex::new(journal),
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            project: self.project,
            options: self.options,
            sink: self.sink,
            version: &self.version,
            from: &self.from,
            resumed: self.resumed,
        }
    }

    fn run(self, started: Instant) -> Result<ReleaseOutcome> {
        // Written before anything changes: a bump that dies half-way is then known to be
        // this release's, and is finished rather than made again. (A finished release
        // run again stays marked complete: it is only being checked.)
        self.with_journal(|_| Ok(()))?;
        crash_point("after:journal");
        let mut reports = Vec::new();
        // Once a step other than the bump really runs, what follows it must run too: a
        // rebuilt image may have a new digest the recorded index does not name.
        let mut redone = false;
        for planned in &self.plan.steps {
            let step = planned.step;
            let report = match &planned.action {
                StepAction::Skip { reason } => {
                    let summary = vec![reason.clone()];
                    self.finished(step, StepStatus::Skipped, 0.0, &summary, Value::Null);
                    StepReport { step, status: StepStatus::Skipped, seconds: 0.0, summary }
                }
                action => {
                    self.sink.event(&Event::StepStarted { step, summary: planned.summary.clone() });
                    let clock = Instant::now();
                    let verify = *action == StepAction::Verify && !redone;
                    let done = match step {
                        StepKind::Publish => self.publish(),
                        _ => self.single(step, verify),
                    };
                    let seconds = clock.elapsed().as_secs_f64();
                    match done {
                        Ok(done) => {
                            redone |= step != StepKind::Bump && done.status == StepStatus::Done;
                            self.finished(step, done.status, seconds, &done.summary, done.result.clone());
                            crash_point(&format!("after:{step}"));
                            StepReport { step, status: done.status, seconds, summary: done.summary }
                        }
                        Err(error) => return Err(self.failed(step, seconds, error)),
                    }
                }
            };
            reports.push(report);
        }
        let journal = self.with_journal(|journal| {
            journal.complete = complete(self.project, journal);
            Ok(journal.clone())
        })?;
        Ok(ReleaseOutcome {
            version: self.plan.version.clone(),
            previous: journal.previous.clone(),
            dry_run: false,
            journal: Some(Journal::relative_path(&self.plan.version)),
            resumed: self.resumed,
            steps: reports,
            tags: tags(&journal),
            packages: packages(&journal),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// One step (all but publish): check it when the journal says it is done, run it
    /// when not or when the check finds its result gone; journal the outcome.
    fn single(&self, step: StepKind, verify: bool) -> Result<Done> {
        let ctx = self.ctx();
        if verify {
            let recorded = self.with_journal(|journal| Ok(journal.done(step, None).cloned()))?;
            if let Some(entry) = recorded {
                match check(&ctx, step, &entry)? {
                    None => {
                        let done = Done {
                            status: StepStatus::AlreadyDone,
                            summary: vec![format!("done in an earlier run; checked: still in place")],
                            result: entry.result.clone(),
                        };
                        self.record(step, None, &done, 0.0)?;
                        return Ok(done);
                    }
                    Some(gone) => self.sink.event(&Event::Warning {
                        message: format!("{step} was done in an earlier run, but {gone}: doing it again"),
                    }),
                }
            }
        }
        let clock = Instant::now();
        let done = match step {
            StepKind::Bump => steps::bump(&ctx),
            StepKind::Build => steps::build(&ctx),
            StepKind::Manifest => steps::manifest(&ctx),
            StepKind::Pack => steps::pack(&ctx),
            StepKind::Git => steps::git(&ctx),
            StepKind::Publish => return Err(Error::Internal("publish runs per feed".into())),
        }?;
        self.record(step, None, &done, clock.elapsed().as_secs_f64())?;
        Ok(done)
    }

    /// Publish, feed by feed and in parallel: feeds the journal records as done are
    /// checked, the rest pushed; each feed is journalled as soon as it finishes, so a
    /// re-run after a crash pushes only to the feeds that did not finish.
    fn publish(&self) -> Result<Done> {
        let ctx = self.ctx();
        let feeds = steps::feed_names(self.project);
        let results: Vec<(String, Result<Done>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = feeds
                .iter()
                .map(|feed| {
                    let ctx = &ctx;
                    scope.spawn(move || (feed.clone(), self.publish_one(ctx, feed)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| (String::new(), Err(Error::Internal("a publish thread panicked".into()))))
                })
                .collect()
        });
        let mut summary = Vec::new();
        let mut all_already = true;
        let mut results_json = Vec::new();
        let mut failures = Vec::new();
        for (feed, result) in results {
            match result {
                Ok(done) => {
                    all_already &= done.status == StepStatus::AlreadyDone;
                    summary.extend(done.summary);
                    results_json.extend(done.result["feeds"].as_array().cloned().unwrap_or_default());
                }
                Err(error) => failures.push((feed, error)),
            }
        }
        if let Some((feed, error)) = failures.into_iter().next() {
            return Err(Error::Failed {
                problem: format!("publishing to feed {feed} failed: {error}"),
                hint: error.hint().unwrap_or_else(|| "fix the feed, then run `castoff release` again".into()),
            });
        }
        let status = if all_already { StepStatus::AlreadyDone } else { StepStatus::Done };
        Ok(Done { status, summary, result: serde_json::json!({ "feeds": results_json }) })
    }

    fn publish_one(&self, ctx: &Ctx<'_>, feed: &str) -> Result<Done> {
        let recorded = self.with_journal(|journal| Ok(journal.done(StepKind::Publish, Some(feed)).cloned()))?;
        if let Some(entry) = recorded {
            match steps::check_publish_feed(ctx, &entry)? {
                None => {
                    return Ok(Done {
                        status: StepStatus::AlreadyDone,
                        summary: vec![format!("feed {feed}: published in an earlier run; checked: still there")],
                        result: entry.result.clone(),
                    })
                }
                Some(gone) => self.sink.event(&Event::Warning {
                    message: format!("feed {feed} was published to in an earlier run, but {gone}: publishing again"),
                }),
            }
        }
        let clock = Instant::now();
        let done = steps::publish_feed(ctx, feed)?;
        self.record(StepKind::Publish, Some(feed), &done, clock.elapsed().as_secs_f64())?;
        crash_point(&format!("after:publish:{feed}"));
        Ok(done)
    }

    fn record(&self, step: StepKind, part: Option<&str>, done: &Done, seconds: f64) -> Result<()> {
        self.with_journal(|journal| {
            journal.record(Entry {
                step,
                part: part.map(str::to_string),
                status: done.status,
                finished: now(),
                seconds,
                result: done.result.clone(),
            });
            Ok(())
        })
    }

    /// Change the journal and save it at once.
    fn with_journal<T>(&self, change: impl FnOnce(&mut Journal) -> Result<T>) -> Result<T> {
        let mut journal = self.journal.lock().map_err(|_| Error::Internal("the journal lock was poisoned".into()))?;
        let value = change(&mut journal)?;
        journal.save(&self.project.root)?;
        Ok(value)
    }

    fn finished(&self, step: StepKind, status: StepStatus, seconds: f64, summary: &[String], result: Value) {
        self.sink.event(&Event::StepFinished { step, status, seconds, summary: summary.to_vec(), result });
    }

    fn failed(&self, step: StepKind, seconds: f64, error: Error) -> Error {
        let message = error.to_string();
        let recorded = self.with_journal(|journal| {
            journal.record(Entry {
                step,
                part: None,
                status: StepStatus::Failed,
                finished: now(),
                seconds,
                result: serde_json::json!({ "error": message }),
            });
            Ok(())
        });
        self.finished(step, StepStatus::Failed, seconds, std::slice::from_ref(&message), Value::Null);
        if let Err(journal_error) = recorded {
            self.sink.event(&Event::Warning { message: format!("could not record the failure: {journal_error}") });
        }
        Error::Step { step: step.name(), journal: Journal::relative_path(&self.plan.version), error: Box::new(error) }
    }
}

fn check(ctx: &Ctx<'_>, step: StepKind, entry: &Entry) -> Result<Option<String>> {
    match step {
        StepKind::Bump => steps::check_bump(ctx),
        StepKind::Build => steps::check_build(ctx, entry),
        StepKind::Manifest => steps::check_manifest(ctx, entry),
        StepKind::Pack => steps::check_pack(ctx, entry),
        StepKind::Git => Ok(steps::check_git(ctx)),
        StepKind::Publish => steps::check_publish_feed(ctx, entry),
    }
}

/// Every step castoff.toml asks for is recorded done (steps left out by `--only`,
/// `--from` or `--bump none` count only when an earlier run did them), every feed
/// included.
fn complete(project: &Project, journal: &Journal) -> bool {
    StepKind::ALL.into_iter().filter(|step| plan::not_configured(project, *step).is_none()).all(|step| match step {
        StepKind::Bump => journal.done(step, None).is_some() || journal.previous == journal.version,
        StepKind::Publish => {
            steps::feed_names(project).iter().all(|feed| journal.done(StepKind::Publish, Some(feed)).is_some())
        }
        step => journal.done(step, None).is_some(),
    })
}

/// Release tag → index digest, from the latest manifest result.
fn tags(journal: &Journal) -> Vec<TagReport> {
    let Some(entry) = journal.done(StepKind::Manifest, None) else { return Vec::new() };
    let tags = entry.result["tags"].as_array().cloned().unwrap_or_default();
    tags.iter()
        .filter_map(|tag| {
            Some(TagReport {
                reference: tag["reference"].as_str()?.to_string(),
                digest: tag["digest"].as_str()?.to_string(),
            })
        })
        .collect()
}

/// File → feed → outcome, from the latest result of each feed.
fn packages(journal: &Journal) -> Vec<PackageReport> {
    let mut seen = std::collections::BTreeSet::new();
    let latest: Vec<&Entry> = (journal.entries.iter().rev())
        .filter(|e| e.step == StepKind::Publish && e.status != StepStatus::Failed)
        .filter(|e| seen.insert(e.part.clone()))
        .collect();
    let mut reports = Vec::new();
    for entry in latest.into_iter().rev() {
        for feed in entry.result["feeds"].as_array().into_iter().flatten() {
            let name = feed["name"].as_str().unwrap_or_default();
            for file in feed["files"].as_array().into_iter().flatten() {
                let status = file["status"].as_str().unwrap_or_default().replace('-', " ");
                let outcome = match file["reason"].as_str() {
                    Some(reason) => format!("{status} ({reason})"),
                    None => status,
                };
                let feed = file["to"].as_str().unwrap_or(name).to_string();
                reports.push(PackageReport {
                    file: file["file"].as_str().unwrap_or_default().to_string(),
                    feed,
                    outcome,
                });
            }
        }
    }
    reports
}
