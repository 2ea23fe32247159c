//! ApplicationSets: generators produce parameter sets, templates turn each into an
//! Application. Pure but for reading git trees through [`Repos`]; the controller (and
//! `tiphys appset generate`) supply the trees and the clusters.
#![forbid(unsafe_code)]

pub mod generators;
pub mod template;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tiphys_model::{Application, ApplicationSet};

pub use generators::{ClusterInfo, Repos, path_glob, selector_matches_labels};
pub use template::{Params, Renderer};

pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppSetError {
    #[error("{generator} generator: {message}")]
    Generator { generator: String, message: String },
    #[error("template {template:?}: {message}")]
    Template { template: String, message: String },
    #[error("generated Application {index}: {message}")]
    Invalid { index: usize, message: String },
    #[error("duplicate Application name {name:?} (generated twice)")]
    Duplicate { name: String },
}

/// What generators read from outside: git trees and the known clusters.
pub struct Inputs<'a> {
    pub repos: &'a dyn Repos,
    pub clusters: &'a [ClusterInfo],
}

/// Recursive JSON merge: `overlay` wins, objects merge, `null` deletes.
fn merge_json(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A DNS-1123 subdomain, as Application names must be.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Every Application `appset` generates, in generator order. All-or-nothing: any invalid or
/// duplicate name fails the whole set, so nothing is half-applied.
pub fn applications(
    appset: &ApplicationSet,
    inputs: &Inputs<'_>,
) -> Result<Vec<Application>, AppSetError> {
    let renderer = Renderer {
        go_template: appset.spec.go_template,
        missing_key_error: appset
            .spec
            .go_template_options
            .iter()
            .any(|o| o == "missingkey=error"),
    };
    let base_template = serde_json::to_value(&appset.spec.template).unwrap_or(Value::Null);
    let namespace = appset
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "argocd".into());
    let preserve = appset
        .spec
        .sync_policy
        .as_ref()
        .is_some_and(|p| p.preserve_resources_on_deletion);
    let mut apps = Vec::new();
    let mut names = BTreeMap::new();
    for generator in &appset.spec.generators {
        let generated = generators::generate(generator, &renderer, inputs)?;
        let mut template = base_template.clone();
        if let Some(own) = &generated.template {
            merge_json(&mut template, own);
        }
        for params in &generated.params {
            let mut rendered = renderer.render_value(&template, params)?;
            if let Some(patch) = &appset.spec.template_patch {
                let text = renderer.render(patch, params)?;
                let patch: Value =
                    serde_saphyr::from_str(&text).map_err(|e| AppSetError::Template {
                        template: "templatePatch".into(),
                        message: e.to_string(),
                    })?;
                merge_json(&mut rendered, &patch);
            }
            let index = apps.len();
            let meta = rendered.get("metadata").cloned().unwrap_or(Value::Null);
            let name = meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !valid_name(&name) {
                return Err(AppSetError::Invalid {
                    index,
                    message: format!(
                        "name {name:?} is not a valid Kubernetes name (DNS-1123 subdomain)"
                    ),
                });
            }
            if names.insert(name.clone(), index).is_some() {
                return Err(AppSetError::Duplicate { name });
            }
            let mut finalizers: Vec<Value> = meta
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !preserve
                && !finalizers.iter().any(|f| {
                    f.as_str()
                        .is_some_and(|f| f.starts_with(RESOURCES_FINALIZER))
                })
            {
                finalizers.push(Value::String(RESOURCES_FINALIZER.into()));
            }
            let mut metadata = json!({"name": name, "namespace": namespace});
            for field in ["labels", "annotations"] {
                if let Some(v) = meta
                    .get(field)
                    .filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                {
                    metadata[field] = v.clone();
                }
            }
            if !finalizers.is_empty() {
                metadata["finalizers"] = Value::Array(finalizers);
            }
            let object = json!({
                "apiVersion": tiphys_model::API_VERSION,
                "kind": "Application",
                "metadata": metadata,
                "spec": rendered.get("spec").cloned().unwrap_or(Value::Null),
            });
            let app: Application =
                serde_json::from_value(object).map_err(|e| AppSetError::Invalid {
                    index,
                    message: format!("{name}: {e}"),
                })?;
            apps.push(app);
        }
    }
    Ok(apps)
}

#[cfg(test)]
mod tests;
