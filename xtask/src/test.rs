//! `cargo xtask test` (what CI runs) and `cargo xtask lint`.

use anyhow::{Context, Result};

use crate::prereqs::{ensure_nuget_tools, ensure_programs};

/// (program, Debian package) pairs the integration tests drive: temporary repos are real
/// git repos, registries are real CNCF distribution processes (tests/support/registry.rs,
/// with htpasswd for basic auth), images are pushed with skopeo, and multi-arch lists are
/// made with the docker CLI's `manifest` commands (no daemon). The docker CLI is usually
/// present already (docker 28 in /usr/local/bin); docker.io only fills in when it is not.
/// `castoff build` runs real builders: a private dockerd per test process (docker.io, whose
/// /usr/bin/docker 20.10 client builds with BuildKit; check for `dockerd`, since a `docker`
/// on PATH proves nothing about docker.io), buildah and podman. The NuGet tests' tools
/// (mono, NuGet.exe, pynuget) are installed by [`ensure_nuget_tools`].
const TEST_PROGRAMS: &[(&str, &str)] = &[
    ("git", "git"),
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("htpasswd", "apache2-utils"),
    ("docker", "docker.io"),
    ("dockerd", "docker.io"),
    ("buildah", "buildah"),
    ("podman", "podman"),
    ("openssl", "openssl"),
];

pub fn run(extra: &[String]) -> Result<()> {
    ensure_programs(TEST_PROGRAMS)?;
    ensure_nuget_tools()?;
    let root = crate::workspace_root();
    let mut args = vec!["test".to_string(), "--workspace".into(), "--locked".into()];
    args.extend(extra.iter().cloned());
    // The reliability counts (RELIABILITY.md) are printed by passing tests, whose output
    // cargo hides: they also go to this file, shown after the run.
    let counts = root.join("target").join("reliability-counts.txt");
    let _ = std::fs::remove_file(&counts);
    let result = duct::cmd("cargo", args).dir(&root).env("CASTOFF_COUNTS_FILE", &counts).run();
    if let Ok(text) = std::fs::read_to_string(&counts) {
        println!("\nreliability counts (RELIABILITY.md):");
        text.lines().for_each(|line| println!("  {line}"));
    }
    result.context("cargo test failed")?;
    Ok(())
}

pub fn lint() -> Result<()> {
    let root = crate::workspace_root();
    duct::cmd!("cargo", "fmt", "--all", "--check").dir(&root).run().context("cargo fmt --check: run `cargo fmt`")?;
    duct::cmd!("cargo", "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings")
        .dir(&root)
        .run()
        .context("cargo clippy found problems")?;
    Ok(())
}
