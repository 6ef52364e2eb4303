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

// `castoff init --xtask` and `castoff init --ci github|gitlab`: the scaffolds, rendered
// from castoff.toml, never clobbering a file without `--force`.

/// A project releasing a 3-platform image to a registry and a package to a keyed feed.
fn releasing_project() -> TempRepo {
    let repo = uninitialised("1.2.3\n");
    repo.write(
        "castoff.toml",
        "[version]\nsources = [\"app.py\"]\n\n\
         [image]\nname = \"registry.example.com/team/app\"\n\
         platforms = [\"linux/amd64\", \"linux/arm/v6\", \"linux/arm/v7\"]\nbuilder = \"native\"\n\n\
         [[package]]\nnuspec = \"nuget/App.nuspec\"\n\n\
         [[feed]]\nname = \"nuget\"\nurl = \"https://api.nuget.org/v3/index.json\"\napi_key_env = \"MY_NUGET_KEY\"\n",
    );
    repo
}

fn yaml(repo: &TempRepo, rel: &str) -> serde_yaml_ng::Value {
    let text = repo.read_string(rel);
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}\n{text}"))
}

/// The GitHub workflow has one matrix entry per platform, building with its digest
/// file, and the feed's key mapped from the repository secrets under the name
/// castoff.toml gives.
#[test]
fn init_ci_github_fans_out_per_platform() {
    let repo = releasing_project();
    repo.ok(&["init", "--ci", "github"]);
    let workflow = yaml(&repo, ".github/workflows/release.yml");
    let jobs = &workflow["jobs"];
    let include = jobs["build"]["strategy"]["matrix"]["include"].as_sequence().unwrap();
    let platforms: Vec<_> = include.iter().map(|entry| entry["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]);
    let text = repo.read_string(".github/workflows/release.yml");
    assert!(text.contains("castoff build --platform \"$PLATFORM\" --digest-file \"digests/$SUFFIX.json\""), "{text}");
    assert!(text.contains("castoff manifest --from-digests digests"), "{text}");
    let steps = jobs["publish"]["steps"].as_sequence().unwrap();
    let publish = steps.iter().find(|step| step["run"].as_str() == Some("castoff publish")).unwrap();
    assert_eq!(publish["env"]["MY_NUGET_KEY"].as_str(), Some("${{ secrets.MY_NUGET_KEY }}"));
    // The registry password reaches `docker login` on stdin, never on its command line.
    let logins: Vec<&str> = text.lines().filter(|line| line.contains("docker login")).collect();
    assert!(!logins.is_empty(), "{text}");
    for line in logins {
        assert!(line.contains("--password-stdin") && !line.contains("--password ") && !line.contains(" -p "), "{line}");
    }
}

/// The GitLab pipeline has the same fan-out as a parallel matrix.
#[test]
fn init_ci_gitlab_fans_out_per_platform() {
    let repo = releasing_project();
    repo.ok(&["init", "--ci", "gitlab"]);
    let pipeline = yaml(&repo, ".gitlab-ci.yml");
    let matrix = pipeline["build"]["parallel"]["matrix"].as_sequence().unwrap();
    let platforms: Vec<_> = matrix.iter().map(|entry| entry["PLATFORM"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]);
    assert_eq!(pipeline["manifest"]["script"][0].as_str(), Some("castoff manifest --from-digests digests"));
    assert_eq!(pipeline["publish"]["script"][0].as_str(), Some("castoff publish"));
    assert!(repo.read_string(".gitlab-ci.yml").contains("MY_NUGET_KEY"));
}

/// Without [image] there is no build job, only publishing.
#[test]
fn init_ci_without_an_image_has_no_build_job() {
    let repo = releasing_project();
    let config = repo.read_string("castoff.toml");
    let start = config.find("[image]").unwrap();
    let end = config.find("[[package]]").unwrap();
    repo.write("castoff.toml", format!("{}{}", &config[..start], &config[end..]));
    repo.ok(&["init", "--ci", "github"]);
    let workflow = yaml(&repo, ".github/workflows/release.yml");
    let jobs = workflow["jobs"].as_mapping().unwrap();
    let names: Vec<_> = jobs.keys().map(|key| key.as_str().unwrap()).collect();
    assert_eq!(names, ["publish"]);
    assert!(!repo.read_string(".github/workflows/release.yml").contains("castoff build"));
}

/// An existing workflow is refused (exit 2, naming it and `--force`), nothing is
/// written; `--force` replaces it.
#[test]
fn init_ci_keeps_an_existing_workflow() {
    let repo = releasing_project();
    repo.write(".github/workflows/release.yml", "# mine\n");
    assert_rejected(&repo, &["init", "--ci", "github"], None, &[".github/workflows/release.yml", "--force"]);
    assert_eq!(repo.read_string(".github/workflows/release.yml"), "# mine\n");
    repo.ok(&["init", "--ci", "github", "--force"]);
    assert!(repo.read_string(".github/workflows/release.yml").contains("castoff manifest"));
}

/// One refused file stops the whole scaffold: the xtask's other files are not written.
#[test]
fn init_xtask_refuses_as_a_whole() {
    let repo = releasing_project();
    repo.write("xtask/src/main.rs", "fn main() {}\n");
    assert_rejected(&repo, &["init", "--xtask"], None, &["xtask/src/main.rs", "--force"]);
    assert!(!repo.exists("xtask/Cargo.toml"));
    assert!(!repo.exists(".cargo"));
}

/// `--dry-run` writes nothing, for either scaffold.
#[test]
fn init_scaffold_dry_run_writes_nothing() {
    let repo = releasing_project();
    let before = repo.tree_hash();
    repo.ok(&["init", "--ci", "gitlab", "--dry-run"]);
    repo.ok(&["init", "--xtask", "--dry-run"]);
    assert_eq!(repo.tree_hash(), before);
    assert!(!repo.exists(".gitlab-ci.yml") && !repo.exists("xtask") && !repo.exists(".cargo"));
}

/// The xtask scaffold writes the crate and the cargo alias; its main.rs runs the
/// release through the library.
#[test]
fn init_xtask_writes_the_crate_and_the_alias() {
    let repo = releasing_project();
    repo.ok(&["init", "--xtask"]);
    let main = repo.read_string("xtask/src/main.rs");
    assert!(main.contains("Release::plan"), "{main}");
    let manifest: toml::Table = repo.read_string("xtask/Cargo.toml").parse().unwrap();
    assert_eq!(manifest["package"]["name"].as_str(), Some("xtask"));
    assert!(manifest["dependencies"]["castoff"].is_str());
    let config: toml::Table = repo.read_string(".cargo/config.toml").parse().unwrap();
    assert_eq!(config["alias"]["xtask"].as_str(), Some("run --package xtask --"));
}
