//! A fault-injecting HTTP/1.1 proxy for the release fault matrix (`tests/faults.rs`).
//!
//! It listens on a free loopback port in front of one real service, Debian's
//! docker-registry or pynuget, and castoff is pointed at the proxy instead of the
//! service (the image `127.0.0.1:<proxy>/repo`, the feed `http://127.0.0.1:<proxy>/`).
//! Every request it does not fault is forwarded to the real service and the real answer
//! is sent back (re-framed with a `Content-Length`, one request per connection).
//!
//! **The token endpoint is a stand-in.** No real token server runs here, and the
//! registry itself speaks only htpasswd Basic auth, so for a registry the proxy plays the
//! token server of the distribution token flow: a `/v2/…` request without a bearer token
//! it issued is answered 401 with `WWW-Authenticate: Bearer realm="http://127.0.0.1:<proxy>/token",
//! service="test",scope="…"`; `GET /token` with the registry's Basic credentials answers
//! `{"token":"<random>"}`; a request with a valid token is forwarded with the bearer token
//! replaced by the registry's own Basic credentials. Everything else is the real registry.
//!
//! Each [`Scenario`] names a [`Fault`], the [`Step`] (class of request) it hits, the
//! first matching request it hits and how many times. Faults:
//!
//! - `Status`: 500/502/503/429, with or without `Retry-After`, answered by the proxy (the
//!   service never sees the request), as a gateway in trouble would.
//! - `Reset`: the connection is closed abortively (`SO_LINGER` 0: a TCP RST), either
//!   part-way through reading the request body (the service never sees it) or after
//!   forwarding it, part-way through sending the response (the service did the work).
//! - `Stall` (slow loris): nothing is sent for longer than castoff's timeout, either
//!   before forwarding, or after forwarding and sending only the response head (for a
//!   response without a body, the head without the blank line that would complete it).
//! - `Truncate`: the request is forwarded and the response cut short while keeping the
//!   original `Content-Length`, then the connection closed (FIN). When the response has no
//!   body (a HEAD, a PUT answered 201 with nothing), the cut falls inside the head.
//! - `Redirect`: 307 to `http://localhost:<other>/same/path`, a second listener of this
//!   proxy (another origin: other host name, other port) that records whether an
//!   `Authorization` or `X-NuGet-ApiKey` header arrived, then serves the request without
//!   any fault, as pre-signed blob storage would: registry requests are forwarded with the
//!   registry's own credentials, token requests get a token, feed requests are forwarded
//!   as they came.
//!
//! Reproducible: the scenario's seed drives a splitmix64 generator; every draw (Retry-After
//! is in the scenario, the phase of a reset or a stall, the offset of a reset or a cut) is
//! taken from it in the order faults are applied, so the same seed and the same sequence
//! of requests give the same behaviour. The proxy logs every request it saw (method, path,
//! step, what it did) for diagnosis: [`Proxy::log`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use base64::Engine;

/// `times` for a fault that hits every matching request from the first one on.
pub const ALWAYS: u32 = u32::MAX;

/// How much of a request body is read before the fault is decided: enough for the
/// multipart part headers that name the file of a NuGet push.
const PREFIX_BYTES: usize = 4096;
/// Longest request or response head accepted.
const HEAD_LIMIT: usize = 64 * 1024;
/// Socket timeouts of the proxy's own reads and writes (a safety net, never reached when
/// the peers behave).
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// After sending part of a response and before the RST: time for the bytes to arrive.
const BEFORE_RESET: Duration = Duration::from_millis(100);

/// What happens to the requests a scenario hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (500, 502, 503, 429), with `Retry-After: <seconds>` when given.
    Status { code: u16, retry_after: Option<u32> },
    /// Close with a TCP RST part-way through the request body or the response.
    Reset,
    /// Send nothing (or only the response head) for longer than the client's timeout.
    Stall,
    /// Cut the response short, keeping its `Content-Length`.
    Truncate,
    /// 307 to the same path on another origin, which records credentials.
    Redirect,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status { code, retry_after: None } => write!(f, "{code}"),
            Fault::Status { code, retry_after: Some(seconds) } => write!(f, "{code}+retry-after:{seconds}"),
            Fault::Reset => f.write_str("reset"),
            Fault::Stall => f.write_str("stall"),
            Fault::Truncate => f.write_str("truncate"),
            Fault::Redirect => f.write_str("redirect"),
        }
    }
}

/// The network steps of a release, as classes of requests the proxy sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// GET or HEAD `/v2/<name>/manifests/<reference>`.
    ManifestGet,
    /// POST, PATCH or PUT under `/v2/<name>/blobs/uploads/`.
    BlobUpload,
    /// PUT `/v2/<name>/manifests/<reference>`.
    ManifestPut,
    /// GET of the token realm (`/token`).
    TokenFetch,
    /// A NuGet push (PUT `…/api/v2/package/`) of a file not named `*.symbols.nupkg`.
    PackagePut,
    /// A NuGet push of a legacy `*.symbols.nupkg`.
    SymbolPut,
}

impl Step {
    pub const ALL: [Step; 6] =
        [Step::ManifestGet, Step::BlobUpload, Step::ManifestPut, Step::TokenFetch, Step::PackagePut, Step::SymbolPut];

    pub fn name(self) -> &'static str {
        match self {
            Step::ManifestGet => "manifest-get",
            Step::BlobUpload => "blob-upload",
            Step::ManifestPut => "manifest-put",
            Step::TokenFetch => "token-fetch",
            Step::PackagePut => "package-put",
            Step::SymbolPut => "symbol-put",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault scenario: `fault` hits the `first`-th request of class `step` (counting
/// from 1) and the `times - 1` matching requests after it ([`ALWAYS`]: all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    pub fault: Fault,
    pub step: Step,
    pub times: u32,
    pub first: u32,
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let times = match self.times {
            ALWAYS => "always".to_string(),
            n => format!("{n}x"),
        };
        write!(f, "seed={:#018x} fault={} step={} first={} times={times}", self.seed, self.fault, self.step, self.first)
    }
}

/// splitmix64: a tiny, good, seedable generator (no dependency needed).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        match n {
            0 => 0,
            n => self.next_u64() % n,
        }
    }
}

/// What the proxy stands in front of.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A registry: the proxy plays the token server, and forwards authorised requests
    /// with these Basic credentials (`None`: an anonymous registry).
    Registry { basic: Option<(String, String)> },
    /// A NuGet feed: everything is forwarded as it came, the API key included.
    Feed,
}

/// One request that reached the other origin (after a redirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: bool,
    pub api_key: bool,
}

/// A running proxy and its redirect target. Dropping it stops both listeners.
pub struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    other: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Main,
    Other,
}

struct Shared {
    upstream_kind: Upstream,
    upstream: SocketAddr,
    /// `127.0.0.1:<port>` of the main listener and `localhost:<port>` of the other one.
    host: String,
    other_host: String,
    stall: Duration,
    stop: AtomicBool,
    /// Request numbers in the log.
    sequence: AtomicU64,
    /// Tokens issued (mixed into each token's text).
    issued: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    armed: Option<Armed>,
    /// Matching requests seen per step on the main listener, armed or not.
    counts: BTreeMap<Step, u32>,
    applied: u32,
    log: Vec<String>,
    tokens: HashSet<String>,
    recorded: Vec<Recorded>,
}

struct Armed {
    scenario: Scenario,
    rng: SplitMix64,
    seen: u32,
}

/// A fault being applied to one request: the scenario's fault, the number of the
/// matching request, and a generator for its phase and offsets.
struct Applied {
    fault: Fault,
    nth: u32,
    rng: SplitMix64,
}

impl Proxy {
    /// A proxy on a free 127.0.0.1 port in front of `upstream` (`127.0.0.1:PORT`), with its
    /// redirect target on another free port. `stall` is how long a stall lasts: make it
    /// longer than the client's timeout.
    pub fn start(upstream: &str, upstream_kind: Upstream, stall: Duration) -> Proxy {
        let upstream: SocketAddr = upstream.parse().unwrap_or_else(|e| panic!("upstream {upstream}: {e}"));
        let main = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let other = TcpListener::bind("127.0.0.1:0").expect("bind the proxy's redirect target");
        let (addr, other_addr) = (main.local_addr().unwrap(), other.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream_kind,
            upstream,
            host: format!("127.0.0.1:{}", addr.port()),
            other_host: format!("localhost:{}", other_addr.port()),
            stall,
            stop: AtomicBool::new(false),
            sequence: AtomicU64::new(1),
            issued: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        });
        for (listener, which) in [(main, Listener::Main), (other, Listener::Other)] {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(shared, listener, which));
        }
        Proxy { shared, addr, other: other_addr }
    }

    /// `127.0.0.1:PORT`: where castoff is pointed.
    pub fn host(&self) -> &str {
        &self.shared.host
    }

    /// `localhost:PORT`: where redirects go.
    pub fn other_host(&self) -> &str {
        &self.shared.other_host
    }

    pub fn other_addr(&self) -> SocketAddr {
        self.other
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.shared.host)
    }

    /// Apply `scenario` from now on (its request counting starts afresh).
    pub fn arm(&self, scenario: Scenario) {
        let mut state = self.shared.state();
        state.log.push(format!("-- armed: {scenario}"));
        state.armed = Some(Armed { scenario, rng: SplitMix64::new(scenario.seed), seen: 0 });
    }

    /// Forward everything from now on.
    pub fn disarm(&self) {
        let mut state = self.shared.state();
        state.log.push("-- disarmed".into());
        state.armed = None;
    }

    /// How many faults were applied so far.
    pub fn applied(&self) -> u32 {
        self.shared.state().applied
    }

    /// How many requests of each step the main listener saw so far.
    pub fn counts(&self) -> BTreeMap<Step, u32> {
        self.shared.state().counts.clone()
    }

    /// Every request seen, one line each, with what the proxy did.
    pub fn log(&self) -> String {
        self.shared.state().log.join("\n")
    }

    /// The requests that reached the other origin.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.state().recorded.clone()
    }

    /// Requests that reached the other origin carrying a credential.
    pub fn credential_leaks(&self) -> Vec<String> {
        self.recorded()
            .into_iter()
            .filter(|r| r.authorization || r.api_key)
            .map(|r| {
                let what = match (r.authorization, r.api_key) {
                    (true, true) => "Authorization and X-NuGet-ApiKey",
                    (true, false) => "Authorization",
                    _ => "X-NuGet-ApiKey",
                };
                format!("{} {} reached {} with {what}", r.method, r.path, self.shared.other_host)
            })
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake both accept loops so they see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = TcpStream::connect_timeout(&self.other, Duration::from_secs(1));
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, line: String) {
        self.state().log.push(line);
    }

    /// Count a request of class `step` and decide whether the armed scenario hits it.
    fn decide(&self, step: Option<Step>) -> Option<Applied> {
        let step = step?;
        let mut state = self.state();
        *state.counts.entry(step).or_default() += 1;
        let armed = state.armed.as_mut()?;
        if armed.scenario.step != step {
            return None;
        }
        armed.seen += 1;
        let first = armed.scenario.first.max(1);
        if armed.seen < first || armed.seen - first >= armed.scenario.times {
            return None;
        }
        let applied =
            Applied { fault: armed.scenario.fault, nth: armed.seen, rng: SplitMix64::new(armed.rng.next_u64()) };
        state.applied += 1;
        Some(applied)
    }

    fn new_token(&self) -> String {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(self.issued.fetch_add(1, Ordering::Relaxed));
        let token = format!("proxy-token-{:016x}", hasher.finish());
        self.state().tokens.insert(token.clone());
        token
    }

    fn token_valid(&self, request: &Request) -> bool {
        let Some(value) = request.header("authorization") else { return false };
        let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
            return false;
        };
        self.state().tokens.contains(token.trim())
    }

    fn upstream_basic(&self) -> Option<String> {
        match &self.upstream_kind {
            Upstream::Registry { basic: Some((user, password)) } => Some(basic_header(user, password)),
            _ => None,
        }
    }

    /// The proxy's answer when it does not fault: the token endpoint, the bearer
    /// challenge, or the service's own answer.
    fn answer(&self, listener: Listener, request: &Request, body: &[u8]) -> Response {
        let Upstream::Registry { .. } = &self.upstream_kind else {
            return self.forward(request, body, Credential::AsSent);
        };
        let path = request.path();
        if request.method == "GET" && path == "/token" {
            let authorised = match (listener, self.upstream_basic()) {
                (Listener::Main, Some(expected)) => request.header("authorization") == Some(expected.as_str()),
                _ => true,
            };
            if !authorised {
                let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"token service: bad credentials"}]}"#;
                return Response::simple(
                    401,
                    "Unauthorized",
                    &[("Content-Type", "application/json")],
                    body,
                    "token refused",
                );
            }
            let token = self.new_token();
            let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
            return Response::simple(
                200,
                "OK",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
                "token issued",
            );
        }
        if path.starts_with("/v2") && listener == Listener::Main && !self.token_valid(request) {
            let scope = scope_of(request);
            let mut challenge = format!("Bearer realm=\"http://{}/token\",service=\"test\"", self.host);
            if let Some(scope) = scope {
                challenge.push_str(&format!(",scope=\"{scope}\""));
            }
            let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            let headers = [("Content-Type", "application/json"), ("WWW-Authenticate", challenge.as_str())];
            return Response::simple(401, "Unauthorized", &headers, body, "bearer challenge");
        }
        self.forward(request, body, Credential::Upstream)
    }

    /// Send the request to the service and read its whole answer.
    fn forward(&self, request: &Request, body: &[u8], credential: Credential) -> Response {
        match self.try_forward(request, body, credential) {
            Ok(response) => response,
            Err(e) => {
                let text = format!("fault proxy: upstream {} failed: {e}", self.upstream);
                Response::simple(
                    502,
                    "Bad Gateway",
                    &[("Content-Type", "text/plain")],
                    text.as_bytes(),
                    "upstream failed",
                )
            }
        }
    }

    fn try_forward(&self, request: &Request, body: &[u8], credential: Credential) -> io::Result<Response> {
        let mut upstream = TcpStream::connect_timeout(&self.upstream, Duration::from_secs(10))?;
        upstream.set_read_timeout(Some(IO_TIMEOUT))?;
        upstream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
        for (name, value) in &request.headers {
            let lower = name.to_ascii_lowercase();
            if HOP_BY_HOP.contains(&lower.as_str()) || lower == "content-length" || lower == "expect" {
                continue;
            }
            if lower == "authorization" && credential == Credential::Upstream {
                continue;
            }
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if credential == Credential::Upstream {
            if let Some(basic) = self.upstream_basic() {
                head.push_str(&format!("Authorization: {basic}\r\n"));
            }
        }
        if !body.is_empty() || matches!(request.method.as_str(), "PUT" | "POST" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        upstream.write_all(head.as_bytes())?;
        upstream.write_all(body)?;
        upstream.flush()?;
        let mut reader = BufReader::new(upstream);
        let (status, reason, headers) = loop {
            let raw = read_head(&mut reader)?.ok_or_else(|| io::Error::other("no response"))?;
            let (status, reason, headers) = parse_status(&raw)?;
            if !(100..200).contains(&status) {
                break (status, reason, headers);
            }
        };
        let no_body = request.method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
        let find = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim());
        let mut response_body = Vec::new();
        if !no_body {
            if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
                response_body = read_chunked(&mut reader)?;
            } else if let Some(length) = find("content-length") {
                let length: usize = length.parse().map_err(|_| io::Error::other("bad Content-Length"))?;
                response_body = vec![0; length];
                reader.read_exact(&mut response_body)?;
            } else {
                reader.read_to_end(&mut response_body)?;
            }
        }
        let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
        for (name, value) in &headers {
            let lower = name.to_ascii_lowercase();
            if HOP_BY_HOP.contains(&lower.as_str()) || (lower == "content-length" && !no_body) {
                continue;
            }
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !no_body {
            out.push_str(&format!("Content-Length: {}\r\n", response_body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        Ok(Response { status, head: out.into_bytes(), body: response_body, note: "forwarded".into() })
    }
}

/// Headers that belong to one connection, not to the message.
const HOP_BY_HOP: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// Forward the client's headers as they are.
    AsSent,
    /// Drop the client's Authorization; send the registry's own Basic credentials.
    Upstream,
}

fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `repository:<name>:pull[,push]` for a `/v2/<name>/…` request.
fn scope_of(request: &Request) -> Option<String> {
    let rest = request.path().strip_prefix("/v2/")?;
    let end = ["/manifests/", "/blobs/", "/tags/"].iter().filter_map(|marker| rest.find(marker)).min()?;
    let actions = match request.method.as_str() {
        "GET" | "HEAD" => "pull",
        _ => "pull,push",
    };
    Some(format!("repository:{}:{actions}", &rest[..end]))
}

/// Which step a request belongs to. A NuGet push is told apart by the file name in its
/// multipart part headers, which `prefix` (the start of the body) holds.
fn classify(upstream: &Upstream, request: &Request, prefix: &[u8]) -> Option<Step> {
    let path = request.path();
    let method = request.method.as_str();
    match upstream {
        Upstream::Registry { .. } => {
            if path == "/token" && method == "GET" {
                return Some(Step::TokenFetch);
            }
            if !path.starts_with("/v2/") {
                return None;
            }
            if path.contains("/manifests/") {
                return match method {
                    "GET" | "HEAD" => Some(Step::ManifestGet),
                    "PUT" => Some(Step::ManifestPut),
                    _ => None,
                };
            }
            (path.contains("/blobs/uploads") && matches!(method, "POST" | "PATCH" | "PUT")).then_some(Step::BlobUpload)
        }
        Upstream::Feed => {
            if method != "PUT" || !path.to_ascii_lowercase().contains("/api/v2/package") {
                return None;
            }
            let text = String::from_utf8_lossy(prefix).to_ascii_lowercase();
            match text.contains(".symbols.nupkg\"") {
                true => Some(Step::SymbolPut),
                false => Some(Step::PackagePut),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------

fn accept_loop(shared: Arc<Shared>, listener: TcpListener, which: Listener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let _ = serve(&shared, stream, which);
        });
    }
}

/// One request on one connection, then the connection is closed.
fn serve(shared: &Shared, mut stream: TcpStream, which: Listener) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(raw) = read_head(&mut reader)? else { return Ok(()) };
    let request = parse_request(&raw)?;
    let number = shared.sequence.fetch_add(1, Ordering::Relaxed);
    let shown = format!("#{number} {} {} {}", listener_name(which), request.method, short(&request.target));
    let mut body = BodyReader::new(&request)?;
    if body.remaining() > 0 && request.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let prefix_len = body.remaining().min(PREFIX_BYTES as u64) as usize;
    body.read_part(&mut reader, prefix_len)?;

    if which == Listener::Other {
        let recorded = Recorded {
            method: request.method.clone(),
            path: request.path().to_string(),
            authorization: request.header("authorization").is_some(),
            api_key: request.header("x-nuget-apikey").is_some(),
        };
        shared.state().recorded.push(recorded);
    }
    let step = match which {
        Listener::Main => classify(&shared.upstream_kind, &request, body.bytes()),
        Listener::Other => None,
    };
    let step_shown = step.map_or_else(|| "-".to_string(), |s| s.name().to_string());
    let Some(mut applied) = (match which {
        Listener::Main => shared.decide(step),
        Listener::Other => None,
    }) else {
        body.read_rest(&mut reader)?;
        let response = shared.answer(which, &request, body.bytes());
        shared.log(format!("{shown} [{step_shown}] → {} ({})", response.status, response.note));
        stream.write_all(&response.head)?;
        stream.write_all(&response.body)?;
        return stream.flush();
    };

    let fault = applied.fault;
    let tag = format!("{shown} [{step_shown} #{}] FAULT {fault}", applied.nth);
    match fault {
        Fault::Status { code, retry_after } => {
            body.read_rest(&mut reader)?;
            let seconds = retry_after.map(|s| s.to_string());
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(seconds) = &seconds {
                headers.push(("Retry-After", seconds.as_str()));
            }
            let text = format!("{{\"errors\":[{{\"code\":\"UNAVAILABLE\",\"message\":\"fault proxy: {code}\"}}]}}");
            let response = Response::simple(code, reason(code), &headers, text.as_bytes(), "fault");
            shared.log(format!("{tag}: answered {code} without forwarding"));
            stream.write_all(&response.head)?;
            stream.write_all(&response.body)?;
            stream.flush()
        }
        Fault::Redirect => {
            body.read_rest(&mut reader)?;
            let location = format!("http://{}{}", shared.other_host, request.target);
            let headers = [("Location", location.as_str()), ("Content-Type", "text/plain")];
            let response = Response::simple(307, "Temporary Redirect", &headers, b"moved", "fault");
            shared.log(format!("{tag}: 307 to {}", short(&location)));
            stream.write_all(&response.head)?;
            stream.flush()?;
            stream.write_all(&response.body)?;
            stream.flush()
        }
        Fault::Reset => {
            let before = applied.rng.below(2) == 0;
            if before {
                let total = body.total();
                let keep = applied.rng.below(total.max(1)).max(body.bytes().len() as u64);
                let keep = keep.min(total);
                body.read_part(&mut reader, (keep - body.bytes().len() as u64) as usize)?;
                shared.log(format!("{tag}: RST after reading {keep} of {total} request body bytes (not forwarded)"));
                testkit::close_with_reset(stream);
                return Ok(());
            }
            body.read_rest(&mut reader)?;
            let response = shared.answer(which, &request, body.bytes());
            let whole = response.whole();
            let cut = applied.rng.below(whole.len() as u64) as usize;
            shared.log(format!(
                "{tag}: forwarded ({} {}), RST after {cut} of {} response bytes",
                response.status,
                response.note,
                whole.len()
            ));
            stream.write_all(&whole[..cut])?;
            stream.flush()?;
            thread::sleep(BEFORE_RESET);
            testkit::close_with_reset(stream);
            Ok(())
        }
        Fault::Stall => {
            let before = applied.rng.below(2) == 0;
            if before {
                shared.log(format!("{tag}: sent nothing for {:?} (not forwarded)", shared.stall));
                thread::sleep(shared.stall);
                return Ok(());
            }
            body.read_rest(&mut reader)?;
            let response = shared.answer(which, &request, body.bytes());
            // The head, and then the body never comes; a response without a body would be
            // complete with its head, so then the blank line that ends the head never comes.
            let sent = match response.body.is_empty() {
                true => &response.head[..response.head.len() - 2],
                false => &response.head[..],
            };
            let what = if response.body.is_empty() { "the head but its final blank line" } else { "the head only" };
            shared.log(format!(
                "{tag}: forwarded ({} {}), sent {what}, then nothing for {:?}",
                response.status, response.note, shared.stall
            ));
            stream.write_all(sent)?;
            stream.flush()?;
            thread::sleep(shared.stall);
            Ok(())
        }
        Fault::Truncate => {
            body.read_rest(&mut reader)?;
            let response = shared.answer(which, &request, body.bytes());
            let whole = response.whole();
            let head = response.head.len();
            // Inside the body when there is one, else inside the head (never nothing).
            let cut = match response.body.len() {
                0 => 1 + applied.rng.below(head as u64 - 1) as usize,
                n => head + applied.rng.below(n as u64) as usize,
            };
            shared.log(format!(
                "{tag}: forwarded ({} {}), sent {cut} of {} response bytes ({} head + {} body, Content-Length kept), then FIN",
                response.status,
                response.note,
                whole.len(),
                head,
                response.body.len()
            ));
            stream.write_all(&whole[..cut])?;
            stream.flush()?;
            stream.shutdown(std::net::Shutdown::Write)
        }
    }
}

fn listener_name(which: Listener) -> &'static str {
    match which {
        Listener::Main => "proxy",
        Listener::Other => "other-host",
    }
}

/// A target without its (long, opaque) query, for the log.
fn short(target: &str) -> String {
    match target.split_once('?') {
        Some((path, query)) if query.len() > 40 => format!("{path}?{}…", &query[..40]),
        _ => target.to_string(),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fault",
    }
}

// ---------------------------------------------------------------------------------------
// HTTP/1.1 framing
// ---------------------------------------------------------------------------------------

/// A request head.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(path, _)| path)
    }

    /// The first header of that name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }
}

/// A complete response: head (status line, headers, blank line) and body.
struct Response {
    status: u16,
    head: Vec<u8>,
    body: Vec<u8>,
    note: String,
}

impl Response {
    fn simple(status: u16, reason: &str, headers: &[(&str, &str)], body: &[u8], note: &str) -> Response {
        let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
        Response { status, head: head.into_bytes(), body: body.to_vec(), note: note.into() }
    }

    fn whole(&self) -> Vec<u8> {
        let mut bytes = self.head.clone();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A request body read in parts: `Content-Length` bodies incrementally, chunked ones
/// decoded whole up front.
struct BodyReader {
    length: u64,
    chunked: bool,
    bytes: Vec<u8>,
}

impl BodyReader {
    fn new(request: &Request) -> io::Result<BodyReader> {
        let chunked = request.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = match request.header("content-length") {
            Some(text) if !chunked => text.parse().map_err(|_| io::Error::other("bad Content-Length"))?,
            _ => 0,
        };
        Ok(BodyReader { length, chunked, bytes: Vec::new() })
    }

    fn total(&self) -> u64 {
        self.length
    }

    fn remaining(&self) -> u64 {
        self.length - self.bytes.len() as u64
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Read `n` more bytes (a chunked body: all of it, the first time).
    fn read_part(&mut self, reader: &mut impl BufRead, n: usize) -> io::Result<()> {
        if self.chunked {
            self.bytes = read_chunked(reader)?;
            self.length = self.bytes.len() as u64;
            self.chunked = false;
            return Ok(());
        }
        let n = n.min(self.remaining() as usize);
        let start = self.bytes.len();
        self.bytes.resize(start + n, 0);
        reader.read_exact(&mut self.bytes[start..])
    }

    fn read_rest(&mut self, reader: &mut impl BufRead) -> io::Result<()> {
        let rest = self.remaining() as usize;
        self.read_part(reader, rest)
    }
}

/// Read up to and including the blank line; `None` when the peer closed first.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return match head.is_empty() {
                true => Ok(None),
                false => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the head ended early")),
            };
        }
        if head.is_empty() && (line == b"\r\n" || line == b"\n") {
            continue;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        }
        if head.len() > HEAD_LIMIT {
            return Err(io::Error::other("the head is too long"));
        }
    }
}

/// Header names and values, in order.
type Headers = Vec<(String, String)>;

fn header_lines(raw: &[u8]) -> io::Result<(String, Headers)> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n')).filter(|l| !l.is_empty());
    let first = lines.next().ok_or_else(|| io::Error::other("empty head"))?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .collect();
    Ok((first, headers))
}

fn parse_request(raw: &[u8]) -> io::Result<Request> {
    let (first, headers) = header_lines(raw)?;
    let mut words = first.split(' ');
    let (method, target) = match (words.next(), words.next()) {
        (Some(method), Some(target)) => (method.to_string(), target.to_string()),
        _ => return Err(io::Error::other(format!("bad request line {first:?}"))),
    };
    Ok(Request { method, target, headers })
}

fn parse_status(raw: &[u8]) -> io::Result<(u16, String, Headers)> {
    let (first, headers) = header_lines(raw)?;
    let mut words = first.splitn(3, ' ');
    let _version = words.next();
    let status = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {first:?}")))?;
    Ok((status, words.next().unwrap_or("").to_string(), headers))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}
