//! The image a native build starts from: nothing (`scratch`), an image in an OCI layout,
//! or an image in a registry. Only its manifest and config are read here (to list its
//! layers and inherit its environment); its layers are copied later, blob to blob,
//! never unpacked.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::{Descriptor, Digest, ImageManifest};
use serde_json::{Map, Value};

use crate::config::NativeBase;
use crate::error::{Error, Result};
use crate::image::layout::OciLayout;
use crate::image::ImageSource;
use crate::platform::Platform;
use crate::registry::{Client, Reference};

/// Docker's layer media types and the OCI types with the same content. An OCI manifest
/// names OCI types (as `skopeo copy --format oci` rewrites them); the digests stay.
const DOCKER_LAYER_TYPES: &[(&str, &str)] = &[
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ),
];

/// The base image for one platform.
pub struct Base {
    /// What it is, for messages: `scratch`, `oci-layout:DIR:TAG@DIGEST`, `REF@DIGEST`.
    pub description: String,
    pub layers: Vec<BaseLayer>,
    /// The base config's `config` object (Env, Entrypoint, ...); empty for scratch.
    pub container: Map<String, Value>,
    /// The base config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<String>,
    /// The base config's `history`.
    pub history: Vec<Value>,
    pub origin: Origin,
}

/// Where the base's blobs are.
pub enum Origin {
    Scratch,
    Layout(OciLayout),
    Registry(Reference),
}

/// A base layer as the new manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayer {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub urls: Option<Vec<String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl BaseLayer {
    /// Layers that carry URLs (Windows "foreign" layers) are fetched from there by
    /// clients, and registries need not hold them.
    pub fn copied(&self) -> bool {
        self.urls.as_ref().is_none_or(Vec::is_empty)
    }
}

impl Base {
    pub fn scratch() -> Base {
        Base {
            description: "scratch".into(),
            layers: Vec::new(),
            container: Map::new(),
            diff_ids: Vec::new(),
            history: Vec::new(),
            origin: Origin::Scratch,
        }
    }
}

/// How the configured base is written in messages (`plan`, logs).
pub fn describe(base: &NativeBase) -> String {
    match base {
        NativeBase::Scratch => "scratch".into(),
        NativeBase::OciLayout { dir, tag: Some(tag) } => format!("oci-layout:{dir}:{tag}"),
        NativeBase::OciLayout { dir, tag: None } => format!("oci-layout:{dir} (the entry for each platform)"),
        NativeBase::Registry(reference) => registry_reference(reference).to_string(),
    }
}

/// A registry base without tag or digest means `latest`, as `FROM image` does.
pub fn registry_reference(reference: &Reference) -> Reference {
    match (&reference.tag, &reference.digest) {
        (None, None) => Reference { tag: Some("latest".into()), ..reference.clone() },
        _ => reference.clone(),
    }
}

/// Read the base for `platform`. `client` is needed only for a registry base.
pub fn resolve(base: &NativeBase, root: &Path, platform: &Platform, client: Option<&Client>) -> Result<Base> {
    match base {
        NativeBase::Scratch => Ok(Base::scratch()),
        NativeBase::OciLayout { dir, tag } => {
            let layout = OciLayout::open(root, dir)?;
            let reference = match tag {
                Some(tag) => layout.reference(Some(tag), None),
                None => layout_entry(&layout, platform)?,
            };
            let (description, read) = read(&layout, &reference, platform)?;
            Ok(Base { description, origin: Origin::Layout(layout), ..read })
        }
        NativeBase::Registry(reference) => {
            let reference = registry_reference(reference);
            let client = client.ok_or_else(|| Error::Internal("a registry base needs a client".into()))?;
            let (description, read) = read(client, &reference, platform)?;
            Ok(Base { description, origin: Origin::Registry(reference), ..read })
        }
    }
}

/// The manifest and config at `reference` for `platform`, through the same resolution
/// `castoff manifest` uses (indexes, attestations, the config's platform checked).
fn read(source: &dyn ImageSource, reference: &Reference, platform: &Platform) -> Result<(String, Base)> {
    let child = crate::manifest::resolve::resolve(source, reference, platform)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&child.bytes).map_err(|e| bad(reference, format!("its manifest: {e}")))?;
    // resolve read (and size-limited) the config to check the platform; its bytes
    // match the manifest's config digest.
    let config: Map<String, Value> =
        serde_json::from_slice(&child.config).map_err(|e| bad(reference, format!("its image config: {e}")))?;
    let diff_ids: Vec<String> = match config.get("rootfs").and_then(|r| r.get("diff_ids")) {
        Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    if diff_ids.len() != manifest.layers().len() {
        return Err(bad(
            reference,
            format!("its config lists {} diff_ids for {} layers", diff_ids.len(), manifest.layers().len()),
        ));
    }
    let layers = manifest.layers().iter().map(base_layer).collect();
    let container = match config.get("config") {
        Some(Value::Object(container)) => container.clone(),
        _ => Map::new(),
    };
    let history = match config.get("history") {
        Some(Value::Array(history)) => history.clone(),
        _ => Vec::new(),
    };
    let description = format!("{}@{}", reference_shown(reference), child.digest);
    Ok((
        description,
        Base { description: String::new(), layers, container, diff_ids, history, origin: Origin::Scratch },
    ))
}

fn reference_shown(reference: &Reference) -> String {
    match reference.registry.as_str() {
        "oci-layout" => format!(
            "oci-layout:{}{}",
            reference.repository,
            reference.tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default()
        ),
        _ => Reference { digest: None, ..reference.clone() }.to_string(),
    }
}

fn base_layer(descriptor: &Descriptor) -> BaseLayer {
    let media_type = descriptor.media_type().to_string();
    let media_type = DOCKER_LAYER_TYPES
        .iter()
        .find(|(docker, _)| *docker == media_type)
        .map_or(media_type.clone(), |(_, oci)| oci.to_string());
    BaseLayer {
        media_type,
        digest: descriptor.digest().clone(),
        size: descriptor.size(),
        urls: descriptor.urls().clone(),
        annotations: descriptor.annotations().as_ref().map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
    }
}

/// Without a tag, the layout's entry for `platform`: an entry whose descriptor names
/// the platform, else the one entry (maybe an index) that resolves to it.
fn layout_entry(layout: &OciLayout, platform: &Platform) -> Result<Reference> {
    let entries = layout.entries()?;
    let mut named: Vec<&Digest> = entries
        .iter()
        .filter(|d| d.platform().as_ref().is_some_and(|p| descriptor_platform(p).matches(platform)))
        .map(Descriptor::digest)
        .collect();
    named.dedup();
    if named.is_empty() {
        named = entries
            .iter()
            .filter(|d| d.platform().is_none())
            .map(Descriptor::digest)
            .filter(|digest| {
                let reference = layout.reference(None, Some(digest));
                crate::manifest::resolve::resolve(layout, &reference, platform).is_ok()
            })
            .collect();
        named.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
        named.dedup();
    }
    match named.as_slice() {
        [digest] => Ok(layout.reference(None, Some(digest))),
        [] => Err(Error::usage(
            format!("{} has no image for {platform}", layout.describe()),
            format!(
                "add one (e.g. `skopeo copy --override-arch ... docker://IMAGE oci:{}:TAG`), or name an entry in \
                 [image.native] base = \"oci-layout:{}:TAG\"",
                layout.shown().display(),
                layout.shown().display()
            ),
        )),
        _ => Err(Error::usage(
            format!("{} has more than one image for {platform}", layout.describe()),
            format!("name the one to use: [image.native] base = \"oci-layout:{}:TAG\"", layout.shown().display()),
        )),
    }
}

fn descriptor_platform(platform: &oci_spec::image::Platform) -> Platform {
    Platform {
        os: platform.os().to_string(),
        architecture: platform.architecture().to_string(),
        variant: platform.variant().clone(),
    }
}

fn bad(reference: &Reference, problem: String) -> Error {
    Error::Failed {
        problem: format!("the base image {} is malformed: {problem}", reference_shown(reference)),
        hint: "use another base image in [image.native] base".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layer_types_become_oci_ones() {
        let descriptor = Descriptor::new(
            oci_spec::image::MediaType::Other("application/vnd.docker.image.rootfs.diff.tar.gzip".into()),
            3,
            crate::manifest::index::sha256_digest(b"abc"),
        );
        assert_eq!(base_layer(&descriptor).media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
        assert!(base_layer(&descriptor).copied());
    }

    /// Without a tag, an untagged-platform entry that is a buildx-style index (image plus
    /// attestation) is looked into; an entry naming its platform is taken as it is.
    #[test]
    fn a_layout_entry_is_found_per_platform() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("base");
        let attested = testkit::images::oci_layout_attested_index(&dir, "arm64", "linux/arm64");
        let amd64 = testkit::images::oci_layout_image(&dir, "amd64", "linux/amd64");
        let no_tag = NativeBase::OciLayout { dir: "base".into(), tag: None };
        let arm64 = resolve(&no_tag, root.path(), &Platform::parse("linux/arm64").unwrap(), None).unwrap();
        assert!(arm64.description.ends_with(&attested.image), "{}", arm64.description);
        assert_eq!(arm64.layers.len(), 1);
        assert_eq!(arm64.diff_ids.len(), 1);
        let found = resolve(&no_tag, root.path(), &Platform::parse("linux/amd64").unwrap(), None).unwrap();
        assert!(found.description.ends_with(&amd64), "{}", found.description);
        let err = resolve(&no_tag, root.path(), &Platform::parse("linux/s390x").unwrap(), None).err().unwrap();
        assert!(err.to_string().contains("oci-layout:base has no image for linux/s390x"), "{err}");
        let tagged = NativeBase::OciLayout { dir: "base".into(), tag: Some("amd64".into()) };
        let err = resolve(&tagged, root.path(), &Platform::parse("linux/arm64").unwrap(), None).err().unwrap();
        assert!(err.to_string().contains("according to its image config"), "{err}");
    }

    #[test]
    fn a_bare_registry_base_means_latest() {
        let reference = Reference::parse("127.0.0.1:5000/base").unwrap();
        assert_eq!(registry_reference(&reference).to_string(), "127.0.0.1:5000/base:latest");
        let pinned = Reference::parse("127.0.0.1:5000/base:1").unwrap();
        assert_eq!(registry_reference(&pinned), pinned);
    }
}
