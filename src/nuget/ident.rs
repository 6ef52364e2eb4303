//! A package's identity: NuGet's rules for a legal package id, and its version
//! normalisation, so that castoff rejects what a feed would reject before anything is
//! pushed (a published version can never be replaced).

use semver::Version;

use crate::error::Problem;

/// NuGet's limit on a package id's length.
pub const MAX_ID_LEN: usize = 100;

/// Check a package id against NuGet's rule (`^\w+([.-]\w+)*$`, at most 100 characters),
/// restricted to ASCII: runs of letters, digits and `_`, joined by single `.` or `-`.
/// Each failure names the rule it breaks.
pub fn check_id(id: &str) -> Result<(), Problem> {
    let hint = "use letters, digits, `_`, and single `.` or `-` between them, e.g. \"Contoso.Utility\"";
    if id.is_empty() {
        return Err(Problem::new("the package id is empty", hint));
    }
    if id.chars().count() > MAX_ID_LEN {
        return Err(Problem::new(
            format!(
                "the package id `{id}` is {} characters long; NuGet allows at most {MAX_ID_LEN}",
                id.chars().count()
            ),
            "shorten the id",
        ));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Err(Problem::new(format!("the package id `{id}` contains `{bad}`, which NuGet does not allow"), hint));
    }
    let separators = |c: char| c == '.' || c == '-';
    if id.starts_with(separators) || id.ends_with(separators) {
        return Err(Problem::new(format!("the package id `{id}` starts or ends with `.` or `-`"), hint));
    }
    if id.split(separators).any(str::is_empty) {
        return Err(Problem::new(
            format!("the package id `{id}` has two separators in a row (such as `..` or `.-`)"),
            hint,
        ));
    }
    Ok(())
}

/// A NuGet version in its normalised form: `1.02.3.0+meta` → `1.2.3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NugetVersion {
    /// Normalised: leading zeros dropped, a zero fourth part dropped, a missing third part
    /// filled with 0, build metadata dropped (NuGet ignores it for identity and file names).
    pub normalized: String,
}

impl NugetVersion {
    /// Parse NuGet's version syntax: 2 to 4 numeric parts, an optional `-prerelease`
    /// and an optional `+metadata`.
    pub fn parse(text: &str) -> Result<NugetVersion, Problem> {
        let hint = "write a SemVer version such as 1.2.3 or 1.2.3-rc.1, or $version$ to take VERSION";
        let bad = |why: &str| Problem::new(format!("`{text}` is not a NuGet version: {why}"), hint);
        let trimmed = text.trim();
        let (rest, _metadata) = match trimmed.split_once('+') {
            Some((rest, meta)) if !meta.is_empty() && meta.split('.').all(is_label) => (rest, Some(meta)),
            Some(_) => return Err(bad("the build metadata after `+` is malformed")),
            None => (trimmed, None),
        };
        let (numbers, pre) = match rest.split_once('-') {
            Some((numbers, pre)) if !pre.is_empty() && pre.split('.').all(is_label) => (numbers, Some(pre)),
            Some(_) => return Err(bad("the prerelease label after `-` is malformed")),
            None => (rest, None),
        };
        let parts: Vec<&str> = numbers.split('.').collect();
        if !(2..=4).contains(&parts.len()) {
            return Err(bad("it needs 2 to 4 numbers separated by `.`"));
        }
        let mut values = Vec::with_capacity(4);
        for part in &parts {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("`{part}` is not a number")));
            }
            values.push(part.parse::<u64>().map_err(|_| bad(&format!("`{part}` is too large")))?);
        }
        values.resize(4, 0);
        let mut normalized = format!("{}.{}.{}", values[0], values[1], values[2]);
        if values[3] != 0 {
            normalized.push_str(&format!(".{}", values[3]));
        }
        if let Some(pre) = pre {
            normalized.push('-');
            normalized.push_str(pre);
        }
        Ok(NugetVersion { normalized })
    }

    /// VERSION's version as NuGet names it (build metadata dropped).
    pub fn from_semver(version: &Version) -> NugetVersion {
        let mut normalized = format!("{}.{}.{}", version.major, version.minor, version.patch);
        if !version.pre.is_empty() {
            normalized.push('-');
            normalized.push_str(version.pre.as_str());
        }
        NugetVersion { normalized }
    }

    /// NuGet compares versions ignoring the case of prerelease labels.
    pub fn same_as(&self, other: &NugetVersion) -> bool {
        self.normalized.eq_ignore_ascii_case(&other.normalized)
    }
}

fn is_label(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// NuGet treats ids case-insensitively.
pub fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_ids() {
        for id in ["App", "Contoso.Utility", "a_b-c.d", "X1", "_x", &"a".repeat(100)] {
            assert!(check_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn illegal_ids_name_the_rule() {
        for (id, says) in [
            ("", "empty"),
            (".App", "starts or ends"),
            ("App.", "starts or ends"),
            ("-App", "starts or ends"),
            ("App..Core", "two separators"),
            ("App.-Core", "two separators"),
            ("App Core", "contains ` `"),
            ("App/Core", "contains `/`"),
            ("Äpp", "contains `Ä`"),
            (&"a".repeat(101), "at most 100"),
        ] {
            let problem = check_id(id).unwrap_err();
            assert!(problem.problem().contains(says), "{id:?}: {}", problem.problem());
            assert!(!problem.hint().is_empty());
        }
    }

    #[test]
    fn versions_normalise_as_nuget_does() {
        for (text, normal) in [
            ("1.2.3", "1.2.3"),
            ("01.002.3", "1.2.3"),
            ("1.2", "1.2.0"),
            ("1.2.3.0", "1.2.3"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("1.2.3-beta01+build.5", "1.2.3-beta01"),
            (" 1.2.3 ", "1.2.3"),
        ] {
            assert_eq!(NugetVersion::parse(text).unwrap().normalized, normal, "{text}");
        }
        for bad in ["1", "1.2.3.4.5", "1.x.3", "1.2.3-", "1.2.3+", "1.2.3-rc..1", "", "$version$"] {
            assert!(NugetVersion::parse(bad).is_err(), "{bad}");
        }
        let v = Version::parse("1.2.3-RC.1+sha.abc").unwrap();
        let from = NugetVersion::from_semver(&v);
        assert_eq!(from.normalized, "1.2.3-RC.1");
        assert!(from.same_as(&NugetVersion::parse("1.2.3.0-rc.1").unwrap()));
        assert!(!from.same_as(&NugetVersion::parse("1.2.4-rc.1").unwrap()));
    }
}
