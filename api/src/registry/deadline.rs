//! One deadline for a whole operation (resolve, manifests, index children, config, token
//! requests together). The per-request timeout alone lets a registry that trickles one byte per
//! second hold a caller for `requests × timeout`; a deadline over the whole bounds it once.

use std::future::Future;
use std::time::Duration;

use super::error::RegistryError;

/// Runs `work` for at most `budget`. When the budget runs out, the work is dropped (its
/// connections closed) and the answer is a [`RegistryError::Transient`] naming `what` and the
/// deadline, so callers retry later as for any unavailable registry.
pub async fn with_deadline<T>(
    registry: &str,
    what: &str,
    budget: Duration,
    work: impl Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout(budget, work).await {
        Ok(result) => result,
        Err(_) => Err(deadline_exceeded(registry, what, budget)),
    }
}

/// The error of an operation that did not finish within `budget`.
pub fn deadline_exceeded(registry: &str, what: &str, budget: Duration) -> RegistryError {
    RegistryError::Transient {
        registry: registry.to_string(),
        detail: format!(
            "{what} did not finish within its deadline of {} (all requests together); the registry is too slow or not answering",
            human(budget)
        ),
        retry_after: None,
    }
}

/// `60s`, `1.5s`, `250ms`: the budget as an operator wrote it.
fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_message_names_the_budget() {
        let e = deadline_exceeded("r:5000", "verification", Duration::from_secs(60));
        assert!(e.is_transient());
        let text = e.to_string();
        assert!(
            text.contains("verification did not finish within its deadline of 60s"),
            "{text}"
        );
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn work_that_never_finishes_ends_at_the_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let never = std::future::pending::<Result<(), RegistryError>>();
        let e = rt
            .block_on(with_deadline(
                "r",
                "check",
                Duration::from_millis(20),
                never,
            ))
            .unwrap_err();
        assert!(e.to_string().contains("deadline of 20ms"), "{e}");
        let quick = async { Ok::<_, RegistryError>(7) };
        let v = rt.block_on(with_deadline("r", "check", Duration::from_secs(5), quick));
        assert_eq!(v, Ok(7));
    }
}
