//! Health of live Kubernetes objects, assessed the way Argo CD does: argocd-cm's Lua scripts
//! first, then built-in checks for the workload and networking kinds and `Application` for
//! app-of-apps, then Tiphys's library for custom resources (`library/`); none for plain data
//! (ConfigMaps, Secrets, RBAC…), which therefore do not count towards an app's health.
//!
//! Pure: a live object in, a [`Health`] out.
#![forbid(unsafe_code)]

mod builtin;
pub mod library;
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

/// `message`, or `fallback` when it is empty.
pub(crate) fn message_or(message: String, fallback: &str) -> String {
    if message.is_empty() {
        fallback.to_string()
    } else {
        message
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
    explain(live, custom).map(|(health, _)| health)
}

/// Which check decided an object's health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// It is being deleted.
    Deleting,
    /// An argocd-cm script (its key).
    Script(String),
    /// A built-in check for a Kubernetes (or Argo CD) kind.
    BuiltIn,
    /// The library's rule for custom resources.
    Library(library::Rule),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Deleting => write!(f, "being deleted"),
            Source::Script(key) => write!(f, "argocd-cm script {key}"),
            Source::BuiltIn => write!(f, "built-in check"),
            Source::Library(rule) => write!(f, "health library: {rule}"),
        }
    }
}

/// Groups of Kubernetes' own APIs: the library leaves their kinds alone (those without a
/// built-in check have no health, as in Argo CD). Listed rather than matched on `.k8s.io`:
/// custom resources live under that suffix too (Gateway API, the VerticalPodAutoscaler in
/// `autoscaling.k8s.io`, the Spark operator, volume snapshots).
fn kubernetes_group(group: &str) -> bool {
    matches!(
        group,
        "" | "apps"
            | "batch"
            | "autoscaling"
            | "policy"
            | "extensions"
            | "admissionregistration.k8s.io"
            | "apiextensions.k8s.io"
            | "apiregistration.k8s.io"
            | "apiserverinternal.k8s.io"
            | "authentication.k8s.io"
            | "authorization.k8s.io"
            | "certificates.k8s.io"
            | "coordination.k8s.io"
            | "discovery.k8s.io"
            | "events.k8s.io"
            | "flowcontrol.apiserver.k8s.io"
            | "internal.apiserver.k8s.io"
            | "metrics.k8s.io"
            | "networking.k8s.io"
            | "node.k8s.io"
            | "rbac.authorization.k8s.io"
            | "resource.k8s.io"
            | "scheduling.k8s.io"
            | "storage.k8s.io"
            | "storagemigration.k8s.io"
    )
}

/// The health of `live` and which check decided it, or None when no check applies.
pub fn explain(live: &Value, custom: &CustomHealth) -> Option<(Health, Source)> {
    if live.pointer("/metadata/deletionTimestamp").is_some() {
        return Some((
            Health::new(HealthStatusCode::Progressing, pending_deletion(live)),
            Source::Deleting,
        ));
    }
    let api_version = live.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or("");
    if !custom.is_empty()
        && let Some((health, key)) = custom.decide(group, kind, live)
    {
        return Some((health, Source::Script(key)));
    }
    if let Some(health) = builtin(group, kind, live) {
        return Some((health, Source::BuiltIn));
    }
    if kubernetes_group(group) || !custom.library_enabled(group, kind) {
        return None;
    }
    library::library(group, kind, live).map(|(health, rule)| (health, Source::Library(rule)))
}

/// The string at `pointer`, empty when absent or not a string.
pub(crate) fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The integer at `pointer`, zero when absent.
pub(crate) fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The strings of the array at `pointer` (none when it is absent or not an array).
pub(crate) fn strings<'a>(v: &'a Value, pointer: &str) -> Vec<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Why an object being deleted is still there: the finalizers holding it, if any.
fn pending_deletion(live: &Value) -> String {
    let finalizers = strings(live, "/metadata/finalizers");
    if finalizers.is_empty() {
        "Pending deletion".to_string()
    } else {
        format!(
            "Pending deletion; blocked by finalizers: {}",
            finalizers.join(", ")
        )
    }
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
