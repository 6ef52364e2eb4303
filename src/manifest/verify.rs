//! Read every tag back after pushing: the digest must be the one pushed, and the
//! platforms exactly the configured set. Whatever pushed it (castoff or docker), this
//! is the proof the release is what castoff.toml says.

use std::collections::BTreeSet;

use oci_spec::image::{Digest, ImageIndex};

use super::Target;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::registry::Client;

pub fn verify(client: &Client, expected: &[(&Target, Digest)], platforms: &[Platform]) -> Result<()> {
    let want: BTreeSet<String> = platforms.iter().map(|p| p.normalized().to_string()).collect();
    for (target, digest) in expected {
        let fetched = client.get_manifest(&target.reference)?;
        if fetched.digest != *digest {
            return Err(Error::Failed {
                problem: format!(
                    "verification failed for {}: expected {digest}, found {}",
                    target.reference, fetched.digest
                ),
                hint: "something else pushed to this tag meanwhile; re-run castoff manifest".into(),
            });
        }
        let index: ImageIndex = serde_json::from_slice(&fetched.bytes).map_err(|e| Error::Failed {
            problem: format!("verification failed for {}: not an index ({e})", target.reference),
            hint: "re-run castoff manifest".into(),
        })?;
        let found: BTreeSet<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| {
                Platform {
                    os: p.os().to_string(),
                    architecture: p.architecture().to_string(),
                    variant: p.variant().clone(),
                }
                .normalized()
                .to_string()
            })
            .filter(|p| !p.starts_with("unknown/"))
            .collect();
        if found != want {
            let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(Error::Failed {
                problem: format!(
                    "verification failed for {}: expected platforms [{}], found [{}]",
                    target.reference,
                    list(&want),
                    list(&found)
                ),
                hint: "the index does not cover exactly [image] platforms; re-run castoff manifest".into(),
            });
        }
    }
    Ok(())
}
