//! The stat cache is only a hint: whatever happens to the tree, the baseline or the cache
//! itself, a check with a warm cache answers exactly as a check without one.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::support::{config, TempRepo};

/// Longer than castoff's racy margin, so stamps taken after it are trusted by the cache.
const SETTLE: Duration = Duration::from_millis(1300);

/// `status --json`, whatever the exit code.
fn status(repo: &TempRepo) -> Value {
    let output = repo.castoff(["--json", "status"]).output().unwrap();
    crate::support::json_line(&output.stdout)
}

/// The parts of a status that must not depend on the cache.
fn answer(status: &Value) -> Value {
    serde_json::json!({
        "changes": status["changes"],
        "tracked": status["tracked"],
        "bump_due": status["bump_due"],
        "version": status["version"],
    })
}

/// Let every stamp age past the racy margin, then leave a cache that vouches for the
/// whole tree (checked: the next status neither walks nor hashes).
fn settle(repo: &TempRepo, what: &str) {
    std::thread::sleep(SETTLE);
    status(repo);
    let warm = status(repo);
    assert_eq!(warm["stats"]["walked"], false, "before {what}: the cache did not vouch for the tree: {warm}");
    assert_eq!(warm["stats"]["hashed"], 0, "before {what}: the cache did not vouch for the tree: {warm}");
}

/// Status with the cache as it is, then without it; they must agree.
fn assert_warm_equals_cold(repo: &TempRepo, what: &str) -> Value {
    let warm = status(repo);
    fs::remove_dir_all(repo.join(".castoff/cache")).unwrap();
    let cold = status(repo);
    assert_eq!(answer(&warm), answer(&cold), "after {what}: warm {warm}\ncold {cold}");
    cold
}

/// Replace `rel`'s bytes with `text` of the same length and put its mtime back, as a
/// tool that preserves timestamps would.
fn same_size_edit_keeping_mtime(repo: &TempRepo, rel: &str, text: &str) {
    let path = repo.join(rel);
    let old = fs::read(&path).unwrap();
    assert_eq!(old.len(), text.len(), "the edit must keep the size");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, text).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
}

/// A project tracking a directory and a literal path, both below the top level (so only
/// the cache's record of their ancestors can notice a change above them), with a
/// `.gitignore`, bumped once so it has a baseline.
fn project() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.0.0\n");
    repo.write("castoff.toml", config(&["src/deep", "a/b/c.txt"], &[]));
    repo.write(".gitignore", "*.log\n");
    for file in ["src/deep/top.py", "src/deep/er/x.py", "src/deep/er/y.py", "src/deep/er/z.log", "a/b/c.txt"] {
        repo.write(file, format!("# {file}\n"));
    }
    repo.ok(&["bump", "patch"]);
    repo
}

/// Every mutation in turn, each after a cache that vouches for everything.
#[test]
fn warm_and_cold_scans_agree() {
    let repo = project();
    type Mutation = (&'static str, fn(&TempRepo));
    let mutations: &[Mutation] = &[
        ("nothing", |_| {}),
        ("a same-size edit with the mtime put back", |repo| {
            same_size_edit_keeping_mtime(repo, "src/deep/er/x.py", "# src/deep/er/X.py\n")
        }),
        ("a file added in a deep directory", |repo| repo.write("src/deep/er/new.py", "new\n")),
        ("a file removed from a deep directory", |repo| repo.remove("src/deep/er/y.py")),
        ("a file renamed in a deep directory", |repo| {
            fs::rename(repo.join("src/deep/er/new.py"), repo.join("src/deep/er/renamed.py")).unwrap()
        }),
        ("a .gitignore line removed", |repo| repo.write(".gitignore", "*.tmp\n")),
        ("a nested .gitignore added", |repo| repo.write("src/deep/er/.gitignore", "x.py\n")),
        ("an ancestor directory swapped for a symlink", |repo| {
            fs::rename(repo.join("a"), repo.join("a_real")).unwrap();
            repo.symlink("a_real", "a");
        }),
        ("the symlink swapped back for the directory", |repo| {
            repo.remove("a");
            fs::rename(repo.join("a_real"), repo.join("a")).unwrap();
        }),
        ("a corrupt cache", |repo| {
            let path = repo.join(".castoff/cache/stat.bin");
            let mut bytes = fs::read(&path).unwrap();
            for byte in bytes.iter_mut().skip(8).step_by(7) {
                *byte ^= 0x5a;
            }
            fs::write(&path, bytes).unwrap();
            repo.write("src/deep/top.py", "# top, edited\n");
        }),
        ("a truncated cache", |repo| {
            let path = repo.join(".castoff/cache/stat.bin");
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            repo.write("src/deep/top.py", "# top, edited again\n");
        }),
    ];
    for (what, mutate) in mutations {
        settle(&repo, what);
        mutate(&repo);
        assert_warm_equals_cold(&repo, what);
    }
}

/// The baseline replaced under a cache that is in sync with it (a pull, a checkout),
/// keeping its size and mtime: the warm check still compares with the new baseline.
#[test]
fn baseline_replaced_under_a_synced_cache() {
    let repo = project();
    let first = repo.read(".castoff/sources.lock");
    repo.write("src/deep/top.py", "# src/deep/top.pY\n");
    repo.ok(&["bump", "auto"]);
    let second = repo.read(".castoff/sources.lock");
    assert_eq!(first.len(), second.len(), "the two baselines should have the same size");
    settle(&repo, "replacing the baseline");
    let synced = status(&repo);
    assert_eq!(synced["changes"], serde_json::json!({"added": [], "modified": [], "removed": []}));

    let path = repo.join(".castoff/sources.lock");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, &first).unwrap();
    fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    let cold = assert_warm_equals_cold(&repo, "the baseline replaced");
    assert_eq!(cold["changes"]["modified"], serde_json::json!(["src/deep/top.py"]), "{cold}");
}
