//! Numaflow (`numaflow.numaproj.io`): pipelines, vertices, monovertices and inter-step buffer
//! services publish a phase and conditions for their parts. A progressive upgrade that
//! Numaplane judged failed (its `progressive-result-state` label) is Degraded; paused is
//! Suspended; a part reported unhealthy Degraded.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing, Suspended};

use super::{conditions, generic_generation, text};
use crate::Health;

pub(super) fn health(kind: &str, v: &Value) -> Health {
    if v.get("status").is_none() {
        return Health::new(Progressing, format!("waiting for the {kind} status"));
    }
    if let Some((h, _)) = generic_generation(v) {
        return h;
    }
    let progressive = v
        .pointer("/metadata/labels/numaplane.numaproj.io~1progressive-result-state")
        .and_then(Value::as_str);
    if progressive == Some("failed") {
        return Health::new(Degraded, "the progressive upgrade failed");
    }
    let phase = text(v, "/status/phase");
    if matches!(phase, "Paused" | "Pausing") {
        return Health::new(Suspended, format!("{kind} is paused"));
    }
    if let Some(unhealthy) = conditions(v).iter().find(|c| text(c, "/status") == "False") {
        return Health::new(
            Degraded,
            crate::message_or(
                text(unhealthy, "/message").to_string(),
                "subresources are unhealthy",
            ),
        );
    }
    match phase {
        "Failed" => Health::new(
            Degraded,
            crate::message_or(text(v, "/status/message").to_string(), phase),
        ),
        "Running" | "Deployed" => Health::new(Healthy, format!("{kind} is healthy")),
        _ => Health::new(Progressing, format!("waiting for the {kind} to run")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn phases_parts_and_progressive_upgrades() {
        let ok = json!([{"type": "Deployed", "status": "True"}]);
        let object = |phase: &str, conditions: Value| json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "phase": phase, "conditions": conditions}});
        assert_eq!(
            health("Pipeline", &object("Running", ok.clone())).status,
            Healthy
        );
        assert_eq!(
            health("Pipeline", &object("Paused", ok.clone())).status,
            Suspended
        );
        assert_eq!(
            health(
                "MonoVertex",
                &object(
                    "Running",
                    json!([{"type": "PodsHealthy", "status": "False", "message": "bad"}])
                )
            )
            .status,
            Degraded
        );
        let mut failed = object("Running", ok.clone());
        failed["metadata"]["labels"] =
            json!({"numaplane.numaproj.io/progressive-result-state": "failed"});
        assert_eq!(health("Pipeline", &failed).status, Degraded);
        let mut stale = object("Running", ok);
        stale["metadata"]["generation"] = json!(2);
        assert_eq!(health("Vertex", &stale).status, Progressing);
        assert_eq!(health("Vertex", &json!({})).status, Progressing);
    }
}
