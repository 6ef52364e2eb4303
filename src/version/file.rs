//! The VERSION file: strict parsing, format-preserving atomic writes.
//!
//! The file holds one semver version. A UTF-8 BOM, CRLF or LF line endings and
//! surrounding whitespace are tolerated; the BOM and the line ending are written back as
//! they were found, so a bump changes one line of a diff and nothing else.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use semver::Version;

use crate::error::{Error, Location, Result};
use crate::fsutil;

const BOM: &str = "\u{feff}";

/// How the file ended its version line, so writes can keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    None,
    Lf,
    CrLf,
}

/// A parsed VERSION file together with the formatting it had on disk.
#[derive(Debug, Clone)]
pub struct VersionFile {
    pub path: PathBuf,
    pub version: Version,
    pub bom: bool,
    pub line_ending: LineEnding,
}

impl VersionFile {
    /// Read and validate `path`. `shown` is the path as the user should see it in errors.
    pub fn read(path: &Path, shown: &Path) -> Result<VersionFile> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::invalid(
                    Location::file(shown),
                    "the version file does not exist",
                    format!("create it with `castoff init`, or write a version such as 0.1.0 into {}", shown.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::IsADirectory || path.is_dir() => {
                return Err(Error::invalid(
                    Location::file(shown),
                    "the version file is a directory",
                    format!("replace {} with a file holding one version, such as 0.1.0", shown.display()),
                ))
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        let (version, bom, line_ending) = parse(&bytes)
            .map_err(|(problem, hint)| Error::invalid(Location::file(shown).with_line(1), problem, hint))?;
        Ok(VersionFile { path: path.to_path_buf(), version, bom, line_ending })
    }

    /// The bytes this file would hold with `version`, in its original style.
    pub fn render(&self, version: &Version) -> String {
        let ending = match self.line_ending {
            LineEnding::None => "",
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        };
        format!("{}{version}{ending}", if self.bom { BOM } else { "" })
    }

    /// Atomically replace the file's version, keeping BOM and line ending.
    pub fn write(&mut self, version: &Version) -> Result<()> {
        // VERSION may be a symlink inside the project (checked when the project opened).
        fsutil::write_atomic_through_symlink(&self.path, self.render(version).as_bytes())?;
        self.version = version.clone();
        Ok(())
    }

    /// A new VERSION file in the conventional style (no BOM, LF).
    pub fn create(path: &Path, version: &Version) -> Result<VersionFile> {
        let mut file =
            VersionFile { path: path.to_path_buf(), version: version.clone(), bom: false, line_ending: LineEnding::Lf };
        file.write(version)?;
        Ok(file)
    }
}

/// Parse VERSION bytes into (version, had BOM, line ending), or (problem, hint).
pub fn parse(bytes: &[u8]) -> Result<(Version, bool, LineEnding), (String, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        (
            format!("the version file is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()),
            "write the version as plain text, e.g. 0.1.0".to_string(),
        )
    })?;
    let (bom, text) = match text.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let line_ending = if text.contains("\r\n") {
        LineEnding::CrLf
    } else if text.contains('\n') {
        LineEnding::Lf
    } else {
        LineEnding::None
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(("the version file is empty".into(), "write a version such as 0.1.0 into it".into()));
    }
    if trimmed.lines().count() > 1 {
        return Err((
            "the version file has more than one line".into(),
            "keep only the version, e.g. 1.2.3, on a single line".into(),
        ));
    }
    parse_version(trimmed).map(|version| (version, bom, line_ending))
}

/// Parse one version string, explaining the common near-misses.
pub fn parse_version(text: &str) -> Result<Version, (String, String)> {
    // Errors quote the text; a runaway line is described, not repeated.
    const LONGEST: usize = 256;
    if text.len() > LONGEST {
        return Err((
            format!("the version is {} characters long, not a version such as 1.2.3", text.len()),
            "write one version, major.minor.patch (e.g. 1.2.3), on the file's first line".into(),
        ));
    }
    if let Some(rest) = text.strip_prefix(['v', 'V']) {
        return Err((
            format!("`{text}` starts with `{}`", &text[..1]),
            format!("write `{rest}`; the git tag template (`[version] tag`, default `v{{version}}`) adds the v"),
        ));
    }
    let core = text.split(['-', '+']).next().unwrap_or(text);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        match parts.len() {
            1 | 2 => {
                let padded: Vec<&str> = parts.iter().copied().chain(["0", "0"]).take(3).collect();
                return Err((
                    format!("`{text}` has {} numeric part(s); a version needs major.minor.patch", parts.len()),
                    format!("write `{}`", padded.join(".")),
                ));
            }
            n if n > 3 => {
                return Err((
                    format!("`{text}` has {n} numeric parts; semver has exactly three (major.minor.patch)"),
                    "drop the extra parts, or move them into build metadata, e.g. 1.2.3+4".into(),
                ))
            }
            _ => {}
        }
    }
    Version::parse(text).map_err(|e| {
        (
            format!("`{text}` is not a semantic version: {e}"),
            "write major.minor.patch with an optional -prerelease and +build, e.g. 1.4.0-rc.1".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bom_and_crlf() {
        let (v, bom, le) = parse("\u{feff}1.2.3\r\n".as_bytes()).unwrap();
        assert_eq!(v, Version::new(1, 2, 3));
        assert!(bom);
        assert_eq!(le, LineEnding::CrLf);
        let file = VersionFile { path: "VERSION".into(), version: v, bom, line_ending: le };
        assert_eq!(file.render(&Version::new(1, 2, 4)), "\u{feff}1.2.4\r\n");
    }

    #[test]
    fn tolerates_surrounding_whitespace() {
        let (v, bom, le) = parse(b"  \t0.1.9  \n\n").unwrap();
        assert_eq!((v, bom, le), (Version::new(0, 1, 9), false, LineEnding::Lf));
        let (_, _, le) = parse(b"0.1.9").unwrap();
        assert_eq!(le, LineEnding::None);
    }

    #[test]
    fn accepts_prerelease_and_build() {
        let (v, ..) = parse(b"1.3.0-rc.1+build.5\n").unwrap();
        assert_eq!(v.pre.as_str(), "rc.1");
        assert_eq!(v.build.as_str(), "build.5");
    }

    #[test]
    fn explains_near_misses() {
        let cases: [(&[u8], &str, &str); 6] = [
            (b"", "empty", "0.1.0"),
            (b"1.2\n", "2 numeric part", "`1.2.0`"),
            (b"v1.2.3", "starts with `v`", "`1.2.3`"),
            (b"1.2.3.4", "4 numeric parts", "build metadata"),
            (b"\xff\xfe1", "not UTF-8", "plain text"),
            (b"1.2.3\n1.2.4\n", "more than one line", "single line"),
        ];
        for (input, problem, hint) in cases {
            let (p, h) = parse(input).unwrap_err();
            assert!(p.contains(problem), "{p:?} should mention {problem:?}");
            assert!(h.contains(hint), "{h:?} should mention {hint:?}");
        }
    }
}
