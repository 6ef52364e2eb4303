//! NuGet v3: the service index names every endpoint; castoff uses three.
//!
//! - `PackagePublish/2.0.0`: PUT the nupkg (multipart, `X-NuGet-ApiKey`); 201 or 202
//!   pushed, 409 already there.
//! - `SymbolPackagePublish/4.9.0`: the same for a snupkg.
//! - `PackageBaseAddress/3.0.0` (the flat container): GET
//!   `{@id}/{id-lower}/{version-lower}/{id-lower}.{version-lower}.nupkg`, to read a
//!   package back after a 409 and compare digests.

use serde::Deserialize;
use ureq::http::Uri;

use super::http::FeedHttp;
use super::{lower, FeedError};
use crate::registry::transport::{display_url, excerpt};

pub(crate) const PACKAGE_PUBLISH: &str = "PackagePublish/2.0.0";
pub(crate) const SYMBOL_PACKAGE_PUBLISH: &str = "SymbolPackagePublish/4.9.0";
pub(crate) const PACKAGE_BASE_ADDRESS: &str = "PackageBaseAddress/3.0.0";

/// The endpoints a v3 feed's service index names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    /// The service index URL, for messages.
    pub index: String,
    pub publish: Uri,
    pub symbols: Option<Uri>,
    pub flat: Option<Uri>,
}

#[derive(Debug, Deserialize)]
struct ServiceIndex {
    version: Option<String>,
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "@id")]
    id: Option<String>,
    /// A string; some servers send a list of types for one resource.
    #[serde(rename = "@type")]
    kind: Option<serde_json::Value>,
}

impl Resource {
    fn is(&self, wanted: &str) -> bool {
        match &self.kind {
            Some(serde_json::Value::String(kind)) => kind == wanted,
            Some(serde_json::Value::Array(kinds)) => kinds.iter().any(|k| k.as_str() == Some(wanted)),
            _ => false,
        }
    }
}

impl Endpoints {
    /// GET the service index and pick the endpoints out of it.
    pub fn fetch(http: &FeedHttp, index: &Uri) -> Result<Endpoints, FeedError> {
        let document = http.get(index, "application/json")?;
        let feed = http.feed_name();
        if !(200..300).contains(&document.status) {
            return Err(FeedError::Status {
                feed: feed.into(),
                method: "GET".into(),
                url: display_url(&document.url),
                status: document.status,
                body: excerpt(&document.body),
            });
        }
        Endpoints::parse(&document.body, &display_url(index)).map_err(|problem| FeedError::Protocol {
            feed: feed.into(),
            url: display_url(index),
            problem,
            hint: "a v3 feed's url is its service index (…/index.json); for a v2 feed set protocol = \"v2\"".into(),
        })
    }

    /// The endpoints in a service index's JSON. Only `PackagePublish` is required.
    pub fn parse(body: &[u8], index: &str) -> Result<Endpoints, String> {
        let parsed: ServiceIndex =
            serde_json::from_slice(body).map_err(|e| format!("the service index is not valid JSON: {e}"))?;
        if let Some(version) = &parsed.version {
            if !version.starts_with('3') {
                return Err(format!("the service index has version {version}; castoff speaks 3.x"));
            }
        }
        let find = |wanted: &str| -> Result<Option<Uri>, String> {
            let Some(resource) = parsed.resources.iter().find(|r| r.is(wanted)) else { return Ok(None) };
            let id = resource.id.as_deref().ok_or_else(|| format!("its {wanted} resource has no @id"))?;
            let uri: Uri = id.trim().parse().map_err(|e| format!("its {wanted} @id `{id}` is not a URL: {e}"))?;
            match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
                Some("http" | "https") if uri.host().is_some() => Ok(Some(uri)),
                _ => Err(format!("its {wanted} @id `{id}` is not an absolute http(s) URL")),
            }
        };
        let publish = find(PACKAGE_PUBLISH)?.ok_or_else(|| {
            format!("the service index has no {PACKAGE_PUBLISH} resource: this feed does not accept pushes")
        })?;
        Ok(Endpoints {
            index: index.to_string(),
            publish,
            symbols: find(SYMBOL_PACKAGE_PUBLISH)?,
            flat: find(PACKAGE_BASE_ADDRESS)?,
        })
    }
}

/// The flat container URL of a package:
/// `{base}/{id-lower}/{version-lower}/{id-lower}.{version-lower}.nupkg`.
pub(crate) fn flat_url(base: &Uri, id: &str, version: &str) -> Result<Uri, String> {
    let (id, version) = (lower(id), lower(version));
    let base = base.to_string();
    let slash = if base.ends_with('/') { "" } else { "/" };
    let url = format!("{base}{slash}{id}/{version}/{id}.{version}.nupkg");
    url.parse().map_err(|e| format!("cannot form the download URL `{url}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{
      "version": "3.0.0",
      "resources": [
        { "@id": "https://www.nuget.org/api/v2/package", "@type": "PackagePublish/2.0.0" },
        { "@id": "https://www.nuget.org/api/v2/symbolpackage", "@type": "SymbolPackagePublish/4.9.0",
          "comment": "The gallery symbol publish endpoint." },
        { "@id": "https://api.nuget.org/v3-flatcontainer/", "@type": "PackageBaseAddress/3.0.0" },
        { "@id": "https://azuresearch-usnc.nuget.org/query", "@type": "SearchQueryService" }
      ]
    }"#;

    #[test]
    fn picks_the_three_endpoints() {
        let endpoints = Endpoints::parse(INDEX.as_bytes(), "https://api.nuget.org/v3/index.json").unwrap();
        assert_eq!(endpoints.publish.to_string(), "https://www.nuget.org/api/v2/package");
        assert_eq!(endpoints.symbols.unwrap().to_string(), "https://www.nuget.org/api/v2/symbolpackage");
        assert_eq!(endpoints.flat.unwrap().to_string(), "https://api.nuget.org/v3-flatcontainer/");
    }

    #[test]
    fn only_the_push_endpoint_is_required() {
        let minimal =
            r#"{"version":"3.0.0","resources":[{"@id":"http://127.0.0.1:1/p","@type":["PackagePublish/2.0.0","x"]}]}"#;
        let endpoints = Endpoints::parse(minimal.as_bytes(), "i").unwrap();
        assert_eq!((endpoints.symbols, endpoints.flat), (None, None));
        let none = r#"{"version":"3.0.0","resources":[{"@id":"https://x/q","@type":"SearchQueryService"}]}"#;
        assert!(Endpoints::parse(none.as_bytes(), "i").unwrap_err().contains("does not accept pushes"));
        assert!(Endpoints::parse(b"<html>", "i").unwrap_err().contains("not valid JSON"));
        assert!(Endpoints::parse(br#"{"version":"2.0.0","resources":[]}"#, "i").unwrap_err().contains("3.x"));
        let relative = r#"{"resources":[{"@id":"/api/v2/package","@type":"PackagePublish/2.0.0"}]}"#;
        assert!(Endpoints::parse(relative.as_bytes(), "i").unwrap_err().contains("absolute"));
    }

    #[test]
    fn flat_container_urls_are_lowercase() {
        let base: Uri = "https://api.nuget.org/v3-flatcontainer/".parse().unwrap();
        assert_eq!(
            flat_url(&base, "Newtonsoft.Json", "9.0.1").unwrap().to_string(),
            "https://api.nuget.org/v3-flatcontainer/newtonsoft.json/9.0.1/newtonsoft.json.9.0.1.nupkg"
        );
        let base: Uri = "http://127.0.0.1:5000/v3/flat".parse().unwrap();
        assert_eq!(
            flat_url(&base, "Acme.Lib", "1.0.0-RC.1+sha.5").unwrap().to_string(),
            "http://127.0.0.1:5000/v3/flat/acme.lib/1.0.0-rc.1/acme.lib.1.0.0-rc.1.nupkg"
        );
    }
}
