//! CustomResourceDefinitions: serving their resources, their status conditions, and the
//! structural-schema pruning, defaulting and validation of custom resources.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::Cluster;
use crate::api;
use crate::clock;
use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{GroupResource, ResourceType, ScalePaths};
#[cfg(test)]
use crate::write::FieldValidation;
use crate::write::WriteOptions;

const ALL_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

fn crd_resource() -> GroupResource {
    GroupResource {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
    }
}

/// The served versions of a CRD as resource types.
pub fn resource_types(crd: &Value) -> Vec<Arc<ResourceType>> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"] != json!(true) {
            continue;
        }
        let subresources = &version["subresources"];
        let scale = subresources.get("scale").map(|s| ScalePaths {
            spec_replicas: s["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .into(),
            status_replicas: s["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .into(),
            label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
        });
        out.push(Arc::new(ResourceType {
            group: group.into(),
            version: version["name"].as_str().unwrap_or_default().into(),
            plural: names["plural"].as_str().unwrap_or_default().into(),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_lowercase()),
            kind: kind.into(),
            list_kind: names["listKind"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{kind}List")),
            namespaced: spec["scope"] == "Namespaced",
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            verbs: ALL_VERBS.to_vec(),
            status_subresource: subresources.get("status").is_some(),
            scale,
            builtin: false,
            tracks_generation: true,
            schema: version["schema"]
                .get("openAPIV3Schema")
                .map(|s| Arc::new(s.clone())),
            printer_columns: version["additionalPrinterColumns"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        }));
    }
    out
}

/// A CRD was written: serve its versions and report it Established.
pub fn register(cluster: &Cluster, crd: &Value) {
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if crd["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    cluster.registry.set_custom(&name, resource_types(crd));
    let names = crd["spec"]["names"].clone();
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == json!(true))
        .map(|v| v["name"].clone())
        .collect();
    let already = crd["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    }) && crd["status"]["acceptedNames"] == names;
    if already {
        return;
    }
    let now = clock::now_rfc3339();
    let _ = api::update_internal(
        cluster,
        &crd_resource(),
        "",
        &name,
        "kube-apiserver",
        api::Part::Status,
        |obj| {
            let mut stored = obj["status"]["storedVersions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for v in &storage {
                if !stored.contains(v) {
                    stored.push(v.clone());
                }
            }
            obj["status"] = json!({
                "acceptedNames": names,
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
                ],
                "storedVersions": stored,
            });
        },
    );
}

/// A CRD is gone: stop serving it and delete its objects.
pub fn unregister(cluster: &Cluster, crd: &Value) {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let gr = GroupResource {
        group: crd["spec"]["group"].as_str().unwrap_or_default().into(),
        resource: crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .into(),
    };
    cluster.registry.set_custom(name, Vec::new());
    cluster.store.drop_resource(&gr);
}

/// Re-serve every stored CRD (after a restart with `--data-dir`).
pub fn restore(cluster: &Cluster) {
    let (_, crds) = cluster.store.list(&crd_resource(), None);
    for stored in crds {
        if let Ok(crd) = stored.value() {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            cluster.registry.set_custom(&name, resource_types(&crd));
        }
    }
}

/// Checks a real API server makes on a CRD before accepting it.
pub fn validate_definition(crd: &Value) -> ApiResult<()> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &crd["spec"];
    let mut causes = Vec::new();
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::required("spec.group", ""));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural", ""));
    }
    if spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        causes.push(Cause::required("spec.names.kind", ""));
    }
    if !matches!(spec["scope"].as_str(), Some("Namespaced" | "Cluster")) {
        causes.push(Cause::not_supported(
            "spec.scope",
            &spec["scope"],
            &[json!("Cluster"), json!("Namespaced")],
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    } else if versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count()
        != 1
    {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(versions.len()),
            "must have exactly one version marked as storage version",
        ));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            causes,
        ))
    }
}

/// Prune unknown fields, apply schema defaults and validate a custom resource.
pub fn prune_default_validate(
    rt: &ResourceType,
    schema: &Value,
    obj: &mut Value,
    opts: &mut WriteOptions,
) -> ApiResult<()> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut ctx = Walk {
        causes: Vec::new(),
        unknown: Vec::new(),
    };
    if let Value::Object(map) = obj {
        let props = &schema["properties"];
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            match props.get(&key) {
                Some(s) => {
                    if let Some(v) = map.get_mut(&key) {
                        ctx.walk(v, s, &key);
                    }
                }
                None if schema["x-kubernetes-preserve-unknown-fields"] == json!(true) => {}
                None => {
                    ctx.unknown.push(key.clone());
                    map.remove(&key);
                }
            }
        }
        apply_defaults(map, schema, "", &mut ctx);
    }
    crate::write::report_unknown(rt, &ctx.unknown, opts)?;
    if !ctx.causes.is_empty() {
        return Err(ApiError::invalid(&rt.group, &rt.kind, &name, ctx.causes));
    }
    Ok(())
}

struct Walk {
    causes: Vec<Cause>,
    unknown: Vec<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn apply_defaults(map: &mut Map<String, Value>, schema: &Value, path: &str, ctx: &mut Walk) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    for (key, prop) in props {
        if !map.contains_key(key)
            && let Some(default) = prop.get("default")
        {
            map.insert(key.clone(), default.clone());
        }
    }
    for required in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !map.contains_key(required) {
            let field = if path.is_empty() {
                required.to_string()
            } else {
                format!("{path}.{required}")
            };
            ctx.causes.push(Cause::required(field, ""));
        }
    }
}

impl Walk {
    fn walk(&mut self, value: &mut Value, schema: &Value, path: &str) {
        if value.is_null() && schema["nullable"] == json!(true) {
            return;
        }
        let int_or_string = schema["x-kubernetes-int-or-string"] == json!(true);
        if let Some(want) = schema["type"].as_str() {
            let have = type_name(value);
            let ok = have == want
                || (want == "number" && have == "integer")
                || (int_or_string && matches!(have, "integer" | "string"));
            if !ok {
                self.causes.push(Cause::type_invalid(
                    path,
                    value,
                    format!(
                        "Invalid value: \"{have}\": {path} in body must be of type {want}: {}",
                        shown(value)
                    ),
                ));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            self.causes.push(Cause::not_supported(path, value, allowed));
        }
        if let Some(n) = value.as_f64() {
            if let Some(max) = schema["maximum"].as_f64() {
                let exclusive = schema["exclusiveMaximum"] == json!(true);
                if n > max || (exclusive && n == max) {
                    self.causes.push(Cause::invalid(
                        path,
                        value,
                        &format!(
                            "{path} in body should be less than or equal to {}",
                            schema["maximum"]
                        ),
                    ));
                }
            }
            if let Some(min) = schema["minimum"].as_f64() {
                let exclusive = schema["exclusiveMinimum"] == json!(true);
                if n < min || (exclusive && n == min) {
                    self.causes.push(Cause::invalid(
                        path,
                        value,
                        &format!(
                            "{path} in body should be greater than or equal to {}",
                            schema["minimum"]
                        ),
                    ));
                }
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
                self.causes.push(Cause {
                    reason: "FieldValueTooLong",
                    message: format!("Too long: may not be longer than {}", schema["maxLength"]),
                    field: path.into(),
                });
            }
            if schema["minLength"].as_u64().is_some_and(|m| len < m) {
                self.causes.push(Cause::invalid(
                    path,
                    value,
                    &format!(
                        "{path} in body should be at least {} chars long",
                        schema["minLength"]
                    ),
                ));
            }
        }
        match value {
            Value::Object(map) => {
                let preserve = schema["x-kubernetes-preserve-unknown-fields"] == json!(true);
                let props = schema["properties"].as_object();
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    let child_path = format!("{path}.{key}");
                    let child_schema = props.and_then(|p| p.get(&key)).or(additional);
                    match child_schema {
                        Some(s) => {
                            if let Some(v) = map.get_mut(&key) {
                                self.walk(v, s, &child_path);
                            }
                        }
                        None if preserve
                            || schema.get("additionalProperties") == Some(&json!(true)) => {}
                        None if props.is_none() && schema["type"].as_str() != Some("object") => {}
                        None => {
                            self.unknown.push(child_path);
                            map.remove(&key);
                        }
                    }
                }
                apply_defaults(map, schema, path, self);
            }
            Value::Array(items) => {
                if let Some(max) = schema["maxItems"].as_u64()
                    && items.len() as u64 > max
                {
                    self.causes.push(Cause {
                        reason: "FieldValueTooMany",
                        message: format!(
                            "Too many: {}: must have at most {max} items",
                            items.len()
                        ),
                        field: path.into(),
                    });
                }
                if schema["x-kubernetes-list-type"] == "set" {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            self.causes
                                .push(Cause::duplicate(format!("{path}[{i}]"), item));
                        }
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.walk(item, item_schema, &format!("{path}[{i}]"));
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["color"], "properties": {
            "color": {"type": "string", "enum": ["red", "green", "blue"]},
            "replicas": {"type": "integer", "maximum": 10, "default": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        }}}})
    }

    fn rt() -> ResourceType {
        let crd = json!({"metadata": {"name": "widgets.ref.example.com"}, "spec": {"group": "ref.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"}, "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": widget_schema()}}]}});
        (*resource_types(&crd)[0]).clone()
    }

    #[test]
    fn defaults_prunes_and_validates() {
        let mut ok = json!({"apiVersion": "ref.example.com/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": {"color": "red", "extra": 1}});
        let mut opts = WriteOptions {
            field_validation: FieldValidation::Ignore,
            ..Default::default()
        };
        prune_default_validate(&rt(), &widget_schema(), &mut ok, &mut opts).unwrap();
        assert_eq!(ok["spec"], json!({"color": "red", "replicas": 1}));

        let mut strict = json!({"metadata": {"name": "a"}, "spec": {"color": "red", "extra": 1}});
        let mut opts = WriteOptions {
            field_validation: FieldValidation::Strict,
            ..Default::default()
        };
        let e =
            prune_default_validate(&rt(), &widget_schema(), &mut strict, &mut opts).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message.contains("unknown field \".spec.extra\"")
                || e.message.contains("unknown field \"spec.extra\"")
        );

        let mut bad = json!({"metadata": {"name": "bad"}, "spec": {"color": "purple", "replicas": 42, "tags": ["a", "a"]}});
        let e = prune_default_validate(
            &rt(),
            &widget_schema(),
            &mut bad,
            &mut WriteOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message.contains("Unsupported value: \"purple\""),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("should be less than or equal to 10"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("Duplicate value: \"a\""),
            "{}",
            e.message
        );
    }
}
