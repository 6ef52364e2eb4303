//! Registry credentials, found the way `docker login` left them, and named by where they
//! came from so that every refusal can say which credentials were refused.
//!
//! Order, first match wins:
//! 1. `CASTOFF_REGISTRY_USERNAME` + `CASTOFF_REGISTRY_PASSWORD` (every registry; for CI);
//! 2. the docker config's `credHelpers[<registry>]`, then its `credsStore` (run
//!    `docker-credential-<name> get` with the server URL on stdin, as docker does; a
//!    helper without an entry means anonymous, as in docker);
//! 3. the docker config's `auths[<registry>]` (base64 `auth`, or `username`/`password`);
//! 4. anonymous.
//!
//! The docker config is `ClientOptions::docker_config`, else `$DOCKER_CONFIG`, else
//! `~/.docker`, plus `config.json`. A missing file means anonymous; a broken one is an
//! error naming the file, what is wrong and how to fix it, and never a value from it.
//!
//! Identity tokens (helper `Username` of `<token>`, or an `identitytoken` field) are used
//! as the password of HTTP Basic auth towards the registry or its token service, with
//! the username `<token>`; castoff does not run the OAuth2 refresh-token exchange.
//!
//! Resolution is lazy (only when a registry asks for credentials) and happens once per
//! registry per [`CredentialStore`]: a helper may prompt or be slow.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value};

use super::client::RegistryError;
use super::encoding::base64_decode;
use super::reference::DOCKER_HUB;
use crate::exec::{Command, ExecError};
use crate::secret::Secret;

/// The environment variables that override the docker config for every registry.
pub(crate) const ENV_USERNAME: &str = "CASTOFF_REGISTRY_USERNAME";
pub(crate) const ENV_PASSWORD: &str = "CASTOFF_REGISTRY_PASSWORD";

/// The key `docker login` uses for Docker Hub, and the server URL its helpers expect.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A username and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, {:?})", self.username, self.password)
    }
}

/// The credentials for a registry (if any) and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub credentials: Option<Credentials>,
    /// Where they came from, for messages: "docker config /home/u/.docker/config.json
    /// (auths)", "credential helper docker-credential-pass",
    /// "CASTOFF_REGISTRY_USERNAME/PASSWORD" or "no credentials (anonymous)".
    pub source: String,
}

impl Resolved {
    fn anonymous() -> Resolved {
        Resolved { credentials: None, source: "no credentials (anonymous)".into() }
    }
}

/// What credential resolution reads from the outside world, captured once so that
/// tests can supply their own without touching the process environment.
#[derive(Debug, Clone, Default)]
pub(crate) struct CredentialEnv {
    /// `CASTOFF_REGISTRY_USERNAME`.
    pub username: Option<String>,
    /// `CASTOFF_REGISTRY_PASSWORD`.
    pub password: Option<Secret>,
    /// The docker config directory; `None` when there is none (no `$HOME`).
    pub config_dir: Option<PathBuf>,
    /// Where `docker-credential-*` programs are; `None` means look them up on `PATH`.
    pub helper_dir: Option<PathBuf>,
}

impl CredentialEnv {
    /// Read the process environment: the override variables, and the docker config
    /// directory (`docker_config`, else `$DOCKER_CONFIG`, else `$HOME/.docker`).
    pub fn from_process(docker_config: Option<PathBuf>) -> CredentialEnv {
        let var = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
        let config_dir = docker_config
            .or_else(|| std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| {
                std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| Path::new(&home).join(".docker"))
            });
        CredentialEnv {
            username: var(ENV_USERNAME),
            password: var(ENV_PASSWORD).map(Secret::new),
            config_dir,
            helper_dir: None,
        }
    }
}

/// One registry's resolution, once done. Its own lock makes a second thread wait for
/// the first thread's resolution (and its helper run) instead of repeating it.
type Slot = Arc<Mutex<Option<Arc<Resolved>>>>;

/// Credentials resolved lazily, once per registry, and shared between threads.
pub(crate) struct CredentialStore {
    env: CredentialEnv,
    slots: Mutex<HashMap<String, Slot>>,
}

impl CredentialStore {
    pub fn new(env: CredentialEnv) -> CredentialStore {
        CredentialStore { env, slots: Mutex::new(HashMap::new()) }
    }

    /// The credentials for `registry` (as in a reference: `docker.io`, `ghcr.io`,
    /// `localhost:5000`). Errors are not cached: the user may fix the file meanwhile.
    pub fn get(&self, registry: &str) -> Result<Arc<Resolved>, RegistryError> {
        let key = canonical_host(registry);
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(key.clone()).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(resolved) = slot.as_ref() {
            return Ok(Arc::clone(resolved));
        }
        let resolved = Arc::new(resolve(&self.env, &key)?);
        *slot = Some(Arc::clone(&resolved));
        Ok(resolved)
    }
}

/// Find the credentials for `registry` (canonical: lowercase, Docker Hub as `docker.io`).
pub(crate) fn resolve(env: &CredentialEnv, registry: &str) -> Result<Resolved, RegistryError> {
    if let Some(resolved) = from_env(env)? {
        return Ok(resolved);
    }
    let Some(dir) = &env.config_dir else {
        return Ok(Resolved::anonymous());
    };
    let path = dir.join("config.json");
    let Some(config) = load_config(&path)? else {
        return Ok(Resolved::anonymous());
    };
    let config = DockerConfig::parse(&path, &config)?;
    if let Some((name, key)) = config.helper_for(registry) {
        return from_helper(env, &config.path, &name, &key, registry);
    }
    config.auths_entry(registry)
}

/// The override variables: both set, neither set, or an error.
fn from_env(env: &CredentialEnv) -> Result<Option<Resolved>, RegistryError> {
    let source = format!("{ENV_USERNAME}/PASSWORD");
    match (&env.username, &env.password) {
        (Some(username), Some(password)) => Ok(Some(Resolved {
            credentials: Some(Credentials { username: username.clone(), password: password.clone() }),
            source,
        })),
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => {
            let (set, unset) =
                if env.username.is_some() { (ENV_USERNAME, ENV_PASSWORD) } else { (ENV_PASSWORD, ENV_USERNAME) };
            Err(RegistryError::Credentials {
                source_name: source,
                problem: format!("{set} is set but {unset} is not"),
                hint: format!("set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither to use the docker config"),
            })
        }
    }
}

/// The file's text, or `None` when there is no file.
fn load_config(path: &Path) -> Result<Option<String>, RegistryError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::Credentials {
            source_name: format!("docker config {}", path.display()),
            problem: format!("cannot be read: {e}"),
            hint: "check the file's permissions, or point DOCKER_CONFIG at another directory".into(),
        }),
    }
}

/// The parts of a docker `config.json` that hold credentials.
struct DockerConfig {
    path: PathBuf,
    auths: Map<String, Value>,
    creds_store: Option<String>,
    cred_helpers: Map<String, Value>,
}

impl DockerConfig {
    /// Parse and shape-check; errors give the key path, never a value.
    fn parse(path: &Path, text: &str) -> Result<DockerConfig, RegistryError> {
        let invalid = |problem: String, hint: &str| RegistryError::Credentials {
            source_name: format!("docker config {}", path.display()),
            problem,
            hint: hint.into(),
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            invalid(
                format!("is not valid JSON: {e}"),
                "fix the JSON at that line and column, or move the file away and run `docker login` again",
            )
        })?;
        let Value::Object(mut root) = value else {
            return Err(invalid("is not a JSON object".into(), "the file must hold an object such as {\"auths\": {}}"));
        };
        let object = |root: &mut Map<String, Value>, key: &str| match root.remove(key) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map),
            Some(other) => Err(invalid(
                format!("`{key}` is {}, not an object", kind(&other)),
                &format!("write `{key}` as an object keyed by registry, e.g. \"{key}\": {{\"ghcr.io\": …}}"),
            )),
        };
        let auths = object(&mut root, "auths")?;
        let cred_helpers = object(&mut root, "credHelpers")?;
        let creds_store = match root.remove("credsStore") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) if name.is_empty() => None,
            Some(Value::String(name)) => Some(name),
            Some(other) => {
                return Err(invalid(
                    format!("`credsStore` is {}, not a string", kind(&other)),
                    "write the helper's name, e.g. \"credsStore\": \"pass\", or remove the key",
                ))
            }
        };
        Ok(DockerConfig { path: path.to_path_buf(), auths, creds_store, cred_helpers })
    }

    /// The helper that holds `registry`'s credentials and the key it is configured
    /// under: a `credHelpers` entry, else the `credsStore`.
    fn helper_for(&self, registry: &str) -> Option<(String, String)> {
        if let Some((key, value)) = find_entry(&self.cred_helpers, registry) {
            return Some((value.as_str().unwrap_or_default().to_string(), format!("credHelpers.{key}")));
        }
        self.creds_store.clone().map(|name| (name, "credsStore".to_string()))
    }

    /// The `auths` entry for `registry`, decoded.
    fn auths_entry(&self, registry: &str) -> Result<Resolved, RegistryError> {
        let Some((key, entry)) = find_entry(&self.auths, registry) else {
            return Ok(Resolved::anonymous());
        };
        let source = format!("docker config {} (auths)", self.path.display());
        let invalid =
            |problem: String, hint: String| RegistryError::Credentials { source_name: source.clone(), problem, hint };
        let relogin = format!("run `docker login {registry}` again, or fix the entry by hand");
        let Value::Object(entry) = entry else {
            return Err(invalid(format!("auths.{key} is {}, not an object", kind(entry)), relogin));
        };
        let field = |name: &str| match entry.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(other) => {
                Err(invalid(format!("auths.{key}.{name} is {}, not a string", kind(other)), relogin.clone()))
            }
        };
        let credentials = if let Some(auth) = field("auth")? {
            let decoded = base64_decode(auth).and_then(|bytes| String::from_utf8(bytes).ok());
            let Some((username, password)) = decoded.as_deref().and_then(|text| text.split_once(':')) else {
                return Err(invalid(
                    format!("auths.{key}.auth is not base64 user:pass"),
                    format!("{relogin}: `auth` is the base64 of `username:password`"),
                ));
            };
            Credentials { username: username.to_string(), password: Secret::new(password) }
        } else if let (Some(username), Some(password)) = (field("username")?, field("password")?) {
            Credentials { username: username.to_string(), password: Secret::new(password) }
        } else if let Some(token) = field("identitytoken")? {
            Credentials { username: "<token>".into(), password: Secret::new(token) }
        } else {
            // `{}` entries are what docker leaves when a credsStore holds the secret.
            return Ok(Resolved::anonymous());
        };
        Ok(Resolved { credentials: Some(credentials), source })
    }
}

/// A short name for a JSON value's type, for messages that must not show the value.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The entry for `registry` in a map keyed the ways docker writes registries: exactly,
/// else by host after dropping any scheme and path (`https://host/v2/`, `http://host`),
/// with Docker Hub's aliases (`https://index.docker.io/v1/`) meaning `docker.io`.
fn find_entry<'a>(map: &'a Map<String, Value>, registry: &str) -> Option<(&'a str, &'a Value)> {
    if let Some((key, value)) = map.get_key_value(registry) {
        return Some((key.as_str(), value));
    }
    map.iter().find(|(key, _)| key_host(key) == registry).map(|(key, value)| (key.as_str(), value))
}

/// The registry a config key names: scheme and path dropped, canonicalised.
pub(crate) fn key_host(key: &str) -> String {
    let rest = key.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, after)| after);
    let host = rest.split('/').next().unwrap_or(rest);
    canonical_host(host)
}

/// Lowercase, with Docker Hub's host names folded into `docker.io`.
pub(crate) fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

/// What a helper prints for `get`.
#[derive(serde::Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Ask `docker-credential-<name>` for `registry`'s credentials. `key` says where the
/// config names the helper (`credsStore`, `credHelpers.ghcr.io`).
fn from_helper(
    env: &CredentialEnv,
    config: &Path,
    name: &str,
    key: &str,
    registry: &str,
) -> Result<Resolved, RegistryError> {
    let program = format!("docker-credential-{name}");
    let source = format!("credential helper {program}");
    let failed =
        |problem: String, hint: String| RegistryError::Credentials { source_name: source.clone(), problem, hint };
    let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !valid_name || name.starts_with('.') {
        return Err(failed(
            format!("`{key}` in {} names helper `{name}`, which is not a program name", config.display()),
            "write the helper's short name, e.g. `pass` for docker-credential-pass".into(),
        ));
    }
    let path = match &env.helper_dir {
        Some(dir) => dir.join(&program).to_string_lossy().into_owned(),
        None => program.clone(),
    };
    let server_url = if registry == DOCKER_HUB { DOCKER_HUB_KEY } else { registry };
    let output = match Command::new(path).arg("get").stdin(server_url.as_bytes()).run() {
        Ok(output) => output,
        Err(ExecError::NotFound { .. }) => {
            return Err(failed(
                format!("{program} is not installed or not on PATH (named by `{key}` in {})", config.display()),
                format!("install {program}, or remove `{key}` from {}", config.display()),
            ))
        }
        Err(e) => return Err(failed(format!("could not run {program}: {e}"), "check that the helper runs".into())),
    };
    if !output.success() {
        let said = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), output.stderr_tail(5));
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(Resolved {
                credentials: None,
                source: format!("no credentials (anonymous): {program} has none for {server_url}"),
            });
        }
        let status = output.code.map_or_else(|| "killed by a signal".to_string(), |code| format!("exit {code}"));
        return Err(failed(
            format!("`{program} get` failed ({status}): {}", super::transport::scrub(said.trim())),
            format!("run `echo {server_url} | {program} get` to see what it needs, or `docker login {registry}`"),
        ));
    }
    let reply: HelperReply = serde_json::from_slice(&output.stdout).map_err(|e| {
        failed(
            format!(
                "`{program} get` printed something that is not its JSON reply (at line {}, column {})",
                e.line(),
                e.column()
            ),
            "check the helper's version; it must print {\"ServerURL\", \"Username\", \"Secret\"}".into(),
        )
    })?;
    if reply.secret.is_empty() {
        return Ok(Resolved::anonymous());
    }
    let credentials = Credentials { username: reply.username, password: Secret::new(reply.secret) };
    Ok(Resolved { credentials: Some(credentials), source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A temporary docker config directory holding `config.json` with `json`.
    fn config_dir(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    fn env_for(dir: &Path) -> CredentialEnv {
        CredentialEnv { config_dir: Some(dir.to_path_buf()), helper_dir: Some(dir.to_path_buf()), ..Default::default() }
    }

    /// Install a fake `docker-credential-<name>` in `dir` running `script` (sh).
    fn helper(dir: &Path, name: &str, script: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn creds(resolved: &Resolved) -> Option<(String, String)> {
        resolved.credentials.as_ref().map(|c| (c.username.clone(), c.password.expose().to_string()))
    }

    fn pair(user: &str, pass: &str) -> Option<(String, String)> {
        Some((user.to_string(), pass.to_string()))
    }

    fn credentials_error(result: Result<Resolved, RegistryError>) -> (String, String, String) {
        match result {
            Err(RegistryError::Credentials { source_name, problem, hint }) => (source_name, problem, hint),
            other => panic!("expected a credentials error, got {other:?}"),
        }
    }

    #[test]
    fn base64_auth_and_key_forms() {
        // dXNlcjpwYXNz = user:pass, aHViOnNlY3JldDpjb2xvbg== = hub:secret:colon
        let dir = config_dir(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldDpjb2xvbg=="},
                "localhost:5000": {"auth": "dXNlcjpwYXNz"},
                "https://ghcr.io": {"auth": "dXNlcjpwYXNz"},
                "http://insecure.example:8080/v2/": {"auth": "dXNlcjpwYXNz"},
                "Quay.IO": {"auth": "dXNlcjpwYXNz"}
            }}"#,
        );
        let env = env_for(dir.path());
        let hub = resolve(&env, "docker.io").unwrap();
        assert_eq!(creds(&hub), pair("hub", "secret:colon"), "the password may hold colons");
        assert_eq!(hub.source, format!("docker config {} (auths)", dir.path().join("config.json").display()));
        for registry in ["localhost:5000", "ghcr.io", "insecure.example:8080", "quay.io"] {
            assert_eq!(creds(&resolve(&env, registry).unwrap()), pair("user", "pass"), "{registry}");
        }
        let other = resolve(&env, "localhost:5001").unwrap();
        assert_eq!(other, Resolved::anonymous());
        assert_eq!(other.source, "no credentials (anonymous)");
    }

    #[test]
    fn username_password_fields_and_identity_tokens() {
        let dir = config_dir(
            r#"{"auths": {
                "a.example": {"username": "alice", "password": "pw"},
                "b.example": {"identitytoken": "tok"},
                "c.example": {},
                "d.example": {"auth": ""}
            }}"#,
        );
        let env = env_for(dir.path());
        assert_eq!(creds(&resolve(&env, "a.example").unwrap()), pair("alice", "pw"));
        assert_eq!(creds(&resolve(&env, "b.example").unwrap()), pair("<token>", "tok"));
        assert_eq!(resolve(&env, "c.example").unwrap(), Resolved::anonymous());
        assert_eq!(resolve(&env, "d.example").unwrap(), Resolved::anonymous());
    }

    #[test]
    fn environment_overrides_win_over_the_docker_config() {
        let dir = config_dir(r#"{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}, "credsStore": "missing"}"#);
        let env = CredentialEnv {
            username: Some("ci".into()),
            password: Some(Secret::new("ci-pass")),
            ..env_for(dir.path())
        };
        let resolved = resolve(&env, "ghcr.io").unwrap();
        assert_eq!(creds(&resolved), pair("ci", "ci-pass"));
        assert_eq!(resolved.source, "CASTOFF_REGISTRY_USERNAME/PASSWORD");

        let half = CredentialEnv { username: Some("ci".into()), ..env_for(dir.path()) };
        let (source, problem, hint) = credentials_error(resolve(&half, "ghcr.io"));
        assert_eq!(source, "CASTOFF_REGISTRY_USERNAME/PASSWORD");
        assert_eq!(problem, "CASTOFF_REGISTRY_USERNAME is set but CASTOFF_REGISTRY_PASSWORD is not");
        assert!(hint.contains("set both"));
    }

    #[test]
    fn no_file_or_no_directory_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve(&env_for(dir.path()), "ghcr.io").unwrap(), Resolved::anonymous());
        assert_eq!(resolve(&CredentialEnv::default(), "ghcr.io").unwrap(), Resolved::anonymous());
    }

    #[test]
    fn malformed_configs_name_the_file_the_problem_and_the_fix_but_no_secret() {
        let cases = [
            (r#"{"auths": {"ghcr.io": {"auth": "hunter2"}}}"#, "auths.ghcr.io.auth is not base64 user:pass"),
            (r#"{"auths": {"ghcr.io": {"auth": "aHVudGVyMg=="}}}"#, "auths.ghcr.io.auth is not base64 user:pass"),
            (r#"{"auths": {"ghcr.io": {"password": 12345678}}}"#, "auths.ghcr.io.password is a number, not a string"),
            (r#"{"auths": {"ghcr.io": "hunter2"}}"#, "auths.ghcr.io is a string, not an object"),
            (r#"{"auths": ["hunter2"]}"#, "`auths` is an array, not an object"),
            (r#"{"credsStore": 7}"#, "`credsStore` is a number, not a string"),
            ("[]", "is not a JSON object"),
            (
                "{\"auths\": {\n  \"ghcr.io\": {\"auth\": \"hunter2\"\n}",
                "is not valid JSON: EOF while parsing an object at line 3 column 1",
            ),
            (
                "{\"auths\": {\"ghcr.io\": {\"auth\": \"hunter2\",}}}",
                "is not valid JSON: trailing comma at line 1 column 42",
            ),
        ];
        for (json, expected) in cases {
            let dir = config_dir(json);
            let (source, problem, hint) = credentials_error(resolve(&env_for(dir.path()), "ghcr.io"));
            assert!(source.contains(&dir.path().join("config.json").display().to_string()), "{source}");
            assert_eq!(problem, expected, "{json}");
            assert!(!hint.is_empty());
            for text in [&source, &problem, &hint] {
                assert!(!text.contains("hunter2") && !text.contains("12345678"), "secret leaked: {text}");
            }
        }
    }

    #[test]
    fn creds_store_helper_gets_the_server_url_on_stdin() {
        let dir = config_dir(r#"{"auths": {"ghcr.io": {}}, "credsStore": "test"}"#);
        // Echo the server URL back in the username so the test sees what was sent.
        helper(
            dir.path(),
            "test",
            r#"[ "$1" = get ] || exit 9
read -r server
printf '{"ServerURL":"%s","Username":"u-%s","Secret":"s3cret"}' "$server" "$server""#,
        );
        let env = env_for(dir.path());
        let resolved = resolve(&env, "ghcr.io").unwrap();
        assert_eq!(creds(&resolved), pair("u-ghcr.io", "s3cret"));
        assert_eq!(resolved.source, "credential helper docker-credential-test");
        let hub = resolve(&env, "docker.io").unwrap();
        assert_eq!(creds(&hub), pair("u-https://index.docker.io/v1/", "s3cret"));
    }

    #[test]
    fn cred_helpers_win_over_creds_store_and_auths() {
        let dir = config_dir(
            r#"{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}},
                "credsStore": "store",
                "credHelpers": {"https://ghcr.io": "per-host"}}"#,
        );
        helper(dir.path(), "store", r#"echo '{"Username":"store","Secret":"x"}'"#);
        helper(dir.path(), "per-host", r#"echo '{"Username":"<token>","Secret":"idtok"}'"#);
        let env = env_for(dir.path());
        let resolved = resolve(&env, "ghcr.io").unwrap();
        assert_eq!(creds(&resolved), pair("<token>", "idtok"));
        assert_eq!(resolved.source, "credential helper docker-credential-per-host");
        assert_eq!(creds(&resolve(&env, "quay.io").unwrap()), pair("store", "x"));
    }

    #[test]
    fn helper_without_an_entry_means_anonymous() {
        let dir = config_dir(r#"{"credsStore": "test"}"#);
        helper(dir.path(), "test", "echo 'credentials not found in native keychain'; exit 1");
        let resolved = resolve(&env_for(dir.path()), "ghcr.io").unwrap();
        assert_eq!(resolved.credentials, None);
        assert!(resolved.source.starts_with("no credentials (anonymous)"), "{}", resolved.source);
        assert!(resolved.source.contains("docker-credential-test"));
    }

    #[test]
    fn broken_helpers_are_errors_naming_the_helper() {
        let dir = config_dir(r#"{"credsStore": "test"}"#);
        helper(dir.path(), "test", "echo 'gpg: decryption failed: No secret key' >&2; exit 1");
        let (source, problem, _) = credentials_error(resolve(&env_for(dir.path()), "ghcr.io"));
        assert_eq!(source, "credential helper docker-credential-test");
        assert!(problem.contains("exit 1") && problem.contains("decryption failed"), "{problem}");

        helper(dir.path(), "test", "echo not json");
        let (_, problem, _) = credentials_error(resolve(&env_for(dir.path()), "ghcr.io"));
        assert!(problem.contains("not its JSON reply"), "{problem}");

        let missing = config_dir(r#"{"credsStore": "nope"}"#);
        let (source, problem, hint) = credentials_error(resolve(&env_for(missing.path()), "ghcr.io"));
        assert_eq!(source, "credential helper docker-credential-nope");
        assert!(problem.contains("not installed") && problem.contains("credsStore"), "{problem}");
        assert!(hint.contains("remove `credsStore`"), "{hint}");

        let sneaky = config_dir(r#"{"credsStore": "../../bin/sh"}"#);
        let (_, problem, _) = credentials_error(resolve(&env_for(sneaky.path()), "ghcr.io"));
        assert!(problem.contains("not a program name"), "{problem}");
    }

    #[test]
    fn store_resolves_once_per_registry() {
        let dir = config_dir(r#"{"credsStore": "count"}"#);
        let log = dir.path().join("calls");
        helper(
            dir.path(),
            "count",
            &format!(r#"echo x >> '{}'; echo '{{"Username":"u","Secret":"s"}}'"#, log.display()),
        );
        let store = CredentialStore::new(env_for(dir.path()));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    assert_eq!(creds(&store.get("ghcr.io").unwrap()), pair("u", "s"));
                    assert_eq!(creds(&store.get("GHCR.io").unwrap()), pair("u", "s"));
                });
            }
        });
        store.get("quay.io").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2, "one helper run per registry");
    }

    #[test]
    fn key_hosts() {
        assert_eq!(key_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(key_host("registry-1.docker.io"), "docker.io");
        assert_eq!(key_host("http://LOCALHOST:5000/v2/"), "localhost:5000");
        assert_eq!(key_host("ghcr.io"), "ghcr.io");
        assert_eq!(key_host("[::1]:5000"), "[::1]:5000");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let resolved = Resolved {
            credentials: Some(Credentials { username: "u".into(), password: Secret::new("hunter2") }),
            source: "s".into(),
        };
        assert!(!format!("{resolved:?}").contains("hunter2"));
    }
}
