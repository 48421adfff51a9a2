//! One module per command. Cluster-reading commands use `cluster`; catalog-changing commands
//! go through `repo` and `forge` and never write to the cluster.

pub mod diff;
pub mod diff_plan;
pub mod get;
pub mod images;
pub mod list;
pub mod list_rows;
pub mod reverts;
pub mod source_entries;
pub mod status;
pub mod validate;
pub mod verify;
pub mod verify_local;
// Catalog-changing commands (through Git): add, publish, remove, promote, tag, untag.
pub mod add;
pub mod change;
pub mod entry;
pub mod promote;
pub mod publish;
pub mod remove;
pub mod resolve;
pub mod tag;
pub mod target_env;
#[cfg(test)]
pub mod testdata;

/// Runs an async command to completion. Each command is one short-lived task: a
/// current-thread runtime is all it needs and starts in microseconds.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}
