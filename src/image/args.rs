//! Turning `[image]` and the command line into one [`Job`] per platform: which
//! platforms, under which tag, with which build args and labels. Pure: no I/O.

use std::collections::BTreeMap;

use semver::Version;

use super::Job;
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::git::GitInfo;
use crate::manifest::{standard_annotations, with_tag, TagVars};
use crate::platform::Platform;

/// The jobs for `wanted` platforms (all configured ones when empty), in configured order.
pub fn jobs(image: &ImageConfig, version: &Version, git: &GitInfo, wanted: &[String]) -> Result<Vec<Job>> {
    let platforms = selected(image, wanted)?;
    let vars = TagVars { version, git };
    let mut labels = standard_annotations(version, git);
    for (name, template) in &image.build.labels {
        labels.insert(name.clone(), vars.expand(template, &format!("image.labels.{name}"), None)?);
    }
    let mut build_args = BTreeMap::new();
    for (name, template) in &image.build.build_args {
        build_args.insert(name.clone(), vars.expand(template, &format!("image.build_args.{name}"), None)?);
    }
    platforms
        .into_iter()
        .map(|platform| {
            let tag = vars.expand(&image.platform_tag, "image.platform_tag", Some(&platform.suffix()))?;
            let reference = with_tag(&image.platform_name, &tag)?;
            Ok(Job { platform, tag, reference, build_args: build_args.clone(), labels: labels.clone() })
        })
        .collect()
}

/// The configured platforms named by `wanted` (`--platform`), each once.
fn selected(image: &ImageConfig, wanted: &[String]) -> Result<Vec<Platform>> {
    if wanted.is_empty() {
        return Ok(image.platforms.clone());
    }
    let configured = || image.platforms.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let mut chosen: Vec<Platform> = Vec::new();
    for text in wanted {
        let platform = Platform::parse(text).map_err(|e| {
            let (problem, hint): (String, String) = e.into();
            Error::usage(format!("--platform {text}: {problem}"), hint)
        })?;
        let Some(found) = image.platforms.iter().find(|p| p.matches(&platform)) else {
            return Err(Error::usage(
                format!("--platform {text} is not one of [image] platforms ({})", configured()),
                "pick a configured platform, or add it to [image] platforms in castoff.toml",
            ));
        };
        if !chosen.contains(found) {
            chosen.push(found.clone());
        }
    }
    // Configured order, whatever order the flags came in: output and digest files stay stable.
    Ok(image.platforms.iter().filter(|p| chosen.contains(p)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn image() -> ImageConfig {
        let text = "[version]\n[image]\nname = \"127.0.0.1:5000/team/app\"\n\
                    platforms = [\"linux/amd64\", \"linux/arm/v7\", \"linux/arm64\"]\n\
                    [image.labels]\n\"org.example.build\" = \"{major}\"\n";
        Config::parse(text, Path::new("castoff.toml")).unwrap().image.unwrap()
    }

    #[test]
    fn one_job_per_platform_with_tags_args_and_labels() {
        let version = Version::parse("1.2.3").unwrap();
        let git = GitInfo { commit: Some("abc".into()), ..GitInfo::default() };
        let jobs = jobs(&image(), &version, &git, &[]).unwrap();
        let refs: Vec<String> = jobs.iter().map(|j| j.reference.to_string()).collect();
        assert_eq!(
            refs,
            [
                "127.0.0.1:5000/team/app:1.2.3-amd64",
                "127.0.0.1:5000/team/app:1.2.3-armv7",
                "127.0.0.1:5000/team/app:1.2.3-arm64"
            ]
        );
        assert_eq!(jobs[0].build_args.get("APP_VERSION").map(String::as_str), Some("1.2.3"));
        assert_eq!(jobs[0].labels.get("org.opencontainers.image.revision").map(String::as_str), Some("abc"));
        assert_eq!(jobs[0].labels.get("org.example.build").map(String::as_str), Some("1"));
    }

    #[test]
    fn platform_filter_keeps_configured_order_and_rejects_strangers() {
        let version = Version::parse("1.0.0").unwrap();
        let wanted = ["linux/arm64".to_string(), "linux/armhf".to_string(), "linux/arm64".to_string()];
        let jobs = jobs(&image(), &version, &GitInfo::default(), &wanted).unwrap();
        let names: Vec<String> = jobs.iter().map(|j| j.platform.to_string()).collect();
        assert_eq!(names, ["linux/arm/v7", "linux/arm64"]);
        let err = super::jobs(&image(), &version, &GitInfo::default(), &["linux/s390x".into()]).unwrap_err();
        assert!(err.to_string().contains("linux/amd64, linux/arm/v7, linux/arm64"), "{err}");
        let err = super::jobs(&image(), &version, &GitInfo::default(), &["linux/arm/v7l".into()]).unwrap_err();
        assert!(err.hint().unwrap_or_default().contains("v7"), "{:?}", err.hint());
    }
}
