//! The sync's writes go before verifications.
//!
//! Both controllers share one API server. A sync that creates 100,000 CatalogImages would
//! otherwise share it with the first verification of every image it creates (a GET, a
//! status write and an Event each): three requests of background work for each one the
//! user is waiting for, and a sync that takes twice as long. So while any sync writes (its
//! apply, prune and report steps, when it has something to apply or prune), a verification
//! waits before it starts, at most [`MAX_WAIT`]: syncs that keep writing slow verification
//! down to a trickle and never stop it. One-shot checks (previews, `caib catalog verify
//! --local`) do not wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The longest a verification waits for the syncs' writes (see the module doc).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// How many syncs are writing; shared by both controllers through [`crate::Context`].
#[derive(Clone)]
pub struct SyncWrites(Arc<watch::Sender<usize>>);

/// One sync's writes, until dropped.
pub struct Writing(SyncWrites);

impl Default for SyncWrites {
    fn default() -> Self {
        SyncWrites(Arc::new(watch::Sender::new(0)))
    }
}

impl SyncWrites {
    /// Marks a sync as writing until the returned guard drops.
    pub fn writing(&self) -> Writing {
        self.0.send_modify(|n| *n += 1);
        Writing(self.clone())
    }

    /// Waits until no sync writes, at most `max`. Returns whether it waited at all.
    pub async fn wait_quiet(&self, max: Duration) -> bool {
        let mut quiet = self.0.subscribe();
        if *quiet.borrow_and_update() == 0 {
            return false;
        }
        let _ = tokio::time::timeout(max, quiet.wait_for(|n| *n == 0)).await;
        true
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Longer than any test waits for: a wait that reaches it is a failure, not a pass.
    const HOUR: Duration = Duration::from_secs(3600);

    async fn within_a_minute<T>(what: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(60), what)
            .await
            .expect("the wait ended")
    }

    #[tokio::test]
    async fn nothing_to_wait_for_without_a_writing_sync() {
        let writes = SyncWrites::default();
        drop(writes.writing());
        assert!(!within_a_minute(writes.wait_quiet(HOUR)).await);
    }

    #[tokio::test]
    async fn a_verification_waits_until_the_last_writing_sync_ends() {
        let writes = SyncWrites::default();
        let (first, second) = (writes.writing(), writes.writing());
        let waiter = tokio::spawn({
            let writes = writes.clone();
            async move { writes.wait_quiet(HOUR).await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "one sync still writes");
        drop(second);
        assert!(within_a_minute(waiter).await.unwrap(), "it waited");
    }

    #[tokio::test]
    async fn syncs_that_keep_writing_delay_a_verification_at_most_max_wait() {
        let writes = SyncWrites::default();
        let _forever = writes.writing();
        let start = Instant::now();
        let max = Duration::from_millis(200);
        assert!(within_a_minute(writes.wait_quiet(max)).await);
        assert!(start.elapsed() >= max, "{:?}", start.elapsed());
    }
}
