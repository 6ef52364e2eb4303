//! An OCI image layout directory (image-spec `image-layout.md`) as a build target and as
//! an image source: `oci-layout` (`{"imageLayoutVersion":"1.0.0"}`), `index.json` (the
//! named entries, each tagged by the `org.opencontainers.image.ref.name` annotation) and
//! content-addressed `blobs/<algorithm>/<hex>`.
//!
//! Blobs are immutable and named by their digest, so writing one needs no lock: a temp
//! file renamed into place (or a hard link) either lands whole or not at all, and two
//! writers of the same digest write the same bytes. `index.json` is the one file that is
//! read, modified and written back; [`OciLayout::lock`] serialises that, across threads
//! (several platforms build at once) and across processes (flock on the layout
//! directory, which also serialises creating the layout).
//!
//! Everything read back is checked: a blob's bytes against its digest, `index.json`'s
//! shape against the spec, so a corrupt layout is an error naming the file, never a
//! wrong image.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use oci_spec::image::{Descriptor, Digest, DigestAlgorithm, MediaType};
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::source::ImageSource;
use crate::error::{Error, IoContext, Location, Problem, Result};
use crate::fsutil;
use crate::registry::client::MANIFEST_LIMIT;
use crate::registry::{Fetched, Reference, RegistryError};

/// The index annotation that names an entry (a "tag" in the layout).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const LAYOUT_VERSION: &str = "1.0.0";
const EMPTY_INDEX: &[u8] = b"{\"schemaVersion\":2,\"manifests\":[]}\n";
/// castoff's temp files (here and in `fsutil`), renamed into place when complete.
use crate::fsutil::TEMP_PREFIX;

/// How long [`OciLayout::lock`] waits for another process (a `castoff build` writing
/// the same layout) before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// An OCI image layout directory.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    shown: PathBuf,
    /// Serialises index.json updates between this process's threads. flock alone would
    /// too (each lock opens its own file description), but a mutex says so plainly and
    /// costs nothing.
    writers: Mutex<()>,
}

/// Held while reading, changing and writing `index.json`; released on drop (the flock
/// goes with the directory's file descriptor, so also when the process dies).
#[must_use = "the layout is only locked while this guard lives"]
pub struct LayoutLock<'a> {
    // Field order is drop order: the flock goes before the mutex lets the next thread in.
    _dir: OwnedFd,
    _guard: MutexGuard<'a, ()>,
}

impl OciLayout {
    /// Open the layout at `root/rel`, creating it when missing: the directory, its
    /// `oci-layout` file and an empty `index.json`. A directory that exists with
    /// something else in it is refused rather than turned into a layout, and so is a
    /// symlink (or a path leading out of the project through one).
    ///
    /// Safe against other castoff processes creating or writing the same layout at the
    /// same time: the checks and the first writes happen under [`OciLayout::lock`]'s
    /// lock, `oci-layout` and `index.json` are only ever created when missing (never
    /// replaced), and castoff's own temp files do not count as "something else".
    pub fn create(root: &Path, rel: &str) -> Result<OciLayout> {
        let layout = OciLayout::at(root, rel);
        if let Some(problem) = location_problem(root, rel) {
            return Err(Error::usage(problem.problem(), problem.hint()));
        }
        match fs::create_dir_all(&layout.dir) {
            Ok(()) => {}
            // A file at the path, or at a parent.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists || e.kind() == io::ErrorKind::NotADirectory => {
                return Err(not_a_directory(rel))
            }
            Err(e) => return Err(Error::io("create directory", &layout.dir, e)),
        }
        // Checked again now that the directories exist: a parent made meanwhile may be
        // a symlink out of the project.
        if let Some(problem) = location_problem(root, rel) {
            return Err(Error::usage(problem.problem(), problem.hint()));
        }
        layout.initialise(rel)?;
        Ok(layout)
    }

    /// Under the lock: `oci-layout` and `index.json`, each created when missing.
    fn initialise(&self, rel: &str) -> Result<()> {
        let _lock = self.lock()?;
        let marker = self.dir.join(LAYOUT_FILE);
        if !marker.exists() {
            let others = fs::read_dir(&self.dir)
                .with_path("list", &self.dir)?
                .filter_map(|entry| entry.ok())
                .any(|entry| !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX));
            if others {
                return Err(Error::usage(
                    format!("{rel} exists and is not an OCI image layout (it has no `oci-layout` file)"),
                    format!(
                        "point the layout at a new or empty directory, or move what is in {rel} away \
                         (castoff will not mix an image layout into other files)"
                    ),
                ));
            }
            write_new(&marker, format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}\n").as_bytes())?;
        }
        self.check_version()?;
        // A crash between the two writes leaves a marker without an index: add it.
        write_new(&self.dir.join(INDEX_FILE), EMPTY_INDEX)
    }

    /// Open the existing layout at `root/rel`. A symlink there (or a path out of the
    /// project) is refused, as for [`OciLayout::create`].
    pub fn open(root: &Path, rel: &str) -> Result<OciLayout> {
        let layout = OciLayout::at(root, rel);
        if let Some(problem) = location_problem(root, rel) {
            return Err(Error::usage(problem.problem(), problem.hint()));
        }
        if !layout.dir.join(LAYOUT_FILE).is_file() {
            let what = match layout.dir.is_dir() {
                true => "is not an OCI image layout (it has no `oci-layout` file)",
                false => "does not exist",
            };
            return Err(Error::usage(
                format!("the OCI layout {rel} {what}"),
                format!(
                    "create it first (`castoff build` with [image] output = \"oci-layout:{rel}\" writes one, \
                     so does `skopeo copy docker://IMAGE oci:{rel}:TAG`), or correct the path"
                ),
            ));
        }
        layout.check_version()?;
        Ok(layout)
    }

    /// Check, before anything is built, that the layout configured at `key` of
    /// `shown_config` (`image.output`, `image.native.base`) is a place castoff may read
    /// and write: not a symlink or a file, and not outside the project through a
    /// symlinked parent. A path that does not exist yet passes.
    pub fn check_location(root: &Path, rel: &str, shown_config: &Path, key: &str) -> Result<()> {
        match location_problem(root, rel) {
            None => Ok(()),
            Some(problem) => {
                Err(Error::invalid(Location::file(shown_config).with_key(key), problem.problem(), problem.hint()))
            }
        }
    }

    fn at(root: &Path, rel: &str) -> OciLayout {
        OciLayout { dir: root.join(rel), shown: PathBuf::from(rel), writers: Mutex::new(()) }
    }

    /// `oci-layout` must say version 1.0.0: a later version may lay blobs out in a way
    /// castoff does not know.
    fn check_version(&self) -> Result<()> {
        let path = self.dir.join(LAYOUT_FILE);
        let bytes = fs::read(&path).with_path("read", &path)?;
        let shown = self.shown.join(LAYOUT_FILE);
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::invalid(
                Location::file(&shown),
                format!("not valid JSON: {e}"),
                format!("it should read {{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}"),
            )
        })?;
        match value.get("imageLayoutVersion").and_then(Value::as_str) {
            Some(LAYOUT_VERSION) => Ok(()),
            found => Err(Error::invalid(
                Location::file(&shown),
                match found {
                    Some(version) => format!("imageLayoutVersion is {version}; castoff reads {LAYOUT_VERSION}"),
                    None => "it has no imageLayoutVersion".to_string(),
                },
                "use a directory written by an OCI image-spec 1.x tool, or a new directory",
            )),
        }
    }

    /// The directory as the user wrote it (project-relative).
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Exclusive access for a read-modify-write of `index.json` (this process's other
    /// threads and other processes alike), and for [`OciLayout::create`]'s first
    /// writes: a flock on the layout directory itself. Other tools that honour no lock
    /// (skopeo, buildah) must not write the layout at the same time.
    pub fn lock(&self) -> Result<LayoutLock<'_>> {
        let guard = self.writers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = rustix::fs::open(&self.dir, flags, Mode::empty())
            .map_err(|errno| Error::io("open", &self.dir, errno.into()))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(LayoutLock { _dir: dir, _guard: guard }),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(Error::io("lock", &self.dir, errno.into())),
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(Error::Locked { path: self.shown.clone(), holder: "another process".into() });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// `blobs/<algorithm>/<hex>`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs").join(digest.algorithm().as_ref()).join(digest.digest())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A blob's bytes, checked against `digest`; refused above `limit` bytes. A missing
    /// blob is `RegistryError::NotFound`, as a registry would answer.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound { what: format!("blob {digest} in {}", self.describe()) }.into())
            }
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let size = file.metadata().with_path("inspect", &path)?.len();
        if size > limit {
            return Err(Error::Failed {
                problem: format!(
                    "blob {digest} in {} is {size} bytes, more than the {limit} castoff reads",
                    self.describe()
                ),
                hint: "check that the layout entry points at what you expect (a manifest or config, not a layer)"
                    .into(),
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        file.take(limit).read_to_end(&mut bytes).with_path("read", &path)?;
        self.check_digest(digest, &mut bytes.as_slice(), &path)?;
        Ok(bytes)
    }

    /// Store `bytes` as a sha256 blob (unless it is already there); its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = crate::manifest::index::sha256_digest(bytes);
        let path = self.blob_path(&digest);
        if path.is_file() {
            return Ok(digest);
        }
        let (dir, mut temp) = self.temp_blob(&path)?;
        temp.write_all(bytes).with_path("write", temp.path())?;
        self.settle(temp, &path, &dir)?;
        Ok(digest)
    }

    /// Add the file at `path` as blob `digest` (unless it is already there): a hard link
    /// when the filesystem allows, else a copy. The file is checked against `digest`
    /// first, so a corrupt source never becomes a blob.
    pub fn import_blob(&self, path: &Path, digest: &Digest) -> Result<()> {
        let target = self.blob_path(digest);
        if target.is_file() {
            return Ok(());
        }
        let mut source = File::open(path).with_path("open", path)?;
        self.check_digest(digest, &mut source, path)?;
        let dir = self.blob_dir(&target)?;
        match fs::hard_link(path, &target) {
            Ok(()) => {
                // The source may never have been flushed (a cache file): make the
                // blob durable before index.json can name it.
                File::open(&target).and_then(|linked| linked.sync_all()).with_path("flush", &target)?;
                sync_dir(&dir);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            // Another filesystem, or one without hard links: copy.
            Err(_) => {}
        }
        let mut source = File::open(path).with_path("open", path)?;
        let (_, mut temp) = self.temp_blob(&target)?;
        io::copy(&mut source, temp.as_file_mut()).with_path("copy", path)?;
        self.settle(temp, &target, &dir)
    }

    fn blob_dir(&self, blob: &Path) -> Result<PathBuf> {
        let dir = blob.parent().map(Path::to_path_buf).unwrap_or_else(|| self.dir.clone());
        fs::create_dir_all(&dir).with_path("create directory", &dir)?;
        Ok(dir)
    }

    fn temp_blob(&self, blob: &Path) -> Result<(PathBuf, tempfile::NamedTempFile)> {
        let dir = self.blob_dir(blob)?;
        let temp = crate::fsutil::temp_file_in(&dir).with_path("create a file in", &dir)?;
        Ok((dir, temp))
    }

    /// Make a written temp blob durable and give it its name; readable by all, as the
    /// tools that read layouts expect.
    fn settle(&self, temp: tempfile::NamedTempFile, target: &Path, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .with_path("set permissions on", temp.path())?;
        temp.as_file().sync_all().with_path("flush", temp.path())?;
        temp.persist(target).map_err(|e| Error::io("store", target, e.error))?;
        sync_dir(dir);
        Ok(())
    }

    fn check_digest(&self, digest: &Digest, reader: &mut dyn Read, path: &Path) -> Result<()> {
        match digest_reader(digest.algorithm(), reader).with_path("read", path)? {
            Some(actual) if actual == *digest => Ok(()),
            Some(actual) => Err(Error::Failed {
                problem: format!("{} should have digest {digest}, but its bytes hash to {actual}", path.display()),
                hint: format!("the file is corrupt; remove it and write {} again", self.describe()),
            }),
            None => Err(Error::Failed {
                problem: format!("cannot verify {digest}: castoff checks sha256, sha384 and sha512 digests"),
                hint: "use an image whose content is addressed by a SHA-2 digest".into(),
            }),
        }
    }

    /// The descriptors in `index.json`, in order.
    pub fn entries(&self) -> Result<Vec<Descriptor>> {
        let index = self.read_index()?;
        manifests_of(&index)
            .iter()
            .enumerate()
            .map(|(n, entry)| {
                serde_json::from_value(entry.clone())
                    .map_err(|e| self.malformed_index(format!("manifests[{n}] is not a descriptor: {e}")))
            })
            .collect()
    }

    /// The entry named `tag` (by its `org.opencontainers.image.ref.name` annotation); the
    /// last one if several claim it, as the newest.
    pub fn find_tag(&self, tag: &str) -> Result<Option<Descriptor>> {
        Ok(self.entries()?.into_iter().rev().find(|d| ref_name(d) == Some(tag)))
    }

    /// Point `tag` at `descriptor`: entries with that name are removed, all others kept
    /// in order, and the descriptor (given the name annotation) appended. The caller
    /// holds [`OciLayout::lock`]. index.json is replaced atomically.
    pub fn set_tag(&self, tag: &str, descriptor: Descriptor) -> Result<()> {
        let mut descriptor = descriptor;
        let mut annotations = descriptor.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.to_string(), tag.to_string());
        descriptor.set_annotations(Some(annotations));
        let entry = serde_json::to_value(&descriptor).map_err(|e| Error::Internal(format!("descriptor: {e}")))?;
        let mut index = self.read_index()?;
        let kept: Vec<Value> = manifests_of(&index)
            .iter()
            .filter(|entry| entry.get("annotations").and_then(|a| a.get(REF_NAME)).and_then(Value::as_str) != Some(tag))
            .cloned()
            .chain(std::iter::once(entry))
            .collect();
        if let Value::Object(map) = &mut index {
            map.insert("manifests".into(), Value::Array(kept));
        }
        let mut bytes = serde_json::to_vec(&index).map_err(|e| Error::Internal(format!("index.json: {e}")))?;
        bytes.push(b'\n');
        fsutil::write_atomic(&self.dir.join(INDEX_FILE), &bytes)
    }

    /// `index.json`, checked to be an image index: an object with schemaVersion 2 and a
    /// `manifests` array. Unknown fields are kept as they are.
    fn read_index(&self) -> Result<Value> {
        let path = self.dir.join(INDEX_FILE);
        let bytes = fs::read(&path).with_path("read", &path)?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| self.malformed_index(format!("not valid JSON: {e}")))?;
        let Value::Object(map) = &value else {
            return Err(self.malformed_index("it is not a JSON object".into()));
        };
        match map.get("schemaVersion").and_then(Value::as_u64) {
            Some(2) => {}
            _ => return Err(self.malformed_index("schemaVersion is not 2".into())),
        }
        match map.get("manifests") {
            None | Some(Value::Array(_)) => Ok(value),
            Some(_) => Err(self.malformed_index("`manifests` is not an array".into())),
        }
    }

    fn malformed_index(&self, problem: String) -> Error {
        Error::invalid(
            Location::file(self.shown.join(INDEX_FILE)),
            problem,
            format!(
                "repair it, or remove {} and build again (index.json names the layout's images)",
                self.shown.display()
            ),
        )
    }

    /// `oci-layout:DIR`, for messages.
    pub fn describe(&self) -> String {
        format!("oci-layout:{}", self.shown.display())
    }

    /// A [`Reference`] naming `tag` or `digest` in this layout, for [`ImageSource`]
    /// calls and the messages they produce (`oci-layout/DIR:TAG`).
    pub fn reference(&self, tag: Option<&str>, digest: Option<&Digest>) -> Reference {
        Reference {
            registry: "oci-layout".into(),
            repository: self.shown.display().to_string(),
            tag: tag.map(str::to_string),
            digest: digest.map(ToString::to_string),
        }
    }
}

/// Make a rename or link in `dir` durable. Best effort, as in `fsutil`: some
/// filesystems refuse to sync a directory, and the data itself is already written.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn manifests_of(index: &Value) -> &[Value] {
    index.get("manifests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// The `ref.name` annotation of an index entry.
pub fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str)
}

/// What is wrong with `root/rel` as the place of an OCI layout, if anything: a symlink
/// (castoff never writes or reads a layout through one, as for `.castoff/cache`), a
/// file, or a path that leads out of the project through a symlinked parent.
fn location_problem(root: &Path, rel: &str) -> Option<Problem> {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(&path).map(|t| format!(" (to {})", t.display())).unwrap_or_default();
            return Some(Problem::new(
                format!("the OCI layout {rel} is a symlink{target}; castoff never writes or reads a layout through a symlink"),
                format!(
                    "remove the link (`rm {rel}`) and let castoff create the directory, \
                     or configure a directory inside the project"
                ),
            ));
        }
        Ok(meta) if !meta.is_dir() => return Some(not_a_directory_problem(rel)),
        _ => {}
    }
    // The deepest part of the path that exists must resolve inside the project: a
    // symlinked parent (`dist -> /tmp`) would take everything below it elsewhere.
    let root_real = root.canonicalize().ok()?;
    let mut probe = path.as_path();
    let real = loop {
        match probe.canonicalize() {
            Ok(real) => break real,
            Err(_) => probe = probe.parent().filter(|parent| parent.starts_with(root))?,
        }
    };
    match real.starts_with(&root_real) {
        true => None,
        false => Some(Problem::new(
            format!(
                "the OCI layout {rel} resolves to {}, outside the project",
                real.join(path.strip_prefix(probe).unwrap_or(Path::new(""))).display()
            ),
            "configure a directory inside the project, not one reached through a symlink out of it",
        )),
    }
}

fn not_a_directory_problem(rel: &str) -> Problem {
    Problem::new(
        format!("the OCI layout {rel} is a file, not a directory"),
        format!("remove {rel}, or point the layout at a directory"),
    )
}

fn not_a_directory(rel: &str) -> Error {
    let problem = not_a_directory_problem(rel);
    Error::usage(problem.problem(), problem.hint())
}

/// Create `path` holding `bytes` unless it exists (then leave it as it is): written to
/// a temp file, made durable, then linked into place without replacing anything.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = crate::fsutil::temp_file_in(dir).with_path("create a file in", dir)?;
    temp.write_all(bytes).with_path("write", temp.path())?;
    temp.as_file().set_permissions(fs::Permissions::from_mode(0o644)).with_path("set permissions on", temp.path())?;
    temp.as_file().sync_all().with_path("flush", temp.path())?;
    match temp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(dir);
            Ok(())
        }
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path, e.error)),
    }
}

/// The one streaming digest helper: a writer that hashes (SHA-2) and counts what
/// passes through to `inner`. [`digest_reader`] hashes a reader with it; the native
/// layer writer hashes its tar and gzip streams with it. (Bytes already in memory:
/// [`crate::manifest::index::sha256_digest`].)
pub struct DigestWriter<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl<W: Write> DigestWriter<W> {
    /// sha256, the digest castoff writes.
    pub fn sha256(inner: W) -> Self {
        DigestWriter { inner, hasher: Hasher::Sha256(Sha256::new()), count: 0 }
    }

    /// `algorithm`, when it is one of the SHA-2 ones castoff checks.
    pub fn new(algorithm: &DigestAlgorithm, inner: W) -> Option<Self> {
        let hasher = match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            DigestAlgorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(Sha512::new()),
            _ => return None,
        };
        Some(DigestWriter { inner, hasher, count: 0 })
    }

    /// The digest of everything written so far.
    pub fn digest(&self) -> Digest {
        let (algorithm, hex) = match &self.hasher {
            Hasher::Sha256(h) => ("sha256", hex(&h.clone().finalize())),
            Hasher::Sha384(h) => ("sha384", hex(&h.clone().finalize())),
            Hasher::Sha512(h) => ("sha512", hex(&h.clone().finalize())),
        };
        // Lowercase hex of the right length always parses as a digest of its algorithm.
        format!("{algorithm}:{hex}").parse().unwrap_or_else(|_| unreachable!("a well-formed {algorithm} digest"))
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(&buf[..n]),
            Hasher::Sha384(h) => h.update(&buf[..n]),
            Hasher::Sha512(h) => h.update(&buf[..n]),
        }
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `algorithm` digest of everything `reader` yields; `None` when `algorithm` is
/// not one castoff can compute (SHA-2 only).
pub fn digest_reader(algorithm: &DigestAlgorithm, reader: &mut dyn Read) -> io::Result<Option<Digest>> {
    let Some(mut writer) = DigestWriter::new(algorithm, io::sink()) else { return Ok(None) };
    io::copy(reader, &mut writer)?;
    Ok(Some(writer.digest()))
}

impl ImageSource for OciLayout {
    /// By digest when the reference has one, else the entry whose `ref.name` is the
    /// reference's tag. The media type is the index entry's, else the JSON's own.
    fn manifest(&self, reference: &Reference) -> Result<Fetched> {
        let (digest, declared) = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => {
                let digest: Digest = digest.parse().map_err(|e| RegistryError::Protocol {
                    url: reference.to_string(),
                    problem: format!("`{digest}` is not a digest: {e}"),
                })?;
                let declared =
                    self.entries()?.into_iter().find(|d| *d.digest() == digest).map(|d| d.media_type().clone());
                (digest, declared)
            }
            (None, Some(tag)) => match self.find_tag(tag)? {
                Some(descriptor) => (descriptor.digest().clone(), Some(descriptor.media_type().clone())),
                None => return Err(RegistryError::NotFound { what: format!("`{tag}` in {}", self.describe()) }.into()),
            },
            (None, None) => {
                return Err(RegistryError::Protocol {
                    url: reference.to_string(),
                    problem: "the reference has neither tag nor digest, so it names no manifest".into(),
                }
                .into())
            }
        };
        let bytes = self.read_blob(&digest, MANIFEST_LIMIT)?;
        let media_type = declared.or_else(|| embedded_media_type(&bytes)).ok_or_else(|| RegistryError::Protocol {
            url: reference.to_string(),
            problem: "the manifest has no media type in index.json and no mediaType field".into(),
        })?;
        Ok(Fetched { media_type, digest, bytes })
    }

    fn blob(&self, _reference: &Reference, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        self.read_blob(digest, limit)
    }
}

/// A manifest's own `mediaType` field.
fn embedded_media_type(bytes: &[u8]) -> Option<MediaType> {
    let value: Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    value.get("mediaType").and_then(Value::as_str).filter(|m| !m.is_empty()).map(MediaType::from)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::DescriptorBuilder;

    use super::*;
    use crate::platform::Platform;

    fn descriptor(bytes: &[u8], media_type: MediaType) -> Descriptor {
        Descriptor::new(media_type, bytes.len() as u64, crate::manifest::index::sha256_digest(bytes))
    }

    #[test]
    fn create_makes_a_layout_and_open_reads_it() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "dist/oci").unwrap();
        assert_eq!(layout.shown(), Path::new("dist/oci"));
        let marker = fs::read_to_string(root.path().join("dist/oci/oci-layout")).unwrap();
        assert_eq!(marker.trim(), r#"{"imageLayoutVersion":"1.0.0"}"#);
        assert!(layout.entries().unwrap().is_empty());
        // Creating again keeps what is there.
        let digest = layout.write_blob(b"x").unwrap();
        let _ = OciLayout::create(root.path(), "dist/oci").unwrap();
        assert!(layout.has_blob(&digest));
        OciLayout::open(root.path(), "dist/oci").unwrap();
    }

    #[test]
    fn refuses_what_is_not_a_layout() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("other")).unwrap();
        fs::write(root.path().join("other/notes.txt"), "mine").unwrap();
        let err = OciLayout::create(root.path(), "other").unwrap_err();
        assert!(err.to_string().contains("other exists and is not an OCI image layout"), "{err}");
        assert!(err.hint().unwrap().contains("empty directory"), "{:?}", err.hint());
        assert_eq!(err.exit_code(), 2);

        let err = OciLayout::open(root.path(), "missing").unwrap_err();
        assert!(err.to_string().contains("missing does not exist"), "{err}");
        assert!(err.hint().unwrap().contains("skopeo copy"), "{:?}", err.hint());

        fs::create_dir_all(root.path().join("future")).unwrap();
        fs::write(root.path().join("future/oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
        let err = OciLayout::create(root.path(), "future").unwrap_err();
        assert!(err.to_string().contains("future/oci-layout: imageLayoutVersion is 2.0.0"), "{err}");
        let err = OciLayout::open(root.path(), "future").unwrap_err();
        assert!(err.to_string().contains("2.0.0"), "{err}");
    }

    #[test]
    fn malformed_index_names_the_file() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        fs::write(root.path().join("oci/index.json"), "{\"schemaVersion\":2,\"manifests\":{}}").unwrap();
        let err = layout.entries().unwrap_err();
        assert!(err.to_string().contains("oci/index.json: `manifests` is not an array"), "{err}");
        fs::write(root.path().join("oci/index.json"), "{").unwrap();
        let err = layout.find_tag("x").unwrap_err();
        assert!(err.to_string().contains("oci/index.json: not valid JSON"), "{err}");
        fs::write(root.path().join("oci/index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"size\":1}]}").unwrap();
        let err = layout.entries().unwrap_err();
        assert!(err.to_string().contains("manifests[0] is not a descriptor"), "{err}");
    }

    #[test]
    fn blobs_round_trip_and_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        let digest = layout.write_blob(b"hello").unwrap();
        assert_eq!(digest, crate::manifest::index::sha256_digest(b"hello"));
        assert!(layout.blob_path(&digest).ends_with(format!("blobs/sha256/{}", digest.digest())));
        assert_eq!(layout.read_blob(&digest, 100).unwrap(), b"hello");
        assert_eq!(layout.write_blob(b"hello").unwrap(), digest);
        assert!(layout.read_blob(&digest, 2).unwrap_err().to_string().contains("more than the 2"));

        // Import: from a file, checked; a corrupt source is refused.
        let source = root.path().join("layer.bin");
        fs::write(&source, b"layer bytes").unwrap();
        let layer = crate::manifest::index::sha256_digest(b"layer bytes");
        layout.import_blob(&source, &layer).unwrap();
        assert_eq!(layout.read_blob(&layer, 100).unwrap(), b"layer bytes");
        let wrong = crate::manifest::index::sha256_digest(b"other");
        let err = layout.import_blob(&source, &wrong).unwrap_err();
        assert!(err.to_string().contains("should have digest"), "{err}");
        assert!(!layout.has_blob(&wrong));

        // A blob changed on disk is caught on read.
        fs::remove_file(layout.blob_path(&digest)).unwrap();
        fs::write(layout.blob_path(&digest), b"jello").unwrap();
        let err = layout.read_blob(&digest, 100).unwrap_err();
        assert!(err.to_string().contains("hash to sha256:"), "{err}");
        let missing = crate::manifest::index::sha256_digest(b"nothing");
        assert!(matches!(layout.read_blob(&missing, 100), Err(Error::Registry(RegistryError::NotFound { .. }))));
    }

    #[test]
    fn set_tag_replaces_that_name_and_keeps_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        let a = descriptor(b"a", MediaType::ImageManifest);
        let b = descriptor(b"b", MediaType::ImageManifest);
        let c = descriptor(b"c", MediaType::ImageIndex);
        {
            let _lock = layout.lock().unwrap();
            layout.set_tag("one", a.clone()).unwrap();
            layout.set_tag("two", b.clone()).unwrap();
            let with_other = DescriptorBuilder::default()
                .media_type(MediaType::ImageIndex)
                .digest(c.digest().clone())
                .size(c.size())
                .annotations(HashMap::from([("org.example".to_string(), "kept".to_string())]))
                .build()
                .unwrap();
            layout.set_tag("one", with_other).unwrap();
        }
        let entries = layout.entries().unwrap();
        let names: Vec<_> = entries.iter().map(|d| ref_name(d).unwrap().to_string()).collect();
        assert_eq!(names, ["two", "one"]);
        let one = layout.find_tag("one").unwrap().unwrap();
        assert_eq!(one.digest(), c.digest());
        assert_eq!(one.annotations().as_ref().unwrap()["org.example"], "kept");
        assert!(layout.find_tag("three").unwrap().is_none());
    }

    #[test]
    fn the_lock_excludes_other_threads() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        let inside = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for n in 0..8u8 {
                let (layout, inside) = (&layout, &inside);
                scope.spawn(move || {
                    let _lock = layout.lock().unwrap();
                    assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                    layout.set_tag(&format!("t{n}"), descriptor(&[n], MediaType::ImageManifest)).unwrap();
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        assert_eq!(layout.entries().unwrap().len(), 8);
        // A second handle on the same directory (its own mutex) still waits: flock.
        let other = OciLayout::open(root.path(), "oci").unwrap();
        let held = layout.lock().unwrap();
        let dir = File::open(other.dir()).unwrap();
        assert!(rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err());
        drop(held);
        assert!(rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_ok());
    }

    /// Several builds creating the same new layout at once (each its own handle, as
    /// separate processes would have), tagging as soon as theirs exists: every create
    /// succeeds, none mistakes another's marker or temp file for foreign files, and no
    /// create wipes a tag already written.
    #[test]
    fn concurrent_creates_and_tags_lose_nothing() {
        for round in 0..10 {
            let root = tempfile::tempdir().unwrap();
            let rel = format!("dist/oci{round}");
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|scope| {
                for n in 0..8u8 {
                    let (root, rel, start) = (root.path(), rel.as_str(), &start);
                    scope.spawn(move || {
                        start.wait();
                        let layout = OciLayout::create(root, rel).unwrap();
                        let _lock = layout.lock().unwrap();
                        layout.set_tag(&format!("t{n}"), descriptor(&[n], MediaType::ImageManifest)).unwrap();
                    });
                }
            });
            let layout = OciLayout::open(root.path(), &rel).unwrap();
            let mut names: Vec<String> =
                layout.entries().unwrap().iter().map(|d| ref_name(d).unwrap().to_string()).collect();
            names.sort();
            assert_eq!(names, (0..8).map(|n| format!("t{n}")).collect::<Vec<_>>(), "round {round}");
        }
    }

    /// A leftover temp file of castoff's (a crash while creating) is not "other files";
    /// an existing index.json is kept, not replaced by an empty one.
    #[test]
    fn create_ignores_its_temp_files_and_keeps_the_index() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("oci")).unwrap();
        fs::write(root.path().join("oci/.castoff-tmp-abc"), b"half").unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        {
            let _lock = layout.lock().unwrap();
            layout.set_tag("kept", descriptor(b"k", MediaType::ImageManifest)).unwrap();
        }
        // A marker without an index (a crash between the two writes) gets one.
        fs::remove_file(root.path().join("oci/index.json")).unwrap();
        let again = OciLayout::create(root.path(), "oci").unwrap();
        assert!(again.entries().unwrap().is_empty());
        {
            let _lock = again.lock().unwrap();
            again.set_tag("kept", descriptor(b"k", MediaType::ImageManifest)).unwrap();
        }
        let third = OciLayout::create(root.path(), "oci").unwrap();
        assert!(third.find_tag("kept").unwrap().is_some());
    }

    /// A layout that is a symlink, or below a symlinked parent leading out of the
    /// project, is refused for writing and for reading; with its config key when
    /// checked as configuration.
    #[test]
    fn a_symlinked_layout_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("dist")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("dist/oci")).unwrap();
        let err = OciLayout::create(root.path(), "dist/oci").unwrap_err();
        assert!(err.to_string().contains("dist/oci is a symlink"), "{err}");
        assert_eq!(err.exit_code(), 2);
        assert!(fs::read_dir(elsewhere.path()).unwrap().next().is_none(), "nothing written through the link");
        let err = OciLayout::open(root.path(), "dist/oci").unwrap_err();
        assert!(err.to_string().contains("is a symlink"), "{err}");
        let err =
            OciLayout::check_location(root.path(), "dist/oci", Path::new("other.toml"), "image.output").unwrap_err();
        assert!(
            err.to_string().starts_with("other.toml (key `image.output`): the OCI layout dist/oci is a symlink"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);

        // A symlinked parent out of the project, the layout not yet there.
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("out")).unwrap();
        let err = OciLayout::create(root.path(), "out/oci").unwrap_err();
        assert!(err.to_string().contains("outside the project"), "{err}");
        assert!(!elsewhere.path().join("oci").exists());
        let err = OciLayout::check_location(root.path(), "out/oci", Path::new("castoff.toml"), "image.native.base")
            .unwrap_err();
        assert!(err.to_string().contains("(key `image.native.base`)"), "{err}");
        // A symlinked parent inside the project is fine.
        fs::create_dir_all(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("alias")).unwrap();
        OciLayout::create(root.path(), "alias/oci").unwrap();
        assert!(root.path().join("real/oci/oci-layout").is_file());
        // A file is not a directory.
        fs::write(root.path().join("file"), b"x").unwrap();
        let err = OciLayout::create(root.path(), "file").unwrap_err();
        assert!(err.to_string().contains("file is a file, not a directory"), "{err}");
        let err = OciLayout::create(root.path(), "file/oci").unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    /// An image written into the layout resolves through `manifest::resolve` like one in
    /// a registry; a missing tag is the usual "no image for PLATFORM" error.
    #[test]
    fn resolves_like_a_registry() {
        let root = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(root.path(), "oci").unwrap();
        let config = br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
        let config_digest = layout.write_blob(config).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
            config.len()
        );
        let manifest_digest = layout.write_blob(manifest.as_bytes()).unwrap();
        {
            let _lock = layout.lock().unwrap();
            layout.set_tag("1.0-armv7", descriptor(manifest.as_bytes(), MediaType::ImageManifest)).unwrap();
        }
        let platform = Platform::parse("linux/arm/v7").unwrap();
        let child =
            crate::manifest::resolve::resolve(&layout, &layout.reference(Some("1.0-armv7"), None), &platform).unwrap();
        assert_eq!(child.digest, manifest_digest);
        assert_eq!(child.media_type, MediaType::ImageManifest);
        assert_eq!(child.blobs, vec![config_digest]);
        // By digest too, media type from the JSON.
        let by_digest = layout.manifest(&layout.reference(None, Some(&manifest_digest))).unwrap();
        assert_eq!(by_digest.bytes, manifest.as_bytes());

        let err =
            crate::manifest::resolve::resolve(&layout, &layout.reference(Some("nope"), None), &platform).unwrap_err();
        assert!(err.to_string().contains("no image for linux/arm/v7"), "{err}");
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let err =
            crate::manifest::resolve::resolve(&layout, &layout.reference(Some("1.0-armv7"), None), &amd64).unwrap_err();
        assert!(err.to_string().contains("according to its image config"), "{err}");
    }
}
