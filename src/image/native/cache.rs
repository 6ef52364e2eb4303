//! The layer cache, so that rebuilding unchanged files reads none of them: what each
//! platform's layer was built from (file stamps) and what it came to (digests, the
//! compressed blob).
//!
//! Format, under `ROOT/.castoff/cache/layers/` (all private to this machine; the
//! directory is in `.castoff/.gitignore`):
//!
//! - `<key>.json`: one entry per platform and inputs. `key` is the hex sha256 of a JSON
//!   array of: the cache format ([`FORMAT`]), castoff's version, the gzip level and
//!   compressor fingerprint, the platform, whether parent directories are listed
//!   (over scratch) or not (over a base), and each file's project-relative `src` (as
//!   expanded for the platform), `dst` and configured mode. The entry is a JSON object:
//!   `{"format", "key", "platform", "written_ns", "taken_at_ns", "files": [{"src",
//!   "stamp": {size, mtime_ns, ctime_ns, ino, kind}}], "diff_id", "digest", "size"}`.
//!   `taken_at_ns` is the wall clock just before the files were opened.
//! - `<hex>.tar.gz`: a compressed layer, named by the hex of its sha256 digest.
//! - `lock`: flock, shared while a build uses the cache, exclusive while pruning.
//! - `.castoff-tmp-*`: a layer being written (renamed into place when complete).
//!
//! An entry is used only when every file's current stamp equals the recorded one, each
//! recorded stamp was already older than [`RACY_MARGIN_NS`] when the files were read
//! (a write in the same timestamp tick could otherwise go unseen), and the blob exists
//! with the recorded size. Everything else (a missing, unparsable, foreign or stale
//! entry, a missing blob) is a miss: the layer is built again. A blob whose bytes do not
//! match its name is caught before it is uploaded or imported, and also costs a rebuild.
//!
//! Pruning keeps the newest entry per platform and the blobs those entries name. It runs
//! when a build that wrote to the cache finishes and no other build (thread or process)
//! still uses the cache, so no blob disappears under a push.
//!
//! [`RACY_MARGIN_NS`]: crate::sources::stamp::RACY_MARGIN_NS

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use super::layer::{self, Layer, LayerFile, Parents};
use crate::error::{Error, IoContext, Result};
use crate::image::layout::digest_reader;
use crate::manifest::index::sha256_digest;
use crate::platform::Platform;
use crate::sources::stamp::{now_ns, Kind, Stamp};

/// Where the cache lives, relative to the project root.
pub const CACHE_DIR: &str = ".castoff/cache/layers";

/// Bumped whenever the entry layout or the way layers are written changes.
pub const FORMAT: u32 = 2;

const LOCK_FILE: &str = "lock";
use crate::fsutil::TEMP_PREFIX;

/// Set when this process wrote an entry or a blob: only then is pruning worth a look.
static WROTE: AtomicBool = AtomicBool::new(false);

/// One file of a layer, as the cache sees it.
#[derive(Debug, Clone)]
pub struct Input {
    /// Project-relative source path, expanded for the platform.
    pub shown: String,
    pub file: LayerFile,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    format: u32,
    key: String,
    platform: String,
    written_ns: i64,
    taken_at_ns: i64,
    files: Vec<EntryFile>,
    diff_id: String,
    digest: String,
    size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryFile {
    src: String,
    stamp: Stamp,
}

/// The cache, opened for one build; holds a shared lock until [`LayerCache::release`].
pub struct LayerCache {
    dir: PathBuf,
    _shared: File,
}

/// A layer ready to be read: its digests and the file holding the compressed bytes.
#[derive(Debug, Clone)]
pub struct CachedLayer {
    pub layer: Layer,
    pub path: PathBuf,
    /// Found in the cache (not built now), so its bytes are checked before use.
    pub hit: bool,
}

impl LayerCache {
    /// Open (creating) the cache under `root` and take the shared lock.
    pub fn open(root: &Path) -> Result<LayerCache> {
        crate::project::ensure_castoff_dir(root)?;
        crate::fsutil::ensure_real_dir(root, ".castoff/cache")?;
        crate::fsutil::ensure_real_dir(root, CACHE_DIR)?;
        let dir = root.join(CACHE_DIR);
        let path = dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .with_path("open", &path)?;
        // Pruning holds the lock exclusively for a moment only; wait for it.
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(errno) => return Err(Error::io("lock", &path, errno.into())),
            }
        }
        Ok(LayerCache { dir, _shared: file })
    }

    /// The cache key of `inputs` for `platform` (hex sha256).
    pub fn key(platform: &Platform, inputs: &[Input], parents: Parents) -> String {
        let files: Vec<serde_json::Value> =
            inputs.iter().map(|input| serde_json::json!([input.shown, input.file.dst, input.file.mode])).collect();
        let key = serde_json::json!([
            FORMAT,
            env!("CARGO_PKG_VERSION"),
            layer::GZIP_LEVEL,
            layer::compressor_fingerprint(),
            platform.to_string(),
            parents == Parents::Listed,
            files,
        ]);
        sha256_digest(key.to_string().as_bytes()).digest().to_string()
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.tar.gz", digest.digest()))
    }

    /// The cached layer for `key`, if the entry can vouch for the files as they are now.
    /// Reads no file content: one stat per file and one for the blob.
    pub fn lookup(&self, key: &str, inputs: &[Input]) -> Option<CachedLayer> {
        let bytes = fs::read(self.entry_path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        if entry.format != FORMAT || entry.key != key || entry.files.len() != inputs.len() {
            return None;
        }
        for (input, recorded) in inputs.iter().zip(&entry.files) {
            let stamp = Stamp::of(&fs::metadata(&input.file.src).ok()?);
            let vouches = recorded.src == input.shown
                && stamp == recorded.stamp
                && stamp.kind == Kind::File
                && stamp.trustworthy(entry.taken_at_ns);
            if !vouches {
                return None;
            }
        }
        let layer =
            Layer { diff_id: entry.diff_id.parse().ok()?, digest: entry.digest.parse().ok()?, size: entry.size };
        let path = self.blob_path(&layer.digest);
        let meta = fs::symlink_metadata(&path).ok()?;
        (meta.is_file() && meta.len() == layer.size).then_some(CachedLayer { layer, path, hit: true })
    }

    /// Build the layer of `inputs` into the cache and record it under `key` (when its
    /// stamps can vouch for it later).
    pub fn build(&self, key: &str, platform: &Platform, inputs: &[Input], parents: Parents) -> Result<CachedLayer> {
        let taken_at_ns = now_ns();
        let files: Vec<LayerFile> = inputs.iter().map(|input| input.file.clone()).collect();
        let mut temp = crate::fsutil::temp_file_in(&self.dir).with_path("create a file in", &self.dir)?;
        let (layer, stamps) = layer::write(&files, parents, temp.as_file_mut())?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Readable by all: an OCI layout target may hard-link it.
            let _ = temp.as_file().set_permissions(fs::Permissions::from_mode(0o644));
        }
        let path = self.blob_path(&layer.digest);
        WROTE.store(true, Ordering::Relaxed);
        temp.persist(&path).map_err(|e| Error::io("store", &path, e.error))?;
        if stamps.iter().all(|stamp| stamp.trustworthy(taken_at_ns)) {
            let entry = Entry {
                format: FORMAT,
                key: key.to_string(),
                platform: platform.to_string(),
                written_ns: now_ns(),
                taken_at_ns,
                files: inputs
                    .iter()
                    .zip(stamps)
                    .map(|(input, stamp)| EntryFile { src: input.shown.clone(), stamp })
                    .collect(),
                diff_id: layer.diff_id.to_string(),
                digest: layer.digest.to_string(),
                size: layer.size,
            };
            // Best effort: an entry that cannot be written costs the next build a rebuild.
            if let Ok(mut bytes) = serde_json::to_vec_pretty(&entry) {
                bytes.push(b'\n');
                let _ = crate::fsutil::write_atomic_unsynced(&self.entry_path(key), &bytes);
            }
        }
        Ok(CachedLayer { layer, path, hit: false })
    }

    /// Drop `key`'s entry and the blob it named: its bytes were found wrong.
    pub fn forget(&self, key: &str, digest: &Digest) {
        let _ = fs::remove_file(self.entry_path(key));
        let _ = fs::remove_file(self.blob_path(digest));
    }

    /// Give up the shared lock; then, if this process wrote to the cache and no other
    /// build uses it any more, prune it.
    pub fn release(self) {
        let dir = self.dir.clone();
        drop(self);
        if !WROTE.load(Ordering::Relaxed) {
            return;
        }
        let Ok(file) = File::open(dir.join(LOCK_FILE)) else { return };
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            WROTE.store(false, Ordering::Relaxed);
            prune(&dir);
        }
    }
}

/// Keep the newest entry per platform and the blobs they name; remove the rest (and
/// leftover temp files). Best effort. The caller holds the lock exclusively.
fn prune(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else { return };
    let mut entries: BTreeMap<String, (i64, PathBuf, String)> = BTreeMap::new();
    let mut blobs = Vec::new();
    let mut remove = Vec::new();
    for item in listing.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        let path = item.path();
        if name.starts_with(TEMP_PREFIX) {
            remove.push(path);
        } else if name.ends_with(".tar.gz") {
            blobs.push((name, path));
        } else if name.ends_with(".json") {
            let entry = fs::read(&path).ok().and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok());
            match entry {
                Some(entry) if entry.format == FORMAT => {
                    let blob = entry.digest.strip_prefix("sha256:").unwrap_or(&entry.digest).to_string();
                    match entries.get(&entry.platform) {
                        Some((newest, _, _)) if *newest >= entry.written_ns => remove.push(path),
                        _ => {
                            if let Some((_, older, _)) = entries.insert(entry.platform, (entry.written_ns, path, blob))
                            {
                                remove.push(older);
                            }
                        }
                    }
                }
                _ => remove.push(path),
            }
        }
    }
    let kept: BTreeSet<String> = entries.values().map(|(_, _, blob)| format!("{blob}.tar.gz")).collect();
    remove.extend(blobs.into_iter().filter(|(name, _)| !kept.contains(name)).map(|(_, path)| path));
    for path in remove {
        let _ = fs::remove_file(path);
    }
}

/// Whether the file at `path` holds exactly `digest`'s bytes.
pub fn verify(path: &Path, digest: &Digest) -> Result<bool> {
    let mut file = File::open(path).with_path("open", path)?;
    Ok(digest_reader(digest.algorithm(), &mut file).with_path("read", path)?.as_ref() == Some(digest))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn setup(contents: &[u8]) -> (tempfile::TempDir, Vec<Input>) {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dist")).unwrap();
        let src = root.path().join("dist/app");
        std::fs::write(&src, contents).unwrap();
        std::fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
        let inputs =
            vec![Input { shown: "dist/app".into(), file: LayerFile { src, dst: "/usr/bin/app".into(), mode: None } }];
        (root, inputs)
    }

    fn platform() -> Platform {
        Platform::parse("linux/amd64").unwrap()
    }

    /// An entry as if its files had been read at `taken_at_ns`.
    fn entry_for(key: &str, inputs: &[Input], built: &CachedLayer, taken_at_ns: i64) -> Entry {
        Entry {
            format: FORMAT,
            key: key.to_string(),
            platform: "linux/amd64".into(),
            written_ns: now_ns(),
            taken_at_ns,
            files: inputs
                .iter()
                .map(|i| EntryFile { src: i.shown.clone(), stamp: Stamp::of(&fs::metadata(&i.file.src).unwrap()) })
                .collect(),
            diff_id: built.layer.diff_id.to_string(),
            digest: built.layer.digest.to_string(),
            size: built.layer.size,
        }
    }

    #[test]
    fn recent_files_are_rebuilt_old_ones_hit_and_changes_miss() {
        let (root, inputs) = setup(b"v1");
        let cache = LayerCache::open(root.path()).unwrap();
        let key = LayerCache::key(&platform(), &inputs, Parents::Listed);
        let built = cache.build(&key, &platform(), &inputs, Parents::Listed).unwrap();
        assert!(!built.hit);
        // The file's ctime is within the racy margin of the build: no entry vouches for it.
        assert!(!cache.entry_path(&key).exists());
        assert!(cache.lookup(&key, &inputs).is_none());
        // ctime cannot be set back, so write the entry a build 2 s later would have.
        let later = now_ns() + 2_000_000_000;
        let mut entry = entry_for(&key, &inputs, &built, later);
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&entry).unwrap()).unwrap();
        let hit = cache.lookup(&key, &inputs).unwrap();
        assert!(hit.hit);
        assert_eq!(hit.layer, built.layer);
        // The same entry taken too soon after the file changed is not trusted.
        entry.taken_at_ns = now_ns();
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&entry).unwrap()).unwrap();
        assert!(cache.lookup(&key, &inputs).is_none());
        entry.taken_at_ns = later;
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&entry).unwrap()).unwrap();

        // Same size, mtime put back: ctime still gives it away.
        let before = fs::metadata(&inputs[0].file.src).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&inputs[0].file.src, b"v2").unwrap();
        let file = File::options().write(true).open(&inputs[0].file.src).unwrap();
        file.set_times(fs::FileTimes::new().set_modified(before.modified().unwrap())).unwrap();
        drop(file);
        assert_eq!(fs::metadata(&inputs[0].file.src).unwrap().modified().unwrap(), before.modified().unwrap());
        assert!(cache.lookup(&key, &inputs).is_none(), "content change behind a restored mtime");

        // A corrupt or foreign entry is a miss, never an error.
        let entry = entry_for(&key, &inputs, &built, later);
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&entry).unwrap()).unwrap();
        assert!(cache.lookup(&key, &inputs).is_some());
        let foreign = Entry { format: FORMAT + 1, ..entry };
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&foreign).unwrap()).unwrap();
        assert!(cache.lookup(&key, &inputs).is_none());
        std::fs::write(cache.entry_path(&key), b"{not json").unwrap();
        assert!(cache.lookup(&key, &inputs).is_none());
    }

    #[test]
    fn a_missing_or_short_blob_is_a_miss_and_a_bad_one_fails_verification() {
        let (root, inputs) = setup(b"content");
        let cache = LayerCache::open(root.path()).unwrap();
        let key = LayerCache::key(&platform(), &inputs, Parents::Listed);
        let built = cache.build(&key, &platform(), &inputs, Parents::Listed).unwrap();
        let entry = entry_for(&key, &inputs, &built, now_ns() + 2_000_000_000);
        std::fs::write(cache.entry_path(&key), serde_json::to_vec(&entry).unwrap()).unwrap();
        assert!(cache.lookup(&key, &inputs).is_some());
        assert!(verify(&built.path, &built.layer.digest).unwrap());
        let mut bytes = std::fs::read(&built.path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&built.path, &bytes).unwrap();
        assert!(cache.lookup(&key, &inputs).is_some(), "same size: only verification can tell");
        assert!(!verify(&built.path, &built.layer.digest).unwrap());
        cache.forget(&key, &built.layer.digest);
        assert!(cache.lookup(&key, &inputs).is_none());
    }

    #[test]
    fn the_key_follows_every_input() {
        let (_root, inputs) = setup(b"x");
        let base = LayerCache::key(&platform(), &inputs, Parents::Listed);
        assert_eq!(base, LayerCache::key(&platform(), &inputs, Parents::Listed));
        let mut moved = inputs.clone();
        moved[0].file.dst = "/usr/local/bin/app".into();
        assert_ne!(base, LayerCache::key(&platform(), &moved, Parents::Listed));
        let mut moded = inputs.clone();
        moded[0].file.mode = Some(0o700);
        assert_ne!(base, LayerCache::key(&platform(), &moded, Parents::Listed));
        assert_ne!(base, LayerCache::key(&Platform::parse("linux/arm64").unwrap(), &inputs, Parents::Listed));
        assert_ne!(base, LayerCache::key(&platform(), &inputs, Parents::Implied));
    }

    #[test]
    fn pruning_keeps_the_newest_entry_per_platform() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let entry = |platform: &str, written_ns: i64, blob: &str| Entry {
            format: FORMAT,
            key: String::new(),
            platform: platform.into(),
            written_ns,
            taken_at_ns: 0,
            files: Vec::new(),
            diff_id: String::new(),
            digest: format!("sha256:{blob}"),
            size: 0,
        };
        let write =
            |name: &str, entry: Entry| std::fs::write(dir.join(name), serde_json::to_vec(&entry).unwrap()).unwrap();
        write("old-amd64.json", entry("linux/amd64", 1, "aaa"));
        write("new-amd64.json", entry("linux/amd64", 2, "bbb"));
        write("arm64.json", entry("linux/arm64", 1, "aaa"));
        std::fs::write(dir.join("broken.json"), b"{").unwrap();
        for blob in ["aaa", "bbb", "ccc"] {
            std::fs::write(dir.join(format!("{blob}.tar.gz")), b"").unwrap();
        }
        std::fs::write(dir.join(".castoff-tmp-x"), b"").unwrap();
        prune(dir);
        let mut left: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["aaa.tar.gz", "arm64.json", "bbb.tar.gz", "new-amd64.json"]);
    }
}
