//! `buildMetadata`: the `app.kubernetes.io/managed-by` label and `config.kubernetes.io/origin`
//! annotations, as kubectl's kustomize writes them.

use std::path::Path;

use serde_json::json;

use crate::kustomization::Kustomization;
use crate::{KustomizeError, Resource, Source};

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
                        Source::Generated {
                            kustomization,
                            generator,
                        } => format!(
                            "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {generator}\n",
                            relative(top, kustomization)
                        ),
                    };
                    let meta = &mut r.object["metadata"];
                    if !meta["annotations"].is_object() {
                        meta["annotations"] = json!({});
                    }
                    meta["annotations"]["config.kubernetes.io/origin"] = json!(origin);
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
