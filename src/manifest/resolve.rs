//! Reading each platform's image: manifests and config blobs only, never layers, and
//! no local state (no `docker pull`, no manifest cache to go stale).
//!
//! A source may itself be an index: buildx wraps each image with a provenance
//! attestation manifest (platform `unknown/unknown`). The entry for the configured
//! platform is picked and attestations are skipped. The platform comes from the image
//! config, because that is what the image really is; a missing variant is filled from
//! the configured platform, and a contradiction is an error.

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use super::index::Child;
use crate::error::{Error, Result};
use crate::image::ImageSource;
use crate::platform::Platform;
use crate::registry::{Reference, RegistryError};

/// Config blobs are small JSON documents; anything bigger is not a config.
const CONFIG_LIMIT: u64 = 4 << 20;

/// Read the image for `platform` at `source` (a tag or digest reference).
pub fn resolve(client: &dyn ImageSource, source: &Reference, platform: &Platform) -> Result<Child> {
    let fetched = client.manifest(source).map_err(|e| match e {
        Error::Registry(RegistryError::NotFound { .. }) => Error::usage(
            format!("no image for {platform} at {source}"),
            "build and push that platform's image first, or check [image] platform_tag and platforms",
        ),
        other => other,
    })?;
    let image = match kind(&fetched.media_type) {
        Kind::Index => {
            let index: ImageIndex = parse_json(&fetched.bytes, source, "index")?;
            let picked = pick_platform(&index, platform, source)?;
            let by_digest = source_by_digest(source, picked.digest().as_ref())?;
            client.manifest(&by_digest)?
        }
        Kind::Manifest => fetched,
        Kind::Other => {
            return Err(Error::usage(
                format!("{source} is a {}, not an image manifest or index", fetched.media_type),
                "point [image] platform_tag at the per-platform images castoff or buildx pushed",
            ))
        }
    };
    if kind(&image.media_type) != Kind::Manifest {
        return Err(protocol(source, "the index entry is not an image manifest"));
    }
    let manifest: ImageManifest = parse_json(&image.bytes, source, "manifest")?;
    let config_digest = manifest.config().digest().clone();
    let config_bytes = client.blob(source, &config_digest, CONFIG_LIMIT)?;
    let config: ImageConfiguration = parse_json(&config_bytes, source, "image config")?;
    let actual = config_platform(&config, platform, source)?;
    let mut blobs = vec![config_digest];
    blobs.extend(manifest.layers().iter().map(|layer| layer.digest().clone()));
    Ok(Child {
        platform: actual,
        media_type: image.media_type.clone(),
        digest: image.digest.clone(),
        size: image.bytes.len() as u64,
        source: source.clone(),
        bytes: image.bytes,
        config: config_bytes,
        blobs,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Index,
    Manifest,
    Other,
}

fn kind(media_type: &MediaType) -> Kind {
    match media_type {
        MediaType::ImageIndex => Kind::Index,
        MediaType::ImageManifest => Kind::Manifest,
        other => match other.to_string().as_str() {
            super::index::DOCKER_MANIFEST_LIST => Kind::Index,
            super::index::DOCKER_MANIFEST => Kind::Manifest,
            _ => Kind::Other,
        },
    }
}

/// The one entry of `index` for `platform`, skipping attestation manifests.
fn pick_platform<'a>(
    index: &'a ImageIndex,
    platform: &Platform,
    source: &Reference,
) -> Result<&'a oci_spec::image::Descriptor> {
    let is_attestation = |d: &oci_spec::image::Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .is_some_and(|t| t == "attestation-manifest")
    };
    let entries: Vec<(&oci_spec::image::Descriptor, Platform)> = index
        .manifests()
        .iter()
        .filter(|d| !is_attestation(d))
        .filter_map(|d| d.platform().as_ref().map(|p| (d, descriptor_platform(p))))
        .collect();
    let mut matching = entries.iter().filter(|(_, p)| p.matches(platform) || fills_variant(p, platform));
    match (matching.next(), matching.next()) {
        (Some((descriptor, _)), None) => Ok(descriptor),
        (None, _) => {
            let found: Vec<String> = entries.iter().map(|(_, p)| p.to_string()).collect();
            Err(Error::usage(
                format!("{source} is an index without an entry for {platform} (it has: {})", found.join(", ")),
                "push the image for that platform, or fix [image] platforms",
            ))
        }
        (Some(_), Some(_)) => Err(Error::usage(
            format!("{source} is an index with more than one entry for {platform}"),
            "point [image] platform_tag at single-platform images",
        )),
    }
}

/// A descriptor's platform as written (not normalised: see [`fills_variant`]).
fn descriptor_platform(platform: &oci_spec::image::Platform) -> Platform {
    Platform {
        os: platform.os().to_string(),
        architecture: platform.architecture().to_string(),
        variant: platform.variant().clone(),
    }
}

/// `found` (as written, before normalisation) names no variant, and its os and
/// architecture agree with `configured`: the configured variant fills the gap. This
/// must look at the raw form, because normalising turns a bare `arm` into `arm/v7`,
/// which would wrongly contradict a configured `linux/arm/v6`.
fn fills_variant(found: &Platform, configured: &Platform) -> bool {
    let normal = found.normalized();
    found.variant.is_none() && normal.os == configured.os && normal.architecture == configured.architecture
}

/// The platform the image config declares, checked against the configured one.
fn config_platform(config: &ImageConfiguration, configured: &Platform, source: &Reference) -> Result<Platform> {
    let found = Platform {
        os: config.os().to_string(),
        architecture: config.architecture().to_string(),
        variant: config.variant().clone(),
    };
    if found.matches(configured) || fills_variant(&found, configured) {
        return Ok(configured.clone());
    }
    Err(Error::usage(
        format!("{source} is {} according to its image config, but castoff.toml says {configured}", found.normalized()),
        format!("rebuild the {configured} image for the right platform, or correct [image] platforms"),
    ))
}

fn source_by_digest(source: &Reference, digest: &str) -> Result<Reference> {
    source.with_digest(digest).map_err(|e| protocol(source, &format!("bad digest in index: {}", e.problem())))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], source: &Reference, what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| protocol(source, &format!("malformed {what}: {e}")))
}

fn protocol(source: &Reference, problem: &str) -> Error {
    RegistryError::Protocol { url: source.to_string(), problem: problem.to_string() }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Platform {
        Platform::parse(text).unwrap()
    }

    #[test]
    fn a_bare_arm_config_takes_the_configured_variant() {
        let bare = Platform { os: "linux".into(), architecture: "arm".into(), variant: None };
        assert!(fills_variant(&bare, &platform("linux/arm/v6")));
        assert!(fills_variant(&bare, &platform("linux/arm/v7")));
        let v7 = Platform { variant: Some("v7".into()), ..bare.clone() };
        assert!(!fills_variant(&v7, &platform("linux/arm/v6")));
        let arm64 = Platform { architecture: "arm64".into(), ..bare };
        assert!(!fills_variant(&arm64, &platform("linux/arm/v6")));
    }
}
