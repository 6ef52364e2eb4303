//! `.castoff/sources.lock`: the committed record of what the current version was cut
//! from, so CI and every clone agree on whether a bump is due.
//!
//! Plain text, one line per tracked file in b3sum's `<hex>  <path>` form, sorted by path,
//! so a review shows exactly which sources a release changed. Header lines carry the
//! version the baseline belongs to, the version the bump that wrote it started from
//! (absent when no bump wrote it: `init`, a first baseline, a VERSION raised by hand;
//! and in files from castoff versions before it existed), and a tree digest over the
//! entry lines, which catches hand edits and half-resolved merges.
//!
//! ```text
//! # castoff source baseline: commit this file; `castoff bump` rewrites it.
//! version 0.1.10
//! from 0.1.9
//! tree 5b1e…
//! 9f0c…  app.py
//! 77ab…  requirements.txt
//! ```

use std::fs;
use std::io;
use std::path::Path;

use semver::Version;

use super::hash::{from_hex, to_hex, Digest};
use crate::error::{Error, Location, Result};

pub const BASELINE_FILE: &str = ".castoff/sources.lock";
const HEADER: &str = "# castoff source baseline: commit this file; `castoff bump` rewrites it.";

/// The parsed baseline: which version it belongs to and the digest of every tracked file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub version: Version,
    /// The version the bump that recorded this baseline started from. VERSION still
    /// holding it while the baseline is newer means that bump was interrupted.
    pub from: Option<Version>,
    /// Sorted by path.
    pub entries: Vec<(String, Digest)>,
}

impl Baseline {
    /// Read the baseline, or `None` when there is none yet.
    pub fn read(path: &Path, shown: &Path) -> Result<Option<Baseline>> {
        let text = match fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| corrupt(shown, 1, "it is not UTF-8 text"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        Self::parse(&text, shown).map(Some)
    }

    pub fn parse(text: &str, shown: &Path) -> Result<Baseline> {
        let mut version = None;
        let mut from = None;
        let mut tree = None;
        let mut entries: Vec<(String, Digest)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with("<<<<<<<") || line.starts_with("=======") || line.starts_with(">>>>>>>") {
                return Err(corrupt(shown, number, "it has an unresolved merge conflict"));
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(v) = line.strip_prefix("version ") {
                let parsed = Version::parse(v.trim())
                    .map_err(|e| corrupt(shown, number, &format!("`{v}` is not a version: {e}")))?;
                version = Some(parsed);
            } else if let Some(v) = line.strip_prefix("from ") {
                let parsed = Version::parse(v.trim())
                    .map_err(|e| corrupt(shown, number, &format!("`{v}` is not a version: {e}")))?;
                from = Some(parsed);
            } else if let Some(t) = line.strip_prefix("tree ") {
                tree = Some(
                    from_hex(t.trim()).ok_or_else(|| corrupt(shown, number, "the tree digest is not 64 hex digits"))?,
                );
            } else if let Some((hex, path)) = line.split_once("  ") {
                let digest = from_hex(hex).ok_or_else(|| corrupt(shown, number, "the digest is not 64 hex digits"))?;
                if let Some((previous, _)) = entries.last() {
                    if previous.as_str() >= path {
                        return Err(corrupt(shown, number, &format!("`{path}` is out of order or repeated")));
                    }
                }
                entries.push((path.to_string(), digest));
            } else {
                return Err(corrupt(shown, number, "the line is not `<digest>  <path>`"));
            }
        }
        let version = version.ok_or_else(|| corrupt(shown, 1, "the `version` line is missing"))?;
        let tree = tree.ok_or_else(|| corrupt(shown, 1, "the `tree` line is missing"))?;
        if tree != tree_digest(&entries) {
            return Err(corrupt(shown, 1, "its tree digest does not match its entries (edited by hand?)"));
        }
        Ok(Baseline { version, from, entries })
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(100 + self.entries.len() * 100);
        out.push_str(HEADER);
        out.push('\n');
        out.push_str(&format!("version {}\n", self.version));
        if let Some(from) = &self.from {
            out.push_str(&format!("from {from}\n"));
        }
        out.push_str(&format!("tree {}\n", to_hex(&tree_digest(&self.entries))));
        for (path, digest) in &self.entries {
            out.push_str(&to_hex(digest));
            out.push_str("  ");
            out.push_str(path);
            out.push('\n');
        }
        out
    }
}

/// BLAKE3 over the entry lines exactly as written: one digest for the whole tree.
pub fn tree_digest(entries: &[(String, Digest)]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    for (path, digest) in entries {
        hasher.update(to_hex(digest).as_bytes());
        hasher.update(b"  ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
    }
    *hasher.finalize().as_bytes()
}

fn corrupt(shown: &Path, line: usize, problem: &str) -> Error {
    Error::invalid(
        Location::file(shown).with_line(line),
        format!("the source baseline is damaged: {problem}"),
        format!(
            "restore it with `git checkout -- {0}`, or delete {0} so every tracked source counts as new",
            shown.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_edits() {
        let baseline = Baseline {
            version: Version::new(0, 1, 9),
            from: None,
            entries: vec![("app.py".into(), [1; 32]), ("dir/with space.txt".into(), [2; 32])],
        };
        let text = baseline.render();
        let shown = Path::new(BASELINE_FILE);
        assert_eq!(Baseline::parse(&text, shown).unwrap(), baseline);
        let edited = text.replace(&to_hex(&[1; 32]), &to_hex(&[3; 32]));
        let err = Baseline::parse(&edited, shown).unwrap_err();
        assert!(err.to_string().contains("tree digest"), "{err}");
        let conflicted = format!("{text}<<<<<<< HEAD\n");
        assert!(Baseline::parse(&conflicted, shown).unwrap_err().to_string().contains("merge conflict"));
    }
}

#[cfg(test)]
mod from_tests {
    use super::*;

    #[test]
    fn records_the_version_bumped_from_and_reads_files_without_it() {
        let shown = Path::new(BASELINE_FILE);
        let bumped = Baseline {
            version: Version::new(1, 3, 0),
            from: Some(Version::new(1, 2, 4)),
            entries: vec![("app.py".into(), [1; 32])],
        };
        let text = bumped.render();
        assert!(text.contains("\nfrom 1.2.4\n"), "{text}");
        assert_eq!(Baseline::parse(&text, shown).unwrap(), bumped);
        let old = text.replace("from 1.2.4\n", "");
        assert_eq!(Baseline::parse(&old, shown).unwrap().from, None);
    }

    /// A name with a carriage return would not read back: `lines()` drops it.
    #[test]
    fn carriage_return_names_do_not_round_trip() {
        let baseline =
            Baseline { version: Version::new(1, 0, 0), from: None, entries: vec![("bad\r".into(), [1; 32])] };
        let read = Baseline::parse(&baseline.render(), Path::new(BASELINE_FILE));
        assert!(read.map_or(true, |b| b != baseline));
    }
}
