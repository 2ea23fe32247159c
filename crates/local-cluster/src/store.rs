//! Object storage: every object as compact JSON bytes, one cluster-wide resourceVersion
//! counter, and a bounded event history that watches resume from.
//!
//! ```text
//!   write ──► Inner (lock) ──► buckets[group/resource][(namespace, name)] = Stored
//!                         └──► history (bounded) + broadcast ──► watch streams
//! ```
//! Every write happens under one lock, so the order of resourceVersions, the order of the
//! history and the order of broadcast events are the same order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::persist::Persistence;
use crate::resources::GroupResource;

/// How many events the history keeps by default for watches that resume from a resourceVersion.
pub const DEFAULT_HISTORY: usize = 50_000;
const BROADCAST_CAPACITY: usize = 16_384;

/// One stored object.
#[derive(Debug, Clone)]
pub struct Stored {
    pub rv: u64,
    pub json: Bytes,
}

impl Stored {
    pub fn value(&self) -> ApiResult<Value> {
        serde_json::from_slice(&self.json)
            .map_err(|e| ApiError::internal(format!("corrupt stored object: {e}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub gr: GroupResource,
    pub namespace: String,
    pub name: String,
    pub object: Bytes,
}

/// `(namespace, name)`; the empty namespace for cluster-scoped objects.
pub type ObjectKey = (String, String);

type Bucket = BTreeMap<ObjectKey, Stored>;

struct Inner {
    rv: u64,
    buckets: HashMap<GroupResource, Bucket>,
    history: VecDeque<Arc<Event>>,
    /// The newest resourceVersion no longer covered by `history`.
    history_floor: u64,
}

/// The object store shared by every handler.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
    persistence: Option<Persistence>,
    history_limit: usize,
}

/// Result of starting a watch: events already in the history, then the live feed.
pub struct WatchStart {
    pub backlog: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl Store {
    pub fn new(persistence: Option<Persistence>, history_limit: usize) -> ApiResult<Self> {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let mut inner = Inner {
            rv: 0,
            buckets: HashMap::new(),
            history: VecDeque::new(),
            history_floor: 0,
        };
        if let Some(p) = &persistence {
            let (rv, objects) = p.load().map_err(|e| ApiError::internal(e.to_string()))?;
            inner.rv = rv;
            for (gr, namespace, name, json) in objects {
                let rv = serde_json::from_slice::<Value>(&json)
                    .ok()
                    .and_then(|v| {
                        v["metadata"]["resourceVersion"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                    })
                    .unwrap_or(rv);
                inner.buckets.entry(gr).or_default().insert(
                    (namespace, name),
                    Stored {
                        rv,
                        json: Bytes::from(json),
                    },
                );
            }
            inner.history_floor = inner.rv;
        }
        Ok(Store {
            inner: Mutex::new(inner),
            events,
            persistence,
            history_limit: history_limit.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock would be a bug in this module; the data is still
        // consistent (every mutation is a single insert/remove), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Stored> {
        let inner = self.lock();
        inner
            .buckets
            .get(gr)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// A consistent snapshot of one resource (optionally one namespace) and the
    /// resourceVersion it is current at.
    pub fn list(&self, gr: &GroupResource, namespace: Option<&str>) -> (u64, Vec<Stored>) {
        let (rv, items, _) = self.list_after(gr, namespace, None, usize::MAX);
        (rv, items.into_iter().map(|(_, s)| s).collect())
    }

    /// Like [`Store::list`], with each object's `(namespace, name)`, starting after `after`
    /// (the key a paged list continues from), at most `take` objects, and how many more
    /// there are.
    pub fn list_after(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
        after: Option<&(String, String)>,
        take: usize,
    ) -> (u64, Vec<(ObjectKey, Stored)>, usize) {
        use std::ops::Bound;
        let inner = self.lock();
        let Some(bucket) = inner.buckets.get(gr) else {
            return (inner.rv, Vec::new(), 0);
        };
        let lower = match (after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let mut range = bucket
            .range((lower, Bound::Unbounded))
            .take_while(|((n, _), _)| namespace.is_none_or(|ns| n == ns));
        let items = range
            .by_ref()
            .take(take)
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        let more = range.count();
        (inner.rv, items, more)
    }

    /// Every resource that currently holds objects.
    pub fn resources(&self) -> Vec<GroupResource> {
        self.lock()
            .buckets
            .iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(gr, _)| gr.clone())
            .collect()
    }

    /// Write an object. `expect` is the resourceVersion the caller read (None to create);
    /// the stored copy gets the next resourceVersion, which is returned in the object.
    pub fn put(
        &self,
        gr: &GroupResource,
        mut object: Value,
        expect: Option<u64>,
    ) -> ApiResult<Value> {
        let (namespace, name) = object_key(&object);
        let mut inner = self.lock();
        let bucket_key = (namespace.clone(), name.clone());
        let existing = inner
            .buckets
            .get(gr)
            .and_then(|b| b.get(&bucket_key))
            .map(|s| s.rv);
        match (expect, existing) {
            (None, Some(_)) => return Err(ApiError::already_exists(&gr.to_string(), &name)),
            (Some(_), None) => return Err(ApiError::not_found(&gr.to_string(), &name)),
            (Some(want), Some(have)) if want != have => {
                return Err(ApiError::conflict(&gr.to_string(), &name));
            }
            _ => {}
        }
        let rv = inner.rv + 1;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let json = Bytes::from(
            serde_json::to_vec(&object).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        if let Some(p) = &self.persistence {
            p.put(gr, &namespace, &name, &json, rv)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        inner.rv = rv;
        inner.buckets.entry(gr.clone()).or_default().insert(
            bucket_key,
            Stored {
                rv,
                json: json.clone(),
            },
        );
        let kind = if existing.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.publish(
            &mut inner,
            Event {
                rv,
                kind,
                gr: gr.clone(),
                namespace,
                name,
                object: json,
            },
        );
        Ok(object)
    }

    /// Remove an object if it is still at resourceVersion `expect`. The DELETED event carries
    /// the object's last state at a fresh resourceVersion, as on a real server.
    pub fn remove(
        &self,
        gr: &GroupResource,
        namespace: &str,
        name: &str,
        expect: u64,
    ) -> ApiResult<Value> {
        let mut inner = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(current) = inner.buckets.get(gr).and_then(|b| b.get(&key)).cloned() else {
            return Err(ApiError::not_found(&gr.to_string(), name));
        };
        if current.rv != expect {
            return Err(ApiError::conflict(&gr.to_string(), name));
        }
        let rv = inner.rv + 1;
        let mut object = current.value()?;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let json = Bytes::from(
            serde_json::to_vec(&object).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        if let Some(p) = &self.persistence {
            p.delete(gr, namespace, name, rv)
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        inner.rv = rv;
        if let Some(bucket) = inner.buckets.get_mut(gr) {
            bucket.remove(&key);
        }
        self.publish(
            &mut inner,
            Event {
                rv,
                kind: EventType::Deleted,
                gr: gr.clone(),
                namespace: namespace.into(),
                name: name.into(),
                object: json,
            },
        );
        Ok(object)
    }

    /// Drop every object of a resource (its CRD is gone), announcing each deletion.
    pub fn drop_resource(&self, gr: &GroupResource) {
        let (_, items) = self.list(gr, None);
        for item in items {
            if let Ok(v) = item.value() {
                let (ns, name) = object_key(&v);
                let _ = self.remove(gr, &ns, &name, item.rv);
            }
        }
    }

    fn publish(&self, inner: &mut Inner, event: Event) {
        let event = Arc::new(event);
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.history_floor = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Start a watch after `from_rv`: the history since then plus a live feed, taken under
    /// the store lock so nothing falls between the two.
    pub fn watch_from(&self, from_rv: u64) -> ApiResult<WatchStart> {
        let inner = self.lock();
        if from_rv < inner.history_floor {
            return Err(ApiError::expired(format!(
                "too old resource version: {from_rv} ({})",
                inner.history_floor + 1
            )));
        }
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.rv > from_rv)
            .cloned()
            .collect();
        Ok(WatchStart {
            backlog,
            live: self.events.subscribe(),
        })
    }

    /// A live feed only, with the snapshot of current objects it starts from.
    pub fn watch_with_snapshot(
        &self,
        gr: &GroupResource,
        namespace: Option<&str>,
    ) -> (u64, Vec<Stored>, broadcast::Receiver<Arc<Event>>) {
        let inner = self.lock();
        let live = self.events.subscribe();
        let items = match inner.buckets.get(gr) {
            None => Vec::new(),
            Some(bucket) => bucket
                .iter()
                .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                .map(|(_, s)| s.clone())
                .collect(),
        };
        (inner.rv, items, live)
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Counts for the benchmark: objects and bytes of JSON held.
    pub fn footprint(&self) -> (usize, usize) {
        let inner = self.lock();
        inner
            .buckets
            .values()
            .flat_map(|b| b.values())
            .fold((0, 0), |(n, bytes), s| (n + 1, bytes + s.json.len()))
    }
}

/// `(namespace, name)` of an object.
pub fn object_key(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}
