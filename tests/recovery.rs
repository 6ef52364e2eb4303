//! Recovery: a bump interrupted between writing the baseline and VERSION is finished,
//! not repeated; a VERSION raised by hand is respected, not bumped again.

use crate::support::{makefile_project, makefile_project_bumped};

/// After a crash left VERSION at 0.1.9 and the baseline at 0.1.10, any bump finishes at 0.1.10.
#[test]
fn interrupted_bump_is_finished_not_repeated() {
    for args in [&["bump", "auto"][..], &["bump", "patch"], &["bump", "minor"]] {
        let repo = makefile_project_bumped();
        // The crash: the baseline names 0.1.10, VERSION was never written.
        repo.write("VERSION", "0.1.9\n");
        assert_eq!(repo.baseline().version, "0.1.10");

        let status = repo.ok_json(&["status"]);
        assert_eq!(status["interrupted_bump"], "0.1.10", "{status}");
        // Finishing the bump is work to do.
        repo.castoff(["status", "--check"]).assert().code(3);

        let outcome = repo.ok_json(args);
        assert_eq!(outcome["version"], "0.1.10", "{args:?}: {outcome}");
        let reason = outcome["reason"].as_str().unwrap();
        assert!(reason.contains("interrupted"), "{args:?}: {reason}");
        assert_eq!(repo.read("VERSION"), b"0.1.10\n", "{args:?}");

        let again = repo.ok_json(&["bump", "auto"]);
        assert_eq!(again["bumped"], false, "{args:?}: {again}");
        assert_eq!(repo.version(), "0.1.10");
    }
}

/// The human output of a finished interrupted bump says so.
#[test]
fn interrupted_bump_is_reported() {
    let repo = makefile_project_bumped();
    repo.write("VERSION", "0.1.9\n");
    let stdout = repo.ok(&["bump", "patch"]);
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(stdout.contains("0.1.10") && !stdout.contains("0.1.11"), "{stdout}");
}

/// A VERSION raised by hand past changed sources is up to date; `bump auto` keeps it and records the baseline.
#[test]
fn version_raised_by_hand_is_kept() {
    let repo = makefile_project();
    repo.write("app.py", "print('edited')\n");
    repo.write("VERSION", "0.5.0\n");
    repo.castoff(["status", "--check"]).assert().code(0);

    let outcome = repo.ok_json(&["bump", "auto"]);
    assert_eq!(outcome["version"], "0.5.0", "{outcome}");
    assert_eq!(outcome["bumped"], false, "{outcome}");
    assert_eq!(repo.read("VERSION"), b"0.5.0\n");
    assert_eq!(repo.baseline().version, "0.5.0");

    let status = repo.ok_json(&["status"]);
    assert_eq!(status["changes"], serde_json::json!({"added": [], "modified": [], "removed": []}));
    assert_eq!(status["bump_due"], false, "{status}");
    repo.write("requirements.txt", "flask==3.1.0\n");
    repo.castoff(["status", "--check"]).assert().code(3);
}
