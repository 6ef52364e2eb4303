//! `docker buildx build`: per platform (the Makefile workflow's form), or one
//! multi-platform build with `--single-build`. The pushed digest is read from
//! `--metadata-file`, which buildx writes after the push; no registry round-trip.
//!
//! `[image] buildx_builder` selects a named builder (docker-container, remote or
//! kubernetes driver): how users spread builds over several machines.

use std::path::Path;

use oci_spec::image::Digest;

use super::dockerfile::{self, Paths};
use super::{BuildContext, Builder, Built, ImageStatus, Job, Preflight, Target};
use crate::config::{BuilderKind, OutputTarget};
use crate::error::{Error, Result};
use crate::exec::Command;
use crate::manifest::resolve::resolve;

pub struct Buildx;

const INSTALL: &str = "install the docker CLI and its buildx plugin (Debian: docker.io and docker-buildx), \
                       or choose another [image] builder";

impl Buildx {
    /// The `docker buildx build` command for `platforms`; `metadata` is where buildx
    /// writes the digest.
    fn command(jobs: &[&Job], image: &crate::config::ImageConfig, root: &Path, push: bool, metadata: &Path) -> Command {
        let paths = Paths::of(root, image);
        let platforms: Vec<String> = jobs.iter().map(|job| job.platform.to_string()).collect();
        let mut command = Command::new("docker").args(["buildx", "build", "--platform"]).arg(platforms.join(","));
        if let Some(name) = &image.build.buildx_builder {
            command = command.args(["--builder", name]);
        }
        command = match (jobs, push) {
            ([job], true) => command.arg("-t").arg(job.reference.to_string()).arg("--push"),
            ([job], false) => command.arg("-t").arg(job.reference.to_string()).arg("--load"),
            // One multi-platform build: an index pushed by digest only; castoff tags
            // each platform's image itself afterwards.
            (_, _) => command.arg("--output").arg(format!(
                "type=image,name={},push-by-digest=true,name-canonical=true,push={push}",
                image.platform_name.name()
            )),
        };
        let provenance = if image.build.provenance { "--provenance=true" } else { "--provenance=false" };
        let first = jobs.first().map(|job| dockerfile::common_flags(job, &paths)).unwrap_or_default();
        command
            .arg(provenance)
            .arg("--progress=plain")
            .arg("--metadata-file")
            .arg(metadata.display().to_string())
            .args(first)
            .arg(paths.context.display().to_string())
    }
}

impl Builder for Buildx {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Buildx
    }

    fn preflight(&self, _jobs: &[Job], ctx: &Preflight<'_>) -> Result<()> {
        if let OutputTarget::OciLayout(dir) = ctx.output {
            return Err(dockerfile::no_layout("buildx", dir));
        }
        dockerfile::preflight(ctx, "docker", INSTALL)?;
        let version = Command::new("docker").args(["buildx", "version"]).run()?;
        if !version.success() {
            return Err(Error::usage(
                format!("`docker buildx version` failed: {}", version.stderr_tail(2)),
                INSTALL.to_string(),
            ));
        }
        if let Some(name) = &ctx.image.build.buildx_builder {
            let inspect = Command::new("docker").args(["buildx", "inspect", name.as_str()]).run()?;
            if !inspect.success() {
                return Err(Error::invalid(
                    crate::error::Location::file(ctx.shown_config).with_key("image.buildx_builder"),
                    format!("buildx has no builder `{name}`: {}", inspect.stderr_tail(2)),
                    "create it (`docker buildx create --name NAME --driver docker-container|remote|kubernetes ...`), \
                     or fix [image] buildx_builder; `docker buildx ls` lists the builders",
                ));
            }
        }
        Ok(())
    }

    fn builds_together(&self) -> bool {
        true
    }

    fn plan(&self, job: &Job, ctx: &Preflight<'_>) -> Vec<String> {
        vec![Buildx::command(&[job], ctx.image, ctx.root, ctx.push, Path::new("METADATA.json")).to_string()]
    }

    fn build(&self, job: &Job, ctx: &BuildContext<'_>) -> Result<Built> {
        let scratch = dockerfile::scratch_dir("buildx")?;
        let metadata = scratch.path().join("metadata.json");
        let command = Buildx::command(&[job], ctx.image, ctx.root, ctx.push, &metadata);
        dockerfile::run(&command, job, ctx)?;
        if !ctx.push {
            return Ok(Built { digest: None, status: ImageStatus::Built });
        }
        let digest = read_metadata(&metadata, &command)?;
        Ok(Built { digest: Some(digest), status: ImageStatus::Pushed })
    }

    /// One buildx invocation for every platform; then each platform's image, read from
    /// the pushed index, is put under its own platform tag so `castoff manifest` finds
    /// it like any other.
    fn build_together(&self, jobs: &[Job], ctx: &BuildContext<'_>) -> Result<Vec<Built>> {
        let scratch = dockerfile::scratch_dir("buildx")?;
        let metadata = scratch.path().join("metadata.json");
        let all: Vec<&Job> = jobs.iter().collect();
        let command = Buildx::command(&all, ctx.image, ctx.root, ctx.push, &metadata);
        let Some(first) = jobs.first() else { return Ok(Vec::new()) };
        dockerfile::run(&command, first, ctx)?;
        if !ctx.push {
            return Ok(jobs.iter().map(|_| Built { digest: None, status: ImageStatus::Built }).collect());
        }
        let index_digest = read_metadata(&metadata, &command)?;
        let Target::Registry(client) = ctx.target else {
            return Err(Error::Internal("buildx builds only into a registry".into()));
        };
        let index = ctx
            .image
            .platform_name
            .with_digest(index_digest.as_ref())
            .map_err(|e| Error::Internal(format!("buildx reported a bad digest: {e}")))?;
        jobs.iter()
            .map(|job| {
                let child = resolve(client.as_ref(), &index, &job.platform)?;
                client.put_manifest(&job.reference, &child.media_type, &child.bytes)?;
                Ok(Built { digest: Some(child.digest), status: ImageStatus::Pushed })
            })
            .collect()
    }
}

/// `containerimage.digest` from buildx's metadata file.
fn read_metadata(path: &Path, command: &Command) -> Result<Digest> {
    let missing = |problem: String| Error::Failed {
        problem: format!("`{command}` succeeded but {problem}"),
        hint: "use a buildx that supports --metadata-file (v0.6 or later)".into(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| missing(format!("wrote no metadata file ({e})")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| missing(format!("its metadata file is not JSON ({e})")))?;
    let digest = value
        .get("containerimage.digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| missing("its metadata file has no containerimage.digest".into()))?;
    digest.parse::<Digest>().map_err(|e| missing(format!("its metadata digest `{digest}` is malformed ({e})")))
}
