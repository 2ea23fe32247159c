//! Selecting resources as kustomize does: patch targets (group, version and kind exactly;
//! name and namespace as anchored regular expressions; label and annotation selectors) and
//! the Kubernetes label-selector syntax (`a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
//! `!a`) that patch and replacement targets share.

use regex::Regex;
use serde_json::Value;

use crate::Resource;

/// One requirement of a label selector.
#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label (or annotation) selector; all requirements must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for term in split_terms(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let set = |op: &str| -> Option<Result<(String, Vec<String>), String>> {
                let (key, rest) = term.split_once(op)?;
                let values = rest.trim();
                let Some(inner) = values.strip_prefix('(').and_then(|v| v.strip_suffix(')')) else {
                    return Some(Err(format!("{term}: expected a (list) after {op:?}")));
                };
                let values = inner.split(',').map(|v| v.trim().to_string()).collect();
                Some(Ok((key.trim().to_string(), values)))
            };
            let requirement = if let Some(parsed) = set(" notin ") {
                let (key, values) = parsed?;
                Requirement::NotIn(key, values)
            } else if let Some(parsed) = set(" in ") {
                let (key, values) = parsed?;
                Requirement::In(key, values)
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = term.split_once("==").or(term.split_once('=')) {
                Requirement::Equals(key.trim().into(), value.trim().into())
            } else if let Some(key) = term.strip_prefix('!') {
                Requirement::NotExists(key.trim().into())
            } else {
                Requirement::Exists(term.to_string())
            };
            let key = match &requirement {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(format!("{term}: not a selector requirement"));
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Does the map (`metadata.labels` or `metadata.annotations`) satisfy every requirement?
    pub fn matches(&self, map: &Value) -> bool {
        let get = |k: &str| map.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => map.get(k).is_some(),
            Requirement::NotExists(k) => map.get(k).is_none(),
        })
    }
}

/// Split at commas outside parentheses (`a in (x,y),b`).
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
}

/// A patch target.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Option<LabelSelector>,
    annotations: Option<LabelSelector>,
}

impl Selector {
    /// Parse a target; the error names the field that is wrong.
    pub fn parse(target: &Value) -> Result<Selector, (String, String)> {
        let field = |f: &str| target[f].as_str().filter(|s| !s.is_empty());
        let regex = |f: &str| -> Result<Option<Regex>, (String, String)> {
            field(f)
                .map(|p| {
                    Regex::new(&format!("^(?:{p})$")).map_err(|e| (f.to_string(), e.to_string()))
                })
                .transpose()
        };
        let labels = |f: &str| -> Result<Option<LabelSelector>, (String, String)> {
            field(f)
                .map(|s| LabelSelector::parse(s).map_err(|e| (f.to_string(), e)))
                .transpose()
        };
        Ok(Selector {
            group: field("group").map(str::to_string),
            version: field("version").map(str::to_string),
            kind: field("kind").map(str::to_string),
            name: regex("name")?,
            namespace: regex("namespace")?,
            labels: labels("labelSelector")?,
            annotations: labels("annotationSelector")?,
        })
    }

    /// kustomize matches the name and namespace a resource had originally or has now (an
    /// empty namespace is `default`).
    pub fn matches(&self, r: &Resource) -> bool {
        let effective = |ns: &str| if ns.is_empty() { "default" } else { ns }.to_string();
        self.group.as_deref().is_none_or(|g| g == r.group())
            && self.version.as_deref().is_none_or(|v| v == r.version())
            && self.kind.as_deref().is_none_or(|k| k == r.kind())
            && self
                .name
                .as_ref()
                .is_none_or(|re| re.is_match(&r.origin_name) || re.is_match(r.name()))
            && self
                .namespace
                .as_ref()
                .is_none_or(|re| re.is_match(&effective(r.namespace())))
            && self
                .labels
                .as_ref()
                .is_none_or(|s| s.matches(&r.object["metadata"]["labels"]))
            && self
                .annotations
                .as_ref()
                .is_none_or(|s| s.matches(&r.object["metadata"]["annotations"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_equality_and_sets() {
        let labels = json!({"env": "a", "tier": "web"});
        let yes = |s: &str| LabelSelector::parse(s).unwrap().matches(&labels);
        assert!(yes("env=a"));
        assert!(yes("env==a,tier"));
        assert!(yes("env in (a, b),!skip"));
        assert!(yes("env notin (b),tier!=db"));
        assert!(!yes("env in (b,c)"));
        assert!(!yes("!tier"));
        assert!(LabelSelector::parse("env in a").is_err());
    }
}
