//! Secrets never appear in output, the journal or a child's argv, for every command.
//!
//! One copy of the example (tests/support/example.rs) releases to a registry behind
//! htpasswd basic auth (the password in a docker config.json `auths` entry, or in
//! `CASTOFF_REGISTRY_USERNAME`/`PASSWORD`) and to pynuget (the key in the variable
//! castoff.toml names), with the git step on; a second, small project builds a `FROM
//! scratch` Dockerfile with buildah and podman into the same registry and joins it with
//! `docker manifest`. Every command castoff has is run, each with `-v` and with `-v
//! --json` (`-v` only adds to what `--json` prints), with the secrets set, including runs
//! that fail because the registry refuses a wrong password (401) or pynuget a wrong key
//! (401). Recording `git`, `docker`, `buildah` and `podman` wrappers are first on PATH.
//! No secret (the password, its base64 `user:password`, the feed key, and the wrong ones
//! too) may appear in any stdout or stderr, any file under either repository (castoff's
//! journal, cache and lock, .git included), or any recorded argv. Real programs:
//! docker-registry (htpasswd), pynuget, git, buildah, podman, docker (the CLI's
//! `manifest` commands; no daemon).

use std::collections::BTreeSet;
use std::fs;

use base64::Engine;
use testkit::buildah::ContainerStorage;
use testkit::pynuget::Pynuget;

use crate::support::example::{
    castoff, configure, example_repo, feed_puts, next_version, Run, Setup, GIT_IDENTITY, KEY_ENV, STEPS,
};
use crate::support::record::Recorder;
use crate::support::registry::Registry;
use crate::support::{temp_dir, TempRepo};

/// The registry user; not a secret.
const USER: &str = "castoff-secrets";
/// The daemonless project's Dockerfile: no base image to pull, no emulation needed.
const DOCKERFILE: &str = "FROM scratch\nARG APP_VERSION\nCOPY hello.txt /hello.txt\nLABEL app.version=$APP_VERSION\n";

/// A project building [`DOCKERFILE`] with buildah for two platforms into
/// `REGISTRY/team/daemonless`; no packages, no feeds.
fn daemonless_project(registry: &Registry) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "0.1.0\n");
    repo.write("hello.txt", "hello\n");
    repo.write("Dockerfile", DOCKERFILE);
    repo.write(
        "castoff.toml",
        format!(
            "[version]\n\n[image]\nname = \"{}/team/daemonless\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             builder = \"buildah\"\n\n[network]\nattempts = 2\ntimeout_seconds = 10\ntotal_seconds = 30\n",
            registry.host()
        ),
    );
    repo.commit_all();
    repo
}

/// A secret for this test run only: recognisable, and found nowhere by chance.
fn unique_secret(label: &str) -> String {
    let mut bytes = [0u8; 12];
    fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).unwrap();
    format!("{label}-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Every place a secret must not be, `(where, bytes)`: those that hold `secret`.
fn find_secret(places: &[(String, Vec<u8>)], secret: &str) -> Vec<String> {
    places
        .iter()
        .filter(|(_, bytes)| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()))
        .map(|(place, _)| place.clone())
        .collect()
}

/// A directory with a docker `config.json` whose `auths` entry for `host` holds `auth`.
fn docker_config(host: &str, auth: &str) -> tempfile::TempDir {
    let dir = temp_dir();
    let auths = serde_json::json!({ "auths": { host: { "auth": auth } } });
    fs::write(dir.path().join("config.json"), auths.to_string()).unwrap();
    dir
}

/// Where the registry credentials come from, and whether they are right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creds {
    /// The docker config's `auths` entry, right password.
    DockerConfig,
    /// `CASTOFF_REGISTRY_USERNAME`/`PASSWORD`, right password (no docker config).
    Env,
    /// The docker config's `auths` entry with a wrong password: the registry answers 401.
    WrongPassword,
    /// Right registry credentials, a wrong feed key: pynuget answers 401.
    WrongKey,
}

/// What a case must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Success,
    /// Fail (exit ≠ 0) with the registry having answered 401.
    RegistryRefused,
    /// Fail (exit ≠ 0) with pynuget having answered 401 to a push.
    FeedRefused,
    /// Fail with exit 2 (bad input), without touching a service.
    Rejected,
    /// Succeed or fail: only what it prints and writes is checked.
    Any,
}

/// Which project a case runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    /// The example: native builder, NuGet package, pynuget, git step.
    Example,
    /// [`daemonless_project`]: buildah, podman and `docker manifest`.
    Daemonless,
}

/// One command, run twice (`-v ARGS`, `-v --json ARGS`).
struct Case {
    project: In,
    args: &'static [&'static str],
    creds: Creds,
    expect: Expect,
}

const fn case(args: &'static [&'static str], creds: Creds, expect: Expect) -> Case {
    Case { project: In::Example, args, creds, expect }
}

const fn daemonless(args: &'static [&'static str], creds: Creds, expect: Expect) -> Case {
    Case { project: In::Daemonless, args, creds, expect }
}

/// Every command castoff has, in an order that makes each do real work: the read-only
/// ones, then each step on its own (a refused run before the one that succeeds, so the
/// refusal comes from the push itself), then the release (refused by the registry, then
/// refused by the feed after building, then continued to the end; its `--json` run checks
/// every step again, with auth).
const CASES: &[Case] = &[
    // castoff.toml exists: refused without --force.
    case(&["init", "--dry-run"], Creds::DockerConfig, Expect::Rejected),
    case(&["init", "--dry-run", "--force"], Creds::DockerConfig, Expect::Success),
    case(&["init", "--ci", "github", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["init", "--ci", "gitlab", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["init", "--xtask", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["version"], Creds::DockerConfig, Expect::Success),
    case(&["status"], Creds::DockerConfig, Expect::Success),
    case(&["bump", "patch", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["plan"], Creds::DockerConfig, Expect::Success),
    case(&["completions", "bash"], Creds::DockerConfig, Expect::Success),
    case(&["man"], Creds::DockerConfig, Expect::Success),
    case(&["build", "--dry-run"], Creds::DockerConfig, Expect::Success),
    // Auto-detection probes docker buildx, docker, buildah and podman.
    case(&["build", "--dry-run", "--builder", "auto"], Creds::DockerConfig, Expect::Success),
    case(&["build"], Creds::WrongPassword, Expect::RegistryRefused),
    case(&["build"], Creds::DockerConfig, Expect::Success),
    case(&["build"], Creds::Env, Expect::Success),
    case(&["manifest", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["manifest", "--mode", "docker-cli", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["manifest"], Creds::WrongPassword, Expect::RegistryRefused),
    case(&["manifest"], Creds::DockerConfig, Expect::Success),
    case(&["manifest", "--dry-run"], Creds::Env, Expect::Success),
    case(&["pack", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["pack"], Creds::DockerConfig, Expect::Success),
    case(&["publish", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["publish"], Creds::WrongKey, Expect::FeedRefused),
    case(&["publish"], Creds::DockerConfig, Expect::Success),
    case(&["release", "--dry-run"], Creds::DockerConfig, Expect::Success),
    case(&["release", "--dry-run"], Creds::Env, Expect::Success),
    case(&["release", "--dry-run"], Creds::WrongPassword, Expect::RegistryRefused),
    case(&["release"], Creds::WrongPassword, Expect::RegistryRefused),
    case(&["release"], Creds::WrongKey, Expect::FeedRefused),
    case(&["release"], Creds::DockerConfig, Expect::Success),
    case(&["release"], Creds::Env, Expect::Success),
    // buildah and podman push with the credentials they read from DOCKER_CONFIG; docker
    // manifest create/push too; castoff reads and verifies with its own.
    daemonless(&["build"], Creds::WrongPassword, Expect::RegistryRefused),
    daemonless(&["build"], Creds::DockerConfig, Expect::Success),
    // buildah reads only DOCKER_CONFIG, not CASTOFF_REGISTRY_*: today its push fails;
    // either way nothing may leak on the way.
    daemonless(&["build"], Creds::Env, Expect::Any),
    daemonless(&["build", "--builder", "podman", "--platform", "linux/amd64"], Creds::DockerConfig, Expect::Success),
    daemonless(&["manifest", "--mode", "docker-cli"], Creds::WrongPassword, Expect::RegistryRefused),
    daemonless(&["manifest", "--mode", "docker-cli"], Creds::DockerConfig, Expect::Success),
    daemonless(&["release", "--dry-run"], Creds::DockerConfig, Expect::Success),
];

/// The subcommands `castoff --help` lists.
fn castoff_commands(repo: &TempRepo) -> BTreeSet<String> {
    let help = castoff(repo, &["--help"], &[]);
    help.assert_ok();
    let section = help.stdout.split("Commands:").nth(1).unwrap_or_else(|| panic!("no Commands: {}", help.describe()));
    let section = section.split("\n\n").next().unwrap();
    section
        .lines()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn secrets_appear_in_no_output_file_or_argv_for_any_command() {
    let password = unique_secret("registry-password");
    let wrong_password = unique_secret("wrong-registry-password");
    let feed_key = unique_secret("feed-key");
    let wrong_key = unique_secret("wrong-feed-key");
    let secrets = [
        ("registry password", password.clone()),
        ("base64 user:password", basic(USER, &password)),
        ("feed key", feed_key.clone()),
        ("wrong registry password", wrong_password.clone()),
        ("base64 user:wrong password", basic(USER, &wrong_password)),
        ("wrong feed key", wrong_key.clone()),
    ];

    let registry = Registry::start_with_basic_auth(USER, &password);
    let feed = Pynuget::start(&feed_key);
    let right_config = docker_config(registry.host(), &basic(USER, &password));
    let wrong_config = docker_config(registry.host(), &basic(USER, &wrong_password));
    let no_config = temp_dir();
    let recorder = Recorder::new(&["git", "docker", "buildah", "podman"]);
    let repo = example_repo(false);
    let setup = Setup { registry: Some((&registry, "team/app")), pynuget: Some(&feed), git: true, ..Setup::default() };
    configure(&repo, &setup);
    let daemonless_repo = daemonless_project(&registry);
    let storage = ContainerStorage::new();
    let storage_env = storage.env();

    let commands = castoff_commands(&repo);
    let covered: BTreeSet<String> = CASES.iter().map(|c| c.args[0].to_string()).collect();
    let uncovered: Vec<&String> = commands.difference(&covered).collect();
    assert!(uncovered.is_empty(), "commands castoff has that this test does not run: {uncovered:?}");

    let path = recorder.path_env().into_string().unwrap();
    let dir = |d: &tempfile::TempDir| d.path().display().to_string();
    let (right_dir, wrong_dir, no_dir) = (dir(&right_config), dir(&wrong_config), dir(&no_config));
    let mut runs: Vec<Run> = Vec::new();
    let mut problems = Vec::new();
    for case in CASES {
        let mut env: Vec<(&str, &str)> = vec![("PATH", path.as_str())];
        env.extend(GIT_IDENTITY);
        let project = match case.project {
            In::Example => &repo,
            In::Daemonless => {
                env.extend(storage_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                &daemonless_repo
            }
        };
        match case.creds {
            Creds::DockerConfig => env.extend([("DOCKER_CONFIG", right_dir.as_str()), (KEY_ENV, feed_key.as_str())]),
            Creds::Env => env.extend([
                ("DOCKER_CONFIG", no_dir.as_str()),
                ("CASTOFF_REGISTRY_USERNAME", USER),
                ("CASTOFF_REGISTRY_PASSWORD", password.as_str()),
                (KEY_ENV, feed_key.as_str()),
            ]),
            Creds::WrongPassword => env.extend([("DOCKER_CONFIG", wrong_dir.as_str()), (KEY_ENV, feed_key.as_str())]),
            Creds::WrongKey => env.extend([("DOCKER_CONFIG", right_dir.as_str()), (KEY_ENV, wrong_key.as_str())]),
        }
        for json in [false, true] {
            let mut args = vec!["-v"];
            if json {
                args.push("--json");
            }
            args.extend(case.args);
            let (registry_401s, feed_401s) =
                (refusals(&registry), feed_puts(&feed).iter().filter(|s| **s == 401).count());
            let run = castoff(project, &args, &env);
            let refused_by_registry = refusals(&registry) > registry_401s;
            let refused_by_feed = feed_puts(&feed).iter().filter(|s| **s == 401).count() > feed_401s;
            let fine = match case.expect {
                Expect::Success => run.status.success(),
                Expect::Rejected => run.status.code() == Some(2),
                Expect::Any => true,
                // The registry asks every client for credentials once (401 first), so a
                // refusal is a failed run whose stderr or JSON says the registry refused.
                Expect::RegistryRefused => !run.status.success() && refused_by_registry && mentions_401(&run),
                Expect::FeedRefused => !run.status.success() && refused_by_feed,
            };
            if !fine {
                problems.push(format!("expected {:?} with {:?}: {}", case.expect, case.creds, run.describe()));
            }
            runs.push(run);
        }
    }
    assert!(problems.is_empty(), "{} runs did not do what they should:\n\n{}", problems.len(), problems.join("\n\n"));

    // The release went through the auth and the feed: the version is out, and tagged.
    let version = next_version();
    assert_eq!(repo.version(), version);
    assert_eq!(registry.manifest("team/app", &version)["manifests"].as_array().map(Vec::len), Some(3));
    assert_eq!(feed.package_files().len(), 2, "the package at the first and the released version");
    // The example's last release run (`-v --json release`, with CASTOFF_REGISTRY_*).
    let last = runs.iter().rev().find(|run| run.args.last().is_some_and(|a| a == "release")).unwrap();
    for step in STEPS {
        assert_eq!(last.status_of(step), "already-done", "the last run checked {step}: {}", last.describe());
    }
    let calls = recorder.calls();
    assert!(calls.iter().any(|c| c.get(1..).is_some_and(|a| a.iter().any(|x| x == "tag"))), "git tag ran: {calls:?}");
    let daemonless_index = registry.manifest("team/daemonless", "0.1.0");
    assert_eq!(daemonless_index["manifests"].as_array().map(Vec::len), Some(2), "{daemonless_index}");
    for program in ["buildah", "podman", "docker"] {
        let pushed = calls.iter().any(|c| c[0] == program && c.iter().any(|a| a == "push"));
        assert!(pushed, "{program} pushed: {calls:?}");
    }

    let mut places: Vec<(String, Vec<u8>)> = Vec::new();
    for run in &runs {
        places.push((format!("stdout of `castoff {}`", run.args.join(" ")), run.stdout.clone().into_bytes()));
        places.push((format!("stderr of `castoff {}`", run.args.join(" ")), run.stderr.clone().into_bytes()));
    }
    for (name, root) in [("example", &repo), ("daemonless", &daemonless_repo)] {
        let files =
            walkdir::WalkDir::new(root.path()).into_iter().map(|e| e.unwrap()).filter(|e| e.file_type().is_file());
        for file in files {
            let shown = file.path().strip_prefix(root.path()).unwrap().display().to_string();
            places.push((format!("file {shown} ({name})"), fs::read(file.path()).unwrap()));
        }
    }
    for searched in
        [format!("file .castoff/journal/{version}.json (example)"), "file .castoff/cache/stat.bin (example)".into()]
    {
        assert!(places.iter().any(|(p, _)| *p == searched), "{searched} was searched");
    }
    for call in &calls {
        places.push((format!("argv {call:?}"), call.join("\0").into_bytes()));
    }
    let mut leaks = Vec::new();
    for (name, secret) in &secrets {
        leaks.extend(find_secret(&places, secret).into_iter().map(|place| format!("the {name} is in {place}")));
    }
    let programs: BTreeSet<&str> = calls.iter().map(|c| c[0].as_str()).collect();
    println!(
        "secrets: {} cases, each with -v and -v --json; searched {} outputs, {} files and {} argvs of {programs:?}",
        CASES.len(),
        runs.len() * 2,
        places.iter().filter(|(p, _)| p.starts_with("file ")).count(),
        calls.len(),
    );
    crate::support::count(&format!("secrets: {} commands run, {} leaks", runs.len(), leaks.len()));
    assert!(leaks.is_empty(), "{} leaks:\n{}", leaks.len(), leaks.join("\n"));
}

/// How many requests the registry answered 401.
fn refusals(registry: &Registry) -> usize {
    registry.requests().iter().filter(|r| r.status == 401).count()
}

/// Whether castoff said the registry refused (401) on stderr or in its JSON.
fn mentions_401(run: &Run) -> bool {
    let said = format!("{}{}", run.stdout, run.stderr);
    said.contains("401") || said.contains("unauthorized") || said.contains("refused")
}
