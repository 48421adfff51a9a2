//! `catalog-reconciler`: the sync and verification controllers, the metrics and probe
//! endpoint, and the process lifecycle (signals, graceful shutdown).
//!
//! A library with a thin binary (`main.rs`), as controller-rs lays itself out: `caib` and the
//! tests call the same deciding code the controllers run (the sync's planner, the verifier's
//! check and status transition) instead of keeping copies. The process around the
//! controllers ([`process`]: HTTP servers, webhook receiver, leader election) is the default
//! feature `controller`; `caib` builds the crate without it.

pub mod config;
mod events;
mod forge;
mod git;
#[cfg(feature = "controller")]
mod http;
#[cfg(feature = "controller")]
mod leader;
mod merge_patch;
mod panics;
mod preview;
#[cfg(feature = "controller")]
mod process;
pub mod sync;
pub mod sync_writes;
#[cfg(test)]
mod test_support;
pub mod verify;
#[cfg(feature = "controller")]
mod webhook;

use tokio_util::sync::CancellationToken;

pub use config::Config;
#[cfg(feature = "controller")]
pub use process::{init_logging, run};

/// What every controller gets.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    /// Fires on SIGTERM/SIGINT; controllers finish their current write and return.
    pub shutdown: CancellationToken,
    /// Whether a sync is writing: verifications wait for it ([`sync_writes`]).
    pub sync_writes: sync_writes::SyncWrites,
}
