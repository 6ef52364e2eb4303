//! A deterministic ZIP writer for packages, written here rather than taken from the
//! `zip` crate (which castoff uses to *read* packages) for two reasons:
//!
//! - **Bytes under castoff's control.** Every field is fixed: one timestamp
//!   ([`DOS_DATE`], 2000-01-01 00:00), "made by" MS-DOS with no attributes, no extra
//!   fields, no data descriptors, no ZIP64, deflate at [`LEVEL`]. The same entries give
//!   the same bytes, whatever the crate's defaults do next release.
//! - **Speed on large files.** An entry is deflated in 1 MiB chunks on all cores (as
//!   pigz does): each chunk is primed with the 32 KiB before it and ends on a sync
//!   flush, so the chunks concatenate into one ordinary deflate stream. Chunk
//!   boundaries depend only on the data, never on the thread count, so the output does
//!   not either. Memory stays at a few chunks per core however large the file.
//!
//! The entry's CRC and sizes are known only after its data is written; the writer seeks
//! back to fill them into the local header (the output is a file), so readers that
//! stream local headers (and NuGet's signature verification, which insists on them)
//! see complete headers.

use std::io::{self, Read, Seek, SeekFrom, Write};

use flate2::{Compress, Compression, FlushCompress, Status};
use rayon::prelude::*;

/// DOS date of every entry: 2000-01-01. Not the DOS epoch (1980-01-01): .NET converts
/// entry times between time zones and throws for anything that lands before 1980
/// (NuGet/Home#7001), so the epoch itself is a trap.
pub const DOS_DATE: u16 = (20 << 9) | (1 << 5) | 1;
/// DOS time of every entry: 00:00:00.
pub const DOS_TIME: u16 = 0;
/// Deflate level 4, not zlib's default 6 (what `nuget pack` uses): measured on .NET
/// assemblies with zlib-rs, 4 is about twice as fast as 6 for about 1% more bytes, and
/// packing big packages is compression-bound.
pub const LEVEL: u32 = 4;

const CHUNK: usize = 1 << 20;
const WINDOW: usize = 32 * 1024;
const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
/// 2.0: deflate.
const VERSION: u16 = 20;
const DEFLATE: u16 = 8;

/// What went wrong while writing an entry, kept apart so the caller can name the file
/// read or the package written.
#[derive(Debug)]
pub enum ZipError {
    /// Reading the entry's source failed.
    Source(io::Error),
    /// Writing the archive failed.
    Sink(io::Error),
    /// The source held a different number of bytes than announced (changed meanwhile).
    Changed { expected: u64 },
    /// Past what a ZIP without ZIP64 can hold.
    TooLarge(&'static str),
}

struct Central {
    name: String,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

/// Writes entries, in the order given, to `out`.
pub struct ZipOut<W: Write + Seek> {
    out: W,
    offset: u64,
    entries: Vec<Central>,
    level: Compression,
    /// Chunks deflated at once: two per thread keeps every core busy while bounding
    /// memory.
    batch: usize,
}

impl<W: Write + Seek> ZipOut<W> {
    pub fn new(out: W) -> Self {
        let batch = (rayon::current_num_threads() * 2).clamp(2, 16);
        ZipOut { out, offset: 0, entries: Vec::new(), level: Compression::new(LEVEL), batch }
    }

    /// Add an entry named `name` (ASCII, already escaped) holding exactly `size` bytes
    /// read from `source`.
    pub fn add(&mut self, name: &str, mut source: impl Read, size: u64) -> Result<(), ZipError> {
        if self.entries.len() >= usize::from(u16::MAX) {
            return Err(ZipError::TooLarge("more than 65535 files"));
        }
        if size > u64::from(u32::MAX) {
            return Err(ZipError::TooLarge("a file of 4 GiB or more"));
        }
        let offset = u32::try_from(self.offset).map_err(|_| ZipError::TooLarge("a package of 4 GiB or more"))?;
        let mut crc = crc32fast::Hasher::new();
        let mut compressed: u64 = 0;
        let mut remaining = size;
        let mut window: Vec<u8> = Vec::new();
        let mut first = true;
        loop {
            let mut batch = Vec::with_capacity(self.batch);
            while batch.len() < self.batch && remaining > 0 {
                let n = remaining.min(CHUNK as u64) as usize;
                let mut chunk = vec![0; n];
                source.read_exact(&mut chunk).map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => ZipError::Changed { expected: size },
                    _ => ZipError::Source(e),
                })?;
                remaining -= n as u64;
                batch.push(chunk);
            }
            let last = remaining == 0;
            if last {
                // A file that grew since it was measured would be cut short silently.
                let mut probe = [0u8; 1];
                if source.read(&mut probe).map_err(ZipError::Source)? != 0 {
                    return Err(ZipError::Changed { expected: size });
                }
            }
            if batch.is_empty() {
                batch.push(Vec::new());
            }
            let count = batch.len();
            let level = self.level;
            let deflated = (0..count)
                .into_par_iter()
                .map(|i| {
                    let dictionary: &[u8] = match i {
                        0 => &window,
                        _ => tail(&batch[i - 1]),
                    };
                    deflate(level, dictionary, &batch[i], last && i == count - 1)
                })
                .collect::<io::Result<Vec<Vec<u8>>>>()
                .map_err(ZipError::Sink)?;
            for chunk in &batch {
                crc.update(chunk);
            }
            let batch_compressed: u64 = deflated.iter().map(|d| d.len() as u64).sum();
            if first {
                // Known already when the whole entry fits in one batch (small files):
                // then the header is right the first time and nothing seeks.
                let known = last.then(|| (crc.clone().finalize(), batch_compressed));
                let (header_crc, header_compressed) = known.unwrap_or((0, 0));
                let header_compressed = u32::try_from(header_compressed).map_err(|_| too_large_entry())?;
                self.local_header(name, header_crc, header_compressed, size as u32)?;
            }
            for chunk in &deflated {
                self.write(chunk)?;
            }
            compressed += batch_compressed;
            if !last {
                window = tail(&batch[count - 1]).to_vec();
            }
            if last {
                break;
            }
            first = false;
        }
        let crc = crc.finalize();
        let compressed = u32::try_from(compressed).map_err(|_| too_large_entry())?;
        if !first {
            self.patch_header(offset, crc, compressed, size as u32)?;
        }
        self.entries.push(Central { name: name.to_string(), crc, compressed, size: size as u32, offset });
        Ok(())
    }

    /// Add an entry from bytes in memory.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ZipError> {
        self.add(name, data, data.len() as u64)
    }

    /// Write the central directory and the end record; hand back the output.
    pub fn finish(mut self) -> Result<W, ZipError> {
        let start = u32::try_from(self.offset).map_err(|_| ZipError::TooLarge("a package of 4 GiB or more"))?;
        let entries = std::mem::take(&mut self.entries);
        for entry in &entries {
            let mut header = Vec::with_capacity(46 + entry.name.len());
            header.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
            header.extend_from_slice(&VERSION.to_le_bytes()); // made by: MS-DOS, 2.0
            header.extend_from_slice(&VERSION.to_le_bytes()); // needed to extract
            header.extend_from_slice(&0u16.to_le_bytes()); // flags
            header.extend_from_slice(&DEFLATE.to_le_bytes());
            header.extend_from_slice(&DOS_TIME.to_le_bytes());
            header.extend_from_slice(&DOS_DATE.to_le_bytes());
            header.extend_from_slice(&entry.crc.to_le_bytes());
            header.extend_from_slice(&entry.compressed.to_le_bytes());
            header.extend_from_slice(&entry.size.to_le_bytes());
            header.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
            header.extend_from_slice(&0u16.to_le_bytes()); // extra
            header.extend_from_slice(&0u16.to_le_bytes()); // comment
            header.extend_from_slice(&0u16.to_le_bytes()); // disk
            header.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            header.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            header.extend_from_slice(&entry.offset.to_le_bytes());
            header.extend_from_slice(entry.name.as_bytes());
            self.write(&header)?;
        }
        let size = u32::try_from(self.offset - u64::from(start)).map_err(|_| too_large_entry())?;
        u32::try_from(self.offset).map_err(|_| ZipError::TooLarge("a package of 4 GiB or more"))?;
        let count = entries.len() as u16;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&END_OF_CENTRAL.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // this disk
        end.extend_from_slice(&0u16.to_le_bytes()); // disk with the central directory
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&size.to_le_bytes());
        end.extend_from_slice(&start.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.write(&end)?;
        self.out.flush().map_err(ZipError::Sink)?;
        Ok(self.out)
    }

    fn local_header(&mut self, name: &str, crc: u32, compressed: u32, size: u32) -> Result<(), ZipError> {
        let name_len = u16::try_from(name.len()).map_err(|_| ZipError::TooLarge("a path longer than 65535 bytes"))?;
        let mut header = Vec::with_capacity(30 + name.len());
        header.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // flags
        header.extend_from_slice(&DEFLATE.to_le_bytes());
        header.extend_from_slice(&DOS_TIME.to_le_bytes());
        header.extend_from_slice(&DOS_DATE.to_le_bytes());
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&compressed.to_le_bytes());
        header.extend_from_slice(&size.to_le_bytes());
        header.extend_from_slice(&name_len.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // extra
        header.extend_from_slice(name.as_bytes());
        self.write(&header)
    }

    /// Fill in CRC and sizes (at offset 14 of the local header) once the data is out.
    fn patch_header(&mut self, offset: u32, crc: u32, compressed: u32, size: u32) -> Result<(), ZipError> {
        let mut fields = [0u8; 12];
        fields[..4].copy_from_slice(&crc.to_le_bytes());
        fields[4..8].copy_from_slice(&compressed.to_le_bytes());
        fields[8..].copy_from_slice(&size.to_le_bytes());
        self.out.seek(SeekFrom::Start(u64::from(offset) + 14)).map_err(ZipError::Sink)?;
        self.out.write_all(&fields).map_err(ZipError::Sink)?;
        self.out.seek(SeekFrom::Start(self.offset)).map_err(ZipError::Sink)?;
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ZipError> {
        self.out.write_all(bytes).map_err(ZipError::Sink)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }
}

fn too_large_entry() -> ZipError {
    ZipError::TooLarge("a file that compresses to 4 GiB or more")
}

/// The last [`WINDOW`] bytes of a chunk: the dictionary for the next one.
fn tail(chunk: &[u8]) -> &[u8] {
    &chunk[chunk.len().saturating_sub(WINDOW)..]
}

/// Raw-deflate one chunk primed with `dictionary`; a sync flush ends it so the next
/// chunk's bits start on a byte boundary, or, for the entry's last chunk, the final
/// block does.
fn deflate(level: Compression, dictionary: &[u8], data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(level, false);
    if !dictionary.is_empty() {
        compress.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    let mut out = Vec::with_capacity(data.len() / 2 + 4096);
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = compress.total_in() as usize;
        let status = compress.compress_vec(&data[consumed..], &mut out, flush).map_err(io::Error::other)?;
        let all_in = compress.total_in() as usize == data.len();
        match status {
            Status::StreamEnd => break,
            // A flush is complete when it returns with output space to spare.
            _ if !last && all_in && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn archive(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut zip = ZipOut::new(Cursor::new(Vec::new()));
        // Small batches, so a few chunks already take the seek-back path.
        zip.batch = 2;
        for (name, data) in entries {
            zip.add_bytes(name, data).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    /// Pseudo-random but compressible bytes, the same every run.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 7 < 4 {
                    b"MZ-assembly-"[i % 12]
                } else {
                    (state >> 59) as u8
                }
            })
            .collect()
    }

    #[test]
    fn the_zip_crate_reads_what_we_write() {
        // Empty, small, exactly one chunk, and several batches (to cross the seek path).
        let big = sample(CHUNK * 5 + 12345, 1);
        let entries = vec![
            ("empty.txt", Vec::new()),
            ("small.txt", b"hello, hello, hello".to_vec()),
            ("lib/one-chunk.dll", sample(CHUNK, 2)),
            ("lib/big.dll", big.clone()),
        ];
        let bytes = archive(&entries);
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        assert_eq!(zip.len(), entries.len());
        for (i, (name, data)) in entries.iter().enumerate() {
            let mut file = zip.by_index(i).unwrap();
            assert_eq!(file.name().unwrap(), *name);
            assert_eq!(file.compression(), zip::CompressionMethod::Deflated);
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert!(read == *data, "{name} differs");
        }
        // The local headers are complete (no data descriptors): a streaming reader
        // sees the right sizes.
        let mut cursor = Cursor::new(&bytes);
        while let Some(mut file) = zip::read::read_zipfile_from_stream(&mut cursor).unwrap() {
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert_eq!(read.len() as u64, file.size());
        }
        assert!(bytes.len() < big.len(), "compressible data was not compressed");
    }

    #[test]
    fn same_entries_same_bytes() {
        let entries = vec![("a", sample(CHUNK * 3 + 1, 3)), ("b", sample(100, 4))];
        assert_eq!(archive(&entries), archive(&entries));
        // The thread count does not change the bytes.
        let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(single.install(|| archive(&entries)), archive(&entries));
    }

    #[test]
    fn a_source_that_changed_is_an_error() {
        let mut zip = ZipOut::new(Cursor::new(Vec::new()));
        assert!(matches!(zip.add("short", &b"abc"[..], 4), Err(ZipError::Changed { expected: 4 })));
        let mut zip = ZipOut::new(Cursor::new(Vec::new()));
        assert!(matches!(zip.add("long", &b"abcde"[..], 4), Err(ZipError::Changed { expected: 4 })));
    }
}
