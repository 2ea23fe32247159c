//! Karmada's bindings (`work.karmada.io` ResourceBinding, ClusterResourceBinding): a resource
//! propagated to member clusters is healthy when the scheduler placed the current spec, every
//! chosen cluster reported back, and each applied it and found it healthy.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::text;
use crate::Health;

pub(super) fn binding(v: &Value) -> Health {
    let insufficient = |why: &str| Health::new(Progressing, why.to_string());
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let scheduled = v
        .pointer("/status/schedulerObservedGeneration")
        .and_then(Value::as_i64);
    if generation.is_some() && scheduled != generation {
        return insufficient("waiting for the scheduler to place the latest spec");
    }
    let clusters = v
        .pointer("/spec/clusters")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if clusters == 0 {
        return insufficient("not placed on any member cluster yet");
    }
    let reports = v
        .pointer("/status/aggregatedStatus")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if reports.len() < clusters {
        return insufficient(&format!(
            "{} of {clusters} member clusters reported",
            reports.len()
        ));
    }
    let failing: Vec<&str> = reports
        .iter()
        .filter(|r| {
            r.get("applied").and_then(Value::as_bool) != Some(true)
                || text(r, "/health") == "Unhealthy"
        })
        .map(|r| text(r, "/clusterName"))
        .collect();
    if !failing.is_empty() {
        return Health::new(
            Degraded,
            format!("not applied or unhealthy on {}", failing.join(", ")),
        );
    }
    // A cluster that reports Unknown health applied the resource; a kind without a health
    // check there says nothing worse.
    Health::new(
        Healthy,
        format!("applied on all {clusters} member clusters"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bindings_by_placement_and_member_reports() {
        let binding_of = |clusters: usize, reports: Value| {
            let names: Vec<Value> = (0..clusters)
                .map(|i| json!({"name": format!("m{i}")}))
                .collect();
            json!({"metadata": {"generation": 2}, "spec": {"clusters": names},
                   "status": {"schedulerObservedGeneration": 2, "aggregatedStatus": reports}})
        };
        let ok =
            |n: &str, health: &str| json!({"clusterName": n, "applied": true, "health": health});
        assert_eq!(
            binding(&binding_of(
                2,
                json!([ok("m0", "Healthy"), ok("m1", "Unknown")])
            ))
            .status,
            Healthy
        );
        assert_eq!(
            binding(&binding_of(2, json!([ok("m0", "Healthy")]))).status,
            Progressing
        );
        assert_eq!(
            binding(&binding_of(1, json!([ok("m0", "Unhealthy")]))).status,
            Degraded
        );
        assert_eq!(
            binding(&binding_of(
                1,
                json!([{"clusterName": "m0", "applied": false}])
            ))
            .status,
            Degraded
        );
        assert_eq!(binding(&binding_of(0, json!([]))).status, Progressing);
        let mut stale = binding_of(1, json!([ok("m0", "Healthy")]));
        stale["status"]["schedulerObservedGeneration"] = json!(1);
        assert_eq!(binding(&stale).status, Progressing);
    }
}
