//! A folder feed in the hierarchical layout `nuget add` writes (and NuGet reads as a
//! local v3 feed):
//!
//! ```text
//! <root>/<id-lower>/<version-lower>/<id-lower>.<version-lower>.nupkg
//!                                   <id-lower>.<version-lower>.nupkg.sha512   (base64 SHA-512)
//!                                   <id-lower>.nuspec                         (from the nupkg)
//! ```
//!
//! Symbols packages go beside the package under their own names
//! (`<id-lower>.<version-lower>.snupkg` or `.symbols.nupkg`), where NuGet ignores them
//! and a person or a symbol server can find them.
//!
//! Each file is written to a temporary file in its directory and renamed into place;
//! the `.sha512` file, which NuGet takes as the sign that a package is complete, comes
//! last. A package already there with the same SHA-512 is "already published"; with a
//! different one, an error: a published version never changes.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha512};

use super::{lower, sha512_file, Compared, Feed, FeedError, Holds, Landed, Meter, Upload, PROGRESS_STEP};
use crate::fsutil;

/// Which file of a version folder an upload becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The package itself, with its `.sha512` and `.nuspec`.
    Package,
    /// A symbols package, beside the package.
    Beside,
}

/// Where `upload` goes in a folder feed at `root`.
pub(crate) fn destination(root: &Path, upload: &Upload, slot: Slot) -> PathBuf {
    let (id, version) = (lower(&upload.id), lower(&upload.version));
    let dir = root.join(&id).join(&version);
    let name = match slot {
        Slot::Package => format!("{id}.{version}.nupkg"),
        Slot::Beside if upload.filename.to_ascii_lowercase().ends_with(".snupkg") => format!("{id}.{version}.snupkg"),
        Slot::Beside => format!("{id}.{version}.symbols.nupkg"),
    };
    dir.join(name)
}

/// The files beside a package that NuGet needs: `<id-lower>.nuspec` and
/// `<package>.sha512` (the sign that the package is complete).
fn side_files(target: &Path, upload: &Upload) -> (PathBuf, PathBuf) {
    let dir = target.parent().unwrap_or(Path::new("."));
    (dir.join(format!("{}.nuspec", lower(&upload.id))), PathBuf::from(format!("{}.sha512", target.display())))
}

/// Put `upload` into the folder feed; `meter` is told how much has been copied.
pub(crate) fn add(
    feed: &Feed,
    root: &Path,
    upload: &Upload,
    slot: Slot,
    meter: Option<&Meter>,
) -> Result<Landed, FeedError> {
    let target = destination(root, upload, slot);
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| root.to_path_buf());
    let local = upload.digest(&feed.name)?;
    let (nuspec_path, sha_path) = side_files(&target, upload);

    if let Some(existing) = existing_digest(feed, &target)? {
        if existing != local {
            return Err(feed.conflict(upload, local, existing));
        }
        if !feed.skip_duplicate {
            return Err(feed.duplicate(upload));
        }
        // Finish a package whose side files an interrupted run left out.
        if slot == Slot::Package {
            if !nuspec_path.exists() {
                write_nuspec(feed, &target, &nuspec_path)?;
            }
            if !sha_path.exists() {
                fsutil::write_atomic(&sha_path, local.as_bytes()).map_err(|e| feed.io("write", &sha_path, io_of(e)))?;
            }
        }
        return Ok(Landed::AlreadyThere(Compared::Same));
    }

    fs::create_dir_all(&dir).map_err(|e| feed.io("create directory", &dir, e))?;
    let Some(copied) = copy_atomic(feed, &upload.path, &target, meter)? else {
        // Another publisher put it there meanwhile: compare with that.
        return add(feed, root, upload, slot, meter);
    };
    if copied != local {
        // The file changed between packing (or hashing) and copying.
        let _ = fs::remove_file(&target);
        return Err(FeedError::Io {
            feed: feed.name.clone(),
            action: "copy",
            path: upload.path.clone(),
            source: io::Error::other("the file changed while it was being published; run `castoff pack` again"),
        });
    }
    if slot == Slot::Package {
        write_nuspec(feed, &target, &nuspec_path)?;
        fsutil::write_atomic(&sha_path, copied.as_bytes()).map_err(|e| feed.io("write", &sha_path, io_of(e)))?;
    }
    Ok(Landed::Pushed)
}

/// Whether the folder holds `upload` in `slot`, complete (a package with its `.nuspec`
/// and `.sha512`, which an interrupted publish may have left out) and with the same
/// SHA-512. Reads only.
pub(crate) fn holds(feed: &Feed, root: &Path, upload: &Upload, slot: Slot) -> Result<Holds, FeedError> {
    let target = destination(root, upload, slot);
    let Some(remote) = existing_digest(feed, &target)? else {
        return Ok(Holds::Missing(format!("{} is not there", target.display())));
    };
    let local = upload.digest(&feed.name)?;
    if remote != local {
        return Ok(Holds::Different { local, remote });
    }
    if slot == Slot::Package {
        let (nuspec_path, sha_path) = side_files(&target, upload);
        for side in [nuspec_path, sha_path] {
            if !side.is_file() {
                return Ok(Holds::Missing(format!("{} is not there (an interrupted publish)", side.display())));
            }
        }
    }
    Ok(Holds::Same)
}

/// The SHA-512 of the file already at `path`, if one is there.
fn existing_digest(feed: &Feed, path: &Path) -> Result<Option<String>, FeedError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => sha512_file(path).map(Some).map_err(|e| feed.io("read", path, e)),
        Ok(_) => Err(feed.io(
            "use",
            path,
            io::Error::other("it is not a regular file (castoff never writes through a symlink)"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(feed.io("inspect", path, e)),
    }
}

/// Copy `from` to `to` through a temporary file in `to`'s directory, hashing as it
/// goes (memory stays flat whatever the size); never replaces an existing file, so two
/// publishers racing for the same version cannot overwrite each other. `None` when
/// `to` appeared meanwhile. `meter` hears of the bytes copied.
fn copy_atomic(feed: &Feed, from: &Path, to: &Path, meter: Option<&Meter>) -> Result<Option<String>, FeedError> {
    let dir = to.parent().unwrap_or(Path::new("."));
    let mut source = File::open(from).map_err(|e| feed.io("read", from, e))?;
    let total = source.metadata().map_err(|e| feed.io("read", from, e))?.len();
    let (mut copied, mut reported) = (0u64, 0u64);
    let mut temp = crate::fsutil::temp_file_in(dir).map_err(|e| feed.io("create a temporary file in", dir, e))?;
    let mut hasher = Sha512::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(feed.io("read", from, e)),
        };
        hasher.update(&buffer[..n]);
        temp.write_all(&buffer[..n]).map_err(|e| feed.io("write", temp.path(), e))?;
        copied += n as u64;
        if let Some(meter) = meter.filter(|_| copied - reported >= PROGRESS_STEP && copied < total) {
            reported = copied;
            meter.report(copied, total);
        }
    }
    if let Some(meter) = meter {
        meter.report(copied, copied.max(total));
    }
    set_readable(temp.as_file());
    temp.as_file().sync_all().map_err(|e| feed.io("flush", to, e))?;
    match temp.persist_noclobber(to) {
        Ok(_) => {}
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(feed.io("write", to, e.error)),
    }
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    Ok(Some(base64::engine::general_purpose::STANDARD.encode(hasher.finalize())))
}

/// Packages in a feed are for everyone to read, not tempfile's private 0600.
fn set_readable(file: &File) {
    use std::os::unix::fs::PermissionsExt;
    let _ = file.set_permissions(fs::Permissions::from_mode(0o644));
}

/// Write the nupkg's root `.nuspec` beside it as `<id-lower>.nuspec`.
fn write_nuspec(feed: &Feed, nupkg: &Path, to: &Path) -> Result<(), FeedError> {
    let bytes = nuspec_of(nupkg).map_err(|e| feed.io("read the .nuspec in", nupkg, e))?;
    fsutil::write_atomic(to, &bytes).map_err(|e| feed.io("write", to, io_of(e)))
}

/// The bytes of the `.nuspec` at the root of a nupkg (a zip).
pub(crate) fn nuspec_of(nupkg: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(nupkg)?;
    let mut archive = zip::ZipArchive::new(file).map_err(io::Error::other)?;
    let name = archive
        .file_names()
        .filter_map(|name| name.ok())
        .find(|name| !name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec"))
        .map(|name| name.into_owned())
        .ok_or_else(|| io::Error::other("the package has no .nuspec at its root"))?;
    let mut entry = archive.by_name(&name).map_err(io::Error::other)?;
    let mut bytes = Vec::new();
    entry.by_ref().take(16 * 1024 * 1024).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// castoff's own error as an I/O error, for [`FeedError::Io`].
fn io_of(error: crate::error::Error) -> io::Error {
    match error {
        crate::error::Error::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_nugets() {
        let upload = |filename: &str| Upload {
            id: "Acme.Lib".into(),
            version: "1.2.0-RC.1".into(),
            path: PathBuf::from("x"),
            filename: filename.into(),
            sha512: None,
        };
        let root = Path::new("/feed");
        assert_eq!(
            destination(root, &upload("Acme.Lib.1.2.0-RC.1.nupkg"), Slot::Package),
            Path::new("/feed/acme.lib/1.2.0-rc.1/acme.lib.1.2.0-rc.1.nupkg")
        );
        assert_eq!(
            destination(root, &upload("Acme.Lib.1.2.0-RC.1.snupkg"), Slot::Beside),
            Path::new("/feed/acme.lib/1.2.0-rc.1/acme.lib.1.2.0-rc.1.snupkg")
        );
        assert_eq!(
            destination(root, &upload("Acme.Lib.1.2.0-RC.1.symbols.nupkg"), Slot::Beside),
            Path::new("/feed/acme.lib/1.2.0-rc.1/acme.lib.1.2.0-rc.1.symbols.nupkg")
        );
    }
}
