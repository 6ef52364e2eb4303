//! VERSION: the file (format-preserving, atomic), the lock that serialises writers, and
//! the pure bump rules.

pub mod bump;
pub mod file;
pub mod lock;

pub use bump::{next_version, BumpError, BumpRequest, Level};
pub use file::VersionFile;
pub use lock::ProjectLock;
