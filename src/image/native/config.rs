//! The image config and manifest JSON of a native build: exact bytes, the same for the
//! same inputs (fields in a fixed order, maps sorted), so a rebuild of unchanged inputs
//! has the same manifest digest and finds its tag up to date.
//!
//! What comes from the base (as a Dockerfile `FROM` would give it): `Env` (with
//! `[image.native] env` replacing same-named variables in place, new ones appended),
//! `Entrypoint`, `Cmd`, `User`, `WorkingDir` unless configured (configuring
//! `entrypoint` drops the base's `Cmd`, as `ENTRYPOINT` does), `ExposedPorts`,
//! `Volumes`, `StopSignal`, `Healthcheck` and `Shell`, the layers with their
//! diff_ids, and the history. Base labels are not inherited: the image's labels are
//! the job's (OCI annotations and `[image.labels]`) then `[image.native] labels`.

use std::collections::BTreeMap;

use oci_spec::image::Digest;
use serde::Serialize;
use serde_json::{Map, Value};

use super::base::{Base, BaseLayer};
use super::layer::Layer;
use crate::config::NativeConfig;
use crate::error::{Error, Result};
use crate::image::Job;
use crate::manifest::index::sha256_digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What the history entry of castoff's layer says made it.
pub const CREATED_BY: &str = "castoff native";

const CREATED_LABEL: &str = "org.opencontainers.image.created";

/// Base `config` fields carried over unchanged.
const INHERITED: &[&str] = &["ExposedPorts", "Volumes", "StopSignal", "Healthcheck", "Shell"];

/// The config and manifest blobs of one platform's image.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: Container,
    rootfs: RootFs,
    history: Vec<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Container {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(flatten)]
    inherited: BTreeMap<String, Value>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson {
    schema_version: u32,
    media_type: &'static str,
    config: DescriptorJson,
    layers: Vec<DescriptorJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

impl From<&BaseLayer> for DescriptorJson {
    fn from(layer: &BaseLayer) -> Self {
        DescriptorJson {
            media_type: layer.media_type.clone(),
            digest: layer.digest.to_string(),
            size: layer.size,
            urls: layer.urls.clone(),
            annotations: layer.annotations.clone(),
        }
    }
}

/// The config and manifest for `job`: `base` plus `layer`, configured by `native`.
pub fn assemble(job: &Job, native: &NativeConfig, base: &Base, layer: &Layer) -> Result<Image> {
    let config = config_json(job, native, base, layer)?;
    let config_digest = sha256_digest(&config);
    let mut layers: Vec<DescriptorJson> = base.layers.iter().map(DescriptorJson::from).collect();
    layers.push(DescriptorJson {
        media_type: OCI_LAYER_GZIP.into(),
        digest: layer.digest.to_string(),
        size: layer.size,
        urls: None,
        annotations: None,
    });
    let manifest = ManifestJson {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: DescriptorJson {
            media_type: OCI_CONFIG.into(),
            digest: config_digest.to_string(),
            size: config.len() as u64,
            urls: None,
            annotations: None,
        },
        layers,
    };
    let manifest = to_bytes(&manifest, "manifest")?;
    Ok(Image { manifest_digest: sha256_digest(&manifest), manifest, config_digest, config })
}

fn config_json(job: &Job, native: &NativeConfig, base: &Base, layer: &Layer) -> Result<Vec<u8>> {
    let platform = job.platform.normalized();
    let created = job.labels.get(CREATED_LABEL).map(String::as_str);
    let inherited = |key: &str| base.container.get(key).filter(|v| !v.is_null()).cloned();
    let strings = |list: &Option<Vec<String>>| list.as_ref().map(|l| Value::from(l.clone()));
    let entrypoint = strings(&native.entrypoint).or_else(|| inherited("Entrypoint"));
    let cmd = match (&native.cmd, &native.entrypoint) {
        (Some(_), _) => strings(&native.cmd),
        (None, Some(_)) => None,
        (None, None) => inherited("Cmd"),
    };
    let mut labels = job.labels.clone();
    labels.extend(native.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let container = Container {
        user: native.user.clone().map(Value::from).or_else(|| inherited("User")),
        env: env(&base.container, &native.env),
        entrypoint,
        cmd,
        working_dir: native.workdir.clone().map(Value::from).or_else(|| inherited("WorkingDir")),
        labels,
        inherited: INHERITED.iter().filter_map(|key| inherited(key).map(|v| (key.to_string(), v))).collect(),
    };
    let mut history = base.history.clone();
    let mut ours = Map::new();
    if let Some(created) = created {
        ours.insert("created".into(), created.into());
    }
    ours.insert("created_by".into(), CREATED_BY.into());
    history.push(Value::Object(ours));
    let mut diff_ids = base.diff_ids.clone();
    diff_ids.push(layer.diff_id.to_string());
    let config = ConfigJson {
        created,
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        config: container,
        rootfs: RootFs { kind: "layers", diff_ids },
        history,
    };
    to_bytes(&config, "image config")
}

/// The base's `Env`, with each configured variable replacing the same-named one where
/// it stands, or appended.
fn env(base: &Map<String, Value>, ours: &BTreeMap<String, String>) -> Vec<String> {
    let mut env: Vec<String> = match base.get("Env") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    for (name, value) in ours {
        let line = format!("{name}={value}");
        match env.iter_mut().find(|item| item.split_once('=').map_or(item.as_str(), |(n, _)| n) == name) {
            Some(existing) => *existing = line,
            None => env.push(line),
        }
    }
    env
}

fn to_bytes(value: &impl Serialize, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("serialising the {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NativeBase;
    use crate::platform::Platform;
    use crate::registry::Reference;

    fn job(platform: &str) -> Job {
        Job {
            platform: Platform::parse(platform).unwrap(),
            tag: "1.0.0-x".into(),
            reference: Reference::parse("127.0.0.1:5000/app:1.0.0-x").unwrap(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::from([
                (CREATED_LABEL.to_string(), "2024-01-02T03:04:05Z".to_string()),
                ("org.opencontainers.image.version".to_string(), "1.0.0".to_string()),
            ]),
        }
    }

    fn native() -> NativeConfig {
        NativeConfig {
            base: NativeBase::Scratch,
            files: Vec::new(),
            entrypoint: Some(vec!["/usr/local/bin/app".into()]),
            cmd: None,
            env: BTreeMap::from([
                ("PATH".to_string(), "/usr/local/bin".to_string()),
                ("B".to_string(), "2".to_string()),
            ]),
            labels: BTreeMap::from([("org.opencontainers.image.version".to_string(), "override".to_string())]),
            user: Some("1000".into()),
            workdir: Some("/srv".into()),
        }
    }

    fn layer() -> Layer {
        Layer { diff_id: sha256_digest(b"tar"), digest: sha256_digest(b"gz"), size: 2 }
    }

    #[test]
    fn config_fields_on_scratch() {
        let image = assemble(&job("linux/arm/v7"), &native(), &Base::scratch(), &layer()).unwrap();
        let config: Value = serde_json::from_slice(&image.config).unwrap();
        assert_eq!(config["architecture"], "arm");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["variant"], "v7");
        assert_eq!(config["created"], "2024-01-02T03:04:05Z");
        assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/usr/local/bin/app"]));
        assert!(config["config"].get("Cmd").is_none());
        assert_eq!(config["config"]["Env"], serde_json::json!(["B=2", "PATH=/usr/local/bin"]));
        assert_eq!(config["config"]["User"], "1000");
        assert_eq!(config["config"]["WorkingDir"], "/srv");
        assert_eq!(config["config"]["Labels"]["org.opencontainers.image.version"], "override");
        assert_eq!(config["rootfs"], serde_json::json!({"type": "layers", "diff_ids": [layer().diff_id.to_string()]}));
        assert_eq!(
            config["history"],
            serde_json::json!([{"created": "2024-01-02T03:04:05Z", "created_by": "castoff native"}])
        );
        let amd64 = assemble(&job("linux/amd64"), &native(), &Base::scratch(), &layer()).unwrap();
        let config: Value = serde_json::from_slice(&amd64.config).unwrap();
        assert!(config.get("variant").is_none());

        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(manifest["config"]["digest"], image.config_digest.to_string());
        assert_eq!(manifest["config"]["size"], image.config.len());
        assert_eq!(manifest["layers"][0]["mediaType"], OCI_LAYER_GZIP);
        assert_eq!(manifest["layers"][0]["digest"], layer().digest.to_string());
        assert_eq!(image.manifest_digest, sha256_digest(&image.manifest));
    }

    #[test]
    fn same_inputs_same_bytes() {
        let a = assemble(&job("linux/arm64"), &native(), &Base::scratch(), &layer()).unwrap();
        let b = assemble(&job("linux/arm64"), &native(), &Base::scratch(), &layer()).unwrap();
        assert_eq!(a.config, b.config);
        assert_eq!(a.manifest_digest, b.manifest_digest);
    }

    #[test]
    fn the_base_is_inherited() {
        let container = serde_json::json!({
            "Env": ["PATH=/usr/bin", "LANG=C"],
            "Entrypoint": ["/bin/sh"],
            "Cmd": ["-c", "true"],
            "User": "nobody",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"from.base": "yes"},
            "OnBuild": ["RUN x"],
        });
        let base_layer = BaseLayer {
            media_type: OCI_LAYER_GZIP.into(),
            digest: sha256_digest(b"base-gz"),
            size: 7,
            urls: None,
            annotations: None,
        };
        let base = Base {
            description: "base".into(),
            layers: vec![base_layer.clone()],
            container: container.as_object().unwrap().clone(),
            diff_ids: vec![sha256_digest(b"base-tar").to_string()],
            history: vec![serde_json::json!({"created_by": "base"})],
            origin: super::super::base::Origin::Scratch,
        };
        let mut native = native();
        native.entrypoint = None;
        native.user = None;
        native.workdir = None;
        let image = assemble(&job("linux/amd64"), &native, &base, &layer()).unwrap();
        let config: Value = serde_json::from_slice(&image.config).unwrap();
        let c = &config["config"];
        assert_eq!(c["Env"], serde_json::json!(["PATH=/usr/local/bin", "LANG=C", "B=2"]));
        assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh"]));
        assert_eq!(c["Cmd"], serde_json::json!(["-c", "true"]));
        assert_eq!(c["User"], "nobody");
        assert_eq!(c["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert!(c["Labels"].get("from.base").is_none());
        assert!(c.get("OnBuild").is_none());
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(b"base-tar").to_string());
        assert_eq!(config["rootfs"]["diff_ids"][1], layer().diff_id.to_string());
        assert_eq!(config["history"][0]["created_by"], "base");
        assert_eq!(config["history"][1]["created_by"], CREATED_BY);
        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], base_layer.digest.to_string());
        assert_eq!(manifest["layers"][0]["size"], 7);
        assert_eq!(manifest["layers"][1]["digest"], layer().digest.to_string());

        // Configuring an entrypoint drops the base's Cmd, as ENTRYPOINT does.
        native.entrypoint = Some(vec!["/app".into()]);
        let image = assemble(&job("linux/amd64"), &native, &base, &layer()).unwrap();
        let config: Value = serde_json::from_slice(&image.config).unwrap();
        assert!(config["config"].get("Cmd").is_none());
    }
}
