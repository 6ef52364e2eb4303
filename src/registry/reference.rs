//! Image references (`[registry/]repository[:tag][@digest]`): parsing with Docker's
//! normalisation, and the canonical string every push, tag and journal entry uses.
//!
//! castoff names images the way users write them for `docker push` (`app`, `team/app`,
//! `localhost:5000/app:1.2.0`), but talks to registries over the distribution API, which
//! needs the registry host and the full repository path. This module turns the first
//! into the second once, with the rules of docker/distribution's
//! `reference.ParseNormalizedNamed`: a first component is a registry only when it holds a
//! `.` or `:` or is `localhost`; otherwise the image lives on Docker Hub (`docker.io`),
//! and a single-component Docker Hub name lives under `library/`. The grammar checked is
//! distribution's (`reference/regexp.go`), written out by hand rather than as regexes.
//!
//! Pure code: no I/O. A caller that knows where the text came from wraps a
//! [`ReferenceError`] with `Error::invalid(location, err.problem(), err.hint())`.

use std::fmt;
use std::str::FromStr;

/// The canonical registry name for Docker Hub.
pub const DOCKER_HUB: &str = "docker.io";

/// The host that serves Docker Hub's distribution API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Longest `registry/repository` a registry accepts (distribution's `NameTotalLengthMax`).
pub const NAME_MAX: usize = 255;

/// Longest tag (distribution's tag grammar allows 1 + 127 characters).
pub const TAG_MAX: usize = 128;

const SHAPE_HINT: &str = "write [registry/]repository[:tag][@digest], e.g. ghcr.io/team/app:1.2.0 or team/app";

const COMPONENT_RULE: &str = "repository components are lowercase letters and digits, joined by `.`, `_`, `__` or \
                              dashes, and start and end with a letter or digit";

/// A parsed, normalised image reference.
///
/// `registry` is always set (`docker.io` for Docker Hub) and `repository` is the full
/// path on that registry (`library/app` for the official-image shorthand `app`). A
/// reference parsed without a tag keeps `tag: None`: castoff does not invent `latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// Repository path on the registry, e.g. `library/app`, `team/app`.
    pub repository: String,
    /// Tag, e.g. `1.2.0`, `armv7`.
    pub tag: Option<String>,
    /// Content digest, `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// What is wrong with the text and how to fix it.
pub type ReferenceError = crate::error::Problem;

impl Reference {
    /// Parse a reference as `docker push` and `docker pull` accept it, normalising Docker
    /// Hub names (`app` → `docker.io/library/app`, `index.docker.io/x/y` →
    /// `docker.io/x/y`).
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::new("the image reference is empty", SHAPE_HINT));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(ReferenceError::new(
                format!("image reference `{text}` contains whitespace"),
                format!("write `{}`", text.split_whitespace().collect::<String>()),
            ));
        }
        if let Some(rest) = ["https://", "http://", "oci://", "docker://"].iter().find_map(|s| text.strip_prefix(s)) {
            return Err(ReferenceError::new(
                format!("image reference `{text}` is a URL; references have no scheme"),
                format!("write `{rest}` (plain-HTTP registries are set with `insecure`, not a scheme)"),
            ));
        }
        if text.len() == 64 && text.bytes().all(is_lower_hex) {
            return Err(ReferenceError::new(
                format!("image reference `{text}` is a bare 64-digit hex string, which names no repository"),
                "write repository@sha256:<hex> to refer to content by digest",
            ));
        }

        let (name_and_tag, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/`; a `:` before it is a port.
        let path_start = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
        let (name, tag) = match name_and_tag[path_start..].rfind(':') {
            Some(colon) => {
                let colon = path_start + colon;
                (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
            }
            None => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::new(format!("image reference `{text}` has no repository"), SHAPE_HINT));
        }
        check_not_bare_registry(text, name, tag)?;

        let (registry, repository) = split_registry(name);
        if repository.is_empty() {
            return Err(ReferenceError::new(
                format!("image reference `{text}` has a registry but no repository"),
                format!("write {registry}/<repository>[:tag], e.g. {registry}/team/app:1.2.0"),
            ));
        }
        check_registry(text, &registry)?;
        let registry = normalise_registry(&registry);
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        check_repository(text, &repository)?;
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }

        let reference =
            Reference { registry, repository, tag: tag.map(str::to_string), digest: digest.map(str::to_string) };
        let length = reference.name().len();
        if length > NAME_MAX {
            return Err(ReferenceError::new(
                format!(
                    "image name `{}` is {length} characters; registries accept at most {NAME_MAX}",
                    reference.name()
                ),
                "shorten the repository path",
            ));
        }
        Ok(reference)
    }

    /// `registry/repository`, without tag or digest: the name a registry stores the
    /// image under, e.g. `docker.io/library/app`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host to send distribution API requests to: `registry-1.docker.io` for Docker
    /// Hub, the registry itself (with its port) otherwise.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The same repository under `tag`. Any digest is dropped: it names the content of
    /// the reference this was derived from, not whatever the new tag will point at.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        check_tag(tag)?;
        Ok(Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() })
    }

    /// The same reference pinned to `digest` (`algorithm:hex`). The tag is kept, giving
    /// the `repository:tag@digest` form; the digest is what registries resolve.
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ReferenceError> {
        check_digest(digest)?;
        Ok(Reference { digest: Some(digest.to_string()), ..self.clone() })
    }
}

impl fmt::Display for Reference {
    /// The canonical form: `docker.io/library/app:latest`,
    /// `localhost:5000/team/app@sha256:…`, `ghcr.io/team/app:1.2.0@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Reference::parse(text)
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Split off the registry the way `splitDockerDomain` does: the first component is a
/// registry when it holds `.` or `:` or is `localhost`; otherwise it is Docker Hub.
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => (first.to_string(), rest),
        _ => (DOCKER_HUB.to_string(), name),
    }
}

/// `localhost:5000` or `registry.example.com:5000` alone parse, under Docker's rules,
/// as a Docker Hub image with a numeric tag; nobody means that.
fn check_not_bare_registry(text: &str, name: &str, tag: Option<&str>) -> Result<(), ReferenceError> {
    if name.contains('/') {
        return Ok(());
    }
    let port = tag.filter(|tag| !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()));
    let looks_like_host = name == "localhost" || name.starts_with('[') || (name.contains('.') && port.is_some());
    if !looks_like_host {
        return Ok(());
    }
    Err(ReferenceError::new(
        format!("image reference `{text}` names a registry but no repository"),
        format!("write {text}/<repository>[:tag], e.g. {text}/app:1.2.0"),
    ))
}

/// Docker Hub's other host names canonicalise to `docker.io`; hosts are case-insensitive.
fn normalise_registry(registry: &str) -> String {
    let registry = registry.to_ascii_lowercase();
    match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    }
}

/// `host[:port]`, host a DNS-style name, dotted IPv4 or bracketed IPv6.
fn check_registry(text: &str, registry: &str) -> Result<(), ReferenceError> {
    let bad = |why: &str| {
        ReferenceError::new(
            format!("image reference `{text}`: registry `{registry}` {why}"),
            "write the registry as host[:port], e.g. ghcr.io, registry.example.com:5000, localhost:5000 or [::1]:5000",
        )
    };
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return Err(bad("has an unclosed `[`"));
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad("is not a valid IPv6 address"));
        }
        match after {
            "" => (registry, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (&registry[..registry.len() - after.len()], Some(port)),
                None => return Err(bad("has text after the IPv6 address")),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err(bad(&format!("has port `{port}`, which is not a number from 0 to 65535")));
        }
    }
    if !host.starts_with('[') && !host.split('.').all(domain_component) {
        return Err(bad("is not a valid host name (letters, digits and `-`, in `.`-separated parts)"));
    }
    Ok(())
}

/// distribution's `domainNameComponent`: `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn domain_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `path-component ('/' path-component)*`, lowercase only.
fn check_repository(text: &str, repository: &str) -> Result<(), ReferenceError> {
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::new(
            format!("image reference `{text}`: repository `{repository}` has uppercase letters"),
            format!("repository names must be lowercase; write `{}`", lowercase_repository(text)),
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceError::new(
                format!("image reference `{text}`: repository `{repository}` has an empty component"),
                "remove the doubled or trailing `/`",
            ));
        }
        if !path_component(component) {
            return Err(ReferenceError::new(
                format!("image reference `{text}`: `{component}` is not a valid repository component"),
                COMPONENT_RULE,
            ));
        }
    }
    Ok(())
}

/// `text` with its repository part lowercased (registry, tag and digest left alone).
fn lowercase_repository(text: &str) -> String {
    let (name_and_tag, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, format!("@{digest}")),
        None => (text, String::new()),
    };
    let path_start = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
    let name_end = name_and_tag[path_start..].rfind(':').map_or(name_and_tag.len(), |colon| path_start + colon);
    let (name, tag) = name_and_tag.split_at(name_end);
    let lowered = match name.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => {
            format!("{first}/{}", rest.to_ascii_lowercase())
        }
        _ => name.to_ascii_lowercase(),
    };
    format!("{lowered}{tag}{digest}")
}

/// distribution's `pathComponent`: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, i.e. runs
/// of lowercase alphanumerics joined by exactly `.`, `_`, `__`, or one or more `-`.
fn path_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| alnum(b)).unwrap_or(rest.len());
        let separator = &rest[..run];
        let ok = matches!(separator, b"" | b"." | b"_" | b"__") || separator.iter().all(|&b| b == b'-');
        if !ok {
            return false;
        }
        rest = &rest[run..];
        let word = rest.iter().position(|&b| !alnum(b)).unwrap_or(rest.len());
        rest = &rest[word..];
    }
    true
}

/// distribution's tag grammar: `[\w][\w.-]{0,127}` with ASCII `\w`.
fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = bytes.first().is_some_and(|&b| word(b))
        && bytes.len() <= TAG_MAX
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if valid {
        return Ok(());
    }
    let hint = if tag.is_empty() {
        "write a tag after the `:`, or leave out the `:`".to_string()
    } else if tag.len() > TAG_MAX {
        format!("shorten the tag to at most {TAG_MAX} characters")
    } else if tag.contains('+') {
        format!(
            "tags cannot hold `+`; replace it, e.g. `{}` (semver build metadata is often written with `_`)",
            tag.replace('+', "_")
        )
    } else {
        "tags are letters, digits, `_`, `.` and `-`, at most 128 characters, and cannot start with `.` or `-`"
            .to_string()
    };
    Err(ReferenceError::new(format!("`{tag}` is not a valid tag"), hint))
}

/// `algorithm:hex`, with the encoded length the registered algorithm requires.
fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ReferenceError::new(
            format!("digest `{digest}` has no algorithm"),
            "write the digest as sha256:<64 hex digits>",
        ));
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(ReferenceError::new(
                format!("digest `{digest}` uses algorithm `{algorithm}`, which OCI registries do not support"),
                "use a sha256 (or sha512) digest, as registries report it: sha256:<64 hex digits>",
            ))
        }
    };
    if hex.len() == expected && hex.bytes().all(is_lower_hex) {
        return Ok(());
    }
    let hint = if hex.len() == expected && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        format!("write the hex digits in lowercase: {algorithm}:{}", hex.to_ascii_lowercase())
    } else {
        format!("copy the whole digest as the registry reports it: {algorithm}: followed by {expected} hex digits")
    };
    Err(ReferenceError::new(
        format!(
            "digest `{digest}` is not valid: {algorithm} needs {expected} lowercase hex digits, found `{hex}` ({} characters)",
            hex.len()
        ),
        hint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// (input, registry, repository, tag, digest, canonical string)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>, String);

    fn sha512() -> String {
        format!("sha512:{}", "0123456789abcdef".repeat(8))
    }

    fn r(text: &str) -> Reference {
        Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {} ({})", e.problem(), e.hint()))
    }

    fn err(text: &str) -> ReferenceError {
        match Reference::parse(text) {
            Ok(reference) => panic!("{text} parsed as {reference}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_and_normalises() {
        let digest_only = format!("127.0.0.1:5000/team/app@{SHA256}");
        let tag_and_digest = format!("ghcr.io/team/app:1.2.0@{SHA256}");
        let hub_digest = format!("app@{SHA256}");
        let cases: Vec<Case> = vec![
            ("app", "docker.io", "library/app", None, None, "docker.io/library/app".into()),
            ("app:latest", "docker.io", "library/app", Some("latest"), None, "docker.io/library/app:latest".into()),
            ("team/app", "docker.io", "team/app", None, None, "docker.io/team/app".into()),
            ("team/app:1.2.0", "docker.io", "team/app", Some("1.2.0"), None, "docker.io/team/app:1.2.0".into()),
            ("docker.io/app", "docker.io", "library/app", None, None, "docker.io/library/app".into()),
            ("docker.io/library/app", "docker.io", "library/app", None, None, "docker.io/library/app".into()),
            ("index.docker.io/team/app", "docker.io", "team/app", None, None, "docker.io/team/app".into()),
            ("index.docker.io/app", "docker.io", "library/app", None, None, "docker.io/library/app".into()),
            ("registry-1.docker.io/team/app", "docker.io", "team/app", None, None, "docker.io/team/app".into()),
            ("Docker.IO/team/app", "docker.io", "team/app", None, None, "docker.io/team/app".into()),
            ("team/sub/app", "docker.io", "team/sub/app", None, None, "docker.io/team/sub/app".into()),
            ("localhost:5000/app:tag", "localhost:5000", "app", Some("tag"), None, "localhost:5000/app:tag".into()),
            ("localhost/app", "localhost", "app", None, None, "localhost/app".into()),
            (&digest_only, "127.0.0.1:5000", "team/app", None, Some(SHA256), digest_only.clone()),
            (&tag_and_digest, "ghcr.io", "team/app", Some("1.2.0"), Some(SHA256), tag_and_digest.clone()),
            (&hub_digest, "docker.io", "library/app", None, Some(SHA256), format!("docker.io/library/app@{SHA256}")),
            ("ghcr.io/team/app:armv7", "ghcr.io", "team/app", Some("armv7"), None, "ghcr.io/team/app:armv7".into()),
            ("example.com/app", "example.com", "app", None, None, "example.com/app".into()),
            ("my-registry:5000/a/b", "my-registry:5000", "a/b", None, None, "my-registry:5000/a/b".into()),
            ("[::1]:5000/app:v1", "[::1]:5000", "app", Some("v1"), None, "[::1]:5000/app:v1".into()),
            ("[fe80::1]/app", "[fe80::1]", "app", None, None, "[fe80::1]/app".into()),
            // separators: `.`, `_`, `__`, runs of `-`
            ("team/a.b_c__d---e", "docker.io", "team/a.b_c__d---e", None, None, "docker.io/team/a.b_c__d---e".into()),
            // tags may be uppercase and start with `_`
            ("app:V1_RC", "docker.io", "library/app", Some("V1_RC"), None, "docker.io/library/app:V1_RC".into()),
            ("app:_x", "docker.io", "library/app", Some("_x"), None, "docker.io/library/app:_x".into()),
            // a single component with dots is a Docker Hub name, as in distribution
            ("example.com", "docker.io", "library/example.com", None, None, "docker.io/library/example.com".into()),
        ];
        for (input, registry, repository, tag, digest, canonical) in cases {
            let reference = r(input);
            let expected = Reference {
                registry: registry.into(),
                repository: repository.into(),
                tag: tag.map(Into::into),
                digest: digest.map(Into::into),
            };
            assert_eq!(reference, expected, "{input}");
            assert_eq!(reference.to_string(), canonical, "{input}");
            assert_eq!(input.parse::<Reference>().as_ref(), Ok(&reference), "{input} via FromStr");
            assert_eq!(r(&canonical), reference, "{canonical} round-trips");
        }
        assert_eq!(r(&format!("app@{}", sha512())).digest, Some(sha512()));
    }

    #[test]
    fn rejects_bad_references() {
        let long = format!("ghcr.io/{}", "a".repeat(250));
        let long_tag = format!("app:{}", "t".repeat(129));
        let upper_digest = format!("app@{}", SHA256.to_ascii_uppercase().replace("SHA256", "sha256"));
        let short_digest = format!("app@{}", &SHA256[..70]);
        let bare_hex = SHA256["sha256:".len()..].to_string();
        let cases: Vec<(&str, &str, &str)> = vec![
            // (input, text the problem contains, text the hint contains)
            ("", "empty", "repository"),
            ("team/App", "uppercase", "write `team/app`"),
            ("Team/app:V1", "uppercase", "write `team/app:V1`"),
            ("ghcr.io/Team/App:1.0", "uppercase", "write `ghcr.io/team/app:1.0`"),
            ("MyApp", "uppercase", "write `myapp`"),
            ("team//app", "empty component", "doubled or trailing"),
            ("team/app/", "empty component", "doubled or trailing"),
            ("ghcr.io/", "no repository", "repository"),
            ("docker.io/", "no repository", "repository"),
            ("-app", "not a valid repository component", "lowercase letters"),
            ("app-", "not a valid repository component", "lowercase letters"),
            ("a..b", "not a valid repository component", "lowercase letters"),
            ("a___b", "not a valid repository component", "lowercase letters"),
            ("a.-b", "not a valid repository component", "lowercase letters"),
            ("team/ap!p", "not a valid repository component", "lowercase letters"),
            ("app:1:2", "not a valid repository component", "lowercase letters"),
            ("app:", "not a valid tag", "write a tag"),
            ("app:-x", "not a valid tag", "cannot start with"),
            ("app:.x", "not a valid tag", "cannot start with"),
            ("app:1.2.3+build.5", "not a valid tag", "1.2.3_build.5"),
            (&long_tag, "not a valid tag", "at most 128"),
            ("app@", "has no algorithm", "sha256:<64 hex digits>"),
            ("app@sha256", "has no algorithm", "sha256:<64 hex digits>"),
            ("app@md5:0123456789abcdef0123456789abcdef", "algorithm `md5`", "sha256"),
            (&short_digest, "64 lowercase hex digits", "64 hex digits"),
            (&upper_digest, "64 lowercase hex digits", "lowercase: sha256:7cc4b5ae"),
            ("app@sha512:abcd", "128 lowercase hex digits", "128 hex digits"),
            (&bare_hex, "64-digit hex", "@sha256"),
            (&long, "258 characters", "shorten"),
            ("localhost:5000", "registry but no repository", "localhost:5000/app"),
            ("registry.example.com:5000", "registry but no repository", "registry.example.com:5000/<repository>"),
            ("127.0.0.1:5000", "registry but no repository", "127.0.0.1:5000/app"),
            ("localhost", "registry but no repository", "localhost/app"),
            ("https://ghcr.io/team/app", "is a URL", "write `ghcr.io/team/app`"),
            ("ghcr.io/team/app :1", "whitespace", "write `ghcr.io/team/app:1`"),
            ("reg_istry.io/app", "not a valid host name", "host[:port]"),
            ("-reg.io/app", "not a valid host name", "host[:port]"),
            ("reg.io:/app", "port ``", "host[:port]"),
            ("reg.io:http/app", "port `http`", "host[:port]"),
            ("reg.io:99999/app", "port `99999`", "host[:port]"),
            ("[::1/app", "unclosed", "host[:port]"),
            ("[zz::1]:5000/app", "not a valid IPv6", "host[:port]"),
            ("[::1]x/app", "after the IPv6", "host[:port]"),
        ];
        for (input, problem, hint) in cases {
            let e = err(input);
            assert!(e.problem().contains(problem), "{input:?}: problem {:?}", e.problem());
            assert!(e.hint().contains(hint), "{input:?}: hint {:?}", e.hint());
            assert_eq!(e.to_string(), e.problem());
        }
    }

    #[test]
    fn name_length_counts_registry_and_repository() {
        // "ghcr.io/" is 8 characters: 247 more make exactly 255.
        let at_limit = format!("ghcr.io/{}", "a".repeat(NAME_MAX - 8));
        assert_eq!(r(&at_limit).name().len(), NAME_MAX);
        assert!(Reference::parse(&format!("{at_limit}a")).is_err());
        // The Docker Hub prefix counts too: the name is docker.io/library/<component>.
        let hub = "a".repeat(NAME_MAX - "docker.io/library/".len());
        assert_eq!(r(&hub).name().len(), NAME_MAX);
        assert!(Reference::parse(&format!("{hub}a")).is_err());
    }

    #[test]
    fn api_host_maps_docker_hub() {
        let cases = [
            ("app", "registry-1.docker.io"),
            ("team/app", "registry-1.docker.io"),
            ("index.docker.io/team/app", "registry-1.docker.io"),
            ("ghcr.io/team/app", "ghcr.io"),
            ("localhost:5000/app", "localhost:5000"),
            ("127.0.0.1:5000/team/app", "127.0.0.1:5000"),
            ("[::1]:5000/app", "[::1]:5000"),
        ];
        for (input, host) in cases {
            assert_eq!(r(input).api_host(), host, "{input}");
        }
    }

    #[test]
    fn name_leaves_out_tag_and_digest() {
        assert_eq!(r(&format!("team/app:1.0@{SHA256}")).name(), "docker.io/team/app");
        assert_eq!(r("localhost:5000/app:x").name(), "localhost:5000/app");
    }

    #[test]
    fn with_tag_replaces_the_tag_and_drops_the_digest() {
        let base = r("ghcr.io/team/app:1.2.0");
        assert_eq!(base.with_tag("armv7").map(|x| x.to_string()), Ok("ghcr.io/team/app:armv7".to_string()));
        let pinned = r(&format!("ghcr.io/team/app@{SHA256}"));
        assert_eq!(pinned.with_tag("latest").map(|x| x.to_string()), Ok("ghcr.io/team/app:latest".to_string()));
        assert_eq!(r("app").with_tag("1.0").map(|x| x.to_string()), Ok("docker.io/library/app:1.0".to_string()));
        for bad in ["", "-x", "1.0+meta", "a/b", "a:b"] {
            let e = base.with_tag(bad).expect_err(bad);
            assert!(e.problem().contains("not a valid tag"), "{bad}: {}", e.problem());
        }
    }

    #[test]
    fn with_digest_pins_and_keeps_the_tag() {
        let base = r("localhost:5000/team/app:amd64");
        let pinned = base.with_digest(SHA256).unwrap();
        assert_eq!(pinned.to_string(), format!("localhost:5000/team/app:amd64@{SHA256}"));
        assert_eq!(r(&pinned.to_string()), pinned);
        let replaced = pinned.with_digest(&sha512()).unwrap();
        assert_eq!(replaced.digest, Some(sha512()));
        for bad in ["", "sha256", "sha256:abc", "md5:0123456789abcdef0123456789abcdef", "sha256:XYZ"] {
            assert!(base.with_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn path_component_grammar() {
        let good = ["a", "a1", "1a", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "a.b.c", "a_b-c.d"];
        let bad = ["", "A", ".a", "a.", "_a", "a_", "-a", "a-", "a..b", "a___b", "a._b", "a-.b", "a_-b", "a b", "a:b"];
        for component in good {
            assert!(path_component(component), "{component} should be valid");
        }
        for component in bad {
            assert!(!path_component(component), "{component} should be invalid");
        }
    }
}
