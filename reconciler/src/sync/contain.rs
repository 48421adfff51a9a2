//! One sync's panic stays in that sync: it is caught ([`crate::panics::contained`]), reported
//! on its CatalogSource (Ready=False, reason `InternalError`) and retried later, while every
//! other source keeps syncing.

use std::time::Duration;

use super::effects::later;
use super::error::Error;
use super::run::{self, Requeue};
use super::{Key, Shared};

/// How long a source whose sync panicked waits before the next attempt.
const RETRY_AFTER_PANIC: Duration = Duration::from_secs(300);

/// Puts the panic on the source's status; the retry is the returned [`Requeue`].
pub(super) async fn report_panic(shared: &Shared, key: &Key, message: &str) -> Requeue {
    tracing::error!(source = %format!("{}/{}", key.0, key.1), panic = message, "a sync panicked");
    let error = Error::Internal {
        message: message.to_string(),
        retry: catalog_api::duration::format(RETRY_AFTER_PANIC),
    };
    run::report_panic(shared, key, error).await;
    Requeue::At(later(RETRY_AFTER_PANIC))
}
