//! The git step (`[release] git = true`): commit VERSION and the source baseline, tag
//! the commit with `[version] tag`, and, only with `--git-push`, push both.
//!
//! Only those two files are committed (`git commit -- <paths>`), whatever else is
//! staged: a release commit says exactly what the release changed. The tag is
//! annotated. Re-running is safe: a tag already on the release commit is "already
//! done"; a tag on another commit is an error naming both, never moved.

use std::path::Path;

use semver::Version;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::exec::Command;
use crate::project::Project;
use crate::sources::BASELINE_FILE;

/// What the git step did.
#[derive(Debug, Clone, Serialize)]
pub struct GitOutcome {
    pub tag: String,
    pub commit: String,
    /// A release commit was made (false when VERSION and the baseline were committed
    /// already).
    pub committed: bool,
    /// The tag existed on the release commit.
    pub tag_existed: bool,
    pub pushed: bool,
}

/// The commands the step runs, as a dry run shows them.
pub fn commands(project: &Project, version: &Version, push: bool) -> Vec<String> {
    let tag = project.tag_for(version);
    let paths = paths(project).join(" ");
    let message = message(project, version);
    let mut commands = vec![
        format!("git add -- {paths}"),
        format!("git commit -m {message:?} -- {paths}"),
        format!("git tag -a {tag} -m {message:?}"),
    ];
    if push {
        commands.push(format!("git push --atomic {} HEAD refs/tags/{tag}", project.config.release.remote));
    }
    commands
}

fn paths(project: &Project) -> Vec<String> {
    vec![project.config.version.file.clone(), BASELINE_FILE.to_string()]
}

fn message(project: &Project, version: &Version) -> String {
    project.config.release.message.replace("{version}", &version.to_string())
}

fn git(root: &Path) -> Command {
    Command::new("git").arg("-C").arg(root.to_string_lossy())
}

/// What must hold before anything runs: git present, a work tree with a commit, the
/// tag free (or already on HEAD), and the remote known when pushing.
pub fn preflight(project: &Project, version: &Version, push: bool) -> Vec<Error> {
    let mut problems = Vec::new();
    let inside = git(&project.root).args(["rev-parse", "--verify", "HEAD"]).run();
    match inside {
        Err(e) => {
            problems.push(Error::from(e));
            return problems;
        }
        Ok(out) if !out.success() => {
            problems.push(Error::usage(
                format!("[release] git = true, and {} is not a git work tree with a commit", project.root.display()),
                "run castoff in a git checkout with at least one commit, or set [release] git = false",
            ));
            return problems;
        }
        Ok(_) => {}
    }
    let tag = project.tag_for(version);
    if let Some(tagged) = tag_commit(&project.root, &tag).filter(|tagged| !is_release_commit(project, tagged, version))
    {
        problems.push(tag_elsewhere(&tag, &tagged));
    }
    if push {
        let remote = &project.config.release.remote;
        let known = git(&project.root).args(["remote", "get-url", remote.as_str()]).run();
        if !known.is_ok_and(|out| out.success()) {
            problems.push(Error::usage(
                format!("--git-push: this repository has no remote `{remote}`"),
                format!("add it with `git remote add {remote} <url>`, or set [release] remote"),
            ));
        }
    }
    problems
}

/// Commit, tag and (with `push`) push. Idempotent.
pub fn run(project: &Project, version: &Version, push: bool) -> Result<GitOutcome> {
    let root = &project.root;
    let tag = project.tag_for(version);
    let message = message(project, version);
    if let Some(tagged) = tag_commit(root, &tag) {
        if !is_release_commit(project, &tagged, version) {
            return Err(tag_elsewhere(&tag, &tagged));
        }
        let pushed = push && push_release(project, &tag)?;
        return Ok(GitOutcome { tag, commit: tagged, committed: false, tag_existed: true, pushed });
    }
    let paths = paths(project);
    let present: Vec<&String> = paths.iter().filter(|p| root.join(p).exists()).collect();
    git(root).args(["add", "--"]).args(present.iter().map(|p| p.as_str())).run_checked()?;
    let staged =
        git(root).args(["diff", "--cached", "--quiet", "--"]).args(present.iter().map(|p| p.as_str())).run()?;
    let committed = !staged.success();
    if committed {
        git(root)
            .args(["commit", "--quiet", "-m", message.as_str(), "--"])
            .args(present.iter().map(|p| p.as_str()))
            .run_checked()?;
    }
    git(root).args(["tag", "-a", tag.as_str(), "-m", message.as_str()]).run_checked()?;
    let commit = head(root).ok_or_else(|| Error::Internal("HEAD vanished after the release commit".into()))?;
    let pushed = push && push_release(project, &tag)?;
    Ok(GitOutcome { tag, commit, committed, tag_existed: false, pushed })
}

/// Whether the tag of a finished git step still names a commit holding `version`.
pub fn check(project: &Project, version: &Version) -> Option<String> {
    let tag = project.tag_for(version);
    match tag_commit(&project.root, &tag) {
        Some(commit) if is_release_commit(project, &commit, version) => None,
        Some(commit) => Some(format!("tag {tag} now names {commit}, whose VERSION is not {version}")),
        None => Some(format!("tag {tag} is gone")),
    }
}

fn push_release(project: &Project, tag: &str) -> Result<bool> {
    let remote = project.config.release.remote.as_str();
    let tag_ref = format!("refs/tags/{tag}");
    git(&project.root).args(["push", "--quiet", "--atomic", remote, "HEAD", tag_ref.as_str()]).run_checked()?;
    Ok(true)
}

fn head(root: &Path) -> Option<String> {
    let out = git(root).args(["rev-parse", "--verify", "HEAD"]).run().ok().filter(|o| o.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The commit `tag` points at, if the tag exists.
fn tag_commit(root: &Path, tag: &str) -> Option<String> {
    let spec = format!("refs/tags/{tag}^{{commit}}");
    let out = git(root).args(["rev-parse", "--verify", "--quiet", spec.as_str()]).run().ok().filter(|o| o.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `commit`'s VERSION file holds `version`.
fn is_release_commit(project: &Project, commit: &str, version: &Version) -> bool {
    // `./`: relative to the project (git -C), which may be a subdirectory of the repository.
    let spec = format!("{commit}:./{}", project.config.version.file);
    let out = git(&project.root).args(["show", spec.as_str()]).run();
    out.ok()
        .filter(|o| o.success())
        .and_then(|o| {
            crate::version::file::parse_version(
                String::from_utf8_lossy(&o.stdout).trim().trim_start_matches('\u{feff}'),
            )
            .ok()
        })
        .is_some_and(|found| found == *version)
}

fn tag_elsewhere(tag: &str, commit: &str) -> Error {
    Error::usage(
        format!("git tag {tag} already exists on commit {commit}, which is not this release's"),
        format!(
            "a released tag is never moved: bump to a new version, or delete the tag (`git tag -d {tag}`) if it was \
             a mistake"
        ),
    )
}
