//! Read every tag back after pushing: the digest must be the one pushed, and the
//! children exactly the resolved (platform, digest) pairs, no more, no fewer. Whatever
//! pushed it (castoff or docker), this is the proof the release is what castoff.toml
//! says.

use std::collections::BTreeSet;

use oci_spec::image::{Digest, ImageIndex};

use super::index::Child;
use super::{fan_out, Target};
use crate::error::{Error, Result};
use crate::image::ImageSource;
use crate::platform::Platform;

/// (platform, child digest) pairs: what an index must hold.
pub type Children = BTreeSet<(String, String)>;

/// The pairs castoff resolved.
pub fn expected(children: &[Child]) -> Children {
    children.iter().map(|c| (c.platform.normalized().to_string(), c.digest.to_string())).collect()
}

/// The pairs in index `bytes`, attestations (`unknown/unknown`) left out.
pub fn children_of(bytes: &[u8]) -> std::result::Result<Children, String> {
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| format!("not an index ({e})"))?;
    Ok(index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref().map(|p| (d, p)))
        .map(|(d, p)| {
            let platform = Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            };
            (platform.normalized().to_string(), d.digest().to_string())
        })
        .filter(|(platform, _)| !platform.starts_with("unknown/"))
        .collect())
}

pub fn verify(client: &dyn ImageSource, pushed: &[(&Target, Digest)], children: &[Child]) -> Result<()> {
    let want = expected(children);
    fan_out(pushed, |(target, digest)| {
        let fetched = client.manifest(&target.reference)?;
        let failed = |problem: String| Error::Failed {
            problem: format!("verification failed for {}: {problem}", target.reference),
            hint: "something else changed this tag meanwhile, or the push was incomplete; re-run castoff manifest"
                .into(),
        };
        if fetched.digest != *digest {
            return Err(failed(format!("expected {digest}, found {}", fetched.digest)));
        }
        let found = children_of(&fetched.bytes).map_err(failed)?;
        if found != want {
            return Err(failed(format!("expected children [{}], found [{}]", describe(&want), describe(&found))));
        }
        Ok(())
    })
    .map(drop)
}

pub fn describe(children: &Children) -> String {
    children.iter().map(|(platform, digest)| format!("{platform} {digest}")).collect::<Vec<_>>().join(", ")
}
