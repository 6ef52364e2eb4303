//! Typed errors and the exit codes they map to.
//!
//! Every error a user can cause says three things: what was wrong, where (file, line or
//! key), and how to fix it. The CLI prints `error: <what>` and `hint: <fix>`; `--json`
//! emits the same fields. Exit codes follow DESIGN.md: 1 a step failed, 2 usage or
//! configuration error (nothing changed), 3 a `--check` found work to do.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a problem sits: a file, optionally a line in it, optionally a config key path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Location {
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Location { file: file.into(), line: None, key: None }
    }

    pub fn with_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, " (key `{key}`)")?;
        }
        Ok(())
    }
}

/// What is wrong with one value and how to fix it, from code that does not know where
/// the value came from (platform strings, image references): the caller adds the
/// file, line or key when it turns this into an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct Problem {
    problem: String,
    hint: String,
}

impl Problem {
    pub fn new(problem: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem { problem: problem.into(), hint: hint.into() }
    }

    /// What was wrong, naming the text as given.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// How to fix it, usually the exact text to write instead.
    pub fn hint(&self) -> &str {
        &self.hint
    }
}

/// Config validation speaks `(problem, hint)` pairs (see `config::Spans::check`).
impl From<Problem> for (String, String) {
    fn from(problem: Problem) -> Self {
        (problem.problem, problem.hint)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the user controls (castoff.toml, VERSION, the baseline, arguments) is wrong.
    #[error("{location}: {problem}")]
    Invalid { location: Location, problem: String, hint: String },

    /// The command line asks for something that cannot be done as asked.
    #[error("{problem}")]
    Usage { problem: String, hint: String },

    /// A step failed in a way the user should know how to handle (a release tag that
    /// points elsewhere, a verification that did not match).
    #[error("{problem}")]
    Failed { problem: String, hint: String },

    /// A file operation failed for a reason outside the user's input (permissions, disk).
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Talking to a registry failed, or its credentials are broken.
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),

    /// An external program could not be run or failed.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),

    /// A bug in castoff itself; never caused by input.
    #[error("internal error: {0}")]
    Internal(String),

    /// A release's preflight found things missing (tools, credentials, feeds); all of
    /// them are listed, and nothing was changed.
    #[error("the release cannot start; preflight found {} problem(s):\n{}", .0.len(), numbered(.0))]
    Preflight(Vec<Error>),

    /// A release step failed after earlier ones changed things; the journal records
    /// what was done, so running the release again continues it.
    #[error("release step `{step}` failed: {error}")]
    Step {
        step: &'static str,
        /// The journal, relative to the project root.
        journal: String,
        /// Shown in this error's own message, so not a `source` (which would print it
        /// twice).
        error: Box<Error>,
    },

    /// Another castoff holds the project lock for longer than we are willing to wait.
    #[error("{} is held by another castoff ({holder})", path.display())]
    Locked { path: PathBuf, holder: String },
}

impl Error {
    pub fn invalid(location: Location, problem: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Invalid { location, problem: problem.into(), hint: hint.into() }
    }

    pub fn usage(problem: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage { problem: problem.into(), hint: hint.into() }
    }

    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Error::Io { action, path: path.to_path_buf(), source }
    }

    /// How to fix it, when there is something the user can do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Invalid { hint, .. } | Error::Usage { hint, .. } | Error::Failed { hint, .. } => Some(hint.clone()),
            Error::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                Some("check the file's permissions and the user castoff runs as".into())
            }
            Error::Io { .. } => None,
            Error::Internal(_) => Some("this is a castoff bug; please report it with the command you ran".into()),
            Error::Registry(e) => Some(e.hint()),
            Error::Exec(crate::exec::ExecError::NotFound { program }) => {
                Some(format!("install {program}, or put it on PATH"))
            }
            Error::Exec(_) => None,
            Error::Preflight(problems) => Some(
                problems
                    .iter()
                    .enumerate()
                    .filter_map(|(n, e)| e.hint().map(|hint| format!("{}. {hint}", n + 1)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Error::Step { error: source, journal, .. } => Some(format!(
                "{}the steps done are recorded in {journal}: `castoff release` continues from there and does not redo them",
                source.hint().map(|hint| format!("{hint}\n")).unwrap_or_default()
            )),
            Error::Locked { .. } => Some(
                "wait for the other castoff to finish, or stop it if it is stuck; \
                 the lock is released when its process exits"
                    .into(),
            ),
        }
    }

    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Invalid { location, .. } => Some(location),
            Error::Preflight(problems) => problems.iter().find_map(Error::location),
            Error::Step { error, .. } => error.location(),
            _ => None,
        }
    }

    /// Exit code per DESIGN.md: 2 for anything the user must fix before retrying.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid { .. } | Error::Usage { .. } => 2,
            Error::Registry(e) if e.is_user_error() => 2,
            // Nothing was changed: as bad input when every problem is one.
            Error::Preflight(problems) if problems.iter().all(|e| e.exit_code() == 2) => 2,
            Error::Preflight(_) | Error::Step { .. } => 1,
            Error::Io { .. }
            | Error::Locked { .. }
            | Error::Internal(_)
            | Error::Registry(_)
            | Error::Exec(_)
            | Error::Failed { .. } => 1,
        }
    }
}

/// `1. problem\n2. problem`, each with its location when it has one.
fn numbered(problems: &[Error]) -> String {
    let lines: Vec<String> = problems.iter().enumerate().map(|(n, e)| format!("  {}. {e}", n + 1)).collect();
    lines.join("\n")
}

/// Attach a path and the attempted action to an `io::Result`.
pub trait IoContext<T> {
    fn with_path(self, action: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn with_path(self, action: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error::io(action, path, source))
    }
}
