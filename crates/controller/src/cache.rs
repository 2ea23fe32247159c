//! The live-state cache of one cluster: a watch per kind the apps manage, keeping only the
//! objects an app tracks (by the tracking annotation or label), stripped of what neither diff
//! nor health needs. Every change to a tracked object wakes its app, which is how drift is
//! seen within a second instead of at the next poll.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tiphys_sync::ObjectKey;
use tiphys_sync::annotations::TRACKING_ID;
use tokio::sync::watch;

use crate::discovery::Resolved;

/// How objects are attributed to apps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tracking {
    /// `argocd.argoproj.io/tracking-id` (Argo CD 3.x default).
    #[default]
    Annotation,
    /// A label holding the app name (`app.kubernetes.io/instance` by default).
    Label(String),
    /// Both: the label for selection, the annotation for identity.
    AnnotationAndLabel(String),
}

impl Tracking {
    /// Parse argocd-cm's `application.resourceTrackingMethod`.
    pub fn from_setting(method: &str, label: Option<&str>) -> Tracking {
        let label = label.unwrap_or("app.kubernetes.io/instance").to_string();
        match method {
            "label" => Tracking::Label(label),
            "annotation+label" => Tracking::AnnotationAndLabel(label),
            _ => Tracking::Annotation,
        }
    }

    /// The app `obj` belongs to, if any. An annotation copied onto a different object (its
    /// id names another object) does not count.
    pub fn app_of(&self, obj: &Value) -> Option<String> {
        let annotation = || {
            let id = obj
                .pointer("/metadata/annotations")?
                .get(TRACKING_ID)?
                .as_str()?;
            let (app, key) = tiphys_sync::key::parse_tracking_id(id)?;
            let mut own = ObjectKey::of(obj);
            // Cluster-scoped objects carry no namespace; ids may still name one.
            if own.namespace.is_empty() {
                own.namespace = key.namespace.clone();
            }
            (own == key).then_some(app)
        };
        match self {
            Tracking::Annotation | Tracking::AnnotationAndLabel(_) => annotation(),
            Tracking::Label(label) => obj
                .pointer("/metadata/labels")?
                .get(label)?
                .as_str()
                .map(str::to_string),
        }
    }

    /// Mark `obj` as belonging to `app`.
    pub fn stamp(&self, obj: &mut Value, app: &str, key: &ObjectKey) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let mut put = |field: &str, name: &str, value: String| {
            let map = meta
                .entry(field)
                .or_insert_with(|| Value::Object(Default::default()));
            if !map.is_object() {
                *map = Value::Object(Default::default());
            }
            if let Some(map) = map.as_object_mut() {
                map.insert(name.to_string(), Value::String(value));
            }
        };
        match self {
            Tracking::Annotation => put("annotations", TRACKING_ID, key.tracking_id(app)),
            Tracking::Label(label) => put("labels", label, app.to_string()),
            Tracking::AnnotationAndLabel(label) => {
                put("annotations", TRACKING_ID, key.tracking_id(app));
                put("labels", label, app.to_string());
            }
        }
    }
}

/// Remove what neither diff nor health reads: managed fields and client annotations.
fn strip(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    obj
}

/// A cached object as compact JSON: a parsed `serde_json::Value` costs several times its
/// text, and most cached objects are read only when their app reconciles.
struct Compact(Box<str>);

impl Compact {
    fn new(obj: &Value) -> Compact {
        Compact(obj.to_string().into_boxed_str())
    }

    fn value(&self) -> Arc<Value> {
        Arc::new(serde_json::from_str(&self.0).unwrap_or(Value::Null))
    }
}

#[derive(Default)]
struct Objects {
    by_key: HashMap<ObjectKey, (String, Compact)>,
    /// (app, key) for every tracked object, so an app's objects are one range: a set per app
    /// would take a hash table's smallest size for each of thousands of one-object apps.
    by_app: BTreeSet<(String, ObjectKey)>,
    /// Objects of the watched kinds that no app tracks, by kind, as hashes of their keys:
    /// enough to know an object does *not* exist without asking the API server, for a few
    /// bytes each.
    untracked: HashMap<(String, String), HashSet<u64>>,
    /// What this controller's last server-side apply of an object produced: the hash of
    /// what it applied and the resourceVersion the apply returned.
    applied: HashMap<ObjectKey, (u64, String)>,
}

fn key_hash(key: &ObjectKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn kind_of(key: &ObjectKey) -> (String, String) {
    (key.group.clone(), key.kind.clone())
}

impl Objects {
    fn insert(&mut self, key: ObjectKey, app: String, obj: Compact) -> Option<String> {
        if let Some((owner, kept)) = self.by_key.get_mut(&key)
            && *owner == app
        {
            *kept = obj;
            return Some(app);
        }
        let previous = self.remove(&key);
        self.by_app.insert((app.clone(), key.clone()));
        self.by_key.insert(key, (app, obj));
        previous
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<String> {
        let (app, _) = self.by_key.remove(key)?;
        let entry = (app, key.clone());
        self.by_app.remove(&entry);
        Some(entry.0)
    }

    /// The keys `app` tracks.
    fn keys_of<'a>(&'a self, app: &str) -> impl Iterator<Item = &'a ObjectKey> + 'a {
        let app = app.to_string();
        self.by_app
            .range((app.clone(), ObjectKey::default())..)
            .take_while(move |(owner, _)| *owner == app)
            .map(|(_, key)| key)
    }
}

/// Per-kind watch status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindState {
    Listing,
    Ready,
    Failed(String),
}

/// The cache of one cluster.
pub struct LiveCache {
    client: kube::Client,
    tracking: Tracking,
    objects: RwLock<Objects>,
    kinds: Mutex<HashMap<(String, String), watch::Receiver<KindState>>>,
    wake: tokio::sync::mpsc::UnboundedSender<String>,
}

impl LiveCache {
    pub fn new(
        client: kube::Client,
        tracking: Tracking,
        wake: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Arc<LiveCache> {
        Arc::new(LiveCache {
            client,
            tracking,
            objects: RwLock::new(Objects::default()),
            kinds: Mutex::new(HashMap::new()),
            wake,
        })
    }

    pub fn tracking(&self) -> &Tracking {
        &self.tracking
    }

    /// Start watching `resolved`'s kind if not yet, and wait until its initial list is in.
    pub async fn ensure(self: &Arc<Self>, resolved: &Resolved) -> Result<(), String> {
        let gk = (
            resolved.resource.group.clone(),
            resolved.resource.kind.clone(),
        );
        let mut rx = {
            let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
            match kinds.get(&gk) {
                Some(rx) if !matches!(*rx.borrow(), KindState::Failed(_)) => rx.clone(),
                _ => {
                    let (tx, rx) = watch::channel(KindState::Listing);
                    kinds.insert(gk.clone(), rx.clone());
                    let cache = Arc::downgrade(self);
                    let resource = resolved.resource.clone();
                    tokio::spawn(run_watch(cache, resource, tx));
                    rx
                }
            }
        };
        let state = rx
            .wait_for(|s| *s != KindState::Listing)
            .await
            .map(|s| s.clone())
            .unwrap_or(KindState::Failed("watch ended".into()));
        match state {
            KindState::Failed(e) => Err(format!(
                "watching {}/{}: {e}",
                resolved.resource.api_version, resolved.resource.kind
            )),
            _ => Ok(()),
        }
    }

    /// Every cached object `app` tracks.
    pub fn objects_of(&self, app: &str) -> Vec<(ObjectKey, Arc<Value>)> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects
            .keys_of(app)
            .filter_map(|k| objects.by_key.get(k).map(|(_, o)| (k.clone(), o.value())))
            .collect()
    }

    /// The cached object at `key` with its app.
    pub fn get(&self, key: &ObjectKey) -> Option<(String, Arc<Value>)> {
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects
            .by_key
            .get(key)
            .map(|(app, o)| (app.clone(), o.value()))
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.objects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an object of a watched kind may exist at `key`: false only when its kind's
    /// watch has listed it and neither an app nor anything else has an object there.
    pub fn may_exist(&self, key: &ObjectKey) -> bool {
        if !self.is_ready(key) {
            return true;
        }
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        objects.by_key.contains_key(key)
            || objects
                .untracked
                .get(&kind_of(key))
                .is_some_and(|set| set.contains(&key_hash(key)))
    }

    /// The resourceVersion of the object at `key` as far as the watch knows: `Some(None)`
    /// when it does not exist, `None` when the cache cannot tell (kind not listed, or an
    /// object no app tracks).
    pub fn version_of(&self, key: &ObjectKey) -> Option<Option<String>> {
        if !self.is_ready(key) {
            return None;
        }
        let objects = self.objects.read().unwrap_or_else(|p| p.into_inner());
        if let Some((_, obj)) = objects.by_key.get(key) {
            return obj
                .value()
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(|rv| Some(rv.to_string()));
        }
        let untracked = objects
            .untracked
            .get(&kind_of(key))
            .is_some_and(|set| set.contains(&key_hash(key)));
        (!untracked).then_some(None)
    }

    /// Remember that a server-side apply of content `hash` to `key` produced `version`.
    pub fn note_applied(&self, key: &ObjectKey, hash: u64, version: String) {
        self.objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .applied
            .insert(key.clone(), (hash, version));
    }

    /// Whether the object at `key`, at `version`, is what applying content `hash` produced.
    /// A record that answers yes is taken (the app's memo keeps the verdict from then on);
    /// one that does not stays, since the watch may not have delivered that version yet.
    pub fn take_applied(&self, key: &ObjectKey, hash: u64, version: &str) -> bool {
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        let matches = objects
            .applied
            .get(key)
            .is_some_and(|(h, v)| *h == hash && v == version);
        if matches {
            objects.applied.remove(key);
            // A cold start records thousands at once; the table should not stay that size.
            if objects.applied.capacity() > 64
                && objects.applied.len() < objects.applied.capacity() / 4
            {
                objects.applied.shrink_to_fit();
            }
        }
        matches
    }

    fn is_ready(&self, key: &ObjectKey) -> bool {
        let kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        kinds
            .get(&(key.group.clone(), key.kind.clone()))
            .is_some_and(|rx| *rx.borrow() == KindState::Ready)
    }

    fn apply(&self, obj: Value) {
        let key = ObjectKey::of(&obj);
        let app = self.tracking.app_of(&obj);
        let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
        let set = objects.untracked.entry(kind_of(&key)).or_default();
        if app.is_some() {
            set.remove(&key_hash(&key));
        } else {
            set.insert(key_hash(&key));
        }
        let previous = match app {
            Some(app) => {
                let previous = objects.insert(key, app.clone(), Compact::new(&strip(obj)));
                let _ = self.wake.send(app);
                previous
            }
            None => objects.remove(&key),
        };
        if let Some(previous) = previous {
            let _ = self.wake.send(previous);
        }
    }

    fn delete(&self, obj: &Value) {
        let key = ObjectKey::of(obj);
        let removed = {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            if let Some(set) = objects.untracked.get_mut(&kind_of(&key)) {
                set.remove(&key_hash(&key));
            }
            objects.applied.remove(&key);
            objects.remove(&key)
        };
        if let Some(app) = removed {
            let _ = self.wake.send(app);
        }
    }

    /// Replace every object of (group, kind) after a (re)list: `listed` are the tracked
    /// objects with their apps, `untracked` the hashes of the listed objects no app tracks.
    fn replace_kind(
        &self,
        group: &str,
        kind: &str,
        listed: Vec<(ObjectKey, String, Compact)>,
        untracked: HashSet<u64>,
    ) {
        let mut woken = HashSet::new();
        {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            objects
                .untracked
                .insert((group.to_string(), kind.to_string()), untracked);
            let stale: Vec<ObjectKey> = objects
                .by_key
                .keys()
                .filter(|k| k.group == group && k.kind == kind)
                .cloned()
                .collect();
            for key in stale {
                if let Some(app) = objects.remove(&key) {
                    woken.insert(app);
                }
            }
            for (key, app, compact) in listed {
                objects.insert(key, app.clone(), compact);
                woken.insert(app);
            }
        }
        for app in woken {
            let _ = self.wake.send(app);
        }
    }
}

async fn run_watch(
    cache: std::sync::Weak<LiveCache>,
    resource: kube::discovery::ApiResource,
    state: watch::Sender<KindState>,
) {
    let Some(client) = cache.upgrade().map(|c| c.client.clone()) else {
        return;
    };
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    // Backoff between retries: while the API server is away a watch would otherwise retry in
    // a tight loop, holding a runtime thread.
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // A relist's tracked objects, kept compact until the list is complete: as parsed values,
    // a restart's list of thousands of objects was a peak of tens of megabytes that the
    // allocator kept.
    let mut buffer: Vec<(ObjectKey, String, Compact)> = Vec::new();
    let mut untracked: HashSet<u64> = HashSet::new();
    while let Some(event) = stream.next().await {
        let Some(cache) = cache.upgrade() else {
            return;
        };
        let to_value = |o: DynamicObject| {
            let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
            if let Some(map) = v.as_object_mut() {
                map.insert("apiVersion".into(), resource.api_version.clone().into());
                map.insert("kind".into(), resource.kind.clone().into());
            }
            v
        };
        match event {
            Ok(watcher::Event::Init) => {
                buffer.clear();
                untracked.clear();
            }
            Ok(watcher::Event::InitApply(o)) => {
                let v = to_value(o);
                let key = ObjectKey::of(&v);
                match cache.tracking.app_of(&v) {
                    Some(app) => buffer.push((key, app, Compact::new(&strip(v)))),
                    None => {
                        untracked.insert(key_hash(&key));
                    }
                }
            }
            Ok(watcher::Event::InitDone) => {
                cache.replace_kind(
                    &resource.group,
                    &resource.kind,
                    std::mem::take(&mut buffer),
                    std::mem::take(&mut untracked),
                );
                state.send_replace(KindState::Ready);
            }
            Ok(watcher::Event::Apply(o)) => cache.apply(to_value(o)),
            Ok(watcher::Event::Delete(o)) => cache.delete(&to_value(o)),
            Err(e) => {
                tracing::warn!(kind = %resource.kind, group = %resource.group, error = %e, "watch error");
                if *state.borrow() == KindState::Listing {
                    // Forbidden or gone kinds fail fast; the watcher would retry forever.
                    state.send_replace(KindState::Failed(e.to_string()));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tracking_ids_must_name_their_object() {
        let tracking = Tracking::Annotation;
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}});
        let key = ObjectKey::of(&obj);
        tracking.stamp(&mut obj, "shop", &key);
        assert_eq!(tracking.app_of(&obj), Some("shop".into()));
        // Copied to another object (kubectl get -o yaml | edit name | apply): not tracked.
        obj["metadata"]["name"] = json!("copy");
        assert_eq!(tracking.app_of(&obj), None);
        let label = Tracking::from_setting("label", None);
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let key = ObjectKey::of(&obj);
        label.stamp(&mut obj, "shop", &key);
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/instance"],
            "shop"
        );
        assert_eq!(label.app_of(&obj), Some("shop".into()));
    }
}
