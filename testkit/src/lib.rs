//! Real services for castoff's integration tests and benchmarks, in one place so the
//! tests (`tests/support`) and `cargo xtask bench` start them the same way: Debian's
//! docker-registry on a free loopback port (anonymous or htpasswd), OCI-layout image
//! fixtures pushed with skopeo, and the docker manifest CLI.
//!
//! Everything here panics with an explanation on failure: a missing program names its
//! Debian package, and nothing is ever skipped silently.

#![allow(clippy::disallowed_methods)] // test services start real programs

pub mod buildah;
pub mod buildx;
pub mod docker;
pub mod dockerd;
pub mod images;
pub mod nuget_exe;
pub mod programs;
pub mod pynuget;
pub mod registry;
pub mod v3feed;

use tempfile::TempDir;

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new().prefix("castoff-it-").tempdir().expect("create a temporary directory")
}

/// Close `stream` abortively: `SO_LINGER` 0, so the peer gets a TCP RST ("connection
/// reset by peer") instead of an orderly FIN, and unsent data is dropped. For fault
/// injection (std has no stable `set_linger`; tokio's socket wrapper needs no runtime).
pub fn close_with_reset(stream: std::net::TcpStream) {
    let socket = tokio::net::TcpSocket::from_std_stream(stream);
    let _ = socket.set_zero_linger();
    drop(socket);
}
