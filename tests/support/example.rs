//! The example project (examples/app: the native builder, three platforms, one NuGet
//! package with a snupkg) as the release tests use it: a git copy of it, rewired to the
//! test's own registry and feeds, and the real `castoff` binary run in it with a fixed
//! SOURCE_DATE_EPOCH and none of the machine's credentials. Shared by `release` (the full
//! release, the crash matrix) and `secrets` (every command with secrets set).

use std::fs;
use std::path::Path;
use std::process::ExitStatus;

use serde_json::Value;
use testkit::pynuget::Pynuget;

use super::registry::Registry;
use super::TempRepo;

pub const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app");
pub const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm/v6", "linux/arm/v7"];
pub const STEPS: [&str; 6] = ["bump", "build", "manifest", "pack", "publish", "git"];
pub const PACKAGE_ID: &str = "Example.App";
/// The example's nuspec, relative to the repository.
pub const NUSPEC: &str = "nuget/Example.App.nuspec";
/// The variable castoff.toml names for the pynuget feeds' key.
pub const KEY_ENV: &str = "CASTOFF_IT_RELEASE_FEED_KEY";
pub const FEED_KEY: &str = "release-tests-feed-key-0123";
/// Fixes the `created` annotation, so separate runs on one commit are comparable.
pub const SOURCE_DATE_EPOCH: &str = "1700000000";
/// A git identity for the git step's commit and tag, so it does not depend on the
/// machine's git config.
pub const GIT_IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "castoff tests"),
    ("GIT_AUTHOR_EMAIL", "tests@castoff.invalid"),
    ("GIT_COMMITTER_NAME", "castoff tests"),
    ("GIT_COMMITTER_EMAIL", "tests@castoff.invalid"),
];
/// Not copied from examples/app: castoff's private state and what earlier runs built.
const NOT_COPIED: &[&str] = &[".castoff/cache", ".castoff/lock", ".castoff/journal", ".castoff/release.lock", "dist"];
/// A file of random bytes put into every image and into the package of the crash matrix,
/// so that a blob upload and a NuGet push are read in many pieces and can be cut in the
/// middle.
pub const PAYLOAD: &str = "assets/payload.bin";
pub const PAYLOAD_BYTES: usize = 3 << 20;

// ---------------------------------------------------------------------------------------
// The example project
// ---------------------------------------------------------------------------------------

/// The example's VERSION and the version its next patch release gets.
pub fn example_versions() -> (String, String) {
    let text = fs::read_to_string(format!("{EXAMPLE}/VERSION")).expect("examples/app/VERSION");
    let version = semver::Version::parse(text.trim()).expect("examples/app/VERSION holds a version");
    let next = semver::Version::new(version.major, version.minor, version.patch + 1);
    (version.to_string(), next.to_string())
}

pub fn next_version() -> String {
    example_versions().1
}

/// A git repository holding a copy of examples/app (with `payload`: [`PAYLOAD`] added,
/// and packed into the NuGet package as `content/payload.bin` so that the nupkg is
/// megabytes), committed, then a change to a tracked source (app.py) committed on top,
/// so that `castoff release` (auto) bumps the patch.
pub fn example_repo(payload: bool) -> TempRepo {
    let repo = TempRepo::new();
    copy_tree(Path::new(EXAMPLE), repo.path(), "");
    if payload {
        repo.write(PAYLOAD, pseudo_random(PAYLOAD_BYTES));
        let nuspec = repo.read_string(NUSPEC);
        let file = format!("    <file src=\"../{PAYLOAD}\" target=\"content\" />\n  </files>");
        assert!(nuspec.contains("</files>"), "the example's nuspec has <files>:\n{nuspec}");
        repo.write(NUSPEC, nuspec.replacen("  </files>", &file, 1));
    }
    repo.commit_all();
    let app = repo.read_string("app.py");
    repo.write("app.py", format!("{app}# changed for a release test\n"));
    repo.commit_all();
    repo
}

fn copy_tree(from: &Path, to: &Path, rel: &str) {
    let dir = from.join(rel);
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if NOT_COPIED.contains(&path.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            fs::create_dir_all(to.join(&path)).unwrap();
            copy_tree(from, to, &path);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), to.join(&path)).unwrap();
        } else {
            fs::copy(entry.path(), to.join(&path)).unwrap_or_else(|e| panic!("copy {path}: {e}"));
        }
    }
}

/// `len` bytes that do not compress (xorshift), the same on every run.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Where a copy of the example releases to; what is not set stays as the example has it
/// (OCI layout in dist/oci, the embedded default folder feed, no git step).
#[derive(Default, Clone, Copy)]
pub struct Setup<'a> {
    /// Push the images to this registry under this repository name.
    pub registry: Option<(&'a Registry, &'a str)>,
    /// Publish to this pynuget as feed `pynuget` (protocol v2, key from [`KEY_ENV`],
    /// symbols none: a v2 feed has no symbol endpoint).
    pub pynuget: Option<&'a Pynuget>,
    /// Publish to this second pynuget as feed `pynuget2`, as `pynuget` is.
    pub pynuget2: Option<&'a Pynuget>,
    /// Also publish to a folder feed `folder` in dist/feed.
    pub folder_feed: bool,
    /// `[release] git = true`.
    pub git: bool,
    /// Put [`PAYLOAD`] into every image.
    pub payload: bool,
}

/// Rewrite the copy's castoff.toml for `setup` (left uncommitted, so copies of one
/// template share their commit).
pub fn configure(repo: &TempRepo, setup: &Setup<'_>) {
    let mut config: toml::Table = repo.read_string("castoff.toml").parse().expect("the example's castoff.toml");
    let image = config.get_mut("image").and_then(|v| v.as_table_mut()).expect("the example has [image]");
    if let Some((registry, name)) = setup.registry {
        image.insert("name".into(), registry.reference(name).into());
        image.remove("output");
    }
    if setup.payload {
        let files = image
            .get_mut("native")
            .and_then(|native| native.get_mut("files"))
            .and_then(|files| files.as_array_mut())
            .expect("the example has [image.native] files");
        let mut file = toml::Table::new();
        file.insert("src".into(), PAYLOAD.into());
        file.insert("dst".into(), "/app/payload.bin".into());
        file.insert("mode".into(), "0644".into());
        files.push(file.into());
    }
    let mut feeds = Vec::new();
    for (name, feed) in [("pynuget", setup.pynuget), ("pynuget2", setup.pynuget2)] {
        let Some(feed) = feed else { continue };
        let mut table = toml::Table::new();
        table.insert("name".into(), name.into());
        table.insert("url".into(), feed.url().into());
        table.insert("protocol".into(), "v2".into());
        table.insert("api_key_env".into(), KEY_ENV.into());
        table.insert("symbols".into(), "none".into());
        feeds.push(toml::Value::from(table));
    }
    if setup.folder_feed {
        let mut table = toml::Table::new();
        table.insert("name".into(), "folder".into());
        table.insert("url".into(), "dist/feed".into());
        feeds.push(toml::Value::from(table));
    }
    if !feeds.is_empty() {
        config.insert("feed".into(), feeds.into());
    }
    if setup.git {
        let mut release = toml::Table::new();
        release.insert("git".into(), true.into());
        config.insert("release".into(), release.into());
    }
    repo.write("castoff.toml", toml::to_string(&config).expect("castoff.toml serialises"));
}

// ---------------------------------------------------------------------------------------
// Running castoff
// ---------------------------------------------------------------------------------------

/// One finished castoff process.
pub struct Run {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "`castoff {}` ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.status,
            self.stdout,
            self.stderr
        )
    }

    pub fn assert_ok(&self) -> &Run {
        assert!(self.status.success(), "expected success: {}", self.describe());
        self
    }

    /// Every stdout line as JSON (for `--json` runs).
    pub fn lines(&self) -> Vec<Value> {
        self.try_lines().unwrap_or_else(|problem| panic!("{problem}\n{}", self.describe()))
    }

    /// Every stdout line as JSON, or what is not JSON.
    pub fn try_lines(&self) -> Result<Vec<Value>, String> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| format!("a stdout line is not JSON ({e}): {line}")))
            .collect()
    }

    pub fn event(&self, name: &str) -> Value {
        let found: Vec<Value> = self.lines().into_iter().filter(|line| line["event"] == name).collect();
        assert_eq!(found.len(), 1, "expected one `{name}` line: {}", self.describe());
        found.into_iter().next().unwrap()
    }

    /// `(step, status)` of every step-finished line, in order.
    pub fn statuses(&self) -> Vec<(String, String)> {
        self.lines()
            .iter()
            .filter(|line| line["event"] == "step-finished")
            .map(|line| (text(&line["step"]), text(&line["status"])))
            .collect()
    }

    pub fn status_of(&self, step: &str) -> String {
        let found: Vec<String> = self.statuses().into_iter().filter(|(s, _)| s == step).map(|(_, st)| st).collect();
        assert_eq!(found.len(), 1, "expected one step-finished line for {step}: {}", self.describe());
        found.into_iter().next().unwrap()
    }
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}")).to_string()
}

/// `castoff ARGS` in `repo` with `env`, a fixed SOURCE_DATE_EPOCH, no crash point and no
/// registry credentials or docker config of the machine's unless `env` gives them.
pub fn castoff(repo: &TempRepo, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = repo.castoff(args);
    for name in ["CASTOFF_CRASH_AT", "CASTOFF_REGISTRY_USERNAME", "CASTOFF_REGISTRY_PASSWORD", KEY_ENV] {
        command.env_remove(name);
    }
    let no_docker_config = std::env::temp_dir().join(format!("castoff-it-no-docker-config-{}", std::process::id()));
    command.env("DOCKER_CONFIG", &no_docker_config).env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run castoff");
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `.castoff/journal/<version>.json`, parsed.
pub fn journal(repo: &TempRepo, version: &str) -> Value {
    let rel = format!(".castoff/journal/{version}.json");
    serde_json::from_str(&repo.read_string(&rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// The pushes a pynuget answered, as `(status)` in order.
pub fn feed_puts(feed: &Pynuget) -> Vec<u16> {
    feed.requests().iter().filter(|r| r.method == "PUT").map(|r| r.status).collect()
}
