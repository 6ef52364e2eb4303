//! Checks on packages as files, before anything is pushed: a published nupkg can never
//! be changed, so every rule a feed would enforce after the upload is enforced here
//! first. `castoff pack` runs them on what it wrote, `castoff publish` on what it finds.
//!
//! - each package is a zip with the OPC parts and one nuspec, whose required fields are
//!   there, whose id is legal and the one expected, and whose version is VERSION's;
//! - the nupkg and its symbols package have the same id and version;
//! - a snupkg declares the `SymbolsPackage` type and holds only portable PDBs, each
//!   beside a DLL (or EXE) of the same path stem in the nupkg.
//!
//! Packages are read with the `zip` crate, an independent reader of what castoff's own
//! writer produced.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::ident::{same_id, NugetVersion};
use super::nuspec::{self, SYMBOLS_PACKAGE_TYPE};
use super::opc::{is_package_part, CONTENT_TYPES, CORE_PROPERTIES_DIR, RELATIONSHIPS};
use super::pdb::{self, PdbKind};
use super::SymbolsKind;
use crate::error::{Error, IoContext, Location, Result};

/// A nuspec larger than this is not a manifest (and not worth inflating).
const MAX_NUSPEC: u64 = 4 << 20;

/// A package file opened and checked on its own.
pub struct Checked {
    /// How errors name the file (project-relative).
    pub shown: PathBuf,
    pub id: String,
    pub version: NugetVersion,
    pub package_types: Vec<String>,
    /// Entry names, as stored.
    pub entries: Vec<String>,
    archive: ZipArchive<BufReader<File>>,
}

impl Checked {
    fn fail(&self, problem: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::invalid(Location::file(&self.shown), problem, hint)
    }

    /// Content entries: neither OPC parts nor the nuspec.
    fn content(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().filter(|name| !is_package_part(name) && !name.ends_with('/'))
    }

    fn has(&self, name: &str) -> bool {
        self.entries.iter().any(|entry| entry.eq_ignore_ascii_case(name))
    }
}

/// Open the package in `file` (named `shown`) and check it on its own: a valid zip with
/// the OPC parts, a nuspec with the required fields and a legal id equal to
/// `expected_id`, and the version `expected`.
pub fn open(file: File, shown: &Path, expected_id: &str, expected: &NugetVersion) -> Result<Checked> {
    let rerun = "delete it and run `castoff pack` again";
    let not_a_package = |why: String| Error::invalid(Location::file(shown), why, rerun);
    let archive = ZipArchive::new(BufReader::new(file))
        .map_err(|e| not_a_package(format!("is not a valid package (zip): {e}")))?;
    let entries = archive
        .file_names()
        .map(|name| name.map(|n| n.into_owned()))
        .collect::<zip::result::ZipResult<Vec<String>>>()
        .map_err(|e| not_a_package(format!("has an unreadable entry name: {e}")))?;
    if let Some(problem) = entries.iter().find_map(|name| unsafe_entry_name(name)) {
        return Err(Error::invalid(
            Location::file(shown),
            problem,
            "a package's entries must be relative paths inside it; delete the file and run `castoff pack` again",
        ));
    }
    let mut archive = archive;
    check_declared_sizes(&mut archive, shown)?;
    let mut checked = Checked {
        shown: shown.to_path_buf(),
        id: String::new(),
        version: expected.clone(),
        package_types: Vec::new(),
        entries,
        archive,
    };
    for part in [CONTENT_TYPES, RELATIONSHIPS] {
        if !checked.has(part) {
            return Err(not_a_package(format!("has no `{part}`, which every NuGet package (OPC zip) needs")));
        }
    }
    if !checked.entries.iter().any(|e| e.starts_with(CORE_PROPERTIES_DIR) && e.ends_with(".psmdcp")) {
        return Err(not_a_package(format!("has no core properties (`{CORE_PROPERTIES_DIR}*.psmdcp`)")));
    }
    let manifests: Vec<String> = checked
        .entries
        .iter()
        .filter(|e| is_package_part(e) && e.to_lowercase().ends_with(".nuspec"))
        .cloned()
        .collect();
    let manifest = match manifests.as_slice() {
        [one] => one.clone(),
        [] => return Err(not_a_package("has no nuspec at its root".into())),
        many => return Err(not_a_package(format!("has {} nuspecs at its root ({})", many.len(), many.join(", ")))),
    };
    let text = read_entry(&mut checked, &manifest)?;
    let inside = PathBuf::from(format!("{}/{manifest}", shown.display()));
    let text = nuspec::decode(&text, &inside)?;
    let nuspec = nuspec::parse(text, &inside)?;
    let version = NugetVersion::parse(&nuspec.version.value)
        .map_err(|p| Error::invalid(Location::file(&inside).with_line(nuspec.version.line), p.problem(), p.hint()))?;
    if !version.same_as(expected) {
        return Err(checked
            .fail(format!("holds version {}, but VERSION is {}", nuspec.version.value, expected.normalized), rerun));
    }
    if nuspec.id.value != expected_id {
        return Err(checked.fail(format!("holds package `{}`, not `{expected_id}`", nuspec.id.value), rerun));
    }
    checked.id = nuspec.id.value;
    checked.version = version;
    checked.package_types = nuspec.package_types;
    Ok(checked)
}

/// Why an entry name could write outside the directory a client extracts the package
/// into (zip slip), if it could: `..` segments, absolute paths, drive letters, and
/// backslashes (which Windows clients treat as separators).
fn unsafe_entry_name(name: &str) -> Option<String> {
    let shown: String = name.chars().take(200).collect();
    let problem = if name.contains('\\') {
        "a backslash"
    } else if name.starts_with('/') {
        "an absolute path"
    } else if name.as_bytes().get(1) == Some(&b':') {
        "a drive letter"
    } else if name.split('/').any(|segment| segment == "..") {
        "a `..` segment"
    } else if name.contains('\0') {
        "a NUL byte"
    } else {
        return None;
    };
    Some(format!("has an entry `{shown}` with {problem}: extracting it would write outside the package's folder"))
}

/// Deflate cannot expand data more than 1032-fold; an entry claiming more (or more than
/// a package file may hold) is a zip bomb or a damaged archive, refused before any
/// byte of it is inflated.
fn check_declared_sizes<R: std::io::Read + std::io::Seek>(archive: &mut ZipArchive<R>, shown: &Path) -> Result<()> {
    const MAX_DEFLATE_RATIO: u64 = 1032;
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).map_err(|e| {
            Error::invalid(
                Location::file(shown),
                format!("has an unreadable entry: {e}"),
                "delete it and run `castoff pack` again",
            )
        })?;
        let (size, packed) = (entry.size(), entry.compressed_size());
        let bomb =
            size > crate::nuget::content::MAX_FILE_SIZE || size > packed.max(1).saturating_mul(MAX_DEFLATE_RATIO);
        if bomb {
            return Err(Error::invalid(
                Location::file(shown),
                format!(
                    "has an entry `{}` claiming {size} bytes from {packed} compressed",
                    entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("#{index}"))
                ),
                "no real package holds that; delete the file and run `castoff pack` again",
            ));
        }
    }
    Ok(())
}

/// Check a nupkg and its symbols package together.
pub fn pair(main: &Checked, symbols: &mut Checked, kind: SymbolsKind) -> Result<()> {
    if main.package_types.iter().any(|t| t == SYMBOLS_PACKAGE_TYPE) {
        return Err(main.fail(
            format!("declares the {SYMBOLS_PACKAGE_TYPE} package type, which only a snupkg may"),
            "remove <packageType name=\"SymbolsPackage\" /> from the nuspec",
        ));
    }
    if !same_id(&main.id, &symbols.id) || !main.version.same_as(&symbols.version) {
        return Err(symbols.fail(
            format!(
                "is {} {}, but its nupkg {} is {} {}",
                symbols.id,
                symbols.version.normalized,
                main.shown.display(),
                main.id,
                main.version.normalized
            ),
            "pack both from the same nuspec: run `castoff pack` again",
        ));
    }
    let pdbs: Vec<String> = symbols.content().filter(|name| has_extension(name, "pdb")).cloned().collect();
    if pdbs.is_empty() {
        return Err(symbols.fail("holds no PDB", "pack the PDBs, or set symbols = \"none\" in castoff.toml"));
    }
    if kind == SymbolsKind::Snupkg {
        if !symbols.package_types.iter().any(|t| t == SYMBOLS_PACKAGE_TYPE) {
            return Err(symbols.fail(
                format!("does not declare <packageType name=\"{SYMBOLS_PACKAGE_TYPE}\" />, which a snupkg must"),
                "run `castoff pack` again; it writes the package type",
            ));
        }
        if let Some(other) = symbols.content().find(|name| !has_extension(name, "pdb")) {
            return Err(symbols.fail(
                format!("holds `{other}`; a snupkg holds only PDBs"),
                "leave other files out of the snupkg, or use symbols = \"legacy\"",
            ));
        }
        for name in &pdbs {
            let prefix = entry_prefix(symbols, name)?;
            if let Some((problem, hint)) = PdbKind::of(&prefix).snupkg_problem() {
                return Err(symbols.fail(format!("`{name}` {problem}"), hint));
            }
        }
    }
    // A legacy package carries its DLLs itself; a snupkg's are in the nupkg.
    let binaries: Vec<&String> = match kind {
        SymbolsKind::Snupkg => main.content().collect(),
        SymbolsKind::Legacy => symbols.content().chain(main.content()).collect(),
    };
    for name in &pdbs {
        if !has_binary(name, binaries.iter().map(|s| s.as_str())) {
            return Err(symbols.fail(
                format!("`{name}` has no matching DLL (`{}.dll`) in {}", stem(name), main.shown.display()),
                "pack the DLL beside its PDB (same directory and name), or leave the PDB out",
            ));
        }
    }
    Ok(())
}

/// Whether a DLL or EXE with the PDB's path stem is among `entries`.
pub fn has_binary<'a>(pdb: &str, mut entries: impl Iterator<Item = &'a str>) -> bool {
    let stem = stem(pdb);
    entries.any(|entry| {
        (has_extension(entry, "dll") || has_extension(entry, "exe")) && stem.eq_ignore_ascii_case(self::stem(entry))
    })
}

/// A path without its extension.
pub fn stem(path: &str) -> &str {
    match path.rfind('.') {
        Some(dot) if !path[dot..].contains('/') => &path[..dot],
        _ => path,
    }
}

fn has_extension(name: &str, ext: &str) -> bool {
    name.len() > ext.len() + 1
        && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
        && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext)
}

fn read_entry(checked: &mut Checked, name: &str) -> Result<Vec<u8>> {
    let shown = checked.shown.clone();
    let mut entry = checked.archive.by_name(name).map_err(|e| {
        Error::invalid(Location::file(&shown), format!("cannot read `{name}`: {e}"), "run `castoff pack` again")
    })?;
    if entry.size() > MAX_NUSPEC {
        return Err(Error::invalid(
            Location::file(&shown),
            format!("`{name}` is {} bytes; that is no manifest", entry.size()),
            "run `castoff pack` again",
        ));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| {
        Error::invalid(Location::file(&shown), format!("cannot read `{name}`: {e}"), "run `castoff pack` again")
    })?;
    Ok(bytes)
}

/// The first bytes of an entry, for its PDB signature; nothing more is inflated.
fn entry_prefix(checked: &mut Checked, name: &str) -> Result<Vec<u8>> {
    let shown = checked.shown.clone();
    let broken = |e: String| {
        Error::invalid(Location::file(&shown), format!("cannot read `{name}`: {e}"), "run `castoff pack` again")
    };
    let entry = checked.archive.by_name(name).map_err(|e| broken(e.to_string()))?;
    pdb::prefix(entry).map_err(|e| broken(e.to_string()))
}

/// SHA-512 of a file, base64: NuGet's package hash (`.nupkg.sha512`, feeds' hashes).
pub fn sha512(file: &mut File, path: &Path) -> Result<String> {
    file.seek(SeekFrom::Start(0)).with_path("read", path)?;
    super::feed::sha512_reader(&mut *file).with_path("read", path)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::nuget::content::PackFile;
    use crate::nuget::opc::{self, Parts};

    const PORTABLE: &[u8] = b"BSJB\x01\x00\x01\x00portable";
    const WINDOWS: &[u8] = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0";

    fn nuspec_text(id: &str, version: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<package>\n  <metadata>\n    <id>{id}</id>\n    <version>{version}</version>\n    \
             <authors>a</authors>\n    <description>d</description>\n  </metadata>\n</package>\n"
        )
    }

    /// Write a package with castoff's own writer: `files` are (package path, bytes).
    fn package(dir: &Path, name: &str, nuspec: &str, snupkg: bool, files: &[(&str, &[u8])]) -> PathBuf {
        let nuspec = nuspec::parse(nuspec.to_string(), Path::new("test.nuspec")).unwrap();
        let packed: Vec<PackFile> = files
            .iter()
            .map(|(target, bytes)| {
                let source = dir.join("src").join(name).join(target);
                fs::create_dir_all(source.parent().unwrap()).unwrap();
                fs::write(&source, bytes).unwrap();
                PackFile { source, shown: target.to_string(), target: target.to_string(), size: bytes.len() as u64 }
            })
            .collect();
        let parts = Parts { nuspec: &nuspec, manifest: nuspec.packaged(snupkg), files: packed.iter().collect() };
        let path = dir.join(name);
        opc::write(File::create(&path).unwrap(), &parts, Path::new(name)).unwrap();
        path
    }

    fn open_as(path: &Path, id: &str, version: &str) -> Result<Checked> {
        open(
            File::open(path).unwrap(),
            Path::new(path.file_name().unwrap()),
            id,
            &NugetVersion::parse(version).unwrap(),
        )
    }

    fn check_pair(main: &Path, symbols: &Path, kind: SymbolsKind) -> Result<()> {
        let main = open_as(main, "App", "1.0.0")?;
        let mut symbols = open(
            File::open(symbols).unwrap(),
            Path::new(symbols.file_name().unwrap()),
            &main.id.clone(),
            &main.version.clone(),
        )
        .or_else(|_| {
            // Mismatched pairs: open the symbols package as what it claims to be.
            let text = nuspec_of(symbols);
            open(File::open(symbols).unwrap(), Path::new(symbols.file_name().unwrap()), &text.0, &text.1)
        })?;
        pair(&main, &mut symbols, kind)
    }

    fn nuspec_of(path: &Path) -> (String, NugetVersion) {
        let mut zip = ZipArchive::new(File::open(path).unwrap()).unwrap();
        let name = zip.file_names().map(|n| n.unwrap().into_owned()).find(|n| n.ends_with(".nuspec")).unwrap();
        let mut text = String::new();
        zip.by_name(&name).unwrap().read_to_string(&mut text).unwrap();
        let parsed = nuspec::parse(text, Path::new("x")).unwrap();
        (parsed.id.value, NugetVersion::parse(&parsed.version.value).unwrap())
    }

    fn fails(result: Result<()>, says: &[&str]) {
        let err = result.unwrap_err();
        let text = format!("{err} / {}", err.hint().unwrap_or_default());
        for needle in says {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    #[test]
    fn a_good_pair_passes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = package(d, "App.1.0.0.nupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.dll", b"MZ")]);
        let snupkg =
            package(d, "App.1.0.0.snupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net6.0/App.pdb", PORTABLE)]);
        check_pair(&main, &snupkg, SymbolsKind::Snupkg).unwrap();
        let legacy = package(
            d,
            "App.1.0.0.symbols.nupkg",
            &nuspec_text("App", "1.0.0"),
            false,
            &[("lib/net6.0/App.dll", b"MZ"), ("lib/net6.0/App.pdb", WINDOWS), ("src/App.cs", b"class A {}")],
        );
        // A legacy package may carry Windows PDBs: the old symbol servers index them.
        check_pair(&main, &legacy, SymbolsKind::Legacy).unwrap();
    }

    #[test]
    fn windows_pdb_in_a_snupkg() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = package(d, "App.1.0.0.nupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.dll", b"MZ")]);
        let snupkg =
            package(d, "App.1.0.0.snupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net6.0/App.pdb", WINDOWS)]);
        fails(
            check_pair(&main, &snupkg, SymbolsKind::Snupkg),
            &["App.1.0.0.snupkg", "lib/net6.0/App.pdb", "Windows PDB", "<DebugType>portable</DebugType>"],
        );
        let junk = package(d, "Junk.snupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net6.0/App.pdb", b"MZ")]);
        fails(check_pair(&main, &junk, SymbolsKind::Snupkg), &["is not a PDB"]);
    }

    #[test]
    fn mismatched_ids_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = package(d, "App.1.0.0.nupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.dll", b"MZ")]);
        let other =
            package(d, "Other.snupkg", &nuspec_text("Other", "1.0.0"), true, &[("lib/net6.0/App.pdb", PORTABLE)]);
        fails(check_pair(&main, &other, SymbolsKind::Snupkg), &["Other.snupkg", "is Other 1.0.0", "App 1.0.0"]);
        let newer = package(d, "Newer.snupkg", &nuspec_text("App", "1.0.1"), true, &[("lib/net6.0/App.pdb", PORTABLE)]);
        fails(check_pair(&main, &newer, SymbolsKind::Snupkg), &["Newer.snupkg", "App 1.0.1"]);
        // And each package against VERSION and the expected id.
        fails(open_as(&main, "App", "1.0.1").map(drop), &["holds version 1.0.0, but VERSION is 1.0.1"]);
        fails(open_as(&main, "App.Core", "1.0.0").map(drop), &["holds package `App`, not `App.Core`"]);
    }

    #[test]
    fn pdb_without_its_dll() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = package(d, "App.1.0.0.nupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.dll", b"MZ")]);
        let snupkg =
            package(d, "App.1.0.0.snupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net8.0/App.pdb", PORTABLE)]);
        fails(
            check_pair(&main, &snupkg, SymbolsKind::Snupkg),
            &["lib/net8.0/App.pdb", "no matching DLL", "lib/net8.0/App.dll"],
        );
    }

    #[test]
    fn snupkg_rules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let main = package(d, "App.1.0.0.nupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.dll", b"MZ")]);
        let untyped =
            package(d, "Untyped.snupkg", &nuspec_text("App", "1.0.0"), false, &[("lib/net6.0/App.pdb", PORTABLE)]);
        fails(check_pair(&main, &untyped, SymbolsKind::Snupkg), &["SymbolsPackage"]);
        let with_dll = package(
            d,
            "WithDll.snupkg",
            &nuspec_text("App", "1.0.0"),
            true,
            &[("lib/net6.0/App.pdb", PORTABLE), ("lib/net6.0/App.dll", b"MZ")],
        );
        fails(check_pair(&main, &with_dll, SymbolsKind::Snupkg), &["lib/net6.0/App.dll", "only PDBs"]);
        let empty = package(d, "Empty.snupkg", &nuspec_text("App", "1.0.0"), true, &[]);
        fails(check_pair(&main, &empty, SymbolsKind::Snupkg), &["holds no PDB"]);
        // The nupkg itself may not pose as a symbols package.
        let posing = package(d, "Posing.nupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net6.0/App.dll", b"MZ")]);
        let snupkg =
            package(d, "App.1.0.0.snupkg", &nuspec_text("App", "1.0.0"), true, &[("lib/net6.0/App.pdb", PORTABLE)]);
        fails(check_pair(&posing, &snupkg, SymbolsKind::Snupkg), &["Posing.nupkg", "only a snupkg may"]);
    }

    #[test]
    fn broken_packages() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let not_zip = d.join("NotZip.nupkg");
        fs::write(&not_zip, b"MZ this is no zip").unwrap();
        fails(open_as(&not_zip, "App", "1.0.0").map(drop), &["NotZip.nupkg", "not a valid package", "castoff pack"]);
        let raw = |name: &str, entries: &[(&str, &[u8])]| {
            let path = d.join(name);
            let mut zip = crate::nuget::zipout::ZipOut::new(File::create(&path).unwrap());
            for (entry, bytes) in entries {
                zip.add_bytes(entry, bytes).unwrap();
            }
            zip.finish().unwrap();
            path
        };
        let good = nuspec_text("App", "1.0.0");
        let bare = raw("Bare.nupkg", &[("App.nuspec", good.as_bytes())]);
        fails(open_as(&bare, "App", "1.0.0").map(drop), &["Bare.nupkg", "[Content_Types].xml"]);
        let parts: [(&str, &[u8]); 3] = [
            ("[Content_Types].xml", b"<Types/>"),
            ("_rels/.rels", b"<Relationships/>"),
            ("package/services/metadata/core-properties/0.psmdcp", b"<coreProperties/>"),
        ];
        let no_nuspec = raw("NoNuspec.nupkg", &parts);
        fails(open_as(&no_nuspec, "App", "1.0.0").map(drop), &["has no nuspec"]);
        // A nuspec without its version, inside the package: the error names the entry and line.
        let text = good.replace("    <version>1.0.0</version>\n", "");
        let mut entries = parts.to_vec();
        entries.push(("App.nuspec", text.as_bytes()));
        let no_version = raw("NoVersion.nupkg", &entries);
        let err = open_as(&no_version, "App", "1.0.0").map(drop).unwrap_err();
        assert_eq!(err.location().unwrap().file, Path::new("NoVersion.nupkg/App.nuspec"));
        assert_eq!(err.location().unwrap().line, Some(3));
        assert!(err.to_string().contains("has no <version>"), "{err}");
    }

    #[test]
    fn stems_and_binaries() {
        assert_eq!(stem("lib/net6.0/App.Core.pdb"), "lib/net6.0/App.Core");
        assert_eq!(stem("lib/v1.0/App"), "lib/v1.0/App");
        let entries = ["lib/net6.0/App.Core.DLL", "tools/Tool.exe"];
        assert!(has_binary("lib/net6.0/App.Core.pdb", entries.into_iter()));
        assert!(has_binary("tools/tool.pdb", entries.into_iter()));
        assert!(!has_binary("lib/net8.0/App.Core.pdb", entries.into_iter()));
        assert!(has_extension("a.PDB", "pdb") && !has_extension("pdb", "pdb") && !has_extension("apdb", "pdb"));
    }
}
