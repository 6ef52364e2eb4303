//! `castoff init`: write castoff.toml from templates/, tailored to what is already in
//! the directory, create VERSION if there is none, and record the first baseline.
//!
//! It never clobbers: an existing castoff.toml needs `--force`, and an existing VERSION
//! is kept (and must parse, so a broken one is reported rather than replaced).
//!
//! [`scaffold`] (`castoff init --xtask`, `--ci github|gitlab`) writes the other files a
//! project releases with: an xtask crate calling the library, or a CI workflow fanned
//! out from `[image] platforms`, with secrets mapped to the names castoff.toml gives.

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
        planned_version: None,
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

/// The CI systems `castoff init --ci` writes a release workflow for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    Github,
    Gitlab,
}

/// What `castoff init --xtask` / `--ci <system>` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scaffold {
    /// `xtask/` with `cargo xtask release`, and the `cargo xtask` alias.
    Xtask,
    /// The release workflow for a CI system.
    Ci(Ci),
}

/// What a scaffold wrote (or, in a dry run, would write), what it left alone, and what
/// the user still has to do by hand.
#[derive(Debug, Clone, Serialize)]
pub struct ScaffoldOutcome {
    pub written: Vec<String>,
    pub kept: Vec<String>,
    pub notes: Vec<String>,
    pub dry_run: bool,
}

/// The cargo alias the xtask scaffold needs.
const XTASK_ALIAS: &str = "[alias]\nxtask = \"run --package xtask --\"\n";
const CARGO_CONFIG: &str = ".cargo/config.toml";

/// One file a scaffold renders.
struct Planned {
    /// Project-relative, `/`-separated.
    rel: &'static str,
    text: String,
    /// Never replaced, even with `--force`: the user's file holds more than ours.
    keep_existing: bool,
}

/// Write the scaffold's files from templates/ into the project at `root`, never
/// clobbering an existing file unless `force`. Everything is rendered and every file
/// checked before the first write, so a refusal writes nothing at all.
pub fn scaffold(
    project: &Project,
    what: Scaffold,
    InitOptions { force, dry_run }: InitOptions,
) -> Result<ScaffoldOutcome> {
    let root = &project.root;
    let mut notes = Vec::new();
    let planned = match what {
        Scaffold::Xtask => xtask_files(root, &mut notes)?,
        Scaffold::Ci(ci) => vec![ci_file(project, ci, &mut notes)?],
    };

    let mut written = Vec::new();
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for file in &planned {
        check_parents(root, file.rel)?;
        let exists = match fs::symlink_metadata(root.join(file.rel)) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io("inspect", &root.join(file.rel), e)),
        };
        match (exists, file.keep_existing, force) {
            (false, _, _) => written.push(file.rel.to_string()),
            (true, true, _) => kept.push(file.rel.to_string()),
            (true, false, true) => written.push(file.rel.to_string()),
            (true, false, false) => refused.push(file.rel),
        }
    }
    if !refused.is_empty() {
        let (verb, them) = if refused.len() == 1 { ("exists", "it") } else { ("exist", "them") };
        return Err(Error::usage(
            format!("{} already {verb}; nothing was written", refused.join(", ")),
            format!("pass --force to overwrite {them}, or move {them} aside first"),
        ));
    }
    if kept.iter().any(|k| k == CARGO_CONFIG) && !has_xtask_alias(&root.join(CARGO_CONFIG))? {
        notes.push(format!("add the alias to {CARGO_CONFIG}: {}", XTASK_ALIAS.replace('\n', " ").trim_end()));
    }
    let outcome = ScaffoldOutcome { written, kept, notes, dry_run };
    if dry_run {
        return Ok(outcome);
    }
    for file in planned.iter().filter(|f| outcome.written.iter().any(|w| w == f.rel)) {
        let mut dir = String::new();
        for part in parent_dirs(file.rel) {
            dir = if dir.is_empty() { part.to_string() } else { format!("{dir}/{part}") };
            crate::fsutil::ensure_real_dir(root, &dir)?;
        }
        crate::fsutil::write_atomic(&root.join(file.rel), file.text.as_bytes())?;
    }
    Ok(outcome)
}

/// The directories above `rel`, outermost first.
fn parent_dirs(rel: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    parts
}

/// Every directory above `rel` is a real directory or missing: never a symlink or a
/// file, so nothing is written outside the project.
fn check_parents(root: &Path, rel: &str) -> Result<()> {
    let mut dir = String::new();
    for part in parent_dirs(rel) {
        dir = if dir.is_empty() { part.to_string() } else { format!("{dir}/{part}") };
        if !crate::fsutil::check_real_dir(root, &dir)? {
            break;
        }
    }
    Ok(())
}

fn has_xtask_alias(path: &Path) -> Result<bool> {
    let text = fs::read_to_string(path).with_path("read", path)?;
    Ok(match text.parse::<toml::Table>() {
        Ok(table) => table.get("alias").and_then(|a| a.get("xtask")).is_some(),
        // Not TOML we can read: cargo will say so; look for the alias by eye.
        Err(_) => text.lines().any(|line| line.trim_start().starts_with("xtask")),
    })
}

fn xtask_files(root: &Path, notes: &mut Vec<String>) -> Result<Vec<Planned>> {
    let context = serde_json::json!({ "castoff_version": env!("CARGO_PKG_VERSION") });
    let workspace = root.join("Cargo.toml");
    let is_member = match fs::read_to_string(&workspace) {
        Ok(text) => text.parse::<toml::Table>().ok().is_some_and(|table| {
            let members = table.get("workspace").and_then(|w| w.get("members")).and_then(|m| m.as_array());
            members.is_some_and(|m| m.iter().any(|v| v.as_str().is_some_and(|s| s.trim_end_matches('/') == "xtask")))
        }),
        Err(_) => false,
    };
    if !is_member {
        notes.push(match workspace.exists() {
            true => {
                "add \"xtask\" to [workspace] members in Cargo.toml (add a [workspace] table if there is none)".into()
            }
            false => "create a Cargo.toml beside castoff.toml with `[workspace]` and `members = [\"xtask\"]`".into(),
        });
    }
    Ok(vec![
        Planned { rel: "xtask/Cargo.toml", text: render("xtask/Cargo.toml", &context)?, keep_existing: false },
        Planned { rel: "xtask/src/main.rs", text: render("xtask/main.rs", &context)?, keep_existing: false },
        Planned { rel: CARGO_CONFIG, text: XTASK_ALIAS.to_string(), keep_existing: true },
    ])
}

#[derive(Serialize)]
struct CiPlatform {
    platform: String,
    suffix: String,
}

#[derive(Serialize)]
struct CiSecret {
    name: String,
    why: String,
}

fn ci_file(project: &Project, ci: Ci, notes: &mut Vec<String>) -> Result<Planned> {
    let config = &project.config;
    let image = config.image.as_ref().map(|image| {
        let mut registries = vec![image.name.registry.clone()];
        if image.platform_name.registry != image.name.registry {
            registries.push(image.platform_name.registry.clone());
        }
        let builder = image.build.builder;
        let layout = match &image.build.output {
            crate::config::OutputTarget::OciLayout(dir) => Some(dir.clone()),
            crate::config::OutputTarget::Registry => None,
        };
        serde_json::json!({
            "platforms": image.platforms.iter().map(|p| CiPlatform { platform: p.to_string(), suffix: p.suffix() }).collect::<Vec<_>>(),
            "registries": registries,
            "builder": builder.name(),
            "docker": builder != crate::config::BuilderKind::Native,
            "buildx": matches!(builder, crate::config::BuilderKind::Auto | crate::config::BuilderKind::Buildx),
            "fan_out": layout.is_none(),
            "layout": layout,
        })
    });
    let feeds: Vec<_> = config
        .feeds
        .iter()
        .filter_map(|feed| feed.api_key_env.as_ref().map(|env| serde_json::json!({ "name": feed.name, "env": env })))
        .collect();
    let folders: Vec<_> = match config.feeds.is_empty() {
        true => vec![serde_json::json!({ "name": "default", "path": crate::config::DEFAULT_FEED_DIR })],
        false => config
            .feeds
            .iter()
            .filter_map(|feed| match &feed.kind {
                crate::config::FeedKind::Folder { path } if path.is_relative() => {
                    Some(serde_json::json!({ "name": feed.name, "path": path.to_string_lossy() }))
                }
                _ => None,
            })
            .collect(),
    };
    let packages = !config.packages.is_empty();

    let mut secrets = Vec::new();
    if config.image.as_ref().is_some_and(|i| matches!(i.build.output, crate::config::OutputTarget::Registry)) {
        for name in ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"] {
            secrets.push(CiSecret { name: name.into(), why: "for the image registry".into() });
        }
    }
    if packages {
        for feed in &config.feeds {
            if let Some(env) = &feed.api_key_env {
                secrets.push(CiSecret { name: env.clone(), why: format!("the API key of feed `{}`", feed.name) });
            }
        }
    }
    let store = match ci {
        Ci::Github => "repository secrets",
        Ci::Gitlab => "masked CI/CD variables",
    };
    if !secrets.is_empty() {
        let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
        notes.push(format!("define these {store}: {}", names.join(", ")));
    }

    // The release tag as a GitHub glob and a GitLab rule: what comes before the first
    // placeholder, then anything.
    let tag = &config.version.tag;
    let prefix = &tag[..tag.find('{').unwrap_or(tag.len())];
    let tag_glob = format!("{prefix}*");
    let tag_rule = match prefix.is_empty() {
        true => "$CI_COMMIT_TAG".to_string(),
        false => format!("$CI_COMMIT_TAG =~ /^{}/", regex_escape(prefix)),
    };
    let context = serde_json::json!({
        "castoff_version": env!("CARGO_PKG_VERSION"),
        "tag_glob": tag_glob,
        "tag_rule": tag_rule,
        "image": image,
        "packages": packages,
        "feeds": if packages { feeds } else { Vec::new() },
        "folders": if packages { folders } else { Vec::new() },
        "secrets": secrets,
    });
    let (rel, template) = match ci {
        Ci::Github => (".github/workflows/release.yml", "ci/github.yml"),
        Ci::Gitlab => (".gitlab-ci.yml", "ci/gitlab.yml"),
    };
    Ok(Planned { rel, text: render(template, context)?, keep_existing: false })
}

/// `text` with the characters a regular expression gives meaning to escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_yaml_ng::Value;

    use super::*;

    const IMAGE: &str = "[image]\nname = \"registry.example.com/team/app\"\n\
        platforms = [\"linux/amd64\", \"linux/arm/v6\", \"linux/arm/v7\"]\nbuilder = \"native\"\n";
    const PACKAGE: &str = "[[package]]\nnuspec = \"nuget/App.nuspec\"\n\n[[feed]]\nname = \"nuget\"\n\
        url = \"https://api.nuget.org/v3/index.json\"\napi_key_env = \"NUGET_API_KEY\"\n";

    fn project(config: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("VERSION"), "1.2.3\n").unwrap();
        fs::write(dir.path().join(CONFIG_FILE), format!("[version]\nsources = [\"app.py\"]\n\n{config}")).unwrap();
        let project = Project::open(dir.path(), None).unwrap();
        (dir, project)
    }

    fn write(project: &Project, what: Scaffold) -> ScaffoldOutcome {
        scaffold(project, what, InitOptions::default()).unwrap()
    }

    fn yaml(project: &Project, rel: &str) -> Value {
        let text = fs::read_to_string(project.root.join(rel)).unwrap();
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}\n{text}"))
    }

    /// Every `run:` of a GitHub job, joined.
    fn runs(job: &Value) -> String {
        let steps = job["steps"].as_sequence().unwrap();
        steps.iter().filter_map(|s| s["run"].as_str()).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn github_fans_out_per_platform_and_maps_feed_keys() {
        let (_dir, project) = project(&format!("{IMAGE}\n{PACKAGE}"));
        let outcome = write(&project, Scaffold::Ci(Ci::Github));
        assert_eq!(outcome.written, [".github/workflows/release.yml"]);
        let workflow = yaml(&project, ".github/workflows/release.yml");
        let jobs = &workflow["jobs"];
        let include = jobs["build"]["strategy"]["matrix"]["include"].as_sequence().unwrap();
        let platforms: Vec<_> = include.iter().map(|e| e["platform"].as_str().unwrap()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]);
        let suffixes: Vec<_> = include.iter().map(|e| e["suffix"].as_str().unwrap()).collect();
        assert_eq!(suffixes, ["amd64", "armv6", "armv7"]);
        assert!(runs(&jobs["build"])
            .contains("castoff build --platform \"$PLATFORM\" --digest-file \"digests/$SUFFIX.json\""));
        assert!(runs(&jobs["build"]).contains("--password-stdin"));
        assert!(!runs(&jobs["build"]).contains("-p \"$REGISTRY_PASSWORD\""));
        assert_eq!(jobs["manifest"]["needs"].as_str(), Some("build"));
        assert!(runs(&jobs["manifest"]).contains("castoff manifest --from-digests digests"));
        assert_eq!(jobs["publish"]["needs"].as_str(), Some("manifest"));
        let publish = jobs["publish"]["steps"].as_sequence().unwrap().iter().find(|s| s["run"] == "castoff publish");
        assert_eq!(publish.unwrap()["env"]["NUGET_API_KEY"].as_str(), Some("${{ secrets.NUGET_API_KEY }}"));
        assert_eq!(workflow["on"]["push"]["tags"][0].as_str(), Some("v*"));
        assert!(outcome.notes.iter().any(|n| n.contains("NUGET_API_KEY") && n.contains("REGISTRY_PASSWORD")));
    }

    #[test]
    fn without_an_image_there_is_no_build_job() {
        let (_dir, project) = project(PACKAGE);
        write(&project, Scaffold::Ci(Ci::Github));
        let jobs = yaml(&project, ".github/workflows/release.yml")["jobs"].clone();
        let names: Vec<_> = jobs.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect();
        assert_eq!(names, ["publish"]);
        assert!(jobs["publish"].get("needs").is_none());
    }

    #[test]
    fn without_packages_there_is_no_publish_job() {
        let (_dir, project) = project(IMAGE);
        write(&project, Scaffold::Ci(Ci::Gitlab));
        let pipeline = yaml(&project, ".gitlab-ci.yml");
        assert!(pipeline.get("publish").is_none());
        let matrix = pipeline["build"]["parallel"]["matrix"].as_sequence().unwrap();
        let platforms: Vec<_> = matrix.iter().map(|e| e["PLATFORM"].as_str().unwrap()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]);
        let script = pipeline["build"]["script"][0].as_str().unwrap();
        assert_eq!(script, "castoff build --platform \"$PLATFORM\" --digest-file \"digests/$SUFFIX.json\"");
        assert_eq!(pipeline["manifest"]["script"][0].as_str(), Some("castoff manifest --from-digests digests"));
        let stages: Vec<_> = pipeline["stages"].as_sequence().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(stages, ["build", "manifest"]);
        assert_eq!(
            pipeline[".registry"]["variables"]["CASTOFF_REGISTRY_PASSWORD"].as_str(),
            Some("$REGISTRY_PASSWORD")
        );
    }

    #[test]
    fn gitlab_with_packages_and_a_docker_builder() {
        let config = format!("{}\n{PACKAGE}", IMAGE.replace("native", "buildx"));
        let (_dir, project) = project(&config);
        write(&project, Scaffold::Ci(Ci::Gitlab));
        let text = fs::read_to_string(project.root.join(".gitlab-ci.yml")).unwrap();
        let pipeline = yaml(&project, ".gitlab-ci.yml");
        assert_eq!(pipeline["publish"]["script"][0].as_str(), Some("castoff publish"));
        assert_eq!(pipeline["publish"]["needs"][0].as_str(), Some("manifest"));
        let login = pipeline[".registry"]["before_script"].as_sequence().unwrap();
        assert!(login.iter().any(|l| l.as_str().unwrap().contains("--password-stdin")), "{text}");
        assert!(text.contains("NUGET_API_KEY"), "{text}");
    }

    #[test]
    fn an_oci_layout_output_builds_in_one_job() {
        let config = format!("{IMAGE}output = \"oci-layout:dist/oci\"\n");
        let (_dir, project) = project(&config);
        write(&project, Scaffold::Ci(Ci::Github));
        let jobs = yaml(&project, ".github/workflows/release.yml")["jobs"].clone();
        assert!(jobs.get("build").is_none());
        assert!(runs(&jobs["image"]).contains("castoff build\ncastoff manifest"));
        let upload = jobs["image"]["steps"].as_sequence().unwrap().last().unwrap().clone();
        assert_eq!(upload["with"]["path"].as_str(), Some("dist/oci"));
    }

    #[test]
    fn an_existing_file_is_refused_and_nothing_written() {
        let (dir, project) = project(IMAGE);
        fs::write(dir.path().join(".gitlab-ci.yml"), "mine\n").unwrap();
        let err = scaffold(&project, Scaffold::Ci(Ci::Gitlab), InitOptions::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains(".gitlab-ci.yml"), "{err}");
        assert!(err.hint().unwrap().contains("--force"));
        assert_eq!(fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap(), "mine\n");

        // One refused file stops the others too.
        fs::create_dir_all(dir.path().join("xtask/src")).unwrap();
        fs::write(dir.path().join("xtask/src/main.rs"), "fn main() {}\n").unwrap();
        let err = scaffold(&project, Scaffold::Xtask, InitOptions::default()).unwrap_err();
        assert!(err.to_string().contains("xtask/src/main.rs"), "{err}");
        assert!(!dir.path().join("xtask/Cargo.toml").exists());
        assert!(!dir.path().join(".cargo").exists());

        let forced = scaffold(&project, Scaffold::Ci(Ci::Gitlab), InitOptions { force: true, dry_run: false }).unwrap();
        assert_eq!(forced.written, [".gitlab-ci.yml"]);
        assert!(fs::read_to_string(dir.path().join(".gitlab-ci.yml")).unwrap().contains("castoff build"));
    }

    #[test]
    fn a_dry_run_writes_nothing() {
        let (dir, project) = project(IMAGE);
        let outcome = scaffold(&project, Scaffold::Xtask, InitOptions { force: false, dry_run: true }).unwrap();
        assert!(outcome.dry_run);
        assert_eq!(outcome.written, ["xtask/Cargo.toml", "xtask/src/main.rs", ".cargo/config.toml"]);
        let outcome =
            scaffold(&project, Scaffold::Ci(Ci::Github), InitOptions { force: false, dry_run: true }).unwrap();
        assert_eq!(outcome.written, [".github/workflows/release.yml"]);
        assert!(!dir.path().join("xtask").exists());
        assert!(!dir.path().join(".cargo").exists());
        assert!(!dir.path().join(".github").exists());
    }

    #[test]
    fn xtask_writes_the_crate_and_the_alias() {
        let (dir, project) = project("");
        let outcome = write(&project, Scaffold::Xtask);
        assert_eq!(outcome.written, ["xtask/Cargo.toml", "xtask/src/main.rs", ".cargo/config.toml"]);
        let main = fs::read_to_string(dir.path().join("xtask/src/main.rs")).unwrap();
        assert!(main.contains("Release::plan(&project"), "{main}");
        let manifest: toml::Table = fs::read_to_string(dir.path().join("xtask/Cargo.toml")).unwrap().parse().unwrap();
        assert_eq!(manifest["dependencies"]["castoff"].as_str(), Some(env!("CARGO_PKG_VERSION")));
        let alias: toml::Table = fs::read_to_string(dir.path().join(".cargo/config.toml")).unwrap().parse().unwrap();
        assert_eq!(alias["alias"]["xtask"].as_str(), Some("run --package xtask --"));
        assert!(outcome.notes.iter().any(|n| n.contains("members")), "{:?}", outcome.notes);
    }

    #[test]
    fn xtask_keeps_an_existing_cargo_config() {
        let (dir, project) = project("");
        fs::create_dir(dir.path().join(".cargo")).unwrap();
        fs::write(dir.path().join(".cargo/config.toml"), "[build]\njobs = 2\n").unwrap();
        fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = [\"xtask\"]\n").unwrap();
        let outcome = scaffold(&project, Scaffold::Xtask, InitOptions { force: true, dry_run: false }).unwrap();
        assert_eq!(outcome.kept, [".cargo/config.toml"]);
        assert_eq!(fs::read_to_string(dir.path().join(".cargo/config.toml")).unwrap(), "[build]\njobs = 2\n");
        assert_eq!(outcome.notes.len(), 1, "{:?}", outcome.notes);
        assert!(outcome.notes[0].contains("xtask = \"run --package xtask --\""), "{:?}", outcome.notes);
    }

    #[test]
    fn a_symlinked_directory_is_refused() {
        let (dir, project) = project(IMAGE);
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".github")).unwrap();
        let err =
            scaffold(&project, Scaffold::Ci(Ci::Github), InitOptions { force: true, dry_run: false }).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }
}
