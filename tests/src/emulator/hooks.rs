//! Test hooks: request counters, injected failures, added latency, and dropping watches.
//!
//! Suites use them to assert behaviour a real cluster cannot easily show: "the CLI made zero
//! writes", "the reconciler retried after a 429", "the watcher resumed after its connection
//! dropped".

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Verbs that change state (as counted by [`Hooks::writes`]).
pub const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// A failure to inject into the next matching requests.
///
/// Build with [`Fault::path`] or [`Fault::resource`], then refine:
/// `Fault::resource("catalogimages").verb("patch").times(2).status(429).retry_after(1)`.
/// Over HTTP, `POST /emulator/faults` takes the same fields as JSON (camelCase).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// Matches requests whose path starts with this (e.g. `/apis/automotive.sdv.cloud.redhat.com`).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Matches requests on this resource (plural, `catalogimages` or `catalogimages/status`).
    #[serde(default)]
    pub resource: Option<String>,
    /// Restricts to one verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...).
    #[serde(default)]
    pub verb: Option<String>,
    /// How many matching requests fail (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// HTTP status to answer (default 500).
    #[serde(default = "five_hundred")]
    pub status: u16,
    /// `Retry-After` seconds (sent with 429 and 503 answers).
    #[serde(default)]
    pub retry_after_seconds: Option<u32>,
    /// Serve the request, then hold its answer this many milliseconds (a slow API server),
    /// instead of failing it.
    #[serde(default)]
    pub answer_after_ms: Option<u64>,
}

/// What a matching [`Fault`] does to a request.
#[derive(Debug)]
pub enum Injected {
    /// Answer with this error instead of serving the request.
    Fail(ApiError),
    /// Serve the request and hold the answer this long.
    Hold(Duration),
}

fn one() -> u32 {
    1
}

fn five_hundred() -> u16 {
    500
}

impl Fault {
    fn base() -> Self {
        Fault {
            path_prefix: None,
            resource: None,
            verb: None,
            count: 1,
            status: 500,
            retry_after_seconds: None,
            answer_after_ms: None,
        }
    }

    /// Fail requests whose URL path starts with `prefix`.
    pub fn path(prefix: impl Into<String>) -> Self {
        Fault {
            path_prefix: Some(prefix.into()),
            ..Self::base()
        }
    }

    /// Fail requests on a resource (`catalogimages`, `catalogimages/status`, `leases`, ...).
    pub fn resource(resource: impl Into<String>) -> Self {
        Fault {
            resource: Some(resource.into()),
            ..Self::base()
        }
    }

    /// Only requests with this verb.
    pub fn verb(mut self, verb: impl Into<String>) -> Self {
        self.verb = Some(verb.into());
        self
    }

    /// Fail the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = n;
        self
    }

    /// Answer with this HTTP status (500, 503, 429, ...).
    pub fn status(mut self, code: u16) -> Self {
        self.status = code;
        self
    }

    /// Serve the request but answer only after `delay`.
    pub fn answer_after(mut self, delay: Duration) -> Self {
        self.answer_after_ms = Some(delay.as_millis() as u64);
        self
    }

    /// Send `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_seconds = Some(secs);
        self
    }

    fn matches(&self, path: &str, verb: &str, resource: &str) -> bool {
        self.path_prefix
            .as_deref()
            .is_none_or(|p| path.starts_with(p))
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.verb.as_deref().is_none_or(|v| v == verb)
    }

    /// The Status error this fault answers with.
    pub fn error(&self) -> ApiError {
        let (reason, msg) = match self.status {
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
            409 => ("Conflict", "injected conflict"),
            404 => ("NotFound", "injected not found"),
            403 => ("Forbidden", "injected forbidden"),
            401 => ("Unauthorized", "Unauthorized"),
            _ => (
                "InternalError",
                "an error on the server (\"injected fault\") has prevented the request from succeeding",
            ),
        };
        let mut e = ApiError::new(self.status, reason, msg);
        e.retry_after = self.retry_after_seconds;
        e
    }
}

/// Shared hook state of one emulator.
pub struct Hooks {
    counts: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Vec<Fault>>,
    latency: Mutex<Duration>,
    epoch: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            counts: Mutex::default(),
            faults: Mutex::default(),
            latency: Mutex::default(),
            epoch: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Hooks {
    /// Counts a request under `"<verb> <resource>"`.
    pub fn count(&self, verb: &str, resource: &str) {
        *lock(&self.counts)
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    pub fn reset_counts(&self) {
        lock(&self.counts).clear();
    }

    /// Total of create/update/patch/delete/deletecollection requests.
    pub fn writes(&self) -> u64 {
        lock(&self.counts)
            .iter()
            .filter(|(k, _)| WRITE_VERBS.iter().any(|v| k.split(' ').next() == Some(v)))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn add_fault(&self, f: Fault) {
        if f.count > 0 {
            lock(&self.faults).push(f);
        }
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Consumes one use of the first fault matching this request, if any.
    pub fn take_fault(&self, path: &str, verb: &str, resource: &str) -> Option<Injected> {
        let mut faults = lock(&self.faults);
        let i = faults
            .iter()
            .position(|f| f.matches(path, verb, resource))?;
        let injected = match faults[i].answer_after_ms {
            Some(ms) => Injected::Hold(Duration::from_millis(ms)),
            None => Injected::Fail(faults[i].error()),
        };
        faults[i].count -= 1;
        if faults[i].count == 0 {
            faults.remove(i);
        }
        Some(injected)
    }

    pub fn set_latency(&self, d: Duration) {
        *lock(&self.latency) = d;
    }

    pub fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    /// Ends every open watch (clients see their stream close and must resume).
    pub fn drop_watches(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }

    /// A receiver that changes when watches are dropped.
    pub fn watch_epoch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.epoch.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_count_down_and_match() {
        let h = Hooks::default();
        h.add_fault(
            Fault::resource("catalogimages")
                .verb("patch")
                .times(2)
                .status(429)
                .retry_after(1),
        );
        assert!(h.take_fault("/apis/x", "get", "catalogimages").is_none());
        let Some(Injected::Fail(e)) = h.take_fault("/apis/x", "patch", "catalogimages") else {
            panic!("the first patch fails");
        };
        assert_eq!(
            (e.code, e.reason, e.retry_after),
            (429, "TooManyRequests", Some(1))
        );
        assert!(h.take_fault("/apis/x", "patch", "catalogimages").is_some());
        assert!(h.take_fault("/apis/x", "patch", "catalogimages").is_none());
        h.add_fault(Fault::path("/api/v1"));
        assert_eq!(
            h.take_fault("/api/v1/namespaces", "list", "namespaces")
                .map(|e| match e {
                    Injected::Fail(e) => e.code,
                    Injected::Hold(_) => 0,
                }),
            Some(500)
        );
        h.add_fault(Fault::resource("leases").answer_after(Duration::from_secs(2)));
        assert!(matches!(
            h.take_fault("/apis/x", "update", "leases"),
            Some(Injected::Hold(d)) if d == Duration::from_secs(2)
        ));
        let parsed: Fault =
            serde_json::from_str(r#"{"resource": "leases", "status": 503}"#).expect("json");
        assert_eq!(parsed, Fault::resource("leases").status(503));
    }

    #[test]
    fn counters() {
        let h = Hooks::default();
        h.count("list", "catalogimages");
        h.count("list", "catalogimages");
        h.count("patch", "catalogimages/status");
        assert_eq!(h.counts().get("list catalogimages"), Some(&2));
        assert_eq!(h.writes(), 1);
        h.reset_counts();
        assert!(h.counts().is_empty());
    }
}
