//! Putting a native image into its target: a registry repository or an OCI layout.
//!
//! Both first ask whether the tag already names exactly this manifest; then nothing is
//! sent or written. Otherwise blobs go first (base layers, our layer, config), the
//! manifest after, so the tag never points at an image with missing parts.

use std::collections::HashMap;
use std::fs::File;
use std::io::Cursor;

use oci_spec::image::{DescriptorBuilder, Digest, MediaType};

use super::base::{Base, Origin};
use super::cache::{self, CachedLayer};
use super::config::Image;
use super::{check_cancel, Outcome};
use crate::error::{Error, IoContext, Result};
use crate::image::layout::{OciLayout, REF_NAME};
use crate::image::{BuildContext, Built, ImageStatus, Job};
use crate::manifest::index::oci_platform;
use crate::registry::{Client, Reference};

/// Largest base layer copied between registries (through memory: the client reads
/// blobs whole).
const BASE_LAYER_LIMIT: u64 = 2 << 30;

/// Push to `job.reference` in a registry.
pub fn to_registry(
    client: &Client,
    job: &Job,
    base: &Base,
    layer: &CachedLayer,
    image: &Image,
    ctx: &BuildContext<'_>,
) -> Result<Outcome> {
    let target = &job.reference;
    if let Some(found) = client.head_manifest(target)? {
        if found.digest == image.manifest_digest {
            (ctx.log)(&format!("{target} is already {}: nothing to push", image.manifest_digest));
            return Ok(Outcome::Done(Built {
                digest: Some(image.manifest_digest.clone()),
                status: ImageStatus::UpToDate,
            }));
        }
    }
    check_cancel(job, ctx)?;
    copy_base_to_registry(client, target, base, ctx, job)?;
    check_cancel(job, ctx)?;
    if !client.has_blob(target, &layer.layer.digest)? {
        if layer.hit && !cache::verify(&layer.path, &layer.layer.digest)? {
            return Ok(Outcome::CorruptCache);
        }
        let mut file = File::open(&layer.path).with_path("open", &layer.path)?;
        client.upload_blob_seekable(target, &layer.layer.digest, layer.layer.size, &mut file)?;
        (ctx.log)(&format!("pushed layer {}", layer.layer.digest));
    }
    client.push_blob_seekable(
        target,
        &image.config_digest,
        image.config.len() as u64,
        &mut Cursor::new(&image.config),
    )?;
    check_cancel(job, ctx)?;
    let pushed = client.put_manifest(target, &MediaType::ImageManifest, &image.manifest)?;
    if pushed != image.manifest_digest {
        return Err(Error::Failed {
            problem: format!("{target} stored the manifest as {pushed}, not {}", image.manifest_digest),
            hint: "the registry changed the manifest; push to a registry that stores manifests as sent".into(),
        });
    }
    (ctx.log)(&format!("pushed manifest {pushed} to {target}"));
    Ok(Outcome::Done(Built { digest: Some(pushed), status: ImageStatus::Pushed }))
}

/// The base's layers into `target`'s repository: mounted from another repository of
/// the same registry, else copied (skipped when already there).
fn copy_base_to_registry(
    client: &Client,
    target: &Reference,
    base: &Base,
    ctx: &BuildContext<'_>,
    job: &Job,
) -> Result<()> {
    for layer in base.layers.iter().filter(|l| l.copied()) {
        check_cancel(job, ctx)?;
        match &base.origin {
            Origin::Scratch => {}
            Origin::Registry(from) => {
                let same_registry = from.registry == target.registry;
                if same_registry
                    && from.repository != target.repository
                    && client.mount_blob(target, &layer.digest, &from.repository)?
                {
                    continue;
                }
                if client.has_blob(target, &layer.digest)? {
                    continue;
                }
                let bytes = client.get_blob(from, &layer.digest, BASE_LAYER_LIMIT)?;
                client.push_blob_seekable(target, &layer.digest, layer.size, &mut Cursor::new(bytes))?;
                (ctx.log)(&format!("copied base layer {} from {}", layer.digest, from.name()));
            }
            Origin::Layout(layout) => {
                let path = layout.blob_path(&layer.digest);
                let mut file = File::open(&path).with_path("open", &path)?;
                client.push_blob_seekable(target, &layer.digest, layer.size, &mut file)?;
            }
        }
    }
    Ok(())
}

/// Write into `layout` under `job.tag`. `client` reads a registry base's layers.
pub fn to_layout(
    layout: &OciLayout,
    client: Option<&Client>,
    job: &Job,
    base: &Base,
    layer: &CachedLayer,
    image: &Image,
    ctx: &BuildContext<'_>,
) -> Result<Outcome> {
    let named = layout.find_tag(&job.tag)?;
    if named.is_some_and(|d| *d.digest() == image.manifest_digest) && layout.has_blob(&image.manifest_digest) {
        (ctx.log)(&format!("{}:{} is already {}", layout.describe(), job.tag, image.manifest_digest));
        return Ok(Outcome::Done(Built { digest: Some(image.manifest_digest.clone()), status: ImageStatus::UpToDate }));
    }
    for base_layer in base.layers.iter().filter(|l| l.copied()) {
        check_cancel(job, ctx)?;
        if layout.has_blob(&base_layer.digest) {
            continue;
        }
        match &base.origin {
            Origin::Scratch => {}
            Origin::Layout(from) => layout.import_blob(&from.blob_path(&base_layer.digest), &base_layer.digest)?,
            Origin::Registry(from) => {
                let client = client.ok_or_else(|| Error::Internal("no client for a registry base".into()))?;
                let bytes = client.get_blob(from, &base_layer.digest, BASE_LAYER_LIMIT)?;
                store_checked(layout, &bytes, &base_layer.digest)?;
            }
        }
    }
    check_cancel(job, ctx)?;
    if !layout.has_blob(&layer.layer.digest) {
        if layer.hit && !cache::verify(&layer.path, &layer.layer.digest)? {
            return Ok(Outcome::CorruptCache);
        }
        layout.import_blob(&layer.path, &layer.layer.digest)?;
    }
    store_checked(layout, &image.config, &image.config_digest)?;
    store_checked(layout, &image.manifest, &image.manifest_digest)?;
    let descriptor = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(image.manifest_digest.clone())
        .size(image.manifest.len() as u64)
        .platform(oci_platform(&job.platform.normalized())?)
        .annotations(HashMap::from([(REF_NAME.to_string(), job.tag.clone())]))
        .build()
        .map_err(|e| Error::Internal(format!("index descriptor: {e}")))?;
    {
        let _lock = layout.lock()?;
        layout.set_tag(&job.tag, descriptor)?;
    }
    (ctx.log)(&format!("wrote {} as {}:{}", image.manifest_digest, layout.describe(), job.tag));
    Ok(Outcome::Done(Built { digest: Some(image.manifest_digest.clone()), status: ImageStatus::Pushed }))
}

fn store_checked(layout: &OciLayout, bytes: &[u8], digest: &Digest) -> Result<()> {
    let written = layout.write_blob(bytes)?;
    match written == *digest {
        true => Ok(()),
        false => Err(Error::Internal(format!("blob {digest} hashed to {written} when written"))),
    }
}
