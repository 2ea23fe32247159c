//! The OpenTelemetry operator's OpenTelemetryCollector: `status.scale.statusReplicas` counts
//! ready replicas as "ready/total".

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::{Rule, generic, text};
use crate::Health;

pub(super) fn collector(v: &Value) -> Option<(Health, Rule)> {
    const RULE: Rule = "OpenTelemetry collector: ready replicas";
    let replicas = text(v, "/status/scale/statusReplicas");
    let Some((ready, total)) = replicas.split_once('/') else {
        // A sidecar collector runs inside other pods and counts no replicas of its own.
        if text(v, "/spec/mode") == "sidecar" {
            return Some((Health::new(Healthy, "injected as a sidecar"), RULE));
        }
        return generic(v).or(Some((
            Health::new(Progressing, "waiting for the OpenTelemetry operator"),
            RULE,
        )));
    };
    let (Ok(ready), Ok(total)) = (ready.trim().parse::<u32>(), total.trim().parse::<u32>()) else {
        return None;
    };
    let message = format!("{ready} of {total} replicas ready");
    let health = if ready >= total {
        Health::new(Healthy, message)
    } else if ready == 0 {
        Health::new(Degraded, message)
    } else {
        Health::new(Progressing, message)
    };
    Some((health, RULE))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ready_replicas_of_a_collector() {
        let code = |r: &str| {
            collector(&json!({"status": {"scale": {"statusReplicas": r}}})).map(|(h, _)| h.status)
        };
        assert_eq!(code("2/2"), Some(Healthy));
        assert_eq!(code("1/2"), Some(Progressing));
        assert_eq!(code("0/2"), Some(Degraded));
        assert_eq!(code("0/0"), Some(Healthy));
        assert_eq!(
            collector(&json!({"spec": {"mode": "sidecar"}, "status": {}})).map(|(h, _)| h.status),
            Some(Healthy)
        );
        assert_eq!(
            collector(&json!({"spec": {}})).map(|(h, _)| h.status),
            Some(Progressing)
        );
    }
}
