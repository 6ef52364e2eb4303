//! Content digests: BLAKE3 over each tracked file, files hashed in parallel.
//!
//! Small files are read whole into a per-thread buffer (one `read` call, SIMD across
//! BLAKE3 chunks); large ones are memory-mapped and hashed with BLAKE3's own rayon
//! parallelism, so one huge file does not leave a core idle. A symlink is never
//! followed: its digest covers the link text, as git records it.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use super::stamp::{Kind, Stamp};
use crate::error::{Error, IoContext, Result};

pub type Digest = [u8; 32];

/// Files larger than this are mmapped and hashed with intra-file parallelism.
const MMAP_THRESHOLD: u64 = 8 << 20;

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
        Kind::File if stamp.size >= MMAP_THRESHOLD => {
            hasher.update_mmap_rayon(path).with_path("read", path)?;
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
