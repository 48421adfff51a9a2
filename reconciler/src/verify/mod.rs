//! CatalogImage verification controller (filled in by the verification work).

use std::sync::Arc;

use crate::Context;

/// Runs until `ctx.shutdown` fires.
pub async fn run(ctx: Arc<Context>) -> anyhow::Result<()> {
    ctx.shutdown.cancelled().await;
    Ok(())
}
