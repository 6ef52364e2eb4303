//! castoff cuts multi-arch releases with one command: it bumps `VERSION` when the
//! sources it depends on change, and (in later milestones) builds per-platform images,
//! joins them into image indexes, and packs and pushes NuGet packages.
//!
//! This is the library a project's own `cargo xtask release` calls; the `castoff` binary
//! is a thin command line over the same API.
//!
//! ```no_run
//! use castoff::{BumpRequest, Level, Project, WriteOptions};
//! let project = Project::open(std::path::Path::new("."), None)?;
//! let outcome = project.bump(&BumpRequest::Level { level: Level::Minor, pre: None }, WriteOptions::default())?;
//! println!("{} -> {}", outcome.previous, outcome.version);
//! # Ok::<(), castoff::Error>(())
//! ```

pub mod config;
pub mod error;
pub mod exec;
pub mod faults;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
mod git;
pub mod image;
pub mod init;
pub mod manifest;
pub mod nuget;
mod placeholders;
pub mod platform;
pub mod project;
pub mod registry;
pub mod release;
mod render;
pub mod secret;
pub mod sources;
pub mod version;

pub use error::{Error, Location, Result};
pub use init::{init, InitOptions, InitOutcome};
pub use project::{BumpOutcome, Project, Status, WriteOptions};
pub use release::{BumpChoice, Release, ReleaseOptions, ReleaseOutcome, StepKind};
pub use version::{BumpRequest, Level};
