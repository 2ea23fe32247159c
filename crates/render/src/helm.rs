//! Helm sources through `helm template` (Helm 3), with Argo CD's options: chart dependencies
//! built first when `charts/` lacks them, and `.Capabilities` from the destination cluster
//! unless the source sets `kubeVersion`/`apiVersions` itself.
//!
//! The tree is a shared cache entry and is never written to: a chart whose dependencies must
//! be built is copied into a private scratch directory first.

use std::path::{Path, PathBuf};

use crate::objects::from_document;
use crate::yaml::parse_documents;
use crate::{Manifest, RenderError, Request, relative, resolve_inside};

pub fn render(
    root: &Path,
    chart_dir: &Path,
    req: &Request<'_>,
) -> Result<Vec<Manifest>, RenderError> {
    let helm = req.source.helm.clone().unwrap_or_default();
    check_version(&helm.version)?;
    let release = if helm.release_name.is_empty() {
        req.app_name
    } else {
        &helm.release_name
    };
    let namespace = if helm.namespace.is_empty() {
        req.namespace
    } else {
        &helm.namespace
    };
    let chart_rel = relative(root, chart_dir);
    let scratch = tempfile::Builder::new()
        .prefix("tiphys-helm-")
        .tempdir()
        .map_err(|source| RenderError::Io {
            path: format!("scratch dir for {chart_rel}"),
            source,
        })?;
    let chart = with_dependencies(root, chart_dir, &chart_rel, scratch.path())?;

    let mut cmd = tiphys_kustomize::helm::command();
    cmd.arg("template")
        .arg(release)
        .arg(&chart)
        .arg("--namespace")
        .arg(namespace);
    for (i, input) in values_inputs(root, &chart_rel, &helm, req)?
        .into_iter()
        .enumerate()
    {
        let path = match input {
            ValuesInput::File(path) => path,
            ValuesInput::Text(text) => {
                let path = scratch.path().join(format!("values-{i}.yaml"));
                std::fs::write(&path, text).map_err(|source| RenderError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                path
            }
        };
        cmd.arg("--values").arg(path);
    }
    for p in &helm.parameters {
        let flag = if p.force_string {
            "--set-string"
        } else {
            "--set"
        };
        cmd.arg(flag).arg(format!("{}={}", p.name, p.value));
    }
    for p in &helm.file_parameters {
        let path = resolve_inside(root, &format!("{chart_rel}/{}", p.path))?;
        cmd.arg("--set-file")
            .arg(format!("{}={}", p.name, path.display()));
    }
    cmd.arg(if helm.skip_crds {
        "--skip-crds"
    } else {
        "--include-crds"
    });
    if helm.skip_tests {
        cmd.arg("--skip-tests");
    }
    if helm.skip_schema_validation {
        cmd.arg("--skip-schema-validation");
    }
    // The source's own settings win over what the destination cluster reports.
    let cluster = req.capabilities.cloned().unwrap_or_default();
    let kube_version = if helm.kube_version.is_empty() {
        cluster.kube_version
    } else {
        helm.kube_version.clone()
    };
    if !kube_version.is_empty() {
        cmd.arg("--kube-version").arg(kube_version);
    }
    let api_versions = if helm.api_versions.is_empty() {
        cluster.api_versions
    } else {
        helm.api_versions.clone()
    };
    for v in &api_versions {
        cmd.arg("--api-versions").arg(v);
    }
    let output = run(cmd, "helm template", &chart_rel)?;
    let text = String::from_utf8_lossy(&output);
    let docs = parse_documents(&text).map_err(|e| RenderError::Yaml {
        file: format!("{chart_rel} (helm template output)"),
        line: e.line,
        message: e.message,
    })?;
    Ok(docs
        .into_iter()
        .flat_map(|mut d| {
            // `# Source: <chart name>/templates/x.yaml` names the template by chart name; the
            // repository path says where to look, and a line of helm's output means nothing
            // there.
            let file = d
                .source
                .take()
                .map(|s| template_path(&chart_rel, &s))
                .unwrap_or_else(|| chart_rel.clone());
            d.line = 0;
            from_document(d, &file)
        })
        .collect())
}

/// Argo CD's `helm.version`: `v3` (or unset) renders with Helm 3; Helm 2 is gone (Argo CD
/// dropped it too), and saying so beats rendering with another Helm than asked for.
fn check_version(version: &str) -> Result<(), RenderError> {
    match version.trim() {
        "" | "v3" | "3" => Ok(()),
        "v2" | "2" => Err(RenderError::Unsupported(
            "helm.version v2: Helm 2 is not supported; charts render with Helm 3 (set v3 or \
             leave the field out)"
                .into(),
        )),
        other => Err(RenderError::Unsupported(format!(
            "helm.version {other:?}: not a Helm version (v3)"
        ))),
    }
}

/// One `--values` input of a Helm source.
pub(crate) enum ValuesInput {
    /// A value file in the repository (or a `$ref` source's tree).
    File(PathBuf),
    /// Values given inline (`values`, `valuesObject`) or fetched from a URL.
    Text(String),
}

/// A Helm source's values in the order helm merges them: `valueFiles` (a missing one skipped
/// under `ignoreMissingValueFiles`, a URL fetched through the caller's loader), then `values`,
/// then `valuesObject`. The chart's own `values.yaml` is not among them: helm reads it first.
pub(crate) fn values_inputs(
    root: &Path,
    chart_rel: &str,
    helm: &tiphys_model::application::ApplicationSourceHelm,
    req: &Request<'_>,
) -> Result<Vec<ValuesInput>, RenderError> {
    let mut inputs = Vec::new();
    for file in &helm.value_files {
        if file.starts_with("https://") || file.starts_with("http://") {
            let fetched = req
                .remote
                .map(|loader| loader.fetch_file(file))
                .transpose()
                .map_err(|message| RenderError::ToolFailed {
                    tool: "helm".into(),
                    path: chart_rel.to_string(),
                    message: format!("value file {file}: {message}"),
                })?
                .flatten();
            let Some(text) = fetched else {
                return Err(RenderError::ToolFailed {
                    tool: "helm".into(),
                    path: chart_rel.to_string(),
                    message: format!("value file {file}: remote value files cannot be read here"),
                });
            };
            inputs.push(ValuesInput::Text(text));
            continue;
        }
        match value_file(root, chart_rel, file, req.value_refs) {
            Ok(path) => inputs.push(ValuesInput::File(path)),
            Err(RenderError::MissingPath { .. }) if helm.ignore_missing_value_files => {}
            Err(RenderError::MissingPath { .. }) => {
                return Err(RenderError::ToolFailed {
                    tool: "helm".into(),
                    path: chart_rel.to_string(),
                    message: format!("value file {file} not found"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    if !helm.values.is_empty() {
        inputs.push(ValuesInput::Text(helm.values.clone()));
    }
    if let Some(object) = &helm.values_object {
        inputs.push(ValuesInput::Text(object.to_string()));
    }
    Ok(inputs)
}

/// Where a value file is: `$ref/path` in the tree of the source with that `ref` (multi-source
/// Applications), anything else relative to the chart. Neither may leave its repository.
fn value_file(
    root: &Path,
    chart_rel: &str,
    file: &str,
    refs: &crate::ValueRefs,
) -> Result<PathBuf, RenderError> {
    let Some(reference) = file.strip_prefix('$') else {
        return resolve_inside(root, &format!("{chart_rel}/{file}"));
    };
    let (name, path) = reference.split_once('/').unwrap_or((reference, ""));
    let tree = refs.get(name).ok_or_else(|| RenderError::ToolFailed {
        tool: "helm".into(),
        path: chart_rel.to_string(),
        message: format!("value file {file}: no source of the Application has ref {name:?}"),
    })?;
    resolve_inside(tree, path)
}

/// The repository path of a template helm names `<chart name>/<path in the chart>`.
fn template_path(chart_rel: &str, source: &str) -> String {
    let inside = source.split_once('/').map_or(source, |(_, rest)| rest);
    if chart_rel.is_empty() || chart_rel == "." {
        inside.to_string()
    } else {
        format!("{chart_rel}/{inside}")
    }
}

fn run(
    mut cmd: std::process::Command,
    what: &str,
    chart_rel: &str,
) -> Result<Vec<u8>, RenderError> {
    let output = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RenderError::ToolMissing {
            tool: "helm",
            hint: "install Helm 3 to render Helm charts",
        },
        _ => RenderError::Io {
            path: "helm".into(),
            source: e,
        },
    })?;
    if !output.status.success() {
        return Err(RenderError::ToolFailed {
            tool: what.into(),
            path: chart_rel.to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output.stdout)
}

/// A chart dependency as `Chart.yaml` (or a v1 chart's `requirements.yaml`) declares it.
struct Dependency {
    name: String,
    repository: String,
}

fn dependencies(chart_dir: &Path, chart_rel: &str) -> Result<Vec<Dependency>, RenderError> {
    let mut out = Vec::new();
    for file in ["Chart.yaml", "requirements.yaml"] {
        let path = chart_dir.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let docs = parse_documents(&text).map_err(|e| RenderError::Yaml {
            file: format!("{chart_rel}/{file}"),
            line: e.line,
            message: e.message,
        })?;
        for doc in docs {
            for dep in doc.value["dependencies"].as_array().into_iter().flatten() {
                let field = |f: &str| dep[f].as_str().unwrap_or_default().to_string();
                if !field("name").is_empty() {
                    out.push(Dependency {
                        name: field("name"),
                        repository: field("repository"),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Whether `charts/` already holds `dep`, unpacked or as an archive.
fn vendored(chart_dir: &Path, dep: &Dependency) -> bool {
    let charts = chart_dir.join("charts");
    if charts.join(&dep.name).join("Chart.yaml").is_file() {
        return true;
    }
    std::fs::read_dir(&charts).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{}-", dep.name)) && name.ends_with(".tgz")
        })
    })
}

/// The chart to render: `chart_dir` itself when its dependencies are all in `charts/`;
/// otherwise a copy under `scratch` (laid out as in the repository, with the charts that
/// `file://` dependencies point at beside it) where `helm dependency build` has run.
fn with_dependencies(
    root: &Path,
    chart_dir: &Path,
    chart_rel: &str,
    scratch: &Path,
) -> Result<PathBuf, RenderError> {
    let missing: Vec<Dependency> = dependencies(chart_dir, chart_rel)?
        .into_iter()
        .filter(|d| !vendored(chart_dir, d))
        .collect();
    if missing.is_empty() {
        return Ok(chart_dir.to_path_buf());
    }
    let mirror = scratch.join("tree");
    let copy = mirror.join(chart_rel);
    copy_tree(root, chart_dir, &copy)?;
    for dep in &missing {
        let Some(path) = dep.repository.strip_prefix("file://") else {
            continue;
        };
        let rel = normalize(&format!("{chart_rel}/{path}"));
        let source = resolve_inside(root, &rel).map_err(|e| match e {
            RenderError::MissingPath { .. } => RenderError::ToolFailed {
                tool: "helm dependency build".into(),
                path: chart_rel.to_string(),
                message: format!(
                    "dependency {} points at {}, which is not in the repository",
                    dep.name, dep.repository
                ),
            },
            other => other,
        })?;
        let target = mirror.join(&rel);
        if !target.exists() {
            copy_tree(root, &source, &target)?;
        }
    }
    let mut cmd = tiphys_kustomize::helm::command();
    cmd.arg("dependency").arg("build").arg(&copy);
    run(cmd, "helm dependency build", chart_rel)?;
    Ok(copy)
}

/// Resolve `.` and `..` in a relative path (`..` never climbs above the start).
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Copy the directory `from` to `to`; symlinks are followed as long as they stay inside
/// `root`.
fn copy_tree(root: &Path, from: &Path, to: &Path) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RenderError::Io { path, source }
    };
    std::fs::create_dir_all(to).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let resolved = path.canonicalize().map_err(io(&path))?;
        let canonical_root = root.canonicalize().map_err(io(root))?;
        if !resolved.starts_with(&canonical_root) {
            return Err(RenderError::Escapes {
                path: relative(root, &path),
            });
        }
        let target = to.join(entry.file_name());
        if resolved.is_dir() {
            copy_tree(root, &resolved, &target)?;
        } else {
            std::fs::copy(&resolved, &target).map_err(io(&target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_sources_become_repository_paths() {
        assert_eq!(
            template_path("charts/web", "web/templates/cm.yaml"),
            "charts/web/templates/cm.yaml"
        );
        assert_eq!(
            template_path("app", "app/charts/db/templates/sts.yaml"),
            "app/charts/db/templates/sts.yaml"
        );
        assert_eq!(
            template_path(".", "web/templates/a.yaml"),
            "templates/a.yaml"
        );
        assert_eq!(normalize("apps/web/../common"), "apps/common");
    }

    #[test]
    fn helm_versions_other_than_3_are_refused_by_name() {
        for ok in ["", "v3", "3"] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        assert!(
            check_version("v2")
                .unwrap_err()
                .to_string()
                .contains("Helm 2")
        );
        assert!(
            check_version("v4")
                .unwrap_err()
                .to_string()
                .contains("\"v4\"")
        );
    }

    #[test]
    fn dependencies_come_from_chart_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n",
        )
        .unwrap();
        let deps = dependencies(dir.path(), "web").unwrap();
        assert_eq!(deps.len(), 1);
        assert_eq!(deps[0].repository, "file://../common");
        assert!(!vendored(dir.path(), &deps[0]));
        std::fs::create_dir_all(dir.path().join("charts")).unwrap();
        std::fs::write(dir.path().join("charts/common-0.1.0.tgz"), "").unwrap();
        assert!(vendored(dir.path(), &deps[0]));
    }
}
