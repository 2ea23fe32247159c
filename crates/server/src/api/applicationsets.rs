//! `/api/v1/applicationsets`: list, get, create, delete, and `generate` — the Applications
//! an ApplicationSet would make, without making them (the preview). RBAC objects are
//! `<project>/<applicationset>`, the project being the template's.

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::{get, post};
use axum::{Json, Router};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_model::ApplicationSet;

use crate::api::{Body, enforce, replace_with, written_answer};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

fn object(set: &ApplicationSet) -> String {
    let value = serde_json::to_value(set).unwrap_or(Value::Null);
    let project = value
        .pointer("/spec/template/spec/project")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && !p.contains("{{"))
        .unwrap_or("default");
    format!(
        "{project}/{}",
        set.metadata.name.as_deref().unwrap_or_default()
    )
}

fn api(state: &State) -> Api<ApplicationSet> {
    Api::namespaced(state.client.clone(), &state.namespace)
}

async fn list(AxumState(state): AxumState<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let mut items: Vec<Arc<ApplicationSet>> = state
        .appsets
        .state()
        .into_iter()
        .filter(|s| grants.allows("applicationsets", "get", &object(s)))
        .collect();
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let items: Vec<&ApplicationSet> = items.iter().map(|s| s.as_ref()).collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<ApplicationSet>> {
    let set = state.appset(&name).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "applicationsets", "get", &object(&set))?;
    Ok(Json((*set).clone()))
}

#[derive(Deserialize)]
struct CreateQuery {
    #[serde(default)]
    upsert: bool,
    #[serde(default, rename = "dryRun")]
    dry_run: bool,
}

/// Generate `set`'s Applications, reading git through the repo server.
async fn preview(state: &State, set: &ApplicationSet) -> ApiResult<Vec<tiphys_model::Application>> {
    let secrets = state.repo_secrets();
    let clusters = tiphys_controller::appset::cluster_infos(
        &state
            .secrets
            .state()
            .iter()
            .filter_map(|s| {
                Some((
                    tiphys_controller::clusters::ClusterSecret::from_secret(s)?,
                    s.metadata.annotations.clone().unwrap_or_default(),
                ))
            })
            .collect::<Vec<_>>(),
    );
    let repo = state.repo.clone();
    let set = set.clone();
    crate::api::blocking(move || {
        let repos = tiphys_controller::appset::GitRepos {
            repo: &repo,
            secrets: &secrets,
        };
        tiphys_appset::applications(
            &set,
            &tiphys_appset::Inputs {
                repos: &repos,
                clusters: &clusters,
            },
        )
    })
    .await?
    .map_err(|e| ApiError::invalid(e.to_string()))
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<CreateQuery>,
    Body(mut set): Body<ApplicationSet>,
) -> ApiResult<Json<ApplicationSet>> {
    let name = set.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("metadata.name is required"));
    }
    enforce(&state, &caller, "applicationsets", "create", &object(&set))?;
    // Every Application it would make must be one the caller could create.
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    for app in preview(&state, &set).await? {
        let app_object = crate::api::applications::object(&app);
        if !grants.allows("applications", "create", &app_object) {
            return Err(ApiError::denied());
        }
    }
    set.metadata.namespace = Some(state.namespace.clone());
    set.metadata.resource_version = None;
    set.metadata.uid = None;
    set.status = None;
    if q.dry_run {
        return Ok(Json(set));
    }
    match api(&state).create(&PostParams::default(), &set).await {
        Ok(created) => Ok(written_answer(created)),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api(&state).get(&name).await?;
            if existing.upserted(&set).is_none() {
                return Ok(written_answer(existing));
            }
            if !q.upsert {
                return Err(ApiError::new(
                    Code::InvalidArgument,
                    "existing ApplicationSet spec is different, use upsert flag to force update",
                ));
            }
            enforce(
                &state,
                &caller,
                "applicationsets",
                "update",
                &object(&existing),
            )?;
            let written = replace_with(&api(&state), &name, |current| {
                if let Some(updated) = current.upserted(&set) {
                    *current = updated;
                }
                Ok(())
            })
            .await?;
            Ok(written_answer(written))
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let set = state.appset(&name).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "applicationsets", "delete", &object(&set))?;
    api(&state).delete(&name, &DeleteParams::default()).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateRequest {
    #[schemars(schema_with = "crate::openapi::application_set")]
    application_set: ApplicationSet,
}

async fn generate(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Body(req): Body<GenerateRequest>,
) -> ApiResult<Json<Value>> {
    enforce(
        &state,
        &caller,
        "applicationsets",
        "get",
        &object(&req.application_set),
    )?;
    let apps = preview(&state, &req.application_set).await?;
    Ok(Json(json!({"applications": apps})))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/applicationsets", get(list).post(create))
        .route("/api/v1/applicationsets/generate", post(generate))
        .route(
            "/api/v1/applicationsets/{name}",
            get(get_one).delete(delete_one),
        )
}
