//! The resource tree, as Argo CD draws it: the application's managed resources and, below
//! them, the objects they own in the destination — ReplicaSets and Pods under a Deployment,
//! Pods and ControllerRevisions under a StatefulSet, Jobs under a CronJob, EndpointSlices
//! under a Service — found by their `ownerReferences`, with health and a few facts per node.
//!
//! The server keeps no cache of the destination: the owned objects are listed when a tree is
//! asked for, in the namespaces the app's resources live in, and only of the kinds that hang
//! below workloads and Services.

use std::collections::BTreeSet;

use kube::api::{DynamicObject, GroupVersionKind, ListParams};
use serde_json::{Value, json};
use tiphys_model::Application;

use crate::state::State;

/// The kinds that can be owned by something an app manages, and are worth showing.
const OWNED_KINDS: &[(&str, &str, &str)] = &[
    ("apps", "v1", "ReplicaSet"),
    ("", "v1", "Pod"),
    ("batch", "v1", "Job"),
    ("apps", "v1", "ControllerRevision"),
    ("discovery.k8s.io", "v1", "EndpointSlice"),
];

/// At most this many namespaces are searched per tree (an app spread wider shows its managed
/// resources only below that).
const MAX_NAMESPACES: usize = 32;
/// At most this many objects of one kind per namespace.
const LIST_LIMIT: u32 = 5_000;

/// (group, kind, namespace, name): how owners are referred to.
type Ref = (String, String, String, String);

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The tree of `app`: its managed resources from its status, then what they own.
pub async fn tree(state: &State, app: &Application) -> Value {
    let status = app.status.clone().unwrap_or_default();
    let mut nodes: Vec<Value> = status
        .resources
        .iter()
        .map(|r| {
            let mut node = json!({
                "group": r.group, "version": r.version, "kind": r.kind,
                "namespace": r.namespace, "name": r.name, "parentRefs": [],
            });
            if let Some(h) = &r.health {
                node["health"] = json!({"status": h.status, "message": h.message});
            }
            node
        })
        .collect();
    let mut known: BTreeSet<Ref> = status
        .resources
        .iter()
        .map(|r| {
            (
                r.group.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
            )
        })
        .collect();
    let namespaces: BTreeSet<String> = status
        .resources
        .iter()
        .filter(|r| !r.namespace.is_empty())
        .map(|r| r.namespace.clone())
        .take(MAX_NAMESPACES)
        .collect();
    let candidates = owned_candidates(state, app, &namespaces).await;
    let custom = tiphys_health::CustomHealth::from_config(&state.config(crate::state::ARGOCD_CM));
    // Owners before what they own, whatever the listing order: repeat until nothing is added.
    let mut remaining = candidates;
    loop {
        let before = remaining.len();
        let mut unplaced = Vec::new();
        for object in remaining {
            let namespace = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let parents: Vec<Value> = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|owner| {
                    let group = group_of(owner["apiVersion"].as_str()?).to_string();
                    let kind = owner["kind"].as_str()?.to_string();
                    let name = owner["name"].as_str()?.to_string();
                    let key = (group.clone(), kind.clone(), namespace.clone(), name.clone());
                    known.contains(&key).then(|| {
                        json!({"group": group, "kind": kind, "namespace": namespace,
                               "name": name, "uid": owner["uid"]})
                    })
                })
                .collect();
            if parents.is_empty() {
                unplaced.push(object);
                continue;
            }
            let node = child_node(&object, parents, &custom);
            known.insert((
                node["group"].as_str().unwrap_or_default().to_string(),
                node["kind"].as_str().unwrap_or_default().to_string(),
                namespace,
                node["name"].as_str().unwrap_or_default().to_string(),
            ));
            nodes.push(node);
        }
        if unplaced.len() == before || unplaced.is_empty() {
            break;
        }
        remaining = unplaced;
    }
    json!({"nodes": nodes, "orphanedNodes": [], "hosts": []})
}

/// Every object of the owned kinds in `namespaces` of the app's destination. A destination
/// that cannot be reached, or a kind it does not serve, contributes nothing.
async fn owned_candidates(
    state: &State,
    app: &Application,
    namespaces: &BTreeSet<String>,
) -> Vec<Value> {
    if namespaces.is_empty() {
        return Vec::new();
    }
    let client = match state.destination_client(&app.spec.destination).await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e.message, "resource tree without owned objects");
            return Vec::new();
        }
    };
    let mut apis = Vec::new();
    for (group, version, kind) in OWNED_KINDS {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Ok((resource, _)) = kube::discovery::pinned_kind(&client, &gvk).await {
            apis.push(resource);
        }
    }
    let pairs: Vec<(&String, &kube::discovery::ApiResource)> = namespaces
        .iter()
        .flat_map(|ns| apis.iter().map(move |resource| (ns, resource)))
        .collect();
    let lists = pairs.into_iter().map(|(ns, resource)| {
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), ns, resource);
        async move {
            match api.list(&ListParams::default().limit(LIST_LIMIT)).await {
                Ok(list) => list.items,
                Err(e) => {
                    tracing::debug!(kind = %resource.kind, namespace = %ns, error = %e, "not listed");
                    Vec::new()
                }
            }
        }
    });
    futures::future::join_all(lists)
        .await
        .into_iter()
        .flatten()
        .filter(|o| {
            o.metadata
                .owner_references
                .as_ref()
                .is_some_and(|r| !r.is_empty())
        })
        .filter_map(|mut o| {
            o.metadata.managed_fields = None;
            serde_json::to_value(o).ok()
        })
        .collect()
}

/// A node for an owned object: identity, parents, health, and what Argo CD's UI shows of it.
fn child_node(object: &Value, parents: Vec<Value>, custom: &tiphys_health::CustomHealth) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let meta = &object["metadata"];
    let mut node = json!({
        "group": group,
        "version": version,
        "kind": object["kind"],
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
        "createdAt": meta["creationTimestamp"],
        "parentRefs": parents,
    });
    if let Some(h) = tiphys_health::assess_with(object, custom) {
        node["health"] = json!({"status": h.status, "message": h.message});
    }
    let (info, images) = facts(object);
    if !info.is_empty() {
        node["info"] = Value::Array(info);
    }
    if !images.is_empty() {
        node["images"] = json!(images);
    }
    node
}

/// Argo CD's `info` entries and the images of an owned object.
fn facts(object: &Value) -> (Vec<Value>, Vec<String>) {
    let entry = |name: &str, value: String| json!({"name": name, "value": value});
    match object["kind"].as_str().unwrap_or_default() {
        "Pod" => {
            let statuses = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let containers = object
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: i64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            // A waiting or terminated container's reason says more than the phase.
            let reason = statuses
                .iter()
                .find_map(|s| {
                    s.pointer("/state/waiting/reason")
                        .or_else(|| s.pointer("/state/terminated/reason"))
                        .and_then(Value::as_str)
                })
                .or_else(|| object.pointer("/status/reason").and_then(Value::as_str))
                .or_else(|| object.pointer("/status/phase").and_then(Value::as_str))
                .unwrap_or("Unknown")
                .to_string();
            let images = containers
                .iter()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect();
            let mut info = vec![
                entry("Status Reason", reason),
                entry("Containers", format!("{ready}/{}", containers.len())),
            ];
            if restarts > 0 {
                info.push(entry("Restart Count", restarts.to_string()));
            }
            (info, images)
        }
        "ReplicaSet" => {
            let revision = object
                .pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                .and_then(Value::as_str);
            let info = revision
                .map(|r| vec![entry("Revision", format!("Rev:{r}"))])
                .unwrap_or_default();
            (info, Vec::new())
        }
        _ => (Vec::new(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_say_why_they_wait_how_many_containers_are_ready_and_what_they_run() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {"containers": [{"name": "a", "image": "nginx:1.27"}, {"name": "b", "image": "envoy:1"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}});
        let (info, images) = facts(&pod);
        assert_eq!(
            info[0],
            json!({"name": "Status Reason", "value": "ImagePullBackOff"})
        );
        assert_eq!(info[1], json!({"name": "Containers", "value": "1/2"}));
        assert_eq!(info[2], json!({"name": "Restart Count", "value": "3"}));
        assert_eq!(images, ["nginx:1.27", "envoy:1"]);
        let rs = json!({"kind": "ReplicaSet", "metadata": {"annotations": {"deployment.kubernetes.io/revision": "4"}}});
        assert_eq!(
            facts(&rs).0,
            [json!({"name": "Revision", "value": "Rev:4"})]
        );
    }
}
