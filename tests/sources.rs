//! Which files are tracked: globs, directory names, `exclude`, unmatched patterns,
//! symlinks out of the repository, and the VERSION file itself.

use crate::support::{config, temp_dir, tree_hash_of, TempRepo};

/// A repository at 1.0.0 with castoff.toml tracking `sources` minus `exclude`, and `files`.
fn repo_tracking(sources: &[&str], exclude: &[&str], files: &[&str]) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.0.0\n");
    repo.write("castoff.toml", config(sources, exclude));
    for file in files {
        repo.write(file, format!("# {file}\n"));
    }
    repo
}

/// The tracked files: bump, then read the paths recorded in the baseline.
fn tracked_after_bump(repo: &TempRepo) -> Vec<String> {
    repo.ok(&["bump", "patch"]);
    repo.baseline().paths
}

/// A sources pattern that matches nothing gives a `warning:` naming it, on status and bump.
#[test]
fn unmatched_pattern_warns() {
    let repo = repo_tracking(&["app.py", "*.none", "docs/**"], &[], &["app.py"]);
    for args in [&["status"][..], &["bump", "patch"]] {
        let output = repo.castoff(args).assert().success().get_output().clone();
        let stderr = String::from_utf8(output.stderr).unwrap();
        for pattern in ["`*.none`", "`docs/**`"] {
            assert!(
                stderr.lines().any(|l| l.starts_with("warning:") && l.contains(pattern)),
                "{args:?}: no warning naming {pattern}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("`app.py`"), "{stderr}");
    }
}

/// A symlink to a directory outside the repository is never followed, whatever the glob.
#[test]
fn symlinked_directory_outside_is_not_followed() {
    for pattern in ["**/*.py", "**", "lib", "lib/**", "lib/*.py", "lib/x.py"] {
        let outside = temp_dir();
        std::fs::create_dir(outside.path().join("deep")).unwrap();
        std::fs::write(outside.path().join("x.py"), "print('outside')\n").unwrap();
        std::fs::write(outside.path().join("deep/y.py"), "print('deep')\n").unwrap();
        let repo = repo_tracking(&[pattern, "a.py"], &[], &["a.py"]);
        repo.symlink(outside.path(), "lib");
        let outside_before = tree_hash_of(outside.path());

        let tracked = tracked_after_bump(&repo);
        assert!(tracked.contains(&"a.py".to_string()), "{pattern}: {tracked:?}");
        assert!(!tracked.iter().any(|p| p.starts_with("lib/")), "{pattern}: followed the symlink: {tracked:?}");
        assert_eq!(tree_hash_of(outside.path()), outside_before, "{pattern}");

        std::fs::write(outside.path().join("x.py"), "print('changed outside')\n").unwrap();
        std::fs::write(outside.path().join("deep/new.py"), "print('new')\n").unwrap();
        let status = repo.ok_json(&["status"]);
        assert_eq!(status["bump_due"], false, "{pattern}: {status}");
        repo.castoff(["status", "--check"]).assert().code(0);
    }
}

/// A plain directory name tracks every file under it, at any depth.
#[test]
fn directory_name_tracks_everything_under_it() {
    let files = ["src/a.py", "src/deep/er/b.txt", "src/c.rs", "other.py"];
    let repo = repo_tracking(&["src"], &[], &files);
    assert_eq!(tracked_after_bump(&repo), ["src/a.py", "src/c.rs", "src/deep/er/b.txt"]);
    repo.write("src/new/d.json", "{}\n");
    repo.castoff(["status"]).assert().code(0).stdout("A src/new/d.json\n");
    repo.castoff(["status", "--check"]).assert().code(3);
}

/// `exclude` takes files out of `sources`: edits to them call for no bump.
#[test]
fn exclude_removes_files() {
    let files = ["src/a.py", "src/sub/b.txt", "src/gen/out.py", "src/c.pyc", "src/sub/d.pyc"];
    let repo = repo_tracking(&["src"], &["src/gen/**", "**/*.pyc"], &files);
    assert_eq!(tracked_after_bump(&repo), ["src/a.py", "src/sub/b.txt"]);
    for excluded in ["src/gen/out.py", "src/c.pyc", "src/gen/more.py"] {
        repo.write(excluded, "changed\n");
    }
    repo.castoff(["status", "--check"]).assert().code(0);
    repo.write("src/sub/b.txt", "changed\n");
    repo.castoff(["status", "--check"]).assert().code(3);
}

/// The VERSION file is never tracked, even when a glob matches it, so a bump never calls for another.
#[test]
fn version_file_is_never_tracked() {
    let cases: [(&str, &[&str]); 3] =
        [("VERSION", &["**"]), ("pkg/VERSION", &["pkg"]), ("pkg/VERSION", &["**/VERSION", "pkg/**"])];
    for (version_file, sources) in cases {
        let repo = TempRepo::new();
        repo.write(version_file, "1.0.0\n");
        repo.write("pkg/app.py", "print('app')\n");
        let text = config(sources, &[]).replace("\"VERSION\"", &format!("\"{version_file}\""));
        repo.write("castoff.toml", text);

        let tracked = tracked_after_bump(&repo);
        assert!(tracked.contains(&"pkg/app.py".to_string()), "{sources:?}: {tracked:?}");
        assert!(!tracked.iter().any(|p| p == version_file), "{sources:?}: {tracked:?}");
        repo.castoff(["status", "--check"]).assert().code(0);
        let outcome = repo.ok_json(&["bump", "auto"]);
        assert_eq!(outcome["bumped"], false, "{sources:?}: {outcome}");
        assert_eq!(repo.read_string(version_file), "1.0.1\n");
    }
}
