//! castoff.toml: the schema, its embedded defaults (applied once, here) and validation
//! that names the key and line of every problem.
//!
//! Two layers: `Raw*` structs mirror the file exactly (serde, unknown keys rejected,
//! spans kept for the values validated later) and [`Config`] is what the rest of castoff
//! sees, with every default filled in and every path checked to stay inside the project.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Location, Result};
use crate::placeholders::{self, TemplateError};

pub const CONFIG_FILE: &str = "castoff.toml";

/// The validated configuration, defaults applied.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub version: VersionConfig,
}

/// `[version]`: which file holds the version and which sources call for a new one.
#[derive(Debug, Clone, Serialize)]
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
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    version: RawVersion,
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
        let at =
            |key: &str, span: Range<usize>| Location::file(shown).with_line(line_of(text, span.start)).with_key(key);
        let defaults = Config::default().version;

        let file = match raw.version.file {
            Some(file) => {
                let span = file.span();
                let file = file.into_inner();
                check_inside_project(&file).map_err(|problem| {
                    Error::invalid(
                        at("version.file", span),
                        problem,
                        "give a path relative to the directory that holds castoff.toml, e.g. \"VERSION\"",
                    )
                })?;
                normalise(&file)
            }
            None => defaults.file,
        };

        let globs = |key: &str, list: Option<Vec<Spanned<String>>>| -> Result<Vec<String>> {
            let mut out = Vec::new();
            for item in list.unwrap_or_default() {
                let span = item.span();
                let pattern = item.into_inner();
                check_glob(&pattern).map_err(|(problem, hint)| Error::invalid(at(key, span), problem, hint))?;
                out.push(pattern);
            }
            Ok(out)
        };
        let sources = globs("version.sources", raw.version.sources)?;
        let exclude = globs("version.exclude", raw.version.exclude)?;

        let tag = match raw.version.tag {
            Some(tag) => {
                let span = tag.span();
                let tag = tag.into_inner();
                check_tag_template(&tag)
                    .map_err(|(problem, hint)| Error::invalid(at("version.tag", span), problem, hint))?;
                tag
            }
            None => defaults.tag,
        };

        Ok(Config { version: VersionConfig { file, sources, exclude, tag } })
    }
}

/// Turn a toml/serde error into one that names the line, the key and the fix.
fn syntax_error(error: &toml::de::Error, text: &str, shown: &Path) -> Error {
    let offset = error.span().map(|s| s.start).unwrap_or(0);
    let mut location = Location::file(shown).with_line(line_of(text, offset));
    let message = error.message().trim().to_string();
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()) {
        let table = enclosing_table(text, offset);
        let key = if table.is_empty() { field.to_string() } else { format!("{table}.{field}") };
        location = location.with_key(key.clone());
        let expected = message.split_once(", expected ").map(|(_, e)| e.to_string());
        let hint = match expected {
            Some(expected) => format!("remove or rename `{key}`; expected {expected}"),
            None => format!("remove `{key}`: this table takes no keys"),
        };
        return Error::invalid(location, format!("unknown key `{key}`"), hint);
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

/// The `[table]` header in force at `offset`, or "" at the top level.
fn enclosing_table(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
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

fn check_glob(pattern: &str) -> std::result::Result<(), (String, String)> {
    let inside_hint = "write globs relative to the project root, e.g. \"src/**/*.py\"";
    if pattern.split(['/', '\\']).any(|part| part == "..") {
        return Err((format!("`{pattern}` uses `..`, which leaves the project"), inside_hint.into()));
    }
    check_inside_project(pattern).map_err(|problem| (problem, inside_hint.to_string()))?;
    globset::Glob::new(pattern).map_err(|e| {
        (
            format!("`{pattern}` is not a valid glob: {}", e.kind()),
            "use * within a directory, ** across directories, ? for one character, {a,b} for either".into(),
        )
    })?;
    Ok(())
}

fn check_tag_template(tag: &str) -> std::result::Result<(), (String, String)> {
    let allowed = placeholders::VERSION_PLACEHOLDERS.join("}, {");
    match placeholders::validate(tag, placeholders::VERSION_PLACEHOLDERS) {
        Err(TemplateError::Unknown(name)) => {
            return Err((format!("unknown placeholder `{{{name}}}` in `{tag}`"), format!("use one of {{{allowed}}}")))
        }
        Err(TemplateError::Unclosed) => {
            return Err((format!("`{tag}` has a `{{` without its `}}`"), "use e.g. \"v{version}\"".to_string()))
        }
        Ok(()) => {}
    }
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
mod tests {
    use super::*;

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
    fn bad_glob_is_explained() {
        let err = parse("[version]\nsources = [\"src/[ab\"]\n").unwrap_err();
        assert!(err.to_string().contains("not a valid glob"), "{err}");
    }
}
