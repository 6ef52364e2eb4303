//! The release journal: `.castoff/journal/<version>.json`, one per version released.
//!
//! It is written before the first change (so a bump that dies half-way is known to be
//! this release's) and rewritten atomically after every step, with that step's result
//! appended: digests, package hashes, the feeds' answers. A re-run of the same release
//! reads it to continue: steps recorded as done are checked and skipped, the rest run.
//! Entries are only ever appended, so the file is also the release's history.
//!
//! It holds no secrets: results are the outcomes castoff prints, which never carry one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{BumpChoice, StepKind, StepStatus};
use crate::error::{Error, Location, Result};
use crate::fsutil::write_atomic;

pub const JOURNAL_DIR: &str = ".castoff/journal";

/// Bumped when the format changes incompatibly; older castoffs refuse newer journals.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    /// The version this release publishes.
    pub version: String,
    /// VERSION when the release started (equal to `version` when nothing was bumped).
    pub previous: String,
    /// How the version was chosen, so a resumed bump is the same bump.
    pub bump: BumpChoice,
    /// Seconds since the epoch.
    pub started: u64,
    /// Set once every planned step is done.
    pub complete: bool,
    pub entries: Vec<Entry>,
}

/// One step (or one part of a step: a feed of `publish`) finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub step: StepKind,
    /// The part of the step this entry covers (a feed's name for `publish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub status: StepStatus,
    /// Seconds since the epoch.
    pub finished: u64,
    pub seconds: f64,
    pub result: serde_json::Value,
}

impl Journal {
    pub fn new(version: &str, previous: &str, bump: BumpChoice) -> Journal {
        Journal {
            format: FORMAT,
            version: version.to_string(),
            previous: previous.to_string(),
            bump,
            started: now(),
            complete: false,
            entries: Vec::new(),
        }
    }

    /// `.castoff/journal/<version>.json`, relative to the project root.
    pub fn relative_path(version: &str) -> String {
        format!("{JOURNAL_DIR}/{version}.json")
    }

    pub fn path(root: &Path, version: &str) -> PathBuf {
        root.join(Self::relative_path(version))
    }

    /// The journal of `version`, if there is one.
    pub fn load(root: &Path, version: &str) -> Result<Option<Journal>> {
        let path = Self::path(root, version);
        match fs::read(&path) {
            Ok(bytes) => parse(&bytes, &Self::relative_path(version)).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Every journal not marked complete, oldest version first.
    pub fn unfinished(root: &Path) -> Result<Vec<Journal>> {
        let dir = root.join(JOURNAL_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name.strip_suffix(".json").filter(|v| !v.starts_with('.')) else { continue };
            if let Some(journal) = Self::load(root, version)?.filter(|j| !j.complete) {
                found.push(journal);
            }
        }
        found.sort_by_key(|journal| semver_key(&journal.version));
        Ok(found)
    }

    /// Write it atomically (temp file, fsync, rename).
    pub fn save(&self, root: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot serialise the journal: {e}")))?;
        write_atomic(&Self::path(root, &self.version), &bytes)
    }

    pub fn record(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// The latest entry showing `step` (and `part`, when given) complete.
    pub fn done(&self, step: StepKind, part: Option<&str>) -> Option<&Entry> {
        self.entries.iter().rev().find(|entry| {
            entry.step == step
                && matches!(entry.status, StepStatus::Done | StepStatus::AlreadyDone)
                && (part.is_none() || entry.part.as_deref() == part)
        })
    }

    /// The steps recorded complete, in step order.
    pub fn done_steps(&self) -> Vec<StepKind> {
        StepKind::ALL.into_iter().filter(|step| self.done(*step, None).is_some()).collect()
    }
}

fn parse(bytes: &[u8], shown: &str) -> Result<Journal> {
    let hint = format!("it is castoff's record of an unfinished release; remove {shown} to start that release over");
    let journal: Journal = serde_json::from_slice(bytes).map_err(|e| {
        Error::invalid(Location::file(shown).with_line(e.line()), format!("the release journal is damaged: {e}"), &hint)
    })?;
    if journal.format > FORMAT {
        return Err(Error::invalid(
            Location::file(shown).with_key("format"),
            format!("the journal has format {}, newer than this castoff understands ({FORMAT})", journal.format),
            "finish the release with the castoff that started it, or upgrade castoff",
        ));
    }
    Ok(journal)
}

fn semver_key(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version).ok()
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_latest_done_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::new("1.2.4", "1.2.3", BumpChoice::Auto);
        let entry = |step, part: Option<&str>, status, n: u64| Entry {
            step,
            part: part.map(str::to_string),
            status,
            finished: n,
            seconds: 0.5,
            result: serde_json::json!({ "n": n }),
        };
        journal.record(entry(StepKind::Bump, None, StepStatus::Done, 1));
        journal.record(entry(StepKind::Publish, Some("a"), StepStatus::Done, 2));
        journal.record(entry(StepKind::Publish, Some("b"), StepStatus::Failed, 3));
        journal.save(dir.path()).unwrap();
        let loaded = Journal::load(dir.path(), "1.2.4").unwrap().unwrap();
        assert_eq!(loaded.done_steps(), vec![StepKind::Bump, StepKind::Publish]);
        assert!(loaded.done(StepKind::Publish, Some("b")).is_none());
        assert_eq!(loaded.done(StepKind::Publish, Some("a")).unwrap().result["n"], 2);
        assert_eq!(Journal::unfinished(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_journal_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(JOURNAL_DIR)).unwrap();
        fs::write(Journal::path(dir.path(), "1.0.0"), "{\n \"format\": 1,\n oops").unwrap();
        let error = Journal::load(dir.path(), "1.0.0").unwrap_err();
        let location = error.location().unwrap();
        assert_eq!(location.file, Path::new(".castoff/journal/1.0.0.json"));
        assert_eq!(location.line, Some(3));
        assert!(error.hint().unwrap().contains("remove"));
    }
}
