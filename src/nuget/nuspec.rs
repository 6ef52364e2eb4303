//! The nuspec: read (UTF-8 only), `$version$` and `{version}` filled in from VERSION,
//! parsed with quick-xml into the fields castoff checks and the `<files>` it packs, and
//! rewritten for the packages: without `<files>` (NuGet never ships it: its paths are
//! the packing machine's), and for a snupkg with the `SymbolsPackage` package type.
//!
//! Every error names the file and the line, computed from quick-xml's byte offsets, so
//! a broken nuspec is fixed in one go rather than by bisecting NuGet's messages.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use super::ident::{check_id, NugetVersion};
use super::spec::InlineMetadata;
use crate::error::{Error, IoContext, Location, Result};

/// The namespace castoff writes into the nuspecs it generates.
pub const NUSPEC_NAMESPACE: &str = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd";

/// The package type that marks a snupkg.
pub const SYMBOLS_PACKAGE_TYPE: &str = "SymbolsPackage";

/// The one replacement token castoff fills in (NuGet's `$version$`, any case).
const VERSION_TOKEN: &str = "version";

/// A metadata value and the line it sits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub value: String,
    pub line: usize,
}

/// One `<file src target exclude>` of a nuspec's `<files>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NuspecFile {
    pub src: String,
    pub target: Option<String>,
    pub exclude: Option<String>,
    pub line: usize,
}

/// A parsed nuspec, tokens replaced.
#[derive(Debug, Clone)]
pub struct Nuspec {
    /// The manifest text, tokens replaced.
    pub text: String,
    /// The file as errors name it.
    pub shown: PathBuf,
    pub id: Field,
    pub version: Field,
    pub authors: Field,
    pub description: Field,
    pub title: Option<String>,
    pub tags: Option<String>,
    /// `<packageTypes><packageType name>`, in order.
    pub package_types: Vec<String>,
    /// `<files>`: `None` when the nuspec has no such element.
    pub files: Option<Vec<NuspecFile>>,
    /// Line of `<files>`, for errors about the element as a whole.
    pub files_line: Option<usize>,
    package_types_span: Option<Range<usize>>,
    files_span: Option<Range<usize>>,
    /// Offset of `</metadata>`.
    metadata_end: usize,
}

/// Read the nuspec at `path` (named `shown` in errors) and fill in `version`.
pub fn read(path: &Path, shown: &Path, version: &str) -> Result<Nuspec> {
    let bytes = fs::read(path).with_path("read", path)?;
    let text = decode(&bytes, shown)?;
    let text = substitute(&text, version, shown)?;
    parse(text, shown)
}

/// The nuspec as text: UTF-8, a BOM dropped. NuGet reads UTF-16 too, but castoff
/// rewrites the manifest as UTF-8 and would have to re-encode; one encoding is simpler
/// to get right.
pub fn decode(bytes: &[u8], shown: &Path) -> Result<String> {
    let at = |line| Location::file(shown).with_line(line);
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(Error::invalid(at(1), "the nuspec is UTF-16", "save it as UTF-8"));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::invalid(at(line), "the nuspec is not valid UTF-8", "save it as UTF-8")
    })
}

/// Replace `$version$` (NuGet's token, any case) and `{version}` with `version`. Any
/// other `$token$` is an error naming it: NuGet would fill it from a project file
/// castoff does not read, and an unfilled token must not reach a published package.
pub fn substitute(text: &str, version: &str, shown: &Path) -> Result<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = 0;
    let mut search = 0;
    while let Some(open) = text[search..].find('$').map(|i| search + i) {
        let Some(close) = text[open + 1..].find('$').map(|i| open + 1 + i) else { break };
        let name = &text[open + 1..close];
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            // `$5 and $10` or `$$`: not a token; look again from the second `$`.
            search = close;
            continue;
        }
        if !name.eq_ignore_ascii_case(VERSION_TOKEN) {
            return Err(Error::invalid(
                Location::file(shown).with_line(line_of(text, open)),
                format!("unknown replacement token `${name}$`"),
                format!("castoff fills in only $version$ (from VERSION); write the value of ${name}$ itself"),
            ));
        }
        out.push_str(&text[done..open]);
        out.push_str(version);
        done = close + 1;
        search = done;
    }
    out.push_str(&text[done..]);
    Ok(out.replace("{version}", version))
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// An element still open while reading.
struct Open {
    name: String,
    start: usize,
    line: usize,
}

/// What the reader collects before the checks run.
#[derive(Default)]
struct Collected {
    package_line: Option<usize>,
    metadata_line: Option<usize>,
    metadata_end: Option<usize>,
    fields: Vec<(String, Field)>,
    text: Option<String>,
    package_types: Vec<String>,
    package_types_start: Option<usize>,
    package_types_span: Option<Range<usize>>,
    files: Option<Vec<NuspecFile>>,
    files_line: Option<usize>,
    files_span: Option<Range<usize>>,
}

/// The metadata elements castoff reads.
const FIELDS: [&str; 6] = ["id", "version", "authors", "description", "title", "tags"];

/// Parse nuspec text (tokens already replaced); check that it has the required fields
/// and a legal id. The version is checked against VERSION by [`Nuspec::check_version`].
pub fn parse(text: String, shown: &Path) -> Result<Nuspec> {
    let collected = read_events(&text, shown)?;
    let at = |line: usize| Location::file(shown).with_line(line);
    let package_line = collected.package_line.ok_or_else(|| {
        Error::invalid(
            at(1),
            "the nuspec has no <package> element",
            "a nuspec is <package><metadata>...</metadata></package>",
        )
    })?;
    let (Some(metadata_line), Some(metadata_end)) = (collected.metadata_line, collected.metadata_end) else {
        return Err(Error::invalid(
            at(package_line),
            "<package> has no <metadata> element",
            "add <metadata> with <id>, <version>, <authors> and <description>",
        ));
    };
    let mut fields = collected.fields;
    let mut take = |name: &str, example: &str| -> Result<Field> {
        let position = fields.iter().position(|(n, _)| n == name);
        let field = position.map(|i| fields.remove(i).1).ok_or_else(|| {
            Error::invalid(
                at(metadata_line),
                format!("<metadata> has no <{name}>, which NuGet requires"),
                format!("add <{name}>{example}</{name}> inside <metadata>"),
            )
        })?;
        if field.value.trim().is_empty() {
            return Err(Error::invalid(
                at(field.line),
                format!("<{name}> is empty"),
                format!("write a value, e.g. <{name}>{example}</{name}>"),
            ));
        }
        Ok(Field { value: field.value.trim().to_string(), line: field.line })
    };
    let id = take("id", "Contoso.Utility")?;
    let version = take("version", "$version$")?;
    let authors = take("authors", "Contoso")?;
    let description = take("description", "What the package does")?;
    let optional = |fields: &mut Vec<(String, Field)>, name: &str| {
        let position = fields.iter().position(|(n, _)| n == name);
        position.map(|i| fields.remove(i).1.value.trim().to_string()).filter(|v| !v.is_empty())
    };
    let title = optional(&mut fields, "title");
    let tags = optional(&mut fields, "tags");
    check_id(&id.value).map_err(|p| Error::invalid(at(id.line), p.problem(), p.hint()))?;
    Ok(Nuspec {
        text: text.clone(),
        shown: shown.to_path_buf(),
        id,
        version,
        authors,
        description,
        title,
        tags,
        package_types: collected.package_types,
        files: collected.files,
        files_line: collected.files_line,
        package_types_span: collected.package_types_span,
        files_span: collected.files_span,
        metadata_end,
    })
}

fn read_events(text: &str, shown: &Path) -> Result<Collected> {
    let at = |offset: usize| Location::file(shown).with_line(line_of(text, offset));
    let xml_hint = "fix the XML at that line: every element closed, attribute values quoted, `&` written as &amp;";
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut got = Collected::default();
    loop {
        let start = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| Error::invalid(at(reader.error_position() as usize), format!("invalid XML: {e}"), xml_hint))?;
        let end = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => {
                element(&e, &stack, start, end, text, shown, &mut got)?;
                stack.push(Open { name: local(&e), start, line: line_of(text, start) });
                if is_field(&stack) {
                    got.text = Some(String::new());
                }
            }
            Event::Empty(e) => {
                element(&e, &stack, start, end, text, shown, &mut got)?;
                let name = local(&e);
                stack.push(Open { name, start, line: line_of(text, start) });
                if is_field(&stack) {
                    got.text = Some(String::new());
                }
                close(&mut stack, start, end, text, shown, &mut got)?;
            }
            Event::End(_) => close(&mut stack, start, end, text, shown, &mut got)?,
            Event::Text(t) => {
                if let Some(buffer) = got.text.as_mut().filter(|_| is_field(&stack)) {
                    buffer.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(buffer) = got.text.as_mut().filter(|_| is_field(&stack)) {
                    buffer.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => resolve_predefined_entity(&r).map(str::to_string),
                    Err(_) => None,
                };
                let Some(resolved) = resolved else {
                    return Err(Error::invalid(
                        at(start),
                        format!("unknown entity `&{};`", &*r),
                        "use &amp; &lt; &gt; &quot; &apos; or a character reference such as &#169;",
                    ));
                };
                if let Some(buffer) = got.text.as_mut().filter(|_| is_field(&stack)) {
                    buffer.push_str(&resolved);
                }
            }
            Event::DocType(_) => {
                return Err(Error::invalid(
                    at(start),
                    "the nuspec has a <!DOCTYPE>, which NuGet refuses",
                    "remove the <!DOCTYPE ...> declaration",
                ))
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(Error::invalid(
            Location::file(shown).with_line(open.line),
            format!("<{}> is never closed", open.name),
            format!("add </{}> where the element ends", open.name),
        ));
    }
    Ok(got)
}

/// The local name (no namespace prefix) of an element.
fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

/// Whether the innermost open element is a metadata field castoff reads.
fn is_field(stack: &[Open]) -> bool {
    stack.len() == 3 && stack[1].name == "metadata" && FIELDS.contains(&stack[2].name.as_str())
}

/// An element opens (`stack` is its ancestors); record what castoff needs from it.
fn element(
    e: &BytesStart<'_>,
    stack: &[Open],
    start: usize,
    end: usize,
    text: &str,
    shown: &Path,
    got: &mut Collected,
) -> Result<()> {
    let at = |offset: usize| Location::file(shown).with_line(line_of(text, offset));
    // quick-xml parses attributes lazily; NuGet's parser rejects a malformed one anywhere.
    for attr in e.attributes() {
        attr.map_err(|err| {
            Error::invalid(at(start), format!("invalid XML attribute: {err}"), "quote every attribute value, once")
        })?;
    }
    let name = local(e);
    let path: Vec<&str> = stack.iter().map(|o| o.name.as_str()).collect();
    match (path.as_slice(), name.as_str()) {
        ([], "package") => got.package_line = Some(line_of(text, start)),
        ([], other) => {
            return Err(Error::invalid(
                at(start),
                format!("the root element is <{other}>, not <package>"),
                "a nuspec is <package><metadata>...</metadata></package>",
            ))
        }
        (["package"], "metadata") => {
            if got.metadata_line.is_some() {
                return Err(twice(at(start), "metadata"));
            }
            got.metadata_line = Some(line_of(text, start));
            // `<metadata/>`: it ends where it starts.
            got.metadata_end = Some(start);
        }
        (["package"], "files") => {
            if got.files.is_some() {
                return Err(twice(at(start), "files"));
            }
            got.files = Some(Vec::new());
            got.files_line = Some(line_of(text, start));
            got.files_span = Some(start..end);
        }
        (["package", "metadata"], field) if FIELDS.contains(&field) && got.fields.iter().any(|(n, _)| n == field) => {
            return Err(twice(at(start), field))
        }
        (["package", "metadata"], "packageTypes") => got.package_types_start = Some(start),
        (["package", "metadata", "packageTypes"], "packageType") => {
            if let Some(value) = attribute(e, "name", text, start, shown)? {
                got.package_types.push(value);
            }
        }
        (["package", "files"], "file") => {
            let line = line_of(text, start);
            let src = attribute(e, "src", text, start, shown)?.ok_or_else(|| {
                Error::invalid(
                    at(start),
                    "<file> has no src attribute",
                    "name the files to pack, e.g. <file src=\"bin/Release/**/*.dll\" target=\"lib\" />",
                )
            })?;
            let target = attribute(e, "target", text, start, shown)?;
            let exclude = attribute(e, "exclude", text, start, shown)?;
            if let Some(files) = got.files.as_mut() {
                files.push(NuspecFile { src, target, exclude, line });
            }
        }
        _ => {}
    }
    Ok(())
}

fn twice(at: Location, name: &str) -> Error {
    Error::invalid(at, format!("<{name}> appears twice"), format!("keep one <{name}> element"))
}

/// An element closes at `start..end`: store a field's text, remember spans.
fn close(stack: &mut Vec<Open>, start: usize, end: usize, text: &str, shown: &Path, got: &mut Collected) -> Result<()> {
    if is_field(stack) {
        let value = got.text.take().unwrap_or_default();
        if let Some(open) = stack.last() {
            got.fields.push((open.name.clone(), Field { value, line: open.line }));
        }
    }
    let Some(open) = stack.pop() else {
        return Err(Error::invalid(
            Location::file(shown).with_line(line_of(text, start)),
            "invalid XML: a closing tag without its opening tag",
            "remove the stray closing tag",
        ));
    };
    let path: Vec<&str> = stack.iter().map(|o| o.name.as_str()).collect();
    match (path.as_slice(), open.name.as_str()) {
        (["package"], "metadata") => got.metadata_end = Some(start),
        (["package"], "files") => got.files_span = Some(open.start..end),
        (["package", "metadata"], "packageTypes") => got.package_types_span = Some(open.start..end),
        _ => {}
    }
    Ok(())
}

/// An attribute's value, unescaped; `None` when absent.
fn attribute(e: &BytesStart<'_>, name: &str, text: &str, start: usize, shown: &Path) -> Result<Option<String>> {
    let at = || Location::file(shown).with_line(line_of(text, start));
    for attr in e.attributes() {
        let attr = attr.map_err(|err| {
            Error::invalid(at(), format!("invalid XML attribute: {err}"), "quote every attribute value, once")
        })?;
        if attr.key.local_name().as_ref() == name {
            let value = attr.normalized_value(XmlVersion::Implicit1_0).map_err(|err| {
                Error::invalid(at(), format!("invalid `{name}` value: {err}"), "write `&` as &amp; and `<` as &lt;")
            })?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

impl Nuspec {
    /// An error at `line` of this nuspec.
    pub fn error(&self, line: usize, problem: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::invalid(Location::file(&self.shown).with_line(line), problem, hint)
    }

    /// The version, checked to be a NuGet version equal to VERSION's.
    pub fn check_version(&self, expected: &NugetVersion) -> Result<NugetVersion> {
        let version = NugetVersion::parse(&self.version.value)
            .map_err(|p| self.error(self.version.line, p.problem(), p.hint()))?;
        if !version.same_as(expected) {
            return Err(self.error(
                self.version.line,
                format!("<version> is {}, but VERSION is {}", self.version.value, expected.normalized),
                "write <version>$version$</version> so castoff fills in VERSION",
            ));
        }
        Ok(version)
    }

    /// The manifest as packed: without `<files>`; for a snupkg, its package types
    /// replaced by `SymbolsPackage` (nuget.org accepts no other type there).
    pub fn packaged(&self, snupkg: bool) -> String {
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        if let Some(span) = &self.files_span {
            edits.push((self.whole_lines(span.clone()), String::new()));
        }
        if snupkg {
            if let Some(span) = &self.package_types_span {
                edits.push((self.whole_lines(span.clone()), String::new()));
            }
            let element = format!("<packageTypes><packageType name=\"{SYMBOLS_PACKAGE_TYPE}\" /></packageTypes>");
            // On a line of its own, indented one step more than `</metadata>`.
            let line_start = self.text[..self.metadata_end].rfind('\n').map_or(0, |i| i + 1);
            let indent = &self.text[line_start..self.metadata_end];
            match indent.chars().all(|c| c == ' ' || c == '\t') {
                true => edits.push((line_start..line_start, format!("{indent}  {element}\n"))),
                false => edits.push((self.metadata_end..self.metadata_end, element)),
            }
        }
        edits.sort_by_key(|(span, _)| span.start);
        let mut out = String::with_capacity(self.text.len() + 96);
        let mut done = 0;
        for (span, replacement) in edits {
            out.push_str(&self.text[done..span.start]);
            out.push_str(&replacement);
            done = span.end;
        }
        out.push_str(&self.text[done..]);
        out
    }

    /// `span` grown to the whole lines it covers when nothing else is on them, so that
    /// removing an element leaves no blank line.
    fn whole_lines(&self, span: Range<usize>) -> Range<usize> {
        let blank = |s: &str| s.chars().all(|c| c == ' ' || c == '\t' || c == '\r');
        let start = self.text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[span.end..].find('\n').map_or(self.text.len(), |i| span.end + i + 1);
        match blank(&self.text[start..span.start]) && blank(self.text[span.end..end].trim_end_matches('\n')) {
            true => start..end,
            false => span,
        }
    }
}

/// A nuspec written from `[[package]]`'s inline metadata, for `version`. It goes through
/// [`parse`] like any other, so both paths share one set of checks.
pub fn inline(meta: &InlineMetadata, version: &str) -> String {
    let mut xml =
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package xmlns=\"{NUSPEC_NAMESPACE}\">\n  <metadata>\n");
    let mut push = |name: &str, value: &str| xml.push_str(&format!("    <{name}>{}</{name}>\n", escape(value)));
    push("id", &meta.id);
    push("version", version);
    if let Some(title) = &meta.title {
        push("title", title);
    }
    push("authors", &meta.authors);
    push("description", &meta.description);
    if let Some(url) = &meta.project_url {
        push("projectUrl", url);
    }
    if !meta.tags.is_empty() {
        push("tags", &meta.tags.join(" "));
    }
    if let Some(license) = &meta.license {
        xml.push_str(&format!("    <license type=\"expression\">{}</license>\n", escape(license)));
    }
    if !meta.dependencies.is_empty() {
        xml.push_str("    <dependencies>\n");
        for (id, range) in &meta.dependencies {
            xml.push_str(&format!("      <dependency id=\"{}\" version=\"{}\" />\n", escape(id), escape(range)));
        }
        xml.push_str("    </dependencies>\n");
    }
    xml.push_str("  </metadata>\n</package>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
        <package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n\
        <metadata>\n\
        <id>App</id>\n\
        <version>$version$</version>\n\
        <authors>Contoso &amp; co</authors>\n\
        <description><![CDATA[The <app>]]></description>\n\
        <packageTypes><packageType name=\"Dependency\" /></packageTypes>\n\
        </metadata>\n\
        <files>\n\
        <file src=\"lib\\**\" target=\"lib\" exclude=\"**/*.xml\" />\n\
        </files>\n\
        </package>\n";

    fn shown() -> PathBuf {
        PathBuf::from("App.nuspec")
    }

    fn parsed(text: &str) -> Result<Nuspec> {
        parse(substitute(text, "1.2.3", &shown())?, &shown())
    }

    fn err_at(text: &str) -> (usize, String, String) {
        let err = parsed(text).unwrap_err();
        let location = err.location().unwrap().clone();
        assert_eq!(location.file, shown());
        (location.line.unwrap(), err.to_string(), err.hint().unwrap())
    }

    #[test]
    fn reads_fields_and_files() {
        let nuspec = parsed(GOOD).unwrap();
        assert_eq!(nuspec.id, Field { value: "App".into(), line: 4 });
        assert_eq!(nuspec.version.value, "1.2.3");
        assert_eq!(nuspec.authors.value, "Contoso & co");
        assert_eq!(nuspec.description.value, "The <app>");
        assert_eq!(nuspec.package_types, ["Dependency"]);
        let files = nuspec.files.as_ref().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].src, "lib\\**");
        assert_eq!(files[0].target.as_deref(), Some("lib"));
        assert_eq!(files[0].exclude.as_deref(), Some("**/*.xml"));
        assert_eq!(files[0].line, 11);
        let expected = NugetVersion::parse("1.2.3").unwrap();
        assert_eq!(nuspec.check_version(&expected).unwrap().normalized, "1.2.3");
    }

    #[test]
    fn packaged_drops_files_and_marks_symbols() {
        let nuspec = parsed(GOOD).unwrap();
        let main = nuspec.packaged(false);
        assert!(!main.contains("<files>") && !main.contains("<file "), "{main}");
        assert!(main.contains("name=\"Dependency\""));
        let symbols = nuspec.packaged(true);
        assert!(!symbols.contains("Dependency"), "{symbols}");
        assert!(
            symbols.contains("\n  <packageTypes><packageType name=\"SymbolsPackage\" /></packageTypes>\n</metadata>"),
            "{symbols}"
        );
        assert!(!symbols.contains("\n\n"), "{symbols}");
        // Both still parse, with the same identity.
        for text in [main, symbols] {
            let again = parse(text, &shown()).unwrap();
            assert_eq!((again.id.value.as_str(), again.version.value.as_str()), ("App", "1.2.3"));
            assert!(again.files.is_none());
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            substitute("<v>$version$ {version} $VERSION$</v>", "2.0.0", &shown()).unwrap(),
            "<v>2.0.0 2.0.0 2.0.0</v>"
        );
        assert_eq!(substitute("costs $5 and $10, $$", "1.0.0", &shown()).unwrap(), "costs $5 and $10, $$");
        let err = substitute("<a/>\n<id>$id$</id>", "1.0.0", &shown()).unwrap_err();
        assert!(err.to_string().contains("`$id$`"), "{err}");
        assert_eq!(err.location().unwrap().line, Some(2));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = read(Path::new("/nonexistent/App.nuspec"), &shown(), "1.0.0").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/App.nuspec"), "{err}");
    }

    #[test]
    fn invalid_xml_gives_the_line() {
        let (line, message, _) = err_at("<package>\n<metadata>\n<id>App</idd>\n</metadata>\n</package>\n");
        assert_eq!(line, 3, "{message}");
        assert!(message.contains("invalid XML"), "{message}");
        let (line, message, _) = err_at("<package>\n<metadata>\n<id>App</id>\n");
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("<metadata> is never closed"), "{message}");
        let (line, message, _) = err_at("<package>\n<metadata>\n<id a=b>App</id>\n</metadata></package>");
        assert_eq!(line, 3, "{message}");
        let (line, message, _) = err_at("<package>\n\n<metadata><id>&nbsp;</id></metadata></package>");
        assert_eq!(line, 3, "{message}");
        assert!(message.contains("&nbsp;"), "{message}");
        let (line, _, _) = err_at("\n\n<nuspec/>");
        assert_eq!(line, 3);
    }

    #[test]
    fn required_fields() {
        let without =
            |name: &str| GOOD.lines().filter(|l| !l.starts_with(&format!("<{name}>"))).collect::<Vec<_>>().join("\n");
        for name in ["id", "version", "authors", "description"] {
            let (line, message, hint) = err_at(&without(name));
            assert_eq!(line, 3, "{name}: {message}");
            assert!(message.contains(&format!("has no <{name}>")), "{message}");
            assert!(hint.contains(&format!("<{name}>")), "{hint}");
        }
        let (line, message, _) = err_at(&GOOD.replace("<id>App</id>", "<id> </id>"));
        assert_eq!((line, message.contains("<id> is empty")), (4, true), "{message}");
        let (line, message, _) = err_at(&GOOD.replace("<id>App</id>", "<id>App..Core</id>"));
        assert_eq!(line, 4);
        assert!(message.contains("two separators"), "{message}");
        let (_, message, _) = err_at("<package></package>");
        assert!(message.contains("no <metadata>"), "{message}");
        let (line, message, _) = err_at(&GOOD.replace("<title>", "").replace("<id>App</id>", "<id>A</id><id>B</id>"));
        assert_eq!(line, 4);
        assert!(message.contains("twice"), "{message}");
    }

    #[test]
    fn version_must_match() {
        let nuspec = parsed(&GOOD.replace("$version$", "1.02.3.0")).unwrap();
        assert!(nuspec.check_version(&NugetVersion::parse("1.2.3").unwrap()).is_ok());
        let err = nuspec.check_version(&NugetVersion::parse("1.2.4").unwrap()).unwrap_err();
        assert_eq!(err.location().unwrap().line, Some(5));
        assert!(err.hint().unwrap().contains("$version$"));
        let nuspec = parsed(&GOOD.replace("$version$", "one")).unwrap();
        assert!(nuspec.check_version(&NugetVersion::parse("1.2.3").unwrap()).is_err());
    }

    #[test]
    fn encodings() {
        assert!(decode(b"\xEF\xBB\xBF<package/>", &shown()).unwrap().starts_with("<package"));
        assert!(decode(b"\xFF\xFE<\0", &shown()).unwrap_err().to_string().contains("UTF-16"));
        let err = decode(b"<a>\n\xFF</a>", &shown()).unwrap_err();
        assert_eq!(err.location().unwrap().line, Some(2));
    }

    #[test]
    fn inline_metadata_round_trips() {
        let meta = InlineMetadata {
            id: "App.Core".into(),
            authors: "A & B".into(),
            description: "<desc>".into(),
            title: Some("App".into()),
            license: Some("MIT".into()),
            project_url: Some("https://example.com/app".into()),
            tags: vec!["one".into(), "two".into()],
            dependencies: [("Dep".to_string(), "[1.0,2.0)".to_string())].into(),
        };
        let nuspec = parse(inline(&meta, "1.0.0"), &shown()).unwrap();
        assert_eq!(nuspec.id.value, "App.Core");
        assert_eq!(nuspec.authors.value, "A & B");
        assert_eq!(nuspec.description.value, "<desc>");
        assert_eq!(nuspec.tags.as_deref(), Some("one two"));
        assert!(nuspec.text.contains("<dependency id=\"Dep\" version=\"[1.0,2.0)\" />"), "{}", nuspec.text);
    }
}
