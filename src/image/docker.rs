//! `DOCKER_BUILDKIT=1 docker build --platform P` then `docker push`: for a machine with
//! a Docker daemon but no buildx plugin. BuildKit must be on: the legacy builder
//! ignores `--platform` for `FROM scratch`. The digest comes from the registry, which
//! is the one authority on what was pushed.

use super::dockerfile::{self, Paths};
use super::{BuildContext, Builder, Built, ImageStatus, Job, Preflight, Target};
use crate::config::{BuilderKind, OutputTarget};
use crate::error::{Error, Result};
use crate::exec::Command;

pub struct Docker;

const INSTALL: &str = "install the docker CLI (Debian: docker.io), or choose another [image] builder";

impl Docker {
    fn build_command(job: &Job, ctx_image: &crate::config::ImageConfig, root: &std::path::Path) -> Command {
        let paths = Paths::of(root, ctx_image);
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "1")
            .args(["build", "--platform"])
            .arg(job.platform.to_string())
            .arg("-t")
            .arg(job.reference.to_string())
            .arg("--progress=plain")
            .args(dockerfile::common_flags(job, &paths))
            .arg(paths.context.display().to_string())
    }

    fn push_command(job: &Job) -> Command {
        Command::new("docker").arg("push").arg(job.reference.to_string())
    }
}

impl Builder for Docker {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Docker
    }

    fn preflight(&self, _jobs: &[Job], ctx: &Preflight<'_>) -> Result<()> {
        if let OutputTarget::OciLayout(dir) = ctx.output {
            return Err(dockerfile::no_layout("docker", dir));
        }
        dockerfile::preflight(ctx, "docker", INSTALL)?;
        let answered = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).run();
        match answered {
            Ok(output) if output.success() => Ok(()),
            Ok(output) => Err(Error::usage(
                format!("no Docker daemon answers: {}", output.stderr_tail(2)),
                "start dockerd (or set DOCKER_HOST to a running one), or choose another [image] builder",
            )),
            Err(e) => Err(Error::usage(e.to_string(), INSTALL)),
        }
    }

    fn plan(&self, job: &Job, ctx: &Preflight<'_>) -> Vec<String> {
        let mut planned = vec![Docker::build_command(job, ctx.image, ctx.root).to_string()];
        if ctx.push {
            planned.push(Docker::push_command(job).to_string());
        }
        planned
    }

    fn build(&self, job: &Job, ctx: &BuildContext<'_>) -> Result<Built> {
        dockerfile::run(&Docker::build_command(job, ctx.image, ctx.root), job, ctx)?;
        if !ctx.push {
            return Ok(Built { digest: None, status: ImageStatus::Built });
        }
        dockerfile::run(&Docker::push_command(job), job, ctx)?;
        let Target::Registry(client) = ctx.target else {
            return Err(Error::Internal("the docker builder pushes only to a registry".into()));
        };
        let found = client.head_manifest(&job.reference)?.ok_or_else(|| Error::Failed {
            problem: format!("`docker push {}` succeeded but the registry has no such manifest", job.reference),
            hint: "check that the daemon and castoff reach the same registry (proxies, /etc/hosts)".into(),
        })?;
        Ok(Built { digest: Some(found.digest), status: ImageStatus::Pushed })
    }
}
