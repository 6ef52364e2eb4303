//! What goes into a package: `files = [{ src, target, exclude }]` or a nuspec's `<file>`
//! elements resolved to files on disk and their paths inside the package, the way
//! `nuget pack` places them:
//!
//! - a literal `src` goes into the `target` directory, or becomes `target` itself when
//!   `target` has the same extension (`<file src="a.css" target="content/b.css"/>`);
//! - `*` keeps only the file name; `**` (or a `src` ending in `/`) keeps the path below
//!   the part of `src` before the first wildcard (`lib/**` + target `lib` keeps
//!   `lib/netstandard2.0/App.dll`);
//! - wildcards skip dot-files and dot-directories (NuGet's default excludes);
//! - `exclude` globs are relative to the same directory as `src`.
//!
//! Only `*` and `**` are wildcards, as in NuGet; `?`, `[` and `{` are literal. Every
//! file must stay inside the project (symlinks included), and two files may not land on
//! the same package path (NuGet compares them case-insensitively).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use super::spec::FileSpec;
use crate::config::{check_inside_project, normalise};
use crate::error::{Error, IoContext, Problem, Result};

/// ZIP without ZIP64 stores sizes in 32 bits; castoff does not write ZIP64 (nuget.org
/// takes packages up to 250 MB anyway).
pub const MAX_FILE_SIZE: u64 = u32::MAX as u64 - 1;

/// One file to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackFile {
    /// Absolute path on disk.
    pub source: PathBuf,
    /// Project-relative path, for messages.
    pub shown: String,
    /// Path inside the package, `/`-separated, not yet escaped for OPC.
    pub target: String,
    pub size: u64,
}

impl PackFile {
    /// The package path's extension, lowercased ("" for none).
    pub fn extension(&self) -> String {
        extension(&self.target).to_ascii_lowercase()
    }
}

/// The extension of the last segment of a `/`-separated path, without the dot.
pub fn extension(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rfind('.') {
        Some(dot) if dot > 0 => &name[dot + 1..],
        _ => "",
    }
}

/// A `target` as a package path: `\` read as `/`, empty and `.` segments dropped, never
/// climbing out with `..`. "" is the package root.
pub fn package_target(text: &str) -> std::result::Result<String, Problem> {
    let hint = "give a directory inside the package, e.g. \"lib/netstandard2.0\"";
    let text = text.replace('\\', "/");
    let parts: Vec<&str> = text.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return Err(Problem::new(format!("the target `{text}` climbs out of the package with `..`"), hint));
    }
    if let Some(bad) = text.chars().find(|c| matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()) {
        return Err(Problem::new(format!("the target `{text}` contains `{bad}`"), hint));
    }
    Ok(parts.join("/"))
}

/// Resolve `specs` (their `src` relative to `base`, a project-relative directory) to the
/// files to pack, sorted by package path.
pub fn resolve(root: &Path, base: &str, specs: &[FileSpec]) -> Result<Vec<PackFile>> {
    let real_root = fs::canonicalize(root).with_path("resolve", root)?;
    let mut files: Vec<(PackFile, usize)> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        for file in resolve_one(root, &real_root, base, spec)? {
            files.push((file, index));
        }
    }
    let mut seen: BTreeMap<String, (PackFile, usize)> = BTreeMap::new();
    for (file, index) in files {
        check_reserved(&file, &specs[index])?;
        match seen.get(&file.target.to_lowercase()) {
            // The same file reached twice (`lib/**` and `lib/*.dll`): once is enough.
            Some((first, _)) if first.source == file.source && first.target == file.target => {}
            Some((first, _)) => {
                return Err(Error::invalid(
                    specs[index].at.clone(),
                    format!("`{}` and `{}` would both be packed as `{}`", first.shown, file.shown, file.target),
                    "give one of them another target, or exclude it",
                ))
            }
            None => {
                seen.insert(file.target.to_lowercase(), (file, index));
            }
        }
    }
    let mut files: Vec<PackFile> = seen.into_values().map(|(file, _)| file).collect();
    files.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(files)
}

/// The OPC parts castoff writes itself; a file may not take their place.
fn check_reserved(file: &PackFile, spec: &FileSpec) -> Result<()> {
    let lower = file.target.to_lowercase();
    let reserved = lower.starts_with("_rels/")
        || lower.starts_with("package/services/metadata/")
        || lower == "[content_types].xml"
        || (!lower.contains('/') && lower.ends_with(".nuspec"));
    match reserved {
        true => Err(Error::invalid(
            spec.at.clone(),
            format!("`{}` would be packed as `{}`, which is one of the package's own parts", file.shown, file.target),
            "exclude it, or give it another target",
        )),
        false => Ok(()),
    }
}

fn resolve_one(root: &Path, real_root: &Path, base: &str, spec: &FileSpec) -> Result<Vec<PackFile>> {
    let relative_to = match base {
        "" => "the project root".to_string(),
        base => format!("`{base}/`"),
    };
    let fail = |problem: String, hint: String| Error::invalid(spec.at.clone(), problem, hint);
    let src = spec.src.replace('\\', "/");
    let joined = join(base, &src);
    check_inside_project(&joined).map_err(|problem| {
        fail(problem, format!("`{src}` is relative to {relative_to}; keep it inside the project"))
    })?;
    let directory_search = src.ends_with('/');
    let pattern = match directory_search {
        true => join(&normalise(&joined), "**"),
        false => normalise(&joined),
    };
    let exclude = exclude_set(base, &spec.exclude).map_err(|(problem, hint)| fail(problem, hint))?;

    if !pattern.contains('*') {
        return literal(root, real_root, &pattern, &src, spec, &exclude, &relative_to);
    }
    let first_star = pattern.find('*').unwrap_or(0);
    let search_dir = pattern[..first_star].rfind('/').map_or("", |slash| &pattern[..slash]);
    let recursive = pattern.contains("**");
    let matcher = glob(&pattern).map_err(|(problem, hint)| fail(problem, hint))?;
    let mut walk = walkdir::WalkDir::new(root.join(search_dir)).follow_links(false).sort_by_file_name();
    if !recursive {
        let below = pattern[search_dir.len()..].trim_start_matches('/').split('/').count();
        walk = walk.max_depth(below);
    }
    let mut found = Vec::new();
    let entries =
        walk.into_iter().filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            // The search directory does not exist: nothing matches (reported below).
            Err(e) if e.depth() == 0 && e.io_error().is_some_and(|e| e.kind() == io::ErrorKind::NotFound) => break,
            Err(e) => {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.join(search_dir));
                return Err(Error::io("read directory", &path, e.into()));
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let rel = relative(root, entry.path())?;
        if !matcher.is_match(&rel) || exclude.is_match(&rel) {
            continue;
        }
        let Some(size) = regular_file(real_root, entry.path(), &rel, spec)? else { continue };
        let below = match recursive {
            true => rel[search_dir.len()..].trim_start_matches('/').to_string(),
            false => rel.rsplit('/').next().unwrap_or(&rel).to_string(),
        };
        found.push(PackFile {
            source: entry.path().to_path_buf(),
            target: join(&spec.target, &below),
            shown: rel,
            size,
        });
    }
    if found.is_empty() {
        return Err(fail(
            format!("`{src}` matches no file"),
            format!("`{src}` is relative to {relative_to}; build the files first, or fix the pattern"),
        ));
    }
    Ok(found)
}

fn literal(
    root: &Path,
    real_root: &Path,
    pattern: &str,
    src: &str,
    spec: &FileSpec,
    exclude: &GlobSet,
    relative_to: &str,
) -> Result<Vec<PackFile>> {
    let path = root.join(pattern);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::invalid(
                spec.at.clone(),
                format!("`{src}` is a directory"),
                format!("write `{}/**` to pack everything below it", src.trim_end_matches('/')),
            ))
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::invalid(
                spec.at.clone(),
                format!("`{src}` does not exist"),
                format!("`{src}` is relative to {relative_to}; build it first, or fix the path"),
            ))
        }
        Err(e) => return Err(Error::io("inspect", &path, e)),
    }
    if exclude.is_match(pattern) {
        return Ok(Vec::new());
    }
    let Some(size) = regular_file(real_root, &path, pattern, spec)? else {
        return Err(Error::invalid(spec.at.clone(), format!("`{src}` is not a regular file"), "name a file"));
    };
    let name = pattern.rsplit('/').next().unwrap_or(pattern);
    let source_extension = extension(name);
    let target = match !source_extension.is_empty() && extension(&spec.target).eq_ignore_ascii_case(source_extension) {
        true => spec.target.clone(),
        false => join(&spec.target, name),
    };
    Ok(vec![PackFile { source: path, shown: pattern.to_string(), target, size }])
}

/// The size of a regular file (or of the file a symlink inside the project points
/// to); `None` for anything else. Whatever leads out of the project is an error: a
/// symlink at the file itself, or at any directory on the way (`bin -> /elsewhere`), so
/// the path is always resolved and checked, not only when its last part is a link.
fn regular_file(real_root: &Path, path: &Path, rel: &str, spec: &FileSpec) -> Result<Option<u64>> {
    let resolved = fs::canonicalize(path).map_err(|_| {
        Error::invalid(spec.at.clone(), format!("`{rel}` is a broken symlink"), "fix or remove the link")
    })?;
    if !resolved.starts_with(real_root) {
        return Err(Error::invalid(
            spec.at.clone(),
            format!("`{rel}` resolves to {}, outside the project", resolved.display()),
            "castoff packs only files inside the project; copy the file in, or exclude the link",
        ));
    }
    let meta = fs::metadata(&resolved).with_path("inspect", &resolved)?;
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(Error::invalid(
            spec.at.clone(),
            format!("`{rel}` is {} bytes; castoff packs files below 4 GiB", meta.len()),
            "leave the file out of the package",
        ));
    }
    Ok(Some(meta.len()))
}

/// `root`-relative, `/`-separated path of a file found by the walk.
fn relative(root: &Path, path: &Path) -> Result<String> {
    let rel =
        path.strip_prefix(root).map_err(|_| Error::Internal(format!("{} is outside the walk", path.display())))?;
    let text = rel.to_str().ok_or_else(|| {
        Error::invalid(
            crate::error::Location::file(rel),
            "the file name is not UTF-8, which a package path must be",
            "rename the file",
        )
    })?;
    Ok(text.replace('\\', "/"))
}

fn join(dir: &str, rest: &str) -> String {
    match (dir.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => dir.to_string(),
        _ => format!("{}/{}", dir.trim_end_matches('/'), rest),
    }
}

/// A NuGet wildcard pattern as a glob: `*` and `**` only, everything else literal.
fn glob(pattern: &str) -> std::result::Result<GlobMatcher, (String, String)> {
    builder(pattern).map(|g| g.compile_matcher())
}

fn builder(pattern: &str) -> std::result::Result<globset::Glob, (String, String)> {
    let mut escaped = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if matches!(c, '?' | '[' | ']' | '{' | '}' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    GlobBuilder::new(&escaped).literal_separator(true).backslash_escape(true).build().map_err(|e| {
        (
            format!("`{pattern}` is not a valid pattern: {}", e.kind()),
            "use * within a directory and ** across directories".into(),
        )
    })
}

fn exclude_set(base: &str, patterns: &[String]) -> std::result::Result<GlobSet, (String, String)> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let pattern = pattern.replace('\\', "/");
        let joined = join(base, pattern.trim());
        check_inside_project(&joined)
            .map_err(|problem| (problem, "keep exclude patterns inside the project".into()))?;
        set.add(builder(&normalise(&joined))?);
    }
    set.build().map_err(|e| (format!("invalid exclude pattern: {e}"), "use * and ** only".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;

    fn spec(src: &str, target: &str, exclude: &[&str]) -> FileSpec {
        FileSpec {
            src: src.into(),
            target: target.into(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            at: Location::file("App.nuspec").with_line(7),
        }
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, file.as_bytes()).unwrap();
        }
        dir
    }

    fn targets(root: &Path, base: &str, specs: &[FileSpec]) -> Vec<String> {
        resolve(root, base, specs).unwrap().into_iter().map(|f| f.target).collect()
    }

    #[test]
    fn nuget_placement_rules() {
        let dir = tree(&[
            "nuget/lib/netstandard2.0/App.dll",
            "nuget/lib/netstandard2.0/App.pdb",
            "nuget/lib/netstandard2.0/App.xml",
            "nuget/lib/net6.0/App.dll",
            "nuget/lib/.hidden/x.dll",
            "nuget/readme.md",
            "bin/App.dll",
            "bin/sub/Other.dll",
        ]);
        let root = dir.path();
        assert_eq!(
            targets(root, "nuget", &[spec("lib\\**", "lib", &["**/*.xml"])]),
            ["lib/net6.0/App.dll", "lib/netstandard2.0/App.dll", "lib/netstandard2.0/App.pdb"]
        );
        assert_eq!(targets(root, "nuget", &[spec("../bin/*.dll", "lib/net6.0", &[])]), ["lib/net6.0/App.dll"]);
        assert_eq!(targets(root, "", &[spec("bin/", "tools", &[])]), ["tools/App.dll", "tools/sub/Other.dll"]);
        assert_eq!(targets(root, "nuget", &[spec("readme.md", "", &[])]), ["readme.md"]);
        assert_eq!(targets(root, "nuget", &[spec("readme.md", "docs/README.md", &[])]), ["docs/README.md"]);
        assert_eq!(targets(root, "nuget", &[spec("readme.md", "docs", &[])]), ["docs/readme.md"]);
        // The same file twice is packed once.
        assert_eq!(
            targets(root, "", &[spec("bin/*.dll", "lib", &[]), spec("bin/App.dll", "lib", &[])]),
            ["lib/App.dll"]
        );
    }

    #[test]
    fn bad_specs_are_explained() {
        let dir = tree(&["bin/App.dll", "bin/app.DLL", "x.nuspec"]);
        let root = dir.path();
        let err = |base: &str, specs: &[FileSpec]| resolve(root, base, specs).unwrap_err();
        let e = err("", &[spec("bin/Missing.dll", "lib", &[])]);
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert_eq!(e.location().unwrap().line, Some(7));
        let e = err("nuget", &[spec("*.dll", "lib", &[])]);
        assert!(e.to_string().contains("matches no file") && e.hint().unwrap().contains("`nuget/`"), "{e}");
        let e = err("", &[spec("../*.dll", "lib", &[])]);
        assert!(e.to_string().contains("climbs above"), "{e}");
        let e = err("", &[spec("bin", "lib", &[])]);
        assert!(e.hint().unwrap().contains("bin/**"), "{e}");
        let e = err("", &[spec("bin/*", "lib", &[])]);
        assert!(e.to_string().contains("both be packed as"), "{e}");
        let e = err("", &[spec("x.nuspec", "", &[])]);
        assert!(e.to_string().contains("package's own parts"), "{e}");
    }

    #[test]
    fn symlinks_out_of_the_project_are_refused() {
        let outside = tree(&["secret.dll"]);
        let dir = tree(&["bin/App.dll"]);
        std::os::unix::fs::symlink(outside.path().join("secret.dll"), dir.path().join("bin/secret.dll")).unwrap();
        let e = resolve(dir.path(), "", &[spec("bin/*.dll", "lib", &[])]).unwrap_err();
        assert!(e.to_string().contains("outside the project"), "{e}");
        std::os::unix::fs::symlink("App.dll", dir.path().join("bin/Alias.dll")).unwrap();
        let files = resolve(dir.path(), "", &[spec("bin/*.dll", "lib", &["bin/secret.dll"])]).unwrap();
        assert_eq!(files.iter().map(|f| f.target.as_str()).collect::<Vec<_>>(), ["lib/Alias.dll", "lib/App.dll"]);
    }

    #[test]
    fn targets_are_normalised() {
        assert_eq!(package_target("\\lib\\net6.0\\").unwrap(), "lib/net6.0");
        assert_eq!(package_target("./").unwrap(), "");
        assert!(package_target("lib/../..").is_err());
        assert!(package_target("C:/lib").is_err());
        assert_eq!(extension("lib/App.Core.dll"), "dll");
        assert_eq!(extension("lib/.hidden"), "");
        assert_eq!(extension("LICENSE"), "");
    }
}
