//! Pausing auto-sync for a while: what `tiphys app pause/resume` (core mode) and the API
//! server both call — the limit from argocd-cm, one optimistic write, an Event — and the
//! controller's side: a condition while paused, a wake-up at the expiry, and the resume then.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{Patch, PatchParams};
use tiphys_model::Application;
use tiphys_model::pause::{DEFAULT_MAX_PAUSE, Pause, PauseError};

/// argocd-cm's key for the longest pause allowed (a Go duration, e.g. `8h`).
pub const MAX_PAUSE_KEY: &str = "tiphys.pause.maxDuration";

/// The condition type a paused app carries.
pub const CONDITION: &str = "AutoSyncPaused";

#[derive(Debug, thiserror::Error)]
pub enum PauseFailure {
    #[error("{0}")]
    Refused(#[from] PauseError),
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("application {0} kept changing; try again")]
    Conflict(String),
}

/// The longest pause argocd-cm allows (a day when it does not say).
pub fn max_pause(argocd_cm: Option<&ConfigMap>) -> SignedDuration {
    argocd_cm
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get(MAX_PAUSE_KEY))
        .and_then(|v| tiphys_model::validate::parse_duration(v))
        .and_then(|d| SignedDuration::try_from(d).ok())
        .unwrap_or(DEFAULT_MAX_PAUSE)
}

/// What the condition and `tiphys app get` say about a pause.
pub fn describe(pause: &Pause) -> String {
    let mut text = format!("auto-sync paused until {}", pause.until);
    if !pause.by.is_empty() {
        text.push_str(&format!(" by {}", pause.by));
    }
    if !pause.reason.is_empty() {
        text.push_str(&format!(": {}", pause.reason));
    }
    text
}

/// Write `patch(app)` on the current version of `name`, again from a fresh read when another
/// writer got there first.
async fn write(
    api: &Api<Application>,
    name: &str,
    patch: impl Fn(&Application) -> Result<serde_json::Value, PauseError>,
) -> Result<(Application, Application), PauseFailure> {
    for _ in 0..5 {
        let before = api.get(name).await?;
        let body = patch(&before)?;
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(after) => return Ok((before, after)),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(PauseFailure::Conflict(name.to_string()))
}

/// Pause `name`'s auto-sync until `until` (or move the end of its pause there), recorded as
/// done by `by`.
pub async fn pause(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    until: Timestamp,
    reason: &str,
    by: &str,
) -> Result<Application, PauseFailure> {
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = configs.get_opt(crate::settings::ARGOCD_CM).await?;
    let max = max_pause(cm.as_ref());
    let api: Api<Application> = Api::namespaced(client.clone(), namespace);
    let (before, after) = write(&api, name, |app| {
        app.pause_patch(until, reason, by, Timestamp::now(), max)
    })
    .await?;
    let (event, verb) = if before.pause().is_some() {
        ("AutoSyncPauseExtended", "changed")
    } else {
        ("AutoSyncPaused", "paused")
    };
    let pause = after
        .pause()
        .ok_or_else(|| PauseFailure::Conflict(name.to_string()))?;
    let message = format!("{} ({verb})", describe(&pause));
    crate::events::record(client, &after, false, event, &message).await;
    Ok(after)
}

/// End `name`'s pause now (auto-sync, with self-heal, takes over at once).
pub async fn resume(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    by: &str,
) -> Result<Application, PauseFailure> {
    let api: Api<Application> = Api::namespaced(client.clone(), namespace);
    let (_, after) = write(&api, name, Application::resume_patch).await?;
    let message = if by.is_empty() {
        "auto-sync resumed".to_string()
    } else {
        format!("auto-sync resumed by {by}")
    };
    crate::events::record(client, &after, false, "AutoSyncResumed", &message).await;
    Ok(after)
}

/// The controller at a paused app: at or after the expiry, resume it (and say so); before,
/// the time left, for a wake-up then.
pub async fn at_expiry(
    client: &kube::Client,
    app: &Application,
    now: Timestamp,
) -> Result<Option<std::time::Duration>, PauseFailure> {
    let Some(pause) = app.pause() else {
        return Ok(None);
    };
    if !pause.expired(now) {
        let left = pause.until.duration_since(now);
        return Ok(std::time::Duration::try_from(left).ok());
    }
    let namespace = app.metadata.namespace.clone().unwrap_or_default();
    let name = app.metadata.name.clone().unwrap_or_default();
    let api: Api<Application> = Api::namespaced(client.clone(), &namespace);
    let (_, after) = write(&api, &name, |current| match current.pause() {
        // Extended meanwhile: leave it.
        Some(p) if !p.expired(Timestamp::now()) => Err(PauseError::NotPaused(name.clone())),
        _ => current.resume_patch(),
    })
    .await?;
    let message = format!("the pause ended ({}); auto-sync resumed", describe(&pause));
    crate::events::record(client, &after, false, "AutoSyncPauseExpired", &message).await;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_comes_from_argocd_cm() {
        assert_eq!(max_pause(None), DEFAULT_MAX_PAUSE);
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"data": {MAX_PAUSE_KEY: "8h"}})).unwrap();
        assert_eq!(max_pause(Some(&cm)), SignedDuration::from_hours(8));
        let bad: ConfigMap =
            serde_json::from_value(serde_json::json!({"data": {MAX_PAUSE_KEY: "soon"}})).unwrap();
        assert_eq!(max_pause(Some(&bad)), DEFAULT_MAX_PAUSE);
    }

    #[test]
    fn descriptions_name_who_and_why() {
        let pause = Pause {
            until: "2026-12-01T12:00:00Z".parse().unwrap(),
            reason: "incident 4711".into(),
            by: "alice".into(),
        };
        assert_eq!(
            describe(&pause),
            "auto-sync paused until 2026-12-01T12:00:00Z by alice: incident 4711"
        );
    }
}
