//! `castoff manifest` against the Makefile workflow's docker CLI sequence (create
//! --amend, annotate per platform, push --purge, for each tag), 4 platforms × 2 tags,
//! on Debian's docker-registry. Every timed run releases a new version (OCI images, so
//! the version annotation makes each release's index new and `latest` really moves),
//! so both sides do a full release each time; requests are counted from the registry's
//! access log.

use std::path::Path;

use anyhow::{bail, Context, Result};
use testkit::docker::DockerCli;
use testkit::images::{oci_layout_image, push_with_skopeo, Format};
use testkit::registry::Registry;

use super::measure::{ms, print_table, time, Row};
use super::BenchArgs;
use crate::prereqs::ensure_programs;

const PLATFORMS: [(&str, &str); 4] =
    [("linux/amd64", "amd64"), ("linux/arm/v6", "armv6"), ("linux/arm/v7", "armv7"), ("linux/arm64", "arm64")];

pub fn run(castoff: &Path, args: &BenchArgs) -> Result<()> {
    ensure_programs(&[("docker-registry", "docker-registry"), ("skopeo", "skopeo"), ("docker", "docker.io")])?;
    let registry = Registry::start();
    let layout = testkit::temp_dir();
    let project = testkit::temp_dir();
    let runs = args.runs.max(1);
    // One version per timed run, plus the warm-up and the counted run, for both sides.
    let versions: Vec<String> = (0..runs + 2).map(|i| format!("1.0.{i}")).collect();
    for (platform, suffix) in PLATFORMS {
        oci_layout_image(layout.path(), suffix, platform);
        for version in &versions {
            let dest = registry.reference(&format!("app:{version}-{suffix}"));
            push_with_skopeo(layout.path(), suffix, &dest, Format::Oci);
        }
    }
    let platforms: Vec<String> = PLATFORMS.iter().map(|(p, _)| format!("\"{p}\"")).collect();
    std::fs::write(
        project.path().join("castoff.toml"),
        format!("[image]\nname = \"{}\"\nplatforms = [{}]\n", registry.reference("app"), platforms.join(", ")),
    )?;

    // Timed runs do nothing but release; requests are counted on one more, untimed.
    let mut next = versions.iter();
    let release_castoff = |version: &String| -> Result<()> {
        std::fs::write(project.path().join("VERSION"), format!("{version}\n"))?;
        let out =
            duct::cmd(castoff, ["manifest"]).dir(project.path()).stdout_null().stderr_capture().unchecked().run()?;
        match out.status.success() {
            true => Ok(()),
            false => bail!("castoff manifest failed: {}", String::from_utf8_lossy(&out.stderr)),
        }
    };
    let ours = time(runs, true, || release_castoff(next.next().context("ran out of versions")?))?;
    let before = registry.requests().len();
    release_castoff(next.next().context("ran out of versions")?)?;
    let ours_requests = registry.requests().len() - before;

    let docker = DockerCli::new();
    let mut next = versions.iter();
    let release_docker = |version: &String| {
        let sources: Vec<(String, &str)> = PLATFORMS
            .iter()
            .map(|(platform, suffix)| (registry.reference(&format!("app:{version}-{suffix}")), *platform))
            .collect();
        let sources: Vec<(&str, &str)> = sources.iter().map(|(r, p)| (r.as_str(), *p)).collect();
        for tag in ["docker-latest".to_string(), format!("docker-{version}")] {
            docker.manifest_push(&registry.reference(&format!("app:{tag}")), &sources);
        }
    };
    let theirs = time(runs, true, || {
        release_docker(next.next().context("ran out of versions")?);
        Ok(())
    })?;
    let before = registry.requests().len();
    release_docker(next.next().context("ran out of versions")?);
    let theirs_requests = registry.requests().len() - before;

    let speedup = theirs.median.as_secs_f64() / ours.median.as_secs_f64();
    // Reads: 4 manifests + 4 configs; writes: 2 tags; then 2 verification reads.
    let budget = PLATFORMS.len() * 2 + 2 + 2;
    print_table(
        &format!("manifest: {} platforms × 2 tags, Debian docker-registry, median of {runs} runs", PLATFORMS.len()),
        &[
            Row {
                what: "release both tags (wall time)".into(),
                castoff: ms(ours.median),
                other: format!("docker manifest create/annotate/push: {}", ms(theirs.median)),
                ratio: format!("{speedup:.1}x faster"),
                goal: ">= 10x faster".into(),
                met: speedup >= 10.0,
            },
            Row {
                what: "HTTP requests at the registry per release".into(),
                castoff: format!("{ours_requests}"),
                other: format!("docker manifest: {theirs_requests}"),
                ratio: format!("{:.2}x", ours_requests as f64 / theirs_requests.max(1) as f64),
                goal: format!("<= {budget} (8 reads + 2 pushes + 2 verify reads)"),
                met: ours_requests <= budget,
            },
        ],
    );
    Ok(())
}
