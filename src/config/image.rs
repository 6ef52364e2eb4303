//! `[image]`: which image castoff releases, for which platforms, under which tags.
//!
//! ```toml
//! [image]
//! name = "registry.example.com/team/app"
//! platforms = ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]
//! tags = ["latest", "{version}"]          # the release tags (default)
//! platform_tag = "{version}-{suffix}"     # each platform's own image (default)
//! annotations = { "org.opencontainers.image.title" = "app" }
//! insecure_registries = ["registry.internal:5000"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::build::{BuildConfig, RawBuild, RawNative};
use super::{check_placeholders, Spans};
use crate::error::Result;
use crate::placeholders::{IMAGE_TAG_PLACEHOLDERS, PLATFORM_TAG_PLACEHOLDERS};
use crate::platform::Platform;
use crate::registry::Reference;

pub const DEFAULT_TAGS: [&str; 2] = ["latest", "{version}"];
pub const DEFAULT_PLATFORM_TAG: &str = "{version}-{suffix}";

/// The validated `[image]` table.
#[derive(Debug, Clone)]
pub struct ImageConfig {
    /// The repository the release tags go to (no tag or digest).
    pub name: Reference,
    /// Where the per-platform images are read from: `name` unless `platform_name` says
    /// otherwise (e.g. a staging repository); then blobs are mounted across.
    pub platform_name: Reference,
    pub platforms: Vec<Platform>,
    /// Release tag templates.
    pub tags: Vec<String>,
    /// Per-platform tag template; always contains `{suffix}`.
    pub platform_tag: String,
    pub annotations: BTreeMap<String, String>,
    pub insecure_registries: Vec<String>,
    /// How the per-platform images are built (`castoff build`).
    pub build: BuildConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    name: Spanned<String>,
    platform_name: Option<Spanned<String>>,
    platforms: Option<Vec<Spanned<String>>>,
    tags: Option<Vec<Spanned<String>>>,
    platform_tag: Option<Spanned<String>>,
    annotations: Option<Spanned<BTreeMap<String, String>>>,
    insecure_registries: Option<Vec<Spanned<String>>>,
    // The build keys (see build.rs); serde cannot flatten with deny_unknown_fields.
    builder: Option<Spanned<String>>,
    dockerfile: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    buildx_builder: Option<Spanned<String>>,
    provenance: Option<bool>,
    output: Option<Spanned<String>>,
    build_args: Option<BTreeMap<String, Spanned<String>>>,
    labels: Option<BTreeMap<String, Spanned<String>>>,
    native: Option<RawNative>,
}

impl ImageConfig {
    pub(super) fn from_raw(raw: RawImage, at: &Spans<'_>) -> Result<ImageConfig> {
        let name = at.check("image.name", raw.name, |text| repository(&text))?;
        let platform_name = match raw.platform_name {
            Some(value) => at.check("image.platform_name", value, |text| repository(&text))?,
            None => name.clone(),
        };

        let mut platforms: Vec<Platform> = Vec::new();
        for item in raw.platforms.unwrap_or_default() {
            let platform = at.check("image.platforms", item, |text| {
                let platform = Platform::parse(&text)?;
                match platforms.iter().find(|p| p.matches(&platform)) {
                    Some(earlier) => Err((
                        format!("`{text}` is listed twice (it is the same platform as {earlier})"),
                        "list each platform once".to_string(),
                    )),
                    None => Ok(platform),
                }
            })?;
            platforms.push(platform);
        }
        if platforms.is_empty() {
            platforms.push(Platform::parse("linux/amd64").map_err(|e| crate::Error::Internal(e.to_string()))?);
        }

        let tags = match raw.tags {
            Some(list) => {
                let mut tags: Vec<String> = Vec::new();
                for item in list {
                    let tag = at.check("image.tags", item, |tag| {
                        check_image_tag(&tag, IMAGE_TAG_PLACEHOLDERS)?;
                        match tags.contains(&tag) {
                            true => Err((format!("tag `{tag}` is listed twice"), "list each tag once".into())),
                            false => Ok(tag),
                        }
                    })?;
                    tags.push(tag);
                }
                tags
            }
            None => DEFAULT_TAGS.iter().map(|t| t.to_string()).collect(),
        };

        let platform_tag = match raw.platform_tag {
            Some(value) => at.check("image.platform_tag", value, |tag| {
                check_image_tag(&tag, PLATFORM_TAG_PLACEHOLDERS)?;
                match tag.contains("{suffix}") {
                    true => Ok(tag),
                    false => Err((
                        format!("`{tag}` has no `{{suffix}}`, so every platform would get the same tag"),
                        "add {suffix}, e.g. \"{version}-{suffix}\" or \"{suffix}\"".into(),
                    )),
                }
            })?,
            None => DEFAULT_PLATFORM_TAG.to_string(),
        };

        let annotations = match raw.annotations {
            Some(value) => at.check("image.annotations", value, |map| {
                match map.keys().find(|k| k.trim().is_empty() || k.chars().any(char::is_whitespace)) {
                    Some(key) => Err((
                        format!("annotation key `{key}` is empty or has spaces"),
                        "use reverse-domain keys such as \"org.opencontainers.image.title\"".into(),
                    )),
                    None => Ok(map),
                }
            })?,
            None => BTreeMap::new(),
        };

        let insecure_registries = raw
            .insecure_registries
            .unwrap_or_default()
            .into_iter()
            .map(|item| at.check("image.insecure_registries", item, |host| check_host(&host).map(|()| host)))
            .collect::<Result<Vec<_>>>()?;

        let build = BuildConfig::from_raw(
            RawBuild {
                builder: raw.builder,
                dockerfile: raw.dockerfile,
                context: raw.context,
                buildx_builder: raw.buildx_builder,
                provenance: raw.provenance,
                output: raw.output,
                build_args: raw.build_args,
                labels: raw.labels,
                native: raw.native,
            },
            at,
        )?;
        Ok(ImageConfig { name, platform_name, platforms, tags, platform_tag, annotations, insecure_registries, build })
    }

    /// Whether a release tag template names one release (the full version, its patch
    /// part, or a commit): such tags never move. `latest`, `{major}` and
    /// `{major}.{minor}` move with each release.
    pub fn is_immutable_tag(template: &str) -> bool {
        ["{version}", "{patch}", "{git_sha}"].iter().any(|p| template.contains(p))
    }
}

/// An image name without tag or digest.
fn repository(text: &str) -> std::result::Result<Reference, (String, String)> {
    let reference = Reference::parse(text)?;
    if reference.tag.is_some() || reference.digest.is_some() {
        return Err((
            format!("`{text}` includes a tag or digest"),
            format!("give the repository only, e.g. \"{}\"; tags come from `tags`", reference.name()),
        ));
    }
    Ok(reference)
}

/// A tag template: known placeholders, and literal text that is legal in a tag.
fn check_image_tag(template: &str, allowed: &[&str]) -> std::result::Result<(), (String, String)> {
    check_placeholders(template, allowed)?;
    // Check the tag a release would get: placeholders stand for digits, hex or words.
    let sample = crate::placeholders::expand(template, |name| {
        Some(if name == "git_sha" {
            "0123456789ab".into()
        } else if name == "suffix" {
            "armv7".into()
        } else {
            "0".into()
        })
    })
    .unwrap_or_default();
    let legal = sample.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if template.is_empty() || !legal || sample.starts_with(['.', '-']) || sample.len() > 128 {
        return Err((
            format!("`{template}` cannot be an image tag"),
            "tags use letters, digits, `_`, `.` and `-`, start with a letter, digit or `_`, at most 128 long".into(),
        ));
    }
    Ok(())
}

fn check_host(host: &str) -> std::result::Result<(), (String, String)> {
    let ok = !host.is_empty()
        && !host.contains("://")
        && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    match ok {
        true => Ok(()),
        false => Err((
            format!("`{host}` is not a registry host"),
            "write host or host:port, without a scheme, e.g. \"registry.internal:5000\"".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::ImageConfig;
    use crate::config::Config;

    fn parse(image: &str) -> crate::Result<Config> {
        Config::parse(&format!("[version]\n\n[image]\n{image}"), Path::new("castoff.toml"))
    }

    #[test]
    fn defaults_and_normalised_platforms() {
        let config =
            parse("name = \"127.0.0.1:5000/team/app\"\nplatforms = [\"linux/amd64\", \"linux/armhf\"]\n").unwrap();
        let image = config.image.unwrap();
        assert_eq!(image.tags, ["latest", "{version}"]);
        assert_eq!(image.platform_tag, "{version}-{suffix}");
        assert_eq!(image.platforms[1].to_string(), "linux/arm/v7");
        assert_eq!(image.platform_name, image.name);
    }

    #[test]
    fn tag_templates_that_make_good_tags_are_accepted() {
        let image = parse(
            "name = \"app\"\ntags = [\"{major}.{minor}\", \"{version}-{git_sha}\", \"latest\"]\n\
             platform_tag = \"{version}-{suffix}\"\n",
        )
        .unwrap()
        .image
        .unwrap();
        assert_eq!(image.tags.len(), 3);
        assert!(!ImageConfig::is_immutable_tag("{major}.{minor}"));
        assert!(ImageConfig::is_immutable_tag("{major}.{minor}.{patch}"));
    }

    #[test]
    fn errors_name_key_and_line() {
        let cases = [
            ("name = \"app\"\nplatforms = [\"linux/arm/v7l\"]\n", "image.platforms", 5, "linux/arm/v7"),
            ("name = \"app\"\ntags = [\"-{version}\"]\n", "image.tags", 5, "start with"),
            ("name = \"app\"\nplatforms = [\"linux/amd64\", \"linux/x86_64\"]\n", "image.platforms", 5, "once"),
            ("name = \"app:1.0\"\n", "image.name", 4, "repository only"),
            ("name = \"app\"\ntags = [\"v {version}\"]\n", "image.tags", 5, "letters"),
            ("name = \"app\"\ntags = [\"{verison}\"]\n", "image.tags", 5, "{git_sha}"),
            ("name = \"app\"\nplatform_tag = \"{version}\"\n", "image.platform_tag", 5, "{suffix}"),
            ("name = \"app\"\ninsecure_registries = [\"http://x\"]\n", "image.insecure_registries", 5, "scheme"),
            ("platforms = []\n", "image.name", 3, "name = ..."),
        ];
        for (text, key, line, hint) in cases {
            let err = parse(text).unwrap_err();
            crate::config::tests::assert_located(&err, text, key, line, hint);
        }
    }
}
