//! The docker CLI's `manifest` commands (no daemon needed), as a Makefile release flow runs
//! them, with a private DOCKER_CONFIG so nothing of the user's is read or written.

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::json;
use tempfile::TempDir;

use crate::images::platform_json;
use crate::programs::{run_ok, DOCKER};
use crate::temp_dir;

/// A docker CLI with its own, initially empty, config directory.
pub struct DockerCli {
    config: TempDir,
}

impl Default for DockerCli {
    fn default() -> Self {
        DockerCli::new()
    }
}

impl DockerCli {
    pub fn new() -> DockerCli {
        DockerCli { config: temp_dir() }
    }

    /// The DOCKER_CONFIG directory (config.json, manifests/).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// Store credentials for `host` in config.json as `docker login` would, without the
    /// daemon `docker login` needs.
    pub fn login(&self, host: &str, user: &str, password: &str) {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = json!({"auths": {host: {"auth": auth}}});
        fs::write(self.config_dir().join("config.json"), config.to_string()).expect("write docker config.json");
    }

    /// `docker ARGS` using this config directory.
    pub fn command(&self) -> Command {
        let mut command = DOCKER.command();
        command.env("DOCKER_CONFIG", self.config_dir()).env("DOCKER_CLI_HINTS", "false");
        command
    }

    /// `docker manifest create --insecure --amend TARGET SOURCES`, `annotate` each source
    /// with its platform (`linux/arm/v7`), then `push --insecure --purge`; the pushed
    /// list's digest.
    pub fn manifest_push(&self, target: &str, sources: &[(&str, &str)]) -> String {
        let mut create = self.command();
        create.args(["manifest", "create", "--insecure", "--amend", target]);
        run_ok(create.args(sources.iter().map(|(source, _)| source)));
        for (source, platform) in sources {
            let platform = platform_json(platform);
            let mut annotate = self.command();
            annotate.args(["manifest", "annotate", target, source]);
            for (flag, key) in [("--os", "os"), ("--arch", "architecture"), ("--variant", "variant")] {
                if let Some(value) = platform[key].as_str() {
                    annotate.args([flag, value]);
                }
            }
            run_ok(&mut annotate);
        }
        let stdout = run_ok(self.command().args(["manifest", "push", "--insecure", "--purge", target]));
        let digest = stdout.lines().rev().find(|line| line.starts_with("sha256:"));
        digest.unwrap_or_else(|| panic!("`docker manifest push {target}` printed no digest:\n{stdout}")).to_string()
    }
}
