//! A byte budget for what one YAML file expands to once parsed.
//!
//! YAML aliases (`*name`) repeat their anchor's content: a 100 KiB file of nested aliases
//! ("billion laughs") describes gigabytes. serde-saphyr bounds aliases by *event* counts, not
//! by bytes, so a few thousand aliases of one large scalar still expand to hundreds of MiB.
//! Every node the [`crate::entry::Node`] deserializer builds is charged here (its fixed size,
//! its string bytes, its mapping keys) and building stops at [`MAX_EXPANDED_BYTES`], before
//! the memory is allocated.

use std::cell::Cell;

/// Most bytes one entry file (or `catalog.yaml`) may expand to once parsed: sixteen times
/// the largest file, far above any real entry (a few KiB parsed) and far below what could
/// hurt the reconciler.
pub const MAX_EXPANDED_BYTES: usize = 4 * 1024 * 1024;

/// Message of the deserialization error raised when the budget is spent; [`spent`] tells
/// the caller it was this and not a syntax error.
pub(crate) const SPENT_MESSAGE: &str = "expansion budget spent";

thread_local! {
    /// Bytes charged to the file being parsed on this thread (parsing is synchronous, so
    /// the thread is the file).
    static CHARGED: Cell<usize> = const { Cell::new(0) };
}

/// Starts a new file's budget.
pub(crate) fn reset() {
    CHARGED.with(|c| c.set(0));
}

/// Charges `bytes`; an error once the file's total passes [`MAX_EXPANDED_BYTES`].
pub(crate) fn charge<E: serde::de::Error>(bytes: usize) -> Result<(), E> {
    let total = CHARGED.with(|c| {
        let total = c.get().saturating_add(bytes);
        c.set(total);
        total
    });
    if total > MAX_EXPANDED_BYTES {
        return Err(E::custom(SPENT_MESSAGE));
    }
    Ok(())
}

/// Whether the last file parsed on this thread ran out of budget.
pub(crate) fn spent() -> bool {
    CHARGED.with(|c| c.get() > MAX_EXPANDED_BYTES)
}

/// The diagnostic's text for a file that ran out of budget.
pub(crate) fn spent_diagnostic() -> String {
    format!(
        "the YAML expands past {} MiB once its aliases (*name) are resolved: an entry file must not repeat anchors (&name) this much",
        MAX_EXPANDED_BYTES / (1024 * 1024)
    )
}
