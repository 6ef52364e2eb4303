//! The service fixtures in `support` against the real programs: registries (anonymous and
//! basic auth), skopeo pushes of hand-built images, a buildx-style attestation index and
//! the docker CLI's manifest flow. Each test starts its own registry.

use std::io::Read;

use serde_json::{json, Value};

use crate::support::docker::DockerCli;
use crate::support::images::{
    oci_layout_attested_index, oci_layout_image, push_index_with_skopeo, push_with_skopeo, skopeo_digest,
    skopeo_inspect_raw, try_skopeo_push, Format, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, IN_TOTO, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::support::programs::Program;
use crate::support::registry::{Registry, Request};
use crate::support::temp_dir;

/// Each layer file's path and text (layers are gzip-compressed tars).
fn layer_files(blob: &[u8]) -> Vec<(String, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    let entries = archive.entries().expect("the layer is a tar.gz");
    entries
        .map(|entry| {
            let mut entry = entry.expect("a tar entry");
            let path = entry.path().expect("a tar path").display().to_string();
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("a text file");
            (path, text)
        })
        .collect()
}

/// The `platform` of each entry of an index or manifest list.
fn platforms(index: &Value) -> Vec<Value> {
    index["manifests"].as_array().expect("an index").iter().map(|m| m["platform"].clone()).collect()
}

fn get(method: &str, uri: &str, status: u16) -> Request {
    Request { method: method.into(), uri: uri.into(), status }
}

/// Two registries run side by side on their own ports, each logging its own requests.
#[test]
fn registries_start_on_free_ports_and_log_requests() {
    let (a, b) = (Registry::start(), Registry::start());
    assert_ne!(a.host(), b.host());
    assert_eq!(a.get("/v2/").status, 200, "{}", a.log());
    assert_eq!(a.get("/v2/_catalog?n=10").json(), json!({"repositories": []}));
    assert_eq!(a.requests(), [get("GET", "/v2/", 200), get("GET", "/v2/_catalog?n=10", 200)]);
    assert_eq!(a.count("GET", "/v2/_catalog"), 1);
    assert_eq!(b.requests(), []);
    assert!(a.log().contains("listening on"), "{}", a.log());
}

/// The same platform gives byte-identical images; retagging replaces the old tag.
#[test]
fn layout_images_are_deterministic() {
    let (one, two) = (temp_dir(), temp_dir());
    let arm = oci_layout_image(one.path(), "arm", "linux/arm/v7");
    assert_eq!(oci_layout_image(two.path(), "arm", "linux/arm/v7"), arm);
    assert_ne!(oci_layout_image(two.path(), "arm", "linux/arm/v6"), arm);
    let index: Value = serde_json::from_slice(&std::fs::read(two.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(platforms(&index), [json!({"os": "linux", "architecture": "arm", "variant": "v6"})]);
    assert!(one.path().join("oci-layout").is_file());
}

/// skopeo pushes OCI and Docker v2s2 images whose configs and layers name the platform.
#[test]
fn skopeo_pushes_oci_and_v2s2_images() {
    let registry = Registry::start();
    let layout = temp_dir();
    let amd64 = oci_layout_image(layout.path(), "amd64", "linux/amd64");
    oci_layout_image(layout.path(), "armv7", "linux/arm/v7");

    let pushed = push_with_skopeo(layout.path(), "amd64", &registry.reference("app:amd64"), Format::Oci);
    assert_eq!(pushed, amd64, "OCI pushes keep the layout's digest");
    let oci = skopeo_inspect_raw(&registry.reference("app:amd64"));
    assert_eq!(oci["mediaType"], OCI_MANIFEST);
    assert_eq!(oci["layers"][0]["mediaType"], OCI_LAYER_GZIP);
    let config = registry.image_config("app", "amd64");
    assert_eq!(
        (&config["os"], &config["architecture"], &config["variant"]),
        (&json!("linux"), &json!("amd64"), &Value::Null)
    );

    let pushed = push_with_skopeo(layout.path(), "armv7", &registry.reference("app:armv7"), Format::V2s2);
    let v2s2 = skopeo_inspect_raw(&registry.reference("app:armv7"));
    assert_eq!(v2s2["mediaType"], DOCKER_MANIFEST);
    assert_eq!(skopeo_digest(&registry.reference("app:armv7")), pushed);
    let config = registry.image_config("app", &pushed);
    assert_eq!(
        (&config["os"], &config["architecture"], &config["variant"]),
        (&json!("linux"), &json!("arm"), &json!("v7"))
    );
    let layer = registry.blob("app", v2s2["layers"][0]["digest"].as_str().unwrap());
    assert_eq!(layer_files(&layer), [("hello.txt".to_string(), "hello from linux/arm/v7\n".to_string())]);
}

/// The access log counts requests: pushing the same image again uploads no blob twice.
#[test]
fn requests_show_what_a_second_push_skips() {
    let registry = Registry::start();
    let layout = temp_dir();
    oci_layout_image(layout.path(), "amd64", "linux/amd64");
    let uploads = |registry: &Registry| registry.count("POST", "/v2/app/blobs/uploads/");
    for _ in 0..2 {
        push_with_skopeo(layout.path(), "amd64", &registry.reference("app:1"), Format::Oci);
        assert_eq!(uploads(&registry), 2, "config and layer, once:\n{:#?}", registry.requests());
    }
    assert_eq!(registry.count("PUT", "/v2/app/manifests/1"), 2);
}

/// The basic-auth registry answers 401 to anonymous pushes and accepts them with credentials.
#[test]
fn auth_registry_rejects_anonymous_pushes() {
    let registry = Registry::start_with_basic_auth("ci", "s3cret");
    assert_eq!(registry.get_anonymous("/v2/").status, 401);
    assert_eq!(registry.get("/v2/").status, 200);
    let layout = temp_dir();
    let image = oci_layout_image(layout.path(), "amd64", "linux/amd64");
    let dest = registry.reference("app:amd64");

    let failure = try_skopeo_push(layout.path(), "amd64", &dest, &[]).expect_err("an anonymous push");
    assert!(failure.contains("401") || failure.to_lowercase().contains("unauthorized"), "{failure}");
    assert!(registry.requests().iter().any(|r| r.status == 401 && r.path().starts_with("/v2/app/")));

    let pushed = try_skopeo_push(layout.path(), "amd64", &dest, &["--dest-creds", &registry.creds_arg()]);
    assert_eq!(pushed.as_deref(), Ok(image.as_str()));
    let manifest = registry.get("/v2/app/manifests/amd64");
    assert_eq!((manifest.content_type.as_deref(), manifest.digest), (Some(OCI_MANIFEST), Some(image)));
}

/// A buildx-style index (image plus provenance attestation) keeps both entries when pushed.
#[test]
fn attestation_index_is_pushed_whole() {
    let registry = Registry::start();
    let layout = temp_dir();
    let built = oci_layout_attested_index(layout.path(), "1.0", "linux/arm64");
    let dest = registry.reference("app:1.0");
    assert_eq!(push_index_with_skopeo(layout.path(), "1.0", &dest), built.index);

    let index = skopeo_inspect_raw(&dest);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let digests: Vec<&Value> = index["manifests"].as_array().unwrap().iter().map(|m| &m["digest"]).collect();
    assert_eq!(digests, [&json!(built.image), &json!(built.attestation)]);
    let unknown = json!({"os": "unknown", "architecture": "unknown"});
    assert_eq!(platforms(&index), [json!({"os": "linux", "architecture": "arm64"}), unknown]);
    let annotations = &index["manifests"][1]["annotations"];
    assert_eq!(annotations["vnd.docker.reference.type"], "attestation-manifest");
    assert_eq!(annotations["vnd.docker.reference.digest"], built.image.as_str());
    assert_eq!(registry.manifest("app", &built.attestation)["layers"][0]["mediaType"], IN_TOTO);
}

/// `docker manifest` lists two pushed images under one tag, with their platforms.
#[test]
fn docker_manifest_lists_pushed_images() {
    let registry = Registry::start();
    let layout = temp_dir();
    oci_layout_image(layout.path(), "amd64", "linux/amd64");
    oci_layout_image(layout.path(), "armv7", "linux/arm/v7");
    let (amd64, armv7) = (registry.reference("app:amd64"), registry.reference("app:armv7"));
    let amd64_digest = push_with_skopeo(layout.path(), "amd64", &amd64, Format::V2s2);
    let armv7_digest = push_with_skopeo(layout.path(), "armv7", &armv7, Format::V2s2);

    let docker = DockerCli::new();
    let target = registry.reference("app:1.0");
    let digest = docker.manifest_push(&target, &[(&amd64, "linux/amd64"), (&armv7, "linux/arm/v7")]);
    assert_eq!(skopeo_digest(&target), digest);
    let list = skopeo_inspect_raw(&target);
    assert_eq!(list["mediaType"], DOCKER_MANIFEST_LIST);
    let expected = [
        json!({"os": "linux", "architecture": "amd64"}),
        json!({"os": "linux", "architecture": "arm", "variant": "v7"}),
    ];
    assert_eq!(platforms(&list), expected);
    assert_eq!(
        [&list["manifests"][0]["digest"], &list["manifests"][1]["digest"]],
        [&json!(amd64_digest), &json!(armv7_digest)]
    );
}

/// `docker manifest push` to the basic-auth registry uses what `DockerCli::login` stored.
#[test]
fn docker_manifest_pushes_with_stored_credentials() {
    let registry = Registry::start_with_basic_auth("ci", "s3cret");
    let layout = temp_dir();
    oci_layout_image(layout.path(), "amd64", "linux/amd64");
    let source = registry.reference("app:amd64");
    let creds = ["--format", "v2s2", "--dest-creds", &registry.creds_arg()];
    try_skopeo_push(layout.path(), "amd64", &source, &creds).unwrap();

    let docker = DockerCli::new();
    docker.login(registry.host(), "ci", "s3cret");
    let digest = docker.manifest_push(&registry.reference("app:1.0"), &[(&source, "linux/amd64")]);
    assert_eq!(registry.get("/v2/app/manifests/1.0").digest, Some(digest));
}

/// A missing program fails the test loudly, naming the Debian package to install.
#[test]
#[should_panic(expected = "(Debian package `castoff-missing-package`); `cargo xtask test` installs it")]
fn missing_programs_name_their_package() {
    Program { name: "castoff-missing-program", package: "castoff-missing-package" }.command();
}
