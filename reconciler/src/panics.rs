//! Surviving a panic. A panic on outside input is a bug, but it must not become an outage:
//! [`contained`] keeps one sync's or one verification's panic inside it, and the lock
//! extensions keep a lock the panicking task held usable (with `lock().unwrap()` every later
//! user would panic too, so one bad input would take down every source). The shared maps
//! guarded this way (schedules, claims, caches) are consistent at every statement boundary,
//! so their data is used as is.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::FutureExt as _;

/// Runs `work`; returns the panic's message if it panicked.
pub async fn contained<T>(work: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|panic| panic_message(panic.as_ref()))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

pub trait LockExt<T> {
    /// The guard, whether or not a panicking task held the lock before.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub trait RwLockExt<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_contained_with_its_message() {
        assert_eq!(contained(async { 1 }).await, Ok(1));
        let message = contained(async { panic!("overflow when adding duration to instant") })
            .await
            .unwrap_err();
        assert_eq!(message, "overflow when adding duration to instant");
        let formatted = contained(async { panic!("index {} out of range", 7) })
            .await
            .unwrap_err();
        assert_eq!(formatted, "index 7 out of range");
    }

    #[test]
    fn a_panic_while_locked_does_not_poison_later_users() {
        let shared = std::sync::Arc::new(Mutex::new(1));
        let held = shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = held.lock().unwrap();
            panic!("boom");
        })
        .join();
        assert!(shared.is_poisoned());
        *shared.locked() += 1;
        assert_eq!(*shared.locked(), 2);
    }
}
