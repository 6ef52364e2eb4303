//! Telling PDB formats apart by their first bytes. A snupkg may hold only portable PDBs
//! (the ECMA-335 metadata signature `BSJB`); nuget.org rejects Windows (MSF) PDBs there,
//! but only after the upload, so castoff checks before packing and before pushing.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Enough bytes to recognise either signature.
pub const SIGNATURE_LEN: usize = 32;

/// The ECMA-335 metadata root signature that starts a portable PDB.
const PORTABLE: &[u8] = b"BSJB";

/// The start of an MSF 7.0 file: a Windows PDB.
const WINDOWS: &[u8] = b"Microsoft C/C++ MSF 7.00";

/// What a `.pdb` file's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdbKind {
    Portable,
    Windows,
    /// Neither signature: not a PDB at all (or truncated).
    Unknown,
}

impl PdbKind {
    pub fn of(prefix: &[u8]) -> PdbKind {
        if prefix.starts_with(PORTABLE) {
            PdbKind::Portable
        } else if prefix.starts_with(WINDOWS) {
            PdbKind::Windows
        } else {
            PdbKind::Unknown
        }
    }

    /// What to tell the user when a snupkg would carry this kind.
    pub fn snupkg_problem(self) -> Option<(&'static str, &'static str)> {
        match self {
            PdbKind::Portable => None,
            PdbKind::Windows => Some((
                "is a Windows PDB; a snupkg holds only portable PDBs",
                "build with <DebugType>portable</DebugType> (or embedded), or set symbols = \"legacy\" in castoff.toml",
            )),
            PdbKind::Unknown => Some((
                "is not a PDB (it starts with neither \"BSJB\" nor \"Microsoft C/C++ MSF 7.00\")",
                "pack the PDB the compiler wrote, built with <DebugType>portable</DebugType>",
            )),
        }
    }
}

/// The first bytes of anything readable, up to [`SIGNATURE_LEN`].
pub fn prefix(reader: impl Read) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(SIGNATURE_LEN);
    reader.take(SIGNATURE_LEN as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// The kind of the PDB file at `path`.
pub fn kind_of_file(path: &Path) -> io::Result<PdbKind> {
    Ok(PdbKind::of(&prefix(File::open(path)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(PdbKind::of(b"BSJB\x01\x00\x01\x00"), PdbKind::Portable);
        assert_eq!(PdbKind::of(b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0"), PdbKind::Windows);
        assert_eq!(PdbKind::of(b"MZ\x90\0"), PdbKind::Unknown);
        assert_eq!(PdbKind::of(b""), PdbKind::Unknown);
        assert!(PdbKind::Portable.snupkg_problem().is_none());
        assert!(PdbKind::Windows.snupkg_problem().unwrap().1.contains("portable"));
        assert_eq!(prefix(&[7u8; 100][..]).unwrap().len(), SIGNATURE_LEN);
    }
}
