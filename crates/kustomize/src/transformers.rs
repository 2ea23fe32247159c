//! The built-in transformers: namespace, name prefix/suffix, labels, annotations, replicas
//! and images, with kustomize's field specs for where each one writes.

use serde_json::{Map, Value, json};

use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource};

/// Kinds without a namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Node",
    "IngressClass",
    "CSIDriver",
    "CSINode",
    "RuntimeClass",
    "PodSecurityPolicy",
    "VolumeAttachment",
    "ComponentStatus",
    "CertificateSigningRequest",
    "ClusterRoleBindingList",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

pub fn namespace(k: &Kustomization, resources: &mut [Resource]) {
    let Some(ns) = k.spec["namespace"].as_str().filter(|n| !n.is_empty()) else {
        return;
    };
    let service_accounts: Vec<String> = resources
        .iter()
        .filter(|r| r.kind() == "ServiceAccount")
        .map(|r| r.origin_name.clone())
        .collect();
    for r in resources.iter_mut() {
        let kind = r.kind().to_string();
        if kind == "Namespace" {
            r.object["metadata"]["name"] = json!(ns);
            continue;
        }
        if !is_cluster_scoped(&kind) {
            r.object["metadata"]["namespace"] = json!(ns);
        }
        if (kind == "RoleBinding" || kind == "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = r.object.get_mut("subjects")
        {
            for s in subjects {
                // Service account subjects that are part of this build, or left in
                // `default`, move with the namespace.
                let listed = s["name"]
                    .as_str()
                    .is_some_and(|n| service_accounts.iter().any(|sa| sa == n));
                let ours = s["kind"] == "ServiceAccount" && (listed || s["namespace"] == "default");
                if ours {
                    s["namespace"] = json!(ns);
                }
            }
        }
    }
}

pub fn prefix_suffix(k: &Kustomization, resources: &mut [Resource]) {
    let prefix = k.spec["namePrefix"].as_str().unwrap_or_default();
    let suffix = k.spec["nameSuffix"].as_str().unwrap_or_default();
    if prefix.is_empty() && suffix.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        // kustomize leaves these names alone: they are identities outside the app.
        if matches!(
            r.kind(),
            "Namespace" | "CustomResourceDefinition" | "APIService"
        ) {
            continue;
        }
        let name = format!("{prefix}{}{suffix}", r.name());
        r.object["metadata"]["name"] = json!(name);
    }
}

/// Where a transformer writes within kinds: `(kinds, path, create)`; empty kinds = all.
type FieldSpec = (&'static [&'static str], &'static [&'static str], bool);

const WORKLOADS: &[&str] = &["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"];
const TEMPLATED: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "StatefulSet",
    "Job",
    "ReplicationController",
];

const LABEL_SELECTORS: &[FieldSpec] = &[
    (
        &["Service", "ReplicationController"],
        &["spec", "selector"],
        true,
    ),
    (WORKLOADS, &["spec", "selector", "matchLabels"], true),
    (
        &["PodDisruptionBudget"],
        &["spec", "selector", "matchLabels"],
        false,
    ),
    (
        &["NetworkPolicy"],
        &["spec", "podSelector", "matchLabels"],
        false,
    ),
];

const TEMPLATE_LABELS: &[FieldSpec] = &[
    (TEMPLATED, &["spec", "template", "metadata", "labels"], true),
    (
        &["CronJob"],
        &["spec", "jobTemplate", "metadata", "labels"],
        true,
    ),
    (
        &["CronJob"],
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "metadata",
            "labels",
        ],
        true,
    ),
    (
        &["StatefulSet"],
        &["spec", "volumeClaimTemplates[]", "metadata", "labels"],
        true,
    ),
];

const TEMPLATE_ANNOTATIONS: &[FieldSpec] = &[
    (
        TEMPLATED,
        &["spec", "template", "metadata", "annotations"],
        true,
    ),
    (
        &["CronJob"],
        &["spec", "jobTemplate", "metadata", "annotations"],
        true,
    ),
    (
        &["CronJob"],
        &[
            "spec",
            "jobTemplate",
            "spec",
            "template",
            "metadata",
            "annotations",
        ],
        true,
    ),
];

/// Merge `pairs` into the map at `path` (creating it when `create`).
fn set_at(value: &mut Value, path: &[&str], pairs: &Map<String, Value>, create: bool) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::Object(m) = value {
            m.extend(pairs.clone());
        } else if create || value.is_null() {
            *value = Value::Object(pairs.clone());
        }
        return;
    };
    if let Some(list_field) = first.strip_suffix("[]") {
        if let Some(Value::Array(items)) = value.get_mut(list_field) {
            for item in items {
                set_at(item, rest, pairs, create);
            }
        }
        return;
    }
    let Value::Object(m) = value else { return };
    if !m.contains_key(*first) {
        if !create {
            return;
        }
        m.insert(first.to_string(), json!({}));
    }
    if let Some(next) = m.get_mut(*first) {
        if next.is_null() && create {
            *next = json!({});
        }
        set_at(next, rest, pairs, create);
    }
}

fn apply_specs(r: &mut Resource, specs: &[FieldSpec], pairs: &Map<String, Value>) {
    let kind = r.kind().to_string();
    for (kinds, path, create) in specs {
        if kinds.is_empty() || kinds.contains(&kind.as_str()) {
            set_at(&mut r.object, path, pairs, *create);
        }
    }
}

fn string_map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn labels(k: &Kustomization, resources: &mut [Resource]) -> Result<(), KustomizeError> {
    let mut sets: Vec<(Map<String, Value>, bool, bool)> = Vec::new();
    let common = string_map(&k.spec["commonLabels"]);
    if !common.is_empty() {
        sets.push((common, true, true));
    }
    for (i, l) in k.spec["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if l.get("fields").is_some() {
            return Err(KustomizeError::Unsupported {
                path: k.path(),
                field: format!("labels[{i}].fields"),
            });
        }
        let selectors = l["includeSelectors"].as_bool().unwrap_or(false);
        let templates = l["includeTemplates"].as_bool().unwrap_or(false) || selectors;
        sets.push((string_map(&l["pairs"]), selectors, templates));
    }
    for (pairs, selectors, templates) in sets {
        for r in resources.iter_mut() {
            set_at(&mut r.object, &["metadata", "labels"], &pairs, true);
            if templates {
                apply_specs(r, TEMPLATE_LABELS, &pairs);
            }
            if selectors {
                apply_specs(r, LABEL_SELECTORS, &pairs);
            }
        }
    }
    Ok(())
}

pub fn annotations(k: &Kustomization, resources: &mut [Resource]) {
    let pairs = string_map(&k.spec["commonAnnotations"]);
    if pairs.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        set_at(&mut r.object, &["metadata", "annotations"], &pairs, true);
        apply_specs(r, TEMPLATE_ANNOTATIONS, &pairs);
    }
}

pub fn replicas(k: &Kustomization, resources: &mut [Resource]) -> Result<(), KustomizeError> {
    for (i, rep) in k.spec["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = rep["name"].as_str().unwrap_or_default();
        let count = rep["count"]
            .as_i64()
            .ok_or_else(|| KustomizeError::Invalid {
                path: k.path(),
                field: format!("replicas[{i}].count"),
                message: "must be an integer".into(),
            })?;
        for r in resources.iter_mut() {
            let scalable = matches!(
                r.kind(),
                "Deployment" | "ReplicaSet" | "StatefulSet" | "ReplicationController"
            );
            if scalable && (r.name() == name || r.origin_name == name) {
                if !r.object["spec"].is_object() {
                    r.object["spec"] = json!({});
                }
                r.object["spec"]["replicas"] = json!(count);
            }
        }
    }
    Ok(())
}

/// `name[:tag][@digest]` split into its parts.
fn split_image(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    // A ':' after the last '/' is a tag; before it, a registry port.
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

pub fn images(k: &Kustomization, resources: &mut [Resource]) -> Result<(), KustomizeError> {
    let Some(images) = k.spec["images"].as_array() else {
        return Ok(());
    };
    for r in resources.iter_mut() {
        rewrite_containers(&mut r.object, images);
    }
    Ok(())
}

fn rewrite_containers(value: &mut Value, images: &[Value]) {
    match value {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                if key == "containers" || key == "initContainers" {
                    if let Value::Array(containers) = child {
                        for c in containers {
                            if let Some(image) = c["image"].as_str().map(str::to_string)
                                && let Some(new) = rewrite_image(&image, images)
                            {
                                c["image"] = json!(new);
                            }
                        }
                    }
                } else {
                    rewrite_containers(child, images);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_containers(i, images)),
        _ => {}
    }
}

fn rewrite_image(image: &str, images: &[Value]) -> Option<String> {
    let (name, tag, digest) = split_image(image);
    let rule = images.iter().find(|i| i["name"].as_str() == Some(name))?;
    let new_name = rule["newName"].as_str().unwrap_or(name);
    if let Some(d) = rule["digest"].as_str() {
        return Some(format!("{new_name}@{d}"));
    }
    if let Some(t) = rule["newTag"].as_str() {
        return Some(format!("{new_name}:{t}"));
    }
    let mut out = new_name.to_string();
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_and_rewrite() {
        assert_eq!(split_image("nginx"), ("nginx", None, None));
        assert_eq!(split_image("nginx:1.27"), ("nginx", Some("1.27"), None));
        assert_eq!(
            split_image("localhost:5000/app:v1@sha256:abc"),
            ("localhost:5000/app", Some("v1"), Some("sha256:abc"))
        );
        let rules = vec![json!({"name": "nginx", "newName": "registry/nginx", "newTag": "1.28"})];
        assert_eq!(
            rewrite_image("nginx:1.27", &rules).as_deref(),
            Some("registry/nginx:1.28")
        );
        assert_eq!(rewrite_image("redis", &rules), None);
    }
}
