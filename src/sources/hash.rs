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
                buffer.clear();
                buffer.reserve(stamp.size as usize + 1);
                file.read_to_end(&mut buffer).with_path("read", path)?;
                hasher.update(&buffer);
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

pub fn to_hex(digest: &Digest) -> String {
    blake3::Hash::from_bytes(*digest).to_hex().to_string()
}

pub fn from_hex(text: &str) -> Option<Digest> {
    blake3::Hash::from_hex(text).ok().map(|h| *h.as_bytes())
}
