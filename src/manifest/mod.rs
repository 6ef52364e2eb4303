//! `castoff manifest`: join the per-platform images into one multi-arch index and put
//! it under every release tag, then read every tag back to prove it.
//!
//! Flow: resolve each platform (in parallel; manifests and config blobs only) →
//! assemble the index (pure) → check every tag (an immutable tag pointing elsewhere
//! stops everything before anything is pushed) → copy children across repositories
//! when they live elsewhere → push the same bytes under each tag that needs them →
//! verify. `--mode docker-cli` replaces the assemble-and-push part with the Makefile
//! workflow's `docker manifest` commands; the same verification follows.

mod docker_cli;
mod from_digests;
pub mod index;
mod layout;
mod publish;
pub(crate) mod resolve;
mod verify;

use std::collections::BTreeMap;

use semver::Version;
use serde::Serialize;

use crate::config::{ImageConfig, OutputTarget};
use crate::error::{Error, Result};
use crate::git::GitInfo;
use crate::image::{ImageSource, OciLayout};
use crate::placeholders;
use crate::platform::Platform;
use crate::project::Project;
use crate::registry::Reference;
pub use index::{Assembled, Child};

/// How the index is made and pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// castoff's own registry client: no daemon, no local state.
    #[default]
    Native,
    /// `docker manifest create --amend / annotate / push --purge`, for teams that want
    /// the docker CLI to do the work.
    DockerCli,
}

#[derive(Debug, Clone, Default)]
pub struct ManifestOptions {
    pub mode: Mode,
    /// Read the sources and show the index and the writes; write nothing.
    pub dry_run: bool,
    /// Replace an immutable (version) tag that points at a different index.
    pub force: bool,
    /// Join the images recorded in this directory's digest files, by digest, instead of
    /// reading the platform tags (CI fan-out).
    pub from_digests: Option<std::path::PathBuf>,
}

/// What happened to one release tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagStatus {
    Pushed,
    /// A moving tag (latest, `{major}.{minor}`) that pointed elsewhere.
    Replaced,
    /// Already pointed at this exact index: nothing was pushed.
    UpToDate,
    WouldPush,
    WouldReplace,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TagOutcome {
    pub tag: String,
    pub reference: String,
    pub digest: String,
    pub status: TagStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestOutcome {
    pub media_type: String,
    pub digest: String,
    pub platforms: Vec<String>,
    pub tags: Vec<TagOutcome>,
    /// HTTP requests castoff sent (docker-cli mode: only castoff's own, not docker's).
    pub requests: usize,
    pub dry_run: bool,
    /// In a dry run: the writes castoff would make (requests or commands).
    pub planned: Vec<String>,
    /// The index exactly as pushed (or as it would be).
    pub index: serde_json::Value,
    pub warnings: Vec<String>,
}

/// One release tag: its template and where it goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub template: String,
    pub tag: String,
    pub reference: Reference,
}

impl Target {
    fn immutable(&self) -> bool {
        ImageConfig::is_immutable_tag(&self.template)
    }
}

/// Run `castoff manifest` for `project` at its current version.
pub fn run(project: &Project, options: ManifestOptions) -> Result<ManifestOutcome> {
    let image = image_config(project)?;
    let version = project.read_version()?.version;
    let client = crate::image::client(project, image);
    let layout = match &image.build.output {
        OutputTarget::Registry => None,
        OutputTarget::OciLayout(_) if options.mode == Mode::DockerCli => {
            return Err(Error::usage(
                "--mode docker-cli pushes to a registry, and [image] output is an OCI layout",
                "drop --mode docker-cli (castoff writes the index into the layout itself)",
            ))
        }
        OutputTarget::OciLayout(dir) => {
            OciLayout::check_location(&project.root, dir, &project.config_shown(), "image.output")?;
            Some(OciLayout::open(&project.root, dir)?)
        }
    };
    let source: &dyn ImageSource = match &layout {
        Some(layout) => layout,
        None => &client,
    };
    let recorded = match &options.from_digests {
        Some(dir) => Some(from_digests::sources(dir, image, &version)?),
        None => None,
    };
    // Three independent things run at once: reading git (subprocesses), resolving the
    // platform images, and asking the registry where each release tag points now. Only
    // templates that use {git_sha} need git first.
    let uses_git_sha = std::iter::once(&image.platform_tag).chain(&image.tags).any(|t| t.contains("{git_sha}"));
    let early_git = uses_git_sha.then(|| GitInfo::read(&project.root));
    let no_git = GitInfo::default();
    let vars = TagVars { version: &version, git: early_git.as_ref().unwrap_or(&no_git) };
    let targets = targets(image, &vars)?;
    let (late_git, children, current) = std::thread::scope(|scope| {
        let git = early_git.is_none().then(|| scope.spawn(|| GitInfo::read(&project.root)));
        let current = scope.spawn(|| {
            fan_out(&targets, |target| match &layout {
                Some(layout) => layout::current(layout, target),
                None => Ok(client.head_manifest(&target.reference)?),
            })
        });
        let children = match &recorded {
            Some(recorded) => fan_out(recorded, |(platform, reference)| resolve::resolve(source, reference, platform)),
            None => fan_out(&image.platforms, |platform| {
                resolve::resolve(source, &platform_source(image, platform, &vars)?, platform)
            }),
        };
        let joined = |what: &str| Error::Internal(format!("the {what} thread panicked"));
        let git = git.map(|h| h.join().map_err(|_| joined("git"))).transpose();
        let current = current.join().map_err(|_| joined("tag lookup"));
        (git, children, current)
    });
    let (children, current) = (children?, current??);
    let git = early_git.or(late_git?).unwrap_or_default();
    let annotations = annotations(image, &version, &git);
    match (&layout, options.mode) {
        (Some(layout), _) => layout::publish(layout, &targets, &current, &children, &annotations, &options),
        (None, Mode::Native) => publish::native(&client, image, &targets, &current, &children, &annotations, &options),
        (None, Mode::DockerCli) => docker_cli::run(&client, image, &targets, &children, &options),
    }
}

/// `[image]`, or the error saying to add one.
pub(crate) fn image_config(project: &Project) -> Result<&ImageConfig> {
    project.config.image.as_ref().ok_or_else(|| {
        Error::usage(
            format!("{} has no [image] table", project.config_shown().display()),
            "add one, e.g.\n  [image]\n  name = \"registry.example.com/team/app\"\n  \
             platforms = [\"linux/amd64\", \"linux/arm64\"]",
        )
    })
}

/// Whether every release tag in `tags` still points at its recorded index: `Ok(None)`
/// when all do, `Ok(Some(reason))` naming the first that is missing or points elsewhere
/// (with both digests). Read-only: one HEAD per registry tag, all at once, or a look at
/// the layout's `index.json`. `Err` only when the registry or layout cannot be asked.
pub fn check_tags(project: &Project, tags: &[TagOutcome]) -> Result<Option<String>> {
    let recorded: Vec<(&str, Option<&str>)> =
        tags.iter().map(|tag| (tag.reference.as_str(), Some(tag.digest.as_str()))).collect();
    crate::image::check::check_references(project, &recorded)
}

/// Where each release tag (`[image] tags`) of `version` would be pushed, in configured
/// order: `registry/repository:tag`, or `oci-layout:DIR:TAG` for a layout output (the
/// same strings [`run`] reports in [`TagOutcome::reference`]). Pure: no network, no
/// file written; git is read only when a template uses `{git_sha}`. Empty when
/// castoff.toml has no `[image]` table.
pub fn planned_tags(project: &Project, version: &Version) -> Result<Vec<String>> {
    let Some(image) = project.config.image.as_ref() else {
        return Ok(Vec::new());
    };
    let git = match image.tags.iter().any(|t| t.contains("{git_sha}")) {
        true => GitInfo::read(&project.root),
        false => GitInfo::default(),
    };
    let targets = targets(image, &TagVars { version, git: &git })?;
    Ok(targets
        .into_iter()
        .map(|target| match &image.build.output {
            OutputTarget::Registry => target.reference.to_string(),
            OutputTarget::OciLayout(dir) => layout::reference(dir, &target.tag),
        })
        .collect())
}

/// Values for tag templates.
pub(crate) struct TagVars<'a> {
    pub version: &'a Version,
    pub git: &'a GitInfo,
}

impl TagVars<'_> {
    /// Expand `template`; `suffix` is the platform suffix for per-platform tags. A
    /// version's `+build` becomes `_build`: `+` is not allowed in tags.
    pub(crate) fn expand(&self, template: &str, key: &str, suffix: Option<&str>) -> Result<String> {
        let expanded = placeholders::expand(template, |name| match name {
            "suffix" => suffix.map(str::to_string),
            "git_sha" => self.git.short.clone(),
            other => placeholders::version_value(self.version, other),
        });
        match expanded {
            Ok(tag) => Ok(tag.replace('+', "_")),
            Err(_) if template.contains("{git_sha}") => Err(Error::usage(
                format!("`{template}` ({key}) uses {{git_sha}}, but this project is not a git checkout with a commit"),
                "commit first, or remove {git_sha} from the tag templates",
            )),
            Err(_) => Err(Error::Internal(format!("template `{template}` was validated but does not expand"))),
        }
    }
}

fn targets(image: &ImageConfig, vars: &TagVars<'_>) -> Result<Vec<Target>> {
    image
        .tags
        .iter()
        .map(|template| {
            let tag = vars.expand(template, "image.tags", None)?;
            let reference = with_tag(&image.name, &tag)?;
            Ok(Target { template: template.clone(), tag, reference })
        })
        .collect()
}

fn platform_source(image: &ImageConfig, platform: &Platform, vars: &TagVars<'_>) -> Result<Reference> {
    let tag = vars.expand(&image.platform_tag, "image.platform_tag", Some(&platform.suffix()))?;
    with_tag(&image.platform_name, &tag)
}

pub(crate) fn with_tag(name: &Reference, tag: &str) -> Result<Reference> {
    name.with_tag(tag).map_err(|e| {
        Error::usage(format!("`{tag}` is not a valid tag for {name}: {}", e.problem()), e.hint().to_string())
    })
}

/// The standard OCI annotations, then the user's (which win).
fn annotations(image: &ImageConfig, version: &Version, git: &GitInfo) -> BTreeMap<String, String> {
    let mut all = standard_annotations(version, git);
    all.extend(image.annotations.clone());
    all
}

/// `org.opencontainers.image.{version,created,revision,source}`: index annotations and
/// image labels alike.
pub(crate) fn standard_annotations(version: &Version, git: &GitInfo) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    all.insert("org.opencontainers.image.version".to_string(), version.to_string());
    let optional = [
        ("org.opencontainers.image.created", &git.created),
        ("org.opencontainers.image.revision", &git.commit),
        ("org.opencontainers.image.source", &git.source),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            all.insert(key.to_string(), value.clone());
        }
    }
    all
}

/// Run `call` for every item at once, one thread each, results in item order. For
/// network round-trips (a handful per release), where waiting, not CPU, is the cost:
/// rayon's pool has one thread per core and would queue them.
pub(crate) fn fan_out<T: Sync, R: Send>(items: &[T], call: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(|| call(item))).collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|_| Err(Error::Internal("a request thread panicked".into()))))
            .collect()
    })
}

/// The platforms of `children`, as strings, in configured order.
fn platform_names(children: &[Child]) -> Vec<String> {
    children.iter().map(|c| c.platform.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use oci_spec::image::{DescriptorBuilder, MediaType};

    use super::*;
    use crate::config::Config;

    fn project(root: &Path, toml: &str) -> Project {
        let config = Config::parse(toml, Path::new("castoff.toml")).unwrap();
        Project { root: root.to_path_buf(), config, config_file: None, planned_version: None }
    }

    #[test]
    fn planned_tags_name_where_each_tag_goes() {
        let dir = tempfile::tempdir().unwrap();
        let version = Version::parse("1.2.0+build.5").unwrap();
        let registry = project(
            dir.path(),
            "[image]\nname = \"registry.example.com/team/app\"\ntags = [\"latest\", \"{version}\", \"{major}.{minor}\"]\n",
        );
        assert_eq!(
            planned_tags(&registry, &version).unwrap(),
            [
                "registry.example.com/team/app:latest",
                "registry.example.com/team/app:1.2.0_build.5",
                "registry.example.com/team/app:1.2"
            ]
        );
        let layout = project(dir.path(), "[image]\nname = \"app\"\noutput = \"oci-layout:dist/oci\"\n");
        assert_eq!(
            planned_tags(&layout, &version).unwrap(),
            ["oci-layout:dist/oci:latest", "oci-layout:dist/oci:1.2.0_build.5"]
        );
        assert!(!dir.path().join("dist").exists(), "planning writes nothing");
        assert!(planned_tags(&project(dir.path(), ""), &version).unwrap().is_empty());
        // {git_sha} outside a git checkout: the error names the template.
        let sha = project(dir.path(), "[image]\nname = \"app\"\ntags = [\"{version}-{git_sha}\"]\n");
        let error = planned_tags(&sha, &version).unwrap_err();
        assert!(error.to_string().contains("{git_sha}"), "{error}");
    }

    #[test]
    fn check_tags_reads_the_layout_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root, "[image]\nname = \"app\"\noutput = \"oci-layout:dist/oci\"\n");
        let layout = OciLayout::create(root, "dist/oci").unwrap();
        let index = b"{\"schemaVersion\":2,\"manifests\":[]}";
        let digest = layout.write_blob(index).unwrap();
        let descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageIndex)
            .digest(digest.clone())
            .size(index.len() as u64)
            .build()
            .unwrap();
        {
            let _lock = layout.lock().unwrap();
            layout.set_tag("1.2.0", descriptor.clone()).unwrap();
            layout.set_tag("latest", descriptor).unwrap();
        }
        let version = Version::parse("1.2.0").unwrap();
        let tags: Vec<TagOutcome> = planned_tags(&project, &version)
            .unwrap()
            .into_iter()
            .map(|reference| TagOutcome {
                tag: reference.rsplit(':').next().unwrap().to_string(),
                reference,
                digest: digest.to_string(),
                status: TagStatus::Pushed,
            })
            .collect();
        assert_eq!(tags.len(), 2);
        assert_eq!(check_tags(&project, &tags).unwrap(), None);

        let moved = layout.write_blob(b"{\"schemaVersion\":2,\"manifests\":[{}]}").unwrap();
        let descriptor =
            DescriptorBuilder::default().media_type(MediaType::ImageIndex).digest(moved.clone()).size(1u64).build();
        {
            let _lock = layout.lock().unwrap();
            layout.set_tag("latest", descriptor.unwrap()).unwrap();
        }
        let reason = check_tags(&project, &tags).unwrap().unwrap();
        assert!(reason.contains("oci-layout:dist/oci:latest"), "{reason}");
        assert!(reason.contains(&moved.to_string()) && reason.contains(&digest.to_string()), "{reason}");
    }
}
