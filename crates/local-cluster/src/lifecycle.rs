//! What kube-controller-manager's garbage collector and namespace controller do: honour
//! ownerReferences (background, foreground and orphan deletion), finish deletions whose
//! finalizers are gone, and empty then remove Terminating namespaces.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Cluster;
use crate::api;
use crate::resources::GroupResource;
use crate::store::object_key;

const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

/// Ask the collector to look again soon.
pub fn wake(cluster: &Cluster) {
    cluster.lifecycle.notify_one();
}

/// Run the collector until the cluster is dropped.
pub async fn run(cluster: std::sync::Weak<Cluster>) {
    loop {
        let Some(c) = cluster.upgrade() else { return };
        let notify = c.lifecycle.clone();
        // Several passes: each deletion can unblock the next (namespace → contents → owners).
        for _ in 0..4 {
            if !sweep(&c) {
                break;
            }
        }
        drop(c);
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
    }
}

/// A live object reference from the store.
struct Item {
    gr: GroupResource,
    value: Value,
    rv: u64,
}

fn all_items(cluster: &Cluster) -> Vec<Item> {
    let mut out = Vec::new();
    for gr in cluster.store.resources() {
        let (_, items) = cluster.store.list(&gr, None);
        for s in items {
            // Cheap pre-filter: only objects that can need work are parsed.
            let bytes = &s.json;
            let interesting = contains(bytes, b"\"ownerReferences\"")
                || contains(bytes, b"\"deletionTimestamp\"");
            if !interesting {
                continue;
            }
            if let Ok(value) = s.value() {
                out.push(Item {
                    gr: gr.clone(),
                    value,
                    rv: s.rv,
                });
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn finalizers(v: &Value) -> Vec<String> {
    v["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn uid(v: &Value) -> &str {
    v["metadata"]["uid"].as_str().unwrap_or_default()
}

/// One pass; returns whether anything changed.
fn sweep(cluster: &Arc<Cluster>) -> bool {
    let items = all_items(cluster);
    let mut changed = false;

    // Owners that exist, by uid, with their deletion state.
    let owner_state = |owner_ref: &Value, namespace: &str| -> Option<Value> {
        let rt = cluster.registry.by_kind(
            owner_ref["apiVersion"].as_str()?,
            owner_ref["kind"].as_str()?,
        )?;
        let ns = if rt.namespaced { namespace } else { "" };
        let stored = cluster
            .store
            .get(&rt.group_resource(), ns, owner_ref["name"].as_str()?)?;
        let v = stored.value().ok()?;
        (uid(&v) == owner_ref["uid"].as_str()?).then_some(v)
    };

    for item in &items {
        let (ns, name) = object_key(&item.value);
        let Some(owners) = item.value["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if owners.is_empty() || item.value["metadata"].get("deletionTimestamp").is_some() {
            continue;
        }
        let mut alive = 0;
        let mut orphaned_by = Vec::new();
        let mut delete_for_foreground = false;
        for owner in owners {
            match owner_state(owner, &ns) {
                None => {}
                Some(o) => {
                    let f = finalizers(&o);
                    let deleting = o["metadata"].get("deletionTimestamp").is_some();
                    if deleting && f.iter().any(|x| x == "orphan") {
                        orphaned_by.push(owner["uid"].clone());
                    } else if deleting && f.iter().any(|x| x == "foregroundDeletion") {
                        delete_for_foreground = true;
                    } else {
                        alive += 1;
                    }
                }
            }
        }
        if !orphaned_by.is_empty() {
            let _ = api::update_internal(
                cluster,
                &item.gr,
                &ns,
                &name,
                "kube-controller-manager",
                api::Part::Main,
                |v| {
                    if let Some(Value::Array(refs)) = v.pointer_mut("/metadata/ownerReferences") {
                        refs.retain(|r| !orphaned_by.contains(&r["uid"]));
                    }
                },
            );
            changed = true;
        } else if (alive == 0 || delete_for_foreground)
            && let Some(rt) = cluster.registry.any_version(&item.gr)
        {
            let policy = if delete_for_foreground {
                "Foreground"
            } else {
                "Background"
            };
            let _ = cluster.delete_object(&rt, item.value.clone(), item.rv, policy, false);
            changed = true;
        }
    }

    // Objects being deleted: release the GC finalizers once their condition holds.
    for item in &items {
        if item.value["metadata"].get("deletionTimestamp").is_none() {
            continue;
        }
        let (ns, name) = object_key(&item.value);
        let f = finalizers(&item.value);
        let my_uid = uid(&item.value).to_string();
        let has_dependents = || {
            items.iter().any(|other| {
                other.value["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == json!(my_uid)))
            })
        };
        let release_orphan = f.iter().any(|x| x == "orphan") && !has_dependents();
        let release_foreground = f.iter().any(|x| x == "foregroundDeletion") && !has_dependents();
        if release_orphan || release_foreground {
            let _ = api::update_internal(
                cluster,
                &item.gr,
                &ns,
                &name,
                "kube-controller-manager",
                api::Part::Main,
                |v| {
                    if let Some(Value::Array(list)) = v.pointer_mut("/metadata/finalizers") {
                        list.retain(|x| {
                            !((release_orphan && x == "orphan")
                                || (release_foreground && x == "foregroundDeletion"))
                        });
                    }
                },
            );
            changed = true;
        }
    }

    // Terminating namespaces: delete their contents, then release the namespace.
    for item in items
        .iter()
        .filter(|i| i.gr.resource == "namespaces" && i.gr.group.is_empty())
    {
        if item.value["metadata"].get("deletionTimestamp").is_none() {
            continue;
        }
        let (_, ns_name) = object_key(&item.value);
        let mut remaining = 0;
        for gr in cluster.store.resources() {
            let Some(rt) = cluster.registry.any_version(&gr) else {
                continue;
            };
            if !rt.namespaced {
                continue;
            }
            let (_, contents) = cluster.store.list(&gr, Some(&ns_name));
            for stored in contents {
                remaining += 1;
                if let Ok(v) = stored.value()
                    && v["metadata"].get("deletionTimestamp").is_none()
                {
                    let _ = cluster.delete_object(&rt, v, stored.rv, "Background", false);
                    changed = true;
                }
            }
        }
        if remaining == 0 {
            let spec_finalizers = item.value["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if spec_finalizers {
                let _ = api::update_internal(
                    cluster,
                    &item.gr,
                    "",
                    &ns_name,
                    "kube-controller-manager",
                    api::Part::Main,
                    |v| {
                        v["spec"]["finalizers"] = json!([]);
                    },
                );
                changed = true;
            }
            // With spec and metadata finalizers gone, the namespace itself goes.
            if let Some(stored) = cluster.store.get(&item.gr, "", &ns_name)
                && let Ok(v) = stored.value()
            {
                let spec_empty = v["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
                if spec_empty
                    && finalizers(&v).is_empty()
                    && let Ok(removed) = cluster.store.remove(&item.gr, "", &ns_name, stored.rv)
                {
                    if let Some(rt) = cluster.registry.any_version(&item.gr) {
                        cluster.after_delete(&rt, &removed);
                    }
                    changed = true;
                }
            }
        }
    }
    changed
}
