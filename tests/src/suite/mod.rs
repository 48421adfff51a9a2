//! The setups several end-to-end suites share, kept here in the library (one way to share a
//! helper) rather than as `mod x_common;` or `#[path]` modules compiled into each suite:
//! [`sync`] (an emulator and the sync controller), [`verify`] (an emulator and verification
//! controllers), [`write`] (caib's Git-writing commands against a remote and a fake forge),
//! [`catalog_cluster`] (the caib suites that also run a cluster), [`deploy`] (the rendered
//! deploy/ manifests), [`kubectl`] (the emulator's kubectl suites).

pub mod catalog_cluster;
pub mod deploy;
pub mod kubectl;
pub mod sync;
pub mod verify;
pub mod write;
