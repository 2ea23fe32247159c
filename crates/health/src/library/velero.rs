//! Velero (`velero.io`): backups and restores are one-shot operations with a `status.phase`;
//! a schedule is Enabled once its spec validated.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::text;
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Option<Health> {
    if !matches!(kind, "Backup" | "Restore" | "Schedule") {
        return None;
    }
    let phase = text(v, "/status/phase");
    let health = match phase {
        "Completed" => Health::new(Healthy, format!("{kind} completed")),
        "Enabled" => Health::new(Healthy, "schedule is enabled"),
        "Failed" | "FailedValidation" => Health::new(Degraded, failure(v, phase)),
        // Done, but with errors for some items: not what was asked for.
        p if p.ends_with("PartiallyFailed") => Health::new(Degraded, failure(v, phase)),
        // New, InProgress, WaitingForPluginOperations, Finalizing, Deleting, none yet.
        "" => Health::new(
            Progressing,
            format!("waiting for Velero to start the {kind}"),
        ),
        p => Health::new(Progressing, p),
    };
    Some(health)
}

/// Velero's reason for a failure: `failureReason`, else its validation errors, else the phase.
fn failure(v: &Value, phase: &str) -> String {
    let reason = text(v, "/status/failureReason");
    if !reason.is_empty() {
        return reason.to_string();
    }
    let errors = crate::strings(v, "/status/validationErrors");
    if errors.is_empty() {
        phase.to_string()
    } else {
        errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiphys_model::application::HealthStatusCode;

    use super::*;

    fn code(kind: &str, status: Value) -> Option<HealthStatusCode> {
        health(kind, &json!({"status": status})).map(|h| h.status)
    }

    #[test]
    fn phases_of_backups_restores_and_schedules() {
        assert_eq!(code("Backup", json!({"phase": "Completed"})), Some(Healthy));
        assert_eq!(
            code("Backup", json!({"phase": "InProgress"})),
            Some(Progressing)
        );
        assert_eq!(
            code("Backup", json!({"phase": "PartiallyFailed"})),
            Some(Degraded)
        );
        assert_eq!(code("Restore", json!({})), Some(Progressing));
        assert_eq!(code("Schedule", json!({"phase": "Enabled"})), Some(Healthy));
        assert_eq!(code("Schedule", json!({"phase": "New"})), Some(Progressing));
        let invalid = health(
            "Schedule",
            &json!({"status": {"phase": "FailedValidation", "validationErrors": ["bad cron"]}}),
        )
        .expect("a health");
        assert_eq!(
            (invalid.status, invalid.message.as_str()),
            (Degraded, "bad cron")
        );
        assert_eq!(
            code("BackupStorageLocation", json!({"phase": "Available"})),
            None
        );
    }
}
