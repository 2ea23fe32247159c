//! Helm sources through `helm template` (Helm 3 on PATH), with Argo CD's options.

use std::path::Path;
use std::process::Command;

use crate::objects::from_document;
use crate::yaml::parse_documents;
use crate::{Manifest, RenderError, Request, relative, resolve_inside};

pub fn render(
    root: &Path,
    chart_dir: &Path,
    req: &Request<'_>,
) -> Result<Vec<Manifest>, RenderError> {
    let helm = req.source.helm.clone().unwrap_or_default();
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
    let scratch = tempdir(&chart_rel)?;

    let mut cmd = Command::new(std::env::var("HELM").unwrap_or_else(|_| "helm".into()));
    cmd.arg("template")
        .arg(release)
        .arg(chart_dir)
        .arg("--namespace")
        .arg(namespace);
    for file in &helm.value_files {
        // Value files are relative to the chart, and may not leave the repository.
        let rel = format!("{chart_rel}/{file}");
        match resolve_inside(root, &rel) {
            Ok(path) => {
                cmd.arg("--values").arg(path);
            }
            Err(RenderError::MissingPath { .. }) if helm.ignore_missing_value_files => {}
            Err(RenderError::MissingPath { .. }) => {
                return Err(RenderError::ToolFailed {
                    tool: "helm".into(),
                    path: chart_rel.clone(),
                    message: format!("value file {file} not found"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    if !helm.values.is_empty() {
        let path = scratch.join("values.yaml");
        std::fs::write(&path, &helm.values).map_err(|source| RenderError::Io {
            path: path.display().to_string(),
            source,
        })?;
        cmd.arg("--values").arg(&path);
    }
    if let Some(object) = &helm.values_object {
        let path = scratch.join("values-object.json");
        std::fs::write(&path, object.to_string()).map_err(|source| RenderError::Io {
            path: path.display().to_string(),
            source,
        })?;
        cmd.arg("--values").arg(&path);
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
    if !helm.kube_version.is_empty() {
        cmd.arg("--kube-version").arg(&helm.kube_version);
    }
    for v in &helm.api_versions {
        cmd.arg("--api-versions").arg(v);
    }
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
    let _ = std::fs::remove_dir_all(&scratch);
    if !output.status.success() {
        return Err(RenderError::ToolFailed {
            tool: "helm template".into(),
            path: chart_rel,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let docs = parse_documents(&text).map_err(|e| RenderError::Yaml {
        file: format!("{chart_rel} (helm template output)"),
        line: e.line,
        message: e.message,
    })?;
    Ok(docs
        .into_iter()
        .flat_map(|d| from_document(d, &chart_rel))
        .collect())
}

fn tempdir(label: &str) -> Result<std::path::PathBuf, RenderError> {
    let dir = std::env::temp_dir().join(format!("tiphys-helm-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&dir).map_err(|source| RenderError::Io {
        path: format!("scratch dir for {label}"),
        source,
    })?;
    Ok(dir)
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
