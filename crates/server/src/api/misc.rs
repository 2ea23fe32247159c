//! `/healthz`, `/api/version`, `/api/v1/settings`, `/api/badge`.

use std::sync::Arc;

use axum::extract::{Query, State as AxumState};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_model::application::{HealthStatusCode, SyncStatusCode};

use crate::state::{ARGOCD_CM, State};

async fn healthz() -> &'static str {
    "ok"
}

async fn version() -> Json<Value> {
    let version = concat!("v", env!("CARGO_PKG_VERSION"), "+tiphys");
    Json(json!({
        "Version": version,
        "BuildDate": "",
        "GitCommit": "",
        "GitTag": "",
        "GitTreeState": "",
        "GoVersion": "",
        "Compiler": "rustc",
        "Platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        "KustomizeVersion": "tiphys native (kustomize v5.5 compatible)",
        "HelmVersion": "",
        "KubectlVersion": "",
        "JsonnetVersion": "",
    }))
}

/// What the UI and CLIs read before logging in: nothing secret.
async fn settings(AxumState(state): AxumState<Arc<State>>) -> Json<Value> {
    let cm = state.config(ARGOCD_CM);
    let get = |k: &str| cm.get(k).cloned().unwrap_or_default();
    let oidc: Option<Value> = cm
        .get("oidc.config")
        .and_then(|text| yaml_object(text))
        .map(|c| {
            json!({
                "name": c.get("name").cloned().unwrap_or(json!("")),
                "issuer": c.get("issuer").cloned().unwrap_or(json!("")),
                "clientID": c.get("clientID").cloned().unwrap_or(json!("")),
                "cliClientID": c.get("cliClientID").cloned().unwrap_or(json!("")),
                "scopes": c.get("requestedScopes").cloned().unwrap_or(json!([])),
            })
        });
    let mut out = json!({
        "url": get("url"),
        "appLabelKey": cm.get("application.instanceLabelKey").cloned().unwrap_or_else(|| "app.kubernetes.io/instance".into()),
        "statusBadgeEnabled": cm.get("statusbadge.enabled").map(|v| v == "true").unwrap_or(false),
        "userLoginsDisabled": cm.get("admin.enabled").map(|v| v == "false").unwrap_or(false) && !cm.keys().any(|k| k.starts_with("accounts.")),
        "kustomizeOptions": {"buildOptions": get("kustomize.buildOptions")},
        "help": {"chatUrl": get("help.chatUrl"), "chatText": get("help.chatText")},
        "uiBannerContent": get("ui.bannercontent"),
        "passwordPattern": "^.{8,32}$",
        "trackingMethod": cm.get("application.resourceTrackingMethod").cloned().unwrap_or_else(|| "annotation".into()),
        "execEnabled": false,
        "controllerNamespace": state.namespace,
        "appsInAnyNamespaceEnabled": false,
        "impersonationEnabled": false,
    });
    if let Some(oidc) = oidc {
        out["oidcConfig"] = oidc;
    }
    Json(out)
}

/// argocd-cm's `oidc.config` is YAML; only a few fields are read here.
fn yaml_object(text: &str) -> Option<serde_json::Map<String, Value>> {
    let value: Value = serde_saphyr::from_str(text).ok()?;
    value.as_object().cloned()
}

#[derive(Deserialize)]
struct BadgeQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    project: String,
}

/// A status badge (argocd-cm `statusbadge.enabled: "true"`), answered without a login as in
/// Argo CD; it says nothing about apps that do not exist.
async fn badge(
    AxumState(state): AxumState<Arc<State>>,
    Query(q): Query<BadgeQuery>,
) -> impl IntoResponse {
    let enabled = state
        .config(ARGOCD_CM)
        .get("statusbadge.enabled")
        .map(String::as_str)
        == Some("true");
    let (sync, health) = if !enabled {
        ("Unknown".to_string(), "Unknown".to_string())
    } else if !q.name.is_empty() {
        match state.app(&q.name) {
            Some(app) => {
                let s = app.status.clone().unwrap_or_default();
                (
                    format!("{:?}", s.sync.status),
                    format!("{:?}", s.health.status),
                )
            }
            None => ("Unknown".into(), "Unknown".into()),
        }
    } else if !q.project.is_empty() {
        let apps: Vec<_> = state
            .apps
            .state()
            .into_iter()
            .filter(|a| a.spec.project == q.project)
            .collect();
        let synced = apps.iter().all(|a| {
            a.status
                .as_ref()
                .is_some_and(|s| s.sync.status == SyncStatusCode::Synced)
        });
        let healthy = apps.iter().all(|a| {
            a.status
                .as_ref()
                .is_some_and(|s| s.health.status == HealthStatusCode::Healthy)
        });
        (
            if apps.is_empty() {
                "Unknown"
            } else if synced {
                "Synced"
            } else {
                "OutOfSync"
            }
            .into(),
            if apps.is_empty() {
                "Unknown"
            } else if healthy {
                "Healthy"
            } else {
                "Degraded"
            }
            .into(),
        )
    } else {
        ("Unknown".into(), "Unknown".into())
    };
    let color = |s: &str| match s {
        "Synced" | "Healthy" => "#18be52",
        "OutOfSync" | "Progressing" | "Suspended" => "#f4c030",
        "Degraded" | "Missing" => "#e96d76",
        _ => "#9f9f9f",
    };
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"20\"><rect width=\"100\" height=\"20\" fill=\"{}\"/><rect x=\"100\" width=\"100\" height=\"20\" fill=\"{}\"/><g fill=\"#fff\" font-family=\"DejaVu Sans,Verdana,sans-serif\" font-size=\"11\" text-anchor=\"middle\"><text x=\"50\" y=\"14\">{}</text><text x=\"150\" y=\"14\">{}</text></g></svg>",
        color(&health),
        color(&sync),
        health,
        sync
    );
    ([(CONTENT_TYPE, "image/svg+xml")], svg)
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/version", get(version))
        .route("/api/v1/settings", get(settings))
        .route("/api/badge", get(badge))
}
