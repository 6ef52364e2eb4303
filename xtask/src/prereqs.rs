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
    apt_get(&["update", "-qq"]).stdout_null().run().context("apt-get update")?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(missing.iter().copied());
    apt_get(&args).stdout_null().run().with_context(|| format!("apt-get install {}", missing.join(" ")))?;
    for (program, package) in wanted {
        which::which(program).with_context(|| format!("{program} still missing after installing {package}"))?;
    }
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
