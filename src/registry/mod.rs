//! Registries: image references (and, in later milestones, credentials, the OCI
//! distribution client and its retry policy). Only this module and `nuget` speak HTTP.

pub mod reference;
