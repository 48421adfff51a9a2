//! One sync's panic stays in that sync: it is caught ([`crate::panics::contained`]), reported
//! on its CatalogSource (Ready=False, reason `InternalError`) and retried later, while every
//! other source keeps syncing.

use std::time::Duration;

use super::effects::{fail, later};
use super::{Key, Shared};
use crate::panics::LockExt as _;

/// How long a source whose sync panicked waits before the next attempt.
const RETRY_AFTER_PANIC: Duration = Duration::from_secs(300);

/// Puts the panic on the source's status and schedules a retry.
pub(super) async fn report_panic(shared: &Shared, key: &Key, message: &str) {
    tracing::error!(source = %format!("{}/{}", key.0, key.1), panic = message, "a sync panicked");
    shared
        .due
        .locked()
        .insert(key.clone(), later(RETRY_AFTER_PANIC));
    let Some(source) = shared.source(key) else {
        return;
    };
    let state = shared.state(key);
    let mut state = state.lock().await;
    let previous = source.status.clone().unwrap_or_default();
    let text = format!(
        "the sync stopped on an internal error: {message}; retrying in {} (please report this as a bug)",
        catalog_api::duration::format(RETRY_AFTER_PANIC)
    );
    fail(
        shared,
        &mut state.written,
        &source,
        &previous,
        previous.clone(),
        "InternalError",
        &text,
        source.metadata.generation,
    )
    .await;
}
