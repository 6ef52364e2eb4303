//! castoff never writes outside the project, never tracks its own or git's files, agrees
//! with every clone about what is tracked, and leaves nothing behind on bad input.

use std::fs;

use crate::support::{
    assert_rejected, config, makefile_project, makefile_project_bumped, temp_dir, tree_hash_of, Loc, TempRepo,
};

/// A repository at `version` tracking `sources`, with `files` (each holding its own name).
fn repo_with(version: &str, sources: &[&str], files: &[&str]) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", version);
    repo.write("castoff.toml", config(sources, &[]));
    for file in files {
        repo.write(file, format!("# {file}\n"));
    }
    repo
}

/// `castoff ARGS`' stderr, whatever the exit code.
fn stderr_of(repo: &TempRepo, args: &[&str]) -> String {
    String::from_utf8(repo.castoff(args).output().unwrap().stderr).unwrap()
}

/// A committed `.castoff/cache/stat.bin` symlink is replaced by the cache, never written
/// through: the file it points at keeps its bytes.
#[test]
fn cache_symlink_is_not_written_through() {
    let repo = makefile_project();
    let outside = temp_dir();
    let victim = outside.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    repo.forget_private_state();
    fs::create_dir_all(repo.join(".castoff/cache")).unwrap();
    repo.symlink(&victim, ".castoff/cache/stat.bin");
    repo.write("app.py", "print('edited')\n");

    repo.castoff(["status"]).assert().success();
    repo.castoff(["bump", "auto"]).assert().success();
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
}

/// A `.castoff/lock` symlink is refused (exit 2, named, with a hint), not truncated.
#[test]
fn lock_symlink_is_refused_not_truncated() {
    let repo = makefile_project();
    let outside = temp_dir();
    let victim = outside.path().join("victim");
    fs::write(&victim, "precious\n").unwrap();
    repo.forget_private_state();
    repo.symlink(&victim, ".castoff/lock");

    assert_rejected(&repo, &["bump", "patch"], Some(Loc::file(".castoff/lock")), &["symlink", "rm .castoff/lock"]);
    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(repo.version(), "0.1.9");
}

/// A symlinked `.castoff` directory is an error naming it, and nothing is written where
/// it points, by bump or by status.
#[test]
fn symlinked_castoff_directory_is_refused() {
    let repo = makefile_project();
    let outside = temp_dir();
    repo.forget_private_state();
    fs::rename(repo.join(".castoff"), outside.path().join("state")).unwrap();
    repo.symlink(outside.path().join("state"), ".castoff");
    let before = tree_hash_of(outside.path());
    for args in [&["bump", "patch"][..], &["status"], &["bump", "auto"]] {
        assert_rejected(&repo, args, Some(Loc::file(".castoff")), &["symlink", "remove"]);
    }
    assert_eq!(tree_hash_of(outside.path()), before);
    assert!(!outside.path().join("state/cache").exists(), "wrote the cache through the link");
    assert!(!outside.path().join("state/lock").exists(), "created the lock through the link");
}

/// `status` in a project without `.castoff/` creates it with its `.gitignore`, so the
/// cache it writes never shows up in `git status`.
#[test]
fn status_creates_castoff_with_its_gitignore() {
    let repo = repo_with("1.0.0\n", &["app.py"], &["app.py"]);
    repo.castoff(["status"]).assert().success();
    assert!(repo.exists(".castoff/cache/stat.bin"), "no cache written");
    assert!(repo.exists(".castoff/.gitignore"), "no .castoff/.gitignore");
    let porcelain = repo.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!porcelain.contains("cache"), "{porcelain}");
}

/// A tracked name with a carriage return is skipped with a warning; the baseline stays
/// readable and status keeps working.
#[test]
fn names_with_a_carriage_return_are_skipped() {
    let repo = repo_with("1.0.0\n", &["src"], &["src/ok.txt", "src/bad\rname.txt"]);
    repo.castoff(["bump", "patch"]).assert().success();
    assert_eq!(repo.baseline().paths, ["src/ok.txt"]);
    let stderr = stderr_of(&repo, &["status", "--check"]);
    repo.castoff(["status", "--check"]).assert().code(0);
    assert!(stderr.lines().any(|l| l.starts_with("warning:") && l.contains("carriage return")), "{stderr}");
}

/// Globs written `./app.py` or `src//**` match like `app.py` and `src/**`.
#[test]
fn dot_slash_globs_match() {
    let repo = repo_with("1.0.0\n", &["./app.py", "./src//**"], &["app.py", "src/a/b.py", "other.py"]);
    repo.castoff(["bump", "patch"]).assert().success();
    assert_eq!(repo.baseline().paths, ["app.py", "src/a/b.py"]);
    let stderr = stderr_of(&repo, &["status"]);
    assert!(!stderr.contains("matches no file"), "{stderr}");
    repo.write("app.py", "changed\n");
    repo.castoff(["status", "--check"]).assert().code(3);
}

/// `.` and `./` as a source glob are rejected with a hint to use `**`.
#[test]
fn dot_glob_is_rejected() {
    for glob in [".", "./", ""] {
        let repo = repo_with("1.0.0\n", &["app.py", glob], &["app.py"]);
        let loc = Loc::file("castoff.toml").line(3).key("version.sources");
        assert_rejected(&repo, &["status"], Some(loc), &["\"**\""]);
    }
}

/// `.castoff` and `.git`, at the top or in a nested project, are never tracked, however
/// the sources name them.
#[test]
fn castoff_and_git_are_never_tracked() {
    let cases: [&[&str]; 4] = [&[".castoff", "app.py"], &["**"], &["svc"], &["svc/.castoff/**", "app.py"]];
    for sources in cases {
        let repo = repo_with("1.0.0\n", sources, &["app.py", "svc/app.py"]);
        repo.write("svc/.castoff/cache/stat.bin", "nested cache\n");
        repo.write("svc/.castoff/sources.lock", "nested baseline\n");
        repo.write("svc/.git", "gitdir: ../.git/modules/svc\n");
        repo.write("svc/sub/.git/HEAD", "ref: refs/heads/main\n");
        repo.castoff(["bump", "patch"]).assert().success();
        let tracked = repo.baseline().paths;
        let inside = tracked.iter().filter(|p| p.split('/').any(|part| part == ".git" || part == ".castoff"));
        assert_eq!(inside.count(), 0, "{sources:?}: {tracked:?}");
        repo.castoff(["status"]).assert().success();
        repo.castoff(["status", "--check"]).assert().code(0);
    }
}

/// VERSION reached through a symlink (`VERSION -> meta/VERSION`) is not tracked under
/// its real name either, so a bump never calls for another.
#[test]
fn version_behind_a_symlink_is_not_tracked() {
    let repo = repo_with("1.0.0\n", &["meta"], &["meta/app.py"]);
    repo.remove("VERSION");
    repo.write("meta/VERSION", "1.0.0\n");
    repo.symlink("meta/VERSION", "VERSION");
    repo.castoff(["bump", "patch"]).assert().success();
    assert_eq!(repo.read_string("meta/VERSION"), "1.0.1\n");
    assert_eq!(repo.baseline().paths, ["meta/app.py"]);
    repo.castoff(["status", "--check"]).assert().code(0);
    let outcome = repo.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["bumped"], false, "{outcome}");
}

/// Files a committed `.gitignore` ignores (at the top, nested, or in the enclosing
/// repository above the project) are not tracked, so a fresh clone agrees.
#[test]
fn gitignored_files_are_not_tracked_and_clones_agree() {
    let repo = TempRepo::new();
    repo.write(".gitignore", "*.log\n");
    repo.write("proj/.gitignore", "__pycache__/\n");
    repo.write("proj/src/.gitignore", "gen/\n*.tmp\n!keep.tmp\n");
    repo.write("proj/VERSION", "1.0.0\n");
    for file in [
        "proj/app.py",
        "proj/src/a.py",
        "proj/src/__pycache__/a.cpython-312.pyc",
        "proj/src/deep/__pycache__/b.pyc",
        "proj/src/gen/out.py",
        "proj/src/x.log",
        "proj/src/y.tmp",
        "proj/src/keep.tmp",
    ] {
        repo.write(file, format!("# {file}\n"));
    }
    let proj = repo.join("proj");
    crate::support::castoff_at(&proj, ["init"]).assert().success();
    let baseline = fs::read_to_string(proj.join(".castoff/sources.lock")).unwrap();
    let tracked: Vec<&str> = baseline.lines().filter_map(|l| l.split_once("  ").map(|(_, p)| p)).collect();
    assert_eq!(tracked, ["app.py", "src/.gitignore", "src/a.py", "src/keep.tmp"], "{baseline}");
    repo.commit_all();
    let committed = crate::support::git(&proj, &["ls-files", "app.py", "src"]);
    assert_eq!(tracked, committed.lines().collect::<Vec<_>>(), "git commits other files than castoff tracks");

    let clone = repo.clone_repo();
    let status = crate::support::castoff_at(&clone.join("proj"), ["--json", "status", "--check"]).output().unwrap();
    let json = crate::support::json_line(&status.stdout);
    assert_eq!(status.status.code(), Some(0), "{json}");
    assert_eq!(json["changes"], serde_json::json!({"added": [], "modified": [], "removed": []}));
}

/// `init` leaves obvious junk (bytecode, editor backups, OS litter) out by default.
#[test]
fn init_excludes_junk() {
    let repo = TempRepo::new();
    for file in ["src/a.py", "src/a.pyc", "src/.DS_Store", "src/a.py~", "src/.a.py.swp", "src/__pycache__/a.pyc"] {
        repo.write(file, "x\n");
    }
    repo.ok(&["init"]);
    assert_eq!(repo.baseline().paths, ["src/a.py"]);
}

/// A bump that cannot be computed (`release` of a plain version) exits 2 before taking
/// the lock or scanning: no `.castoff/` appears in a repository that had none.
#[test]
fn impossible_bump_leaves_nothing_behind() {
    for sources in [&[][..], &["app.py"]] {
        let repo = repo_with("1.0.0\n", sources, &["app.py"]);
        assert_rejected(&repo, &["bump", "release"], Some(Loc::file("VERSION").line(1)), &["not a prerelease"]);
        assert!(!repo.exists(".castoff"), "{sources:?}: created .castoff/");
    }
    let repo = makefile_project();
    repo.forget_private_state();
    assert_rejected(&repo, &["bump", "release"], Some(Loc::file("VERSION").line(1)), &["not a prerelease"]);
    assert!(!repo.exists(".castoff/lock") && !repo.exists(".castoff/cache"), "left the lock or cache");
}

/// VERSION lowered by hand (a revert or merge) is not an interrupted bump: a requested
/// bump applies to the version in the file.
#[test]
fn version_lowered_by_hand_is_not_an_interrupted_bump() {
    let repo = makefile_project_bumped(); // 0.1.10, baseline from 0.1.9
    repo.ok(&["bump", "patch"]); // 0.1.11, baseline from 0.1.10
    repo.write("VERSION", "0.1.9\n");
    let status = repo.ok_json(&["status"]);
    assert!(status.get("interrupted_bump").is_none_or(|v| v.is_null()), "{status}");
    let outcome = repo.ok_json(&["bump", "major"]);
    assert_eq!(outcome["version"], "1.0.0", "{outcome}");
    assert_eq!(repo.version(), "1.0.0");
    assert_eq!(repo.baseline().version, "1.0.0");
    repo.castoff(["status", "--check"]).assert().code(0);
}

/// An interrupted bump is work to do: `status --check` exits 3 until a bump finishes it.
#[test]
fn interrupted_bump_makes_check_fail() {
    let repo = makefile_project_bumped();
    repo.write("VERSION", "0.1.9\n");
    repo.castoff(["status", "--check"]).assert().code(3);
    repo.ok(&["bump", "auto"]);
    assert_eq!(repo.version(), "0.1.10");
    repo.castoff(["status", "--check"]).assert().code(0);
}

/// With the sources list emptied, nothing is due: status exits 0 and `bump auto` keeps VERSION.
#[test]
fn emptied_sources_call_for_no_bump() {
    let repo = makefile_project();
    repo.write("castoff.toml", config(&[], &[]));
    let status = repo.ok_json(&["status"]);
    assert_eq!(status["bump_due"], false, "{status}");
    repo.castoff(["status", "--check"]).assert().code(0);
    let outcome = repo.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["bumped"], false, "{outcome}");
    assert_eq!(repo.version(), "0.1.9");
}

/// A literal source path through a symlink to a file says it is a symlink to a file.
#[test]
fn skip_message_says_what_the_symlink_is() {
    let repo = repo_with("1.0.0\n", &["a/b.txt", "c/d.txt", "app.py"], &["app.py", "real.txt", "dir/d.txt"]);
    repo.symlink("real.txt", "a");
    repo.symlink("dir", "c");
    let stderr = stderr_of(&repo, &["status"]);
    assert!(stderr.contains("a: a symlink to a file"), "{stderr}");
    assert!(stderr.contains("c: a symlink to a directory"), "{stderr}");
}
