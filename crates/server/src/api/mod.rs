//! The REST API, Argo CD's paths and JSON shapes. Every handler authenticates (the [`Caller`]
//! extractor) and authorises (RBAC) before it reads or writes anything in the cluster.

pub mod account;
pub mod app_resources;
pub mod applications;
pub mod applicationsets;
pub mod clusters;
pub mod managed;
pub mod misc;
pub mod projects;
pub mod repositories;
pub mod session;
pub mod stream;
pub mod tree;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

/// Request bodies above this are refused before they are read.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A JSON request body; malformed JSON, wrong types and (where the type says so) unknown
/// fields are InvalidArgument errors naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Body<T>> {
        // YAML too (what people keep their manifests in; the UI's editors send it).
        let yaml = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("yaml"));
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::invalid(format!("request body is larger than {MAX_BODY} bytes"))
            } else {
                ApiError::invalid(format!("reading the request body: {e}"))
            }
        })?;
        let text = if bytes.is_empty() {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        if yaml {
            let text = std::str::from_utf8(text)
                .map_err(|e| ApiError::invalid(format!("request body is not UTF-8: {e}")))?;
            return serde_saphyr::from_str(text)
                .map(Body)
                .map_err(|e| ApiError::invalid(format!("invalid YAML request body: {e}")));
        }
        serde_json::from_slice(text)
            .map(Body)
            .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
    }
}

/// Fail unless the caller may do `action` on `resource` `object`.
pub fn enforce(
    state: &State,
    caller: &Caller,
    resource: &str,
    action: &str,
    object: &str,
) -> ApiResult<()> {
    let policy = state.policy()?;
    if caller.check(&policy).allows(resource, action, object) {
        Ok(())
    } else {
        tracing::info!(subject = %caller.subject, resource, action, object, "permission denied");
        Err(ApiError::denied())
    }
}

/// Kubernetes events about one object of the control namespace (`kind`, `name`; `uid` tells
/// apart an object deleted and made again under the same name), as an EventList.
pub async fn events_about(
    state: &State,
    kind: &str,
    name: &str,
    uid: &str,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let events = kube::Api::namespaced(state.client.clone(), &state.namespace);
    events_named(events, name, |e| {
        e.involved_object.kind.as_deref() == Some(kind)
            && e.involved_object.uid.as_deref().is_none_or(|u| u == uid)
    })
    .await
}

/// The events in `events` about objects called `name` that `keep` accepts, as an EventList.
pub async fn events_named(
    events: kube::Api<k8s_openapi::api::core::v1::Event>,
    name: &str,
    keep: impl Fn(&k8s_openapi::api::core::v1::Event) -> bool,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let list = events
        .list(&kube::api::ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await?;
    let items: Vec<_> = list.items.into_iter().filter(|e| keep(e)).collect();
    Ok(axum::Json(
        serde_json::json!({"metadata": {}, "items": items}),
    ))
}

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .merge(misc::router())
        .merge(session::router())
        .merge(account::router())
        .merge(applications::router())
        .merge(app_resources::router())
        .merge(projects::router())
        .merge(applicationsets::router())
        .merge(clusters::router())
        .merge(repositories::router())
        .merge(stream::router())
        .merge(webhook::router())
        .merge(crate::auth::oidc::router())
        .merge(crate::openapi::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Run blocking work (repository questions, renders) on the blocking pool, off the async
/// threads.
pub(crate) async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> ApiResult<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// An object written by this request, answered like every read: without managedFields.
/// Write `change`d copies of the object until one lands on the version it was made from.
pub(crate) async fn replace_with<K>(
    api: &kube::Api<K>,
    name: &str,
    change: impl Fn(&mut K) -> ApiResult<()>,
) -> ApiResult<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    for _ in 0..5 {
        let mut object = api.get(name).await?;
        change(&mut object)?;
        match api
            .replace(name, &kube::api::PostParams::default(), &object)
            .await
        {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        Code::Unavailable,
        format!(
            "{} {name} kept changing; try again",
            K::kind(&()).to_lowercase()
        ),
    ))
}

pub(crate) fn written_answer<K: kube::Resource>(mut object: K) -> axum::Json<K> {
    object.meta_mut().managed_fields = None;
    axum::Json(object)
}

/// Replace the data of `existing` (a repository, credential or cluster Secret) with `data`,
/// keeping its name, labels and annotations; guarded by the version read, so a concurrent
/// change is not overwritten.
pub(crate) async fn replace_secret_data(
    state: &crate::state::State,
    existing: &k8s_openapi::api::core::v1::Secret,
    data: std::collections::BTreeMap<String, String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
) -> crate::error::ApiResult<()> {
    let mut replacement = existing.clone();
    replacement.metadata.managed_fields = None;
    if labels.is_some() {
        replacement.metadata.labels = labels;
    }
    if annotations.is_some() {
        replacement.metadata.annotations = annotations;
    }
    replacement.data = Some(
        data.into_iter()
            .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
            .collect(),
    );
    replacement.string_data = None;
    let name = existing.metadata.name.clone().unwrap_or_default();
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(state.client.clone(), &state.namespace);
    api.replace(&name, &kube::api::PostParams::default(), &replacement)
        .await?;
    Ok(())
}

/// Delete a repository, credential or cluster Secret read from the cache.
pub(crate) async fn delete_secret(
    state: &crate::state::State,
    secret: &k8s_openapi::api::core::v1::Secret,
) -> crate::error::ApiResult<()> {
    let api: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(state.client.clone(), &state.namespace);
    api.delete(
        secret.metadata.name.as_deref().unwrap_or_default(),
        &kube::api::DeleteParams::default(),
    )
    .await?;
    Ok(())
}
