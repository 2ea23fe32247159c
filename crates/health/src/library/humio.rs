//! The Humio (LogScale) operator (`core.humio.com`): every kind publishes `status.state`. A
//! cluster is Running, or on its way (Pending, Upgrading, Restarting); the objects it manages
//! inside the cluster (repositories, views, parsers, actions, alerts, ingest tokens) Exist, or
//! were NotFound there — Missing, as Argo CD reports it.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{
    Degraded, Healthy, Missing, Progressing, Unknown,
};

use super::text;
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Health {
    let state = text(v, "/status/state");
    let message = || {
        crate::message_or(
            text(v, "/status/message").to_string(),
            &format!("{kind} state: {state}"),
        )
    };
    match state {
        "" => Health::new(
            Progressing,
            format!("waiting for the Humio operator to report on the {kind}"),
        ),
        "Running" | "Exists" => Health::new(Healthy, message()),
        "ConfigError" => Health::new(Degraded, message()),
        "NotFound" => Health::new(Missing, message()),
        "Unknown" => Health::new(Unknown, message()),
        // Pending, Upgrading, Restarting, …
        _ => Health::new(Progressing, message()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn states_of_clusters_and_managed_objects() {
        let code =
            |kind: &str, state: &str| health(kind, &json!({"status": {"state": state}})).status;
        assert_eq!(code("HumioCluster", "Running"), Healthy);
        assert_eq!(code("HumioCluster", "Upgrading"), Progressing);
        assert_eq!(code("HumioRepository", "Exists"), Healthy);
        assert_eq!(code("HumioView", "NotFound"), Missing);
        assert_eq!(code("HumioParser", "ConfigError"), Degraded);
        assert_eq!(code("HumioAlert", "Unknown"), Unknown);
        let custom = health(
            "HumioCluster",
            &json!({"status": {"state": "ConfigError", "message": "license missing"}}),
        );
        assert_eq!(custom.message, "license missing");
        assert_eq!(
            health("HumioAction", &json!({"spec": {}})).status,
            Progressing
        );
    }
}
