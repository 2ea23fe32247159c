//! `buildMetadata`: the `app.kubernetes.io/managed-by` label and `config.kubernetes.io/origin`
//! annotations, as kubectl's kustomize writes them.

use std::path::Path;

use serde_json::{Value, json};

use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource, Source, Transformation};

/// What kubectl's vendored kustomize reports as its version.
const MANAGED_BY: &str = "kustomize-(devel)";

/// `path` relative to `top`, with `..` where it lies outside (`../base/cm.yaml`).
fn relative(top: &Path, path: &Path) -> String {
    let top = top.canonicalize().unwrap_or_else(|_| top.to_path_buf());
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let (a, b): (Vec<_>, Vec<_>) = (top.components().collect(), path.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), a.len() - common).collect();
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// Does `k` list `option` under `buildMetadata`?
pub fn wants(k: &Kustomization, option: &str) -> bool {
    k.spec["buildMetadata"]
        .as_array()
        .is_some_and(|options| options.iter().any(|o| o == option))
}

/// The built-in transformers a kustomization configures, in the order kustomize runs them:
/// one per patch, label set, replica count and image; one for the rest.
fn transformers_of(k: &Kustomization) -> Vec<&'static str> {
    let spec = &k.spec;
    let count = |field: &str| spec[field].as_array().map_or(0, Vec::len);
    let set = |field: &str| match &spec[field] {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => false,
    };
    let mut kinds = Vec::new();
    if set("patchesStrategicMerge") {
        kinds.push("PatchStrategicMergeTransformer");
    }
    kinds.extend(std::iter::repeat_n("PatchTransformer", count("patches")));
    for (field, kind) in [
        ("namespace", "NamespaceTransformer"),
        ("namePrefix", "PrefixTransformer"),
        ("nameSuffix", "SuffixTransformer"),
    ] {
        if set(field) {
            kinds.push(kind);
        }
    }
    // One per `labels` entry, and one for commonLabels whenever there are any labels.
    if set("labels") || set("commonLabels") {
        kinds.extend(std::iter::repeat_n("LabelTransformer", count("labels") + 1));
    }
    if set("commonAnnotations") {
        kinds.push("AnnotationsTransformer");
    }
    kinds.extend(std::iter::repeat_n(
        "PatchJson6902Transformer",
        count("patchesJson6902"),
    ));
    kinds.extend(std::iter::repeat_n(
        "ReplicaCountTransformer",
        count("replicas"),
    ));
    kinds.extend(std::iter::repeat_n("ImageTagTransformer", count("images")));
    if set("replacements") {
        kinds.push("ReplacementTransformer");
    }
    kinds
}

/// Note on every resource the transformers `k` ran over it (kustomize records a transformer
/// on every resource present when it ran, changed or not).
pub fn record_transformers(k: &Kustomization, resources: &mut [Resource]) {
    let kinds = transformers_of(k);
    if kinds.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        r.transformations
            .extend(kinds.iter().map(|kind| Transformation {
                file: k.file.clone(),
                kind: kind.to_string(),
                name: None,
            }));
    }
}

/// `configuredBy` as kustomize writes it, indented by `indent` spaces.
fn configured_by(kind: &str, name: Option<&str>, indent: &str) -> String {
    let mut out = format!("{indent}apiVersion: builtin\n{indent}kind: {kind}\n");
    if let Some(name) = name {
        out.push_str(&format!("{indent}name: {name}\n"));
    }
    out
}

pub fn apply(
    k: &Kustomization,
    top: &Path,
    resources: &mut [Resource],
) -> Result<(), KustomizeError> {
    let Some(options) = k.spec["buildMetadata"].as_array() else {
        return Ok(());
    };
    for option in options {
        match option.as_str() {
            Some("managedByLabel") => {
                for r in resources.iter_mut() {
                    let meta = &mut r.object["metadata"];
                    if !meta["labels"].is_object() {
                        meta["labels"] = json!({});
                    }
                    meta["labels"]["app.kubernetes.io/managed-by"] = json!(MANAGED_BY);
                }
            }
            Some("originAnnotations") => {
                for r in resources.iter_mut() {
                    let origin = match &r.source {
                        Source::File(path) => format!("path: {}\n", relative(top, path)),
                        Source::Remote(url) => format!("path: {url}\n"),
                        Source::Generated {
                            kustomization,
                            generator,
                            name,
                        } => format!(
                            "configuredIn: {}\nconfiguredBy:\n{}",
                            relative(top, kustomization),
                            configured_by(generator, name.as_deref(), "  ")
                        ),
                    };
                    let meta = &mut r.object["metadata"];
                    if !meta["annotations"].is_object() {
                        meta["annotations"] = json!({});
                    }
                    meta["annotations"]["config.kubernetes.io/origin"] = json!(origin);
                }
            }
            Some("transformerAnnotations") => {
                for r in resources
                    .iter_mut()
                    .filter(|r| !r.transformations.is_empty())
                {
                    let mut list = String::new();
                    for t in &r.transformations {
                        list.push_str(&format!(
                            "- configuredIn: {}\n  configuredBy:\n{}",
                            relative(top, &t.file),
                            configured_by(&t.kind, t.name.as_deref(), "    ")
                        ));
                    }
                    let meta = &mut r.object["metadata"];
                    if !meta["annotations"].is_object() {
                        meta["annotations"] = json!({});
                    }
                    meta["annotations"]["alpha.config.kubernetes.io/transformations"] = json!(list);
                }
            }
            other => {
                return Err(KustomizeError::Unsupported {
                    path: k.path(),
                    field: format!("buildMetadata: {}", other.unwrap_or_default()),
                });
            }
        }
    }
    Ok(())
}
