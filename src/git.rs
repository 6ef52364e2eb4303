//! What git says about the release being cut: the commit, its time, and where the
//! source lives. Used for `{git_sha}` tags and the OCI `revision`, `created` and
//! `source` annotations.
//!
//! `created` is the commit time, not the wall clock: the same commit then assembles
//! byte-identical indexes, so re-running a release finds every tag up to date.
//! `SOURCE_DATE_EPOCH` overrides it, as reproducible-build tooling expects.

use std::path::Path;

use crate::exec::Command;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    /// Full commit id of HEAD.
    pub commit: Option<String>,
    /// The first 12 hex digits of `commit`.
    pub short: Option<String>,
    /// RFC 3339 time for the `created` annotation.
    pub created: Option<String>,
    /// The `origin` remote's URL with any credentials removed.
    pub source: Option<String>,
}

impl GitInfo {
    /// Read HEAD in `root`. Outside a git repository, or without git, everything is
    /// `None` except a `SOURCE_DATE_EPOCH` time.
    pub fn read(root: &Path) -> GitInfo {
        let git = |args: &[&str]| -> Option<String> {
            let output = Command::new("git").arg("-C").arg(root.to_string_lossy()).args(args.iter().copied()).run();
            let output = output.ok().filter(|o| o.success())?;
            let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
            (!text.is_empty()).then_some(text)
        };
        // One process for the commit and its time; the remote only inside a repository.
        let head = git(&["log", "-1", "--format=%H%n%cI"]);
        let mut lines = head.as_deref().unwrap_or_default().lines();
        let commit = lines.next().filter(|c| !c.is_empty()).map(str::to_string);
        let commit_time = lines.next().map(str::to_string);
        GitInfo {
            short: commit.as_ref().map(|c| c.chars().take(12).collect()),
            created: source_date_epoch().or(commit_time),
            source: commit
                .as_ref()
                .and_then(|_| git(&["config", "--get", "remote.origin.url"]))
                .map(|u| without_credentials(&u)),
            commit,
        }
    }
}

fn source_date_epoch() -> Option<String> {
    let seconds: i64 = std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()?;
    Some(rfc3339_utc(seconds))
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ` (civil-from-days, proleptic
/// Gregorian), to avoid a date crate for one format.
pub fn rfc3339_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `https://user:token@host/x.git` → `https://host/x.git`: a remote URL may carry a
/// token, and annotations are public.
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            if path.is_empty() && !rest.contains('/') {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn strips_credentials_from_remotes() {
        assert_eq!(without_credentials("https://user:tok@github.com/a/b.git"), "https://github.com/a/b.git");
        assert_eq!(without_credentials("https://github.com/a/b.git"), "https://github.com/a/b.git");
        assert_eq!(without_credentials("git@github.com:a/b.git"), "git@github.com:a/b.git");
    }
}
