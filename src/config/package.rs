//! `[[package]]`: the NuGet packages `castoff pack` writes.
//!
//! ```toml
//! [[package]]
//! nuspec = "nuget/App.nuspec"   # may use $version$ or {version}; its <files> decide the content
//! symbols = "snupkg"            # snupkg (the default) | legacy | none
//! output = "dist/nuget"         # the default
//!
//! [[package]]                   # or the metadata inline, without a nuspec
//! id = "App.Core"
//! authors = "Contoso"
//! description = "The core of App"
//! license = "MIT"
//! files = [{ src = "bin/Release/netstandard2.0/App.Core.*", target = "lib/netstandard2.0" }]
//! ```
//!
//! Whatever can be checked without reading other files is checked here, at load time,
//! with the key (`package[0].nuspec`) and line; what needs the nuspec or the files is
//! checked by `castoff pack`, which reports against the locations kept here.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{check_inside_project, normalise, Spans};
use crate::error::{Error, Location, Result};
use crate::nuget::content::package_target;
use crate::nuget::ident::check_id;
use crate::nuget::spec::{FileSpec, InlineMetadata, PackageSource};
use crate::nuget::SymbolsKind;

/// Where packages go unless `output` says otherwise.
pub const DEFAULT_OUTPUT: &str = "dist/nuget";

/// The validated `[[package]]` table.
#[derive(Debug, Clone)]
pub struct PackageConfig {
    /// Position among the `[[package]]` tables (0-based), as keys name it.
    pub index: usize,
    pub source: PackageSource,
    /// `None`: no symbols package (`symbols = "none"`).
    pub symbols: Option<SymbolsKind>,
    /// The output directory, project-relative, `/`-separated.
    pub output: String,
    /// `files = [...]`; `None` leaves the content to the nuspec's `<files>`.
    pub files: Option<Vec<FileSpec>>,
    /// Where each key was written (`nuspec`, `symbols`, `files`, ...).
    locations: BTreeMap<&'static str, Location>,
    /// The table itself (the line of its `[[package]]` header).
    table: Location,
}

impl PackageConfig {
    /// The full key path of one of this table's keys: `package[0].nuspec`.
    pub fn key(&self, name: &str) -> String {
        format!("package[{}].{name}", self.index)
    }

    /// Where `name` was written; for a key not written, the table's line with that key.
    pub fn location(&self, name: &str) -> Location {
        match self.locations.get(name) {
            Some(location) => location.clone(),
            None => self.table.clone().with_key(self.key(name)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(super) struct RawPackage(Spanned<RawTable>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    nuspec: Option<Spanned<String>>,
    symbols: Option<Spanned<String>>,
    output: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
    authors: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    license: Option<Spanned<String>>,
    project_url: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<String>>>,
    dependencies: Option<Spanned<BTreeMap<String, String>>>,
    files: Option<Spanned<Vec<RawFile>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: Spanned<String>,
    target: Option<Spanned<String>>,
    exclude: Option<Vec<Spanned<String>>>,
}

type Check<T> = std::result::Result<T, (String, String)>;

impl PackageConfig {
    pub(super) fn from_raw(raw: RawPackage, index: usize, at: &Spans<'_>) -> Result<PackageConfig> {
        let span = raw.0.span();
        let raw = raw.0.into_inner();
        let key = |name: &str| format!("package[{index}].{name}");
        // The table's span starts at its `[[package]]` header.
        let table = at.at(&format!("package[{index}]"), span.clone());
        let mut locations: BTreeMap<&'static str, Location> = BTreeMap::new();
        let mut remember = |name: &'static str, span: std::ops::Range<usize>| {
            locations.insert(name, at.at(&key(name), span));
        };
        for (name, span) in [
            ("nuspec", raw.nuspec.as_ref().map(Spanned::span)),
            ("symbols", raw.symbols.as_ref().map(Spanned::span)),
            ("output", raw.output.as_ref().map(Spanned::span)),
            ("id", raw.id.as_ref().map(Spanned::span)),
            ("files", raw.files.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                remember(name, span);
            }
        }
        let missing = |name: &str, problem: String, hint: &str| {
            Error::invalid(table.clone().with_key(key(name)), problem, hint.to_string())
        };

        let symbols = match raw.symbols {
            Some(value) => at.check(&key("symbols"), value, |text| symbols_kind(&text))?,
            None => Some(SymbolsKind::Snupkg),
        };
        let output = match raw.output {
            Some(value) => at.check(&key("output"), value, |dir| output_dir(&dir))?,
            None => DEFAULT_OUTPUT.to_string(),
        };
        let files = raw.files.map(|list| files(list, &key("files"), at)).transpose()?;

        let inline_keys = [
            ("authors", raw.authors.as_ref().map(Spanned::span)),
            ("description", raw.description.as_ref().map(Spanned::span)),
            ("title", raw.title.as_ref().map(Spanned::span)),
            ("license", raw.license.as_ref().map(Spanned::span)),
            ("project_url", raw.project_url.as_ref().map(Spanned::span)),
            ("tags", raw.tags.as_ref().map(Spanned::span)),
            ("dependencies", raw.dependencies.as_ref().map(Spanned::span)),
        ];
        let source = match (raw.nuspec, raw.id) {
            (Some(_), Some(id)) => {
                return Err(Error::invalid(
                    at.at(&key("id"), id.span()),
                    format!("`package[{index}]` has both `nuspec` and `id`"),
                    "describe the package in a nuspec, or inline (id, authors, description, files), not both",
                ))
            }
            (None, None) => {
                return Err(missing(
                    "nuspec",
                    format!("`package[{index}]` needs `nuspec` or `id`"),
                    "add nuspec = \"App.nuspec\", or id, authors, description and files",
                ))
            }
            (Some(nuspec), None) => {
                if let Some((name, Some(span))) = inline_keys.iter().find(|(_, span)| span.is_some()) {
                    return Err(Error::invalid(
                        at.at(&key(name), span.clone()),
                        format!("`{}` is inline metadata, but this package has a nuspec", key(name)),
                        "set it in the nuspec, or remove `nuspec` and describe the package inline",
                    ));
                }
                PackageSource::Nuspec(at.check(&key("nuspec"), nuspec, |path| nuspec_path(&path))?)
            }
            (None, Some(id)) => {
                let id = at.check(&key("id"), id, |id| check_id(&id).map(|()| id).map_err(Into::into))?;
                let required = |name: &str, value: Option<Spanned<String>>, example: &str| -> Result<String> {
                    let hint = format!("add {name} = \"{example}\"");
                    let value = value
                        .ok_or_else(|| missing(name, format!("`{}` is required without a nuspec", key(name)), &hint))?;
                    at.check(&key(name), value, |text| non_empty(text, &hint))
                };
                let authors = required("authors", raw.authors, "Contoso")?;
                let description = required("description", raw.description, "What the package does")?;
                let optional = |name: &str, value: Option<Spanned<String>>, check: fn(String) -> Check<String>| {
                    value.map(|value| at.check(&key(name), value, check)).transpose()
                };
                let title = optional("title", raw.title, |t| non_empty(t, "write a title, or remove `title`"))?;
                let license = optional("license", raw.license, license_expression)?;
                let project_url = optional("project_url", raw.project_url, project_url)?;
                let tags =
                    raw.tags.map(|tags| at.check(&key("tags"), tags, check_tags)).transpose()?.unwrap_or_default();
                let dependencies = raw
                    .dependencies
                    .map(|deps| at.check(&key("dependencies"), deps, check_dependencies))
                    .transpose()?
                    .unwrap_or_default();
                if files.is_none() {
                    return Err(missing(
                        "files",
                        format!("`{}` is required without a nuspec", key("files")),
                        "list what to pack, e.g. files = [{ src = \"bin/Release/netstandard2.0/App.dll\", target = \"lib/netstandard2.0\" }]",
                    ));
                }
                PackageSource::Inline(InlineMetadata {
                    id,
                    authors,
                    description,
                    title,
                    license,
                    project_url,
                    tags,
                    dependencies,
                })
            }
        };
        Ok(PackageConfig { index, source, symbols, output, files, locations, table })
    }
}

fn symbols_kind(text: &str) -> Check<Option<SymbolsKind>> {
    match text {
        "snupkg" => Ok(Some(SymbolsKind::Snupkg)),
        "legacy" => Ok(Some(SymbolsKind::Legacy)),
        "none" => Ok(None),
        other => Err((
            format!("unknown symbols format `{other}`"),
            "use \"snupkg\" (portable PDBs, the default), \"legacy\" (.symbols.nupkg with sources) or \"none\"".into(),
        )),
    }
}

fn inside(path: &str, example: &str) -> Check<String> {
    check_inside_project(path).map(|()| normalise(path)).map_err(|problem| {
        (problem, format!("give a path relative to the directory that holds castoff.toml, e.g. \"{example}\""))
    })
}

fn nuspec_path(path: &str) -> Check<String> {
    let path = inside(path, "nuget/App.nuspec")?;
    match path.is_empty() {
        true => Err(("the nuspec path names the project directory, not a file".into(), "e.g. \"App.nuspec\"".into())),
        false => Ok(path),
    }
}

fn output_dir(dir: &str) -> Check<String> {
    let dir = inside(dir, DEFAULT_OUTPUT)?;
    match dir.is_empty() {
        true => Err((
            "the output directory cannot be the project root".into(),
            format!("use a directory of its own, e.g. \"{DEFAULT_OUTPUT}\""),
        )),
        false => Ok(dir),
    }
}

fn files(list: Spanned<Vec<RawFile>>, key: &str, at: &Spans<'_>) -> Result<Vec<FileSpec>> {
    let span = list.span();
    let list = list.into_inner();
    if list.is_empty() {
        return Err(Error::invalid(
            at.at(key, span),
            "`files` is empty",
            "list what to pack, e.g. files = [{ src = \"bin/Release/netstandard2.0/*.dll\", target = \"lib/netstandard2.0\" }]",
        ));
    }
    let mut specs = Vec::with_capacity(list.len());
    for (i, file) in list.into_iter().enumerate() {
        let src_key = format!("{key}[{i}].src");
        let location = at.at(&src_key, file.src.span());
        let src = at.check(&src_key, file.src, |src| source_glob(&src))?;
        let target = match file.target {
            Some(target) => {
                at.check(&format!("{key}[{i}].target"), target, |t| package_target(&t).map_err(Into::into))?
            }
            None => String::new(),
        };
        let mut exclude = Vec::new();
        for pattern in file.exclude.unwrap_or_default() {
            exclude.push(at.check(&format!("{key}[{i}].exclude"), pattern, |p| source_glob(&p))?);
        }
        specs.push(FileSpec { src, target, exclude, at: location });
    }
    Ok(specs)
}

/// A `files` glob: inside the project, `\` read as `/` (nuspec habit), valid syntax.
fn source_glob(pattern: &str) -> Check<String> {
    let pattern = pattern.replace('\\', "/");
    let path = inside(&pattern, "bin/Release/netstandard2.0/*.dll")?;
    if path.is_empty() {
        return Err((format!("`{pattern}` names no file"), "e.g. \"bin/Release/**/*.dll\"".into()));
    }
    globset::Glob::new(&path).map_err(|e| {
        (
            format!("`{pattern}` is not a valid glob: {}", e.kind()),
            "use * within a directory and ** across directories".into(),
        )
    })?;
    Ok(path)
}

fn non_empty(text: String, hint: &str) -> Check<String> {
    match text.trim().is_empty() {
        true => Err(("the value is empty".into(), hint.to_string())),
        false => Ok(text.trim().to_string()),
    }
}

/// An SPDX expression as NuGet accepts it: identifiers joined by AND, OR, WITH and
/// parentheses. Checked for its characters only; nuget.org checks the identifiers.
fn license_expression(text: String) -> Check<String> {
    let ok = !text.trim().is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || " .-+()".contains(c));
    match ok {
        true => Ok(text.trim().to_string()),
        false => {
            Err((format!("`{text}` is not an SPDX license expression"), "e.g. \"MIT\" or \"Apache-2.0 OR MIT\"".into()))
        }
    }
}

fn project_url(text: String) -> Check<String> {
    match text.starts_with("https://") || text.starts_with("http://") {
        true => Ok(text),
        false => Err((format!("`{text}` is not an http(s) URL"), "e.g. \"https://github.com/contoso/app\"".into())),
    }
}

fn check_tags(tags: Vec<String>) -> Check<Vec<String>> {
    match tags.iter().find(|t| t.is_empty() || t.chars().any(char::is_whitespace)) {
        Some(tag) => Err((format!("the tag `{tag}` is empty or has a space"), "give one word per tag".into())),
        None => Ok(tags),
    }
}

fn check_dependencies(deps: BTreeMap<String, String>) -> Check<BTreeMap<String, String>> {
    for (id, range) in &deps {
        check_id(id).map_err(|p| (format!("dependency: {}", p.problem()), p.hint().to_string()))?;
        let ok = !range.is_empty() && range.chars().all(|c| c.is_ascii_alphanumeric() || " .-+[](),".contains(c));
        if !ok {
            return Err((
                format!("`{range}` is not a NuGet version range (dependency `{id}`)"),
                "e.g. \"13.0.1\" (that version or newer) or \"[1.0,2.0)\"".into(),
            ));
        }
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> crate::Result<Config> {
        Config::parse(&format!("[version]\n\n{text}"), Path::new("castoff.toml"))
    }

    #[test]
    fn nuspec_package_with_defaults() {
        let config = parse("[[package]]\nnuspec = \"./nuget/App.nuspec\"\n").unwrap();
        let package = &config.packages[0];
        assert_eq!(package.source, PackageSource::Nuspec("nuget/App.nuspec".into()));
        assert_eq!(package.symbols, Some(SymbolsKind::Snupkg));
        assert_eq!(package.output, "dist/nuget");
        assert!(package.files.is_none());
        let location = package.location("nuspec");
        assert_eq!((location.line, location.key.as_deref()), (Some(4), Some("package[0].nuspec")));
        // A key not written is placed at the table's header.
        let location = package.location("symbols");
        assert_eq!((location.line, location.key.as_deref()), (Some(3), Some("package[0].symbols")));
    }

    #[test]
    fn inline_package() {
        let config = parse(
            "[[package]]\nnuspec = \"A.nuspec\"\nsymbols = \"none\"\n\n[[package]]\nid = \"App.Core\"\n\
             authors = \"Contoso\"\ndescription = \"Core\"\nlicense = \"MIT\"\ntags = [\"a\", \"b\"]\n\
             symbols = \"legacy\"\noutput = \"out/pkg/\"\n\
             files = [{ src = \"bin\\\\*.dll\", target = \"lib\\\\netstandard2.0\\\\\", exclude = [\"bin/x.dll\"] }]\n",
        )
        .unwrap();
        assert_eq!(config.packages[0].symbols, None);
        let package = &config.packages[1];
        assert_eq!(package.index, 1);
        assert_eq!(package.symbols, Some(SymbolsKind::Legacy));
        assert_eq!(package.output, "out/pkg");
        let PackageSource::Inline(meta) = &package.source else { panic!("{:?}", package.source) };
        assert_eq!((meta.id.as_str(), meta.license.as_deref()), ("App.Core", Some("MIT")));
        let files = package.files.as_ref().unwrap();
        assert_eq!(files[0].src, "bin/*.dll");
        assert_eq!(files[0].target, "lib/netstandard2.0");
        assert_eq!(files[0].exclude, ["bin/x.dll"]);
        assert_eq!(files[0].at.key.as_deref(), Some("package[1].files[0].src"));
    }

    #[test]
    fn errors_name_key_and_line() {
        let cases = [
            ("[[package]]\nnuspec = \"../App.nuspec\"\n", "package[0].nuspec", 4, "relative"),
            ("[[package]]\nnuspec = \"A.nuspec\"\nsymbols = \"pdb\"\n", "package[0].symbols", 5, "snupkg"),
            ("[[package]]\nnuspec = \"A.nuspec\"\noutput = \".\"\n", "package[0].output", 5, "dist/nuget"),
            ("[[package]]\nnuspec = \"A.nuspec\"\nid = \"A\"\n", "package[0].id", 5, "not both"),
            ("[[package]]\nnuspec = \"A.nuspec\"\nauthors = \"A\"\n", "package[0].authors", 5, "nuspec"),
            ("[[package]]\nsymbols = \"none\"\n", "package[0].nuspec", 3, "nuspec ="),
            ("[[package]]\nid = \"A..B\"\n", "package[0].id", 4, "letters"),
            ("[[package]]\nid = \"A\"\ndescription = \"d\"\n", "package[0].authors", 3, "authors ="),
            ("[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\n", "package[0].files", 3, "files ="),
            ("[[package]]\nid = \"A\"\nauthors = \" \"\n", "package[0].authors", 5, "authors ="),
            (
                "[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\nfiles = []\n",
                "package[0].files",
                7,
                "src =",
            ),
            (
                "[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\nfiles = [{ src = \"/etc/*\" }]\n",
                "package[0].files[0].src",
                7,
                "relative",
            ),
            (
                "[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\nfiles = [{ src = \"a\", target = \"../x\" }]\n",
                "package[0].files[0].target",
                7,
                "lib/",
            ),
            (
                "[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\nlicense = \"<MIT>\"\n",
                "package[0].license",
                7,
                "MIT",
            ),
            (
                "[[package]]\nid = \"A\"\nauthors = \"a\"\ndescription = \"d\"\ndependencies = { \"B C\" = \"1.0\" }\n",
                "package[0].dependencies",
                7,
                "letters",
            ),
            ("[[package]]\nnuspec = \"A.nuspec\"\n[[package]]\nnuspec = \"\"\n", "package[1].nuspec", 6, "relative"),
        ];
        for (text, key, line, hint) in cases {
            let err = parse(text).unwrap_err();
            crate::config::tests::assert_located(&err, text, key, line, hint);
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("[[package]]\nnuspec = \"A.nuspec\"\nsymbol = \"none\"\n").unwrap_err();
        assert!(err.to_string().contains("symbol"), "{err}");
        assert_eq!(err.location().unwrap().line, Some(5));
    }
}
