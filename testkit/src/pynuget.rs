//! A real NuGet v2 feed per test: pynuget 0.2.5 (Flask, from PyPI) on a free 127.0.0.1
//! port, with its own server directory, SQLite database and log in a temporary directory.
//! Killed when dropped.
//!
//! The venv it runs from is made once per machine in `target/testkit/venv-pynuget`
//! ([`ensure_pynuget_venv`]; `cargo xtask test` makes it before the tests run).
//!
//! What the feed does, checked here (see the tests at the bottom):
//! - push: a multipart `PUT <url>api/v2/package/` with the file in a form field named
//!   `package` and the key in `X-NuGet-ApiKey`. 201 when stored, 409 when that id and
//!   version are already there, 401 for a missing or wrong key. `api/v2/package` without
//!   the slash answers 308 to the slash spelling; `api/v2/` and `/` do not take pushes
//!   (404, 405). An upload without a `package` field is answered 409, not 400.
//! - v2 OData only: `FindPackagesById()?id='Id'` and `Packages(Id='Id',Version='1.0.0')`
//!   answer Atom feeds whose entries carry the content URL (`download/<n>/<version>`, n
//!   being pynuget's own row number, not the package id) and `d:PackageHash`, the
//!   base64 SHA-512 of the stored file. NuGet.exe installs from `url()` as the source.
//! - no symbol endpoint: a .snupkg pushed here is stored as an ordinary package, so it
//!   collides (409) with the nupkg of the same id and version.
//! - a stored package is `nuget_packages/<Id>/<version>.nupkg` under the server
//!   directory; an upload that is refused after parsing (409) stays behind in
//!   `nuget_packages/_temp/`. [`Pynuget::package_files`] lists only stored packages.
//! - its log has every request header, the API key included, at DEBUG level.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::programs::{describe, install_once, output, CURL, PYTHON3, PYTHON3_VENV_PACKAGE};
use crate::registry::{http_get, Request};
use crate::temp_dir;

/// What the venv holds. pynuget 0.2.5 needs Flask before 2.2 (it calls `send_file` with
/// `attachment_filename`, which 2.2 removed) and a Werkzeug to match. SQLAlchemy 2.x works
/// (checked with 2.1: push, duplicate, OData queries, download, NuGet.exe install), so it
/// is not pinned.
pub const PYNUGET_REQUIREMENTS: &[&str] = &["pynuget==0.2.5", "flask<2.2", "werkzeug<2.2"];
/// pynuget takes ~2.5 s to answer its first request here (its imports are slow).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The query parameter marking the harness's own requests, left out of [`Pynuget::requests`].
const HARNESS_QUERY: &str = "castoff-harness=";
/// Attempts at starting on a fresh free port (another process may take the port first).
const START_ATTEMPTS: usize = 5;
/// The server's stdout and stderr: Werkzeug's request lines and pynuget's console log.
const SERVER_LOG: &str = "server.log";
/// pynuget's own file log (the same messages, no request lines).
const PYNUGET_LOG: &str = "pynuget.log";
/// Where pynuget keeps packages, under its server directory (its `PACKAGE_DIR`).
const PACKAGE_DIR: &str = "nuget_packages";

/// Starts pynuget as recipes/07 does: the database tables are created first (pynuget's own
/// `init` would write an Apache config), then the Flask development server runs with the
/// given key. Everything it needs comes from the environment so no value is quoted into code.
const RUN_PY: &str = r#"
import os, sys
server = os.environ['CASTOFF_PYNUGET_DIR']
os.environ.update(PYNUGET_CONFIG_TYPE='LOCAL_DEV', PYNUGET_SERVER_PATH=server,
                  PYNUGET_LOG_PATH=os.path.join(server, 'pynuget.log'))
from sqlalchemy import create_engine
from pynuget import db, create_app
db.Base.metadata.create_all(create_engine('sqlite:///' + os.path.join(server, 'nuget_packages.sqlite')))
app = create_app()
app.config['API_KEYS'] = {os.environ['CASTOFF_PYNUGET_API_KEY']}
app.run(host='127.0.0.1', port=int(os.environ['CASTOFF_PYNUGET_PORT']), threaded=True)
"#;

/// The venv with pynuget, made once per machine (see [`install_once`]); panics saying what
/// failed. Returns the venv directory; its interpreter is `bin/python`.
pub fn ensure_pynuget_venv() -> PathBuf {
    try_ensure_pynuget_venv().unwrap_or_else(|failure| panic!("PYNUGET VENV COULD NOT BE MADE: {failure}"))
}

/// [`ensure_pynuget_venv`], returning what failed instead of panicking (for xtask).
pub fn try_ensure_pynuget_venv() -> Result<PathBuf, String> {
    let stamp = PYNUGET_REQUIREMENTS.join("\n");
    // A venv's python is a symlink to the interpreter that made it; if that interpreter
    // went away (another pyenv version), the venv is dead and is made again.
    let usable = |dir: &Path| dir.join("bin/python").exists();
    install_once("venv-pynuget", &stamp, usable, |staging| {
        let python = PYTHON3.path();
        let mut venv = Command::new(&python);
        venv.args(["-m", "venv"]).arg(staging);
        run(&mut venv).map_err(|failure| {
            format!(
                "{failure}\nDebian's python3 makes venvs only with the `{PYTHON3_VENV_PACKAGE}` package \
                 (`cargo xtask test` installs it)"
            )
        })?;
        let mut pip = Command::new(staging.join("bin/python"));
        pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"])
            .args(PYNUGET_REQUIREMENTS)
            .env("PIP_NO_INPUT", "1");
        run(&mut pip).map_err(|failure| format!("{failure}\n(the packages come from PyPI)"))
        // Moving the venv after this is fine: bin/python finds pyvenv.cfg next to itself and
        // we never run the venv's scripts (pip, activate), whose paths are absolute.
    })
}

/// Run `command`, `Err` with what ran and what it printed unless it exits 0.
fn run(command: &mut Command) -> Result<(), String> {
    let out = output(command.stdin(Stdio::null()));
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "`{}` failed ({}):\n{}{}",
            describe(command),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// A running pynuget feed. Dropping it kills the process.
pub struct Pynuget {
    child: Child,
    dir: TempDir,
    port: u16,
    api_key: String,
}

impl Pynuget {
    /// A feed that accepts pushes carrying `api_key`.
    pub fn start(api_key: &str) -> Pynuget {
        let venv = ensure_pynuget_venv();
        let dir = temp_dir();
        fs::write(dir.path().join("run.py"), RUN_PY).expect("write run.py");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let mut child = spawn(&venv, &dir, port, api_key);
            let failure = match wait_ready(&mut child, &dir, port) {
                Ok(()) => return Pynuget { child, dir, port, api_key: api_key.to_string() },
                Err(failure) => failure,
            };
            let _ = child.kill();
            let _ = child.wait();
            let log = log_of(&dir);
            if attempt < START_ATTEMPTS && log.contains("Address already in use") {
                continue;
            }
            panic!(
                "PYNUGET DID NOT START on 127.0.0.1:{port}: {failure} (attempt {attempt} of {START_ATTEMPTS})\n{}",
                tail(&log, 60)
            );
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `http://127.0.0.1:PORT/`, the feed's root: what NuGet.exe takes as `-Source` for both
    /// push and install.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `http://127.0.0.1:PORT/api/v2/package/`, where pushes go.
    pub fn push_url(&self) -> String {
        format!("{}api/v2/package/", self.url())
    }

    /// The key the feed accepts.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// pynuget's server directory (database, `nuget_packages/`, logs).
    pub fn server_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server printed (Werkzeug's request lines and pynuget's log).
    pub fn log(&self) -> String {
        log_of(&self.dir)
    }

    /// Every request the server answered so far, in order, leaving out the harness's own.
    ///
    /// Werkzeug writes a request's line just before it sends the status line, so every
    /// request whose answer a client has seen is already in the log.
    pub fn requests(&self) -> Vec<Request> {
        fs::read_to_string(self.dir.path().join(SERVER_LOG))
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.contains(HARNESS_QUERY))
            .filter_map(parse_request_line)
            .collect()
    }

    /// How many requests had this method and path (query ignored).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests().iter().filter(|r| r.method == method && r.path() == path).count()
    }

    /// The packages pynuget stored, sorted: `nuget_packages/<Id>/<version>.nupkg`, whatever
    /// was pushed (a .snupkg too). Uploads it refused are left out.
    pub fn package_files(&self) -> Vec<PathBuf> {
        let root = self.dir.path().join(PACKAGE_DIR);
        let mut files = Vec::new();
        let Ok(ids) = fs::read_dir(&root) else { return files };
        for id in ids.flatten().filter(|entry| entry.file_name() != "_temp") {
            let Ok(versions) = fs::read_dir(id.path()) else { continue };
            files.extend(versions.flatten().map(|entry| entry.path()).filter(|path| path.is_file()));
        }
        files.sort();
        files
    }

    /// `curl` pushing `package` as NuGet clients do (multipart PUT, field `package`, key in
    /// `X-NuGet-ApiKey`) to [`Pynuget::push_url`], printing only the HTTP status. For the
    /// harness's own checks and as the baseline castoff's push is measured against.
    pub fn curl_push(&self, package: &Path, api_key: &str) -> Command {
        curl_push_to(&self.push_url(), package, api_key)
    }

    /// Push `package` with [`Pynuget::curl_push`]; the HTTP status.
    pub fn push_with_curl(&self, package: &Path, api_key: &str) -> u16 {
        let mut command = self.curl_push(package, api_key);
        let out = output(&mut command);
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.trim().parse().unwrap_or_else(|_| {
            panic!(
                "`{}` gave no status ({}): {stdout}{}\n{}",
                describe(&command),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
        })
    }
}

impl Drop for Pynuget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("pynuget {} (the test failed):\n{}", self.url(), tail(&self.log(), 200));
        }
    }
}

/// `curl` sending `package` to `url` as a NuGet push (see [`Pynuget::curl_push`]).
pub fn curl_push_to(url: &str, package: &Path, api_key: &str) -> Command {
    let mut command = CURL.command();
    command
        .args(["--silent", "--show-error", "--output", "/dev/null", "--write-out", "%{http_code}"])
        .args(["--request", "PUT", "--header"])
        .arg(format!("X-NuGet-ApiKey: {api_key}"))
        .arg("--form")
        .arg(format!("package=@{}", package.display()))
        .arg(url);
    command
}

/// Start `run.py` from the venv on `port`, logging into `dir`.
fn spawn(venv: &Path, dir: &TempDir, port: u16, api_key: &str) -> Child {
    let log = fs::File::create(dir.path().join(SERVER_LOG)).expect("create the pynuget log");
    let log2 = log.try_clone().expect("clone the log handle");
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(dir.path().join("run.py"))
        .current_dir(dir.path())
        .env("CASTOFF_PYNUGET_DIR", dir.path())
        .env("CASTOFF_PYNUGET_PORT", port.to_string())
        .env("CASTOFF_PYNUGET_API_KEY", api_key)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    for (name, _) in std::env::vars_os().filter(|(name, _)| {
        let name = name.to_string_lossy();
        name.starts_with("FLASK_") || name.starts_with("PYNUGET_") || name == "PYTHONPATH" || name == "PYTHONHOME"
    }) {
        command.env_remove(name);
    }
    command.spawn().unwrap_or_else(|e| panic!("could not start `{}`: {e}", describe(&command)))
}

/// Poll until our process says it runs on `port` and `GET /` answers 200 (the log check
/// makes sure the answer is not from some other server that took the port first).
fn wait_ready(child: &mut Child, dir: &TempDir, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let running = format!("Running on http://127.0.0.1:{port}");
    let url = format!("http://127.0.0.1:{port}/?{HARNESS_QUERY}ready");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the process exited: {status}"));
        }
        if log_of(dir).contains(&running) && http_get(&url, None, None).is_ok_and(|r| r.status == 200) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no answer within {READY_TIMEOUT:?}"))
}

fn log_of(dir: &TempDir) -> String {
    let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    format!("--- pynuget stdout+stderr ---\n{}--- {PYNUGET_LOG} ---\n{}", read(SERVER_LOG), read(PYNUGET_LOG))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A port nothing listens on right now (the OS picks it; it may be taken again before use).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Werkzeug's request line, `127.0.0.1 - - [date] "PUT /api/v2/package/ HTTP/1.1" 201 -`,
/// which it colours with ANSI escapes even into a file.
fn parse_request_line(line: &str) -> Option<Request> {
    let plain = strip_ansi(line);
    let rest = plain.strip_prefix("127.0.0.1 - - [")?;
    let (_, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut words = request.split(' ');
    let (method, uri) = (words.next()?, words.next()?);
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(Request { method: method.to_string(), uri: uri.to_string(), status })
}

/// `text` without `ESC [ ... m` colour sequences.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nuget_exe::hand_made_package;

    #[test]
    fn request_lines_are_parsed_without_their_colours() {
        let line =
            "127.0.0.1 - - [22/Nov/2026 06:38:15] \"\u{1b}[31m\u{1b}[1mPUT /api/v2/package/ HTTP/1.1\u{1b}[0m\" 409 -";
        let request = parse_request_line(line).expect("a request line");
        assert_eq!(request, Request { method: "PUT".into(), uri: "/api/v2/package/".into(), status: 409 });
        assert_eq!(parse_request_line("2026-11-22T06:38:15.550Z [DEBUG   ] [core    ] parsing"), None);
    }

    /// The facts castoff's v2 push relies on, checked against the real server with curl.
    #[test]
    fn push_is_201_then_409_and_a_bad_key_is_401() {
        let feed = Pynuget::start("test-key");
        let work = temp_dir();
        let package = hand_made_package(work.path(), "Harness.Push", "1.0.0");

        assert_eq!(feed.push_with_curl(&package.nupkg, "wrong-key"), 401, "{}", feed.log());
        assert!(feed.package_files().is_empty());
        assert_eq!(feed.push_with_curl(&package.nupkg, "test-key"), 201, "{}", feed.log());
        assert_eq!(feed.push_with_curl(&package.nupkg, "test-key"), 409, "{}", feed.log());
        // No symbol endpoint: the snupkg is an ordinary package of the same id and version.
        assert_eq!(feed.push_with_curl(&package.snupkg, "test-key"), 409, "{}", feed.log());

        let stored = feed.server_dir().join("nuget_packages/Harness.Push/1.0.0.nupkg");
        assert_eq!(feed.package_files(), vec![stored.clone()]);
        assert_eq!(fs::read(&stored).unwrap(), fs::read(&package.nupkg).unwrap());
        let statuses: Vec<(String, String, u16)> =
            feed.requests().into_iter().map(|r| (r.method, r.uri, r.status)).collect();
        let put = |status| ("PUT".to_string(), "/api/v2/package/".to_string(), status);
        assert_eq!(statuses, vec![put(401), put(201), put(409), put(409)]);
        assert_eq!(feed.count("PUT", "/api/v2/package/"), 4);

        // The other spellings of the push URL (see the module comment).
        for (path, expected) in [("api/v2/package", "308"), ("api/v2/", "404"), ("", "405")] {
            let mut command = curl_push_to(&format!("{}{path}", feed.url()), &package.nupkg, "test-key");
            let status = String::from_utf8_lossy(&output(&mut command).stdout).into_owned();
            assert_eq!(status, expected, "PUT /{path}\n{}", feed.log());
        }
        assert_eq!(feed.count("PUT", "/api/v2/package"), 1);
    }

    /// A .snupkg on its own is stored like any package (the legacy-feed case).
    #[test]
    fn a_snupkg_is_stored_as_a_package() {
        let feed = Pynuget::start("test-key");
        let work = temp_dir();
        let package = hand_made_package(work.path(), "Harness.Symbols", "2.0.0");
        assert_eq!(feed.push_with_curl(&package.snupkg, "test-key"), 201, "{}", feed.log());
        let stored = feed.server_dir().join("nuget_packages/Harness.Symbols/2.0.0.nupkg");
        assert_eq!(feed.package_files(), vec![stored.clone()]);
        assert_eq!(fs::read(&stored).unwrap(), fs::read(&package.snupkg).unwrap());
    }
}
