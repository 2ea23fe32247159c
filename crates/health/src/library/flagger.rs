//! Flagger (`flagger.app`) Canary: by the phase of its analysis.

use serde_json::Value;
use tiphys_model::application::HealthStatusCode::{Degraded, Healthy, Progressing};

use super::{condition_message, text};
use crate::Health;

pub(super) fn canary(v: &Value) -> Health {
    let phase = text(v, "/status/phase");
    let message = condition_message(v, "Promoted");
    let message = if message.is_empty() {
        phase.to_string()
    } else {
        format!("{phase}: {message}")
    };
    match phase {
        // Initialized: the primary is installed and no analysis is running.
        "Initialized" | "Succeeded" => Health::new(Healthy, message),
        "Failed" => Health::new(Degraded, message),
        "" => Health::new(Progressing, "waiting for Flagger to initialise the canary"),
        // Initializing, Waiting, Progressing, WaitingPromotion, Promoting, Finalising.
        _ => Health::new(Progressing, message),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_canary_by_its_phase() {
        let code = |phase: &str| canary(&json!({"status": {"phase": phase}})).status;
        assert_eq!(code("Initialized"), Healthy);
        assert_eq!(code("Succeeded"), Healthy);
        assert_eq!(code("Promoting"), Progressing);
        assert_eq!(code("Finalising"), Progressing);
        assert_eq!(code("Failed"), Degraded);
        assert_eq!(canary(&json!({})).status, Progressing);
    }
}
