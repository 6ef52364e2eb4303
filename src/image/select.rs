//! Choosing the builder: the configured one, or for `auto` the first that can work
//! here, with the reasoning kept so castoff can say why it picked what it picked.

use super::buildah::Buildah;
use super::buildx::Buildx;
use super::docker::Docker;
use super::native::Native;
use super::{Builder, Preflight};
use crate::config::{BuilderKind, OutputTarget};
use crate::error::{Error, Result};
use crate::exec::Command;

pub struct Choice {
    pub builder: Box<dyn Builder>,
    pub reason: String,
}

/// The builder for `kind`; for [`BuilderKind::Auto`], the first of buildx, docker,
/// buildah, podman and native that can work, in that order.
pub fn choose(kind: BuilderKind, ctx: &Preflight<'_>) -> Result<Choice> {
    if kind != BuilderKind::Auto {
        return Ok(Choice { builder: builder(kind), reason: "configured".into() });
    }
    let has_native = ctx.image.build.native.is_some();
    let dockerfile = ctx.root.join(&ctx.image.build.dockerfile);
    if has_native && !dockerfile.is_file() {
        let reason = format!("there is no {} and [image.native] is configured", ctx.image.build.dockerfile);
        return Ok(Choice { builder: builder(BuilderKind::Native), reason });
    }
    let mut looked = Vec::new();
    // buildx and docker push to a registry; they cannot add to an OCI layout.
    let into_layout = matches!(ctx.output, OutputTarget::OciLayout(_));
    if into_layout {
        looked.push("buildx, docker: skipped, they cannot write into the OCI layout [image] output names".to_string());
    } else {
        if probe(&["buildx", "version"]) {
            let reason = "`docker buildx version` works".into();
            return Ok(Choice { builder: builder(BuilderKind::Buildx), reason });
        }
        looked.push("buildx: `docker buildx version` failed; install the buildx plugin (Debian: docker-buildx)".into());
        if probe(&["version", "--format", "{{.Server.Version}}"]) {
            let reason = "buildx is missing and a Docker daemon answers `docker version`".into();
            return Ok(Choice { builder: builder(BuilderKind::Docker), reason });
        }
        looked.push(
            "docker: no Docker daemon answers `docker version`; install docker.io and start dockerd, or set DOCKER_HOST"
                .into(),
        );
    }
    for (kind, program) in [(BuilderKind::Buildah, "buildah"), (BuilderKind::Podman, "podman")] {
        match which::which(program) {
            Ok(path) => {
                let skipped = if into_layout { "the output is an OCI layout" } else { "no buildx or Docker daemon" };
                let reason = format!("{skipped}; {program} is at {}", path.display());
                return Ok(Choice { builder: builder(kind), reason });
            }
            Err(_) => looked.push(format!("{program}: not on PATH; install it (Debian: apt-get install {program})")),
        }
    }
    if has_native {
        let reason = "no buildx, Docker daemon, buildah or podman; [image.native] is configured".into();
        return Ok(Choice { builder: builder(BuilderKind::Native), reason });
    }
    looked.push("native: [image.native] is not configured in castoff.toml".into());
    Err(Error::usage(
        format!("no image builder is available; looked for:\n  {}", looked.join("\n  ")),
        "install one of them, or configure the daemonless builder:\n  [image.native]\n  \
         files = [{ src = \"dist/{suffix}/app\", dst = \"/usr/local/bin/app\", mode = \"0755\" }]",
    ))
}

fn builder(kind: BuilderKind) -> Box<dyn Builder> {
    match kind {
        BuilderKind::Buildx => Box::new(Buildx),
        BuilderKind::Docker => Box::new(Docker),
        BuilderKind::Buildah => Box::new(Buildah { program: "buildah" }),
        BuilderKind::Podman => Box::new(Buildah { program: "podman" }),
        BuilderKind::Native | BuilderKind::Auto => Box::new(Native),
    }
}

/// Whether `docker ARGS` exits 0.
fn probe(args: &[&str]) -> bool {
    Command::new("docker").args(args.iter().copied()).run().is_ok_and(|output| output.success())
}
