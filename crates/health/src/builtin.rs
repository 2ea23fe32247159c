//! Built-in health checks, by group and kind.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{
    self, Degraded, Healthy, Progressing, Suspended, Unknown,
};

use crate::Health;

/// The built-in health of `live`, or None when `group`/`kind` has no check.
pub fn builtin(group: &str, kind: &str, live: &Value) -> Option<Health> {
    let health = match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(live),
        ("apps", "StatefulSet") => statefulset(live),
        ("apps" | "extensions", "DaemonSet") => daemonset(live),
        ("apps" | "extensions", "ReplicaSet") => replicaset(live),
        ("", "Pod") => pod(live),
        ("batch", "Job") => job(live),
        ("", "Service") => service(live),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(live),
        ("", "PersistentVolumeClaim") => pvc(live),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(live),
        ("apiregistration.k8s.io", "APIService") => apiservice(live),
        ("argoproj.io", "Application") => application(live),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(live),
        _ => return None,
    };
    Some(health)
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The condition of `kind` in `status.conditions`, if any.
fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_is(v: &Value, kind: &str, status: &str) -> bool {
    condition(v, kind).is_some_and(|c| c.get("status").and_then(Value::as_str) == Some(status))
}

fn condition_message(v: &Value, kind: &str) -> String {
    condition(v, kind)
        .and_then(|c| c.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The workload controller has not yet seen the latest spec.
fn generation_pending(v: &Value) -> bool {
    let generation = int(v, "/metadata/generation");
    let observed = int(v, "/status/observedGeneration");
    generation > 0 && observed < generation
}

/// `spec.replicas`, defaulting to 1 as the API server does.
fn spec_replicas(v: &Value) -> i64 {
    v.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn deployment(v: &Value) -> Health {
    if v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "Deployment is paused");
    }
    if generation_pending(v) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    if condition(v, "Progressing").is_some_and(|c| {
        c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    }) {
        let name = text(v, "/metadata/name");
        return Health::new(
            Degraded,
            format!("Deployment {name:?} exceeded its progress deadline"),
        );
    }
    let replicas = spec_replicas(v);
    let updated = int(v, "/status/updatedReplicas");
    let total = int(v, "/status/replicas");
    let available = int(v, "/status/availableReplicas");
    if updated < replicas {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated..."
            ),
        );
    }
    if total > updated {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas are pending termination...",
                total - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas are available..."
            ),
        );
    }
    Health::healthy()
}

fn statefulset(v: &Value) -> Health {
    if generation_pending(v) {
        return Health::new(
            Progressing,
            "Waiting for statefulset spec update to be observed...",
        );
    }
    let replicas = spec_replicas(v);
    let ready = int(v, "/status/readyReplicas");
    if ready < replicas {
        return Health::new(
            Progressing,
            format!("Waiting for {} pods to be ready...", replicas - ready),
        );
    }
    if text(v, "/spec/updateStrategy/type") == "OnDelete" {
        return Health::new(
            Healthy,
            "statefulset has OnDelete update strategy: rollout status is not tracked",
        );
    }
    let partition = int(v, "/spec/updateStrategy/rollingUpdate/partition");
    let updated = int(v, "/status/updatedReplicas");
    if partition > 0 {
        if updated < replicas - partition {
            return Health::new(
                Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...",
                    replicas - partition
                ),
            );
        }
        return Health::new(
            Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    let current = text(v, "/status/currentRevision");
    let update = text(v, "/status/updateRevision");
    if !update.is_empty() && current != update {
        return Health::new(
            Progressing,
            format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update}..."
            ),
        );
    }
    Health::healthy()
}

fn daemonset(v: &Value) -> Health {
    if generation_pending(v) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        );
    }
    if text(v, "/spec/updateStrategy/type") == "OnDelete" {
        return Health::new(
            Healthy,
            "daemonset has OnDelete update strategy: rollout status is not tracked",
        );
    }
    let desired = int(v, "/status/desiredNumberScheduled");
    let updated = int(v, "/status/updatedNumberScheduled");
    let available = int(v, "/status/numberAvailable");
    if updated < desired {
        return Health::new(
            Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        );
    }
    if available < desired {
        return Health::new(
            Progressing,
            format!(
                "Waiting for daemon set rollout to finish: {available} of {desired} updated pods are available..."
            ),
        );
    }
    Health::healthy()
}

fn replicaset(v: &Value) -> Health {
    if generation_pending(v) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if condition_is(v, "ReplicaFailure", "True") {
        return Health::new(Degraded, condition_message(v, "ReplicaFailure"));
    }
    let replicas = spec_replicas(v);
    let available = int(v, "/status/availableReplicas");
    if available < replicas {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} out of {replicas} replicas are available..."
            ),
        );
    }
    Health::healthy()
}

fn pod(v: &Value) -> Health {
    // A container stuck in a failing loop is Degraded whatever the phase says.
    for statuses in ["/status/initContainerStatuses", "/status/containerStatuses"] {
        for status in v
            .pointer(statuses)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let reason = text(status, "/state/waiting/reason");
            if matches!(
                reason,
                "CrashLoopBackOff"
                    | "ErrImagePull"
                    | "ImagePullBackOff"
                    | "CreateContainerConfigError"
                    | "InvalidImageName"
                    | "CreateContainerError"
            ) {
                let message = text(status, "/state/waiting/message");
                return Health::new(Degraded, if message.is_empty() { reason } else { message });
            }
        }
    }
    let message = text(v, "/status/message").to_string();
    match text(v, "/status/phase") {
        "Pending" => Health::new(Progressing, message),
        "Succeeded" => Health::new(Healthy, message),
        "Failed" => Health::new(
            Degraded,
            if message.is_empty() {
                "Pod failed".to_string()
            } else {
                message
            },
        ),
        "Running" => {
            let restart = text(v, "/spec/restartPolicy");
            if (restart.is_empty() || restart == "Always") && !condition_is(v, "Ready", "True") {
                Health::new(Progressing, message)
            } else {
                Health::new(Healthy, message)
            }
        }
        _ => Health::new(Unknown, message),
    }
}

fn job(v: &Value) -> Health {
    if condition_is(v, "Failed", "True") {
        let message = condition_message(v, "Failed");
        return Health::new(
            Degraded,
            if message.is_empty() {
                "Job failed".to_string()
            } else {
                message
            },
        );
    }
    if condition_is(v, "Complete", "True") {
        let message = condition_message(v, "Complete");
        return Health::new(Healthy, message);
    }
    if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "Job is suspended");
    }
    Health::new(Progressing, "Job is running")
}

fn has_load_balancer_address(v: &Value) -> bool {
    v.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn service(v: &Value) -> Health {
    if text(v, "/spec/type") == "LoadBalancer" && !has_load_balancer_address(v) {
        return Health::new(Progressing, "Waiting for the load balancer address");
    }
    Health::healthy()
}

fn ingress(v: &Value) -> Health {
    if has_load_balancer_address(v) {
        Health::healthy()
    } else {
        Health::new(Progressing, "Waiting for the ingress address")
    }
}

fn pvc(v: &Value) -> Health {
    match text(v, "/status/phase") {
        "Bound" => Health::healthy(),
        "Lost" => Health::new(Degraded, "The claim lost its volume"),
        "Pending" => Health::new(Progressing, "Waiting for the claim to be bound"),
        _ => Health::new(Progressing, ""),
    }
}

fn hpa(v: &Value) -> Health {
    const FAILURES: &[&str] = &[
        "FailedGetObjectMetric",
        "FailedGetPodsMetric",
        "FailedGetResourceMetric",
        "FailedGetExternalMetric",
        "FailedGetContainerResourceMetric",
        "InvalidSelector",
        "FailedRescale",
        "FailedUpdateStatus",
    ];
    let conditions = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in conditions {
        let reason = text(c, "/reason");
        if text(c, "/status") == "False" && FAILURES.contains(&reason) {
            return Health::new(Degraded, text(c, "/message"));
        }
    }
    if conditions.is_empty() && v.pointer("/status/currentReplicas").is_none() {
        return Health::new(Progressing, "Waiting to scale");
    }
    Health::healthy()
}

fn apiservice(v: &Value) -> Health {
    match condition(v, "Available") {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => Health::healthy(),
        Some(c) => Health::new(
            Progressing,
            c.get("message").and_then(Value::as_str).unwrap_or_default(),
        ),
        None => Health::new(Progressing, "Waiting for the APIService to be available"),
    }
}

/// A CRD is usable once Established (so sync waves wait for it before its resources).
fn crd(v: &Value) -> Health {
    if condition_is(v, "NamesAccepted", "False") {
        return Health::new(Degraded, condition_message(v, "NamesAccepted"));
    }
    if condition_is(v, "Established", "True") {
        Health::healthy()
    } else {
        Health::new(Progressing, "Waiting for the CRD to be established")
    }
}

/// A child Application's own health (app of apps).
fn application(v: &Value) -> Health {
    let status: HealthStatusCode = v
        .pointer("/status/health/status")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or(Unknown);
    Health::new(status, text(v, "/status/health/message"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::assess;
    use tiphys_model::application::HealthStatusCode::Missing;

    fn code(v: Value) -> HealthStatusCode {
        assess(&v).map(|h| h.status).unwrap_or(Unknown)
    }

    #[test]
    fn deployment_rollout_states() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": 1}});
        assert_eq!(code(d.clone()), Progressing);
        d["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2});
        assert_eq!(code(d.clone()), Progressing);
        d["status"]["availableReplicas"] = json!(3);
        assert_eq!(code(d.clone()), Healthy);
        d["spec"]["paused"] = json!(true);
        assert_eq!(code(d.clone()), Suspended);
        d["spec"]["paused"] = json!(false);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(code(d), Degraded);
    }

    #[test]
    fn job_and_pod() {
        let job = |conditions: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "status": {"conditions": conditions}});
        assert_eq!(code(job(json!([]))), Progressing);
        assert_eq!(
            code(job(json!([{"type": "Complete", "status": "True"}]))),
            Healthy
        );
        assert_eq!(
            code(job(
                json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}])
            )),
            Degraded
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(code(pod), Degraded);
    }

    #[test]
    fn kinds_without_checks_have_no_health() {
        assert!(
            assess(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
                .is_none()
        );
        let deleting = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(code(deleting), Progressing);
    }

    #[test]
    fn services_ingresses_and_claims() {
        let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(code(lb.clone()), Progressing);
        let mut ready = lb;
        ready["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
        assert_eq!(code(ready), Healthy);
        assert_eq!(
            code(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}})
            ),
            Healthy
        );
        assert_eq!(
            code(
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}, "status": {"phase": "Lost"}})
            ),
            Degraded
        );
    }

    #[test]
    fn app_of_apps_and_aggregation() {
        let child = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a"}, "status": {"health": {"status": "Degraded"}}});
        assert_eq!(code(child), Degraded);
        assert_eq!(
            crate::aggregate(&[Healthy, Progressing, Suspended]),
            Progressing
        );
        assert_eq!(crate::aggregate(&[Healthy, Degraded, Missing]), Degraded);
        assert_eq!(crate::aggregate(&[]), Healthy);
    }
}
