//! Programs the tests and benchmarks need, installed from Debian's packages when missing.
//!
//! A fresh machine (and CI) has only what this installs: nothing may depend on a tool
//! someone installed by hand. When an install is impossible the task fails loudly
//! naming the package, rather than letting the tests that need it skip.
//!
//! Tools from PyPI and npm (the pynuget venv, NuGet.exe) are installed by testkit's own
//! code into `target/testkit`, where the tests look for them: [`ensure_nuget_tools`].

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use testkit::programs::{MONO_PACKAGES, PYTHON3_VENV_PACKAGE};

/// (program, Debian package) pairs.
pub fn ensure_programs(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> =
        wanted.iter().filter(|(program, _)| which::which(program).is_err()).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)?;
    for (program, package) in wanted {
        which::which(program).with_context(|| format!("{program} still missing after installing {package}"))?;
    }
    Ok(())
}

/// Debian packages that provide no program of their own to look for (libraries), installed
/// unless dpkg says they are.
pub fn ensure_packages(wanted: &[&str]) -> Result<()> {
    let missing: Vec<&str> = wanted.iter().copied().filter(|package| !dpkg_installed(package)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)?;
    let still: Vec<&str> = missing.iter().copied().filter(|package| !dpkg_installed(package)).collect();
    match still.is_empty() {
        true => Ok(()),
        false => bail!("still not installed after apt-get install: {}", still.join(" ")),
    }
}

/// What the NuGet tests run, installed up front so that no test pays minutes for a
/// download inside its timeout: mono with the assemblies NuGet.exe loads (apt), NuGet.exe
/// 5.8 (npm, into target/testkit) and the pynuget venv (PyPI, into target/testkit), through
/// the same testkit code the tests call, so they find exactly what was installed here.
pub fn ensure_nuget_tools() -> Result<()> {
    ensure_programs(&[("python3", "python3"), ("npm", "npm"), ("curl", "curl")])?;
    ensure_packages(MONO_PACKAGES).context("mono, which runs NuGet.exe")?;
    // Debian's python3 makes venvs only with python3-venv (ensurepip); another python3
    // (pyenv's, say) has it built in.
    if duct::cmd!("python3", "-c", "import ensurepip, venv").stdout_null().stderr_null().run().is_err() {
        ensure_packages(&[PYTHON3_VENV_PACKAGE]).context("python3 -m venv, for the pynuget feed")?;
    }
    timed("the pynuget venv (PyPI)", || {
        testkit::pynuget::try_ensure_pynuget_venv().map(drop).map_err(|e| anyhow!("pynuget venv: {e}"))
    })?;
    timed("NuGet.exe (npm)", || {
        testkit::nuget_exe::try_ensure_nuget_exe().map(drop).map_err(|e| anyhow!("NuGet.exe: {e}"))
    })?;
    timed("a NuGet.exe start under mono", || {
        testkit::nuget_exe::NugetExe::try_get().map(drop).map_err(|e| anyhow!("NuGet.exe under mono: {e}"))
    })
}

/// `what`, reported when it takes long enough to be an install rather than a check.
fn timed(what: &str, check: impl FnOnce() -> Result<()>) -> Result<()> {
    let start = Instant::now();
    check()?;
    let took = start.elapsed();
    if took.as_secs_f64() > 3.0 {
        eprintln!("xtask: {what} ready in {:.1} s", took.as_secs_f64());
    }
    Ok(())
}

/// dpkg knows `package` as installed.
fn dpkg_installed(package: &str) -> bool {
    duct::cmd!("dpkg-query", "--show", "--showformat=${db:Status-Status}", package)
        .stderr_null()
        .read()
        .is_ok_and(|status| status.trim() == "installed")
}

/// `apt-get update` and `apt-get install` of `packages`, failing loudly naming them.
fn apt_install(packages: &[&str]) -> Result<()> {
    eprintln!("xtask: installing {} (apt-get)", packages.join(" "));
    if which::which("apt-get").is_err() {
        bail!("missing {}; install these packages and run again (no apt-get here)", packages.join(", "));
    }
    let start = Instant::now();
    apt_get(&["update", "-qq"]).stdout_null().run().context("apt-get update")?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages.iter().copied());
    apt_get(&args).stdout_null().run().with_context(|| format!("apt-get install {}", packages.join(" ")))?;
    eprintln!("xtask: installed {} in {:.1} s", packages.join(" "), start.elapsed().as_secs_f64());
    Ok(())
}

/// `apt-get ARGS`, non-interactive, through sudo when not root (CI runs as root; sudo may
/// ask a developer for a password).
fn apt_get(args: &[&str]) -> duct::Expression {
    let root = duct::cmd!("id", "-u").read().is_ok_and(|uid| uid.trim() == "0");
    if root || which::which("sudo").is_err() {
        return duct::cmd("apt-get", args).env("DEBIAN_FRONTEND", "noninteractive");
    }
    let sudo_args = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"].into_iter().chain(args.iter().copied());
    duct::cmd("sudo", sudo_args)
}
