//! kustomize decodes a kustomization into Go structs through JSON, after reading the file as
//! YAML 1.1 (sigs.k8s.io/yaml): `yes`, `on` and `y` are booleans there, and a value of the
//! wrong type for its field is an error (`cannot unmarshal number into Go struct field
//! Image.images.newTag of type string`), where `null` is the field's zero value. This is that
//! decoding's type check over the fields kustomize defines, with Go's case-insensitive field
//! names; fields it takes as free-form (replacement sources and targets, Helm values) are
//! left alone, and fields not listed here are neither checked nor refused.

use serde_json::Value;

/// A Go type as kustomize's structs declare it.
enum Ty {
    Str,
    Bool,
    Int,
    Strings,
    /// `map[string]string`.
    StrMap,
    /// `map[string]bool`.
    BoolMap,
    List(&'static Ty),
    /// A struct: its Go name and its JSON fields (others are not checked).
    Struct(&'static str, &'static [(&'static str, Ty)]),
    Any,
}

use Ty::*;

const FIELD_SPEC: Ty = Struct(
    "FieldSpec",
    &[
        ("group", Str),
        ("version", Str),
        ("kind", Str),
        ("path", Str),
        ("create", Bool),
    ],
);
const SELECTOR: Ty = Struct(
    "Selector",
    &[
        ("group", Str),
        ("version", Str),
        ("kind", Str),
        ("name", Str),
        ("namespace", Str),
        ("labelSelector", Str),
        ("annotationSelector", Str),
    ],
);
const PATCH: Ty = Struct(
    "Patch",
    &[
        ("path", Str),
        ("patch", Str),
        ("target", SELECTOR),
        ("options", BoolMap),
    ],
);
const GENERATOR_OPTIONS: Ty = Struct(
    "GeneratorOptions",
    &[
        ("labels", StrMap),
        ("annotations", StrMap),
        ("disableNameSuffixHash", Bool),
        ("immutable", Bool),
    ],
);
const CONFIG_MAP_ARGS: Ty = Struct(
    "ConfigMapArgs",
    &[
        ("name", Str),
        ("namespace", Str),
        ("behavior", Str),
        ("literals", Strings),
        ("files", Strings),
        ("envs", Strings),
        ("env", Str),
        ("options", GENERATOR_OPTIONS),
    ],
);
const SECRET_ARGS: Ty = Struct(
    "SecretArgs",
    &[
        ("name", Str),
        ("namespace", Str),
        ("behavior", Str),
        ("literals", Strings),
        ("files", Strings),
        ("envs", Strings),
        ("env", Str),
        ("options", GENERATOR_OPTIONS),
        ("type", Str),
    ],
);

const KUSTOMIZATION: Ty = Struct(
    "Kustomization",
    &[
        ("apiVersion", Str),
        ("kind", Str),
        (
            "metadata",
            Struct(
                "ObjectMeta",
                &[
                    ("name", Str),
                    ("namespace", Str),
                    ("labels", StrMap),
                    ("annotations", StrMap),
                ],
            ),
        ),
        ("resources", Strings),
        ("bases", Strings),
        ("components", Strings),
        ("crds", Strings),
        ("configurations", Strings),
        ("generators", Strings),
        ("transformers", Strings),
        ("buildMetadata", Strings),
        ("patchesStrategicMerge", Strings),
        ("namespace", Str),
        ("namePrefix", Str),
        ("nameSuffix", Str),
        ("commonLabels", StrMap),
        ("commonAnnotations", StrMap),
        ("openapi", StrMap),
        (
            "labels",
            List(&Struct(
                "Label",
                &[
                    ("pairs", StrMap),
                    ("includeSelectors", Bool),
                    ("includeTemplates", Bool),
                    ("fields", List(&FIELD_SPEC)),
                ],
            )),
        ),
        (
            "images",
            List(&Struct(
                "Image",
                &[
                    ("name", Str),
                    ("newName", Str),
                    ("newTag", Str),
                    ("digest", Str),
                ],
            )),
        ),
        (
            "replicas",
            List(&Struct("Replica", &[("name", Str), ("count", Int)])),
        ),
        ("patches", List(&PATCH)),
        ("patchesJson6902", List(&PATCH)),
        (
            "replacements",
            List(&Struct(
                "ReplacementField",
                &[("path", Str), ("source", Any), ("targets", Any)],
            )),
        ),
        ("configMapGenerator", List(&CONFIG_MAP_ARGS)),
        ("secretGenerator", List(&SECRET_ARGS)),
        ("generatorOptions", GENERATOR_OPTIONS),
        (
            "vars",
            List(&Struct(
                "Var",
                &[
                    ("name", Str),
                    (
                        "objref",
                        Struct(
                            "Target",
                            &[
                                ("group", Str),
                                ("version", Str),
                                ("kind", Str),
                                ("name", Str),
                                ("namespace", Str),
                                ("apiVersion", Str),
                            ],
                        ),
                    ),
                    ("fieldref", Struct("FieldSelector", &[("fieldpath", Str)])),
                ],
            )),
        ),
        (
            "sortOptions",
            Struct(
                "SortOptions",
                &[
                    ("order", Str),
                    (
                        "legacySortOptions",
                        Struct(
                            "LegacySortOptions",
                            &[("orderFirst", Strings), ("orderLast", Strings)],
                        ),
                    ),
                ],
            ),
        ),
    ],
);

/// Check a kustomization's fields against kustomize's types, turning `null` into what Go
/// decodes it to (an empty string in a map, an absent field elsewhere). The error is the
/// field's path and Go's message.
pub fn check(spec: &mut Value) -> Result<(), (String, String)> {
    decode(spec, &KUSTOMIZATION, "Kustomization", "")
}

/// Check `value` as a `ty`; `owner` is the innermost struct's Go name and `path` the JSON
/// field path from the top, as Go's decoder names them in its errors.
fn decode(value: &mut Value, ty: &Ty, owner: &str, path: &str) -> Result<(), (String, String)> {
    let wrong = |go_type: &str, value: &Value| {
        let json_type = match value {
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        Err((
            path.to_string(),
            format!(
                "json: cannot unmarshal {json_type} into Go struct field {owner}.{path} of type {go_type}"
            ),
        ))
    };
    match (ty, &mut *value) {
        (Any, _) | (_, Value::Null) => Ok(()),
        (Str, Value::String(_)) | (Bool, Value::Bool(_)) => Ok(()),
        (Str, v) => wrong("string", v),
        (Bool, v) => wrong("bool", v),
        (Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Int, v) => wrong("int64", v),
        (Strings, Value::Array(items)) => {
            for item in items.iter_mut() {
                if item.is_null() {
                    *item = Value::from("");
                }
                decode(item, &Str, owner, path)?;
            }
            Ok(())
        }
        (Strings, v) => wrong("[]string", v),
        (StrMap | BoolMap, Value::Object(map)) => {
            let element = if matches!(ty, StrMap) { &Str } else { &Bool };
            for item in map.values_mut() {
                if item.is_null() && matches!(ty, StrMap) {
                    *item = Value::from("");
                }
                decode(item, element, owner, path)?;
            }
            Ok(())
        }
        (StrMap, v) => wrong("map[string]string", v),
        (BoolMap, v) => wrong("map[string]bool", v),
        (List(element), Value::Array(items)) => {
            for item in items.iter_mut() {
                decode(item, element, owner, path)?;
            }
            Ok(())
        }
        (List(element), v) => match element {
            Struct(name, _) => wrong(&format!("[]types.{name}"), v),
            _ => wrong("[]", v),
        },
        (Struct(name, fields), Value::Object(map)) => {
            map.retain(|_, v| !v.is_null());
            // Go matches field names regardless of case (`newtag` is `newTag`); an exact
            // name wins.
            let renames: Vec<(String, &str)> = map
                .keys()
                .filter(|k| !fields.iter().any(|(f, _)| f == k))
                .filter_map(|k| {
                    let (field, _) = fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k))?;
                    Some((k.clone(), *field))
                })
                .collect();
            for (key, field) in renames {
                if let Some(v) = map.remove(&key)
                    && !map.contains_key(field)
                {
                    map.insert(field.to_string(), v);
                }
            }
            for (field, field_ty) in fields.iter() {
                if let Some(item) = map.get_mut(*field) {
                    let at = if path.is_empty() {
                        field.to_string()
                    } else {
                        format!("{path}.{field}")
                    };
                    decode(item, field_ty, name, &at)?;
                }
            }
            Ok(())
        }
        (Struct(name, _), v) => wrong(&format!("types.{name}"), v),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn wrong_types_are_go_decoding_errors() {
        let cases = [
            (
                json!({"namePrefix": false}),
                "cannot unmarshal bool into Go struct field Kustomization.namePrefix of type string",
            ),
            (
                json!({"images": [{"name": "nginx", "newTag": 1.27}]}),
                "cannot unmarshal number into Go struct field Image.images.newTag of type string",
            ),
            (
                json!({"labels": [{"pairs": {"a": "b"}, "includeSelectors": "true"}]}),
                "cannot unmarshal string into Go struct field Label.labels.includeSelectors of type bool",
            ),
            (
                json!({"commonLabels": {"version": 2}}),
                "cannot unmarshal number into Go struct field Kustomization.commonLabels of type string",
            ),
            (
                json!({"replicas": [{"name": "d", "count": "3"}]}),
                "cannot unmarshal string into Go struct field Replica.replicas.count of type int64",
            ),
            (
                json!({"resources": "app.yaml"}),
                "cannot unmarshal string into Go struct field Kustomization.resources of type []string",
            ),
        ];
        for (mut spec, expected) in cases {
            let (_, err) = check(&mut spec).unwrap_err();
            assert!(err.ends_with(expected), "{err}");
        }
    }

    #[test]
    fn null_is_the_zero_value() {
        let mut spec = json!({
            "commonAnnotations": {"a": null}, "namePrefix": null,
            "images": [{"name": "nginx", "newTag": null}, {"name": "redis", "newtag": "7"}],
            "replacements": [{"source": {"fieldPath": 3}}],
        });
        check(&mut spec).unwrap();
        assert_eq!(
            spec,
            json!({
                "commonAnnotations": {"a": ""},
                "images": [{"name": "nginx"}, {"name": "redis", "newTag": "7"}],
                "replacements": [{"source": {"fieldPath": 3}}],
            })
        );
    }
}
