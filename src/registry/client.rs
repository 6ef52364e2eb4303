//! A blocking client for the OCI distribution API: exactly the requests castoff needs
//! (manifests, config blobs, blob mounts and uploads), with credentials, the bearer-token
//! challenge flow, bounded retries, and redirects followed by castoff itself so that no
//! Authorization header ever reaches another host.
//!
//! Why hand-written rather than oci-client: see ARCHITECTURE.md ("Why some things are
//! hand-written"): request-level control over retries, redirects and the request count.

use std::io::{Read, Seek, SeekFrom};
use std::str::FromStr;
use std::time::Duration;

use oci_spec::image::{Digest, DigestAlgorithm, MediaType};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use ureq::http::{header, Uri};

use super::auth::{Auth, Target};
use super::credentials::{CredentialEnv, CredentialStore};
use super::encoding::query_escape;
use super::reference::Reference;
use super::retry::{Budget, RETRY_STATUSES};
use super::transport::{
    display_url, excerpt, protocol, resolve_location, Method, Origin, Payload, Reply, Request, Transport, Upload,
};

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
    #[error("{registry} is unreachable after {attempts} attempt(s) over {:.1} s: {last_error}", .elapsed.as_secs_f64())]
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
            RegistryError::InsecureRefused { registry } => {
                format!("use HTTPS, or if {registry} really speaks plain HTTP, list it in [image] insecure_registries")
            }
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

/// Largest manifest or index castoff reads (distribution's own limit is 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// Largest response body read from requests whose answer is only a status and headers.
const SMALL_REPLY_LIMIT: u64 = 64 * 1024;

/// A registry client. Cheap to share across threads; it keeps bearer tokens per
/// registry and repository scope so one flow serves many requests.
///
/// Credentials are looked up only when a registry asks for them (see
/// `registry/credentials.rs` for the order), once per registry per client.
pub struct Client {
    transport: Transport,
    auth: Auth,
}

impl Client {
    /// A client reading credentials from the process environment
    /// (`CASTOFF_REGISTRY_USERNAME`/`PASSWORD`, `DOCKER_CONFIG`, `HOME`) and the docker
    /// config directory in `options`.
    pub fn new(options: ClientOptions) -> Client {
        let env = CredentialEnv::from_process(options.docker_config.clone());
        Client::with_credential_env(options, env)
    }

    /// A client with the credential environment given rather than read (for tests).
    pub(crate) fn with_credential_env(options: ClientOptions, env: CredentialEnv) -> Client {
        Client { transport: Transport::new(&options), auth: Auth::new(CredentialStore::new(env)) }
    }

    /// GET a manifest or index by tag or digest. When fetched by digest, the bytes are
    /// checked against it.
    ///
    /// The registry's `Docker-Content-Digest`, when sent, must match the bytes too. A
    /// reference with both tag and digest is fetched by digest. Manifests over
    /// [`MANIFEST_LIMIT`] are refused.
    pub fn get_manifest(&self, reference: &Reference) -> Result<Fetched, RegistryError> {
        let target = self.target(reference, vec![pull_scope(&reference.repository)])?;
        let url = target.url(&read_path(reference)?)?;
        let request =
            Request::new(Method::Get, url).header(header::ACCEPT, MANIFEST_ACCEPT.join(", ")).limit(MANIFEST_LIMIT);
        let reply = self.call(&target, request, &mut Budget::start())?;
        if !reply.success() {
            return Err(self.refusal(&target, Method::Get, &reply, || format!("manifest {reference}")));
        }
        verify_manifest(reference, &reply)
    }

    /// HEAD a manifest: `Some` when the tag or digest exists, `None` on 404.
    ///
    /// When the registry leaves out `Docker-Content-Digest` or `Content-Length` for a
    /// tag, the manifest is fetched to compute them.
    pub fn head_manifest(&self, reference: &Reference) -> Result<Option<Found>, RegistryError> {
        let target = self.target(reference, vec![pull_scope(&reference.repository)])?;
        let url = target.url(&read_path(reference)?)?;
        let request = Request::new(Method::Head, url).header(header::ACCEPT, MANIFEST_ACCEPT.join(", "));
        let reply = self.call(&target, request, &mut Budget::start())?;
        if reply.status == 404 {
            return Ok(None);
        }
        if !reply.success() {
            return Err(self.refusal(&target, Method::Head, &reply, || format!("manifest {reference}")));
        }
        let requested = reference.digest.as_deref().and_then(|d| Digest::from_str(d).ok());
        let digest = match reply.header(DOCKER_CONTENT_DIGEST) {
            Some(text) => Some(parse_digest(&reply, text)?),
            None => requested.clone(),
        };
        if let (Some(requested), Some(declared)) = (&requested, &digest) {
            if requested != declared {
                let problem = format!("asked for {requested}, the registry answered for {declared}");
                return Err(protocol(&reply.url, problem));
            }
        }
        let size = reply.header(header::CONTENT_LENGTH).and_then(|length| length.trim().parse::<u64>().ok());
        match (content_type(&reply), digest, size) {
            (Some(media_type), Some(digest), Some(size)) => Ok(Some(Found { media_type, digest, size })),
            _ => {
                let fetched = self.get_manifest(reference)?;
                let size = fetched.bytes.len() as u64;
                Ok(Some(Found { media_type: fetched.media_type, digest: fetched.digest, size }))
            }
        }
    }

    /// PUT manifest bytes under the reference's tag (or digest). Returns the digest of
    /// the bytes, checked against the registry's Docker-Content-Digest when it sends one.
    ///
    /// A reference with both tag and digest is PUT by tag after checking that the bytes
    /// have that digest. Any 2xx is success (the spec says 201).
    pub fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &MediaType,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let target = self.target(reference, vec![push_scope(&reference.repository)])?;
        let tag_or_digest = reference.tag.as_deref().or(reference.digest.as_deref());
        let url = target.url(&manifest_path(reference, tag_or_digest)?)?;
        let digest = match reference.digest.as_deref() {
            Some(wanted) => check_bytes(&url, bytes, wanted, "the manifest")?,
            None => sha256_digest(bytes),
        };
        let request = Request::new(Method::Put, url)
            .header(header::CONTENT_TYPE, media_type.to_string())
            .body(Payload::Bytes(bytes))
            .limit(SMALL_REPLY_LIMIT);
        let reply = self.call(&target, request, &mut Budget::start())?;
        if !reply.success() {
            return Err(self.refusal(&target, Method::Put, &reply, || {
                format!("repository {} (putting manifest {reference})", reference.name())
            }));
        }
        check_registry_digest(&reply, bytes)?;
        Ok(digest)
    }

    /// GET a blob into memory, checking its digest; refuses blobs over `limit` bytes.
    ///
    /// Redirects (blobs are often served from storage elsewhere) are followed without
    /// the registry's credentials.
    pub fn get_blob(&self, repository: &Reference, digest: &Digest, limit: u64) -> Result<Vec<u8>, RegistryError> {
        let target = self.target(repository, vec![pull_scope(&repository.repository)])?;
        let url = target.url(&blob_path(repository, digest))?;
        let reply = self.call(&target, Request::new(Method::Get, url.clone()).limit(limit), &mut Budget::start())?;
        if !reply.success() {
            return Err(
                self.refusal(&target, Method::Get, &reply, || format!("blob {digest} in {}", repository.name()))
            );
        }
        check_bytes(&url, &reply.body, digest.as_ref(), "the blob")?;
        Ok(reply.body)
    }

    /// HEAD a blob.
    pub fn has_blob(&self, repository: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let target = self.target(repository, vec![pull_scope(&repository.repository)])?;
        self.has_blob_in(&target, repository, digest)
    }

    /// Cross-repository mount (`POST .../blobs/uploads/?mount=&from=`). `true` when the
    /// registry mounted it (201); `false` when it declined (202; the upload it opened
    /// instead is cancelled), and the caller must copy the blob.
    ///
    /// `from_repository` is a repository path on the same registry (`team/base`).
    /// Cancelling is best effort: a failed DELETE leaves a session the registry expires.
    pub fn mount_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        from_repository: &str,
    ) -> Result<bool, RegistryError> {
        let scopes = vec![push_scope(&repository.repository), pull_scope(from_repository)];
        let target = self.target(repository, scopes)?;
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={}&from={}",
            repository.repository,
            query_escape(digest.as_ref()),
            query_escape(from_repository)
        );
        let request = Request::new(Method::Post, target.url(&path)?).limit(SMALL_REPLY_LIMIT);
        let reply = self.call(&target, request, &mut Budget::start())?;
        match reply.status {
            201 => Ok(true),
            202 => {
                self.cancel_upload(&target, &reply);
                Ok(false)
            }
            _ => Err(self.refusal(&target, Method::Post, &reply, || {
                format!("repository {} (mounting {digest} from {from_repository})", repository.name())
            })),
        }
    }

    /// Upload a blob of known size and digest, streaming from `body` (monolithic
    /// POST + PUT). Skips the upload when the registry already has the blob.
    ///
    /// `body` cannot be rewound, so a failed upload is retried (as a whole: a new
    /// session) only while none of it has been read; after that the error is returned.
    /// Prefer [`Client::push_blob_seekable`] when the body can seek.
    pub fn push_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        body: &mut dyn Read,
    ) -> Result<(), RegistryError> {
        self.push(repository, digest, size, &mut OneShot { reader: body }, true)
    }

    /// [`Client::push_blob`] for a body that can seek: a failed upload is retried as a
    /// whole (new session, body rewound to where it started) within the retry policy.
    pub fn push_blob_seekable(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        body: &mut (impl Read + Seek),
    ) -> Result<(), RegistryError> {
        let start = body.stream_position().ok();
        self.push(repository, digest, size, &mut Seekable { reader: body, start }, true)
    }

    /// [`Client::push_blob_seekable`] for a caller that has just asked [`Client::has_blob`]
    /// itself (to avoid work when the blob is there): no second HEAD.
    pub fn upload_blob_seekable(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        body: &mut (impl Read + Seek),
    ) -> Result<(), RegistryError> {
        let start = body.stream_position().ok();
        self.push(repository, digest, size, &mut Seekable { reader: body, start }, false)
    }

    /// HTTP requests sent so far, retries and token fetches included.
    pub fn requests(&self) -> usize {
        self.transport.requests()
    }

    /// The registry, API base URL and token scopes for a request about `reference`.
    fn target(&self, reference: &Reference, scopes: Vec<String>) -> Result<Target, RegistryError> {
        let authority = reference.api_host().to_ascii_lowercase();
        let base = format!("{}://{authority}", self.transport.scheme_for(&authority));
        let origin = base.parse::<Uri>().ok().as_ref().and_then(Origin::of).ok_or_else(|| RegistryError::Protocol {
            url: base.clone(),
            problem: "not a valid registry address".into(),
        })?;
        Ok(Target { registry: reference.registry.clone(), base, origin, scopes })
    }

    /// Send `request` to the target's registry, authenticating up front when the
    /// registry's scheme is known, or after its 401 challenge (once).
    fn call(&self, target: &Target, mut request: Request<'_>, budget: &mut Budget) -> Result<Reply, RegistryError> {
        let url = request.url.clone();
        let mut authorization = self.auth.up_front(&self.transport, target, budget)?;
        let mut challenged = false;
        loop {
            request.url = url.clone();
            request.authorization = authorization.clone().map(|secret| (target.origin.clone(), secret));
            let reply = self.transport.send(&mut request, budget)?;
            if reply.status != 401 || challenged || !request.body.replayable() {
                return Ok(reply);
            }
            challenged = true;
            match self.auth.challenged(&self.transport, target, &reply, authorization.as_ref(), budget)? {
                Some(answer) => authorization = Some(answer),
                None => return Ok(reply),
            }
        }
    }

    /// The error for an unsuccessful reply: refused (naming the credentials' source),
    /// not found (naming `what`), or the status with a scrubbed body excerpt.
    fn refusal(&self, target: &Target, method: Method, reply: &Reply, what: impl FnOnce() -> String) -> RegistryError {
        match reply.status {
            401 | 403 => match self.auth.source(&target.registry) {
                Ok(credential_source) => {
                    RegistryError::Denied { registry: target.registry.clone(), status: reply.status, credential_source }
                }
                Err(error) => error,
            },
            404 => RegistryError::NotFound { what: what() },
            status => RegistryError::Status {
                method: method.as_str().into(),
                url: display_url(&reply.url),
                status,
                body: excerpt(&reply.body),
            },
        }
    }

    fn has_blob_in(&self, target: &Target, repository: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let url = target.url(&blob_path(repository, digest))?;
        let reply = self.call(target, Request::new(Method::Head, url), &mut Budget::start())?;
        match reply.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.refusal(target, Method::Head, &reply, || format!("repository {}", repository.name()))),
        }
    }

    /// HEAD, then upload as a whole (POST + PUT) as often as the policy and the body
    /// allow.
    fn push(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        body: &mut dyn Source,
        check_first: bool,
    ) -> Result<(), RegistryError> {
        if check_first && self.has_blob(repository, digest)? {
            return Ok(());
        }
        let target = self.target(repository, vec![push_scope(&repository.repository)])?;
        let mut budget = Budget::start();
        loop {
            let consumed = match self.upload_once(&target, repository, digest, size, body.reader(), &mut budget) {
                Ok(()) => return Ok(()),
                Err((error, consumed)) if worth_another_upload(&error) => (error, consumed),
                Err((error, _)) => return Err(error),
            };
            let (error, consumed) = consumed;
            budget.record_failure();
            let wait = budget.next_wait(self.transport.retry_policy(), None);
            match wait {
                Some(wait) if body.rewind(consumed) => std::thread::sleep(wait),
                _ => return Err(error),
            }
        }
    }

    /// One upload session: POST for a session, PUT the body to its Location with the
    /// digest. On failure, also says how much of the body was read.
    fn upload_once(
        &self,
        target: &Target,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        budget: &mut Budget,
    ) -> Result<(), (RegistryError, u64)> {
        let location = self.open_upload(target, repository, budget).map_err(|e| (e, 0))?;
        let url = upload_url(&location, digest).map_err(|e| (e, 0))?;
        let mut meter = Metered::new(reader, size);
        let request = Request::new(Method::Put, url.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Payload::Stream { body: &mut meter, size })
            .limit(SMALL_REPLY_LIMIT);
        let result = self.call(target, request, budget);
        let consumed = meter.consumed();
        let reply = result.map_err(|e| (meter.explain(&url).unwrap_or(e), consumed))?;
        if !reply.success() {
            let error = meter.mismatch(&url, digest).unwrap_or_else(|| {
                self.refusal(target, Method::Put, &reply, || {
                    format!("upload session for {digest} in {}", repository.name())
                })
            });
            return Err((error, consumed));
        }
        if let Some(sent) = reply.header(DOCKER_CONTENT_DIGEST) {
            if sent.trim() != digest.as_ref() {
                let problem = format!("the registry stored the blob as {}, not {digest}", sent.trim());
                return Err((protocol(&reply.url, problem), consumed));
            }
        }
        Ok(())
    }

    /// POST for an upload session; its Location, resolved.
    fn open_upload(&self, target: &Target, repository: &Reference, budget: &mut Budget) -> Result<Uri, RegistryError> {
        let url = target.url(&format!("/v2/{}/blobs/uploads/", repository.repository))?;
        let reply = self.call(target, Request::new(Method::Post, url).limit(SMALL_REPLY_LIMIT), budget)?;
        if reply.status != 202 {
            return Err(self.refusal(target, Method::Post, &reply, || format!("repository {}", repository.name())));
        }
        let location = reply
            .header(header::LOCATION)
            .ok_or_else(|| protocol(&reply.url, "answered 202 without the upload's Location".into()))?;
        resolve_location(&reply.url, location).map_err(|problem| protocol(&reply.url, problem))
    }

    /// DELETE the upload session a declined mount opened. Best effort.
    fn cancel_upload(&self, target: &Target, reply: &Reply) {
        let Some(location) = reply.header(header::LOCATION) else {
            return;
        };
        if let Ok(url) = resolve_location(&reply.url, location) {
            let request = Request::new(Method::Delete, url).limit(SMALL_REPLY_LIMIT);
            let _ = self.call(target, request, &mut Budget::start());
        }
    }
}

/// The registry's digest header.
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// Where to read a manifest: by digest when the reference has one (the registry
/// resolves that), else by tag.
fn read_path(reference: &Reference) -> Result<String, RegistryError> {
    manifest_path(reference, reference.digest.as_deref().or(reference.tag.as_deref()))
}

/// `/v2/<repository>/manifests/<tag_or_digest>`; `None` (neither) is an error.
fn manifest_path(reference: &Reference, tag_or_digest: Option<&str>) -> Result<String, RegistryError> {
    let Some(tag_or_digest) = tag_or_digest else {
        return Err(RegistryError::Protocol {
            url: reference.to_string(),
            problem: "the reference has neither tag nor digest, so it names no manifest".into(),
        });
    };
    Ok(format!("/v2/{}/manifests/{tag_or_digest}", reference.repository))
}

fn blob_path(repository: &Reference, digest: &Digest) -> String {
    format!("/v2/{}/blobs/{digest}", repository.repository)
}

/// The upload Location with `digest=` added to whatever query it already has.
fn upload_url(location: &Uri, digest: &Digest) -> Result<Uri, RegistryError> {
    let text = location.to_string();
    let separator = if location.query().is_some() { '&' } else { '?' };
    format!("{text}{separator}digest={}", query_escape(digest.as_ref()))
        .parse()
        .map_err(|e| protocol(location, format!("cannot add the digest to the upload URL: {e}")))
}

/// Whether a whole new upload session may help after `error`.
fn worth_another_upload(error: &RegistryError) -> bool {
    match error {
        RegistryError::Unreachable { .. } => true,
        RegistryError::Status { status, .. } => RETRY_STATUSES.contains(status),
        _ => false,
    }
}

/// The media type a reply declares (parameters dropped).
fn content_type(reply: &Reply) -> Option<MediaType> {
    let value = reply.header(header::CONTENT_TYPE)?;
    let media_type = value.split(';').next().unwrap_or_default().trim();
    (!media_type.is_empty()).then(|| MediaType::from(media_type))
}

fn parse_digest(reply: &Reply, text: &str) -> Result<Digest, RegistryError> {
    Digest::from_str(text.trim())
        .map_err(|e| protocol(&reply.url, format!("Docker-Content-Digest is not a digest: {e}")))
}

/// Check a manifest reply: its bytes against the requested digest and against the
/// registry's `Docker-Content-Digest`; its media type from `Content-Type`, else from the
/// manifest's own `mediaType` field.
fn verify_manifest(reference: &Reference, reply: &Reply) -> Result<Fetched, RegistryError> {
    let digest = match reference.digest.as_deref() {
        Some(wanted) => check_bytes(&reply.url, &reply.body, wanted, "the manifest")?,
        None => sha256_digest(&reply.body),
    };
    check_registry_digest(reply, &reply.body)?;
    let media_type = content_type(reply)
        .filter(|media_type| {
            !matches!(media_type.as_ref(), "application/json" | "text/plain" | "application/octet-stream")
        })
        .or_else(|| embedded_media_type(&reply.body))
        .ok_or_else(|| protocol(&reply.url, "the manifest has no Content-Type and no mediaType field".into()))?;
    Ok(Fetched { media_type, digest, bytes: reply.body.clone() })
}

/// The `mediaType` field of a manifest, if it has one.
fn embedded_media_type(bytes: &[u8]) -> Option<MediaType> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.media_type.filter(|m| !m.is_empty()).map(|m| MediaType::from(m.as_str()))
}

/// `Docker-Content-Digest`, when sent, must be the digest of `bytes`.
fn check_registry_digest(reply: &Reply, bytes: &[u8]) -> Result<(), RegistryError> {
    let Some(text) = reply.header(DOCKER_CONTENT_DIGEST) else {
        return Ok(());
    };
    let declared = parse_digest(reply, text)?;
    check_bytes(&reply.url, bytes, declared.as_ref(), "the registry's Docker-Content-Digest for the content")
        .map_err(|_| {
            protocol(
                &reply.url,
                format!(
                    "the registry says the content is {declared}, but its bytes hash to {}",
                    digest_of(declared.algorithm(), bytes).map_or_else(|| "something else".into(), |d| d.to_string())
                ),
            )
        })
        .map(|_| ())
}

/// `bytes` must have digest `wanted` (`algorithm:hex`); returns it parsed.
fn check_bytes(url: &Uri, bytes: &[u8], wanted: &str, what: &str) -> Result<Digest, RegistryError> {
    let wanted = Digest::from_str(wanted).map_err(|e| protocol(url, format!("`{wanted}` is not a digest: {e}")))?;
    let actual = digest_of(wanted.algorithm(), bytes)
        .ok_or_else(|| protocol(url, format!("cannot verify {what}: unsupported digest algorithm in {wanted}")))?;
    if actual != wanted {
        return Err(protocol(url, format!("{what} should have digest {wanted}, but its bytes hash to {actual}")));
    }
    Ok(wanted)
}

fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_from_hex("sha256", &Sha256::digest(bytes))
}

/// The digest of `bytes` under `algorithm`, for the SHA-2 algorithms OCI names.
fn digest_of(algorithm: &DigestAlgorithm, bytes: &[u8]) -> Option<Digest> {
    match algorithm {
        DigestAlgorithm::Sha256 => Some(sha256_digest(bytes)),
        DigestAlgorithm::Sha384 => Some(digest_from_hex("sha384", &Sha384::digest(bytes))),
        DigestAlgorithm::Sha512 => Some(digest_from_hex("sha512", &Sha512::digest(bytes))),
        _ => None,
    }
}

fn digest_from_hex(algorithm: &str, hash: &[u8]) -> Digest {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    // Lowercase hex of the right length for its algorithm always parses.
    Digest::from_str(&format!("{algorithm}:{hex}")).unwrap_or_else(|_| unreachable!("well-formed digest"))
}

/// Where an upload body comes from, and whether it can be sent again.
trait Source {
    fn reader(&mut self) -> &mut dyn Read;
    /// Make the body readable from its start again, after `consumed` bytes were read.
    fn rewind(&mut self, consumed: u64) -> bool;
}

struct OneShot<'a> {
    reader: &'a mut dyn Read,
}

impl Source for OneShot<'_> {
    fn reader(&mut self) -> &mut dyn Read {
        self.reader
    }

    fn rewind(&mut self, consumed: u64) -> bool {
        consumed == 0
    }
}

struct Seekable<'a, R: Read + Seek> {
    reader: &'a mut R,
    /// Where the body started; `None` when the position could not be read.
    start: Option<u64>,
}

impl<R: Read + Seek> Source for Seekable<'_, R> {
    fn reader(&mut self) -> &mut dyn Read {
        self.reader
    }

    fn rewind(&mut self, consumed: u64) -> bool {
        match self.start {
            _ if consumed == 0 => true,
            Some(start) => self.reader.seek(SeekFrom::Start(start)).is_ok(),
            None => false,
        }
    }
}

/// An upload body being sent: counts and hashes what was read, so that a failure can
/// be explained (short reader, wrong digest) and retried only when safe. It yields at
/// most `size` bytes, and a reader that ends early is an error: ureq, given fewer
/// bytes than the Content-Length it sent, would otherwise wait for more forever.
struct Metered<'a> {
    inner: &'a mut dyn Read,
    size: u64,
    read: u64,
    ended: bool,
    hasher: Sha256,
}

impl<'a> Metered<'a> {
    fn new(inner: &'a mut dyn Read, size: u64) -> Metered<'a> {
        Metered { inner, size, read: 0, ended: false, hasher: Sha256::new() }
    }

    /// A failure caused by the body itself rather than the network.
    fn explain(&self, url: &Uri) -> Option<RegistryError> {
        (self.ended && self.read < self.size)
            .then(|| protocol(url, format!("the blob's reader ended after {} of {} bytes", self.read, self.size)))
    }

    /// After a refused upload: whether the body sent was not the blob named.
    fn mismatch(&self, url: &Uri, digest: &Digest) -> Option<RegistryError> {
        if let Some(error) = self.explain(url) {
            return Some(error);
        }
        if self.read != self.size || *digest.algorithm() != DigestAlgorithm::Sha256 {
            return None;
        }
        let actual = digest_from_hex("sha256", &self.hasher.clone().finalize());
        (actual != *digest).then(|| protocol(url, format!("the blob's bytes hash to {actual}, not {digest}")))
    }
}

impl Read for Metered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.size - self.read;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.ended = true;
            // Not a network error kind, so the transport does not retry it.
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the blob's reader ended early"));
        }
        self.read += n as u64;
        self.hasher.update(&buf[..n]);
        crate::faults::crash_after_bytes("upload:blob", self.read);
        Ok(n)
    }
}

impl Upload for Metered<'_> {
    fn consumed(&self) -> u64 {
        self.read
    }
}
