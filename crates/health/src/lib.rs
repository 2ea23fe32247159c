//! Health of live Kubernetes objects, assessed the way Argo CD does: built-in checks for the
//! workload and networking kinds, `Application` for app-of-apps, and none for plain data
//! (ConfigMaps, Secrets, RBAC…), which therefore do not count towards an app's health.
//!
//! Pure: a live object in, a [`Health`] out.
#![forbid(unsafe_code)]

mod builtin;
pub mod lua;

use serde_json::Value;
use tiphys_model::application::HealthStatusCode;

pub use builtin::builtin;
pub use lua::CustomHealth;

/// The health of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatusCode,
    pub message: String,
}

impl Health {
    pub fn new(status: HealthStatusCode, message: impl Into<String>) -> Health {
        Health {
            status,
            message: message.into(),
        }
    }

    pub fn healthy() -> Health {
        Health::new(HealthStatusCode::Healthy, "")
    }
}

/// The health of a live object, or None when its kind has no health check.
///
/// An object being deleted is Progressing whatever its kind, as in Argo CD.
pub fn assess(live: &Value) -> Option<Health> {
    assess_with(live, &CustomHealth::default())
}

/// Like [`assess`], with argocd-cm's custom Lua checks taking precedence over built-in ones.
pub fn assess_with(live: &Value, custom: &CustomHealth) -> Option<Health> {
    if live.pointer("/metadata/deletionTimestamp").is_some() {
        return Some(Health::new(
            HealthStatusCode::Progressing,
            "Pending deletion",
        ));
    }
    let api_version = live.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or("");
    if !custom.is_empty()
        && let Some(health) = custom.assess(group, kind, live)
    {
        return Some(health);
    }
    builtin(group, kind, live)
}

/// The worse of two health codes, in Argo CD's order:
/// Healthy < Suspended < Progressing < Missing < Degraded < Unknown.
pub fn worse(a: HealthStatusCode, b: HealthStatusCode) -> HealthStatusCode {
    a.max(b)
}

/// An app's health: the worst of its resources' (Healthy when none has a health check).
pub fn aggregate<'a>(codes: impl IntoIterator<Item = &'a HealthStatusCode>) -> HealthStatusCode {
    codes
        .into_iter()
        .copied()
        .fold(HealthStatusCode::Healthy, worse)
}
