//! The Makefile scenario, `VERSION: app.py requirements.txt`, with the rule
//! judged by content rather than mtime.

use crate::support::{makefile_project, makefile_project_bumped};

/// `castoff init` tracks app.py and requirements.txt, keeps VERSION and records the baseline.
#[test]
fn init_detects_the_sources_and_keeps_version() {
    let repo = makefile_project();
    let config: toml::Value = toml::from_str(&repo.read_string("castoff.toml")).unwrap();
    assert_eq!(config["version"]["file"].as_str(), Some("VERSION"));
    let sources: Vec<&str> =
        config["version"]["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sources, ["app.py", "requirements.txt"]);
    assert_eq!(repo.read("VERSION"), b"0.1.9\n");
    let baseline = repo.baseline();
    assert_eq!(baseline.version, "0.1.9");
    assert_eq!(baseline.paths, ["app.py", "requirements.txt"]);
    let ignored = repo.read_string(".castoff/.gitignore");
    assert!(ignored.lines().any(|l| l.trim_end_matches('/') == "cache"), "{ignored}");
    assert!(ignored.lines().any(|l| l == "lock"), "{ignored}");
}

/// Editing app.py makes `bump auto` raise 0.1.9 to 0.1.10 and name app.py.
#[test]
fn editing_a_source_bumps_the_patch_and_names_it() {
    let repo = makefile_project();
    repo.write("app.py", "print('hello, world')\n");
    let stdout = repo.ok(&["bump", "auto"]);
    assert!(stdout.lines().any(|l| l == "M app.py"), "{stdout}");
    assert!(stdout.contains("0.1.10"), "{stdout}");
    assert!(!stdout.contains("requirements.txt"), "{stdout}");
    assert_eq!(repo.read("VERSION"), b"0.1.10\n");
    assert_eq!(repo.baseline().version, "0.1.10");
}

/// With no source changed since the last bump, `bump auto` exits 0, says so, and leaves VERSION alone.
#[test]
fn bump_auto_without_changes_leaves_version_untouched() {
    let repo = makefile_project_bumped();
    let version = repo.identity("VERSION");
    let tree = repo.tree_hash();
    let stdout = repo.ok(&["bump", "auto"]);
    assert!(stdout.contains("unchanged"), "{stdout}");
    let outcome = repo.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["bumped"], false, "{outcome}");
    assert_eq!(outcome["version"], "0.1.10", "{outcome}");
    assert_eq!(repo.identity("VERSION"), version);
    assert_eq!(repo.tree_hash(), tree);
}

/// Touching every source (newer mtime, same bytes) calls for no bump.
#[test]
fn touching_sources_does_not_bump() {
    let repo = makefile_project_bumped();
    for source in ["app.py", "requirements.txt"] {
        repo.touch_forward(source);
    }
    repo.castoff(["status", "--check"]).assert().code(0);
    let outcome = repo.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["bumped"], false, "{outcome}");
    assert_eq!(repo.read("VERSION"), b"0.1.10\n");
}

/// `bump minor` then `bump major` go 0.1.10 → 0.2.0 → 1.0.0.
#[test]
fn bump_minor_then_major() {
    let repo = makefile_project_bumped();
    for (level, expected) in [("minor", "0.2.0"), ("major", "1.0.0")] {
        let outcome = repo.ok_json(&["bump", level]);
        assert_eq!(outcome["version"], expected, "{outcome}");
        assert_eq!(repo.read_string("VERSION"), format!("{expected}\n"));
        assert_eq!(repo.baseline().version, expected);
    }
}

/// A fresh clone of the committed project, every mtime new, has no bump due.
#[test]
fn fresh_clone_has_no_bump_due() {
    let repo = makefile_project_bumped();
    repo.commit_all();
    let committed = repo.git(&["ls-files"]);
    let committed: Vec<&str> = committed.lines().collect();
    for expected in [".castoff/.gitignore", ".castoff/sources.lock", "castoff.toml"] {
        assert!(committed.contains(&expected), "{expected} not committed: {committed:?}");
    }
    assert!(
        !committed.iter().any(|p| p.starts_with(".castoff/cache") || *p == ".castoff/lock"),
        "private state committed: {committed:?}"
    );

    let clone = repo.clone_repo();
    clone.castoff(["status", "--check"]).assert().code(0);
    let outcome = clone.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["bumped"], false, "{outcome}");
    assert_eq!(clone.version(), "0.1.10");
    clone.write("requirements.txt", "flask==3.1.0\n");
    clone.castoff(["status", "--check"]).assert().code(3);
}
