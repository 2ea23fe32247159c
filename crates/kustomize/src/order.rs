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
    // Keys are computed once: each distinct group/version/kind string is replaced by its
    // rank, so sorting compares integers before strings.
    let gvk_strings: Vec<String> = objects.iter().map(gvk).collect();
    let mut distinct: Vec<&str> = gvk_strings.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    // Within a kind, kustomize compares `namespace|name` as one string, an empty namespace
    // written `~X` (after every letter) and an empty name `~N`.
    let ns_name = |v: &Value| -> String {
        let field = |f: &str, empty: &'static str| {
            v["metadata"][f]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(empty)
                .to_string()
        };
        format!("{}|{}", field("namespace", "~X"), field("name", "~N"))
    };
    // Among kinds named Namespace, the core one comes first (kubectl kustomize prints it
    // before any custom Namespace kind, though `~G` otherwise sorts after named groups).
    let custom_namespace = |v: &Value| v["kind"] == "Namespace" && v["apiVersion"] != "v1";
    let mut order: Vec<(usize, bool, usize, String, usize)> = objects
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                rank(v["kind"].as_str().unwrap_or_default(), &first, &last),
                custom_namespace(v),
                distinct
                    .binary_search(&gvk_strings[i].as_str())
                    .unwrap_or(0),
                ns_name(v),
                i,
            )
        })
        .collect();
    order.sort_unstable();
    let mut slots: Vec<Option<Value>> = objects.drain(..).map(Some).collect();
    objects.extend(order.into_iter().filter_map(|(.., i)| slots[i].take()));
}
