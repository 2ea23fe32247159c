//! A time-limited pause of auto-sync, stored on the Application itself: Argo CD's
//! `spec.syncPolicy.automated.enabled: false` (so Argo CD reading the same object also sees
//! auto-sync off) plus annotations saying until when, why and who. At the expiry the
//! controller removes both and auto-sync (with self-heal) resumes.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::Application;

pub const PAUSED_UNTIL: &str = "tiphys.io/auto-sync-paused-until";
pub const PAUSED_REASON: &str = "tiphys.io/auto-sync-paused-reason";
pub const PAUSED_BY: &str = "tiphys.io/auto-sync-paused-by";

/// A pause as recorded on an Application.
#[derive(Clone, Debug, PartialEq)]
pub struct Pause {
    pub until: Timestamp,
    pub reason: String,
    pub by: String,
}

impl Pause {
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.until
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PauseError {
    #[error("auto-sync of {0} is not enabled: there is nothing to pause")]
    NotAutomated(String),
    #[error("the pause must end in the future (until {0})")]
    InThePast(Timestamp),
    #[error(
        "a pause of {asked} is longer than the maximum of {max} (argocd-cm tiphys.pause.maxDuration)"
    )]
    TooLong { asked: String, max: String },
    #[error("{0} is not paused")]
    NotPaused(String),
}

fn annotation<'a>(app: &'a Application, key: &str) -> Option<&'a str> {
    app.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// `seconds` as the largest whole unit: `2h`, `90m`, `45s`.
pub fn human(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl Application {
    /// The pause recorded on the app, if its expiry reads as a time.
    pub fn pause(&self) -> Option<Pause> {
        let until: Timestamp = annotation(self, PAUSED_UNTIL)?.parse().ok()?;
        Some(Pause {
            until,
            reason: annotation(self, PAUSED_REASON)
                .unwrap_or_default()
                .to_string(),
            by: annotation(self, PAUSED_BY).unwrap_or_default().to_string(),
        })
    }

    /// The merge patch pausing auto-sync until `until` (a new pause, or an existing one
    /// extended or shortened), refused when auto-sync is off without a pause, when `until` has
    /// passed, or when the pause would last longer than `max` from `now`. Guarded by the
    /// version read, so a concurrent change is not overwritten.
    pub fn pause_patch(
        &self,
        until: Timestamp,
        reason: &str,
        by: &str,
        now: Timestamp,
        max: SignedDuration,
    ) -> Result<Value, PauseError> {
        let name = self.metadata.name.clone().unwrap_or_default();
        let automated = self
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref());
        if automated.is_none() || (!self.auto_sync_enabled() && self.pause().is_none()) {
            return Err(PauseError::NotAutomated(name));
        }
        if until <= now {
            return Err(PauseError::InThePast(until));
        }
        let asked = until.duration_since(now);
        if asked > max {
            return Err(PauseError::TooLong {
                asked: human(asked.as_secs()),
                max: human(max.as_secs()),
            });
        }
        Ok(json!({
            "metadata": {
                "resourceVersion": self.metadata.resource_version,
                "annotations": {PAUSED_UNTIL: until.to_string(), PAUSED_REASON: reason, PAUSED_BY: by},
            },
            "spec": {"syncPolicy": {"automated": {"enabled": false}}},
        }))
    }

    /// The merge patch ending the pause: the annotations go and `enabled` is removed (Argo
    /// CD reads an absent `enabled` as on).
    pub fn resume_patch(&self) -> Result<Value, PauseError> {
        if self.pause().is_none() {
            return Err(PauseError::NotPaused(
                self.metadata.name.clone().unwrap_or_default(),
            ));
        }
        Ok(json!({
            "metadata": {
                "resourceVersion": self.metadata.resource_version,
                "annotations": {PAUSED_UNTIL: null, PAUSED_REASON: null, PAUSED_BY: null},
            },
            "spec": {"syncPolicy": {"automated": {"enabled": null}}},
        }))
    }
}

/// How long a pause may be when argocd-cm does not say: a day.
pub const DEFAULT_MAX_PAUSE: SignedDuration = SignedDuration::from_hours(24);

#[cfg(test)]
mod tests {
    use super::*;

    fn app(policy: &str, annotations: &str) -> Application {
        Application::from_yaml(
            &format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  resourceVersion: '7'\n  annotations: {{{annotations}}}\nspec:\n  project: default\n  destination:\n    server: https://kubernetes.default.svc\n  source:\n    repoURL: https://git.example.com/r\n    path: p\n{policy}"
            ),
            "test",
        )
        .unwrap()
    }

    const AUTO: &str = "  syncPolicy:\n    automated:\n      selfHeal: true\n";
    const PAUSED: &str =
        "  syncPolicy:\n    automated:\n      selfHeal: true\n      enabled: false\n";

    #[test]
    fn a_pause_is_recorded_and_read_back() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let until: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let patch = app(AUTO, "")
            .pause_patch(until, "incident 4711", "alice", now, DEFAULT_MAX_PAUSE)
            .unwrap();
        assert_eq!(patch["spec"]["syncPolicy"]["automated"]["enabled"], false);
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let annotations = format!(
            "{PAUSED_UNTIL}: '2026-12-01T12:00:00Z', {PAUSED_REASON}: incident 4711, {PAUSED_BY}: alice"
        );
        let paused = app(PAUSED, &annotations);
        let pause = paused.pause().unwrap();
        assert_eq!(
            (pause.reason.as_str(), pause.by.as_str()),
            ("incident 4711", "alice")
        );
        assert!(!pause.expired(now) && pause.expired(until));
        assert!(!paused.auto_sync_enabled());
        // Extending a pause is a pause of a paused app.
        let later: Timestamp = "2026-12-01T14:00:00Z".parse().unwrap();
        assert!(
            paused
                .pause_patch(later, "", "bob", now, DEFAULT_MAX_PAUSE)
                .is_ok()
        );
        let resume = paused.resume_patch().unwrap();
        assert!(resume["spec"]["syncPolicy"]["automated"]["enabled"].is_null());
        assert!(resume["metadata"]["annotations"][PAUSED_UNTIL].is_null());
    }

    #[test]
    fn refusals() {
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let soon: Timestamp = "2026-12-01T11:00:00Z".parse().unwrap();
        let manual = app("", "");
        assert_eq!(
            manual.pause_patch(soon, "", "", now, DEFAULT_MAX_PAUSE),
            Err(PauseError::NotAutomated("web".into()))
        );
        // Switched off by hand, not paused: nothing to pause either.
        assert!(matches!(
            app(PAUSED, "").pause_patch(soon, "", "", now, DEFAULT_MAX_PAUSE),
            Err(PauseError::NotAutomated(_))
        ));
        assert!(matches!(
            app(AUTO, "").pause_patch(now, "", "", now, DEFAULT_MAX_PAUSE),
            Err(PauseError::InThePast(_))
        ));
        let far: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let err = app(AUTO, "")
            .pause_patch(far, "", "", now, DEFAULT_MAX_PAUSE)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a pause of 48h is longer than the maximum of 24h (argocd-cm tiphys.pause.maxDuration)"
        );
        assert_eq!(
            app(AUTO, "").resume_patch(),
            Err(PauseError::NotPaused("web".into()))
        );
    }
}
