//! kustomize's default ("legacy") output order: by kind priority, then group/version/kind,
//! then namespace and name. `sortOptions.legacySortOptions` may replace the kind lists.

use serde_json::Value;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Position of `kind`: in `first`, after all of them, or in `last` at the end.
fn rank(kind: &str, first: &[String], last: &[String]) -> usize {
    if let Some(i) = first.iter().position(|k| k == kind) {
        return i;
    }
    if let Some(i) = last.iter().position(|k| k == kind) {
        return first.len() + 1 + i;
    }
    first.len()
}

fn gvk(v: &Value) -> String {
    let av = v["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
    // kustomize writes the empty (core) group as `~G`, which sorts after every named group.
    let group = if group.is_empty() { "~G" } else { group };
    format!(
        "{group}_{version}_{}",
        v["kind"].as_str().unwrap_or_default()
    )
}

/// Sort in kustomize's legacy order; `custom` is `sortOptions.legacySortOptions`.
pub fn legacy_sort(objects: &mut Vec<Value>, custom: &Value) {
    let list = |field: &str, default: &[&str]| -> Vec<String> {
        match custom[field].as_array() {
            Some(kinds) => kinds
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    };
    let (first, last) = (
        list("orderFirst", ORDER_FIRST),
        list("orderLast", ORDER_LAST),
    );
    // Compute each key once; comparing freshly built strings would dominate large builds.
    let mut keyed: Vec<((usize, String, String, String), Value)> = objects
        .drain(..)
        .map(|v| {
            let key = (
                rank(v["kind"].as_str().unwrap_or_default(), &first, &last),
                gvk(&v),
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (key, v)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    objects.extend(keyed.into_iter().map(|(_, v)| v));
}
