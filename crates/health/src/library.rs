//! Tiphys's health library for custom resources: what an Argo CD user gets from Argo's bundled
//! scripts, written here from the projects' documented status conventions. A few kinds need
//! their own rule; every other custom resource gets the generic one, which reads the
//! conventions most controllers follow (kstatus, and the `Ready`/`Available`/`Synced`
//! condition types), and gives no health when an object follows none of them.
//!
//! argocd-cm scripts and the built-in checks come first; argocd-cm's
//! `tiphys.health.library.disabled` (group/Kind globs) turns the library off per kind.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use crate::Health;

/// Which rule decided, for `tiphys health` and docs/health.md.
pub type Rule = &'static str;

/// The library's health of `live`, with the rule that decided it.
pub fn library(group: &str, kind: &str, live: &Value) -> Option<(Health, Rule)> {
    match (group, kind) {
        ("argoproj.io", "Rollout") => Some((rollout(live), "Argo Rollouts Rollout")),
        ("gateway.networking.k8s.io", kind) if kind.ends_with("Route") => {
            Some((route(live), "Gateway API route (status.parents)"))
        }
        (group, _) if group.ends_with(".toolkit.fluxcd.io") && suspended_by_spec(live) => Some((
            Health::new(Suspended, "reconciliation is suspended (spec.suspend)"),
            "Flux: spec.suspend",
        )),
        ("keda.sh", "ScaledObject" | "ScaledJob") if keda_paused(live) => Some((
            Health::new(Suspended, "autoscaling is paused"),
            "KEDA: paused annotation",
        )),
        _ => generic(live),
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn conditions(v: &Value) -> &[Value] {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn find<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions.iter().find(|c| text(c, "/type") == kind)
}

fn suspended_by_spec(v: &Value) -> bool {
    v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
}

fn keda_paused(v: &Value) -> bool {
    let annotations = v.pointer("/metadata/annotations");
    let get = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    get("autoscaling.keda.sh/paused") == Some("true")
        || get("autoscaling.keda.sh/paused-replicas").is_some()
}

/// The generic rule, in order: a newer spec not yet observed is Progressing; kstatus'
/// `Stalled` is Degraded and `Reconciling` Progressing; `Ready` (else `Available`, else
/// `Synced`) True is Healthy, False Degraded, Unknown Progressing — with Crossplane's
/// `Synced=False` Degraded whatever `Ready` says; else a `status.phase` of the common words.
pub fn generic(v: &Value) -> Option<(Health, Rule)> {
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = v
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if let (Some(g), Some(o)) = (generation, observed)
        && o < g
    {
        return Some((
            Health::new(
                Progressing,
                "waiting for the controller to observe the latest spec",
            ),
            "generic: status.observedGeneration",
        ));
    }
    let conditions = conditions(v);
    let is_true = |kind: &str| find(conditions, kind).is_some_and(|c| text(c, "/status") == "True");
    let message = |kind: &str| {
        find(conditions, kind)
            .map(|c| {
                let m = text(c, "/message");
                if m.is_empty() { text(c, "/reason") } else { m }
            })
            .unwrap_or_default()
            .to_string()
    };
    if is_true("Stalled") {
        return Some((
            Health::new(Degraded, message("Stalled")),
            "generic: Stalled condition",
        ));
    }
    if is_true("Reconciling") {
        return Some((
            Health::new(Progressing, message("Reconciling")),
            "generic: Reconciling condition",
        ));
    }
    if let Some(synced) = find(conditions, "Synced")
        && text(synced, "/status") == "False"
    {
        return Some((
            Health::new(Degraded, message("Synced")),
            "generic: Synced condition",
        ));
    }
    for kind in ["Ready", "Available", "Synced"] {
        let Some(c) = find(conditions, kind) else {
            continue;
        };
        let status = match text(c, "/status") {
            "True" => Healthy,
            "False" => Degraded,
            _ => Progressing,
        };
        let rule = match kind {
            "Ready" => "generic: Ready condition",
            "Available" => "generic: Available condition",
            _ => "generic: Synced condition",
        };
        return Some((Health::new(status, message(kind)), rule));
    }
    let phase = text(v, "/status/phase");
    let status = match phase.to_ascii_lowercase().as_str() {
        "running" | "ready" | "active" | "available" | "bound" | "healthy" | "succeeded"
        | "completed" | "established" | "deployed" => Healthy,
        "failed" | "error" | "degraded" | "crashloopbackoff" => Degraded,
        "pending" | "progressing" | "provisioning" | "creating" | "initializing" | "updating"
        | "reconciling" | "waiting" => Progressing,
        "paused" | "suspended" => Suspended,
        _ => return None,
    };
    let message = text(v, "/status/message").to_string();
    Some((Health::new(status, message), "generic: status.phase"))
}

/// An Argo Rollout: paused is Suspended; otherwise the phase the controller publishes.
fn rollout(v: &Value) -> Health {
    let message = text(v, "/status/message").to_string();
    if v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
        || v.pointer("/status/pauseConditions")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
    {
        return Health::new(
            Suspended,
            if message.is_empty() {
                "Rollout is paused".into()
            } else {
                message
            },
        );
    }
    match text(v, "/status/phase") {
        "Healthy" => Health::new(Healthy, message),
        "Degraded" => Health::new(Degraded, message),
        "Paused" => Health::new(Suspended, message),
        _ => Health::new(
            Progressing,
            if message.is_empty() {
                "Waiting for the rollout to progress".into()
            } else {
                message
            },
        ),
    }
}

/// A Gateway API route: Healthy when every parent gateway accepted it and resolved its
/// references, Degraded when one refused, Progressing until a parent answered.
fn route(v: &Value) -> Health {
    let parents = v
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if parents.is_empty() {
        return Health::new(Progressing, "waiting for a gateway to accept the route");
    }
    for parent in parents {
        let conditions = parent
            .get("conditions")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for kind in ["Accepted", "ResolvedRefs"] {
            if let Some(c) = find(conditions, kind)
                && text(c, "/status") == "False"
            {
                return Health::new(Degraded, text(c, "/message"));
            }
        }
        if find(conditions, "Accepted").is_none_or(|c| text(c, "/status") != "True") {
            return Health::new(Progressing, "waiting for a gateway to accept the route");
        }
    }
    Health::healthy()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiphys_model::application::HealthStatusCode;

    use super::*;

    fn status(group: &str, kind: &str, v: Value) -> Option<HealthStatusCode> {
        library(group, kind, &v).map(|(h, _)| h.status)
    }

    fn with_conditions(conditions: Value) -> Value {
        json!({"metadata": {"name": "x", "generation": 2}, "status": {"observedGeneration": 2, "conditions": conditions}})
    }

    #[test]
    fn the_generic_rule_reads_common_conventions() {
        let c = |t: &str, s: &str| json!({"type": t, "status": s, "reason": "R", "message": format!("{t} is {s}")});
        assert_eq!(
            status(
                "cert-manager.io",
                "Certificate",
                with_conditions(json!([c("Ready", "True")]))
            ),
            Some(Healthy)
        );
        let (h, rule) = library(
            "cert-manager.io",
            "Certificate",
            &with_conditions(json!([c("Ready", "False")])),
        )
        .unwrap();
        assert_eq!(
            (h.status, h.message.as_str(), rule),
            (Degraded, "Ready is False", "generic: Ready condition")
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "Unknown")]))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Available", "True")]))
            ),
            Some(Healthy)
        );
        // kstatus before Ready.
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "False"), c("Reconciling", "True")]))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "x.io",
                "Thing",
                with_conditions(json!([c("Ready", "True"), c("Stalled", "True")]))
            ),
            Some(Degraded)
        );
        // Crossplane: Synced=False is an error even when Ready.
        assert_eq!(
            status(
                "s3.aws.upbound.io",
                "Bucket",
                with_conditions(json!([c("Ready", "True"), c("Synced", "False")]))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "bitnami.com",
                "SealedSecret",
                with_conditions(json!([c("Synced", "True")]))
            ),
            Some(Healthy)
        );
        // A spec not observed yet.
        let pending = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2, "conditions": [c("Ready", "True")]}});
        assert_eq!(status("x.io", "Thing", pending), Some(Progressing));
        // Phases.
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Running"}})),
            Some(Healthy)
        );
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Failed"}})),
            Some(Degraded)
        );
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Pending"}})),
            Some(Progressing)
        );
        // Nothing recognisable: no health (it does not count, as a ConfigMap does not).
        assert_eq!(status("x.io", "Thing", json!({"spec": {}})), None);
        assert_eq!(
            status("x.io", "Thing", json!({"status": {"phase": "Sideways"}})),
            None
        );
    }

    #[test]
    fn kinds_with_their_own_rules() {
        let rollout = |status: Value| json!({"spec": {}, "status": status});
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Healthy"}))
            ),
            Some(Healthy)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Degraded", "message": "aborted"}))
            ),
            Some(Degraded)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"phase": "Progressing"}))
            ),
            Some(Progressing)
        );
        assert_eq!(
            status(
                "argoproj.io",
                "Rollout",
                rollout(json!({"pauseConditions": [{"reason": "CanaryPauseStep"}]}))
            ),
            Some(Suspended)
        );
        assert_eq!(
            status("argoproj.io", "Rollout", json!({"spec": {"paused": true}})),
            Some(Suspended)
        );

        let flux = json!({"spec": {"suspend": true}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(
            status("kustomize.toolkit.fluxcd.io", "Kustomization", flux),
            Some(Suspended)
        );
        let keda = json!({"metadata": {"annotations": {"autoscaling.keda.sh/paused": "true"}}});
        assert_eq!(status("keda.sh", "ScaledObject", keda), Some(Suspended));

        let route = |parents: Value| json!({"status": {"parents": parents}});
        let accepted = json!([{"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "True"}]}]);
        assert_eq!(
            status("gateway.networking.k8s.io", "HTTPRoute", route(accepted)),
            Some(Healthy)
        );
        let refused = json!([{"conditions": [{"type": "Accepted", "status": "True"}, {"type": "ResolvedRefs", "status": "False", "message": "no such service"}]}]);
        assert_eq!(
            status("gateway.networking.k8s.io", "HTTPRoute", route(refused)),
            Some(Degraded)
        );
        assert_eq!(
            status("gateway.networking.k8s.io", "GRPCRoute", route(json!([]))),
            Some(Progressing)
        );
    }
}
