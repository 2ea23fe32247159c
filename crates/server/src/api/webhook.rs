//! `POST /api/webhook`: Git push events (GitHub, GitLab, Bitbucket), checked against the
//! secrets in argocd-secret as the controller's endpoint checks them; the apps a push concerns
//! get the refresh annotation, which the controller acts on. (The controller serves the same
//! path itself; either may be exposed.)

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tiphys_controller::webhook::{WebhookError, affected_among, parse};
use tiphys_model::Application;

use crate::state::{ARGOCD_SECRET, State};

async fn webhook(
    AxumState(state): AxumState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    match parse(&headers, &body, &state.secret(ARGOCD_SECRET)) {
        Ok(Some(push)) => {
            let apps = affected_among(&state.apps.state(), &push);
            let api: Api<Application> = Api::namespaced(state.client.clone(), &state.namespace);
            let patch =
                json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
            for app in &apps {
                if let Err(e) = api
                    .patch(app, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::warn!(app = %app, error = %e, "requesting a refresh failed");
                }
            }
            tracing::info!(revision = %push.revision, apps = ?apps, "push webhook");
            (
                StatusCode::OK,
                format!("refreshing {} application(s)\n", apps.len()),
            )
        }
        Ok(None) => (StatusCode::OK, "event ignored\n".into()),
        Err(WebhookError::Unauthorized) => {
            (StatusCode::UNAUTHORIZED, "webhook secret mismatch\n".into())
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new().route("/api/webhook", post(webhook))
}
