//! The Open Packaging Conventions parts every nupkg carries, and the package written
//! from them:
//!
//! - `[Content_Types].xml`: a `Default` per extension used (NuGet's
//!   `application/octet` for content), an `Override` for files without one;
//! - `_rels/.rels`: relationships to the nuspec (the NuGet manifest) and to the core
//!   properties;
//! - `<id>.nuspec`;
//! - `package/services/metadata/core-properties/<hex>.psmdcp`: id, version, authors,
//!   description, title and tags.
//!
//! NuGet names the psmdcp and the relationship ids with random GUIDs; castoff derives
//! them from a SHA-256 of what they describe, so the same inputs give the same bytes.
//! Entries are written sorted by name. Entry names escape each path segment as .NET's
//! `Uri.EscapeDataString` does (NuGet escapes, and unescapes on extraction).

use std::fs::File;
use std::io::{Seek, Write};
use std::path::Path;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use quick_xml::escape::escape;
use sha2::{Digest, Sha256};

use super::content::PackFile;
use super::nuspec::Nuspec;
use super::zipout::{ZipError, ZipOut};
use crate::error::{Error, IoContext, Result};

pub const CONTENT_TYPES: &str = "[Content_Types].xml";
pub const RELATIONSHIPS: &str = "_rels/.rels";
pub const CORE_PROPERTIES_DIR: &str = "package/services/metadata/core-properties/";

const RELATIONSHIPS_TYPE: &str = "application/vnd.openxmlformats-package.relationships+xml";
const CORE_PROPERTIES_TYPE: &str = "application/vnd.openxmlformats-package.core-properties+xml";
/// What NuGet declares for every other part.
const OCTET: &str = "application/octet";
const MANIFEST_RELATIONSHIP: &str = "http://schemas.microsoft.com/packaging/2010/07/manifest";
const CORE_PROPERTIES_RELATIONSHIP: &str =
    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties";

/// RFC 3986 unreserved characters stay; everything else is escaped.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The zip entry name for a package path: each segment percent-escaped.
pub fn entry_name(target: &str) -> String {
    target.split('/').map(|segment| utf8_percent_encode(segment, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

/// Whether an entry is one of the OPC parts (or the nuspec) rather than content.
pub fn is_package_part(name: &str) -> bool {
    name == CONTENT_TYPES
        || name == RELATIONSHIPS
        || name.starts_with(CORE_PROPERTIES_DIR)
        || (!name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec"))
}

/// One package to write: its manifest and content.
pub struct Parts<'a> {
    /// The metadata for the core properties.
    pub nuspec: &'a Nuspec,
    /// The nuspec text to pack (see [`Nuspec::packaged`]).
    pub manifest: String,
    pub files: Vec<&'a PackFile>,
}

enum Data<'a> {
    Bytes(Vec<u8>),
    File(&'a PackFile),
}

/// Write the package to `out` (named `shown` in errors): all entries, sorted by name.
pub fn write<W: Write + Seek>(out: W, parts: &Parts<'_>, shown: &Path) -> Result<W> {
    let nuspec_name = format!("{}.nuspec", entry_name(&parts.nuspec.id.value));
    let core = core_properties(parts.nuspec);
    let psmdcp = format!("{CORE_PROPERTIES_DIR}{}.psmdcp", &hex(&[core.as_bytes(), parts.manifest.as_bytes()])[..32]);
    let mut entries: Vec<(String, Data<'_>)> = vec![
        (RELATIONSHIPS.to_string(), Data::Bytes(relationships(&nuspec_name, &psmdcp).into_bytes())),
        (psmdcp, Data::Bytes(core.into_bytes())),
        (nuspec_name, Data::Bytes(parts.manifest.clone().into_bytes())),
    ];
    entries.extend(parts.files.iter().map(|file| (entry_name(&file.target), Data::File(file))));
    let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
    let types = content_types(&names);
    entries.push((CONTENT_TYPES.to_string(), Data::Bytes(types.into_bytes())));
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let mut zip = ZipOut::new(out);
    for (name, data) in &entries {
        let added = match data {
            Data::Bytes(bytes) => zip.add_bytes(name, bytes),
            Data::File(file) => {
                let source = File::open(&file.source).with_path("read", &file.source)?;
                zip.add(name, source, file.size)
            }
        };
        added.map_err(|e| zip_error(e, data, shown))?;
    }
    zip.finish().map_err(|e| zip_error(e, &Data::Bytes(Vec::new()), shown))
}

fn zip_error(error: ZipError, data: &Data<'_>, shown: &Path) -> Error {
    let source = match data {
        Data::File(file) => Some(file),
        Data::Bytes(_) => None,
    };
    match (error, source) {
        (ZipError::Source(e), Some(file)) => Error::io("read", &file.source, e),
        (ZipError::Changed { expected }, Some(file)) => Error::Failed {
            problem: format!("{} changed while it was being packed (it was {expected} bytes)", file.shown),
            hint: "run castoff pack again once the build has finished writing it".into(),
        },
        (ZipError::TooLarge(what), _) => Error::Failed {
            problem: format!("{} would hold {what}, past what a ZIP without ZIP64 can", shown.display()),
            hint: "split the package; nuget.org accepts packages up to 250 MB".into(),
        },
        (ZipError::Sink(e) | ZipError::Source(e), _) => Error::io("write", shown, e),
        (ZipError::Changed { .. }, None) => Error::Internal("an in-memory part changed size".into()),
    }
}

/// `[Content_Types].xml` for the entries named: a `Default` per extension, sorted, and
/// an `Override` per entry without an extension.
pub fn content_types(names: &[&str]) -> String {
    let mut defaults: Vec<(String, &str)> =
        vec![("rels".to_string(), RELATIONSHIPS_TYPE), ("psmdcp".to_string(), CORE_PROPERTIES_TYPE)];
    let mut overrides: Vec<String> = Vec::new();
    for name in names {
        let last = name.rsplit('/').next().unwrap_or(name);
        match last.rfind('.').map(|dot| last[dot + 1..].to_ascii_lowercase()) {
            Some(ext) if !ext.is_empty() => {
                if !defaults.iter().any(|(e, _)| *e == ext) {
                    defaults.push((ext, OCTET));
                }
            }
            _ => overrides.push(format!("/{name}")),
        }
    }
    defaults.sort();
    overrides.sort();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">",
    );
    for (ext, kind) in &defaults {
        xml.push_str(&format!("<Default Extension=\"{}\" ContentType=\"{kind}\" />", escape(ext.as_str())));
    }
    for part in &overrides {
        xml.push_str(&format!("<Override PartName=\"{}\" ContentType=\"{OCTET}\" />", escape(part.as_str())));
    }
    xml.push_str("</Types>");
    xml
}

/// `_rels/.rels`: the manifest and core-properties relationships.
pub fn relationships(nuspec: &str, psmdcp: &str) -> String {
    let relationship = |kind: &str, target: &str| {
        let id = &hex(&[b"relationship:", target.as_bytes()])[..16];
        format!("<Relationship Type=\"{kind}\" Target=\"/{}\" Id=\"R{id}\" />", escape(target))
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">{}{}</Relationships>",
        relationship(MANIFEST_RELATIONSHIP, nuspec),
        relationship(CORE_PROPERTIES_RELATIONSHIP, psmdcp),
    )
}

/// The psmdcp: the package's Dublin Core properties, as NuGet writes them.
pub fn core_properties(nuspec: &Nuspec) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <coreProperties xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\">",
    );
    let mut push = |name: &str, value: &str| xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    push("dc:creator", &nuspec.authors.value);
    push("dc:description", &nuspec.description.value);
    push("dc:identifier", &nuspec.id.value);
    push("version", &nuspec.version.value);
    if let Some(title) = &nuspec.title {
        push("dc:title", title);
    }
    if let Some(tags) = &nuspec.tags {
        push("keywords", tags);
    }
    // No version number: a castoff upgrade alone should not change a package's bytes.
    push("lastModifiedBy", "castoff");
    xml.push_str("</coreProperties>");
    xml
}

fn hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_escaped_per_segment() {
        assert_eq!(entry_name("lib/netstandard2.0/App.dll"), "lib/netstandard2.0/App.dll");
        assert_eq!(entry_name("content/my file+1.txt"), "content/my%20file%2B1.txt");
        assert_eq!(entry_name("content/ä.txt"), "content/%C3%A4.txt");
        assert!(is_package_part("App.nuspec") && is_package_part("_rels/.rels"));
        assert!(!is_package_part("lib/App.nuspec") && !is_package_part("lib/App.dll"));
    }

    #[test]
    fn content_types_cover_every_entry() {
        let xml = content_types(&["_rels/.rels", "App.nuspec", "lib/a/App.DLL", "lib/a/App.pdb", "LICENSE", "x.dll"]);
        assert!(xml.contains("<Default Extension=\"dll\" ContentType=\"application/octet\" />"), "{xml}");
        assert!(xml.contains("<Default Extension=\"nuspec\""));
        assert!(xml.contains("<Default Extension=\"pdb\""));
        assert!(xml.contains(
            "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" />"
        ));
        assert!(xml.contains("<Default Extension=\"psmdcp\""));
        assert!(xml.contains("<Override PartName=\"/LICENSE\" ContentType=\"application/octet\" />"), "{xml}");
        assert_eq!(xml.matches("Extension=\"dll\"").count(), 1);
    }

    #[test]
    fn relationship_ids_are_stable() {
        let a = relationships("App.nuspec", "package/services/metadata/core-properties/x.psmdcp");
        assert_eq!(a, relationships("App.nuspec", "package/services/metadata/core-properties/x.psmdcp"));
        assert!(a.contains("Target=\"/App.nuspec\" Id=\"R"), "{a}");
        assert!(a.contains(MANIFEST_RELATIONSHIP) && a.contains(CORE_PROPERTIES_RELATIONSHIP));
    }
}
