//! Watch streams: one JSON event per line, from a resourceVersion or from a snapshot, with
//! bookmarks, selectors, `sendInitialEvents` and a server-side timeout.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::Cluster;
use crate::error::{ApiError, ApiResult};
use crate::request::{Query, ResourcePath};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, EventType};
use crate::table;

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(20);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn selective(&self) -> bool {
        !self.labels.is_empty() || !self.fields.is_empty()
    }

    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(&object["metadata"]["labels"]) && self.fields.matches(object)
    }
}

/// Start a watch; events arrive on the returned channel as encoded lines.
pub fn start(
    cluster: Arc<Cluster>,
    p: &ResourcePath,
    query: &Query,
    as_table: bool,
) -> ApiResult<mpsc::Receiver<Bytes>> {
    let rt = p.rt.clone();
    let filter = Filter {
        namespace: p.namespace.clone(),
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?,
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let initial_events = query.flag("sendInitialEvents");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let from: Option<u64> = match query.get("resourceVersion") {
        None | Some("0") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };

    let gr = rt.group_resource();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut encoder = Encoder {
        rt: rt.clone(),
        as_table,
        first: true,
    };
    let mut known: HashSet<(String, String)> = HashSet::new();
    let mut initial: Vec<Bytes> = Vec::new();
    let live;
    let mut backlog: Vec<Arc<Event>> = Vec::new();
    let mut last_rv;

    if from.is_none() || initial_events {
        let (rv, items, receiver) = cluster
            .store
            .watch_with_snapshot(&gr, filter.namespace.as_deref());
        for item in items {
            let Ok(v) = item.value() else { continue };
            if !filter.matches(&v) {
                continue;
            }
            known.insert(key_of(&v));
            initial.push(encoder.line("ADDED", v));
        }
        if initial_events {
            let marker = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {
                "resourceVersion": rv.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"}}});
            initial.push(encoder.raw_line("BOOKMARK", &marker));
        }
        live = receiver;
        last_rv = rv;
    } else {
        let from = from.unwrap_or(0);
        match cluster.store.watch_from(from) {
            Ok(start) => {
                live = start.live;
                backlog = start.backlog;
                last_rv = from;
            }
            Err(e) => {
                // Expired comes in-band as an ERROR event, not as an HTTP error.
                let line = error_line(&e);
                let _ = tx.try_send(line);
                return Ok(rx);
            }
        }
        if filter.selective() {
            let (_, items) = cluster.store.list(&gr, filter.namespace.as_deref());
            for item in items {
                if let Ok(v) = item.value()
                    && filter.matches(&v)
                    && item.rv <= from
                {
                    known.insert(key_of(&v));
                }
            }
        }
    }

    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let mut live = live;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
        ticker.tick().await;
        for event in backlog {
            if let Some(line) = render(&event, &rt, &filter, &mut known, &mut encoder)
                && tx.send(line).await.is_err()
            {
                return;
            }
            last_rv = event.rv;
        }
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let marker = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": last_rv.to_string()}});
                    if tx.send(encoder.raw_line("BOOKMARK", &marker)).await.is_err() {
                        return;
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        if event.rv <= last_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if let Some(line) = render(&event, &rt, &filter, &mut known, &mut encoder)
                            && tx.send(line).await.is_err() {
                                return;
                            }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // The client fell too far behind: make it re-list, as an expired watch would.
                        let e = ApiError::expired(format!("too old resource version: {last_rv}"));
                        let _ = tx.send(error_line(&e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Ok(rx)
}

fn key_of(v: &Value) -> (String, String) {
    crate::store::object_key(v)
}

/// Decide what (if anything) a watcher sees for a store event.
fn render(
    event: &Event,
    rt: &ResourceType,
    filter: &Filter,
    known: &mut HashSet<(String, String)>,
    encoder: &mut Encoder,
) -> Option<Bytes> {
    if event.gr != rt.group_resource() {
        return None;
    }
    if let Some(ns) = &filter.namespace
        && &event.namespace != ns
    {
        return None;
    }
    if !filter.selective() && encoder.plain_passthrough() {
        return Some(encoder.splice(event.kind.as_str(), &event.object));
    }
    let object: Value = serde_json::from_slice(&event.object).ok()?;
    let key = (event.namespace.clone(), event.name.clone());
    let matches = filter.matches(&object);
    let kind = match event.kind {
        EventType::Deleted => {
            if !known.remove(&key) && filter.selective() && !matches {
                return None;
            }
            "DELETED"
        }
        _ if matches => {
            let new_to_watcher = known.insert(key);
            if new_to_watcher || event.kind == EventType::Added {
                "ADDED"
            } else {
                "MODIFIED"
            }
        }
        _ => {
            // It no longer matches the selector: to this watcher it is gone.
            if known.remove(&key) {
                "DELETED"
            } else {
                return None;
            }
        }
    };
    Some(encoder.line(kind, object))
}

fn error_line(e: &ApiError) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.status()})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Encodes events as JSON lines, as objects or as Table rows.
struct Encoder {
    rt: Arc<ResourceType>,
    as_table: bool,
    first: bool,
}

impl Encoder {
    /// Objects can go out as stored bytes when no rewriting is needed.
    fn plain_passthrough(&self) -> bool {
        !self.as_table && self.rt.builtin && self.rt.group != "autoscaling"
    }

    fn splice(&self, kind: &str, object: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(object.len() + 32);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        out.extend_from_slice(object);
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn line(&mut self, kind: &str, mut object: Value) -> Bytes {
        if !self.rt.builtin || self.rt.group == "autoscaling" {
            object["apiVersion"] = json!(self.rt.api_version());
        }
        if self.as_table {
            let t = table::table(&self.rt, &[object], self.first, None);
            self.first = false;
            return self.raw_line(kind, &t);
        }
        self.raw_line(kind, &object)
    }

    fn raw_line(&self, kind: &str, object: &Value) -> Bytes {
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}
