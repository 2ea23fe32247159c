//! `/api/v1/clusters`: the in-cluster destination and Argo CD cluster Secrets. Credentials
//! (bearer tokens, passwords, keys) are never returned.

use std::sync::Arc;

use axum::extract::{Path, State as AxumState};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_controller::clusters::{
    ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER, SECRET_TYPE_LABEL,
};

use crate::api::{Body, enforce};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

/// A cluster as the API shows it.
fn shape(name: &str, server: &str, config: &Value, secret: Option<&Secret>) -> Value {
    let tls = &config["tlsClientConfig"];
    json!({
        "server": server,
        "name": name,
        "config": {"tlsClientConfig": {
            "insecure": tls["insecure"].as_bool().unwrap_or(false),
            "serverName": tls["serverName"].as_str().unwrap_or_default(),
        }},
        "connectionState": {"status": "Unknown", "message": ""},
        "labels": secret.and_then(|s| s.metadata.labels.clone()).unwrap_or_default(),
        "annotations": secret.and_then(|s| s.metadata.annotations.clone()).unwrap_or_default(),
    })
}

/// Every cluster: (name, server, config, the Secret it comes from).
fn all(state: &State) -> Vec<(String, String, Value, Option<Arc<Secret>>)> {
    let mut out: Vec<(String, String, Value, Option<Arc<Secret>>)> = state
        .secrets
        .state()
        .into_iter()
        .filter_map(|s| {
            let c = ClusterSecret::from_secret(&s)?;
            Some((c.name, c.server, c.config, Some(s)))
        })
        .collect();
    if !out
        .iter()
        .any(|(_, server, _, _)| server == IN_CLUSTER_SERVER)
    {
        out.insert(
            0,
            (
                IN_CLUSTER_NAME.into(),
                IN_CLUSTER_SERVER.into(),
                Value::Null,
                None,
            ),
        );
    }
    out
}

async fn list(AxumState(state): AxumState<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let items: Vec<Value> = all(&state)
        .iter()
        .filter(|(_, server, _, _)| grants.allows("clusters", "get", server))
        .map(|(name, server, config, secret)| shape(name, server, config, secret.as_deref()))
        .collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

/// The cluster a path names: its server URL (URL-encoded) or its name.
fn find(state: &State, id: &str) -> Option<(String, String, Value, Option<Arc<Secret>>)> {
    all(state)
        .into_iter()
        .find(|(name, server, _, _)| server == id || name == id)
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (name, server, config, secret) = find(&state, &id).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "clusters", "get", &server)?;
    Ok(Json(shape(&name, &server, &config, secret.as_deref())))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClusterRequest {
    server: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    project: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// A Secret name for a cluster, stable per server URL (as Argo CD derives one).
fn secret_name(server: &str) -> String {
    let host = server
        .split("://")
        .nth(1)
        .unwrap_or(server)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let mut h: u32 = 0x811c9dc5;
    for b in server.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("cluster-{}-{h}", host.trim_matches('-'))
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Body(req): Body<ClusterRequest>,
) -> ApiResult<Json<Value>> {
    if req.server.is_empty() {
        return Err(ApiError::invalid("server is required"));
    }
    enforce(&state, &caller, "clusters", "create", &req.server)?;
    if find(&state, &req.server).is_some() {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("cluster {} already exists", req.server),
        ));
    }
    let name = if req.name.is_empty() {
        req.server.clone()
    } else {
        req.name.clone()
    };
    let mut labels = req.labels.clone();
    labels.insert(SECRET_TYPE_LABEL.into(), "cluster".into());
    let mut data = serde_json::Map::new();
    data.insert("server".into(), json!(req.server));
    data.insert("name".into(), json!(name));
    data.insert("config".into(), json!(req.config.to_string()));
    if !req.namespaces.is_empty() {
        data.insert("namespaces".into(), json!(req.namespaces.join(",")));
    }
    if !req.project.is_empty() {
        data.insert("project".into(), json!(req.project));
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": secret_name(&req.server), "namespace": state.namespace,
            "labels": labels, "annotations": req.annotations},
        "type": "Opaque",
        "stringData": data,
    }))
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    let api: Api<Secret> = Api::namespaced(state.client.clone(), &state.namespace);
    api.create(&PostParams::default(), &secret).await?;
    tracing::info!(user = %caller.subject, server = %req.server, "cluster added");
    Ok(Json(shape(&name, &req.server, &req.config, None)))
}

async fn delete_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (_, server, _, secret) = find(&state, &id).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "clusters", "delete", &server)?;
    let Some(secret) = secret else {
        return Err(ApiError::invalid(
            "the in-cluster destination cannot be deleted",
        ));
    };
    let api: Api<Secret> = Api::namespaced(state.client.clone(), &state.namespace);
    api.delete(
        secret.metadata.name.as_deref().unwrap_or_default(),
        &DeleteParams::default(),
    )
    .await?;
    Ok(Json(json!({})))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/clusters", get(list).post(create))
        .route("/api/v1/clusters/{id}", get(get_one).delete(delete_one))
}
