//! The command line's contract: `version` output, the `--json` shapes, finding the
//! project from a subdirectory, and usage errors.

use crate::support::{json_line, makefile_project, makefile_project_bumped, with_json, TempRepo};

/// `castoff version` prints the version and nothing else.
#[test]
fn version_prints_only_the_version() {
    let repo = makefile_project();
    repo.castoff(["version"]).assert().success().stdout("0.1.9\n").stderr("");
}

/// `castoff --json version` prints `{"version": "..."}`.
#[test]
fn version_json() {
    let repo = makefile_project();
    assert_eq!(repo.ok_json(&["version"]), serde_json::json!({"version": "0.1.9"}));
}

/// `castoff version` needs no castoff.toml: the embedded defaults read VERSION in the current directory.
#[test]
fn version_without_config() {
    let repo = TempRepo::new();
    repo.write("VERSION", "3.1.4-beta.2+build.7\n");
    repo.castoff(["version"]).assert().success().stdout("3.1.4-beta.2+build.7\n");
    assert!(!repo.exists("castoff.toml"));
}

/// Run from a subdirectory, castoff finds castoff.toml in the directory above.
#[test]
fn finds_the_project_from_a_subdirectory() {
    let repo = makefile_project();
    repo.write("docs/guide/index.txt", "docs\n");
    let subdir = repo.join("docs/guide");
    crate::support::castoff_at(&subdir, ["version"]).assert().success().stdout("0.1.9\n");
}

/// `bump --json` prints one object with previous, version, tag, bumped, reason, changes, dry_run and warnings.
#[test]
fn bump_json_fields() {
    let repo = makefile_project();
    repo.write("app.py", "print('edited')\n");
    let outcome = repo.ok_json(&["bump", "auto"]);
    let expected = serde_json::json!({
        "previous": "0.1.9",
        "version": "0.1.10",
        "tag": "v0.1.10",
        "bumped": true,
        "reason": outcome["reason"],
        "changes": {"added": [], "modified": ["app.py"], "removed": []},
        "dry_run": false,
        "warnings": [],
    });
    assert_eq!(outcome, expected);
    assert!(outcome["reason"].as_str().is_some_and(|r| !r.is_empty()), "{outcome}");
}

/// `status --json` reports version, tracked, changes, bump_due and has_baseline.
#[test]
fn status_json_fields() {
    let repo = makefile_project_bumped();
    let status = repo.ok_json(&["status"]);
    assert_eq!(status["version"], "0.1.10", "{status}");
    assert_eq!(status["tracked"], 2, "{status}");
    assert_eq!(status["changes"], serde_json::json!({"added": [], "modified": [], "removed": []}));
    assert_eq!(status["bump_due"], false, "{status}");
    assert_eq!(status["has_baseline"], true, "{status}");
}

/// `-q` drops the status summary from stderr; the result on stdout stays.
#[test]
fn quiet_keeps_results_only() {
    let repo = makefile_project();
    repo.write("app.py", "print('edited')\n");
    let loud = repo.castoff(["status"]).assert().success().get_output().clone();
    assert!(!loud.stderr.is_empty(), "status printed no summary");
    repo.castoff(["-q", "status"]).assert().success().stdout("M app.py\n").stderr("");
}

/// An unknown bump level is a usage error: exit 2, `error:` and `hint:`, and a JSON error with `--json`.
#[test]
fn unknown_bump_level_is_a_usage_error() {
    let repo = makefile_project();
    let before = repo.tree_hash();
    let args = ["bump", "sideways"];
    let output = repo.castoff(args).assert().code(2).get_output().clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.lines().any(|l| l.starts_with("error: ") && l.contains("sideways")), "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("  hint: ")), "no hint:\n{stderr}");
    let output = repo.castoff(with_json(&args)).assert().code(2).get_output().clone();
    let error = json_line(&output.stdout);
    assert_eq!(error["error"]["exit_code"], 2, "{error}");
    assert_eq!(repo.tree_hash(), before);
}
