//! A real OCI registry per test: Debian's `docker-registry` (CNCF distribution 2.8) as a
//! plain process on 127.0.0.1 with a free port, filesystem storage and deletes enabled,
//! optionally behind htpasswd basic auth. Killed when dropped.
//!
//! Every request the registry answers is one line of its access log (its stdout), in
//! Apache combined format: `127.0.0.1 - - [date] "PUT /v2/app/manifests/1.0 HTTP/1.1" 201
//! 0 "" "skopeo/1.9.3"`. [`Registry::requests`] parses those lines, so tests can count
//! what a command sent (for "nothing pushed twice").

use std::fs;
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::images::MANIFEST_MEDIA_TYPES;
use crate::programs::{describe, run_ok, DOCKER_REGISTRY, HTPASSWD};
use crate::temp_dir;

/// How long the registry may take to answer `GET /v2/` (it takes ~0.06 s here).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The query parameter marking the harness's own requests, left out of [`Registry::requests`].
const HARNESS_QUERY: &str = "castoff-harness=";
/// Attempts at starting on a fresh free port (another process may take the port first).
const START_ATTEMPTS: usize = 5;

/// A running registry. Dropping it kills the process.
pub struct Registry {
    child: Child,
    dir: TempDir,
    host: String,
    credentials: Option<(String, String)>,
    syncs: AtomicU64,
}

/// One request the registry answered, from its access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub status: u16,
}

impl Request {
    /// The URI without its query string.
    pub fn path(&self) -> &str {
        self.uri.split_once('?').map_or(&self.uri, |(path, _)| path)
    }
}

/// A plain HTTP response, whatever its status.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: Option<String>,
    /// The `Docker-Content-Digest` header.
    pub digest: Option<String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

impl Registry {
    /// An anonymous registry: anyone may pull and push.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that answers 401 unless requests carry `user`/`password` (basic auth).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.to_string(), password.to_string())))
    }

    fn launch(credentials: Option<(String, String)>) -> Registry {
        let dir = temp_dir();
        if let Some((user, password)) = &credentials {
            let line = run_ok(HTPASSWD.command().args(["-Bbn", user, password]));
            fs::write(dir.path().join("htpasswd"), line).expect("write the htpasswd file");
        }
        for attempt in 1..=START_ATTEMPTS {
            let host = format!("127.0.0.1:{}", free_port());
            let mut child = spawn(&dir, &host, credentials.is_some());
            let failure = match wait_ready(&mut child, &dir, &host) {
                Ok(()) => return Registry { child, dir, host, credentials, syncs: AtomicU64::new(0) },
                Err(failure) => failure,
            };
            let _ = child.kill();
            let _ = child.wait();
            let log = log_of(&dir);
            if attempt < START_ATTEMPTS && log.contains("address already in use") {
                continue;
            }
            panic!(
                "REGISTRY DID NOT START: `docker-registry serve` on {host} is not ready: {failure} \
                 (attempt {attempt} of {START_ATTEMPTS})\n{log}"
            );
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `HOST/name`, e.g. `reference("app:1.0")`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// `http://HOST` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// The user and password the registry requires, if any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials.as_ref().map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// `user:password` as skopeo's `--dest-creds` and `--creds` take it.
    pub fn creds_arg(&self) -> String {
        let (user, password) = self.credentials().expect("this registry has no credentials");
        format!("{user}:{password}")
    }

    /// The server's application log (stderr) followed by its access log (stdout).
    pub fn log(&self) -> String {
        log_of(&self.dir)
    }

    /// Every request answered so far, in the order they completed, leaving out the
    /// harness's own. Waits until requests made before this call are all logged.
    pub fn requests(&self) -> Vec<Request> {
        self.sync_access_log()
            .lines()
            .filter(|line| !line.contains(HARNESS_QUERY))
            .map(|line| parse_access_line(line).unwrap_or_else(|| panic!("unexpected access log line: {line}")))
            .collect()
    }

    /// How many requests had this method and path (query ignored).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.path() == path).count()
    }

    /// The registry logs a request just after answering it, so a client may finish before
    /// its last line is written. A marker request sent now is logged after those (in
    /// practice: each is written as its handler returns), so wait for the marker.
    fn sync_access_log(&self) -> String {
        let marker = format!("{HARNESS_QUERY}sync-{}", self.syncs.fetch_add(1, Ordering::Relaxed));
        self.get_anonymous(&format!("/v2/?{marker}"));
        let needle = format!("{marker} ");
        let path = self.dir.path().join("access.log");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = fs::read_to_string(&path).unwrap_or_default();
            if text.contains(&needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "the registry never logged {marker}\n{}", self.log());
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `GET path` with the registry's credentials (if any), accepting every manifest type.
    pub fn get(&self, path: &str) -> HttpResponse {
        let url = self.url(path);
        http_get(&url, self.credentials(), Some(&MANIFEST_MEDIA_TYPES.join(", ")))
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.log()))
    }

    /// `GET path` without credentials.
    pub fn get_anonymous(&self, path: &str) -> HttpResponse {
        let url = self.url(path);
        http_get(&url, None, None).unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.log()))
    }

    /// The manifest `repo:reference` (tag or digest), asserted to exist.
    pub fn manifest(&self, repo: &str, reference: &str) -> Value {
        self.get_ok(&format!("/v2/{repo}/manifests/{reference}")).json()
    }

    /// Blob `digest` of `repo`, asserted to exist and to match its digest.
    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let body = self.get_ok(&format!("/v2/{repo}/blobs/{digest}")).body;
        assert_eq!(sha256_digest(&body), digest, "blob {repo}@{digest} has other bytes");
        body
    }

    /// The config blob of image `repo:reference`, as JSON.
    pub fn image_config(&self, repo: &str, reference: &str) -> Value {
        let manifest = self.manifest(repo, reference);
        let digest = manifest["config"]["digest"].as_str().unwrap_or_else(|| panic!("no config in {manifest}"));
        serde_json::from_slice(&self.blob(repo, digest)).expect("the config blob is JSON")
    }

    fn get_ok(&self, path: &str) -> HttpResponse {
        let response = self.get(path);
        assert_eq!(response.status, 200, "GET {path}: {}\n{}", response.text(), self.log());
        response
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("registry {} (the test failed):\n{}", self.host, self.log());
        }
    }
}

/// Write the config and start `docker-registry serve` on `host`, logging into `dir`.
fn spawn(dir: &TempDir, host: &str, basic_auth: bool) -> Child {
    let config = dir.path().join("config.yml");
    fs::write(&config, config_yaml(dir, host, basic_auth)).expect("write the registry config");
    let access_log = fs::File::create(dir.path().join("access.log")).expect("create access.log");
    let app_log = fs::File::create(dir.path().join("registry.log")).expect("create registry.log");
    let mut command = DOCKER_REGISTRY.command();
    command.arg("serve").arg(&config).stdin(Stdio::null()).stdout(access_log).stderr(app_log);
    for (name, _) in std::env::vars_os().filter(|(name, _)| name.to_string_lossy().starts_with("REGISTRY_")) {
        command.env_remove(name);
    }
    command.spawn().unwrap_or_else(|e| panic!("could not start `{}`: {e}", describe(&command)))
}

/// Poll until our process logged that it listens on `host` and `GET /v2/` answers at all
/// (401 counts: the server is up). The log check makes sure the answer is not from some
/// other server that took the port first.
fn wait_ready(child: &mut Child, dir: &TempDir, host: &str) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let listening = format!("listening on {host}");
    let url = format!("http://{host}/v2/?{HARNESS_QUERY}ready");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the process exited: {status}"));
        }
        let log = fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        if log.contains(&listening) && http_get(&url, None, None).is_ok() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(format!("no answer within {READY_TIMEOUT:?}"))
}

/// The application log (stderr) followed by the access log (stdout) kept in `dir`.
fn log_of(dir: &TempDir) -> String {
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    format!("--- registry log ---\n{}--- access log ---\n{}", read("registry.log"), read("access.log"))
}

/// A port nothing listens on right now (the OS picks it; it may be taken again before use).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn config_yaml(dir: &TempDir, host: &str, basic_auth: bool) -> String {
    let quoted = |name: &str| serde_json::to_string(&dir.path().join(name)).expect("paths are UTF-8");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog: {{disabled: false}}\n\
         storage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n  \
         maintenance: {{uploadpurging: {{enabled: false}}}}\n\
         http: {{addr: \"{host}\", secret: castoff-tests}}\n",
        quoted("data"),
    );
    if basic_auth {
        yaml.push_str(&format!("auth:\n  htpasswd: {{realm: castoff-tests, path: {}}}\n", quoted("htpasswd")));
    }
    yaml
}

/// `"GET /v2/ HTTP/1.1" 200` out of a combined-format access log line.
fn parse_access_line(line: &str) -> Option<Request> {
    let (_, rest) = line.split_once('"')?;
    let (request, rest) = rest.split_once('"')?;
    let mut words = request.split(' ');
    let (method, uri) = (words.next()?, words.next()?);
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(Request { method: method.to_string(), uri: uri.to_string(), status })
}

/// `GET url`, any status; `Err` only when no HTTP answer came.
pub fn http_get(url: &str, credentials: Option<(&str, &str)>, accept: Option<&str>) -> Result<HttpResponse, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header("Authorization", format!("Basic {token}"));
    }
    let mut response = request.call().map_err(|e| e.to_string())?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, digest) = (header("Content-Type"), header("Docker-Content-Digest"));
    let body = response.body_mut().with_config().limit(256 << 20).read_to_vec().map_err(|e| e.to_string())?;
    Ok(HttpResponse { status: response.status().as_u16(), content_type, digest, body })
}

/// `sha256:HEX` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}
