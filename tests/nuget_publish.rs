//! `castoff publish` run as the real binary, on packages `castoff pack` made:
//!
//! - the embedded default folder feed, installed from by the real NuGet.exe (mono);
//! - pynuget, the real NuGet v2 feed (PyPI), as the main feed and a second instance as
//!   the legacy symbols feed: 201, 409 = already published (read back and compared),
//!   symbols not sent twice, 401 for a bad key; NuGet.exe installs what castoff pushed;
//! - NuGet v3 and the snupkg symbol endpoint: no real server runs on these machines, so
//!   these tests use testkit's stand-in v3 feed (axum), which follows the published
//!   protocol and records what arrives (the multipart shape, the headers);
//! - bad input: an unset key variable, an unreachable feed, a URL that is no feed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use testkit::nuget_exe::NugetExe;
use testkit::pynuget::Pynuget;
use testkit::v3feed::{package_bytes, Answer, Options, V3Feed, DEFAULT_KEY};

use crate::support::{assert_rejected, json_line, temp_dir, with_json, Loc, TempRepo};

const KEY_ENV: &str = "CASTOFF_IT_FEED_KEY";
const SYMBOLS_KEY_ENV: &str = "CASTOFF_IT_SYMBOLS_KEY";

const NUSPEC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>E2e.Lib</id>
    <version>$version$</version>
    <authors>castoff tests</authors>
    <description>A package castoff publishes in its tests</description>
  </metadata>
  <files>
    <file src="bin/E2e.Lib.dll" target="lib/netstandard2.0" />
    <file src="bin/E2e.Lib.pdb" target="lib/netstandard2.0" />
  </files>
</package>
"#;

/// A project at 1.2.0 with one `[[package]]` (symbols `symbols`) and `feeds` (TOML).
fn project(symbols: &str, feeds: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.2.0\n");
    repo.write("E2e.Lib.nuspec", NUSPEC);
    repo.write("bin/E2e.Lib.dll", "MZ not really a dll");
    repo.write("bin/E2e.Lib.pdb", "BSJB not really a pdb");
    repo.write("src/Lib.cs", "class Lib {}\n");
    repo.write(
        "castoff.toml",
        format!(
            "[[package]]\nnuspec = \"E2e.Lib.nuspec\"\nsymbols = \"{symbols}\"\n\n\
             [network]\nattempts = 3\ntimeout_seconds = 10\ntotal_seconds = 30\n\n{feeds}"
        ),
    );
    repo
}

fn v3_feed_toml(feed: &V3Feed, extra: &str) -> String {
    format!("[[feed]]\nname = \"v3\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n{extra}\n", feed.index_url())
}

/// `castoff ARGS` with `env` set; (exit code, stdout, stderr).
fn run(repo: &TempRepo, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = repo.castoff(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// `castoff --json publish` with the key set, asserted to succeed; its JSON.
fn publish_json(repo: &TempRepo, env: &[(&str, &str)]) -> Value {
    let (code, stdout, stderr) = run(repo, &with_json(&["publish"]), env);
    assert_eq!(code, 0, "castoff publish failed:\n{stdout}\n{stderr}");
    json_line(stdout.as_bytes())
}

/// (file, status) of every file of every feed in a publish outcome.
fn statuses(outcome: &Value) -> Vec<(String, String)> {
    outcome["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|feed| feed["files"].as_array().unwrap().clone())
        .map(|file| (file["file"].as_str().unwrap().to_string(), file["status"].as_str().unwrap().to_string()))
        .collect()
}

fn pair(file: &str, status: &str) -> (String, String) {
    (file.to_string(), status.to_string())
}

fn file_sha512(path: &Path) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha512};
    base64::engine::general_purpose::STANDARD.encode(Sha512::digest(std::fs::read(path).unwrap()))
}

#[test]
fn default_folder_feed_is_written_in_nugets_layout_and_nuget_installs_from_it() {
    let repo = project("snupkg", "");
    let outcome = publish_json(&repo, &[]);
    assert_eq!(outcome["default_feed"], true, "{outcome}");
    assert_eq!(outcome["packed"], true, "the packages were missing, so publish packed first: {outcome}");
    assert_eq!(statuses(&outcome), [pair("E2e.Lib.1.2.0.nupkg", "pushed"), pair("E2e.Lib.1.2.0.snupkg", "pushed")]);
    let dir = "dist/feed/e2e.lib/1.2.0";
    assert_eq!(repo.read(&format!("{dir}/e2e.lib.1.2.0.nupkg")), repo.read("dist/nuget/E2e.Lib.1.2.0.nupkg"));
    assert_eq!(
        repo.read_string(&format!("{dir}/e2e.lib.1.2.0.nupkg.sha512")),
        file_sha512(&repo.join("dist/nuget/E2e.Lib.1.2.0.nupkg"))
    );
    assert!(repo.read_string(&format!("{dir}/e2e.lib.nuspec")).contains("<id>E2e.Lib</id>"));
    assert!(repo.exists(&format!("{dir}/e2e.lib.1.2.0.snupkg")));

    let human = repo.ok(&["publish"]);
    assert!(human.contains("embedded default folder feed dist/feed"), "{human}");
    assert!(human.contains("already published") && human.contains("not pushed again"), "{human}");

    let work = temp_dir();
    let installed = NugetExe::get()
        .install("E2e.Lib", "1.2.0", repo.join("dist/feed").to_str().unwrap(), work.path())
        .unwrap_or_else(|e| panic!("NuGet.exe could not install from castoff's folder feed: {e}"));
    assert!(installed.join("lib/netstandard2.0/E2e.Lib.dll").is_file(), "{}", installed.display());
}

/// The stand-in v3 feed (no real v3 server runs here): the package goes to
/// PackagePublish, the snupkg to SymbolPackagePublish, each as one multipart part named
/// `package` with the API key and an exact Content-Length.
#[test]
fn v3_feed_receives_the_package_and_the_snupkg() {
    let feed = V3Feed::start();
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    let outcome = publish_json(&repo, &[(KEY_ENV, DEFAULT_KEY)]);
    assert_eq!(statuses(&outcome), [pair("E2e.Lib.1.2.0.nupkg", "pushed"), pair("E2e.Lib.1.2.0.snupkg", "pushed")]);
    let pushes = feed.pushes();
    assert_eq!(pushes.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/v3/package", "/v3/symbolpackage"]);
    for (push, file) in pushes.iter().zip(["dist/nuget/E2e.Lib.1.2.0.nupkg", "dist/nuget/E2e.Lib.1.2.0.snupkg"]) {
        assert_eq!(push.header("x-nuget-apikey"), Some(DEFAULT_KEY));
        assert!(!push.chunked && push.content_length.is_some(), "{push:?}");
        assert!(push.header("content-type").unwrap().starts_with("multipart/form-data; boundary="));
        assert_eq!(push.parts.len(), 1);
        let part = &push.parts[0];
        assert_eq!(part.name.as_deref(), Some("package"));
        assert_eq!(part.filename.as_deref(), Path::new(file).file_name().and_then(|n| n.to_str()));
        assert_eq!(part.sha512, file_sha512(&repo.join(file)));
        assert!(push.content_length.unwrap() > part.size);
    }
    assert!(feed.requests()[0].path == "/v3/index.json" && feed.requests()[0].header("x-nuget-apikey").is_none());
}

/// The stand-in v3 feed without a symbol endpoint: "auto" skips the snupkg, warning.
#[test]
fn v3_feed_without_a_symbol_endpoint_skips_symbols_with_a_warning() {
    let feed = V3Feed::start_with(Options { symbols: false, ..Options::default() });
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    let (code, stdout, stderr) = run(&repo, &["publish"], &[(KEY_ENV, DEFAULT_KEY)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("warning:") && stderr.contains("SymbolPackagePublish"), "{stderr}");
    assert!(stdout.contains("skipped") && stdout.contains("E2e.Lib.1.2.0.snupkg"), "{stdout}");
    assert_eq!(feed.pushes().len(), 1);
}

/// The stand-in v3 feed: publishing again gets 409, reads the package back from the
/// flat container, finds the same SHA-512, and does not send the symbols again.
#[test]
fn publishing_again_is_already_published_and_sends_no_symbols() {
    let feed = V3Feed::start();
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    publish_json(&repo, &[(KEY_ENV, DEFAULT_KEY)]);
    let again = publish_json(&repo, &[(KEY_ENV, DEFAULT_KEY)]);
    assert_eq!(again["packed"], false, "{again}");
    assert_eq!(
        statuses(&again),
        [pair("E2e.Lib.1.2.0.nupkg", "already-published"), pair("E2e.Lib.1.2.0.snupkg", "skipped")]
    );
    let statuses: Vec<(String, u16)> = feed.pushes().iter().map(|p| (p.path.clone(), p.status)).collect();
    let expected = [("/v3/package", 201), ("/v3/symbolpackage", 201), ("/v3/package", 409)];
    assert_eq!(statuses, expected.map(|(p, s)| (p.to_string(), s)));
}

/// The stand-in v3 feed already holds other bytes under this version: an error that
/// names both digests, exit 1.
#[test]
fn a_different_package_on_the_feed_is_an_error_naming_both_digests() {
    let feed = V3Feed::start();
    let other = package_bytes("E2e.Lib", "1.2.0", false, 10);
    let remote = {
        use base64::Engine;
        use sha2::{Digest, Sha512};
        base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&other))
    };
    feed.insert_package("E2e.Lib", "1.2.0", other);
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    let (code, stdout, stderr) = run(&repo, &["publish"], &[(KEY_ENV, DEFAULT_KEY)]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let local = file_sha512(&repo.join("dist/nuget/E2e.Lib.1.2.0.nupkg"));
    assert!(stderr.contains(&remote) && stderr.contains(&local), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert_eq!(feed.pushes().len(), 1, "the symbols were not pushed after the conflict");
}

/// The stand-in v3 feed answers 429 with Retry-After once: castoff waits and succeeds.
#[test]
fn a_429_is_retried_and_succeeds() {
    let feed = V3Feed::start();
    feed.answer_next_push(Answer::RetryAfter { status: 429, seconds: 1 });
    let repo = project("none", &v3_feed_toml(&feed, ""));
    let outcome = publish_json(&repo, &[(KEY_ENV, DEFAULT_KEY)]);
    assert_eq!(statuses(&outcome), [pair("E2e.Lib.1.2.0.nupkg", "pushed")]);
    assert_eq!(feed.pushes().iter().map(|p| p.status).collect::<Vec<_>>(), [429, 201]);
}

/// The stand-in v3 feed refuses the key (403): a clear error naming the variable and the
/// URL, and the key appears nowhere in castoff's output.
#[test]
fn a_refused_key_is_a_clear_error_that_never_shows_the_key() {
    let feed = V3Feed::start();
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    let wrong = "Wrong-Key-0123456789abcdefXYZ";
    for args in [vec!["publish"], vec!["--json", "publish"], vec!["-v", "publish"]] {
        let (code, stdout, stderr) = run(&repo, &args, &[(KEY_ENV, wrong)]);
        assert_eq!(code, 1, "{stdout}{stderr}");
        let all = format!("{stdout}{stderr}");
        assert!(all.contains(&format!("refused the API key from ${KEY_ENV}")), "{all}");
        assert!(all.contains("403") && all.contains(&format!("{}/v3/package", feed.addr())), "{all}");
        assert!(!all.contains(wrong), "the key leaked: {all}");
    }
}

#[test]
fn an_unset_key_variable_is_rejected_before_anything_happens() {
    let feed = V3Feed::start();
    let repo = project("snupkg", &v3_feed_toml(&feed, ""));
    repo.commit_all();
    assert_rejected(&repo, &["publish"], None, &[KEY_ENV, "is not set", "feed `v3`"]);
    assert!(feed.requests().is_empty(), "nothing was sent: {:?}", feed.requests());
    assert!(!repo.exists("dist"), "nothing was packed");
}

/// A feed that wants legacy symbols from a package configured without any is refused
/// from castoff.toml alone: exit 2, nothing packed, nothing written.
#[test]
fn a_feed_asking_for_symbols_the_package_lacks_is_rejected_before_packing() {
    let repo = project("none", "[[feed]]\nname = \"folder\"\nurl = \"dist/feed\"\nsymbols = \"legacy\"\n");
    repo.commit_all();
    assert_rejected(&repo, &["publish"], None, &["feed `folder`", "symbols = \"legacy\"", "package[0]"]);
    assert!(!repo.exists("dist"), "nothing was packed");
}

#[test]
fn an_unreachable_feed_is_named_with_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v3/index.json");
    let repo = project("snupkg", &format!("[[feed]]\nname = \"gone\"\nurl = \"{url}\"\n"));
    let (code, stdout, stderr) = run(&repo, &["publish"], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("feed `gone`") && stderr.contains(&url) && stderr.contains("unreachable"), "{stderr}");
    assert!(stderr.contains("3 attempt(s)"), "{stderr}");
}

#[test]
fn a_url_that_is_no_feed_is_a_configuration_error() {
    let repo = project("snupkg", "[[feed]]\nname = \"odd\"\nurl = \"https://nuget.example.com/feed\"\n");
    repo.commit_all();
    // [[package]] 3 lines, blank, [network] 4 lines, blank, then [[feed]]: url on line 12.
    let loc = Loc::file("castoff.toml").line(12).key("feed[0].url");
    assert_rejected(&repo, &["publish"], Some(loc), &["cannot tell which NuGet protocol", "protocol = \"v2\""]);
}

/// Peak RSS of castoff pushing a 64 MiB package to the stand-in v3 feed: the upload
/// streams from disk, so memory does not grow with the package (goal: ≤ 50 MB).
#[test]
fn memory_does_not_grow_with_the_package() {
    let feed = V3Feed::start();
    let repo = project("none", &v3_feed_toml(&feed, ""));
    repo.write("dist/nuget/E2e.Lib.1.2.0.nupkg", package_bytes("E2e.Lib", "1.2.0", false, 64 * 1024 * 1024));
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("castoff"))
        .args(["--json", "publish"])
        .current_dir(repo.path())
        .env(KEY_ENV, DEFAULT_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).map(|v| v.trim().trim_end_matches("kB"));
            peak_kib = peak_kib.max(hwm.and_then(|v| v.trim().parse().ok()).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let pushed = &feed.pushes()[0].parts[0];
    assert!(pushed.size > 64 * 1024 * 1024, "the big package was pushed: {pushed:?}");
    assert!(peak_kib > 0, "no RSS sample");
    eprintln!("castoff publish of a 64 MiB package: peak RSS {peak_kib} KiB");
    assert!(peak_kib < 50 * 1024, "castoff's peak RSS was {peak_kib} KiB for a 64 MiB package");
}

/// pynuget, the real v2 feed, as the main feed, and a second pynuget as the legacy
/// symbols feed: 201; then 409, read back (OData PackageHash) and "already published",
/// with the symbols not sent again; NuGet.exe installs what castoff pushed.
#[test]
fn pynuget_takes_the_package_once_and_the_symbols_go_to_the_symbols_feed() {
    let main = Pynuget::start("main-key-0123");
    let symbols = Pynuget::start("symbols-key-4567");
    let feeds = format!(
        "[[feed]]\nname = \"main\"\nurl = \"{}\"\nprotocol = \"v2\"\napi_key_env = \"{KEY_ENV}\"\n\
         symbols_feed = \"symbols\"\n\n\
         [[feed]]\nname = \"symbols\"\nurl = \"{}\"\nprotocol = \"v2\"\napi_key_env = \"{SYMBOLS_KEY_ENV}\"\n\
         packages = false\nsymbols = \"none\"\n",
        main.url(),
        symbols.url()
    );
    let repo = project("legacy", &feeds);
    let env = [(KEY_ENV, main.api_key()), (SYMBOLS_KEY_ENV, symbols.api_key())];
    let first = publish_json(&repo, &env);
    assert_eq!(
        statuses(&first),
        [pair("E2e.Lib.1.2.0.nupkg", "pushed"), pair("E2e.Lib.1.2.0.symbols.nupkg", "pushed")],
        "{first}"
    );
    assert_eq!(first["feeds"][0]["files"][1]["to"], "symbols", "{first}");
    assert_eq!(main.package_files().len(), 1, "{:?}", main.package_files());
    assert_eq!(std::fs::read(&main.package_files()[0]).unwrap(), repo.read("dist/nuget/E2e.Lib.1.2.0.nupkg"));
    assert_eq!(symbols.package_files().len(), 1);
    assert_eq!(
        std::fs::read(&symbols.package_files()[0]).unwrap(),
        repo.read("dist/nuget/E2e.Lib.1.2.0.symbols.nupkg")
    );

    let second = publish_json(&repo, &env);
    assert_eq!(
        statuses(&second),
        [pair("E2e.Lib.1.2.0.nupkg", "already-published"), pair("E2e.Lib.1.2.0.symbols.nupkg", "skipped")],
        "{second}"
    );
    assert_eq!(second["feeds"][0]["files"][0]["reason"], "same SHA-512 on the feed", "{second}");
    assert_eq!(main.count("PUT", "/api/v2/package/"), 2, "pushed, then 409");
    assert_eq!(symbols.count("PUT", "/api/v2/package/"), 1, "the symbols were not sent again");

    let work = temp_dir();
    let installed = NugetExe::get()
        .install("E2e.Lib", "1.2.0", &main.url(), work.path())
        .unwrap_or_else(|e| panic!("NuGet.exe could not install what castoff pushed to pynuget: {e}"));
    assert!(installed.join("lib/netstandard2.0/E2e.Lib.dll").is_file(), "{}", installed.display());
}

/// pynuget answers 401 to a wrong key: a clear error naming the variable, not the key.
#[test]
fn pynuget_refuses_a_bad_key_with_a_clear_error() {
    let feed = Pynuget::start("the-right-key");
    let toml = format!(
        "[[feed]]\nname = \"pynuget\"\nurl = \"{}api/v2\"\napi_key_env = \"{KEY_ENV}\"\nsymbols = \"none\"\n",
        feed.url()
    );
    let repo = project("snupkg", &toml);
    let wrong = "not-the-key-0123456789ABCdef";
    let (code, stdout, stderr) = run(&repo, &["publish"], &[(KEY_ENV, wrong)]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains(&format!("feed `pynuget` refused the API key from ${KEY_ENV}")), "{stderr}");
    assert!(stderr.contains("401") && stderr.contains(&feed.push_url()), "{stderr}");
    assert!(!stdout.contains(wrong) && !stderr.contains(wrong), "the key leaked:\n{stdout}{stderr}");
    assert!(feed.package_files().is_empty());
}
