//! `helmCharts`: charts vendored under `helmGlobals.chartHome` (default `charts/`) rendered
//! with `helm template` from PATH, as `kubectl kustomize --enable-helm` does. Pulling charts
//! from a repository is refused: renders never reach the network.

use std::process::Command;

use serde_json::Value;

use crate::kustomization::{Kustomization, read_manifests_text};
use crate::{KustomizeError, Resource, io};

fn invalid(k: &Kustomization, field: &str, message: String) -> KustomizeError {
    KustomizeError::Invalid {
        path: k.path(),
        field: field.into(),
        message,
    }
}

pub fn run(k: &Kustomization, resources: &mut Vec<Resource>) -> Result<(), KustomizeError> {
    let Some(charts) = k.spec["helmCharts"].as_array() else {
        return Ok(());
    };
    let home = k.spec["helmGlobals"]["chartHome"]
        .as_str()
        .unwrap_or("charts");
    for (i, chart) in charts.iter().enumerate() {
        let at = format!("helmCharts[{i}]");
        let name = chart["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(k, &at, "name is required".into()))?;
        let dir = k.dir.join(home).join(name);
        if !dir.join("Chart.yaml").is_file() {
            let why = if chart["repo"].is_string() {
                "pulling charts from a repository is not supported; vendor the chart under the chart home"
            } else {
                "no Chart.yaml there"
            };
            return Err(invalid(
                k,
                &at,
                format!("chart {} not found: {why}", dir.display()),
            ));
        }
        let release = chart["releaseName"].as_str().unwrap_or("release-name");
        let mut cmd = Command::new(std::env::var("HELM").unwrap_or_else(|_| "helm".into()));
        cmd.arg("template").arg(release).arg(&dir);
        if let Some(ns) = chart["namespace"].as_str() {
            cmd.arg("--namespace").arg(ns);
        }
        let scratch = std::env::temp_dir().join(format!(
            "tiphys-kustomize-helm-{}-{}",
            std::process::id(),
            i
        ));
        std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
        if let Some(file) = chart["valuesFile"].as_str() {
            cmd.arg("--values").arg(k.dir.join(file));
        }
        for file in chart["additionalValuesFiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            cmd.arg("--values").arg(k.dir.join(file));
        }
        if let Some(inline) = chart.get("valuesInline").filter(|v| v.is_object()) {
            let path = scratch.join("inline.json");
            std::fs::write(&path, inline.to_string()).map_err(io(&path))?;
            cmd.arg("--values").arg(&path);
        }
        if chart["includeCRDs"] == true {
            cmd.arg("--include-crds");
        }
        if chart["skipTests"] == true {
            cmd.arg("--skip-tests");
        }
        if let Some(v) = chart["kubeVersion"].as_str() {
            cmd.arg("--kube-version").arg(v);
        }
        for v in chart["apiVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            cmd.arg("--api-versions").arg(v);
        }
        let output = cmd.output();
        let _ = std::fs::remove_dir_all(&scratch);
        let output = output.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => invalid(
                k,
                &at,
                "helmCharts need helm on PATH, and it is not there".into(),
            ),
            _ => KustomizeError::Io {
                path: "helm".into(),
                source: e,
            },
        })?;
        if !output.status.success() {
            return Err(invalid(
                k,
                &at,
                format!(
                    "helm template failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let source = crate::Source::Generated {
            kustomization: k.file.clone(),
            generator: "HelmChartInflationGenerator",
        };
        resources.extend(read_manifests_text(
            &text,
            &format!("{} (helm template)", dir.display()),
            &source,
        )?);
    }
    Ok(())
}
