//! The uncommitted stat cache (`.castoff/cache/stat.bin`): what each tracked file's
//! stamp was when it was last hashed, and the stamps of the directories walked.
//!
//! With it, checking an unchanged tree reads no file content and lists no directory:
//! one `lstat` per directory and per file, spread over the cores. It is only ever a
//! hint: a missing, stale or corrupt cache costs a walk and a re-hash, never a wrong
//! answer. Binary (postcard) because it is loaded on every check of possibly 100,000
//! files.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hash::Digest;
use super::stamp::Stamp;
use crate::fsutil;

pub const CACHE_FILE: &str = ".castoff/cache/stat.bin";

/// Bumped whenever the layout below changes; an old cache is then ignored.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatCache {
    pub format: u32,
    /// Digest of the settings that decide which files are tracked.
    pub key: Digest,
    /// When the stamps below were taken (ns since the epoch), for the racy check.
    pub taken_at_ns: i64,
    /// Set when `files`' digests are exactly the baseline's: the stamp of the baseline
    /// file and its version. Then the baseline need not even be parsed.
    pub synced_with: Option<(Stamp, String)>,
    pub dirs: Vec<(String, Stamp)>,
    /// Sorted by path.
    pub files: Vec<CachedFile>,
    pub unmatched: Vec<String>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedFile {
    pub path: String,
    pub stamp: Stamp,
    pub digest: Digest,
}

impl StatCache {
    /// Load the cache if it exists, parses, and was made for `key`.
    pub fn load(path: &Path, key: &Digest) -> Option<StatCache> {
        let bytes = fs::read(path).ok()?;
        let cache: StatCache = postcard::from_bytes(&bytes).ok()?;
        (cache.format == FORMAT && cache.key == *key).then_some(cache)
    }

    /// Best effort: a cache that cannot be written only makes the next check slower.
    pub fn store(&self, path: &Path) {
        if let Ok(bytes) = postcard::to_stdvec(self) {
            let _ = fsutil::write_atomic(path, &bytes);
        }
    }

    /// The cached digest of `path`, if its recorded stamp equals `stamp` and was taken
    /// late enough to be trusted. `index` is where the file sits in a listing that came
    /// from this cache (an O(1) hit); otherwise the sorted list is searched.
    pub fn vouched_digest(&self, index: usize, path: &str, stamp: &Stamp) -> Option<Digest> {
        let entry = match self.files.get(index) {
            Some(entry) if entry.path == path => entry,
            _ => {
                &self.files[self
                    .files
                    .binary_search_by(|f| f.path.as_str().cmp(path))
                    .ok()?]
            }
        };
        (entry.stamp == *stamp && entry.stamp.trustworthy(self.taken_at_ns)).then_some(entry.digest)
    }

    pub fn new(key: Digest, taken_at_ns: i64) -> StatCache {
        StatCache {
            format: FORMAT,
            key,
            taken_at_ns,
            synced_with: None,
            dirs: Vec::new(),
            files: Vec::new(),
            unmatched: Vec::new(),
            skipped: Vec::new(),
        }
    }
}
