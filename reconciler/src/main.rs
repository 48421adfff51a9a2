//! The `catalog-reconciler` binary: parses the flags, starts the runtime and runs
//! [`catalog_reconciler::run`]; everything else lives in the library.

use catalog_reconciler::{Config, init_logging, limit_arenas, run};
use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before any worker thread exists, so none of them gets an arena of its own.
    limit_arenas();
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "catalog-reconciler stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
