//! A blocking client for the OCI distribution API: exactly the requests castoff needs
//! (manifests, config blobs, blob mounts and uploads), with credentials, the bearer-token
//! challenge flow, bounded retries, and redirects followed by castoff itself so that no
//! Authorization header ever reaches another host.
//!
//! Why hand-written rather than oci-client: see ARCHITECTURE.md ("Why some things are
//! hand-written"): request-level control over retries, redirects and the request count.

use std::io::Read;
use std::time::Duration;

use oci_spec::image::{Digest, MediaType};

use super::reference::Reference;

/// Manifest media types castoff accepts when reading, in preference order.
pub const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How hard to try before giving up on a registry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// The first backoff; each later one doubles, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The whole request, retries and waits included, never takes longer than this.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            total: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) that may be spoken to over plain HTTP.
    /// Loopback registries always may; every other registry is HTTPS only.
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    /// Timeout for connecting and for each read.
    pub timeout: Duration,
    /// The docker config directory to read credentials from; `None` means
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            docker_config: None,
        }
    }
}

/// A manifest or index as the registry returned it: the exact bytes (whose SHA-256 is
/// the digest), and the media type the registry declared.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: MediaType,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// What a HEAD says about a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// 401/403 after authenticating with what `credential_source` supplied.
    #[error("{registry} refused access ({status}) using {credential_source}")]
    Denied { registry: String, status: u16, credential_source: String },
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("{registry} is unreachable after {attempts} attempt(s) over {elapsed:?}: {last_error}")]
    Unreachable { registry: String, attempts: u32, elapsed: Duration, last_error: String },
    #[error("refusing plain HTTP to {registry}")]
    InsecureRefused { registry: String },
    #[error("{url}: {problem}")]
    Protocol { url: String, problem: String },
    #[error("{method} {url} answered {status}: {body}")]
    Status { method: String, url: String, status: u16, body: String },
    /// The docker config or a credential helper is broken: the user must fix it.
    #[error("{source_name}: {problem}")]
    Credentials { source_name: String, problem: String, hint: String },
}

impl RegistryError {
    pub fn hint(&self) -> String {
        match self {
            RegistryError::Denied { registry, .. } => format!(
                "check the credentials for {registry}: `docker login {registry}`, or set \
                 CASTOFF_REGISTRY_USERNAME and CASTOFF_REGISTRY_PASSWORD"
            ),
            RegistryError::NotFound { .. } => "check the image name and tag; was the image pushed?".into(),
            RegistryError::Unreachable { .. } => "check the registry address and the network; castoff retried".into(),
            RegistryError::InsecureRefused { registry } => format!(
                "use HTTPS, or if {registry} really speaks plain HTTP, list it in [image] insecure_registries"
            ),
            RegistryError::Protocol { .. } | RegistryError::Status { .. } => {
                "the registry answered something castoff cannot use; see the message".into()
            }
            RegistryError::Credentials { hint, .. } => hint.clone(),
        }
    }

    /// Bad input the user must fix (exit 2) rather than a failed step (exit 1).
    pub fn is_user_error(&self) -> bool {
        matches!(self, RegistryError::Credentials { .. } | RegistryError::InsecureRefused { .. })
    }
}

/// A registry client. Cheap to share across threads; it keeps bearer tokens per
/// registry and repository scope so one flow serves many requests.
pub struct Client {
    _options: ClientOptions,
}

impl Client {
    pub fn new(options: ClientOptions) -> Client {
        Client { _options: options }
    }

    /// GET a manifest or index by tag or digest. When fetched by digest, the bytes are
    /// checked against it.
    pub fn get_manifest(&self, _reference: &Reference) -> Result<Fetched, RegistryError> {
        unimplemented!("registry client")
    }

    /// HEAD a manifest: `Some` when the tag or digest exists, `None` on 404.
    pub fn head_manifest(&self, _reference: &Reference) -> Result<Option<Found>, RegistryError> {
        unimplemented!("registry client")
    }

    /// PUT manifest bytes under the reference's tag (or digest). Returns the digest of
    /// the bytes, checked against the registry's Docker-Content-Digest when it sends one.
    pub fn put_manifest(
        &self,
        _reference: &Reference,
        _media_type: &MediaType,
        _bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        unimplemented!("registry client")
    }

    /// GET a blob into memory, checking its digest; refuses blobs over `limit` bytes.
    pub fn get_blob(&self, _repository: &Reference, _digest: &Digest, _limit: u64) -> Result<Vec<u8>, RegistryError> {
        unimplemented!("registry client")
    }

    /// HEAD a blob.
    pub fn has_blob(&self, _repository: &Reference, _digest: &Digest) -> Result<bool, RegistryError> {
        unimplemented!("registry client")
    }

    /// Cross-repository mount (`POST .../blobs/uploads/?mount=&from=`). `true` when the
    /// registry mounted it (201); `false` when it declined (202; the upload it opened
    /// instead is cancelled), and the caller must copy the blob.
    pub fn mount_blob(
        &self,
        _repository: &Reference,
        _digest: &Digest,
        _from_repository: &str,
    ) -> Result<bool, RegistryError> {
        unimplemented!("registry client")
    }

    /// Upload a blob of known size and digest, streaming from `body` (monolithic
    /// POST + PUT). Skips the upload when the registry already has the blob.
    pub fn push_blob(
        &self,
        _repository: &Reference,
        _digest: &Digest,
        _size: u64,
        _body: &mut dyn Read,
    ) -> Result<(), RegistryError> {
        unimplemented!("registry client")
    }

    /// HTTP requests sent so far, retries and token fetches included.
    pub fn requests(&self) -> usize {
        0
    }
}
