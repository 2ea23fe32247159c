//! `/api/v1/applications`: list, get, create, update, patch, delete, sync, rollback,
//! terminate, events, manifests, managed resources, resource tree, sync windows.
//!
//! The server never reconciles: a sync is an `.operation` written on the Application (as Argo
//! CD's API server does), which the controller carries out. RBAC objects are
//! `<project>/<application>`.

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_model::Application;
use tiphys_model::application::ApplicationSpec;
use tiphys_model::selector::LabelSelector;

use crate::api::{Body, enforce, written_answer};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

const REFRESH: &str = "argocd.argoproj.io/refresh";
const FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";

/// An app as the API shows it: without `managedFields` (bookkeeping of the API server that
/// no client of Argo CD's API reads, and half of the bytes). The watch cache already drops
/// them; copies read from the API server do here.
pub fn outward(app: &Application) -> std::borrow::Cow<'_, Application> {
    if app.metadata.managed_fields.is_none() {
        return std::borrow::Cow::Borrowed(app);
    }
    let mut app = app.clone();
    app.metadata.managed_fields = None;
    std::borrow::Cow::Owned(app)
}

/// A list answer, serialised straight from the cache's objects.
#[derive(serde::Serialize)]
struct List<'a> {
    metadata: Value,
    items: Vec<&'a Application>,
}

/// The RBAC object of an app.
pub fn object(app: &Application) -> String {
    let project = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    format!(
        "{project}/{}",
        app.metadata.name.as_deref().unwrap_or_default()
    )
}

fn api(state: &State) -> Api<Application> {
    Api::namespaced(state.client.clone(), &state.namespace)
}

/// The app, if the caller may `get` it; one that does not exist and one the caller may not
/// see answer alike, so names cannot be probed.
pub(crate) fn visible(state: &State, caller: &Caller, name: &str) -> ApiResult<Arc<Application>> {
    let app = state.app(name).ok_or_else(ApiError::denied)?;
    enforce(state, caller, "applications", "get", &object(&app))?;
    Ok(app)
}

/// Like [`visible`], and the caller may also do `action` on it.
pub(crate) fn allowed(
    state: &State,
    caller: &Caller,
    name: &str,
    action: &str,
) -> ApiResult<Arc<Application>> {
    let app = visible(state, caller, name)?;
    enforce(state, caller, "applications", action, &object(&app))?;
    Ok(app)
}

/// Which Applications a list or a watch is about: Argo CD's `ApplicationQuery` (`name`,
/// repeated `projects`, `selector`, `repo`, `resourceVersion`), RBAC aside.
#[derive(Default)]
pub(crate) struct AppQuery {
    name: Option<String>,
    projects: Vec<String>,
    selector: Option<LabelSelector>,
    /// Normalised, as repositories are compared.
    repo: Option<String>,
    /// `resourceVersion`: a watch from there skips the current state and older versions.
    pub min_version: Option<u64>,
    pub refresh: Option<String>,
}

impl AppQuery {
    /// Repeated query parameters (`projects=a&projects=b`) as Argo CD's gateway takes them;
    /// a selector that does not parse is the caller's error.
    pub fn parse(pairs: &[(String, String)]) -> ApiResult<AppQuery> {
        let mut q = AppQuery::default();
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            match k.as_str() {
                "name" => q.name = Some(v.clone()),
                "projects" | "project" => q.projects.push(v.clone()),
                "selector" => {
                    q.selector = Some(
                        LabelSelector::parse(v)
                            .map_err(|e| ApiError::invalid(format!("selector {v:?}: {e}")))?,
                    )
                }
                "repo" => q.repo = Some(tiphys_source::normalize(v)),
                // Argo CD compares versions as numbers and ignores one that is not.
                "resourceVersion" => q.min_version = v.parse().ok(),
                "refresh" => q.refresh = Some(v.clone()),
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether the query is about one Application by name.
    pub fn names_one(&self) -> bool {
        self.name.is_some()
    }

    pub fn matches(&self, app: &Application) -> bool {
        if self
            .name
            .as_deref()
            .is_some_and(|n| Some(n) != app.metadata.name.as_deref())
        {
            return false;
        }
        let project = if app.spec.project.is_empty() {
            "default"
        } else {
            app.spec.project.as_str()
        };
        if !self.projects.is_empty() && !self.projects.iter().any(|p| p == project) {
            return false;
        }
        if let Some(repo) = &self.repo
            && !app
                .sources()
                .iter()
                .any(|s| tiphys_source::normalize(&s.repo_url) == *repo)
        {
            return false;
        }
        if let Some(selector) = &self.selector {
            let labels = app.metadata.labels.clone().unwrap_or_default();
            if !selector.matches(&labels) {
                return false;
            }
        }
        let version = app.metadata.resource_version.as_deref();
        match (
            self.min_version,
            version.and_then(|v| v.parse::<u64>().ok()),
        ) {
            (Some(min), Some(version)) => version >= min,
            _ => true,
        }
    }
}

async fn list(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<axum::response::Response> {
    let mut q = AppQuery::parse(&pairs)?;
    // A list answers the current state, whatever version it is asked from (as Argo CD).
    q.min_version = None;
    let policy = state.policy()?;
    let grants = caller.check(&policy);
    let mut items: Vec<Arc<Application>> = state
        .apps
        .state()
        .into_iter()
        .filter(|app| q.matches(app) && grants.allows("applications", "get", &object(app)))
        .collect();
    if let Some(kind) = q.refresh.as_deref() {
        for app in &items {
            let name = app.metadata.name.clone().unwrap_or_default();
            request_refresh(&state, &name, kind).await?;
        }
    }
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    // The version the server's watch has reached: a watch from it misses nothing after.
    let body = serde_json::to_vec(&List {
        metadata: json!({"resourceVersion": state.apps_version()}),
        items: items.iter().map(|a| a.as_ref()).collect(),
    })
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Ask the controller for a refresh (the annotation it acts on and removes).
async fn request_refresh(state: &State, name: &str, kind: &str) -> ApiResult<()> {
    let kind = match kind {
        "hard" => "hard",
        "normal" | "true" => "normal",
        other => {
            return Err(ApiError::invalid(format!(
                "refresh {other:?} is not normal or hard"
            )));
        }
    };
    let patch = json!({"metadata": {"annotations": {REFRESH: kind}}});
    api(state)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct GetQuery {
    #[serde(default)]
    refresh: Option<String>,
}

async fn get_one(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<GetQuery>,
) -> ApiResult<Json<Application>> {
    let app = visible(&state, &caller, &name)?;
    if let Some(kind) = q.refresh.as_deref().filter(|r| !r.is_empty()) {
        request_refresh(&state, &name, kind).await?;
        // As Argo CD does, answer once the controller has refreshed (or after a while).
        let api = api(&state);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let fresh = api.get(&name).await?;
            let pending = fresh
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(REFRESH));
            if !pending {
                return Ok(Json(outward(&fresh).into_owned()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    Ok(Json(outward(&app).into_owned()))
}

/// Everything an Application must satisfy before it is written: its own checks, an existing
/// project that permits its sources and destination.
fn validate(state: &State, app: &Application) -> ApiResult<()> {
    let problems = tiphys_model::validate::application(app);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(ApiError::invalid(format!(
            "application spec for {} is invalid: {}",
            app.metadata.name.as_deref().unwrap_or_default(),
            list.join("; ")
        )));
    }
    let project_name = if app.spec.project.is_empty() {
        "default"
    } else {
        &app.spec.project
    };
    let project = state.project(project_name).ok_or_else(|| {
        ApiError::invalid(format!(
            "application references project {project_name} which does not exist"
        ))
    })?;
    for source in app.sources() {
        if !tiphys_controller::project::source_permitted(&project, &source.repo_url) {
            return Err(ApiError::invalid(format!(
                "application repo {} is not permitted in project '{project_name}'",
                source.repo_url
            )));
        }
    }
    let dest = &app.spec.destination;
    let (server, cluster_name) = if dest.server.is_empty() && dest.name == "in-cluster" {
        (
            "https://kubernetes.default.svc".to_string(),
            dest.name.clone(),
        )
    } else {
        (dest.server.clone(), dest.name.clone())
    };
    if !tiphys_controller::project::destination_permitted(
        &project,
        &server,
        &cluster_name,
        &dest.namespace,
    ) {
        return Err(ApiError::invalid(format!(
            "application destination server '{server}' and namespace '{}' do not match any of the allowed destinations in project '{project_name}'",
            dest.namespace
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateQuery {
    #[serde(default)]
    upsert: Option<bool>,
    #[serde(default)]
    validate: Option<bool>,
}

/// Only what a client may set: name, labels, annotations, finalizers; spec.
fn submitted(mut app: Application, namespace: &str) -> Application {
    let meta = &mut app.metadata;
    meta.namespace = Some(namespace.to_string());
    meta.resource_version = None;
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.generation = None;
    meta.managed_fields = None;
    meta.deletion_timestamp = None;
    app.status = None;
    app.operation = None;
    app
}

async fn create(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Query(q): Query<CreateQuery>,
    Body(app): Body<Application>,
) -> ApiResult<Json<Application>> {
    let name = app.metadata.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("metadata.name is required"));
    }
    enforce(&state, &caller, "applications", "create", &object(&app))?;
    if q.validate != Some(false) {
        validate(&state, &app)?;
    }
    let app = submitted(app, &state.namespace);
    let api = api(&state);
    match api.create(&PostParams::default(), &app).await {
        Ok(created) => {
            tracing::info!(user = %caller.subject, app = %name, "application created");
            Ok(written_answer(created))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api.get(&name).await?;
            if existing.upserted(&app).is_none() {
                return Ok(written_answer(existing));
            }
            if q.upsert != Some(true) {
                return Err(ApiError::new(
                    Code::InvalidArgument,
                    "existing application spec is different, use upsert flag to force update",
                ));
            }
            enforce(
                &state,
                &caller,
                "applications",
                "update",
                &object(&existing),
            )?;
            let written = update_with(&state, &name, |current| {
                if let Some(updated) = current.upserted(&app) {
                    *current = updated;
                }
                Ok(())
            })
            .await?;
            tracing::info!(user = %caller.subject, app = %name, "application updated");
            Ok(written_answer(written))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct UpdateQuery {
    #[serde(default)]
    validate: Option<bool>,
}

/// Write `change`d copies of the app until one lands on the version it was made from.
async fn update_with(
    state: &State,
    name: &str,
    change: impl Fn(&mut Application) -> ApiResult<()>,
) -> ApiResult<Application> {
    crate::api::replace_with(&api(state), name, change).await
}

async fn update(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<UpdateQuery>,
    Body(app): Body<Application>,
) -> ApiResult<Json<Application>> {
    if app.metadata.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::invalid("metadata.name differs from the path"));
    }
    let existing = allowed(&state, &caller, &name, "update")?;
    // Moving an app to another project needs the right there too.
    enforce(&state, &caller, "applications", "update", &{
        let mut moved = app.clone();
        moved.metadata.name = Some(name.clone());
        object(&moved)
    })?;
    if q.validate != Some(false) {
        validate(&state, &app)?;
    }
    let _ = existing;
    let written = update_with(&state, &name, |current| {
        current.spec = app.spec.clone();
        current.metadata.labels = app.metadata.labels.clone();
        current.metadata.annotations = app.metadata.annotations.clone();
        current.metadata.finalizers = app.metadata.finalizers.clone();
        Ok(())
    })
    .await?;
    tracing::info!(user = %caller.subject, app = %name, "application updated");
    Ok(written_answer(written))
}

async fn update_spec(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<UpdateQuery>,
    Body(spec): Body<ApplicationSpec>,
) -> ApiResult<Json<ApplicationSpec>> {
    let existing = allowed(&state, &caller, &name, "update")?;
    let mut candidate = (*existing).clone();
    candidate.spec = spec.clone();
    enforce(
        &state,
        &caller,
        "applications",
        "update",
        &object(&candidate),
    )?;
    if q.validate != Some(false) {
        validate(&state, &candidate)?;
    }
    let written = update_with(&state, &name, |current| {
        current.spec = spec.clone();
        Ok(())
    })
    .await?;
    Ok(Json(written.spec))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchRequest {
    #[serde(default)]
    name: String,
    patch: String,
    #[serde(default)]
    patch_type: String,
    #[serde(default)]
    app_namespace: String,
    #[serde(default)]
    project: String,
}

async fn patch(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<PatchRequest>,
) -> ApiResult<Json<Application>> {
    let _ = (&req.name, &req.app_namespace, &req.project);
    allowed(&state, &caller, &name, "update")?;
    let patch_value: Value = serde_json::from_str(&req.patch)
        .map_err(|e| ApiError::invalid(format!("invalid patch: {e}")))?;
    let written = update_with(&state, &name, |current| {
        let mut value =
            serde_json::to_value(&*current).map_err(|e| ApiError::internal(e.to_string()))?;
        match req.patch_type.as_str() {
            "json" => {
                let ops: json_patch::Patch = serde_json::from_value(patch_value.clone())
                    .map_err(|e| ApiError::invalid(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut value, &ops)
                    .map_err(|e| ApiError::invalid(format!("applying the patch: {e}")))?;
            }
            "merge" | "" => json_patch::merge(&mut value, &patch_value),
            other => {
                return Err(ApiError::invalid(format!(
                    "patch type {other:?} is not json or merge"
                )));
            }
        }
        let patched: Application = serde_json::from_value(value)
            .map_err(|e| ApiError::invalid(format!("the patched application is invalid: {e}")))?;
        // A patch may change the spec and metadata a client owns, nothing else.
        current.spec = patched.spec;
        current.metadata.labels = patched.metadata.labels;
        current.metadata.annotations = patched.metadata.annotations;
        current.metadata.finalizers = patched.metadata.finalizers;
        Ok(())
    })
    .await?;
    // The result must still be an app this caller may have and the project allows.
    enforce(&state, &caller, "applications", "update", &object(&written))?;
    Ok(written_answer(written))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteQuery {
    #[serde(default)]
    cascade: Option<bool>,
    #[serde(default)]
    propagation_policy: Option<String>,
}

async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    allowed(&state, &caller, &name, "delete")?;
    let cascade = q.cascade.unwrap_or(true);
    let finalizer = match q.propagation_policy.as_deref().unwrap_or("foreground") {
        "foreground" => FINALIZER.to_string(),
        "background" => format!("{FINALIZER}/background"),
        other => {
            return Err(ApiError::invalid(format!(
                "propagationPolicy {other:?} is not foreground or background"
            )));
        }
    };
    update_with(&state, &name, |app| {
        let mut finalizers: Vec<String> = app
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !f.starts_with(FINALIZER))
            .collect();
        if cascade {
            finalizers.push(finalizer.clone());
        }
        app.metadata.finalizers = Some(finalizers);
        Ok(())
    })
    .await?;
    api(&state)
        .delete(
            &name,
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            },
        )
        .await?;
    tracing::info!(user = %caller.subject, app = %name, cascade, "application deleted");
    Ok(Json(json!({})))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    revision: String,
    #[serde(default)]
    revisions: Vec<String>,
    #[serde(default)]
    source_positions: Vec<i64>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    strategy: Option<Value>,
    #[serde(default)]
    resources: Vec<Value>,
    #[serde(default)]
    manifests: Vec<String>,
    #[serde(default)]
    infos: Vec<Value>,
    #[serde(default)]
    retry_strategy: Option<Value>,
    #[serde(default)]
    sync_options: Option<Value>,
    #[serde(default)]
    app_namespace: String,
    #[serde(default)]
    project: String,
}

/// Write `operation` on the app unless one is under way (as Argo CD: one operation at a time).
async fn start_operation(
    state: &State,
    caller: &Caller,
    name: &str,
    operation: Value,
) -> ApiResult<Application> {
    let api = api(state);
    for _ in 0..5 {
        let app = api.get(name).await?;
        if app.operation.is_some() {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                "another operation is already in progress",
            ));
        }
        let patch = json!({"metadata": {"resourceVersion": app.metadata.resource_version}, "operation": operation});
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(written) => {
                tracing::info!(user = %caller.subject, app = %name, "operation requested");
                return Ok(written);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        format!("application {name} kept changing; try again"),
    ))
}

fn initiator(caller: &Caller) -> Value {
    json!({"username": caller.account, "automated": false})
}

async fn sync(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<SyncRequest>,
) -> ApiResult<Json<Application>> {
    let app = allowed(&state, &caller, &name, "sync")?;
    if !req.dry_run {
        check_windows(&state, &app)?;
    }
    if !req.manifests.is_empty() {
        // Syncing manifests given in the request bypasses Git: Argo CD's `override` action,
        // and not under auto-sync, which would put Git back at once (a dry run is fine).
        enforce(&state, &caller, "applications", "override", &object(&app))?;
        if app.auto_sync_enabled() && !req.dry_run {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                "cannot use local sync when Automatic Sync Policy is enabled except with dry run",
            ));
        }
        // Unreadable objects are the caller's mistake, said now rather than as a failed sync.
        tiphys_render::parse_manifest_texts(&req.manifests)
            .map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    if !req.name.is_empty() && req.name != name {
        return Err(ApiError::invalid("name in the body differs from the path"));
    }
    let _ = (&req.source_positions, &req.app_namespace, &req.project);
    let sync_options: Vec<Value> = match &req.sync_options {
        Some(Value::Object(o)) => o
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let mut sync = json!({
        "revision": req.revision,
        "prune": req.prune,
        "dryRun": req.dry_run,
        "syncOptions": sync_options,
        "resources": req.resources,
    });
    if !req.revisions.is_empty() {
        sync["revisions"] = json!(req.revisions);
    }
    if !req.manifests.is_empty() {
        sync["manifests"] = json!(req.manifests);
    }
    if let Some(strategy) = req.strategy {
        sync["syncStrategy"] = strategy;
    }
    let mut operation = json!({"sync": sync, "initiatedBy": initiator(&caller)});
    if !req.infos.is_empty() {
        operation["info"] = json!(req.infos);
    }
    if let Some(retry) = req.retry_strategy {
        operation["retry"] = retry;
    }
    // Typed once, so a malformed request is an error here, not a stuck operation later.
    serde_json::from_value::<tiphys_model::application::Operation>(operation.clone())
        .map_err(|e| ApiError::invalid(format!("invalid sync request: {e}")))?;
    Ok(written_answer(
        start_operation(&state, &caller, &name, operation).await?,
    ))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RollbackRequest {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    name: String,
}

async fn rollback(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<RollbackRequest>,
) -> ApiResult<Json<Application>> {
    let _ = &req.name;
    let app = allowed(&state, &caller, &name, "sync")?;
    if !req.dry_run {
        check_windows(&state, &app)?;
    }
    if app.auto_sync_enabled() {
        return Err(ApiError::new(
            Code::FailedPrecondition,
            "rollback cannot be initiated when auto-sync is enabled",
        ));
    }
    let entry = app.rollback_target(Some(req.id)).ok_or_else(|| {
        ApiError::invalid(format!(
            "application {name} does not have deployment id '{}' in history",
            req.id
        ))
    })?;
    let operation = json!({
        "sync": {"revision": entry.revision, "source": entry.source, "dryRun": req.dry_run, "prune": req.prune},
        "initiatedBy": initiator(&caller),
    });
    Ok(written_answer(
        start_operation(&state, &caller, &name, operation).await?,
    ))
}

async fn terminate(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    allowed(&state, &caller, &name, "sync")?;
    let api = api(&state);
    for _ in 0..10 {
        let app = api.get(&name).await?;
        if !app.operation_running() {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                "Unable to terminate operation. No operation is in progress",
            ));
        }
        let ops: json_patch::Patch = serde_json::from_value(app.terminate_patch())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        match api
            .patch(&name, &PatchParams::default(), &Patch::Json::<()>(ops))
            .await
        {
            Ok(_) => {
                tracing::info!(user = %caller.subject, app = %name, "operation terminating");
                return Ok(Json(json!({})));
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        format!("application {name} kept changing; try again"),
    ))
}

/// Which object's events: the app's own unless a resource of it is named.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    #[serde(default)]
    resource_name: String,
    #[serde(default)]
    resource_namespace: String,
    #[serde(default, rename = "resourceUID")]
    resource_uid: String,
}

async fn events(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    if !q.resource_name.is_empty() {
        return crate::api::app_resources::resource_events(
            &state,
            &app,
            &q.resource_name,
            &q.resource_namespace,
            &q.resource_uid,
        )
        .await;
    }
    let uid = app.metadata.uid.clone().unwrap_or_default();
    crate::api::events_about(&state, "Application", &name, &uid).await
}

/// The resource tree: the app's resources with their sync and health. (Argo CD adds the
/// objects they own — ReplicaSets, Pods — from its cluster cache; the controller's cache here
/// keeps only managed objects, so those are not listed yet.)
async fn resource_tree(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    Ok(Json(crate::api::tree::tree(&state, &app).await))
}

/// The sync windows of `app`'s project that apply to it, now.
fn windows_of(state: &State, app: &Application) -> tiphys_controller::windows::Windows {
    let project = if app.spec.project.is_empty() {
        "default"
    } else {
        app.spec.project.as_str()
    };
    tiphys_controller::windows::evaluate(
        state.project(project).as_deref(),
        app,
        k8s_openapi::jiff::Timestamp::now(),
    )
}

/// Refuse a manual sync a sync window holds (as Argo CD's API server does).
fn check_windows(state: &State, app: &Application) -> ApiResult<()> {
    match windows_of(state, app).blocked(true) {
        Some(why) => Err(ApiError::new(
            Code::FailedPrecondition,
            format!("cannot sync: {why}"),
        )),
        None => Ok(()),
    }
}

async fn sync_windows(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let windows = windows_of(&state, &app);
    let assigned: Vec<_> = windows.assigned.iter().map(|w| &w.window).collect();
    let active: Vec<_> = windows
        .assigned
        .iter()
        .filter(|w| w.active)
        .map(|w| &w.window)
        .collect();
    Ok(Json(json!({
        "assignedWindows": assigned,
        "activeWindows": active,
        "canSync": windows.blocked(true).is_none(),
        "canAutoSync": windows.blocked(false).is_none(),
        "summary": windows.summary(),
    })))
}

/// `POST /api/v1/applications/{name}/pause`: until when (RFC 3339) or for how long (a Go
/// duration), and why. Tiphys's own endpoint: Argo CD has no time-limited pause.
#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PauseRequest {
    #[serde(default)]
    until: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

fn pause_error(e: tiphys_controller::pause::PauseFailure) -> ApiError {
    use tiphys_controller::pause::PauseFailure;
    match e {
        PauseFailure::Refused(refused) => {
            ApiError::new(Code::FailedPrecondition, refused.to_string())
        }
        PauseFailure::Kube(e) => e.into(),
        PauseFailure::Conflict(_) => ApiError::new(Code::Unavailable, e.to_string()),
    }
}

async fn pause(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<PauseRequest>,
) -> ApiResult<Json<Application>> {
    use k8s_openapi::jiff::{SignedDuration, Timestamp};
    allowed(&state, &caller, &name, "update")?;
    let until = match (req.until.as_str(), req.duration.as_str()) {
        ("", "") => {
            return Err(ApiError::invalid(
                "say until when (until) or for how long (duration)",
            ));
        }
        (until, "") => until
            .parse::<Timestamp>()
            .map_err(|e| ApiError::invalid(format!("until {until:?}: {e}")))?,
        ("", duration) => tiphys_model::validate::parse_duration(duration)
            .and_then(|d| SignedDuration::try_from(d).ok())
            .and_then(|d| Timestamp::now().checked_add(d).ok())
            .ok_or_else(|| {
                ApiError::invalid(format!("duration {duration:?} is not a duration like 2h"))
            })?,
        _ => return Err(ApiError::invalid("give until or duration, not both")),
    };
    let app = tiphys_controller::pause::pause(
        &state.client,
        &state.namespace,
        &name,
        until,
        &req.reason,
        &caller.account,
    )
    .await
    .map_err(pause_error)?;
    tracing::info!(user = %caller.subject, app = %name, until = %until, "auto-sync paused");
    Ok(written_answer(app))
}

async fn resume(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Application>> {
    allowed(&state, &caller, &name, "update")?;
    let app =
        tiphys_controller::pause::resume(&state.client, &state.namespace, &name, &caller.account)
            .await
            .map_err(pause_error)?;
    tracing::info!(user = %caller.subject, app = %name, "auto-sync resumed");
    Ok(written_answer(app))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/applications", get(list).post(create))
        .route(
            "/api/v1/applications/{name}",
            get(get_one).put(update).patch(patch).delete(delete),
        )
        .route(
            "/api/v1/applications/{name}/spec",
            axum::routing::put(update_spec),
        )
        .route("/api/v1/applications/{name}/sync", post(sync))
        .route("/api/v1/applications/{name}/rollback", post(rollback))
        .route(
            "/api/v1/applications/{name}/operation",
            axum::routing::delete(terminate),
        )
        .route("/api/v1/applications/{name}/events", get(events))
        .route(
            "/api/v1/applications/{name}/resource-tree",
            get(resource_tree),
        )
        .route(
            "/api/v1/applications/{name}/managed-resources",
            get(crate::api::managed::managed_resources),
        )
        .route("/api/v1/applications/{name}/syncwindows", get(sync_windows))
        .route(
            "/api/v1/applications/{name}/pause",
            post(pause).delete(resume),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ApiResult<AppQuery> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AppQuery::parse(&pairs)
    }

    fn app(name: &str, project: &str, team: &str, version: &str) -> Application {
        let mut app: Application = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"team": team}, "resourceVersion": version},
            "spec": {"project": project, "source": {"repoURL": "https://git.example/a.git"},
                     "destination": {}}
        }))
        .unwrap();
        app.metadata.resource_version = Some(version.into());
        app
    }

    #[test]
    fn queries_filter_by_name_project_selector_repo_and_version() {
        let web = app("web", "", "web", "40");
        let db = app("db", "data", "data", "7");
        let all = [&web, &db];
        let names = |q: &AppQuery| -> Vec<&str> {
            all.iter()
                .filter(|a| q.matches(a))
                .map(|a| a.metadata.name.as_deref().unwrap())
                .collect()
        };
        assert_eq!(names(&query(&[]).unwrap()), ["web", "db"]);
        assert_eq!(names(&query(&[("name", "db")]).unwrap()), ["db"]);
        assert_eq!(names(&query(&[("projects", "default")]).unwrap()), ["web"]);
        assert_eq!(
            names(&query(&[("projects", "data"), ("projects", "default")]).unwrap()),
            ["web", "db"]
        );
        assert_eq!(names(&query(&[("selector", "team!=web")]).unwrap()), ["db"]);
        assert_eq!(
            names(&query(&[("repo", "https://git.example/a")]).unwrap()),
            ["web", "db"]
        );
        assert!(names(&query(&[("repo", "https://git.example/b")]).unwrap()).is_empty());
        assert_eq!(names(&query(&[("resourceVersion", "8")]).unwrap()), ["web"]);
        // Not a number: ignored, as Argo CD does.
        assert_eq!(names(&query(&[("resourceVersion", "x")]).unwrap()).len(), 2);
        assert!(query(&[("selector", "a in b")]).is_err());
    }
}
