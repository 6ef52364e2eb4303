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
pub mod tracked;
pub mod walk;

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use crate::config::VersionConfig;
use crate::error::{Error, Result};
pub use baseline::{Baseline, BASELINE_FILE};
use cache::{StatCache, StatCacheRef, SyncedWith, CACHE_FILE};
pub use hash::Digest;
use stamp::Stamp;
pub use tracked::TrackedFiles;
pub use walk::SourceSet;

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
    current: Current,
    pub changes: Changes,
    /// The version the baseline was recorded for; `None` when there is no baseline.
    pub baseline_version: Option<Version>,
    /// The version the bump that recorded the baseline started from; `None` when no
    /// bump recorded it (`init`, a first baseline, a VERSION raised by hand).
    pub baseline_from: Option<Version>,
    pub warnings: Vec<String>,
    pub stats: ScanStats,
    taken_at_ns: i64,
}

impl Scan {
    /// Every tracked file, sorted by path, with its digest now.
    pub fn tracked(&self) -> &TrackedFiles {
        &self.current.tracked
    }

    /// The changes worth showing: without a baseline every file would be "added",
    /// which says nothing, so none are listed.
    pub fn reported_changes(&self) -> Changes {
        match self.baseline_version {
            Some(_) => self.changes.clone(),
            None => Changes::default(),
        }
    }
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
        let set = SourceSet::new(root, config, config_file)?;
        let key = cache_key(env!("CARGO_PKG_VERSION"), cache::FORMAT, set.version_files(), config);
        Ok(Sources { root: root.to_path_buf(), set, key })
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
        if update_cache {
            // The cache is written under .castoff/: refuse a symlink there up front.
            crate::fsutil::check_real_dir(&self.root, crate::project::CASTOFF_DIR)?;
            crate::fsutil::check_real_dir(&self.root, cache::CACHE_DIR)?;
        }
        // Taken before any stamp, so every stamp is at least this recent (racy check).
        let taken_at_ns = stamp::now_ns();
        let cache = StatCache::load(&self.cache_path(), &self.key);
        let had_cache = cache.is_some();
        let baseline_stamp = fs::symlink_metadata(self.baseline_path()).ok().map(|m| Stamp::of(&m));
        // When the cache is in sync with the unchanged baseline file, its digests are the
        // baseline's, and the baseline need not be parsed.
        let synced = cache
            .as_ref()
            .and_then(|c| c.synced_with.clone())
            .filter(|synced| {
                Some(synced.baseline) == baseline_stamp && synced.baseline.trustworthy(synced.checked_at_ns)
            })
            .and_then(|synced| synced.versions());

        let moved = cache.as_ref().and_then(|c| walk::restat(&self.root, &c.dirs, c.taken_at_ns, &c.files));
        let (current, changes_from_cache) = match (cache, moved) {
            (Some(cache), Some(moved)) => self.rescan_in_place(cache, moved)?,
            (cache, _) => {
                let current = self.walk_and_hash(cache.as_ref())?;
                let changes = match (&cache, &synced) {
                    (Some(cache), Some(_)) => Some(diff(cache.files.entries(), &current.tracked)),
                    _ => None,
                };
                (current, changes)
            }
        };
        let (changes, baseline_version, baseline_from) = match (changes_from_cache, synced.clone()) {
            (Some(changes), Some((version, from))) => (changes, Some(version), from),
            _ => match Baseline::read(&self.baseline_path(), Path::new(BASELINE_FILE))? {
                Some(baseline) => {
                    let entries = baseline.entries.iter().map(|(path, digest)| (path.as_str(), digest));
                    (diff(entries, &current.tracked), Some(baseline.version), baseline.from)
                }
                None => (diff(std::iter::empty(), &current.tracked), None, None),
            },
        };

        let mut warnings = Vec::new();
        for pattern in &current.unmatched {
            warnings.push(format!("[version] sources pattern `{pattern}` matches no file"));
        }
        for skipped in &current.skipped {
            warnings.push(format!("not tracked: {skipped}"));
        }
        let stats = ScanStats { files: current.tracked.len(), hashed: current.hashed, walked: current.walked };
        // Rewrite the cache when it did not vouch for everything, or when it could now
        // vouch for the baseline but did not (after a bump, or a pull that changed it).
        let could_sync = synced.is_none() && baseline_version.is_some() && changes.is_empty();
        let stale = !had_cache || current.walked || current.hashed > 0 || could_sync;
        let scan = Scan { current, changes, baseline_version, baseline_from, warnings, stats, taken_at_ns };
        if update_cache && stale {
            // The baseline's stamp was taken after `taken_at_ns`, so that is when it was
            // checked: a rewrite in the same clock tick is caught by the racy margin.
            let synced = match (&scan.baseline_version, baseline_stamp) {
                (Some(version), Some(stamp)) if scan.changes.is_empty() => {
                    Some(SyncedWith::new(stamp, version, scan.baseline_from.as_ref(), taken_at_ns))
                }
                _ => None,
            };
            self.store_cache(&scan, synced);
        }
        Ok(scan)
    }

    /// No directory changed, so the cache's file list is current: take it over and
    /// re-hash only the files whose stamps moved. Also returns the changes relative to
    /// the cache (the same list, so only content can differ).
    fn rescan_in_place(&self, cache: StatCache, moved: Vec<(usize, Stamp)>) -> Result<(Current, Option<Changes>)> {
        let mut tracked = cache.files;
        let mut stale = vec![false; tracked.len()];
        let mut previous = Vec::with_capacity(moved.len());
        for (index, stamp) in &moved {
            tracked.set_stamp(*index, stamp);
            stale[*index] = true;
            previous.push((*index, *tracked.digest(*index)));
        }
        tracked.refresh_digests(&stale, |path, stamp| hash::hash_one(&self.root.join(path), stamp))?;
        let modified = previous
            .iter()
            .filter(|(index, old)| tracked.digest(*index) != old)
            .map(|(index, _)| tracked.path(*index).to_string())
            .collect();
        let current = Current {
            tracked,
            dirs: cache.dirs,
            unmatched: cache.unmatched,
            skipped: cache.skipped,
            hashed: moved.len(),
            walked: false,
        };
        Ok((current, Some(Changes { modified, ..Changes::default() })))
    }

    /// Walk the globs and digest every file, reusing cached digests that still hold.
    fn walk_and_hash(&self, cache: Option<&StatCache>) -> Result<Current> {
        let listing = self.set.list(&self.root)?;
        let mut stale = Vec::with_capacity(listing.files.len());
        let mut tracked = TrackedFiles::with_capacity(listing.files.len());
        for (path, stamp) in &listing.files {
            let cached = cache.and_then(|c| c.vouched_digest(path, stamp));
            stale.push(cached.is_none());
            tracked.push(path, stamp, cached.unwrap_or([0; 32]));
        }
        tracked.refresh_digests(&stale, |path, stamp| hash::hash_one(&self.root.join(path), stamp))?;
        Ok(Current {
            hashed: stale.iter().filter(|s| **s).count(),
            tracked,
            dirs: listing.dirs.into_iter().collect(),
            unmatched: listing.unmatched,
            skipped: listing.skipped,
            walked: true,
        })
    }

    /// Write `scan` as the new baseline for `version` (reached by a bump from `from`, if
    /// any), and mark the cache in sync with it.
    pub fn record_baseline(&self, scan: &Scan, version: &Version, from: Option<&Version>) -> Result<()> {
        let baseline = Baseline {
            version: version.clone(),
            from: from.cloned(),
            entries: scan.tracked().entries().map(|(path, digest)| (path.to_string(), *digest)).collect(),
        };
        let text = baseline.render();
        // A baseline that would not read back as written would stop every later command.
        match Baseline::parse(&text, Path::new(BASELINE_FILE)) {
            Ok(read_back) if read_back == baseline => {}
            Ok(_) => return Err(Error::Internal("the source baseline would not read back as written".into())),
            Err(e) => return Err(Error::Internal(format!("the source baseline would not read back: {e}"))),
        }
        crate::project::ensure_castoff_dir(&self.root)?;
        let path = self.baseline_path();
        crate::fsutil::write_atomic(&path, text.as_bytes())?;
        // Taken before the stamp: the racy check then distrusts a stamp of this write.
        let checked_at_ns = stamp::now_ns();
        let stamp = fs::symlink_metadata(&path).ok().map(|m| Stamp::of(&m));
        self.store_cache(scan, stamp.map(|s| SyncedWith::new(s, version, from, checked_at_ns)));
        Ok(())
    }

    /// Best effort: a cache that cannot be written only makes the next check slower.
    fn store_cache(&self, scan: &Scan, synced_with: Option<SyncedWith>) {
        let dirs_ready = crate::project::ensure_castoff_dir(&self.root)
            .and_then(|()| crate::fsutil::ensure_real_dir(&self.root, cache::CACHE_DIR))
            .is_ok();
        if !dirs_ready {
            return;
        }
        let current = &scan.current;
        StatCacheRef {
            format: StatCacheRef::new_format(),
            key: &self.key,
            taken_at_ns: scan.taken_at_ns,
            synced_with,
            dirs: &current.dirs,
            files: &current.tracked,
            unmatched: &current.unmatched,
            skipped: &current.skipped,
        }
        .store(&self.cache_path());
    }
}

/// The stat cache's key: everything that decides which files are tracked, and which
/// castoff (and cache layout) wrote it, so an upgrade never trusts an older cache.
fn cache_key(castoff_version: &str, format: u32, version_files: &[String], config: &VersionConfig) -> Digest {
    let mut key = blake3::Hasher::new();
    key.update(castoff_version.as_bytes());
    key.update(b"\n");
    key.update(&format.to_le_bytes());
    let separator = "\0".to_string();
    let parts =
        version_files.iter().chain([&separator]).chain(&config.sources).chain([&separator]).chain(&config.exclude);
    for part in parts {
        key.update(part.as_bytes());
        key.update(b"\n");
    }
    *key.finalize().as_bytes()
}

/// The tracked files as found now, and what the cache needs to skip the next walk.
#[derive(Debug, Clone)]
struct Current {
    tracked: TrackedFiles,
    dirs: Vec<(String, Stamp)>,
    unmatched: Vec<String>,
    skipped: Vec<String>,
    hashed: usize,
    walked: bool,
}

/// Merge the path-sorted baseline with the path-sorted current files.
fn diff<'a>(baseline: impl Iterator<Item = (&'a str, &'a Digest)>, now: &TrackedFiles) -> Changes {
    let mut changes = Changes::default();
    let mut baseline = baseline.peekable();
    let mut now = now.entries().peekable();
    loop {
        match (baseline.peek(), now.peek()) {
            (Some((old_path, old)), Some((new_path, new))) if old_path == new_path => {
                if old != new {
                    changes.modified.push(new_path.to_string());
                }
                baseline.next();
                now.next();
            }
            (Some((old_path, _)), Some((new_path, _))) if old_path < new_path => {
                changes.removed.push(old_path.to_string());
                baseline.next();
            }
            (_, Some((new_path, _))) => {
                changes.added.push(new_path.to_string());
                now.next();
            }
            (Some((old_path, _)), None) => {
                changes.removed.push(old_path.to_string());
                baseline.next();
            }
            (None, None) => return changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sources: &[&str]) -> VersionConfig {
        let mut config = crate::config::Config::default().version;
        config.sources = sources.iter().map(|s| s.to_string()).collect();
        config
    }

    #[test]
    fn cache_key_covers_castoff_version_and_format() {
        let files = ["VERSION".to_string()];
        let base = cache_key("0.1.0", 5, &files, &config(&["src"]));
        assert_ne!(base, cache_key("0.1.1", 5, &files, &config(&["src"])));
        assert_ne!(base, cache_key("0.1.0", 6, &files, &config(&["src"])));
        assert_ne!(base, cache_key("0.1.0", 5, &["VERSION".into(), "meta/VERSION".into()], &config(&["src"])));
        assert_ne!(base, cache_key("0.1.0", 5, &files, &config(&["lib"])));
        assert_eq!(base, cache_key("0.1.0", 5, &files, &config(&["src"])));
    }

    /// The cache says it checked the baseline when the scan started, not when it was
    /// stored: a baseline rewritten during the scan must not be vouched for.
    #[test]
    fn synced_baseline_is_dated_from_the_start_of_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app.py"), "print()\n").unwrap();
        let sources = Sources::new(dir.path(), &config(&["app.py"]), Path::new("castoff.toml")).unwrap();
        let scan = sources.scan(false).unwrap();
        sources.record_baseline(&scan, &Version::new(1, 0, 0), None).unwrap();
        fs::remove_dir_all(dir.path().join(cache::CACHE_DIR)).unwrap();
        let scan = sources.scan(true).unwrap();
        let cache = StatCache::load(&sources.cache_path(), &sources.key).unwrap();
        let synced = cache.synced_with.expect("the cache should be in sync with the baseline");
        assert_eq!(synced.checked_at_ns, scan.taken_at_ns);
        assert_eq!(cache.taken_at_ns, scan.taken_at_ns);
    }
}
