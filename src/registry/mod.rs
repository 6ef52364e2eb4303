//! Registries: image references, credentials (docker config and credential helpers),
//! the OCI distribution client, its authentication and its retry policy. Only this
//! module and `nuget` speak HTTP; `nuget` shares `retry` and the policy pieces of
//! `transport` (the agent, scheme policy, redirect resolution, scrubbing).

mod auth;
pub(crate) mod challenge;
pub mod client;
#[cfg(test)]
mod client_tests;
mod credentials;
mod encoding;
pub mod reference;
pub(crate) mod retry;
#[cfg(test)]
mod testserver;
pub(crate) mod transport;

pub use client::{Client, ClientOptions, Fetched, Found, RegistryError, RetryPolicy};
pub use reference::Reference;
/// Whether plain HTTP may be used for a registry: the client and docker-cli mode agree.
pub(crate) use transport::plain_http_allowed;
