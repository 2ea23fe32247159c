//! Kustomize sources, through `kustomize build` or `kubectl kustomize` from PATH until the
//! native engine (its own issue) lands behind this same function.

use std::path::Path;
use std::process::Command;

use tiphys_model::application::ApplicationSourceKustomize;

use crate::objects::from_document;
use crate::yaml::parse_documents;
use crate::{Manifest, RenderError, relative};

fn has_overrides(k: &ApplicationSourceKustomize) -> bool {
    !k.name_prefix.is_empty()
        || !k.name_suffix.is_empty()
        || !k.images.is_empty()
        || !k.common_labels.is_empty()
        || !k.common_annotations.is_empty()
        || !k.namespace.is_empty()
        || !k.replicas.is_empty()
        || !k.patches.is_empty()
        || !k.components.is_empty()
}

pub fn render(
    root: &Path,
    dir: &Path,
    options: Option<&ApplicationSourceKustomize>,
) -> Result<Vec<Manifest>, RenderError> {
    let rel = relative(root, dir);
    if options.is_some_and(has_overrides) {
        return Err(RenderError::Unsupported(format!(
            "{rel}: Kustomize overrides in the Application (namePrefix, images, patches, ...) need the native Kustomize engine, which is not built yet"
        )));
    }
    let attempts: [(&str, &[&str]); 2] = [("kustomize", &["build"]), ("kubectl", &["kustomize"])];
    for (tool, args) in attempts {
        let output = match Command::new(tool).args(args).arg(dir).output() {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RenderError::Io {
                    path: tool.into(),
                    source,
                });
            }
        };
        if !output.status.success() {
            return Err(RenderError::ToolFailed {
                tool: format!("{tool} {}", args.join(" ")),
                path: rel,
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let docs = parse_documents(&text).map_err(|e| RenderError::Yaml {
            file: format!("{rel} (kustomize output)"),
            line: e.line,
            message: e.message,
        })?;
        return Ok(docs
            .into_iter()
            .flat_map(|d| from_document(d, &format!("{rel}/kustomization.yaml")))
            .collect());
    }
    Err(RenderError::ToolMissing {
        tool: "kustomize",
        hint: "install kustomize or kubectl to render Kustomize overlays",
    })
}
