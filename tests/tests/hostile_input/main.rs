//! Hostile input, end to end: what a misbehaving peer sends must neither stall nor bloat the
//! real reconciler, nor obtain anything from it.

#[path = "../verify_common/mod.rs"]
mod verify_common;

mod registry;
