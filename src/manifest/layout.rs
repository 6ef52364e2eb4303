//! `castoff manifest` into an OCI image layout (`[image] output = "oci-layout:DIR"`):
//! the index is written as a blob and named in index.json under every release tag
//! (`org.opencontainers.image.ref.name`), with the same tag policy and read-back
//! verification as a registry. The whole flow runs without a daemon or a registry.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{DescriptorBuilder, Digest};

use super::index::{assemble, Child};
use super::publish::{outcome, tag_statuses, warnings, would};
use super::{verify, ManifestOptions, ManifestOutcome, TagStatus, Target};
use crate::error::{Error, Result};
use crate::image::layout::REF_NAME;
use crate::image::OciLayout;
use crate::registry::Found;

/// Where `target`'s tag points in the layout now.
pub fn current(layout: &OciLayout, target: &Target) -> Result<Option<Found>> {
    Ok(layout.find_tag(&target.tag)?.map(|descriptor| Found {
        media_type: descriptor.media_type().clone(),
        digest: descriptor.digest().clone(),
        size: descriptor.size(),
    }))
}

pub fn publish(
    layout: &OciLayout,
    targets: &[Target],
    current: &[Option<Found>],
    children: &[Child],
    annotations: &BTreeMap<String, String>,
    options: &ManifestOptions,
) -> Result<ManifestOutcome> {
    let assembled = assemble(children, annotations)?;
    let warnings = warnings(&assembled);
    let statuses = tag_statuses(targets, current, &assembled, options)?;
    let shown = layout.shown().display().to_string();
    if options.dry_run {
        let planned = targets
            .iter()
            .zip(&statuses)
            .filter(|(_, status)| **status != TagStatus::UpToDate)
            .map(|(target, _)| format!("name index {} `{}` in oci-layout:{shown}", assembled.digest, target.tag))
            .collect();
        let statuses: Vec<TagStatus> = statuses.iter().map(|s| would(*s)).collect();
        return Ok(in_layout(outcome(0, &assembled, children, targets, &statuses, planned, warnings, true), &shown));
    }
    layout.write_blob(&assembled.bytes)?;
    // Check again under the lock: another castoff may have moved a tag since the read
    // above, and a version tag must never be replaced without --force.
    let statuses = {
        let _lock = layout.lock()?;
        let now = targets.iter().map(|target| self::current(layout, target)).collect::<Result<Vec<_>>>()?;
        let statuses = tag_statuses(targets, &now, &assembled, options)?;
        for (target, status) in targets.iter().zip(&statuses) {
            if *status == TagStatus::UpToDate {
                continue;
            }
            let descriptor = DescriptorBuilder::default()
                .media_type(assembled.media_type.clone())
                .digest(assembled.digest.clone())
                .size(assembled.bytes.len() as u64)
                .annotations(HashMap::from([(REF_NAME.to_string(), target.tag.clone())]))
                .build()
                .map_err(|e| Error::Internal(format!("index descriptor: {e}")))?;
            layout.set_tag(&target.tag, descriptor)?;
        }
        statuses
    };
    let pushed: Vec<(&Target, Digest)> = targets.iter().map(|t| (t, assembled.digest.clone())).collect();
    verify::verify(layout, &pushed, children)?;
    Ok(in_layout(outcome(0, &assembled, children, targets, &statuses, Vec::new(), warnings, false), &shown))
}

/// Name each tag where it really is: in the layout, not in `[image] name`'s registry.
fn in_layout(mut outcome: ManifestOutcome, shown: &str) -> ManifestOutcome {
    for tag in &mut outcome.tags {
        tag.reference = reference(shown, &tag.tag);
    }
    outcome
}

/// `oci-layout:DIR:TAG`: how a tag in the layout at `DIR` is named in outcomes.
pub fn reference(dir: &str, tag: &str) -> String {
    format!("oci-layout:{dir}:{tag}")
}
