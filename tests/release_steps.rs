//! `castoff release` without registry or feed services: the git step with real git
//! (commit, annotated tag, push to a bare remote, never twice), the version choice of a
//! continued release, preflight reporting every problem at once, and the command-line
//! surface (JSON events, completions, man page).

use std::path::Path;

use serde_json::Value;

use crate::support::example::GIT_IDENTITY;
use crate::support::{assert_rejected, git, makefile_project, Loc, TempRepo};

/// The Makefile project with `[release] git = true` (and `extra` appended), committed.
fn git_project(extra: &str) -> TempRepo {
    let repo = makefile_project();
    let config = repo.read_string("castoff.toml");
    repo.write("castoff.toml", format!("{config}\n[release]\ngit = true\n{extra}"));
    repo.commit_all();
    repo
}

/// `castoff ARGS` in `repo`, asserted to succeed; its stdout.
fn release_ok(repo: &TempRepo, args: &[&str]) -> String {
    let output = with_git_identity(repo.castoff(args)).assert().success();
    String::from_utf8(output.get_output().stdout.clone()).unwrap()
}

/// `command` with a git identity for the release commit, and none of the machine's git
/// config.
fn with_git_identity(mut command: assert_cmd::Command) -> assert_cmd::Command {
    command.envs(GIT_IDENTITY).env("GIT_CONFIG_GLOBAL", "/dev/null");
    command
}

/// Every JSON line a `--json` release printed.
fn events(stdout: &str) -> Vec<Value> {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// With `[release] git = true` the release commits exactly VERSION and the baseline
/// (an unrelated staged file stays staged, uncommitted), tags that commit `v{version}`
/// with an annotated tag, and pushes both only with `--git-push` (to a real bare
/// repository). A second run finds the tag on the release commit and commits nothing.
#[test]
fn git_step_commits_tags_and_pushes_once() {
    let remote = tempfile::tempdir().unwrap();
    git(remote.path(), &["init", "-q", "--bare"]);
    let repo = git_project("");
    repo.git(&["remote", "add", "origin", &remote.path().to_string_lossy()]);
    repo.write("app.py", "print('changed')\n");
    repo.write("notes.txt", "not part of the release\n");
    repo.git(&["add", "notes.txt", "app.py"]);

    let out = release_ok(&repo, &["--json", "release", "--git-push"]);
    let result = events(&out).pop().unwrap();
    assert_eq!(result["event"], "result", "{out}");
    assert_eq!(repo.version(), "0.1.10");

    let subject = repo.git(&["log", "-1", "--format=%s"]);
    assert_eq!(subject.trim(), "release 0.1.10");
    let files = repo.git(&["show", "--name-only", "--format=", "HEAD"]);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort_unstable();
    assert_eq!(files, [".castoff/sources.lock", "VERSION"], "the release commit holds only VERSION and the baseline");
    let staged = repo.git(&["diff", "--cached", "--name-only"]);
    assert!(staged.contains("notes.txt") && staged.contains("app.py"), "other staged changes stay staged: {staged}");
    assert_eq!(repo.git(&["cat-file", "-t", "v0.1.10"]).trim(), "tag", "an annotated tag");
    let tagged = repo.git(&["rev-parse", "v0.1.10^{commit}"]);
    assert_eq!(tagged, repo.git(&["rev-parse", "HEAD"]));
    let remote_tag = git(remote.path(), &["rev-parse", "v0.1.10^{commit}"]);
    assert_eq!(remote_tag, tagged, "the tag was pushed");

    let again = release_ok(&repo, &["--json", "release"]);
    let git_event = events(&again).into_iter().find(|e| e["step"] == "git" && e["event"] == "step-finished").unwrap();
    assert_eq!(git_event["status"], "already-done", "{again}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), tagged, "no second release commit");
    assert_eq!(repo.version(), "0.1.10", "VERSION bumped once");
}

/// A tag for the release's version already on another commit is found by preflight:
/// exit 2, the tag and the commit named, and nothing changed (VERSION not bumped).
#[test]
fn a_tag_on_another_commit_stops_the_release_before_it_starts() {
    let repo = git_project("");
    repo.git(&["tag", "v0.1.10"]);
    repo.write("app.py", "print('changed')\n");
    assert_rejected(&repo, &["release"], None, &["v0.1.10", "already exists", "never moved"]);
    assert_eq!(repo.version(), "0.1.9");
}

/// Preflight lists every problem, not the first: a builder that is not installed, a
/// feed key that is not set, and a git remote that does not exist, in one error, with
/// nothing changed.
#[test]
fn preflight_reports_every_problem_at_once() {
    let repo = git_project(
        r#"
[image]
name = "registry.invalid/team/app"
platforms = ["linux/amd64"]
builder = "buildx"

[[package]]
id = "Preflight.App"
authors = "castoff tests"
description = "preflight"
files = [{ src = "app.py", target = "content" }]
symbols = "none"

[[feed]]
name = "private"
url = "https://nuget.invalid/api/v2/package"
api_key_env = "CASTOFF_TEST_UNSET_KEY"
"#,
    );
    repo.write("Dockerfile", "FROM scratch\n");
    repo.commit_all();
    let bin = tempfile::tempdir().unwrap();
    let output = repo
        .castoff(["release", "--git-push"])
        .env_remove("CASTOFF_TEST_UNSET_KEY")
        .env("PATH", path_without_docker(bin.path()))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&output.get_output().stderr).to_string();
    for expected in ["preflight found 3 problem(s)", "CASTOFF_TEST_UNSET_KEY", "remote `origin`", "buildx"] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert_eq!(repo.version(), "0.1.9");
    assert!(!repo.exists(".castoff/journal"), "preflight wrote a journal");
}

/// PATH with every directory holding a `docker` program left out, so buildx is
/// certainly missing, and `bin` (given a link to git) first.
fn path_without_docker(bin: &Path) -> String {
    let git = which::which("git").expect("git on PATH");
    std::os::unix::fs::symlink(git, bin.join("git")).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').filter(|dir| !Path::new(dir).join("docker").exists());
    std::iter::once(bin.to_string_lossy().as_ref()).chain(dirs).collect::<Vec<_>>().join(":")
}

/// A release killed after its bump, then asked for a different bump, is refused (exit
/// 2, naming the journal) instead of bumping a second time; plain `castoff release`
/// then continues it.
#[test]
fn an_unfinished_release_is_continued_not_bumped_again() {
    let repo = makefile_project();
    repo.write("app.py", "print('changed')\n");
    let killed = repo.castoff(["release", "--bump", "minor"]).env("CASTOFF_CRASH_AT", "after:bump").assert().failure();
    assert_eq!(killed.get_output().status.code(), None, "killed by a signal");
    assert_eq!(repo.version(), "0.2.0");

    assert_rejected(
        &repo,
        &["release", "--bump", "patch"],
        None,
        &["unfinished release of 0.2.0", ".castoff/journal/0.2.0.json"],
    );
    let out = repo.ok(&["--json", "release"]);
    let result = events(&out).pop().unwrap();
    assert_eq!(result["version"], "0.2.0", "{out}");
    assert_eq!(result["resumed"], true);
    assert_eq!(repo.version(), "0.2.0", "bumped once");
    let journal: Value = serde_json::from_str(&repo.read_string(".castoff/journal/0.2.0.json")).unwrap();
    assert_eq!(journal["complete"], true, "{journal}");
    assert_eq!(journal["previous"], "0.1.9");
}

/// A damaged journal is bad input: exit 2 naming the file and line, with the fix, and
/// nothing changed.
#[test]
fn a_damaged_journal_is_named_with_its_line() {
    let repo = makefile_project();
    repo.write(".castoff/journal/0.1.9.json", "{\n  \"format\": 1,\n  \"version\": \"0.1.9\",\n  oops\n}\n");
    assert_rejected(
        &repo,
        &["release"],
        Some(Loc::file(".castoff/journal/0.1.9.json").line(4)),
        &["damaged", "remove"],
    );
}

/// `--json` prints one line per step and the result, each a JSON object; the steps
/// come in release order. A dry run prints the plan first.
#[test]
fn json_release_prints_one_event_per_step() {
    let repo = makefile_project();
    let dry = events(&repo.ok(&["--json", "release", "--bump", "patch", "--dry-run"]));
    assert_eq!(dry.first().unwrap()["event"], "plan");
    assert_eq!(dry.last().unwrap()["dry_run"], true);
    let out = repo.ok(&["--json", "release", "--bump", "patch"]);
    let events = events(&out);
    let steps: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step-finished").map(|e| e["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["bump", "build", "manifest", "pack", "publish", "git"]);
    let result = events.last().unwrap();
    assert_eq!((result["event"].as_str(), result["version"].as_str()), (Some("result"), Some("0.1.10")));
}

/// `--from` and `--only` ask for different step sets: exit 2 before anything.
#[test]
fn from_and_only_together_are_refused() {
    let repo = makefile_project();
    assert_rejected(&repo, &["release", "--from", "build", "--only", "pack"], None, &["--only"]);
}

/// Completions and the man page come from the clap definitions and know `release`.
#[test]
fn completions_and_man_page_cover_release() {
    let repo = makefile_project();
    for shell in ["bash", "zsh", "fish"] {
        let script = repo.ok(&["completions", shell]);
        assert!(script.contains("release") && script.contains("dry-run"), "{shell}:\n{script}");
    }
    let man = repo.ok(&["man"]);
    assert!(man.contains(".TH castoff") && man.contains("release"), "{man}");
}

/// A journal left by an `--only` run (which chose no version) does not stop the next
/// release's due bump: after a source change, `--only pack` and then `castoff release`
/// bumps, and the released platform tags of the old version are left as they were.
#[test]
fn an_only_run_does_not_hold_back_a_due_bump() {
    let repo = makefile_project();
    repo.write("app.py", "print('changed')\n");
    repo.ok(&["release", "--only", "bump", "--bump", "none"]);
    let out = repo.ok(&["--json", "release"]);
    assert_eq!(events(&out).pop().unwrap()["version"], "0.1.10", "{out}");
    assert_eq!(repo.version(), "0.1.10");
}

/// Killed after its journal was written and then bumped by hand (as a crash between
/// the VERSION write and the journal entry leaves it), a release continued after yet
/// another source change finishes at the version it planned: bumped once, not twice.
#[test]
fn a_bump_already_made_is_never_made_again() {
    let repo = makefile_project();
    repo.write("app.py", "print('changed')\n");
    let killed = repo.castoff(["release"]).env("CASTOFF_CRASH_AT", "after:journal").assert().failure();
    assert_eq!(killed.get_output().status.code(), None, "killed by a signal");
    assert_eq!(repo.version(), "0.1.9");
    repo.write("VERSION", "0.1.10\n");
    repo.write("app.py", "print('changed again')\n");
    let out = repo.ok(&["--json", "release"]);
    let result = events(&out).pop().unwrap();
    assert_eq!(result["version"], "0.1.10", "{out}");
    let bump = result["steps"].as_array().unwrap().iter().find(|s| s["step"] == "bump").unwrap().clone();
    assert_eq!(bump["status"], "already-done", "{out}");
    assert_eq!(repo.version(), "0.1.10");
}

/// A finished release checked again and killed half-way stays finished: the next
/// source change is released as a new version, not hidden in the old one.
#[test]
fn a_finished_release_stays_finished_when_a_re_check_is_killed() {
    let repo = makefile_project();
    repo.write("app.py", "print('changed')\n");
    repo.ok(&["release"]);
    assert_eq!(repo.version(), "0.1.10");
    let killed = repo.castoff(["release"]).env("CASTOFF_CRASH_AT", "after:journal").assert().failure();
    assert_eq!(killed.get_output().status.code(), None, "killed by a signal");
    repo.write("app.py", "print('changed again')\n");
    let out = repo.ok(&["--json", "release"]);
    assert_eq!(events(&out).pop().unwrap()["version"], "0.1.11", "{out}");
}

/// The git step works for a project in a subdirectory of its repository: the tag's
/// VERSION is read relative to the project, so a second run finds its own tag.
#[test]
fn git_step_in_a_subdirectory_of_the_repository() {
    let repo = TempRepo::new();
    repo.write("app/VERSION", "1.0.0\n");
    repo.write("app/main.py", "print('app')\n");
    repo.write("app/castoff.toml", "[version]\nsources = [\"main.py\"]\n\n[release]\ngit = true\n");
    let dir = repo.join("app");
    crate::support::castoff_at(&dir, ["bump", "auto"]).assert().success();
    repo.commit_all();
    repo.write("app/main.py", "print('changed')\n");
    let run = |args: &[&str]| with_git_identity(crate::support::castoff_at(&dir, args)).assert().success();
    run(&["release"]);
    assert_eq!(repo.read_string("app/VERSION"), "1.0.1\n");
    assert_eq!(repo.git(&["cat-file", "-t", "v1.0.1"]).trim(), "tag");
    let again = run(&["--json", "release"]);
    let out = String::from_utf8_lossy(&again.get_output().stdout).to_string();
    let git_event = events(&out).into_iter().find(|e| e["step"] == "git" && e["event"] == "step-finished").unwrap();
    assert_eq!(git_event["status"], "already-done", "{out}");
}

/// A release whose version tag already names another index stops at the manifest step
/// (exit 1), says once what is wrong, and points at the command that has `--force`
/// (release itself has none). The example project, into its OCI layout.
#[test]
fn a_moved_release_tag_names_the_command_with_force() {
    let repo = crate::support::example::example_repo(false);
    repo.ok(&["release"]);
    repo.remove(".castoff/journal");
    repo.write("app.py", "print('different content, same version')\n");
    let output = repo.castoff(["release", "--bump", "none"]).assert().code(1);
    let stderr = String::from_utf8_lossy(&output.get_output().stderr).to_string();
    assert!(stderr.contains("run `castoff manifest --force`, then `castoff release`"), "{stderr}");
    assert!(!stderr.contains("pass --force"), "{stderr}");
    assert_eq!(
        stderr.matches("already points at").count(),
        2,
        "the [manifest] line and the error, once each:\n{stderr}"
    );
}
