//! A stand-in NuGet v3 feed: a small axum server on a free 127.0.0.1 port.
//!
//! No real NuGet v3 server (nor a snupkg symbol endpoint) runs on these machines
//! (DESIGN.md, "Real parts"), so this one follows the published protocol closely enough
//! to test castoff against it, and records everything it receives:
//!
//! - `GET /v3/index.json`: a service index with `PackagePublish/2.0.0`, and (as
//!   configured) `SymbolPackagePublish/4.9.0` and `PackageBaseAddress/3.0.0`;
//! - `PUT /v3/package` and `PUT /v3/symbolpackage`: `multipart/form-data` pushes with
//!   `X-NuGet-ApiKey` (401 without a key, 403 with a wrong one, 400 for a body that is
//!   not a package, 409 for a package id and version it has, else 201);
//! - `GET /v3/flat/{id}/{version}/{id}.{version}.nupkg`: the flat container, serving
//!   what was pushed (or [`V3Feed::insert_package`]ed).
//!
//! Each request is kept as a [`Recorded`]: method, path, headers, the declared length
//! or chunking, and per multipart part its name, filename, size and SHA-512, as an
//! independent parser (multer, via axum) read them. Answers can be scripted
//! ([`V3Feed::answer_next_push`]): a 429 with `Retry-After`, a 503, ...

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha512};
use tokio::sync::oneshot;

/// What the feed offers and checks.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key pushes must carry; `None` accepts any (or none).
    pub api_key: Option<String>,
    /// Advertise `SymbolPackagePublish/4.9.0`.
    pub symbols: bool,
    /// Advertise `PackageBaseAddress/3.0.0` (the flat container).
    pub flat_container: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { api_key: Some(DEFAULT_KEY.into()), symbols: true, flat_container: true }
    }
}

/// The key [`Options::default`] expects.
pub const DEFAULT_KEY: &str = "v3-test-key-0123";

/// A scripted answer to the next push, before any check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// This status with `Retry-After: seconds`.
    RetryAfter {
        status: u16,
        seconds: u64,
    },
    /// A redirect (301, 302, 307, 308) to `location`.
    Redirect {
        status: u16,
        location: String,
    },
}

/// One request as the feed saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    /// The declared `Content-Length`.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// The multipart parts, when the body was read.
    pub parts: Vec<Part>,
    /// The status the feed answered.
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: u64,
    /// SHA-512 of the part's content, base64.
    pub sha512: String,
}

#[derive(Default)]
struct Store {
    requests: Vec<Recorded>,
    /// (id-lower, version-lower) → bytes.
    packages: BTreeMap<(String, String), Vec<u8>>,
    symbols: BTreeMap<(String, String), Vec<u8>>,
    script: VecDeque<Answer>,
}

#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Store>>,
    options: Arc<Options>,
    base: String,
}

/// A running fake feed; stopped when dropped.
pub struct V3Feed {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl V3Feed {
    /// A feed with symbols and a flat container, expecting [`DEFAULT_KEY`].
    pub fn start() -> V3Feed {
        V3Feed::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> V3Feed {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free 127.0.0.1 port for the fake v3 feed");
        listener.set_nonblocking(true).expect("make the fake feed's listener non-blocking");
        let addr = listener.local_addr().expect("the fake feed's address");
        let store = Arc::new(Mutex::new(Store::default()));
        let shared = Shared { store: store.clone(), options: Arc::new(options), base: format!("http://{addr}") };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-v3-feed".into())
            .spawn(move || serve(listener, shared, stopped))
            .expect("start the fake feed's thread");
        V3Feed { addr, store, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT/v3/index.json`.
    pub fn index_url(&self) -> String {
        format!("http://{}/v3/index.json", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The PUTs so far.
    pub fn pushes(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == "PUT").collect()
    }

    /// Answer the next push with `answer` (queued; each is used once).
    pub fn answer_next_push(&self, answer: Answer) {
        self.lock().script.push_back(answer);
    }

    /// Put a package on the feed as if pushed earlier.
    pub fn insert_package(&self, id: &str, version: &str, bytes: Vec<u8>) {
        self.lock().packages.insert((id.to_lowercase(), version.to_lowercase()), bytes);
    }

    /// The package the feed holds for `id` `version`.
    pub fn package(&self, id: &str, version: &str) -> Option<Vec<u8>> {
        self.lock().packages.get(&(id.to_lowercase(), version.to_lowercase())).cloned()
    }

    /// The symbols package the feed holds for `id` `version`.
    pub fn symbols(&self, id: &str, version: &str) -> Option<Vec<u8>> {
        self.lock().symbols.get(&(id.to_lowercase(), version.to_lowercase())).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for V3Feed {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: TcpListener, shared: Shared, stopped: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("hand the listener to tokio");
        let app = Router::new()
            .route("/v3/index.json", get(index))
            .route("/v3/package", put(push_package))
            .route("/v3/symbolpackage", put(push_symbols))
            .route("/v3/flat/{id}/{version}/{file}", get(flat))
            .fallback(fallback)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared);
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Store> {
    shared.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn record(shared: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, parts: Vec<Part>, status: u16) {
    let headers_list: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.as_str().to_ascii_lowercase(), value.to_str().unwrap_or("<binary>").to_string()))
        .collect();
    let content_length = headers.get("content-length").and_then(|v| v.to_str().ok()?.trim().parse().ok());
    let chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    lock(shared).requests.push(Recorded {
        method: method.into(),
        path: uri.path().to_string(),
        headers: headers_list,
        content_length,
        chunked,
        parts,
        status,
    });
}

async fn index(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let base = &shared.base;
    let mut resources = vec![
        serde_json::json!({ "@id": format!("{base}/v3/package"), "@type": "PackagePublish/2.0.0" }),
        serde_json::json!({ "@id": format!("{base}/v3/query"), "@type": "SearchQueryService" }),
    ];
    if shared.options.symbols {
        resources.push(
            serde_json::json!({ "@id": format!("{base}/v3/symbolpackage"), "@type": "SymbolPackagePublish/4.9.0" }),
        );
    }
    if shared.options.flat_container {
        resources.push(serde_json::json!({ "@id": format!("{base}/v3/flat/"), "@type": "PackageBaseAddress/3.0.0" }));
    }
    record(&shared, "GET", &uri, &headers, Vec::new(), 200);
    let body = serde_json::json!({ "version": "3.0.0", "resources": resources }).to_string();
    ([("content-type", "application/json")], body).into_response()
}

async fn push_package(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, body: Multipart) -> Response {
    push(shared, uri, headers, body, false).await
}

async fn push_symbols(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, body: Multipart) -> Response {
    push(shared, uri, headers, body, true).await
}

async fn push(shared: Shared, uri: Uri, headers: HeaderMap, mut body: Multipart, symbols: bool) -> Response {
    let scripted = lock(&shared).script.pop_front();
    if let Some(answer) = scripted {
        let (status, header) = match answer {
            Answer::Status(status) => (status, None),
            Answer::RetryAfter { status, seconds } => (status, Some(("retry-after", HeaderValue::from(seconds)))),
            Answer::Redirect { status, location } => {
                (status, HeaderValue::from_str(&location).ok().map(|value| ("location", value)))
            }
        };
        record(&shared, "PUT", &uri, &headers, Vec::new(), status);
        let mut response = (code(status), "scripted answer").into_response();
        if let Some((name, value)) = header {
            response.headers_mut().insert(name, value);
        }
        return response;
    }
    if let Some(expected) = &shared.options.api_key {
        let given = headers.get("x-nuget-apikey").and_then(|v| v.to_str().ok());
        let status = match given {
            None => Some(401),
            Some(given) if given != expected => Some(403),
            Some(_) => None,
        };
        if let Some(status) = status {
            record(&shared, "PUT", &uri, &headers, Vec::new(), status);
            return (code(status), "The specified API key is invalid, has expired, or does not have permission")
                .into_response();
        }
    }
    let mut parts = Vec::new();
    let mut first: Option<Bytes> = None;
    loop {
        match body.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().map(str::to_string);
                let filename = field.file_name().map(str::to_string);
                let content_type = field.content_type().map(str::to_string);
                match field.bytes().await {
                    Ok(bytes) => {
                        parts.push(Part {
                            name,
                            filename,
                            content_type,
                            size: bytes.len() as u64,
                            sha512: base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes)),
                        });
                        first.get_or_insert(bytes);
                    }
                    Err(e) => return bad(&shared, &uri, &headers, parts, format!("unreadable part: {e}")),
                }
            }
            Ok(None) => break,
            Err(e) => return bad(&shared, &uri, &headers, parts, format!("not multipart/form-data: {e}")),
        }
    }
    let Some(package) = first else { return bad(&shared, &uri, &headers, parts, "no package part".into()) };
    let Some((id, version)) = identity(&package) else {
        return bad(&shared, &uri, &headers, parts, "the part is not a package with a .nuspec".into());
    };
    let key = (id.to_lowercase(), version.to_lowercase());
    let status = {
        let mut store = lock(&shared);
        match symbols {
            true => {
                store.symbols.insert(key, package.to_vec());
                201
            }
            false if store.packages.contains_key(&key) => 409,
            false => {
                store.packages.insert(key, package.to_vec());
                201
            }
        }
    };
    record(&shared, "PUT", &uri, &headers, parts, status);
    (code(status), "").into_response()
}

fn bad(shared: &Shared, uri: &Uri, headers: &HeaderMap, parts: Vec<Part>, why: String) -> Response {
    record(shared, "PUT", uri, headers, parts, 400);
    (StatusCode::BAD_REQUEST, why).into_response()
}

async fn flat(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Path((id, version, file)): Path<(String, String, String)>,
) -> Response {
    let expected = format!("{id}.{version}.nupkg");
    let found = (file == expected && id == id.to_lowercase() && version == version.to_lowercase())
        .then(|| lock(&shared).packages.get(&(id.clone(), version.clone())).cloned())
        .flatten();
    record(&shared, "GET", &uri, &headers, Vec::new(), if found.is_some() { 200 } else { 404 });
    match found {
        Some(bytes) => ([("content-type", "application/octet-stream")], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn fallback(State(shared): State<Shared>, uri: Uri, headers: HeaderMap, method: axum::http::Method) -> Response {
    record(&shared, method.as_str(), &uri, &headers, Vec::new(), 404);
    StatusCode::NOT_FOUND.into_response()
}

fn code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The id and version in a package's root `.nuspec`.
fn identity(package: &[u8]) -> Option<(String, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(package)).ok()?;
    let name = archive
        .file_names()
        .filter_map(|name| name.ok())
        .find(|name| !name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec"))?
        .into_owned();
    let mut text = String::new();
    archive.by_name(&name).ok()?.read_to_string(&mut text).ok()?;
    Some((element(&text, "id")?, element(&text, "version")?))
}

/// The text of the first `<tag>…</tag>` (test packages are simple).
fn element(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..end].trim().to_string())
}

/// A minimal package for tests: a zip with a root `.nuspec` (and `[Content_Types].xml`,
/// `_rels/.rels`, core properties), plus `lib/netstandard2.0/<id>.dll`, or for `symbols` a
/// `SymbolsPackage` with `lib/netstandard2.0/<id>.pdb` starting with "BSJB". `filler`
/// extra bytes make packages of a given size (stored, not compressed).
pub fn package_bytes(id: &str, version: &str, symbols: bool, filler: usize) -> Vec<u8> {
    use std::io::Write;
    let package_type =
        if symbols { "<packageTypes><packageType name=\"SymbolsPackage\" /></packageTypes>" } else { "" };
    let nuspec = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  \
         <metadata>\n    <id>{id}</id>\n    <version>{version}</version>\n    <authors>tests</authors>\n    \
         <description>Test package {id}</description>\n    {package_type}\n  </metadata>\n</package>\n"
    );
    let content_types = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" /><Default Extension=\"nuspec\" ContentType=\"application/octet\" /><Default Extension=\"dll\" ContentType=\"application/octet\" /><Default Extension=\"pdb\" ContentType=\"application/octet\" /></Types>";
    let rels = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" Target=\"/{id}.nuspec\" Id=\"R1\" /></Relationships>"
    );
    let psmdcp = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<coreProperties xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\"><dc:creator>tests</dc:creator>\
         <dc:identifier>{id}</dc:identifier><version>{version}</version></coreProperties>"
    );
    let mut body = if symbols { b"BSJB".to_vec() } else { b"MZ".to_vec() };
    body.resize(body.len() + filler, b'x');
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let lib = if symbols { format!("lib/netstandard2.0/{id}.pdb") } else { format!("lib/netstandard2.0/{id}.dll") };
    for (name, bytes) in [
        (format!("{id}.nuspec"), nuspec.into_bytes()),
        ("[Content_Types].xml".to_string(), content_types.as_bytes().to_vec()),
        ("_rels/.rels".to_string(), rels.into_bytes()),
        ("package/services/metadata/core-properties/0.psmdcp".to_string(), psmdcp.into_bytes()),
        (lib, body),
    ] {
        writer.start_file(name, options).expect("add a zip entry");
        writer.write_all(&bytes).expect("write a zip entry");
    }
    writer.finish().expect("finish the zip").into_inner()
}
