//! OpenAPI v3 documents: enough for `kubectl apply` and `kubectl diff` to validate on the
//! server (every write operation lists `fieldValidation`, `dryRun` and `fieldManager`), for
//! kube-rs, and for `kubectl explain` on custom resources (their schemas are served in full).
//!
//! Built-in kinds get object schemas carrying their merge metadata but not every field; their
//! PATCH operations do not offer strategic merge patch in the document, so kubectl builds
//! strategic patches from the types compiled into it, which are exact.

use serde_json::{Map, Value, json};
use tiphys_patch::schema::{FieldKind, TypeDef};

use crate::resources::{Registry, ResourceType};

/// `GET /openapi/v3`: the index of group-version documents with content hashes.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (key, doc) in documents(registry) {
        let hash = hash(&doc);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

fn documents(registry: &Registry) -> Vec<(String, Value)> {
    let mut gvs: Vec<(String, String)> = Vec::new();
    for t in registry.all() {
        let gv = (t.group.clone(), t.version.clone());
        if !gvs.contains(&gv) {
            gvs.push(gv);
        }
    }
    gvs.into_iter()
        .filter_map(|(g, v)| {
            let key = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            document(registry, &key).map(|d| (key, d))
        })
        .collect()
}

/// Content hash used in `?hash=` (upper-case hex, as the real server writes it).
pub fn hash(doc: &Value) -> String {
    // FNV-1a 64 twice over the bytes: stable across runs, cheap, and only used as a cache key.
    let bytes = doc.to_string();
    let mut a: u64 = 0xcbf29ce484222325;
    let mut b: u64 = 0x84222325cbf29ce4;
    for byte in bytes.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x100000001b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x1000193).rotate_left(5);
    }
    format!("{a:016X}{b:016X}")
}

/// `GET /openapi/v3/<key>` where key is `api/v1` or `apis/<group>/<version>`.
pub fn document(registry: &Registry, key: &str) -> Option<Value> {
    let (group, version) = match key.split('/').collect::<Vec<_>>().as_slice() {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return None,
    };
    let types: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(),
        object_meta_schema(),
    );
    schemas.insert("io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(), json!({"type": "object", "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}]}));
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch".into(),
        json!({"type": "object"}),
    );
    schemas.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
        json!({"type": "object"}),
    );
    for t in &types {
        let schema_name = schema_name(t);
        schemas.insert(schema_name.clone(), kind_schema(t));
        schemas.insert(
            format!("{schema_name}List"),
            json!({"type": "object", "x-kubernetes-group-version-kind": [gvk(t, &t.list_kind)]}),
        );
        add_paths(&mut paths, t, &schema_name);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.13"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
    }))
}

fn schema_name(t: &ResourceType) -> String {
    if t.builtin {
        let package = match t.group.as_str() {
            "" => "core".to_string(),
            g => g.split('.').next().unwrap_or(g).to_string(),
        };
        let prefix = if t.group == "apiextensions.k8s.io" {
            "io.k8s.apiextensions-apiserver.pkg.apis"
        } else {
            "io.k8s.api"
        };
        format!("{prefix}.{package}.{}.{}", t.version, t.kind)
    } else {
        let reversed: Vec<&str> = t.group.split('.').rev().collect();
        format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
    }
}

fn gvk(t: &ResourceType, kind: &str) -> Value {
    json!({"group": t.group, "version": t.version, "kind": kind})
}

fn object_meta_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "namespace": {"type": "string"}, "generateName": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string", "default": ""}},
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            "ownerReferences": {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
            "managedFields": {"type": "array", "items": {"type": "object"}},
            "uid": {"type": "string"}, "resourceVersion": {"type": "string"}, "generation": {"type": "integer", "format": "int64"},
            "creationTimestamp": {"type": "string", "format": "date-time"}, "deletionTimestamp": {"type": "string", "format": "date-time"},
        },
    })
}

/// The schema of a kind: a custom resource's own schema, or for built-ins an open object
/// annotated with the merge metadata of [`tiphys_patch::schema`].
fn kind_schema(t: &ResourceType) -> Value {
    let mut schema = match &t.schema {
        Some(s) => (**s).clone(),
        None => type_schema(tiphys_patch::schema::for_kind(&t.group, &t.kind)),
    };
    if let Value::Object(m) = &mut schema {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            p.insert("metadata".into(), json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "default": {}}));
        }
        m.insert("type".into(), json!("object"));
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([gvk(t, &t.kind)]),
        );
    }
    schema
}

fn type_schema(ty: &'static TypeDef) -> Value {
    let mut props = Map::new();
    for f in ty.fields {
        if f.name == "metadata" {
            continue;
        }
        props.insert(f.name.to_string(), field_schema(f.kind));
    }
    json!({"type": "object", "properties": props, "x-kubernetes-preserve-unknown-fields": true})
}

fn field_schema(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Struct(t) => type_schema(t),
        FieldKind::RetainKeys(t) => {
            let mut s = type_schema(t);
            s["x-kubernetes-patch-strategy"] = json!("retainKeys");
            s
        }
        FieldKind::AtomicMap => {
            json!({"type": "object", "x-kubernetes-map-type": "atomic", "x-kubernetes-preserve-unknown-fields": true})
        }
        FieldKind::GranularMap => {
            json!({"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}})
        }
        FieldKind::Set => {
            json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"})
        }
        FieldKind::Keyed(keys) => json!({
            "type": "array",
            "items": type_schema(keys.item),
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": if keys.map_keys.is_empty() { vec![keys.patch_merge_key] } else { keys.map_keys.to_vec() },
            "x-kubernetes-patch-merge-key": keys.patch_merge_key,
            "x-kubernetes-patch-strategy": "merge",
        }),
    }
}

fn query_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict.",
        ),
    ];
    if patch {
        params.push(json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    params
}

fn op(
    t: &ResourceType,
    action: &str,
    operation_id: String,
    schema_ref: &str,
    body: Option<Vec<&str>>,
    params: Vec<Value>,
) -> Value {
    let mut o = json!({
        "tags": [if t.group.is_empty() { "core_v1".to_string() } else { format!("{}_{}", t.group.replace('.', "_"), t.version) }],
        "operationId": operation_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(t, &t.kind),
    });
    if let Some(types) = body {
        let content: Map<String, Value> = types
            .into_iter()
            .map(|ct| (ct.to_string(), json!({"schema": {"$ref": schema_ref}})))
            .collect();
        o["requestBody"] = json!({"content": content, "required": true});
    }
    o
}

fn add_paths(paths: &mut Map<String, Value>, t: &ResourceType, schema_name: &str) {
    let prefix = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let scope = if t.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{prefix}{scope}/{}", t.plural);
    let item = format!("{collection}/{{name}}");
    let reference = format!("#/components/schemas/{schema_name}");
    let list_ref = format!("#/components/schemas/{schema_name}List");
    let id = format!("{}{}", t.kind, t.version);
    let patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    let mut path_params = vec![
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}),
    ];
    if t.namespaced {
        path_params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}));
    }
    let mut col_params = Vec::new();
    if t.namespaced {
        col_params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}));
    }
    paths.insert(collection.clone(), json!({
        "get": op(t, "list", format!("list{id}"), &list_ref, None, Vec::new()),
        "post": op(t, "post", format!("create{id}"), &reference, Some(vec!["*/*"]), write_params(false)),
        "delete": op(t, "deletecollection", format!("deletecollection{id}"), "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status", None, Vec::new()),
        "parameters": col_params,
    }));
    paths.insert(item.clone(), json!({
        "get": op(t, "get", format!("read{id}"), &reference, None, Vec::new()),
        "put": op(t, "put", format!("replace{id}"), &reference, Some(vec!["*/*"]), write_params(false)),
        "patch": op(t, "patch", format!("patch{id}"), &reference, Some(patch_types.clone()), write_params(true)),
        "delete": op(t, "delete", format!("delete{id}"), "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status", None, Vec::new()),
        "parameters": path_params,
    }));
    if t.status_subresource {
        paths.insert(format!("{item}/status"), json!({
            "get": op(t, "get", format!("read{id}Status"), &reference, None, Vec::new()),
            "put": op(t, "put", format!("replace{id}Status"), &reference, Some(vec!["*/*"]), write_params(false)),
            "patch": op(t, "patch", format!("patch{id}Status"), &reference, Some(patch_types), write_params(true)),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_list_field_validation() {
        let registry = Registry::default();
        let doc = document(&registry, "apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        let root = root(&registry);
        assert!(
            root["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .contains("?hash=")
        );
    }
}
