//! `[[feed]]`: where NuGet packages are published, as many as needed.
//!
//! ```toml
//! [[feed]]
//! name = "nuget"                                  # unique; `castoff publish --feed nuget`
//! url = "https://api.nuget.org/v3/index.json"     # v3: the service index
//! api_key_env = "NUGET_API_KEY"                   # the variable's NAME; never the key
//! symbols = "auto"                                # auto | snupkg | legacy | renamed | none
//!
//! [[feed]]
//! name = "legacy"
//! url = "https://teamcity.example.com/httpAuth/app/nuget/feed/main/api/v2"
//! symbols = "renamed"                             # only the symbols package, renamed
//!
//! [[feed]]
//! name = "local"
//! url = "dist/feed"                               # a folder, in `nuget add`'s layout
//! ```
//!
//! Every value is checked here, once, so a bad feed is a configuration error that names
//! `castoff.toml:LINE` and the key (`feed[1].url` for the second `[[feed]]`, counting
//! from 0 as `package[0]` does) before anything is packed or pushed. Without any `[[feed]]`, publish uses
//! the embedded default, [`FeedConfig::default_folder`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use ureq::http::Uri;

use super::{check_inside_project, normalise, Spans};
use crate::error::{Error, Location, Result};
use crate::registry::plain_http_allowed;

/// The embedded default feed's folder, relative to the project root.
pub const DEFAULT_FEED_DIR: &str = "dist/feed";

/// The validated `[[feed]]` table.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub name: String,
    /// `url` as written, for messages.
    pub url: String,
    pub kind: FeedKind,
    /// The name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// Push the nupkg itself (false for `symbols = "renamed"` unless said otherwise).
    pub packages: bool,
    pub symbols: FeedSymbols,
    /// Push the symbols to this other feed instead of this one.
    pub symbols_feed: Option<String>,
    /// The limit on each read and write of a request; `None`: 300 s, the NuGet client's
    /// push timeout (connecting is bounded by `[network] timeout_seconds`).
    pub timeout: Option<Duration>,
    /// Plain HTTP to a host that is not loopback is allowed (and with it the API key).
    pub insecure: bool,
    /// A package the feed already has (409) is "already published", not an error.
    pub skip_duplicate: bool,
    /// Where `symbols_feed` was written, for the check that it names a feed.
    symbols_feed_at: Option<Location>,
}

/// How castoff talks to a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedKind {
    /// NuGet v3: `index` is the service index URL.
    V3 { index: String },
    /// NuGet v2: `url` as given; pushes go to `<url>/api/v2/package/`.
    V2 { url: String },
    /// A folder in `nuget add`'s hierarchical layout; relative paths are relative to
    /// the project root.
    Folder { path: PathBuf },
}

impl FeedKind {
    pub fn protocol(&self) -> &'static str {
        match self {
            FeedKind::V3 { .. } => "v3",
            FeedKind::V2 { .. } => "v2",
            FeedKind::Folder { .. } => "folder",
        }
    }
}

/// What a feed does with symbols packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedSymbols {
    /// Push the package's symbols package where the feed can take it; skip it with a
    /// warning where it cannot (a v3 feed without a symbol endpoint, a v2 feed).
    #[default]
    Auto,
    /// Require a snupkg and a place for it.
    Snupkg,
    /// Require a legacy `.symbols.nupkg` and push it (to this feed's package endpoint,
    /// as `nuget push` does, unless `symbols_feed` says elsewhere).
    Legacy,
    /// The legacy-feed workaround: push only the legacy symbols package, under the
    /// nupkg's file name (no `.symbols`), for feeds that misread that name.
    Renamed,
    None,
}

impl FeedSymbols {
    pub const NAMES: [&'static str; 5] = ["auto", "snupkg", "legacy", "renamed", "none"];

    pub fn parse(text: &str) -> Option<FeedSymbols> {
        Some(match text {
            "auto" => FeedSymbols::Auto,
            "snupkg" => FeedSymbols::Snupkg,
            "legacy" => FeedSymbols::Legacy,
            "renamed" => FeedSymbols::Renamed,
            "none" => FeedSymbols::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    name: Spanned<String>,
    url: Spanned<String>,
    protocol: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    packages: Option<Spanned<bool>>,
    symbols: Option<Spanned<String>>,
    symbols_feed: Option<Spanned<String>>,
    timeout: Option<Spanned<u64>>,
    insecure: Option<bool>,
    skip_duplicate: Option<bool>,
}

type Check<T> = std::result::Result<T, (String, String)>;

/// Where a URL points, before the protocol is settled.
enum Place {
    Http(Uri),
    Path(PathBuf),
}

impl FeedConfig {
    /// The embedded default: a folder feed at `dist/feed`, what `castoff publish` uses
    /// when castoff.toml has no `[[feed]]`.
    pub fn default_folder() -> FeedConfig {
        FeedConfig {
            name: "default".into(),
            url: DEFAULT_FEED_DIR.into(),
            kind: FeedKind::Folder { path: PathBuf::from(DEFAULT_FEED_DIR) },
            api_key_env: None,
            packages: true,
            symbols: FeedSymbols::Auto,
            symbols_feed: None,
            timeout: None,
            insecure: false,
            skip_duplicate: true,
            symbols_feed_at: None,
        }
    }

    /// `others` are the feeds parsed before this one (names must be unique).
    pub(super) fn from_raw(raw: RawFeed, index: usize, others: &[FeedConfig], at: &Spans<'_>) -> Result<FeedConfig> {
        let key = |field: &str| format!("feed[{index}].{field}");
        let name = at.check(&key("name"), raw.name, |name| {
            check_name(&name)?;
            match others.iter().position(|other| other.name == name) {
                Some(first) => Err((
                    format!("feed name `{name}` is used twice"),
                    format!("feed[{first}] already has that name; give each [[feed]] its own name"),
                )),
                None => Ok(name),
            }
        })?;
        let insecure = raw.insecure.unwrap_or(false);
        let url_text = raw.url.get_ref().trim().to_string();
        let url_span = raw.url.span();
        let place = at.check(&key("url"), raw.url, |url| place(url.trim()))?;
        let protocol = raw
            .protocol
            .map(|value| {
                at.check(&key("protocol"), value, |text| match text.as_str() {
                    "v3" | "v2" | "folder" => Ok(text),
                    _ => Err((
                        format!("unknown protocol `{text}`"),
                        "use \"v3\" (a service index URL), \"v2\" or \"folder\"".into(),
                    )),
                })
            })
            .transpose()?;
        let url_value = Spanned::new(url_span.clone(), ());
        let kind = at.check(&key("url"), url_value, |()| kind(place, &url_text, protocol.as_deref(), insecure))?;
        let api_key_env = raw
            .api_key_env
            .map(|value| {
                at.check(&key("api_key_env"), value, |env| {
                    if matches!(kind, FeedKind::Folder { .. }) {
                        return Err((
                            "a folder feed takes no API key".into(),
                            format!("remove `api_key_env` from feed `{name}`"),
                        ));
                    }
                    check_env_name(&env).map(|()| env)
                })
            })
            .transpose()?;
        let symbols_span = raw.symbols.as_ref().map(|value| value.span());
        let symbols = match raw.symbols {
            Some(value) => at.check(&key("symbols"), value, |text| {
                FeedSymbols::parse(&text).ok_or_else(|| {
                    (format!("unknown symbols mode `{text}`"), format!("use one of {}", FeedSymbols::NAMES.join(", ")))
                })
            })?,
            None => FeedSymbols::Auto,
        };
        let packages = match raw.packages {
            Some(value) => at.check(&key("packages"), value, |packages| {
                if packages && symbols == FeedSymbols::Renamed {
                    return Err((
                        "`symbols = \"renamed\"` pushes only the renamed symbols package, in place of the nupkg".into(),
                        "remove `packages = true`, or push the nupkg to another [[feed]]".into(),
                    ));
                }
                Ok(packages)
            })?,
            None => symbols != FeedSymbols::Renamed,
        };
        let symbols_feed_at = raw.symbols_feed.as_ref().map(|value| at.at(&key("symbols_feed"), value.span()));
        let symbols_feed = raw
            .symbols_feed
            .map(|value| {
                at.check(&key("symbols_feed"), value, |target| {
                    check_symbols_feed(&name, &target, symbols)?;
                    Ok(target)
                })
            })
            .transpose()?;
        if symbols == FeedSymbols::Snupkg && symbols_feed.is_none() && matches!(kind, FeedKind::V2 { .. }) {
            let location = at.at(&key("symbols"), symbols_span.unwrap_or(url_span));
            return Err(Error::invalid(
                location,
                format!("feed `{name}` is a v2 feed, which has no endpoint for snupkg symbols packages"),
                "push them to a v3 feed with `symbols_feed = \"NAME\"`, or use symbols = \"auto\" to skip them",
            ));
        }
        let timeout = raw
            .timeout
            .map(|value| {
                at.check(&key("timeout"), value, |seconds| match (1..=86_400).contains(&seconds) {
                    true => Ok(Duration::from_secs(seconds)),
                    false => Err((
                        format!("`timeout` must be between 1 and 86400 seconds, not {seconds}"),
                        "e.g. timeout = 300".into(),
                    )),
                })
            })
            .transpose()?;
        Ok(FeedConfig {
            name,
            url: url_text,
            kind,
            api_key_env,
            packages,
            symbols,
            symbols_feed,
            timeout,
            insecure,
            skip_duplicate: raw.skip_duplicate.unwrap_or(true),
            symbols_feed_at,
        })
    }
}

/// Every `symbols_feed` must name a configured feed, which may come later in the file,
/// so this runs once all feeds are parsed.
pub(super) fn check_symbols_feeds(feeds: &[FeedConfig]) -> Result<()> {
    for feed in feeds {
        let Some(target) = &feed.symbols_feed else { continue };
        if feeds.iter().any(|other| &other.name == target) {
            continue;
        }
        let names: Vec<&str> = feeds.iter().map(|f| f.name.as_str()).filter(|n| *n != feed.name).collect();
        let location = feed.symbols_feed_at.clone().unwrap_or_else(|| Location::file(super::CONFIG_FILE));
        let hint = match names.is_empty() {
            true => format!("add a [[feed]] named `{target}` for the symbols"),
            false => format!("use one of the configured feeds: {}", names.join(", ")),
        };
        return Err(Error::invalid(
            location,
            format!("feed `{}` sends its symbols to feed `{target}`, which is not configured", feed.name),
            hint,
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Check<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    match ok {
        true => Ok(()),
        false => Err((
            format!("`{name}` is not a feed name"),
            "use letters, digits, `.`, `_` and `-` (at most 64), starting with a letter or digit, e.g. \"nuget\""
                .into(),
        )),
    }
}

/// An environment variable's name. The value is never echoed: a user who pasted the
/// key itself here must not see it printed back (in CI logs, say).
fn check_env_name(env: &str) -> Check<()> {
    // A long name in lower case with digits is far more likely a pasted key (nuget.org
    // keys are `oy2` and 43 such characters) than a variable: refuse it, and never
    // repeat it, since it may be the secret itself.
    let lower = env.chars().filter(char::is_ascii_lowercase).count();
    let looks_like_key = env.len() >= 24 && lower * 2 > env.len() && env.chars().any(|c| c.is_ascii_digit());
    if looks_like_key {
        return Err((
            "`api_key_env` looks like an API key, not the name of an environment variable".into(),
            "put the key in an environment variable and write its name here, e.g. api_key_env = \"NUGET_API_KEY\"; \
             if that was a real key, revoke it: castoff.toml is committed"
                .into(),
        ));
    }
    let ok = env.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match ok {
        true => Ok(()),
        false => Err((
            "`api_key_env` must be the name of an environment variable (letters, digits and `_`)".into(),
            "write the variable's name, e.g. api_key_env = \"NUGET_API_KEY\", and put the key in that \
             variable; the key itself never goes in castoff.toml"
                .into(),
        )),
    }
}

/// A feed URL: http(s) with a host, `file://` + an absolute path, or a path.
fn place(url: &str) -> Check<Place> {
    if url.is_empty() {
        return Err(("the feed URL is empty".into(), "give a v3 service index URL, a v2 URL or a folder".into()));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(Place::Path(PathBuf::from(url)));
    };
    // Credentials in the URL would be printed wherever the URL is; the URL is not
    // repeated here for the same reason.
    if rest.split(['/', '?', '#']).next().is_some_and(|authority| authority.contains('@')) {
        return Err((
            "the feed URL carries credentials (`user:password@`)".into(),
            "remove them from the URL and give the key through api_key_env; castoff.toml is committed".into(),
        ));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let uri: Uri = url.parse().map_err(|e| {
                (
                    format!("`{url}` is not a valid URL: {e}"),
                    "e.g. url = \"https://api.nuget.org/v3/index.json\"".into(),
                )
            })?;
            if uri.host().is_none_or(str::is_empty) {
                return Err((
                    format!("`{url}` has no host"),
                    "e.g. url = \"https://nuget.example.com/v3/index.json\"".into(),
                ));
            }
            Ok(Place::Http(uri))
        }
        "file" if rest.starts_with('/') => Ok(Place::Path(PathBuf::from(rest))),
        "file" => {
            Err((format!("`{url}` is not an absolute file URL"), "write the folder's path, e.g. \"dist/feed\"".into()))
        }
        other => Err((
            format!("`{other}://` feeds are not supported"),
            "use an http(s) URL (a v3 service index, or a v2 feed) or a folder path".into(),
        )),
    }
}

/// The protocol: explicit, or told by the URL (…/index.json is v3, …/api/v2… is v2, a
/// path is a folder). Anything else is an error: guessing wrong would push to a URL the
/// feed does not serve.
fn kind(place: Place, url: &str, protocol: Option<&str>, insecure: bool) -> Check<FeedKind> {
    match place {
        Place::Path(path) => {
            if let Some(protocol @ ("v2" | "v3")) = protocol {
                return Err((
                    format!("a {protocol} feed needs an http(s) URL, not the path `{url}`"),
                    "give the feed's URL, or protocol = \"folder\" for a folder feed".into(),
                ));
            }
            if path.is_relative() {
                let text = path.to_string_lossy();
                check_inside_project(&text).map_err(|problem| {
                    (problem, "give a folder inside the project (e.g. \"dist/feed\") or an absolute path".to_string())
                })?;
                return Ok(FeedKind::Folder { path: PathBuf::from(normalise(&text)) });
            }
            Ok(FeedKind::Folder { path })
        }
        Place::Http(uri) => {
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            if uri.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("http"))
                && !insecure
                && !plain_http_allowed(authority, &[])
            {
                return Err((
                    format!("plain HTTP to {authority} would send the API key and packages unencrypted"),
                    "use https://, or add `insecure = true` to this [[feed]] for a feed you trust on a private \
                     network"
                        .into(),
                ));
            }
            let path = uri.path().to_ascii_lowercase();
            match protocol {
                Some("folder") => Err((
                    format!("a folder feed needs a path, not the URL `{url}`"),
                    "give the folder's path, or protocol = \"v3\" or \"v2\" for a server".into(),
                )),
                Some("v3") => Ok(FeedKind::V3 { index: url.to_string() }),
                Some(_) => Ok(FeedKind::V2 { url: url.to_string() }),
                None if path.ends_with("index.json") => Ok(FeedKind::V3 { index: url.to_string() }),
                None if path.contains("/api/v2") => Ok(FeedKind::V2 { url: url.to_string() }),
                None => Err((
                    format!("cannot tell which NuGet protocol `{url}` speaks"),
                    "a v3 feed's URL is its service index (ending in index.json); for a v2 feed add \
                     protocol = \"v2\" (castoff pushes to <url>/api/v2/package/)"
                        .into(),
                )),
            }
        }
    }
}

/// The symbols go elsewhere: only sensible when there are symbols to send, and never
/// with "renamed", which is one feed's own workaround.
fn check_symbols_feed(name: &str, target: &str, symbols: FeedSymbols) -> Check<()> {
    if target == name {
        return Err((
            format!("feed `{name}` names itself as its symbols feed"),
            "remove `symbols_feed` to push the symbols to this feed, or name another [[feed]]".into(),
        ));
    }
    match symbols {
        FeedSymbols::None => Err((
            "`symbols = \"none\"` sends no symbols, so `symbols_feed` has nothing to send".into(),
            "remove `symbols_feed`, or set symbols = \"auto\"".into(),
        )),
        FeedSymbols::Renamed => Err((
            "`symbols = \"renamed\"` pushes the renamed symbols package to this feed only".into(),
            "remove `symbols_feed`; configure the symbols feed as its own [[feed]] with symbols = \"renamed\"".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::error::Result;

    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("castoff.toml"))
    }

    fn feed(body: &str) -> Result<FeedConfig> {
        parse(&format!("[[feed]]\nname = \"f\"\n{body}\n")).map(|mut c| c.feeds.remove(0))
    }

    /// The error's (key, line) and text.
    fn fails(text: &str) -> (String, usize, String) {
        let err = parse(text).unwrap_err();
        let location = err.location().unwrap_or_else(|| panic!("no location: {err}"));
        let shown = format!("{err} / hint: {}", err.hint().unwrap_or_default());
        (location.key.clone().unwrap_or_default(), location.line.unwrap_or(0), shown)
    }

    /// A pasted key or a URL with a password is refused without being repeated.
    #[test]
    fn secrets_in_the_file_are_refused_and_not_echoed() {
        let key = "oy2abcdefghijklmnopqrstuvwxyz0123456789abcdefg";
        let err = parse(&format!(
            "[[feed]]\nname = \"f\"\nurl = \"https://nuget.example.com/v3/index.json\"\napi_key_env = \"{key}\"\n"
        ))
        .unwrap_err();
        let shown = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(shown.contains("looks like an API key") && !shown.contains(key), "{shown}");
        let err = parse("[[feed]]\nname = \"f\"\nurl = \"https://me:hunter2@nuget.example.com/v3/index.json\"\n")
            .unwrap_err();
        let shown = format!("{err} {}", err.hint().unwrap_or_default());
        assert!(shown.contains("credentials") && !shown.contains("hunter2"), "{shown}");
        assert!(feed("url = \"https://nuget.example.com/v3/index.json\"\napi_key_env = \"NUGET_API_KEY_2\"").is_ok());
    }

    #[test]
    fn protocol_is_told_by_the_url() {
        let v3 = feed("url = \"https://api.nuget.org/v3/index.json\"").unwrap();
        assert_eq!(v3.kind, FeedKind::V3 { index: "https://api.nuget.org/v3/index.json".into() });
        for url in ["https://www.nuget.org/api/v2", "https://h/feeds/x/api/v2/package/", "http://127.0.0.1:5000/api/v2"]
        {
            assert_eq!(feed(&format!("url = \"{url}\"")).unwrap().kind, FeedKind::V2 { url: url.into() }, "{url}");
        }
        let folder = feed("url = \"./dist//feed\"").unwrap();
        assert_eq!(folder.kind, FeedKind::Folder { path: PathBuf::from("dist/feed") });
        let absolute = feed("url = \"/srv/nuget\"").unwrap();
        assert_eq!(absolute.kind, FeedKind::Folder { path: PathBuf::from("/srv/nuget") });
        let file = feed("url = \"file:///srv/nuget\"").unwrap();
        assert_eq!(file.kind, FeedKind::Folder { path: PathBuf::from("/srv/nuget") });
        let explicit = feed("url = \"http://127.0.0.1:5101/\"\nprotocol = \"v2\"").unwrap();
        assert_eq!(explicit.kind, FeedKind::V2 { url: "http://127.0.0.1:5101/".into() });
        let explicit = feed("url = \"https://h/nuget/feed\"\nprotocol = \"v3\"").unwrap();
        assert_eq!(explicit.kind.protocol(), "v3");
    }

    #[test]
    fn defaults() {
        let f = feed("url = \"https://h/v3/index.json\"").unwrap();
        assert!(f.packages && f.skip_duplicate && !f.insecure);
        assert_eq!(f.symbols, FeedSymbols::Auto);
        assert_eq!((f.api_key_env, f.symbols_feed, f.timeout), (None, None, None));
        let renamed = feed("url = \"https://h/api/v2\"\nsymbols = \"renamed\"").unwrap();
        assert!(!renamed.packages, "renamed pushes only the symbols package");
        let default = FeedConfig::default_folder();
        assert_eq!(default.kind, FeedKind::Folder { path: PathBuf::from("dist/feed") });
        assert!(parse("").unwrap().feeds.is_empty());
    }

    #[test]
    fn bad_urls_name_the_key_and_line() {
        let cases = [
            ("url = \"https://nuget.example.com/feed\"", "cannot tell which NuGet protocol"),
            ("url = \"ftp://h/feed\"", "not supported"),
            ("url = \"\"", "empty"),
            ("url = \"../elsewhere\"", "climbs above"),
            ("url = \"http://nuget.example.com/v3/index.json\"", "plain HTTP"),
            ("url = \"dist/feed\"\nprotocol = \"v3\"", "needs an http(s) URL"),
            ("url = \"https://h/v3/index.json\"\nprotocol = \"folder\"", "needs a path"),
            ("url = \"https://h/x\"\nprotocol = \"v4\"", "unknown protocol"),
        ];
        for (body, expected) in cases {
            let text = format!("[version]\nfile = \"VERSION\"\n\n[[feed]]\nname = \"a\"\nurl = \"https://h/v3/index.json\"\n\n[[feed]]\nname = \"b\"\n{body}\n");
            let (key, line, shown) = fails(&text);
            assert!(shown.contains(expected), "{body}: {shown}");
            assert!(key.starts_with("feed[1]."), "{body}: {key}");
            assert!(line >= 10, "{body}: line {line}");
            assert!(shown.contains("castoff.toml:"), "{shown}");
        }
        let (key, line, _) = fails("[[feed]]\nname = \"a\"\nurl = \"https://nuget.example.com/feed\"\n");
        assert_eq!((key.as_str(), line), ("feed[0].url", 3));
        let insecure = feed("url = \"http://nuget.lan/v3/index.json\"\ninsecure = true").unwrap();
        assert!(insecure.insecure);
        assert!(feed("url = \"http://localhost:5000/v3/index.json\"").is_ok(), "loopback may be plain HTTP");
    }

    #[test]
    fn names_are_unique_and_symbols_feeds_exist() {
        let (key, line, shown) = fails("[[feed]]\nname = \"a\"\nurl = \"x\"\n[[feed]]\nname = \"a\"\nurl = \"y\"\n");
        assert_eq!((key.as_str(), line), ("feed[1].name", 5));
        assert!(shown.contains("used twice") && shown.contains("feed[0]"), "{shown}");
        let (key, line, shown) = fails("[[feed]]\nname = \"a\"\nurl = \"x\"\nsymbols_feed = \"syms\"\n");
        assert_eq!((key.as_str(), line), ("feed[0].symbols_feed", 4));
        assert!(shown.contains("feed `a`") && shown.contains("`syms`"), "names both: {shown}");
        let later = parse(
            "[[feed]]\nname = \"a\"\nurl = \"https://h/api/v2\"\nsymbols_feed = \"s\"\n\
             [[feed]]\nname = \"s\"\nurl = \"https://s/api/v2\"\npackages = false\n",
        )
        .unwrap();
        assert_eq!(later.feeds[0].symbols_feed.as_deref(), Some("s"));
        assert!(fails("[[feed]]\nname = \"a\"\nurl = \"x\"\nsymbols_feed = \"a\"\n").2.contains("itself"));
        assert!(fails("[[feed]]\nname = \"a b\"\nurl = \"x\"\n").2.contains("not a feed name"));
    }

    #[test]
    fn api_key_env_is_a_name_and_never_echoed() {
        let f = feed("url = \"https://h/v3/index.json\"\napi_key_env = \"NUGET_KEY\"").unwrap();
        assert_eq!(f.api_key_env.as_deref(), Some("NUGET_KEY"));
        let pasted = "oy2kq7vblahblahSECRET-0123456789";
        let (key, _, shown) =
            fails(&format!("[[feed]]\nname = \"a\"\nurl = \"https://h/v3/index.json\"\napi_key_env = \"{pasted}\"\n"));
        assert_eq!(key, "feed[0].api_key_env");
        assert!(!shown.contains(pasted), "the value may be the key itself: {shown}");
        assert!(shown.contains("name of an environment variable"), "{shown}");
        assert!(fails("[[feed]]\nname = \"a\"\nurl = \"dist/feed\"\napi_key_env = \"K\"\n").2.contains("no API key"));
    }

    #[test]
    fn symbols_options_are_checked() {
        assert!(fails("[[feed]]\nname = \"a\"\nurl = \"x\"\nsymbols = \"pdb\"\n").2.contains("auto, snupkg"));
        let renamed = "[[feed]]\nname = \"a\"\nurl = \"https://h/api/v2\"\nsymbols = \"renamed\"\npackages = true\n";
        assert_eq!(fails(renamed).0, "feed[0].packages");
        let (key, _, shown) = fails("[[feed]]\nname = \"a\"\nurl = \"https://h/api/v2\"\nsymbols = \"snupkg\"\n");
        assert_eq!(key, "feed[0].symbols");
        assert!(shown.contains("v2"), "{shown}");
        let none = "[[feed]]\nname = \"a\"\nurl = \"x\"\nsymbols = \"none\"\nsymbols_feed = \"b\"\n[[feed]]\nname = \"b\"\nurl = \"y\"\n";
        assert_eq!(fails(none).0, "feed[0].symbols_feed");
        assert_eq!(fails("[[feed]]\nname = \"a\"\nurl = \"x\"\ntimeout = 0\n").0, "feed[0].timeout");
        let (key, _, _) = fails("[[feed]]\nname = \"a\"\nurl = \"x\"\napi_kee_env = \"K\"\n");
        assert_eq!(key, "feed.api_kee_env");
    }
}
