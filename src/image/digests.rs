//! Digest files: how CI fan-out carries each runner's build to the job that joins them.
//! `castoff build --platform linux/arm64 --digest-file digests/arm64.json` writes
//! `{version, platform, digest, reference}`; `castoff manifest --from-digests digests/` reads
//! every `*.json` there and joins the images by digest, so they need no tags.
//!
//! One platform gives one object, several give an array of them; both are read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Built, Job, Target};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestRecord {
    /// The release version the image was built for: joining images of another
    /// version under this one's tags would publish stale builds.
    pub version: String,
    pub platform: String,
    pub digest: String,
    /// `IMAGE:TAG@DIGEST`, or `oci-layout:DIR:TAG@DIGEST`.
    pub reference: String,
}

/// Write the records for `jobs` to `path` (atomically, creating its directory).
pub fn write(path: &Path, version: &semver::Version, jobs: &[Job], built: &[Built], target: &Target) -> Result<()> {
    let mut records = Vec::new();
    for (job, built) in jobs.iter().zip(built) {
        let Some(digest) = &built.digest else {
            return Err(Error::Failed {
                problem: format!("the {} build reported no digest, so --digest-file cannot record it", job.platform),
                hint: "push the image (drop --no-push)".into(),
            });
        };
        let reference = format!("{}@{digest}", target.describe(job));
        records.push(DigestRecord {
            version: version.to_string(),
            platform: job.platform.to_string(),
            digest: digest.to_string(),
            reference,
        });
    }
    let json = match records.as_slice() {
        [one] => serde_json::to_vec_pretty(one),
        many => serde_json::to_vec_pretty(many),
    }
    .map_err(|e| Error::Internal(format!("digest records do not serialise: {e}")))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            action: "create directory",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_atomic(path, &[json, b"\n".to_vec()].concat())
}

/// Every record in `dir`'s `*.json` files, with the file each came from, files in name
/// order.
pub fn read_digest_dir(dir: &Path) -> Result<Vec<(PathBuf, DigestRecord)>> {
    let entries = std::fs::read_dir(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => Error::usage(
            format!("--from-digests {}: no such directory", dir.display()),
            "pass the directory the build jobs wrote their --digest-file into",
        ),
        _ => Error::Io { action: "read directory", path: dir.to_path_buf(), source },
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::usage(
            format!("--from-digests {}: no *.json digest files there", dir.display()),
            "run `castoff build --digest-file DIR/PLATFORM.json` for each platform first",
        ));
    }
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            action: "read",
            path: file.clone(),
            source,
        })?;
        let parsed: serde_json::Result<OneOrMany> = serde_json::from_str(&text);
        let list = match parsed {
            Ok(OneOrMany::One(record)) => vec![record],
            Ok(OneOrMany::Many(list)) => list,
            Err(e) => {
                return Err(Error::usage(
                    format!("{}: not a castoff digest file ({e})", file.display()),
                    "digest files hold {\"platform\", \"digest\", \"reference\"} as written by `castoff build --digest-file`",
                ))
            }
        };
        records.extend(list.into_iter().map(|record| (file.clone(), record)));
    }
    Ok(records)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(DigestRecord),
    Many(Vec<DigestRecord>),
}
