//! Argo CD's per-object annotations: hooks, waves, sync and compare options (and the Helm hook
//! annotations Argo CD maps onto its own).

use serde_json::Value;

pub const HOOK: &str = "argocd.argoproj.io/hook";
pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
pub const COMPARE_OPTIONS: &str = "argocd.argoproj.io/compare-options";
pub const TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
const HELM_HOOK: &str = "helm.sh/hook";
const HELM_HOOK_WEIGHT: &str = "helm.sh/hook-weight";
const HELM_HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";

/// When a task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    PreSync,
    Sync,
    PostSync,
    SyncFail,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreSync => "PreSync",
            Phase::Sync => "Sync",
            Phase::PostSync => "PostSync",
            Phase::SyncFail => "SyncFail",
        }
    }
}

/// When a hook object is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    BeforeHookCreation,
    HookSucceeded,
    HookFailed,
}

pub fn annotation<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(name)?.as_str()
}

/// How an object takes part in a sync, from its annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// A normal resource, applied in the Sync phase.
    Resource,
    /// A hook run in these phases.
    Hook(Vec<Phase>),
    /// `hook: Skip`: never applied.
    Skip,
}

pub fn role(obj: &Value) -> Role {
    if let Some(hook) = annotation(obj, HOOK) {
        let mut phases = Vec::new();
        for part in hook.split(',').map(str::trim) {
            match part {
                "PreSync" => phases.push(Phase::PreSync),
                "Sync" => phases.push(Phase::Sync),
                "PostSync" => phases.push(Phase::PostSync),
                "SyncFail" => phases.push(Phase::SyncFail),
                "Skip" => return Role::Skip,
                _ => {}
            }
        }
        if !phases.is_empty() {
            return Role::Hook(phases);
        }
    }
    if let Some(hook) = annotation(obj, HELM_HOOK) {
        let mut phases = Vec::new();
        for part in hook.split(',').map(str::trim) {
            match part {
                "pre-install" | "pre-upgrade" => phases.push(Phase::PreSync),
                "post-install" | "post-upgrade" => phases.push(Phase::PostSync),
                _ => {}
            }
        }
        phases.dedup();
        if !phases.is_empty() {
            return Role::Hook(phases);
        }
    }
    Role::Resource
}

/// `sync-wave` (or Helm's hook weight), 0 when absent or malformed.
pub fn wave(obj: &Value) -> i64 {
    annotation(obj, SYNC_WAVE)
        .or_else(|| annotation(obj, HELM_HOOK_WEIGHT))
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0)
}

/// Hook delete policies; BeforeHookCreation when none is given, as in Argo CD.
pub fn delete_policies(obj: &Value) -> Vec<DeletePolicy> {
    let text =
        annotation(obj, HOOK_DELETE_POLICY).or_else(|| annotation(obj, HELM_HOOK_DELETE_POLICY));
    let mut policies: Vec<DeletePolicy> = text
        .into_iter()
        .flat_map(|t| t.split(','))
        .filter_map(|p| match p.trim() {
            "BeforeHookCreation" | "before-hook-creation" => Some(DeletePolicy::BeforeHookCreation),
            "HookSucceeded" | "hook-succeeded" => Some(DeletePolicy::HookSucceeded),
            "HookFailed" | "hook-failed" => Some(DeletePolicy::HookFailed),
            _ => None,
        })
        .collect();
    if policies.is_empty() {
        policies.push(DeletePolicy::BeforeHookCreation);
    }
    policies
}

/// Whether a comma-separated option list (`sync-options`, `compare-options`, an app's
/// `syncOptions`) contains `option` (`Prune=false`, say).
pub fn has_option<'a>(options: impl IntoIterator<Item = &'a str>, option: &str) -> bool {
    options
        .into_iter()
        .flat_map(|o| o.split(','))
        .any(|o| o.trim() == option)
}

/// Whether the object's own `sync-options` annotation contains `option`.
pub fn object_option(obj: &Value, option: &str) -> bool {
    annotation(obj, SYNC_OPTIONS).is_some_and(|o| has_option([o], option))
}

/// Whether the object's `compare-options` annotation contains `option`.
pub fn compare_option(obj: &Value, option: &str) -> bool {
    annotation(obj, COMPARE_OPTIONS).is_some_and(|o| has_option([o], option))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn annotated(annotations: Value) -> Value {
        json!({"metadata": {"name": "x", "annotations": annotations}})
    }

    #[test]
    fn hooks_waves_and_policies() {
        let hook = annotated(json!({HOOK: "PreSync,PostSync", SYNC_WAVE: "-2",
            HOOK_DELETE_POLICY: "HookSucceeded,BeforeHookCreation"}));
        assert_eq!(
            role(&hook),
            Role::Hook(vec![Phase::PreSync, Phase::PostSync])
        );
        assert_eq!(wave(&hook), -2);
        assert_eq!(
            delete_policies(&hook),
            vec![
                DeletePolicy::HookSucceeded,
                DeletePolicy::BeforeHookCreation
            ]
        );
        assert_eq!(role(&annotated(json!({HOOK: "Skip"}))), Role::Skip);
        assert_eq!(
            role(&annotated(
                json!({HELM_HOOK: "pre-install,pre-upgrade", HELM_HOOK_WEIGHT: "5"})
            )),
            Role::Hook(vec![Phase::PreSync])
        );
        let plain = annotated(json!({}));
        assert_eq!(role(&plain), Role::Resource);
        assert_eq!(wave(&plain), 0);
        assert_eq!(
            delete_policies(&plain),
            vec![DeletePolicy::BeforeHookCreation]
        );
    }

    #[test]
    fn options() {
        let obj = annotated(
            json!({SYNC_OPTIONS: "Prune=false, ServerSideApply=true", COMPARE_OPTIONS: "IgnoreExtraneous"}),
        );
        assert!(object_option(&obj, "Prune=false"));
        assert!(object_option(&obj, "ServerSideApply=true"));
        assert!(!object_option(&obj, "Delete=false"));
        assert!(compare_option(&obj, "IgnoreExtraneous"));
        assert!(has_option(
            ["CreateNamespace=true", "PruneLast=true"],
            "PruneLast=true"
        ));
    }
}
