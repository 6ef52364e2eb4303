//! Tracked-source fingerprints: which of the files `[version] sources` names changed
//! since the baseline, judged by content (BLAKE3), never by mtime.
//!
//! A scan takes the cheapest path the stat cache allows:
//! 1. every recorded directory and file has the stamp it had → nothing changed, and when
//!    the cache is in sync with the baseline, the answer needs no hashing and no parse;
//! 2. only some files' stamps moved (a touch, an edit) → hash just those;
//! 3. a directory changed, or there is no cache → walk the globs, hash what is new.
//!
//! Touching a file or a fresh clone changes stamps but not content, so it never calls
//! for a bump; it only costs one re-hash of the touched files.

pub mod baseline;
pub mod cache;
pub mod hash;
pub mod stamp;
pub mod walk;

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use semver::Version;
use serde::Serialize;

use crate::config::VersionConfig;
use crate::error::Result;
pub use baseline::{Baseline, BASELINE_FILE};
use cache::{CachedFile, StatCache, CACHE_FILE};
pub use hash::Digest;
use stamp::Stamp;
pub use walk::SourceSet;

/// One tracked file as of a scan.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub path: String,
    pub stamp: Stamp,
    pub digest: Digest,
}

/// Differences between the tracked files now and the baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.added.len() + self.modified.len() + self.removed.len()
    }

    /// All changed paths, sorted, each with its one-letter status (A, M, D).
    pub fn listed(&self) -> Vec<(char, &str)> {
        let mut all: Vec<(char, &str)> = self
            .added
            .iter()
            .map(|p| ('A', p.as_str()))
            .chain(self.modified.iter().map(|p| ('M', p.as_str())))
            .chain(self.removed.iter().map(|p| ('D', p.as_str())))
            .collect();
        all.sort_by(|a, b| a.1.cmp(b.1));
        all
    }
}

/// How a scan got its answer; shown with `-v` and used by the benchmarks.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ScanStats {
    pub files: usize,
    pub hashed: usize,
    pub walked: bool,
}

/// The result of comparing the tracked sources with the baseline.
#[derive(Debug, Clone)]
pub struct Scan {
    pub tracked: Vec<Tracked>,
    pub changes: Changes,
    /// The version the baseline was recorded for; `None` when there is no baseline.
    pub baseline_version: Option<Version>,
    pub warnings: Vec<String>,
    pub stats: ScanStats,
    dirs: Vec<(String, Stamp)>,
    unmatched: Vec<String>,
    skipped: Vec<String>,
    taken_at_ns: i64,
}

/// The project's tracked sources: where they are, which globs pick them, and where the
/// baseline and stat cache live.
#[derive(Debug)]
pub struct Sources {
    root: PathBuf,
    set: SourceSet,
    key: Digest,
}

impl Sources {
    pub fn new(root: &Path, config: &VersionConfig, config_file: &Path) -> Result<Sources> {
        let set = SourceSet::new(config, config_file)?;
        let mut key = blake3::Hasher::new();
        for part in [&config.file]
            .into_iter()
            .chain(&config.sources)
            .chain([&"\0".to_string()])
            .chain(&config.exclude)
        {
            key.update(part.as_bytes());
            key.update(b"\n");
        }
        Ok(Sources {
            root: root.to_path_buf(),
            set,
            key: *key.finalize().as_bytes(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    pub fn baseline_path(&self) -> PathBuf {
        self.root.join(BASELINE_FILE)
    }

    fn cache_path(&self) -> PathBuf {
        self.root.join(CACHE_FILE)
    }

    /// Compare the tracked files with the baseline. With `update_cache`, a scan that had
    /// to walk or hash leaves a fresher stat cache behind; dry runs pass `false`.
    pub fn scan(&self, update_cache: bool) -> Result<Scan> {
        let taken_at_ns = stamp::now_ns();
        let cache = StatCache::load(&self.cache_path(), &self.key);
        let baseline_stamp = fs::symlink_metadata(self.baseline_path())
            .ok()
            .map(|m| Stamp::of(&m));

        let fast = cache
            .as_ref()
            .and_then(|cache| self.restat_unchanged_tree(cache));
        let (listed, dirs, unmatched, skipped, walked) = match (fast, &cache) {
            (Some(stamps), Some(cache)) => {
                let listed: Vec<(String, Stamp)> = cache
                    .files
                    .iter()
                    .zip(stamps)
                    .map(|(f, s)| (f.path.clone(), s))
                    .collect();
                (
                    listed,
                    cache.dirs.clone(),
                    cache.unmatched.clone(),
                    cache.skipped.clone(),
                    false,
                )
            }
            _ => {
                let listing = self.set.list(&self.root)?;
                let files: Vec<(String, Stamp)> = listing.files.into_iter().collect();
                (
                    files,
                    listing.dirs.into_iter().collect(),
                    listing.unmatched,
                    listing.skipped,
                    true,
                )
            }
        };

        let tracked = self.digests(listed, cache.as_ref())?;
        let hashed = tracked.iter().filter(|t| t.1).count();
        let tracked: Vec<Tracked> = tracked.into_iter().map(|(t, _)| t).collect();

        // The baseline: straight from the cache when it vouches for it, else parsed.
        let synced = cache
            .as_ref()
            .and_then(|c| c.synced_with.clone())
            .filter(|(s, _)| Some(*s) == baseline_stamp);
        let (baseline_entries, baseline_version) = match (synced, &cache) {
            (Some((_, version)), Some(cache)) => (
                cache
                    .files
                    .iter()
                    .map(|f| (f.path.clone(), f.digest))
                    .collect(),
                Version::parse(&version).ok(),
            ),
            _ => match Baseline::read(&self.baseline_path(), Path::new(BASELINE_FILE))? {
                Some(baseline) => (baseline.entries, Some(baseline.version)),
                None => (Vec::new(), None),
            },
        };
        let changes = diff(&baseline_entries, &tracked);

        let mut warnings = Vec::new();
        for pattern in &unmatched {
            warnings.push(format!(
                "[version] sources pattern `{pattern}` matches no file"
            ));
        }
        for skipped in &skipped {
            warnings.push(format!("not tracked: {skipped}"));
        }
        let stats = ScanStats {
            files: tracked.len(),
            hashed,
            walked,
        };
        let scan = Scan {
            tracked,
            changes,
            baseline_version,
            warnings,
            stats,
            dirs,
            unmatched,
            skipped,
            taken_at_ns,
        };
        let stale = cache.is_none() || walked || hashed > 0;
        if update_cache && stale {
            let synced = match (&scan.baseline_version, baseline_stamp) {
                (Some(version), Some(stamp)) if scan.changes.is_empty() => {
                    Some((stamp, version.to_string()))
                }
                _ => None,
            };
            self.store_cache(&scan, synced);
        }
        Ok(scan)
    }

    /// Write `scan` as the new baseline for `version`, and mark the cache in sync with it.
    pub fn record_baseline(&self, scan: &Scan, version: &Version) -> Result<()> {
        let baseline = Baseline {
            version: version.clone(),
            entries: scan
                .tracked
                .iter()
                .map(|t| (t.path.clone(), t.digest))
                .collect(),
        };
        let path = self.baseline_path();
        crate::fsutil::write_atomic(&path, baseline.render().as_bytes())?;
        let stamp = fs::symlink_metadata(&path).ok().map(|m| Stamp::of(&m));
        self.store_cache(scan, stamp.map(|s| (s, version.to_string())));
        Ok(())
    }

    fn store_cache(&self, scan: &Scan, synced_with: Option<(Stamp, String)>) {
        let mut cache = StatCache::new(self.key, scan.taken_at_ns);
        cache.synced_with = synced_with;
        cache.dirs = scan.dirs.clone();
        cache.files = scan
            .tracked
            .iter()
            .map(|t| CachedFile {
                path: t.path.clone(),
                stamp: t.stamp,
                digest: t.digest,
            })
            .collect();
        cache.unmatched = scan.unmatched.clone();
        cache.skipped = scan.skipped.clone();
        cache.store(&self.cache_path());
    }

    /// If no recorded directory changed, the file list is the cache's: return each
    /// file's fresh stamp in cache order. `None` means a walk is needed.
    fn restat_unchanged_tree(&self, cache: &StatCache) -> Option<Vec<Stamp>> {
        let dirs_unchanged = cache.dirs.par_iter().all(|(rel, old)| {
            old.trustworthy(cache.taken_at_ns) && self.lstat(rel).as_ref() == Some(old)
        });
        if !dirs_unchanged {
            return None;
        }
        cache
            .files
            .par_iter()
            .map(|f| self.lstat(&f.path))
            .collect()
    }

    fn lstat(&self, rel: &str) -> Option<Stamp> {
        let path = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        fs::symlink_metadata(path).ok().map(|m| Stamp::of(&m))
    }

    /// Digest every listed file, reusing the cache where its stamp still vouches for the
    /// content. The flag says whether the file was hashed now.
    fn digests(
        &self,
        listed: Vec<(String, Stamp)>,
        cache: Option<&StatCache>,
    ) -> Result<Vec<(Tracked, bool)>> {
        let cached: Vec<Option<Digest>> = listed
            .iter()
            .enumerate()
            .map(|(index, (path, stamp))| cache.and_then(|c| c.vouched_digest(index, path, stamp)))
            .collect();
        // (digest, hashed now): cached digests are kept, the rest filled in parallel.
        let mut slots: Vec<(Digest, bool)> = cached
            .into_iter()
            .map(|digest| digest.map_or(([0; 32], true), |d| (d, false)))
            .collect();
        slots.par_iter_mut().zip(listed.par_iter()).try_for_each(
            |((digest, hashed), (path, stamp))| {
                if *hashed {
                    *digest = hash::hash_one(&self.root.join(path), stamp)?;
                }
                Ok::<(), crate::error::Error>(())
            },
        )?;
        let out = listed
            .into_iter()
            .zip(slots)
            .map(|((path, stamp), (digest, hashed))| {
                (
                    Tracked {
                        path,
                        stamp,
                        digest,
                    },
                    hashed,
                )
            })
            .collect();
        Ok(out)
    }
}

/// Merge two path-sorted lists into added / modified / removed.
fn diff(baseline: &[(String, Digest)], now: &[Tracked]) -> Changes {
    let mut changes = Changes::default();
    let (mut i, mut j) = (0, 0);
    while i < baseline.len() || j < now.len() {
        match (baseline.get(i), now.get(j)) {
            (Some((old_path, old)), Some(new)) if *old_path == new.path => {
                if *old != new.digest {
                    changes.modified.push(new.path.clone());
                }
                i += 1;
                j += 1;
            }
            (Some((old_path, _)), Some(new)) if *old_path < new.path => {
                changes.removed.push(old_path.clone());
                i += 1;
            }
            (Some(_), Some(new)) | (None, Some(new)) => {
                changes.added.push(new.path.clone());
                j += 1;
            }
            (Some((old_path, _)), None) => {
                changes.removed.push(old_path.clone());
                i += 1;
            }
            (None, None) => break,
        }
    }
    changes
}
