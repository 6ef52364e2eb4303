//! Private container storage for buildah and podman, so daemonless builds in tests never
//! touch the machine's /var/lib/containers/storage nor see each other's images.
//!
//! Both read `CONTAINERS_STORAGE_CONF` (graph root, run root, driver) and
//! `CONTAINERS_CONF` (podman's engine state: `tmp_dir` would otherwise be the shared
//! /run/libpod, and its event log journald). The driver is `vfs`: it needs no mounts, so
//! nothing outlives a test, and overlay inside these machines is not guaranteed. Builds
//! must use `--isolation chroot` (`buildah run`/`podman run` of real containers fail here
//! on rlimits); `FROM scratch` + `COPY` needs no emulation for foreign platforms.
//!
//! Not redirected: containers/image's blob-info cache (root: /var/lib/containers/cache),
//! which has no environment override; it only remembers blob locations, so sharing it is
//! harmless.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::programs::{BUILDAH, PODMAN};
use crate::temp_dir;

/// A storage.conf and containers.conf in a temporary directory, removed on drop.
pub struct ContainerStorage {
    dir: TempDir,
}

impl Default for ContainerStorage {
    fn default() -> Self {
        ContainerStorage::new()
    }
}

impl ContainerStorage {
    pub fn new() -> ContainerStorage {
        let dir = temp_dir();
        let path = dir.path();
        let quoted = |name: &str| serde_json::to_string(&path.join(name)).expect("paths are UTF-8");
        let storage =
            format!("[storage]\ndriver = \"vfs\"\ngraphroot = {}\nrunroot = {}\n", quoted("graph"), quoted("run"));
        fs::write(path.join("storage.conf"), storage).expect("write storage.conf");
        let containers = format!(
            "[engine]\ntmp_dir = {}\nevents_logger = \"file\"\nevents_logfile_path = {}\n",
            quoted("libpod"),
            quoted("events.log")
        );
        fs::write(path.join("containers.conf"), containers).expect("write containers.conf");
        fs::create_dir(path.join("tmp")).expect("create the storage's tmp directory");
        ContainerStorage { dir }
    }

    /// The directory holding the configs and the storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where image layers and metadata live (storage.conf's `graphroot`).
    pub fn graph_root(&self) -> PathBuf {
        self.dir.path().join("graph")
    }

    /// CONTAINERS_STORAGE_CONF, CONTAINERS_CONF and TMPDIR (buildah and podman stage
    /// layers in $TMPDIR, /var/tmp otherwise).
    pub fn env(&self) -> Vec<(String, String)> {
        let at = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            ("CONTAINERS_STORAGE_CONF".to_string(), at("storage.conf")),
            ("CONTAINERS_CONF".to_string(), at("containers.conf")),
            ("TMPDIR".to_string(), at("tmp")),
        ]
    }

    /// `buildah` using this storage.
    pub fn buildah(&self) -> Command {
        let mut command = BUILDAH.command();
        command.envs(self.env());
        command
    }

    /// `podman` using this storage.
    pub fn podman(&self) -> Command {
        let mut command = PODMAN.command();
        command.envs(self.env());
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerd::tests::{context, pushed_config};
    use crate::programs::run_ok;
    use crate::registry::Registry;

    /// `TOOL build` for `platform` and `TOOL push --digestfile`; the digest it wrote.
    fn build_and_push(mut tool: impl FnMut() -> Command, platform: &str, reference: &str) -> String {
        let ctx = context();
        let local = "localhost/castoff-test:1";
        let dockerfile = ctx.path().join("Dockerfile");
        run_ok(tool().args(["build", "--isolation", "chroot", "--platform", platform, "-t", local]).args([
            "--build-arg",
            "APP_VERSION=0.1.0",
            "-f",
            dockerfile.to_str().unwrap(),
            ctx.path().to_str().unwrap(),
        ]));
        let digest_file = ctx.path().join("digest");
        run_ok(
            tool()
                .args(["push", "--tls-verify=false", "--digestfile", digest_file.to_str().unwrap(), local])
                .arg(format!("docker://{reference}")),
        );
        fs::read_to_string(&digest_file).expect("the push wrote --digestfile").trim().to_string()
    }

    #[test]
    fn buildah_builds_for_arm64_into_private_storage_and_pushes() {
        let storage = ContainerStorage::new();
        let registry = Registry::start();
        let reference = registry.reference("team/app:0.1.0-arm64");
        let digest = build_and_push(|| storage.buildah(), "linux/arm64", &reference);
        assert_eq!(registry.get("/v2/team/app/manifests/0.1.0-arm64").digest.as_deref(), Some(digest.as_str()));
        let config = pushed_config(&registry, &reference);
        assert_eq!((&config["os"], &config["architecture"]), (&"linux".into(), &"arm64".into()), "{config}");
        assert_eq!(config["config"]["Labels"]["app.version"], "0.1.0", "{config}");
        assert!(storage.graph_root().join("vfs-images").is_dir(), "buildah did not use the private storage");
        let images = run_ok(storage.podman().args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert!(images.contains("localhost/castoff-test:1"), "podman does not see buildah's image: {images}");
    }

    #[test]
    fn podman_builds_for_armv7_into_private_storage_and_pushes() {
        let storage = ContainerStorage::new();
        let registry = Registry::start();
        let reference = registry.reference("team/app:0.1.0-armv7");
        let digest = build_and_push(|| storage.podman(), "linux/arm/v7", &reference);
        assert_eq!(registry.get("/v2/team/app/manifests/0.1.0-armv7").digest.as_deref(), Some(digest.as_str()));
        let config = pushed_config(&registry, &reference);
        let platform = (&config["os"], &config["architecture"], &config["variant"]);
        assert_eq!(platform, (&"linux".into(), &"arm".into(), &"v7".into()), "{config}");
        assert!(storage.dir().join("libpod").is_dir(), "podman's tmp_dir is not the private one");
    }
}
