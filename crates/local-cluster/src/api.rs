//! The resource verbs: get, list, create, update, patch, delete, deletecollection and the
//! status and scale subresources.

use base64::Engine;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, ApiResult};
use crate::fields;
use crate::request::{BodyFormat, Query, ResourcePath, decode_object};
use crate::resources::{GroupResource, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Stored, object_key};
use crate::write::{FieldValidation, WriteOptions, merge_root};
use crate::{Cluster, lifecycle};

/// A successful answer before encoding.
pub enum Reply {
    /// An object or Status with an HTTP code.
    Object(u16, Value),
    /// Pre-encoded JSON (lists are spliced from stored bytes without re-parsing).
    Raw(u16, Bytes),
}

impl Reply {
    pub fn ok(v: Value) -> Reply {
        Reply::Object(200, v)
    }
}

/// Who is asking, for default field managers.
pub struct Caller<'a> {
    pub user_agent: &'a str,
}

impl Caller<'_> {
    /// The API server's default field manager: the user agent up to the first '/'.
    fn default_manager(&self) -> String {
        let ua = self.user_agent.split('/').next().unwrap_or_default();
        if ua.is_empty() {
            "unknown".into()
        } else {
            ua.to_string()
        }
    }
}

fn write_options(query: &Query, caller: &Caller<'_>) -> ApiResult<WriteOptions> {
    Ok(WriteOptions {
        dry_run: query.dry_run(),
        field_manager: query
            .get("fieldManager")
            .map(str::to_string)
            .unwrap_or_else(|| caller.default_manager()),
        field_validation: FieldValidation::parse(query.get("fieldValidation"))?,
        warnings: Vec::new(),
    })
}

/// Rewrite a stored object's apiVersion to the version it is read at (CRDs with several
/// served versions and no conversion webhook: `strategy: None`).
fn at_version(rt: &ResourceType, mut v: Value) -> Value {
    if !rt.builtin || rt.group == "autoscaling" {
        v["apiVersion"] = json!(rt.api_version());
    }
    v
}

impl Cluster {
    pub(crate) fn get_object(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Stored> {
        self.store
            .get(&rt.group_resource(), ns, name)
            .ok_or_else(|| ApiError::not_found(&gr_display(rt), name))
    }

    pub fn get(&self, p: &ResourcePath) -> ApiResult<Reply> {
        let (rt, ns, name) = parts(p)?;
        let stored = self.get_object(rt, ns, name)?;
        match p.subresource.as_deref() {
            Some("scale") => Ok(Reply::ok(self.scale_of(rt, &stored.value()?)?)),
            None | Some("status") => {
                if !rt.builtin || rt.group == "autoscaling" {
                    Ok(Reply::ok(at_version(rt, stored.value()?)))
                } else {
                    Ok(Reply::Raw(200, stored.json))
                }
            }
            Some(_) => Err(ApiError::not_found(&gr_display(rt), name)),
        }
    }

    pub fn list(&self, p: &ResourcePath, query: &Query) -> ApiResult<Reply> {
        let rt = &p.rt;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        let start_after = match query.get("continue") {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        if let Some(rv) = query
            .get("resourceVersion")
            .and_then(|v| v.parse::<u64>().ok())
        {
            let current = self.store.current_rv();
            if rv > current && query.get("resourceVersionMatch") != Some("NotOlderThan") {
                return Err(ApiError::timeout_too_large_rv(rv, current));
            }
        }
        let gr = rt.group_resource();
        let rewrite_version = !rt.builtin || rt.group == "autoscaling";
        let needs_parse = !labels.is_empty() || !fields.is_empty() || rewrite_version;
        let (rv, items, unfiltered_rest) = match (fields.exact_name(), p.namespace.as_deref()) {
            // `fieldSelector=metadata.name=x` (kubectl wait/delete): answer without a scan.
            (Some(name), ns) if rt.namespaced == ns.is_some() || !rt.namespaced => {
                let ns = ns.unwrap_or_default();
                let rv = self.store.current_rv();
                let item = self
                    .store
                    .get(&gr, ns, name)
                    .map(|s| ((ns.to_string(), name.to_string()), s));
                (rv, item.into_iter().collect(), 0)
            }
            // Without selectors a page needs only its own objects (and a count of the rest).
            _ => {
                let take = if needs_parse || limit == 0 {
                    usize::MAX
                } else {
                    limit
                };
                self.store
                    .list_after(&gr, p.namespace.as_deref(), start_after.as_ref(), take)
            }
        };
        let mut out: Vec<Bytes> = Vec::new();
        let mut continue_key = None;
        let mut remaining = unfiltered_rest;
        for (key, item) in items {
            let value = if needs_parse {
                let v = item.value()?;
                if !labels.matches(&v["metadata"]["labels"]) || !fields.matches(&v) {
                    continue;
                }
                Some(v)
            } else {
                None
            };
            if limit > 0 && out.len() == limit {
                remaining += 1;
                continue;
            }
            let bytes = match value {
                Some(v) if rewrite_version => Bytes::from(
                    serde_json::to_vec(&at_version(rt, v))
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                ),
                _ => item.json.clone(),
            };
            out.push(bytes);
            continue_key = Some(key);
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some((ns, name)) = continue_key
        {
            meta["continue"] = json!(encode_continue(rv, &ns, &name));
            meta["remainingItemCount"] = json!(remaining);
        }
        Ok(Reply::Raw(
            200,
            splice_list(&rt.list_kind, &rt.api_version(), &meta, &out),
        ))
    }

    pub fn create(
        &self,
        p: &ResourcePath,
        query: &Query,
        caller: &Caller<'_>,
        body: &[u8],
        format: BodyFormat,
    ) -> ApiResult<(Reply, Vec<String>)> {
        let rt = &p.rt;
        if p.name.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let mut opts = write_options(query, caller)?;
        let obj = decode_object(body, format, &rt.kind)?;
        let obj = self.prepare_create(rt, p.namespace.as_deref(), obj, &mut opts, false)?;
        let reply = self.commit_create(rt, obj, &opts)?;
        Ok((reply, opts.warnings))
    }

    /// Store a new object (unless this is a dry run): 201 with what was stored.
    fn commit_create(
        &self,
        rt: &ResourceType,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Reply> {
        if opts.dry_run {
            return Ok(Reply::Object(201, obj));
        }
        let stored = self.store.put(&rt.group_resource(), obj, None)?;
        self.after_write(rt, &stored);
        Ok(Reply::Object(201, stored))
    }

    pub fn update(
        &self,
        p: &ResourcePath,
        query: &Query,
        caller: &Caller<'_>,
        body: &[u8],
        format: BodyFormat,
    ) -> ApiResult<(Reply, Vec<String>)> {
        let (rt, ns, name) = parts(p)?;
        let mut opts = write_options(query, caller)?;
        let current_stored = self.get_object(rt, ns, name)?;
        let current = current_stored.value()?;
        let mut obj = decode_object(body, format, &rt.kind)?;
        if p.subresource.as_deref() == Some("scale") {
            return self
                .write_scale(rt, &current, current_stored.rv, |_| Ok(obj), &mut opts)
                .map(|r| (r, Vec::new()));
        }
        let expected = precondition_rv(&obj, rt, name, current_stored.rv)?;
        if p.subresource.as_deref() == Some("finalize") {
            // Namespace finalize: only spec.finalizers changes.
            let mut next = current.clone();
            next["spec"]["finalizers"] = obj["spec"]["finalizers"].clone();
            obj = next;
        }
        let sub = p.subresource.as_deref().filter(|s| *s == "status");
        let Some(next) = self.prepare_update(rt, &current, obj, sub, &mut opts, true)? else {
            return Ok((Reply::ok(at_version(rt, current)), opts.warnings));
        };
        self.commit_update(rt, next, expected, &opts)
            .map(|r| (r, opts.warnings))
    }

    /// Store an updated object; an object being deleted whose last finalizer went is removed.
    fn commit_update(
        &self,
        rt: &ResourceType,
        next: Value,
        expected: u64,
        opts: &WriteOptions,
    ) -> ApiResult<Reply> {
        if opts.dry_run {
            return Ok(Reply::ok(at_version(rt, next)));
        }
        let gr = rt.group_resource();
        let deleting = next["metadata"].get("deletionTimestamp").is_some();
        let no_finalizers = next["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
            && !(rt.group.is_empty()
                && rt.kind == "Namespace"
                && next["spec"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty()));
        let stored = self.store.put(&gr, next, Some(expected))?;
        if deleting && no_finalizers {
            let (ns, name) = object_key(&stored);
            let rv = stored["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let removed = self.store.remove(&gr, &ns, &name, rv)?;
            self.after_delete(rt, &removed);
            return Ok(Reply::ok(at_version(rt, removed)));
        }
        self.after_write(rt, &stored);
        Ok(Reply::ok(at_version(rt, stored)))
    }

    pub fn patch(
        &self,
        p: &ResourcePath,
        query: &Query,
        caller: &Caller<'_>,
        body: &[u8],
        format: BodyFormat,
    ) -> ApiResult<(Reply, Vec<String>)> {
        let (rt, ns, name) = parts(p)?;
        let mut opts = write_options(query, caller)?;
        if format == BodyFormat::StrategicMergePatch && !rt.builtin {
            return Err(ApiError::unsupported_media_type(Some(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            )));
        }
        if !matches!(
            format,
            BodyFormat::JsonPatch
                | BodyFormat::MergePatch
                | BodyFormat::StrategicMergePatch
                | BodyFormat::ApplyPatch
        ) {
            return Err(ApiError::unsupported_media_type(None));
        }
        if format == BodyFormat::ApplyPatch && query.get("fieldManager").is_none() {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager parameter",
            ));
        }
        let patch_doc: Value = if format == BodyFormat::ApplyPatch {
            decode_object(body, format, &rt.kind)?
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };

        // Retry on a concurrent write unless the patch pins a resourceVersion itself.
        for _ in 0..8 {
            let Some(current_stored) = self.store.get(&rt.group_resource(), ns, name) else {
                if format == BodyFormat::ApplyPatch && p.subresource.is_none() {
                    return self
                        .apply_create(p, patch_doc, &mut opts, query.flag("force"))
                        .map(|r| (r, opts.warnings));
                }
                return Err(ApiError::not_found(&gr_display(rt), name));
            };
            let current = at_version(rt, current_stored.value()?);
            if p.subresource.as_deref() == Some("scale") {
                let result = self.write_scale(
                    rt,
                    &current,
                    current_stored.rv,
                    |scale| patch_value(rt, scale, &patch_doc, format),
                    &mut opts,
                );
                match result {
                    Err(e) if e.reason == "Conflict" => continue,
                    other => return other.map(|r| (r, Vec::new())),
                }
            }
            let sub = p.subresource.as_deref().filter(|s| *s == "status");
            let (patched, record) = if format == BodyFormat::ApplyPatch {
                let now = clock::now_rfc3339();
                check_apply_identity(rt, &patch_doc, name)?;
                let outcome = fields::apply(
                    Some(&current),
                    &patch_doc,
                    &opts.field_manager,
                    query.flag("force"),
                    &rt.api_version(),
                    &now,
                    merge_root(rt),
                );
                if !outcome.conflicts.is_empty() {
                    return Err(ApiError::field_manager_conflicts(&outcome.conflicts));
                }
                (outcome.object, false)
            } else {
                (patch_value(rt, current.clone(), &patch_doc, format)?, true)
            };
            // Pinned only when the patch itself names a version (the patched object always
            // carries the current one, which must not turn a merge patch into a guarded write
            // that fails instead of retrying).
            let version = |v: &Value| {
                v.pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
            };
            let pinned = version(&patch_doc)
                .or_else(|| version(&patched).filter(|rv| *rv != current_stored.rv));
            let expected = match pinned {
                Some(rv) if rv != current_stored.rv => {
                    return Err(ApiError::conflict(&gr_display(rt), name));
                }
                _ => current_stored.rv,
            };
            let Some(next) = self.prepare_update(rt, &current, patched, sub, &mut opts, record)?
            else {
                return Ok((Reply::ok(current), opts.warnings));
            };
            match self.commit_update(rt, next, expected, &opts) {
                Err(e)
                    if e.reason == "Conflict"
                        && e.details
                            .as_ref()
                            .is_some_and(|d| d.get("causes").is_none())
                        && pinned.is_none() =>
                {
                    continue;
                }
                other => return other.map(|r| (r, opts.warnings)),
            }
        }
        Err(ApiError::conflict(&gr_display(rt), name))
    }

    /// Server-side apply of an object that does not exist yet: create it (201).
    fn apply_create(
        &self,
        p: &ResourcePath,
        applied: Value,
        opts: &mut WriteOptions,
        force: bool,
    ) -> ApiResult<Reply> {
        let (rt, _, name) = parts(p)?;
        check_apply_identity(rt, &applied, name)?;
        let now = clock::now_rfc3339();
        let outcome = fields::apply(
            None,
            &applied,
            &opts.field_manager,
            force,
            &rt.api_version(),
            &now,
            merge_root(rt),
        );
        let mut obj = outcome.object;
        obj["metadata"]["name"] = json!(name);
        let obj = self.prepare_create(rt, p.namespace.as_deref(), obj, opts, true)?;
        self.commit_create(rt, obj, opts)
    }

    pub fn delete(&self, p: &ResourcePath, query: &Query, body: &[u8]) -> ApiResult<Reply> {
        let (rt, ns, name) = parts(p)?;
        let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let stored = self.get_object(rt, ns, name)?;
        let current = stored.value()?;
        if let Some(uid) = options["preconditions"]["uid"].as_str() {
            let actual = current["metadata"]["uid"].as_str().unwrap_or_default();
            if uid != actual {
                return Err(ApiError::conflict_message(
                    &rt.kind,
                    name,
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated",
                        rt.kind
                    ),
                ));
            }
        }
        if let Some(rv) = options["preconditions"]["resourceVersion"].as_str()
            && rv != stored.rv.to_string()
        {
            return Err(ApiError::conflict_message(
                &rt.kind,
                name,
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    rt.kind, stored.rv
                ),
            ));
        }
        let policy = options["propagationPolicy"]
            .as_str()
            .or(query.get("propagationPolicy"))
            .map(str::to_string)
            .or_else(|| {
                let orphan = options["orphanDependents"]
                    .as_bool()
                    .or(query.get("orphanDependents").map(|v| v == "true"));
                orphan.and_then(|o| o.then(|| "Orphan".to_string()))
            })
            .unwrap_or_else(|| "Background".into());
        if !matches!(policy.as_str(), "Background" | "Foreground" | "Orphan") {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                name,
                vec![crate::error::Cause::not_supported(
                    "propagationPolicy",
                    &json!(policy),
                    &[json!("Foreground"), json!("Background"), json!("Orphan")],
                )],
            ));
        }
        let dry_run = query.dry_run()
            || options["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        self.delete_object(rt, current, stored.rv, &policy, dry_run)
    }

    /// The deletion state machine shared by DELETE, deletecollection, garbage collection and
    /// namespace cleanup.
    pub(crate) fn delete_object(
        &self,
        rt: &ResourceType,
        current: Value,
        rv: u64,
        policy: &str,
        dry_run: bool,
    ) -> ApiResult<Reply> {
        let (ns, name) = object_key(&current);
        let mut finalizers: Vec<Value> = current["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let already_deleting = current["metadata"].get("deletionTimestamp").is_some();
        let is_namespace = rt.group.is_empty() && rt.kind == "Namespace";
        let extra = match policy {
            "Foreground" => Some("foregroundDeletion"),
            "Orphan" => Some("orphan"),
            _ => None,
        };
        if let Some(f) = extra
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(json!(f));
        }
        let has_namespace_finalizer = is_namespace
            && current["spec"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
        if finalizers.is_empty() && !has_namespace_finalizer {
            if dry_run {
                return Ok(Reply::ok(deleted_status(rt, &current)));
            }
            let removed = self.store.remove(&rt.group_resource(), &ns, &name, rv)?;
            self.after_delete(rt, &removed);
            return Ok(Reply::ok(deleted_status(rt, &removed)));
        }
        if already_deleting
            && current["metadata"]["finalizers"].as_array().map(Vec::len) == Some(finalizers.len())
        {
            return Ok(Reply::ok(at_version(rt, current)));
        }
        let mut next = current.clone();
        next["metadata"]["finalizers"] = Value::Array(finalizers);
        if !already_deleting {
            next["metadata"]["deletionTimestamp"] = json!(clock::now_rfc3339());
            next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        }
        if is_namespace {
            next["status"]["phase"] = json!("Terminating");
        }
        if dry_run {
            return Ok(Reply::ok(at_version(rt, next)));
        }
        let stored = self.store.put(&rt.group_resource(), next, Some(rv))?;
        self.lifecycle.notify_one();
        Ok(Reply::ok(at_version(rt, stored)))
    }

    pub fn delete_collection(
        &self,
        p: &ResourcePath,
        query: &Query,
        body: &[u8],
    ) -> ApiResult<Reply> {
        let rt = &p.rt;
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())?;
        let options: Value = serde_json::from_slice(body).unwrap_or(json!({}));
        let policy = options["propagationPolicy"]
            .as_str()
            .or(query.get("propagationPolicy"))
            .unwrap_or("Background")
            .to_string();
        let (_, items) = self
            .store
            .list(&rt.group_resource(), p.namespace.as_deref());
        let mut deleted = Vec::new();
        for item in items {
            let v = item.value()?;
            if !labels.matches(&v["metadata"]["labels"]) || !fields.matches(&v) {
                continue;
            }
            if let Ok(Reply::Object(_, obj)) =
                self.delete_object(rt, v, item.rv, &policy, query.dry_run())
            {
                deleted.push(obj);
            }
        }
        Ok(Reply::ok(json!({
            "kind": rt.list_kind, "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": self.store.current_rv().to_string()}, "items": deleted,
        })))
    }

    fn scale_of(&self, rt: &ResourceType, obj: &Value) -> ApiResult<Value> {
        let Some(paths) = &rt.scale else {
            return Err(ApiError::not_found(
                &gr_display(rt),
                obj["metadata"]["name"].as_str().unwrap_or_default(),
            ));
        };
        let meta = &obj["metadata"];
        let spec_replicas = json_path(obj, &paths.spec_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let status_replicas = json_path(obj, &paths.status_replicas)
            .cloned()
            .unwrap_or(json!(0));
        let mut scale = json!({
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"]},
            "spec": {"replicas": spec_replicas},
            "status": {"replicas": status_replicas},
        });
        let selector = match &paths.label_selector {
            // Built-in kinds report their label selector in the `a=b,c=d` form.
            Some(_) if rt.builtin => obj["spec"]["selector"]["matchLabels"].as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            Some(p) => json_path(obj, p)
                .and_then(Value::as_str)
                .map(str::to_string),
            None => None,
        };
        if let Some(sel) = selector {
            scale["status"]["selector"] = json!(sel);
        }
        Ok(scale)
    }

    fn write_scale(
        &self,
        rt: &ResourceType,
        current: &Value,
        rv: u64,
        change: impl FnOnce(Value) -> ApiResult<Value>,
        opts: &mut WriteOptions,
    ) -> ApiResult<Reply> {
        let scale = self.scale_of(rt, current)?;
        let new_scale = change(scale)?;
        let Some(replicas) = new_scale["spec"]["replicas"].as_i64() else {
            return Err(ApiError::bad_request("spec.replicas must be an integer"));
        };
        let Some(paths) = &rt.scale else {
            return Err(ApiError::method_not_allowed());
        };
        let mut next = current.clone();
        set_json_path(&mut next, &paths.spec_replicas, json!(replicas));
        let Some(next) = self.prepare_update(rt, current, next, None, opts, true)? else {
            return Ok(Reply::ok(self.scale_of(rt, current)?));
        };
        match self.commit_update(rt, next, rv, opts)? {
            Reply::Object(_, obj) => Ok(Reply::ok(self.scale_of(rt, &obj)?)),
            other => Ok(other),
        }
    }

    /// Hooks after an object was written: CRDs change what is served; deletions may free work.
    /// Other writes of owned objects (a Pod's status) do not wake the collector: it passes over
    /// every owned object, and woken on each of a rollout's thousands of status writes it was
    /// most of the cluster's work. One owned by something already gone is found by the
    /// periodic pass.
    pub(crate) fn after_write(&self, rt: &ResourceType, obj: &Value) {
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            crate::crd::register(self, obj);
        }
        if obj["metadata"].get("deletionTimestamp").is_some() {
            self.lifecycle.notify_one();
        }
    }

    pub(crate) fn after_delete(&self, rt: &ResourceType, obj: &Value) {
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            crate::crd::unregister(self, obj);
        }
        lifecycle::wake(self);
    }
}

fn parts(p: &ResourcePath) -> ApiResult<(&ResourceType, &str, &str)> {
    let name = p.name.as_deref().ok_or_else(ApiError::method_not_allowed)?;
    if p.rt.namespaced && p.namespace.is_none() {
        return Err(ApiError::not_found(&gr_display(&p.rt), name));
    }
    Ok((&p.rt, p.namespace.as_deref().unwrap_or_default(), name))
}

/// `configmaps`, `deployments.apps`: how errors name a resource.
pub fn gr_display(rt: &ResourceType) -> String {
    rt.group_resource().to_string()
}

/// The resourceVersion a PUT must match: the one in the body, or the current one for an
/// unconditional update.
fn precondition_rv(obj: &Value, rt: &ResourceType, name: &str, current: u64) -> ApiResult<u64> {
    match obj["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        None => Ok(current),
        Some(s) => match s.parse::<u64>() {
            Ok(rv) if rv == current => Ok(rv),
            Ok(_) => Err(ApiError::conflict(&gr_display(rt), name)),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid resourceVersion {s:?}"
            ))),
        },
    }
}

fn check_apply_identity(rt: &ResourceType, applied: &Value, name: &str) -> ApiResult<()> {
    if applied["apiVersion"].as_str().is_none() || applied["kind"].as_str().is_none() {
        return Err(ApiError::bad_request("invalid object type: /, Kind="));
    }
    if applied["kind"] != json!(rt.kind) {
        return Err(ApiError::bad_request(format!(
            "the kind in the applied object ({}) does not match {}",
            applied["kind"], rt.kind
        )));
    }
    if let Some(n) = applied["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// Apply a JSON patch, merge patch or strategic merge patch document.
fn patch_value(
    rt: &ResourceType,
    mut doc: Value,
    patch: &Value,
    format: BodyFormat,
) -> ApiResult<Value> {
    match format {
        BodyFormat::JsonPatch => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &ops).map_err(|_| crate::error::ApiError {
                code: 422,
                reason: "Invalid",
                message: "the server rejected our request due to an error in our request".into(),
                details: Some(json!({})),
            })?;
        }
        BodyFormat::MergePatch => json_patch::merge(&mut doc, patch),
        BodyFormat::StrategicMergePatch => {
            tiphys_patch::strategic::apply(&mut doc, patch, merge_root(rt))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        _ => return Err(ApiError::unsupported_media_type(None)),
    }
    Ok(doc)
}

/// `.spec.replicas` style paths (CRD scale subresource paths).
fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.trim_start_matches('.').split('.') {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn set_json_path(v: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = v;
    for seg in &segs[..segs.len() - 1] {
        if !cur[*seg].is_object() {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    cur[segs[segs.len() - 1]] = value;
}

fn deleted_status(rt: &ResourceType, obj: &Value) -> Value {
    let mut details =
        json!({"name": obj["metadata"]["name"], "kind": rt.plural, "uid": obj["metadata"]["uid"]});
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn splice_list(list_kind: &str, api_version: &str, meta: &Value, items: &[Bytes]) -> Bytes {
    let mut out =
        Vec::with_capacity(items.iter().map(Bytes::len).sum::<usize>() + items.len() + 128);
    out.extend_from_slice(
        format!(
            "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
            json!(list_kind),
            json!(api_version),
            meta
        )
        .as_bytes(),
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}\n");
    Bytes::from(out)
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}\u{0}")});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(String, String)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = v["start"]
        .as_str()
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/').unwrap_or(("", start));
    Ok((ns.to_string(), name.to_string()))
}

/// Answers for the authorization review kinds (`kubectl auth can-i`): everything is allowed.
pub fn review(body: &[u8], format: BodyFormat) -> ApiResult<Reply> {
    let mut review = decode_object(body, format, "SelfSubjectAccessReview")?;
    review["status"] = json!({"allowed": true, "reason": "the local cluster authorizes every authenticated request"});
    if review["metadata"].is_null() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(Reply::Object(201, review))
}

/// Which part of an object an internal controller writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    /// The object through its main endpoint (status changes are ignored there).
    Main,
    /// The status, through `/status` when the resource has that subresource.
    Status,
}

/// Read-modify-write for the cluster's own controllers (CRD status, garbage collection,
/// simulated workloads), retried on conflicting writes.
pub(crate) fn update_internal(
    cluster: &Cluster,
    gr: &GroupResource,
    ns: &str,
    name: &str,
    manager: &str,
    part: Part,
    change: impl Fn(&mut Value),
) -> ApiResult<()> {
    let Some(rt) = cluster.registry.any_version(gr) else {
        return Ok(());
    };
    let sub = (part == Part::Status && rt.status_subresource).then_some("status");
    for _ in 0..5 {
        let Some(stored) = cluster.store.get(gr, ns, name) else {
            return Ok(());
        };
        let current = stored.value()?;
        let mut next = current.clone();
        change(&mut next);
        let mut opts = WriteOptions {
            field_manager: manager.into(),
            field_validation: FieldValidation::Ignore,
            ..Default::default()
        };
        let Some(next) = cluster.prepare_update(&rt, &current, next, sub, &mut opts, true)? else {
            return Ok(());
        };
        match cluster.commit_update(&rt, next, stored.rv, &opts) {
            Ok(_) => return Ok(()),
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Create for the cluster's own controllers (simulated workloads): `obj` as `manager` wrote it,
/// `generateName` honoured.
pub(crate) fn create_internal(
    cluster: &Cluster,
    gr: &GroupResource,
    ns: &str,
    obj: Value,
    manager: &str,
) -> ApiResult<()> {
    let Some(rt) = cluster.registry.any_version(gr) else {
        return Ok(());
    };
    let mut opts = WriteOptions {
        field_manager: manager.into(),
        field_validation: FieldValidation::Ignore,
        ..Default::default()
    };
    let obj = cluster.prepare_create(&rt, Some(ns), obj, &mut opts, false)?;
    cluster.commit_create(&rt, obj, &opts)?;
    Ok(())
}

/// Delete for the cluster's own controllers, in the background (dependents by garbage
/// collection), as kube-controller-manager scales down.
pub(crate) fn delete_internal(
    cluster: &Cluster,
    gr: &GroupResource,
    ns: &str,
    name: &str,
) -> ApiResult<()> {
    let Some(rt) = cluster.registry.any_version(gr) else {
        return Ok(());
    };
    let Some(stored) = cluster.store.get(gr, ns, name) else {
        return Ok(());
    };
    cluster.delete_object(&rt, stored.value()?, stored.rv, "Background", false)?;
    Ok(())
}
