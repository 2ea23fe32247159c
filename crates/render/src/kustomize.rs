//! Kustomize sources: the native engine (`tiphys-kustomize`), with the Application's
//! Kustomize overrides applied to the path's kustomization as `kustomize edit` would (in
//! memory: the tree is never written). When the native engine
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

/// Whether the Application sets any override.
fn overrides_anything(k: &ApplicationSourceKustomize) -> bool {
    !(k.name_prefix.is_empty()
        && k.name_suffix.is_empty()
        && k.namespace.is_empty()
        && k.common_labels.is_empty()
        && k.common_annotations.is_empty()
        && k.images.is_empty()
        && k.replicas.is_empty()
        && k.patches.is_empty()
        && k.components.is_empty())
}

/// Apply the Application's Kustomize overrides to the path's kustomization the way Argo CD
/// does — with `kustomize edit` on the file: `namePrefix`, `nameSuffix` and `namespace`
/// replace the kustomization's own; labels and annotations are added (an existing key is an
/// error unless forced); images and replicas are set by name; patches and components are
/// appended.
fn edit(spec: &mut Value, k: &ApplicationSourceKustomize, dir: &Path) -> Result<(), String> {
    if !spec.is_object() {
        return Err("the kustomization is not a mapping".into());
    }
    for (field, value) in [
        ("namePrefix", &k.name_prefix),
        ("nameSuffix", &k.name_suffix),
        ("namespace", &k.namespace),
    ] {
        if !value.is_empty() {
            spec[field] = json!(value);
        }
    }
    if !k.common_labels.is_empty() {
        if k.label_without_selector {
            let mut entry = json!({"pairs": k.common_labels, "includeSelectors": false});
            if k.label_include_templates {
                entry["includeTemplates"] = json!(true);
            }
            push(spec, "labels", entry)?;
        } else {
            add_pairs(
                spec,
                "commonLabels",
                &k.common_labels,
                k.force_common_labels,
                "label",
            )?;
        }
    }
    if !k.common_annotations.is_empty() {
        add_pairs(
            spec,
            "commonAnnotations",
            &k.common_annotations,
            k.force_common_annotations,
            "annotation",
        )?;
    }
    for image in &k.images {
        set_by_name(spec, "images", image_override(image))?;
    }
    for r in &k.replicas {
        let count = r
            .count
            .as_i64()
            .or_else(|| r.count.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("replicas {}: count {} is not a number", r.name, r.count))?;
        set_by_name(spec, "replicas", json!({"name": r.name, "count": count}))?;
    }
    for patch in &k.patches {
        push(
            spec,
            "patches",
            serde_json::to_value(patch).map_err(|e| e.to_string())?,
        )?;
    }
    for component in &k.components {
        if k.ignore_missing_components && !dir.join(component).is_dir() {
            continue;
        }
        push(spec, "components", json!(component))?;
    }
    Ok(())
}

fn list<'a>(spec: &'a mut Value, field: &str) -> Result<&'a mut Vec<Value>, String> {
    let entry = &mut spec[field];
    if entry.is_null() {
        *entry = json!([]);
    }
    entry
        .as_array_mut()
        .ok_or_else(|| format!("{field} is not a list"))
}

fn push(spec: &mut Value, field: &str, item: Value) -> Result<(), String> {
    list(spec, field)?.push(item);
    Ok(())
}

/// `kustomize edit set image|replicas`: update the entry with the same name, else add one.
fn set_by_name(spec: &mut Value, field: &str, item: Value) -> Result<(), String> {
    let items = list(spec, field)?;
    match items.iter_mut().find(|i| i["name"] == item["name"]) {
        Some(existing) => {
            if let (Some(to), Some(from)) = (existing.as_object_mut(), item.as_object()) {
                for (k, v) in from {
                    to.insert(k.clone(), v.clone());
                }
            }
        }
        None => items.push(item),
    }
    Ok(())
}

/// `kustomize edit add label|annotation [--force]`.
fn add_pairs(
    spec: &mut Value,
    field: &str,
    pairs: &std::collections::BTreeMap<String, String>,
    force: bool,
    what: &str,
) -> Result<(), String> {
    let entry = &mut spec[field];
    if entry.is_null() {
        *entry = json!({});
    }
    let map = entry
        .as_object_mut()
        .ok_or_else(|| format!("{field} is not a mapping"))?;
    for (key, value) in pairs {
        if !force && map.get(key).is_some_and(|v| v != value) {
            return Err(format!(
                "{what} {key} already in the kustomization file with another value (force{} to override)",
                if what == "label" {
                    "CommonLabels"
                } else {
                    "CommonAnnotations"
                }
            ));
        }
        map.insert(key.clone(), json!(value));
    }
    Ok(())
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
    let overrides = options.filter(|k| overrides_anything(k));
    let native = match overrides {
        None => tiphys_kustomize::build_with_options(dir, remote, build_options),
        Some(k) => {
            let edit = |spec: &mut Value| edit(spec, k, dir);
            tiphys_kustomize::build_edited(dir, remote, build_options, Some(&edit))
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
