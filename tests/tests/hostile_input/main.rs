//! Hostile input end to end, with the real `catalog-reconciler` binary: what a catalog
//! repository, a git remote (and, in sibling modules, a webhook sender or a registry) can
//! send must not crash, stall or exhaust the reconciler.

#[path = "../sync_common/mod.rs"]
mod sync_common;

mod repository;
