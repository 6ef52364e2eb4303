//! A private Docker engine per test (or per test process): Debian's docker.io `dockerd`
//! (20.10) with its own data root, exec root, socket, containerd namespaces and an empty
//! daemon config, so it shares nothing with a system daemon nor with other test daemons.
//! Two or more run side by side here (each starts its own containerd under its exec
//! root); [`Dockerd::start`] needs no serialising.
//!
//! Builds go through `/usr/bin/docker`, the docker.io 20.10 client, with
//! `DOCKER_BUILDKIT=1`: its legacy builder fails on `--platform` for `FROM scratch`, and
//! the docker 28 client in /usr/local/bin has no buildx and its legacy builder ignores
//! `--platform`. [`Dockerd::bin_dir`] puts the 20.10 client first on a PATH.
//!
//! The daemon runs with `--bridge=none --iptables=false --ip-forward=false`, so it touches
//! no network settings of the machine; Dockerfile `RUN` steps need `--network none`.
//! It pushes to `127.0.0.1:PORT` registries over plain HTTP without configuration
//! (127.0.0.0/8 is an insecure registry range by default).
//!
//! Outside its directory the daemon writes only `/etc/docker/key.json` (20.10 keeps its
//! libtrust key there whatever the flags) and reads nothing of the user's.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::programs::{describe, DOCKERD};

/// The docker.io 20.10 client: BuildKit without buildx (`DOCKER_BUILDKIT=1`).
pub const DOCKER_20_CLIENT: &str = "/usr/bin/docker";
/// How long the daemon may take to answer `docker version` (0.05-0.25 s here; the first
/// start on a fresh machine initialises more).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd daemon may take to stop (about 1 s here) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the daemon's log a failure shows.
const LOG_TAIL_BYTES: u64 = 8 * 1024;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const PR_SET_PDEATHSIG: i32 = 1;
const MNT_DETACH: i32 = 2;

// glibc, which std links anyway; declared here rather than adding the libc crate (and a
// Cargo.lock change) for four functions.
extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
    fn umount2(target: *const std::ffi::c_char, flags: i32) -> i32;
    fn atexit(callback: extern "C" fn()) -> i32;
}

/// A running private dockerd. Dropping it stops the daemon (SIGTERM, then SIGKILL) and
/// removes its directory.
pub struct Dockerd {
    /// `None` once stopped (and reaped).
    child: Mutex<Option<Child>>,
    pid: u32,
    dir: TempDir,
}

static SHARED: OnceLock<Dockerd> = OnceLock::new();

impl Dockerd {
    /// Start a daemon in a fresh directory and wait until it answers; panics with the
    /// tail of its log when it does not (never skips).
    ///
    /// The daemon gets SIGTERM when the thread that started it ends (so a test killed
    /// mid-way leaves no daemon behind); keep the value on the thread that made it.
    pub fn start() -> Dockerd {
        Dockerd::try_start().unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// One daemon for the whole test process, started on first use.
    ///
    /// Statics are never dropped, so it is stopped at process exit by an `atexit` handler
    /// (libtest returns from main or calls `exit`, both run it): SIGTERM, wait, remove the
    /// directory. That adds about a second to the process's exit. Should the process die
    /// by a signal instead, the daemon still gets SIGTERM from the kernel (it is started
    /// from a thread that lives as long as the process, with PR_SET_PDEATHSIG) and stops
    /// by itself, leaving only its temporary directory. Tests must not [`Dockerd::kill`]
    /// the shared daemon: start a dedicated one for that.
    pub fn shared() -> &'static Dockerd {
        SHARED.get_or_init(|| {
            let (sender, receiver) = mpsc::channel();
            let keeper = move || {
                let started = Dockerd::try_start();
                let ok = started.is_ok();
                let _ = sender.send(started);
                // The parent-death signal fires when this thread ends: never end it.
                if ok {
                    loop {
                        thread::park();
                    }
                }
            };
            thread::Builder::new().name("castoff-shared-dockerd".into()).spawn(keeper).expect("spawn a thread");
            let dockerd = match receiver.recv() {
                Ok(started) => started.unwrap_or_else(|failure| panic!("{failure}")),
                Err(_) => panic!("the thread starting the shared dockerd died; see its panic above"),
            };
            // SAFETY: registering a plain `extern "C" fn` with glibc's atexit.
            if unsafe { atexit(stop_shared) } != 0 {
                eprintln!("testkit: atexit failed; the shared dockerd stops by PR_SET_PDEATHSIG only");
            }
            dockerd
        })
    }

    fn try_start() -> Result<Dockerd, String> {
        let client = Path::new(DOCKER_20_CLIENT);
        if !client.is_file() {
            return Err(format!(
                "{DOCKER_20_CLIENT} is missing: the docker.io 20.10 client builds with BuildKit without buildx \
                 (Debian package `docker.io`; `cargo xtask test` installs it)"
            ));
        }
        let dockerd = DOCKERD.path();
        // Unix socket paths are limited to 107 bytes: keep the directory short, in /tmp
        // whatever TMPDIR says.
        let dir = tempfile::Builder::new()
            .prefix("castoff-dockerd-")
            .tempdir_in("/tmp")
            .map_err(|e| format!("create a directory for dockerd in /tmp: {e}"))?;
        let path = dir.path();
        for sub in ["config", "bin"] {
            fs::create_dir(path.join(sub)).map_err(|e| format!("create {}: {e}", path.join(sub).display()))?;
        }
        std::os::unix::fs::symlink(client, path.join("bin/docker")).map_err(|e| format!("symlink docker: {e}"))?;
        // buildah and podman refuse to push when DOCKER_CONFIG names a directory without
        // config.json ("checking authfile: stat .../config.json"), so give it one.
        fs::write(path.join("config/config.json"), "{\"auths\": {}}\n")
            .map_err(|e| format!("write config.json: {e}"))?;
        fs::write(path.join("daemon.json"), "{}\n").map_err(|e| format!("write daemon.json: {e}"))?;
        let log = fs::File::create(path.join("dockerd.log")).map_err(|e| format!("create dockerd.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("dup dockerd.log: {e}"))?;

        let namespace = format!("castoff-{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
        let mut command = Command::new(dockerd);
        command
            .arg("--config-file")
            .arg(path.join("daemon.json"))
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("exec"))
            .arg("--pidfile")
            .arg(path.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", path.join("docker.sock").display()))
            .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none"])
            // Only matters if a system containerd runs at /run/containerd: then both use it.
            .args(["--containerd-namespace", &namespace])
            .args(["--containerd-plugins-namespace", &format!("{namespace}-plugins")])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if prctl(PR_SET_PDEATHSIG, SIGTERM as std::ffi::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("could not start `{}`: {e}", describe(&command)))?;
        let started = Instant::now();
        let daemon = Dockerd { pid: child.id(), child: Mutex::new(Some(child)), dir };
        match daemon.wait_ready() {
            Ok(()) => {
                eprintln!("testkit: dockerd {} ready in {:.2?}", daemon.host(), started.elapsed());
                Ok(daemon)
            }
            Err(failure) => {
                let log = daemon.log_tail();
                drop(daemon);
                Err(format!("DOCKERD DID NOT START: {failure}\n--- dockerd log (tail) ---\n{log}"))
            }
        }
    }

    /// Poll `docker version` until the daemon answers, failing early if it exits.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.exit_status() {
                return Err(format!("dockerd exited: {status}"));
            }
            let out = self.command().args(["version", "--format", "{{.Server.Version}}"]).output();
            match out {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) => last = String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => last = format!("could not run {DOCKER_20_CLIENT}: {e}"),
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!("`docker -H {} version` got no answer within {READY_TIMEOUT:?}: {last}", self.host()))
    }

    /// The daemon's exit status, if it has exited (reaping it).
    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// `unix:///tmp/castoff-dockerd-XXXXXX/docker.sock`, for DOCKER_HOST or `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// DOCKER_HOST, and DOCKER_CONFIG pointing at a private directory holding an empty
    /// config.json, so no client reads or writes the user's ~/.docker.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DOCKER_HOST".to_string(), self.host()),
            ("DOCKER_CONFIG".to_string(), self.config_dir().display().to_string()),
        ]
    }

    /// The private DOCKER_CONFIG directory.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// A directory holding only `docker`, a symlink to the 20.10 client: put it first on
    /// PATH so `docker` means a client that builds with BuildKit.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The daemon's process id (for wrappers that kill it at a chosen moment).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The daemon's directory (data, exec root, socket, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `/usr/bin/docker` talking to this daemon, with BuildKit on and [`Dockerd::env`].
    pub fn command(&self) -> Command {
        let mut command = Command::new(DOCKER_20_CLIENT);
        command.envs(self.env()).env("DOCKER_BUILDKIT", "1").env("DOCKER_CLI_HINTS", "false");
        command
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL the daemon, as if it crashed (its containerd follows it). For dedicated
    /// daemons only, never [`Dockerd::shared`]. Its mounts stay until drop.
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
            // SAFETY: kill(2) on our own child, not yet reaped (so its pid is not reused).
            unsafe { kill(self.pid as i32, SIGKILL) };
        }
    }

    /// The last few KiB of the daemon's log.
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = fs::File::open(self.dir.path().join("dockerd.log")) else {
            return "(no dockerd.log)".to_string();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Stop the daemon (SIGTERM; SIGKILL after [`STOP_TIMEOUT`]), reap it, detach the
    /// mounts it left (a killed daemon leaves its data root bind-mounted) and empty its
    /// directory. Idempotent.
    fn shutdown(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: kill(2) on our own, unreaped child.
                unsafe { kill(self.pid as i32, SIGTERM) };
                let deadline = Instant::now() + STOP_TIMEOUT;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        drop(guard);
        unmount_under(self.dir.path());
        if let Ok(entries) = fs::read_dir(self.dir.path()) {
            for entry in entries.flatten() {
                let path = entry.path();
                let _ = if path.is_dir() && !path.is_symlink() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("dockerd {} (the test failed); log tail:\n{}", self.host(), self.log_tail());
        }
        self.shutdown();
    }
}

extern "C" fn stop_shared() {
    // Unwinding out of an atexit handler would abort: contain any panic.
    let _ = std::panic::catch_unwind(|| {
        if let Some(dockerd) = SHARED.get() {
            dockerd.shutdown();
            let _ = fs::remove_dir(dockerd.dir());
        }
    });
}

/// Lazily unmount every mount point at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        if let Ok(c_path) = std::ffi::CString::new(point.as_os_str().as_encoded_bytes()) {
            // SAFETY: a NUL-terminated path that outlives the call.
            unsafe { umount2(c_path.as_ptr(), MNT_DETACH) };
        }
    }
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| std::str::from_utf8(d).ok());
        match (bytes[i], octal.and_then(|d| u8::from_str_radix(d, 8).ok())) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::images::skopeo_inspect_raw;
    use crate::programs::run_ok;
    use crate::registry::Registry;

    /// A build context with the integration tests' Dockerfile.
    pub(crate) fn context() -> TempDir {
        let dir = crate::temp_dir();
        fs::write(dir.path().join("hello.txt"), "hello\n").expect("write hello.txt");
        let dockerfile = "FROM scratch\nARG APP_VERSION\nCOPY hello.txt /hello.txt\nLABEL app.version=$APP_VERSION\n";
        fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write the Dockerfile");
        dir
    }

    /// The config of the image at `reference` as the registry has it.
    pub(crate) fn pushed_config(registry: &Registry, reference: &str) -> serde_json::Value {
        let (repo, tag) = reference.trim_start_matches(&format!("{}/", registry.host())).rsplit_once(':').unwrap();
        let manifest = skopeo_inspect_raw(reference);
        assert!(manifest["config"].is_object(), "{reference} is not an image manifest: {manifest}");
        registry.image_config(repo, tag)
    }

    #[test]
    fn builds_for_arm64_with_buildkit_and_pushes_over_plain_http() {
        let dockerd = Dockerd::shared();
        let registry = Registry::start();
        let ctx = context();
        let reference = registry.reference("team/app:0.1.0-arm64");
        run_ok(
            dockerd.command().args(["build", "--platform", "linux/arm64", "--build-arg", "APP_VERSION=0.1.0"]).args([
                "-t",
                &reference,
                ctx.path().to_str().unwrap(),
            ]),
        );
        let pushed = run_ok(dockerd.command().args(["push", &reference]));
        assert!(pushed.contains("digest: sha256:"), "{pushed}");
        let config = pushed_config(&registry, &reference);
        assert_eq!((&config["os"], &config["architecture"]), (&"linux".into(), &"arm64".into()), "{config}");
        assert_eq!(config["config"]["Labels"]["app.version"], "0.1.0", "{config}");
        assert!(dockerd.bin_dir().join("docker").exists());
    }

    /// Two daemons at once, each with its own images; a killed one leaves nothing mounted.
    #[test]
    fn two_daemons_run_side_by_side_and_kill_cleans_up() {
        let (one, two) = (Dockerd::start(), Dockerd::start());
        assert_ne!(one.host(), two.host());
        let ctx = context();
        let ctx = ctx.path().to_str().unwrap();
        run_ok(one.command().args(["build", "-q", "--platform", "linux/arm/v7", "-t", "only-one:1", ctx]));
        let listed = run_ok(two.command().args(["images", "-q", "only-one:1"]));
        assert_eq!(listed.trim(), "", "the second daemon sees the first one's image");
        two.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while two.is_running() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(!two.is_running(), "SIGKILL did not stop dockerd");
        let dir = two.dir().to_path_buf();
        drop(two);
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(dir.to_str().unwrap()), "mounts left under {}:\n{mounts}", dir.display());
        assert!(fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()), "{} not emptied", dir.display());
        assert!(one.is_running());
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b\134c"), r"/tmp/a b\c");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
    }
}
