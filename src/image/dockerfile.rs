//! What the Dockerfile builders (buildx, docker, buildah, podman) share: checking the
//! Dockerfile and context before anything runs, the common flags, running the builder
//! with its output streamed, and turning a failure into an error with a useful hint.

use std::path::{Path, PathBuf};

use super::{BuildContext, Job, Preflight};
use crate::error::{Error, Location, Result};
use crate::exec::{Command, ExecError, Output};
use crate::project::resolves_inside;

/// Lines of a failed builder's output shown in the error.
const FAILURE_LINES: usize = 15;

/// The Dockerfile and context as absolute paths.
pub struct Paths {
    pub dockerfile: PathBuf,
    pub context: PathBuf,
}

impl Paths {
    pub fn of(root: &Path, ctx_image: &crate::config::ImageConfig) -> Paths {
        let context = match ctx_image.build.context.as_str() {
            "" => root.to_path_buf(),
            rel => root.join(rel),
        };
        Paths { dockerfile: root.join(&ctx_image.build.dockerfile), context }
    }
}

/// The Dockerfile exists and, like the context, stays inside the project; `program` is
/// on PATH.
pub fn preflight(ctx: &Preflight<'_>, program: &str, install: &str) -> Result<()> {
    let build = &ctx.image.build;
    let at = |key: &str| Location::file(ctx.shown_config).with_key(key);
    resolves_inside(ctx.root, &build.context, ctx.shown_config, "image.context")?;
    let paths = Paths::of(ctx.root, ctx.image);
    if !paths.context.is_dir() {
        return Err(Error::invalid(
            at("image.context"),
            format!("the build context {} is not a directory", shown(&build.context)),
            "set [image] context to a directory inside the project (the default is the project root)",
        ));
    }
    resolves_inside(ctx.root, &build.dockerfile, ctx.shown_config, "image.dockerfile")?;
    if !paths.dockerfile.is_file() {
        return Err(Error::invalid(
            at("image.dockerfile"),
            format!("there is no Dockerfile at {}", build.dockerfile),
            "create it, or point [image] dockerfile at the right file",
        ));
    }
    if which::which(program).is_err() {
        return Err(Error::usage(format!("`{program}` is not on PATH"), install.to_string()));
    }
    Ok(())
}

fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// `-f DOCKERFILE --build-arg K=V ... --label K=V ...`: the flags every builder takes.
pub fn common_flags(job: &Job, paths: &Paths) -> Vec<String> {
    let mut flags = vec!["-f".to_string(), paths.dockerfile.display().to_string()];
    for (name, value) in &job.build_args {
        flags.push("--build-arg".into());
        flags.push(format!("{name}={value}"));
    }
    for (name, value) in &job.labels {
        flags.push("--label".into());
        flags.push(format!("{name}={value}"));
    }
    flags
}

/// Run a builder command with its output streamed to the job's log. A failure (or a
/// program that cannot start) becomes an error naming the command, the platform, the
/// last lines it printed, and a hint from what those lines say.
pub fn run(command: &Command, job: &Job, ctx: &BuildContext<'_>) -> Result<Output> {
    let output = command.run_streaming(ctx.cancel, ctx.log).map_err(|e| match e {
        ExecError::NotFound { program } => {
            Error::usage(format!("`{program}` is not on PATH"), "install it, or choose another [image] builder")
        }
        other => other.into(),
    })?;
    if output.success() {
        return Ok(output);
    }
    Err(failure(command, job, &output))
}

/// The error for a builder command that exited non-zero.
pub fn failure(command: &Command, job: &Job, output: &Output) -> Error {
    let status = match output.code {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".into(),
    };
    let tail = output.stderr_tail(FAILURE_LINES);
    let indented: Vec<String> = tail.lines().map(|line| format!("    {line}")).collect();
    Error::Failed {
        problem: format!(
            "building {} failed ({status}):\n  {command}\n  last lines of its output:\n{}",
            job.platform,
            indented.join("\n")
        ),
        hint: hint_for(&tail, job, command.program()),
    }
}

/// What the builder's own words suggest the user do.
fn hint_for(text: &str, job: &Job, program: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if lower.contains("exec format error") || lower.contains("binfmt") {
        return format!(
            "a RUN step executed a {} binary on this machine, which needs emulation: install \
             qemu-user-static and binfmt-support (or `docker run --privileged --rm tonistiigi/binfmt \
             --install all`), or build {} on a native runner with `castoff build --platform {}`",
            job.platform, job.platform, job.platform
        );
    }
    let registry = job.reference.api_host().to_ascii_lowercase();
    if lower.contains("pinging container registry") || lower.contains(&format!("dial tcp {registry}")) {
        return format!(
            "the registry {registry} did not answer; check it is up and reachable from this machine, \
             then re-run: platforms already pushed are found up to date"
        );
    }
    let daemon_words = ["cannot connect to the docker daemon", "is the docker daemon running"];
    let dropped = ["connection refused", "unexpected eof", "connection reset"];
    if daemon_words.iter().any(|w| lower.contains(w))
        || (program == "docker" && dropped.iter().any(|w| lower.contains(w)))
    {
        return "the Docker daemon stopped answering; check it is running (`docker version`) and re-run: \
                platforms already pushed are found up to date"
            .into();
    }
    if lower.contains("checking authfile") {
        return "buildah and podman read credentials from $DOCKER_CONFIG/config.json when DOCKER_CONFIG is \
                set: create that file (`{}` will do) or unset DOCKER_CONFIG"
            .into();
    }
    if lower.contains("server gave http response to https client") {
        return "the registry speaks plain HTTP: list it in [image] insecure_registries (and in the \
                daemon's insecure-registries)"
            .into();
    }
    if lower.contains("no match for platform") || lower.contains("does not provide the specified platform") {
        return format!("the base image has no {} variant; pick a base that does, or drop the platform", job.platform);
    }
    if lower.contains("unauthorized") || lower.contains("denied") {
        return format!("log in to {} (`docker login`), or check the credentials", job.reference.registry);
    }
    "see the builder's output above; `castoff build --platform PLATFORM -v` rebuilds one platform".into()
}

/// The error for a registry-only builder asked to write into an OCI layout.
pub fn no_layout(builder: &str, dir: &str) -> Error {
    Error::usage(
        format!("the {builder} builder pushes to a registry; it cannot add images to the OCI layout {dir}"),
        "use builder = \"native\", \"buildah\" or \"podman\" for an oci-layout output, or output = \"registry\"",
    )
}

/// A private temporary directory for a builder's side files (digest, metadata).
pub fn scratch_dir(builder: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(&format!("castoff-{builder}-")).tempdir().map_err(|source| Error::Io {
        action: "create a temporary directory in",
        path: std::env::temp_dir(),
        source,
    })
}

/// `--tls-verify=false` is needed for a plain-HTTP registry (loopback or listed in
/// `insecure_registries`).
pub fn plain_http(job: &Job, ctx_image: &crate::config::ImageConfig) -> bool {
    crate::registry::plain_http_allowed(job.reference.api_host(), &ctx_image.insecure_registries)
}
