//! What `lstat` says about a path, reduced to what tells us its content may have changed.
//! castoff targets unix (Linux, macOS): stamps use inode numbers and ctime.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

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
/// Some filesystems keep whole seconds (ext3, HFS+, many network and FUSE mounts), so
/// the margin is one such tick plus 100 ms for clock skew. A stamp that recent is
/// re-hashed on the next check and trusted once it is older: the cache heals itself.
pub const RACY_MARGIN_NS: i64 = 1_100_000_000;

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
        Stamp { size: meta.len(), mtime_ns: mtime_ns(meta), ctime_ns: ctime_ns(meta), ino: ino(meta), kind }
    }

    /// From a raw `stat` (as `statat` relative to a directory fd returns it).
    /// The casts are needed: the field types differ between architectures.
    #[allow(clippy::unnecessary_cast)]
    pub fn from_stat(stat: &rustix::fs::Stat) -> Stamp {
        use rustix::fs::FileType;
        let kind = match FileType::from_raw_mode(stat.st_mode as _) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        let ns = |secs: i64, nanos: i64| secs.saturating_mul(1_000_000_000).saturating_add(nanos);
        Stamp {
            size: stat.st_size as u64,
            mtime_ns: ns(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime_ns: ns(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
            ino: stat.st_ino as u64,
            kind,
        }
    }

    /// Whether a stamp recorded at `taken_at_ns` can vouch for the content later.
    pub fn trustworthy(&self, taken_at_ns: i64) -> bool {
        self.mtime_ns.max(self.ctime_ns) + RACY_MARGIN_NS < taken_at_ns
    }
}

fn mtime_ns(meta: &Metadata) -> i64 {
    meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec())
}

fn ctime_ns(meta: &Metadata) -> i64 {
    meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec())
}

fn ino(meta: &Metadata) -> u64 {
    meta.ino()
}

/// Wall-clock now in nanoseconds since the epoch, the scale file timestamps use.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp_at(mtime_ns: i64) -> Stamp {
        Stamp { size: 1, mtime_ns, ctime_ns: mtime_ns, ino: 1, kind: Kind::File }
    }

    /// On a filesystem with one-second timestamps, a write later in the same second keeps
    /// the mtime: a stamp is trusted only once its second (and some skew) has passed.
    #[test]
    fn racy_margin_covers_one_second_timestamps() {
        let second = 1_700_000_000 * 1_000_000_000_i64;
        let stamp = stamp_at(second);
        assert!(!stamp.trustworthy(second + 999_000_000), "inside the same one-second tick");
        assert!(!stamp.trustworthy(second + 1_050_000_000), "within skew of the tick's end");
        assert!(stamp.trustworthy(second + 1_200_000_000));
    }
}
