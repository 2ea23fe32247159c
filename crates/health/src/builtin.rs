//! Built-in health checks, by group and kind.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{
    self, Degraded, Healthy, Progressing, Suspended, Unknown,
};

use crate::{Health, int, text};

/// The built-in health of `live`, or None when `group`/`kind` has no check.
pub fn builtin(group: &str, kind: &str, live: &Value) -> Option<Health> {
    let health = match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(live),
        ("apps", "StatefulSet") => statefulset(live),
        ("apps" | "extensions", "DaemonSet") => daemonset(live),
        ("apps" | "extensions", "ReplicaSet") => replicaset(live),
        ("", "Pod") => pod(live),
        ("batch", "Job") => job(live),
        ("batch", "CronJob") => cron_job(live),
        ("", "Service") => service(live),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(live),
        ("", "PersistentVolumeClaim") => pvc(live),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(live),
        ("apiregistration.k8s.io", "APIService") => apiservice(live),
        ("argoproj.io", "Application") => application(live),
        ("argoproj.io", "Workflow") => workflow(live),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(live),
        _ => return None,
    };
    Some(health)
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

/// A Pod, by its restart policy as Argo CD judges it. Pods that restart (`Always`, the
/// default) are Degraded while a container waits on an error (`Err…`, `…Error`, `…BackOff`) or
/// when not ready after a container terminated, Progressing while not ready, Healthy when
/// ready. Pods that run to an end (`Never`, `OnFailure` — hooks, mostly) are Progressing until
/// they succeed: a hook Pod is not done while it runs, nor failed while its image is pulled.
fn pod(v: &Value) -> Health {
    let restarts = matches!(text(v, "/spec/restartPolicy"), "" | "Always");
    let containers: Vec<&Value> = v
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if restarts {
        let waiting: Vec<&str> = containers
            .iter()
            .filter(|c| {
                let reason = text(c, "/state/waiting/reason");
                reason.starts_with("Err")
                    || reason.ends_with("Error")
                    || reason.ends_with("BackOff")
            })
            .map(|c| text(c, "/state/waiting/message"))
            .collect();
        if !waiting.is_empty() {
            return Health::new(Degraded, waiting.join(", "));
        }
    }
    let message = text(v, "/status/message").to_string();
    match text(v, "/status/phase") {
        "Pending" => Health::new(Progressing, message),
        "Succeeded" => Health::new(Healthy, message),
        "Failed" => {
            if !message.is_empty() {
                return Health::new(Degraded, message);
            }
            let init = v
                .pointer("/status/initContainerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let why = init
                .chain(containers.iter().copied())
                .find_map(failure_message)
                .unwrap_or_default();
            Health::new(Degraded, why)
        }
        // A Pod that does not restart is a hook or a Job's, done only when it ends — unless
        // an operator owns its life and asks (by annotation) to be judged like any other.
        "Running" if !restarts && !judged_as_always(v) => Health::new(Progressing, message),
        "Running" => {
            if condition_is(v, "Ready", "True") {
                Health::new(Healthy, message)
            } else if containers.iter().any(|c| {
                c.pointer("/lastState/terminated")
                    .is_some_and(|t| !t.is_null())
            }) {
                Health::new(Degraded, message)
            } else {
                Health::new(Progressing, message)
            }
        }
        _ => Health::new(Unknown, message),
    }
}

/// `argocd.argoproj.io/ignore-restart-policy: "true"`: a running Pod with restart policy
/// Never or OnFailure that is not a hook (KubeVirt's launchers, Flink's task managers) gets
/// its health from readiness like a Pod that restarts.
fn judged_as_always(v: &Value) -> bool {
    text(
        v,
        "/metadata/annotations/argocd.argoproj.io~1ignore-restart-policy",
    ) == "true"
}

/// Why a container of a failed Pod failed: its message, OOMKilled, or a non-zero exit code.
fn failure_message(container: &Value) -> Option<String> {
    let terminated = container.pointer("/state/terminated")?;
    let message = text(terminated, "/message");
    if !message.is_empty() {
        return Some(message.to_string());
    }
    if text(terminated, "/reason") == "OOMKilled" {
        return Some("OOMKilled".to_string());
    }
    let code = terminated["exitCode"].as_i64().unwrap_or(0);
    (code != 0).then(|| {
        format!(
            "container \"{}\" failed with exit code {code}",
            text(container, "/name")
        )
    })
}

/// A Job by its conditions, as the job controller writes them: Failed, else Complete, else
/// Suspended (a suspended Job's `Suspended` condition; `spec.suspend` alone, before the
/// controller saw it, is still Progressing, as in Argo CD), else running.
fn job(v: &Value) -> Health {
    if condition_is(v, "Failed", "True") {
        let message = condition_message(v, "Failed");
        return Health::new(Degraded, crate::message_or(message, "Job failed"));
    }
    if condition_is(v, "Complete", "True") {
        let message = condition_message(v, "Complete");
        return Health::new(Healthy, message);
    }
    if condition_is(v, "Suspended", "True") {
        let message = condition_message(v, "Suspended");
        return Health::new(Suspended, crate::message_or(message, "Job suspended"));
    }
    Health::new(Progressing, "Job is running")
}

/// A CronJob, as Argo CD has judged it since 3.3: suspended is Suspended; a job running
/// Progressing; never scheduled Healthy (nothing has failed); scheduled with no success since
/// the last schedule — the last job failed — Degraded; else Healthy.
fn cron_job(v: &Value) -> Health {
    if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return Health::new(Suspended, "CronJob is suspended");
    }
    // No status (a real API server writes an empty one) is a CronJob never scheduled yet.
    if v.pointer("/status/active")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Health::new(Progressing, "CronJob has active jobs");
    }
    let time = |pointer: &str| {
        text(v, pointer)
            .parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
    };
    let Some(scheduled) = time("/status/lastScheduleTime") else {
        return Health::new(Healthy, "CronJob has not been scheduled yet");
    };
    match time("/status/lastSuccessfulTime") {
        Some(succeeded) if succeeded >= scheduled => {
            Health::new(Healthy, "CronJob's last job succeeded")
        }
        _ => Health::new(Degraded, "CronJob's last job did not succeed"),
    }
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

/// An HPA by its conditions as Argo CD reads them — `status.conditions` (v2), or the JSON in
/// the `autoscaling.alpha.kubernetes.io/conditions` annotation (v1): the first condition that
/// says it cannot scale (Degraded) or that it scaled / is within range (Healthy) decides;
/// otherwise it is still waiting to autoscale.
fn hpa(v: &Value) -> Health {
    const DEGRADED: &[(&str, &str)] = &[
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    ];
    const HEALTHY: &[(&str, &str)] = &[
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
    ];
    let from_annotation = v
        .pointer("/metadata/annotations/autoscaling.alpha.kubernetes.io~1conditions")
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let conditions = match &from_annotation {
        Some(Value::Array(list)) => list.as_slice(),
        _ => v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
    };
    for c in conditions {
        let key = (text(c, "/type"), text(c, "/reason"));
        if DEGRADED.contains(&key) {
            return Health::new(Degraded, text(c, "/message"));
        }
        if HEALTHY.contains(&key) {
            return Health::new(Healthy, text(c, "/message"));
        }
    }
    Health::new(Progressing, "Waiting to Autoscale")
}

/// An Argo Workflow by its phase (so a Workflow hook is done when it has succeeded, not when
/// it was created).
fn workflow(v: &Value) -> Health {
    let message = text(v, "/status/message").to_string();
    match text(v, "/status/phase") {
        "Succeeded" => Health::new(Healthy, message),
        "Failed" | "Error" => Health::new(Degraded, message),
        _ => Health::new(Progressing, message),
    }
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

/// A CRD is usable once Established (so sync waves wait for it before its resources); names
/// not accepted, a non-structural schema, or establishment refused are Degraded.
fn crd(v: &Value) -> Health {
    if condition_is(v, "NamesAccepted", "False") {
        return Health::new(Degraded, condition_message(v, "NamesAccepted"));
    }
    if condition_is(v, "NonStructuralSchema", "True") {
        return Health::new(Degraded, condition_message(v, "NonStructuralSchema"));
    }
    if condition_is(v, "Established", "True") {
        Health::healthy()
    } else if condition_is(v, "Established", "False") {
        Health::new(Degraded, condition_message(v, "Established"))
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
        // Suspended by the job controller's condition, with its message.
        let h = assess(&job(
            json!([{"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended"}]),
        ))
        .unwrap();
        assert_eq!((h.status, h.message.as_str()), (Suspended, "Job suspended"));
        // Resumed: running again until it completes.
        assert_eq!(
            code(job(
                json!([{"type": "Suspended", "status": "False", "reason": "JobResumed"}])
            )),
            Progressing
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(code(pod), Degraded);
    }

    fn pod(restart: &str, status: Value) -> Health {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "status": status});
        if !restart.is_empty() {
            pod["spec"]["restartPolicy"] = json!(restart);
        }
        assess(&pod).unwrap()
    }

    #[test]
    fn hpa_conditions_v1_and_v2() {
        let v2 = |conditions: Value| json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}, "status": {"conditions": conditions}});
        let h = assess(&v2(json!([{"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
            {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "no metrics"}]))).unwrap();
        assert_eq!((h.status, h.message.as_str()), (Degraded, "no metrics"));
        let h = assess(&v2(json!([{"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "in range"}]))).unwrap();
        assert_eq!((h.status, h.message.as_str()), (Healthy, "in range"));
        let h = assess(&v2(json!([]))).unwrap();
        assert_eq!(
            (h.status, h.message.as_str()),
            (Progressing, "Waiting to Autoscale")
        );
        // v1 keeps its conditions in an annotation.
        let conditions = json!([{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale", "message": "no scale"}]).to_string();
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {"autoscaling.alpha.kubernetes.io/conditions": conditions}}, "status": {}});
        let h = assess(&v1).unwrap();
        assert_eq!((h.status, h.message.as_str()), (Degraded, "no scale"));
    }

    #[test]
    fn workflows_and_crds() {
        let wf = |phase: &str| json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}, "status": {"phase": phase, "message": "m"}});
        assert_eq!(code(wf("Running")), Progressing);
        assert_eq!(code(wf("Succeeded")), Healthy);
        assert_eq!(code(wf("Failed")), Degraded);
        assert_eq!(code(wf("Error")), Degraded);
        let crd = |conditions: Value| json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "c"}, "status": {"conditions": conditions}});
        assert_eq!(
            code(crd(json!([{"type": "Established", "status": "True"}]))),
            Healthy
        );
        assert_eq!(code(crd(json!([]))), Progressing);
        assert_eq!(
            code(crd(
                json!([{"type": "Established", "status": "False", "message": "x"}])
            )),
            Degraded
        );
        assert_eq!(
            code(crd(
                json!([{"type": "NonStructuralSchema", "status": "True"}, {"type": "Established", "status": "True"}])
            )),
            Degraded
        );
    }

    #[test]
    fn pods_by_restart_policy() {
        let ready = |ok: &str| json!([{"type": "Ready", "status": ok}]);
        let waiting = |reason: &str| {
            json!({"phase": "Pending", "containerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": reason, "message": format!("{reason} message")}}}]})
        };
        // Errors while waiting count only for pods that restart.
        for reason in [
            "ErrImagePull",
            "ImagePullBackOff",
            "CreateContainerConfigError",
            "CrashLoopBackOff",
        ] {
            let h = pod("Always", waiting(reason));
            assert_eq!(
                (h.status, h.message.as_str()),
                (Degraded, format!("{reason} message").as_str())
            );
            assert_eq!(
                pod("Never", waiting(reason)).status,
                Progressing,
                "{reason}"
            );
            assert_eq!(
                pod("OnFailure", waiting(reason)).status,
                Progressing,
                "{reason}"
            );
        }
        assert_eq!(pod("", waiting("ContainerCreating")).status, Progressing);
        // Running: ready is healthy only for pods that restart; a hook pod is still at work.
        let running = |ok: &str| json!({"phase": "Running", "conditions": ready(ok), "containerStatuses": [{"name": "a"}]});
        assert_eq!(pod("", running("True")).status, Healthy);
        assert_eq!(pod("Always", running("False")).status, Progressing);
        assert_eq!(pod("Never", running("True")).status, Progressing);
        assert_eq!(pod("OnFailure", running("True")).status, Progressing);
        // An operator's long-running Pod asks to be judged by readiness.
        let mut launcher = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "virt-launcher",
            "annotations": {"argocd.argoproj.io/ignore-restart-policy": "true"}},
            "spec": {"restartPolicy": "Never"}, "status": running("True")});
        assert_eq!(code(launcher.clone()), Healthy);
        launcher["status"] = running("False");
        assert_eq!(code(launcher.clone()), Progressing);
        launcher["metadata"]["annotations"] =
            json!({"argocd.argoproj.io/ignore-restart-policy": "false"});
        launcher["status"] = running("True");
        assert_eq!(code(launcher), Progressing);
        // Not ready after a container terminated: it is crashing.
        let crashed = json!({"phase": "Running", "conditions": ready("False"),
            "containerStatuses": [{"name": "a", "lastState": {"terminated": {"exitCode": 1}}}]});
        assert_eq!(pod("Always", crashed).status, Degraded);
        // Failed: the pod's message, else the container's.
        let failed =
            |container: Value| json!({"phase": "Failed", "containerStatuses": [container]});
        let h = pod(
            "Never",
            failed(json!({"name": "main", "state": {"terminated": {"exitCode": 3}}})),
        );
        assert_eq!(
            (h.status, h.message.as_str()),
            (Degraded, "container \"main\" failed with exit code 3")
        );
        let h = pod(
            "Never",
            failed(
                json!({"name": "main", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}),
            ),
        );
        assert_eq!(h.message, "OOMKilled");
        let h = pod(
            "Never",
            json!({"phase": "Failed", "message": "Pod was evicted"}),
        );
        assert_eq!(h.message, "Pod was evicted");
        assert_eq!(pod("Never", json!({"phase": "Succeeded"})).status, Healthy);
        assert_eq!(pod("", json!({})).status, Unknown);
    }

    #[test]
    fn kinds_without_checks_have_no_health() {
        assert!(
            assess(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
                .is_none()
        );
        let deleting = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(code(deleting.clone()), Progressing);
        let mut held = deleting;
        held["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
        let (h, _) = crate::explain(&held, &crate::CustomHealth::default()).expect("a health");
        assert_eq!(
            h.message,
            "Pending deletion; blocked by finalizers: example.com/a, example.com/b"
        );
    }

    #[test]
    fn cron_jobs_by_their_last_schedule_and_success() {
        let cron = |spec: Value, status: Value| json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": spec, "status": status});
        let every = json!({"schedule": "*/1 * * * *"});
        assert_eq!(code(cron(every.clone(), json!({}))), Healthy);
        assert_eq!(
            code(
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {}})
            ),
            Healthy
        );
        assert_eq!(
            code(cron(
                every.clone(),
                json!({"lastScheduleTime": "2020-08-20T18:00:00Z", "lastSuccessfulTime": "2020-08-20T18:00:31Z"})
            )),
            Healthy
        );
        assert_eq!(
            code(cron(
                every.clone(),
                json!({"lastScheduleTime": "2020-08-20T18:00:00Z", "lastSuccessfulTime": "2020-08-20T17:00:31Z"})
            )),
            Degraded
        );
        assert_eq!(
            code(cron(
                every.clone(),
                json!({"lastScheduleTime": "2020-08-20T18:00:00Z"})
            )),
            Degraded
        );
        assert_eq!(
            code(cron(
                every,
                json!({"active": [{"name": "j"}], "lastScheduleTime": "2020-08-20T18:00:00Z"})
            )),
            Progressing
        );
        assert_eq!(
            code(cron(
                json!({"suspend": true}),
                json!({"lastScheduleTime": "2020-08-20T18:00:00Z"})
            )),
            Suspended
        );
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
