//! Removing the fields a manager owns, as recorded in `metadata.managedFields` (`fieldsV1`).

use serde_json::{Map, Value};

/// The union of `fieldsV1` sets the named managers own in `live`.
pub fn owned_by<'a>(live: &'a Value, managers: &[String]) -> Vec<&'a Value> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry
                .get("manager")
                .and_then(Value::as_str)
                .is_some_and(|m| managers.iter().any(|wanted| wanted == m))
        })
        .filter_map(|entry| entry.get("fieldsV1"))
        .collect()
}

/// Delete from `obj` every leaf of the `fieldsV1` set `fields`.
pub fn remove_fields(obj: &mut Value, fields: &Value) {
    let Some(fields) = fields.as_object() else {
        return;
    };
    for (key, sub) in fields {
        let leaf = is_leaf(sub);
        if let Some(name) = key.strip_prefix("f:") {
            let Some(map) = obj.as_object_mut() else {
                continue;
            };
            if leaf {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                remove_fields(child, sub);
                if is_empty(child) && sub.get(".").is_some() {
                    map.remove(name);
                }
            }
        } else if let Some(items) = obj.as_array_mut() {
            let Some(position) = find_item(items, key) else {
                continue;
            };
            if leaf {
                items.remove(position);
            } else {
                remove_fields(&mut items[position], sub);
            }
        }
    }
}

fn is_leaf(sub: &Value) -> bool {
    sub.as_object().is_none_or(|m| m.keys().all(|k| k == "."))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// The list item a `k:{…}`, `v:…` or `i:N` key names.
fn find_item(items: &[Value], key: &str) -> Option<usize> {
    if let Some(keys) = key.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(keys).ok()?;
        items.iter().position(|item| {
            keys.iter()
                .all(|(k, v)| item.get(k).is_some_and(|found| same_scalar(found, v)))
        })
    } else if let Some(value) = key.strip_prefix("v:") {
        let value: Value = serde_json::from_str(value).ok()?;
        items.iter().position(|item| *item == value)
    } else if let Some(index) = key.strip_prefix("i:") {
        index.parse().ok().filter(|i| *i < items.len())
    } else {
        None
    }
}

/// Merge keys compare as the API server does: `80` and `"80"` name the same port.
fn same_scalar(a: &Value, b: &Value) -> bool {
    a == b || a.to_string().trim_matches('"') == b.to_string().trim_matches('"')
}

/// Who set the field at `path` of `live`, from `metadata.managedFields`: the managers whose
/// `fieldsV1` reach deepest along the path (all of it when one owns the field itself), most
/// recent first.
pub fn managers_of(live: &Value, path: &crate::FieldPath) -> Vec<String> {
    let mut best: Vec<(usize, String, String)> = Vec::new();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for entry in entries {
        let (Some(manager), Some(mut node)) = (
            entry.get("manager").and_then(Value::as_str),
            entry.get("fieldsV1"),
        ) else {
            continue;
        };
        let mut obj = live;
        let mut depth = 0;
        for segment in &path.0 {
            let next = match segment {
                crate::Segment::Key(k) => node.get(format!("f:{k}")).zip(obj.get(k)),
                crate::Segment::Index(i) => obj.as_array().and_then(|items| {
                    let fields = node.as_object()?;
                    fields
                        .iter()
                        .find(|(key, _)| find_item(items, key) == Some(*i))
                        .map(|(_, sub)| (sub, &items[*i]))
                }),
            };
            let Some((sub, child)) = next else { break };
            node = sub;
            obj = child;
            depth += 1;
        }
        if depth == 0 {
            continue;
        }
        let time = entry
            .get("time")
            .and_then(Value::as_str)
            .unwrap_or_default();
        best.push((depth, time.to_string(), manager.to_string()));
    }
    let deepest = best.iter().map(|(d, _, _)| *d).max().unwrap_or(0);
    best.retain(|(d, _, _)| *d == deepest);
    best.sort_by(|a, b| b.1.cmp(&a.1));
    let mut out: Vec<String> = Vec::new();
    for (_, _, m) in best {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn removes_owned_leaves_and_keyed_items() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"replicas": 5, "containers": [{"name": "web", "image": "x", "ports": [1]}, {"name": "side", "image": "y"}]}});
        let fields = json!({"f:metadata": {"f:labels": {"f:b": {}}},
            "f:spec": {"f:replicas": {}, "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}, "k:{\"name\":\"side\"}": {}}}});
        remove_fields(&mut obj, &fields);
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "web", "ports": [1]}]}})
        );
    }

    #[test]
    fn the_manager_of_a_field_is_the_deepest_owner() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "tiphys", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}},
            {"manager": "kubectl-scale", "time": "2026-01-02T00:00:00Z", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "time": "2026-01-03T00:00:00Z", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}
        ]}, "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "web", "image": "x"}]}}}});
        let replicas = crate::FieldPath::parse("spec.replicas");
        assert_eq!(managers_of(&live, &replicas), ["kubectl-scale", "tiphys"]);
        let image = crate::FieldPath::parse("spec.template.spec.containers[0].image");
        assert_eq!(managers_of(&live, &image), ["kubectl-edit", "tiphys"]);
        assert!(managers_of(&live, &crate::FieldPath::parse("data.x")).is_empty());
    }
}
