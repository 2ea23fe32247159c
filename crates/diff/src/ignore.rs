//! `ignoreDifferences`: per-Application rules and system-wide ones (argocd-cm
//! `resource.customizations.ignoreDifferences.<group_kind>` / `.all`).

use serde_json::Value;
use tiphys_model::application::ResourceIgnoreDifferences;

use crate::fields;
use crate::jq::{JqError, JqPath};

/// One rule: which objects, and what to ignore in them.
#[derive(Clone, Debug, Default)]
pub struct IgnoreRule {
    /// Empty matches any group; `*` globs are allowed in group and kind.
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub json_pointers: Vec<String>,
    pub jq_paths: Vec<JqPath>,
    pub managers: Vec<String>,
}

/// Every rule that applies to an app.
#[derive(Clone, Debug, Default)]
pub struct IgnoreRules(pub Vec<IgnoreRule>);

impl IgnoreRule {
    pub fn from_spec(spec: &ResourceIgnoreDifferences) -> Result<IgnoreRule, JqError> {
        Ok(IgnoreRule {
            group: spec.group.clone(),
            kind: spec.kind.clone(),
            name: spec.name.clone(),
            namespace: spec.namespace.clone(),
            json_pointers: spec.json_pointers.clone(),
            jq_paths: spec
                .jq_path_expressions
                .iter()
                .map(|e| JqPath::parse(e))
                .collect::<Result<_, _>>()?,
            managers: spec.managed_fields_managers.clone(),
        })
    }

    /// Whether this rule is about `obj`.
    pub fn matches(&self, obj: &Value) -> bool {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        glob(&self.group, group, true)
            && glob(&self.kind, kind, false)
            && (self.name.is_empty() || self.name == name)
            && (self.namespace.is_empty() || self.namespace == namespace)
    }
}

impl IgnoreRules {
    /// Remove ignored fields from `obj`. `live` supplies managedFields for manager rules.
    pub fn apply(&self, obj: &mut Value, live: &Value) {
        let matching: Vec<&IgnoreRule> = self
            .0
            .iter()
            .filter(|r| r.matches(live) || r.matches(obj))
            .collect();
        for rule in matching {
            for pointer in &rule.json_pointers {
                remove_pointer(obj, pointer);
            }
            for path in &rule.jq_paths {
                path.delete(obj);
            }
            if !rule.managers.is_empty() {
                for owned in fields::owned_by(live, &rule.managers) {
                    fields::remove_fields(obj, owned);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `pattern` matches `value`; an empty pattern matches anything when `empty_matches`
/// (an unset group means any group), else only the empty value.
fn glob(pattern: &str, value: &str, empty_matches: bool) -> bool {
    if pattern.is_empty() {
        return empty_matches || value.is_empty();
    }
    tiphys_model::glob::matches(pattern, value)
}

fn remove_pointer(obj: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match obj.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
            "managedFields": [{"manager": "hpa", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 4, "template": {"metadata": {"annotations": {"a/b": "x"}}}}})
    }

    #[test]
    fn pointers_and_managers() {
        let live = deployment();
        let rules = IgnoreRules(vec![IgnoreRule {
            group: "apps".into(),
            kind: "Deployment".into(),
            json_pointers: vec!["/spec/template/metadata/annotations/a~1b".into()],
            managers: vec!["hpa".into()],
            ..Default::default()
        }]);
        let mut obj = live.clone();
        rules.apply(&mut obj, &live);
        assert!(obj.pointer("/spec/replicas").is_none());
        assert_eq!(
            obj.pointer("/spec/template/metadata/annotations"),
            Some(&json!({}))
        );
    }

    #[test]
    fn rules_select_by_group_kind_and_name() {
        let live = deployment();
        let other_kind = IgnoreRule {
            group: "apps".into(),
            kind: "StatefulSet".into(),
            ..Default::default()
        };
        let other_name = IgnoreRule {
            kind: "Deployment".into(),
            name: "api".into(),
            ..Default::default()
        };
        let any = IgnoreRule {
            group: "*".into(),
            kind: "*".into(),
            ..Default::default()
        };
        assert!(!other_kind.matches(&live));
        assert!(!other_name.matches(&live));
        assert!(any.matches(&live));
    }
}
