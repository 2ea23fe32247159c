//! The Apache Flink Kubernetes operator (`flink.apache.org`): a FlinkDeployment by the
//! operator's reconciliation and its JobManager deployment, a FlinkSessionJob by its job's
//! state, a FlinkBlueGreenDeployment by which side is active and whether it is switching.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{generic_generation, text};
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Option<Health> {
    let health = match kind {
        "FlinkDeployment" => deployment(v),
        "FlinkSessionJob" => session_job(v),
        "FlinkBlueGreenDeployment" => blue_green(v),
        _ => return None,
    };
    Some(health)
}

fn waiting() -> Health {
    Health::new(Progressing, "waiting for the Flink operator")
}

fn error(v: &Value, pointer: &str, fallback: &str) -> String {
    crate::message_or(text(v, pointer).trim().to_string(), fallback)
}

/// Deployed as asked (the operator's last reconciliation succeeded — `success` before operator
/// 1.0, state DEPLOYED since; a job suspended on purpose counts) is Healthy; a JobManager
/// still coming up Progressing, one in error Degraded.
fn deployment(v: &Value) -> Health {
    if v.get("status").is_none() {
        return waiting();
    }
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    let reconciliation = v.pointer("/status/reconciliationStatus");
    let succeeded = reconciliation
        .and_then(|r| r.get("success"))
        .and_then(Value::as_bool)
        == Some(true)
        || text(v, "/status/reconciliationStatus/state") == "DEPLOYED";
    match text(v, "/status/jobManagerDeploymentStatus") {
        "ERROR" => {
            return Health::new(
                Degraded,
                error(
                    v,
                    "/status/reconciliationStatus/error",
                    "the JobManager failed",
                ),
            );
        }
        "DEPLOYING" | "DEPLOYED_NOT_READY" if !succeeded => {
            return Health::new(Progressing, "waiting for the JobManager to be ready");
        }
        _ => {}
    }
    if succeeded {
        return Health::new(Healthy, "deployed");
    }
    waiting()
}

fn session_job(v: &Value) -> Health {
    if v.get("status").is_none() {
        return waiting();
    }
    let state = text(v, "/status/jobStatus/state");
    let error = text(v, "/status/error");
    if state == "FAILED" || (!error.is_empty() && state.is_empty()) {
        return Health::new(Degraded, crate::message_or(error.to_string(), "job failed"));
    }
    match state {
        "RUNNING" | "FINISHED" => Health::new(Healthy, state),
        "SUSPENDED" => Health::new(Suspended, state),
        "" => waiting(),
        // CREATED, RECONCILING, RESTARTING, CANCELLING, …
        _ => Health::new(Progressing, state),
    }
}

/// Blue/green: a side active and its job running is Healthy; a job crash-looping on the active
/// side, or a switch rolled back, Degraded; a switch, a savepoint, a rollback under way, or a
/// job failed mid-switch (the operator recovers it) Progressing.
fn blue_green(v: &Value) -> Health {
    if v.get("status").is_none() {
        return waiting();
    }
    match text(v, "/status/reconciliationStatus/state") {
        "ROLLED_BACK" => {
            return Health::new(
                Degraded,
                format!(
                    "rolled back: {}",
                    error(v, "/status/error", "the upgrade failed")
                ),
            );
        }
        "ROLLING_BACK" => return Health::new(Progressing, "rolling back to the last stable spec"),
        _ => {}
    }
    let side = text(v, "/status/blueGreenState");
    let job = text(v, "/status/jobStatus/state");
    if !side.starts_with("ACTIVE_") {
        return Health::new(
            Progressing,
            crate::message_or(side.to_string(), "waiting for a side to become active"),
        );
    }
    match job {
        "RESTARTING" | "FAILING" | "FAILED" => {
            Health::new(Degraded, format!("job {job} in {side}"))
        }
        "RUNNING" | "FINISHED" | "" => Health::new(Healthy, side),
        _ => Health::new(Progressing, format!("job {job} in {side}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code(kind: &str, status: Value) -> tiphys_model::application::HealthStatusCode {
        health(kind, &json!({"status": status}))
            .expect("a Flink kind")
            .status
    }

    #[test]
    fn deployments_by_reconciliation_and_job_manager() {
        assert_eq!(
            code(
                "FlinkDeployment",
                json!({"reconciliationStatus": {"state": "DEPLOYED"}, "jobManagerDeploymentStatus": "READY"})
            ),
            Healthy
        );
        assert_eq!(
            code(
                "FlinkDeployment",
                json!({"reconciliationStatus": {"success": true}})
            ),
            Healthy
        );
        assert_eq!(
            code(
                "FlinkDeployment",
                json!({"reconciliationStatus": {}, "jobManagerDeploymentStatus": "DEPLOYING"})
            ),
            Progressing
        );
        assert_eq!(
            code(
                "FlinkDeployment",
                json!({"reconciliationStatus": {"error": "bad"}, "jobManagerDeploymentStatus": "ERROR"})
            ),
            Degraded
        );
        assert_eq!(
            health("FlinkDeployment", &json!({})).map(|h| h.status),
            Some(Progressing)
        );
    }

    #[test]
    fn session_jobs_and_blue_green() {
        assert_eq!(
            code(
                "FlinkSessionJob",
                json!({"jobStatus": {"state": "RUNNING"}})
            ),
            Healthy
        );
        assert_eq!(
            code(
                "FlinkSessionJob",
                json!({"jobStatus": {"state": "SUSPENDED"}})
            ),
            Suspended
        );
        assert_eq!(
            code("FlinkSessionJob", json!({"error": "no session cluster"})),
            Degraded
        );
        assert_eq!(
            code(
                "FlinkSessionJob",
                json!({"jobStatus": {"state": "RECONCILING"}})
            ),
            Progressing
        );
        assert_eq!(
            code(
                "FlinkBlueGreenDeployment",
                json!({"blueGreenState": "ACTIVE_GREEN", "jobStatus": {"state": "RUNNING"}})
            ),
            Healthy
        );
        assert_eq!(
            code(
                "FlinkBlueGreenDeployment",
                json!({"blueGreenState": "ACTIVE_BLUE", "jobStatus": {"state": "RESTARTING"}})
            ),
            Degraded
        );
        assert_eq!(
            code(
                "FlinkBlueGreenDeployment",
                json!({"blueGreenState": "TRANSITIONING_TO_GREEN", "jobStatus": {"state": "FAILED"}})
            ),
            Progressing
        );
        assert_eq!(
            code(
                "FlinkBlueGreenDeployment",
                json!({"blueGreenState": "ACTIVE_BLUE", "reconciliationStatus": {"state": "ROLLED_BACK"}})
            ),
            Degraded
        );
    }
}
