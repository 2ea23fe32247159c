//! Name references: when a ConfigMap, Secret, ServiceAccount, ... is renamed (prefix,
//! suffix, content hash), every field that refers to it by name follows.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::Resource;

/// `(kind, original name, namespace)` → current name.
type Renames = HashMap<(String, String), String>;

pub fn fix_references(resources: &mut [Resource]) {
    let mut renames: Renames = HashMap::new();
    for r in resources.iter() {
        if r.name() != r.origin_name {
            renames.insert(
                (r.kind().to_string(), r.origin_name.clone()),
                r.name().to_string(),
            );
        }
    }
    if renames.is_empty() {
        return;
    }
    for r in resources.iter_mut() {
        let kind = r.kind().to_string();
        let obj = &mut r.object;
        for spec in pod_specs(obj, &kind) {
            fix_pod_spec(spec, &renames);
        }
        match kind.as_str() {
            "RoleBinding" | "ClusterRoleBinding" => {
                let role_kind = obj["roleRef"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                rename_at(&mut obj["roleRef"], "name", &role_kind, &renames);
                if let Some(Value::Array(subjects)) = obj.get_mut("subjects") {
                    for s in subjects {
                        if s["kind"] == "ServiceAccount" {
                            rename_at(s, "name", "ServiceAccount", &renames);
                        }
                    }
                }
            }
            "Ingress" => {
                if let Some(Value::Array(tls)) = obj.pointer_mut("/spec/tls") {
                    for t in tls {
                        rename_at(t, "secretName", "Secret", &renames);
                    }
                }
                if let Some(backend) = obj.pointer_mut("/spec/defaultBackend/service/name") {
                    rename(backend, "Service", &renames);
                }
                if let Some(Value::Array(rules)) = obj.pointer_mut("/spec/rules") {
                    for rule in rules {
                        if let Some(Value::Array(paths)) = rule.pointer_mut("/http/paths") {
                            for p in paths {
                                if let Some(name) = p.pointer_mut("/backend/service/name") {
                                    rename(name, "Service", &renames);
                                }
                            }
                        }
                    }
                }
            }
            "StatefulSet" => {
                if let Some(name) = obj.pointer_mut("/spec/serviceName") {
                    rename(name, "Service", &renames);
                }
            }
            "HorizontalPodAutoscaler" => {
                let target_kind = obj["spec"]["scaleTargetRef"]["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if let Some(name) = obj.pointer_mut("/spec/scaleTargetRef/name") {
                    rename(name, &target_kind, &renames);
                }
            }
            _ => {}
        }
    }
}

/// Rename `parent[key]` if present (indexing would insert a null).
fn rename_at(parent: &mut Value, key: &str, kind: &str, renames: &Renames) {
    if let Some(field) = parent.get_mut(key) {
        rename(field, kind, renames);
    }
}

fn rename(field: &mut Value, kind: &str, renames: &Renames) {
    if let Some(name) = field.as_str()
        && let Some(new) = renames.get(&(kind.to_string(), name.to_string()))
    {
        *field = json!(new);
    }
}

/// The pod specs inside an object of `kind`.
fn pod_specs<'a>(obj: &'a mut Value, kind: &str) -> Vec<&'a mut Value> {
    let pointer = match kind {
        "Pod" => "/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "Deployment"
        | "ReplicaSet"
        | "DaemonSet"
        | "StatefulSet"
        | "Job"
        | "ReplicationController"
        | "PodTemplate" => {
            if kind == "PodTemplate" {
                "/template/spec"
            } else {
                "/spec/template/spec"
            }
        }
        _ => return Vec::new(),
    };
    obj.pointer_mut(pointer).into_iter().collect()
}

fn fix_pod_spec(spec: &mut Value, renames: &Renames) {
    rename_at(spec, "serviceAccountName", "ServiceAccount", renames);
    if spec.get("serviceAccount").is_some() {
        rename_at(spec, "serviceAccount", "ServiceAccount", renames);
    }
    if let Some(Value::Array(secrets)) = spec.get_mut("imagePullSecrets") {
        for s in secrets {
            rename_at(s, "name", "Secret", renames);
        }
    }
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for v in volumes {
            if v.get("configMap").is_some() {
                rename_at(&mut v["configMap"], "name", "ConfigMap", renames);
            }
            if v.get("secret").is_some() {
                rename_at(&mut v["secret"], "secretName", "Secret", renames);
            }
            if v.get("persistentVolumeClaim").is_some() {
                rename_at(
                    &mut v["persistentVolumeClaim"],
                    "claimName",
                    "PersistentVolumeClaim",
                    renames,
                );
            }
            if let Some(Value::Array(sources)) = v.pointer_mut("/projected/sources") {
                for s in sources {
                    if s.get("configMap").is_some() {
                        rename_at(&mut s["configMap"], "name", "ConfigMap", renames);
                    }
                    if s.get("secret").is_some() {
                        rename_at(&mut s["secret"], "name", "Secret", renames);
                    }
                }
            }
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for c in containers {
            if let Some(Value::Array(env)) = c.get_mut("env") {
                for e in env {
                    if e.pointer("/valueFrom/configMapKeyRef").is_some() {
                        rename_at(
                            &mut e["valueFrom"]["configMapKeyRef"],
                            "name",
                            "ConfigMap",
                            renames,
                        );
                    }
                    if e.pointer("/valueFrom/secretKeyRef").is_some() {
                        rename_at(
                            &mut e["valueFrom"]["secretKeyRef"],
                            "name",
                            "Secret",
                            renames,
                        );
                    }
                }
            }
            if let Some(Value::Array(env_from)) = c.get_mut("envFrom") {
                for e in env_from {
                    if e.get("configMapRef").is_some() {
                        rename_at(&mut e["configMapRef"], "name", "ConfigMap", renames);
                    }
                    if e.get("secretRef").is_some() {
                        rename_at(&mut e["secretRef"], "name", "Secret", renames);
                    }
                }
            }
        }
    }
}
