//! Programs the tests and benchmarks need, installed from Debian's packages when missing.
//!
//! A fresh machine (and CI) has only what this installs: nothing may depend on a tool
//! someone installed by hand. When an install is impossible the task fails loudly
//! naming the package, rather than letting the tests that need it skip.

use anyhow::{bail, Context, Result};

/// (program, Debian package) pairs.
pub fn ensure_programs(wanted: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> =
        wanted.iter().filter(|(program, _)| which::which(program).is_err()).map(|(_, package)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} (apt-get)", missing.join(" "));
    if which::which("apt-get").is_err() {
        bail!("missing {}; install these packages and run again (no apt-get here)", missing.join(", "));
    }
    duct::cmd("apt-get", ["update", "-qq"]).stdout_null().run().context("apt-get update")?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    duct::cmd("apt-get", args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout_null()
        .run()
        .with_context(|| format!("apt-get install {}", missing.join(" ")))?;
    for (program, package) in wanted {
        which::which(program).with_context(|| format!("{program} still missing after installing {package}"))?;
    }
    Ok(())
}
