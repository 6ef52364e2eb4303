//! Feeds: where `castoff publish` puts packages, one way per protocol behind one type.
//!
//! - [`v3`]: the service index names the push endpoint (`PackagePublish/2.0.0`), the
//!   snupkg endpoint (`SymbolPackagePublish/4.9.0`) and the flat container
//!   (`PackageBaseAddress/3.0.0`) that lets castoff read a package back.
//! - [`v2`]: pushes to `<url>/api/v2/package/`, reads back from the same path or the
//!   OData entry.
//! - [`folder`]: `nuget add`'s hierarchical layout, written atomically.
//!
//! Pushing is idempotent: a package the feed already has (409, or an identical file in
//! a folder) is read back and compared; the same SHA-512 is "already published", a
//! different one an error naming both. HTTP goes through [`http::FeedHttp`], which keeps
//! the API key in the one header it belongs in.
//!
//! [`Feed::holds`] asks the same read-back without pushing: whether a file a release
//! recorded as published is still there (`publish::check_published`).

pub(crate) mod folder;
pub(crate) mod http;
pub(crate) mod multipart;
pub(crate) mod plan;
pub(crate) mod v2;
pub(crate) mod v3;

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha512};
use ureq::http::Uri;

use crate::config::{FeedConfig, FeedKind, NetworkConfig};
use crate::registry::RetryPolicy;
use http::{is_gone, ApiKey, Download, FeedHttp};
use multipart::Multipart;

/// How long one read or write may take when a feed says nothing about `timeout`: the
/// NuGet client's push timeout, since a feed may validate a large package for minutes
/// before it answers. Connecting is bounded by `[network] timeout_seconds`.
pub(crate) const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a feed did not take a file.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed `{feed}` ({url}) is unreachable after {attempts} attempt(s) over {elapsed:.1?}: {last_error}")]
    Unreachable { feed: String, url: String, attempts: u32, elapsed: Duration, last_error: String },
    /// 401/403 with a key: the message names the variable, never the key.
    #[error("feed `{feed}` refused the API key from ${env} ({status} from {url})")]
    KeyRefused { feed: String, url: String, status: u16, env: String },
    #[error("feed `{feed}` requires an API key ({status} from {url}), and its [[feed]] has no `api_key_env`")]
    KeyMissing { feed: String, url: String, status: u16 },
    #[error("feed `{feed}`: refusing plain HTTP to {host}")]
    Insecure { feed: String, host: String },
    /// `package` is "<id> <version>".
    #[error(
        "feed `{feed}` already has {package} with different content: SHA-512 {remote} on the feed, \
         {local} in {file}"
    )]
    Conflict { feed: String, package: String, file: String, local: String, remote: String },
    #[error("feed `{feed}` already has {package} ({file}), and skip_duplicate = false")]
    Duplicate { feed: String, package: String, file: String },
    #[error("feed `{feed}` rejected {file} as invalid ({status} from {url}): {body}")]
    Rejected { feed: String, file: String, url: String, status: u16, body: String },
    #[error("feed `{feed}`: {method} {url} answered {status}: {body}")]
    Status { feed: String, method: String, url: String, status: u16, body: String },
    #[error("feed `{feed}` ({url}): {problem}")]
    Protocol { feed: String, url: String, problem: String, hint: String },
    #[error("feed `{feed}`: cannot {action} {}: {source}", path.display())]
    Io {
        feed: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FeedError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            FeedError::Unreachable { .. } => {
                "check the feed's URL and the network; castoff retried with backoff ([network] attempts)".into()
            }
            FeedError::KeyRefused { env, .. } => {
                format!("check that ${env} holds a current API key with push rights for this feed")
            }
            FeedError::KeyMissing { .. } => {
                "add `api_key_env = \"NAME\"` to the [[feed]] and put the key in that variable".into()
            }
            FeedError::Insecure { .. } => {
                "use https://, or add `insecure = true` to the [[feed]] for a feed you trust".into()
            }
            FeedError::Conflict { .. } => {
                "a published version never changes: bump the version (`castoff bump patch`) and publish again".into()
            }
            FeedError::Duplicate { .. } => {
                "remove `skip_duplicate = false` to treat an identical existing package as published".into()
            }
            FeedError::Rejected { .. } => "see the feed's message; `castoff pack` validates what it writes".into(),
            FeedError::Status { .. } => "the feed answered something castoff cannot use; see the message".into(),
            FeedError::Protocol { hint, .. } => hint.clone(),
            FeedError::Io { .. } => "check the path and its permissions".into(),
        }
    }

    /// Bad input the user must fix before anything can work (exit 2). (A missing or
    /// refused key shows only when a push is answered, after others may have landed.)
    pub fn is_user_error(&self) -> bool {
        matches!(self, FeedError::Insecure { .. })
    }
}

/// A file to put on a feed.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub id: String,
    pub version: String,
    pub path: PathBuf,
    /// The file name the feed sees (the multipart filename; a folder feed's layout
    /// names files itself).
    pub filename: String,
    /// SHA-512 of the file, base64, when already known (the nupkg's, from pack).
    pub sha512: Option<String>,
}

impl Upload {
    /// The file's SHA-512 (base64): the one known, or computed now.
    fn digest(&self, feed: &str) -> Result<String, FeedError> {
        match &self.sha512 {
            Some(known) => Ok(known.clone()),
            None => sha512_file(&self.path).map_err(|source| FeedError::Io {
                feed: feed.to_string(),
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// Where on a feed a file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The package endpoint (v3 PackagePublish, v2 `api/v2/package`, a folder's layout).
    Package,
    /// v3 SymbolPackagePublish.
    SymbolEndpoint,
    /// A folder feed: next to the package, under the symbols package's own name.
    Beside,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Landed {
    Pushed,
    /// An earlier attempt whose answer was lost had pushed it (a retry got 409, and
    /// the feed holds the same bytes or cannot show them).
    PushedEarlier,
    AlreadyThere(Compared),
    /// Not pushed: a read-back before the push found the same bytes on the feed
    /// (`PublishOptions::check_first`). Unlike a 409, its symbols still follow: the
    /// earlier run may have died between the two.
    Found,
}

/// Whether a file the feed already had was compared with ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Compared {
    Same,
    /// Not compared, and why (no download endpoint, a symbols endpoint).
    NotReadable(String),
}

/// What a feed holds of a file, asked without writing anything ([`Feed::holds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holds {
    /// The feed's copy has the file's SHA-512.
    Same,
    /// The feed has this id and version with other content (SHA-512s, base64).
    Different { local: String, remote: String },
    /// The feed does not have it, and how that showed.
    Missing(String),
    /// The feed cannot show its copy (a symbol endpoint, no download, a read that needs
    /// credentials), and why.
    Unreadable(String),
}

/// The feed's copy of a package, as a read-back found it.
enum Remote {
    /// SHA-512, base64.
    Digest(String),
    /// The feed answered that it has no such package (404, 410).
    Absent(String),
    /// The feed does not show it.
    Unreadable(String),
}

/// Told `(sent, total)` bytes as an upload's file is read for sending.
#[derive(Clone)]
pub(crate) struct Meter(Arc<dyn Fn(u64, u64) + Send + Sync>);

impl Meter {
    pub fn new(report: impl Fn(u64, u64) + Send + Sync + 'static) -> Meter {
        Meter(Arc::new(report))
    }

    pub fn report(&self, sent: u64, total: u64) {
        (self.0)(sent, total)
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Meter")
    }
}

/// Progress is reported at most once per this many bytes (and once at the end).
pub(crate) const PROGRESS_STEP: u64 = 64 * 1024;

/// A feed ready to take files. v3 feeds have read their service index.
pub(crate) struct Feed {
    pub name: String,
    pub skip_duplicate: bool,
    access: Access,
}

enum Access {
    V3 { http: FeedHttp, endpoints: v3::Endpoints },
    V2 { http: FeedHttp, urls: v2::Urls },
    Folder { root: PathBuf },
}

impl fmt::Debug for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Feed {
    /// Get ready to push to `config`: a v3 feed's service index is read here (so a
    /// missing push endpoint or an unreachable feed shows before anything is pushed).
    pub fn connect(
        config: &FeedConfig,
        root: &Path,
        network: NetworkConfig,
        key: Option<ApiKey>,
    ) -> Result<Feed, FeedError> {
        let http = || {
            let retry = RetryPolicy { attempts: network.attempts, total: network.total, ..RetryPolicy::default() };
            let io = config.timeout.unwrap_or(DEFAULT_IO_TIMEOUT.max(network.timeout));
            FeedHttp::new(&config.name, config.insecure, network.timeout, io, retry, key.clone())
        };
        let access = match &config.kind {
            FeedKind::Folder { path } => Access::Folder { root: root.join(path) },
            FeedKind::V2 { url } => {
                let urls = v2::Urls::parse(url).map_err(|problem| protocol(config, url, problem))?;
                Access::V2 { http: http(), urls }
            }
            FeedKind::V3 { index } => {
                let http = http();
                let index_url: Uri = index.parse().map_err(|e| protocol(config, index, format!("bad URL: {e}")))?;
                let endpoints = v3::Endpoints::fetch(&http, &index_url)?;
                Access::V3 { http, endpoints }
            }
        };
        Ok(Feed { name: config.name.clone(), skip_duplicate: config.skip_duplicate, access })
    }

    /// Whether the feed has a snupkg endpoint (v3 SymbolPackagePublish), and for a
    /// folder, always: it keeps symbols packages beside the packages.
    pub fn takes_snupkg(&self) -> bool {
        match &self.access {
            Access::V3 { endpoints, .. } => endpoints.symbols.is_some(),
            Access::V2 { .. } => false,
            Access::Folder { .. } => true,
        }
    }

    pub fn is_folder(&self) -> bool {
        matches!(self.access, Access::Folder { .. })
    }

    /// Put `upload` on the feed by `route`; `meter` is told how much of it has been sent.
    pub fn push(&self, upload: &Upload, route: Route, meter: Option<&Meter>) -> Result<Landed, FeedError> {
        match (&self.access, route) {
            (Access::Folder { root }, Route::Package) => folder::add(self, root, upload, folder::Slot::Package, meter),
            (Access::Folder { root }, _) => folder::add(self, root, upload, folder::Slot::Beside, meter),
            (Access::V3 { http, endpoints }, Route::SymbolEndpoint) => {
                let Some(url) = &endpoints.symbols else {
                    return Err(FeedError::Protocol {
                        feed: self.name.clone(),
                        url: endpoints.index.clone(),
                        problem: "the service index has no SymbolPackagePublish/4.9.0 resource".into(),
                        hint: "push the symbols elsewhere with `symbols_feed`, or set symbols = \"auto\"".into(),
                    });
                };
                self.push_http(http, url, upload, None, meter)
            }
            (Access::V3 { http, endpoints }, _) => {
                let read_back = endpoints.flat.as_ref().map(|flat| ReadBack::Flat(flat.clone()));
                self.push_http(http, &endpoints.publish, upload, read_back, meter)
            }
            (Access::V2 { http, urls }, _) => {
                self.push_http(http, &urls.push, upload, Some(ReadBack::V2(urls.clone())), meter)
            }
        }
    }

    /// Whether the feed still holds `upload` as pushed by `route`, read back the way a
    /// 409 is (folder: the file's SHA-512; v3: the flat container; v2: the download or
    /// the OData entry). Writes nothing and sends no API key. A symbols package pushed
    /// to a v3 symbol endpoint cannot be read back: [`Holds::Unreadable`].
    pub fn holds(&self, upload: &Upload, route: Route) -> Result<Holds, FeedError> {
        let remote = match (&self.access, route) {
            (Access::Folder { root }, Route::Package) => {
                return folder::holds(self, root, upload, folder::Slot::Package)
            }
            (Access::Folder { root }, _) => return folder::holds(self, root, upload, folder::Slot::Beside),
            (Access::V3 { .. }, Route::SymbolEndpoint) => {
                return Ok(Holds::Unreadable(SYMBOLS_UNREADABLE.into()));
            }
            (Access::V3 { http, endpoints }, _) => match &endpoints.flat {
                Some(flat) => self.read_back(http, upload, &ReadBack::Flat(flat.clone()))?,
                None => return Ok(Holds::Unreadable(NO_FLAT_CONTAINER.into())),
            },
            (Access::V2 { http, urls }, _) => self.read_back(http, upload, &ReadBack::V2(urls.clone()))?,
        };
        match remote {
            Remote::Digest(remote) => {
                let local = upload.digest(&self.name)?;
                Ok(match remote == local {
                    true => Holds::Same,
                    false => Holds::Different { local, remote },
                })
            }
            Remote::Absent(why) => Ok(Holds::Missing(why)),
            Remote::Unreadable(why) => Ok(Holds::Unreadable(why)),
        }
    }

    /// A multipart PUT, then on 409 a read-back and comparison where the feed allows it.
    fn push_http(
        &self,
        http: &FeedHttp,
        url: &Uri,
        upload: &Upload,
        read_back: Option<ReadBack>,
        meter: Option<&Meter>,
    ) -> Result<Landed, FeedError> {
        let body = Multipart::new(&upload.path, &upload.filename)
            .map_err(|source| FeedError::Io {
                feed: self.name.clone(),
                action: "read",
                path: upload.path.clone(),
                source,
            })?
            .metered(meter.cloned());
        let answer = http.push(url, &body)?;
        if !answer.conflict {
            return Ok(Landed::Pushed);
        }
        if !self.skip_duplicate {
            return Err(self.duplicate(upload));
        }
        let compared = match read_back {
            None => Compared::NotReadable(SYMBOLS_UNREADABLE.into()),
            Some(read_back) => self.compare(http, upload, &read_back)?,
        };
        // After a lost answer, a 409 most likely means our own earlier attempt landed;
        // unless the feed proved otherwise (a different digest is an error above), the
        // symbols must still follow, or they would be skipped on every later run too.
        match (compared, answer.retried) {
            (_, true) => Ok(Landed::PushedEarlier),
            (compared, false) => Ok(Landed::AlreadyThere(compared)),
        }
    }

    /// Read the feed's copy of `upload` and compare digests.
    fn compare(&self, http: &FeedHttp, upload: &Upload, read_back: &ReadBack) -> Result<Compared, FeedError> {
        match self.read_back(http, upload, read_back)? {
            Remote::Digest(remote) => {
                let local = upload.digest(&self.name)?;
                match remote == local {
                    true => Ok(Compared::Same),
                    false => Err(self.conflict(upload, local, remote)),
                }
            }
            Remote::Absent(why) | Remote::Unreadable(why) => Ok(Compared::NotReadable(why)),
        }
    }

    /// The SHA-512 of the feed's copy of `upload`, or why there is none to hash.
    fn read_back(&self, http: &FeedHttp, upload: &Upload, read_back: &ReadBack) -> Result<Remote, FeedError> {
        match read_back {
            ReadBack::Flat(flat) => {
                let url = v3::flat_url(flat, &upload.id, &upload.version)
                    .map_err(|problem| self.protocol_at(flat, problem))?;
                Ok(match http.download_digest(&url)? {
                    Download::Digest(digest) => Remote::Digest(digest),
                    Download::Missing(status) => {
                        let why =
                            format!("the flat container answered {status} for it (the feed may still be indexing it)");
                        match is_gone(status) {
                            true => Remote::Absent(why),
                            false => Remote::Unreadable(why),
                        }
                    }
                })
            }
            ReadBack::V2(urls) => Ok(match v2::read_back(http, urls, &upload.id, &upload.version)? {
                v2::Found::Digest(digest) => Remote::Digest(digest),
                v2::Found::Absent(why) => Remote::Absent(why),
                v2::Found::Nothing(why) => Remote::Unreadable(why),
            }),
        }
    }

    fn duplicate(&self, upload: &Upload) -> FeedError {
        FeedError::Duplicate {
            feed: self.name.clone(),
            package: format!("{} {}", upload.id, upload.version),
            file: upload.filename.clone(),
        }
    }

    fn conflict(&self, upload: &Upload, local: String, remote: String) -> FeedError {
        FeedError::Conflict {
            feed: self.name.clone(),
            package: format!("{} {}", upload.id, upload.version),
            file: upload.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            local,
            remote,
        }
    }

    fn protocol_at(&self, url: &Uri, problem: String) -> FeedError {
        FeedError::Protocol {
            feed: self.name.clone(),
            url: crate::registry::transport::display_url(url),
            problem,
            hint: "the feed's service index points somewhere castoff cannot use".into(),
        }
    }

    fn io(&self, action: &'static str, path: &Path, source: io::Error) -> FeedError {
        FeedError::Io { feed: self.name.clone(), action, path: path.to_path_buf(), source }
    }
}

const SYMBOLS_UNREADABLE: &str = "symbol packages cannot be read back from a feed";
const NO_FLAT_CONTAINER: &str = "the service index has no PackageBaseAddress/3.0.0 (flat container) to read it from";

/// Where a feed lets castoff read a package back.
#[derive(Debug, Clone)]
enum ReadBack {
    Flat(Uri),
    V2(v2::Urls),
}

fn protocol(config: &FeedConfig, url: &str, problem: String) -> FeedError {
    FeedError::Protocol {
        feed: config.name.clone(),
        url: url.to_string(),
        problem,
        hint: "check the [[feed]] url in castoff.toml".into(),
    }
}

/// SHA-512 of a file, base64: NuGet's package hash form (the `.nupkg.sha512` file, the
/// v2 `PackageHash`). Streams; memory does not grow with the file.
pub(crate) fn sha512_file(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    sha512_reader(file)
}

/// SHA-512 of everything `reader` yields, base64.
pub(crate) fn sha512_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha512::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
    }
    Ok(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()))
}

/// NuGet's lowercase id or version for paths (`.ToLowerInvariant()`), without build
/// metadata, which NuGet leaves out of normalized versions.
pub(crate) fn lower(text: &str) -> String {
    text.split('+').next().unwrap_or(text).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_nugets_base64_sha512() {
        // `printf abc | sha512sum | xxd -r -p | base64`
        let expected = "3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==";
        assert_eq!(sha512_reader(&b"abc"[..]).unwrap(), expected);
        assert_eq!(lower("Acme.Lib"), "acme.lib");
        assert_eq!(lower("1.0.0-Beta+build.5"), "1.0.0-beta");
    }
}
