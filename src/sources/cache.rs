//! The uncommitted stat cache (`.castoff/cache/stat.bin`): what each tracked file's
//! stamp was when it was last hashed, and the stamps of the directories walked.
//!
//! With it, checking an unchanged tree reads no file content and lists no directory:
//! one `stat` per directory and per file, spread over the cores. It is only ever a
//! hint: a missing, stale or corrupt cache costs a walk and a re-hash, never a wrong
//! answer. Binary (postcard) because it is loaded on every check of possibly 100,000
//! files; its file table is the scan's own [`TrackedFiles`], column-wise, so loading
//! it is a few copies and a check moves it rather than rebuilding it.

use std::fs;
use std::path::Path;

use semver::Version;
use serde::{Deserialize, Serialize};

use super::hash::Digest;
use super::stamp::Stamp;
use super::tracked::TrackedFiles;
use crate::fsutil;

pub const CACHE_DIR: &str = ".castoff/cache";
pub const CACHE_FILE: &str = ".castoff/cache/stat.bin";

/// Bumped whenever the layout below changes; an old cache is then ignored. It is also
/// part of the cache key, with castoff's own version.
pub const FORMAT: u32 = 6;

#[derive(Debug, Deserialize)]
pub struct StatCache {
    pub format: u32,
    /// Digest of the settings that decide which files are tracked.
    #[serde(with = "super::hash::digest_bytes")]
    pub key: Digest,
    /// When the stamps below were taken (ns since the epoch), for the racy check.
    pub taken_at_ns: i64,
    /// Set when `files`' digests are exactly the baseline's. Then the baseline need
    /// not even be parsed.
    pub synced_with: Option<SyncedWith>,
    pub dirs: Vec<(String, Stamp)>,
    /// Sorted by path.
    pub files: TrackedFiles,
    pub unmatched: Vec<String>,
    pub skipped: Vec<String>,
}

/// The same layout as [`StatCache`], borrowed, so storing a scan copies nothing.
#[derive(Serialize)]
pub struct StatCacheRef<'a> {
    pub format: u32,
    #[serde(with = "super::hash::digest_bytes")]
    pub key: &'a Digest,
    pub taken_at_ns: i64,
    pub synced_with: Option<SyncedWith>,
    pub dirs: &'a [(String, Stamp)],
    pub files: &'a TrackedFiles,
    pub unmatched: &'a [String],
    pub skipped: &'a [String],
}

/// Which baseline file the cached digests equal: its stamp, the versions it records,
/// and a time taken before that stamp (a baseline rewritten within the racy margin of
/// it is not trusted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncedWith {
    pub baseline: Stamp,
    pub version: String,
    pub from: Option<String>,
    pub checked_at_ns: i64,
}

impl SyncedWith {
    /// `checked_at_ns` must have been taken before `baseline` was.
    pub fn new(baseline: Stamp, version: &Version, from: Option<&Version>, checked_at_ns: i64) -> SyncedWith {
        SyncedWith { baseline, version: version.to_string(), from: from.map(Version::to_string), checked_at_ns }
    }

    /// The baseline's version and the version it was bumped from, if they parse.
    pub fn versions(&self) -> Option<(Version, Option<Version>)> {
        let version = Version::parse(&self.version).ok()?;
        let from = match &self.from {
            Some(from) => Some(Version::parse(from).ok()?),
            None => None,
        };
        Some((version, from))
    }
}

impl StatCache {
    /// Load the cache if it exists, parses, and was made for `key`.
    pub fn load(path: &Path, key: &Digest) -> Option<StatCache> {
        let bytes = fs::read(path).ok()?;
        let cache: StatCache = postcard::from_bytes(&bytes).ok()?;
        (cache.format == FORMAT && cache.key == *key).then_some(cache)
    }

    /// The digest cached for `path`, if its recorded stamp equals `stamp` and was taken
    /// late enough to be trusted.
    pub fn vouched_digest(&self, path: &str, stamp: &Stamp) -> Option<Digest> {
        let index = self.files.find(path)?;
        let cached = self.files.stamp(index);
        (cached == *stamp && cached.trustworthy(self.taken_at_ns)).then(|| *self.files.digest(index))
    }
}

impl StatCacheRef<'_> {
    pub fn new_format() -> u32 {
        FORMAT
    }

    /// Best effort: a cache that cannot be written only makes the next check slower.
    pub fn store(&self, path: &Path) {
        if let Ok(bytes) = postcard::to_stdvec(self) {
            let _ = fsutil::write_atomic_unsynced(path, &bytes);
        }
    }
}
