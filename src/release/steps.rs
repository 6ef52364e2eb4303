//! Each step of a release: how it runs (through the same library calls as the
//! individual commands) and how a step the journal records as done is checked against
//! the registry, layout, feed or disk before it is skipped.

use std::sync::{mpsc, Arc};

use semver::Version;
use serde_json::Value;

use super::journal::Entry;
use super::{git_step, Event, EventSink, ReleaseOptions, StepKind, StepStatus};
use crate::error::{Error, Result};
use crate::image::{BuildOptions, ImageOutcome};
use crate::manifest::{ManifestOptions, TagOutcome};
use crate::nuget::pack::PackOptions;
use crate::nuget::publish::{FeedOutcome, PublishOptions};
use crate::project::{Project, WriteOptions};
use crate::version::BumpRequest;

/// What a step did, as the journal records it and the summary shows it.
pub(super) struct Done {
    pub status: StepStatus,
    pub summary: Vec<String>,
    pub result: Value,
}

impl Done {
    fn new(summary: Vec<String>, result: impl serde::Serialize) -> Result<Done> {
        let result =
            serde_json::to_value(result).map_err(|e| Error::Internal(format!("cannot record a step's result: {e}")))?;
        Ok(Done { status: StepStatus::Done, summary, result })
    }
}

/// What every step sees.
pub(super) struct Ctx<'a> {
    pub project: &'a Project,
    pub options: &'a ReleaseOptions,
    pub sink: &'a dyn EventSink,
    /// The version being released.
    pub version: &'a Version,
    /// VERSION when the release started (its journal's `previous`).
    pub from: &'a Version,
    /// This run continues an unfinished release: pushes look before they push.
    pub resumed: bool,
}

impl Ctx<'_> {
    fn warn(&self, message: String) {
        self.sink.event(&Event::Warning { message });
    }
}

/// Raise VERSION from where the release started to the version its plan fixed
/// (`Project::bump_to`: idempotent, so a release killed anywhere in its bump finishes
/// it on the next run and never bumps twice). With nothing to bump, `auto` records a
/// first baseline as `castoff bump auto` would, unless a bump became due meanwhile.
pub(super) fn bump(ctx: &Ctx<'_>) -> Result<Done> {
    if ctx.from != ctx.version {
        let bumped = ctx.project.bump_to(ctx.from, ctx.version)?;
        let (status, summary) = match bumped {
            true => (StepStatus::Done, format!("bumped {} → {}", ctx.from, ctx.version)),
            false => (StepStatus::AlreadyDone, format!("VERSION already holds {}", ctx.version)),
        };
        let result = serde_json::json!({
            "previous": ctx.from.to_string(),
            "version": ctx.version.to_string(),
            "bumped": bumped,
        });
        return Ok(Done { status, ..Done::new(vec![summary], result)? });
    }
    let preview = ctx.project.bump(&BumpRequest::Auto, WriteOptions { dry_run: true })?;
    if preview.bumped {
        return Err(Error::Failed {
            problem: format!(
                "tracked sources changed while castoff ran: the plan releases {} as it is, and now a bump to {} is due",
                ctx.version, preview.version
            ),
            hint: "run `castoff release` again to plan the bump".into(),
        });
    }
    let outcome = ctx.project.bump(&BumpRequest::Auto, WriteOptions::default())?;
    outcome.warnings.iter().for_each(|w| ctx.warn(w.clone()));
    Done::new(vec![outcome.summary()], &outcome)
}

pub(super) fn check_bump(ctx: &Ctx<'_>) -> Result<Option<String>> {
    let current = ctx.project.read_version()?.version;
    Ok((current != *ctx.version).then(|| format!("VERSION holds {current}, not {}", ctx.version)))
}

pub(super) fn build(ctx: &Ctx<'_>) -> Result<Done> {
    let outcome = forwarding(ctx.sink, |sink| {
        let options = BuildOptions {
            jobs: ctx.options.jobs,
            log: Some(Arc::new(move |platform: &str, line: &str| {
                sink.event(&Event::Log { step: StepKind::Build, scope: platform.to_string(), line: line.to_string() })
            })),
            ..BuildOptions::default()
        };
        crate::image::run(ctx.project, options)
    })?;
    let mut summary = vec![format!("builder {} ({})", outcome.builder.name(), outcome.reason)];
    summary.extend(outcome.images.iter().map(|image| {
        let digest = image.digest.as_deref().unwrap_or("-");
        format!("{} → {} {digest}", image.platform, image.reference)
    }));
    Done::new(summary, &outcome)
}

pub(super) fn check_build(ctx: &Ctx<'_>, entry: &Entry) -> Result<Option<String>> {
    let images: Vec<ImageOutcome> = recorded(entry, "images")?;
    crate::image::check_images(ctx.project, &images)
}

pub(super) fn manifest(ctx: &Ctx<'_>) -> Result<Done> {
    let outcome = crate::manifest::run(ctx.project, ManifestOptions::default()).map_err(|error| match error {
        // `castoff manifest` offers --force for a release tag that points elsewhere;
        // a release has none, so say which command has it.
        Error::Failed { problem, hint } if hint.contains("pass --force") => Error::Failed {
            problem,
            hint: hint.replace("pass --force", "run `castoff manifest --force`, then `castoff release` to go on"),
        },
        other => other,
    })?;
    outcome.warnings.iter().for_each(|w| ctx.warn(w.clone()));
    let summary = outcome.tags.iter().map(|tag| format!("{} → {}", tag.reference, tag.digest)).collect();
    Done::new(summary, &outcome)
}

pub(super) fn check_manifest(ctx: &Ctx<'_>, entry: &Entry) -> Result<Option<String>> {
    let tags: Vec<TagOutcome> = recorded(entry, "tags")?;
    crate::manifest::check_tags(ctx.project, &tags)
}

pub(super) fn pack(ctx: &Ctx<'_>) -> Result<Done> {
    let outcome = crate::nuget::pack::pack(ctx.project, &PackOptions::default())?;
    outcome.warnings.iter().for_each(|w| ctx.warn(w.clone()));
    Done::new(outcome.human(), &outcome)
}

/// The packed files of this version are still in place (nupkg and symbols package),
/// and each nupkg has the SHA-512 the journal recorded: the publish step sends them,
/// so they must be the files the journal describes. Found where castoff packs them
/// now, not at the paths recorded, so a checkout elsewhere checks the same.
pub(super) fn check_pack(ctx: &Ctx<'_>, entry: &Entry) -> Result<Option<String>> {
    let recorded: Vec<Value> = recorded(entry, "packages")?;
    let Some(existing) = crate::nuget::pack::existing(ctx.project)? else {
        return Ok(Some("a packed file of this version is gone".into()));
    };
    for package in &recorded {
        let (Some(id), Some(expected)) = (package["id"].as_str(), package["sha512"].as_str()) else {
            return Ok(Some("the journal records a package without its id or hash".into()));
        };
        let Some(found) = existing.packages.iter().find(|p| p.id == id) else {
            return Ok(Some(format!("package {id} is no longer configured")));
        };
        match crate::nuget::feed::sha512_file(&found.nupkg) {
            Ok(actual) if actual == expected => {}
            Ok(_) => return Ok(Some(format!("{} changed since it was packed", found.nupkg.display()))),
            Err(_) => return Ok(Some(format!("{} cannot be read", found.nupkg.display()))),
        }
    }
    Ok(None)
}

/// The feeds a release publishes to, by name (the embedded default folder feed when
/// castoff.toml has none).
pub(super) fn feed_names(project: &Project) -> Vec<String> {
    match project.config.feeds.is_empty() {
        true => vec![crate::config::FeedConfig::default_folder().name],
        false => project.config.feeds.iter().map(|f| f.name.clone()).collect(),
    }
}

/// Publish to one feed. Feeds are journalled one by one, so a release that fails on
/// one feed pushes only to the others when re-run.
pub(super) fn publish_feed(ctx: &Ctx<'_>, feed: &str) -> Result<Done> {
    let feeds = match ctx.project.config.feeds.is_empty() {
        true => Vec::new(),
        false => vec![feed.to_string()],
    };
    let outcome = forwarding(ctx.sink, |sink| {
        let options = PublishOptions {
            dry_run: false,
            feeds,
            check_first: ctx.resumed,
            progress: Some(Arc::new(move |feed: &str, file: &str, sent: u64, total: u64| {
                sink.event(&Event::Progress {
                    step: StepKind::Publish, task: format!("{file} → {feed}"), sent, total
                })
            })),
        };
        crate::nuget::publish::publish(ctx.project, &options)
    })?;
    outcome.warnings().into_iter().for_each(|w| ctx.warn(w));
    let summary = outcome.human();
    let feeds: Vec<&FeedOutcome> = outcome.feeds.iter().filter(|f| f.name == feed).collect();
    Done::new(summary, serde_json::json!({ "feeds": feeds }))
}

pub(super) fn check_publish_feed(ctx: &Ctx<'_>, entry: &Entry) -> Result<Option<String>> {
    let feeds: Vec<FeedOutcome> = recorded(entry, "feeds")?;
    let checked = crate::nuget::publish::check_published(ctx.project, &feeds)?;
    Ok(checked.into_iter().find_map(|(feed, missing)| missing.map(|why| format!("feed {feed}: {why}"))))
}

pub(super) fn git(ctx: &Ctx<'_>) -> Result<Done> {
    let outcome = git_step::run(ctx.project, ctx.version, ctx.options.git_push)?;
    let mut summary = vec![match (outcome.committed, outcome.tag_existed) {
        (_, true) => format!("tag {} was already on {}", outcome.tag, outcome.commit),
        (true, false) => format!("committed {} and tagged it {}", outcome.commit, outcome.tag),
        (false, false) => format!("tagged {} {} (VERSION was committed already)", outcome.commit, outcome.tag),
    }];
    if outcome.pushed {
        summary.push(format!("pushed HEAD and {} to {}", outcome.tag, ctx.project.config.release.remote));
    }
    Done::new(summary, &outcome)
}

pub(super) fn check_git(ctx: &Ctx<'_>) -> Option<String> {
    git_step::check(ctx.project, ctx.version)
}

/// `entry.result[key]` as `T`: a journal that does not hold it cannot vouch for the step.
fn recorded<T: serde::de::DeserializeOwned>(entry: &Entry, key: &str) -> Result<T> {
    serde_json::from_value(entry.result[key].clone()).map_err(|e| Error::Failed {
        problem: format!("the journal's record of the {} step has no usable `{key}`: {e}", entry.step),
        hint: "re-run that step with `castoff release --only <step>`, or remove the journal to start over".into(),
    })
}

/// A handle builds and uploads can keep on their own threads: events sent to it are
/// handed to the release's sink by the thread [`forwarding`] runs. (The sink is
/// borrowed; builder callbacks must be `'static`.)
#[derive(Clone)]
pub(super) struct SinkHandle(mpsc::Sender<Event>);

impl SinkHandle {
    fn event(&self, event: &Event) {
        // The forwarding thread outlives every handle; a send can only fail after the
        // step returned, when nobody is listening any more.
        let _ = self.0.send(event.clone());
    }
}

/// Run `work` with a [`SinkHandle`] whose events reach `sink`, in order.
pub(super) fn forwarding<R>(sink: &dyn EventSink, work: impl FnOnce(SinkHandle) -> R) -> R {
    let (sender, receiver) = mpsc::channel::<Event>();
    std::thread::scope(|scope| {
        scope.spawn(move || receiver.into_iter().for_each(|event| sink.event(&event)));
        work(SinkHandle(sender))
    })
}
