//! Drift reports for the `on-drift-detected` notification: which objects departed from Git,
//! in which fields, and who changed them (the field's manager in `metadata.managedFields`).
//!
//! Drift is live state departing from what was last synced — not Git moving ahead of the
//! cluster — so a report is only made while the app is compared at the revision its last
//! successful sync deployed.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use tiphys_diff::fields::managers_of;
use tiphys_model::application::SyncStatusCode;
use tiphys_sync::ObjectKey;

use crate::compare::CompareItem;

/// What drifted, as notifications see it (`drift` in conditions and templates).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    pub detected: bool,
    /// Changes with each new change (object versions and fields), the same after a restart.
    pub id: String,
    /// Self-heal put it back.
    pub reverted: bool,
    /// One line: `Deployment default/web: spec.replicas (by kubectl-scale)`.
    pub summary: String,
    pub objects: Vec<DriftedObject>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftedObject {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The fields that differ (the first few).
    pub fields: Vec<String>,
    /// Who set them, most recent first (Tiphys itself left out when others are named).
    pub managers: Vec<String>,
    /// Deleted from the cluster.
    pub deleted: bool,
}

impl DriftedObject {
    fn describe(&self) -> String {
        let ns = if self.namespace.is_empty() {
            String::new()
        } else {
            format!("{}/", self.namespace)
        };
        let what = if self.deleted {
            "deleted".to_string()
        } else if self.fields.is_empty() {
            "changed".to_string()
        } else {
            self.fields.join(", ")
        };
        let by = if self.managers.is_empty() {
            String::new()
        } else {
            format!(" (by {})", self.managers.join(", "))
        };
        format!("{} {ns}{}: {what}{by}", self.kind, self.name)
    }
}

/// The drifted objects of `items`: out of sync, desired, not hooks.
pub fn drifted(items: &[CompareItem]) -> impl Iterator<Item = &CompareItem> {
    items.iter().filter(|item| {
        !item.hook
            && !item.ignore_extraneous
            && item.status == SyncStatusCode::OutOfSync
            && item.desired.is_some()
    })
}

/// The drift in `items` (compared at the last synced revision), or none. Managers are read
/// from `full` (live objects with their `managedFields`, which the live cache does not keep)
/// where it has the object.
pub fn report(
    items: &[CompareItem],
    full: &HashMap<ObjectKey, Value>,
    own_manager: &str,
    reverted: bool,
) -> Option<DriftReport> {
    let mut objects = Vec::new();
    let mut id_parts = Vec::new();
    for item in drifted(items) {
        let key = &item.key;
        let mut object = DriftedObject {
            group: key.group.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            ..Default::default()
        };
        match &item.live {
            None => object.deleted = true,
            Some(live) => {
                let live = full.get(key).unwrap_or(live);
                object.fields = item.changed.iter().map(ToString::to_string).collect();
                let mut managers: Vec<String> = Vec::new();
                for path in &item.changed {
                    for m in managers_of(live, path) {
                        if !managers.contains(&m) {
                            managers.push(m);
                        }
                    }
                }
                if managers.iter().any(|m| m != own_manager) {
                    managers.retain(|m| m != own_manager);
                }
                object.managers = managers;
                let version = live
                    .pointer("/metadata/resourceVersion")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                id_parts.push(format!("{key:?}@{version}: {}", object.fields.join(",")));
            }
        }
        if object.deleted {
            id_parts.push(format!("{key:?} deleted"));
        }
        objects.push(object);
    }
    if objects.is_empty() {
        return None;
    }
    let summary = objects
        .iter()
        .map(DriftedObject::describe)
        .collect::<Vec<_>>()
        .join("; ");
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id_parts.join("\n").as_bytes());
    Some(DriftReport {
        detected: true,
        id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
        reverted,
        summary,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tiphys_diff::FieldPath;

    use super::*;

    fn item(name: &str, live: Option<serde_json::Value>, changed: &[&str]) -> CompareItem {
        CompareItem {
            key: tiphys_sync::ObjectKey {
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "default".into(),
                name: name.into(),
            },
            desired: Some(json!({})),
            live: live.map(Arc::new),
            status: SyncStatusCode::OutOfSync,
            changed: changed.iter().map(|p| FieldPath::parse(p)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_fields_and_who_changed_them() {
        let live = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "tiphys", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-scale", "time": "2026-01-02T00:00:00Z", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 5}});
        let items = vec![
            item("web", Some(live.clone()), &["spec.replicas"]),
            item("gone", None, &[]),
        ];
        let none = HashMap::new();
        let report = report(&items, &none, "tiphys", false).unwrap();
        assert_eq!(
            report.summary,
            "Deployment default/web: spec.replicas (by kubectl-scale); Deployment default/gone: deleted"
        );
        let mut newer = live;
        newer["metadata"]["resourceVersion"] = json!("8");
        let again = super::report(
            &[item("web", Some(newer), &["spec.replicas"])],
            &none,
            "tiphys",
            true,
        )
        .unwrap();
        assert_ne!(again.id, report.id);
        assert!(again.reverted);
    }

    #[test]
    fn nothing_out_of_sync_is_no_drift() {
        let mut synced = item("web", Some(json!({})), &[]);
        synced.status = SyncStatusCode::Synced;
        assert!(report(&[synced], &HashMap::new(), "tiphys", false).is_none());
    }
}
