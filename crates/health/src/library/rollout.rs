//! Argo Rollouts' Rollout. Since Rollouts 1.0 the controller publishes a `status.phase`;
//! older controllers (and objects they last wrote) are judged from the replica counts and
//! strategy state, as their status carries no phase. Either way, a spec (or a referenced
//! workload's spec) not yet observed is Progressing and a paused rollout Suspended.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{condition_message, conditions, find, text};
use crate::{Health, int};

/// A generation written as a number or a numeric string.
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn rollout(v: &Value) -> Health {
    if v.get("status").is_none() {
        return Health::new(Progressing, "waiting for the rollout spec to be observed");
    }
    // Before Rollouts 0.10 `observedGeneration` was a hash of the spec (sometimes all digits):
    // only a number at most the object's generation is a generation.
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = number(v.pointer("/status/observedGeneration"));
    if let (Some(generation), Some(observed)) = (generation, observed)
        && observed < generation
    {
        return Health::new(Progressing, "waiting for the rollout spec to be observed");
    }
    let workload_generation =
        number(v.pointer("/metadata/annotations/rollout.argoproj.io~1workload-generation"));
    let workload_observed = number(v.pointer("/status/workloadObservedGeneration"));
    if let (Some(wanted), Some(observed)) = (workload_generation, workload_observed)
        && observed < wanted
    {
        return Health::new(
            Progressing,
            "waiting for the referenced workload's spec to be observed",
        );
    }
    let message = text(v, "/status/message").to_string();
    let paused = v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
        || v.pointer("/status/pauseConditions")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    if paused {
        return Health::new(Suspended, crate::message_or(message, "Rollout is paused"));
    }
    match text(v, "/status/phase") {
        "Healthy" => Health::new(Healthy, message),
        "Degraded" => Health::new(Degraded, message),
        "Paused" => Health::new(Suspended, message),
        "" => legacy(v),
        _ => Health::new(
            Progressing,
            crate::message_or(message, "Waiting for the rollout to progress"),
        ),
    }
}

/// A rollout written by a controller older than 1.0.
fn legacy(v: &Value) -> Health {
    let c = conditions(v);
    if v.pointer("/status/abort").and_then(Value::as_bool) == Some(true) {
        return Health::new(Degraded, "Rollout is aborted");
    }
    if find(c, "InvalidSpec").is_some_and(|i| text(i, "/status") == "True") {
        return Health::new(Degraded, condition_message(v, "InvalidSpec"));
    }
    if find(c, "Progressing").is_some_and(|p| {
        text(p, "/status") == "False" && text(p, "/reason") == "ProgressDeadlineExceeded"
    }) {
        return Health::new(Degraded, condition_message(v, "Progressing"));
    }
    let wanted = v
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let updated = int(v, "/status/updatedReplicas");
    let waiting = |why: &str| {
        Health::new(
            Progressing,
            format!("Waiting for roll out to finish: {why}"),
        )
    };
    if updated < wanted {
        return waiting("more replicas need to be updated");
    }
    if int(v, "/status/replicas") > updated {
        return waiting("old replicas are pending termination");
    }
    if int(v, "/status/availableReplicas") < updated {
        return waiting("updated replicas are still becoming available");
    }
    let current = text(v, "/status/currentPodHash");
    if v.pointer("/spec/strategy/blueGreen").is_some() {
        if text(v, "/status/blueGreen/activeSelector") != current {
            if text(v, "/status/blueGreen/previewSelector") == current {
                return Health::new(
                    Suspended,
                    "the preview Service is serving traffic to the current pod spec",
                );
            }
            return waiting("the active Service is not serving the current pod spec yet");
        }
        return Health::new(
            Healthy,
            "the active Service is serving traffic to the current pod spec",
        );
    }
    let steps = v
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .map_or(0, Vec::len) as i64;
    if steps > 0 && int(v, "/status/currentStepIndex") < steps {
        return waiting("canary steps are not all executed");
    }
    Health::new(Healthy, "")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_published_phase_and_what_was_not_observed_yet() {
        let published = |phase: &str| json!({"metadata": {"generation": 2}, "status": {"observedGeneration": "2", "phase": phase}});
        assert_eq!(rollout(&published("Healthy")).status, Healthy);
        assert_eq!(rollout(&published("Degraded")).status, Degraded);
        assert_eq!(rollout(&published("Paused")).status, Suspended);
        assert_eq!(rollout(&published("Progressing")).status, Progressing);
        let mut stale = published("Healthy");
        stale["status"]["observedGeneration"] = json!("1");
        assert_eq!(rollout(&stale).status, Progressing);
        // A legacy hash made of digits is not a generation.
        stale["status"]["observedGeneration"] = json!("8575574967");
        assert_eq!(rollout(&stale).status, Healthy);
        let mut workload = published("Healthy");
        workload["metadata"]["annotations"] =
            json!({"rollout.argoproj.io/workload-generation": "2"});
        workload["status"]["workloadObservedGeneration"] = json!("1");
        assert_eq!(rollout(&workload).status, Progressing);
        assert_eq!(rollout(&json!({"spec": {}})).status, Progressing);
    }

    #[test]
    fn legacy_rollouts_by_replicas_and_strategy() {
        let canary = |status: Value| json!({"spec": {"replicas": 2, "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}, "status": status});
        assert_eq!(rollout(&canary(json!({"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2, "currentStepIndex": 2}))).status, Healthy);
        assert_eq!(rollout(&canary(json!({"updatedReplicas": 1, "replicas": 2, "availableReplicas": 2, "currentStepIndex": 1}))).status, Progressing);
        assert_eq!(
            rollout(&canary(
                json!({"updatedReplicas": 2, "replicas": 3, "availableReplicas": 3})
            ))
            .status,
            Progressing
        );
        assert_eq!(rollout(&canary(json!({"abort": true}))).status, Degraded);
        let deadline = json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]});
        assert_eq!(rollout(&canary(deadline)).status, Degraded);
        let blue_green = |active: &str, preview: &str| {
            json!({"spec": {"replicas": 1, "strategy": {"blueGreen": {}}},
            "status": {"updatedReplicas": 1, "replicas": 1, "availableReplicas": 1, "currentPodHash": "new",
                       "blueGreen": {"activeSelector": active, "previewSelector": preview}}})
        };
        assert_eq!(rollout(&blue_green("new", "")).status, Healthy);
        assert_eq!(rollout(&blue_green("old", "new")).status, Suspended);
        assert_eq!(rollout(&blue_green("old", "")).status, Progressing);
    }
}
