//! `castoff pack`: every `[[package]]` becomes `<output>/<id>.<version>.nupkg` and, per
//! its `symbols`, `<id>.<version>.snupkg` or `<id>.<version>.symbols.nupkg`.
//!
//! The order keeps bad input from changing anything:
//!
//! 1. plan every package, reading only: the manifest (nuspec or inline), VERSION, the
//!    files, each PDB's signature; every user error surfaces here (exit 2);
//! 2. write every package to a temp file beside its destination, then check it as
//!    `castoff publish` would (see `validate`);
//! 3. only when all are good, rename them into place.
//!
//! A failed pack leaves no package, half-written or not. A dry run does steps 1 and 2
//! into anonymous temp files outside the project (so the sizes and digests it reports
//! are real) and renames nothing.
//!
//! What goes where (as `nuget pack -Symbols` does):
//!
//! | symbols | nupkg                     | symbols package                      |
//! |---------|---------------------------|--------------------------------------|
//! | snupkg  | everything but PDBs, src/ | the PDBs (portable only)             |
//! | legacy  | everything but PDBs, src/ | everything: DLLs, PDBs, sources      |
//! | none    | everything                | —                                    |
//!
//! With a snupkg, files under src/ go into neither package (there is no place for
//! them); the outcome carries a warning saying so.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use super::content::{self, package_target, PackFile};
use super::ident::{same_id, NugetVersion};
use super::nuspec::{self, Nuspec};
use super::opc::{self, Parts};
use super::pdb;
use super::spec::{FileSpec, PackageSource};
use super::validate::{self, Checked};
use super::{Packed, SymbolsFile, SymbolsKind};
use crate::config::PackageConfig;
use crate::error::{Error, IoContext, Location, Result};
use crate::fsutil;
use crate::project::Project;

#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Show what would be written; write nothing.
    pub dry_run: bool,
    /// With `dry_run`: check the inputs (manifest, files, PDBs, output directory) and
    /// name the packages, without compressing them: what a release's plan and
    /// preflight need, at the cost of a stat per file rather than a deflate of every
    /// byte. Sizes are then unknown (0).
    pub check_only: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackOutcome {
    pub packages: Vec<Packed>,
    pub dry_run: bool,
    /// What was left out and why (shown as `warning:` lines).
    pub warnings: Vec<String>,
    /// The project root, to show paths relative to it.
    #[serde(skip)]
    pub root: PathBuf,
}

impl PackOutcome {
    /// Lines for the human summary:
    /// `packed dist/nuget/App.1.2.3.nupkg (12.3 KiB) + App.1.2.3.snupkg`.
    pub fn human(&self) -> Vec<String> {
        let verb = if self.dry_run { "dry run: would pack" } else { "packed" };
        let warnings = self.warnings.iter().map(|w| format!("warning: {w}"));
        let packed = self.packages.iter().map(|packed| {
            let shown = packed.nupkg.strip_prefix(&self.root).unwrap_or(&packed.nupkg);
            let mut line = match packed.size {
                0 if self.dry_run => format!("{verb} {}", shown.display()),
                bytes => format!("{verb} {} ({})", shown.display(), size(bytes)),
            };
            if let Some(name) = packed.symbols.as_ref().and_then(|s| s.path.file_name()) {
                line.push_str(&format!(" + {}", name.to_string_lossy()));
            }
            line
        });
        warnings.chain(packed).collect()
    }
}

/// `12.3 KiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// One package, planned: everything known before a byte is written.
struct Plan<'a> {
    config: &'a PackageConfig,
    nuspec: Nuspec,
    version: NugetVersion,
    main: Vec<PackFile>,
    symbols: Option<(SymbolsKind, Vec<PackFile>)>,
}

impl Plan<'_> {
    fn nupkg(&self, root: &Path) -> PathBuf {
        root.join(&self.config.output).join(package_file(&self.nuspec.id.value, &self.version, None))
    }

    fn symbols_path(&self, root: &Path, kind: SymbolsKind) -> PathBuf {
        root.join(&self.config.output).join(package_file(&self.nuspec.id.value, &self.version, Some(kind)))
    }
}

/// `App.1.2.3.nupkg`, `App.1.2.3.snupkg`, `App.1.2.3.symbols.nupkg`.
pub fn package_file(id: &str, version: &NugetVersion, symbols: Option<SymbolsKind>) -> String {
    let extension = match symbols {
        None => "nupkg",
        Some(SymbolsKind::Snupkg) => "snupkg",
        Some(SymbolsKind::Legacy) => "symbols.nupkg",
    };
    format!("{id}.{}.{extension}", version.normalized)
}

/// Pack every `[[package]]`.
pub fn pack(project: &Project, options: &PackOptions) -> Result<PackOutcome> {
    let version = project.read_version()?.version;
    if project.config.packages.is_empty() {
        return Err(Error::invalid(
            Location::file(project.config_shown()),
            "there is no [[package]] to pack",
            "add [[package]] with nuspec = \"App.nuspec\" (or id, authors, description and files)",
        ));
    }
    let mut warnings = Vec::new();
    let plans = project
        .config
        .packages
        .iter()
        .map(|config| plan(project, config, &version, &mut warnings))
        .collect::<Result<Vec<_>>>()?;
    check_distinct(&plans)?;
    if options.dry_run && options.check_only {
        let packages = plans.iter().map(|plan| checked_only(project, plan)).collect::<Result<Vec<_>>>()?;
        return Ok(PackOutcome { packages, dry_run: true, warnings, root: project.root.clone() });
    }

    let mut created = Vec::new();
    let result = write_all(project, &plans, options.dry_run, &mut created);
    if result.is_err() {
        // Directories made for packages that were never put in place.
        for dir in created.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
    let packages = result?;
    Ok(PackOutcome { packages, dry_run: options.dry_run, warnings, root: project.root.clone() })
}

/// A planned package named, not written (see [`PackOptions::check_only`]).
fn checked_only(project: &Project, plan: &Plan<'_>) -> Result<Packed> {
    check_output_dir(project, &plan.config.output)?;
    Ok(Packed {
        id: plan.nuspec.id.value.clone(),
        version: plan.version.normalized.clone(),
        nupkg: plan.nupkg(&project.root),
        sha512: None,
        size: 0,
        symbols: plan
            .symbols
            .as_ref()
            .map(|(kind, _)| SymbolsFile { kind: *kind, path: plan.symbols_path(&project.root, *kind) }),
    })
}

/// The packages `castoff pack` already wrote for the current version, validated; `None`
/// when any is missing (publish then packs first). Whether they are up to date with
/// their inputs is not checked: a new version gets new files, and within a version the
/// user who rebuilt packs again.
pub fn existing(project: &Project) -> Result<Option<PackOutcome>> {
    let version = project.read_version()?.version;
    let expected = NugetVersion::from_semver(&version);
    if project.config.packages.is_empty() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for config in &project.config.packages {
        let id = match &config.source {
            PackageSource::Inline(meta) => meta.id.clone(),
            PackageSource::Nuspec(_) => manifest(project, config, &version)?.id.value,
        };
        let nupkg = project.root.join(&config.output).join(package_file(&id, &expected, None));
        let symbols = config
            .symbols
            .map(|kind| (kind, project.root.join(&config.output).join(package_file(&id, &expected, Some(kind)))));
        let paths = std::iter::once(&nupkg).chain(symbols.as_ref().map(|(_, path)| path));
        for path in paths {
            match fs::metadata(path) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("inspect", path, e)),
            }
        }
        found.push((id, nupkg, symbols));
    }
    let mut packages = Vec::new();
    for (id, nupkg, symbols) in found {
        let main_file = File::open(&nupkg).with_path("read", &nupkg)?;
        let symbols_file = match &symbols {
            Some((kind, path)) => Some((*kind, File::open(path).with_path("read", path)?, path.clone())),
            None => None,
        };
        packages.push(check(project, &id, &expected, (main_file, nupkg), symbols_file, false)?);
    }
    Ok(Some(PackOutcome { packages, dry_run: false, warnings: Vec::new(), root: project.root.clone() }))
}

/// Read and check one `[[package]]`'s manifest and files.
fn plan<'a>(
    project: &Project,
    config: &'a PackageConfig,
    version: &Version,
    warnings: &mut Vec<String>,
) -> Result<Plan<'a>> {
    let nuspec = manifest(project, config, version)?;
    let expected = NugetVersion::from_semver(version);
    let nuspec_version = nuspec.check_version(&expected)?;
    let (base, specs) = file_specs(config, &nuspec)?;
    let files = content::resolve(&project.root, &base, &specs)?;
    let is_pdb = |f: &PackFile| f.extension() == "pdb";
    let is_source = |f: &PackFile| f.target.to_ascii_lowercase().starts_with("src/");
    let (main, symbols) = match config.symbols {
        None => (files, None),
        Some(SymbolsKind::Snupkg) => {
            // As `nuget pack -SymbolPackageFormat snupkg`: sources go into neither package.
            let (sources, files): (Vec<PackFile>, Vec<PackFile>) = files.into_iter().partition(is_source);
            if !sources.is_empty() {
                warnings.push(format!(
                    "{}: {} file(s) under src/ (such as {}) are not packed: a snupkg holds only PDBs; \
                     set symbols = \"legacy\" to ship sources",
                    nuspec.id.value,
                    sources.len(),
                    sources[0].shown
                ));
            }
            let (pdbs, rest): (Vec<PackFile>, Vec<PackFile>) = files.into_iter().partition(is_pdb);
            (rest, Some((SymbolsKind::Snupkg, pdbs)))
        }
        Some(SymbolsKind::Legacy) => {
            let main = files.iter().filter(|f| !is_pdb(f) && !is_source(f)).cloned().collect();
            (main, Some((SymbolsKind::Legacy, files)))
        }
    };
    if let Some((kind, symbol_files)) = &symbols {
        check_pdbs(config, *kind, symbol_files, &main)?;
    }
    Ok(Plan { config, nuspec, version: nuspec_version, main, symbols })
}

/// The manifest: the nuspec file, or one written from the inline metadata.
fn manifest(project: &Project, config: &PackageConfig, version: &Version) -> Result<Nuspec> {
    let rel = match &config.source {
        PackageSource::Inline(meta) => {
            return nuspec::parse(nuspec::inline(meta, &version.to_string()), &project.config_shown())
        }
        PackageSource::Nuspec(rel) => rel,
    };
    let path = project.root.join(rel);
    let missing = |problem: String| {
        Error::invalid(
            config.location("nuspec"),
            problem,
            "create the nuspec, or fix `nuspec` (a path relative to the directory that holds castoff.toml)",
        )
    };
    match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(missing(format!("`{rel}` is not a file"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing(format!("`{rel}` does not exist"))),
        Err(e) => return Err(Error::io("inspect", &path, e)),
    }
    let real = fs::canonicalize(&path).with_path("resolve", &path)?;
    let real_root = fs::canonicalize(&project.root).with_path("resolve", &project.root)?;
    if !real.starts_with(&real_root) {
        return Err(missing(format!("`{rel}` resolves to {}, outside the project", real.display())));
    }
    nuspec::read(&path, Path::new(rel), &version.to_string())
}

/// The file specs and the directory their `src` is relative to: castoff.toml's `files`
/// (the project root) or the nuspec's `<files>` (the nuspec's directory).
fn file_specs(config: &PackageConfig, nuspec: &Nuspec) -> Result<(String, Vec<FileSpec>)> {
    let nuspec_dir = match &config.source {
        PackageSource::Nuspec(rel) => rel.rsplit_once('/').map_or("", |(dir, _)| dir).to_string(),
        PackageSource::Inline(_) => String::new(),
    };
    match (&config.files, &nuspec.files) {
        (Some(_), Some(_)) => Err(Error::invalid(
            config.location("files"),
            format!(
                "both `{}` and the <files> of {} (line {}) list what to pack",
                config.key("files"),
                nuspec.shown.display(),
                nuspec.files_line.unwrap_or(1)
            ),
            "keep one: remove `files` from castoff.toml, or <files> from the nuspec",
        )),
        (Some(files), None) => Ok((String::new(), files.clone())),
        (None, Some(files)) => {
            let specs = files
                .iter()
                .map(|file| {
                    let at = Location::file(&nuspec.shown).with_line(file.line);
                    let target = package_target(file.target.as_deref().unwrap_or(""))
                        .map_err(|p| Error::invalid(at.clone(), p.problem(), p.hint()))?;
                    let exclude = file
                        .exclude
                        .as_deref()
                        .unwrap_or("")
                        .split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect();
                    Ok(FileSpec { src: file.src.clone(), target, exclude, at })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((nuspec_dir, specs))
        }
        (None, None) => Err(Error::invalid(
            config.location("nuspec"),
            format!("{} has no <files>, and `{}` is not set", nuspec.shown.display(), config.key("files")),
            "add <files><file src=\"bin/Release/**/*.dll\" target=\"lib\" /></files> to the nuspec, \
             or files = [{ src = \"...\", target = \"lib/netstandard2.0\" }] to the [[package]]",
        )),
    }
}

/// The PDBs must be there, be portable for a snupkg, and sit beside their DLLs.
fn check_pdbs(config: &PackageConfig, kind: SymbolsKind, symbols: &[PackFile], main: &[PackFile]) -> Result<()> {
    let pdbs: Vec<&PackFile> = symbols.iter().filter(|f| f.extension() == "pdb").collect();
    if pdbs.is_empty() {
        let format = match kind {
            SymbolsKind::Snupkg => "snupkg",
            SymbolsKind::Legacy => "legacy",
        };
        return Err(Error::invalid(
            config.location("symbols"),
            format!("symbols = \"{format}\", but `package[{}]` packs no .pdb file", config.index),
            "add the PDBs to what is packed (e.g. <file src=\"bin/Release/**/*.pdb\" target=\"lib\" />), \
             or set symbols = \"none\"",
        ));
    }
    let binaries: Vec<&str> = match kind {
        SymbolsKind::Snupkg => main.iter().map(|f| f.target.as_str()).collect(),
        SymbolsKind::Legacy => symbols.iter().map(|f| f.target.as_str()).collect(),
    };
    for file in pdbs {
        let at = Location::file(&file.shown);
        if kind == SymbolsKind::Snupkg {
            let found = pdb::kind_of_file(&file.source).with_path("read", &file.source)?;
            if let Some((problem, hint)) = found.snupkg_problem() {
                return Err(Error::invalid(at, format!("this PDB (packed as `{}`) {problem}", file.target), hint));
            }
        }
        if !validate::has_binary(&file.target, binaries.iter().copied()) {
            return Err(Error::invalid(
                at,
                format!(
                    "this PDB (packed as `{}`) has no matching DLL `{}.dll` in the package",
                    file.target,
                    validate::stem(&file.target)
                ),
                "pack the DLL beside its PDB (same directory and name), or leave the PDB out",
            ));
        }
    }
    Ok(())
}

/// Two `[[package]]`s may not produce the same package.
fn check_distinct(plans: &[Plan<'_>]) -> Result<()> {
    for (i, plan) in plans.iter().enumerate() {
        if let Some(earlier) = plans[..i].iter().find(|p| same_id(&p.nuspec.id.value, &plan.nuspec.id.value)) {
            let key = match plan.config.source {
                PackageSource::Nuspec(_) => "nuspec",
                PackageSource::Inline(_) => "id",
            };
            return Err(Error::invalid(
                plan.config.location(key),
                format!(
                    "`package[{}]` and `package[{}]` are both package `{}`",
                    earlier.config.index, plan.config.index, plan.nuspec.id.value
                ),
                "give each [[package]] its own id",
            ));
        }
    }
    Ok(())
}

/// A package written but not yet in place.
struct Pending {
    file: File,
    temp: Option<tempfile::TempPath>,
    path: PathBuf,
}

fn write_all(project: &Project, plans: &[Plan<'_>], dry_run: bool, created: &mut Vec<PathBuf>) -> Result<Vec<Packed>> {
    let mut pending: Vec<(Vec<Pending>, usize)> = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        if !dry_run {
            created.extend(output_dir(project, &plan.config.output)?);
        } else {
            check_output_dir(project, &plan.config.output)?;
        }
        let mut files = Vec::new();
        let nupkg = plan.nupkg(&project.root);
        let parts =
            Parts { nuspec: &plan.nuspec, manifest: plan.nuspec.packaged(false), files: plan.main.iter().collect() };
        files.push(write_one(project, &parts, nupkg, dry_run)?);
        if let Some((kind, symbol_files)) = &plan.symbols {
            let parts = Parts {
                nuspec: &plan.nuspec,
                manifest: plan.nuspec.packaged(*kind == SymbolsKind::Snupkg),
                files: symbol_files.iter().collect(),
            };
            files.push(write_one(project, &parts, plan.symbols_path(&project.root, *kind), dry_run)?);
        }
        pending.push((files, index));
    }
    // Every package checked before any is put in place.
    let mut packed = Vec::new();
    for (files, index) in &mut pending {
        let plan = &plans[*index];
        let mut files = files.iter_mut();
        let main = files.next().ok_or_else(|| Error::Internal("no nupkg written".into()))?;
        let main_file = main.file.try_clone().with_path("read", &main.path)?;
        let symbols = match (&plan.symbols, files.next()) {
            (Some((kind, _)), Some(written)) => {
                Some((*kind, written.file.try_clone().with_path("read", &written.path)?, written.path.clone()))
            }
            _ => None,
        };
        let file = (main_file, main.path.clone());
        packed.push(check(project, &plan.nuspec.id.value, &plan.version, file, symbols, true)?);
    }
    for (files, _) in pending {
        for written in files {
            if let Some(temp) = written.temp {
                temp.persist(&written.path).map_err(|e| Error::io("replace", &written.path, e.error))?;
            }
        }
    }
    let mut dirs: Vec<&str> = plans.iter().map(|p| p.config.output.as_str()).collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        sync_dir(&project.root.join(dir));
    }
    Ok(packed)
}

/// Write one package: to a temp file beside `path`, or (dry run) to an anonymous one.
fn write_one(project: &Project, parts: &Parts<'_>, path: PathBuf, dry_run: bool) -> Result<Pending> {
    let shown = path.strip_prefix(&project.root).unwrap_or(&path).to_path_buf();
    let (mut file, temp) = match dry_run {
        true => (tempfile::tempfile().with_path("create a temporary file for", &shown)?, None),
        false => {
            let dir = path.parent().unwrap_or(&project.root);
            let temp = crate::fsutil::temp_file_in(dir).with_path("create a temporary file in", dir)?;
            let (file, temp) = temp.into_parts();
            (file, Some(temp))
        }
    };
    {
        let out = BufWriter::with_capacity(1 << 20, &mut file);
        let out = opc::write(out, parts, &shown)?;
        out.into_inner().map_err(|e| Error::io("write", &shown, e.into_error()))?;
    }
    if !dry_run {
        // Durable before the rename makes it visible: a crash never leaves a package
        // that looks complete but is not.
        file.sync_all().with_path("flush", &path)?;
        set_mode(&file);
    }
    file.seek(SeekFrom::Start(0)).with_path("read", &shown)?;
    Ok(Pending { file, temp, path })
}

/// Check a written (or found) package and its symbols package; describe them.
fn check(
    project: &Project,
    id: &str,
    version: &NugetVersion,
    (mut main_file, main_path): (File, PathBuf),
    symbols: Option<(SymbolsKind, File, PathBuf)>,
    hash: bool,
) -> Result<Packed> {
    let shown = |path: &Path| path.strip_prefix(&project.root).unwrap_or(path).to_path_buf();
    let size = main_file.metadata().with_path("inspect", &main_path)?.len();
    let sha512 = if hash { Some(validate::sha512(&mut main_file, &main_path)?) } else { None };
    main_file.seek(SeekFrom::Start(0)).with_path("read", &main_path)?;
    let main: Checked = validate::open(main_file, &shown(&main_path), id, version)?;
    let symbols = match symbols {
        Some((kind, file, path)) => {
            let mut checked = validate::open(file, &shown(&path), id, version)?;
            validate::pair(&main, &mut checked, kind)?;
            Some(SymbolsFile { kind, path })
        }
        None => None,
    };
    Ok(Packed { id: main.id, version: main.version.normalized, nupkg: main_path, sha512, size, symbols })
}

/// Create the output directory (each level a real directory, never through a
/// symlink); the levels created, for removal should the pack fail.
fn output_dir(project: &Project, rel: &str) -> Result<Vec<PathBuf>> {
    let mut created = Vec::new();
    let mut prefix = String::new();
    for part in rel.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if fsutil::ensure_real_dir(&project.root, &prefix)? {
            created.push(project.root.join(&prefix));
        }
    }
    Ok(created)
}

/// A dry run only checks that the output directory could be used.
fn check_output_dir(project: &Project, rel: &str) -> Result<()> {
    let mut prefix = String::new();
    for part in rel.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if !fsutil::check_real_dir(&project.root, &prefix)? {
            break;
        }
    }
    Ok(())
}

/// Packages are ordinary files (0644), not tempfile's private 0600.
fn set_mode(file: &File) {
    use std::os::unix::fs::PermissionsExt;
    // Best effort: a stricter mode is still a correct package.
    let _ = file.set_permissions(fs::Permissions::from_mode(0o644));
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    const PDB: &[u8] = b"BSJB\x01\x00\x01\x00portable pdb";
    const WINDOWS_PDB: &[u8] = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0";

    /// A project with VERSION 1.2.3, nuget/App.nuspec listing `lib/**` and `src/**`, a DLL,
    /// its portable PDB and a source file; `package` is the [[package]] table's extra keys.
    fn fixture(package: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, bytes: &[u8]| {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        };
        write("VERSION", b"1.2.3\n");
        write("castoff.toml", format!("[[package]]\nnuspec = \"nuget/App.nuspec\"\n{package}").as_bytes());
        write(
            "nuget/App.nuspec",
            b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package>\n  <metadata>\n    <id>App</id>\n    \
              <version>$version$</version>\n    <authors>Contoso</authors>\n    <description>The app</description>\n    \
              <tags>app tool</tags>\n  </metadata>\n  <files>\n    <file src=\"lib/**\" target=\"lib\" />\n    \
              <file src=\"../src/**/*.cs\" target=\"src\" />\n  </files>\n</package>\n",
        );
        write("nuget/lib/netstandard2.0/App.dll", &[b"MZ".as_slice(), &[7u8; 300_000]].concat());
        write("nuget/lib/netstandard2.0/App.pdb", PDB);
        write("src/App.cs", b"class App {}\n");
        let project = Project::open(dir.path(), None).unwrap();
        (dir, project)
    }

    fn entries(path: &Path) -> Vec<String> {
        let zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        zip.file_names().map(|n| n.unwrap().into_owned()).collect()
    }

    fn entry(path: &Path, name: &str) -> String {
        let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        let mut text = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut text).unwrap();
        text
    }

    fn tree(dir: &Path) -> Vec<String> {
        let mut files: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().display().to_string())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn snupkg_layout_and_opc_parts() {
        let (dir, project) = fixture("");
        let outcome = pack(&project, &PackOptions::default()).unwrap();
        let packed = &outcome.packages[0];
        let nupkg = dir.path().join("dist/nuget/App.1.2.3.nupkg");
        let snupkg = dir.path().join("dist/nuget/App.1.2.3.snupkg");
        assert_eq!(packed.nupkg, nupkg);
        assert_eq!((packed.id.as_str(), packed.version.as_str()), ("App", "1.2.3"));
        assert_eq!(
            packed.symbols.as_ref().map(|s| (s.kind, s.path.clone())),
            Some((SymbolsKind::Snupkg, snupkg.clone()))
        );
        assert_eq!(packed.size, fs::metadata(&nupkg).unwrap().len());
        assert_eq!(packed.sha512.as_deref().map(str::len), Some(88), "{:?}", packed.sha512);
        assert_eq!(
            outcome.human(),
            [
                "warning: App: 1 file(s) under src/ (such as src/App.cs) are not packed: a snupkg holds only PDBs; \
                 set symbols = \"legacy\" to ship sources"
                    .to_string(),
                format!("packed dist/nuget/App.1.2.3.nupkg ({}) + App.1.2.3.snupkg", size(packed.size))
            ]
        );

        let names = entries(&nupkg);
        let psmdcp = names.iter().find(|n| n.ends_with(".psmdcp")).unwrap().clone();
        let hex = psmdcp.strip_prefix("package/services/metadata/core-properties/").unwrap().strip_suffix(".psmdcp");
        assert!(hex.is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())), "{psmdcp}");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "entries are written sorted");
        assert_eq!(
            names,
            ["App.nuspec", "[Content_Types].xml", "_rels/.rels", "lib/netstandard2.0/App.dll", psmdcp.as_str()]
        );
        let types = entry(&nupkg, "[Content_Types].xml");
        for ext in ["dll", "nuspec", "rels", "psmdcp"] {
            assert!(types.contains(&format!("<Default Extension=\"{ext}\"")), "{ext}: {types}");
        }
        let rels = entry(&nupkg, "_rels/.rels");
        assert!(rels.contains("Target=\"/App.nuspec\""), "{rels}");
        assert!(rels.contains(&format!("Target=\"/{psmdcp}\"")), "{rels}");
        let core = entry(&nupkg, &psmdcp);
        assert!(core.contains("<dc:identifier>App</dc:identifier><version>1.2.3</version>"), "{core}");
        assert!(core.contains("<keywords>app tool</keywords>"), "{core}");
        let manifest = entry(&nupkg, "App.nuspec");
        assert!(manifest.contains("<version>1.2.3</version>") && !manifest.contains("<files>"), "{manifest}");
        assert!(!manifest.contains("SymbolsPackage"));

        let names = entries(&snupkg);
        assert_eq!(
            names.iter().filter(|n| !opc::is_package_part(n)).collect::<Vec<_>>(),
            ["lib/netstandard2.0/App.pdb"]
        );
        assert!(entry(&snupkg, "App.nuspec").contains("<packageType name=\"SymbolsPackage\" />"));
        assert!(entry(&snupkg, "[Content_Types].xml").contains("Extension=\"pdb\""));
        // Nothing else was left behind: no temp files.
        assert_eq!(tree(&dir.path().join("dist/nuget")), ["", "App.1.2.3.nupkg", "App.1.2.3.snupkg"]);
    }

    #[test]
    fn legacy_and_none() {
        let (dir, project) = fixture("symbols = \"legacy\"\n");
        pack(&project, &PackOptions::default()).unwrap();
        let out = dir.path().join("dist/nuget");
        assert_eq!(
            entries(&out.join("App.1.2.3.symbols.nupkg"))
                .into_iter()
                .filter(|n| !opc::is_package_part(n))
                .collect::<Vec<_>>(),
            ["lib/netstandard2.0/App.dll", "lib/netstandard2.0/App.pdb", "src/App.cs"]
        );
        let main: Vec<String> =
            entries(&out.join("App.1.2.3.nupkg")).into_iter().filter(|n| !opc::is_package_part(n)).collect();
        assert_eq!(main, ["lib/netstandard2.0/App.dll"]);
        assert!(!entry(&out.join("App.1.2.3.symbols.nupkg"), "App.nuspec").contains("SymbolsPackage"));

        let (dir, project) = fixture("symbols = \"none\"\n");
        let outcome = pack(&project, &PackOptions::default()).unwrap();
        assert!(outcome.packages[0].symbols.is_none());
        assert_eq!(
            outcome.human(),
            [format!("packed dist/nuget/App.1.2.3.nupkg ({})", size(outcome.packages[0].size))]
        );
        let main: Vec<String> = entries(&dir.path().join("dist/nuget/App.1.2.3.nupkg"))
            .into_iter()
            .filter(|n| !opc::is_package_part(n))
            .collect();
        assert_eq!(main, ["lib/netstandard2.0/App.dll", "lib/netstandard2.0/App.pdb", "src/App.cs"]);
    }

    #[test]
    fn deterministic() {
        let (dir, project) = fixture("");
        let first = pack(&project, &PackOptions::default()).unwrap();
        let out = dir.path().join("dist/nuget");
        let bytes = |name: &str| fs::read(out.join(name)).unwrap();
        let (nupkg, snupkg) = (bytes("App.1.2.3.nupkg"), bytes("App.1.2.3.snupkg"));
        // New mtimes, a different thread count, a fresh output directory: same bytes.
        let dll = dir.path().join("nuget/lib/netstandard2.0/App.dll");
        File::options().write(true).open(&dll).unwrap().set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        fs::remove_dir_all(&out).unwrap();
        let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let second = single.install(|| pack(&project, &PackOptions::default())).unwrap();
        assert!(bytes("App.1.2.3.nupkg") == nupkg && bytes("App.1.2.3.snupkg") == snupkg);
        assert_eq!(first.packages[0].sha512, second.packages[0].sha512);
        // A changed input changes the package.
        fs::write(&dll, b"MZ changed").unwrap();
        let third = pack(&project, &PackOptions::default()).unwrap();
        assert_ne!(first.packages[0].sha512, third.packages[0].sha512);
    }

    #[test]
    fn dry_run_writes_nothing_and_reports_the_same_digest() {
        let (dir, project) = fixture("");
        let before = tree(dir.path());
        let dry = pack(&project, &PackOptions { dry_run: true, ..PackOptions::default() }).unwrap();
        assert_eq!(tree(dir.path()), before);
        assert!(dry.human()[1].starts_with("dry run: would pack dist/nuget/App.1.2.3.nupkg ("), "{:?}", dry.human());
        let real = pack(&project, &PackOptions::default()).unwrap();
        assert_eq!(dry.packages[0].sha512, real.packages[0].sha512);
        assert_eq!(dry.packages[0].size, real.packages[0].size);
    }

    #[test]
    fn bad_input_writes_nothing() {
        let (dir, project) = fixture("");
        fs::write(dir.path().join("nuget/lib/netstandard2.0/App.pdb"), WINDOWS_PDB).unwrap();
        let before = tree(dir.path());
        let err = pack(&project, &PackOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.location().unwrap().file, Path::new("nuget/lib/netstandard2.0/App.pdb"));
        assert!(err.to_string().contains("Windows PDB"), "{err}");
        assert_eq!(tree(dir.path()), before, "no dist/ directory, no temp file");

        fs::write(dir.path().join("nuget/lib/netstandard2.0/App.pdb"), PDB).unwrap();
        fs::rename(
            dir.path().join("nuget/lib/netstandard2.0/App.dll"),
            dir.path().join("nuget/lib/netstandard2.0/Other.dll"),
        )
        .unwrap();
        let err = pack(&project, &PackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no matching DLL `lib/netstandard2.0/App.dll`"), "{err}");
    }

    #[test]
    fn configuration_errors_point_at_castoff_toml() {
        let (dir, project) = fixture("symbols = \"snupkg\"\n");
        fs::remove_file(dir.path().join("nuget/lib/netstandard2.0/App.pdb")).unwrap();
        let err = pack(&project, &PackOptions::default()).unwrap_err();
        let location = err.location().unwrap();
        assert_eq!((location.line, location.key.as_deref()), (Some(3), Some("package[0].symbols")));
        assert!(err.hint().unwrap().contains("symbols = \"none\""), "{err}");

        fs::remove_file(dir.path().join("nuget/App.nuspec")).unwrap();
        let err = pack(&project, &PackOptions::default()).unwrap_err();
        let location = err.location().unwrap();
        assert_eq!(location.file, Path::new("castoff.toml"));
        assert_eq!((location.line, location.key.as_deref()), (Some(2), Some("package[0].nuspec")));
        assert!(err.to_string().contains("`nuget/App.nuspec` does not exist"), "{err}");
    }

    #[test]
    fn existing_finds_and_checks_what_pack_wrote() {
        let (dir, project) = fixture("");
        assert!(existing(&project).unwrap().is_none());
        let packed = pack(&project, &PackOptions::default()).unwrap();
        let found = existing(&project).unwrap().expect("packed");
        assert_eq!(found.packages[0].sha512, None, "found packages are hashed only when a feed needs it");
        assert!(packed.packages[0].sha512.is_some());
        assert_eq!(found.packages[0].nupkg, packed.packages[0].nupkg);
        // A snupkg swapped for a broken file is an error, not "missing".
        fs::write(dir.path().join("dist/nuget/App.1.2.3.snupkg"), b"not a zip").unwrap();
        let err = existing(&project).expect_err("a broken snupkg is an error");
        assert!(err.to_string().contains("dist/nuget/App.1.2.3.snupkg"), "{err}");
        fs::remove_file(dir.path().join("dist/nuget/App.1.2.3.snupkg")).unwrap();
        assert!(existing(&project).unwrap().is_none());
        // Another version's packages do not count.
        pack(&project, &PackOptions::default()).unwrap();
        fs::write(dir.path().join("VERSION"), "1.2.4\n").unwrap();
        assert!(existing(&project).unwrap().is_none());
    }

    #[test]
    fn inline_metadata() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("VERSION"), "2.0.0-rc.1\n").unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join("bin/Tool.dll"), b"MZ").unwrap();
        fs::write(
            dir.path().join("castoff.toml"),
            "[[package]]\nid = \"Contoso.Tool\"\nauthors = \"Contoso\"\ndescription = \"A tool\"\nlicense = \"MIT\"\n\
             symbols = \"none\"\nfiles = [{ src = \"bin/*.dll\", target = \"lib/net8.0\" }]\n",
        )
        .unwrap();
        let project = Project::open(dir.path(), None).unwrap();
        let outcome = pack(&project, &PackOptions::default()).unwrap();
        let nupkg = dir.path().join("dist/nuget/Contoso.Tool.2.0.0-rc.1.nupkg");
        assert_eq!(outcome.packages[0].nupkg, nupkg);
        assert!(entries(&nupkg).contains(&"lib/net8.0/Tool.dll".to_string()));
        let manifest = entry(&nupkg, "Contoso.Tool.nuspec");
        assert!(manifest.contains("<license type=\"expression\">MIT</license>"), "{manifest}");
        assert!(manifest.contains("<version>2.0.0-rc.1</version>"), "{manifest}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(12_595), "12.3 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn file_names() {
        let v = NugetVersion::parse("1.2.3-rc.1").unwrap();
        assert_eq!(package_file("App", &v, None), "App.1.2.3-rc.1.nupkg");
        assert_eq!(package_file("App", &v, Some(SymbolsKind::Snupkg)), "App.1.2.3-rc.1.snupkg");
        assert_eq!(package_file("App", &v, Some(SymbolsKind::Legacy)), "App.1.2.3-rc.1.symbols.nupkg");
    }
}
