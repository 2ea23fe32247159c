//! Field ownership: `metadata.managedFields` in the FieldsV1 format, and server-side apply.
//!
//! A field set is a set of paths. Each path element is encoded as the API server encodes it
//! in FieldsV1: `f:<field>`, `k:<json of list-map keys>`, `v:<json value>`, and `.` for the
//! node itself (a list item, or a map/list created by an update).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use tiphys_patch::schema::{EMPTY, FieldKind, ListKeys, OBJECT_META, TypeDef};

pub type Path = Vec<String>;

/// A set of owned field paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet(pub BTreeSet<Path>);

/// Which kind of write computes the set: apply records only what the config names;
/// updates also record the map and list nodes they create (`.`), as the real server does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Apply,
    Update,
}

/// metadata fields the server owns; never part of a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl FieldSet {
    /// The fields an object sets. `root` is the kind's merge metadata.
    pub fn of_object(object: &Value, root: &'static TypeDef, mode: Mode) -> FieldSet {
        let mut set = BTreeSet::new();
        if let Value::Object(map) = object {
            for (k, v) in map {
                match k.as_str() {
                    "apiVersion" | "kind" => {}
                    "metadata" => {
                        if let Value::Object(meta) = v {
                            let filtered: Map<String, Value> = meta
                                .iter()
                                .filter(|(k, _)| !SERVER_METADATA.contains(&k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            if !filtered.is_empty() {
                                walk_struct(
                                    &filtered,
                                    &OBJECT_META,
                                    &mut vec!["f:metadata".into()],
                                    &mut set,
                                    mode,
                                );
                            }
                        }
                    }
                    _ => {
                        let kind = root.field(k);
                        walk(v, kind, &mut vec![format!("f:{k}")], &mut set, mode);
                    }
                }
            }
        }
        FieldSet(set)
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn go(node: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
            if let Value::Object(map) = node {
                for (k, child) in map {
                    prefix.push(k.clone());
                    if child.as_object().is_some_and(Map::is_empty) {
                        out.insert(prefix.clone());
                    } else {
                        go(child, prefix, out);
                    }
                    prefix.pop();
                }
            }
        }
        let mut out = BTreeSet::new();
        go(v, &mut Vec::new(), &mut out);
        FieldSet(out)
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for element in path {
                node = node
                    .entry(element.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("field set nodes are objects");
            }
        }
        Value::Object(root)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Paths that name a value (not the `.` markers).
    pub fn leaves(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().filter(|p| p.last().is_some_and(|e| e != "."))
    }
}

fn walk(
    value: &Value,
    kind: Option<FieldKind>,
    path: &mut Path,
    out: &mut BTreeSet<Path>,
    mode: Mode,
) {
    match (kind, value) {
        (Some(FieldKind::AtomicMap), _) | (_, Value::Null) => {
            out.insert(path.clone());
        }
        (Some(FieldKind::GranularMap), Value::Object(map)) => {
            if map.is_empty() || mode == Mode::Update {
                out.insert(with(path, "."));
            }
            for k in map.keys() {
                out.insert(with(path, &format!("f:{k}")));
            }
        }
        (Some(FieldKind::Set), Value::Array(items)) => {
            if items.is_empty() || mode == Mode::Update {
                out.insert(with(path, "."));
            }
            for item in items {
                out.insert(with(path, &format!("v:{item}")));
            }
        }
        (Some(FieldKind::Keyed(keys)), Value::Array(items)) => {
            if items.is_empty() || mode == Mode::Update {
                out.insert(with(path, "."));
            }
            for item in items {
                let Some(item_map) = item.as_object() else {
                    continue;
                };
                path.push(format!("k:{}", key_of(item_map, keys)));
                out.insert(with(path, "."));
                walk_struct(item_map, keys.item, path, out, mode);
                path.pop();
            }
        }
        (Some(FieldKind::Struct(t) | FieldKind::RetainKeys(t)), Value::Object(map)) => {
            if map.is_empty() {
                out.insert(path.clone());
            } else {
                walk_struct(map, t, path, out, mode);
            }
        }
        (None, Value::Object(map)) => {
            if map.is_empty() {
                out.insert(path.clone());
            } else {
                if mode == Mode::Update {
                    out.insert(with(path, "."));
                }
                walk_struct(map, &EMPTY, path, out, mode);
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn walk_struct(
    map: &Map<String, Value>,
    ty: &'static TypeDef,
    path: &mut Path,
    out: &mut BTreeSet<Path>,
    mode: Mode,
) {
    for (k, v) in map {
        path.push(format!("f:{k}"));
        walk(v, ty.field(k), path, out, mode);
        path.pop();
    }
}

fn with(path: &Path, element: &str) -> Path {
    let mut p = path.clone();
    p.push(element.to_string());
    p
}

/// The `k:` encoding of a keyed list item: its list-map keys (defaulted), sorted by name.
pub fn key_of(item: &Map<String, Value>, keys: &ListKeys) -> String {
    let mut key = BTreeMap::new();
    let names: &[&str] = if keys.map_keys.is_empty() {
        &[keys.patch_merge_key]
    } else {
        keys.map_keys
    };
    for name in names {
        let value = item.get(*name).cloned().or_else(|| {
            keys.key_defaults
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, d)| Value::String(d.to_string()))
        });
        if let Some(v) = value {
            key.insert(name.to_string(), v);
        }
    }
    serde_json::to_string(&key).unwrap_or_default()
}

/// The value at a field path, if present. `.` resolves to the node itself.
pub fn value_at<'a>(
    object: &'a Value,
    path: &[String],
    root: &'static TypeDef,
) -> Option<&'a Value> {
    let mut cur = object;
    let mut ty: &'static TypeDef = root;
    let mut kind: Option<FieldKind> = None;
    for element in path {
        if element == "." {
            return Some(cur);
        }
        if let Some(name) = element.strip_prefix("f:") {
            let map = cur.as_object()?;
            kind = if std::ptr::eq(ty, root) && name == "metadata" {
                Some(FieldKind::Struct(&OBJECT_META))
            } else {
                ty.field(name)
            };
            cur = map.get(name)?;
            ty = kind.map(FieldKind::object_type).unwrap_or(&EMPTY);
        } else if let Some(k) = element.strip_prefix("k:") {
            let Some(FieldKind::Keyed(keys)) = kind else {
                return None;
            };
            let items = cur.as_array()?;
            cur = items
                .iter()
                .find(|i| i.as_object().is_some_and(|m| key_of(m, keys) == k))?;
            ty = keys.item;
            kind = None;
        } else if let Some(v) = element.strip_prefix("v:") {
            let want: Value = serde_json::from_str(v).ok()?;
            cur = cur.as_array()?.iter().find(|i| **i == want)?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Remove the value at a field path (a `.` path removes the node it marks).
pub fn remove_at(object: &mut Value, path: &[String], root: &'static TypeDef) {
    let path: &[String] = match path.last() {
        Some(last) if last == "." => &path[..path.len() - 1],
        _ => path,
    };
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let (parent_kind, _) = kind_at(path, root);
    let Some(parent) = value_at_mut(object, parent_path, root) else {
        return;
    };
    if let Some(name) = last.strip_prefix("f:") {
        if let Value::Object(map) = parent {
            map.remove(name);
        }
    } else if let Some(k) = last.strip_prefix("k:") {
        if let (Value::Array(items), Some(FieldKind::Keyed(keys))) = (parent, parent_kind) {
            items.retain(|i| i.as_object().is_none_or(|m| key_of(m, keys) != k));
        }
    } else if let Some(v) = last.strip_prefix("v:")
        && let (Value::Array(items), Ok(want)) = (parent, serde_json::from_str::<Value>(v))
    {
        items.retain(|i| *i != want);
    }
}

/// The merge kind of the list that holds the last element of `path`.
fn kind_at(path: &[String], root: &'static TypeDef) -> (Option<FieldKind>, &'static TypeDef) {
    let mut ty: &'static TypeDef = root;
    let mut kind = None;
    let mut parent_kind = None;
    for (i, element) in path.iter().enumerate() {
        parent_kind = kind;
        if let Some(name) = element.strip_prefix("f:") {
            kind = if i == 0 && name == "metadata" {
                Some(FieldKind::Struct(&OBJECT_META))
            } else {
                ty.field(name)
            };
            ty = kind.map(FieldKind::object_type).unwrap_or(&EMPTY);
        } else if element.starts_with("k:") {
            if let Some(FieldKind::Keyed(keys)) = kind {
                ty = keys.item;
            }
            kind = None;
        }
    }
    (parent_kind, ty)
}

fn value_at_mut<'a>(
    object: &'a mut Value,
    path: &[String],
    root: &'static TypeDef,
) -> Option<&'a mut Value> {
    let mut cur = object;
    let mut ty: &'static TypeDef = root;
    let mut kind: Option<FieldKind> = None;
    for (i, element) in path.iter().enumerate() {
        if let Some(name) = element.strip_prefix("f:") {
            kind = if i == 0 && name == "metadata" {
                Some(FieldKind::Struct(&OBJECT_META))
            } else {
                ty.field(name)
            };
            cur = cur.as_object_mut()?.get_mut(name)?;
            ty = kind.map(FieldKind::object_type).unwrap_or(&EMPTY);
        } else if let Some(k) = element.strip_prefix("k:") {
            let Some(FieldKind::Keyed(keys)) = kind else {
                return None;
            };
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| i.as_object().is_some_and(|m| key_of(m, keys) == k))?;
            ty = keys.item;
            kind = None;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Server-side apply merge: `applied` onto `live`. Maps merge, keyed lists merge by key,
/// sets union, everything else is replaced by the applied value.
pub fn merge_applied(live: &mut Value, applied: &Value, root: &'static TypeDef) {
    if let (Value::Object(l), Value::Object(a)) = (live, applied) {
        for (k, av) in a {
            let kind = if k == "metadata" {
                Some(FieldKind::Struct(&OBJECT_META))
            } else {
                root.field(k)
            };
            merge_value(l.entry(k.clone()).or_insert(Value::Null), av, kind);
        }
    }
}

fn merge_value(live: &mut Value, applied: &Value, kind: Option<FieldKind>) {
    match (kind, &mut *live, applied) {
        (Some(FieldKind::AtomicMap), _, _) => *live = applied.clone(),
        (Some(FieldKind::Keyed(keys)), Value::Array(l), Value::Array(a)) => {
            for item in a {
                let Some(item_map) = item.as_object() else {
                    continue;
                };
                let key = key_of(item_map, keys);
                match l
                    .iter_mut()
                    .find(|i| i.as_object().is_some_and(|m| key_of(m, keys) == key))
                {
                    Some(existing) => {
                        if let (Value::Object(e), Value::Object(n)) = (existing, item) {
                            for (k, v) in n {
                                merge_value(
                                    e.entry(k.clone()).or_insert(Value::Null),
                                    v,
                                    keys.item.field(k),
                                );
                            }
                        }
                    }
                    None => l.push(item.clone()),
                }
            }
        }
        (Some(FieldKind::Set), Value::Array(l), Value::Array(a)) => {
            for item in a {
                if !l.contains(item) {
                    l.push(item.clone());
                }
            }
        }
        (_, Value::Object(l), Value::Object(a)) => {
            let ty = kind.map(FieldKind::object_type).unwrap_or(&EMPTY);
            for (k, v) in a {
                merge_value(l.entry(k.clone()).or_insert(Value::Null), v, ty.field(k));
            }
        }
        _ => *live = applied.clone(),
    }
}

/// A conflict path in the form the API server prints: `.spec.replicas`,
/// `.spec.containers[name="web"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(k) = element.strip_prefix("k:") {
            let parsed: BTreeMap<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = parsed.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = element.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl ManagedEntry {
    pub fn from_json(v: &Value) -> Option<ManagedEntry> {
        Some(ManagedEntry {
            manager: v["manager"].as_str()?.to_string(),
            operation: v["operation"].as_str().unwrap_or("Update").to_string(),
            api_version: v["apiVersion"].as_str().unwrap_or_default().to_string(),
            time: v["time"].as_str().unwrap_or_default().to_string(),
            subresource: v["subresource"].as_str().map(str::to_string),
            fields: FieldSet::from_fields_v1(&v["fieldsV1"]),
        })
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": self.fields.to_fields_v1(),
        });
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        v
    }

    fn same_owner(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

pub fn read_managed(object: &Value) -> Vec<ManagedEntry> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| entries.iter().filter_map(ManagedEntry::from_json).collect())
        .unwrap_or_default()
}

pub fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(ManagedEntry::to_json)
        .collect();
    if list.is_empty() && object.get("metadata").is_none() {
        return;
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Who changed what in a non-apply write (create, update, patch): the fields whose value
/// differs between `old` and `new` move to `manager`; fields that disappeared leave every set.
pub struct UpdateOwnership<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub now: &'a str,
}

impl UpdateOwnership<'_> {
    pub fn record(&self, old: Option<&Value>, new: &mut Value, root: &'static TypeDef) {
        let mut entries = old.map(read_managed).unwrap_or_default();
        let new_set = FieldSet::of_object(
            &strip_for_ownership(new, self.subresource),
            root,
            Mode::Update,
        );
        let changed: BTreeSet<Path> = new_set
            .0
            .iter()
            .filter(|p| {
                let before = old.and_then(|o| value_at(o, p, root));
                let after = value_at(new, p, root);
                if p.last().is_some_and(|e| e == ".") {
                    before.is_none()
                } else {
                    before != after
                }
            })
            .cloned()
            .collect();
        for e in &mut entries {
            e.fields
                .0
                .retain(|p| new_set.0.contains(p) || value_at(new, p, root).is_some());
            if !e.same_owner(self.manager, "Update", self.subresource) {
                e.fields.0.retain(|p| !changed.contains(p));
            }
        }
        if !changed.is_empty() {
            match entries
                .iter_mut()
                .find(|e| e.same_owner(self.manager, "Update", self.subresource))
            {
                Some(e) => {
                    e.fields.0.extend(changed);
                    e.time = self.now.to_string();
                    e.api_version = self.api_version.to_string();
                }
                None => entries.push(ManagedEntry {
                    manager: self.manager.to_string(),
                    operation: "Update".into(),
                    api_version: self.api_version.to_string(),
                    time: self.now.to_string(),
                    subresource: self.subresource.map(str::to_string),
                    fields: FieldSet(changed),
                }),
            }
        }
        write_managed(new, &entries);
    }
}

/// Writes through the main resource never own status, and status writes own only status.
fn strip_for_ownership(object: &Value, subresource: Option<&str>) -> Value {
    let mut o = object.clone();
    if let Value::Object(map) = &mut o {
        match subresource {
            Some("status") => map.retain(|k, _| k == "status" || k == "apiVersion" || k == "kind"),
            _ => {
                map.remove("status");
            }
        }
    }
    o
}

/// The outcome of a server-side apply.
pub struct ApplyOutcome {
    pub object: Value,
    /// `(manager, display path)` of every conflicting field; non-empty means 409 unless forced.
    pub conflicts: Vec<(String, String)>,
}

/// Server-side apply of `applied` by `manager` onto `live` (None when creating).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &str,
    root: &'static TypeDef,
) -> ApplyOutcome {
    let mut entries = live.map(read_managed).unwrap_or_default();
    let applied_set = FieldSet::of_object(&strip_for_ownership(applied, None), root, Mode::Apply);
    let mut object = live.cloned().unwrap_or_else(|| json!({}));

    let mut conflicts = Vec::new();
    let mut forced: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.manager == manager && e.operation == "Apply" {
            continue;
        }
        if e.subresource.is_some() {
            continue;
        }
        for p in e.fields.leaves() {
            if !applied_set.0.contains(p) {
                continue;
            }
            let (have, want) = (value_at(&object, p, root), value_at(applied, p, root));
            if have != want {
                if force {
                    forced.push((i, p.clone()));
                } else {
                    conflicts.push((e.manager.clone(), display_path(p)));
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return ApplyOutcome { object, conflicts };
    }
    for (i, p) in forced {
        entries[i].fields.0.remove(&p);
    }

    let previous = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource.is_none())
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    merge_applied(&mut object, applied, root);

    // Fields this manager applied before and no longer does are removed when nobody else
    // owns them. Deepest first, so a list item goes after its own fields.
    let mut dropped: Vec<&Path> = previous
        .0
        .iter()
        .filter(|p| !applied_set.0.contains(*p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    // A removed list item takes its fields with it; removing those first would change the
    // item's key before the item itself is found.
    let whole_nodes: BTreeSet<&[String]> = dropped
        .iter()
        .filter(|p| p.last().is_some_and(|e| e == "."))
        .map(|p| &p[..p.len() - 1])
        .collect();
    dropped.retain(|p| {
        let is_marker = p.last().is_some_and(|e| e == ".");
        !whole_nodes.iter().any(|node| {
            p.starts_with(node) && p.len() > node.len() && !(is_marker && p.len() == node.len() + 1)
        })
    });
    for p in dropped {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.0.contains(p));
        if !owned_elsewhere {
            remove_at(&mut object, p, root);
        }
    }

    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource.is_none())
    {
        Some(e) => {
            e.fields = applied_set;
            e.time = now.to_string();
            e.api_version = api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: None,
            fields: applied_set,
        }),
    }
    write_managed(&mut object, &entries);
    ApplyOutcome { object, conflicts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiphys_patch::schema::for_kind;

    fn deploy_root() -> &'static TypeDef {
        for_kind("apps", "Deployment")
    }

    #[test]
    fn apply_field_set_matches_the_real_servers_shape() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "demo", "labels": {"app": "demo"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
              "template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                "ports": [{"containerPort": 80, "name": "http"}]}]}}}});
        let set = FieldSet::of_object(&obj, deploy_root(), Mode::Apply);
        let v1 = set.to_fields_v1();
        assert_eq!(v1["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        assert_eq!(v1["f:spec"]["f:selector"], json!({}));
        let c = &v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(c["."], json!({}));
        assert!(
            c["f:ports"]
                .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
                .is_some()
        );
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
    }

    #[test]
    fn apply_conflicts_with_other_manager_unless_forced() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let root = for_kind("", "ConfigMap");
        let first = apply(None, &cm, "kubectl", false, "v1", "t", root);
        assert!(first.conflicts.is_empty());
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
        let conflict = apply(Some(&first.object), &other, "other", false, "v1", "t", root);
        assert_eq!(
            conflict.conflicts,
            vec![("kubectl".to_string(), ".data.a".to_string())]
        );
        let forced = apply(Some(&first.object), &other, "other", true, "v1", "t", root);
        assert_eq!(forced.object["data"]["a"], "2");
        let managers: Vec<String> = read_managed(&forced.object)
            .into_iter()
            .map(|e| e.manager)
            .collect();
        assert_eq!(managers, vec!["other"]);
    }

    #[test]
    fn fields_dropped_from_applied_config_are_removed() {
        let root = for_kind("", "ConfigMap");
        let v1 = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let v2 = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let first = apply(None, &v1, "m", false, "v1", "t", root);
        let second = apply(Some(&first.object), &v2, "m", false, "v1", "t", root);
        assert_eq!(second.object["data"], json!({"a": "1"}));
    }

    #[test]
    fn dropped_list_items_are_removed_but_shared_fields_stay() {
        let root = deploy_root();
        let with_two = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let with_one =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let first = apply(None, &with_two, "m", false, "apps/v1", "t", root);
        let second = apply(
            Some(&first.object),
            &with_one,
            "m",
            false,
            "apps/v1",
            "t",
            root,
        );
        assert_eq!(
            second.object["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );

        // Another manager shares `data.b` with the same value: it stays.
        let cm_root = for_kind("", "ConfigMap");
        let v1 = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let first = apply(None, &v1, "m", false, "v1", "t", cm_root);
        let shared = apply(
            Some(&first.object),
            &json!({"metadata": {"name": "c"}, "data": {"b": "2"}}),
            "n",
            false,
            "v1",
            "t",
            cm_root,
        );
        let after = apply(
            Some(&shared.object),
            &json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
            "m",
            false,
            "v1",
            "t",
            cm_root,
        );
        assert_eq!(after.object["data"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn update_ownership_moves_changed_fields() {
        let root = for_kind("", "ConfigMap");
        let mut created = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        UpdateOwnership {
            manager: "x",
            api_version: "v1",
            subresource: None,
            now: "t",
        }
        .record(None, &mut created, root);
        let mut updated = created.clone();
        updated["data"]["a"] = json!("2");
        UpdateOwnership {
            manager: "y",
            api_version: "v1",
            subresource: None,
            now: "t",
        }
        .record(Some(&created), &mut updated, root);
        let entries = read_managed(&updated);
        let y = entries.iter().find(|e| e.manager == "y").unwrap();
        assert!(
            y.fields
                .0
                .contains(&vec!["f:data".to_string(), "f:a".to_string()])
        );
        let x = entries.iter().find(|e| e.manager == "x").unwrap();
        assert!(
            !x.fields
                .0
                .contains(&vec!["f:data".to_string(), "f:a".to_string()])
        );
    }

    #[test]
    fn display_path_formats_keys() {
        let p: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"web\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(display_path(&p), ".spec.containers[name=\"web\"].image");
    }
}
