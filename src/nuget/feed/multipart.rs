//! The body of a NuGet push: `multipart/form-data` with one part, named `package`,
//! holding the file.
//!
//! Written by hand rather than with a multipart crate because a push needs exactly one
//! file part and two things the crates here do not give together: an exact
//! `Content-Length` known before sending (so the upload is length-delimited, not
//! chunked: some feeds and proxies mishandle chunked uploads), and a body that streams
//! the file from disk and can be opened again for a retry. The framing is RFC 7578's
//! and fits in a few lines: a head (boundary and part headers), the file, a tail.
//!
//! The body counts what is read from it: for progress (the file's bytes, through a
//! [`Meter`]) and for the crash tests (`CASTOFF_CRASH_AT=upload:nuget:<bytes>`, see
//! `crate::faults`).

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use super::{Meter, PROGRESS_STEP};

/// One file as a multipart body; [`Multipart::open`] gives a fresh reader per attempt.
#[derive(Debug)]
pub(crate) struct Multipart {
    boundary: String,
    head: Vec<u8>,
    tail: Vec<u8>,
    path: PathBuf,
    file_len: u64,
    meter: Option<Meter>,
}

impl Multipart {
    /// The body for `path`, sent under `filename`, with a random boundary.
    pub fn new(path: &Path, filename: &str) -> io::Result<Multipart> {
        Multipart::with_boundary(path, filename, random_boundary())
    }

    /// The body with a given boundary (tests).
    pub fn with_boundary(path: &Path, filename: &str, boundary: String) -> io::Result<Multipart> {
        let file_len = std::fs::metadata(path)?.len();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            quote(filename)
        )
        .into_bytes();
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Ok(Multipart { boundary, head, tail, path: path.to_path_buf(), file_len, meter: None })
    }

    /// Report the file's bytes to `meter` as each reader is read.
    pub fn metered(mut self, meter: Option<Meter>) -> Multipart {
        self.meter = meter;
        self
    }

    /// The request's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body's exact length: head, file, tail.
    pub fn content_length(&self) -> u64 {
        self.head.len() as u64 + self.file_len + self.tail.len() as u64
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader over the whole body, the file opened afresh (so a retry sends it again
    /// from the start). A file whose size changed since [`Multipart::new`] is an error:
    /// the declared length would be wrong.
    pub fn open(&self) -> io::Result<impl Read + Send + 'static> {
        let file = File::open(&self.path)?;
        let len = file.metadata()?.len();
        if len != self.file_len {
            return Err(io::Error::other(format!(
                "the file changed size while publishing ({} bytes, then {len})",
                self.file_len
            )));
        }
        let body = Cursor::new(self.head.clone()).chain(file.take(len)).chain(Cursor::new(self.tail.clone()));
        Ok(Counted {
            body,
            read: 0,
            head: self.head.len() as u64,
            total: self.content_length(),
            file_len: self.file_len,
            reported: None,
            meter: self.meter.clone(),
        })
    }
}

/// A body being read for sending: counts the bytes, tells the meter about the file's
/// share (at most every [`PROGRESS_STEP`] bytes, and once when the body is complete),
/// and gives the crash tests their point.
struct Counted<R> {
    body: R,
    read: u64,
    head: u64,
    total: u64,
    file_len: u64,
    /// The file bytes last reported.
    reported: Option<u64>,
    meter: Option<Meter>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.body.read(buf)?;
        self.read += n as u64;
        crate::faults::crash_after_bytes("upload:nuget", self.read);
        if let Some(meter) = &self.meter {
            let done = self.read >= self.total;
            let sent = if done { self.file_len } else { self.read.saturating_sub(self.head).min(self.file_len) };
            let due = match self.reported {
                None => done || sent >= PROGRESS_STEP,
                Some(last) => sent > last && (done || sent - last >= PROGRESS_STEP),
            };
            if due {
                self.reported = Some(sent);
                meter.report(sent, self.file_len);
            }
        }
        Ok(n)
    }
}

/// A filename for a quoted-string parameter: `"` and `\` escaped, line breaks dropped
/// (package file names never have them, but the header must stay one line).
fn quote(filename: &str) -> String {
    let mut out = String::with_capacity(filename.len());
    for c in filename.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A boundary that will not occur in the file: 128 random bits (std's randomly keyed
/// hasher; no `rand` crate needed for this).
fn random_boundary() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hex = String::from("castoff-");
    for round in 0..2u64 {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(round);
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        hex.push_str(&format!("{:016x}", hasher.finish()));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_length_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Acme.Lib.1.2.0.nupkg");
        std::fs::write(&path, b"PK\x03\x04 zip bytes \r\n--not-a-boundary").unwrap();
        let body = Multipart::with_boundary(&path, "Acme.Lib.1.2.0.nupkg", "XyZ".into()).unwrap();
        assert_eq!(body.content_type(), "multipart/form-data; boundary=XyZ");
        let mut sent = Vec::new();
        body.open().unwrap().read_to_end(&mut sent).unwrap();
        let expected =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"package\"; filename=\"Acme.Lib.1.2.0.nupkg\"\r\n\
Content-Type: application/octet-stream\r\n\r\nPK\x03\x04 zip bytes \r\n--not-a-boundary\r\n--XyZ--\r\n";
        assert_eq!(String::from_utf8_lossy(&sent), String::from_utf8_lossy(expected));
        assert_eq!(body.content_length(), sent.len() as u64);

        // A retry reads it all again.
        let mut again = Vec::new();
        body.open().unwrap().read_to_end(&mut again).unwrap();
        assert_eq!(again, sent);

        std::fs::write(&path, b"shorter").unwrap();
        let err = body.open().err().unwrap();
        assert!(err.to_string().contains("changed size"), "{err}");
    }

    #[test]
    fn boundaries_differ_and_filenames_are_quoted() {
        let (a, b) = (random_boundary(), random_boundary());
        assert_ne!(a, b);
        assert!(a.len() <= 70 && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{a}");
        assert_eq!(quote("a\"b\\c\r\nd.nupkg"), "a\\\"b\\\\cd.nupkg");
    }

    #[test]
    fn the_meter_sees_the_file_bytes_in_steps_and_at_the_end() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.nupkg");
        let len = 3 * PROGRESS_STEP + 123;
        std::fs::write(&path, vec![7u8; len as usize]).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let meter = {
            let seen = seen.clone();
            Meter::new(move |sent, total| seen.lock().unwrap().push((sent, total)))
        };
        let body = Multipart::new(&path, "big.nupkg").unwrap().metered(Some(meter));
        let mut reader = body.open().unwrap();
        let mut buffer = vec![0u8; 4096];
        let mut sent = 0;
        while let n @ 1.. = reader.read(&mut buffer).unwrap() {
            sent += n as u64;
        }
        assert_eq!(sent, body.content_length());
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.last(), Some(&(len, len)), "{seen:?}");
        assert!(seen.iter().all(|(_, total)| *total == len), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[1].0 >= w[0].0 + PROGRESS_STEP || w[1].0 == len), "{seen:?}");
        assert!((3..=4).contains(&seen.len()), "every 64 KiB and at the end: {seen:?}");

        // A retry reads (and reports) it again from the start.
        let mut again = Vec::new();
        body.open().unwrap().read_to_end(&mut again).unwrap();
        assert_eq!(again.len() as u64, body.content_length());
    }

    #[test]
    fn empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.nupkg");
        std::fs::write(&path, b"").unwrap();
        let body = Multipart::new(&path, "e.nupkg").unwrap();
        let mut sent = Vec::new();
        body.open().unwrap().read_to_end(&mut sent).unwrap();
        assert_eq!(sent.len() as u64, body.content_length());
    }
}
