//! Content digests: BLAKE3 over each tracked file, files hashed in parallel.
//!
//! Small files are read whole into a per-thread buffer (one `read` call, SIMD across
//! BLAKE3 chunks); large ones are read in 16 MiB chunks, each hashed with BLAKE3's own
//! rayon parallelism, so one huge file does not leave a core idle. Large files are not
//! memory-mapped: a file truncated while mapped kills the process with SIGBUS, and a
//! source file being rewritten while castoff checks it is ordinary. A symlink is never
//! followed: its digest covers the link text, as git records it.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use super::stamp::{Kind, Stamp};
use crate::error::{Error, IoContext, Result};

pub type Digest = [u8; 32];

/// Files larger than this are hashed in chunks with intra-file parallelism.
const LARGE_FILE: u64 = 8 << 20;

/// How much of a large file is read (and hashed across the cores) at a time.
const CHUNK: usize = 16 << 20;

thread_local! {
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Digest of one file or symlink.
pub fn hash_one(path: &Path, stamp: &Stamp) -> Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    match stamp.kind {
        Kind::Symlink => {
            let target = fs::read_link(path).with_path("read symlink", path)?;
            hasher.update(b"symlink\0");
            hasher.update(target.as_os_str().as_encoded_bytes());
        }
        Kind::File if stamp.size >= LARGE_FILE => {
            let mut file = File::open(path).with_path("open", path)?;
            hash_in_chunks(&mut file, &mut hasher).with_path("read", path)?;
        }
        Kind::File => {
            let mut file = File::open(path).with_path("open", path)?;
            BUFFER.with(|buffer| -> Result<()> {
                let mut buffer = buffer.borrow_mut();
                let filled = read_whole(&mut file, &mut buffer, stamp.size as usize).with_path("read", path)?;
                hasher.update(&buffer[..filled]);
                // Keep big buffers from pinning memory on a thread forever.
                if buffer.capacity() > (16 << 20) {
                    *buffer = Vec::new();
                }
                Ok(())
            })?;
        }
        Kind::Dir | Kind::Other => {
            return Err(Error::io(
                "hash",
                path,
                std::io::Error::other("not a regular file or symlink (device, socket or fifo)"),
            ))
        }
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Hash a large file chunk by chunk, each chunk across the cores. A file that shrinks
/// or grows meanwhile is hashed as read; its changed stamp gets it re-hashed next time.
fn hash_in_chunks(file: &mut File, hasher: &mut blake3::Hasher) -> std::io::Result<()> {
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < chunk.len() {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        hasher.update_rayon(&chunk[..filled]);
        if filled < chunk.len() {
            return Ok(());
        }
    }
}

/// Read a file whose size we already know into `buffer`, returning the bytes read.
/// Unlike `read_to_end`, this costs no extra `statx`/`lseek` per file to size the
/// buffer; a file that grew since its stamp is still read to its end.
fn read_whole(file: &mut File, buffer: &mut Vec<u8>, expected: usize) -> std::io::Result<usize> {
    if buffer.len() < expected + 1 {
        buffer.resize(expected + 1, 0);
    }
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            buffer.resize(buffer.len() * 2, 0);
        }
        match file.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

pub fn to_hex(digest: &Digest) -> String {
    blake3::Hash::from_bytes(*digest).to_hex().to_string()
}

pub fn from_hex(text: &str) -> Option<Digest> {
    blake3::Hash::from_hex(text).ok().map(|h| *h.as_bytes())
}

/// Serde for a digest as one byte string: serde's default for `[u8; 32]` is 32
/// separate elements, which made loading a 100,000-entry stat cache several times slower.
pub mod digest_bytes {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Digest;

    pub fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(digest)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Digest;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("32 bytes")
            }
            fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Digest, E> {
                bytes.try_into().map_err(|_| E::invalid_length(bytes.len(), &self))
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_stamp(path: &Path) -> Stamp {
        Stamp::of(&fs::symlink_metadata(path).unwrap())
    }

    #[test]
    fn large_files_hash_like_one_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let bytes: Vec<u8> = (0..(CHUNK + LARGE_FILE as usize + 12345)).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(&path, &bytes).unwrap();
        let digest = hash_one(&path, &file_stamp(&path)).unwrap();
        assert_eq!(digest, *blake3::hash(&bytes).as_bytes());
    }

    /// A large file truncated and rewritten while it is being hashed is hashed as read
    /// (or reported), never a crash: a memory-mapped file would raise SIGBUS here.
    #[test]
    fn truncation_while_hashing_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let size = 4 * LARGE_FILE as usize;
        fs::write(&path, vec![7u8; size]).unwrap();
        let stamp = file_stamp(&path);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let block = vec![9u8; 1 << 20];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                    file.set_len(0).unwrap();
                    for _ in 0..(size >> 20) {
                        file.write_all(&block).unwrap();
                    }
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            let _ = hash_one(&path, &stamp);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }
}
