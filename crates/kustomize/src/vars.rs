//! `vars` (deprecated in kustomize, still common in kubebuilder scaffolds): a value read from
//! one resource (by default its final name) replaces `$(NAME)` in the fields the
//! configuration's `varReference` lists.
//!
//! A var is bound, at the level that declares it, to the one resource its `objref` names
//! (by any name it has had); it is read after every transformation and name reference, so
//! `$(SERVICE_NAME)` is the service's prefixed name.

use serde_json::Value;

use crate::config::visit_specs;
use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource};

/// One declared var.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    /// The field to read, as a dotted path (`metadata.name`, `spec.ports[0].port`).
    field_path: String,
    /// The kustomization that declared it, for errors.
    declared_in: String,
}

fn invalid(k: &Kustomization, field: String, message: String) -> KustomizeError {
    KustomizeError::Invalid {
        path: k.path(),
        field,
        message,
    }
}

/// Read this level's `vars` and bind each to its resource; `known` holds the vars of the
/// levels below (a name may be declared once).
pub fn declare(
    k: &Kustomization,
    resources: &mut [Resource],
    known: &mut Vec<Var>,
) -> Result<(), KustomizeError> {
    for (i, v) in k.spec["vars"].as_array().into_iter().flatten().enumerate() {
        let at = format!("vars[{i}]");
        let text = |field: &str| v[field].as_str().filter(|s| !s.is_empty());
        let name = text("name")
            .ok_or_else(|| invalid(k, format!("{at}.name"), "required".into()))?
            .to_string();
        if known.iter().any(|var| var.name == name) {
            return Err(invalid(k, at, format!("var '{name}' already encountered")));
        }
        let objref = &v["objref"];
        let field = |f: &str| objref[f].as_str().filter(|s| !s.is_empty());
        let (Some(kind), Some(target)) = (field("kind"), field("name")) else {
            return Err(invalid(
                k,
                format!("{at}.objref"),
                "kind and name are required".into(),
            ));
        };
        let (group, version) = match field("apiVersion") {
            Some(av) => match av.rsplit_once('/') {
                Some((g, v)) => (Some(g), Some(v)),
                None => (None, Some(av)),
            },
            None => (field("group"), field("version")),
        };
        let namespace = field("namespace");
        let matches: Vec<usize> = resources
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                // Group and version must be equal, not merely unset: a var without its
                // version binds to nothing, as in kustomize.
                r.kind() == kind
                    && r.has_had_name(target)
                    && group.unwrap_or("") == r.group()
                    && version.unwrap_or("") == r.version()
                    && namespace.is_none_or(|ns| ns == r.namespace())
            })
            .map(|(i, _)| i)
            .collect();
        if matches.len() > 1 {
            return Err(invalid(
                k,
                at,
                format!(
                    "found {} resources matching var {name} ({kind} {target}); unable to disambiguate",
                    matches.len()
                ),
            ));
        }
        if let Some(&index) = matches.first() {
            resources[index].bound_vars.push(name.clone());
        }
        known.push(Var {
            name,
            field_path: v["fieldref"]["fieldpath"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("metadata.name")
                .to_string(),
            declared_in: k.path(),
        });
    }
    Ok(())
}

/// Replace `$(NAME)` in every `varReference` field with the vars' values.
pub fn resolve(
    vars: &[Var],
    resources: &mut [Resource],
    var_reference: &[crate::config::FieldSpec],
) -> Result<(), KustomizeError> {
    if vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(&str, Value)> = Vec::new();
    for var in vars {
        let unmapped = |message: String| KustomizeError::Invalid {
            path: var.declared_in.clone(),
            field: format!("vars ({})", var.name),
            message,
        };
        let Some(r) = resources.iter().find(|r| r.bound_vars.contains(&var.name)) else {
            return Err(unmapped(format!(
                "var '{}' cannot be mapped to a field in the set of known resources",
                var.name
            )));
        };
        let value = field_value(&r.object, &var.field_path).ok_or_else(|| {
            unmapped(format!(
                "field {} not found in {} (specified in var '{}')",
                var.field_path,
                r.id(),
                var.name
            ))
        })?;
        values.push((&var.name, value));
    }
    for r in resources.iter_mut() {
        visit_specs(r, var_reference, &mut |field| expand_value(field, &values));
        // A number a var put into an annotation is still written as a string.
        crate::stringify_annotations(&mut r.object);
    }
    Ok(())
}

/// Expand the strings of a field: a string, the strings of a list, or a map's values. A
/// string that is exactly one `$(NAME)` takes the var's value with its type (`8080`, not
/// `"8080"`), as kustomize's expansion does.
fn expand_value(field: &mut Value, values: &[(&str, Value)]) {
    match field {
        Value::String(s) => {
            let whole = s
                .strip_prefix("$(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|name| values.iter().find(|(n, _)| *n == name));
            match whole {
                Some((_, value)) => *field = value.clone(),
                None => *s = expand(s, values),
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .filter(|i| i.is_string())
            .for_each(|i| expand_value(i, values)),
        Value::Object(map) => map
            .values_mut()
            .filter(|v| v.is_string())
            .for_each(|v| expand_value(v, values)),
        _ => {}
    }
}

/// Kubernetes' `$(VAR)` expansion: known vars are replaced, unknown ones kept as written,
/// `$$` is a literal `$`.
fn expand(input: &str, values: &[(&str, Value)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        match after.as_bytes().first() {
            Some(b'$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some(b'(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match values.iter().find(|(n, _)| *n == name) {
                        Some((_, Value::String(text))) => out.push_str(text),
                        Some((_, value)) => out.push_str(&value.to_string()),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The scalar at a dotted field path (`spec.ports[0].port`). (kustomize reads list items by
/// index only.)
fn field_value(object: &Value, path: &str) -> Option<Value> {
    let mut current = object;
    for part in path.split('.') {
        let (key, selectors) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            current = current.get(key)?;
        }
        let mut selectors = selectors;
        while let Some(inner) = selectors.strip_prefix('[') {
            let close = inner.find(']')?;
            let selector = &inner[..close];
            current = current.as_array()?.get(selector.parse::<usize>().ok()?)?;
            selectors = &inner[close + 1..];
        }
    }
    match current {
        Value::Null | Value::Object(_) | Value::Array(_) => None,
        scalar => Some(scalar.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let values = [("SVC", json!("prod-web")), ("PORT", json!(8080))];
        assert_eq!(
            expand("http://$(SVC):$(PORT)", &values),
            "http://prod-web:8080"
        );
        let mut whole = json!(["$(PORT)", "--port=$(PORT)"]);
        expand_value(&mut whole, &values);
        assert_eq!(
            whole,
            json!([8080, "--port=8080"]),
            "a whole reference keeps its type"
        );
        assert_eq!(
            expand("$(OTHER) $$(SVC) $$HOME $", &values),
            "$(OTHER) $(SVC) $HOME $"
        );
        assert_eq!(expand("$(SVC", &values), "$(SVC");
    }

    #[test]
    fn field_paths_index_and_select() {
        let obj = json!({"spec": {"ports": [{"name": "http", "port": 80}]}});
        assert_eq!(field_value(&obj, "spec.ports[0].port"), Some(json!(80)));
        assert_eq!(field_value(&obj, "spec.ports[name=http].port"), None);
        assert_eq!(field_value(&obj, "spec.missing"), None);
    }
}
