//! What `lstat` says about a path, reduced to what tells us its content may have changed.

use std::fs::Metadata;

use serde::{Deserialize, Serialize};

/// Size, times, inode and kind of a file or directory, as `lstat` reports them.
/// Equal stamps mean the content is unchanged, except for the "racy" case below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Symlink,
    Dir,
    Other,
}

/// Timestamps within this much of the moment a stamp was taken are not trusted: a write
/// in the same filesystem clock tick can leave mtime unchanged (git's "racy" entries).
/// Filesystem ticks are a few milliseconds; the margin is generous.
pub const RACY_MARGIN_NS: i64 = 100_000_000;

impl Stamp {
    pub fn of(meta: &Metadata) -> Stamp {
        let kind = if meta.file_type().is_symlink() {
            Kind::Symlink
        } else if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Stamp {
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: ctime_ns(meta),
            ino: ino(meta),
            kind,
        }
    }

    /// Whether a stamp recorded at `taken_at_ns` can vouch for the content later.
    pub fn trustworthy(&self, taken_at_ns: i64) -> bool {
        self.mtime_ns.max(self.ctime_ns) + RACY_MARGIN_NS < taken_at_ns
    }
}

#[cfg(unix)]
fn mtime_ns(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

#[cfg(unix)]
fn ctime_ns(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec())
}

#[cfg(unix)]
fn ino(meta: &Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn mtime_ns(meta: &Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(not(unix))]
fn ctime_ns(meta: &Metadata) -> i64 {
    mtime_ns(meta)
}

#[cfg(not(unix))]
fn ino(_meta: &Metadata) -> u64 {
    0
}

/// Wall-clock now in nanoseconds since the epoch, the scale file timestamps use.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}
