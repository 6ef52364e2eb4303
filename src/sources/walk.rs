//! Globs → the list of tracked files, never following a symlink.
//!
//! Each include glob is walked only from its literal directory prefix (`src/**/*.py`
//! walks `src/`, `app.py` is a single `lstat`), so tracking two files in a huge
//! repository costs two system calls. Every directory visited is recorded with its
//! stamp: an unchanged directory mtime proves no entry was added, removed or renamed in
//! it, which lets the stat cache skip the walk entirely next time.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::stamp::{Kind, Stamp};
use crate::config::VersionConfig;
use crate::error::{Error, Location, Result};

/// Top-level directories never tracked: git's own data and castoff's (`.git` is
/// skipped at any depth, for submodules).
const ALWAYS_EXCLUDED_DIRS: &[&str] = &[".git", ".castoff"];

/// Compiled `[version] sources` and `exclude`.
#[derive(Debug)]
pub struct SourceSet {
    patterns: Vec<String>,
    include: GlobSet,
    exclude: GlobSet,
    /// Directories an `exclude` glob of the form `dir/**` removes whole; not descended.
    pruned_dirs: Vec<String>,
    /// The VERSION file itself, which must never call for its own bump.
    version_file: String,
}

/// The walk's result: tracked files and visited directories, both with stamps.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: BTreeMap<String, Stamp>,
    pub dirs: BTreeMap<String, Stamp>,
    /// Include patterns that matched no file (the user gets a warning).
    pub unmatched: Vec<String>,
    /// Paths passed over, with the reason (symlinked directories, non-UTF-8 names).
    pub skipped: Vec<String>,
}

fn glob(pattern: &str) -> std::result::Result<Glob, globset::Error> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

impl SourceSet {
    pub fn new(config: &VersionConfig, config_file: &Path) -> Result<SourceSet> {
        let compile = |key: &str, patterns: &[String], expand_dirs: bool| -> Result<GlobSet> {
            let mut builder = GlobSetBuilder::new();
            for pattern in patterns {
                let compiled = glob(pattern).map_err(|e| {
                    Error::invalid(
                        Location::file(config_file).with_key(key),
                        format!("`{pattern}` is not a valid glob: {}", e.kind()),
                        "use * within a directory and ** across directories",
                    )
                })?;
                builder.add(compiled);
                if expand_dirs && !has_glob_meta(pattern) {
                    // A plain directory name tracks everything under it.
                    if let Ok(g) = glob(&format!("{}/**", pattern.trim_end_matches('/'))) {
                        builder.add(g);
                    }
                }
            }
            builder.build().map_err(|e| {
                Error::invalid(
                    Location::file(config_file).with_key(key),
                    e.to_string(),
                    "simplify the globs",
                )
            })
        };
        let include = compile("version.sources", &config.sources, true)?;
        let exclude = compile("version.exclude", &config.exclude, true)?;
        let pruned_dirs = config
            .exclude
            .iter()
            .filter_map(|p| {
                let dir = p.strip_suffix("/**").unwrap_or(p);
                (!has_glob_meta(dir)).then(|| crate::config::normalise(dir))
            })
            .collect();
        Ok(SourceSet {
            patterns: config.sources.clone(),
            include,
            exclude,
            pruned_dirs,
            version_file: config.file.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn tracks(&self, path: &str) -> bool {
        path != self.version_file && self.include.is_match(path) && !self.exclude.is_match(path)
    }

    fn prunes(&self, dir: &str) -> bool {
        let name = dir.rsplit('/').next().unwrap_or(dir);
        name == ".git"
            || ALWAYS_EXCLUDED_DIRS.contains(&dir)
            || self.pruned_dirs.iter().any(|p| p == dir)
    }

    /// Enumerate the tracked files under `root`.
    pub fn list(&self, root: &Path) -> Result<Listing> {
        let mut listing = Listing::default();
        let mut matched = vec![false; self.patterns.len()];
        let mut walk_roots: Vec<String> = Vec::new();
        for (index, pattern) in self.patterns.iter().enumerate() {
            let prefix = literal_prefix(pattern);
            if prefix == crate::config::normalise(pattern) {
                // A literal path: one lstat instead of a walk.
                match self.lstat_inside(root, &prefix, &mut listing)? {
                    Some(stamp) if stamp.kind == Kind::Dir => walk_roots.push(prefix),
                    Some(stamp) => {
                        if self.tracks(&prefix) {
                            listing.files.insert(prefix.clone(), stamp);
                            matched[index] = true;
                        }
                    }
                    None => {}
                }
            } else {
                walk_roots.push(prefix);
            }
        }
        for start in outermost(walk_roots) {
            self.walk(root, &start, &mut listing)?;
        }
        for (index, pattern) in self.patterns.iter().enumerate() {
            if !matched[index] {
                let Ok(single) = glob(pattern) else { continue };
                let single = single.compile_matcher();
                let dir_prefix = format!("{}/", crate::config::normalise(pattern));
                let hit = listing.files.keys().any(|path| {
                    single.is_match(path)
                        || (!has_glob_meta(pattern) && path.starts_with(&dir_prefix))
                });
                if !hit {
                    listing.unmatched.push(pattern.clone());
                }
            }
        }
        Ok(listing)
    }

    /// `lstat` a relative path after checking that no directory on the way is a symlink
    /// (which could lead outside the project). Records the parent directory's stamp:
    /// the file appearing or disappearing changes it.
    fn lstat_inside(&self, root: &Path, rel: &str, listing: &mut Listing) -> Result<Option<Stamp>> {
        let mut so_far = String::new();
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let parent = so_far.clone();
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            let full = root.join(&so_far);
            let meta = match fs::symlink_metadata(&full) {
                Ok(meta) => meta,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    self.record_dir(root, &parent, listing)?;
                    return Ok(None);
                }
                Err(e) => return Err(Error::io("inspect", &full, e)),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() && !last {
                listing.skipped.push(format!(
                    "{so_far}: a symlinked directory; castoff never follows symlinks"
                ));
                return Ok(None);
            }
            if last {
                self.record_dir(root, &parent, listing)?;
                return Ok(Some(Stamp::of(&meta)));
            }
        }
        Ok(None)
    }

    fn record_dir(&self, root: &Path, rel: &str, listing: &mut Listing) -> Result<()> {
        if listing.dirs.contains_key(rel) {
            return Ok(());
        }
        let full = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        match fs::symlink_metadata(&full) {
            Ok(meta) => {
                listing.dirs.insert(rel.to_string(), Stamp::of(&meta));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("inspect", &full, e)),
        }
    }

    fn walk(&self, root: &Path, start: &str, listing: &mut Listing) -> Result<()> {
        // The start directory itself must be reached without passing a symlink.
        if !start.is_empty() {
            match self.lstat_inside(root, start, listing)? {
                Some(stamp) if stamp.kind == Kind::Dir => {}
                Some(stamp) if stamp.kind == Kind::Symlink => {
                    listing.skipped.push(format!(
                        "{start}: a symlinked directory; castoff never follows symlinks"
                    ));
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
        let base = if start.is_empty() {
            root.to_path_buf()
        } else {
            root.join(start)
        };
        let walker = walkdir::WalkDir::new(&base)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by_file_name();
        let mut entries = walker.into_iter();
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| base.clone());
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| io::Error::other("filesystem loop"));
                    return Err(Error::io("read directory", &path, source));
                }
            };
            let Ok(relative) = entry.path().strip_prefix(root) else {
                continue;
            };
            let Some(rel) = relative.to_str().map(|s| s.replace('\\', "/")) else {
                listing
                    .skipped
                    .push(format!("{}: not a UTF-8 path", relative.display()));
                continue;
            };
            if rel.contains('\n') {
                listing
                    .skipped
                    .push(format!("{rel:?}: a newline in the name"));
                continue;
            }
            let meta = entry.metadata().map_err(|e| {
                let source = e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("metadata"));
                Error::io("inspect", entry.path(), source)
            })?;
            if entry.file_type().is_dir() {
                if !rel.is_empty() && self.prunes(&rel) {
                    entries.skip_current_dir();
                    continue;
                }
                listing.dirs.insert(rel, Stamp::of(&meta));
            } else if self.tracks(&rel) {
                listing.files.insert(rel, Stamp::of(&meta));
            }
        }
        Ok(())
    }
}

fn has_glob_meta(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{', '\\'])
}

/// The directory part of a glob before its first wildcard: `src/**/*.py` → `src`,
/// `*.py` → ``, and a literal path is returned whole.
fn literal_prefix(pattern: &str) -> String {
    let normal = crate::config::normalise(pattern);
    if !has_glob_meta(&normal) {
        return normal;
    }
    normal
        .split('/')
        .take_while(|part| !has_glob_meta(part))
        .collect::<Vec<_>>()
        .join("/")
}

/// Drop walk roots inside other walk roots, so each directory is walked once.
fn outermost(mut roots: Vec<String>) -> Vec<String> {
    roots.sort();
    roots.dedup();
    let mut kept: Vec<String> = Vec::new();
    for root in roots {
        let inside = kept
            .iter()
            .any(|k| k.is_empty() || root == *k || root.starts_with(&format!("{k}/")));
        if !inside {
            kept.push(root);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(literal_prefix("src/**/*.py"), "src");
        assert_eq!(literal_prefix("*.py"), "");
        assert_eq!(literal_prefix("./app.py"), "app.py");
        assert_eq!(literal_prefix("a/b/c*.txt"), "a/b");
        assert_eq!(
            outermost(vec![
                "src/a".into(),
                "src".into(),
                "lib".into(),
                "src".into()
            ]),
            ["lib", "src"]
        );
        assert_eq!(outermost(vec!["src".into(), "".into()]), [""]);
    }
}
