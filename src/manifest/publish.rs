//! Native push: check every tag first, copy children across repositories if needed,
//! then put the assembled bytes under each tag that does not already have them.

use std::collections::BTreeMap;

use oci_spec::image::Digest;

use super::index::{assemble, Assembled, Child};
use super::{fan_out, platform_names, verify, ManifestOptions, ManifestOutcome, TagOutcome, TagStatus, Target};
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::registry::{Client, Found, Reference};

/// Blobs copied between registries are held in memory; refuse absurd sizes.
const COPY_LIMIT: u64 = 2 << 30;

#[allow(clippy::too_many_arguments)]
pub fn native(
    client: &Client,
    image: &ImageConfig,
    targets: &[Target],
    current: &[Option<Found>],
    children: &[Child],
    annotations: &BTreeMap<String, String>,
    options: &ManifestOptions,
) -> Result<ManifestOutcome> {
    let assembled = assemble(children, annotations)?;
    let warnings = warnings(&assembled);
    // Every check before any write: a conflicting immutable tag stops the whole run.
    let statuses = tag_statuses(targets, current, &assembled, options)?;
    let cross_repository: Vec<&Child> = children.iter().filter(|c| !same_repository(&c.source, &image.name)).collect();
    let mut planned = Vec::new();
    if options.dry_run {
        for child in &cross_repository {
            planned.push(format!("copy {} ({}) into {}", child.source, child.digest, image.name));
        }
        for (target, status) in targets.iter().zip(&statuses) {
            if *status != TagStatus::UpToDate {
                planned.push(format!("PUT {} ({}, {})", target.reference, assembled.media_type, assembled.digest));
            }
        }
        let statuses = statuses.iter().map(|s| would(*s)).collect::<Vec<_>>();
        return Ok(outcome(client.requests(), &assembled, children, targets, &statuses, planned, warnings, true));
    }
    for child in cross_repository {
        copy_child(client, child, &image.name)?;
    }
    let to_push: Vec<&Target> =
        targets.iter().zip(&statuses).filter(|(_, status)| **status != TagStatus::UpToDate).map(|(t, _)| t).collect();
    fan_out(&to_push, |target| Ok(client.put_manifest(&target.reference, &assembled.media_type, &assembled.bytes)?))?;
    let pushed: Vec<(&Target, Digest)> = targets.iter().map(|t| (t, assembled.digest.clone())).collect();
    verify::verify(client, &pushed, children)?;
    Ok(outcome(client.requests(), &assembled, children, targets, &statuses, planned, warnings, false))
}

/// What the index cannot say that the user asked for.
pub(super) fn warnings(assembled: &Assembled) -> Vec<String> {
    let mut warnings = Vec::new();
    if assembled.dropped_annotations {
        warnings.push(
            "the platform images are Docker v2s2 manifests, so the index is a Docker manifest list, \
             which cannot carry annotations; build OCI images to get them"
                .to_string(),
        );
    }
    warnings
}

/// Each target's status; the first immutable tag that points elsewhere is the error.
pub(super) fn tag_statuses(
    targets: &[Target],
    current: &[Option<Found>],
    assembled: &Assembled,
    options: &ManifestOptions,
) -> Result<Vec<TagStatus>> {
    targets
        .iter()
        .zip(current)
        .map(|(target, found)| tag_status(target, found.as_ref(), &assembled.digest, options))
        .collect()
}

/// What pushing `digest` under `target` (currently pointing at `found`) would do;
/// errors for a conflicting immutable tag.
fn tag_status(target: &Target, found: Option<&Found>, digest: &Digest, options: &ManifestOptions) -> Result<TagStatus> {
    match found {
        None => Ok(TagStatus::Pushed),
        Some(found) if found.digest == *digest => Ok(TagStatus::UpToDate),
        Some(found) if target.immutable() && !options.force => Err(immutable(target, &found.digest, digest)),
        Some(_) => Ok(TagStatus::Replaced),
    }
}

/// The error for a release tag that points at another index.
pub(super) fn immutable(target: &Target, found: &Digest, ours: &impl std::fmt::Display) -> Error {
    Error::Failed {
        problem: format!("{} already points at {found}, not at this release's index {ours}", target.reference),
        hint: format!(
            "`{}` is a release tag and does not move; if replacing it is really intended, pass --force",
            target.tag
        ),
    }
}

pub(super) fn would(status: TagStatus) -> TagStatus {
    match status {
        TagStatus::Pushed => TagStatus::WouldPush,
        TagStatus::Replaced => TagStatus::WouldReplace,
        other => other,
    }
}

fn same_repository(a: &Reference, b: &Reference) -> bool {
    a.registry == b.registry && a.repository == b.repository
}

/// Make `child` exist in `target`'s repository: mount (same registry) or copy its
/// blobs, then put its manifest bytes by digest.
fn copy_child(client: &Client, child: &Child, target: &Reference) -> Result<()> {
    for blob in &child.blobs {
        let mounted =
            child.source.registry == target.registry && client.mount_blob(target, blob, &child.source.repository)?;
        if !mounted {
            // push_blob_seekable skips blobs the target already has, and can retry.
            let bytes = client.get_blob(&child.source, blob, COPY_LIMIT)?;
            let size = bytes.len() as u64;
            client.push_blob_seekable(target, blob, size, &mut std::io::Cursor::new(bytes))?;
        }
    }
    let by_digest = target.with_digest(child.digest.as_ref()).map_err(|e| Error::Internal(e.to_string()))?;
    client.put_manifest(&by_digest, &child.media_type, &child.bytes)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn outcome(
    requests: usize,
    assembled: &Assembled,
    children: &[Child],
    targets: &[Target],
    statuses: &[TagStatus],
    planned: Vec<String>,
    warnings: Vec<String>,
    dry_run: bool,
) -> ManifestOutcome {
    ManifestOutcome {
        media_type: assembled.media_type.to_string(),
        digest: assembled.digest.to_string(),
        platforms: platform_names(children),
        tags: targets
            .iter()
            .zip(statuses)
            .map(|(target, status)| TagOutcome {
                tag: target.tag.clone(),
                reference: target.reference.to_string(),
                digest: assembled.digest.to_string(),
                status: *status,
            })
            .collect(),
        requests,
        dry_run,
        planned,
        index: serde_json::from_slice(&assembled.bytes).unwrap_or(serde_json::Value::Null),
        warnings,
    }
}
