//! Keeping the allocator's footprint close to what the sync really holds.
//!
//! A sync of a large environment allocates and frees tens of MiB (watch events, plans, the
//! apply stream) across the runtime's worker threads. glibc gives each thread its own arena
//! and keeps freed pages mapped, so the resident size grew to several times the live data
//! (bench-sync: ~290 MiB for 10,000 entries). Limiting the arenas and handing freed pages
//! back after each sync keeps the peak near the live data. Other C libraries: no-op.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    /// `M_ARENA_MAX` and `M_MMAP_THRESHOLD` from glibc's malloc.h.
    const M_ARENA_MAX: c_int = -8;
    const M_MMAP_THRESHOLD: c_int = -3;

    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    pub fn limit_arenas(max: c_int) {
        // SAFETY: mallopt only changes a malloc tuning parameter; any value is accepted.
        unsafe { mallopt(M_ARENA_MAX, max) };
        // A fixed threshold (glibc raises it after each large free otherwise): the large,
        // short-lived vectors of a sync are mapped and unmapped whole instead of leaving
        // holes in the heap.
        // SAFETY: as above.
        unsafe { mallopt(M_MMAP_THRESHOLD, 256 * 1024) };
    }

    pub fn release_free_pages() {
        // SAFETY: malloc_trim only returns unused pages of the heaps to the kernel.
        unsafe { malloc_trim(0) };
    }
}

/// Caps the number of malloc arenas (called first thing in `main`, before the Tokio
/// runtime starts its worker threads; calling it again is harmless).
pub(crate) fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::limit_arenas(2);
}

/// Returns the pages freed by a finished sync to the kernel.
pub(crate) fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    glibc::release_free_pages();
}
