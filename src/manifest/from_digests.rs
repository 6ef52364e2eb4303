//! `--from-digests DIR`: the per-platform images named by the digest files that CI's
//! build jobs wrote, checked against `[image] platforms` before anything is read: every
//! configured platform exactly once, nothing else.

use std::path::Path;

use crate::config::{ImageConfig, OutputTarget};
use crate::error::{Error, Result};
use crate::image::read_digest_dir;
use crate::platform::Platform;
use crate::registry::Reference;
use semver::Version;

/// (configured platform, reference by digest) for each configured platform, in
/// configured order.
pub fn sources(dir: &Path, image: &ImageConfig, version: &Version) -> Result<Vec<(Platform, Reference)>> {
    let records = read_digest_dir(dir)?;
    let mut found: Vec<(Platform, Reference, &Path)> = Vec::new();
    for (file, record) in &records {
        let bad = |problem: String, hint: &str| Error::usage(format!("{}: {problem}", file.display()), hint);
        if record.version != version.to_string() {
            return Err(bad(
                format!("recorded for version {}, but this release is {version}", record.version),
                "build this version's images (`castoff build --digest-file ...`) into a clean directory",
            ));
        }
        let platform = Platform::parse(&record.platform)
            .map_err(|e| bad(format!("platform `{}`: {}", record.platform, e.problem()), e.hint()))?;
        let Some(configured) = image.platforms.iter().find(|p| p.matches(&platform)) else {
            return Err(bad(
                format!("{platform} is not one of [image] platforms"),
                "add it to [image] platforms, or remove this digest file",
            ));
        };
        if let Some((_, _, earlier)) = found.iter().find(|(p, _, _)| p == configured) {
            return Err(bad(
                format!("{configured} is recorded twice (also in {})", earlier.display()),
                "keep one digest file per platform: clear the directory before the build jobs write to it",
            ));
        }
        if record.digest.parse::<oci_spec::image::Digest>().is_err() {
            return Err(bad(format!("`{}` is not a digest", record.digest), "digests look like sha256:<64 hex>"));
        }
        // The image is read by digest from where castoff build put it: the registry
        // repository, or the layout (whose references ignore the repository).
        let base = match &image.build.output {
            OutputTarget::Registry => Reference::parse(&record.reference)
                .map_err(|e| bad(format!("reference `{}`: {}", record.reference, e.problem()), e.hint()))?,
            OutputTarget::OciLayout(_) => image.platform_name.clone(),
        };
        let reference = base.with_digest(&record.digest).map_err(|e| bad(e.problem().to_string(), e.hint()))?;
        found.push((configured.clone(), reference, file));
    }
    let missing: Vec<String> =
        image.platforms.iter().filter(|p| !found.iter().any(|(f, _, _)| f == *p)).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Err(Error::usage(
            format!("{} has no digest for {}", dir.display(), missing.join(", ")),
            "run `castoff build --platform P --digest-file DIR/P.json` for those platforms, or remove them from [image] platforms",
        ));
    }
    Ok(image
        .platforms
        .iter()
        .filter_map(|p| found.iter().find(|(f, _, _)| f == p).map(|(p, r, _)| (p.clone(), r.clone())))
        .collect())
}
