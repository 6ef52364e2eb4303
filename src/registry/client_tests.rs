//! The client against scripted HTTP servers ([`super::testserver`]): the Bearer token
//! flow, Basic challenges, retries, redirects across hosts, digest checks, mounts and
//! uploads, and the request count. Distribution itself (anonymous and htpasswd Basic)
//! is exercised separately against the real `docker-registry`; these tests cover what
//! it cannot produce on demand.

use std::io::Cursor;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oci_spec::image::{Digest, MediaType};

use super::client::{Client, ClientOptions, RegistryError, RetryPolicy};
use super::credentials::CredentialEnv;
use super::reference::Reference;
use super::testserver::{Canned, Seen, TestServer};
use crate::secret::Secret;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha256(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    let hex: String = sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    Digest::from_str(&format!("sha256:{hex}")).unwrap()
}

fn fast_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        total: Duration::from_secs(10),
    }
}

fn client_with(env: CredentialEnv, attempts: u32) -> Client {
    let options = ClientOptions { retry: fast_policy(attempts), timeout: Duration::from_secs(5), ..Default::default() };
    Client::with_credential_env(options, env)
}

fn anonymous() -> Client {
    client_with(CredentialEnv::default(), 3)
}

fn with_credentials(user: &str, pass: &str) -> Client {
    let env = CredentialEnv { username: Some(user.into()), password: Some(Secret::new(pass)), ..Default::default() };
    client_with(env, 3)
}

fn reference(server: &TestServer, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", server.authority())).unwrap()
}

fn manifest_reply() -> Canned {
    Canned::status(200)
        .header("Content-Type", INDEX)
        .header("Docker-Content-Digest", sha256(MANIFEST).to_string())
        .body(MANIFEST)
}

/// A registry whose API wants `Bearer tok-<n>` tokens from its own `/token` realm, which
/// issues one per request (requiring `user:pass` when `require_basic`).
fn bearer_registry(require_basic: bool) -> (TestServer, Arc<AtomicUsize>) {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&issued);
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = Arc::clone(&port);
    let server = TestServer::start(move |seen: &Seen| {
        let port = port_in.load(Ordering::SeqCst);
        if seen.path() == "/token" {
            if require_basic && seen.header("authorization") != Some("Basic dXNlcjpwYXNz") {
                return Canned::status(401).body(r#"{"details":"incorrect username or password"}"#);
            }
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            return Canned::status(200).body(format!(r#"{{"token":"tok-{n}","expires_in":300}}"#));
        }
        let authorized = seen.header("authorization").is_some_and(|a| a.starts_with("Bearer tok-"));
        if !authorized {
            return Canned::status(401).header(
                "WWW-Authenticate",
                format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="test-registry",scope="ignored:x:pull""#
                ),
            );
        }
        match (seen.method.as_str(), seen.path()) {
            ("GET" | "HEAD", "/v2/team/app/manifests/1.0") => manifest_reply(),
            ("PUT", "/v2/team/app/manifests/2.0") => {
                Canned::status(201).header("Docker-Content-Digest", sha256(&seen.body).to_string())
            }
            ("POST", "/v2/team/app/blobs/uploads/") => Canned::status(201),
            _ => Canned::status(404),
        }
    });
    port.store(server.addr.port() as usize, Ordering::SeqCst);
    (server, issued)
}

#[test]
fn client_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
}

#[test]
fn bearer_flow_fetches_a_token_with_basic_credentials_then_reuses_it() {
    let (server, issued) = bearer_registry(true);
    let client = with_credentials("user", "pass");
    let reference = reference(&server, "team/app:1.0");

    let fetched = client.get_manifest(&reference).unwrap();
    assert_eq!(fetched.bytes, MANIFEST);
    assert_eq!(fetched.media_type, MediaType::ImageIndex);
    assert_eq!(fetched.digest, sha256(MANIFEST));
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "401, token, retry: {seen:#?}");
    assert_eq!(client.requests(), 3);
    assert_eq!(seen[0].header("authorization"), None, "anonymous first");
    assert_eq!(seen[1].target, "/token?service=test-registry&scope=repository:team/app:pull&scope=ignored:x:pull");
    assert_eq!(seen[1].header("authorization"), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(seen[2].header("authorization"), Some("Bearer tok-1"));
    assert!(seen[2].header("accept").is_some_and(|a| a.starts_with(INDEX)), "{:?}", seen[2].header("accept"));

    // Same scope: the cached token goes up front. A new scope fetches its own token up
    // front, without another 401.
    let found = client.head_manifest(&reference).unwrap().unwrap();
    assert_eq!((found.digest, found.size), (sha256(MANIFEST), MANIFEST.len() as u64));
    assert_eq!(client.requests(), 5, "token for the pull scope (the 401's scope was merged), then HEAD");
    let digest = client.put_manifest(&reference.with_tag("2.0").unwrap(), &MediaType::ImageIndex, MANIFEST).unwrap();
    assert_eq!(digest, sha256(MANIFEST));
    let seen = server.seen();
    assert_eq!(seen.len(), 7);
    assert_eq!(seen[5].target, "/token?service=test-registry&scope=repository:team/app:pull%2Cpush");
    assert_eq!(seen[6].method, "PUT");
    assert_eq!(seen[6].header("content-type"), Some(INDEX));
    assert_eq!(seen[6].body, MANIFEST);
    assert_eq!(issued.load(Ordering::SeqCst), 3);
    client.get_manifest(&reference.with_tag("1.0").unwrap()).unwrap();
    assert_eq!(client.requests(), 8, "the pull token fetched up front is cached");
}

#[test]
fn bearer_tokens_are_fetched_anonymously_without_credentials() {
    let (server, _) = bearer_registry(false);
    let client = anonymous();
    client.get_manifest(&reference(&server, "team/app:1.0")).unwrap();
    let seen = server.seen();
    assert_eq!(seen[1].path(), "/token");
    assert_eq!(seen[1].header("authorization"), None);
}

#[test]
fn refused_token_is_denied_naming_the_source_but_not_the_secret() {
    let (server, _) = bearer_registry(true);
    let client = with_credentials("user", "wrong-password");
    let error = client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err();
    match &error {
        RegistryError::Denied { status: 401, credential_source, registry } => {
            assert_eq!(credential_source, "CASTOFF_REGISTRY_USERNAME/PASSWORD");
            assert_eq!(registry, &server.authority());
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{error} {error:?} {}", error.hint()).contains("wrong-password"));
}

/// A registry with Basic auth, like distribution with htpasswd.
fn basic_registry() -> TestServer {
    TestServer::start(|seen: &Seen| match seen.header("authorization") {
        Some("Basic dXNlcjpwYXNz") => match seen.path() {
            "/v2/team/app/blobs/sha256:present" => Canned::status(200),
            _ => Canned::status(404),
        },
        _ => Canned::status(401).header("WWW-Authenticate", r#"Basic realm="basic-realm""#),
    })
}

#[test]
fn basic_challenge_is_answered_then_credentials_go_up_front() {
    let server = basic_registry();
    let client = with_credentials("user", "pass");
    let repository = reference(&server, "team/app");
    let missing = Digest::from_str(&format!("sha256:{}", "0".repeat(64))).unwrap();
    assert!(!client.has_blob(&repository, &missing).unwrap());
    assert_eq!(client.requests(), 2, "401 then the answer");
    assert!(!client.has_blob(&repository, &missing).unwrap());
    assert_eq!(client.requests(), 3, "Basic sent up front");
    assert!(server.seen()[2].header("authorization").is_some());
}

#[test]
fn basic_challenge_without_credentials_is_denied_as_anonymous() {
    let server = basic_registry();
    let client = anonymous();
    let error = client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err();
    match error {
        RegistryError::Denied { status: 401, credential_source, .. } => {
            assert_eq!(credential_source, "no credentials (anonymous)")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.requests(), 1, "no point retrying without credentials");
}

#[test]
fn wrong_basic_credentials_are_tried_once() {
    let server = basic_registry();
    let client = with_credentials("user", "nope");
    let error = client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err();
    assert!(matches!(error, RegistryError::Denied { status: 401, .. }), "{error:?}");
    assert_eq!(client.requests(), 2);
}

#[test]
fn retries_503_and_429_honouring_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = TestServer::start(move |_: &Seen| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => Canned::status(503).header("Retry-After", "0"),
        1 => Canned::status(429).header("Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"),
        _ => manifest_reply(),
    });
    let client = anonymous();
    client.get_manifest(&reference(&server, "team/app:1.0")).unwrap();
    assert_eq!(client.requests(), 3);
}

#[test]
fn gives_up_after_the_policy_attempts_with_the_last_status() {
    let server = TestServer::start(|_: &Seen| Canned::status(502).body("bad gateway"));
    let client = anonymous();
    match client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err() {
        RegistryError::Status { status: 502, method, body, .. } => {
            assert_eq!(method, "GET");
            assert_eq!(body, "bad gateway");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.requests(), 3);
}

#[test]
fn other_errors_are_not_retried_and_bodies_are_scrubbed() {
    let server = TestServer::start(|_: &Seen| {
        Canned::status(501).body("oops, token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Zm9vYmFyYmF6cXV4MTIzNDU2 leaked")
    });
    let client = anonymous();
    match client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err() {
        RegistryError::Status { status: 501, body, url, .. } => {
            assert_eq!(body, "oops, token **** leaked");
            assert_eq!(url, format!("http://{}/v2/team/app/manifests/1.0", server.authority()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.requests(), 1);
}

#[test]
fn connection_refused_is_unreachable_after_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = anonymous();
    let reference = Reference::parse(&format!("127.0.0.1:{port}/team/app:1.0")).unwrap();
    match client.get_manifest(&reference).unwrap_err() {
        RegistryError::Unreachable { registry, attempts, .. } => {
            assert_eq!(registry, format!("127.0.0.1:{port}"));
            assert_eq!(attempts, 3);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.requests(), 3);
}

#[test]
fn truncated_bodies_are_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let server = TestServer::start(move |_: &Seen| match counter.fetch_add(1, Ordering::SeqCst) {
        0 => manifest_reply().truncated(MANIFEST.len() + 50),
        _ => manifest_reply(),
    });
    let client = anonymous();
    assert_eq!(client.get_manifest(&reference(&server, "team/app:1.0")).unwrap().bytes, MANIFEST);
    assert_eq!(client.requests(), 2);
}

#[test]
fn redirects_to_another_host_carry_no_authorization() {
    let blob = b"layer bytes".to_vec();
    let digest = sha256(&blob);
    let storage = {
        let blob = blob.clone();
        TestServer::start(move |_: &Seen| Canned::status(200).body(blob.clone()))
    };
    // `localhost` and `127.0.0.1` are different origins, though both loopback.
    let storage_url = format!("http://localhost:{}/bucket/blob?sig=s3cr3t", storage.addr.port());
    let registry = TestServer::start(move |seen: &Seen| {
        if seen.header("authorization") != Some("Basic dXNlcjpwYXNz") {
            return Canned::status(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        match seen.path() {
            p if p.starts_with("/v2/team/app/blobs/") => Canned::status(307).header("Location", "/redirected"),
            "/redirected" => Canned::status(302).header("Location", storage_url.clone()),
            _ => Canned::status(404),
        }
    });
    let client = with_credentials("user", "pass");
    let body = client.get_blob(&reference(&registry, "team/app"), &digest, 1024).unwrap();
    assert_eq!(body, blob);
    let on_registry = registry.seen();
    assert_eq!(on_registry.len(), 3, "401, blob (307), same-host redirect (302)");
    assert_eq!(on_registry[2].path(), "/redirected");
    assert_eq!(on_registry[2].header("authorization"), Some("Basic dXNlcjpwYXNz"), "same origin keeps it");
    let on_storage = storage.seen();
    assert_eq!(on_storage.len(), 1);
    assert_eq!(on_storage[0].target, "/bucket/blob?sig=s3cr3t");
    assert_eq!(on_storage[0].header("authorization"), None, "another host gets no credentials");
    assert_eq!(client.requests(), 4);
}

#[test]
fn redirects_are_limited() {
    let server = TestServer::start(|_: &Seen| Canned::status(302).header("Location", "/again"));
    let client = anonymous();
    let error = client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("more than 5 redirects")));
    assert_eq!(client.requests(), 6);
}

#[test]
fn blob_digest_and_limit_are_checked() {
    let server = TestServer::start(|_: &Seen| Canned::status(200).body("not what you asked for"));
    let client = anonymous();
    let repository = reference(&server, "team/app");
    let error = client.get_blob(&repository, &sha256(b"something else"), 1024).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("hash to")), "{error:?}");
    let error = client.get_blob(&repository, &sha256(b"not what you asked for"), 5).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("5-byte limit")), "{error:?}");
}

#[test]
fn manifest_digests_are_cross_checked() {
    let wrong = sha256(b"other");
    let server = TestServer::start(move |seen: &Seen| match seen.path() {
        "/v2/team/app/manifests/bad-header" => Canned::status(200)
            .header("Content-Type", INDEX)
            .header("Docker-Content-Digest", wrong.to_string())
            .body(MANIFEST),
        "/v2/team/app/manifests/huge" => Canned::status(200).truncated(5 << 20),
        "/v2/team/app/manifests/untyped" => Canned::status(200).body(MANIFEST),
        _ => Canned::status(200).header("Content-Type", INDEX).body(MANIFEST),
    });
    let client = anonymous();
    let error = client.get_manifest(&reference(&server, "team/app:bad-header")).unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("the registry says")),
        "{error:?}"
    );

    let by_digest = reference(&server, &format!("team/app@{}", sha256(b"other")));
    let error = client.get_manifest(&by_digest).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("should have digest")));

    let good = reference(&server, &format!("team/app@{}", sha256(MANIFEST)));
    assert_eq!(client.get_manifest(&good).unwrap().digest, sha256(MANIFEST));

    let error = client.get_manifest(&reference(&server, "team/app:huge")).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("4194304-byte limit")));

    let untyped = client.get_manifest(&reference(&server, "team/app:untyped")).unwrap();
    assert_eq!(untyped.media_type, MediaType::ImageIndex, "taken from the manifest's mediaType");
}

#[test]
fn missing_manifests() {
    let server = TestServer::start(|_: &Seen| Canned::status(404).body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#));
    let client = anonymous();
    let reference = reference(&server, "team/app:1.0");
    assert_eq!(client.head_manifest(&reference).unwrap(), None);
    match client.get_manifest(&reference).unwrap_err() {
        RegistryError::NotFound { what } => assert_eq!(what, format!("manifest {reference}")),
        other => panic!("{other:?}"),
    }
    let untagged = Reference::parse(&format!("{}/team/app", server.authority())).unwrap();
    assert!(matches!(client.get_manifest(&untagged), Err(RegistryError::Protocol { .. })));
}

#[test]
fn plain_http_realm_on_a_remote_host_is_refused() {
    let server = TestServer::start(|_: &Seen| {
        Canned::status(401).header("WWW-Authenticate", r#"Bearer realm="http://auth.example.com/token",service="s""#)
    });
    let client = with_credentials("user", "pass");
    let error = client.get_manifest(&reference(&server, "team/app:1.0")).unwrap_err();
    assert!(
        matches!(&error, RegistryError::InsecureRefused { registry } if registry == "auth.example.com"),
        "{error:?}"
    );
    assert_eq!(client.requests(), 1, "nothing was sent to the plain-HTTP realm");
}

#[test]
fn mount_declined_cancels_its_session_and_asks_for_both_scopes() {
    let (server, _) = bearer_registry(false);
    let client = anonymous();
    let repository = reference(&server, "team/app");
    let digest = sha256(b"blob");
    assert!(client.mount_blob(&repository, &digest, "team/base").unwrap(), "201 means mounted");
    let seen = server.seen();
    assert_eq!(seen[0].target, format!("/v2/team/app/blobs/uploads/?mount={digest}&from=team/base"));
    assert_eq!(
        seen[1].target,
        "/token?service=test-registry&scope=repository:team/app:pull%2Cpush&scope=repository:team/base:pull\
         &scope=ignored:x:pull"
    );

    let declined = TestServer::start(|seen: &Seen| match seen.method.as_str() {
        "POST" => Canned::status(202).header("Location", "/v2/team/app/blobs/uploads/session-1?_state=abc"),
        "DELETE" => Canned::status(204),
        _ => Canned::status(400),
    });
    let client = anonymous();
    assert!(!client.mount_blob(&reference(&declined, "team/app"), &digest, "team/base").unwrap());
    let seen = declined.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[1].method.as_str(), seen[1].target.as_str()),
        ("DELETE", "/v2/team/app/blobs/uploads/session-1?_state=abc")
    );
}

/// A registry that takes monolithic uploads; `fail_puts` PUTs answer 503 first.
fn upload_registry(fail_puts: usize, have: Option<Digest>) -> TestServer {
    let puts = Arc::new(AtomicUsize::new(0));
    TestServer::start(move |seen: &Seen| match seen.method.as_str() {
        "HEAD" if have.as_ref().is_some_and(|d| seen.path().ends_with(d.as_ref())) => Canned::status(200),
        "HEAD" => Canned::status(404),
        "POST" => Canned::status(202).header("Location", "/v2/team/app/blobs/uploads/u1?_state=st"),
        "PUT" if puts.fetch_add(1, Ordering::SeqCst) < fail_puts => Canned::status(503),
        "PUT" => {
            let Some(digest) = seen.target.split("digest=").nth(1) else { return Canned::status(400) };
            if digest != sha256(&seen.body).to_string() {
                return Canned::status(400).body(r#"{"errors":[{"code":"DIGEST_INVALID"}]}"#);
            }
            Canned::status(201).header("Docker-Content-Digest", digest)
        }
        _ => Canned::status(405),
    })
}

#[test]
fn push_blob_heads_posts_and_streams_the_put() {
    let blob = b"some layer".to_vec();
    let digest = sha256(&blob);
    let server = upload_registry(0, None);
    let client = anonymous();
    client.push_blob(&reference(&server, "team/app"), &digest, blob.len() as u64, &mut blob.as_slice()).unwrap();
    let seen = server.seen();
    let methods: Vec<&str> = seen.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(methods, ["HEAD", "POST", "PUT"]);
    assert_eq!(seen[1].header("content-length"), Some("0"));
    assert_eq!(seen[2].target, format!("/v2/team/app/blobs/uploads/u1?_state=st&digest={digest}"));
    assert_eq!(seen[2].header("content-length"), Some("10"));
    assert_eq!(seen[2].header("content-type"), Some("application/octet-stream"));
    assert_eq!(seen[2].body, blob);
}

#[test]
fn push_blob_skips_what_the_registry_has() {
    let digest = sha256(b"x");
    let server = upload_registry(0, Some(digest.clone()));
    let client = anonymous();
    client.push_blob(&reference(&server, "team/app"), &digest, 1, &mut &b"x"[..]).unwrap();
    assert_eq!(client.requests(), 1);
}

#[test]
fn a_consumed_one_shot_body_is_not_replayed_but_a_seekable_one_is() {
    let blob = b"layer".to_vec();
    let digest = sha256(&blob);

    let server = upload_registry(1, None);
    let client = anonymous();
    let error = client.push_blob(&reference(&server, "team/app"), &digest, 5, &mut blob.as_slice()).unwrap_err();
    assert!(matches!(error, RegistryError::Status { status: 503, .. }), "{error:?}");
    assert_eq!(client.requests(), 3, "HEAD, POST, PUT: the body is gone");

    let server = upload_registry(1, None);
    let client = anonymous();
    let mut body = Cursor::new(blob.clone());
    client.push_blob_seekable(&reference(&server, "team/app"), &digest, 5, &mut body).unwrap();
    let methods: Vec<String> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["HEAD", "POST", "PUT", "POST", "PUT"], "a whole new session");
    assert_eq!(server.seen()[4].body, blob);
}

#[test]
fn push_blob_explains_bodies_that_do_not_match() {
    let server = upload_registry(0, None);
    let client = anonymous();
    let repository = reference(&server, "team/app");
    let error = client.push_blob(&repository, &sha256(b"layer"), 5, &mut &b"LAYER"[..]).unwrap_err();
    assert!(matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("hash to")), "{error:?}");
    let error = client.push_blob(&repository, &sha256(b"layer"), 5, &mut &b"lay"[..]).unwrap_err();
    assert!(
        matches!(&error, RegistryError::Protocol { problem, .. } if problem.contains("ended after 3 of 5 bytes")),
        "{error:?}"
    );
}

#[test]
fn put_by_tag_when_the_reference_also_has_a_digest() {
    let server = TestServer::start(|_: &Seen| Canned::status(201));
    let client = anonymous();
    let pinned = reference(&server, &format!("team/app:2.0@{}", sha256(MANIFEST)));
    assert_eq!(client.put_manifest(&pinned, &MediaType::ImageIndex, MANIFEST).unwrap(), sha256(MANIFEST));
    assert_eq!(server.seen()[0].path(), "/v2/team/app/manifests/2.0");
    let error = client.put_manifest(&pinned, &MediaType::ImageIndex, b"{}").unwrap_err();
    assert!(matches!(error, RegistryError::Protocol { .. }), "{error:?}");
    assert_eq!(client.requests(), 1, "bytes that do not match the digest are not sent");
}

#[test]
fn one_client_serves_many_threads() {
    let (server, issued) = bearer_registry(true);
    let client = with_credentials("user", "pass");
    let reference = reference(&server, "team/app:1.0");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(client.get_manifest(&reference).unwrap().bytes, MANIFEST);
                }
            });
        }
    });
    assert_eq!(client.requests(), server.seen().len(), "every request sent is counted");
    assert!(issued.load(Ordering::SeqCst) <= 16, "tokens are shared, not fetched per request");
}
