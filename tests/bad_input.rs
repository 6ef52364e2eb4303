//! Bad input is exit 2, an error naming the file (and line and key) with a hint, and no
//! file modified: broken VERSION files, broken castoff.toml, paths leaving the project,
//! a damaged baseline.

use std::path::Path;

use crate::support::{check_rejected, config, makefile_project, temp_dir, tree_hash_of, Loc, TempRepo};

/// One way to break an initialised project, and how castoff must report it.
struct Case {
    name: &'static str,
    /// Break the project; `outside` is a directory outside the repository.
    setup: fn(&TempRepo, &Path),
    /// The commands that must each reject it.
    commands: &'static [&'static [&'static str]],
    loc: Loc,
    mentions: &'static [&'static str],
}

const READERS: &[&[&str]] = &[&["bump", "patch"], &["bump", "auto"], &["version"], &["status"]];
const SCANNERS: &[&[&str]] = &[&["bump", "patch"], &["bump", "auto"], &["status"]];

/// Break a fresh Makefile project per case and check every command rejects it; report
/// every failing case at once.
fn run_cases(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let repo = makefile_project();
        let outside = temp_dir();
        (case.setup)(&repo, outside.path());
        let outside_before = tree_hash_of(outside.path());
        for args in case.commands {
            if let Err(complaint) = check_rejected(&repo, args, Some(case.loc), case.mentions) {
                failures.push(format!("[{}] {complaint}", case.name));
            }
        }
        if tree_hash_of(outside.path()) != outside_before {
            failures.push(format!("[{}] a file outside the repository changed", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn write_config(repo: &TempRepo, text: &str) {
    repo.write("castoff.toml", text);
}

/// Missing, empty, incomplete, prefixed, over-long and non-UTF-8 VERSION files are rejected.
#[test]
fn broken_version_files_are_rejected() {
    let version = Loc::file("VERSION").line(1);
    run_cases(&[
        Case {
            name: "missing",
            setup: |repo, _| repo.remove("VERSION"),
            commands: READERS,
            loc: Loc::file("VERSION"),
            mentions: &["does not exist"],
        },
        Case {
            name: "empty",
            setup: |repo, _| repo.write("VERSION", ""),
            commands: READERS,
            loc: version,
            mentions: &["empty"],
        },
        Case {
            name: "two parts",
            setup: |repo, _| repo.write("VERSION", "1.2\n"),
            commands: READERS,
            loc: version,
            mentions: &["`1.2`", "1.2.0"],
        },
        Case {
            name: "v prefix",
            setup: |repo, _| repo.write("VERSION", "v1.2.3\n"),
            commands: READERS,
            loc: version,
            mentions: &["`v1.2.3`"],
        },
        Case {
            name: "four parts",
            setup: |repo, _| repo.write("VERSION", "1.2.3.4\n"),
            commands: READERS,
            loc: version,
            mentions: &["`1.2.3.4`"],
        },
        Case {
            name: "not UTF-8",
            setup: |repo, _| repo.write("VERSION", b"\xff\xfe"),
            commands: READERS,
            loc: version,
            mentions: &["UTF-8"],
        },
    ]);
}

/// TOML syntax errors, unknown keys and unknown tables are reported at their line and key.
#[test]
fn broken_config_is_rejected() {
    run_cases(&[
        Case {
            name: "unterminated string",
            setup: |repo, _| write_config(repo, "[version]\nfile = \"VERSION\nsources = []\n"),
            commands: READERS,
            loc: Loc::file("castoff.toml").line(2),
            mentions: &[],
        },
        Case {
            name: "misspelt key",
            setup: |repo, _| write_config(repo, "[version]\nfile = \"VERSION\"\nsorces = [\"app.py\"]\n"),
            commands: READERS,
            loc: Loc::file("castoff.toml").line(3).key("version.sorces"),
            mentions: &["sources"],
        },
        Case {
            name: "misspelt table",
            setup: |repo, _| {
                let text = format!("{}\n[imgae]\nname = \"app\"\n", config(&["app.py"], &[]));
                write_config(repo, &text)
            },
            commands: READERS,
            loc: Loc::file("castoff.toml").line(6).key("imgae"),
            mentions: &[],
        },
    ]);
}

/// Configured paths that leave the project (`..` or absolute) are rejected before anything is read.
#[test]
fn config_paths_outside_the_project_are_rejected() {
    run_cases(&[
        Case {
            name: "file climbs out",
            setup: |repo, _| write_config(repo, "[version]\nfile = \"../VERSION\"\n"),
            commands: READERS,
            loc: Loc::file("castoff.toml").line(2).key("version.file"),
            mentions: &["../VERSION"],
        },
        Case {
            name: "source glob climbs out",
            setup: |repo, _| write_config(repo, &config(&["app.py", "../x/*.py"], &[])),
            commands: READERS,
            loc: Loc::file("castoff.toml").line(3).key("version.sources"),
            mentions: &["../x/*.py"],
        },
        Case {
            name: "absolute file",
            setup: |repo, outside| {
                let dir = outside_file(outside);
                write_config(repo, &format!("[version]\nfile = \"{dir}/VERSION\"\n"))
            },
            commands: READERS,
            loc: Loc::file("castoff.toml").line(2).key("version.file"),
            mentions: &["absolute"],
        },
        Case {
            name: "absolute source glob",
            setup: |repo, outside| {
                let glob = format!("{}/*.py", outside_file(outside));
                write_config(repo, &config(&["app.py", &glob], &[]))
            },
            commands: READERS,
            loc: Loc::file("castoff.toml").line(3).key("version.sources"),
            mentions: &["absolute"],
        },
        Case {
            name: "absolute exclude glob",
            setup: |repo, outside| {
                let glob = format!("{}/**", outside_file(outside));
                write_config(repo, &config(&["app.py"], &[&glob]))
            },
            commands: READERS,
            loc: Loc::file("castoff.toml").line(4).key("version.exclude"),
            mentions: &["absolute"],
        },
        Case {
            name: "VERSION symlinked out",
            setup: |repo, outside| {
                let dir = outside_file(outside);
                repo.remove("VERSION");
                repo.symlink(format!("{dir}/VERSION"), "VERSION");
            },
            commands: READERS,
            loc: Loc::file("castoff.toml").key("version.file"),
            mentions: &["outside the project"],
        },
    ]);
}

/// A hand-edited or conflicted `.castoff/sources.lock` is named, with a hint to restore it.
#[test]
fn damaged_baseline_is_rejected() {
    run_cases(&[
        Case {
            name: "digest edited by hand",
            setup: |repo, _| {
                let text = repo.read_string(".castoff/sources.lock");
                let edited: Vec<String> = text.lines().map(flip_first_digest_digit).collect();
                assert_ne!(edited.join("\n") + "\n", text, "no digest to edit");
                replace_file(repo, ".castoff/sources.lock", &(edited.join("\n") + "\n"));
            },
            commands: SCANNERS,
            loc: Loc::file(".castoff/sources.lock").line(1),
            mentions: &["damaged"],
        },
        Case {
            name: "merge conflict",
            setup: |repo, _| {
                let text = repo.read_string(".castoff/sources.lock");
                let conflicted = format!("<<<<<<< ours\n{text}=======\n{text}>>>>>>> theirs\n");
                replace_file(repo, ".castoff/sources.lock", &conflicted);
            },
            commands: SCANNERS,
            loc: Loc::file(".castoff/sources.lock").line(1),
            mentions: &["conflict"],
        },
    ]);
}

/// Put a valid VERSION and a source file in `outside`; return its path for configs.
fn outside_file(outside: &Path) -> String {
    std::fs::write(outside.join("VERSION"), "1.0.0\n").unwrap();
    std::fs::write(outside.join("x.py"), "print('outside')\n").unwrap();
    outside.to_str().unwrap().to_string()
}

/// Change the first hex digit of a `<digest>  app.py` line; other lines pass through.
fn flip_first_digest_digit(line: &str) -> String {
    match line.split_once("  ") {
        Some((digest, path)) if path == "app.py" => {
            let flipped = if digest.starts_with('0') { '1' } else { '0' };
            format!("{flipped}{}  {path}", &digest[1..])
        }
        _ => line.to_string(),
    }
}

/// Replace a file the way editors and git do (write a new file, rename it over), so the
/// edit is visible whatever the filesystem's timestamp granularity.
fn replace_file(repo: &TempRepo, rel: &str, text: &str) {
    let temp = format!("{rel}.edit");
    repo.write(&temp, text);
    std::fs::rename(repo.join(&temp), repo.join(rel)).unwrap();
}

/// A broken VERSION in a never-initialised repository is rejected without creating `.castoff/`.
#[test]
fn broken_version_in_a_bare_repository_creates_nothing() {
    for args in [&["bump", "patch"][..], &["bump", "auto"]] {
        let repo = TempRepo::new();
        repo.write("VERSION", "1.2\n");
        if let Err(complaint) = check_rejected(&repo, args, Some(Loc::file("VERSION").line(1)), &[]) {
            panic!("{complaint}");
        }
    }
}
