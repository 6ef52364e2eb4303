//! castoff's integration tests: one test binary, one module per area. Every test runs
//! the real `castoff` binary in its own temporary git repository (see `support`).

#![allow(clippy::disallowed_methods)] // tests start git, castoff and the real services

mod support;

mod bad_input;
mod bad_input_corpus;
mod build;
mod cache;
mod cli;
mod concurrency;
mod dry_run;
mod faults;
mod fuzz_regressions;
mod init;
mod makefile_flow;
mod manifest;
mod native;
mod nuget_pack;
mod nuget_publish;
mod prerelease;
mod recovery;
mod release;
mod release_steps;
mod safety;
mod secrets;
mod security;
mod services;
mod sources;
mod status;
mod version_file;
