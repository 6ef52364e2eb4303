//! `castoff manifest` against Debian's real docker-registry, with per-platform images
//! pushed by skopeo, results read back with skopeo and the registry's access log, and
//! compared with what the real `docker manifest` CLI makes from the same sources.

use castoff::platform::Platform;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::docker::DockerCli;
use crate::support::images::{
    oci_layout_attested_index, oci_layout_image, push_index_with_skopeo, push_with_skopeo, skopeo_inspect_raw, Format,
    DOCKER_MANIFEST_LIST, OCI_INDEX,
};
use crate::support::registry::Registry;
use crate::support::{json_line, temp_dir, TempRepo};

const THREE: [&str; 3] = ["linux/amd64", "linux/arm/v6", "linux/arm/v7"];

/// A project at `version` whose `[image]` is `app` on `registry` for `platforms`,
/// committed (so revision and created annotations exist). `extra` goes into [image].
fn project(registry_host: &str, version: &str, platforms: &[&str], extra: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", format!("{version}\n"));
    let listed: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
    repo.write(
        "castoff.toml",
        format!(
            "[version]\n\n[image]\nname = \"{registry_host}/app\"\nplatforms = [{}]\n{extra}\n\n\
             [network]\nattempts = 2\ntimeout_seconds = 5\ntotal_seconds = 10\n",
            listed.join(", ")
        ),
    );
    repo.commit_all();
    repo
}

/// Per-platform images built into an OCI layout, for pushing under any tag.
struct Images {
    layout: TempDir,
}

impl Images {
    fn new() -> Images {
        Images { layout: temp_dir() }
    }

    /// Build an image whose config says `actual` and push it as `app:<version>-<suffix
    /// of claimed>`; returns the pushed manifest digest.
    fn push_as(&self, registry: &Registry, version: &str, claimed: &str, actual: &str, format: Format) -> String {
        let tag = format!("{version}-{}", suffix(claimed));
        oci_layout_image(self.layout.path(), &tag, actual);
        push_with_skopeo(self.layout.path(), &tag, &registry.reference(&format!("app:{tag}")), format)
    }

    fn push_all(&self, registry: &Registry, version: &str, platforms: &[&str], format: Format) -> Vec<String> {
        platforms.iter().map(|p| self.push_as(registry, version, p, p, format)).collect()
    }
}

fn suffix(platform: &str) -> String {
    Platform::parse(platform).expect("test platform").suffix()
}

fn manifest_json(repo: &TempRepo, extra: &[&str]) -> Value {
    let mut args = vec!["manifest"];
    args.extend_from_slice(extra);
    repo.ok_json(&args)
}

/// The platforms of an index as `os/arch[/variant]`, and the child digests.
fn children(index: &Value) -> Vec<(String, String)> {
    let entries = index["manifests"].as_array().expect("an index has manifests");
    entries
        .iter()
        .map(|entry| {
            let p = &entry["platform"];
            let mut platform =
                format!("{}/{}", p["os"].as_str().unwrap_or(""), p["architecture"].as_str().unwrap_or(""));
            if let Some(variant) = p["variant"].as_str() {
                platform.push_str(&format!("/{variant}"));
            }
            (platform, entry["digest"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// Three OCI platform images become one OCI index under `latest` and the version,
/// with OCI variants, the pushed child digests and the standard annotations.
#[test]
fn joins_platform_images_into_an_annotated_oci_index() {
    let registry = Registry::start();
    let images = Images::new();
    let digests = images.push_all(&registry, "1.4.0", &THREE, Format::Oci);
    let repo = project(registry.host(), "1.4.0", &THREE, "annotations = { \"org.example.team\" = \"infra\" }");

    let outcome = manifest_json(&repo, &[]);

    let tags: Vec<&str> = outcome["tags"].as_array().unwrap().iter().map(|t| t["tag"].as_str().unwrap()).collect();
    assert_eq!(tags, ["latest", "1.4.0"], "{outcome}");
    for tag in ["latest", "1.4.0"] {
        let raw = skopeo_inspect_raw(&registry.reference(&format!("app:{tag}")));
        assert_eq!(raw["mediaType"], OCI_INDEX, "{raw}");
        let expected: Vec<(String, String)> =
            THREE.iter().map(|p| p.to_string()).zip(digests.iter().cloned()).collect();
        assert_eq!(children(&raw), expected);
        let annotations = &raw["annotations"];
        assert_eq!(annotations["org.opencontainers.image.version"], "1.4.0");
        assert_eq!(annotations["org.example.team"], "infra");
        assert_eq!(annotations["org.opencontainers.image.revision"], repo.git(&["rev-parse", "HEAD"]).trim());
        assert!(annotations["org.opencontainers.image.created"].as_str().is_some_and(|c| c.starts_with("20")));
    }
    let latest = registry.get("/v2/app/manifests/latest");
    assert_eq!(Some(outcome["digest"].as_str().unwrap().to_string()), latest.digest);
}

/// From Docker v2s2 sources castoff makes a Docker manifest list with the same
/// platforms and children as the real `docker manifest` CLI does.
#[test]
fn matches_what_docker_manifest_makes() {
    let registry = Registry::start();
    let images = Images::new();
    let digests = images.push_all(&registry, "2.0.0", &THREE, Format::V2s2);
    let repo = project(registry.host(), "2.0.0", &THREE, "tags = [\"{version}\"]");
    manifest_json(&repo, &[]);
    let ours = skopeo_inspect_raw(&registry.reference("app:2.0.0"));

    let sources: Vec<(String, &str)> =
        THREE.iter().map(|p| (registry.reference(&format!("app:2.0.0-{}", suffix(p))), *p)).collect();
    let sources: Vec<(&str, &str)> = sources.iter().map(|(r, p)| (r.as_str(), *p)).collect();
    DockerCli::new().manifest_push(&registry.reference("app:by-docker"), &sources);
    let docker = skopeo_inspect_raw(&registry.reference("app:by-docker"));

    assert_eq!(ours["mediaType"], DOCKER_MANIFEST_LIST, "{ours}");
    assert_eq!(docker["mediaType"], DOCKER_MANIFEST_LIST, "{docker}");
    let mut ours_children = children(&ours);
    let mut docker_children = children(&docker);
    ours_children.sort();
    docker_children.sort();
    assert_eq!(ours_children, docker_children);
    let pushed: Vec<String> = ours_children.iter().map(|(_, d)| d.clone()).collect();
    let mut expected = digests.clone();
    expected.sort();
    let mut pushed_sorted = pushed;
    pushed_sorted.sort();
    assert_eq!(pushed_sorted, expected);
}

/// A second run finds every tag up to date and pushes nothing; the registry's access
/// log shows exactly one manifest PUT per tag across both runs.
#[test]
fn rerun_pushes_nothing() {
    let registry = Registry::start();
    Images::new().push_all(&registry, "1.0.0", &THREE, Format::Oci);
    let repo = project(registry.host(), "1.0.0", &THREE, "");
    let first = manifest_json(&repo, &[]);
    let second = manifest_json(&repo, &[]);
    for tag in second["tags"].as_array().unwrap() {
        assert_eq!(tag["status"], "up-to-date", "{second}");
    }
    assert_eq!(first["digest"], second["digest"]);
    for tag in ["latest", "1.0.0"] {
        assert_eq!(registry.count("PUT", &format!("/v2/app/manifests/{tag}")), 1, "{}", registry.log());
    }
}

/// `latest` moves to a new release; the version tag never moves without --force, and
/// a refused run pushes nothing at all.
#[test]
fn version_tags_are_immutable_and_moving_tags_move() {
    let registry = Registry::start();
    let images = Images::new();
    images.push_all(&registry, "1.0.0", &THREE, Format::Oci);
    let repo = project(registry.host(), "1.0.0", &THREE, "");
    let released = manifest_json(&repo, &[]);
    let released_digest = released["digest"].as_str().unwrap().to_string();

    // Rebuild one platform differently under the same tag (its config now lacks the
    // variant): a different child, so a different index.
    images.push_as(&registry, "1.0.0", "linux/arm/v7", "linux/arm", Format::Oci);
    let puts_before = registry.count("PUT", "/v2/app/manifests/latest");
    let refused = repo.castoff(["manifest"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(stderr.contains(&released_digest), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(registry.count("PUT", "/v2/app/manifests/latest"), puts_before, "latest must not move either");

    let forced = manifest_json(&repo, &["--force"]);
    assert_ne!(forced["digest"], released["digest"], "{forced}");
    let replaced = registry.get("/v2/app/manifests/1.0.0");
    assert_eq!(replaced.digest.as_deref(), forced["digest"].as_str());
}

/// A per-platform source that is a buildx-style index (image + attestation) is
/// unwrapped: the release index points at the image, not at the attestation.
#[test]
fn attested_sources_are_unwrapped() {
    let registry = Registry::start();
    let images = Images::new();
    images.push_as(&registry, "3.1.0", "linux/amd64", "linux/amd64", Format::Oci);
    let tag = format!("3.1.0-{}", suffix("linux/arm64"));
    let attested = oci_layout_attested_index(images.layout.path(), &tag, "linux/arm64");
    push_index_with_skopeo(images.layout.path(), &tag, &registry.reference(&format!("app:{tag}")));
    let repo = project(registry.host(), "3.1.0", &["linux/amd64", "linux/arm64"], "");

    manifest_json(&repo, &[]);

    let raw = skopeo_inspect_raw(&registry.reference("app:3.1.0"));
    let found = children(&raw);
    assert_eq!(found[1], ("linux/arm64".to_string(), attested.image.clone()), "{raw}");
    assert!(!found.iter().any(|(_, d)| *d == attested.attestation));
}

/// An image config without a variant gets the configured one; a config that says
/// another platform is an error naming both, and nothing is pushed.
#[test]
fn platforms_come_from_image_configs() {
    let registry = Registry::start();
    let images = Images::new();
    images.push_as(&registry, "1.0.0", "linux/amd64", "linux/amd64", Format::Oci);
    images.push_as(&registry, "1.0.0", "linux/arm/v7", "linux/arm", Format::Oci);
    let repo = project(registry.host(), "1.0.0", &["linux/amd64", "linux/arm/v7"], "");
    manifest_json(&repo, &[]);
    let raw = skopeo_inspect_raw(&registry.reference("app:1.0.0"));
    assert_eq!(children(&raw)[1].0, "linux/arm/v7", "{raw}");

    images.push_as(&registry, "1.0.1", "linux/amd64", "linux/amd64", Format::Oci);
    images.push_as(&registry, "1.0.1", "linux/arm/v7", "linux/arm64", Format::Oci);
    repo.write("VERSION", "1.0.1\n");
    let failed = repo.castoff(["manifest"]).assert().failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).to_string();
    assert!(stderr.contains("linux/arm64") && stderr.contains("linux/arm/v7"), "{stderr}");
    assert_eq!(registry.count("PUT", "/v2/app/manifests/1.0.1"), 0);
}

/// A platform with no image names the platform and the tag it looked for, and
/// nothing is pushed.
#[test]
fn missing_platform_image_is_named() {
    let registry = Registry::start();
    Images::new().push_all(&registry, "1.0.0", &["linux/amd64"], Format::Oci);
    let repo = project(registry.host(), "1.0.0", &["linux/amd64", "linux/arm/v6"], "");
    let failed = repo.castoff(["--json", "manifest"]).assert().failure();
    let output = failed.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("linux/arm/v6") && stderr.contains("1.0.0-armv6"), "{stderr}");
    assert!(json_line(&output.stdout)["error"]["hint"].as_str().is_some());
    assert_eq!(registry.count("PUT", "/v2/app/manifests/latest"), 0);
}

/// `--dry-run` reads the sources, prints the index and the writes, and pushes nothing.
#[test]
fn dry_run_pushes_nothing() {
    let registry = Registry::start();
    Images::new().push_all(&registry, "1.0.0", &THREE, Format::Oci);
    let repo = project(registry.host(), "1.0.0", &THREE, "");
    let setup = registry.requests().len();
    let plan = manifest_json(&repo, &["--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["index"]["mediaType"], OCI_INDEX, "{plan}");
    assert_eq!(plan["planned"].as_array().unwrap().len(), 2, "{plan}");
    let methods: Vec<String> = registry.requests()[setup..].iter().map(|r| r.method.clone()).collect();
    assert!(!methods.is_empty(), "the dry run reads the sources");
    assert!(methods.iter().all(|m| m == "GET" || m == "HEAD"), "{methods:?}");
    assert_eq!(registry.get_anonymous("/v2/app/manifests/latest").status, 404);
}

/// `--mode docker-cli` runs docker manifest create/annotate/push, and castoff then
/// verifies what docker pushed.
#[test]
fn docker_cli_mode_pushes_and_verifies() {
    let registry = Registry::start();
    Images::new().push_all(&registry, "1.0.0", &THREE, Format::V2s2);
    let repo = project(registry.host(), "1.0.0", &THREE, "");
    let docker = DockerCli::new();
    let outcome = repo
        .castoff(["--json", "manifest", "--mode", "docker-cli"])
        .env("DOCKER_CONFIG", docker.config_dir())
        .assert()
        .success();
    let outcome = json_line(&outcome.get_output().stdout);
    let raw = skopeo_inspect_raw(&registry.reference("app:1.0.0"));
    let mut platforms: Vec<String> = children(&raw).into_iter().map(|(p, _)| p).collect();
    platforms.sort();
    assert_eq!(platforms, THREE, "{raw}");
    assert_eq!(outcome["tags"][1]["digest"].as_str(), registry.get("/v2/app/manifests/1.0.0").digest.as_deref());
}

/// Credentials come from the docker config; a wrong password fails naming where the
/// credentials came from, and the password appears nowhere in castoff's output.
#[test]
fn basic_auth_credentials_from_docker_config() {
    let registry = Registry::start_with_basic_auth("releaser", "s3cret-pass");
    let images = Images::new();
    let tag = format!("1.0.0-{}", suffix("linux/amd64"));
    oci_layout_image(images.layout.path(), &tag, "linux/amd64");
    crate::support::images::try_skopeo_push(
        images.layout.path(),
        &tag,
        &registry.reference(&format!("app:{tag}")),
        &["--dest-creds", &registry.creds_arg()],
    )
    .expect("push with credentials");
    let repo = project(registry.host(), "1.0.0", &["linux/amd64"], "");

    let docker = DockerCli::new();
    docker.login(registry.host(), "releaser", "s3cret-pass");
    repo.castoff(["manifest"]).env("DOCKER_CONFIG", docker.config_dir()).assert().success();
    assert_eq!(registry.get("/v2/app/manifests/1.0.0").status, 200);

    let wrong = DockerCli::new();
    wrong.login(registry.host(), "releaser", "not-the-pass");
    let failed = repo.castoff(["manifest"]).env("DOCKER_CONFIG", wrong.config_dir()).assert().failure();
    let output = failed.get_output();
    let all = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(all.contains("config.json"), "the error names the credential source: {all}");
    assert!(!all.contains("not-the-pass") && !all.contains("s3cret-pass"), "{all}");
}

/// A registry that does not answer fails after the configured bounded retries.
#[test]
fn unreachable_registry_fails_after_bounded_retries() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let repo = project(&closed, "1.0.0", &["linux/amd64"], "");
    let failed = repo.castoff(["manifest"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).to_string();
    assert!(stderr.contains("unreachable") && stderr.contains("2 attempt"), "{stderr}");
}

/// Bad [image] input exits 2 naming the key and line, before any request.
#[test]
fn bad_platform_in_config_is_a_usage_error() {
    let repo = project("127.0.0.1:9", "1.0.0", &["linux/arm/v7l"], "");
    let failed = repo.castoff(["manifest"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).to_string();
    assert!(stderr.contains("image.platforms") && stderr.contains("use linux/arm/v7"), "{stderr}");
}

/// Platform images in another repository (`platform_name`) are brought over by blob
/// mounts and manifest copies, so the release index resolves in its own repository.
#[test]
fn sources_in_another_repository_are_mounted_and_copied() {
    let registry = Registry::start();
    let images = Images::new();
    let mut digests = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let tag = format!("1.0.0-{}", suffix(platform));
        oci_layout_image(images.layout.path(), &tag, platform);
        let dest = registry.reference(&format!("staging/app:{tag}"));
        digests.push(push_with_skopeo(images.layout.path(), &tag, &dest, Format::Oci));
    }
    let staging = format!("platform_name = \"{}\"", registry.reference("staging/app"));
    let repo = project(registry.host(), "1.0.0", &["linux/amd64", "linux/arm64"], &staging);

    manifest_json(&repo, &[]);

    for digest in &digests {
        assert_eq!(registry.get(&format!("/v2/app/manifests/{digest}")).status, 200, "child {digest} copied");
    }
    let mounts = registry.requests().iter().filter(|r| r.method == "POST" && r.uri.contains("mount=")).count();
    assert!(mounts >= 2, "blobs are mounted, not re-uploaded: {}", registry.log());
    let uploads = registry
        .requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH") && r.uri.starts_with("/v2/app/blobs/uploads/"))
        .count();
    assert_eq!(uploads, 0, "no blob bytes re-uploaded: {}", registry.log());
}

/// A platform image whose config blob is not JSON is reported as malformed (naming
/// the image), and nothing is pushed. The broken image is pushed with castoff's own
/// registry client, since no real tool would build one.
#[test]
fn malformed_image_config_is_reported() {
    use castoff::registry::{Client, ClientOptions, Reference};
    use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

    let registry = Registry::start();
    let client = Client::new(ClientOptions::default());
    let target = Reference::parse(&registry.reference("app:1.0.0-amd64")).unwrap();
    let config = b"this is not json".to_vec();
    let config_digest = castoff::manifest::index::sha256_digest(&config);
    client.push_blob(&target, &config_digest, config.len() as u64, &mut config.as_slice()).unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(MediaType::ImageConfig, config.len() as u64, config_digest))
        .layers(Vec::new())
        .build()
        .unwrap();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    client.put_manifest(&target, &MediaType::ImageManifest, &bytes).unwrap();
    let repo = project(registry.host(), "1.0.0", &["linux/amd64"], "");

    let failed = repo.castoff(["manifest"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).to_string();
    assert!(stderr.contains("malformed image config") && stderr.contains("1.0.0-amd64"), "{stderr}");
    assert_eq!(registry.count("PUT", "/v2/app/manifests/latest"), 0);
}
