//! Registries: image references (and, in later milestones, credentials, the OCI
//! distribution client and its retry policy). Only this module and `nuget` speak HTTP.

pub mod client;
pub mod reference;

pub use client::{Client, ClientOptions, Fetched, Found, RegistryError, RetryPolicy};
pub use reference::Reference;
