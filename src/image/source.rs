//! Where image manifests and blobs are read from: a registry or an OCI image layout.
//! Resolving a platform's image (`manifest::resolve`) and reading a native build's base
//! work the same against both.

use oci_spec::image::Digest;

use crate::error::Result;
use crate::registry::{Client, Fetched, Reference};

pub trait ImageSource: Sync {
    /// The manifest or index at `reference` (by digest when it has one, else by tag).
    /// A missing one is `RegistryError::NotFound`.
    fn manifest(&self, reference: &Reference) -> Result<Fetched>;

    /// A blob's bytes, digest checked; refused above `limit` bytes.
    fn blob(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Vec<u8>>;
}

impl ImageSource for Client {
    fn manifest(&self, reference: &Reference) -> Result<Fetched> {
        Ok(self.get_manifest(reference)?)
    }

    fn blob(&self, reference: &Reference, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        Ok(self.get_blob(reference, digest, limit)?)
    }
}
