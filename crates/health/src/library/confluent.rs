//! Confluent for Kubernetes (`platform.confluent.io`). Its clusters (Kafka, Zookeeper,
//! Connect, …) publish an upper-case `status.phase` the generic rule reads; a Connector is
//! judged by the Connect cluster's report of it and of its tasks.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{conditions, text};
use crate::Health;

pub(super) fn connector(v: &Value) -> Health {
    if v.get("status").is_none() {
        return Health::new(Progressing, "waiting for the Connect cluster");
    }
    let failed_tasks = v
        .pointer("/status/failedTasksCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if failed_tasks > 0 {
        return Health::new(
            Degraded,
            format!("connector has {failed_tasks} failed tasks"),
        );
    }
    // The operator's `app-ready` condition is False when Connect refused the connector.
    let refused = conditions(v).iter().find(|c| {
        text(c, "/type") == "platform.confluent.io/app-ready" && text(c, "/status") == "False"
    });
    if let Some(c) = refused {
        return Health::new(Degraded, text(c, "/message").trim());
    }
    if text(v, "/status/state") == "ERROR" {
        return Health::new(Degraded, "connector is in error");
    }
    match text(v, "/status/connectorState") {
        "RUNNING" => Health::new(Healthy, "connector running"),
        "PAUSED" | "STOPPED" => Health::new(Suspended, "connector is paused"),
        "FAILED" => Health::new(Degraded, "connector failed"),
        _ => Health::new(Progressing, "waiting for the connector to run"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_connector_by_its_state_and_tasks() {
        let code = |status: Value| connector(&json!({"status": status})).status;
        assert_eq!(
            code(json!({"connectorState": "RUNNING", "tasksReady": "3/3"})),
            Healthy
        );
        assert_eq!(
            code(json!({"connectorState": "RUNNING", "failedTasksCount": 1})),
            Degraded
        );
        assert_eq!(
            code(
                json!({"state": "ERROR", "conditions": [{"type": "platform.confluent.io/app-ready", "status": "False", "message": "invalid config"}]})
            ),
            Degraded
        );
        assert_eq!(code(json!({"connectorState": "PAUSED"})), Suspended);
        assert_eq!(code(json!({"state": "CREATED"})), Progressing);
        assert_eq!(connector(&json!({})).status, Progressing);
    }
}
