//! `castoff build`: one image per configured platform, built by one of several builders
//! behind the [`Builder`] trait, pushed under its platform tag (`IMAGE:1.2.0-armv7`) or
//! written into an OCI image layout.
//!
//! Plan, then execute: [`plan`] decides everything (platforms, references, build args,
//! labels, the builder and why) without running anything; [`execute`] runs the jobs in
//! parallel, up to `--jobs`, and the first failure cancels the rest.

mod args;
mod buildah;
mod buildx;
pub(crate) mod check;
mod digests;
mod docker;
mod dockerfile;
pub mod layout;
mod native;
mod runner;
mod select;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use oci_spec::image::Digest;
use semver::Version;
use serde::Serialize;

use crate::config::{BuilderKind, ImageConfig, NetworkConfig, OutputTarget};
use crate::error::{Error, Result};
use crate::git::GitInfo;
use crate::platform::Platform;
use crate::project::Project;
use crate::registry::{Client, ClientOptions, Reference, RetryPolicy};
pub use check::check_images;
pub use digests::{read_digest_dir, DigestRecord};
pub use layout::OciLayout;
pub use source::ImageSource;

/// What the caller asked for.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Build only these platforms (as given on the command line); empty means all.
    pub platforms: Vec<String>,
    /// Build locally only: push nothing.
    pub no_push: bool,
    /// Write `{platform, digest, reference}` here for CI fan-out.
    pub digest_file: Option<PathBuf>,
    /// Platforms built at once; `None` means one per core.
    pub jobs: Option<usize>,
    /// buildx only: one multi-platform build instead of one per platform.
    pub single_build: bool,
    /// Print what would run; run nothing.
    pub dry_run: bool,
    /// Overrides `[image] builder`.
    pub builder: Option<BuilderKind>,
    /// Where builder output lines go, prefixed with the platform. `None` drops them.
    pub log: Option<LogSink>,
    /// Told which builder was chosen and why, before any build starts.
    pub announce: Option<Announce>,
}

/// Receives the chosen builder and the reason it was chosen.
pub type Announce = std::sync::Arc<dyn Fn(BuilderKind, &str) + Send + Sync>;

/// Receives `(platform, line)` for every line a builder prints.
pub type LogSink = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;

/// What happened to one platform's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageStatus {
    /// Built and pushed (or written into the OCI layout).
    Pushed,
    /// The target already had exactly this image: nothing was uploaded.
    UpToDate,
    /// Built locally only (`--no-push`).
    Built,
    /// Dry run.
    WouldBuild,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ImageOutcome {
    pub platform: String,
    /// Where the image went: `IMAGE:TAG` or `oci-layout:DIR:TAG`.
    pub reference: String,
    /// The image manifest's digest, when known (not for a local docker/buildah build).
    pub digest: Option<String>,
    pub status: ImageStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    pub builder: BuilderKind,
    /// Why this builder was used (auto-detection's reasoning, or "configured").
    pub reason: String,
    pub output: String,
    pub images: Vec<ImageOutcome>,
    pub dry_run: bool,
    /// In a dry run: the commands or writes each build would make.
    pub planned: Vec<String>,
    /// HTTP requests castoff itself sent.
    pub requests: usize,
}

/// One platform's build, decided before anything runs.
#[derive(Debug, Clone)]
pub struct Job {
    pub platform: Platform,
    /// The per-platform tag (`1.2.0-armv7`).
    pub tag: String,
    /// `IMAGE:TAG` in the registry (also the local name for builders that need one).
    pub reference: Reference,
    /// Expanded build args, in name order.
    pub build_args: BTreeMap<String, String>,
    /// Expanded labels: the OCI ones, then `[image.labels]` (the native builder adds
    /// `[image.native] labels` itself).
    pub labels: BTreeMap<String, String>,
}

/// Where built images go.
pub enum Target {
    /// Boxed: a client is large and a layout small.
    Registry(Box<Client>),
    Layout(OciLayout),
}

impl Target {
    pub fn describe(&self, job: &Job) -> String {
        match self {
            Target::Registry(_) => job.reference.to_string(),
            Target::Layout(layout) => format!("oci-layout:{}:{}", layout.shown().display(), job.tag),
        }
    }
}

/// Everything a builder may look at while building.
pub struct BuildContext<'a> {
    pub root: &'a Path,
    /// castoff.toml as the user named it, for error locations.
    pub shown_config: &'a Path,
    /// Retry and timeout policy for any registry the builder talks to.
    pub network: NetworkConfig,
    pub image: &'a ImageConfig,
    pub version: &'a Version,
    pub target: &'a Target,
    pub push: bool,
    /// Set when another platform failed: stop as soon as possible.
    pub cancel: &'a AtomicBool,
    /// Builder output, one line at a time, for this job's platform.
    pub log: &'a (dyn Fn(&str) + Sync),
}

/// The result of one platform's build.
#[derive(Debug, Clone)]
pub struct Built {
    pub digest: Option<Digest>,
    pub status: ImageStatus,
}

/// A way of building one platform's image.
pub trait Builder: Sync {
    fn kind(&self) -> BuilderKind;

    /// Check what can be checked before any build starts (files present, output
    /// supported): a bad input fails here, with nothing built or pushed.
    fn preflight(&self, jobs: &[Job], ctx: &Preflight<'_>) -> Result<()>;

    /// The commands (or writes) building `job` would run, for `--dry-run`; secrets
    /// redacted.
    fn plan(&self, job: &Job, ctx: &Preflight<'_>) -> Vec<String>;

    /// Build `job` and put it in the target (unless `ctx.push` is false).
    fn build(&self, job: &Job, ctx: &BuildContext<'_>) -> Result<Built>;

    /// Whether a build takes long enough that the registry should be checked before it
    /// starts. A builder that asks the registry first thing anyway says no.
    fn slow(&self) -> bool {
        true
    }

    /// Whether [`Builder::build_together`] is supported (buildx `--single-build`).
    fn builds_together(&self) -> bool {
        false
    }

    /// Build all `jobs` in one invocation (buildx `--single-build`).
    fn build_together(&self, _jobs: &[Job], _ctx: &BuildContext<'_>) -> Result<Vec<Built>> {
        Err(single_build_unsupported(self.kind()))
    }
}

fn single_build_unsupported(kind: BuilderKind) -> Error {
    Error::usage(
        format!("--single-build needs the buildx builder; this build uses {}", kind.name()),
        "drop --single-build, or set [image] builder = \"buildx\"",
    )
}

/// What preflight and planning may look at (no target connection needed).
pub struct Preflight<'a> {
    pub root: &'a Path,
    pub shown_config: &'a Path,
    pub image: &'a ImageConfig,
    pub version: &'a Version,
    pub output: &'a OutputTarget,
    pub push: bool,
}

/// Run `castoff build` for `project` at its current version.
pub fn run(project: &Project, options: BuildOptions) -> Result<BuildOutcome> {
    let image = project.config.image.as_ref().ok_or_else(|| {
        Error::usage(
            format!("{} has no [image] table", project.config_shown().display()),
            "add one, e.g.\n  [image]\n  name = \"registry.example.com/team/app\"\n  \
             platforms = [\"linux/amd64\", \"linux/arm64\"]",
        )
    })?;
    let version = project.read_version()?.version;
    let git = GitInfo::read(&project.root);
    let shown_config = project.config_shown();
    let push = !options.no_push;
    let preflight = Preflight {
        root: &project.root,
        shown_config: &shown_config,
        image,
        version: &version,
        output: &image.build.output,
        push,
    };
    if options.digest_file.is_some() && options.no_push {
        return Err(Error::usage(
            "--digest-file records pushed images, and --no-push pushes nothing",
            "drop one of --digest-file and --no-push",
        ));
    }
    let jobs = args::jobs(image, &version, &git, &options.platforms)?;
    let choice = select::choose(options.builder.unwrap_or(image.build.builder), &preflight)?;
    let builder = choice.builder.as_ref();
    builder.preflight(&jobs, &preflight)?;
    if options.single_build && !builder.builds_together() {
        return Err(single_build_unsupported(builder.kind()));
    }
    if let Some(announce) = &options.announce {
        announce(builder.kind(), &choice.reason);
    }
    let output = match &image.build.output {
        OutputTarget::Registry => image.name.to_string(),
        OutputTarget::OciLayout(dir) => format!("oci-layout:{dir}"),
    };
    if options.dry_run {
        let planned = jobs.iter().flat_map(|job| builder.plan(job, &preflight)).collect();
        let images = jobs
            .iter()
            .map(|job| ImageOutcome {
                platform: job.platform.to_string(),
                reference: match &image.build.output {
                    OutputTarget::Registry => job.reference.to_string(),
                    OutputTarget::OciLayout(dir) => format!("oci-layout:{dir}:{}", job.tag),
                },
                digest: None,
                status: ImageStatus::WouldBuild,
            })
            .collect();
        return Ok(BuildOutcome {
            builder: builder.kind(),
            reason: choice.reason,
            output,
            images,
            dry_run: true,
            planned,
            requests: 0,
        });
    }
    // A layout is created only when something will be written into it: --no-push
    // builds into castoff's cache and leaves the project as it was.
    let target = match &image.build.output {
        OutputTarget::OciLayout(dir) if push => {
            OciLayout::check_location(&project.root, dir, &shown_config, "image.output")?;
            Target::Layout(OciLayout::create(&project.root, dir)?)
        }
        _ => Target::Registry(Box::new(client(project, image))),
    };
    // Preflight the registry (reachable, credentials accepted) before minutes of building.
    if let (Target::Registry(client), Some(first), true, true) = (&target, jobs.first(), push, builder.slow()) {
        client.head_manifest(&first.reference)?;
    }

    let inputs = RunInputs {
        root: &project.root,
        shown_config: &shown_config,
        network: project.config.network,
        image,
        version: &version,
        target: &target,
        push,
    };
    let built = runner::execute(builder, &jobs, &options, &inputs)?;
    let images: Vec<ImageOutcome> = jobs
        .iter()
        .zip(&built)
        .map(|(job, built)| ImageOutcome {
            platform: job.platform.to_string(),
            reference: target.describe(job),
            digest: built.digest.as_ref().map(ToString::to_string),
            status: built.status,
        })
        .collect();
    if let Some(path) = &options.digest_file {
        digests::write(&project.root.join(path), &version, &jobs, &built, &target)?;
    }
    let requests = match &target {
        Target::Registry(client) => client.requests(),
        Target::Layout(_) => 0,
    };
    Ok(BuildOutcome {
        builder: builder.kind(),
        reason: choice.reason,
        output,
        images,
        dry_run: false,
        planned: Vec::new(),
        requests,
    })
}

/// What every job shares while running.
pub(crate) struct RunInputs<'a> {
    pub root: &'a Path,
    pub shown_config: &'a Path,
    pub network: NetworkConfig,
    pub image: &'a ImageConfig,
    pub version: &'a Version,
    pub target: &'a Target,
    pub push: bool,
}

/// The registry client for `project`, with its network policy.
pub fn client(project: &Project, image: &ImageConfig) -> Client {
    registry_client(image, project.config.network)
}

/// A registry client that trusts `image`'s insecure registries and follows `network`.
pub fn registry_client(image: &ImageConfig, network: NetworkConfig) -> Client {
    Client::new(ClientOptions {
        insecure_registries: image.insecure_registries.clone(),
        retry: RetryPolicy { attempts: network.attempts, total: network.total, ..RetryPolicy::default() },
        timeout: network.timeout,
        ..ClientOptions::default()
    })
}
