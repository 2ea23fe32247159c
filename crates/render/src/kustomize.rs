//! Kustomize sources: the native engine (`tiphys-kustomize`), with the Application's
//! Kustomize overrides applied as an overlay on top of the path. When the native engine
//! refuses a feature it does not implement yet, `kustomize build` or `kubectl kustomize` from
//! PATH renders instead, if present.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tiphys_kustomize::KustomizeError;
use tiphys_model::application::ApplicationSourceKustomize;

use crate::objects::from_document;
use crate::yaml::{Document, parse_documents};
use crate::{Manifest, RenderError, relative};

/// The Application's overrides as a kustomization that has `dir` as its one resource.
fn overlay(dir: &Path, k: &ApplicationSourceKustomize) -> Value {
    let mut o = json!({"resources": [dir.display().to_string()]});
    let set = |o: &mut Value, key: &str, v: Value| {
        o[key] = v;
    };
    if !k.name_prefix.is_empty() {
        set(&mut o, "namePrefix", json!(k.name_prefix));
    }
    if !k.name_suffix.is_empty() {
        set(&mut o, "nameSuffix", json!(k.name_suffix));
    }
    if !k.namespace.is_empty() {
        set(&mut o, "namespace", json!(k.namespace));
    }
    if !k.common_labels.is_empty() {
        set(&mut o, "commonLabels", json!(k.common_labels));
    }
    if !k.common_annotations.is_empty() {
        set(&mut o, "commonAnnotations", json!(k.common_annotations));
    }
    if !k.images.is_empty() {
        // Argo CD's image overrides: `name=newName:tag`, `name:tag`, `name@digest`.
        let images: Vec<Value> = k.images.iter().map(|i| image_override(i)).collect();
        set(&mut o, "images", json!(images));
    }
    if !k.replicas.is_empty() {
        let replicas: Vec<Value> = k
            .replicas
            .iter()
            .map(|r| json!({"name": r.name, "count": r.count.as_i64().or_else(|| r.count.as_str().and_then(|s| s.parse().ok()))}))
            .collect();
        set(&mut o, "replicas", json!(replicas));
    }
    if !k.patches.is_empty() {
        set(
            &mut o,
            "patches",
            serde_json::to_value(&k.patches).unwrap_or(Value::Null),
        );
    }
    if !k.components.is_empty() {
        let components: Vec<String> = k
            .components
            .iter()
            .map(|c| dir.join(c).display().to_string())
            .collect();
        set(&mut o, "components", json!(components));
    }
    o
}

fn image_override(spec: &str) -> Value {
    let (name, target) = spec.split_once('=').unwrap_or(("", spec));
    let (target_name, digest) = match target.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (target, None),
    };
    let slash = target_name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (new_name, tag) = match target_name[slash..].rfind(':') {
        Some(i) => (
            &target_name[..slash + i],
            Some(&target_name[slash + i + 1..]),
        ),
        None => (target_name, None),
    };
    let mut v = json!({"name": if name.is_empty() { new_name } else { name }});
    if !name.is_empty() && name != new_name {
        v["newName"] = json!(new_name);
    }
    if let Some(t) = tag {
        v["newTag"] = json!(t);
    }
    if let Some(d) = digest {
        v["digest"] = json!(d);
    }
    v
}

pub fn render(
    root: &Path,
    dir: &Path,
    options: Option<&ApplicationSourceKustomize>,
    req: &crate::Request<'_>,
) -> Result<Vec<Manifest>, RenderError> {
    let (remote, build_options) = (req.remote, req.kustomize_options);
    let rel = relative(root, dir);
    let origin_file = format!("{rel}/kustomization.yaml");
    let overrides = options
        .map(|k| overlay(dir, k))
        .filter(|o| o.as_object().is_some_and(|m| m.len() > 1));
    let native = match &overrides {
        None => tiphys_kustomize::build_with_options(dir, remote, build_options),
        Some(overlay) => {
            let scratch = std::env::temp_dir().join(format!(
                "tiphys-kustomize-{}-{}",
                std::process::id(),
                unique()
            ));
            std::fs::create_dir_all(&scratch).map_err(|source| RenderError::Io {
                path: scratch.display().to_string(),
                source,
            })?;
            let file = scratch.join("kustomization.yaml");
            std::fs::write(&file, overlay.to_string()).map_err(|source| RenderError::Io {
                path: file.display().to_string(),
                source,
            })?;
            let built = tiphys_kustomize::build_with_options(&scratch, remote, build_options);
            let _ = std::fs::remove_dir_all(&scratch);
            built
        }
    };
    match native {
        Ok(objects) => Ok(objects
            .into_iter()
            .enumerate()
            .map(|(index, value)| Manifest {
                object: value,
                origin: crate::Origin {
                    file: origin_file.clone(),
                    document: index,
                    line: 1,
                },
            })
            .collect()),
        Err(e @ (KustomizeError::Unsupported { .. } | KustomizeError::Remote { .. }))
            if overrides.is_none() =>
        {
            external(dir, &rel, &e)
        }
        Err(e) => Err(RenderError::ToolFailed {
            tool: "kustomize".into(),
            path: rel,
            message: e.to_string(),
        }),
    }
}

/// `kustomize build` or `kubectl kustomize`, for what the native engine does not do yet.
fn external(dir: &Path, rel: &str, why: &KustomizeError) -> Result<Vec<Manifest>, RenderError> {
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
                path: rel.to_string(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let docs: Vec<Document> = parse_documents(&text).map_err(|e| RenderError::Yaml {
            file: format!("{rel} (kustomize output)"),
            line: e.line,
            message: e.message,
        })?;
        return Ok(docs
            .into_iter()
            .flat_map(|d| from_document(d, &format!("{rel}/kustomization.yaml")))
            .collect());
    }
    Err(RenderError::Unsupported(format!(
        "{why}; and neither kustomize nor kubectl is on PATH to render it"
    )))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::image_override;
    use serde_json::json;

    #[test]
    fn argo_image_overrides() {
        assert_eq!(
            image_override("nginx:1.28"),
            json!({"name": "nginx", "newTag": "1.28"})
        );
        assert_eq!(
            image_override("nginx=registry/nginx:2"),
            json!({"name": "nginx", "newName": "registry/nginx", "newTag": "2"})
        );
        assert_eq!(
            image_override("nginx@sha256:abc"),
            json!({"name": "nginx", "digest": "sha256:abc"})
        );
    }
}
