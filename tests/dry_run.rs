//! `--dry-run` reports what would happen and writes nothing: not VERSION, not the
//! baseline, not castoff.toml, not even the stat cache or the lock file.

use crate::support::{makefile_project, TempRepo};

/// One dry run: how to prepare the repository, the command, what stdout must say.
struct Case {
    name: &'static str,
    setup: fn() -> TempRepo,
    args: &'static [&'static str],
    stdout: &'static [&'static str],
}

/// The initialised Makefile project as a fresh clone has it: no cache, no lock.
fn clean_project() -> TempRepo {
    let repo = makefile_project();
    repo.forget_private_state();
    repo
}

/// The same with app.py edited since the baseline.
fn edited_project() -> TempRepo {
    let repo = clean_project();
    repo.write("app.py", "print('edited')\n");
    repo
}

/// A repository with VERSION and sources but no castoff.toml and no `.castoff/`.
fn uninitialised() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "0.1.9\n");
    repo.write("app.py", "print('hello')\n");
    repo
}

/// Whether the stat cache and the lock file exist.
fn private_state(repo: &TempRepo) -> [bool; 2] {
    [".castoff/cache", ".castoff/lock"].map(|rel| repo.exists(rel))
}

const CASES: &[Case] = &[
    Case {
        name: "bump patch",
        setup: clean_project,
        args: &["bump", "patch", "--dry-run"],
        stdout: &["dry run", "0.1.9", "0.1.10"],
    },
    Case {
        name: "bump auto",
        setup: edited_project,
        args: &["bump", "auto", "--dry-run"],
        stdout: &["dry run", "M app.py", "0.1.10"],
    },
    Case {
        name: "bump before init",
        setup: uninitialised,
        args: &["bump", "minor", "--dry-run"],
        stdout: &["dry run", "0.2.0"],
    },
    Case {
        name: "init",
        setup: uninitialised,
        args: &["init", "--dry-run"],
        stdout: &["dry run", "castoff.toml", "app.py"],
    },
];

/// Every dry run prints its plan (human and JSON) and leaves every file, cache and lock as it was.
#[test]
fn dry_runs_write_nothing() {
    for case in CASES {
        let repo = (case.setup)();
        let before = repo.tree_hash();
        let private = private_state(&repo);

        let stdout = repo.ok(case.args);
        for needle in case.stdout {
            assert!(stdout.contains(needle), "[{}] stdout lacks {needle:?}:\n{stdout}", case.name);
        }
        let outcome = repo.ok_json(case.args);
        assert_eq!(outcome["dry_run"], true, "[{}] {outcome}", case.name);

        assert_eq!(repo.tree_hash(), before, "[{}] modified files", case.name);
        assert_eq!(private_state(&repo), private, "[{}] created the cache or lock", case.name);
    }
}

/// A dry `bump auto` reports the version it would write and the changed source in JSON.
#[test]
fn dry_bump_auto_reports_the_plan() {
    let repo = edited_project();
    let outcome = repo.ok_json(&["bump", "auto", "--dry-run"]);
    assert_eq!(outcome["previous"], "0.1.9", "{outcome}");
    assert_eq!(outcome["version"], "0.1.10", "{outcome}");
    assert_eq!(outcome["bumped"], true, "{outcome}");
    assert_eq!(outcome["changes"]["modified"], serde_json::json!(["app.py"]));
    assert_eq!(repo.version(), "0.1.9");
    repo.castoff(["status", "--check"]).assert().code(3);
}
