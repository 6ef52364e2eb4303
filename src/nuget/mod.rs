//! NuGet packages: `castoff pack` writes each `[[package]]` as a nupkg plus a separate
//! symbols package (snupkg or legacy `.symbols.nupkg`), validated before anything can be
//! published; `castoff publish` pushes them to every `[[feed]]` (NuGet v3, v2, or a
//! folder), in parallel, never re-pushing what a feed already has.
//!
//! Only this module and `src/registry` speak HTTP.

pub mod content;
pub(crate) mod feed;
pub mod ident;
pub mod nuspec;
pub mod opc;
pub mod pack;
pub mod pdb;
pub mod publish;
pub mod spec;
pub mod validate;
mod zipout;

use std::path::PathBuf;

use serde::Serialize;

/// One package as packed: what publish pushes.
#[derive(Debug, Clone, Serialize)]
pub struct Packed {
    pub id: String,
    pub version: String,
    /// The nupkg, absolute.
    pub nupkg: PathBuf,
    /// SHA-512 of the nupkg, base64 (NuGet's own package hash form).
    /// `None` for packages found already packed (`pack::existing`): hashing a 200 MB
    /// package costs about as much as uploading it, so a feed computes it only when it
    /// needs it (a 409 read-back, a folder feed).
    pub sha512: Option<String>,
    /// The nupkg's size in bytes.
    pub size: u64,
    pub symbols: Option<SymbolsFile>,
}

/// A package's symbols package.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolsFile {
    pub kind: SymbolsKind,
    /// Absolute path.
    pub path: PathBuf,
}

/// The two forms of a symbols package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SymbolsKind {
    /// `<id>.<version>.snupkg`: portable PDBs only, `SymbolsPackage` package type.
    Snupkg,
    /// `<id>.<version>.symbols.nupkg`: the DLLs, PDBs and sources (`src/`).
    Legacy,
}
