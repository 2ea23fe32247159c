//! KServe (`serving.kserve.io`) InferenceService and LLMInferenceService: stopped on purpose
//! (the `serving.kserve.io/stop` annotation) is Suspended; a ModelMesh deployment reports its
//! model's loading in `status.modelStatus.transitionStatus`, which outranks `Ready` (Ready stays
//! True while a new model fails to load); otherwise the conditions, by the generic rule.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Progressing, Suspended};

use super::{Rule, conditions, find, generic, text};
use crate::Health;

pub(super) fn health(v: &Value) -> Option<(Health, Rule)> {
    let stop_annotation = v
        .pointer("/metadata/annotations/serving.kserve.io~1stop")
        .and_then(Value::as_str)
        == Some("true");
    let stopped_condition =
        find(conditions(v), "Stopped").is_some_and(|c| text(c, "/status") == "True");
    if stop_annotation || stopped_condition {
        return Some((
            Health::new(Suspended, "the inference service is stopped"),
            "KServe: stopped",
        ));
    }
    if v.get("status").is_none() {
        return Some((
            Health::new(Progressing, "waiting for the KServe controller"),
            "controller has not reported yet",
        ));
    }
    let failure = || {
        let message = text(v, "/status/modelStatus/lastFailureInfo/message");
        crate::message_or(message.to_string(), "the model failed to load")
    };
    match text(v, "/status/modelStatus/transitionStatus") {
        "BlockedByFailedLoad" | "InvalidSpec" => {
            return Some((Health::new(Degraded, failure()), "KServe: model transition"));
        }
        "InProgress" => {
            return Some((
                Health::new(Progressing, "the model is loading"),
                "KServe: model transition",
            ));
        }
        _ => {}
    }
    generic(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiphys_model::application::HealthStatusCode::Healthy;

    use super::*;

    fn code(v: Value) -> Option<tiphys_model::application::HealthStatusCode> {
        health(&v).map(|(h, _)| h.status)
    }

    #[test]
    fn stopped_model_transitions_and_conditions() {
        let ready = |s: &str| json!([{"type": "Ready", "status": s}]);
        assert_eq!(
            code(json!({"status": {"conditions": ready("True")}})),
            Some(Healthy)
        );
        assert_eq!(
            code(json!({"status": {"conditions": ready("False")}})),
            Some(Degraded)
        );
        assert_eq!(
            code(
                json!({"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}, "status": {"conditions": ready("False")}})
            ),
            Some(Suspended)
        );
        assert_eq!(
            code(
                json!({"status": {"conditions": ready("True"), "modelStatus": {"transitionStatus": "BlockedByFailedLoad"}}})
            ),
            Some(Degraded)
        );
        assert_eq!(
            code(
                json!({"status": {"conditions": ready("False"), "modelStatus": {"transitionStatus": "InProgress"}}})
            ),
            Some(Progressing)
        );
        assert_eq!(code(json!({"spec": {}})), Some(Progressing));
    }
}
