//! `castoff pack`: the real binary packs a nuspec project into dist/nuget (a nupkg and
//! its snupkg or legacy symbols package), byte-identical on every re-pack; bad input is
//! exit 2 with nothing written; and the real NuGet.exe (5.8, mono) installs and reads
//! what castoff packed.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use testkit::nuget_exe::NugetExe;

use crate::support::{check_rejected, temp_dir, Loc, TempRepo};

const CONFIG: &str = "[version]\nfile = \"VERSION\"\n\n[[package]]\nnuspec = \"nuget/App.nuspec\"\n";

const NUSPEC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>App</id>
    <version>$version$</version>
    <authors>castoff tests</authors>
    <description>Packed by castoff</description>
  </metadata>
  <files>
    <file src="lib/**" target="lib" />
  </files>
</package>
"#;

const DLL: &str = "lib/netstandard2.0/App.dll";
const PDB: &str = "lib/netstandard2.0/App.pdb";

/// A repository at VERSION 1.2.3 with nuget/App.nuspec, a DLL and its portable PDB;
/// `extra` is appended to the [[package]] table.
fn nuget_repo(extra: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", "1.2.3\n");
    repo.write("castoff.toml", format!("{CONFIG}{extra}"));
    repo.write("nuget/App.nuspec", NUSPEC);
    repo.write(&format!("nuget/{DLL}"), "MZ\u{90}\0not really a dll, but the packer does not care");
    repo.write(&format!("nuget/{PDB}"), "BSJB\u{1}\0\u{1}\0a portable pdb, as far as the signature goes");
    repo
}

/// The entry names of a zip, in archive order.
fn entries(path: &Path) -> Vec<String> {
    let zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    zip.file_names().map(|name| name.unwrap().into_owned()).collect()
}

fn entry_text(path: &Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

/// The OPC parts and the nuspec every package holds, and `content`.
fn expected_entries(path: &Path, content: &[&str]) -> Vec<String> {
    let names = entries(path);
    let psmdcp = names.iter().find(|n| n.starts_with("package/services/metadata/core-properties/")).cloned();
    let psmdcp = psmdcp.unwrap_or_else(|| panic!("{} has no psmdcp: {names:?}", path.display()));
    assert!(psmdcp.ends_with(".psmdcp"), "{psmdcp}");
    let mut expected: Vec<String> = ["App.nuspec", "[Content_Types].xml", "_rels/.rels"].map(String::from).to_vec();
    expected.extend(content.iter().map(|c| c.to_string()));
    expected.push(psmdcp);
    expected.sort();
    expected
}

/// The nupkg holds the DLL, the snupkg the PDB; both are OPC zips with their nuspec.
#[test]
fn packs_a_nupkg_and_a_snupkg() {
    let repo = nuget_repo("");
    let stdout = repo.ok(&["pack"]);
    let nupkg = repo.join("dist/nuget/App.1.2.3.nupkg");
    let snupkg = repo.join("dist/nuget/App.1.2.3.snupkg");
    let size = fs::metadata(&nupkg).unwrap().len();
    let shown = format!("{:.1} KiB", size as f64 / 1024.0);
    assert_eq!(stdout.trim(), format!("packed dist/nuget/App.1.2.3.nupkg ({shown}) + App.1.2.3.snupkg"));

    assert_eq!(entries(&nupkg), expected_entries(&nupkg, &[DLL]));
    assert_eq!(entries(&snupkg), expected_entries(&snupkg, &[PDB]));
    let manifest = entry_text(&nupkg, "App.nuspec");
    assert!(manifest.contains("<version>1.2.3</version>") && !manifest.contains("<files>"), "{manifest}");
    let symbols = entry_text(&snupkg, "App.nuspec");
    assert!(symbols.contains("<packageType name=\"SymbolsPackage\" />"), "{symbols}");
    let types = entry_text(&nupkg, "[Content_Types].xml");
    assert!(types.contains("Extension=\"dll\"") && types.contains("Extension=\"psmdcp\""), "{types}");
    assert!(entry_text(&nupkg, "_rels/.rels").contains("Target=\"/App.nuspec\""));

    let json = repo.ok_json(&["pack"]);
    let packed = &json["packages"][0];
    assert_eq!(packed["id"], "App", "{json}");
    assert_eq!(packed["version"], "1.2.3");
    assert_eq!(packed["nupkg"], nupkg.to_str().unwrap());
    assert_eq!(packed["symbols"]["kind"], "snupkg");
    assert_eq!(packed["symbols"]["path"], snupkg.to_str().unwrap());
    assert_eq!(packed["sha512"].as_str().map(str::len), Some(88), "base64 of 64 bytes: {json}");
    assert_eq!(json["dry_run"], false);
}

/// The same inputs give byte-identical packages: re-packed over the old files, or into
/// a fresh directory after every input's mtime moved.
#[test]
fn repacking_gives_identical_bytes() {
    let repo = nuget_repo("");
    repo.ok(&["pack"]);
    let read = |name: &str| repo.read(&format!("dist/nuget/{name}"));
    let (nupkg, snupkg) = (read("App.1.2.3.nupkg"), read("App.1.2.3.snupkg"));

    repo.ok(&["pack"]);
    assert!(read("App.1.2.3.nupkg") == nupkg && read("App.1.2.3.snupkg") == snupkg, "re-pack over the old files");

    repo.remove("dist");
    for rel in ["nuget/App.nuspec", &format!("nuget/{DLL}"), &format!("nuget/{PDB}")] {
        repo.touch_forward(rel);
    }
    repo.ok(&["pack"]);
    assert!(read("App.1.2.3.nupkg") == nupkg && read("App.1.2.3.snupkg") == snupkg, "re-pack after touching inputs");
}

/// `symbols = "legacy"`: the .symbols.nupkg carries DLL, PDB and sources; the nupkg
/// neither PDB nor sources.
#[test]
fn legacy_symbols_package() {
    let repo = nuget_repo("symbols = \"legacy\"\n");
    repo.write("src/App.cs", "class App {}\n");
    let with_sources = NUSPEC.replace(
        "    <file src=\"lib/**\" target=\"lib\" />\n",
        "    <file src=\"lib/**\" target=\"lib\" />\n    <file src=\"../src/**/*.cs\" target=\"src\" />\n",
    );
    repo.write("nuget/App.nuspec", with_sources);
    let stdout = repo.ok(&["pack"]);
    assert!(stdout.contains("+ App.1.2.3.symbols.nupkg"), "{stdout}");
    let nupkg = repo.join("dist/nuget/App.1.2.3.nupkg");
    let legacy = repo.join("dist/nuget/App.1.2.3.symbols.nupkg");
    assert_eq!(entries(&nupkg), expected_entries(&nupkg, &[DLL]));
    assert_eq!(entries(&legacy), expected_entries(&legacy, &[DLL, PDB, "src/App.cs"]));
    assert!(!repo.exists("dist/nuget/App.1.2.3.snupkg"));
}

/// `--dry-run` reports what it would pack and writes nothing.
#[test]
fn dry_run_writes_nothing() {
    let repo = nuget_repo("");
    let before = repo.tree_hash();
    let stdout = repo.ok(&["pack", "--dry-run"]);
    assert!(stdout.starts_with("dry run: would pack dist/nuget/App.1.2.3.nupkg ("), "{stdout}");
    assert_eq!(repo.tree_hash(), before);
    let json = repo.ok_json(&["pack", "--dry-run"]);
    assert_eq!(json["dry_run"], true);
    let packed = repo.ok_json(&["pack"]);
    assert_eq!(json["packages"][0]["sha512"], packed["packages"][0]["sha512"], "the dry run packed the same bytes");
}

/// One way to break the project, and where castoff must say the problem is.
struct Case {
    name: &'static str,
    setup: fn(&TempRepo),
    loc: Loc,
    mentions: &'static [&'static str],
}

/// Each bad input: exit 2, an error naming the file, line or key, and no file written.
#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let nuspec = Loc::file("nuget/App.nuspec");
    let cases = [
        Case {
            name: "missing nuspec",
            setup: |repo| repo.remove("nuget/App.nuspec"),
            loc: Loc::file("castoff.toml").line(5).key("package[0].nuspec"),
            mentions: &["`nuget/App.nuspec` does not exist"],
        },
        Case {
            name: "invalid XML",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("</authors>", "</author>")),
            loc: nuspec.line(6),
            mentions: &["invalid XML"],
        },
        Case {
            name: "no id",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("    <id>App</id>\n", "")),
            loc: nuspec.line(3),
            mentions: &["<metadata> has no <id>"],
        },
        Case {
            name: "no version",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("    <version>$version$</version>\n", "")),
            loc: nuspec.line(3),
            mentions: &["<metadata> has no <version>"],
        },
        Case {
            name: "version other than VERSION",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("$version$", "1.2.4")),
            loc: nuspec.line(5),
            mentions: &["<version> is 1.2.4, but VERSION is 1.2.3", "$version$"],
        },
        Case {
            name: "unknown token",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("castoff tests", "$author$")),
            loc: nuspec.line(6),
            mentions: &["`$author$`"],
        },
        Case {
            name: "illegal id",
            setup: |repo| repo.write("nuget/App.nuspec", NUSPEC.replace("<id>App</id>", "<id>App..Core</id>")),
            loc: nuspec.line(4),
            mentions: &["App..Core"],
        },
        Case {
            name: "Windows PDB",
            setup: |repo| repo.write(&format!("nuget/{PDB}"), "Microsoft C/C++ MSF 7.00\r\n\u{1a}DS\0\0\0"),
            loc: Loc::file("nuget/lib/netstandard2.0/App.pdb"),
            mentions: &["Windows PDB", "portable"],
        },
        Case {
            name: "PDB without its DLL",
            setup: |repo| repo.remove(&format!("nuget/{DLL}")),
            loc: Loc::file("nuget/lib/netstandard2.0/App.pdb"),
            mentions: &["no matching DLL", "lib/netstandard2.0/App.dll"],
        },
        Case {
            name: "files matching nothing",
            setup: |repo| repo.remove("nuget/lib"),
            loc: nuspec.line(10),
            mentions: &["`lib/**` matches no file"],
        },
        Case {
            // A directory on the way that leads out of the project (`lib -> elsewhere`):
            // the files below it must not be packed and published.
            name: "a symlinked directory out of the project",
            setup: |repo| {
                let outside = repo.path().with_extension("outside");
                std::fs::rename(repo.join("nuget/lib"), &outside).expect("move lib out");
                std::os::unix::fs::symlink(&outside, repo.join("nuget/lib")).expect("symlink lib");
            },
            loc: nuspec.line(10),
            mentions: &["outside the project"],
        },
        Case {
            name: "unknown symbols format",
            setup: |repo| repo.write("castoff.toml", format!("{CONFIG}symbols = \"pdb\"\n")),
            loc: Loc::file("castoff.toml").line(6).key("package[0].symbols"),
            mentions: &["unknown symbols format `pdb`"],
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let repo = nuget_repo("");
        (case.setup)(&repo);
        if let Err(complaint) = check_rejected(&repo, &["pack"], Some(case.loc), case.mentions) {
            failures.push(format!("[{}] {complaint}", case.name));
        }
        if repo.exists("dist") {
            failures.push(format!("[{}] dist/ was created", case.name));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The real client reads what castoff packed: NuGet.exe 5.8 installs the nupkg from a
/// folder source (dist/nuget itself) and reads the snupkg and the legacy symbols
/// package without complaint.
#[test]
fn nuget_exe_installs_and_reads_what_castoff_packs() {
    let nuget = NugetExe::get();
    let work = temp_dir();
    let repo = nuget_repo("");
    repo.ok(&["pack"]);
    let out = repo.join("dist/nuget");
    let installed = nuget.install("App", "1.2.3", out.to_str().unwrap(), work.path()).unwrap();
    assert_eq!(fs::read(installed.join("App.1.2.3.nupkg")).unwrap(), repo.read("dist/nuget/App.1.2.3.nupkg"));
    assert_eq!(fs::read(installed.join(DLL)).unwrap(), repo.read(&format!("nuget/{DLL}")));
    let expanded = nuget.expand(&out.join("App.1.2.3.snupkg"), work.path()).unwrap();
    assert!(expanded.join(PDB).is_file(), "{}", expanded.display());

    repo.write("castoff.toml", format!("{CONFIG}symbols = \"legacy\"\n"));
    repo.ok(&["pack"]);
    let legacy = out.join("App.1.2.3.symbols.nupkg");
    let expanded = nuget.expand(&legacy, work.path()).unwrap();
    assert!(expanded.join(DLL).is_file() && expanded.join(PDB).is_file(), "{}", expanded.display());
}
