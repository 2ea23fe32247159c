//! OpenKruise (`apps.kruise.io`). Its CloneSet, Advanced StatefulSet and Advanced DaemonSet
//! roll out like their Kubernetes namesakes, but a rollout can be held: paused, or stopped at a
//! `partition` that someone lowers step by step (a canary by hand) — that is Suspended, waiting
//! for a person, not Progressing. AdvancedCronJob and BroadcastJob run jobs.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{find, generic_generation, text};
use crate::Health;

/// The health of an OpenKruise object, or None for a kind without its own rule.
pub(super) fn health(kind: &str, v: &Value) -> Option<Health> {
    match kind {
        "CloneSet" | "StatefulSet" => Some(replicated(v)),
        "DaemonSet" => Some(daemon_set(v)),
        "AdvancedCronJob" => Some(advanced_cron_job(v)),
        "BroadcastJob" => Some(broadcast_job(v)),
        _ => None,
    }
}

fn count(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn flag(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool) == Some(true)
}

/// The rollout is paused; CloneSet keeps the flag in `updateStrategy`, the others in
/// `updateStrategy.rollingUpdate`.
fn paused(v: &Value) -> bool {
    flag(v, "/spec/updateStrategy/paused") || flag(v, "/spec/updateStrategy/rollingUpdate/paused")
}

/// `partition` as a number of pods of `total`: an integer, a numeric string, or a percentage
/// (rounded up, so "10%" of 5 keeps one pod back).
fn partition(v: &Value, total: i64) -> i64 {
    let raw = v
        .pointer("/spec/updateStrategy/partition")
        .or_else(|| v.pointer("/spec/updateStrategy/rollingUpdate/partition"));
    match raw {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.trim().strip_suffix('%') {
            Some(percent) => percent
                .trim()
                .parse::<i64>()
                .map_or(0, |p| (p.clamp(0, 100) * total + 99) / 100),
            None => s.trim().parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// Held at a partition: every pod the partition lets through is updated, the rest wait.
fn held_at_partition(v: &Value, total: i64, updated: i64) -> bool {
    let kept_back = partition(v, total);
    kept_back > 0 && updated < total && updated >= total - kept_back
}

fn waiting_for_controller() -> Health {
    Health::new(Progressing, "waiting for the Kruise controller")
}

/// What the workloads share before their replicas are counted: no status yet, a spec not
/// yet observed, a paused rollout.
fn before_counting(v: &Value) -> Option<Health> {
    if v.get("status").is_none() {
        return Some(waiting_for_controller());
    }
    if let Some((h, _)) = generic_generation(v) {
        return Some(h);
    }
    paused(v).then(|| Health::new(Suspended, "rollout is paused"))
}

/// CloneSet and Advanced StatefulSet.
fn replicated(v: &Value) -> Health {
    if let Some(before) = before_counting(v) {
        return before;
    }
    let replicas = count(v, "/spec/replicas").unwrap_or(1);
    let updated = count(v, "/status/updatedReplicas");
    // A CloneSet says how many pods its partition lets through; work it out for the others.
    let held = match count(v, "/status/expectedUpdatedReplicas") {
        Some(expected) if partition(v, replicas) > 0 => {
            updated.is_some_and(|u| u >= expected && u < replicas)
        }
        _ => updated.is_some_and(|u| held_at_partition(v, replicas, u)),
    };
    if held {
        return Health::new(
            Suspended,
            format!(
                "rollout held at its partition: {} of {replicas} updated",
                updated.unwrap_or(0)
            ),
        );
    }
    if let Some(updated) = updated
        && updated < replicas
    {
        return Health::new(
            Progressing,
            format!("rolling out: {updated} of {replicas} replicas updated"),
        );
    }
    let available = count(v, "/status/updatedAvailableReplicas")
        .or_else(|| count(v, "/status/updatedReadyReplicas"))
        .unwrap_or(0);
    if available < replicas {
        return Health::new(
            Degraded,
            format!("{available} of {replicas} updated replicas are available"),
        );
    }
    Health::new(Healthy, "all replicas are updated and available")
}

/// Advanced DaemonSet: as a DaemonSet, with the same pause and partition as the others.
fn daemon_set(v: &Value) -> Health {
    if let Some(before) = before_counting(v) {
        return before;
    }
    let desired = count(v, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = count(v, "/status/updatedNumberScheduled").unwrap_or(0);
    if held_at_partition(v, desired, updated) {
        return Health::new(
            Suspended,
            format!("rollout held at its partition: {updated} of {desired} pods updated"),
        );
    }
    let unavailable = count(v, "/status/numberUnavailable").unwrap_or(0);
    if unavailable > 0 {
        return Health::new(
            Degraded,
            format!("{unavailable} of {desired} pods are unavailable"),
        );
    }
    // The controller leaves the count out until it has counted available pods.
    let Some(available) = count(v, "/status/numberAvailable") else {
        return Health::new(Progressing, "waiting for pods to become available");
    };
    if updated < desired {
        return Health::new(
            Progressing,
            format!("rolling out: {updated} of {desired} pods updated"),
        );
    }
    if available < desired {
        return Health::new(
            Degraded,
            format!("{available} of {desired} pods are available"),
        );
    }
    Health::new(Healthy, "all pods are updated and available")
}

/// AdvancedCronJob: paused is Suspended, a job running Progressing, one that has run Healthy.
/// A status that records no run at all is Degraded, as Argo CD reports it.
fn advanced_cron_job(v: &Value) -> Health {
    if flag(v, "/spec/paused") {
        return Health::new(Suspended, "schedule is paused");
    }
    if v.get("status").is_none() {
        return waiting_for_controller();
    }
    if v.pointer("/status/active")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Health::new(Progressing, "a scheduled job is running");
    }
    match text(v, "/status/lastScheduleTime") {
        "" => Health::new(Degraded, "no job has been scheduled"),
        last => Health::new(Healthy, format!("last scheduled at {last}")),
    }
}

/// BroadcastJob: by the phase the controller publishes (in lower case), or its conditions.
fn broadcast_job(v: &Value) -> Health {
    if flag(v, "/spec/paused") {
        return Health::new(Suspended, "job is paused");
    }
    let conditions = super::conditions(v);
    let condition = |kind: &str| find(conditions, kind).filter(|c| text(c, "/status") == "True");
    let phase = text(v, "/status/phase").to_ascii_lowercase();
    if phase == "failed" || condition("Failed").is_some() {
        let message = condition("Failed").map_or("", |c| text(c, "/message"));
        return Health::new(Degraded, crate::message_or(message.into(), "job failed"));
    }
    if phase == "completed" || condition("Complete").is_some() {
        return Health::new(Healthy, "job completed");
    }
    if phase == "paused" {
        return Health::new(Suspended, "job is paused");
    }
    if v.get("status").is_none() {
        return waiting_for_controller();
    }
    Health::new(Progressing, "job is running")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code(kind: &str, v: Value) -> tiphys_model::application::HealthStatusCode {
        health(kind, &v).map(|h| h.status).expect("a Kruise kind")
    }

    fn clone_set(spec: Value, status: Value) -> Value {
        json!({"metadata": {"generation": 2}, "spec": spec, "status": status})
    }

    #[test]
    fn a_clone_set_rolls_out_and_can_be_held() {
        let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "updatedAvailableReplicas": 3});
        assert_eq!(
            code("CloneSet", clone_set(json!({"replicas": 3}), done.clone())),
            Healthy
        );
        assert_eq!(
            code(
                "CloneSet",
                clone_set(
                    json!({"replicas": 3, "updateStrategy": {"paused": true}}),
                    done
                )
            ),
            Suspended
        );
        let rolling = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "updatedAvailableReplicas": 1});
        assert_eq!(
            code(
                "CloneSet",
                clone_set(json!({"replicas": 3}), rolling.clone())
            ),
            Progressing
        );
        // Two of five kept back, three updated: held for someone to lower the partition.
        let held = json!({"observedGeneration": 2, "replicas": 5, "updatedReplicas": 3, "updatedAvailableReplicas": 3});
        assert_eq!(
            code(
                "CloneSet",
                clone_set(
                    json!({"replicas": 5, "updateStrategy": {"partition": 2}}),
                    held.clone()
                )
            ),
            Suspended
        );
        assert_eq!(
            code(
                "CloneSet",
                clone_set(
                    json!({"replicas": 5, "updateStrategy": {"partition": "40%"}}),
                    held
                )
            ),
            Suspended
        );
        // Updated everywhere but not available: the new version does not come up.
        let broken = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "updatedAvailableReplicas": 1});
        assert_eq!(
            code("CloneSet", clone_set(json!({"replicas": 3}), broken)),
            Degraded
        );
        let stale = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "updatedAvailableReplicas": 3});
        assert_eq!(
            code("CloneSet", clone_set(json!({"replicas": 3}), stale)),
            Progressing
        );
        assert_eq!(code("StatefulSet", json!({"metadata": {}})), Progressing);
    }

    #[test]
    fn a_statefulset_partition_lives_under_rolling_update() {
        let spec = json!({"replicas": 10, "updateStrategy": {"rollingUpdate": {"partition": 4}}});
        let status = |updated: i64| json!({"observedGeneration": 2, "replicas": 10, "updatedReplicas": updated, "updatedAvailableReplicas": updated});
        assert_eq!(
            code("StatefulSet", clone_set(spec.clone(), status(6))),
            Suspended
        );
        assert_eq!(code("StatefulSet", clone_set(spec, status(3))), Progressing);
    }

    #[test]
    fn a_daemon_set_counts_scheduled_pods() {
        let ds = |rolling: Value, status: Value| json!({"metadata": {"generation": 1}, "spec": {"updateStrategy": {"rollingUpdate": rolling}}, "status": status});
        let all = json!({"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberAvailable": 4});
        assert_eq!(code("DaemonSet", ds(json!({}), all.clone())), Healthy);
        assert_eq!(
            code("DaemonSet", ds(json!({"paused": true}), all)),
            Suspended
        );
        let partly = json!({"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 3, "numberAvailable": 4});
        assert_eq!(
            code("DaemonSet", ds(json!({"partition": 1}), partly.clone())),
            Suspended
        );
        assert_eq!(code("DaemonSet", ds(json!({}), partly)), Progressing);
        let down = json!({"observedGeneration": 1, "desiredNumberScheduled": 4, "updatedNumberScheduled": 4, "numberUnavailable": 2});
        assert_eq!(code("DaemonSet", ds(json!({}), down)), Degraded);
    }

    #[test]
    fn jobs_by_schedule_and_phase() {
        assert_eq!(
            code("AdvancedCronJob", json!({"spec": {"paused": true}})),
            Suspended
        );
        assert_eq!(
            code(
                "AdvancedCronJob",
                json!({"status": {"active": [{"name": "j"}], "lastScheduleTime": "t"}})
            ),
            Progressing
        );
        assert_eq!(
            code(
                "AdvancedCronJob",
                json!({"status": {"lastScheduleTime": "t"}})
            ),
            Healthy
        );
        assert_eq!(code("AdvancedCronJob", json!({"status": {}})), Degraded);
        assert_eq!(
            code("BroadcastJob", json!({"status": {"phase": "running"}})),
            Progressing
        );
        assert_eq!(
            code("BroadcastJob", json!({"status": {"phase": "completed"}})),
            Healthy
        );
        let failed = json!({"status": {"phase": "failed", "conditions": [{"type": "Failed", "status": "True", "message": "pod failed"}]}});
        let h = health("BroadcastJob", &failed).expect("a health");
        assert_eq!((h.status, h.message.as_str()), (Degraded, "pod failed"));
        assert_eq!(
            code(
                "BroadcastJob",
                json!({"spec": {"paused": true}, "status": {"phase": "paused"}})
            ),
            Suspended
        );
        assert_eq!(health("SidecarSet", &json!({})).map(|h| h.status), None);
    }
}
