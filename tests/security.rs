//! Transport security with real peers: TLS verification is on by default (a real
//! `openssl s_server` with a self-signed certificate is refused), and credentials never
//! cross plain HTTP to a host that is not loopback (a listener on this machine's own
//! non-loopback address records every byte that arrives).

use std::io::Read;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::TempRepo;

const KEY_ENV: &str = "CASTOFF_SECURITY_KEY";
const KEY: &str = "sekrit-feed-key-4242";

/// A project at 1.0.0 packing one small package, publishing to `feed_toml`.
fn package_project(feed_toml: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.0.0\n");
    repo.write("bin/Sec.Lib.dll", "MZ not really a dll");
    repo.write(
        "castoff.toml",
        format!(
            "[[package]]\nid = \"Sec.Lib\"\nauthors = \"castoff tests\"\ndescription = \"security\"\n\
             files = [{{ src = \"bin/Sec.Lib.dll\", target = \"lib/netstandard2.0\" }}]\nsymbols = \"none\"\n\n\
             [network]\nattempts = 1\ntimeout_seconds = 3\ntotal_seconds = 6\n\n{feed_toml}"
        ),
    );
    repo
}

/// A real TLS server (`openssl s_server -www`) with a freshly made self-signed
/// certificate, on a free loopback port.
struct SelfSignedServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl SelfSignedServer {
    fn start() -> SelfSignedServer {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for the TLS test (Debian: openssl)");
        assert!(made.success(), "openssl req failed");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "openssl s_server did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        SelfSignedServer { child, port, _dir: dir }
    }
}

impl Drop for SelfSignedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A feed behind a certificate no CA signed is refused: the push fails with a
/// certificate error, exit non-zero, the key is not shown, and nothing is published.
/// (Registries and feeds share one HTTP agent, so this covers both.)
#[test]
fn tls_verification_is_on_by_default() {
    let server = SelfSignedServer::start();
    let url = format!("https://127.0.0.1:{}/api/v2/package", server.port);
    let repo = package_project(&format!("[[feed]]\nname = \"tls\"\nurl = \"{url}\"\napi_key_env = \"{KEY_ENV}\"\n"));
    let output = repo.castoff(["publish"]).env(KEY_ENV, KEY).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a self-signed feed was accepted:\n{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "the error should say why: {stderr}");
    assert!(!stderr.contains(KEY) && !String::from_utf8_lossy(&output.stdout).contains(KEY));
}

/// This machine's own address on a non-loopback interface, if it has one.
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?; // TEST-NET-1: no packet is sent by connect
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A listener that keeps every byte any connection sends it.
fn recording_listener(ip: IpAddr) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
            });
        }
    });
    (port, seen)
}

/// A feed at `http://` on a host that is not loopback, without `insecure = true`, is
/// refused before any byte is sent; a registry there is spoken to over HTTPS only, so
/// its credentials never travel in clear text. The listener is a real socket on this
/// machine's own non-loopback address; it must never see the key or the password.
#[test]
fn credentials_never_cross_plain_http_to_a_remote_host() {
    let ip = non_loopback_address().expect(
        "this machine has no non-loopback address to play a remote host; the plain-HTTP credential test cannot run",
    );
    let (port, seen) = recording_listener(ip);
    let host = match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    };

    let feed =
        format!("[[feed]]\nname = \"remote\"\nurl = \"http://{host}/api/v2/package\"\napi_key_env = \"{KEY_ENV}\"\n");
    let repo = package_project(&feed);
    let output = repo.castoff(["publish"]).env(KEY_ENV, KEY).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("insecure"), "the fix names `insecure`");

    let docker = tempfile::tempdir().unwrap();
    let password = "sekrit-registry-password-4242";
    let auth = base64_encode(&format!("ci:{password}"));
    std::fs::write(docker.path().join("config.json"), format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{auth}\"}}}}}}"))
        .unwrap();
    let registry = TempRepo::new();
    registry.write("VERSION", "1.0.0\n");
    registry.write("app.txt", "app\n");
    registry.write(
        "castoff.toml",
        format!(
            "[image]\nname = \"{host}/team/app\"\nplatforms = [\"linux/amd64\"]\nbuilder = \"native\"\n\n\
             [image.native]\nfiles = [{{ src = \"app.txt\", dst = \"/app.txt\" }}]\n\n\
             [network]\nattempts = 1\ntimeout_seconds = 3\ntotal_seconds = 6\n"
        ),
    );
    let output = registry.castoff(["build"]).env("DOCKER_CONFIG", docker.path()).output().unwrap();
    assert!(!output.status.success(), "a build to a plain listener succeeded?");
    std::thread::sleep(Duration::from_millis(300));
    let bytes = seen.lock().unwrap().clone();
    assert_eq!(
        bytes.first(),
        Some(&0x16),
        "castoff should have opened a TLS handshake (record type 22), not plain HTTP"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(KEY), "the feed key crossed plain HTTP");
    assert!(!text.contains(password) && !text.contains(&auth), "registry credentials crossed plain HTTP");
    assert!(!text.contains("Authorization"), "an Authorization header crossed plain HTTP:\n{text}");
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
