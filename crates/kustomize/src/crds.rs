//! `crds`: OpenAPI definitions (`{"<package>.<Kind>": {"Schema": {...}}}`, JSON or YAML) whose
//! `x-kubernetes-*` extensions tell the transformers about a custom kind's fields:
//!
//! * `x-kubernetes-annotation` — commonAnnotations are written there;
//! * `x-kubernetes-label-selector` — commonLabels are written there;
//! * `x-kubernetes-identity` — the name prefix is applied there;
//! * `x-kubernetes-object-ref-api-version` + `x-kubernetes-object-ref-kind` (+ optional
//!   `x-kubernetes-object-ref-name-key`, default `name`) — a reference by name, followed when
//!   the referred object is renamed.
//!
//! Properties with a `$ref` to another definition in the same file are walked into.

use serde_json::{Map, Value};

use crate::config::{FieldSpec, Gvk, NameReference, TransformerConfig};

/// The configuration one definitions file adds.
pub fn config_from_definitions(definitions: &Value) -> Result<TransformerConfig, String> {
    let Some(types) = definitions.as_object() else {
        return Err("expected a mapping of type names to OpenAPI definitions".into());
    };
    let mut config = TransformerConfig::default();
    for (type_name, definition) in types {
        let properties = properties(definition);
        let looks_like_kind = ["kind", "apiVersion", "metadata"]
            .iter()
            .all(|p| properties.is_some_and(|m| m.contains_key(*p)));
        if !looks_like_kind {
            continue;
        }
        // The kind is the last dotted part of the type name; group and version are not
        // known from a definition, so the specs select the kind in any group.
        let kind = type_name.rsplit('.').next().unwrap_or(type_name);
        let mut walk = Walk {
            types,
            gvk: Gvk::kind(kind),
            config: &mut config,
            stack: Vec::new(),
        };
        walk.definition(type_name, &mut Vec::new());
    }
    Ok(config)
}

/// A definition's properties; Go's decoder takes `Schema` in any letter case.
fn properties(definition: &Value) -> Option<&Map<String, Value>> {
    let schema = definition
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))
        .map(|(_, v)| v)?;
    schema["properties"].as_object()
}

struct Walk<'a> {
    types: &'a Map<String, Value>,
    gvk: Gvk,
    config: &'a mut TransformerConfig,
    /// Definitions being walked, so a type that refers to itself ends the walk.
    stack: Vec<String>,
}

impl Walk<'_> {
    fn definition(&mut self, type_name: &str, path: &mut Vec<String>) {
        if self.stack.iter().any(|t| t == type_name) {
            return;
        }
        let Some(props) = self.types.get(type_name).and_then(properties) else {
            return;
        };
        self.stack.push(type_name.to_string());
        for (name, property) in props {
            path.push(name.clone());
            let marked = |ext: &str| property[ext].is_string();
            let spec = |path: &[String]| FieldSpec {
                gvk: self.gvk.clone(),
                path: path.to_vec(),
                create: false,
            };
            if marked("x-kubernetes-annotation") {
                push(&mut self.config.common_annotations, spec(path));
            }
            if marked("x-kubernetes-label-selector") {
                push(&mut self.config.common_labels, spec(path));
            }
            if marked("x-kubernetes-identity") {
                push(&mut self.config.name_prefix, spec(path));
            }
            if let (Some(version), Some(kind)) = (
                property["x-kubernetes-object-ref-api-version"].as_str(),
                property["x-kubernetes-object-ref-kind"].as_str(),
            ) {
                let key = property["x-kubernetes-object-ref-name-key"]
                    .as_str()
                    .unwrap_or("name");
                let mut at = path.clone();
                at.push(key.to_string());
                self.config.merge(&TransformerConfig {
                    name_reference: vec![NameReference {
                        target: Gvk {
                            version: Some(version.to_string()),
                            ..Gvk::kind(kind)
                        },
                        referrers: vec![spec(&at)],
                    }],
                    ..TransformerConfig::default()
                });
            }
            if let Some(reference) = property["$ref"].as_str() {
                self.definition(reference, path);
            }
            path.pop();
        }
        self.stack.pop();
    }
}

fn push(list: &mut Vec<FieldSpec>, spec: FieldSpec) {
    if !list.contains(&spec) {
        list.push(spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extensions_become_field_specs_through_refs() {
        let defs = json!({
            "example.com/v1.MyKind": {"Schema": {"properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"$ref": "meta.ObjectMeta"},
                "spec": {"$ref": "example.com/v1.MyKindSpec"},
            }}},
            "example.com/v1.MyKindSpec": {"Schema": {"properties": {
                "secretRef": {"x-kubernetes-object-ref-api-version": "v1",
                              "x-kubernetes-object-ref-kind": "Secret"},
                "selectors": {"x-kubernetes-label-selector": ""},
                "self": {"$ref": "example.com/v1.MyKindSpec"},
            }}},
        });
        let config = config_from_definitions(&defs).unwrap();
        assert_eq!(config.common_labels.len(), 1);
        assert_eq!(config.common_labels[0].path, vec!["spec", "selectors"]);
        assert_eq!(config.common_labels[0].gvk.kind.as_deref(), Some("MyKind"));
        let secret = &config.name_reference[0];
        assert_eq!(secret.target.kind.as_deref(), Some("Secret"));
        assert_eq!(secret.referrers[0].path, vec!["spec", "secretRef", "name"]);
    }
}
