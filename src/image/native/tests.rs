//! The native builder end to end: jobs planned as `castoff build` plans them, run by the
//! real runner (platforms in parallel), into an OCI layout and into a real registry
//! (testkit's docker-registry), read back with castoff's own resolver and with skopeo.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use oci_spec::image::Digest;
use semver::Version;
use serde_json::Value;

use super::*;
use crate::config::{Config, ImageConfig, NetworkConfig};
use crate::git::GitInfo;
use crate::image::{args, layout::OciLayout, runner, BuildOptions, RunInputs};
use crate::registry::ClientOptions;

const FOUR: &str = r#"["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"]"#;

struct Project {
    dir: tempfile::TempDir,
    image: ImageConfig,
    version: Version,
}

impl Project {
    /// A project whose `[image]` has `name`, `platforms` and `extra` keys, and whose
    /// `[image.native]` is `native`.
    fn new(name: &str, platforms: &str, extra: &str, native: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[version]\n\n[image]\nname = \"{name}\"\nplatforms = {platforms}\nbuilder = \"native\"\n{extra}\n\
             [image.native]\n{native}\n"
        );
        let image = Config::parse(&text, Path::new("castoff.toml")).unwrap().image.unwrap();
        Project { dir, image, version: Version::parse("1.2.3").unwrap() }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, contents: &[u8]) {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn jobs(&self) -> Vec<Job> {
        args::jobs(&self.image, &self.version, &GitInfo::default(), &[]).unwrap()
    }

    fn preflight(&self, push: bool) -> Result<()> {
        let shown = Path::new("castoff.toml");
        let ctx = Preflight {
            root: self.root(),
            shown_config: shown,
            image: &self.image,
            version: &self.version,
            output: &self.image.build.output,
            push,
        };
        Native.preflight(&self.jobs(), &ctx)
    }

    fn plan(&self) -> Vec<String> {
        let shown = Path::new("castoff.toml");
        let ctx = Preflight {
            root: self.root(),
            shown_config: shown,
            image: &self.image,
            version: &self.version,
            output: &self.image.build.output,
            push: true,
        };
        self.jobs().iter().flat_map(|job| Native.plan(job, &ctx)).collect()
    }

    /// Preflight, then build every platform in parallel as `castoff build` does.
    fn build(&self, target: &Target, push: bool) -> Result<Vec<Built>> {
        self.preflight(push)?;
        let inputs = RunInputs {
            root: self.root(),
            shown_config: Path::new("castoff.toml"),
            network: NetworkConfig::default(),
            image: &self.image,
            version: &self.version,
            target,
            push,
        };
        runner::execute(&Native, &self.jobs(), &BuildOptions::default(), &inputs)
    }

    fn layout_target(&self) -> Target {
        match &self.image.build.output {
            OutputTarget::OciLayout(dir) => Target::Layout(OciLayout::create(self.root(), dir).unwrap()),
            OutputTarget::Registry => Target::Registry(Client::new(ClientOptions::default()).into()),
        }
    }
}

/// The paths in a gzipped layer blob, in order.
fn layer_paths(path: &Path) -> Vec<String> {
    let layer = std::fs::File::open(path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    archive.entries().unwrap().map(|entry| entry.unwrap().path().unwrap().display().to_string()).collect()
}

fn digests(built: &[Built]) -> Vec<String> {
    built.iter().map(|b| b.digest.as_ref().unwrap().to_string()).collect()
}

fn statuses(built: &[Built]) -> BTreeSet<String> {
    built.iter().map(|b| format!("{:?}", b.status)).collect()
}

/// Somewhat compressible bytes, different per `seed`, like a binary.
fn binary(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..size)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i % 3 == 0 {
                (i / 64) as u8
            } else {
                (state % 29) as u8
            }
        })
        .collect()
}

/// Wait until files just written are older than the racy margin, so the cache records
/// them (as a real build seconds after the compiler finished would).
fn let_stamps_settle() {
    std::thread::sleep(Duration::from_millis(1_200));
}

const APP: &str = r#"files = [{ src = "dist/{suffix}/app", dst = "/usr/local/bin/app" }, { src = "README.md", dst = "/usr/share/doc/app/README.md" }]
entrypoint = ["/usr/local/bin/app"]
env = { APP_HOME = "/srv" }"#;

fn app_files(project: &Project) {
    for (n, suffix) in ["amd64", "arm64", "armv7", "armv6"].iter().enumerate() {
        project.write(&format!("dist/{suffix}/app"), &binary(n as u64, 4096));
    }
    project.write("README.md", b"# app\n");
}

#[test]
fn builds_into_a_layout_reproducibly_and_finds_it_up_to_date() {
    let project = Project::new("127.0.0.1:5000/team/app", FOUR, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&project);
    let target = project.layout_target();
    let first = project.build(&target, true).unwrap();
    assert_eq!(statuses(&first), BTreeSet::from(["Pushed".to_string()]));
    let unique: BTreeSet<String> = digests(&first).into_iter().collect();
    assert_eq!(unique.len(), 4, "one image per platform");

    let again = project.build(&target, true).unwrap();
    assert_eq!(digests(&again), digests(&first));
    assert_eq!(statuses(&again), BTreeSet::from(["UpToDate".to_string()]));

    // --no-push gives the digest it would have.
    let local = project.build(&target, false).unwrap();
    assert_eq!(digests(&local), digests(&first));
    assert_eq!(statuses(&local), BTreeSet::from(["Built".to_string()]));

    // Another checkout (no cache, other paths, later mtimes) gets the same images.
    let other = Project::new("127.0.0.1:5000/team/app", FOUR, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&other);
    assert_eq!(digests(&other.build(&other.layout_target(), true).unwrap()), digests(&first));

    // The layout holds each platform under its tag, readable as any source.
    let Target::Layout(layout) = &target else { unreachable!() };
    for (job, built) in project.jobs().iter().zip(&first) {
        let entry = layout.find_tag(&job.tag).unwrap().unwrap();
        assert_eq!(Some(entry.digest()), built.digest.as_ref());
        assert_eq!(entry.platform().as_ref().unwrap().architecture().to_string(), job.platform.architecture);
        let child =
            crate::manifest::resolve::resolve(layout, &layout.reference(Some(&job.tag), None), &job.platform).unwrap();
        assert_eq!(child.blobs.len(), 2, "config and one layer");
        let config: Value = serde_json::from_slice(&layout.read_blob(&child.blobs[0], 1 << 20).unwrap()).unwrap();
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/app"]));
        assert_eq!(config["config"]["Env"], serde_json::json!(["APP_HOME=/srv"]));
        assert_eq!(config["config"]["Labels"]["org.opencontainers.image.version"], "1.2.3");
        // The layer unpacks to the platform's own binary.
        let layer = std::fs::File::open(layout.blob_path(&child.blobs[1])).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
        let mut found = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            if path == "usr/local/bin/app" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                let wanted = std::fs::read(project.root().join(format!("dist/{}/app", job.platform.suffix()))).unwrap();
                assert!(bytes == wanted, "the {} layer holds its own binary", job.platform);
            }
            found.push(path);
        }
        assert!(found.contains(&"usr/share/doc/app/README.md".to_string()), "{found:?}");
    }
}

#[test]
fn a_changed_file_changes_the_image_and_the_cache_is_used_when_it_can_be() {
    let project = Project::new("127.0.0.1:5000/team/app", r#"["linux/amd64"]"#, "", APP);
    app_files(&project);
    let_stamps_settle();
    let target = Target::Layout(OciLayout::create(project.root(), "out").unwrap());
    let logged = std::sync::Mutex::new(Vec::new());
    let run = |push: bool| -> Built {
        let job = &project.jobs()[0];
        let cancel = AtomicBool::new(false);
        let log = |line: &str| logged.lock().unwrap().push(line.to_string());
        let ctx = BuildContext {
            root: project.root(),
            shown_config: Path::new("castoff.toml"),
            network: NetworkConfig::default(),
            image: &project.image,
            version: &project.version,
            target: &target,
            push,
            cancel: &cancel,
            log: &log,
        };
        Native.build(job, &ctx).unwrap()
    };
    let first = run(false);
    let second = run(false);
    assert_eq!(first.digest, second.digest);
    let lines = logged.lock().unwrap().clone();
    assert!(lines[0].ends_with(", built)"), "{lines:?}");
    assert!(lines[1].ends_with(", cached)"), "{lines:?}");

    // Same size, mtime put back: still noticed (ctime), and rebuilt.
    let app = project.root().join("dist/amd64/app");
    let before = std::fs::metadata(&app).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&app).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&app, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&app)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(before))
        .unwrap();
    let third = run(false);
    assert_ne!(third.digest, first.digest);
    assert!(logged.lock().unwrap().last().unwrap().ends_with(", built)"));

    // A cached blob corrupted on disk (same size) is caught before it is used, and
    // rebuilt.
    let_stamps_settle();
    let fourth = run(false);
    assert_eq!(fourth.digest, third.digest);
    let fifth = run(false);
    assert!(logged.lock().unwrap().last().unwrap().ends_with(", cached)"));
    let cache = LayerCache::open(project.root()).unwrap();
    let key = LayerCache::key(&project.jobs()[0].platform, &inputs_of(&project), Parents::Listed);
    let hit = cache.lookup(&key, &inputs_of(&project)).unwrap();
    let mut blob = std::fs::read(&hit.path).unwrap();
    let middle = blob.len() / 2;
    blob[middle] ^= 0x55;
    std::fs::write(&hit.path, &blob).unwrap();
    cache.release();
    let pushed = run(true);
    assert_eq!(pushed.digest, fifth.digest);
    assert_eq!(pushed.status, ImageStatus::Pushed);
    assert!(logged.lock().unwrap().iter().any(|l| l.contains("is corrupt; building it again")));
    let Target::Layout(layout) = &target else { unreachable!() };
    let child = crate::manifest::resolve::resolve(
        layout,
        &layout.reference(Some(&project.jobs()[0].tag), None),
        &project.jobs()[0].platform,
    )
    .unwrap();
    // The layer in the layout is whole (import verified it).
    assert!(cache::verify(&layout.blob_path(&child.blobs[1]), &child.blobs[1]).unwrap());
}

fn inputs_of(project: &Project) -> Vec<Input> {
    let native = project.image.build.native.as_ref().unwrap();
    let job = &project.jobs()[0];
    native
        .files
        .iter()
        .map(|file| {
            let shown = expand_src(&file.src, &job.platform, &project.version).unwrap();
            Input {
                file: LayerFile { src: project.root().join(&shown), dst: file.dst.clone(), mode: file.mode },
                shown,
            }
        })
        .collect()
}

#[test]
fn preflight_names_the_missing_file_and_its_platform() {
    let project = Project::new("127.0.0.1:5000/team/app", FOUR, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&project);
    std::fs::remove_file(project.root().join("dist/armv6/app")).unwrap();
    let target = project.layout_target();
    let err = project.build(&target, true).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(text.contains("image.native.files.src"), "{text}");
    assert!(text.contains("dist/armv6/app (`dist/{suffix}/app` for linux/arm/v6) does not exist"), "{text}");
    assert!(err.hint().unwrap().contains("suffix `armv6`"), "{:?}", err.hint());
    // Nothing was written: the layout has no entries.
    let Target::Layout(layout) = &target else { unreachable!() };
    assert!(layout.entries().unwrap().is_empty());

    std::fs::create_dir_all(project.root().join("dist/armv6/app")).unwrap();
    let err = project.preflight(true).unwrap_err();
    assert!(err.to_string().contains("is not a regular file"), "{err}");

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("app"), b"x").unwrap();
    std::fs::remove_dir(project.root().join("dist/armv6/app")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("app"), project.root().join("dist/armv6/app")).unwrap();
    let err = project.preflight(true).unwrap_err();
    assert!(err.to_string().contains("outside the project"), "{err}");

    let clash = Project::new(
        "app",
        FOUR,
        "",
        r#"files = [{ src = "a", dst = "/opt/app" }, { src = "b", dst = "/opt/app/conf" }]"#,
    );
    let err = clash.preflight(true).unwrap_err();
    assert!(err.to_string().contains("image.native.files.dst"), "{err}");

    let mut unconfigured = Project::new("app", FOUR, "", "");
    unconfigured.image.build.native = None;
    let err = unconfigured.preflight(true).unwrap_err();
    assert!(err.hint().unwrap().contains("[image.native]"), "{:?}", err.hint());

    let missing_base = Project::new("app", FOUR, "", "base = \"oci-layout:base\"");
    let err = missing_base.preflight(true).unwrap_err();
    assert!(err.to_string().contains("image.native.base"), "{err}");
    assert!(err.to_string().contains("the OCI layout base does not exist"), "{err}");
}

/// `--no-push` (the target `castoff build` passes then is a registry client) builds
/// into the cache only: the configured layout is neither created nor needed.
#[test]
fn no_push_never_touches_the_layout() {
    let project = Project::new("127.0.0.1:5000/team/app", FOUR, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&project);
    let registry = Target::Registry(Client::new(ClientOptions::default()).into());
    let local = project.build(&registry, false).unwrap();
    assert_eq!(statuses(&local), BTreeSet::from(["Built".to_string()]));
    assert!(!project.root().join("dist/oci").exists(), "--no-push created the layout");
    // Even a symlinked layout (refused when writing) is no obstacle to a local build.
    std::os::unix::fs::symlink(tempfile::tempdir().unwrap().path(), project.root().join("dist/oci")).unwrap();
    project.build(&registry, false).unwrap();
    std::fs::remove_file(project.root().join("dist/oci")).unwrap();
    // The digests are the ones a push writes.
    let pushed = project.build(&project.layout_target(), true).unwrap();
    assert_eq!(digests(&pushed), digests(&local));
}

/// An output layout or a layout base that is a symlink (or reached through a symlink
/// out of the project) is refused before anything is built, naming its key in the
/// config file the user gave.
#[test]
fn symlinked_layouts_are_refused_by_key() {
    let elsewhere = tempfile::tempdir().unwrap();
    let project = Project::new("127.0.0.1:5000/team/app", FOUR, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&project);
    std::os::unix::fs::symlink(elsewhere.path(), project.root().join("dist/oci")).unwrap();
    let err = project.preflight(true).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().starts_with("castoff.toml (key `image.output`): the OCI layout dist/oci is a symlink"),
        "{err}"
    );
    assert!(fs_is_empty(elsewhere.path()));

    let base = Project::new(
        "127.0.0.1:5000/team/app",
        r#"["linux/amd64"]"#,
        "",
        &format!("base = \"oci-layout:base\"\n{APP}"),
    );
    app_files(&base);
    testkit::images::oci_layout_image(elsewhere.path(), "amd64", "linux/amd64");
    std::os::unix::fs::symlink(elsewhere.path(), base.root().join("base")).unwrap();
    let err = base.preflight(true).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("(key `image.native.base`): the OCI layout base is a symlink"), "{err}");
}

fn fs_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// Errors about the configuration name the file the user gave (`--config`).
#[test]
fn build_errors_name_the_given_config_file() {
    let mut project = Project::new("app", r#"["linux/amd64"]"#, "", "files = [{ src = \"{variant}\", dst = \"/x\" }]");
    let target = Target::Registry(Client::new(ClientOptions::default()).into());
    let job = &project.jobs()[0];
    let cancel = AtomicBool::new(false);
    let build = |project: &Project| {
        let ctx = BuildContext {
            root: project.root(),
            shown_config: Path::new("conf/other.toml"),
            network: NetworkConfig::default(),
            image: &project.image,
            version: &project.version,
            target: &target,
            push: false,
            cancel: &cancel,
            log: &|_: &str| {},
        };
        Native.build(job, &ctx).unwrap_err().to_string()
    };
    let text = build(&project);
    assert!(text.starts_with("conf/other.toml (key `image.native.files.src`)"), "{text}");
    project.image.build.native = None;
    let text = build(&project);
    assert!(text.contains("an [image.native] table in conf/other.toml"), "{text}");
}

#[test]
fn plan_says_what_would_happen() {
    let project = Project::new("127.0.0.1:5000/team/app", r#"["linux/arm/v7"]"#, "", APP);
    app_files(&project);
    let planned = project.plan();
    assert_eq!(
        planned,
        [
            "native linux/arm/v7: base scratch",
            "native linux/arm/v7: layer dist/armv7/app -> /usr/local/bin/app (0644)",
            "native linux/arm/v7: layer README.md -> /usr/share/doc/app/README.md (0644)",
            "native linux/arm/v7: push 127.0.0.1:5000/team/app:1.2.3-armv7",
        ]
    );
}

/// A base from an OCI layout, one entry per platform (no tag): its layer comes first,
/// its config's history and diff_ids are kept, and its blobs are imported.
#[test]
fn a_layout_base_is_picked_per_platform() {
    let project = Project::new(
        "127.0.0.1:5000/team/app",
        r#"["linux/amd64", "linux/arm64"]"#,
        "output = \"oci-layout:dist/oci\"",
        &format!("base = \"oci-layout:base\"\n{APP}"),
    );
    app_files(&project);
    let base_dir = project.root().join("base");
    let amd64 = testkit::images::oci_layout_image(&base_dir, "amd64", "linux/amd64");
    let arm64 = testkit::images::oci_layout_image(&base_dir, "arm64", "linux/arm64");
    let target = project.layout_target();
    let built = project.build(&target, true).unwrap();
    let Target::Layout(layout) = &target else { unreachable!() };
    let base = OciLayout::open(project.root(), "base").unwrap();
    for ((job, built), base_digest) in project.jobs().iter().zip(&built).zip([amd64, arm64]) {
        let manifest: Value =
            serde_json::from_slice(&layout.read_blob(built.digest.as_ref().unwrap(), 1 << 20).unwrap()).unwrap();
        let base_manifest: Value =
            serde_json::from_slice(&base.read_blob(&base_digest.parse().unwrap(), 1 << 20).unwrap()).unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
        assert_eq!(manifest["layers"][0], base_manifest["layers"][0], "{}", job.platform);
        let base_layer: Digest = base_manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
        assert!(layout.has_blob(&base_layer));
        let config_digest: Digest = manifest["config"]["digest"].as_str().unwrap().parse().unwrap();
        let config: Value = serde_json::from_slice(&layout.read_blob(&config_digest, 1 << 20).unwrap()).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(config["history"].as_array().unwrap().len(), 2);
        // The base's Cmd gives way to the configured entrypoint.
        assert!(config["config"].get("Cmd").is_none());
        // Over a base, the layer adds files only: a directory entry would replace the
        // base's own (its mode and owner) when the layers are stacked.
        let ours: Digest = manifest["layers"][1]["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            layer_paths(&layout.blob_path(&ours)),
            ["usr/local/bin/app", "usr/share/doc/app/README.md"],
            "{}",
            job.platform
        );
    }

    // The same files over scratch list their parent directories; a different layer,
    // so the cache keeps the two apart.
    let scratch =
        Project::new("127.0.0.1:5000/team/app", r#"["linux/amd64"]"#, "output = \"oci-layout:dist/oci\"", APP);
    app_files(&scratch);
    let scratch_target = scratch.layout_target();
    let built = scratch.build(&scratch_target, true).unwrap();
    let Target::Layout(scratch_layout) = &scratch_target else { unreachable!() };
    let manifest: Value =
        serde_json::from_slice(&scratch_layout.read_blob(built[0].digest.as_ref().unwrap(), 1 << 20).unwrap()).unwrap();
    let layer: Digest = manifest["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    let paths = layer_paths(&scratch_layout.blob_path(&layer));
    assert!(paths.contains(&"usr/local/bin/".to_string()), "{paths:?}");
    assert!(paths.contains(&"usr/share/doc/app/".to_string()), "{paths:?}");
}

/// Four platforms into a real registry, then again with nothing changed (HEAD only),
/// then into another repository with a registry base mounted across. 1 MiB files keep
/// the debug build quick; `cargo xtask bench build` measures the 20 MB case.
#[test]
fn four_platforms_into_a_registry_then_nothing_to_do() {
    let registry = testkit::registry::Registry::start();
    let name = registry.reference("team/app");
    let project = Project::new(&name, FOUR, "", APP);
    for (n, suffix) in ["amd64", "arm64", "armv7", "armv6"].iter().enumerate() {
        project.write(&format!("dist/{suffix}/app"), &binary(n as u64 + 10, 1 << 20));
    }
    project.write("README.md", b"# app\n");
    let_stamps_settle();

    let target = Target::Registry(Client::new(ClientOptions::default()).into());
    let first = project.build(&target, true).unwrap();
    assert_eq!(statuses(&first), BTreeSet::from(["Pushed".to_string()]));
    let Target::Registry(client) = &target else { unreachable!() };
    let requests_before = client.requests();

    let second = project.build(&target, true).unwrap();
    assert_eq!(digests(&second), digests(&first));
    assert_eq!(statuses(&second), BTreeSet::from(["UpToDate".to_string()]));
    assert_eq!(client.requests() - requests_before, 4, "one HEAD per platform");

    // What skopeo reads back is what castoff computed.
    for (job, built) in project.jobs().iter().zip(&first) {
        let shown = job.reference.to_string();
        assert_eq!(testkit::images::skopeo_digest(&shown), built.digest.as_ref().unwrap().to_string());
        let raw = testkit::images::skopeo_inspect_raw(&shown);
        assert_eq!(raw["layers"][0]["mediaType"], config::OCI_LAYER_GZIP);
    }

    // A registry base in another repository of the same registry: mounted, not copied.
    let base_layout = tempfile::tempdir().unwrap();
    testkit::images::oci_layout_image(base_layout.path(), "amd64", "linux/amd64");
    let base_ref = registry.reference("base/runtime:1");
    testkit::images::push_with_skopeo(base_layout.path(), "amd64", &base_ref, testkit::images::Format::Oci);
    let derived = Project::new(
        &registry.reference("team/derived"),
        r#"["linux/amd64"]"#,
        "",
        &format!("base = \"{base_ref}\"\n{APP}"),
    );
    app_files(&derived);
    let built = derived.build(&target, true).unwrap();
    let raw = testkit::images::skopeo_inspect_raw(&derived.jobs()[0].reference.to_string());
    let base_raw = testkit::images::skopeo_inspect_raw(&base_ref);
    assert_eq!(raw["layers"][0], base_raw["layers"][0]);
    assert_eq!(testkit::images::skopeo_digest(&derived.jobs()[0].reference.to_string()), digests(&built)[0]);
    let mounts = registry
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.uri.starts_with("/v2/team/derived/blobs/uploads/?mount="))
        .count();
    assert_eq!(mounts, 1, "the base layer is mounted from base/runtime");

    // The same registry base into an OCI layout: its layer is fetched and stored.
    let into_layout = Project::new(
        &registry.reference("team/derived"),
        r#"["linux/amd64"]"#,
        "output = \"oci-layout:oci\"",
        &format!("base = \"{base_ref}\"\n{APP}"),
    );
    app_files(&into_layout);
    let layout_target = into_layout.layout_target();
    let in_layout = into_layout.build(&layout_target, true).unwrap();
    assert_eq!(digests(&in_layout), digests(&built), "same image, wherever it is written");
    let Target::Layout(layout) = &layout_target else { unreachable!() };
    let base_layer: Digest = base_raw["layers"][0]["digest"].as_str().unwrap().parse().unwrap();
    assert!(layout.has_blob(&base_layer));
}
