//! Merge metadata read from an OpenAPI (v2) document, for custom types: what Kustomize's
//! `openapi: {path: schema.json}` provides. A definition with
//! `x-kubernetes-group-version-kind` is a kind; its properties' `x-kubernetes-patch-strategy`
//! and `x-kubernetes-patch-merge-key` (through `$ref`s and inline objects) become the same
//! [`TypeDef`]s the built-in types use.
//!
//! Type metadata is `'static` everywhere else, so a schema is built once per distinct
//! document and kept for the life of the process (`intern`): a handful of schema files, not
//! one per build.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

use crate::schema::{EMPTY, Field, FieldKind, ListKeys, TypeDef};

/// The kinds an OpenAPI document describes.
#[derive(Debug, Default)]
pub struct Schema {
    kinds: HashMap<(String, String), &'static TypeDef>,
}

impl Schema {
    /// The merge metadata of a kind; kinds the document does not describe merge as plain
    /// objects (a custom schema replaces the built-in one entirely, as in Kustomize).
    pub fn for_kind(&self, group: &str, kind: &str) -> &'static TypeDef {
        self.kinds
            .get(&(group.to_string(), kind.to_string()))
            .copied()
            .unwrap_or(&EMPTY)
    }

    pub fn kinds(&self) -> usize {
        self.kinds.len()
    }
}

/// The schema for an OpenAPI document's text, built once per distinct text; `parse` turns
/// the text into a document (JSON or YAML, the caller's choice) only the first time.
pub fn intern(
    text: &str,
    parse: impl FnOnce(&str) -> Result<Value, String>,
) -> Result<&'static Schema, String> {
    static SCHEMAS: OnceLock<Mutex<HashMap<u64, &'static Schema>>> = OnceLock::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let key = hasher.finish();
    let schemas = SCHEMAS.get_or_init(Default::default);
    let mut schemas = schemas.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(schema) = schemas.get(&key) {
        return Ok(schema);
    }
    let schema: &'static Schema = Box::leak(Box::new(build(&parse(text)?)?));
    schemas.insert(key, schema);
    Ok(schema)
}

fn build(document: &Value) -> Result<Schema, String> {
    let Some(definitions) = document.get("definitions").and_then(Value::as_object) else {
        return Err("no `definitions` (an OpenAPI v2 document is expected)".into());
    };
    let mut builder = Builder {
        definitions,
        built: HashMap::new(),
        in_progress: Vec::new(),
    };
    let mut schema = Schema::default();
    for (name, definition) in definitions {
        let Some(gvks) = definition
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        let ty = builder.definition(name);
        for gvk in gvks {
            let field = |f: &str| gvk[f].as_str().unwrap_or_default().to_string();
            schema.kinds.insert((field("group"), field("kind")), ty);
        }
    }
    Ok(schema)
}

struct Builder<'a> {
    definitions: &'a Map<String, Value>,
    built: HashMap<String, &'static TypeDef>,
    /// Definitions being built: a type that contains itself stops there.
    in_progress: Vec<String>,
}

impl Builder<'_> {
    fn definition(&mut self, name: &str) -> &'static TypeDef {
        if let Some(ty) = self.built.get(name) {
            return ty;
        }
        if self.in_progress.iter().any(|n| n == name) {
            return &EMPTY;
        }
        let Some(definition) = self.definitions.get(name) else {
            return &EMPTY;
        };
        self.in_progress.push(name.to_string());
        let ty = self.object(definition);
        self.in_progress.pop();
        self.built.insert(name.to_string(), ty);
        ty
    }

    fn reference(&mut self, schema: &Value) -> Option<&'static TypeDef> {
        let target = schema.get("$ref")?.as_str()?;
        let name = target.strip_prefix("#/definitions/")?;
        Some(self.definition(name))
    }

    /// An object schema: the properties whose merge is not the default.
    fn object(&mut self, schema: &Value) -> &'static TypeDef {
        let mut fields = Vec::new();
        for (name, property) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(kind) = self.property(property) {
                fields.push(Field {
                    name: Box::leak(name.clone().into_boxed_str()),
                    kind,
                });
            }
        }
        if fields.is_empty() {
            return &EMPTY;
        }
        Box::leak(Box::new(TypeDef {
            fields: Box::leak(fields.into_boxed_slice()),
        }))
    }

    fn property(&mut self, property: &Value) -> Option<FieldKind> {
        let strategy = property
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let merge = strategy.split(',').any(|s| s.trim() == "merge");
        let retain = strategy.split(',').any(|s| s.trim() == "retainKeys");
        let is_array = property.get("type").and_then(Value::as_str) == Some("array");
        if is_array {
            if !merge {
                return None;
            }
            let items = property.get("items").unwrap_or(&Value::Null);
            let item = match self.reference(items) {
                Some(ty) => Some(ty),
                None if items.get("properties").is_some() => Some(self.object(items)),
                None => None,
            };
            let key = property
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str);
            return match (key, item) {
                (Some(key), item) => {
                    let key: &'static str = Box::leak(key.to_string().into_boxed_str());
                    let keys = ListKeys {
                        patch_merge_key: key,
                        map_keys: Box::leak(vec![key].into_boxed_slice()),
                        item: item.unwrap_or(&EMPTY),
                        key_defaults: &[],
                    };
                    Some(FieldKind::Keyed(Box::leak(Box::new(keys))))
                }
                (None, _) => Some(FieldKind::Set),
            };
        }
        let nested = match self.reference(property) {
            Some(ty) => ty,
            None if property.get("properties").is_some() => self.object(property),
            None => &EMPTY,
        };
        if retain {
            return Some(FieldKind::RetainKeys(nested));
        }
        (!nested.fields.is_empty()).then_some(FieldKind::Struct(nested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_lists_and_refs_become_merge_metadata() {
        let doc = json!({"definitions": {
            "w.Widget": {
                "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1"}],
                "properties": {"spec": {"$ref": "#/definitions/w.Spec"}},
            },
            "w.Spec": {"properties": {
                "parts": {"type": "array", "items": {"$ref": "#/definitions/w.Part"},
                          "x-kubernetes-patch-merge-key": "name",
                          "x-kubernetes-patch-strategy": "merge"},
                "tags": {"type": "array", "items": {"type": "string"},
                         "x-kubernetes-patch-strategy": "merge"},
                "self": {"$ref": "#/definitions/w.Spec"},
            }},
            "w.Part": {"properties": {"name": {"type": "string"}}},
        }});
        let parse = |t: &str| serde_json::from_str(t).map_err(|e| e.to_string());
        let schema = intern(&doc.to_string(), parse).unwrap();
        assert_eq!(schema.kinds(), 1);
        let widget = schema.for_kind("example.com", "Widget");
        let spec = widget.field("spec").unwrap().object_type();
        assert!(
            matches!(spec.field("parts"), Some(FieldKind::Keyed(k)) if k.patch_merge_key == "name")
        );
        assert!(matches!(spec.field("tags"), Some(FieldKind::Set)));
        // The same text is the same schema.
        let again = intern(&doc.to_string(), |_| Err("parsed twice".into())).unwrap();
        assert!(std::ptr::eq(schema, again));
        // Kinds it does not describe merge as plain objects.
        assert!(schema.for_kind("apps", "Deployment").fields.is_empty());
    }
}
