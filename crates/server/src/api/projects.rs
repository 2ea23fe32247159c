//! `/api/v1/projects`: AppProjects, their details and role tokens.

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_model::AppProject;

use crate::api::{Body, enforce, written_answer};
use crate::auth::{Caller, jwt};
use crate::error::{ApiError, ApiResult, Code};
use crate::state::{State, project_policy};

fn api(state: &State) -> Api<AppProject> {
    Api::namespaced(state.client.clone(), &state.namespace)
}

fn visible(state: &State, caller: &Caller, name: &str) -> ApiResult<Arc<AppProject>> {
    let project = state.project(name).ok_or_else(ApiError::denied)?;
    enforce(state, caller, "projects", "get", name)?;
    Ok(project)
}

async fn list(AxumState(state): AxumState<Arc<State>>, caller: Caller) -> ApiResult<Json<Value>> {
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let mut items: Vec<Arc<AppProject>> = state
        .projects
        .state()
        .into_iter()
        .filter(|p| {
            grants.allows(
                "projects",
                "get",
                p.metadata.name.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let items: Vec<&AppProject> = items.iter().map(|p| p.as_ref()).collect();
    Ok(Json(json!({"metadata": {}, "items": items})))
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<AppProject>> {
    Ok(Json((*visible(&state, &caller, &name)?).clone()))
}

async fn detailed(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = visible(&state, &caller, &name)?;
    Ok(Json(
        json!({"project": project.as_ref(), "globalProjects": [], "repositories": [], "clusters": []}),
    ))
}

/// `GET /api/v1/projects/{name}/syncwindows`: the project's windows active now, each with
/// whether it can be evaluated.
async fn sync_windows(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = visible(&state, &caller, &name)?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut active = Vec::new();
    let mut errors = Vec::new();
    for (id, window) in project.spec.sync_windows.iter().enumerate() {
        match tiphys_controller::windows::active(window, now) {
            Ok((true, _)) => active.push(window),
            Ok((false, _)) => {}
            Err(e) => errors.push(json!({"id": id, "error": e})),
        }
    }
    Ok(Json(json!({"windows": active, "errors": errors})))
}

/// Role policies must speak for the role and about the project (Argo CD refuses others).
fn check_roles(project: &AppProject) -> ApiResult<()> {
    let name = project.metadata.name.clone().unwrap_or_default();
    for role in &project.spec.roles {
        let subject = format!("proj:{name}:{}", role.name);
        for line in &role.policies {
            if !crate::rbac::project_line_ok(&name, &role.name, line) {
                return Err(ApiError::invalid(format!(
                    "role {} policy {line:?}: must be `p, {subject}, <resource>, <action>, {name}/<object>[, allow|deny]`",
                    role.name
                )));
            }
        }
    }
    crate::rbac::Policy::build(&crate::rbac::PolicySources {
        config: Default::default(),
        projects: project_policy(project),
    })
    .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectRequest {
    #[schemars(schema_with = "crate::openapi::app_project")]
    project: AppProject,
    #[serde(default)]
    upsert: bool,
}

fn submitted(mut project: AppProject, namespace: &str) -> AppProject {
    project.metadata.namespace = Some(namespace.to_string());
    project.metadata.uid = None;
    project.metadata.creation_timestamp = None;
    project.metadata.managed_fields = None;
    project.metadata.generation = None;
    project.status = None;
    project
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Body(req): Body<ProjectRequest>,
) -> ApiResult<Json<AppProject>> {
    let name = req.project.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("project.metadata.name is required"));
    }
    enforce(&state, &caller, "projects", "create", &name)?;
    check_roles(&req.project)?;
    let mut project = submitted(req.project, &state.namespace);
    project.metadata.resource_version = None;
    match api(&state).create(&PostParams::default(), &project).await {
        Ok(p) => Ok(written_answer(p)),
        Err(kube::Error::Api(s)) if s.code == 409 && req.upsert => {
            enforce(&state, &caller, "projects", "update", &name)?;
            let existing = api(&state).get(&name).await?;
            project.metadata.resource_version = existing.metadata.resource_version;
            Ok(written_answer(
                api(&state)
                    .replace(&name, &PostParams::default(), &project)
                    .await?,
            ))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Err(ApiError::new(
            Code::AlreadyExists,
            "existing project spec is different, use upsert flag to force update",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn update(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<ProjectRequest>,
) -> ApiResult<Json<AppProject>> {
    if req.project.metadata.name.as_deref() != Some(name.as_str()) {
        return Err(ApiError::invalid(
            "project.metadata.name differs from the path",
        ));
    }
    visible(&state, &caller, &name)?;
    enforce(&state, &caller, "projects", "update", &name)?;
    check_roles(&req.project)?;
    // The version the client read, so a concurrent change is not overwritten.
    let project = submitted(req.project, &state.namespace);
    if project.metadata.resource_version.is_none() {
        return Err(ApiError::invalid(
            "project.metadata.resourceVersion is required",
        ));
    }
    Ok(written_answer(
        api(&state)
            .replace(&name, &PostParams::default(), &project)
            .await?,
    ))
}

async fn delete_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    visible(&state, &caller, &name)?;
    enforce(&state, &caller, "projects", "delete", &name)?;
    if state.apps.state().iter().any(|a| a.spec.project == name) {
        return Err(ApiError::new(
            Code::FailedPrecondition,
            "project is referenced by applications and cannot be deleted",
        ));
    }
    api(&state).delete(&name, &DeleteParams::default()).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleTokenRequest {
    #[serde(default)]
    expires_in: i64,
    #[serde(default)]
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    project: String,
    #[serde(default)]
    role: String,
}

async fn create_role_token(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, role)): Path<(String, String)>,
    Body(req): Body<RoleTokenRequest>,
) -> ApiResult<Json<Value>> {
    let _ = (&req.description, &req.project, &req.role);
    visible(&state, &caller, &name)?;
    enforce(&state, &caller, "projects", "update", &name)?;
    let id = if req.id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        req.id.clone()
    };
    let now = jwt::now();
    let exp = (req.expires_in > 0).then_some(now + req.expires_in);
    let api = api(&state);
    for _ in 0..5 {
        let mut project = api.get(&name).await?;
        let Some(r) = project.spec.roles.iter_mut().find(|r| r.name == role) else {
            return Err(ApiError::not_found("role", &role));
        };
        r.jwt_tokens
            .push(json!({"iat": now, "exp": exp.unwrap_or(0), "id": id}));
        match api.replace(&name, &PostParams::default(), &project).await {
            Ok(_) => {
                let token = jwt::sign(
                    &state.signing_key()?,
                    &jwt::Claims {
                        iss: jwt::ISSUER.into(),
                        sub: format!("proj:{name}:{role}"),
                        iat: now,
                        nbf: Some(now),
                        exp,
                        jti: Some(id),
                        federated: None,
                    },
                )?;
                return Ok(Json(json!({"token": token})));
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        "the project kept changing; try again",
    ))
}

#[derive(Deserialize)]
struct DeleteTokenQuery {
    #[serde(default)]
    id: String,
}

async fn delete_role_token(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, role, iat)): Path<(String, String, i64)>,
    Query(q): Query<DeleteTokenQuery>,
) -> ApiResult<Json<Value>> {
    visible(&state, &caller, &name)?;
    enforce(&state, &caller, "projects", "update", &name)?;
    let api = api(&state);
    for _ in 0..5 {
        let mut project = api.get(&name).await?;
        let Some(r) = project.spec.roles.iter_mut().find(|r| r.name == role) else {
            return Err(ApiError::not_found("role", &role));
        };
        let before = r.jwt_tokens.len();
        r.jwt_tokens.retain(|t| {
            let same_iat = t.get("iat").and_then(Value::as_i64) == Some(iat);
            let same_id =
                q.id.is_empty() || t.get("id").and_then(Value::as_str) == Some(q.id.as_str());
            !(same_iat && same_id)
        });
        if r.jwt_tokens.len() == before {
            return Err(ApiError::not_found("token", &iat.to_string()));
        }
        match api.replace(&name, &PostParams::default(), &project).await {
            Ok(_) => return Ok(Json(json!({}))),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        "the project kept changing; try again",
    ))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/projects", get(list).post(create))
        .route(
            "/api/v1/projects/{name}",
            get(get_one).put(update).delete(delete_one),
        )
        .route("/api/v1/projects/{name}/detailed", get(detailed))
        .route("/api/v1/projects/{name}/syncwindows", get(sync_windows))
        .route(
            "/api/v1/projects/{name}/roles/{role}/token",
            post(create_role_token),
        )
        .route(
            "/api/v1/projects/{name}/roles/{role}/token/{iat}",
            delete(delete_role_token),
        )
}
