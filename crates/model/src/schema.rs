//! Schema helpers: fields that hold arbitrary JSON, and the structural OpenAPI schemas of the
//! CRDs (generated from the Rust types with the transforms kube-derive uses).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// Any JSON object, kept as written (`x-kubernetes-preserve-unknown-fields`).
pub fn preserve_unknown(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// A list of arbitrary JSON objects.
pub fn preserve_unknown_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}})
}

pub fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"x-kubernetes-int-or-string": true})
}

/// The structural schema of `T`, inlined, as a CRD accepts it.
pub fn structural<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut v = serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null);
    strip_titles(&mut v);
    v
}

/// Drop schemars' `title`/`$schema` noise, which CRDs do not need.
fn strip_titles(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("title");
            map.remove("$schema");
            map.values_mut().for_each(strip_titles);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_titles),
        _ => {}
    }
}
