//! Preparing objects for storage: what the API server does to every create and update
//! before it reaches etcd — identity, namespace checks, validation, defaulting, generation,
//! status handling and field ownership.

use serde_json::{Map, Value, json};
use tiphys_patch::schema::{self, TypeDef};

use crate::Cluster;
use crate::clock;
use crate::crd;
use crate::defaults;
use crate::error::{ApiError, ApiResult, Cause};
use crate::fields::UpdateOwnership;
use crate::resources::ResourceType;
use crate::typed;

/// Options every write carries.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// Warnings to return in `Warning:` headers.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    #[default]
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> ApiResult<Self> {
        match v {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}, supported values: Ignore, Warn, Strict"
            ))),
        }
    }
}

pub fn merge_root(rt: &ResourceType) -> &'static TypeDef {
    schema::for_kind(&rt.group, &rt.kind)
}

/// A lowercase RFC 1123 subdomain (most object names).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A lowercase RFC 1123 label (namespaces, services).
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && !s.contains('.') && is_dns1123_subdomain(s)
}

fn name_cause(rt: &ResourceType, name: &str) -> Option<Cause> {
    let label = matches!(
        (rt.group.as_str(), rt.kind.as_str()),
        ("", "Namespace" | "Service")
    );
    if label && !is_dns1123_label(name) {
        return Some(Cause::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ));
    }
    if !label && !is_dns1123_subdomain(name) && !name_allows_any(rt) {
        return Some(Cause::invalid(
            "metadata.name",
            &json!(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    None
}

/// RBAC objects and events accept path-segment names (`system:controller:x`).
fn name_allows_any(rt: &ResourceType) -> bool {
    rt.group == "rbac.authorization.k8s.io" || rt.kind == "Event"
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Cluster {
    /// Turn a create request body into the object to store.
    pub(crate) fn prepare_create(
        &self,
        rt: &ResourceType,
        url_namespace: Option<&str>,
        mut obj: Value,
        opts: &mut WriteOptions,
        apply_op: bool,
    ) -> ApiResult<Value> {
        check_type_meta(rt, &mut obj)?;
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            && let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
        {
            name = format!("{prefix}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        if name.is_empty() {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                "",
                vec![Cause::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            ));
        }
        if let Some(cause) = name_cause(rt, &name) {
            return Err(ApiError::invalid(&rt.group, &rt.kind, &name, vec![cause]));
        }
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
            && !apply_op
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        self.check_namespace(rt, url_namespace, &mut obj, &name, true)?;

        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        for server_owned in [
            "uid",
            "resourceVersion",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(server_owned);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(clock::now_rfc3339()));
        if rt.tracks_generation || !rt.builtin {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        if rt.status_subresource
            && let Value::Object(m) = &mut obj
        {
            m.remove("status");
        }
        self.normalize(rt, &mut obj, opts)?;
        if !apply_op {
            // A create owns every field of the defaulted object, as on a real server (the
            // `Update` entry of kubectl-client-side-apply lists the defaults too).
            let now = clock::now_rfc3339();
            UpdateOwnership {
                manager: &opts.field_manager,
                api_version: &rt.api_version(),
                subresource: None,
                now: &now,
            }
            .record(None, &mut obj, merge_root(rt));
        }
        Ok(obj)
    }

    /// Turn an update (PUT, or a patched object) into the object to store. Returns None when
    /// nothing would change, so the stored object and its resourceVersion stay as they are.
    pub(crate) fn prepare_update(
        &self,
        rt: &ResourceType,
        current: &Value,
        mut obj: Value,
        subresource: Option<&str>,
        opts: &mut WriteOptions,
        record_ownership: bool,
    ) -> ApiResult<Option<Value>> {
        check_type_meta(rt, &mut obj)?;
        let name = current["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let body_name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let namespace = current["metadata"]["namespace"]
            .as_str()
            .map(str::to_string);
        self.check_namespace(rt, namespace.as_deref(), &mut obj, &name, false)?;

        // Server-owned metadata comes from the stored object, whatever the client sent.
        {
            let cur_meta = current["metadata"].as_object().cloned().unwrap_or_default();
            let meta = obj["metadata"]
                .as_object_mut()
                .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
            meta.insert("name".into(), json!(name));
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match cur_meta.get(key) {
                    Some(v) => meta.insert(key.into(), v.clone()),
                    None => meta.remove(key),
                };
            }
            if !meta.contains_key("managedFields")
                && let Some(mf) = cur_meta.get("managedFields")
            {
                meta.insert("managedFields".into(), mf.clone());
            }
        }

        match subresource {
            Some("status") => {
                // Only status changes through /status.
                let status = obj.get("status").cloned();
                let mut next = current.clone();
                match status {
                    Some(s) => next["status"] = s,
                    None => {
                        if let Value::Object(m) = &mut next {
                            m.remove("status");
                        }
                    }
                }
                if let Some(mf) = obj["metadata"].get("managedFields").cloned() {
                    next["metadata"]["managedFields"] = mf;
                }
                obj = next;
            }
            _ if rt.status_subresource => match current.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Value::Object(m) = &mut obj {
                        m.remove("status");
                    }
                }
            },
            _ => {}
        }

        // A deleted object only loses finalizers; nothing new may be added.
        if current["metadata"].get("deletionTimestamp").is_some() {
            let before: Vec<Value> = current["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let after: Vec<Value> = obj["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if after.iter().any(|f| !before.contains(f)) {
                return Err(ApiError::forbidden(
                    format!(
                        "{} \"{name}\" is forbidden: no new finalizers can be added if the object is being deleted",
                        rt.plural
                    ),
                    json!({"name": name, "kind": rt.plural}),
                ));
            }
        }

        preserve_allocated(rt, current, &mut obj);
        self.normalize(rt, &mut obj, opts)?;
        check_immutable(rt, current, &obj)?;

        if (rt.tracks_generation || !rt.builtin) && spec_changed(current, &obj) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            obj["metadata"]["generation"] = json!(generation);
        }
        if record_ownership {
            let now = clock::now_rfc3339();
            UpdateOwnership {
                manager: &opts.field_manager,
                api_version: &rt.api_version(),
                subresource,
                now: &now,
            }
            .record(Some(current), &mut obj, merge_root(rt));
        }
        if same_object(current, &obj) {
            return Ok(None);
        }
        Ok(Some(obj))
    }

    /// Defaulting and validation shared by create and update.
    pub(crate) fn normalize(
        &self,
        rt: &ResourceType,
        obj: &mut Value,
        opts: &mut WriteOptions,
    ) -> ApiResult<()> {
        if rt.builtin {
            defaults::apply(&rt.group, &rt.kind, obj, &self.allocator);
            defaults::round_trip(obj);
            check_typed(rt, obj, opts)?;
            if rt.group == "apiextensions.k8s.io" {
                crd::validate_definition(obj)?;
            }
        } else if let Some(schema) = &rt.schema {
            crd::prune_default_validate(rt, schema, obj, opts)?;
        }
        drop_empty_metadata(obj);
        Ok(())
    }

    fn check_namespace(
        &self,
        rt: &ResourceType,
        url_namespace: Option<&str>,
        obj: &mut Value,
        name: &str,
        creating: bool,
    ) -> ApiResult<()> {
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        if !rt.namespaced {
            meta.remove("namespace");
            return Ok(());
        }
        let body_ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let ns = match url_namespace {
            Some(url) => {
                if !body_ns.is_empty() && body_ns != url {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                url.to_string()
            }
            None if !body_ns.is_empty() => body_ns,
            None => {
                return Err(ApiError::bad_request(
                    "the server could not find the requested resource",
                ));
            }
        };
        meta.insert("namespace".into(), json!(ns));
        if !creating {
            return Ok(());
        }
        let namespaces = crate::resources::GroupResource {
            group: String::new(),
            resource: "namespaces".into(),
        };
        let Some(stored) = self.store.get(&namespaces, "", &ns) else {
            return Err(ApiError::not_found("namespaces", &ns));
        };
        let namespace = stored.value()?;
        if namespace["metadata"].get("deletionTimestamp").is_some()
            || namespace["status"]["phase"] == "Terminating"
        {
            return Err(ApiError::forbidden(
                format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.plural
                ),
                json!({"name": name, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
            ));
        }
        Ok(())
    }
}

/// Fill in or check apiVersion and kind against the endpoint.
fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let Value::Object(map) = obj else {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {})",
            rt.kind
        )));
    };
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {k} does not match",
                rt.kind
            )));
        }
        _ => {}
    }
    if let Some(av) = map.get("apiVersion").and_then(Value::as_str) {
        let group = av.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != rt.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
    }
    map.insert("apiVersion".into(), json!(rt.api_version()));
    map.insert("kind".into(), json!(rt.kind));
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    if !meta.is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Decode a built-in object as its Go type would: wrong types are a 400; unknown fields are
/// removed and reported per `fieldValidation`.
fn check_typed(rt: &ResourceType, obj: &mut Value, opts: &mut WriteOptions) -> ApiResult<()> {
    match typed::decode(&rt.group, &rt.version, &rt.kind, obj) {
        typed::Decoded::Unchecked => Ok(()),
        typed::Decoded::Invalid(e) => Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            rt.kind, rt.version, rt.kind
        ))),
        typed::Decoded::Ok { unknown } => {
            for path in &unknown {
                typed::remove(obj, path);
            }
            let shown: Vec<String> = unknown.iter().map(|p| typed::display(p)).collect();
            report_unknown(rt, &shown, opts)
        }
    }
}

/// What `fieldValidation` does with unknown fields (already pruned from the object): Strict
/// refuses the request, Warn answers with `Warning` headers, Ignore says nothing.
pub(crate) fn report_unknown(
    rt: &ResourceType,
    unknown: &[String],
    opts: &mut WriteOptions,
) -> ApiResult<()> {
    if unknown.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|u| format!("unknown field \"{u}\""))
        .collect();
    match opts.field_validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            rt.kind,
            rt.version,
            rt.kind,
            described.join(", ")
        ))),
        FieldValidation::Warn => {
            opts.warnings.extend(described);
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Service ClusterIPs and NodePorts, and Job selectors, survive an update that omits them,
/// as on a real server.
fn preserve_allocated(rt: &ResourceType, current: &Value, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Service") => {
            for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if obj["spec"].get(key).is_none_or(|v| v.is_null() || v == "")
                    && let (Some(v), Some(spec)) = (
                        current["spec"].get(key),
                        obj.get_mut("spec").and_then(Value::as_object_mut),
                    )
                {
                    spec.insert(key.into(), v.clone());
                }
            }
            if let (Some(Value::Array(old)), Some(Value::Array(new))) =
                (current["spec"].get("ports"), obj.pointer_mut("/spec/ports"))
            {
                for port in new.iter_mut() {
                    if port.get("nodePort").is_some() {
                        continue;
                    }
                    let prev = old
                        .iter()
                        .find(|p| p["port"] == port["port"] && p.get("nodePort").is_some());
                    if let (Some(prev), Value::Object(p)) = (prev, port) {
                        p.insert("nodePort".into(), prev["nodePort"].clone());
                    }
                }
            }
        }
        ("batch", "Job") => {
            if obj["spec"].get("selector").is_none()
                && let (Some(sel), Some(spec)) = (
                    current["spec"].get("selector"),
                    obj.get_mut("spec").and_then(Value::as_object_mut),
                )
            {
                spec.insert("selector".into(), sel.clone());
            }
        }
        _ => {}
    }
}

fn check_immutable(rt: &ResourceType, current: &Value, obj: &Value) -> ApiResult<()> {
    let immutable: &[&str] = match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => &["selector"],
        ("batch", "Job") => &["selector", "completionMode"],
        ("", "Service") => &["clusterIP"],
        _ => &[],
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    for field in immutable {
        let (before, after) = (&current["spec"][*field], &obj["spec"][*field]);
        if !before.is_null() && before != after {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.kind,
                name,
                vec![Cause::invalid(
                    format!("spec.{field}"),
                    after,
                    "field is immutable",
                )],
            ));
        }
    }
    if let (Value::Bool(true), false) = (
        &current["immutable"],
        obj["data"] == current["data"] && obj["binaryData"] == current["binaryData"],
    ) {
        return Err(ApiError::invalid(
            &rt.group,
            &rt.kind,
            name,
            vec![Cause {
                reason: "FieldValueForbidden",
                message: "Forbidden: field is immutable when `immutable` is set".into(),
                field: "data".into(),
            }],
        ));
    }
    Ok(())
}

/// Whether anything but metadata and status differs (what bumps `metadata.generation`).
fn spec_changed(current: &Value, obj: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(current) != strip(obj)
}

/// Equal apart from resourceVersion and the timestamps in managedFields.
fn same_object(current: &Value, obj: &Value) -> bool {
    let normal = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            if let Some(Value::Array(mf)) = meta.get_mut("managedFields") {
                for e in mf {
                    if let Value::Object(e) = e {
                        e.remove("time");
                    }
                }
            }
        }
        v
    };
    normal(current) == normal(obj)
}

fn drop_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["labels", "annotations"] {
            if meta
                .get(key)
                .is_some_and(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty))
            {
                meta.remove(key);
            }
        }
        for key in ["finalizers", "ownerReferences", "managedFields"] {
            if meta
                .get(key)
                .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
            {
                meta.remove(key);
            }
        }
        if meta
            .get("generateName")
            .is_some_and(|v| v.as_str().is_some_and(str::is_empty))
        {
            meta.remove("generateName");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("Bad_Name"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(is_dns1123_label("ref"));
        assert!(!is_dns1123_label("a.b"));
    }
}
