//! What an application is made of, read through the server: its rendered `manifests` at a
//! revision, a revision's commit `metadata`, and its live resources one at a time
//! (`resource`: get, patch, delete) in the destination cluster.
//!
//! Rendering goes through the same repo server and render code as the controller, so what
//! `manifests` answers is what a sync would apply. Only objects of the application's resource
//! tree (what it manages, and what those own, as the UI shows them) can be read or changed
//! here: the endpoint is not a way around the caller's lack of access to the cluster itself.

use std::sync::Arc;

use axum::extract::{Path, Query, State as AxumState};
use axum::routing::get;
use axum::{Json, Router};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::discovery::{ApiResource, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_controller::manifests::ManifestError;
use tiphys_model::Application;
use tiphys_model::application::ApplicationSource;

use crate::api::applications::{allowed, visible};
use crate::api::{Body, blocking, enforce};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ManifestQuery {
    #[serde(default)]
    revision: String,
    #[serde(default)]
    source_positions: Vec<usize>,
    #[serde(default)]
    revisions: Vec<String>,
}

/// The app's sources with the revision to render each at: `revision` for a single source,
/// `sourcePositions`/`revisions` (1-based positions) for several, else each target revision.
fn sources_at(app: &Application, q: &ManifestQuery) -> ApiResult<Vec<(ApplicationSource, String)>> {
    let mut sources: Vec<(ApplicationSource, String)> = app
        .sources()
        .into_iter()
        .map(|s| {
            let revision = s.revision().to_string();
            (s.clone(), revision)
        })
        .collect();
    if sources.is_empty() {
        return Err(ApiError::invalid("the application has no source"));
    }
    if !q.revision.is_empty() {
        if sources.len() > 1 {
            return Err(ApiError::invalid(
                "the application has several sources: name each revision with sourcePositions and revisions",
            ));
        }
        sources[0].1 = q.revision.clone();
    }
    if q.source_positions.len() != q.revisions.len() {
        return Err(ApiError::invalid(
            "sourcePositions and revisions must have the same length",
        ));
    }
    for (position, revision) in q.source_positions.iter().zip(&q.revisions) {
        let slot = position
            .checked_sub(1)
            .and_then(|i| sources.get_mut(i))
            .ok_or_else(|| {
                ApiError::invalid(format!("there is no source at position {position}"))
            })?;
        slot.1 = revision.clone();
    }
    Ok(sources)
}

/// `GET /api/v1/applications/{name}/manifests`: the objects the app's sources render to.
async fn manifests(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let mut query = ManifestQuery::default();
    for (key, value) in q {
        match key.as_str() {
            "revision" => query.revision = value,
            "sourcePositions" => query.source_positions.push(value.parse().map_err(|_| {
                ApiError::invalid(format!("sourcePositions: {value:?} is not a number"))
            })?),
            "revisions" => query.revisions.push(value),
            _ => {}
        }
    }
    let sources = sources_at(&app, &query)?;
    let generated = render(&state, &app, sources).await?;
    let manifests: Vec<String> = generated
        .manifests
        .iter()
        .map(|m| crate::secrets::hide_in(m.object.clone()).to_string())
        .collect();
    Ok(Json(json!({
        "manifests": manifests,
        "namespace": app.spec.destination.namespace,
        "server": app.spec.destination.server,
        "revision": generated.revisions.first().cloned().unwrap_or_default(),
        "sourceType": generated.source_types.first().cloned().unwrap_or_default(),
    })))
}

/// The objects `app`'s sources render to, each source at the revision paired with it: the
/// controller's repo server and render code, with the repositories' credentials and argocd-cm's
/// build options.
pub(crate) async fn render(
    state: &State,
    app: &Application,
    sources: Vec<(ApplicationSource, String)>,
) -> ApiResult<tiphys_controller::manifests::Generated> {
    let secrets = state.repo_secrets();
    let settings = state.render_settings()?;
    let repo = state.repo.clone();
    let namespace = app.spec.destination.namespace.clone();
    let instance = app.metadata.name.clone().unwrap_or_default();
    blocking(move || {
        let mut commits = Vec::new();
        for (source, revision) in &sources {
            let mut pinned = source.clone();
            pinned.target_revision = revision.clone();
            commits.push(repo.resolve(&pinned, &secrets)?);
        }
        let plain: Vec<ApplicationSource> = sources.into_iter().map(|(s, _)| s).collect();
        repo.generate(&instance, &namespace, &plain, &commits, &secrets, &settings)
    })
    .await?
    .map_err(manifest_error)
}

/// A source that cannot be read: a revision that does not exist is the caller's mistake, a
/// repository that does not answer is not.
fn source_error(e: tiphys_source::SourceError) -> ApiError {
    match e {
        tiphys_source::SourceError::RevisionNotFound { .. }
        | tiphys_source::SourceError::ChartNotFound { .. }
        | tiphys_source::SourceError::ChartVersionNotFound { .. } => {
            ApiError::new(Code::NotFound, e.to_string())
        }
        other => ApiError::new(Code::Unavailable, other.to_string()),
    }
}

fn manifest_error(e: ManifestError) -> ApiError {
    match e {
        ManifestError::Source { source, .. } | ManifestError::Chart { source, .. } => {
            source_error(*source)
        }
        // The app's own sources do not render: nothing the server can do about it.
        ManifestError::Render { .. } | ManifestError::NoSource => {
            ApiError::new(Code::FailedPrecondition, e.to_string())
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataQuery {
    #[serde(default)]
    source_index: Option<usize>,
    /// A history entry's `id`: the source as it was deployed then.
    #[serde(default)]
    version_id: Option<i64>,
}

/// The source a revision question is about: the app's own at `sourceIndex` (default 0), or
/// the one history entry `versionId` deployed, as Argo CD picks it.
fn asked_source(app: &Application, q: &MetadataQuery) -> ApiResult<ApplicationSource> {
    let index = q.source_index.unwrap_or(0);
    let sources: Vec<ApplicationSource> = match q.version_id {
        None => app.sources().into_iter().cloned().collect(),
        Some(id) => {
            let history = app.status.iter().flat_map(|s| &s.history);
            let entry = history
                .into_iter()
                .find(|h| h.id == id)
                .ok_or_else(|| ApiError::invalid(format!("there is no history entry {id}")))?;
            if entry.sources.is_empty() {
                entry.source.iter().cloned().collect()
            } else {
                entry.sources.clone()
            }
        }
    };
    sources
        .into_iter()
        .nth(index)
        .ok_or_else(|| ApiError::invalid(format!("there is no source at index {index}")))
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/metadata`: author, date, message and
/// tags of a commit in the app's repository.
async fn revision_metadata(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, revision)): Path<(String, String)>,
    Query(q): Query<MetadataQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let source = asked_source(&app, &q)?;
    if !source.chart.is_empty() || tiphys_controller::manifests::is_oci_artifact(&source) {
        return Err(ApiError::invalid(
            "revision metadata is for git sources; this source is a Helm chart or an OCI artifact (see chartdetails and ocimetadata)",
        ));
    }
    let url = source.repo_url.clone();
    let access = tiphys_controller::manifests::access_for(&url, &state.repo_secrets());
    let repo = state.repo.clone();
    let found = blocking(move || repo.git.commit_metadata(&url, &revision, &access))
        .await?
        .map_err(source_error)?;
    let date = tiphys_controller::manifests::commit_date(&found);
    Ok(Json(json!({
        "author": found.author,
        "date": date,
        "tags": found.tags,
        "message": found.message,
        "signatureInfo": "",
    })))
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/chartdetails`: a chart version's
/// description, home page and maintainers (Argo CD's `ChartDetails`).
async fn chart_details(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, revision)): Path<(String, String)>,
    Query(q): Query<MetadataQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let source = asked_source(&app, &q)?;
    if source.chart.is_empty() {
        return Err(ApiError::invalid(format!(
            "no chart found for application: {name}"
        )));
    }
    let (repo, secrets) = (state.repo.clone(), state.repo_secrets());
    let details = blocking(move || repo.chart_details(&source, &revision, &secrets))
        .await?
        .map_err(manifest_error)?;
    Ok(Json(json!(details)))
}

/// `GET /api/v1/applications/{name}/revisions/{revision}/ocimetadata`: what an OCI revision's
/// manifest says of itself (Argo CD's `OCIMetadata`), for a chart in a registry or an
/// artifact of manifests.
async fn oci_metadata(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path((name, revision)): Path<(String, String)>,
    Query(q): Query<MetadataQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let source = asked_source(&app, &q)?;
    let secrets = state.repo_secrets();
    let access = tiphys_controller::manifests::access_for(&source.repo_url, &secrets);
    if !tiphys_source::charts::is_oci(&source.repo_url, &access) {
        return Err(ApiError::invalid(format!(
            "{} is not an OCI registry",
            source.repo_url
        )));
    }
    let repo = state.repo.clone();
    let meta = blocking(move || repo.oci_metadata(&source, &revision, &secrets))
        .await?
        .map_err(manifest_error)?;
    Ok(Json(json!(meta)))
}

/// Argo CD's `RepoAppDetailsQuery`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppDetailsQuery {
    source: ApplicationSource,
    #[serde(default)]
    app_name: String,
    #[serde(default)]
    app_project: String,
    #[serde(default)]
    source_index: Option<usize>,
}

/// Whether two sources read the same place (repository, path, chart): what an app's details
/// may be asked about with other revisions or render options.
fn same_place(a: &ApplicationSource, b: &ApplicationSource) -> bool {
    tiphys_source::normalize(&a.repo_url) == tiphys_source::normalize(&b.repo_url)
        && a.path.trim_matches('/') == b.path.trim_matches('/')
        && a.chart == b.chart
}

/// `POST /api/v1/repositories/{repo}/appdetails`: what a source is made of (type, Helm value
/// files and parameters, Kustomize images) at its `targetRevision` — the app creation form's
/// and the parameters view's question. About an existing app, whoever may see it may ask, for
/// a place it reads or read before; about a new one, whoever may create it in that project,
/// for a repository the project permits.
async fn app_details(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(url): Path<String>,
    Body(q): Body<AppDetailsQuery>,
) -> ApiResult<Json<Value>> {
    if tiphys_source::normalize(&url) != tiphys_source::normalize(&q.source.repo_url) {
        return Err(ApiError::invalid(format!(
            "the repository in the path ({url}) is not the source's ({})",
            q.source.repo_url
        )));
    }
    let existing = (!q.app_name.is_empty())
        .then(|| state.app(&q.app_name))
        .flatten();
    let (sources, index, namespace) = match existing {
        Some(_) => {
            let app = visible(&state, &caller, &q.app_name)?;
            let history = app.status.iter().flat_map(|s| &s.history);
            let known = app.sources().into_iter().cloned().chain(
                history.flat_map(|h| h.source.iter().cloned().chain(h.sources.iter().cloned())),
            );
            if !known.into_iter().any(|s| same_place(&s, &q.source)) {
                return Err(ApiError::denied());
            }
            // `$ref` value files are read from the app's other sources.
            let mut sources: Vec<ApplicationSource> = app.sources().into_iter().cloned().collect();
            let index = q.source_index.unwrap_or(0);
            match sources.get_mut(index) {
                Some(slot) if same_place(slot, &q.source) => *slot = q.source.clone(),
                _ => sources = vec![q.source.clone()],
            }
            let index = if sources.len() == 1 { 0 } else { index };
            (sources, index, app.spec.destination.namespace.clone())
        }
        None => {
            let project_name = if q.app_project.is_empty() {
                "default"
            } else {
                q.app_project.as_str()
            };
            enforce(
                &state,
                &caller,
                "applications",
                "create",
                &format!("{project_name}/{}", q.app_name),
            )?;
            let project = state.project(project_name).ok_or_else(ApiError::denied)?;
            if !tiphys_controller::project::source_permitted(&project, &q.source.repo_url) {
                return Err(ApiError::denied());
            }
            (vec![q.source.clone()], 0, String::new())
        }
    };
    let secrets = state.repo_secrets();
    let settings = state.render_settings()?;
    let repo = state.repo.clone();
    let app_name = q.app_name.clone();
    let details = blocking(move || {
        let revisions = sources
            .iter()
            .map(|s| repo.resolve(s, &secrets))
            .collect::<Result<Vec<_>, _>>()?;
        repo.app_details(
            &app_name,
            &namespace,
            &sources,
            Some(index),
            &revisions,
            &secrets,
            &settings,
        )
    })
    .await?
    .map_err(manifest_error)?;
    Ok(Json(serde_json::to_value(details).unwrap_or_default()))
}

/// Which live object: Argo CD's query parameters.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceQuery {
    #[serde(default)]
    namespace: String,
    resource_name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    group: String,
    kind: String,
    #[serde(default)]
    patch_type: String,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    orphan: Option<bool>,
}

/// A tree node's field as text.
fn text(node: &Value, key: &str) -> String {
    node[key].as_str().unwrap_or_default().to_string()
}

/// Where the object `q` names lives, when it is in `app`'s resource tree — managed by the
/// app, or owned by what it manages (a Deployment's Pods, as Argo CD's UI shows them): its
/// group, version, kind and namespace.
async fn in_tree(
    state: &State,
    app: &Application,
    q: &ResourceQuery,
) -> Option<(String, String, String, String)> {
    let status = app.status.clone().unwrap_or_default();
    let managed = status.resources.iter().find(|r| {
        r.kind == q.kind
            && r.group == q.group
            && r.name == q.resource_name
            && (q.namespace.is_empty() || r.namespace == q.namespace)
            && (q.version.is_empty() || r.version.is_empty() || r.version == q.version)
    });
    if let Some(r) = managed {
        return Some((
            r.group.clone(),
            r.version.clone(),
            r.kind.clone(),
            r.namespace.clone(),
        ));
    }
    let tree = crate::api::tree::tree(state, app).await;
    tree["nodes"].as_array()?.iter().find_map(|n| {
        let found = text(n, "kind") == q.kind
            && text(n, "group") == q.group
            && text(n, "name") == q.resource_name
            && (q.namespace.is_empty() || text(n, "namespace") == q.namespace);
        found.then(|| {
            (
                text(n, "group"),
                text(n, "version"),
                text(n, "kind"),
                text(n, "namespace"),
            )
        })
    })
}

/// The live object `q` names, when it is in `app`'s tree: its API in the destination cluster.
async fn managed_object(
    state: &State,
    app: &Application,
    q: &ResourceQuery,
) -> ApiResult<kube::Api<DynamicObject>> {
    let Some((group, found_version, kind, namespace)) = in_tree(state, app, q).await else {
        return Err(ApiError::new(
            Code::NotFound,
            format!(
                "{} {}/{} is not a resource of application {}",
                q.kind,
                q.namespace,
                q.resource_name,
                app.metadata.name.as_deref().unwrap_or_default()
            ),
        ));
    };
    let client = state.destination_client(&app.spec.destination).await?;
    let version = if q.version.is_empty() {
        found_version
    } else {
        q.version.clone()
    };
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &kind);
    let (resource, caps): (ApiResource, _) = kube::discovery::pinned_kind(&client, &gvk)
        .await
        .map_err(|e| {
            ApiError::new(
                Code::NotFound,
                format!("the destination does not serve {kind}: {e}"),
            )
        })?;
    Ok(if caps.scope == Scope::Namespaced {
        kube::Api::namespaced_with(client, &namespace, &resource)
    } else {
        kube::Api::all_with(client, &resource)
    })
}

/// Kubernetes events about one object of `app`'s tree, in the destination cluster (Argo CD's
/// `events?resourceName=&resourceNamespace=&resourceUID=`).
pub(crate) async fn resource_events(
    state: &State,
    app: &Application,
    name: &str,
    namespace: &str,
    uid: &str,
) -> ApiResult<Json<Value>> {
    let tree = crate::api::tree::tree(state, app).await;
    let known = tree["nodes"].as_array().is_some_and(|nodes| {
        nodes.iter().any(|n| {
            text(n, "name") == name
                && text(n, "namespace") == namespace
                && (uid.is_empty() || text(n, "uid").is_empty() || text(n, "uid") == uid)
        })
    });
    if !known {
        return Err(ApiError::new(
            Code::NotFound,
            format!(
                "{namespace}/{name} is not a resource of application {}",
                app.metadata.name.as_deref().unwrap_or_default()
            ),
        ));
    }
    let client = state.destination_client(&app.spec.destination).await?;
    let events = if namespace.is_empty() {
        kube::Api::all(client)
    } else {
        kube::Api::namespaced(client, namespace)
    };
    crate::api::events_named(events, name, |e| {
        uid.is_empty() || e.involved_object.uid.as_deref().is_none_or(|u| u == uid)
    })
    .await
}

fn manifest_of(object: &DynamicObject) -> ApiResult<Json<Value>> {
    let mut object = object.clone();
    object.metadata.managed_fields = None;
    let value = serde_json::to_value(&object).map_err(|e| ApiError::internal(e.to_string()))?;
    let text = crate::secrets::hide_in(value).to_string();
    Ok(Json(json!({"manifest": text})))
}

/// `GET /api/v1/applications/{name}/resource`: one live object of the app.
async fn get_resource(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ResourceQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let api = managed_object(&state, &app, &q).await?;
    manifest_of(&api.get(&q.resource_name).await?)
}

/// `POST /api/v1/applications/{name}/resource`: patch one live object; the body is the patch
/// as a JSON string, `patchType` is `application/merge-patch+json` (default),
/// `application/strategic-merge-patch+json` or `application/json-patch+json`.
async fn patch_resource(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ResourceQuery>,
    Body(patch): Body<String>,
) -> ApiResult<Json<Value>> {
    let app = allowed(&state, &caller, &name, "update")?;
    let body: Value = serde_json::from_str(&patch)
        .map_err(|e| ApiError::invalid(format!("the patch is not JSON: {e}")))?;
    let patch = match q.patch_type.as_str() {
        "" | "application/merge-patch+json" | "merge" => Patch::Merge(body),
        "application/strategic-merge-patch+json" | "strategic" => Patch::Strategic(body),
        "application/json-patch+json" | "json" => Patch::Json(
            serde_json::from_value(body)
                .map_err(|e| ApiError::invalid(format!("not a JSON patch: {e}")))?,
        ),
        other => return Err(ApiError::invalid(format!("unknown patchType {other:?}"))),
    };
    let api = managed_object(&state, &app, &q).await?;
    let patched = api
        .patch(&q.resource_name, &PatchParams::default(), &patch)
        .await?;
    tracing::info!(user = %caller.subject, app = %name, kind = %q.kind, resource = %q.resource_name, "resource patched");
    manifest_of(&patched)
}

/// `DELETE /api/v1/applications/{name}/resource`: delete one live object (`orphan` leaves its
/// dependents, `force` deletes at once).
async fn delete_resource(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ResourceQuery>,
) -> ApiResult<Json<Value>> {
    let app = allowed(&state, &caller, &name, "delete")?;
    let api = managed_object(&state, &app, &q).await?;
    let mut params = DeleteParams::default();
    if q.orphan == Some(true) {
        params.propagation_policy = Some(PropagationPolicy::Orphan);
    } else {
        params.propagation_policy = Some(PropagationPolicy::Foreground);
    }
    if q.force == Some(true) {
        params.grace_period_seconds = Some(0);
    }
    api.delete(&q.resource_name, &params).await?;
    tracing::info!(user = %caller.subject, app = %name, kind = %q.kind, resource = %q.resource_name, "resource deleted");
    Ok(Json(json!({})))
}

/// `GET /api/v1/projects/{name}/events`: Kubernetes events about the project.
async fn project_events(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let project = state.project(&name).ok_or_else(ApiError::denied)?;
    enforce(&state, &caller, "projects", "get", &name)?;
    let uid = project.metadata.uid.clone().unwrap_or_default();
    crate::api::events_about(&state, "AppProject", &name, &uid).await
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/v1/applications/{name}/manifests", get(manifests))
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/metadata",
            get(revision_metadata),
        )
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/chartdetails",
            get(chart_details),
        )
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/ocimetadata",
            get(oci_metadata),
        )
        .route(
            "/api/v1/applications/{name}/resource",
            get(get_resource)
                .post(patch_resource)
                .delete(delete_resource),
        )
        .route("/api/v1/projects/{name}/events", get(project_events))
        .route(
            "/api/v1/repositories/{url}/appdetails",
            axum::routing::post(app_details),
        )
}
