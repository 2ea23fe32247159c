//! The built-in transformers: namespace, name prefix/suffix, labels, annotations, replicas
//! and images, with kustomize's field specs for where each one writes.

use serde_json::{Map, Value, json};

use crate::config::{
    FieldSpec, Gvk, TransformerConfig, parse_field_spec, visit, visit_at, visit_specs,
};
use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource};

/// Kinds without a namespace, as kustomize v5.5's built-in schema knows them (newer kinds,
/// like ValidatingAdmissionPolicy, and custom kinds are namespaced as far as it knows).
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
];

/// Whether objects of `group`/`kind` have no namespace. Only the built-in groups' kinds: a
/// custom `example.com/Namespace` is a namespaced kind like any other custom one.
pub fn is_cluster_scoped(group: &str, kind: &str) -> bool {
    let built_in = group.is_empty() || group.ends_with(".k8s.io") || group == "policy";
    built_in && CLUSTER_SCOPED.contains(&kind)
}

/// Which ServiceAccount subjects of (Cluster)RoleBindings follow the namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Subjects {
    /// Subjects named `default` (every namespace has that account).
    #[default]
    DefaultOnly,
    AllServiceAccounts,
    None,
}

/// NamespaceTransformer's options (the `namespace` field uses the defaults).
#[derive(Debug, Clone, Copy, Default)]
pub struct NamespaceOptions {
    /// Only fill namespaces that are not set.
    pub unset_only: bool,
    pub subjects: Subjects,
}

pub fn namespace(k: &Kustomization, resources: &mut [Resource], config: &TransformerConfig) {
    namespace_with(k, resources, config, NamespaceOptions::default());
}

pub fn namespace_with(
    k: &Kustomization,
    resources: &mut [Resource],
    config: &TransformerConfig,
    options: NamespaceOptions,
) {
    let Some(ns) = k.spec["namespace"].as_str().filter(|n| !n.is_empty()) else {
        return;
    };
    let unset = |field: &Value| field.is_null() || field == "";
    for r in resources.iter_mut() {
        r.note_namespace_change();
        // The core Namespace object becomes the namespace; a custom kind named Namespace is
        // just namespaced.
        if r.kind() == "Namespace" && r.group().is_empty() {
            r.object["metadata"]["name"] = json!(ns);
            continue;
        }
        // Binding subjects are handled here whatever the field specs say, as kustomize
        // does; specs naming `subjects` are only what switches them on for the defaults.
        if matches!(r.kind(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = r.object.get_mut("subjects")
        {
            for subject in subjects.iter_mut() {
                // Subjects that are accounts of this build follow them through name
                // references (names.rs); this is only kustomize's rule for the rest.
                let follows = match options.subjects {
                    Subjects::None => false,
                    Subjects::AllServiceAccounts => subject["kind"] == "ServiceAccount",
                    // Any subject named `default`, whatever its kind, as kustomize does.
                    Subjects::DefaultOnly => subject["name"] == "default",
                };
                if follows && (!options.unset_only || unset(&subject["namespace"])) {
                    subject["namespace"] = json!(ns);
                }
            }
        }
        let cluster_scoped = is_cluster_scoped(r.group(), r.kind());
        for spec in &config.namespace {
            if !spec.gvk.selects_resource(r) {
                continue;
            }
            match spec.path.as_slice() {
                [m, n] if m == "metadata" && n == "namespace" && cluster_scoped => {}
                [s] if s == "subjects" => {}
                path => visit(&mut r.object, path, spec.create, &mut |field| {
                    let settable = field.is_string() || field.is_null();
                    if settable && (!options.unset_only || unset(field)) {
                        *field = json!(ns);
                    }
                }),
            }
        }
    }
}

pub fn prefix_suffix(k: &Kustomization, resources: &mut [Resource], config: &TransformerConfig) {
    let prefix = k.spec["namePrefix"].as_str().unwrap_or_default();
    let suffix = k.spec["nameSuffix"].as_str().unwrap_or_default();
    for (affix, specs, at_end) in [
        (prefix, &config.name_prefix, false),
        (suffix, &config.name_suffix, true),
    ] {
        if affix.is_empty() {
            continue;
        }
        for r in resources.iter_mut() {
            // kustomize leaves these names alone: they are identities outside the app.
            let skipped = matches!(r.kind(), "Namespace" | "CustomResourceDefinition")
                || (r.kind() == "APIService" && r.group() == "apiregistration.k8s.io");
            if skipped {
                continue;
            }
            visit_specs(r, specs, &mut |field| {
                if let Some(name) = field.as_str() {
                    *field = json!(if at_end {
                        format!("{name}{affix}")
                    } else {
                        format!("{affix}{name}")
                    });
                }
            });
            // The name between prefix and suffix is a name the object had (replicas and
            // references may use it).
            r.note_rename();
            r.affixes.push(format!(
                "{}{affix}",
                if at_end { "suffix:" } else { "prefix:" }
            ));
        }
    }
}

fn string_map(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub fn labels(
    k: &Kustomization,
    resources: &mut [Resource],
    config: &TransformerConfig,
) -> Result<(), KustomizeError> {
    let mut sets: Vec<(Map<String, Value>, Vec<FieldSpec>)> = Vec::new();
    for (i, l) in k.spec["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut specs = Vec::new();
        for (j, fs) in l["fields"].as_array().into_iter().flatten().enumerate() {
            let at = format!("labels[{i}].fields[{j}]");
            specs.push(
                parse_field_spec(fs, &at).map_err(|message| KustomizeError::Invalid {
                    path: k.path(),
                    field: at.clone(),
                    message,
                })?,
            );
        }
        let defaults = if l["includeSelectors"].as_bool().unwrap_or(false) {
            config.common_labels.clone()
        } else if l["includeTemplates"].as_bool().unwrap_or(false) {
            config.template_labels.clone()
        } else {
            vec![FieldSpec::new(Gvk::default(), "metadata/labels", true)]
        };
        for spec in defaults.into_iter().chain(config.labels.iter().cloned()) {
            if !specs.contains(&spec) {
                specs.push(spec);
            }
        }
        sets.push((string_map(&l["pairs"]), specs));
    }
    // `commonLabels` is applied after `labels`: on a key both set, it wins (as in kustomize).
    let common = string_map(&k.spec["commonLabels"]);
    if !common.is_empty() {
        sets.push((common, config.common_labels.clone()));
    }
    for (pairs, specs) in sets {
        for r in resources.iter_mut() {
            set_pairs(r, &specs, &pairs);
        }
    }
    Ok(())
}

/// Set each pair in every field `specs` select for `r`, as kustomize's label and annotation
/// transformers do: the fields it adds a key to share that value from now on, and a field that
/// had the key already is written through whatever it shares (see `shared_values`).
fn set_pairs(r: &mut Resource, specs: &[FieldSpec], pairs: &Map<String, Value>) {
    let (group, version, kind) = (
        r.group().to_string(),
        r.version().to_string(),
        r.kind().to_string(),
    );
    let selected: Vec<&FieldSpec> = specs
        .iter()
        .filter(|s| s.gvk.selects(&group, &version, &kind))
        .collect();
    for (key, value) in pairs {
        let (mut added, mut had) = (Vec::new(), Vec::new());
        for spec in &selected {
            let mut at = String::new();
            visit_at(
                &mut r.object,
                &spec.path,
                spec.create,
                &mut at,
                &mut |at, field| match field {
                    Value::Object(map) if map.contains_key(key) => had.push(at.to_string()),
                    Value::Object(map) => {
                        map.insert(key.clone(), value.clone());
                        added.push(at.to_string());
                    }
                    Value::Null => {
                        *field = json!({ key: value });
                        added.push(at.to_string());
                    }
                    _ => {}
                },
            );
        }
        for at in had.iter().filter(|at| !added.contains(at)) {
            r.shared_values.write(&mut r.object, at, key, value);
        }
        r.shared_values.share(key, added);
    }
}

pub fn annotations(k: &Kustomization, resources: &mut [Resource], config: &TransformerConfig) {
    let pairs = string_map(&k.spec["commonAnnotations"]);
    if pairs.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        set_pairs(r, &config.common_annotations, &pairs);
    }
}

pub fn replicas(
    k: &Kustomization,
    resources: &mut [Resource],
    config: &TransformerConfig,
) -> Result<(), KustomizeError> {
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
        let mut found = false;
        for r in resources.iter_mut().filter(|r| r.has_had_name(name)) {
            if config
                .replicas
                .iter()
                .any(|spec| spec.gvk.selects_resource(r))
            {
                found = true;
                visit_specs(r, &config.replicas, &mut |field| *field = json!(count));
            }
        }
        // kustomize refuses a count for a name no scalable resource has.
        if !found {
            let kinds: Vec<&str> = config
                .replicas
                .iter()
                .filter_map(|spec| spec.gvk.kind.as_deref())
                .collect();
            return Err(KustomizeError::Invalid {
                path: k.path(),
                field: format!("replicas[{i}]"),
                message: format!(
                    "resource with name {name} does not match a config with the following kinds {kinds:?}"
                ),
            });
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

pub fn images(
    k: &Kustomization,
    resources: &mut [Resource],
    config: &TransformerConfig,
) -> Result<(), KustomizeError> {
    let Some(images) = k.spec["images"].as_array() else {
        return Ok(());
    };
    for r in resources.iter_mut() {
        rewrite_containers(&mut r.object, images);
        visit_specs(r, &config.images, &mut |field| {
            if let Some(new) = field.as_str().and_then(|i| rewrite_image(i, images)) {
                *field = json!(new);
            }
        });
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
