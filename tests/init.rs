//! `castoff init`: never clobbers castoff.toml without `--force`, creates VERSION only
//! when missing, and writes nothing when it must refuse.

use crate::support::{assert_rejected, temp_dir, Loc, TempRepo};

/// A repository with app.py and lib.py and VERSION holding `version`, not yet initialised.
fn uninitialised(version: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", version);
    repo.write("app.py", "print('app')\n");
    repo.write("lib.py", "def f(): pass\n");
    repo
}

const HAND_WRITTEN: &str = "# mine, do not touch\n[version]\nsources = [\"app.py\"]\n";

/// `init` refuses to overwrite an existing castoff.toml: exit 2, a hint naming `--force`, nothing changed.
#[test]
fn init_keeps_an_existing_config() {
    let repo = uninitialised("1.0.0\n");
    repo.write("castoff.toml", HAND_WRITTEN);
    assert_rejected(&repo, &["init"], None, &["castoff.toml", "--force"]);
    assert_eq!(repo.read_string("castoff.toml"), HAND_WRITTEN);
}

/// `init --force` replaces castoff.toml with a fresh one and keeps VERSION.
#[test]
fn init_force_overwrites_the_config() {
    let repo = uninitialised("1.0.0\n");
    repo.write("castoff.toml", HAND_WRITTEN);
    repo.ok(&["init", "--force"]);
    let text = repo.read_string("castoff.toml");
    assert!(!text.contains("# mine"), "{text}");
    let config: toml::Value = toml::from_str(&text).unwrap();
    let sources = config["version"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{text}");
    assert_eq!(repo.read("VERSION"), b"1.0.0\n");
    assert_eq!(repo.baseline().paths, ["app.py", "lib.py"]);
}

/// Without a VERSION, `init` creates one at 0.1.0 and records the baseline for it.
#[test]
fn init_creates_a_missing_version() {
    let repo = TempRepo::new();
    repo.write("app.py", "print('app')\n");
    repo.ok(&["init"]);
    assert_eq!(repo.read("VERSION"), b"0.1.0\n");
    assert_eq!(repo.baseline().version, "0.1.0");
    assert_eq!(repo.baseline().paths, ["app.py"]);
}

/// `init` with a VERSION it cannot parse exits 2 and writes no file.
#[test]
fn init_rejects_a_broken_version_and_writes_nothing() {
    let repo = uninitialised("v1.0.0\n");
    assert_rejected(&repo, &["init"], Some(Loc::file("VERSION").line(1)), &["v1.0.0"]);
    assert!(!repo.exists(".castoff"), "created .castoff/");
}

/// `init` with VERSION symlinked outside the repository exits 2 and writes no file.
#[test]
fn init_rejects_a_version_symlinked_outside_and_writes_nothing() {
    let outside = temp_dir();
    std::fs::write(outside.path().join("VERSION"), "1.0.0\n").unwrap();
    let repo = uninitialised("1.0.0\n");
    repo.remove("VERSION");
    repo.symlink(outside.path().join("VERSION"), "VERSION");
    let loc = Loc::file("castoff.toml").key("version.file");
    assert_rejected(&repo, &["init"], Some(loc), &["outside the project"]);
    assert!(!repo.exists("castoff.toml"), "wrote castoff.toml");
}
