//! What a source is made of, as Argo CD's repo server reports it (`RepoAppDetailsResponse`,
//! what notification templates get from `call .repo.GetAppDetails`): its type, and for Helm
//! the release name, the value files in the chart, and every value as a flat parameter; for
//! Kustomize the images of what it builds.
//!
//! Helm parameters are the values helm would render with — the chart's `values.yaml`, the
//! selected value files, inline `values`/`valuesObject`, then the source's `parameters` —
//! flattened to `a.b[0].c` names, so `GetParameterValueByName "image.tag"` answers the tag
//! that is deployed, overrides included.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::helm::{ValuesInput, values_inputs};
use crate::yaml::parse_documents;
use crate::{Manifest, RenderError, Request, SourceType, relative};

/// Argo's `RepoAppDetailsResponse`, with its JSON names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDetails {
    #[serde(rename = "type")]
    pub source_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectoryDetails>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmDetails {
    /// The release name.
    pub name: String,
    /// Every values file in the chart directory (`*values*.yaml`), relative to it.
    pub value_files: Vec<String>,
    /// The chart's `values.yaml` as written.
    pub values: String,
    pub parameters: Vec<Parameter>,
    pub file_parameters: Vec<FileParameter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileParameter {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KustomizeDetails {
    /// The container images of the built objects, sorted, each once.
    pub images: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectoryDetails {}

/// The details of `req.source`. `built` gives the source's rendered manifests, asked only for
/// a Kustomize source (the caller usually has them cached).
pub fn app_details(
    req: &Request<'_>,
    built: impl FnOnce() -> Result<Vec<Manifest>, RenderError>,
) -> Result<AppDetails, RenderError> {
    let (dir, _) = crate::source_dir(req)?;
    let source_type = crate::detect(&dir, req.source);
    let mut details = AppDetails {
        source_type: source_type.as_str().to_string(),
        helm: None,
        kustomize: None,
        directory: None,
    };
    match source_type {
        SourceType::Helm => details.helm = Some(helm_details(req, &dir)?),
        SourceType::Kustomize => {
            let mut images: Vec<String> = built()?
                .iter()
                .flat_map(|m| container_images(&m.object))
                .collect();
            images.sort();
            images.dedup();
            details.kustomize = Some(KustomizeDetails { images });
        }
        SourceType::Directory => details.directory = Some(DirectoryDetails {}),
    }
    Ok(details)
}

fn helm_details(req: &Request<'_>, chart_dir: &Path) -> Result<HelmDetails, RenderError> {
    let root = crate::canonical_root(req)?;
    let chart_rel = relative(&root, chart_dir);
    let helm = req.source.helm.clone().unwrap_or_default();
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| RenderError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let chart_values = chart_dir.join("values.yaml");
    let values = if chart_values.is_file() {
        read(&chart_values)?
    } else {
        String::new()
    };
    let mut flat = BTreeMap::new();
    flatten_text(&values, &format!("{chart_rel}/values.yaml"), &mut flat)?;
    for input in values_inputs(&root, &chart_rel, &helm, req)? {
        match input {
            ValuesInput::File(path) => {
                flatten_text(&read(&path)?, &path.display().to_string(), &mut flat)?
            }
            ValuesInput::Text(text) => flatten_text(&text, &chart_rel, &mut flat)?,
        }
    }
    for p in &helm.parameters {
        flat.insert(p.name.clone(), p.value.clone());
    }
    let mut value_files = Vec::new();
    find_value_files(chart_dir, chart_dir, &mut value_files);
    value_files.sort();
    Ok(HelmDetails {
        name: if helm.release_name.is_empty() {
            req.app_name.to_string()
        } else {
            helm.release_name.clone()
        },
        value_files,
        values,
        parameters: flat
            .into_iter()
            .map(|(name, value)| Parameter { name, value })
            .collect(),
        file_parameters: helm
            .file_parameters
            .iter()
            .map(|p| FileParameter {
                name: p.name.clone(),
                path: p.path.clone(),
            })
            .collect(),
    })
}

/// Values text flattened into `out`, later values replacing earlier ones of the same name.
fn flatten_text(
    text: &str,
    file: &str,
    out: &mut BTreeMap<String, String>,
) -> Result<(), RenderError> {
    let docs = parse_documents(text).map_err(|e| RenderError::Yaml {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    })?;
    for doc in docs {
        flatten(&doc.value, String::new(), out);
    }
    Ok(())
}

/// Helm's parameter names for a value: `a.b` for maps, `a[0]` for lists.
fn flatten(value: &Value, name: String, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let child = if name.is_empty() {
                    key.clone()
                } else {
                    format!("{name}.{key}")
                };
                flatten(v, child, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, format!("{name}[{i}]"), out);
            }
        }
        Value::Null => {}
        Value::String(s) if !name.is_empty() => {
            out.insert(name, s.clone());
        }
        Value::Number(n) if !name.is_empty() => {
            // Whole numbers as integers, as Go prints the float64 YAML gives it.
            let text = match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => (f as i64).to_string(),
                _ => n.to_string(),
            };
            out.insert(name, text);
        }
        Value::Bool(b) if !name.is_empty() => {
            out.insert(name, b.to_string());
        }
        _ => {}
    }
}

/// Files named `*values*.yaml`/`.yml` under `dir` (hidden directories skipped).
fn find_value_files(chart_dir: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            find_value_files(chart_dir, &path, out);
        } else if name.contains("values") && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(relative(chart_dir, &path));
        }
    }
}

/// The `image` of every container, init container and ephemeral container in an object,
/// wherever its pod template sits.
fn container_images(object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if matches!(
                        key.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) && let Value::Array(containers) = v
                    {
                        out.extend(
                            containers
                                .iter()
                                .filter_map(|c| c["image"].as_str().map(str::to_string)),
                        );
                    } else {
                        walk(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(object, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tiphys_model::application::ApplicationSource;

    fn request<'a>(
        root: &'a Path,
        source: &'a ApplicationSource,
        refs: &'a crate::ValueRefs,
    ) -> Request<'a> {
        Request {
            repo_root: root,
            source,
            app_name: "shop",
            namespace: "prod",
            remote: None,
            kustomize_options: Default::default(),
            capabilities: None,
            value_refs: refs,
        }
    }

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn helm_parameters_are_the_values_helm_renders_with() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "chart/Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 1.0.0\n",
        );
        write(
            root,
            "chart/values.yaml",
            "image:\n  repository: shop\n  tag: \"1.0\"\nreplicas: 2\nports: [80, 443]\nflags: {debug: false}\n",
        );
        write(
            root,
            "chart/values-prod.yaml",
            "image:\n  tag: \"1.1\"\nreplicas: 3.0\n",
        );
        write(root, "chart/ci/test-values.yml", "x: 1\n");
        let source: ApplicationSource = serde_json::from_value(json!({
            "repoURL": "https://example.com/r.git", "path": "chart",
            "helm": {
                "valueFiles": ["values-prod.yaml", "missing.yaml"],
                "ignoreMissingValueFiles": true,
                "values": "extra: yes-please\n",
                "parameters": [{"name": "image.tag", "value": "1.2"}],
                "fileParameters": [{"name": "config", "path": "files/c.txt"}]
            }
        }))
        .unwrap();
        let refs = crate::ValueRefs::new();
        let details = app_details(&request(root, &source, &refs), || unreachable!()).unwrap();
        assert_eq!(details.source_type, "Helm");
        let helm = details.helm.unwrap();
        assert_eq!(helm.name, "shop");
        assert_eq!(
            helm.value_files,
            ["ci/test-values.yml", "values-prod.yaml", "values.yaml"]
        );
        let params: BTreeMap<_, _> = helm
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            params["image.tag"], "1.2",
            "the parameter overrides the files"
        );
        assert_eq!(params["image.repository"], "shop");
        assert_eq!(params["replicas"], "3");
        assert_eq!(params["ports[1]"], "443");
        assert_eq!(params["flags.debug"], "false");
        assert_eq!(params["extra"], "yes-please");
        assert_eq!(helm.file_parameters[0].path, "files/c.txt");
        assert!(helm.values.contains("repository: shop"));
        let json = serde_json::to_value(&helm).unwrap();
        assert!(json.get("valueFiles").is_some() && json.get("fileParameters").is_some());
    }

    #[test]
    fn a_missing_value_file_is_named_and_bad_yaml_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "c/Chart.yaml",
            "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        );
        write(root, "c/bad-values.yaml", "a: [\n");
        let refs = crate::ValueRefs::new();
        let missing: ApplicationSource =
            serde_json::from_value(json!({"path": "c", "helm": {"valueFiles": ["nope.yaml"]}}))
                .unwrap();
        let err = app_details(&request(root, &missing, &refs), || unreachable!()).unwrap_err();
        assert!(err.to_string().contains("nope.yaml"), "{err}");
        let bad: ApplicationSource = serde_json::from_value(
            json!({"path": "c", "helm": {"valueFiles": ["bad-values.yaml"]}}),
        )
        .unwrap();
        let err = app_details(&request(root, &bad, &refs), || unreachable!()).unwrap_err();
        assert!(err.to_string().contains("bad-values.yaml"), "{err}");
    }

    #[test]
    fn kustomize_details_list_the_built_images_and_directories_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "k/kustomization.yaml", "resources: []\n");
        write(root, "d/cm.yaml", "kind: ConfigMap\n");
        let refs = crate::ValueRefs::new();
        let k: ApplicationSource = serde_json::from_value(json!({"path": "k"})).unwrap();
        let pod = |image: &str| Manifest {
            object: json!({"kind": "Deployment", "spec": {"template": {"spec": {
                "initContainers": [{"image": "busybox:1"}],
                "containers": [{"image": image}]}}}}),
            origin: crate::Origin {
                file: "k".into(),
                document: 0,
                line: 0,
            },
        };
        let details = app_details(&request(root, &k, &refs), || {
            Ok(vec![pod("nginx:1.27"), pod("nginx:1.27")])
        })
        .unwrap();
        assert_eq!(
            details.kustomize.unwrap().images,
            ["busybox:1", "nginx:1.27"]
        );
        let d: ApplicationSource = serde_json::from_value(json!({"path": "d"})).unwrap();
        let details = app_details(&request(root, &d, &refs), || unreachable!()).unwrap();
        assert_eq!(
            serde_json::to_value(details).unwrap(),
            json!({"type": "Directory", "directory": {}})
        );
    }
}
