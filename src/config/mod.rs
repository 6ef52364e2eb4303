//! castoff.toml: the schema, its embedded defaults (applied once, here) and validation
//! that names the key and line of every problem.
//!
//! Two layers: `Raw*` structs mirror the file exactly (serde, unknown keys rejected,
//! spans kept for the values validated later) and [`Config`] is what the rest of castoff
//! sees, with every default filled in and every path checked to stay inside the project.

mod build;
mod feed;
mod image;
mod package;

use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use build::{BuildConfig, BuilderKind, NativeBase, NativeConfig, NativeFile, OutputTarget};
pub use feed::{FeedConfig, FeedKind, FeedSymbols, DEFAULT_FEED_DIR};
pub use image::ImageConfig;
pub use package::PackageConfig;
// `[release]` is defined in this file; re-exported names above come from submodules.

use crate::error::{Error, Location, Result};
use crate::placeholders::{self, TemplateError};

pub const CONFIG_FILE: &str = "castoff.toml";

/// The validated configuration, defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub version: VersionConfig,
    /// `[image]`: absent when the project builds no container images.
    pub image: Option<ImageConfig>,
    /// `[[package]]`: the NuGet packages to pack, in file order.
    pub packages: Vec<PackageConfig>,
    /// `[[feed]]`: where packages are published, in file order (none: the embedded
    /// default folder feed).
    pub feeds: Vec<FeedConfig>,
    pub network: NetworkConfig,
    pub release: ReleaseConfig,
}

/// `[release]`: what `castoff release` does besides images and packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseConfig {
    /// Commit VERSION and the baseline, then tag the commit (`[version] tag`).
    pub git: bool,
    /// Where `castoff release --git-push` pushes the commit and the tag.
    pub remote: String,
    /// The release commit's message; `{version}` is replaced.
    pub message: String,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig { git: false, remote: "origin".into(), message: "release {version}".into() }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    git: Option<bool>,
    remote: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
}

/// `[network]`: how hard castoff tries before giving up on a registry or feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Connect and read timeout per attempt.
    pub timeout: Duration,
    /// Upper bound for one request with all its retries and waits.
    pub total: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { attempts: 5, timeout: Duration::from_secs(30), total: Duration::from_secs(120) }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    attempts: Option<Spanned<u32>>,
    timeout_seconds: Option<Spanned<u64>>,
    total_seconds: Option<Spanned<u64>>,
}

/// `[version]`: which file holds the version and which sources call for a new one.
#[derive(Debug, Clone)]
pub struct VersionConfig {
    /// The VERSION file, relative to the project root, `/`-separated.
    pub file: String,
    /// Globs of the files whose content, when changed, calls for a new version.
    pub sources: Vec<String>,
    /// Globs removed from `sources`.
    pub exclude: Vec<String>,
    /// The git tag template.
    pub tag: String,
}

impl Default for Config {
    /// The embedded defaults: what castoff does with no castoff.toml at all.
    fn default() -> Self {
        Config {
            version: VersionConfig {
                file: "VERSION".into(),
                sources: Vec::new(),
                exclude: Vec::new(),
                tag: "v{version}".into(),
            },
            image: None,
            packages: Vec::new(),
            feeds: Vec::new(),
            network: NetworkConfig::default(),
            release: ReleaseConfig::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    version: RawVersion,
    image: Option<image::RawImage>,
    #[serde(default)]
    package: Vec<package::RawPackage>,
    #[serde(default)]
    feed: Vec<feed::RawFeed>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    release: RawRelease,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersion {
    file: Option<Spanned<String>>,
    sources: Option<Vec<Spanned<String>>>,
    exclude: Option<Vec<Spanned<String>>>,
    tag: Option<Spanned<String>>,
}

impl Config {
    /// Parse and validate castoff.toml text. `shown` names the file in errors.
    pub fn parse(text: &str, shown: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| syntax_error(&e, text, shown))?;
        let at = Spans { text, shown };
        let defaults = Config::default().version;
        let inside_hint = "give a path relative to the directory that holds castoff.toml, e.g. \"VERSION\"";
        let file = match raw.version.file {
            Some(file) => at.check("version.file", file, |file| {
                check_inside_project(&file).map(|()| normalise(&file)).map_err(|p| (p, inside_hint.to_string()))
            })?,
            None => defaults.file,
        };
        let globs = |key: &str, list: Option<Vec<Spanned<String>>>| -> Result<Vec<String>> {
            let list = list.unwrap_or_default().into_iter();
            list.map(|item| at.check(key, item, |pattern| check_glob(&pattern))).collect()
        };
        let sources = globs("version.sources", raw.version.sources)?;
        let exclude = globs("version.exclude", raw.version.exclude)?;
        let tag = match raw.version.tag {
            Some(tag) => at.check("version.tag", tag, |tag| check_tag_template(&tag).map(|()| tag))?,
            None => defaults.tag,
        };
        let image = raw.image.map(|raw| ImageConfig::from_raw(raw, &at)).transpose()?;
        let network = network(raw.network, &at)?;
        let packages = raw
            .package
            .into_iter()
            .enumerate()
            .map(|(index, raw)| PackageConfig::from_raw(raw, index, &at))
            .collect::<Result<Vec<_>>>()?;
        let mut feeds: Vec<FeedConfig> = Vec::new();
        for (index, raw) in raw.feed.into_iter().enumerate() {
            let feed = FeedConfig::from_raw(raw, index, &feeds, &at)?;
            feeds.push(feed);
        }
        feed::check_symbols_feeds(&feeds)?;
        let release = release(raw.release, &at)?;
        Ok(Config { version: VersionConfig { file, sources, exclude, tag }, image, packages, feeds, network, release })
    }
}

fn network(raw: RawNetwork, at: &Spans<'_>) -> Result<NetworkConfig> {
    let defaults = NetworkConfig::default();
    let seconds = |key: &str, value: Option<Spanned<u64>>, default: Duration| -> Result<Duration> {
        value.map_or(Ok(default), |v| at.check(key, v, |n| in_range(key, n, 86_400)).map(Duration::from_secs))
    };
    Ok(NetworkConfig {
        attempts: match raw.attempts {
            Some(v) => at.check("network.attempts", v, |n| in_range("network.attempts", n.into(), 100))? as u32,
            None => defaults.attempts,
        },
        timeout: seconds("network.timeout_seconds", raw.timeout_seconds, defaults.timeout)?,
        total: seconds("network.total_seconds", raw.total_seconds, defaults.total)?,
    })
}

fn release(raw: RawRelease, at: &Spans<'_>) -> Result<ReleaseConfig> {
    let defaults = ReleaseConfig::default();
    let remote = match raw.remote {
        Some(remote) => at.check("release.remote", remote, |remote| {
            let plain = !remote.is_empty() && !remote.starts_with('-') && !remote.chars().any(char::is_whitespace);
            match plain {
                true => Ok(remote),
                false => Err((
                    format!("`{remote}` is not a git remote name"),
                    "name a remote from `git remote`, e.g. remote = \"origin\"".to_string(),
                )),
            }
        })?,
        None => defaults.remote,
    };
    let message = match raw.message {
        Some(message) => at.check("release.message", message, |message| match message.trim().is_empty() {
            true => Err(("the release commit message is empty".into(), "e.g. message = \"release {version}\"".into())),
            false => placeholders::expand(&message, |name| (name == "version").then(|| "0.0.0".to_string()))
                .map(|_| message.clone())
                .map_err(|_| {
                    (
                        format!("`{message}` uses a placeholder other than {{version}}"),
                        "only {version} is replaced, e.g. message = \"release {version}\"".to_string(),
                    )
                }),
        })?,
        None => defaults.message,
    };
    Ok(ReleaseConfig { git: raw.git.unwrap_or(defaults.git), remote, message })
}

fn in_range(key: &str, n: u64, max: u64) -> std::result::Result<u64, (String, String)> {
    match (1..=max).contains(&n) {
        true => Ok(n),
        false => Err((format!("`{key}` must be between 1 and {max}, not {n}"), format!("e.g. {key} = 5"))),
    }
}

/// Turns spans in castoff.toml into locations (file, line, key) for errors.
pub(crate) struct Spans<'a> {
    text: &'a str,
    shown: &'a Path,
}

impl Spans<'_> {
    pub(crate) fn at(&self, key: &str, span: Range<usize>) -> Location {
        Location::file(self.shown).with_line(line_of(self.text, span.start)).with_key(key)
    }

    /// Validate one spanned value; a `(problem, hint)` becomes an error at its line.
    pub(crate) fn check<T, U>(
        &self,
        key: &str,
        value: Spanned<T>,
        check: impl FnOnce(T) -> std::result::Result<U, (String, String)>,
    ) -> Result<U> {
        let span = value.span();
        check(value.into_inner()).map_err(|(problem, hint)| Error::invalid(self.at(key, span), problem, hint))
    }
}

/// Turn a toml/serde error into one that names the line, the key and the fix.
fn syntax_error(error: &toml::de::Error, text: &str, shown: &Path) -> Error {
    let offset = error.span().map(|s| s.start).unwrap_or(0);
    let mut location = Location::file(shown).with_line(line_of(text, offset));
    let message = error.message().trim().to_string();
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) {
        let table = enclosing_table(text, offset, false);
        let key = if table.is_empty() { field.to_string() } else { format!("{table}.{field}") };
        location = location.with_key(key.clone());
        let expected = message.split_once(", expected ").map(|(_, e)| e.to_string());
        let hint = match expected {
            Some(expected) => format!("remove or rename `{key}`; expected {expected}"),
            None => format!("remove `{key}`: this table takes no keys"),
        };
        return Error::invalid(location, format!("unknown key `{key}`"), hint);
    }
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        let table = enclosing_table(text, offset, true);
        let key = if table.is_empty() { field.to_string() } else { format!("{table}.{field}") };
        return Error::invalid(
            location.with_key(key.clone()),
            format!("`{key}` is required"),
            format!("add `{field} = ...` to [{table}]"),
        );
    }
    Error::invalid(
        location,
        format!("invalid castoff.toml: {message}"),
        "fix the TOML at that line; `castoff init --force` writes a fresh commented file",
    )
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The `[table]` header in force at `offset`, or "" at the top level. A missing key's
/// span starts on its table's header, so `header_counts` includes the line at `offset`;
/// an unknown table's span also starts on its header, which must not count.
fn enclosing_table(text: &str, offset: usize, header_counts: bool) -> String {
    let offset = offset.min(text.len());
    let end = match header_counts {
        true => text[offset..].find('\n').map_or(text.len(), |n| offset + n),
        false => offset,
    };
    let before = text.get(..end).unwrap_or(text);
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .map(|header| header.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        .unwrap_or_default()
}

/// A configured path must stay inside the project: relative, and never climbing above
/// its root with `..`.
pub fn check_inside_project(path: &str) -> std::result::Result<(), String> {
    if path.trim().is_empty() {
        return Err("the path is empty".into());
    }
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('/') || path.starts_with('\\') {
        return Err(format!("`{path}` is absolute; it points outside the project"));
    }
    let mut depth: i64 = 0;
    for component in p.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("`{path}` is absolute; it points outside the project"))
            }
        }
        if depth < 0 {
            return Err(format!("`{path}` climbs above the project root with `..`"));
        }
    }
    Ok(())
}

/// `./a/../b` → `b`, with `/` separators. Only called on paths that stay inside.
pub fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Check a `[version] sources` or `exclude` glob and return it normalised, the one form
/// the walk and the matchers both use: `./src//**` → `src/**`.
fn check_glob(pattern: &str) -> std::result::Result<String, (String, String)> {
    let inside_hint = "write globs relative to the project root, e.g. \"src/**/*.py\"";
    if pattern.split(['/', '\\']).any(|part| part == "..") {
        return Err((format!("`{pattern}` uses `..`, which leaves the project"), inside_hint.into()));
    }
    let normal = normalise_glob(pattern);
    if normal.is_empty() && !pattern.starts_with('/') {
        return Err((
            format!("`{pattern}` names no file or directory"),
            "write \"**\" for every file in the project, or name the files and directories".into(),
        ));
    }
    check_inside_project(pattern).map_err(|problem| (problem, inside_hint.to_string()))?;
    globset::Glob::new(&normal).map_err(|e| {
        (
            format!("`{pattern}` is not a valid glob: {}", e.kind()),
            "use * within a directory, ** across directories, ? for one character, {a,b} for either".into(),
        )
    })?;
    Ok(normal)
}

/// Drop `.` components and empty ones (`//`, a leading `./`, a trailing `/`). Only `/`
/// separates: in a glob, `\` escapes the next character.
fn normalise_glob(pattern: &str) -> String {
    pattern.split('/').filter(|part| !part.is_empty() && *part != ".").collect::<Vec<_>>().join("/")
}

/// Every `{...}` in `template` must be one of `allowed`.
pub(crate) fn check_placeholders(template: &str, allowed: &[&str]) -> std::result::Result<(), (String, String)> {
    let listed = allowed.iter().map(|name| format!("{{{name}}}")).collect::<Vec<_>>().join(", ");
    match placeholders::validate(template, allowed) {
        Err(TemplateError::Unknown(name)) => {
            Err((format!("unknown placeholder `{{{name}}}` in `{template}`"), format!("use {listed}")))
        }
        Err(TemplateError::Unclosed) => {
            Err((format!("`{template}` has a `{{` without its `}}`"), format!("placeholders are {listed}")))
        }
        Ok(()) => Ok(()),
    }
}

fn check_tag_template(tag: &str) -> std::result::Result<(), (String, String)> {
    check_placeholders(tag, placeholders::VERSION_PLACEHOLDERS)?;
    if !tag.contains("{version}") && !tag.contains("{major}") {
        return Err((
            format!("`{tag}` does not contain the version"),
            "a tag must differ per release; use e.g. \"v{version}\"".into(),
        ));
    }
    let bad = [' ', '~', '^', ':', '?', '*', '[', '\\'];
    if tag.chars().any(|c| bad.contains(&c) || c.is_control()) || tag.contains("..") || tag.starts_with('-') {
        return Err((
            format!("`{tag}` cannot be a git tag name"),
            "git tags may not contain spaces, `..`, or any of ~ ^ : ? * [ \\".into(),
        ));
    }
    Ok(())
}

/// Where castoff.toml was found (if anywhere) and the project root it defines.
#[derive(Debug, Clone)]
pub struct Located {
    pub root: PathBuf,
    pub file: Option<PathBuf>,
}

/// Find the config: `explicit` if given (it must exist), else castoff.toml in `start` or
/// the nearest parent, stopping at a git work-tree root. Without one the project root is
/// `start` and the embedded defaults apply.
pub fn locate(start: &Path, explicit: Option<&Path>) -> Result<Located> {
    if let Some(file) = explicit {
        let file = if file.is_absolute() { file.to_path_buf() } else { start.join(file) };
        if !file.is_file() {
            return Err(Error::usage(
                format!("--config {} does not exist", file.display()),
                "pass the path of an existing castoff.toml, or run `castoff init` to write one",
            ));
        }
        let root = file.parent().map(Path::to_path_buf).unwrap_or_else(|| start.to_path_buf());
        return Ok(Located { root, file: Some(file) });
    }
    for dir in start.ancestors() {
        let candidate = dir.join(CONFIG_FILE);
        if candidate.is_file() {
            return Ok(Located { root: dir.to_path_buf(), file: Some(candidate) });
        }
        if dir.join(".git").exists() {
            break;
        }
    }
    Ok(Located { root: start.to_path_buf(), file: None })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `err` (from parsing `text`) names `key` at `line` and its hint mentions `hint`:
    /// the contract every config table's errors keep.
    pub(crate) fn assert_located(err: &Error, text: &str, key: &str, line: usize, hint: &str) {
        let location = err.location().unwrap_or_else(|| panic!("{text}: {err}"));
        assert_eq!(location.key.as_deref(), Some(key), "{text}: {err}");
        assert_eq!(location.line, Some(line), "{text}: {err}");
        assert!(err.hint().unwrap_or_default().contains(hint), "{text}: {:?}", err.hint());
    }

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("castoff.toml"))
    }

    #[test]
    fn defaults_apply_once() {
        let config = parse("").unwrap();
        assert_eq!(config.version.file, "VERSION");
        assert_eq!(config.version.tag, "v{version}");
        let config = parse("[version]\nsources = [\"app.py\", \"requirements.txt\"]\n").unwrap();
        assert_eq!(config.version.sources, ["app.py", "requirements.txt"]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse("[version]\nfile = \"VERSION\"\nsorces = []\n").unwrap_err();
        let location = err.location().unwrap();
        assert_eq!(location.line, Some(3));
        assert_eq!(location.key.as_deref(), Some("version.sorces"));
        assert!(err.hint().unwrap().contains("sources"), "{:?}", err.hint());
    }

    #[test]
    fn unknown_table_names_it() {
        let err = parse("[version]\n\n[imgae]\nname = \"x\"\n").unwrap_err();
        assert_eq!(err.location().unwrap().key.as_deref(), Some("imgae"));
        assert_eq!(err.location().unwrap().line, Some(3));
    }

    #[test]
    fn syntax_error_gives_line() {
        let err = parse("[version]\nfile = \"VERSION\nsources = []\n").unwrap_err();
        assert_eq!(err.location().unwrap().line, Some(2));
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn paths_must_stay_inside() {
        for (text, key) in [
            ("[version]\nfile = \"../VERSION\"\n", "version.file"),
            ("[version]\nfile = \"/etc/VERSION\"\n", "version.file"),
            ("[version]\nsources = [\"app.py\", \"../other/*.py\"]\n", "version.sources"),
            ("[version]\nexclude = [\"/tmp/**\"]\n", "version.exclude"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.location().unwrap().key.as_deref(), Some(key), "{text}");
            assert_eq!(err.location().unwrap().line, Some(2), "{text}");
        }
        assert_eq!(parse("[version]\nfile = \"./cfg/../VERSION\"\n").unwrap().version.file, "VERSION");
    }

    #[test]
    fn tag_template_is_checked() {
        assert!(parse("[version]\ntag = \"v{verison}\"\n").is_err());
        assert!(parse("[version]\ntag = \"release\"\n").is_err());
        assert!(parse("[version]\ntag = \"v {version}\"\n").is_err());
        assert_eq!(parse("[version]\ntag = \"release-{version}\"\n").unwrap().version.tag, "release-{version}");
    }

    #[test]
    fn globs_are_normalised_once() {
        let config = parse("[version]\nsources = [\"./app.py\", \"src//**\", \"lib/\", \"./a/./b/*.py\"]\n").unwrap();
        assert_eq!(config.version.sources, ["app.py", "src/**", "lib", "a/b/*.py"]);
        let config = parse("[version]\nexclude = [\"./build/**\"]\n").unwrap();
        assert_eq!(config.version.exclude, ["build/**"]);
        for glob in [".", "./", "", ".//."] {
            let err = parse(&format!("[version]\nsources = [\"{glob}\"]\n")).unwrap_err();
            assert_eq!(err.location().unwrap().key.as_deref(), Some("version.sources"), "{glob:?}");
            assert!(err.hint().unwrap().contains("\"**\""), "{glob:?}: {:?}", err.hint());
        }
    }

    #[test]
    fn bad_glob_is_explained() {
        let err = parse("[version]\nsources = [\"src/[ab\"]\n").unwrap_err();
        assert!(err.to_string().contains("not a valid glob"), "{err}");
    }
}
