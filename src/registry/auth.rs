//! Authenticating to registries: the challenge a registry answers 401 with, and what
//! castoff sends next.
//!
//! - `Bearer realm=…,service=…,scope=…`: GET the realm with `service` and one `scope`
//!   per repository action, with HTTP Basic credentials when there are any (anonymous
//!   otherwise, which public repositories accept for pulls). The reply's `token` (or
//!   OAuth2 `access_token`) is cached per registry and scope string until shortly
//!   before its `expires_in` (60 s when absent, per the token spec).
//! - `Basic realm=…`: send the credentials, and from then on send them up front.
//!
//! What a registry asked for is remembered per API host, so later requests (other
//! repositories, other scopes) fetch their token before the request instead of after a
//! 401: one round trip less per request. Credentials are resolved only here, on demand.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ureq::http::{header, Uri};

use super::challenge::{parse_challenges, Challenge};
use super::client::RegistryError;
use super::credentials::{CredentialStore, Credentials};
use super::encoding::{base64_encode, query_escape};
use super::retry::Budget;
use super::transport::{display_url, excerpt, protocol, Method, Origin, Reply, Request, Transport};
use crate::secret::Secret;

/// Largest token response accepted.
const TOKEN_RESPONSE_LIMIT: u64 = 1024 * 1024;

/// A token is dropped from the cache this long before the registry says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// Token lifetime when the token service does not say (distribution's token spec).
const DEFAULT_EXPIRES_IN: u64 = 60;

/// The registry and repository access a request needs.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The registry as users name it (`docker.io`, `localhost:5000`): for credential
    /// lookup and messages.
    pub registry: String,
    /// `scheme://host[:port]` of the distribution API.
    pub base: String,
    /// Who may receive this registry's `Authorization` header.
    pub origin: Origin,
    /// Token scopes, e.g. `repository:team/app:pull,push`.
    pub scopes: Vec<String>,
}

impl Target {
    /// A URL on the registry's API from a path (`/v2/…`, already escaped).
    pub fn url(&self, path: &str) -> Result<Uri, RegistryError> {
        let text = format!("{}{path}", self.base);
        text.parse().map_err(|e| RegistryError::Protocol { url: text, problem: format!("not a valid URL: {e}") })
    }

    fn scope_key(&self) -> String {
        self.scopes.join(" ")
    }
}

/// What a registry's API host asked for last time.
#[derive(Debug, Clone)]
enum Scheme {
    Basic,
    Bearer { realm: String, service: Option<String> },
}

struct Token {
    authorization: Secret,
    expires: Instant,
}

/// Credentials, challenges seen and tokens issued; shared by all of a client's threads.
/// No lock is held across a network call.
pub(crate) struct Auth {
    credentials: CredentialStore,
    schemes: RwLock<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
}

impl Auth {
    pub fn new(credentials: CredentialStore) -> Auth {
        Auth { credentials, schemes: RwLock::new(HashMap::new()), tokens: Mutex::new(HashMap::new()) }
    }

    /// Where `registry`'s credentials come from, for a refusal message.
    pub fn source(&self, registry: &str) -> Result<String, RegistryError> {
        Ok(self.credentials.get(registry)?.source.clone())
    }

    /// The `Authorization` value to send before any challenge, when the registry's
    /// scheme is already known from an earlier 401.
    pub fn up_front(
        &self,
        transport: &Transport,
        target: &Target,
        budget: &mut Budget,
    ) -> Result<Option<Secret>, RegistryError> {
        let scheme = self.schemes.read().unwrap_or_else(PoisonError::into_inner).get(&target.base).cloned();
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(self.credentials.get(&target.registry)?.credentials.as_ref().map(basic)),
            Some(Scheme::Bearer { realm, service }) => {
                self.bearer(transport, target, &realm, service.as_deref(), budget).map(Some)
            }
        }
    }

    /// After a 401: the `Authorization` value to try again with, or `None` when trying
    /// again cannot help (no usable challenge, no credentials for Basic, the same
    /// credentials already refused, or a token without the scope we need).
    pub fn challenged(
        &self,
        transport: &Transport,
        target: &Target,
        reply: &Reply,
        sent: Option<&Secret>,
        budget: &mut Budget,
    ) -> Result<Option<Secret>, RegistryError> {
        let challenges = challenges(reply)?;
        if let Some(bearer) = challenges.iter().find(|c| c.is("Bearer")) {
            return self.answer_bearer(transport, target, bearer, sent, budget);
        }
        if challenges.iter().any(|c| c.is("Basic")) {
            self.remember(target, Scheme::Basic);
            let resolved = self.credentials.get(&target.registry)?;
            let retry = sent.is_none() || sent.is_some_and(|s| !s.expose().starts_with("Basic "));
            return Ok(resolved.credentials.as_ref().filter(|_| retry).map(basic));
        }
        Ok(None)
    }

    fn answer_bearer(
        &self,
        transport: &Transport,
        target: &Target,
        bearer: &Challenge,
        sent: Option<&Secret>,
        budget: &mut Budget,
    ) -> Result<Option<Secret>, RegistryError> {
        let Some(realm) = bearer.param("realm").filter(|realm| !realm.is_empty()) else {
            return Err(RegistryError::Protocol {
                url: target.base.clone(),
                problem: "answered 401 with a Bearer challenge that has no realm".into(),
            });
        };
        if sent.is_some() && bearer.param("error") == Some("insufficient_scope") {
            return Ok(None);
        }
        let service = bearer.param("service").map(str::to_string);
        self.remember(target, Scheme::Bearer { realm: realm.to_string(), service: service.clone() });
        let mut target = target.clone();
        for scope in bearer.param("scope").unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
            if !target.scopes.iter().any(|have| have == scope) {
                target.scopes.push(scope.to_string());
            }
        }
        self.forget_token(&target);
        self.bearer(transport, &target, realm, service.as_deref(), budget).map(Some)
    }

    fn remember(&self, target: &Target, scheme: Scheme) {
        self.schemes.write().unwrap_or_else(PoisonError::into_inner).insert(target.base.clone(), scheme);
    }

    fn forget_token(&self, target: &Target) {
        let key = (target.base.clone(), target.scope_key());
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }

    /// A bearer token for the target's scopes: cached, or fetched from the realm.
    fn bearer(
        &self,
        transport: &Transport,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        budget: &mut Budget,
    ) -> Result<Secret, RegistryError> {
        let key = (target.base.clone(), target.scope_key());
        if let Some(token) = self.tokens.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            if token.expires > Instant::now() {
                return Ok(token.authorization.clone());
            }
        }
        let (authorization, lifetime) = self.fetch_token(transport, target, realm, service, budget)?;
        let expires = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        let token = Token { authorization: authorization.clone(), expires };
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(key, token);
        Ok(authorization)
    }

    /// GET the realm for a token; Basic credentials go to the realm's origin only.
    fn fetch_token(
        &self,
        transport: &Transport,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        budget: &mut Budget,
    ) -> Result<(Secret, Duration), RegistryError> {
        let url = token_url(realm, service, &target.scopes)?;
        let resolved = self.credentials.get(&target.registry)?;
        let mut request = Request::new(Method::Get, url.clone()).limit(TOKEN_RESPONSE_LIMIT);
        if let (Some(credentials), Some(origin)) = (&resolved.credentials, Origin::of(&url)) {
            request.authorization = Some((origin, basic(credentials)));
        }
        let reply = transport.send(&mut request, budget)?;
        match reply.status {
            200..=299 => parse_token(&reply),
            401 | 403 => Err(RegistryError::Denied {
                registry: target.registry.clone(),
                status: reply.status,
                credential_source: resolved.source.clone(),
            }),
            status => Err(RegistryError::Status {
                method: "GET".into(),
                url: display_url(&reply.url),
                status,
                body: excerpt(&reply.body),
            }),
        }
    }
}

/// Every challenge in the reply's `WWW-Authenticate` headers.
fn challenges(reply: &Reply) -> Result<Vec<Challenge>, RegistryError> {
    let mut all = Vec::new();
    for value in reply.headers.get_all(header::WWW_AUTHENTICATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        all.extend(parse_challenges(&text).map_err(|e| protocol(&reply.url, e.to_string()))?);
    }
    Ok(all)
}

/// The realm with `service` and one `scope` parameter per scope appended.
pub(crate) fn token_url(realm: &str, service: Option<&str>, scopes: &[String]) -> Result<Uri, RegistryError> {
    let mut url = realm.to_string();
    let mut separator = if realm.contains('?') { '&' } else { '?' };
    let params = service.map(|s| ("service", s)).into_iter().chain(scopes.iter().map(|s| ("scope", s.as_str())));
    for (name, value) in params {
        url.push(separator);
        url.push_str(name);
        url.push('=');
        url.push_str(&query_escape(value));
        separator = '&';
    }
    let uri: Uri = url.parse().map_err(|e| RegistryError::Protocol {
        url: realm.chars().take(200).collect(),
        problem: format!("the token realm is not a valid URL: {e}"),
    })?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(RegistryError::Protocol {
            url: realm.chars().take(200).collect(),
            problem: "the token realm is not an absolute URL".into(),
        });
    }
    Ok(uri)
}

/// The `Authorization` value for `Basic` credentials.
fn basic(credentials: &Credentials) -> Secret {
    let pair = format!("{}:{}", credentials.username, credentials.password.expose());
    Secret::new(format!("Basic {}", base64_encode(pair.as_bytes())))
}

#[derive(serde::Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The `Authorization` value and lifetime in a token service's reply. The body is
/// never quoted in errors: it holds the token.
fn parse_token(reply: &Reply) -> Result<(Secret, Duration), RegistryError> {
    let parsed: TokenReply = serde_json::from_slice(&reply.body).map_err(|e| {
        protocol(
            &reply.url,
            format!("the token service's reply is not JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let token = if parsed.token.is_empty() { parsed.access_token } else { parsed.token };
    if token.is_empty() {
        return Err(protocol(&reply.url, "the token service's reply has no `token` or `access_token`".into()));
    }
    let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(DEFAULT_EXPIRES_IN));
    Ok((Secret::new(format!("Bearer {token}")), lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_urls() {
        let scopes = vec!["repository:team/app:pull,push".to_string(), "repository:base:pull".to_string()];
        let url = token_url("https://auth.example.com/token", Some("registry.example.com"), &scopes).unwrap();
        assert_eq!(
            url.to_string(),
            "https://auth.example.com/token?service=registry.example.com\
             &scope=repository:team/app:pull%2Cpush&scope=repository:base:pull"
        );
        let url = token_url("https://auth.example.com/token?client=x", None, &scopes[1..]).unwrap();
        assert_eq!(url.to_string(), "https://auth.example.com/token?client=x&scope=repository:base:pull");
        for bad in ["/token", "not a url", ""] {
            assert!(token_url(bad, None, &[]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn basic_header() {
        let credentials = Credentials { username: "user".into(), password: Secret::new("pass") };
        assert_eq!(basic(&credentials).expose(), "Basic dXNlcjpwYXNz");
    }
}
