//! Hostile input: what anyone who can reach the reconciler's endpoints, or write the files,
//! objects and remotes it reads, can make it do. It must not crash, stall or exhaust the
//! reconciler. Every test drives the real binaries.

#[path = "../sync_common/mod.rs"]
mod sync_common;

mod durations;
mod repository;
mod webhook;
