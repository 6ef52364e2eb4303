//! A castoff project: its root, its validated config, and the version operations a
//! developer, CI job or xtask asks for (`version`, `status`, `bump`).
//!
//! Writes go through one sequence, under the project lock:
//! baseline (recording the new version and the one it was bumped from) first, then
//! VERSION. If castoff dies between the two, the baseline names a version newer than
//! VERSION, and VERSION still holds the version the bump started from; the next bump
//! sees that, finishes the interrupted bump and stops, so a re-run never bumps twice.
//! A VERSION lowered by hand (a revert, a merge) holds some other version and is
//! bumped from as it is.

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use crate::config::{self, Config, CONFIG_FILE};
use crate::error::{Error, IoContext, Location, Result};
use crate::sources::{Changes, Scan, Sources};
use crate::version::{self, BumpRequest, ProjectLock, VersionFile};

/// castoff's own directory: the committed baseline, and private state git ignores.
pub const CASTOFF_DIR: &str = ".castoff";
pub const LOCK_FILE: &str = ".castoff/lock";
/// Keeps castoff's private files out of git; the baseline stays committed.
pub const CASTOFF_GITIGNORE: (&str, &str) = (".castoff/.gitignore", "cache/\nlock\njournal/\nrelease.lock\n");

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    /// castoff.toml as shown in messages; `None` when running on the embedded defaults.
    pub config_file: Option<PathBuf>,
    /// Set only on the copy a release plan describes its steps with
    /// ([`Project::planning_at`]): the version the release will have once bumped, so a
    /// dry run shows the tags and files of that version without writing VERSION.
    pub planned_version: Option<Version>,
}

/// What `castoff status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: String,
    pub tracked: usize,
    pub changes: Changes,
    /// A `castoff bump` has work to do: tracked sources changed (a `castoff bump auto`
    /// would raise the version), or an interrupted bump waits to be finished.
    pub bump_due: bool,
    pub has_baseline: bool,
    /// `[version] sources` is empty, so nothing can call for a bump.
    pub no_sources: bool,
    /// Set when VERSION was raised by hand after the baseline was recorded.
    pub raised_by_hand: bool,
    /// Set when a bump to this version was interrupted; the next bump finishes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_bump: Option<String>,
    pub warnings: Vec<String>,
    pub stats: crate::sources::ScanStats,
}

/// Options for writing commands.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Compute and report, write nothing (not even the stat cache or the lock file).
    pub dry_run: bool,
}

/// What `castoff bump` did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct BumpOutcome {
    pub previous: String,
    pub version: String,
    /// The git tag for `version`, from `[version] tag`.
    pub tag: String,
    pub bumped: bool,
    /// One line saying why, for humans and logs.
    pub reason: String,
    /// The tracked sources that changed since the baseline.
    pub changes: Changes,
    pub dry_run: bool,
    pub warnings: Vec<String>,
}

impl BumpOutcome {
    /// One line for humans and logs: what changed and why.
    pub fn summary(&self) -> String {
        match (self.bumped, self.dry_run) {
            (true, false) => format!("bumped {} → {} ({})", self.previous, self.version, self.reason),
            (true, true) => format!("dry run: would bump {} → {} ({})", self.previous, self.version, self.reason),
            (false, _) => format!("{} unchanged: {}", self.version, self.reason),
        }
    }
}

impl Project {
    /// Open the project that contains `start` (see [`config::locate`]).
    pub fn open(start: &Path, explicit_config: Option<&Path>) -> Result<Project> {
        let located = config::locate(start, explicit_config)?;
        let (config, config_file) = match &located.file {
            Some(file) => {
                let shown = shown_path(&located.root, file);
                let text = fs::read(file).with_path("read", file)?;
                let text = String::from_utf8(text).map_err(|_| {
                    Error::invalid(Location::file(&shown), "castoff.toml is not UTF-8 text", "save it as UTF-8")
                })?;
                (Config::parse(&text, &shown)?, Some(shown))
            }
            None => (Config::default(), None),
        };
        let project = Project { root: located.root, config, config_file, planned_version: None };
        project.check_version_file_inside()?;
        Ok(project)
    }

    /// castoff.toml as named in messages (the file name even when it does not exist).
    pub fn config_shown(&self) -> PathBuf {
        self.config_file.clone().unwrap_or_else(|| PathBuf::from(CONFIG_FILE))
    }

    pub fn version_path(&self) -> PathBuf {
        self.root.join(&self.config.version.file)
    }

    /// A VERSION that is a symlink out of the project would let a bump write elsewhere.
    fn check_version_file_inside(&self) -> Result<()> {
        resolves_inside(&self.root, &self.config.version.file, &self.config_shown(), "version.file")
    }

    /// The git tag for `version`, from the `[version] tag` template (validated on load).
    pub fn tag_for(&self, version: &Version) -> String {
        crate::placeholders::expand(&self.config.version.tag, |name| crate::placeholders::version_value(version, name))
            .unwrap_or_else(|_| format!("v{version}"))
    }

    /// Take the project lock (see [`ProjectLock`]); held until the value is dropped.
    pub fn lock(&self, purpose: &str) -> Result<ProjectLock> {
        lock_root(&self.root, purpose)
    }

    pub fn read_version(&self) -> Result<VersionFile> {
        let mut file = VersionFile::read(&self.version_path(), Path::new(&self.config.version.file))?;
        if let Some(planned) = &self.planned_version {
            file.version = planned.clone();
        }
        Ok(file)
    }

    /// This project as it will be at `version`, for describing (never running) the
    /// steps of a release whose bump has not happened yet.
    pub fn planning_at(&self, version: Version) -> Project {
        Project { planned_version: Some(version), ..self.clone() }
    }

    pub fn sources(&self) -> Result<Sources> {
        Sources::new(&self.root, &self.config.version, &self.config_shown())
    }

    /// Compare the tracked sources with the baseline. Updates the stat cache only.
    pub fn status(&self) -> Result<Status> {
        let version = self.read_version()?.version;
        let sources = self.sources()?;
        let scan = sources.scan(true)?;
        let mut warnings = scan.warnings.clone();
        if sources.is_empty() {
            warnings.push(format!(
                "no sources are tracked: list them in {} under [version] sources",
                self.config_shown().display()
            ));
        }
        let interrupted = interrupted_bump(&version, &scan);
        let raised_by_hand = raised_by_hand(&version, &scan);
        let has_baseline = scan.baseline_version.is_some();
        let no_sources = sources.is_empty();
        let sources_changed = !no_sources && has_baseline && !scan.changes.is_empty() && !raised_by_hand;
        Ok(Status {
            version: version.to_string(),
            tracked: scan.tracked().len(),
            bump_due: interrupted.is_some() || sources_changed,
            has_baseline,
            no_sources,
            raised_by_hand,
            interrupted_bump: interrupted.map(|v| v.to_string()),
            changes: scan.reported_changes(),
            warnings,
            stats: scan.stats,
        })
    }

    /// Bump VERSION as `request` says and record the new source baseline.
    pub fn bump(&self, request: &BumpRequest, options: WriteOptions) -> Result<BumpOutcome> {
        // Bad input is reported before anything (even the lock file) is created: a broken
        // VERSION, or a bump that cannot apply to it (`release` of a plain version).
        let before = self.read_version()?;
        if *request != BumpRequest::Auto {
            self.next_version(&before.version, request)?;
        }
        let _lock = match options.dry_run {
            true => None,
            false => Some(self.lock(&format!("castoff bump {request}"))?),
        };
        // Read again under the lock: another castoff may have bumped meanwhile.
        let mut file = self.read_version()?;
        let current = file.version.clone();
        let sources = self.sources()?;
        let scan = sources.scan(!options.dry_run)?;
        let outcome = |version: &Version, bumped: bool, reason: String| BumpOutcome {
            previous: current.to_string(),
            version: version.to_string(),
            tag: self.tag_for(version),
            bumped,
            reason,
            changes: scan.reported_changes(),
            dry_run: options.dry_run,
            warnings: scan.warnings.clone(),
        };
        let record = |version: &Version, from: Option<&Version>| -> Result<()> {
            if options.dry_run {
                return Ok(());
            }
            ensure_castoff_gitignore(&self.root)?;
            sources.record_baseline(&scan, version, from)
        };

        if let Some(target) = interrupted_bump(&current, &scan) {
            if !options.dry_run {
                file.write(&target)?;
            }
            return Ok(outcome(&target, true, format!("finished an interrupted bump to {target}; not bumping again")));
        }

        let next = match request {
            BumpRequest::Auto if sources.is_empty() => {
                let config = self.config_shown();
                let reason = format!("no sources are tracked ([version] sources in {})", config.display());
                return Ok(outcome(&current, false, reason));
            }
            BumpRequest::Auto if scan.baseline_version.is_none() => {
                record(&current, None)?;
                return Ok(outcome(
                    &current,
                    false,
                    format!(
                        "no source baseline yet: recorded one for {current} ({} files); later changes call for a bump",
                        scan.tracked().len()
                    ),
                ));
            }
            BumpRequest::Auto if raised_by_hand(&current, &scan) => {
                record(&current, None)?;
                return Ok(outcome(
                    &current,
                    false,
                    format!("VERSION was raised by hand to {current}; recorded the source baseline for it"),
                ));
            }
            BumpRequest::Auto if scan.changes.is_empty() => {
                let reason = format!("no tracked source changed since the baseline ({} files)", scan.tracked().len());
                return Ok(outcome(&current, false, reason));
            }
            // Checked before the lock too; VERSION may have moved since.
            _ => self.next_version(&current, request)?,
        };
        let reason = match request {
            BumpRequest::Auto => format!("{} tracked source(s) changed", scan.changes.len()),
            other => format!("bump {other}"),
        };
        if !options.dry_run {
            record(&next, Some(&current))?;
            file.write(&next)?;
        }
        Ok(outcome(&next, true, reason))
    }

    /// Move VERSION from `from` to `target`, recording the baseline first (the same
    /// write order as [`Project::bump`]), under the project lock: what a release does
    /// once its plan has fixed the version. Idempotent: VERSION already at `target` is
    /// left alone (`Ok(false)`), so a release killed anywhere in its bump finishes it
    /// on the next run and never bumps twice. VERSION at neither is an error: someone
    /// else moved it.
    pub fn bump_to(&self, from: &Version, target: &Version) -> Result<bool> {
        let _lock = self.lock(&format!("castoff release: bump {from} → {target}"))?;
        let mut file = self.read_version()?;
        if file.version == *target {
            return Ok(false);
        }
        if file.version != *from {
            return Err(Error::Failed {
                problem: format!(
                    "VERSION holds {}, and this release was bumping it from {from} to {target}",
                    file.version
                ),
                hint: format!(
                    "someone changed VERSION meanwhile: set it back to {from}, or remove \
                     .castoff/journal/{target}.json to abandon that release"
                ),
            });
        }
        let sources = self.sources()?;
        let scan = sources.scan(true)?;
        ensure_castoff_gitignore(&self.root)?;
        sources.record_baseline(&scan, target, Some(from))?;
        file.write(target)?;
        Ok(true)
    }

    /// The version `request` makes of `current`, or the reason it cannot, located at
    /// VERSION.
    fn next_version(&self, current: &Version, request: &BumpRequest) -> Result<Version> {
        version::next_version(current, request).map_err(|e| {
            let hint = e.hint();
            Error::invalid(Location::file(&self.config.version.file).with_line(1), e.to_string(), hint)
        })
    }
}

/// The baseline was recorded by a bump from the version VERSION still holds, to a newer
/// one: that bump wrote the baseline and died before writing VERSION. A baseline newer
/// than VERSION for any other reason (VERSION lowered by a revert or merge, or a
/// baseline from before castoff recorded `from`) is not an interrupted bump.
fn interrupted_bump(current: &Version, scan: &Scan) -> Option<Version> {
    match (&scan.baseline_version, &scan.baseline_from) {
        (Some(recorded), Some(from)) if recorded > current && from == current => Some(recorded.clone()),
        _ => None,
    }
}

/// VERSION is newer than the version the baseline was recorded for: someone edited it.
/// Like make, a target newer than its prerequisites is up to date.
fn raised_by_hand(current: &Version, scan: &Scan) -> bool {
    scan.baseline_version.as_ref().is_some_and(|recorded| recorded < current)
}

/// Check that `rel` (from config `key`) does not resolve, through symlinks, to a place
/// outside `root`. A path that does not exist yet passes: nothing can be followed.
pub(crate) fn resolves_inside(root: &Path, rel: &str, config_shown: &Path, key: &str) -> Result<()> {
    let (Ok(root), Ok(real)) = (root.canonicalize(), root.join(rel).canonicalize()) else {
        return Ok(());
    };
    if real.starts_with(&root) {
        return Ok(());
    }
    Err(Error::invalid(
        Location::file(config_shown).with_key(key),
        format!("{rel} resolves to {}, outside the project", real.display()),
        format!("make {rel} a regular file inside the project, not a symlink out of it"),
    ))
}

/// Take the project lock of the project rooted at `root`, creating `.castoff/` (with its
/// `.gitignore`) if needed. A symlink at `.castoff` or at the lock is refused.
pub fn lock_root(root: &Path, purpose: &str) -> Result<ProjectLock> {
    ensure_castoff_dir(root)?;
    let path = root.join(LOCK_FILE);
    if fs::symlink_metadata(&path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(version::lock::symlinked_lock(Path::new(LOCK_FILE)));
    }
    ProjectLock::acquire(&path, purpose, version::lock::DEFAULT_WAIT)
}

/// `path` relative to `root` when it is inside it, for short messages.
pub fn shown_path(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

/// Make sure `.castoff/` is a real directory (a symlink there is an error: castoff would
/// write wherever it points). When castoff creates it, it also writes its `.gitignore`,
/// so the cache and lock never show up in `git status`.
pub fn ensure_castoff_dir(root: &Path) -> Result<()> {
    if crate::fsutil::ensure_real_dir(root, CASTOFF_DIR)? {
        write_castoff_gitignore(root)?;
    }
    Ok(())
}

/// Ensure `.castoff/.gitignore` exists and names every private file, so the cache,
/// the locks and the release journals stay out of commits. A file from an older
/// castoff gets the missing lines appended; lines the user added are kept.
pub fn ensure_castoff_gitignore(root: &Path) -> Result<()> {
    ensure_castoff_dir(root)?;
    let path = root.join(CASTOFF_GITIGNORE.0);
    match fs::symlink_metadata(&path) {
        Err(_) => write_castoff_gitignore(root)?,
        Ok(meta) if meta.is_file() => {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let missing: Vec<&str> =
                CASTOFF_GITIGNORE.1.lines().filter(|line| !text.lines().any(|have| have.trim() == *line)).collect();
            if !missing.is_empty() {
                let separator = if text.is_empty() || text.ends_with('\n') { "" } else { "\n" };
                let updated = format!("{text}{separator}{}\n", missing.join("\n"));
                crate::fsutil::write_atomic(&path, updated.as_bytes())?;
            }
        }
        Ok(_) => {}
    }
    Ok(())
}

fn write_castoff_gitignore(root: &Path) -> Result<()> {
    let (name, contents) = CASTOFF_GITIGNORE;
    crate::fsutil::write_atomic(&root.join(name), contents.as_bytes())
}
