//! What one `[[package]]` asks for, as castoff.toml's validation produces it
//! (`config::PackageConfig` holds these): the manifest (a nuspec file, or metadata
//! written inline) and the files to pack. They live here, beside the code that packs
//! them, so `nuget` can name them while `config`'s table modules stay private.

use std::collections::BTreeMap;

use crate::error::Location;

/// Where a package's manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A nuspec file, project-relative, `/`-separated.
    Nuspec(String),
    /// Metadata written in castoff.toml; castoff generates the nuspec.
    Inline(InlineMetadata),
}

/// `[[package]]` metadata written inline instead of a nuspec. Deliberately small: the
/// fields NuGet requires plus the ones most packages set; anything richer belongs in a
/// nuspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineMetadata {
    pub id: String,
    pub authors: String,
    pub description: String,
    pub title: Option<String>,
    /// An SPDX license expression, e.g. "MIT" or "Apache-2.0 OR MIT".
    pub license: Option<String>,
    pub project_url: Option<String>,
    pub tags: Vec<String>,
    /// Dependency id → NuGet version range ("13.0.1", "[1.0,2.0)").
    pub dependencies: BTreeMap<String, String>,
}

/// One `files = [{ src, target, exclude }]` entry, or one `<file>` of a nuspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// A path or glob (`*` within a directory, `**` across directories), relative to
    /// the project root (castoff.toml) or the nuspec's directory (`<file>`).
    pub src: String,
    /// Where the files go inside the package (`lib/netstandard2.0`); "" is the root.
    pub target: String,
    /// Globs relative to the same directory as `src`, removed from what it matches.
    pub exclude: Vec<String>,
    /// Where the entry was written, for errors about what it matches.
    pub at: Location,
}
