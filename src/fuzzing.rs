//! Fuzz targets: one function per parser that reads text castoff does not control
//! (VERSION, castoff.toml, image references, platforms, nuspecs, `WWW-Authenticate`).
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `castoff::fuzzing::<name>` under libFuzzer
//! (`cargo xtask fuzz`), and `tests/fuzz_regressions.rs` runs every seed in
//! `fuzz/corpus/<name>/` and every crash ever found in `fuzz/regressions/<name>/` through
//! the same functions on stable Rust, so a fixed crash stays fixed.
//!
//! Each function accepts any bytes and panics only when a property fails: beyond "does
//! not panic", what parses must survive a round trip through its canonical form, and
//! what is refused must say how to fix it (a non-empty hint). Not a stable API.

use std::path::Path;

use crate::config::Config;
use crate::nuget::nuspec;
use crate::platform::Platform;
use crate::registry::challenge;
use crate::registry::reference::{Reference, NAME_MAX};
use crate::version::file::{parse as parse_version_file, parse_version, LineEnding, VersionFile};

/// VERSION bytes: a version that parses renders (BOM and line ending kept) to bytes that
/// parse to the same version, BOM and line ending; its plain `Display` re-parses equal.
pub fn version_file(data: &[u8]) {
    match parse_version_file(data) {
        Ok((version, bom, line_ending)) => {
            let file = VersionFile { path: "VERSION".into(), version: version.clone(), bom, line_ending };
            let rendered = file.render(&version);
            let again = parse_version_file(rendered.as_bytes())
                .unwrap_or_else(|(problem, _)| panic!("rendered {rendered:?} does not re-parse: {problem}"));
            assert_eq!(again, (version.clone(), bom, line_ending), "rendered {rendered:?} re-parses differently");
            if line_ending == LineEnding::None {
                assert!(!rendered.contains('\n'), "no line ending, yet {rendered:?} has one");
            }
            let shown = version.to_string();
            let plain =
                parse_version(&shown).unwrap_or_else(|(problem, _)| panic!("`{shown}` does not re-parse: {problem}"));
            assert_eq!(plain, version, "`{shown}` re-parses differently");
        }
        Err((problem, hint)) => assert_explained(&problem, &hint),
    }
}

/// castoff.toml text: parsing never panics; a refusal has a hint and, when it names a
/// line, a line that exists; an accepted `[image]` holds a canonical reference and
/// normalised platforms.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, Path::new("castoff.toml")) {
        Ok(config) => {
            if let Some(image) = &config.image {
                for reference in [&image.name, &image.platform_name] {
                    assert_canonical_reference(reference);
                }
                for platform in &image.platforms {
                    assert_eq!(&platform.normalized(), platform, "config platform {platform} is not normalised");
                }
            }
        }
        Err(err) => {
            let hint = err.hint().unwrap_or_default();
            assert_explained(&err.to_string(), &hint);
            if let Some(line) = err.location().and_then(|location| location.line) {
                let lines = text.split('\n').count();
                assert!((1..=lines).contains(&line), "error at line {line} of a {lines}-line file: {err}");
            }
        }
    }
}

/// An image reference: what parses is canonical (its `Display` re-parses to the same
/// value) and within the registry's length limit; a refusal has a hint.
pub fn reference(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Reference::parse(text) {
        Ok(reference) => assert_canonical_reference(&reference),
        Err(err) => assert_explained(err.problem(), err.hint()),
    }
}

/// A platform: what parses is normalised, its `Display` re-parses to itself, case does
/// not matter, and its tag suffix is not empty; a refusal has a hint.
pub fn platform(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Platform::parse(text) {
        Ok(platform) => {
            assert_eq!(platform.normalized(), platform, "`{text}` parses to {platform:?}, which is not normalised");
            let shown = platform.to_string();
            let again =
                Platform::parse(&shown).unwrap_or_else(|e| panic!("`{shown}` does not re-parse: {}", e.problem()));
            assert_eq!(again, platform, "`{shown}` re-parses differently");
            assert!(platform.matches(&again));
            assert!(!platform.suffix().is_empty(), "{platform} has an empty tag suffix");
            let upper = Platform::parse(&text.to_ascii_uppercase()).ok();
            assert_eq!(upper.as_ref(), Some(&platform), "`{text}` in upper case parses differently");
        }
        Err(err) => assert_explained(err.problem(), err.hint()),
    }
}

/// Nuspec bytes through decode, `$version$` substitution and parse, as `castoff pack`
/// reads them. What parses must still parse, with the same fields, once rewritten for
/// the nupkg (no `<files>`) and for the snupkg (package type `SymbolsPackage`).
pub fn nuspec(data: &[u8]) {
    let shown = Path::new("App.nuspec");
    let parsed = nuspec::decode(data, shown)
        .and_then(|text| nuspec::substitute(&text, "1.2.3", shown))
        .and_then(|text| nuspec::parse(text, shown));
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let hint = err.hint().unwrap_or_default();
            return assert_explained(&err.to_string(), &hint);
        }
    };
    for snupkg in [false, true] {
        let packaged = parsed.packaged(snupkg);
        let again = nuspec::parse(packaged.clone(), shown)
            .unwrap_or_else(|e| panic!("packaged (snupkg: {snupkg}) nuspec does not parse: {e}\n{packaged}"));
        let fields = |n: &nuspec::Nuspec| {
            (n.id.value.clone(), n.version.value.clone(), n.authors.value.clone(), n.description.value.clone())
        };
        assert_eq!(fields(&again), fields(&parsed), "packaged (snupkg: {snupkg}) nuspec has other fields\n{packaged}");
        assert_eq!(again.files, None, "packaged (snupkg: {snupkg}) nuspec still has <files>\n{packaged}");
        if snupkg {
            assert_eq!(
                again.package_types,
                [nuspec::SYMBOLS_PACKAGE_TYPE],
                "snupkg nuspec has other package types\n{packaged}"
            );
        } else {
            assert_eq!(again.package_types, parsed.package_types, "nupkg nuspec lost its package types\n{packaged}");
        }
    }
}

/// A `WWW-Authenticate` header value: what parses, written back out in the canonical
/// form (`scheme token68` or `scheme name="value", ...`), parses to the same challenges;
/// an error's offset lies within the header.
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match challenge::parse_challenges(text) {
        Ok(challenges) => {
            for c in &challenges {
                assert!(!c.scheme.is_empty(), "{text:?}: a challenge with an empty scheme");
                assert!(c.is(&c.scheme.to_ascii_uppercase()));
                assert!(c.token68.is_none() || c.params.is_empty(), "{text:?}: token68 and parameters");
                for (name, _) in &c.params {
                    assert!(c.param(&name.to_ascii_uppercase()).is_some(), "{text:?}: parameter {name} not found");
                }
            }
            let written = challenges.iter().map(write_challenge).collect::<Vec<_>>().join(", ");
            let again = challenge::parse_challenges(&written)
                .unwrap_or_else(|e| panic!("{text:?} written as {written:?} does not re-parse: {e}"));
            assert_eq!(again, challenges, "{text:?} written as {written:?} re-parses differently");
        }
        Err(err) => {
            assert!(err.offset <= text.len(), "{text:?}: error offset {} is past the end", err.offset);
            assert!(!err.problem.is_empty());
        }
    }
}

fn write_challenge(c: &challenge::Challenge) -> String {
    if let Some(token68) = &c.token68 {
        return format!("{} {token68}", c.scheme);
    }
    let params: Vec<String> = c
        .params
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    match params.is_empty() {
        true => c.scheme.clone(),
        false => format!("{} {}", c.scheme, params.join(", ")),
    }
}

fn assert_canonical_reference(reference: &Reference) {
    let shown = reference.to_string();
    let again = Reference::parse(&shown).unwrap_or_else(|e| panic!("`{shown}` does not re-parse: {}", e.problem()));
    assert_eq!(&again, reference, "`{shown}` re-parses differently");
    assert_eq!(again.to_string(), shown, "`{shown}` is not canonical");
    assert!(reference.name().len() <= NAME_MAX, "`{shown}` is longer than {NAME_MAX}");
    assert!(!reference.registry.is_empty() && !reference.repository.is_empty(), "`{shown}` has an empty part");
}

fn assert_explained(problem: &str, hint: &str) {
    assert!(!problem.trim().is_empty(), "an error with no problem (hint: {hint:?})");
    assert!(!hint.trim().is_empty(), "error `{problem}` has no hint");
}
