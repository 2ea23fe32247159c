//! Simulated workloads, the way kwok makes a cluster look alive: with no nodes and no
//! kubelet, workload controllers still report progress so health checks, sync waves and hooks
//! can be tested end to end.
//!
//! After `delay`, Deployments, StatefulSets, ReplicaSets and DaemonSets report all replicas
//! ready for their current generation; Jobs complete (or fail when annotated
//! `tiphys.io/simulate: fail`; a suspended Job waits until resumed); Pods run and are Ready
//! (a Job's Pod runs to completion); PVCs are Bound; LoadBalancer Services get an ingress
//! address.
//!
//! What kube-controller-manager creates is created too, owned by what it belongs to: a
//! ReplicaSet per Deployment template (named by the template's hash, older ones scaled to
//! zero, `deployment.kubernetes.io/revision` counting up), Pods for ReplicaSets (by
//! `generateName`), StatefulSets (`name-0`, `name-1`, …), DaemonSets (one, for the one node)
//! and Jobs; scaling down deletes Pods, and a deleted Pod is replaced. Garbage collection
//! removes them with their owner.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::Cluster;
use crate::api;
use crate::clock;
use crate::store::EventType;

/// The annotation that makes a simulated Job fail instead of completing.
pub const SIMULATE_ANNOTATION: &str = "tiphys.io/simulate";

const MANAGER: &str = "kube-controller-manager";

pub async fn run(cluster: Weak<Cluster>, delay: Duration) {
    let Some(c) = cluster.upgrade() else { return };
    let mut events = c.store.subscribe();
    // Objects that existed before we subscribed (restart with --data-dir) get one pass.
    let mut initial = Vec::new();
    for gr in c.store.resources() {
        if is_simulated(&gr.group, &gr.resource) {
            let (_, items) = c.store.list(&gr, None);
            initial.extend(
                items
                    .into_iter()
                    .filter_map(|s| s.value().ok().map(|v| (gr.clone(), v))),
            );
        }
    }
    drop(c);
    for (gr, v) in initial {
        schedule(
            cluster.clone(),
            gr.group.clone(),
            gr.resource.clone(),
            v,
            delay,
        );
    }
    loop {
        match events.recv().await {
            Ok(event) => {
                if event.kind == EventType::Deleted
                    && event.gr.group.is_empty()
                    && event.gr.resource == "pods"
                {
                    // A Pod gone (deleted by hand, evicted): its owner makes another.
                    if let Ok(pod) = serde_json::from_slice::<Value>(&event.object) {
                        replace_pod(cluster.clone(), pod, delay);
                    }
                    continue;
                }
                if event.kind == EventType::Deleted
                    || !is_simulated(&event.gr.group, &event.gr.resource)
                {
                    continue;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&event.object) else {
                    continue;
                };
                schedule(
                    cluster.clone(),
                    event.gr.group.clone(),
                    event.gr.resource.clone(),
                    v,
                    delay,
                );
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
        if cluster.strong_count() == 0 {
            return;
        }
    }
}

fn is_simulated(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        (
            "apps",
            "deployments" | "statefulsets" | "replicasets" | "daemonsets"
        ) | ("batch", "jobs")
            | ("", "pods" | "persistentvolumeclaims" | "services")
    )
}

/// Whether the object's status already reflects what the simulation would write.
fn settled(resource: &str, v: &Value) -> bool {
    let status = &v["status"];
    match resource {
        "deployments" | "statefulsets" | "replicasets" | "daemonsets" => {
            status["observedGeneration"] == v["metadata"]["generation"]
                && status["readyReplicas"].as_i64().unwrap_or(0) == desired(resource, v)
                && (resource != "deployments"
                    || v["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                        .is_string())
        }
        // A suspended Job runs no pods, as in a real cluster: it waits until resumed.
        "jobs" if v["spec"]["suspend"] == true => {
            status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Suspended" && c["status"] == "True")
            })
        }
        "jobs" => status["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        }),
        "pods" => matches!(
            status["phase"].as_str(),
            Some("Running" | "Succeeded" | "Failed")
        ),
        "persistentvolumeclaims" => status["phase"] == "Bound",
        "services" => {
            v["spec"]["type"] != "LoadBalancer" || status["loadBalancer"]["ingress"].is_array()
        }
        _ => true,
    }
}

fn desired(resource: &str, v: &Value) -> i64 {
    if resource == "daemonsets" {
        1
    } else {
        v["spec"]["replicas"].as_i64().unwrap_or(1)
    }
}

fn schedule(cluster: Weak<Cluster>, group: String, resource: String, v: Value, delay: Duration) {
    if settled(&resource, &v) || v["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(c) = cluster.upgrade() else { return };
        progress(&c, &group, &resource, &v);
    });
}

fn progress(cluster: &Arc<Cluster>, group: &str, resource: &str, seen: &Value) {
    let gr = crate::resources::GroupResource {
        group: group.into(),
        resource: resource.into(),
    };
    let ns = seen["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = seen["metadata"]["name"].as_str().unwrap_or_default();
    let now = clock::now_rfc3339();
    if resource == "deployments"
        && !seen["metadata"]["annotations"]["deployment.kubernetes.io/revision"].is_string()
    {
        let _ = api::update_internal(cluster, &gr, ns, name, MANAGER, api::Part::Main, |v| {
            v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!("1");
        });
    }
    own_children(cluster, resource, seen);
    let _ = api::update_internal(cluster, &gr, ns, name, MANAGER, api::Part::Status, |v| {
        let generation = v["metadata"]["generation"].clone();
        match resource {
            "deployments" => {
                let n = desired(resource, v);
                let condition = |t: &str, reason: &str, message: String| json!({"type": t, "status": "True", "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message});
                v["status"] = json!({
                    "observedGeneration": generation, "replicas": n, "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                    "conditions": [
                        condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability.".into()),
                        condition("Progressing", "NewReplicaSetAvailable", format!("ReplicaSet \"{name}\" has successfully progressed.")),
                    ],
                });
            }
            "statefulsets" => {
                let n = desired(resource, v);
                v["status"] = json!({"observedGeneration": generation, "replicas": n, "readyReplicas": n, "currentReplicas": n, "updatedReplicas": n,
                    "availableReplicas": n, "currentRevision": format!("{name}-1"), "updateRevision": format!("{name}-1"), "collisionCount": 0});
            }
            "replicasets" => {
                let n = desired(resource, v);
                v["status"] = json!({"observedGeneration": generation, "replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n});
            }
            "daemonsets" => {
                v["status"] = json!({"observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberAvailable": 1,
                    "numberMisscheduled": 0, "numberReady": 1, "updatedNumberScheduled": 1});
            }
            "jobs" if v["spec"]["suspend"] == true => {
                // What the job controller writes for a Job created suspended.
                v["status"] = json!({"conditions": [{"type": "Suspended", "status": "True", "lastProbeTime": now,
                    "lastTransitionTime": now, "reason": "JobSuspended", "message": "Job suspended"}]});
            }
            "jobs" => {
                let fail = v["metadata"]["annotations"][SIMULATE_ANNOTATION] == "fail";
                v["status"] = if fail {
                    json!({"startTime": now, "failed": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}, "conditions": [
                        {"type": "FailureTarget", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"},
                        {"type": "Failed", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})
                } else {
                    json!({"startTime": now, "completionTime": now, "succeeded": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}, "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                        {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}]})
                };
            }
            "pods" => {
                // A Pod that does not restart (a Job's, a hook's) runs to completion (or fails
                // with the fail annotation); one that restarts keeps running.
                let job = owner_kind(v) == Some("Job")
                    || matches!(
                        v["spec"]["restartPolicy"].as_str(),
                        Some("Never" | "OnFailure")
                    );
                let fail = job && v["metadata"]["annotations"][SIMULATE_ANNOTATION] == "fail";
                let state = if !job {
                    json!({"running": {"startedAt": now}})
                } else if fail {
                    json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}})
                } else {
                    json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
                };
                let containers: Vec<Value> = v["spec"]["containers"].as_array().into_iter().flatten().map(|c| json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": !job, "restartCount": 0, "started": !job,
                    "state": state})).collect();
                let cond = |t: &str, ok: bool| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
                let phase = match (job, fail) {
                    (false, _) => "Running",
                    (true, false) => "Succeeded",
                    (true, true) => "Failed",
                };
                v["status"] = json!({"phase": phase, "podIP": "10.244.0.10", "hostIP": "10.0.0.1", "startTime": now, "qosClass": "BestEffort",
                    "conditions": [cond("Initialized", true), cond("Ready", !job), cond("ContainersReady", !job), cond("PodScheduled", true)],
                    "containerStatuses": containers});
            }
            "persistentvolumeclaims" => {
                let capacity = v["spec"]["resources"]["requests"]["storage"].clone();
                v["status"] = json!({"phase": "Bound", "accessModes": v["spec"]["accessModes"], "capacity": {"storage": capacity}});
            }
            "services" => {
                v["status"] =
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}});
            }
            _ => {}
        }
    });
}

/// The kind of the controller that owns `v`, if any.
fn owner_kind(v: &Value) -> Option<&str> {
    v["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|o| o["controller"] == true)
        .and_then(|o| o["kind"].as_str())
}

fn group_resource(group: &str, resource: &str) -> crate::resources::GroupResource {
    crate::resources::GroupResource {
        group: group.into(),
        resource: resource.into(),
    }
}

/// A controller reference to `owner` (apiVersion, kind, name, uid), as dependents carry it.
fn owner_reference(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The objects of `gr` in `ns` whose controller is the object with `uid`.
fn owned(
    cluster: &Cluster,
    gr: &crate::resources::GroupResource,
    ns: &str,
    uid: &str,
) -> Vec<Value> {
    let (_, items) = cluster.store.list(gr, Some(ns));
    items
        .into_iter()
        .filter_map(|s| s.value().ok())
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"] == uid && r["controller"] == true)
                })
        })
        .collect()
}

/// What kube-controller-manager would create for `v` now.
fn own_children(cluster: &Arc<Cluster>, resource: &str, v: &Value) {
    if v["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    match resource {
        "deployments" => deployment_replica_set(cluster, v),
        "replicasets" => pods_for(cluster, v, "ReplicaSet", desired(resource, v), false),
        "statefulsets" => pods_for(cluster, v, "StatefulSet", desired(resource, v), true),
        "daemonsets" => pods_for(cluster, v, "DaemonSet", 1, false),
        // One Pod per Job run, kept when it has finished; a suspended Job runs none.
        "jobs" if v["spec"]["suspend"] != true => pods_for(cluster, v, "Job", 1, false),
        _ => {}
    }
}

/// The template's hash as kube-controller-manager spells `pod-template-hash`.
fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf29ce484222325;
    for b in template.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// The Deployment's current ReplicaSet (made for its template if none is), at the
/// Deployment's replicas; older ones scaled to zero.
fn deployment_replica_set(cluster: &Arc<Cluster>, deployment: &Value) {
    let ns = deployment["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let Some(uid) = deployment["metadata"]["uid"].as_str() else {
        return;
    };
    let gr = group_resource("apps", "replicasets");
    let template = &deployment["spec"]["template"];
    let hash = template_hash(template);
    let current_name = format!("{name}-{hash}");
    let replicas = desired("deployments", deployment);
    let existing = owned(cluster, &gr, ns, uid);
    let revision_of = |rs: &Value| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    let newest = existing.iter().map(revision_of).max().unwrap_or(0);
    let mut revision = newest.max(1);
    for rs in &existing {
        let rs_name = rs["metadata"]["name"].as_str().unwrap_or_default();
        let wanted = if rs_name == current_name { replicas } else { 0 };
        if rs_name == current_name {
            revision = revision_of(rs).max(1);
        }
        if rs["spec"]["replicas"].as_i64() != Some(wanted) {
            let _ =
                api::update_internal(cluster, &gr, ns, rs_name, MANAGER, api::Part::Main, |v| {
                    v["spec"]["replicas"] = json!(wanted);
                });
        }
    }
    if !existing
        .iter()
        .any(|rs| rs["metadata"]["name"] == current_name.as_str())
    {
        revision = newest + 1;
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        labels["pod-template-hash"] = json!(hash);
        let mut selector = deployment["spec"]["selector"].clone();
        if !selector.is_object() {
            selector = json!({});
        }
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        let mut pod_template = template.clone();
        pod_template["metadata"]["labels"] = labels.clone();
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": current_name,
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/revision": revision.to_string(),
                    "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                    "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string(),
                },
                "ownerReferences": [owner_reference("apps/v1", "Deployment", deployment)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": pod_template},
        });
        if let Err(e) = api::create_internal(cluster, &gr, ns, rs, MANAGER) {
            tracing::debug!(deployment = name, error = %e.message, "ReplicaSet not created");
        }
    }
    let deployments = group_resource("apps", "deployments");
    let revision = revision.to_string();
    if deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        != revision.as_str()
    {
        let _ = api::update_internal(
            cluster,
            &deployments,
            ns,
            name,
            MANAGER,
            api::Part::Main,
            |v| {
                v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = json!(revision);
            },
        );
    }
}

/// `count` Pods from `owner`'s template: created when missing, the extra ones deleted. A
/// StatefulSet's are `name-0`, `name-1`, …; others get a generated suffix.
fn pods_for(cluster: &Arc<Cluster>, owner: &Value, kind: &str, count: i64, ordinal: bool) {
    let ns = owner["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = owner["metadata"]["name"].as_str().unwrap_or_default();
    let Some(uid) = owner["metadata"]["uid"].as_str() else {
        return;
    };
    let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
    let gr = group_resource("", "pods");
    let mut pods = owned(cluster, &gr, ns, uid);
    pods.retain(|p| p["metadata"].get("deletionTimestamp").is_none());
    pods.sort_by(|a, b| {
        a["metadata"]["name"]
            .as_str()
            .cmp(&b["metadata"]["name"].as_str())
    });
    let count = usize::try_from(count.max(0)).unwrap_or(0);
    for extra in pods.iter().skip(count) {
        let pod_name = extra["metadata"]["name"].as_str().unwrap_or_default();
        let _ = api::delete_internal(cluster, &gr, ns, pod_name);
    }
    let template = &owner["spec"]["template"];
    for _ in 0..count.saturating_sub(pods.len()) {
        let mut labels = template["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        let mut meta = json!({
            "namespace": ns,
            "ownerReferences": [owner_reference(api_version, kind, owner)],
        });
        if ordinal {
            // The lowest free ordinal.
            let taken: Vec<&str> = pods
                .iter()
                .filter_map(|p| p["metadata"]["name"].as_str())
                .collect();
            let Some(n) = (0..)
                .map(|n| format!("{name}-{n}"))
                .find(|n| !taken.contains(&n.as_str()))
            else {
                return;
            };
            labels["statefulset.kubernetes.io/pod-name"] = json!(n);
            labels["apps.kubernetes.io/pod-index"] = json!(n.rsplit('-').next().unwrap_or("0"));
            meta["name"] = json!(n);
        } else {
            meta["generateName"] = json!(format!("{name}-"));
        }
        if kind == "Job" {
            labels["job-name"] = json!(name);
            labels["batch.kubernetes.io/job-name"] = json!(name);
            labels["controller-uid"] = json!(uid);
            // The Job's outcome, for the Pod's simulation.
            if owner["metadata"]["annotations"][SIMULATE_ANNOTATION] == "fail" {
                meta["annotations"] = json!({SIMULATE_ANNOTATION: "fail"});
            }
        }
        meta["labels"] = labels;
        let mut spec = template["spec"].clone();
        if !spec.is_object() {
            spec = json!({});
        }
        spec["nodeName"] = json!("tiphys-node");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
        if let Err(e) = api::create_internal(cluster, &gr, ns, pod, MANAGER) {
            tracing::debug!(owner = name, error = %e.message, "Pod not created");
            return;
        }
        if ordinal {
            // Re-read so the next ordinal sees this one.
            pods = owned(cluster, &gr, ns, uid);
        }
    }
}

/// After `delay`, let the owner of a deleted Pod make up for it.
fn replace_pod(cluster: Weak<Cluster>, pod: Value, delay: Duration) {
    let Some(owner) = pod["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .cloned()
    else {
        return;
    };
    let (group, resource) = match owner["kind"].as_str() {
        Some("ReplicaSet") => ("apps", "replicasets"),
        Some("StatefulSet") => ("apps", "statefulsets"),
        Some("DaemonSet") => ("apps", "daemonsets"),
        // A Job's finished Pod is not replaced: the Job has run.
        _ => return,
    };
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = owner["name"].as_str().unwrap_or_default().to_string();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(c) = cluster.upgrade() else { return };
        let gr = group_resource(group, resource);
        let Some(current) = c.store.get(&gr, &ns, &name).and_then(|s| s.value().ok()) else {
            return;
        };
        if current["metadata"]["uid"] == owner["uid"] {
            own_children(&c, resource, &current);
        }
    });
}
