//! The one layer a native build adds: a tar of the configured files, gzip-compressed,
//! byte-for-byte reproducible.
//!
//! Determinism choices (the same files give the same layer digest on every machine
//! running the same castoff build):
//! - entries sorted by path; over scratch, every parent directory of a file is an
//!   entry (mode 0755); over a base image, none is ([`Parents`]);
//! - owner uid/gid 0 with empty user and group names;
//! - every mtime is 0 (the epoch), whatever the files' own times or
//!   `SOURCE_DATE_EPOCH`: the commit time would change the digest on every commit even
//!   when the files did not, and image dates live in the config's `created` instead;
//! - mode is the configured one, else 0755 when the source has any execute bit, else
//!   0644; no other metadata (xattrs, ACLs, device numbers) is recorded;
//! - gzip at a fixed level with no file name and mtime 0 in its header.
//!
//! The compressed bytes also depend on the deflate implementation; the layer cache
//! keys on [`compressor_fingerprint`] so a different one never reuses old layers.
//!
//! One streaming pass: file → tar → (sha256 = diff_id) → gzip → (sha256 = digest, size)
//! → the output file. Nothing is held in memory beyond buffers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use flate2::{Compression, GzBuilder};
use oci_spec::image::Digest;

use crate::error::{Error, IoContext, Result};
use crate::image::layout::DigestWriter;
use crate::sources::stamp::Stamp;

/// gzip level 3. Deflate is nearly all of a cold build's CPU (87% at level 6, by
/// `perf`); level 3 saves about a third of that for layers a few percent larger (a
/// 20 MB binary: 392 ms and 8.5 MB against 576 ms and 8.2 MB at level 6). Layers are
/// compressed once and then cached, so speed matters on the first build of every
/// release, and the size difference is small next to the base images they sit on.
pub const GZIP_LEVEL: u32 = 3;

/// Mode of the directory entries the layer adds for each file's parents.
const DIR_MODE: u32 = 0o755;

/// Whether the layer lists the parent directories of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parents {
    /// Over scratch: each parent is an entry (0755), so the image has them whatever
    /// tool unpacks it.
    Listed,
    /// Over a base image: no directory entries. One for `/tmp` would replace the
    /// base's `/tmp` (1777) with 0755 when the layers are stacked; extractors create
    /// the parents the base lacks.
    Implied,
}

/// One file to put in the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    /// Where to read it.
    pub src: PathBuf,
    /// Absolute path in the image (`/usr/local/bin/app`).
    pub dst: String,
    /// Configured permission bits; `None` decides from the source's execute bits.
    pub mode: Option<u32>,
}

/// What describes a built layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

/// The permission bits a file gets in the layer.
pub fn effective_mode(configured: Option<u32>, source_mode: u32) -> u32 {
    configured.unwrap_or(if source_mode & 0o111 != 0 { 0o755 } else { 0o644 })
}

/// Write the layer of `files` to `out`; the layer's digests and, per file, the stamp
/// of what was read (taken from the open file, before reading it).
pub fn write(files: &[LayerFile], parents: Parents, out: &mut dyn Write) -> Result<(Layer, Vec<Stamp>)> {
    let entries = entries(files)?;
    let compressed = DigestWriter::sha256(BufWriter::with_capacity(256 << 10, out));
    let gzip = GzBuilder::new().mtime(0).operating_system(255).write(compressed, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(DigestWriter::sha256(gzip));
    let mut stamps = vec![None; files.len()];
    for (path, entry) in &entries {
        match entry {
            Entry::Dir if parents == Parents::Implied => {}
            Entry::Dir => {
                let mut header = header(tar::EntryType::Directory, DIR_MODE, 0);
                tar.append_data(&mut header, path, io::empty()).map_err(|e| write_error(path, e))?;
            }
            Entry::File(index) => {
                let file = &files[*index];
                let handle = File::open(&file.src).with_path("open", &file.src)?;
                let meta = handle.metadata().with_path("inspect", &file.src)?;
                if !meta.is_file() {
                    return Err(Error::Failed {
                        problem: format!("{} is not a regular file", file.src.display()),
                        hint: "point [image.native] files at regular files".into(),
                    });
                }
                let mut header = header(tar::EntryType::Regular, effective_mode(file.mode, meta.mode()), meta.len());
                let mut reader = Counted { inner: handle.take(meta.len()), read: 0 };
                tar.append_data(&mut header, path, &mut reader).map_err(|e| write_error(path, e))?;
                let before = Stamp::of(&meta);
                let after = reader.inner.get_ref().metadata().with_path("inspect", &file.src)?;
                if reader.read != meta.len() || Stamp::of(&after) != before {
                    return Err(changed_while_reading(&file.src));
                }
                stamps[*index] = Some(before);
            }
        }
    }
    let tar_hash = tar.into_inner().map_err(|e| write_error("the end of the archive", e))?;
    let diff_id = tar_hash.digest();
    let gzip = tar_hash.into_inner();
    let compressed = gzip.finish().map_err(|e| write_error("the compressed stream", e))?;
    let (digest, size) = (compressed.digest(), compressed.count());
    compressed
        .into_inner()
        .into_inner()
        .map_err(|e| write_error("the layer file", e.into_error()))?
        .flush()
        .map_err(|e| write_error("the layer file", e))?;
    let stamps = stamps
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Internal("a layer file was not read".into()))?;
    Ok((Layer { diff_id, digest, size }, stamps))
}

/// The file changed size under us: the layer would be torn.
fn changed_while_reading(path: &Path) -> Error {
    Error::Failed {
        problem: format!("{} changed while castoff was reading it", path.display()),
        hint: "wait for whatever writes it to finish, then run castoff build again".into(),
    }
}

fn write_error(what: impl AsRef<Path>, error: io::Error) -> Error {
    Error::Failed {
        problem: format!("writing the layer entry {}: {error}", what.as_ref().display()),
        hint: "check the disk space under .castoff/cache and the files' permissions".into(),
    }
}

enum Entry {
    Dir,
    File(usize),
}

/// Every tar entry, keyed by its path without the leading `/` (`usr/local/bin/app`,
/// directories as `usr/local/`; listed even when not written, to find a file that is
/// another file's directory). BTreeMap order puts a directory before anything in it,
/// because its path is a prefix of theirs.
fn entries(files: &[LayerFile]) -> Result<BTreeMap<String, Entry>> {
    let mut entries = BTreeMap::new();
    for (index, file) in files.iter().enumerate() {
        let relative = file.dst.trim_start_matches('/');
        let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
        for depth in 1..parts.len() {
            let dir = format!("{}/", parts[..depth].join("/"));
            if entries.contains_key(dir.trim_end_matches('/')) {
                return Err(conflict(&dir));
            }
            entries.insert(dir, Entry::Dir);
        }
        let path = parts.join("/");
        if entries.contains_key(&format!("{path}/")) || entries.insert(path.clone(), Entry::File(index)).is_some() {
            return Err(conflict(&path));
        }
    }
    Ok(entries)
}

fn conflict(path: &str) -> Error {
    let path = path.trim_end_matches('/');
    Error::usage(
        format!("/{path} is both a file and a directory in [image.native] files"),
        "give each file a `dst` that is not another file's parent directory",
    )
}

/// Check the destinations fit together (no file inside another file), as preflight.
pub fn check_destinations(dsts: &[&str]) -> Result<()> {
    let files: Vec<LayerFile> =
        dsts.iter().map(|dst| LayerFile { src: PathBuf::new(), dst: dst.to_string(), mode: None }).collect();
    entries(&files).map(|_| ())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    // Empty names: a numeric owner only, as reproducible-build tars do.
    let _ = header.set_username("");
    let _ = header.set_groupname("");
    header
}

/// Counts what passes through.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// What this build's deflate implementation makes of a fixed sample at [`GZIP_LEVEL`]:
/// identifies the compressor (backend and version) without asking it, so cached layers
/// made by another one are not reused.
pub fn compressor_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let sample: Vec<u8> = (0..64u32 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 % 23).collect();
        let mut gzip = GzBuilder::new().mtime(0).write(Vec::new(), Compression::new(GZIP_LEVEL));
        let compressed = gzip.write_all(&sample).and_then(|()| gzip.finish());
        match compressed {
            Ok(bytes) => crate::manifest::index::sha256_digest(&bytes).digest()[..16].to_string(),
            Err(_) => "unknown".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file(dir: &Path, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn build(files: &[LayerFile]) -> (Layer, Vec<u8>) {
        let mut out = Vec::new();
        let (layer, _) = write(files, Parents::Listed, &mut out).unwrap();
        (layer, out)
    }

    #[test]
    fn same_files_same_bytes_and_digests_check_out() {
        let dir = tempfile::tempdir().unwrap();
        let app = file(dir.path(), "app", b"#!/bin/sh\necho hi\n", 0o755);
        let conf = file(dir.path(), "conf", b"x=1\n", 0o600);
        let files = vec![
            LayerFile { src: app, dst: "/usr/local/bin/app".into(), mode: None },
            LayerFile { src: conf.clone(), dst: "/etc/app.conf".into(), mode: None },
        ];
        let (first, bytes) = build(&files);
        // A later mtime changes nothing.
        filetime_now(&conf);
        let (second, again) = build(&files);
        assert_eq!(first, second);
        assert_eq!(bytes, again);
        assert_eq!(first.digest, crate::manifest::index::sha256_digest(&bytes));
        assert_eq!(first.size, bytes.len() as u64);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_end(&mut tar).unwrap();
        assert_eq!(first.diff_id, crate::manifest::index::sha256_digest(&tar));
        // gzip header: no mtime (bytes 4..8), no file name (FLG 0), OS unknown.
        assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
    }

    fn filetime_now(path: &Path) {
        let contents = std::fs::read(path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(path, contents).unwrap();
    }

    #[test]
    fn entries_are_sorted_owned_by_root_and_dated_zero() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            LayerFile { src: file(dir.path(), "b", b"b", 0o644), dst: "/usr/local/bin/app".into(), mode: None },
            LayerFile { src: file(dir.path(), "a", b"a", 0o755), dst: "/etc/app.conf".into(), mode: Some(0o600) },
            LayerFile { src: file(dir.path(), "c", b"c", 0o644), dst: "/usr/share/doc".into(), mode: None },
        ];
        let (_, bytes) = build(&files);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            let path = entry.path().unwrap().display().to_string();
            seen.push((path, header.entry_type().is_dir(), header.mode().unwrap()));
        }
        let expected = [
            ("etc/", true, 0o755),
            ("etc/app.conf", false, 0o600),
            ("usr/", true, 0o755),
            ("usr/local/", true, 0o755),
            ("usr/local/bin/", true, 0o755),
            ("usr/local/bin/app", false, 0o644),
            ("usr/share/", true, 0o755),
            ("usr/share/doc", false, 0o644),
        ];
        let expected: Vec<(String, bool, u32)> = expected.iter().map(|(p, d, m)| (p.to_string(), *d, *m)).collect();
        assert_eq!(seen, expected);
    }

    /// Over a base image the layer holds the files only, so the base's directories
    /// (`/tmp` 1777, say) keep their modes; the files themselves are unchanged.
    #[test]
    fn over_a_base_no_directory_entries_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            LayerFile { src: file(dir.path(), "x", b"x", 0o644), dst: "/tmp/x".into(), mode: None },
            LayerFile { src: file(dir.path(), "app", b"app", 0o755), dst: "/usr/local/bin/app".into(), mode: None },
        ];
        let paths = |parents| {
            let mut out = Vec::new();
            let (layer, _) = write(&files, parents, &mut out).unwrap();
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(out.as_slice()));
            let paths: Vec<(String, u32)> = archive
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.path().unwrap().display().to_string(), e.header().mode().unwrap())
                })
                .collect();
            (layer, paths)
        };
        let (implied, over_base) = paths(Parents::Implied);
        assert_eq!(over_base, [("tmp/x".to_string(), 0o644), ("usr/local/bin/app".to_string(), 0o755)]);
        let (listed, over_scratch) = paths(Parents::Listed);
        let names: Vec<&str> = over_scratch.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["tmp/", "tmp/x", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"]);
        assert_ne!(implied.digest, listed.digest);
        // A file that is another's directory is refused either way.
        let clash = vec![
            LayerFile { src: file(dir.path(), "a", b"a", 0o644), dst: "/opt/a".into(), mode: None },
            LayerFile { src: file(dir.path(), "b", b"b", 0o644), dst: "/opt/a/b".into(), mode: None },
        ];
        assert!(write(&clash, Parents::Implied, &mut Vec::new()).is_err());
    }

    #[test]
    fn mode_defaults_follow_the_execute_bit() {
        assert_eq!(effective_mode(None, 0o100755), 0o755);
        assert_eq!(effective_mode(None, 0o100700), 0o755);
        assert_eq!(effective_mode(None, 0o100744), 0o755);
        assert_eq!(effective_mode(None, 0o100644), 0o644);
        assert_eq!(effective_mode(None, 0o100600), 0o644);
        assert_eq!(effective_mode(Some(0o4750), 0o100644), 0o4750);
    }

    #[test]
    fn a_file_cannot_be_another_files_directory() {
        assert!(check_destinations(&["/a/b", "/a/c"]).is_ok());
        let err = check_destinations(&["/a", "/a/b"]).unwrap_err();
        assert!(err.to_string().contains("/a is both a file and a directory"), "{err}");
        let err = check_destinations(&["/a/b", "/a"]).unwrap_err();
        assert!(err.to_string().contains("/a is both"), "{err}");
    }

    #[test]
    fn the_fingerprint_is_stable() {
        assert_eq!(compressor_fingerprint(), compressor_fingerprint());
        assert_eq!(compressor_fingerprint().len(), 16);
    }
}
