//! NetApp Astra Control (`astra.netapp.io`): applications it protects, the vaults backups go
//! to, schedules and hooks, and one-shot operations (backups, snapshots, restores, hook runs)
//! that publish a `status.state` — Running there means not finished yet.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{condition_message, conditions, find, text};
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Health {
    match kind {
        // A schedule has nothing to wait for; it is there or not.
        "Schedule" => match text(v, "/status/lastScheduleTime") {
            "" => Health::new(Healthy, "protection policy not run yet"),
            last => Health::new(Healthy, format!("protection policy last ran at {last}")),
        },
        "ExecHook" => match v.pointer("/spec/enabled").and_then(Value::as_bool) {
            Some(true) => Health::new(Healthy, "execution hook enabled"),
            Some(false) => Health::new(Suspended, "execution hook disabled"),
            None => no_status(),
        },
        _ if v.get("status").is_none() => no_status(),
        "Application" => application(v),
        "AppVault" => match text(v, "/status/state").to_ascii_lowercase().as_str() {
            "available" => Health::new(Healthy, "vault available"),
            "failed" | "error" => Health::new(Degraded, error(v, "vault failed")),
            _ => Health::new(Progressing, "waiting for the vault to become available"),
        },
        _ => operation(kind, v),
    }
}

fn no_status() -> Health {
    Health::new(Progressing, "waiting for the Astra connector")
}

fn error(v: &Value, fallback: &str) -> String {
    crate::message_or(text(v, "/status/error").trim().to_string(), fallback)
}

/// A protected application: its `Ready` condition.
fn application(v: &Value) -> Health {
    let protection = text(v, "/status/protectionState");
    match find(conditions(v), "Ready").map(|c| text(c, "/status")) {
        Some("True") => Health::new(
            Healthy,
            format!("application ready, protection: {protection}"),
        ),
        Some("False") => Health::new(Degraded, condition_message(v, "Ready")),
        _ => Health::new(Progressing, "waiting for the application to become ready"),
    }
}

/// A one-shot operation: Completed is Healthy, Failed Degraded (with the error), anything
/// else — Pending, Running, Removed-before-done — still in progress.
fn operation(kind: &str, v: &Value) -> Health {
    match text(v, "/status/state") {
        "Completed" => Health::new(Healthy, format!("{kind} completed")),
        "Failed" | "Error" => Health::new(Degraded, error(v, "failed")),
        "" => Health::new(Progressing, format!("{kind} not started")),
        state => Health::new(Progressing, format!("{kind} {state}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operations_finish_by_state() {
        let code = |v: Value| health("Backup", &v).status;
        assert_eq!(code(json!({"spec": {}})), Progressing);
        assert_eq!(code(json!({"status": {"state": "Running"}})), Progressing);
        assert_eq!(code(json!({"status": {"state": "Completed"}})), Healthy);
        let failed = health(
            "Snapshot",
            &json!({"status": {"state": "Failed", "error": "timeout"}}),
        );
        assert_eq!(
            (failed.status, failed.message.as_str()),
            (Degraded, "timeout")
        );
    }

    #[test]
    fn vaults_applications_hooks_and_schedules() {
        assert_eq!(
            health("AppVault", &json!({"status": {"state": "available"}})).status,
            Healthy
        );
        assert_eq!(
            health(
                "AppVault",
                &json!({"status": {"state": "failed", "error": "404"}})
            )
            .status,
            Degraded
        );
        let ready = |s: &str| json!({"status": {"conditions": [{"type": "Ready", "status": s, "message": "m"}]}});
        assert_eq!(health("Application", &ready("True")).status, Healthy);
        assert_eq!(health("Application", &ready("False")).status, Degraded);
        assert_eq!(health("Application", &json!({})).status, Progressing);
        assert_eq!(
            health("ExecHook", &json!({"spec": {"enabled": false}})).status,
            Suspended
        );
        assert_eq!(
            health("ExecHook", &json!({"spec": {"enabled": true}})).status,
            Healthy
        );
        assert_eq!(health("Schedule", &json!({"spec": {}})).status, Healthy);
    }
}
