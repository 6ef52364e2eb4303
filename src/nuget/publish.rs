//! `castoff publish`: push what `castoff pack` made to every `[[feed]]`.
//!
//! Check everything, then write: the feeds are selected, every API key variable read,
//! the packages found (or packed), the plan made (which file goes where, by which
//! route: `feed::plan`) and every v3 service index read before the first byte is
//! pushed. So an unset key, a feed without a push endpoint or a mismatched symbols
//! format changes nothing. A dry run stops after the plan: no network at all.
//!
//! Then each feed is pushed in its own thread (a release waits on round trips, not on
//! the CPU). Per package the nupkg goes first; when the feed already had it (409, or the
//! same file in a folder) its symbols are not sent again: the NuGet client re-sends
//! them, which duplicates or fails on some feeds. The outcome says, per feed, what was
//! pushed, what was already there and what was skipped, and why.

use std::collections::BTreeSet;

use serde::Serialize;

use super::feed::http::ApiKey;
use super::feed::plan::{file_name, plan, resolve_routes, skip_warnings, FeedPlan, Intent, Step, SymbolsPlan};
use super::feed::{Compared, Feed, FeedError, Landed};
use super::pack::{self, PackOptions};
use super::Packed;
use crate::config::{FeedConfig, FeedSymbols, DEFAULT_FEED_DIR};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::secret::Secret;

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Show what would be pushed where; push nothing.
    pub dry_run: bool,
    /// Only these feeds (by name); empty means all.
    pub feeds: Vec<String>,
}

/// What `castoff publish` did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct PublishOutcome {
    pub dry_run: bool,
    /// The packages were missing, so they were packed first.
    pub packed: bool,
    /// castoff.toml has no `[[feed]]`: the embedded default folder feed was used.
    pub default_feed: bool,
    pub feeds: Vec<FeedOutcome>,
    pub warnings: Vec<String>,
}

/// One feed's part.
#[derive(Debug, Clone, Serialize)]
pub struct FeedOutcome {
    pub name: String,
    pub protocol: &'static str,
    /// The feed's url as configured.
    pub url: String,
    pub files: Vec<FileOutcome>,
}

/// One file and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub id: String,
    pub version: String,
    /// The file name as the feed received it (the renamed name for "renamed").
    pub file: String,
    pub role: Role,
    /// The feed it went to when not this one (`symbols_feed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub status: FileStatus,
    /// Why, for anything but a plain push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Package,
    Symbols,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    Pushed,
    AlreadyPublished,
    Skipped,
    WouldPush,
}

impl FileStatus {
    fn label(self) -> &'static str {
        match self {
            FileStatus::Pushed => "pushed",
            FileStatus::AlreadyPublished => "already published",
            FileStatus::Skipped => "skipped",
            FileStatus::WouldPush => "would push",
        }
    }
}

impl PublishOutcome {
    /// Lines for the human summary.
    pub fn human(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.default_feed {
            lines.push(format!(
                "castoff.toml has no [[feed]]: publishing to the embedded default folder feed {DEFAULT_FEED_DIR}"
            ));
        }
        if self.packed {
            let verb = if self.dry_run { "would be packed" } else { "were packed" };
            lines.push(format!("the packages for this version were missing and {verb} first"));
        }
        for feed in &self.feeds {
            lines.push(format!("feed {} ({} {}):", feed.name, feed.protocol, feed.url));
            for file in &feed.files {
                let to = file.to.as_ref().map(|to| format!(" to feed {to}")).unwrap_or_default();
                let reason = file.reason.as_ref().map(|why| format!(" ({why})")).unwrap_or_default();
                lines.push(format!("  {:<17} {}{to}{reason}", file.status.label(), file.file));
            }
            if feed.files.is_empty() {
                lines.push("  nothing of its own to push (packages = false, and no symbols)".into());
            }
        }
        let count =
            |status: FileStatus| self.feeds.iter().flat_map(|f| &f.files).filter(|f| f.status == status).count();
        let summary = match self.dry_run {
            true => format!("dry run: {} file(s) would be pushed; nothing was pushed", count(FileStatus::WouldPush)),
            false => format!(
                "{} pushed, {} already published, {} skipped",
                count(FileStatus::Pushed),
                count(FileStatus::AlreadyPublished),
                count(FileStatus::Skipped)
            ),
        };
        lines.push(summary);
        lines
    }

    /// Warnings (e.g. a feed without a symbol endpoint under `symbols = "auto"`).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

pub fn publish(project: &Project, options: &PublishOptions) -> Result<PublishOutcome> {
    let packages = || -> Result<(Vec<Packed>, bool)> {
        match pack::existing(project)? {
            Some(existing) => Ok((existing.packages, false)),
            None => Ok((pack::pack(project, &PackOptions { dry_run: options.dry_run })?.packages, true)),
        }
    };
    publish_with(project, options, &|name| std::env::var(name), packages)
}

/// [`publish`] with the environment and the packages given (tests give their own).
fn publish_with(
    project: &Project,
    options: &PublishOptions,
    env: &dyn Fn(&str) -> std::result::Result<String, std::env::VarError>,
    packages: impl FnOnce() -> Result<(Vec<Packed>, bool)>,
) -> Result<PublishOutcome> {
    let default_feed = project.config.feeds.is_empty();
    let feeds: Vec<FeedConfig> = match default_feed {
        true => vec![FeedConfig::default_folder()],
        false => project.config.feeds.clone(),
    };
    let selected = select(&feeds, &options.feeds)?;
    let in_play = in_play(&feeds, &selected);
    let mut warnings = Vec::new();
    let keys = read_keys(&feeds, &in_play, env, options.dry_run, &mut warnings)?;
    // What the feeds ask of each package's symbols is known from castoff.toml alone:
    // check it before packing, so a mismatch writes nothing.
    plan(&feeds, &selected, &configured(project))?;
    let (packages, packed) = packages()?;
    if packages.is_empty() {
        return Err(Error::usage(
            "there is nothing to publish: castoff.toml has no [[package]]",
            "add a [[package]] (e.g. nuspec = \"src/App.nuspec\") and run `castoff pack`",
        ));
    }
    let plans = plan(&feeds, &selected, &packages)?;

    if options.dry_run {
        skip_warnings(&plans, &feeds, &mut warnings);
        let outcomes = plans.iter().map(|plan| dry_run(&feeds, plan, &packages)).collect();
        return Ok(PublishOutcome { dry_run: true, packed, default_feed, feeds: outcomes, warnings });
    }

    let connected = connect(project, &feeds, &in_play, &keys)?;
    let plans = resolve_routes(&feeds, plans, &connected, &packages)?;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> =
            plans.iter().map(|plan| scope.spawn(|| execute(&feeds, plan, &connected, &packages))).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| (None, Err(Error::Internal("a publishing thread panicked".into()))))
            })
            .collect::<Vec<_>>()
    });
    finish(results, &plans, &feeds, packed, default_feed, warnings)
}

/// Stand-ins for the configured packages, as far as castoff.toml describes them (the
/// symbols format), for checking the feeds' demands before anything is packed.
fn configured(project: &Project) -> Vec<Packed> {
    let dir = project.root.join("dist/nuget");
    (project.config.packages.iter().enumerate())
        .map(|(index, config)| Packed {
            id: format!("package[{index}]"),
            version: "(in castoff.toml)".into(),
            nupkg: dir.join(format!("package{index}.nupkg")),
            sha512: None,
            size: 0,
            symbols: config
                .symbols
                .map(|kind| super::SymbolsFile { kind, path: dir.join(format!("package{index}.symbols")) }),
        })
        .collect()
}

/// The feeds to push to: all, or those named with `--feed`.
fn select(feeds: &[FeedConfig], names: &[String]) -> Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..feeds.len()).collect());
    }
    let mut selected = Vec::new();
    for name in names {
        match feeds.iter().position(|f| &f.name == name) {
            Some(index) if !selected.contains(&index) => selected.push(index),
            Some(_) => {}
            None => {
                let known: Vec<&str> = feeds.iter().map(|f| f.name.as_str()).collect();
                return Err(Error::usage(
                    format!("--feed {name}: no [[feed]] has that name"),
                    format!("configured feeds: {}", known.join(", ")),
                ));
            }
        }
    }
    selected.sort_unstable();
    Ok(selected)
}

/// The selected feeds and the symbols feeds they send to.
fn in_play(feeds: &[FeedConfig], selected: &[usize]) -> Vec<usize> {
    let mut all: BTreeSet<usize> = selected.iter().copied().collect();
    for &index in selected {
        if let Some(target) = &feeds[index].symbols_feed {
            all.extend(feeds.iter().position(|f| &f.name == target));
        }
    }
    all.into_iter().collect()
}

/// Every API key the push needs, read now so a missing one stops everything before
/// anything is pushed. The error names the variable; the value is never shown. A dry
/// run only warns.
fn read_keys(
    feeds: &[FeedConfig],
    in_play: &[usize],
    lookup: &dyn Fn(&str) -> std::result::Result<String, std::env::VarError>,
    dry_run: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<ApiKey>>> {
    let mut keys = vec![None; feeds.len()];
    for &index in in_play {
        let feed = &feeds[index];
        let Some(env) = &feed.api_key_env else { continue };
        let problem = match lookup(env) {
            Ok(value) if value.trim().is_empty() => Some(format!("the API key variable {env} is empty")),
            Ok(value) if !value.trim().bytes().all(|b| (0x21..0x7f).contains(&b)) => Some(format!(
                "the API key in {env} has spaces, line breaks or non-ASCII characters, so it cannot be sent"
            )),
            Ok(value) => {
                keys[index] = Some(ApiKey { env: env.clone(), value: Secret::new(value.trim()) });
                None
            }
            Err(std::env::VarError::NotPresent) => Some(format!("the API key variable {env} is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Some(format!("the API key variable {env} is not valid text")),
        };
        if let Some(problem) = problem {
            let problem = format!("feed `{}`: {problem}", feed.name);
            if dry_run {
                warnings.push(problem);
                continue;
            }
            return Err(Error::usage(
                problem,
                format!("set {env} to the feed's API key (in CI, from a secret); the key never goes in castoff.toml"),
            ));
        }
    }
    Ok(keys)
}

/// Get every feed in play ready: v3 service indexes are read, in parallel.
fn connect(
    project: &Project,
    feeds: &[FeedConfig],
    in_play: &[usize],
    keys: &[Option<ApiKey>],
) -> Result<Vec<Option<Feed>>> {
    let network = project.config.network;
    let results: Vec<(usize, std::result::Result<Feed, FeedError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = in_play
            .iter()
            .map(|&index| {
                let key = keys[index].clone();
                scope.spawn(move || (index, Feed::connect(&feeds[index], &project.root, network, key)))
            })
            .collect();
        handles.into_iter().filter_map(|handle| handle.join().ok()).collect()
    });
    if results.len() != in_play.len() {
        return Err(Error::Internal("a feed connection thread panicked".into()));
    }
    let mut connected: Vec<Option<Feed>> = feeds.iter().map(|_| None).collect();
    for (index, result) in results {
        connected[index] = Some(result.map_err(feed_error)?);
    }
    Ok(connected)
}

/// One feed's pushes, in order; the first error stops this feed (others go on).
fn execute(
    feeds: &[FeedConfig],
    plan: &FeedPlan,
    connected: &[Option<Feed>],
    packages: &[Packed],
) -> (Option<FeedOutcome>, Result<()>) {
    let config = &feeds[plan.feed];
    let mut outcome = feed_outcome(config);
    let result = (|| -> Result<()> {
        for item in &plan.items {
            let package = &packages[item.package];
            let mut already = false;
            if let Some(step) = &item.nupkg {
                let landed = push(feeds, step, connected)?;
                already = matches!(landed, Landed::AlreadyThere(_));
                outcome.files.push(file_outcome(feeds, plan.feed, step, Role::Package, &landed));
            }
            match &item.symbols {
                None => {}
                Some(SymbolsPlan::Skip { file, reason, .. }) => {
                    outcome.files.push(skipped(package, file, reason.clone()));
                }
                Some(SymbolsPlan::Push(step)) if already => {
                    let reason = "the package was already published; its symbols are not pushed again".to_string();
                    outcome.files.push(skipped(package, &step.upload.filename, reason));
                }
                Some(SymbolsPlan::Push(step)) => {
                    let landed = push(feeds, step, connected)?;
                    let mut file = file_outcome(feeds, plan.feed, step, Role::Symbols, &landed);
                    if config.symbols == FeedSymbols::Renamed {
                        let renamed = renamed(step);
                        file.reason = Some(match file.reason {
                            Some(reason) => format!("{renamed}; {reason}"),
                            None => renamed,
                        });
                    }
                    outcome.files.push(file);
                }
            }
        }
        Ok(())
    })();
    (Some(outcome), result)
}

fn push(feeds: &[FeedConfig], step: &Step, connected: &[Option<Feed>]) -> Result<Landed> {
    let target = connected[step.target]
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("feed `{}` was not connected", feeds[step.target].name)))?;
    let route = match step.intent {
        Intent::Resolved(route) => route,
        other => return Err(Error::Internal(format!("unresolved route {other:?}"))),
    };
    target.push(&step.upload, route).map_err(feed_error)
}

fn feed_outcome(config: &FeedConfig) -> FeedOutcome {
    FeedOutcome {
        name: config.name.clone(),
        protocol: config.kind.protocol(),
        url: config.url.clone(),
        files: Vec::new(),
    }
}

fn file_outcome(feeds: &[FeedConfig], feed: usize, step: &Step, role: Role, landed: &Landed) -> FileOutcome {
    let (status, reason) = match landed {
        Landed::Pushed => (FileStatus::Pushed, None),
        Landed::PushedEarlier => (
            FileStatus::Pushed,
            Some("an attempt whose answer was lost had pushed it; the feed holds the same SHA-512".to_string()),
        ),
        Landed::AlreadyThere(Compared::Same) => (FileStatus::AlreadyPublished, Some("same SHA-512 on the feed".into())),
        Landed::AlreadyThere(Compared::NotReadable(why)) => {
            (FileStatus::AlreadyPublished, Some(format!("the feed has this version; not compared: {why}")))
        }
    };
    FileOutcome {
        id: step.upload.id.clone(),
        version: step.upload.version.clone(),
        file: step.upload.filename.clone(),
        role,
        to: (step.target != feed).then(|| feeds[step.target].name.clone()),
        status,
        reason,
    }
}

fn skipped(package: &Packed, file: &str, reason: String) -> FileOutcome {
    FileOutcome {
        id: package.id.clone(),
        version: package.version.clone(),
        file: file.to_string(),
        role: Role::Symbols,
        to: None,
        status: FileStatus::Skipped,
        reason: Some(reason),
    }
}

/// A dry run's outcome: what would be pushed where, from the plan alone (no network).
fn dry_run(feeds: &[FeedConfig], plan: &FeedPlan, packages: &[Packed]) -> FeedOutcome {
    let mut outcome = feed_outcome(&feeds[plan.feed]);
    let would = |step: &Step, role: Role| {
        let reason = match step.intent {
            Intent::Snupkg { .. } => Some("to the SymbolPackagePublish endpoint, if the service index has one".into()),
            _ if role == Role::Symbols && feeds[plan.feed].symbols == FeedSymbols::Renamed => Some(renamed(step)),
            _ => None,
        };
        FileOutcome {
            id: step.upload.id.clone(),
            version: step.upload.version.clone(),
            file: step.upload.filename.clone(),
            role,
            to: (step.target != plan.feed).then(|| feeds[step.target].name.clone()),
            status: FileStatus::WouldPush,
            reason,
        }
    };
    for item in &plan.items {
        if let Some(step) = &item.nupkg {
            outcome.files.push(would(step, Role::Package));
        }
        match &item.symbols {
            Some(SymbolsPlan::Push(step)) => outcome.files.push(would(step, Role::Symbols)),
            Some(SymbolsPlan::Skip { file, reason, .. }) => {
                outcome.files.push(skipped(&packages[item.package], file, reason.clone()));
            }
            None => {}
        }
    }
    outcome
}

fn renamed(step: &Step) -> String {
    format!("the symbols package {}, renamed", file_name(&step.upload.path))
}

/// Gather the feeds' results: the outcome when all succeeded, else one error naming
/// every feed that failed and what the others did.
fn finish(
    results: Vec<(Option<FeedOutcome>, Result<()>)>,
    plans: &[FeedPlan],
    feeds: &[FeedConfig],
    packed: bool,
    default_feed: bool,
    mut warnings: Vec<String>,
) -> Result<PublishOutcome> {
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for ((outcome, result), plan) in results.into_iter().zip(plans) {
        if let Err(error) = result {
            failures.push((plan.feed, error));
        }
        if let Some(outcome) = outcome {
            outcomes.push(outcome);
        }
    }
    skip_warnings(plans, feeds, &mut warnings);
    if failures.is_empty() {
        return Ok(PublishOutcome { dry_run: false, packed, default_feed, feeds: outcomes, warnings });
    }
    let hint = failures.first().and_then(|(_, e)| e.hint()).unwrap_or_default();
    let mut problem = failures.iter().map(|(_, e)| e.to_string()).collect::<Vec<_>>().join("\n");
    let done: Vec<String> = outcomes
        .iter()
        .filter(|o| o.files.iter().any(|f| f.status != FileStatus::Skipped))
        .map(|o| {
            let n = |s: FileStatus| o.files.iter().filter(|f| f.status == s).count();
            format!(
                "feed {}: {} pushed, {} already published",
                o.name,
                n(FileStatus::Pushed),
                n(FileStatus::AlreadyPublished)
            )
        })
        .collect();
    if !done.is_empty() {
        problem.push_str(&format!("\nbefore that or meanwhile: {}", done.join("; ")));
    }
    Err(Error::Failed { problem, hint })
}

/// A feed's error as castoff's, keeping its hint; bad input exits 2.
fn feed_error(error: FeedError) -> Error {
    match error.is_user_error() {
        true => Error::usage(error.to_string(), error.hint()),
        false => Error::Failed { problem: error.to_string(), hint: error.hint() },
    }
}

#[cfg(test)]
#[path = "feed/publish_tests.rs"]
mod tests;
