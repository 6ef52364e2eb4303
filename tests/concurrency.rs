//! Concurrent bumps: the project lock serialises writers, so no increment is lost or
//! made twice.

use std::process::{Command, Output};
use std::sync::{Arc, Barrier};
use std::thread;

use crate::support::{json_line, project, TempRepo};

/// Issue 7's count: fifty `castoff bump patch` at once lose nothing.
const RACERS: usize = 50;

/// Start `RACERS` `castoff --json bump patch` processes at the same moment; their outputs.
fn race_bump_patch(repo: &TempRepo) -> Vec<Output> {
    let binary = assert_cmd::cargo::cargo_bin("castoff");
    let barrier = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (binary, dir, barrier) = (binary.clone(), repo.path().to_path_buf(), barrier.clone());
            thread::spawn(move || {
                let mut command = Command::new(binary);
                command.current_dir(dir).args(["--json", "bump", "patch"]);
                barrier.wait();
                command.output().unwrap()
            })
        })
        .collect();
    racers.into_iter().map(|r| r.join().unwrap()).collect()
}

/// Every racer bumped (each waits for the lock), each reported a distinct version
/// 1.0.1..=1.0.N, and VERSION and the baseline end at 1.0.N.
fn assert_serialised(repo: &TempRepo, outputs: &[Output]) {
    let mut reported = Vec::new();
    for output in outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            let outcome = json_line(&output.stdout);
            assert_eq!(outcome["bumped"], true, "{outcome}");
            reported.push(outcome["version"].as_str().unwrap().to_string());
        } else {
            assert!(stderr.lines().any(|l| l.starts_with("error: ")), "a loser failed without an error: {stderr}");
        }
    }
    let wins = reported.len();
    crate::support::count(&format!(
        "concurrent bumps: {} started, {wins} bumped, {} failed",
        outputs.len(),
        outputs.len() - wins
    ));
    assert_eq!(wins, outputs.len(), "a bump failed instead of waiting its turn (the lock waits up to 120 s)");
    reported.sort_by_key(|v| v.rsplit('.').next().unwrap().parse::<u64>().unwrap());
    let expected: Vec<String> = (1..=wins).map(|patch| format!("1.0.{patch}")).collect();
    assert_eq!(reported, expected, "increments lost or doubled");
    let last = format!("1.0.{wins}");
    assert_eq!(repo.read_string("VERSION"), format!("{last}\n"));
    assert_eq!(repo.baseline().version, last);
    let status = repo.ok_json(&["status"]);
    assert!(status.get("interrupted_bump").is_none_or(|v| v.is_null()), "{status}");
    assert_eq!(status["bump_due"], false, "{status}");
}

/// Fifty simultaneous `bump patch` on an initialised 1.0.0 project end at 1.0.50.
#[test]
fn concurrent_bumps_in_an_initialised_project() {
    let repo = project("1.0.0\n", &[("app.py", "print('app')\n")]);
    let outputs = race_bump_patch(&repo);
    assert_serialised(&repo, &outputs);
}

/// The same in a repository without `.castoff/`, where the racers also create the lock file.
#[test]
fn concurrent_bumps_in_a_bare_repository() {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.0.0\n");
    let outputs = race_bump_patch(&repo);
    assert_serialised(&repo, &outputs);
}
