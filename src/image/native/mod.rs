//! The daemonless builder: each platform's image is a base image plus one layer holding
//! the files `[image.native]` lists (typically a cross-compiled binary per platform),
//! assembled and pushed by castoff itself. No Docker, no buildah, no RUN steps.
//!
//! - `layer.rs`: the reproducible tar.gz of the files, hashed as it is written;
//! - `cache.rs`: layers by inputs, so an unchanged rebuild reads no file;
//! - `base.rs`: the base image's manifest and config (scratch, OCI layout, registry);
//! - `config.rs`: the image config and manifest bytes;
//! - `push.rs`: into a registry or an OCI layout, skipping what is already there.

mod base;
mod cache;
mod config;
mod layer;
mod push;

use std::path::{Component, Path};
use std::sync::atomic::Ordering;

use super::layout::OciLayout;
use super::{BuildContext, Builder, Built, ImageStatus, Job, Preflight, Target};
use crate::config::{BuilderKind, NativeBase, NativeConfig, NativeFile, OutputTarget};
use crate::error::{Error, Location, Result};
use crate::platform::Platform;
use crate::registry::Client;
use cache::{CachedLayer, Input, LayerCache};
use layer::{LayerFile, Parents};

pub struct Native;

/// How a build attempt ended: done, or a cached layer turned out corrupt (then the
/// cache entry is dropped and the build runs once more without it).
enum Outcome {
    Done(Built),
    CorruptCache,
}

impl Builder for Native {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Native
    }

    /// Its first step is a HEAD of each platform's tag: no separate registry check.
    fn slow(&self) -> bool {
        false
    }

    /// `[image.native]` is configured, every file exists for every platform, the
    /// destinations fit together, and an OCI layout base has an image for each platform.
    fn preflight(&self, jobs: &[Job], ctx: &Preflight<'_>) -> Result<()> {
        let native = native_config(ctx.image.build.native.as_ref(), ctx.shown_config)?;
        let dsts: Vec<&str> = native.files.iter().map(|f| f.dst.as_str()).collect();
        layer::check_destinations(&dsts).map_err(|e| match e {
            Error::Usage { problem, hint } => {
                Error::invalid(Location::file(ctx.shown_config).with_key("image.native.files.dst"), problem, hint)
            }
            other => other,
        })?;
        for job in jobs {
            for file in &native.files {
                check_source(ctx, file, &job.platform)?;
            }
        }
        // Layouts are refused as symlinks (or below a symlinked parent out of the
        // project), named by their key, before anything is built.
        if let (true, OutputTarget::OciLayout(dir)) = (ctx.push, ctx.output) {
            OciLayout::check_location(ctx.root, dir, ctx.shown_config, "image.output")?;
        }
        if let NativeBase::OciLayout { dir, .. } = &native.base {
            let at_key = |e| match e {
                Error::Usage { problem, hint } => {
                    Error::invalid(Location::file(ctx.shown_config).with_key("image.native.base"), problem, hint)
                }
                other => other,
            };
            OciLayout::open(ctx.root, dir).map_err(at_key)?;
            for job in jobs {
                base::resolve(&native.base, ctx.root, &job.platform, None).map_err(at_key)?;
            }
        }
        Ok(())
    }

    fn plan(&self, job: &Job, ctx: &Preflight<'_>) -> Vec<String> {
        let Some(native) = ctx.image.build.native.as_ref() else {
            return vec!["native: [image.native] is not configured".into()];
        };
        let mut planned = vec![format!("native {}: base {}", job.platform, base::describe(&native.base))];
        for file in &native.files {
            let src = expand_src(&file.src, &job.platform, ctx.version).unwrap_or_else(|_| file.src.clone());
            let mode = match file.mode {
                Some(mode) => format!("{mode:04o}"),
                None => match std::fs::metadata(ctx.root.join(&src)) {
                    Ok(meta) => {
                        format!("{:04o}", layer::effective_mode(None, std::os::unix::fs::MetadataExt::mode(&meta)))
                    }
                    Err(_) => "0755 or 0644, from the file".into(),
                },
            };
            planned.push(format!("native {}: layer {src} -> {} ({mode})", job.platform, file.dst));
        }
        let target = match (ctx.push, ctx.output) {
            (false, _) => format!("build into {} only (--no-push)", cache::CACHE_DIR),
            (true, OutputTarget::Registry) => format!("push {}", job.reference),
            (true, OutputTarget::OciLayout(dir)) => format!("write oci-layout:{dir}:{}", job.tag),
        };
        planned.push(format!("native {}: {target}", job.platform));
        planned
    }

    fn build(&self, job: &Job, ctx: &BuildContext<'_>) -> Result<Built> {
        let native = native_config(ctx.image.build.native.as_ref(), ctx.shown_config)?;
        let inputs = inputs(native, job, ctx)?;
        check_cancel(job, ctx)?;
        let cache = LayerCache::open(ctx.root)?;
        let result = build_with(native, job, ctx, &inputs, &cache);
        cache.release();
        result
    }
}

/// The build, with a second attempt when a cached layer turns out corrupt.
fn build_with(
    native: &NativeConfig,
    job: &Job,
    ctx: &BuildContext<'_>,
    inputs: &[Input],
    cache: &LayerCache,
) -> Result<Built> {
    // A registry base is read with the target's client when the target is a registry
    // (also what `--no-push` passes), else with one following [network] like it. With
    // `ctx.push` false the target itself is never touched.
    let owned_client;
    let client: Option<&Client> = match (ctx.target, &native.base) {
        (Target::Registry(client), _) => Some(client),
        (Target::Layout(_), NativeBase::Registry(_)) => {
            owned_client = crate::image::registry_client(ctx.image, ctx.network);
            Some(&owned_client)
        }
        (Target::Layout(_), _) => None,
    };
    let base = base::resolve(&native.base, ctx.root, &job.platform, client)?;
    if !matches!(native.base, NativeBase::Scratch) {
        (ctx.log)(&format!("base {}", base.description));
    }
    // Parent directory entries only over scratch: over a base they would replace the
    // base's own directories (/tmp's 1777 with 0755) when the layers are stacked.
    let parents = match base.origin {
        base::Origin::Scratch => Parents::Listed,
        _ => Parents::Implied,
    };
    let key = LayerCache::key(&job.platform, inputs, parents);
    let mut fresh = false;
    loop {
        check_cancel(job, ctx)?;
        let layer = match fresh {
            false => cache.lookup(&key, inputs),
            true => None,
        };
        let layer = match layer {
            Some(layer) => layer,
            None => cache.build(&key, &job.platform, inputs, parents)?,
        };
        log_layer(ctx, &layer);
        let image = config::assemble(job, native, &base, &layer.layer)?;
        if !ctx.push {
            return Ok(Built { digest: Some(image.manifest_digest), status: ImageStatus::Built });
        }
        check_cancel(job, ctx)?;
        let outcome = match ctx.target {
            Target::Registry(client) => push::to_registry(client, job, &base, &layer, &image, ctx)?,
            Target::Layout(layout) => push::to_layout(layout, client, job, &base, &layer, &image, ctx)?,
        };
        match outcome {
            Outcome::Done(built) => return Ok(built),
            Outcome::CorruptCache if !fresh => {
                (ctx.log)(&format!("cached layer {} is corrupt; building it again", layer.layer.digest));
                cache.forget(&key, &layer.layer.digest);
                fresh = true;
            }
            Outcome::CorruptCache => {
                return Err(Error::Internal(format!(
                    "the layer {} just built does not match its digest",
                    layer.layer.digest
                )))
            }
        }
    }
}

fn log_layer(ctx: &BuildContext<'_>, layer: &CachedLayer) {
    let how = if layer.hit { "cached" } else { "built" };
    (ctx.log)(&format!("layer {} ({}, {how})", layer.layer.digest, size_text(layer.layer.size)));
}

/// `20.0 MiB`, `512 B`.
fn size_text(size: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if size < 1024 {
        return format!("{size} B");
    }
    let mut value = size as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Stop early when another platform failed.
fn check_cancel(job: &Job, ctx: &BuildContext<'_>) -> Result<()> {
    match ctx.cancel.load(Ordering::Relaxed) {
        false => Ok(()),
        true => Err(Error::Failed {
            problem: format!("the {} build stopped because another platform failed", job.platform),
            hint: "see the first error".into(),
        }),
    }
}

fn native_config<'a>(native: Option<&'a NativeConfig>, shown_config: &Path) -> Result<&'a NativeConfig> {
    native.ok_or_else(|| {
        Error::usage(
            format!("the native builder needs an [image.native] table in {}", shown_config.display()),
            "add one, e.g.\n  [image.native]\n  base = \"scratch\"\n  \
             files = [{ src = \"dist/{suffix}/app\", dst = \"/usr/local/bin/app\", mode = \"0755\" }]\n  \
             entrypoint = [\"/usr/local/bin/app\"]",
        )
    })
}

/// `file.src` for `platform`: `{suffix}`, `{os}`, `{arch}`, `{variant}` (empty when the
/// platform has none) and `{version}` filled in.
fn expand_src(template: &str, platform: &Platform, version: &semver::Version) -> Result<String> {
    let platform = platform.normalized();
    crate::placeholders::expand(template, |name| match name {
        "suffix" => Some(platform.suffix()),
        "os" => Some(platform.os.clone()),
        "arch" => Some(platform.architecture.clone()),
        "variant" => Some(platform.variant.clone().unwrap_or_default()),
        "version" => Some(version.to_string()),
        _ => None,
    })
    .map_err(|e| Error::Internal(format!("[image.native] files src `{template}` passed validation but: {e:?}")))
}

/// The layer inputs of `job`, sources expanded and made absolute.
fn inputs(native: &NativeConfig, job: &Job, ctx: &BuildContext<'_>) -> Result<Vec<Input>> {
    native
        .files
        .iter()
        .map(|file| {
            let shown = expand_src(&file.src, &job.platform, ctx.version)?;
            check_relative(&shown, &file.src, &job.platform, ctx.shown_config)?;
            Ok(Input { file: LayerFile { src: ctx.root.join(&shown), dst: file.dst.clone(), mode: file.mode }, shown })
        })
        .collect()
}

/// The expanded source is a plain relative path: placeholders cannot lead outside.
fn check_relative(shown: &str, template: &str, platform: &Platform, shown_config: &Path) -> Result<()> {
    let inside = Path::new(shown).components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    match inside && !shown.is_empty() {
        true => Ok(()),
        false => Err(Error::invalid(
            Location::file(shown_config).with_key("image.native.files.src"),
            format!("`{template}` becomes `{shown}` for {platform}, which is not a path inside the project"),
            "give a project-relative path to a file",
        )),
    }
}

/// One file of `[image.native]` exists, for `platform`, as a regular file inside the
/// project.
fn check_source(ctx: &Preflight<'_>, file: &NativeFile, platform: &Platform) -> Result<()> {
    let shown = expand_src(&file.src, platform, ctx.version)?;
    check_relative(&shown, &file.src, platform, ctx.shown_config)?;
    let at = || Location::file(ctx.shown_config).with_key("image.native.files.src");
    let from = match shown == file.src {
        true => String::new(),
        false => format!(" (`{}` for {platform})", file.src),
    };
    let path = ctx.root.join(&shown);
    let problem = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => None,
        Ok(_) => Some(format!("{shown}{from} is not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("{shown}{from} does not exist")),
        Err(e) => Some(format!("{shown}{from} cannot be read: {e}")),
    };
    if let Some(problem) = problem {
        return Err(Error::invalid(
            at(),
            format!("{problem}; the {platform} image needs it"),
            format!(
                "build {shown} before `castoff build`, or correct `src` in [image.native] files \
                 (placeholders: {{suffix}} {{os}} {{arch}} {{variant}} {{version}}; {platform} has suffix `{}`)",
                platform.suffix()
            ),
        ));
    }
    if let (Ok(root), Ok(real)) = (ctx.root.canonicalize(), path.canonicalize()) {
        if !real.starts_with(&root) {
            return Err(Error::invalid(
                at(),
                format!("{shown}{from} resolves to {}, outside the project", real.display()),
                format!("make {shown} a regular file inside the project, not a symlink out of it"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
