//! `buildah build` / `podman build` then `push --digestfile`: daemonless Dockerfile
//! builds. `--isolation chroot` needs neither runc nor a daemon; storage follows the
//! user's containers-storage configuration (`CONTAINERS_STORAGE_CONF`, `STORAGE_DRIVER`).
//!
//! Into an OCI layout, the push goes to `oci:DIR:TAG` under the layout's lock, because
//! buildah rewrites index.json and parallel platforms would otherwise race.

use oci_spec::image::Digest;

use super::dockerfile::{self, Paths};
use super::{BuildContext, Builder, Built, ImageStatus, Job, Preflight, Target};
use crate::config::BuilderKind;
use crate::error::{Error, Result};
use crate::exec::Command;

/// buildah, or podman (same flags for what castoff uses).
pub struct Buildah {
    pub program: &'static str,
}

impl Buildah {
    fn build_command(&self, job: &Job, ctx_image: &crate::config::ImageConfig, root: &std::path::Path) -> Command {
        let paths = Paths::of(root, ctx_image);
        Command::new(self.program)
            .args(["build", "--isolation", "chroot", "--platform"])
            .arg(job.platform.to_string())
            .arg("-t")
            .arg(job.reference.to_string())
            .args(dockerfile::common_flags(job, &paths))
            .arg(paths.context.display().to_string())
    }

    /// `push --digestfile FILE REF DESTINATION`.
    fn push_command(
        &self,
        job: &Job,
        ctx_image: &crate::config::ImageConfig,
        destination: &str,
        digest_file: &str,
    ) -> Command {
        let mut command = Command::new(self.program).arg("push");
        if destination.starts_with("docker://") && dockerfile::plain_http(job, ctx_image) {
            command = command.arg("--tls-verify=false");
        }
        command.args(["--digestfile", digest_file]).arg(job.reference.to_string()).arg(destination)
    }

    fn destination(job: &Job, target_layout: Option<&std::path::Path>) -> String {
        match target_layout {
            Some(dir) => format!("oci:{}:{}", dir.display(), job.tag),
            None => format!("docker://{}", job.reference),
        }
    }
}

impl Builder for Buildah {
    fn kind(&self) -> BuilderKind {
        match self.program {
            "podman" => BuilderKind::Podman,
            _ => BuilderKind::Buildah,
        }
    }

    fn preflight(&self, _jobs: &[Job], ctx: &Preflight<'_>) -> Result<()> {
        let install =
            format!("install {0} (Debian: apt-get install {0}), or choose another [image] builder", self.program);
        dockerfile::preflight(ctx, self.program, &install)
    }

    fn plan(&self, job: &Job, ctx: &Preflight<'_>) -> Vec<String> {
        let mut planned = vec![self.build_command(job, ctx.image, ctx.root).to_string()];
        if ctx.push {
            let layout = match ctx.output {
                crate::config::OutputTarget::OciLayout(dir) => Some(ctx.root.join(dir)),
                crate::config::OutputTarget::Registry => None,
            };
            let destination = Buildah::destination(job, layout.as_deref());
            planned.push(self.push_command(job, ctx.image, &destination, "DIGESTFILE").to_string());
        }
        planned
    }

    fn build(&self, job: &Job, ctx: &BuildContext<'_>) -> Result<Built> {
        dockerfile::run(&self.build_command(job, ctx.image, ctx.root), job, ctx)?;
        if !ctx.push {
            return Ok(Built { digest: None, status: ImageStatus::Built });
        }
        let scratch = dockerfile::scratch_dir(self.program)?;
        let digest_file = scratch.path().join("digest");
        let digest_arg = digest_file.display().to_string();
        match ctx.target {
            Target::Registry(_) => {
                let destination = Buildah::destination(job, None);
                dockerfile::run(&self.push_command(job, ctx.image, &destination, &digest_arg), job, ctx)?;
            }
            Target::Layout(layout) => {
                let _guard = layout.lock()?;
                let destination = Buildah::destination(job, Some(layout.dir()));
                dockerfile::run(&self.push_command(job, ctx.image, &destination, &digest_arg), job, ctx)?;
            }
        }
        let text = std::fs::read_to_string(&digest_file).map_err(|source| Error::Io {
            action: "read the digest file",
            path: digest_file.clone(),
            source,
        })?;
        let digest = text.trim().parse::<Digest>().map_err(|e| Error::Failed {
            problem: format!("{} push wrote a malformed digest `{}`: {e}", self.program, text.trim()),
            hint: format!("check the {} version (--digestfile needs buildah 1.10 or podman 1.6)", self.program),
        })?;
        Ok(Built { digest: Some(digest), status: ImageStatus::Pushed })
    }
}
