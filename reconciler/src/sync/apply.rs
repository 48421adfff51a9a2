//! The thin, effectful half of a sync: server-side apply of the planned objects (field
//! manager `catalog-reconciler`, forced so a human's edit of a managed field is reverted) and
//! deletion of pruned ones, with bounded concurrency.

use futures::{Stream, StreamExt, stream};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use catalog_api::{CatalogImage, FIELD_MANAGER};

use super::error::WriteError;
use super::live::resource_version;
use super::metrics::Metrics;
use super::plan::{ApplyOp, PlanInput};

/// Concurrent API writes of one sync.
pub const CONCURRENCY: usize = 16;

/// Result of one write.
pub struct Written {
    pub name: String,
    pub create: bool,
    /// The resourceVersion the server gave the object, or the error. The object itself is
    /// dropped at once: 10,000 responses would otherwise be held until the last write.
    pub result: Result<u64, WriteError>,
}

/// Applies every op, yielding each result as it arrives; never stops at the first error
/// (per-entry isolation). Each object is built from `input` just before it is sent, so at
/// most [`CONCURRENCY`] exist at once.
pub fn apply_all<'a>(
    api: &'a Api<CatalogImage>,
    ops: Vec<ApplyOp>,
    input: &'a PlanInput<'a>,
    metrics: &'a Metrics,
) -> impl Stream<Item = Written> + 'a {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    stream::iter(ops)
        .map(move |op| {
            let params = params.clone();
            async move {
                let object = op.object(input);
                let result = api
                    .patch(&op.name, &params, &Patch::Apply(&object))
                    .await
                    .map(|applied| resource_version(&applied.metadata))
                    .map_err(|source| WriteError::Apply {
                        name: op.name.clone(),
                        source,
                    });
                drop(object);
                metrics.api_write("apply");
                Written {
                    name: op.name,
                    create: op.create,
                    result,
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
}

/// Deletes every pruned object (already-gone objects count as deleted).
pub async fn prune_all(
    api: &Api<CatalogImage>,
    names: Vec<String>,
    metrics: &Metrics,
) -> Vec<(String, Result<(), WriteError>)> {
    stream::iter(names)
        .map(|name| async move {
            let result = match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                Err(source) => Err(WriteError::Delete {
                    name: name.clone(),
                    source,
                }),
            };
            metrics.api_write("delete");
            (name, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}
