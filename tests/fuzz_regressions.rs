//! The fuzz targets' seeds and every crash the fuzzer ever found, run on stable Rust.
//!
//! `cargo xtask fuzz` runs libFuzzer on nightly for minutes; this runs the inputs that
//! matter in milliseconds on every `cargo test`: each file in `fuzz/corpus/<target>/`
//! (the seeds) and `fuzz/regressions/<target>/` (crashes, copied there by
//! `cargo xtask fuzz`) goes through the same `castoff::fuzzing::<target>` function the
//! fuzz target calls, so a crash stays fixed once fixed.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("version_file", castoff::fuzzing::version_file),
    ("config", castoff::fuzzing::config),
    ("reference", castoff::fuzzing::reference),
    ("platform", castoff::fuzzing::platform),
    ("nuspec", castoff::fuzzing::nuspec),
    ("www_authenticate", castoff::fuzzing::www_authenticate),
];

/// The regular files directly in `dir` (none when it does not exist), dotfiles skipped.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("read fuzz input directory").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

#[test]
fn seeds_and_past_crashes_pass_every_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    let mut empty = Vec::new();
    let mut failed = Vec::new();
    for (name, target) in TARGETS {
        let files: Vec<PathBuf> =
            ["corpus", "regressions"].iter().flat_map(|kind| inputs(&fuzz.join(kind).join(name))).collect();
        if files.is_empty() {
            empty.push(*name);
        }
        total += files.len();
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
            if panic::catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&file).display().to_string();
                failed.push(shown);
            }
        }
    }
    crate::support::count(&format!("fuzz regressions: {total} inputs across {} targets", TARGETS.len()));
    assert!(empty.is_empty(), "no seed or regression inputs for fuzz target(s): {}", empty.join(", "));
    assert!(
        failed.is_empty(),
        "{} fuzz input(s) fail their target (the panics are printed above); reproduce one with \
         `cargo +nightly fuzz run <target> <file>` in fuzz/:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
}
