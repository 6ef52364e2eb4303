//! Atomic file replacement, the only way castoff writes a file a user keeps.
//!
//! A temp file in the same directory is written, fsynced, given the old file's
//! permissions and renamed over the target; then the directory is fsynced so the rename
//! itself survives a crash. A reader (or a crash) sees the old bytes or the new ones,
//! never a mix, and a failed write leaves no temp file behind (tempfile removes it on
//! drop).

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Replace `path` with `contents` atomically and durably, creating parent directories
/// as needed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, Durability::Synced)
}

/// Replace `path` atomically but without waiting for the disk: for caches, where a
/// file lost to a power cut is merely rebuilt.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> Result<()> {
    replace(path, contents, Durability::Unsynced)
}

#[derive(PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

fn replace(path: &Path, contents: &[u8], durability: Durability) -> Result<()> {
    // Write through a symlink rather than replacing the link with a file. Callers have
    // checked that the target stays inside the project.
    let resolved = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).with_path("resolve symlink", path)?,
        _ => path.to_path_buf(),
    };
    let path = resolved.as_path();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).with_path("create directory", dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".castoff-tmp-")
        .tempfile_in(dir)
        .with_path("create a temporary file in", dir)?;
    temp.write_all(contents).with_path("write", temp.path())?;
    if let Ok(existing) = fs::metadata(path) {
        fs::set_permissions(temp.path(), existing.permissions()).with_path("set permissions on", temp.path())?;
    } else {
        set_default_permissions(temp.as_file());
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
