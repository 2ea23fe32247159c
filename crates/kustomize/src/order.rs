//! kustomize's default ("legacy") output order: by kind priority, then group/version/kind,
//! then namespace and name.

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

fn rank(kind: &str) -> usize {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return ORDER_FIRST.len() + 1 + i;
    }
    ORDER_FIRST.len()
}

fn gvk(v: &Value) -> String {
    let av = v["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
    format!(
        "{group}_{version}_{}",
        v["kind"].as_str().unwrap_or_default()
    )
}

pub fn legacy_sort(objects: &mut [Value]) {
    objects.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                rank(v["kind"].as_str().unwrap_or_default()),
                gvk(v),
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
}
