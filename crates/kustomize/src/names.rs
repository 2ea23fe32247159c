//! Name references: when a ConfigMap, Secret, ServiceAccount, ... is renamed (prefix,
//! suffix, content hash, a patch), every field that refers to it by name follows. Which
//! fields refer to which kinds is the transformer configuration's `nameReference` table.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::{NameReference, TransformerConfig, visit};
use crate::transformers::is_cluster_scoped;
use crate::{KustomizeError, Resource};

/// A resource whose name changed during the build.
struct Renamed {
    group: String,
    version: String,
    kind: String,
    namespace: String,
    /// The namespace it was read in.
    old_namespace: String,
    /// The names it had before (its name, when only its namespace changed).
    old: Vec<String>,
    new: String,
    affixes: Vec<String>,
}

impl Renamed {
    fn in_namespace(&self, scope: Scope<'_>) -> bool {
        match scope {
            Scope::Any => true,
            // A reference map names the namespace the object is in, or was read in.
            Scope::Exactly(namespace) => {
                effective(&self.namespace) == effective(namespace)
                    || effective(&self.old_namespace) == effective(namespace)
            }
            // A namespaced referrer means objects of its own namespace, or cluster-scoped.
            Scope::Referrer(namespace) => {
                is_cluster_scoped(&self.group, &self.kind)
                    || effective(&self.namespace) == effective(namespace)
            }
        }
    }
}

/// Which namespaces a reference may point into.
#[derive(Clone, Copy)]
enum Scope<'a> {
    /// From a cluster-scoped referrer, or a reference map that does not say.
    Any,
    /// A reference map's own `namespace`.
    Exactly(&'a str),
    /// A plain name in a namespaced referrer.
    Referrer(&'a str),
}

/// An empty namespace is `default`.
/// A namespace as kustomize compares them: empty is `default`.
pub(crate) fn effective(namespace: &str) -> &str {
    if namespace.is_empty() {
        "default"
    } else {
        namespace
    }
}

pub fn fix_references(
    resources: &mut [Resource],
    config: &TransformerConfig,
) -> Result<(), KustomizeError> {
    let renamed: Vec<Renamed> = resources
        .iter()
        .filter(|r| !r.previous_names.is_empty() || r.namespace() != r.origin_namespace)
        .map(|r| {
            let mut old = r.previous_names.clone();
            if r.namespace() != r.origin_namespace && !old.iter().any(|n| n == r.name()) {
                old.push(r.name().to_string());
            }
            Renamed {
                group: r.group().to_string(),
                version: r.version().to_string(),
                kind: r.kind().to_string(),
                namespace: r.namespace().to_string(),
                old_namespace: r.origin_namespace.clone(),
                old,
                new: r.name().to_string(),
                affixes: r.affixes.clone(),
            }
        })
        .collect();
    if renamed.is_empty() {
        return Ok(());
    }
    // Only the table entries whose target kind was renamed can change anything; their
    // candidates are found by old name.
    let active: Vec<(&NameReference, Candidates)> = config
        .name_reference
        .iter()
        .filter_map(|reference| {
            let mut candidates = Candidates::new();
            for r in renamed
                .iter()
                .filter(|r| reference.target.selects(&r.group, &r.version, &r.kind))
            {
                for old in &r.old {
                    candidates.entry(old.as_str()).or_default().push(r);
                }
            }
            (!candidates.is_empty()).then_some((reference, candidates))
        })
        .collect();
    for r in resources.iter_mut() {
        let namespace =
            (!is_cluster_scoped(r.group(), r.kind())).then(|| r.namespace().to_string());
        let (group, version, kind) = (
            r.group().to_string(),
            r.version().to_string(),
            r.kind().to_string(),
        );
        let affixes = r.affixes.clone();
        let mut error = None;
        for (reference, candidates) in &active {
            for spec in &reference.referrers {
                if !spec.gvk.selects(&group, &version, &kind) {
                    continue;
                }
                let Some((last, parents)) = spec.path.split_last() else {
                    continue;
                };
                let referrer = Referrer {
                    candidates,
                    namespace: namespace.as_deref(),
                    affixes: &affixes,
                };
                // A binding's roleRef says whether it means a Role or a ClusterRole; kustomize
                // checks no other `kind` next to a name (an HPA's scaleTargetRef follows a
                // renamed StatefulSet even when it says Deployment).
                let role_ref = parents.last().is_some_and(|p| p == "roleRef");
                visit(&mut r.object, parents, false, &mut |parent| {
                    let sibling_kind = match role_ref {
                        true => parent["kind"].as_str().map(str::to_string),
                        false => None,
                    };
                    if let Some(field) = parent.get_mut(last.as_str())
                        && let Err(e) = referrer.fix(field, sibling_kind.as_deref())
                    {
                        error.get_or_insert(e);
                    }
                });
            }
        }
        if let Some(message) = error {
            return Err(KustomizeError::Invalid {
                path: r.id(),
                field: "name reference".into(),
                message,
            });
        }
    }
    Ok(())
}

/// Renamed objects by each name they had.
type Candidates<'a> = HashMap<&'a str, Vec<&'a Renamed>>;

/// The objects one referrer's field may name.
struct Referrer<'a> {
    candidates: &'a Candidates<'a>,
    namespace: Option<&'a str>,
    /// The referrer's own prefixes and suffixes.
    affixes: &'a [String],
}

impl Referrer<'_> {
    /// Rewrite a name (a string, a list of names, or a `{name, namespace}` map) that names a
    /// renamed object; `kind`, when given (a roleRef's), must be the object's kind.
    fn fix(&self, field: &mut Value, kind: Option<&str>) -> Result<(), String> {
        match field {
            Value::String(name) => {
                let scope = match self.namespace {
                    Some(namespace) => Scope::Referrer(namespace),
                    None => Scope::Any,
                };
                if let Some(target) = self.select(name, kind, scope)? {
                    *field = json!(target.new);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.fix(item, kind)?;
                }
            }
            Value::Object(map) => {
                // A reference map (a subject, a webhook's service) is matched by name and its
                // own namespace, whatever its kind says (kustomize renames a User subject
                // that shares a ServiceAccount's name), and takes the object's namespace.
                let scope = match map.get("namespace").and_then(Value::as_str) {
                    Some(namespace) => Scope::Exactly(namespace),
                    None => Scope::Any,
                };
                if let Some(name) = map.get("name").and_then(Value::as_str)
                    && let Some(target) = self.select(name, None, scope)?
                {
                    map.insert("name".into(), json!(target.new));
                    if !target.namespace.is_empty() {
                        map.insert("namespace".into(), json!(target.namespace));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The one renamed object `name` may mean, if any.
    fn select(
        &self,
        name: &str,
        kind: Option<&str>,
        scope: Scope<'_>,
    ) -> Result<Option<&Renamed>, String> {
        let Some(named) = self.candidates.get(name) else {
            return Ok(None);
        };
        let all: Vec<&Renamed> = named
            .iter()
            .copied()
            .filter(|c| kind.is_none_or(|k| k == c.kind) && c.in_namespace(scope))
            .collect();
        // Several objects had this name (a base reused under different prefixes): the one
        // whose name got the referrer's prefixes and suffixes is meant.
        let alike: Vec<&Renamed> = all
            .iter()
            .copied()
            .filter(|c| c.affixes == self.affixes)
            .collect();
        let distinct = |list: &[&Renamed]| {
            list.iter()
                .map(|c| c.new.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        let chosen = if distinct(&all) > 1 && distinct(&alike) == 1 {
            alike
        } else {
            all
        };
        let mut matches = chosen.into_iter();
        let Some(first) = matches.next() else {
            return Ok(None);
        };
        for other in matches {
            if other.new != first.new {
                return Err(format!(
                    "{name} may mean {} {} ({}) or {} {} ({}): found multiple possible referrals",
                    first.kind,
                    first.new,
                    effective(&first.namespace),
                    other.kind,
                    other.new,
                    effective(&other.namespace),
                ));
            }
        }
        Ok(Some(first))
    }
}
