//! Keeping one source's slow remote from holding back the others.
//!
//! A sync runs on one of [`super::PARALLEL_SOURCES`] worker slots; a fetch can wait on its
//! remote for up to `spec.timeout` (at most [`catalog_api::duration::MAX_TIMEOUT`]). So that eight remotes
//! that never answer cannot take every slot, a sync gives its slot back while it waits for
//! its fetch and takes one again afterwards ([`WORKER`]).
//!
//! The fetch itself is blocking libgit2 work on a blocking thread. At the deadline the sync
//! stops waiting for it, but libgit2 cannot be interrupted while it waits for the server's
//! ref advertisement (no callback runs then): the thread ends only when libgit2's own idle
//! timeout fires ([`crate::git::fetch::NETWORK_IDLE_TIMEOUT`]) or, for a remote that
//! trickles a byte now and then, when the remote stops. Such abandoned threads are bounded:
//! each holds one of `--fetch-concurrency` slots until it really ends, and a source never has
//! two fetches at once (the second would also write the same cache repository).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Key;
use super::error::FetchError;
use crate::git::{self, FetchRequest, Fetched, SourceError};

use crate::panics::LockExt as _;

tokio::task_local! {
    /// The worker slot of the sync running in this task, when the scheduler gave it one.
    pub(super) static WORKER: RefCell<Option<OwnedSemaphorePermit>>;
}

/// The fetch slots and the sources whose fetch thread is still running.
pub(crate) struct FetchSlots {
    permits: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<Key>>>,
}

/// Marks a source's fetch as running until the blocking thread that owns it ends.
struct InFlight {
    key: Key,
    set: Arc<Mutex<HashSet<Key>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Never held across anything that can panic; a poisoned set is still a set.
        let mut set = self.set.locked();
        set.remove(&self.key);
    }
}

impl FetchSlots {
    pub(crate) fn new(concurrency: usize) -> FetchSlots {
        FetchSlots {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            in_flight: Arc::default(),
        }
    }

    fn claim(&self, key: &Key) -> Option<InFlight> {
        let mut set = self.in_flight.locked();
        set.insert(key.clone()).then(|| InFlight {
            key: key.clone(),
            set: self.in_flight.clone(),
        })
    }

    /// Runs `request` on a blocking thread, giving up at `request.timeout` (waiting for a
    /// free slot included). The caller's worker slot is free meanwhile.
    pub(crate) async fn fetch(
        &self,
        workers: &Arc<Semaphore>,
        key: &Key,
        request: FetchRequest,
    ) -> Result<Fetched, FetchError> {
        let released = WORKER.try_with(|w| w.borrow_mut().take()).ok().flatten();
        let had_slot = released.is_some();
        drop(released);
        let result = self.fetch_detached(key, request).await;
        if had_slot && let Ok(permit) = workers.clone().acquire_owned().await {
            let _ = WORKER.try_with(|w| *w.borrow_mut() = Some(permit));
        }
        result
    }

    async fn fetch_detached(
        &self,
        key: &Key,
        request: FetchRequest,
    ) -> Result<Fetched, FetchError> {
        let url = catalog_api::redact::redact_url(&request.url).into_owned();
        let timeout = request.timeout;
        let timed_out = || SourceError::Timeout {
            url: url.clone(),
            seconds: timeout.as_secs(),
        };
        let Some(in_flight) = self.claim(key) else {
            return Err(FetchError::StillOpen(timed_out()));
        };
        let permits = self.permits.clone();
        let work = async move {
            let permit = permits.acquire_owned().await?;
            let thread = tokio::task::spawn_blocking(move || {
                let _held = (permit, in_flight);
                git::fetch(&request)
            });
            Ok(thread.await??)
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(FetchError::Git(timed_out())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::git::{Credentials, RefSpec};

    fn request(url: String, cache: &std::path::Path) -> FetchRequest {
        FetchRequest {
            url,
            reference: RefSpec::Branch("main".into()),
            credentials: Credentials::default(),
            timeout: Duration::from_secs(1),
            cache_path: cache.to_path_buf(),
            shallow: true,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_silent_remote_is_cut_at_the_deadline_and_not_fetched_twice_at_once() {
        // Accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("git://{}/r.git", listener.local_addr().unwrap());
        let tmp = tempfile::tempdir().unwrap();
        let slots = FetchSlots::new(4);
        let workers = Arc::new(Semaphore::new(1));
        let key: Key = ("ns".into(), "stuck".into());
        let started = std::time::Instant::now();
        let first = slots
            .fetch(&workers, &key, request(url.clone(), tmp.path()))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "cut at 1s, not left to run"
        );
        let message = first.unwrap_err().to_string();
        assert!(message.contains("timed out after 1s"), "{message}");
        // The abandoned thread still waits on the remote: no second fetch of this source.
        let second = slots.fetch(&workers, &key, request(url, tmp.path())).await;
        assert!(second.unwrap_err().to_string().contains("still open"));
        drop(listener);
    }
}
