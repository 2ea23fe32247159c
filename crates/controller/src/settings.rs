//! Controller settings: command-line values plus what argocd-cm says (tracking method,
//! reconciliation timeout, system-wide ignoreDifferences).

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use serde::Deserialize;
use tiphys_diff::{IgnoreRule, JqError};

use crate::cache::Tracking;

pub const ARGOCD_CM: &str = "argocd-cm";
pub const ARGOCD_SECRET: &str = "argocd-secret";

#[derive(Clone, Debug)]
pub struct Settings {
    /// The control namespace (Applications, AppProjects, Secrets, argocd-cm).
    pub namespace: String,
    /// Periodic refresh (argocd-cm `timeout.reconciliation` overrides; default 120 s).
    pub resync: Duration,
    /// Random extra delay on periodic refreshes (default 60 s).
    pub jitter: Duration,
    /// How long selfHeal waits after the last sync before correcting drift (default 5 s).
    pub self_heal_timeout: Duration,
    /// Where git repositories and trees are cached.
    pub cache_dir: PathBuf,
    pub workers: usize,
    /// Refuse to sync Secrets with literal data found in Git (reported either way).
    pub refuse_secrets_in_git: bool,
    /// How often a running operation is advanced when nothing else wakes it.
    pub operation_poll: Duration,
    /// How often each git repository the apps use is asked whether a ref moved (one ref
    /// advertisement per repository; apps whose revision moved are refreshed). Zero turns
    /// polling off. Refreshes that nobody asked for (periodic, first) accept an answer this
    /// old.
    pub repo_poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: "argocd".into(),
            resync: Duration::from_secs(120),
            jitter: Duration::from_secs(60),
            self_heal_timeout: Duration::from_secs(5),
            cache_dir: std::env::temp_dir().join("tiphys-cache"),
            workers: 8,
            refuse_secrets_in_git: false,
            operation_poll: Duration::from_secs(1),
            repo_poll: Duration::from_secs(10),
        }
    }
}

/// The tracking method argocd-cm asks for.
pub fn tracking(cm: Option<&ConfigMap>) -> Tracking {
    let data = cm.and_then(|c| c.data.as_ref());
    let get = |k: &str| data.and_then(|d| d.get(k)).map(String::as_str);
    Tracking::from_setting(
        get("application.resourceTrackingMethod").unwrap_or("annotation"),
        get("application.instanceLabelKey"),
    )
}

/// argocd-cm's `kustomize.buildOptions`, as far as the native engine has options:
/// `--load-restrictor LoadRestrictionsNone|LoadRestrictionsRootOnly`; `--enable-helm` and the
/// plugin switches are accepted (helm charts always render; other plugins are refused where
/// they are used). Anything else is an error naming the setting.
pub fn kustomize_build_options(
    cm: Option<&ConfigMap>,
) -> Result<tiphys_kustomize::BuildOptions, String> {
    let mut options = tiphys_kustomize::BuildOptions::default();
    let Some(flags) = cm
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("kustomize.buildOptions"))
    else {
        return Ok(options);
    };
    let mut words = flags.split_whitespace();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (word, None),
        };
        match flag {
            "--load-restrictor" | "--load_restrictor" => {
                let value = match inline {
                    Some(v) => v,
                    None => words.next().unwrap_or_default(),
                };
                options.load_restrictions = match value {
                    "LoadRestrictionsRootOnly" => true,
                    "LoadRestrictionsNone" => false,
                    other => {
                        return Err(format!(
                            "argocd-cm kustomize.buildOptions: --load-restrictor {other:?} is not LoadRestrictionsRootOnly or LoadRestrictionsNone"
                        ));
                    }
                };
            }
            "--enable-helm" | "--enable-alpha-plugins" | "--enable-exec" | "--enable-star" => {}
            other => {
                return Err(format!(
                    "argocd-cm kustomize.buildOptions: {other} is not supported by the native Kustomize engine"
                ));
            }
        }
    }
    Ok(options)
}

/// argocd-cm's `timeout.reconciliation` (e.g. `180s`), when set.
pub fn resync(cm: Option<&ConfigMap>) -> Option<Duration> {
    let value = cm?.data.as_ref()?.get("timeout.reconciliation")?;
    tiphys_model::validate::parse_duration(value)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IgnoreCustomization {
    #[serde(default)]
    json_pointers: Vec<String>,
    #[serde(default)]
    jq_path_expressions: Vec<String>,
    #[serde(default)]
    managed_fields_managers: Vec<String>,
}

/// System-wide ignore rules: `resource.customizations.ignoreDifferences.<group_kind>` and
/// `.all` (with `resource.customizations.ignoreDifferences.all`).
pub fn system_ignore_rules(cm: Option<&ConfigMap>) -> Result<Vec<IgnoreRule>, String> {
    const PREFIX: &str = "resource.customizations.ignoreDifferences.";
    let mut rules = Vec::new();
    let Some(data) = cm.and_then(|c| c.data.as_ref()) else {
        return Ok(rules);
    };
    for (key, value) in data {
        let Some(target) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let parsed: IgnoreCustomization =
            serde_saphyr::from_str(value).map_err(|e| format!("{ARGOCD_CM} {key}: {e}"))?;
        let (group, kind) = match target {
            "all" => ("*".to_string(), "*".to_string()),
            other => match other.split_once('_') {
                Some((g, k)) => (g.to_string(), k.to_string()),
                None => (String::new(), other.to_string()),
            },
        };
        let jq_paths = parsed
            .jq_path_expressions
            .iter()
            .map(|e| tiphys_diff::JqPath::parse(e))
            .collect::<Result<Vec<_>, JqError>>()
            .map_err(|e| format!("{ARGOCD_CM} {key}: {e}"))?;
        rules.push(IgnoreRule {
            group,
            kind,
            json_pointers: parsed.json_pointers,
            jq_paths,
            managers: parsed.managed_fields_managers,
            ..Default::default()
        });
    }
    Ok(rules)
}

/// Why the rules of an app's comparison could not be built: argocd-cm's fault or the app's.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreRulesError {
    #[error("{0}")]
    System(String),
    #[error("spec.ignoreDifferences: {0}")]
    Spec(String),
}

/// Everything a comparison of `app` ignores: argocd-cm's system-wide customizations, then the
/// app's `spec.ignoreDifferences`. The controller and the API server's diffs share it.
pub fn ignore_rules(
    cm: Option<&ConfigMap>,
    app: &tiphys_model::Application,
) -> Result<tiphys_diff::IgnoreRules, IgnoreRulesError> {
    let mut rules = system_ignore_rules(cm).map_err(IgnoreRulesError::System)?;
    for spec in &app.spec.ignore_differences {
        rules.push(IgnoreRule::from_spec(spec).map_err(|e| IgnoreRulesError::Spec(e.to_string()))?);
    }
    Ok(tiphys_diff::IgnoreRules(rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomize_build_options_from_argocd_cm() {
        let cm = |options: &str| ConfigMap {
            data: Some([("kustomize.buildOptions".to_string(), options.to_string())].into()),
            ..ConfigMap::default()
        };
        assert!(kustomize_build_options(None).unwrap().load_restrictions);
        let none = cm("--enable-helm --load-restrictor LoadRestrictionsNone");
        assert!(
            !kustomize_build_options(Some(&none))
                .unwrap()
                .load_restrictions
        );
        let inline = cm("--load-restrictor=LoadRestrictionsRootOnly");
        assert!(
            kustomize_build_options(Some(&inline))
                .unwrap()
                .load_restrictions
        );
        let bad = cm("--reorder none");
        assert!(
            kustomize_build_options(Some(&bad))
                .unwrap_err()
                .contains("--reorder")
        );
    }

    #[test]
    fn reads_argocd_cm() {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "argocd-cm"},
            "data": {
                "timeout.reconciliation": "180s",
                "application.resourceTrackingMethod": "label",
                "resource.customizations.ignoreDifferences.apps_Deployment": "jsonPointers:\n- /spec/replicas\n",
                "resource.customizations.ignoreDifferences.all": "managedFieldsManagers:\n- kube-controller-manager\n"
            }
        }))
        .unwrap();
        assert_eq!(resync(Some(&cm)), Some(Duration::from_secs(180)));
        assert_eq!(
            tracking(Some(&cm)),
            Tracking::Label("app.kubernetes.io/instance".into())
        );
        let rules = system_ignore_rules(Some(&cm)).unwrap();
        assert_eq!(rules.len(), 2);
        let deployment = rules.iter().find(|r| r.kind == "Deployment").unwrap();
        assert_eq!(deployment.group, "apps");
        assert_eq!(deployment.json_pointers, vec!["/spec/replicas".to_string()]);
    }
}
