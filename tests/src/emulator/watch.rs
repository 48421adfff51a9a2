//! Watch: a chunked stream of newline-delimited `{"type": ..., "object": ...}` events.
//!
//! Without a resourceVersion (or "0") the stream starts with ADDED for every current object;
//! with one it replays the history after it, or sends a single ERROR 410 Expired when that
//! version was compacted (kube-rs then relists, as against a real server). Selectors are
//! applied to both sides of a change, so an object that stops matching arrives as DELETED.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::error::{ApiError, ApiResult};
use super::read::Filter;
use super::resources::ResourceDef;
use super::server::Shared;
use super::store::{Change, ChangeKind, Msg, Sent};
use super::table::{self, Include, Output};
use super::write::{Served, present};

/// Parsed watch options.
struct Options {
    since: Option<u64>,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
    output: Output,
    include: Include,
}

fn parse(q: &HashMap<String, String>, output: Output) -> ApiResult<Options> {
    let since = match q.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let send_initial = q.get("sendInitialEvents").map(String::as_str) == Some("true");
    let bookmarks = q.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    Ok(Options {
        since: if send_initial { None } else { since },
        bookmarks,
        initial_events_end: send_initial && bookmarks,
        timeout,
        output,
        include: Include::parse(q.get("includeObject").map(String::as_str)),
    })
}

/// One event line for `stored`. `sent` is the broadcast the change came with, if any: its JSON
/// is built once and shared by every JSON watcher of the same version.
fn event_line(
    def: &ResourceDef,
    opts: &Options,
    kind: &str,
    stored: &Value,
    sent: Option<&Sent>,
) -> Bytes {
    let obj = match opts.output {
        Output::Json => {
            return match sent {
                Some(sent) => json_line(kind, &shared_json(def, sent)),
                None => json_line(kind, &Served { def, stored }.to_vec()),
            };
        }
        Output::Table(av) => {
            let obj = present(def, stored);
            table::table(
                def,
                &[&obj],
                opts.include,
                av,
                json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")}),
            )
        }
        Output::Metadata(av) => table::partial(&present(def, stored), av),
    };
    json_line(kind, &obj.to_string().into_bytes())
}

/// `{"object":<object>,"type":<kind>}` and a newline: what `json!({"type": kind, "object":
/// obj})` serialises to (keys in order), without copying the object into a new value.
fn json_line(kind: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(b"{\"object\":");
    line.extend_from_slice(object);
    line.extend_from_slice(b",\"type\":");
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut line, kind);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// The JSON of a broadcast change's object as `def` serves it, built by the first watcher
/// that needs it; a watcher of another version of the resource builds its own.
fn shared_json<'a>(def: &ResourceDef, sent: &'a Sent) -> Cow<'a, [u8]> {
    let api_version = def.api_version();
    let stored = &sent.change.object;
    let (built_for, json) = sent
        .json
        .get_or_init(|| (api_version.clone(), Served { def, stored }.to_vec()));
    if *built_for == api_version {
        Cow::Borrowed(json)
    } else {
        Cow::Owned(Served { def, stored }.to_vec())
    }
}

fn bookmark_line(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta});
    json_line("BOOKMARK", &obj.to_string().into_bytes())
}

/// The event a watcher with this filter sees for a change, if any.
fn translate<'a>(
    def: &ResourceDef,
    filter: &Filter,
    ch: &'a Change,
) -> Option<(&'static str, &'a Value)> {
    if ch.key != def.storage {
        return None;
    }
    let now = filter.matches(def, &ch.object);
    let before = ch.prev.as_ref().is_some_and(|p| filter.matches(def, p));
    match ch.kind {
        ChangeKind::Added => now.then_some(("ADDED", &*ch.object)),
        ChangeKind::Deleted => (before || now).then_some(("DELETED", &*ch.object)),
        ChangeKind::Modified => match (before, now) {
            (true, true) => Some(("MODIFIED", &*ch.object)),
            (false, true) => Some(("ADDED", &*ch.object)),
            (true, false) => Some(("DELETED", &*ch.object)),
            (false, false) => None,
        },
    }
}

/// Starts a watch and returns the streaming response.
pub fn start(
    shared: Arc<Shared>,
    def: Arc<ResourceDef>,
    filter: Filter,
    q: &HashMap<String, String>,
    output: Output,
) -> ApiResult<Response> {
    let opts = parse(q, output)?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut initial: Vec<Bytes> = Vec::new();
    let (sub, start_rv) = {
        let st = shared.lock_store();
        let sub = st.subscribe();
        match opts.since {
            None => {
                for o in st.objects(&def.storage).values() {
                    if filter.matches(&def, o) {
                        initial.push(event_line(&def, &opts, "ADDED", o, None));
                    }
                }
                if opts.initial_events_end {
                    initial.push(bookmark_line(&def, st.rv(), true));
                }
            }
            Some(rv) => match st.changes_since(rv) {
                Some(changes) => {
                    for ch in &changes {
                        if let Some((kind, obj)) = translate(&def, &filter, ch) {
                            initial.push(event_line(&def, &opts, kind, obj, None));
                        }
                    }
                }
                None => {
                    let status =
                        ApiError::expired(format!("too old resource version: {rv} ({})", st.rv()))
                            .status_body();
                    let line = format!("{}\n", json!({"type": "ERROR", "object": status}));
                    initial.push(Bytes::from(line));
                    drop(sub);
                    return Ok(stream_response(initial, None));
                }
            },
        }
        (sub, st.rv())
    };
    let mut epoch = shared.hooks.watch_epoch();
    epoch.mark_unchanged();
    tokio::spawn(pump(tx, initial, sub, epoch, def, filter, opts, start_rv));
    Ok(stream_response(Vec::new(), Some(rx)))
}

#[allow(clippy::too_many_arguments)]
async fn pump(
    tx: mpsc::Sender<Bytes>,
    initial: Vec<Bytes>,
    mut sub: broadcast::Receiver<Msg>,
    mut epoch: tokio::sync::watch::Receiver<u64>,
    def: Arc<ResourceDef>,
    filter: Filter,
    opts: Options,
    start_rv: u64,
) {
    for line in initial {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let deadline = tokio::time::sleep(opts.timeout);
    tokio::pin!(deadline);
    loop {
        let line = tokio::select! {
            biased;
            _ = epoch.changed() => return,
            _ = &mut deadline => return,
            _ = tx.closed() => return,
            msg = sub.recv() => match msg {
                Ok(Msg::Change(sent)) if sent.change.rv > start_rv => {
                    translate(&def, &filter, &sent.change)
                        .map(|(kind, obj)| event_line(&def, &opts, kind, obj, Some(&sent)))
                }
                Ok(Msg::Tick(rv)) if opts.bookmarks => Some(bookmark_line(&def, rv, false)),
                Ok(_) => None,
                // A watcher too slow for the broadcast buffer is disconnected; it resumes from
                // its last resourceVersion like after any dropped connection.
                Err(_) => return,
            },
        };
        if let Some(line) = line
            && tx.send(line).await.is_err()
        {
            return;
        }
    }
}

fn stream_response(prefix: Vec<Bytes>, rx: Option<mpsc::Receiver<Bytes>>) -> Response {
    let head = futures::stream::iter(prefix.into_iter().map(Ok::<_, Infallible>));
    let tail = futures::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        let b = rx.recv().await?;
        Some((Ok::<_, Infallible>(b), Some(rx)))
    });
    use futures::StreamExt;
    let body = Body::from_stream(head.chain(tail));
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::emulator::resources::builtin_defs;
    use crate::emulator::store::ChangeKind;

    #[test]
    fn lines_are_the_serialised_event_and_share_one_json_per_version() {
        let defs = builtin_defs();
        let def = |group: &str| {
            defs.iter()
                .find(|d| d.plural == "events" && d.group == group)
        };
        let (core, v1) = (def("").expect("core"), def("events.k8s.io").expect("v1"));
        let stored = json!({"apiVersion": "v1", "kind": "Event", "message": "m \"q\"",
            "metadata": {"name": "e", "namespace": "n", "resourceVersion": "7"}});
        let change = Change {
            rv: 7,
            key: core.storage.clone(),
            kind: ChangeKind::Added,
            object: Arc::new(stored.clone()),
            prev: None,
        };
        let sent = Sent {
            change: Arc::new(change),
            json: OnceLock::new(),
        };
        let opts = parse(&HashMap::new(), Output::Json).expect("options");
        for (d, kind) in [
            (core, "ADDED"),
            (v1, "MODIFIED"),
            (core, "DELETED"),
            (v1, "ADDED"),
        ] {
            let want = format!("{}\n", json!({"type": kind, "object": present(d, &stored)}));
            let shared = event_line(d, &opts, kind, &stored, Some(&sent));
            let own = event_line(d, &opts, kind, &stored, None);
            assert_eq!((&shared[..], &own[..]), (want.as_bytes(), want.as_bytes()));
        }
        let built_for = sent.json.get().map(|(av, _)| av.as_str());
        assert_eq!(built_for, Some("v1"), "built once, by the first watcher");
        let bookmark = bookmark_line(core, 9, true);
        let obj = json!({"kind": "Event", "apiVersion": "v1", "metadata": {"resourceVersion": "9",
            "annotations": {"k8s.io/initial-events-end": "true"}}});
        let want = format!("{}\n", json!({"type": "BOOKMARK", "object": obj}));
        assert_eq!(&bookmark[..], want.as_bytes());
    }
}
