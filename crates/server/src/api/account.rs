//! `/api/v1/account`: accounts, can-i, password changes, API tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State as AxumState};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Body, enforce};
use crate::auth::accounts::{self, Account, TokenRecord, secret_key};
use crate::auth::{Caller, bootstrap, jwt};
use crate::error::{ApiError, ApiResult, Code};
use crate::state::{ARGOCD_CM, ARGOCD_SECRET, State, secret_text};

fn all(state: &State) -> Vec<Account> {
    accounts::accounts(&state.config(ARGOCD_CM), &state.secret(ARGOCD_SECRET))
}

fn shape(a: &Account) -> Value {
    let tokens: Vec<Value> = a
        .tokens
        .iter()
        .map(|t| json!({"id": t.id, "issuedAt": t.issued_at, "expiresAt": t.expires_at}))
        .collect();
    json!({"name": a.name, "enabled": a.enabled, "capabilities": a.capabilities, "tokens": tokens})
}

async fn list(AxumState(state): AxumState<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let items: Vec<Value> = all(&state)
        .iter()
        .filter(|a| grants.allows("accounts", "get", &a.name))
        .map(shape)
        .collect();
    Ok(Json(json!({"items": items})))
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    enforce(&state, &caller, "accounts", "get", &name)?;
    all(&state)
        .iter()
        .find(|a| a.name == name)
        .map(|a| Json(shape(a)))
        .ok_or_else(|| ApiError::not_found("account", &name))
}

async fn can_i(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((resource, action, subresource)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let yes = caller
        .check(&policy)
        .allows(&resource, &action, &subresource);
    Ok(Json(json!({"value": if yes { "yes" } else { "no" }})))
}

/// Change argocd-secret's text data with `change`, as one write guarded by the version it
/// was read at (retried from a fresh read when another writer got there first).
pub async fn update_argocd_secret(
    state: &State,
    change: impl Fn(&mut BTreeMap<String, String>) -> ApiResult<()>,
) -> ApiResult<()> {
    let api: Api<Secret> = Api::namespaced(state.client.clone(), &state.namespace);
    for _ in 0..5 {
        let secret = api.get(ARGOCD_SECRET).await?;
        let before = secret_text(&secret);
        let mut data = before.clone();
        change(&mut data)?;
        let mut patch_data = serde_json::Map::new();
        for (k, v) in &data {
            if before.get(k) != Some(v) {
                patch_data.insert(k.clone(), json!(base64_of(v)));
            }
        }
        for k in before.keys().filter(|k| !data.contains_key(*k)) {
            patch_data.insert(k.clone(), Value::Null);
        }
        let patch = json!({"metadata": {"resourceVersion": secret.metadata.resource_version}, "data": patch_data});
        match api
            .patch(ARGOCD_SECRET, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        "argocd-secret kept changing; try again",
    ))
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PasswordChange {
    new_password: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    name: String,
}

async fn update_password(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Body(req): Body<PasswordChange>,
) -> ApiResult<Json<Value>> {
    let target = if req.name.is_empty() {
        caller.account.clone()
    } else {
        req.name.clone()
    };
    if target != caller.account {
        enforce(&state, &caller, "accounts", "update", &target)?;
    }
    let everyone = all(&state);
    // Whoever changes a password proves who they are with their own current password.
    let me = everyone
        .iter()
        .find(|a| a.name == caller.account)
        .ok_or_else(ApiError::denied)?;
    if !accounts::password_matches(me, &req.current_password) {
        return Err(ApiError::invalid("current password does not match"));
    }
    if !everyone.iter().any(|a| a.name == target) {
        return Err(ApiError::not_found("account", &target));
    }
    if !accounts::password_acceptable(&req.new_password) {
        return Err(ApiError::invalid(
            "new password does not match the password pattern (8 to 32 characters)",
        ));
    }
    let hash = bootstrap::hash_password(&req.new_password)?;
    update_argocd_secret(&state, |data| {
        data.insert(secret_key(&target, "password"), hash.clone());
        data.insert(
            secret_key(&target, "passwordMtime"),
            crate::auth::now_rfc3339(),
        );
        Ok(())
    })
    .await?;
    tracing::info!(by = %caller.subject, account = %target, "password changed");
    Ok(Json(json!({})))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TokenRequest {
    #[serde(default)]
    name: String,
    /// Seconds; 0 never expires.
    #[serde(default)]
    expires_in: i64,
    #[serde(default)]
    id: String,
}

/// Creating or deleting another account's tokens takes `accounts update` on it.
fn may_manage_tokens(state: &State, caller: &Caller, name: &str) -> ApiResult<()> {
    if caller.account == name && !caller.subject.contains(':') {
        return Ok(());
    }
    enforce(state, caller, "accounts", "update", name)
}

async fn create_token(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<TokenRequest>,
) -> ApiResult<Json<Value>> {
    if !req.name.is_empty() && req.name != name {
        return Err(ApiError::invalid("name in the body differs from the path"));
    }
    may_manage_tokens(&state, &caller, &name)?;
    let account = all(&state)
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::not_found("account", &name))?;
    if !account.can("apiKey") {
        return Err(ApiError::invalid(format!(
            "account {name} does not have the apiKey capability"
        )));
    }
    if req.expires_in < 0 {
        return Err(ApiError::invalid("expiresIn must not be negative"));
    }
    let id = if req.id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        req.id.clone()
    };
    let now = jwt::now();
    let exp = (req.expires_in > 0).then_some(now + req.expires_in);
    let token = jwt::sign(
        &state.signing_key()?,
        &jwt::Claims {
            iss: jwt::ISSUER.into(),
            sub: format!("{name}:apiKey"),
            iat: now,
            nbf: Some(now),
            exp,
            jti: Some(id.clone()),
            federated: None,
        },
    )?;
    update_argocd_secret(&state, |data| {
        let key = secret_key(&name, "tokens");
        let mut tokens: Vec<TokenRecord> = data
            .get(&key)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        if tokens.iter().any(|t| t.id == id) {
            return Err(ApiError::new(
                Code::AlreadyExists,
                format!("account {name} already has a token with id {id}"),
            ));
        }
        tokens.push(TokenRecord {
            id: id.clone(),
            issued_at: now,
            expires_at: exp.unwrap_or(0),
        });
        data.insert(
            key,
            serde_json::to_string(&tokens).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        Ok(())
    })
    .await?;
    tracing::info!(by = %caller.subject, account = %name, token = %id, "API token created");
    Ok(Json(json!({"token": token})))
}

async fn delete_token(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    may_manage_tokens(&state, &caller, &name)?;
    update_argocd_secret(&state, |data| {
        let key = secret_key(&name, "tokens");
        let mut tokens: Vec<TokenRecord> = data
            .get(&key)
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let before = tokens.len();
        tokens.retain(|t| t.id != id);
        if tokens.len() == before {
            return Err(ApiError::not_found("token", &id));
        }
        data.insert(
            key,
            serde_json::to_string(&tokens).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        Ok(())
    })
    .await?;
    tracing::info!(by = %caller.subject, account = %name, token = %id, "API token deleted");
    Ok(Json(json!({})))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/account", get(list))
        .route("/api/v1/account/password", put(update_password))
        .route(
            "/api/v1/account/can-i/{resource}/{action}/{*subresource}",
            get(can_i),
        )
        .route("/api/v1/account/{name}", get(get_one))
        .route("/api/v1/account/{name}/token", post(create_token))
        .route("/api/v1/account/{name}/token/{id}", delete(delete_token))
}
