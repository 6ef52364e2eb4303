//! The external programs the service fixtures drive, and running them so that a failure
//! says what ran and what it printed. A missing program is a loud failure naming its
//! Debian package (`cargo xtask test` installs them), never a silent skip.

use std::env;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A program the tests need and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub package: &'static str,
}

/// CNCF distribution 2.8, the registry server.
pub const DOCKER_REGISTRY: Program = Program { name: "docker-registry", package: "docker-registry" };
/// Pushes OCI layouts to registries and reads manifests back.
pub const SKOPEO: Program = Program { name: "skopeo", package: "skopeo" };
/// Makes the registry's bcrypt password file.
pub const HTPASSWD: Program = Program { name: "htpasswd", package: "apache2-utils" };
/// The docker CLI (docker 28 in /usr/local/bin here); only its daemonless `manifest` commands.
pub const DOCKER: Program = Program { name: "docker", package: "docker.io" };
/// The Docker engine (20.10 here), started privately per test process by `dockerd.rs`.
pub const DOCKERD: Program = Program { name: "dockerd", package: "docker.io" };
/// Daemonless image builds (`buildah build --isolation chroot`) and pushes.
pub const BUILDAH: Program = Program { name: "buildah", package: "buildah" };
/// Daemonless builds and pushes through podman's docker-like CLI.
pub const PODMAN: Program = Program { name: "podman", package: "podman" };
/// Runs the fake `docker buildx` (`buildx.rs`); python3 is on every Debian machine.
pub const PYTHON3: Program = Program { name: "python3", package: "python3" };

impl Program {
    /// Where the program is on PATH; panics naming the package when it is not.
    pub fn path(&self) -> PathBuf {
        let search = env::var_os("PATH").unwrap_or_default();
        env::split_paths(&search).map(|dir| dir.join(self.name)).find(|path| is_executable(path)).unwrap_or_else(|| {
            panic!(
                "`{}` is not installed (Debian package `{}`); `cargo xtask test` installs it before running the tests",
                self.name, self.package
            )
        })
    }

    /// A command running the program, checked to exist first.
    pub fn command(&self) -> Command {
        Command::new(self.path())
    }
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// How `command` reads on a shell line, for failure messages.
pub fn describe(command: &Command) -> String {
    let args = command.get_args().map(|arg| arg.to_string_lossy().into_owned());
    std::iter::once(command.get_program().to_string_lossy().into_owned()).chain(args).collect::<Vec<_>>().join(" ")
}

/// Run `command` to completion, capturing its output; panics only if it cannot start.
pub fn output(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("could not run `{}`: {e}", describe(command)))
}

/// Run `command`: its stdout when it exits 0, otherwise what ran, its status and output.
pub fn try_run(command: &mut Command) -> Result<String, String> {
    let out = output(command);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!("`{}` failed ({}):\nstderr:\n{stderr}\nstdout:\n{stdout}", describe(command), out.status))
}

/// Run `command`, asserted to exit 0; its stdout.
pub fn run_ok(command: &mut Command) -> String {
    try_run(command).unwrap_or_else(|failure| panic!("{failure}"))
}
