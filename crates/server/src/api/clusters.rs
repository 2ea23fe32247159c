//! `/api/v1/clusters`: the in-cluster destination and Argo CD cluster Secrets. Credentials
//! (bearer tokens, passwords, keys) are never returned.

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_controller::clusters::{
    ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER, SECRET_TYPE_LABEL,
};

use crate::api::{Body, enforce};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

/// A cluster as the API shows it: never its credentials.
fn shape(cluster: &ClusterRequest) -> Value {
    let tls = &cluster.config["tlsClientConfig"];
    json!({
        "server": cluster.server,
        "name": cluster.display_name(),
        "config": {"tlsClientConfig": {
            "insecure": tls["insecure"].as_bool().unwrap_or(false),
            "serverName": tls["serverName"].as_str().unwrap_or_default(),
        }},
        "namespaces": cluster.namespaces,
        "project": cluster.project,
        "connectionState": {"status": "Unknown", "message": ""},
        "labels": cluster.labels,
        "annotations": cluster.annotations,
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
        .map(|(name, server, config, secret)| {
            shape(&ClusterRequest::stored(
                name,
                server,
                config,
                secret.as_deref(),
            ))
        })
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
    Ok(Json(shape(&ClusterRequest::stored(
        &name,
        &server,
        &config,
        secret.as_deref(),
    ))))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
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

impl ClusterRequest {
    /// The Secret data Argo CD keeps for a cluster.
    fn data(&self) -> std::collections::BTreeMap<String, String> {
        let mut data = std::collections::BTreeMap::new();
        data.insert("server".to_string(), self.server.clone());
        data.insert("name".to_string(), self.display_name());
        data.insert("config".to_string(), self.config.to_string());
        if !self.namespaces.is_empty() {
            data.insert("namespaces".to_string(), self.namespaces.join(","));
        }
        if !self.project.is_empty() {
            data.insert("project".to_string(), self.project.clone());
        }
        data
    }

    fn display_name(&self) -> String {
        if self.name.is_empty() {
            self.server.clone()
        } else {
            self.name.clone()
        }
    }

    /// The labels to store: the caller's, plus the one that makes the Secret a cluster.
    fn labels(&self) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert(SECRET_TYPE_LABEL.into(), "cluster".into());
        labels
    }

    /// What is stored for the cluster now (credentials inside `config` included).
    fn stored(name: &str, server: &str, config: &Value, secret: Option<&Secret>) -> ClusterRequest {
        let data = secret.map(crate::state::secret_text).unwrap_or_default();
        let mut labels = secret
            .and_then(|s| s.metadata.labels.clone())
            .unwrap_or_default();
        labels.remove(SECRET_TYPE_LABEL);
        ClusterRequest {
            server: server.to_string(),
            name: name.to_string(),
            config: if config.is_null() {
                json!({})
            } else {
                config.clone()
            },
            namespaces: data
                .get("namespaces")
                .map(|n| {
                    n.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            project: data.get("project").cloned().unwrap_or_default(),
            labels,
            annotations: secret
                .and_then(|s| s.metadata.annotations.clone())
                .unwrap_or_default(),
        }
    }
}

#[derive(Deserialize, Default)]
struct UpsertQuery {
    #[serde(default)]
    upsert: bool,
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<UpsertQuery>,
    Body(req): Body<ClusterRequest>,
) -> ApiResult<Json<Value>> {
    if req.server.is_empty() {
        return Err(ApiError::invalid("server is required"));
    }
    enforce(&state, &caller, "clusters", "create", &req.server)?;
    if let Some(existing) = find(&state, &req.server) {
        if !q.upsert {
            return Err(ApiError::new(
                Code::AlreadyExists,
                format!(
                    "cluster {} already exists; use upsert to replace it",
                    req.server
                ),
            ));
        }
        enforce(&state, &caller, "clusters", "update", &req.server)?;
        return write(&state, &caller, existing.3.as_deref(), req).await;
    }
    write(&state, &caller, None, req).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UpdateQuery {
    /// Only these fields change (`name`, `namespaces`, `project`, `labels`, `annotations`,
    /// `config`); none named: all of them.
    #[serde(default)]
    updated_fields: Vec<String>,
}

/// `PUT /api/v1/clusters/{server or name}` (`updatedFields` repeated or comma-separated).
async fn update(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    Body(req): Body<ClusterRequest>,
) -> ApiResult<Json<Value>> {
    let mut q = UpdateQuery::default();
    for (k, v) in pairs {
        if k == "updatedFields" {
            q.updated_fields
                .extend(v.split(',').filter(|f| !f.is_empty()).map(str::to_string));
        }
    }
    let (name, server, config, secret) = find(&state, &id).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "clusters", "update", &server)?;
    if !req.server.is_empty() && req.server != server {
        return Err(ApiError::invalid(
            "server cannot change: add the cluster under its new URL",
        ));
    }
    let mut merged = ClusterRequest::stored(&name, &server, &config, secret.as_deref());
    let all_fields = q.updated_fields.is_empty();
    let wants = |f: &str| all_fields || q.updated_fields.iter().any(|u| u == f);
    for field in &q.updated_fields {
        if ![
            "name",
            "namespaces",
            "project",
            "labels",
            "annotations",
            "config",
        ]
        .contains(&field.as_str())
        {
            return Err(ApiError::invalid(format!(
                "updatedFields: unknown field {field:?}"
            )));
        }
    }
    if wants("name") {
        merged.name = req.name;
    }
    if wants("namespaces") {
        merged.namespaces = req.namespaces;
    }
    if wants("project") {
        merged.project = req.project;
    }
    if wants("labels") {
        merged.labels = req.labels;
    }
    if wants("annotations") {
        merged.annotations = req.annotations;
    }
    // A config sent back without its secrets (they are never returned) keeps the stored ones.
    if wants("config") && !req.config.is_null() {
        merged.config = merge_config(&merged.config, &req.config);
    }
    write(&state, &caller, secret.as_deref(), merged).await
}

/// `sent` over `stored`, except credential fields `sent` leaves out.
fn merge_config(stored: &Value, sent: &Value) -> Value {
    let mut out = sent.clone();
    for key in [
        "bearerToken",
        "username",
        "password",
        "awsAuthConfig",
        "execProviderConfig",
    ] {
        if out.get(key).is_none()
            && let Some(value) = stored.get(key)
        {
            out[key] = value.clone();
        }
    }
    for key in ["certData", "keyData", "caData"] {
        if out["tlsClientConfig"].get(key).is_none()
            && let Some(value) = stored["tlsClientConfig"].get(key)
        {
            if !out["tlsClientConfig"].is_object() {
                out["tlsClientConfig"] = json!({});
            }
            out["tlsClientConfig"][key] = value.clone();
        }
    }
    out
}

/// Store `req` as the cluster's Secret: a new one, or `existing` replaced.
async fn write(
    state: &State,
    caller: &Caller,
    existing: Option<&Secret>,
    req: ClusterRequest,
) -> ApiResult<Json<Value>> {
    match existing {
        Some(secret) => {
            crate::api::replace_secret_data(
                state,
                secret,
                req.data(),
                Some(req.labels()),
                Some(req.annotations.clone()),
            )
            .await?;
            tracing::info!(user = %caller.subject, server = %req.server, "cluster updated");
        }
        None => {
            let secret: Secret = serde_json::from_value(json!({
                "metadata": {"name": secret_name(&req.server), "namespace": state.namespace,
                    "labels": req.labels(), "annotations": req.annotations},
                "type": "Opaque",
                "stringData": req.data(),
            }))
            .map_err(|e| ApiError::invalid(e.to_string()))?;
            let api: Api<Secret> = Api::namespaced(state.client.clone(), &state.namespace);
            api.create(&PostParams::default(), &secret).await?;
            tracing::info!(user = %caller.subject, server = %req.server, "cluster added");
        }
    }
    Ok(Json(shape(&req)))
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
    crate::api::delete_secret(&state, &secret).await?;
    Ok(Json(json!({})))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/clusters", get(list).post(create))
        .route(
            "/api/v1/clusters/{id}",
            get(get_one).put(update).delete(delete_one),
        )
}
