//! `castoff init`: write castoff.toml from templates/, tailored to what is already in
//! the directory, create VERSION if there is none, and record the first baseline.
//!
//! It never clobbers: an existing castoff.toml needs `--force`, and an existing VERSION
//! is kept (and must parse, so a broken one is reported rather than replaced).

use std::fs;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Serialize;

use crate::config::{Config, CONFIG_FILE};
use crate::error::{Error, IoContext, Result};
use crate::project::{ensure_castoff_gitignore, lock_root, Project, CASTOFF_GITIGNORE};
use crate::render::{render, toml_string};
use crate::sources::BASELINE_FILE;
use crate::version::VersionFile;

#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions {
    pub force: bool,
    pub dry_run: bool,
}

/// What `castoff init` wrote (or would write).
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    pub written: Vec<String>,
    pub kept: Vec<String>,
    pub detected: Vec<String>,
    pub sources: Vec<String>,
    pub version: String,
    pub config: String,
    pub dry_run: bool,
}

/// Files that are never sources wherever they are: bytecode, editor backups and swap
/// files, OS litter. `init` writes them into `exclude`, since a guessed `dir/**` would
/// otherwise track them (a `.gitignore` usually covers them too, when there is one).
const JUNK: &[&str] = &[
    "**/__pycache__/**",
    "**/*.pyc",
    "**/*.pyo",
    "**/*~",
    "**/*.swp",
    "**/*.swo",
    "**/.#*",
    "**/.DS_Store",
    "**/Thumbs.db",
    "**/node_modules/**",
];

/// Top-level names never guessed as sources: outputs, dependencies, docs, castoff's own.
const NOT_SOURCES: &[&str] = &[
    "VERSION",
    CONFIG_FILE,
    "target",
    "dist",
    "build",
    "out",
    "bin",
    "obj",
    "node_modules",
    "__pycache__",
    "venv",
    "CHANGELOG",
    "CHANGELOG.md",
    "LICENSE",
    "LICENSE.md",
    "README",
    "README.md",
];

pub fn init(root: &Path, options: InitOptions) -> Result<InitOutcome> {
    let config_path = root.join(CONFIG_FILE);
    if config_path.exists() && !options.force {
        return Err(Error::usage(
            format!("{} already exists", config_path.display()),
            "pass --force to overwrite it (VERSION is kept); or edit it by hand",
        ));
    }
    crate::project::resolves_inside(root, "VERSION", Path::new(CONFIG_FILE), "version.file")?;
    let version_path = root.join("VERSION");
    let existing_version = match version_path.exists() {
        true => Some(VersionFile::read(&version_path, Path::new("VERSION"))?.version),
        false => None,
    };
    let detected = detect(root)?;
    let sources = guess_sources(root)?;
    let config = render(
        "castoff.toml",
        serde_json::json!({
            "version_file": toml_string("VERSION"),
            "sources": sources.iter().map(|s| toml_string(s)).collect::<Vec<_>>(),
            "exclude": JUNK.iter().map(|s| toml_string(s)).collect::<Vec<_>>(),
            "detected": detected,
        }),
    )?;

    let mut written = vec![CONFIG_FILE.to_string()];
    let mut kept = Vec::new();
    match &existing_version {
        Some(_) => kept.push("VERSION".to_string()),
        None => written.push("VERSION".to_string()),
    }
    written.extend([CASTOFF_GITIGNORE.0.to_string(), BASELINE_FILE.to_string()]);
    let version = existing_version.clone().unwrap_or_else(|| Version::new(0, 1, 0));
    let outcome = InitOutcome {
        written,
        kept,
        detected,
        sources,
        version: version.to_string(),
        config: config.clone(),
        dry_run: options.dry_run,
    };
    if options.dry_run {
        return Ok(outcome);
    }

    // Validate everything before the first write.
    let project = Project {
        root: root.to_path_buf(),
        config: Config::parse(&config, Path::new(CONFIG_FILE))?,
        config_file: Some(PathBuf::from(CONFIG_FILE)),
    };
    let sources = project.sources()?;

    let _lock = lock_root(root, "castoff init")?;
    crate::fsutil::write_atomic(&config_path, config.as_bytes())?;
    if existing_version.is_none() {
        VersionFile::create(&version_path, &version)?;
    }
    ensure_castoff_gitignore(root)?;
    let scan = sources.scan(true)?;
    sources.record_baseline(&scan, &version, None)?;
    Ok(outcome)
}

/// Files that tell what kind of project this is, for the generated comments.
fn detect(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for name in ["VERSION", "Dockerfile", "Containerfile"] {
        if root.join(name).is_file() {
            found.push(name.to_string());
        }
    }
    let walker = walkdir::WalkDir::new(root).max_depth(3).follow_links(false).sort_by_file_name();
    for entry in walker.into_iter().filter_entry(|e| !is_skipped_dir(e)).flatten() {
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "nuspec") {
            found.push(PathBuf::from(entry.path().strip_prefix(root).unwrap_or(entry.path())).display().to_string());
        }
    }
    Ok(found)
}

fn is_skipped_dir(entry: &walkdir::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy();
    entry.depth() > 0 && entry.file_type().is_dir() && (name.starts_with('.') || NOT_SOURCES.contains(&name.as_ref()))
}

/// The top-level files and directories that look like sources: everything but hidden
/// entries, build outputs and docs. Directories become `dir/**`.
fn guess_sources(root: &Path) -> Result<Vec<String>> {
    let mut sources = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(sources),
        Err(e) => return Err(Error::io("read directory", root, e)),
    };
    for entry in entries {
        let entry = entry.with_path("read directory", root)?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let file_type = entry.file_type().with_path("inspect", &entry.path())?;
        if name.starts_with('.') || NOT_SOURCES.contains(&name.as_str()) || file_type.is_symlink() {
            continue;
        }
        if name.ends_with(".md") {
            continue;
        }
        sources.push(if file_type.is_dir() { format!("{name}/**") } else { name });
    }
    sources.sort();
    Ok(sources)
}
