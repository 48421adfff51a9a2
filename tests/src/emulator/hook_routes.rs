//! HTTP routes of the test hooks, under `/emulator/` and without authentication:
//!
//! - `GET /emulator/requests`: request counts, `{"<verb> <resource>": n}`
//! - `DELETE /emulator/requests` or `POST /emulator/requests/reset`: reset the counts
//! - `POST /emulator/faults` (a JSON [`super::Fault`]), `DELETE /emulator/faults`
//! - `POST /emulator/drop-watches`: close every open watch
//! - `POST /emulator/compact`: forget the change history and drop watches (410 on resume)
//! - `PUT|POST /emulator/latency` with `{"millis": N}`: delay every API request

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::error::ApiError;
use super::hooks::Fault;
use super::server::{S, Shared, json_response};

/// The hook routes, merged into the main router.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/emulator/requests", get(requests).delete(reset_requests))
        .route("/emulator/requests/reset", post(reset_requests))
        .route("/emulator/faults", post(add_fault).delete(clear_faults))
        .route("/emulator/drop-watches", post(drop_watches))
        .route("/emulator/compact", post(compact))
        .route("/emulator/latency", post(set_latency).put(set_latency))
}

async fn requests(State(s): S) -> Response {
    json_response(200, &json!(s.hooks.counts()), &[])
}

async fn reset_requests(State(s): S) -> Response {
    s.hooks.reset_counts();
    json_response(200, &json!({}), &[])
}

async fn add_fault(State(s): S, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(f) => {
            s.hooks.add_fault(f);
            json_response(200, &json!({}), &[])
        }
        Err(e) => ApiError::bad_request(format!("invalid fault: {e}")).into_response(),
    }
}

async fn clear_faults(State(s): S) -> Response {
    s.hooks.clear_faults();
    json_response(200, &json!({}), &[])
}

async fn drop_watches(State(s): S) -> Response {
    s.hooks.drop_watches();
    json_response(200, &json!({}), &[])
}

async fn compact(State(s): S) -> Response {
    {
        let mut st = s.lock_store();
        st.compact();
        s.hooks.drop_watches();
    }
    json_response(200, &json!({}), &[])
}

async fn set_latency(State(s): S, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["millis"].as_u64())
    {
        Some(ms) => {
            s.hooks.set_latency(Duration::from_millis(ms));
            json_response(200, &json!({"millis": ms}), &[])
        }
        None => ApiError::bad_request("expected {\"millis\": N}").into_response(),
    }
}
