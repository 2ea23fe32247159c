//! Open Cluster Management's governance policies (`policy.open-cluster-management.io`): a
//! `Policy` on the hub is compliant when every cluster it is placed on is; its copy on a
//! managed cluster, when every template is; the templates themselves (ConfigurationPolicy,
//! CertificatePolicy, OperatorPolicy, …) report `status.compliant` once they have evaluated the
//! current spec. Compliance is the health: a violation is Degraded.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::{find, generic_generation, text};
use crate::Health;

fn waiting() -> Health {
    Health::new(
        Progressing,
        "waiting for the policy's compliance to be reported",
    )
}

/// The health of a policy or policy template; None for the group's other kinds (placement
/// bindings, automations), which report no compliance.
pub(super) fn health(kind: &str, v: &Value) -> Option<Health> {
    match kind {
        "Policy" | "PolicySet" => Some(policy(v)),
        kind if kind.ends_with("Policy") => Some(template(kind, v)),
        _ => None,
    }
}

/// A hub policy (clusters in `status.status`) or its replica (templates in `status.details`).
fn policy(v: &Value) -> Health {
    if v.pointer("/spec/disabled").and_then(Value::as_bool) == Some(true) {
        return Health::new(Healthy, "policy is disabled");
    }
    let Some(status) = v.get("status").filter(|s| s.is_object()) else {
        return waiting();
    };
    match text(v, "/status/compliant") {
        "NonCompliant" => {
            let clusters = non_compliant(status, "status", "/clustername");
            let message = if clusters.is_empty() {
                let templates = non_compliant(status, "details", "/templateMeta/name");
                format!("NonCompliant templates: {}", templates.join(", "))
            } else {
                format!("NonCompliant clusters: {}", clusters.join(", "))
            };
            Health::new(Degraded, message)
        }
        "Compliant" => Health::new(Healthy, "all clusters and templates are compliant"),
        // Placed, and no cluster reports: the placement selects none.
        "" if status.get("placement").is_some() => {
            Health::new(Healthy, "no clusters match this policy")
        }
        _ => waiting(),
    }
}

fn non_compliant<'a>(status: &'a Value, list: &str, name: &str) -> Vec<&'a str> {
    status
        .get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|entry| text(entry, "/compliant") == "NonCompliant")
        .map(|entry| text(entry, name))
        .collect()
}

/// A policy template: compliant once it evaluated the current spec.
fn template(kind: &str, v: &Value) -> Health {
    if v.get("status").is_none() {
        return waiting();
    }
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let evaluated = v
        .pointer("/status/lastEvaluatedGeneration")
        .and_then(Value::as_i64);
    if let (Some(generation), Some(evaluated)) = (generation, evaluated)
        && evaluated < generation
    {
        return Health::new(
            Progressing,
            "waiting for the policy to evaluate its latest spec",
        );
    }
    // An OperatorPolicy sums its checks up in a `Compliant` condition; until that is written,
    // `status.compliant` may be left from before.
    let compliant_condition = find(super::conditions(v), "Compliant");
    if kind == "OperatorPolicy" && compliant_condition.is_none() {
        return Health::new(Progressing, "waiting for the compliance condition");
    }
    let message = compliant_condition
        .map(|c| text(c, "/message").to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| violations(v));
    match text(v, "/status/compliant") {
        "NonCompliant" => Health::new(Degraded, message),
        "Compliant" => Health::new(Healthy, message),
        _ => waiting(),
    }
}

/// A ConfigurationPolicy's violations (or notifications), joined.
fn violations(v: &Value) -> String {
    v.pointer("/status/compliancyDetails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|detail| detail.get("conditions").and_then(Value::as_array))
        .flatten()
        .map(|c| format!("{} - {}", text(c, "/type"), text(c, "/message")))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_policy_by_its_clusters_or_templates() {
        let health = |kind: &str, v: &Value| super::health(kind, v).expect("a policy kind");
        let root = json!({"status": {"compliant": "NonCompliant", "status": [
            {"clustername": "a", "compliant": "Compliant"}, {"clustername": "b", "compliant": "NonCompliant"}]}});
        let h = health("Policy", &root);
        assert_eq!(
            (h.status, h.message.as_str()),
            (Degraded, "NonCompliant clusters: b")
        );
        let replica = json!({"status": {"compliant": "NonCompliant", "details": [
            {"compliant": "NonCompliant", "templateMeta": {"name": "ns"}}]}});
        assert_eq!(
            health("Policy", &replica).message,
            "NonCompliant templates: ns"
        );
        assert_eq!(
            health("Policy", &json!({"status": {"compliant": "Compliant"}})).status,
            Healthy
        );
        assert_eq!(
            health("Policy", &json!({"spec": {"disabled": true}})).status,
            Healthy
        );
        assert_eq!(health("Policy", &json!({"spec": {}})).status, Progressing);
        assert_eq!(
            health("Policy", &json!({"status": {"placement": [{}]}})).status,
            Healthy
        );
    }

    #[test]
    fn templates_once_they_evaluated_the_spec() {
        let health = |kind: &str, v: &Value| super::health(kind, v).expect("a policy kind");
        assert_eq!(
            super::health("PlacementBinding", &json!({"spec": {}})).map(|h| h.status),
            None
        );
        let violated = json!({"metadata": {"generation": 2}, "status": {"compliant": "NonCompliant", "lastEvaluatedGeneration": 2,
            "compliancyDetails": [{"conditions": [{"type": "violation", "message": "namespaces [x] not found"}]}]}});
        let h = health("ConfigurationPolicy", &violated);
        assert_eq!(
            (h.status, h.message.as_str()),
            (Degraded, "violation - namespaces [x] not found")
        );
        let mut stale = violated;
        stale["metadata"]["generation"] = json!(3);
        assert_eq!(health("ConfigurationPolicy", &stale).status, Progressing);
        let operator = |conditions: Value| json!({"status": {"compliant": "Compliant", "conditions": conditions}});
        assert_eq!(
            health("OperatorPolicy", &operator(json!([]))).status,
            Progressing
        );
        assert_eq!(
            health(
                "OperatorPolicy",
                &operator(
                    json!([{"type": "Compliant", "status": "True", "message": "Compliant; ok"}])
                )
            )
            .status,
            Healthy
        );
        assert_eq!(
            health("CertificatePolicy", &json!({"spec": {}})).status,
            Progressing
        );
    }
}
