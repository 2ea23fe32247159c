//! Writing to a destination cluster: server-side apply (field manager `tiphys`), client-side
//! apply (three-way, with the last-applied annotation, as kubectl does), replace, create and
//! delete. Implements the sync crate's [`tiphys_sync::Cluster`].

use std::sync::Arc;

use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective,
};
use serde_json::{Map, Value};
use tiphys_sync::{Created, ObjectKey, WriteError, WriteOptions};

use crate::clusters::ClusterHandle;
use crate::discovery::Resolved;

pub const FIELD_MANAGER: &str = "tiphys";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub struct Writer {
    pub cluster: Arc<ClusterHandle>,
    /// argocd-cm's custom health checks.
    pub health: tiphys_health::CustomHealth,
}

/// An API error's message as kubectl would show it.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// A failed request as the sync sees it: transient when the API server could not be reached
/// or asked to come back (connection errors, timeouts, 429 and 5xx) — retried, not recorded.
pub fn failure(e: &kube::Error) -> WriteError {
    let transient = match e {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::Service(_) | kube::Error::HyperError(_) => true,
        _ => false,
    };
    WriteError {
        message: api_message(e),
        transient,
    }
}

pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Writer {
    async fn api_for(&self, obj: &Value) -> Result<(Api<DynamicObject>, Resolved), WriteError> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let resolved = self
            .cluster
            .resolver
            .resolve(api_version, kind)
            .await
            .map_err(|e| WriteError {
                transient: matches!(e, crate::discovery::DiscoveryError::Failed(_)),
                message: e.to_string(),
            })?;
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let api = match (resolved.namespaced, namespace) {
            (true, Some(ns)) => {
                Api::namespaced_with(self.cluster.client.clone(), ns, &resolved.resource)
            }
            _ => Api::all_with(self.cluster.client.clone(), &resolved.resource),
        };
        Ok((api, resolved))
    }

    /// What the object would look like after a server-side apply (nothing is written).
    pub async fn predict(&self, obj: &Value) -> Result<Value, kube::Error> {
        let (api, _) = self
            .api_for(obj)
            .await
            .map_err(|e| kube::Error::Service(e.message.into()))?;
        let name = name_of(obj);
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = true;
        let result = api.patch(&name, &params, &Patch::Apply(obj)).await?;
        Ok(serde_json::to_value(result).unwrap_or(Value::Null))
    }

    /// The live object straight from the API server (for objects the cache does not track).
    pub async fn get(&self, obj: &Value) -> Result<Option<Value>, WriteError> {
        let (api, _) = self.api_for(obj).await?;
        match api.get_opt(&name_of(obj)).await {
            Ok(found) => Ok(found.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(e) => Err(failure(&e)),
        }
    }

    async fn server_side(&self, obj: &Value, options: WriteOptions) -> Result<String, WriteError> {
        let (api, _) = self.api_for(obj).await?;
        let name = name_of(obj);
        let key = ObjectKey::of(obj);
        // A real write is told apart by the version alone, which the watch usually knows; a
        // dry run needs the object itself.
        let known = if options.dry_run {
            None
        } else {
            self.cluster.cache.version_of(&key)
        };
        let before = match &known {
            Some(_) => None,
            None => api.get_opt(&name).await.map_err(|e| failure(&e))?,
        };
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = options.dry_run;
        params.field_validation = Some(validation(options));
        let after = api
            .patch(&name, &params, &Patch::Apply(obj))
            .await
            .map_err(|e| failure(&e))?;
        let after_version = after.metadata.resource_version.clone().unwrap_or_default();
        if !options.dry_run {
            self.cluster.cache.note_applied(
                &key,
                crate::compare::content_hash(obj),
                after_version.clone(),
            );
        }
        let Some(version) = known else {
            return Ok(verb(before.as_ref(), &after, options.dry_run));
        };
        Ok(match version {
            None => "created",
            Some(v) if v == after_version => "unchanged",
            Some(_) => "configured",
        }
        .into())
    }

    async fn client_side(&self, obj: &Value, options: WriteOptions) -> Result<String, WriteError> {
        let (api, resolved) = self.api_for(obj).await?;
        let name = name_of(obj);
        let mut desired = obj.clone();
        let applied = serde_json::to_string(obj).unwrap_or_default();
        set_annotation(&mut desired, LAST_APPLIED, &applied);
        let before = api.get_opt(&name).await.map_err(|e| failure(&e))?;
        let post = PostParams {
            dry_run: options.dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        let Some(live) = before else {
            let object: DynamicObject =
                serde_json::from_value(desired).map_err(|e| WriteError::from(e.to_string()))?;
            api.create(&post, &object).await.map_err(|e| failure(&e))?;
            return Ok("created".into());
        };
        let live_value = serde_json::to_value(&live).unwrap_or(Value::Null);
        let last: Value = live_value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or(Value::Null);
        let patch = three_way(&last, &desired);
        let mut params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            dry_run: options.dry_run,
            ..Default::default()
        };
        params.field_validation = Some(validation(options));
        let builtin =
            !resolved.resource.group.contains('.') || resolved.resource.group.ends_with(".k8s.io");
        let patch = if builtin {
            Patch::Strategic(patch)
        } else {
            Patch::Merge(patch)
        };
        let after = api
            .patch(&name, &params, &patch)
            .await
            .map_err(|e| failure(&e))?;
        Ok(verb(Some(&live), &after, options.dry_run))
    }

    async fn replace(&self, obj: &Value, options: WriteOptions) -> Result<String, WriteError> {
        let (api, _) = self.api_for(obj).await?;
        let name = name_of(obj);
        let post = PostParams {
            dry_run: options.dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        let mut object: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| WriteError::from(e.to_string()))?;
        match api.get_opt(&name).await.map_err(|e| failure(&e))? {
            None => {
                api.create(&post, &object).await.map_err(|e| failure(&e))?;
                Ok("created".into())
            }
            Some(live) => {
                object.metadata.resource_version = live.metadata.resource_version.clone();
                api.replace(&name, &post, &object)
                    .await
                    .map_err(|e| failure(&e))?;
                Ok("replaced".into())
            }
        }
    }
}

/// The identity of `key` as an object, enough to address it.
fn stub(key: &ObjectKey, api_version: &str) -> Value {
    let mut stub = serde_json::json!({"apiVersion": api_version, "kind": key.kind,
        "metadata": {"name": key.name}});
    if !key.namespace.is_empty() {
        stub["metadata"]["namespace"] = Value::String(key.namespace.clone());
    }
    stub
}

fn validation(options: WriteOptions) -> ValidationDirective {
    if options.validate {
        ValidationDirective::Strict
    } else {
        ValidationDirective::Ignore
    }
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// kubectl's verb for a write. A dry run changes no resourceVersion, so whether it would
/// change anything is read from the objects themselves.
fn verb(before: Option<&DynamicObject>, after: &DynamicObject, dry_run: bool) -> String {
    match before {
        None => "created",
        Some(b) if dry_run && comparable(b) == comparable(after) => "unchanged",
        Some(_) if dry_run => "configured",
        Some(b) if b.metadata.resource_version == after.metadata.resource_version => "unchanged",
        Some(_) => "configured",
    }
    .into()
}

/// An object without what every write changes (version, generation, field timestamps).
fn comparable(obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in ["resourceVersion", "generation", "managedFields"] {
            meta.remove(field);
        }
    }
    v
}

fn set_annotation(obj: &mut Value, name: &str, value: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(map) = annotations.as_object_mut() {
            map.insert(name.into(), Value::String(value.into()));
        }
    }
}

/// kubectl's client-side apply patch: the desired object, plus `null` for every field the
/// last applied configuration had and the desired one dropped.
pub fn three_way(last: &Value, desired: &Value) -> Value {
    match (last, desired) {
        (Value::Object(old), Value::Object(new)) => {
            let mut out = Map::new();
            for (k, v) in new {
                out.insert(k.clone(), three_way(old.get(k).unwrap_or(&Value::Null), v));
            }
            for k in old.keys() {
                if !new.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, new) => new.clone(),
    }
}

impl tiphys_sync::Cluster for Writer {
    async fn apply(&self, obj: &Value, options: WriteOptions) -> Result<String, WriteError> {
        if options.replace {
            self.replace(obj, options).await
        } else if options.server_side {
            self.server_side(obj, options).await
        } else {
            self.client_side(obj, options).await
        }
    }

    async fn create(&self, obj: &Value) -> Result<Created, WriteError> {
        let (api, _) = self.api_for(obj).await?;
        let object: DynamicObject =
            serde_json::from_value(obj.clone()).map_err(|e| WriteError::from(e.to_string()))?;
        let post = PostParams {
            dry_run: false,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        match api.create(&post, &object).await {
            Ok(_) => Ok(Created::Created),
            Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
                Ok(Created::AlreadyExists)
            }
            Err(e) => Err(failure(&e)),
        }
    }

    async fn fetch(&self, key: &ObjectKey, api_version: &str) -> Result<Option<Value>, WriteError> {
        self.get(&stub(key, api_version)).await
    }

    async fn remove_finalizer(
        &self,
        key: &ObjectKey,
        api_version: &str,
        finalizer: &str,
    ) -> Result<(), WriteError> {
        let (api, _) = self.api_for(&stub(key, api_version)).await?;
        // Remove it by position, testing the position still holds it: other finalizers and
        // concurrent edits are left alone. A lost race is retried from a fresh read.
        let mut last_error = WriteError::from(String::new());
        for _ in 0..5 {
            let live = match api.get_opt(&key.name).await {
                Ok(Some(live)) => live,
                Ok(None) => return Ok(()),
                Err(e) => return Err(failure(&e)),
            };
            let finalizers = live.metadata.finalizers.unwrap_or_default();
            let Some(index) = finalizers.iter().position(|f| f == finalizer) else {
                return Ok(());
            };
            let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
                {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": finalizer},
                {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
            ]))
            .map_err(|e| WriteError::from(e.to_string()))?;
            match api
                .patch(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Json::<()>(patch),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => last_error = failure(&e),
            }
        }
        Err(WriteError {
            message: format!(
                "removing finalizer {finalizer} from {key}: {}",
                last_error.message
            ),
            transient: last_error.transient,
        })
    }

    async fn delete(
        &self,
        key: &ObjectKey,
        api_version: &str,
        propagation: &str,
    ) -> Result<(), WriteError> {
        let (api, _) = self.api_for(&stub(key, api_version)).await?;
        let params = DeleteParams {
            propagation_policy: Some(match propagation {
                "foreground" | "Foreground" => kube::api::PropagationPolicy::Foreground,
                "orphan" | "Orphan" => kube::api::PropagationPolicy::Orphan,
                _ => kube::api::PropagationPolicy::Background,
            }),
            ..Default::default()
        };
        match api.delete(&key.name, &params).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(failure(&e)),
        }
    }

    fn live(&self, key: &ObjectKey) -> Option<Value> {
        self.cluster.cache.get(key).map(|(_, v)| (*v).clone())
    }

    fn health(&self, live: &Value) -> Option<tiphys_health::Health> {
        tiphys_health::assess_with(live, &self.health)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_dry_run_that_would_change_something_is_configured() {
        let at = |replicas: i64, rv: &str| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "resourceVersion": rv, "generation": 1},
                "spec": {"replicas": replicas}}))
            .unwrap()
        };
        assert_eq!(verb(Some(&at(1, "5")), &at(3, "5"), true), "configured");
        assert_eq!(verb(Some(&at(3, "5")), &at(3, "5"), true), "unchanged");
        assert_eq!(verb(Some(&at(3, "5")), &at(3, "6"), false), "configured");
        assert_eq!(verb(None, &at(3, "6"), true), "created");
    }

    #[test]
    fn three_way_removes_dropped_fields() {
        let last = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}});
        let desired = json!({"metadata": {"labels": {"a": "1"}}, "data": {"x": "2"}});
        assert_eq!(
            three_way(&last, &desired),
            json!({"metadata": {"labels": {"a": "1", "b": null}}, "data": {"x": "2"}})
        );
    }
}
