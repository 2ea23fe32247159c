//! `GET /api/v1/applications/{name}/managed-resources`: each resource the application manages
//! with its desired and live state, as Argo CD answers it (`targetState`, `liveState`,
//! `normalizedLiveState`, `predictedLiveState`, each a JSON document in a string) — what
//! `tiphys app diff` and the UI's diff show.
//!
//! The desired objects are rendered at the revision the controller last compared against
//! (`status.sync.revision(s)`), so a diff matches the sync status shown next to it. The
//! prediction is the destination's own: a server-side-apply dry run by the controller's field
//! manager, exactly what the controller compares; nothing is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use futures::StreamExt;
use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use serde::Deserialize;
use serde_json::{Value, json};
use tiphys_model::Application;
use tiphys_sync::ObjectKey;
use tiphys_sync::annotations::{self, Role};

use crate::api::app_resources::render;
use crate::api::applications::visible;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::State;

/// Argo CD's `ResourcesQuery` filters; empty matches everything.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManagedQuery {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

impl ManagedQuery {
    fn wants(&self, key: &ObjectKey) -> bool {
        let field = |wanted: &str, value: &str| wanted.is_empty() || wanted == value;
        field(&self.namespace, &key.namespace)
            && field(&self.name, &key.name)
            && field(&self.group, &key.group)
            && field(&self.kind, &key.kind)
    }
}

/// One managed resource: what Git wants (if anything) and the version to find it at.
#[derive(Default)]
struct Entry {
    desired: Option<Value>,
    version: String,
    hook: bool,
}

pub(crate) async fn managed_resources(
    AxumState(state): AxumState<Arc<State>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<ManagedQuery>,
) -> ApiResult<Json<Value>> {
    let app = visible(&state, &caller, &name)?;
    let status = app.status.clone().unwrap_or_default();
    let mut entries: BTreeMap<ObjectKey, Entry> = BTreeMap::new();
    for r in &status.resources {
        let key = ObjectKey {
            group: r.group.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        if q.wants(&key) {
            entries.entry(key).or_default().version = r.version.clone();
        }
    }
    // What Git wants, at the revisions the controller compared. A source that cannot be
    // rendered leaves the live states alone, with no desired state to compare them to.
    let revisions = if status.sync.revisions.is_empty() {
        vec![status.sync.revision.clone()]
    } else {
        status.sync.revisions.clone()
    };
    let pinned: Vec<_> = app
        .sources()
        .into_iter()
        .zip(revisions.iter().chain(std::iter::repeat(&String::new())))
        .map(|(s, r)| {
            let revision = if r.is_empty() {
                s.revision().to_string()
            } else {
                r.clone()
            };
            (s.clone(), revision)
        })
        .collect();
    let desired = match render(&state, &app, pinned).await {
        Ok(generated) => generated.manifests,
        Err(e) => {
            tracing::warn!(app = %name, error = %e.message, "managed-resources without desired state");
            Vec::new()
        }
    };
    let client = state.destination_client(&app.spec.destination).await?;
    let argocd_cm = state.argocd_cm();
    let tracking = tiphys_controller::settings::tracking(argocd_cm.as_deref());
    let app_name = app.metadata.name.clone().unwrap_or_default();
    for manifest in desired {
        let mut obj = manifest.object.clone();
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let group = tiphys_sync::key::group_of(&api_version).to_string();
        let version = tiphys_sync::key::split_version(&api_version).to_string();
        let gvk = GroupVersionKind::gvk(&group, &version, &kind);
        let namespaced = match kube::discovery::pinned_kind(&client, &gvk).await {
            Ok((_, caps)) => caps.scope == Scope::Namespaced,
            // Not served (yet): a CRD in the same app, say. Shown without a live state.
            Err(_) => true,
        };
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if !namespaced {
                meta.remove("namespace");
            } else if meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && !app.spec.destination.namespace.is_empty()
            {
                meta.insert(
                    "namespace".into(),
                    Value::String(app.spec.destination.namespace.clone()),
                );
            }
        }
        let key = ObjectKey::of(&obj);
        if !q.wants(&key) {
            continue;
        }
        tracking.stamp(&mut obj, &app_name, &key);
        let entry = entries.entry(key).or_default();
        entry.hook = !matches!(annotations::role(&obj), Role::Resource);
        entry.version = version;
        entry.desired = Some(obj);
    }
    let rules = tiphys_controller::settings::ignore_rules(argocd_cm.as_deref(), &app)
        .map_err(|e| ApiError::new(Code::FailedPrecondition, e.to_string()))?;
    entries.retain(|_, e| q.version.is_empty() || e.version == q.version);
    // Live reads and dry runs, a few at a time, answered in the entries' order.
    let items: Vec<Value> = futures::stream::iter(entries)
        .map(|(key, entry)| {
            let client = client.clone();
            let rules = &rules;
            let app = &app;
            async move { item(&client, app, key, entry, rules).await }
        })
        .buffered(8)
        .collect()
        .await;
    Ok(Json(json!({"items": items})))
}

/// One answer item: the states as Argo CD spells them (JSON text, `"null"` when absent).
async fn item(
    client: &kube::Client,
    app: &Application,
    key: ObjectKey,
    entry: Entry,
    rules: &tiphys_diff::IgnoreRules,
) -> Value {
    let api = api_for(client, &key, &entry.version).await;
    let live: Option<Value> = match &api {
        Some(api) => match api.get_opt(&key.name).await {
            Ok(found) => found.map(|mut o| {
                o.metadata.managed_fields = None;
                serde_json::to_value(o).unwrap_or(Value::Null)
            }),
            Err(e) => {
                tracing::debug!(object = %key, error = %e, "live state unreadable");
                None
            }
        },
        None => None,
    };
    let predicted = match (&entry.desired, &live, &api) {
        (Some(desired), Some(_), Some(api)) if !entry.hook => {
            let mut params = PatchParams::apply(tiphys_controller::apply::FIELD_MANAGER).force();
            params.dry_run = true;
            match api.patch(&key.name, &params, &Patch::Apply(desired)).await {
                Ok(result) => serde_json::to_value(result).unwrap_or(Value::Null),
                Err(e) => {
                    tracing::debug!(object = %key, error = %e, "dry run failed");
                    desired.clone()
                }
            }
        }
        (Some(desired), _, _) => desired.clone(),
        (None, _, _) => Value::Null,
    };
    // Both sides as the controller compares them: volatile metadata and ignored fields out.
    let reference = live.clone().unwrap_or(Value::Null);
    let side = |v: &Value| {
        if v.is_null() {
            return Value::Null;
        }
        let mut normalized = tiphys_diff::normalize(v);
        if let Some(meta) = normalized
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
        }
        rules.apply(&mut normalized, &reference);
        normalized
    };
    let mut normalized_live = side(&reference);
    let mut predicted_live = side(&predicted);
    let modified = !entry.hook && normalized_live != predicted_live;
    let mut desired = entry.desired.clone().unwrap_or(Value::Null);
    let mut live_shown = live.clone().unwrap_or(Value::Null);
    crate::secrets::hide_secret_data(&mut [
        &mut desired,
        &mut live_shown,
        &mut normalized_live,
        &mut predicted_live,
    ]);
    let text = |v: &Option<Value>| {
        v.as_ref()
            .map_or_else(|| "null".to_string(), |v| v.to_string())
    };
    let status = app.status.clone().unwrap_or_default();
    let requires_pruning = status.resources.iter().any(|r| {
        r.requires_pruning
            && r.group == key.group
            && r.kind == key.kind
            && r.namespace == key.namespace
            && r.name == key.name
    });
    json!({
        "group": key.group,
        "kind": key.kind,
        "namespace": key.namespace,
        "name": key.name,
        "targetState": text(&entry.desired.as_ref().map(|_| desired)),
        "liveState": text(&live.as_ref().map(|_| live_shown)),
        "normalizedLiveState": normalized_live.to_string(),
        "predictedLiveState": predicted_live.to_string(),
        "hook": entry.hook,
        "modified": modified,
        "requiresPruning": requires_pruning,
        "resourceVersion": live
            .as_ref()
            .and_then(|l| l.pointer("/metadata/resourceVersion"))
            .cloned()
            .unwrap_or(Value::String(String::new())),
    })
}

/// The object's API in the destination, when the destination serves its kind.
async fn api_for(
    client: &kube::Client,
    key: &ObjectKey,
    version: &str,
) -> Option<kube::Api<DynamicObject>> {
    let (resource, caps) = if version.is_empty() {
        let group = kube::discovery::group(client, &key.group).await.ok()?;
        let found = group.recommended_kind(&key.kind)?;
        (found.0, found.1)
    } else {
        kube::discovery::pinned_kind(
            client,
            &GroupVersionKind::gvk(&key.group, version, &key.kind),
        )
        .await
        .ok()?
    };
    Some(if caps.scope == Scope::Namespaced {
        kube::Api::namespaced_with(client.clone(), &key.namespace, &resource)
    } else {
        kube::Api::all_with(client.clone(), &resource)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_what_they_name_and_nothing_else() {
        let key = ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "web".into(),
            name: "api".into(),
        };
        assert!(ManagedQuery::default().wants(&key));
        let q = ManagedQuery {
            kind: "Deployment".into(),
            name: "api".into(),
            ..Default::default()
        };
        assert!(q.wants(&key));
        let q = ManagedQuery {
            namespace: "other".into(),
            ..Default::default()
        };
        assert!(!q.wants(&key));
    }
}
