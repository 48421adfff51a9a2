//! Hostile input: what anyone who can reach the reconciler's endpoints, or write the files,
//! objects and remotes it reads, or answer as a registry, can make it do. It must not crash,
//! stall or exhaust the reconciler. Every test drives the real binaries.

use catalog_e2e::suite::sync as sync_common;
use catalog_e2e::suite::verify as verify_common;

mod durations;
mod registry;
mod repository;
mod webhook;
