//! Bump rules: pure functions from one version to the next.
//!
//! The rules follow npm and cargo-release, which release engineers already know:
//! - `major|minor|patch` raise one part and reset the lower ones. A version that is a
//!   prerelease of exactly that bump is finished instead (1.3.0-rc.2 + minor = 1.3.0).
//! - `--pre LABEL` starts a prerelease of the bump (1.2.3 + minor --pre rc = 1.3.0-rc.1),
//!   or advances one already under way (1.3.0-rc.1 → 1.3.0-rc.2).
//! - `release` drops the prerelease part.
//! - `auto` (sources changed) raises the patch, or advances a prerelease under way, so a
//!   release candidate series is not cut short by an edit.
//!
//! Build metadata describes one build, so every bump drops it. A bump never goes
//! backwards: a result that sorts at or before the current version is an error.

use std::fmt;
use std::str::FromStr;

use semver::{BuildMetadata, Prerelease, Version};
use serde::Serialize;

/// Which part of the version a bump raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Major,
    Minor,
    Patch,
}

/// Everything `castoff bump` can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BumpRequest {
    /// Raise a part; with `pre`, start or advance a prerelease of that bump.
    Level { level: Level, pre: Option<String> },
    /// Drop the prerelease part.
    Release,
    /// Raise the patch (or advance the prerelease) only when tracked sources changed.
    Auto,
}

impl fmt::Display for BumpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BumpRequest::Level { level, pre } => {
                let name = match level {
                    Level::Major => "major",
                    Level::Minor => "minor",
                    Level::Patch => "patch",
                };
                match pre {
                    Some(label) => write!(f, "{name} --pre {label}"),
                    None => f.write_str(name),
                }
            }
            BumpRequest::Release => f.write_str("release"),
            BumpRequest::Auto => f.write_str("auto"),
        }
    }
}

/// Why a bump cannot be computed; the CLI adds where (the VERSION file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BumpError {
    #[error("`{label}` is not a valid prerelease label")]
    BadLabel { label: String, hint: String },
    #[error("{current} is not a prerelease, so there is nothing to release")]
    NotPrerelease { current: Version },
    #[error("{current} → {next} would go backwards")]
    Backwards { current: Version, next: Version },
    #[error("{current} cannot be raised: a part would overflow")]
    Overflow { current: Version },
}

impl BumpError {
    pub fn hint(&self) -> String {
        match self {
            BumpError::BadLabel { hint, .. } => hint.clone(),
            BumpError::NotPrerelease { .. } => "use `castoff bump patch|minor|major` to make a new version".into(),
            BumpError::Backwards { current, .. } => format!(
                "prerelease labels sort alphabetically; pick one that sorts after `{}`, \
                 or finish the release with `castoff bump release`",
                current.pre
            ),
            BumpError::Overflow { .. } => "edit VERSION by hand".into(),
        }
    }
}

impl BumpRequest {
    /// The words `castoff bump` accepts, for argument parsers.
    pub const LEVELS: [&'static str; 5] = ["major", "minor", "patch", "release", "auto"];

    /// A request from the command line's words: a level (one of [`Self::LEVELS`]) and
    /// an optional prerelease label, which only major, minor and patch take.
    pub fn parse(level: &str, pre: Option<String>) -> Result<BumpRequest, String> {
        match (level, pre) {
            ("release", None) => Ok(BumpRequest::Release),
            ("auto", None) => Ok(BumpRequest::Auto),
            ("release" | "auto", Some(_)) => Err(format!("--pre cannot be used with `bump {level}`")),
            (other, pre) => Ok(BumpRequest::Level { level: other.parse()?, pre }),
        }
    }
}

impl FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "major" => Ok(Level::Major),
            "minor" => Ok(Level::Minor),
            "patch" => Ok(Level::Patch),
            other => Err(format!("unknown level `{other}`: use major, minor or patch")),
        }
    }
}

/// Apply `request` to `current`. `Auto` always bumps here; deciding whether sources
/// changed is the caller's job.
pub fn next_version(current: &Version, request: &BumpRequest) -> Result<Version, BumpError> {
    let next = match request {
        BumpRequest::Level { level, pre: None } => finish_or_raise(current, *level)?,
        BumpRequest::Level { level, pre: Some(label) } => {
            validate_label(label)?;
            let base = finish_or_raise(current, *level)?;
            let (current_label, current_number) = split_prerelease(&current.pre);
            let same_release =
                base.major == current.major && base.minor == current.minor && base.patch == current.patch;
            let advancing = same_release && !current.pre.is_empty() && current_label == *label;
            let number = if advancing { current_number.unwrap_or(0).checked_add(1) } else { Some(1) }
                .ok_or_else(|| BumpError::Overflow { current: current.clone() })?;
            with_prerelease(base, label, number)
        }
        BumpRequest::Release => {
            if current.pre.is_empty() {
                return Err(BumpError::NotPrerelease { current: current.clone() });
            }
            Version::new(current.major, current.minor, current.patch)
        }
        BumpRequest::Auto => {
            if current.pre.is_empty() {
                finish_or_raise(current, Level::Patch)?
            } else {
                let (label, number) = split_prerelease(&current.pre);
                let next = number.unwrap_or(0).checked_add(1);
                let next = next.ok_or_else(|| BumpError::Overflow { current: current.clone() })?;
                with_prerelease(Version::new(current.major, current.minor, current.patch), &label, next)
            }
        }
    };
    if next <= *current {
        return Err(BumpError::Backwards { current: current.clone(), next });
    }
    Ok(next)
}

/// The plain release a `level` bump of `current` aims at: a prerelease of exactly that
/// release is finished, anything else is raised.
fn finish_or_raise(current: &Version, level: Level) -> Result<Version, BumpError> {
    let pre = !current.pre.is_empty();
    let overflow = || BumpError::Overflow { current: current.clone() };
    let (major, minor, patch) = (current.major, current.minor, current.patch);
    Ok(match level {
        Level::Major if pre && minor == 0 && patch == 0 => Version::new(major, 0, 0),
        Level::Major => Version::new(major.checked_add(1).ok_or_else(overflow)?, 0, 0),
        Level::Minor if pre && patch == 0 => Version::new(major, minor, 0),
        Level::Minor => Version::new(major, minor.checked_add(1).ok_or_else(overflow)?, 0),
        Level::Patch if pre => Version::new(major, minor, patch),
        Level::Patch => Version::new(major, minor, patch.checked_add(1).ok_or_else(overflow)?),
    })
}

/// `rc.3` → ("rc", Some(3)); `rc` → ("rc", None); `beta.2.1` → ("beta.2", Some(1)).
fn split_prerelease(pre: &Prerelease) -> (String, Option<u64>) {
    let text = pre.as_str();
    match text.rsplit_once('.') {
        Some((label, number)) => match number.parse::<u64>() {
            Ok(n) => (label.to_string(), Some(n)),
            Err(_) => (text.to_string(), None),
        },
        None => match text.parse::<u64>() {
            Ok(n) => (String::new(), Some(n)),
            Err(_) => (text.to_string(), None),
        },
    }
}

fn with_prerelease(mut base: Version, label: &str, number: u64) -> Version {
    let text = if label.is_empty() { number.to_string() } else { format!("{label}.{number}") };
    // The label was validated and the number is digits, so this parses.
    base.pre = Prerelease::new(&text).unwrap_or(Prerelease::EMPTY);
    base.build = BuildMetadata::EMPTY;
    base
}

fn validate_label(label: &str) -> Result<(), BumpError> {
    let bad = |why: &str| BumpError::BadLabel {
        label: label.to_string(),
        hint: format!("{why}; use a word such as alpha, beta or rc"),
    };
    if label.is_empty() {
        return Err(bad("the label is empty"));
    }
    if label.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("a label made only of digits would be read as the counter"));
    }
    if Prerelease::new(label).is_err() || label.contains('+') {
        return Err(bad("labels may use letters, digits, `-` and `.`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn level(level: Level) -> BumpRequest {
        BumpRequest::Level { level, pre: None }
    }

    fn pre(level: Level, label: &str) -> BumpRequest {
        BumpRequest::Level { level, pre: Some(label.into()) }
    }

    #[test]
    fn raises_one_part_and_resets_the_lower_ones() {
        assert_eq!(next_version(&v("0.1.9"), &level(Level::Patch)).unwrap(), v("0.1.10"));
        assert_eq!(next_version(&v("0.1.10"), &level(Level::Minor)).unwrap(), v("0.2.0"));
        assert_eq!(next_version(&v("0.2.7"), &level(Level::Major)).unwrap(), v("1.0.0"));
        assert_eq!(next_version(&v("1.2.3+build.9"), &level(Level::Patch)).unwrap(), v("1.2.4"));
    }

    #[test]
    fn prerelease_flow() {
        let rc1 = next_version(&v("1.2.3"), &pre(Level::Minor, "rc")).unwrap();
        assert_eq!(rc1, v("1.3.0-rc.1"));
        let rc2 = next_version(&rc1, &pre(Level::Minor, "rc")).unwrap();
        assert_eq!(rc2, v("1.3.0-rc.2"));
        assert_eq!(next_version(&rc2, &BumpRequest::Auto).unwrap(), v("1.3.0-rc.3"));
        assert_eq!(next_version(&rc2, &BumpRequest::Release).unwrap(), v("1.3.0"));
        assert_eq!(next_version(&rc2, &level(Level::Minor)).unwrap(), v("1.3.0"));
        assert_eq!(next_version(&rc2, &level(Level::Major)).unwrap(), v("2.0.0"));
        let beta = next_version(&v("1.3.0-alpha.4"), &pre(Level::Minor, "beta")).unwrap();
        assert_eq!(beta, v("1.3.0-beta.1"));
        assert_eq!(next_version(&v("2.0.0-rc"), &pre(Level::Major, "rc")).unwrap(), v("2.0.0-rc.1"));
    }

    #[test]
    fn refuses_to_go_backwards() {
        let err = next_version(&v("1.3.0-rc.1"), &pre(Level::Minor, "alpha")).unwrap_err();
        assert!(matches!(err, BumpError::Backwards { .. }), "{err:?}");
        assert!(err.hint().contains("sorts after `rc.1`"));
    }

    #[test]
    fn release_needs_a_prerelease() {
        let err = next_version(&v("1.2.3"), &BumpRequest::Release).unwrap_err();
        assert_eq!(err, BumpError::NotPrerelease { current: v("1.2.3") });
    }

    #[test]
    fn rejects_bad_labels() {
        for label in ["", "7", "r c", "rc+1", "ü"] {
            let err = next_version(&v("1.0.0"), &pre(Level::Patch, label)).unwrap_err();
            assert!(matches!(err, BumpError::BadLabel { .. }), "{label:?} gave {err:?}");
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let max = Version::new(1, 2, u64::MAX);
        assert!(matches!(next_version(&max, &BumpRequest::Auto), Err(BumpError::Overflow { .. })));
    }

    proptest! {
        /// Formatting a valid version and parsing it back gives the same version.
        #[test]
        fn parse_of_format_round_trips(
            major in 0u64..100_000, minor in 0u64..100_000, patch in 0u64..100_000,
            pre in proptest::option::of("(alpha|beta|rc|[a-z][a-z0-9-]{0,6})(\\.[1-9][0-9]{0,3})?"),
            build in proptest::option::of("[a-zA-Z0-9]{1,8}(\\.[a-zA-Z0-9-]{1,5})?"),
            bom in any::<bool>(), crlf in any::<bool>(),
        ) {
            let mut version = Version::new(major, minor, patch);
            if let Some(pre) = &pre { version.pre = Prerelease::new(pre).unwrap(); }
            if let Some(build) = &build { version.build = BuildMetadata::new(build).unwrap(); }
            let file = crate::version::file::VersionFile {
                path: "VERSION".into(),
                version: version.clone(),
                bom,
                line_ending: if crlf { crate::version::file::LineEnding::CrLf } else { crate::version::file::LineEnding::Lf },
            };
            let (parsed, parsed_bom, _) = crate::version::file::parse(file.render(&version).as_bytes()).unwrap();
            prop_assert_eq!(parsed, version);
            prop_assert_eq!(parsed_bom, bom);
        }

        /// Every successful bump moves strictly forward.
        #[test]
        fn bumps_move_forward(major in 0u64..50, minor in 0u64..50, patch in 0u64..50,
                              pre in proptest::option::of("(alpha|beta|rc)\\.[1-9]"),
                              which in 0usize..6) {
            let mut current = Version::new(major, minor, patch);
            if let Some(pre) = &pre { current.pre = Prerelease::new(pre).unwrap(); }
            let request = [level(Level::Major), level(Level::Minor), level(Level::Patch),
                           pre_req("rc"), BumpRequest::Release, BumpRequest::Auto][which].clone();
            if let Ok(next) = next_version(&current, &request) {
                prop_assert!(next > current);
            }
        }
    }

    fn pre_req(label: &str) -> BumpRequest {
        pre(Level::Patch, label)
    }
}
