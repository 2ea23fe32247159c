//! Decoding `application/vnd.kubernetes.protobuf` request bodies into JSON.
//!
//! `kubectl create namespace|configmap|secret|deployment|service|job` and `kubectl auth
//! can-i` send Protobuf with no JSON fallback. The wire format is the magic `k8s\0` followed by
//! a `runtime.Unknown` whose `raw` field holds the typed message. We decode with a table of
//! field numbers from Kubernetes' `generated.proto` files for the kinds kubectl creates; a
//! field the table does not know is skipped (it is never a field those commands set).
//! Go's protobuf writes every non-pointer field, so zero values of non-pointer fields are
//! dropped, as `omitempty` would drop them from JSON.

use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("missing the k8s protobuf magic prefix")]
    Magic,
    #[error("truncated or malformed protobuf message")]
    Malformed,
    #[error("no protobuf decoding for kind {0}")]
    UnknownKind(String),
}

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Bytes,
    Msg(&'static [F]),
    MapStr,
    MapBytes,
    MapQuantity,
    Time,
    IntOrString,
}

/// One field: number, JSON name, type, repeated, and whether it is a Go pointer (kept even
/// when zero).
#[derive(Clone, Copy)]
struct F(u32, &'static str, Ty, bool, bool);

const fn f(n: u32, name: &'static str, ty: Ty) -> F {
    F(n, name, ty, false, false)
}
const fn ptr(n: u32, name: &'static str, ty: Ty) -> F {
    F(n, name, ty, false, true)
}
const fn rep(n: u32, name: &'static str, ty: Ty) -> F {
    F(n, name, ty, true, false)
}

const OWNER_REFERENCE: &[F] = &[
    f(5, "apiVersion", Ty::Str),
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    ptr(6, "controller", Ty::Bool),
    ptr(7, "blockOwnerDeletion", Ty::Bool),
];
const OBJECT_META: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
];
const NAMESPACE_SPEC: &[F] = &[rep(1, "finalizers", Ty::Str)];
const NAMESPACE_STATUS: &[F] = &[f(1, "phase", Ty::Str)];
const NAMESPACE: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    f(3, "status", Ty::Msg(NAMESPACE_STATUS)),
];
const CONFIG_MAP: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    ptr(4, "immutable", Ty::Bool),
];
const SECRET: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    ptr(5, "immutable", Ty::Bool),
];
const LABEL_SELECTOR_REQUIREMENT: &[F] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    rep(3, "values", Ty::Str),
];
const LABEL_SELECTOR: &[F] = &[
    f(1, "matchLabels", Ty::MapStr),
    rep(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];
const CONTAINER_PORT: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
    f(5, "hostIP", Ty::Str),
];
const KEY_REF: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "key", Ty::Str),
    ptr(3, "optional", Ty::Bool),
];
const ENV_VAR_SOURCE: &[F] = &[
    ptr(3, "configMapKeyRef", Ty::Msg(KEY_REF)),
    ptr(4, "secretKeyRef", Ty::Msg(KEY_REF)),
];
const ENV_VAR: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "value", Ty::Str),
    ptr(3, "valueFrom", Ty::Msg(ENV_VAR_SOURCE)),
];
const RESOURCES: &[F] = &[
    f(1, "limits", Ty::MapQuantity),
    f(2, "requests", Ty::MapQuantity),
];
const CONTAINER: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    rep(3, "command", Ty::Str),
    rep(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    rep(6, "ports", Ty::Msg(CONTAINER_PORT)),
    rep(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCES)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];
const POD_SPEC: &[F] = &[
    rep(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    ptr(4, "terminationGracePeriodSeconds", Ty::Int),
    ptr(5, "activeDeadlineSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", Ty::MapStr),
    f(8, "serviceAccountName", Ty::Str),
    f(9, "serviceAccount", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    f(12, "hostPID", Ty::Bool),
    f(13, "hostIPC", Ty::Bool),
    f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str),
    f(19, "schedulerName", Ty::Str),
    rep(20, "initContainers", Ty::Msg(CONTAINER)),
    f(24, "priorityClassName", Ty::Str),
];
const POD_TEMPLATE_SPEC: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];
const ROLLING_UPDATE_DEPLOYMENT: &[F] = &[
    ptr(1, "maxUnavailable", Ty::IntOrString),
    ptr(2, "maxSurge", Ty::IntOrString),
];
const DEPLOYMENT_STRATEGY: &[F] = &[
    f(1, "type", Ty::Str),
    ptr(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE_DEPLOYMENT)),
];
const DEPLOYMENT_SPEC: &[F] = &[
    ptr(1, "replicas", Ty::Int),
    ptr(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    f(4, "strategy", Ty::Msg(DEPLOYMENT_STRATEGY)),
    f(5, "minReadySeconds", Ty::Int),
    ptr(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    ptr(9, "progressDeadlineSeconds", Ty::Int),
];
const DEPLOYMENT: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
];
const SERVICE_PORT: &[F] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::Int),
    ptr(6, "appProtocol", Ty::Str),
];
const SERVICE_SPEC: &[F] = &[
    rep(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    rep(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    rep(18, "clusterIPs", Ty::Str),
];
const SERVICE: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];
const JOB_SPEC: &[F] = &[
    ptr(1, "parallelism", Ty::Int),
    ptr(2, "completions", Ty::Int),
    ptr(3, "activeDeadlineSeconds", Ty::Int),
    ptr(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    ptr(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    ptr(7, "backoffLimit", Ty::Int),
    ptr(8, "ttlSecondsAfterFinished", Ty::Int),
    ptr(9, "completionMode", Ty::Str),
    ptr(10, "suspend", Ty::Bool),
];
const JOB: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];
const JOB_TEMPLATE_SPEC: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];
const CRON_JOB_SPEC: &[F] = &[
    f(1, "schedule", Ty::Str),
    ptr(2, "startingDeadlineSeconds", Ty::Int),
    f(3, "concurrencyPolicy", Ty::Str),
    ptr(4, "suspend", Ty::Bool),
    f(5, "jobTemplate", Ty::Msg(JOB_TEMPLATE_SPEC)),
    ptr(6, "successfulJobsHistoryLimit", Ty::Int),
    ptr(7, "failedJobsHistoryLimit", Ty::Int),
    ptr(8, "timeZone", Ty::Str),
];
const CRON_JOB: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(CRON_JOB_SPEC)),
];
const RESOURCE_ATTRIBUTES: &[F] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[F] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const ACCESS_REVIEW_SPEC: &[F] = &[
    ptr(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    ptr(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];
const ACCESS_REVIEW: &[F] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(ACCESS_REVIEW_SPEC)),
];
const SERVICE_ACCOUNT: &[F] = &[f(1, "metadata", Ty::Msg(OBJECT_META))];
const QUANTITY: &[F] = &[f(1, "string", Ty::Str)];
const TYPE_META: &[F] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];
const UNKNOWN: &[F] = &[f(1, "typeMeta", Ty::Msg(TYPE_META)), f(2, "raw", Ty::Bytes)];

fn message_for(kind: &str) -> Option<&'static [F]> {
    Some(match kind {
        "Namespace" => NAMESPACE,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "Deployment" => DEPLOYMENT,
        "Service" => SERVICE,
        "Job" => JOB,
        "CronJob" => CRON_JOB,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "SelfSubjectAccessReview" => ACCESS_REVIEW,
        _ => return None,
    })
}

/// Decode a Kubernetes protobuf envelope into a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let payload = body.strip_prefix(b"k8s\0").ok_or(ProtobufError::Magic)?;
    let envelope = decode_message(payload, UNKNOWN)?;
    let api_version = envelope["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = envelope["typeMeta"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let raw = envelope["raw"].as_str().unwrap_or_default();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| ProtobufError::Malformed)?;
    let fields = message_for(&kind).ok_or_else(|| ProtobufError::UnknownKind(kind.clone()))?;
    let mut object = decode_message(&raw, fields)?;
    if let Value::Object(m) = &mut object {
        let mut out = Map::new();
        out.insert("apiVersion".into(), json!(api_version));
        out.insert("kind".into(), json!(kind));
        out.extend(std::mem::take(m));
        return Ok(Value::Object(out));
    }
    Ok(object)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(ProtobufError::Malformed)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed)
    }

    fn bytes(&mut self) -> Result<&[u8], ProtobufError> {
        let len = self.varint()? as usize;
        let end = self
            .pos
            .checked_add(len)
            .filter(|e| *e <= self.buf.len())
            .ok_or(ProtobufError::Malformed)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), ProtobufError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            _ => Err(ProtobufError::Malformed),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), ProtobufError> {
        if self.pos + n > self.buf.len() {
            return Err(ProtobufError::Malformed);
        }
        self.pos += n;
        Ok(())
    }
}

fn decode_message(buf: &[u8], fields: &[F]) -> Result<Value, ProtobufError> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Map::new();
    while r.pos < buf.len() {
        let tag = r.varint()?;
        let (number, wire) = ((tag >> 3) as u32, tag & 7);
        let Some(field) = fields.iter().find(|f| f.0 == number) else {
            r.skip(wire)?;
            continue;
        };
        let F(_, name, ty, repeated, pointer) = *field;
        let value = match (ty, wire) {
            (Ty::Int, 0) => json!(r.varint()? as i64),
            (Ty::Bool, 0) => json!(r.varint()? != 0),
            (Ty::Str, 2) => json!(String::from_utf8_lossy(r.bytes()?)),
            (Ty::Bytes, 2) => json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
            (Ty::Msg(sub), 2) => decode_message(r.bytes()?, sub)?,
            (Ty::Time, 2) => {
                let t = decode_message(r.bytes()?, &[f(1, "seconds", Ty::Int)])?;
                match t["seconds"].as_i64() {
                    Some(s) if s > 0 => json!(crate::clock::format_unix(s)),
                    _ => Value::Null,
                }
            }
            (Ty::IntOrString, 2) => {
                let v = decode_message(
                    r.bytes()?,
                    &[
                        f(1, "type", Ty::Int),
                        f(2, "intVal", Ty::Int),
                        f(3, "strVal", Ty::Str),
                    ],
                )?;
                if v["type"].as_i64() == Some(1) {
                    v["strVal"].clone()
                } else {
                    json!(v["intVal"].as_i64().unwrap_or(0))
                }
            }
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, 2) => {
                let value_ty = match ty {
                    Ty::MapBytes => Ty::Bytes,
                    Ty::MapQuantity => Ty::Msg(QUANTITY),
                    _ => Ty::Str,
                };
                let entry =
                    decode_message(r.bytes()?, &[f(1, "key", Ty::Str), f(2, "value", value_ty)])?;
                let key = entry["key"].as_str().unwrap_or_default().to_string();
                let value = match ty {
                    Ty::MapQuantity => entry["value"]["string"].clone(),
                    _ => entry.get("value").cloned().unwrap_or(json!("")),
                };
                let map = out.entry(name).or_insert_with(|| json!({}));
                if let Value::Object(m) = map {
                    m.insert(key, if value.is_null() { json!("") } else { value });
                }
                continue;
            }
            _ => {
                r.skip(wire)?;
                continue;
            }
        };
        if repeated {
            if let Value::Array(a) = out.entry(name).or_insert_with(|| json!([])) {
                a.push(value);
            }
        } else if pointer || !is_zero(&value) {
            out.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kubectl_create_namespace() {
        // The request body of `kubectl create ns ref`, from the reference captures.
        let body: Vec<u8> = [
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
            0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1b, 0x0a, 0x13, 0x0a, 0x03, 0x72,
            0x65, 0x66, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00,
            0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22, 0x00,
        ]
        .to_vec();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ref"}})
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(b"not protobuf").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
    }
}
