//! The real NuGet client: NuGet.exe 5.8 (npm `nuget-exe`) under Debian's mono, kept away
//! from the user's configuration and from nuget.org, as recipes/09 runs it.
//!
//! NuGet.exe is installed once per machine into `target/testkit/npm-nuget-5.8.0`
//! ([`ensure_nuget_exe`]; `cargo xtask test` installs it, and mono, before the tests run).
//!
//! Isolation, per `work` directory a test passes in:
//! - `-ConfigFile work/nuget/NuGet.Config` with `<clear/>` sources and `-NonInteractive`
//!   go on every command line (NuGet.exe takes options only after the command name, so
//!   [`NugetExe::command`] runs it through `sh -c '... "$@" -ConfigFile ... -NonInteractive'`);
//! - HOME (and XDG_CONFIG_HOME) point into `work`: otherwise NuGet.exe writes a default
//!   `~/.config/NuGet/NuGet.Config` naming nuget.org even when given `-ConfigFile`;
//! - NUGET_PACKAGES, NUGET_HTTP_CACHE_PATH and NUGET_PLUGINS_CACHE_PATH point into `work`.
//!   [`NugetExe::install`] gives each install caches of its own, so an install always
//!   fetches from the source it names rather than finding the package in a cache.
//!
//! What NuGet.exe 5.8 does with what castoff makes, checked here (tests at the bottom):
//! - `add PACKAGE -Source DIR -Expand` reads a package and writes the folder-feed layout
//!   (`<id-lower>/<version>/<id-lower>.<version>.nupkg`, `.nupkg.sha512`, `<id-lower>.nuspec`,
//!   `.nupkg.metadata`, and the extracted files). It takes a .nupkg, a .snupkg and a
//!   .symbols.nupkg alike (the copy is always named .nupkg). It fails (exit 1) on a
//!   truncated zip ("is not a valid nupkg file"), on a nuspec that is not XML (the parser's
//!   message, with line and position), on a nuspec without a version ("Object reference
//!   not set to an instance of an object") and without any nuspec. It does NOT check the
//!   entries' CRCs: a stored entry with flipped bytes goes through (mono's zip reader).
//!   That is [`NugetExe::verify_readable`].
//! - `verify -All` is no help: it fails on every unsigned package (NU3004).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::programs::{describe, install_once, output, MONO, MONO_PACKAGES, NPM};

/// The NuGet.exe version, as recipes/09 runs it.
pub const NUGET_EXE_VERSION: &str = "5.8.0";

const CONFIG: &str =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration><packageSources><clear /></packageSources></configuration>\n";

/// NuGet.exe from npm, installed once per machine (see [`install_once`]); panics saying what
/// failed. Returns the path of `nuget-5.8.0.exe`.
pub fn ensure_nuget_exe() -> PathBuf {
    try_ensure_nuget_exe().unwrap_or_else(|failure| panic!("NUGET.EXE COULD NOT BE INSTALLED: {failure}"))
}

/// [`ensure_nuget_exe`], returning what failed instead of panicking (for xtask).
pub fn try_ensure_nuget_exe() -> Result<PathBuf, String> {
    let spec = format!("nuget-exe@{NUGET_EXE_VERSION}");
    let relative = format!("node_modules/nuget-exe/nuget-{NUGET_EXE_VERSION}.exe");
    let usable = |dir: &Path| dir.join(&relative).is_file();
    let dir = install_once(&format!("npm-nuget-{NUGET_EXE_VERSION}"), &spec, usable, |staging| {
        if which_on_path(NPM.name).is_none() {
            return Err(format!("`npm` is not installed (Debian package `{}`)", NPM.package));
        }
        let mut npm = NPM.command();
        npm.args(["install", "--no-audit", "--no-fund", "--no-save", "--loglevel", "error", "--prefix"])
            .arg(staging)
            .arg(&spec)
            .stdin(Stdio::null());
        let out = output(&mut npm);
        if !out.status.success() || !staging.join(&relative).is_file() {
            return Err(format!(
                "`{}` failed ({}), or left no {relative} (the package comes from the npm registry):\n{}{}",
                describe(&npm),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    })?;
    Ok(dir.join(relative))
}

fn which_on_path(name: &str) -> Option<PathBuf> {
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search).map(|dir| dir.join(name)).find(|path| path.is_file())
}

/// NuGet.exe 5.8 under mono, checked to start.
pub struct NugetExe {
    mono: PathBuf,
    exe: PathBuf,
}

/// The packages a hand-made package consists of (see [`hand_made_package`]).
#[derive(Debug, Clone)]
pub struct HandMade {
    pub nupkg: PathBuf,
    pub snupkg: PathBuf,
}

impl NugetExe {
    /// The one NuGet.exe of this process: mono and NuGet.exe are checked (and NuGet.exe
    /// installed when missing) on first use. Panics naming the Debian packages when mono
    /// cannot run NuGet.exe.
    pub fn get() -> &'static NugetExe {
        NugetExe::try_get().unwrap_or_else(|failure| panic!("NUGET.EXE IS NOT USABLE: {failure}"))
    }

    /// [`NugetExe::get`], returning what is wrong instead of panicking (for xtask).
    pub fn try_get() -> Result<&'static NugetExe, String> {
        static NUGET: OnceLock<Result<NugetExe, String>> = OnceLock::new();
        NUGET.get_or_init(NugetExe::check).as_ref().map_err(Clone::clone)
    }

    fn check() -> Result<NugetExe, String> {
        let packages = MONO_PACKAGES.join(" ");
        let hint =
            format!("install the Debian packages {packages} (or mono-complete); `cargo xtask test` installs them");
        let mono = which_on_path(MONO.name).ok_or_else(|| format!("`mono` is not installed: {hint}"))?;
        let nuget = NugetExe { mono, exe: try_ensure_nuget_exe()? };
        // mono-runtime alone has `mono` but not the assemblies NuGet.exe loads at start.
        let work = crate::temp_dir();
        run(nuget.command(work.path()).arg("help"))
            .map_err(|failure| format!("NuGet.exe does not start under mono: {hint}\n{failure}"))?;
        Ok(nuget)
    }

    /// The path of nuget.exe.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// `mono nuget.exe ARGS... -ConfigFile work/nuget/NuGet.Config -NonInteractive`, isolated
    /// in `work` (see the module comment): add the command name and its arguments. Runs in
    /// `work`, with no standard input.
    pub fn command(&self, work: &Path) -> Command {
        let dir = work.join("nuget");
        let home = dir.join("home");
        let config = dir.join("NuGet.Config");
        let user_config = home.join(".config/NuGet/NuGet.Config");
        for file in [&config, &user_config] {
            fs::create_dir_all(file.parent().expect("a parent")).expect("create NuGet.exe's directories");
            fs::write(file, CONFIG).expect("write NuGet.Config");
        }
        let script = format!(
            "exec {} {} \"$@\" -ConfigFile {} -NonInteractive",
            quote(&self.mono),
            quote(&self.exe),
            quote(&config)
        );
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).arg("nuget").current_dir(work).stdin(Stdio::null());
        for (name, _) in std::env::vars_os().filter(|(name, _)| name.to_string_lossy().starts_with("NUGET_")) {
            command.env_remove(name);
        }
        command
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("NUGET_PACKAGES", dir.join("cache/packages"))
            .env("NUGET_HTTP_CACHE_PATH", dir.join("cache/http"))
            .env("NUGET_PLUGINS_CACHE_PATH", dir.join("cache/plugins"));
        command
    }

    /// `nuget install ID -Version VERSION -Source SOURCE` (a feed URL or a folder) into a
    /// new directory under `work`, with caches of its own, so the package really comes from
    /// `source`. Returns the installed package's directory (`<Id>.<Version>`, holding the
    /// .nupkg and the extracted files).
    pub fn install(&self, id: &str, version: &str, source: &str, work: &Path) -> Result<PathBuf, String> {
        let dir = fresh_dir(work, "nuget-install-");
        let out_dir = dir.join("packages");
        let mut command = self.command(work);
        command
            .args(["install", id, "-Version", version, "-Source", source, "-OutputDirectory"])
            .arg(&out_dir)
            .env("NUGET_PACKAGES", dir.join("cache/packages"))
            .env("NUGET_HTTP_CACHE_PATH", dir.join("cache/http"));
        let log = run(&mut command)?;
        let wanted = format!("{id}.{version}").to_lowercase();
        let installed: Vec<PathBuf> =
            fs::read_dir(&out_dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        let by_name =
            installed.iter().find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().to_lowercase() == wanted));
        match (by_name, installed.as_slice()) {
            (Some(found), _) => Ok(found.clone()),
            (None, [only]) => Ok(only.clone()),
            _ => Err(format!("`{}` installed {installed:?}, not {id} {version}:\n{log}", describe(&command))),
        }
    }

    /// `nuget pack NUSPEC -OutputDirectory OUT`, with `-Symbols -SymbolPackageFormat snupkg`
    /// when `symbols`. Returns the packages NuGet.exe says it created.
    pub fn pack(&self, nuspec: &Path, out: &Path, symbols: bool, work: &Path) -> Result<Vec<PathBuf>, String> {
        let mut command = self.command(work);
        command.arg("pack").arg(nuspec).arg("-OutputDirectory").arg(out);
        if symbols {
            command.args(["-Symbols", "-SymbolPackageFormat", "snupkg"]);
        }
        let log = run(&mut command)?;
        let created: Vec<PathBuf> = log
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Successfully created package '"))
            .filter_map(|rest| rest.strip_suffix("'."))
            .map(PathBuf::from)
            .collect();
        match created.iter().all(|p| p.is_file()) && created.len() == 1 + usize::from(symbols) {
            true => Ok(created),
            false => Err(format!("`{}` reported {created:?}:\n{log}", describe(&command))),
        }
    }

    /// NuGet.exe reads `package` (a .nupkg, .snupkg or .symbols.nupkg) without complaint:
    /// see [`NugetExe::expand`].
    pub fn verify_readable(&self, package: &Path, work: &Path) -> Result<(), String> {
        self.expand(package, work).map(drop)
    }

    /// `nuget add PACKAGE -Source <new folder feed> -Expand`: NuGet.exe opens the zip, reads
    /// the nuspec's id and version and extracts every file. Returns the package's folder in
    /// that feed, `<id-lower>/<version>/`, with the nuspec and the extracted files.
    pub fn expand(&self, package: &Path, work: &Path) -> Result<PathBuf, String> {
        let feed = fresh_dir(work, "nuget-add-");
        let mut command = self.command(work);
        command.arg("add").arg(package).arg("-Source").arg(&feed).arg("-Expand");
        let log = run(&mut command)?;
        let versions: Vec<PathBuf> = fs::read_dir(&feed)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|id| fs::read_dir(id.path()).into_iter().flatten().flatten().map(|v| v.path()))
            .collect();
        let has_nuspec = |dir: &Path| {
            fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "nuspec"))
        };
        match versions.as_slice() {
            [only] if has_nuspec(only) => Ok(only.clone()),
            _ => Err(format!("`{}` left {versions:?} in {}:\n{log}", describe(&command), feed.display())),
        }
    }
}

/// Run a NuGet.exe command: its stdout and stderr when it exits 0, else what ran and both.
fn run(command: &mut Command) -> Result<String, String> {
    let out = output(command);
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.success() {
        true => Ok(log),
        false => Err(format!("`{}` failed ({}):\n{log}", describe(command), out.status)),
    }
}

/// A new directory in `work` that outlives this call (`work` is the caller's to remove).
fn fresh_dir(work: &Path, prefix: &str) -> PathBuf {
    tempfile::Builder::new().prefix(prefix).tempdir_in(work).expect("create a directory in the work dir").keep()
}

/// `path` in single quotes for `sh`.
fn quote(path: &Path) -> String {
    let text = path.to_str().expect("NuGet.exe's paths are UTF-8");
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A zip at `path` holding `entries` (name, bytes) in that order, deflated, with the zip
/// format's earliest timestamp: the raw material of packages good and bad.
pub fn zip_package(path: &Path, entries: &[(&str, &[u8])]) {
    let file = fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("start a zip entry");
        zip.write_all(bytes).expect("write a zip entry");
    }
    zip.finish().unwrap_or_else(|e| panic!("finish {}: {e}", path.display()));
}

/// `<dir>/<id>.<version>.nupkg` and `.snupkg` as recipes/mknupkg.sh makes them by hand: the
/// nupkg holds the nuspec, `[Content_Types].xml`, `_rels/.rels` and a fake DLL, the snupkg
/// the same with `<packageType name="SymbolsPackage"/>` and a fake PDB. Independent of
/// castoff's packer, for checking the harness itself.
pub fn hand_made_package(dir: &Path, id: &str, version: &str) -> HandMade {
    let nuspec = |symbols: bool| {
        let types =
            if symbols { "\n    <packageTypes><packageType name=\"SymbolsPackage\" /></packageTypes>" } else { "" };
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  <metadata>\n    \
             <id>{id}</id>\n    <version>{version}</version>\n    <authors>testkit</authors>\n    \
             <description>Hand-made package {id}</description>{types}\n  </metadata>\n</package>\n"
        )
    };
    let content_types = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" />\
        <Default Extension=\"nuspec\" ContentType=\"application/octet\" /><Default Extension=\"dll\" ContentType=\"application/octet\" />\
        <Default Extension=\"pdb\" ContentType=\"application/octet\" /></Types>\n";
    let rels = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
         <Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" Target=\"/{id}.nuspec\" Id=\"R1\" /></Relationships>\n"
    );
    fs::create_dir_all(dir).expect("create the package directory");
    let made = HandMade {
        nupkg: dir.join(format!("{id}.{version}.nupkg")),
        snupkg: dir.join(format!("{id}.{version}.snupkg")),
    };
    let nuspec_name = format!("{id}.nuspec");
    for (path, symbols) in [(&made.nupkg, false), (&made.snupkg, true)] {
        let (file, bytes): (String, &[u8]) = match symbols {
            false => (format!("lib/netstandard2.0/{id}.dll"), b"MZ-not-really-a-dll"),
            true => (format!("lib/netstandard2.0/{id}.pdb"), b"BSJB-not-really-a-pdb"),
        };
        let spec = nuspec(symbols);
        zip_package(
            path,
            &[
                (&nuspec_name, spec.as_bytes()),
                ("[Content_Types].xml", content_types.as_bytes()),
                ("_rels/.rels", rels.as_bytes()),
                (&file, bytes),
            ],
        );
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pynuget::Pynuget;
    use crate::temp_dir;

    const NUSPEC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>
  <id>Harness.Packed</id><version>1.2.3</version><authors>testkit</authors><description>packed by NuGet.exe</description>
</metadata><files><file src="lib/**" target="lib" /></files></package>
"#;

    /// NuGet.exe packs a nuspec with a snupkg beside the nupkg, and reads both back.
    #[test]
    fn pack_writes_a_nupkg_and_a_snupkg_that_it_can_read() {
        let nuget = NugetExe::get();
        let work = temp_dir();
        let src = work.path().join("src");
        fs::create_dir_all(src.join("lib/netstandard2.0")).unwrap();
        fs::write(src.join("lib/netstandard2.0/Harness.Packed.dll"), "MZ").unwrap();
        fs::write(src.join("lib/netstandard2.0/Harness.Packed.pdb"), "BSJB").unwrap();
        fs::write(src.join("Harness.Packed.nuspec"), NUSPEC).unwrap();
        let out = work.path().join("out");

        let created = nuget.pack(&src.join("Harness.Packed.nuspec"), &out, true, work.path()).unwrap();
        assert_eq!(created, vec![out.join("Harness.Packed.1.2.3.nupkg"), out.join("Harness.Packed.1.2.3.snupkg")]);
        for package in &created {
            let expanded = nuget.expand(package, work.path()).unwrap();
            assert!(expanded.ends_with("harness.packed/1.2.3"), "{}", expanded.display());
            assert!(expanded.join("harness.packed.nuspec").is_file());
        }
        let snupkg = nuget.expand(&created[1], work.path()).unwrap();
        assert!(snupkg.join("lib/netstandard2.0/Harness.Packed.pdb").is_file());
        assert!(!snupkg.join("lib/netstandard2.0/Harness.Packed.dll").exists());

        let plain = nuget.pack(&src.join("Harness.Packed.nuspec"), &work.path().join("plain"), false, work.path());
        assert_eq!(plain.unwrap(), vec![work.path().join("plain/Harness.Packed.1.2.3.nupkg")]);
    }

    /// verify_readable accepts hand-made packages (nupkg, snupkg, legacy name) and refuses
    /// a truncated zip, a nuspec that is not XML, one without a version, and no nuspec.
    #[test]
    fn verify_readable_accepts_good_packages_and_refuses_broken_ones() {
        let nuget = NugetExe::get();
        let work = temp_dir();
        let made = hand_made_package(&work.path().join("good"), "Harness.Read", "1.0.0");
        nuget.verify_readable(&made.nupkg, work.path()).unwrap();
        nuget.verify_readable(&made.snupkg, work.path()).unwrap();
        let legacy = work.path().join("good/Harness.Read.1.0.0.symbols.nupkg");
        fs::copy(&made.snupkg, &legacy).unwrap();
        nuget.verify_readable(&legacy, work.path()).unwrap();
        let expanded = nuget.expand(&made.nupkg, work.path()).unwrap();
        for file in ["harness.read.1.0.0.nupkg", "harness.read.1.0.0.nupkg.sha512", "harness.read.nuspec"] {
            assert!(expanded.join(file).is_file(), "{file} missing in {}", expanded.display());
        }
        assert!(expanded.join("lib/netstandard2.0/Harness.Read.dll").is_file());

        let bad = work.path().join("bad");
        fs::create_dir_all(&bad).unwrap();
        let good_bytes = fs::read(&made.nupkg).unwrap();
        let truncated = bad.join("Truncated.1.0.0.nupkg");
        fs::write(&truncated, &good_bytes[..good_bytes.len() / 2]).unwrap();
        let not_xml = bad.join("NotXml.1.0.0.nupkg");
        zip_package(&not_xml, &[("NotXml.nuspec", b"<package><metadata><id>NotXml</id>")]);
        let no_version = bad.join("NoVersion.1.0.0.nupkg");
        let spec = r#"<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
            <metadata><id>NoVersion</id><authors>a</authors><description>d</description></metadata></package>"#;
        zip_package(&no_version, &[("NoVersion.nuspec", spec.as_bytes())]);
        let no_nuspec = bad.join("NoNuspec.1.0.0.nupkg");
        zip_package(&no_nuspec, &[("lib/netstandard2.0/NoNuspec.dll", b"MZ")]);
        for (package, says) in [
            (&truncated, "is not a valid nupkg file"),
            (&not_xml, "Line 1"),
            (&no_version, "failed"),
            (&no_nuspec, "failed"),
        ] {
            let failure = nuget.verify_readable(package, work.path()).expect_err(&package.display().to_string());
            assert!(failure.contains(says), "{}: {failure}", package.display());
        }
    }

    /// NuGet.exe installs what was pushed to pynuget, and the same package from a folder.
    #[test]
    fn install_from_pynuget_and_from_a_folder() {
        let nuget = NugetExe::get();
        let feed = Pynuget::start("test-key");
        let work = temp_dir();
        let made = hand_made_package(&work.path().join("made"), "Harness.Install", "3.1.0");
        assert_eq!(feed.push_with_curl(&made.nupkg, "test-key"), 201, "{}", feed.log());

        let from_feed = nuget.install("Harness.Install", "3.1.0", &feed.url(), work.path()).unwrap();
        assert!(from_feed.ends_with("Harness.Install.3.1.0"), "{}", from_feed.display());
        assert_eq!(fs::read(from_feed.join("Harness.Install.3.1.0.nupkg")).unwrap(), fs::read(&made.nupkg).unwrap());
        assert!(from_feed.join("lib/netstandard2.0/Harness.Install.dll").is_file());
        assert!(feed.count("GET", "/download/1/3.1.0") == 1, "{:?}", feed.requests());

        let folder = work.path().join("folder-feed");
        fs::create_dir_all(&folder).unwrap();
        fs::copy(&made.nupkg, folder.join("Harness.Install.3.1.0.nupkg")).unwrap();
        let from_folder = nuget.install("Harness.Install", "3.1.0", folder.to_str().unwrap(), work.path()).unwrap();
        assert!(from_folder.join("lib/netstandard2.0/Harness.Install.dll").is_file());

        let missing = nuget.install("Harness.Missing", "1.0.0", &feed.url(), work.path());
        assert!(missing.is_err(), "{missing:?}");
    }
}
