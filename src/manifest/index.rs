//! Index assembly: pure, from resolved per-platform children to the exact bytes pushed.
//!
//! An OCI image index, or a Docker manifest list when every child is a Docker v2s2
//! manifest, so media types stay consistent (a Docker list never points at OCI
//! manifests and vice versa). Docker lists have no annotations field, so annotations
//! are only written into OCI indexes. The same children and annotations always give
//! the same bytes, hence the same digest under every tag and on every re-run.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageIndexBuilder, MediaType, Os, Platform as OciPlatform, PlatformBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::registry::Reference;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One platform's image manifest as it goes into the index.
#[derive(Debug, Clone)]
pub struct Child {
    /// The configured platform, with the variant filled in where the image had none.
    pub platform: Platform,
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    /// Where it was read from (repository and tag).
    pub source: Reference,
    /// The manifest's bytes, for copying it into another repository.
    pub bytes: Vec<u8>,
    /// The image config's bytes (read to check the platform; the native builder's base
    /// inherits from them).
    pub config: Vec<u8>,
    /// Config and layer digests, for mounting them into another repository.
    pub blobs: Vec<Digest>,
}

/// The assembled index.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub media_type: MediaType,
    pub digest: Digest,
    pub bytes: Vec<u8>,
    /// Set when annotations were asked for but a Docker manifest list cannot carry them.
    pub dropped_annotations: bool,
}

pub fn is_docker_manifest(media_type: &MediaType) -> bool {
    media_type.to_string() == DOCKER_MANIFEST
}

/// Build the index over `children` (in configured platform order).
pub fn assemble(children: &[Child], annotations: &BTreeMap<String, String>) -> Result<Assembled> {
    let docker = children.iter().filter(|c| is_docker_manifest(&c.media_type)).count();
    if docker != 0 && docker != children.len() {
        let describe = |c: &Child| format!("{} is {}", c.platform, c.media_type);
        let listed: Vec<String> = children.iter().map(describe).collect();
        return Err(Error::usage(
            format!("the platform images mix Docker and OCI manifests ({})", listed.join(", ")),
            "build every platform with the same builder and output format, so one index type fits all",
        ));
    }
    let docker_list = docker == children.len() && !children.is_empty();
    let media_type = match docker_list {
        true => MediaType::Other(DOCKER_MANIFEST_LIST.to_string()),
        false => MediaType::ImageIndex,
    };
    let manifests = children
        .iter()
        .map(|child| {
            let mut descriptor = Descriptor::new(child.media_type.clone(), child.size, child.digest.clone());
            descriptor.set_platform(Some(oci_platform(&child.platform)?));
            Ok(descriptor)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut builder =
        ImageIndexBuilder::default().schema_version(2u32).media_type(media_type.clone()).manifests(manifests);
    let dropped_annotations = docker_list && !annotations.is_empty();
    if !docker_list && !annotations.is_empty() {
        builder =
            builder.annotations(annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>());
    }
    let index = builder.build().map_err(|e| Error::Internal(format!("building the index: {e}")))?;
    // serde_json writes HashMap keys in arbitrary order; sort them for stable bytes.
    let value = serde_json::to_value(&index).map_err(|e| Error::Internal(format!("serialising the index: {e}")))?;
    let bytes = serde_json::to_vec(&sorted(value)).map_err(|e| Error::Internal(format!("serialising: {e}")))?;
    Ok(Assembled { media_type, digest: sha256_digest(&bytes), bytes, dropped_annotations })
}

/// Recursively sort object keys (serde_json's Map is ordered by key without
/// `preserve_order`, so rebuilding it sorts).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            serde_json::Value::Object(map.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// `platform` as an index descriptor's `platform` field.
pub(crate) fn oci_platform(platform: &Platform) -> Result<OciPlatform> {
    let mut builder = PlatformBuilder::default()
        .architecture(Arch::from(platform.architecture.as_str()))
        .os(Os::from(platform.os.as_str()));
    if let Some(variant) = &platform.variant {
        builder = builder.variant(variant.clone());
    }
    builder.build().map_err(|e| Error::Internal(format!("platform {platform}: {e}")))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    let hex = format!("{:x}", Sha256::digest(bytes));
    Digest::from(hex.parse::<Sha256Digest>().expect("64 lowercase hex digits are a valid sha256 digest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(platform: &str, media_type: MediaType, seed: u8) -> Child {
        let bytes = vec![seed; 10];
        Child {
            platform: Platform::parse(platform).unwrap(),
            media_type,
            digest: sha256_digest(&bytes),
            size: 10,
            source: Reference::parse("127.0.0.1:5000/app:1.0.0-x").unwrap(),
            bytes,
            config: Vec::new(),
            blobs: Vec::new(),
        }
    }

    #[test]
    fn oci_index_is_deterministic_and_annotated() {
        let children =
            [child("linux/amd64", MediaType::ImageManifest, 1), child("linux/arm/v7", MediaType::ImageManifest, 2)];
        let annotations = BTreeMap::from([("org.opencontainers.image.version".to_string(), "1.0.0".to_string())]);
        let first = assemble(&children, &annotations).unwrap();
        let again = assemble(&children, &annotations).unwrap();
        assert_eq!(first.bytes, again.bytes);
        assert_eq!(first.digest, sha256_digest(&first.bytes));
        let value: serde_json::Value = serde_json::from_slice(&first.bytes).unwrap();
        assert_eq!(value["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(value["manifests"][1]["platform"]["variant"], "v7");
        assert_eq!(value["manifests"][1]["platform"]["architecture"], "arm");
        assert_eq!(value["annotations"]["org.opencontainers.image.version"], "1.0.0");
    }

    #[test]
    fn docker_children_make_a_docker_list_without_annotations() {
        let docker = || MediaType::Other(DOCKER_MANIFEST.to_string());
        let children = [child("linux/amd64", docker(), 1), child("linux/arm64", docker(), 2)];
        let annotations = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let list = assemble(&children, &annotations).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&list.bytes).unwrap();
        assert_eq!(value["mediaType"], DOCKER_MANIFEST_LIST);
        assert!(value.get("annotations").is_none());
        assert!(list.dropped_annotations);
    }

    #[test]
    fn mixed_media_types_are_refused() {
        let children = [
            child("linux/amd64", MediaType::ImageManifest, 1),
            child("linux/arm64", MediaType::Other(DOCKER_MANIFEST.to_string()), 2),
        ];
        assert!(assemble(&children, &BTreeMap::new()).is_err());
    }
}
