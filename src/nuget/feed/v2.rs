//! NuGet v2: a multipart PUT to `…/api/v2/package/`, and for a read-back either the
//! download at `…/api/v2/package/{id}/{version}` (nuget.org, NuGet.Server, most
//! servers) or, where that is not served (pynuget), the OData entry
//! `Packages(Id='…',Version='…')`, whose `PackageHash` or `content src` gives the bytes'
//! digest.
//!
//! The URL may be spelled as users copy it from a feed's page; all of these push to
//! `http://host/api/v2/package/`:
//! `http://host`, `http://host/`, `http://host/api/v2`, `http://host/api/v2/`,
//! `http://host/api/v2/package`, `http://host/api/v2/package/`. A path before `api/v2`
//! is kept (`http://host/feeds/main/api/v2/package/`), and a URL without `api/v2` gets
//! it appended, as the NuGet client does for a feed root.

use quick_xml::events::Event;
use quick_xml::Reader;
use ureq::http::Uri;

use super::http::{is_gone, Download, FeedHttp};
use super::FeedError;
use crate::registry::transport::display_url;

/// A v2 feed's URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Urls {
    /// `…/api/v2/package/`.
    pub push: Uri,
    /// Where the OData collection lives: the URL as given, without `package/`.
    pub odata: String,
}

/// What a read-back found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// SHA-512 of the feed's copy, base64.
    Digest(String),
    /// The feed says it has no such package (404/410, or an OData feed without the
    /// entry), and how that showed.
    Absent(String),
    /// The feed offers no way to read it back, and why.
    Nothing(String),
}

impl Urls {
    pub fn parse(url: &str) -> Result<Urls, String> {
        let uri: Uri = url.trim().parse().map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
        let scheme = uri.scheme_str().ok_or_else(|| format!("`{url}` has no scheme"))?;
        let authority = uri.authority().map(|a| a.as_str()).ok_or_else(|| format!("`{url}` has no host"))?;
        let mut path = uri.path().trim_end_matches('/').to_string();
        let lowered = path.to_ascii_lowercase();
        if lowered.ends_with("/api/v2/package") {
            path.truncate(path.len() - "/package".len());
        }
        let base = match path.to_ascii_lowercase().ends_with("/api/v2") {
            true => format!("{scheme}://{authority}{path}/"),
            false => format!("{scheme}://{authority}{path}/api/v2/"),
        };
        let odata = format!("{scheme}://{authority}{path}/");
        let push = format!("{base}package/");
        let push = push.parse().map_err(|e| format!("cannot form the push URL `{push}`: {e}"))?;
        Ok(Urls { push, odata })
    }

    /// `…/api/v2/package/{id}/{version}`: the download most v2 servers serve.
    pub fn download(&self, id: &str, version: &str) -> Result<Uri, String> {
        let url = format!("{}{id}/{version}", self.push);
        url.parse().map_err(|e| format!("cannot form the download URL `{url}`: {e}"))
    }

    /// The OData entry of one package version.
    pub fn entry(&self, id: &str, version: &str) -> Result<Uri, String> {
        let url = format!("{}Packages(Id='{id}',Version='{version}')", self.odata);
        url.parse().map_err(|e| format!("cannot form the OData URL `{url}`: {e}"))
    }
}

/// The digest of the feed's copy of `id` `version`.
pub(crate) fn read_back(http: &FeedHttp, urls: &Urls, id: &str, version: &str) -> Result<Found, FeedError> {
    let protocol = |url: &str, problem: String| FeedError::Protocol {
        feed: http.feed_name().into(),
        url: url.into(),
        problem,
        hint: "check the [[feed]] url".into(),
    };
    let download = urls.download(id, version).map_err(|p| protocol(&display_url(&urls.push), p))?;
    if let Download::Digest(digest) = http.download_digest(&download)? {
        return Ok(Found::Digest(digest));
    }
    let entry_url = urls.entry(id, version).map_err(|p| protocol(&urls.odata, p))?;
    let document = http.get(&entry_url, "application/atom+xml, application/xml")?;
    if !(200..300).contains(&document.status) {
        let why =
            format!("neither {} nor the OData entry could be read (HTTP {})", display_url(&download), document.status);
        return Ok(match is_gone(document.status) {
            true => Found::Absent(why),
            false => Found::Nothing(why),
        });
    }
    let entry = match parse_entry(&document.body) {
        Ok(Some(entry)) => entry,
        // pynuget answers an unknown version with an empty feed.
        Ok(None) => return Ok(Found::Absent(format!("its OData query {} found no entry", display_url(&entry_url)))),
        Err(problem) => return Ok(Found::Nothing(format!("its OData entry is unreadable: {problem}"))),
    };
    if let Some(hash) = entry.sha512 {
        return Ok(Found::Digest(hash));
    }
    let Some(src) = entry.content else {
        return Ok(Found::Nothing("its OData entry has neither a SHA512 PackageHash nor a content link".into()));
    };
    let content = crate::registry::transport::resolve_location(&document.url, &src)
        .map_err(|problem| protocol(&display_url(&document.url), problem))?;
    match http.download_digest(&content)? {
        Download::Digest(digest) => Ok(Found::Digest(digest)),
        Download::Missing(status) => {
            let why = format!("its download {} answered {status}", display_url(&content));
            Ok(match is_gone(status) {
                true => Found::Absent(why),
                false => Found::Nothing(why),
            })
        }
    }
}

/// What castoff needs from an OData (Atom) package entry.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `<content src>`: where the package downloads from.
    pub content: Option<String>,
    /// `<d:PackageHash>` when `<d:PackageHashAlgorithm>` is SHA512 (base64).
    pub sha512: Option<String>,
}

/// Read the first `<entry>` (or the document itself when it is one); `None` for a feed
/// with no entry at all.
pub(crate) fn parse_entry(xml: &[u8]) -> Result<Option<Entry>, String> {
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    let (mut hash, mut algorithm, mut content) = (None, None, None);
    let mut current: Option<String> = None;
    let mut text = String::new();
    let mut entries = 0;
    loop {
        let event = reader.read_event_into(&mut buffer).map_err(|e| format!("invalid XML: {e}"))?;
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let name = start.local_name().as_ref().to_string();
                if name == "entry" {
                    entries += 1;
                    if entries > 1 {
                        break;
                    }
                }
                if name == "content" && content.is_none() {
                    for attribute in start.attributes().flatten() {
                        if attribute.key.local_name().as_ref() == "src" {
                            let value = attribute
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map_err(|e| format!("invalid XML: {e}"))?;
                            content = Some(value.into_owned());
                        }
                    }
                }
                current = Some(name);
                text.clear();
            }
            Event::Text(chunk) => text.push_str(&chunk.xml10_content()),
            Event::End(_) => {
                match current.as_deref() {
                    Some("PackageHash") => hash = Some(text.trim().to_string()),
                    Some("PackageHashAlgorithm") => algorithm = Some(text.trim().to_string()),
                    _ => {}
                }
                current = None;
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    let sha512 = match (hash, algorithm) {
        (Some(hash), Some(algorithm)) if algorithm.eq_ignore_ascii_case("SHA512") && !hash.is_empty() => Some(hash),
        _ => None,
    };
    Ok((entries > 0).then_some(Entry { content, sha512 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_spellings() {
        for url in [
            "http://host",
            "http://host/",
            "http://host/api/v2",
            "http://host/api/v2/",
            "http://host/api/v2/package",
            "http://host/api/v2/package/",
            "http://host/API/V2/Package/",
        ] {
            let urls = Urls::parse(url).unwrap();
            assert_eq!(urls.push.to_string().to_lowercase(), "http://host/api/v2/package/", "{url}");
        }
        let urls = Urls::parse("https://h:8443/feeds/main/api/v2/package/").unwrap();
        assert_eq!(urls.push.to_string(), "https://h:8443/feeds/main/api/v2/package/");
        assert_eq!(urls.odata, "https://h:8443/feeds/main/api/v2/");
        let root = Urls::parse("http://127.0.0.1:5101/").unwrap();
        assert_eq!(root.odata, "http://127.0.0.1:5101/", "pynuget serves OData at its root");
        let nuget_server = Urls::parse("http://h/nuget").unwrap();
        assert_eq!(nuget_server.push.to_string(), "http://h/nuget/api/v2/package/");
    }

    #[test]
    fn download_and_entry_urls() {
        let urls = Urls::parse("https://www.nuget.org/api/v2").unwrap();
        assert_eq!(
            urls.download("Newtonsoft.Json", "13.0.1").unwrap().to_string(),
            "https://www.nuget.org/api/v2/package/Newtonsoft.Json/13.0.1"
        );
        assert_eq!(
            urls.entry("E2e", "1.0.0").unwrap().to_string(),
            "https://www.nuget.org/api/v2/Packages(Id='E2e',Version='1.0.0')"
        );
    }

    #[test]
    fn odata_entries() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xml:base="http://127.0.0.1:5101/" xmlns="http://www.w3.org/2005/Atom"
      xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices"
      xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">
  <entry>
    <id>http://127.0.0.1:5101/Packages(Id='E2e',Version='1.0.0')</id>
    <content type="application/zip" src="http://127.0.0.1:5101/download/1/1.0.0?a=1&amp;b=2"/>
    <m:properties>
      <d:Id>E2e</d:Id>
      <d:PackageHash>3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==</d:PackageHash>
      <d:PackageHashAlgorithm>SHA512</d:PackageHashAlgorithm>
    </m:properties>
  </entry>
  <entry><content src="second"/></entry>
</feed>"#;
        let entry = parse_entry(xml).unwrap().unwrap();
        assert_eq!(entry.content.as_deref(), Some("http://127.0.0.1:5101/download/1/1.0.0?a=1&b=2"));
        assert_eq!(
            entry.sha512.as_deref(),
            Some("3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==")
        );
        let sha256 = br#"<entry><content src="x"/><properties><PackageHash>abc</PackageHash>
            <PackageHashAlgorithm>SHA256</PackageHashAlgorithm></properties></entry>"#;
        assert_eq!(parse_entry(sha256).unwrap(), Some(Entry { content: Some("x".into()), sha512: None }));
        assert!(parse_entry(b"<entry><a></b></entry>").is_err());
        let empty = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xml:base="http://127.0.0.1:5101/" xmlns="http://www.w3.org/2005/Atom"><title>FindPackagesById</title></feed>"#;
        assert_eq!(parse_entry(empty).unwrap(), None, "pynuget's answer for a version it does not have");
    }
}
