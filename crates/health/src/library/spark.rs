//! The Spark operator's SparkApplication (`sparkoperator.k8s.io`): by the application's state;
//! a running application with a fixed executor count is Progressing until every executor runs
//! (with dynamic allocation the count moves by design, so running is enough).

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::text;
use crate::Health;

pub(super) fn application(v: &Value) -> Health {
    let state = text(v, "/status/applicationState/state");
    match state {
        "" => Health::new(
            Progressing,
            "waiting for the Spark operator to submit the application",
        ),
        "COMPLETED" => Health::new(Healthy, "application completed"),
        "FAILED" | "SUBMISSION_FAILED" | "FAILING" => Health::new(
            Degraded,
            crate::message_or(
                text(v, "/status/applicationState/errorMessage").to_string(),
                state,
            ),
        ),
        "RUNNING" => running(v),
        // SUBMITTED, PENDING_RERUN, INVALIDATING, SUCCEEDING, UNKNOWN.
        _ => Health::new(Progressing, format!("application is {state}")),
    }
}

fn running(v: &Value) -> Health {
    let wanted = v
        .pointer("/spec/executor/instances")
        .and_then(Value::as_i64);
    let dynamic = v
        .pointer("/spec/dynamicAllocation/enabled")
        .and_then(Value::as_bool)
        == Some(true)
        || v.pointer("/spec/sparkConf")
            .and_then(Value::as_object)
            .is_some_and(|conf| {
                conf.iter().any(|(key, value)| {
                    key.ends_with("dynamicAllocation.enabled") && value.as_str() == Some("true")
                })
            });
    let running = v
        .pointer("/status/executorState")
        .and_then(Value::as_object)
        .map_or(0, |executors| {
            executors
                .values()
                .filter(|s| s.as_str() == Some("RUNNING"))
                .count()
        });
    match wanted {
        Some(wanted) if !dynamic && (running as i64) < wanted => Health::new(
            Progressing,
            format!("{running} of {wanted} executors running"),
        ),
        _ => Health::new(Healthy, "application is running"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_and_executors() {
        let app = |spec: Value, state: &str, executors: usize| {
            let running: serde_json::Map<String, Value> = (0..executors)
                .map(|i| (format!("e{i}"), json!("RUNNING")))
                .collect();
            json!({"spec": spec, "status": {"applicationState": {"state": state}, "executorState": running}})
        };
        let fixed = json!({"executor": {"instances": 3}});
        assert_eq!(
            application(&app(fixed.clone(), "RUNNING", 3)).status,
            Healthy
        );
        assert_eq!(
            application(&app(fixed.clone(), "RUNNING", 1)).status,
            Progressing
        );
        let dynamic = json!({"executor": {"instances": 3}, "sparkConf": {"spark.dynamicAllocation.enabled": "true"}});
        assert_eq!(application(&app(dynamic, "RUNNING", 1)).status, Healthy);
        assert_eq!(
            application(&app(fixed.clone(), "FAILED", 0)).status,
            Degraded
        );
        assert_eq!(
            application(&app(fixed.clone(), "COMPLETED", 0)).status,
            Healthy
        );
        assert_eq!(
            application(&app(fixed, "PENDING_RERUN", 0)).status,
            Progressing
        );
        assert_eq!(application(&json!({"spec": {}})).status, Progressing);
    }
}
