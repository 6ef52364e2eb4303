//! Atomic file replacement, the only way castoff writes a file a user keeps.
//!
//! A temp file in the same directory is written, fsynced, given the old file's
//! permissions and renamed over the target; then the directory is fsynced so the rename
//! itself survives a crash. A reader (or a crash) sees the old bytes or the new ones,
//! never a mix, and a failed write leaves no temp file behind (tempfile removes it on
//! drop).
//!
//! Writes never follow a symlink: the rename replaces a link at `path` with a file, so a
//! link committed to the repository (say `.castoff/cache/stat.bin -> ~/.bashrc`) cannot
//! make castoff write outside the project. Only VERSION may be a symlink that castoff
//! writes through, after checking that it resolves inside the project
//! ([`write_atomic_through_symlink`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Location, Result};

/// Replace `path` with `contents` atomically and durably, creating parent directories
/// as needed. A symlink at `path` is replaced, not followed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, Durability::Synced)
}

/// Replace `path` atomically but without waiting for the disk: for caches, where a
/// file lost to a power cut is merely rebuilt. A symlink at `path` is replaced.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, Durability::Unsynced)
}

/// Like [`write_atomic`], but when `path` is a symlink, replace the file it resolves to
/// and keep the link. Only for VERSION, whose target the caller has checked stays
/// inside the project.
pub fn write_atomic_through_symlink(path: &Path, contents: &[u8]) -> Result<()> {
    let resolved = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).with_path("resolve symlink", path)?,
        _ => path.to_path_buf(),
    };
    replace(&resolved, contents, Durability::Synced)
}

/// The prefix of every temp file castoff writes beside its target.
pub const TEMP_PREFIX: &str = ".castoff-tmp-";

/// A new temp file in `dir` (named `.castoff-tmp-*`), flocked for as long as it is
/// open: the kernel drops the lock when the writer exits, even on SIGKILL, so
/// [`remove_stale_temps`] can tell a dead writer's leftovers from a live writer's
/// file. Every temp file castoff writes beside its target comes from here.
pub fn temp_file_in(dir: &Path) -> io::Result<tempfile::NamedTempFile> {
    let temp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)?;
    rustix::fs::flock(temp.as_file(), rustix::fs::FlockOperation::LockExclusive)?;
    Ok(temp)
}

/// Delete the temp files (`.castoff-tmp-*`) a killed castoff left in `dir` and, down to
/// `depth` levels, its subdirectories (never through a symlink). A temp file whose
/// flock another process holds belongs to a live writer and is left alone (see
/// [`temp_file_in`]). Errors are ignored: what cannot be removed is left for the next
/// sweep.
pub fn remove_stale_temps(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let name = entry.file_name();
        if kind.is_file() && name.to_string_lossy().starts_with(TEMP_PREFIX) {
            removed += usize::from(remove_if_abandoned(&entry.path()));
        } else if kind.is_dir() && depth > 0 {
            removed += remove_stale_temps(&entry.path(), depth - 1);
        }
    }
    removed
}

/// Remove `path` if no live process holds its flock (taken here while it is removed).
fn remove_if_abandoned(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else { return false };
    let free = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok();
    free && fs::remove_file(path).is_ok()
}

#[derive(PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

fn replace(path: &Path, contents: &[u8], durability: Durability) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).with_path("create directory", dir)?;
    let mut temp = temp_file_in(dir).with_path("create a temporary file in", dir)?;
    temp.write_all(contents).with_path("write", temp.path())?;
    // Keep a regular file's permissions; a symlink's own mode means nothing.
    match fs::symlink_metadata(path) {
        Ok(existing) if existing.is_file() => {
            fs::set_permissions(temp.path(), existing.permissions()).with_path("set permissions on", temp.path())?
        }
        _ => set_default_permissions(temp.as_file()),
    }
    if durability == Durability::Synced {
        temp.as_file().sync_all().with_path("flush", temp.path())?;
    }
    temp.persist(path).map_err(|e| Error::io("replace", path, e.error))?;
    if durability == Durability::Synced {
        sync_dir(dir);
    }
    Ok(())
}

/// New files get the usual 0644 rather than tempfile's private 0600.
fn set_default_permissions(file: &fs::File) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: a file with stricter permissions is still correct.
    let _ = file.set_permissions(fs::Permissions::from_mode(0o644));
}

/// Make a completed rename durable. Failure here is not an error: the data is written,
/// only its durability across power loss is weaker, and some filesystems refuse it.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// Make sure `root/rel` is a real directory (not a symlink), creating it (and, with
/// `parents`, nothing else: its parent must already be checked) when missing. Returns
/// whether it was created. A symlink or a file there is bad input: castoff would write
/// wherever it points.
pub fn ensure_real_dir(root: &Path, rel: &str) -> Result<bool> {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => return Ok(false),
        Ok(meta) => return Err(not_a_real_dir(rel, meta.file_type().is_symlink())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("inspect", &path, e)),
    }
    match fs::create_dir(&path) {
        Ok(()) => Ok(true),
        // Another castoff made it meanwhile; check what it is.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(false),
            Ok(meta) => Err(not_a_real_dir(rel, meta.file_type().is_symlink())),
            Err(e) => Err(Error::io("inspect", &path, e)),
        },
        Err(e) => Err(Error::io("create directory", &path, e)),
    }
}

/// Whether `root/rel` exists and is a real directory; an error when something else
/// (a symlink, a file) is in the way.
pub fn check_real_dir(root: &Path, rel: &str) -> Result<bool> {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(meta) => Err(not_a_real_dir(rel, meta.file_type().is_symlink())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect", &path, e)),
    }
}

fn not_a_real_dir(rel: &str, symlink: bool) -> Error {
    let what = if symlink { "a symlink" } else { "a file" };
    Error::invalid(
        Location::file(PathBuf::from(rel)),
        format!("this is {what}, not a directory; castoff keeps its own files here and never writes through a symlink"),
        format!("remove it (`rm {rel}`); castoff creates the directory it needs"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn replaces_a_symlink_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep me\n").unwrap();
        let link = dir.path().join("link");
        symlink(&outside, &link).unwrap();
        write_atomic(&link, b"new\n").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep me\n");
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read(&link).unwrap(), b"new\n");

        let link2 = dir.path().join("link2");
        symlink(&outside, &link2).unwrap();
        write_atomic_unsynced(&link2, b"cache\n").unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep me\n");
    }

    #[test]
    fn version_writes_go_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("meta-VERSION");
        fs::write(&target, "1.0.0\n").unwrap();
        let link = dir.path().join("VERSION");
        symlink("meta-VERSION", &link).unwrap();
        write_atomic_through_symlink(&link, b"1.0.1\n").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"1.0.1\n");
    }

    #[test]
    fn real_dirs_only() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ensure_real_dir(dir.path(), ".castoff").unwrap());
        assert!(!ensure_real_dir(dir.path(), ".castoff").unwrap());
        symlink(dir.path(), dir.path().join(".castoff/cache")).unwrap();
        let err = ensure_real_dir(dir.path(), ".castoff/cache").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains(".castoff/cache: this is a symlink"), "{err}");
    }
}
