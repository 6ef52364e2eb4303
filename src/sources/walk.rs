//! Globs → the list of tracked files, never following a symlink.
//!
//! Each include glob is walked only from its literal directory prefix (`src/**/*.py`
//! walks `src/`, `app.py` is a single `lstat`), so tracking two files in a huge
//! repository costs two system calls. Every directory visited is recorded with its
//! stamp: an unchanged directory mtime proves no entry was added, removed or renamed in
//! it, which lets the stat cache skip the walk entirely next time.
//!
//! The walk lists each directory through an open fd and stats entries relative to it,
//! so the kernel never re-resolves a long path, and subdirectories are walked in
//! parallel. Only directories and tracked files are stat'ed; `d_type` sorts the rest.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use std::os::fd::{AsFd, OwnedFd};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};

use super::stamp::{Kind, Stamp};
use super::tracked::TrackedFiles;
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
    GlobBuilder::new(pattern).literal_separator(true).backslash_escape(true).build()
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
                Error::invalid(Location::file(config_file).with_key(key), e.to_string(), "simplify the globs")
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
        name == ".git" || ALWAYS_EXCLUDED_DIRS.contains(&dir) || self.pruned_dirs.iter().any(|p| p == dir)
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
                    Some(stamp) if self.tracks(&prefix) => {
                        listing.files.insert(prefix.clone(), stamp);
                        matched[index] = true;
                    }
                    _ => {}
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
                let hit = listing
                    .files
                    .keys()
                    .any(|path| single.is_match(path) || (!has_glob_meta(pattern) && path.starts_with(&dir_prefix)));
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
                Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => {
                    self.record_dir(root, &parent, listing)?;
                    return Ok(None);
                }
                Err(e) => return Err(Error::io("inspect", &full, e)),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() && !last {
                listing.skipped.push(format!("{so_far}: a symlinked directory; castoff never follows symlinks"));
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
        let full = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
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
        let stamp = if start.is_empty() {
            self.record_dir(root, "", listing)?;
            match listing.dirs.get("") {
                Some(stamp) => *stamp,
                None => return Ok(()),
            }
        } else {
            match self.lstat_inside(root, start, listing)? {
                Some(stamp) if stamp.kind == Kind::Dir => stamp,
                Some(stamp) if stamp.kind == Kind::Symlink => {
                    listing.skipped.push(format!("{start}: a symlinked directory; castoff never follows symlinks"));
                    return Ok(());
                }
                _ => return Ok(()),
            }
        };
        let full = if start.is_empty() { root.to_path_buf() } else { root.join(start) };
        let fd = open_dir(CWD, &full).map_err(|e| Error::io("open directory", &full, e))?;
        let found = self.walk_dir(root, fd, start.to_string(), stamp)?;
        listing.files.extend(found.files);
        listing.dirs.extend(found.dirs);
        listing.skipped.extend(found.skipped);
        Ok(())
    }

    /// List one directory through its fd, stat entries relative to it (no path
    /// re-resolution), and descend into subdirectories in parallel.
    fn walk_dir(&self, root: &Path, fd: OwnedFd, rel: String, stamp: Stamp) -> Result<Found> {
        let full = || root.join(&rel);
        let mut found = Found::default();
        let mut subdirs = Vec::new();
        let dir = Dir::read_from(&fd).map_err(|e| Error::io("read directory", &full(), e.into()))?;
        for entry in dir {
            let entry = entry.map_err(|e| Error::io("read directory", &full(), e.into()))?;
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                found.skipped.push(format!(
                    "{}: not a UTF-8 name",
                    full().join(String::from_utf8_lossy(bytes).as_ref()).display()
                ));
                continue;
            };
            let child = if rel.is_empty() { text.to_string() } else { format!("{rel}/{text}") };
            if text.contains('\n') {
                found.skipped.push(format!("{child:?}: a newline in the name"));
                continue;
            }
            let kind = entry.file_type();
            let is_dir = kind == FileType::Directory;
            // Only directories and tracked files need a stat; d_type says which is which.
            if !(is_dir || kind == FileType::Unknown || self.tracks(&child)) {
                continue;
            }
            let stat = statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Error::io("inspect", &root.join(&child), e.into()))?;
            let child_stamp = Stamp::from_stat(&stat);
            match child_stamp.kind {
                Kind::Dir if !self.prunes(&child) => subdirs.push((child, name.to_owned(), child_stamp)),
                Kind::Dir => {}
                Kind::File | Kind::Symlink if self.tracks(&child) => found.files.push((child, child_stamp)),
                Kind::Other if self.tracks(&child) => {
                    found.skipped.push(format!("{child}: not a regular file (device, socket or fifo)"))
                }
                _ => {}
            }
        }
        found.dirs.push((rel, stamp));
        let children: Vec<Result<Found>> = subdirs
            .into_par_iter()
            .map(|(child, name, child_stamp)| {
                let child_fd =
                    open_dir(&fd, name.as_c_str()).map_err(|e| Error::io("open directory", &root.join(&child), e))?;
                self.walk_dir(root, child_fd, child, child_stamp)
            })
            .collect();
        for child in children {
            let child = child?;
            found.files.extend(child.files);
            found.dirs.extend(child.dirs);
            found.skipped.extend(child.skipped);
        }
        Ok(found)
    }
}

/// What one directory subtree contributed to a walk.
#[derive(Default)]
struct Found {
    files: Vec<(String, Stamp)>,
    dirs: Vec<(String, Stamp)>,
    skipped: Vec<String>,
}

/// The files whose stamps moved since the cache recorded them (or were too fresh to
/// trust), with their new stamps, provided every directory in `dirs` still has its
/// recorded stamp (so no entry can have appeared or gone). `None` means a walk is
/// needed: a directory changed or was too fresh to trust, or a file vanished.
///
/// Each parallel chunk keeps the fd of the directory it is in and stats basenames
/// relative to it; the files are sorted by path, so that fd changes rarely.
pub fn restat(
    root: &Path,
    dirs: &[(String, Stamp)],
    taken_at_ns: i64,
    files: &TrackedFiles,
) -> Option<Vec<(usize, Stamp)>> {
    let root_fd = open_path(CWD, root).ok()?;
    let stat_rel = |at: &OwnedFd, rel: &str| -> Option<Stamp> {
        let rel = if rel.is_empty() { "." } else { rel };
        statat(at, rel, AtFlags::SYMLINK_NOFOLLOW).ok().map(|s| Stamp::from_stat(&s))
    };
    let dirs_unchanged =
        dirs.par_iter().all(|(rel, old)| old.trustworthy(taken_at_ns) && stat_rel(&root_fd, rel).as_ref() == Some(old));
    if !dirs_unchanged {
        return None;
    }
    let chunk = (files.len() / (rayon::current_num_threads() * 4)).max(512);
    let starts: Vec<usize> = (0..files.len()).step_by(chunk).collect();
    let moved: Option<Vec<Vec<(usize, Stamp)>>> = starts
        .into_par_iter()
        .map(|start| {
            let mut current: Option<(&str, OwnedFd)> = None;
            let mut moved = Vec::new();
            for index in start..(start + chunk).min(files.len()) {
                let path = files.path(index);
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                if current.as_ref().map(|(d, _)| *d) != Some(dir) {
                    let at = if dir.is_empty() { "." } else { dir };
                    current = Some((dir, open_path(&root_fd, at).ok()?));
                }
                let (_, fd) = current.as_ref()?;
                let fresh = stat_rel(fd, name)?;
                let cached = files.stamp(index);
                if fresh != cached || !cached.trustworthy(taken_at_ns) {
                    moved.push((index, fresh));
                }
            }
            Some(moved)
        })
        .collect();
    Some(moved?.into_iter().flatten().collect())
}

/// An `O_PATH` handle on a directory: enough to stat relative to, cheaper than opening.
fn open_path<P: rustix::path::Arg>(at: impl AsFd, path: P) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty()).map_err(io::Error::from)
}

/// Open a directory for listing, refusing to follow a symlink in its last component.
fn open_dir<P: rustix::path::Arg>(at: impl AsFd, path: P) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    openat(at, path, flags, Mode::empty()).map_err(io::Error::from)
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
    normal.split('/').take_while(|part| !has_glob_meta(part)).collect::<Vec<_>>().join("/")
}

/// Drop walk roots inside other walk roots, so each directory is walked once.
fn outermost(mut roots: Vec<String>) -> Vec<String> {
    roots.sort();
    roots.dedup();
    let mut kept: Vec<String> = Vec::new();
    for root in roots {
        let inside = kept.iter().any(|k| k.is_empty() || root == *k || root.starts_with(&format!("{k}/")));
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
        assert_eq!(outermost(vec!["src/a".into(), "src".into(), "lib".into(), "src".into()]), ["lib", "src"]);
        assert_eq!(outermost(vec!["src".into(), "".into()]), [""]);
    }
}
