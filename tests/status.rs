//! `castoff status`: the A/M/D listing, `--check`'s exit code, and finding the project
//! with `-C` and `--config`.

use std::path::Path;

use crate::support::{castoff_at, config, temp_dir, TempRepo};

/// `rel` inside the directory `dir` of the repository ("" for its root).
fn under(dir: &str, rel: &str) -> String {
    Path::new(dir).join(rel).to_str().unwrap().to_string()
}

/// A project in `dir` tracking `*.py`: app.py, keep.py and removed.py recorded at 1.0.1.
fn py_project(dir: &str) -> TempRepo {
    let repo = TempRepo::new();
    let at = |rel: &str| under(dir, rel);
    repo.write(&at("VERSION"), "1.0.0\n");
    repo.write(&at("castoff.toml"), config(&["*.py"], &[]));
    for file in ["app.py", "keep.py", "removed.py"] {
        repo.write(&at(file), format!("# {file}\n"));
    }
    let config_path = at("castoff.toml");
    repo.ok(&["--config", &config_path, "bump", "patch"]);
    repo
}

/// Edit app.py, delete removed.py and add new.py under `dir`.
fn change_sources(repo: &TempRepo, dir: &str) {
    let at = |rel: &str| under(dir, rel);
    repo.write(&at("app.py"), "# app.py, edited\n");
    repo.remove(&at("removed.py"));
    repo.write(&at("new.py"), "# new\n");
}

/// `status` lists a glob's added, modified and removed files as `A`, `M` and `D` lines.
#[test]
fn status_lists_added_modified_and_removed() {
    let repo = py_project("");
    change_sources(&repo, "");
    let stdout = repo.ok(&["status"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["M app.py", "A new.py", "D removed.py"], "{stdout}");

    let status = repo.ok_json(&["status"]);
    assert_eq!(status["version"], "1.0.1", "{status}");
    assert_eq!(status["tracked"], 3, "{status}");
    assert_eq!(status["changes"]["added"], serde_json::json!(["new.py"]));
    assert_eq!(status["changes"]["modified"], serde_json::json!(["app.py"]));
    assert_eq!(status["changes"]["removed"], serde_json::json!(["removed.py"]));
    assert_eq!(status["bump_due"], true, "{status}");
    assert_eq!(status["has_baseline"], true, "{status}");
}

/// `status --check` exits 0 with nothing to do, 3 once a source changed, 0 again after the bump.
#[test]
fn status_check_exit_codes() {
    let repo = py_project("");
    repo.castoff(["status", "--check"]).assert().code(0);
    change_sources(&repo, "");
    repo.castoff(["status", "--check"]).assert().code(3);
    repo.ok(&["bump", "auto"]);
    repo.castoff(["status", "--check"]).assert().code(0);
    assert_eq!(repo.version(), "1.0.2");
}

/// `-C DIR`, absolute or relative, runs on the project in DIR from an unrelated directory.
#[test]
fn dash_c_runs_in_another_directory() {
    let repo = py_project("");
    change_sources(&repo, "");
    let elsewhere = temp_dir();
    let relative = Path::new("..").join(repo.path().file_name().unwrap());
    for dir in [repo.path(), relative.as_path()] {
        let dir = dir.to_str().unwrap();
        let run = |args: &[&str]| castoff_at(elsewhere.path(), ["-C", dir]).args(args).assert();
        run(&["version"]).success().stdout("1.0.1\n");
        run(&["status", "--check"]).code(3).stdout(predicates::str::contains("A new.py"));
    }
    let root = repo.path().to_str().unwrap();
    castoff_at(elsewhere.path(), ["-C", root, "bump", "auto"]).assert().success();
    assert_eq!(repo.version(), "1.0.2");
    let stray: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(stray.is_empty(), "wrote into the working directory: {stray:?}");
}

/// `--config path/to/castoff.toml` makes that file's directory the project root.
#[test]
fn explicit_config_sets_the_project_root() {
    let repo = py_project("proj");
    change_sources(&repo, "proj");
    let config = ["--config", "proj/castoff.toml"];
    let run = |args: &[&str]| repo.castoff(config.iter().chain(args)).assert();
    run(&["version"]).success().stdout("1.0.1\n");
    run(&["status"]).success().stdout("M app.py\nA new.py\nD removed.py\n");
    run(&["status", "--check"]).code(3);
    run(&["bump", "auto"]).success();
    assert_eq!(repo.read("proj/VERSION"), b"1.0.2\n");
    assert!(!repo.exists("VERSION"), "wrote a VERSION outside the config's directory");
    let baseline = repo.read_string("proj/.castoff/sources.lock");
    assert!(baseline.lines().any(|l| l == "version 1.0.2"), "{baseline}");
}
