//! The build keys of `[image]`: which builder, from which Dockerfile and context, with
//! which build args and labels, into which target; and `[image.native]`, the daemonless
//! builder's recipe.
//!
//! ```toml
//! [image]
//! builder = "auto"                 # auto | buildx | docker | buildah | podman | native
//! dockerfile = "Dockerfile"
//! context = "."
//! output = "oci-layout:dist/oci"   # or "registry" (the default): push to [image] name
//! buildx_builder = "remote1"       # a docker-container, remote or kubernetes builder
//! provenance = false               # buildx provenance attestations
//!
//! [image.build_args]
//! APP_VERSION = "{version}"        # the default
//!
//! [image.labels]
//! "org.example.team" = "platform"
//!
//! [image.native]
//! base = "scratch"                 # or "oci-layout:DIR[:TAG]", or an image reference
//! files = [{ src = "dist/{suffix}/app", dst = "/usr/local/bin/app", mode = "0755" }]
//! entrypoint = ["/usr/local/bin/app"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{check_inside_project, check_placeholders, normalise, Spans};
use crate::error::Result;
use crate::registry::Reference;

/// Placeholders a build arg or label value may use.
pub const BUILD_ARG_PLACEHOLDERS: &[&str] = &["version", "major", "minor", "patch", "git_sha"];

/// Placeholders a native file's `src` may use: the platform's parts.
pub const NATIVE_SRC_PLACEHOLDERS: &[&str] = &["suffix", "os", "arch", "variant", "version"];

/// Which program builds the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuilderKind {
    /// The first of buildx, docker, buildah/podman, native that can work here.
    #[default]
    Auto,
    Buildx,
    Docker,
    Buildah,
    Podman,
    Native,
}

impl BuilderKind {
    pub const NAMES: [&'static str; 6] = ["auto", "buildx", "docker", "buildah", "podman", "native"];

    pub fn parse(text: &str) -> Option<BuilderKind> {
        Some(match text {
            "auto" => BuilderKind::Auto,
            "buildx" => BuilderKind::Buildx,
            "docker" => BuilderKind::Docker,
            "buildah" => BuilderKind::Buildah,
            "podman" => BuilderKind::Podman,
            "native" => BuilderKind::Native,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BuilderKind::Auto => "auto",
            BuilderKind::Buildx => "buildx",
            BuilderKind::Docker => "docker",
            BuilderKind::Buildah => "buildah",
            BuilderKind::Podman => "podman",
            BuilderKind::Native => "native",
        }
    }

    /// Whether this builder reads a Dockerfile.
    pub fn uses_dockerfile(self) -> bool {
        !matches!(self, BuilderKind::Native | BuilderKind::Auto)
    }
}

/// Where built images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// Pushed to `[image] name` (the default).
    Registry,
    /// An OCI image layout directory, relative to the project root, `/`-separated.
    OciLayout(String),
}

/// A native build's base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeBase {
    Scratch,
    /// An OCI layout directory (project-relative) and the `ref.name` to read; without
    /// one, the layout's entry for each platform.
    OciLayout {
        dir: String,
        tag: Option<String>,
    },
    /// An image (or index) in a registry; each platform picks its own entry.
    Registry(Reference),
}

/// One file the native builder puts into the image layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeFile {
    /// Project-relative source template (`dist/{suffix}/app`).
    pub src: String,
    /// Absolute path in the image, normalised (`/usr/local/bin/app`).
    pub dst: String,
    /// Permission bits; `None` keeps 0755 for executables and 0644 for the rest.
    pub mode: Option<u32>,
}

/// `[image.native]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeConfig {
    pub base: NativeBase,
    pub files: Vec<NativeFile>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
}

/// The build part of `[image]`, defaults applied.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub builder: BuilderKind,
    /// Project-relative Dockerfile path.
    pub dockerfile: String,
    /// Project-relative build context ("" is the project root).
    pub context: String,
    pub buildx_builder: Option<String>,
    pub provenance: bool,
    pub output: OutputTarget,
    /// Build arg templates (`{version}` etc.).
    pub build_args: BTreeMap<String, String>,
    /// Extra labels (templates), after the standard OCI ones.
    pub labels: BTreeMap<String, String>,
    pub native: Option<NativeConfig>,
}

/// The build keys as read; `image.rs` fills this from its own raw table.
pub(super) struct RawBuild {
    pub builder: Option<Spanned<String>>,
    pub dockerfile: Option<Spanned<String>>,
    pub context: Option<Spanned<String>>,
    pub buildx_builder: Option<Spanned<String>>,
    pub provenance: Option<bool>,
    pub output: Option<Spanned<String>>,
    pub build_args: Option<BTreeMap<String, Spanned<String>>>,
    pub labels: Option<BTreeMap<String, Spanned<String>>>,
    pub native: Option<RawNative>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNative {
    base: Option<Spanned<String>>,
    files: Option<Spanned<Vec<RawNativeFile>>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    labels: Option<BTreeMap<String, String>>,
    user: Option<String>,
    workdir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNativeFile {
    src: Spanned<String>,
    dst: Spanned<String>,
    mode: Option<Spanned<String>>,
}

type Check<T> = std::result::Result<T, (String, String)>;

impl BuildConfig {
    pub(super) fn from_raw(raw: RawBuild, at: &Spans<'_>) -> Result<BuildConfig> {
        let builder = match raw.builder {
            Some(value) => at.check("image.builder", value, |text| {
                BuilderKind::parse(&text).ok_or_else(|| {
                    (format!("unknown builder `{text}`"), format!("use one of {}", BuilderKind::NAMES.join(", ")))
                })
            })?,
            None => BuilderKind::Auto,
        };
        let inside = |key: &str, value: Option<Spanned<String>>, default: &str| -> Result<String> {
            match value {
                Some(value) => at.check(key, value, |path| project_path(&path)),
                None => Ok(default.to_string()),
            }
        };
        let dockerfile = inside("image.dockerfile", raw.dockerfile, "Dockerfile")?;
        let context = inside("image.context", raw.context, "")?;
        let buildx_builder = raw
            .buildx_builder
            .map(|value| {
                at.check("image.buildx_builder", value, |name| {
                    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                    match ok {
                        true => Ok(name),
                        false => Err((
                            format!("`{name}` is not a buildx builder name"),
                            "give the NAME shown by `docker buildx ls`".into(),
                        )),
                    }
                })
            })
            .transpose()?;
        let output = match raw.output {
            Some(value) => at.check("image.output", value, |text| output_target(&text))?,
            None => OutputTarget::Registry,
        };
        let templates = |key: &str, map: Option<BTreeMap<String, Spanned<String>>>| -> Result<BTreeMap<_, _>> {
            let mut checked = BTreeMap::new();
            for (name, value) in map.unwrap_or_default() {
                let key = format!("{key}.{name}");
                let value = at.check(&key, value, |value| {
                    check_placeholders(&value, BUILD_ARG_PLACEHOLDERS)?;
                    check_name(&name)?;
                    Ok(value)
                })?;
                checked.insert(name, value);
            }
            Ok(checked)
        };
        let build_args = match raw.build_args {
            Some(map) => templates("image.build_args", Some(map))?,
            None => BTreeMap::from([("APP_VERSION".to_string(), "{version}".to_string())]),
        };
        let labels = templates("image.labels", raw.labels)?;
        let native = raw.native.map(|raw| native(raw, at)).transpose()?;
        Ok(BuildConfig {
            builder,
            dockerfile,
            context,
            buildx_builder,
            provenance: raw.provenance.unwrap_or(false),
            output,
            build_args,
            labels,
            native,
        })
    }
}

fn native(raw: RawNative, at: &Spans<'_>) -> Result<NativeConfig> {
    let base = match raw.base {
        Some(value) => at.check("image.native.base", value, |text| native_base(&text))?,
        None => NativeBase::Scratch,
    };
    let mut files = Vec::new();
    if let Some(list) = raw.files {
        let span = list.span();
        let list = list.into_inner();
        if list.is_empty() {
            let spanned = Spanned::new(span.clone(), ());
            at.check("image.native.files", spanned, |()| -> Check<()> {
                Err(("`files` is empty".into(), "list the files the image needs, or remove `files`".into()))
            })?;
        }
        for file in list {
            let src = at.check("image.native.files.src", file.src, |src| {
                check_placeholders(&src, NATIVE_SRC_PLACEHOLDERS)?;
                project_path(&src)
            })?;
            let dst = at.check("image.native.files.dst", file.dst, |dst| image_path(&dst))?;
            let mode = file.mode.map(|m| at.check("image.native.files.mode", m, |m| file_mode(&m))).transpose()?;
            if files.iter().any(|f: &NativeFile| f.dst == dst) {
                let spanned = Spanned::new(span.clone(), ());
                at.check("image.native.files", spanned, |()| -> Check<()> {
                    Err((format!("`{dst}` is the destination of two files"), "give each file its own `dst`".into()))
                })?;
            }
            files.push(NativeFile { src, dst, mode });
        }
    }
    let env = match raw.env {
        Some(value) => {
            at.check("image.native.env", value, |map| match map.keys().find(|k| k.is_empty() || k.contains('=')) {
                Some(key) => Err((
                    format!("`{key}` is not an environment variable name"),
                    "names are non-empty and have no `=`".into(),
                )),
                None => Ok(map),
            })?
        }
        None => BTreeMap::new(),
    };
    let workdir = raw.workdir.map(|w| at.check("image.native.workdir", w, |w| image_path(&w))).transpose()?;
    Ok(NativeConfig {
        base,
        files,
        entrypoint: raw.entrypoint,
        cmd: raw.cmd,
        env,
        labels: raw.labels.unwrap_or_default(),
        user: raw.user,
        workdir,
    })
}

/// A project-relative path that stays inside, normalised; "" for the root itself.
fn project_path(path: &str) -> Check<String> {
    if path == "." || path == "./" {
        return Ok(String::new());
    }
    check_inside_project(path)
        .map(|()| normalise(path))
        .map_err(|problem| (problem, "give a path relative to the directory that holds castoff.toml".into()))
}

/// An absolute path inside the image, normalised (`/usr//bin/` → `/usr/bin`).
fn image_path(path: &str) -> Check<String> {
    let hint = "give an absolute path inside the image, e.g. \"/usr/local/bin/app\"";
    if !path.starts_with('/') {
        return Err((format!("`{path}` is not absolute"), hint.into()));
    }
    if path.split('/').any(|part| part == "..") {
        return Err((format!("`{path}` uses `..`"), hint.into()));
    }
    let normal = normalise(path);
    if normal.is_empty() {
        return Err((format!("`{path}` is the image's root directory, not a file"), hint.into()));
    }
    Ok(format!("/{normal}"))
}

/// `"0755"` → 0o755.
fn file_mode(text: &str) -> Check<u32> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o7777 && !text.is_empty() => Ok(mode),
        _ => Err((
            format!("`{text}` is not a file mode"),
            "write octal permission bits as a string, e.g. \"0755\"".into(),
        )),
    }
}

/// A build arg or label name: no spaces, no `=`.
fn check_name(name: &str) -> Check<()> {
    match !name.is_empty() && !name.contains('=') && !name.chars().any(char::is_whitespace) {
        true => Ok(()),
        false => Err((format!("`{name}` is not a valid name"), "names have no spaces and no `=`".into())),
    }
}

fn output_target(text: &str) -> Check<OutputTarget> {
    if text == "registry" {
        return Ok(OutputTarget::Registry);
    }
    match text.strip_prefix("oci-layout:") {
        Some(dir) => project_path(dir).and_then(|dir| match dir.is_empty() {
            true => Err(("the OCI layout cannot be the project root".into(), "e.g. \"oci-layout:dist/oci\"".into())),
            false => Ok(OutputTarget::OciLayout(dir)),
        }),
        None => Err((
            format!("unknown output `{text}`"),
            "use \"registry\" (push to [image] name) or \"oci-layout:DIR\", e.g. \"oci-layout:dist/oci\"".into(),
        )),
    }
}

fn native_base(text: &str) -> Check<NativeBase> {
    if text == "scratch" {
        return Ok(NativeBase::Scratch);
    }
    if let Some(rest) = text.strip_prefix("oci-layout:") {
        // `DIR:TAG`: the last `:` splits, as in skopeo's `oci:DIR:REF`.
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag.to_string())),
            _ => (rest, None),
        };
        return project_path(dir).map(|dir| NativeBase::OciLayout { dir, tag });
    }
    Reference::parse(text).map(NativeBase::Registry).map_err(|e| {
        let (problem, hint): (String, String) = e.into();
        (problem, format!("{hint}; or use \"scratch\" or \"oci-layout:DIR[:TAG]\""))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(image: &str) -> crate::Result<Config> {
        Config::parse(&format!("[version]\n\n[image]\nname = \"app\"\n{image}"), Path::new("castoff.toml"))
    }

    fn build(image: &str) -> BuildConfig {
        parse(image).unwrap().image.unwrap().build
    }

    #[test]
    fn defaults() {
        let build = build("");
        assert_eq!(build.builder, BuilderKind::Auto);
        assert_eq!(build.dockerfile, "Dockerfile");
        assert_eq!(build.context, "");
        assert_eq!(build.output, OutputTarget::Registry);
        assert_eq!(build.build_args.get("APP_VERSION").map(String::as_str), Some("{version}"));
        assert!(build.native.is_none());
    }

    #[test]
    fn native_recipe() {
        let build = build(
            "output = \"oci-layout:./dist/oci\"\n[image.native]\nbase = \"oci-layout:base/layout:1.0\"\n\
             files = [{ src = \"dist/{suffix}/app\", dst = \"/usr//local/bin/app\", mode = \"0755\" }]\n\
             entrypoint = [\"/usr/local/bin/app\"]\nenv = { PATH = \"/usr/bin\" }\n",
        );
        assert_eq!(build.output, OutputTarget::OciLayout("dist/oci".into()));
        let native = build.native.unwrap();
        assert_eq!(native.base, NativeBase::OciLayout { dir: "base/layout".into(), tag: Some("1.0".into()) });
        assert_eq!(native.files[0].dst, "/usr/local/bin/app");
        assert_eq!(native.files[0].mode, Some(0o755));
    }

    #[test]
    fn errors_name_key_and_line() {
        let cases = [
            ("builder = \"kaniko\"\n", "image.builder", 5, "buildah"),
            ("dockerfile = \"../Dockerfile\"\n", "image.dockerfile", 5, "relative"),
            ("context = \"..\"\n", "image.context", 5, "relative"),
            ("output = \"tarball:x\"\n", "image.output", 5, "oci-layout:DIR"),
            ("buildx_builder = \"a b\"\n", "image.buildx_builder", 5, "buildx ls"),
            ("[image.build_args]\nX = \"{verison}\"\n", "image.build_args.X", 6, "{version}"),
            ("[image.native]\nfiles = [{ src = \"a\", dst = \"rel\" }]\n", "image.native.files.dst", 6, "absolute"),
            (
                "[image.native]\nfiles = [{ src = \"a\", dst = \"/a\", mode = \"rwx\" }]\n",
                "image.native.files.mode",
                6,
                "0755",
            ),
            ("[image.native]\nfiles = [{ src = \"{arc}\", dst = \"/a\" }]\n", "image.native.files.src", 6, "{suffix}"),
            ("[image.native]\nbase = \"Bad Ref\"\n", "image.native.base", 6, "scratch"),
        ];
        for (text, key, line, hint) in cases {
            let err = parse(text).unwrap_err();
            crate::config::tests::assert_located(&err, text, key, line, hint);
        }
    }
}
