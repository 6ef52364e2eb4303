//! Read-only checks that what a release recorded is still where it put it: each image
//! reference (`IMAGE:TAG` in a registry, `oci-layout:DIR:TAG` in a layout) still points
//! at the recorded digest. A re-run of a release asks these instead of building or
//! pushing again; nothing is written, not even a layout's lock.
//!
//! `manifest::check_tags` uses the same check for the release tags.

use std::collections::HashMap;
use std::str::FromStr;

use oci_spec::image::Digest;

use super::{ImageOutcome, OciLayout};
use crate::error::Result;
use crate::project::Project;
use crate::registry::{Client, Reference};

/// The prefix of a reference into an OCI image layout: `oci-layout:DIR:TAG`.
const LAYOUT_PREFIX: &str = "oci-layout:";

/// Whether every image in `images` is still where the build put it, with the recorded
/// digest: `Ok(None)` when all are, `Ok(Some(reason))` naming the first that is missing
/// or different (an image recorded without a digest counts as missing). `Err` only when
/// the registry or layout cannot be asked (unreachable, refused, unreadable).
///
/// Registry images are asked with one HEAD each, all at once; layout images are looked
/// up in `index.json`.
pub fn check_images(project: &Project, images: &[ImageOutcome]) -> Result<Option<String>> {
    let recorded: Vec<(&str, Option<&str>)> =
        images.iter().map(|image| (image.reference.as_str(), image.digest.as_deref())).collect();
    check_references(project, &recorded)
}

/// Whether each `(reference, digest)` still holds (see [`check_images`]); the first that
/// does not, in the order given, is the reason.
pub(crate) fn check_references(project: &Project, recorded: &[(&str, Option<&str>)]) -> Result<Option<String>> {
    let needs_client = recorded.iter().any(|(reference, _)| !reference.starts_with(LAYOUT_PREFIX));
    let client = match needs_client {
        true => Some(client(project)?),
        false => None,
    };
    // Layouts are opened once each, before the fan-out, so a broken one is one error.
    let mut layouts: HashMap<&str, Option<OciLayout>> = HashMap::new();
    for (reference, _) in recorded {
        if let Some((dir, _)) = split_layout(reference) {
            if !layouts.contains_key(dir) {
                layouts.insert(dir, open_layout(project, dir)?);
            }
        }
    }
    let answers = crate::manifest::fan_out(recorded, |(reference, digest)| {
        let Some(digest) = digest else {
            return Ok(Some(format!("{reference}: no digest was recorded for it")));
        };
        let wanted = match Digest::from_str(digest) {
            Ok(wanted) => wanted,
            Err(e) => return Ok(Some(format!("{reference}: the recorded digest `{digest}` is not a digest ({e})"))),
        };
        match split_layout(reference) {
            Some((dir, tag)) => match layouts.get(dir).and_then(Option::as_ref) {
                Some(layout) => in_layout(layout, reference, tag, &wanted),
                None => Ok(Some(format!("{reference}: the OCI layout {dir} is gone (recorded {wanted})"))),
            },
            None => match &client {
                Some(client) => in_registry(client, reference, &wanted),
                None => Err(crate::error::Error::Internal("no registry client for a registry reference".into())),
            },
        }
    })?;
    Ok(answers.into_iter().flatten().next())
}

/// `oci-layout:DIR:TAG` → `(DIR, TAG)`. A tag has no `:`, so the last one splits.
fn split_layout(reference: &str) -> Option<(&str, &str)> {
    reference.strip_prefix(LAYOUT_PREFIX)?.rsplit_once(':')
}

/// The layout at `dir`, or `None` when its directory is gone. A directory that is there
/// but not a layout (or not one castoff may read) is an error.
fn open_layout(project: &Project, dir: &str) -> Result<Option<OciLayout>> {
    match project.root.join(dir).is_dir() {
        true => OciLayout::open(&project.root, dir).map(Some),
        false => Ok(None),
    }
}

/// The registry client `castoff build` and `castoff manifest` use, with `[image]`'s
/// insecure registries and `[network]`'s policy.
fn client(project: &Project) -> Result<Client> {
    let image = crate::manifest::image_config(project)?;
    Ok(super::client(project, image))
}

fn in_registry(client: &Client, shown: &str, wanted: &Digest) -> Result<Option<String>> {
    let reference = match Reference::parse(shown) {
        Ok(reference) => reference,
        Err(e) => {
            return Ok(Some(format!("the recorded reference `{shown}` is not an image reference: {}", e.problem())))
        }
    };
    Ok(match client.head_manifest(&reference)? {
        None => Some(format!("{shown} is gone from the registry (recorded {wanted})")),
        Some(found) if found.digest == *wanted => None,
        Some(found) => Some(format!("{shown} now points at {}, not the recorded {wanted}", found.digest)),
    })
}

fn in_layout(layout: &OciLayout, shown: &str, tag: &str, wanted: &Digest) -> Result<Option<String>> {
    Ok(match layout.find_tag(tag)? {
        None => Some(format!("{shown} is gone from the layout's index.json (recorded {wanted})")),
        Some(found) if found.digest() != wanted => {
            Some(format!("{shown} now points at {}, not the recorded {wanted}", found.digest()))
        }
        Some(_) if !layout.has_blob(wanted) => {
            Some(format!("{shown} points at {wanted}, but the layout no longer has that blob"))
        }
        Some(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use oci_spec::image::{DescriptorBuilder, MediaType};

    use super::*;
    use crate::config::Config;
    use crate::image::ImageStatus;

    fn project(root: &Path, toml: &str) -> Project {
        let config = Config::parse(toml, Path::new("castoff.toml")).unwrap();
        Project { root: root.to_path_buf(), config, config_file: None, planned_version: None }
    }

    fn outcome(reference: &str, digest: Option<&Digest>) -> ImageOutcome {
        ImageOutcome {
            platform: "linux/amd64".into(),
            reference: reference.into(),
            digest: digest.map(ToString::to_string),
            status: ImageStatus::Pushed,
        }
    }

    /// A layout at `root/dir` with `tag` naming a manifest blob; returns its digest.
    fn tagged(root: &Path, dir: &str, tag: &str, content: &[u8]) -> Digest {
        let layout = OciLayout::create(root, dir).unwrap();
        let digest = layout.write_blob(content).unwrap();
        let descriptor = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(digest.clone())
            .size(content.len() as u64)
            .build()
            .unwrap();
        let _lock = layout.lock().unwrap();
        layout.set_tag(tag, descriptor).unwrap();
        digest
    }

    #[test]
    fn layout_images_hold_until_moved_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let project = project(root, "");
        let amd64 = tagged(root, "dist/oci", "1.2.0-amd64", b"{\"amd64\":1}");
        let arm64 = tagged(root, "dist/oci", "1.2.0-arm64", b"{\"arm64\":1}");
        let images = [
            outcome("oci-layout:dist/oci:1.2.0-amd64", Some(&amd64)),
            outcome("oci-layout:dist/oci:1.2.0-arm64", Some(&arm64)),
        ];
        assert_eq!(check_images(&project, &images).unwrap(), None);

        // No digest recorded: missing.
        let unrecorded = [outcome("oci-layout:dist/oci:1.2.0-amd64", None)];
        let reason = check_images(&project, &unrecorded).unwrap().unwrap();
        assert!(reason.contains("no digest was recorded"), "{reason}");

        // A tag that points elsewhere names both digests.
        let other = tagged(root, "dist/oci", "1.2.0-arm64", b"{\"arm64\":2}");
        let reason = check_images(&project, &images).unwrap().unwrap();
        assert!(reason.contains("oci-layout:dist/oci:1.2.0-arm64"), "{reason}");
        assert!(reason.contains(&other.to_string()) && reason.contains(&arm64.to_string()), "{reason}");

        // The blob gone while the tag stays.
        tagged(root, "dist/oci", "1.2.0-arm64", b"{\"arm64\":1}");
        std::fs::remove_file(OciLayout::open(root, "dist/oci").unwrap().blob_path(&amd64)).unwrap();
        let reason = check_images(&project, &images).unwrap().unwrap();
        assert!(reason.contains("no longer has that blob") && reason.contains("1.2.0-amd64"), "{reason}");

        // A tag gone from index.json, and the whole layout gone.
        let missing = [outcome("oci-layout:dist/oci:1.2.0-armv7", Some(&amd64))];
        let reason = check_images(&project, &missing).unwrap().unwrap();
        assert!(reason.contains("gone from the layout") && reason.contains(&amd64.to_string()), "{reason}");
        std::fs::remove_dir_all(root.join("dist/oci")).unwrap();
        let reason = check_images(&project, &images).unwrap().unwrap();
        assert!(reason.contains("the OCI layout dist/oci is gone"), "{reason}");

        // A directory that is not a layout cannot be asked.
        std::fs::create_dir_all(root.join("dist/oci")).unwrap();
        assert!(check_images(&project, &images).is_err());
        assert_eq!(check_images(&project, &[]).unwrap(), None);
    }

    #[test]
    fn layout_references_split_at_the_last_colon() {
        assert_eq!(split_layout("oci-layout:dist/oci:1.2.0"), Some(("dist/oci", "1.2.0")));
        assert_eq!(split_layout("oci-layout:a:b:latest"), Some(("a:b", "latest")));
        assert_eq!(split_layout("registry.example.com:5000/app:1.2.0"), None);
    }

    #[test]
    fn registry_images_are_asked_with_a_head() {
        let registry = testkit::registry::Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let name = registry.reference("team/app");
        let project = project(dir.path(), &format!("[image]\nname = \"{name}\"\nplatforms = [\"linux/amd64\"]\n"));
        let client = crate::image::client(&project, project.config.image.as_ref().unwrap());
        let reference = Reference::parse(&format!("{name}:1.2.0-amd64")).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config_digest: Digest = testkit::registry::sha256_digest(config).parse().unwrap();
        client.push_blob(&reference, &config_digest, config.len() as u64, &mut &config[..]).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
            config.len()
        );
        let digest = client.put_manifest(&reference, &MediaType::ImageManifest, manifest.as_bytes()).unwrap();

        let shown = reference.to_string();
        assert_eq!(check_images(&project, &[outcome(&shown, Some(&digest))]).unwrap(), None);
        let other: Digest = testkit::registry::sha256_digest(b"other").parse().unwrap();
        let reason = check_images(&project, &[outcome(&shown, Some(&other))]).unwrap().unwrap();
        assert!(reason.contains(&digest.to_string()) && reason.contains(&other.to_string()), "{reason}");
        let gone = format!("{name}:1.2.0-arm64");
        let reason = check_images(&project, &[outcome(&gone, Some(&digest))]).unwrap().unwrap();
        assert!(reason.contains("gone from the registry") && reason.contains(&gone), "{reason}");
    }
}
