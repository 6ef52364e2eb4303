//! The tracked files of a scan, stored column-wise: one string of paths, their end
//! offsets, and fixed-width records (stamp + digest).
//!
//! Checking an unchanged tree of 100,000 files loads this from the stat cache on every
//! run. As a `Vec` of structs with a `String` each it cost 100,000 allocations and a
//! varint decode per field (about a fifth of the whole check); column-wise, loading is
//! three copies, and the records are plain old data (bytemuck) that serde writes as one
//! byte string. The cache is private to one machine, so native endianness is fine.

use std::ops::Range;

use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hash::Digest;
use super::stamp::{Kind, Stamp};

/// One file's stamp and digest, fixed width.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
struct Record {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    kind: u64,
    digest: [u8; 32],
}

impl Record {
    fn stamp(&self) -> Stamp {
        let kind = match self.kind {
            0 => Kind::File,
            1 => Kind::Symlink,
            2 => Kind::Dir,
            _ => Kind::Other,
        };
        Stamp { size: self.size, mtime_ns: self.mtime_ns, ctime_ns: self.ctime_ns, ino: self.ino, kind }
    }

    fn set_stamp(&mut self, stamp: &Stamp) {
        self.size = stamp.size;
        self.mtime_ns = stamp.mtime_ns;
        self.ctime_ns = stamp.ctime_ns;
        self.ino = stamp.ino;
        self.kind = match stamp.kind {
            Kind::File => 0,
            Kind::Symlink => 1,
            Kind::Dir => 2,
            Kind::Other => 3,
        };
    }
}

/// Tracked files sorted by path, each with its stamp and content digest.
#[derive(Debug, Clone, Default)]
pub struct TrackedFiles {
    paths: String,
    ends: Vec<u32>,
    records: Vec<Record>,
}

impl TrackedFiles {
    pub fn with_capacity(files: usize) -> TrackedFiles {
        TrackedFiles { paths: String::new(), ends: Vec::with_capacity(files), records: Vec::with_capacity(files) }
    }

    /// Append a file; callers push in path order.
    pub fn push(&mut self, path: &str, stamp: &Stamp, digest: Digest) {
        self.paths.push_str(path);
        self.ends.push(self.paths.len() as u32);
        let mut record = Record::zeroed();
        record.set_stamp(stamp);
        record.digest = digest;
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn span(&self, index: usize) -> Range<usize> {
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        start..self.ends[index] as usize
    }

    pub fn path(&self, index: usize) -> &str {
        &self.paths[self.span(index)]
    }

    pub fn stamp(&self, index: usize) -> Stamp {
        self.records[index].stamp()
    }

    pub fn digest(&self, index: usize) -> &Digest {
        &self.records[index].digest
    }

    pub fn set_stamp(&mut self, index: usize, stamp: &Stamp) {
        self.records[index].set_stamp(stamp);
    }

    /// `(path, digest)` of every file, in path order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Digest)> {
        (0..self.len()).map(|i| (self.path(i), self.digest(i)))
    }

    /// Index of `path`, by binary search.
    pub fn find(&self, path: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = (low + high) / 2;
            match self.path(mid).cmp(path) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Recompute, in parallel, the digest of every file marked in `stale`.
    pub fn refresh_digests<E: Send>(
        &mut self,
        stale: &[bool],
        digest_of: impl Fn(&str, &Stamp) -> Result<Digest, E> + Sync,
    ) -> Result<(), E> {
        let (paths, ends) = (&self.paths, &self.ends);
        self.records.par_iter_mut().zip(stale.par_iter()).enumerate().try_for_each(|(index, (record, stale))| {
            if *stale {
                let start = if index == 0 { 0 } else { ends[index - 1] as usize };
                record.digest = digest_of(&paths[start..ends[index] as usize], &record.stamp())?;
            }
            Ok(())
        })
    }

    /// The lengths agree and every offset is in order and on a character boundary, so
    /// no accessor can panic on a loaded cache.
    fn is_consistent(&self) -> bool {
        let mut previous = 0usize;
        self.ends.len() == self.records.len()
            && self.ends.iter().all(|&end| {
                let end = end as usize;
                let ok = end >= previous && end <= self.paths.len() && self.paths.is_char_boundary(end);
                previous = end;
                ok
            })
    }
}

/// Serialised as (paths, ends as bytes, records as bytes).
impl Serialize for TrackedFiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&self.paths)?;
        tuple.serialize_element(&PodBytes(&self.ends))?;
        tuple.serialize_element(&PodBytes(&self.records))?;
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for TrackedFiles {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Columns;
        impl<'de> Visitor<'de> for Columns {
            type Value = TrackedFiles;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tracked files as (paths, ends, records)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TrackedFiles, A::Error> {
                let missing = || de::Error::custom("truncated tracked files");
                let paths: String = seq.next_element()?.ok_or_else(missing)?;
                let ends: PodVec<u32> = seq.next_element()?.ok_or_else(missing)?;
                let records: PodVec<Record> = seq.next_element()?.ok_or_else(missing)?;
                let files = TrackedFiles { paths, ends: ends.0, records: records.0 };
                files.is_consistent().then_some(files).ok_or_else(|| de::Error::custom("inconsistent tracked files"))
            }
        }
        deserializer.deserialize_tuple(3, Columns)
    }
}

/// A slice of plain old data written as one byte string.
struct PodBytes<'a, T: Pod>(&'a [T]);

impl<T: Pod> Serialize for PodBytes<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytemuck::cast_slice(self.0))
    }
}

/// A byte string read back into an aligned `Vec` of plain old data.
struct PodVec<T: Pod>(Vec<T>);

impl<'de, T: Pod> Deserialize<'de> for PodVec<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes<T>(std::marker::PhantomData<T>);
        impl<T: Pod> Visitor<'_> for Bytes<T> {
            type Value = PodVec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a byte string of {}-byte records", std::mem::size_of::<T>())
            }
            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<PodVec<T>, E> {
                if !bytes.len().is_multiple_of(std::mem::size_of::<T>()) {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(PodVec(bytemuck::pod_collect_to_vec(bytes)))
            }
        }
        deserializer.deserialize_bytes(Bytes(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(n: u64) -> Stamp {
        Stamp { size: n, mtime_ns: n as i64 * 7, ctime_ns: -1, ino: n + 1, kind: Kind::Symlink }
    }

    #[test]
    fn round_trips_through_postcard_and_finds_paths() {
        let mut files = TrackedFiles::with_capacity(3);
        for (i, path) in ["a.txt", "dir/b", "dir/é"].iter().enumerate() {
            files.push(path, &stamp(i as u64), [i as u8; 32]);
        }
        let bytes = postcard::to_stdvec(&files).unwrap();
        let back: TrackedFiles = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back.path(2), "dir/é");
        assert_eq!(back.stamp(1), stamp(1));
        assert_eq!(back.digest(2), &[2; 32]);
        assert_eq!(back.find("dir/b"), Some(1));
        assert_eq!(back.find("dir/c"), None);
    }

    #[test]
    fn rejects_inconsistent_columns() {
        let mut files = TrackedFiles::with_capacity(1);
        files.push("é", &stamp(0), [0; 32]);
        files.ends[0] = 1; // inside the two-byte character
        let bytes = postcard::to_stdvec(&files).unwrap();
        assert!(postcard::from_bytes::<TrackedFiles>(&bytes).is_err());
    }
}
