//! Prereleases: starting, advancing and finishing a release-candidate series, and the
//! requests that make no sense.

use crate::support::{assert_rejected, project, Loc, TempRepo};

/// VERSION text, the command, where the error points, what else it must mention.
type Rejection = (&'static str, &'static [&'static str], Option<Loc>, &'static [&'static str]);

fn app_project(version: &str) -> TempRepo {
    project(version, &[("app.py", "print('v1')\n")])
}

/// 1.2.3 → minor --pre rc → 1.3.0-rc.1 → rc.2 → (edit, auto) rc.3 → release → 1.3.0.
#[test]
fn release_candidate_series() {
    let repo = app_project("1.2.3\n");
    let steps: [(&[&str], Option<&str>, &str); 4] = [
        (&["bump", "minor", "--pre", "rc"], None, "1.3.0-rc.1"),
        (&["bump", "minor", "--pre", "rc"], None, "1.3.0-rc.2"),
        (&["bump", "auto"], Some("print('v2')\n"), "1.3.0-rc.3"),
        (&["bump", "release"], None, "1.3.0"),
    ];
    for (args, edit, expected) in steps {
        if let Some(text) = edit {
            repo.write("app.py", text);
        }
        let outcome = repo.ok_json(args);
        assert_eq!(outcome["version"], expected, "{args:?}: {outcome}");
        assert_eq!(outcome["tag"], format!("v{expected}"), "{outcome}");
        assert_eq!(outcome["bumped"], true, "{outcome}");
        assert_eq!(repo.read_string("VERSION"), format!("{expected}\n"));
        assert_eq!(repo.baseline().version, expected);
    }
}

/// Impossible prerelease requests exit 2 with a hint and change nothing.
#[test]
fn impossible_prerelease_requests_are_rejected() {
    let version_file = Some(Loc::file("VERSION").line(1));
    let cases: [Rejection; 6] = [
        // Nothing to release.
        ("1.2.3\n", &["bump", "release"], version_file, &["1.2.3", "prerelease"]),
        // alpha sorts before rc: going backwards.
        ("1.3.0-rc.2\n", &["bump", "minor", "--pre", "alpha"], version_file, &["1.3.0-rc.2", "alpha"]),
        ("1.3.0-rc.2\n", &["bump", "patch", "--pre", "alpha"], version_file, &["backwards"]),
        // --pre only goes with major, minor or patch.
        ("1.2.3\n", &["bump", "auto", "--pre", "rc"], None, &["--pre", "auto"]),
        ("1.3.0-rc.2\n", &["bump", "release", "--pre", "rc"], None, &["--pre", "release"]),
        // A label of digits would read as the counter.
        ("1.2.3\n", &["bump", "minor", "--pre", "7"], version_file, &["`7`"]),
    ];
    for (version, args, loc, mentions) in cases {
        let repo = app_project(version);
        assert_rejected(&repo, args, loc, mentions);
        assert_eq!(repo.read_string("VERSION"), version);
    }
}
