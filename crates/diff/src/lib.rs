//! Desired versus live, per object.
//!
//! The controller asks the API server what applying the desired object would produce (a
//! server-side-apply dry run: defaults filled in, fields owned by other managers kept) and
//! hands that *predicted* object here together with the live one. Both are normalised —
//! status, volatile metadata and ignored fields removed — and compared. Because the prediction
//! comes from the server, defaults and other managers' fields never show up as drift.
//!
//! Pure: values in, a [`Comparison`] out.
#![forbid(unsafe_code)]

pub mod fields;
mod ignore;
mod jq;

use serde_json::{Map, Value};

pub use ignore::{IgnoreRule, IgnoreRules};
pub use jq::{JqError, JqPath};

/// The outcome of comparing one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// True when the live object already matches what applying would produce.
    pub in_sync: bool,
    /// A unified diff, live (`-`) to predicted (`+`), empty when in sync.
    pub diff: String,
    /// Where they differ (the first few paths).
    pub changed: Vec<FieldPath>,
}

/// One step into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path into a JSON document, shown as `spec.containers[0].image`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// `a.b[2].c` as a path (keys with dots cannot be written this way; tests use it).
    pub fn parse(text: &str) -> FieldPath {
        let mut out = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (key, indexes) = part.split_once('[').map_or((part, ""), |(k, i)| (k, i));
            if !key.is_empty() {
                out.push(Segment::Key(key.to_string()));
            }
            for index in indexes.split('[') {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    out.push(Segment::Index(i));
                }
            }
        }
        FieldPath(out)
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if n == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// How many differing paths a comparison lists.
const CHANGED_LISTED: usize = 20;

/// The paths at which `a` and `b` differ: leaves, or a list whose length changed, or a
/// value of a different type.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<FieldPath> {
    fn walk(a: &Value, b: &Value, path: &mut Vec<Segment>, out: &mut Vec<FieldPath>) {
        if out.len() >= CHANGED_LISTED || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    path.push(Segment::Key(k.clone()));
                    walk(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        path,
                        out,
                    );
                    path.pop();
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    path.push(Segment::Index(i));
                    walk(p, q, path, out);
                    path.pop();
                }
            }
            _ => out.push(FieldPath(path.clone())),
        }
    }
    let mut out = Vec::new();
    walk(a, b, &mut Vec::new(), &mut out);
    out
}

/// Metadata the server owns; never drift.
const VOLATILE_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// Annotations written by clients and controllers, not by Git.
const VOLATILE_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
];

/// `obj` without status and server-owned metadata.
pub fn normalize(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in VOLATILE_METADATA {
            meta.remove(*key);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for key in VOLATILE_ANNOTATIONS {
                annotations.remove(*key);
            }
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    out
}

/// Compare the predicted result of applying with the live object, after removing what
/// `rules` says to ignore.
pub fn compare(predicted: &Value, live: &Value, rules: &IgnoreRules) -> Comparison {
    let mut predicted = normalize(predicted);
    let mut live_n = normalize(live);
    rules.apply(&mut predicted, live);
    rules.apply(&mut live_n, live);
    if predicted == live_n {
        return Comparison {
            in_sync: true,
            diff: String::new(),
            changed: Vec::new(),
        };
    }
    Comparison {
        in_sync: false,
        diff: unified(&to_yaml(&live_n), &to_yaml(&predicted), "live", "desired"),
        changed: changed_paths(&live_n, &predicted),
    }
}

/// A unified diff between two texts, with three lines of context.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_name, new_name)
        .to_string()
}

/// YAML with keys sorted, so two objects built in different orders diff cleanly.
pub fn to_yaml(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    serde_saphyr::to_string(&sorted(v)).unwrap_or_default()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_and_server_metadata_are_not_drift() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "uid": "1", "resourceVersion": "7", "managedFields": [],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "data": {"a": "1"}});
        let predicted = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "uid": "1", "resourceVersion": "8"}, "data": {"a": "1"}});
        assert!(compare(&predicted, &live, &IgnoreRules::default()).in_sync);
    }

    #[test]
    fn changed_value_gives_a_unified_diff() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let predicted = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
        let c = compare(&predicted, &live, &IgnoreRules::default());
        assert!(!c.in_sync);
        assert!(
            c.diff.contains("-  a: '1'") || c.diff.contains("-  a: \"1\""),
            "{}",
            c.diff
        );
        assert!(
            c.diff.contains("--- live") && c.diff.contains("+++ desired"),
            "{}",
            c.diff
        );
    }
}
