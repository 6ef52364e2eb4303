//! The external programs the service fixtures drive, and running them so that a failure
//! says what ran and what it printed. A missing program is a loud failure naming its
//! Debian package (`cargo xtask test` installs them), never a silent skip.
//!
//! Tools that come from other registries (the pynuget venv from PyPI, NuGet.exe from npm)
//! are installed once per machine under [`tools_dir`] by [`install_once`], which the tests
//! and `cargo xtask test` share, so the first test does not pay for the download.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

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
/// Runs the fake `docker buildx` (`buildx.rs`); python3 is on every Debian machine. It
/// also makes the pynuget venv, for which Debian's python3 needs `python3-venv`.
pub const PYTHON3: Program = Program { name: "python3", package: "python3" };
/// The Debian package that lets Debian's python3 make venvs (`python3 -m venv` needs ensurepip).
pub const PYTHON3_VENV_PACKAGE: &str = "python3-venv";
/// Installs NuGet.exe (npm `nuget-exe`) into [`tools_dir`].
pub const NPM: Program = Program { name: "npm", package: "npm" };
/// Sends packages to pynuget the way a shell script would (the baseline castoff is measured
/// against, and the harness's own check of the feed).
pub const CURL: Program = Program { name: "curl", package: "curl" };
/// The Mono runtime that runs NuGet.exe. The `mono` program alone (mono-runtime) is not
/// enough: see [`MONO_PACKAGES`].
pub const MONO: Program = Program { name: "mono", package: "mono-runtime" };
/// The Debian packages NuGet.exe 5.8 needs under mono: mono-runtime plus one package per
/// assembly NuGet.exe references (`monodis --assemblyref nuget.exe`). Checked on a fresh
/// Debian 12 (debootstrap minbase + these, `--no-install-recommends`: 106 packages, about
/// 170 MB): pack (snupkg and legacy symbols), add -Expand, install from a folder and from
/// pynuget, list and push all work. With mono-runtime alone NuGet.exe dies at start-up
/// (System.ComponentModel.Composition missing). `mono-complete` works too, at about three
/// times the size.
pub const MONO_PACKAGES: &[&str] = &[
    "mono-runtime",
    "libmono-microsoft-build-framework4.0-cil",
    "libmono-microsoft-build-utilities-v4.0-4.0-cil",
    "libmono-microsoft-csharp4.0-cil",
    "libmono-system4.0-cil",
    "libmono-system-componentmodel-composition4.0-cil",
    "libmono-system-componentmodel-dataannotations4.0-cil",
    "libmono-system-core4.0-cil",
    "libmono-system-data4.0-cil",
    "libmono-system-data-services-client4.0-cil",
    "libmono-system-io-compression4.0-cil",
    "libmono-system-identitymodel4.0-cil",
    "libmono-system-net-http4.0-cil",
    "libmono-system-numerics4.0-cil",
    "libmono-system-runtime-serialization4.0-cil",
    "libmono-system-security4.0-cil",
    "libmono-system-servicemodel4.0a-cil",
    "libmono-system-xml4.0-cil",
    "libmono-system-xml-linq4.0-cil",
    "libmono-windowsbase4.0-cil",
];

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

/// Where tools from PyPI and npm are installed once per machine, shared by every test
/// process and `cargo xtask test`: `<workspace>/target/testkit`. It is inside `target/` so
/// `cargo clean` removes it and git ignores it.
pub fn tools_dir() -> PathBuf {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR"));
    testkit.parent().unwrap_or(testkit).join("target").join("testkit")
}

/// The file in an installed tool directory that says what was installed (see [`install_once`]).
const STAMP_FILE: &str = ".testkit-installed";

/// `tools_dir()/name`, installed by `install` unless it already holds what `stamp`
/// describes and `usable` accepts it.
///
/// Safe when test threads and processes race: the install runs under an exclusive lock
/// on `tools_dir()/name.lock` (the others wait, then find it done), into a fresh staging
/// directory that is renamed into place only after `install` succeeded and the stamp was
/// written. A half-finished install (killed, failed) is never mistaken for a finished
/// one; a stamp that differs (say, new version pins) replaces the old directory.
/// `install` gets the staging directory and says what failed, which is returned as is.
pub fn install_once(
    name: &str,
    stamp: &str,
    usable: impl Fn(&Path) -> bool,
    install: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let root = tools_dir();
    let dir = root.join(name);
    let installed = |dir: &Path| fs::read_to_string(dir.join(STAMP_FILE)).is_ok_and(|s| s == stamp) && usable(dir);
    if installed(&dir) {
        return Ok(dir);
    }
    fs::create_dir_all(&root).map_err(|e| format!("could not create {}: {e}", root.display()))?;
    let lock_path = root.join(format!("{name}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("could not open the lock file {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("could not lock {}: {e}", lock_path.display()))?;
    if installed(&dir) {
        return Ok(dir); // another thread or process installed it while we waited
    }
    // Holding the lock, any staging directory left here is from an install that was killed.
    let prefix = format!(".{name}.staging-");
    for entry in fs::read_dir(&root).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&root)
        .map_err(|e| format!("could not create a staging directory in {}: {e}", root.display()))?;
    eprintln!("testkit: installing {name} into {} (once per machine)", dir.display());
    let start = Instant::now();
    install(staging.path())?;
    fs::write(staging.path().join(STAMP_FILE), stamp).map_err(|e| format!("could not write the stamp: {e}"))?;
    if dir.exists() {
        let old = root.join(format!(".{name}.old-{}", std::process::id()));
        fs::rename(&dir, &old).map_err(|e| format!("could not move the old {} aside: {e}", dir.display()))?;
        let _ = fs::remove_dir_all(&old);
    }
    let staged = staging.keep();
    fs::rename(&staged, &dir)
        .map_err(|e| format!("could not rename {} to {}: {e}", staged.display(), dir.display()))?;
    eprintln!("testkit: installed {name} in {:.1} s", start.elapsed().as_secs_f64());
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    use super::*;

    /// Racing threads install once; a new stamp reinstalls; a failed install keeps the old.
    #[test]
    fn install_once_installs_once_under_a_race_and_again_for_a_new_stamp() {
        let name = format!("selftest-install-once-{}", std::process::id());
        let installs = AtomicUsize::new(0);
        let install = |staging: &Path| {
            installs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            fs::write(staging.join("tool"), "v1").map_err(|e| e.to_string())
        };
        let barrier = Barrier::new(4);
        let dirs: Vec<PathBuf> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        install_once(&name, "v1", |dir| dir.join("tool").is_file(), install).unwrap()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(installs.load(Ordering::SeqCst), 1);
        assert!(dirs.iter().all(|dir| *dir == tools_dir().join(&name)));

        let failed = install_once(&name, "v2", |_| true, |_| Err("no network".to_string()));
        assert_eq!(failed, Err("no network".to_string()));
        assert_eq!(fs::read_to_string(dirs[0].join("tool")).unwrap(), "v1");

        let reinstalled = install_once(
            &name,
            "v2",
            |_| true,
            |staging| fs::write(staging.join("tool"), "v2").map_err(|e| e.to_string()),
        );
        assert_eq!(fs::read_to_string(reinstalled.unwrap().join("tool")).unwrap(), "v2");
        let leftovers: Vec<_> = fs::read_dir(tools_dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(&name) && e.path() != dirs[0])
            .map(|e| e.file_name())
            .collect();
        let _ = fs::remove_dir_all(&dirs[0]);
        let _ = fs::remove_file(tools_dir().join(format!("{name}.lock")));
        assert_eq!(leftovers, vec![std::ffi::OsString::from(format!("{name}.lock"))]);
    }
}
