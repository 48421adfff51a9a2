//! Hostile input: what anyone who can reach the reconciler's endpoints, or write the files
//! and objects it reads, can make it do. Every test drives the real binaries.

#[path = "../sync_common/mod.rs"]
mod sync_common;

mod durations;
mod webhook;
