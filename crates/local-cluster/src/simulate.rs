//! Simulated workloads, the way kwok makes a cluster look alive: with no nodes and no
//! kubelet, workload controllers still report progress so health checks, sync waves and hooks
//! can be tested end to end.
//!
//! After `delay`, Deployments, StatefulSets, ReplicaSets and DaemonSets report all replicas
//! ready for their current generation; Jobs complete (or fail when annotated
//! `tiphys.io/simulate: fail`; a suspended Job waits until resumed); Pods run and are Ready; PVCs are Bound; LoadBalancer Services
//! get an ingress address. No Pods or ReplicaSets are created.

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
        "jobs" if v["spec"]["suspend"] == true => true,
        "jobs" => status["conditions"].as_array().is_some_and(|c| {
            c.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        }),
        "pods" => status["phase"] == "Running",
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
                let containers: Vec<Value> = v["spec"]["containers"].as_array().into_iter().flatten().map(|c| json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": now}}})).collect();
                let cond = |t: &str| json!({"type": t, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
                v["status"] = json!({"phase": "Running", "podIP": "10.244.0.10", "hostIP": "10.0.0.1", "startTime": now, "qosClass": "BestEffort",
                    "conditions": [cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")], "containerStatuses": containers});
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
