//! Container images without network or daemon: single-layer per-platform images (and a
//! buildx-style index with a provenance attestation) written into an OCI image layout
//! directory, byte for byte deterministic, then pushed with `skopeo copy` and read back
//! with `skopeo inspect --raw`. The Rust form of shared/recipes/mkimage.sh.

use std::fs;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde_json::{json, Value};

use crate::programs::{run_ok, try_run, SKOPEO};
use crate::registry::sha256_digest;
use crate::temp_dir;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// Every manifest type a registry may answer with (an `Accept` header's worth).
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// The index annotation naming a tag in an OCI layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A blob written to a layout: what a manifest or index entry points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Descriptor {
    /// The descriptor as JSON, with extra fields (platform, annotations) merged in.
    pub fn to_json(&self, extra: Value) -> Value {
        let mut value = json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size});
        if let (Some(map), Value::Object(extra)) = (value.as_object_mut(), extra) {
            map.extend(extra);
        }
        value
    }
}

/// The digests inside a buildx-style index: one image and its provenance attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedIndex {
    pub index: String,
    pub image: String,
    pub attestation: String,
}

/// `{"os", "architecture"[, "variant"]}` from `os/arch[/variant]`.
pub fn platform_json(platform: &str) -> Value {
    let parts: Vec<&str> = platform.split('/').collect();
    match parts[..] {
        [os, arch] => json!({"os": os, "architecture": arch}),
        [os, arch, variant] => json!({"os": os, "architecture": arch, "variant": variant}),
        _ => panic!("platform {platform:?} is not os/arch[/variant]"),
    }
}

/// `os/arch[/variant]` of every entry of an image index, in its order.
pub fn index_platforms(index: &Value) -> Vec<String> {
    let entries = index["manifests"].as_array().unwrap_or_else(|| panic!("not an image index: {index}"));
    entries
        .iter()
        .map(|entry| {
            let p = &entry["platform"];
            [&p["os"], &p["architecture"], &p["variant"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

/// Add a one-layer image for `platform` (`linux/arm/v7`) to the OCI layout at `dir`
/// (created if needed) under `tag`, replacing an older `tag`; its manifest digest. Its
/// layer holds `hello.txt` saying `hello from linux/arm/v7`.
pub fn oci_layout_image(dir: &Path, tag: &str, platform: &str) -> String {
    let image = write_image(dir, platform);
    set_tag(dir, tag, image.to_json(json!({"platform": platform_json(platform)})));
    image.digest
}

/// Add, under `tag`, an image index as buildx pushes it with provenance on: the image for
/// `platform` plus an attestation manifest (platform unknown/unknown, annotated
/// `vnd.docker.reference.type: attestation-manifest` and the image's digest) whose one
/// layer is an in-toto SLSA provenance statement about the image.
pub fn oci_layout_attested_index(dir: &Path, tag: &str, platform: &str) -> AttestedIndex {
    let image = write_image(dir, platform);
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "_", "digest": {"sha256": image.digest.trim_start_matches("sha256:")}}],
        "predicate": {"builder": {"id": "castoff-tests"}, "buildType": "https://mobyproject.org/buildkit@v1"},
    });
    let layer = write_blob(dir, IN_TOTO, &to_bytes(&statement));
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
    });
    let config = write_blob(dir, OCI_CONFIG, &to_bytes(&config));
    let annotations = json!({"annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}});
    let attestation = write_manifest(dir, &config, vec![layer.to_json(annotations)]);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            image.to_json(json!({"platform": platform_json(platform)})),
            attestation.to_json(json!({
                "platform": {"architecture": "unknown", "os": "unknown"},
                "annotations": {
                    "vnd.docker.reference.digest": image.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
            })),
        ],
    });
    let index = write_blob(dir, OCI_INDEX, &to_bytes(&index));
    set_tag(dir, tag, index.to_json(json!({})));
    AttestedIndex { index: index.digest, image: image.digest, attestation: attestation.digest }
}

/// The image for `platform`: its layer, config and manifest blobs written to `dir`.
fn write_image(dir: &Path, platform: &str) -> Descriptor {
    let tar = layer_tar(&format!("hello from {platform}\n"));
    let diff_id = sha256_digest(&tar);
    let layer = write_blob(dir, OCI_LAYER_GZIP, &gzip(&tar));
    let mut config = platform_json(platform);
    let fields = json!({
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "castoff tests (tests/support/images.rs)"}],
    });
    if let (Some(map), Value::Object(fields)) = (config.as_object_mut(), fields) {
        map.extend(fields);
    }
    let config = write_blob(dir, OCI_CONFIG, &to_bytes(&config));
    write_manifest(dir, &config, vec![layer.to_json(json!({}))])
}

fn write_manifest(dir: &Path, config: &Descriptor, layers: Vec<Value>) -> Descriptor {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(json!({})),
        "layers": layers,
    });
    write_blob(dir, OCI_MANIFEST, &to_bytes(&manifest))
}

/// A tar holding one file, `hello.txt`, with fixed owner, mode and mtime.
fn layer_tar(text: &str) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, "hello.txt", text.as_bytes()).expect("append to an in-memory tar");
    builder.into_inner().expect("finish an in-memory tar")
}

/// gzip with no name and mtime 0, so equal input gives equal bytes.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = GzBuilder::new().mtime(0).write(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}

/// Store `bytes` under `blobs/sha256/` of the layout at `dir`, creating the layout.
fn write_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Descriptor {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("create {}: {e}", blobs.display()));
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        fs::write(&layout, r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    }
    let digest = sha256_digest(bytes);
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    Descriptor { media_type: media_type.to_string(), digest, size: bytes.len() as u64 }
}

/// Point `tag` in the layout's index.json at `entry`, dropping an older `tag`.
fn set_tag(dir: &Path, tag: &str, mut entry: Value) {
    let path = dir.join("index.json");
    let mut index: Value = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("index.json is JSON"),
        Err(_) => json!({"schemaVersion": 2, "manifests": []}),
    };
    let manifests = index["manifests"].as_array_mut().expect("index.json has manifests");
    manifests.retain(|m| m["annotations"][REF_NAME] != tag);
    entry["annotations"][REF_NAME] = json!(tag);
    manifests.push(entry);
    fs::write(&path, to_bytes(&index)).expect("write index.json");
}

/// The manifest format skopeo writes to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OCI media types, bytes as in the layout (digests preserved).
    Oci,
    /// Docker schema 2 media types (`--format v2s2`); digests change.
    V2s2,
}

impl Format {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Format::Oci => &["--format", "oci", "--preserve-digests"],
            Format::V2s2 => &["--format", "v2s2"],
        }
    }
}

/// Push `tag` of the layout at `layout` to `dest` (`HOST/repo:tag`) over plain HTTP in
/// `format`; the pushed manifest's digest.
pub fn push_with_skopeo(layout: &Path, tag: &str, dest: &str, format: Format) -> String {
    try_skopeo_push(layout, tag, dest, format.flags()).unwrap_or_else(|failure| panic!("{failure}"))
}

/// Push the index under `tag` with every image it lists, digests unchanged
/// (`skopeo copy --all --preserve-digests`); the index digest.
pub fn push_index_with_skopeo(layout: &Path, tag: &str, dest: &str) -> String {
    try_skopeo_push(layout, tag, dest, &["--all", "--preserve-digests"]).unwrap_or_else(|failure| panic!("{failure}"))
}

/// `skopeo copy FLAGS oci:LAYOUT:TAG docker://DEST` over plain HTTP: the pushed digest,
/// or what skopeo said when it failed. Pass `--dest-creds user:pass` in `flags` for auth.
pub fn try_skopeo_push(layout: &Path, tag: &str, dest: &str, flags: &[&str]) -> Result<String, String> {
    let work = temp_dir();
    let digest_file = work.path().join("digest");
    let mut command = SKOPEO.command();
    command.args(["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--digestfile"]);
    command.arg(&digest_file).args(flags);
    command.arg(format!("oci:{}:{tag}", layout.display())).arg(format!("docker://{dest}"));
    try_run(&mut command)?;
    let digest = fs::read_to_string(&digest_file).map_err(|e| format!("skopeo wrote no --digestfile: {e}"))?;
    Ok(digest.trim().to_string())
}

/// The manifest or index at `reference` (`HOST/repo:tag` or `@digest`), exactly as stored.
pub fn skopeo_inspect_raw(reference: &str) -> Value {
    serde_json::from_str(&skopeo_raw(reference)).unwrap_or_else(|e| panic!("{reference}'s manifest is not JSON: {e}"))
}

/// The digest of the manifest or index at `reference` (of its exact bytes).
pub fn skopeo_digest(reference: &str) -> String {
    sha256_digest(skopeo_raw(reference).as_bytes())
}

fn skopeo_raw(reference: &str) -> String {
    let mut command = SKOPEO.command();
    command.args(["inspect", "--raw", "--tls-verify=false"]).arg(format!("docker://{reference}"));
    run_ok(&mut command)
}

/// The image config at a skopeo transport reference (`docker://HOST/repo:tag` or
/// `oci:DIR:TAG`), as `skopeo inspect --config` prints it.
pub fn skopeo_inspect_config(transport_reference: &str) -> Value {
    let mut command = SKOPEO.command();
    command.args(["inspect", "--config"]);
    if transport_reference.starts_with("docker://") {
        command.arg("--tls-verify=false");
    }
    command.arg(transport_reference);
    let text = run_ok(&mut command);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{transport_reference}'s config is not JSON: {e}"))
}

/// The raw manifest at a skopeo transport reference.
pub fn skopeo_inspect_raw_at(transport_reference: &str) -> Value {
    let mut command = SKOPEO.command();
    command.args(["inspect", "--raw"]);
    if transport_reference.starts_with("docker://") {
        command.arg("--tls-verify=false");
    }
    command.arg(transport_reference);
    let text = run_ok(&mut command);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{transport_reference}'s manifest is not JSON: {e}"))
}
