//! `publish` against packages made here (not by `castoff pack`, which has its own
//! tests), a folder feed, and the stand-in v3 feed from testkit: no real NuGet v3
//! server or snupkg symbol endpoint runs on these machines, so the fake follows the
//! published protocol and records what arrives. The real v2 feed (pynuget) and the
//! real NuGet client are exercised by the integration tests (tests/nuget_publish.rs).

use std::collections::BTreeMap;
use std::env::VarError;
use std::path::{Path, PathBuf};

use testkit::v3feed::{package_bytes, Answer, Options, V3Feed, DEFAULT_KEY};

use super::*;
use crate::config::Config;
use crate::nuget::feed::{sha512_file, sha512_reader};
use crate::nuget::{SymbolsFile, SymbolsKind};

const KEY_ENV: &str = "CASTOFF_TEST_V3_KEY";

struct Fixture {
    dir: tempfile::TempDir,
    packages: Vec<Packed>,
    env: BTreeMap<String, String>,
}

impl Fixture {
    /// A project with `castoff.toml` text and one package `Acme.Lib 1.2.0` with `symbols`.
    fn new(symbols: Option<SymbolsKind>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut fixture = Fixture { dir, packages: Vec::new(), env: BTreeMap::new() };
        fixture.add_package("Acme.Lib", "1.2.0", symbols, 0);
        fixture.env.insert(KEY_ENV.into(), DEFAULT_KEY.into());
        fixture
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn add_package(&mut self, id: &str, version: &str, symbols: Option<SymbolsKind>, filler: usize) {
        let out = self.root().join("dist/nuget");
        std::fs::create_dir_all(&out).unwrap();
        let nupkg = out.join(format!("{id}.{version}.nupkg"));
        std::fs::write(&nupkg, package_bytes(id, version, false, filler)).unwrap();
        let symbols = symbols.map(|kind| {
            let name = match kind {
                SymbolsKind::Snupkg => format!("{id}.{version}.snupkg"),
                SymbolsKind::Legacy => format!("{id}.{version}.symbols.nupkg"),
            };
            let path = out.join(name);
            std::fs::write(&path, package_bytes(id, version, kind == SymbolsKind::Snupkg, filler + 7)).unwrap();
            SymbolsFile { kind, path }
        });
        let sha512 = sha512_file(&nupkg).unwrap();
        let size = std::fs::metadata(&nupkg).unwrap().len();
        self.packages.push(Packed {
            id: id.into(),
            version: version.into(),
            nupkg,
            sha512: Some(sha512),
            size,
            symbols,
        });
    }

    fn project(&self, toml: &str) -> Project {
        let config = Config::parse(toml, Path::new("castoff.toml")).unwrap();
        Project { root: self.root().to_path_buf(), config, config_file: None, planned_version: None }
    }

    fn publish(&self, toml: &str) -> Result<PublishOutcome> {
        self.publish_with(toml, &PublishOptions::default())
    }

    fn publish_with(&self, toml: &str, options: &PublishOptions) -> Result<PublishOutcome> {
        let env = |name: &str| self.env.get(name).cloned().ok_or(VarError::NotPresent);
        publish_with(&self.project(toml), options, &env, || Ok((self.packages.clone(), false)))
    }

    fn nupkg(&self) -> &Path {
        &self.packages[0].nupkg
    }

    fn symbols(&self) -> PathBuf {
        self.packages[0].symbols.as_ref().unwrap().path.clone()
    }
}

fn v3_toml(feed: &V3Feed, extra: &str) -> String {
    format!(
        "[network]\nattempts = 3\n\n[[feed]]\nname = \"v3\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n{extra}\n",
        feed.index_url()
    )
}

fn statuses(outcome: &PublishOutcome) -> Vec<(String, FileStatus)> {
    outcome.feeds.iter().flat_map(|f| &f.files).map(|f| (f.file.clone(), f.status)).collect()
}

fn error_text(error: &Error) -> String {
    format!("{error} / hint: {}", error.hint().unwrap_or_default())
}

#[test]
fn default_folder_feed_has_nugets_layout_and_is_idempotent() {
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let outcome = fixture.publish("").unwrap();
    assert!(outcome.default_feed);
    assert!(outcome.human()[0].contains("embedded default folder feed dist/feed"), "{:?}", outcome.human());
    assert_eq!(
        statuses(&outcome),
        [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed), ("Acme.Lib.1.2.0.snupkg".into(), FileStatus::Pushed)]
    );
    let dir = fixture.root().join("dist/feed/acme.lib/1.2.0");
    let copied = std::fs::read(dir.join("acme.lib.1.2.0.nupkg")).unwrap();
    assert_eq!(copied, std::fs::read(fixture.nupkg()).unwrap());
    let sha = std::fs::read_to_string(dir.join("acme.lib.1.2.0.nupkg.sha512")).unwrap();
    assert_eq!(Some(sha), fixture.packages[0].sha512);
    let nuspec = std::fs::read_to_string(dir.join("acme.lib.nuspec")).unwrap();
    assert!(nuspec.contains("<id>Acme.Lib</id>"), "{nuspec}");
    assert_eq!(std::fs::read(dir.join("acme.lib.1.2.0.snupkg")).unwrap(), std::fs::read(fixture.symbols()).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".castoff-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let again = fixture.publish("").unwrap();
    assert_eq!(
        statuses(&again),
        [
            ("Acme.Lib.1.2.0.nupkg".into(), FileStatus::AlreadyPublished),
            ("Acme.Lib.1.2.0.snupkg".into(), FileStatus::Skipped)
        ]
    );
    let symbols = &again.feeds[0].files[1];
    assert!(symbols.reason.as_deref().unwrap().contains("not pushed again"), "{symbols:?}");
}

#[test]
fn folder_feed_refuses_a_different_package_of_the_same_version() {
    let mut fixture = Fixture::new(None);
    fixture.publish("[[feed]]\nname = \"local\"\nurl = \"feed\"\n").unwrap();
    let nupkg = fixture.nupkg().to_path_buf();
    std::fs::write(&nupkg, package_bytes("Acme.Lib", "1.2.0", false, 99)).unwrap();
    fixture.packages[0].sha512 = Some(sha512_file(&nupkg).unwrap());
    let error = fixture.publish("[[feed]]\nname = \"local\"\nurl = \"feed\"\n").unwrap_err();
    let text = error_text(&error);
    assert!(
        text.contains("different content") && text.contains(fixture.packages[0].sha512.as_deref().unwrap()),
        "{text}"
    );
    let published = sha512_file(&fixture.root().join("feed/acme.lib/1.2.0/acme.lib.1.2.0.nupkg")).unwrap();
    assert!(text.contains(&published), "both digests: {text}");
    assert!(text.contains("bump"), "{text}");
}

#[test]
fn v3_push_sends_one_multipart_part_with_the_key_and_an_exact_length() {
    let feed = V3Feed::start();
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    assert_eq!(
        statuses(&outcome),
        [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed), ("Acme.Lib.1.2.0.snupkg".into(), FileStatus::Pushed)]
    );
    let pushes = feed.pushes();
    assert_eq!(pushes.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/v3/package", "/v3/symbolpackage"]);
    for (push, file) in pushes.iter().zip([fixture.nupkg().to_path_buf(), fixture.symbols()]) {
        assert_eq!(push.status, 201);
        assert_eq!(push.header("x-nuget-apikey"), Some(DEFAULT_KEY));
        assert_eq!(push.header("x-nuget-protocol-version"), Some("4.1.0"));
        assert!(push.header("content-type").unwrap().starts_with("multipart/form-data; boundary="), "{push:?}");
        assert!(!push.chunked, "length-delimited, not chunked: {push:?}");
        let size = std::fs::metadata(&file).unwrap().len();
        assert_eq!(push.parts.len(), 1, "{push:?}");
        let part = &push.parts[0];
        assert_eq!(part.name.as_deref(), Some("package"));
        assert_eq!(part.filename.as_deref(), Some(file.file_name().unwrap().to_str().unwrap()));
        assert_eq!(part.size, size);
        assert_eq!(part.sha512, sha512_file(&file).unwrap());
        let framing = push.content_length.unwrap() - size;
        assert!((150..400).contains(&framing), "Content-Length is the file plus the multipart framing: {push:?}");
    }
    assert_eq!(feed.package("Acme.Lib", "1.2.0").unwrap(), std::fs::read(fixture.nupkg()).unwrap());
    assert_eq!(feed.symbols("acme.lib", "1.2.0").unwrap(), std::fs::read(fixture.symbols()).unwrap());
}

#[test]
fn v3_without_a_symbol_endpoint_skips_symbols_with_a_warning() {
    let feed = V3Feed::start_with(Options { symbols: false, ..Options::default() });
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    assert_eq!(statuses(&outcome)[1], ("Acme.Lib.1.2.0.snupkg".into(), FileStatus::Skipped));
    assert_eq!(outcome.warnings().len(), 1, "{:?}", outcome.warnings());
    assert!(outcome.warnings()[0].contains("SymbolPackagePublish"), "{:?}", outcome.warnings());
    assert_eq!(feed.pushes().len(), 1);

    // Asked for explicitly, a missing endpoint stops everything before any push.
    let feed = V3Feed::start_with(Options { symbols: false, ..Options::default() });
    let error = fixture.publish(&v3_toml(&feed, "symbols = \"snupkg\"")).unwrap_err();
    assert!(error_text(&error).contains("advertises no SymbolPackagePublish"), "{}", error_text(&error));
    assert!(feed.pushes().is_empty());
}

#[test]
fn v3_409_with_the_same_digest_is_already_published_and_symbols_are_not_resent() {
    let feed = V3Feed::start();
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    feed.insert_package("Acme.Lib", "1.2.0", std::fs::read(fixture.nupkg()).unwrap());
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    assert_eq!(
        statuses(&outcome),
        [
            ("Acme.Lib.1.2.0.nupkg".into(), FileStatus::AlreadyPublished),
            ("Acme.Lib.1.2.0.snupkg".into(), FileStatus::Skipped)
        ]
    );
    assert_eq!(outcome.feeds[0].files[0].reason.as_deref(), Some("same SHA-512 on the feed"));
    let pushes = feed.pushes();
    assert_eq!(pushes.len(), 1, "the symbols were not sent again: {pushes:?}");
    assert_eq!(pushes[0].status, 409);
    let reads: Vec<_> = feed.requests().into_iter().filter(|r| r.path.starts_with("/v3/flat/")).collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].path, "/v3/flat/acme.lib/1.2.0/acme.lib.1.2.0.nupkg");
    assert_eq!(reads[0].header("x-nuget-apikey"), None, "read-backs carry no key");
}

#[test]
fn v3_409_with_a_different_digest_names_both() {
    let feed = V3Feed::start();
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let other = package_bytes("Acme.Lib", "1.2.0", false, 1234);
    let remote = sha512_reader(&other[..]).unwrap();
    feed.insert_package("Acme.Lib", "1.2.0", other);
    let error = fixture.publish(&v3_toml(&feed, "")).unwrap_err();
    let text = error_text(&error);
    assert!(text.contains(&remote) && text.contains(fixture.packages[0].sha512.as_deref().unwrap()), "{text}");
    assert!(text.contains("feed `v3` already has Acme.Lib 1.2.0 with different content"), "{text}");
    assert_eq!(feed.pushes().len(), 1, "nothing after the conflict");

    let error = fixture.publish(&v3_toml(&feed, "skip_duplicate = false")).unwrap_err();
    assert!(error_text(&error).contains("skip_duplicate = false"), "{}", error_text(&error));
}

#[test]
fn v3_429_is_retried_after_the_time_asked() {
    let feed = V3Feed::start();
    feed.answer_next_push(Answer::RetryAfter { status: 429, seconds: 1 });
    feed.answer_next_push(Answer::Status(503));
    let fixture = Fixture::new(None);
    let started = std::time::Instant::now();
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(statuses(&outcome), [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed)]);
    let statuses: Vec<u16> = feed.pushes().iter().map(|p| p.status).collect();
    assert_eq!(statuses, [429, 503, 201]);
    assert_eq!(
        feed.pushes()[2].parts[0].sha512,
        fixture.packages[0].sha512.clone().unwrap(),
        "the retry sent the whole file again"
    );
}

#[test]
fn v3_403_names_the_variable_never_the_key() {
    let feed = V3Feed::start();
    let mut fixture = Fixture::new(None);
    let wrong = "WrongKey-0123456789-abcdefXYZ";
    fixture.env.insert(KEY_ENV.into(), wrong.into());
    let error = fixture.publish(&v3_toml(&feed, "")).unwrap_err();
    let text = format!("{error:?} {}", error_text(&error));
    assert!(text.contains(&format!("refused the API key from ${KEY_ENV}")), "{text}");
    assert!(text.contains(&feed.index_url().replace("index.json", "package")), "names the URL: {text}");
    assert!(!text.contains(wrong) && !text.contains(DEFAULT_KEY), "{text}");
    assert_eq!(error.exit_code(), 1);
    assert_eq!(feed.pushes().len(), 1, "a refusal is not retried");
}

#[test]
fn an_unset_key_variable_stops_everything_first() {
    let feed = V3Feed::start();
    let mut fixture = Fixture::new(None);
    fixture.env.clear();
    let error = fixture.publish(&v3_toml(&feed, "")).unwrap_err();
    let text = error_text(&error);
    assert!(text.contains(&format!("the API key variable {KEY_ENV} is not set")), "{text}");
    assert_eq!(error.exit_code(), 2);
    assert!(feed.requests().is_empty(), "not even the service index was read");
    // A dry run only warns.
    let outcome = fixture
        .publish_with(&v3_toml(&feed, ""), &PublishOptions { dry_run: true, ..PublishOptions::default() })
        .unwrap();
    assert!(outcome.warnings().iter().any(|w| w.contains(KEY_ENV)), "{:?}", outcome.warnings());
    assert_eq!(statuses(&outcome), [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::WouldPush)]);
    assert!(feed.requests().is_empty(), "a dry run speaks to no feed");
}

#[test]
fn an_unreachable_feed_is_named_with_its_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let fixture = Fixture::new(None);
    let url = format!("http://127.0.0.1:{port}/v3/index.json");
    let toml = format!("[network]\nattempts = 2\n\n[[feed]]\nname = \"gone\"\nurl = \"{url}\"\n");
    let error = fixture.publish(&toml).unwrap_err();
    let text = error_text(&error);
    assert!(text.contains("feed `gone`") && text.contains(&url) && text.contains("unreachable"), "{text}");
    assert!(text.contains("2 attempt(s)"), "{text}");
}

#[test]
fn renamed_pushes_only_the_legacy_symbols_package_under_the_nupkg_name() {
    let feed = V3Feed::start();
    let fixture = Fixture::new(Some(SymbolsKind::Legacy));
    let outcome = fixture.publish(&v3_toml(&feed, "symbols = \"renamed\"")).unwrap();
    assert_eq!(statuses(&outcome), [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed)]);
    assert!(outcome.feeds[0].files[0].reason.as_deref().unwrap().contains("Acme.Lib.1.2.0.symbols.nupkg, renamed"));
    let pushes = feed.pushes();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].path, "/v3/package");
    assert_eq!(pushes[0].parts[0].filename.as_deref(), Some("Acme.Lib.1.2.0.nupkg"));
    assert_eq!(pushes[0].parts[0].sha512, sha512_file(&fixture.symbols()).unwrap(), "the symbols package's bytes");

    // A snupkg cannot be "renamed": caught before anything is pushed.
    let snupkg = Fixture::new(Some(SymbolsKind::Snupkg));
    let error = snupkg.publish(&v3_toml(&feed, "symbols = \"renamed\"")).unwrap_err();
    assert!(error_text(&error).contains("symbols = \"legacy\""), "{}", error_text(&error));
    assert_eq!(feed.pushes().len(), 1);
}

#[test]
fn symbols_go_to_the_symbols_feed() {
    let main = V3Feed::start_with(Options { symbols: false, ..Options::default() });
    let symbols = V3Feed::start();
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let toml = format!(
        "[[feed]]\nname = \"main\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\nsymbols_feed = \"syms\"\n\n\
         [[feed]]\nname = \"syms\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\npackages = false\nsymbols = \"none\"\n",
        main.index_url(),
        symbols.index_url()
    );
    let outcome = fixture.publish(&toml).unwrap();
    let files = &outcome.feeds[0].files;
    assert_eq!((files[1].status, files[1].to.as_deref()), (FileStatus::Pushed, Some("syms")));
    assert!(outcome.feeds[1].files.is_empty());
    assert_eq!(main.pushes().len(), 1);
    assert_eq!(symbols.pushes().iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["/v3/symbolpackage"]);
    assert!(outcome.human().iter().any(|l| l.contains("to feed syms")), "{:?}", outcome.human());

    // --feed selects; the symbols feed still receives what the selected feed sends it.
    let only = PublishOptions { dry_run: true, feeds: vec!["main".into()], ..PublishOptions::default() };
    assert_eq!(fixture.publish_with(&toml, &only).unwrap().feeds.len(), 1);
    let unknown = PublishOptions { dry_run: true, feeds: vec!["nope".into()], ..PublishOptions::default() };
    let error = fixture.publish_with(&toml, &unknown).unwrap_err();
    assert!(error_text(&error).contains("main, syms"), "{}", error_text(&error));
}

#[test]
fn feeds_are_pushed_in_parallel_and_one_failure_does_not_hide_the_others() {
    let good = V3Feed::start();
    let bad = V3Feed::start_with(Options { api_key: Some("another".into()), ..Options::default() });
    let fixture = Fixture::new(None);
    let toml = format!(
        "[[feed]]\nname = \"good\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n\n\
         [[feed]]\nname = \"bad\"\nurl = \"{}\"\napi_key_env = \"{KEY_ENV}\"\n",
        good.index_url(),
        bad.index_url()
    );
    let error = fixture.publish(&toml).unwrap_err();
    let text = error_text(&error);
    assert!(text.contains("feed `bad` refused the API key"), "{text}");
    assert!(text.contains("feed good: 1 pushed"), "{text}");
    assert!(good.package("Acme.Lib", "1.2.0").is_some());
}

#[test]
fn a_push_is_redirected_only_within_its_origin() {
    let feed = V3Feed::start();
    let elsewhere = V3Feed::start();
    let fixture = Fixture::new(None);
    let away = format!("http://{}/v3/package", elsewhere.addr());
    feed.answer_next_push(Answer::Redirect { status: 307, location: away.clone() });
    let error = fixture.publish(&v3_toml(&feed, "")).unwrap_err();
    let text = error_text(&error);
    assert!(text.contains("redirected (307)") && text.contains(&away), "{text}");
    assert!(text.contains("sends the API key only where it was addressed"), "{text}");
    assert!(elsewhere.requests().is_empty(), "the key went nowhere else");

    // 308 within the origin: followed, with the key and the whole body again.
    feed.answer_next_push(Answer::Redirect { status: 308, location: "/v3/package".into() });
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    assert_eq!(statuses(&outcome), [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed)]);
    let last = feed.pushes().pop().unwrap();
    assert_eq!((last.status, last.header("x-nuget-apikey")), (201, Some(DEFAULT_KEY)));
    assert_eq!(last.parts[0].sha512, fixture.packages[0].sha512.clone().unwrap());

    // 302 would turn the PUT into a GET: not followed.
    let mut other = Fixture::new(None);
    other.packages.clear();
    other.add_package("Other.Lib", "1.0.0", None, 0);
    feed.answer_next_push(Answer::Redirect { status: 302, location: "/v3/package".into() });
    let error = other.publish(&v3_toml(&feed, "")).unwrap_err();
    assert!(error_text(&error).contains("redirected (302)"), "{}", error_text(&error));
}

#[test]
fn a_409_after_a_lost_answer_is_our_own_push() {
    // The feed stored the package but its answer was lost (here: a 503 after storing);
    // the retry gets 409, reads it back, finds our bytes: pushed, not "already there".
    let feed = V3Feed::start();
    let fixture = Fixture::new(None);
    feed.insert_package("Acme.Lib", "1.2.0", std::fs::read(fixture.nupkg()).unwrap());
    feed.answer_next_push(Answer::Status(503));
    let outcome = fixture.publish(&v3_toml(&feed, "")).unwrap();
    let file = &outcome.feeds[0].files[0];
    assert_eq!(file.status, FileStatus::Pushed, "{file:?}");
    assert!(file.reason.as_deref().unwrap().contains("answer was lost"), "{file:?}");
}

#[test]
fn two_feeds_on_one_folder_do_not_race() {
    // Two feeds write into one folder at once; both finish, the files are whole.
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let toml = "[[feed]]\nname = \"a\"\nurl = \"shared\"\n\n[[feed]]\nname = \"b\"\nurl = \"./shared/\"\n";
    let outcome = fixture.publish(toml).unwrap();
    let pushed = statuses(&outcome).iter().filter(|(_, s)| *s == FileStatus::Pushed).count();
    let already = statuses(&outcome).iter().filter(|(_, s)| *s != FileStatus::Pushed).count();
    assert_eq!((pushed + already, pushed >= 1), (4, true), "{:?}", statuses(&outcome));
    let copied = fixture.root().join("shared/acme.lib/1.2.0/acme.lib.1.2.0.nupkg");
    assert_eq!(sha512_file(&copied).unwrap(), fixture.packages[0].sha512.clone().unwrap());
}

impl Fixture {
    /// Check `recorded` as a release re-run would: read back from its journal (JSON).
    fn check(&self, toml: &str, recorded: &PublishOutcome) -> Vec<(String, Option<String>)> {
        let journal = serde_json::to_string(&recorded.feeds).unwrap();
        let feeds: Vec<FeedOutcome> = serde_json::from_str(&journal).unwrap();
        check_with(&self.project(toml), &feeds, || Ok(Some(self.packages.clone()))).unwrap()
    }
}

const FOLDER: &str = "[[feed]]\nname = \"local\"\nurl = \"feed\"\n";

#[test]
fn check_published_compares_a_folder_feed_with_the_packed_files() {
    let fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let recorded = fixture.publish(FOLDER).unwrap();
    assert_eq!(fixture.check(FOLDER, &recorded), [("local".to_string(), None)]);
    let dir = fixture.root().join("feed/acme.lib/1.2.0");

    // The symbols package changed on the feed: both digests named.
    let snupkg = dir.join("acme.lib.1.2.0.snupkg");
    std::fs::write(&snupkg, b"something else").unwrap();
    let reason = fixture.check(FOLDER, &recorded)[0].1.clone().unwrap();
    let (ours, theirs) = (sha512_file(&fixture.symbols()).unwrap(), sha512_reader(&b"something else"[..]).unwrap());
    assert!(reason.contains("Acme.Lib.1.2.0.snupkg") && reason.contains(&ours) && reason.contains(&theirs), "{reason}");
    assert!(reason.contains("dist/nuget/Acme.Lib.1.2.0.snupkg"), "the local file, relative: {reason}");
    std::fs::copy(fixture.symbols(), &snupkg).unwrap();
    assert_eq!(fixture.check(FOLDER, &recorded)[0].1, None);

    // An interrupted publish: the package without its .sha512 is not complete.
    std::fs::remove_file(dir.join("acme.lib.1.2.0.nupkg.sha512")).unwrap();
    let reason = fixture.check(FOLDER, &recorded)[0].1.clone().unwrap();
    assert!(reason.contains("acme.lib.1.2.0.nupkg.sha512 is not there"), "{reason}");
    // Publishing again completes it.
    fixture.publish(FOLDER).unwrap();
    assert_eq!(fixture.check(FOLDER, &recorded)[0].1, None);

    std::fs::remove_dir_all(fixture.root().join("feed")).unwrap();
    let reason = fixture.check(FOLDER, &recorded)[0].1.clone().unwrap();
    assert!(reason.contains("feed `local` no longer has Acme.Lib.1.2.0.nupkg"), "{reason}");
    assert!(!fixture.root().join("feed").exists(), "a check writes nothing");

    // A feed no longer configured, and packed files gone.
    let renamed = FOLDER.replace("\"local\"", "\"other\"");
    let reason = fixture.check(&renamed, &recorded)[0].1.clone().unwrap();
    assert!(reason.contains("feed `local` is no longer in castoff.toml"), "{reason}");
    let gone = check_with(&fixture.project(FOLDER), &recorded.feeds, || Ok(None)).unwrap();
    assert!(gone[0].1.as_deref().unwrap().contains("packed files are gone"), "{gone:?}");
}

#[test]
fn check_published_reads_a_v3_feed_back_without_the_key() {
    let feed = V3Feed::start();
    let mut fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    let toml = v3_toml(&feed, "");
    let recorded = fixture.publish(&toml).unwrap();
    // No key needed: read-backs carry none.
    fixture.env.clear();
    let before = feed.requests().len();
    assert_eq!(fixture.check(&toml, &recorded), [("v3".to_string(), None)], "the snupkg counts as present");
    let reads = &feed.requests()[before..];
    assert!(reads.iter().all(|r| r.method == "GET" && r.header("x-nuget-apikey").is_none()), "{reads:?}");
    assert_eq!(reads.iter().filter(|r| r.path.starts_with("/v3/flat/")).count(), 1, "{reads:?}");

    // Different content on the feed: both digests.
    let other = package_bytes("Acme.Lib", "1.2.0", false, 4321);
    let remote = sha512_reader(&other[..]).unwrap();
    feed.insert_package("Acme.Lib", "1.2.0", other);
    let reason = fixture.check(&toml, &recorded)[0].1.clone().unwrap();
    assert!(reason.contains(&remote) && reason.contains(fixture.packages[0].sha512.as_deref().unwrap()), "{reason}");

    // The same feed name on a feed without the package: missing (404).
    let empty = V3Feed::start();
    let reason = fixture.check(&v3_toml(&empty, ""), &recorded)[0].1.clone().unwrap();
    assert!(reason.contains("feed `v3` no longer has Acme.Lib.1.2.0.nupkg") && reason.contains("404"), "{reason}");
    assert!(empty.pushes().is_empty());

    // An unreachable feed cannot be asked: an error, not a verdict.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = format!(
        "[network]\nattempts = 1\n\n[[feed]]\nname = \"v3\"\nurl = \"http://127.0.0.1:{port}/v3/index.json\"\n"
    );
    assert!(check_with(&fixture.project(&gone), &recorded.feeds, || Ok(Some(fixture.packages.clone()))).is_err());
}

#[test]
fn publish_reports_progress_per_file_and_feed() {
    use std::sync::{Arc, Mutex};
    let feed = V3Feed::start();
    let mut fixture = Fixture::new(Some(SymbolsKind::Snupkg));
    fixture.packages.clear();
    fixture.add_package("Acme.Lib", "1.2.0", Some(SymbolsKind::Snupkg), 200_000);
    type Calls = Mutex<Vec<(String, String, u64, u64)>>;
    let seen: Arc<Calls> = Arc::default();
    let progress: UploadProgress = {
        let seen = seen.clone();
        Arc::new(move |feed: &str, file: &str, sent, total| {
            seen.lock().unwrap().push((feed.to_string(), file.to_string(), sent, total))
        })
    };
    let toml = format!("{}\n{FOLDER}", v3_toml(&feed, ""));
    let options = PublishOptions { progress: Some(progress), ..PublishOptions::default() };
    fixture.publish_with(&toml, &options).unwrap();
    let seen = seen.lock().unwrap().clone();
    for (feed, path) in
        [("v3", fixture.nupkg().to_path_buf()), ("v3", fixture.symbols()), ("local", fixture.nupkg().to_path_buf())]
    {
        let file = path.file_name().unwrap().to_str().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let calls: Vec<_> = seen.iter().filter(|(f, name, ..)| f == feed && name == file).collect();
        assert!(!calls.is_empty(), "{feed} {file}: {seen:?}");
        assert_eq!(calls.last().map(|c| (c.2, c.3)), Some((size, size)), "{feed} {file}: {calls:?}");
        assert!(calls.windows(2).all(|w| w[0].2 < w[1].2), "{calls:?}");
    }
    assert!(format!("{options:?}").contains("progress"));
}

#[test]
fn check_published_reads_the_real_v2_feed_back() {
    let feed = testkit::pynuget::Pynuget::start(DEFAULT_KEY);
    let fixture = Fixture::new(None);
    let toml = |url: &str| {
        format!("[[feed]]\nname = \"v2\"\nurl = \"{url}\"\nprotocol = \"v2\"\napi_key_env = \"{KEY_ENV}\"\n")
    };
    let recorded = fixture.publish(&toml(&feed.url())).unwrap();
    assert_eq!(statuses(&recorded), [("Acme.Lib.1.2.0.nupkg".into(), FileStatus::Pushed)]);
    assert_eq!(fixture.check(&toml(&feed.url()), &recorded), [("v2".to_string(), None)]);

    // pynuget answers a version it does not have with an empty OData feed: missing.
    let empty = testkit::pynuget::Pynuget::start(DEFAULT_KEY);
    let reason = fixture.check(&toml(&empty.url()), &recorded)[0].1.clone().unwrap();
    assert!(reason.contains("feed `v2` no longer has Acme.Lib.1.2.0.nupkg") && reason.contains("no entry"), "{reason}");
}
