//! The 3scale operator's capability resources (`capabilities.3scale.net`: Product, Backend,
//! Application, DeveloperAccount, ActiveDoc, Tenant, …). Each is synchronised with a 3scale
//! API: conditions `Failed`, `Invalid` and `Orphan` (a reference to something that does not
//! exist) say why it is not; `Synced` or `Ready` that it is. An account or application can also
//! be suspended, or wait for an administrator's approval.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{conditions, find, text};
use crate::Health;

/// The APIManager (`apps.3scale.net`), 3scale itself: `Available` True is Healthy; False with a
/// reason (MissingWatchedSecrets, …) Degraded; False without one, its deployments starting.
pub(super) fn api_manager(v: &Value) -> Health {
    match find(conditions(v), "Available") {
        Some(c) if text(c, "/status") == "True" => Health::new(Healthy, "3scale is available"),
        Some(c) if text(c, "/status") == "False" && !text(c, "/reason").is_empty() => Health::new(
            Degraded,
            format!("3scale is degraded: {}", text(c, "/reason")),
        ),
        _ => Health::new(Progressing, "waiting for 3scale's deployments"),
    }
}

pub(super) fn health(kind: &str, v: &Value) -> Health {
    let waiting = || Health::new(Progressing, format!("waiting for the 3scale {kind} status"));
    if v.get("status").is_none() {
        return waiting();
    }
    if text(v, "/status/state") == "suspended"
        || text(v, "/status/developerUserState") == "suspended"
    {
        return Health::new(Suspended, format!("3scale {kind} is suspended"));
    }
    let conditions = conditions(v);
    let with =
        |kind: &str, status: &str| find(conditions, kind).filter(|c| text(c, "/status") == status);
    let message =
        |c: &Value, fallback: &str| crate::message_or(text(c, "/message").to_string(), fallback);
    for problem in ["Failed", "Invalid", "Orphan"] {
        if let Some(c) = with(problem, "True") {
            return Health::new(Degraded, message(c, problem));
        }
    }
    if let Some(c) = with("Waiting", "True") {
        return Health::new(Suspended, message(c, "waiting for approval"));
    }
    if let Some(c) = with("Ready", "False") {
        return Health::new(Degraded, message(c, "not ready"));
    }
    if with("Ready", "True").is_some() || with("Synced", "True").is_some() {
        return Health::new(Healthy, format!("3scale {kind} is synchronised"));
    }
    // Not synchronised with a reason given is a failed synchronisation; without one, the
    // operator has not got there yet.
    if let Some(c) = with("Synced", "False")
        && !text(c, "/reason").is_empty()
    {
        return Health::new(Degraded, message(c, text(c, "/reason")));
    }
    if let Some(c) = with("In-progress", "True") {
        return Health::new(Progressing, message(c, "in progress"));
    }
    waiting()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with(conditions: Value) -> Value {
        json!({"status": {"conditions": conditions}})
    }

    #[test]
    fn synchronisation_conditions_decide() {
        let c = |t: &str, s: &str| json!({"type": t, "status": s, "message": format!("{t}!")});
        let code = |v: Value| health("Product", &v).status;
        assert_eq!(code(json!({})), Progressing);
        assert_eq!(code(with(json!([]))), Progressing);
        assert_eq!(
            code(with(json!([c("Failed", "False"), c("Synced", "True")]))),
            Healthy
        );
        assert_eq!(code(with(json!([c("Ready", "True")]))), Healthy);
        let h = health(
            "Product",
            &with(json!([c("Orphan", "True"), c("Synced", "False")])),
        );
        assert_eq!((h.status, h.message.as_str()), (Degraded, "Orphan!"));
        assert_eq!(code(with(json!([c("Invalid", "True")]))), Degraded);
        assert_eq!(code(with(json!([c("Ready", "False")]))), Degraded);
        assert_eq!(code(with(json!([c("Synced", "False")]))), Progressing);
        assert_eq!(
            code(with(
                json!([{"type": "Synced", "status": "False", "reason": "SynchronizationFailed"}])
            )),
            Degraded
        );
        assert_eq!(code(with(json!([c("In-progress", "True")]))), Progressing);
    }

    #[test]
    fn the_api_manager_by_its_availability() {
        let available = |s: &str, reason: &str| json!({"status": {"conditions": [{"type": "Available", "status": s, "reason": reason}]}});
        assert_eq!(api_manager(&available("True", "")).status, Healthy);
        assert_eq!(
            api_manager(&available("False", "MissingWatchedSecrets")).status,
            Degraded
        );
        assert_eq!(api_manager(&available("False", "")).status, Progressing);
        assert_eq!(api_manager(&json!({})).status, Progressing);
    }

    #[test]
    fn suspended_or_awaiting_approval() {
        assert_eq!(
            health("Application", &json!({"status": {"state": "suspended"}})).status,
            Suspended
        );
        assert_eq!(
            health(
                "DeveloperUser",
                &json!({"status": {"developerUserState": "suspended"}})
            )
            .status,
            Suspended
        );
        let waiting =
            with(json!([{"type": "Waiting", "status": "True", "message": "awaiting approval"}]));
        assert_eq!(health("DeveloperAccount", &waiting).status, Suspended);
    }
}
