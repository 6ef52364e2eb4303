//! `--mode docker-cli`: the Makefile workflow's commands, run through exec.rs, for teams
//! that want the docker CLI to do the work. castoff still resolves and checks every
//! platform first, passes the children by digest (so a stale local tag cannot sneak
//! in), annotates with proper OCI variants (never v6l/v7l), pushes with `--purge` (so
//! no local manifest state survives), and verifies the result with its own client.

use oci_spec::image::Digest;

use super::index::Child;
use super::{platform_names, publish, verify, ManifestOptions, ManifestOutcome, TagOutcome, TagStatus, Target};
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::exec::Command;
use crate::registry::{plain_http_allowed, Client};

pub fn run(
    client: &Client,
    image: &ImageConfig,
    targets: &[Target],
    children: &[Child],
    options: &ManifestOptions,
) -> Result<ManifestOutcome> {
    // docker needs --insecure exactly where castoff itself would speak plain HTTP.
    let insecure = plain_http_allowed(&image.name.registry, &image.insecure_registries);
    // The same tag policy as native mode, decided before docker runs at all.
    let statuses = targets.iter().map(|t| tag_status(client, t, children, options)).collect::<Result<Vec<_>>>()?;
    let plans: Vec<(&Target, Vec<Command>)> = targets
        .iter()
        .zip(&statuses)
        .filter(|(_, status)| **status != TagStatus::UpToDate)
        .map(|(target, _)| (target, commands(target, children, insecure)))
        .collect();
    let mut warnings = Vec::new();
    if !image.annotations.is_empty() {
        warnings.push("docker manifest cannot annotate the index itself; [image] annotations were not applied".into());
    }
    if options.dry_run {
        let planned = plans.iter().flat_map(|(_, commands)| commands.iter().map(|c| c.to_string())).collect();
        let tags = targets
            .iter()
            .zip(&statuses)
            .map(|(t, s)| tag(t, String::new(), if *s == TagStatus::UpToDate { *s } else { TagStatus::WouldPush }))
            .collect();
        return Ok(outcome(client, children, tags, planned, warnings, true));
    }
    let mut pushed = Vec::new();
    for (target, commands) in &plans {
        // A list left in docker's local store would be merged by --amend: drop it.
        let _ = Command::new("docker").args(["manifest", "rm", &target.reference.to_string()]).run();
        let mut last = None;
        for command in commands {
            last = Some(command.run_checked()?);
        }
        let printed = last.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
        let digest: Digest = printed.lines().last().unwrap_or_default().trim().parse().map_err(|_| Error::Failed {
            problem: format!("`docker manifest push` for {} printed no digest: {printed:?}", target.reference),
            hint: "check the docker CLI version (castoff needs one with `docker manifest`)".into(),
        })?;
        pushed.push((*target, digest));
    }
    verify::verify(client, &pushed, children)?;
    let mut tags: Vec<TagOutcome> = pushed.iter().map(|(t, d)| tag(t, d.to_string(), TagStatus::Pushed)).collect();
    for (target, status) in targets.iter().zip(&statuses) {
        if *status == TagStatus::UpToDate {
            let found = client.head_manifest(&target.reference)?.map(|f| f.digest.to_string()).unwrap_or_default();
            tags.push(tag(target, found, TagStatus::UpToDate));
        } else if *status == TagStatus::Replaced {
            if let Some(outcome) = tags.iter_mut().find(|t| t.tag == target.tag) {
                outcome.status = TagStatus::Replaced;
            }
        }
    }
    Ok(outcome(client, children, tags, Vec::new(), warnings, false))
}

/// docker writes its own list bytes, so "the same index" means the same children:
/// a tag whose index has exactly our (platform, digest) pairs is up to date.
fn tag_status(client: &Client, target: &Target, children: &[Child], options: &ManifestOptions) -> Result<TagStatus> {
    if client.head_manifest(&target.reference)?.is_none() {
        return Ok(TagStatus::Pushed);
    }
    let existing = client.get_manifest(&target.reference)?;
    if verify::children_of(&existing.bytes).ok().as_ref() == Some(&verify::expected(children)) {
        return Ok(TagStatus::UpToDate);
    }
    if target.immutable() && !options.force {
        return Err(publish::immutable(target, &existing.digest, &"(the platform images resolved now)"));
    }
    Ok(TagStatus::Replaced)
}

/// create --amend, one annotate per child, push --purge.
fn commands(target: &Target, children: &[Child], insecure: bool) -> Vec<Command> {
    let target_ref = target.reference.to_string();
    let child_ref = |child: &Child| format!("{}@{}", child.source.name(), child.digest);
    let mut create = Command::new("docker").args(["manifest", "create"]);
    if insecure {
        create = create.arg("--insecure");
    }
    create = create.arg("--amend").arg(&target_ref).args(children.iter().map(child_ref));
    let mut commands = vec![create];
    for child in children {
        let platform = &child.platform;
        let mut annotate = Command::new("docker").args(["manifest", "annotate", &target_ref, &child_ref(child)]);
        annotate = annotate.args(["--os", &platform.os, "--arch", &platform.architecture]);
        if let Some(variant) = &platform.variant {
            annotate = annotate.args(["--variant", variant]);
        }
        commands.push(annotate);
    }
    let mut push = Command::new("docker").args(["manifest", "push"]);
    if insecure {
        push = push.arg("--insecure");
    }
    commands.push(push.arg("--purge").arg(&target_ref));
    commands
}

fn tag(target: &Target, digest: String, status: TagStatus) -> TagOutcome {
    TagOutcome { tag: target.tag.clone(), reference: target.reference.to_string(), digest, status }
}

fn outcome(
    client: &Client,
    children: &[Child],
    tags: Vec<TagOutcome>,
    planned: Vec<String>,
    warnings: Vec<String>,
    dry_run: bool,
) -> ManifestOutcome {
    let digest = tags.first().map(|t| t.digest.clone()).unwrap_or_default();
    ManifestOutcome {
        media_type: "application/vnd.docker.distribution.manifest.list.v2+json".into(),
        digest,
        platforms: platform_names(children),
        tags,
        requests: client.requests(),
        dry_run,
        planned,
        index: serde_json::Value::Null,
        warnings,
    }
}
