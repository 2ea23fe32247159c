//! The MariaDB operator (`k8s.mariadb.com`). Servers, databases, users and grants publish
//! `Ready`, which is False both while starting (StatefulSetNotReady, RestoreNotComplete, …) and
//! on an error — only reason `Failed` is the error. Backups, restores and SQL jobs publish
//! `Complete`, whose message says Success or Failed.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::{conditions, find, text};
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Health {
    let conditions = conditions(v);
    if let Some(complete) = find(conditions, "Complete") {
        let failed =
            text(complete, "/message") == "Failed" || text(complete, "/reason").ends_with("Failed");
        let message = format!(
            "{} {}",
            text(complete, "/reason"),
            text(complete, "/message")
        );
        return match (failed, text(complete, "/status")) {
            (true, _) => Health::new(Degraded, message.trim()),
            (false, "True") => Health::new(Healthy, message.trim()),
            _ => Health::new(Progressing, message.trim()),
        };
    }
    if let Some(ready) = find(conditions, "Ready") {
        let message = text(ready, "/message");
        return match (text(ready, "/status"), text(ready, "/reason")) {
            ("True", _) => Health::new(Healthy, message),
            ("False", "Failed") => Health::new(Degraded, message),
            _ => Health::new(Progressing, message),
        };
    }
    Health::new(
        Progressing,
        format!("waiting for the MariaDB operator to report on the {kind}"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(t: &str, status: &str, reason: &str, message: &str) -> Value {
        json!({"status": {"conditions": [{"type": t, "status": status, "reason": reason, "message": message}]}})
    }

    #[test]
    fn ready_and_complete() {
        assert_eq!(
            health(
                "MariaDB",
                &with("Ready", "True", "StatefulSetReady", "Running")
            )
            .status,
            Healthy
        );
        assert_eq!(
            health(
                "MariaDB",
                &with("Ready", "False", "StatefulSetNotReady", "Not ready")
            )
            .status,
            Progressing
        );
        assert_eq!(
            health(
                "MariaDB",
                &with("Ready", "False", "Failed", "Error creating ConfigMap")
            )
            .status,
            Degraded
        );
        assert_eq!(
            health(
                "SqlJob",
                &with("Complete", "True", "JobComplete", "Success")
            )
            .status,
            Healthy
        );
        assert_eq!(
            health("SqlJob", &with("Complete", "True", "JobFailed", "Failed")).status,
            Degraded
        );
        assert_eq!(
            health(
                "Backup",
                &with("Complete", "False", "CronJobScheduled", "Failed")
            )
            .status,
            Degraded
        );
        assert_eq!(
            health(
                "Backup",
                &with("Complete", "False", "JobRunning", "Running")
            )
            .status,
            Progressing
        );
        assert_eq!(health("MariaDB", &json!({})).status, Progressing);
    }
}
