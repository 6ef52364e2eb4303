//! Shared fixtures: temporary git repositories, the real `castoff` binary run inside
//! them, snapshots of their files for "nothing was modified" checks, and the assertion
//! every rejected command must pass.
//!
//! castoff targets unix, so these helpers use unix symlinks and inode numbers freely.
//!
//! Real services for release tests live in submodules: `registry` (a CNCF distribution
//! registry per test), `images` (OCI layouts pushed with skopeo), `docker` (the docker
//! CLI's manifest commands) and `programs` (running them, failing loudly when missing).

pub mod example;
pub mod proxy;
pub mod record;

pub use testkit::{docker, images, programs, registry, temp_dir};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use serde_json::Value;
use tempfile::TempDir;

/// Paths (relative, `/`-separated) that `tree_hash` leaves out: git's data and castoff's
/// private, uncommitted state.
const UNHASHED: &[&str] = &[".git", ".castoff/cache", ".castoff/lock"];

/// A throwaway git repository in its own temporary directory.
pub struct TempRepo {
    dir: TempDir,
}

impl TempRepo {
    /// An empty repository (`git init -q`).
    pub fn new() -> TempRepo {
        let repo = TempRepo { dir: temp_dir() };
        git(repo.path(), &["init", "-q"]);
        repo
    }

    /// A clone of `self` as committed: no stat cache, no lock, every mtime new.
    pub fn clone_repo(&self) -> TempRepo {
        let clone = TempRepo { dir: temp_dir() };
        let (from, to) = (self.path().to_str(), clone.path().to_str());
        git(clone.path(), &["clone", "-q", from.unwrap(), to.unwrap()]);
        clone
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    /// Write `bytes` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_string(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap_or_else(|e| panic!("{rel} is not UTF-8: {e}"))
    }

    pub fn remove(&self, rel: &str) {
        let path = self.join(rel);
        let result = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        result.unwrap_or_else(|e| panic!("remove {rel}: {e}"));
    }

    pub fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.join(rel)).is_ok()
    }

    /// Make `rel` a symlink to `target`.
    pub fn symlink(&self, target: impl AsRef<Path>, rel: &str) {
        std::os::unix::fs::symlink(target, self.join(rel)).unwrap();
    }

    /// Move `rel`'s mtime an hour forward without touching its bytes.
    pub fn touch_forward(&self, rel: &str) {
        let file = fs::File::options().write(true).open(self.join(rel)).unwrap();
        file.set_modified(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    }

    /// What identifies this exact file on disk: its bytes, inode and mtime. Equal before
    /// and after a command means the command neither edited nor replaced it.
    pub fn identity(&self, rel: &str) -> (Vec<u8>, u64, SystemTime) {
        let meta = fs::symlink_metadata(self.join(rel)).unwrap();
        (self.read(rel), meta.ino(), meta.modified().unwrap())
    }

    /// Delete castoff's uncommitted state, as a fresh clone would lack it.
    pub fn forget_private_state(&self) {
        for rel in [".castoff/cache", ".castoff/lock"] {
            if self.exists(rel) {
                self.remove(rel);
            }
        }
    }

    /// `castoff ARGS` with the repository as the working directory.
    pub fn castoff<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        castoff_at(self.path(), args)
    }

    /// `castoff ARGS`, asserted to exit 0; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.castoff(args).assert().success().get_output().clone();
        String::from_utf8(output.stdout).unwrap()
    }

    /// `castoff --json ARGS`, asserted to exit 0; the one JSON object it printed.
    pub fn ok_json(&self, args: &[&str]) -> Value {
        let output = self.castoff(with_json(args)).assert().success();
        json_line(&output.get_output().stdout)
    }

    /// VERSION's text without surrounding whitespace.
    pub fn version(&self) -> String {
        self.read_string("VERSION").trim().to_string()
    }

    /// `.castoff/sources.lock` as recorded.
    pub fn baseline(&self) -> Baseline {
        Baseline::parse(&self.read_string(".castoff/sources.lock"))
    }

    /// Every file under the repository, excluding [`UNHASHED`].
    pub fn tree_hash(&self) -> TreeHash {
        tree_hash_of(self.path())
    }

    /// `git ARGS` in the repository, asserted to succeed; its stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Commit everything git does not ignore.
    pub fn commit_all(&self) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "snapshot"]);
    }
}

/// A temporary directory for tests to place things outside a repository.
/// `castoff ARGS` run in `dir`.
pub fn castoff_at<I, S>(dir: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::cargo_bin("castoff").unwrap();
    command.current_dir(dir).args(args);
    command
}

/// `--json` followed by `args`.
pub fn with_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
    std::iter::once("--json").chain(args.iter().copied()).collect()
}

/// The single JSON object a `--json` command printed on stdout.
pub fn json_line(stdout: &[u8]) -> Value {
    let text = std::str::from_utf8(stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one JSON line on stdout, got:\n{text}");
    let value: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{text}"));
    assert!(value.is_object(), "expected a JSON object, got {value}");
    value
}

/// Run git in `dir` isolated from the user's and the system's git config.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=castoff tests", "-c", "user.email=tests@castoff.invalid"])
        .args(["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"])
        .args(["-c", "core.autocrlf=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(output.status.success(), "git {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A repository with `VERSION` holding `version`, the given files, and `castoff init`
/// run in it (so castoff.toml tracks the files and the baseline is recorded).
pub fn project(version: &str, files: &[(&str, &str)]) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", version);
    for (rel, text) in files {
        repo.write(rel, text);
    }
    repo.ok(&["init"]);
    repo
}

/// The Makefile project: `VERSION: app.py requirements.txt` at 0.1.9, initialised.
pub fn makefile_project() -> TempRepo {
    project("0.1.9\n", &[("app.py", "print('hello')\n"), ("requirements.txt", "flask==3.0.0\n")])
}

/// The Makefile project after editing app.py and `castoff bump auto` (now 0.1.10).
pub fn makefile_project_bumped() -> TempRepo {
    let repo = makefile_project();
    repo.write("app.py", "print('hello, world')\n");
    let bumped = repo.ok_json(&["bump", "auto"]);
    assert_eq!(bumped["version"], "0.1.10", "{bumped}");
    repo
}

/// castoff.toml text with this `[version] sources` and `exclude`.
pub fn config(sources: &[&str], exclude: &[&str]) -> String {
    format!("[version]\nfile = \"VERSION\"\nsources = {}\nexclude = {}\n", toml_list(sources), toml_list(exclude))
}

/// `["a", "b"]` as a TOML array of strings.
pub fn toml_list(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap()
}

/// The parts of `.castoff/sources.lock` the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub version: String,
    pub paths: Vec<String>,
}

impl Baseline {
    fn parse(text: &str) -> Baseline {
        let version = text
            .lines()
            .find_map(|line| line.strip_prefix("version "))
            .unwrap_or_else(|| panic!("no version line in the baseline:\n{text}"))
            .to_string();
        let paths = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once("  ").map(|(_, path)| path.to_string()))
            .collect();
        Baseline { version, paths }
    }
}

/// Every file (and symlink, by its target) under a directory, each with a digest of its
/// bytes. Compare two with `assert_eq!` to see exactly which path changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHash(BTreeMap<String, String>);

/// Snapshot `root`, leaving out [`UNHASHED`]. Symlinks are recorded, never followed.
pub fn tree_hash_of(root: &Path) -> TreeHash {
    tree_hash_except(root, UNHASHED)
}

/// Snapshot `root`, leaving out only the paths in `skip` (e.g. `&[".git"]`, to see
/// castoff's private state too).
pub fn tree_hash_except(root: &Path, skip: &[&str]) -> TreeHash {
    let mut files = BTreeMap::new();
    collect(root, "", skip, &mut files);
    TreeHash(files)
}

fn collect(root: &Path, rel: &str, skip: &[&str], files: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = fs::read_dir(root.join(rel)).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().into_string().unwrap();
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if skip.contains(&path.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            collect(root, &path, skip, files);
            continue;
        }
        let digest = if kind.is_symlink() {
            format!("symlink -> {}", fs::read_link(entry.path()).unwrap().display())
        } else {
            let bytes = fs::read(entry.path()).unwrap();
            let mut hasher = DefaultHasher::new();
            hasher.write(&bytes);
            format!("{} bytes, {:016x}", bytes.len(), hasher.finish())
        };
        files.insert(path, digest);
    }
}

/// Where a rejected input must be reported: the file, and the line and config key when
/// they apply.
#[derive(Debug, Clone, Copy)]
pub struct Loc {
    pub file: &'static str,
    pub line: Option<u64>,
    pub key: Option<&'static str>,
}

impl Loc {
    pub const fn file(file: &'static str) -> Loc {
        Loc { file, line: None, key: None }
    }

    pub const fn line(mut self, line: u64) -> Loc {
        self.line = Some(line);
        self
    }

    pub const fn key(mut self, key: &'static str) -> Loc {
        self.key = Some(key);
        self
    }

    /// How the human error message names it: `file`, `file:line`, then the key.
    fn shown(&self) -> Vec<String> {
        let mut shown = vec![match self.line {
            Some(line) => format!("{}:{line}", self.file),
            None => self.file.to_string(),
        }];
        shown.extend(self.key.map(str::to_string));
        shown
    }
}

/// Like [`check_rejected`], panicking with its complaint.
pub fn assert_rejected(repo: &TempRepo, args: &[&str], loc: Option<Loc>, mentions: &[&str]) {
    if let Err(complaint) = check_rejected(repo, args, loc, mentions) {
        panic!("{complaint}");
    }
}

/// Check that `castoff ARGS` (and `castoff --json ARGS`) reject bad input as the issue
/// asks: exit 2; `error:` on stderr naming `loc` and each of `mentions`, then a `hint:`;
/// with `--json`, an `{"error": {message, location, hint, exit_code}}` object on stdout
/// matching `loc`; and not one file of the repository modified.
pub fn check_rejected(repo: &TempRepo, args: &[&str], loc: Option<Loc>, mentions: &[&str]) -> Result<(), String> {
    check_rejected_env(repo, args, &[], loc, mentions)
}

/// [`check_rejected`] with these environment variables set for castoff (both runs).
pub fn check_rejected_env(
    repo: &TempRepo,
    args: &[&str],
    env: &[(String, String)],
    loc: Option<Loc>,
    mentions: &[&str],
) -> Result<(), String> {
    let before = repo.tree_hash();
    let output = repo.castoff(args).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let context = format!("`castoff {}`\nstderr:\n{stderr}", args.join(" "));
    let mut problems = Vec::new();
    if output.status.code() != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", output.status.code()));
    }
    if !stderr.lines().any(|l| l.starts_with("error: ")) {
        problems.push("stderr has no `error: ` line".into());
    }
    if !stderr.lines().any(|l| l.starts_with("  hint: ")) {
        problems.push("stderr has no `  hint: ` line".into());
    }
    let expected: Vec<String> = loc.iter().flat_map(Loc::shown).chain(mentions.iter().map(|m| m.to_string())).collect();
    for needle in &expected {
        if !stderr.contains(needle.as_str()) {
            problems.push(format!("stderr does not mention {needle:?}"));
        }
    }
    if repo.tree_hash() != before {
        problems.push(format!("files changed:\nbefore {before:?}\nafter  {:?}", repo.tree_hash()));
    }
    if let Err(problem) = check_json_error(repo, args, env, loc, &before) {
        problems.push(problem);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{context}\nproblems:\n- {}", problems.join("\n- ")))
    }
}

fn check_json_error(
    repo: &TempRepo,
    args: &[&str],
    env: &[(String, String)],
    loc: Option<Loc>,
    before: &TreeHash,
) -> Result<(), String> {
    let output = repo.castoff(with_json(args)).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value: Value = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("with --json, stdout is not one JSON object ({e}): {stdout:?}"))?;
    let error = &value["error"];
    let mut problems = Vec::new();
    if output.status.code() != Some(2) || error["exit_code"] != 2 {
        problems.push(format!("with --json: exit {:?}, exit_code {}", output.status.code(), error["exit_code"]));
    }
    if !non_empty_string(&error["message"]) {
        problems.push("with --json: no error.message".into());
    }
    if !non_empty_string(&error["hint"]) {
        problems.push("with --json: no error.hint".into());
    }
    let location = &error["location"];
    match loc {
        Some(loc) => {
            let line = loc.line.map_or(Value::Null, Value::from);
            let key = loc.key.map_or(Value::Null, Value::from);
            if location["file"] != loc.file || location["line"] != line || location["key"] != key {
                problems.push(format!("with --json: location {location}, expected {loc:?}"));
            }
        }
        None if !location.is_null() => problems.push(format!("with --json: location {location}, expected none")),
        None => {}
    }
    if repo.tree_hash() != *before {
        problems.push("with --json: files changed".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("`castoff --json {}` printed {value}:\n- {}", args.join(" "), problems.join("\n- ")))
    }
}

fn non_empty_string(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.is_empty())
}

/// The variable `cargo xtask test` sets to a file that collects the reliability counts,
/// which it prints after the run (cargo test hides a passing test's output).
pub const COUNTS_FILE_ENV: &str = "CASTOFF_COUNTS_FILE";

/// Print one of the counts RELIABILITY.md keeps (`fault matrix: 72 run, ...`), and add
/// it to the counts file when `cargo xtask test` asked for one.
pub fn count(line: &str) {
    println!("{line}");
    if let Some(path) = std::env::var_os(COUNTS_FILE_ENV) {
        use std::io::Write;
        let file = fs::OpenOptions::new().create(true).append(true).open(&path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{line}");
        }
    }
}
