//! Strategic merge patch: apply a patch (as kubectl and Kustomize write them) to an object.
//!
//! Objects merge key by key and `null` deletes; keyed lists merge item by item on their merge
//! key; lists of scalars with the merge strategy are unions; every other list is replaced.
//! The directives kubectl sends are honoured: `$patch: replace|delete|merge`,
//! `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::schema::{FieldKind, ListKeys, TypeDef};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Whose strategic merge: the API server's (apimachinery) or kustomize's (kyaml). They agree
/// but for the order of merged lists of scalars (`finalizers`): the API server keeps the
/// original items first and appends new ones; kustomize puts the patch's items first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    #[default]
    ApiServer,
    Kustomize,
}

/// Apply `patch` to `original` in place, as the API server does. `ty` is the metadata of the
/// object's type (see [`crate::schema::for_kind`]).
pub fn apply(original: &mut Value, patch: &Value, ty: &'static TypeDef) -> Result<(), PatchError> {
    apply_with(original, patch, ty, Flavor::ApiServer)
}

/// [`apply`] with the given [`Flavor`].
pub fn apply_with(
    original: &mut Value,
    patch: &Value,
    ty: &'static TypeDef,
    flavor: Flavor,
) -> Result<(), PatchError> {
    let Some(patch_map) = patch.as_object() else {
        return Err(PatchError::NotAnObject("strategic merge patch"));
    };
    if !original.is_object() {
        *original = Value::Object(Map::new());
    }
    if let Some(Value::Object(orig_map)) = Some(original) {
        merge_map(orig_map, patch_map, ty, flavor)?;
    }
    Ok(())
}

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    ty: &'static TypeDef,
    flavor: Flavor,
) -> Result<(), PatchError> {
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            *orig = strip_directives_map(patch);
            return Ok(());
        }
        Some("delete") => {
            orig.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(PatchError::UnknownDirective(other.to_string())),
    }

    for (key, patch_value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if patch_value.is_null() {
            orig.remove(key);
            continue;
        }
        let kind = ty.field(key);
        match (orig.get_mut(key), patch_value) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                if p.get(PATCH).and_then(Value::as_str) == Some("delete") {
                    orig.remove(key);
                    continue;
                }
                let nested = kind
                    .map(FieldKind::object_type)
                    .unwrap_or(&crate::schema::EMPTY);
                merge_map(o, p, nested, flavor)?;
            }
            (Some(Value::Array(o)), Value::Array(p)) => match kind {
                Some(FieldKind::Keyed(keys)) => merge_keyed_list(o, p, keys, flavor)?,
                Some(FieldKind::Set) => merge_primitive_list(o, p, flavor),
                _ => *o = p.iter().map(strip_directives).collect(),
            },
            (_, Value::Object(p)) if p.get(PATCH).and_then(Value::as_str) == Some("delete") => {
                orig.remove(key);
            }
            (_, Value::Array(p)) if matches!(kind, Some(FieldKind::Keyed(_))) => {
                // Nothing to merge into: keep the patch's items minus delete directives.
                let items: Vec<Value> = p
                    .iter()
                    .filter(|item| item.get(PATCH).is_none())
                    .map(strip_directives)
                    .collect();
                orig.insert(key.clone(), Value::Array(items));
            }
            _ => {
                orig.insert(key.clone(), strip_directives(patch_value));
            }
        }
    }

    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST)
            && let (Some(Value::Array(items)), Value::Array(remove)) = (orig.get_mut(list), value)
        {
            items.retain(|item| !remove.contains(item));
        }
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(SET_ELEMENT_ORDER)
            && let (Some(Value::Array(items)), Value::Array(order)) = (orig.get_mut(list), value)
        {
            let merge_key = match ty.field(list) {
                Some(FieldKind::Keyed(keys)) => Some(keys.patch_merge_key),
                _ => None,
            };
            reorder(items, order, merge_key);
        }
    }
    if let Some(Value::Array(retain)) = patch.get(RETAIN_KEYS) {
        orig.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k.as_str())));
    }
    Ok(())
}

fn merge_keyed_list(
    orig: &mut Vec<Value>,
    patch: &[Value],
    keys: &'static ListKeys,
    flavor: Flavor,
) -> Result<(), PatchError> {
    let key = keys.patch_merge_key;
    // A `{"$patch": "replace"}` element replaces the whole list with the other elements.
    if patch
        .iter()
        .any(|p| p.get(PATCH).and_then(Value::as_str) == Some("replace") && p.get(key).is_none())
    {
        *orig = patch
            .iter()
            .filter(|p| p.get(PATCH).is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    // The result lists the patch's items first, in the patch's order (merged into the
    // original item with the same key), then the original items the patch did not mention,
    // as kube-apiserver and kustomize order them.
    let mut remaining = std::mem::take(orig);
    let mut merged = Vec::with_capacity(remaining.len() + patch.len());
    for item in patch {
        let Some(item_map) = item.as_object() else {
            // Scalars in a keyed list cannot be matched; keep them as given.
            merged.push(item.clone());
            continue;
        };
        let Some(key_value) = item_map.get(key) else {
            return Err(PatchError::MissingMergeKey(key.to_string()));
        };
        let position = remaining.iter().position(|o| o.get(key) == Some(key_value));
        match (item_map.get(PATCH).and_then(Value::as_str), position) {
            (Some("delete"), Some(i)) => {
                remaining.remove(i);
            }
            (Some("delete"), None) => {}
            (Some("replace"), Some(i)) => {
                remaining.remove(i);
                merged.push(strip_directives(item));
            }
            (_, Some(i)) => {
                let mut target = remaining.remove(i);
                if let Value::Object(t) = &mut target {
                    merge_map(t, item_map, keys.item, flavor)?;
                }
                merged.push(target);
            }
            (_, None) => merged.push(strip_directives(item)),
        }
    }
    merged.extend(remaining);
    *orig = merged;
    Ok(())
}

fn merge_primitive_list(orig: &mut Vec<Value>, patch: &[Value], flavor: Flavor) {
    match flavor {
        Flavor::ApiServer => {
            for item in patch {
                if !orig.contains(item) {
                    orig.push(item.clone());
                }
            }
        }
        Flavor::Kustomize => {
            let mut merged: Vec<Value> = Vec::with_capacity(orig.len() + patch.len());
            for item in patch.iter().chain(orig.iter()) {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            *orig = merged;
        }
    }
}

/// Order `items` as `order` lists them (by merge key for keyed lists); items the order
/// does not mention keep their relative order after the ordered ones.
fn reorder(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let identity = |v: &Value| -> Value {
        match merge_key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let wanted: Vec<Value> = order.iter().map(&identity).collect();
    let mut ordered = Vec::with_capacity(items.len());
    for w in &wanted {
        if let Some(i) = items.iter().position(|v| &identity(v) == w) {
            ordered.push(items.remove(i));
        }
    }
    ordered.append(items);
    *items = ordered;
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(strip_directives_map(m)),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn strip_directives_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_directives(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::for_kind;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let mut obj = deployment();
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "env": [{"name": "B", "value": "2"}]}
        ]}}}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        let c = &obj["spec"]["template"]["spec"]["containers"];
        assert_eq!(c.as_array().unwrap().len(), 2);
        assert_eq!(c[0]["image"], "nginx:1");
        assert_eq!(c[1]["name"], "sidecar");
        // Patch items come first, then the original items the patch did not mention.
        assert_eq!(
            c[0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
        );
    }

    #[test]
    fn delete_directive_removes_list_item_and_null_removes_key() {
        let mut obj = deployment();
        let patch = json!({"metadata": {"labels": {"app": null}}, "spec": {"template": {"spec": {
            "containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({}));
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn set_element_order_reorders_merged_list() {
        let mut obj = deployment();
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
            "containers": [{"name": "sidecar", "image": "busybox:2"}]}}}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        let c = &obj["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["name"], "sidecar");
        assert_eq!(c[0]["image"], "busybox:2");
        assert_eq!(c[1]["name"], "nginx");
    }

    #[test]
    fn finalizers_are_a_set_and_delete_from_primitive_list_removes() {
        let mut obj = deployment();
        let patch = json!({"metadata": {"finalizers": ["b", "a"]}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["a", "b"]));
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        assert_eq!(obj["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn sets_merge_in_each_flavors_order() {
        let ty = crate::schema::for_kind("", "ConfigMap");
        let patch = json!({"metadata": {"finalizers": ["d", "b", "e"]}});
        let original = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let mut api = original.clone();
        apply(&mut api, &patch, ty).unwrap();
        assert_eq!(
            api["metadata"]["finalizers"],
            json!(["a", "b", "c", "d", "e"])
        );
        let mut kustomize = original;
        apply_with(&mut kustomize, &patch, ty, Flavor::Kustomize).unwrap();
        assert_eq!(
            kustomize["metadata"]["finalizers"],
            json!(["d", "b", "e", "a", "c"])
        );
    }

    #[test]
    fn replace_directive_and_retain_keys() {
        let mut obj = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        assert_eq!(obj["spec"]["strategy"], json!({"type": "Recreate"}));

        let mut obj = deployment();
        let patch = json!({"spec": {"template": {"spec": {"$patch": "replace", "containers": [{"name": "x"}]}}}});
        apply(&mut obj, &patch, for_kind("apps", "Deployment")).unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"],
            json!({"containers": [{"name": "x"}]})
        );
    }

    #[test]
    fn unknown_lists_are_replaced() {
        let mut obj = json!({"spec": {"args": ["a", "b"]}});
        apply(
            &mut obj,
            &json!({"spec": {"args": ["c"]}}),
            for_kind("", "ConfigMap"),
        )
        .unwrap();
        assert_eq!(obj["spec"]["args"], json!(["c"]));
    }

    #[test]
    fn keyed_item_without_merge_key_is_an_error() {
        let mut obj = deployment();
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        assert!(apply(&mut obj, &patch, for_kind("apps", "Deployment")).is_err());
    }
}
