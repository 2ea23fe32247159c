//! Server-side defaulting and the typed round-trip of built-in types, matching what a
//! Kubernetes 1.32 API server stores. These are the fields that turn up in every GitOps diff
//! when a tool forgets the server fills them in.

use std::net::Ipv4Addr;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::quantity;

/// Allocates ClusterIPs and NodePorts.
pub trait Allocator {
    fn cluster_ip(&self) -> String;
    fn node_port(&self) -> u16;
}

/// Apply the defaults of a built-in kind to an object about to be stored.
pub fn apply(group: &str, kind: &str, obj: &mut Value, alloc: &dyn Allocator) {
    match (group, kind) {
        ("", "Namespace") => namespace(obj),
        ("", "Service") => service(obj, alloc),
        ("", "Secret") => secret(obj),
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec, false);
            }
            let status = ensure_obj(obj, "status");
            status.entry("phase").or_insert(json!("Pending"));
            status.entry("qosClass").or_insert(json!("BestEffort"));
        }
        ("", "PersistentVolumeClaim") => {
            pvc(obj);
            ensure_obj(obj, "status")
                .entry("phase")
                .or_insert(json!("Pending"));
        }
        ("", "ServiceAccount" | "ConfigMap") => {}
        ("", "ReplicationController") => {
            set_default(spec(obj), "replicas", json!(1));
            template(obj, &["spec", "template"], false);
        }
        ("", "PodTemplate") => template(obj, &["template"], false),
        ("apps", "Deployment") => {
            let s = spec(obj);
            set_default(s, "replicas", json!(1));
            set_default(s, "revisionHistoryLimit", json!(10));
            set_default(s, "progressDeadlineSeconds", json!(600));
            let strategy = s.entry("strategy").or_insert_with(|| json!({}));
            if let Value::Object(st) = strategy {
                st.entry("type").or_insert(json!("RollingUpdate"));
                if st["type"] == "RollingUpdate" {
                    let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Value::Object(ru) = ru {
                        ru.entry("maxUnavailable").or_insert(json!("25%"));
                        ru.entry("maxSurge").or_insert(json!("25%"));
                    }
                }
            }
            template(obj, &["spec", "template"], false);
        }
        ("apps", "ReplicaSet") => {
            set_default(spec(obj), "replicas", json!(1));
            template(obj, &["spec", "template"], false);
        }
        ("apps", "StatefulSet") => {
            let s = spec(obj);
            set_default(s, "replicas", json!(1));
            set_default(s, "podManagementPolicy", json!("OrderedReady"));
            set_default(s, "revisionHistoryLimit", json!(10));
            set_default(
                s,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            if s["updateStrategy"]["type"] == "RollingUpdate"
                && s["updateStrategy"].get("rollingUpdate").is_none()
            {
                s["updateStrategy"]["rollingUpdate"] = json!({"partition": 0});
            }
            set_default(
                s,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            if let Some(Value::Array(templates)) = s.get_mut("volumeClaimTemplates") {
                for t in templates {
                    if let Value::Object(m) = t {
                        m.entry("apiVersion").or_insert(json!("v1"));
                        m.entry("kind").or_insert(json!("PersistentVolumeClaim"));
                        if let Value::Object(meta) =
                            m.entry("metadata").or_insert_with(|| json!({}))
                        {
                            meta.entry("creationTimestamp").or_insert(Value::Null);
                        }
                    }
                    pvc(t);
                    if let Value::Object(m) = t {
                        m.entry("status").or_insert(json!({"phase": "Pending"}));
                    }
                }
            }
            template(obj, &["spec", "template"], false);
        }
        ("apps", "DaemonSet") => {
            let s = spec(obj);
            set_default(s, "revisionHistoryLimit", json!(10));
            set_default(
                s,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            template(obj, &["spec", "template"], false);
        }
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => {
            let s = spec(obj);
            set_default(s, "concurrencyPolicy", json!("Allow"));
            set_default(s, "suspend", json!(false));
            set_default(s, "successfulJobsHistoryLimit", json!(3));
            set_default(s, "failedJobsHistoryLimit", json!(1));
            // The job template's spec gets Job defaults only when a Job is created from it.
            if let Some(Value::Object(jt)) = obj.pointer_mut("/spec/jobTemplate")
                && let Value::Object(meta) = jt.entry("metadata").or_insert_with(|| json!({}))
            {
                meta.entry("creationTimestamp").or_insert(Value::Null);
            }
            template(obj, &["spec", "jobTemplate", "spec", "template"], true);
        }
        ("networking.k8s.io", "Ingress") => {
            ensure_obj(obj, "status")
                .entry("loadBalancer")
                .or_insert(json!({}));
        }
        ("policy", "PodDisruptionBudget") => {}
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if let Some(Value::Array(subjects)) = obj.get_mut("subjects") {
                for s in subjects {
                    if s["kind"] == "ServiceAccount" {
                        continue;
                    }
                    if let Value::Object(m) = s {
                        m.entry("apiGroup")
                            .or_insert(json!("rbac.authorization.k8s.io"));
                    }
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            if let Value::Object(m) = obj {
                m.entry("reclaimPolicy").or_insert(json!("Delete"));
                m.entry("volumeBindingMode").or_insert(json!("Immediate"));
            }
        }
        _ => {}
    }
}

fn spec(obj: &mut Value) -> &mut Map<String, Value> {
    ensure_obj(obj, "spec")
}

fn ensure_obj<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("just made an object");
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn namespace(obj: &mut Value) {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ensure_obj(ensure_obj_value(obj, "metadata"), "labels")
        .insert("kubernetes.io/metadata.name".into(), json!(name));
    set_default(spec(obj), "finalizers", json!(["kubernetes"]));
    set_default(ensure_obj(obj, "status"), "phase", json!("Active"));
}

fn ensure_obj_value<'a>(obj: &'a mut Value, key: &str) -> &'a mut Value {
    ensure_obj(obj, key);
    &mut obj[key]
}

fn service(obj: &mut Value, alloc: &dyn Allocator) {
    let s = spec(obj);
    set_default(s, "type", json!("ClusterIP"));
    set_default(s, "sessionAffinity", json!("None"));
    let ty = s["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty == "ExternalName" {
        return;
    }
    if let Some(Value::Array(ports)) = s.get_mut("ports") {
        for p in ports {
            if let Value::Object(m) = p {
                m.entry("protocol").or_insert(json!("TCP"));
                if let Some(port) = m.get("port").cloned() {
                    m.entry("targetPort").or_insert(port);
                }
                if (ty == "NodePort" || ty == "LoadBalancer") && m.get("nodePort").is_none() {
                    m.insert("nodePort".into(), json!(alloc.node_port()));
                }
            }
        }
    }
    match s.get("clusterIP").and_then(Value::as_str) {
        Some("None") => {
            s.entry("clusterIPs").or_insert(json!(["None"]));
        }
        Some(ip) if !ip.is_empty() => {
            let ip = ip.to_string();
            s.entry("clusterIPs").or_insert(json!([ip]));
        }
        _ => {
            let ip = alloc.cluster_ip();
            s.insert("clusterIP".into(), json!(ip));
            s.insert("clusterIPs".into(), json!([ip]));
        }
    }
    set_default(s, "ipFamilies", json!(["IPv4"]));
    set_default(s, "ipFamilyPolicy", json!("SingleStack"));
    set_default(s, "internalTrafficPolicy", json!("Cluster"));
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(s, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(s, "allocateLoadBalancerNodePorts", json!(true));
    }
    if s["sessionAffinity"] == "ClientIP" {
        set_default(
            s,
            "sessionAffinityConfig",
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    ensure_obj(obj, "status")
        .entry("loadBalancer")
        .or_insert(json!({}));
}

fn secret(obj: &mut Value) {
    let Value::Object(map) = obj else { return };
    map.entry("type").or_insert(json!("Opaque"));
    if let Some(Value::Object(string_data)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if let Value::Object(data) = data {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

fn pvc(obj: &mut Value) {
    set_default(spec(obj), "volumeMode", json!("Filesystem"));
}

fn hpa(obj: &mut Value) {
    let s = spec(obj);
    set_default(s, "minReplicas", json!(1));
    if s.get("metrics").is_none() && obj["apiVersion"] == "autoscaling/v2" {
        obj["spec"]["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
}

fn crd(obj: &mut Value) {
    let s = spec(obj);
    set_default(s, "conversion", json!({"strategy": "None"}));
    if let Some(Value::Object(names)) = s.get_mut("names")
        && let Some(kind) = names
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string)
    {
        names
            .entry("singular")
            .or_insert(json!(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert(json!(format!("{kind}List")));
    }
}

fn job_spec_defaults(job_template: &mut Value) {
    let s = spec(job_template);
    set_default(s, "parallelism", json!(1));
    set_default(s, "completions", json!(1));
    set_default(s, "backoffLimit", json!(6));
    set_default(s, "completionMode", json!("NonIndexed"));
    set_default(s, "suspend", json!(false));
    set_default(s, "podReplacementPolicy", json!("TerminatingOrFailed"));
}

fn job(obj: &mut Value) {
    job_spec_defaults(obj);
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let manual = obj["spec"]["manualSelector"] == json!(true);
    if !manual {
        let generated = json!({
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        });
        if obj["spec"].get("selector").is_none() {
            obj["spec"]["selector"] =
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        }
        obj["spec"]["manualSelector"] = json!(false);
        let labels = ensure_obj(
            ensure_obj_value(ensure_obj_value(obj, "spec"), "template"),
            "metadata",
        );
        let labels = labels.entry("labels").or_insert_with(|| json!({}));
        if let (Value::Object(labels), Value::Object(generated)) = (labels, generated) {
            for (k, v) in generated {
                labels.entry(k).or_insert(v);
            }
        }
    }
    // A Job without labels of its own takes its pod template's labels.
    let has_labels = obj["metadata"]["labels"]
        .as_object()
        .is_some_and(|l| !l.is_empty());
    if !has_labels && let Some(labels) = obj.pointer("/spec/template/metadata/labels").cloned() {
        obj["metadata"]["labels"] = labels;
    }
    template(obj, &["spec", "template"], true);
}

/// Defaults of a pod template at `path` (metadata.creationTimestamp: null, the PodSpec).
fn template(obj: &mut Value, path: &[&str], job: bool) {
    let mut cur = obj;
    for key in path {
        match cur.get_mut(*key) {
            Some(next) => cur = next,
            None => return,
        }
    }
    let Value::Object(t) = cur else { return };
    let meta = t.entry("metadata").or_insert_with(|| json!({}));
    if let Value::Object(m) = meta {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(spec) = t.get_mut("spec") {
        pod_spec(spec, job);
    }
}

/// PodSpec defaults (k8s.io/kubernetes/pkg/apis/core/v1/defaults.go).
pub fn pod_spec(spec: &mut Value, job: bool) {
    let Value::Object(s) = spec else { return };
    if !job {
        s.entry("restartPolicy").or_insert(json!("Always"));
    }
    s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    s.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    s.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    s.entry("securityContext").or_insert(json!({}));
    if let Some(Value::String(sa)) = s.get("serviceAccountName").cloned().as_ref() {
        s.entry("serviceAccount").or_insert(json!(sa));
    }
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = s.get_mut(list) {
            for c in containers {
                container(c);
            }
        }
    }
    if let Some(Value::Array(volumes)) = s.get_mut("volumes") {
        for v in volumes {
            volume(v);
        }
    }
}

fn container(c: &mut Value) {
    let Value::Object(m) = c else { return };
    let image = m.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = if image_tag_is_latest(image) {
        "Always"
    } else {
        "IfNotPresent"
    };
    m.entry("imagePullPolicy").or_insert(json!(policy));
    m.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    m.entry("terminationMessagePolicy").or_insert(json!("File"));
    m.entry("resources").or_insert(json!({}));
    if let Some(Value::Array(ports)) = m.get_mut("ports") {
        for p in ports {
            if let Value::Object(p) = p {
                p.entry("protocol").or_insert(json!("TCP"));
            }
        }
    }
    if let Some(Value::Array(env)) = m.get_mut("env") {
        for e in env {
            if let Some(Value::Object(field_ref)) = e.pointer_mut("/valueFrom/fieldRef") {
                field_ref.entry("apiVersion").or_insert(json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = m.get_mut(probe) {
            p.entry("timeoutSeconds").or_insert(json!(1));
            p.entry("periodSeconds").or_insert(json!(10));
            p.entry("successThreshold").or_insert(json!(1));
            p.entry("failureThreshold").or_insert(json!(3));
            if let Some(Value::Object(http)) = p.get_mut("httpGet") {
                http.entry("scheme").or_insert(json!("HTTP"));
                http.entry("path").or_insert(json!("/"));
            }
        }
    }
}

/// `:latest` or no tag (and no digest) means imagePullPolicy Always.
fn image_tag_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn volume(v: &mut Value) {
    let Value::Object(m) = v else { return };
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(Value::Object(s)) = m.get_mut(source) {
            s.entry("defaultMode").or_insert(json!(420));
        }
    }
    if let Some(Value::Object(h)) = m.get_mut("hostPath") {
        h.entry("type").or_insert(json!(""));
    }
}

/// The typed round-trip: what a Go struct with `omitempty` drops, and quantities rewritten
/// in canonical form. Applied to built-in types only.
pub fn round_trip(obj: &mut Value) {
    if let Some(Value::Object(meta)) = obj.get_mut("metadata") {
        for key in ["labels", "annotations"] {
            if meta
                .get(key)
                .is_some_and(|v| v.as_object().is_some_and(Map::is_empty) || v.is_null())
            {
                meta.remove(key);
            }
        }
        for key in ["finalizers", "ownerReferences"] {
            if meta
                .get(key)
                .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty) || v.is_null())
            {
                meta.remove(key);
            }
        }
    }
    if let Value::Object(m) = obj {
        for key in ["data", "binaryData", "stringData"] {
            if m.get(key)
                .is_some_and(|v| v.as_object().is_some_and(Map::is_empty) || v.is_null())
            {
                m.remove(key);
            }
        }
    }
    drop_zero_values(obj);
}

/// Non-pointer fields of the core types whose zero value Go drops on output.
const OMITEMPTY_STRINGS: &[&str] = &["value", "subPath", "hostname", "subdomain", "nodeName"];
const OMITEMPTY_BOOLS: &[&str] = &[
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "stdin",
    "stdinOnce",
    "tty",
    "readOnly",
];

/// Maps whose keys and values are user data, never struct fields.
const FREE_FORM_MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "stringData",
    "matchLabels",
    "nodeSelector",
];
/// Maps of resource quantities.
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "hard",
    "overhead",
];

fn canonical_quantity(v: &mut Value) {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return,
    };
    if let Some(c) = quantity::canonicalize(&text) {
        *v = Value::String(c);
    }
}

fn drop_zero_values(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, val| match val {
                Value::Null => k == "creationTimestamp",
                Value::Bool(false) => !OMITEMPTY_BOOLS.contains(&k.as_str()),
                Value::String(s) => !(s.is_empty() && OMITEMPTY_STRINGS.contains(&k.as_str())),
                _ => true,
            });
            for (k, val) in map.iter_mut() {
                let key = k.as_str();
                if FREE_FORM_MAPS.contains(&key) {
                    continue;
                }
                if QUANTITY_MAPS.contains(&key) {
                    if let Value::Object(q) = val {
                        q.values_mut().for_each(canonical_quantity);
                    }
                    continue;
                }
                if key == "storage" || key == "sizeLimit" {
                    canonical_quantity(val);
                }
                // A Service's selector is a string map; a LabelSelector is a struct.
                if key == "selector"
                    && val.get("matchLabels").is_none()
                    && val.get("matchExpressions").is_none()
                {
                    continue;
                }
                drop_zero_values(val);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_zero_values),
        _ => {}
    }
}

/// ClusterIPs from 10.96.0.0/12 and NodePorts from 30000-32767, handed out in order.
#[derive(Debug, Default)]
pub struct SequentialAllocator {
    next_ip: std::sync::atomic::AtomicU32,
    next_port: std::sync::atomic::AtomicU32,
}

impl Allocator for SequentialAllocator {
    fn cluster_ip(&self) -> String {
        // 10.96.0.1 is the kubernetes Service; start after it.
        let n = self
            .next_ip
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 2;
        let base = u32::from(Ipv4Addr::new(10, 96, 0, 0));
        Ipv4Addr::from(base + (n % (1 << 20))).to_string()
    }

    fn node_port(&self) -> u16 {
        let n = self
            .next_port
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        30000 + (n % 2768) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(group: &str, kind: &str, mut obj: Value) -> Value {
        apply(group, kind, &mut obj, &SequentialAllocator::default());
        round_trip(&mut obj);
        obj
    }

    #[test]
    fn deployment_pod_template_defaults() {
        let obj = defaulted(
            "apps",
            "Deployment",
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}], "hostNetwork": false}}}}),
        );
        let s = &obj["spec"];
        assert_eq!(s["replicas"], 1);
        assert_eq!(s["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(s["template"]["metadata"]["creationTimestamp"], Value::Null);
        let c = &s["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert!(s["template"]["spec"].get("hostNetwork").is_none());
        assert_eq!(s["template"]["spec"]["securityContext"], json!({}));
    }

    #[test]
    fn service_defaults_allocate_cluster_ip() {
        let obj = defaulted("", "Service", json!({"spec": {"ports": [{"port": 80}]}}));
        assert_eq!(obj["spec"]["type"], "ClusterIP");
        assert_eq!(obj["spec"]["ports"][0]["targetPort"], 80);
        assert!(
            obj["spec"]["clusterIP"]
                .as_str()
                .unwrap()
                .starts_with("10.96.")
        );
        assert_eq!(obj["spec"]["clusterIPs"][0], obj["spec"]["clusterIP"]);
        assert_eq!(obj["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn secret_string_data_is_folded_into_data() {
        let obj = defaulted("", "Secret", json!({"stringData": {"user": "admin"}}));
        assert_eq!(obj["data"]["user"], "YWRtaW4=");
        assert_eq!(obj["type"], "Opaque");
        assert!(obj.get("stringData").is_none());
    }

    #[test]
    fn image_pull_policy_latest_rule() {
        assert!(image_tag_is_latest("nginx"));
        assert!(image_tag_is_latest("nginx:latest"));
        assert!(image_tag_is_latest("localhost:5000/nginx"));
        assert!(!image_tag_is_latest("localhost:5000/nginx:1.2"));
        assert!(!image_tag_is_latest("nginx@sha256:abc"));
    }
}
