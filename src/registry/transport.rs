//! HTTP for the registry client: one place that sends requests, so that the rules hold
//! for every request castoff makes (API calls, token fetches, redirect hops, uploads):
//!
//! - plain HTTP only to loopback hosts and to `insecure_registries`; HTTPS (always
//!   verified) everywhere else;
//! - the `Authorization` header only to the origin (scheme, host, port) it was issued
//!   for, so a redirect to blob storage or an upload URL on another host gets none;
//! - redirects followed here (never by ureq), GET and HEAD only, at most
//!   [`MAX_REDIRECTS`], never from HTTPS down to HTTP;
//! - bounded retries with backoff on 429/500/502/503/504 and connection failures, and only
//!   while the request body can still be sent again;
//! - response bodies read with a size cap; every request sent is counted.

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use ureq::http::{self, header, HeaderMap, HeaderValue, Uri};
use ureq::{Agent, SendBody};

use super::client::{ClientOptions, RegistryError, RetryPolicy};
use super::retry::{parse_retry_after, Budget, RETRY_STATUSES};
use crate::secret::Secret;

/// Redirects followed per request, as docker and most HTTP clients allow.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// How much of an error response's body is read (for the message excerpt).
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Longest body excerpt put in an error message.
const EXCERPT_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// Only safe methods are redirected: replaying a body elsewhere is not ours to do.
    fn follows_redirects(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// A request body being streamed, which knows how much of itself has been read.
pub(crate) trait Upload: Read {
    fn consumed(&self) -> u64;
}

/// What a request sends.
pub(crate) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `size` bytes read from a stream: sendable again only while none has been read.
    Stream {
        body: &'a mut dyn Upload,
        size: u64,
    },
}

impl Payload<'_> {
    pub fn replayable(&self) -> bool {
        match self {
            Payload::Empty | Payload::Bytes(_) => true,
            Payload::Stream { body, .. } => body.consumed() == 0,
        }
    }
}

/// One request as castoff means it; the transport may send it several times.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: Uri,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: Payload<'a>,
    /// The largest successful response body to accept; more is a protocol error.
    pub limit: u64,
    /// The `Authorization` header value, and the only origin it may be sent to.
    pub authorization: Option<(Origin, Secret)>,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: Uri) -> Request<'a> {
        Request { method, url, headers: Vec::new(), body: Payload::Empty, limit: 0, authorization: None }
    }

    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Payload<'a>) -> Request<'a> {
        self.body = body;
        self
    }

    pub fn limit(mut self, limit: u64) -> Request<'a> {
        self.limit = limit;
        self
    }
}

/// A response with its body read (up to the request's limit).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: Uri,
}

impl Reply {
    /// A header's value, when present and printable.
    pub fn header(&self, name: impl header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A URL's origin: who may receive a credential issued for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute http(s) URL; the port made explicit.
    pub fn of(url: &Uri) -> Option<Origin> {
        let scheme = url.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let host = url.host()?.to_ascii_lowercase();
        Some(Origin { scheme, host, port: url.port_u16().unwrap_or(default_port) })
    }
}

/// Why one exchange failed.
enum SendError {
    /// A network failure; `retryable` when trying again may help.
    Network { message: String, retryable: bool },
    /// Retrying cannot help: report this.
    Fatal(RegistryError),
}

/// The HTTP side of a [`super::Client`]: connection pool, policy and request counter.
pub(crate) struct Transport {
    agent: Agent,
    insecure: Vec<String>,
    retry: RetryPolicy,
    requests: AtomicUsize,
}

impl Transport {
    pub fn new(options: &ClientOptions) -> Transport {
        Transport {
            agent: agent(options.timeout, options.timeout),
            insecure: options.insecure_registries.iter().map(|entry| normalise_insecure_entry(entry)).collect(),
            retry: options.retry.clone(),
            requests: AtomicUsize::new(0),
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The scheme to reach a registry's API with: plain HTTP where it is allowed (a
    /// loopback host, or one listed as insecure), HTTPS everywhere else.
    pub fn scheme_for(&self, authority: &str) -> &'static str {
        if plain_http_allowed(authority, &self.insecure) {
            "http"
        } else {
            "https"
        }
    }

    /// Send `request`, following redirects when its method may be redirected.
    pub fn send(&self, request: &mut Request<'_>, budget: &mut Budget) -> Result<Reply, RegistryError> {
        let mut hops = 0;
        loop {
            let reply = self.send_retrying(request, budget)?;
            if !request.method.follows_redirects() || !is_redirect(reply.status) {
                return Ok(reply);
            }
            if hops == MAX_REDIRECTS {
                return Err(protocol(&request.url, format!("more than {MAX_REDIRECTS} redirects")));
            }
            request.url = redirect_target(&request.url, &reply)?;
            hops += 1;
        }
    }

    /// Send until a reply that is not worth retrying, or until the budget is spent (then
    /// the last retryable reply, or [`RegistryError::Unreachable`]).
    fn send_retrying(&self, request: &mut Request<'_>, budget: &mut Budget) -> Result<Reply, RegistryError> {
        loop {
            let (last, retry_after) = match self.exchange(request) {
                Ok(reply) if RETRY_STATUSES.contains(&reply.status) => {
                    let retry_after = retry_after(&reply);
                    (Ok(reply), retry_after)
                }
                Ok(reply) => return Ok(reply),
                Err(SendError::Fatal(error)) => return Err(error),
                Err(SendError::Network { message, retryable: true }) => (Err(message), None),
                Err(SendError::Network { message, retryable: false }) => {
                    budget.record_failure();
                    return Err(unreachable(&request.url, budget, message));
                }
            };
            budget.record_failure();
            let wait = request.body.replayable().then(|| budget.next_wait(&self.retry, retry_after)).flatten();
            match (wait, last) {
                (Some(wait), _) => std::thread::sleep(wait),
                (None, Ok(reply)) => return Ok(reply),
                (None, Err(message)) => return Err(unreachable(&request.url, budget, message)),
            }
        }
    }

    /// One request and its response body: counted, and checked against the policy.
    fn exchange(&self, request: &mut Request<'_>) -> Result<Reply, SendError> {
        self.check_allowed(&request.url).map_err(SendError::Fatal)?;
        let url = request.url.clone();
        let head = request.method == Method::Head;
        let limit = request.limit;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = run(&self.agent, request).map_err(|e| network_error(e, &url))?;
        let (parts, body) = response.into_parts();
        let status = parts.status.as_u16();
        let success = (200..300).contains(&status);
        let limit = if success { limit } else { ERROR_BODY_LIMIT };
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if success && !head && declared.is_some_and(|length| length > limit) {
            return Err(SendError::Fatal(too_large(&url, limit)));
        }
        let mut bytes = Vec::new();
        if !head {
            let mut reader = body.into_with_config().limit(u64::MAX).reader().take(limit.saturating_add(1));
            reader.read_to_end(&mut bytes).map_err(|e| SendError::Network {
                message: format!("reading the response body failed: {}", scrub(&e.to_string())),
                retryable: true,
            })?;
        }
        if bytes.len() as u64 > limit {
            if success {
                return Err(SendError::Fatal(too_large(&url, limit)));
            }
            bytes.truncate(limit as usize);
        }
        Ok(Reply { status, headers: parts.headers, body: bytes, url })
    }

    /// Only http(s), and plain HTTP only where [`plain_http_allowed`] says so.
    fn check_allowed(&self, url: &Uri) -> Result<(), RegistryError> {
        let authority = url.authority().map(|a| a.as_str()).unwrap_or_default();
        match url.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if plain_http_allowed(authority, &self.insecure) => Ok(()),
            Some("http") => Err(RegistryError::InsecureRefused { registry: authority.to_string() }),
            _ => Err(protocol(url, "only http and https URLs are supported".into())),
        }
    }
}

/// castoff's ureq agent: statuses are answers, not errors, and redirects are never
/// followed by ureq (the caller decides, so credentials stay with their origin).
/// Shared by the registry client and the NuGet feeds so both speak HTTP alike; `io` is
/// the limit on each read and write once connected.
pub(crate) fn agent(connect: Duration, io: Duration) -> Agent {
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(connect))
        .timeout_per_read(Some(io))
        .timeout_per_write(Some(io))
        .user_agent(concat!("castoff/", env!("CARGO_PKG_VERSION")))
        .build();
    Agent::new_with_config(config)
}

/// Send `request` once with ureq. Its `Authorization` goes only to its own origin.
fn run(agent: &Agent, request: &mut Request<'_>) -> Result<http::Response<ureq::Body>, ureq::Error> {
    let mut builder = http::Request::builder().method(request.method.as_str()).uri(request.url.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value.as_str());
    }
    if let Some((origin, secret)) = &request.authorization {
        if Origin::of(&request.url).as_ref() == Some(origin) {
            let mut value = HeaderValue::from_str(secret.expose()).map_err(http::Error::from)?;
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
        }
    }
    let sends_body = matches!(request.method, Method::Put | Method::Post);
    match &mut request.body {
        Payload::Empty if sends_body => agent.run(builder.header(header::CONTENT_LENGTH, "0").body(())?),
        Payload::Empty => agent.run(builder.body(())?),
        Payload::Bytes(bytes) => agent.run(builder.header(header::CONTENT_LENGTH, bytes.len()).body(*bytes)?),
        Payload::Stream { body, size } => {
            let builder = builder.header(header::CONTENT_LENGTH, *size);
            agent.run(builder.body(SendBody::from_reader(&mut **body))?)
        }
    }
}

/// ureq's error as a network failure, retryable when it is the kind of trouble that
/// passes: refused or reset connections, timeouts, truncated or garbled responses.
fn network_error(error: ureq::Error, url: &Uri) -> SendError {
    if let ureq::Error::Http(e) = &error {
        return SendError::Fatal(protocol(url, format!("cannot build the request: {e}")));
    }
    SendError::Network { retryable: is_retryable(&error), message: scrub(&error.to_string()) }
}

/// Whether trying again may help after `error`: refused or reset connections, timeouts,
/// truncated or garbled responses.
pub(crate) fn is_retryable(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::TimedOut
                | ErrorKind::NotConnected
                | ErrorKind::Interrupted
                | ErrorKind::WouldBlock
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        ureq::Error::BodyStalled => true,
        _ => false,
    }
}

pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where a redirect points, resolved against the URL that answered; refuses a step
/// down from HTTPS to HTTP.
fn redirect_target(from: &Uri, reply: &Reply) -> Result<Uri, RegistryError> {
    let location = reply
        .header(header::LOCATION)
        .ok_or_else(|| protocol(from, format!("answered {} without a Location header", reply.status)))?;
    let to = resolve_location(from, location).map_err(|problem| protocol(from, problem))?;
    if is_downgrade(from, &to) {
        return Err(protocol(
            from,
            format!("redirected from HTTPS to plain HTTP ({}); castoff does not follow that", display_url(&to)),
        ));
    }
    Ok(to)
}

/// HTTPS to anything but HTTPS.
pub(crate) fn is_downgrade(from: &Uri, to: &Uri) -> bool {
    from.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("https"))
        && !to.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("https"))
}

/// Resolve a `Location` header (absolute, scheme-relative, absolute-path, query-only or
/// relative-path) against the URL it came with.
pub(crate) fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    let location = location.trim();
    let bad = |why: &str| format!("unusable Location `{}`: {why}", location.chars().take(200).collect::<String>());
    let scheme = base.scheme_str().ok_or_else(|| bad("the request URL has no scheme"))?;
    let authority = base.authority().map(|a| a.as_str()).ok_or_else(|| bad("the request URL has no host"))?;
    let absolute = if has_scheme(location) {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else if location.is_empty() {
        return Err(bad("it is empty"));
    } else {
        let path = base.path();
        let directory = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
        let directory = if directory.is_empty() { "/" } else { directory };
        format!("{scheme}://{authority}{directory}{location}")
    };
    let uri: Uri = absolute.parse().map_err(|e| bad(&format!("{e}")))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it has no host"));
    }
    Ok(uri)
}

/// `scheme:` at the start, per RFC 3986 (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn has_scheme(text: &str) -> bool {
    match text.split_once(':') {
        Some((scheme, _)) => {
            scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        }
        None => false,
    }
}

/// Whether plain HTTP may be spoken to `authority` (`host` or `host:port`): always to
/// loopback (`localhost`, 127.0.0.0/8, `::1`), otherwise only when an insecure-registry
/// entry names the host (any port) or the exact `host:port`.
pub(crate) fn plain_http_allowed(authority: &str, insecure: &[String]) -> bool {
    let authority = authority.to_ascii_lowercase();
    let host = host_of(&authority);
    is_loopback(host) || insecure.iter().any(|entry| *entry == authority || *entry == host)
}

/// `host` of `host[:port]` (brackets kept for IPv6).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |end| &authority[..=end]);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// An `insecure_registries` entry as compared: lowercase, without scheme or path.
fn normalise_insecure_entry(entry: &str) -> String {
    let entry = entry.trim();
    let entry = entry.split_once("://").map_or(entry, |(_, rest)| rest);
    entry.split('/').next().unwrap_or(entry).to_ascii_lowercase()
}

/// The wait a 429/503 asks for.
fn retry_after(reply: &Reply) -> Option<Duration> {
    parse_retry_after(reply.header(header::RETRY_AFTER)?, SystemTime::now())
}

/// A URL for messages: without its query, which may hold signatures or session state.
pub(crate) fn display_url(url: &Uri) -> String {
    let scheme = url.scheme_str().unwrap_or("");
    let authority = url.authority().map(|a| a.as_str()).unwrap_or("");
    let query = if url.query().is_some() { "?…" } else { "" };
    format!("{scheme}://{authority}{}{query}", url.path())
}

pub(crate) fn protocol(url: &Uri, problem: String) -> RegistryError {
    RegistryError::Protocol { url: display_url(url), problem }
}

fn too_large(url: &Uri, limit: u64) -> RegistryError {
    protocol(url, format!("the response body is larger than the {limit}-byte limit"))
}

fn unreachable(url: &Uri, budget: &Budget, last_error: String) -> RegistryError {
    RegistryError::Unreachable {
        registry: url.authority().map(|a| a.to_string()).unwrap_or_default(),
        attempts: budget.failures(),
        elapsed: budget.elapsed(),
        last_error,
    }
}

/// The start of a response body for an error message: whitespace collapsed, anything
/// that looks like a token replaced by `****`, at most 300 characters.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let scrubbed = scrub(&collapsed);
    if scrubbed.chars().count() <= EXCERPT_CHARS {
        return scrubbed;
    }
    let mut short: String = scrubbed.chars().take(EXCERPT_CHARS - 1).collect();
    short.push('…');
    short
}

/// Replace likely secrets in text bound for a message: long runs of token characters
/// that mix upper case, lower case and digits (JWTs, API keys, base64 credentials), and
/// whatever follows `Bearer ` or `Basic `. Lowercase hex (digests) is kept.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(is_token_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        let after_scheme = ["Bearer ", "Basic ", "bearer ", "basic "].iter().any(|s| out.ends_with(s));
        if looks_like_secret(word) || (after_scheme && word.len() >= 8) {
            out.push_str("****");
        } else {
            out.push_str(word);
        }
        rest = &rest[end..];
    }
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=_-.~/".contains(c)
}

fn looks_like_secret(word: &str) -> bool {
    word.len() >= 24
        && word.bytes().any(|b| b.is_ascii_uppercase())
        && word.bytes().any(|b| b.is_ascii_lowercase())
        && word.bytes().any(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn insecure_decision() {
        let none: Vec<String> = Vec::new();
        for loopback in
            ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "[::1]", "LOCALHOST"]
        {
            assert!(plain_http_allowed(loopback, &none), "{loopback}");
        }
        for remote in ["ghcr.io", "10.0.0.1:5000", "[::2]:5000", "127.0.0.1.example.com", "localhostx:5000", "[::1"] {
            assert!(!plain_http_allowed(remote, &none), "{remote}");
        }
        let insecure: Vec<String> = ["registry.lan", "other.lan:5000", "HTTP://Third.lan:8080/"]
            .iter()
            .map(|e| normalise_insecure_entry(e))
            .collect();
        assert!(plain_http_allowed("registry.lan", &insecure));
        assert!(plain_http_allowed("registry.lan:5000", &insecure), "a bare host entry allows any port");
        assert!(plain_http_allowed("Other.LAN:5000", &insecure));
        assert!(!plain_http_allowed("other.lan:5001", &insecure), "a host:port entry allows that port only");
        assert!(!plain_http_allowed("other.lan", &insecure));
        assert!(plain_http_allowed("third.lan:8080", &insecure));
        assert!(!plain_http_allowed("registry.lan.evil.com", &insecure));
    }

    #[test]
    fn scheme_and_policy_checks() {
        let options = ClientOptions { insecure_registries: vec!["registry.lan".into()], ..Default::default() };
        let transport = Transport::new(&options);
        assert_eq!(transport.scheme_for("localhost:5000"), "http");
        assert_eq!(transport.scheme_for("registry.lan:5000"), "http");
        assert_eq!(transport.scheme_for("ghcr.io"), "https");
        assert!(transport.check_allowed(&uri("http://127.0.0.1:5000/v2/")).is_ok());
        assert!(transport.check_allowed(&uri("https://ghcr.io/v2/")).is_ok());
        match transport.check_allowed(&uri("http://ghcr.io/v2/")) {
            Err(RegistryError::InsecureRefused { registry }) => assert_eq!(registry, "ghcr.io"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(transport.check_allowed(&uri("ftp://ghcr.io/x")), Err(RegistryError::Protocol { .. })));
    }

    #[test]
    fn origins() {
        let registry = Origin::of(&uri("https://Registry.Example.com/v2/")).unwrap();
        assert_eq!(Some(&registry), Origin::of(&uri("https://registry.example.com:443/v2/x")).as_ref());
        for other in [
            "https://storage.example.com/v2/",
            "http://registry.example.com/v2/",
            "https://registry.example.com:8443/v2/",
            "https://example.com/v2/",
        ] {
            assert_ne!(Some(&registry), Origin::of(&uri(other)).as_ref(), "{other}");
        }
        assert_eq!(Origin::of(&uri("http://[::1]:5000/")), Origin::of(&uri("http://[::1]:5000/v2/")));
        assert_eq!(Origin::of(&uri("/relative")), None);
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = uri("https://reg.example.com:5000/v2/team/app/blobs/uploads/?x=1");
        let cases = [
            ("https://s3.example.com/bucket/blob?sig=abc", "https://s3.example.com/bucket/blob?sig=abc"),
            ("//cdn.example.com/blob", "https://cdn.example.com/blob"),
            (
                "/v2/team/app/blobs/uploads/uuid?_state=s",
                "https://reg.example.com:5000/v2/team/app/blobs/uploads/uuid?_state=s",
            ),
            ("uuid", "https://reg.example.com:5000/v2/team/app/blobs/uploads/uuid"),
            ("?y=2", "https://reg.example.com:5000/v2/team/app/blobs/uploads/?y=2"),
            ("  http://127.0.0.1:5000/x  ", "http://127.0.0.1:5000/x"),
        ];
        for (location, expected) in cases {
            assert_eq!(resolve_location(&base, location).unwrap().to_string(), expected, "{location}");
        }
        for bad in ["", "http://", "https://bad host/x", "http:///path"] {
            assert!(resolve_location(&base, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn downgrades() {
        assert!(is_downgrade(&uri("https://a/x"), &uri("http://a/x")));
        assert!(is_downgrade(&uri("HTTPS://a/x"), &uri("http://b/x")));
        assert!(!is_downgrade(&uri("https://a/x"), &uri("https://b/x")));
        assert!(!is_downgrade(&uri("http://a/x"), &uri("https://b/x")));
        assert!(!is_downgrade(&uri("http://a/x"), &uri("http://b/x")));
    }

    #[test]
    fn excerpts_are_short_and_scrubbed() {
        let jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let body = format!(
            "{{\"errors\":[{{\"code\":\"DENIED\",\n  \"message\":\"token {jwt} expired\", \"detail\":\"Bearer abcdefgh123 sha256:{}\"}}]}}",
            "a".repeat(64)
        );
        let text = excerpt(body.as_bytes());
        assert!(!text.contains("eyJhbGci") && !text.contains("abcdefgh123"), "{text}");
        assert!(text.contains("DENIED") && text.contains(&"a".repeat(64)), "digests are kept: {text}");
        assert!(!text.contains('\n'));
        let long = excerpt("x".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), 300);
        assert!(long.ends_with('…'));
        assert_eq!(excerpt(b"\xff\xfe not utf8"), "\u{fffd}\u{fffd} not utf8");
        assert_eq!(scrub("Basic dXNlcjpwYXNzd29yZA=="), "Basic ****");
        assert_eq!(scrub("blob unknown to registry"), "blob unknown to registry");
        assert_eq!(
            scrub("/var/lib/registry/docker/registry/v2/repositories"),
            "/var/lib/registry/docker/registry/v2/repositories"
        );
    }

    #[test]
    fn urls_in_messages_drop_the_query() {
        assert_eq!(display_url(&uri("https://s3.example.com/b/o?X-Amz-Signature=abc")), "https://s3.example.com/b/o?…");
        assert_eq!(display_url(&uri("http://127.0.0.1:5000/v2/")), "http://127.0.0.1:5000/v2/");
    }
}
