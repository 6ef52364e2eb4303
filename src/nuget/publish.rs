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
//!
//! [`check_published`] asks, without pushing anything, whether what a publish recorded
//! is still on the feeds (a release re-run's verification).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::feed::http::ApiKey;
use super::feed::plan::{file_name, plan, resolve_routes, skip_warnings, FeedPlan, Intent, Step, SymbolsPlan};
use super::feed::{Compared, Feed, FeedError, Holds, Landed, Meter, Route};
use super::pack::{self, PackOptions};
use super::Packed;
use crate::config::{FeedConfig, FeedSymbols, DEFAULT_FEED_DIR};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::secret::Secret;

/// Told `(feed, file name, sent, total)` bytes as an upload goes out: `feed` is where
/// the file goes (a `symbols_feed` for symbols sent there), `file` the name the feed
/// receives. Called at most every 64 KiB and once when the whole file has been read,
/// from the publishing threads (one per feed) at once. A retry starts again from 0.
pub type UploadProgress = std::sync::Arc<dyn Fn(&str, &str, u64, u64) + Send + Sync>;

#[derive(Clone, Default)]
pub struct PublishOptions {
    /// Show what would be pushed where; push nothing.
    pub dry_run: bool,
    /// Only these feeds (by name); empty means all.
    pub feeds: Vec<String>,
    /// Upload progress, for HTTP and folder feeds alike.
    pub progress: Option<UploadProgress>,
    /// Read each file back before pushing it, and skip it when the feed already holds
    /// the same SHA-512. A resumed release sets it: a push cut off by a crash may have
    /// landed without being journalled, and should not be sent (and answered 409)
    /// again. A fresh publish leaves it off: the 409 read-back covers that case at no
    /// extra request.
    pub check_first: bool,
}

impl fmt::Debug for PublishOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishOptions")
            .field("dry_run", &self.dry_run)
            .field("feeds", &self.feeds)
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("check_first", &self.check_first)
            .finish()
    }
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedOutcome {
    pub name: String,
    pub protocol: String,
    /// The feed's url as configured.
    pub url: String,
    pub files: Vec<FileOutcome>,
}

/// One file and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Package,
    Symbols,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
            None => Ok((
                pack::pack(project, &PackOptions { dry_run: options.dry_run, check_only: options.dry_run })?.packages,
                true,
            )),
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
    let (feeds, default_feed) = feed_configs(project);
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
    let pushing = Pushing { progress: options.progress.as_ref(), check_first: options.check_first };
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> =
            plans.iter().map(|plan| scope.spawn(|| execute(&feeds, plan, &connected, &packages, &pushing))).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| (None, Err(Error::Internal("a publishing thread panicked".into()))))
            })
            .collect::<Vec<_>>()
    });
    finish(results, &plans, &feeds, packed, default_feed, warnings)
}

/// What a release checks before its first step, reporting every problem rather than
/// the first: each feed's API key variable is set and sendable, what the feeds ask of
/// the packages' symbols matches castoff.toml, and each feed answers (a v3 service
/// index is read; v2 and folder feeds need nothing until the push).
pub fn preflight(project: &Project) -> Vec<Error> {
    let (feeds, _) = feed_configs(project);
    let all: Vec<usize> = (0..feeds.len()).collect();
    let mut problems = Vec::new();
    let mut keys: Vec<Option<ApiKey>> = vec![None; feeds.len()];
    for &index in &all {
        match read_keys(&feeds, &[index], &|name| std::env::var(name), false, &mut Vec::new()) {
            Ok(mut found) => keys[index] = found[index].take(),
            Err(error) => problems.push(error),
        }
    }
    if let Err(error) = plan(&feeds, &all, &configured(project)) {
        problems.push(error);
    }
    let network = project.config.network;
    let answers: Vec<std::result::Result<Feed, FeedError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (all.iter())
            .filter(|&&index| feeds[index].api_key_env.is_none() || keys[index].is_some())
            .map(|&index| {
                let key = keys[index].clone();
                let feeds = &feeds;
                scope.spawn(move || Feed::connect(&feeds[index], &project.root, network, key))
            })
            .collect();
        handles.into_iter().filter_map(|handle| handle.join().ok()).collect()
    });
    problems.extend(answers.into_iter().filter_map(|answer| answer.err()).map(feed_error));
    problems
}

/// Whether each feed of a publish's recorded outcome still holds every file recorded
/// there as pushed or already published: `(feed name, None)` when it does, or
/// `(feed name, Some(reason))` naming the first file that is missing or different (with
/// both SHA-512s), in the order given. Nothing is pushed or written.
///
/// - Folder feeds: the SHA-512 of the feed's file against the local packed file, and a
///   package's `.nuspec` and `.sha512` beside it (an interrupted publish leaves them out).
/// - v3 and v2 feeds: read back as after a 409 (the v3 flat container; the v2 download
///   or OData entry). A 404 counts as missing, even from a feed that may still be
///   indexing: publishing again is harmless (409, same SHA-512).
/// - Symbols packages sent to a v3 symbol endpoint cannot be read back from a feed, and
///   neither can packages on a feed without a download or one that wants credentials to
///   read: these count as present.
///
/// No API key is read: read-backs never carry one. The local files are the packed
/// files of the current VERSION (`pack::existing`); when they are gone, each feed with
/// files to check says so. `Err` only when a feed cannot be asked (unreachable, an
/// unreadable service index or local file).
pub fn check_published(project: &Project, feeds: &[FeedOutcome]) -> Result<Vec<(String, Option<String>)>> {
    check_with(project, feeds, || Ok(pack::existing(project)?.map(|existing| existing.packages)))
}

/// [`check_published`] with the packages given (tests give their own).
fn check_with(
    project: &Project,
    feeds: &[FeedOutcome],
    packages: impl FnOnce() -> Result<Option<Vec<Packed>>>,
) -> Result<Vec<(String, Option<String>)>> {
    let (configs, _) = feed_configs(project);
    let mut answers: Vec<(String, Option<String>)> = feeds.iter().map(|f| (f.name.clone(), None)).collect();
    // (answer, feed config) for every recorded feed with something to check.
    let mut checked: Vec<(usize, usize)> = Vec::new();
    for (number, outcome) in feeds.iter().enumerate() {
        if recorded(outcome).is_empty() {
            continue;
        }
        match configs.iter().position(|config| config.name == outcome.name) {
            Some(index) => checked.push((number, index)),
            None => answers[number].1 = Some(format!("feed `{}` is no longer in castoff.toml", outcome.name)),
        }
    }
    if checked.is_empty() {
        return Ok(answers);
    }
    let Some(packages) = packages()? else {
        for (number, _) in &checked {
            answers[*number].1 = Some(format!(
                "feed `{}`: this version's packed files are gone from disk, so the feed's copies cannot be compared",
                feeds[*number].name
            ));
        }
        return Ok(answers);
    };
    let selected: Vec<usize> = checked.iter().map(|(_, index)| *index).collect();
    // The plan says which local file and route each recorded file stands for.
    let plans = plan(&configs, &selected, &packages)?;
    let in_play = in_play(&configs, &selected);
    let connected = connect(project, &configs, &in_play, &vec![None; configs.len()])?;
    let plans = resolve_routes(&configs, plans, &connected, &packages)?;
    let results: Vec<Result<Option<String>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = checked
            .iter()
            .zip(&plans)
            .map(|((number, _), plan)| {
                let files = recorded(&feeds[*number]);
                let (configs, connected, root) = (&configs, &connected, &project.root);
                scope.spawn(move || still_there(configs, plan, connected, &files, root))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err(Error::Internal("a checking thread panicked".into()))))
            .collect()
    });
    for ((number, _), result) in checked.iter().zip(results) {
        answers[*number].1 = result?;
    }
    Ok(answers)
}

/// The files `outcome` records as on the feed (pushed or already published).
fn recorded(outcome: &FeedOutcome) -> Vec<&FileOutcome> {
    let published = |f: &&FileOutcome| matches!(f.status, FileStatus::Pushed | FileStatus::AlreadyPublished);
    outcome.files.iter().filter(published).collect()
}

/// The first of `files` (recorded for `plan`'s feed) that its feed no longer holds.
fn still_there(
    feeds: &[FeedConfig],
    plan: &FeedPlan,
    connected: &[Option<Feed>],
    files: &[&FileOutcome],
    root: &std::path::Path,
) -> Result<Option<String>> {
    for file in files {
        let planned = |step: &&Step| {
            step.upload.filename == file.file && step.upload.id == file.id && step.upload.version == file.version
        };
        let step = plan.items.iter().find_map(|item| {
            let step = match (file.role, &item.symbols) {
                (Role::Package, _) => item.nupkg.as_ref(),
                (Role::Symbols, Some(SymbolsPlan::Push(step))) => Some(step),
                (Role::Symbols, _) => None,
            };
            step.filter(planned)
        });
        let Some(step) = step else {
            return Ok(Some(format!(
                "feed `{}`: {} was published, but castoff.toml and the packed files no longer send it there",
                feeds[plan.feed].name, file.file
            )));
        };
        let (target, route) = target(feeds, step, connected)?;
        let shown = step.upload.path.strip_prefix(root).unwrap_or(&step.upload.path);
        match target.holds(&step.upload, route).map_err(feed_error)? {
            Holds::Same | Holds::Unreadable(_) => {}
            Holds::Missing(why) => {
                return Ok(Some(format!("feed `{}` no longer has {}: {why}", target.name, file.file)));
            }
            Holds::Different { local, remote } => {
                return Ok(Some(format!(
                    "feed `{}` has {} with different content: SHA-512 {remote} on the feed, {local} in {}",
                    target.name,
                    file.file,
                    shown.display()
                )));
            }
        }
    }
    Ok(None)
}

/// The feeds castoff.toml configures, or (`true`) the embedded default folder feed when
/// it has no `[[feed]]`.
fn feed_configs(project: &Project) -> (Vec<FeedConfig>, bool) {
    match project.config.feeds.is_empty() {
        true => (vec![FeedConfig::default_folder()], true),
        false => (project.config.feeds.clone(), false),
    }
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
/// How files are pushed: with progress, and whether to look first.
struct Pushing<'a> {
    progress: Option<&'a UploadProgress>,
    check_first: bool,
}

fn execute(
    feeds: &[FeedConfig],
    plan: &FeedPlan,
    connected: &[Option<Feed>],
    packages: &[Packed],
    pushing: &Pushing<'_>,
) -> (Option<FeedOutcome>, Result<()>) {
    let config = &feeds[plan.feed];
    let mut outcome = feed_outcome(config);
    let result = (|| -> Result<()> {
        for item in &plan.items {
            let package = &packages[item.package];
            let mut already = false;
            if let Some(step) = &item.nupkg {
                let landed = push(feeds, step, connected, pushing)?;
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
                    let landed = push(feeds, step, connected, pushing)?;
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

fn push(feeds: &[FeedConfig], step: &Step, connected: &[Option<Feed>], pushing: &Pushing<'_>) -> Result<Landed> {
    let (target, route) = target(feeds, step, connected)?;
    if pushing.check_first && target.holds(&step.upload, route).map_err(feed_error)? == Holds::Same {
        return Ok(Landed::Found);
    }
    let meter = pushing.progress.map(|progress| {
        let (progress, feed, file) = (progress.clone(), target.name.clone(), step.upload.filename.clone());
        Meter::new(move |sent, total| progress(&feed, &file, sent, total))
    });
    target.push(&step.upload, route, meter.as_ref()).map_err(feed_error)
}

/// The connected feed a step goes to, and by which route.
fn target<'a>(feeds: &[FeedConfig], step: &Step, connected: &'a [Option<Feed>]) -> Result<(&'a Feed, Route)> {
    let target = connected[step.target]
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("feed `{}` was not connected", feeds[step.target].name)))?;
    match step.intent {
        Intent::Resolved(route) => Ok((target, route)),
        other => Err(Error::Internal(format!("unresolved route {other:?}"))),
    }
}

fn feed_outcome(config: &FeedConfig) -> FeedOutcome {
    FeedOutcome {
        name: config.name.clone(),
        protocol: config.kind.protocol().to_string(),
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
        Landed::Found => (
            FileStatus::AlreadyPublished,
            Some("found on the feed with the same SHA-512 before pushing (an earlier, interrupted run sent it)".into()),
        ),
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
