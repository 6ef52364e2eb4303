//! A stand-in for `docker` with the buildx plugin, which cannot be installed on these
//! machines (DESIGN.md, "Real parts"). [`FakeBuildx::install`] writes an executable
//! `docker` (python3) into its own bin directory; put that first on PATH. It
//!
//! - records every call's arguments (without the program name) as one JSON array per line,
//!   read back with [`FakeBuildx::calls`];
//! - answers `docker buildx version` with `github.com/docker/buildx v0.12.1-fake` and
//!   `buildx inspect`/`ls` with a plausible builder;
//! - performs `docker buildx build` for real against a [`Dockerd`]: per platform a
//!   `DOCKER_BUILDKIT=1 docker build --platform P` with the docker.io 20.10 client, then
//!   `docker push` when asked, and for several platforms (buildx's one multi-platform build)
//!   `docker manifest create/push --insecure` of the pushed images. The digest the push
//!   printed goes into `--metadata-file` as `containerimage.digest`. A failing build exits
//!   with the build's status, its stderr passed through;
//! - hands every other command to the 20.10 client unchanged (BuildKit on, as with a real
//!   buildx install, where `docker build` is buildx).
//!
//! Flags are parsed as buildx 0.12 parses them, including its traps: `--provenance` and
//! `--sbom` take a value only as `--provenance=false` (a separate `false` would be the
//! build context), `--push` with `--load` is refused, several platforms cannot `--load`,
//! unknown flags fail. `--builder` is accepted with any name (recorded, not checked).
//!
//! The daemon and client config come from DOCKER_HOST/DOCKER_CONFIG when set, otherwise
//! from the [`Dockerd`] given to `install` (baked into the script). Because that daemon
//! runs with `--bridge=none`, builds get `--network none` unless the caller chose a network.
//!
//! What is not like buildx: per-platform images are also tagged `NAME:castoff-fake-SUFFIX`
//! (buildx's `push-by-digest=true` pushes them untagged), and the index of a multi-platform
//! push without `-t` is tagged `NAME:castoff-fake-index`. Manifests are Docker v2s2 (the
//! 20.10 daemon's push) and there are no attestations whatever `--provenance` says.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::dockerd::{Dockerd, DOCKER_20_CLIENT};
use crate::programs::{DOCKER, PYTHON3};
use crate::temp_dir;

/// What `docker buildx version` prints.
pub const FAKE_BUILDX_VERSION: &str = "github.com/docker/buildx v0.12.1-fake 0000000";

/// The installed fake: a bin directory with `docker`, and the log of its calls.
pub struct FakeBuildx {
    dir: TempDir,
}

impl FakeBuildx {
    /// Write the fake `docker` for `dockerd` into a fresh bin directory.
    pub fn install(dockerd: &Dockerd) -> FakeBuildx {
        let dir = temp_dir();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("create the fake's bin directory");
        // An absolute interpreter, so the fake works whatever PATH the caller passes on
        // (and does not go through a pyenv shim).
        let system = Path::new("/usr/bin/python3");
        let python = if system.is_file() { system.to_path_buf() } else { PYTHON3.path() };
        // `docker manifest` for multi-platform pushes: the first docker on PATH now (the
        // docker 28 client here; 20.10 has the same commands when it is the only one).
        let manifest_client = DOCKER.path();
        let config = json!({
            "log": dir.path().join("calls.jsonl"),
            "docker": DOCKER_20_CLIENT,
            "manifest_docker": manifest_client,
            "env": {"DOCKER_HOST": dockerd.host(), "DOCKER_CONFIG": dockerd.config_dir()},
            "version": FAKE_BUILDX_VERSION,
        });
        let config = serde_json::to_string(&config.to_string()).expect("JSON strings serialise");
        let script = SCRIPT.replace("@PYTHON@", &python.display().to_string()).replace("@CONFIG@", &config);
        let path = bin.join("docker");
        fs::write(&path, script).expect("write the fake docker");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("make the fake docker executable");
        fs::write(dir.path().join("calls.jsonl"), "").expect("create the call log");
        FakeBuildx { dir }
    }

    /// The directory holding the fake `docker`; put it first on PATH.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The fake `docker` itself.
    pub fn program(&self) -> PathBuf {
        self.bin_dir().join("docker")
    }

    /// Every call so far, in order: the arguments after the program name.
    pub fn calls(&self) -> Vec<Vec<String>> {
        let path = self.dir.path().join("calls.jsonl");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let value: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad call log line {line}: {e}"));
                let args = value.as_array().unwrap_or_else(|| panic!("call log line is not an array: {line}"));
                args.iter().map(|a| a.as_str().unwrap_or_default().to_string()).collect()
            })
            .collect()
    }

    /// The calls that were `buildx build` (global options before `buildx` left in).
    pub fn build_calls(&self) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|args| is_buildx_build(args)).collect()
    }
}

/// Whether `args` run `buildx build` (or its alias `buildx b`).
fn is_buildx_build(args: &[String]) -> bool {
    let Some(at) = args.iter().position(|a| a == "buildx") else { return false };
    let rest: Vec<&str> = args[at + 1..].iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    matches!(rest.first(), Some(&"build") | Some(&"b"))
}

/// Whether `args` hold `flag` followed by `value` (`--platform linux/arm64`) or
/// `flag=value`. For assertions on recorded calls without fixing the flags' order.
pub fn has_flag_value(args: &[String], flag: &str, value: &str) -> bool {
    let joined = format!("{flag}={value}");
    args.contains(&joined) || args.windows(2).any(|pair| pair[0] == flag && pair[1] == value)
}

const SCRIPT: &str = r#"#!@PYTHON@
# castoff tests' stand-in for `docker` with the buildx plugin: see testkit/src/buildx.rs.
import fcntl
import json
import os
import subprocess
import sys

CONFIG = json.loads(@CONFIG@)

# docker's global options that take a value, and those that do not.
GLOBAL_VALUE = {"-H", "--host", "--config", "-c", "--context", "-l", "--log-level",
                "--tlscacert", "--tlscert", "--tlskey"}
GLOBAL_FLAG = {"-D", "--debug", "--tls", "--tlsverify"}

# buildx build's options (0.12): name -> key; repeatable ones collect lists.
BUILD_VALUE = {
    "--platform": "platform", "-t": "tag", "--tag": "tag", "--metadata-file": "metadata_file",
    "-f": "file", "--file": "file", "--build-arg": "build_arg", "--label": "label",
    "--builder": "builder", "--progress": "progress", "-o": "output", "--output": "output",
    "--target": "target", "--network": "network", "--cache-from": "cache_from",
    "--cache-to": "cache_to", "--iidfile": "iidfile", "--secret": "secret", "--ssh": "ssh",
    "--annotation": "annotation", "--attest": "attest", "--build-context": "build_context",
    "--add-host": "add_host", "--shm-size": "shm_size", "--ulimit": "ulimit", "--allow": "allow",
    "--cgroup-parent": "cgroup_parent",
}
# Optional values: only `--provenance=VALUE`; bare means "true" (cobra NoOptDefVal).
BUILD_OPTIONAL = {"--provenance": "provenance", "--sbom": "sbom"}
BUILD_FLAG = {"--push": "push", "--load": "load", "--pull": "pull", "--no-cache": "no_cache",
              "-q": "quiet", "--quiet": "quiet"}
REPEATED = {"platform", "tag", "build_arg", "label", "output", "cache_from", "cache_to",
            "secret", "ssh", "annotation", "attest", "build_context", "add_host", "ulimit", "allow"}


class Fail(Exception):
    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def record(args):
    with open(CONFIG["log"], "a") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        log.write(json.dumps(args) + "\n")


def environment():
    env = dict(os.environ)
    for key, value in CONFIG["env"].items():
        env.setdefault(key, value)
    env.setdefault("DOCKER_BUILDKIT", "1")
    env.setdefault("DOCKER_CLI_HINTS", "false")
    return env


def split_globals(args):
    """docker's global options (kept for the real client) and the rest."""
    kept, i = [], 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE:
            step = 1 if "=" in arg else 2
            if i + step > len(args):
                raise Fail("flag needs an argument: " + arg, 125)
            kept += args[i:i + step]
            i += step
        elif arg in GLOBAL_FLAG:
            kept.append(arg)
            i += 1
        else:
            break
    return kept, args[i:]


def parse_build(args, builder):
    opts = {key: [] for key in REPEATED}
    opts.update(push=False, load=False, builder=builder, context=None)
    positional, i = [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if not arg.startswith("--") and len(arg) > 2 and arg[:2] in BUILD_VALUE:
            name, eq, value = arg[:2], "=", arg[2:]  # -tREF
        if name in BUILD_FLAG:
            if eq and value not in ("true", "false"):
                raise Fail("invalid argument %r for %r flag" % (value, name), 125)
            opts[BUILD_FLAG[name]] = value != "false"
        elif name in BUILD_OPTIONAL:
            opts[BUILD_OPTIONAL[name]] = value if eq else "true"
        elif name in BUILD_VALUE:
            if not eq:
                if i >= len(args):
                    raise Fail("flag needs an argument: " + name, 125)
                value = args[i]
                i += 1
            key = BUILD_VALUE[name]
            if key in REPEATED:
                opts[key].append(value)
            else:
                opts[key] = value
        else:
            raise Fail("unknown flag: " + name, 125)
    if len(positional) != 1:
        raise Fail('"docker buildx build" requires exactly 1 argument (got %r)' % positional, 125)
    opts["context"] = positional[0]
    return opts


def parse_output(spec):
    attrs = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        attrs[key.strip()] = value.strip().strip('"')
    if "type" not in attrs:
        raise Fail("invalid output %r: no type" % spec)
    return attrs


def repository(reference):
    """The reference without its tag or digest."""
    name = reference.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def suffix(platform):
    return "".join(platform.split("/")[1:])


def real(env, globals_, args, capture=False):
    command = [CONFIG["docker"]] + globals_ + args
    sys.stderr.write("[fake buildx] " + " ".join(command) + "\n")
    sys.stderr.flush()
    if capture:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, universal_newlines=True)
        sys.stderr.write(done.stdout)
    else:
        done = subprocess.run(command, env=env, stdout=sys.stderr)
    if done.returncode != 0:
        raise Fail("`%s` failed (exit %d)" % (" ".join(command), done.returncode), done.returncode)
    return done.stdout if capture else ""


def push(env, globals_, reference):
    out = real(env, globals_, ["push", reference], capture=True)
    for line in out.splitlines():
        if ": digest: sha256:" in line:
            words = line.split()
            digest = words[words.index("digest:") + 1]
            size = int(words[words.index("size:") + 1]) if "size:" in words else None
            return digest, size
    raise Fail("`docker push %s` printed no digest:\n%s" % (reference, out))


def build(args, globals_, builder):
    opts = parse_build(args, builder)
    env = environment()
    outputs = [parse_output(spec) for spec in opts["output"]]
    push_wanted, load = opts["push"], opts["load"]
    if push_wanted and load:
        raise Fail("push and load may not be set together at the moment")
    names = list(opts["tag"])
    for out in outputs:
        if out["type"] in ("image", "registry"):
            if out["type"] == "registry" or out.get("push") == "true":
                push_wanted = True
            names += [n for n in out.get("name", "").split(",") if n]
        elif out["type"] == "docker":
            load = True
        else:
            raise Fail("the fake buildx supports only image, registry and docker outputs, not %r" % out["type"])
    platforms = [p for spec in opts["platform"] for p in spec.split(",") if p]
    if push_wanted and not names:
        raise Fail("tag is needed when pushing to registry")
    if load and len(platforms) > 1:
        raise Fail("docker exporter does not currently support exporting manifest lists")

    common = []
    if opts.get("file"):
        common += ["-f", opts["file"]]
    for key, flag in (("build_arg", "--build-arg"), ("label", "--label"), ("add_host", "--add-host"),
                      ("secret", "--secret"), ("ssh", "--ssh"), ("cache_from", "--cache-from")):
        for value in opts[key]:
            common += [flag, value]
    if opts.get("target"):
        common += ["--target", opts["target"]]
    common += ["--network", opts.get("network") or "none"]
    if opts.get("progress") in ("auto", "plain", "tty"):
        common += ["--progress", opts["progress"]]
    for key, flag in (("no_cache", "--no-cache"), ("pull", "--pull")):
        if opts.get(key):
            common.append(flag)

    # What buildx would tag: -t, and output names unless pushed by digest only.
    tags = list(opts["tag"])
    for out in outputs:
        if out["type"] in ("image", "registry") and out.get("push-by-digest") != "true":
            tags += [n for n in out.get("name", "").split(",") if n]
    base = repository(names[0]) if names else None
    metadata = {}
    if len(platforms) <= 1:
        if not tags and base:
            tags = ["%s:castoff-fake-%s" % (base, suffix(platforms[0]) if platforms else "native")]
        iidfile = os.path.join(os.environ.get("TMPDIR", "/tmp"), "castoff-fake-iid-%d" % os.getpid())
        command = ["build", "--iidfile", iidfile] + (["--platform", platforms[0]] if platforms else [])
        for tag in tags:
            command += ["-t", tag]
        real(env, globals_, command + common + [opts["context"]])
        try:
            with open(iidfile) as f:
                metadata["containerimage.config.digest"] = f.read().strip()
            os.unlink(iidfile)
        except OSError:
            pass
        if push_wanted:
            for tag in tags:
                digest, size = push(env, globals_, tag)
            metadata["containerimage.digest"] = digest
            metadata["containerimage.descriptor"] = {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": digest, "size": size}
    else:
        refs = []
        for platform in platforms:
            ref = "%s:castoff-fake-%s" % (base, suffix(platform)) if base else None
            command = ["build", "--platform", platform] + (["-t", ref] if ref else [])
            real(env, globals_, command + common + [opts["context"]])
            if push_wanted:
                push(env, globals_, ref)
                refs.append(ref)
        if push_wanted:
            targets = tags or ["%s:castoff-fake-index" % base]
            manifest = [CONFIG["manifest_docker"]] + globals_ + ["manifest"]
            for target in targets:
                for args_ in (["create", "--insecure", "--amend", target] + refs,
                              ["push", "--insecure", "--purge", target]):
                    command = manifest + args_
                    sys.stderr.write("[fake buildx] " + " ".join(command) + "\n")
                    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, universal_newlines=True)
                    sys.stderr.write(done.stdout)
                    if done.returncode != 0:
                        raise Fail("`%s` failed (exit %d)" % (" ".join(command), done.returncode))
                digests = [l.strip() for l in done.stdout.splitlines() if l.strip().startswith("sha256:")]
                if not digests:
                    raise Fail("`docker manifest push %s` printed no digest" % target)
                metadata["containerimage.digest"] = digests[-1]
                metadata["containerimage.descriptor"] = {
                    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                    "digest": digests[-1]}
    if names:
        metadata["image.name"] = ",".join(names)
    if opts.get("metadata_file"):
        with open(opts["metadata_file"], "w") as f:
            json.dump(metadata, f)
    if opts.get("quiet") and "containerimage.digest" in metadata:
        print(metadata["containerimage.digest"])


def buildx(args, globals_):
    builder = None
    while args and args[0].split("=", 1)[0] == "--builder":
        if "=" in args[0]:
            builder, args = args[0].split("=", 1)[1], args[1:]
        elif len(args) > 1:
            builder, args = args[1], args[2:]
        else:
            raise Fail("flag needs an argument: --builder", 125)
    command = args[0] if args else ""
    if command in ("version", "--version"):
        print(CONFIG["version"])
    elif command in ("build", "b"):
        build(args[1:], globals_, builder)
    elif command == "inspect":
        name = ([a for a in args[1:] if not a.startswith("-")] or [builder or "default"])[0]
        print("Name:   %s\nDriver: docker\n\nNodes:\nName:      %s\nStatus:    running\n"
              "Platforms: linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6" % (name, name))
    elif command == "ls":
        print("NAME/NODE  DRIVER/ENDPOINT  STATUS   PLATFORMS\ndefault *  docker\n"
              "  default  default          running  linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6")
    elif command in ("use", "create", "rm", "stop"):
        pass
    else:
        raise Fail("the fake buildx does not implement `docker buildx %s`" % command)


def main():
    args = sys.argv[1:]
    record(args)
    try:
        globals_, rest = split_globals(args)
        if rest and rest[0] == "buildx":
            buildx(rest[1:], globals_)
            return 0
    except Fail as failure:
        sys.stderr.write("ERROR: %s\n" % failure)
        return failure.status
    os.execve(CONFIG["docker"], [CONFIG["docker"]] + args, environment())


sys.exit(main())
"#;

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::dockerd::tests::{context, pushed_config};
    use crate::images::{skopeo_digest, skopeo_inspect_raw};
    use crate::programs::{output, run_ok};
    use crate::registry::Registry;

    /// `docker ARGS` through the fake, first on PATH.
    fn docker(fake: &FakeBuildx) -> Command {
        let path = std::env::join_paths(
            std::iter::once(fake.bin_dir()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        let mut command = Command::new("docker");
        command.env("PATH", path);
        command
    }

    fn metadata(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).expect("the fake wrote --metadata-file")).expect("metadata is JSON")
    }

    #[test]
    fn version_is_answered_and_other_commands_pass_through() {
        let dockerd = Dockerd::shared();
        let fake = FakeBuildx::install(dockerd);
        assert_eq!(run_ok(docker(&fake).args(["buildx", "version"])).trim(), FAKE_BUILDX_VERSION);
        let server = run_ok(docker(&fake).args(["version", "--format", "{{.Server.Version}}"]));
        assert!(server.starts_with("20.10"), "{server}");
        assert_eq!(fake.calls(), [vec!["buildx", "version"], vec!["version", "--format", "{{.Server.Version}}"]]);
    }

    #[test]
    fn single_platform_build_pushes_and_writes_the_digest() {
        let dockerd = Dockerd::shared();
        let fake = FakeBuildx::install(dockerd);
        let registry = Registry::start();
        let ctx = context();
        let reference = registry.reference("team/app:0.1.0-arm64");
        let meta = ctx.path().join("meta.json");
        let dockerfile = ctx.path().join("Dockerfile");
        run_ok(docker(&fake).args(["buildx", "build", "--builder", "remote1", "--platform", "linux/arm64"]).args([
            "-t",
            &reference,
            "--push",
            "--provenance=false",
            "--metadata-file",
            meta.to_str().unwrap(),
            "-f",
            dockerfile.to_str().unwrap(),
            "--build-arg",
            "APP_VERSION=0.1.0",
            "--label",
            "org.opencontainers.image.version=0.1.0",
            ctx.path().to_str().unwrap(),
        ]));
        let digest = metadata(&meta)["containerimage.digest"].as_str().expect("a digest").to_string();
        assert_eq!(skopeo_digest(&reference), digest);
        let config = pushed_config(&registry, &reference);
        assert_eq!((&config["os"], &config["architecture"]), (&"linux".into(), &"arm64".into()), "{config}");
        assert_eq!(config["config"]["Labels"]["org.opencontainers.image.version"], "0.1.0", "{config}");
        let calls = fake.build_calls();
        assert_eq!(calls.len(), 1);
        assert!(has_flag_value(&calls[0], "--platform", "linux/arm64"), "{calls:?}");
        assert!(has_flag_value(&calls[0], "--builder", "remote1"), "{calls:?}");
    }

    #[test]
    fn multi_platform_build_pushes_an_index() {
        let dockerd = Dockerd::shared();
        let fake = FakeBuildx::install(dockerd);
        let registry = Registry::start();
        let ctx = context();
        let meta = ctx.path().join("meta.json");
        let name = registry.reference("team/app");
        run_ok(docker(&fake).args(["buildx", "build", "--platform", "linux/amd64,linux/arm64,linux/arm/v7"]).args([
            "--output",
            &format!("type=image,name={name},push-by-digest=true,name-canonical=true,push=true"),
            "--provenance=false",
            "--progress=plain",
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.path().to_str().unwrap(),
        ]));
        let digest = metadata(&meta)["containerimage.digest"].as_str().expect("a digest").to_string();
        let index = skopeo_inspect_raw(&format!("{name}@{digest}"));
        let platforms = crate::images::index_platforms(&index);
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"], "{index}");
        let config = pushed_config(&registry, &format!("{name}:castoff-fake-armv7"));
        assert_eq!(config["variant"], "v7", "{config}");
    }

    /// Traps kept from buildx: a separate `false` after `--provenance` is a second context.
    #[test]
    fn provenance_takes_its_value_only_after_an_equals_sign() {
        let fake = FakeBuildx::install(Dockerd::shared());
        let ctx = context();
        let out =
            output(docker(&fake).args(["buildx", "build", "--provenance", "false", ctx.path().to_str().unwrap()]));
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("requires exactly 1 argument"), "{out:?}");
    }

    #[test]
    fn a_failing_build_fails_with_the_builds_stderr() {
        let fake = FakeBuildx::install(Dockerd::shared());
        let ctx = context();
        let out = output(docker(&fake).args(["buildx", "build", "-f", "/nonexistent/Dockerfile"]).arg(ctx.path()));
        assert!(!out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"), "{out:?}");
    }

    #[test]
    fn flag_values_are_found_in_either_spelling() {
        let args: Vec<String> =
            ["buildx", "build", "--platform", "linux/arm64", "--provenance=false"].map(String::from).into();
        assert!(has_flag_value(&args, "--platform", "linux/arm64"));
        assert!(has_flag_value(&args, "--provenance", "false"));
        assert!(!has_flag_value(&args, "--platform", "linux/amd64"));
        assert!(is_buildx_build(&args));
    }
}
