//! Globs → the list of tracked files, never following a symlink.
//!
//! Each include glob is walked only from its literal directory prefix (`src/**/*.py`
//! walks `src/`, `app.py` is a single `lstat`), so tracking two files in a huge
//! repository costs two system calls. Every directory visited, and every ancestor of a
//! literal path or walk root, is recorded with its stamp: an unchanged directory mtime
//! proves no entry was added, removed, renamed or swapped for a symlink in it, which lets
//! the stat cache skip the walk entirely next time.
//!
//! The walk lists each directory through an open fd and stats entries relative to it,
//! so the kernel never re-resolves a long path, and subdirectories are walked in
//! parallel. Only directories and tracked files are stat'ed; `d_type` sorts the rest.
//!
//! Files the repository's committed `.gitignore` files ignore are not tracked, so every
//! clone (which lacks them) agrees on the tracked set. Only committed `.gitignore` files
//! count: `.git/info/exclude` and `core.excludesFile` differ from one machine to the next,
//! and honouring them would make two clones of one commit disagree about a bump. Each
//! `.gitignore` read is recorded (with its stamp) next to the directories, so editing one
//! forces a walk.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use std::os::fd::{AsFd, OwnedFd};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use rayon::prelude::*;
use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};

use super::stamp::{Kind, Stamp};
use super::tracked::TrackedFiles;
use crate::config::VersionConfig;
use crate::error::{Error, Location, Result};

/// Directories never tracked, at any depth: git's data (and submodules' `.git` files)
/// and castoff's own (a nested project's cache and lock change on every run).
const PRIVATE_NAMES: &[&str] = &[".git", ".castoff"];

const GITIGNORE: &str = ".gitignore";

/// Compiled `[version] sources` and `exclude`.
#[derive(Debug)]
pub struct SourceSet {
    patterns: Vec<String>,
    include: GlobSet,
    exclude: GlobSet,
    /// Directories an `exclude` glob of the form `dir/**` removes whole; not descended.
    pruned_dirs: Vec<String>,
    /// Directory names an `exclude` glob of the form `**/name/**` removes wherever they
    /// are; not descended either.
    pruned_names: Vec<String>,
    /// The VERSION file itself, which must never call for its own bump: as configured,
    /// and where it resolves to when it is a symlink.
    version_files: Vec<String>,
}

/// The walk's result: tracked files and visited directories, both with stamps.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: BTreeMap<String, Stamp>,
    /// Directories visited or passed through, and the `.gitignore` files read; a change
    /// to any of them calls for a new walk.
    pub dirs: BTreeMap<String, Stamp>,
    /// Include patterns that matched no file (the user gets a warning).
    pub unmatched: Vec<String>,
    /// Paths passed over, with the reason (symlinked directories, non-UTF-8 names).
    pub skipped: Vec<String>,
}

fn glob(pattern: &str) -> std::result::Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).backslash_escape(true).build()
}

/// Whether `path` is inside (or is) git's or castoff's own data.
fn is_private(path: &str) -> bool {
    path.split('/').any(|part| PRIVATE_NAMES.contains(&part))
}

/// Why a name cannot be tracked: the baseline is one path per line.
fn unrecordable(name: &str) -> Option<&'static str> {
    if name.contains('\n') {
        Some("a newline in the name")
    } else if name.contains('\r') {
        Some("a carriage return in the name")
    } else {
        None
    }
}

/// What a symlink at `full` points to, for messages. Following it only to look.
fn describe_symlink(full: &Path) -> &'static str {
    match fs::metadata(full) {
        Ok(meta) if meta.is_dir() => "a symlink to a directory",
        Ok(_) => "a symlink to a file",
        Err(_) => "a dangling symlink",
    }
}

impl SourceSet {
    /// Compile the globs of `config`. `root` is the project root, to find where VERSION
    /// resolves when it is a symlink.
    pub fn new(root: &Path, config: &VersionConfig, config_file: &Path) -> Result<SourceSet> {
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
                (!has_glob_meta(dir)).then(|| dir.to_string())
            })
            .collect();
        let pruned_names = config
            .exclude
            .iter()
            .filter_map(|p| p.strip_prefix("**/")?.strip_suffix("/**"))
            .filter(|name| !has_glob_meta(name) && !name.contains('/'))
            .map(str::to_string)
            .collect();
        let mut version_files = vec![config.file.clone()];
        version_files.extend(resolve_inside(root, &config.file).filter(|real| *real != config.file));
        Ok(SourceSet { patterns: config.sources.clone(), include, exclude, pruned_dirs, pruned_names, version_files })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Where VERSION is, as configured and as resolved; part of the stat cache's key.
    pub fn version_files(&self) -> &[String] {
        &self.version_files
    }

    fn tracks(&self, path: &str) -> bool {
        !self.version_files.iter().any(|v| v == path)
            && !is_private(path)
            && self.include.is_match(path)
            && !self.exclude.is_match(path)
    }

    fn prunes(&self, dir: &str) -> bool {
        let name = dir.rsplit('/').next().unwrap_or(dir);
        PRIVATE_NAMES.contains(&name)
            || self.pruned_names.iter().any(|p| p == name)
            || self.pruned_dirs.iter().any(|p| p == dir)
    }

    /// Enumerate the tracked files under `root`.
    pub fn list(&self, root: &Path) -> Result<Listing> {
        let mut lister = Lister { set: self, root, listing: Listing::default(), above: None, ignores: HashMap::new() };
        lister.above = lister.ignores_above_root()?;
        let mut matched = vec![false; self.patterns.len()];
        let mut walk_roots: Vec<String> = Vec::new();
        for (index, pattern) in self.patterns.iter().enumerate() {
            let prefix = literal_prefix(pattern);
            if is_private(&prefix) {
                continue;
            }
            if let Some(reason) = unrecordable(&prefix) {
                lister.listing.skipped.push(format!("{prefix:?}: {reason}"));
                continue;
            }
            if prefix == *pattern {
                // A literal path: one lstat per component instead of a walk.
                match lister.lstat_inside(&prefix)? {
                    Some(stamp) if stamp.kind == Kind::Dir => walk_roots.push(prefix),
                    Some(stamp) if self.tracks(&prefix) => {
                        lister.listing.files.insert(prefix.clone(), stamp);
                        matched[index] = true;
                    }
                    _ => {}
                }
            } else {
                walk_roots.push(prefix);
            }
        }
        for start in outermost(walk_roots) {
            lister.walk(&start)?;
        }
        let mut listing = lister.listing;
        for (index, pattern) in self.patterns.iter().enumerate() {
            if !matched[index] {
                let Ok(single) = glob(pattern) else { continue };
                let single = single.compile_matcher();
                let dir_prefix = format!("{pattern}/");
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
}

/// One directory's committed `.gitignore`, stacked on its parent directory's rules.
struct IgnoreLayer {
    matcher: Gitignore,
    /// How a path relative to the project root becomes one relative to this file's
    /// directory.
    base: Base,
    parent: Ignores,
}

enum Base {
    /// The directory is inside the project: strip this many leading bytes.
    Inside(usize),
    /// The directory is above the project root (in the enclosing git work tree):
    /// prepend the path from it down to the root, ending in `/`.
    Above(String),
}

/// The `.gitignore` rules in force in one directory: innermost first.
type Ignores = Option<Arc<IgnoreLayer>>;

/// Whether git ignores `rel` (relative to the project root): the innermost rule that
/// matches decides, as in git. Parent directories were checked on the way down.
fn ignored(ignores: &Ignores, rel: &str, is_dir: bool) -> bool {
    let mut layer = ignores.as_deref();
    while let Some(current) = layer {
        let verdict = match &current.base {
            Base::Inside(strip) => current.matcher.matched(&rel[*strip..], is_dir),
            Base::Above(prefix) => current.matcher.matched(format!("{prefix}{rel}"), is_dir),
        };
        match verdict {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => layer = current.parent.as_deref(),
        }
    }
    false
}

/// Read the `.gitignore` in the directory open as `dir`, if it is a regular file (git
/// does not follow a symlinked `.gitignore` either). Unparsable lines are skipped, as
/// git skips them.
fn read_gitignore(dir: impl AsFd) -> io::Result<Option<(Gitignore, Stamp)>> {
    let stamp = match statat(&dir, GITIGNORE, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Stamp::from_stat(&stat),
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if stamp.kind != Kind::File {
        return Ok(None);
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = openat(&dir, GITIGNORE, flags, Mode::empty())?;
    let mut bytes = Vec::new();
    fs::File::from(fd).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut builder = GitignoreBuilder::new(".");
    for (index, line) in text.lines().enumerate() {
        let line = if index == 0 { line.trim_start_matches('\u{feff}') } else { line };
        let _ = builder.add_line(None, line);
    }
    Ok(builder.build().ok().map(|matcher| (matcher, stamp)))
}

/// One enumeration in progress: what is found so far, and the `.gitignore` rules of the
/// directories seen.
struct Lister<'a> {
    set: &'a SourceSet,
    root: &'a Path,
    listing: Listing,
    /// The rules from above the project root, in force at its top.
    above: Ignores,
    /// The rules in force inside each directory looked at (root-relative path → stack,
    /// the directory's own `.gitignore` included).
    ignores: HashMap<String, Ignores>,
}

impl Lister<'_> {
    /// The rules from `.gitignore` files above the project root, up to the top of the git
    /// work tree that holds it (none when the root is that top, or not in one). Their
    /// directories and files are recorded like the project's own.
    fn ignores_above_root(&mut self) -> Result<Ignores> {
        let Ok(real_root) = self.root.canonicalize() else { return Ok(None) };
        let above: Vec<&Path> = real_root.ancestors().collect();
        let Some(top) = above.iter().position(|dir| dir.join(".git").exists()) else { return Ok(None) };
        let mut ignores: Ignores = None;
        // From the work tree's top down to the root's parent.
        for up in (1..=top).rev() {
            let dir = above[up];
            let rel = vec![".."; up].join("/");
            let below = real_root.strip_prefix(dir).ok().and_then(Path::to_str).unwrap_or("");
            self.record(&rel, dir)?;
            let fd = match open_dir(CWD, dir) {
                Ok(fd) => fd,
                Err(_) => continue,
            };
            if let Some((matcher, stamp)) =
                read_gitignore(&fd).map_err(|e| Error::io("read", &dir.join(GITIGNORE), e))?
            {
                self.listing.dirs.insert(format!("{rel}/{GITIGNORE}"), stamp);
                ignores =
                    Some(Arc::new(IgnoreLayer { matcher, base: Base::Above(format!("{below}/")), parent: ignores }));
            }
        }
        Ok(ignores)
    }

    /// Record `dir`'s stamp (root-relative `rel`, at `full`) if not done yet.
    fn record(&mut self, rel: &str, full: &Path) -> Result<()> {
        if self.listing.dirs.contains_key(rel) {
            return Ok(());
        }
        match fs::symlink_metadata(full) {
            Ok(meta) => {
                self.listing.dirs.insert(rel.to_string(), Stamp::of(&meta));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("inspect", full, e)),
        }
    }

    fn full(&self, rel: &str) -> std::path::PathBuf {
        if rel.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(rel)
        }
    }

    /// The rules in force inside directory `rel`, which was reached without passing a
    /// symlink: its parent's, plus its own `.gitignore`. Records the directory and the
    /// `.gitignore` read.
    fn ignores_in(&mut self, rel: &str) -> Result<Ignores> {
        if let Some(ignores) = self.ignores.get(rel) {
            return Ok(ignores.clone());
        }
        let parent = match rel.rsplit_once('/') {
            _ if rel.is_empty() => self.above.clone(),
            Some((parent, _)) => self.ignores_in(parent)?,
            None => self.ignores_in("")?,
        };
        let full = self.full(rel);
        self.record(rel, &full)?;
        let own = match open_dir(CWD, &full) {
            Ok(fd) => read_gitignore(&fd).map_err(|e| Error::io("read", &full.join(GITIGNORE), e))?,
            Err(_) => None,
        };
        let ignores = match own {
            Some((matcher, stamp)) => {
                self.listing.dirs.insert(join(rel, GITIGNORE), stamp);
                let strip = if rel.is_empty() { 0 } else { rel.len() + 1 };
                Some(Arc::new(IgnoreLayer { matcher, base: Base::Inside(strip), parent }))
            }
            None => parent,
        };
        self.ignores.insert(rel.to_string(), ignores.clone());
        Ok(ignores)
    }

    /// `lstat` a relative path after checking that no directory on the way is a symlink
    /// (which could lead outside the project) or ignored by git. Records the stamp of
    /// every directory on the way: a file appearing or disappearing in any of them, or
    /// one of them swapped for a symlink, changes one of those stamps.
    fn lstat_inside(&mut self, rel: &str) -> Result<Option<Stamp>> {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let mut so_far = String::new();
        for (i, part) in parts.iter().enumerate() {
            let ignores = self.ignores_in(&so_far)?;
            so_far = join(&so_far, part);
            let full = self.root.join(&so_far);
            let meta = match fs::symlink_metadata(&full) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory => {
                    return Ok(None);
                }
                Err(e) => return Err(Error::io("inspect", &full, e)),
            };
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() && !last {
                let what = describe_symlink(&full);
                self.listing.skipped.push(format!("{so_far}: {what}; castoff never follows symlinks"));
                return Ok(None);
            }
            if ignored(&ignores, &so_far, meta.is_dir()) {
                self.listing.skipped.push(format!("{so_far}: ignored by git (a .gitignore names it)"));
                return Ok(None);
            }
            if last {
                return Ok(Some(Stamp::of(&meta)));
            }
        }
        Ok(None)
    }

    fn walk(&mut self, start: &str) -> Result<()> {
        // The start directory itself must be reached without passing a symlink.
        let stamp = if start.is_empty() {
            let root = self.root.to_path_buf();
            self.record("", &root)?;
            match self.listing.dirs.get("") {
                Some(stamp) => *stamp,
                None => return Ok(()),
            }
        } else {
            match self.lstat_inside(start)? {
                Some(stamp) if stamp.kind == Kind::Dir => stamp,
                Some(stamp) if stamp.kind == Kind::Symlink => {
                    let what = describe_symlink(&self.root.join(start));
                    self.listing.skipped.push(format!("{start}: {what}; castoff never follows symlinks"));
                    return Ok(());
                }
                _ => return Ok(()),
            }
        };
        // walk_dir adds the start directory's own .gitignore.
        let parent = match start.rsplit_once('/') {
            _ if start.is_empty() => self.above.clone(),
            Some((parent, _)) => self.ignores_in(parent)?,
            None => self.ignores_in("")?,
        };
        let full = self.full(start);
        let fd = open_dir(CWD, &full).map_err(|e| Error::io("open directory", &full, e))?;
        let found = self.set.walk_dir(self.root, fd, start.to_string(), stamp, parent)?;
        self.listing.files.extend(found.files);
        self.listing.dirs.extend(found.dirs);
        self.listing.skipped.extend(found.skipped);
        Ok(())
    }
}

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Where `rel` resolves through symlinks, relative to the real root, when that is
/// inside the project.
fn resolve_inside(root: &Path, rel: &str) -> Option<String> {
    let real_root = root.canonicalize().ok()?;
    let real = root.join(rel).canonicalize().ok()?;
    real.strip_prefix(&real_root).ok()?.to_str().map(str::to_string)
}

impl SourceSet {
    /// List one directory through its fd, stat entries relative to it (no path
    /// re-resolution), and descend into subdirectories in parallel. `ignores` are the
    /// rules in force in the parent directory.
    fn walk_dir(&self, root: &Path, fd: OwnedFd, rel: String, stamp: Stamp, ignores: Ignores) -> Result<Found> {
        let full = || root.join(&rel);
        let mut found = Found::default();
        let ignores = match read_gitignore(&fd).map_err(|e| Error::io("read", &full().join(GITIGNORE), e))? {
            Some((matcher, gitignore_stamp)) => {
                found.dirs.push((join(&rel, GITIGNORE), gitignore_stamp));
                let strip = if rel.is_empty() { 0 } else { rel.len() + 1 };
                Some(Arc::new(IgnoreLayer { matcher, base: Base::Inside(strip), parent: ignores }))
            }
            None => ignores,
        };
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
            let child = join(&rel, text);
            if let Some(reason) = unrecordable(text) {
                found.skipped.push(format!("{child:?}: {reason}"));
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
                Kind::Dir if self.prunes(&child) || ignored(&ignores, &child, true) => {}
                Kind::Dir => subdirs.push((child, name.to_owned(), child_stamp)),
                Kind::File | Kind::Symlink if self.tracks(&child) && !ignored(&ignores, &child, false) => {
                    found.files.push((child, child_stamp))
                }
                Kind::Other if self.tracks(&child) && !ignored(&ignores, &child, false) => {
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
                self.walk_dir(root, child_fd, child, child_stamp, ignores.clone())
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
/// `*.py` → ``, and a literal path is returned whole. Globs arrive normalised from the
/// config (no `./`, no `//`).
fn literal_prefix(pattern: &str) -> String {
    if !has_glob_meta(pattern) {
        return pattern.to_string();
    }
    pattern.split('/').take_while(|part| !has_glob_meta(part)).collect::<Vec<_>>().join("/")
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
        assert_eq!(literal_prefix("app.py"), "app.py");
        assert_eq!(literal_prefix("a/b/c*.txt"), "a/b");
        assert_eq!(outermost(vec!["src/a".into(), "src".into(), "lib".into(), "src".into()]), ["lib", "src"]);
        assert_eq!(outermost(vec!["src".into(), "".into()]), [""]);
    }
}
