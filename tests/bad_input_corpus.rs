//! The bad-input corpus: every directory under `tests/bad-inputs/` is one broken project
//! (VERSION, castoff.toml, platforms, image references, nuspecs, packages, credentials)
//! and a `case.toml` saying which command must reject it and how. Each case must give
//! exit 2, an error naming the file (and the line and key when given) with a hint, the
//! same as JSON with `--json`, and leave every file of the repository as it was.
//!
//! Adding a case is adding a directory. `case.toml`:
//!
//! ```toml
//! args = ["release", "--dry-run"]          # the castoff command
//! expect_file = "castoff.toml"             # the file the error names
//! expect_line = 7                          # optional
//! expect_key = "image.platforms"           # optional
//! mentions = ["v7", "hint text part"]      # stderr must contain each (what and the fix)
//! forbidden = ["hunter2"]                  # optional: must appear in neither stdout nor stderr
//! max_output = 4096                        # optional: bytes of stdout + stderr, at most
//! env = { DOCKER_CONFIG = "{case}/docker" }  # optional; {case} = the repository's root
//! location = "message"                     # optional: the file is named in the message,
//!                                          # the error has no location (outside the project)
//! registry = true                          # optional: {registry} in the case's files and env
//!                                          # is a local registry that asks for credentials
//! known_gap = "what castoff does wrong"    # optional: counted and printed, not failed
//!
//! [[zip]]                                  # optional: a generated package
//! path = "dist/nuget/App.1.2.3.nupkg"
//! nupkg = { id = "App", version = "1.2.3", nuspec_padding = 0 }   # the OPC parts and nuspec
//! entries = [{ name = "lib/x.dll", text = "MZ", declared_size = 4294967294 }]
//! ```
//!
//! The category of a case is its name up to the first `-`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::support::{self, check_rejected_env, Loc, TempRepo};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    args: Vec<String>,
    expect_file: Option<String>,
    expect_line: Option<u64>,
    expect_key: Option<String>,
    #[serde(default)]
    mentions: Vec<String>,
    #[serde(default)]
    forbidden: Vec<String>,
    /// At most this many bytes of stdout plus stderr, with and without `--json`.
    max_output: Option<usize>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    location: Option<String>,
    #[serde(default)]
    registry: bool,
    known_gap: Option<String>,
    #[serde(default)]
    zip: Vec<ZipSpec>,
}

/// A zip written into the case's repository before it is committed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZipSpec {
    path: String,
    nupkg: Option<NupkgSpec>,
    #[serde(default)]
    entries: Vec<EntrySpec>,
}

/// The parts every NuGet package has: content types, relationships, core properties
/// and a nuspec with this id and version (padded with this many spaces).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NupkgSpec {
    id: String,
    version: String,
    #[serde(default)]
    nuspec_padding: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntrySpec {
    name: String,
    #[serde(default)]
    text: String,
    /// Claim this uncompressed size in the zip's headers, whatever the real one.
    declared_size: Option<u32>,
}

enum Outcome {
    Rejected,
    Wrong(String),
    Gap { gap: String, complaint: String },
    GapFixed(String),
}

/// Variables set empty for every case unless the case sets them.
const HERMETIC: [&str; 2] = ["CASTOFF_REGISTRY_USERNAME", "CASTOFF_REGISTRY_PASSWORD"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs")
}

/// Every case, in name order.
fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read tests/bad-inputs")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_bad_input_is_rejected() {
    let dirs = case_dirs();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get()).min(8);
    let mut outcomes: Vec<(String, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(dir) = dirs.get(index) else { break };
                        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                        done.push((name, run_case(dir)));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a case runner panicked")).collect()
    });
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    report(&outcomes);
}

fn report(outcomes: &[(String, Outcome)]) {
    let mut by_category: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let (mut rejected, mut wrong, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    for (name, outcome) in outcomes {
        let category = name.split('-').next().unwrap_or(name);
        let counts = by_category.entry(category).or_default();
        counts.0 += 1;
        match outcome {
            Outcome::Rejected => {
                counts.1 += 1;
                rejected.push(name);
            }
            Outcome::GapFixed(gap) => {
                counts.1 += 1;
                rejected.push(name);
                println!("KNOWN GAP NOW REJECTED CORRECTLY: [{name}] ({gap}); remove `known_gap` from its case.toml");
            }
            Outcome::Wrong(complaint) => wrong.push(format!("[{name}] {complaint}")),
            Outcome::Gap { gap, complaint } => {
                println!("KNOWN GAP: [{name}] {gap}\n{complaint}\n");
                gaps.push(name);
            }
        }
    }
    for (category, (cases, ok)) in &by_category {
        println!("bad-input corpus: {category}: {cases} cases, {ok} rejected correctly");
    }
    let total = outcomes.len();
    crate::support::count(&format!(
        "bad-input corpus: {total} cases, {} rejected correctly, {} wrong, {} known gaps",
        rejected.len(),
        wrong.len(),
        gaps.len()
    ));
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n\n"));
    assert!(total >= 40, "the corpus has {total} cases; it needs at least 40");
    assert!(rejected.len() >= 40, "only {} cases are rejected correctly; at least 40 must be", rejected.len());
}

fn run_case(dir: &Path) -> Outcome {
    let case = match load(dir) {
        Ok(case) => case,
        Err(problem) => return Outcome::Wrong(problem),
    };
    match (check(dir, &case).err(), case.known_gap) {
        (None, None) => Outcome::Rejected,
        (None, Some(gap)) => Outcome::GapFixed(gap),
        (Some(complaint), None) => Outcome::Wrong(complaint),
        (Some(complaint), Some(gap)) => Outcome::Gap { gap, complaint },
    }
}

fn load(dir: &Path) -> Result<Case, String> {
    let path = dir.join("case.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match case.location.as_deref() {
        None | Some("file") if case.expect_file.is_none() => {
            Err(format!("{}: `expect_file` is required unless location = \"message\"", path.display()))
        }
        None | Some("file") | Some("message") => Ok(case),
        Some(other) => Err(format!("{}: location = {other:?}; use \"file\" or \"message\"", path.display())),
    }
}

/// Set the case up in a fresh repository and check castoff rejects it as it must.
fn check(dir: &Path, case: &Case) -> Result<(), String> {
    let repo = TempRepo::new();
    let registry = case.registry.then(fake_registry);
    let fill = |text: &str| {
        let text = text.replace("{case}", repo.path().to_str().unwrap());
        match registry {
            Some(host) => text.replace("{registry}", host),
            None => text,
        }
    };
    copy_tree(dir, Path::new(""), &repo, registry)?;
    for spec in &case.zip {
        write_zip(&repo, spec)?;
    }
    repo.commit_all();

    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    // Credentials from the environment running the tests would take the place of the
    // case's docker config: castoff ignores these variables when empty.
    let mut env: BTreeMap<String, String> = HERMETIC.iter().map(|name| (name.to_string(), String::new())).collect();
    env.extend(case.env.iter().map(|(k, v)| (k.clone(), fill(v))));
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut mentions: Vec<&str> = case.mentions.iter().map(String::as_str).collect();
    let loc = match case.location.as_deref() {
        Some("message") => {
            mentions.extend(case.expect_file.as_deref());
            None
        }
        _ => {
            let file: &'static str = leak(case.expect_file.as_deref().unwrap_or_default());
            let mut loc = Loc::file(file);
            if let Some(line) = case.expect_line {
                loc = loc.line(line);
            }
            if let Some(key) = &case.expect_key {
                loc = loc.key(leak(key));
            }
            Some(loc)
        }
    };
    check_rejected_env(&repo, &args, &env, loc, &mentions)?;
    if !case.forbidden.is_empty() || case.max_output.is_some() {
        for args in [args.clone(), support::with_json(&args)] {
            let output = repo.castoff(&args).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
            let shown =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            if let Some(secret) = case.forbidden.iter().find(|secret| shown.contains(secret.as_str())) {
                return Err(format!("`castoff {}` repeated {secret:?}:\n{shown}", args.join(" ")));
            }
            if let Some(max) = case.max_output.filter(|max| shown.len() > *max) {
                let start: String = shown.chars().take(300).collect();
                return Err(format!(
                    "`castoff {}` printed {} bytes, more than {max}; it starts:\n{start}",
                    args.join(" "),
                    shown.len()
                ));
            }
        }
    }
    Ok(())
}

/// `Loc` holds `&'static str`s; a test process can afford these few strings.
fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

/// Copy the case's files (not case.toml) into the repository, `{registry}` replaced in
/// text files when the case uses the registry.
fn copy_tree(dir: &Path, rel: &Path, repo: &TempRepo, registry: Option<&str>) -> Result<(), String> {
    let mut entries: Vec<_> = fs::read_dir(dir.join(rel)).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        if rel == Path::new("case.toml") {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(dir, &rel, repo, registry)?;
        } else if kind.is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            let bytes = match (registry, String::from_utf8(bytes)) {
                (Some(host), Ok(text)) => text.replace("{registry}", host).into_bytes(),
                (_, Ok(text)) => text.into_bytes(),
                (_, Err(e)) => e.into_bytes(),
            };
            repo.write(rel.to_str().unwrap(), bytes);
        } else {
            return Err(format!("{}: only files and directories can be copied", entry.path().display()));
        }
    }
    Ok(())
}

fn write_zip(repo: &TempRepo, spec: &ZipSpec) -> Result<(), String> {
    let mut entries: Vec<(String, Vec<u8>, Option<u32>)> = Vec::new();
    if let Some(nupkg) = &spec.nupkg {
        entries.extend(opc_parts(nupkg).into_iter().map(|(name, bytes)| (name, bytes, None)));
    }
    for entry in &spec.entries {
        entries.retain(|(name, _, _)| *name != entry.name);
        entries.push((entry.name.clone(), entry.text.clone().into_bytes(), entry.declared_size));
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes, _) in &entries {
        zip.start_file(name.as_str(), options).map_err(|e| format!("zip {}: {e}", spec.path))?;
        zip.write_all(bytes).unwrap();
    }
    let mut bytes = zip.finish().map_err(|e| format!("zip {}: {e}", spec.path))?.into_inner();
    for (name, _, declared) in &entries {
        if let Some(size) = declared {
            declare_size(&mut bytes, name, *size).map_err(|e| format!("zip {}: {e}", spec.path))?;
        }
    }
    repo.write(&spec.path, bytes);
    Ok(())
}

/// Claim `size` as the uncompressed size of `name` in its local and central headers.
fn declare_size(zip: &mut [u8], name: &str, size: u32) -> Result<(), String> {
    let mut patched = 0;
    // (signature, offset of the uncompressed size, offset of the name length, header length)
    for (signature, size_at, name_len_at, fixed) in [(b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)] {
        let mut at = 0;
        while let Some(found) = zip[at..].windows(4).position(|w| w == signature) {
            let start = at + found;
            at = start + 4;
            if start + fixed > zip.len() {
                break;
            }
            let len = u16::from_le_bytes([zip[start + name_len_at], zip[start + name_len_at + 1]]) as usize;
            if zip.get(start + fixed..start + fixed + len) == Some(name.as_bytes()) {
                zip[start + size_at..start + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
        }
    }
    match patched {
        2 => Ok(()),
        n => Err(format!("found {n} headers of `{name}`, expected 2")),
    }
}

/// A minimal, valid NuGet package's own parts.
fn opc_parts(spec: &NupkgSpec) -> Vec<(String, Vec<u8>)> {
    let NupkgSpec { id, version, nuspec_padding } = spec;
    let types = r#"<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" /><Default Extension="nuspec" ContentType="application/octet" /><Default Extension="psmdcp" ContentType="application/vnd.openxmlformats-package.core-properties+xml" /><Default Extension="dll" ContentType="application/octet" /></Types>"#;
    let rels = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/{id}.nuspec" Id="R0" /><Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="/package/services/metadata/core-properties/0123456789abcdef0123456789abcdef.psmdcp" Id="R1" /></Relationships>"#
    );
    let core = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"><dc:creator>castoff tests</dc:creator><dc:identifier>{id}</dc:identifier><version>{version}</version></coreProperties>"#
    );
    let nuspec = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  \
         <metadata>\n    <id>{id}</id>\n    <version>{version}</version>\n    <authors>castoff tests</authors>\n    \
         <description>Packed by hand</description>\n  </metadata>\n{}</package>\n",
        " ".repeat(*nuspec_padding)
    );
    vec![
        ("[Content_Types].xml".into(), types.as_bytes().to_vec()),
        ("_rels/.rels".into(), rels.into_bytes()),
        ("package/services/metadata/core-properties/0123456789abcdef0123456789abcdef.psmdcp".into(), core.into_bytes()),
        (format!("{id}.nuspec"), nuspec.into_bytes()),
    ]
}

/// A local registry that answers every request 401 with a Basic challenge, so castoff
/// looks up credentials; its `host:port`.
fn fake_registry() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake registry");
        let host = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer_401(stream));
            }
        });
        host
    })
}

fn answer_401(mut stream: std::net::TcpStream) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
    let reply = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"castoff corpus\"\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}
