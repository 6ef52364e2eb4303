//! `{name}` placeholders in user templates such as the git tag `v{version}`.
//!
//! Deliberately tiny rather than a template engine: tags and file names are one line, and
//! a typo such as `{verison}` must be caught when the config is loaded, not at release
//! time. Validation and expansion share one scanner so they cannot disagree.

/// Placeholders a version-derived template may use.
pub const VERSION_PLACEHOLDERS: &[&str] = &["version", "major", "minor", "patch"];

/// Placeholders an image tag may use: the version's, and the git commit.
pub const IMAGE_TAG_PLACEHOLDERS: &[&str] = &["version", "major", "minor", "patch", "git_sha"];

/// Placeholders a per-platform tag may use: an image tag's, and the platform suffix.
pub const PLATFORM_TAG_PLACEHOLDERS: &[&str] = &["version", "major", "minor", "patch", "git_sha", "suffix"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Unknown(String),
    Unclosed,
}

/// Check that every `{...}` in `template` is one of `allowed`.
pub fn validate(template: &str, allowed: &[&str]) -> Result<(), TemplateError> {
    expand(template, |name| allowed.contains(&name).then(String::new)).map(|_| ())
}

/// Replace each `{name}` with `lookup(name)`; `None` means the name is unknown.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(TemplateError::Unclosed)?;
        let name = &after[..close];
        out.push_str(&lookup(name).ok_or_else(|| TemplateError::Unknown(name.to_string()))?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Values for [`VERSION_PLACEHOLDERS`].
pub fn version_value(version: &semver::Version, name: &str) -> Option<String> {
    Some(match name {
        "version" => version.to_string(),
        "major" => version.major.to_string(),
        "minor" => version.minor.to_string(),
        "patch" => version.patch.to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_and_rejects_unknown() {
        let v = semver::Version::parse("1.4.2-rc.1").unwrap();
        let tag = expand("v{version}", |n| version_value(&v, n)).unwrap();
        assert_eq!(tag, "v1.4.2-rc.1");
        assert_eq!(expand("{major}.{minor}", |n| version_value(&v, n)).unwrap(), "1.4");
        assert_eq!(validate("v{verison}", VERSION_PLACEHOLDERS), Err(TemplateError::Unknown("verison".into())));
        assert_eq!(validate("v{version", VERSION_PLACEHOLDERS), Err(TemplateError::Unclosed));
    }
}
