//! `cargo xtask test` (what CI runs) and `cargo xtask lint`.

use anyhow::{Context, Result};

use crate::prereqs::ensure_programs;

/// Programs the integration tests drive: temporary repos are real git repos.
const TEST_PROGRAMS: &[(&str, &str)] = &[("git", "git")];

pub fn run(extra: &[String]) -> Result<()> {
    ensure_programs(TEST_PROGRAMS)?;
    let root = crate::workspace_root();
    let mut args = vec!["test".to_string(), "--workspace".into(), "--locked".into()];
    args.extend(extra.iter().cloned());
    duct::cmd("cargo", args).dir(&root).run().context("cargo test failed")?;
    Ok(())
}

pub fn lint() -> Result<()> {
    let root = crate::workspace_root();
    duct::cmd!("cargo", "fmt", "--all", "--check").dir(&root).run().context("cargo fmt --check: run `cargo fmt`")?;
    duct::cmd!("cargo", "clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings")
        .dir(&root)
        .run()
        .context("cargo clippy found problems")?;
    Ok(())
}
