//! HTTP for NuGet feeds, over the registry client's pieces (`registry::transport` and
//! `registry::retry`): the same ureq agent, plain-HTTP policy, redirect resolution,
//! backoff with `Retry-After`, and scrubbing of what a server says.
//!
//! What differs from the registry transport, and why this is its own small loop:
//!
//! - The credential is the `X-NuGet-ApiKey` header, sent on pushes only, and only to
//!   the origin the push was addressed to. A push is redirected only by 307/308 within
//!   that origin; a redirect elsewhere is an error, never a second copy of the key.
//! - A push is a streamed multipart upload whose retry reopens the file
//!   ([`Multipart::open`]); the registry transport retries a stream only while none of
//!   it was sent.
//! - 500 is retried too (the issue asks for all of 5xx; 501 and 505 are answers).
//! - Errors speak of feeds and name the key's variable, never the key: every text that
//!   came from a server is scrubbed, and the key's own text replaced.

use std::time::{Duration, SystemTime};

use ureq::http::{self, header, HeaderValue, Uri};
use ureq::{Agent, SendBody};

use super::multipart::Multipart;
use super::{sha512_reader, FeedError};
use crate::registry::retry::{parse_retry_after, Budget, RETRY_STATUSES};
use crate::registry::transport::{
    agent, display_url, excerpt, is_downgrade, is_redirect, is_retryable, plain_http_allowed, resolve_location, scrub,
    Origin, MAX_REDIRECTS,
};
use crate::registry::RetryPolicy;
use crate::secret::Secret;

/// The largest service index or OData entry read.
const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;

/// How much of an error body is read for the message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The API key and the name of the variable it came from (which errors name).
#[derive(Debug, Clone)]
pub(crate) struct ApiKey {
    pub env: String,
    pub value: Secret,
}

/// One feed's HTTP side. Shared by reference across the publishing threads.
pub(crate) struct FeedHttp {
    agent: Agent,
    retry: RetryPolicy,
    insecure: bool,
    feed: String,
    key: Option<ApiKey>,
}

/// What a push got back, when the feed took it or already had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PushAnswer {
    /// 409: the feed has this id and version.
    pub conflict: bool,
    /// An earlier attempt failed in a way that may have left the package on the feed.
    pub retried: bool,
}

/// A small document as read.
#[derive(Debug)]
pub(crate) struct Document {
    pub status: u16,
    pub body: Vec<u8>,
    /// The URL that answered, after redirects (relative links resolve against it).
    pub url: Uri,
}

/// A read-back download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Download {
    /// SHA-512 of the body, base64.
    Digest(String),
    /// 404 and the like: nothing to read there.
    Missing(u16),
}

/// Whether a read-back's status says the feed has no such file (rather than that it
/// will not show it).
pub(crate) fn is_gone(status: u16) -> bool {
    matches!(status, 404 | 410)
}

/// One failed attempt.
enum Attempt {
    Network(ureq::Error),
    /// The request could not even be built or its file opened: no retry.
    Fatal(FeedError),
}

impl FeedHttp {
    /// `connect` bounds connecting, `io` each read and write after that (a feed may take
    /// minutes to answer a large push while it validates the package).
    pub fn new(
        feed: &str,
        insecure: bool,
        connect: Duration,
        io: Duration,
        retry: RetryPolicy,
        key: Option<ApiKey>,
    ) -> FeedHttp {
        FeedHttp { agent: agent(connect, io), retry, insecure, feed: feed.to_string(), key }
    }

    /// The feed's name, for messages.
    pub fn feed_name(&self) -> &str {
        &self.feed
    }

    /// GET a service index or an OData entry (no key), following redirects.
    pub fn get(&self, url: &Uri, accept: &str) -> Result<Document, FeedError> {
        let (url, response) = self.send("GET", url, None, accept)?;
        let status = response.status().as_u16();
        let limit = (200..300).contains(&status).then_some(DOCUMENT_LIMIT);
        let body = read_limited(response, limit).map_err(|problem| self.protocol(&url, problem))?;
        Ok(Document { status, body, url })
    }

    /// GET a package (no key) and hash it as it arrives; memory stays flat.
    pub fn download_digest(&self, url: &Uri) -> Result<Download, FeedError> {
        let mut budget = Budget::start();
        loop {
            let (at, response) = self.send("GET", url, None, "application/octet-stream, */*")?;
            let status = response.status().as_u16();
            // Read-backs carry no key: a feed that wants one to read (401/403) simply
            // cannot show its copy, which is not an error.
            if matches!(status, 401 | 403 | 404 | 405 | 410 | 501) {
                return Ok(Download::Missing(status));
            }
            if !(200..300).contains(&status) {
                return Err(self.status_error("GET", &at, status, response));
            }
            let reader = response.into_body().into_with_config().limit(u64::MAX).reader();
            match sha512_reader(reader) {
                Ok(digest) => return Ok(Download::Digest(digest)),
                Err(e) => {
                    budget.record_failure();
                    match budget.next_wait(&self.retry, None) {
                        Some(wait) => std::thread::sleep(wait),
                        None => {
                            return Err(FeedError::Unreachable {
                                feed: self.feed.clone(),
                                url: display_url(&at),
                                attempts: budget.failures(),
                                elapsed: budget.elapsed(),
                                last_error: self.clean(&format!("reading the package failed: {e}")),
                            })
                        }
                    }
                }
            }
        }
    }

    /// PUT `body` to `url` with the API key. 2xx and 409 are answers; everything else
    /// (after retries) is an error that says what to do.
    pub fn push(&self, url: &Uri, body: &Multipart) -> Result<PushAnswer, FeedError> {
        let mut retried = false;
        let (at, response) = self.send_counting("PUT", url, Some(body), "*/*", &mut retried)?;
        let status = response.status().as_u16();
        let file = body.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match status {
            200..=299 => Ok(PushAnswer { conflict: false, retried }),
            409 => Ok(PushAnswer { conflict: true, retried }),
            401 | 403 => Err(match &self.key {
                Some(key) => FeedError::KeyRefused {
                    feed: self.feed.clone(),
                    url: display_url(&at),
                    status,
                    env: key.env.clone(),
                },
                None => FeedError::KeyMissing { feed: self.feed.clone(), url: display_url(&at), status },
            }),
            400 | 413 | 415 | 422 => Err(FeedError::Rejected {
                feed: self.feed.clone(),
                file,
                url: display_url(&at),
                status,
                body: self.body_excerpt(response),
            }),
            _ => Err(self.status_error("PUT", &at, status, response)),
        }
    }

    fn send(
        &self,
        method: &str,
        start: &Uri,
        body: Option<&Multipart>,
        accept: &str,
    ) -> Result<(Uri, http::Response<ureq::Body>), FeedError> {
        self.send_counting(method, start, body, accept, &mut false)
    }

    /// Send until an answer worth returning: redirects followed as allowed, retries on
    /// 429/5xx and network trouble within the policy. `retried` is set when an attempt
    /// failed after its request may have reached the feed.
    fn send_counting(
        &self,
        method: &str,
        start: &Uri,
        body: Option<&Multipart>,
        accept: &str,
        retried: &mut bool,
    ) -> Result<(Uri, http::Response<ureq::Body>), FeedError> {
        let key_origin = body.and_then(|_| Origin::of(start));
        let mut url = start.clone();
        let mut budget = Budget::start();
        let mut hops = 0;
        loop {
            self.check_allowed(&url)?;
            let keyed = key_origin.is_some() && Origin::of(&url) == key_origin;
            let response = match self.once(method, &url, body, accept, keyed) {
                Ok(response) => response,
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Network(error)) => {
                    budget.record_failure();
                    *retried = true;
                    let wait = is_retryable(&error).then(|| budget.next_wait(&self.retry, None)).flatten();
                    match wait {
                        Some(wait) => {
                            std::thread::sleep(wait);
                            continue;
                        }
                        None => return Err(self.unreachable(&url, &budget, &error.to_string())),
                    }
                }
            };
            let status = response.status().as_u16();
            if is_redirect(status) {
                if hops == MAX_REDIRECTS {
                    return Err(self.protocol(&url, format!("more than {MAX_REDIRECTS} redirects")));
                }
                url = self.redirect(&url, &response, body.is_some(), key_origin.as_ref())?;
                hops += 1;
                continue;
            }
            if RETRY_STATUSES.contains(&status) {
                budget.record_failure();
                *retried |= status != 429;
                let asked = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let Some(wait) = budget.next_wait(&self.retry, asked) {
                    drop(response);
                    std::thread::sleep(wait);
                    continue;
                }
            }
            return Ok((url, response));
        }
    }

    /// One request. The key goes in `X-NuGet-ApiKey` when `keyed`, marked sensitive.
    fn once(
        &self,
        method: &str,
        url: &Uri,
        body: Option<&Multipart>,
        accept: &str,
        keyed: bool,
    ) -> Result<http::Response<ureq::Body>, Attempt> {
        let mut builder = http::Request::builder().method(method).uri(url.clone()).header(header::ACCEPT, accept);
        if keyed {
            if let Some(key) = &self.key {
                // The value was checked to be a valid header when it was read.
                let mut value = HeaderValue::from_str(key.value.expose()).map_err(|_| {
                    Attempt::Fatal(
                        self.protocol(url, format!("the API key in ${} is not a valid header value", key.env)),
                    )
                })?;
                value.set_sensitive(true);
                builder = builder.header("X-NuGet-ApiKey", value);
            }
        }
        let built = |e: http::Error| Attempt::Fatal(self.protocol(url, format!("cannot build the request: {e}")));
        let result = match body {
            None => self.agent.run(builder.body(()).map_err(built)?),
            Some(multipart) => {
                let reader = multipart.open().map_err(|source| {
                    Attempt::Fatal(FeedError::Io {
                        feed: self.feed.clone(),
                        action: "read",
                        path: multipart.path().to_path_buf(),
                        source,
                    })
                })?;
                let request = builder
                    .header(header::CONTENT_TYPE, multipart.content_type())
                    .header(header::CONTENT_LENGTH, multipart.content_length())
                    // A refusal (bad key, duplicate) can come before the upload does.
                    .header(header::EXPECT, "100-continue")
                    .header("X-NuGet-Protocol-Version", "4.1.0")
                    .body(SendBody::from_owned_reader(reader))
                    .map_err(built)?;
                self.agent.run(request)
            }
        };
        result.map_err(|error| match error {
            ureq::Error::Http(e) => Attempt::Fatal(self.protocol(url, format!("cannot build the request: {e}"))),
            other => Attempt::Network(other),
        })
    }

    /// Where a redirect goes, if castoff may follow it: never from HTTPS down to HTTP,
    /// and for a push (which carries the key) only 307/308 within the key's origin.
    fn redirect(
        &self,
        from: &Uri,
        response: &http::Response<ureq::Body>,
        push: bool,
        key_origin: Option<&Origin>,
    ) -> Result<Uri, FeedError> {
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol(from, format!("answered {status} without a Location header")))?;
        let to = resolve_location(from, location).map_err(|problem| self.protocol(from, problem))?;
        if is_downgrade(from, &to) {
            return Err(self.protocol(
                from,
                format!("redirected from HTTPS to plain HTTP ({}); castoff does not follow that", display_url(&to)),
            ));
        }
        if push && (!matches!(status, 307 | 308) || Origin::of(&to).as_ref() != key_origin) {
            return Err(FeedError::Protocol {
                feed: self.feed.clone(),
                url: display_url(from),
                problem: format!(
                    "the push was redirected ({status}) to {}; castoff sends the API key only where it was \
                     addressed",
                    display_url(&to)
                ),
                hint: "if that is the feed's real push URL, configure it as the [[feed]] url".into(),
            });
        }
        Ok(to)
    }

    /// Only http(s), and plain HTTP only to loopback or with `insecure = true`.
    fn check_allowed(&self, url: &Uri) -> Result<(), FeedError> {
        let authority = url.authority().map(|a| a.as_str()).unwrap_or_default();
        match url.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => Ok(()),
            Some("http") if self.insecure || plain_http_allowed(authority, &[]) => Ok(()),
            Some("http") => Err(FeedError::Insecure { feed: self.feed.clone(), host: authority.to_string() }),
            _ => Err(self.protocol(url, "only http and https URLs are supported".into())),
        }
    }

    fn status_error(&self, method: &str, url: &Uri, status: u16, response: http::Response<ureq::Body>) -> FeedError {
        FeedError::Status {
            feed: self.feed.clone(),
            method: method.into(),
            url: display_url(url),
            status,
            body: self.body_excerpt(response),
        }
    }

    fn body_excerpt(&self, response: http::Response<ureq::Body>) -> String {
        let body = read_limited(response, None).unwrap_or_default();
        match body.is_empty() {
            true => "(no body)".into(),
            false => self.clean(&excerpt(&body)),
        }
    }

    fn unreachable(&self, url: &Uri, budget: &Budget, error: &str) -> FeedError {
        FeedError::Unreachable {
            feed: self.feed.clone(),
            url: display_url(url),
            attempts: budget.failures(),
            elapsed: budget.elapsed(),
            last_error: self.clean(error),
        }
    }

    fn protocol(&self, url: &Uri, problem: String) -> FeedError {
        FeedError::Protocol {
            feed: self.feed.clone(),
            url: display_url(url),
            problem: self.clean(&problem),
            hint: "the feed answered something castoff cannot use; check the [[feed]] url".into(),
        }
    }

    /// Text from a server or a library, made safe to show: token-like words scrubbed,
    /// and the key itself replaced wherever it appears (a server may echo it back).
    fn clean(&self, text: &str) -> String {
        let scrubbed = scrub(text);
        match &self.key {
            Some(key) if !key.value.is_empty() => scrubbed.replace(key.value.expose(), "****"),
            _ => scrubbed,
        }
    }
}

/// A response body: a document (`Some(limit)`: longer is an error, castoff would act
/// on half of it) or an error body (`None`: the first [`ERROR_BODY_LIMIT`] bytes).
fn read_limited(response: http::Response<ureq::Body>, limit: Option<u64>) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cap = limit.unwrap_or(ERROR_BODY_LIMIT);
    let mut bytes = Vec::new();
    let reader = response.into_body().into_with_config().limit(u64::MAX).reader();
    reader
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the response failed: {}", scrub(&e.to_string())))?;
    if bytes.len() as u64 > cap {
        if limit.is_some() {
            return Err(format!("the response is larger than the {cap}-byte limit"));
        }
        bytes.truncate(cap as usize);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_messages() {
        let key = ApiKey { env: "NUGET_KEY".into(), value: Secret::new("e2e-key") };
        let http = FeedHttp::new(
            "main",
            false,
            Duration::from_secs(1),
            Duration::from_secs(1),
            RetryPolicy::default(),
            Some(key),
        );
        assert_eq!(http.clean("invalid key e2e-key for user"), "invalid key **** for user");
        let long = "oy2abcdefGHIJKLmnop0123456789qrs";
        assert!(!http.clean(&format!("key {long} rejected")).contains(long));
    }

    #[test]
    fn plain_http_only_where_allowed() {
        let http =
            FeedHttp::new("f", false, Duration::from_secs(1), Duration::from_secs(1), RetryPolicy::default(), None);
        assert!(http.check_allowed(&"http://127.0.0.1:5000/v3/index.json".parse().unwrap()).is_ok());
        assert!(http.check_allowed(&"https://nuget.example.com/v3/index.json".parse().unwrap()).is_ok());
        let refused = http.check_allowed(&"http://nuget.example.com/api/v2/package/".parse().unwrap());
        assert!(matches!(refused, Err(FeedError::Insecure { .. })), "{refused:?}");
        let insecure =
            FeedHttp::new("f", true, Duration::from_secs(1), Duration::from_secs(1), RetryPolicy::default(), None);
        assert!(insecure.check_allowed(&"http://nuget.example.com/api/v2/package/".parse().unwrap()).is_ok());
    }
}
