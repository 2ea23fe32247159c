//! `helmCharts`: charts vendored under `helmGlobals.chartHome` (default `charts/`), or pulled
//! from their repository (`repo`, HTTP or `oci://`) by `helm pull`, rendered with
//! `helm template` from PATH, as `kubectl kustomize --enable-helm` does.

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

/// `helmCharts` entries, and the pre-v4 `helmChartInflationGenerator` ones translated to
/// them as kustomize translates them; each with where its field is, for errors.
fn charts(k: &Kustomization) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = k.spec["helmCharts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| (format!("helmCharts[{i}]"), c.clone()))
        .collect();
    for (i, legacy) in k.spec["helmChartInflationGenerator"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mut chart = serde_json::Map::new();
        for (from, to) in [
            ("chartName", "name"),
            ("chartVersion", "version"),
            ("chartRepoUrl", "repo"),
            ("releaseName", "releaseName"),
            ("releaseNamespace", "namespace"),
            ("values", "valuesFile"),
            ("valuesLocal", "valuesInline"),
            ("valuesMerge", "valuesMerge"),
            ("chartHome", "chartHome"),
        ] {
            if let Some(v) = legacy.get(from) {
                chart.insert(to.into(), v.clone());
            }
        }
        out.push((
            format!("helmChartInflationGenerator[{i}]"),
            Value::Object(chart),
        ));
    }
    out
}

pub fn run(k: &Kustomization, resources: &mut Vec<Resource>) -> Result<(), KustomizeError> {
    let charts = charts(k);
    let global_home = k.spec["helmGlobals"]["chartHome"]
        .as_str()
        .unwrap_or("charts");
    for (i, (at, chart)) in charts.iter().enumerate() {
        let at = at.clone();
        let home = chart["chartHome"].as_str().unwrap_or(global_home);
        let name = chart["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(k, &at, "name is required".into()))?;
        let scratch = std::env::temp_dir().join(format!(
            "tiphys-kustomize-helm-{}-{}-{i}",
            std::process::id(),
            SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        ));
        std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
        let rendered = render(k, chart, &at, name, home, &scratch);
        let _ = std::fs::remove_dir_all(&scratch);
        let (dir, text) = rendered?;
        let source = crate::Source::Generated {
            kustomization: k.file.clone(),
            generator: "HelmChartInflationGenerator",
            name: k.plugin.clone(),
        };
        resources.extend(read_manifests_text(
            &text,
            &format!("{} (helm template)", dir.display()),
            &source,
        )?);
    }
    Ok(())
}

/// Scratch directories of concurrent builds in one process must differ.
static SCRATCH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The helm binary set by [`use_binary`], else `$HELM`, else `helm` from PATH.
static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Run helm from `path` in this process (the first call wins): for a process that was told
/// where helm is (a flag, or a test that installed it) rather than finding it on PATH.
pub fn use_binary(path: std::path::PathBuf) {
    let _ = BINARY.set(path);
}

/// A `helm` command: every helm invocation (here and in the render crate) starts from it.
pub fn command() -> Command {
    match BINARY.get() {
        Some(path) => Command::new(path),
        None => Command::new(std::env::var_os("HELM").unwrap_or_else(|| "helm".into())),
    }
}

/// Run helm, mapping a missing binary and a failure to errors naming the chart entry.
fn run_helm(
    k: &Kustomization,
    at: &str,
    mut cmd: Command,
    what: &str,
) -> Result<String, KustomizeError> {
    let output = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => invalid(
            k,
            at,
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
            at,
            format!(
                "helm {what} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Where the chart is: vendored under the chart home where kustomize keeps it
/// (`<home>/<name>-<version>/<name>` for a versioned chart from a repository, else
/// `<home>/<name>`), or pulled from its repository into `scratch`. (kustomize pulls into
/// the chart home; a render must not write into the tree it reads.)
fn locate(
    k: &Kustomization,
    chart: &Value,
    at: &str,
    name: &str,
    home: &str,
    scratch: &std::path::Path,
) -> Result<std::path::PathBuf, KustomizeError> {
    let field = |f: &str| chart[f].as_str().filter(|s| !s.is_empty());
    let (repo, version) = (field("repo"), field("version"));
    let vendored = match (repo, version) {
        (Some(_), Some(v)) => k.dir.join(home).join(format!("{name}-{v}")).join(name),
        _ => k.dir.join(home).join(name),
    };
    if vendored.join("Chart.yaml").is_file() {
        return Ok(vendored);
    }
    let Some(repo) = repo else {
        return Err(invalid(
            k,
            at,
            format!(
                "chart {} not found: no Chart.yaml there, and no repo to pull it from",
                vendored.display()
            ),
        ));
    };
    let mut cmd = command();
    cmd.arg("pull");
    if repo.starts_with("oci://") {
        cmd.arg(format!("{}/{name}", repo.trim_end_matches('/')));
    } else {
        cmd.arg("--repo").arg(repo).arg(name);
    }
    if let Some(v) = version {
        cmd.arg("--version").arg(v);
    }
    cmd.arg("--untar").arg("--untardir").arg(scratch);
    run_helm(k, at, cmd, "pull")?;
    Ok(scratch.join(name))
}

/// `helm template` of one chart entry: the chart's directory and the manifests.
fn render(
    k: &Kustomization,
    chart: &Value,
    at: &str,
    name: &str,
    home: &str,
    scratch: &std::path::Path,
) -> Result<(std::path::PathBuf, String), KustomizeError> {
    let dir = locate(k, chart, at, name, home, scratch)?;
    let release = chart["releaseName"].as_str().unwrap_or("release-name");
    let mut cmd = command();
    cmd.arg("template").arg(release).arg(&dir);
    if let Some(ns) = chart["namespace"].as_str() {
        cmd.arg("--namespace").arg(ns);
    }
    // helm lets later `--values` win. `valuesMerge: override` (the default) and `replace`
    // let the inline values win over the values file; `merge` lets the file win, the inline
    // values only filling what it lacks.
    let values_file = chart["valuesFile"]
        .as_str()
        .map(|f| k.local_file(f, &format!("{at}.valuesFile")))
        .transpose()?;
    let inline = match chart.get("valuesInline").filter(|v| v.is_object()) {
        Some(values) => {
            let path = scratch.join("inline.json");
            std::fs::write(&path, values.to_string()).map_err(io(&path))?;
            Some(path)
        }
        None => None,
    };
    let merge = match chart["valuesMerge"].as_str().unwrap_or("override") {
        "override" | "replace" | "" => false,
        "merge" => true,
        other => {
            return Err(invalid(
                k,
                &format!("{at}.valuesMerge"),
                format!("{other:?}: must be override, merge or replace"),
            ));
        }
    };
    let mut values: Vec<std::path::PathBuf> = Vec::new();
    if merge {
        values.extend(inline.clone());
        values.push(
            values_file
                .clone()
                .unwrap_or_else(|| dir.join("values.yaml")),
        );
    } else {
        values.extend(values_file);
    }
    values.extend(
        chart["additionalValuesFiles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|f| k.local_file(f, &format!("{at}.additionalValuesFiles")))
            .collect::<Result<Vec<_>, _>>()?,
    );
    if !merge {
        values.extend(inline);
    }
    for file in values {
        cmd.arg("--values").arg(file);
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
    let text = run_helm(k, at, cmd, "template")?;
    Ok((dir, text))
}
