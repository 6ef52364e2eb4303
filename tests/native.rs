//! The daemonless native builder, end to end: images pushed to Debian's docker-registry
//! and written into an OCI layout, read back with skopeo (config os/arch/variant,
//! entrypoint, labels) and by extracting the layer tar; rebuilding unchanged inputs gives
//! the same digests and uploads nothing; `castoff manifest` joins them in both targets.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use crate::support::images::{skopeo_inspect_config, skopeo_inspect_raw_at};
use crate::support::registry::Registry;
use crate::support::{json_line, with_json, TempRepo};

const PLATFORMS: [&str; 4] = ["linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64"];
const SUFFIXES: [&str; 4] = ["amd64", "armv6", "armv7", "arm64"];

/// A committed project at 1.0.0 whose `[image.native]` puts `dist/{suffix}/app` (a
/// different file per platform) at /usr/local/bin/app and a config file beside it.
fn project(output: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.0.0\n");
    for suffix in SUFFIXES {
        repo.write(&format!("dist/{suffix}/app"), format!("#!/bin/sh\necho app for {suffix}\n"));
    }
    repo.write("app.conf", "greeting = hello\n");
    repo.write(
        "castoff.toml",
        format!(
            "[version]\n\n[image]\nname = \"127.0.0.1:1/team/app\"\nplatforms = {}\nbuilder = \"native\"\n{output}\n\n\
             [image.native]\nfiles = [\n  {{ src = \"dist/{{suffix}}/app\", dst = \"/usr/local/bin/app\", mode = \"0755\" }},\n  \
             {{ src = \"app.conf\", dst = \"/etc/app/app.conf\" }},\n]\nentrypoint = [\"/usr/local/bin/app\"]\n\
             env = {{ APP_MODE = \"release\" }}\nworkdir = \"/srv\"\n",
            serde_json::to_string(&PLATFORMS).unwrap()
        ),
    );
    repo.commit_all();
    repo
}

fn registry_project(registry: &Registry) -> TempRepo {
    let repo = project("");
    let config = repo.read_string("castoff.toml").replace("127.0.0.1:1", registry.host());
    repo.write("castoff.toml", config);
    repo.commit_all();
    repo
}

/// `castoff --json ARGS`, asserted to succeed.
fn ok_json(repo: &TempRepo, args: &[&str]) -> Value {
    let output = repo.castoff(with_json(args)).output().expect("run castoff");
    assert!(
        output.status.success(),
        "castoff {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    json_line(&output.stdout)
}

/// (platform, digest, status) per image of a build outcome.
fn images(outcome: &Value) -> Vec<(String, String, String)> {
    outcome["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no images: {outcome}"))
        .iter()
        .map(|i| {
            let text = |key: &str| i[key].as_str().unwrap_or_default().to_string();
            (text("platform"), text("digest"), text("status"))
        })
        .collect()
}

/// The files (path → (mode, uid, content)) of a gzip'd layer tar.
fn layer_files(gzipped: &[u8]) -> BTreeMap<String, (u32, u64, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzipped));
    let mut files = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").display().to_string();
        let header = entry.header();
        let (mode, uid) = (header.mode().expect("mode"), header.uid().expect("uid"));
        assert_eq!(header.mtime().expect("mtime"), 0, "{path}: mtimes are fixed");
        let mut content = String::new();
        entry.read_to_string(&mut content).expect("read entry");
        files.insert(path, (mode, uid, content));
    }
    files
}

/// The one layer's files, and the config's platform, for each platform's image, checked
/// against what castoff.toml asks for.
fn assert_images(config_of: impl Fn(&str) -> Value, layer_of: impl Fn(&str) -> Vec<u8>) {
    for (platform, suffix) in PLATFORMS.iter().zip(SUFFIXES) {
        let config = config_of(suffix);
        let parts: Vec<&str> = platform.split('/').collect();
        assert_eq!(config["os"], parts[0], "{config}");
        assert_eq!(config["architecture"], parts[1], "{config}");
        assert_eq!(config["variant"].as_str(), parts.get(2).copied(), "{platform}: {config}");
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/app"]), "{config}");
        assert_eq!(config["config"]["WorkingDir"], "/srv", "{config}");
        assert!(config["config"]["Env"].to_string().contains("APP_MODE=release"), "{config}");
        assert_eq!(config["config"]["Labels"]["org.opencontainers.image.version"], "1.0.0", "{config}");
        let files = layer_files(&layer_of(suffix));
        let app = files.get("usr/local/bin/app").unwrap_or_else(|| panic!("{platform}: no app in {files:?}"));
        assert_eq!(app.0 & 0o7777, 0o755, "{platform}");
        assert_eq!(app.1, 0, "{platform}: owned by root");
        assert_eq!(app.2, format!("#!/bin/sh\necho app for {suffix}\n"), "{platform}: its own file");
        let conf = files.get("etc/app/app.conf").unwrap_or_else(|| panic!("{platform}: no app.conf in {files:?}"));
        assert_eq!(conf.0 & 0o7777, 0o644, "{platform}: a plain file defaults to 0644");
    }
}

/// Four platforms pushed to a real registry: skopeo reads each config as the right
/// platform, each layer holds that platform's file as root with fixed mtimes; a rebuild
/// is up to date with one request per platform and the same digests; `castoff
/// manifest` joins them.
#[test]
fn native_builds_push_to_a_registry_and_rebuilds_are_up_to_date() {
    let registry = Registry::start();
    let repo = registry_project(&registry);

    let first = ok_json(&repo, &["build"]);

    assert_eq!(first["builder"], "native", "{first}");
    let built = images(&first);
    assert!(built.iter().all(|(_, _, status)| status == "pushed"), "{built:?}");
    assert_images(
        |suffix| skopeo_inspect_config(&format!("docker://{}/team/app:1.0.0-{suffix}", registry.host())),
        |suffix| {
            let manifest = registry.manifest("team/app", &format!("1.0.0-{suffix}"));
            let layer = manifest["layers"][0]["digest"].as_str().expect("a layer").to_string();
            registry.blob("team/app", &layer)
        },
    );

    // Nothing changed: same digests, nothing uploaded, one HEAD per platform.
    std::thread::sleep(std::time::Duration::from_millis(1200)); // past the racy margin
    let before = registry.requests().len();
    let again = ok_json(&repo, &["build"]);
    let rebuilt = images(&again);
    let digests = |list: &[(String, String, String)]| list.iter().map(|i| i.1.clone()).collect::<Vec<_>>();
    assert_eq!(digests(&rebuilt), digests(&built), "a rebuild gives the same digests");
    assert!(rebuilt.iter().all(|(_, _, status)| status == "up-to-date"), "{rebuilt:?}");
    let writes: Vec<String> = registry.requests()[before..]
        .iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .map(|r| format!("{} {}", r.method, r.path()))
        .collect();
    assert!(writes.is_empty(), "an unchanged rebuild wrote {writes:?}");

    let manifest = ok_json(&repo, &["manifest"]);
    assert_eq!(manifest["platforms"], serde_json::json!(PLATFORMS), "{manifest}");
}

/// A fresh clone (no cache, new mtimes and inodes) builds byte-identical images. The
/// original gets the clone's `origin` so both carry the same `source` label.
#[test]
fn native_builds_are_reproducible_across_clones() {
    let repo = project("output = \"oci-layout:dist/oci\"");
    let origin = repo.path().display().to_string();
    repo.git(&["remote", "add", "origin", &origin]);
    let first = images(&ok_json(&repo, &["build", "--no-push"]));
    let clone = repo.clone_repo();
    let second = images(&ok_json(&clone, &["build", "--no-push"]));
    assert_eq!(first.iter().map(|i| &i.1).collect::<Vec<_>>(), second.iter().map(|i| &i.1).collect::<Vec<_>>());
    assert!(first.iter().all(|(_, digest, status)| digest.starts_with("sha256:") && status == "built"), "{first:?}");
}

/// Into an OCI layout, with no registry and no daemon: skopeo reads every platform's
/// image from the layout; `castoff manifest` names the index in index.json under each
/// release tag, and skopeo reads it as a 4-platform index.
#[test]
fn native_builds_into_an_oci_layout_and_manifest_names_the_index() {
    let repo = project("output = \"oci-layout:dist/oci\"");
    let layout = repo.join("dist/oci");

    let outcome = ok_json(&repo, &["build"]);

    assert!(images(&outcome).iter().all(|(_, _, status)| status == "pushed"), "{outcome}");
    assert_images(
        |suffix| skopeo_inspect_config(&format!("oci:{}:1.0.0-{suffix}", layout.display())),
        |suffix| {
            let manifest = skopeo_inspect_raw_at(&format!("oci:{}:1.0.0-{suffix}", layout.display()));
            let layer = manifest["layers"][0]["digest"].as_str().expect("a layer").to_string();
            std::fs::read(layout.join("blobs/sha256").join(layer.trim_start_matches("sha256:"))).expect("the blob")
        },
    );

    let manifest = ok_json(&repo, &["manifest"]);
    let references: Vec<&str> =
        manifest["tags"].as_array().unwrap().iter().filter_map(|t| t["reference"].as_str()).collect();
    assert_eq!(references, ["oci-layout:dist/oci:latest", "oci-layout:dist/oci:1.0.0"], "{manifest}");
    for tag in ["latest", "1.0.0"] {
        let index = skopeo_inspect_raw_at(&format!("oci:{}:{tag}", layout.display()));
        let platforms = testkit::images::index_platforms(&index);
        assert_eq!(platforms, PLATFORMS, "{index}");
        assert_eq!(index["annotations"]["org.opencontainers.image.version"], "1.0.0", "{index}");
    }
    let again = ok_json(&repo, &["manifest"]);
    assert!(again["tags"].as_array().unwrap().iter().all(|t| t["status"] == "up-to-date"), "{again}");
}

/// A native file missing for one platform: exit 2 naming the file, the platform and
/// the key; nothing is written (no layout appears, no file changes).
#[test]
fn a_native_file_missing_for_one_platform_is_named_with_its_platform() {
    let repo = project("output = \"oci-layout:dist/oci\"");
    std::fs::remove_file(repo.join("dist/armv6/app")).unwrap();
    repo.commit_all();
    crate::support::assert_rejected(
        &repo,
        &["build"],
        Some(crate::support::Loc::file("castoff.toml").key("image.native.files.src")),
        &["dist/armv6/app", "linux/arm/v6"],
    );
    assert!(!repo.join("dist/oci").exists(), "a rejected build created the layout");
}
