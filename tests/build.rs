//! `castoff build` with real builders: a private dockerd (docker.io 20.10, BuildKit through
//! its 20.10 client), buildah and podman in private vfs storage, and `docker buildx` played
//! by testkit's recording fake (buildx itself cannot be installed here; the fake performs
//! the same build with the real daemon). Images go to a real registry per test and are
//! read back with skopeo and the registry's API; `castoff manifest` then joins them.
//!
//! Builders inherit castoff's environment, so each test passes the daemon's DOCKER_HOST
//! and DOCKER_CONFIG, the storage's CONTAINERS_STORAGE_CONF, or a PATH with the fake
//! `docker` first.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::buildah::ContainerStorage;
use testkit::buildx::{has_flag_value, FakeBuildx};
use testkit::dockerd::Dockerd;

use crate::support::images::skopeo_inspect_raw;
use crate::support::registry::Registry;
use crate::support::{check_rejected, json_line, temp_dir, with_json, Loc, TempRepo};

const DOCKERFILE: &str = "FROM scratch\nARG APP_VERSION\nCOPY hello.txt /hello.txt\nLABEL app.version=$APP_VERSION\n";
const THREE: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
const VERSION: &str = "0.1.0";
/// The origin remote the projects get, for the `source` label.
const ORIGIN: &str = "https://git.example.com/team/app.git";

/// A committed project at 0.1.0 with the Dockerfile above and `[image]` naming
/// `HOST/team/app` for `platforms`; `extra` lines follow `platforms`, from line 6.
fn project(registry: &Registry, platforms: &[&str], extra: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", format!("{VERSION}\n"));
    repo.write("hello.txt", "hello\n");
    repo.write("Dockerfile", DOCKERFILE);
    repo.write(
        "castoff.toml",
        format!(
            "[version]\n\n[image]\nname = \"{}/team/app\"\nplatforms = {}\n{extra}\n\n\
             [network]\nattempts = 2\ntimeout_seconds = 10\ntotal_seconds = 30\n",
            registry.host(),
            serde_json::to_string(platforms).unwrap()
        ),
    );
    repo.git(&["remote", "add", "origin", ORIGIN]);
    repo.commit_all();
    repo
}

/// `os/arch` to the tag suffix (`linux/arm/v7` → `armv7`).
fn suffix(platform: &str) -> String {
    platform.split('/').skip(1).collect()
}

fn tag(platform: &str) -> String {
    format!("{VERSION}-{}", suffix(platform))
}

fn reference(registry: &Registry, platform: &str) -> String {
    registry.reference(&format!("team/app:{}", tag(platform)))
}

/// PATH with `first` in front of the test's own.
fn path_with(first: &[PathBuf]) -> OsString {
    let current = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(first.iter().cloned().chain(std::env::split_paths(&current))).expect("PATH entries")
}

/// The environment castoff runs with: the builder's variables and PATH.
struct Env {
    vars: Vec<(String, OsString)>,
}

impl Env {
    /// The private daemon, with the 20.10 client first on PATH.
    fn docker(dockerd: &Dockerd) -> Env {
        Env::with(dockerd.env(), &[dockerd.bin_dir()])
    }

    /// The daemon, with the fake buildx `docker` first on PATH.
    fn buildx(dockerd: &Dockerd, fake: &FakeBuildx) -> Env {
        Env::with(dockerd.env(), &[fake.bin_dir()])
    }

    /// buildah and podman in private storage; no Docker client config of the user's.
    /// (buildah and podman refuse to push when DOCKER_CONFIG has no config.json.)
    fn storage(storage: &ContainerStorage, docker_config: &Path) -> Env {
        std::fs::write(docker_config.join("config.json"), "{\"auths\": {}}\n").expect("write config.json");
        let mut vars = storage.env();
        vars.push(("DOCKER_CONFIG".into(), docker_config.display().to_string()));
        Env::with(vars, &[])
    }

    fn with(vars: Vec<(String, String)>, path_first: &[PathBuf]) -> Env {
        let mut vars: Vec<(String, OsString)> = vars.into_iter().map(|(k, v)| (k, v.into())).collect();
        vars.push(("PATH".into(), path_with(path_first)));
        Env { vars }
    }

    /// `castoff ARGS` in `repo` with this environment.
    fn castoff(&self, repo: &TempRepo, args: &[&str]) -> assert_cmd::Command {
        let mut command = repo.castoff(args);
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    /// `castoff --json build ARGS`, asserted to succeed; its one JSON object.
    fn build_json(&self, repo: &TempRepo, args: &[&str]) -> Value {
        let args: Vec<&str> = ["build"].iter().chain(args).copied().collect();
        let output = self.castoff(repo, &with_json(&args)).output().expect("run castoff");
        assert!(
            output.status.success(),
            "`castoff --json {}` failed ({}):\nstderr:\n{}\nstdout:\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        json_line(&output.stdout)
    }
}

/// `(os, architecture, variant)` of a config or platform object (variant "" when absent).
fn platform_of(value: &Value) -> String {
    let parts = [&value["os"], &value["architecture"], &value["variant"]];
    parts.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("/")
}

/// The manifest digest the registry serves for `team/app:TAG`.
fn registry_digest(registry: &Registry, tag: &str) -> String {
    let response = registry.get(&format!("/v2/team/app/manifests/{tag}"));
    assert_eq!(response.status, 200, "team/app:{tag} is not in the registry:\n{}", registry.log());
    response.digest.expect("the registry sends Docker-Content-Digest")
}

/// Manifest PUTs the registry answered (what a build pushed).
fn manifest_puts(registry: &Registry) -> Vec<String> {
    registry
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path().contains("/manifests/"))
        .map(|r| r.uri)
        .collect()
}

/// Each of `platforms` is in castoff's JSON as pushed under its platform tag with the
/// digest the registry has, and its image config names the platform, the OCI labels
/// and the default build arg.
fn assert_pushed(registry: &Registry, repo: &TempRepo, outcome: &Value, platforms: &[&str]) {
    let images = outcome["images"].as_array().unwrap_or_else(|| panic!("no images in {outcome}"));
    let listed: Vec<&str> = images.iter().map(|i| i["platform"].as_str().unwrap_or("")).collect();
    assert_eq!(listed, platforms, "{outcome}");
    let head = repo.git(&["rev-parse", "HEAD"]);
    for (image, platform) in images.iter().zip(platforms) {
        assert_eq!(image["reference"], reference(registry, platform), "{outcome}");
        assert_eq!(image["status"], "pushed", "{outcome}");
        assert_eq!(image["digest"], registry_digest(registry, &tag(platform)), "{outcome}");
        let config = registry.image_config("team/app", &tag(platform));
        assert_eq!(platform_of(&config), *platform, "{config}");
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], VERSION, "{config}");
        assert_eq!(labels["org.opencontainers.image.revision"], head.trim(), "{config}");
        assert_eq!(labels["org.opencontainers.image.source"], ORIGIN, "{config}");
        assert!(labels["org.opencontainers.image.created"].as_str().is_some_and(|c| c.starts_with("20")), "{config}");
        assert_eq!(labels["app.version"], VERSION, "APP_VERSION is not passed as a build arg: {config}");
    }
}

/// A --digest-file `reference` is the image's tag reference, optionally pinned
/// (`IMAGE:TAG@DIGEST`).
fn assert_reference(recorded: &Value, image: &Value) {
    let (tagged, digest) = (image["reference"].as_str().unwrap_or(""), image["digest"].as_str().unwrap_or(""));
    let recorded = recorded.as_str().unwrap_or_else(|| panic!("no reference: {recorded}"));
    assert!(recorded == tagged || recorded == format!("{tagged}@{digest}"), "{recorded} is not {tagged}[@{digest}]");
}

/// `castoff manifest` joins the built platform images: one index, one child per
/// platform, each the digest the build reported.
fn assert_manifest_joins(env: &Env, registry: &Registry, repo: &TempRepo, outcome: &Value, platforms: &[&str]) {
    let output = env.castoff(repo, &with_json(&["manifest"])).output().expect("run castoff manifest");
    assert!(output.status.success(), "castoff manifest failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let index = skopeo_inspect_raw(&registry.reference(&format!("team/app:{VERSION}")));
    let children = index["manifests"].as_array().unwrap_or_else(|| panic!("not an index: {index}"));
    let got: Vec<(String, &Value)> = children.iter().map(|c| (platform_of(&c["platform"]), &c["digest"])).collect();
    let built: Vec<(String, &Value)> = outcome["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["platform"].as_str().unwrap().to_string(), &i["digest"]))
        .collect();
    assert_eq!(got.len(), platforms.len(), "{index}");
    for entry in &built {
        assert!(got.contains(entry), "{entry:?} is not in the index {index}");
    }
}

/// A bad `castoff build` is exit 2 with `error:` naming `key` and each of `mentions`, a
/// `hint:`, and with `--json` an error located at castoff.toml's `key`; no file changes.
fn assert_build_rejected(env: &Env, repo: &TempRepo, key: &str, mentions: &[&str]) {
    let before = repo.tree_hash();
    let output = env.castoff(repo, &["build"]).output().expect("run castoff");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("error: ")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("  hint: ")), "{stderr}");
    for needle in std::iter::once(&key).chain(mentions) {
        assert!(stderr.contains(needle), "stderr does not mention {needle:?}:\n{stderr}");
    }
    let output = env.castoff(repo, &with_json(&["build"])).output().expect("run castoff");
    assert_eq!(output.status.code(), Some(2));
    let error = json_line(&output.stdout)["error"].clone();
    assert_eq!(error["exit_code"], 2, "{error}");
    assert_eq!(error["location"]["file"], "castoff.toml", "{error}");
    assert_eq!(error["location"]["key"], key, "{error}");
    assert_eq!(repo.tree_hash(), before, "a rejected build changed files");
}

/// The docker builder (BuildKit through the 20.10 client, no buildx) builds three
/// platforms, pushes each under its platform tag with the OCI labels and build arg,
/// records them in --digest-file, and `castoff manifest` joins them.
#[test]
fn docker_builder_builds_pushes_and_manifest_joins() {
    let dockerd = Dockerd::shared();
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "builder = \"docker\"");
    let env = Env::docker(dockerd);

    let outcome = env.build_json(&repo, &["--digest-file", "digests.json"]);

    assert_eq!(outcome["builder"], "docker", "{outcome}");
    assert_eq!(outcome["dry_run"], false, "{outcome}");
    assert_pushed(&registry, &repo, &outcome, &THREE);
    let recorded: Value = serde_json::from_str(&repo.read_string("digests.json")).expect("digests.json is JSON");
    let recorded = recorded.as_array().unwrap_or_else(|| panic!("three platforms give an array: {recorded}"));
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    for (entry, image) in recorded.iter().zip(outcome["images"].as_array().unwrap()) {
        assert_eq!((&entry["platform"], &entry["digest"]), (&image["platform"], &image["digest"]));
        assert_reference(&entry["reference"], image);
    }
    assert_manifest_joins(&env, &registry, &repo, &outcome, &THREE);
}

/// buildah builds three platforms into private storage (chroot isolation, vfs) and
/// pushes them over plain HTTP; `castoff manifest` joins them.
#[test]
fn buildah_builder_builds_pushes_and_manifest_joins() {
    let storage = ContainerStorage::new();
    let docker_config = temp_dir();
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "builder = \"buildah\"");
    let env = Env::storage(&storage, docker_config.path());

    let outcome = env.build_json(&repo, &[]);

    assert_eq!(outcome["builder"], "buildah", "{outcome}");
    assert_pushed(&registry, &repo, &outcome, &THREE);
    assert!(
        storage.graph_root().join("vfs-images").is_dir(),
        "buildah did not build in CONTAINERS_STORAGE_CONF's storage"
    );
    assert_manifest_joins(&env, &registry, &repo, &outcome, &THREE);
}

/// podman builds the one platform asked for with --platform; --digest-file holds one
/// object; the other configured platforms are not pushed.
#[test]
fn podman_builder_builds_the_selected_platform() {
    let storage = ContainerStorage::new();
    let docker_config = temp_dir();
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "builder = \"podman\"");
    let env = Env::storage(&storage, docker_config.path());

    let outcome = env.build_json(&repo, &["--platform", "linux/arm/v7", "--digest-file", "armv7.json"]);

    assert_eq!(outcome["builder"], "podman", "{outcome}");
    assert_pushed(&registry, &repo, &outcome, &["linux/arm/v7"]);
    let recorded: Value = serde_json::from_str(&repo.read_string("armv7.json")).expect("armv7.json is JSON");
    assert_eq!(recorded["platform"], "linux/arm/v7", "one platform gives one object: {recorded}");
    assert_eq!(recorded["digest"], outcome["images"][0]["digest"], "{recorded}");
    assert_reference(&recorded["reference"], &outcome["images"][0]);
    let puts = manifest_puts(&registry);
    assert_eq!(puts, [format!("/v2/team/app/manifests/{}", tag("linux/arm/v7"))], "only armv7 is pushed");
}

/// The buildx builder runs `docker buildx build` with the platform, tag, push,
/// provenance, metadata file, Dockerfile, build arg, labels and context; the digest it
/// reports is the one the registry has for the tag.
#[test]
fn buildx_builder_passes_every_flag_and_reports_the_pushed_digest() {
    let dockerd = Dockerd::shared();
    let fake = FakeBuildx::install(dockerd);
    let registry = Registry::start();
    let repo = project(&registry, &["linux/arm64"], "builder = \"buildx\"");
    let env = Env::buildx(dockerd, &fake);

    let outcome = env.build_json(&repo, &[]);

    assert_eq!(outcome["builder"], "buildx", "{outcome}");
    assert_pushed(&registry, &repo, &outcome, &["linux/arm64"]);
    let calls = fake.build_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call[..2], ["buildx", "build"], "{call:?}");
    let reference = reference(&registry, "linux/arm64");
    for (flag, value) in [
        ("--platform", "linux/arm64"),
        ("-t", reference.as_str()),
        ("--build-arg", "APP_VERSION=0.1.0"),
        ("--label", "org.opencontainers.image.version=0.1.0"),
        ("--label", &format!("org.opencontainers.image.source={ORIGIN}")),
    ] {
        assert!(has_flag_value(call, flag, value), "no `{flag} {value}` in {call:?}");
    }
    for flag in ["--push", "--provenance=false"] {
        assert!(call.iter().any(|a| a == flag), "no {flag} in {call:?}");
    }
    let value_of = |flag: &str| call.iter().position(|a| a == flag).and_then(|at| call.get(at + 1)).cloned();
    assert!(value_of("--metadata-file").is_some(), "no --metadata-file in {call:?}");
    let dockerfile = value_of("-f").or_else(|| value_of("--file")).unwrap_or_else(|| panic!("no -f in {call:?}"));
    assert_eq!(canonical(&repo, &dockerfile), canonical(&repo, "Dockerfile"), "{call:?}");
    let context = call.last().unwrap();
    assert_eq!(canonical(&repo, context), canonical(&repo, "."), "the context is not the project root: {call:?}");
    assert!(!call.iter().any(|a| a == "--builder"), "no builder configured, yet {call:?}");
}

/// A path as castoff passed it (absolute, or relative to the project), resolved.
fn canonical(repo: &TempRepo, path: &str) -> PathBuf {
    let path = repo.path().join(path);
    path.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `buildx_builder = "remote1"` selects that builder on every build.
#[test]
fn buildx_builder_setting_adds_builder_flag() {
    let dockerd = Dockerd::shared();
    let fake = FakeBuildx::install(dockerd);
    let registry = Registry::start();
    let platforms = ["linux/amd64", "linux/arm64"];
    let repo = project(&registry, &platforms, "builder = \"buildx\"\nbuildx_builder = \"remote1\"");
    let env = Env::buildx(dockerd, &fake);

    let outcome = env.build_json(&repo, &["--jobs", "2"]);

    assert_pushed(&registry, &repo, &outcome, &platforms);
    let calls = fake.build_calls();
    assert_eq!(calls.len(), 2, "one build per platform: {calls:?}");
    for call in &calls {
        assert!(has_flag_value(call, "--builder", "remote1"), "no `--builder remote1` in {call:?}");
    }
}

/// `--single-build` makes one multi-platform buildx call; each platform's image still
/// ends up under its own platform tag with the digest castoff reports.
#[test]
fn buildx_single_build_makes_one_multi_platform_call() {
    let dockerd = Dockerd::shared();
    let fake = FakeBuildx::install(dockerd);
    let registry = Registry::start();
    let platforms = ["linux/amd64", "linux/arm64"];
    let repo = project(&registry, &platforms, "builder = \"buildx\"");
    let env = Env::buildx(dockerd, &fake);

    let outcome = env.build_json(&repo, &["--single-build"]);

    let calls = fake.build_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(has_flag_value(&calls[0], "--platform", "linux/amd64,linux/arm64"), "{calls:?}");
    assert_pushed(&registry, &repo, &outcome, &platforms);
}

/// With `builder = "auto"`, buildx wins when `docker buildx version` works, else the
/// docker builder when a daemon answers; a dry run says so, plans the commands, and
/// pushes nothing.
#[test]
fn auto_prefers_buildx_then_docker_and_dry_run_pushes_nothing() {
    let dockerd = Dockerd::shared();
    let fake = FakeBuildx::install(dockerd);
    let registry = Registry::start();
    let repo = project(&registry, &["linux/arm64"], "builder = \"auto\"");

    let with_buildx = Env::buildx(dockerd, &fake).build_json(&repo, &["--dry-run"]);
    assert_eq!(with_buildx["builder"], "buildx", "{with_buildx}");
    let without = Env::docker(dockerd).build_json(&repo, &["--dry-run"]);
    assert_eq!(without["builder"], "docker", "{without}");
    assert!(without["reason"].as_str().is_some_and(|r| r.contains("buildx")), "say why not buildx: {without}");

    for outcome in [&with_buildx, &without] {
        assert_eq!(outcome["dry_run"], true, "{outcome}");
        assert_eq!(outcome["images"][0]["status"], "would-build", "{outcome}");
        let planned = outcome["planned"].as_array().unwrap_or_else(|| panic!("no planned commands: {outcome}"));
        let build = planned.iter().filter_map(Value::as_str).find(|p| p.contains("build"));
        let build = build.unwrap_or_else(|| panic!("no build command planned: {outcome}"));
        assert!(build.contains("--platform linux/arm64"), "{build}");
    }
    assert!(fake.build_calls().is_empty(), "a dry run ran buildx: {:?}", fake.build_calls());
    assert_eq!(manifest_puts(&registry), Vec::<String>::new(), "a dry run pushed");
}

/// A missing Dockerfile is bad input naming the file and `image.dockerfile`, found
/// before any build runs: nothing reaches the registry.
#[test]
fn missing_dockerfile_is_rejected_before_anything_is_pushed() {
    let dockerd = Dockerd::shared();
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "builder = \"docker\"\ndockerfile = \"docker/Dockerfile\"");

    assert_build_rejected(&Env::docker(dockerd), &repo, "image.dockerfile", &["docker/Dockerfile"]);

    assert_eq!(manifest_puts(&registry), Vec::<String>::new());
    assert!(registry.requests().iter().all(|r| r.method != "PUT" && r.method != "POST"), "{:?}", registry.requests());
}

/// A build context outside the project is rejected at `image.context` (line 6).
#[test]
fn context_outside_the_project_is_rejected() {
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "context = \"..\"\nbuilder = \"docker\"");
    check_rejected(&repo, &["build"], Some(Loc::file("castoff.toml").line(6).key("image.context")), &[".."])
        .unwrap_or_else(|complaint| panic!("{complaint}"));
    assert_eq!(manifest_puts(&registry), Vec::<String>::new());
}

/// With `builder = "auto"` and no builder on PATH (only git) and no [image.native], the
/// error lists every builder castoff looked for and how to get each.
#[test]
fn no_builder_available_lists_every_option() {
    let registry = Registry::start();
    let repo = project(&registry, &["linux/amd64"], "builder = \"auto\"");
    let bin = temp_dir();
    let git = which_git();
    std::os::unix::fs::symlink(&git, bin.path().join("git")).expect("symlink git");

    let output = repo
        .castoff(["build"])
        .env("PATH", bin.path())
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", bin.path())
        .output()
        .expect("run castoff");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(1 | 2)), "exit {:?}:\n{stderr}", output.status.code());
    assert!(stderr.lines().any(|l| l.starts_with("error: ")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("  hint: ")), "{stderr}");
    for needle in ["buildx", "docker", "buildah", "podman", "native", "install", "docker.io", "[image.native]"] {
        assert!(stderr.contains(needle), "the error does not mention {needle:?}:\n{stderr}");
    }
    assert_eq!(manifest_puts(&registry), Vec::<String>::new());
}

/// Where git is, to offer castoff a PATH holding nothing else.
fn which_git() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("git"))
        .find(|candidate| candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .expect("git is on PATH (Debian package `git`)")
}

/// A daemon that dies mid-build (killed right after the first platform's push) fails
/// the build: non-zero exit, the failing command and its stderr's tail, and a hint
/// about the daemon. The first platform stays pushed; the others never reach the
/// registry.
#[test]
fn a_daemon_dying_mid_build_fails_with_the_command_and_a_daemon_hint() {
    let dockerd = Dockerd::start(); // this test kills it: never the shared one
    let registry = Registry::start();
    let repo = project(&registry, &THREE, "builder = \"docker\"");
    let wrapper = temp_dir();
    let marker = wrapper.path().join("killed");
    let script = format!(
        "#!/bin/sh\n\
         # The 20.10 client; after the first successful push, SIGKILL the daemon.\n\
         /usr/bin/docker \"$@\"\n\
         status=$?\n\
         case \" $* \" in\n  *\" push \"*)\n\
         if [ \"$status\" -eq 0 ] && [ ! -e '{marker}' ]; then touch '{marker}'; kill -KILL {pid}; fi;;\n\
         esac\n\
         exit $status\n",
        marker = marker.display(),
        pid = dockerd.pid(),
    );
    let docker = wrapper.path().join("docker");
    std::fs::write(&docker, script).expect("write the wrapper");
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod the wrapper");
    let env = Env::with(dockerd.env(), &[wrapper.path().to_path_buf()]);

    let output = env.castoff(&repo, &["build", "--jobs", "1"]).output().expect("run castoff");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(marker.exists(), "the wrapper never saw a successful push:\n{stderr}");
    assert!(!output.status.success(), "the build succeeded without its daemon:\n{stderr}");
    assert!(stderr.contains("docker build") || stderr.contains("docker push"), "no failing command:\n{stderr}");
    // BuildKit says "failed to dial gRPC: cannot connect to the Docker daemon", push "Cannot connect to ...".
    let lower = stderr.to_lowercase();
    assert!(lower.contains("cannot connect to the docker daemon"), "no stderr tail of the failing command:\n{stderr}");
    let hint = stderr.lines().skip_while(|l| !l.starts_with("  hint: ")).collect::<Vec<_>>().join("\n");
    assert!(hint.to_lowercase().contains("daemon"), "the hint does not mention the daemon:\n{stderr}");
    let puts = manifest_puts(&registry);
    assert_eq!(puts, [format!("/v2/team/app/manifests/{}", tag("linux/amd64"))], "{stderr}");
}

/// CI fan-out: each "runner" builds one platform and writes a digest file; `castoff
/// manifest --from-digests` joins exactly those digests. A platform without a digest
/// file, one recorded twice, or digest files of another version are refused (exit 2,
/// naming the platform, both files or both versions) with nothing pushed.
#[test]
fn manifest_from_digests_joins_the_fanned_out_builds() {
    let storage = ContainerStorage::new();
    let docker_config = temp_dir();
    let registry = Registry::start();
    let two = ["linux/amd64", "linux/arm64"];
    let repo = project(&registry, &two, "builder = \"buildah\"");
    let env = Env::storage(&storage, docker_config.path());
    let mut recorded = Vec::new();
    for platform in two {
        let file = format!("digests/{}.json", suffix(platform));
        let outcome = env.build_json(&repo, &["--platform", platform, "--digest-file", &file]);
        recorded.push((platform.to_string(), outcome["images"][0]["digest"].as_str().unwrap().to_string()));
    }

    // Only one digest file: the other platform is missing.
    std::fs::rename(repo.join("digests/arm64.json"), repo.join("arm64.json.saved")).unwrap();
    let output = env.castoff(&repo, &["manifest", "--from-digests", "digests"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no digest for linux/arm64") && stderr.contains("hint:"), "{stderr}");
    // The same platform twice.
    std::fs::copy(repo.join("digests/amd64.json"), repo.join("digests/amd64-again.json")).unwrap();
    let output = env.castoff(&repo, &["manifest", "--from-digests", "digests"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("recorded twice") && stderr.contains("amd64.json"), "{stderr}");
    let tag_puts = |registry: &Registry| {
        manifest_puts(registry).iter().filter(|p| p.ends_with(VERSION) || p.ends_with("/latest")).count()
    };
    assert_eq!(tag_puts(&registry), 0, "a refused manifest pushed something");
    std::fs::remove_file(repo.join("digests/amd64-again.json")).unwrap();
    std::fs::rename(repo.join("arm64.json.saved"), repo.join("digests/arm64.json")).unwrap();

    let output = env.castoff(&repo, &with_json(&["manifest", "--from-digests", "digests"])).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let index = skopeo_inspect_raw(&registry.reference(&format!("team/app:{VERSION}")));
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|c| (platform_of(&c["platform"]), c["digest"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(children, recorded, "the index holds exactly the recorded digests, in configured order");

    // The next version must not publish these builds: the digest files name 0.1.0.
    repo.write("VERSION", "0.1.1\n");
    let output = env.castoff(&repo, &["manifest", "--from-digests", "digests"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("recorded for version 0.1.0, but this release is 0.1.1"), "{stderr}");
    assert_eq!(registry.get("/v2/team/app/manifests/0.1.1").status, 404, "stale builds were published");
}

/// A RUN step on a platform this machine cannot execute (here: an arm64 `/bin/sh` with
/// no binfmt emulation registered) fails with the builder's own error passed on and a
/// hint about emulation; nothing is pushed. The base image is made locally: one layer
/// holding an arm64 ELF header as `/bin/sh`, which the kernel refuses to execute.
#[test]
fn a_run_step_without_emulation_passes_on_the_error_with_a_binfmt_hint() {
    let storage = ContainerStorage::new();
    let docker_config = temp_dir();
    let registry = Registry::start();
    let repo = project(&registry, &["linux/arm64"], "builder = \"buildah\"\ndockerfile = \"Dockerfile.run\"");
    let base = temp_dir();
    std::fs::write(base.path().join("layer.tar"), arm64_shell_layer()).unwrap();
    std::fs::write(base.path().join("Containerfile"), "FROM scratch\nADD layer.tar /\n").unwrap();
    let made = storage
        .buildah()
        .args(["build", "-q", "--isolation", "chroot", "--platform", "linux/arm64", "-t", "localhost/armbase:1"])
        .arg("-f")
        .arg(base.path().join("Containerfile"))
        .arg(base.path())
        .output()
        .expect("run buildah");
    assert!(made.status.success(), "making the arm64 base failed: {}", String::from_utf8_lossy(&made.stderr));
    repo.write("Dockerfile.run", "FROM localhost/armbase:1\nRUN echo hello\n");
    repo.commit_all();
    let env = Env::storage(&storage, docker_config.path());

    let output = env.castoff(&repo, &["build"]).output().expect("run castoff");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exec format error"), "the builder's error is passed on:\n{stderr}");
    assert!(stderr.contains("buildah build"), "the failing command is shown:\n{stderr}");
    let hint = stderr.lines().find(|l| l.starts_with("  hint: ")).unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    assert!(hint.contains("qemu-user-static") && hint.contains("--platform linux/arm64"), "{hint}");
    assert!(manifest_puts(&registry).is_empty(), "nothing may be pushed");
}

/// A tar with `bin/sh`: a 128-byte little-endian ELF64 executable for aarch64 (machine
/// 183) with one program header, enough for the kernel to recognise and refuse it.
fn arm64_shell_layer() -> Vec<u8> {
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    elf.extend_from_slice(&[0; 8]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&0x40_0078u64.to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers at 64
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0u64, 0x40_0000, 0x40_0000, 0x80, 0x80, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    elf.extend_from_slice(&[0; 8]);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(elf.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    tar.append_data(&mut header, "bin/sh", elf.as_slice()).expect("append bin/sh");
    tar.into_inner().expect("finish the tar")
}

/// With an OCI layout as output, auto skips buildx and docker (they only push to
/// registries) even when both work, picks buildah, and says why.
#[test]
fn auto_skips_registry_only_builders_for_an_oci_layout() {
    let dockerd = Dockerd::shared();
    let fake = FakeBuildx::install(dockerd);
    let registry = Registry::start();
    let repo = project(&registry, &["linux/arm64"], "builder = \"auto\"\noutput = \"oci-layout:dist/oci\"");
    let env = Env::buildx(dockerd, &fake);

    let outcome = env.build_json(&repo, &["--dry-run"]);

    assert_eq!(outcome["builder"], "buildah", "{outcome}");
    assert!(outcome["reason"].as_str().unwrap_or_default().contains("OCI layout"), "{outcome}");
    assert!(fake.build_calls().is_empty(), "a dry run builds nothing");
    assert!(!repo.join("dist/oci").exists(), "a dry run creates no layout");
}
